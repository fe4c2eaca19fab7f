//! The session loop shared by every transport: handshake (`hello` →
//! `welcome`), requests and their replies, `ref` echo, errors, keepalive,
//! timeouts and the closing notice.
//!
//! One task per connection waits on three things at once: input from the
//! peer, frames in its [`Outbox`], and its next deadline (handshake, idle
//! ping, ping answer). Replies are never written directly: they go through
//! the outbox like everything else, so frames leave in the order the router
//! decided.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use banter_protocol::{
    ClientMessage, Envelope, ErrorCode, Limits, PROTOCOL_VERSION, ServerMessage, parse_request,
};
use tokio::time::{Instant, sleep_until, timeout};
use tracing::debug;

use crate::frame::Frame;
use crate::outbox::Outbox;
use crate::router::{RouterError, SessionId};
use crate::server::Context;
use crate::transport::{Connection, Inbound};

/// Longest we spend flushing and saying goodbye to a closing session.
const CLOSE_BUDGET: Duration = Duration::from_secs(2);

struct Session {
    ctx: Arc<Context>,
    outbox: Arc<Outbox>,
    id: Option<SessionId>,
}

/// Why the loop ended: a reason to tell the client, or `None` when the
/// client is gone (or went away first).
type Ending = Option<(ErrorCode, String)>;

/// Runs one connection from its first byte to its close.
pub async fn run<C: Connection>(mut conn: C, ctx: Arc<Context>, peer: SocketAddr) {
    let transport = C::TRANSPORT;
    debug!(%peer, transport, "connected");
    let mut session = Session {
        outbox: Arc::new(Outbox::new(ctx.settings.outbox_len)),
        ctx,
        id: None,
    };
    let ending = session.serve(&mut conn).await;
    session.leave();
    debug!(%peer, transport, reason = ?ending.as_ref().map(|e| e.0), "disconnected");
    let Some((code, message)) = ending else {
        conn.close(None).await;
        return;
    };
    if code == ErrorCode::SlowConsumer {
        // A write timed out, possibly halfway through a frame: anything
        // written now would corrupt the stream, and the peer isn't reading.
        let _ = timeout(CLOSE_BUDGET, conn.close(None)).await;
        return;
    }
    let _ = timeout(CLOSE_BUDGET, async {
        let mut rest = VecDeque::new();
        session.outbox.take_batch(&mut rest);
        let _ = conn.send(&mut rest).await;
        conn.close(Some(Frame::new(ServerMessage::Closing { code, message })))
            .await;
    })
    .await;
}

/// However a session ends — even by a panic in a transport — its nick and
/// room memberships go with it.
impl Drop for Session {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Session {
    /// Leaves the router (members see `quit`); once.
    fn leave(&mut self) {
        if let Some(id) = self.id.take() {
            self.ctx.router.quit(id);
        }
    }

    async fn serve<C: Connection>(&mut self, conn: &mut C) -> Ending {
        let ctx = self.ctx.clone();
        let settings = &ctx.settings;
        let (idle, ping_wait) = (settings.idle_timeout(), settings.ping_timeout());
        let handshake_deadline = Instant::now() + settings.handshake_timeout();
        let write_timeout = settings.write_timeout();
        let shutdown = self.ctx.shutdown.clone();
        let outbox = self.outbox.clone();
        let mut batch = VecDeque::new();
        let mut last_heard = Instant::now();
        let mut pinged = false;
        // One shutdown waiter and one timer for the whole session, not one
        // each per wake-up (that was a fifth of the cost of a delivery, see
        // BENCHMARKS.md). The timer is moved only when it must fire sooner
        // or has fired; firing early (input moved the deadline) re-arms it.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        let timer = sleep_until(handshake_deadline);
        tokio::pin!(timer);
        loop {
            let deadline = match (self.id, pinged) {
                (None, _) => handshake_deadline,
                (Some(_), false) => last_heard + idle,
                (Some(_), true) => last_heard + idle + ping_wait,
            };
            if timer.is_elapsed() || deadline < timer.deadline() {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                _ = &mut cancelled => {
                    return Some((ErrorCode::ShuttingDown, "the server is shutting down".into()));
                }
                info = outbox.next_batch(&mut batch) => {
                    if info.dropped > 0 {
                        batch.push_front(Frame::new(ServerMessage::Lagged { dropped: info.dropped }));
                    }
                    if !batch.is_empty() {
                        match timeout(write_timeout, conn.send(&mut batch)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                debug!(error = %e, "write failed");
                                return None;
                            }
                            Err(_) => {
                                return Some((
                                    ErrorCode::SlowConsumer,
                                    format!("nothing was read for {}s", write_timeout.as_secs()),
                                ));
                            }
                        }
                        batch.clear();
                    }
                    if let Some(reason) = info.close {
                        return Some(reason);
                    }
                }
                input = conn.recv() => {
                    let input = match input {
                        Ok(Some(input)) => input,
                        Ok(None) => return None,
                        Err(e) => {
                            debug!(error = %e, "read failed");
                            return None;
                        }
                    };
                    last_heard = Instant::now();
                    pinged = false;
                    match input {
                        Inbound::Text(frame) => self.handle(&frame),
                        Inbound::Request(request) => self.dispatch(request),
                        Inbound::Reply(frame) => {
                            outbox.push(frame);
                        }
                        Inbound::TooLong => self.reply_error(
                            C::TOO_LONG,
                            format!("frame longer than {} bytes; it was skipped", settings.max_frame_bytes),
                            None,
                        ),
                        Inbound::Binary => self.reply_error(
                            ErrorCode::BinaryUnsupported,
                            "binary frames are not part of the protocol; send JSON as text",
                            None,
                        ),
                        Inbound::Alive => {}
                    }
                }
                _ = &mut timer => match (self.id, pinged) {
                    // Early: input moved the deadline; the next turn re-arms.
                    _ if Instant::now() < deadline => {}
                    (None, _) => {
                        return Some((
                            ErrorCode::HandshakeTimeout,
                            format!("no hello within {}s", settings.handshake_timeout),
                        ));
                    }
                    (Some(_), false) => {
                        pinged = true;
                        if timeout(write_timeout, conn.ping()).await.map_or(true, |r| r.is_err()) {
                            return None;
                        }
                    }
                    (Some(_), true) => {
                        return Some((
                            ErrorCode::IdleTimeout,
                            format!("no answer to a ping within {}s", ping_wait.as_secs()),
                        ));
                    }
                },
            }
        }
    }

