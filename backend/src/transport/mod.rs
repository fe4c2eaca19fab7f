//! Transports turn a wire format into protocol frames and back. Each one
//! implements [`Transport`](crate::session::Transport) and hands it to
//! the one shared [`session::run`](crate::session::run) loop.
//!
//! * [`ws`] — WebSocket at `GET /ws`, one JSON message per text frame.
//! * [`tcp`] — newline-delimited JSON on its own port.
//! * [`irc`] — an IRC server face on its own port: IRC commands become
//!   protocol requests, protocol events become IRC lines.

pub mod irc;
pub mod tcp;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use banter_protocol::{ErrorCode, ServerMessage};
use tokio::net::TcpListener;
use tracing::debug;

use crate::context::Context;
use crate::core::frame::Frame;
use crate::metrics::{Limit, metrics};
use crate::net::{Listen, Refused, Stream};
use crate::session::{self, Transport};

/// Accepts raw TCP connections (the JSON-lines and IRC ports) until
/// shutdown: each socket, once `listen` has read its PROXY header and done
/// its TLS handshake (in the connection's own task), becomes a connection
/// by `wrap` and runs a session, or, over the connection limit, is told
/// `server_full` and closed.
pub async fn accept_loop<C, F>(listener: TcpListener, ctx: Arc<Context>, listen: Listen, wrap: F)
where
    C: Transport + 'static,
    F: Fn(Stream) -> C + Clone + Send + Sync + 'static,
{
    loop {
        // With TLS, a slot for its handshake first (more connections wait
        // in the kernel's accept queue meanwhile).
        let slot = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            slot = listen.slot() => slot,
        };
        let (stream, peer) = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = crate::net::accept(&listener, C::TRANSPORT) => accepted,
        };
        let (ctx2, listen, wrap) = (ctx.clone(), listen.clone(), wrap.clone());
        // This task opens the connection (PROXY header, TLS handshake) or
        // refuses it; a session gets a task of its own, so that what it
        // holds for the connection's life is its own state only, not room
        // for a TLS handshake too (that made every idle connection 6 KB
        // larger).
        ctx.tracker.spawn(async move {
            // The address is admitted (counted by the client's address:
            // the PROXY header's when there is one) before the TLS
            // handshake, and a place among all connections taken only
            // after it: a slow handshake holds nothing of anyone else's.
            let opened = listen
                .open(stream, peer, C::TRANSPORT, &ctx2.addresses)
                .await;
            drop(slot);
            let (stream, client, address) = match opened {
                Ok(opened) => opened,
                Err(Refused::Tell(tcp, code, message)) => {
                    let conn = wrap(Stream::plain(tcp, false));
                    refuse(conn, peer, code, message).await;
                    return;
                }
                Err(Refused::Drop) => return,
            };
            let conn = wrap(stream);
            let Ok(permit) = ctx2.connections.clone().try_acquire_owned() else {
                metrics().limited(Limit::Connections);
                let message = "the server has too many connections; try again later";
                refuse(conn, client, ErrorCode::ServerFull, message.into()).await;
                return;
            };
            let tracker = ctx2.tracker.clone();
            tracker.spawn(session::run(conn, ctx2, client, (permit, address)));
        });
    }
}

/// Tells a connection it may not stay, and closes it (within a bound: a
/// refused peer gets no more than a moment of the server's time).
async fn refuse<C: Transport>(mut conn: C, peer: SocketAddr, code: ErrorCode, message: String) {
    debug!(%peer, transport = C::TRANSPORT, ?code, reason = %message, "connection refused");
    let frame = Frame::new(ServerMessage::Closing { code, message });
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.close(Some(frame))).await;
}
