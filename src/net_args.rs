//! The network flags of `bbconn run` and `bbconn check`: one definition below both, so the
//! operator and `check` shape their connections alike without importing each other.

use crate::transport::address::{AddressPolicy, ClassOverride, parse_net};
use crate::transport::{ConnectTo, NetConfig, ResolveOverride};
use std::time::Duration;

/// Options that shape the network, shared by `run` and `check`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct NetArgs {
    /// Treat addresses in CIDR as public or private (repeatable; longest prefix wins).
    #[arg(long = "address-class", value_name = "CIDR=public|private")]
    pub address_class: Vec<ClassOverride>,
    /// Resolve HOST:PORT to ADDR, as curl does (repeatable).
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<ResolveOverride>,
    /// Connect to CONNECT_HOST:CONNECT_PORT for HOST:PORT, as curl does (repeatable).
    #[arg(
        long = "connect-to",
        value_name = "HOST:PORT:CONNECT_HOST:CONNECT_PORT"
    )]
    pub connect_to: Vec<ConnectTo>,
    /// Never connect to addresses in CIDR, besides link-local (repeatable).
    #[arg(long = "deny-destination", value_name = "CIDR", value_parser = parse_net)]
    pub deny_destination: Vec<ipnet::IpNet>,
    /// Seconds to wait for DNS, TCP, a proxy or a TLS handshake.
    #[arg(long, default_value_t = 5)]
    pub connect_timeout: u64,
    /// Seconds to wait for each Bitbucket answer.
    #[arg(long, default_value_t = 10)]
    pub request_timeout: u64,
    /// The egress proxy (http://HOST:PORT, HTTP CONNECT) for Public servers whose spec names
    /// none. Default: HTTPS_PROXY, else https_proxy; "" for none.
    #[arg(long, value_name = "URL")]
    pub egress_proxy: Option<String>,
    /// Hosts reached without the operator-wide egress proxy, as NO_PROXY reads (names, domain
    /// suffixes, *, IPs, CIDRs; comma-separated). Default: NO_PROXY, else no_proxy.
    #[arg(long, value_name = "LIST")]
    pub no_proxy: Option<String>,
}

/// The first of the environment variables that is set.
fn env_any(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok())
}

impl NetArgs {
    /// The network configuration; the proxy environment is read here, once, at start.
    pub fn net_config(&self) -> NetConfig {
        let egress_proxy = self
            .egress_proxy
            .clone()
            .or_else(|| env_any(&["HTTPS_PROXY", "https_proxy"]))
            .filter(|s| !s.trim().is_empty())
            .and_then(|s| {
                let s = s.trim();
                // curl takes a proxy without a scheme as http://.
                let with_scheme = if s.contains("://") {
                    s.to_string()
                } else {
                    format!("http://{s}")
                };
                url::Url::parse(&with_scheme).ok()
            });
        let no_proxy = self
            .no_proxy
            .clone()
            .or_else(|| env_any(&["NO_PROXY", "no_proxy"]))
            .unwrap_or_default()
            .parse()
            .unwrap_or_default();
        NetConfig {
            egress_proxy,
            no_proxy,
            policy: AddressPolicy::new(self.address_class.clone(), self.deny_destination.clone()),
            resolve: self.resolve.clone(),
            connect_to: self.connect_to.clone(),
            connect_timeout: Duration::from_secs(self.connect_timeout.max(1)),
            request_timeout: Duration::from_secs(self.request_timeout.max(1)),
            ..NetConfig::default()
        }
    }
}
