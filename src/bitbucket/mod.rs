//! Bitbucket's REST APIs, read-only: the requests each flavour needs and what their answers mean
//! in Bitbucket's own terms. Deciding causes from them is the checks' job.

pub mod cloud;
pub mod datacenter;
pub mod git;
pub mod oauth;

use crate::api::DcPermission;
use crate::transport::http::{HttpError, Response, Session};
use http::{HeaderValue, Method, StatusCode};
use std::collections::BTreeSet;
use std::time::Duration;

/// Who Bitbucket says the credential is, and what it may do.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub user: Option<String>,
    /// e.g. api_token, repo_access_token (Cloud's x-credential-type), personal (Data Center).
    pub kind: Option<String>,
    /// Cloud: granted scopes, where Bitbucket reveals them.
    pub scopes: Option<BTreeSet<String>>,
    /// Data Center: the token's permissions, where its metadata is readable.
    pub permissions: Option<BTreeSet<DcPermission>>,
    pub expires_at: Option<jiff::Timestamp>,
    pub server_version: Option<String>,
    /// What later probes send. None: no token can be had without a person (application links).
    pub authorization: Option<HeaderValue>,
    /// Scopes the identity probe itself needs that the credential lacks (Cloud's 403 listing
    /// what is granted and what `GET /2.0/user` requires).
    pub probe_needs: BTreeSet<String>,
}

/// A session bound to an API base path and a credential.
pub struct Api<'a> {
    pub session: &'a mut Session,
    pub base_path: String,
    pub authorization: Option<HeaderValue>,
    /// Requests sent, by answer status, for metrics.
    pub statuses: Vec<u16>,
    /// What Bitbucket said of the credential's rate limit, last answer first seen per resource.
    pub rate_limits: Vec<RateLimit>,
}

/// Cloud's X-RateLimit-* headers (sent for access tokens on its scaled endpoints): the budget
/// per rolling hour, and whether it is nearly spent, so an alert can fire before a 429.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub resource: String,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub near_limit: bool,
}

impl RateLimit {
    fn from_response(r: &Response) -> Option<RateLimit> {
        let num = |h: &str| r.header(h).and_then(|v| v.trim().parse::<u64>().ok());
        let limit = num("x-ratelimit-limit");
        let remaining = num("x-ratelimit-remaining");
        let near_limit = r
            .header("x-ratelimit-nearlimit")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if limit.is_none() && remaining.is_none() && !near_limit {
            return None;
        }
        Some(RateLimit {
            resource: r
                .header("x-ratelimit-resource")
                .map(|v| excerpt(v.trim(), 60))
                .unwrap_or_default(),
            limit,
            remaining,
            near_limit,
        })
    }
}

const MAX_REDIRECTS: usize = 3;

impl<'a> Api<'a> {
    pub fn new(
        session: &'a mut Session,
        base_path: &str,
        authorization: Option<HeaderValue>,
    ) -> Api<'a> {
        Api {
            session,
            base_path: base_path.trim_end_matches('/').to_string(),
            authorization,
            statuses: Vec::new(),
            rate_limits: Vec::new(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, Error> {
        let full = format!("{}{}", self.base_path, path);
        self.request(Method::GET, full, None).await
    }

    /// POST to an absolute path on this origin (token endpoints live outside the API base).
    pub async fn post_form(
        &mut self,
        path: &str,
        form: String,
        auth: Option<HeaderValue>,
    ) -> Result<Response, Error> {
        let saved = std::mem::replace(&mut self.authorization, auth);
        let r = self
            .request(Method::POST, path.to_string(), Some(form))
            .await;
        self.authorization = saved;
        r
    }

    /// Sends, and turns what no check can interpret (timeouts, 5xx, 429, oversized bodies,
    /// redirects off this origin) into the "any check" causes. Same-origin redirects are followed
    /// for GET; the credential never leaves the origin it was meant for.
    async fn request(
        &mut self,
        method: Method,
        mut path: String,
        form: Option<String>,
    ) -> Result<Response, Error> {
        for _ in 0..=MAX_REDIRECTS {
            let r = self
                .session
                .send(
                    method.clone(),
                    &path,
                    self.authorization.as_ref(),
                    form.clone(),
                )
                .await
                .map_err(|e| transport_error(&e, &path))?;
            self.statuses.push(r.status.as_u16());
            if let Some(rl) = RateLimit::from_response(&r) {
                self.rate_limits.retain(|x| x.resource != rl.resource);
                self.rate_limits.push(rl);
            }
            if r.status.is_redirection() {
                let location = r.header("location").unwrap_or_default().to_string();
                if is_login_page(&location) {
                    // Data Center sends a token outside /rest and /scm to its login page: the
                    // base URL's path is wrong (tests/real-answers: dc-302-token-on-non-rest-path).
                    return Err(Error::LoginPage(format!(
                        "{method} {path} was redirected to the login page ({}): Bitbucket accepts tokens only under its REST path, so spec.url's path is not the server's context path",
                        excerpt(&location, 80)
                    )));
                }
                match same_origin_path(self.session.authority(), &location) {
                    Some(p) if method == Method::GET => {
                        path = p;
                        continue;
                    }
                    _ => {
                        return Err(Error::Redirect(format!(
                            "{method} {path} was answered {} with Location {location:?}; bbconn does not follow it with credentials",
                            r.status
                        )));
                    }
                }
            }
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = r.header("retry-after").and_then(parse_retry_after);
                let message = format!(
                    "Bitbucket answered 429 Too Many Requests to {method} {path} ({})",
                    match retry_after {
                        Some(d) => format!("Retry-After {}s", d.as_secs()),
                        None => "no Retry-After: bbconn backs off on its own".to_string(),
                    }
                );
                // Cloud's 429s carry no Retry-After (tests/real-answers: cloud-429-*): wait a
                // minute at least, so a credential's rolling-hour budget is never spent on retries.
                return Err(Error::RateLimited {
                    message,
                    retry_after: retry_after.unwrap_or(RATE_LIMIT_FLOOR),
                });
            }
            if r.status.is_server_error() {
                return Err(Error::ServerFailed(format!(
                    "Bitbucket answered {} to {method} {path}",
                    r.status
                )));
            }
            return Ok(r);
        }
        Err(Error::Redirect(format!(
            "{method} {path}: more than {MAX_REDIRECTS} redirects"
        )))
    }
}

/// What went wrong with a request, as Bitbucket or the connection showed it. Each variant holds
/// the message; the cause is the checks' to decide (`checks/answers.rs`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Redirected to the login page: not the REST API's path.
    #[error("{0}")]
    LoginPage(String),
    /// Redirected off this origin (or too often): the credential is not sent after it.
    #[error("{0}")]
    Redirect(String),
    /// 429, with when to try again.
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after: Duration,
    },
    /// 5xx, or the connection failed.
    #[error("{0}")]
    ServerFailed(String),
    /// No answer in time.
    #[error("{0}")]
    TimedOut(String),
    /// An answer that is not what Bitbucket's API gives (status, content, size).
    #[error("{0}")]
    Unexpected(String),
}

