//! IRC over WebSocket (IRCv3 `extensions/websocket`): `GET /irc` on the
//! HTTP listener, for web IRC clients (gamja, Kiwi IRC). One IRC line per
//! WebSocket message, without CR LF, in text frames (`text.ircv3.net`, or
//! no subprotocol: gamja asks for none) or binary ones (`binary.ircv3.net`).
//! Everything else is the IRC face as on the IRC port: the same [`Client`]
//! reads the lines and renders the frames, with the same flood control; the
//! WebSocket's own checks (origin, limits) are `/ws`'s.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};

use axum::extract::{ConnectInfo, Request, State};
use axum::response::Response;
use banter_protocol::ErrorCode;
use bytes::Bytes;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::line::{MAX_BODY, MAX_TAGS};
use super::{Client, Flood, ServerInfo, excess_flood, numeric};
use crate::context::Context;
use crate::core::frame::Frame;
use crate::net::http::HttpPeer;
use crate::session::{Inbound, Transport};
use crate::transport::ws::{self, WsConnection};

/// The subprotocols, preferred first (binary carries any bytes).
const PROTOCOLS: [&str; 2] = ["binary.ircv3.net", "text.ircv3.net"];

pub struct IrcWsConnection {
    ws: WsConnection,
    /// Binary frames (`binary.ircv3.net`), else text.
    binary: bool,
    client: Client,
    pending: VecDeque<Inbound>,
    /// Lines read and not yet carried out (flood control holds them).
    lines: VecDeque<Box<[u8]>>,
    flood: Flood,
    /// The peer closed (or sent a close frame).
    eof: bool,
}

impl IrcWsConnection {
    fn new(ws: WsConnection, protocol: Option<&str>, info: Arc<ServerInfo>) -> Self {
        IrcWsConnection {
            ws,
            binary: protocol == Some(PROTOCOLS[0]),
            flood: Flood::new(&info),
            client: Client::new(info),
            pending: VecDeque::new(),
            lines: VecDeque::new(),
            eof: false,
        }
    }

    /// Reads one WebSocket message: its lines wait in `lines`; a ping or
    /// pong is a sign of life.
    fn poll_read_more(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<Option<Inbound>>> {
        let Some(message) = ready!(self.ws.poll_message(cx)) else {
            self.eof = true;
            return Poll::Ready(Ok(None));
        };
        match message.map_err(io::Error::other)? {
            Message::Text(text) => self.take_lines(text.as_bytes()),
            Message::Binary(bytes) => self.take_lines(&bytes),
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {
                return Poll::Ready(Ok(Some(Inbound::Alive)));
            }
            Message::Close(_) => self.eof = true,
        }
        Poll::Ready(Ok(None))
    }

    /// One message is one line; read leniently, a client that ends it with
    /// CR LF, or sends several, is understood.
    fn take_lines(&mut self, bytes: &[u8]) {
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            if line.len() > MAX_TAGS + MAX_BODY {
                self.client.local(&mut self.pending, |out, me| {
                    numeric::reply(
                        out,
                        numeric::ERR_INPUTTOOLONG,
                        me,
                        &["Input line was too long"],
                    )
                });
                continue;
            }
            self.lines.push_back(line.into());
        }
    }
}

impl Transport for IrcWsConnection {
    const TRANSPORT: &'static str = "irc-ws";
    const TOKENS: bool = false;
    const PUSHES_IRC: bool = true;
    const TOO_LONG: ErrorCode = ErrorCode::LineTooLong;

    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<Option<Inbound>>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Poll::Ready(Ok(Some(item)));
            }
            if self.client.quit().is_some() {
                return Poll::Ready(Ok(None));
            }
            if let Some(line) = self.client.next_held() {
                self.client.take_line(&line, &mut self.pending);
                continue;
            }
            if !self.lines.is_empty() {
                // Flood control as on the IRC port: a line waits for its
                // token; past the backlog the client is disconnected.
                if let Some(wait) = self.flood.blocked() {
                    if self.lines.len() > self.client.info.flood_backlog as usize {
                        return excess_flood();
                    }
                    if self.flood.poll_turn(wait, cx).is_ready() {
                        continue;
                    }
                    if !self.eof {
                        match self.poll_read_more(cx) {
                            Poll::Ready(Ok(None)) => continue,
                            Poll::Ready(other) => return Poll::Ready(other),
                            Poll::Pending => {}
                        }
                    }
                    return Poll::Pending;
                }
                self.flood.settle();
                let line = self.lines.pop_front().expect("not empty");
                self.client.take_line(&line, &mut self.pending);
                continue;
            }
            if self.eof {
                return Poll::Ready(Ok(None));
            }
            if self.pending.capacity() > 0 {
                self.pending = VecDeque::new();
            }
            if self.lines.capacity() > 0 {
                self.lines = VecDeque::new();
            }
            if let Some(inbound) = ready!(self.poll_read_more(cx))? {
                return Poll::Ready(Ok(Some(inbound)));
            }
        }
    }

    async fn send(&mut self, frames: &mut VecDeque<Frame>) -> io::Result<()> {
        let mut out = Vec::with_capacity(frames.len().min(64) * 128);
        for frame in frames.drain(..) {
            self.client.render(&frame, &mut out);
        }
        self.write_lines(&out).await
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.ws
            .socket
            .send(Message::Ping(Bytes::new()))
            .await
            .map_err(io::Error::other)
    }

    async fn close(&mut self, closing: Option<Frame>) {
        let out = self.client.closing_lines(closing);
        let _ = self.write_lines(&out).await;
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: Utf8Bytes::from_static(""),
        };
        self.ws.close_socket(Some(close)).await;
    }

    fn idle(&mut self) {
        self.client.asked.shrink();
    }

    fn quit_reason(&self) -> Option<String> {
        self.client.quit_message()
    }
}

impl IrcWsConnection {
    /// Writes rendered IRC lines (each ending in CR LF), one per message.
    async fn write_lines(&mut self, out: &[u8]) -> io::Result<()> {
        if out.is_empty() {
            return Ok(());
        }
        let lines = out
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.is_empty());
        self.ws.write_frames(lines, self.binary).await
    }
}

/// `GET /irc`: a WebSocket (with the checks of `/ws`) that speaks IRC.
pub async fn upgrade(
    State(ctx): State<Arc<Context>>,
    ConnectInfo(direct): ConnectInfo<HttpPeer>,
    request: Request,
) -> Response {
    let info = super::server_info(&ctx);
    ws::accept(ctx, direct, request, &PROTOCOLS, move |conn, protocol| {
        IrcWsConnection::new(conn, protocol, info)
    })
    .await
}
