//! Integration tests of the simulator over real sockets (one test binary, to keep builds short).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod binary;
mod clone;
mod cloud;
mod common;
mod datacenter;
mod fixtures;
mod openapi;
mod real_answers;
mod ssh;
mod transport;
