//! Every cause of the catalogue, provoked against the simulator through `bbconn check`, and then
//! every output of those runs searched for the secret values they used.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::catalogue::CAUSES;
use common::{World, connection};
use std::collections::BTreeSet;

const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
const NS: &str = "causes";

struct Case {
    name: &'static str,
    spec: String,
    secret: Vec<(&'static str, &'static str)>,
    /// The condition that shows it, and its status.
    check: &'static str,
    status: &'static str,
    cause: &'static str,
}

fn spec(flavor: &str, url: &str, method: &str, name: &str, extra: &str) -> String {
    format!(
        "  flavor: {flavor}\n  url: {url}\n  auth: {{method: {method}, secretRef: {{name: {name}-cred}}}}\n{extra}"
    )
}

fn dc(name: &str, extra: &str) -> String {
    spec(
        "DataCenter",
        "https://bitbucket.example.com",
        "AccessToken",
        name,
        extra,
    )
}

fn at(host: &str, name: &str, extra: &str) -> String {
    spec(
        "DataCenter",
        &format!("https://{host}"),
        "AccessToken",
        name,
        extra,
    )
}

const ADMIN_TOKEN: &[(&str, &str)] = &[("token", "dc-alice-admin-token-0103")];

fn case(
    name: &'static str,
    spec: String,
    secret: &[(&'static str, &'static str)],
    check: &'static str,
    status: &'static str,
    cause: &'static str,
) -> Case {
    Case {
        name,
        spec,
        secret: secret.to_vec(),
        check,
        status,
        cause,
    }
}

