//! `make bench-operator`: the operator on the local control plane with the simulator. For N
//! connections (1,000, 10,000, and 30,000 across three shards; 100 namespaces; 50 distinct
//! credentials) it reports the time to all Ready (counted from a watch, so that measuring does
//! not load the API server), the operator's peak RSS, Bitbucket requests per check interval at
//! steady state (measured after ten intervals, against the bound 1.2 x distinct inputs x
//! requests per check),
//! API-server requests and status writes at steady state, Secret-rotation-to-Ready latency (p50,
//! p99), and the connections left without a current status (must be 0). Each size runs
//! `BBCONN_BENCH_RUNS` times (3); the worst of each figure is reported.
//! `BBCONN_BENCH_SIZES=1000` runs one size only; `30000x3` spreads 30,000 connections over three
//! shards (`bbconn run --shard`, label `bbconn.dev/shard`), one operator process each: RSS is
//! the largest process's, requests and writes are the sum, and the request bound counts
//! distinct inputs per shard (processes do not share verdicts).
//!
//! The size `discovery` (in the default list; `BBCONN_BENCH_SIZES=discovery` runs it alone):
//! `BBCONN_BENCH_DISCOVERY` (2,000; 0 leaves it out) Flux GitRepositories over HTTPS in 100
//! namespaces and as many Argo CD repository Secrets (username and token as password), on the real
//! CRDs, spread over the 50 credentials, created while `bbconn run --discover argocd,flux` runs
//! under the chart's RBAC (details in `benches/operator/discovery.rs`). It reports the time from
//! the last source created to all their connections Ready, the operator's peak RSS, and Bitbucket
//! requests per interval at steady state (a person sets `interval: 10s` on every generated
//! connection; ten intervals, then three measured) against 1.2 x distinct inputs x requests per
//! check, where a distinct input is a (consumer, credential) pair (the two consumers send a token
//! differently, so their checks are not shared) and requests per check are what the first source of
//! each consumer cost alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "operator/discovery.rs"]
mod discovery;

use bbconn::api::BitbucketConnection;
use bbconn_sim::{Fixture, Pki, Simulator};
use common::cluster::{Cluster, Operator, apply};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use std::time::{Duration, Instant};

const NAMESPACES: usize = 100;
const CREDENTIALS: usize = 50;
/// Short, so that ten intervals pass quickly.
const INTERVAL_SECS: u64 = 10;
/// Intervals before steady state is measured, and intervals measured.
const SETTLE_INTERVALS: u64 = 10;
const MEASURED_INTERVALS: u64 = 3;

/// Distinct (credential, server, requirements) per shard, summed over the shards: connection i
/// uses credential (i / NAMESPACES) % CREDENTIALS and shard i % shards.
fn distinct(n: usize, shards: usize) -> usize {
    (0..shards)
        .map(|j| {
            let creds: std::collections::BTreeSet<usize> = (j..n)
                .step_by(shards)
                .map(|i| (i / NAMESPACES) % CREDENTIALS)
                .collect();
            creds.len()
        })
        .sum()
}

fn shard_name(i: usize, shards: usize) -> Option<String> {
    (shards > 1).then(|| format!("s{}", i % shards))
}

/// One run's figures.
#[derive(Clone, Debug, Default)]
struct Figures {
    all_ready_after_first: f64,
    all_ready_after_last: f64,
    peak_rss_mib: f64,
    requests_per_interval: f64,
    requests_per_check: f64,
    writes_per_interval: f64,
    apiserver_per_interval: f64,
    rotation_p50_ms: f64,
    rotation_p99_ms: f64,
    unchecked: usize,
}

impl Figures {
    fn worst(runs: &[Figures]) -> Figures {
        let max = |f: fn(&Figures) -> f64| runs.iter().map(f).fold(0.0, f64::max);
        Figures {
            all_ready_after_first: max(|f| f.all_ready_after_first),
            all_ready_after_last: max(|f| f.all_ready_after_last),
            peak_rss_mib: max(|f| f.peak_rss_mib),
            requests_per_interval: max(|f| f.requests_per_interval),
            requests_per_check: runs
                .iter()
                .map(|f| f.requests_per_check)
                .fold(f64::MAX, f64::min),
            writes_per_interval: max(|f| f.writes_per_interval),
            apiserver_per_interval: max(|f| f.apiserver_per_interval),
            rotation_p50_ms: max(|f| f.rotation_p50_ms),
            rotation_p99_ms: max(|f| f.rotation_p99_ms),
            unchecked: runs.iter().map(|f| f.unchecked).max().unwrap_or(0),
        }
    }
}

