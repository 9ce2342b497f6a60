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
pub mod ssh;

mod cloud;
mod dc;
mod error;
mod git;
mod http;
mod model;
mod proxy;
mod running;
mod server;
mod state;

// The crate's face; modules import each other by path, never through this root.
pub use error::SimError;
pub use fixture::Fixture;
pub use pki::{CertMode, Pki};
pub use running::{Running, Simulator};
pub use ssh::{SshAuth, SshEvent, SshEventKind};
pub use state::RecordedRequest;
