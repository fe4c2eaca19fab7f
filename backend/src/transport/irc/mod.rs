//! The IRC transport: an IRC server face (RFC 1459/2812 and IRCv3 basics)
//! over the shared session and router. Channel `#lobby` is room `lobby`;
//! an IRC nick is a Banter nick, unique across every transport.
//!
//! * [`line`] — parsing and writing IRC lines, and cutting a stream into them.
//! * [`command`] — incoming commands, by family: registration, channels,
//!   messages, queries; each becomes requests for the session.
//! * [`render`] — outgoing: protocol frames as IRC lines and numerics, by
//!   message family.
//! * [`asked`] — what each request asked, kept per `ref`, so its reply
//!   renders as the numeric IRC expects.
//! * [`registration`] — the state machine from connect to `welcome`.
//! * [`caps`] — IRCv3 capabilities; [`numeric`] — reply codes and helpers.
//!
//! The session's handshake timeout is the registration timeout; its idle
//! ping is an IRC `PING`.
//!
//! Flood control ("fakelag", as other servers do it): each connection has
//! a token bucket of `--irc-flood-burst` lines, refilled at
//! `--irc-flood-rate` lines a second. A line that finds the bucket empty
//! is not dropped: it waits, still unread, until a token is there, so a
//! burst is carried out in order, only slower. Meanwhile the connection
//! keeps reading (its output flows as usual); once more than
//! `--irc-flood-backlog` lines (or that many times 512 bytes) wait, the
//! client is disconnected with `ERROR :Closing link: Excess Flood`.

pub mod asked;
pub mod caps;
pub mod command;
mod labels;
pub mod line;
pub mod numeric;
mod order;
pub mod registration;
pub mod render;
pub use render::push_line;
pub mod websocket;

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use banter_protocol::{ErrorCode, Nick, PresenceEvent, RoomName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};

use self::asked::AskedTable;
use self::caps::Caps;
use self::line::{MAX_BODY, MAX_TAGS, Piece, Splitter};
use self::registration::Registration;
use crate::context::Context;
use crate::core::frame::Frame;
use crate::limits::TokenBucket;
use crate::net::proxy_protocol::UnexpectedHeader;
use crate::net::stream::Fill;
use crate::net::{Listen, Stream};
use crate::session::{Inbound, Transport};

const READ_CHUNK: usize = 4096;

/// What every IRC connection of this server shares.
#[derive(Clone)]
pub struct ServerInfo {
    /// When the IRC listener started, Unix milliseconds.
    pub started: u64,
    pub max_rooms: usize,
    /// Flood control: lines at once, lines a second, and lines that may
    /// wait for their turn.
    pub flood_burst: u32,
    pub flood_rate: u32,
    pub flood_backlog: u32,
    /// Recent messages a JOIN replays (see [`render`]).
    pub join_replay: u32,
    /// The Web Push (VAPID) public key, when the server pushes
    /// (`draft/webpush`, ISUPPORT `VAPID`).
    pub vapid: Option<String>,
    /// A message's most bytes and lines (`draft/multiline`'s bounds).
    pub max_text_bytes: usize,
    pub max_lines: usize,
    /// What LUSERS counts.
    pub router: Arc<crate::core::router::Router>,
}

impl std::fmt::Debug for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerInfo")
            .field("started", &self.started)
            .field("max_rooms", &self.max_rooms)
            .finish_non_exhaustive()
    }
}

/// The IRC side of one connection: registration, capabilities, and what
/// rendering needs to know about this client. Small: it lives as long as
/// the connection, idle or not.
#[derive(Debug)]
pub struct Client {
    /// The registered nick, once `welcome` has been rendered.
    nick: Option<Nick>,
    /// What only registration needs, until `welcome` (then dropped).
    registering: Option<Box<Registration>>,
    /// The channels joined, each with its operators as last told (exactly
    /// as many as joined, and no capacity word: most clients join a few).
    channels: Box<[Channel]>,
    caps: Caps,
    /// The `label` of the line being handled, until its first request or
    /// lines take it (see [`labels`]).
    label: labels::Pending,
    /// Lines made at once that wait behind earlier answers (see [`order`]).
    waiting: order::Waiting,
    /// What we are, as last told (`None` until the welcome).
    own: Option<Box<Own>>,
    /// What the requests awaiting replies asked, by their refs.
    asked: AskedTable,
    /// What few connections use, made when first needed.
    rare: Option<Box<Rare>>,
    info: Arc<ServerInfo>,
}

