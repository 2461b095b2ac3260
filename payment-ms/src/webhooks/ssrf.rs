//! The SSRF guard: partner URLs must not lead into our own network. A URL whose host resolves to
//! a loopback, private, link-local (cloud metadata included), CGNAT, multicast or otherwise
//! special address is refused, unless the address is inside `WEBHOOK_ALLOWED_CIDRS`. It is
//! checked at registration and again at every send: at send time the check *is* the HTTP
//! client's DNS resolver, so the connection goes to the address that was checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("only http and https URLs are allowed")]
    Scheme,
    #[error("the URL has no host")]
    NoHost,
    #[error("the host does not resolve")]
    Unresolvable,
    #[error("the host resolves to {0}, a non-public address")]
    NonPublic(IpAddr),
}

impl Guard {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Guard {
            allowed: Arc::new(allowed),
        }
    }

    /// Whether we may connect to `ip`. An IPv6 address that carries an IPv4 address (mapped,
    /// compatible, translated, 6to4, NAT64) is judged as that IPv4 address too.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let embedded = canonical(ip);
        let allowed = |ip: IpAddr| self.allowed.iter().any(|net| net.contains(&ip));
        allowed(ip) || allowed(embedded) || (is_public(ip) && is_public(embedded))
    }

    /// Checks a URL's scheme, then every address its host resolves to.
    pub async fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refusal::Scheme);
        }
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<IpAddr> = match url.host() {
            None => return Err(Refusal::NoHost),
            Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|_| Refusal::Unresolvable)?
                .map(|a| a.ip())
                .collect(),
        };
        if addrs.is_empty() {
            return Err(Refusal::Unresolvable);
        }
        match addrs.into_iter().find(|ip| !self.permits(*ip)) {
            Some(ip) => Err(Refusal::NonPublic(ip)),
            None => Ok(()),
        }
    }
}

/// As a DNS resolver for reqwest: resolves, then keeps only permitted addresses.
impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| guard.permits(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The IPv4 address an IPv6 address leads to, if it carries one, else the address itself:
/// IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d` (deprecated, but a stack may still
/// route it), IPv4-translated `::ffff:0:a.b.c.d`, 6to4 `2002:aabb:ccdd::/48` and the NAT64
/// well-known prefix `64:ff9b::a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else {
        return ip;
    };
    let s = v6.segments();
    let low = |hi: u16, lo: u16| IpAddr::V4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] => low(hi, lo),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => low(hi, lo),
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => low(hi, lo),
        [0x2002, hi, lo, ..] => low(hi, lo),
        [0x0064, 0xff9b, 0, 0, 0, 0, hi, lo] => low(hi, lo),
        _ => ip,
    }
}

fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, cloud metadata included
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS metadata fd00:ec2::254)
        || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
        || first == 0x2001 && ip.segments()[1] == 0x0db8 // documentation
        || first == 0x2001 && ip.segments()[1] == 0 // Teredo: tunnels to an IPv4 address
        || first == 0x0064 && ip.segments()[1] == 0xff9b && ip.segments()[2] == 1 // local NAT64
        || first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) // discard-only 100::/64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refuses_internal_addresses() {
        let guard = Guard::default();
        for blocked in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            // IPv4 inside IPv6, every way of writing it.
            "::127.0.0.1",
            "::10.1.2.3",
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:a00:1::",
            "2002:a9fe:a9fe::1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::192.168.0.1",
            "64:ff9b:1::8.8.8.8",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!guard.permits(ip(blocked)), "{blocked}");
        }
        for public in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "64:ff9b::8.8.8.8",
        ] {
            assert!(guard.permits(ip(public)), "{public}");
        }
    }

    #[test]
    fn allowed_cidrs_open_a_way_in() {
        let guard = Guard::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "::1/128".parse().unwrap(),
        ]);
        assert!(guard.permits(ip("127.0.0.1")));
        assert!(guard.permits(ip("::1")));
        assert!(guard.permits(ip("::ffff:127.0.0.1")));
        assert!(!guard.permits(ip("10.0.0.1")));
        assert!(!guard.permits(ip("2002:a00:1::")));
    }

    #[tokio::test]
    async fn checks_urls_after_resolving_them() {
        let guard = Guard::default();
        let check = |u: &str| {
            let guard = guard.clone();
            let url = Url::parse(u).unwrap();
            async move { guard.check_url(&url).await }
        };
        assert_eq!(check("ftp://example.com/x").await, Err(Refusal::Scheme));
        assert_eq!(
            check("http://127.0.0.1:9/x").await,
            Err(Refusal::NonPublic(ip("127.0.0.1")))
        );
        assert!(matches!(
            check("http://localhost:9/x").await,
            Err(Refusal::NonPublic(_))
        ));
        assert_eq!(
            check("http://[::1]/x").await,
            Err(Refusal::NonPublic(ip("::1")))
        );
    }
}
