//! TLS certificate modes, the CONNECT proxy, faults, keep-alive and shutdown.

use std::time::{Duration, Instant};

use bbconn_sim::RecordedRequest;
use rustls::CertificateError;
use rustls::client::danger::ServerCertVerifier as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::common::{Conn, basic, bearer, start, tls_over};

const CERTS: &str = r#"
listeners:
  - { name: good, tls: good, hosts: [bitbucket.example.com, 127.0.0.1] }
  - { name: expired, tls: expired, hosts: [bitbucket.example.com] }
  - { name: notyetvalid, tls: notyetvalid, hosts: [bitbucket.example.com] }
  - { name: wronghost, tls: wronghost, hosts: [bitbucket.example.com] }
  - { name: unknownca, tls: unknownca, hosts: [bitbucket.example.com] }
  - { name: expiringsoon, tls: expiringsoon, hosts: [bitbucket.example.com] }
"#;

fn rustls_error(e: &std::io::Error) -> rustls::Error {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<rustls::Error>())
        .cloned()
        .unwrap_or_else(|| panic!("not a rustls error: {e:?}"))
}

#[tokio::test]
async fn certificate_modes() {
    let sim = start(CERTS).await;
    let ca = sim.pki.ca_pem();
    let host = "bitbucket.example.com";
    let fail = async |listener: &str| {
        let err = Conn::connect(sim.addr(listener), host, Some(&ca))
            .await
            .err()
            .unwrap();
        match rustls_error(&err) {
            rustls::Error::InvalidCertificate(c) => c,
            other => panic!("{listener}: {other:?}"),
        }
    };
    assert!(matches!(
        fail("expired").await,
        CertificateError::Expired | CertificateError::ExpiredContext { .. }
    ));
    assert!(matches!(
        fail("notyetvalid").await,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
    ));
    assert!(matches!(
        fail("wronghost").await,
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
    ));
    assert!(matches!(
        fail("unknownca").await,
        CertificateError::UnknownIssuer
    ));

    // Good and expiring-soon certificates verify, by name and by IP literal.
    let mut c = Conn::connect(sim.addr("good"), host, Some(&ca))
        .await
        .unwrap();
    assert_eq!(
        c.get("/rest/api/latest/application-properties", None)
            .await
            .status,
        200
    );
    assert!(
        Conn::connect(sim.addr("good"), "127.0.0.1", Some(&ca))
            .await
            .is_ok()
    );
    assert!(
        Conn::connect(sim.addr("expiringsoon"), host, Some(&ca))
            .await
            .is_ok()
    );
    // The unrelated CA is what `unknownca` chains to.
    assert!(
        Conn::connect(sim.addr("unknownca"), host, Some(&sim.pki.other_ca_pem()))
            .await
            .is_ok()
    );
    assert!(
        Conn::connect(sim.addr("good"), host, Some(&sim.pki.other_ca_pem()))
            .await
            .is_err()
    );
}

#[test]
fn leaf_contents() {
    let pki = bbconn_sim::Pki::new();
    let hosts = vec!["bitbucket.example.com".to_owned(), "10.0.0.7".to_owned()];
    let (chain, _key) = pki.leaf(bbconn_sim::CertMode::ExpiringSoon, &hosts);
    assert_eq!(chain.len(), 2, "leaf and CA");
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(
        leaf.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "bitbucket.example.com"
    );
    assert_eq!(
        leaf.issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "bbconn test CA"
    );
    let left = leaf.validity().not_after.timestamp() - jiff::Timestamp::now().as_second();
    assert!((9 * 86400..=10 * 86400).contains(&left), "{left}");
    let san = leaf.subject_alternative_name().unwrap().unwrap().value;
    let names = format!("{:?}", san.general_names);
    assert!(
        names.contains("bitbucket.example.com") && names.contains("IPAddress"),
        "{names}"
    );

    let (chain, _) = pki.leaf(bbconn_sim::CertMode::WrongHost, &hosts);
    let (_, leaf) = X509Certificate::from_der(&chain[0]).unwrap();
    let names = format!(
        "{:?}",
        leaf.subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
    );
    assert!(names.contains("wrong.example.invalid") && !names.contains("bitbucket.example.com"));

    let (cert_pem, key_pem) = pki.leaf_pem(bbconn_sim::CertMode::Good, &hosts);
    assert_eq!(cert_pem.matches("BEGIN CERTIFICATE").count(), 2);
    assert!(key_pem.contains("BEGIN PRIVATE KEY"));
}

