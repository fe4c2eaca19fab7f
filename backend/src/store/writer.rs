//! The single writer task: group commit.
//!
//! Every change to the database is a [`Write`] in one queue. The writer
//! takes whatever has arrived (up to [`MAX_BATCH`]; under steady writes,
//! and while more keeps arriving, after letting the runtime turn a few
//! times: [`gather`]), applies it in one transaction and commits; while
//! that commit is being synced to disk, new writes queue up and become
//! the next batch. So a burst of N messages costs a handful of commits
//! and fsyncs, not N.
//!
//! Only after the commit returns are the committed messages and room
//! changes (topics, roles, bans) handed to the callback (the router's
//! delivery), in queue order, and the answers of writes that wait for one
//! sent. That is the durability promise: nobody, the sender included, sees
//! a message or a room change that is not on disk. If a commit fails,
//! nothing of the batch is delivered or applied, and the senders are told.
//!
//! A batch of room messages alone, the usual one, is committed to the
//! message log instead ([`Journal`], `journal.rs`), with SQLite syncing
//! every `--sync-every`: one append, then delivered; the writer moves
//! what the log holds into the tables ([`apply_log`]) in a task of its
//! own on its connection while it goes on appending, and before any
//! other write. Without a log (`--sync-every 0`), such a batch is one
//! statement text for SQLite ([`sqlite_chats`]): one trip to sqlx's
//! thread, not one per statement. The SQLite full-text index is kept beside the commit: a
//! commit only numbers its messages (`seq`, in commit order), and the
//! writer indexes what is past the highest number indexed, in batches
//! ([`Database::index`]) when idle, when much is waiting, or before a
//! search.
//!
//! The writer holds one connection of its own, to SQLite or PostgreSQL
//! ([`Database`]). The statements are the same text for both (`$n`
//! parameters, `ON CONFLICT`, no two-argument `max`), but sqlx types them
//! per driver, so `backend!` instantiates the code once for each
//! connection type. A PostgreSQL connection can break (the server
//! restarts, the network fails): the batch that finds it broken fails as
//! any other, the writer drops the connection and opens a new one, at once
//! and then with a capped backoff, so that writing resumes by itself when
//! the database is back; meanwhile each batch fails at once, and
//! [`Health`] says why (for `/readyz`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use banter_protocol::{BanList, ChatMessage, DirectMessage, ErrorCode, Nick, ReadMark, ServerBan};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::i;
use crate::core::event::{
    AmendEvent, Amended, Amendment, ChatEvent, DirectEvent, Event, RoomChange, RoomEvent,
};
use crate::core::model::{key, pair_key, pair_keys};
use crate::core::port::Verdict;
use crate::store::Mailbox;
use crate::store::journal::{self, Journal};

/// Most writes in one transaction.
pub const MAX_BATCH: usize = 1024;

/// Most runtime turns the writer lets pass, gathering writes, before a
/// commit ([`gather`]).
const GATHER_TURNS: usize = 4;

/// The writer gathers only when its last commit ended this shortly before
/// the batch came (steady writes; the fan-out and indexing after a commit
/// count in the gap): a turn can be long (in a big room, the fan-out of
/// the last message), and a message that comes alone should not wait for
/// it.
const GATHER_WHEN: Duration = Duration::from_millis(2);

/// Most messages (and as many direct messages) indexed for search in one
/// transaction; with four times this many waiting, the writer indexes
/// them at once, whatever is queued.
const INDEX_CHUNK: usize = 1024;

/// With this many waiting, the writer indexes that many whenever a commit
/// leaves its queue empty: a pause in the gaps of a steady load (2.7 ms
/// at the median, 14 at most, by hand at 5,000 messages a second in
/// rooms of 10), rather than a long one later. Fewer, larger chunks write
/// fewer and larger index segments: 128 at a time cost a tenth more of
/// the SQLite thread's time.
const INDEX_GAP: usize = 1024;

/// How long the writer waits, idle, before it indexes what is waiting.
const INDEX_IDLE: Duration = Duration::from_millis(200);

/// With this many rows in the message log ([`Journal`]), the writer moves
/// them into the tables, beside its appends. The more a move takes, the
/// more of a room's messages share its pages: at 5,000 messages a second
/// in 1,000 rooms of 10, moving 4,096 or a second's worth at a time cost
/// the store 8–9 µs of CPU a message, 1,024 or a quarter second's 15
/// (bench/notes.md, "The message log").
const APPLY_ROWS: usize = 4096;

/// Or with this many bytes of rows waiting, whatever their number: the
/// rows wait in memory too, and long messages would otherwise keep
/// megabytes there (4,096 chat lines of a few hundred bytes are far below).
const APPLY_BYTES: usize = 2 << 20;

/// What waits in the message log is moved into the tables this long after
/// it was appended, at the latest.
const APPLY_AFTER: Duration = Duration::from_secs(1);

/// Most rows moved from the message log in one transaction (and at most
/// [`APPLY_BYTES`] of them, unless one record is more).
const APPLY_MOST: usize = 8192;

/// After a failure to move the message log into the tables, the next try
/// waits this long.
const APPLY_RETRY: Duration = Duration::from_secs(1);

/// One change to the database.
#[derive(Debug)]
pub enum Write {
    Chat(ChatEvent),
    /// A whisper; for an offline account (no target), stored waiting
    /// unless its waiting whispers are at the mailbox's bounds.
    Direct(DirectEvent, Mailbox),
    Room(RoomEvent),
    /// Sets `account`'s notification level in `target` (`#room`, or the
    /// other account's key; `shown`: as spelled): the default removes it.
    /// Answers once stored.
    NotifyLevel {
        account: Nick,
        target: String,
        shown: String,
        level: banter_protocol::NotifyLevel,
        reply: oneshot::Sender<()>,
    },
    /// Keeps a push subscription for `account` (its endpoint's earlier one,
    /// of any account, replaced); past `limit`, the account's oldest go.
    AddSubscription {
        account: Nick,
        subscription: crate::push::Subscription,
        limit: usize,
        reply: oneshot::Sender<()>,
    },
    /// Forgets `account`'s subscription with `endpoint`.
    DropSubscription {
        account: Nick,
        endpoint: String,
        reply: oneshot::Sender<()>,
    },
    /// Keeps server key `name` unless there is one already.
    ServerKey {
        name: String,
        value: String,
        reply: oneshot::Sender<()>,
    },
    /// Replaces `account`'s highlight words.
    Highlights {
        account: Nick,
        words: Vec<String>,
        reply: oneshot::Sender<()>,
    },
    /// An edit, deletion or reaction: checked against the stored message
    /// ([`Amendment::check`]) and made, or refused with why.
    Amend(AmendEvent),
    /// Creates an account, using up one use of the invite code (by its
    /// hash) if one is given; answers what became of it.
    Register {
        name: Nick,
        hash: String,
        invite: Option<Vec<u8>>,
        reply: oneshot::Sender<Registered>,
    },
    /// Adds an invite code (by its hash) good for `uses` accounts until
    /// `expires` (Unix ms).
    AddInvite {
        hash: Vec<u8>,
        uses: u32,
        expires: u64,
        by: Option<Nick>,
        reply: oneshot::Sender<()>,
    },
    /// Adds a login token, and deletes the account's tokens unused since
    /// `expired_before` (Unix ms).
    AddToken {
        account: Nick,
        hash: Vec<u8>,
        expired_before: u64,
        reply: oneshot::Sender<()>,
    },
    /// Grants (or revokes) server administration; answers whether the
    /// account exists.
    SetAdmin {
        account: Nick,
        admin: bool,
        reply: oneshot::Sender<bool>,
    },
    /// Sets (`ban`) or lifts (`None`) the server ban on (kind, target).
    ServerBan {
        kind: &'static str,
        target: String,
        ban: Option<ServerBan>,
        reply: oneshot::Sender<()>,
    },
    /// A token logged in: it is renewed (see `--token-days`).
    TouchToken {
        hash: Vec<u8>,
    },
    /// `account` joined `room` (`member`), or left it: its stored
    /// memberships follow. Nothing answers.
    Membership {
        account: Nick,
        room: String,
        member: bool,
    },
    /// Turns an account's always-on setting on or off.
    SetAlwaysOn {
        account: Nick,
        on: bool,
        reply: oneshot::Sender<()>,
    },
    /// Moves an account's read position at `target` (`#room`, or the other
    /// account's key; `shown`: its name as spelled) forward to `mark`;
    /// answers the position stored (which may be newer, or `None` if the
    /// account no longer exists).
    MarkRead {
        account: Nick,
        target: String,
        shown: String,
        mark: ReadMark,
        reply: oneshot::Sender<Option<ReadMark>>,
    },
    /// Sets an account's password hash and revokes all its tokens.
    SetPassword {
        account: Nick,
        hash: String,
        reply: oneshot::Sender<()>,
    },
    /// Deletes an account, its tokens, its room roles and the whispers
    /// waiting for it; answers whether it existed.
    DeleteAccount {
        account: Nick,
        reply: oneshot::Sender<bool>,
    },
    /// Revokes one token (by hash) or all of an account's; answers how many.
    RevokeTokens {
        account: Nick,
        hash: Option<Vec<u8>>,
        reply: oneshot::Sender<u64>,
    },
    /// Marks whispers that waited for `account` delivered.
    Delivered {
        account: Nick,
        ids: Vec<u64>,
    },
    /// Retention: deletes room messages older than `before_ts` and beyond
    /// the newest `keep` per room (and delivered directs older than
    /// `before_ts`); answers how many rows went.
    Retain {
        before_ts: Option<u64>,
        keep: Option<u64>,
        reply: oneshot::Sender<u64>,
    },
    /// Stores room messages and direct messages that were delivered
    /// already (by another node of a cluster), keeping `rooms.last_id` and
    /// `meta.last_direct_id` as [`Write::Chat`] and [`Write::Direct`] do,
    /// but without [`Event`] delivery. Idempotent: a message whose key
    /// (room and id; direct id) is stored already is left as it is, so a
    /// retry after a failure neither fails nor duplicates. Answers once
    /// committed (the reply is dropped if the commit fails).
    Persist {
        messages: Vec<ChatMessage>,
        /// Each with whether it waits for its (offline) recipient.
        directs: Vec<(DirectMessage, bool)>,
        /// Whispers to a session logged into the account beside each:
        /// waiting (under that account) until a session of it confirms it
        /// read them (see the session's `confirm`), as on one node; no
        /// mailbox bounds, the recipient is online.
        unconfirmed: Vec<(DirectMessage, Nick)>,
        /// Bounds on the waiting ones (`None`: none); answers the ids of
        /// those refused for it (not stored).
        mailbox: Option<Mailbox>,
        reply: oneshot::Sender<Vec<u64>>,
    },
    /// Answers once everything queued before it has committed.
    Flush(oneshot::Sender<()>),
    /// Answers once every message committed before it is in the full-text
    /// index (SQLite indexes beside the commit, see [`Database::index`];
    /// PostgreSQL's index is part of the commit, so at once).
    Index(oneshot::Sender<()>),
}

