//! The operator under faults, on a real kube-apiserver and etcd: relists while connections are
//! created, API-server and etcd restarts, a start before the API server answers, a deleted or
//! stolen Lease, takeovers, steady state for every cause, and shards. Times are printed for the
//! record (`--nocapture`); the assertions are about what a user would notice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use common::cluster::{Installed, Operator, apply, eventually};
use common::connection;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::time::{Duration, Instant};

const NS: &str = "faults";
const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
const GOOD: &str = "dc-alice-admin-token-0103";

async fn setup(name: &str) -> Installed {
    Installed::new(name, NS).await
}

fn dc(secret: &str, extra: &str) -> String {
    format!(
        "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{method: AccessToken, secretRef: {{name: {secret}}}}}\n{CA}\n{extra}"
    )
}

/// A connection on an existing Secret.
fn on_secret(name: &str, secret: &str, labels: &str) -> String {
    format!(
        "---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: {name}, namespace: {NS}{labels}}}\nspec:\n{}\n",
        dc(secret, "")
    )
}

fn secret(name: &str, token: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {NS}}}\nstringData: {{token: {token}}}\n"
    )
}

fn ready_reason(c: &BitbucketConnection) -> Option<(String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == "Ready")
        .map(|x| (x.status.clone(), x.reason.clone()))
}

/// Whether the connection has a status for its current generation.
fn current(c: &BitbucketConnection) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.observed_generation == c.metadata.generation && ready_reason(c).is_some()
    })
}

