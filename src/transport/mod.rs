//! The way to a Bitbucket server, one observable step at a time: resolve, classify, connect
//! (directly or through an HTTP CONNECT proxy), TLS with the presented chain captured even when
//! verification fails, then HTTP/1.1 on that one connection.
//!
//! A general HTTP client (reqwest) hides these steps; the checks need each step's own outcome, and
//! one kept-alive connection per check makes a check cost one handshake plus its round trips.

pub mod address;
pub mod http;
pub mod noproxy;
pub mod tls;

use address::AddressPolicy;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `HOST:PORT:ADDR[,ADDR…]`, as curl's `--resolve` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveOverride {
    pub host: String,
    pub port: u16,
    pub addrs: Vec<IpAddr>,
}

impl FromStr for ResolveOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("expected HOST:PORT:ADDR[,ADDR...], got {s:?}");
        let (host, rest) = s.split_once(':').ok_or_else(bad)?;
        let (port, addrs) = rest.split_once(':').ok_or_else(bad)?;
        let port = port.parse().map_err(|_| bad())?;
        let addrs = addrs
            .split(',')
            .map(|a| {
                a.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad())?;
        if host.is_empty() || addrs.is_empty() {
            return Err(bad());
        }
        Ok(ResolveOverride {
            host: host.to_ascii_lowercase(),
            port,
            addrs,
        })
    }
}

/// `HOST:PORT:CONNECT_HOST:CONNECT_PORT`, as curl's `--connect-to` takes it: requests for
/// HOST:PORT go to CONNECT_HOST:CONNECT_PORT, while TLS and Host still name HOST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: String,
    pub port: u16,
    pub to_host: String,
    pub to_port: u16,
}

impl FromStr for ConnectTo {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bad = || format!("expected HOST:PORT:CONNECT_HOST:CONNECT_PORT, got {s:?}");
        let [host, port, to_host, to_port] = parts.as_slice() else {
            return Err(bad());
        };
        Ok(ConnectTo {
            host: host.to_ascii_lowercase(),
            port: port.parse().map_err(|_| bad())?,
            to_host: to_host.to_ascii_lowercase(),
            to_port: to_port.parse().map_err(|_| bad())?,
        })
    }
}

/// Everything about the network that is the operator's, not the connection's.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub policy: AddressPolicy,
    pub resolve: Vec<ResolveOverride>,
    pub connect_to: Vec<ConnectTo>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Largest response body read; Bitbucket's answers to the probes are a few KiB.
    pub max_body: usize,
    /// The operator-wide egress proxy for Public servers (HTTPS_PROXY, or --egress-proxy).
    pub egress_proxy: Option<url::Url>,
    /// Hosts reached without the operator-wide egress proxy (NO_PROXY, or --no-proxy).
    pub no_proxy: noproxy::NoProxy,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            policy: AddressPolicy::default(),
            resolve: Vec::new(),
            connect_to: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body: 1 << 20,
            egress_proxy: None,
            no_proxy: noproxy::NoProxy::default(),
        }
    }
}

#[derive(Debug, Error)]
pub enum ResolveError {
    #[error("{host} does not resolve: {detail}")]
    NotFound { host: String, detail: String },
    #[error("resolving {host} timed out")]
    Timeout { host: String },
}

impl NetConfig {
    /// Where a connection to host:port really goes (after `--connect-to`).
    pub fn dial_target(&self, host: &str, port: u16) -> (String, u16) {
        let h = host.to_ascii_lowercase();
        match self
            .connect_to
            .iter()
            .find(|c| c.host == h && c.port == port)
        {
            Some(c) => (c.to_host.clone(), c.to_port),
            None => (h, port),
        }
    }

    /// Resolves host:port, honouring `--connect-to` and `--resolve`.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let (host, port) = self.dial_target(host, port);
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if let Some(o) = self
            .resolve
            .iter()
            .find(|o| o.host == host && o.port == port)
        {
            return Ok(o
                .addrs
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect());
        }
        let owned = host.clone();
        let lookup = tokio::net::lookup_host((owned.as_str(), port));
        match tokio::time::timeout(self.connect_timeout, lookup).await {
            Err(_) => Err(ResolveError::Timeout { host }),
            Ok(Err(e)) => Err(ResolveError::NotFound {
                host,
                detail: e.to_string(),
            }),
            Ok(Ok(addrs)) => {
                let mut v: Vec<SocketAddr> = addrs.collect();
                v.dedup();
                if v.is_empty() {
                    Err(ResolveError::NotFound {
                        host,
                        detail: "no addresses".into(),
                    })
                } else {
                    Ok(v)
                }
            }
        }
    }
}