/// What became of a [`Write::Register`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registered {
    Created,
    /// The name has an account already.
    Taken,
    /// The invite code does not exist, expired or is used up.
    BadInvite,
}

enum Answer {
    Nothing,
    Registered(Registered),
    Created(bool),
    Count(u64),
    /// The read position stored after a [`Write::MarkRead`] (`None`: the
    /// account is gone).
    Mark(Option<ReadMark>),
    /// A whisper that would overfill an offline account's mailbox.
    MailboxFull {
        per_recipient: bool,
    },
    /// The waiting whispers of a [`Write::Persist`] refused for their
    /// mailbox's bounds.
    Refused(Vec<u64>),
    /// A [`Write::Amend`] refused by the rule, with why.
    Unamended(ErrorCode, String),
}

/// How long opening a PostgreSQL connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one PostgreSQL transaction may take before its connection is
/// given up as hung (the batch fails; whether it committed is unknown).
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the check of a connection after a failure may take.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// A PostgreSQL connection idle this long is checked, so that a restarted
/// server is noticed (and reconnected to) before a write finds out.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// Waits between reconnection attempts: doubling from the first to the
/// last.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_CAP: Duration = Duration::from_secs(2);

/// Whether the writer has a working connection; `None`: yes, else why
/// not. Shared with [`super::Store::check`].
#[derive(Debug, Default)]
pub struct Health(Mutex<Option<String>>);

impl Health {
    /// Why the writer has no connection, if it has none.
    pub fn down(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }

    fn set(&self, why: Option<String>) {
        *self.0.lock().unwrap() = why;
    }
}

/// The writer's connection, to either backend.
#[derive(Debug)]
pub enum Conn {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// How the writer opens (and reopens) its connection.
#[derive(Clone, Debug)]
pub enum Connector {
    Sqlite(SqliteConnectOptions),
    Postgres(PgConnectOptions),
}

impl Connector {
    pub async fn connect(&self) -> sqlx::Result<Conn> {
        match self {
            Connector::Sqlite(options) => {
                let mut conn = SqliteConnection::connect_with(options).await?;
                super::in_background(super::STORE_THREAD);
                keep_temporary_data_in_memory(&mut conn, true).await?;
                Ok(Conn::Sqlite(conn))
            }
            Connector::Postgres(options) => {
                match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(options))
                    .await
                {
                    Ok(conn) => Ok(Conn::Postgres(conn?)),
                    Err(_) => Err(sqlx::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no connection within {}s", CONNECT_TIMEOUT.as_secs_f32()),
                    ))),
                }
            }
        }
    }
}

/// Why a batch failed.
enum Failure {
    /// Before anything was sent (the transaction did not begin): safe to
    /// retry on another connection.
    Begin(sqlx::Error),
    Batch(sqlx::Error),
    /// The transaction did not end in time.
    TimedOut,
    /// The connection may be left inside a transaction: drop it.
    Broken(sqlx::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Begin(e) | Failure::Batch(e) | Failure::Broken(e) => write!(f, "{e}"),
            Failure::TimedOut => write!(
                f,
                "the transaction did not end within {}s",
                COMMIT_TIMEOUT.as_secs()
            ),
        }
    }
}

/// The writer's connection, reopened when it breaks.
pub struct Database {
    connector: Connector,
    conn: Option<Conn>,
    health: Arc<Health>,
    backoff: Duration,
    /// Without a connection: when to try again.
    retry_at: Instant,
    /// With one: when it was last known to work.
    last_ok: Instant,
    /// SQLite: about how many stored messages wait to be indexed for
    /// search (at least 1 if any may).
    behind: usize,
    /// When the last batch was committed.
    last_commit: Instant,
    /// SQLite, syncing every `--sync-every`: the message log, where
    /// batches of room messages are committed.
    journal: Option<Journal>,
    /// Moving the message log into the tables, on the connection (taken
    /// from `conn` meanwhile).
    applying: Option<tokio::task::JoinHandle<Applied>>,
    /// After a failure to move the message log: not before then.
    apply_at: Instant,
}

/// A move of the message log into the tables that ended: the connection,
/// what was moved (the last record and how many rows, or why not), how
/// many rows were then indexed for search, if any were to be, with
/// whether more wait (or why not), and whether the database's log was
/// then synced for the message log to go on in its other file.
type Applied = (
    SqliteConnection,
    sqlx::Result<(u64, usize)>,
    Option<(usize, sqlx::Result<bool>)>,
    bool,
);

impl Database {
    /// `conn`, opened (and migrated) by the caller with `connector`.
    pub fn new(
        connector: Connector,
        conn: Conn,
        health: Arc<Health>,
        journal: Option<Journal>,
    ) -> Database {
        health.set(None);
        Database {
            // A crash may have left messages unindexed.
            behind: usize::from(matches!(conn, Conn::Sqlite(_))),
            connector,
            conn: Some(conn),
            health,
            backoff: BACKOFF_FIRST,
            retry_at: Instant::now(),
            last_ok: Instant::now(),
            last_commit: Instant::now(),
            journal,
            applying: None,
            apply_at: Instant::now(),
        }
    }

    /// Commits `batch` to the message log if it can: SQLite with a log,
    /// room messages alone, and the log not at its bound (nor the
    /// database known down). Answers whether it did.
    fn journaled(&mut self, batch: &[Write]) -> bool {
        let Some(journal) = &mut self.journal else {
            return false;
        };
        let chats = batch.iter().all(|w| matches!(w, Write::Chat(_)));
        let room = journal.has_room(batch.len());
        let connected = self.conn.is_some() || self.applying.is_some();
        if !chats || !room || !connected || batch.is_empty() {
            return false;
        }
        let rows = json_rows(batch.iter().filter_map(|w| match w {
            Write::Chat(ChatEvent { message, .. }) => Some(message),
            _ => None,
        }));
        match journal.append(rows, batch.len()) {
            Ok(()) => true,
            Err(e) => {
                warn!(error = %e, "could not append to the message log; committing to the database instead");
                false
            }
        }
    }

    /// When to move the message log into the tables, if nothing else
    /// does before.
    fn apply_due(&self) -> Option<Instant> {
        if self.applying.is_some() {
            return None;
        }
        let since = self.journal.as_ref()?.since()?;
        Some((since + APPLY_AFTER).max(self.apply_at))
    }

    /// Starts moving what waits in the message log into the tables (up to
    /// [`APPLY_MOST`] rows), on the connection, while the writer goes on
    /// appending; then, with [`INDEX_GAP`] or more waiting, indexing them
    /// for search, so that neither holds up a commit.
    /// [`Database::finish_apply`] ends it.
    fn start_apply(&mut self) {
        if self.applying.is_some() || Instant::now() < self.apply_at {
            return;
        }
        let Some(batch) = self
            .journal
            .as_ref()
            .and_then(|j| j.batch(APPLY_MOST, APPLY_BYTES))
        else {
            return;
        };
        let mut conn = match self.conn.take() {
            Some(Conn::Sqlite(conn)) => conn,
            other => {
                // No connection (it is being reopened): not before the
                // next try, or the writer would spin on this.
                self.conn = other;
                self.apply_at = Instant::now() + APPLY_RETRY;
                return;
            }
        };
        let behind = self.behind + batch.count;
        let index = (behind >= INDEX_GAP).then_some(behind.min(4 * INDEX_CHUNK));
        let switch = self.journal.as_ref().and_then(|j| j.switch_due(batch.upto));
        self.applying = Some(tokio::spawn(async move {
            let moved = apply_log(&mut conn, &batch)
                .await
                .map(|()| (batch.upto, batch.count));
            let indexed = match (index, &moved) {
                (Some(rows), Ok(_)) => Some((rows, index_chunk(&mut conn, rows).await)),
                _ => None,
            };
            let synced = sync_for_switch(switch.filter(|_| moved.is_ok())).await;
            (conn, moved, indexed, synced)
        }));
    }

    /// Waits for the move of the message log in progress, if any, and
    /// takes the connection back.
    async fn finish_apply(&mut self) {
        if let Some(applying) = self.applying.take() {
            let done = applying.await;
            self.applied(done);
        }
    }

    /// What a move of the message log came to.
    fn applied(&mut self, done: Result<Applied, tokio::task::JoinError>) {
        let Ok((conn, moved, indexed, synced)) = done else {
            // The task panicked with the connection: open another.
            self.lost("moving the message log into the database failed".into());
            return;
        };
        self.conn = Some(Conn::Sqlite(conn));
        let Some(journal) = &mut self.journal else {
            return;
        };
        match moved {
            Ok((upto, count)) => {
                journal.applied(upto);
                self.behind += count;
                match indexed {
                    Some((rows, Ok(more))) => {
                        self.behind = if more {
                            self.behind.saturating_sub(rows).max(1)
                        } else {
                            0
                        };
                    }
                    Some((_, Err(e))) => {
                        warn!(error = %e, "could not index messages for search; trying again later");
                    }
                    None => {}
                }
                if synced && let Err(e) = journal.switch() {
                    warn!(error = %e, "could not start the message log's other file; trying again later");
                }
            }
            Err(e) => {
                warn!(error = %e, rows = journal.rows(), "could not move the message log into the database; trying again (its messages are safe in the log)");
                self.apply_at = Instant::now() + APPLY_RETRY;
            }
        }
    }

    /// Moves everything in the message log into the tables, before a write
    /// that may read them or another connection's read; answers whether
    /// all of it is there.
    async fn settle(&mut self) -> bool {
        self.finish_apply().await;
        loop {
            let Some(batch) = self
                .journal
                .as_ref()
                .and_then(|j| j.batch(APPLY_MOST, APPLY_BYTES))
            else {
                return true;
            };
            // Without a connection, reopened first if an attempt is due
            // (as a commit would).
            if self.conn.is_none() && (Instant::now() < self.retry_at || !self.reconnect().await) {
                return false;
            }
            let Some(Conn::Sqlite(conn)) = &mut self.conn else {
                return false;
            };
            let moved = apply_log(conn, &batch)
                .await
                .map(|()| (batch.upto, batch.count));
            // Writes of other kinds may come often enough that the log
            // is moved here, never beside the appends: it changes files
            // here too.
            let switch = self.journal.as_ref().and_then(|j| j.switch_due(batch.upto));
            let synced = sync_for_switch(switch.filter(|_| moved.is_ok())).await;
            let Some(Conn::Sqlite(conn)) = self.conn.take() else {
                unreachable!("just used")
            };
            let failed = moved.is_err();
            self.applied(Ok((conn, moved, None, synced)));
            if failed {
                return false;
            }
        }
    }

    /// When to index for search, the writer being idle.
    fn index_due(&self) -> Option<Instant> {
        (self.behind > 0).then_some(self.last_commit + INDEX_IDLE)
    }

