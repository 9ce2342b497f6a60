//! The egress proxy: a Public server reached through an HTTP CONNECT proxy, named in
//! spec.network.egressProxy or operator-wide (HTTPS_PROXY / NO_PROXY, here as flags), for REST,
//! the token endpoint and git. The simulator's proxy logs every CONNECT; the server's names
//! resolve to a loopback address where nothing listens, so only the tunnel can reach it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::cli::{NetArgs, Output};
use common::{World, connection, world_fixture};

const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
const PROXY_USER: &str = "egress-user";
const PROXY_PASSWORD: &str = "egress-proxy-password-0901";

/// The world plus two egress proxies that route Bitbucket's public names to the server: one
/// open, one that requires Basic proxy auth.
async fn world() -> World {
    let mut f = world_fixture();
    let routes = serde_json::json!({
        "api.bitbucket.org:443": "good",
        "bitbucket.org:443": "good",
        "bitbucket.example.com:443": "good",
    });
    f.listeners.push(
        serde_json::from_value(serde_json::json!({
            "name": "egress", "kind": "connectProxy", "routes": routes,
        }))
        .unwrap(),
    );
    f.listeners.push(
        serde_json::from_value(serde_json::json!({
            "name": "auth-egress", "kind": "connectProxy", "routes": routes,
            "proxyAuth": { "username": PROXY_USER, "password": PROXY_PASSWORD },
        }))
        .unwrap(),
    );
    World::start_with(f).await
}

/// The world's network, except that Bitbucket's public names resolve to 127.0.0.9 (public, and
/// closed): a connection that does not go through the proxy fails.
fn net(world: &World) -> NetArgs {
    let mut net = world.net();
    let public = [
        "api.bitbucket.org",
        "bitbucket.org",
        "bitbucket.example.com",
    ];
    net.connect_to
        .retain(|c| !(public.contains(&c.host.as_str()) && c.port == 443));
    for h in public {
        net.resolve
            .push(format!("{h}:443:127.0.0.9").parse().unwrap());
    }
    for (name, listener) in [("egress", "egress"), ("auth-egress", "auth-egress")] {
        net.connect_to.push(
            format!("{name}.infra:3128:127.0.0.1:{}", world.port(listener))
                .parse()
                .unwrap(),
        );
    }
    net.egress_proxy = Some(String::new());
    net
}

fn cloud(name: &str, network: &str) -> String {
    connection(
        "ci",
        name,
        &format!(
            "  flavor: Cloud\n  auth: {{method: ApiToken, secretRef: {{name: {name}-cred}}}}\n{CA}\n  requirements: {{repositories: [{{name: acme/infra}}]}}\n{network}"
        ),
        &[
            ("username", "alice@example.com"),
            ("token", "cloud-api-alice-full-0001"),
        ],
    )
}

fn oauth(name: &str, network: &str) -> String {
    connection(
        "ci",
        name,
        &format!(
            "  flavor: Cloud\n  auth: {{method: OAuthClientCredentials, secretRef: {{name: {name}-cred}}}}\n{CA}\n{network}"
        ),
        &[
            ("clientId", "tfe-consumer-key"),
            ("clientSecret", "tfe-consumer-secret-0008"),
        ],
    )
}

fn dc(name: &str, network: &str) -> String {
    connection(
        "ci",
        name,
        &format!(
            "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{method: AccessToken, secretRef: {{name: {name}-cred}}}}\n{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}\n{network}"
        ),
        &[("token", "dc-alice-admin-token-0103")],
    )
}

fn via(proxy: &str) -> String {
    format!("  network: {{egressProxy: {{proxyUrl: \"{proxy}\"}}}}")
}

/// The CONNECT targets a proxy listener answered with `status`.
fn connects(world: &World, listener: &str, status: u16) -> Vec<String> {
    world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.listener == listener && r.method == "CONNECT" && r.status == status)
        .map(|r| r.path)
        .collect()
}

