//! What must hold before any check can run: the profiles apply to the spec, and every URL bbconn
//! is to contact (spec.url, spec.auth.tokenUrl, a clone URL) is http(s) with a host. Its cause is
//! InvalidSpec, which the catalogue (`src/catalogue.rs`) lets any check report.

use super::Finding;
use crate::api::{BitbucketConnectionSpec, GitTransport};
use crate::catalogue::Cause;
use crate::catalogue::Check;
use crate::profiles::{self, Effective};

/// The parts of a URL the checks need.
#[derive(Clone, Debug)]
pub struct Origin {
    pub url: url::Url,
    pub host: String,
}

impl Origin {
    /// Same scheme, host and port: one connection serves both.
    pub fn same(&self, other: &Origin) -> bool {
        self.url.scheme() == other.url.scheme()
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.url.port_or_known_default() == other.url.port_or_known_default()
    }
}

/// `raw` as an origin; `what` names it in the message (e.g. "spec.url").
pub fn origin(raw: &str, what: &str) -> Result<Origin, Finding> {
    let url = url::Url::parse(raw).map_err(|e| {
        Finding::new(
            Cause::InvalidSpec,
            format!("{what} {raw:?} is not a URL: {e}"),
        )
    })?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Finding::new(Cause::InvalidSpec, format!("{what} {raw:?} has no host")))?
        .to_string();
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Finding::new(
            Cause::InvalidSpec,
            format!("{what} {raw:?} is not http(s)"),
        ));
    }
    Ok(Origin { url, host })
}

/// The checks a connection is judged by: HostKeyVerified only over SSH; a connection checked
/// over SSH alone (no spec.auth) has no TLS, no token scopes to judge.
pub fn applicable(spec: &BitbucketConnectionSpec) -> Vec<Check> {
    let ssh = spec.git_transport() == GitTransport::Ssh;
    let rest = spec.auth.is_some();
    Check::ALL
        .into_iter()
        .filter(|c| match c {
            Check::HostKeyVerified => ssh,
            Check::TlsVerified | Check::ScopesSufficient => rest,
            _ => true,
        })
        .collect()
}

/// What the profiles and the spec require, and the API origin.
pub fn requirements(spec: &BitbucketConnectionSpec) -> Result<(Effective, Origin), Finding> {
    let req = profiles::effective(spec).map_err(|m| Finding::new(Cause::InvalidSpec, m))?;
    Ok((req, origin(spec.base_url(), "spec.url")?))
}
