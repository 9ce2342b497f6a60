//! Which git URLs are Bitbucket, and what a connection needs from one: flavor, REST base,
//! repository name, transport. And Argo CD's own URL normalisation and credential-template
//! match, so bbconn picks the credential Argo CD would (docs/design DISCOVERY.md).
//!
//! Pure functions: no I/O, no guessing. A host is Data Center only when it is listed.

use crate::api::{Flavor, GitTransport};
use crate::checks::git_access::ssh::{CLOUD_ALT_SSH, CLOUD_OLD_HOST, CLOUD_SSH_HOST};

/// A Data Center host the operator was told about (`--discover-datacenter-host HOST[:PORT]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataCenterHost {
    pub host: String,
    /// The HTTPS port of its REST API, where it is not 443.
    pub port: Option<u16>,
}

impl std::str::FromStr for DataCenterHost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not HOST or HOST:PORT");
        if s.is_empty() || s.contains('/') || s.contains('@') {
            return Err(bad());
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().map_err(|_| bad())?)),
            None => (s, None),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(DataCenterHost {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// A Bitbucket repository as a consumer's URL names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BitbucketRepo {
    pub flavor: Flavor,
    pub transport: GitTransport,
    /// Data Center: the REST base (what precedes `/scm/`, or `https://HOST[:PORT]` for SSH).
    /// Cloud: None (the connection's default API).
    pub rest_base: Option<String>,
    /// Transport SSH: `ssh://USER@HOST[:PORT]`, where the consumer connects.
    pub ssh_origin: Option<String>,
    /// `workspace/slug` (Cloud) or `KEY/slug` (Data Center, `~user/slug` for personal ones).
    pub name: String,
    /// The host the URL names, lower case (what Argo CD keys its TLS certificates by).
    pub host: String,
}

impl BitbucketRepo {
    /// The port git over HTTPS reaches: the REST base's, else 443.
    pub fn https_port(&self) -> u16 {
        self.rest_base
            .as_deref()
            .and_then(|b| url::Url::parse(b).ok())
            .and_then(|u| u.port())
            .unwrap_or(443)
    }
}

/// The pieces of a git URL this module reads.
struct Parts {
    scheme: Scheme,
    user: Option<String>,
    host: String,
    port: Option<u16>,
    path: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Https,
    Ssh,
}

fn parts(raw: &str) -> Option<Parts> {
    let raw = raw.trim();
    if let Some((scheme, _)) = raw.split_once("://") {
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => Scheme::Https,
            "ssh" => Scheme::Ssh,
            // http:// is Bitbucket too, but the Reachable check says PlainHttpNotAllowed: keep it.
            "http" => Scheme::Https,
            _ => return None,
        };
        let u = url::Url::parse(raw).ok()?;
        let host = u.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase();
        let user = (!u.username().is_empty()).then(|| u.username().to_string());
        let path = percent_encoding::percent_decode_str(u.path())
            .decode_utf8()
            .ok()?
            .into_owned();
        let port = u.port();
        // http:// keeps its scheme in the REST base, so the check reports it as it is.
        let port = if scheme == Scheme::Https && raw.to_ascii_lowercase().starts_with("http://") {
            Some(port.unwrap_or(80))
        } else {
            port
        };
        return Some(Parts {
            scheme,
            user,
            host,
            port,
            path,
        });
    }
    // scp form: [user@]host:path (Argo CD accepts it; Flux does not).
    let (userhost, path) = raw.split_once(':')?;
    if userhost.contains('/') || path.starts_with("//") {
        return None;
    }
    let (user, host) = match userhost.split_once('@') {
        Some((u, h)) => (Some(u.to_string()), h),
        None => (None, userhost),
    };
    if host.is_empty() {
        return None;
    }
    Some(Parts {
        scheme: Scheme::Ssh,
        user,
        host: host.to_ascii_lowercase(),
        port: None,
        path: path.to_string(),
    })
}

fn is_cloud_host(host: &str) -> bool {
    matches!(host, CLOUD_OLD_HOST | CLOUD_SSH_HOST | CLOUD_ALT_SSH)
}

/// The listed Data Center host this URL is on. HTTPS must match the listed port (443 when
/// none is listed); SSH runs on a port of its own (7999 by default), so only the host counts.
fn datacenter<'a>(p: &Parts, hosts: &'a [DataCenterHost]) -> Option<&'a DataCenterHost> {
    hosts.iter().find(|h| {
        h.host == p.host
            && match p.scheme {
                Scheme::Ssh => true,
                Scheme::Https => {
                    p.port.unwrap_or(443) == h.port.unwrap_or(443) || p.port == Some(80)
                }
            }
    })
}