/// A connection's rarely used state: boxed, one word in every other
/// connection's task.
#[derive(Debug, Default)]
struct Rare {
    /// Set by QUIT, with its message.
    quit: Option<Box<str>>,
    /// The last quit or nick change shown, to show it once.
    last_event: Option<Box<(PresenceEvent, Nick, Option<Nick>)>>,
    /// Batches opened for this client (their references).
    batches: u32,
    /// A `draft/multiline` batch the client is sending.
    multiline: Option<Box<command::Multiline>>,
    /// Commands that came before the welcome, to carry out after it (see
    /// [`registration`]).
    held: VecDeque<Box<[u8]>>,
}

/// What we are: our account and real name (for our own extended JOIN),
/// and whether we are a bot (`+B`).
#[derive(Debug, Default)]
struct Own {
    account: Option<Nick>,
    realname: Box<str>,
    bot: bool,
}

impl Client {
    /// Whether we are a bot, as last told.
    fn is_bot(&self) -> bool {
        self.own.as_ref().is_some_and(|o| o.bot)
    }

    /// The rarely used state, made if need be.
    fn rare(&mut self) -> &mut Rare {
        self.rare.get_or_insert_default()
    }

    /// QUIT's message, once the client sent QUIT.
    fn quit(&self) -> Option<&str> {
        self.rare.as_ref()?.quit.as_deref()
    }
}

/// A joined channel.
#[derive(Debug)]
struct Channel {
    room: RoomName,
    /// Who runs it, as last told; `None` (the usual case) costs nothing.
    roles: Option<Box<Roles>>,
}

/// Who runs a channel: what IRC shows as `@`, and changes as MODE.
#[derive(Debug, Default)]
struct Roles {
    /// The owner's and operators' accounts.
    accounts: Box<[Nick]>,
    /// The members logged into those accounts, by nick.
    moderators: Vec<Nick>,
}

impl Channel {
    fn moderators(&self) -> &[Nick] {
        self.roles.as_ref().map_or(&[], |r| &r.moderators)
    }

    /// Whether `account` runs this channel.
    fn is_run_by(&self, account: &Nick) -> bool {
        self.roles
            .as_ref()
            .is_some_and(|r| r.accounts.contains(account))
    }

    /// Sets who runs it (nothing kept when nobody does).
    fn set_roles(&mut self, accounts: Box<[Nick]>, moderators: Vec<Nick>) {
        self.roles = (!accounts.is_empty() || !moderators.is_empty()).then(|| {
            Box::new(Roles {
                accounts,
                moderators,
            })
        });
    }

    /// Keeps the moderators' nicks up to date as members come, go and
    /// rename: `from` leaves (if it was one), `to` becomes one.
    fn moderator_changed(&mut self, from: Option<&Nick>, to: Option<&Nick>) {
        if let Some(roles) = self.roles.as_deref_mut() {
            if let Some(from) = from {
                roles.moderators.retain(|n| n != from);
            }
            if let Some(to) = to.filter(|to| !roles.moderators.contains(to)) {
                roles.moderators.push(to.clone());
            }
        }
    }
}

impl Client {
    pub fn new(info: Arc<ServerInfo>) -> Client {
        Client {
            nick: None,
            registering: Some(Box::default()),
            channels: Box::default(),
            caps: Caps::default(),
            label: labels::Pending::default(),
            waiting: order::Waiting::default(),
            own: None,
            asked: AskedTable::default(),
            rare: None,
            info,
        }
    }

    fn channel(&mut self, room: &RoomName) -> Option<&mut Channel> {
        self.channels.iter_mut().find(|c| &c.room == room)
    }

    fn joined(&mut self, room: &RoomName) {
        if self.channel(room).is_none() {
            let mut channels = std::mem::take(&mut self.channels).into_vec();
            channels.reserve_exact(1);
            channels.push(Channel {
                room: room.clone(),
                roles: None,
            });
            self.channels = channels.into_boxed_slice();
        }
    }

    /// Carries out one line, queueing its requests (a sign of life if it
    /// makes none).
    fn take_line(&mut self, line: &[u8], queue: &mut VecDeque<Inbound>) {
        self.on_line(line, queue);
        if queue.is_empty() {
            queue.push_back(Inbound::Alive);
        }
    }

    /// What a closing connection writes last: the `closing` notice as
    /// IRC shows it, or, after QUIT, `ERROR :Closing link`.
    fn closing_lines(&mut self, closing: Option<Frame>) -> Vec<u8> {
        let mut out = Vec::new();
        match (closing, self.quit()) {
            (Some(frame), _) => self.render(&frame, &mut out),
            (None, Some(reason)) => {
                let me = self.me();
                let text = if reason.is_empty() {
                    format!("Closing link: {me} (Quit)")
                } else {
                    format!("Closing link: {me} (Quit: {reason})")
                };
                line::Line::new(None, "ERROR", &[&text])
                    .text()
                    .write(&mut out);
            }
            (None, None) => {}
        }
        out
    }

