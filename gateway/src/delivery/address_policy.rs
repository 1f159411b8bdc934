//! Which addresses deliveries may reach (pure): the SSRF rules.
//!
//! Non-public ranges (loopback, private, link-local and cloud metadata, CGNAT,
//! benchmarking, multicast, reserved, and the IPv6 forms that embed a blocked
//! IPv4 address) are refused unless the operator allow-lists a network. The
//! check runs on every address the resolver hands to the HTTP client and on
//! IP-literal urls, so it applies to the address actually connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use url::{Host, Url};

use crate::model::FieldError;

/// The operator's allow-list on top of the built-in block of non-public ranges.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// A policy that lets `allowed` through besides every public address.
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    /// Whether a delivery may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.allowed.iter().any(|net| net.contains(&ip)) || !is_non_public(ip)
    }
}

/// How endpoint (and plugin-set) urls are checked before anything is sent.
#[derive(Debug, Clone, Copy)]
pub struct UrlPolicy<'a> {
    /// Address rules for IP-literal hosts.
    pub addresses: &'a AddressPolicy,
    /// Refuse `http://` urls.
    pub https_only: bool,
}

impl UrlPolicy<'_> {
    /// Checks a url's shape and, for IP literals and `localhost`, its address.
    pub fn check(&self, field: &str, raw: &str) -> Result<Url, FieldError> {
        if raw.len() > 4096 {
            return Err(FieldError::new(field, "at most 4096 characters"));
        }
        let url =
            Url::parse(raw).map_err(|e| FieldError::new(field, format!("not a valid url: {e}")))?;
        match url.scheme() {
            "https" => {}
            "http" if !self.https_only => {}
            "http" => {
                return Err(FieldError::new(
                    field,
                    "only https urls are allowed on this gateway",
                ))
            }
            other => {
                return Err(FieldError::new(
                    field,
                    format!("scheme `{other}` is not http or https"),
                ))
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(FieldError::new(
                field,
                "credentials in the url are not allowed; use headers",
            ));
        }
        let blocked =
            |what: &str| FieldError::new(field, format!("{what} is not a public address"));
        match url.host() {
            None => return Err(FieldError::new(field, "url has no host")),
            Some(Host::Ipv4(ip)) if !self.addresses.permits(IpAddr::V4(ip)) => {
                return Err(blocked(&ip.to_string()))
            }
            Some(Host::Ipv6(ip)) if !self.addresses.permits(IpAddr::V6(ip)) => {
                return Err(blocked(&ip.to_string()))
            }
            Some(Host::Domain(name))
                if is_localhost(name) && !self.addresses.permits(Ipv4Addr::LOCALHOST.into()) =>
            {
                return Err(blocked(name))
            }
            Some(_) => {}
        }
        Ok(url)
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Maps IPv4-mapped IPv6 addresses to their IPv4 form so one rule covers both.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// True for every address a delivery must not reach without an allow-list entry.
pub fn is_non_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => is_non_public_v6(v6),
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // 0.0.0.0/8 "this network"
        || a == 10                           // private
        || a == 127                          // loopback
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 CGNAT
        || (a == 169 && b == 254)            // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)    // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 192 && b == 168)            // private
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // multicast, reserved, broadcast
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    // IPv4-compatible ::a.b.c.d (deprecated) embeds an IPv4 address.
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return true;
    }
    // NAT64 64:ff9b::/96 and 64:ff9b:1::/48 embed IPv4 in the low 32 bits.
    if s[0] == 0x64 && s[1] == 0xff9b && (s[2..6] == [0, 0, 0, 0] || s[2] == 1) {
        return is_non_public_v4(low_v4(s[6], s[7]));
    }
    // 6to4 2002::/16 embeds IPv4 in bits 16..48.
    if s[0] == 0x2002 {
        return is_non_public_v4(low_v4(s[1], s[2]));
    }
    // Teredo 2001:0::/32: the client address is the last 32 bits, inverted.
    if s[0] == 0x2001 && s[1] == 0 {
        return is_non_public_v4(low_v4(!s[6], !s[7]));
    }
    (s[0] & 0xfe00) == 0xfc00                // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80         // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0         // fec0::/10 site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00         // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || s[0] == 0x0100 && s[1..4] == [0, 0, 0] // discard-only 100::/64
}

fn low_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> bool {
        is_non_public(s.parse().unwrap())
    }

    #[test]
    fn non_public_ipv4_ranges_are_blocked() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "127.255.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
        ] {
            assert!(!blocked(ip), "{ip} should be public");
        }
    }

    #[test]
    fn ipv6_forms_of_blocked_ipv4_are_blocked() {
        for ip in [
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:127.0.0.1",
            "::127.0.0.1",
            "::ffff:10.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
            "ff02::1",
        ] {
            assert!(blocked(ip), "{ip} should be blocked");
        }
        for ip in [
            "2606:4700:4700::1111",
            "2002:808:808::1",
            "64:ff9b::808:808",
        ] {
            assert!(!blocked(ip), "{ip} should be public");
        }
    }

    #[test]
    fn allow_list_opens_a_network() {
        let policy = AddressPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.permits("127.0.0.1".parse().unwrap()));
        assert!(policy.permits("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!policy.permits("10.0.0.1".parse().unwrap()));
        assert!(policy.permits("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn url_literals_in_every_spelling_are_checked() {
        let policy = AddressPolicy::default();
        let urls = UrlPolicy {
            addresses: &policy,
            https_only: false,
        };
        for raw in [
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://user@127.0.0.1/",
            "http://169.254.169.254/latest",
        ] {
            assert!(urls.check("url", raw).is_err(), "{raw} should be refused");
        }
        assert!(urls.check("url", "https://example.com/hook").is_ok());
    }

    #[test]
    fn https_only_refuses_plain_http() {
        let policy = AddressPolicy::default();
        let urls = UrlPolicy {
            addresses: &policy,
            https_only: true,
        };
        assert_eq!(
            urls.check("url", "http://example.com").unwrap_err().field,
            "url"
        );
        assert!(urls.check("url", "https://example.com").is_ok());
    }
}
