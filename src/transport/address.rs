//! Address classes and the destination policy.
//!
//! Non-public ranges come from the IANA IPv4 and IPv6 Special-Purpose Address Registries
//! (RFC 6890 and its updates): RFC 1918 private space, loopback, link-local, CGNAT (RFC 6598),
//! ULA (RFC 4193), documentation and benchmarking ranges, multicast and reserved space.
//! `--address-class CIDR=public|private` overrides them, longest prefix first.

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
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

    /// The class of the address traffic really reaches: an IPv6 address that carries an IPv4
    /// one (see [`embedded_v4`]) is judged by the IPv4 address.
    pub fn class(&self, ip: IpAddr) -> AddressClass {
        let ip = destination(ip);
        if let Some(o) = self.overrides.iter().find(|o| o.net.contains(&ip)) {
            return o.class;
        }
        if self.builtin.iter().any(|n| n.contains(&ip)) {
            AddressClass::Private
        } else {
            AddressClass::Public
        }
    }

    /// Denied if the address, or any IPv4 address it carries, is in the deny list.
    pub fn denied(&self, ip: IpAddr) -> bool {
        let mut judged = vec![ip];
        if let IpAddr::V6(v6) = ip {
            judged.extend(embedded_v4(v6).into_iter().map(IpAddr::V4));
        }
        judged
            .iter()
            .any(|a| self.deny.iter().any(|n| n.contains(a)))
    }
}

/// The address traffic to `ip` reaches: the IPv4 address an IPv6 one carries, if it carries one.
fn destination(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).first().copied().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 addresses an IPv6 address embeds, the one traffic reaches first: IPv4-mapped
/// (`::ffff:0:0/96`) and SIIT-translated (`::ffff:0:0:0/96`), IPv4-compatible (`::/96`, except
/// `::` and `::1`), NAT64 (`64:ff9b::/96`, RFC 6052; and the local-use `64:ff9b:1::/48`, RFC
/// 8215, whose prefix length is the site's choice, so every RFC 6052 layout is returned),
/// 6to4 (`2002::/16`, RFC 3056), Teredo (`2001::/32`, RFC 4380: the client's address, bit-inverted
/// in the last 32 bits, then the server's) and ISATAP interface identifiers (RFC 5214).
pub fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let o = v6.octets();
    let seg = v6.segments();
    let v4 = |a: [u8; 4]| Ipv4Addr::from(a);
    let last = v4([o[12], o[13], o[14], o[15]]);
    let mut out = Vec::new();
    match seg {
        // ::ffff:a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, _, _] => out.push(last),
        // ::ffff:0:a.b.c.d
        [0, 0, 0, 0, 0xffff, 0, _, _] => out.push(last),
        // ::a.b.c.d, but not :: or ::1
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 || lo > 1 => out.push(last),
        // 64:ff9b::/96
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => out.push(last),
        // 64:ff9b:1::/48, RFC 6052 section 2.2 layouts for /96, /64, /56 and /48
        [0x64, 0xff9b, 1, ..] => {
            out.push(last);
            out.push(v4([o[9], o[10], o[11], o[12]]));
            out.push(v4([o[7], o[9], o[10], o[11]]));
            out.push(v4([o[6], o[7], o[9], o[10]]));
        }
        // 2002:AABB:CCDD::/48
        [0x2002, ..] => out.push(v4([o[2], o[3], o[4], o[5]])),
        // 2001:0000:SERVER:flags:port:~CLIENT
        [0x2001, 0, ..] => {
            out.push(v4([!o[12], !o[13], !o[14], !o[15]]));
            out.push(v4([o[4], o[5], o[6], o[7]]));
        }
        _ => {}
    }
    // ISATAP: an interface identifier of 0000:5efe or 0200:5efe, then the IPv4 address.
    if matches!(seg[4], 0 | 0x0200) && seg[5] == 0x5efe && out.is_empty() {
        out.push(last);
    }
    out
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
    fn ipv6_forms_are_judged_by_the_ipv4_address_they_carry() {
        let p = AddressPolicy::default();
        // Every form of 169.254.169.254, the cloud metadata address.
        for a in [
            "::ffff:169.254.169.254",
            "::ffff:0:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1:a9fe:a9:fe00::",
            "2002:a9fe:a9fe::1",
            // Teredo: server 65.54.227.120, client ~(5601:5601) = 169.254.169.254
            "2001:0:4136:e378:8000:63bf:5601:5601",
            "fe80::1",
            "2a00:1450::200:5efe:169.254.169.254",
        ] {
            assert!(p.denied(ip(a)), "{a} is not denied");
        }
        for a in [
            "::1",
            "::",
            "2a00:1450::1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!p.denied(ip(a)), "{a} is denied");
        }
        assert_eq!(p.class(ip("64:ff9b::a00:1")), AddressClass::Private);
        assert_eq!(p.class(ip("2002:a00:1::1")), AddressClass::Private);
        assert_eq!(p.class(ip("::10.0.0.1")), AddressClass::Private);
        assert_eq!(p.class(ip("64:ff9b::808:808")), AddressClass::Public);
        assert_eq!(p.class(ip("::1")), AddressClass::Private);
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
