//! The chart on a real node (issue 18): `helm install` into a namespace enforcing the restricted
//! Pod Security Standard, the image built by `make image`, the simulator as a Pod behind a
//! Service, everything driven with kubectl and helm as a person would, in the network namespace
//! of tests/node/up.sh. Run by `make node-test` (which starts the node and stops it again):
//!
//!   cargo test --test node -- --ignored --nocapture
//!
//! Not shown here because the node cannot show it: NetworkPolicy enforcement (the bridge CNI
//! plugin ignores NetworkPolicy; the chart's policy is applied and admitted, not enforced) and
//! cluster DNS (no CoreDNS: the operator reaches the simulator through --connect-to flags naming
//! the simulator Service's address).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube;
mod phases;

use kube::Node;

#[test]
#[ignore = "needs the real node: make node-test"]
fn the_chart_runs_on_a_real_node() {
    let node = Node::running();
    let t = std::time::Instant::now();
    let step = |name: &str| println!("\n== {name} ({:.1} s)", t.elapsed().as_secs_f64());

    step("helm install, two replicas, restricted Pod Security");
    phases::install(&node);
    step("connections Ready, a revoked one False with its cause; rotation; /metrics");
    phases::verdicts(&node);
    step("the kubelet killed and started again");
    phases::kubelet_restart(&node);
    step("the leader Pod deleted");
    phases::leader_failover(&node);
    step("kubectl drain against the PodDisruptionBudget");
    phases::drain(&node);
    step("helm upgrade to a rebuilt image");
    phases::upgrade(&node);
    step("a shard Deployment");
    phases::shard(&node);
    step("1,000 connections under the default memory limit");
    phases::thousand(&node);
    step("helm uninstall");
    phases::uninstall(&node);
    step("done");
}
