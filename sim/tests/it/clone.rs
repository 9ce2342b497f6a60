//! Real `git clone` and `git fetch` against the simulator's packs: over HTTPS (smart HTTP,
//! stateless) and over SSH (OpenSSH, one stream), with credentials that may read and with
//! refused ones. A clone must be whole: `git fsck --strict` passes, README.md names the
//! repository, and every ref the advertisement names arrived.

use std::path::Path;

use bbconn_sim::ssh::{ALICE_ED25519, DEPLOY_ED25519, STRANGER_ED25519};

use crate::common::{self, FIXTURE, Sim, basic};
use crate::ssh::{self as sshtest, Client, Out, url};

/// git over HTTPS to a listener, trusting the simulator's CA, `host` resolved to loopback.
struct Https<'a> {
    client: Client,
    sim: &'a Sim,
    listener: &'a str,
    host: &'a str,
}

impl<'a> Https<'a> {
    fn new(sim: &'a Sim, listener: &'a str, host: &'a str) -> Https<'a> {
        let client = Client::new(sim, &[]);
        std::fs::write(client.dir().join("ca.pem"), sim.pki.ca_pem()).unwrap();
        Https {
            client,
            sim,
            listener,
            host,
        }
    }

    /// The clone URL with a credential in it, as a consumer configures one.
    fn url(&self, user: &str, secret: &str, path: &str) -> String {
        let port = self.sim.addr(self.listener).port();
        format!("https://{user}:{secret}@{}:{port}{path}", self.host)
    }

    async fn git(&self, cwd: Option<&Path>, args: &[&str]) -> Out {
        let port = self.sim.addr(self.listener).port();
        let ca = format!(
            "http.sslCAInfo={}",
            self.client.dir().join("ca.pem").display()
        );
        let resolve = format!("http.curloptResolve={}:{port}:127.0.0.1", self.host);
        let mut all = vec![
            "-c",
            ca.as_str(),
            "-c",
            resolve.as_str(),
            "-c",
            "credential.helper=",
        ];
        all.extend_from_slice(args);
        // The key is for GIT_SSH_COMMAND, which HTTPS never runs.
        self.client.git(&ALICE_ED25519, cwd, &all).await
    }
}

/// Checks a fresh clone in `dir`: fsck, README, HEAD on `branch`, the other refs, and returns
/// HEAD's commit.
async fn check_clone(client: &Client, dir: &Path, name: &str, branch: &str) -> String {
    let git = async |args: &[&str]| client.git(&ALICE_ED25519, Some(dir), args).await;
    let fsck = git(&["fsck", "--strict", "--no-dangling"]).await;
    assert_eq!(fsck.code, Some(0), "{fsck:?}");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.starts_with(&format!("# {name}\n")), "{readme}");
    let head = git(&["symbolic-ref", "HEAD"]).await;
    assert_eq!(
        head.stdout.trim(),
        format!("refs/heads/{branch}"),
        "{head:?}"
    );
    let refs = git(&["for-each-ref", "--format=%(objectname) %(refname)"]).await;
    let commit = git(&["rev-parse", "HEAD"]).await.stdout.trim().to_owned();
    assert_eq!(commit.len(), 40, "{refs:?}");
    for r in ["refs/remotes/origin/develop", "refs/tags/v1.0.0"] {
        assert!(
            refs.stdout.contains(&format!("{commit} {r}\n")),
            "{r}: {refs:?}"
        );
    }
    let log = git(&["log", "--format=%an <%ae> %at %s"]).await;
    assert_eq!(
        log.stdout,
        format!("bbconn-sim <bbconn-sim@example.com> 1704067200 The fixture repository {name}\n")
    );
    commit
}

