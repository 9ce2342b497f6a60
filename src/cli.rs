//! `bbconn check`: the operator's checks without a cluster, for pipelines.

use crate::api::BitbucketConnectionStatus;
use crate::engine::{self, Env, Report, Target};
use crate::manifests::{self, Connection};
pub use crate::net_args::NetArgs;
use crate::status::{self, Readiness};
use futures::StreamExt;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;

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
                secret: c.secret.as_ref(),
                ca_bundle: c.ca_bundle.as_ref(),
                fresh: false,
                egress_proxy_secret: c.egress_proxy_secret.as_ref(),
                ssh_secret: c.ssh_secret.as_ref(),
                known_hosts: c.known_hosts.as_ref(),
                withheld: None,
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
