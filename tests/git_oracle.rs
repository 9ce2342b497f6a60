//! The real `git` client is the oracle for GitAccess: for each case, `git ls-remote` (and, for
//! `git.access: Write`, `git push --dry-run`, which stops after the receive-pack advertisement)
//! runs against the simulator with the credential in the form the consumer would configure, and
//! bbconn's GitAccess verdict for the same credential must agree with git's.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{World, connection};
use std::path::{Path, PathBuf};
use std::process::Command;

const CA: &str = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
const NS: &str = "git";

/// How the consumer hands the credential to git.
#[derive(Clone)]
enum GitCred {
    /// In the URL: https://user:secret@host/...
    Basic(&'static str, &'static str),
    /// `http.extraHeader=Authorization: Bearer <token>` (Argo CD's and Flux's bearerToken).
    Bearer(&'static str),
}

/// What the consumer trusts: the simulator's CA (as a connection's caBundleRef and git's
/// http.sslCAInfo), nothing but the public roots, or nothing at all (Argo CD's insecure:
/// tls.insecureSkipVerify and git's http.sslVerify=false).
#[derive(Clone, Copy, PartialEq)]
enum Trust {
    Ca,
    PublicRoots,
    Insecure,
}

struct Case {
    name: &'static str,
    spec: String,
    trust: Trust,
    secret: Vec<(&'static str, &'static str)>,
    /// The repository path on the simulator.
    path: &'static str,
    git: GitCred,
    write: bool,
    /// bbconn's expected GitAccess reason.
    expect: &'static str,
}

fn spec(flavor: &str, method: &str, name: &str, repo: &str, git: &str) -> String {
    let url = match flavor {
        "Cloud" => "https://api.bitbucket.org/2.0",
        _ => "https://bitbucket.example.com",
    };
    format!(
        "  flavor: {flavor}\n  url: {url}\n  auth: {{method: {method}, secretRef: {{name: {name}-cred}}}}\n{CA}\n  requirements: {{repositories: [{{name: {repo}}}]}}\n  git: {{{git}}}\n"
    )
}

#[allow(clippy::too_many_arguments)]
fn case(
    name: &'static str,
    flavor: &str,
    method: &str,
    secret: &[(&'static str, &'static str)],
    repo: &str,
    git_spec: &str,
    path: &'static str,
    git: GitCred,
    expect: &'static str,
) -> Case {
    let write = git_spec.contains("Write");
    Case {
        name,
        spec: spec(flavor, method, name, repo, git_spec),
        trust: Trust::Ca,
        secret: secret.to_vec(),
        path,
        git,
        write,
        expect,
    }
}

const ALICE_API: &[(&str, &str)] = &[
    ("username", "alice@example.com"),
    ("token", "cloud-api-alice-full-0001"),
];

fn cases() -> Vec<Case> {
    use GitCred::*;
    vec![
        case(
            "cloud-api-static-user",
            "Cloud",
            "ApiToken",
            ALICE_API,
            "acme/infra",
            "access: Read",
            "/acme/infra.git",
            Basic("x-bitbucket-api-token-auth", "cloud-api-alice-full-0001"),
            "Passed",
        ),
        case(
            "cloud-api-bitbucket-username",
            "Cloud",
            "ApiToken",
            ALICE_API,
            "acme/infra",
            "username: alice",
            "/acme/infra.git",
            Basic("alice", "cloud-api-alice-full-0001"),
            "Passed",
        ),
        case(
            "cloud-api-email",
            "Cloud",
            "ApiToken",
            ALICE_API,
            "acme/infra",
            "access: Write, username: alice@example.com",
            "/acme/infra.git",
            Basic("alice@example.com", "cloud-api-alice-full-0001"),
            "GitAuthRejected",
        ),
        case(
            "cloud-access-token",
            "Cloud",
            "AccessToken",
            &[("token", "cloud-repo-token-infra-0005")],
            "acme/infra",
            "access: Read",
            "/acme/infra.git",
            Basic("x-token-auth", "cloud-repo-token-infra-0005"),
            "Passed",
        ),
        case(
            "cloud-access-token-username",
            "Cloud",
            "AccessToken",
            &[("token", "cloud-repo-token-infra-0005")],
            "acme/infra",
            "username: alice",
            "/acme/infra.git",
            Basic("alice", "cloud-repo-token-infra-0005"),
            "GitAuthRejected",
        ),
        case(
            "cloud-ip-allowlist",
            "Cloud",
            "ApiToken",
            ALICE_API,
            "locked/vault",
            "access: Read",
            "/locked/vault.git",
            Basic("x-bitbucket-api-token-auth", "cloud-api-alice-full-0001"),
            "GitIpNotAllowlisted",
        ),
        case(
            "cloud-two-step-off",
            "Cloud",
            "ApiToken",
            ALICE_API,
            "secure/payments",
            "access: Read",
            "/secure/payments.git",
            Basic("x-bitbucket-api-token-auth", "cloud-api-alice-full-0001"),
            "GitTwoStepRequired",
        ),
        case(
            "cloud-two-step-on",
            "Cloud",
            "ApiToken",
            &[
                ("username", "bob@example.com"),
                ("token", "cloud-api-bob-read-0003"),
            ],
            "secure/payments",
            "access: Read",
            "/secure/payments.git",
            Basic("x-bitbucket-api-token-auth", "cloud-api-bob-read-0003"),
            "Passed",
        ),
        case(
            "cloud-read-token-push",
            "Cloud",
            "ApiToken",
            &[
                ("username", "alice@example.com"),
                ("token", "cloud-api-alice-read-0002"),
            ],
            "acme/infra",
            "access: Write",
            "/acme/infra.git",
            Basic("x-bitbucket-api-token-auth", "cloud-api-alice-read-0002"),
            "GitPushDenied",
        ),
        case(
            "cloud-write-token-push",
            "Cloud",
            "ApiToken",
            ALICE_API,
            "acme/infra",
            "access: Write",
            "/acme/infra.git",
            Basic("x-bitbucket-api-token-auth", "cloud-api-alice-full-0001"),
            "Passed",
        ),
        case(
            "dc-personal-owner",
            "DataCenter",
            "AccessToken",
            &[
                ("token", "dc-alice-admin-token-0103"),
                ("tokenId", "100000000001"),
            ],
            "PROJ/app",
            "access: Read",
            "/scm/proj/app.git",
            Basic("alice", "dc-alice-admin-token-0103"),
            "Passed",
        ),
        case(
            "dc-personal-other-user",
            "DataCenter",
            "AccessToken",
            &[
                ("token", "dc-alice-admin-token-0103"),
                ("tokenId", "100000000001"),
            ],
            "PROJ/app",
            "username: bob",
            "/scm/proj/app.git",
            Basic("bob", "dc-alice-admin-token-0103"),
            "GitAuthRejected",
        ),
        case(
            "dc-project-token-bearer",
            "DataCenter",
            "AccessToken",
            &[("token", "dc-project-token-0109")],
            "PROJ/app",
            "access: Read",
            "/scm/proj/app.git",
            Bearer("dc-project-token-0109"),
            "Passed",
        ),
        case(
            "dc-project-token-username",
            "DataCenter",
            "AccessToken",
            &[("token", "dc-project-token-0109")],
            "PROJ/app",
            "username: alice",
            "/scm/proj/app.git",
            Basic("alice", "dc-project-token-0109"),
            "GitAuthRejected",
        ),
        case(
            "dc-read-token-push",
            "DataCenter",
            "AccessToken",
            &[
                ("token", "dc-alice-read-token-0104"),
                ("tokenId", "100000000002"),
            ],
            "PROJ/app",
            "access: Write",
            "/scm/proj/app.git",
            Basic("alice", "dc-alice-read-token-0104"),
            "GitPushDenied",
        ),
        case(
            "dc-password-push",
            "DataCenter",
            "Basic",
            &[("username", "bob"), ("password", "dc-bob-password-0102")],
            "PROJ/app",
            "access: Write",
            "/scm/proj/app.git",
            Basic("bob", "dc-bob-password-0102"),
            "Passed",
        ),
        // A consumer's own Secret (spec.auth.secretRef.format): git gets exactly its pair or
        // its bearerToken, as Argo CD and Flux configure git with them.
        consumer(
            "argo-dc-bearer",
            "DataCenter",
            "ArgoCD",
            &[("bearerToken", "dc-project-token-0109")],
            "PROJ/app",
            "/scm/proj/app.git",
            Bearer("dc-project-token-0109"),
            "Passed",
        ),
        consumer(
            "flux-cloud-token",
            "Cloud",
            "Flux",
            &[
                ("username", "x-token-auth"),
                ("password", "cloud-repo-token-infra-0005"),
            ],
            "acme/infra",
            "/acme/infra.git",
            Basic("x-token-auth", "cloud-repo-token-infra-0005"),
            "Passed",
        ),
        consumer(
            "argo-cloud-email",
            "Cloud",
            "ArgoCD",
            &[
                ("username", "bob@example.com"),
                ("password", "cloud-api-bob-read-0003"),
            ],
            "acme/infra",
            "/acme/infra.git",
            Basic("bob@example.com", "cloud-api-bob-read-0003"),
            "GitAuthRejected",
        ),
        consumer(
            "flux-dc-owner",
            "DataCenter",
            "Flux",
            &[
                ("username", "alice"),
                ("password", "dc-alice-admin-token-0103"),
            ],
            "PROJ/app",
            "/scm/proj/app.git",
            Basic("alice", "dc-alice-admin-token-0103"),
            "Passed",
        ),
        // A consumer that trusts only the public roots, and one that does not verify (Argo
        // CD's insecure: "true"): git fails the first and gets through the second, as bbconn.
        trusting("dc-public-roots-only", Trust::PublicRoots, "NotChecked"),
        trusting("dc-insecure", Trust::Insecure, "Passed"),
    ]
}

/// A Data Center project token read over Bearer, with `trust` instead of the simulator's CA.
fn trusting(name: &'static str, trust: Trust, expect: &'static str) -> Case {
    let tls = match trust {
        Trust::Insecure => "  tls: {insecureSkipVerify: true}\n",
        _ => "",
    };
    Case {
        name,
        spec: format!(
            "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{method: AccessToken, secretRef: {{name: {name}-cred}}}}\n{tls}  requirements: {{repositories: [{{name: PROJ/app}}]}}\n"
        ),
        trust,
        secret: vec![("token", "dc-project-token-0109")],
        path: "/scm/proj/app.git",
        git: GitCred::Bearer("dc-project-token-0109"),
        write: false,
        expect,
    }
}

/// A case whose connection reads a consumer's Secret, method inferred.
#[allow(clippy::too_many_arguments)]
fn consumer(
    name: &'static str,
    flavor: &str,
    format: &str,
    secret: &[(&'static str, &'static str)],
    repo: &str,
    path: &'static str,
    git: GitCred,
    expect: &'static str,
) -> Case {
    let url = match flavor {
        "Cloud" => "https://api.bitbucket.org/2.0",
        _ => "https://bitbucket.example.com",
    };
    Case {
        name,
        spec: format!(
            "  flavor: {flavor}\n  url: {url}\n  auth: {{secretRef: {{name: {name}-cred, format: {format}}}}}\n{CA}\n  requirements: {{repositories: [{{name: {repo}}}]}}\n"
        ),
        trust: Trust::Ca,
        secret: secret.to_vec(),
        path,
        git,
        write: false,
        expect,
    }
}

fn git_binary() -> PathBuf {
    for p in ["/usr/bin/git", "/usr/local/bin/git"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    if Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return PathBuf::from("git");
    }
    panic!(
        "the git oracle test needs the real git client, and none was found (/usr/bin/git, PATH): install it (apt-get install git)"
    );
}

struct Git {
    bin: PathBuf,
    home: PathBuf,
    ca: PathBuf,
    repo: PathBuf,
}

impl Git {
    fn command(&self, cred: &GitCred, trust: Trust) -> Command {
        let mut c = Command::new(&self.bin);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", self.home.join("gitconfig"))
            .args(["-c", "credential.helper="]);
        match trust {
            Trust::Ca => c
                .arg("-c")
                .arg(format!("http.sslCAInfo={}", self.ca.display())),
            Trust::PublicRoots => &mut c,
            Trust::Insecure => c.args(["-c", "http.sslVerify=false"]),
        };
        if let GitCred::Bearer(t) = cred {
            c.arg("-c")
                .arg(format!("http.extraHeader=Authorization: Bearer {t}"));
        }
        c
    }

