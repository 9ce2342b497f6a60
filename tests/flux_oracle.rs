//! Flux's own source-controller as the oracle for discovered connections: the same
//! GitRepositories, reconciled by source-controller (built from its Go module by
//! tests/controlplane/source-controller.sh) and checked by `bbconn run --discover flux`, against
//! the simulator's Data Center SSH server. Where Flux fails, bbconn must fail too, and say why;
//! where Flux succeeds, bbconn must say Ready too.
//!
//! The simulator serves a real repository to upload-pack (one commit, its pack over the SSH
//! exec channel), so source-controller's shallow clone of the healthy repository completes and
//! stores an artifact: both must then report Ready=True. bbconn itself never fetches the pack;
//! it reads the advertisements only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::BitbucketConnection;
use bbconn_sim::ssh::{ALICE_ED25519, DEPLOY_ED25519, STRANGER_ED25519};
use bbconn_sim::{Fixture, Pki, Simulator};
use common::cluster::{Cluster, Operator, apply, eventually, repo};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NS: &str = "flux-system";
const WAIT: Duration = Duration::from_secs(60);

fn fixture() -> Fixture {
    Fixture::from_yaml(&format!(
        "listeners:\n  - {{ name: dc-ssh, kind: ssh, serves: [datacenter] }}\n  - {{ name: dc-https, tls: good, hosts: [127.0.0.1, bitbucket.example.com], serves: [datacenter] }}\n  - {{ name: proxy, kind: connectProxy, routes: {{ \"bitbucket.example.com:443\": dc-https }}, proxyAuth: {{ username: corp, password: corp-proxy-pw }} }}\ndatacenter:\n  tokens:\n    - {{ id: \"1\", name: good, value: BBDC-flux-good, kind: personal, user: alice, permissions: [REPO_WRITE] }}\n    - {{ id: \"2\", name: revoked, value: BBDC-flux-revoked, kind: personal, user: alice, permissions: [REPO_WRITE], revoked: true }}\n  users:\n    - {{ name: alice, password: alice-pw, id: 1, sshKeys: [\"{}\"] }}\n  projects:\n    - key: PROJ\n      accessKeys: [ {{ key: \"{}\", permission: read }} ]\n      repositories:\n        - {{ slug: app, access: {{ alice: REPO_WRITE }} }}\n",
        ALICE_ED25519.public_line(),
        DEPLOY_ED25519.public_line()
    ))
    .unwrap()
}