    /// QUIT's message, if it gave one.
    fn quit_message(&self) -> Option<String> {
        self.quit().filter(|r| !r.is_empty()).map(str::to_string)
    }

    fn left(&mut self, room: &RoomName) {
        if self.channels.iter().any(|c| &c.room == room) {
            let mut channels = std::mem::take(&mut self.channels).into_vec();
            channels.retain(|c| &c.room != room);
            self.channels = channels.into_boxed_slice();
        }
    }
}

/// Flood control ("fakelag", see the module's docs): a token bucket, and
/// while a line waits for its token, the timer of its turn (boxed, and
/// only then: an idle connection keeps no timer).
struct Flood {
    bucket: TokenBucket,
    lag: Option<Pin<Box<Sleep>>>,
}

impl Flood {
    fn new(info: &ServerInfo) -> Flood {
        Flood {
            bucket: TokenBucket::new(
                f64::from(info.flood_rate),
                info.flood_burst,
                std::time::Instant::now(),
            ),
            lag: None,
        }
    }

    /// `None`: the next line may go now. Else how long it waits.
    fn blocked(&mut self) -> Option<Duration> {
        self.bucket.take(std::time::Instant::now()).err()
    }

    /// No line waits: the timer goes.
    fn settle(&mut self) {
        self.lag = None;
    }

    /// Waits `wait` for the line's turn: ready once it has come.
    fn poll_turn(&mut self, wait: Duration, cx: &mut TaskContext<'_>) -> Poll<()> {
        let at = Instant::now() + wait;
        let lag = self
            .lag
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
        lag.as_mut().reset(at);
        lag.as_mut().poll(cx)
    }
}

/// The client is over its flood backlog: it is disconnected.
fn excess_flood() -> Poll<io::Result<Option<Inbound>>> {
    crate::metrics::metrics().limited(crate::metrics::Limit::IrcFlood);
    Poll::Ready(Ok(Some(Inbound::Unreadable(
        ErrorCode::RateLimited,
        "Excess Flood".into(),
    ))))
}

pub struct IrcConnection {
    stream: Stream,
    splitter: Splitter,
    pending: VecDeque<Inbound>,
    client: Client,
    flood: Flood,
}

impl IrcConnection {
    pub fn new(stream: Stream, info: Arc<ServerInfo>) -> Self {
        IrcConnection {
            stream,
            splitter: Splitter::new(MAX_TAGS + MAX_BODY),
            pending: VecDeque::new(),
            flood: Flood::new(&info),
            client: Client::new(info),
        }
    }

    /// Writes `out` whole. The buffer is each write's own (the connection
    /// keeps none between writes): a write that times out takes the rest
    /// of its bytes with it, and an idle connection holds no buffer.
    async fn write_out(&mut self, out: &[u8]) -> io::Result<()> {
        self.stream.write_all(out).await?;
        self.stream.flush().await
    }

