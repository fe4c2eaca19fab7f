//! The WebSocket transport: `GET /ws`, one JSON message per text frame.
//! Binary frames are answered with `binary_unsupported`; WebSocket pings
//! and pongs count as signs of life.
//!
//! The upgrade is ours (hyper's upgrade, the handshake checked here) so
//! that the socket is ours too: tungstenite reads frames and answers pings
//! and closes, while outgoing text frames are written straight to the
//! socket from the shared JSON bytes (a server's frames are unmasked: a
//! header and the payload), with no per-connection write buffer kept.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll, Wake, Waker, ready};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use banter_protocol::{ErrorCode, ServerMessage};
use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{FrameHeader, Utf8Bytes};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tracing::{debug, warn};

use crate::config::Settings;
use crate::context::Context;
use crate::core::frame::Frame;
use crate::limits::Refusal;
use crate::metrics::{Limit, metrics};
use crate::net::forwarded::{self, Cidr, normalize_origin, strip_default_port};
use crate::net::http::{HttpConn, HttpPeer};
use crate::session;
use crate::session::{Inbound, Transport};

/// tungstenite's read buffer per connection (its default is 128 KiB),
/// kept for the connection's life, and the most read at once: requests
/// are small (a `say` of a line of text fits), a larger frame takes a few
/// reads. It is the largest part of an idle WebSocket after its task.
const READ_BUFFER: usize = 256;
/// Frames are gathered up to this many bytes before a write.
const WRITE_BUFFER: usize = 16 * 1024;

pub(crate) type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

pub struct WsConnection {
    pub(crate) socket: Socket,
    max_frame: usize,
    /// The waker tungstenite's reader is polled with (see [`ReadGate`]).
    gate: Arc<ReadGate>,
    gate_waker: Waker,
}

