//! Driving the real node as a person would: kubectl and helm inside its network namespace
//! (tests/node/lib.sh), with JSON read back. Nothing here talks to the API server in any other way.

use serde_json::Value;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Node {
    pub repo: PathBuf,
    netns: String,
    kubectl: PathBuf,
    helm: PathBuf,
    kubeconfig: PathBuf,
    helm_home: PathBuf,
}

fn bash_out(repo: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(repo)
        .stderr(Stdio::inherit())
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "`{script}` failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Node {
    /// The node tests/node/up.sh started (make node-test starts it first).
    pub fn running() -> Node {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let state = std::env::var("BBCONN_NODE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo.join("target/node"));
        let bin = bash_out(
            &repo,
            "BBCONN_BUILD_NODE=1 tests/controlplane/build.sh 2>/dev/null",
        );
        let helm = bash_out(&repo, "source tests/packaging/lib.sh && helm_bin");
        let node = Node {
            netns: std::env::var("BBCONN_NODE_NETNS").unwrap_or_else(|_| "bbconn-node".into()),
            kubectl: PathBuf::from(bin).join("kubectl"),
            helm: PathBuf::from(helm),
            kubeconfig: state.join("kubeconfig"),
            helm_home: state.join("helm"),
            repo,
        };
        let out = node.kubectl(&["get", "--raw", "/readyz"]);
        assert!(
            out.status.success(),
            "the node is not up (run `make node-up`, or `make node-test`): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        node
    }

    fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns]).arg(program);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", self.helm_home.join("cache"))
            .env("HELM_CONFIG_HOME", self.helm_home.join("config"))
            .env("HELM_DATA_HOME", self.helm_home.join("data"))
            .current_dir(&self.repo);
        c
    }

    /// kubectl ARGS in the background (a watch or a wait), its stdout piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.command(&self.kubectl)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubectl starts")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.command(&self.kubectl)
            .args(args)
            .output()
            .expect("kubectl runs")
    }

    /// kubectl ARGS, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// `kubectl apply -f -` with YAML on stdin.
    pub fn apply(&self, yaml: &str) {
        let mut child = self
            .command(&self.kubectl)
            .args(["apply", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "kubectl apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn helm(&self, args: &[&str]) -> Output {
        self.command(&self.helm)
            .args(args)
            .output()
            .expect("helm runs")
    }

    pub fn helm_ok(&self, args: &[&str]) -> String {
        let out = self.helm(args);
        assert!(
            out.status.success(),
            "helm {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// curl inside the node's namespace (Service and Pod addresses exist only there).
    pub fn curl(&self, url: &str) -> String {
        let out = self
            .command(Path::new("curl"))
            .args(["-fsS", "--max-time", "5", url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Polls `f` every 100 ms until it returns Some, or fails the test after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "{what}: not after {timeout:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Ready condition of a connection: (status, reason).
pub fn ready(conn: &Value) -> Option<(String, String)> {
    let conds = conn.pointer("/status/conditions")?.as_array()?;
    let c = conds.iter().find(|c| c["type"] == "Ready")?;
    Some((
        c["status"].as_str()?.to_string(),
        c["reason"].as_str().unwrap_or("").to_string(),
    ))
}

/// Whether a connection's status is about its current spec.
pub fn current(conn: &Value) -> bool {
    conn.pointer("/status/observedGeneration") == conn.pointer("/metadata/generation")
        && ready(conn).is_some()
}

/// The Pods of a label selector, with `phase`, `ready` and the container's restart count.
pub struct PodInfo {
    pub name: String,
    pub ip: String,
    pub ready: bool,
    pub restarts: u64,
    pub terminated_reasons: Vec<String>,
}

pub fn pods(node: &Node, ns: &str, selector: &str) -> Vec<PodInfo> {
    let list = node.json(&["get", "pods", "-n", ns, "-l", selector]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .map(|p| {
            let statuses = p
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            PodInfo {
                name: p["metadata"]["name"].as_str().unwrap().to_string(),
                ip: p
                    .pointer("/status/podIP")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                ready: !statuses.is_empty() && statuses.iter().all(|s| s["ready"] == true),
                restarts: statuses
                    .iter()
                    .map(|s| s["restartCount"].as_u64().unwrap_or(0))
                    .sum(),
                terminated_reasons: statuses
                    .iter()
                    .filter_map(|s| {
                        s.pointer("/lastState/terminated/reason")
                            .and_then(Value::as_str)
                            .map(String::from)
                    })
                    .collect(),
            }
        })
        .collect()
}
