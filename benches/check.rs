//! `cargo bench --bench check`: `bbconn check`'s engine over 1,000 connections against the
//! simulator on loopback, and the floor on the same loopback: a bare TLS handshake per connection
//! plus the same number of HTTP round trips (the REST probes and GitAccess's two git
//! advertisements, upload-pack and receive-pack, on the same connection). Reports connections per second for both and the
//! ratio (goal: within 1.5x of the floor). Then the same over SSH (`ssh_run`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bbconn::cli::check_all;
use bbconn::engine::Env;
use bbconn::manifests;
use bbconn::transport::NetConfig;
use bbconn::transport::http::Session;
use bbconn::transport::tls::{Trust, handshake, parse_pem_certs};
use bbconn_sim::{Fixture, Pki, Simulator};
use futures::StreamExt;
use std::time::{Duration, Instant};

const CONNECTIONS: usize = 1000;
const CONCURRENCY: usize = 64;
const ROUNDS: usize = 3;

const FIXTURE: &str = r#"
recordRequests: false
listeners:
  - { name: dc, tls: good, hosts: [bitbucket.example.com] }
datacenter:
  users: [{ name: alice, password: pw-bench, id: 1 }]
  projects:
    - key: PROJ
      repositories: [{ slug: app, name: App, access: { alice: REPO_ADMIN } }]
  tokens:
    - { id: "1", value: bench-token-0001, kind: personal, user: alice, permissions: [PROJECT_READ, REPO_ADMIN] }
"#;

fn manifest(ca_pem: &str) -> String {
    let ca: String = ca_pem.lines().map(|l| format!("    {l}\n")).collect();
    let mut m = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: ca, namespace: bench}}\ndata:\n  ca.crt: |\n{ca}"
    );
    m.push_str("---\napiVersion: v1\nkind: Secret\nmetadata: {name: tok, namespace: bench}\nstringData: {token: bench-token-0001, tokenId: \"1\"}\n");
    for i in 0..CONNECTIONS {
        m.push_str(&format!(
            "---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: c{i}, namespace: bench}}\nspec:\n  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{method: AccessToken, secretRef: {{name: tok}}}}\n  tls: {{caBundleRef: {{kind: ConfigMap, name: ca}}}}\n  requirements: {{permissions: [REPO_ADMIN], repositories: [{{name: PROJ/app, access: Admin}}]}}\n  git: {{access: Write}}\n"
        ));
    }
    m
}