#[derive(Debug, Error)]
pub enum ConnectError {
    /// The destination policy forbids the address; nothing was sent to it.
    #[error("{addr} is an address the destination policy denies")]
    Denied { addr: String },
    #[error("connection to {addr} refused")]
    Refused { addr: String },
    /// No route: ENETUNREACH or EHOSTUNREACH (a network that is down, a firewall's reject).
    #[error("connecting to {addr} failed: {detail}")]
    Unreachable { addr: String, detail: String },
    #[error("connecting to {addr} timed out after {secs}s")]
    TimedOut { addr: String, secs: u64 },
    #[error("connecting to {addr} failed: {detail}")]
    Other { addr: String, detail: String },
}

impl NetConfig {
    /// Connects to the first address that answers, after judging every one against the
    /// destination policy: the one way bbconn opens a TCP connection. The caller passes the
    /// addresses it resolved (and judged) itself, so a name cannot resolve to something else
    /// between the judgement and the connection (DNS rebinding).
    pub async fn connect(&self, addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
        if let Some(denied) = addrs.iter().find(|a| self.policy.denied(a.ip())) {
            return Err(ConnectError::Denied {
                addr: denied.ip().to_string(),
            });
        }
        connect_any(addrs, self.connect_timeout).await
    }
}

/// Tries each address in turn; the last error speaks for all when none answers.
async fn connect_any(addrs: &[SocketAddr], timeout: Duration) -> Result<TcpStream, ConnectError> {
    let mut last = ConnectError::Other {
        addr: "-".into(),
        detail: "no address to connect to".into(),
    };
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = ConnectError::Refused {
                    addr: addr.to_string(),
                }
            }
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
                ) =>
            {
                last = ConnectError::Unreachable {
                    addr: addr.to_string(),
                    detail: e.to_string(),
                }
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                last = ConnectError::TimedOut {
                    addr: addr.to_string(),
                    secs: timeout.as_secs(),
                }
            }
            Ok(Err(e)) => {
                last = ConnectError::Other {
                    addr: addr.to_string(),
                    detail: e.to_string(),
                }
            }
            Err(_) => {
                last = ConnectError::TimedOut {
                    addr: addr.to_string(),
                    secs: timeout.as_secs(),
                }
            }
        }
    }
    Err(last)
}

#[derive(Debug, Error)]
pub enum ProxyError {
    /// The proxy's address is one the destination policy denies; nothing was sent to it.
    #[error("{proxy} is at {addr}, an address the destination policy denies")]
    Denied { proxy: String, addr: String },
    #[error("{proxy} is unreachable: {source}")]
    Connect {
        proxy: String,
        #[source]
        source: ConnectError,
    },
    #[error("{proxy} does not resolve: {source}")]
    Resolve {
        proxy: String,
        #[source]
        source: ResolveError,
    },
    #[error("{proxy} refused the tunnel to {target}: {status_line}")]
    Refused {
        proxy: String,
        target: String,
        status_line: String,
    },
    #[error("{proxy} did not answer the CONNECT to {target} in time")]
    TimedOut { proxy: String, target: String },
    #[error("{proxy} broke off: {detail}")]
    Io { proxy: String, detail: String },
}

impl ProxyError {
    /// The status code of the proxy's refusal, e.g. 407.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProxyError::Refused { status_line, .. } => {
                status_line.split_whitespace().nth(1)?.parse().ok()
            }
            _ => None,
        }
    }
}

/// A proxy URL as shown to people: never with the credentials a URL may carry.
pub fn shown(proxy: &url::Url) -> String {
    let mut u = proxy.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.as_str().trim_end_matches('/').to_string()
}

