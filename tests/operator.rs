//! The operator end to end: a real kube-apiserver and etcd (tests/controlplane), the Bitbucket
//! simulator, and `bbconn run` as a process under exactly the RBAC deploy/ grants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use common::cluster::{Cluster, Operator, apply, eventually};
use common::{World, connection};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::time::{Duration, Instant};

const NS: &str = "e2e";
const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
const WAIT: Duration = Duration::from_secs(30);

fn dc(name: &str, extra: &str) -> String {
    format!(
        "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{method: AccessToken, secretRef: {{name: {name}-cred}}}}\n{CA}\n{extra}"
    )
}

/// (status, reason) of a condition.
fn condition(c: &BitbucketConnection, type_: &str) -> Option<(String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == type_)
        .map(|x| (x.status.clone(), x.reason.clone()))
}

async fn wait_for(
    api: &Api<BitbucketConnection>,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
) -> BitbucketConnection {
    eventually(
        WAIT,
        &format!("{name}: {type_}={status} {reason}"),
        || async {
            let c = api.get(name).await.map_err(|e| e.to_string())?;
            match condition(&c, type_) {
                Some((s, r)) if s == status && r == reason => Ok(c),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await
}

async fn set_secret(client: &Client, name: &str, key: &str, value: &str) {
    let doc = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {NS}}}\nstringData: {{{key}: {value}}}\n"
    );
    apply(client, &doc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_end_to_end() {
    let cluster = Cluster::start("operator");
    let admin = cluster.client().await;
    let world = World::start().await;

    // An older CRD in the cluster may admit objects the operator cannot read: strip the
    // duration patterns to let one in, and check that it is skipped, not fatal.
    let crd = std::fs::read_to_string(
        common::cluster::repo().join("crds/bbconn.dev_bitbucketconnections.yaml"),
    )
    .unwrap()
    .lines()
    .filter(|l| !l.contains("pattern: ^([0-9]+"))
    .collect::<Vec<_>>()
    .join("\n");
    apply(&admin, &crd).await;
    apply(&admin, &common::cluster::deploy_rbac()).await;
    apply(
        &admin,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n"),
    )
    .await;
    apply(&admin, &world.ca_configmap(NS)).await;
    // Wait for the CRD to be served.
    let api: Api<BitbucketConnection> = Api::namespaced(admin.clone(), NS);
    eventually(WAIT, "the CRD to be served", || async {
        api.list(&ListParams::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    let sa_kubeconfig = cluster
        .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
        .await;

    let mut a = Operator::start(
        &sa_kubeconfig,
        "replica-a",
        &cluster.dir,
        &world.net_flags(),
    );

    // The seed scenarios.
    type Scenario = (
        &'static str,
        String,
        Vec<(&'static str, &'static str)>,
        &'static str,
        &'static str,
    );
    let scenarios: Vec<Scenario> = vec![
        ("healthy", dc("healthy", "  requirements: {repositories: [{name: PROJ/app, access: Admin}]}"), vec![("token", "dc-alice-admin-token-0103")], "True", "AllChecksPassed"),
        ("revoked", dc("revoked", ""), vec![("token", "dc-alice-revoked-token-0105")], "False", "TokenRevoked"),
        ("read-only", dc("read-only", "  requirements: {permissions: [REPO_ADMIN]}"), vec![("token", "dc-alice-read-token-0104")], "False", "InsufficientScopes"),
        ("port-7990", "  flavor: DataCenter\n  url: http://bitbucket.example.com:7990\n  auth: {method: AccessToken, secretRef: {name: port-7990-cred}}".to_string(), vec![("token", "dc-alice-admin-token-0103")], "False", "PlainHttpNotAllowed"),
        ("no-endpoint", format!("  flavor: DataCenter\n  url: https://private.bitbucket.test\n  auth: {{method: AccessToken, secretRef: {{name: no-endpoint-cred}}}}\n{CA}\n  network: {{exposure: Private}}"), vec![("token", "dc-alice-admin-token-0103")], "False", "PrivateEndpointRequired"),
        ("untrusted", "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {method: AccessToken, secretRef: {name: untrusted-cred}}".to_string(), vec![("token", "dc-alice-admin-token-0103")], "False", "CertificateUntrusted"),
        ("app-password", format!("  flavor: Cloud\n  auth: {{method: AppPassword, secretRef: {{name: app-password-cred}}}}\n{CA}"), vec![("username", "alice"), ("password", "cloud-app-password-0198")], "False", "AppPasswordRetired"),
        ("tfe", format!("  flavor: Cloud\n  profiles: [terraform-enterprise]\n  auth: {{method: OAuthClientCredentials, secretRef: {{name: tfe-cred}}}}\n{CA}"), vec![("clientId", "tfe-consumer-key"), ("clientSecret", "tfe-consumer-secret-0008")], "True", "AllChecksPassed"),
        ("rate-limited", dc("rate-limited", ""), vec![("token", "dc-fault-429-token-0110")], "Unknown", "RateLimited"),
    ];
    let mut manifest = String::new();
    for (name, spec, secret, _, _) in &scenarios {
        manifest.push_str(&connection(NS, name, spec, secret));
    }
    apply(&admin, &manifest).await;
    for (name, _, _, status, reason) in &scenarios {
        wait_for(&api, name, "Ready", status, reason).await;
    }
    let revoked = api.get("revoked").await.unwrap();
    assert_eq!(
        condition(&revoked, "Stalled"),
        Some(("True".into(), "TokenRevoked".into()))
    );
    assert_eq!(
        revoked.status.as_ref().unwrap().observed_generation,
        revoked.metadata.generation
    );
    let limited = api.get("rate-limited").await.unwrap();
    assert_eq!(
        condition(&limited, "Stalled"),
        None,
        "transient causes never stall"
    );
    let healthy = api.get("healthy").await.unwrap();
    assert!(
        healthy
            .status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .all(|c| c.observed_generation == healthy.metadata.generation)
    );
    assert_eq!(condition(&healthy, "Reconciling"), None);

    // A slow check of a new generation shows Reconciling=True while it runs (kstatus: InProgress),
    // and not after.
    apply(
        &admin,
        &connection(
            NS,
            "slow",
            &dc("slow", ""),
            &[("token", "dc-fault-slow-token-0112")],
        ),
    )
    .await;
    wait_for(&api, "slow", "Reconciling", "True", "Checking").await;
    let slow = wait_for(&api, "slow", "Ready", "Unknown", "ConnectionTimedOut").await;
    assert_eq!(condition(&slow, "Reconciling"), None);

    // Secret rotation: revoked -> a good token, Ready within seconds.
    let started = Instant::now();
    set_secret(&admin, "revoked-cred", "token", "dc-alice-admin-token-0103").await;
    let recovered = wait_for(&api, "revoked", "Ready", "True", "AllChecksPassed").await;
    let rotation = started.elapsed();
    assert!(
        rotation < Duration::from_secs(10),
        "rotation took {rotation:?}"
    );
    assert_eq!(
        condition(&recovered, "Stalled"),
        None,
        "Stalled is gone once Ready"
    );
    eprintln!("secret rotation to Ready: {rotation:?}");

    // Secret deleted -> SecretNotFound.
    Api::<Secret>::namespaced(admin.clone(), NS)
        .delete("read-only-cred", &DeleteParams::default())
        .await
        .unwrap();
    wait_for(
        &api,
        "read-only",
        "CredentialsResolved",
        "False",
        "SecretNotFound",
    )
    .await;

    // requested-at: a check at once, echoed in status.
    let patch = serde_json::json!({"metadata": {"annotations": {"bbconn.dev/requested-at": "2026-11-22T10:00:00Z"}}});
    api.patch("healthy", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    eventually(WAIT, "lastHandledRequestedAt", || async {
        let c = api.get("healthy").await.map_err(|e| e.to_string())?;
        match c.status.and_then(|s| s.last_handled_requested_at) {
            Some(v) if v == "2026-11-22T10:00:00Z" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Steady state: a connection checked every second goes through two transitions (a Secret
    // without the token, then with it) and then holds still: no status writes across several
    // intervals, while it is re-checked every interval. Its token is its own, so Bitbucket's side
    // counts its checks: one identity probe (application-properties) per check.
    const STEADY_TOKEN: &str = "dc-bob-admin-token-0116";
    apply(
        &admin,
        &connection(
            NS,
            "steady",
            &dc("steady", "  interval: 1s"),
            &[("username", "bob")],
        ),
    )
    .await;
    wait_for(&api, "steady", "Ready", "False", "SecretKeyMissing").await;
    // Failing, and re-checked every second meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    set_secret(&admin, "steady-cred", "token", STEADY_TOKEN).await;
    let steady = wait_for(&api, "steady", "Ready", "True", "AllChecksPassed").await;
    let probes = || {
        world
            .sim
            .requests()
            .iter()
            .filter(|r| {
                r.path == "/rest/api/latest/application-properties"
                    && r.authorization.as_deref() == Some(&format!("Bearer {STEADY_TOKEN}"))
            })
            .count()
    };
    let ready_reconciles = |op: &Operator| {
        op.metric("bbconn_reconcile_total{result=\"ready\"}")
            .unwrap()
    };
    let rv = steady.resource_version();
    let writes_before = a.metric("bbconn_status_writes_total").unwrap();
    let (probes_before, ready_before) = (probes(), ready_reconciles(&a));
    let window = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let again = api.get("steady").await.unwrap();
    assert_eq!(
        again.resource_version(),
        rv,
        "status was written at steady state"
    );
    let writes_after = a.metric("bbconn_status_writes_total").unwrap();
    assert!(
        writes_after - writes_before < 1.0,
        "{writes_before} -> {writes_after} status writes at steady state"
    );
    let (probes_after, ready_after) = (probes(), ready_reconciles(&a));
    let window = window.elapsed();
    eprintln!(
        "steady: {} identity probes and {} ready reconciles in {window:?} at a 1 s interval",
        probes_after - probes_before,
        ready_after - ready_before
    );
    assert!(
        probes_after - probes_before >= 3,
        "steady was re-checked every interval: Bitbucket saw {} of its checks in {window:?}",
        probes_after - probes_before
    );
    assert!(
        ready_after - ready_before >= 3.0,
        "steady was re-checked every interval: {ready_before} -> {ready_after} ready reconciles in {window:?}"
    );

    // An object the operator cannot read is skipped and reported; the watch goes on.
    apply(
        &admin,
        &connection(
            NS,
            "unreadable",
            &dc("unreadable", "  interval: 10 minutes"),
            &[("token", "dc-alice-admin-token-0103")],
        ),
    )
    .await;
    apply(
        &admin,
        &connection(
            NS,
            "after-unreadable",
            &dc("after-unreadable", ""),
            &[("token", "dc-alice-admin-token-0103")],
        ),
    )
    .await;
    wait_for(&api, "after-unreadable", "Ready", "True", "AllChecksPassed").await;
    assert!(a.is_running());
    assert!(a.metric("bbconn_invalid_objects_total").unwrap() >= 1.0);
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(admin.clone(), NS);
    eventually(WAIT, "an InvalidObject event", || async {
        let list = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        list.items
            .iter()
            .find(|e| {
                e.reason.as_deref() == Some("InvalidObject")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("unreadable")
            })
            .map(|_| ())
            .ok_or_else(|| "none yet".to_string())
    })
    .await;

    api.delete("unreadable", &DeleteParams::default())
        .await
        .unwrap();

    // Metrics computed from the cache: gauges per connection, gone when the connection is.
    let (code, body) = a.get("/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(
        body.contains(r#"bbconn_connection_ready{namespace="e2e",name="healthy"} 1"#),
        "{body}"
    );
    assert!(body.contains(r#"bbconn_connection_condition{namespace="e2e",name="port-7990",type="Reachable",status="False",reason="PlainHttpNotAllowed"} 1"#));
    assert!(body.contains(
        r#"bbconn_certificate_expiry_timestamp_seconds{namespace="e2e",name="healthy"}"#
    ));
    assert!(body.contains(
        "bbconn_bitbucket_requests_total{host=\"bitbucket.example.com\",status=\"200\"}"
    ));
    api.delete("port-7990", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "port-7990's series to go", || async {
        let (_, body) = a.get("/metrics").ok_or("no answer")?;
        if body.contains("name=\"port-7990\"") {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    assert_eq!(a.get("/healthz").map(|r| r.0), Some(200));
    assert_eq!(a.get("/readyz").map(|r| r.0), Some(200));

    // Events on transitions: the revoked token's Warning carries cause and remedy; recovery is Normal.
    let list = events.list(&ListParams::default()).await.unwrap();
    let about = |name: &str| {
        list.items
            .iter()
            .filter(move |e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .collect::<Vec<_>>()
    };
    let rev = about("revoked");
    assert!(
        rev.iter().any(|e| e.type_.as_deref() == Some("Warning")
            && e.reason.as_deref() == Some("TokenRevoked")
            && e.note
                .as_deref()
                .unwrap_or("")
                .contains("Remedy: Re-create the access token")),
        "{rev:?}"
    );
    assert!(
        rev.iter()
            .any(|e| e.type_.as_deref() == Some("Normal") && e.reason.as_deref() == Some("Ready"))
    );
    // Events only on transitions: the steady connection, re-checked every second while it failed
    // and after it recovered, has exactly one Event per transition (a Warning when its Secret
    // lacked the token, a Normal when it recovered), none repeated. kube's recorder folds a repeat into
    // the first Event's `series` (count 2, 3, ...) rather than creating another Event, so a
    // repeat shows there, not in the number of Events.
    let steady_events: Vec<(String, String, Option<i32>)> = about("steady")
        .iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                e.series.as_ref().map(|s| s.count),
            )
        })
        .collect();
    let mut transitions: Vec<(&str, &str)> = steady_events
        .iter()
        .map(|(t, r, _)| (t.as_str(), r.as_str()))
        .collect();
    transitions.sort();
    assert_eq!(
        transitions,
        [("Normal", "Ready"), ("Warning", "SecretKeyMissing")],
        "steady's events: {steady_events:?}"
    );
    assert!(
        steady_events.iter().all(|(_, _, series)| series.is_none()),
        "events repeated while steady was re-checked: {steady_events:?}"
    );
    // For the record: any other connection whose event was repeated.
    for e in list.items.iter().filter(|e| e.series.is_some()) {
        eprintln!(
            "events: {} {} repeated: {:?}",
            e.regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .unwrap_or_default(),
            e.reason.as_deref().unwrap_or_default(),
            e.series
        );
    }

    // A second replica waits for the Lease, and takes over when the first stops.
    let mut b = Operator::start(
        &sa_kubeconfig,
        "replica-b",
        &cluster.dir,
        &world.net_flags(),
    );
    eventually(WAIT, "replica-b to answer", || async {
        b.get("/healthz")
            .map(|_| ())
            .ok_or_else(|| "no answer".to_string())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        b.metric("bbconn_leader"),
        Some(0.0),
        "replica-b must wait while replica-a leads"
    );
    assert_eq!(a.metric("bbconn_leader"), Some(1.0));
    assert_eq!(a.stop(), Some(0), "replica-a shuts down cleanly");
    eventually(WAIT, "replica-b to lead", || async {
        match b.metric("bbconn_leader") {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    apply(
        &admin,
        &connection(
            NS,
            "after-failover",
            &dc("after-failover", ""),
            &[("token", "dc-bob-write-token-0107")],
        ),
    )
    .await;
    wait_for(&api, "after-failover", "Ready", "True", "AllChecksPassed").await;

    // No secret value in events, status or logs.
    let list = events.list(&ListParams::default()).await.unwrap();
    let events_text = serde_json::to_string(&list.items).unwrap();
    let statuses = serde_json::to_string(
        &api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|c| c.status.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let logs = format!("{}{}", a.logs(), b.logs());
    assert!(
        logs.contains("holding the leader Lease"),
        "logs are captured"
    );
    for (_, _, secret, _, _) in &scenarios {
        for (key, value) in secret {
            if matches!(*key, "token" | "password" | "clientSecret") {
                for (what, text) in [
                    ("events", &events_text),
                    ("status", &statuses),
                    ("logs", &logs),
                ] {
                    assert!(!text.contains(value), "{value} appears in {what}");
                }
            }
        }
    }
    b.stop();
}