/// `a/b` from a path, `.git` and slashes trimmed; None unless exactly two segments.
fn two_segments(path: &str) -> Option<String> {
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let mut it = path.split('/');
    let (a, b) = (it.next()?, it.next()?);
    if it.next().is_some() || a.is_empty() || b.is_empty() {
        return None;
    }
    Some(format!("{a}/{b}"))
}

/// What a consumer's git URL says about its Bitbucket, or None when it is not one (another
/// host, or a path that names no repository).
pub fn classify(raw: &str, hosts: &[DataCenterHost]) -> Option<BitbucketRepo> {
    let p = parts(raw)?;
    let ssh_origin = |p: &Parts| {
        let user = p.user.clone().unwrap_or_else(|| "git".into());
        match p.port {
            Some(port) => format!("ssh://{user}@{}:{port}", p.host),
            None => format!("ssh://{user}@{}", p.host),
        }
    };
    let transport = match p.scheme {
        Scheme::Https => GitTransport::Https,
        Scheme::Ssh => GitTransport::Ssh,
    };
    if is_cloud_host(&p.host) {
        // Cloud serves git only at bitbucket.org over HTTPS; its SSH hosts are SSH only.
        if p.scheme == Scheme::Https && p.host != CLOUD_OLD_HOST {
            return None;
        }
        return Some(BitbucketRepo {
            flavor: Flavor::Cloud,
            transport,
            rest_base: None,
            ssh_origin: (p.scheme == Scheme::Ssh).then(|| ssh_origin(&p)),
            name: two_segments(&p.path)?,
            host: p.host.clone(),
        });
    }
    let dc = datacenter(&p, hosts)?;
    let rest_from_host = || match dc.port {
        Some(port) if port != 443 => format!("https://{}:{port}", dc.host),
        _ => format!("https://{}", dc.host),
    };
    match p.scheme {
        Scheme::Https => {
            let (context, repo) = p.path.split_once("/scm/")?;
            let scheme = if p.port == Some(80) { "http" } else { "https" };
            let authority = match p.port {
                Some(port) if port != 443 && port != 80 => format!("{}:{port}", p.host),
                _ => p.host.clone(),
            };
            Some(BitbucketRepo {
                flavor: Flavor::DataCenter,
                transport,
                rest_base: Some(format!(
                    "{scheme}://{authority}{}",
                    context.trim_end_matches('/')
                )),
                ssh_origin: None,
                name: two_segments(repo)?,
                host: p.host.clone(),
            })
        }
        Scheme::Ssh => Some(BitbucketRepo {
            flavor: Flavor::DataCenter,
            transport,
            rest_base: Some(rest_from_host()),
            ssh_origin: Some(ssh_origin(&p)),
            // Data Center's SSH clone URLs may carry /scm/ behind some proxies; take what follows.
            name: two_segments(p.path.rsplit_once("/scm/").map_or(&p.path, |(_, r)| r))?,
            host: p.host.clone(),
        }),
    }
}

/// Argo CD's `NormalizeGitURL` as its credential-template match uses it (util/git): lower case,
/// trimmed, the scp form's `:` after the host made a `/`, `ssh://` and `.git` dropped.
pub fn argocd_normalize(raw: &str) -> String {
    let mut s = raw.trim().to_ascii_lowercase();
    if let Some(rest) = s.strip_prefix("ssh://") {
        s = rest.to_string();
    } else if !s.contains("://")
        && let Some((userhost, path)) = s.split_once(':')
        && userhost.contains('@')
        && !userhost.contains('/')
    {
        s = format!("{userhost}/{path}");
    }
    if let Some(t) = s.strip_suffix(".git") {
        s = t.to_string();
    }
    s
}

/// The template whose normalised URL is the longest prefix of the repository's; on a tie, the
/// first (as Argo CD keeps the first and logs a warning). Returns its index in `templates`.
pub fn longest_prefix<'a, I>(repo_url: &str, templates: I) -> Option<usize>
where
    I: IntoIterator<Item = &'a str>,
{
    let repo = argocd_normalize(repo_url);
    let mut best: Option<(usize, usize)> = None;
    for (i, t) in templates.into_iter().enumerate() {
        let t = argocd_normalize(t);
        if repo.starts_with(&t) && best.is_none_or(|(_, len)| t.len() > len) {
            best = Some((i, t.len()));
        }
    }
    best.map(|(i, _)| i)
}

