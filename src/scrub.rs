//! The last line of defence for secrets, and the one way a message quotes a value.
//!
//! A server can echo what it was sent (the Authorization header, a form body) into any answer
//! bbconn reads, and those answers end up in messages. [`report`] removes every secret value
//! from a run's report in each form a server is likely to echo it: raw, JSON- and
//! Debug-escaped, percent- and form-encoded (either hex case), hex, and base64 in both
//! alphabets, padded or not, at any alignment (so `base64(user:secret)`, a Basic header, is
//! caught as well as `base64(secret)`).
//!
//! [`excerpt`] cuts a value to a short head marked with `…`; a secret cut there is caught by
//! its head.

use crate::credential::Credential;
use crate::engine::Report;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";
/// What marks a cut excerpt.
pub const CUT: &str = "…";

/// At most `max` characters of `s`, marked with `…` when cut: the way every message quotes a
/// value that came from input (a spec field, a server's answer).
pub fn excerpt(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        None => Cow::Borrowed(s),
        Some((i, _)) => Cow::Owned(format!("{}{CUT}", s.get(..i).unwrap_or_default())),
    }
}

/// Values shorter than this are not scrubbed: they would redact ordinary words, and no
/// credential is that short (CredentialsResolved does not check lengths, so this is a floor).
const MIN_SECRET: usize = 4;

/// Every form of a set of secret values, longest first.
#[derive(Clone, Debug, Default)]
pub struct Scrubber {
    forms: Vec<String>,
}

impl Scrubber {
    /// `secrets` are values never to show; `pairs` are (user, secret) as Basic sends them.
    pub fn new(secrets: &[&str], pairs: &[(&str, &str)]) -> Scrubber {
        let mut forms = Vec::new();
        for s in secrets.iter().filter(|s| s.len() >= MIN_SECRET) {
            forms.extend(text_forms(s));
            forms.extend(base64_cores(s.as_bytes()));
        }
        for (user, secret) in pairs.iter().filter(|(_, s)| s.len() >= MIN_SECRET) {
            let joined = format!("{user}:{secret}");
            for e in [STANDARD, URL_SAFE] {
                forms.push(e.encode(&joined));
            }
            for e in [STANDARD_NO_PAD, URL_SAFE_NO_PAD] {
                forms.push(e.encode(&joined));
            }
        }
        forms.retain(|f| f.len() >= MIN_SECRET);
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Scrubber { forms }
    }

    pub fn from_credential(c: &Credential) -> Scrubber {
        let secrets = c.secret_values();
        let pairs: Vec<(&str, &str)> = match c {
            Credential::ApiToken { email, token } => vec![(email.expose(), token.expose())],
            Credential::Basic { username, password }
            | Credential::AppPassword { username, password } => {
                vec![(username.expose(), password.expose())]
            }
            Credential::OAuthClient {
                client_id,
                client_secret,
            }
            | Credential::OAuthAppLink {
                client_id,
                client_secret,
                ..
            } => vec![(client_id.expose(), client_secret.expose())],
            // Bitbucket's HTTP access tokens also work as Basic with the user name, unknown here;
            // base64_cores catches them at any alignment.
            Credential::AccessToken { .. } => Vec::new(),
        };
        Scrubber::new(&secrets, &pairs)
    }

    /// Removes every form from `s`, and the head of a form that an excerpt cut off.
    pub fn clean(&self, s: &mut String) {
        for f in &self.forms {
            if s.contains(f.as_str()) {
                *s = s.replace(f.as_str(), REDACTED);
            }
        }
        if s.contains(CUT) {
            *s = self.clean_cut(s);
        }
    }

