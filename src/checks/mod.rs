//! The checks, one module each, in the order they run. Each decides its verdict from what the
//! engine observed; none does I/O of its own.

pub mod answers;
pub mod authenticated;
pub mod credentials;
pub mod git_access;
pub mod host_key;
pub mod network_path;
pub mod reachable;
pub mod repositories;
pub mod scopes;
pub mod spec;
pub mod tls;

use crate::catalogue::Check;
use std::collections::BTreeMap;

pub use crate::finding::Finding;

/// The annotation on a Secret that declares when its credential expires (RFC 3339), for the
/// credentials whose expiry Bitbucket does not reveal.
pub const EXPIRES_AT: &str = "bbconn.dev/expires-at";

/// What bbconn reads of a referenced object besides its data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// The raw bbconn.dev/expires-at annotation, if set.
    pub expires_at: Option<String>,
    /// The object's resourceVersion, where it was read from a cluster: what a refused
    /// credential's withholding rests on.
    pub resource_version: Option<String>,
}

impl Meta {
    pub fn from_annotations(a: Option<&BTreeMap<String, String>>) -> Meta {
        Meta {
            expires_at: a.and_then(|a| a.get(EXPIRES_AT)).cloned(),
            resource_version: None,
        }
    }
}

/// The result of fetching a referenced object. Debug names the keys, never the values.
#[derive(Clone, PartialEq, Eq)]
pub enum Lookup {
    Found(BTreeMap<String, Vec<u8>>, Meta),
    NotFound,
    Forbidden(String),
    Failed(String),
}

impl std::fmt::Debug for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Found(data, meta) => f
                .debug_struct("Found")
                .field("keys", &data.keys().collect::<Vec<_>>())
                .field("meta", meta)
                .finish_non_exhaustive(),
            Lookup::NotFound => f.write_str("NotFound"),
            Lookup::Forbidden(d) => f.debug_tuple("Forbidden").field(d).finish(),
            Lookup::Failed(d) => f.debug_tuple("Failed").field(d).finish(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Passed {
        reason: &'static str,
        message: String,
    },
    Failed(Finding),
    /// Not run: an earlier check failed.
    Skipped {
        after: Check,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckResult {
    pub check: Check,
    pub verdict: Verdict,
    pub warnings: Vec<Finding>,
}

impl CheckResult {
    pub fn passed(check: Check, message: impl Into<String>) -> CheckResult {
        CheckResult {
            check,
            verdict: Verdict::Passed {
                reason: crate::catalogue::reason::PASSED,
                message: message.into(),
            },
            warnings: Vec::new(),
        }
    }
    pub fn failed(check: Check, finding: Finding) -> CheckResult {
        CheckResult {
            check,
            verdict: Verdict::Failed(finding),
            warnings: Vec::new(),
        }
    }
    pub fn with_warnings(mut self, warnings: Vec<Finding>) -> CheckResult {
        self.warnings = warnings;
        self
    }
    pub fn is_passed(&self) -> bool {
        matches!(self.verdict, Verdict::Passed { .. })
    }
    /// The finding that fails this check and stops the later ones. A check Bitbucket gives no
    /// way to verify is reported (Unknown, a warning) but fails nothing.
    pub fn failure(&self) -> Option<&Finding> {
        match &self.verdict {
            Verdict::Failed(f) if f.cause.effect() != crate::catalogue::Effect::Unverifiable => {
                Some(f)
            }
            _ => None,
        }
    }
}