fn cases() -> Vec<Case> {
    let repo_admin =
        format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/app, access: Admin}}]}}");
    vec![
        // CredentialsResolved
        case(
            "key-missing",
            dc("key-missing", CA),
            &[("tokn", "dc-alice-admin-token-0103")],
            "CredentialsResolved",
            "False",
            "SecretKeyMissing",
        ),
        case(
            "malformed",
            dc("malformed", CA),
            &[("token", "dc-alice-admin-token-0103\n")],
            "CredentialsResolved",
            "False",
            "CredentialMalformed",
        ),
        // NetworkPathValid
        case(
            "public-private",
            at("private.bitbucket.test", "public-private", CA),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "PublicServerPrivateAddress",
        ),
        case(
            "endpoint-required",
            at(
                "private.bitbucket.test",
                "endpoint-required",
                &format!("{CA}\n  network: {{exposure: Private}}"),
            ),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "PrivateEndpointRequired",
        ),
        case(
            "private-public",
            dc(
                "private-public",
                &format!("{CA}\n  network: {{exposure: Private}}"),
            ),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "PrivateServerPublicAddress",
        ),
        case(
            "proxy-refuses",
            at(
                "bitbucket.internal",
                "proxy-refuses",
                &format!(
                    "{CA}\n  network: {{exposure: Private, privateEndpoint: {{proxyUrl: 'http://refusing-proxy.infra:3128'}}}}"
                ),
            ),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "PrivateEndpointUnreachable",
        ),
        case(
            "egress-down",
            at(
                "bitbucket.example.com",
                "egress-down",
                &format!(
                    "{CA}\n  network: {{egressProxy: {{proxyUrl: 'http://dead-proxy.infra:3128'}}}}"
                ),
            ),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "EgressProxyUnreachable",
        ),
        case(
            "egress-auth",
            at(
                "bitbucket.example.com",
                "egress-auth",
                &format!(
                    "{CA}\n  network: {{egressProxy: {{proxyUrl: 'http://auth-proxy.infra:3128'}}}}"
                ),
            ),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "EgressProxyAuthRequired",
        ),
        case(
            "proxy-down",
            at(
                "bitbucket.internal",
                "proxy-down",
                &format!(
                    "{CA}\n  network: {{exposure: Private, privateEndpoint: {{proxyUrl: 'http://dead-proxy.infra:3128'}}}}"
                ),
            ),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "PrivateEndpointUnreachable",
        ),
        case(
            "metadata",
            at("metadata.bitbucket.test", "metadata", CA),
            ADMIN_TOKEN,
            "NetworkPathValid",
            "False",
            "DestinationNotAllowed",
        ),
        case(
            "via-proxy",
            at(
                "bitbucket.internal",
                "via-proxy",
                &format!(
                    "{CA}\n  network: {{exposure: Private, privateEndpoint: {{proxyUrl: 'http://proxy.infra:3128'}}}}"
                ),
            ),
            ADMIN_TOKEN,
            "Ready",
            "True",
            "AllChecksPassed",
        ),
        // Reachable
        case(
            "port-8443",
            at("bitbucket.example.com:8443", "port-8443", CA),
            ADMIN_TOKEN,
            "Reachable",
            "False",
            "PortNotAllowed",
        ),
        case(
            "plain-7990",
            spec(
                "DataCenter",
                "http://bitbucket.example.com:7990",
                "AccessToken",
                "plain-7990",
                &format!("{CA}\n  network: {{allowedPorts: [7990]}}"),
            ),
            ADMIN_TOKEN,
            "Reachable",
            "False",
            "PlainHttpNotAllowed",
        ),
        case(
            "no-dns",
            at("nowhere.invalid", "no-dns", CA),
            ADMIN_TOKEN,
            "Reachable",
            "False",
            "DnsResolutionFailed",
        ),
        case(
            "refused",
            at("closed.bitbucket.test", "refused", CA),
            ADMIN_TOKEN,
            "Reachable",
            "False",
            "ConnectionRefused",
        ),
        case(
            "silent",
            at("silent.bitbucket.test", "silent", CA),
            ADMIN_TOKEN,
            "TLSVerified",
            "Unknown",
            "ConnectionTimedOut",
        ),
        case(
            "slow",
            dc("slow", CA),
            &[("token", "dc-fault-slow-token-0112")],
            "Authenticated",
            "Unknown",
            "ConnectionTimedOut",
        ),
        case(
            "redirect",
            dc("redirect", CA),
            &[("token", "dc-fault-redirect-token-0114")],
            "Authenticated",
            "False",
            "UnexpectedRedirect",
        ),
        // TLSVerified
        case(
            "ca-missing-key",
            dc(
                "ca-missing-key",
                "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca, key: nope.crt}}",
            ),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CaBundleNotFound",
        ),
        case(
            "no-ca",
            dc("no-ca", ""),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CertificateUntrusted",
        ),
        // A consumer's proxy that bbconn cannot tunnel through (Flux allows SOCKS5).
        case(
            "socks-proxy",
            dc(
                "socks-proxy",
                &format!(
                    "{CA}\n  network: {{egressProxy: {{secretRef: {{name: socks-proxy-cred, format: Flux}}}}}}"
                ),
            ),
            &[
                ("token", "dc-alice-admin-token-0103"),
                ("address", "socks5://proxy.infra:1080"),
            ],
            "NetworkPathValid",
            "False",
            "EgressProxyInvalid",
        ),
        // A consumer that does not verify (Argo CD's insecure: "true") works with a certificate
        // bbconn cannot verify: Ready, with a Warning.
        case(
            "insecure-no-ca",
            dc("insecure-no-ca", "  tls: {insecureSkipVerify: true}"),
            ADMIN_TOKEN,
            "TLSVerified",
            "True",
            "TlsVerificationSkipped",
        ),
        case(
            "unknown-ca",
            at("unknownca.bitbucket.test", "unknown-ca", CA),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CertificateUntrusted",
        ),
        case(
            "wrong-host",
            at("wronghost.bitbucket.test", "wrong-host", CA),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CertificateHostnameMismatch",
        ),
        case(
            "expired-cert",
            at("expired.bitbucket.test", "expired-cert", CA),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CertificateExpired",
        ),
        case(
            "future-cert",
            at("notyetvalid.bitbucket.test", "future-cert", CA),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CertificateNotYetValid",
        ),
        case(
            "pin",
            dc(
                "pin",
                "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}, pinnedSha256: 'AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99'}",
            ),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CertificatePinMismatch",
        ),
        case(
            "cert-soon",
            at("expiringsoon.bitbucket.test", "cert-soon", CA),
            ADMIN_TOKEN,
            "TLSVerified",
            "True",
            "CertificateExpiringSoon",
        ),
        // Authenticated
        case(
            "revoked",
            dc("revoked", CA),
            &[("token", "dc-alice-revoked-token-0105")],
            "Authenticated",
            "False",
            "TokenRevoked",
        ),
        case(
            "expired-token",
            dc("expired-token", CA),
            &[("token", "dc-alice-expired-token-0106")],
            "Authenticated",
            "False",
            "TokenExpired",
        ),
        case(
            "token-soon",
            dc("token-soon", CA),
            &[
                ("token", "dc-alice-soon-token-0108"),
                ("tokenId", "100000000006"),
            ],
            "Authenticated",
            "True",
            "TokenExpiringSoon",
        ),
        case(
            "bad-password",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "Basic",
                "bad-password",
                CA,
            ),
            &[("username", "alice"), ("password", "not-the-password-0199")],
            "Authenticated",
            "False",
            "CredentialsRejected",
        ),
        case(
            "basic",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "Basic",
                "basic",
                CA,
            ),
            &[
                ("username", "alice"),
                ("password", "dc-alice-password-0101"),
            ],
            "Authenticated",
            "True",
            "BasicAuthDiscouraged",
        ),
        case(
            "app-password",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "AppPassword",
                "app-password",
                CA,
            ),
            &[
                ("username", "alice"),
                ("password", "cloud-app-password-0198"),
            ],
            "Authenticated",
            "False",
            "AppPasswordRetired",
        ),
        case(
            "cloud-revoked",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "AccessToken",
                "cloud-revoked",
                CA,
            ),
            &[("token", "cloud-repo-token-revoked-0006")],
            "Authenticated",
            "False",
            "TokenRevoked",
        ),
        case(
            "oauth-bad-secret",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "OAuthClientCredentials",
                "oauth-bad-secret",
                CA,
            ),
            &[
                ("clientId", "tfe-consumer-key"),
                ("clientSecret", "wrong-secret-0197"),
            ],
            "Authenticated",
            "False",
            "OAuthClientRejected",
        ),
        case(
            "applink-bad-secret",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "OAuthApplicationLink",
                "applink-bad-secret",
                CA,
            ),
            &[
                ("clientId", "codescan-client"),
                ("clientSecret", "wrong-secret-0196"),
                (
                    "redirectUrl",
                    "https://codescan.example.com/_codescan/oauth2/authorize",
                ),
            ],
            "Authenticated",
            "False",
            "OAuthClientRejected",
        ),
        case(
            "applink-redirect",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "OAuthApplicationLink",
                "applink-redirect",
                CA,
            ),
            &[
                ("clientId", "codescan-client"),
                ("clientSecret", "codescan-secret-0115"),
                ("redirectUrl", "https://codescan.example.com/elsewhere"),
            ],
            "Authenticated",
            "False",
            "OAuthRedirectMismatch",
        ),
        // ScopesSufficient
        case(
            "dc-missing-perm",
            dc(
                "dc-missing-perm",
                &format!("{CA}\n  requirements: {{permissions: [REPO_ADMIN]}}"),
            ),
            &[("token", "dc-alice-read-token-0104")],
            "ScopesSufficient",
            "False",
            "InsufficientScopes",
        ),
        case(
            "dc-probed-perm",
            dc(
                "dc-probed-perm",
                &format!("{CA}\n  requirements: {{permissions: [PROJECT_ADMIN]}}"),
            ),
            &[("token", "dc-project-token-0109")],
            "ScopesSufficient",
            "False",
            "InsufficientScopes",
        ),
        case(
            "cloud-missing-scope",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "cloud-missing-scope",
                &format!(
                    "{CA}\n  requirements: {{scopes: [read:repository:bitbucket, read:pullrequest:bitbucket]}}"
                ),
            ),
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-read-0002"),
            ],
            "ScopesSufficient",
            "False",
            "InsufficientScopes",
        ),
        case(
            "excess",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "excess",
                &format!("{CA}\n  requirements: {{scopes: [read:repository:bitbucket]}}"),
            ),
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-full-0001"),
            ],
            "ScopesSufficient",
            "True",
            "ExcessScopes",
        ),
        case(
            "applink-unverifiable",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "OAuthApplicationLink",
                "applink-unverifiable",
                &format!("{CA}\n  requirements: {{permissions: [REPO_ADMIN]}}"),
            ),
            &[
                ("clientId", "codescan-client"),
                ("clientSecret", "codescan-secret-0115"),
                (
                    "redirectUrl",
                    "https://codescan.example.com/_codescan/oauth2/authorize",
                ),
            ],
            "ScopesSufficient",
            "Unknown",
            "ScopesUnverifiable",
        ),
        // RepositoryAccess
        case(
            "applink-repos",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "OAuthApplicationLink",
                "applink-repos",
                &format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}"),
            ),
            &[
                ("clientId", "codescan-client"),
                ("clientSecret", "codescan-secret-0115"),
                (
                    "redirectUrl",
                    "https://codescan.example.com/_codescan/oauth2/authorize",
                ),
            ],
            "RepositoryAccess",
            "Unknown",
            "RepositoriesUnverifiable",
        ),
        case(
            "dc-no-repo",
            dc(
                "dc-no-repo",
                &format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/nope}}]}}"),
            ),
            ADMIN_TOKEN,
            "RepositoryAccess",
            "False",
            "RepositoryNotFound",
        ),
        case(
            "dc-repo-write-only",
            dc("dc-repo-write-only", &repo_admin),
            &[("token", "dc-bob-write-token-0107")],
            "RepositoryAccess",
            "False",
            "InsufficientRepositoryPermission",
        ),
        case(
            "cloud-no-repo",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "cloud-no-repo",
                &format!("{CA}\n  requirements: {{repositories: [{{name: acme/nope}}]}}"),
            ),
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-read-0002"),
            ],
            "RepositoryAccess",
            "False",
            "RepositoryNotFound",
        ),
        case(
            "cloud-repo-write",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "cloud-repo-write",
                &format!(
                    "{CA}\n  requirements: {{repositories: [{{name: acme/infra, access: Admin}}]}}"
                ),
            ),
            &[
                ("username", "bob@example.com"),
                ("token", "cloud-api-bob-read-0003"),
            ],
            "RepositoryAccess",
            "False",
            "InsufficientRepositoryPermission",
        ),
        // Causes real Data Center and Cloud servers show (tests/real-answers)
        case(
            "basic-disabled",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "Basic",
                "basic-disabled",
                CA,
            ),
            &[
                ("username", "carol"),
                ("password", "dc-basic-disabled-password-0120"),
            ],
            "Authenticated",
            "False",
            "BasicAuthDisabled",
        ),
        case(
            "captcha",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "Basic",
                "captcha",
                CA,
            ),
            &[
                ("username", "dave"),
                ("password", "dc-captcha-password-0121"),
            ],
            "Authenticated",
            "False",
            "CaptchaRequired",
        ),
        case(
            "anonymous-token",
            dc("anonymous-token", CA),
            &[("token", "dc-anonymous-token-0122")],
            "Authenticated",
            "False",
            "TokenRevoked",
        ),
        case(
            "cloud-wrong-path",
            spec(
                "Cloud",
                "https://api.bitbucket.org",
                "AccessToken",
                "cloud-wrong-path",
                CA,
            ),
            &[("token", "cloud-wrong-path-token-0123")],
            "Ready",
            "False",
            "NotBitbucketApi",
        ),
        // Any check
        case(
            "server-error",
            dc("server-error", CA),
            &[("token", "dc-fault-503-token-0111")],
            "Authenticated",
            "Unknown",
            "ServerError",
        ),
        case(
            "rate-limited",
            dc("rate-limited", CA),
            &[("token", "dc-fault-429-token-0110")],
            "Authenticated",
            "Unknown",
            "RateLimited",
        ),
        case(
            "oversized",
            dc("oversized", CA),
            &[("token", "dc-fault-huge-token-0113")],
            "Authenticated",
            "Unknown",
            "UnexpectedResponse",
        ),
        case(
            "bad-ca",
            dc(
                "bad-ca",
                "  tls: {caBundleRef: {kind: ConfigMap, name: garbage-ca}}",
            ),
            ADMIN_TOKEN,
            "TLSVerified",
            "False",
            "CaBundleInvalid",
        ),
        case(
            "wrong-flavor-profile",
            dc(
                "wrong-flavor-profile",
                &format!("{CA}\n  profiles: [ox-security]"),
            ),
            ADMIN_TOKEN,
            "Ready",
            "False",
            "InvalidSpec",
        ),
        // Healthy references
        case(
            "dc-healthy",
            dc("dc-healthy", &repo_admin),
            ADMIN_TOKEN,
            "Ready",
            "True",
            "AllChecksPassed",
        ),
        // GitAccess (tests/git_oracle.rs checks these verdicts against the real git client)
        case(
            "git-auth-rejected",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "git-auth-rejected",
                &format!(
                    "{CA}\n  requirements: {{repositories: [{{name: acme/infra}}]}}\n  git: {{username: alice@example.com}}"
                ),
            ),
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-full-0001"),
            ],
            "GitAccess",
            "False",
            "GitAuthRejected",
        ),
        case(
            "git-ip-allowlist",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "git-ip-allowlist",
                &format!("{CA}\n  requirements: {{repositories: [{{name: locked/vault}}]}}"),
            ),
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-full-0001"),
            ],
            "GitAccess",
            "False",
            "GitIpNotAllowlisted",
        ),
        case(
            "git-two-step",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "ApiToken",
                "git-two-step",
                &format!("{CA}\n  requirements: {{repositories: [{{name: secure/payments}}]}}"),
            ),
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-full-0001"),
            ],
            "GitAccess",
            "False",
            "GitTwoStepRequired",
        ),
        case(
            "git-push-denied",
            dc(
                "git-push-denied",
                &format!(
                    "{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}\n  git: {{access: Write}}"
                ),
            ),
            &[
                ("token", "dc-alice-read-token-0104"),
                ("tokenId", "100000000002"),
            ],
            "GitAccess",
            "False",
            "GitPushDenied",
        ),
        case(
            "git-unverifiable",
            spec(
                "DataCenter",
                "https://bitbucket.example.com",
                "OAuthApplicationLink",
                "git-unverifiable",
                &format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}"),
            ),
            &[
                ("clientId", "codescan-client"),
                ("clientSecret", "codescan-secret-0115"),
                (
                    "redirectUrl",
                    "https://codescan.example.com/_codescan/oauth2/authorize",
                ),
            ],
            "GitAccess",
            "Unknown",
            "GitUnverifiable",
        ),
        case(
            "clone-url-mismatch",
            at(
                "proxied.bitbucket.test",
                "clone-url-mismatch",
                &format!("{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}"),
            ),
            ADMIN_TOKEN,
            "GitAccess",
            "True",
            "CloneUrlMismatch",
        ),
        case(
            "cloud-repo-token",
            spec(
                "Cloud",
                "https://api.bitbucket.org/2.0",
                "AccessToken",
                "cloud-repo-token",
                &format!(
                    "{CA}\n  requirements: {{scopes: [repository], repositories: [{{name: acme/infra, access: Write}}]}}"
                ),
            ),
            &[("token", "cloud-repo-token-infra-0005")],
            "RepositoryAccess",
            "True",
            "Passed",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cause_is_provoked_and_no_secret_leaks() {
    let world = World::start().await;
    let cases = cases();
    let mut manifest = world.ca_configmap(NS);
    manifest.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: garbage-ca, namespace: causes}\ndata: {ca.crt: not a certificate}\n");
    for c in &cases {
        manifest.push_str(&connection(NS, c.name, &c.spec, &c.secret));
    }
    let json = world.check(&manifest).await;
    assert_eq!(
        json.code, 1,
        "some connections are broken: exit 1\n{}",
        json.stderr
    );
    let mut failures = Vec::new();
    let mut provoked = BTreeSet::new();
    for c in &cases {
        let (status, reason, message) = json.condition(c.name, c.check);
        if status != c.status || reason != c.cause {
            failures.push(format!(
                "{}: expected {} {}={}, got {status} {reason}: {message}",
                c.name, c.check, c.status, c.cause
            ));
        }
        for (_, cause, _) in json.problems(c.name) {
            provoked.insert(cause);
        }
        provoked.insert(reason);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let misplaced = json.misplaced_causes();
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n"));

    // Transient causes leave Ready Unknown and Stalled absent; a revoked token stalls.
    assert_eq!(json.condition("rate-limited", "Ready").0, "Unknown");
    assert!(
        json.status("rate-limited")["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "Stalled")
    );
    assert_eq!(json.condition("revoked", "Stalled").0, "True");
    assert_eq!(json.condition("revoked", "Ready").1, "TokenRevoked");
    // A check after the failing one is Unknown and says why.
    let (s, r, m) = json.condition("revoked", "RepositoryAccess");
    assert_eq!((s.as_str(), r.as_str()), ("Unknown", "NotChecked"), "{m}");
    // The certificate is reported even when rejected.
    assert!(
        json.status("expired-cert")["certificate"]["sha256"]
            .as_str()
            .is_some_and(|s| s.len() == 95)
    );
    // The consumer that does not verify is Ready, and told what verification would say.
    assert_eq!(json.condition("insecure-no-ca", "Ready").0, "True");
    let (_, _, m) = json.condition("insecure-no-ca", "TLSVerified");
    assert!(m.contains("unverified"), "{m}");
    let problems = json.status("insecure-no-ca")["problems"].to_string();
    assert!(
        problems.contains("this one would fail")
            && problems.contains("does not chain to a trusted root"),
        "{problems}"
    );
    // The application link is Ready, with its permissions reported as unverifiable.
    assert_eq!(json.condition("applink-unverifiable", "Ready").0, "True");

    // Every catalogue cause but the Secret lookups, which only the operator can meet (bbconn check
    // refuses a manifest set with a missing Secret: tests/lookups.rs), was provoked here.
    let operator_only = ["SecretNotFound", "SecretForbidden"];
    // The SSH causes meet the simulator's SSH server, and git as the oracle, in tests/ssh.rs.
    let over_ssh = [
        "HostKeyUnknown",
        "HostKeyMismatch",
        "SshKeyRejected",
        "HostKeyTypesIncomplete",
        "SshHostMoved",
        "HostKeyCheckSkipped",
    ];
    let missing: Vec<&str> = CAUSES
        .iter()
        .map(|e| e.cause.as_str())
        .filter(|c| !provoked.contains(*c) && !operator_only.contains(c) && !over_ssh.contains(c))
        .collect();
    assert!(missing.is_empty(), "causes no test provoked: {missing:?}");

    // The same run as a table, for a person.
    let table = world
        .check_with(&manifest, world.net(), bbconn::cli::Output::Table)
        .await;
    assert_eq!(table.code, 1);
    assert!(table.stdout.contains("causes/revoked"));
    assert!(
        table.stdout.contains("remedy: Re-create the access token"),
        "{}",
        table.stdout
    );

    // No secret value in any output, nor in anything the simulator was sent in the clear.
    let outputs = format!(
        "{}{}{}{}",
        json.stdout, json.stderr, table.stdout, table.stderr
    );
    for c in &cases {
        for (key, value) in &c.secret {
            if matches!(*key, "token" | "password" | "clientSecret") {
                let v = value.trim();
                assert!(
                    !outputs.contains(v),
                    "{}: the {key} value appears in bbconn's output",
                    c.name
                );
            }
        }
    }
    // The app password was never sent anywhere.
    assert!(world.sim.requests().iter().all(|r| {
        r.authorization
            .as_deref()
            .is_none_or(|a| !a.contains(&b64("alice:cloud-app-password-0198")))
    }));
    // The redirect to another host was not followed: in each of the two runs above (-o json,
    // -o table) the token was sent once, to the server it was meant for, which answered 302 to
    // https://elsewhere.example.net/...; bbconn sent nothing after it. (Only that connection
    // carries the token; a followed redirect would send it again on the same path.)
    let redirected: Vec<(String, u16)> = world
        .sim
        .requests()
        .iter()
        .filter(|r| {
            r.authorization
                .as_deref()
                .is_some_and(|a| a.contains("dc-fault-redirect-token-0114"))
        })
        .map(|r| (r.path.clone(), r.status))
        .collect();
    let once = ("/rest/api/latest/application-properties".to_string(), 302);
    assert_eq!(
        redirected,
        vec![once.clone(), once],
        "the redirected token's requests"
    );
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
