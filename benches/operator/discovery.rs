//! The discovery size: N Flux GitRepositories and N Argo CD repository Secrets on CREDENTIALS
//! distinct credentials, created while `bbconn run --discover argocd,flux` runs under the
//! chart's RBAC, on the real Flux and Argo CD CRDs.
//!
//! GitRepository i lives in namespace `bench-(i % NAMESPACES)` and reads a Flux Secret there
//! (`bearerToken`, `ca.crt`) holding token i % CREDENTIALS; Argo CD Secret i (namespace
//! `argocd`, `argocd.argoproj.io/secret-type: repository`) holds `url`, `username` and, as
//! `password`, the same token i % CREDENTIALS, and Argo CD trusts the simulator's CA through
//! `argocd-tls-certs-cm`. The 50 tokens are the fixture's `bench-good-NNN` personal tokens.
//! `BBCONN_BENCH_KEEP_LOG=FILE` keeps the operator's log of the last run there.

use super::common::cluster::{self as control, Operator, apply};
use super::{
    CREDENTIALS, INTERVAL_SECS, MEASURED_INTERVALS, NAMESPACES, ReadyCount, SETTLE_INTERVALS,
    apiserver_requests, count_unchecked, ensure_namespace, is_ready, rss_kib, start,
};
use bbconn::api::BitbucketConnection;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Client, ResourceExt};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const ARGO: &str = "argocd";

/// Where GitRepository i lives and which credential its Secret holds.
fn flux_of(i: usize) -> (String, usize) {
    (format!("bench-{:03}", i % NAMESPACES), i % CREDENTIALS)
}

/// The credential Argo CD Secret i holds.
fn argo_of(i: usize) -> usize {
    i % CREDENTIALS
}

/// Distinct inputs per consumer: connections share one run of the checks when everything
/// the checks send and trust is the same (src/engine/share.rs: the spec without the Secret's
/// name, the credential's values and how they are sent, the CA's bytes). A token Flux sends
/// as a bearer token and Argo CD as a password is two inputs; GitRepositories in different
/// namespaces on the same token (Secrets of the same name and content) are one.
pub fn distinct(n: usize) -> (usize, usize) {
    let flux: BTreeSet<usize> = (0..n).map(|i| flux_of(i).1).collect();
    let argo: BTreeSet<usize> = (0..n).map(argo_of).collect();
    (flux.len(), argo.len())
}

/// One run's figures.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    pub created_secs: f64,
    pub generated_after_last: f64,
    pub ready_after_last: f64,
    pub peak_rss_mib: f64,
    pub requests_per_interval: f64,
    /// One check's Bitbucket requests: (a Flux connection's, an Argo CD connection's).
    pub per_check: (f64, f64),
    pub bound: f64,
    /// Requests per interval over the bound.
    pub ratio: f64,
    pub writes_per_interval: f64,
    pub apiserver_per_interval: f64,
    pub unchecked: usize,
}

impl Figures {
    pub fn worst(runs: &[Figures]) -> Figures {
        let max = |f: fn(&Figures) -> f64| runs.iter().map(f).fold(0.0, f64::max);
        let min = |f: fn(&Figures) -> f64| runs.iter().map(f).fold(f64::MAX, f64::min);
        Figures {
            created_secs: max(|f| f.created_secs),
            generated_after_last: max(|f| f.generated_after_last),
            ready_after_last: max(|f| f.ready_after_last),
            peak_rss_mib: max(|f| f.peak_rss_mib),
            requests_per_interval: max(|f| f.requests_per_interval),
            per_check: (min(|f| f.per_check.0), min(|f| f.per_check.1)),
            bound: min(|f| f.bound),
            ratio: max(|f| f.ratio),
            writes_per_interval: max(|f| f.writes_per_interval),
            apiserver_per_interval: max(|f| f.apiserver_per_interval),
            unchecked: runs.iter().map(|f| f.unchecked).max().unwrap_or(0),
        }
    }

    /// The bound's terms, for the summary.
    pub fn bound_terms(&self, n: usize) -> String {
        let (df, da) = distinct(n);
        format!(
            "1.2 x ({df} Flux inputs x {:.0} + {da} Argo CD inputs x {:.0} requests per check) = {:.0}",
            self.per_check.0, self.per_check.1, self.bound
        )
    }
}

fn ar(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

/// The consumers' CRDs, from their Go modules (cached by tests/controlplane/consumer-crds.sh).
fn consumer_crds(repo: &std::path::Path) -> Vec<String> {
    let out = std::process::Command::new("bash")
        .arg(repo.join("tests/controlplane/consumer-crds.sh"))
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "consumer-crds.sh failed");
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
    [
        "argocd/application-crd.yaml",
        "flux/source.toolkit.fluxcd.io_gitrepositories.yaml",
    ]
    .iter()
    .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
    .collect()
}

