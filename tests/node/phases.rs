//! The steps of tests/node/main.rs, in order; each leaves the release installed for the next.

use crate::kube::{Node, current, eventually, pods, ready};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS: &str = "bbconn-system";
const OPERATOR: &str = "app.kubernetes.io/name=bbconn,app.kubernetes.io/component=operator";
const LEASE_DURATION: Duration = Duration::from_secs(15);

fn values(node: &Node) -> String {
    let out = Command::new("bash")
        .args(["tests/node/deploy.sh", "values"])
        .current_dir(&node.repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn operator_pods_ready(node: &Node, n: usize) -> Vec<crate::kube::PodInfo> {
    eventually(
        &format!("{n} operator Pods Ready"),
        Duration::from_secs(90),
        || {
            let p = pods(node, NS, &format!("{OPERATOR},!bbconn.dev/operator-shard"));
            (p.len() == n && p.iter().all(|p| p.ready)).then_some(p)
        },
    )
}

fn lease_holder(node: &Node, name: &str) -> Option<String> {
    let out = node.kubectl(&["get", "lease", name, "-n", NS, "-o", "json"]);
    if !out.status.success() {
        return None;
    }
    let lease: Value = serde_json::from_slice(&out.stdout).ok()?;
    lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str)
        .map(String::from)
}

fn connections(node: &Node, ns: &str) -> Vec<Value> {
    node.json(&["get", "bbconn", "-n", ns])["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn connection(node: &Node, ns: &str, name: &str) -> Value {
    node.json(&["get", "bbconn", name, "-n", ns])
}

/// Every connection of a namespace has a verdict about its current spec.
fn all_current(node: &Node, ns: &str, n: usize, timeout: Duration) -> Vec<Value> {
    eventually(
        &format!("{n} connections in {ns} with a current verdict"),
        timeout,
        || {
            let c = connections(node, ns);
            (c.len() == n && c.iter().all(current)).then_some(c)
        },
    )
}

fn metric_lines(text: &str, prefix: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .map(String::from)
        .collect()
}

pub fn install(node: &Node) {
    // A node left running by an earlier run: start from no release and no connections.
    node.helm_ok(&[
        "uninstall",
        "bbconn",
        "-n",
        NS,
        "--ignore-not-found",
        "--wait",
    ]);
    node.ok(&[
        "delete",
        "namespace",
        "demo",
        "load",
        NS,
        "--ignore-not-found",
        "--timeout=120s",
    ]);
    node.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NS}\n  labels:\n    \
         pod-security.kubernetes.io/enforce: restricted\n    \
         pod-security.kubernetes.io/enforce-version: latest\n"
    ));
    // The API server's own admission judges the namespace: a Pod without the restricted
    // profile's securityContext is refused.
    // (Retried until the namespace's default ServiceAccount exists: until then every Pod is
    // refused for want of it, which proves nothing.)
    let err = eventually("the Pod Security verdict", Duration::from_secs(30), || {
        let refused = node.kubectl(&[
            "run",
            "unrestricted",
            "-n",
            NS,
            "--image=localhost/pause:bbconn",
            "--image-pull-policy=Never",
        ]);
        let err = String::from_utf8_lossy(&refused.stderr).to_string();
        assert!(
            !refused.status.success(),
            "a Pod without the restricted profile was admitted"
        );
        (!err.contains("serviceaccount")).then_some(err)
    });
    assert!(
        err.contains("violates PodSecurity \"restricted:latest\""),
        "refused, but not by Pod Security: {err}"
    );

    let sim = Command::new("bash")
        .args(["tests/node/deploy.sh", "sim"])
        .current_dir(&node.repo)
        .status()
        .unwrap();
    assert!(sim.success(), "the simulator did not start as a Pod");

    let values = values(node);
    let start = Instant::now();
    node.helm_ok(&[
        "install",
        "bbconn",
        "charts/bbconn",
        "-n",
        NS,
        "-f",
        &values,
        "--wait",
        "--timeout",
        "120s",
    ]);
    let p = operator_pods_ready(node, 2);
    println!(
        "helm install: {} Pods Ready through the chart's probes {:.1} s after install",
        p.len(),
        start.elapsed().as_secs_f64()
    );
    // What the kubelet really ran: the chart's securityContext in force.
    let pod = node.json(&["get", "pod", &p[0].name, "-n", NS]);
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(pod["spec"]["securityContext"]["runAsUser"], 65532);
    let id = node.ok(&["exec", "-n", NS, &p[0].name, "--", "/bbconn", "--version"]);
    assert!(id.contains("bbconn"), "exec into the Pod: {id}");
}

