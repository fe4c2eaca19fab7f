//! The store: history, accounts and room state in one SQLite file,
//! `<data-dir>/banter.db`, through `sqlx`.
//!
//! * Schema: the migrations in `backend/migrations/` (embedded, applied at
//!   startup; [`MIGRATIONS`] lists them). v1 holds history (`rooms`,
//!   `messages`, `directs`, `meta`), v2 accounts (`accounts`, `tokens`),
//!   room roles and bans (`room_roles`, `bans`) and the pending flag of
//!   whispers to offline accounts (cleared only once the client confirmed
//!   it read them, see `session.rs`; the comment in 0002 predates that, and
//!   an applied migration's text must not change). Each file's comments
//!   document its tables.
//! * WAL mode with `synchronous = FULL`: a commit is on disk when it
//!   returns, and readers never wait for the writer.
//! * Every write goes through one [`writer`] task (group commit); reads use
//!   a small pool of their own connections.
//!
//! Ids: the router assigns room message ids and direct ids (under its lock,
//! so they are in order); the store keeps the highest ever given
//! (`rooms.last_id`, `meta.last_direct_id`) so that ids keep increasing
//! across restarts even when retention deleted the messages themselves.

pub mod writer;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use banter_protocol::{BanInfo, ChatMessage, Nick, RoomName, Topic};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, SqlSafeStr};
use tokio::sync::{mpsc, oneshot};

pub use writer::{Committed, Write};

/// The database file inside the data directory.
pub const DB_FILE: &str = "banter.db";
/// Writes that may wait for the writer; beyond that, senders are told the
/// server is busy instead of growing memory.
pub const WRITE_QUEUE: usize = 64 * 1024;

/// The embedded migrations: (version, description, SQL).
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
];

/// A migrator with the migrations up to `version` (all: `i64::MAX`).
pub fn migrator(version: i64) -> Migrator {
    let migrations = MIGRATIONS
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

/// Everything the router needs to know about a room it loads.
#[derive(Clone, Debug, Default)]
pub struct RoomState {
    pub last_id: u64,
    pub last_ts: u64,
    /// The most recent messages, oldest first.
    pub recent: Vec<ChatMessage>,
    pub topic: Option<Topic>,
    pub owner: Option<Nick>,
    pub ops: Vec<Nick>,
    pub bans: Vec<BanInfo>,
}

/// Which messages a `history` request wants.
#[derive(Clone, Copy, Debug, Default)]
pub struct Page {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub before_ts: Option<u64>,
    pub after_ts: Option<u64>,
    /// With `after`/`after_ts`: the newest messages past it, not the
    /// oldest (IRC `CHATHISTORY LATEST` with a bound).
    pub latest: bool,
    pub limit: u32,
}

/// A room role kept in `room_roles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Op,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Op => "op",
        }
    }
}

/// The lower-case key a name is stored under.
pub fn key(nick: &Nick) -> String {
    nick.as_str().to_ascii_lowercase()
}

/// `rooms`: last id, topic text, set by, set at.
type RoomRow = (i64, Option<String>, Option<String>, Option<i64>);

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn nick(s: String) -> Nick {
    // Stored names were valid when written; a damaged one is shown as is.
    Nick::new(s.clone()).unwrap_or_else(|_| Nick::new("invalid").expect("valid"))
}

fn chat(room: &RoomName, (id, sender, text, ts): (i64, String, String, i64)) -> ChatMessage {
    ChatMessage {
        room: room.clone(),
        id: id as u64,
        from: nick(sender),
        text,
        ts: ts as u64,
        // Not stored: who was logged in, and notices, are shown on
        // live delivery only.
        account: None,
        notice: false,
    }
}

