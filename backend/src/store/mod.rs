//! The store: history, accounts and room state, through `sqlx`, in one of
//! two backends chosen by `--store`:
//!
//! * SQLite (the default): one file, `<data-dir>/banter.db` (or the path
//!   of a `sqlite://PATH` URL), in WAL mode: a commit is in the log file
//!   when it returns (so a crash of banter loses none), and readers never
//!   wait for the writer. The log is synced to disk every second by an
//!   fsync off the writer's path ([`Syncing`], `--sync-every`), or in
//!   every commit (`synchronous = FULL`, `--sync-every 0`); with the
//!   first, a connection of its own also copies it into the file every
//!   50 ms ([`backfill_every`]), ahead of the writer's checkpoints.
//!   The writer keeps its temporary data (statement journals, sorts,
//!   temporary indexes) in memory, except in retention's sweeps, whose
//!   journals can be large ([`writer`]). With the first, room messages
//!   are committed to a log of our own, `banter.db-messages-N`, and moved
//!   into the tables behind ([`journal`]); readers of room messages wait
//!   for that when anything waits ([`Store::settled`]).
//! * PostgreSQL (`postgres://…`): the same tables in a database the
//!   operator made; what banter shares between the nodes of a cluster.
//!
//! * Schema: the migrations in `backend/migrations/` (SQLite) and
//!   `backend/migrations/postgres/` (the same versions and tables in
//!   PostgreSQL's dialect), embedded and applied at startup
//!   ([`MIGRATIONS`], [`POSTGRES_MIGRATIONS`]). v1 holds history (`rooms`,
//!   `messages`, `directs`, `meta`), v2 accounts (`accounts`, `tokens`),
//!   room roles and bans (`room_roles`, `bans`) and the pending flag of
//!   whispers to offline accounts (cleared only once the client confirmed
//!   it read them, see `session/mod.rs`; the comment in 0002 predates that, and
//!   an applied migration's text must not change). Each file's comments
//!   document its tables.
//! * Every write goes through one [`writer`] task (group commit) with a
//!   connection of its own; reads use a small pool of their own
//!   connections. The SQL is written once for both backends and run
//!   through each driver's own types (no `Any` driver): `with_pool!`
//!   here, `backend!` in the writer.
//!
//! Ids: the router assigns room message ids and direct ids (under its lock,
//! so they are in order); the store keeps the highest ever given
//! (`rooms.last_id`, `meta.last_direct_id`) so that ids keep increasing
//! across restarts even when retention deleted the messages themselves.

pub mod journal;
pub mod writer;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use banter_protocol::{
    BanInfo, BanList, ChatMessage, DirectMessage, Found, Nick, Reaction, RoomModes, RoomName,
    ServerBan, Topic,
};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, SqlSafeStr};
use tokio::sync::{mpsc, oneshot};

use crate::core::event::Event;
use crate::core::model::{Page, RoomState, key, pair_key};
use crate::core::port::{Port, Refusal, Taken, Verdict};
use crate::core::search::Query;
use writer::{Conn, Connector, Database};
pub use writer::{Health, Registered, Write};

const READ_ROOM_ID: &str = "SELECT id, ts FROM messages WHERE room = $1 AND id = $2";
const READ_ROOM_TS: &str =
    "SELECT id, ts FROM messages WHERE room = $1 AND ts <= $2 ORDER BY id DESC LIMIT 1";
const READ_DIRECT_ID: &str = "SELECT id, ts FROM directs WHERE pair = $1 AND id = $2";
const READ_DIRECT_TS: &str =
    "SELECT id, ts FROM directs WHERE pair = $1 AND ts <= $2 ORDER BY id DESC LIMIT 1";

/// Where a read position is, for [`Store::read_mark`]: a room, or the
/// direct conversation of two accounts.
#[derive(Clone, Copy, Debug)]
pub enum Place<'a> {
    Room(&'a RoomName),
    Direct(&'a Nick, &'a Nick),
}

/// The database file inside the data directory.
pub const DB_FILE: &str = "banter.db";
/// Writes that may wait for the writer; beyond that, senders are told the
/// server is busy instead of growing memory.
pub const WRITE_QUEUE: usize = 64 * 1024;
/// Read connections to PostgreSQL.
const PG_READERS: u32 = 8;
/// How long a read waits for a PostgreSQL connection (when the server is
/// down: how long before it fails).
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// [`Store::check`]'s query answers within this, or the check fails.
const CHECK_TIMEOUT: Duration = Duration::from_millis(800);

/// The embedded SQLite migrations: (version, description, SQL).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "history",
        include_str!("../../migrations/0001_history.sql"),
    ),
    (
        2,
        "accounts and rooms",
        include_str!("../../migrations/0002_accounts_and_rooms.sql"),
    ),
    (
        3,
        "hardening",
        include_str!("../../migrations/0003_hardening.sql"),
    ),
    (
        4,
        "exceptions",
        include_str!("../../migrations/0004_exceptions.sql"),
    ),
    (
        5,
        "direct history and read positions",
        include_str!("../../migrations/0005_history_and_reads.sql"),
    ),
    (
        6,
        "memberships",
        include_str!("../../migrations/0006_memberships.sql"),
    ),
    (
        7,
        "rich messages",
        include_str!("../../migrations/0007_rich_messages.sql"),
    ),
    (
        8,
        "search",
        include_str!("../../migrations/0008_search.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../../migrations/0009_notifications.sql"),
    ),
    (10, "push", include_str!("../../migrations/0010_push.sql")),
    (
        11,
        "push format",
        include_str!("../../migrations/0011_push_format.sql"),
    ),
    (
        12,
        "server keys",
        include_str!("../../migrations/0012_server_keys.sql"),
    ),
    (
        13,
        "search off the commit",
        include_str!("../../migrations/0013_search_off_the_commit.sql"),
    ),
    (
        14,
        "search by sequence",
        include_str!("../../migrations/0014_search_by_sequence.sql"),
    ),
];

/// The embedded PostgreSQL migrations: the same versions and tables.
pub const POSTGRES_MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "history",
        include_str!("../../migrations/postgres/0001_history.sql"),
    ),
    (
        2,
        "accounts and rooms",
        include_str!("../../migrations/postgres/0002_accounts_and_rooms.sql"),
    ),
    (
        3,
        "hardening",
        include_str!("../../migrations/postgres/0003_hardening.sql"),
    ),
    (
        4,
        "exceptions",
        include_str!("../../migrations/postgres/0004_exceptions.sql"),
    ),
    (
        5,
        "direct history and read positions",
        include_str!("../../migrations/postgres/0005_history_and_reads.sql"),
    ),
    (
        6,
        "memberships",
        include_str!("../../migrations/postgres/0006_memberships.sql"),
    ),
    (
        7,
        "rich messages",
        include_str!("../../migrations/postgres/0007_rich_messages.sql"),
    ),
    (
        8,
        "search",
        include_str!("../../migrations/postgres/0008_search.sql"),
    ),
    (
        9,
        "notifications",
        include_str!("../../migrations/postgres/0009_notifications.sql"),
    ),
    (
        10,
        "push",
        include_str!("../../migrations/postgres/0010_push.sql"),
    ),
    (
        11,
        "push format",
        include_str!("../../migrations/postgres/0011_push_format.sql"),
    ),
    (
        12,
        "server keys",
        include_str!("../../migrations/postgres/0012_server_keys.sql"),
    ),
];

/// Says so in the log when an existing SQLite store is about to be
/// migrated to a newer schema: on a large store that can take a while
/// (v14 numbers every message), and nothing else is logged until it ends.
async fn announce_migration(conn: &mut SqliteConnection, path: &Path) {
    let at: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .unwrap_or(None);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if let Some(at) = at.filter(|&at| at < latest) {
        tracing::info!(
            "migrating {} from schema v{at} to v{latest}; a large store takes a while",
            path.display()
        );
    }
}

/// A migrator with the SQLite migrations up to `version` (all: `i64::MAX`).
pub fn migrator(version: i64) -> Migrator {
    migrator_of(MIGRATIONS, version)
}

