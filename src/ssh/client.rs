//! git over SSH as a consumer runs it, read-only, on russh's client: a handshake that shows
//! the server's host key, the consumer's key offered without a signature first (RFC 4252
//! section 7), and the ref advertisement of `git-upload-pack` or `git-receive-pack` on an
//! exec channel, answered with a flush so no pack is ever asked for or sent.

use russh::keys::{Algorithm, HashAlg, PrivateKey, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, client};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// What the client calls itself to the server.
pub const CLIENT_IDENT: &str = "SSH-2.0-bbconn";

/// The most of an advertisement or of the server's text kept: a ref list of a large repository
/// runs to megabytes, and only its framing and first lines decide anything.
const MAX_ANSWER: usize = 1 << 20;
const MAX_TEXT: usize = 4 << 10;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("the SSH handshake failed: {0}")]
    Handshake(String),
    #[error("the server offers no host key algorithm of type {0}")]
    NoCommonHostKey(String),
    #[error("the SSH session failed: {0}")]
    Session(String),
    #[error("the server did not answer within {0:?}")]
    Timeout(Duration),
}

fn session_error(e: russh::Error) -> SshError {
    SshError::Session(e.to_string())
}

/// The server's host key or certificate, as it presented it in the handshake.
#[derive(Clone, Debug)]
pub enum Presented {
    Key(PublicKey),
    Certificate(Box<russh::keys::Certificate>),
}

impl Presented {
    /// The key itself (a certificate's subject key).
    pub fn key(&self) -> PublicKey {
        match self {
            Presented::Key(k) => k.clone(),
            Presented::Certificate(c) => PublicKey::from(c.public_key().clone()),
        }
    }
}

/// Whether the handshake goes on once the host key is seen.
#[derive(Clone, Debug)]
pub enum Accept {
    /// Stop after the key exchange: the key was all that was wanted.
    Never,
    /// Go on whatever the key: HostKeyVerified judges it before anything is authenticated on
    /// the session (engine/pipeline/ssh.rs), and closes it if the key does not verify.
    Judged,
}

struct Hold {
    seen: Arc<Mutex<Option<Presented>>>,
    accept: Accept,
}

impl client::Handler for Hold {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let presented = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => Presented::Key(key.clone()),
            PublicKeyOrCertificate::Certificate(c) => Presented::Certificate(Box::new(c.clone())),
        };
        let ok = matches!(self.accept, Accept::Judged);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(presented);
        }
        Ok(ok)
    }
}

/// An SSH connection after the key exchange.
pub struct Session {
    handle: client::Handle<Hold>,
    timeout: Duration,
}

/// A handshake that asks for host key algorithm `algorithm` only; the key the server presents,
/// and the session when `accept` let it go on.
pub async fn handshake<S>(
    stream: S,
    algorithm: Algorithm,
    certificate: bool,
    accept: Accept,
    timeout: Duration,
) -> Result<(Presented, Option<Session>), SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut preferred = russh::Preferred::default();
    let name = algorithm.to_string();
    if certificate {
        preferred.host_key_certificates = std::borrow::Cow::Owned(vec![algorithm.clone()]);
        preferred.key = std::borrow::Cow::Owned(Vec::new());
    } else {
        preferred.key = std::borrow::Cow::Owned(vec![algorithm]);
    }
    let config = Arc::new(client::Config {
        client_id: russh::SshId::Standard(CLIENT_IDENT.into()),
        preferred,
        inactivity_timeout: Some(timeout),
        nodelay: true,
        ..Default::default()
    });
    let seen = Arc::new(Mutex::new(None));
    let hold = Hold {
        seen: seen.clone(),
        accept,
    };
    let connected =
        tokio::time::timeout(timeout, client::connect_stream(config, stream, hold)).await;
    let taken = seen.lock().ok().and_then(|mut s| s.take());
    match (connected, taken) {
        (Err(_), _) => Err(SshError::Timeout(timeout)),
        (Ok(Ok(handle)), Some(p)) => Ok((p, Some(Session { handle, timeout }))),
        // Refused by check_server_key: the key was seen, which is what was asked.
        (Ok(Err(_)), Some(p)) => Ok((p, None)),
        (Ok(Err(russh::Error::NoCommonAlgo { .. })), None) => Err(SshError::NoCommonHostKey(name)),
        (Ok(Err(e)), None) => Err(SshError::Handshake(e.to_string())),
        (Ok(Ok(_)), None) => Err(SshError::Handshake(
            "the server completed the key exchange without presenting a host key".into(),
        )),
    }
}