    fn clean_cut(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut pieces = s.split(CUT).peekable();
        while let Some(piece) = pieces.next() {
            let cut_here = pieces.peek().is_some();
            let mut kept = piece;
            if cut_here {
                // The longest head (at least MIN_SECRET bytes) of a form that ends the piece.
                let head = self
                    .forms
                    .iter()
                    .filter_map(|f| {
                        (MIN_SECRET..f.len())
                            .rev()
                            .filter(|n| f.is_char_boundary(*n))
                            .find(|n| f.get(..*n).is_some_and(|h| piece.ends_with(h)))
                    })
                    .max();
                if let Some(n) = head {
                    kept = piece
                        .get(..piece.len().saturating_sub(n))
                        .unwrap_or_default();
                    out.push_str(kept);
                    out.push_str(REDACTED);
                    out.push_str(CUT);
                    continue;
                }
            }
            out.push_str(kept);
            if cut_here {
                out.push_str(CUT);
            }
        }
        out
    }

    /// Whether any form of a secret occurs in `s` (for tests and assertions).
    pub fn finds(&self, s: &str) -> bool {
        self.forms.iter().any(|f| s.contains(f.as_str()))
    }
}

/// The secret as text, in the encodings a server or a formatter may apply.
fn text_forms(s: &str) -> Vec<String> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let mut v = vec![s.to_string()];
    let debug = format!("{s:?}");
    v.push(trim_quotes(&debug).to_string());
    if let Ok(json) = serde_json::to_string(s) {
        v.push(trim_quotes(&json).to_string());
    }
    let pct = utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    v.push(lower_hex_escapes(&pct));
    v.push(pct);
    let form: String = url::form_urlencoded::byte_serialize(s.as_bytes()).collect();
    v.push(lower_hex_escapes(&form));
    v.push(form);
    // The userinfo and path encode sets leave most punctuation alone.
    const USERINFO: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
        .add(b' ')
        .add(b'"')
        .add(b'#')
        .add(b'<')
        .add(b'>')
        .add(b'?')
        .add(b'`')
        .add(b'{')
        .add(b'}')
        .add(b'/')
        .add(b':')
        .add(b';')
        .add(b'=')
        .add(b'@')
        .add(b'[')
        .add(b'\\')
        .add(b']')
        .add(b'^')
        .add(b'|');
    let userinfo = utf8_percent_encode(s, USERINFO).to_string();
    v.push(lower_hex_escapes(&userinfo));
    v.push(userinfo);
    let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
    v.push(hex.to_ascii_uppercase());
    v.push(hex);
    v
}