    /// Indexes for search SQLite's room messages past meta
    /// `search_messages` (by `seq`) and direct messages past
    /// `search_directs` (by id): `rows` of each, or with `all`, everything.
    /// Indexing many rows in one transaction costs little more than their
    /// words; an index kept inside each commit halved the store's
    /// throughput. Failures are logged and tried again later: the marks
    /// stay.
    /// Answers whether it indexed what it was asked to.
    async fn index(&mut self, rows: usize, all: bool) -> bool {
        self.finish_apply().await;
        let conn = match &mut self.conn {
            Some(Conn::Sqlite(conn)) => conn,
            Some(Conn::Postgres(_)) => {
                self.behind = 0;
                return true;
            }
            None => return false,
        };
        loop {
            match index_chunk(conn, rows).await {
                Ok(more) if more && all => {}
                Ok(more) => {
                    self.behind = if more {
                        self.behind.saturating_sub(rows).max(1)
                    } else {
                        0
                    };
                    return true;
                }
                Err(e) => {
                    warn!(error = %e, "could not index messages for search; trying again later");
                    self.last_commit = Instant::now();
                    return false;
                }
            }
        }
    }

    /// When the writer has something to do without a write: reconnect, or
    /// check an idle PostgreSQL connection.
    fn next_chore(&self) -> Option<Instant> {
        if self.applying.is_some() {
            return None;
        }
        match &self.conn {
            None => Some(self.retry_at),
            Some(Conn::Postgres(_)) => Some(self.last_ok + KEEPALIVE),
            Some(Conn::Sqlite(_)) => None,
        }
    }

    async fn chore(&mut self) {
        if self.conn.is_none() {
            self.reconnect().await;
        } else if !self.alive().await {
            warn!("lost the connection to the database; reconnecting");
            self.lost("the connection was lost".into());
        }
    }

    /// Whether the connection answers a ping.
    async fn alive(&mut self) -> bool {
        let ok = match &mut self.conn {
            None => false,
            Some(Conn::Sqlite(c)) => c.ping().await.is_ok(),
            Some(Conn::Postgres(c)) => {
                matches!(
                    tokio::time::timeout(PING_TIMEOUT, c.ping()).await,
                    Ok(Ok(()))
                )
            }
        };
        if ok {
            self.last_ok = Instant::now();
        }
        ok
    }

    /// Drops a broken connection; the next attempt to reopen it is due at
    /// once.
    fn lost(&mut self, why: String) {
        self.conn = None;
        self.backoff = BACKOFF_FIRST;
        self.retry_at = Instant::now();
        self.health.set(Some(why));
    }

    /// One attempt to open a connection; on failure the next is due after
    /// the (doubled) backoff.
    async fn reconnect(&mut self) -> bool {
        match self.connector.connect().await {
            Ok(conn) => {
                info!("connected to the database again");
                self.conn = Some(conn);
                self.last_ok = Instant::now();
                self.backoff = BACKOFF_FIRST;
                self.health.set(None);
                true
            }
            Err(e) => {
                if self.backoff == BACKOFF_FIRST {
                    warn!(error = %e, "cannot reconnect to the database; retrying");
                } else {
                    debug!(error = %e, "could not reconnect to the database");
                }
                self.retry_at = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_CAP);
                self.health.set(Some(e.to_string()));
                false
            }
        }
    }

    /// Commits a batch. Without a connection, reopens it first if an
    /// attempt is due, and otherwise fails at once.
    async fn commit(&mut self, batch: &[Write]) -> Result<Vec<Answer>, String> {
        if self.conn.is_none() && (Instant::now() < self.retry_at || !self.reconnect().await) {
            return Err(format!(
                "no connection to the database ({}); reconnecting",
                self.health.down().unwrap_or_default()
            ));
        }
        let mut retried = false;
        loop {
            let Some(conn) = &mut self.conn else {
                unreachable!("connected above")
            };
            let outcome = match conn {
                Conn::Sqlite(c)
                    if batch
                        .iter()
                        .all(|w| matches!(w, Write::Chat(_) | Write::Flush(_))) =>
                {
                    sqlite_chats(c, batch).await
                }
                Conn::Sqlite(c) => {
                    // Retention's journals can be as large as what it
                    // deletes: those spill to temporary files.
                    let sweep = batch.iter().any(|w| matches!(w, Write::Retain { .. }));
                    if sweep {
                        let _ = keep_temporary_data_in_memory(c, false).await;
                    }
                    let outcome = sqlite::commit(c, batch).await;
                    if sweep {
                        let _ = keep_temporary_data_in_memory(c, true).await;
                    }
                    outcome
                }
                Conn::Postgres(c) => {
                    tokio::time::timeout(COMMIT_TIMEOUT, postgres::commit(c, batch))
                        .await
                        .unwrap_or(Err(Failure::TimedOut))
                }
            };
            let failure = match outcome {
                Ok(answers) => {
                    self.last_ok = Instant::now();
                    return Ok(answers);
                }
                Err(failure) => failure,
            };
            let why = failure.to_string();
            if matches!(failure, Failure::TimedOut | Failure::Broken(_)) || !self.alive().await {
                self.lost(why.clone());
                // Nothing was sent on the broken connection: the batch can
                // go on a new one (a server restarted while we were idle).
                if matches!(failure, Failure::Begin(_)) && !retried && self.reconnect().await {
                    retried = true;
                    continue;
                }
            }
            return Err(why);
        }
    }
}

/// Lets the runtime take a few more turns before a commit, for as long as
/// each turn brings more writes (at most [`GATHER_TURNS`], and
/// [`MAX_BATCH`]): what other tasks have already read from their sockets
/// joins this batch instead of waiting for the next commit. A commit
/// costs much besides its writes (a trip to SQLite's thread and back,
/// locks, the log's pages shared by every message), so under load fewer,
/// larger commits save CPU; when nothing else is ready a turn takes
/// microseconds and the commit starts at once.
async fn gather(queue: &mut mpsc::Receiver<Write>, batch: &mut Vec<Write>) {
    for _ in 0..GATHER_TURNS {
        if batch.len() >= MAX_BATCH {
            return;
        }
        tokio::task::yield_now().await;
        let before = batch.len();
        while batch.len() < MAX_BATCH
            && let Ok(write) = queue.try_recv()
        {
            batch.push(write);
        }
        if batch.len() == before {
            return;
        }
    }
}

/// SQLite: whether `conn` keeps its temporary data (statement journals,
/// sorts, temporary indexes) in memory, or spills what grows past a few
/// pages to temporary files. The writer keeps it in memory: its commits'
/// statement journals, a few pages each, went to files created and
/// deleted hundreds of times a second under load; in memory they are
/// bounded by [`MAX_BATCH`] and [`INDEX_CHUNK`]. Retention's sweeps, as
/// large as what they delete, spill.
pub async fn keep_temporary_data_in_memory(
    conn: &mut SqliteConnection,
    memory: bool,
) -> sqlx::Result<()> {
    let sql = if memory {
        "PRAGMA temp_store = MEMORY"
    } else {
        "PRAGMA temp_store = FILE"
    };
    sqlx::query(sql).execute(conn).await.map(|_| ())
}

/// Runs until every sender of `queue` is gone. `on_commit` gets the
/// messages of each batch, in order, and whether they were saved; then
/// each whisper the batch refused, with why.
pub async fn run(
    mut link: Database,
    mut queue: mpsc::Receiver<Write>,
    mut on_commit: impl FnMut(&mut Vec<Event>, Verdict),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut done = Vec::with_capacity(MAX_BATCH);
    let mut refused = Vec::new();
    let mut searches = Vec::new();
    loop {
        let chore = link.next_chore();
        let index = link.index_due();
        let apply = link.apply_due();
        let wake = chore.into_iter().chain(index).chain(apply).min();
        let received = tokio::select! {
            biased;
            received = queue.recv_many(&mut batch, MAX_BATCH) => received,
            done = async { link.applying.as_mut().expect("checked").await },
                if link.applying.is_some() =>
            {
                link.applying = None;
                link.applied(done);
                continue;
            }
            _ = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                let now = Instant::now();
                if chore.is_some_and(|at| at <= now) {
                    link.chore().await;
                }
                if apply.is_some_and(|at| at <= now) {
                    link.start_apply();
                } else if index.is_some_and(|at| at <= now) {
                    link.index(INDEX_CHUNK, false).await;
                }
                continue;
            }
        };
        if received == 0 {
            link.settle().await;
            break;
        }
        if link.last_commit.elapsed() < GATHER_WHEN {
            gather(&mut queue, &mut batch).await;
        }
        let started = std::time::Instant::now();
        let journaled = link.journaled(&batch);
        let outcome = if journaled {
            Ok(batch.iter().map(|_| Answer::Nothing).collect())
        } else if link.settle().await {
            // What the log holds went first: this batch may read it (an
            // edit of a message in it, a history read's flush).
            link.commit(&batch).await
        } else {
            // Not before it: the batch fails (the log keeps its messages).
            Err("could not move the message log into the database; retrying".to_string())
        };
        link.last_commit = Instant::now();
        if !journaled && outcome.is_ok() && matches!(link.conn, Some(Conn::Sqlite(_))) {
            link.behind += batch.iter().filter(|w| w.stores_messages()).count();
        }
        let m = crate::metrics::metrics();
        m.store_commit
            .observe(crate::metrics::secs(started.elapsed()));
        let saved = outcome.is_ok();
        let mut answers = match outcome {
            Ok(answers) => answers.into_iter(),
            Err(e) => {
                error!(error = %e, writes = batch.len(), "could not commit to the database");
                Vec::new().into_iter()
            }
        };
        debug!(writes = batch.len(), saved, "committed a batch");
        for write in batch.drain(..) {
            let answer = answers.next().unwrap_or(Answer::Nothing);
            match (write, answer) {
                (Write::Chat(c), _) => done.push(Event::Chat(c)),
                (Write::Direct(d, mailbox), Answer::MailboxFull { per_recipient }) => {
                    let why = full_mailbox(&d.message.to, mailbox, per_recipient);
                    refused.push((Event::Direct(d), ErrorCode::MailboxFull, why));
                }
                (Write::Direct(d, _), _) => done.push(Event::Direct(d)),
                (Write::Room(r), _) => done.push(Event::Room(r)),
                (Write::Amend(a), Answer::Unamended(code, why)) => {
                    refused.push((Event::Amend(a), code, why));
                }
                (Write::Amend(a), _) => done.push(Event::Amend(a)),
                (Write::Register { reply, .. }, Answer::Registered(registered)) => {
                    let _ = reply.send(registered);
                }
                (Write::DeleteAccount { reply, .. }, Answer::Created(created))
                | (Write::SetAdmin { reply, .. }, Answer::Created(created)) => {
                    let _ = reply.send(created);
                }
                (Write::AddToken { reply, .. }, Answer::Nothing)
                | (Write::AddInvite { reply, .. }, Answer::Nothing)
                | (Write::ServerBan { reply, .. }, Answer::Nothing)
                | (Write::SetPassword { reply, .. }, Answer::Nothing)
                | (Write::SetAlwaysOn { reply, .. }, Answer::Nothing)
                | (Write::NotifyLevel { reply, .. }, Answer::Nothing)
                | (Write::Highlights { reply, .. }, Answer::Nothing)
                | (Write::AddSubscription { reply, .. }, Answer::Nothing)
                | (Write::DropSubscription { reply, .. }, Answer::Nothing)
                | (Write::ServerKey { reply, .. }, Answer::Nothing)
                    if saved =>
                {
                    let _ = reply.send(());
                }
                (Write::MarkRead { reply, .. }, Answer::Mark(mark)) if saved => {
                    let _ = reply.send(mark);
                }
                (Write::Persist { reply, .. }, Answer::Refused(ids)) if saved => {
                    let _ = reply.send(ids);
                }
                (Write::RevokeTokens { reply, .. }, Answer::Count(n))
                | (Write::Retain { reply, .. }, Answer::Count(n)) => {
                    let _ = reply.send(n);
                }
                (Write::Flush(reply), _) if saved => {
                    let _ = reply.send(());
                }
                (Write::Index(reply), _) => searches.push(reply),
                // Not saved: dropping the reply tells the waiter.
                _ => {}
            }
        }
        if !done.is_empty() {
            let verdict = if saved {
                Verdict::Taken
            } else {
                Verdict::Failed
            };
            on_commit(&mut done, verdict);
            done.clear();
        }
        for (event, code, why) in refused.drain(..) {
            on_commit(&mut vec![event], Verdict::Refused(code, why));
        }
        if link
            .journal
            .as_ref()
            .is_some_and(|j| j.rows() >= APPLY_ROWS || j.bytes() >= APPLY_BYTES)
        {
            link.start_apply();
        }
        if !searches.is_empty() {
            // Unindexed: dropping the replies fails the searches.
            if link.index(INDEX_CHUNK, true).await {
                for reply in searches.drain(..) {
                    let _ = reply.send(());
                }
            }
            searches.clear();
        } else if link.journal.is_some() {
            // Indexed after each move of the log into the tables.
        } else if link.behind >= 4 * INDEX_CHUNK {
            link.index(INDEX_CHUNK, false).await;
        } else if link.behind >= INDEX_GAP && queue.is_empty() {
            link.index(INDEX_GAP, false).await;
        }
    }
}

