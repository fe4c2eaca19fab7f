//! The PROXY protocol (HAProxy's, versions 1 and 2): a TCP load balancer
//! that does not speak our protocols (HAProxy in TCP mode, nginx `stream`,
//! AWS NLB) puts one header in front of the client's bytes saying whose
//! connection it is.
//!
//! On a listener configured for it (`--tcp-proxy-protocol`,
//! `--irc-proxy-protocol`) the header is required, and its source address
//! is the client's. On any other listener a connection that starts with
//! one is refused with a clear reason, since its "client" would otherwise
//! be the balancer, and the header would be read as chat input.
//!
//! The header is read byte-exactly (nothing past it), so what follows is
//! left to the transport (or to TLS).

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// What version 2 headers start with.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest version 1 header, CRLF included.
const V1_MAX: usize = 107;
/// The longest version 2 address block (with TLVs) we accept.
const V2_MAX_BODY: usize = 1024;

/// What a header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Header {
    /// The balancer's own connection (v2 `LOCAL`, a health check), v1
    /// `UNKNOWN`, or an address family we don't use: the connection's own
    /// address stands.
    Local,
    /// A client's connection, from this address.
    Proxied(SocketAddr),
}

/// Why a header was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct BadHeader(pub String);

impl fmt::Display for BadHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad PROXY protocol header: {}", self.0)
    }
}

impl std::error::Error for BadHeader {}

fn bad(why: impl Into<String>) -> BadHeader {
    BadHeader(why.into())
}

/// Reads one header (v1 or v2) and nothing after it. Errors: the stream
/// ended or failed (`io`), or the bytes are not a valid header.
pub async fn read_header<R: AsyncRead + Unpin>(stream: &mut R) -> io::Result<Header> {
    let invalid = |e: BadHeader| io::Error::new(io::ErrorKind::InvalidData, e);
    let mut start = [0u8; 12];
    stream.read_exact(&mut start).await?;
    if start == V2_SIGNATURE {
        let mut head = [0u8; 4];
        stream.read_exact(&mut head).await?;
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if len > V2_MAX_BODY {
            return Err(invalid(bad(format!("v2 address block of {len} bytes"))));
        }
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body).await?;
        return parse_v2(head, &body).map_err(invalid);
    }
    if !start.starts_with(V1_PREFIX) {
        return Err(invalid(bad(
            "the connection did not start with one (this port expects the PROXY protocol)",
        )));
    }
    if start.contains(&b'\n') {
        return Err(invalid(bad("v1 header shorter than the shortest one")));
    }
    let mut line = start.to_vec();
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(invalid(bad("v1 header longer than 107 bytes")));
        }
        let byte = stream.read_u8().await?;
        if byte == b'\n' && !line.ends_with(b"\r") {
            return Err(invalid(bad("v1 header ends with LF, not CRLF")));
        }
        line.push(byte);
    }
    parse_v1(&line).map_err(invalid)
}

/// A version 1 header: `PROXY TCP4 src dst sport dport\r\n`.
pub fn parse_v1(line: &[u8]) -> Result<Header, BadHeader> {
    let line = line
        .strip_suffix(b"\r\n")
        .ok_or_else(|| bad("v1 header without CRLF"))?;
    let line = std::str::from_utf8(line).map_err(|_| bad("v1 header is not ASCII"))?;
    let mut words = line.split(' ');
    if words.next() != Some("PROXY") {
        return Err(bad("v1 header does not start with PROXY"));
    }
    let family = words.next().unwrap_or("");
    if family == "UNKNOWN" {
        return Ok(Header::Local);
    }
    let parts: Vec<&str> = words.collect();
    let [src, _dst, sport, dport] = parts[..] else {
        return Err(bad("v1 header needs 4 fields after the family"));
    };
    let ip: IpAddr = match family {
        "TCP4" => src.parse::<Ipv4Addr>().map(IpAddr::V4),
        "TCP6" => src.parse::<Ipv6Addr>().map(IpAddr::V6),
        _ => return Err(bad(format!("v1 family {family:?}"))),
    }
    .map_err(|_| bad(format!("v1 source address {src:?}")))?;
    let port = |p: &str| {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        p.parse::<u16>().ok()
    };
    let sport = port(sport).ok_or_else(|| bad(format!("v1 source port {sport:?}")))?;
    port(dport).ok_or_else(|| bad(format!("v1 destination port {dport:?}")))?;
    Ok(Header::Proxied(SocketAddr::new(ip.to_canonical(), sport)))
}

