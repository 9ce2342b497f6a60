//! Servers that misbehave, on loopback: each ends in a verdict within bounded time (a transient
//! cause: Ready Unknown), never a hang or a panic; and a server that echoes the request (the
//! Authorization header, the token endpoint's form) into every answer gets no form of a secret
//! into bbconn's output.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine;
use bbconn_sim::CertMode;
use common::{World, connection};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Accepts TCP and never says a word.
    Silent,
    /// Sends a byte a second before any TLS.
    TrickleRaw,
    /// Speaks plain HTTP on the TLS port.
    NotTls,
    /// Completes TLS, then answers a byte a second.
    TrickleHttp,
    /// Answers with a 10 MB header.
    HugeHeader,
    /// Answers with a chunked body that never ends.
    EndlessChunked,
    /// Answers every request with the request itself, in headers and in the body.
    Echo,
}

const HOSTS: &[&str] = &[
    "silent.hostile.test",
    "trickle-raw.hostile.test",
    "not-tls.hostile.test",
    "trickle-http.hostile.test",
    "huge-header.hostile.test",
    "endless-chunked.hostile.test",
    "s200.echo.test",
    "s400.echo.test",
    "s401.echo.test",
    "s403.echo.test",
    "s404.echo.test",
    "s418.echo.test",
    "s302.echo.test",
];

fn acceptor(pki: &bbconn_sim::Pki) -> tokio_rustls::TlsAcceptor {
    let hosts: Vec<String> = HOSTS.iter().map(|h| h.to_string()).collect();
    let (chain, key) = pki.leaf(CertMode::Good, &hosts);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// A loopback server with one behaviour; returns its port.
async fn serve(pki: &bbconn_sim::Pki, b: Behaviour) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = acceptor(pki);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match b {
                    Behaviour::Silent => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    Behaviour::TrickleRaw => {
                        // The start of a well-formed TLS record (handshake, TLS 1.2, 64 bytes,
                        // ServerHello), a byte a second: nothing a client could reject before
                        // its timeout, so only the timeout can end it.
                        let mut bytes = vec![0x16u8, 0x03, 0x03, 0x00, 0x40, 0x02];
                        bytes.resize(69, 0);
                        for b in bytes {
                            if tcp.write_all(&[b]).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    Behaviour::NotTls => {
                        let _ = tcp
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    _ => {
                        let Ok(tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        answer(tls, b).await;
                    }
                }
            });
        }
    });
    port
}

/// One request: its head and body, or None when the client went away.
async fn read_request<S: AsyncRead + Unpin>(s: &mut S) -> Option<(String, Vec<u8>)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 65536 || s.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    s.read_exact(&mut body).await.ok()?;
    Some((head, body))
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, b: Behaviour) {
    while let Some((head, body)) = read_request(&mut s).await {
        match b {
            Behaviour::TrickleHttp => {
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: "
                    .iter()
                    .chain(std::iter::repeat(&b'a'))
                {
                    if s.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    let _ = s.flush().await;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Behaviour::HugeHeader => {
                let mut r = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
                r.extend(std::iter::repeat_n(b'a', 10 << 20));
                r.extend_from_slice(b"\r\nContent-Length: 0\r\n\r\n");
                let _ = s.write_all(&r).await;
                return;
            }
            Behaviour::EndlessChunked => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                if s.write_all(head).await.is_err() {
                    return;
                }
                let chunk = format!("1000\r\n{}\r\n", "[".repeat(4096));
                while s.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            Behaviour::Echo => {
                let _ = s.write_all(&echo(&head, &body)).await;
            }
            _ => return,
        }
    }
}

/// The request, echoed: the status is the host's first label (s401.echo.test: 401).
fn echo(head: &str, body: &[u8]) -> Vec<u8> {
    let host = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("host: ")
                .or_else(|| l.strip_prefix("Host: "))
        })
        .unwrap_or_default();
    let status: u16 = host.get(1..4).and_then(|s| s.parse().ok()).unwrap_or(400);
    let all = format!("{head}{}", String::from_utf8_lossy(body));
    let one_line = all.replace("\r\n", " | ");
    let auth = head
        .lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        })
        .map(|(_, v)| v.to_string())
        .unwrap_or_default();
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let json = if path.contains("oauth2") || path.contains("access_token") {
        serde_json::json!({"error": "invalid_client", "error_description": one_line})
    } else {
        serde_json::json!({
            "version": one_line,
            "errors": [{"message": one_line, "exceptionName": one_line}],
            "error": {"message": one_line},
            "nickname": one_line,
        })
    };
    let body = json.to_string();
    let mut r = format!(
        "HTTP/1.1 {status} Echo\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-AUSERNAME: {auth}\r\nX-Credential-Type: {auth}\r\nX-OAuth-Scopes: {auth}\r\nWWW-Authenticate: Basic realm=\"{auth}\"\r\n",
        body.len()
    );
    if status == 302 {
        r.push_str(&format!(
            "Location: https://elsewhere.example/?echo={}\r\n",
            base64::engine::general_purpose::URL_SAFE.encode(&all)
        ));
    }
    r.push_str("\r\n");
    r.push_str(&body);
    r.into_bytes()
}