fn fixture() -> String {
    let mut f = String::from(
        "recordRequests: true\nlisteners:\n  - { name: dc, tls: good, hosts: [bitbucket.example.com] }\ndatacenter:\n  users:\n",
    );
    for c in 0..CREDENTIALS {
        f.push_str(&format!("    - {{ name: user{c}, id: {} }}\n", c + 1));
    }
    f.push_str("  projects:\n    - key: PROJ\n      repositories:\n        - slug: app\n          access: {");
    let access: Vec<String> = (0..CREDENTIALS)
        .map(|c| format!("user{c}: REPO_ADMIN"))
        .collect();
    f.push_str(&access.join(", "));
    f.push_str("}\n  tokens:\n");
    for c in 0..CREDENTIALS {
        for (kind, extra) in [("good", ""), ("spare", ""), ("revoked", ", revoked: true")] {
            f.push_str(&format!(
                "    - {{ id: \"{c}{kind}\", value: bench-{kind}-{c:03}, kind: personal, user: user{c}, permissions: [PROJECT_READ, REPO_ADMIN]{extra} }}\n"
            ));
        }
    }
    f
}

async fn ensure_namespace(client: &Client, ns: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let _ = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await;
}

fn rss_kib(op: &Operator, field: &str) -> Option<u64> {
    let pid = op.pid();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Sum of the API server's own request counter, by verb, for one resource ("" for all).
async fn apiserver_requests(client: &Client) -> (f64, f64) {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    let text = client.request_text(req).await.unwrap_or_default();
    let mut total = 0.0;
    let mut patches = 0.0;
    for l in text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
    {
        let v: f64 = l
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        total += v;
        if l.contains("resource=\"bitbucketconnections\"")
            && (l.contains("verb=\"PATCH\"") || l.contains("verb=\"APPLY\""))
        {
            patches += v;
        }
    }
    (total, patches)
}

/// Connections without a status for their current generation.
async fn count_unchecked(api: &Api<BitbucketConnection>) -> usize {
    let list = list_all(api).await;
    list.items
        .iter()
        .filter(|c| {
            c.status
                .as_ref()
                .is_none_or(|s| s.observed_generation != c.metadata.generation)
        })
        .count()
}

/// The list, retried: a loaded API server may drop a connection, which is not the operator's
/// figure to report.
async fn list_all(api: &Api<BitbucketConnection>) -> kube::api::ObjectList<BitbucketConnection> {
    let mut tries = 0;
    loop {
        match api.list(&ListParams::default()).await {
            Ok(l) => return l,
            Err(e) if tries < 10 => {
                tries += 1;
                eprintln!("  (listing again after: {e})");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => panic!("listing connections: {e}"),
        }
    }
}

fn is_ready(c: &BitbucketConnection) -> bool {
    c.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|x| x.type_ == "Ready"))
        .is_some_and(|r| r.status == "True")
}

async fn count_ready(api: &Api<BitbucketConnection>) -> usize {
    list_all(api)
        .await
        .items
        .iter()
        .filter(|c| is_ready(c))
        .count()
}

