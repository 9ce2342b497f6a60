//! The destination policy holds for every address bbconn would connect to: the server, the
//! private endpoint, the token endpoint, whatever a name resolves to, and every form an address
//! can be written in (decimal, hex and octal IPv4; IPv6 forms that carry an IPv4 address). Each
//! refusal happens before any connect(): a loopback listener on the denied address counts the
//! connections it accepts, and must count none.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{World, connection};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// 127.0.0.77, denied by `--deny-destination`, written every way a URL or a resolver can.
const DENIED: &str = "127.0.0.77";
fn forms_of_denied() -> Vec<(&'static str, String)> {
    vec![
        ("dotted", "127.0.0.77".into()),
        ("decimal", "2130706509".into()),
        ("hex", "0x7f00004d".into()),
        ("octal", "0177.0.0.0115".into()),
        ("v4-mapped", "[::ffff:127.0.0.77]".into()),
        ("SIIT", "[::ffff:0:127.0.0.77]".into()),
        ("v4-compatible", "[::127.0.0.77]".into()),
        ("NAT64", "[64:ff9b::7f00:4d]".into()),
        ("NAT64 local", "[64:ff9b:1::7f00:4d]".into()),
        ("6to4", "[2002:7f00:4d::1]".into()),
        // Teredo: the client address is the bit-inverted last 32 bits: !7f00:004d = 80ff:ffb2.
        ("Teredo", "[2001:0:4136:e378:8000:63bf:80ff:ffb2]".into()),
        ("name", "rebind.bitbucket.test".into()),
        ("name, one of two", "mixed.bitbucket.test".into()),
    ]
}

/// The metadata address under the default policy, in the forms the probes used.
fn forms_of_metadata() -> Vec<(&'static str, String)> {
    vec![
        ("dotted", "169.254.169.254".into()),
        ("decimal", "2852039166".into()),
        ("v4-mapped", "[::ffff:169.254.169.254]".into()),
        ("v4-compatible", "[::169.254.169.254]".into()),
        ("NAT64", "[64:ff9b::a9fe:a9fe]".into()),
        ("6to4", "[2002:a9fe:a9fe::]".into()),
        ("Teredo", "[2001:0:4136:e378:8000:63bf:5601:5601]".into()),
        ("name", "metadata.infra".into()),
    ]
}

struct Counter {
    port: u16,
    accepted: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn counting_listener() -> Counter {
    let l = tokio::net::TcpListener::bind((DENIED, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let n = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            n.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    Counter {
        port,
        accepted,
        _task: task,
    }
}

const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";

/// One connection per (role, form): the form as the server, as the private endpoint, and as the
/// token endpoint.
fn manifest(world: &World, forms: &[(&str, String)], port: u16) -> (String, Vec<String>) {
    let mut m = world.ca_configmap("ci");
    let mut names = Vec::new();
    for (i, (_, host)) in forms.iter().enumerate() {
        let server = format!("server-{i}");
        m.push_str(&connection(
            "ci",
            &server,
            &format!(
                "  flavor: DataCenter\n  url: https://{host}:{port}\n  auth: {{method: AccessToken, secretRef: {{name: {server}-cred}}}}\n{CA}\n  network: {{allowedPorts: [{port}]}}"
            ),
            &[("token", "dc-alice-admin-token-0103")],
        ));
        let proxy = format!("proxy-{i}");
        m.push_str(&connection(
            "ci",
            &proxy,
            &format!(
                "  flavor: DataCenter\n  url: https://private.bitbucket.test\n  auth: {{method: AccessToken, secretRef: {{name: {proxy}-cred}}}}\n{CA}\n  network: {{exposure: Private, privateEndpoint: {{proxyUrl: \"http://{host}:{port}\"}}}}"
            ),
            &[("token", "dc-alice-admin-token-0103")],
        ));
        let token = format!("token-{i}");
        m.push_str(&connection(
            "ci",
            &token,
            &format!(
                "  flavor: Cloud\n  auth: {{method: OAuthClientCredentials, secretRef: {{name: {token}-cred}}, tokenUrl: \"https://{host}:{port}/site/oauth2/access_token\"}}\n{CA}\n  network: {{allowedPorts: [443, {port}]}}"
            ),
            &[("clientId", "tfe-consumer-key"), ("clientSecret", "tfe-consumer-secret")],
        ));
        names.extend([server, proxy, token]);
    }
    (m, names)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_destination_is_judged_before_connecting() {
    let world = World::start().await;
    let counter = counting_listener().await;
    let port = counter.port;
    let mut net = world.net();
    net.deny_destination
        .push(bbconn::transport::address::parse_net(DENIED).unwrap());
    for r in [
        format!("rebind.bitbucket.test:{port}:{DENIED}"),
        format!("mixed.bitbucket.test:{port}:127.0.0.1,{DENIED}"),
        format!("metadata.infra:{port}:169.254.169.254"),
    ] {
        net.resolve.push(r.parse().unwrap());
    }

    for (label, forms) in [
        ("--deny-destination 127.0.0.77", forms_of_denied()),
        ("default policy, metadata", forms_of_metadata()),
    ] {
        let (m, names) = manifest(&world, &forms, port);
        let out = world
            .check_with(&m, net.clone(), bbconn::cli::Output::Json)
            .await;
        assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
        for (i, name) in names.iter().enumerate() {
            let (form, host) = &forms[i / 3];
            let (status, reason, message) = out.condition(name, "NetworkPathValid");
            assert_eq!(
                (status.as_str(), reason.as_str()),
                ("False", "DestinationNotAllowed"),
                "{label}: {name} ({form}, {host}): {message}"
            );
            if !name.starts_with("token-") {
                // The token endpoint is asked after the API origin passed Reachable.
                let (reachable, _, _) = out.condition(name, "Reachable");
                assert_ne!(reachable, "True", "{label}: {name} ({form})");
            } else {
                assert!(message.contains("token endpoint"), "{name}: {message}");
            }
        }
    }
    // (Each connection of the manifest, three roles per form, was judged above: `condition`
    // fails on a connection missing from the output.)
    assert_eq!(
        counter.accepted.load(Ordering::SeqCst),
        0,
        "a denied address was connected to"
    );
}

/// The listener counts: the same port, allowed, is connected to (so zero above means refused,
/// not unreachable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counting_listener_counts() {
    let world = World::start().await;
    let counter = counting_listener().await;
    let port = counter.port;
    let m = format!(
        "{}{}",
        world.ca_configmap("ci"),
        connection(
            "ci",
            "allowed",
            &format!(
                "  flavor: DataCenter\n  url: https://{DENIED}:{port}\n  auth: {{method: AccessToken, secretRef: {{name: allowed-cred}}}}\n{CA}\n  network: {{allowedPorts: [{port}]}}"
            ),
            &[("token", "dc-alice-admin-token-0103")],
        )
    );
    let out = world.check(&m).await;
    assert_eq!(out.condition("allowed", "NetworkPathValid").0, "True");
    assert!(counter.accepted.load(Ordering::SeqCst) >= 1);
}
