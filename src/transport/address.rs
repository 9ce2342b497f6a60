//! Address classes and the destination policy.
//!
//! Non-public ranges come from the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! (RFC 6890 and its updates): RFC 1918 private space, loopback, link-local, CGNAT (RFC 6598),
//! ULA (RFC 4193), documentation and benchmarking ranges, multicast and reserved space.
//! `--address-class CIDR=public|private` overrides them, longest prefix first.

use ipnet::IpNet;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Private,
}

impl FromStr for AddressClass {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "public" => Ok(AddressClass::Public),
            "private" => Ok(AddressClass::Private),
            other => Err(format!(
                "address class must be public or private, not {other:?}"
            )),
        }
    }
}

/// `CIDR=public|private`, as `--address-class` takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassOverride {
    pub net: IpNet,
    pub class: AddressClass,
}

impl FromStr for ClassOverride {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (net, class) = s
            .split_once('=')
            .ok_or_else(|| format!("expected CIDR=public|private, got {s:?}"))?;
        Ok(ClassOverride {
            net: parse_net(net)?,
            class: class.parse()?,
        })
    }
}

/// A CIDR, or a bare address taken as a single-host network.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is not a CIDR or an IP address"))
}

const NON_PUBLIC: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/128",
    "::1/128",
    "100::/64",
    "2001:db8::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

/// Denied by default: link-local holds cloud metadata services (169.254.169.254, fd00:ec2::254 is ULA
/// but fe80::/10 is link-local proper).
pub const DEFAULT_DENY: &[&str] = &["169.254.0.0/16", "fe80::/10"];

#[derive(Clone, Debug)]
pub struct AddressPolicy {
    overrides: Vec<ClassOverride>,
    builtin: Vec<IpNet>,
    deny: Vec<IpNet>,
}

impl Default for AddressPolicy {
    fn default() -> Self {
        AddressPolicy::new(Vec::new(), Vec::new())
    }
}

impl AddressPolicy {
    /// `extra_deny` adds to the default deny list.
    pub fn new(mut overrides: Vec<ClassOverride>, extra_deny: Vec<IpNet>) -> Self {
        // Longest prefix wins, so a /32 override beats a /8 one.
        overrides.sort_by_key(|o| std::cmp::Reverse(o.net.prefix_len()));
        let parse_all =
            |list: &[&str]| -> Vec<IpNet> { list.iter().filter_map(|s| s.parse().ok()).collect() };
        let mut deny = parse_all(DEFAULT_DENY);
        deny.extend(extra_deny);
        AddressPolicy {
            overrides,
            builtin: parse_all(NON_PUBLIC),
            deny,
        }
    }

    pub fn class(&self, ip: IpAddr) -> AddressClass {
        let ip = canonical(ip);
        if let Some(o) = self.overrides.iter().find(|o| o.net.contains(&ip)) {
            return o.class;
        }
        if self.builtin.iter().any(|n| n.contains(&ip)) {
            AddressClass::Private
        } else {
            AddressClass::Public
        }
    }

    pub fn denied(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.deny.iter().any(|n| n.contains(&ip))
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn iana_ranges_are_private_and_the_rest_public() {
        let p = AddressPolicy::default();
        for a in [
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(p.class(ip(a)), AddressClass::Private, "{a}");
        }
        for a in ["8.8.8.8", "104.192.141.1", "2a00:1450::1", "172.32.0.1"] {
            assert_eq!(p.class(ip(a)), AddressClass::Public, "{a}");
        }
    }

    #[test]
    fn overrides_win_longest_prefix_first() {
        let p = AddressPolicy::new(
            vec![
                "127.0.0.0/8=public".parse().unwrap(),
                "127.0.0.9=private".parse().unwrap(),
            ],
            vec![],
        );
        assert_eq!(p.class(ip("127.0.0.1")), AddressClass::Public);
        assert_eq!(p.class(ip("127.0.0.9")), AddressClass::Private);
    }

    #[test]
    fn link_local_is_denied_by_default() {
        let p = AddressPolicy::default();
        assert!(p.denied(ip("169.254.169.254")));
        assert!(!p.denied(ip("10.0.0.1")));
        assert!("bogus".parse::<ClassOverride>().is_err());
        assert!("10.0.0.0/8=elsewhere".parse::<ClassOverride>().is_err());
    }
}