fn assert_ready(out: &common::Checked, name: &str) {
    let (status, reason, message) = out.condition(name, "Ready");
    assert_eq!(status, "True", "{name}: {reason} {message}\n{}", out.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_token_endpoint_and_git_go_through_the_egress_proxy() {
    let world = world().await;
    let p = via("http://egress.infra:3128");
    let m = format!(
        "{}{}{}{}",
        world.ca_configmap("ci"),
        cloud("cloud", &p),
        oauth("oauth", &p),
        dc("dc", &p)
    );
    let out = world.check_with(&m, net(&world), Output::Json).await;
    for name in ["cloud", "oauth", "dc"] {
        assert_ready(&out, name);
        let (_, _, message) = out.condition(name, "NetworkPathValid");
        assert!(message.contains("egress proxy"), "{name}: {message}");
    }
    assert_eq!(out.code, 0, "{}", out.stdout);
    let tunnels = connects(&world, "egress", 200);
    // REST (Cloud and Data Center), the token endpoint and git (Cloud clones from bitbucket.org).
    for target in [
        "api.bitbucket.org:443",
        "bitbucket.org:443",
        "bitbucket.example.com:443",
    ] {
        assert!(tunnels.iter().any(|t| t == target), "{target}: {tunnels:?}");
    }
    // git's own requests arrived at the server, so they came through a tunnel.
    let git = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/info/refs"))
        .count();
    assert!(git >= 2, "no git request reached the server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_wide_proxy_applies_unless_no_proxy_names_the_host() {
    let world = world().await;
    let m = format!(
        "{}{}{}",
        world.ca_configmap("ci"),
        cloud("cloud", ""),
        dc("dc", "")
    );
    // HTTPS_PROXY-style default, given as the flag.
    let mut n = net(&world);
    n.egress_proxy = Some("http://egress.infra:3128".into());
    let out = world.check_with(&m, n.clone(), Output::Json).await;
    assert_ready(&out, "cloud");
    assert_ready(&out, "dc");
    assert!(
        connects(&world, "egress", 200)
            .iter()
            .any(|t| t == "bitbucket.example.com:443")
    );

    // NO_PROXY: the Data Center host is reached directly (here: mapped to the server again),
    // while Cloud still goes through the proxy, which is dead now.
    let mut n = net(&world);
    n.egress_proxy = Some("dead-proxy.infra:3128".into());
    n.no_proxy = Some("localhost, .example.com".into());
    n.connect_to.push(
        format!("bitbucket.example.com:443:127.0.0.1:{}", world.port("good"))
            .parse()
            .unwrap(),
    );
    let out = world.check_with(&m, n, Output::Json).await;
    assert_ready(&out, "dc");
    let (status, reason, message) = out.condition("cloud", "NetworkPathValid");
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "EgressProxyUnreachable"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_auth_and_proxy_failures_have_their_causes() {
    let world = world().await;
    let auth = "http://auth-egress.infra:3128";
    let with_secret = |secret: &str| {
        format!(
            "  network: {{egressProxy: {{proxyUrl: \"{auth}\", secretRef: {{name: {secret}}}}}}}"
        )
    };
    let proxy_secret = |name: &str, password: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: ci}}\nstringData:\n  username: {PROXY_USER}\n  password: {password}\n"
        )
    };
    let m = format!(
        "{}{}{}{}{}{}{}{}{}",
        world.ca_configmap("ci"),
        proxy_secret("proxy-right", PROXY_PASSWORD),
        proxy_secret("proxy-wrong", "not-the-proxy-password-0902"),
        dc("no-credentials", &via(auth)),
        dc("wrong-credentials", &with_secret("proxy-wrong")),
        dc("right-credentials", &with_secret("proxy-right")),
        cloud("right-cloud", &with_secret("proxy-right")),
        dc("dead", &via("http://dead-proxy.infra:3128")),
        dc("metadata", &via("http://169.254.169.254:3128")),
    );
    let out = world.check_with(&m, net(&world), Output::Json).await;
    assert_eq!(out.code, 1);
    for (name, cause) in [
        ("no-credentials", "EgressProxyAuthRequired"),
        ("wrong-credentials", "EgressProxyAuthRequired"),
        ("dead", "EgressProxyUnreachable"),
        ("metadata", "DestinationNotAllowed"),
    ] {
        let (status, reason, message) = out.condition(name, "NetworkPathValid");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", cause),
            "{name}: {message}"
        );
    }
    assert_ready(&out, "right-credentials");
    assert_ready(&out, "right-cloud");
    assert!(
        out.misplaced_causes().is_empty(),
        "{:?}",
        out.misplaced_causes()
    );

    // The proxy saw the credentials; the output never does, in any form.
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"));
    let sent: Vec<_> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.listener == "auth-egress" && r.status == 200)
        .filter_map(|r| r.authorization)
        .collect();
    assert!(
        sent.iter().any(|a| a == &format!("Basic {basic}")),
        "{sent:?}"
    );
    assert_eq!(connects(&world, "auth-egress", 407).len(), 2);
    let table = world.check_with(&m, net(&world), Output::Table).await;
    for text in [&out.stdout, &out.stderr, &table.stdout, &table.stderr] {
        assert!(!text.contains(PROXY_PASSWORD), "the proxy password leaked");
        assert!(!text.contains(&basic), "the proxy credentials leaked");
    }
    assert!(
        table.stdout.contains("EgressProxyAuthRequired")
            && table
                .stdout
                .contains("secretRef to a Secret with keys username and password"),
        "{}",
        table.stdout
    );
    // A denied proxy address is refused before connecting: no proxy listener is there, and the
    // message names the policy.
    let (_, _, message) = out.condition("metadata", "NetworkPathValid");
    assert!(message.contains("destination policy"), "{message}");
}