impl Write {
    /// Whether committing it may store messages to index for search.
    fn stores_messages(&self) -> bool {
        matches!(
            self,
            Write::Chat(_) | Write::Direct(..) | Write::Persist { .. }
        )
    }
}

/// SQLite: a batch's room messages in one statement, whatever their
/// count (rows as JSON: one prepared statement, cached); see [`json_rows`].
/// Each gets its `seq` in commit order, past the highest given and the
/// highest indexed (as the schema's trigger does for other inserts).
macro_rules! insert_messages_json {
    () => {
        "INSERT INTO messages (room, id, sender, text, ts, account, reply_to, seq) \
         SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
                key + 1 + (SELECT max(coalesce((SELECT max(seq) FROM messages), 0), \
                                      (SELECT value FROM meta WHERE key = 'search_messages'))) \
           FROM json_each(?)"
    };
}
/// SQLite: each room's highest id of a batch (a JSON object, room to id).
macro_rules! raise_last_ids_json {
    () => {
        "INSERT INTO rooms (name, last_id) SELECT key, value FROM json_each(?) WHERE true \
         ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id \
          WHERE excluded.last_id > rooms.last_id"
    };
}

/// The rows of [`insert_messages_json`].
fn json_rows<'a>(messages: impl Iterator<Item = &'a ChatMessage>) -> String {
    let rows: Vec<_> = messages
        .map(|m| {
            (
                m.room.as_str(),
                m.id,
                m.from.as_str(),
                &m.text,
                m.ts,
                m.account.as_ref().map(Nick::as_str),
                m.reply_to,
            )
        })
        .collect();
    serde_json::to_string(&rows).expect("plain values")
}

/// The whole transaction of a batch of room messages (and flushes), the
/// common batch, in one statement text: the statements
/// [`sqlite::commit`] runs for it, between BEGIN and COMMIT. SQLite runs
/// them one after the other (sqlx binds the `?`s in order), so it is one
/// trip to sqlx's thread for the connection, not one per statement.
async fn sqlite_chats(
    conn: &mut SqliteConnection,
    batch: &[Write],
) -> Result<Vec<Answer>, Failure> {
    const SQL: &str = concat!(
        "BEGIN IMMEDIATE; ",
        insert_messages_json!(),
        "; ",
        raise_last_ids_json!(),
        "; COMMIT"
    );
    let rows = json_rows(batch.iter().filter_map(|w| match w {
        Write::Chat(ChatEvent { message, .. }) => Some(message),
        _ => None,
    }));
    let last = serde_json::to_string(&last_ids(batch)).expect("plain values");
    match sqlx::query(SQL)
        .bind(rows)
        .bind(last)
        .execute(&mut *conn)
        .await
    {
        Ok(_) => Ok(batch.iter().map(|_| Answer::Nothing).collect()),
        Err(e) => {
            // Whichever statement failed, nothing of the batch stays. If
            // that cannot be made sure of, the connection goes (and with
            // it any transaction left open).
            match sqlx::query("ROLLBACK").execute(&mut *conn).await {
                Ok(_) => Err(Failure::Batch(e)),
                Err(_) => Err(Failure::Broken(e)),
            }
        }
    }
}

/// Syncs the database's log `wal`, if given, off the runtime's threads
/// (for the message log to change files: [`Journal::switch_due`]);
/// answers whether it did.
async fn sync_for_switch(wal: Option<std::path::PathBuf>) -> bool {
    let Some(wal) = wal else {
        return false;
    };
    match tokio::task::spawn_blocking(move || journal::sync(&wal)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            warn!(error = %e, "could not sync the database's log to disk; trying again");
            false
        }
        Err(_) => false,
    }
}

/// Moves `batch` from the message log into the tables, in one
/// transaction that also sets meta [`journal::APPLIED`] to its last
/// record: the same rows and room ids as [`sqlite_chats`] would have
/// stored. A message already there (by room and id) is kept as it is.
pub async fn apply_log(conn: &mut SqliteConnection, batch: &journal::Batch) -> sqlx::Result<()> {
    const SQL: &str = concat!(
        "BEGIN IMMEDIATE; ",
        insert_messages_json!(),
        " WHERE true ON CONFLICT (room, id) DO NOTHING; ",
        "INSERT INTO rooms (name, last_id) SELECT value->>0, max(value->>1) FROM json_each(?)          WHERE true GROUP BY value->>0          ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id          WHERE excluded.last_id > rooms.last_id; ",
        "INSERT INTO meta (key, value) VALUES (?, ?)          ON CONFLICT (key) DO UPDATE SET value = excluded.value; ",
        "COMMIT"
    );
    let done = sqlx::query(SQL)
        .bind(&batch.rows)
        .bind(&batch.rows)
        .bind(journal::APPLIED)
        .bind(i(batch.upto))
        .execute(&mut *conn)
        .await;
    if let Err(e) = done {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        return Err(e);
    }
    Ok(())
}

/// One transaction of [`Database::index`]; answers whether more is
/// waiting.
async fn index_chunk(conn: &mut SqliteConnection, rows: usize) -> sqlx::Result<bool> {
    let mut tx = conn.begin().await?;
    let messages = index_past(&mut tx, &MESSAGES_INDEX, rows).await?;
    let directs = index_past(&mut tx, &DIRECTS_INDEX, rows).await?;
    tx.commit().await?;
    Ok(messages >= rows || directs >= rows)
}

/// A table whose rows are numbered in commit order, and its full-text
/// index: the statements of [`index_past`].
struct Indexed {
    /// meta's key: the highest number indexed.
    done: &'static str,
    /// The highest number of (at most) `$2` rows past `$1`, and how many.
    next: &'static str,
    /// Indexes the rows numbered past `$1` up to `$2`.
    index: &'static str,
}

const MESSAGES_INDEX: Indexed = Indexed {
    done: "search_messages",
    next: "SELECT max(seq), count(*) FROM \
           (SELECT seq FROM messages WHERE seq > ? ORDER BY seq LIMIT ?)",
    index: "INSERT INTO message_search (rowid, text) SELECT seq, text FROM messages \
             WHERE seq > ? AND seq <= ? AND deleted = 0 AND text <> ''",
};

const DIRECTS_INDEX: Indexed = Indexed {
    done: "search_directs",
    next: "SELECT max(id), count(*) FROM \
           (SELECT id FROM directs WHERE id > ? ORDER BY id LIMIT ?)",
    index: "INSERT INTO direct_search (rowid, text) SELECT id, text FROM directs \
             WHERE id > ? AND id <= ? AND deleted = 0 AND text <> ''",
};

/// Indexes up to `rows` rows of `table` past the highest indexed, and
/// moves that mark; answers how many it took.
async fn index_past(
    conn: &mut SqliteConnection,
    table: &Indexed,
    rows: usize,
) -> sqlx::Result<usize> {
    let done: i64 = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
        .bind(table.done)
        .fetch_one(&mut *conn)
        .await?;
    let (upto, taken): (Option<i64>, i64) = sqlx::query_as(table.next)
        .bind(done)
        .bind(i(rows as u64))
        .fetch_one(&mut *conn)
        .await?;
    if let Some(upto) = upto {
        sqlx::query(table.index)
            .bind(done)
            .bind(upto)
            .execute(&mut *conn)
            .await?;
        sqlx::query("UPDATE meta SET value = ? WHERE key = ?")
            .bind(upto)
            .bind(table.done)
            .execute(&mut *conn)
            .await?;
    }
    Ok(usize::try_from(taken).unwrap_or(0))
}

/// Why a whisper for `to` was refused.
fn full_mailbox(to: &Nick, mailbox: Mailbox, per_recipient: bool) -> String {
    if per_recipient {
        format!(
            "{to} is offline and has {} whispers waiting already; yours was not kept",
            mailbox.per_recipient
        )
    } else {
        format!(
            "{to} is offline and has {} whispers from you waiting already; yours was not kept",
            mailbox.per_sender
        )
    }
}

// The statements, the same for both backends.

/// Rows of a batch go into the database in multi-row `INSERT`s of a
/// power of two rows, at most this many (7 parameters a row: far below
/// both SQLite's and PostgreSQL's limits). Each statement is a round trip
/// to the driver (for SQLite, a hop to its worker thread), so a batch of
/// 37 messages costs 3 statements (32 + 4 + 1), not 37; and the statement
/// texts, being few, stay in the driver's prepared-statement cache.
/// SQLite gets `?` parameters: sqlx looks each `$n` up by name, and
/// SQLite's name lookup is a linear scan (quadratic in a long statement).
const MAX_ROWS: usize = 64;
const ROW_SIZES: usize = MAX_ROWS.trailing_zeros() as usize + 1;

/// Multi-row statements: `head`, then `rows` tuples of `columns`
/// parameters, then `tail`.
struct Rows {
    /// By style: `?` (SQLite), `$n` (PostgreSQL).
    texts: [std::sync::OnceLock<[String; ROW_SIZES]>; 2],
    head: &'static str,
    columns: usize,
    tail: &'static str,
}

