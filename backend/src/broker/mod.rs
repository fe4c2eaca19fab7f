//! The broker: joins this node to the other nodes of a cluster through
//! Redis (`--broker redis://…`).
//!
//! One Redis stream, `banter:events`, is the cluster's single order. Every
//! room message, whisper and change of who is where enters it through a
//! Lua script ([`scripts`]) that also updates the shared state atomically:
//! the users hash (who is online on which node, in which rooms: nicks are
//! unique cluster-wide) and the per-room id sequences (ids strictly
//! increasing cluster-wide). Every node reads the whole stream, in order,
//! once, and applies it to its router, where a user of another node is a
//! "ghost" session: it is listed, whois'd and whispered like a local one,
//! and frames for it are dropped, because its own node delivers them. So a
//! message is encoded and fanned out once per node, locally.
//!
//! Three tasks: the [`publisher`](run_publisher) runs the scripts, in the
//! order the router queued them, pipelined (a run of room messages is one
//! script call; under steady traffic at most one pipeline per
//! `--broker-linger`, because a round trip costs more than the small
//! rooms' messages it carries); the [`reader`](run_reader)
//! follows the stream (first storing this node's own messages, so that a
//! sender's echo, its acknowledgement, comes only once a message is both
//! ordered and stored); the [`heartbeat`](run_heartbeat) renews this node's
//! lease, reaps nodes whose lease ran out (their users quit everywhere),
//! restates this node's users after the broker lost touch with it, and
//! announces again the room changes and accounts it could not publish (a
//! room as "read it from the store": the reader then does).

pub mod port;
pub mod scripts;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use banter_protocol::{ErrorCode, Nick, Ref, RoomName};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, ServerErrorKind, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::core::cluster::{Event, Received};
use crate::core::frame::Frame;
use crate::core::router::{Router, SessionId};
use crate::store::{Store, Write, redact};

/// Entries the stream keeps (about; Redis trims in whole nodes). A node
/// that falls further behind than this starts over from a snapshot.
pub const STREAM_LEN: u64 = 100_000;
/// How often a node renews its lease, and how long the lease lasts: a
/// node that stops renewing is given up (its users quit on every node,
/// its nicks are free) within about `LEASE`.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
pub const LEASE: Duration = Duration::from_secs(5);
/// Changes waiting for the publisher; beyond that, senders are told the
/// server is busy.
pub const QUEUE: usize = 64 * 1024;
/// Longest wait for Redis to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read of the stream blocks waiting for entries.
const READ_BLOCK_MS: u64 = 2_000;
/// Most entries one read takes.
const READ_COUNT: usize = 1_024;
/// Most rooms read from the store between two reads of the stream.
const RELOAD_BATCH: usize = 256;
/// A reader that took longer than this between two reads checks that its
/// place in the stream is still there.
const STALL: Duration = Duration::from_secs(1);

/// A change for the cluster, queued by the router under its lock (never
/// waiting) and carried out by the publisher in queue order.
#[derive(Debug)]
pub enum Publish {
    /// A local user's record changed (`record: None`: it is gone). `claim`
    /// takes `key` (refused if a live node has it); `old` is a key given
    /// up (a rename). `reply`, if any, learns whether it was done.
    User {
        key: String,
        record: Option<String>,
        old: Option<String>,
        claim: bool,
        event: Event,
        reply: Option<oneshot::Sender<bool>>,
    },
    /// A room message: `floor` is the highest id this node has seen in
    /// the room. The sender (`session`) is told if it fails.
    Say {
        room: String,
        floor: u64,
        event: Event,
        session: SessionId,
        reference: Option<Ref>,
    },
    /// A whisper to the user keyed `target`.
    Direct {
        target: String,
        floor: u64,
        event: Event,
        session: SessionId,
        reference: Option<Ref>,
    },
    /// Anything else: just announced.
    Event(Event),
    /// Restates every local user (key and record JSON), replacing what the
    /// broker had of this node. Queued like any change, so it is ordered
    /// with them (see [`Router::queue_sync`]).
    Sync { records: Vec<(String, String)> },
}

/// The router's end: this node's name and the publisher's queue.
#[derive(Clone, Debug)]
pub struct Link {
    pub node: Arc<str>,
    pub queue: mpsc::Sender<Publish>,
    /// Set when a change could not be published: the heartbeat then
    /// restates this node's users.
    pub dirty: Arc<AtomicBool>,
    /// Set while this node cannot store its users' messages (the store is
    /// down): new ones are refused meanwhile, and those in the stream wait.
    pub unstored: Arc<AtomicBool>,
    /// Room changes and new accounts made here that could not be
    /// published: the heartbeat announces them again.
    unsent: Arc<Mutex<Unsent>>,
}

/// What this node stored but could not tell the others (a std mutex: held
/// for an insert or a take, never across an `.await`).
#[derive(Debug, Default)]
struct Unsent {
    /// Rooms whose settings changed here since they were last announced
    /// in full: the others are told to read them from the store (the
    /// change itself is not repeated: a later one, made elsewhere
    /// meanwhile, may have replaced it).
    rooms: BTreeSet<RoomName>,
    /// New accounts: announcing one again is harmless.
    accounts: BTreeSet<Nick>,
}

impl Link {
    /// Queues `p` without waiting; `false` if the queue is full (a user's
    /// change is then restated by the next sync, a room's or an account's
    /// announced again by the heartbeat).
    pub fn publish(&self, p: Publish) -> bool {
        match self.queue.try_send(p) {
            Ok(()) => true,
            Err(e) => {
                self.dirty.store(true, Ordering::Relaxed);
                self.unsent(&e.into_inner());
                false
            }
        }
    }

