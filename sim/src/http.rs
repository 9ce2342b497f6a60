//! Small HTTP helpers shared by both flavours: the request as handlers see it, and responses.

use base64::Engine as _;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

pub(crate) type Resp = Response<Full<Bytes>>;

/// A request, body read, as the flavour handlers see it.
pub(crate) struct Req {
    pub listener: usize,
    pub method: Method,
    /// The full request path (Data Center handlers get it with the base path removed).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub tls: bool,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn authorization(&self) -> Option<&str> {
        self.header("authorization")
    }

    /// The first value of a query parameter, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    /// `scheme://host[:port]` as the client addressed us (for links in Data Center answers).
    pub fn origin(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = self.header("host").unwrap_or("localhost");
        format!("{scheme}://{host}")
    }
}

/// The credential in an Authorization header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Credential {
    Basic {
        user: String,
        password: String,
    },
    Bearer(String),
    /// Present but neither well-formed Basic nor Bearer.
    Malformed,
}

pub(crate) fn parse_authorization(value: &str) -> Credential {
    let value = value.trim();
    let (scheme, rest) = match value.split_once(' ') {
        Some((s, r)) => (s, r.trim()),
        None => return Credential::Malformed,
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Credential::Malformed;
        }
        return Credential::Bearer(rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return Credential::Malformed;
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return Credential::Malformed;
        };
        return match decoded.split_once(':') {
            Some((u, p)) => Credential::Basic {
                user: u.to_owned(),
                password: p.to_owned(),
            },
            None => Credential::Malformed,
        };
    }
    Credential::Malformed
}

pub(crate) fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

pub(crate) fn bytes(code: u16, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status(code);
    if !content_type.is_empty() {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    resp
}

pub(crate) fn json(code: u16, body: &Value) -> Resp {
    bytes(code, "application/json; charset=utf-8", body.to_string())
}

pub(crate) fn text(code: u16, body: &str) -> Resp {
    bytes(code, "text/plain; charset=utf-8", body.to_owned())
}

pub(crate) fn empty(code: u16) -> Resp {
    bytes(code, "", Bytes::new())
}

/// Sets a header; values that are not valid header text are dropped.
pub(crate) fn set_header(resp: &mut Resp, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

/// Splits a path into its non-empty segments.
pub(crate) fn segments(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// A stable 64-bit FNV-1a hash, for ids derived from names.
pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A stable `{8-4-4-4-12}` UUID derived from a name (Bitbucket Cloud writes UUIDs in braces).
pub(crate) fn uuid_for(name: &str) -> String {
    let a = fnv(name);
    let b = fnv(&format!("{name}#"));
    format!(
        "{{{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}}}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        (b >> 48) & 0xfff,
        b & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_authorization() {
        assert_eq!(
            parse_authorization("Basic YWxpY2U6cHc="),
            Credential::Basic {
                user: "alice".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            parse_authorization("Bearer abc"),
            Credential::Bearer("abc".into())
        );
        assert_eq!(parse_authorization("Token abc"), Credential::Malformed);
        assert_eq!(parse_authorization("Basic !!"), Credential::Malformed);
    }

    #[test]
    fn uuids_are_stable_and_braced() {
        let u = uuid_for("alice");
        assert_eq!(u, uuid_for("alice"));
        assert_eq!(u.len(), 38);
        assert!(u.starts_with('{') && u.ends_with('}'));
    }
}
