//! The `bbconn` binary as a pipeline runs it: exit codes, messages that name the document and
//! field, no panic or hang on bad input, and no secret in its output or its most verbose logs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{World, connection};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bbconn(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bbconn"));
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("bbconn runs")
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p.display().to_string()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

const CONN: &str = "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {name: c, namespace: ci}\nspec:\n  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {method: AccessToken, secretRef: {name: tok}}\n";
const SECRET: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: tok, namespace: ci}\ndata: {token: c2VrcmV0}\n";

#[test]
fn unusable_input_exits_2_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not-yaml.yaml",
            b"key: [unclosed\n  - : :".to_vec(),
            "not valid YAML",
        ),
        (
            "unknown-kind.yaml",
            b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n".to_vec(),
            "document 1 (Deployment default/d)",
        ),
        (
            "unknown-field.yaml",
            format!(
                "{}{SECRET}",
                CONN.replace("flavor:", "flavour: Cloud\n  flavor:")
            )
            .into_bytes(),
            ".spec.flavour",
        ),
        (
            "wrong-type.yaml",
            format!("{}  network: {{allowedPorts: [http]}}\n{SECRET}", CONN).into_bytes(),
            "spec.network.allowedPorts",
        ),
        (
            "out-of-range.yaml",
            format!("{}  network: {{allowedPorts: [70000]}}\n{SECRET}", CONN).into_bytes(),
            "allowedPorts",
        ),
        (
            "missing-ref.yaml",
            CONN.as_bytes().to_vec(),
            "Secret ci/tok, which is not in the input",
        ),
        (
            "bad-base64.yaml",
            format!("{CONN}{}", SECRET.replace("c2VrcmV0", "\"not base64 %\"")).into_bytes(),
            "data.token is not valid base64",
        ),
        (
            "binary.bin",
            (0..4096u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
            "not UTF-8",
        ),
        ("empty.yaml", b"".to_vec(), "no BitbucketConnection"),
        (
            "cel.yaml",
            format!("{}{SECRET}", CONN.replace("https://", "ftp://")).into_bytes(),
            "spec.url must be an absolute http(s) URL",
        ),
        (
            "no-name.yaml",
            b"apiVersion: v1\nkind: Secret\nmetadata: {}\n".to_vec(),
            "metadata.name is missing",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = write(&dir, name, &bytes);
        let o = bbconn(&["check", "-f", &path], &[]);
        let (out, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {out}{err}");
        assert!(
            err.contains(expected),
            "{name}: expected {expected:?} in: {err}"
        );
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A 50 MB file is refused without reading it all.
    let big = dir.path().join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(50 << 20).unwrap();
    let o = bbconn(&["check", "-f", &big.display().to_string()], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).1.contains("larger than 8 MiB"));
    // A file that does not exist: the message names the file and says it is not there.
    let o = bbconn(&["check", "-f", "/nonexistent/x.yaml"], &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("/nonexistent/x.yaml") && err.contains("No such file or directory"),
        "the message names the missing file: {err}"
    );
    // A deeply nested or alias-bomb YAML is refused by the parser's budget, not by exhausting memory.
    let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    let path = write(&dir, "bomb.yaml", bomb.as_bytes());
    let o = bbconn(&["check", "-f", &path], &[]);
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}{err}");
    assert!(
        err.contains("bomb.yaml") && err.contains("too large or too complex"),
        "the message names the file and the parser's budget: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn crd_command_prints_what_crds_holds() {
    let o = bbconn(&["crd"], &[]);
    assert_eq!(o.status.code(), Some(0));
    let on_disk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/bbconn.dev_bitbucketconnections.yaml"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(o.stdout).unwrap(), on_disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_no_secret_in_trace_logs() {
    let world = World::start().await;
    let ca = "  tls: {caBundleRef: {kind: ConfigMap, name: test-ca}}";
    let spec = |extra: &str| {
        format!(
            "  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {{method: AccessToken, secretRef: {{name: {extra}-cred}}}}\n{ca}"
        )
    };
    let healthy = format!(
        "{}{}",
        world.ca_configmap("ci"),
        connection(
            "ci",
            "ok",
            &spec("ok"),
            &[("token", "dc-alice-admin-token-0103")]
        )
    );
    let broken = format!(
        "{healthy}{}",
        connection(
            "ci",
            "bad",
            &spec("bad"),
            &[("token", "dc-alice-revoked-token-0105")]
        )
    );
    let h = write(&world.dir, "healthy.yaml", healthy.as_bytes());
    let b = write(&world.dir, "broken.yaml", broken.as_bytes());
    let flags = world.net_flags();
    let run = |file: String, extra: &[&str]| {
        let flags = flags.clone();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let mut args: Vec<&str> = vec!["check", "-f", &file];
            args.extend(flags.iter().map(String::as_str));
            args.extend(extra.iter().map(String::as_str));
            bbconn(&args, &[("RUST_LOG", "trace")])
        })
    };
    let ok = run(h, &[]).await.unwrap();
    let (out, err) = text(&ok);
    assert_eq!(ok.status.code(), Some(0), "{out}{err}");
    assert!(out.contains("ci/ok") && out.contains("True"), "{out}");

    let bad = run(b.clone(), &[]).await.unwrap();
    let (out, err) = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("TokenRevoked"), "{out}");
    let json = run(b, &["-o", "json"]).await.unwrap();
    let (jout, jerr) = text(&json);
    let v: serde_json::Value = serde_json::from_str(&jout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    // trace-level logs (hyper, rustls, bbconn) carry no secret value.
    for secret in ["dc-alice-admin-token-0103", "dc-alice-revoked-token-0105"] {
        for (what, s) in [
            ("stdout", &out),
            ("stderr", &err),
            ("json", &jout),
            ("json stderr", &jerr),
        ] {
            assert!(!s.contains(secret), "{secret} in {what}");
        }
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        assert!(!err.contains(&b64), "base64 of {secret} in logs");
    }
}
