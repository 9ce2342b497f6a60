//! `cargo bench --bench check`: `bbconn check`'s engine over 1,000 connections against the
//! simulator on loopback, and the floor on the same loopback: a bare TLS handshake per connection
//! plus the same number of HTTP round trips (the REST probes and GitAccess's two git
//! advertisements, upload-pack and receive-pack, on the same connection). Reports connections per second for both and the
//! ratio (goal: within 1.5x of the floor).
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
                    let hs =
                        handshake(tcp, "bitbucket.example.com", &trust, Duration::from_secs(5))
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
}