/// Waits (at most `limit`) until `done` holds for the connections the watch sees.
async fn wait_for(counter: &ReadyCount, limit: Duration, done: impl Fn(&ReadyCount) -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !done(counter) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates one source: a GitRepository (`flux`) or an Argo CD repository Secret.
async fn create_source(admin: &Client, flux: bool, i: usize) {
    let url = "https://bitbucket.example.com/scm/PROJ/app.git";
    if flux {
        let (ns, cred) = flux_of(i);
        let obj = serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": format!("r{i:05}"), "namespace": ns},
            "spec": {"interval": "10m", "url": url, "ref": {"branch": "main"},
                     "secretRef": {"name": format!("cred-{cred:03}")}}
        });
        let ar = ar("source.toolkit.fluxcd.io", "v1", "GitRepository");
        let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), &ns, &ar);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(obj).unwrap(),
        )
        .await
        .unwrap();
    } else {
        let cred = argo_of(i);
        // As `argocd repo add URL --username U --password TOKEN` stores it.
        let s = serde_json::json!({
            "metadata": {"name": format!("repo-{i:05}"), "namespace": ARGO,
                         "labels": {"argocd.argoproj.io/secret-type": "repository"}},
            "stringData": {"type": "git", "url": url, "username": format!("user{cred}"),
                           "password": format!("bench-good-{cred:03}")}
        });
        let api: Api<Secret> = Api::namespaced(admin.clone(), ARGO);
        api.create(&PostParams::default(), &serde_json::from_value(s).unwrap())
            .await
            .unwrap();
    }
}