pub fn verdicts(node: &Node) {
    node.ok(&["apply", "-f", "examples/"]);
    let n = connections(node, "demo").len();
    let start = Instant::now();
    let all = all_current(node, "demo", n, Duration::from_secs(120));
    println!(
        "{n} example connections checked by the Pods in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let verdict = |name: &str| {
        let c = all.iter().find(|c| c["metadata"]["name"] == name).unwrap();
        ready(c).unwrap()
    };
    for healthy in ["oci-platform", "ox-scanner", "flux-ssh-platform"] {
        assert_eq!(
            verdict(healthy).0,
            "True",
            "{healthy}: {:?}",
            verdict(healthy)
        );
    }
    assert_eq!(
        verdict("oci-revoked-token"),
        ("False".into(), "TokenRevoked".into())
    );
    assert_eq!(verdict("flux-ssh-read-only-push").1, "GitPushDenied");

    // A Secret rotation is seen within a second: `kubectl wait` watches from before the change.
    node.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: node-rotate, namespace: demo}\n\
         stringData: {token: BBDC-FAKE-demo-alice-revoked}\n---\n\
         apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\n\
         metadata: {name: node-rotate, namespace: demo}\nspec:\n  flavor: DataCenter\n  \
         url: https://bitbucket.example.com\n  \
         auth: {method: AccessToken, secretRef: {name: node-rotate}}\n  \
         tls: {caBundleRef: {kind: ConfigMap, name: bitbucket-ca}}\n",
    );
    eventually("node-rotate refused", Duration::from_secs(60), || {
        (ready(&connection(node, "demo", "node-rotate"))?.1 == "TokenRevoked").then_some(())
    });
    let mut wait = node.spawn(&[
        "wait",
        "--for=condition=Ready",
        "bbconn/node-rotate",
        "-n",
        "demo",
        "--timeout=30s",
    ]);
    std::thread::sleep(Duration::from_millis(500)); // the watch is open
    // Timed from before `kubectl apply` starts: an upper bound on what a person would see.
    let rotated = Instant::now();
    node.apply(
        "apiVersion: v1\nkind: Secret\nmetadata: {name: node-rotate, namespace: demo}\n\
         stringData: {token: BBDC-FAKE-demo-alice-admin}\n",
    );
    assert!(
        wait.wait().unwrap().success(),
        "node-rotate never turned Ready"
    );
    let took = rotated.elapsed();
    println!("Secret rotation to Ready: {} ms", took.as_millis());
    assert!(took < Duration::from_secs(1), "rotation took {took:?}");

    // /metrics through the chart's Service: the leader serves the connection gauges.
    let svc = node.json(&["get", "service", "bbconn-metrics", "-n", NS]);
    let url = format!(
        "http://{}:{}/metrics",
        svc["spec"]["clusterIP"].as_str().unwrap(),
        svc["spec"]["ports"][0]["port"]
    );
    let scraped = eventually(
        "the leader's gauges through the Service",
        Duration::from_secs(30),
        || {
            let text = node.curl(&url);
            text.contains(r#"bbconn_connection_ready{namespace="demo",name="oci-platform"} 1"#)
                .then_some(text)
        },
    );
    println!(
        "scraped {url}: {} bbconn_connection_ready series",
        metric_lines(&scraped, "bbconn_connection_ready{").len()
    );
}

fn fault(node: &Node, action: &str, name: &str) {
    let ok = Command::new("bash")
        .args(["tests/node/fault.sh", action, name])
        .current_dir(&node.repo)
        .status()
        .unwrap();
    assert!(ok.success(), "fault.sh {action} {name}");
}