impl Rows {
    const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        Rows {
            texts: [std::sync::OnceLock::new(), std::sync::OnceLock::new()],
            head,
            columns,
            tail,
        }
    }

    /// The largest statement for at most `left` rows (`left` > 0), and how
    /// many rows it takes; with `$n` parameters if `numbered`, else `?`.
    fn next(&'static self, left: usize, numbered: bool) -> (&'static str, usize) {
        let texts = self.texts[usize::from(numbered)].get_or_init(|| {
            std::array::from_fn(|size| {
                let mut sql = String::from(self.head);
                let mut n = 0;
                for row in 0..1usize << size {
                    sql.push_str(if row == 0 { " (" } else { ", (" });
                    for column in 0..self.columns {
                        n += 1;
                        if column > 0 {
                            sql.push_str(", ");
                        }
                        if numbered {
                            sql.push_str(&format!("${n}"));
                        } else {
                            sql.push('?');
                        }
                    }
                    sql.push(')');
                }
                sql.push_str(self.tail);
                sql
            })
        });
        let size = (usize::BITS - 1 - left.min(MAX_ROWS).leading_zeros()) as usize;
        (&texts[size], 1 << size)
    }
}

static INSERT_MESSAGES: Rows = Rows::new(
    "INSERT INTO messages (room, id, sender, text, ts, account, reply_to) VALUES",
    7,
    "",
);
static INSERT_MESSAGES_ONCE: Rows = Rows::new(
    "INSERT INTO messages (room, id, sender, text, ts, account, reply_to) VALUES",
    7,
    " ON CONFLICT (room, id) DO NOTHING",
);
/// What [`Amendment::check`] needs of a room's message.
const AMENDED_MESSAGE: &str =
    "SELECT sender, account, ts, deleted FROM messages WHERE room = $1 AND id = $2";
/// ... and of a direct one: its sides (`pair` for two accounts).
const AMENDED_DIRECT: &str =
    "SELECT sender, recipient, recipient_key, ts, deleted, pair FROM directs WHERE id = $1";
/// The reactions someone (`who`) left on a message.
const REACTIONS_OF: &str =
    "SELECT reaction FROM reactions WHERE room = $1 AND id = $2 AND who = $3";
const EDIT_MESSAGE: &str = "UPDATE messages SET text = $3, edited = $4 WHERE room = $1 AND id = $2";
const EDIT_DIRECT: &str = "UPDATE directs SET text = $2, edited = $3 WHERE id = $1";
const DELETE_MESSAGE: &str =
    "UPDATE messages SET text = '', deleted = 1, edited = NULL WHERE room = $1 AND id = $2";
const DELETE_DIRECT: &str =
    "UPDATE directs SET text = '', deleted = 1, edited = NULL WHERE id = $1";
const DROP_REACTIONS: &str = "DELETE FROM reactions WHERE room = $1 AND id = $2";
const ADD_REACTION: &str = "INSERT INTO reactions (room, id, who, nick, reaction, ts) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room, id, who, reaction) DO NOTHING";
const LAST_REACTION: &str = "SELECT max(ts) FROM reactions WHERE room = $1 AND id = $2";
const REMOVE_REACTION: &str =
    "DELETE FROM reactions WHERE room = $1 AND id = $2 AND who = $3 AND reaction = $4";
static RAISE_LAST_IDS: Rows = Rows::new(
    "INSERT INTO rooms (name, last_id) VALUES",
    2,
    " ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id \
     WHERE excluded.last_id > rooms.last_id",
);
const INSERT_DIRECT: &str = "INSERT INTO directs \
     (id, sender, recipient, recipient_key, text, ts, pending, pair, reply_to) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_DIRECT_ONCE: &str = "INSERT INTO directs \
     (id, sender, recipient, recipient_key, text, ts, pending, pair, reply_to) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING";
/// Moves `account`'s conversation with `peer` forward to a whisper.
const TOUCH_CONVERSATION: &str = "INSERT INTO conversations \
     (account, peer, shown, last_id, last_ts) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (account, peer) DO UPDATE SET shown = excluded.shown, \
     last_id = excluded.last_id, last_ts = excluded.last_ts \
     WHERE excluded.last_id > conversations.last_id";
const RAISE_COUNTER: &str = "INSERT INTO meta (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE excluded.value > meta.value";
const SET_TOPIC: &str = "INSERT INTO rooms (name, topic, topic_by, topic_ts) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, \
     topic_by = excluded.topic_by, topic_ts = excluded.topic_ts";
/// A mode change: the modes it names (the others bound as NULL stay); an
/// empty key removes the key, a limit of 0 the limit.
const SET_MODES: &str = "INSERT INTO rooms (name, invite_only, room_key, member_limit, moderated, secret, registered_only) \
     VALUES ($1, COALESCE($2, 0), NULLIF($3, ''), COALESCE($4, 0), COALESCE($5, 0), COALESCE($6, 0), COALESCE($7, 0)) \
     ON CONFLICT (name) DO UPDATE SET invite_only = COALESCE($2, rooms.invite_only), \
     room_key = CASE WHEN $3 IS NULL THEN rooms.room_key ELSE NULLIF($3, '') END, \
     member_limit = COALESCE($4, rooms.member_limit), moderated = COALESCE($5, rooms.moderated), \
     secret = COALESCE($6, rooms.secret), registered_only = COALESCE($7, rooms.registered_only)";
const SET_ROLE: &str = "INSERT INTO room_roles (room, account, role) VALUES ($1, $2, $3) \
     ON CONFLICT (room, account) DO UPDATE SET role = excluded.role";
const DROP_ROLE: &str = "DELETE FROM room_roles WHERE room = $1 AND account = $2";
/// A ban, or a ban or invite exception (`list`, `$7`).
const SET_BAN: &str = "INSERT INTO bans (room, kind, target, shown, by, ts, list) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (room, list, kind, target) DO UPDATE \
     SET shown = excluded.shown, by = excluded.by, ts = excluded.ts";
const LIFT_BAN: &str =
    "DELETE FROM bans WHERE room = $1 AND kind = $2 AND target = $3 AND list = $4";
const REGISTER: &str = "INSERT INTO accounts (key, name, password_hash, created) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING";
const ADD_TOKEN: &str = "INSERT INTO tokens (hash, account, created, last_used) \
     VALUES ($1, $2, $3, $3) ON CONFLICT (hash) DO NOTHING";
const SET_ADMIN: &str = "UPDATE accounts SET admin = $2 WHERE key = $1";
const SET_SERVER_BAN: &str = "INSERT INTO server_bans (kind, target, reason, by, ts, expires) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (kind, target) DO UPDATE \
     SET reason = excluded.reason, by = excluded.by, ts = excluded.ts, expires = excluded.expires";
const LIFT_SERVER_BAN: &str = "DELETE FROM server_bans WHERE kind = $1 AND target = $2";
const USE_INVITE: &str = "UPDATE invites SET uses_left = uses_left - 1 \
     WHERE hash = $1 AND uses_left > 0 AND expires > $2";
const ADD_INVITE: &str = "INSERT INTO invites (hash, uses_left, expires, created, created_by) \
     VALUES ($1, $2, $3, $4, $5)";
const EXPIRE_TOKENS: &str = "DELETE FROM tokens WHERE account = $1 AND last_used < $2";
const TOUCH_TOKEN: &str = "UPDATE tokens SET last_used = $2 WHERE hash = $1";
/// A read position of an account that exists, only ever forward.
const MARK_READ: &str = "INSERT INTO read_positions (account, target, shown, id, ts) \
     SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM accounts WHERE key = $1) \
     ON CONFLICT (account, target) DO UPDATE \
     SET shown = excluded.shown, id = excluded.id, ts = excluded.ts \
     WHERE excluded.id > read_positions.id";
const READ_POSITION: &str = "SELECT id, ts FROM read_positions WHERE account = $1 AND target = $2";
/// How many of two accounts (by key) exist.
const ACCOUNTS_EXIST: &str = "SELECT count(*) FROM accounts WHERE key = $1 OR key = $2";
/// A membership of an account that exists (joined again: kept as it was).
const JOIN_ROOM: &str = "INSERT INTO memberships (account, room, since) \
     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM accounts WHERE key = $1) \
     ON CONFLICT (account, room) DO UPDATE SET since = excluded.since, left_at = NULL \
     WHERE memberships.left_at IS NOT NULL";
const LEAVE_ROOM: &str =
    "UPDATE memberships SET left_at = $3 WHERE account = $1 AND room = $2 AND left_at IS NULL";
/// Rooms left long ago are forgotten (their rows would pile up).
const FORGET_LEFT: &str =
    "DELETE FROM memberships WHERE account = $1 AND left_at IS NOT NULL AND left_at < $2";
/// How long a room left is remembered (see `memberships` in the schema).
const LEFT_KEPT_MS: u64 = 30 * 24 * 3600 * 1000;
const SET_ALWAYS_ON: &str = "UPDATE accounts SET always_on = $2 WHERE key = $1";
const SET_HIGHLIGHTS: &str = "UPDATE accounts SET highlights = $2 WHERE key = $1";
const ADD_SERVER_KEY: &str =
    "INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
const ADD_SUBSCRIPTION: &str = "INSERT INTO push_subscriptions \
     (endpoint, account, p256dh, auth, created, format) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (endpoint) DO UPDATE SET account = excluded.account, \
     p256dh = excluded.p256dh, auth = excluded.auth, created = excluded.created, \
     format = excluded.format";
/// An account's subscriptions past the newest `$2`.
const TRIM_SUBSCRIPTIONS: &str = "DELETE FROM push_subscriptions WHERE account = $1 \
     AND endpoint NOT IN (SELECT endpoint FROM push_subscriptions WHERE account = $1 \
     ORDER BY created DESC LIMIT $2)";
const DROP_SUBSCRIPTION: &str =
    "DELETE FROM push_subscriptions WHERE account = $1 AND endpoint = $2";
/// A level of an account that exists.
const SET_NOTIFY_LEVEL: &str = "INSERT INTO notify_levels (account, target, shown, level) \
     SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM accounts WHERE key = $1) \
     ON CONFLICT (account, target) DO UPDATE SET shown = excluded.shown, level = excluded.level";
const DROP_NOTIFY_LEVEL: &str = "DELETE FROM notify_levels WHERE account = $1 AND target = $2";
const SET_PASSWORD: &str = "UPDATE accounts SET password_hash = $2 WHERE key = $1";
/// Everything kept for an account (after [`FORGET_PAIR`] for each of its
/// conversations); the last statement removes the account itself.
const DELETE_ACCOUNT: [&str; 9] = [
    "DELETE FROM tokens WHERE account = $1",
    "DELETE FROM memberships WHERE account = $1",
    "DELETE FROM read_positions WHERE account = $1 OR target = $1",
    "DELETE FROM notify_levels WHERE account = $1 OR target = $1",
    "DELETE FROM push_subscriptions WHERE account = $1",
    "DELETE FROM room_roles WHERE account = $1",
    "DELETE FROM directs WHERE recipient_key = $1 AND pending = 1",
    "DELETE FROM conversations WHERE account = $1 OR peer = $1",
    "DELETE FROM accounts WHERE key = $1",
];
const PEERS: &str = "SELECT peer FROM conversations WHERE account = $1";
/// A deleted account's direct history leaves history, so that whoever
/// registers the name later cannot read it.
const FORGET_PAIR: &str = "UPDATE directs SET pair = NULL WHERE pair = $1";
const REVOKE_TOKEN: &str = "DELETE FROM tokens WHERE account = $1 AND hash = $2";
const REVOKE_TOKENS: &str = "DELETE FROM tokens WHERE account = $1";
/// A whisper for an offline account, unless it has `$9` waiting already,
/// or `$10` from this sender (`$8`); nothing for an id stored already.
const INSERT_WAITING_ONCE: &str = "INSERT INTO directs \
     (id, sender, recipient, recipient_key, text, ts, pending, sender_key, pair, reply_to) \
     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $11, $12 \
     WHERE (SELECT count(*) FROM directs WHERE recipient_key = $4 AND pending = 1) < $9 \
     AND (SELECT count(*) FROM directs \
          WHERE recipient_key = $4 AND pending = 1 AND sender_key = $8) < $10 \
     ON CONFLICT (id) DO NOTHING";