/// One run: the sources created while the operator runs, then ten intervals, then three
/// measured.
pub async fn run(n: usize) -> Figures {
    let mut fig = Figures::default();
    println!(
        "\n== discovery: {n} Flux GitRepositories ({NAMESPACES} namespaces) and {n} Argo CD repository Secrets, {CREDENTIALS} credentials =="
    );
    let (cluster, admin, pki, sim) = start(&format!("bench-discovery{n}")).await;
    let port = sim.addr("dc").unwrap().port();
    let repo = control::repo();
    for crd in consumer_crds(&repo) {
        apply(&admin, &crd).await;
    }
    apply(&admin, &control::deploy_rbac()).await;
    ensure_namespace(&admin, ARGO).await;
    let rbac = std::process::Command::new("bash")
        .arg("-c")
        .arg("source tests/packaging/lib.sh && render --set discovery.argocd.enabled=true --set discovery.flux.enabled=true --show-only templates/discovery-rbac.yaml")
        .current_dir(&repo)
        .output()
        .unwrap();
    apply(&admin, &String::from_utf8(rbac.stdout).unwrap()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    // What the sources reference exists before them, as in a cluster: Flux's Secrets (one
    // per credential a namespace uses) and Argo CD's CA.
    let ca_pem = pki.ca_pem();
    let flux_secrets: BTreeSet<(String, usize)> = (0..n).map(flux_of).collect();
    let namespaces: BTreeSet<String> = flux_secrets.iter().map(|(ns, _)| ns.clone()).collect();
    futures::stream::iter(namespaces)
        .for_each_concurrent(16, |ns| {
            let admin = admin.clone();
            async move { ensure_namespace(&admin, &ns).await }
        })
        .await;
    futures::stream::iter(flux_secrets)
        .for_each_concurrent(16, |(ns, c)| {
            let admin = admin.clone();
            let ca_pem = ca_pem.clone();
            async move {
                let s = serde_json::json!({"metadata": {"name": format!("cred-{c:03}")},
                    "stringData": {"bearerToken": format!("bench-good-{c:03}"), "ca.crt": ca_pem}});
                let secrets: Api<Secret> = Api::namespaced(admin, &ns);
                secrets
                    .create(&PostParams::default(), &serde_json::from_value(s).unwrap())
                    .await
                    .unwrap();
            }
        })
        .await;
    let cm = serde_json::json!({"metadata": {"name": "argocd-tls-certs-cm"},
                                "data": {"bitbucket.example.com": ca_pem}});
    Api::<ConfigMap>::namespaced(admin.clone(), ARGO)
        .create(&PostParams::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();

    let sa = cluster
        .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
        .await;
    let api: Api<BitbucketConnection> = Api::all(admin.clone());
    let counter = ReadyCount::start(api.clone());
    let op = Operator::start(
        &sa,
        "bench-discovery",
        &cluster.dir,
        &[
            "--address-class=127.0.0.0/8=public".to_string(),
            format!("--connect-to=bitbucket.example.com:443:127.0.0.1:{port}"),
            "--leader-election=false".to_string(),
            "--discover=argocd,flux".to_string(),
            format!("--discover-argocd-namespace={ARGO}"),
            "--discover-datacenter-host=bitbucket.example.com".to_string(),
        ],
    );
    // One check's requests, per consumer: the first source of each alone.
    for (k, flux) in [(1, true), (2, false)] {
        let c0 = sim.request_count();
        create_source(&admin, flux, 0).await;
        wait_for(&counter, Duration::from_secs(120), |c| c.ready() >= k).await;
        assert!(
            counter.ready() >= k,
            "the first connection did not become Ready"
        );
        let per = (sim.request_count() - c0) as f64;
        if flux {
            fig.per_check.0 = per;
        } else {
            fig.per_check.1 = per;
        }
    }
    let (df, da) = distinct(n);
    fig.bound = 1.2 * (df as f64 * fig.per_check.0 + da as f64 * fig.per_check.1);

    // The rest, both consumers interleaved, as fast as the API server takes them.
    let c0 = sim.request_count();
    let started = Instant::now();
    futures::stream::iter((1..n).flat_map(|i| [(true, i), (false, i)]))
        .for_each_concurrent(32, |(flux, i)| {
            let admin = admin.clone();
            async move { create_source(&admin, flux, i).await }
        })
        .await;
    let created = started.elapsed();
    let mut generated = None;
    let deadline = Instant::now() + Duration::from_secs(900);
    while Instant::now() < deadline && counter.ready() < 2 * n {
        if generated.is_none() && counter.store.state().len() >= 2 * n {
            generated = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_ready = started.elapsed();
    let generated = generated.unwrap_or(all_ready);
    fig.created_secs = created.as_secs_f64();
    fig.generated_after_last = generated.saturating_sub(created).as_secs_f64();
    fig.ready_after_last = all_ready.saturating_sub(created).as_secs_f64();
    let bb = sim.request_count() - c0;
    println!(
        "  created {} sources in {:.1}s; after the last: all {} connections generated {:.1}s, all Ready {:.1}s ({} Ready); Bitbucket requests until Ready: {bb} ({:.2} per connection)",
        2 * (n - 1),
        fig.created_secs,
        2 * n,
        fig.generated_after_last,
        fig.ready_after_last,
        counter.ready(),
        bb as f64 / (2 * n) as f64
    );
    println!(
        "  one check: {:.0} Bitbucket requests (Flux), {:.0} (Argo CD); operator RSS so far: peak {:.1} MiB",
        fig.per_check.0,
        fig.per_check.1,
        rss_kib(&op, "VmHWM:").unwrap_or(0) as f64 / 1024.0
    );

    // A person sets spec.interval on every generated connection, under a field manager of
    // their own (discovery leaves the default of 10 minutes): ten intervals pass in minutes.
    let names: Vec<(String, String)> = counter
        .store
        .state()
        .iter()
        .map(|c| (c.namespace().unwrap_or_default(), c.name_any()))
        .collect();
    futures::stream::iter(names)
        .for_each_concurrent(32, |(ns, name)| {
            let api: Api<BitbucketConnection> = Api::namespaced(admin.clone(), &ns);
            async move {
                let p = serde_json::json!({"apiVersion": "bbconn.dev/v1alpha1", "kind": "BitbucketConnection",
                    "metadata": {"name": name}, "spec": {"interval": format!("{INTERVAL_SECS}s")}});
                api.patch(&name, &PatchParams::apply("bench-person"), &Patch::Apply(&p))
                    .await
                    .unwrap();
            }
        })
        .await;
    let current = |c: &ReadyCount| {
        c.store.state().iter().all(|x| {
            is_ready(x)
                && x.status.as_ref().and_then(|s| s.observed_generation) == x.metadata.generation
        })
    };
    wait_for(&counter, Duration::from_secs(300), current).await;

    // Steady state, after ten intervals.
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS * SETTLE_INTERVALS)).await;
    let metric = |name: &str| op.metric(name).unwrap_or(0.0);
    let c1 = sim.request_count();
    let w0 = metric("bbconn_status_writes_total");
    let a0 = apiserver_requests(&admin).await;
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECS * MEASURED_INTERVALS)).await;
    let a1 = apiserver_requests(&admin).await;
    let w1 = metric("bbconn_status_writes_total");
    let per = MEASURED_INTERVALS as f64;
    fig.requests_per_interval = (sim.request_count() - c1) as f64 / per;
    fig.ratio = fig.requests_per_interval / fig.bound.max(1.0);
    fig.writes_per_interval = (w1 - w0) / per;
    // The two /metrics reads of the bench itself are not the operator's.
    fig.apiserver_per_interval = (a1.0 - a0.0 - 2.0) / per;
    println!(
        "  steady state after {SETTLE_INTERVALS} intervals, per {INTERVAL_SECS}s interval (over {MEASURED_INTERVALS}): {:.0} Bitbucket requests (bound: {}), {:.1} status writes, {:.0} API-server requests",
        fig.requests_per_interval,
        fig.bound_terms(n),
        fig.writes_per_interval,
        fig.apiserver_per_interval,
    );
    fig.unchecked = count_unchecked(&api).await;
    fig.peak_rss_mib = rss_kib(&op, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    println!(
        "  operator RSS: peak {:.1} MiB, now {:.1} MiB; connections without a current status: {}",
        fig.peak_rss_mib,
        rss_kib(&op, "VmRSS:").unwrap_or(0) as f64 / 1024.0,
        fig.unchecked
    );
    drop(counter);
    if let Ok(to) = std::env::var("BBCONN_BENCH_KEEP_LOG") {
        let _ = std::fs::copy(&op.log, to);
    }
    drop(op);
    sim.shutdown().await;
    fig
}