/// The proxy a consumer's own Secret names: Flux's proxySecretRef Secret (address, username,
/// password) and an Argo CD repository Secret's proxy (credentials in the URL), used where
/// spec.network.egressProxy has no proxyUrl, as discovery writes it. What bbconn cannot tunnel
/// through (SOCKS5) is EgressProxyInvalid, never a path it did not check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumers_own_proxy_secret_is_used_as_the_consumer_uses_it() {
    let world = world().await;
    let from = |secret: &str, format: &str| {
        format!("  network: {{egressProxy: {{secretRef: {{name: {secret}, format: {format}}}}}}}")
    };
    let secret = |name: &str, data: &str| {
        format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: ci}}\nstringData:\n{data}"
        )
    };
    let auth = "auth-egress.infra:3128";
    let m = format!(
        "{}{}{}{}{}{}{}{}{}{}",
        world.ca_configmap("ci"),
        secret(
            "flux-proxy",
            &format!(
                "  address: http://{auth}\n  username: {PROXY_USER}\n  password: {PROXY_PASSWORD}\n"
            )
        ),
        secret(
            "flux-proxy-wrong",
            &format!(
                "  address: http://{auth}\n  username: {PROXY_USER}\n  password: not-it-0903\n"
            )
        ),
        secret("flux-socks", "  address: socks5://egress.infra:1080\n"),
        secret(
            "argocd-repo",
            &format!(
                "  url: https://bitbucket.example.com/scm/proj/app.git\n  proxy: http://{PROXY_USER}:{PROXY_PASSWORD}@{auth}\n"
            )
        ),
        dc("via-flux", &from("flux-proxy", "Flux")),
        dc("via-flux-wrong", &from("flux-proxy-wrong", "Flux")),
        dc("via-socks", &from("flux-socks", "Flux")),
        dc("via-argocd", &from("argocd-repo", "ArgoCD")),
        dc("via-nothing", &from("argocd-repo-missing", "ArgoCD")),
    );
    let out = world.check_with(&m, net(&world), Output::Json).await;
    assert_ready(&out, "via-flux");
    assert_ready(&out, "via-argocd");
    for (name, cause) in [
        ("via-flux-wrong", "EgressProxyAuthRequired"),
        ("via-socks", "EgressProxyInvalid"),
        ("via-nothing", "EgressProxyAuthRequired"),
    ] {
        let (status, reason, message) = out.condition(name, "NetworkPathValid");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", cause),
            "{name}: {message}"
        );
    }
    let (_, _, message) = out.condition("via-flux", "NetworkPathValid");
    assert!(
        message.contains("http://auth-egress.infra:3128"),
        "{message}"
    );
    // Both went through the proxy that wants credentials, and sent them.
    assert!(connects(&world, "auth-egress", 200).len() >= 2);
    use base64::Engine as _;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{PROXY_USER}:{PROXY_PASSWORD}"));
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(PROXY_PASSWORD), "the proxy password leaked");
        assert!(!text.contains(&basic), "the proxy credentials leaked");
    }
}