fn transport_error(e: &HttpError, path: &str) -> Error {
    let message = format!("{path}: {e}");
    match e {
        HttpError::Timeout(_) => Error::TimedOut(message),
        HttpError::BodyTooLarge(_) => Error::Unexpected(message),
        HttpError::Connection(_) => Error::ServerFailed(message),
    }
}

/// A Location on the same origin, as a path; None for anything that leaves it.
fn same_origin_path(authority: &str, location: &str) -> Option<String> {
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(location.to_string());
    }
    let u = url::Url::parse(location).ok()?;
    let port = u.port_or_known_default()?;
    let host = u.host_str()?;
    let same = u.scheme() == "https"
        && (authority.eq_ignore_ascii_case(&format!("{host}:{port}"))
            || (port == 443 && authority.eq_ignore_ascii_case(host)));
    same.then(|| match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    })
}

/// How long to wait after a 429 that names no Retry-After.
pub const RATE_LIMIT_FLOOR: Duration = Duration::from_secs(60);

fn is_login_page(location: &str) -> bool {
    let path = location.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/').ends_with("/login") || path.contains("/login.jsp")
}

/// At most `max` characters of an untrusted value, for messages.
pub fn excerpt(s: &str, max: usize) -> String {
    crate::scrub::excerpt(s, max).into_owned()
}

/// The longest wait a Retry-After can ask for: a server (or anything a connection points at)
/// must not be able to park a connection for years, nor overflow the operator's clock.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Retry-After is seconds or an HTTP date (RFC 9110 section 10.2.3), capped at
/// [`MAX_RETRY_AFTER`]; a date in the past means now.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    retry_after_at(v, jiff::Timestamp::now())
}

fn retry_after_at(v: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = v.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: seconds, however many (u64 overflow is just "very long").
        let secs = v.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let left = when.duration_since(now);
    if left.is_negative() {
        return Some(Duration::ZERO);
    }
    Some(left.unsigned_abs().min(MAX_RETRY_AFTER))
}

/// The first error message of either flavour's error body, for messages.
pub fn error_message(r: &Response) -> String {
    let from_json = r.json().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.pointer("/errors/0/message"))
            .or_else(|| v.get("error_description"))
            // Data Center 10's "Basic Authentication has been disabled" has no envelope.
            .or_else(|| v.get("message"))
            .and_then(|m| m.as_str().map(str::to_string))
    });
    let text = from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&r.body);
        text.lines().next().unwrap_or_default().to_string()
    });
    excerpt(text.trim(), 200)
}

/// Data Center's `exceptionName` (e.g. `com.atlassian.bitbucket.auth.CaptchaRequiredAuthenticationException`).
pub fn exception_name(r: &Response) -> String {
    r.json()
        .and_then(|v| {
            v.pointer("/errors/0/exceptionName")
                .and_then(|s| s.as_str())
                .map(|s| excerpt(s, 120))
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_stay_on_their_origin() {
        assert_eq!(
            same_origin_path("bb.example.com", "/rest/x"),
            Some("/rest/x".into())
        );
        assert_eq!(
            same_origin_path("bb.example.com", "https://bb.example.com/a?b=1"),
            Some("/a?b=1".into())
        );
        assert_eq!(
            same_origin_path("bb.example.com", "https://evil.example/a"),
            None
        );
        assert_eq!(
            same_origin_path("bb.example.com", "http://bb.example.com/a"),
            None
        );
        assert_eq!(same_origin_path("bb.example.com", "//evil.example/a"), None);
        assert_eq!(parse_retry_after("30"), Some(Duration::from_secs(30)));
    }

    #[test]
    fn retry_after_is_bounded() {
        let now: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
        let at = |v: &str| retry_after_at(v, now);
        assert_eq!(at("18446744073709551615"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("99999999999999999999999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(at(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(at("0"), Some(Duration::ZERO));
        assert_eq!(
            at("Wed, 02 Dec 2026 12:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(at("Wed, 01 Jan 3000 00:00:00 GMT"), Some(MAX_RETRY_AFTER));
        assert_eq!(at("Mon, 01 Jan 1900 00:00:00 GMT"), Some(Duration::ZERO));
        for junk in [
            "",
            "-5",
            "1.5",
            "soon",
            "+30",
            "Wed, 99 Foo 2026",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(at(junk), None, "{junk:?}");
        }
    }
}