    /// The clone URL on the simulator's port; the host is Bitbucket's, resolved to loopback
    /// with `http.curloptResolve` (as the certificate names it).
    fn url(&self, port: u16, path: &str, cred: &GitCred) -> String {
        let host = host_of(path);
        match cred {
            GitCred::Basic(u, p) => {
                format!("https://{}:{}@{host}:{port}{path}", enc(u), enc(p))
            }
            GitCred::Bearer(_) => format!("https://{host}:{port}{path}"),
        }
    }

    /// git's own verdict: ls-remote, and for Write push --dry-run of a new branch. (success,
    /// the last line git printed)
    fn verdict(&self, port: u16, c: &Case) -> (bool, String) {
        let url = self.url(port, c.path, &c.git);
        let resolve = format!("http.curloptResolve={}:{port}:127.0.0.1", host_of(c.path));
        let out = self
            .command(&c.git, c.trust)
            .args(["-c", &resolve, "ls-remote", &url])
            .output()
            .unwrap();
        if !out.status.success() || !c.write {
            return (out.status.success(), last_line(&out));
        }
        let out = self
            .command(&c.git, c.trust)
            .arg("-C")
            .arg(&self.repo)
            .args([
                "-c",
                &resolve,
                "push",
                "--dry-run",
                &url,
                "HEAD:refs/heads/bbconn-oracle",
            ])
            .output()
            .unwrap();
        (out.status.success(), last_line(&out))
    }
}

fn host_of(path: &str) -> &'static str {
    if path.starts_with("/scm/") {
        "bitbucket.example.com"
    } else {
        "bitbucket.org"
    }
}