/// Ready connections, as a watch sees them: polling a list of 30,000 connections every half
/// second would load the API server the operators are measured against.
struct ReadyCount {
    store: kube::runtime::reflector::Store<BitbucketConnection>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyCount {
    fn start(api: Api<BitbucketConnection>) -> ReadyCount {
        use kube::runtime::{WatchStreamExt, reflector, watcher};
        let (store, writer) = reflector::store();
        let stream = reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff()
            .applied_objects();
        let task = tokio::spawn(async move {
            futures::pin_mut!(stream);
            while stream.next().await.is_some() {}
        });
        ReadyCount { store, task }
    }

    fn ready(&self) -> usize {
        self.store.state().iter().filter(|c| is_ready(c)).count()
    }
}

impl Drop for ReadyCount {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    // "N", "NxSHARDS" or "discovery".
    let list = std::env::var("BBCONN_BENCH_SIZES")
        .unwrap_or_else(|_| "1000,10000,30000x3,discovery".into());
    let with_discovery = list.split(',').any(|x| x.trim() == "discovery");
    let sizes: Vec<(usize, usize)> = list
        .split(',')
        .filter_map(|x| {
            let (n, k) = x.trim().split_once('x').unwrap_or((x.trim(), "1"));
            Some((n.parse().ok()?, k.parse::<usize>().ok()?.max(1)))
        })
        .collect();
    let runs: usize = std::env::var("BBCONN_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let mut summary = Vec::new();
    for (n, shards) in sizes {
        let figures: Vec<Figures> = {
            let mut v = Vec::new();
            for r in 0..runs {
                println!("\n-- run {} of {runs}", r + 1);
                v.push(run(n, shards).await);
            }
            v
        };
        summary.push((n, shards, Figures::worst(&figures)));
    }
    let discovery: usize = std::env::var("BBCONN_BENCH_DISCOVERY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let mut discovered = None;
    if with_discovery && discovery > 0 {
        let mut v = Vec::new();
        for r in 0..runs {
            println!("\n-- run {} of {runs}", r + 1);
            v.push(discovery::run(discovery).await);
        }
        discovered = Some(discovery::Figures::worst(&v));
    }
    println!("\n== worst of {runs} runs per size ==");
    for (n, shards, w) in summary {
        println!(
            "{n} connections on {shards} shard(s): all Ready {:.1}s after the first create, {:.1}s after the last; peak RSS {:.1} MiB (largest process); \
             steady state per {INTERVAL_SECS}s interval: {:.0} Bitbucket requests ({:.2} x {} distinct inputs x {:.0} requests per check), \
             {:.1} status writes, {:.0} API-server requests; rotation p50 {:.0} ms, p99 {:.0} ms; without a current status: {}",
            w.all_ready_after_first,
            w.all_ready_after_last,
            w.peak_rss_mib,
            w.requests_per_interval,
            w.requests_per_interval / (distinct(n, shards) as f64 * w.requests_per_check.max(1.0)),
            distinct(n, shards),
            w.requests_per_check,
            w.writes_per_interval,
            w.apiserver_per_interval,
            w.rotation_p50_ms,
            w.rotation_p99_ms,
            w.unchecked
        );
    }
    if let Some(w) = discovered {
        let n = discovery;
        println!(
            "discovery: {n} Flux GitRepositories and {n} Argo CD repository Secrets on {CREDENTIALS} credentials (created in {:.1}s): \
             all {} connections generated {:.1}s and Ready {:.1}s after the last source created; peak RSS {:.1} MiB; \
             steady state per {INTERVAL_SECS}s interval: {:.0} Bitbucket requests ({:.2} x the bound {}), {:.1} status writes, {:.0} API-server requests; \
             without a current status: {}",
            w.created_secs,
            2 * n,
            w.generated_after_last,
            w.ready_after_last,
            w.peak_rss_mib,
            w.requests_per_interval,
            w.ratio,
            w.bound_terms(n),
            w.writes_per_interval,
            w.apiserver_per_interval,
            w.unchecked
        );
    }
}

/// A control plane with bbconn's CRD, and the simulator serving [`fixture`].
async fn start(name: &str) -> (Cluster, Client, Pki, bbconn_sim::Running) {
    let cluster = Cluster::start(name);
    let admin = cluster.client().await;
    let pki = Pki::new();
    let sim = Simulator::start(Fixture::from_yaml(&fixture()).unwrap(), &pki)
        .await
        .unwrap();
    let crd = common::cluster::repo().join("crds/bbconn.dev_bitbucketconnections.yaml");
    apply(&admin, &std::fs::read_to_string(crd).unwrap()).await;
    (cluster, admin, pki, sim)
}

async fn run(n: usize, shards: usize) -> Figures {
    let mut fig = Figures::default();
    println!(
        "\n== {n} connections, {NAMESPACES} namespaces, {CREDENTIALS} credentials, {shards} shard(s), interval {INTERVAL_SECS}s =="
    );
    let (cluster, admin, pki, sim) = start(&format!("bench{n}x{shards}")).await;
    let port = sim.addr("dc").unwrap().port();
    apply(&admin, &common::cluster::deploy_rbac()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Namespaces, Secrets (one per credential per namespace) and the CA bundle.
    let ca_pem = pki.ca_pem();
    futures::stream::iter(0..NAMESPACES)
        .for_each_concurrent(16, |i| {
            let admin = admin.clone();
            let ca_pem = ca_pem.clone();
            async move {
                let ns = format!("bench-{i:03}");
                ensure_namespace(&admin, &ns).await;
                let cms: Api<ConfigMap> = Api::namespaced(admin.clone(), &ns);
                let cm = serde_json::json!({"metadata": {"name": "ca"}, "data": {"ca.crt": ca_pem}});
                let _ = cms.create(&PostParams::default(), &serde_json::from_value(cm).unwrap()).await;
                let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
                for c in 0..CREDENTIALS {
                    let s = serde_json::json!({"metadata": {"name": format!("cred-{c:03}")}, "stringData": {"token": format!("bench-good-{c:03}"), "tokenId": format!("{c}good")}});
                    let _ = secrets.create(&PostParams::default(), &serde_json::from_value(s).unwrap()).await;
                }
            }
        })
        .await;

    let sa = cluster
        .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
        .await;
    let flags = vec![
        "--address-class=127.0.0.0/8=public".to_string(),
        format!("--connect-to=bitbucket.example.com:443:127.0.0.1:{port}"),
        "--leader-election=false".to_string(),
    ];
    let ops: Vec<Operator> = (0..shards)
        .map(|j| {
            let mut f = flags.clone();
            f.extend(shard_name(j, shards).map(|s| format!("--shard={s}")));
            Operator::start(&sa, &format!("bench{j}"), &cluster.dir, &f)
        })
        .collect();
    let metric = |name: &str| -> f64 { ops.iter().filter_map(|o| o.metric(name)).sum() };
    let api: Api<BitbucketConnection> = Api::all(admin.clone());
    // The simulator's count is cumulative (clear_requests forgets the records only): deltas.
    let c0 = sim.request_count();

    let labels = |i: usize| match shard_name(i, shards) {
        Some(s) => serde_json::json!({"bbconn.dev/shard": s}),
        None => serde_json::json!({}),
    };
    // One check's requests: one connection alone, before the others.
    {
        let conn = serde_json::json!({
            "apiVersion": "bbconn.dev/v1alpha1", "kind": "BitbucketConnection",
            "metadata": {"name": "probe", "namespace": "bench-000", "labels": labels(0)},
            "spec": {
                "flavor": "DataCenter", "url": "https://bitbucket.example.com", "interval": format!("{INTERVAL_SECS}s"),
                "auth": {"method": "AccessToken", "secretRef": {"name": "cred-000"}},
                "tls": {"caBundleRef": {"kind": "ConfigMap", "name": "ca"}},
                "requirements": {"permissions": ["REPO_ADMIN"], "repositories": [{"name": "PROJ/app", "access": "Admin"}]}
            }
        });
        let probe: Api<BitbucketConnection> = Api::namespaced(admin.clone(), "bench-000");
        probe
            .create(
                &PostParams::default(),
                &serde_json::from_value(conn).unwrap(),
            )
            .await
            .unwrap();
        let t = Instant::now();
        while count_ready(&probe).await < 1 && t.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        fig.requests_per_check = (sim.request_count() - c0) as f64;
    }

    // Create the connections, as fast as the API server takes them.
    let counter = ReadyCount::start(api.clone());
    let before = apiserver_requests(&admin).await;
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let admin = admin.clone();
            async move {
                let ns = format!("bench-{:03}", i % NAMESPACES);
                let cred = (i / NAMESPACES) % CREDENTIALS;
                let conn = serde_json::json!({
                    "apiVersion": "bbconn.dev/v1alpha1", "kind": "BitbucketConnection",
                    "metadata": {"name": format!("c{i:05}"), "namespace": ns, "labels": labels(i)},
                    "spec": {
                        "flavor": "DataCenter", "url": "https://bitbucket.example.com", "interval": format!("{INTERVAL_SECS}s"),
                        "auth": {"method": "AccessToken", "secretRef": {"name": format!("cred-{cred:03}")}},
                        "tls": {"caBundleRef": {"kind": "ConfigMap", "name": "ca"}},
                        "requirements": {"permissions": ["REPO_ADMIN"], "repositories": [{"name": "PROJ/app", "access": "Admin"}]}
                    }
                });
                let api: Api<BitbucketConnection> = Api::namespaced(admin, &ns);
                api.create(&PostParams::default(), &serde_json::from_value(conn).unwrap()).await.unwrap();
            }
        })
        .await;
    let created = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline && counter.ready() <= n {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_ready = started.elapsed();
    drop(counter);
    // The watch's word, confirmed by a list.
    let ready = count_ready(&api).await;
    fig.all_ready_after_first = all_ready.as_secs_f64();
    fig.all_ready_after_last = (all_ready.saturating_sub(created)).as_secs_f64();
    println!(
        "  created {n} in {:.1}s; all Ready after {:.1}s ({ready}/{n} Ready)",
        created.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    let after_ready = apiserver_requests(&admin).await;
    let writes_to_ready = metric("bbconn_status_writes_total");
    println!(
        "  API-server requests until Ready: {:.0} in all (bench included), {:.0} status patches; operator status writes: {writes_to_ready:.0}",
        after_ready.0 - before.0,
        after_ready.1 - before.1
    );
    let bb_to_ready = sim.request_count() - c0 - fig.requests_per_check as usize;
    println!(
        "  Bitbucket requests until Ready: {bb_to_ready} ({:.2} per connection)",
        bb_to_ready as f64 / n as f64
    );

    // Steady state, after ten intervals (however the schedules have spread by then).
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS * SETTLE_INTERVALS)).await;
    let c1 = sim.request_count();
    let w0 = metric("bbconn_status_writes_total");
    let a0 = apiserver_requests(&admin).await;
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS * MEASURED_INTERVALS)).await;
    let a1 = apiserver_requests(&admin).await;
    let w1 = metric("bbconn_status_writes_total");
    let per = MEASURED_INTERVALS as f64;
    fig.requests_per_interval = (sim.request_count() - c1) as f64 / per;
    fig.writes_per_interval = (w1 - w0) / per;
    // The two /metrics reads of the bench itself are not the operator's.
    fig.apiserver_per_interval = (a1.0 - a0.0 - 2.0) / per;
    println!(
        "  steady state after {SETTLE_INTERVALS} intervals, per {INTERVAL_SECS}s interval (over {MEASURED_INTERVALS}): {:.0} Bitbucket requests (bound: 1.2 x {} distinct inputs x {:.0} = {:.0}), {:.1} status writes, {:.0} API-server requests",
        fig.requests_per_interval,
        distinct(n, shards),
        fig.requests_per_check,
        1.2 * distinct(n, shards) as f64 * fig.requests_per_check,
        fig.writes_per_interval,
        fig.apiserver_per_interval,
    );

