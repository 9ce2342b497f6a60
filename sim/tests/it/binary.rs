//! The `bbconn-sim` binary: prints its listeners as one JSON line, serves, stops on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::Conn;

#[tokio::test]
async fn binary_serves_until_sigterm() {
    let dir = std::env::temp_dir().join(format!("bbconn-sim-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = dir.join("fixture.yaml");
    std::fs::write(
        &fixture,
        "listeners:\n  - { name: dc, tls: good, hosts: [bitbucket.internal], serves: [datacenter] }\n",
    )
    .unwrap();
    let pki_dir = dir.join("pki");
    let mut child = Command::new(env!("CARGO_BIN_EXE_bbconn-sim"))
        .arg("--fixture")
        .arg(&fixture)
        .arg("--pki-dir")
        .arg(&pki_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let out: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr: std::net::SocketAddr = out["listeners"]["dc"].as_str().unwrap().parse().unwrap();
    let ca_path = out["ca"].as_str().unwrap();
    assert_eq!(std::path::Path::new(ca_path), pki_dir.join("ca.crt"));
    let ca = std::fs::read_to_string(ca_path).unwrap();

    let mut c = Conn::connect(addr, "bitbucket.internal", Some(&ca))
        .await
        .unwrap();
    assert_eq!(
        c.get("/rest/api/latest/application-properties", None)
            .await
            .status,
        200
    );

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    std::fs::remove_dir_all(&dir).unwrap();
}