#[test]
fn pki_dir_is_reused() {
    let dir = std::env::temp_dir().join(format!("bbconn-sim-test-{}", std::process::id()));
    let first = bbconn_sim::Pki::load_or_create(&dir).unwrap();
    first.save(&dir).unwrap();
    let second = bbconn_sim::Pki::load_or_create(&dir).unwrap();
    assert_eq!(first.ca_pem(), second.ca_pem());
    // A leaf minted by the reloaded CA verifies against the original certificate.
    let (chain, _) = second.leaf(bbconn_sim::CertMode::Good, &["x.example".to_owned()]);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(first.ca_der()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider,
    )
    .build()
    .unwrap();
    let name = rustls::pki_types::ServerName::try_from("x.example").unwrap();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &name,
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

const PROXY: &str = r#"
listeners:
  - { name: dc, tls: good, hosts: [bitbucket.internal], serves: [datacenter] }
  - name: proxy
    kind: connectProxy
    routes: { "bitbucket.internal:443": dc }
  - { name: refusing, kind: connectProxy, refuse: true, routes: { "bitbucket.internal:443": dc } }
"#;

async fn connect_via(proxy: std::net::SocketAddr, target: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(
        format!(
            "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic eDp5\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).await.unwrap(), 1);
        head.push(b[0]);
    }
    (s, String::from_utf8(head).unwrap())
}

#[tokio::test]
async fn connect_proxy() {
    let sim = start(PROXY).await;
    let (tunnel, head) = connect_via(sim.addr("proxy"), "bitbucket.internal:443").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let tls = tls_over(Box::new(tunnel), "bitbucket.internal", &sim.pki.ca_pem())
        .await
        .unwrap();
    let mut c = Conn::over(tls, "bitbucket.internal").await;
    assert_eq!(
        c.get("/rest/api/latest/application-properties", None)
            .await
            .status,
        200
    );

    let (_, head) = connect_via(sim.addr("proxy"), "elsewhere.example:443").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (_, head) = connect_via(sim.addr("refusing"), "bitbucket.internal:443").await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");

    let mut s = TcpStream::connect(sim.addr("proxy")).await.unwrap();
    s.write_all(b"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 405"), "{out}");

    let connects: Vec<_> = sim
        .running
        .requests()
        .into_iter()
        .filter(|r| r.method == "CONNECT")
        .collect();
    assert_eq!(connects.len(), 3);
    assert_eq!(
        connects[0],
        RecordedRequest {
            listener: "proxy".into(),
            method: "CONNECT".into(),
            path: "bitbucket.internal:443".into(),
            query: None,
            authorization: Some("Basic eDp5".into()),
            status: 200,
        }
    );
}

const FAULTS: &str = r#"
listeners:
  - { name: api, tls: none }
cloud:
  users: [ { username: alice, email: alice@example.com } ]
  tokens: [ { value: ATATT-a, kind: apiToken, user: alice, scopes: [read:user:bitbucket] } ]
faults:
  - { pathPrefix: /2.0/user, credential: ATATT-a, times: 2, kind: rateLimited, retryAfter: 30 }
  - { pathPrefix: /limited, kind: rateLimited }
  - { pathPrefix: /broken, kind: serverError }
  - { pathPrefix: /bad-gateway, kind: serverError, status: 502 }
  - { pathPrefix: /2.0/slow, kind: slow, delayMs: 300 }
  - { pathPrefix: /big, kind: oversized, bytes: 5000000 }
  - { pathPrefix: /moved, kind: redirect, location: "https://elsewhere.example/login" }
  - { pathPrefix: /reset, kind: reset }
  - { method: DELETE, kind: serverError, status: 500 }
"#;

#[tokio::test]
async fn faults() {
    let sim = start(FAULTS).await;
    let mut c = sim.plain("api").await;
    let alice = basic("alice@example.com", "ATATT-a");
    // Two 429s with Retry-After for this credential only, then normal answers.
    assert_eq!(
        c.get("/2.0/user", Some(&basic("bob@example.com", "x")))
            .await
            .status,
        401
    );
    for _ in 0..2 {
        let r = c.get("/2.0/user", Some(&alice)).await;
        assert_eq!((r.status, r.header("retry-after")), (429, Some("30")));
    }
    assert_eq!(c.get("/2.0/user", Some(&alice)).await.status, 200);
    let r = c.get("/limited", None).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_none());
    assert_eq!(c.get("/broken", None).await.status, 503);
    assert_eq!(c.get("/bad-gateway", None).await.status, 502);
    let t = Instant::now();
    let r = c.get("/2.0/slow", None).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert_eq!(r.status, 404, "slow still answers normally");
    let r = c.get("/big", None).await;
    assert_eq!((r.status, r.body.len()), (200, 5_000_000));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let r = c.get("/moved", None).await;
    assert_eq!(
        (r.status, r.header("location")),
        (302, Some("https://elsewhere.example/login"))
    );
    let r = c
        .try_send(http::Method::DELETE, "/2.0/user", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(
        c.try_send(http::Method::GET, "/reset", None, None)
            .await
            .is_err()
    );
    let statuses: Vec<u16> = sim.running.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [401, 429, 429, 200, 429, 503, 502, 404, 200, 302, 500, 0]
    );
}