/// Whether Go's `httpproxy` (Argo CD's `noProxy`, golang.org/x/net/http/httpproxy) reaches
/// `host:port` without the proxy: `*`; IPs and CIDRs; `name` (and its subdomains), `.name` and
/// `*.name` (subdomains only), each optionally with `:port`.
pub fn go_no_proxy(list: &str, host: &str, port: u16) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let ip = host.parse::<std::net::IpAddr>().ok();
    list.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .any(|p| {
            if p == "*" {
                return true;
            }
            if let Ok(net) = p.parse::<ipnet::IpNet>() {
                return ip.is_some_and(|ip| net.contains(&ip));
            }
            let (name, want) = split_port(&p);
            let port_ok = want.is_none_or(|w| w == port);
            if let Ok(pip) = name.parse::<std::net::IpAddr>() {
                return ip == Some(pip) && port_ok;
            }
            if ip.is_some() || name.is_empty() {
                return false;
            }
            let name = name.strip_prefix('*').unwrap_or(name);
            let (suffix, exact) = match name.strip_prefix('.') {
                Some(_) => (name.to_string(), false),
                None => (format!(".{name}"), true),
            };
            (host.ends_with(&suffix) || (exact && host == suffix[1..])) && port_ok
        })
}

/// `host:port` (`[v6]:port`) into its parts; a bare host keeps no port.
fn split_port(p: &str) -> (&str, Option<u16>) {
    if let Some(rest) = p.strip_prefix('[') {
        return match rest.split_once("]:") {
            Some((h, port)) => (h, port.parse().ok()),
            None => (rest.trim_end_matches(']'), None),
        };
    }
    match p.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') => (h, port.parse().ok()),
        _ => (p, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc() -> Vec<DataCenterHost> {
        vec![
            "bitbucket.example.com".parse().unwrap(),
            "git.corp:8443".parse().unwrap(),
        ]
    }

    #[test]
    fn cloud_urls_in_every_form() {
        for raw in [
            "https://alice@bitbucket.org/acme/app.git",
            "https://bitbucket.org/acme/app",
            "git@bitbucket.org:acme/app.git",
            "ssh://git@ssh.bitbucket.org/acme/app.git",
            "ssh://git@altssh.bitbucket.org:443/acme/app.git",
        ] {
            let r = classify(raw, &[]).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(
                (r.flavor, r.name.as_str()),
                (Flavor::Cloud, "acme/app"),
                "{raw}"
            );
            assert_eq!(r.rest_base, None);
        }
        let r = classify("ssh://git@altssh.bitbucket.org:443/acme/app.git", &[]).unwrap();
        assert_eq!(r.transport, GitTransport::Ssh);
        assert_eq!(
            r.ssh_origin.as_deref(),
            Some("ssh://git@altssh.bitbucket.org:443")
        );
        let r = classify("git@bitbucket.org:acme/app.git", &[]).unwrap();
        assert_eq!(r.ssh_origin.as_deref(), Some("ssh://git@bitbucket.org"));
    }

    #[test]
    fn other_hosts_are_not_bitbucket_unless_listed() {
        assert_eq!(classify("https://github.com/acme/app.git", &dc()), None);
        assert_eq!(
            classify("https://gitlab.example.com/scm/a/b.git", &dc()),
            None
        );
        // Listed, but on another port than its REST API's.
        assert_eq!(classify("https://git.corp/scm/a/b.git", &dc()), None);
        // A path that names no repository.
        assert_eq!(classify("https://bitbucket.org/acme", &dc()), None);
        assert_eq!(
            classify("https://bitbucket.example.com/projects/A", &dc()),
            None
        );
        assert_eq!(classify("ftp://bitbucket.org/a/b", &dc()), None);
    }

    #[test]
    fn datacenter_rest_base_is_what_precedes_scm() {
        let r = classify(
            "https://bitbucket.example.com/bitbucket/scm/OPS/infra.git",
            &dc(),
        )
        .unwrap();
        assert_eq!(r.flavor, Flavor::DataCenter);
        assert_eq!(
            r.rest_base.as_deref(),
            Some("https://bitbucket.example.com/bitbucket")
        );
        assert_eq!(r.name, "OPS/infra");
        let r = classify("https://git.corp:8443/scm/~alice/dots.git", &dc()).unwrap();
        assert_eq!(r.rest_base.as_deref(), Some("https://git.corp:8443"));
        assert_eq!(r.name, "~alice/dots");
    }

    #[test]
    fn datacenter_ssh_keeps_its_port_and_rest_base_from_the_listing() {
        let r = classify("ssh://git@git.corp:7999/ops/infra.git", &dc()).unwrap();
        assert_eq!(r.transport, GitTransport::Ssh);
        assert_eq!(r.ssh_origin.as_deref(), Some("ssh://git@git.corp:7999"));
        assert_eq!(r.rest_base.as_deref(), Some("https://git.corp:8443"));
        assert_eq!(r.name, "ops/infra");
        let r = classify("ssh://git@bitbucket.example.com:7999/~bob/app", &dc()).unwrap();
        assert_eq!(r.name, "~bob/app");
        assert_eq!(
            r.rest_base.as_deref(),
            Some("https://bitbucket.example.com")
        );
    }

    #[test]
    fn datacenter_host_flag_parses() {
        assert_eq!(
            "Git.Corp:8443".parse::<DataCenterHost>(),
            Ok(DataCenterHost {
                host: "git.corp".into(),
                port: Some(8443)
            })
        );
        assert!("https://git.corp".parse::<DataCenterHost>().is_err());
        assert!("git.corp:x".parse::<DataCenterHost>().is_err());
    }

    #[test]
    fn argocd_normalisation_matches_its_own() {
        assert_eq!(
            argocd_normalize(" git@BitBucket.org:Acme/App.git "),
            "git@bitbucket.org/acme/app"
        );
        assert_eq!(
            argocd_normalize("ssh://git@ssh.bitbucket.org/acme/app.git"),
            "git@ssh.bitbucket.org/acme/app"
        );
        assert_eq!(
            argocd_normalize("https://bitbucket.org/acme/app.git"),
            "https://bitbucket.org/acme/app"
        );
    }

    #[test]
    fn the_longest_template_prefix_wins_and_a_tie_keeps_the_first() {
        let templates = [
            "https://bitbucket.org",
            "https://bitbucket.org/acme",
            "https://bitbucket.org/ACME/",
            "git@bitbucket.org:acme",
        ];
        // "acme/" normalises longer than "acme": Argo CD compares the strings as they are.
        assert_eq!(
            longest_prefix("https://bitbucket.org/acme/app.git", templates),
            Some(2)
        );
        assert_eq!(
            longest_prefix("https://bitbucket.org/acme", templates),
            Some(1)
        );
        assert_eq!(
            longest_prefix("https://bitbucket.org/other/app.git", templates),
            Some(0)
        );
        // scp form and ssh:// normalise alike.
        assert_eq!(
            longest_prefix("ssh://git@bitbucket.org/acme/app.git", templates),
            Some(3)
        );
        assert_eq!(
            longest_prefix("https://github.com/acme/app", templates),
            None
        );
        let tie = ["https://bitbucket.org/acme", "HTTPS://bitbucket.org/acme"];
        assert_eq!(longest_prefix("https://bitbucket.org/acme/x", tie), Some(0));
    }

    #[test]
    fn no_proxy_is_read_as_go_reads_it() {
        let bb = |list: &str| go_no_proxy(list, "bitbucket.org", 443);
        assert!(
            bb("bitbucket.org") && bb("BITBUCKET.ORG ,x") && bb("*") && bb("bitbucket.org:443")
        );
        // A leading dot or *. is subdomains only; another port does not match.
        assert!(!bb(".bitbucket.org") && !bb("*.bitbucket.org") && !bb("bitbucket.org:8443"));
        assert!(go_no_proxy(".bitbucket.org", "api.bitbucket.org", 443));
        assert!(go_no_proxy("bitbucket.org", "api.bitbucket.org", 443));
        assert!(!go_no_proxy("notbitbucket.org", "bitbucket.org", 443) && !bb("org.bitbucket"));
        assert!(
            go_no_proxy("10.0.0.0/8", "10.1.2.3", 443)
                && go_no_proxy("10.1.2.3:443", "10.1.2.3", 443)
        );
        assert!(!go_no_proxy("10.0.0.0/8", "bitbucket.example.com", 443));
        assert!(go_no_proxy("[::1]:443", "[::1]", 443) && !go_no_proxy("", "bitbucket.org", 443));
    }
}
