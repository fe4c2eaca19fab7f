//! What sits between an accepted socket and a transport, for production
//! deployments: TLS, the PROXY protocol, and proxy headers.
//!
//! * [`forwarded`] — `--trusted-proxy`: the client address and the page's
//!   origin from `X-Forwarded-*`/`Forwarded`, believed only from trusted
//!   peers ([`forwarded::client_addr`] is the one place that decides).
//! * [`proxy_protocol`] — HAProxy's PROXY protocol v1/v2 on the TCP and IRC
//!   listeners (`--tcp-proxy-protocol`, `--irc-proxy-protocol`).
//! * [`tls`] — rustls with a certificate reloaded on SIGHUP.
//! * [`stream`] — a plain or TLS connection, as the transports see it.
//! * [`http`] — the HTTP listener, plain or TLS, for axum.
//! * [`handshakes`] — how many TLS handshakes a listener (and one address)
//!   has in progress at once.

pub mod forwarded;
pub mod handshakes;
pub mod http;
pub mod proxy_protocol;
pub mod stream;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use banter_protocol::ErrorCode;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use self::forwarded::Cidr;
use self::handshakes::Handshakes;
use self::proxy_protocol::Header;
pub use self::stream::Stream;
use crate::limits::{AddressLimits, AddressPermit};

/// How a raw TCP listener (JSON lines, IRC) turns sockets into streams.
#[derive(Clone)]
pub struct Listen {
    /// A PROXY protocol header is required (and believed).
    pub proxy_protocol: bool,
    /// Only these peers may send one; empty: any peer.
    pub trusted: Vec<Cidr>,
    pub tls: Option<TlsAcceptor>,
    /// For the PROXY header and the TLS handshake together.
    pub timeout: Duration,
    /// The TLS handshakes in progress (with `tls`): at most so many at
    /// once, and so many from one client address.
    pub handshakes: Handshakes,
}

/// Why a socket did not become a stream.
#[derive(Debug)]
pub enum Refused {
    /// Tell the client this (in its transport's words) on the plain
    /// socket, then close.
    Tell(TcpStream, ErrorCode, String),
    /// Just close (TLS failed, a timeout, the peer went away, or a refusal
    /// on a TLS port, where nothing can be said before the handshake).
    Drop,
}

impl Listen {
    /// With TLS, waits for one of the listener's handshake slots, to be
    /// held until the connection is open (or refused); without, `None`
    /// at once.
    pub async fn slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match self.tls {
            Some(_) => self.handshakes.slot().await,
            None => None,
        }
    }

    /// Reads the PROXY header (if configured), admits the client's address
    /// (the header's source when there is one) by `addresses`, and does
    /// the TLS handshake (if configured), within the timeout. The address
    /// is admitted before the handshake, so that one address can hold no
    /// more handshakes than its share of connections. Returns the stream,
    /// the client's address, and its address permit.
    pub async fn open(
        &self,
        mut tcp: TcpStream,
        peer: SocketAddr,
        transport: &'static str,
        addresses: &Arc<AddressLimits>,
    ) -> Result<(Stream, SocketAddr, AddressPermit), Refused> {
        let deadline = Instant::now() + self.timeout;
        let mut client = peer;
        let plain_refusal = |tcp, code, message: String| {
            if self.tls.is_some() {
                Refused::Drop
            } else {
                Refused::Tell(tcp, code, message)
            }
        };
        if self.proxy_protocol {
            if !self.trusted.is_empty() && !forwarded::is_trusted(peer.ip(), &self.trusted) {
                debug!(%peer, transport, "refused: PROXY protocol from a peer that is not a --trusted-proxy");
                return Err(Refused::Tell(
                    tcp,
                    ErrorCode::BadRequest,
                    "this port takes connections only from the server's trusted proxies".into(),
                ));
            }
            match timeout_at(deadline, proxy_protocol::read_header(&mut tcp)).await {
                Ok(Ok(Header::Proxied(source))) => {
                    debug!(%peer, client = %source, transport, "PROXY protocol header");
                    client = source;
                }
                Ok(Ok(Header::Local)) => {}
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    debug!(%peer, transport, error = %e, "refused");
                    return Err(plain_refusal(tcp, ErrorCode::BadRequest, e.to_string()));
                }
                Ok(Err(e)) => {
                    debug!(%peer, transport, error = %e, "closed before a PROXY protocol header");
                    return Err(Refused::Drop);
                }
                Err(_) => {
                    debug!(%peer, transport, "no PROXY protocol header in time");
                    return Err(Refused::Drop);
                }
            }
        }
        let address = match addresses.admit(client.ip()) {
            Ok(address) => address,
            Err(refusal) => {
                let message = refusal.message();
                debug!(peer = %client, transport, reason = %message, "connection refused");
                return Err(plain_refusal(tcp, ErrorCode::TooManyConnections, message));
            }
        };
        let Some(acceptor) = &self.tls else {
            return Ok((Stream::plain(tcp, !self.proxy_protocol), client, address));
        };
        // Counted by the client's address (the PROXY header's, behind a
        // balancer), before any TLS work; the listener's slot for it was
        // taken before the accept (see [`Listen::slot`]).
        let Some(_handshaking) = self.handshakes.start(client.ip()) else {
            debug!(peer = %client, transport, "refused: too many TLS handshakes from its address");
            return Err(Refused::Drop);
        };
        if !self.proxy_protocol {
            match timeout_at(deadline, peek_proxy_header(&tcp)).await {
                Ok(true) => {
                    debug!(%peer, transport, "refused: unexpected PROXY protocol header");
                    return Err(Refused::Tell(
                        tcp,
                        ErrorCode::BadRequest,
                        proxy_protocol::UnexpectedHeader.to_string(),
                    ));
                }
                Ok(false) => {}
                Err(_) => {
                    debug!(%peer, transport, "no TLS handshake in time");
                    return Err(Refused::Drop);
                }
            }
        }
        match timeout_at(deadline, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Ok((Stream::Tls(Box::new(tls)), client, address)),
            Ok(Err(e)) => {
                debug!(%peer, transport, error = %e, "TLS handshake failed");
                Err(Refused::Drop)
            }
            Err(_) => {
                debug!(%peer, transport, "no TLS handshake in time");
                Err(Refused::Drop)
            }
        }
    }
}

/// Whether the first bytes (waited for) are a PROXY header. Reads nothing.
async fn peek_proxy_header(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 12];
    loop {
        match tcp.peek(&mut first).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => match proxy_protocol::Sniffer::new().feed(&first[..n]) {
                Some(found) => return found,
                // A prefix of one: wait for more bytes.
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            },
        }
    }
}

/// The next connection on `listener`, with `TCP_NODELAY` set. Accept
/// errors (usually out of file descriptors) are logged and retried after a
/// pause instead of spinning.
pub async fn accept(
    listener: &tokio::net::TcpListener,
    transport: &str,
) -> (tokio::net::TcpStream, std::net::SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((tcp, addr)) => {
                let _ = tcp.set_nodelay(true);
                return (tcp, addr);
            }
            Err(e) => {
                tracing::warn!(error = %e, transport, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