/// A migrator with the PostgreSQL migrations up to `version`.
pub fn postgres_migrator(version: i64) -> Migrator {
    migrator_of(POSTGRES_MIGRATIONS, version)
}

fn migrator_of(list: &'static [(i64, &'static str, &'static str)], version: i64) -> Migrator {
    let migrations = list
        .iter()
        .filter(|(v, _, _)| *v <= version)
        .map(|&(v, description, sql)| {
            Migration::new(
                v,
                Cow::Borrowed(description),
                MigrationType::Simple,
                sql.into_sql_str(),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// When the SQLite store syncs to disk (`--sync-every`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syncing {
    /// Every commit, before what it holds is delivered (`synchronous =
    /// FULL`): a power cut loses nothing acknowledged.
    EveryCommit,
    /// A commit is written to the log file before delivery, so a crash of
    /// banter loses nothing; the log is synced this often (`synchronous =
    /// NORMAL`, and an fsync of the log file off the writer's path).
    Every(Duration),
    /// As [`EveryCommit`](Syncing::EveryCommit), for a subcommand beside
    /// a server that may be running on the same database: the message log
    /// is the server's, left alone (the server with `--sync-every 0`
    /// moves what an earlier run left in it into the tables at its start).
    Beside,
}

impl Syncing {
    /// `--sync-every`: 0 is every commit.
    pub fn from_ms(ms: u64) -> Syncing {
        match ms {
            0 => Syncing::EveryCommit,
            ms => Syncing::Every(Duration::from_millis(ms)),
        }
    }
}

impl Default for Syncing {
    fn default() -> Self {
        Syncing::Every(Duration::from_secs(1))
    }
}

/// Connection settings for the database file at `path`.
pub fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
}

/// Where the store keeps its data: `--store`, with `--data-dir`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by URL (which may hold a password: show it
    /// with [`Backend::describe`] or [`redact`]).
    Postgres(String),
}

impl Backend {
    /// No `store`: `<data_dir>/banter.db`; `sqlite://PATH`: the SQLite file
    /// PATH; `postgres://…` or `postgresql://…`: PostgreSQL (the URL must
    /// parse). Anything else is refused, with a sentence saying what works.
    pub fn from_settings(store: Option<&str>, data_dir: &Path) -> anyhow::Result<Backend> {
        let Some(url) = store.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Backend::Sqlite(data_dir.join(DB_FILE)));
        };
        if let Some(path) = url.strip_prefix("sqlite://") {
            anyhow::ensure!(
                !path.is_empty(),
                "store {url:?}: sqlite:// needs a file path, like sqlite://data/banter.db"
            );
            return Ok(Backend::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| anyhow::anyhow!("store {}: not a PostgreSQL URL: {e}", redact(url)))?;
            use sqlx::postgres::PgSslMode;
            anyhow::ensure!(
                !matches!(
                    options.get_ssl_mode(),
                    PgSslMode::Require | PgSslMode::VerifyCa | PgSslMode::VerifyFull
                ),
                "store {}: this build of banter has no TLS for PostgreSQL, so sslmode \
                 (or PGSSLMODE) cannot be require or verify-*; connect over a private \
                 network or loopback",
                redact(url)
            );
            return Ok(Backend::Postgres(url.to_string()));
        }
        anyhow::bail!(
            "store {:?}: use postgres://USER:PASSWORD@HOST:PORT/DATABASE for PostgreSQL, or \
             sqlite://PATH (or no store at all: <data-dir>/{DB_FILE}) for SQLite",
            redact(url)
        )
    }

    /// For logs: the file or the URL (without its password) and the kind.
    pub fn describe(&self) -> String {
        match self {
            Backend::Sqlite(path) => {
                let path = std::path::absolute(path).unwrap_or(path.clone());
                format!("{} (SQLite, WAL)", path.display())
            }
            Backend::Postgres(url) => format!("{} (PostgreSQL)", redact(url)),
        }
    }
}

/// A database URL fit for logs: the password in its user info, or in a
/// `password=` query parameter, is replaced by `***`.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let path = match path.split_once('?') {
        Some((before, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{before}?{}", query.join("&"))
        }
        None => path.to_string(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{authority}{path}"),
        None => format!("{authority}{path}"),
    }
}

/// `rooms`: last id, topic text, set by, set at; then the modes (see
/// `RoomModes`): invite-only, key, limit, moderated, secret, registered-only.
type RoomRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
);

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn nick(s: String) -> Nick {
    // Stored names were valid when written; a damaged one is shown as is.
    Nick::new(s.clone()).unwrap_or_else(|_| Nick::new("invalid").expect("valid"))
}

/// A message row: id, sender, text, ts, account, reply_to, edited,
/// deleted.
type MessageRow = (
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
    i32,
);

fn chat(
    room: &RoomName,
    (id, sender, text, ts, account, reply_to, edited, deleted): MessageRow,
) -> ChatMessage {
    ChatMessage {
        room: room.clone(),
        id: id as u64,
        from: nick(sender),
        text,
        ts: ts as u64,
        account: account.map(nick),
        // Not stored: notices are shown on live delivery only.
        notice: false,
        reply_to: reply_to.map(|r| r as u64),
        edited: edited.map(|e| e as u64),
        deleted: deleted != 0,
        reactions: Vec::new(),
    }
}

/// A room or direct message, whose reactions a read fills in.
trait Reacted {
    fn id(&self) -> u64;
    fn reactions(&mut self) -> &mut Vec<Reaction>;
}

impl Reacted for ChatMessage {
    fn id(&self) -> u64 {
        self.id
    }
    fn reactions(&mut self) -> &mut Vec<Reaction> {
        &mut self.reactions
    }
}

impl Reacted for DirectMessage {
    fn id(&self) -> u64 {
        self.id
    }
    fn reactions(&mut self) -> &mut Vec<Reaction> {
        &mut self.reactions
    }
}

/// Fills in the reactions of `messages` from `rows` (id, nick, reaction,
/// in the order they were left).
fn with_reactions<M: Reacted>(messages: &mut [M], rows: Vec<(i64, String, String)>) {
    let mut by_id: std::collections::HashMap<u64, &mut Vec<Reaction>> = messages
        .iter_mut()
        .map(|m| (m.id(), m.reactions()))
        .collect();
    for (id, who, reaction) in rows {
        if let Some(list) = by_id.get_mut(&(id as u64)) {
            crate::core::router::amend_reactions(list, &reaction, &nick(who), false);
        }
    }
}

/// A room message `search` found: room, id, sender, text, ts, account,
/// reply_to, edited.
type FoundRow = (
    String,
    i64,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<i64>,
);
/// A direct one: id, sender, recipient, recipient's key, text, ts,
/// reply_to, edited.
type FoundDirectRow = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

/// Which direct conversations a search reads: one (two accounts' pair),
/// or every one of an account (its key).
enum Sides {
    Pair(String),
    Any(String),
}

#[derive(Clone, Copy)]
enum SqlDialect {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy)]
enum Source {
    Rooms,
    Directs,
}

