//! spec.auth.secretRef.format: a connection that reads Argo CD's or Flux's own Secret checks git
//! with exactly what that consumer sends (the Secret's username and password as Basic, or its
//! bearerToken as Bearer), and the REST API with the same secret by the method. Through
//! `bbconn check` against the simulator; the simulator's request log shows what was sent.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bbconn::cli::Output;
use common::World;

const NS: &str = "gitops";
const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";

/// A consumer's Secret (with the labels and keys it carries that bbconn does not read) and a
/// connection using it.
fn consumer(name: &str, format: &str, spec: &str, data: &[(&str, &str)]) -> String {
    let labels = match format {
        "ArgoCD" => "\n  labels: {argocd.argoproj.io/secret-type: repository}",
        _ => "",
    };
    let mut data: Vec<(&str, &str)> = data.to_vec();
    if format == "ArgoCD" {
        data.push(("type", "git"));
        data.push(("project", "default"));
    }
    let data: String = data
        .iter()
        .map(|(k, v)| format!("  {k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}-repo\n  namespace: {NS}{labels}\nstringData:\n{data}---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n{spec}\n"
    )
}

fn cloud(name: &str, format: &str, repo: &str, extra: &str) -> String {
    format!(
        "  flavor: Cloud\n  auth: {{secretRef: {{name: {name}-repo, format: {format}}}{extra}}}\n{CA}\n  requirements: {{repositories: [{{name: {repo}}}]}}"
    )
}

fn dc(name: &str, format: &str, extra: &str) -> String {
    format!(
        "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{secretRef: {{name: {name}-repo, format: {format}}}{extra}}}\n{CA}\n  requirements: {{repositories: [{{name: PROJ/app}}]}}"
    )
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The Authorization headers the simulator received on `path` (a prefix), in order.
fn sent(world: &World, path: &str) -> Vec<String> {
    world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(path))
        .filter_map(|r| r.authorization)
        .collect()
}

const DC_PROJECT_TOKEN: &str = "dc-project-token-0109";
const DC_ALICE_TOKEN: &str = "dc-alice-admin-token-0103";
const CLOUD_API_TOKEN: &str = "cloud-api-alice-full-0001";
const CLOUD_READ_TOKEN: &str = "cloud-api-alice-read-0002";
const CLOUD_REPO_TOKEN: &str = "cloud-repo-token-infra-0005";
const ARGO_URL: &str = "https://bitbucket.example.com/scm/proj/app.git";

fn manifest(world: &World) -> String {
    let mut m = world.ca_configmap(NS);
    for doc in [
        // Ready: an Argo CD bearerToken on Data Center (a project token: Bearer only).
        consumer(
            "argo-dc-bearer",
            "ArgoCD",
            &dc("argo-dc-bearer", "ArgoCD", ""),
            &[("url", ARGO_URL), ("bearerToken", DC_PROJECT_TOKEN)],
        ),
        // Ready: an Argo CD Secret with a Cloud API token and git's static user name; the REST
        // API gets the email from the extra key.
        consumer(
            "argo-cloud-api",
            "ArgoCD",
            &cloud("argo-cloud-api", "ArgoCD", "acme/infra", ""),
            &[
                ("url", "https://bitbucket.org/acme/infra.git"),
                ("username", "x-bitbucket-api-token-auth"),
                ("password", CLOUD_API_TOKEN),
                ("email", "alice@example.com"),
            ],
        ),
        // Ready: a Flux Secret with a Cloud repository access token and x-token-auth.
        consumer(
            "flux-cloud-token",
            "Flux",
            &cloud("flux-cloud-token", "Flux", "acme/infra", ""),
            &[("username", "x-token-auth"), ("password", CLOUD_REPO_TOKEN)],
        ),
        // Ready: a Flux Secret with a Data Center user and personal token (Basic).
        consumer(
            "flux-dc-basic",
            "Flux",
            &dc("flux-dc-basic", "Flux", ""),
            &[("username", "alice"), ("password", DC_ALICE_TOKEN)],
        ),
        // GitAuthRejected: the Argo CD Secret sends the account email to git.
        consumer(
            "argo-cloud-email",
            "ArgoCD",
            &cloud("argo-cloud-email", "ArgoCD", "acme/infra", ""),
            &[
                ("url", "https://bitbucket.org/acme/infra.git"),
                ("username", "alice@example.com"),
                ("password", CLOUD_API_TOKEN),
            ],
        ),
        // GitAuthRejected: a made-up user name with a personal token (REST takes the token as
        // Bearer, by the explicit method; git gets exactly the Secret's pair).
        consumer(
            "flux-dc-made-up-user",
            "Flux",
            &dc("flux-dc-made-up-user", "Flux", ", method: AccessToken"),
            &[("username", "git"), ("password", DC_ALICE_TOKEN)],
        ),
        // SecretKeyMissing, in the consumer's terms.
        consumer(
            "argo-no-password",
            "ArgoCD",
            &dc("argo-no-password", "ArgoCD", ""),
            &[("url", ARGO_URL), ("username", "alice")],
        ),
        consumer(
            "flux-no-username",
            "Flux",
            &dc("flux-no-username", "Flux", ""),
            &[("password", DC_ALICE_TOKEN)],
        ),
        consumer(
            "argo-cloud-no-email",
            "ArgoCD",
            &cloud("argo-cloud-no-email", "ArgoCD", "acme/infra", ""),
            &[
                ("username", "x-bitbucket-api-token-auth"),
                ("password", CLOUD_READ_TOKEN),
            ],
        ),
        // CredentialMalformed: Flux refuses basic auth and a bearer token together.
        consumer(
            "flux-both",
            "Flux",
            &dc("flux-both", "Flux", ""),
            &[
                ("username", "alice"),
                ("password", DC_ALICE_TOKEN),
                ("bearerToken", DC_PROJECT_TOKEN),
            ],
        ),
    ] {
        m.push_str(&doc);
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_secrets_are_checked_as_the_consumer_sends_them() {
    let world = World::start().await;
    let manifest = manifest(&world);
    let out = world.check(&manifest).await;
    assert_eq!(out.code, 1, "some are broken: exit 1\n{}", out.stderr);

    for name in [
        "argo-dc-bearer",
        "argo-cloud-api",
        "flux-cloud-token",
        "flux-dc-basic",
    ] {
        let (status, reason, message) = out.condition(name, "Ready");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("True", "AllChecksPassed"),
            "{name}: {message}"
        );
    }
    // What the method was taken as, and the git form.
    let method = |n: &str| out.status(n)["credential"]["method"].clone();
    assert_eq!(method("argo-dc-bearer"), "AccessToken");
    assert_eq!(method("argo-cloud-api"), "ApiToken");
    assert_eq!(method("flux-cloud-token"), "AccessToken");
    assert_eq!(method("flux-dc-basic"), "Basic");
    assert_eq!(out.status("argo-dc-bearer")["git"]["scheme"], "Bearer");
    let (_, _, m) = out.condition("argo-dc-bearer", "CredentialsResolved");
    assert!(
        m.contains("Argo CD") && m.contains("taken as method AccessToken"),
        "{m}"
    );
    // A Basic pair from a consumer's Secret is discouraged, with the way to say it is a token.
    assert!(
        out.problems("flux-dc-basic")
            .iter()
            .any(|(_, c, s)| c == "BasicAuthDiscouraged" && s == "Warning")
    );

    // git got exactly what each consumer sends.
    let bearer = format!("Bearer {DC_PROJECT_TOKEN}");
    let git = sent(&world, "/scm/proj/app.git/info/refs");
    assert!(git.contains(&bearer), "{git:?}");
    assert!(git.contains(&format!(
        "Basic {}",
        b64(&format!("alice:{DC_ALICE_TOKEN}"))
    )));
    let cloud_git = sent(&world, "/acme/infra.git/info/refs");
    for pair in [
        format!("x-bitbucket-api-token-auth:{CLOUD_API_TOKEN}"),
        format!("x-token-auth:{CLOUD_REPO_TOKEN}"),
        format!("alice@example.com:{CLOUD_API_TOKEN}"),
    ] {
        let want = format!("Basic {}", b64(&pair));
        assert!(cloud_git.contains(&want), "{pair}: {cloud_git:?}");
    }
    // The REST API got the same secrets by the method: Bearer, and the email for the API token.
    let rest = sent(&world, "/rest/");
    assert!(rest.contains(&bearer), "{rest:?}");
    let cloud_rest = sent(&world, "/2.0/");
    assert!(cloud_rest.contains(&format!(
        "Basic {}",
        b64(&format!("alice@example.com:{CLOUD_API_TOKEN}"))
    )));
    assert!(cloud_rest.contains(&format!("Bearer {CLOUD_REPO_TOKEN}")));
    // Never the git user name with an API token to REST: it is sure to be refused.
    assert!(!cloud_rest.iter().any(|a| a
        == &format!(
            "Basic {}",
            b64(&format!("x-bitbucket-api-token-auth:{CLOUD_API_TOKEN}"))
        )));

    // Wrong git user names: REST passes, git refuses, the remedy names the form git needs.
    for (name, needs) in [
        ("argo-cloud-email", "x-bitbucket-api-token-auth"),
        ("flux-dc-made-up-user", "Authorization: Bearer"),
    ] {
        let (status, reason, message) = out.condition(name, "GitAccess");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "GitAuthRejected"),
            "{name}: {message}"
        );
        assert!(message.contains(needs), "{name}: {message}");
        assert_eq!(out.condition(name, "RepositoryAccess").0, "True");
    }
    // The refused pair was sent to git once, and not again in the run.
    let email_pair = format!(
        "Basic {}",
        b64(&format!("alice@example.com:{CLOUD_API_TOKEN}"))
    );
    assert_eq!(cloud_git.iter().filter(|a| **a == email_pair).count(), 1);

    // Missing keys, named as the consumer names them.
    for (name, says) in [
        (
            "argo-no-password",
            "Argo CD Secret gitops/argo-no-password-repo has no password or bearerToken",
        ),
        (
            "flux-no-username",
            "Flux Secret gitops/flux-no-username-repo has a password but no username",
        ),
        ("argo-cloud-no-email", "has no key email"),
    ] {
        let (status, reason, message) = out.condition(name, "CredentialsResolved");
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "SecretKeyMissing"),
            "{name}: {message}"
        );
        assert!(message.contains(says), "{name}: {message}");
        let problem = &out.status(name)["problems"][0];
        assert_eq!(problem["cause"], "SecretKeyMissing");
        assert!(
            problem["remedy"]
                .as_str()
                .unwrap()
                .contains(&format!("{NS}/{name}-repo")),
            "{problem}"
        );
    }
    // Nothing was sent with a credential that could not be resolved.
    assert!(
        world
            .sim
            .requests()
            .iter()
            .all(|r| r
                .authorization
                .as_deref()
                .is_none_or(|a| !a.contains(&b64(&format!(
                    "x-bitbucket-api-token-auth:{CLOUD_READ_TOKEN}"
                ))) && !a.contains(CLOUD_READ_TOKEN)))
    );
    let (_, reason, message) = out.condition("flux-both", "CredentialsResolved");
    assert_eq!(reason, "CredentialMalformed", "{message}");
    assert!(message.contains("Flux refuses"), "{message}");
    let misplaced = out.misplaced_causes();
    assert!(misplaced.is_empty(), "{}", misplaced.join("\n"));

    // No secret value in any output, JSON or table.
    let table = world
        .check_with(&manifest, world.net(), Output::Table)
        .await;
    let all = format!(
        "{}{}{}{}",
        out.stdout, out.stderr, table.stdout, table.stderr
    );
    assert!(
        table.stdout.contains("SecretKeyMissing"),
        "{}",
        table.stdout
    );
    for secret in [
        DC_PROJECT_TOKEN,
        DC_ALICE_TOKEN,
        CLOUD_API_TOKEN,
        CLOUD_READ_TOKEN,
        CLOUD_REPO_TOKEN,
    ] {
        assert!(!all.contains(secret), "{secret} appears in bbconn's output");
        assert!(!all.contains(&b64(secret)), "{secret} (base64) appears");
    }
}