    /// Remembers what of `p`, which was not published, must be announced
    /// again.
    fn unsent(&self, p: &Publish) {
        let Publish::Event(event) = p else { return };
        let mut unsent = self.unsent.lock().unwrap();
        match event {
            Event::Room { room, .. } => {
                unsent.rooms.insert(room.clone());
            }
            Event::Reload { rooms, .. } => unsent.rooms.extend(rooms.iter().cloned()),
            Event::Account { name, .. } => {
                unsent.accounts.insert(name.clone());
            }
            _ => {}
        }
    }

    /// Queues again what could not be published: the rooms to read from
    /// the store, then each account. What does not fit is kept for the
    /// next try.
    fn republish(&self) {
        let Unsent { rooms, accounts } = std::mem::take(&mut *self.unsent.lock().unwrap());
        let node = self.node.to_string();
        if !rooms.is_empty() {
            info!(
                rooms = rooms.len(),
                "announcing rooms whose changes were not published"
            );
            let rooms = rooms.into_iter().collect();
            let node = node.clone();
            self.publish(Publish::Event(Event::Reload { node, rooms }));
        }
        for name in accounts {
            let node = node.clone();
            self.publish(Publish::Event(Event::Account { node, name }));
        }
    }
}

/// A connected broker, before its tasks run.
pub struct Broker {
    pub link: Link,
    queue: mpsc::Receiver<Publish>,
    client: redis::Client,
    scripts: Arc<Scripts>,
    /// Under steady traffic, the publisher sends at most one pipeline per
    /// this long (`--broker-linger`).
    linger: Duration,
}

/// The scripts, by name: their source and hash.
struct Scripts {
    sha: HashMap<&'static str, String>,
    source: HashMap<&'static str, String>,
}

impl Scripts {
    fn new() -> Self {
        let mut sha = HashMap::new();
        let mut source = HashMap::new();
        for (name, code) in scripts::all() {
            sha.insert(name, redis::Script::new(&code).get_hash().to_string());
            source.insert(name, code);
        }
        Scripts { sha, source }
    }

    /// Appends `EVALSHA` of script `name` with `args` to `pipe` (no keys:
    /// the scripts name their keys, which is fine for a single Redis).
    fn call(&self, pipe: &mut redis::Pipeline, name: &str, args: &[&str]) {
        let call = self.start(pipe, name);
        for a in args {
            call.arg(*a);
        }
    }

    /// Appends `EVALSHA` of script `name` to `pipe`, its arguments to
    /// follow (`arg`).
    fn start<'p>(&self, pipe: &'p mut redis::Pipeline, name: &str) -> &'p mut redis::Pipeline {
        pipe.cmd("EVALSHA").arg(&self.sha[name]).arg(0)
    }
}

/// One connection to Redis that comes back by itself: made when first
/// needed, with the scripts loaded, and dropped when it breaks (the next
/// query makes a new one).
struct Redis {
    client: redis::Client,
    scripts: Arc<Scripts>,
    /// How long an answer may take (a blocking read waits longer).
    answer: Duration,
    conn: Option<MultiplexedConnection>,
}

impl Redis {
    fn new(client: redis::Client, scripts: Arc<Scripts>, answer: Duration) -> Redis {
        Redis {
            client,
            scripts,
            answer,
            conn: None,
        }
    }

    async fn connection(&mut self) -> redis::RedisResult<&mut MultiplexedConnection> {
        if self.conn.is_none() {
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(ANSWER_TIMEOUT))
                .set_response_timeout(Some(self.answer));
            let mut conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.load(&mut conn).await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just made"))
    }

    async fn load(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        for code in self.scripts.source.values() {
            let _: String = redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(code)
                .query_async(conn)
                .await?;
        }
        Ok(())
    }