/// `text` for a `LIKE` pattern, its wildcards escaped (with `\`).
fn like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A search's SQL. Parameters: `$1` the full-text query ('' without one),
/// then for rooms `$2` the rooms (SQLite: a JSON array; PostgreSQL: an
/// array), `$3` the sender's key, `$4` before id, `$5` before ts, `$6`
/// limit; for directs `$2` one pair, `$3`/`$4` patterns of an account's
/// pairs, `$5` the sender's key, `$6`, `$7`, `$8` as before.
fn search_sql(dialect: SqlDialect, source: Source, words: bool) -> String {
    use SqlDialect::{Postgres, Sqlite};
    let (columns, from, alias) = match source {
        Source::Rooms => (
            "m.room, m.id, m.sender, m.text, m.ts, m.account, m.reply_to, m.edited",
            "messages m",
            "m",
        ),
        Source::Directs => (
            "d.id, d.sender, d.recipient, d.recipient_key, d.text, d.ts, d.reply_to, d.edited",
            "directs d",
            "d",
        ),
    };
    let text = match (dialect, source, words) {
        (_, _, false) => ("".to_string(), "$1 = ''".to_string()),
        (Sqlite, Source::Rooms, true) => (
            " JOIN message_search s ON s.rowid = m.seq".to_string(),
            "message_search MATCH $1".to_string(),
        ),
        (Sqlite, Source::Directs, true) => (
            " JOIN direct_search s ON s.rowid = d.id".to_string(),
            "direct_search MATCH $1".to_string(),
        ),
        (Postgres, _, true) => (
            String::new(),
            format!("{alias}.search @@ websearch_to_tsquery('simple', $1)"),
        ),
    };
    let scope = match (dialect, source) {
        (Sqlite, Source::Rooms) => {
            "m.room IN (SELECT value FROM json_each($2)) \
             AND ($3 IS NULL OR lower(m.sender) = $3 OR lower(m.account) = $3) \
             AND m.id < $4 AND m.ts < $5 ORDER BY m.ts DESC, m.id DESC LIMIT $6"
        }
        (Postgres, Source::Rooms) => {
            "m.room = ANY($2) \
             AND ($3::text IS NULL OR lower(m.sender) = $3 OR lower(m.account) = $3) \
             AND m.id < $4 AND m.ts < $5 ORDER BY m.ts DESC, m.id DESC LIMIT $6"
        }
        (_, Source::Directs) => {
            "(d.pair = $2 OR ($2 IS NULL AND (d.pair LIKE $3 ESCAPE '\\' \
              OR d.pair LIKE $4 ESCAPE '\\'))) \
             AND ($5 IS NULL OR lower(d.sender) = $5) \
             AND d.id < $6 AND d.ts < $7 ORDER BY d.ts DESC, d.id DESC LIMIT $8"
        }
    };
    let (join, matches) = text;
    format!(
        "SELECT {columns} FROM {from}{join} WHERE {matches} AND {alias}.deleted = 0 AND {scope}"
    )
}

/// The read pool, of either backend.
#[derive(Clone, Debug)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend
/// it is: the same code and SQL, typed by each driver. Both arms must have
/// the same type.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// The store's writer task, opened and not yet started.
pub struct Writer {
    link: Database,
    queue: mpsc::Receiver<Write>,
}

impl Writer {
    /// Starts the writer, which hands what it committed (or failed to
    /// commit, or refused) to `on_commit`, in commit order.
    pub fn start(self, on_commit: impl FnMut(&mut Vec<Event>, Verdict) + Send + 'static) {
        tokio::spawn(writer::run(self.link, self.queue, on_commit));
    }
}

/// The store as the core's [`Port`]: an event goes to the writer's queue
/// and comes back (through [`Writer::start`]'s `on_commit`) once
/// committed; a full queue refuses it, so the requester hears the server
/// is busy and nothing changes. A whisper for an offline account is
/// refused later, by the writer, if its waiting whispers are at the
/// [`Mailbox`] bounds.
pub struct Durable {
    queue: mpsc::Sender<Write>,
    mailbox: Mailbox,
}

/// How many whispers may wait for one offline account: in all, and from
/// one sender (an account; every guest together counts as one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub per_recipient: u32,
    pub per_sender: u32,
}

impl Default for Mailbox {
    /// `--max-waiting-whispers` and `--max-waiting-whispers-per-sender`'s
    /// defaults.
    fn default() -> Self {
        Mailbox {
            per_recipient: 100,
            per_sender: 20,
        }
    }
}

impl Port for Durable {
    fn submit(&self, event: Event) -> Taken {
        match self.queue.try_reserve() {
            Ok(permit) => {
                permit.send(match event {
                    Event::Chat(chat) => Write::Chat(chat),
                    Event::Direct(direct) => Write::Direct(direct, self.mailbox),
                    Event::Room(room) => Write::Room(room),
                    Event::Amend(amend) => Write::Amend(amend),
                });
                Taken::Later
            }
            Err(_) => Taken::Refused(event, Refusal::Full),
        }
    }

    fn durable(&self) -> bool {
        true
    }

    fn remember(&self, account: &Nick, room: &RoomName, member: bool) {
        let write = Write::Membership {
            account: account.clone(),
            room: room.to_string(),
            member,
        };
        if self.queue.try_send(write).is_err() {
            tracing::warn!(%account, %room, "the store's queue is full; a membership change is not kept");
        }
    }
}

/// The open store: a read pool and the writer's queue.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    writes: mpsc::Sender<Write>,
    backend: Backend,
    health: Arc<Health>,
    /// The bounds on whispers waiting for an offline account.
    mailbox: Mailbox,
    /// With [`Syncing::Every`]: the task that syncs, until the last clone
    /// of the store is gone.
    _syncer: Option<Arc<Syncer>>,
    /// SQLite with a message log: how many rows wait in it, not yet in
    /// the tables ([`Store::settled`]).
    waiting: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

