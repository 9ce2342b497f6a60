//! HostKeyVerified: the server's host keys against the consumer's known_hosts. Whichever listed
//! type a consumer negotiates must verify: OpenSSH prefers the types it knows, Go's knownhosts
//! (Argo CD, Flux) negotiates its own preference and then checks only that one.

use super::{CheckResult, Finding};
use crate::catalogue::{Cause, Check};
use crate::ssh::client::Presented;
use crate::ssh::known_hosts::{KeyType, Matched, fingerprint, host_name, known_hosts_line};
use russh::keys::{Algorithm, Certificate, HashAlg, PublicKey};

/// What the engine observed of the server, and what known_hosts says of it.
pub struct Observed<'a> {
    pub host: &'a str,
    pub port: u16,
    pub known: &'a Matched,
    /// server_host_key_algorithms from the server's KEXINIT.
    pub server_offers: &'a [String],
    /// The key or certificate the server presented for each type fetched.
    pub fetched: &'a [(KeyType, Presented)],
    /// Unix seconds: host certificates must be valid then.
    pub now: u64,
}

/// The key types the server holds, from the algorithms it offers, in preference order.
pub fn server_types(offers: &[String]) -> Vec<KeyType> {
    let of = |n: &String| KeyType::of_algorithm_name(n).map(|k| k.key_type);
    KeyType::all()
        .into_iter()
        .filter(|t| offers.iter().any(|n| of(n) == Some(*t)))
        .collect()
}

/// The types [`verdict`] needs the server's key of, in preference order (OpenSSH's default
/// HostKeyAlgorithms): those the server holds that known_hosts lists or revokes, and, with a
/// listed `@cert-authority`, those it presents certificates of (fetch those as certificates).
pub fn types_to_fetch(known: &Matched, server_offers: &[String]) -> Vec<KeyType> {
    let has = |keys: &[PublicKey], t| keys.iter().any(|k| KeyType::of(k) == Some(t));
    let certified =
        |t| !known.authorities.is_empty() && certificate_algorithm_for(t, server_offers).is_some();
    let wanted = |t: &KeyType| has(&known.keys, *t) || has(&known.revoked, *t) || certified(*t);
    server_types(server_offers)
        .into_iter()
        .filter(wanted)
        .collect()
}

/// The algorithm to ask for to fetch the server's `t` key: for ssh-rsa, rsa-sha2-512, else
/// rsa-sha2-256, else ssh-rsa, whichever the server offers.
pub fn algorithm_for(t: KeyType, server_offers: &[String]) -> Option<Algorithm> {
    pick(t, server_offers, false)
}

/// The same for the server's `t` host certificate (russh's `host_key_certificates`).
pub fn certificate_algorithm_for(t: KeyType, server_offers: &[String]) -> Option<Algorithm> {
    pick(t, server_offers, true)
}

fn pick(t: KeyType, offers: &[String], certificate: bool) -> Option<Algorithm> {
    let names: &[&str] = match t {
        KeyType::Rsa => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
        _ => &[t.as_str()],
    };
    let name = |a: &Algorithm| match certificate {
        true => a.to_certificate_type(),
        false => a.as_str().to_string(),
    };
    let mut algorithms = names.iter().filter_map(|n| Algorithm::new(n).ok());
    algorithms.find(|a| offers.contains(&name(a)))
}

/// The known_hosts lines for the server's keys, one per type (a certificate's own key), in
/// preference order.
pub fn knowledge(host: &str, port: u16, fetched: &[(KeyType, Presented)]) -> Vec<String> {
    let first = |t: KeyType| fetched.iter().find(|(f, _)| *f == t).map(|(_, p)| p.key());
    let keys = KeyType::all().into_iter().filter_map(first);
    keys.filter_map(|k| known_hosts_line(host, port, &k))
        .collect()
}