/// A version 2 header after its signature: `head` is version/command,
/// family/transport and length; `body` the address block.
pub fn parse_v2(head: [u8; 4], body: &[u8]) -> Result<Header, BadHeader> {
    let (version, command) = (head[0] >> 4, head[0] & 0x0f);
    if version != 2 {
        return Err(bad(format!("v2 version {version}")));
    }
    match command {
        0 => return Ok(Header::Local),
        1 => {}
        _ => return Err(bad(format!("v2 command {command}"))),
    }
    let (family, need) = match head[1] >> 4 {
        1 => (4, 12),
        2 => (6, 36),
        // AF_UNSPEC, AF_UNIX: no address we can use.
        0 | 3 => return Ok(Header::Local),
        f => return Err(bad(format!("v2 address family {f}"))),
    };
    if body.len() < need {
        return Err(bad(format!(
            "v2 address block of {} bytes, need {need}",
            body.len()
        )));
    }
    let ip = if family == 4 {
        IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&body[..4]).unwrap()))
    } else {
        IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&body[..16]).unwrap()))
    };
    let at = if family == 4 { 8 } else { 32 };
    let port = u16::from_be_bytes([body[at], body[at + 1]]);
    Ok(Header::Proxied(SocketAddr::new(ip.to_canonical(), port)))
}

/// Watches the first bytes of a connection that must *not* carry a PROXY
/// header: [`feed`](Self::feed) says `Some(true)` once they are one,
/// `Some(false)` once they can't be, `None` while undecided.
#[derive(Debug, Default)]
pub struct Sniffer {
    seen: usize,
    /// Still a prefix of `PROXY `, of the v2 signature.
    v1: bool,
    v2: bool,
}

impl Sniffer {
    pub fn new() -> Sniffer {
        Sniffer {
            seen: 0,
            v1: true,
            v2: true,
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) -> Option<bool> {
        for &b in bytes {
            let i = self.seen;
            self.v1 &= i < V1_PREFIX.len() && V1_PREFIX[i] == b;
            self.v2 &= i < V2_SIGNATURE.len() && V2_SIGNATURE[i] == b;
            self.seen += 1;
            if self.v1 && self.seen == V1_PREFIX.len() || self.v2 && self.seen == V2_SIGNATURE.len()
            {
                return Some(true);
            }
            if !self.v1 && !self.v2 {
                return Some(false);
            }
        }
        None
    }
}

/// Whether `bytes` (a connection's first bytes) start a PROXY header.
pub fn starts_header(bytes: &[u8]) -> bool {
    Sniffer::new().feed(bytes) == Some(true)
}

/// The error a plain stream returns when a connection that must not carry
/// a PROXY header starts with one.
#[derive(Debug)]
pub struct UnexpectedHeader;

impl fmt::Display for UnexpectedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the connection starts with a PROXY protocol header, but this port is not configured for one")
    }
}

impl std::error::Error for UnexpectedHeader {}

impl UnexpectedHeader {
    pub fn error() -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, UnexpectedHeader)
    }

    pub fn is(e: &io::Error) -> bool {
        e.get_ref()
            .is_some_and(|inner| inner.is::<UnexpectedHeader>())
    }
}

/// Headers as HAProxy writes them (for tests, here and in `backend/tests`).
pub fn v1_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