const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";

fn dc(host: &str, method: &str, secretref: &str) -> String {
    format!(
        "  flavor: DataCenter\n  url: https://{host}\n  auth: {{method: {method}, secretRef: {{name: {secretref}}}}}\n{CA}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_servers_end_in_a_transient_verdict() {
    let world = World::start().await;
    let mut net = world.net();
    for (host, b) in [
        ("silent.hostile.test", Behaviour::Silent),
        ("trickle-raw.hostile.test", Behaviour::TrickleRaw),
        ("not-tls.hostile.test", Behaviour::NotTls),
        ("trickle-http.hostile.test", Behaviour::TrickleHttp),
        ("huge-header.hostile.test", Behaviour::HugeHeader),
        ("endless-chunked.hostile.test", Behaviour::EndlessChunked),
    ] {
        let port = serve(&world.pki, b).await;
        net.connect_to
            .push(format!("{host}:443:127.0.0.1:{port}").parse().unwrap());
    }
    let mut m = world.ca_configmap("ci");
    let cases = [
        ("silent", "silent.hostile.test"),
        ("trickle-raw", "trickle-raw.hostile.test"),
        ("not-tls", "not-tls.hostile.test"),
        ("trickle-http", "trickle-http.hostile.test"),
        ("huge-header", "huge-header.hostile.test"),
        ("endless-chunked", "endless-chunked.hostile.test"),
    ];
    for (name, host) in cases {
        m.push_str(&connection(
            "ci",
            name,
            &dc(host, "AccessToken", &format!("{name}-cred")),
            &[("token", "dc-alice-admin-token-0103")],
        ));
    }
    // Bounded: connect and request timeouts are 2 s each (World::net); a hang fails here.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        world.check_with(&m, net, bbconn::cli::Output::Json),
    )
    .await
    .expect("bbconn check ended");
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for (name, _) in cases {
        let (status, reason, message) = out.condition(name, "Ready");
        assert_eq!(
            status, "Unknown",
            "{name}: Ready {status} {reason}: {message}"
        );
        assert!(
            ["ConnectionTimedOut", "ServerError", "UnexpectedResponse"].contains(&reason.as_str()),
            "{name}: {reason}: {message}"
        );
        assert!(message.len() < 1000, "{name}: a long message: {message}");
    }
    // What each one is, so a change in verdict is seen.
    let reason = |n: &str| out.condition(n, "Ready").1;
    assert_eq!(reason("silent"), "ConnectionTimedOut");
    assert_eq!(reason("trickle-raw"), "ConnectionTimedOut");
    assert_eq!(reason("trickle-http"), "ConnectionTimedOut");
    assert_eq!(reason("endless-chunked"), "UnexpectedResponse");
}