/// Opens a tunnel through an HTTP CONNECT proxy (RFC 9110 section 9.3.6) to host:port.
pub async fn connect_via_proxy(
    net: &NetConfig,
    proxy: &url::Url,
    host: &str,
    port: u16,
) -> Result<TcpStream, ProxyError> {
    connect_via_proxy_as(net, proxy, "the private endpoint", None, host, port).await
}

/// [`connect_via_proxy`] for a proxy in the given role ("the egress proxy"), sending
/// `authorization` (a `Proxy-Authorization` value) where given.
pub async fn connect_via_proxy_as(
    net: &NetConfig,
    proxy: &url::Url,
    role: &str,
    authorization: Option<&str>,
    host: &str,
    port: u16,
) -> Result<TcpStream, ProxyError> {
    let proxy_name = format!("{role} {}", shown(proxy));
    let phost = proxy.host_str().unwrap_or_default();
    let pport = proxy.port_or_known_default().unwrap_or(3128);
    let addrs = net
        .resolve(phost, pport)
        .await
        .map_err(|source| ProxyError::Resolve {
            proxy: proxy_name.clone(),
            source,
        })?;
    let mut stream = net.connect(&addrs).await.map_err(|source| match source {
        ConnectError::Denied { addr } => ProxyError::Denied {
            proxy: proxy_name.clone(),
            addr,
        },
        source => ProxyError::Connect {
            proxy: proxy_name.clone(),
            source,
        },
    })?;
    let target = format!("{host}:{port}");
    let io = |e: std::io::Error| ProxyError::Io {
        proxy: proxy_name.clone(),
        detail: e.to_string(),
    };
    let auth_line = authorization
        .map(|a| format!("Proxy-Authorization: {a}\r\n"))
        .unwrap_or_default();
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{auth_line}\r\n");
    let handshake = async {
        stream.write_all(request.as_bytes()).await.map_err(io)?;
        // Read the answer's head byte by byte: anything after it belongs to the tunnel.
        let mut head = Vec::with_capacity(128);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() > 8192 || stream.read(&mut byte).await.map_err(io)? == 0 {
                break;
            }
            head.push(byte[0]);
        }
        Ok::<Vec<u8>, ProxyError>(head)
    };
    let head = tokio::time::timeout(net.connect_timeout, handshake)
        .await
        .map_err(|_| ProxyError::TimedOut {
            proxy: proxy_name.clone(),
            target: target.clone(),
        })??;
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default().to_string();
    let ok = status_line
        .split_whitespace()
        .nth(1)
        .is_some_and(|code| code.starts_with('2'));
    if ok && head.ends_with(b"\r\n\r\n") {
        Ok(stream)
    } else {
        Err(ProxyError::Refused {
            proxy: proxy_name,
            target,
            status_line: if status_line.is_empty() {
                "no answer".into()
            } else {
                status_line
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_curl_style_overrides() {
        let r: ResolveOverride = "Bitbucket.example.com:443:127.0.0.5,::1".parse().unwrap();
        assert_eq!(r.host, "bitbucket.example.com");
        assert_eq!(r.addrs.len(), 2);
        assert!("nohost".parse::<ResolveOverride>().is_err());
        assert!("h:99999:127.0.0.1".parse::<ResolveOverride>().is_err());
        let c: ConnectTo = "a.example:443:127.0.0.1:8443".parse().unwrap();
        assert_eq!((c.to_host.as_str(), c.to_port), ("127.0.0.1", 8443));
    }

    #[tokio::test]
    async fn resolve_prefers_overrides_and_connect_to() {
        let net = NetConfig {
            resolve: vec!["bb.test:443:127.0.0.7".parse().unwrap()],
            connect_to: vec!["api.test:443:127.0.0.8:9443".parse().unwrap()],
            ..NetConfig::default()
        };
        assert_eq!(
            net.resolve("bb.test", 443).await.unwrap(),
            vec!["127.0.0.7:443".parse().unwrap()]
        );
        assert_eq!(
            net.resolve("api.test", 443).await.unwrap(),
            vec!["127.0.0.8:9443".parse().unwrap()]
        );
        assert!(matches!(
            net.resolve("does-not-exist.invalid", 443).await,
            Err(ResolveError::NotFound { .. } | ResolveError::Timeout { .. })
        ));
    }
}
