//! A real kube-apiserver and etcd for the end-to-end tests, started by the project's own scripts
//! (tests/controlplane), on ports of their own, torn down when dropped. And the operator, run as
//! the binary users run, under the deploy/ ServiceAccount's RBAC.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use kube::{Client, Config};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Cluster {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    env: Vec<(String, String)>,
    /// (component, offset of its log where its last restart began), for failure messages.
    restarted_logs: std::sync::Mutex<Vec<(String, u64)>>,
}

impl Cluster {
    /// Builds (once, cached outside the repo) and starts etcd and kube-apiserver.
    pub fn start(name: &str) -> Cluster {
        let dir = repo()
            .join("target")
            .join(format!("e2e-{name}-{}", std::process::id()));
        let env = vec![
            ("BBCONN_CLUSTER_DIR".to_string(), dir.display().to_string()),
            ("BBCONN_ETCD_PORT".to_string(), free_port().to_string()),
            ("BBCONN_ETCD_PEER_PORT".to_string(), free_port().to_string()),
            ("BBCONN_APISERVER_PORT".to_string(), free_port().to_string()),
        ];
        let out = Command::new("bash")
            .arg(repo().join("tests/controlplane/up.sh"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("tests/controlplane/up.sh runs");
        assert!(
            out.status.success(),
            "the local control plane did not start:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            kubeconfig: dir.join("kubeconfig"),
            dir,
            env,
            restarted_logs: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub async fn client(&self) -> Client {
        client_from(&self.kubeconfig).await
    }

    /// A kubeconfig that authenticates as a ServiceAccount, with a token from the TokenRequest API.
    pub async fn service_account_kubeconfig(&self, admin: &Client, ns: &str, sa: &str) -> PathBuf {
        let tr = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
            .create_token_request(
                sa,
                &PostParams::default(),
                &TokenRequest {
                    spec: TokenRequestSpec {
                        audiences: vec![],
                        expiration_seconds: Some(3600),
                        ..TokenRequestSpec::default()
                    },
                    ..TokenRequest::default()
                },
            )
            .await
            .expect("a ServiceAccount token");
        let token = tr.status.expect("token status").token;
        let mut kc: serde_json::Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&self.kubeconfig).unwrap()).unwrap();
        kc["users"] = serde_json::json!([{"name": "sa", "user": {"token": token}}]);
        for ctx in kc["contexts"].as_array_mut().unwrap() {
            ctx["context"]["user"] = serde_json::json!("sa");
        }
        let path = self.dir.join(format!("kubeconfig-{sa}"));
        std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
        path
    }
}

/// kube-controller-manager running only the garbage collector, as a cluster deletes the
/// dependents of a deleted owner. Stopped when dropped.
pub struct GarbageCollector {
    child: Child,
}

impl Drop for GarbageCollector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cluster {
    /// Builds (once, cached beside kube-apiserver, from the same pinned k8s.io/kubernetes) and
    /// starts kube-controller-manager with the garbage collector alone. It learns the API's
    /// resources at start and every 30 s: start it after the CRDs whose objects it collects.
    pub fn start_garbage_collector(&self) -> GarbageCollector {
        let out = Command::new("bash")
            .arg(repo().join("tests/controlplane/build.sh"))
            .env("BBCONN_BUILD_KCM", "1")
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("tests/controlplane/build.sh runs");
        assert!(
            out.status.success(),
            "kube-controller-manager did not build"
        );
        let bin = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
            .join("kube-controller-manager");
        let log = std::fs::File::create(self.dir.join("kube-controller-manager.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args([
                "--controllers=garbagecollector",
                "--leader-elect=false",
                // Nothing scrapes it here: no serving port, no delegated authentication.
                "--secure-port=0",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("kube-controller-manager starts");
        GarbageCollector { child }
    }
}

/// A component of the control plane stopped by [`Cluster::kill`], to be started again.
pub struct Stopped {
    name: String,
    cmdline: Vec<String>,
    ports: Vec<u16>,
}

/// The last `n` lines of `path` from byte `from` on (what one start of a process wrote).
fn log_tail(path: &Path, from: u64, n: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let from = usize::try_from(from).unwrap_or(0).min(text.len());
    let text = String::from_utf8_lossy(&text[from..]);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether every thread of `pid` has exited. A thread-group leader shows state Z as soon as its
/// own thread is gone, while the process's other threads may still be exiting and still hold its
/// files, its listening sockets among them: only an empty (or reaped) thread list means gone.
fn exited(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| d.count())
        .unwrap_or(0);
    zombie && threads <= 1
}

/// Whether nothing listens on 127.0.0.1:`port` (std binds with SO_REUSEADDR, as Go does, so
/// only a listening socket makes this fail, not connections in TIME_WAIT).
fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn listening(port: u16) -> bool {
    TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    )
    .is_ok()
}

impl Cluster {
    fn env_of(&self, key: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    fn pid_of(&self, name: &str) -> u32 {
        std::fs::read_to_string(self.dir.join(format!("{name}.pid")))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The ports a component listens on.
    fn ports_of(&self, name: &str) -> Vec<u16> {
        let keys: &[&str] = match name {
            "kube-apiserver" => &["BBCONN_APISERVER_PORT"],
            "etcd" => &["BBCONN_ETCD_PORT", "BBCONN_ETCD_PEER_PORT"],
            other => panic!("no such component: {other}"),
        };
        keys.iter()
            .map(|k| self.env_of(k).parse().unwrap())
            .collect()
    }

    /// SIGKILLs `kube-apiserver` or `etcd`, as a crash or a node loss would, and returns once
    /// every thread of it has exited and its ports are free, so it can be started again at once.
    pub fn kill(&self, name: &str) -> Stopped {
        let pid = self.pid_of(name);
        let cmdline: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap()
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let ports = self.ports_of(name);
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(exited(pid) && ports.iter().all(|p| port_free(*p))) {
            assert!(
                Instant::now() < deadline,
                "{name} (pid {pid}) still holds its threads or ports {ports:?} 30 s after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Stopped {
            name: name.to_string(),
            cmdline,
            ports,
        }
    }

    /// Starts a killed component again, with the same arguments and data, and returns once it
    /// listens on its ports; if it exits instead (or never listens), panics with its log.
    pub fn restart(&self, stopped: Stopped) {
        use std::os::unix::process::CommandExt;
        let log_path = self.dir.join(format!("{}.log", stopped.name));
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log_path)
            .unwrap();
        let from = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(&stopped.cmdline[0])
            .args(&stopped.cmdline[1..])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap();
        std::fs::write(
            self.dir.join(format!("{}.pid", stopped.name)),
            child.id().to_string(),
        )
        .unwrap();
        let name = &stopped.name;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "{name} exited ({status}) instead of starting again; its log since the restart:\n{}",
                    log_tail(&log_path, from, 30)
                );
            }
            if stopped.ports.iter().all(|p| listening(*p)) {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "{name} did not listen on {:?} within 60 s of its restart; its log since:\n{}",
                    stopped.ports,
                    log_tail(&log_path, from, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.restarted_logs
            .lock()
            .unwrap()
            .push((stopped.name.clone(), from));
        // Reaped when it exits (down.sh stops it), so it leaves no zombie behind.
        std::thread::spawn(move || child.wait());
    }

    /// Waits until the API server answers again (after a restart); if it does not, panics with
    /// what the control plane's processes last wrote.
    pub async fn wait_ready(&self) {
        let client = self.client().await;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            match client.apiserver_version().await {
                Ok(_) => return,
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut logs = String::new();
        for name in ["kube-apiserver", "etcd"] {
            let from = self
                .restarted_logs
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, from)| *from);
            let pid = self.pid_of(name);
            logs.push_str(&format!(
                "\n--- {name} (pid {pid}, {}), its log since its last start:\n{}",
                if exited(pid) { "exited" } else { "running" },
                log_tail(&self.dir.join(format!("{name}.log")), from, 30)
            ));
        }
        panic!("the API server did not come back within 60 s (last error: {last}){logs}");
    }

    /// Compacts etcd's history up to now, so a watch resuming from an older resourceVersion
    /// gets 410 Gone and must relist.
    pub fn compact_etcd(&self) {
        let port = self.env_of("BBCONN_ETCD_PORT");
        let curl = |path: &str, body: &str| {
            let out = Command::new("curl")
                .args(["-fsS", "-X", "POST", "--max-time", "10"])
                .arg(format!("http://127.0.0.1:{port}{path}"))
                .args(["-d", body])
                .output()
                .unwrap();
            assert!(out.status.success(), "etcd {path}: {out:?}");
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
        };
        let range = curl("/v3/kv/range", r#"{"key":"Lw=="}"#);
        let rev = range["header"]["revision"].as_str().unwrap().to_string();
        curl(
            "/v3/kv/compaction",
            &format!(r#"{{"revision":"{rev}","physical":true}}"#),
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("tests/controlplane/down.sh"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

pub async fn client_from(kubeconfig: &Path) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// deploy/'s install without the workload: the namespace, ServiceAccount and RBAC the operator
/// runs under in the tests.
pub fn deploy_rbac() -> String {
    let deploy = std::fs::read_to_string(repo().join("deploy/10-bbconn.yaml")).unwrap();
    let docs: Vec<&str> = deploy
        .split("\n---\n")
        .filter(|d| !d.contains("kind: Deployment") && !d.contains("kind: Service\n"))
        .collect();
    docs.join("\n---\n")
}

/// Server-side applies every document of `yaml`, as `kubectl apply --server-side` would.
pub async fn apply(client: &Client, yaml: &str) {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    for doc in docs.into_iter().filter(|d| !d.is_null()) {
        let obj: DynamicObject = serde_json::from_value(doc.clone()).unwrap();
        let types = obj.types.clone().expect("apiVersion and kind");
        let gvk = GroupVersionKind::try_from(&types).unwrap();
        let (ar, caps) = pinned_kind(client, &gvk)
            .await
            .unwrap_or_else(|e| panic!("discovery of {gvk:?}: {e}"));
        let name = obj.metadata.name.clone().unwrap();
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Cluster => Api::all_with(client.clone(), &ar),
            Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                obj.metadata.namespace.as_deref().unwrap_or("default"),
                &ar,
            ),
        };
        api.patch(
            &name,
            &PatchParams::apply("bbconn-e2e").force(),
            &Patch::Apply(&doc),
        )
        .await
        .unwrap_or_else(|e| panic!("applying {} {name}: {e}", types.kind));
    }
}

/// The operator, as its users run it.
pub struct Operator {
    child: Child,
    pub metrics: SocketAddr,
    pub log: PathBuf,
}

impl Operator {
    pub fn start(kubeconfig: &Path, identity: &str, dir: &Path, flags: &[String]) -> Operator {
        let metrics: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = dir.join(format!("operator-{identity}.log"));
        let file = std::fs::File::create(&log).unwrap();
        // BBCONN_OPERATOR_WRAP="heaptrack -o /tmp/op" profiles the operator in a benchmark.
        let wrap: Vec<String> = std::env::var("BBCONN_OPERATOR_WRAP")
            .map(|w| w.split_whitespace().map(String::from).collect())
            .unwrap_or_default();
        let (program, pre) = match wrap.split_first() {
            Some((p, rest)) => (
                p.clone(),
                [rest, &[env!("CARGO_BIN_EXE_bbconn").to_string()]].concat(),
            ),
            None => (env!("CARGO_BIN_EXE_bbconn").to_string(), Vec::new()),
        };
        let child = Command::new(program)
            .args(pre)
            .arg("run")
            .arg(format!("--metrics-addr={metrics}"))
            .arg(format!("--identity={identity}"))
            .arg("--lease-namespace=bbconn-system")
            .args(
                (!flags.iter().any(|f| f.starts_with("--lease-duration")))
                    .then_some("--lease-duration=4"),
            )
            .args(flags)
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "debug")
            .env_remove("POD_NAMESPACE")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("bbconn run starts");
        Operator {
            child,
            metrics,
            log,
        }
    }

    /// GET on the operator's HTTP port; None while it does not answer.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut s = TcpStream::connect_timeout(&self.metrics, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.split_whitespace().nth(1)?.parse().ok()?;
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Some((status, body))
    }

    pub fn metric(&self, line_prefix: &str) -> Option<f64> {
        let (_, body) = self.get("/metrics")?;
        body.lines()
            .find(|l| l.starts_with(line_prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait for it to exit (graceful shutdown releases the Lease).
    pub fn stop(&mut self) -> Option<i32> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        None
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until `f` returns Some, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last seen: {last}");
}

/// A control plane with bbconn installed as deploy/ installs it (the CRD, the RBAC), a namespace
/// holding the world's CA bundle, and the simulator: what every end-to-end test starts from.
pub struct Installed {
    pub cluster: Cluster,
    pub admin: Client,
    pub world: super::World,
    /// The kubeconfig of bbconn's ServiceAccount.
    pub sa: PathBuf,
    pub api: Api<bbconn::api::BitbucketConnection>,
}

impl Installed {
    pub async fn new(name: &str, ns: &str) -> Installed {
        let cluster = Cluster::start(name);
        let admin = cluster.client().await;
        let world = super::World::start().await;
        let crd = std::fs::read_to_string(repo().join("crds/bbconn.dev_bitbucketconnections.yaml"))
            .expect("crds/ holds the CRD");
        apply(&admin, &crd).await;
        apply(&admin, &deploy_rbac()).await;
        apply(
            &admin,
            &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n"),
        )
        .await;
        apply(&admin, &world.ca_configmap(ns)).await;
        let api: Api<bbconn::api::BitbucketConnection> = Api::namespaced(admin.clone(), ns);
        eventually(Duration::from_secs(30), "the CRD to be served", || async {
            api.list(&kube::api::ListParams::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await;
        let sa = cluster
            .service_account_kubeconfig(&admin, "bbconn-system", "bbconn")
            .await;
        Installed {
            cluster,
            admin,
            world,
            sa,
            api,
        }
    }
}
