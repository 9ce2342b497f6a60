//! The packaging checks' Rust side: the metrics exposition the shipped alerts and dashboard are
//! checked against (tests/packaging/alerts/run.sh: promtool and check-shapes.py), made by the
//! operator's own metrics code rather than kept as a snapshot. Renaming a metric or a label here
//! in src/telemetry.rs makes the alert and dashboard checks fail.
//!
//! The registry is the one `bbconn run` serves on /metrics (`Metrics`, encoded as its handler
//! encodes it), its connection gauges computed from a cache holding connections as the operator's
//! does (statuses from `bbconn check` against the simulator, compacted as the operator's cache
//! compacts them), and every counter, histogram and gauge fed through the calls the reconciler
//! makes. Every family the registry declares must have a series, so a family added later must be
//! fed here too, and every metric docs/design/contract.md names must be there.
//!
//! Writes the exposition to $BBCONN_METRICS_EXPOSITION (default target/packaging/metrics.txt).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

use bbconn::api::BitbucketConnection;
use bbconn::bitbucket::RateLimit;
use bbconn::catalogue::Check;
use bbconn::telemetry::Metrics;
use common::World;
use kube::core::DeserializeGuard;
use kube::runtime::{reflector, watcher};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const NS: &str = "packaging";
const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}\n";
const DC: &str = "  flavor: DataCenter\n  url: https://bitbucket.example.com\n";

/// A connection and its Secret (with `annotations` on the Secret).
fn connection(name: &str, spec: &str, token: &str, annotations: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-cred, namespace: {NS}, annotations: {{{annotations}}}}}\nstringData: {{token: {token}}}\n---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n{spec}  auth: {{method: AccessToken, secretRef: {{name: {name}-cred}}}}\n{CA}"
    )
}

/// The result labels `reconcile` counts with (src/operator/reconcile.rs).
const RESULTS: [&str; 5] = ["ready", "stalled", "retrying", "transient", "error"];

/// The metric names of docs/design/contract.md's metrics table.
fn contract_metrics() -> Vec<String> {
    let contract =
        std::fs::read_to_string(common::cluster::repo().join("docs/design/contract.md")).unwrap();
    let names: Vec<String> = contract
        .lines()
        .filter_map(|l| l.strip_prefix("| `bbconn_"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("bbconn_{n}"))
        .collect();
    assert!(
        names.len() >= 5,
        "docs/design/contract.md's metrics table: {names:?}"
    );
    names
}

/// Families (`# TYPE` lines) and the names of their samples, from an exposition.
fn families(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut declared = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            declared.insert(name.to_string(), kind.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            samples.insert(line.split(['{', ' ']).next().unwrap().to_string());
        }
    }
    (declared, samples)
}

fn has_series(family: &str, samples: &BTreeSet<String>) -> bool {
    samples.iter().any(|s| {
        s == family
            || s.strip_prefix(family)
                .and_then(|rest| rest.strip_prefix('_'))
                .is_some_and(|suffix| {
                    ["total", "bucket", "sum", "count", "created"].contains(&suffix)
                })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operators_metrics_exposition_has_every_family() {
    let world = World::start().await;
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(10 * 24);
    let mut manifest = world.ca_configmap(NS);
    manifest.push_str(&connection("healthy", DC, "dc-alice-admin-token-0103", ""));
    manifest.push_str(&connection(
        "expiring",
        "  flavor: Cloud\n",
        "cloud-repo-token-infra-0005",
        &format!("bbconn.dev/expires-at: \"{soon}\""),
    ));
    manifest.push_str(&connection(
        "revoked",
        DC,
        "dc-alice-revoked-token-0105",
        "",
    ));
    manifest.push_str(&connection(
        "rate-limited",
        DC,
        "dc-fault-429-token-0110",
        "",
    ));
    let out = world.check(&manifest).await;
    assert_eq!(out.code, 1, "{}", out.stderr);

    // The operator's cache: each connection with the status `bbconn check` reached, compacted as
    // the operator compacts what it caches.
    let (reader, mut writer) = reflector::store::<DeserializeGuard<BitbucketConnection>>();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&manifest).unwrap();
    for doc in docs
        .into_iter()
        .filter(|d| d["kind"] == "BitbucketConnection")
    {
        let mut c: BitbucketConnection = serde_json::from_value(doc).unwrap();
        let name = c.metadata.name.clone().unwrap();
        let status = serde_json::from_value(out.status(&name).clone()).unwrap();
        c.status = Some(bbconn::status::compact(&status));
        writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(c))));
    }

    // Counters, the histogram and the leader and rate-limit gauges, through the calls the
    // reconciler and the elector make.
    let metrics = Metrics::new(Some(reader));
    for check in Check::ALL {
        metrics.observe_check(check, 0.02);
    }
    for r in world.sim.requests() {
        metrics.count_request("bitbucket.example.com", r.status);
    }
    for result in RESULTS {
        metrics.count_reconcile(result);
    }
    metrics.status_writes.inc();
    metrics.status_write_errors.inc();
    metrics.invalid_objects.inc();
    metrics.watch_errors.inc();
    metrics.leader.set(1);
    metrics.observe_rate_limit(
        "api.bitbucket.org",
        &RateLimit {
            resource: "api".into(),
            limit: Some(1000),
            remaining: Some(40),
            near_limit: true,
        },
    );
    let text = metrics.encode();

    // Written before it is judged, so the alert and dashboard checks can say what a rename broke.
    let path = std::env::var_os("BBCONN_METRICS_EXPOSITION")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| common::cluster::repo().join("target/packaging/metrics.txt"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    let (declared, samples) = families(&text);
    let empty: Vec<&String> = declared
        .keys()
        .filter(|f| !has_series(f, &samples))
        .collect();
    assert!(
        empty.is_empty(),
        "families without a series (feed them in this test): {empty:?}\n{text}"
    );
    let missing: Vec<String> = contract_metrics()
        .into_iter()
        .filter(|m| !samples.contains(m) && !declared.contains_key(m))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics docs/design/contract.md names that the operator does not expose: {missing:?}"
    );
    assert_eq!(text.lines().last(), Some("# EOF"));
    // The series a user's alerts key on carry the connection they are about.
    for (family, name) in [
        ("bbconn_connection_ready", "healthy"),
        ("bbconn_token_expiry_timestamp_seconds", "expiring"),
        ("bbconn_certificate_expiry_timestamp_seconds", "healthy"),
    ] {
        let series = format!("{family}{{namespace=\"{NS}\",name=\"{name}\"}}");
        assert!(text.contains(&series), "no {series} in\n{text}");
    }

    println!(
        "metrics: {} families, {} series names -> {}",
        declared.len(),
        samples.len(),
        path.display()
    );
}
