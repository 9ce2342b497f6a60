//! `bbconn-sim --fixture FILE [--pki-dir DIR]`: serve a fixture until SIGINT/SIGTERM.
//!
//! Prints one JSON line to stdout once every listener is bound:
//! `{"listeners":{"name":"127.0.0.1:PORT",...},"ca":"DIR/ca.crt","caCert":"-----BEGIN..."}` (the
//! CA's PEM too, so a simulator in a Pod hands its CA over through `kubectl logs`), with
//! `"sshHostKeys":{"name":["ssh-ed25519 AAAA...",...],...}` when the fixture has SSH listeners
//! (for a known_hosts file). Logs go to stderr (`RUST_LOG`, default `info`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use bbconn_sim::{Fixture, Pki, Simulator};
use clap::Parser;
use serde_json::json;
use tracing::{error, info};

#[derive(Parser)]
#[command(
    name = "bbconn-sim",
    version,
    about = "A Bitbucket Cloud and Data Center simulator"
)]
struct Args {
    /// The YAML fixture to serve.
    #[arg(long)]
    fixture: PathBuf,
    /// Where to keep the CA (ca.crt, ca.key); reused when both exist. Default: a new
    /// directory under the system temp directory.
    #[arg(long)]
    pki_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let fixture = Fixture::from_file(&args.fixture)?;
    let dir = args
        .pki_dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("bbconn-sim-{}", std::process::id())));
    let pki = Pki::load_or_create(&dir)?;
    pki.save(&dir)?;
    let running = Simulator::start(fixture, &pki).await?;

    let listeners: serde_json::Map<String, serde_json::Value> = running
        .listeners()
        .into_iter()
        .map(|(name, addr)| (name, json!(addr.to_string())))
        .collect();
    let ssh_host_keys: serde_json::Map<String, serde_json::Value> = running
        .listeners()
        .into_iter()
        .map(|(name, _)| {
            let keys = running.ssh_host_keys(&name);
            (name, keys)
        })
        .filter(|(_, keys)| !keys.is_empty())
        .map(|(name, keys)| (name, json!(keys)))
        .collect();
    let ca = dir.join("ca.crt");
    let ca_cert = std::fs::read_to_string(&ca)?;
    let mut line =
        json!({"listeners": listeners, "ca": ca.display().to_string(), "caCert": ca_cert});
    if !ssh_host_keys.is_empty() {
        line["sshHostKeys"] = json!(ssh_host_keys);
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    drop(stdout);
    for (name, addr) in running.listeners() {
        info!(listener = %name, %addr, "listening");
    }

    wait_for_signal().await?;
    info!(requests = running.request_count(), "shutting down");
    running.shutdown().await;
    tracing::debug!("stopped");
    Ok(())
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}
