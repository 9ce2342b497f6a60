//! `make bench-operator`: the operator on the local control plane with the simulator. For N
//! connections (1,000 and 10,000; 100 namespaces; 50 distinct credentials) it reports the time to
//! all Ready, the operator's peak RSS, Bitbucket requests per check interval, API-server requests,
//! status writes at steady state, and Secret-rotation-to-Ready latency (p50, p99).
//! `BBCONN_BENCH_SIZES=1000` runs one size only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

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
const INTERVAL_SECS: u64 = 30;

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

async fn count_ready(api: &Api<BitbucketConnection>) -> usize {
    let list = api.list(&ListParams::default()).await.unwrap();
    list.items
        .iter()
        .filter(|c| {
            c.status
                .as_ref()
                .and_then(|s| s.conditions.iter().find(|x| x.type_ == "Ready"))
                .is_some_and(|r| r.status == "True")
        })
        .count()
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
    let sizes: Vec<usize> = std::env::var("BBCONN_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 10_000]);
    for n in sizes {
        run(n).await;
    }
}

async fn run(n: usize) {
    println!(
        "\n== {n} connections, {NAMESPACES} namespaces, {CREDENTIALS} credentials, interval {INTERVAL_SECS}s =="
    );
    let cluster = Cluster::start(&format!("bench{n}"));
    let admin = cluster.client().await;
    let pki = Pki::new();
    let sim = Simulator::start(Fixture::from_yaml(&fixture()).unwrap(), &pki)
        .await
        .unwrap();
    let port = sim.addr("dc").unwrap().port();
    apply(
        &admin,
        &std::fs::read_to_string(
            common::cluster::repo().join("crds/bbconn.dev_bitbucketconnections.yaml"),
        )
        .unwrap(),
    )
    .await;
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
    let op = Operator::start(&sa, "bench", &cluster.dir, &flags);
    let api: Api<BitbucketConnection> = Api::all(admin.clone());
    let before = apiserver_requests(&admin).await;
    sim.clear_requests();

    // Create the connections, as fast as the API server takes them.
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let admin = admin.clone();
            async move {
                let ns = format!("bench-{:03}", i % NAMESPACES);
                let cred = (i / NAMESPACES) % CREDENTIALS;
                let conn = serde_json::json!({
                    "apiVersion": "bbconn.dev/v1alpha1", "kind": "BitbucketConnection",
                    "metadata": {"name": format!("c{i:05}"), "namespace": ns},
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
    let mut ready = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        ready = count_ready(&api).await;
        if ready >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let all_ready = started.elapsed();
    println!(
        "  created {n} in {:.1}s; all Ready after {:.1}s ({ready}/{n} Ready)",
        created.as_secs_f64(),
        all_ready.as_secs_f64()
    );
    let after_ready = apiserver_requests(&admin).await;
    let writes_to_ready = op.metric("bbconn_status_writes_total").unwrap_or(0.0);
    println!(
        "  API-server requests until Ready: {:.0} in all (bench included), {:.0} status patches; operator status writes: {writes_to_ready:.0}",
        after_ready.0 - before.0,
        after_ready.1 - before.1
    );
    let bb_to_ready = sim.request_count();
    println!(
        "  Bitbucket requests until Ready: {bb_to_ready} ({:.2} per connection)",
        bb_to_ready as f64 / n as f64
    );

    // Steady state over one check interval.
    sim.clear_requests();
    let w0 = op.metric("bbconn_status_writes_total").unwrap_or(0.0);
    let a0 = apiserver_requests(&admin).await;
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS + 3)).await;
    let a1 = apiserver_requests(&admin).await;
    let w1 = op.metric("bbconn_status_writes_total").unwrap_or(0.0);
    let reconciles = op
        .metric("bbconn_reconcile_total{result=\"ready\"}")
        .unwrap_or(0.0);
    println!(
        "  steady state, one interval ({}s): {} Bitbucket requests, {:.0} status writes, {:.0} API-server requests ({:.0} ready reconciles so far)",
        INTERVAL_SECS + 3,
        sim.request_count(),
        w1 - w0,
        a1.0 - a0.0 - 2.0,
        reconciles
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
            .filter(|c| c.spec.auth.secret_ref.name == name)
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
    println!(
        "  Secret rotation to Ready ({} rotations): p50 {:.0} ms, p99 {:.0} ms",
        latencies.len(),
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0
    );
    println!(
        "  operator RSS: peak {:.1} MiB, now {:.1} MiB",
        rss_kib(&op, "VmHWM:").unwrap_or(0) as f64 / 1024.0,
        rss_kib(&op, "VmRSS:").unwrap_or(0) as f64 / 1024.0
    );
    drop(op);
    sim.shutdown().await;
}
