//! The session loop shared by every transport: handshake (`hello` →
//! `welcome`), requests and their replies, `ref` echo, errors, keepalive,
//! timeouts and the closing notice.
//!
//! One task per connection waits on three things at once: input from the
//! peer, frames in its [`Outbox`], and its next deadline (handshake, idle
//! ping, ping answer, write), which [`crate::alarms`] keeps for it; it
//! polls all three with one waker and keeps no future for any of them.
//! Replies are never written directly: they go through the outbox like
//! everything else, so frames leave in the order the router decided.
//!
//! Whispers that waited for an account while it was offline are sent after
//! its login and followed by a ping; only the client's answer (proof that
//! it read them) marks them delivered in the store ([`Session::confirm`]).

mod route;
mod transport;

use route::{Admin, Local, Now, Route, Wait, route};
pub use transport::{Inbound, Transport, Verify};

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use banter_protocol::{
    ClientMessage, Envelope, ErrorCode, LevelOf, Limits, MAX_HISTORY_PAGE, MAX_READ_POSITIONS,
    MAX_TARGETS, Nick, NotifyLevel, PROTOCOL_VERSION, ReadMark, Ref, RoomName, ServerBan,
    ServerMessage, TargetInfo, parse_request,
};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, timeout};
use tracing::{debug, error, info, warn};

use crate::admin::Target;
use crate::alarms::Slot;
use crate::auth::{Check, HashError, check_password, new_token, token_hash};
use crate::broker::{Link, Publish};
use crate::config::Registration;
use crate::context::Context;
use crate::core::cluster::{Change, Event, UserRecord};
use crate::core::frame::Frame;
use crate::core::model::Profile;
use crate::core::model::{Page, key};
use crate::core::outbox::Outbox;
use crate::core::router::{Conversation, Joined, RouterError, SessionId, now_ms};
use crate::limits::{AddressPermit, TokenBucket, Who, retry_in};
use crate::metrics::{ConnectionGauge, Limit, metrics};
use crate::store::{Place, Registered, Store, Write};

/// Longest we spend flushing and saying goodbye to a closing session.
const CLOSE_BUDGET: Duration = Duration::from_secs(2);
/// Longest a cluster's broker may take to answer a nick claim.
const BROKER_WAIT: Duration = Duration::from_secs(5);
/// Most waiting whispers sent at one login.
const MAX_WAITING_PAGE: usize = 1000;
/// How long a login waits for the store to commit the whispers queued
/// before it (then it reads what is committed).
const FLUSH_WAIT: Duration = Duration::from_secs(5);
/// Longest reason for a server ban, in bytes.
const MAX_BAN_REASON: usize = 390;

struct Session {
    ctx: Arc<Context>,
    outbox: Arc<Outbox>,
    /// Its place among the alarms (see [`crate::alarms`]).
    alarm: Slot,
    id: Option<SessionId>,
    peer: SocketAddr,
    /// The hash of the token this session logged in with or was given,
    /// which a plain `logout` revokes.
    token: Option<Box<[u8]>>,
    /// Whether its transport gets tokens ([`Transport::TOKENS`]).
    tokens: bool,
    /// Whether its push subscriptions get IRC lines (see [`Transport`]).
    pushes_irc: bool,
    /// Chat messages (say, whisper), joins, and other requests that write
    /// or broadcast, that this session may send.
    messages: TokenBucket,
    joins: TokenBucket,
    /// What few sessions use (boxed when first needed: every idle
    /// connection would carry it).
    rare: Option<Box<Rare>>,
    /// Whispers that waited for this session's account, if any came at
    /// its login (boxed: most sessions have none).
    waiting: Option<Box<Waiting>>,
}

/// A session's rarely used state.
struct Rare {
    /// Other requests that write or broadcast.
    changes: TokenBucket,
    /// `mark_read`s that move a position (see [`MARK_READ_RATE`]).
    marks: TokenBucket,
    /// Edits, deletions and reactions.
    edits: TokenBucket,
    searches: TokenBucket,
    /// The administrator's account an IRC `OPER` named, whose rights this
    /// session has.
    oper: Option<Nick>,
}

/// Whispers to a logged-in session's account (`account`) stay waiting in
/// the store until the client shows it read them: each written batch
/// with some is followed by a ping, and the answer to that ping confirms
/// them. `unconfirmed`: (the number of the ping that confirms it, id).
/// `pings`: pings sent; `answers`: answers received (a client answers in
/// order, so the n-th answer is to the n-th ping). See
/// [`Session::confirm`].
struct Waiting {
    account: Nick,
    unconfirmed: VecDeque<(u64, u64)>,
    pings: u64,
    answers: u64,
}

/// Most whispers a session keeps to confirm; older ones stay waiting and
/// come again at the next login.
const MAX_UNCONFIRMED: usize = 4096;

type Outcome = Result<(), RouterError>;

fn internal(e: anyhow::Error) -> RouterError {
    error!("store: {e:#}");
    RouterError::new(
        ErrorCode::Internal,
        "the server could not do that just now; try again",
    )
}

/// Whether the store grants `account` server administration.
/// Waits (at most [`FLUSH_WAIT`]) until the store's writer has committed
/// every write queued before, so that a read sees them.
async fn flush(store: &Store) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let _ = timeout(FLUSH_WAIT, async {
        if store.writes().send(Write::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    })
    .await;
}

async fn store_admin(ctx: &Context, account: &Nick) -> Result<bool, RouterError> {
    match &ctx.store {
        Some(store) => store.is_admin(account).await.map_err(internal),
        None => Ok(false),
    }
}

/// How long a token lasts unused, in ms.
fn token_lifetime_ms(settings: &crate::config::Settings) -> u64 {
    u64::from(settings.token_days) * 24 * 3600 * 1000
}

fn hash_error(e: HashError) -> RouterError {
    match e {
        HashError::Busy(waited) => RouterError::new(
            ErrorCode::Busy,
            format!(
                "the server is busy checking other passwords (waited {}s); try again in a few seconds",
                waited.as_secs()
            ),
        ),
        HashError::Failed(e) => internal(e),
    }
}

fn unsupported() -> RouterError {
    RouterError::new(
        ErrorCode::Unsupported,
        "this server runs without a store, so it has no accounts",
    )
}

/// Why the loop ended: a reason to tell the client, or `None` when the
/// client is gone (or went away first).
type Ending = Option<(ErrorCode, String)>;

/// What woke a session's loop.
enum Woke {
    Batch(crate::core::outbox::BatchInfo),
    Input(std::io::Result<Option<Inbound>>),
    Timer,
}

/// Awaits `write` until it is done, or the session's alarm goes off at or
/// after `by` (its deadline, set by [`Session::write_deadline`]): `None`.
/// A struct, not an `async fn`: it is part of every session's task, and
/// this is its smallest form.
struct BeforeAlarm<'a, F> {
    outbox: &'a Outbox,
    by: Instant,
    write: F,
}

fn before_alarm<F: Future + Unpin>(outbox: &Outbox, by: Instant, write: F) -> BeforeAlarm<'_, F> {
    BeforeAlarm { outbox, by, write }
}

impl<F: Future + Unpin> Future for BeforeAlarm<'_, F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Self::Output> {
        let this = &mut *self;
        this.outbox.register(cx);
        // An alarm rung for the deadline before this one is no timeout.
        if this.outbox.take_alarm() && Instant::now() >= this.by {
            return Poll::Ready(None);
        }
        std::pin::Pin::new(&mut this.write).poll(cx).map(Some)
    }
}

/// The part of a request that waits (for the store, a password hash, the
/// broker), boxed: sessions' tasks are sized for their loop only.
type Later<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Runs one connection from its first byte to its close; its permits
/// (`--max-connections`, and its address's) are held until then.
///
/// Not an `async fn`: that would move each argument into a local of its
/// own, and the task would hold the connection twice for its whole life.
/// The block below uses the captured values in place.
pub fn run<C: Transport>(
    conn: C,
    ctx: Arc<Context>,
    peer: SocketAddr,
    (permit, address): (OwnedSemaphorePermit, AddressPermit),
) -> impl Future<Output = ()> {
    // The session is made here, outside the task's future, so that the
    // future holds it once (not also the context and the address it is
    // made of).
    let transport = C::TRANSPORT;
    let open = ConnectionGauge::open(transport);
    debug!(%peer, transport, "connected");
    let now = std::time::Instant::now();
    let settings = &ctx.settings;
    let outbox = Arc::new(Outbox::bounded(settings.outbox_len, settings.outbox_bytes));
    let mut session = Session {
        alarm: ctx.alarms.add(outbox.clone(), peer.ip()),
        outbox,
        messages: TokenBucket::new(settings.message_rate, settings.message_burst, now),
        joins: TokenBucket::new(settings.join_rate, settings.join_burst, now),
        rare: None,
        ctx,
        id: None,
        peer,
        token: None,
        tokens: C::TOKENS,
        pushes_irc: C::PUSHES_IRC,
        waiting: None,
    };
    // The session gives both back when dropped: it has what that needs (the
    // context and the address), and the task holds nothing more for them.
    permit.forget();
    address.keep_open();
    let mut conn = conn;
    async move {
        let _ = &open;
        let ending = session.serve(&mut conn).await;
        session.leave(conn.quit_reason());
        let reason = ending.as_ref().map_or("client", |e| e.0.as_str());
        metrics().disconnected(reason);
        debug!(peer = %session.peer, transport = C::TRANSPORT, reason, "disconnected");
        // Boxed, like every step taken once: the task lives as long as the
        // connection and should be sized for its loop only. One box, awaited
        // once: what it needs (the reason) is moved into it, not kept in the
        // task beside it.
        let outbox = &session.outbox;
        let close: Later<'_> = match ending {
            None => Box::pin(conn.close(None)),
            // A write timed out, possibly halfway through a frame: anything
            // written now would corrupt the stream, and the peer isn't reading.
            Some((ErrorCode::SlowConsumer, _)) => Box::pin(async move {
                let _ = timeout(CLOSE_BUDGET, conn.close(None)).await;
            }),
            Some((code, message)) => Box::pin(async move {
                let _ = timeout(CLOSE_BUDGET, async {
                    let mut rest = VecDeque::new();
                    outbox.take_batch(&mut rest);
                    let _ = conn.send(&mut rest).await;
                    conn.close(Some(Frame::new(ServerMessage::Closing { code, message })))
                        .await;
                })
                .await;
            }),
        };
        close.await;
    }
}