/// Every encoding of `secret` the test knows, computed here, independently of src/scrub.rs.
fn encodings(user: &str, secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let pair = format!("{user}:{secret}");
    let pct = utf8_percent_encode(secret, NON_ALPHANUMERIC).to_string();
    let mut v = vec![secret.to_string(), pct.to_lowercase(), pct];
    for e in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
        v.push(e.encode(secret));
        v.push(e.encode(&pair));
    }
    v.push(url::form_urlencoded::byte_serialize(secret.as_bytes()).collect());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoing_server_gets_no_form_of_a_secret_out() {
    let world = World::start().await;
    let port = serve(&world.pki, Behaviour::Echo).await;
    let mut net = world.net();
    let statuses = ["s200", "s400", "s401", "s403", "s404", "s418", "s302"];
    for s in statuses {
        net.connect_to.push(
            format!("{s}.echo.test:443:127.0.0.1:{port}")
                .parse()
                .unwrap(),
        );
    }
    let user = "alice@example.com";
    let secrets = [
        ("password", "Pa$$ w0rd/with+odd=chars?&"),
        ("token", "BBDC-echo-token-1234567890abcdef"),
        ("clientSecret", "oauth client secret/+= 42"),
    ];
    let mut m = world.ca_configmap("ci");
    let mut names = Vec::new();
    for s in statuses {
        let host = format!("{s}.echo.test");
        let basic = format!("basic-{s}");
        m.push_str(&connection(
            "ci",
            &basic,
            &dc(&host, "Basic", &format!("{basic}-cred")),
            &[("username", user), ("password", secrets[0].1)],
        ));
        let token = format!("token-{s}");
        m.push_str(&connection(
            "ci",
            &token,
            &dc(&host, "AccessToken", &format!("{token}-cred")),
            &[("token", secrets[1].1)],
        ));
        let cloud = format!("cloud-{s}");
        m.push_str(&connection(
            "ci",
            &cloud,
            &format!(
                "  flavor: Cloud\n  url: https://{host}/2.0\n  auth: {{method: ApiToken, secretRef: {{name: {cloud}-cred}}}}\n{CA}"
            ),
            &[("username", user), ("token", secrets[1].1)],
        ));
        let oauth = format!("oauth-{s}");
        m.push_str(&connection(
            "ci",
            &oauth,
            &format!(
                "  flavor: Cloud\n  url: https://{host}/2.0\n  auth: {{method: OAuthClientCredentials, secretRef: {{name: {oauth}-cred}}, tokenUrl: \"https://{host}/site/oauth2/access_token\"}}\n{CA}"
            ),
            &[("clientId", user), ("clientSecret", secrets[2].1)],
        ));
        names.extend([basic, token, cloud, oauth]);
    }
    let out = world
        .check_with(&m, net.clone(), bbconn::cli::Output::Json)
        .await;
    assert!(out.json.is_some(), "{}{}", out.stdout, out.stderr);
    let table = world.check_with(&m, net, bbconn::cli::Output::Table).await;
    for (key, secret) in secrets {
        for e in encodings(user, secret) {
            for (what, text) in [
                ("json", &out.stdout),
                ("stderr", &out.stderr),
                ("table", &table.stdout),
            ] {
                assert!(
                    !text.contains(&e),
                    "{key} as {e:?} is in the {what} output:\n{text}"
                );
            }
        }
    }
    // The echo did reach the output (else this test could not fail): redacted, not absent.
    let reached: Vec<&String> = names
        .iter()
        .filter(|n| out.status(n).to_string().contains("<redacted>"))
        .collect();
    assert!(
        reached.len() * 4 >= names.len() * 3,
        "the echo reached only {reached:?} of {names:?}"
    );
}
