//! What is generated and checked in must equal what the code generates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn assert_same(path: &str, generated: &str, regenerate: &str) {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let on_disk = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{path} is out of date with the code; regenerate it with `{regenerate}`"
    );
}

#[test]
fn crd_in_crds_dir_matches_the_types() {
    let yaml = bbconn::crd_yaml().unwrap();
    assert_same(
        "crds/bbconn.dev_bitbucketconnections.yaml",
        &yaml,
        "cargo run -- crd > crds/bbconn.dev_bitbucketconnections.yaml",
    );
}

#[test]
fn deploy_holds_the_same_crd() {
    let yaml = bbconn::crd_yaml().unwrap();
    assert_same(
        "deploy/00-crd.yaml",
        &yaml,
        "cp crds/bbconn.dev_bitbucketconnections.yaml deploy/00-crd.yaml",
    );
}

#[test]
fn cause_reference_matches_the_catalogue() {
    assert_same(
        "docs/causes.md",
        &bbconn::catalogue::reference_markdown(),
        "cargo run -- causes > docs/causes.md",
    );
}

#[test]
fn every_contract_cause_is_in_the_catalogue() {
    // The names users' alerts and pipelines depend on (docs/design/contract.md).
    for name in [
        "SecretNotFound",
        "SecretForbidden",
        "SecretKeyMissing",
        "CredentialMalformed",
        "PublicServerPrivateAddress",
        "PrivateEndpointRequired",
        "PrivateEndpointUnreachable",
        "DestinationNotAllowed",
        "PortNotAllowed",
        "PlainHttpNotAllowed",
        "DnsResolutionFailed",
        "ConnectionRefused",
        "ConnectionTimedOut",
        "CertificateUntrusted",
        "CertificateHostnameMismatch",
        "CertificateExpired",
        "CertificateNotYetValid",
        "CertificatePinMismatch",
        "TokenRevoked",
        "TokenExpired",
        "AppPasswordRetired",
        "OAuthClientRejected",
        "OAuthRedirectMismatch",
        "InsufficientScopes",
        "RepositoryNotFound",
        "InsufficientRepositoryPermission",
        "ServerError",
        "RateLimited",
        "TokenExpiringSoon",
        "CertificateExpiringSoon",
        "BasicAuthDiscouraged",
        "ExcessScopes",
        "BasicAuthDisabled",
        "CaptchaRequired",
        "GitAuthRejected",
        "GitIpNotAllowlisted",
        "GitTwoStepRequired",
        "GitPushDenied",
        "CloneUrlMismatch",
        "EgressProxyUnreachable",
        "EgressProxyAuthRequired",
        "HostKeyUnknown",
        "HostKeyMismatch",
        "SshKeyRejected",
        "HostKeyTypesIncomplete",
        "SshHostMoved",
    ] {
        assert!(
            bbconn::catalogue::Cause::parse(name).is_some(),
            "{name} missing from the catalogue"
        );
    }
}
