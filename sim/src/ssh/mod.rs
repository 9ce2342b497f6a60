//! git over SSH as Bitbucket serves it: a listener of `kind: ssh` speaks for the one flavour in
//! its `serves`.
//!
//! - Cloud (ssh.bitbucket.org:22): host keys ed25519, ECDSA P-256 and RSA 3072 (or, with
//!   `retiredRsaHostKey`, the RSA 2048 key retired in 2023); user `git` only; a key offered
//!   without a signature is answered USERAUTH_PK_OK if it would be accepted, USERAUTH_FAILURE
//!   otherwise (RFC 4252 section 7); refusals are conq's texts on stderr with exit status 1.
//! - Data Center (port 7999, Apache MINA): one RSA 2048 host key; `git upload-pack`,
//!   `git receive-pack`, `git archive-pack` and `whoami`, nothing else.
//!
//! After authentication the one exec request is answered with the ref advertisement of
//! `git/` (as git's pack protocol over SSH starts: no `# service=` line). The command ends at
//! the client's flush or EOF; for upload-pack, wants are answered first with the repository's
//! pack, as over smart HTTP (`git::Upload`). Nothing is ever pushed: receive-pack refuses a
//! push after its advertisement.
//!
//! Files: `keys.rs` (host, client and fixture keys), `access.rs` (who may read or push),
//! `answers.rs` (commands and texts), `session.rs` (the russh handler), `events.rs` (the log
//! tests read), `links.rs` (Data Center's ssh clone URL).

mod access;
mod answers;
mod events;
mod keys;
mod links;
mod session;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use russh::{MethodKind, MethodSet, SshId};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::debug;

use crate::error::SimError;
use crate::fixture::{Fixture, Flavor, Listener, ListenerKind};
use crate::state::Shared;

pub use events::{ExecAnswer, SshAuth, SshEvent, SshEventKind};
pub use keys::{
    ALICE_ED25519, ALICE_RSA, BOB_ED25519, CLIENT_KEYS, ClientKey, DEPLOY_ED25519, DEPLOY_RSA,
    ENCRYPTED_ED25519, STRANGER_ED25519, known_hosts_lines, published_host_keys,
};
pub(crate) use links::{dc_clone_href, dc_ssh_port};

/// A bound SSH listener's settings.
struct SshListener {
    flavour: Flavor,
    config: Arc<russh::server::Config>,
    /// The host keys served, as OpenSSH public key lines.
    host_keys: Vec<String>,
    connections: AtomicU64,
}

/// What every SSH connection shares: the fixture's keys, each listener's settings, the log.
pub(crate) struct SshRt {
    pub(crate) log: events::SshLog,
    index: keys::KeyIndex,
    /// By listener index; None for listeners that are not SSH.
    listeners: Vec<Option<SshListener>>,
}

impl SshRt {
    /// Parses the fixture's keys and loads each SSH listener's host keys.
    pub(crate) fn new(f: &Fixture) -> Result<SshRt, SimError> {
        let index = keys::KeyIndex::new(f).map_err(SimError::Fixture)?;
        let listeners = f
            .listeners
            .iter()
            .map(listener)
            .collect::<Result<Vec<_>, String>>()
            .map_err(SimError::Fixture)?;
        Ok(SshRt {
            log: events::SshLog::new(f.record_requests),
            index,
            listeners,
        })
    }

    /// The host keys a listener serves (empty for a listener that is not SSH).
    pub(crate) fn host_keys(&self, idx: usize) -> Vec<String> {
        self.listeners
            .get(idx)
            .and_then(Option::as_ref)
            .map(|l| l.host_keys.clone())
            .unwrap_or_default()
    }
}

