//! The operator with transport SSH, end to end: a real kube-apiserver and etcd, `bbconn run`
//! under the RBAC deploy/ grants, and the simulator's SSH server. Connections checked over SSH
//! alone become Ready or show their cause; a refused key is offered once however many intervals
//! pass; rotating the key's Secret or the known_hosts ConfigMap is seen at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use bbconn_sim::ssh::{ALICE_ED25519, STRANGER_ED25519};
use bbconn_sim::{Fixture, Pki, Simulator, SshEventKind};
use common::cluster::{Cluster, Operator, apply, eventually};
use kube::api::{Api, ListParams};
use std::time::{Duration, Instant};

const NS: &str = "e2e-ssh";
const WAIT: Duration = Duration::from_secs(30);

fn fixture() -> Fixture {
    Fixture::from_yaml(&format!(
        "listeners:\n  - {{ name: cloud-ssh, kind: ssh, serves: [cloud] }}\ncloud:\n  users:\n    - {{ username: alice, email: alice@example.com, sshKeys: [\"{}\"] }}\n  workspaces:\n    - slug: acme\n      repositories:\n        - {{ slug: app, access: {{ alice: write }} }}\n",
        ALICE_ED25519.public_line()
    ))
    .unwrap()
}

fn indented(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn key_secret(name: &str, key: &str, known_hosts: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {NS}}}\nstringData:\n  identity: |\n{}  known_hosts: |\n{}",
        indented(key),
        indented(known_hosts)
    )
}

fn ssh_connection(name: &str, secret: &str, extra: &str) -> String {
    format!(
        "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  flavor: Cloud\n  interval: 2s\n  requirements: {{repositories: [{{name: acme/app}}]}}\n  git:\n    transport: SSH\n    ssh:\n      url: ssh://git@ssh.bitbucket.org\n      secretRef: {{name: {secret}}}\n{extra}"
    )
}

