//! The SSH event log a test asserts on: connections, key checks, commands, other requests.

use std::net::SocketAddr;
use std::sync::Mutex;

use crate::state::lock;

/// One thing that happened on an SSH listener, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEvent {
    /// The listener's name in the fixture.
    pub listener: String,
    /// Numbers the listener's connections from 1, so the events of one connection can be
    /// told apart from another's.
    pub connection: u64,
    pub kind: SshEventKind,
}

/// What an [`SshEvent`] records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SshEventKind {
    /// A TCP connection was accepted (before the SSH handshake).
    Connected { peer: SocketAddr },
    /// A `publickey` authentication request reached the key check.
    Auth(SshAuth),
    /// An `exec` request: the command as sent, and how it was answered.
    Exec { command: String, answer: ExecAnswer },
    /// An `env` request (git sends `GIT_PROTOCOL=version=2`); always ignored.
    Env { name: String, value: String },
    /// Any other channel request the server saw (`shell`, `pty-req`, `subsystem`, `x11-req`,
    /// `window-change`, `signal`, `auth-agent-req@openssh.com`), with its detail (the
    /// subsystem's name, the signal's name), all refused. russh itself refuses request types it
    /// does not know without telling the server, so those are not recorded.
    ChannelRequest {
        request: String,
        detail: Option<String>,
    },
}

/// How an exec request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecAnswer {
    /// The ref advertisement went out on stdout (exit status 0 once the client's flush came, 1
    /// if it asked for a pack instead).
    Advertised,
    /// This text on stdout, exit status 0 (Data Center's `whoami`).
    Output(String),
    /// This text on stderr, exit status 1: the flavour's refusal.
    Refused(String),
    /// The exec request itself was refused (Data Center, a command it does not run).
    NotRun,
}

/// One `publickey` authentication attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAuth {
    /// The user name the client sent (`git` for Bitbucket).
    pub user: String,
    /// The key's SHA-256 fingerprint as OpenSSH prints it: `SHA256:...`.
    pub fingerprint: String,
    /// The algorithm named in the request (`ssh-ed25519`, `rsa-sha2-512`, ...).
    pub algorithm: String,
    /// true: the request carried a signature, which russh checked before asking. false: russh
    /// asked before any signature was checked: a query without a signature (RFC 4252 section
    /// 7), which OpenSSH and russh clients send first for every key. russh does not tell the
    /// server whether a request for a key it then refuses carried a signature, so a client that
    /// signs without asking first is recorded once with false for a refused key.
    pub signed: bool,
    /// Whether the server accepted: for an unsigned query, USERAUTH_PK_OK rather than
    /// USERAUTH_FAILURE; for a signed request, authentication succeeded.
    pub accepted: bool,
}

/// The log of every SSH listener, shared by their connections.
pub(crate) struct SshLog {
    /// The fixture's `recordRequests`: off for long benchmarks, so memory stays flat.
    enabled: bool,
    events: Mutex<Vec<SshEvent>>,
}

impl SshLog {
    pub(crate) fn new(enabled: bool) -> SshLog {
        SshLog {
            enabled,
            events: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn push(&self, listener: &str, connection: u64, kind: SshEventKind) {
        if !self.enabled {
            return;
        }
        lock(&self.events).push(SshEvent {
            listener: listener.to_owned(),
            connection,
            kind,
        });
    }

    pub(crate) fn events(&self) -> Vec<SshEvent> {
        lock(&self.events).clone()
    }

    pub(crate) fn clear(&self) {
        lock(&self.events).clear();
    }
}
