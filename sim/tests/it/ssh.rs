//! git over SSH with the real OpenSSH client and git (StrictHostKeyChecking=yes, the
//! listeners' own host keys in a known_hosts file), and a russh client for what OpenSSH hides.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bbconn_sim::fixture::Flavor;
use bbconn_sim::ssh::{
    ALICE_ED25519, ALICE_RSA, BOB_ED25519, ClientKey, DEPLOY_ED25519, DEPLOY_RSA,
    ENCRYPTED_ED25519, ExecAnswer, STRANGER_ED25519, known_hosts_lines, published_host_keys,
};
use bbconn_sim::{SshAuth, SshEventKind};

use crate::common::{self, Sim, basic};

const WAIT: Duration = Duration::from_secs(30);

pub(crate) fn fixture() -> String {
    format!(
        r#"
listeners:
  - {{ name: cloud-ssh, kind: ssh, serves: [cloud] }}
  - {{ name: cloud-ssh-retired, kind: ssh, serves: [cloud], retiredRsaHostKey: true }}
  - {{ name: dc-ssh, kind: ssh, serves: [datacenter] }}
  - {{ name: dc, tls: none, serves: [datacenter] }}
cloud:
  users:
    - {{ username: alice, email: alice@example.com, sshKeys: ["{alice}", "{alice_rsa}"] }}
    - {{ username: bob, email: bob@example.com, sshKeys: ["{encrypted}"] }}
  workspaces:
    - slug: acme
      repositories:
        - {{ slug: app, access: {{ alice: write, bob: read }}, accessKeys: ["{deploy}"] }}
        - {{ slug: fresh, empty: true, access: {{ alice: read }} }}
        - {{ slug: secret }}
datacenter:
  users:
    - {{ name: alice, password: alice-pw, sshKeys: ["{alice}"] }}
  projects:
    - key: PROJ
      accessKeys: [ {{ key: "{deploy_rsa}", permission: readWrite }} ]
      repositories:
        - {{ slug: app, access: {{ alice: REPO_WRITE }}, accessKeys: [ {{ key: "{bob}" }} ] }}
"#,
        alice = ALICE_ED25519.public_line(),
        alice_rsa = ALICE_RSA.public_line(),
        encrypted = ENCRYPTED_ED25519.public_line(),
        deploy = DEPLOY_ED25519.public_line(),
        deploy_rsa = DEPLOY_RSA.public_line(),
        bob = BOB_ED25519.public_line(),
    )
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("bbconn-sim-ssh-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

async fn run(cmd: &mut tokio::process::Command) -> Out {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("the command did not finish in time")
        .unwrap();
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The real clients, with a known_hosts file holding the listeners' keys for 127.0.0.1.
pub(crate) struct Client {
    dir: Scratch,
    known_hosts: PathBuf,
}

impl Client {
    pub(crate) fn new(sim: &Sim, listeners: &[&str]) -> Client {
        let lines: Vec<String> = listeners
            .iter()
            .flat_map(|l| {
                sim.running
                    .ssh_known_hosts(l, "127.0.0.1", sim.addr(l).port())
            })
            .collect();
        Client::with_known_hosts(&lines)
    }

    fn with_known_hosts(lines: &[String]) -> Client {
        let dir = Scratch::new();
        let known_hosts = dir.0.join("known_hosts");
        std::fs::write(&known_hosts, lines.join("\n") + "\n").unwrap();
        Client { dir, known_hosts }
    }

    /// ssh with only this key, no agent, no user configuration, no prompts.
    fn ssh_args(&self, key: &ClientKey) -> Vec<String> {
        let key = key.write_to(&self.dir.0).unwrap();
        [
            "-F",
            "/dev/null",
            "-i",
            key.to_str().unwrap(),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            &format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=10",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    }

    async fn ssh(
        &self,
        key: &ClientKey,
        port: u16,
        extra: &[&str],
        dest: &str,
        cmd: &[&str],
    ) -> Out {
        let mut c = tokio::process::Command::new("/usr/bin/ssh");
        c.args(self.ssh_args(key))
            .args(extra)
            .args(["-p", &port.to_string(), dest])
            .args(cmd);
        run(&mut c).await
    }

    /// The scratch directory: git's HOME and default working directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir.0
    }

    pub(crate) async fn git(&self, key: &ClientKey, cwd: Option<&Path>, args: &[&str]) -> Out {
        let mut c = tokio::process::Command::new("/usr/bin/git");
        c.args(args)
            .current_dir(cwd.unwrap_or(&self.dir.0))
            .env("HOME", &self.dir.0)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            // It would win over the http.sslCAInfo the HTTPS tests (clone.rs) pass.
            .env_remove("GIT_SSL_CAINFO")
            .env(
                "GIT_SSH_COMMAND",
                format!("ssh {}", self.ssh_args(key).join(" ")),
            );
        run(&mut c).await
    }

    /// A local repository with one commit, to push from.
    async fn repo(&self) -> PathBuf {
        let repo = self.dir.0.join("repo");
        let out = self
            .git(
                &ALICE_ED25519,
                None,
                &["init", "-q", repo.to_str().unwrap()],
            )
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
        let commit = [
            "-c",
            "user.name=Sim",
            "-c",
            "user.email=sim@example.com",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "first",
        ];
        let out = self.git(&ALICE_ED25519, Some(&repo), &commit).await;
        assert_eq!(out.code, Some(0), "{out:?}");
        repo
    }
}

pub(crate) fn url(sim: &Sim, listener: &str, user: &str, path: &str) -> String {
    format!(
        "ssh://{user}@127.0.0.1:{}/{path}",
        sim.addr(listener).port()
    )
}

fn auths(sim: &Sim, key: &ClientKey) -> Vec<SshAuth> {
    let fp = key.fingerprint();
    sim.running
        .ssh_events()
        .into_iter()
        .filter_map(|e| match e.kind {
            SshEventKind::Auth(a) if a.fingerprint == fp => Some(a),
            _ => None,
        })
        .collect()
}

fn execs(sim: &Sim) -> Vec<(String, ExecAnswer)> {
    sim.running
        .ssh_events()
        .into_iter()
        .filter_map(|e| match e.kind {
            SshEventKind::Exec { command, answer } => Some((command, answer)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn cloud_ls_remote_with_user_and_access_keys() {
    let sim = common::start(&fixture()).await;
    let c = Client::new(&sim, &["cloud-ssh"]);
    let app = url(&sim, "cloud-ssh", "git", "acme/app.git");
    for key in [&ALICE_ED25519, &ALICE_RSA, &DEPLOY_ED25519] {
        let out = c.git(key, None, &["ls-remote", &app]).await;
        assert_eq!(out.code, Some(0), "{}: {out:?}", key.name);
        assert!(out.stdout.contains("\tHEAD\n"), "{out:?}");
        assert!(out.stdout.contains("\trefs/heads/main\n"), "{out:?}");
    }
    // scp-like spelling, no .git: the path arrives without a leading slash.
    let out = c
        .ssh(
            &DEPLOY_ED25519,
            sim.addr("cloud-ssh").port(),
            &[],
            "git@127.0.0.1",
            &["git-upload-pack 'acme/app'"],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(" refs/heads/main\n"), "{out:?}");

    let empty = c
        .git(
            &ALICE_ED25519,
            None,
            &[
                "ls-remote",
                &url(&sim, "cloud-ssh", "git", "acme/fresh.git"),
            ],
        )
        .await;
    assert_eq!(
        (empty.code, empty.stdout.as_str()),
        (Some(0), ""),
        "{empty:?}"
    );

    // OpenSSH asks without a signature first, then signs; git sends GIT_PROTOCOL.
    let alice = auths(&sim, &ALICE_ED25519);
    assert!(alice.iter().any(|a| !a.signed && a.accepted), "{alice:?}");
    assert!(
        alice
            .iter()
            .any(|a| a.signed && a.accepted && a.user == "git"),
        "{alice:?}"
    );
    assert!(sim.running.ssh_events().iter().any(|e| matches!(
        &e.kind,
        SshEventKind::Env { name, value } if name == "GIT_PROTOCOL" && value == "version=2"
    )));
    let commands = execs(&sim);
    assert!(
        commands.contains(&(
            "git-upload-pack '/acme/app.git'".into(),
            ExecAnswer::Advertised
        )),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .all(|(c, _)| c.starts_with("git-upload-pack ") || c.starts_with("git-receive-pack ")),
        "{commands:?}"
    );
}

#[tokio::test]
async fn cloud_push_dry_run_and_refusals() {
    let sim = common::start(&fixture()).await;
    let c = Client::new(&sim, &["cloud-ssh"]);
    let repo = c.repo().await;
    let app = url(&sim, "cloud-ssh", "git", "acme/app.git");
    let push = ["push", "--dry-run", &app, "HEAD:refs/heads/sim-dry-run"];

    let out = c.git(&ALICE_ED25519, Some(&repo), &push).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("[new branch]"), "{out:?}");

    let out = c.git(&DEPLOY_ED25519, Some(&repo), &push).await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(
            "conq: repository access denied. access via a deployment key is read-only.\n"
        ),
        "{out:?}"
    );

    // bob may read app but not write it.
    let out = c.git(&ENCRYPTED_ED25519_UNLOCKED, Some(&repo), &push).await;
    assert!(
        out.stderr.contains("conq: repository access denied.\n"),
        "{out:?}"
    );

    let missing = url(&sim, "cloud-ssh", "git", "acme/nope.git");
    let out = c.git(&ALICE_ED25519, None, &["ls-remote", &missing]).await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("conq: repository does not exist.\n"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "{out:?}");

    let secret = url(&sim, "cloud-ssh", "git", "acme/secret.git");
    let out = c.git(&DEPLOY_ED25519, None, &["ls-remote", &secret]).await;
    assert!(
        out.stderr.contains("conq: repository access denied.\n"),
        "{out:?}"
    );
    let commands = execs(&sim);
    assert!(
        commands.contains(&(
            "git-receive-pack '/acme/app.git'".into(),
            ExecAnswer::Advertised
        )),
        "{commands:?}"
    );
}

/// bob's key is the encrypted one; ssh cannot prompt in BatchMode, so the tests hand it the
/// same key pair decrypted.
static ENCRYPTED_ED25519_UNLOCKED: std::sync::LazyLock<ClientKey> =
    std::sync::LazyLock::new(|| {
        let key = ENCRYPTED_ED25519.private_key().unwrap();
        let text = key
            .to_openssh(russh::keys::ssh_key::LineEnding::LF)
            .unwrap()
            .to_string();
        ClientKey {
            name: "encrypted_ed25519_unlocked",
            private: Box::leak(text.into_boxed_str()),
            public: ENCRYPTED_ED25519.public,
            passphrase: None,
        }
    });

#[tokio::test]
async fn unknown_keys_and_users_are_refused() {
    let sim = common::start(&fixture()).await;
    let c = Client::new(&sim, &["cloud-ssh"]);
    let out = c
        .git(
            &STRANGER_ED25519,
            None,
            &["ls-remote", &url(&sim, "cloud-ssh", "git", "acme/app.git")],
        )
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{out:?}"
    );
    let stranger = auths(&sim, &STRANGER_ED25519);
    assert_eq!(stranger.len(), 1, "offered once: {stranger:?}");
    assert!(!stranger[0].signed && !stranger[0].accepted, "{stranger:?}");

    let out = c
        .git(
            &ALICE_ED25519,
            None,
            &["ls-remote", &url(&sim, "cloud-ssh", "bob", "acme/app.git")],
        )
        .await;
    assert!(
        out.stderr.contains("Permission denied (publickey)"),
        "{out:?}"
    );
    let bob = auths(&sim, &ALICE_ED25519);
    assert!(
        !bob.is_empty() && bob.iter().all(|a| a.user == "bob" && !a.accepted),
        "{bob:?}"
    );
    assert!(execs(&sim).is_empty());
}

#[tokio::test]
async fn retired_rsa_host_key_fails_verification() {
    let sim = common::start(&fixture()).await;
    let rsa: Vec<String> = published_host_keys(Flavor::Cloud)
        .into_iter()
        .filter(|k| k.starts_with("ssh-rsa "))
        .collect();
    assert_eq!(rsa.len(), 1);
    let mut lines = Vec::new();
    for l in ["cloud-ssh", "cloud-ssh-retired"] {
        lines.extend(known_hosts_lines("127.0.0.1", sim.addr(l).port(), &rsa));
        assert_eq!(sim.running.ssh_host_keys(l).len(), 3);
    }
    let c = Client::with_known_hosts(&lines);
    let pin = ["-o", "HostKeyAlgorithms=ssh-rsa"];
    let cmd = ["git-upload-pack 'acme/app.git'"];
    let out = c
        .ssh(
            &ALICE_ED25519,
            sim.addr("cloud-ssh").port(),
            &pin,
            "git@127.0.0.1",
            &cmd,
        )
        .await;
    assert_eq!(out.code, Some(0), "the current key verifies: {out:?}");
    let out = c
        .ssh(
            &ALICE_ED25519,
            sim.addr("cloud-ssh-retired").port(),
            &pin,
            "git@127.0.0.1",
            &cmd,
        )
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("Host key verification failed."),
        "{out:?}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn datacenter_over_ssh() {
    let sim = common::start(&fixture()).await;
    let c = Client::new(&sim, &["dc-ssh"]);
    let port = sim.addr("dc-ssh").port();
    let out = c
        .git(
            &ALICE_ED25519,
            None,
            &["ls-remote", &url(&sim, "dc-ssh", "git", "proj/app.git")],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("\trefs/heads/master\n"), "{out:?}");

    let out = c
        .git(
            &ALICE_ED25519,
            None,
            &["ls-remote", &url(&sim, "dc-ssh", "git", "PROJ/nope.git")],
        )
        .await;
    assert!(out.stderr.contains("Repository not found\nThe requested repository does not exist, or you do not have permission to access it.\n"), "{out:?}");

    let repo = c.repo().await;
    let app = url(&sim, "dc-ssh", "git", "PROJ/app.git");
    let push = ["push", "--dry-run", &app, "HEAD:refs/heads/sim-dry-run"];
    let out = c.git(&DEPLOY_RSA, Some(&repo), &push).await;
    assert_eq!(out.code, Some(0), "project key, read/write: {out:?}");
    let out = c.git(&BOB_ED25519, Some(&repo), &push).await;
    assert!(
        out.stderr
            .contains("You are not permitted to access this resource"),
        "{out:?}"
    );

    let out = c
        .ssh(&ALICE_ED25519, port, &[], "git@127.0.0.1", &["whoami"])
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "alice\n"),
        "{out:?}"
    );
    let out = c
        .ssh(&ALICE_ED25519, port, &[], "git@127.0.0.1", &["ls", "/"])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    let out = c
        .ssh(&ALICE_ED25519, port, &["-T"], "git@127.0.0.1", &[])
        .await;
    assert_ne!(out.code, Some(0), "{out:?}");
    let events = sim.running.ssh_events();
    assert!(events.iter().any(|e| matches!(&e.kind, SshEventKind::Exec { command, answer: ExecAnswer::NotRun } if command == "ls /")), "{events:?}");
    assert!(events.iter().any(|e| matches!(&e.kind, SshEventKind::ChannelRequest { request, .. } if request == "shell")), "{events:?}");

    // The REST answer's ssh clone link names the listener's port.
    let r = sim
        .plain("dc")
        .await
        .get(
            "/rest/api/latest/projects/PROJ/repos/app",
            Some(&basic("alice", "alice-pw")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let clone = r.json()["links"]["clone"].clone();
    let ssh = clone
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "ssh")
        .unwrap();
    assert_eq!(
        ssh["href"],
        format!("ssh://git@localhost:{port}/proj/app.git")
    );
}

struct AcceptAny;

impl russh::client::Handler for AcceptAny {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Counts requests to sign: a refused key must never get that far.
struct NeverSign(usize);

impl russh::Signer for NeverSign {
    type Error = russh::SendError;

    async fn auth_sign(
        &mut self,
        _key: &russh::keys::agent::AgentIdentity,
        _hash_alg: Option<russh::keys::HashAlg>,
        _to_sign: Vec<u8>,
    ) -> Result<Vec<u8>, Self::Error> {
        self.0 += 1;
        Err(russh::SendError {})
    }
}

#[tokio::test]
async fn russh_offer_without_signature() {
    let sim = common::start(&fixture()).await;
    let config = Arc::new(russh::client::Config::default());
    let connect = russh::client::connect(config, sim.addr("cloud-ssh"), AcceptAny);
    let mut handle = tokio::time::timeout(WAIT, connect).await.unwrap().unwrap();
    let stranger = russh::keys::PublicKey::from_openssh(STRANGER_ED25519.public_line()).unwrap();
    let mut signer = NeverSign(0);
    let offer = handle.authenticate_publickey_with("git", stranger, None, &mut signer);
    let result = tokio::time::timeout(WAIT, offer).await.unwrap().unwrap();
    assert!(!result.success());
    assert_eq!(signer.0, 0);
    let seen = auths(&sim, &STRANGER_ED25519);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(!seen[0].signed && !seen[0].accepted);

    // The encrypted key, unlocked with its passphrase, is bob's.
    let key = ENCRYPTED_ED25519.private_key().unwrap();
    let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), None);
    let auth = handle.authenticate_publickey("git", key);
    assert!(
        tokio::time::timeout(WAIT, auth)
            .await
            .unwrap()
            .unwrap()
            .success()
    );
    let bob = auths(&sim, &ENCRYPTED_ED25519);
    assert_eq!(
        bob.iter()
            .map(|a| (a.signed, a.accepted))
            .collect::<Vec<_>>(),
        [(false, true), (true, true)]
    );
}

#[test]
fn binary_prints_ssh_host_keys() {
    use std::io::{BufRead, BufReader};
    let dir = Scratch::new();
    let fixture = dir.0.join("fixture.yaml");
    std::fs::write(
        &fixture,
        "listeners:\n  - { name: dc-ssh, kind: ssh, serves: [datacenter] }\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bbconn-sim"))
        .arg("--fixture")
        .arg(&fixture)
        .arg("--pki-dir")
        .arg(dir.0.join("pki"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let out: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(
        out["listeners"]["dc-ssh"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let keys = out["sshHostKeys"]["dc-ssh"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0], published_host_keys(Flavor::Datacenter)[0]);
    assert!(keys[0].as_str().unwrap().starts_with("ssh-rsa "));
}

#[tokio::test]
async fn fixture_mistakes_are_refused() {
    let stranger = STRANGER_ED25519.public_line();
    for (yaml, needle) in [
        (
            "listeners: [{ name: s, kind: ssh }]".to_owned(),
            "serves one flavour",
        ),
        (
            "listeners: [{ name: s, kind: ssh, serves: [datacenter], retiredRsaHostKey: true }]"
                .to_owned(),
            "retiredRsaHostKey",
        ),
        (
            "cloud: { users: [{ username: a, email: a@x, sshKeys: [\"ssh-ed25519 nope\"] }] }"
                .to_owned(),
            "not an OpenSSH public key line",
        ),
        (
            format!(
                "cloud:\n  users:\n    - {{ username: a, email: a@x, sshKeys: [\"{stranger}\"] }}\n    - {{ username: b, email: b@x, sshKeys: [\"{stranger}\"] }}\n"
            ),
            "already registered",
        ),
    ] {
        let fixture = bbconn_sim::Fixture::from_yaml(&yaml).unwrap();
        let err = bbconn_sim::Simulator::start(fixture, &bbconn_sim::Pki::new())
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{yaml}: {err}");
    }
    let sim = common::start(&fixture()).await;
    assert!(sim.running.ssh_host_keys("dc").is_empty());
    assert!(sim.running.ssh_host_keys("nope").is_empty());
}
