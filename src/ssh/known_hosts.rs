//! known_hosts as OpenSSH reads it (sshd(8) SSH_KNOWN_HOSTS_FILE_FORMAT; hostfile.c, match.c); a
//! line counts for a host only when Go's knownhosts would match it too. ssh-key's `Entry` splits
//! on single spaces, cuts at any `#` and takes hashed names of any length, so it is not used.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::ssh_key::known_hosts::Marker;
use russh::keys::{HashAlg, PublicKey};
use sha1::Sha1;

const DEFAULT_PORT: u16 = 22;
/// OpenSSH gives up on a pattern list with a subpattern this long (match.c, `sub[1024]`).
const MAX_SUBPATTERN: usize = 1023;

/// A host key type as known_hosts names it. The order is a consumer's preference: OpenSSH's
/// default HostKeyAlgorithms (ed25519, ecdsa, the FIDO types, rsa; ssh-dss no longer offered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    SkEd25519,
    SkEcdsaP256,
    Rsa,
    Dss,
}

/// What a host key algorithm name in KEXINIT stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlgorithmKind {
    pub key_type: KeyType,
    /// A `*-cert-v01@openssh.com` algorithm: the server presents a certificate of that type.
    pub certificate: bool,
}

/// known_hosts names, in preference order.
#[rustfmt::skip]
const NAMES: [(KeyType, &str); 8] = [
    (KeyType::Ed25519, "ssh-ed25519"), (KeyType::EcdsaP256, "ecdsa-sha2-nistp256"),
    (KeyType::EcdsaP384, "ecdsa-sha2-nistp384"), (KeyType::EcdsaP521, "ecdsa-sha2-nistp521"),
    (KeyType::SkEd25519, "sk-ssh-ed25519@openssh.com"),
    (KeyType::SkEcdsaP256, "sk-ecdsa-sha2-nistp256@openssh.com"),
    (KeyType::Rsa, "ssh-rsa"), (KeyType::Dss, "ssh-dss"),
];

impl KeyType {
    /// Every type, in preference order.
    pub fn all() -> [KeyType; 8] {
        NAMES.map(|(t, _)| t)
    }

    pub fn as_str(self) -> &'static str {
        NAMES[self as usize].1
    }

    /// The key type a host key algorithm uses: rsa-sha2-256, rsa-sha2-512 and ssh-rsa all sign
    /// with an ssh-rsa key; `X-cert-v01@openssh.com` is a certificate for X.
    pub fn of_algorithm_name(name: &str) -> Option<AlgorithmKind> {
        let (base, certificate) = match name.strip_suffix("-cert-v01@openssh.com") {
            // The FIDO names lose their @openssh.com inside the certificate name.
            Some(b) if b.starts_with("sk-") => (format!("{b}@openssh.com"), true),
            Some(b) => (b.to_string(), true),
            None => (name.to_string(), false),
        };
        let key_type = match base.as_str() {
            "rsa-sha2-256" | "rsa-sha2-512" => KeyType::Rsa,
            other => NAMES.iter().find(|(_, n)| *n == other)?.0,
        };
        Some(AlgorithmKind {
            key_type,
            certificate,
        })
    }

    pub fn of(key: &PublicKey) -> Option<KeyType> {
        let kind = KeyType::of_algorithm_name(key.algorithm().as_str())?;
        (!kind.certificate).then_some(kind.key_type)
    }
}

/// `SHA256:...`, as ssh-keygen -l prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The name known_hosts files a host under: the bare name on port 22, else `[host]:port`
/// (OpenSSH's put_host_port, Go's knownhosts.Normalize).
pub fn host_name(host: &str, port: u16) -> String {
    match (bare(host), port) {
        (host, DEFAULT_PORT) => host.to_string(),
        (host, port) => format!("[{host}]:{port}"),
    }
}

/// The line a consumer pastes for `key`: `host keytype base64`. The host keeps its case: Go's
/// knownhosts compares names case-sensitively, OpenSSH does not.
pub fn known_hosts_line(host: &str, port: u16, key: &PublicKey) -> Option<String> {
    let (name, blob) = (host_name(host, port), STANDARD.encode(key.to_bytes().ok()?));
    Some(format!("{name} {} {blob}", key.algorithm().as_str()))
}