async fn wait_ready(api: &Api<BitbucketConnection>, name: &str, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(within, &format!("{name} Ready"), || async {
        let c = api.get(name).await.map_err(|e| e.to_string())?;
        match ready_reason(&c) {
            Some((s, _)) if s == "True" && current(&c) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    started.elapsed()
}

/// Connections without a current status.
async fn unchecked(api: &Api<BitbucketConnection>) -> Result<usize, String> {
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list.items.iter().filter(|c| !current(c)).count())
}

/// Issue 17: whatever process checks it (restarts, takeovers, shards), a refused credential
/// reaches Bitbucket once.
fn assert_revoked_sent_once(s: &Installed) {
    let sent = s
        .world
        .sim
        .requests()
        .iter()
        .filter(|r| r.authorization.as_deref() == Some("Bearer dc-alice-revoked-token-0105"))
        .count();
    assert!(sent <= 1, "the revoked token was sent {sent} times");
}

fn leader(op: &Operator) -> Option<f64> {
    op.metric("bbconn_leader ")
}

fn writes(op: &Operator) -> f64 {
    op.metric("bbconn_status_writes_total").unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connection_is_left_unchecked_after_relists() {
    let s = setup("relist").await;
    // The chart's Lease duration: this test loads the machine, and the point is the watches.
    let mut flags = s.world.net_flags();
    flags.push("--lease-duration=15".into());
    let op = Operator::start(&s.sa, "relist", &s.cluster.dir, &flags);
    apply(&s.admin, &secret("shared", GOOD)).await;
    let batch = |b: usize| -> String {
        (0..50)
            .map(|i| on_secret(&format!("c{b}-{i}"), "shared", ""))
            .collect()
    };
    for b in 0..3 {
        apply(&s.admin, &batch(b)).await;
    }
    // The API server goes away mid-creation; etcd's history is compacted meanwhile, so the
    // watches cannot resume and must relist (410 Gone).
    let stopped = s.cluster.kill("kube-apiserver");
    s.cluster.compact_etcd();
    tokio::time::sleep(Duration::from_secs(8)).await;
    s.cluster.restart(stopped);
    s.cluster.wait_ready().await;
    let back = Instant::now();
    for b in 3..8 {
        apply(&s.admin, &batch(b)).await;
    }
    // Once more, while the watches are (re)starting: compact and restart again.
    let stopped = s.cluster.kill("kube-apiserver");
    s.cluster.compact_etcd();
    s.cluster.restart(stopped);
    s.cluster.wait_ready().await;
    let back_again = Instant::now();
    apply(&s.admin, &batch(8)).await;
    eventually(
        Duration::from_secs(30),
        "every connection to have a current status",
        || async {
            match unchecked(&s.api).await? {
                0 => Ok(()),
                n => Err(format!("{n} of 450 without a current status")),
            }
        },
    )
    .await;
    eprintln!(
        "relist: all 450 connections current {:?} after the first restart's API server answered, {:?} after the second's",
        back.elapsed(),
        back_again.elapsed()
    );

    // A relist that finds hundreds of new connections, in a list longer than one page (500):
    // the operator's watches fail (its binding is gone and the API server restarts) while 300
    // are created, named to come first; when it may list again, the first page's objects
    // reached the controller before the last page was in the store (and were dropped).
    let binding = common::cluster::deploy_rbac()
        .split("\n---\n")
        .find(|d| d.contains("kind: ClusterRoleBinding"))
        .unwrap()
        .to_string();
    let crbs: Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> = Api::all(s.admin.clone());
    crbs.delete("bbconn", &DeleteParams::default())
        .await
        .unwrap();
    let stopped = s.cluster.kill("kube-apiserver");
    s.cluster.compact_etcd();
    s.cluster.restart(stopped);
    s.cluster.wait_ready().await;
    let many: String = (0..300)
        .map(|i| on_secret(&format!("a{i:03}"), "shared", ""))
        .collect();
    apply(&s.admin, &many).await;
    apply(&s.admin, &binding).await;
    let allowed = Instant::now();
    eventually(
        Duration::from_secs(30),
        "every connection to have a current status after a relist of 750",
        || async {
            match unchecked(&s.api).await? {
                0 => Ok(()),
                n => Err(format!("{n} of 750 without a current status")),
            }
        },
    )
    .await;
    eprintln!(
        "relist: all 750 connections current {:?} after the operator could list again",
        allowed.elapsed()
    );
    assert!(
        op.metric("bbconn_watch_errors_total").unwrap_or(0.0) >= 1.0,
        "the watches were interrupted"
    );
    assert!(
        !op.logs().contains("not found in local store"),
        "a trigger reached the controller before its object"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_waits_for_the_api_server_and_survives_its_restarts() {
    let s = setup("outage").await;
    apply(&s.admin, &secret("good", GOOD)).await;
    apply(&s.admin, &secret("rotating", "dc-alice-revoked-token-0105")).await;
    apply(&s.admin, &on_secret("before", "good", "")).await;
    apply(&s.admin, &on_secret("rotated", "rotating", "")).await;

    // Started while the API server is down: it waits, and does not exit.
    let stopped = s.cluster.kill("kube-apiserver");
    let mut op = Operator::start(&s.sa, "outage", &s.cluster.dir, &s.world.net_flags());
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(op.is_running(), "exited while the API server was down");
    s.cluster.restart(stopped);
    s.cluster.wait_ready().await;
    let t = wait_ready(&s.api, "before", Duration::from_secs(30)).await;
    eprintln!(
        "outage: started before the API server; first connection Ready {t:?} after it answered"
    );
    let pid = op.pid();

    // A 20 s outage, longer than the Lease: the leader steps down, keeps its process, and
    // campaigns again; it sees a rotation, a new connection and a spec change within seconds.
    let stopped = s.cluster.kill("kube-apiserver");
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert!(op.is_running());
    s.cluster.restart(stopped);
    s.cluster.wait_ready().await;
    let back = Instant::now();
    apply(&s.admin, &secret("rotating", GOOD)).await;
    apply(&s.admin, &on_secret("after", "good", "")).await;
    let spec = serde_json::json!({"spec": {"interval": "7m"}});
    s.api
        .patch("before", &PatchParams::default(), &Patch::Merge(&spec))
        .await
        .unwrap();
    wait_ready(&s.api, "rotated", Duration::from_secs(30)).await;
    wait_ready(&s.api, "after", Duration::from_secs(30)).await;
    wait_ready(&s.api, "before", Duration::from_secs(30)).await;
    eprintln!(
        "outage: after a 20 s API-server outage, rotation, new connection and spec change seen {:?} after it answered",
        back.elapsed()
    );
    assert!(op.is_running() && op.pid() == pid, "the process was kept");

    // etcd restarts under the API server.
    let stopped = s.cluster.kill("etcd");
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.cluster.restart(stopped);
    s.cluster.wait_ready().await;
    let back = Instant::now();
    eventually(
        Duration::from_secs(30),
        "a write after etcd restarts",
        || async { apply_quiet(&s.admin, &on_secret("after-etcd", "good", "")).await },
    )
    .await;
    wait_ready(&s.api, "after-etcd", Duration::from_secs(30)).await;
    eprintln!(
        "outage: after an etcd restart, a new connection Ready {:?} after etcd answered",
        back.elapsed()
    );
    assert!(op.is_running() && op.pid() == pid, "the process was kept");
    assert_revoked_sent_once(&s);
}

/// `apply`, but an error is returned (the API server may still be starting).
async fn apply_quiet(client: &Client, yaml: &str) -> Result<(), String> {
    let doc: serde_json::Value =
        serde_saphyr::from_str(yaml.trim_start_matches("---\n")).map_err(|e| e.to_string())?;
    let api: Api<BitbucketConnection> = Api::namespaced(client.clone(), NS);
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("bbconn-e2e").force(),
        &Patch::Apply(&doc),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_without_the_lease_writes_nothing() {
    let s = setup("lease").await;
    apply(&s.admin, &secret("good", GOOD)).await;
    let leases: Api<Lease> = Api::namespaced(s.admin.clone(), "bbconn-system");
    let mut a = Operator::start(&s.sa, "replica-a", &s.cluster.dir, &s.world.net_flags());
    apply(&s.admin, &on_secret("first", "good", "")).await;
    wait_ready(&s.api, "first", Duration::from_secs(30)).await;
    // A revoked token, checked every second by whichever replica leads.
    apply(&s.admin, &secret("revoked", "dc-alice-revoked-token-0105")).await;
    apply(&s.admin, &on_secret("revoked", "revoked", "")).await;
    let mut b = Operator::start(&s.sa, "replica-b", &s.cluster.dir, &s.world.net_flags());
    eventually(Duration::from_secs(30), "replica-b to answer", || async {
        leader(&b)
            .map(|_| ())
            .ok_or_else(|| "no answer".to_string())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(leader(&a), Some(1.0));
    assert_eq!(leader(&b), Some(0.0));

    // Another identity takes the Lease, for longer than a replica's: replica-a steps down, and
    // nobody writes until the intruder's Lease expires, judged from the Lease's own renewTime
    // (the operators read the same clock), not from how long the test slept.
    const STOLEN_FOR: i64 = 20;
    let spec = k8s_openapi::api::coordination::v1::LeaseSpec {
        holder_identity: Some("intruder".into()),
        renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
            jiff::Timestamp::now(),
        )),
        lease_duration_seconds: Some(i32::try_from(STOLEN_FOR).unwrap()),
        ..Default::default()
    };
    let patch = serde_json::json!({ "spec": spec });
    let taken = leases
        .patch(
            "bbconn-leader",
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let stolen = Instant::now();
    let lease_spec = taken.spec.unwrap();
    assert_eq!(lease_spec.holder_identity.as_deref(), Some("intruder"));
    let expires = lease_spec.renew_time.unwrap().0 + jiff::SignedDuration::from_secs(STOLEN_FOR);
    eventually(Duration::from_secs(5), "replica-a to step down", || async {
        match leader(&a) {
            Some(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eprintln!(
        "lease: replica-a stepped down {:?} after the Lease was taken",
        stolen.elapsed()
    );
    let (wa, wb) = (writes(&a), writes(&b));
    apply(&s.admin, &on_secret("while-stolen", "good", "")).await;
    let applied = jiff::Timestamp::now();
    // Each look is judged only if it ended before the intruder's Lease expired: what it saw
    // happened while another identity held the Lease. After that, a takeover is legitimate.
    let mut judged_until = None;
    loop {
        let c = s.api.get("while-stolen").await.unwrap();
        let seen = (writes(&a), writes(&b));
        let at = jiff::Timestamp::now();
        if at >= expires {
            break;
        }
        assert!(
            c.status.is_none(),
            "written {:?} before the intruder's Lease expired",
            expires.duration_since(at)
        );
        assert_eq!(
            seen,
            (wa, wb),
            "a status write {:?} before the intruder's Lease expired",
            expires.duration_since(at)
        );
        judged_until = Some(at);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The rule was judged over a window in which an operator that ignored it would have written
    // (a check of this connection takes well under a second).
    let watched = judged_until.map(|t| t.duration_since(applied));
    assert!(
        watched.is_some_and(|w| w >= jiff::SignedDuration::from_secs(5)),
        "nothing written for {watched:?} after the connection was created while the Lease was stolen: too short to judge"
    );
    let t = wait_ready(&s.api, "while-stolen", Duration::from_secs(20)).await;
    eprintln!(
        "lease: nobody wrote for {watched:?} after while-stolen was created; taken over and checked {t:?} after the intruder's {STOLEN_FOR} s Lease expired"
    );
    assert!(a.is_running() && b.is_running(), "both processes kept");

    // The Lease is deleted: the holder stops before anyone else can hold it again.
    let holder = |l: &Lease| l.spec.as_ref().and_then(|s| s.holder_identity.clone());
    let now_holder = holder(&leases.get("bbconn-leader").await.unwrap()).unwrap();
    let (holding, other) = if now_holder == "replica-a" {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let (wh, wo) = (writes(holding), writes(other));
    leases
        .delete("bbconn-leader", &DeleteParams::default())
        .await
        .unwrap();
    let deleted = Instant::now();
    eventually(
        Duration::from_secs(5),
        "the holder to step down",
        || async {
            match leader(holding) {
                Some(0.0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    let stepped = deleted.elapsed();
    // Nobody writes while there is no Lease; whoever creates it next writes only after.
    let new_lease = eventually(Duration::from_secs(10), "a new Lease", || async {
        // Counted before the Lease was seen missing: any write here was made without it.
        let seen = (writes(holding), writes(other));
        match leases
            .get_opt("bbconn-leader")
            .await
            .map_err(|e| e.to_string())?
        {
            Some(l) => Ok(l),
            None => {
                assert_eq!(
                    seen,
                    (wh, wo),
                    "a status write while no replica held the Lease"
                );
                Err("none yet".to_string())
            }
        }
    })
    .await;
    let created = deleted.elapsed();
    apply(&s.admin, &on_secret("after-delete", "good", "")).await;
    wait_ready(&s.api, "after-delete", Duration::from_secs(20)).await;
    eprintln!(
        "lease: deleted Lease: holder stepped down after {stepped:?}; a new Lease held by {:?} after {created:?}; new connection Ready after {:?}",
        holder(&new_lease),
        deleted.elapsed()
    );

    // Takeover after SIGKILL and SIGTERM.
    for signal in ["KILL", "TERM"] {
        let holder_now = holder(&leases.get("bbconn-leader").await.unwrap()).unwrap();
        let (dying, survivor) = if holder_now == "replica-a" {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        std::process::Command::new("kill")
            .args([format!("-{signal}"), dying.pid().to_string()])
            .status()
            .unwrap();
        let t0 = Instant::now();
        eventually(Duration::from_secs(20), "the survivor to lead", || async {
            match leader(survivor) {
                Some(1.0) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
        eprintln!(
            "lease: takeover after SIG{signal}: {:?} (Lease duration 4 s)",
            t0.elapsed()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(6),
            "takeover took {:?}",
            t0.elapsed()
        );
        let name = format!("after-{}", signal.to_lowercase());
        apply(&s.admin, &on_secret(&name, "good", "")).await;
        wait_ready(&s.api, &name, Duration::from_secs(20)).await;
        if signal == "KILL" {
            // Bring the killed one back as the standby for the SIGTERM round.
            *dying = Operator::start(
                &s.sa,
                if holder_now == "replica-a" {
                    "replica-a2"
                } else {
                    "replica-b2"
                },
                &s.cluster.dir,
                &s.world.net_flags(),
            );
            eventually(Duration::from_secs(30), "the new standby", || async {
                leader(dying)
                    .map(|_| ())
                    .ok_or_else(|| "no answer".to_string())
            })
            .await;
        }
    }
    assert_revoked_sent_once(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cause_holds_still_at_steady_state() {
    let s = setup("steady").await;
    let op = Operator::start(&s.sa, "steady", &s.cluster.dir, &s.world.net_flags());
    let at = |host: &str, extra: &str| {
        format!(
            "  flavor: DataCenter\n  url: https://{host}\n  auth: {{method: AccessToken, secretRef: {{name: NAME-cred}}}}\n{extra}\n  interval: 1s"
        )
    };
    type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        ("healthy", at("bitbucket.example.com", CA), vec![("token", GOOD)], "AllChecksPassed"),
        ("revoked", at("bitbucket.example.com", CA), vec![("token", "dc-alice-revoked-token-0105")], "TokenRevoked"),
        ("read-only", at("bitbucket.example.com", &format!("{CA}\n  requirements: {{permissions: [REPO_ADMIN]}}")), vec![("token", "dc-alice-read-token-0104")], "InsufficientScopes"),
        ("expired-cert", at("expired.bitbucket.test", CA), vec![("token", GOOD)], "CertificateExpired"),
        ("future-cert", at("notyetvalid.bitbucket.test", CA), vec![("token", GOOD)], "CertificateNotYetValid"),
        ("wrong-host", at("wronghost.bitbucket.test", CA), vec![("token", GOOD)], "CertificateHostnameMismatch"),
        ("untrusted", at("bitbucket.example.com", ""), vec![("token", GOOD)], "CertificateUntrusted"),
        ("no-endpoint", at("private.bitbucket.test", &format!("{CA}\n  network: {{exposure: Private}}")), vec![("token", GOOD)], "PrivateEndpointRequired"),
        ("port-7990", "  flavor: DataCenter\n  url: http://bitbucket.example.com:7990\n  auth: {method: AccessToken, secretRef: {name: NAME-cred}}\n  interval: 1s".to_string(), vec![("token", GOOD)], "PlainHttpNotAllowed"),
        ("no-key", at("bitbucket.example.com", CA), vec![("other", "x")], "SecretKeyMissing"),
        ("rate-limited", at("bitbucket.example.com", CA), vec![("token", "dc-fault-429-token-0110")], "RateLimited"),
    ];
    let mut manifest = String::new();
    for (name, spec, secret, _) in &cases {
        manifest.push_str(&connection(NS, name, &spec.replace("NAME", name), secret));
    }
    apply(&s.admin, &manifest).await;
    for (name, _, _, reason) in &cases {
        eventually(
            Duration::from_secs(30),
            &format!("{name}: {reason}"),
            || async {
                let c = s.api.get(name).await.map_err(|e| e.to_string())?;
                match ready_reason(&c) {
                    Some((_, r)) if r == *reason => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }
    // Settle: the first checks and a blip's second look are done.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let before: Vec<String> = s
        .api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c.name_any(),
                c.resource_version().unwrap_or_default()
            )
        })
        .collect();
    let writes_before = writes(&op);
    let reconciles = |op: &Operator| {
        ["ready", "stalled", "retrying", "transient"]
            .iter()
            .filter_map(|r| op.metric(&format!("bbconn_reconcile_total{{result=\"{r}\"}}")))
            .sum::<f64>()
    };
    let checks_before = reconciles(&op);
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after: Vec<String> = s
        .api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c.name_any(),
                c.resource_version().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(before, after, "status rewritten at steady state");
    assert_eq!(writes(&op), writes_before, "status writes at steady state");
    assert!(
        reconciles(&op) - checks_before >= 20.0,
        "the connections were re-checked meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connection_is_reconciled_by_exactly_one_shard() {
    let s = setup("shards").await;
    apply(&s.admin, &secret("good", GOOD)).await;
    apply(&s.admin, &secret("moving", "dc-alice-revoked-token-0105")).await;
    let shard = |n: &str| format!(", labels: {{bbconn.dev/shard: {n}}}");
    let mut manifest = String::new();
    for i in 0..3 {
        manifest.push_str(&on_secret(&format!("default-{i}"), "good", ""));
        manifest.push_str(&on_secret(&format!("a-{i}"), "good", &shard("a")));
        manifest.push_str(&on_secret(&format!("b-{i}"), "good", &shard("b")));
    }
    manifest.push_str(&on_secret("mover", "moving", &shard("a")));
    let flags = |shard: Option<&str>| {
        let mut f = s.world.net_flags();
        if let Some(n) = shard {
            f.push(format!("--shard={n}"));
        }
        f
    };
    let ops = [
        (
            "default",
            Operator::start(&s.sa, "default", &s.cluster.dir, &flags(None)),
        ),
        (
            "a",
            Operator::start(&s.sa, "shard-a", &s.cluster.dir, &flags(Some("a"))),
        ),
        (
            "b",
            Operator::start(&s.sa, "shard-b", &s.cluster.dir, &flags(Some("b"))),
        ),
    ];
    apply(&s.admin, &manifest).await;
    for i in 0..3 {
        for p in ["default", "a", "b"] {
            wait_ready(&s.api, &format!("{p}-{i}"), Duration::from_secs(30)).await;
        }
    }
    // Each shard's cache (and so its metrics) holds exactly its connections.
    let names = |op: &Operator| -> Vec<String> {
        let (_, body) = op.get("/metrics").unwrap();
        let mut v: Vec<String> = body
            .lines()
            .filter(|l| l.starts_with("bbconn_connection_ready{"))
            .filter_map(|l| {
                l.split("name=\"")
                    .nth(1)?
                    .split('"')
                    .next()
                    .map(String::from)
            })
            .collect();
        v.sort();
        v
    };
    for (shard, op) in &ops {
        let mine: Vec<String> = names(op);
        let prefix = format!("{shard}-");
        assert!(
            mine.iter()
                .all(|n| n.starts_with(&prefix) || (n == "mover" && *shard == "a")),
            "shard {shard} holds {mine:?}"
        );
        assert_eq!(
            mine.iter().filter(|n| n.starts_with(&prefix)).count(),
            3,
            "{shard}: {mine:?}"
        );
        assert!(op.metric("bbconn_leader{").is_some() || op.metric("bbconn_leader ").is_some());
    }
    let leases: Api<Lease> = Api::namespaced(s.admin.clone(), "bbconn-system");
    for lease in ["bbconn-leader", "bbconn-leader-a", "bbconn-leader-b"] {
        assert!(leases.get_opt(lease).await.unwrap().is_some(), "{lease}");
    }
    // Relabelled from a to b: b checks it, a lets it go.
    let patch = serde_json::json!({"metadata": {"labels": {"bbconn.dev/shard": "b"}}});
    s.api
        .patch("mover", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let moved = Instant::now();
    apply(&s.admin, &secret("moving", GOOD)).await;
    wait_ready(&s.api, "mover", Duration::from_secs(20)).await;
    eprintln!(
        "shards: relabelled connection checked by its new shard {:?} after the move",
        moved.elapsed()
    );
    eventually(Duration::from_secs(10), "shard a to let go", || async {
        if names(&ops[1].1).contains(&"mover".to_string()) {
            Err("still in shard a".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    assert!(names(&ops[2].1).contains(&"mover".to_string()));
    assert!(
        ops[2].1.get("/metrics").unwrap().1.contains("shard=\"b\""),
        "metrics say which shard"
    );
    assert_revoked_sent_once(&s);
}

/// SIGTERM stops the operator even while the API server never answered (no leader election, so
/// no Lease wait to break out of): within its 10 s grace, not by a SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_operator_while_the_api_server_is_down() {
    let tmp = tempfile::Builder::new()
        .prefix("bbconn-sigterm-")
        .tempdir()
        .unwrap();
    let dir = tmp.path().to_path_buf();
    // A port that was free a moment ago: nothing answers there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{port}\"}}}}]\n\
             users: [{{name: u, user: {{token: t}}}}]\ncontexts: [{{name: c, context: {{cluster: c, user: u}}}}]\ncurrent-context: c\n"
        ),
    )
    .unwrap();
    let mut op = Operator::start(
        &kubeconfig,
        "down",
        &dir,
        &["--leader-election=false".to_string()],
    );
    eventually(
        Duration::from_secs(20),
        "the operator serving /healthz",
        || async {
            op.get("/healthz")
                .map(|_| ())
                .ok_or_else(|| "not yet".to_string())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    let code = op.stop();
    println!(
        "SIGTERM with the API server down: exited after {:.1}s",
        t.elapsed().as_secs_f64()
    );
    assert_eq!(
        code,
        Some(0),
        "still running 15 s after SIGTERM: {}",
        op.logs()
    );
}
