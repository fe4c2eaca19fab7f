//! Behind a reverse proxy: who the client is, and which origin its page
//! has, believing `X-Forwarded-*` and `Forwarded` (RFC 7239) only when the
//! connection comes from a `--trusted-proxy`.
//!
//! Client address: the proxy headers list the hops a request took, each
//! proxy appending the address it was connected from. Walking that list
//! from the right, skipping trusted proxies, the first address that is not
//! trusted is the client: everything left of it was written by the client
//! itself (or by proxies it chose) and proves nothing. An entry that is not
//! an address (`unknown`, an obfuscated name) stops the walk at the last
//! trusted hop.
//!
//! Which header: `X-Forwarded-For` when present (what nginx, Caddy and
//! most proxies set), otherwise `Forwarded`. A proxy that sets `Forwarded`
//! must therefore remove any `X-Forwarded-For` a client sent.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use axum::http::{HeaderMap, HeaderName, header};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Longest proxy chain looked at; a longer one stops at its last trusted hop.
const MAX_HOPS: usize = 32;

/// An address range (`10.0.0.0/8`, `fd00::/8`) or one address (`127.0.0.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(Cidr(net.trunc()));
        }
        s.parse::<IpAddr>()
            .map(|ip| Cidr(IpNet::from(ip.to_canonical())))
            .map_err(|_| format!("{s:?} is not an address or CIDR range (like 10.0.0.0/8)"))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Whether `ip` is one of the trusted proxies.
pub fn is_trusted(ip: IpAddr, trusted: &[Cidr]) -> bool {
    let ip = ip.to_canonical();
    trusted.iter().any(|c| c.0.contains(&ip))
}

/// The client's address: `peer` (the connection's own address) unless
/// `peer` is a trusted proxy, then the rightmost untrusted address its
/// proxy headers name. This is the address for logs and per-address limits.
pub fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let mut client = peer.to_canonical();
    if !is_trusted(client, trusted) {
        return client;
    }
    for hop in forwarded_for(headers).into_iter().rev().take(MAX_HOPS) {
        let Some(ip) = hop else { return client };
        client = ip.to_canonical();
        if !is_trusted(client, trusted) {
            return client;
        }
    }
    client
}

/// The page's origin as the browser saw it: scheme (when known) and host
/// (`host` or `host:port`). Through a trusted proxy, from
/// `X-Forwarded-Proto`/`X-Forwarded-Host` or `Forwarded`'s `proto`/`host`
/// (the outermost proxy's, leftmost); otherwise the `Host` header, with
/// `https` if the connection itself is TLS.
pub fn page_origin(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    tls: bool,
) -> (Option<String>, Option<String>) {
    let mut scheme = tls.then(|| "https".to_string());
    let mut host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    if is_trusted(peer, trusted) {
        let first = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let forwarded = forwarded_elements(headers).into_iter().next();
        let from_forwarded = |key: &str| {
            forwarded
                .as_ref()
                .and_then(|pairs| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
                .map(|(_, v)| v.clone())
        };
        if let Some(proto) = first(&X_FORWARDED_PROTO).or_else(|| from_forwarded("proto")) {
            scheme = Some(proto.to_ascii_lowercase());
        }
        if let Some(h) = first(&X_FORWARDED_HOST).or_else(|| from_forwarded("host")) {
            host = Some(h);
        }
    }
    (scheme, host)
}

/// The hops, leftmost first: `None` for an entry that is not an address.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    if headers.contains_key(&X_FORWARDED_FOR) {
        return headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .flat_map(|v| v.to_str().unwrap_or("?").split(','))
            .map(parse_node)
            .collect();
    }
    forwarded_elements(headers)
        .into_iter()
        .map(|pairs| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| parse_node(v))
        })
        .collect()
}

/// `Forwarded` elements (comma-separated, across every header line), each
/// as its `key=value` pairs with quotes removed.
fn forwarded_elements(headers: &HeaderMap) -> Vec<Vec<(String, String)>> {
    let mut elements = Vec::new();
    for value in headers.get_all(header::FORWARDED) {
        let Ok(value) = value.to_str() else {
            // Unreadable: an element that names nobody.
            elements.push(Vec::new());
            continue;
        };
        for element in split_outside_quotes(value, ',') {
            let pairs = split_outside_quotes(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| {
                    let v = v.trim();
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(v);
                    (k.trim().to_string(), v.replace("\\\"", "\""))
                })
                .collect();
            elements.push(pairs);
        }
    }
    elements
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]:4711`, `2001:db8::1`.
fn parse_node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Some(rest) = s.strip_prefix('[') {
        return rest
            .split_once(']')?
            .0
            .parse::<Ipv6Addr>()
            .ok()
            .map(IpAddr::V6);
    }
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    let (ip, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// An origin (`https://chat.example.com:8443`) in a form to compare:
/// lower case, default ports dropped. `None` for anything that is not an
/// `http`/`https` origin (`null`, paths, other schemes).
pub fn normalize_origin(origin: &str) -> Option<(String, String)> {
    let origin = origin.trim().to_ascii_lowercase();
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains(['/', '?', '#', '@'])
    {
        return None;
    }
    Some((scheme.to_string(), strip_default_port(scheme, rest)))
}

