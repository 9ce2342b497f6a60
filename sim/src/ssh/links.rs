//! Data Center's `ssh` clone link in its repository answers.

use crate::fixture::ListenerKind;
use crate::state::Shared;

/// The bound port of the fixture's first Data Center SSH listener, if it has one.
pub(crate) fn dc_ssh_port(shared: &Shared) -> Option<u16> {
    shared
        .listeners
        .iter()
        .find(|l| l.kind == ListenerKind::Ssh && l.dc)
        .map(|l| l.addr.port())
}

/// `ssh://git@HOST:PORT/key/slug.git`, HOST as the request's Host header names it (without its
/// port). With a Data Center SSH listener, PORT is its bound port and HOST defaults to
/// 127.0.0.1; without one, Data Center's default port 7999 and `localhost`.
pub(crate) fn dc_clone_href(
    port: Option<u16>,
    host: Option<&str>,
    key: &str,
    slug: &str,
) -> String {
    let fallback = if port.is_some() {
        "127.0.0.1"
    } else {
        "localhost"
    };
    let host = host.map(host_only).unwrap_or(fallback);
    format!("ssh://git@{host}:{}/{key}/{slug}.git", port.unwrap_or(7999))
}

/// A Host header without its port (`[::1]:8443` -> `[::1]`).
fn host_only(h: &str) -> &str {
    if h.starts_with('[') {
        return h.find(']').map_or(h, |i| &h[..=i]);
    }
    h.rsplit_once(':').map_or(h, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clone_hrefs() {
        assert_eq!(
            dc_clone_href(Some(40022), Some("bitbucket.internal:8443"), "proj", "app"),
            "ssh://git@bitbucket.internal:40022/proj/app.git"
        );
        assert_eq!(
            dc_clone_href(Some(40022), None, "proj", "app"),
            "ssh://git@127.0.0.1:40022/proj/app.git"
        );
        assert_eq!(
            dc_clone_href(None, Some("[::1]"), "proj", "app"),
            "ssh://git@[::1]:7999/proj/app.git"
        );
    }
}