/// Stops the tasks it holds when dropped.
struct Syncer(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Syncer {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Syncs SQLite's log file (`<db>-wal`) to disk every `every`, off the
/// writer's path: an fsync of the file flushes every commit written to it
/// so far, whoever writes it meanwhile, and SQLite recovers committed
/// frames from it after a power cut. (A checkpoint from another connection
/// would sync only when it can copy pages, which a long read prevents; the
/// writer's own checkpoints, SQLite's every 1,000 pages, keep the log
/// small, and only they can: one between two of its transactions lets the
/// log start over from its beginning. [`backfill_every`] does their
/// copying ahead of them.)
async fn sync_every(db: PathBuf, every: Duration) {
    let wal = wal_path(&db);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        for file in std::iter::once(wal.clone()).chain(journal::files(&db)) {
            if let Err(e) = sync_file(&file).await {
                tracing::warn!(error = %e, file = %file.display(), "could not sync the database's log to disk; trying again");
            }
        }
    }
}

/// SQLite's log file of the database `db`.
fn wal_path(db: &Path) -> PathBuf {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Syncs the file at `path` to disk, off the runtime's threads. No file
/// is nothing to sync (a log is gone once the last connection closed).
async fn sync_file(path: &Path) -> std::io::Result<()> {
    let path = path.to_path_buf();
    let synced = tokio::task::spawn_blocking(move || std::fs::File::open(path)?.sync_data())
        .await
        .map_err(std::io::Error::other)?;
    match synced {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The name of the writer's SQLite thread with a message log, whose work
/// (moving the log into the tables, indexing, the log's checkpoints) waits
/// for no one ([`in_background`]).
pub const STORE_THREAD: &str = "banter-store";

/// The name of [`backfill_every`]'s SQLite thread.
const BACKFILL_THREAD: &str = "banter-backfill";

/// The niceness of those threads: the runtime's thread, which delivers,
/// goes first when both want the same core.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the scheduling priority of this process's threads named `name`
/// (by `/proc`, on Linux; elsewhere nothing) to [`BACKGROUND_NICE`]. The
/// background work of SQLite's threads comes in bursts of milliseconds
/// (a few thousand rows at once); at the same priority, sharing a core
/// with the runtime's thread, each burst held deliveries up: in rooms of
/// 10 at 5,000 messages a second, p99 3.7 ms instead of 10–12
/// (bench/notes.md).
pub fn in_background(name: &str) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in tasks.flatten() {
        let named = std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.trim_end() == name);
        let tid = task.file_name().to_str().and_then(|t| t.parse().ok());
        if let (true, Some(pid)) = (named, tid.and_then(rustix::process::Pid::from_raw))
            && let Err(e) = rustix::process::setpriority_process(Some(pid), BACKGROUND_NICE)
        {
            tracing::debug!(error = %e, thread = name, "could not lower a thread's priority");
        }
    }
}

/// How often [`backfill_every`] copies committed pages from SQLite's log
/// into the database file.
const BACKFILL_EVERY: Duration = Duration::from_millis(50);

/// Copies what was committed from SQLite's log into the database file
/// every [`BACKFILL_EVERY`], on a connection of its own (a passive
/// checkpoint: it waits for no one), so that the writer's own checkpoints,
/// SQLite's every 1,000 pages, find little left to copy and sync: each of
/// those held up every commit behind it for the sync of the whole log and
/// the file (2–6 ms here, the p99 latency of a store at moderate rates).
/// The log starts over at the writer's next transaction once all of it
/// was copied and no reader needs it; under steady writes only the
/// writer's own checkpoint, between two of its transactions, gets there
/// (see [`sync_every`]). This one never waits and never blocks a commit;
/// SQLite syncs the log before it copies (so, under traffic, the log is
/// synced every [`BACKFILL_EVERY`], more often than `--sync-every`), and
/// the database file is synced after it, so that the writer's syncs are
/// short too.
async fn backfill_every(options: SqliteConnectOptions, db: PathBuf) {
    let mut conn: Option<SqliteConnection> = None;
    // The log's frames and how many of them were copied, at the last look.
    let mut seen = (0, 0);
    // When the log file last changed, at the last look: an idle store is
    // not asked again.
    let mut stamp = None;
    let wal = wal_path(&db);
    // A failure is logged once, until a copy works again.
    let mut failing = false;
    let mut tick = tokio::time::interval(BACKFILL_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = std::fs::metadata(&wal).and_then(|m| m.modified()).ok();
        if now.is_some() && now == stamp {
            continue;
        }
        stamp = now;
        match backfill(&options, &db, &mut conn, &mut seen).await {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("copying the database's log into it again");
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %format!("{e:#}"), "could not copy the database's log into it; trying again every second");
                }
                failing = true;
                conn = None;
                stamp = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// One pass of [`backfill_every`]: a passive checkpoint, then a sync of
/// the file if it copied pages but stopped short of the log's end (one
/// that reaches the end syncs the file itself). `seen` is the log's
/// frames and the frames copied so far, as SQLite counts them (from the
/// log's start: the counts fall when the writer starts it over).
async fn backfill(
    options: &SqliteConnectOptions,
    db: &Path,
    conn: &mut Option<SqliteConnection>,
    seen: &mut (i64, i64),
) -> anyhow::Result<()> {
    if conn.is_none() {
        let options = options.clone().thread_name(|_| BACKFILL_THREAD.into());
        *conn = Some(SqliteConnection::connect_with(&options).await?);
        in_background(BACKFILL_THREAD);
    }
    let c = conn.as_mut().expect("just made");
    let (_, log, copied) = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *c)
        .await?;
    let now = (log, copied);
    if now != *seen && copied > 0 && copied < log {
        sync_file(db)
            .await
            .with_context(|| format!("cannot sync {}", db.display()))?;
    }
    *seen = now;
    Ok(())
}

impl Store {
    /// Opens (creating if needed) `<dir>/banter.db`, applies the migrations
    /// and starts the writer task, which hands what it committed to
    /// `on_commit`.
    pub async fn open(
        dir: &Path,
        on_commit: impl FnMut(&mut Vec<Event>, Verdict) + Send + 'static,
    ) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        Store::open_backend(&Backend::Sqlite(dir.join(DB_FILE)), on_commit).await
    }

    /// Opens the store in `backend` (a SQLite file is created if needed; a
    /// PostgreSQL database must exist), applies the migrations and starts
    /// the writer task, which hands what it committed to `on_commit`.
    pub async fn open_backend(
        backend: &Backend,
        on_commit: impl FnMut(&mut Vec<Event>, Verdict) + Send + 'static,
    ) -> anyhow::Result<Store> {
        let (store, writer) = Store::prepare(backend).await?;
        writer.start(on_commit);
        Ok(store)
    }

    /// Opens the store in `backend` as [`open_backend`](Self::open_backend)
    /// does, with its writer not yet started: writes queue up until
    /// [`Writer::start`] names where committed events go (the router, which
    /// is built with this store's [`port`](Self::port)).
    pub async fn prepare(backend: &Backend) -> anyhow::Result<(Store, Writer)> {
        Store::prepare_with(backend, Syncing::default()).await
    }

    /// [`prepare`](Self::prepare), syncing a SQLite store as `syncing`
    /// says.
    pub async fn prepare_with(
        backend: &Backend,
        syncing: Syncing,
    ) -> anyhow::Result<(Store, Writer)> {
        let health = Arc::new(Health::default());
        let (pool, link, syncer, waiting) = match backend {
            Backend::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| {
                        format!("cannot create the data directory {}", dir.display())
                    })?;
                }
                let options = match syncing {
                    Syncing::EveryCommit | Syncing::Beside => connect_options(path),
                    Syncing::Every(_) => {
                        connect_options(path).synchronous(SqliteSynchronous::Normal)
                    }
                };
                // With a message log the writer's SQLite thread does
                // background work: moving the log into the tables.
                let writer_options = match syncing {
                    Syncing::Every(_) => options.clone().thread_name(|_| STORE_THREAD.into()),
                    Syncing::EveryCommit | Syncing::Beside => options.clone(),
                };
                let mut conn = SqliteConnection::connect_with(&writer_options)
                    .await
                    .with_context(|| format!("cannot open the database {}", path.display()))?;
                in_background(STORE_THREAD);
                announce_migration(&mut conn, path).await;
                migrator(i64::MAX)
                    .run(&mut conn)
                    .await
                    .with_context(|| format!("cannot migrate the database {}", path.display()))?;
                writer::keep_temporary_data_in_memory(&mut conn, true)
                    .await
                    .with_context(|| format!("cannot set up the database {}", path.display()))?;
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(options.clone())
                    .await
                    .with_context(|| format!("cannot open the database {}", path.display()))?;
                let syncer = match syncing {
                    Syncing::Every(every) => Some(Arc::new(Syncer(vec![
                        tokio::spawn(sync_every(path.clone(), every)),
                        tokio::spawn(backfill_every(options.clone(), path.clone())),
                    ]))),
                    Syncing::EveryCommit | Syncing::Beside => None,
                };
                // What an earlier run left in the message log goes into the
                // tables (but not beside a running server, whose log it
                // is); only `--sync-every` above 0 keeps one.
                let journal = match syncing {
                    Syncing::Beside => None,
                    Syncing::Every(_) | Syncing::EveryCommit => Some(
                        journal::Journal::recover(&mut conn, path, wal_path(path))
                            .await
                            .with_context(|| {
                                format!("cannot recover the message log of {}", path.display())
                            })?,
                    ),
                }
                .filter(|_| matches!(syncing, Syncing::Every(_)));
                let waiting = journal.as_ref().map(journal::Journal::waiting);
                let link = Database::new(
                    Connector::Sqlite(writer_options),
                    Conn::Sqlite(conn),
                    health.clone(),
                    journal,
                );
                (Pool::Sqlite(pool), link, syncer, waiting)
            }
            Backend::Postgres(url) => {
                let shown = redact(url);
                let options = PgConnectOptions::from_str(url)
                    .with_context(|| format!("not a PostgreSQL URL: {shown}"))?
                    .application_name("banter");
                let connector = Connector::Postgres(options.clone());
                let Conn::Postgres(mut conn) = connector
                    .connect()
                    .await
                    .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?
                else {
                    unreachable!("a PostgreSQL connector")
                };
                // Takes an advisory lock: nodes starting at once migrate
                // one after the other.
                postgres_migrator(i64::MAX)
                    .run(&mut conn)
                    .await
                    .with_context(|| format!("cannot migrate the database {shown}"))?;
                let pool = PgPoolOptions::new()
                    .max_connections(PG_READERS)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .connect_lazy_with(options);
                let link = Database::new(connector, Conn::Postgres(conn), health.clone(), None);
                (Pool::Postgres(pool), link, None, None)
            }
        };
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let store = Store {
            pool,
            writes,
            backend: backend.clone(),
            health,
            mailbox: Mailbox::default(),
            _syncer: syncer,
            waiting,
        };
        Ok((store, Writer { link, queue }))
    }

    /// The store as the core's port (see [`Durable`]).
    pub fn port(&self) -> Durable {
        Durable {
            queue: self.writes.clone(),
            mailbox: self.mailbox,
        }
    }

    /// This store with other bounds on waiting whispers (before its port
    /// is made or it is shared).
    pub fn with_mailbox(self, mailbox: Mailbox) -> Store {
        Store { mailbox, ..self }
    }

    /// The bounds on whispers waiting for an offline account.
    pub fn mailbox(&self) -> Mailbox {
        self.mailbox
    }

    /// Up to `limit` whispers waiting for `account`, oldest first, from
    /// the read pool (never inside the writer). They stay waiting until
    /// [`Write::Delivered`].
    pub async fn pending(&self, account: &Nick, limit: u32) -> anyhow::Result<Vec<DirectMessage>> {
        type Row = (
            i64,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            i32,
        );
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, sender, recipient, text, ts, reply_to, edited, deleted FROM directs \
                 WHERE recipient_key = $1 AND pending = 1 ORDER BY id LIMIT $2",
            )
            .bind(key(account))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(id, from, to, text, ts, reply_to, edited, deleted)| DirectMessage {
                    reply_to: reply_to.map(|r| r as u64),
                    edited: edited.map(|e| e as u64),
                    deleted: deleted != 0,
                    reactions: Vec::new(),
                    id: id as u64,
                    from: nick(from),
                    to: nick(to),
                    text,
                    ts: ts as u64,
                    account: None,
                    notice: false,
                },
            )
            .collect())
    }

    /// Where the data is.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The writer's queue, for a write that wants no answer (a session
    /// marking the whispers that waited for it delivered). The router's
    /// events come through [`Store::port`] instead.
    pub fn writes(&self) -> &mpsc::Sender<Write> {
        &self.writes
    }

    /// Enqueues a write that answers on a channel, and waits for the answer
    /// (sent once the transaction holding it has committed).
    pub async fn request<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Write,
    ) -> anyhow::Result<T> {
        let (tx, rx) = oneshot::channel();
        self.writes
            .send(make(tx))
            .await
            .map_err(|_| anyhow::anyhow!("the store's writer has stopped"))?;
        rx.await
            .map_err(|_| anyhow::anyhow!("the store could not commit"))
    }

    /// Names of every account.
    pub async fn account_names(&self) -> anyhow::Result<Vec<Nick>> {
        let names: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT name FROM accounts")
                .fetch_all(pool)
                .await?
        });
        Ok(names.into_iter().map(nick).collect())
    }

    /// The accounts granted server administration in the store.
    pub async fn admin_names(&self) -> anyhow::Result<Vec<Nick>> {
        let names: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT name FROM accounts WHERE admin = 1")
                .fetch_all(pool)
                .await?
        });
        Ok(names.into_iter().map(nick).collect())
    }

    /// Whether `account` is granted server administration in the store.
    pub async fn is_admin(&self, account: &Nick) -> anyhow::Result<bool> {
        let admin: Option<i32> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT admin FROM accounts WHERE key = $1")
                .bind(key(account))
                .fetch_optional(pool)
                .await?
        });
        Ok(admin == Some(1))
    }

    /// The server bans (K-lines) not expired at `now_ms`.
    pub async fn server_bans(&self, now_ms: u64) -> anyhow::Result<Vec<ServerBan>> {
        type Row = (String, String, String, String, i64, Option<i64>);
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT kind, target, reason, by, ts, expires FROM server_bans \
                 WHERE expires IS NULL OR expires > $1",
            )
            .bind(i(now_ms))
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(kind, target, reason, by, ts, expires)| {
                let (address, account) = if kind == "address" {
                    (Some(target), None)
                } else {
                    (None, Some(nick(target)))
                };
                ServerBan {
                    address,
                    account,
                    reason,
                    by: nick(by),
                    ts: ts as u64,
                    expires: expires.map(|e| e as u64),
                }
            })
            .collect())
    }

    /// The highest direct message id ever given.
    pub async fn last_direct_id(&self) -> anyhow::Result<u64> {
        let id: i64 = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT coalesce(max(id), 0) FROM \
                 (SELECT value AS id FROM meta WHERE key = 'last_direct_id' \
                  UNION ALL SELECT max(id) FROM directs) AS ids",
            )
            .fetch_one(pool)
            .await?
        });
        Ok(id as u64)
    }

    /// The highest message id ever given in `room` (0: none).
    pub async fn room_last_id(&self, room: &RoomName) -> anyhow::Result<u64> {
        self.settled().await?;
        let id: i64 = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT coalesce(max(id), 0) FROM \
                 (SELECT last_id AS id FROM rooms WHERE name = $1 \
                  UNION ALL SELECT max(id) FROM messages WHERE room = $1) AS ids",
            )
            .bind(room.as_str())
            .fetch_one(pool)
            .await?
        });
        Ok(id as u64)
    }

    /// An account's name and password hash.
    pub async fn account(&self, name: &Nick) -> anyhow::Result<Option<(Nick, String)>> {
        let row: Option<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT name, password_hash FROM accounts WHERE key = $1")
                .bind(key(name))
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(n, h)| (nick(n), h)))
    }

    /// The account a token (by its hash) logs into, if it was used (or
    /// made) since `used_since` (Unix ms): older ones have expired.
    pub async fn token_account(
        &self,
        hash: &[u8],
        used_since: u64,
    ) -> anyhow::Result<Option<Nick>> {
        let name: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT a.name FROM tokens t JOIN accounts a ON a.key = t.account \
                 WHERE t.hash = $1 AND t.last_used >= $2",
            )
            .bind(hash)
            .bind(i(used_since))
            .fetch_optional(pool)
            .await?
        });
        Ok(name.map(nick))
    }

    /// A room's state, with its `recent` most recent messages.
    pub async fn load_room(&self, room: &RoomName, recent: usize) -> anyhow::Result<RoomState> {
        self.settled().await?;
        type Rows = (
            Option<RoomRow>,
            Vec<MessageRow>,
            Vec<(String, String)>,
            Vec<(String, String, String, String, i64)>,
        );
        let (row, mut rows, roles, bans): Rows = with_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            (
                sqlx::query_as(
                    "SELECT last_id, topic, topic_by, topic_ts, invite_only, room_key, \
                     member_limit, moderated, secret, registered_only FROM rooms WHERE name = $1",
                )
                .bind(room.as_str())
                .fetch_optional(&mut *conn)
                .await?,
                sqlx::query_as(
                    "SELECT id, sender, text, ts, account, reply_to, edited, deleted FROM messages WHERE room = $1 \
                     ORDER BY id DESC LIMIT $2",
                )
                .bind(room.as_str())
                .bind(recent as i64)
                .fetch_all(&mut *conn)
                .await?,
                sqlx::query_as(
                    "SELECT a.name, r.role FROM room_roles r JOIN accounts a ON a.key = r.account \
                     WHERE r.room = $1 ORDER BY a.key",
                )
                .bind(room.as_str())
                .fetch_all(&mut *conn)
                .await?,
                sqlx::query_as(
                    "SELECT list, kind, shown, by, ts FROM bans WHERE room = $1 ORDER BY ts, target",
                )
                .bind(room.as_str())
                .fetch_all(&mut *conn)
                .await?,
            )
        });
        let mut state = RoomState::default();
        if let Some((
            (last_id, topic, by, ts),
            (invite_only, key, limit, moderated, secret, registered),
        )) = row.map(|(a, b, c, d, e, f, g, h, i, j)| ((a, b, c, d), (e, f, g, h, i, j)))
        {
            state.modes = RoomModes {
                invite_only: invite_only != 0,
                key,
                limit: u32::try_from(limit).ok().filter(|&l| l > 0),
                moderated: moderated != 0,
                secret: secret != 0,
                registered_only: registered != 0,
            };
            state.last_id = last_id as u64;
            if let (Some(text), Some(by), Some(ts)) = (topic, by, ts) {
                state.topic = Some(Topic {
                    text,
                    by: nick(by),
                    ts: ts as u64,
                });
            }
        }
        rows.reverse();
        state.recent = rows.into_iter().map(|r| chat(room, r)).collect();
        self.reactions(room.as_str(), &mut state.recent).await?;
        if let Some(last) = state.recent.last() {
            state.last_id = state.last_id.max(last.id);
            state.last_ts = last.ts;
        }
        for (name, role) in roles {
            match role.as_str() {
                "owner" => state.owner = Some(nick(name)),
                _ => state.ops.push(nick(name)),
            }
        }
        state.bans = bans
            .into_iter()
            .map(|(list, kind, shown, by, ts)| {
                let list = match list.as_str() {
                    "ban_exception" => BanList::BanException,
                    "invite_exception" => BanList::InviteException,
                    _ => BanList::Ban,
                };
                let (nick_ban, account, mask) = match kind.as_str() {
                    "account" => (None, Some(nick(shown)), None),
                    "mask" => (None, None, Some(shown)),
                    _ => (Some(nick(shown)), None, None),
                };
                BanInfo {
                    nick: nick_ban,
                    account,
                    mask,
                    by: nick(by),
                    ts: ts as u64,
                    list,
                }
            })
            .collect();
        Ok(state)
    }

    /// A page of a room's history within the bounds, oldest first: with
    /// `after`/`after_ts` (and not `latest`) the oldest messages past it,
    /// otherwise the newest (before `before`/`before_ts`, if given).
    pub async fn history(&self, room: &RoomName, page: Page) -> anyhow::Result<Vec<ChatMessage>> {
        self.settled().await?;
        let sql = [
            "SELECT id, sender, text, ts, account, reply_to, edited, deleted FROM messages WHERE room = $1 AND id > $2 AND id < $3 \
             AND ts > $4 AND ts < $5 ORDER BY id ASC LIMIT $6",
            "SELECT id, sender, text, ts, account, reply_to, edited, deleted FROM messages WHERE room = $1 AND id > $2 AND id < $3 \
             AND ts > $4 AND ts < $5 ORDER BY id DESC LIMIT $6",
        ];
        let rows = self.paged(sql, room.to_string(), page).await?;
        let mut messages: Vec<ChatMessage> = rows.into_iter().map(|r| chat(room, r)).collect();
        self.reactions(room.as_str(), &mut messages).await?;
        Ok(messages)
    }

    /// `account`'s notification levels other than the default, as (target,
    /// shown name, level): target `#room` or the other account's key.
    pub async fn notify_levels(
        &self,
        account: &Nick,
    ) -> anyhow::Result<Vec<(String, String, String)>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT target, shown, level FROM notify_levels WHERE account = $1 \
                 ORDER BY target LIMIT $2",
            )
            .bind(key(account))
            .bind(banter_protocol::MAX_NOTIFY_LEVELS as i64)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The server key `name`, made by `make` and kept if there is none yet:
    /// whichever node stores one first, every node uses it.
    pub async fn server_key(
        &self,
        name: &str,
        make: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<String> {
        let read = |store: &Store| {
            let store = store.clone();
            let name = name.to_string();
            async move {
                let value: Option<String> = with_pool!(store, pool => {
                    sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
                        .bind(&name)
                        .fetch_optional(pool)
                        .await?
                });
                anyhow::Ok(value)
            }
        };
        if let Some(value) = read(self).await? {
            return Ok(value);
        }
        let value = make()?;
        let named = name.to_string();
        self.request(|reply| Write::ServerKey {
            name: named,
            value,
            reply,
        })
        .await?;
        read(self)
            .await?
            .context("the server key just stored is not there")
    }

    /// `account`'s push subscriptions.
    pub async fn subscriptions(
        &self,
        account: &Nick,
    ) -> anyhow::Result<Vec<crate::push::Subscription>> {
        use base64::Engine as _;
        let rows: Vec<(String, String, String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT endpoint, p256dh, auth, format FROM push_subscriptions \
                 WHERE account = $1 ORDER BY created",
            )
            .bind(key(account))
            .fetch_all(pool)
            .await?
        });
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        Ok(rows
            .into_iter()
            .filter_map(|(endpoint, p256dh, auth, format)| {
                Some(crate::push::Subscription {
                    endpoint,
                    p256dh: b64.decode(p256dh).ok()?,
                    auth: b64.decode(auth).ok()?,
                    irc: format == "irc",
                })
            })
            .collect())
    }

    /// The accounts with a push subscription.
    pub async fn subscribed_accounts(&self) -> anyhow::Result<Vec<Nick>> {
        let names: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT DISTINCT a.name FROM push_subscriptions p \
                 JOIN accounts a ON a.key = p.account",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(names.into_iter().map(nick).collect())
    }

    /// `account`'s notification level in `target` (as
    /// [`notify_levels`](Self::notify_levels) names it): the default unless
    /// one is stored.
    pub async fn notify_level(
        &self,
        account: &Nick,
        target: &str,
    ) -> anyhow::Result<banter_protocol::NotifyLevel> {
        let level: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT level FROM notify_levels WHERE account = $1 AND target = $2",
            )
            .bind(key(account))
            .bind(target)
            .fetch_optional(pool)
            .await?
        });
        Ok(level
            .as_deref()
            .and_then(banter_protocol::NotifyLevel::parse)
            .unwrap_or_default())
    }

    /// `account`'s highlight words.
    pub async fn highlights(&self, account: &Nick) -> anyhow::Result<Vec<String>> {
        let stored: Option<Option<String>> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT highlights FROM accounts WHERE key = $1")
                .bind(key(account))
                .fetch_optional(pool)
                .await?
        });
        Ok(stored
            .flatten()
            .and_then(|json| serde_json::from_str(&json).ok())
            .unwrap_or_default())
    }

    /// Messages `query` finds, newest first, at most `limit`: of `rooms`
    /// (those the searcher may read), and of `account`'s direct
    /// conversations (a guest has none); older than message id `before`
    /// and time `before_ts` if given.
    pub async fn search(
        &self,
        rooms: &[RoomName],
        account: Option<&Nick>,
        query: &Query,
        limit: u32,
        (before, before_ts): (Option<u64>, Option<u64>),
    ) -> anyhow::Result<Vec<Found>> {
        let rooms: Vec<String> = match &query.room {
            Some(room) => rooms
                .iter()
                .filter(|r| *r == room)
                .map(|r| r.to_string())
                .collect(),
            None if query.with.is_some() => Vec::new(),
            None => rooms.iter().map(|r| r.to_string()).collect(),
        };
        let pairs = match (account, &query.with) {
            (None, _) => None,
            (Some(_), _) if query.room.is_some() => None,
            (Some(me), Some(with)) => Some(Sides::Pair(pair_key(me, with))),
            (Some(me), None) => Some(Sides::Any(key(me))),
        };
        let text = query.match_text();
        if text.is_some() && matches!(self.pool, Pool::Sqlite(_)) {
            // What is committed but not yet indexed (see writer.rs); it
            // moves the message log into the tables first.
            self.request(Write::Index).await?;
        } else {
            // A search by sender, room or date alone reads the tables.
            self.settled().await?;
        }
        let from = query.from.as_ref().map(key);
        let bounds = (
            before.map_or(i64::MAX, i),
            before_ts.map_or(i64::MAX, i),
            i64::from(limit),
        );
        let mut found = Vec::new();
        if !rooms.is_empty() {
            let words = text.clone().unwrap_or_default();
            let rows: Vec<FoundRow> = match &self.pool {
                Pool::Sqlite(pool) => {
                    let sql = search_sql(SqlDialect::Sqlite, Source::Rooms, text.is_some());
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(words)
                        .bind(serde_json::to_string(&rooms)?)
                        .bind(from.clone())
                        .bind(bounds.0)
                        .bind(bounds.1)
                        .bind(bounds.2)
                        .fetch_all(pool)
                        .await?
                }
                Pool::Postgres(pool) => {
                    let sql = search_sql(SqlDialect::Postgres, Source::Rooms, text.is_some());
                    sqlx::query_as(sqlx::AssertSqlSafe(sql))
                        .bind(words)
                        .bind(rooms)
                        .bind(from.clone())
                        .bind(bounds.0)
                        .bind(bounds.1)
                        .bind(bounds.2)
                        .fetch_all(pool)
                        .await?
                }
            };
            found.extend(rows.into_iter().map(
                |(room, id, from, text, ts, account, reply_to, edited)| Found {
                    room: RoomName::new(room).ok(),
                    with: None,
                    id: id as u64,
                    from: nick(from),
                    to: None,
                    text,
                    ts: ts as u64,
                    account: account.map(nick),
                    reply_to: reply_to.map(|r| r as u64),
                    edited: edited.map(|e| e as u64),
                },
            ));
        }
        if let (Some(sides), Some(me)) = (pairs, account) {
            let (exact, pattern) = match &sides {
                Sides::Pair(pair) => (Some(pair.clone()), None),
                Sides::Any(me) => (
                    None,
                    Some([format!("{} %", like(me)), format!("% {}", like(me))]),
                ),
            };
            let [starts, ends] = pattern.unwrap_or_default();
            let rows: Vec<FoundDirectRow> = with_pool!(self, pool => {
                let dialect = match &self.pool {
                    Pool::Sqlite(_) => SqlDialect::Sqlite,
                    Pool::Postgres(_) => SqlDialect::Postgres,
                };
                let sql = search_sql(dialect, Source::Directs, text.is_some());
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(text.clone().unwrap_or_default())
                    .bind(exact.clone())
                    .bind(starts.clone())
                    .bind(ends.clone())
                    .bind(from.clone())
                    .bind(bounds.0)
                    .bind(bounds.1)
                    .bind(bounds.2)
                    .fetch_all(pool)
                    .await?
            });
            let mine = key(me);
            found.extend(rows.into_iter().map(
                |(id, from, to, recipient, text, ts, reply_to, edited)| {
                    let to_me = recipient == mine;
                    let (from, to) = (nick(from), nick(to));
                    Found {
                        room: None,
                        with: Some(if to_me { from.clone() } else { to.clone() }),
                        id: id as u64,
                        from,
                        to: Some(to),
                        text,
                        ts: ts as u64,
                        account: None,
                        reply_to: reply_to.map(|r| r as u64),
                        edited: edited.map(|e| e as u64),
                    }
                },
            ));
        }
        found.sort_by_key(|m| std::cmp::Reverse((m.ts, m.id)));
        found.truncate(limit as usize);
        Ok(found)
    }

    /// Fills in the reactions of `messages` (of room `scope`; '': direct
    /// messages), read in one query over their id range.
    async fn reactions<M: Reacted>(&self, scope: &str, messages: &mut [M]) -> anyhow::Result<()> {
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return Ok(());
        };
        let (first, last) = (first.id(), last.id());
        let rows: Vec<(i64, String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, nick, reaction FROM reactions WHERE room = $1 AND id >= $2 \
                 AND id <= $3 ORDER BY ts, id",
            )
            .bind(scope)
            .bind(i(first))
            .bind(i(last))
            .fetch_all(pool)
            .await?
        });
        if !rows.is_empty() {
            with_reactions(messages, rows);
        }
        Ok(())
    }

    /// The rows of a page, oldest first: `sql` is the query paging forward
    /// and the one paging back, each binding `scope` (a room, or a pair of
    /// accounts) and the page's bounds.
    async fn paged<R>(
        &self,
        sql: [&'static str; 2],
        scope: String,
        page: Page,
    ) -> anyhow::Result<Vec<R>>
    where
        R: Send + Unpin,
        R: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
        R: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let forward = page.forward();
        let mut rows: Vec<R> = with_pool!(self, pool => {
            sqlx::query_as(sql[usize::from(!forward)])
                .bind(&scope)
                .bind(page.after.map_or(-1, i))
                .bind(page.before.map_or(i64::MAX, i))
                .bind(page.after_ts.map_or(-1, i))
                .bind(page.before_ts.map_or(i64::MAX, i))
                .bind(i64::from(page.limit))
                .fetch_all(pool)
                .await?
        });
        if !forward {
            rows.reverse();
        }
        Ok(rows)
    }

    /// A page of the direct history between accounts `me` and `with`
    /// (both directions), as [`history`](Self::history) pages a room.
    pub async fn direct_history(
        &self,
        me: &Nick,
        with: &Nick,
        page: Page,
    ) -> anyhow::Result<Vec<DirectMessage>> {
        let sql = [
            "SELECT id, sender, recipient, recipient_key, text, ts, reply_to, edited, deleted \
             FROM directs WHERE pair = $1 \
             AND id > $2 AND id < $3 AND ts > $4 AND ts < $5 ORDER BY id ASC LIMIT $6",
            "SELECT id, sender, recipient, recipient_key, text, ts, reply_to, edited, deleted \
             FROM directs WHERE pair = $1 \
             AND id > $2 AND id < $3 AND ts > $4 AND ts < $5 ORDER BY id DESC LIMIT $6",
        ];
        type Row = (
            i64,
            String,
            String,
            String,
            String,
            i64,
            Option<i64>,
            Option<i64>,
            i32,
        );
        let rows: Vec<Row> = self.paged(sql, pair_key(me, with), page).await?;
        let mut messages: Vec<DirectMessage> = rows
            .into_iter()
            .map(
                |(id, from, to, recipient, text, ts, reply_to, edited, deleted)| {
                    // Both sides are accounts: the sender is the one that
                    // is not the recipient (nicks may differ from account
                    // names).
                    let to_me = recipient == key(me);
                    let account = Some(if to_me { with.clone() } else { me.clone() });
                    DirectMessage {
                        id: id as u64,
                        from: nick(from),
                        to: nick(to),
                        text,
                        ts: ts as u64,
                        account,
                        notice: false,
                        reply_to: reply_to.map(|r| r as u64),
                        edited: edited.map(|e| e as u64),
                        deleted: deleted != 0,
                        reactions: Vec::new(),
                    }
                },
            )
            .collect();
        self.reactions("", &mut messages).await?;
        Ok(messages)
    }

    /// `account`'s direct conversations (the peers' account names) with a
    /// whisper strictly between the two times (Unix ms, either order),
    /// with the time of the newest, oldest first; at most `limit`, the
    /// ones nearest `from`.
    pub async fn conversations(
        &self,
        account: &Nick,
        from: u64,
        to: u64,
        limit: u32,
    ) -> anyhow::Result<Vec<(Nick, u64)>> {
        let (low, high) = (from.min(to), from.max(to));
        let sql = if from <= to {
            "SELECT shown, last_ts FROM conversations WHERE account = $1 \
             AND last_ts > $2 AND last_ts < $3 ORDER BY last_ts ASC LIMIT $4"
        } else {
            "SELECT shown, last_ts FROM conversations WHERE account = $1 \
             AND last_ts > $2 AND last_ts < $3 ORDER BY last_ts DESC LIMIT $4"
        };
        let mut rows: Vec<(String, i64)> = with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(key(account))
                .bind(i(low))
                .bind(i(high))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        if from > to {
            rows.reverse();
        }
        Ok(rows
            .into_iter()
            .map(|(peer, ts)| (nick(peer), ts as u64))
            .collect())
    }

    /// `account`'s read positions, the most recently moved first (at most
    /// `limit`): (target as stored: `#room` or an account's key, its name
    /// as spelled, message id, its time).
    pub async fn read_positions(
        &self,
        account: &Nick,
        limit: usize,
    ) -> anyhow::Result<Vec<(String, String, u64, u64)>> {
        let rows: Vec<(String, String, i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT target, shown, id, ts FROM read_positions WHERE account = $1 \
                 ORDER BY ts DESC LIMIT $2",
            )
            .bind(key(account))
            .bind(limit as i64)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(target, shown, id, ts)| (target, shown, id as u64, ts as u64))
            .collect())
    }

    /// The rooms `account` is in (its stored memberships), oldest first, at
    /// most `limit`.
    pub async fn memberships(&self, account: &Nick, limit: usize) -> anyhow::Result<Vec<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT room FROM memberships WHERE account = $1 AND left_at IS NULL \
                 ORDER BY since LIMIT $2",
            )
            .bind(key(account))
            .bind(limit as i64)
            .fetch_all(pool)
            .await?
        }))
    }

    /// The always-on accounts with their rooms, oldest membership first (at
    /// most `limit` memberships in all): who is back in its rooms, away,
    /// when the server starts.
    pub async fn always_on_memberships(
        &self,
        limit: usize,
    ) -> anyhow::Result<Vec<(Nick, Vec<RoomName>)>> {
        let rows: Vec<(String, String)> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT a.name, m.room FROM memberships m JOIN accounts a ON a.key = m.account \
                 WHERE a.always_on <> 0 AND m.left_at IS NULL ORDER BY a.key, m.since LIMIT $1",
            )
            .bind(limit as i64)
            .fetch_all(pool)
            .await?
        });
        let mut accounts: Vec<(Nick, Vec<RoomName>)> = Vec::new();
        for (name, room) in rows {
            let (Ok(name), Ok(room)) = (Nick::new(&name), RoomName::new(&room)) else {
                continue;
            };
            match accounts.last_mut() {
                Some((last, rooms)) if *last == name => rooms.push(room),
                _ => accounts.push((name, vec![room])),
            }
        }
        Ok(accounts)
    }

    /// Whether `account` left `room` (part or kick, from any device) and
    /// has not joined it again since.
    pub async fn left(&self, account: &Nick, room: &RoomName) -> anyhow::Result<bool> {
        let left: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT left_at FROM memberships WHERE account = $1 AND room = $2 AND left_at IS NOT NULL",
            )
            .bind(key(account))
            .bind(room.as_str())
            .fetch_optional(pool)
            .await?
        });
        Ok(left.is_some())
    }

    /// Whether `account` stays in its rooms while none of its devices is
    /// connected (`true` for an account that is not stored).
    pub async fn always_on(&self, account: &Nick) -> anyhow::Result<bool> {
        let on: Option<i32> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT always_on FROM accounts WHERE key = $1")
                .bind(key(account))
                .fetch_optional(pool)
                .await?
        });
        Ok(on != Some(0))
    }

    /// The message a read position names: in `room`, or (`with`) in the
    /// direct conversation of accounts `me` and `with`; by id, or (`ts`)
    /// the newest at or before that time. Its (id, time), if it exists.
    pub async fn read_mark(
        &self,
        place: Place<'_>,
        id: Option<u64>,
        ts: u64,
    ) -> anyhow::Result<Option<(u64, u64)>> {
        if matches!(place, Place::Room(_)) {
            self.settled().await?;
        }
        let (value, sql) = match (place, id) {
            (Place::Room(room), Some(_)) => (room.to_string(), READ_ROOM_ID),
            (Place::Room(room), None) => (room.to_string(), READ_ROOM_TS),
            (Place::Direct(me, with), Some(_)) => (pair_key(me, with), READ_DIRECT_ID),
            (Place::Direct(me, with), None) => (pair_key(me, with), READ_DIRECT_TS),
        };
        let row: Option<(i64, i64)> = with_pool!(self, pool => {
            sqlx::query_as(sql)
                .bind(&value)
                .bind(id.map_or(i(ts), i))
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(|(id, ts)| (id as u64, ts as u64)))
    }

    /// Copies the whole database, consistently, into a new file at `to`
    /// (SQLite's `VACUUM INTO`); works while the server runs. Not for
    /// PostgreSQL (use `pg_dump`).
    pub async fn backup(&self, to: &Path) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Sqlite(path) => {
                self.settled().await?;
                backup_file(path, to).await
            }
            Backend::Postgres(_) => anyhow::bail!("{PG_BACKUP}"),
        }
    }

    /// Waits until every write queued so far has committed.
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.request(Write::Flush).await
    }

    /// Before a read of room messages: waits until what the message log
    /// holds is in the tables, if anything is ([`journal`]).
    async fn settled(&self) -> anyhow::Result<()> {
        let waiting = self.waiting.as_ref();
        if waiting.is_some_and(|w| w.load(std::sync::atomic::Ordering::Relaxed) > 0) {
            self.flush().await?;
        }
        Ok(())
    }

    /// For `/readyz`: the writer runs and has a connection, and the database
    /// answers a read (within `CHECK_TIMEOUT`). Fails at once while the
    /// writer knows its database to be unreachable.
    pub async fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.writes.is_closed(), "the store's writer has stopped");
        if let Some(why) = self.health.down() {
            anyhow::bail!("no connection to the database ({why}); reconnecting");
        }
        let answered = tokio::time::timeout(CHECK_TIMEOUT, async {
            with_pool!(self, pool => {
                sqlx::query("SELECT 1").execute(pool).await.map(drop)
            })
        })
        .await;
        match answered {
            Ok(outcome) => Ok(outcome?),
            Err(_) => anyhow::bail!(
                "the database did not answer within {}s",
                CHECK_TIMEOUT.as_secs_f32()
            ),
        }
    }
}