fn indented(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct SourceController(Child);
impl Drop for SourceController {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn source_controller(cluster: &Cluster) -> SourceController {
    let out = Command::new("bash")
        .arg(repo().join("tests/controlplane/source-controller.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "source-controller did not build");
    let bin = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let storage = cluster.dir.join("source-controller");
    std::fs::create_dir_all(&storage).unwrap();
    let storage_port = free_port();
    let log = std::fs::File::create(cluster.dir.join("source-controller.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--storage-path={}", storage.display()))
        .arg(format!("--storage-addr=127.0.0.1:{storage_port}"))
        .arg(format!("--storage-adv-addr=127.0.0.1:{storage_port}"))
        .arg(format!("--metrics-addr=127.0.0.1:{}", free_port()))
        .arg(format!("--health-addr=127.0.0.1:{}", free_port()))
        .args(["--watch-all-namespaces", "--enable-leader-election=false"])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("RUNTIME_NAMESPACE", NS)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    SourceController(child)
}

/// (status, reason, message) of the Ready condition in an object's status.
fn ready_of(status: Option<&serde_json::Value>) -> Option<(String, String, String)> {
    let c = status?
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == "Ready")?;
    let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
    Some((s("status"), s("reason"), s("message")))
}

/// bbconn's Ready verdict on the connection generated for GitRepository `name`, once it has
/// one, and the (status, reason) of its condition `check`.
async fn bbconn_verdict(
    api: &Api<BitbucketConnection>,
    name: &str,
    check: &str,
) -> ((String, String, String), Option<(String, String)>) {
    eventually(WAIT, &format!("bbconn's verdict on {name}"), || async {
        let c = api
            .get(&format!("flux-{name}"))
            .await
            .map_err(|e| e.to_string())?;
        let status = serde_json::to_value(&c.status).unwrap();
        let found = status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == check)
            .map(|c| {
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("status"), s("reason"))
            });
        match (ready_of(Some(&status)), found) {
            (Some(r), Some(f)) if r.0 != "Unknown" => Ok((r, Some(f))),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Flux's Ready verdict on a GitRepository, once it has one.
async fn flux_verdict(repos: &Api<DynamicObject>, name: &str) -> (String, String, String) {
    eventually(WAIT, &format!("Flux's verdict on {name}"), || async {
        let o = repos.get(name).await.map_err(|e| e.to_string())?;
        match ready_of(o.data.get("status")) {
            Some(r) if r.0 != "Unknown" => Ok(r),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flux_and_bbconn_agree_on_discovered_connections() {
    let cluster = Cluster::start("flux-oracle");
    let admin = cluster.client().await;
    let pki = Pki::new();
    let sim = Simulator::start(fixture(), &pki).await.unwrap();
    let port = sim.addr("dc-ssh").unwrap().port();
    let known_hosts = sim.ssh_known_hosts("dc-ssh", "127.0.0.1", port).join("\n");
    // The host listed with another key of the type the client will negotiate.
    let stranger_key = STRANGER_ED25519
        .public_line()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string();
    let wrong_host_key = format!("[127.0.0.1]:{port} ssh-ed25519 {stranger_key}");
    let https_port = sim.addr("dc-https").unwrap().port();

    let crd =
        std::fs::read_to_string(repo().join("crds/bbconn.dev_bitbucketconnections.yaml")).unwrap();
    apply(&admin, &crd).await;
    let out = Command::new("bash")
        .arg(repo().join("tests/controlplane/consumer-crds.sh"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let crds = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("flux");
    for e in std::fs::read_dir(crds).unwrap() {
        apply(&admin, &std::fs::read_to_string(e.unwrap().path()).unwrap()).await;
    }
    apply(
        &admin,
        &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {NS}}}\n"),
    )
    .await;
    apply(&admin, &common::cluster::deploy_rbac()).await;
    let rbac = Command::new("bash")
        .arg("-c")
        .arg("source tests/packaging/lib.sh && render --set discovery.flux.enabled=true --set discovery.flux.namespaces[0]=flux-system --show-only templates/discovery-rbac.yaml")
        .current_dir(repo())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(rbac.status.success());
    apply(&admin, &String::from_utf8(rbac.stdout).unwrap()).await;
    let repo_ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
    ));
    let repos: Api<DynamicObject> = Api::namespaced_with(admin.clone(), NS, &repo_ar);
    eventually(WAIT, "GitRepositories to be served", || async {
        repos
            .list(&ListParams::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;

    let secret = |name: &str, key: &str, kh: Option<&str>| {
        let kh = kh
            .map(|k| format!("  known_hosts: |\n{}", indented(k)))
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {NS}}}\nstringData:\n  identity: |\n{}{kh}",
            indented(key)
        )
    };
    let git_repo = |name: &str, path: &str, secret: &str| {
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  interval: 1m\n  timeout: 10s\n  url: ssh://git@127.0.0.1:{port}/{path}\n  ref: {{branch: master}}\n  secretRef: {{name: {secret}}}\n"
        )
    };
    // Over HTTPS, as Flux reads its Secret: username, password (here a Data Center token) and
    // the CA it trusts.
    let https_secret = |name: &str, username: &str, token: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: {NS}}}\nstringData:\n  username: {username}\n  password: {token}\n  ca.crt: |\n{}",
            indented(&pki.ca_pem())
        )
    };
    let https_repo = |name: &str| {
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  interval: 1m\n  timeout: 10s\n  url: https://127.0.0.1:{https_port}/scm/proj/app.git\n  ref: {{branch: master}}\n  secretRef: {{name: {name}}}\n"
        )
    };
    // Behind the consumer's own proxy (spec.proxySecretRef): the host resolves nowhere here,
    // only the proxy (which wants Basic credentials) reaches it.
    let proxy_port = sim.addr("proxy").unwrap().port();
    let proxied = |name: &str, password: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-proxy, namespace: {NS}}}\nstringData:\n  address: http://127.0.0.1:{proxy_port}\n  username: corp\n  password: {password}\n---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  interval: 1m\n  timeout: 10s\n  url: https://bitbucket.example.com/scm/proj/app.git\n  ref: {{branch: master}}\n  secretRef: {{name: https-healthy}}\n  proxySecretRef: {{name: {name}-proxy}}\n"
        )
    };
    // (GitRepository, what bbconn must say: condition type and reason)
    let failing = [
        (
            "proxy-wrong-password",
            "NetworkPathValid",
            "EgressProxyAuthRequired",
        ),
        ("stranger", "Authenticated", "SshKeyRejected"),
        ("wrong-host-key", "HostKeyVerified", "HostKeyMismatch"),
        ("no-known-hosts", "CredentialsResolved", "SecretKeyMissing"),
        ("missing", "RepositoryAccess", "RepositoryNotFound"),
        (
            "https-revoked-token",
            "Authenticated",
            "CredentialsRejected",
        ),
        (
            "https-wrong-username",
            "Authenticated",
            "CredentialsRejected",
        ),
    ];
    for d in [
        secret("alice", ALICE_ED25519.private, Some(&known_hosts)),
        secret("stranger", STRANGER_ED25519.private, Some(&known_hosts)),
        secret(
            "wrong-host-key",
            ALICE_ED25519.private,
            Some(&wrong_host_key),
        ),
        secret("no-known-hosts", ALICE_ED25519.private, None),
        // A read-only access key: Flux only fetches, so it works, and bbconn (Read: no
        // ImageUpdateAutomation pushes through it) must agree.
        secret("read-only", DEPLOY_ED25519.private, Some(&known_hosts)),
        https_secret("https-revoked-token", "alice", "BBDC-flux-revoked"),
        https_repo("https-revoked-token"),
        https_secret("https-wrong-username", "bob", "BBDC-flux-good"),
        https_repo("https-wrong-username"),
        https_secret("https-healthy", "alice", "BBDC-flux-good"),
        https_repo("https-healthy"),
        proxied("proxied", "corp-proxy-pw"),
        proxied("proxy-wrong-password", "not-the-proxy-pw"),
        git_repo("read-only", "proj/app", "read-only"),
        git_repo("healthy", "proj/app", "alice"),
        git_repo("stranger", "proj/app", "stranger"),
        git_repo("wrong-host-key", "proj/app", "wrong-host-key"),
        git_repo("no-known-hosts", "proj/app", "no-known-hosts"),
        git_repo("missing", "proj/nope", "alice"),
    ] {
        apply(&admin, &d).await;
    }

    let _flux = source_controller(&cluster);
    let sa = cluster
        .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
        .await;
    let flags = vec![
        // Flux discovery limited to its namespace: a Role there is all it is granted.
        "--discover=flux".to_string(),
        format!("--discover-flux-namespace={NS}"),
        "--discover-datacenter-host=127.0.0.1".to_string(),
        "--discover-datacenter-host=bitbucket.example.com".to_string(),
        // bitbucket.example.com resolves nowhere: only the consumer's proxy reaches it.
        "--resolve=bitbucket.example.com:443:127.0.0.9".to_string(),
        // The HTTPS listener: a Data Center host is listed with the port of its REST API.
        format!("--discover-datacenter-host=127.0.0.1:{https_port}"),
        // No --address-class: the simulator's loopback is a private address, as a Data Center
        // on the cluster's network is; discovered connections reach it (exposure Internal).
        "--connect-timeout=2".to_string(),
        "--request-timeout=5".to_string(),
    ];
    let op = Operator::start(&sa, "flux-oracle", &cluster.dir, &flags);
    let bbconn: Api<BitbucketConnection> = Api::namespaced(admin.clone(), NS);

    for (name, check, cause) in failing {
        let flux = flux_verdict(&repos, name).await;
        let ours = bbconn_verdict(&bbconn, name, check).await;
        let reason = ours.1.as_ref().map(|(_, r)| r.as_str());
        eprintln!("{name}: Flux {flux:?}; bbconn {ours:?}");
        assert_eq!(flux.0, "False", "{name}: Flux {flux:?}");
        assert_eq!(
            (ours.0.0.as_str(), reason),
            ("False", Some(cause)),
            "{name}: bbconn {ours:?} while Flux said {flux:?}"
        );
    }
    // The healthy repository and the read-only key (Data Center's branch is master here): Flux
    // clones and says Ready, and so must bbconn.
    for name in ["healthy", "read-only", "https-healthy", "proxied"] {
        let flux = flux_verdict(&repos, name).await;
        let ours = bbconn_verdict(&bbconn, name, "Ready").await.0;
        eprintln!("{name}: Flux {flux:?}; bbconn {ours:?}");
        assert_eq!(flux.0, "True", "{name}: Flux {flux:?}");
        // What Flux stored is the simulator's commit on master.
        let stored = repos.get(name).await.unwrap();
        let revision = stored.data["status"]["artifact"]["revision"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            revision.starts_with("master@sha1:") && revision.len() == "master@sha1:".len() + 40,
            "{name}: Flux stored {revision:?}"
        );
        assert_eq!(
            ours.0, "True",
            "{name}: bbconn {ours:?} while Flux said {flux:?}"
        );
    }
    drop(op);
}