/// The open store: a read pool and the writer's queue.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    writes: mpsc::Sender<Write>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `<dir>/banter.db`, applies the migrations
    /// and starts the writer task, which hands what it committed to
    /// `on_commit`.
    pub async fn open(
        dir: &Path,
        on_commit: impl FnMut(&mut Vec<Committed>, bool) + Send + 'static,
    ) -> anyhow::Result<Store> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        let path = dir.join(DB_FILE);
        let options = connect_options(&path);
        let mut conn = SqliteConnection::connect_with(&options)
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        migrator(i64::MAX)
            .run(&mut conn)
            .await
            .with_context(|| format!("cannot migrate the database {}", path.display()))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open the database {}", path.display()))?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(writer::run(conn, queue, on_commit));
        Ok(Store { pool, writes, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The writer's queue (the router enqueues under its lock with
    /// `try_reserve`, which never waits).
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
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM accounts")
            .fetch_all(&self.pool)
            .await?;
        Ok(names.into_iter().map(nick).collect())
    }

    /// The highest direct message id ever given.
    pub async fn last_direct_id(&self) -> anyhow::Result<u64> {
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'last_direct_id'), 0), \
             coalesce((SELECT max(id) FROM directs), 0))",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(id.unwrap_or(0) as u64)
    }

    /// An account's name and password hash.
    pub async fn account(&self, name: &Nick) -> anyhow::Result<Option<(Nick, String)>> {
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT name, password_hash FROM accounts WHERE key = ?")
                .bind(key(name))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(n, h)| (nick(n), h)))
    }

    /// The account a token (by its hash) logs into.
    pub async fn token_account(&self, hash: &[u8]) -> anyhow::Result<Option<Nick>> {
        let name: Option<String> = sqlx::query_scalar(
            "SELECT a.name FROM tokens t JOIN accounts a ON a.key = t.account WHERE t.hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(name.map(nick))
    }

    /// A room's state, with its `recent` most recent messages.
    pub async fn load_room(&self, room: &RoomName, recent: usize) -> anyhow::Result<RoomState> {
        let mut conn = self.pool.acquire().await?;
        let row: Option<RoomRow> =
            sqlx::query_as("SELECT last_id, topic, topic_by, topic_ts FROM rooms WHERE name = ?")
                .bind(room.as_str())
                .fetch_optional(&mut *conn)
                .await?;
        let mut state = RoomState::default();
        if let Some((last_id, topic, by, ts)) = row {
            state.last_id = last_id as u64;
            if let (Some(text), Some(by), Some(ts)) = (topic, by, ts) {
                state.topic = Some(Topic {
                    text,
                    by: nick(by),
                    ts: ts as u64,
                });
            }
        }
        let mut rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT id, sender, text, ts FROM messages WHERE room = ? ORDER BY id DESC LIMIT ?",
        )
        .bind(room.as_str())
        .bind(recent as i64)
        .fetch_all(&mut *conn)
        .await?;
        rows.reverse();
        state.recent = rows.into_iter().map(|r| chat(room, r)).collect();
        if let Some(last) = state.recent.last() {
            state.last_id = state.last_id.max(last.id);
            state.last_ts = last.ts;
        }
        let roles: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.name, r.role FROM room_roles r JOIN accounts a ON a.key = r.account \
             WHERE r.room = ? ORDER BY a.key",
        )
        .bind(room.as_str())
        .fetch_all(&mut *conn)
        .await?;
        for (name, role) in roles {
            match role.as_str() {
                "owner" => state.owner = Some(nick(name)),
                _ => state.ops.push(nick(name)),
            }
        }
        let bans: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT kind, shown, by, ts FROM bans WHERE room = ? ORDER BY ts, target",
        )
        .bind(room.as_str())
        .fetch_all(&mut *conn)
        .await?;
        state.bans = bans
            .into_iter()
            .map(|(kind, shown, by, ts)| {
                let target = Some(nick(shown));
                let (nick_ban, account) = if kind == "account" {
                    (None, target)
                } else {
                    (target, None)
                };
                BanInfo {
                    nick: nick_ban,
                    account,
                    by: nick(by),
                    ts: ts as u64,
                }
            })
            .collect();
        Ok(state)
    }

    /// A page of a room's history within the bounds, oldest first: with
    /// `after`/`after_ts` (and not `latest`) the oldest messages past it,
    /// otherwise the newest (before `before`/`before_ts`, if given).
    pub async fn history(&self, room: &RoomName, page: Page) -> anyhow::Result<Vec<ChatMessage>> {
        let forward = (page.after.is_some() || page.after_ts.is_some()) && !page.latest;
        let sql = if forward {
            "SELECT id, sender, text, ts FROM messages \
             WHERE room = ? AND id > ? AND id < ? AND ts > ? AND ts < ? ORDER BY id ASC LIMIT ?"
        } else {
            "SELECT id, sender, text, ts FROM messages \
             WHERE room = ? AND id > ? AND id < ? AND ts > ? AND ts < ? ORDER BY id DESC LIMIT ?"
        };
        let mut rows: Vec<(i64, String, String, i64)> = sqlx::query_as(sql)
            .bind(room.as_str())
            .bind(page.after.map_or(-1, i))
            .bind(page.before.map_or(i64::MAX, i))
            .bind(page.after_ts.map_or(-1, i))
            .bind(page.before_ts.map_or(i64::MAX, i))
            .bind(i64::from(page.limit))
            .fetch_all(&self.pool)
            .await?;
        if !forward {
            rows.reverse();
        }
        Ok(rows.into_iter().map(|r| chat(room, r)).collect())
    }

    /// Copies the whole database, consistently, into a new file at `to`
    /// (SQLite's `VACUUM INTO`); works while the server runs.
    pub async fn backup(&self, to: &Path) -> anyhow::Result<()> {
        backup_file(&self.path, to).await
    }

    /// Waits until every write queued so far has committed.
    pub async fn flush(&self) -> anyhow::Result<()> {
        self.request(Write::Flush).await
    }

    /// For `/readyz`: the database answers a read and the writer runs.
    pub async fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.writes.is_closed(), "the store's writer has stopped");
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

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
    sqlx::query("VACUUM INTO ?")
        .bind(target)
        .execute(&mut conn)
        .await
        .with_context(|| format!("cannot write the backup {}", to.display()))?;
    conn.close().await?;
    Ok(())
}
