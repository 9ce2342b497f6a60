//! Each profile from the seed pages: a connection that meets it, and one that fails each of its
//! requirements, all checked in one `bbconn check` run against the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::profiles::{PROFILES, def};
use common::{World, connection};

const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
const NS: &str = "profiles";

struct Case {
    name: String,
    spec: String,
    secret: Vec<(&'static str, String)>,
    check: &'static str,
    cause: &'static str,
}

fn case(
    name: impl Into<String>,
    spec: String,
    secret: &[(&'static str, &str)],
    check: &'static str,
    cause: &'static str,
) -> Case {
    Case {
        name: name.into(),
        spec,
        secret: secret.iter().map(|(k, v)| (*k, v.to_string())).collect(),
        check,
        cause,
    }
}

fn spec(profile: &str, flavor: &str, url: &str, method: &str, name: &str, extra: &str) -> String {
    format!(
        "  flavor: {flavor}\n  url: {url}\n  profiles: [{profile}]\n  auth: {{method: {method}, secretRef: {{name: {name}-cred}}}}\n{extra}"
    )
}

fn oci(name: &str, url: &str, extra: &str) -> String {
    spec(
        "oci-resource-manager",
        "DataCenter",
        url,
        "AccessToken",
        name,
        extra,
    )
}

fn cases(world: &World) -> Vec<Case> {
    let _ = world;
    let mut v = Vec::new();
    // oci-resource-manager (seed 000): token permissions, repository admin, HTTPS on 443 only,
    // a public address, or a private endpoint and the server's CA.
    let admin_repo = format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}");
    let good = "https://bitbucket.example.com";
    let tok = |t: &'static str| vec![("token", t)];
    v.push(case(
        "oci-ok",
        oci("oci-ok", good, &admin_repo),
        &tok("dc-alice-admin-token-0103"),
        "Ready",
        "AllChecksPassed",
    ));
    v.push(case(
        "oci-revoked",
        oci("oci-revoked", good, &admin_repo),
        &tok("dc-alice-revoked-token-0105"),
        "Authenticated",
        "TokenRevoked",
    ));
    v.push(case(
        "oci-scopes",
        oci("oci-scopes", good, &admin_repo),
        &tok("dc-alice-read-token-0104"),
        "ScopesSufficient",
        "InsufficientScopes",
    ));
    v.push(case(
        "oci-repo-perm",
        oci("oci-repo-perm", good, &admin_repo),
        &[
            ("token", "dc-bob-admin-token-0116"),
            ("tokenId", "100000000013"),
        ],
        "RepositoryAccess",
        "InsufficientRepositoryPermission",
    ));
    v.push(case(
        "oci-port",
        oci(
            "oci-port",
            "https://bitbucket.example.com:8443",
            &format!("{admin_repo}\n  network: {{allowedPorts: [443, 8443]}}"),
        ),
        &tok("dc-alice-admin-token-0103"),
        "Reachable",
        "PortNotAllowed",
    ));
    v.push(case(
        "oci-public-ip",
        oci(
            "oci-public-ip",
            "https://private.bitbucket.test",
            &admin_repo,
        ),
        &tok("dc-alice-admin-token-0103"),
        "NetworkPathValid",
        "PublicServerPrivateAddress",
    ));
    v.push(case(
        "oci-private-endpoint",
        oci(
            "oci-private-endpoint",
            "https://private.bitbucket.test",
            &format!("{admin_repo}\n  network: {{exposure: Private}}"),
        ),
        &tok("dc-alice-admin-token-0103"),
        "NetworkPathValid",
        "PrivateEndpointRequired",
    ));
    v.push(case(
        "oci-certificate",
        oci("oci-certificate", good, ""),
        &tok("dc-alice-admin-token-0103"),
        "TLSVerified",
        "CertificateUntrusted",
    ));
    v.push(case(
        "oci-private-ok",
        oci("oci-private-ok", "https://bitbucket.internal", &format!("{admin_repo}\n  network: {{exposure: Private, privateEndpoint: {{proxyUrl: 'http://proxy.infra:3128'}}}}")),
        &tok("dc-alice-admin-token-0103"),
        "Ready",
        "AllChecksPassed",
    ));
    v.push(case(
        "oci-secret-key",
        oci("oci-secret-key", good, &admin_repo),
        &[("access-token", "dc-alice-admin-token-0103")],
        "CredentialsResolved",
        "SecretKeyMissing",
    ));

    // ox-security (seed 001): an API token (email + token) with the 17 scopes.
    let ox = |name: &str| {
        spec(
            "ox-security",
            "Cloud",
            "https://api.bitbucket.org/2.0",
            "ApiToken",
            name,
            &format!("{CA}\n  requirements: {{repositories: [{{name: acme/infra}}]}}"),
        )
    };
    v.push(case(
        "ox-ok",
        ox("ox-ok"),
        &[
            ("username", "alice@example.com"),
            ("token", "cloud-api-alice-full-0001"),
        ],
        "Ready",
        "AllChecksPassed",
    ));
    v.push(case(
        "ox-scopes",
        ox("ox-scopes"),
        &[
            ("username", "alice@example.com"),
            ("token", "cloud-api-alice-read-0002"),
        ],
        "ScopesSufficient",
        "InsufficientScopes",
    ));
    v.push(case(
        "ox-username",
        ox("ox-username"),
        &[
            ("username", "alice"),
            ("token", "cloud-api-alice-full-0001"),
        ],
        "CredentialsResolved",
        "CredentialMalformed",
    ));
    v.push(case(
        "ox-revoked",
        ox("ox-revoked"),
        &[
            ("username", "alice@example.com"),
            ("token", "cloud-api-alice-revoked-0004"),
        ],
        "Authenticated",
        "TokenRevoked",
    ));

    // terraform-enterprise (seed 002): a private OAuth consumer with account:write,
    // repository:admin, pullrequest:write and webhook; admin on the team's repositories.
    let tfe = |name: &str| {
        spec(
            "terraform-enterprise",
            "Cloud",
            "https://api.bitbucket.org/2.0",
            "OAuthClientCredentials",
            name,
            &format!("{CA}\n  requirements: {{repositories: [{{name: acme/infra}}]}}"),
        )
    };
    v.push(case(
        "tfe-ok",
        tfe("tfe-ok"),
        &[
            ("clientId", "tfe-consumer-key"),
            ("clientSecret", "tfe-consumer-secret-0008"),
        ],
        "Ready",
        "AllChecksPassed",
    ));
    v.push(case(
        "tfe-not-private",
        tfe("tfe-not-private"),
        &[
            ("clientId", "tfe-public-key"),
            ("clientSecret", "tfe-public-secret-0009"),
        ],
        "Authenticated",
        "OAuthClientRejected",
    ));
    v.push(case(
        "tfe-secret",
        tfe("tfe-secret"),
        &[
            ("clientId", "tfe-consumer-key"),
            ("clientSecret", "not-the-secret-0299"),
        ],
        "Authenticated",
        "OAuthClientRejected",
    ));
    v.push(case(
        "tfe-webhook",
        tfe("tfe-webhook"),
        &[
            ("clientId", "tfe-narrow-key"),
            ("clientSecret", "tfe-narrow-secret-0010"),
        ],
        "ScopesSufficient",
        "InsufficientScopes",
    ));
    v.push(case(
        "tfe-admin",
        tfe("tfe-admin"),
        &[
            ("clientId", "tfe-bob-key"),
            ("clientSecret", "tfe-bob-secret-0011"),
        ],
        "RepositoryAccess",
        "InsufficientRepositoryPermission",
    ));

    // codescan (seed 003): an incoming application link, Repositories - Admin.
    let cs = |name: &str| {
        spec(
            "codescan",
            "DataCenter",
            good,
            "OAuthApplicationLink",
            name,
            CA,
        )
    };
    let link = |secret: &'static str, redirect: &'static str| {
        vec![
            ("clientId", "codescan-client"),
            ("clientSecret", secret),
            ("redirectUrl", redirect),
        ]
    };
    let redirect = "https://codescan.example.com/_codescan/oauth2/authorize";
    v.push(case(
        "codescan-ok",
        cs("codescan-ok"),
        &link("codescan-secret-0115", redirect),
        "Ready",
        "AllChecksPassed",
    ));
    v.push(case(
        "codescan-secret",
        cs("codescan-secret"),
        &link("mismatched-0298", redirect),
        "Authenticated",
        "OAuthClientRejected",
    ));
    v.push(case(
        "codescan-redirect",
        cs("codescan-redirect"),
        &link("codescan-secret-0115", "https://codescan.example.com/other"),
        "Authenticated",
        "OAuthRedirectMismatch",
    ));
    v.push(case(
        "codescan-id",
        cs("codescan-id"),
        &[
            ("clientId", "codescan-client"),
            ("clientSecret", "codescan-secret-0115"),
        ],
        "CredentialsResolved",
        "SecretKeyMissing",
    ));

    // hackolade (seed 004): a personal token with at least repository write, not expired.
    let hk = |name: &str, method: &str| {
        spec(
            "hackolade",
            "DataCenter",
            good,
            method,
            name,
            &format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/models}}]}}"),
        )
    };
    v.push(case(
        "hackolade-ok",
        hk("hackolade-ok", "AccessToken"),
        &[
            ("token", "dc-alice-soon-token-0108"),
            ("tokenId", "100000000006"),
        ],
        "Ready",
        "AllChecksPassed",
    ));
    v.push(case(
        "hackolade-expired",
        hk("hackolade-expired", "AccessToken"),
        &tok("dc-alice-expired-token-0106"),
        "Authenticated",
        "TokenExpired",
    ));
    v.push(case(
        "hackolade-write",
        hk("hackolade-write", "AccessToken"),
        &tok("dc-alice-read-token-0104"),
        "ScopesSufficient",
        "InsufficientScopes",
    ));
    v.push(case(
        "hackolade-repo",
        hk("hackolade-repo", "Basic"),
        &[("username", "bob"), ("password", "dc-bob-password-0102")],
        "RepositoryAccess",
        "InsufficientRepositoryPermission",
    ));
    v.push(case(
        "hackolade-basic",
        hk("hackolade-basic", "Basic"),
        &[
            ("username", "alice"),
            ("password", "dc-alice-password-0101"),
        ],
        "Authenticated",
        "BasicAuthDiscouraged",
    ));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_passes_and_fails_per_requirement() {
    let world = World::start().await;
    let cases = cases(&world);
    let ox_scopes = def(bbconn::api::Profile::OxSecurity).scopes;
    assert_eq!(ox_scopes.len(), 17);
    let mut manifest = world.ca_configmap(NS);
    for c in &cases {
        let secret: Vec<(&str, &str)> = c.secret.iter().map(|(k, v)| (*k, v.as_str())).collect();
        manifest.push_str(&connection(NS, &c.name, &c.spec, &secret));
    }
    let out = world.check(&manifest).await;
    let mut failures = Vec::new();
    for c in &cases {
        let (status, reason, message) = out.condition(&c.name, c.check);
        let ok_status = match c.cause {
            "AllChecksPassed" | "BasicAuthDiscouraged" => "True",
            _ => "False",
        };
        if reason != c.cause || status != ok_status {
            failures.push(format!(
                "{}: expected {} {}, got {status} {reason}: {message}",
                c.name, c.check, c.cause
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The OX failure names each missing scope.
    let (_, _, message) = out.condition("ox-scopes", "ScopesSufficient");
    let granted = ["read:repository:bitbucket", "read:user:bitbucket"];
    for s in ox_scopes.iter().filter(|s| !granted.contains(s)) {
        assert!(message.contains(s), "{s} not named in: {message}");
    }
    // The codescan link is Ready, and its unverifiable permission is a warning, never assumed.
    assert_eq!(
        out.condition("codescan-ok", "ScopesSufficient").0,
        "Unknown"
    );
    // hackolade's token expires within the warning window: Ready, with the warning.
    assert!(
        out.problems("hackolade-ok")
            .iter()
            .any(|(_, c, s)| c == "TokenExpiringSoon" && s == "Warning")
    );
    // Every seed's consumer clones; Hackolade also pushes: GitAccess proves what each needs.
    for (name, what) in [
        ("oci-ok", "git can clone "),
        ("ox-ok", "git can clone "),
        ("tfe-ok", "git can clone "),
        ("hackolade-ok", "git can clone and push "),
    ] {
        let (status, _, message) = out.condition(name, "GitAccess");
        assert!(
            status == "True" && message.starts_with(what),
            "{name}: {status} {message}"
        );
    }
    // Every profile appears above.
    for p in PROFILES {
        assert!(
            manifest.contains(&format!("profiles: [{}]", p.name)),
            "{} untested",
            p.name
        );
    }
}