#[tokio::main]
async fn main() {
    let pki = Pki::new();
    let sim = Simulator::start(Fixture::from_yaml(FIXTURE).unwrap(), &pki)
        .await
        .unwrap();
    let addr = sim.addr("dc").unwrap();
    let net = NetConfig {
        connect_to: vec![
            format!("bitbucket.example.com:443:127.0.0.1:{}", addr.port())
                .parse()
                .unwrap(),
        ],
        policy: bbconn::transport::address::AddressPolicy::new(
            vec!["127.0.0.0/8=public".parse().unwrap()],
            vec![],
        ),
        ..NetConfig::default()
    };
    let connections = manifests::load_str("bench.yaml", &manifest(&pki.ca_pem()), "bench").unwrap();

    let mut engine_best = Duration::MAX;
    let mut requests = 0;
    for _ in 0..ROUNDS {
        let env = std::sync::Arc::new(Env::new(net.clone()));
        let t = Instant::now();
        let reports = check_all(&env, &connections, CONCURRENCY).await;
        let took = t.elapsed();
        let ready = reports
            .iter()
            .filter(|r| bbconn::status::readiness(r) == bbconn::status::Readiness::Ready)
            .count();
        assert_eq!(ready, CONNECTIONS, "every bench connection is Ready");
        requests = reports
            .iter()
            .map(bbconn::engine::request_count)
            .sum::<usize>();
        engine_best = engine_best.min(took);
    }
    let per_conn = requests / CONNECTIONS;
    // GitAccess with access Write: the upload-pack and receive-pack advertisements.
    const GIT_TRIPS: usize = 2;
    assert!(
        per_conn > GIT_TRIPS,
        "the engine asked git for its advertisements"
    );
    let git_auth = bbconn::credential::bearer("bench-token-0001");

    // The floor: the same TLS stack and trust, one handshake and `per_conn` GETs per connection.
    let trust = Trust::new(&parse_pem_certs(pki.ca_pem().as_bytes()).unwrap(), true).unwrap();
    let mut floor_best = Duration::MAX;
    for _ in 0..ROUNDS {
        let t = Instant::now();
        futures::stream::iter(0..CONNECTIONS)
            .map(|_| {
                let trust = trust.clone();
                let git_auth = git_auth.clone();
                async move {
                    let tcp = NetConfig::default().connect(&[addr]).await.unwrap();
                    let hs = handshake(
                        tcp,
                        "bitbucket.example.com",
                        &trust,
                        false,
                        Duration::from_secs(5),
                    )
                    .await;
                    let tls = hs.outcome.unwrap();
                    let mut s = Session::open(
                        tls,
                        "bitbucket.example.com".into(),
                        Duration::from_secs(10),
                        1 << 20,
                    )
                    .await
                    .unwrap();
                    for _ in 0..per_conn - GIT_TRIPS {
                        let r = s
                            .send(
                                http::Method::GET,
                                "/rest/api/latest/application-properties",
                                None,
                                None,
                            )
                            .await
                            .unwrap();
                        assert_eq!(r.status, 200);
                    }
                    for service in ["git-upload-pack", "git-receive-pack"] {
                        let r = s
                            .send(
                                http::Method::GET,
                                &format!("/scm/proj/app.git/info/refs?service={service}"),
                                Some(&git_auth),
                                None,
                            )
                            .await
                            .unwrap();
                        assert_eq!(r.status, 200);
                    }
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        floor_best = floor_best.min(t.elapsed());
    }
    let rate = |d: Duration| CONNECTIONS as f64 / d.as_secs_f64();
    println!(
        "bbconn check engine: {CONNECTIONS} connections, {requests} requests ({per_conn} per connection), concurrency {CONCURRENCY}, best of {ROUNDS}"
    );
    println!(
        "  engine: {:>8.1} connections/s ({:.3} s)",
        rate(engine_best),
        engine_best.as_secs_f64()
    );
    println!(
        "  floor:  {:>8.1} connections/s ({:.3} s)  (TLS handshake + {per_conn} HTTP round trips each, {GIT_TRIPS} of them git's)",
        rate(floor_best),
        floor_best.as_secs_f64()
    );
    println!(
        "  ratio:  {:.2}x the floor (goal: within 1.5x)",
        engine_best.as_secs_f64() / floor_best.as_secs_f64()
    );
    sim.shutdown().await;
    ssh_run::run().await;
}

/// transport SSH: 200 connections checked over SSH alone (key exchange per host key type, the
/// key, the upload-pack advertisement) against the floor: the same handshakes, authentication
/// and exec round trip, made directly with russh through bbconn's thin client wrapper.
mod ssh_run {
    use super::*;
    use bbconn::ssh::client::{self, Accept};
    use bbconn::ssh::kexinit;
    use bbconn_sim::ssh::ALICE_ED25519;
    use std::sync::Arc;

    pub const SSH_CONNECTIONS: usize = 200;

    fn fixture() -> String {
        format!(
            "recordRequests: false\nlisteners:\n  - {{ name: cloud-ssh, kind: ssh, serves: [cloud] }}\ncloud:\n  users:\n    - {{ username: alice, email: alice@example.com, sshKeys: [\"{}\"] }}\n  workspaces:\n    - slug: acme\n      repositories:\n        - {{ slug: app, access: {{ alice: write }} }}\n",
            ALICE_ED25519.public_line()
        )
    }

    fn manifest(known_hosts: &str) -> String {
        let identity: String = ALICE_ED25519
            .private
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect();
        let kh: String = known_hosts.lines().map(|l| format!("    {l}\n")).collect();
        let mut m = format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: bench}}\nstringData:\n  identity: |\n{identity}  known_hosts: |\n{kh}"
        );
        for i in 0..SSH_CONNECTIONS {
            m.push_str(&format!(
                "---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: s{i}, namespace: bench}}\nspec:\n  flavor: Cloud\n  requirements: {{repositories: [{{name: acme/app}}]}}\n  git: {{transport: SSH, ssh: {{url: \"ssh://git@ssh.bitbucket.org\", secretRef: {{name: key}}}}}}\n"
            ));
        }
        m
    }

    pub async fn run() {
        let pki = Pki::new();
        let sim = Simulator::start(Fixture::from_yaml(&fixture()).unwrap(), &pki)
            .await
            .unwrap();
        let addr = sim.addr("cloud-ssh").unwrap();
        let known_hosts = sim
            .ssh_known_hosts("cloud-ssh", "ssh.bitbucket.org", 22)
            .join("\n");
        let net = NetConfig {
            connect_to: vec![
                format!("ssh.bitbucket.org:22:127.0.0.1:{}", addr.port())
                    .parse()
                    .unwrap(),
            ],
            policy: bbconn::transport::address::AddressPolicy::new(
                vec!["127.0.0.0/8=public".parse().unwrap()],
                vec![],
            ),
            ..NetConfig::default()
        };
        let connections =
            manifests::load_str("ssh.yaml", &manifest(&known_hosts), "bench").unwrap();
        let mut engine_best = Duration::MAX;
        for _ in 0..ROUNDS {
            let env = Arc::new(Env::new(net.clone()));
            let t = Instant::now();
            let reports = check_all(&env, &connections, CONCURRENCY).await;
            let took = t.elapsed();
            let ready = reports
                .iter()
                .filter(|r| bbconn::status::readiness(r) == bbconn::status::Readiness::Ready)
                .count();
            assert_eq!(
                ready, SSH_CONNECTIONS,
                "every SSH bench connection is Ready"
            );
            engine_best = engine_best.min(took);
        }
        let key = Arc::new(ALICE_ED25519.private_key().unwrap());
        // Each host key type the engine fetches, the consumer's (ed25519) last, as it does.
        let types = [
            russh::keys::Algorithm::Rsa {
                hash: Some(russh::keys::HashAlg::Sha512),
            },
            russh::keys::Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256,
            },
            russh::keys::Algorithm::Ed25519,
        ];
        let timeout = Duration::from_secs(10);
        let mut floor_best = Duration::MAX;
        for _ in 0..ROUNDS {
            let t = Instant::now();
            futures::stream::iter(0..SSH_CONNECTIONS)
                .map(|_| {
                    let (key, types) = (key.clone(), types.clone());
                    async move {
                        let mut tcp = NetConfig::default().connect(&[addr]).await.unwrap();
                        kexinit::scan(&mut tcp, client::CLIENT_IDENT).await.unwrap();
                        let mut kept = None;
                        for (i, alg) in types.iter().enumerate() {
                            let tcp = NetConfig::default().connect(&[addr]).await.unwrap();
                            let accept = if i == types.len() - 1 {
                                Accept::Judged
                            } else {
                                Accept::Never
                            };
                            let (_, s) =
                                client::handshake(tcp, alg.clone(), false, accept, timeout)
                                    .await
                                    .unwrap();
                            kept = s;
                        }
                        let mut s = kept.unwrap();
                        let auth = s.authenticate("git", key).await.unwrap();
                        assert_eq!(auth, client::Authentication::Accepted);
                        let a = s
                            .advertisement("git-upload-pack 'acme/app.git'")
                            .await
                            .unwrap();
                        assert!(!a.stdout.is_empty());
                        s.close().await;
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await;
            floor_best = floor_best.min(t.elapsed());
        }
        let rate = |d: Duration| SSH_CONNECTIONS as f64 / d.as_secs_f64();
        println!(
            "bbconn check engine over SSH: {SSH_CONNECTIONS} connections, transport SSH, concurrency {CONCURRENCY}, best of {ROUNDS}"
        );
        println!(
            "  engine: {:>8.1} connections/s ({:.3} s)",
            rate(engine_best),
            engine_best.as_secs_f64()
        );
        println!(
            "  floor:  {:>8.1} connections/s ({:.3} s)  (the server's offer, a key exchange per host key type (3), the key, one upload-pack advertisement each)",
            rate(floor_best),
            floor_best.as_secs_f64()
        );
        println!(
            "  ratio:  {:.2}x the floor (goal: within 1.5x)",
            engine_best.as_secs_f64() / floor_best.as_secs_f64()
        );
        sim.shutdown().await;
    }
}