pub fn v2_header(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let mut out = V2_SIGNATURE.to_vec();
    out.push(0x21);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            out.extend_from_slice(&[0x11, 0, 12]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        (s, d) => {
            let v6 = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            out.extend_from_slice(&[0x21, 0, 36]);
            out.extend_from_slice(&v6(s).octets());
            out.extend_from_slice(&v6(d).octets());
        }
    }
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    async fn read(bytes: &[u8]) -> (io::Result<Header>, Vec<u8>) {
        let mut reader = bytes;
        let header = read_header(&mut reader).await;
        (header, reader.to_vec())
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn v1_and_v2_are_read_exactly() {
        let (src, dst) = (addr("203.0.113.9:51000"), addr("10.0.0.1:7878"));
        for header in [v1_header(src, dst), v2_header(src, dst)] {
            let mut bytes = header.clone();
            bytes.extend_from_slice(b"NICK alice\r\n");
            let (got, rest) = read(&bytes).await;
            assert_eq!(got.unwrap(), Header::Proxied(src));
            assert_eq!(
                rest, b"NICK alice\r\n",
                "nothing after the header is consumed"
            );
        }
        let src6 = addr("[2001:db8::7]:4000");
        let dst6 = addr("[2001:db8::1]:6667");
        for header in [v1_header(src6, dst6), v2_header(src6, dst6)] {
            assert_eq!(read(&header).await.0.unwrap(), Header::Proxied(src6));
        }
        assert_eq!(
            read(b"PROXY UNKNOWN\r\nhello").await.0.unwrap(),
            Header::Local
        );
        // v2 LOCAL (a health check), with a TLV after the addresses.
        let mut local = V2_SIGNATURE.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 3, 1, 0, 0]);
        assert_eq!(read(&local).await.0.unwrap(), Header::Local);
    }

    #[tokio::test]
    async fn bad_headers_are_refused() {
        for bytes in [
            &b"NICK alice\r\nUSER a 0 * :a\r\n"[..],
            b"{\"type\":\"hello\",\"nick\":\"a\"}\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        ] {
            let (got, _) = read(bytes).await;
            let e = got.unwrap_err();
            assert!(
                e.kind() == io::ErrorKind::InvalidData,
                "{:?}: {e}",
                String::from_utf8_lossy(bytes)
            );
        }
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        assert!(read(long.as_bytes()).await.0.is_err());
        let mut v2 = V2_SIGNATURE.to_vec();
        v2.extend_from_slice(&[0x11, 0x11, 0, 12]);
        v2.extend_from_slice(&[0; 12]);
        assert!(read(&v2).await.0.is_err(), "version 1 in a v2 header");
        let mut short = V2_SIGNATURE.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert!(read(&short).await.0.is_err(), "too short for IPv4");
    }

    #[test]
    fn the_sniffer_decides_as_early_as_it_can() {
        assert!(starts_header(b"PROXY TCP4 1.2.3.4"));
        assert!(starts_header(&V2_SIGNATURE));
        assert!(!starts_header(b"{\"type\":\"hello\"}"));
        assert!(!starts_header(b"PASS x\r\n"));
        assert!(!starts_header(b"PROXYX"));
        assert!(!starts_header(b"\r\n\r\nNICK a\r\n"));
        let mut s = Sniffer::new();
        assert_eq!(s.feed(b"PRO"), None);
        assert_eq!(s.feed(b""), None);
        assert_eq!(s.feed(b"XY "), Some(true));
        let mut s = Sniffer::new();
        assert_eq!(s.feed(b"\r\n"), None);
        assert_eq!(s.feed(b"\r\n\0"), None);
        assert_eq!(s.feed(b"\r\nQUIT\n"), Some(true));
        let mut s = Sniffer::new();
        assert_eq!(s.feed(b"P"), None);
        assert_eq!(s.feed(b"ING :x\r\n"), Some(false));
    }

    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        ]
    }

    proptest! {
        #[test]
        fn headers_round_trip(src in any_addr(), dst in any_addr()) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            // IPv4-mapped IPv6 addresses come back as IPv4.
            let want = Header::Proxied(SocketAddr::new(src.ip().to_canonical(), src.port()));
            // v1 needs both addresses in the same family.
            if src.is_ipv4() == dst.is_ipv4() {
                let v1 = v1_header(src, dst);
                prop_assert!(v1.len() <= V1_MAX);
                prop_assert_eq!(rt.block_on(read(&v1)).0.unwrap(), want);
            }
            let v2 = v2_header(src, dst);
            prop_assert_eq!(rt.block_on(read(&v2)).0.unwrap(), want);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _ = rt.block_on(read(&bytes));
            let _ = parse_v1(&bytes);
            if bytes.len() >= 4 {
                let _ = parse_v2([bytes[0], bytes[1], bytes[2], bytes[3]], &bytes[4..]);
            }
            let mut s = Sniffer::new();
            let _ = s.feed(&bytes);
        }

        #[test]
        fn garbage_after_the_v1_prefix_is_refused_or_valid(tail in "[ -~]{0,120}") {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let bytes = format!("PROXY {tail}\r\n");
            if let Ok(Header::Proxied(src)) = rt.block_on(read(bytes.as_bytes())).0 {
                prop_assert!(bytes.contains(&src.ip().to_string()));
            }
        }
    }
}