/// spec.git.ssh.insecureIgnoreHostKey: the consumer goes on whatever the key, so a key
/// known_hosts lacks or contradicts is a Warning, and so is the setting where it verifies.
pub fn skipped(verdict: CheckResult, host: &str, port: u16) -> CheckResult {
    let name = host_name(host, port);
    let warn = |message: String| vec![Finding::new(Cause::HostKeyCheckSkipped, message)];
    let unchecked = "the consumer does not check host keys (spec.git.ssh.insecureIgnoreHostKey)";
    match verdict.failure() {
        Some(f) if matches!(f.cause, Cause::HostKeyUnknown | Cause::HostKeyMismatch) => {
            let message = format!(
                "{unchecked} and would not notice an impostor; known_hosts would fail: {}",
                f.message
            );
            let passed = format!("the consumer accepts any host key from {name}");
            CheckResult::passed(Check::HostKeyVerified, passed).with_warnings(warn(message))
        }
        Some(_) => verdict,
        None => {
            let message = format!("known_hosts verifies {name}, but {unchecked}");
            // A key type known_hosts lacks fails no client that checks nothing.
            let mut warnings: Vec<Finding> = verdict.warnings.clone();
            warnings.retain(|w| w.cause != Cause::HostKeyTypesIncomplete);
            warnings.extend(warn(message));
            verdict.with_warnings(warnings)
        }
    }
}

/// How one type of the server's fared.
enum Judged {
    Verified(String),
    Wrong(String),
    /// Neither: a certificate of an authority known_hosts does not list, for an unlisted type.
    Unverified(String),
}

