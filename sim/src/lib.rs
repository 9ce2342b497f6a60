//! A Bitbucket Cloud and Data Center simulator for bbconn's tests, benchmarks and demo.
//!
//! It answers the read-only probes bbconn makes the way Atlassian documents them
//! (docs/design/bitbucket-api.md lists each fact and its source), with JSON shaped as
//! Atlassian's OpenAPI descriptions say, over real TLS with certificates minted by [`pki::Pki`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), bbconn_sim::SimError> {
//! let pki = bbconn_sim::pki::Pki::new();
//! let fixture = bbconn_sim::fixture::Fixture::from_yaml("listeners: [{name: cloud, serves: [cloud]}]")?;
//! let running = bbconn_sim::Simulator::start(fixture, &pki).await?;
//! let addr = running.addr("cloud");
//! # let _ = addr;
//! running.shutdown().await;
//! # Ok(()) }
//! ```

// Handlers return `Result<_, Response>`: an early answer is the natural error value here.
#![allow(clippy::result_large_err)]

pub mod fixture;
pub mod pki;

mod cloud;
mod dc;
mod git;
mod http;
mod model;
mod proxy;
mod server;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;

pub use fixture::Fixture;
pub use pki::{CertMode, Pki};

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid fixture: {0}")]
    Fixture(String),
    #[error("listener {listener}: cannot bind {bind}: {source}")]
    Bind {
        listener: String,
        bind: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    #[error("TLS configuration for listener {listener}: {source}")]
    Tls {
        listener: String,
        source: rustls::Error,
    },
}

/// One HTTP request the simulator answered (CONNECT requests to a proxy listener included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The listener's name in the fixture.
    pub listener: String,
    pub method: String,
    /// The path (for CONNECT: the `host:port` target).
    pub path: String,
    pub query: Option<String>,
    /// The raw `Authorization` header (for CONNECT: `Proxy-Authorization`).
    pub authorization: Option<String>,
    /// The status answered; 0 when a `reset` fault closed the connection instead.
    pub status: u16,
}

/// Entry point: see [`Simulator::start`].
pub struct Simulator;

impl Simulator {
    /// Binds every listener of the fixture and serves until the returned handle is dropped or
    /// shut down.
    pub async fn start(fixture: Fixture, pki: &Pki) -> Result<Running, SimError> {
        server::start(fixture, pki).await
    }
}

/// A running simulator. Dropping it stops every listener.
pub struct Running {
    shared: Arc<state::Shared>,
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
