//! Transports turn a wire format into protocol frames and back. Each one
//! implements [`Connection`] and hands it to the one shared
//! [`session::run`](crate::session::run) loop.
//!
//! * [`ws`] — WebSocket at `GET /ws`, one JSON message per text frame.
//! * [`tcp`] — newline-delimited JSON on its own port.
//! * [`irc`] — an IRC server face on its own port: IRC commands become
//!   protocol requests, protocol events become IRC lines.

pub mod irc;
pub mod tcp;
pub mod ws;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use banter_protocol::{ClientMessage, Envelope, ErrorCode, Nick, Ref, ServerMessage};
use bytes::Bytes;
use tokio::net::TcpListener;
use tracing::debug;

use crate::core::frame::Frame;
use crate::metrics::{Limit, metrics};
use crate::net::{Listen, Refused, Stream};
use crate::server::Context;
use crate::session;

/// One unit of input from a peer.
#[derive(Debug)]
pub enum Inbound {
    /// A complete frame (text frame or line) to parse as a JSON request.
    Text(Bytes),
    /// A request the transport already decoded from its own wire format
    /// (boxed, as the rarer variants below: a session keeps room for one
    /// `Inbound` while it waits).
    Request(Box<Envelope<ClientMessage>>),
    /// An answer the transport made itself (a local [`Frame`]), queued in
    /// order with everything else the session sends.
    Reply(Frame),
    /// A frame over the size limit, already skipped; the stream is usable.
    TooLong,
    /// A frame the protocol does not use (a WebSocket binary frame).
    Binary,
    /// A sign of life with no request in it (a WebSocket pong).
    Alive,
    /// Input that ends the session: close with this reason (a PROXY
    /// protocol header on a port not configured for one; an IRC client's
    /// excess flood).
    Unreadable(ErrorCode, String),
    /// Check a password for an account before registration (IRC SASL);
    /// answered with `logged_in` (no token) or an error, with `reference`.
    Verify(Box<Verify>),
}

/// The account and password of an [`Inbound::Verify`].
#[derive(Debug)]
pub struct Verify {
    pub account: Nick,
    pub password: String,
    pub reference: Option<Ref>,
}

/// What the session loop needs from a transport.
pub trait Connection: Send {
    /// Short name for logs: `ws`, `tcp`, `irc`.
    const TRANSPORT: &'static str;
    /// The error code for an over-long frame on this transport.
    const TOO_LONG: ErrorCode;

    /// The next input, or `None` once the peer has closed; `Pending` (with
    /// `cx` registered) when nothing waits. A poll rather than a future:
    /// the session waits on it and its outbox together, and keeps nothing
    /// for it between wake-ups (an idle connection's task is that much
    /// smaller).
    fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Option<Inbound>>>;

    /// Writes every frame in order (draining `frames`) and flushes; many
    /// frames share as few writes as the transport allows.
    fn send(&mut self, frames: &mut VecDeque<Frame>)
    -> impl Future<Output = io::Result<()>> + Send;

    /// Sends a keepalive probe that a live peer answers.
    fn ping(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Sends the `closing` notice (if any) and closes cleanly.
    fn close(&mut self, closing: Option<Frame>) -> impl Future<Output = ()> + Send;

    /// Everything queued has been written and nothing more waits: a
    /// transport may release buffers it kept for the next write.
    fn idle(&mut self) {}

    /// Why the user left, in its own words (IRC `QUIT :reason`), once the
    /// session has ended; room-mates see it with the `quit`.
    fn quit_reason(&self) -> Option<String> {
        None
    }
}

/// Accepts raw TCP connections (the JSON-lines and IRC ports) until
/// shutdown: each socket, once `listen` has read its PROXY header and done
/// its TLS handshake (in the connection's own task), becomes a connection
/// by `wrap` and runs a session, or, over the connection limit, is told
/// `server_full` and closed.
pub async fn accept_loop<C, F>(listener: TcpListener, ctx: Arc<Context>, listen: Listen, wrap: F)
where
    C: Connection + 'static,
    F: Fn(Stream) -> C + Clone + Send + Sync + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = crate::net::accept(&listener, C::TRANSPORT) => accepted,
        };
        let permit = ctx.connections.clone().try_acquire_owned().ok();
        let (ctx2, listen, wrap) = (ctx.clone(), listen.clone(), wrap.clone());
        // This task opens the connection (PROXY header, TLS handshake) or
        // refuses it; a session gets a task of its own, so that what it
        // holds for the connection's life is its own state only, not room
        // for a TLS handshake too (that made every idle connection 6 KB
        // larger).
        ctx.tracker.spawn(async move {
            let opened = listen.open(stream, peer, C::TRANSPORT).await;
            let (stream, client) = match opened {
                Ok(opened) => opened,
                Err(Refused::Tell(tcp, message)) => {
                    let conn = wrap(Stream::plain(tcp, false));
                    refuse(conn, peer, ErrorCode::BadRequest, message).await;
                    return;
                }
                Err(Refused::Drop) => return,
            };
            let conn = wrap(stream);
            let Some(permit) = permit else {
                metrics().limited(Limit::Connections);
                let message = "the server has too many connections; try again later";
                refuse(conn, client, ErrorCode::ServerFull, message.into()).await;
                return;
            };
            // Counted by the client's address: the PROXY header's when
            // there is one.
            match ctx2.addresses.admit(client.ip()) {
                Ok(address) => {
                    let tracker = ctx2.tracker.clone();
                    tracker.spawn(session::run(conn, ctx2, client, (permit, address)));
                }
                Err(refusal) => {
                    let message = refusal.message();
                    refuse(conn, client, ErrorCode::TooManyConnections, message).await;
                }
            }
        });
    }
}

/// Tells a connection it may not stay, and closes it (within a bound: a
/// refused peer gets no more than a moment of the server's time).
async fn refuse<C: Connection>(mut conn: C, peer: SocketAddr, code: ErrorCode, message: String) {
    debug!(%peer, transport = C::TRANSPORT, ?code, reason = %message, "connection refused");
    let frame = Frame::new(ServerMessage::Closing { code, message });
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(Some(frame))).await;
}
