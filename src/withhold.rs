//! Credentials Bitbucket rejected, withheld until they change.
//!
//! Data Center puts a user behind a CAPTCHA after a few failed logins, and every rejected
//! attempt counts, a checker's included. So once Bitbucket has refused a credential, bbconn does
//! not send it again: the connection keeps the verdict until the Secret's data or the spec
//! changes (a new key, see `engine`) or a user sets bbconn.dev/requested-at (a fresh check).
//! Connections that send the same credential to the same server share one entry.

use crate::finding::Finding;
use std::collections::HashMap;
use std::sync::Mutex;

/// A digest of the credential and where it is sent (never the values themselves).
pub type Key = [u8; 32];

/// Which of a connection's credentials Bitbucket refused.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Kind {
    /// spec.auth's, on the REST API.
    Rest,
    /// The credential in the form git is sent it over HTTPS.
    Git,
    /// The consumer's SSH key.
    SshKey,
}

/// A refusal and since when the credential has not been sent: what a run found, and what a
/// status keeps so that a process that starts later withholds it too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withholding {
    pub credential: Kind,
    pub refusal: Finding,
    pub since: jiff::Timestamp,
}

/// More distinct rejected credentials than this and the oldest are forgotten: each is sent
/// once more, which is safe, and memory stays bounded.
const MAX_ENTRIES: usize = 20_000;

#[derive(Default)]
pub struct Withheld {
    entries: Mutex<HashMap<Key, (Finding, jiff::Timestamp)>>,
}

impl Withheld {
    /// Bitbucket's refusal, and since when the credential has not been sent.
    pub fn get(&self, key: &Key) -> Option<(Finding, jiff::Timestamp)> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    pub fn put(&self, key: Key, refusal: Finding, at: jiff::Timestamp) {
        if let Ok(mut m) = self.entries.lock() {
            if m.len() >= MAX_ENTRIES
                && let Some(oldest) = m.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k)
            {
                m.remove(&oldest);
            }
            m.insert(key, (refusal, at));
        }
    }

    /// A refusal another process recorded (the connection's status): kept unless this process
    /// already holds one for the credential.
    pub fn seed(&self, key: Key, refusal: Finding, at: jiff::Timestamp) {
        if self.get(&key).is_none() {
            self.put(key, refusal, at);
        }
    }

    /// Bitbucket accepted it: nothing to withhold.
    pub fn release(&self, key: &Key) {
        if let Ok(mut m) = self.entries.lock() {
            m.remove(key);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The verdict for a credential bbconn did not send, because Bitbucket rejected it before: the
/// same cause, saying since when and how to have it sent again. Stable from check to check, so
/// the status is not rewritten.
pub fn notice(refusal: &Finding, since: jiff::Timestamp) -> Finding {
    Finding::new(
        refusal.cause,
        format!(
            "{}. bbconn has not sent this credential again since {since}, so that it cannot lock the account: change the Secret, or set the annotation bbconn.dev/requested-at to check again",
            refusal.message.trim_end_matches('.')
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Cause;

    #[test]
    fn a_refusal_is_kept_until_released() {
        let w = Withheld::default();
        let at = jiff::Timestamp::from_second(1_000).unwrap();
        w.put([1; 32], Finding::new(Cause::CredentialsRejected, "no"), at);
        assert_eq!(
            w.get(&[1; 32]).map(|(f, t)| (f.cause, t)),
            Some((Cause::CredentialsRejected, at))
        );
        assert!(
            w.get(&[2; 32]).is_none(),
            "another credential is not withheld"
        );
        w.release(&[1; 32]);
        assert!(w.is_empty());
    }
}