const DIRECT_STORED: &str = "SELECT id FROM directs WHERE id = $1";

const COUNT_WAITING: &str = "SELECT count(*) FROM directs WHERE recipient_key = $1 AND pending = 1";
const DELIVERED: &str = "UPDATE directs SET pending = 0 WHERE id = $1 AND recipient_key = $2";
const RETAIN_MESSAGES_BY_AGE: &str = "DELETE FROM messages WHERE ts < $1";
/// Reactions on messages that retention removed.
const RETAIN_REACTIONS: [&str; 2] = [
    "DELETE FROM reactions WHERE room <> '' AND NOT EXISTS \
     (SELECT 1 FROM messages m WHERE m.room = reactions.room AND m.id = reactions.id)",
    "DELETE FROM reactions WHERE room = '' AND NOT EXISTS \
     (SELECT 1 FROM directs d WHERE d.id = reactions.id)",
];
const RETAIN_DIRECTS_BY_AGE: &str = "DELETE FROM directs WHERE ts < $1";
/// Conversations whose every whisper retention removed.
const RETAIN_CONVERSATIONS_BY_AGE: &str = "DELETE FROM conversations WHERE last_ts < $1";
const RETAIN_MESSAGES_BY_COUNT: &str = "DELETE FROM messages WHERE (room, id) IN \
     (SELECT room, id FROM (SELECT room, id, \
      row_number() OVER (PARTITION BY room ORDER BY id DESC) AS n FROM messages) AS ranked \
      WHERE n > $1)";

/// Whether a stored direct message (sender and recipient nicks, the
/// recipient's key, and `pair` if both sides were accounts) is between
/// `by` and `with`; if so, its sender's account (`Some(None)`: a guest's,
/// or one to a guest, whose sender's account is not kept).
fn direct_sides(
    by: &crate::core::event::Actor,
    with: &Nick,
    (from, to, recipient): (&str, &str, &str),
    pair: Option<String>,
) -> Option<Option<Nick>> {
    match (pair, &by.account) {
        (Some(pair), Some(me)) => {
            // Both sides are accounts: the sender is the one that is not
            // the recipient.
            (pair == pair_key(me, with))
                .then(|| Some(if recipient == key(me) { with } else { me }.clone()))
        }
        (Some(_), None) => None,
        (None, _) => {
            let (from, to) = (Nick::new(from).ok()?, Nick::new(to).ok()?);
            let mine = |n: &Nick| n == &by.nick || by.account.as_ref() == Some(n);
            let sides = (mine(&from) && &to == with) || (&from == with && mine(&to));
            sides.then_some(None)
        }
    }
}

/// `commit` (and what it uses) for one backend's connection type.
/// The highest message id of each room in `batch` (its messages, and
/// those it persists), for `rooms.last_id`.
fn last_ids(batch: &[Write]) -> std::collections::HashMap<&str, u64> {
    let mut last = std::collections::HashMap::new();
    for write in batch {
        let messages = match write {
            Write::Chat(ChatEvent { message, .. }) => std::slice::from_ref(message),
            Write::Persist { messages, .. } => &messages[..],
            _ => continue,
        };
        for m in messages {
            let id = last.entry(m.room.as_str()).or_insert(m.id);
            *id = (*id).max(m.id);
        }
    }
    last
}

