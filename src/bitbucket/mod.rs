//! Bitbucket's REST APIs, read-only: the requests each flavour needs and what their answers mean
//! in Bitbucket's own terms. Deciding causes from them is the checks' job.

pub mod cloud;
pub mod datacenter;
pub mod git;
pub mod oauth;

use crate::api::DcPermission;
use crate::catalogue::Cause;
use crate::checks::Finding;
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
}

/// A session bound to an API base path and a credential.
pub struct Api<'a> {
    pub session: &'a mut Session,
    pub base_path: String,
    pub authorization: Option<HeaderValue>,
    /// Requests sent, by answer status, for metrics.
    pub statuses: Vec<u16>,
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
        }
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, Finding> {
        let full = format!("{}{}", self.base_path, path);
        self.request(Method::GET, full, None).await
    }

    /// POST to an absolute path on this origin (token endpoints live outside the API base).
    pub async fn post_form(
        &mut self,
        path: &str,
        form: String,
        auth: Option<HeaderValue>,
    ) -> Result<Response, Finding> {
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
    ) -> Result<Response, Finding> {
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
                .map_err(|e| transport_finding(&e, &path))?;
            self.statuses.push(r.status.as_u16());
            if r.status.is_redirection() {
                let location = r.header("location").unwrap_or_default().to_string();
                match same_origin_path(self.session.authority(), &location) {
                    Some(p) if method == Method::GET => {
                        path = p;
                        continue;
                    }
                    _ => {
                        return Err(Finding::new(
                            Cause::UnexpectedRedirect,
                            format!(
                                "{method} {path} was answered {} with Location {location:?}; bbconn does not follow it with credentials",
                                r.status
                            ),
                        ));
                    }
                }
            }
            if r.status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = r.header("retry-after").and_then(parse_retry_after);
                let mut f = Finding::new(
                    Cause::RateLimited,
                    format!(
                        "Bitbucket answered 429 Too Many Requests to {method} {path}{}",
                        retry_after.map_or(String::new(), |d| format!(
                            " (Retry-After {}s)",
                            d.as_secs()
                        ))
                    ),
                );
                f.retry_after = retry_after;
                return Err(f);
            }
            if r.status.is_server_error() {
                return Err(Finding::new(
                    Cause::ServerError,
                    format!("Bitbucket answered {} to {method} {path}", r.status),
                ));
            }
            return Ok(r);
        }
        Err(Finding::new(
            Cause::UnexpectedRedirect,
            format!("{method} {path}: more than {MAX_REDIRECTS} redirects"),
        ))
    }
}

fn transport_finding(e: &HttpError, path: &str) -> Finding {
    match e {
        HttpError::Timeout(_) => Finding::new(Cause::ConnectionTimedOut, format!("{path}: {e}")),
        HttpError::BodyTooLarge(_) => {
            Finding::new(Cause::UnexpectedResponse, format!("{path}: {e}"))
        }
        HttpError::Connection(_) => Finding::new(Cause::ServerError, format!("{path}: {e}")),
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

/// Retry-After is seconds or an HTTP date (RFC 9110 section 10.2.3).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v.trim()).ok()?.timestamp();
    let left = when.duration_since(jiff::Timestamp::now());
    Some(Duration::from_secs(left.as_secs().max(0).unsigned_abs()))
}

/// The first error message of either flavour's error body, for messages.
pub fn error_message(r: &Response) -> String {
    let from_json = r.json().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.pointer("/errors/0/message"))
            .or_else(|| v.get("error_description"))
            .and_then(|m| m.as_str().map(str::to_string))
    });
    from_json.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(&r.body);
        let line = text.lines().next().unwrap_or_default();
        line.chars().take(200).collect()
    })
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
}