    // Secret rotation: revoked -> good, time until the connections using it are Ready.
    let mut latencies = Vec::new();
    for k in 0..20 {
        let ns = format!("bench-{:03}", k % NAMESPACES);
        let cred = k % CREDENTIALS;
        let secrets: Api<Secret> = Api::namespaced(admin.clone(), &ns);
        let name = format!("cred-{cred:03}");
        let set = |token: String| {
            let secrets = secrets.clone();
            let name = name.clone();
            async move {
                let p = serde_json::json!({"stringData": {"token": token}});
                secrets
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&p))
                    .await
                    .unwrap();
            }
        };
        let conns: Api<BitbucketConnection> = Api::namespaced(admin.clone(), &ns);
        let users: Vec<String> = conns
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .filter(|c| c.spec.auth_secret() == Some(name.as_str()))
            .map(|c| c.name_any())
            .collect();
        let ready_all = |want: &'static str| {
            let conns = conns.clone();
            let users = users.clone();
            async move {
                for u in &users {
                    let c = conns.get(u).await.unwrap();
                    let r = c
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.iter().find(|x| x.type_ == "Ready"))
                        .map(|r| r.status.clone());
                    if r.as_deref() != Some(want) {
                        return false;
                    }
                }
                true
            }
        };
        set(format!("bench-revoked-{cred:03}")).await;
        let t = Instant::now();
        while !ready_all("False").await && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        set(format!("bench-good-{cred:03}")).await;
        let t = Instant::now();
        while !ready_all("True").await && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        latencies.push(t.elapsed());
    }
    latencies.sort();
    fig.rotation_p50_ms = percentile(&latencies, 0.5).as_secs_f64() * 1000.0;
    fig.rotation_p99_ms = percentile(&latencies, 0.99).as_secs_f64() * 1000.0;
    println!(
        "  Secret rotation to Ready ({} rotations): p50 {:.0} ms, p99 {:.0} ms",
        latencies.len(),
        fig.rotation_p50_ms,
        fig.rotation_p99_ms
    );
    fig.unchecked = count_unchecked(&api).await;
    let kib = |field: &str| {
        ops.iter()
            .filter_map(|o| rss_kib(o, field))
            .max()
            .unwrap_or(0)
    };
    fig.peak_rss_mib = kib("VmHWM:") as f64 / 1024.0;
    println!(
        "  operator RSS (largest of {shards}): peak {:.1} MiB, now {:.1} MiB; connections without a current status: {}",
        fig.peak_rss_mib,
        kib("VmRSS:") as f64 / 1024.0,
        fig.unchecked
    );
    drop(ops);
    sim.shutdown().await;
    fig
}
