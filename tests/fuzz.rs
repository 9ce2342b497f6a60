//! A mutation fuzzer in `cargo test`: the manifest reader, the duration parser, Retry-After and
//! the answer parsers (Cloud, Data Center, OAuth, through the whole engine, against a loopback
//! server that answers with mutated real Bitbucket answers) must never panic, and what they
//! report stays bounded.
//!
//! Seeds: examples/*.yaml, tests/fuzz-seeds/bitbucket-answers.json (real answers recorded by
//! public clients, copied here so the tests need nothing outside the repository), and
//! tests/fuzz-seeds/git-advertisements.json (smart-HTTP ref advertisements as git servers write
//! them, for git's advertisement parser).
//!
//! `BBCONN_FUZZ_CASES=N` runs N cases per target instead of the default, for a long run:
//! `BBCONN_FUZZ_CASES=200000 cargo test --release --test fuzz`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cases(default: u32) -> u32 {
    std::env::var("BBCONN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runner(default: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: cases(default),
        failure_persistence: None,
        max_shrink_iters: 2000,
        ..Config::default()
    })
}

const MANIFESTS: &[&str] = &[
    include_str!("../examples/argocd.yaml"),
    include_str!("../examples/codescan.yaml"),
    include_str!("../examples/flux.yaml"),
    include_str!("../examples/hackolade.yaml"),
    include_str!("../examples/oci-resource-manager.yaml"),
    include_str!("../examples/ox-security.yaml"),
    include_str!("../examples/terraform-enterprise.yaml"),
    include_str!("../examples/ssh.yaml"),
];

/// Values that broke parsers elsewhere, or might here.
const TOKENS: &[&str] = &[
    "99999999999999999999h",
    "2562047h2562047h",
    "0s",
    "-1",
    "-5m",
    "18446744073709551615",
    "9223372036854775808",
    "1e308",
    "NaN",
    "inf",
    "0x7f",
    "~",
    "null",
    "''",
    "\"\"",
    "[]",
    "{}",
    "&a",
    "*a",
    "!!binary AAAA",
    "!!str",
    "? ",
    "<<: *a",
    "\t",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "---",
    "...",
    "%YAML 1.1",
    "https://169.254.169.254",
    "http://[::ffff:169.254.169.254]:3128",
    "1µs",
    ".5s",
    "5.s",
];

#[derive(Clone, Debug)]
enum Mutation {
    Insert(usize, String),
    Delete(usize, usize),
    Token(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
    /// A spec field set to a token, after the first `spec:`.
    Field(usize, usize),
}

const FIELDS: &[&str] = &[
    "interval",
    "expiryWarning",
    "url",
    "flavor",
    "network",
    "tls",
    "requirements",
    "profiles",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), ".{0,8}").prop_map(|(at, s)| Mutation::Insert(at, s)),
        (any::<usize>(), 0usize..64).prop_map(|(at, n)| Mutation::Delete(at, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Mutation::Token(at, t)),
        (any::<usize>(), 0usize..256).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (0..FIELDS.len(), 0..TOKENS.len()).prop_map(|(f, t)| Mutation::Field(f, t)),
    ]
}