/// However a session ends — even by a panic in a transport — its nick and
/// room memberships go with it.
impl Drop for Session {
    fn drop(&mut self) {
        // The permits `run` was given, first: nothing below may keep them.
        self.ctx.connections.add_permits(1);
        self.ctx.addresses.release_for(self.peer.ip());
        self.leave(None);
        self.ctx.alarms.remove(self.alarm);
    }
}

impl Session {
    /// Leaves the router (members see `quit`, with the user's reason if
    /// it gave one); once.
    fn leave(&mut self, reason: Option<String>) {
        if let Some(id) = self.id.take() {
            self.ctx.router.quit(id, reason);
        }
    }

    /// The session's one loop. Long on purpose: every local here lives in
    /// every idle connection's task, and the arms share them; a helper per
    /// arm would add its state to the task (see docs/benchmark-history.md,
    /// idle memory).
    async fn serve<C: Transport>(&mut self, conn: &mut C) -> Ending {
        let ctx = self.ctx.clone();
        let settings = &ctx.settings;
        // The timeouts are read from the settings where used, not kept in
        // locals: every local here is part of every idle connection.
        let handshake_deadline = Instant::now() + settings.handshake_timeout();
        let outbox = self.outbox.clone();
        let mut batch = VecDeque::new();
        // This transport's counters, looked up once, not per frame.
        let (frames_in, frames_out) = (
            metrics().messages_in.get(C::TRANSPORT),
            metrics().messages_out.get(C::TRANSPORT),
        );
        let mut last_heard = Instant::now();
        let mut pinged = false;
        let mut input_first = false;
        loop {
            let deadline = match (self.id, pinged) {
                (None, _) => handshake_deadline,
                (Some(_), false) => last_heard + settings.idle_timeout(),
                (Some(_), true) => last_heard + settings.idle_timeout() + settings.ping_timeout(),
            };
            outbox.set_deadline(ctx.alarms.at(deadline));
            // One wait on the alarm, the outbox and the peer, with one waker
            // and no future for any of them (see `crate::alarms`). Input and
            // output take turns going first, so neither starves the other.
            input_first = !input_first;
            let woke = std::future::poll_fn(|cx| {
                outbox.register(cx);
                if outbox.take_alarm() {
                    return Poll::Ready(Woke::Timer);
                }
                if input_first && let Poll::Ready(input) = conn.poll_recv(cx) {
                    return Poll::Ready(Woke::Input(input));
                }
                if let Some(info) = outbox.try_batch(&mut batch) {
                    return Poll::Ready(Woke::Batch(info));
                }
                if !input_first && let Poll::Ready(input) = conn.poll_recv(cx) {
                    return Poll::Ready(Woke::Input(input));
                }
                Poll::Pending
            })
            .await;
            match woke {
                Woke::Input(input) => {
                    if matches!(input, Ok(Some(_))) {
                        last_heard = Instant::now();
                        pinged = false;
                    }
                    match self.on_input::<C>(input, frames_in) {
                        Ok(Some(later)) => later.await,
                        Ok(None) => {}
                        Err(ending) => return ending,
                    }
                }
                Woke::Batch(info) => {
                    if info.dropped > 0 {
                        metrics().dropped.inc_by(info.dropped);
                        batch.push_front(Frame::new(ServerMessage::Lagged {
                            dropped: info.dropped,
                        }));
                    }
                    if !batch.is_empty() {
                        frames_out.inc_by(batch.len() as u64);
                        let waited = self.written_whispers(&batch);
                        let by = self.write_deadline();
                        // Boxed: a write's future is most of what the task
                        // would hold otherwise, idle or not (a few hundred
                        // bytes per connection, for one allocation per write).
                        let send = Box::pin(conn.send(&mut batch));
                        match before_alarm(&outbox, by, send).await {
                            Some(Ok(())) => {}
                            Some(Err(e)) => {
                                debug!(error = %e, "write failed");
                                return None;
                            }
                            None => {
                                return Some((
                                    ErrorCode::SlowConsumer,
                                    format!("nothing was read for {}s", settings.write_timeout),
                                ));
                            }
                        }
                        batch.clear();
                        if outbox.release_if_idle() {
                            // Nothing more waits: an idle session keeps no
                            // buffers (a batch is a few frames; making its
                            // queue again is cheap next to its write).
                            conn.idle();
                            batch = VecDeque::new();
                        }
                        if !waited.is_empty() {
                            // The answer to this ping, which the client reads
                            // after the whispers, confirms them.
                            let by = self.write_deadline();
                            if !matches!(
                                before_alarm(&outbox, by, Box::pin(conn.ping())).await,
                                Some(Ok(()))
                            ) {
                                return None;
                            }
                            self.pinged_for(waited);
                        }
                    }
                    if let Some(reason) = info.close {
                        return Some(*reason);
                    }
                }
                Woke::Timer => match (self.id, pinged) {
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
                        self.pinged_for(Vec::new());
                        let by = self.write_deadline();
                        if !matches!(
                            before_alarm(&outbox, by, Box::pin(conn.ping())).await,
                            Some(Ok(()))
                        ) {
                            return None;
                        }
                    }
                    (Some(_), true) => {
                        return Some((
                            ErrorCode::IdleTimeout,
                            format!("no answer to a ping within {}s", settings.ping_timeout),
                        ));
                    }
                },
            }
        }
    }

    /// Sets the session's alarm for a write that starts now.
    fn write_deadline(&self) -> Instant {
        let by = Instant::now() + self.ctx.settings.write_timeout();
        self.outbox.set_deadline(self.ctx.alarms.at(by));
        by
    }

    /// Handles one thing read from the peer: at once, or as a [`Later`]
    /// to await; `Err` ends the session (`None`: the peer is gone).
    fn on_input<C: Transport>(
        &mut self,
        input: std::io::Result<Option<Inbound>>,
        frames_in: &prometheus_client::metrics::counter::Counter,
    ) -> Result<Option<Later<'_>>, Ending> {
        let input = match input {
            Ok(Some(input)) => input,
            Ok(None) => return Err(None),
            Err(e) => {
                debug!(error = %e, "read failed");
                return Err(None);
            }
        };
        if !matches!(input, Inbound::Alive) {
            frames_in.inc();
        }
        let max_frame = self.ctx.settings.max_frame_bytes;
        match input {
            Inbound::Text(frame) => return Ok(self.handle(&frame)),
            Inbound::Request(request) => return Ok(self.dispatch(*request)),
            Inbound::Verify(verify) => {
                let Verify {
                    account,
                    password,
                    reference,
                    oper,
                } = *verify;
                return Ok(Some(Box::pin(async move {
                    let frame = match self.verify(&account, Some(password), None).await {
                        Ok(account) => {
                            if oper && self.ctx.admins.is_admin(&account) {
                                if let Some(id) = self.id {
                                    self.ctx.router.set_admin(id, true);
                                }
                                self.rare().oper = Some(account.clone());
                            }
                            Frame::with_ref(
                                ServerMessage::LoggedIn {
                                    admin: self.ctx.admins.is_admin(&account),
                                    account,
                                    token: None,
                                },
                                reference,
                            )
                        }
                        Err(e) => Frame::error(e.code, e.message, reference),
                    };
                    self.outbox.push(frame);
                })));
            }
            Inbound::Reply(frame) => {
                self.outbox.push(frame);
            }
            Inbound::TooLong => self.reply_error(
                C::TOO_LONG,
                format!("frame longer than {max_frame} bytes; it was skipped"),
                None,
            ),
            Inbound::Binary => self.reply_error(
                ErrorCode::BinaryUnsupported,
                "binary frames are not part of the protocol; send JSON as text",
                None,
            ),
            Inbound::Alive => self.confirm(),
            Inbound::Unreadable(code, message) => return Err(Some((code, message))),
        }
        Ok(None)
    }

    /// Its rarely used state, made when first needed.
    fn rare(&mut self) -> &mut Rare {
        let settings = &self.ctx.settings;
        self.rare.get_or_insert_with(|| {
            let now = std::time::Instant::now();
            Box::new(Rare {
                changes: TokenBucket::new(settings.change_rate, settings.change_burst, now),
                marks: TokenBucket::new(MARK_READ_RATE, MARK_READ_BURST, now),
                edits: TokenBucket::new(EDIT_RATE, EDIT_BURST, now),
                searches: TokenBucket::new(SEARCH_RATE, SEARCH_BURST, now),
                oper: None,
            })
        })
    }

    /// The per-session limits: chat messages, joins, and every other
    /// request that writes or broadcasts, each a token bucket; over it,
    /// `rate_limited` says when to retry. Queries (and `part`, which only
    /// follows a join) are not limited here.
    fn throttle(&mut self, body: &ClientMessage) -> Result<(), RouterError> {
        use ClientMessage as M;
        let (bucket, limit, what) = match body {
            M::Say { .. } | M::Whisper { .. } => (&mut self.messages, Limit::Messages, "messages"),
            M::React { .. } | M::Edit { .. } | M::Delete { .. } => {
                (&mut self.rare().edits, Limit::Edits, "edits and reactions")
            }
            M::Search { .. } => (&mut self.rare().searches, Limit::Searches, "searches"),
            M::NotifyLevel { level: Some(_), .. }
            | M::Highlights { words: Some(_) }
            | M::PushSubscribe { .. }
            | M::PushUnsubscribe { .. } => {
                (&mut self.rare().changes, Limit::Changes, "changes")
            }
            M::NotifyLevel { level: None, .. } | M::Highlights { words: None } => return Ok(()),
            M::Join { .. } => (&mut self.joins, Limit::Joins, "joins"),
            M::Topic { text: Some(_), .. }
            | M::Nick { .. }
            | M::Away { .. }
            | M::Profile { .. }
            | M::Register { .. }
            | M::Logout { .. }
            | M::ChangePassword { .. }
            | M::DeleteAccount { .. }
            | M::SetOwner { .. }
            | M::Kill { .. }
            | M::Kline { .. }
            | M::Unkline { .. }
            | M::RemoveAccount { .. }
            | M::Kick { .. }
            | M::Ban { .. }
            | M::Unban { .. }
            | M::Except { .. }
            | M::Unexcept { .. }
            | M::Op { .. }
            | M::Deop { .. }
            | M::Mode { set: Some(_), .. }
            | M::Invite { .. }
            | M::Voice { .. }
            | M::Devoice { .. } => (&mut self.rare().changes, Limit::Changes, "changes"),
            M::Settings { always_on: Some(_) } => {
                (&mut self.rare().changes, Limit::Changes, "changes")
            }
            M::MarkRead { id: Some(_), .. } | M::MarkRead { ts: Some(_), .. } => {
                (&mut self.rare().marks, Limit::MarkRead, "read positions")
            }
            // Relayed at most every few seconds by the router.
            M::Typing { .. }
            // Bounded per connection (100 nicks), like a query.
            | M::Watch { .. }
            | M::Unwatch { .. }
            | M::Who { .. }
            | M::Hello { .. }
            | M::Settings { always_on: None }
            | M::Bans { .. }
            | M::Part { .. }
            | M::History { .. }
            | M::Targets { .. }
            | M::MarkRead { .. }
            | M::Ping
            | M::Pong
            | M::Topic { text: None, .. }
            | M::Mode { set: None, .. }
            | M::Members { .. }
            | M::Rooms
            | M::Whois { .. }
            | M::Users { .. }
            | M::Klines => return Ok(()),
        };
        bucket.take(std::time::Instant::now()).map_err(|wait| {
            metrics().limited(limit);
            RouterError::new(
                ErrorCode::RateLimited,
                format!("too many {what}; retry in {}", retry_in(wait)),
            )
        })
    }

    /// The ids of whispers to this session's account among `batch`,
    /// which is about to be written (not its own echoes).
    fn written_whispers(&self, batch: &VecDeque<Frame>) -> Vec<u64> {
        let Some(waiting) = &self.waiting else {
            return Vec::new();
        };
        batch
            .iter()
            .filter_map(|frame| match frame.message() {
                Some(ServerMessage::Direct(d))
                    if d.account.as_ref() != Some(&waiting.account) || d.from == d.to =>
                {
                    Some(d.id)
                }
                _ => None,
            })
            .collect()
    }

    /// A ping was sent, after `ids` (whispers to confirm) if any.
    fn pinged_for(&mut self, ids: Vec<u64>) {
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        waiting.pings += 1;
        let ping = waiting.pings;
        waiting
            .unconfirmed
            .extend(ids.into_iter().map(|id| (ping, id)));
        let over = waiting.unconfirmed.len().saturating_sub(MAX_UNCONFIRMED);
        waiting.unconfirmed.drain(..over);
    }

    /// The client answered a ping, so it has read everything written
    /// before that ping: the whispers that ping followed are marked
    /// delivered. Until then (a client that drops, or never reads) they
    /// stay waiting and come again at the next login: at least once, not
    /// at most once.
    fn confirm(&mut self) {
        let Some(waiting) = self.waiting.as_mut() else {
            return;
        };
        waiting.answers = (waiting.answers + 1).min(waiting.pings);
        let answered = waiting
            .unconfirmed
            .iter()
            .take_while(|(ping, _)| *ping <= waiting.answers)
            .count();
        if answered == 0 {
            return;
        }
        let ids = waiting
            .unconfirmed
            .drain(..answered)
            .map(|(_, id)| id)
            .collect();
        if let Some(store) = &self.ctx.store {
            let write = Write::Delivered {
                account: waiting.account.clone(),
                ids,
            };
            if store.writes().try_send(write).is_err() {
                warn!("the store's queue is full; waiting whispers will be delivered again");
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
    fn handle(&mut self, frame: &[u8]) -> Option<Later<'_>> {
        match parse_request(frame) {
            Ok(request) => self.dispatch(request),
            Err(e) => {
                self.reply_error(e.code, e.message, e.reference);
                None
            }
        }
    }

    fn reply(&self, message: ServerMessage, reference: Option<Ref>) {
        self.outbox.push(Frame::with_ref(message, reference));
    }

    fn store(&self) -> Result<&Store, RouterError> {
        self.ctx.store.as_ref().ok_or_else(unsupported)
    }

    /// Checks a password for the account `nick` (or a token, for the
    /// account it belongs to), with the wrong-password limiter; returns
    /// the account's name as registered. A valid token always gets in; a
    /// wrong one counts for this address only, so nobody can lock an
    /// account by sending bad tokens.
    async fn verify(
        &mut self,
        nick: &Nick,
        password: Option<String>,
        token: Option<String>,
    ) -> Result<Nick, RouterError> {
        let ctx = self.ctx.clone();
        let store = self.store()?;
        let ip = self.peer.ip();
        let locked = |wait: u64| {
            metrics().limited(Limit::Passwords);
            RouterError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many wrong passwords or tokens from your address; try again in {wait}s"
                ),
            )
        };
        let failed = || {
            RouterError::new(
                ErrorCode::AuthFailed,
                format!("wrong password or token for {nick}"),
            )
        };
        if let Some(token) = token {
            let hash = token_hash(&token);
            let used_since = now_ms().saturating_sub(token_lifetime_ms(&ctx.settings));
            match store
                .token_account(&hash, used_since)
                .await
                .map_err(internal)?
            {
                // The token's account, whatever nick the session asks for
                // (a client that reconnects as `alice_` keeps its login;
                // another account's nick is refused when it connects).
                Some(account) => {
                    // Renewed by use; if the queue is full it is renewed
                    // at the next login.
                    let _ = store
                        .writes()
                        .try_send(Write::TouchToken { hash: hash.clone() });
                    self.token = Some(hash.into());
                    return Ok(account);
                }
                _ => {
                    let now = std::time::Instant::now();
                    if let Some(wait) = ctx.limiter.address_locked(ip, now) {
                        return Err(locked(wait));
                    }
                    ctx.limiter.token_failed(ip, now);
                    return Err(failed());
                }
            }
        }
        let Some(password) = password else {
            return Err(failed());
        };
        match ctx
            .limiter
            .check(nick.as_str(), ip, std::time::Instant::now())
        {
            Check::Go => {}
            Check::Wait(wait) => {
                metrics().limited(Limit::Passwords);
                tokio::time::sleep(wait).await;
            }
            Check::Locked(wait) => return Err(locked(wait)),
        }
        let Some((account, hash)) = store.account(nick).await.map_err(internal)? else {
            return Err(RouterError::new(
                ErrorCode::NoSuchAccount,
                format!("there is no account {nick}; register it first"),
            ));
        };
        let ok = ctx
            .hasher
            .verify_password(password, hash)
            .await
            .map_err(hash_error)?;
        if ok {
            ctx.limiter.succeeded(account.as_str(), ip);
            Ok(account)
        } else {
            ctx.limiter
                .failed(nick.as_str(), ip, std::time::Instant::now());
            Err(failed())
        }
    }

    /// A new token for `account`, stored hashed; this session's token.
    async fn issue_token(&mut self, account: &Nick) -> Result<String, RouterError> {
        let token = new_token().map_err(internal)?;
        let hash = token_hash(&token);
        let account = account.clone();
        let stored = hash.clone();
        let expired_before = now_ms().saturating_sub(token_lifetime_ms(&self.ctx.settings));
        self.store()?
            .request(move |reply| Write::AddToken {
                account,
                hash: stored,
                expired_before,
                reply,
            })
            .await
            .map_err(internal)?;
        self.token = Some(hash.into());
        Ok(token)
    }

    /// `hello`: as a guest, or logged in with a password or a token.
    async fn hello(
        &mut self,
        nick: Nick,
        password: Option<String>,
        token: Option<String>,
        profile: Profile,
        reference: Option<Ref>,
    ) -> Outcome {
        self.check_server_bans(None)?;
        let mut first = vec![self.welcome(nick.clone())];
        let mut loaded_reads = None;
        let with_password = password.is_some();
        let account = if password.is_some() || token.is_some() {
            let account = self.verify(&nick, password, token).await?;
            let token = if with_password && self.tokens {
                Some(self.issue_token(&account).await?)
            } else {
                None
            };
            self.check_server_bans(Some(&account))?;
            // Granted or revoked by `banter admin` since it was last read.
            let admin = store_admin(&self.ctx, &account).await?;
            self.ctx.admins.set_granted(&account, admin);
            first.push(ServerMessage::LoggedIn {
                account: account.clone(),
                token,
                admin: self.ctx.admins.is_admin(&account),
            });
            if let Some(store) = &self.ctx.store {
                let stored = store
                    .read_positions(&account, MAX_READ_POSITIONS)
                    .await
                    .map_err(internal)?;
                let reads: Vec<_> = stored.into_iter().filter_map(read_target).collect();
                // Only an account that has marked something read hears of
                // it: clients that never use positions see no new frame.
                if !reads.is_empty() {
                    first.push(ServerMessage::ReadPositions {
                        positions: reads.iter().map(|(t, m)| t.position(*m)).collect(),
                    });
                }
                // Likewise what notifies it.
                let levels = store.notify_levels(&account).await.map_err(internal)?;
                let levels: Vec<LevelOf> = levels.into_iter().filter_map(level_of).collect();
                if !levels.is_empty() {
                    first.push(ServerMessage::NotifyLevels { levels });
                }
                let words = store.highlights(&account).await.map_err(internal)?;
                if !words.is_empty() {
                    first.push(ServerMessage::Highlights { words });
                }
                loaded_reads = Some(reads);
            }
            Some(account)
        } else {
            None
        };
        // Another device of an account online here: the same user, whose
        // nick is held already.
        let here = account
            .as_ref()
            .is_some_and(|a| self.ctx.router.account_here(a));
        let claimed = !here && self.claim(&nick, account.as_ref()).await?;
        // A device joining its user finds the positions in `joined`, and
        // its rooms loaded (in a cluster, a user of another node may be in
        // rooms this node holds no state of).
        if let (true, Some(account)) = (here, &account) {
            if let Some(reads) = &loaded_reads {
                self.ctx.router.preload_reads(account, reads.clone());
            }
            if let Some(store) = self.ctx.store.clone() {
                for room in self.ctx.router.rooms_of_account(account) {
                    if !self.ctx.router.has_room(&room) {
                        self.load_room(&store, &room).await?;
                    }
                }
            }
        }
        let registered = self.ctx.router.connect_as(
            nick.clone(),
            account.clone(),
            self.outbox.clone(),
            first,
            reference,
        );
        if claimed {
            self.ctx.router.release_nick(&nick);
        }
        let id = match registered {
            Ok(id) => id,
            Err(e) => {
                if claimed && !self.ctx.router.nick_is_local(&nick) {
                    self.release(&nick);
                }
                return Err(e);
            }
        };
        // In a cluster, the account's user went (from this node or
        // another) while this login waited: it is a new user whose nick
        // was never claimed. Try again (with a claim).
        if here && self.ctx.link.is_some() && self.ctx.router.is_first_device(id) {
            self.ctx.router.quit(id, None);
            return Err(RouterError::new(
                ErrorCode::Internal,
                "your account's session changed while you logged in; try again",
            ));
        }
        self.id = Some(id);
        self.ctx.router.set_profile(id, profile);
        if let Some(account) = &account {
            let admin = self.ctx.admins.is_admin(account);
            self.ctx.router.set_admin(id, admin);
        }
        if let Some(reads) = loaded_reads {
            self.ctx.router.load_reads(id, reads);
        }
        if let (Some(account), Some(store)) = (account, self.ctx.store.clone()) {
            // A new user (not another device of one): its setting and rooms.
            if self.ctx.router.is_first_device(id) {
                let on = store.always_on(&account).await.map_err(internal)?;
                self.ctx.router.set_always_on(id, on);
                self.rejoin(id, &account, &store).await?;
            }
            self.deliver_waiting(id, account, &store).await?;
        }
        Ok(())
    }

    /// `settings`: changes the account's settings (stored first), or tells
    /// them; every device of the account hears the answer.
    async fn settings(
        &mut self,
        id: SessionId,
        always_on: Option<bool>,
        reference: Option<Ref>,
    ) -> Outcome {
        let account = self.logged_in(id)?;
        let store = self.store()?;
        let always_on = match always_on {
            Some(on) => {
                let named = account.clone();
                store
                    .request(|reply| Write::SetAlwaysOn {
                        account: named,
                        on,
                        reply,
                    })
                    .await
                    .map_err(internal)?;
                self.ctx.router.set_always_on(id, on);
                let settings = ServerMessage::Settings { always_on: on };
                self.ctx.router.tell_user(id, settings, reference);
                return Ok(());
            }
            None => store.always_on(&account).await.map_err(internal)?,
        };
        self.reply(ServerMessage::Settings { always_on }, reference);
        Ok(())
    }

    /// The rooms `account` was in (its stored memberships), joined again
    /// as it logs in on its first device; each comes as `joined`. A room
    /// whose ban now keeps it out is forgotten.
    async fn rejoin(&mut self, id: SessionId, account: &Nick, store: &Store) -> Outcome {
        let limit = self.ctx.settings.max_rooms_per_session;
        let rooms = store.memberships(account, limit).await.map_err(internal)?;
        let router = self.ctx.router.clone();
        for name in rooms {
            let Ok(room) = RoomName::new(&name) else {
                continue;
            };
            for _ in 0..3 {
                match router.rejoin(id, room.clone()) {
                    Ok(Joined::NotLoaded) => {
                        // The login stands whatever happens to one room.
                        if let Err(e) = self.load_room(store, &room).await {
                            warn!(%account, %room, error = %e, "could not put the account back in a room");
                            break;
                        }
                    }
                    Err(e) if e.code == ErrorCode::Banned => {
                        let _ = store.writes().try_send(Write::Membership {
                            account: account.clone(),
                            room: name.clone(),
                            member: false,
                        });
                        break;
                    }
                    Ok(Joined::Joined) | Err(_) => break,
                }
            }
        }
        Ok(())
    }

    /// Whispers that waited for `account`, after the welcome; delivered
    /// (no longer waiting) once the client confirms it read them. Read
    /// from the store's read pool once the writer has committed every
    /// whisper queued before (so none is missed), at most half an outbox
    /// (in frames and in bytes) at a time: the rest come at the next login.
    async fn deliver_waiting(&mut self, id: SessionId, account: Nick, store: &Store) -> Outcome {
        flush(store).await;
        let limit = (self.ctx.settings.outbox_len / 2).clamp(1, MAX_WAITING_PAGE) as u32;
        self.watch_whispers(account.clone());
        let pending = store.pending(&account, limit).await.map_err(internal)?;
        // Half the outbox's bytes too (at least one whisper), so that none
        // is dropped on the way: the rest wait for the next login.
        let mut budget = self.ctx.settings.outbox_bytes / 2;
        for direct in pending {
            let frame = Frame::new(ServerMessage::Direct(direct));
            if frame.weight() > budget && budget < self.ctx.settings.outbox_bytes / 2 {
                break;
            }
            budget = budget.saturating_sub(frame.weight());
            self.ctx.router.send_to(id, frame);
        }
        Ok(())
    }

    /// From now on, whispers to `account` written to this session are
    /// confirmed by the answers to pings (see [`Waiting`]).
    fn watch_whispers(&mut self, account: Nick) {
        self.waiting = Some(Box::new(Waiting {
            account,
            unconfirmed: VecDeque::new(),
            pings: 0,
            answers: 0,
        }));
    }

    /// In a cluster, takes `nick` in the broker for this node (so no other
    /// node can have it) before the router registers it here. `Ok(false)`
    /// outside a cluster.
    async fn claim(&self, nick: &Nick, account: Option<&Nick>) -> Result<bool, RouterError> {
        let router = &self.ctx.router;
        let Some(link) = &self.ctx.link else {
            return Ok(false);
        };
        router.reserve_nick(nick, account)?;
        let user = UserRecord {
            nick: nick.clone(),
            node: link.node.to_string(),
            account: account.cloned(),
            away: None,
            rooms: Vec::new(),
            since: now_ms(),
            offline: false,
        };
        let asked = self
            .ask_broker(
                link,
                Publish::User {
                    key: key(nick),
                    record: Some(serde_json::to_string(&user).expect("records serialize")),
                    old: None,
                    claim: true,
                    event: Event::User {
                        user,
                        change: Change::Online,
                    },
                    reply: None,
                },
                nick,
            )
            .await;
        if let Err(e) = asked {
            router.release_nick(nick);
            return Err(e);
        }
        Ok(true)
    }

    /// Queues a claim for the broker and waits for its answer.
    async fn ask_broker(&self, link: &Link, mut p: Publish, nick: &Nick) -> Outcome {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Publish::User { reply, .. } = &mut p {
            *reply = Some(tx);
        }
        if !link.publish(p) {
            return Err(RouterError::new(
                ErrorCode::ServerFull,
                "the server is behind telling the cluster; try again in a moment",
            ));
        }
        match timeout(BROKER_WAIT, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            )),
            _ => {
                // It may still be done later: the next sync sets it right.
                link.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
                Err(RouterError::new(
                    ErrorCode::Internal,
                    "the cluster's broker did not answer; try again",
                ))
            }
        }
    }

    /// Gives a claimed nick back (the router refused the session).
    fn release(&self, nick: &Nick) {
        let Some(link) = &self.ctx.link else {
            return;
        };
        let user = UserRecord {
            nick: nick.clone(),
            node: link.node.to_string(),
            account: None,
            away: None,
            rooms: Vec::new(),
            since: 0,
            offline: false,
        };
        link.publish(Publish::User {
            key: key(nick),
            record: None,
            old: None,
            claim: false,
            event: Event::User {
                user,
                change: Change::Quit { reason: None },
            },
            reply: None,
        });
    }

    /// `nick`: in a cluster, the broker moves the nick first.
    async fn change_nick(&mut self, id: SessionId, nick: Nick, reference: Option<Ref>) -> Outcome {
        let router = self.ctx.router.clone();
        if let Some(link) = &self.ctx.link {
            if router.lives_elsewhere(id) {
                return Err(RouterError::new(
                    ErrorCode::Unsupported,
                    "your account's user lives on another server of this cluster: change \
                     the nick from a device connected there (or from here once it has none)",
                ));
            }
            router.check_nick(id, &nick)?;
            let old = router
                .nick_of(id)
                .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
            let user = router
                .record_as(id, &nick)
                .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
            // A change of case keeps the key the session holds already.
            let reserved = old != nick;
            if reserved {
                router.reserve_nick(&nick, user.account.as_ref())?;
            }
            let p = Publish::User {
                key: key(&nick),
                record: Some(serde_json::to_string(&user).expect("records serialize")),
                old: Some(key(&old)),
                claim: true,
                event: Event::User {
                    user,
                    change: Change::Nick { old },
                },
                reply: None,
            };
            let asked = self.ask_broker(link, p, &nick).await;
            let renamed = asked.and_then(|()| router.change_nick(id, nick.clone(), reference));
            if reserved {
                router.release_nick(&nick);
            }
            if renamed.is_err() {
                // If the broker moved the nick and the router did not, the
                // next sync restates this session as it is.
                link.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            return renamed;
        }
        router.change_nick(id, nick, reference)
    }

    /// `register`: creates an account; after `hello`, for your own nick,
    /// which also logs you in.
    async fn register_account(
        &mut self,
        nick: Nick,
        password: String,
        invite: Option<String>,
        reference: Option<Ref>,
    ) -> Outcome {
        let ctx = self.ctx.clone();
        let store = self.store()?;
        self.check_server_bans(None)?;
        check_password(&password).map_err(|m| RouterError::new(ErrorCode::InvalidPassword, m))?;
        if let Some(id) = self.id {
            let mine = ctx.router.nick_of(id);
            if mine.as_ref() != Some(&nick) {
                return Err(RouterError::new(
                    ErrorCode::BadRequest,
                    "after hello you can only register your own nick",
                ));
            }
            if ctx.router.account_of(id).is_some() {
                return Err(RouterError::new(
                    ErrorCode::AccountExists,
                    "you are logged into an account already",
                ));
            }
        } else if ctx.router.nick_in_use(&nick) {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        let exists = || {
            RouterError::new(
                ErrorCode::AccountExists,
                format!("the account {nick} exists already"),
            )
        };
        if ctx.router.is_account(&nick) {
            return Err(exists());
        }
        let invite = match (ctx.settings.registration, invite) {
            (Registration::Open, _) => None,
            (Registration::Closed, _) => {
                return Err(RouterError::new(
                    ErrorCode::RegistrationClosed,
                    "this server does not create accounts; ask its administrator",
                ));
            }
            (Registration::Invite, None) => {
                return Err(RouterError::new(
                    ErrorCode::InviteRequired,
                    "this server creates accounts by invitation: register with an invite code from its administrator",
                ));
            }
            (Registration::Invite, Some(code)) => Some(token_hash(code.trim())),
        };
        let now = std::time::Instant::now();
        if let Err(wait) = ctx.registrations.take(&[Who::address(self.peer.ip())], now) {
            metrics().limited(Limit::Registrations);
            return Err(RouterError::new(
                ErrorCode::RateLimited,
                format!(
                    "too many accounts created from your address; retry in {}",
                    retry_in(wait)
                ),
            ));
        }
        let hash = ctx
            .hasher
            .hash_password(password)
            .await
            .map_err(hash_error)?;
        let name = nick.clone();
        let registered = store
            .request(move |reply| Write::Register {
                name,
                hash,
                invite,
                reply,
            })
            .await
            .map_err(internal)?;
        match registered {
            Registered::Created => {}
            Registered::Taken => return Err(exists()),
            Registered::BadInvite => {
                ctx.limiter
                    .token_failed(self.peer.ip(), std::time::Instant::now());
                return Err(RouterError::new(
                    ErrorCode::InvalidInvite,
                    "that invite code does not exist, has expired or was used up",
                ));
            }
        }
        ctx.router.add_account(nick.clone());
        self.reply(
            ServerMessage::Registered { nick: nick.clone() },
            reference.clone(),
        );
        if let Some(id) = self.id {
            ctx.router.log_in(id, nick.clone())?;
            // A new account: no positions yet, but this session hears
            // those its other sessions move.
            ctx.router.load_reads(id, Vec::new());
            ctx.router.set_admin(id, ctx.admins.is_admin(&nick));
            // A new account is always-on, as every account is by default.
            ctx.router.set_always_on(id, true);
            self.watch_whispers(nick.clone());
            let token = if self.tokens {
                Some(self.issue_token(&nick).await?)
            } else {
                None
            };
            self.reply(
                ServerMessage::LoggedIn {
                    admin: self.ctx.admins.is_admin(&nick),
                    account: nick,
                    token,
                },
                reference,
            );
        }
        Ok(())
    }

    async fn logout(&mut self, id: SessionId, all: bool, reference: Option<Ref>) -> Outcome {
        let Some(account) = self.ctx.router.account_of(id) else {
            return Err(RouterError::new(
                ErrorCode::NoSuchAccount,
                "you are not logged in",
            ));
        };
        let hash = if all {
            None
        } else {
            match self.token.take() {
                Some(hash) => Some(hash.into_vec()),
                None => {
                    self.reply(ServerMessage::LoggedOut { revoked: 0 }, reference);
                    return Ok(());
                }
            }
        };
        let everywhere = hash.is_none().then(|| account.clone());
        let revoked = self
            .store()?
            .request(|reply| Write::RevokeTokens {
                account,
                hash,
                reply,
            })
            .await
            .map_err(internal)?;
        self.token = None;
        if let Some(account) = everywhere {
            self.ctx.router.end_sessions_of(
                &account,
                id,
                ErrorCode::LoggedOutElsewhere,
                "you were logged out everywhere from another session",
            );
        }
        self.reply(ServerMessage::LoggedOut { revoked }, reference);
        Ok(())
    }

    /// `change_password`: checks the old password (with the limiter), then
    /// stores the new one's hash, revoking every token, ends the account's
    /// other sessions and gives this one a fresh token.
    async fn change_password(
        &mut self,
        id: SessionId,
        old: String,
        new: String,
        reference: Option<Ref>,
    ) -> Outcome {
        let account = self.logged_in(id)?;
        check_password(&new).map_err(|m| RouterError::new(ErrorCode::InvalidPassword, m))?;
        let account = self.verify(&account, Some(old), None).await?;
        let hash = self
            .ctx
            .hasher
            .hash_password(new)
            .await
            .map_err(hash_error)?;
        let named = account.clone();
        self.store()?
            .request(|reply| Write::SetPassword {
                account: named,
                hash,
                reply,
            })
            .await
            .map_err(internal)?;
        self.ctx.router.end_sessions_of(
            &account,
            id,
            ErrorCode::LoggedOutElsewhere,
            "the account's password was changed from another session",
        );
        let token = self.issue_token(&account).await?;
        self.reply(ServerMessage::PasswordChanged { token }, reference);
        Ok(())
    }

    /// `delete_account`: checks the password (with the limiter), deletes
    /// the account, ends its other sessions; this one goes on as a guest.
    async fn delete_account(
        &mut self,
        id: SessionId,
        password: String,
        reference: Option<Ref>,
    ) -> Outcome {
        let account = self.logged_in(id)?;
        let account = self.verify(&account, Some(password), None).await?;
        self.remove_account(&account, id, "the account was deleted from another session")
            .await?;
        self.token = None;
        self.waiting = None;
        self.reply(ServerMessage::AccountDeleted { account }, reference);
        Ok(())
    }

    /// A server administrator's request (`not_admin` for anyone else).
    async fn administer(&mut self, id: SessionId, act: Admin, reference: Option<Ref>) -> Outcome {
        let admin = self.ctx.router.account_of(id);
        let admin = admin.filter(|a| self.ctx.admins.is_admin(a));
        let oper = self.rare.as_ref().and_then(|r| r.oper.clone());
        let Some(by) = admin.or(oper) else {
            return Err(RouterError::new(
                ErrorCode::NotAdmin,
                "only server administrators may do that (log into an administrator's account)",
            ));
        };
        match act {
            Admin::Kill { nick, reason } => {
                let why = match reason.as_deref().map(str::trim) {
                    Some(reason) if !reason.is_empty() => format!("killed by {by}: {reason}"),
                    _ => format!("killed by {by}"),
                };
                if !self.ctx.router.kill(&nick, ErrorCode::Killed, &why) {
                    return Err(RouterError::new(
                        ErrorCode::NoSuchNick,
                        format!("nobody here is using the nick {nick}"),
                    ));
                }
                info!(%by, %nick, "server administrator ended a session");
                self.reply(ServerMessage::Killed { nick }, reference);
            }
            Admin::Kline {
                address,
                account,
                ban,
            } => self.kline(by, address, account, ban, reference).await?,
            Admin::Klines => {
                let bans = self.ctx.server_bans.list(now_ms());
                self.reply(ServerMessage::Klines { klines: bans }, reference);
            }
            Admin::RemoveAccount { account } => {
                let why = format!("the account was removed by {by}");
                if !self.remove_account(&account, SessionId::MAX, &why).await? {
                    return Err(RouterError::new(
                        ErrorCode::NoSuchAccount,
                        format!("there is no account {account}"),
                    ));
                }
                info!(%by, %account, "server administrator removed an account");
                self.reply(ServerMessage::AccountDeleted { account }, reference);
            }
        }
        Ok(())
    }

    /// Sets (`ban`: reason and minutes) or lifts a server ban on an
    /// address range or an account; setting one ends the sessions it
    /// matches.
    async fn kline(
        &mut self,
        by: Nick,
        address: Option<String>,
        account: Option<Nick>,
        ban: Option<(String, Option<u32>)>,
        reference: Option<Ref>,
    ) -> Outcome {
        let bad = |m: String| RouterError::new(ErrorCode::BadRequest, m);
        let target = Target::of(address.as_deref(), account.as_ref()).map_err(bad)?;
        let (kind, stored) = target.stored();
        let Some((reason, minutes)) = ban else {
            let store = self.store()?;
            store
                .request(|reply| Write::ServerBan {
                    kind,
                    target: stored,
                    ban: None,
                    reply,
                })
                .await
                .map_err(internal)?;
            let Some(old) = self.ctx.server_bans.set(target, None) else {
                return Err(bad("there is no such server ban".into()));
            };
            info!(%by, "server administrator lifted a server ban");
            self.reply(
                ServerMessage::Klined {
                    kline: old,
                    set: false,
                },
                reference,
            );
            return Ok(());
        };
        let reason = reason.trim().to_string();
        if reason.is_empty() || reason.len() > MAX_BAN_REASON {
            return Err(bad(format!("a reason has 1 to {MAX_BAN_REASON} bytes")));
        }
        if let Target::Address(net) = &target
            && net.contains(&self.peer.ip().to_canonical())
        {
            return Err(bad("that range includes your own address".into()));
        }
        let ts = now_ms();
        let ban = ServerBan {
            address: address.map(|_| stored.clone()),
            account,
            reason,
            by: by.clone(),
            ts,
            expires: minutes.map(|m| ts + u64::from(m) * 60_000),
        };
        let kept = ban.clone();
        self.store()?
            .request(|reply| Write::ServerBan {
                kind,
                target: stored,
                ban: Some(kept),
                reply,
            })
            .await
            .map_err(internal)?;
        self.ctx.server_bans.set(target.clone(), Some(ban.clone()));
        let message = format!("you are banned from this server: {}", ban.reason);
        let ended = match (&target, &ban.account) {
            (Target::Address(net), _) => self.ctx.alarms.close_from(
                |ip| net.contains(&ip.to_canonical()),
                ErrorCode::ServerBanned,
                &message,
            ),
            (Target::Account(_), Some(account)) => self.ctx.router.end_sessions_of(
                account,
                SessionId::MAX,
                ErrorCode::ServerBanned,
                &message,
            ),
            (Target::Account(_), None) => 0,
        };
        info!(%by, ended, "server administrator set a server ban");
        self.reply(
            ServerMessage::Klined {
                kline: ban,
                set: true,
            },
            reference,
        );
        Ok(())
    }

    /// Refuses a client whose address (or account) is banned from the
    /// server.
    fn check_server_bans(&self, account: Option<&Nick>) -> Outcome {
        match self.ctx.server_bans.find(self.peer.ip(), account, now_ms()) {
            Some(ban) => Err(RouterError::new(
                ErrorCode::ServerBanned,
                format!("you are banned from this server: {}", ban.reason),
            )),
            None => Ok(()),
        }
    }

    /// Deletes `account` from the store and the router: its sessions but
    /// `keep` end (`logged_out_elsewhere`, `why`), `keep` goes on as a
    /// guest. `false` if there was no such account.
    async fn remove_account(
        &self,
        account: &Nick,
        keep: SessionId,
        why: &str,
    ) -> Result<bool, RouterError> {
        let named = account.clone();
        let existed = self
            .store()?
            .request(|reply| Write::DeleteAccount {
                account: named,
                reply,
            })
            .await
            .map_err(internal)?;
        let router = &self.ctx.router;
        router.end_sessions_of(account, keep, ErrorCode::LoggedOutElsewhere, why);
        router.remove_account(account, keep);
        Ok(existed)
    }

    /// The account session `id` is logged into, or `no_such_account`.
    fn logged_in(&self, id: SessionId) -> Result<Nick, RouterError> {
        self.ctx
            .router
            .account_of(id)
            .ok_or_else(|| RouterError::new(ErrorCode::NoSuchAccount, "you are not logged in"))
    }

    /// `join`, loading the room from the store first if need be. A room
    /// not open on the server counts against the address's and the
    /// account's new-room quota (the room limit is shared by all).
    async fn join(
        &mut self,
        id: SessionId,
        room: RoomName,
        key: Option<String>,
        reference: Option<Ref>,
    ) -> Outcome {
        let router = &self.ctx.router;
        if !router.has_room(&room) {
            let mut who = vec![Who::address(self.peer.ip())];
            who.extend(router.account_of(id).map(|a| Who::account(a.as_str())));
            if let Err(wait) = self.ctx.new_rooms.take(&who, std::time::Instant::now()) {
                metrics().limited(Limit::NewRooms);
                return Err(RouterError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many new rooms opened from your address or account; join one that is open, or retry in {}",
                        retry_in(wait)
                    ),
                ));
            }
        }
        for _ in 0..3 {
            if router.join(id, room.clone(), key.as_deref(), reference.clone())? == Joined::Joined {
                return Ok(());
            }
            let store = self.store()?;
            self.load_room(store, &room).await?;
        }
        Err(RouterError::new(
            ErrorCode::ServerFull,
            "the server is too busy to load that room; try again",
        ))
    }

    /// Reads `room` from the store into the router (whose `join` said it
    /// is not loaded).
    async fn load_room(&self, store: &Store, room: &RoomName) -> Outcome {
        let state = store
            .load_room(room, self.ctx.settings.history_len)
            .await
            .map_err(internal)?;
        self.ctx.router.insert_room(room.clone(), state)
    }

    /// A reconnecting client's `join` of a room it had: refused if its
    /// account left that room from another device meanwhile (and is not
    /// back in it), so the reconnect does not undo the part.
    async fn left_elsewhere(&self, id: SessionId, room: &RoomName) -> Outcome {
        let router = &self.ctx.router;
        let (Some(account), Some(store)) = (router.account_of(id), &self.ctx.store) else {
            return Ok(());
        };
        if router.check_member(id, room).is_ok() {
            return Ok(());
        }
        // The part may still be on its way to the store.
        flush(store).await;
        if store.left(&account, room).await.map_err(internal)? {
            return Err(RouterError::new(
                ErrorCode::NotInRoom,
                format!("you left {room} from another device; join it again to come back"),
            ));
        }
        Ok(())
    }

    /// `mode` without `set`: the router answers for a room in memory; one
    /// that is not (nobody opened it since the start) is read from the
    /// store, without loading it, and its key shown as `*` (this session
    /// can't be in it).
    async fn mode_query(
        &mut self,
        id: SessionId,
        room: RoomName,
        reference: Option<Ref>,
    ) -> Outcome {
        let router = &self.ctx.router;
        if router.has_room(&room) {
            return router.mode(id, room, None, reference);
        }
        let mut modes = self
            .store()?
            .load_room(&room, 0)
            .await
            .map_err(internal)?
            .modes;
        modes.key = modes.key.map(|_| "*".to_string());
        let message = ServerMessage::Modes {
            room,
            modes,
            by: None,
            change: None,
            created: None,
        };
        self.reply(message, reference);
        Ok(())
    }

    /// `history`, from the store when there is one.
    async fn history(
        &mut self,
        id: SessionId,
        room: RoomName,
        page: Page,
        reference: Option<Ref>,
    ) -> Outcome {
        let router = &self.ctx.router;
        let Some(store) = &self.ctx.store else {
            return router.history(id, room, page, reference);
        };
        router.check_member(id, &room)?;
        let limit = page.limit.clamp(1, MAX_HISTORY_PAGE);
        let messages = store
            .history(&room, Page { limit, ..page })
            .await
            .map_err(internal)?;
        self.reply(ServerMessage::History { room, messages }, reference);
        Ok(())
    }

    /// `history` with `with`: a page of the direct conversation between
    /// this session's account and account `with`, from the store. Only
    /// whispers between two logged-in accounts are kept for it.
    async fn direct_history(
        &mut self,
        id: SessionId,
        with: Nick,
        page: Page,
        reference: Option<Ref>,
    ) -> Outcome {
        let me = self.ctx.router.account_of(id).ok_or_else(|| {
            RouterError::new(
                ErrorCode::AccountRequired,
                "direct history is kept between accounts: log in to read yours",
            )
        })?;
        let store = self.store()?;
        if !self.ctx.router.is_account(&with) {
            return Err(RouterError::new(
                ErrorCode::NoSuchAccount,
                format!("there is no account {with}: direct history is kept between accounts"),
            ));
        }
        let limit = page.limit.clamp(1, MAX_HISTORY_PAGE);
        let messages = store
            .direct_history(&me, &with, Page { limit, ..page })
            .await
            .map_err(internal)?;
        self.reply(ServerMessage::DirectHistory { with, messages }, reference);
        Ok(())
    }

    /// `mark_read`: moves this session's account's read position at
    /// `target` to a message of it (by id, or the newest at or before a
    /// time), stored first, then told to every session of the account; or,
    /// with neither, tells the position.
    async fn mark_read(
        &mut self,
        id: SessionId,
        target: Conversation,
        (message, ts): (Option<u64>, Option<u64>),
        reference: Option<Ref>,
    ) -> Outcome {
        let router = &self.ctx.router;
        let me = router.account_of(id).ok_or_else(|| {
            RouterError::new(
                ErrorCode::AccountRequired,
                "read positions are kept for accounts: log in first",
            )
        })?;
        let store = self.store()?;
        let held = router.read_position(id, &target)?;
        if message.is_none() && ts.is_none() {
            self.reply(ServerMessage::Read(target.position(held)), reference);
            return Ok(());
        }
        // Not newer than the one held: say where it is, no store lookup.
        if message.is_some_and(|n| n <= held.id) {
            router.mark_read(id, target, held, reference)?;
            return Ok(());
        }
        let (place, stored, shown) = match &target {
            Conversation::Room(room) => {
                router.check_member(id, room)?;
                (Place::Room(room), format!("#{room}"), room.to_string())
            }
            Conversation::With(with) => {
                if !router.is_account(with) {
                    return Err(RouterError::new(
                        ErrorCode::NoSuchAccount,
                        format!("there is no account {with}"),
                    ));
                }
                (Place::Direct(&me, with), key(with), with.to_string())
            }
        };
        // A time in the future means now (as IRC's MARKREAD is clamped).
        let ts = ts.map(|t| t.min(now_ms())).unwrap_or(0);
        let recent = match (&target, message) {
            (Conversation::Room(room), Some(n)) => {
                router.recent_message_ts(room, n).map(|t| (n, t))
            }
            _ => None,
        };
        let found = match recent {
            Some(found) => Some(found),
            None => store
                .read_mark(place, message, ts)
                .await
                .map_err(internal)?,
        };
        let Some((message, ts)) = found else {
            return Err(RouterError::new(
                ErrorCode::NoSuchMessage,
                match message {
                    Some(n) => format!("there is no message {n} there to mark read"),
                    None => "there is no message at or before that time to mark read".into(),
                },
            ));
        };
        let mark = ReadMark { id: message, ts };
        if held.id >= mark.id {
            // Not newer: say where it is, store nothing.
            router.mark_read(id, target, mark, reference)?;
            return Ok(());
        }
        let stored = store
            .request(|reply| Write::MarkRead {
                account: me,
                target: stored,
                shown,
                mark,
                reply,
            })
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                RouterError::new(ErrorCode::NoSuchAccount, "your account no longer exists")
            })?;
        // What the store holds (another node may have moved it further).
        router.mark_read(id, target, stored, reference)?;
        Ok(())
    }

    /// `targets`: this session's rooms and (logged in, with a store) its
    /// account's direct conversations whose newest message falls between
    /// the times, oldest first; past `limit`, the newest are kept, or
    /// with only `after_ts` the oldest.
    /// `notify_level`: the account's level in a conversation, changed
    /// (every device hears it) or told.
    async fn notify_level(
        &mut self,
        id: SessionId,
        target: Conversation,
        level: Option<NotifyLevel>,
        reference: Option<Ref>,
    ) -> Outcome {
        let account = self.logged_in(id)?;
        let store = self.store()?;
        let (key, shown) = match &target {
            Conversation::Room(room) => (format!("#{room}"), room.to_string()),
            Conversation::With(with) => (crate::core::model::key(with), with.to_string()),
        };
        let (room, with) = match target {
            Conversation::Room(room) => (Some(room), None),
            Conversation::With(with) => (None, Some(with)),
        };
        let Some(level) = level else {
            let level = store.notify_level(&account, &key).await.map_err(internal)?;
            let told = ServerMessage::NotifyLevel(LevelOf { room, with, level });
            self.reply(told, reference);
            return Ok(());
        };
        let named = account.clone();
        store
            .request(|reply| Write::NotifyLevel {
                account: named,
                target: key,
                shown,
                level,
                reply,
            })
            .await
            .map_err(internal)?;
        let told = ServerMessage::NotifyLevel(LevelOf { room, with, level });
        self.ctx.router.tell_user(id, told, reference);
        Ok(())
    }

    /// `push_subscribe` (`keys`) and `push_unsubscribe`: a browser's Web
    /// Push subscription for the account, kept or ended.
    async fn push(
        &mut self,
        id: SessionId,
        endpoint: String,
        keys: Option<banter_protocol::PushKeys>,
        reference: Option<Ref>,
    ) -> Outcome {
        let account = self.logged_in(id)?;
        let store = self.store()?;
        let Some((_, pusher)) = &self.ctx.push else {
            return Err(RouterError::new(
                ErrorCode::Unsupported,
                "this server sends no Web Push",
            ));
        };
        let Some(keys) = keys else {
            let named = account.clone();
            let gone = endpoint.clone();
            store
                .request(|reply| Write::DropSubscription {
                    account: named,
                    endpoint: gone,
                    reply,
                })
                .await
                .map_err(internal)?;
            // The pusher forgets the account when it finds none left.
            self.reply(ServerMessage::PushUnsubscribed { endpoint }, reference);
            return Ok(());
        };
        let subscription = crate::push::Subscription::parse(
            &endpoint,
            &keys,
            self.ctx.settings.push_allow_http,
            self.pushes_irc,
        )
        .map_err(|why| RouterError::new(ErrorCode::BadRequest, why))?;
        let named = account.clone();
        store
            .request(|reply| Write::AddSubscription {
                account: named,
                subscription,
                limit: crate::push::MAX_SUBSCRIPTIONS,
                reply,
            })
            .await
            .map_err(internal)?;
        pusher.subscribed(&account, true);
        self.reply(ServerMessage::PushSubscribed { endpoint }, reference);
        Ok(())
    }

    /// `highlights`: the account's highlight words, replaced (every device
    /// hears it) or told.
    async fn highlights(
        &mut self,
        id: SessionId,
        words: Option<Vec<String>>,
        reference: Option<Ref>,
    ) -> Outcome {
        let account = self.logged_in(id)?;
        let store = self.store()?;
        let Some(words) = words else {
            let words = store.highlights(&account).await.map_err(internal)?;
            self.reply(ServerMessage::Highlights { words }, reference);
            return Ok(());
        };
        let named = account.clone();
        let stored = words.clone();
        store
            .request(|reply| Write::Highlights {
                account: named,
                words: stored,
                reply,
            })
            .await
            .map_err(internal)?;
        self.ctx
            .router
            .tell_user(id, ServerMessage::Highlights { words }, reference);
        Ok(())
    }

    /// `search`: what the store finds in the rooms the user is in now and
    /// in its own direct conversations.
    async fn search(
        &mut self,
        id: SessionId,
        query: &crate::core::search::Query,
        limit: u32,
        before: (Option<u64>, Option<u64>),
        reference: Option<Ref>,
    ) -> Outcome {
        let Some(store) = &self.ctx.store else {
            return Err(RouterError::new(
                ErrorCode::Unsupported,
                "this server keeps no history to search (it runs without a store)",
            ));
        };
        let router = &self.ctx.router;
        let rooms: Vec<RoomName> = router.room_times(id)?.into_iter().map(|(r, _)| r).collect();
        let account = router.account_of(id);
        let messages = store
            .search(&rooms, account.as_ref(), query, limit, before)
            .await
            .map_err(internal)?;
        self.reply(ServerMessage::SearchResults { messages }, reference);
        Ok(())
    }

    async fn targets(
        &mut self,
        id: SessionId,
        (after_ts, before_ts): (Option<u64>, Option<u64>),
        limit: Option<u32>,
        reference: Option<Ref>,
    ) -> Outcome {
        let limit = limit.unwrap_or(MAX_TARGETS).clamp(1, MAX_TARGETS);
        let (low, high) = (after_ts.unwrap_or(0), before_ts.unwrap_or(u64::MAX));
        let newest = before_ts.is_some() || after_ts.is_none();
        let router = &self.ctx.router;
        let mut targets: Vec<TargetInfo> = router
            .room_times(id)?
            .into_iter()
            .filter(|(_, ts)| low < *ts && *ts < high)
            .map(|(room, ts)| TargetInfo {
                room: Some(room),
                with: None,
                ts,
            })
            .collect();
        if let (Some(me), Some(store)) = (router.account_of(id), &self.ctx.store) {
            let (from, to) = if newest { (high, low) } else { (low, high) };
            let peers = store
                .conversations(&me, from, to, limit)
                .await
                .map_err(internal)?;
            targets.extend(peers.into_iter().map(|(peer, ts)| TargetInfo {
                room: None,
                with: Some(peer),
                ts,
            }));
        }
        targets.sort_by_key(|t| t.ts);
        let extra = targets.len().saturating_sub(limit as usize);
        if newest {
            targets.drain(..extra);
        } else {
            targets.truncate(limit as usize);
        }
        self.reply(ServerMessage::Targets { targets }, reference);
        Ok(())
    }

    /// Carries out one request, at once or as a [`Later`] to await (as
    /// [`route`] declares); every outcome (reply or error) lands in the
    /// outbox. The requests that wait are boxed: their futures are large,
    /// and unboxed every idle session would carry room for them (the
    /// session's task is sized for its largest await). Chat messages don't
    /// wait, so the hot path allocates nothing.
    fn dispatch(&mut self, request: Envelope<ClientMessage>) -> Option<Later<'_>> {
        let Envelope { body, reference } = request;
        if let Err(e) = self.throttle(&body) {
            self.reply_error(e.code, e.message, reference);
            return None;
        }
        let outcome = match route(self.id, body) {
            Route::Local(Local::Ping) => {
                self.reply(ServerMessage::Pong, reference);
                return None;
            }
            Route::Local(Local::Pong) => {
                self.confirm();
                return None;
            }
            Route::Now(id, now) => self.answer_now(id, now, reference.clone()),
            Route::Refused(e) => Err(e),
            Route::Waits(wait) => {
                return Some(Box::pin(async move {
                    if let Err(e) = self.answer_later(wait, reference.clone()).await {
                        self.reply_error(e.code, e.message, reference);
                    }
                }));
            }
        };
        if let Err(e) = outcome {
            self.reply_error(e.code, e.message, reference);
        }
        None
    }

    /// Carries out a request the router answers at once.
    fn answer_now(&self, id: SessionId, now: Now, reference: Option<Ref>) -> Outcome {
        let router = &self.ctx.router;
        match now {
            Now::Part { room, reason } => router.part(id, room, reason, reference),
            Now::Say {
                room,
                text,
                notice,
                reply_to,
            } => router
                .say(id, room, text, notice, reply_to, reference)
                .map(drop),
            Now::Whisper {
                to,
                text,
                notice,
                reply_to,
            } => router
                .whisper(id, to, text, notice, reply_to, reference)
                .map(drop),
            Now::Amend {
                place,
                message,
                change,
            } => router.amend(id, place, message, change, reference),
            Now::Typing { place, state } => router.typing(id, place, state),
            Now::Topic { room, text } => router.topic(id, room, text, reference),
            Now::Members { room } => router.members(id, room, reference),
            Now::Rooms => router.rooms(id, reference),
            Now::Whois { nick } => router.whois(id, nick, reference),
            Now::Users { nicks } => router.users(id, nicks, reference),
            Now::Away { message } => router.away(id, message, reference),
            Now::Profile { realname, bot } => router.change_profile(id, realname, bot, reference),
            Now::Watch { nicks } => router.watch(id, nicks, reference),
            Now::Who { mask } => router.who(id, &mask, reference),
            Now::Unwatch { nicks } => router.unwatch(id, nicks, reference),
            Now::Kick { room, nick, reason } => router.kick(id, room, nick, reason, reference),
            Now::Ban {
                room,
                list,
                nick,
                account,
                mask,
                set,
            } => router.ban(id, (room, list), nick, account, mask, set, reference),
            Now::Bans { room, list } => router.bans(id, room, list, reference),
            Now::Op { room, account, op } => router.set_op(id, room, account, op, reference),
            Now::SetOwner { room, account } => router.set_owner(id, room, account, reference),
            Now::Mode { room, set } => router.mode(id, room, set, reference),
            Now::Invite { room, nick } => router.invite(id, room, nick, reference),
            Now::Voice { room, nick, set } => router.voice(id, room, nick, set, reference),
        }
    }

    /// Carries out a request that waits for something (see [`route`]).
    async fn answer_later(&mut self, wait: Wait, reference: Option<Ref>) -> Outcome {
        match wait {
            Wait::Hello {
                nick,
                password,
                token,
                profile,
            } => self.hello(nick, password, token, profile, reference).await,
            Wait::RegisterAccount {
                nick,
                password,
                invite,
            } => {
                self.register_account(nick, password, invite, reference)
                    .await
            }
            Wait::Join {
                id,
                room,
                key,
                rejoin,
            } => {
                if rejoin {
                    self.left_elsewhere(id, &room).await?;
                }
                self.join(id, room, key, reference).await
            }
            Wait::History { id, room, page } => self.history(id, room, page, reference).await,
            Wait::NotifyLevel { id, target, level } => {
                self.notify_level(id, target, level, reference).await
            }
            Wait::Highlights { id, words } => self.highlights(id, words, reference).await,
            Wait::Push { id, endpoint, keys } => self.push(id, endpoint, keys, reference).await,
            Wait::Search {
                id,
                query,
                limit,
                before,
                before_ts,
            } => {
                self.search(id, &query, limit, (before, before_ts), reference)
                    .await
            }
            Wait::DirectHistory { id, with, page } => {
                self.direct_history(id, with, page, reference).await
            }
            Wait::MarkRead {
                id,
                target,
                message,
                ts,
            } => self.mark_read(id, target, (message, ts), reference).await,
            Wait::Settings { id, always_on } => self.settings(id, always_on, reference).await,
            Wait::Targets {
                id,
                after_ts,
                before_ts,
                limit,
            } => {
                self.targets(id, (after_ts, before_ts), limit, reference)
                    .await
            }
            Wait::ModeQuery { id, room } => self.mode_query(id, room, reference).await,
            Wait::Nick { id, nick } => self.change_nick(id, nick, reference).await,
            Wait::Logout { id, all } => self.logout(id, all, reference).await,
            Wait::ChangePassword { id, old, new } => {
                self.change_password(id, old, new, reference).await
            }
            Wait::DeleteAccount { id, password } => {
                self.delete_account(id, password, reference).await
            }
            Wait::Admin { id, act } => self.administer(id, act, reference).await,
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
                max_lines: settings.max_lines,
                edit_window_secs: settings.edit_window_secs,
            },
            vapid_public_key: self
                .ctx
                .push
                .as_ref()
                .map(|(vapid, _)| vapid.public_key().to_string()),
        }
    }
}

