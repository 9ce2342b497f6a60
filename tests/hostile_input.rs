//! Manifests written to hurt: out-of-range durations, megabyte values, duplicate keys, a 1 MiB
//! token. `bbconn check` never panics on them; it exits 2 naming the file, the document and the
//! field, in its own words, quoting at most a short excerpt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn bbconn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bbconn"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("bbconn runs")
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::File::create(&p).unwrap().write_all(bytes).unwrap();
    p.display().to_string()
}

const CONN: &str = "apiVersion: bbconn.dev/v1alpha1\nkind: BitbucketConnection\nmetadata: {name: c, namespace: ci}\nspec:\n  flavor: DataCenter\n  url: https://bitbucket.example.com\n  auth: {method: AccessToken, secretRef: {name: tok}}\n";
const SECRET: &str = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: tok, namespace: ci}\nstringData: {token: abcdefgh}\n";

#[test]
fn out_of_range_and_hostile_values_exit_2_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let huge = "a".repeat(1 << 20);
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "huge-interval.yaml",
            format!("{CONN}  interval: 99999999999999999999h\n{SECRET}"),
            vec!["spec.interval", "longer than any duration"],
        ),
        (
            "huge-expiry.yaml",
            format!("{CONN}  expiryWarning: 99999999999999999999h\n{SECRET}"),
            vec!["spec.expiryWarning"],
        ),
        (
            "sum-overflow.yaml",
            format!("{CONN}  interval: 2562047h2562047h\n{SECRET}"),
            vec!["spec.interval"],
        ),
        (
            "zero-interval.yaml",
            format!("{CONN}  interval: 0s\n{SECRET}"),
            vec!["spec.interval must be between 1s and 24h"],
        ),
        (
            "sub-second.yaml",
            format!("{CONN}  interval: 500ms\n{SECRET}"),
            vec!["spec.interval must be between 1s and 24h"],
        ),
        (
            "long-interval.yaml",
            format!("{CONN}  interval: 48h\n{SECRET}"),
            vec!["spec.interval must be between 1s and 24h"],
        ),
        (
            "long-expiry.yaml",
            format!("{CONN}  expiryWarning: 9000h\n{SECRET}"),
            vec!["spec.expiryWarning must be at most 8760h"],
        ),
        (
            "negative.yaml",
            format!("{CONN}  interval: -5m\n{SECRET}"),
            vec![".spec.interval"],
        ),
        (
            "long-duration-text.yaml",
            format!("{CONN}  interval: {}s\n{SECRET}", "1".repeat(100_000)),
            vec![".spec.interval"],
        ),
        (
            "duplicate-key.yaml",
            CONN.replace("flavor: DataCenter", "flavor: DataCenter\n  flavor: Cloud"),
            vec!["duplicate", "flavor"],
        ),
        (
            "megabyte-url.yaml",
            CONN.replace("https://bitbucket.example.com", &format!("https://{huge}")) + SECRET,
            vec!["document 1", ".spec.url", "longer than 2048 characters"],
        ),
        (
            "megabyte-enum.yaml",
            CONN.replace("flavor: DataCenter", &format!("flavor: {huge}")) + SECRET,
            vec![".spec.flavor"],
        ),
        (
            "megabyte-key.yaml",
            // YAML limits implicit keys to 1024 characters; an explicit key has no limit.
            CONN.replace(
                "flavor: DataCenter",
                &format!("flavor: DataCenter\n  ? {huge}\n  : 1"),
            ) + SECRET,
            vec!["unknown field"],
        ),
        (
            "megabyte-name.yaml",
            CONN.replace("name: c,", &format!("name: {huge},")) + SECRET,
            vec!["document 1"],
        ),
    ];
    for (name, text, expected) in cases {
        let path = write(&dir, name, text.as_bytes());
        let o = bbconn(&["check", "-f", &path]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        for e in expected {
            assert!(err.contains(e), "{name}: expected {e:?} in: {err}");
        }
        assert!(
            err.contains(name),
            "{name}: the message names the file: {err}"
        );
        assert!(
            err.len() < 1200,
            "{name}: {} bytes of message: {}",
            err.len(),
            &err[..err.len().min(1500)]
        );
        assert!(
            !err.contains("DuplicateKeyPolicy") && !err.contains("Options"),
            "{name}: the parser's own advice: {err}"
        );
    }
}

#[test]
fn in_range_durations_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens at .invalid; what matters is that the input is used (exit 1, not 2).
    for d in [
        "interval: 1s",
        "interval: 24h",
        "interval: 1h30m",
        "expiryWarning: 8760h",
    ] {
        let text = format!(
            "{}  {d}\n{SECRET}",
            CONN.replace("bitbucket.example.com", "bitbucket.invalid")
        );
        let path = write(&dir, "ok.yaml", text.as_bytes());
        let o = bbconn(&["check", "-f", &path, "--connect-timeout", "1"]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{d}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn an_oversized_credential_is_a_credential_problem() {
    let dir = tempfile::tempdir().unwrap();
    let token = "x".repeat(1 << 20);
    let text = format!(
        "{CONN}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: tok, namespace: ci}}\nstringData: {{token: {token}}}\n"
    );
    let path = write(&dir, "big-token.yaml", text.as_bytes());
    let o = bbconn(&["check", "-f", &path, "-o", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let problems = &v[0]["status"]["problems"];
    assert_eq!(problems[0]["check"], "CredentialsResolved", "{problems}");
    assert_eq!(problems[0]["cause"], "CredentialMalformed", "{problems}");
    let message = problems[0]["message"].as_str().unwrap();
    assert!(message.contains("1024 KiB"), "{message}");
    assert!(o.stdout.len() < 10_000);
}

/// Objects stored under an older CRD (which let any duration in) are read without a panic and
/// checked at an interval within bounds.
#[test]
fn stored_out_of_range_durations_are_clamped() {
    let spec = |interval: &str, warn: &str| {
        serde_json::from_value::<bbconn::api::BitbucketConnectionSpec>(serde_json::json!({
            "flavor": "Cloud",
            "auth": {"method": "AccessToken", "secretRef": {"name": "t"}},
            "interval": interval,
            "expiryWarning": warn,
        }))
    };
    let s = spec("0s", "720h").unwrap();
    assert_eq!(s.interval(), bbconn::api::MIN_INTERVAL);
    let s = spec("2000000h", "2000000h").unwrap();
    assert_eq!(s.interval(), bbconn::api::MAX_INTERVAL);
    assert_eq!(s.expiry_warning(), bbconn::api::MAX_EXPIRY_WARNING);
    let e = spec("99999999999999999999h", "1h").unwrap_err().to_string();
    assert!(e.contains("spec.interval"), "{e}");
    let e = spec("1h", "99999999999999999999h").unwrap_err().to_string();
    assert!(e.contains("spec.expiryWarning"), "{e}");
}
