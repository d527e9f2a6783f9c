//! The SSRF guard for outgoing webhooks: an endpoint may not point at private, loopback,
//! link-local, metadata or otherwise internal addresses, checked at registration and again on
//! every resolved address at send time (DNS can change). Loopback is allowed only with the
//! local stack's explicit opt-in (`RELAY_ALLOW_LOOPBACK=true`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    #[error("the URL is not a valid http(s) URL")]
    BadUrl,
    #[error("the URL must use http or https")]
    Scheme,
    #[error("{0} is not a public address")]
    Blocked(IpAddr),
    #[error("the URL must not carry credentials")]
    Credentials,
}

/// Is this address one an endpoint may use?
pub fn check_ip(ip: IpAddr, allow_loopback: bool) -> Result<(), SsrfError> {
    let ip = match ip {
        // IPv4-mapped and -compatible IPv6 addresses are judged as the IPv4 address they carry.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    let blocked = match ip {
        IpAddr::V4(v4) => blocked_v4(v4, allow_loopback),
        IpAddr::V6(v6) => blocked_v6(v6, allow_loopback),
    };
    if blocked {
        Err(SsrfError::Blocked(ip))
    } else {
        Ok(())
    }
}

fn blocked_v4(ip: Ipv4Addr, allow_loopback: bool) -> bool {
    let o = ip.octets();
    (ip.is_loopback() && !allow_loopback)
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (64..128).contains(&o[1])) // carrier-grade NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] == 18 || o[1] == 19)) // benchmarking
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast
        || o[0] >= 240 // reserved
}

fn blocked_v6(ip: Ipv6Addr, allow_loopback: bool) -> bool {
    let s = ip.segments();
    (ip.is_loopback() && !allow_loopback)
        || ip.is_unspecified()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 (could reach IPv4 internals)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated, still routed inward by some stacks)
        || s[0] == 0x2002 // 6to4: embeds any IPv4 address, 169.254.169.254 included
        || (s[0] == 0x2001 && s[1] == 0) // Teredo: embeds an IPv4 address
        || (s[0] == 0x0100 && s[1] == 0 && s[2] == 0 && s[3] == 0) // discard-only
        || (s[0..4] == [0, 0, 0, 0] && s[4] == 0xffff && s[5] == 0) // IPv4-translated (::ffff:0:a.b.c.d)
        || (s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0)
    // IPv4-compatible
}

/// Checks a URL's shape, and its host when the host is an IP literal. Host names are checked
/// when they are resolved (at registration by the caller, at send time by the sender).
pub fn check_url(raw: &str, allow_loopback: bool) -> Result<url::Url, SsrfError> {
    let url = url::Url::parse(raw).map_err(|_| SsrfError::BadUrl)?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(SsrfError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(SsrfError::Credentials);
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_loopback)?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_loopback)?,
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost") => {
            check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST), allow_loopback)?
        }
        Some(url::Host::Domain(_)) => {}
        None => return Err(SsrfError::BadUrl),
    }
    Ok(url)
}

/// `RELAY_ALLOW_LOOPBACK=true`: the local stack's opt-in, never set in a deployment.
pub fn loopback_allowed() -> bool {
    std::env::var("RELAY_ALLOW_LOOPBACK").is_ok_and(|v| v == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/x",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:10.0.0.1]/",
            "http://[fd00::1]/",
            "http://[fe80::1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
            "http://localhost:8080/",
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        assert!(check_url("ftp://example.com/", false).is_err());
        assert!(check_url("https://user:pw@example.com/", false).is_err());
        assert!(check_url("https://hooks.example.com/relay", false).is_ok());
        assert!(check_url("https://93.184.216.34/", false).is_ok());
        assert!(check_url("http://127.0.0.1:9000/", true).is_ok(), "the local opt-in");
        assert!(check_url("http://10.0.0.1/", true).is_err(), "the opt-in is for loopback only");
    }

    #[test]
    fn ranges_that_embed_or_reach_internal_ipv4_are_refused() {
        for url in [
            "http://[::ffff:0:a9fe:a9fe]/",  // IPv4-translated 169.254.169.254
            "http://[::ffff:0:7f00:1]/",     // IPv4-translated 127.0.0.1
            "http://[2002:a9fe:a9fe::1]/",   // 6to4 around 169.254.169.254
            "http://[fec0::1]/",             // site-local
            "http://[2001:0:4136:e378::1]/", // Teredo
            "http://[100::1]/",              // discard-only
            "http://192.88.99.1/",           // 6to4 relay anycast
        ] {
            assert!(check_url(url, false).is_err(), "{url}");
        }
        assert!(check_url("http://[2001:4860:4860::8888]/", false).is_ok(), "a public IPv6 address");
    }
}