fn trim_quotes(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// `%2F` -> `%2f`.
fn lower_hex_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut left = 0u8;
    for c in s.chars() {
        if c == '%' {
            left = 2;
            out.push(c);
        } else if left > 0 {
            left = left.saturating_sub(1);
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The part of base64 that any encoding of a stream holding `secret` contains, for each of the
/// three alignments the secret can have in it, in both alphabets; and the whole encoding of the
/// secret alone, padded and not.
fn base64_cores(secret: &[u8]) -> Vec<String> {
    let mut v = Vec::new();
    for k in 0..3usize {
        let mut padded = vec![0u8; k];
        padded.extend_from_slice(secret);
        let enc = STANDARD_NO_PAD.encode(&padded);
        // Characters that hold bits of the k leading bytes depend on what precedes the secret;
        // a trailing partial character depends on what follows it.
        let skip = (k * 8).div_ceil(6);
        let end = if padded.len() % 3 == 0 {
            enc.len()
        } else {
            enc.len().saturating_sub(1)
        };
        if let Some(core) = enc.get(skip..end) {
            v.push(core.to_string());
            v.push(core.replace('+', "-").replace('/', "_"));
        }
    }
    v.push(STANDARD.encode(secret));
    v.push(URL_SAFE.encode(secret));
    v
}

/// Removes every form of the credential's secret values from everything a report carries
/// into a status, an event, a metric label or `bbconn check`'s output.
pub fn report(report: &mut Report, credential: &Credential) {
    report_with(report, &Scrubber::from_credential(credential));
}

/// [`report`] with any scrubber (e.g. one for the egress proxy's credentials).
pub fn report_with(report: &mut Report, s: &Scrubber) {
    for r in &mut report.results {
        match &mut r.verdict {
            crate::checks::Verdict::Failed(f) => s.clean(&mut f.message),
            crate::checks::Verdict::Passed { message, .. } => s.clean(message),
            crate::checks::Verdict::Skipped { .. } => {}
        }
        for w in &mut r.warnings {
            s.clean(&mut w.message);
        }
    }
    if let Some(f) = report.invalid.as_mut() {
        s.clean(&mut f.message);
    }
    if let Some(server) = report.server.as_mut()
        && let Some(v) = server.version.as_mut()
    {
        s.clean(v);
    }
    if let Some(c) = report.credential.as_mut() {
        if let Some(k) = c.kind.as_mut() {
            s.clean(k);
        }
        for scope in &mut c.scopes {
            s.clean(scope);
        }
    }
    if let Some(cert) = report.certificate.as_mut() {
        s.clean(&mut cert.subject);
        s.clean(&mut cert.issuer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t/p@ss+w0rd=?";

    fn scrubbed(s: &Scrubber, text: &str) -> String {
        let mut t = text.to_string();
        s.clean(&mut t);
        t
    }

    #[test]
    fn removes_every_encoded_form() {
        let s = Scrubber::new(&[SECRET], &[("alice@example.com", SECRET)]);
        let pair = format!("alice@example.com:{SECRET}");
        let forms = vec![
            SECRET.to_string(),
            STANDARD.encode(SECRET),
            STANDARD_NO_PAD.encode(SECRET),
            URL_SAFE.encode(SECRET),
            URL_SAFE_NO_PAD.encode(SECRET),
            STANDARD.encode(&pair),
            URL_SAFE_NO_PAD.encode(&pair),
            // base64 of the secret inside a longer stream, at each alignment
            STANDARD.encode(format!("x{SECRET}yz")),
            STANDARD.encode(format!("xy{SECRET}z")),
            STANDARD.encode(format!("user:{SECRET}")),
            percent_encoding::utf8_percent_encode(SECRET, percent_encoding::NON_ALPHANUMERIC)
                .to_string(),
            url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect(),
            "s3cr3t%2fp%40ss%2bw0rd%3d%3f".to_string(),
            format!("{:?}", "s3cr3t/p@ss+w0rd=?\""),
        ];
        for f in forms {
            let text = format!("Bitbucket said: Authorization: Basic {f} was wrong");
            let out = scrubbed(&s, &text);
            assert!(!s.finds(&out), "{f} -> {out}");
            assert!(out.contains(REDACTED), "{f} -> {out}");
            assert!(!out.contains("s3cr3t"), "{f} -> {out}");
        }
    }

    #[test]
    fn a_cut_secret_is_caught_by_its_head() {
        let s = Scrubber::new(&[SECRET], &[]);
        let text = format!("answer: {}", excerpt(&format!("token={SECRET}"), 14));
        assert!(text.contains("s3cr"), "{text}");
        let out = scrubbed(&s, &text);
        assert!(!out.contains("s3cr"), "{out}");
        assert!(out.ends_with(&format!("{REDACTED}{CUT}")), "{out}");
    }

    #[test]
    fn leaves_ordinary_text_and_short_values_alone() {
        let s = Scrubber::new(&["abc"], &[]);
        assert_eq!(scrubbed(&s, "abc def"), "abc def");
        let s = Scrubber::new(&[SECRET], &[]);
        let text = "GET /rest/api/latest/application-properties answered 401 Unauthorized";
        assert_eq!(scrubbed(&s, text), text);
    }

    #[test]
    fn excerpts_are_short_and_marked() {
        assert_eq!(excerpt("short", 60), "short");
        let long = "é".repeat(1 << 20);
        let e = excerpt(&long, 60);
        assert_eq!(e.chars().count(), 61);
        assert!(e.ends_with(CUT));
    }
}