/// The node's kubelet killed and started again: the operator's containers keep running and
/// checking without it (a changed spec is still answered), and are still the same containers
/// (no restart) once the kubelet is back.
pub fn kubelet_restart(node: &Node) {
    let before = operator_pods_ready(node, 2);
    fault(node, "kill", "kubelet");
    node.ok(&[
        "patch",
        "bbconn",
        "oci-platform",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        r#"{"spec":{"interval":"1m"}}"#,
    ]);
    let t = Instant::now();
    eventually(
        "a verdict on the new generation without a kubelet",
        Duration::from_secs(30),
        || current(&connection(node, "demo", "oci-platform")).then_some(()),
    );
    println!(
        "kubelet killed: a spec change answered in {} ms by the running Pods",
        t.elapsed().as_millis()
    );
    fault(node, "start", "kubelet");
    let t = Instant::now();
    node.ok(&[
        "wait",
        "--for=condition=Ready",
        "node/bbconn-node",
        "--timeout=60s",
    ]);
    let after = operator_pods_ready(node, 2);
    for p in &after {
        assert!(
            before.iter().any(|b| b.name == p.name),
            "{} is a new Pod",
            p.name
        );
        assert_eq!(p.restarts, 0, "{} restarted with the kubelet", p.name);
    }
    println!(
        "kubelet started again: node Ready, the same 2 Pods, 0 restarts ({} ms)",
        t.elapsed().as_millis()
    );
}

fn leader_metric(ip: &str) -> Option<f64> {
    let text = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            "bbconn-node",
            "curl",
            "-fsS",
            "--max-time",
            "0.3",
        ])
        .arg(format!("http://{ip}:8080/metrics"))
        .output()
        .ok()?;
    let text = String::from_utf8(text.stdout).ok()?;
    text.lines()
        .find(|l| l.starts_with("bbconn_leader"))?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()
}

pub fn leader_failover(node: &Node) {
    let before = operator_pods_ready(node, 2);
    let leader = eventually("a leader", Duration::from_secs(30), || {
        lease_holder(node, "bbconn-leader")
    });
    assert!(
        before.iter().any(|p| p.name == leader),
        "the Lease holder {leader} is a Pod"
    );
    let mut watch = node.spawn(&["get", "pods", "-n", NS, "-l", OPERATOR, "-w", "-o", "json"]);
    let deleted = Instant::now();
    let deleted_at = jiff::Timestamp::now();
    node.ok(&["delete", "pod", &leader, "-n", NS, "--wait=false"]);
    // Both Pods' bbconn_leader sampled through the handover (and 2 s past it): never two
    // leaders at once, so never two Pods writing status.
    let ips: Vec<_> = before.iter().map(|p| p.ip.clone()).collect();
    let mut samples = 0;
    let mut new_leader = None;
    let mut took = Duration::ZERO;
    while new_leader.is_none() || deleted.elapsed() < took + Duration::from_secs(2) {
        for _ in 0..5 {
            let leaders = ips
                .iter()
                .filter(|ip| leader_metric(ip) == Some(1.0))
                .count();
            assert!(leaders <= 1, "two Pods report bbconn_leader 1 at once");
            samples += 1;
        }
        if new_leader.is_none() {
            new_leader = lease_holder(node, "bbconn-leader").filter(|h| *h != leader);
            took = deleted.elapsed();
        }
        assert!(
            new_leader.is_some() || took < LEASE_DURATION,
            "no other Pod took the Lease"
        );
    }
    let new_leader = new_leader.unwrap();
    // The handover as the Lease records it (the sampling above is slower than the handover).
    let lease = node.json(&["get", "lease", "bbconn-leader", "-n", NS]);
    let acquired: jiff::Timestamp = lease["spec"]["acquireTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let handover = acquired.duration_since(deleted_at);
    println!(
        "leader {leader} deleted: {new_leader} acquired the Lease {} ms later ({samples} samples \
         of both Pods' bbconn_leader, never two)",
        handover.as_millis()
    );
    // The deleted Pod's container ended on SIGTERM with exit code 0.
    let exit = eventually("the old leader's exit", Duration::from_secs(40), || {
        terminated(&mut watch, &leader)
    });
    let _ = watch.kill();
    assert_eq!(exit, 0, "the container must exit cleanly on SIGTERM");
    println!("{leader}'s container exited with 0 on SIGTERM");
    operator_pods_ready(node, 2);
}

/// Reads a `kubectl get -w -o json` stream until POD shows a terminated container: its exit code.
fn terminated(watch: &mut Child, pod: &str) -> Option<i64> {
    use std::io::Read as _;
    let stdout = watch.stdout.as_mut()?;
    let mut buf = vec![0u8; 1 << 16];
    let n = stdout.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).to_string();
    TERMINATED.with(|acc| {
        let mut acc = acc.borrow_mut();
        acc.push_str(&text);
        serde_json::Deserializer::from_str(&acc)
            .into_iter::<Value>()
            .filter_map(Result::ok)
            .filter(|p| p["metadata"]["name"] == pod)
            .find_map(|p| {
                p.pointer("/status/containerStatuses/0/state/terminated/exitCode")
                    .and_then(Value::as_i64)
            })
    })
}