    fn reply_error(
        &self,
        code: ErrorCode,
        message: impl Into<String>,
        reference: Option<banter_protocol::Ref>,
    ) {
        self.outbox.push(Frame::error(code, message, reference));
    }

    /// Parses and carries out one JSON request.
    fn handle(&mut self, frame: &[u8]) {
        match parse_request(frame) {
            Ok(request) => self.dispatch(request),
            Err(e) => self.reply_error(e.code, e.message, e.reference),
        }
    }

    /// Carries out one request; every outcome (reply or error) lands in
    /// the outbox.
    fn dispatch(&mut self, request: Envelope<ClientMessage>) {
        let Envelope { body, reference } = request;
        let router = &self.ctx.router;
        let result: Result<(), RouterError> = match (self.id, body) {
            (_, ClientMessage::Ping) => {
                self.outbox
                    .push(Frame::with_ref(ServerMessage::Pong, reference.clone()));
                Ok(())
            }
            (_, ClientMessage::Pong) => Ok(()),
            (None, ClientMessage::Hello { nick, .. }) => {
                let welcome = self.welcome(nick.clone());
                router
                    .register(nick, self.outbox.clone(), welcome, reference.clone())
                    .map(|id| self.id = Some(id))
            }
            (None, _) => Err(RouterError::new(
                ErrorCode::NotRegistered,
                "send hello first: {\"type\":\"hello\",\"nick\":\"yourname\"}",
            )),
            (Some(_), ClientMessage::Hello { .. }) => Err(RouterError::new(
                ErrorCode::AlreadyRegistered,
                "this session already said hello; use nick to change nick",
            )),
            (Some(id), ClientMessage::Join { room }) => router.join(id, room, reference.clone()),
            (Some(id), ClientMessage::Part { room }) => router.part(id, room, reference.clone()),
            (Some(id), ClientMessage::Say { room, text }) => {
                router.say(id, room, text, reference.clone()).map(drop)
            }
            (Some(id), ClientMessage::Whisper { to, text }) => {
                router.whisper(id, to, text, reference.clone()).map(drop)
            }
            (
                Some(id),
                ClientMessage::History {
                    room,
                    before,
                    after,
                    limit,
                },
            ) => router.history(id, room, before, after, limit, reference.clone()),
            (Some(id), ClientMessage::Nick { nick }) => {
                router.change_nick(id, nick, reference.clone())
            }
            (Some(id), ClientMessage::Topic { room, text }) => {
                router.topic(id, room, text, reference.clone())
            }
            (Some(id), ClientMessage::Members { room }) => {
                router.members(id, room, reference.clone())
            }
            (Some(id), ClientMessage::Rooms) => router.rooms(id, reference.clone()),
            (Some(id), ClientMessage::Whois { nick }) => router.whois(id, nick, reference.clone()),
            (Some(id), ClientMessage::Away { message }) => {
                router.away(id, message, reference.clone())
            }
        };
        if let Err(e) = result {
            self.reply_error(e.code, e.message, reference);
        }
    }

    fn welcome(&self, nick: banter_protocol::Nick) -> ServerMessage {
        let settings = &self.ctx.settings;
        ServerMessage::Welcome {
            nick,
            protocol: PROTOCOL_VERSION,
            server: concat!("banter ", env!("CARGO_PKG_VERSION")).into(),
            limits: Limits {
                max_text_bytes: settings.max_text_bytes,
                max_frame_bytes: settings.max_frame_bytes,
                max_rooms: settings.max_rooms_per_session,
                idle_timeout_secs: settings.idle_timeout,
            },
        }
    }
}
