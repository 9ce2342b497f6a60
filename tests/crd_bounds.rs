//! The API server refuses what the operator cannot use: durations out of range and auth fields
//! that do not go together (the CRD's CEL rules) and over-long values (its schema), with a
//! message that names the field, as `bbconn check` does offline. Runs against the local control plane (tests/controlplane).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::cluster::{Cluster, apply, eventually};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_refuses_out_of_range_durations() {
    let cluster = Cluster::start("crd-bounds");
    let client = cluster.client().await;
    let crd = std::fs::read_to_string(
        common::cluster::repo().join("crds/bbconn.dev_bitbucketconnections.yaml"),
    )
    .unwrap();
    apply(&client, &crd).await;
    let typed: Api<bbconn::api::BitbucketConnection> = Api::namespaced(client.clone(), "default");
    eventually(Duration::from_secs(30), "the CRD to be served", || async {
        typed
            .list(&ListParams::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    let ar = kube::api::ApiResource::erase::<bbconn::api::BitbucketConnection>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let create = |name: String, extra: serde_json::Value| {
        let api = api.clone();
        async move {
            let mut spec = serde_json::json!({
                "flavor": "DataCenter",
                "url": "https://bitbucket.example.com",
                "auth": {"method": "AccessToken", "secretRef": {"name": "t"}},
            });
            for (k, v) in extra.as_object().unwrap() {
                spec[k] = v.clone();
            }
            let obj: DynamicObject = serde_json::from_value(serde_json::json!({
                "apiVersion": "bbconn.dev/v1alpha1",
                "kind": "BitbucketConnection",
                "metadata": {"name": name},
                "spec": spec,
            }))
            .unwrap();
            api.create(&PostParams::default(), &obj).await
        }
    };
    let refused = [
        (
            serde_json::json!({"interval": "0s"}),
            "spec.interval must be between 1s and 24h",
        ),
        (
            serde_json::json!({"interval": "500ms"}),
            "spec.interval must be between 1s and 24h",
        ),
        (
            serde_json::json!({"interval": "48h"}),
            "spec.interval must be between 1s and 24h",
        ),
        (
            serde_json::json!({"interval": "99999999999999999999h"}),
            "spec.interval",
        ),
        (
            serde_json::json!({"expiryWarning": "9000h"}),
            "spec.expiryWarning must be at most 8760h",
        ),
        (
            serde_json::json!({"expiryWarning": "99999999999999999999h"}),
            "spec.expiryWarning",
        ),
        (serde_json::json!({"interval": "-5m"}), "spec.interval"),
        (
            serde_json::json!({"interval": "1".repeat(100) + "s"}),
            "spec.interval",
        ),
        (
            serde_json::json!({"url": format!("https://{}", "a".repeat(3000))}),
            "spec.url",
        ),
        // A consumer's Secret (secretRef.format): method optional, keys and git.username not.
        (
            serde_json::json!({"auth": {"secretRef": {"name": "t"}}}),
            "spec.auth.method is required",
        ),
        (
            serde_json::json!({"auth": {"secretRef": {"name": "t", "format": "Flux", "keys": {"password": "p"}}, "method": "Basic"}}),
            "secretRef.keys cannot be combined with secretRef.format",
        ),
        (
            serde_json::json!({"auth": {"secretRef": {"name": "t", "format": "ArgoCD"}, "method": "OAuthApplicationLink"}}),
            "reads a consumer's git credentials",
        ),
        (
            serde_json::json!({"auth": {"secretRef": {"name": "t", "format": "ArgoCD"}}, "git": {"username": "alice"}}),
            "spec.git.username cannot be combined",
        ),
        (
            serde_json::json!({"auth": {"secretRef": {"name": "t", "format": "Argo"}}}),
            "spec.auth.secretRef.format",
        ),
    ];
    for (i, (extra, expected)) in refused.into_iter().enumerate() {
        let e = create(format!("refused-{i}"), extra.clone()).await;
        let msg = match e {
            Err(kube::Error::Api(s)) => s.message,
            other => panic!("{extra}: {other:?}"),
        };
        assert!(msg.contains(expected), "{extra}: {msg}");
    }
    for (i, extra) in [
        serde_json::json!({"interval": "1s"}),
        serde_json::json!({"interval": "24h"}),
        serde_json::json!({"interval": "1h30m"}),
        serde_json::json!({"expiryWarning": "8760h"}),
        serde_json::json!({}),
        serde_json::json!({"auth": {"secretRef": {"name": "t", "format": "ArgoCD"}}}),
        serde_json::json!({"auth": {"secretRef": {"name": "t", "format": "Flux"}, "method": "AccessToken"}, "git": {"access": "Write"}}),
        serde_json::json!({"auth": {"secretRef": {"name": "t"}, "method": "OAuthApplicationLink", "tokenUrl": "https://bitbucket.example.com/rest/oauth2/latest/token"}}),
        serde_json::json!({"auth": {"secretRef": {"name": "t", "keys": {"token": "pat"}}, "method": "AccessToken"}}),
    ]
    .into_iter()
    .enumerate()
    {
        create(format!("accepted-{i}"), extra.clone())
            .await
            .unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
}
