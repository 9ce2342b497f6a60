//! Causes that come from reading the cluster, which `bbconn check` cannot meet: the engine is fed
//! the lookup results the operator would get.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bbconn::api::BitbucketConnectionSpec;
use bbconn::catalogue::{Cause, Check};
use bbconn::checks::{Lookup, Verdict};
use bbconn::engine::{self, Env, Target};
use bbconn::transport::NetConfig;

fn spec() -> BitbucketConnectionSpec {
    serde_json::from_value(serde_json::json!({
        "flavor": "DataCenter",
        "url": "https://bitbucket.example.com",
        "auth": {"method": "AccessToken", "secretRef": {"name": "tok"}}
    }))
    .unwrap()
}

async fn first_failure(secret: Lookup) -> (Check, Cause, String) {
    let env = std::sync::Arc::new(Env::new(NetConfig::default()));
    let spec = spec();
    let report = engine::run(
        &env,
        Target {
            namespace: "ci",
            name: "c",
            spec: &spec,
            secret: Some(&secret),
            ca_bundle: None,
            egress_proxy_secret: None,
            ssh_secret: None,
            known_hosts: None,
            withheld: None,
            fresh: false,
        },
    )
    .await;
    let r = report
        .results
        .iter()
        .find(|r| matches!(r.verdict, Verdict::Failed(_)))
        .unwrap();
    let Verdict::Failed(f) = &r.verdict else {
        unreachable!()
    };
    // Nothing after the failed check ran: the rest are NotChecked.
    assert!(
        report
            .results
            .iter()
            .skip(1)
            .all(|r| matches!(r.verdict, Verdict::Skipped { .. }))
    );
    (r.check, f.cause, f.message.clone())
}

#[tokio::test]
async fn missing_secret_is_secret_not_found() {
    let (check, cause, message) = first_failure(Lookup::NotFound).await;
    assert_eq!(
        (check, cause),
        (Check::CredentialsResolved, Cause::SecretNotFound)
    );
    assert!(message.contains("ci/tok"), "{message}");
}

#[tokio::test]
async fn unreadable_secret_is_secret_forbidden() {
    let (check, cause, _) =
        first_failure(Lookup::Forbidden("secrets \"tok\" is forbidden".into())).await;
    assert_eq!(
        (check, cause),
        (Check::CredentialsResolved, Cause::SecretForbidden)
    );
}

#[tokio::test]
async fn api_trouble_reading_the_secret_is_transient() {
    let (_, cause, _) = first_failure(Lookup::Failed("etcd timeout".into())).await;
    assert!(cause.is_transient());
}