/// A URL's IPv6 host keeps its brackets; known_hosts names it without them.
fn bare(host: &str) -> &str {
    host.trim_matches(['[', ']'])
}

/// What known_hosts says about one host and port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matched {
    /// The plain keys listed for it, in file order.
    pub keys: Vec<PublicKey>,
    /// Every `@revoked` key in the file, whatever its names: Go's knownhosts revokes a key for
    /// every host, and a key someone revoked is trusted nowhere.
    pub revoked: Vec<PublicKey>,
    /// The `@cert-authority` keys whose names match.
    pub authorities: Vec<PublicKey>,
    /// Off port 22, nothing names `[host]:port`, but lines name the bare host (port 22).
    pub bare_name_only: bool,
    /// On port 22, nothing names the bare host, but lines name `[host]:22` (Go's reading only).
    pub bracketed_only: bool,
}

impl Matched {
    /// Whether any line vouches for the host (a key or an authority).
    pub fn names_host(&self) -> bool {
        !self.keys.is_empty() || !self.authorities.is_empty()
    }

    /// The types of the plain keys listed, in preference order.
    pub fn listed_types(&self) -> Vec<KeyType> {
        let listed = |t: &KeyType| self.keys.iter().any(|k| KeyType::of(k) == Some(*t));
        KeyType::all().into_iter().filter(listed).collect()
    }
}

#[derive(Clone, Debug)]
enum Names {
    /// The comma list, lowercased (OpenSSH lowercases patterns and names alike).
    Patterns(String),
    /// Salt and HMAC-SHA1, 20 bytes each.
    Hashed(Vec<u8>, Vec<u8>),
}

#[derive(Clone, Debug)]
struct Line {
    marker: Option<Marker>,
    names: Names,
    key: PublicKey,
}

/// A parsed known_hosts file.
#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    lines: Vec<Line>,
    skipped: usize,
}

impl KnownHosts {
    /// Reads every line it can and, like OpenSSH, skips the rest (Go's knownhosts refuses the
    /// whole file instead: a nonzero [`KnownHosts::skipped`] breaks Go consumers).
    pub fn parse(text: &str) -> KnownHosts {
        let mut known = KnownHosts::default();
        for line in text.lines() {
            match parse_line(line) {
                Ok(Some(l)) => known.lines.push(l),
                Ok(None) => {}
                Err(()) => known.skipped += 1,
            }
        }
        known
    }

    /// Unreadable lines: bad markers, missing fields, unknown types, bad keys or hashed names.
    pub fn skipped(&self) -> usize {
        self.skipped
    }

    pub fn lookup(&self, host: &str, port: u16) -> Matched {
        let host = bare(host).to_ascii_lowercase();
        let name = host_name(&host, port);
        let mut m = Matched::default();
        for l in &self.lines {
            match l.marker {
                Some(Marker::Revoked) => m.revoked.push(l.key.clone()),
                _ if !names_match(&l.names, &name, Some((&host, port))) => {}
                Some(Marker::CertAuthority) => m.authorities.push(l.key.clone()),
                None => m.keys.push(l.key.clone()),
            }
        }
        if !m.names_host() {
            // Near misses, named in the verdict: the bare name off port 22, `[host]:22` on it.
            let (alt, go) = match port {
                DEFAULT_PORT => (format!("[{host}]:{DEFAULT_PORT}"), None),
                _ => (host.clone(), Some((host.as_str(), DEFAULT_PORT))),
            };
            let vouch = |l: &Line| l.marker != Some(Marker::Revoked);
            let near = self
                .lines
                .iter()
                .any(|l| vouch(l) && names_match(&l.names, &alt, go));
            m.bare_name_only = near && port != DEFAULT_PORT;
            m.bracketed_only = near && port == DEFAULT_PORT;
        }
        m
    }
}

