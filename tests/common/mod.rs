//! The world the engine tests meet: the simulator on loopback with test-minted certificates,
//! and `bbconn check` run in-process with its network options pointing at it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

pub mod cluster;

use bbconn::cli::{CheckArgs, NetArgs, Output};
use bbconn_sim::{Fixture, Pki, Running, Simulator};
use serde_json::Value;
use std::io::Write;

pub struct World {
    pub sim: Running,
    pub pki: Pki,
    pub dir: tempfile::TempDir,
    /// A loopback port where nothing listens.
    pub closed_port: u16,
    /// A loopback port that accepts TCP and never speaks.
    pub silent_port: u16,
    _silent: tokio::task::JoinHandle<()>,
}

pub fn world_fixture() -> Fixture {
    let created = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(85 * 24);
    let yaml = include_str!("../fixtures/world.yaml")
        .replace("{{CREATED_85_DAYS_AGO}}", &created.to_string());
    Fixture::from_yaml(&yaml).expect("world fixture")
}

impl World {
    pub async fn start() -> World {
        World::start_with(world_fixture()).await
    }

    /// The world with another fixture (e.g. the world's plus a replayed answer).
    pub async fn start_with(fixture: Fixture) -> World {
        let pki = Pki::new();
        let sim = Simulator::start(fixture, &pki)
            .await
            .expect("simulator starts");
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let _silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        World {
            sim,
            pki,
            dir: tempfile::tempdir().unwrap(),
            closed_port,
            silent_port,
            _silent,
        }
    }

    pub fn port(&self, listener: &str) -> u16 {
        self.sim
            .addr(listener)
            .unwrap_or_else(|| panic!("no listener {listener}"))
            .port()
    }

    /// The network as the tests see it: every test host name maps to its listener, loopback is
    /// public except 127.0.0.2, which stands for a private address.
    pub fn net(&self) -> NetArgs {
        let good = self.port("good");
        let mut connect_to = vec![];
        for host in [
            "api.bitbucket.org",
            "bitbucket.org",
            "bitbucket.example.com",
        ] {
            connect_to.push(format!("{host}:443:127.0.0.1:{good}"));
        }
        for l in [
            "expired",
            "notyetvalid",
            "wronghost",
            "unknownca",
            "expiringsoon",
        ] {
            connect_to.push(format!("{l}.bitbucket.test:443:127.0.0.1:{}", self.port(l)));
        }
        connect_to.push(format!(
            "closed.bitbucket.test:443:127.0.0.1:{}",
            self.closed_port
        ));
        connect_to.push(format!(
            "silent.bitbucket.test:443:127.0.0.1:{}",
            self.silent_port
        ));
        connect_to.push(format!("proxy.infra:3128:127.0.0.1:{}", self.port("proxy")));
        connect_to.push(format!(
            "refusing-proxy.infra:3128:127.0.0.1:{}",
            self.port("refusing-proxy")
        ));
        connect_to.push(format!(
            "auth-proxy.infra:3128:127.0.0.1:{}",
            self.port("auth-proxy")
        ));
        connect_to.push(format!(
            "dead-proxy.infra:3128:127.0.0.1:{}",
            self.closed_port
        ));
        connect_to.push(format!(
            "bitbucket.example.com:7990:127.0.0.1:{}",
            self.port("plain")
        ));
        connect_to.push(format!(
            "proxied.bitbucket.test:443:127.0.0.1:{}",
            self.port("proxied")
        ));
        NetArgs {
            address_class: vec![
                "127.0.0.0/8=public".parse().unwrap(),
                "127.0.0.2/32=private".parse().unwrap(),
            ],
            resolve: vec![
                "private.bitbucket.test:443:127.0.0.2".parse().unwrap(),
                "bitbucket.internal:443:127.0.0.2".parse().unwrap(),
                "metadata.bitbucket.test:443:169.254.169.254"
                    .parse()
                    .unwrap(),
                "bitbucket.example.com:8443:127.0.0.1".parse().unwrap(),
            ],
            connect_to: connect_to.iter().map(|s| s.parse().unwrap()).collect(),
            deny_destination: vec![],
            connect_timeout: 2,
            request_timeout: 2,
            // Hermetic: the machine's HTTPS_PROXY does not apply to the tests.
            egress_proxy: Some(String::new()),
            no_proxy: None,
        }
    }