/// How the server answered the consumer's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Authentication {
    Accepted,
    Refused,
}

impl Session {
    /// Offers `key` for `user` without a signature, and signs only if the server accepts the
    /// offer: a key the server refuses is learned without proving possession of it.
    pub async fn authenticate(
        &mut self,
        user: &str,
        key: Arc<PrivateKey>,
    ) -> Result<Authentication, SshError> {
        let hash_alg = if key.algorithm().is_rsa() {
            // Data Center sends no server-sig-algs; rsa-sha2-256 is what OpenSSH then needs
            // configured by hand, and what every Bitbucket accepts.
            match self.handle.best_supported_rsa_hash().await {
                Ok(Some(h)) => h.or(Some(HashAlg::Sha256)),
                _ => Some(HashAlg::Sha256),
            }
        } else {
            None
        };
        // russh offers the public key without a signature first (RFC 4252 section 7) and
        // signs only after the server's PK_OK: a refused key is never signed.
        let with = russh::keys::PrivateKeyWithHashAlg::new(key, hash_alg);
        let answer =
            tokio::time::timeout(self.timeout, self.handle.authenticate_publickey(user, with))
                .await
                .map_err(|_| SshError::Timeout(self.timeout))?
                .map_err(session_error)?;
        Ok(if answer.success() {
            Authentication::Accepted
        } else {
            Authentication::Refused
        })
    }

    /// Runs `command` (git-upload-pack or git-receive-pack with a quoted path), reads the ref
    /// advertisement up to its flush-pkt, answers with a flush (nothing wanted, nothing to
    /// push), and closes the channel.
    pub async fn advertisement(&mut self, command: &str) -> Result<ExecAnswer, SshError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.exec(command))
            .await
            .map_err(|_| SshError::Timeout(timeout))?
    }

    async fn exec(&mut self, command: &str) -> Result<ExecAnswer, SshError> {
        let mut channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(session_error)?;
        channel.exec(true, command).await.map_err(session_error)?;
        let mut answer = ExecAnswer::default();
        let mut flushed = false;
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    keep(&mut answer.stdout, &data, MAX_ANSWER);
                    if !flushed && ends_at_flush(&answer.stdout) {
                        // The advertisement is complete: a flush says "nothing wanted".
                        flushed = true;
                        channel
                            .data_bytes(bytes::Bytes::from_static(b"0000"))
                            .await
                            .map_err(session_error)?;
                        channel.eof().await.map_err(session_error)?;
                    }
                }
                ChannelMsg::ExtendedData { data, .. } => keep(&mut answer.stderr, &data, MAX_TEXT),
                ChannelMsg::ExitStatus { exit_status } => answer.exit = Some(exit_status),
                ChannelMsg::Failure => answer.refused = true,
                ChannelMsg::Close => break,
                ChannelMsg::Eof if answer.exit.is_some() => break,
                _ => {}
            }
        }
        let _ = channel.close().await;
        Ok(answer)
    }

    pub async fn close(self) {
        let _ = self
            .handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await;
    }
}

/// What an exec channel said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecAnswer {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<u32>,
    /// The server refused the exec request itself.
    pub refused: bool,
}

impl ExecAnswer {
    /// The server's text (stderr), trimmed, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

fn keep(into: &mut Vec<u8>, data: &[u8], max: usize) {
    let room = max.saturating_sub(into.len());
    into.extend_from_slice(&data[..data.len().min(room)]);
}

/// Whether the pkt-lines so far end with a flush-pkt (the advertisement's end).
fn ends_at_flush(mut rest: &[u8]) -> bool {
    while rest.len() >= 4 {
        let Some(len) = std::str::from_utf8(&rest[..4])
            .ok()
            .and_then(|h| usize::from_str_radix(h, 16).ok())
        else {
            return false;
        };
        if len == 0 {
            return true;
        }
        if len < 4 || len > rest.len() {
            return false;
        }
        rest = &rest[len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertisement_ends_at_its_first_flush() {
        assert!(!ends_at_flush(b""));
        assert!(!ends_at_flush(b"0009abcde"));
        assert!(ends_at_flush(b"0009abcde0000"));
        assert!(ends_at_flush(b"0000"));
        assert!(!ends_at_flush(b"zzzz0000"));
        assert!(!ends_at_flush(b"0010abc"));
    }
}