    /// Runs `pipe`; loads the scripts again if Redis forgot them (it was
    /// restarted), and drops the connection if it broke.
    async fn query<T: redis::FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        let reused = self.conn.is_some();
        let mut result = match self.connection().await {
            Ok(conn) => pipe.query_async(conn).await,
            Err(e) => Err(e),
        };
        // A connection that Redis closed while it sat idle (a restart)
        // fails at once, before sending anything: once more on a new one.
        // (Rarely, Redis died while running it: then it runs twice.)
        if reused && matches!(&result, Err(e) if e.is_connection_dropped()) {
            self.conn = None;
            result = match self.connection().await {
                Ok(conn) => pipe.query_async(conn).await,
                Err(e) => Err(e),
            };
        }
        let result = match result {
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let mut conn = self.conn.take().expect("it answered");
                match self.load(&mut conn).await {
                    Ok(()) => {
                        let again = pipe.query_async(&mut conn).await;
                        self.conn = Some(conn);
                        again
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        if let Err(e) = &result
            && (e.is_io_error()
                || e.is_connection_dropped()
                || e.is_timeout()
                || e.is_connection_refusal())
        {
            self.conn = None;
        }
        result
    }

    /// Runs a pipeline of one command; its answer.
    async fn only<T: redis::FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> redis::RedisResult<T> {
        let mut all: Vec<T> = self.query(pipe).await?;
        all.pop()
            .ok_or_else(|| redis::RedisError::from((ErrorKind::Parse, "an empty answer")))
    }

    /// Runs one command.
    async fn one<T: redis::FromRedisValue>(&mut self, cmd: redis::Cmd) -> redis::RedisResult<T> {
        let mut pipe = redis::pipe();
        pipe.add_command(cmd);
        self.only(&pipe).await
    }

    /// Runs one script.
    async fn script<T: redis::FromRedisValue>(
        &mut self,
        name: &str,
        args: &[&str],
    ) -> redis::RedisResult<T> {
        let mut pipe = redis::pipe();
        self.scripts.call(&mut pipe, name, args);
        self.only(&pipe).await
    }
}

/// A node name as given, or `<host>-<random>`: unique per start, because a
/// restarted node is a new node (its old users were reaped).
pub fn node_name(given: Option<&str>) -> anyhow::Result<String> {
    let name = match given {
        Some(name) => name.to_string(),
        None => {
            let host = crate::config::host_name();
            let mut bytes = [0u8; 4];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let host: String = host
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(32)
                .collect();
            let host = if host.is_empty() { "node".into() } else { host };
            format!("{host}-{}", u32::from_be_bytes(bytes))
        }
    };
    anyhow::ensure!(
        !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "the node name {name:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
    );
    Ok(name)
}

impl Broker {
    /// Connects to Redis at `url` as node `node` (so that a wrong URL
    /// stops the start with a clear message).
    pub async fn connect(url: &str, node: String, linger: Duration) -> anyhow::Result<Broker> {
        let client = redis::Client::open(url)
            .with_context(|| format!("the broker URL {} is not valid", redact(url)))?;
        let scripts = Arc::new(Scripts::new());
        let mut redis = Redis::new(client.clone(), scripts.clone(), ANSWER_TIMEOUT);
        redis
            .connection()
            .await
            .with_context(|| format!("cannot reach the broker at {}", redact(url)))?;
        let (tx, queue) = mpsc::channel(QUEUE);
        Ok(Broker {
            link: Link {
                node: node.into(),
                queue: tx,
                dirty: Arc::new(AtomicBool::new(false)),
                unstored: Arc::new(AtomicBool::new(false)),
                unsent: Arc::default(),
            },
            queue,
            client,
            scripts,
            linger,
        })
    }

    /// Takes the lease, learns the cluster's users (as ghosts in
    /// `router`) and starts the publisher, reader and heartbeat. Returns
    /// what `/readyz` asks.
    pub async fn start(
        self,
        router: Arc<Router>,
        store: Option<Store>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Running> {
        let Broker {
            link,
            queue,
            client,
            scripts,
            linger,
        } = self;
        let ctx = Arc::new(Shared {
            link,
            client,
            scripts,
            healthy: AtomicBool::new(true),
            reading: AtomicBool::new(true),
            stop_reading: CancellationToken::new(),
            router,
            store,
        });
        let mut redis = ctx.redis(ANSWER_TIMEOUT);
        heartbeat(&mut redis, &ctx.link.node).await?;
        // A node restarted under the same --node-name may find its former
        // self's users in the broker: they are gone (it has none yet).
        let len = STREAM_LEN.to_string();
        redis
            .script::<Vec<String>>("sync", &[&ctx.link.node, &len])
            .await?;
        let last = bootstrap(&mut redis, &ctx.router, false).await?;
        info!(
            node = %ctx.link.node,
            users = ctx.router.stats().sessions,
            "joined the cluster"
        );
        tokio::spawn(run_publisher(ctx.clone(), redis, queue, linger));
        tokio::spawn(run_reader(ctx.clone(), last, ctx.stop_reading.clone()));
        tokio::spawn(run_heartbeat(ctx.clone(), shutdown));
        Ok(Running { ctx })
    }
}

/// The broker's tasks, running: what `/readyz` checks (the broker
/// answered the last heartbeat, and the stream is being read), and how
/// the node leaves the cluster at shutdown.
#[derive(Clone)]
pub struct Running {
    ctx: Arc<Shared>,
}

impl Running {
    pub async fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.ctx.healthy.load(Ordering::Relaxed),
            "the broker is unreachable; reconnecting"
        );
        anyhow::ensure!(
            self.ctx.reading.load(Ordering::Relaxed),
            "this node lost the broker's stream; reconnecting"
        );
        Ok(())
    }

    /// Leaves the cluster at shutdown: lets the publisher send what is
    /// queued (the sessions' quits), briefly, then gives up the lease and
    /// removes what is left of this node's users at once, rather than
    /// when the lease would have run out.
    pub async fn leave(&self) {
        let queue = &self.ctx.link.queue;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while queue.capacity() < queue.max_capacity() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The reader stores (and acknowledges) what it reads back of this
        // node's messages: a moment to read the last of them.
        tokio::time::sleep(Duration::from_millis(200)).await;
        self.ctx.stop_reading.cancel();
        let mut redis = self.ctx.redis(ANSWER_TIMEOUT);
        let node = &*self.ctx.link.node;
        let mut del = redis::cmd("DEL");
        del.arg(scripts::lease(node));
        let left = match redis.one::<i64>(del).await {
            Ok(_) => redis
                .script::<i64>("reap", &[node, &STREAM_LEN.to_string()])
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        match left {
            Ok(()) => info!(%node, "left the cluster"),
            Err(e) => warn!(error = %e, "could not leave the cluster; the lease will run out"),
        }
    }
}

struct Shared {
    link: Link,
    client: redis::Client,
    scripts: Arc<Scripts>,
    /// The broker answered the last heartbeat.
    healthy: AtomicBool,
    /// The stream reader's last read worked.
    reading: AtomicBool,
    /// Stops the stream reader: at shutdown, only once this node's last
    /// changes are published and read back (so its own messages are
    /// stored, not just sent to the others).
    stop_reading: CancellationToken,
    router: Arc<Router>,
    store: Option<Store>,
}

impl Shared {
    fn redis(&self, answer: Duration) -> Redis {
        Redis::new(self.client.clone(), self.scripts.clone(), answer)
    }
}

/// Renews the lease; answers whether it was alive and the nodes there are.
async fn heartbeat(redis: &mut Redis, node: &str) -> redis::RedisResult<(bool, Vec<String>)> {
    let lease = LEASE.as_millis().to_string();
    let (alive, nodes): (i64, Vec<String>) = redis.script("heartbeat", &[node, &lease]).await?;
    Ok((alive == 1, nodes))
}

/// Takes a snapshot of the cluster's users into the router (`announce`:
/// tell local members what changed) and answers the stream position it
/// is from.
async fn bootstrap(redis: &mut Redis, router: &Router, announce: bool) -> anyhow::Result<String> {
    let (last, records): (String, Vec<String>) = redis.script("snapshot", &[]).await?;
    let mut users = Vec::with_capacity(records.len());
    for r in records {
        match serde_json::from_str(&r) {
            Ok(user) => users.push(user),
            Err(e) => warn!(error = %e, "skipping a damaged user record in the broker"),
        }
    }
    router.reconcile(users, None, announce);
    Ok(last)
}

/// Runs the scripts of queued changes, in order, many per round trip.
async fn run_publisher(
    ctx: Arc<Shared>,
    mut redis: Redis,
    mut queue: mpsc::Receiver<Publish>,
    linger: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    // When the next pipeline may go.
    let mut next = tokio::time::Instant::now();
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        // At most one pipeline per `linger`: a change after a quiet spell
        // goes at once; in steady traffic, what comes meanwhile is gathered
        // (a round trip costs Redis and this node more CPU than the
        // changes it carries).
        if tokio::time::Instant::now() < next && batch.len() < BATCH {
            tokio::time::sleep_until(next).await;
            while batch.len() < BATCH {
                match queue.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        // A full pipeline leaves more waiting: the next goes at once.
        next = tokio::time::Instant::now();
        if batch.len() < BATCH {
            next += linger;
        }
        let mut pipe = redis::pipe();
        // Each change answers for itself: one script's error does not
        // fail the others, which did run.
        pipe.ignore_errors();
        let shapes = commands(&ctx, &mut pipe, &batch);
        match redis.query::<Vec<Value>>(&pipe).await {
            Ok(values) => {
                let mut unseeded = Vec::new();
                let mut changes = batch.drain(..);
                for (shape, value) in shapes.into_iter().zip(values) {
                    // Answers first: zip takes from its first iterator first.
                    for (value, p) in shape.answers(value).into_iter().zip(changes.by_ref()) {
                        unseeded.extend(settle(&ctx, p, value));
                    }
                }
                // Without an answer (Redis answered fewer commands).
                for p in changes {
                    fail(&ctx, p, Lost::Maybe);
                }
                // Messages to a sequence Redis does not have: seeded from
                // the store, then sent again, in order.
                for p in unseeded {
                    let again = match reseed(&ctx, &mut redis, &p).await {
                        Ok(()) => {
                            let mut pipe = redis::pipe();
                            let shapes = commands(&ctx, &mut pipe, std::slice::from_ref(&p));
                            redis.query::<Vec<Value>>(&pipe).await.map(|mut v| {
                                v.pop().and_then(|value| shapes[0].answers(value).pop())
                            })
                        }
                        Err(e) => Err(e),
                    };
                    match again {
                        Ok(Some(value)) if !is_unseeded(&value) => {
                            settle(&ctx, p, value);
                        }
                        other => {
                            warn!(answer = ?other, "could not seed a sequence from the store");
                            fail(&ctx, p, Lost::Unreachable);
                        }
                    }
                }
            }
            Err(e) => {
                error!(error = %e, changes = batch.len(), "could not publish to the broker");
                ctx.healthy.store(false, Ordering::Relaxed);
                ctx.link.dirty.store(true, Ordering::Relaxed);
                // Refused at connect: nothing reached Redis. Otherwise it
                // may have run before the answer was lost.
                let lost = if e.is_connection_refusal() {
                    Lost::Unreachable
                } else {
                    Lost::Maybe
                };
                for p in batch.drain(..) {
                    fail(&ctx, p, lost);
                }
                // Don't spin on a broker that is down.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Most changes the publisher sends in one pipeline.
const BATCH: usize = 256;

/// What one command of a pipeline answers for.
enum Shape {
    /// One change.
    One,
    /// This many room messages in a row, one script call: answered by an
    /// array with an answer for each.
    Says(usize),
}

impl Shape {
    /// The answers, one per change, of a command of this shape: for
    /// room messages, [`Value::Nil`] each (a failure) if the array is not
    /// what was asked.
    fn answers(&self, value: Value) -> Vec<Value> {
        match (self, value) {
            (Shape::One, value) => vec![value],
            (Shape::Says(n), Value::Array(answers)) if answers.len() == *n => answers,
            (Shape::Says(n), value @ Value::ServerError(_)) => vec![value; *n],
            (Shape::Says(n), value) => {
                error!(answer = ?value, messages = n, "the broker answered room messages oddly");
                vec![Value::Nil; *n]
            }
        }
    }
}

/// Appends to `pipe` the commands that carry out `batch`, in order: one
/// script call for each run of room messages (Redis runs a script call
/// once, whatever its length), one command for each other change.
fn commands(ctx: &Shared, pipe: &mut redis::Pipeline, batch: &[Publish]) -> Vec<Shape> {
    let mut shapes = Vec::new();
    let mut rest = batch;
    while let Some(first) = rest.first() {
        let says = rest
            .iter()
            .take_while(|p| matches!(p, Publish::Say { .. }))
            .count();
        if says == 0 {
            command(ctx, pipe, first);
            shapes.push(Shape::One);
            rest = &rest[1..];
        } else {
            say(ctx, pipe, &rest[..says]);
            shapes.push(Shape::Says(says));
            rest = &rest[says..];
        }
    }
    shapes
}

/// Appends the script call that numbers and announces `says`, room
/// messages all.
fn say(ctx: &Shared, pipe: &mut redis::Pipeline, says: &[Publish]) {
    let call = ctx.scripts.start(pipe, "say");
    call.arg(STREAM_LEN).arg(seedable(ctx));
    for p in says {
        let Publish::Say {
            room, floor, event, ..
        } = p
        else {
            unreachable!("only room messages are said together")
        };
        call.arg(room.as_str())
            .arg(*floor)
            .arg(serde_json::to_string(event).expect("events serialize"));
    }
}

/// Whether this node can seed a lost sequence from its store (`1`), an
/// argument of the message scripts.
fn seedable(ctx: &Shared) -> &'static str {
    if ctx.store.is_some() { "1" } else { "0" }
}

/// Appends the script (or command) that carries out `p`, any change but
/// a room message.
fn command(ctx: &Shared, pipe: &mut redis::Pipeline, p: &Publish) {
    let len = STREAM_LEN.to_string();
    let json = |event: &Event| serde_json::to_string(event).expect("events serialize");
    match p {
        Publish::User {
            key,
            record,
            old,
            claim,
            event,
            ..
        } => {
            let args = [
                key.as_str(),
                record.as_deref().unwrap_or(""),
                old.as_deref().unwrap_or(""),
                if *claim { "1" } else { "0" },
                &ctx.link.node,
                &json(event),
                &len,
            ];
            ctx.scripts.call(pipe, "user", &args);
        }
        Publish::Say { .. } => say(ctx, pipe, std::slice::from_ref(p)),
        Publish::Direct {
            target,
            floor,
            event,
            ..
        } => {
            let args = [
                target.as_str(),
                &floor.to_string(),
                &json(event),
                &len,
                seedable(ctx),
            ];
            ctx.scripts.call(pipe, "direct", &args);
        }
        Publish::Sync { records } => {
            let mut args: Vec<&str> = vec![&ctx.link.node, &len];
            for (key, record) in records {
                args.push(key);
                args.push(record);
            }
            ctx.scripts.call(pipe, "sync", &args);
        }
        Publish::Event(event) => {
            pipe.cmd("XADD")
                .arg(scripts::EVENTS)
                .arg("MAXLEN")
                .arg("~")
                .arg(STREAM_LEN)
                .arg("*")
                .arg("e")
                .arg(json(event));
        }
    }
}

/// Whether a message's answer says its sequence must be seeded first.
fn is_unseeded(value: &Value) -> bool {
    matches!(value, Value::Array(a) if matches!(a.first(), Some(Value::Int(-1))))
}

/// Acts on Redis's answer to `p`; gives `p` back if its sequence must be
/// seeded first.
fn settle(ctx: &Shared, p: Publish, value: Value) -> Option<Publish> {
    let m = crate::metrics::metrics();
    if let Value::ServerError(e) = &value {
        error!(error = ?e, "the broker refused a change");
        ctx.link.dirty.store(true, Ordering::Relaxed);
        fail(ctx, p, Lost::Refused);
        return None;
    }
    // A message's answer that was not understood ([`Shape::answers`]).
    // It may have run.
    if matches!(p, Publish::Say { .. }) && value == Value::Nil {
        fail(ctx, p, Lost::Maybe);
        return None;
    }
    if matches!(p, Publish::Say { .. } | Publish::Direct { .. }) && is_unseeded(&value) {
        return Some(p);
    }
    m.broker_published.inc();
    match p {
        Publish::Sync { records } => {
            let refused: Vec<String> =
                redis::FromRedisValue::from_redis_value(value).unwrap_or_default();
            info!(
                users = records.len(),
                refused = refused.len(),
                "restated this node's users to the broker"
            );
            if !refused.is_empty() {
                ctx.router.close_nicks(&refused);
            }
        }
        Publish::User {
            reply: Some(reply), ..
        } => {
            let _ = reply.send(matches!(value, Value::Int(1)));
        }
        // Not this node's record any more: the next sync restates them all.
        Publish::User { .. } if matches!(value, Value::Int(0)) => {
            ctx.link.dirty.store(true, Ordering::Relaxed);
        }
        _ => {}
    }
    None
}

/// Why a change was not carried out, or may not have been.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Lost {
    /// Redis could not be reached: nothing was sent.
    Unreachable,
    /// Redis answered it with an error: it was not carried out.
    Refused,
    /// Its answer was lost or not understood: it may have been.
    Maybe,
}

/// `p` was not carried out (or may not have been, as `lost` says): its
/// sender is told; a waiting claim learns it from the dropped reply.
fn fail(ctx: &Shared, p: Publish, lost: Lost) {
    crate::metrics::metrics().broker_failed.inc();
    // Maybe it ran: announcing a room or an account twice does no harm.
    ctx.link.unsent(&p);
    if let Publish::Say {
        session, reference, ..
    }
    | Publish::Direct {
        session, reference, ..
    } = p
    {
        ctx.router.send_to(session, unsent(reference, lost));
    }
}

/// Seeds the sequence `p` numbers from (its room's, or the whispers') with
/// the highest id the store has, so that ids go on above every id ever
/// given even after Redis lost its data.
async fn reseed(ctx: &Shared, redis: &mut Redis, p: &Publish) -> redis::RedisResult<()> {
    let store_error = |e: anyhow::Error| {
        redis::RedisError::from((ErrorKind::Io, "the store did not answer", format!("{e:#}")))
    };
    let store = ctx.store.as_ref().expect("only nodes with a store seed");
    let (kind, name, stored, floor) = match p {
        Publish::Say {
            room, floor, event, ..
        } => {
            let Event::Say { message, .. } = event else {
                unreachable!("a say carries a say")
            };
            let stored = store
                .room_last_id(&message.room)
                .await
                .map_err(store_error)?;
            ("room", room.as_str(), stored, *floor)
        }
        Publish::Direct { floor, .. } => {
            let stored = store.last_direct_id().await.map_err(store_error)?;
            ("direct", "", stored, *floor)
        }
        _ => return Ok(()),
    };
    let value = stored.max(floor).to_string();
    // A room's first message since Redis started empty (or ever).
    debug!(kind, name, from = %value, "seeding a sequence from the store");
    redis.script::<i64>("seed", &[kind, name, &value]).await?;
    Ok(())
}

/// The error a sender gets for a message the broker did not take, or may
/// not have taken.
fn unsent(reference: Option<Ref>, lost: Lost) -> Frame {
    let message = match lost {
        Lost::Maybe => {
            "the cluster's broker did not answer, so your message may not have been sent; \
             if it does not appear, send it again"
        }
        Lost::Unreachable => {
            "the cluster's broker is unreachable, so your message was not sent; try again"
        }
        Lost::Refused => {
            "the cluster's broker refused your message, so it was not sent; \
             the server's log says why"
        }
    };
    Frame::error(ErrorCode::Internal, message, reference)
}

/// Follows the stream from `last`, applying each batch to the router
/// after storing this node's own messages in it.
async fn run_reader(ctx: Arc<Shared>, mut last: String, shutdown: CancellationToken) {
    let mut redis = ctx.redis(ANSWER_TIMEOUT + Duration::from_millis(READ_BLOCK_MS));
    let mut backoff = Duration::from_millis(100);
    // After a failure, or a pause (storing was slow): check that the
    // stream still has our place first. A read from a place that was
    // trimmed away does not fail: it quietly starts at the oldest entry.
    let mut lost = false;
    let mut read_at = std::time::Instant::now();
    // Rooms to read from the store: another node could not announce a
    // change to them, or this node may have missed some (it starts over).
    let mut stale = BTreeSet::new();
    loop {
        if lost || read_at.elapsed() > STALL {
            match resume_point(&mut redis, &ctx, &last).await {
                Ok(position) => {
                    if lost {
                        info!("reading the broker's stream again");
                    }
                    if position != last {
                        // Entries between were lost: their room changes too.
                        stale.extend(ctx.router.loaded_rooms());
                    }
                    last = position;
                    lost = false;
                }
                Err(e) => {
                    warn!(error = %e, "cannot reach the broker; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK_MS)
            .arg("STREAMS")
            .arg(scripts::EVENTS)
            .arg(&last);
        let value = tokio::select! {
            _ = shutdown.cancelled() => return,
            value = redis.one::<Value>(cmd) => value,
        };
        read_at = std::time::Instant::now();
        match value {
            Ok(value) => {
                backoff = Duration::from_millis(100);
                let entries = parse_read(value);
                crate::metrics::metrics()
                    .broker_read
                    .inc_by(entries.len() as u64);
                if let Some((id, _)) = entries.last() {
                    last = id.clone();
                }
                let events: Vec<Received> = entries.into_iter().filter_map(|(_, r)| r).collect();
                ctx.reading.store(true, Ordering::Relaxed);
                for r in &events {
                    if let Event::Reload { node, rooms } = &r.event
                        && **node != *ctx.link.node
                    {
                        stale.extend(rooms.iter().cloned());
                    }
                }
                // Rooms that devices here are about to be put in.
                if let Some(store) = &ctx.store {
                    for room in ctx.router.rooms_to_load(&events) {
                        match store
                            .load_room(&room, ctx.router.config().history_len)
                            .await
                        {
                            Ok(state) => {
                                let _ = ctx.router.insert_room(room, state);
                            }
                            Err(e) => warn!(error = %e, %room, "could not load a room"),
                        }
                    }
                }
                // Unstored (shutting down): not acknowledged either.
                if !events.is_empty()
                    && let Some(refused) = persist_own(&ctx, &events, &shutdown).await
                {
                    let events = bounce(&ctx, events, &refused);
                    ctx.router.apply_stream(events);
                }
                if !stale.is_empty() {
                    reload(&ctx, &mut stale).await;
                }
            }
            Err(e) => {
                ctx.reading.store(false, Ordering::Relaxed);
                warn!(error = %e, "lost the broker's stream; reconnecting");
                lost = true;
            }
        }
    }
}

/// Reads the `stale` rooms this node holds from the store and brings
/// them in line with it. The read comes after every entry applied so far
/// was read from the stream, so after their changes were stored: the
/// store's state is at least as new. Rooms the store did not answer for,
/// and those past [`RELOAD_BATCH`], stay `stale` for after the next read.
async fn reload(ctx: &Shared, stale: &mut BTreeSet<RoomName>) {
    let Some(store) = &ctx.store else {
        // Without a store, room settings live in each node's memory only.
        stale.clear();
        return;
    };
    let mut loaded = Vec::new();
    while let Some(room) = stale.first().cloned()
        && loaded.len() < RELOAD_BATCH
    {
        if !ctx.router.has_room(&room) {
            stale.remove(&room);
            continue;
        }
        match store.load_room(&room, 0).await {
            Ok(state) => {
                stale.remove(&room);
                loaded.push((room, state));
            }
            Err(e) => {
                warn!(error = %e, %room, rooms = stale.len(), "could not read rooms from the store; retrying");
                break;
            }
        }
    }
    if !loaded.is_empty() {
        debug!(rooms = loaded.len(), "read rooms from the store");
        ctx.router.reload_rooms(loaded);
    }
}

/// Where to go on reading after a failure: where it stopped, if the
/// stream still has that entry (nothing was missed); otherwise (Redis
/// lost or trimmed it) a fresh snapshot, whose differences local members
/// are told.
async fn resume_point(redis: &mut Redis, ctx: &Shared, last: &str) -> anyhow::Result<String> {
    if last != "0-0" {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(scripts::EVENTS).arg(last).arg(last);
        let found: Value = redis.one(cmd).await?;
        if matches!(&found, Value::Array(a) if !a.is_empty()) {
            return Ok(last.to_string());
        }
        warn!(
            position = last,
            "the broker no longer has this node's place in its stream; starting over from a snapshot"
        );
    }
    bootstrap(redis, &ctx.router, true).await
}

/// Takes out of `events` this node's whispers the store refused (an
/// offline account's full mailbox), telling their senders why.
fn bounce(ctx: &Shared, events: Vec<Received>, refused: &[u64]) -> Vec<Received> {
    if refused.is_empty() {
        return events;
    }
    let mailbox = ctx.store.as_ref().map(Store::mailbox).unwrap_or_default();
    events
        .into_iter()
        .filter(|r| match &r.event {
            Event::Direct {
                node,
                session,
                reference,
                message,
            } if **node == *ctx.link.node && refused.contains(&r.id) => {
                let why = format!(
                    "{} is offline and has as many whispers waiting as it may ({} in all, {} from one sender); yours was not kept",
                    message.to, mailbox.per_recipient, mailbox.per_sender
                );
                let error = Frame::error(ErrorCode::MailboxFull, why, reference.clone());
                ctx.router.send_to(*session, error);
                false
            }
            _ => true,
        })
        .collect()
}

/// Stores the room messages and whispers this node sent, before anyone
/// here sees them: a sender's echo is its acknowledgement, so it must mean
/// "stored". Retries until the store takes them (meanwhile nothing here is
/// delivered, and `/readyz` reports the store); answers the ids of the
/// whispers refused for a full mailbox, or `None` if it gave up (shutting
/// down).
///
/// A whisper to a logged-in user, wherever it is online, is stored as
/// waiting under its account, as on one node: the node it is delivered on
/// marks it delivered once the recipient's session confirmed it read it.
/// That node stores it too (the same row: the first insert counts), so
/// the row is there before the confirmation, whichever node's commit
/// comes first.
async fn persist_own(
    ctx: &Shared,
    events: &[Received],
    shutdown: &CancellationToken,
) -> Option<Vec<u64>> {
    let Some(store) = &ctx.store else {
        return Some(Vec::new());
    };
    let mut messages = Vec::new();
    let mut directs = Vec::new();
    let mut unconfirmed = Vec::new();
    let me = &*ctx.link.node;
    for r in events {
        match &r.event {
            Event::Say { node, message, .. } if **node == *ctx.link.node => {
                let mut m = message.clone();
                (m.id, m.ts) = (r.id, r.ts);
                messages.push(m);
            }
            Event::Direct { node, message, .. }
                if **node == *me || r.target.as_deref() == Some(me) =>
            {
                let mut d = message.clone();
                (d.id, d.ts) = (r.id, r.ts);
                let online = r
                    .target
                    .as_ref()
                    .and_then(|_| ctx.router.online_account(&d.to));
                match online {
                    Some(account) => unconfirmed.push((d, account)),
                    // To a guest, or to an offline account (which waits).
                    None if **node == *me => {
                        let pending = r.target.is_none() && ctx.router.is_account(&d.to);
                        directs.push((d, pending));
                    }
                    // To a guest here: its sender's node stores it.
                    None => {}
                }
            }
            _ => {}
        }
    }
    if messages.is_empty() && directs.is_empty() && unconfirmed.is_empty() {
        return Some(Vec::new());
    }
    let mut backoff = Duration::from_millis(50);
    loop {
        let (m, d, u) = (messages.clone(), directs.clone(), unconfirmed.clone());
        let stored = store
            .request(|reply| Write::Persist {
                messages: m,
                directs: d,
                unconfirmed: u,
                mailbox: Some(store.mailbox()),
                reply,
            })
            .await;
        match stored {
            Ok(refused) => {
                if ctx.link.unstored.swap(false, Ordering::Relaxed) {
                    info!("storing messages again");
                }
                return Some(refused);
            }
            Err(e) if shutdown.is_cancelled() => {
                error!(error = %e, "shutting down with messages not stored");
                return None;
            }
            Err(e) => {
                ctx.link.unstored.store(true, Ordering::Relaxed);
                warn!(error = %e, "could not store this node's messages; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// The entries of an `XREAD` answer: id and event (`None`: unreadable,
/// logged and skipped).
fn parse_read(value: Value) -> Vec<(String, Option<Received>)> {
    let streams = match value {
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return Vec::new(),
    };
    let mut out = Vec::new();
    for stream in streams {
        let Value::Array(mut parts) = stream else {
            continue;
        };
        let Some(Value::Array(entries)) = parts.pop() else {
            continue;
        };
        for entry in entries {
            let Value::Array(mut entry) = entry else {
                continue;
            };
            if entry.len() != 2 {
                continue;
            }
            let fields = entry.pop().expect("two");
            let Some(id) = text(entry.pop().expect("two")) else {
                continue;
            };
            let received = parse_entry(fields);
            if received.is_none() {
                warn!(entry = %id, "skipping an unreadable entry of the broker's stream");
            }
            out.push((id, received));
        }
    }
    out
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b).ok(),
        Value::SimpleString(s) => Some(s),
        _ => None,
    }
}

fn parse_entry(fields: Value) -> Option<Received> {
    let Value::Array(fields) = fields else {
        return None;
    };
    let mut it = fields.into_iter();
    let (mut event, mut id, mut ts, mut target, mut away) = (None, 0, 0, None, None);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let (k, v) = (text(k)?, text(v)?);
        match k.as_str() {
            "e" => match serde_json::from_str::<Event>(&v) {
                Ok(e) => event = Some(e),
                Err(e) => {
                    debug!(error = %e, "unreadable event");
                    return None;
                }
            },
            "id" => id = v.parse().ok()?,
            "ts" => ts = v.parse().ok()?,
            "to" => target = Some(v),
            "away" => away = Some(v),
            _ => {}
        }
    }
    Some(Received {
        event: event?,
        id,
        ts,
        target,
        away,
    })
}

/// Renews the lease every [`HEARTBEAT`], reaps nodes whose lease ran out,
/// and restates this node's users when the broker lost them (this node's
/// lease had run out, or Redis lost its data) or a change could not be
/// published.
async fn run_heartbeat(ctx: Arc<Shared>, shutdown: CancellationToken) {
    let mut redis = ctx.redis(ANSWER_TIMEOUT);
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let (alive, nodes) = match heartbeat(&mut redis, &ctx.link.node).await {
            Ok(beat) => beat,
            Err(e) => {
                ctx.healthy.store(false, Ordering::Relaxed);
                crate::metrics::metrics().broker_up.set(0);
                ctx.link.dirty.store(true, Ordering::Relaxed);
                warn!(error = %e, "could not renew this node's lease in the broker");
                continue;
            }
        };
        crate::metrics::metrics().broker_up.set(1);
        if !alive {
            warn!(node = %ctx.link.node, "the broker had given this node up; restating its users");
            ctx.link.dirty.store(true, Ordering::Relaxed);
        }
        if ctx.link.dirty.swap(false, Ordering::Relaxed) && !ctx.router.queue_sync() {
            ctx.link.dirty.store(true, Ordering::Relaxed);
        }
        ctx.link.republish();
        for node in nodes.iter().filter(|n| **n != *ctx.link.node) {
            let len = STREAM_LEN.to_string();
            match redis.script::<i64>("reap", &[node, &len]).await {
                Ok(1) => info!(%node, "a node's lease ran out; its users are gone"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, %node, "could not check a node's lease"),
            }
        }
        ctx.healthy.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_names() {
        assert!(node_name(Some("a-1.b_c")).is_ok());
        assert!(node_name(Some("")).is_err());
        assert!(node_name(Some("a b")).is_err());
        assert!(node_name(Some("a\"b")).is_err());
        let made = node_name(None).unwrap();
        assert!(node_name(Some(&made)).is_ok(), "{made}");
        assert_ne!(node_name(None).unwrap(), node_name(None).unwrap());
    }

    #[test]
    fn a_run_of_room_messages_is_answered_one_by_one() {
        let pair = |id, ts| Value::Array(vec![Value::Int(id), Value::Int(ts)]);
        assert_eq!(Shape::One.answers(Value::Int(1)), vec![Value::Int(1)]);
        let answers = Shape::Says(2).answers(Value::Array(vec![pair(7, 1), pair(-1, 0)]));
        assert_eq!(answers, vec![pair(7, 1), pair(-1, 0)]);
        assert!(is_unseeded(&answers[1]) && !is_unseeded(&answers[0]));
        // Too few answers, or none: each message fails (it may have run).
        assert_eq!(
            Shape::Says(2).answers(Value::Array(vec![pair(7, 1)])),
            vec![Value::Nil, Value::Nil]
        );
        assert_eq!(Shape::Says(1).answers(Value::Okay), vec![Value::Nil]);
    }

    #[test]
    fn entries_parse() {
        let event = r#"{"t":"account","node":"n1","name":"alice"}"#;
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("banter:events"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("e"), bulk(event), bulk("id"), bulk("7")]),
                ]),
                Value::Array(vec![
                    bulk("2-0"),
                    Value::Array(vec![bulk("e"), bulk("{not json")]),
                ]),
            ]),
        ])]);
        let entries = parse_read(reply);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "1-0");
        let first = entries[0].1.as_ref().unwrap();
        assert_eq!(first.id, 7);
        assert!(matches!(&first.event, Event::Account { node, .. } if node == "n1"));
        assert_eq!(entries[1].0, "2-0");
        assert!(entries[1].1.is_none());
    }
}
