//! `bbconn check`: the operator's checks without a cluster, for pipelines.

use crate::api::BitbucketConnectionStatus;
use crate::engine::{self, Env, Report, Target};
use crate::manifests::{self, Connection};
use crate::status::{self, Readiness};
use crate::transport::address::{AddressPolicy, ClassOverride, parse_net};
use crate::transport::{ConnectTo, NetConfig, ResolveOverride};
use futures::StreamExt;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// Options that shape the network, shared by `run` and `check`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NetArgs {
    /// Treat addresses in CIDR as public or private (repeatable; longest prefix wins).
    #[arg(long = "address-class", value_name = "CIDR=public|private")]
    pub address_class: Vec<ClassOverride>,
    /// Resolve HOST:PORT to ADDR, as curl does (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<ResolveOverride>,
    /// Connect to CONNECT_HOST:CONNECT_PORT for HOST:PORT, as curl does (repeatable).
    #[arg(
        long = "connect-to",
        value_name = "HOST:PORT:CONNECT_HOST:CONNECT_PORT"
    )]
    pub connect_to: Vec<ConnectTo>,
    /// Never connect to addresses in CIDR, besides link-local (repeatable).
    #[arg(long = "deny-destination", value_name = "CIDR", value_parser = parse_net)]
    pub deny_destination: Vec<ipnet::IpNet>,
    /// Seconds to wait for DNS, TCP, a proxy or a TLS handshake.
    #[arg(long, default_value_t = 5)]
    pub connect_timeout: u64,
    /// Seconds to wait for each Bitbucket answer.
    #[arg(long, default_value_t = 10)]
    pub request_timeout: u64,
    /// The egress proxy (http://HOST:PORT, HTTP CONNECT) for Public servers whose spec names
    /// none. Default: HTTPS_PROXY, else https_proxy; "" for none.
    #[arg(long, value_name = "URL")]
    pub egress_proxy: Option<String>,
    /// Hosts reached without the operator-wide egress proxy, as NO_PROXY reads (names, domain
    /// suffixes, *, IPs, CIDRs; comma-separated). Default: NO_PROXY, else no_proxy.
    #[arg(long, value_name = "LIST")]
    pub no_proxy: Option<String>,
}

/// The first of the environment variables that is set.
fn env_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok())
}

impl NetArgs {
    /// The network configuration; the proxy environment is read here, once, at start.
    pub fn net_config(&self) -> NetConfig {
        let egress_proxy = self
            .egress_proxy
            .clone()
            .or_else(|| env_any(&["HTTPS_PROXY", "https_proxy"]))
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| {
                let s = s.trim();
                // curl takes a proxy without a scheme as http://.
                let with_scheme = if s.contains("://") {
                    s.to_string()
                } else {
                    format!("http://{s}")
                };
                url::Url::parse(&with_scheme).ok()
            });
        let no_proxy = self
            .no_proxy
            .clone()
            .or_else(|| env_any(&["NO_PROXY", "no_proxy"]))
            .unwrap_or_default()
            .parse()
            .unwrap_or_default();
        NetConfig {
            egress_proxy,
            no_proxy,
            policy: AddressPolicy::new(self.address_class.clone(), self.deny_destination.clone()),
            resolve: self.resolve.clone(),
            connect_to: self.connect_to.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            ..NetConfig::default()
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Table,
    Json,
}

#[derive(clap::Args, Clone, Debug)]
pub struct CheckArgs {
    /// Files holding BitbucketConnection, Secret and ConfigMap documents ("-" for stdin).
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// Namespace for documents that name none.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    /// Connections checked at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    #[command(flatten)]
    pub net: NetArgs,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    namespace: &'a str,
    name: &'a str,
    status: &'a BitbucketConnectionStatus,
}

/// Checks every connection concurrently; results in input order.
pub async fn check_all(
    env: &std::sync::Arc<Env>,
    connections: &[Connection],
    concurrency: usize,
) -> Vec<Report> {
    futures::stream::iter(connections.iter().map(|c| {
        engine::run(
            env,
            Target {
                namespace: &c.namespace,
                name: &c.name,
                spec: &c.spec,
                secret: &c.secret,
                ca_bundle: c.ca_bundle.as_ref(),
                fresh: false,
                egress_proxy_secret: c.egress_proxy_secret.as_ref(),
            },
        )
    }))
    .buffered(concurrency.max(1))
    .collect()
    .await
}

/// Runs `bbconn check`; returns the exit code (0 all Ready, 1 some not, 2 unusable input).
pub async fn check(args: CheckArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let connections = match manifests::load_files(&args.files, &args.namespace) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "bbconn check: {e}");
            return 2;
        }
    };
    let env = std::sync::Arc::new(Env::new(args.net.net_config()));
    let reports = check_all(&env, &connections, args.concurrency).await;
    let now = jiff::Timestamp::now();
    let statuses: Vec<BitbucketConnectionStatus> = connections
        .iter()
        .zip(&reports)
        .map(|(c, r)| {
            status::build(
                r,
                &status::remedy_context(&c.namespace, &c.spec),
                None,
                None,
                now,
            )
        })
        .collect();
    let all_ready = reports
        .iter()
        .all(|r| status::readiness(r) == Readiness::Ready);
    let written = match args.output {
        Output::Json => {
            let items: Vec<JsonItem> = connections
                .iter()
                .zip(&statuses)
                .map(|(c, s)| JsonItem {
                    namespace: &c.namespace,
                    name: &c.name,
                    status: s,
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &items)
                .map_err(std::io::Error::other)
                .and_then(|_| writeln!(out))
        }
        Output::Table => write_table(out, &connections, &statuses),
    };
    if let Err(e) = written {
        let _ = writeln!(err, "bbconn check: writing the output failed: {e}");
        return 2;
    }
    if all_ready { 0 } else { 1 }
}

const MAX_COLUMN: usize = 120;

fn write_table(
    out: &mut dyn Write,
    connections: &[Connection],
    statuses: &[BitbucketConnectionStatus],
) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = connections
        .iter()
        .zip(statuses)
        .map(|(c, s)| {
            let ready = s.conditions.iter().find(|c| c.type_ == status::READY);
            let first = s
                .problems
                .iter()
                .find(|p| p.severity == "Error")
                .or(s.problems.first());
            [
                format!("{}/{}", c.namespace, c.name),
                ready.map_or("Unknown".into(), |r| r.status.clone()),
                first.map_or("-".into(), |p| p.check.clone()),
                first.map_or("-".into(), |p| p.cause.clone()),
            ]
        })
        .collect();
    let header = ["CONNECTION", "READY", "CHECK", "CAUSE"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            // Bounded: a format width over u16::MAX panics, and a column that wide helps no one.
            *w = (*w).max(cell.len()).min(MAX_COLUMN);
        }
    }
    let line = |cells: [&str; 4]| {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        )
    };
    writeln!(out, "{}", line(header))?;
    for (r, s) in rows.iter().zip(statuses) {
        writeln!(out, "{}", line([&r[0], &r[1], &r[2], &r[3]]).trim_end())?;
        for p in &s.problems {
            writeln!(
                out,
                "    {} {} {}: {}",
                p.severity, p.check, p.cause, p.message
            )?;
            writeln!(out, "      remedy: {}", p.remedy)?;
        }
    }
    Ok(())
}