#[tokio::test]
async fn keep_alive_and_recording() {
    let sim = start(crate::common::FIXTURE).await;
    let mut c = sim.conn("dc", "bitbucket.internal").await;
    let auth = bearer("BBDC-alice-admin");
    for _ in 0..50 {
        assert_eq!(
            c.get("/rest/api/latest/repos?permission=REPO_ADMIN", Some(&auth))
                .await
                .status,
            200
        );
    }
    assert_eq!(sim.running.request_count(), 50);
    let first = &sim.running.requests()[0];
    assert_eq!(first.listener, "dc");
    assert_eq!(first.path, "/rest/api/latest/repos");
    assert_eq!(first.query.as_deref(), Some("permission=REPO_ADMIN"));
    assert_eq!(first.authorization.as_deref(), Some(auth.as_str()));
    sim.running.clear_requests();
    assert!(sim.running.requests().is_empty());
}

#[tokio::test]
async fn shutdown_closes_listeners() {
    let sim = start(crate::common::FIXTURE).await;
    let addr = sim.addr("dc");
    let mut c = sim.conn("dc", "bitbucket.internal").await;
    assert_eq!(
        c.get("/rest/api/latest/application-properties", None)
            .await
            .status,
        200
    );
    sim.running.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    assert!(
        c.try_send(
            http::Method::GET,
            "/rest/api/latest/application-properties",
            None,
            None
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn bad_fixtures_are_rejected() {
    let pki = bbconn_sim::Pki::new();
    for yaml in [
        "listeners: [{name: a}, {name: a}]",
        "listeners: [{name: p, kind: connectProxy, routes: {\"x:1\": nowhere}}]",
        "listeners: [{name: a, colour: red}]",
        "faults: [{kind: redirect}]",
        "cloud: {tokens: [{value: x, kind: apiToken, user: ghost}]}",
        "datacenter: {tokens: [{id: '1', value: x, kind: repository, project: P}]}",
    ] {
        let result = match bbconn_sim::Fixture::from_yaml(yaml) {
            Ok(f) => bbconn_sim::Simulator::start(f, &pki).await.err(),
            Err(e) => Some(e),
        };
        assert!(
            matches!(result, Some(bbconn_sim::SimError::Fixture(_))),
            "{yaml}: {result:?}"
        );
    }
}