/// What `banter backup` and [`Store::backup`] say with a PostgreSQL store.
pub const PG_BACKUP: &str = "banter backup copies SQLite databases only; with a PostgreSQL \
    store, back up with PostgreSQL's own tools, e.g. \
    pg_dump --format=custom --file=banter.dump 'postgres://USER@HOST/DATABASE' \
    (restore with pg_restore)";

/// `VACUUM INTO` from the database at `from` to a new file `to`, through a
/// connection of its own (so a running server's readers and writer go on).
pub async fn backup_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        anyhow::bail!("{} exists already; backup writes a new file", to.display());
    }
    let target = to
        .to_str()
        .context("the backup path must be valid UTF-8")?
        .to_string();
    let options = SqliteConnectOptions::from_str("sqlite://")?
        .filename(from)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(10));
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot open the database {}", from.display()))?;
    // Read first: what the tables have not taken yet is still in the log
    // when the copy is made, or in the copy.
    let logged = journal::Journal::for_copy(from)?;
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot write the backup {}", to.display()))?;
    conn.close().await?;
    if !logged.is_empty() {
        let mut copy = SqliteConnection::connect_with(&connect_options(to))
            .await
            .with_context(|| format!("cannot open the backup {}", to.display()))?;
        journal::Journal::copy_into(&mut copy, logged)
            .await
            .with_context(|| format!("cannot write the backup {}", to.display()))?;
        copy.close().await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log's pages reach the database file without a checkpoint of
    /// the writer's: with the writer's off, the file grows only if
    /// [`backfill_every`] copies them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn committed_pages_are_copied_into_the_database_file_off_the_writer() {
        let dir = std::env::temp_dir().join(format!("banter-backfill-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("banter.db");
        let options = connect_options(&db).synchronous(SqliteSynchronous::Normal);
        let mut writer =
            SqliteConnection::connect_with(&options.clone().pragma("wal_autocheckpoint", "0"))
                .await
                .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&mut writer)
            .await
            .unwrap();
        for _ in 0..2_000 {
            sqlx::query("INSERT INTO t VALUES (zeroblob(1000))")
                .execute(&mut writer)
                .await
                .unwrap();
        }
        let size = || std::fs::metadata(&db).unwrap().len();
        assert!(size() < 100_000, "nothing is copied yet: {}", size());
        let backfill = tokio::spawn(backfill_every(options, db.clone()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < 2_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "the file has {} bytes",
                size()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        backfill.abort();
        drop(writer);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passwords_never_reach_the_logs() {
        for (url, shown) in [
            (
                "postgres://banter:pa:ss@db:5432/chat",
                "postgres://banter:***@db:5432/chat",
            ),
            (
                "postgres://banter:p%40ss@db/chat?sslmode=disable",
                "postgres://banter:***@db/chat?sslmode=disable",
            ),
            (
                "postgresql://db/chat?user=banter&password=secret&application_name=x",
                "postgresql://db/chat?user=banter&password=***&application_name=x",
            ),
            ("postgres://banter@db/chat", "postgres://banter@db/chat"),
            ("postgres://a:b@c@db", "postgres://a:***@db"),
            ("postgres://localhost", "postgres://localhost"),
        ] {
            assert_eq!(redact(url), shown, "{url}");
        }
    }
}