/// `mark_read`s that move a position, per second and at once: enough for a
/// client that marks what it shows as it scrolls, not for one that would
/// make the store write on every message of a busy room.
const MARK_READ_RATE: f64 = 2.0;
const MARK_READ_BURST: u32 = 20;
/// Edits, deletions and reactions one session may make: one a second in
/// the long run (60 a minute), thirty at once.
const EDIT_RATE: f64 = 1.0;
const EDIT_BURST: u32 = 30;
/// Searches one session may make: 20 a minute in the long run, 10 at once
/// (each reads the full-text index).
const SEARCH_RATE: f64 = 1.0 / 3.0;
const SEARCH_BURST: u32 = 10;

/// A stored read position as the router keeps it (from the target as
/// stored, `#room` or an account's key, and its name as spelled); `None`
/// for a name the rules no longer take.
fn read_target(
    (target, shown, id, ts): (String, String, u64, u64),
) -> Option<(Conversation, ReadMark)> {
    let target = if target.starts_with('#') {
        Conversation::Room(RoomName::new(&shown).ok()?)
    } else {
        Conversation::With(Nick::new(&shown).ok()?)
    };
    Some((target, ReadMark { id, ts }))
}

/// A stored notification level (target, shown name, level) as the
/// protocol says it.
fn level_of((target, shown, level): (String, String, String)) -> Option<LevelOf> {
    let level = NotifyLevel::parse(&level)?;
    Some(if target.starts_with('#') {
        LevelOf {
            room: Some(RoomName::new(&shown).ok()?),
            with: None,
            level,
        }
    } else {
        LevelOf {
            room: None,
            with: Some(Nick::new(&shown).ok()?),
            level,
        }
    })
}