#[tokio::test]
async fn https_clone_of_both_flavours() {
    let sim = common::start_default().await;
    let dc = Https::new(&sim, "dc", "bitbucket.internal");
    let url = dc.url("alice", "alice-pw", "/scm/proj/app.git");
    let out = dc.git(None, &["clone", "-q", &url, "dc-app"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let dir = dc.client.dir().join("dc-app");
    let commit = check_clone(&dc.client, &dir, "PROJ/app", "master").await;
    // The advertisement names the same commit, and the same one every time.
    let ls = dc.git(None, &["ls-remote", &url]).await;
    assert!(ls.stdout.contains(&format!("{commit}\tHEAD\n")), "{ls:?}");
    // A read-only credential clones too (alice may only read docs).
    let docs = dc.url("alice", "alice-pw", "/scm/PROJ/docs.git");
    let out = dc.git(None, &["clone", "-q", &docs, "dc-docs"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let other = check_clone(
        &dc.client,
        &dc.client.dir().join("dc-docs"),
        "PROJ/docs",
        "master",
    )
    .await;
    assert_ne!(commit, other, "each repository has a commit of its own");

    // Cloud: an API token with read:repository, a shallow clone as Flux and Argo CD make.
    let cloud = Https::new(&sim, "cloud", "bitbucket.org");
    let url = cloud.url(
        "x-bitbucket-api-token-auth",
        "ATATT-alice-good",
        "/acme/app.git",
    );
    let out = cloud
        .git(
            None,
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--no-single-branch",
                &url,
                "app",
            ],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let dir = cloud.client.dir().join("app");
    check_clone(&cloud.client, &dir, "acme/app", "main").await;
    let shallow = cloud
        .git(Some(&dir), &["rev-parse", "--is-shallow-repository"])
        .await;
    assert_eq!(shallow.stdout.trim(), "true", "{shallow:?}");
    // --unshallow deepens: the one commit was whole all along.
    let out = cloud.git(Some(&dir), &["fetch", "-q", "--unshallow"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let shallow = cloud
        .git(Some(&dir), &["rev-parse", "--is-shallow-repository"])
        .await;
    assert_eq!(shallow.stdout.trim(), "false", "{shallow:?}");
    // A public repository needs no credential at all.
    let port = sim.addr("cloud").port();
    let public = format!("https://bitbucket.org:{port}/acme/site.git");
    let out = cloud.git(None, &["clone", "-q", &public, "site"]).await;
    assert_eq!(out.code, Some(0), "{out:?}");

    let posts: Vec<_> = sim
        .running
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| (r.path, r.status))
        .collect();
    assert!(
        posts.contains(&("/scm/proj/app.git/git-upload-pack".into(), 200)),
        "{posts:?}"
    );
    assert!(
        posts.contains(&("/acme/app.git/git-upload-pack".into(), 200)),
        "{posts:?}"
    );
}

#[tokio::test]
async fn https_refused_credentials_get_no_pack() {
    let sim = common::start_default().await;
    let dc = Https::new(&sim, "dc", "bitbucket.internal");
    let cloud = Https::new(&sim, "cloud", "bitbucket.org");
    for (git, url, said) in [
        (
            &dc,
            dc.url("alice", "wrong", "/scm/proj/app.git"),
            "Authentication failed",
        ),
        // Bob may not read PROJ/docs: Data Center says it does not exist.
        (
            &dc,
            dc.url("Bob", "bob-pw", "/scm/proj/docs.git"),
            "not found",
        ),
        (
            &cloud,
            cloud.url(
                "x-bitbucket-api-token-auth",
                "ATATT-alice-revoked",
                "/acme/app.git",
            ),
            "",
        ),
        // A token without read:repository.
        (
            &cloud,
            cloud.url(
                "x-bitbucket-api-token-auth",
                "ATATT-alice-write-only",
                "/acme/app.git",
            ),
            "",
        ),
    ] {
        let out = git.git(None, &["clone", "-q", &url, "refused"]).await;
        assert_ne!(out.code, Some(0), "{url}: {out:?}");
        assert!(out.stderr.contains(said), "{url}: {out:?}");
        assert!(!git.client.dir().join("refused").exists(), "{url}");
    }
    assert!(
        sim.running
            .requests()
            .iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.status != 200),
        "a refused credential got a pack: {:?}",
        sim.running.requests()
    );

    // The POST itself is authorized as the advertisement is, whatever the client sent first.
    let mut c = sim.conn("dc", "bitbucket.internal").await;
    let path = "/scm/proj/app.git/git-upload-pack";
    let req = "0032want 0000000000000000000000000000000000000001\n00000009done\n";
    let r = c.post(path, None, UPLOAD_REQUEST, req).await;
    assert_eq!(r.status, 401, "{}", r.text());
    let alice = basic("alice", "alice-pw");
    let r = c
        .post(path, Some(&basic("alice", "wrong")), UPLOAD_REQUEST, req)
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    // A want of an object the repository does not have: an ERR pkt-line.
    let r = c.post(path, Some(&alice), UPLOAD_REQUEST, req).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/x-git-upload-pack-result")
    );
    assert_eq!(
        r.text(),
        "004aERR upload-pack: not our ref 0000000000000000000000000000000000000001\n"
    );
    let r = c.post(path, Some(&alice), "text/plain", req).await;
    assert_eq!(r.status, 415);
    // receive-pack still only advertises; a GET is not upload-pack's POST.
    let r = c
        .post(
            "/scm/proj/app.git/git-receive-pack",
            Some(&alice),
            "application/x-git-receive-pack-request",
            "0000",
        )
        .await;
    assert_eq!(r.status, 405);
    let r = c.get(path, Some(&alice)).await;
    assert_eq!(r.status, 405);
}

const UPLOAD_REQUEST: &str = "application/x-git-upload-pack-request";

/// A fetch into a repository with history of its own sends haves, in rounds, the later ones
/// gzipped (git compresses request bodies over 1 KiB).
#[tokio::test]
async fn https_fetch_with_haves_and_gzip() {
    let sim = common::start(FIXTURE).await;
    let dc = Https::new(&sim, "dc", "bitbucket.internal");
    let repo = dc.client.dir().join("local");
    let out = dc.git(None, &["init", "-q", repo.to_str().unwrap()]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    for i in 0..80 {
        let msg = format!("local {i}");
        let out = dc
            .git(
                Some(&repo),
                &[
                    "-c",
                    "user.name=t",
                    "-c",
                    "user.email=t@example.com",
                    "commit",
                    "-q",
                    "--allow-empty",
                    "-m",
                    &msg,
                ],
            )
            .await;
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let url = dc.url("alice", "alice-pw", "/scm/proj/app.git");
    let port = sim.addr("dc").port();
    let ca = format!(
        "http.sslCAInfo={}",
        dc.client.dir().join("ca.pem").display()
    );
    let resolve = format!("http.curloptResolve=bitbucket.internal:{port}:127.0.0.1");
    let mut cmd = tokio::process::Command::new("/usr/bin/git");
    cmd.args([
        "-c",
        ca.as_str(),
        "-c",
        resolve.as_str(),
        "fetch",
        url.as_str(),
        "master",
    ])
    .current_dir(&repo)
    .env("HOME", dc.client.dir())
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("GIT_TERMINAL_PROMPT", "0")
    .env_remove("GIT_SSL_CAINFO")
    .env("GIT_TRACE_CURL", "1")
    .env("GIT_TRACE_CURL_NO_DATA", "1")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Content-Encoding: gzip"),
        "no gzipped request: {stderr}"
    );
    let show = dc.git(Some(&repo), &["show", "FETCH_HEAD:README.md"]).await;
    assert!(show.stdout.starts_with("# PROJ/app\n"), "{show:?}");
    let fsck = dc
        .git(Some(&repo), &["fsck", "--strict", "--no-dangling"])
        .await;
    assert_eq!(fsck.code, Some(0), "{fsck:?}");
    let rounds = sim
        .running
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.status == 200)
        .count();
    assert!(rounds > 1, "the haves took one round only: {rounds}");
}

#[tokio::test]
async fn ssh_clone_of_both_flavours() {
    let sim = common::start(&sshtest::fixture()).await;
    let c = Client::new(&sim, &["cloud-ssh", "dc-ssh"]);
    // Cloud with a user's key, and shallow with a read-only access key.
    let app = url(&sim, "cloud-ssh", "git", "acme/app.git");
    let out = c
        .git(&ALICE_ED25519, None, &["clone", "-q", &app, "cloud-app"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let commit = check_clone(&c, &c.dir().join("cloud-app"), "acme/app", "main").await;
    let out = c
        .git(
            &DEPLOY_ED25519,
            None,
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--no-single-branch",
                &app,
                "shallow",
            ],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let again = check_clone(&c, &c.dir().join("shallow"), "acme/app", "main").await;
    assert_eq!(commit, again);
    // Data Center, the project key in lower case.
    let dc = url(&sim, "dc-ssh", "git", "proj/app.git");
    let out = c
        .git(&ALICE_ED25519, None, &["clone", "-q", &dc, "dc-app"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    check_clone(&c, &c.dir().join("dc-app"), "PROJ/app", "master").await;
    // An empty repository clones as git clones one: nothing to fetch.
    let fresh = url(&sim, "cloud-ssh", "git", "acme/fresh.git");
    let out = c
        .git(&ALICE_ED25519, None, &["clone", &fresh, "fresh"])
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("cloned an empty repository"), "{out:?}");
    // A fetch of what the clone has already: no pack needed, none asked for.
    let out = c
        .git(
            &ALICE_ED25519,
            Some(&c.dir().join("cloud-app")),
            &["fetch", "-q"],
        )
        .await;
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn ssh_refused_keys_get_no_pack() {
    let sim = common::start(&sshtest::fixture()).await;
    let c = Client::new(&sim, &["cloud-ssh", "dc-ssh"]);
    for (key, listener, path, said) in [
        (
            &STRANGER_ED25519,
            "cloud-ssh",
            "acme/app.git",
            "Permission denied",
        ),
        (
            &ALICE_ED25519,
            "cloud-ssh",
            "acme/secret.git",
            "conq: repository access denied.",
        ),
        (
            &ALICE_ED25519,
            "cloud-ssh",
            "acme/nope.git",
            "conq: repository does not exist.",
        ),
        (
            &DEPLOY_ED25519,
            "dc-ssh",
            "PROJ/app.git",
            "Permission denied",
        ),
    ] {
        let u = url(&sim, listener, "git", path);
        let out = c.git(key, None, &["clone", "-q", &u, "refused"]).await;
        assert_ne!(out.code, Some(0), "{u}: {out:?}");
        assert!(out.stderr.contains(said), "{u}: {out:?}");
        assert!(!c.dir().join("refused").exists(), "{u}");
    }
}
