//! Discovery end to end: a real kube-apiserver and etcd with the real CRDs of Argo CD
//! (Application) and Flux (its source CRDs), taken from their own Go modules; the real garbage
//! collector (kube-controller-manager, from the same pinned k8s.io/kubernetes); `bbconn run
//! --discover argocd,flux` under deploy/'s RBAC plus exactly what the chart grants discovery.
//! The connections Argo CD and Flux already have appear, follow their sources, leave a
//! person's fields and connections alone, and go when their sources go.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::api::{BitbucketConnection, GitAccessLevel, GitTransport, SecretFormat};
use bbconn_sim::ssh::ALICE_ED25519;
use bbconn_sim::{Fixture, Pki, Simulator};
use common::cluster::{Cluster, Operator, apply, eventually, repo};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::api::{Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ARGO: &str = "argocd";
const FLUX: &str = "flux-system";
const WAIT: Duration = Duration::from_secs(30);

fn fixture() -> Fixture {
    Fixture::from_yaml(&format!(
        "listeners:\n  - {{ name: cloud-ssh, kind: ssh, serves: [cloud] }}\n  - {{ name: dc, tls: good, serves: [datacenter], hosts: [bitbucket.example.com] }}\ndatacenter:\n  users:\n    - {{ name: alice, password: alice-pw, id: 1 }}\n  tokens:\n    - {{ id: \"1\", value: dc-alice-read-token-0001, kind: personal, user: alice, permissions: [REPO_READ] }}\n  projects:\n    - key: PROJ\n      repositories:\n        - {{ slug: app, access: {{ alice: REPO_WRITE }} }}\ncloud:\n  users:\n    - {{ username: alice, email: alice@example.com, sshKeys: [\"{}\"] }}\n  workspaces:\n    - slug: acme\n      repositories:\n        - {{ slug: app, access: {{ alice: write }} }}\n        - {{ slug: other, access: {{ alice: read }} }}\n",
        ALICE_ED25519.public_line()
    ))
    .unwrap()
}

fn indented(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// The consumers' CRDs, from their Go modules (cached by tests/controlplane/consumer-crds.sh).
fn consumer_crds() -> Vec<String> {
    let out = Command::new("bash")
        .arg(repo().join("tests/controlplane/consumer-crds.sh"))
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "consumer-crds.sh failed");
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let mut files = vec![dir.join("argocd/application-crd.yaml")];
    for e in std::fs::read_dir(dir.join("flux")).unwrap() {
        files.push(e.unwrap().path());
    }
    files
        .into_iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect()
}

/// What the chart grants discovery with both sources on (helm template, cached helm).
fn discovery_rbac() -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg("source tests/packaging/lib.sh && render --set discovery.argocd.enabled=true --set discovery.flux.enabled=true --show-only templates/discovery-rbac.yaml")
        .current_dir(repo())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "helm template failed");
    String::from_utf8(out.stdout).unwrap()
}

fn ar(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

async fn uid_of(client: &Client, ar: &ApiResource, ns: &str, name: &str) -> String {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
    api.get(name).await.unwrap().uid().unwrap()
}

async fn names(api: &Api<BitbucketConnection>) -> Vec<String> {
    let mut n: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    n.sort();
    n
}

async fn wait_names(api: &Api<BitbucketConnection>, want: &[&str]) {
    eventually(WAIT, &format!("connections {want:?}"), || async {
        let got = names(api).await;
        if got == want {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    })
    .await;
}

fn assert_follows(c: &BitbucketConnection, source: &str, kind: &str, name: &str, uid: &str) {
    let labels = c.labels();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("bbconn")
    );
    assert_eq!(
        labels.get("bbconn.dev/discovered-from").map(String::as_str),
        Some(source)
    );
    assert_eq!(labels.len(), 2, "only discovery's labels: {labels:?}");
    assert_eq!(
        c.annotations().get("bbconn.dev/source").map(String::as_str),
        Some(format!("{kind}/{name}").as_str())
    );
    let owner = &c.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
        (kind, name, uid)
    );
    assert_eq!(owner.controller, Some(true));
    let managers: Vec<&str> = c
        .managed_fields()
        .iter()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    assert!(managers.contains(&"bbconn-discovery"), "{managers:?}");
}