thread_local! {
    static TERMINATED: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

pub fn drain(node: &Node) {
    let before = operator_pods_ready(node, 2);
    let out = node.kubectl(&[
        "drain",
        "bbconn-node",
        "--pod-selector",
        OPERATOR,
        "--timeout=25s",
        "--delete-emptydir-data",
    ]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    node.ok(&["uncordon", "bbconn-node"]);
    assert!(
        !out.status.success() && text.contains("disruption budget"),
        "the drain must stop at the PodDisruptionBudget: {text}"
    );
    let after = pods(node, NS, OPERATOR);
    let kept = before
        .iter()
        .filter(|p| after.iter().any(|a| a.name == p.name && a.ready))
        .count();
    println!("kubectl drain evicted one Pod and was refused the other ({kept} kept Ready)");
    assert_eq!(kept, 1, "exactly one Pod must survive the drain");
    operator_pods_ready(node, 2);
}

/// Times (s since the epoch) the simulator served a path containing `needle`, from its log.
fn served(node: &Node, needle: &str) -> Vec<f64> {
    let log = node.ok(&[
        "logs",
        "-n",
        "bitbucket",
        "deployment/bitbucket-sim",
        "--timestamps",
    ]);
    log.lines()
        .filter(|l| l.contains("served") && l.contains(needle))
        .filter_map(|l| l.split(' ').next())
        .filter_map(|t| t.parse::<jiff::Timestamp>().ok())
        .map(|t| t.as_millisecond() as f64 / 1000.0)
        .collect()
}

pub fn upgrade(node: &Node) {
    // A connection checked every 2 s, on a path no other uses: its requests show every check.
    node.apply(
        "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\n\
         metadata: {name: heartbeat, namespace: demo}\nspec:\n  flavor: DataCenter\n  \
         url: https://bitbucket.example.com\n  interval: 2s\n  \
         auth: {method: AccessToken, secretRef: {name: oci-admin-token}}\n  \
         tls: {caBundleRef: {kind: ConfigMap, name: bitbucket-ca}}\n  \
         requirements: {repositories: [{name: PROJ/heartbeat}]}\n",
    );
    eventually("heartbeat checked", Duration::from_secs(30), || {
        current(&connection(node, "demo", "heartbeat")).then_some(())
    });
    let sock = node.repo.join("target/node/containerd/containerd.sock");
    let tag = Command::new("ip")
        .args(["netns", "exec", "bbconn-node", "ctr", "--address"])
        .arg(&sock)
        .args([
            "-n",
            "k8s.io",
            "images",
            "tag",
            "--force",
            "localhost/bbconn:dev",
            "localhost/bbconn:rebuilt",
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(tag.success());
    let old: Vec<_> = operator_pods_ready(node, 2)
        .into_iter()
        .map(|p| p.name)
        .collect();
    let started = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let t = Instant::now();
    helm_upgrade(node, "--set", "image.tag=rebuilt");
    let now = operator_pods_ready(node, 2);
    assert!(
        now.iter().all(|p| !old.contains(&p.name)),
        "every Pod replaced"
    );
    println!(
        "helm upgrade rolled both Pods in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(5));
    let times: Vec<f64> = served(node, "heartbeat")
        .into_iter()
        .filter(|&s| s >= started - 4.0)
        .collect();
    assert!(times.len() >= 3, "heartbeat requests seen: {times:?}");
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    println!(
        "heartbeat (interval 2 s): {} checks through the rollout, longest gap {gap:.2} s",
        times.len()
    );
    assert!(
        gap <= 4.0,
        "a gap of {gap:.2} s without a check (interval 2 s)"
    );
    node.ok(&["delete", "bbconn", "heartbeat", "-n", "demo"]);
}

/// `helm upgrade` of the release with one value changed (FLAG is --set or --set-json).
fn helm_upgrade(node: &Node, flag: &str, value: &str) {
    node.helm_ok(&[
        "upgrade",
        "bbconn",
        "charts/bbconn",
        "-n",
        NS,
        "--reuse-values",
        flag,
        value,
        "--wait",
        "--timeout",
        "120s",
    ]);
}

pub fn shard(node: &Node) {
    helm_upgrade(node, "--set", "shards={a}");
    node.apply(
        "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\n\
         metadata: {name: sharded, namespace: demo, labels: {bbconn.dev/shard: a}}\nspec:\n  \
         flavor: DataCenter\n  url: https://bitbucket.example.com\n  \
         auth: {method: AccessToken, secretRef: {name: oci-admin-token}}\n  \
         tls: {caBundleRef: {kind: ConfigMap, name: bitbucket-ca}}\n",
    );
    eventually("sharded Ready", Duration::from_secs(60), || {
        (ready(&connection(node, "demo", "sharded"))?.0 == "True").then_some(())
    });
    let shard_leader = eventually("shard a's leader", Duration::from_secs(30), || {
        lease_holder(node, "bbconn-leader-a")
    });
    let main_leader = lease_holder(node, "bbconn-leader").unwrap();
    let lease = node.json(&["get", "lease", "bbconn-leader-a", "-n", NS]);
    assert_eq!(
        lease
            .pointer("/metadata/ownerReferences/0/name")
            .and_then(Value::as_str),
        Some("bbconn-a"),
        "shard a's Lease is owned by its Deployment"
    );
    let shard_pods = pods(node, NS, "bbconn.dev/operator-shard=a");
    assert!(shard_pods.iter().any(|p| p.name == shard_leader && p.ready));
    let gauges = |pod: &str| {
        let ip = pods(node, NS, OPERATOR)
            .into_iter()
            .find(|p| p.name == pod)
            .unwrap()
            .ip;
        node.curl(&format!("http://{ip}:8080/metrics"))
    };
    // The connection gauges each leader serves: shard a's carry shard="a".
    let has = |text: &str, name: &str| {
        text.lines().any(|l| {
            l.starts_with("bbconn_connection_ready{") && l.contains(&format!("name=\"{name}\""))
        })
    };
    let (s, m) = (gauges(&shard_leader), gauges(&main_leader));
    assert!(
        has(&s, "sharded") && !has(&s, "oci-platform"),
        "shard a checks only its own"
    );
    assert!(
        has(&m, "oci-platform") && !has(&m, "sharded"),
        "the main Deployment skips shard a's"
    );
    println!("shard a ({shard_leader}) checks `sharded` alone; {main_leader} the rest");
    node.ok(&["delete", "bbconn", "sharded", "-n", "demo"]);
    helm_upgrade(node, "--set-json", "shards=[]");
    // Shard a's Lease went with its Deployment (its owner), even if a terminating replica of
    // shard a wrote it again on its way out.
    let t = Instant::now();
    eventually("shard a's Lease deleted", Duration::from_secs(60), || {
        (!node
            .kubectl(&["get", "lease", "bbconn-leader-a", "-n", NS])
            .status
            .success())
        .then_some(())
    });
    println!(
        "shard a removed: its Lease deleted {} ms after helm upgrade returned",
        t.elapsed().as_millis()
    );
}

pub fn thousand(node: &Node) {
    const N: usize = 1000;
    let mut yaml = String::from(
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: load}\n---\napiVersion: v1\n\
         kind: ConfigMap\nmetadata: {name: bitbucket-ca, namespace: load}\ndata:\n  ca.crt: |\n",
    );
    let ca = std::fs::read_to_string(node.repo.join("target/node/sim-ca.crt")).unwrap();
    for l in ca.lines() {
        yaml.push_str(&format!("    {l}\n"));
    }
    yaml.push_str(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: load}\n\
         stringData: {token: BBDC-FAKE-demo-bob-write, tokenId: \"100000000003\"}\n",
    );
    for i in 0..N {
        let repo = ["PROJ/app", "PROJ/docs", "OPS/infra"][i % 3];
        yaml.push_str(&format!(
            "---\napiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\n\
             metadata: {{name: load-{i:04}, namespace: load}}\nspec:\n  flavor: DataCenter\n  \
             url: https://bitbucket.example.com\n  interval: 10s\n  \
             auth: {{method: AccessToken, secretRef: {{name: token}}}}\n  \
             tls: {{caBundleRef: {{kind: ConfigMap, name: bitbucket-ca}}}}\n  \
             requirements: {{repositories: [{{name: {repo}}}]}}\n"
        ));
    }
    let t = Instant::now();
    node.apply(&yaml);
    all_current(node, "load", N, Duration::from_secs(240));
    println!(
        "{N} connections checked {:.1} s after apply",
        t.elapsed().as_secs_f64()
    );
    // Three more intervals: steady state, then what the kubelet measured.
    std::thread::sleep(Duration::from_secs(30));
    let summary: Value = serde_json::from_str(&node.ok(&[
        "get",
        "--raw",
        "/api/v1/nodes/bbconn-node/proxy/stats/summary",
    ]))
    .unwrap();
    let mut memory = BTreeMap::new();
    for pod in summary["pods"].as_array().unwrap() {
        if pod["podRef"]["namespace"] == NS {
            memory.insert(
                pod["podRef"]["name"].as_str().unwrap().to_string(),
                pod["memory"]["workingSetBytes"].as_u64().unwrap_or(0) / (1 << 20),
            );
        }
    }
    let limit = node
        .json(&["get", "deployment", "bbconn", "-n", NS])
        .pointer("/spec/template/spec/containers/0/resources/limits/memory")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    println!("working set with {N} connections (MiB, the kubelet's): {memory:?}, limit {limit}");
    // The same from the machine's side: each operator process's peak RSS, and its container's
    // memory cgroup (the limit in force, and the most it ever used).
    for (pid, peak_rss, limit, max_usage) in operator_processes() {
        println!(
            "  pid {pid}: peak RSS {} MiB; cgroup limit {} MiB, peak usage {} MiB",
            peak_rss >> 20,
            limit >> 20,
            max_usage >> 20
        );
        assert_eq!(limit, 128 << 20, "the chart's memory limit is in force");
        assert!(max_usage < limit);
    }
    for p in pods(node, NS, OPERATOR) {
        assert_eq!(
            p.restarts, 0,
            "{} restarted ({:?})",
            p.name, p.terminated_reasons
        );
        assert!(p.ready, "{} not Ready", p.name);
    }
    let t = Instant::now();
    node.ok(&["delete", "namespace", "load", "--timeout=180s"]);
    println!(
        "namespace load deleted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// The operator's processes on the machine (`/bbconn run` in a container): pid, peak RSS, and
/// their memory cgroup's limit and peak usage, in bytes.
fn operator_processes() -> Vec<(u32, u64, u64, u64)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if !cmdline.starts_with(b"/bbconn\0run") {
            continue;
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let hwm_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let Some(path) = cgroup
            .lines()
            .find_map(|l| l.split_once(":memory:").map(|x| x.1.to_string()))
        else {
            continue;
        };
        let read = |f: &str| {
            std::fs::read_to_string(format!("/sys/fs/cgroup/memory{path}/{f}"))
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        found.push((
            pid,
            hwm_kib << 10,
            read("memory.limit_in_bytes"),
            read("memory.max_usage_in_bytes"),
        ));
    }
    assert!(
        !found.is_empty(),
        "no /bbconn run process found on the machine"
    );
    found
}

pub fn uninstall(node: &Node) {
    node.helm_ok(&[
        "uninstall",
        "bbconn",
        "-n",
        NS,
        "--wait",
        "--timeout",
        "120s",
    ]);
    eventually("the operator's Pods gone", Duration::from_secs(60), || {
        node.ok(&["get", "pods", "-n", NS, "-o", "name"])
            .trim()
            .is_empty()
            .then_some(())
    });
    // The Leases go with their Deployments (owner references): the garbage collector's work.
    let t = Instant::now();
    let mut left = Vec::new();
    let gone = (0..300).any(|_| {
        left = node
            .ok(&[
                "get",
                "all,serviceaccount,role,rolebinding,poddisruptionbudget,networkpolicy,lease,configmap,secret",
                "-n", NS, "-o", "name",
            ])
            .lines()
            .filter(|l| *l != "serviceaccount/default" && *l != "configmap/kube-root-ca.crt")
            .map(String::from)
            .collect::<Vec<_>>();
        left.is_empty() || {
            std::thread::sleep(Duration::from_millis(200));
            false
        }
    });
    assert!(gone, "helm uninstall left {left:?} in {NS}");
    println!(
        "{NS} empty {} ms after helm uninstall returned",
        t.elapsed().as_millis()
    );
    let cluster = node.ok(&["get", "clusterrole,clusterrolebinding", "-o", "name"]);
    let ours: Vec<_> = cluster.lines().filter(|l| l.contains("bbconn")).collect();
    assert!(ours.is_empty(), "helm uninstall left {ours:?}");
    node.ok(&["get", "crd", "bitbucketconnections.bbconn.dev"]);
    assert!(
        !connections(node, "demo").is_empty(),
        "the connections stay"
    );
    println!("helm uninstall: nothing of bbconn left but the CRD and the connections");
}
