//! The simulator as a test holds it: started from a fixture, asked what it was sent, stopped.

use crate::error::SimError;
use crate::fixture::Fixture;
use crate::pki::Pki;
use crate::server;
use crate::ssh::{self, SshEvent};
use crate::state::{self, RecordedRequest};
use std::net::SocketAddr;
use std::sync::Arc;

/// Entry point: see [`Simulator::start`].
pub struct Simulator;

impl Simulator {
    /// Binds every listener of the fixture and serves until the returned handle is dropped or
    /// shut down.
    pub async fn start(fixture: Fixture, pki: &Pki) -> Result<Running, SimError> {
        let started = server::start(fixture, pki).await?;
        Ok(Running {
            shared: started.shared,
            ssh: started.ssh,
            shutdown: started.shutdown,
            tasks: started.tasks,
        })
    }
}

/// A running simulator. Dropping it stops every listener.
pub struct Running {
    shared: Arc<state::Shared>,
    ssh: Arc<ssh::SshRt>,
    shutdown: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("listeners", &self.listeners())
            .finish_non_exhaustive()
    }
}

impl Running {
    /// The bound address of a listener (with the real port when the fixture said port 0).
    pub fn addr(&self, listener: &str) -> Option<SocketAddr> {
        self.shared.addr(listener)
    }

    /// Every listener's name and bound address, in fixture order.
    pub fn listeners(&self) -> Vec<(String, SocketAddr)> {
        self.shared
            .listeners
            .iter()
            .map(|l| (l.name.clone(), l.addr))
            .collect()
    }

    /// Every HTTP request served, in the order the answers were completed (empty when the
    /// fixture turned `recordRequests` off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// How many requests were served (counted even when recording is off).
    pub fn request_count(&self) -> usize {
        self.shared.request_count()
    }

    /// Forgets the recorded requests (the count is not reset).
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }

    /// Data Center: consecutive failed logins per user slug (a successful login resets it).
    pub fn failed_logins(&self) -> std::collections::BTreeMap<String, u32> {
        self.shared.dc.failed_logins()
    }

    /// Data Center: the users (slugs) now behind a CAPTCHA: every Basic request for them is
    /// refused until [`Running::reset_failed_logins`]. Empty when no account was locked.
    pub fn captcha_users(&self) -> Vec<String> {
        let after = self.shared.fixture.datacenter.captcha_after_failures;
        if after == 0 {
            return Vec::new();
        }
        self.failed_logins()
            .into_iter()
            .filter(|(_, n)| *n >= after)
            .map(|(u, _)| u)
            .collect()
    }

    /// Data Center: clears the failed-login count of one user (or of all), as solving the
    /// CAPTCHA on the web page or an administrator's "Clear CAPTCHA" does.
    pub fn reset_failed_logins(&self, user: Option<&str>) {
        self.shared.dc.reset_failed_logins(user);
    }

    /// The host keys an SSH listener serves, as OpenSSH public key lines (`ssh-ed25519
    /// AAAA...`, no comment); empty for a listener that is not SSH.
    pub fn ssh_host_keys(&self, listener: &str) -> Vec<String> {
        self.shared
            .listeners
            .iter()
            .position(|l| l.name == listener)
            .map(|i| self.ssh.host_keys(i))
            .unwrap_or_default()
    }

    /// known_hosts lines for an SSH listener's host keys under `host` and `port` (written
    /// `[host]:port` unless the port is 22), for `ssh -o UserKnownHostsFile=...`.
    pub fn ssh_known_hosts(&self, listener: &str, host: &str, port: u16) -> Vec<String> {
        ssh::known_hosts_lines(host, port, &self.ssh_host_keys(listener))
    }

    /// Everything the SSH listeners saw, in order: connections, key checks, commands, other
    /// requests (empty when the fixture turned `recordRequests` off).
    pub fn ssh_events(&self) -> Vec<SshEvent> {
        self.ssh.log.events()
    }

    /// Forgets the SSH events.
    pub fn clear_ssh_events(&self) {
        self.ssh.log.clear();
    }

    /// Stops accepting, closes open connections, and waits for the listener tasks to end.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
