//! The lockout rule in the engine: across runs of one environment (as the operator keeps it), a
//! credential Bitbucket or git refused is sent once, and again only for a fresh check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use bbconn::checks::{Lookup, Meta};
use bbconn::engine::{Env, Target, run};
use common::World;
use std::collections::BTreeMap;
use std::sync::Arc;

fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

async fn three_runs_then_a_fresh_one(
    world: &World,
    yaml: &str,
    secret: &[(&str, &str)],
) -> Vec<String> {
    let conn: BitbucketConnection = serde_saphyr::from_str(yaml).unwrap();
    let data: BTreeMap<String, Vec<u8>> = secret
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    let secret = Lookup::Found(data, Meta::default());
    let mut ca = BTreeMap::new();
    ca.insert("ca.crt".to_string(), world.pki.ca_pem().into_bytes());
    let ca = Lookup::Found(ca, Meta::default());
    let env = Arc::new(Env::new(world.net().net_config()));
    let mut messages = Vec::new();
    for fresh in [false, false, false, true] {
        let report = run(
            &env,
            Target {
                namespace: "w",
                name: "c",
                spec: &conn.spec,
                secret: Some(&secret),
                ca_bundle: Some(&ca),
                egress_proxy_secret: None,
                ssh_secret: None,
                known_hosts: None,
                withheld: None,
                fresh,
            },
        )
        .await;
        let failure = report
            .first_failure()
            .map(|f| format!("{}: {}", f.cause, f.message));
        messages.push(failure.unwrap_or_default());
    }
    messages
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_password_is_sent_once_per_fresh_check() {
    let world = World::start().await;
    let yaml = "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {name: c, namespace: w}\nspec:\n  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {method: Basic, secretRef: {name: c-cred}}\n  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}\n";
    let wrong = basic("bob", "not-bobs-password-0191");
    let m = three_runs_then_a_fresh_one(
        &world,
        yaml,
        &[("username", "bob"), ("password", "not-bobs-password-0191")],
    )
    .await;
    assert!(
        m.iter().all(|m| m.starts_with("CredentialsRejected")),
        "{m:?}"
    );
    assert!(m[1].contains("has not sent this credential again"), "{m:?}");
    let sent = world
        .sim
        .requests()
        .iter()
        .filter(|r| r.authorization.as_deref() == Some(wrong.as_str()))
        .count();
    assert_eq!(sent, 2, "once, then once more for the fresh check");
    assert!(world.sim.captcha_users().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_form_git_refused_is_sent_once_per_fresh_check() {
    let world = World::start().await;
    // The account email as git's username: REST accepts the API token, git does not.
    let yaml = "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {name: c, namespace: w}\nspec:\n  flavor: Cloud\n  auth: {method: ApiToken, secretRef: {name: c-cred}}\n  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}\n  requirements: {repositories: [{name: acme/infra}]}\n  git: {username: alice@example.com}\n";
    let token = "cloud-api-alice-full-0001";
    let m = three_runs_then_a_fresh_one(
        &world,
        yaml,
        &[("username", "alice@example.com"), ("token", token)],
    )
    .await;
    assert!(m.iter().all(|m| m.starts_with("GitAuthRejected")), "{m:?}");
    let git_form = basic("alice@example.com", token);
    let sent = world
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.path.ends_with("/info/refs") && r.authorization.as_deref() == Some(git_form.as_str())
        })
        .count();
    assert_eq!(sent, 2, "once, then once more for the fresh check");
}