fn boundary(s: &str, at: usize) -> usize {
    let mut i = if s.is_empty() { 0 } else { at % (s.len() + 1) };
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(seed: &str, muts: &[Mutation]) -> String {
    let mut s = seed.to_string();
    for m in muts {
        match m {
            Mutation::Insert(at, t) => {
                let i = boundary(&s, *at);
                s.insert_str(i, t);
            }
            Mutation::Delete(at, n) => {
                let i = boundary(&s, *at);
                let j = boundary(&s, i + n);
                s.replace_range(i..j.max(i), "");
            }
            Mutation::Token(at, t) => {
                // Replace the value after a ':' (or anywhere) with a token.
                let i = boundary(&s, *at);
                let start = s[i..].find(": ").map(|k| i + k + 2).unwrap_or(i);
                let end = s[start..]
                    .find(['\n', ',', '}', ']'])
                    .map(|k| start + k)
                    .unwrap_or(s.len());
                s.replace_range(start..end, TOKENS[*t]);
            }
            Mutation::Duplicate(at, n) => {
                let i = boundary(&s, *at);
                let j = boundary(&s, i + n);
                let piece = s[i..j.max(i)].to_string();
                s.insert_str(j.max(i), &piece);
            }
            Mutation::Truncate(at) => {
                let i = boundary(&s, *at);
                s.truncate(i);
            }
            Mutation::Field(f, t) => {
                if let Some(i) = s.find("spec:\n") {
                    let line = format!("spec:\n  {}: {}\n", FIELDS[*f], TOKENS[*t]);
                    s.replace_range(i..i + 6, &line);
                }
            }
        }
    }
    s
}

#[test]
fn the_manifest_reader_never_panics() {
    let mut r = runner(64);
    r.run(
        &(0..MANIFESTS.len(), prop::collection::vec(mutation(), 0..8)),
        |(seed, muts)| {
            let text = apply(MANIFESTS[seed], &muts);
            match bbconn::manifests::load_str("fuzz.yaml", &text, "default") {
                Ok(conns) => {
                    for c in conns {
                        // The accessors of whatever was accepted are in range.
                        let i = c.spec.interval();
                        prop_assert!(
                            i >= bbconn::api::MIN_INTERVAL && i <= bbconn::api::MAX_INTERVAL
                        );
                        prop_assert!(c.spec.expiry_warning() <= bbconn::api::MAX_EXPIRY_WARNING);
                    }
                }
                Err(e) => {
                    let m = e.to_string();
                    prop_assert!(m.len() < 1024, "a {}-byte message: {}", m.len(), &m[..200]);
                    prop_assert!(!m.contains("DuplicateKeyPolicy"), "{m}");
                }
            }
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn the_duration_parser_never_panics() {
    let mut r = runner(2048);
    let strategy = prop_oneof![
        ".{0,40}",
        "[0-9.]{0,30}(ns|us|µs|ms|s|m|h)?([0-9.]{0,30}(ns|us|µs|ms|s|m|h))*",
        "[-+]?[0-9]{0,25}(\\.[0-9]{0,25})?[hms]",
    ];
    r.run(&strategy, |s| {
        if let Ok(d) = bbconn::duration::parse(&s) {
            prop_assert!(d.get().as_nanos() <= i64::MAX as u128);
            prop_assert_eq!(bbconn::duration::parse(&d.to_string()), Ok(d));
        }
        let _ = bbconn::bitbucket::parse_retry_after(&s)
            .map(|d| assert!(d <= bbconn::bitbucket::MAX_RETRY_AFTER));
        Ok(())
    })
    .unwrap();
}

#[test]
fn retry_after_is_bounded_for_any_value() {
    let mut r = runner(2048);
    let strategy = prop_oneof![
        "[0-9]{0,40}",
        "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} (Jan|Feb|Dec) [0-9]{1,6} [0-9]{2}:[0-9]{2}:[0-9]{2} (GMT|UTC|[+-][0-9]{4})",
        ".{0,40}",
    ];
    r.run(&strategy, |s| {
        if let Some(d) = bbconn::bitbucket::parse_retry_after(&s) {
            prop_assert!(d <= bbconn::bitbucket::MAX_RETRY_AFTER);
        }
        Ok(())
    })
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// git's ref advertisements: the parser GitAccess reads them with.

#[derive(Clone, Debug)]
struct Advert {
    name: String,
    service: bbconn::bitbucket::git::Service,
    content_type: String,
    body: String,
    advertised: bool,
}

fn adverts() -> Vec<Advert> {
    use bbconn::bitbucket::git::Service;
    let v: serde_json::Value =
        serde_json::from_str(include_str!("fuzz-seeds/git-advertisements.json")).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| Advert {
            name: a["name"].as_str().unwrap().to_string(),
            service: match a["service"].as_str().unwrap() {
                "receive-pack" => Service::ReceivePack,
                _ => Service::UploadPack,
            },
            content_type: a["contentType"].as_str().unwrap().to_string(),
            body: a["body"].as_str().unwrap().to_string(),
            advertised: a["expect"] == "advertised",
        })
        .collect()
}

/// GitAccess's verdict on a 200 answer: None (git works) or the finding.
fn git_verdict(
    service: bbconn::bitbucket::git::Service,
    content_type: &str,
    body: &[u8],
) -> (
    Result<bbconn::bitbucket::git::Advertisement, String>,
    Option<bbconn::checks::Finding>,
) {
    use bbconn::bitbucket::git::{Answer, parse_advertisement};
    use bbconn::checks::git_access::{Form, Scheme, judge};
    let parsed = parse_advertisement(service, Some(content_type), body);
    let answer = match &parsed {
        Ok(a) => Answer::Advertised(a.clone()),
        Err(detail) => Answer::NotGit {
            status: 200,
            detail: detail.clone(),
        },
    };
    let form = Form {
        scheme: Scheme::Bearer,
        username: None,
        configure: String::new(),
        needed_username: None,
        from_spec: false,
    };
    let finding = judge(service, &answer, &form, "PROJ/app");
    (parsed, finding)
}

#[test]
fn the_git_advertisement_seeds_read_as_git_would() {
    for a in adverts() {
        let (parsed, finding) = git_verdict(a.service, &a.content_type, a.body.as_bytes());
        assert_eq!(parsed.is_ok(), a.advertised, "{}: {parsed:?}", a.name);
        assert_eq!(finding.is_none(), a.advertised, "{}", a.name);
    }
}

#[test]
fn the_git_advertisement_parser_never_panics() {
    use bbconn::catalogue::Cause;
    let seeds = Arc::new(adverts());
    let n = seeds.len();
    let mut r = runner(1024);
    let content_types = [
        None,
        Some("application/x-git-upload-pack-advertisement"),
        Some("application/x-git-receive-pack-advertisement"),
        Some("APPLICATION/X-GIT-UPLOAD-PACK-ADVERTISEMENT; charset=utf-8"),
        Some(""),
        Some("text/html"),
    ];
    r.run(
        &(
            0..n,
            prop::collection::vec(mutation(), 0..8),
            prop::option::of(0..content_types.len()),
            any::<bool>(),
        ),
        |(i, muts, ct, swap)| {
            let seed = &seeds[i];
            let body = apply(&seed.body, &muts);
            let content_type = ct
                .and_then(|c| content_types[c])
                .unwrap_or(&seed.content_type);
            let service = if swap {
                match seed.service {
                    bbconn::bitbucket::git::Service::UploadPack => {
                        bbconn::bitbucket::git::Service::ReceivePack
                    }
                    bbconn::bitbucket::git::Service::ReceivePack => {
                        bbconn::bitbucket::git::Service::UploadPack
                    }
                }
            } else {
                seed.service
            };
            let started = std::time::Instant::now();
            let (parsed, finding) = git_verdict(service, content_type, body.as_bytes());
            // Linear in the body: never a hang.
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(1));
            match (&parsed, &finding) {
                (Ok(a), None) => {
                    // Every ref is a pkt-line of at least 4 + 41 bytes.
                    prop_assert!(a.refs <= body.len() / 45, "{} refs in {body:?}", a.refs);
                }
                (Err(detail), Some(f)) => {
                    prop_assert_eq!(f.cause, Cause::UnexpectedResponse);
                    // Bounded, whatever the server sent: it reaches status messages.
                    prop_assert!(detail.len() < 512, "{} bytes: {detail}", detail.len());
                    prop_assert!(f.message.len() < 1024);
                }
                other => prop_assert!(false, "parse and verdict disagree: {other:?}"),
            }
            Ok(())
        },
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Answers: a loopback server answers the engine's requests with mutated real answers.

#[derive(Clone, Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn seeds() -> Vec<Answer> {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("fuzz-seeds/bitbucket-answers.json")).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| Answer {
            status: a["status"].as_u64().unwrap_or(200) as u16,
            headers: a["headers"]
                .as_object()
                .map(|h| {
                    h.iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length"))
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            body: a["body"].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

const STATUSES: &[u16] = &[
    200, 201, 204, 301, 302, 307, 400, 401, 403, 404, 405, 407, 409, 418, 429, 431, 500, 502, 503,
    999, 100,
];

const HEADERS: &[&str] = &[
    "retry-after",
    "x-ausername",
    "x-oauth-scopes",
    "x-accepted-oauth-scopes",
    "x-credential-type",
    "location",
    "content-type",
    "x-authentication-denied-reason",
    "www-authenticate",
];

fn answer_strategy(seeds: Arc<Vec<Answer>>) -> impl Strategy<Value = Vec<Answer>> {
    let n = seeds.len();
    let one = (
        0..n,
        prop::option::of(0..STATUSES.len()),
        prop::collection::vec(mutation(), 0..6),
        prop::option::of((0..HEADERS.len(), 0..TOKENS.len())),
    )
        .prop_map(move |(i, status, muts, header)| {
            let mut a = seeds[i].clone();
            if let Some(s) = status {
                a.status = STATUSES[s];
            }
            a.body = apply(&a.body, &muts);
            if let Some((h, t)) = header {
                a.headers
                    .push((HEADERS[h].to_string(), TOKENS[t].to_string()));
            }
            a
        });
    prop::collection::vec(one, 1..6)
}

fn serialize(a: &Answer) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} Fuzz\r\n", a.status);
    for (k, v) in &a.headers {
        // Header values cannot hold CR, LF or NUL.
        if v.bytes().all(|b| b != b'\r' && b != b'\n' && b != 0) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", a.body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(a.body.as_bytes());
    out
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Option<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65536 || s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_lowercase();
    let len = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    s.read_exact(&mut body).await.ok()?;
    Some(())
}

type Script = Arc<Mutex<(Vec<Answer>, usize)>>;

async fn answering_server(pki: &bbconn_sim::Pki, script: Script) -> u16 {
    let (chain, key) = pki.leaf(
        bbconn_sim::CertMode::Good,
        &["fuzz.bitbucket.test".to_string()],
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            let script = script.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                while read_request(&mut tls).await.is_some() {
                    let bytes = {
                        let mut g = script.lock().unwrap();
                        let (answers, next) = &mut *g;
                        let a = answers[*next % answers.len()].clone();
                        *next += 1;
                        serialize(&a)
                    };
                    if tls.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

const CONNECTIONS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: tok, namespace: ci}
stringData: {token: fuzz-token-0123456789, tokenId: "1234", username: alice@example.com, password: fuzz-password-0123, clientId: fuzz-client, clientSecret: fuzz-client-secret, redirectUrl: "https://ci.example.com/callback"}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: test-ca, namespace: ci}
data: {ca.crt: "CA"}
---
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: {name: dc-token, namespace: ci}
spec:
  flavor: DataCenter
  url: https://fuzz.bitbucket.test
  auth: {method: AccessToken, secretRef: {name: tok}}
  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}
  requirements: {permissions: [REPO_ADMIN], repositories: [{name: PROJ/app, access: Admin}]}
---
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: {name: dc-basic, namespace: ci}
spec:
  flavor: DataCenter
  url: https://fuzz.bitbucket.test/bitbucket
  auth: {method: Basic, secretRef: {name: tok}}
  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}
  requirements: {repositories: [{name: PROJ/app, access: Write}]}
---
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: {name: cloud-api, namespace: ci}
spec:
  flavor: Cloud
  url: https://fuzz.bitbucket.test/2.0
  auth: {method: ApiToken, secretRef: {name: tok}}
  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}
  profiles: [ox-security]
  requirements: {repositories: [{name: ws/repo, access: Admin}]}
---
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: {name: cloud-oauth, namespace: ci}
spec:
  flavor: Cloud
  url: https://fuzz.bitbucket.test/2.0
  auth: {method: OAuthClientCredentials, secretRef: {name: tok}, tokenUrl: "https://fuzz.bitbucket.test/site/oauth2/access_token"}
  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}
  profiles: [terraform-enterprise]
  requirements: {repositories: [{name: ws/repo, access: Admin}]}
---
apiVersion: bbconn.dev/v1alpha1
kind: BitbucketConnection
metadata: {name: dc-link, namespace: ci}
spec:
  flavor: DataCenter
  url: https://fuzz.bitbucket.test
  auth: {method: OAuthApplicationLink, secretRef: {name: tok}}
  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}
"#;

#[test]
fn the_answer_parsers_never_panic() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let pki = bbconn_sim::Pki::new();
    let script: Script = Arc::new(Mutex::new((seeds(), 0)));
    let port = rt.block_on(answering_server(&pki, script.clone()));
    let ca = serde_json::to_string(&pki.ca_pem()).unwrap();
    let manifest = CONNECTIONS.replace("{ca.crt: \"CA\"}", &format!("{{ca.crt: {ca}}}"));
    let conns = bbconn::manifests::load_str("fuzz.yaml", &manifest, "ci").unwrap();
    let net = bbconn::cli::NetArgs {
        address_class: vec!["127.0.0.0/8=public".parse().unwrap()],
        connect_to: vec![
            format!("fuzz.bitbucket.test:443:127.0.0.1:{port}")
                .parse()
                .unwrap(),
        ],
        connect_timeout: 2,
        request_timeout: 2,
        ..Default::default()
    };
    let env = Arc::new(bbconn::engine::Env::new(net.net_config()));
    let seeds = Arc::new(seeds());
    let mut r = runner(32);
    r.run(&answer_strategy(seeds), |answers| {
        *script.lock().unwrap() = (answers, 0);
        let reports = rt.block_on(bbconn::cli::check_all(&env, &conns, 8));
        prop_assert_eq!(reports.len(), conns.len());
        for (c, report) in conns.iter().zip(&reports) {
            let status = bbconn::status::build(
                report,
                &bbconn::status::remedy_context(&c.namespace, &c.spec),
                None,
                None,
                jiff::Timestamp::now(),
            );
            let text = serde_json::to_string(&status).unwrap();
            // Bounded: a mutated answer of any size gives a status of a few KiB.
            prop_assert!(text.len() < 64 << 10, "{}: {} bytes", c.name, text.len());
            for p in &status.problems {
                prop_assert!(p.message.len() < 2048, "{}: {}", c.name, p.message);
            }
            for secret in [
                "fuzz-token-0123456789",
                "fuzz-password-0123",
                "fuzz-client-secret",
            ] {
                prop_assert!(!text.contains(secret), "{}: {secret} in {text}", c.name);
            }
        }
        Ok(())
    })
    .unwrap();
}

/// known_hosts as consumers write it: Cloud's keys under its names, markers, hashed names,
/// `[host]:port`, negation and wildcards.
fn known_hosts_seeds() -> Vec<String> {
    use bbconn_sim::fixture::Flavor;
    let cloud = bbconn_sim::ssh::published_host_keys(Flavor::Cloud);
    let dc = bbconn_sim::ssh::published_host_keys(Flavor::Datacenter);
    let mut seeds = vec![
        cloud
            .iter()
            .map(|k| format!("ssh.bitbucket.org,bitbucket.org {k}"))
            .collect::<Vec<_>>()
            .join("\n"),
        format!(
            "@revoked * {}\n[bitbucket.example.com]:7999 {}",
            cloud[0], dc[0]
        ),
        format!(
            "@cert-authority *.example.com,!evil.example.com {}",
            cloud[0]
        ),
        format!(
            "|1|JfKTdBh7rNbXkVAQCRp4OQoPfmI=|USECr3SWf1JUPsms5AqfD5QfxkM= {}",
            cloud[0]
        ),
        format!(
            "# a comment\n\n*.bitbucket.org ?sh.bitbucket.org {}\n",
            cloud[1]
        ),
    ];
    seeds.push(seeds.join("\n"));
    seeds
}

#[test]
fn known_hosts_and_the_host_key_verdict_never_panic() {
    use bbconn::ssh::known_hosts::KnownHosts;
    let seeds = known_hosts_seeds();
    let offers: Vec<String> = [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "ssh-rsa",
    ]
    .map(String::from)
    .to_vec();
    let mut r = runner(256);
    r.run(
        &(0..seeds.len(), prop::collection::vec(mutation(), 0..8)),
        |(seed, muts)| {
            let text = apply(&seeds[seed], &muts);
            let kh = KnownHosts::parse(&text);
            for (host, port) in [("ssh.bitbucket.org", 22), ("bitbucket.example.com", 7999)] {
                let known = kh.lookup(host, port);
                let wanted = bbconn::checks::host_key::types_to_fetch(&known, &offers);
                prop_assert!(wanted.len() <= offers.len());
                let verdict =
                    bbconn::checks::host_key::verdict(&bbconn::checks::host_key::Observed {
                        host,
                        port,
                        known: &known,
                        server_offers: &offers,
                        fetched: &[],
                        now: 1_800_000_000,
                    });
                if let bbconn::checks::Verdict::Failed(f) = &verdict.verdict {
                    prop_assert!(f.message.len() < 8192, "{}", f.message.len());
                }
            }
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn ssh_key_parsing_never_panics_nor_quotes_the_key() {
    use bbconn::checks::Lookup;
    use bbconn_sim::ssh::{ALICE_ED25519, ALICE_RSA, ENCRYPTED_ED25519};
    let spec: bbconn::api::BitbucketConnectionSpec = serde_saphyr::from_str(
        "flavor: Cloud\ngit: {transport: SSH, ssh: {url: 'ssh://git@ssh.bitbucket.org', secretRef: {name: key}}}\n",
    )
    .unwrap();
    let keys = [ALICE_ED25519, ALICE_RSA, ENCRYPTED_ED25519];
    let mut r = runner(128);
    r.run(
        &(
            0..keys.len(),
            prop::collection::vec(mutation(), 0..6),
            any::<bool>(),
        ),
        |(k, muts, with_pass)| {
            let key = keys[k];
            let text = apply(key.private, &muts);
            let mut data = std::collections::BTreeMap::new();
            data.insert("identity".to_string(), text.into_bytes());
            data.insert(
                "known_hosts".to_string(),
                b"ssh.bitbucket.org ssh-ed25519 AAAA".to_vec(),
            );
            if with_pass {
                data.insert("password".to_string(), b"correct horse".to_vec());
            }
            let lookup = Lookup::Found(data, Default::default());
            if let Err(f) = bbconn::checks::credentials::ssh::check(&spec, "ns", &lookup, None) {
                // The key's body never reaches a message.
                for line in key.private.lines().skip(1).take(3) {
                    prop_assert!(!f.message.contains(line), "{}", f.message);
                }
                prop_assert!(!f.message.contains("correct horse"));
            }
            Ok(())
        },
    )
    .unwrap();
}