    /// Reads what the socket has into the splitter; notes end of input.
    /// `Some`: the stream cannot be read as IRC.
    fn poll_read_more(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<Option<Inbound>>> {
        match ready!(
            self.stream
                .poll_read_into(cx, &mut self.splitter, READ_CHUNK)
        ) {
            // The peer closed its side; lines already read still count.
            Ok(0) => self.splitter.end(),
            Ok(_) => {}
            Err(e) if UnexpectedHeader::is(&e) => {
                return Poll::Ready(Ok(Some(Inbound::Unreadable(
                    ErrorCode::BadRequest,
                    format!("{e} (start banter with --irc-proxy-protocol)"),
                ))));
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
        Poll::Ready(Ok(None))
    }
}

impl Transport for IrcConnection {
    const TRANSPORT: &'static str = "irc";
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
            // Commands held until the welcome (counted by flood control
            // when they came) go first, in order.
            if let Some(line) = self.client.next_held() {
                self.client.take_line(&line, &mut self.pending);
                continue;
            }
            if self.splitter.complete_lines(1) > 0
                && !self.client.batch_line_next(self.splitter.peek())
                && let Some(wait) = self.flood.blocked()
            {
                // Fakelag: the line waits for a token, unread; more input
                // is read meanwhile, up to the backlog.
                let lines = self.client.info.flood_backlog as usize;
                let bytes = (lines * MAX_BODY).max(MAX_TAGS + MAX_BODY);
                if self.splitter.complete_lines(lines + 1) > lines
                    || self.splitter.buffered() > bytes
                {
                    return excess_flood();
                }
                if self.flood.poll_turn(wait, cx).is_ready() {
                    continue;
                }
                if !self.splitter.ended() {
                    match self.poll_read_more(cx) {
                        Poll::Ready(Ok(None)) => continue,
                        Poll::Ready(other) => return Poll::Ready(other),
                        Poll::Pending => {}
                    }
                }
                return Poll::Pending;
            }
            self.flood.settle();
            let (client, queue) = (&mut self.client, &mut self.pending);
            let ended = self.splitter.ended();
            match self.splitter.next_line() {
                Some(Piece::Line(bytes)) => client.take_line(bytes, queue),
                Some(Piece::TooLong) => client.local(queue, |out, me| {
                    numeric::reply(
                        out,
                        numeric::ERR_INPUTTOOLONG,
                        me,
                        &["Input line was too long"],
                    )
                }),
                None if ended => return Poll::Ready(Ok(None)),
                None => {
                    // Waiting for input: keep no buffers meanwhile.
                    self.splitter.shrink_if_idle();
                    if self.pending.capacity() > 0 {
                        self.pending = VecDeque::new();
                    }
                    if let Some(unreadable) = ready!(self.poll_read_more(cx))? {
                        return Poll::Ready(Ok(Some(unreadable)));
                    }
                }
            }
        }
    }

    async fn send(&mut self, frames: &mut VecDeque<Frame>) -> io::Result<()> {
        // A chat line is about 100 bytes; a join's names and history grow it.
        let mut out = Vec::with_capacity(frames.len().min(64) * 128);
        for frame in frames.drain(..) {
            self.client.render(&frame, &mut out);
        }
        if out.is_empty() {
            return Ok(());
        }
        self.write_out(&out).await
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.stream
            .write_all(format!("PING :{}\r\n", numeric::server()).as_bytes())
            .await?;
        self.stream.flush().await
    }

    async fn close(&mut self, closing: Option<Frame>) {
        let out = self.client.closing_lines(closing);
        let _ = self.write_out(&out).await;
        let _ = self.stream.shutdown().await;
        // Read briefly until the peer closes too, so unread input does not
        // turn our close into a reset that destroys the ERROR line.
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while matches!(self.stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }

    fn idle(&mut self) {
        self.client.asked.shrink();
    }

    fn quit_reason(&self) -> Option<String> {
        self.client.quit_message()
    }
}

impl Fill for Splitter {
    fn fill_with(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.fill(max, read)
    }

    fn release_if_idle(&mut self) {
        self.shrink_if_idle();
    }
}

/// What the IRC connections of this server share (the IRC port's and
/// `/irc`'s alike; `started` is when the server started).
fn server_info(ctx: &Context) -> Arc<ServerInfo> {
    static STARTED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let started = *STARTED.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    });
    numeric::set_server_name(&ctx.settings.server_name());
    Arc::new(ServerInfo {
        started,
        max_rooms: ctx.settings.max_rooms_per_session,
        flood_burst: ctx.settings.irc_flood_burst,
        flood_rate: ctx.settings.irc_flood_rate,
        flood_backlog: ctx.settings.irc_flood_backlog,
        join_replay: ctx.settings.irc_join_replay,
        max_text_bytes: ctx.settings.max_text_bytes,
        max_lines: ctx.settings.max_lines,
        vapid: ctx.push.as_ref().map(|(v, _)| v.public_key().to_string()),
        router: ctx.router.clone(),
    })
}

/// Accepts IRC connections (plain or TLS, by `listen`) until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, listen: Listen) {
    let info = server_info(&ctx);
    super::accept_loop(listener, ctx, listen, move |stream| {
        IrcConnection::new(stream, info.clone())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flood_bucket_allows_a_burst_then_the_rate() {
        let start = std::time::Instant::now();
        let mut flood = TokenBucket::new(2.0, 30, start);
        for _ in 0..30 {
            assert!(flood.take(start).is_ok());
        }
        assert_eq!(
            flood.take(start),
            Err(Duration::from_millis(500)),
            "the burst is spent; the next token comes after 1/rate s"
        );
        assert!(
            flood.take(start + Duration::from_millis(500)).is_ok(),
            "one more after 1/rate s"
        );
        assert!(flood.take(start + Duration::from_millis(500)).is_err());
        let later = start + Duration::from_secs(3600);
        for _ in 0..30 {
            assert!(flood.take(later).is_ok(), "a burst saved up");
        }
        assert!(
            flood.take(later).is_err(),
            "never more than a burst saved up"
        );
    }
}