const IMAGE_UPDATE_AUTOMATION_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: imageupdateautomations.image.toolkit.fluxcd.io}
spec:
  group: image.toolkit.fluxcd.io
  names: {kind: ImageUpdateAutomation, listKind: ImageUpdateAutomationList, plural: imageupdateautomations, singular: imageupdateautomation}
  scope: Namespaced
  versions:
    - name: v1beta2
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_follows_argocd_and_flux() {
    let cluster = Cluster::start("discovery");
    let admin = cluster.client().await;
    let pki = Pki::new();
    let sim = Simulator::start(fixture(), &pki).await.unwrap();
    let port = sim.addr("cloud-ssh").unwrap().port();
    let known_hosts = sim
        .ssh_known_hosts("cloud-ssh", "ssh.bitbucket.org", 22)
        .join("\n");

    // bbconn, Argo CD and Flux as they are installed; the RBAC deploy/ and the chart grant.
    let crd =
        std::fs::read_to_string(repo().join("crds/bbconn.dev_bitbucketconnections.yaml")).unwrap();
    apply(&admin, &crd).await;
    for c in consumer_crds() {
        apply(&admin, &c).await;
    }
    for ns in [ARGO, FLUX] {
        apply(
            &admin,
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
        )
        .await;
    }
    apply(&admin, &common::cluster::deploy_rbac()).await;
    apply(&admin, &discovery_rbac()).await;
    let app_ar = ar("argoproj.io", "v1alpha1", "Application");
    let repo_ar = ar("source.toolkit.fluxcd.io", "v1", "GitRepository");
    for (a, ns) in [(&app_ar, ARGO), (&repo_ar, FLUX)] {
        let api: Api<DynamicObject> = Api::namespaced_with(admin.clone(), ns, a);
        eventually(WAIT, &format!("{} to be served", a.kind), || async {
            api.list(&ListParams::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
    }
    let argo: Api<BitbucketConnection> = Api::namespaced(admin.clone(), ARGO);
    let flux: Api<BitbucketConnection> = Api::namespaced(admin.clone(), FLUX);
    eventually(WAIT, "the bbconn CRD to be served", || async {
        argo.list(&ListParams::default())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    // After the CRDs: the garbage collector learns the resources it watches when it starts.
    let _gc = cluster.start_garbage_collector();

    // Argo CD: a Data Center repository with a bearer token, a Cloud repository with an SSH key
    // (write), a credential template and an Application only it covers. Flux: an SSH
    // repository, one on another host, one opted out, and one whose connection name a person
    // already uses.
    let secret = |name: &str, kind: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {ARGO}\n  labels: {{argocd.argoproj.io/secret-type: {kind}, app.kubernetes.io/instance: argocd}}\nstringData:\n{extra}"
        )
    };
    let application = |name: &str, url: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {{name: {name}, namespace: {ARGO}}}\nspec:\n  project: default\n  destination: {{server: https://kubernetes.default.svc, namespace: default}}\n  source: {{repoURL: {url}, path: ., targetRevision: HEAD}}\n"
        )
    };
    let git_repo = |name: &str, url: &str, secret: &str, annotations: &str| {
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: {name}\n  namespace: {FLUX}\n  annotations: {{{annotations}}}\nspec:\n  interval: 1m\n  url: {url}\n  ref: {{branch: main}}\n  secretRef: {{name: {secret}}}\n"
        )
    };
    let docs = [
        secret(
            "dc-infra",
            "repository",
            "  url: https://bitbucket.example.com/scm/OPS/infra.git\n  bearerToken: BBDC-not-a-real-token\n",
        ),
        // Argo CD trusts a private CA for that host: so does its connection.
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: argocd-tls-certs-cm, namespace: {ARGO}}}\ndata:\n  bitbucket.example.com: |\n{}",
            indented(&pki.ca_pem())
        ),
        secret(
            "cloud-app",
            "repository-write",
            &format!(
                "  url: git@bitbucket.org:acme/app.git\n  sshPrivateKey: |\n{}",
                indented(ALICE_ED25519.private)
            ),
        ),
        secret(
            "acme-creds",
            "repo-creds",
            "  url: https://bitbucket.org/acme\n  username: x-token-auth\n  password: not-a-real-token\n",
        ),
        application("guestbook", "https://bitbucket.org/acme/guestbook.git"),
        // The same repository, written another way: the same connection.
        application("guestbook-staging", "https://bitbucket.org/ACME/guestbook"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: flux-key, namespace: {FLUX}}}\nstringData:\n  identity: |\n{}  known_hosts: |\n{}",
            indented(ALICE_ED25519.private),
            indented(&known_hosts)
        ),
        git_repo(
            "infra",
            "ssh://git@ssh.bitbucket.org/acme/app",
            "flux-key",
            "",
        ),
        git_repo("elsewhere", "ssh://git@github.com/acme/app", "flux-key", ""),
        git_repo(
            "quiet",
            "ssh://git@ssh.bitbucket.org/acme/app",
            "flux-key",
            "bbconn.dev/discover: \"false\"",
        ),
        git_repo(
            "mine",
            "ssh://git@ssh.bitbucket.org/acme/app",
            "flux-key",
            "",
        ),
        // Over HTTPS to Data Center, with the CA Flux trusts in its Secret.
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: dc-token, namespace: {FLUX}}}\nstringData:\n  bearerToken: dc-alice-read-token-0001\n  ca.crt: |\n{}",
            indented(&pki.ca_pem())
        ),
        git_repo(
            "dc-app",
            "https://bitbucket.example.com/scm/PROJ/app.git",
            "dc-token",
            "",
        ),
        // Image automation will push through this one (installed later, below).
        git_repo(
            "pushed",
            "ssh://git@ssh.bitbucket.org/acme/app",
            "flux-key",
            "",
        ),
        format!(
            "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: flux-mine, namespace: {FLUX}}}\nspec:\n  flavor: Cloud\n  git:\n    transport: SSH\n    ssh: {{secretRef: {{name: flux-key}}}}\n"
        ),
    ];
    for d in &docs {
        apply(&admin, d).await;
    }

    let sa = cluster
        .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
        .await;
    let closed = "127.0.0.1:1";
    let flags = vec![
        "--discover=argocd,flux".to_string(),
        "--discover-datacenter-host=bitbucket.example.com".to_string(),
        // No --address-class: the simulator's loopback is a private address, as a Data Center
        // on the cluster's network is; discovered connections reach it (exposure Internal).
        format!("--connect-to=ssh.bitbucket.org:22:127.0.0.1:{port}"),
        // Nothing here reaches the internet.
        format!("--connect-to=bitbucket.org:22:{closed}"),
        format!("--connect-to=bitbucket.org:443:{closed}"),
        format!("--connect-to=api.bitbucket.org:443:{closed}"),
        format!(
            "--connect-to=bitbucket.example.com:443:{}",
            sim.addr("dc").unwrap()
        ),
        "--connect-timeout=2".to_string(),
        "--request-timeout=5".to_string(),
    ];
    let started = Instant::now();
    let mut op = Operator::start(&sa, "discovery", &cluster.dir, &flags);

    // Argo CD: one connection per repository Secret, and one for the Application's URL.
    eventually(WAIT, "Argo CD's connections", || async {
        let n = names(&argo).await;
        if n.len() == 3 {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    })
    .await;
    eprintln!(
        "operator start to Argo CD's connections: {:?}",
        started.elapsed()
    );
    let secret_ar = ar("", "v1", "Secret");
    let dc = argo.get("argocd-dc-infra").await.unwrap();
    assert_follows(
        &dc,
        "argocd",
        "Secret",
        "dc-infra",
        &uid_of(&admin, &secret_ar, ARGO, "dc-infra").await,
    );
    assert_eq!(dc.spec.flavor, bbconn::api::Flavor::DataCenter);
    assert_eq!(
        dc.spec.url.as_deref(),
        Some("https://bitbucket.example.com")
    );
    let auth = dc.spec.auth.as_ref().unwrap();
    assert_eq!(auth.secret_ref.name, "dc-infra");
    assert_eq!(auth.secret_ref.format, Some(SecretFormat::ArgoCd));
    let repos = &dc.spec.requirements.as_ref().unwrap().repositories;
    assert_eq!(repos[0].name, "OPS/infra");
    let ca = dc
        .spec
        .tls
        .as_ref()
        .unwrap()
        .ca_bundle_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (ca.name.as_str(), ca.key.as_deref()),
        ("argocd-tls-certs-cm", Some("bitbucket.example.com"))
    );

    let ssh = argo.get("argocd-cloud-app").await.unwrap();
    assert_follows(
        &ssh,
        "argocd",
        "Secret",
        "cloud-app",
        &uid_of(&admin, &secret_ar, ARGO, "cloud-app").await,
    );
    assert_eq!(ssh.spec.git_transport(), GitTransport::Ssh);
    assert_eq!(ssh.spec.git_access(), GitAccessLevel::Write);
    assert_eq!(ssh.spec.ssh_secret(), Some("cloud-app"));
    assert_eq!(
        ssh.spec.known_hosts_ref().map(|r| r.name.as_str()),
        Some("argocd-ssh-known-hosts-cm")
    );

    let from_app = names(&argo)
        .await
        .into_iter()
        .find(|n| n.starts_with("argocd-acme-guestbook-"))
        .expect("a connection for the Application's repoURL");
    let app_conn = argo.get(&from_app).await.unwrap();
    assert_follows(
        &app_conn,
        "argocd",
        "Application",
        "guestbook",
        &uid_of(&admin, &app_ar, ARGO, "guestbook").await,
    );
    assert_eq!(app_conn.spec.auth_secret(), Some("acme-creds"));
    let owners: Vec<&str> = app_conn
        .owner_references()
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(owners, ["guestbook", "guestbook-staging"]);
    assert_eq!(
        app_conn.spec.requirements.as_ref().unwrap().repositories[0].name,
        "acme/guestbook"
    );

    // Flux: the SSH repository only; the person's flux-mine untouched.
    wait_names(
        &flux,
        &["flux-dc-app", "flux-infra", "flux-mine", "flux-pushed"],
    )
    .await;
    // The CA in Flux's Secret is the one the connection trusts: TLS verifies against the
    // simulator's private CA.
    let dc_app = flux.get("flux-dc-app").await.unwrap();
    let ca = dc_app
        .spec
        .tls
        .as_ref()
        .unwrap()
        .ca_bundle_ref
        .as_ref()
        .unwrap();
    assert_eq!(
        (ca.name.as_str(), ca.key.as_deref()),
        ("dc-token", Some("ca.crt"))
    );
    eventually(WAIT, "flux-dc-app Ready", || async {
        let c = flux.get("flux-dc-app").await.map_err(|e| e.to_string())?;
        let s = c.status.unwrap_or_default();
        let state = |t: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == t)
                .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        };
        match (state("TLSVerified"), state("Ready")) {
            (Some(t), Some(r)) if t.0 == "True" && r.0 == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let pushed = flux.get("flux-pushed").await.unwrap();
    assert_eq!(pushed.spec.git_access(), GitAccessLevel::Read);
    // Flux's image automation installed after bbconn started (often the case): an
    // ImageUpdateAutomation pushing through "pushed" makes its connection prove Write. The
    // real CRD is in no module version the proxy serves here (DISCOVERY.md): a structural
    // stand-in with the group, version and kind Flux serves.
    apply(&admin, IMAGE_UPDATE_AUTOMATION_CRD).await;
    let iua = format!(
        "apiVersion: image.toolkit.fluxcd.io/v1beta2\nkind: ImageUpdateAutomation\nmetadata: {{name: bump, namespace: {FLUX}}}\nspec:\n  interval: 5m\n  sourceRef: {{kind: GitRepository, name: pushed}}\n  git: {{commit: {{author: {{name: bot, email: bot@example.com}}}}, push: {{branch: main}}}}\n"
    );
    eventually(WAIT, "ImageUpdateAutomations to be served", || async {
        let docs: serde_json::Value = serde_saphyr::from_str(&iua).map_err(|e| e.to_string())?;
        let ar = ar(
            "image.toolkit.fluxcd.io",
            "v1beta2",
            "ImageUpdateAutomation",
        );
        Api::<DynamicObject>::namespaced_with(admin.clone(), FLUX, &ar)
            .patch(
                "bump",
                &PatchParams::apply("bbconn-e2e").force(),
                &Patch::Apply(&docs),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    // Discovery looks for the kind again on its next pass (a change to any GitRepository), or
    // at most 10 s later where it looked a moment before.
    apply(
        &admin,
        &git_repo(
            "pushed",
            "ssh://git@ssh.bitbucket.org/acme/app",
            "flux-key",
            "example.com/touched: \"1\"",
        ),
    )
    .await;
    eventually(WAIT, "flux-pushed to prove Write", || async {
        let c = flux.get("flux-pushed").await.map_err(|e| e.to_string())?;
        match c.spec.git_access() {
            GitAccessLevel::Write => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let infra = flux.get("flux-infra").await.unwrap();
    assert_follows(
        &infra,
        "flux",
        "GitRepository",
        "infra",
        &uid_of(&admin, &repo_ar, FLUX, "infra").await,
    );
    let git_ssh = infra.spec.git_ssh().unwrap();
    assert_eq!(git_ssh.url.as_deref(), Some("ssh://git@ssh.bitbucket.org"));
    assert_eq!(
        git_ssh.secret_ref.as_ref().unwrap().format,
        Some(SecretFormat::Flux)
    );
    let mine = flux.get("flux-mine").await.unwrap();
    assert!(
        mine.labels().is_empty() && mine.owner_references().is_empty(),
        "{mine:?}"
    );
    // The discovered connection is checked like any other: Ready against the simulator.
    eventually(WAIT, "flux-infra Ready", || async {
        let c = flux.get("flux-infra").await.map_err(|e| e.to_string())?;
        let ready = c
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
            .map(|c| (c.status.clone(), c.reason.clone()));
        match ready {
            Some((s, _)) if s == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // flux-dc-app, flux-infra and flux-pushed (alice may push to acme/app).
    eventually(WAIT, "the discovered-connections gauge", || async {
        let v = op.metric(r#"bbconn_discovered_connections{source="flux",ready="true"}"#);
        if v == Some(3.0) {
            Ok(())
        } else {
            Err(format!("{v:?}"))
        }
    })
    .await;

    // A person sets spec.interval under their own field manager; the source's URL changes:
    // the connection follows within seconds, and keeps the person's field.
    let person = serde_json::json!({
        "apiVersion": "bbconn.dev/v1alpha1",
        "kind": "BitbucketConnection",
        "metadata": {"name": "flux-infra", "namespace": FLUX},
        "spec": {"interval": "5s"},
    });
    flux.patch(
        "flux-infra",
        &PatchParams::apply("a-person"),
        &Patch::Apply(&person),
    )
    .await
    .unwrap();
    let changed = Instant::now();
    apply(
        &admin,
        &git_repo(
            "infra",
            "ssh://git@ssh.bitbucket.org/acme/other",
            "flux-key",
            "",
        ),
    )
    .await;
    eventually(WAIT, "flux-infra to follow its URL", || async {
        let c = flux.get("flux-infra").await.map_err(|e| e.to_string())?;
        let name = c
            .spec
            .requirements
            .as_ref()
            .map(|r| r.repositories[0].name.clone());
        if name.as_deref() == Some("acme/other") {
            Ok(c)
        } else {
            Err(format!("{name:?}"))
        }
    })
    .await;
    eprintln!(
        "GitRepository URL change to connection: {:?}",
        changed.elapsed()
    );
    let infra = flux.get("flux-infra").await.unwrap();
    assert_eq!(
        infra.spec.interval.map(|d| d.get()),
        Some(Duration::from_secs(5)),
        "the person's interval survives discovery's apply"
    );

    // Opting out is a source that stops matching: its connection goes.
    apply(
        &admin,
        &git_repo(
            "infra",
            "ssh://git@ssh.bitbucket.org/acme/other",
            "flux-key",
            "bbconn.dev/discover: \"false\"",
        ),
    )
    .await;
    wait_names(&flux, &["flux-dc-app", "flux-mine", "flux-pushed"]).await;
    let mine_after = flux.get("flux-mine").await.unwrap();
    assert_eq!(
        mine_after.spec, mine.spec,
        "a person's connection is never changed"
    );
    assert!(op.is_running(), "{}", op.logs());
    // Everything above ran under exactly the chart's RBAC: nothing was refused.
    let logs = op.logs();
    assert!(
        !logs.contains("forbidden") && !logs.contains("Forbidden"),
        "the operator was refused something:\n{logs}"
    );

    // Without the operator, deleting a source still deletes its connection: the garbage
    // collector follows the ownerReference.
    op.stop();
    let deleted = Instant::now();
    Api::<Secret>::namespaced(admin.clone(), ARGO)
        .delete("dc-infra", &DeleteParams::default())
        .await
        .unwrap();
    Api::<DynamicObject>::namespaced_with(admin.clone(), ARGO, &app_ar)
        .delete("guestbook", &DeleteParams::default())
        .await
        .unwrap();
    // The garbage collector may take up to its 30 s resync to notice the new resource types.
    // The Application's connection stays: guestbook-staging still uses it.
    let mut left = vec!["argocd-cloud-app".to_string(), from_app.clone()];
    left.sort();
    eventually(Duration::from_secs(90), "the garbage collector", || async {
        let n = names(&argo).await;
        if n == left {
            Ok(())
        } else {
            Err(format!("{n:?}"))
        }
    })
    .await;
    eprintln!(
        "source deleted to connection collected: {:?}",
        deleted.elapsed()
    );
    // The operator back: the connection whose controller went is still discovery's, and
    // follows the Application that remains.
    let op = Operator::start(&sa, "discovery-2", &cluster.dir, &flags);
    eventually(
        WAIT,
        "the remaining Application to control its connection",
        || async {
            let c = argo.get(&from_app).await.map_err(|e| e.to_string())?;
            let controller = c
                .owner_references()
                .iter()
                .find(|o| o.controller == Some(true))
                .map(|o| o.name.clone());
            let source = c.annotations().get("bbconn.dev/source").cloned();
            match (controller.as_deref(), source.as_deref()) {
                (Some("guestbook-staging"), Some("Application/guestbook-staging")) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    drop(op);
    Api::<DynamicObject>::namespaced_with(admin.clone(), ARGO, &app_ar)
        .delete("guestbook-staging", &DeleteParams::default())
        .await
        .unwrap();
    wait_names(&argo, &["argocd-cloud-app"]).await;
}