/// `host:443` is `host` for https, `host:80` for http.
pub fn strip_default_port(scheme: &str, host: &str) -> String {
    let host = host.to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    match host.strip_suffix(default) {
        Some(bare) if !bare.is_empty() && !bare.ends_with(':') => bare.to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    fn trusted(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_and_single_addresses_parse() {
        assert_eq!(
            "10.1.2.3/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!(
            "127.0.0.1".parse::<Cidr>().unwrap().to_string(),
            "127.0.0.1/32"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("proxy.example".parse::<Cidr>().is_err());
        // An IPv4-mapped IPv6 peer is the IPv4 address.
        assert!(is_trusted(ip("::ffff:10.0.0.1"), &trusted(&["10.0.0.0/8"])));
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("forwarded", "for=198.51.100.8"),
        ]);
        assert_eq!(client_addr(ip("203.0.113.5"), &h, &[]), ip("203.0.113.5"));
        assert_eq!(
            client_addr(ip("203.0.113.5"), &h, &trusted(&["10.0.0.0/8"])),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "192.168.1.1"]);
        // The client forged the first entry; the edge proxy appended the real one.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 203.0.113.9, 192.168.1.1")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
        // Several header lines are one list.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9:5555"),
        ]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
        // All trusted: the leftmost.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 192.168.1.1")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("10.9.9.9"));
        // Garbage stops at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("10.0.0.2"));
        // No header: the proxy itself.
        assert_eq!(
            client_addr(ip("10.0.0.2"), &HeaderMap::new(), &t),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn forwarded_is_used_without_x_forwarded_for() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            r#"for=1.2.3.4;proto=http, for="[2001:db8:cafe::17]:4711";by=10.0.0.1, For=10.0.0.3"#,
        )]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("2001:db8:cafe::17"));
        let h = headers(&[("forwarded", "for=_hidden, for=10.0.0.3")]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("10.0.0.3"));
        // X-Forwarded-For wins when both are there.
        let h = headers(&[
            ("forwarded", "for=1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_addr(ip("10.0.0.2"), &h, &t), ip("203.0.113.9"));
    }

    #[test]
    fn the_page_origin_comes_through_trusted_proxies_only() {
        let t = trusted(&["10.0.0.0/8"]);
        let h = headers(&[
            ("host", "backend:8080"),
            ("x-forwarded-host", "chat.example"),
            ("x-forwarded-proto", "HTTPS"),
        ]);
        assert_eq!(
            page_origin(ip("10.0.0.2"), &h, &t, false),
            (Some("https".into()), Some("chat.example".into()))
        );
        assert_eq!(
            page_origin(ip("203.0.113.1"), &h, &t, false),
            (None, Some("backend:8080".into()))
        );
        assert_eq!(
            page_origin(ip("203.0.113.1"), &h, &t, true),
            (Some("https".into()), Some("backend:8080".into()))
        );
        let h = headers(&[
            ("host", "backend:8080"),
            (
                "forwarded",
                r#"for=1.2.3.4;host="chat.example:8443";proto=https"#,
            ),
        ]);
        assert_eq!(
            page_origin(ip("10.0.0.2"), &h, &t, false),
            (Some("https".into()), Some("chat.example:8443".into()))
        );
    }

    #[test]
    fn origins_normalize() {
        assert_eq!(
            normalize_origin("HTTPS://Chat.Example:443"),
            Some(("https".into(), "chat.example".into()))
        );
        assert_eq!(
            normalize_origin("http://chat.example:8080"),
            Some(("http".into(), "chat.example:8080".into()))
        );
        assert_eq!(
            normalize_origin("http://[::1]:80"),
            Some(("http".into(), "[::1]".into()))
        );
        assert_eq!(normalize_origin("null"), None);
        assert_eq!(normalize_origin("https://chat.example/path"), None);
        assert_eq!(normalize_origin("ftp://chat.example"), None);
    }

    proptest! {
        #[test]
        fn header_garbage_never_panics_and_yields_a_known_address(
            xff in "[0-9a-f.:, \\[\\]\"=;_]{0,80}",
            fwd in "[0-9a-zA-Z.:, \\[\\]\"=;_]{0,80}",
        ) {
            let t = trusted(&["10.0.0.0/8"]);
            let h = headers(&[("forwarded", &fwd)]);
            let _ = client_addr(ip("10.0.0.2"), &h, &t);
            let _ = page_origin(ip("10.0.0.2"), &h, &t, false);
            let h = headers(&[("x-forwarded-for", &xff)]);
            let got = client_addr(ip("10.0.0.2"), &h, &t);
            // Whatever the header says, the answer is the peer or an
            // address the header actually contains.
            prop_assert!(got == ip("10.0.0.2") || xff.split(',').any(|n| parse_node(n).map(|i| i.to_canonical()) == Some(got)));
        }
    }
}
