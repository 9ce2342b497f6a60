//! `NO_PROXY`, as curl and Go read it: comma-separated entries, each `*` (every host), a host
//! name (matching itself and its subdomains, with or without a leading dot), an IP address or a
//! CIDR; an optional `:port` on a name is ignored, as curl does.

use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    names: Vec<String>,
    nets: Vec<IpNet>,
}

impl FromStr for NoProxy {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut np = NoProxy::default();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry == "*" {
                np.all = true;
                continue;
            }
            let bare = entry.trim_start_matches('[');
            let bare = bare.split(']').next().unwrap_or(bare);
            if let Ok(net) = bare.parse::<IpNet>() {
                np.nets.push(net.trunc());
            } else if let Ok(ip) = bare.parse::<IpAddr>() {
                np.nets.push(IpNet::from(ip));
            } else {
                let name = entry.split(':').next().unwrap_or(entry);
                let name = name.trim_start_matches("*.").trim_start_matches('.');
                if !name.is_empty() {
                    np.names.push(name.to_ascii_lowercase());
                }
            }
        }
        Ok(np)
    }
}

impl NoProxy {
    /// Is `host` (a name or an address literal) reached without the proxy?
    pub fn matches(&self, host: &str) -> bool {
        if self.all {
            return true;
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.nets.iter().any(|n| n.contains(&ip));
        }
        self.names
            .iter()
            .any(|n| host == *n || host.ends_with(&format!(".{n}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_no_proxy_as_curl_does() {
        let np: NoProxy = "localhost, .corp.example,bitbucket.org:443,10.0.0.0/8,::1"
            .parse()
            .unwrap();
        assert!(np.matches("localhost"));
        assert!(np.matches("git.corp.example"));
        assert!(np.matches("corp.example"));
        assert!(np.matches("api.bitbucket.org"));
        assert!(np.matches("10.1.2.3"));
        assert!(np.matches("[::1]"));
        assert!(!np.matches("notcorp.example"));
        assert!(!np.matches("api.github.com"));
        assert!(!np.matches("11.0.0.1"));
        assert!("*".parse::<NoProxy>().unwrap().matches("anything"));
        assert!(!NoProxy::default().matches("anything"));
    }
}