    /// The same network as command-line flags, for the binaries.
    pub fn net_flags(&self) -> Vec<String> {
        let net = self.net();
        let mut v = Vec::new();
        for c in &net.address_class {
            let class = if c.class == bbconn::transport::address::AddressClass::Public {
                "public"
            } else {
                "private"
            };
            v.push(format!("--address-class={}={class}", c.net));
        }
        for c in &net.connect_to {
            v.push(format!(
                "--connect-to={}:{}:{}:{}",
                c.host, c.port, c.to_host, c.to_port
            ));
        }
        for r in &net.resolve {
            let addrs: Vec<String> = r.addrs.iter().map(|a| a.to_string()).collect();
            v.push(format!(
                "--resolve={}:{}:{}",
                r.host,
                r.port,
                addrs.join(",")
            ));
        }
        v.push(format!("--connect-timeout={}", net.connect_timeout));
        v.push(format!("--request-timeout={}", net.request_timeout));
        v
    }

    /// The CA bundle ConfigMap every connection in `ns` can reference as `test-ca`.
    pub fn ca_configmap(&self, ns: &str) -> String {
        let pem = self.pki.ca_pem();
        let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
        format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: test-ca, namespace: {ns}}}\ndata:\n  ca.crt: |\n{indented}"
        )
    }

    /// Runs `bbconn check -o json` over `manifest`; returns the exit code, the parsed output
    /// (if any), and stdout and stderr as text.
    pub async fn check(&self, manifest: &str) -> Checked {
        self.check_with(manifest, self.net(), Output::Json).await
    }

    pub async fn check_with(&self, manifest: &str, net: NetArgs, output: Output) -> Checked {
        let path = self.dir.path().join(format!("m{}.yaml", rand_suffix()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        let args = CheckArgs {
            files: vec![path],
            output,
            namespace: "default".into(),
            concurrency: 64,
            net,
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = bbconn::cli::check(args, &mut out, &mut err).await;
        let stdout = String::from_utf8(out).unwrap();
        let stderr = String::from_utf8(err).unwrap();
        let json = serde_json::from_str(&stdout).ok();
        Checked {
            code,
            json,
            stdout,
            stderr,
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub struct Checked {
    pub code: i32,
    pub json: Option<Value>,
    pub stdout: String,
    pub stderr: String,
}

impl Checked {
    pub fn status(&self, name: &str) -> &Value {
        let items = self
            .json
            .as_ref()
            .and_then(Value::as_array)
            .expect("json output");
        &items
            .iter()
            .find(|i| i["name"] == name)
            .unwrap_or_else(|| panic!("no connection {name} in output:\n{}", self.stdout))["status"]
    }

    pub fn condition(&self, name: &str, type_: &str) -> (String, String, String) {
        let c = self.status(name)["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == type_)
            .cloned()
            .unwrap_or_else(|| panic!("{name} has no {type_} condition: {}", self.status(name)));
        (
            c["status"].as_str().unwrap().to_string(),
            c["reason"].as_str().unwrap().to_string(),
            c["message"].as_str().unwrap().to_string(),
        )
    }

    /// Every (check, cause) any connection shows, in its conditions and problems, that is not
    /// where the catalogue puts the cause: each cause is decided under the check it names.
    pub fn misplaced_causes(&self) -> Vec<String> {
        let mut out = Vec::new();
        for item in self
            .json
            .as_ref()
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let status = &item["status"];
            let mut pairs: Vec<(String, String)> = Vec::new();
            for c in status["conditions"].as_array().into_iter().flatten() {
                let t = c["type"].as_str().unwrap_or_default();
                if !matches!(t, "Ready" | "Stalled" | "Reconciling") {
                    pairs.push((t.into(), c["reason"].as_str().unwrap_or_default().into()));
                }
            }
            for p in status["problems"].as_array().into_iter().flatten() {
                pairs.push((
                    p["check"].as_str().unwrap_or_default().into(),
                    p["cause"].as_str().unwrap_or_default().into(),
                ));
            }
            for (check, cause) in pairs {
                let Some(c) = bbconn::catalogue::Cause::parse(&cause) else {
                    continue;
                };
                if let Some(want) = c.entry().check
                    && want.as_str() != check
                {
                    out.push(format!(
                        "{}: {cause} under {check}; the catalogue puts it under {want}",
                        item["name"]
                    ));
                }
            }
        }
        out
    }

    pub fn problems(&self, name: &str) -> Vec<(String, String, String)> {
        self.status(name)["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["check"].as_str().unwrap().to_string(),
                    p["cause"].as_str().unwrap().to_string(),
                    p["severity"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// A connection and its Secret, as YAML documents. `spec` is the YAML body of `spec:` (indented
/// by the caller's convention: two spaces).
pub fn connection(ns: &str, name: &str, spec: &str, secret: &[(&str, &str)]) -> String {
    let data: String = secret
        .iter()
        .map(|(k, v)| format!("  {k}: {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    // The Secret first, as a manifest applied in order would create it.
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}-cred, namespace: {ns}}}\nstringData:\n{data}---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n{spec}\n"
    )
}