/// `Ok(None)`: blank or a comment; `Err`: unreadable.
fn parse_line(line: &str) -> Result<Option<Line>, ()> {
    // OpenSSH splits on blanks and tabs; a CRLF file's \r is blank to both OpenSSH and Go.
    let mut words = line.split([' ', '\t', '\r']).filter(|w| !w.is_empty());
    match words.next() {
        None => Ok(None),
        Some(w) if w.starts_with('#') => Ok(None),
        Some(first) => read_line(first, words).map(Some).ok_or(()),
    }
}

fn read_line<'a>(first: &'a str, mut words: impl Iterator<Item = &'a str>) -> Option<Line> {
    let (marker, names) = match first.strip_prefix('@') {
        Some(_) => (Some(first.parse::<Marker>().ok()?), words.next()?),
        None => (None, first),
    };
    let kind = KeyType::of_algorithm_name(words.next()?)?;
    let blob = STANDARD.decode(words.next()?).ok()?;
    let key = PublicKey::from_bytes(&blob).ok()?;
    // One marker only, as OpenSSH; and a host key, not a certificate, of the type named.
    if names.starts_with('@') || kind.certificate || KeyType::of(&key) != Some(kind.key_type) {
        return None;
    }
    let names = if names.starts_with('|') {
        hashed(names)?
    } else {
        Names::Patterns(names.to_ascii_lowercase())
    };
    Some(Line { marker, names, key })
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`. OpenSSH needs a 20-byte salt and compares
/// the whole field with the one it computes; canonical base64 of 20 bytes each is the same rule.
fn hashed(field: &str) -> Option<Names> {
    let (salt, hash) = field.strip_prefix("|1|")?.split_once('|')?;
    let salt = STANDARD.decode(salt).ok()?;
    let hash = STANDARD.decode(hash).ok()?;
    (salt.len() == 20 && hash.len() == 20).then_some(Names::Hashed(salt, hash))
}

/// `name` is what OpenSSH looks up (`host` or `[host]:port`, lowercase); `go`, when given, the
/// host and port Go's knownhosts compares, which must match as well.
fn names_match(names: &Names, name: &str, go: Option<(&str, u16)>) -> bool {
    match names {
        Names::Hashed(salt, hash) => Hmac::<Sha1>::new_from_slice(salt)
            .map(|mac| mac.chain_update(name.as_bytes()).verify_slice(hash).is_ok())
            .unwrap_or(false),
        // OpenSSH gives up on a list with a subpattern too long for its buffer.
        Names::Patterns(list) => {
            list.split(',')
                .all(|p| p.strip_prefix('!').unwrap_or(p).len() < MAX_SUBPATTERN)
                && list_matches(list, |p| glob(p.as_bytes(), name.as_bytes()))
                && go.is_none_or(|(host, port)| list_matches(list, |p| go_pattern(p, host, port)))
        }
    }
}

/// match.c match_pattern_list, and Go's hostPatterns.match: a negated match excludes the line,
/// whatever else matches.
fn list_matches(list: &str, matches: impl Fn(&str) -> bool) -> bool {
    let mut positive = false;
    for sub in list.split(',') {
        let (negated, pattern) = sub.strip_prefix('!').map_or((false, sub), |p| (true, p));
        if matches(pattern) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// Go's knownhosts reads a pattern as a host glob and a port, compared literally: `[host]:port`,
/// `host:port` (net.SplitHostPort takes it apart), else a name meaning port 22. A bracketed
/// pattern it cannot split makes Go refuse the file: it matches nothing.
fn go_pattern(p: &str, host: &str, port: u16) -> bool {
    let (h, pt) = match p.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some(parts) => parts,
            None => return false,
        },
        None => match p.split_once(':') {
            Some((h, pt)) if !pt.contains(':') => (h, pt),
            _ => (p, "22"),
        },
    };
    glob(h.as_bytes(), host.as_bytes()) && pt == port.to_string()
}

/// `*` any run of bytes, `?` one byte (match.c match_pattern). A greedy scan that backs up to
/// the last `*` gives the same answers as its recursion, without the exponential worst case.
fn glob(pattern: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
            }
            Some(&c) if c == b'?' || c == s[i] => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    star = Some((sp, si + 1));
                    p = sp + 1;
                    i = si + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Made with ssh-keygen (OpenSSH 9.2).
    #[rustfmt::skip]
    pub(crate) mod keys {
        pub const ED1: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILYPTVDkvLwhNvNRer4Z1nnWNxQCAPTzGp1Cb+DufBvM";
        pub const ED1_FP: &str = "SHA256:A6aaIel0sDNgHb/45nhUey0Hc72S8ZmNauUDKJfJIwY";
        pub const ED2: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPfw+YwosHk5JqahcNr0kWBoRioJhscgH8V0EXf5+Dtz";
        pub const EC1: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCqQmygVdVQp2+htJ8nZ5196rJKJUnjrXcPHAyN6Dq4gJh6mHR4KHmW+gEf/DBv0VKudrm1tJdzIPPixBXhOf6g=";
        pub const EC2: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOw907/3spmzKEaLd5jqoQP346ds1pmikeoTzTumGSFUo8WDWggh9PiM5di2TL0mDPn2h451DaiBlz/FlvuRS4o=";
        pub const RSA_OLD: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDIiWvkc4Gf+XybHZYHB16hGKCwqiL3vLwQrbuJCxgGpgUnxLDJn0O+aoXD87oGLEM8RgUvSnLkUJMo7DtwXquVu9+hor60yv/kD8pZVaGU9t55M8qPFi4h2IfDYrbwWKm0wvqzAhOxUmSBlkGanh3tahIvK+OIe9qp9xrp/UPqoicSkXV8TZJfDMKcL83lwHvh1QXY0y/v9IGt/ksloRfNM21Q8+txLqsW9jHMuzESd26+Zl6buCFLkcAVjPOGQhk7he29spIfz9c+OAXEoR9uxu5SvnLrSWXFxBUNauqggOtRazb1Hn8pQkQHRIw15U+KoUv4fB10Hh5OEqybO/AT";
        pub const RSA_NEW: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQCwJoTk5LKH87OQm0v6FWTtUnusr8g26pLpKYA7llxY1YkQ9MxlHALD4ErWrkaDMlw3uIUhcJdcjirNCG6Ze2kH093IQNyyP5lSkV/30OF3EOFoOXUCz49E/OoPfENjv/AL7VMOnMRYuD3zlstOkL1MZ0MS1yz/PcrTOIbBJRHmEALVGvy1q1OyNLLxYjUMWuMfgIZDwkJC4qHgzdQMoeb3UFpRoDK2pApV1Ihbz9EzN+DDJYEjF85enS9zGuYes6ugch4r2Jh2x+/dTIX5Ll8scBX+4vqMcKQW8hHHi94TNj5bSQV/o773OhBkHFCRTn+vtrkn8dtVgiRlUXWW/YN/";
        /// `ssh-keygen -H` of `ssh.bitbucket.org ED1` and `[git.example.com]:7999 EC1`.
        pub const HASHED: &str = "|1|MHPECKVj9Zc8mF2mBv7t7FdNLKA=|AfLi1Dx55EIlXmcmq/FRJ3eW/xA= ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILYPTVDkvLwhNvNRer4Z1nnWNxQCAPTzGp1Cb+DufBvM\n|1|c4Jsu3kTNKrR9SdDeyFVNoMPTqM=|yPTPm7HuQCsnKoG77UvNZuRhxoE= ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBCqQmygVdVQp2+htJ8nZ5196rJKJUnjrXcPHAyN6Dq4gJh6mHR4KHmW+gEf/DBv0VKudrm1tJdzIPPixBXhOf6g=";
    }
    use keys::*;

    pub(crate) fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).unwrap()
    }

    pub(crate) fn lookup(text: &str, host: &str, port: u16) -> Matched {
        KnownHosts::parse(text).lookup(host, port)
    }

    #[test]
    fn names_match_only_where_openssh_and_go_both_read_them_so() {
        const LIST: &str = "git.example.com,*.corp.example,!bad.corp.example,h?.example.org";
        const MIXED: &str = "Git.Example.COM,*.EXAMPLE.net,!BAD.example.net";
        #[rustfmt::skip]
        let cases = [
            (LIST, "git.example.com", 22, true), (LIST, "a.b.corp.example", 22, true),
            (LIST, "h1.example.org", 22, true), (LIST, "bad.corp.example", 22, false),
            (LIST, "corp.example", 22, false), (LIST, "h12.example.org", 22, false),
            (LIST, "git.example.com", 7999, false),
            (MIXED, "git.example.com", 22, true), (MIXED, "GIT.example.com", 22, true),
            (MIXED, "x.example.NET", 22, true), (MIXED, "bad.EXAMPLE.net", 22, false),
            ("[git.example.com]:7999", "git.example.com", 7999, true),
            ("[git.example.com]:7999", "git.example.com", 22, false),
            ("[*.example.com]:7999,!x.example.com", "git.example.com", 7999, true),
            ("*", "git.example.com", 22, true),
            // One reading only: `*` is port 22 to Go; `host:port` a literal name to OpenSSH;
            // `[host]:*` a glob to OpenSSH, a port named "*" to Go; `[host]:22` is never the
            // bare name to OpenSSH (put_host_port), always to Go.
            ("*", "git.example.com", 7999, false),
            ("git.example.com:7999", "git.example.com", 7999, false),
            ("[git.example.com]:*", "git.example.com", 7999, false),
            ("[git.example.com]:22", "git.example.com", 22, false),
        ];
        for (names, host, port, want) in cases {
            let m = lookup(&format!("{names} {ED1}"), host, port);
            assert_eq!(m.keys == [key(ED1)], want, "{names}: {host} port {port}");
        }
        let m = lookup(&format!("git.example.com {ED1}"), "git.example.com", 7999);
        assert!(m.bare_name_only && !m.bracketed_only, "{m:?}");
        let m = lookup(
            &format!("[Git.example.com]:22 {ED1}"),
            "git.example.com",
            22,
        );
        assert!(m.bracketed_only && !m.bare_name_only, "{m:?}");
    }

    #[test]
    fn hashed_names_from_ssh_keygen() {
        let known = KnownHosts::parse(HASHED);
        assert_eq!(known.skipped(), 0);
        #[rustfmt::skip]
        let cases = [("ssh.bitbucket.org", 22, vec![key(ED1)]), ("SSH.Bitbucket.ORG", 22, vec![key(ED1)]),
            ("git.example.com", 7999, vec![key(EC1)]), ("bitbucket.org", 22, vec![]), ("git.example.com", 22, vec![])];
        for (host, port, want) in cases {
            assert_eq!(known.lookup(host, port).keys, want, "{host} port {port}");
        }
        // A 3-byte salt, hash type 2, no hash: unreadable.
        let salt = "MHPECKVj9Zc8mF2mBv7t7FdNLKA=";
        let hash = "AfLi1Dx55EIlXmcmq/FRJ3eW/xA=";
        let bad = format!("|1|AAAA|{hash} {ED1}\n|2|{salt}|{hash} {ED1}\n|1|{salt} {ED1}");
        assert_eq!(KnownHosts::parse(&bad).skipped(), 3);
    }

    #[test]
    fn markers() {
        let text = format!(
            "@revoked other.example {RSA_OLD}\n@cert-authority *.example.com {ED2}\n\
             git.example.com {RSA_NEW}\n@cert-authority\tother.example {EC2}"
        );
        let m = lookup(&text, "git.example.com", 22);
        let want = (vec![key(RSA_NEW)], vec![key(RSA_OLD)], vec![key(ED2)]);
        assert_eq!((m.keys, m.revoked, m.authorities), want);
        let bad = format!("@bogus a {ED1}\n@revoked @cert-authority a {ED1}\n@revoked {ED1}");
        assert_eq!(KnownHosts::parse(&bad).skipped(), 3);
    }

    #[test]
    fn unreadable_lines_are_skipped_and_counted() {
        let (ed1, ec1) = (&ED1[12..], &EC1[20..]);
        #[rustfmt::skip]
        let text = [
            "", "   ", "# a comment", "  \t# an indented comment", "h", "h ssh-ed25519",
            "h ssh-ed25519 !!!not-base64", &format!("h ssh-rsa {ed1}"), &format!("h ssh-foo {ed1}"),
            &format!("h ecdsa-sha2-nistp384 {ec1}"), &format!("h #{ED1}"),
            &format!("h ssh-ed25519-cert-v01@openssh.com {ed1}"),
            &format!("h\t  {ED1}   a comment # here"), &format!("h {EC1}\r"),
        ];
        let known = KnownHosts::parse(&text.join("\n"));
        assert_eq!(known.skipped(), 8);
        assert_eq!(known.lookup("H", 22).keys, vec![key(ED1), key(EC1)]);
    }

    #[test]
    fn types_lines_and_fingerprints() {
        let kind = |n| KeyType::of_algorithm_name(n).map(|k| (k.key_type.as_str(), k.certificate));
        #[rustfmt::skip]
        let cases = [
            ("rsa-sha2-512", Some(("ssh-rsa", false))), ("rsa-sha2-256", Some(("ssh-rsa", false))),
            ("rsa-sha2-512-cert-v01@openssh.com", Some(("ssh-rsa", true))),
            ("ecdsa-sha2-nistp384", Some(("ecdsa-sha2-nistp384", false))),
            ("sk-ssh-ed25519-cert-v01@openssh.com", Some(("sk-ssh-ed25519@openssh.com", true))),
            ("sk-ecdsa-sha2-nistp256@openssh.com", Some(("sk-ecdsa-sha2-nistp256@openssh.com", false))),
            ("ssh-dss", Some(("ssh-dss", false))), ("ssh-ed448", None),
        ];
        for (name, want) in cases {
            assert_eq!(kind(name), want, "{name}");
        }
        assert_eq!(KeyType::of(&key(RSA_OLD)), Some(KeyType::Rsa));
        let line = known_hosts_line("ssh.bitbucket.org", 22, &key(ED1)).unwrap();
        assert_eq!(line, format!("ssh.bitbucket.org {ED1}"));
        let line = known_hosts_line("Git.example.com", 7999, &key(RSA_NEW)).unwrap();
        assert_eq!(line, format!("[Git.example.com]:7999 {RSA_NEW}"));
        assert_eq!(lookup(&line, "git.example.com", 7999).keys, [key(RSA_NEW)]);
        assert_eq!(host_name("[2001:db8::1]", 22), "2001:db8::1");
        assert_eq!(fingerprint(&key(ED1)), ED1_FP);
    }

    #[test]
    fn glob_is_openssh_match_pattern_without_the_blow_up() {
        assert!(glob(b"a*b?c", b"axxbyc") && glob(b"**", b"") && glob(b"*", b"[h]:7999"));
        assert!(!glob(b"a*b?c", b"abc") && !glob(b"?", b"") && !glob(b"", b"a"));
        let stars = format!("{}b", "*a".repeat(30));
        assert!(!glob(stars.as_bytes(), &[b'a'; 200]));
        let long = format!("x,{}", "y".repeat(MAX_SUBPATTERN));
        assert!(!names_match(&Names::Patterns(long), "x", None));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn noise_and_mutated_lines_never_panic(
            noise in "\\PC{0,300}",
            which in 0usize..3,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let lines = [HASHED, &format!("@cert-authority *.example.com,!x.example.com {ED2}"),
                &format!("[git.example.com]:7999,git.example.com {RSA_NEW} comment")];
            let mut bytes = lines[which].as_bytes().to_vec();
            for (at, b) in edits {
                if bytes.is_empty() { break; }
                let i = at.index(bytes.len());
                if b % 3 == 0 { bytes.remove(i); } else { bytes[i] = b; }
            }
            for text in [String::from_utf8_lossy(&bytes).into_owned(), noise.clone()] {
                let known = KnownHosts::parse(&text);
                prop_assert!(known.skipped() <= text.lines().count());
                let _ = (known.lookup("ssh.bitbucket.org", 22), known.lookup("[::1]", 2222));
            }
        }
    }
}