pub fn verdict(o: &Observed<'_>) -> CheckResult {
    let name = host_name(o.host, o.port);
    let fail = |cause, message: String| {
        CheckResult::failed(Check::HostKeyVerified, Finding::new(cause, message))
    };
    if let Some(message) = revoked(o) {
        return fail(Cause::HostKeyMismatch, message);
    }
    if !o.known.names_host() {
        return fail(Cause::HostKeyUnknown, unknown(o, &name));
    }
    let offered = server_types(o.server_offers);
    let fetched = |t: KeyType| o.fetched.iter().find(|(f, _)| *f == t).map(|(_, p)| p);
    let held = KeyType::all().into_iter();
    let held: Vec<KeyType> = held
        .filter(|t| offered.contains(t) || fetched(*t).is_some())
        .collect();
    let listed = o.known.listed_types();
    let (mut verified, mut checked, mut wrong, mut missing, mut notes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &t in &held {
        let judged = match fetched(t) {
            None if listed.contains(&t) => {
                missing.push(t.as_str());
                continue;
            }
            Some(Presented::Key(k)) if listed.contains(&t) => judge(o.known, t, k, &name),
            Some(Presented::Certificate(c)) => certificate(o, t, c, &name, listed.contains(&t)),
            _ => continue,
        };
        match judged {
            Judged::Verified(how) => {
                verified.push(how);
                checked.push(t);
            }
            Judged::Wrong(why) => wrong.push(why),
            Judged::Unverified(why) => notes.push(why),
        }
    }
    let names = |types: &[KeyType]| {
        types
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !wrong.is_empty() {
        return fail(Cause::HostKeyMismatch, wrong.join("; "));
    }
    if !missing.is_empty() || held.is_empty() {
        let (missing, offers) = (missing.join(", "), o.server_offers.join(", "));
        let message = match missing.is_empty() {
            true => format!("{name} offers no host key algorithm bbconn knows ({offers})"),
            false => format!("{name} offers {missing} host keys, but bbconn could not get them"),
        };
        return fail(Cause::UnexpectedResponse, message);
    }
    if verified.is_empty() {
        let (listed, held) = (names(&listed), names(&held));
        let message = match listed.is_empty() {
            true => format!(
                "known_hosts lists only @cert-authority keys for {name}, and the server holds \
                 {held} keys, none with a certificate they verify"
            ),
            false => format!(
                "known_hosts lists {listed} for {name}, but the server holds only {held}: Go \
                 clients (Argo CD, Flux) fail with knownhosts: key mismatch, OpenSSH with no \
                 matching host key type found"
            ),
        };
        return fail(
            Cause::HostKeyMismatch,
            [vec![message], notes].concat().join("; "),
        );
    }
    let lacking: Vec<KeyType> = held
        .into_iter()
        .filter(|t| !listed.contains(t) && !checked.contains(t))
        .collect();
    let warning = format!(
        "the server also holds {} host keys, which known_hosts lacks for {name}: a client that \
         negotiates one of them fails (Go: knownhosts: key mismatch)",
        names(&lacking)
    );
    let warnings = match lacking.is_empty() {
        true => Vec::new(),
        false => vec![Finding::new(Cause::HostKeyTypesIncomplete, warning)],
    };
    let verified = verified.join(", ");
    let message = format!(
        "known_hosts verifies every type it lists for {name} that the server holds: {verified}"
    );
    CheckResult::passed(Check::HostKeyVerified, message).with_warnings(warnings)
}

/// OpenSSH refuses a revoked host key, and a certificate whose own or signing key is revoked.
fn revoked(o: &Observed<'_>) -> Option<String> {
    let is_revoked = |k: &PublicKey| o.known.revoked.iter().any(|r| r.key_data() == k.key_data());
    o.fetched.iter().find_map(|(t, p)| {
        let (t, key) = (t.as_str(), p.key());
        let signer = match p {
            Presented::Certificate(c) => Some(PublicKey::from(c.signature_key().clone())),
            Presented::Key(_) => None,
        };
        match signer.filter(is_revoked) {
            _ if is_revoked(&key) => Some(format!(
                "known_hosts lists the server's {t} key {} as @revoked",
                fingerprint(&key)
            )),
            Some(s) => Some(format!(
                "known_hosts lists the key that signed the server's {t} certificate ({}) as \
                 @revoked",
                fingerprint(&s)
            )),
            None => None,
        }
    })
}

fn unknown(o: &Observed<'_>, name: &str) -> String {
    let host = host_name(o.host, 22);
    let how = match o.port {
        22 => "by the bare name, as on port 22",
        _ => "as [host]:port, as off port 22",
    };
    let mut message = format!("known_hosts has no line for {name} (looked up {how})");
    if o.known.bare_name_only {
        message.push_str(&format!(
            ": it names the bare host {host}, which stands for port 22 only; Go clients such as \
             Argo CD and Flux never fall back from {name} to it (some OpenSSH setups do), so \
             bbconn follows the strict rule: write the lines as {name}"
        ));
    } else if o.known.bracketed_only {
        message.push_str(&format!(
            ": it names [{host}]:22, which OpenSSH never matches (it looks up port 22 by the bare \
             name, though Go would accept it): write the lines as {host}"
        ));
    }
    message
}

/// A plain key against the keys listed for its type. Go's knownhosts keeps only the first
/// line it reads for each type (OpenSSH accepts any), so the server's must be that one.
fn judge(known: &Matched, t: KeyType, key: &PublicKey, name: &str) -> Judged {
    let listed: Vec<&PublicKey> = known
        .keys
        .iter()
        .filter(|k| KeyType::of(k) == Some(t))
        .collect();
    let (t, fp, n) = (t.as_str(), fingerprint(key), listed.len());
    match listed.iter().position(|k| k.key_data() == key.key_data()) {
        Some(0) => Judged::Verified(format!("{t} {fp}")),
        Some(_) => Judged::Wrong(format!(
            "known_hosts lists {n} {t} keys for {name}, and the server's ({fp}) is not the first: \
             Go's knownhosts (Argo CD, Flux) checks only the first, so list it first or drop \
             the others"
        )),
        None => {
            let listed: Vec<String> = listed.iter().map(|k| fingerprint(k)).collect();
            let listed = listed.join(" and ");
            Judged::Wrong(format!(
                "known_hosts lists {t} {listed} for {name}, but the server's {t} key is {fp}"
            ))
        }
    }
}

/// A host certificate: verified by a listed authority, else (as OpenSSH falls back) its own
/// key judged as a plain one.
fn certificate(o: &Observed<'_>, t: KeyType, c: &Certificate, name: &str, listed: bool) -> Judged {
    let ca = fingerprint(&PublicKey::from(c.signature_key().clone()));
    let by_listed = o
        .known
        .authorities
        .iter()
        .any(|a| a.key_data() == c.signature_key());
    let ty = t.as_str();
    if !by_listed && listed {
        return judge(o.known, t, &PublicKey::from(c.public_key().clone()), name);
    }
    if !by_listed {
        return Judged::Unverified(format!(
            "the server's {ty} host certificate is signed by {ca}, which known_hosts does not \
             list as @cert-authority for {name}"
        ));
    }
    match valid(c, o.host, o.now) {
        Ok(()) => Judged::Verified(format!("{ty} certificate by @cert-authority {ca}")),
        Err(why) => Judged::Wrong(format!(
            "the server's {ty} host certificate, signed by @cert-authority {ca}, {why}"
        )),
    }
}

/// OpenSSH's and Go's checks of a host certificate: host type, principals (none: any host),
/// no critical options (Go refuses those it does not know), validity window, CA signature.
fn valid(c: &Certificate, host: &str, now: u64) -> Result<(), String> {
    let host = host_name(host, 22).to_ascii_lowercase();
    let (principals, after, before) = (c.valid_principals(), c.valid_after(), c.valid_before());
    let at = |s: u64| match i64::try_from(s).map(jiff::Timestamp::from_second) {
        Ok(Ok(t)) => t.to_string(),
        _ => "forever".to_string(),
    };
    if !c.cert_type().is_host() {
        Err("is not a host certificate".into())
    } else if !principals.is_empty() && !principals.contains(&host) {
        Err(format!(
            "does not name {host} (it names {})",
            principals.join(", ")
        ))
    } else if !c.critical_options().is_empty() {
        Err("carries critical options, which Go clients refuse".into())
    } else if now < after || now >= before {
        Err(format!(
            "is valid from {} until {}, not now",
            at(after),
            at(before)
        ))
    } else {
        let ca = c.signature_key().fingerprint(HashAlg::Sha256);
        c.validate_at(now, [&ca])
            .map_err(|_| "has a signature that does not verify".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Verdict;
    use crate::ssh::known_hosts::tests::{key, keys::*, lookup};

    /// ssh-keygen host certificates for ED2's key, signed by CA (one by another CA), naming
    /// git.example.com and ssh.example.com, valid 2024-01-01 to 2034-01-01 (expired: 2020-2021).
    #[rustfmt::skip]
    mod certs {
        pub const CA: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID3sPQqbZuO73JLIdSnefYYIGPxLMWy5RporM8faHZsh";
        pub const CERT: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIGDzExMZOMT62nCxxLUEt9pH1FXjDBlaWKI5MCjv2uKiAAAAIPfw+YwosHk5JqahcNr0kWBoRioJhscgH8V0EXf5+DtzAAAAAAAAAAEAAAACAAAABGhvc3QAAAAmAAAAD2dpdC5leGFtcGxlLmNvbQAAAA9zc2guZXhhbXBsZS5jb20AAAAAZZIAgAAAAAB4YfgAAAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACA97D0Km2bju9ySyHUp3n2GCBj8SzFsuUaaKzPH2h2bIQAAAFMAAAALc3NoLWVkMjU1MTkAAABA9OlZtuaZRG0w9HWiDO1VEw37WPustXQrv3yVzbUZ9Bz20Cyv4MMNozfZv6aZUALg0SjcDBZgSUcENJ5kxOo4CQ==";
        pub const OTHER_CA: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIPmRKiTJqAtPVK/ZhIDOhx2RQOGLCImQTHrnYEakotvWAAAAIPfw+YwosHk5JqahcNr0kWBoRioJhscgH8V0EXf5+DtzAAAAAAAAAAIAAAACAAAABGhvc3QAAAATAAAAD2dpdC5leGFtcGxlLmNvbQAAAABlkgCAAAAAAHhh+AAAAAAAAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIBsdLU4qnom1wWqLYUBxv5Zym/2KgJ3fEZw2fhasDWZXAAAAUwAAAAtzc2gtZWQyNTUxOQAAAED8CuA9wJJn7P64w8nu3UxCfyPH2lAtNjLdSkUWYlw3wRA5vRthYkrssaSZ+VoR+FE5ATb/c4o0WqlKR3c1iC4P";
        pub const EXPIRED: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIKi/5mzK3AIqaVavYHMyCx4oM2+5wFSWi6epUJ/+RGBdAAAAIPfw+YwosHk5JqahcNr0kWBoRioJhscgH8V0EXf5+DtzAAAAAAAAAAMAAAACAAAABGhvc3QAAAATAAAAD2dpdC5leGFtcGxlLmNvbQAAAABeC+EAAAAAAF/uZgAAAAAAAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAID3sPQqbZuO73JLIdSnefYYIGPxLMWy5RporM8faHZshAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEAmi5t8Pa3+OxU1G0a2buTuF2FHQdy2fKW5m4SmH3kW44qAC8ZLSdvrNiBUJ3Jjj1u06q0jH9yR7gX10a5vjtQA";
    }
    use certs::*;

    /// 2027-01-15: inside the certificates' window.
    const NOW: u64 = 1_800_000_000;
    const CLOUD: &[&str] = &[
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
    ];
    const DATA_CENTER: &[&str] = &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
    const CERTIFIED: &[&str] = &["ssh-ed25519-cert-v01@openssh.com", "ssh-ed25519", "ssh-rsa"];
    const ALL3: &[&str] = &[ED1, EC1, RSA_NEW];

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn presented(s: &str) -> (KeyType, Presented) {
        match Certificate::from_openssh(s) {
            Ok(c) => (KeyType::Ed25519, Presented::Certificate(Box::new(c))),
            Err(_) => (KeyType::of(&key(s)).unwrap(), Presented::Key(key(s))),
        }
    }

    type Outcome = (Option<Cause>, String, Vec<(Cause, String)>);
    /// known_hosts, host, port, offers, presented, cause (None: True), message says, warns.
    type Case<'a> = (
        String,
        &'a str,
        u16,
        Strs<'a>,
        Strs<'a>,
        Option<Cause>,
        Strs<'a>,
        Strs<'a>,
    );
    type Strs<'a> = &'a [&'a str];

    /// The cause (None: True), message and warnings for known_hosts `text`, a server offering
    /// `offers` and presenting `keys`.
    fn check(text: &str, host: &str, port: u16, offers: &[&str], keys: &[&str]) -> Outcome {
        let (known, offers) = (lookup(text, host, port), strings(offers));
        let fetched: Vec<_> = keys.iter().map(|k| presented(k)).collect();
        let (server_offers, now) = (&offers[..], NOW);
        let r = verdict(&Observed {
            host,
            port,
            known: &known,
            server_offers,
            fetched: &fetched,
            now,
        });
        let warnings = r
            .warnings
            .iter()
            .map(|w| (w.cause, w.message.clone()))
            .collect();
        match r.verdict {
            Verdict::Passed { message, .. } => (None, message, warnings),
            Verdict::Failed(f) => (Some(f.cause), f.message, warnings),
            Verdict::Skipped { .. } => unreachable!(),
        }
    }

    #[test]
    fn a_consumer_that_checks_no_host_key_is_warned_not_failed() {
        let bb = "bitbucket.org";
        // The verdict of a consumer that checks host keys.
        let strict = |text: &str, keys: &[&str]| {
            let (known, offers) = (lookup(text, bb, 22), strings(CLOUD));
            let fetched: Vec<_> = keys.iter().map(|k| presented(k)).collect();
            verdict(&Observed {
                host: bb,
                port: 22,
                known: &known,
                server_offers: &offers,
                fetched: &fetched,
                now: NOW,
            })
        };
        let observe = |text: &str, keys: &[&str]| skipped(strict(text, keys), bb, 22);
        // No known_hosts, and a changed key: True, each with what verification would say.
        for (text, says) in [
            ("", "HostKeyUnknown"),
            (&format!("{bb} {ED2}") as &str, "mismatch"),
        ] {
            let r = observe(text, &[ED1]);
            assert!(r.is_passed(), "{r:?}");
            assert_eq!(r.warnings.len(), 1, "{r:?}");
            assert_eq!(r.warnings[0].cause, Cause::HostKeyCheckSkipped);
            assert!(
                r.warnings[0].message.contains("known_hosts would fail"),
                "{says}: {r:?}"
            );
        }
        // A key that verifies: True, and the setting is still the warning; a type known_hosts
        // lacks (the server also holds ecdsa) is no one's problem then.
        let plain = strict(&format!("{bb} {ED1}"), &[ED1, EC1]);
        let incomplete = |r: &CheckResult| {
            r.warnings
                .iter()
                .any(|w| w.cause == Cause::HostKeyTypesIncomplete)
        };
        assert!(incomplete(&plain), "{plain:?}");
        let r = skipped(plain, bb, 22);
        assert!(r.is_passed() && !incomplete(&r), "{r:?}");
        assert!(
            r.warnings
                .iter()
                .any(|w| w.cause == Cause::HostKeyCheckSkipped
                    && w.message.contains("known_hosts verifies"))
        );
        // What is not about the key (no algorithm bbconn knows) still fails.
        let failed = CheckResult::failed(
            Check::HostKeyVerified,
            Finding::new(Cause::UnexpectedResponse, "no algorithm"),
        );
        assert!(!skipped(failed, bb, 22).is_passed());
    }

    #[test]
    fn verdicts() {
        use Cause::{HostKeyMismatch as Mismatch, HostKeyUnknown as Unknown};
        let (bb, git) = ("ssh.bitbucket.org", "git.example.com");
        let (old, new) = (&fingerprint(&key(RSA_OLD)), &fingerprint(&key(RSA_NEW)));
        let ca = format!("@cert-authority *.example.com {CA}");
        #[rustfmt::skip]
        let cases: &[Case] = &[
            // Bitbucket Cloud's move from bitbucket.org to ssh.bitbucket.org.
            (format!("bitbucket.org {ED1}\nbitbucket.org {RSA_NEW}"), bb, 22, CLOUD, ALL3,
                Some(Unknown), &["no line for ssh.bitbucket.org"], &[]),
            // The 2023 rotation: the retired RSA key pinned.
            (format!("{bb} {RSA_OLD}"), bb, 22, CLOUD, ALL3, Some(Mismatch), &["ssh-rsa", old, new], &[]),
            // Only the RSA line: True, but Go clients negotiating ed25519 or ecdsa fail.
            (format!("{bb} {RSA_NEW}"), bb, 22, CLOUD, ALL3, None, &[new],
                &["holds ssh-ed25519, ecdsa-sha2-nistp256 host keys"]),
            // Only ecdsa, for a Data Center that holds only RSA.
            (format!("[{git}]:7999 {EC1}"), git, 7999, DATA_CENTER, &[RSA_NEW], Some(Mismatch),
                &["lists ecdsa-sha2-nistp256", "holds only ssh-rsa", "knownhosts: key mismatch",
                  "no matching host key type found"], &[]),
            // [host]:port written as host; [host]:22 written for port 22.
            (format!("{git} {RSA_NEW}"), git, 7999, DATA_CENTER, &[RSA_NEW], Some(Unknown),
                &["no line for [git.example.com]:7999", "names the bare host", "Argo CD"], &[]),
            (format!("[{git}]:22 {RSA_NEW}"), git, 22, DATA_CENTER, &[RSA_NEW], Some(Unknown),
                &["names [git.example.com]:22", "write the lines as git.example.com"], &[]),
            // All three right; then one of them wrong, which fails though others verify.
            (format!("{bb} {RSA_NEW}\n{bb} {EC1}\n{bb} {ED1}"), bb, 22, CLOUD, ALL3, None,
                &["ssh-ed25519 SHA256:", "ecdsa-sha2-nistp256 SHA256:", new], &[]),
            (format!("{bb} {RSA_NEW}\n{bb} {EC2}\n{bb} {ED1}"), bb, 22, CLOUD, ALL3, Some(Mismatch),
                &["lists ecdsa-sha2-nistp256"], &[]),
            (format!("{bb} {ED1}\n@revoked * {ED1}"), bb, 22, CLOUD, ALL3, Some(Mismatch),
                &["ssh-ed25519 key", ED1_FP, "@revoked"], &[]),
            // Go keeps the first line of each type; OpenSSH would take either.
            (format!("{bb} {RSA_OLD}\n{bb} {RSA_NEW}"), bb, 22, DATA_CENTER, &[RSA_NEW], Some(Mismatch),
                &["lists 2 ssh-rsa keys", "not the first"], &[]),
            (format!("{bb} {RSA_NEW}\n{bb} {RSA_OLD}"), bb, 22, DATA_CENTER, &[RSA_NEW], None, &[], &[]),
            // A listed type the server offers but the engine did not fetch is not passed over.
            (format!("{bb} {ED1}"), bb, 22, CLOUD, &[], Some(Cause::UnexpectedResponse), &["ssh-ed25519"], &[]),
            // Host certificates.
            (ca.clone(), git, 22, CERTIFIED, &[CERT], None, &["@cert-authority SHA256:"], &["ssh-rsa"]),
            (ca.clone(), git, 22, CERTIFIED, &[EXPIRED], Some(Mismatch),
                &["valid from 2020-01-01T00:00:00Z until 2021-01-01T00:00:00Z"], &[]),
            (ca.clone(), "www.example.com", 22, CERTIFIED, &[CERT], Some(Mismatch), &["does not name www"], &[]),
            (ca.clone(), git, 22, CERTIFIED, &[OTHER_CA], Some(Mismatch), &["not list as @cert-authority"], &[]),
            // Another authority's certificate stands for its key, as OpenSSH falls back to it.
            (format!("{ca}\n{git} {ED2}"), git, 22, CERTIFIED, &[OTHER_CA], None, &[], &["ssh-rsa"]),
            (format!("{ca}\n@revoked h {CA}"), git, 22, CERTIFIED, &[CERT], Some(Mismatch), &["signed"], &[]),
        ];
        for (i, (text, host, port, offers, keys, cause, says, warns)) in cases.iter().enumerate() {
            let (got, message, warnings) = check(text, host, *port, offers, keys);
            assert_eq!(got, *cause, "case {i}: {message}");
            assert!(
                says.iter().all(|s| message.contains(s)),
                "case {i}: {says:?} in {message}"
            );
            assert_eq!(warnings.len(), warns.len().min(1), "case {i}: {warnings:?}");
            for (cause, w) in warnings {
                assert_eq!(cause, Cause::HostKeyTypesIncomplete);
                assert!(
                    warns.iter().all(|s| w.contains(s)),
                    "case {i}: {warns:?} in {w}"
                );
            }
        }
    }

    #[test]
    fn what_to_fetch_and_how() {
        let offers = strings(&[
            "ssh-rsa",
            "rsa-sha2-256",
            "ecdsa-sha2-nistp256",
            CERTIFIED[0],
            "ssh-ed25519",
        ]);
        let known = lookup(
            &format!("h {RSA_NEW}\nh {EC2}\nh {ED1}\n@revoked * {EC1}"),
            "h",
            22,
        );
        use KeyType::{EcdsaP256, EcdsaP384, Ed25519, Rsa};
        assert_eq!(types_to_fetch(&known, &offers), [Ed25519, EcdsaP256, Rsa]);
        let known = lookup(&format!("h {RSA_NEW}\n@revoked * {EC1}"), "h", 22);
        assert_eq!(types_to_fetch(&known, &offers), [EcdsaP256, Rsa]);
        let known = lookup(&format!("@cert-authority h {CA}"), "h", 22);
        assert_eq!(types_to_fetch(&known, &offers), [Ed25519]);
        let alg = |t, offers: &[String]| algorithm_for(t, offers).map(|a| a.to_string());
        assert_eq!(alg(Rsa, &offers).as_deref(), Some("rsa-sha2-256"));
        assert_eq!(alg(Rsa, &strings(CLOUD)).as_deref(), Some("rsa-sha2-512"));
        assert_eq!(alg(Rsa, &strings(&["ssh-rsa"])).as_deref(), Some("ssh-rsa"));
        assert_eq!(alg(EcdsaP384, &offers), None);
        assert_eq!(
            certificate_algorithm_for(Ed25519, &offers),
            Some(Algorithm::Ed25519)
        );
        assert_eq!(certificate_algorithm_for(Rsa, &offers), None);
    }

    #[test]
    fn knowledge_lists_one_line_per_type_in_preference_order() {
        let fetched: Vec<_> = [RSA_NEW, CERT, EC1, RSA_OLD].map(presented).to_vec();
        let want = [ED2, EC1, RSA_NEW].map(|k| format!("[git.example.com]:7999 {k}"));
        assert_eq!(knowledge("git.example.com", 7999, &fetched), want);
    }
}