/// Lets [`WsConnection::recv`] skip tungstenite's reader when nothing
/// woke it. The session polls `recv` on every wake-up, most of them for
/// its outbox; each poll of tungstenite's reader goes through its read
/// path down to the socket (and zeroes its 4 KiB read buffer first), about
/// half the cost of a WebSocket delivery at one frame per wake-up. The
/// reader is polled with this waker instead of the task's: the socket's
/// readiness (or tungstenite's write side) wakes it, which marks it
/// `woken` and wakes the task.
struct ReadGate {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for ReadGate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl WsConnection {
    pub(crate) fn new(socket: Socket, max_frame: usize) -> Self {
        let gate = Arc::new(ReadGate {
            // Nothing has been read yet: the first poll reads.
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        WsConnection {
            socket,
            max_frame,
            gate_waker: Waker::from(gate.clone()),
            gate,
        }
    }

    /// `socket.poll_next`, but only when the last poll found a message
    /// (more may be buffered) or a wake-up came since it found none.
    pub(crate) fn poll_message(
        &mut self,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Message, tokio_tungstenite::tungstenite::Error>>> {
        // Registered before the check: a wake-up after it is not lost.
        self.gate.task.register(cx.waker());
        if !self.gate.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut gated = TaskContext::from_waker(&self.gate_waker);
        let polled = self.socket.poll_next_unpin(&mut gated);
        if polled.is_ready() {
            self.gate.woken.store(true, Ordering::Release);
        }
        polled
    }
}

impl Transport for WsConnection {
    const TRANSPORT: &'static str = "ws";
    const TOO_LONG: ErrorCode = ErrorCode::FrameTooLong;

    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<Option<Inbound>>> {
        let Some(message) = ready!(self.poll_message(cx)) else {
            return Poll::Ready(Ok(None));
        };
        Poll::Ready(Ok(Some(match message.map_err(io::Error::other)? {
            Message::Text(text) if text.len() > self.max_frame => Inbound::TooLong,
            Message::Text(text) => Inbound::Text(Bytes::from(text)),
            Message::Binary(_) => Inbound::Binary,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Inbound::Alive,
            Message::Close(_) => return Poll::Ready(Ok(None)),
        })))
    }

    async fn send(&mut self, frames: &mut VecDeque<Frame>) -> io::Result<()> {
        // What tungstenite still has to write (a pong, a close) goes first,
        // so that the frames below never land inside one of its own.
        std::future::poll_fn(|cx| self.socket.poll_flush_unpin(cx))
            .await
            .map_err(io::Error::other)?;
        // Each frame's header and JSON, gathered into one buffer per write
        // of at most about WRITE_BUFFER bytes, made for this batch only.
        // A server frame's header is at most 10 bytes.
        let size: usize = frames.iter().map(|f| f.json_line().len() + 10).sum();
        let mut out = Vec::with_capacity(size.min(WRITE_BUFFER + 64));
        let stream = self.socket.get_mut();
        while let Some(frame) = frames.pop_front() {
            text_frame(&frame.json(), &mut out);
            if out.len() >= WRITE_BUFFER || frames.is_empty() {
                stream.write_all(&out).await?;
                out.clear();
            }
        }
        stream.flush().await
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.socket
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self, closing: Option<Frame>) {
        let close_frame = closing.as_ref().map(|frame| {
            let code = match frame.message() {
                Some(ServerMessage::Closing { code, .. }) => *code,
                _ => ErrorCode::Internal,
            };
            let ws_code = match code {
                ErrorCode::ShuttingDown => CloseCode::Away,
                ErrorCode::ServerFull => CloseCode::Again,
                ErrorCode::Internal => CloseCode::Error,
                _ => CloseCode::Policy,
            };
            CloseFrame {
                code: ws_code,
                reason: Utf8Bytes::from_static(code.as_str()),
            }
        });
        if let Some(frame) = closing {
            let _ = self.send(&mut VecDeque::from([frame])).await;
        }
        self.close_socket(close_frame).await;
    }
}

impl WsConnection {
    /// Sends the close frame and lets the peer answer it, briefly.
    pub(crate) async fn close_socket(&mut self, close_frame: Option<CloseFrame>) {
        let _ = self.socket.send(Message::Close(close_frame)).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(Ok(_)) = std::future::poll_fn(|cx| self.poll_message(cx)).await {}
        })
        .await;
    }

    /// Writes `payloads` as data frames (text, or binary), gathered into
    /// writes of about [`WRITE_BUFFER`] bytes, after whatever tungstenite
    /// still has to write.
    pub(crate) async fn write_frames<'a>(
        &mut self,
        payloads: impl Iterator<Item = &'a [u8]>,
        binary: bool,
    ) -> io::Result<()> {
        std::future::poll_fn(|cx| self.socket.poll_flush_unpin(cx))
            .await
            .map_err(io::Error::other)?;
        let mut out = Vec::new();
        let stream = self.socket.get_mut();
        for payload in payloads {
            data_frame(payload, binary, &mut out);
            if out.len() >= WRITE_BUFFER {
                stream.write_all(&out).await?;
                out.clear();
            }
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
        }
        stream.flush().await
    }
}

/// Appends a final text frame with `payload` to `out`: a server's frames
/// are unmasked, so it is the header and the payload as they are.
fn text_frame(payload: &[u8], out: &mut Vec<u8>) {
    data_frame(payload, false, out);
}

/// [`text_frame`], or a binary frame.
fn data_frame(payload: &[u8], binary: bool, out: &mut Vec<u8>) {
    let header = FrameHeader {
        opcode: OpCode::Data(if binary { Data::Binary } else { Data::Text }),
        ..FrameHeader::default()
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(payload);
}

/// Checks a request to `/ws` against RFC 6455 (section 4.2.1): the
/// `Sec-WebSocket-Accept` value and the upgrade to await, or the status
/// and sentence to refuse it with.
fn handshake(
    request: &mut Request,
) -> Result<(String, hyper::upgrade::OnUpgrade), (StatusCode, &'static str)> {
    let headers = request.headers();
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
    if !connection_upgrade {
        return Err((
            StatusCode::BAD_REQUEST,
            "this is Banter's WebSocket endpoint: the Connection header must include \"upgrade\"",
        ));
    }
    let upgrade = headers.get(header::UPGRADE).map(HeaderValue::as_bytes);
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case(b"websocket")) {
        return Err((
            StatusCode::BAD_REQUEST,
            "this is Banter's WebSocket endpoint: the Upgrade header must be \"websocket\"",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(HeaderValue::as_bytes)
        != Some(b"13")
    {
        return Err((
            StatusCode::UPGRADE_REQUIRED,
            "only WebSocket version 13 is spoken here",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "the WebSocket handshake lacks Sec-WebSocket-Key",
        ));
    };
    let accept = derive_accept_key(key.as_bytes());
    match request
        .extensions_mut()
        .remove::<hyper::upgrade::OnUpgrade>()
    {
        Some(on_upgrade) => Ok((accept, on_upgrade)),
        None => Err((
            StatusCode::UPGRADE_REQUIRED,
            "this connection cannot be upgraded to a WebSocket",
        )),
    }
}

/// The client's address: the peer's, or, behind a trusted proxy, the one
/// its forwarded headers name (the client's port is then unknown: 0).
fn client_of(direct: &HttpPeer, headers: &HeaderMap, trusted: &[Cidr]) -> SocketAddr {
    let client = forwarded::client_addr(direct.addr.ip(), headers, trusted);
    if client == direct.addr.ip().to_canonical() {
        SocketAddr::new(client, direct.addr.port())
    } else {
        debug!(%client, proxy = %direct.addr, "WebSocket client behind a trusted proxy");
        SocketAddr::new(client, 0)
    }
}

/// `GET /ws`: checks the handshake, the origin and the connection limit,
/// then upgrades and runs a session.
pub async fn upgrade(
    State(ctx): State<Arc<Context>>,
    ConnectInfo(direct): ConnectInfo<HttpPeer>,
    request: Request,
) -> Response {
    accept(ctx, direct, request, &[], |conn, _| conn).await
}

/// Upgrades `request` to a WebSocket running a session over the transport
/// `make` builds from the socket (and the subprotocol chosen: the first
/// of `protocols` the client offers, if any), after the checks every
/// WebSocket endpoint shares: the handshake, the origin, the connection
/// limits.
pub(crate) async fn accept<C, F>(
    ctx: Arc<Context>,
    direct: HttpPeer,
    mut request: Request,
    protocols: &[&'static str],
    make: F,
) -> Response
where
    C: Transport + 'static,
    F: FnOnce(WsConnection, Option<&'static str>) -> C + Send + 'static,
{
    let offered = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|p| p.trim_ascii().to_vec())
        .collect::<Vec<_>>();
    let protocol = protocols
        .iter()
        .copied()
        .find(|p| offered.iter().any(|o| o.eq_ignore_ascii_case(p.as_bytes())));
    let (accept, on_upgrade) = match handshake(&mut request) {
        Ok(accepted) => accepted,
        Err((status, why)) => {
            let mut response = (status, format!("{why}\n")).into_response();
            if status == StatusCode::UPGRADE_REQUIRED {
                response.headers_mut().insert(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                );
            }
            return response;
        }
    };
    let headers = request.headers();
    let peer = client_of(&direct, headers, &ctx.settings.trusted_proxy);
    if let Err(origin) = check_origin(headers, direct.addr.ip(), direct.tls, &ctx.settings) {
        warn!(%peer, origin, "WebSocket upgrade refused: foreign Origin");
        return (
            StatusCode::FORBIDDEN,
            "this page's origin may not open a Banter WebSocket\n",
        )
            .into_response();
    }
    let Ok(permit) = ctx.connections.clone().try_acquire_owned() else {
        metrics().limited(Limit::Connections);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; try again later\n",
        )
            .into_response();
    };
    // The connection's own permit when it has one (its peer is the
    // client); through a trusted proxy, the forwarded client's.
    let held = request
        .extensions()
        .get::<HttpConn>()
        .and_then(HttpConn::upgrade);
    let address = match held.map_or_else(|| ctx.addresses.admit(peer.ip()), Ok) {
        Ok(address) => address,
        Err(refusal) => {
            debug!(%peer, "WebSocket upgrade refused: {}", refusal.message());
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, refusal.message() + "\n").into_response();
            if let Refusal::TooFast(wait) = refusal {
                let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return response;
        }
    };
    // Frames up to the limit are read and answered with `frame_too_long`;
    // only far larger ones make tungstenite drop the connection. Its write
    // buffer holds only its own pongs and closes.
    let max_frame = ctx.settings.max_frame_bytes;
    let hard_limit = max_frame.saturating_mul(4);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(WRITE_BUFFER)
        .max_message_size(Some(hard_limit))
        .max_frame_size(Some(hard_limit));
    let tracker = ctx.tracker.clone();
    tracker.clone().spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(%peer, error = %e, "WebSocket upgrade failed");
                return;
            }
        };
        let socket =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let conn = make(WsConnection::new(socket, max_frame), protocol);
        // A task of its own, made of the session alone (see
        // `transport::accept_loop`).
        tracker.spawn(session::run(conn, ctx, peer, (permit, address)));
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(
        header::SEC_WEBSOCKET_ACCEPT,
        HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
    );
    if let Some(protocol) = protocol {
        headers.insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(protocol),
        );
    }
    response
}

/// A browser always sends `Origin`; it must be the page's own origin (the
/// host the browser asked for, through trusted proxies their
/// `X-Forwarded-Host`/`Proto` or `Forwarded`), or one of
/// `--allowed-origin`. The scheme is compared when it is known (a TLS
/// listener, or a trusted proxy said); behind a proxy that is not trusted
/// only the host is. Clients that send no `Origin` (bots, scripts) are
/// not browsers and pass.
fn check_origin(
    headers: &HeaderMap,
    peer: IpAddr,
    tls: bool,
    settings: &Settings,
) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let shown = || {
        String::from_utf8_lossy(origin.as_bytes())
            .chars()
            .take(100)
            .collect()
    };
    let Some((scheme, host)) = origin.to_str().ok().and_then(normalize_origin) else {
        return Err(shown());
    };
    let allowed = settings
        .allowed_origin
        .iter()
        .filter_map(|a| normalize_origin(a))
        .any(|(s, h)| s == scheme && h == host);
    if allowed {
        return Ok(());
    }
    let (page_scheme, page_host) =
        forwarded::page_origin(peer, headers, &settings.trusted_proxy, tls);
    let scheme_ok = page_scheme.as_deref().is_none_or(|s| s == scheme);
    let host_ok = page_host.is_some_and(|h| strip_default_port(&scheme, &h) == host);
    if scheme_ok && host_ok {
        Ok(())
    } else {
        Err(shown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    fn check(h: &HeaderMap) -> Result<(), String> {
        check_origin(
            h,
            "203.0.113.1".parse().unwrap(),
            false,
            &Settings::default(),
        )
    }

    #[test]
    fn origin_must_match_host() {
        assert!(check(&headers(None, "chat.example:8080")).is_ok());
        assert!(
            check(&headers(
                Some("http://chat.example:8080"),
                "chat.example:8080"
            ))
            .is_ok()
        );
        assert!(check(&headers(Some("https://CHAT.example"), "chat.example")).is_ok());
        assert!(check(&headers(Some("https://chat.example"), "chat.example:443")).is_ok());
        assert!(check(&headers(Some("https://evil.example"), "chat.example")).is_err());
        assert!(check(&headers(Some("null"), "chat.example")).is_err());
        assert!(check(&headers(Some("http://chat.example.evil"), "chat.example")).is_err());
        assert!(
            check(&headers(
                Some("http://chat.example:8081"),
                "chat.example:8080"
            ))
            .is_err()
        );
    }

    #[test]
    fn tls_and_trusted_proxies_decide_the_scheme_and_host() {
        let mut settings = Settings {
            trusted_proxy: vec!["10.0.0.0/8".parse().unwrap()],
            ..Settings::default()
        };
        let (proxy, other) = ("10.0.0.2".parse().unwrap(), "203.0.113.1".parse().unwrap());
        let h = headers(Some("http://chat.example"), "chat.example");
        assert!(
            check_origin(&h, other, true, &settings).is_err(),
            "an http page on a TLS port"
        );
        let mut h = headers(Some("https://chat.example"), "backend:8080");
        h.insert("x-forwarded-host", HeaderValue::from_static("chat.example"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(check_origin(&h, proxy, false, &settings).is_ok());
        assert!(
            check_origin(&h, other, false, &settings).is_err(),
            "untrusted X-Forwarded-Host"
        );
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert!(
            check_origin(&h, proxy, false, &settings).is_err(),
            "the proxy says http"
        );

        let h = headers(Some("https://other.example:8443"), "chat.example");
        assert!(check_origin(&h, other, false, &settings).is_err());
        settings.allowed_origin = vec!["https://OTHER.example:8443".into()];
        assert!(check_origin(&h, other, false, &settings).is_ok());
        let h = headers(Some("http://other.example:8443"), "chat.example");
        assert!(
            check_origin(&h, other, false, &settings).is_err(),
            "the scheme counts"
        );
    }
}