fn last_line(out: &std::process::Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .chars()
        .take(90)
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn setup_git(world: &World) -> Git {
    let bin = git_binary();
    let home = world.dir.path().join("git-home");
    std::fs::create_dir_all(&home).unwrap();
    let ca = home.join("ca.crt");
    std::fs::write(&ca, world.pki.ca_pem()).unwrap();
    std::fs::write(home.join("gitconfig"), "").unwrap();
    let repo = home.join("local");
    let git = Git {
        bin,
        home: home.clone(),
        ca,
        repo: repo.clone(),
    };
    // An empty local repository with one commit, to push (dry run) from.
    let run = |args: &[&str]| {
        let out = git
            .command(&GitCred::Bearer("unused"), Trust::Ca)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", last_line(&out));
    };
    run(&["init", "-q", repo.to_str().unwrap()]);
    run(&[
        "-C",
        repo.to_str().unwrap(),
        "-c",
        "user.name=bbconn",
        "-c",
        "user.email=bbconn@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "one commit",
    ]);
    git
}

struct Row {
    name: &'static str,
    write: bool,
    git_ok: bool,
    git_said: String,
    status: String,
    reason: String,
    message: String,
    expect: &'static str,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bbconn_agrees_with_git() {
    let world = World::start().await;
    let git = setup_git(&world);
    let port = world.port("good");
    let cases = cases();
    let mut manifest = world.ca_configmap(NS);
    for c in &cases {
        manifest.push_str(&connection(NS, c.name, &c.spec, &c.secret));
    }
    let out = world.check(&manifest).await;
    // The lockout rule: once git refused a credential, bbconn does not send it again in the run
    // (no receive-pack after the refused upload-pack).
    let refused = bbconn::credential::basic("alice@example.com", "cloud-api-alice-full-0001");
    let sent_refused = world
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/info/refs"))
        .filter(|r| r.authorization.as_deref() == refused.to_str().ok())
        .count();
    assert_eq!(sent_refused, 1, "the refused git credential was sent again");
    // status.git: the clone URL Bitbucket advertised and the form to configure, never the secret.
    let git_status = &out.status("cloud-api-static-user")["git"];
    assert_eq!(git_status["username"], "x-bitbucket-api-token-auth");
    assert_eq!(git_status["scheme"], "Basic");
    assert_eq!(
        git_status["repositories"][0]["cloneUrl"],
        "https://bitbucket.org/acme/infra.git"
    );
    assert_eq!(
        out.status("dc-project-token-bearer")["git"]["scheme"],
        "Bearer"
    );
    assert!(!out.stdout.contains("cloud-api-alice-full-0001"));
    assert!(!out.stdout.contains("dc-project-token-0109"));
    let git = std::sync::Arc::new(git);
    let mut rows = Vec::new();
    for c in cases {
        let g = git.clone();
        let (ok, said, c) = tokio::task::spawn_blocking(move || {
            let (ok, said) = g.verdict(port, &c);
            (ok, said, c)
        })
        .await
        .unwrap();
        let (status, reason, message) = out.condition(c.name, "GitAccess");
        rows.push(Row {
            name: c.name,
            write: c.write,
            git_ok: ok,
            git_said: said,
            status,
            reason,
            message,
            expect: c.expect,
        });
    }
    let mut table = String::from(
        "\n| case | git.access | git's verdict | bbconn's GitAccess | agree |\n|---|---|---|---|---|\n",
    );
    let mut failures = Vec::new();
    for r in &rows {
        let bbconn_ok = r.status == "True";
        let agree = bbconn_ok == r.git_ok;
        table.push_str(&format!(
            "| {} | {} | {} | {} {} | {} |\n",
            r.name,
            if r.write { "Write" } else { "Read" },
            if r.git_ok {
                "success".to_string()
            } else {
                format!("failure (`{}`)", r.git_said.replace('|', "/"))
            },
            r.status,
            r.reason,
            if agree { "yes" } else { "NO" }
        ));
        if !agree {
            failures.push(format!(
                "{}: git {}, bbconn {} {}: {}",
                r.name,
                if r.git_ok { "succeeded" } else { "failed" },
                r.status,
                r.reason,
                r.message
            ));
        }
        if r.reason != r.expect {
            failures.push(format!(
                "{}: expected GitAccess {}, got {} {}: {}",
                r.name, r.expect, r.status, r.reason, r.message
            ));
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
}