/// What the CRD's rules refuse with a format, as `bbconn check` reports them (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crd_refuses_what_makes_no_sense_with_a_format() {
    let world = World::start().await;
    let data = &[("username", "alice"), ("password", DC_ALICE_TOKEN)];
    let base = "  flavor: DataCenter\n  url: https://bitbucket.example.com";
    let refused = [
        (
            format!(
                "{base}\n  auth: {{secretRef: {{name: x-repo, format: Flux, keys: {{password: pass}}}}}}\n{CA}"
            ),
            "secretRef.keys cannot be combined with secretRef.format",
        ),
        (
            format!(
                "{base}\n  auth: {{secretRef: {{name: x-repo, format: Flux}}, method: OAuthApplicationLink}}\n{CA}"
            ),
            "spec.auth.secretRef.format reads a consumer's git credentials",
        ),
        // git.username with a format, and no method without one.
        (
            format!("{}\n  git: {{username: alice}}", dc("x", "Flux", "")),
            "spec.git.username cannot be combined",
        ),
        (
            format!("{base}\n  auth: {{secretRef: {{name: x-repo}}}}\n{CA}"),
            "spec.auth.method is required",
        ),
    ];
    for (spec, says) in &refused {
        let m = format!(
            "{}{}",
            world.ca_configmap(NS),
            consumer("x", "Flux", spec, data)
        );
        let out = world.check(&m).await;
        assert_eq!(out.code, 2, "{spec}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(says), "{spec}: {}", out.stderr);
    }
    // A valid combination is not refused: an explicit method with a format.
    let spec = dc("x", "Flux", ", method: Basic");
    let m = format!(
        "{}{}",
        world.ca_configmap(NS),
        consumer("x", "Flux", &spec, data)
    );
    let out = world.check(&m).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}
