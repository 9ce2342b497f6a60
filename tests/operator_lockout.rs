//! Never lock an account: on a real control plane, a Data Center password Bitbucket rejected is
//! sent once, however often the connection is re-checked, until the Secret changes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use common::cluster::{Installed, Operator, apply, eventually};
use common::connection;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use std::time::{Duration, Instant};

/// How many reconciles a process has finished (its bbconn_reconcile_total, every result).
fn reconciles(op: &Operator) -> f64 {
    op.get("/metrics")
        .map(|(_, body)| {
            body.lines()
                .filter(|l| l.starts_with("bbconn_reconcile_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        })
        .unwrap_or(0.0)
}

/// Until `op` has reconciled a few more times (the three connections, 1 s interval).
async fn checked_by(op: &Operator, before: f64) {
    eventually(WAIT, "checks by the process", || async {
        let now = reconciles(op);
        (now >= before + 6.0).then_some(()).ok_or(format!("{now}"))
    })
    .await;
}

const NS: &str = "lockout";
const WAIT: Duration = Duration::from_secs(30);
/// How long the rejected password is watched at a 1 s interval.
const WATCH: Duration = Duration::from_secs(20);

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn reason(c: &BitbucketConnection, type_: &str) -> Option<(String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|x| x.type_ == type_)
        .map(|x| (x.status.clone(), x.reason.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_password_is_sent_once_until_the_secret_changes() {
    let Installed {
        cluster,
        admin,
        world,
        sa,
        api,
    } = Installed::new("lockout", NS).await;
    let mut op = Operator::start(&sa, "lockout", &cluster.dir, &world.net_flags());

    let spec = "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {method: Basic, secretRef: {name: pw-cred}}\n  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}\n  interval: 1s\n";
    let wrong = basic("alice", "not-alices-password-0190");
    // Two connections share the Secret, and so the rule.
    apply(
        &admin,
        &connection(
            NS,
            "pw",
            spec,
            &[
                ("username", "alice"),
                ("password", "not-alices-password-0190"),
            ],
        ),
    )
    .await;
    apply(
        &admin,
        &format!(
            "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: pw-twin, namespace: {NS}}}\nspec:\n{spec}"
        ),
    )
    .await;
    for name in ["pw", "pw-twin"] {
        eventually(WAIT, &format!("{name} rejected"), || async {
            let c = api.get(name).await.map_err(|e| e.to_string())?;
            match reason(&c, "Authenticated") {
                Some((s, r)) if s == "False" && r == "CredentialsRejected" => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    // Cloud's rate-limit headers feed a gauge per host, so an alert can fire before a 429.
    apply(
        &admin,
        &connection(
            NS,
            "near-limit",
            "  flavor: Cloud\n  auth: {method: AccessToken, secretRef: {name: near-limit-cred}}\n  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}\n",
            &[("token", "cloud-ratelimit-token-0124")],
        ),
    )
    .await;
    eventually(WAIT, "the rate-limit gauges", || async {
        let near = op.metric(
            "bbconn_bitbucket_rate_limit_near{host=\"api.bitbucket.org\",resource=\"api\"}",
        );
        let limit =
            op.metric("bbconn_bitbucket_rate_limit{host=\"api.bitbucket.org\",resource=\"api\"}");
        match (near, limit) {
            (Some(n), Some(l)) if n == 1.0 && l == 1000.0 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let sent_once = || {
        let sent = world
            .sim
            .requests()
            .iter()
            .filter(|r| r.authorization.as_deref() == Some(wrong.as_str()))
            .count();
        assert_eq!(sent, 1, "the rejected password was sent {sent} times");
        assert!(
            world.sim.captcha_users().is_empty(),
            "the simulator put a user behind a CAPTCHA"
        );
    };
    let started = Instant::now();
    while started.elapsed() < WATCH {
        tokio::time::sleep(Duration::from_secs(5)).await;
        sent_once();
    }

    // The refusal is kept in the status: five restarts of the operator send it no more.
    for i in 0..5 {
        op.stop();
        op = Operator::start(
            &sa,
            &format!("lockout-{i}"),
            &cluster.dir,
            &world.net_flags(),
        );
        checked_by(&op, 0.0).await;
        sent_once();
    }
    op.stop();
    // Two replicas with leader election; the leader killed three times: no new leader sends it.
    let leases: Api<Lease> = Api::namespaced(admin.clone(), "bbconn-system");
    let mut replicas = [
        Operator::start(&sa, "replica-a", &cluster.dir, &world.net_flags()),
        Operator::start(&sa, "replica-b", &cluster.dir, &world.net_flags()),
    ];
    for _ in 0..3 {
        let holder = eventually(WAIT, "a live leader", || async {
            let l = leases
                .get("bbconn-leader")
                .await
                .map_err(|e| e.to_string())?;
            let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            match h.as_str() {
                "replica-a" => Ok(0),
                "replica-b" => Ok(1),
                other => Err(other.to_string()),
            }
        })
        .await;
        let other = 1 - holder;
        let before = reconciles(&replicas[other]);
        let pid = replicas[holder].pid();
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
        let identity = ["replica-a", "replica-b"][other];
        eventually(WAIT, "the other replica takes the Lease", || async {
            let l = leases
                .get("bbconn-leader")
                .await
                .map_err(|e| e.to_string())?;
            let h = l.spec.and_then(|s| s.holder_identity).unwrap_or_default();
            (h == identity).then_some(()).ok_or(h)
        })
        .await;
        checked_by(&replicas[other], before).await;
        sent_once();
        replicas[holder].stop();
        replicas[holder] = Operator::start(
            &sa,
            ["replica-a", "replica-b"][holder],
            &cluster.dir,
            &world.net_flags(),
        );
    }
    let [a, mut b] = replicas;
    b.stop();
    op = a;
    // Still checked (the network path and TLS), still False, and it says so.
    let c = api.get("pw").await.unwrap();
    assert_eq!(
        reason(&c, "Authenticated"),
        Some(("False".into(), "CredentialsRejected".into()))
    );
    let status = c.status.clone().unwrap();
    let cred = status.credential.clone().unwrap();
    assert!(cred.withheld_since.is_some(), "{cred:?}");
    let message = &status
        .conditions
        .iter()
        .find(|x| x.type_ == "Authenticated")
        .unwrap()
        .message;
    assert!(
        message.contains("has not sent this credential again since")
            && message.contains("bbconn.dev/requested-at"),
        "{message}"
    );
    eventually(WAIT, "the withheld gauge", || async {
        match op.metric(&format!(
            "bbconn_credential_withheld{{namespace=\"{NS}\",name=\"pw\"}}"
        )) {
            Some(1.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Rotating the Secret sends the new one at once.
    apply(
        &admin,
        &connection(
            NS,
            "pw",
            spec,
            &[
                ("username", "alice"),
                ("password", "dc-alice-password-0101"),
            ],
        ),
    )
    .await;
    let rotated = Instant::now();
    eventually(WAIT, "pw authenticated after rotation", || async {
        let c = api.get("pw").await.map_err(|e| e.to_string())?;
        match reason(&c, "Authenticated") {
            Some((s, _)) if s == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let took = rotated.elapsed();
    eprintln!("Secret rotation to Authenticated after restarts and leader changes: {took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    let c = api.get("pw").await.unwrap();
    assert!(
        c.status
            .unwrap()
            .credential
            .unwrap()
            .withheld_since
            .is_none(),
        "no longer withheld"
    );
    let sent = world
        .sim
        .requests()
        .iter()
        .filter(|r| r.authorization.as_deref() == Some(wrong.as_str()))
        .count();
    assert_eq!(sent, 1);
}