fn listener(l: &Listener) -> Result<Option<SshListener>, String> {
    if l.kind != ListenerKind::Ssh {
        if l.retired_rsa_host_key {
            return Err(format!(
                "listener {}: retiredRsaHostKey is for Cloud SSH listeners",
                l.name
            ));
        }
        return Ok(None);
    }
    let flavour = match l.serves.as_slice() {
        [f] => *f,
        _ => {
            return Err(format!(
                "listener {}: an ssh listener serves one flavour: serves: [cloud] or [datacenter]",
                l.name
            ));
        }
    };
    if l.retired_rsa_host_key && flavour != Flavor::Cloud {
        return Err(format!(
            "listener {}: retiredRsaHostKey is for Cloud (Data Center has its own one key)",
            l.name
        ));
    }
    let keys = keys::host_keys(flavour, l.retired_rsa_host_key)?;
    let host_keys = keys
        .iter()
        .filter_map(|k| keys::public_line(k.public_key()))
        .collect();
    let mut methods = MethodSet::empty();
    methods.push(MethodKind::PublicKey);
    let config = russh::server::Config {
        server_id: SshId::Standard(Cow::Borrowed(match flavour {
            // Cloud's server calls itself conker (`conker_<build> <build>` in public `ssh -v`
            // transcripts); the build part here is the simulator's.
            Flavor::Cloud => "SSH-2.0-conker_bbconn-sim",
            // Not confirmed: Bitbucket Data Center is taken to hide Apache MINA's version.
            Flavor::Datacenter => "SSH-2.0-SSHD-UNKNOWN",
        })),
        methods,
        // Tests offer refused keys on purpose; the constant-time delay would only slow them.
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys,
        // A client that stops talking is dropped rather than held until shutdown.
        inactivity_timeout: Some(Duration::from_secs(60)),
        nodelay: true,
        // Data Center does not send RFC 8308's server-sig-algs, but russh 0.65 sends it to
        // every client that lists ext-info-c (server/session.rs `maybe_send_ext_info`), with
        // no setting to turn it off: the EXT_INFO is encrypted, so nothing outside russh can
        // drop it. Both flavours therefore send it.
        ..Default::default()
    };
    Ok(Some(SshListener {
        flavour,
        config: Arc::new(config),
        host_keys,
        connections: AtomicU64::new(0),
    }))
}

/// Accepts connections on an SSH listener until `stop`; then disconnects them all.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    rt: Arc<SshRt>,
    idx: usize,
    tcp: TcpListener,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    conns.spawn(serve(shared.clone(), rt.clone(), idx, stream, peer, stop.clone()));
                }
                Err(e) => {
                    debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    // Each connection saw the stop too and is disconnecting; give them a moment, then end them.
    let drained = tokio::time::timeout(Duration::from_secs(2), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

async fn serve(
    shared: Arc<Shared>,
    rt: Arc<SshRt>,
    idx: usize,
    stream: TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let Some(l) = rt.listeners.get(idx).and_then(Option::as_ref) else {
        return;
    };
    let n = l.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let name = shared.listeners[idx].name.clone();
    rt.log.push(&name, n, SshEventKind::Connected { peer });
    let (config, flavour) = (l.config.clone(), l.flavour);
    let handler = session::Conn::new(shared, rt.clone(), idx, n, flavour);
    // run_stream reads the client's identification line: bound it, as a silent client would
    // otherwise hold the task forever.
    let started = tokio::select! {
        _ = stop.changed() => return,
        r = tokio::time::timeout(
            Duration::from_secs(10),
            russh::server::run_stream(config, stream, handler),
        ) => r,
    };
    let session = match started {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(listener = %name, error = %e, "SSH handshake failed");
            return;
        }
        Err(_) => {
            debug!(listener = %name, "SSH identification timed out");
            return;
        }
    };
    // The session runs in a task of russh's own, so shutdown must tell it to disconnect.
    let handle = session.handle();
    tokio::select! {
        r = session => if let Err(e) = r {
            debug!(listener = %name, error = %e, "SSH connection ended with an error");
        },
        _ = stop.changed() => {
            let _ = handle
                .disconnect(russh::Disconnect::ByApplication, "shutting down".into(), String::new())
                .await;
        }
    }
}
