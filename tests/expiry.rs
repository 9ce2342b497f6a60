//! Expiry for every credential: where Bitbucket does not say when a credential expires, the
//! Secret's bbconn.dev/expires-at does, and warnings, status and the expiry metric follow it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use bbconn::telemetry::Metrics;
use common::World;
use kube::core::DeserializeGuard;
use kube::runtime::{reflector, watcher};

const NS: &str = "expiry";

fn connection(name: &str, spec: &str, token: &str, expires_at: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-cred\n  namespace: {NS}\n  annotations: {{bbconn.dev/expires-at: \"{expires_at}\"}}\nstringData: {{token: {token}}}\n---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n{spec}  auth: {{method: AccessToken, secretRef: {{name: {name}-cred}}}}\n  tls: {{caBundleRef: {{kind: ConfigMap, name: test-ca}}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_expiry_warns_expires_and_is_checked_for_form() {
    let world = World::start().await;
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(10 * 24);
    let past = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24);
    let cloud = "  flavor: Cloud\n";
    let dc = "  flavor: DataCenter\n  url: https://bitbucket.example.com\n";
    let mut manifest = world.ca_configmap(NS);
    manifest.push_str(&connection(
        "soon",
        cloud,
        "cloud-repo-token-infra-0005",
        &soon.to_string(),
    ));
    manifest.push_str(&connection(
        "garbled",
        cloud,
        "cloud-repo-token-infra-0005",
        "next tuesday",
    ));
    // Data Center 10 serves an unknown token as anonymous, which cannot tell expired from
    // revoked; the declared expiry can.
    manifest.push_str(&connection(
        "lapsed",
        dc,
        "dc-anonymous-token-0122",
        &past.to_string(),
    ));
    let out = world.check(&manifest).await;
    assert_eq!(out.code, 1, "{}", out.stderr);

    let (s, r, _) = out.condition("soon", "Authenticated");
    assert_eq!((s.as_str(), r.as_str()), ("True", "TokenExpiringSoon"));
    let cred = &out.status("soon")["credential"];
    assert_eq!(cred["expirySource"], "Declared");
    assert_eq!(
        cred["expiresAt"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap(),
        soon
    );
    assert_eq!(out.condition("soon", "Ready").0, "True");

    let (s, r, m) = out.condition("garbled", "CredentialsResolved");
    assert_eq!((s.as_str(), r.as_str()), ("False", "CredentialMalformed"));
    assert!(
        m.contains("bbconn.dev/expires-at") && m.contains("RFC 3339"),
        "{m}"
    );

    let (s, r, m) = out.condition("lapsed", "Authenticated");
    assert_eq!((s.as_str(), r.as_str()), ("False", "TokenExpired"), "{m}");

    // The expiry metric (what the TokenExpiringSoon alert reads), as the operator's /metrics
    // computes it from its cache holding these statuses: the declared instant, and no series for
    // a connection whose expiry is not known.
    let exposition = expose(&manifest, &out);
    let series = |name: &str| {
        let prefix =
            format!("bbconn_token_expiry_timestamp_seconds{{namespace=\"{NS}\",name=\"{name}\"}} ");
        exposition
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse::<i64>().unwrap())
    };
    assert_eq!(series("soon"), Some(soon.as_second()), "{exposition}");
    assert_eq!(series("lapsed"), Some(past.as_second()), "{exposition}");
    assert_eq!(series("garbled"), None, "{exposition}");
}

/// The operator's metrics exposition for the manifest's connections with the statuses `bbconn
/// check` reached, compacted as the operator's cache keeps them.
fn expose(manifest: &str, out: &common::Checked) -> String {
    let (reader, mut writer) = reflector::store::<DeserializeGuard<BitbucketConnection>>();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(manifest).unwrap();
    for doc in docs
        .into_iter()
        .filter(|d| d["kind"] == "BitbucketConnection")
    {
        let mut c: BitbucketConnection = serde_json::from_value(doc).unwrap();
        let status =
            serde_json::from_value(out.status(c.metadata.name.as_deref().unwrap()).clone())
                .unwrap();
        c.status = Some(bbconn::status::compact(&status));
        writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(c))));
    }
    Metrics::new(Some(reader)).encode()
}