macro_rules! backend {
    ($module:ident, $conn:ty, $numbered:expr) => {
        mod $module {
            use super::*;

            pub(super) async fn commit(
                conn: &mut $conn,
                batch: &[Write],
            ) -> Result<Vec<Answer>, Failure> {
                let mut tx = conn.begin().await.map_err(Failure::Begin)?;
                let mut answers = Vec::with_capacity(batch.len());
                // Consecutive chat messages are inserted together, before
                // the next write of another kind (the order of the queue).
                let mut chats = Vec::new();
                for write in batch {
                    if let Write::Chat(ChatEvent { message, .. }) = write {
                        chats.push(message);
                        answers.push(Answer::Nothing);
                        continue;
                    }
                    chat_rows(&mut tx, &chats).await.map_err(Failure::Batch)?;
                    chats.clear();
                    answers.push(apply(&mut tx, write).await.map_err(Failure::Batch)?);
                }
                chat_rows(&mut tx, &chats).await.map_err(Failure::Batch)?;
                raise_last_ids(&mut tx, batch).await.map_err(Failure::Batch)?;
                tx.commit().await.map_err(Failure::Batch)?;
                Ok(answers)
            }

            /// Each room's highest id of `batch`, once per batch rather
            /// than once per message: one JSON statement for SQLite (as
            /// [`sqlite_chats`]), as few multi-row ones as [`Rows`] allows
            /// for PostgreSQL.
            async fn raise_last_ids(conn: &mut $conn, batch: &[Write]) -> sqlx::Result<()> {
                let last = last_ids(batch);
                if last.is_empty() {
                    return Ok(());
                }
                if !$numbered {
                    return sqlx::query(raise_last_ids_json!())
                        .bind(serde_json::to_string(&last).expect("plain values"))
                        .execute(&mut *conn)
                        .await
                        .map(drop);
                }
                let last: Vec<_> = last.into_iter().collect();
                let mut left = &last[..];
                while !left.is_empty() {
                    let (sql, n) = RAISE_LAST_IDS.next(left.len(), $numbered);
                    let (rows, rest) = left.split_at(n);
                    let mut query = sqlx::query(sql);
                    for (room, id) in rows {
                        query = query.bind(*room).bind(i(*id));
                    }
                    query.execute(&mut *conn).await?;
                    left = rest;
                }
                Ok(())
            }

            /// A batch's room messages: one JSON statement for SQLite
            /// (as [`sqlite_chats`]), as few multi-row ones as [`Rows`]
            /// allows for PostgreSQL.
            async fn chat_rows(conn: &mut $conn, list: &[&ChatMessage]) -> sqlx::Result<()> {
                if $numbered || list.is_empty() {
                    return messages(conn, list, &INSERT_MESSAGES).await;
                }
                sqlx::query(insert_messages_json!())
                    .bind(json_rows(list.iter().copied()))
                    .execute(&mut *conn)
                    .await
                    .map(drop)
            }

            /// Inserts `list` with as few statements as [`Rows`] allows.
            async fn messages(
                conn: &mut $conn,
                mut list: &[&ChatMessage],
                sql: &'static Rows,
            ) -> sqlx::Result<()> {
                while !list.is_empty() {
                    let (text, n) = sql.next(list.len(), $numbered);
                    let (rows, rest) = list.split_at(n);
                    let mut query = sqlx::query(text);
                    for m in rows {
                        query = query
                            .bind(m.room.as_str())
                            .bind(i(m.id))
                            .bind(m.from.as_str())
                            .bind(&m.text)
                            .bind(i(m.ts))
                            .bind(m.account.as_ref().map(Nick::as_str))
                            .bind(m.reply_to.map(i));
                    }
                    query.execute(&mut *conn).await?;
                    list = rest;
                }
                Ok(())
            }

            /// Stores a whisper; `account`: the recipient's account (the
            /// whisper then waits until a session of it confirms it), and
            /// with the sender's, the whisper joins their direct history.
            async fn direct(
                conn: &mut $conn,
                d: &DirectMessage,
                account: Option<&Nick>,
                sql: &'static str,
            ) -> sqlx::Result<()> {
                let recipient = key(account.unwrap_or(&d.to));
                let pair = paired(conn, d, account).await?;
                sqlx::query(sql)
                    .bind(i(d.id))
                    .bind(d.from.as_str())
                    .bind(d.to.as_str())
                    .bind(recipient)
                    .bind(&d.text)
                    .bind(i(d.ts))
                    .bind(i32::from(account.is_some()))
                    .bind(pair.as_deref())
                    .bind(d.reply_to.map(i))
                    .execute(&mut *conn)
                    .await?;
                if pair.is_some() {
                    conversations(conn, d, account).await?;
                }
                counter(conn, "last_direct_id", d.id).await
            }

            /// `directs.pair` of a whisper to `recipient` (an account): both
            /// accounts' keys (see [`pair_keys`]), when the sender is logged
            /// in too and both accounts still exist (one deleted while its
            /// session, on another node, goes on whispering must not leave
            /// history for the name's next owner).
            async fn paired(
                conn: &mut $conn,
                d: &DirectMessage,
                recipient: Option<&Nick>,
            ) -> sqlx::Result<Option<String>> {
                let (Some(sender), Some(recipient)) = (d.account.as_ref(), recipient) else {
                    return Ok(None);
                };
                let (a, b) = (key(sender), key(recipient));
                let found: i64 = sqlx::query_scalar(ACCOUNTS_EXIST)
                    .bind(&a)
                    .bind(&b)
                    .fetch_one(&mut *conn)
                    .await?;
                let wanted = if a == b { 1 } else { 2 };
                Ok((found == wanted).then(|| pair_keys(a, b)))
            }

            /// Moves both accounts' conversation forward to `d` (when both
            /// sides are accounts).
            async fn conversations(
                conn: &mut $conn,
                d: &DirectMessage,
                recipient: Option<&Nick>,
            ) -> sqlx::Result<()> {
                let (Some(sender), Some(recipient)) = (d.account.as_ref(), recipient) else {
                    return Ok(());
                };
                for (me, peer) in [(sender, recipient), (recipient, sender)] {
                    sqlx::query(TOUCH_CONVERSATION)
                        .bind(key(me))
                        .bind(key(peer))
                        .bind(peer.as_str())
                        .bind(i(d.id))
                        .bind(i(d.ts))
                        .execute(&mut *conn)
                        .await?;
                }
                Ok(())
            }

            /// Stores a whisper that waits for an offline account, within
            /// `mailbox`; `false` if refused for it. Idempotent: one stored
            /// already (a cluster's retry) counts as kept.
            async fn waiting_once(
                conn: &mut $conn,
                d: &DirectMessage,
                mailbox: Mailbox,
            ) -> sqlx::Result<bool> {
                let sender = d.account.as_ref().map_or_else(|| "*".to_string(), key);
                let pair = paired(conn, d, Some(&d.to)).await?;
                let kept = sqlx::query(INSERT_WAITING_ONCE)
                    .bind(i(d.id))
                    .bind(d.from.as_str())
                    .bind(d.to.as_str())
                    .bind(key(&d.to))
                    .bind(&d.text)
                    .bind(i(d.ts))
                    .bind(1i32)
                    .bind(sender)
                    .bind(i64::from(mailbox.per_recipient))
                    .bind(i64::from(mailbox.per_sender))
                    .bind(pair.as_deref())
                    .bind(d.reply_to.map(i))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                counter(conn, "last_direct_id", d.id).await?;
                if kept > 0 {
                    if pair.is_some() {
                        conversations(conn, d, Some(&d.to)).await?;
                    }
                    return Ok(true);
                }
                let stored: Option<i64> = sqlx::query_scalar(DIRECT_STORED)
                    .bind(i(d.id))
                    .fetch_optional(&mut *conn)
                    .await?;
                Ok(stored.is_some())
            }

            /// Checks an amendment against the stored message and makes it
            /// (or answers why not).
            async fn amend(conn: &mut $conn, a: &AmendEvent) -> sqlx::Result<Answer> {
                // Reactions of a direct message are kept under room ''.
                let scope = a.room.as_ref().map_or("", |r| r.as_str());
                let row: Option<(String, Option<Nick>, i64, i32)> = match (&a.room, &a.with) {
                    (Some(room), _) => {
                        let row: Option<(String, Option<String>, i64, i32)> =
                            sqlx::query_as(AMENDED_MESSAGE)
                                .bind(room.as_str())
                                .bind(i(a.id))
                                .fetch_optional(&mut *conn)
                                .await?;
                        row.map(|(from, account, ts, deleted)| {
                            (from, account.and_then(|a| Nick::new(a).ok()), ts, deleted)
                        })
                    }
                    (None, Some(with)) => {
                        type Row = (String, String, String, i64, i32, Option<String>);
                        let row: Option<Row> = sqlx::query_as(AMENDED_DIRECT)
                            .bind(i(a.id))
                            .fetch_optional(&mut *conn)
                            .await?;
                        row.and_then(|(from, to, recipient, ts, deleted, pair)| {
                            direct_sides(&a.by, with, (&from, &to, &recipient), pair)
                                .map(|account| (from, account, ts, deleted))
                        })
                    }
                    (None, None) => None,
                };
                let who = a.by.key();
                let mine: Vec<String> = match (&row, &a.change) {
                    (Some(_), Amendment::React { .. }) => {
                        sqlx::query_scalar(REACTIONS_OF)
                            .bind(scope)
                            .bind(i(a.id))
                            .bind(&who)
                            .fetch_all(&mut *conn)
                            .await?
                    }
                    _ => Vec::new(),
                };
                let from = row.as_ref().map(|r| super::super::nick(r.0.clone()));
                let message = match (&row, &from) {
                    (Some((_, account, ts, deleted)), Some(from)) => Some(Amended {
                        from,
                        account: account.as_ref(),
                        ts: *ts as u64,
                        deleted: *deleted != 0,
                        reactions: mine.len(),
                        reacted: matches!(&a.change, Amendment::React { reaction, .. }
                            if mine.contains(reaction)),
                    }),
                    _ => None,
                };
                if let Err((code, why)) = a.change.check(message, &a.by) {
                    return Ok(Answer::Unamended(code, why));
                }
                let direct = a.room.is_none();
                match &a.change {
                    Amendment::Edit { text, ts, .. } if direct => {
                        sqlx::query(EDIT_DIRECT)
                            .bind(i(a.id))
                            .bind(text)
                            .bind(i(*ts))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Amendment::Edit { text, ts, .. } => {
                        sqlx::query(EDIT_MESSAGE)
                            .bind(scope)
                            .bind(i(a.id))
                            .bind(text)
                            .bind(i(*ts))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Amendment::Delete { .. } => {
                        let delete = if direct {
                            sqlx::query(DELETE_DIRECT).bind(i(a.id))
                        } else {
                            sqlx::query(DELETE_MESSAGE).bind(scope).bind(i(a.id))
                        };
                        delete.execute(&mut *conn).await?;
                        sqlx::query(DROP_REACTIONS)
                            .bind(scope)
                            .bind(i(a.id))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Amendment::React {
                        reaction,
                        remove: false,
                        ts,
                    } => {
                        // Strictly after the message's last reaction, so
                        // that reads list them in the order they came.
                        let last: Option<i64> = sqlx::query_scalar(LAST_REACTION)
                            .bind(scope)
                            .bind(i(a.id))
                            .fetch_one(&mut *conn)
                            .await?;
                        let ts = last.map_or(i(*ts), |last| i(*ts).max(last + 1));
                        sqlx::query(ADD_REACTION)
                            .bind(scope)
                            .bind(i(a.id))
                            .bind(&who)
                            .bind(a.by.shown().as_str())
                            .bind(reaction)
                            .bind(ts)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Amendment::React { reaction, .. } => {
                        sqlx::query(REMOVE_REACTION)
                            .bind(scope)
                            .bind(i(a.id))
                            .bind(&who)
                            .bind(reaction)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
                Ok(Answer::Nothing)
            }

            async fn counter(conn: &mut $conn, name: &str, value: u64) -> sqlx::Result<()> {
                sqlx::query(RAISE_COUNTER)
                    .bind(name)
                    .bind(i(value))
                    .execute(&mut *conn)
                    .await?;
                Ok(())
            }

            // Long by design: one match arm per kind of write, each a statement
            // or two; splitting it would only scatter the transaction's body.
            async fn apply(conn: &mut $conn, write: &Write) -> sqlx::Result<Answer> {
                match write {
                    Write::Chat(ChatEvent { message: m, .. }) => {
                        messages(conn, &[m], &INSERT_MESSAGES).await?;
                    }
                    Write::Direct(
                        DirectEvent {
                            message: d,
                            target: Some(_),
                            account,
                            ..
                        },
                        _,
                    ) => {
                        // To an account: waiting until a session of it
                        // confirms it read it (see the session's `confirm`).
                        direct(conn, d, account.as_ref(), INSERT_DIRECT).await?;
                    }
                    Write::Direct(
                        DirectEvent {
                            message: d,
                            target: None,
                            ..
                        },
                        mailbox,
                    ) => {
                        if !waiting_once(conn, d, *mailbox).await? {
                            let waiting: i64 = sqlx::query_scalar(COUNT_WAITING)
                                .bind(key(&d.to))
                                .fetch_one(&mut *conn)
                                .await?;
                            let per_recipient = waiting >= i64::from(mailbox.per_recipient);
                            return Ok(Answer::MailboxFull { per_recipient });
                        }
                    }
                    Write::Persist {
                        messages,
                        directs,
                        unconfirmed,
                        mailbox,
                        ..
                    } => {
                        let list: Vec<_> = messages.iter().collect();
                        self::messages(conn, &list, &INSERT_MESSAGES_ONCE).await?;
                        for (d, account) in unconfirmed {
                            direct(conn, d, Some(account), INSERT_DIRECT_ONCE).await?;
                        }
                        let mut refused = Vec::new();
                        for (d, pending) in directs {
                            match mailbox.filter(|_| *pending) {
                                Some(mailbox) => {
                                    if !waiting_once(conn, d, mailbox).await? {
                                        refused.push(d.id);
                                    }
                                }
                                None => {
                                    let account = pending.then_some(&d.to);
                                    direct(conn, d, account, INSERT_DIRECT_ONCE).await?
                                }
                            }
                        }
                        return Ok(Answer::Refused(refused));
                    }
                    Write::Amend(a) => return amend(conn, a).await,
                    Write::NotifyLevel {
                        account,
                        target,
                        shown,
                        level,
                        ..
                    } => {
                        if *level == banter_protocol::NotifyLevel::default() {
                            sqlx::query(DROP_NOTIFY_LEVEL)
                                .bind(key(account))
                                .bind(target)
                                .execute(&mut *conn)
                                .await?;
                        } else {
                            sqlx::query(SET_NOTIFY_LEVEL)
                                .bind(key(account))
                                .bind(target)
                                .bind(shown)
                                .bind(level.as_str())
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Write::AddSubscription {
                        account,
                        subscription: s,
                        limit,
                        ..
                    } => {
                        use base64::Engine as _;
                        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                        sqlx::query(ADD_SUBSCRIPTION)
                            .bind(&s.endpoint)
                            .bind(key(account))
                            .bind(b64.encode(&s.p256dh))
                            .bind(b64.encode(&s.auth))
                            .bind(now_ms())
                            .bind(if s.irc { "irc" } else { "json" })
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query(TRIM_SUBSCRIPTIONS)
                            .bind(key(account))
                            .bind(*limit as i64)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::DropSubscription {
                        account, endpoint, ..
                    } => {
                        sqlx::query(DROP_SUBSCRIPTION)
                            .bind(key(account))
                            .bind(endpoint)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::ServerKey { name, value, .. } => {
                        sqlx::query(ADD_SERVER_KEY)
                            .bind(name)
                            .bind(value)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::Highlights { account, words, .. } => {
                        let json = (!words.is_empty())
                            .then(|| serde_json::to_string(words).expect("strings serialize"));
                        sqlx::query(SET_HIGHLIGHTS)
                            .bind(key(account))
                            .bind(json)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::Room(RoomEvent {
                        room,
                        change: RoomChange::Topic(topic),
                        ..
                    }) => {
                        let topic = Some(topic).filter(|t| !t.text.is_empty());
                        sqlx::query(SET_TOPIC)
                            .bind(room.as_str())
                            .bind(topic.as_ref().map(|t| t.text.as_str()))
                            .bind(topic.as_ref().map(|t| t.by.as_str()))
                            .bind(topic.as_ref().map(|t| i(t.ts)))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::Room(RoomEvent {
                        room,
                        change:
                            RoomChange::Role {
                                account,
                                role: Some(role),
                            },
                        ..
                    }) => {
                        sqlx::query(SET_ROLE)
                            .bind(room.as_str())
                            .bind(key(account))
                            .bind(role.as_str())
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::Room(RoomEvent {
                        room,
                        change:
                            RoomChange::Role {
                                account,
                                role: None,
                            },
                        ..
                    }) => {
                        sqlx::query(DROP_ROLE)
                            .bind(room.as_str())
                            .bind(key(account))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::Room(RoomEvent {
                        room,
                        change: RoomChange::Modes { change: c, .. },
                        ..
                    }) => {
                        let flag = |on: Option<bool>| on.map(i64::from);
                        sqlx::query(SET_MODES)
                            .bind(room.as_str())
                            .bind(flag(c.invite_only))
                            .bind(c.key.as_deref())
                            .bind(c.limit.map(i64::from))
                            .bind(flag(c.moderated))
                            .bind(flag(c.secret))
                            .bind(flag(c.registered_only))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::Room(RoomEvent {
                        room,
                        change: RoomChange::Ban { ban, set },
                        ..
                    }) => {
                        let (kind, target) = match (&ban.nick, &ban.account, &ban.mask) {
                            (_, Some(account), _) => ("account", account.as_str()),
                            (Some(nick), None, _) => ("nick", nick.as_str()),
                            (None, None, Some(mask)) => ("mask", mask.as_str()),
                            (None, None, None) => return Ok(Answer::Nothing),
                        };
                        let lower = target.to_ascii_lowercase();
                        let list = match ban.list {
                            BanList::Ban => "ban",
                            BanList::BanException => "ban_exception",
                            BanList::InviteException => "invite_exception",
                        };
                        if *set {
                            sqlx::query(SET_BAN)
                                .bind(room.as_str())
                                .bind(kind)
                                .bind(&lower)
                                .bind(target)
                                .bind(ban.by.as_str())
                                .bind(i(ban.ts))
                                .bind(list)
                                .execute(&mut *conn)
                                .await?;
                        } else {
                            sqlx::query(LIFT_BAN)
                                .bind(room.as_str())
                                .bind(kind)
                                .bind(&lower)
                                .bind(list)
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Write::Register {
                        name, hash, invite, ..
                    } => {
                        let done = sqlx::query(REGISTER)
                            .bind(key(name))
                            .bind(name.as_str())
                            .bind(hash)
                            .bind(now_ms())
                            .execute(&mut *conn)
                            .await?;
                        if done.rows_affected() == 0 {
                            return Ok(Answer::Registered(Registered::Taken));
                        }
                        if let Some(invite) = invite {
                            let used = sqlx::query(USE_INVITE)
                                .bind(invite)
                                .bind(now_ms())
                                .execute(&mut *conn)
                                .await?;
                            if used.rows_affected() == 0 {
                                sqlx::query(DELETE_ACCOUNT[DELETE_ACCOUNT.len() - 1])
                                    .bind(key(name))
                                    .execute(&mut *conn)
                                    .await?;
                                return Ok(Answer::Registered(Registered::BadInvite));
                            }
                        }
                        return Ok(Answer::Registered(Registered::Created));
                    }
                    Write::AddInvite {
                        hash,
                        uses,
                        expires,
                        by,
                        ..
                    } => {
                        sqlx::query(ADD_INVITE)
                            .bind(hash)
                            .bind(i64::from(*uses))
                            .bind(i(*expires))
                            .bind(now_ms())
                            .bind(by.as_ref().map(key))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::AddToken {
                        account,
                        hash,
                        expired_before,
                        ..
                    } => {
                        sqlx::query(EXPIRE_TOKENS)
                            .bind(key(account))
                            .bind(i(*expired_before))
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query(ADD_TOKEN)
                            .bind(hash)
                            .bind(key(account))
                            .bind(now_ms())
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::SetAdmin { account, admin, .. } => {
                        let done = sqlx::query(SET_ADMIN)
                            .bind(key(account))
                            .bind(i32::from(*admin))
                            .execute(&mut *conn)
                            .await?;
                        return Ok(Answer::Created(done.rows_affected() == 1));
                    }
                    Write::ServerBan {
                        kind, target, ban, ..
                    } => match ban {
                        Some(ban) => {
                            sqlx::query(SET_SERVER_BAN)
                                .bind(*kind)
                                .bind(target)
                                .bind(&ban.reason)
                                .bind(ban.by.as_str())
                                .bind(i(ban.ts))
                                .bind(ban.expires.map(i))
                                .execute(&mut *conn)
                                .await?;
                        }
                        None => {
                            sqlx::query(LIFT_SERVER_BAN)
                                .bind(*kind)
                                .bind(target)
                                .execute(&mut *conn)
                                .await?;
                        }
                    },
                    Write::Membership {
                        account,
                        room,
                        member,
                    } => {
                        if *member {
                            sqlx::query(JOIN_ROOM)
                                .bind(key(account))
                                .bind(room)
                                .bind(now_ms())
                                .execute(&mut *conn)
                                .await?;
                        } else {
                            sqlx::query(LEAVE_ROOM)
                                .bind(key(account))
                                .bind(room)
                                .bind(now_ms())
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query(FORGET_LEFT)
                                .bind(key(account))
                                .bind(now_ms().saturating_sub(LEFT_KEPT_MS as _))
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Write::SetAlwaysOn { account, on, .. } => {
                        sqlx::query(SET_ALWAYS_ON)
                            .bind(key(account))
                            .bind(i32::from(*on))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::TouchToken { hash } => {
                        sqlx::query(TOUCH_TOKEN)
                            .bind(hash)
                            .bind(now_ms())
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::MarkRead {
                        account,
                        target,
                        shown,
                        mark,
                        ..
                    } => {
                        sqlx::query(MARK_READ)
                            .bind(key(account))
                            .bind(target)
                            .bind(shown)
                            .bind(i(mark.id))
                            .bind(i(mark.ts))
                            .execute(&mut *conn)
                            .await?;
                        let stored: Option<(i64, i64)> = sqlx::query_as(READ_POSITION)
                            .bind(key(account))
                            .bind(target)
                            .fetch_optional(&mut *conn)
                            .await?;
                        let mark = stored.map(|(id, ts)| ReadMark {
                            id: id as u64,
                            ts: ts as u64,
                        });
                        return Ok(Answer::Mark(mark));
                    }
                    Write::SetPassword { account, hash, .. } => {
                        sqlx::query(SET_PASSWORD)
                            .bind(key(account))
                            .bind(hash)
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query(REVOKE_TOKENS)
                            .bind(key(account))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Write::DeleteAccount { account, .. } => {
                        let peers: Vec<String> = sqlx::query_scalar(PEERS)
                            .bind(key(account))
                            .fetch_all(&mut *conn)
                            .await?;
                        for peer in peers {
                            sqlx::query(FORGET_PAIR)
                                .bind(pair_keys(key(account), peer))
                                .execute(&mut *conn)
                                .await?;
                        }
                        let mut gone = 0;
                        for sql in DELETE_ACCOUNT {
                            gone = sqlx::query(sql)
                                .bind(key(account))
                                .execute(&mut *conn)
                                .await?
                                .rows_affected();
                        }
                        return Ok(Answer::Created(gone > 0));
                    }
                    Write::RevokeTokens { account, hash, .. } => {
                        let done = match hash {
                            Some(hash) => {
                                sqlx::query(REVOKE_TOKEN)
                                    .bind(key(account))
                                    .bind(hash)
                                    .execute(&mut *conn)
                                    .await?
                            }
                            None => {
                                sqlx::query(REVOKE_TOKENS)
                                    .bind(key(account))
                                    .execute(&mut *conn)
                                    .await?
                            }
                        };
                        return Ok(Answer::Count(done.rows_affected()));
                    }
                    Write::Retain {
                        before_ts, keep, ..
                    } => {
                        let mut gone = 0;
                        if let Some(ts) = before_ts {
                            gone += sqlx::query(RETAIN_MESSAGES_BY_AGE)
                                .bind(i(*ts))
                                .execute(&mut *conn)
                                .await?
                                .rows_affected();
                            gone += sqlx::query(RETAIN_DIRECTS_BY_AGE)
                                .bind(i(*ts))
                                .execute(&mut *conn)
                                .await?
                                .rows_affected();
                            sqlx::query(RETAIN_CONVERSATIONS_BY_AGE)
                                .bind(i(*ts))
                                .execute(&mut *conn)
                                .await?;
                        }
                        if let Some(keep) = keep {
                            gone += sqlx::query(RETAIN_MESSAGES_BY_COUNT)
                                .bind(i(*keep))
                                .execute(&mut *conn)
                                .await?
                                .rows_affected();
                        }
                        if gone > 0 {
                            for sql in RETAIN_REACTIONS {
                                sqlx::query(sql).execute(&mut *conn).await?;
                            }
                        }
                        return Ok(Answer::Count(gone));
                    }
                    Write::Delivered { account, ids } => {
                        for id in ids {
                            sqlx::query(DELIVERED)
                                .bind(i(*id))
                                .bind(key(account))
                                .execute(&mut *conn)
                                .await?;
                        }
                    }
                    Write::Flush(_) | Write::Index(_) => {}
                }
                Ok(Answer::Nothing)
            }
        }
    };
}

backend!(sqlite, SqliteConnection, false);
backend!(postgres, PgConnection, true);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_row_statements_take_the_largest_power_of_two() {
        let (sql, n) = RAISE_LAST_IDS.next(1, true);
        assert_eq!(n, 1);
        assert!(sql.starts_with("INSERT INTO rooms (name, last_id) VALUES ($1, $2) ON CONFLICT"));
        let (sql, n) = INSERT_MESSAGES.next(37, true);
        assert_eq!(n, 32);
        assert!(
            sql.ends_with(", ($218, $219, $220, $221, $222, $223, $224)"),
            "{sql}"
        );
        assert_eq!(INSERT_MESSAGES.next(5, true).1, 4);
        assert_eq!(INSERT_MESSAGES.next(64, false).1, 64);
        assert_eq!(INSERT_MESSAGES.next(1000, false).1, MAX_ROWS);
        let (sql, _) = INSERT_MESSAGES_ONCE.next(2, true);
        assert!(
            sql.ends_with("($8, $9, $10, $11, $12, $13, $14) ON CONFLICT (room, id) DO NOTHING"),
            "{sql}"
        );
        let (sql, _) = INSERT_MESSAGES_ONCE.next(3, false);
        assert!(
            sql.ends_with(
                "VALUES (?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (room, id) DO NOTHING"
            ),
            "{sql}"
        );
    }

    /// Writes sent while the writer lets the runtime turn join its batch;
    /// a turn that brings none ends the gathering.
    #[tokio::test]
    async fn writes_that_arrive_while_the_runtime_turns_join_the_batch() {
        let (tx, mut queue) = mpsc::channel(16);
        for turns in [0, 1, 2, 4] {
            let tx = tx.clone();
            let (reply, _) = oneshot::channel();
            tokio::spawn(async move {
                for _ in 0..turns {
                    tokio::task::yield_now().await;
                }
                tx.send(Write::Flush(reply)).await.unwrap();
            });
        }
        let mut batch = Vec::new();
        queue.recv_many(&mut batch, MAX_BATCH).await;
        assert_eq!(batch.len(), 1);
        gather(&mut queue, &mut batch).await;
        assert_eq!(batch.len(), 3, "the writes of the next two turns");
        drop(batch);
        let mut later = Vec::new();
        queue.recv_many(&mut later, MAX_BATCH).await;
        assert_eq!(later.len(), 1, "the last one is for the next commit");
    }

    /// The writer's connection keeps temporary data in memory, and has it
    /// so again after a retention sweep (which spills to files).
    #[tokio::test]
    async fn the_writer_keeps_temporary_data_in_memory() {
        let dir = std::env::temp_dir().join(format!("banter-temp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = crate::store::Backend::Sqlite(dir.join("banter.db"));
        let (_store, writer) = crate::store::Store::prepare(&backend).await.unwrap();
        let mut link = writer.link;
        async fn temp_store(link: &mut Database) -> i64 {
            let Some(Conn::Sqlite(conn)) = &mut link.conn else {
                panic!("SQLite")
            };
            sqlx::query_scalar("PRAGMA temp_store")
                .fetch_one(conn)
                .await
                .unwrap()
        }
        assert_eq!(temp_store(&mut link).await, 2, "MEMORY");
        let (reply, _gone) = oneshot::channel();
        let sweep = Write::Retain {
            before_ts: Some(1),
            keep: Some(10),
            reply,
        };
        link.commit(&[sweep]).await.unwrap();
        assert_eq!(temp_store(&mut link).await, 2, "MEMORY again");
        drop(link);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