async fn wait_for(api: &Api<BitbucketConnection>, name: &str, type_: &str, want: (&str, &str)) {
    eventually(WAIT, &format!("{name}: {type_}={want:?}"), || async {
        let c = api.get(name).await.map_err(|e| e.to_string())?;
        let got = c.status.as_ref().and_then(|s| {
            s.conditions
                .iter()
                .find(|x| x.type_ == type_)
                .map(|x| (x.status.clone(), x.reason.clone()))
        });
        match got {
            Some((s, r)) if s == want.0 && r == want.1 => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_checks_ssh_connections() {
    let cluster = Cluster::start("operator-ssh");
    let admin = cluster.client().await;
    let pki = Pki::new();
    let sim = Simulator::start(fixture(), &pki).await.unwrap();
    let port = sim.addr("cloud-ssh").unwrap().port();
    let known_hosts = sim
        .ssh_known_hosts("cloud-ssh", "ssh.bitbucket.org", 22)
        .join("\n");
    let stale = sim
        .ssh_known_hosts("cloud-ssh", "bitbucket.org", 22)
        .join("\n");

    let crd = std::fs::read_to_string(
        common::cluster::repo().join("crds/bbconn.dev_bitbucketconnections.yaml"),
    )
    .unwrap();
    apply(&admin, &crd).await;
    apply(&admin, &common::cluster::deploy_rbac()).await;
    apply(
        &admin,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n"),
    )
    .await;
    let api: Api<BitbucketConnection> = Api::namespaced(admin.clone(), NS);
    eventually(WAIT, "the CRD to be served", || async {
        api.list(&ListParams::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    let sa = cluster
        .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
        .await;
    let flags = vec![
        "--address-class=127.0.0.0/8=public".to_string(),
        format!("--connect-to=ssh.bitbucket.org:22:127.0.0.1:{port}"),
        "--connect-timeout=2".to_string(),
        "--request-timeout=5".to_string(),
    ];
    let mut op = Operator::start(&sa, "ssh-a", &cluster.dir, &flags);

    // A healthy Flux-style key, a key Bitbucket does not know, and an Argo CD-style known_hosts
    // ConfigMap that still names bitbucket.org.
    let argo_cm = |kh: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: argocd-ssh-known-hosts-cm, namespace: {NS}}}\ndata:\n  ssh_known_hosts: |\n{}",
            indented(kh)
        )
    };
    let docs = [
        key_secret("alice-key", ALICE_ED25519.private, &known_hosts),
        ssh_connection("healthy", "alice-key", ""),
        key_secret("stranger-key", STRANGER_ED25519.private, &known_hosts),
        ssh_connection("stranger", "stranger-key", ""),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: argo-repo, namespace: {NS}}}\nstringData:\n  url: ssh://git@ssh.bitbucket.org/acme/app.git\n  sshPrivateKey: |\n{}",
            indented(ALICE_ED25519.private)
        ),
        argo_cm(&stale),
        "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {name: argo, namespace: e2e-ssh}\nspec:\n  flavor: Cloud\n  git:\n    transport: SSH\n    ssh:\n      secretRef: {name: argo-repo, format: ArgoCD}\n      knownHostsRef: {kind: ConfigMap, name: argocd-ssh-known-hosts-cm}\n".to_string(),
    ];
    for d in &docs {
        apply(&admin, d).await;
    }
    wait_for(&api, "healthy", "Ready", ("True", "AllChecksPassed")).await;
    wait_for(
        &api,
        "stranger",
        "Authenticated",
        ("False", "SshKeyRejected"),
    )
    .await;
    wait_for(&api, "argo", "HostKeyVerified", ("False", "HostKeyUnknown")).await;
    let healthy = api.get("healthy").await.unwrap();
    let ssh = healthy.status.unwrap().git.unwrap().ssh.unwrap();
    assert_eq!(ssh.host_keys.len(), 3, "{ssh:?}");

    // Five intervals of 2 s: the refused key is not offered again.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let fp = STRANGER_ED25519.fingerprint();
    let offers = sim
        .ssh_events()
        .into_iter()
        .filter(|e| matches!(&e.kind, SshEventKind::Auth(a) if a.fingerprint == fp))
        .count();
    assert_eq!(offers, 1, "the refused key was offered {offers} times");
    assert!(op.is_running(), "{}", op.logs());
    // A restart reads the refusal from the status before it offers anything.
    op.stop();
    op = Operator::start(&sa, "ssh-b", &cluster.dir, &flags);
    let stranger = api.get("stranger").await.unwrap();
    let withheld = stranger.status.unwrap().withheld.unwrap();
    assert_eq!(withheld.credential, bbconn::withhold::Kind::SshKey);
    assert_eq!(withheld.cause, "SshKeyRejected");
    tokio::time::sleep(Duration::from_secs(8)).await;
    let offers = sim
        .ssh_events()
        .into_iter()
        .filter(|e| matches!(&e.kind, SshEventKind::Auth(a) if a.fingerprint == fp))
        .count();
    assert_eq!(
        offers, 1,
        "after a restart the refused key was offered {offers} times"
    );

    // The key's Secret rotated to a registered key: Ready at once.
    let started = Instant::now();
    apply(
        &admin,
        &key_secret("stranger-key", ALICE_ED25519.private, &known_hosts),
    )
    .await;
    wait_for(&api, "stranger", "Ready", ("True", "AllChecksPassed")).await;
    eprintln!("SSH key rotation to Ready: {:?}", started.elapsed());
    // The known_hosts ConfigMap corrected: Ready at once.
    let started = Instant::now();
    apply(&admin, &argo_cm(&known_hosts)).await;
    wait_for(&api, "argo", "Ready", ("True", "AllChecksPassed")).await;
    eprintln!(
        "known_hosts ConfigMap fix to Ready: {:?}",
        started.elapsed()
    );
    // No private key in the operator's log.
    let logs = op.logs();
    for key in [ALICE_ED25519.private, STRANGER_ED25519.private] {
        let body = key.lines().nth(2).unwrap();
        assert!(!logs.contains(body), "a private key reached the log");
    }
    op.stop();
}
