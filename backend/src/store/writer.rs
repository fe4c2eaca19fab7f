//! The single writer task: group commit.
//!
//! Every change to the database is a [`Write`] in one queue. The writer
//! takes whatever has arrived (up to [`MAX_BATCH`]), applies it in one
//! transaction and commits; while that commit is being synced to disk, new
//! writes queue up and become the next batch. So a burst of N messages
//! costs a handful of fsyncs, not N.
//!
//! Only after the commit returns are the committed messages and room
//! changes (topics, roles, bans) handed to the callback (the router's
//! delivery), in queue order, and the answers of writes that wait for one
//! sent. That is the durability promise: nobody, the sender included, sees
//! a message or a room change that is not on disk. If a commit fails,
//! nothing of the batch is delivered or applied, and the senders are told.

use banter_protocol::{BanInfo, ChatMessage, DirectMessage, Nick, Ref, RoomName, Topic};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, SqliteExecutor};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

use super::{Role, i, key, nick};

/// Most writes in one transaction.
pub const MAX_BATCH: usize = 1024;

/// A room message to store, and whom to tell once it is.
#[derive(Debug)]
pub struct ChatWrite {
    pub message: ChatMessage,
    /// The sender's session, which gets the echo with `reference`.
    pub sender: u64,
    pub reference: Option<Ref>,
}

/// A direct message to store, and whom to tell once it is.
#[derive(Debug)]
pub struct DirectWrite {
    pub message: DirectMessage,
    pub sender: u64,
    /// The recipient's session; `None`: an offline account, so the message
    /// waits (pending) for its next login.
    pub target: Option<u64>,
    pub reference: Option<Ref>,
}

/// A change to a room's settings, and whom to tell once it is stored.
/// Like a message, it takes effect (in the router's memory, announced to
/// the room) only after its transaction has committed.
#[derive(Debug)]
pub struct RoomWrite {
    pub room: RoomName,
    pub change: RoomChange,
    /// The session that asked, which gets the reply with `reference` (or,
    /// if the commit fails, the error).
    pub requester: Option<u64>,
    pub reference: Option<Ref>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomChange {
    /// A new topic, as announced; an empty text clears it (stored as none).
    Topic(Topic),
    /// Sets (`Some`) or removes an account's role in a room.
    Role { account: Nick, role: Option<Role> },
    /// Sets (`set`) or lifts a ban.
    Ban { ban: BanInfo, set: bool },
}

/// One change to the database.
#[derive(Debug)]
pub enum Write {
    Chat(ChatWrite),
    Direct(DirectWrite),
    Room(RoomWrite),
    /// Creates an account; answers whether it was created (`false`: the
    /// name was taken).
    Register {
        name: Nick,
        hash: String,
        reply: oneshot::Sender<bool>,
    },
    AddToken {
        account: Nick,
        hash: Vec<u8>,
        reply: oneshot::Sender<()>,
    },
    /// Revokes one token (by hash) or all of an account's; answers how many.
    RevokeTokens {
        account: Nick,
        hash: Option<Vec<u8>>,
        reply: oneshot::Sender<u64>,
    },
    /// Answers with the whispers waiting for `account`, oldest first
    /// (they stay waiting until [`Write::Delivered`]). In queue order, so
    /// none that was queued before is missed.
    Pending {
        account: Nick,
        reply: oneshot::Sender<Vec<DirectMessage>>,
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
    /// Answers once everything queued before it has committed.
    Flush(oneshot::Sender<()>),
    /// Stores room messages and whispers (with whether each waits for an
    /// offline account) that were delivered elsewhere (cluster mode),
    /// idempotently; answers once committed.
    Persist {
        messages: Vec<ChatMessage>,
        directs: Vec<(DirectMessage, bool)>,
        reply: oneshot::Sender<()>,
    },
}

/// A message whose transaction has ended, for delivery.
#[derive(Debug)]
pub enum Committed {
    Chat(ChatWrite),
    Direct(DirectWrite),
    Room(RoomWrite),
}

enum Answer {
    Nothing,
    Created(bool),
    Count(u64),
    Pending(Vec<DirectMessage>),
}

/// Runs until every sender of `queue` is gone. `on_commit` gets the
/// messages of each batch, in order, and whether they were saved.
pub async fn run(
    mut conn: SqliteConnection,
    mut queue: mpsc::Receiver<Write>,
    mut on_commit: impl FnMut(&mut Vec<Committed>, bool),
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut done = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let started = std::time::Instant::now();
        let outcome = commit(&mut conn, &batch).await;
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
                (Write::Chat(c), _) => done.push(Committed::Chat(c)),
                (Write::Direct(d), _) => done.push(Committed::Direct(d)),
                (Write::Room(r), _) => done.push(Committed::Room(r)),
                (Write::Register { reply, .. }, Answer::Created(created)) => {
                    let _ = reply.send(created);
                }
                (Write::AddToken { reply, .. }, Answer::Nothing) if saved => {
                    let _ = reply.send(());
                }
                (Write::RevokeTokens { reply, .. }, Answer::Count(n))
                | (Write::Retain { reply, .. }, Answer::Count(n)) => {
                    let _ = reply.send(n);
                }
                (Write::Pending { reply, .. }, Answer::Pending(list)) => {
                    let _ = reply.send(list);
                }
                (Write::Persist { reply, .. }, _) if saved => {
                    let _ = reply.send(());
                }
                (Write::Flush(reply), _) if saved => {
                    let _ = reply.send(());
                }
                // Not saved: dropping the reply tells the waiter.
                _ => {}
            }
        }
        if !done.is_empty() {
            on_commit(&mut done, saved);
            done.clear();
        }
    }
}

async fn commit(conn: &mut SqliteConnection, batch: &[Write]) -> sqlx::Result<Vec<Answer>> {
    let mut tx = conn.begin().await?;
    let mut answers = Vec::with_capacity(batch.len());
    for write in batch {
        answers.push(apply(&mut tx, write).await?);
    }
    tx.commit().await?;
    Ok(answers)
}

async fn apply(conn: &mut SqliteConnection, write: &Write) -> sqlx::Result<Answer> {
    match write {
        Write::Chat(ChatWrite { message: m, .. }) => {
            sqlx::query("INSERT INTO messages (room, id, sender, text, ts) VALUES (?, ?, ?, ?, ?)")
                .bind(m.room.as_str())
                .bind(i(m.id))
                .bind(m.from.as_str())
                .bind(&m.text)
                .bind(i(m.ts))
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO rooms (name, last_id) VALUES (?, ?) \
                 ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            )
            .bind(m.room.as_str())
            .bind(i(m.id))
            .execute(&mut *conn)
            .await?;
        }
        Write::Direct(DirectWrite {
            message: d, target, ..
        }) => {
            sqlx::query(
                "INSERT INTO directs (id, sender, recipient, recipient_key, text, ts, pending) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(i(d.id))
            .bind(d.from.as_str())
            .bind(d.to.as_str())
            .bind(key(&d.to))
            .bind(&d.text)
            .bind(i(d.ts))
            .bind(target.is_none())
            .execute(&mut *conn)
            .await?;
            counter(&mut *conn, "last_direct_id", d.id).await?;
        }
        Write::Room(RoomWrite {
            room,
            change: RoomChange::Topic(topic),
            ..
        }) => {
            let topic = Some(topic).filter(|t| !t.text.is_empty());
            sqlx::query(
                "INSERT INTO rooms (name, topic, topic_by, topic_ts) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET topic = excluded.topic, \
                 topic_by = excluded.topic_by, topic_ts = excluded.topic_ts",
            )
            .bind(room.as_str())
            .bind(topic.as_ref().map(|t| t.text.as_str()))
            .bind(topic.as_ref().map(|t| t.by.as_str()))
            .bind(topic.as_ref().map(|t| i(t.ts)))
            .execute(&mut *conn)
            .await?;
        }
        Write::Room(RoomWrite {
            room,
            change:
                RoomChange::Role {
                    account,
                    role: Some(role),
                },
            ..
        }) => {
            sqlx::query(
                "INSERT INTO room_roles (room, account, role) VALUES (?, ?, ?) \
                 ON CONFLICT (room, account) DO UPDATE SET role = excluded.role",
            )
            .bind(room.as_str())
            .bind(key(account))
            .bind(role.as_str())
            .execute(&mut *conn)
            .await?;
        }
        Write::Room(RoomWrite {
            room,
            change:
                RoomChange::Role {
                    account,
                    role: None,
                },
            ..
        }) => {
            sqlx::query("DELETE FROM room_roles WHERE room = ? AND account = ?")
                .bind(room.as_str())
                .bind(key(account))
                .execute(&mut *conn)
                .await?;
        }
        Write::Room(RoomWrite {
            room,
            change: RoomChange::Ban { ban, set },
            ..
        }) => {
            let (kind, target) = match (&ban.nick, &ban.account) {
                (_, Some(account)) => ("account", account),
                (Some(nick), None) => ("nick", nick),
                (None, None) => return Ok(Answer::Nothing),
            };
            if *set {
                sqlx::query(
                    "INSERT OR REPLACE INTO bans (room, kind, target, shown, by, ts) \
                     VALUES (?, ?, ?, ?, ?, ?)",
                )
                .bind(room.as_str())
                .bind(kind)
                .bind(key(target))
                .bind(target.as_str())
                .bind(ban.by.as_str())
                .bind(i(ban.ts))
                .execute(&mut *conn)
                .await?;
            } else {
                sqlx::query("DELETE FROM bans WHERE room = ? AND kind = ? AND target = ?")
                    .bind(room.as_str())
                    .bind(kind)
                    .bind(key(target))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Write::Register { name, hash, .. } => {
            let done = sqlx::query(
                "INSERT INTO accounts (key, name, password_hash, created) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(key(name))
            .bind(name.as_str())
            .bind(hash)
            .bind(now_ms())
            .execute(&mut *conn)
            .await?;
            return Ok(Answer::Created(done.rows_affected() == 1));
        }
        Write::AddToken { account, hash, .. } => {
            sqlx::query("INSERT OR IGNORE INTO tokens (hash, account, created) VALUES (?, ?, ?)")
                .bind(hash)
                .bind(key(account))
                .bind(now_ms())
                .execute(&mut *conn)
                .await?;
        }
        Write::RevokeTokens { account, hash, .. } => {
            let done = match hash {
                Some(hash) => {
                    sqlx::query("DELETE FROM tokens WHERE account = ? AND hash = ?")
                        .bind(key(account))
                        .bind(hash)
                        .execute(&mut *conn)
                        .await?
                }
                None => {
                    sqlx::query("DELETE FROM tokens WHERE account = ?")
                        .bind(key(account))
                        .execute(&mut *conn)
                        .await?
                }
            };
            return Ok(Answer::Count(done.rows_affected()));
        }
        Write::Pending { account, .. } => {
            let rows: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
                "SELECT id, sender, recipient, text, ts FROM directs \
                 WHERE recipient_key = ? AND pending = 1 ORDER BY id",
            )
            .bind(key(account))
            .fetch_all(&mut *conn)
            .await?;
            let list = rows
                .into_iter()
                .map(|(id, from, to, text, ts)| DirectMessage {
                    id: id as u64,
                    from: nick(from),
                    to: nick(to),
                    text,
                    ts: ts as u64,
                    account: None,
                    notice: false,
                })
                .collect();
            return Ok(Answer::Pending(list));
        }
        Write::Retain {
            before_ts, keep, ..
        } => {
            let mut gone = 0;
            if let Some(ts) = before_ts {
                gone += sqlx::query("DELETE FROM messages WHERE ts < ?")
                    .bind(i(*ts))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                gone += sqlx::query("DELETE FROM directs WHERE ts < ? AND pending = 0")
                    .bind(i(*ts))
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            }
            if let Some(keep) = keep {
                gone += sqlx::query(
                    "DELETE FROM messages WHERE (room, id) IN (SELECT room, id FROM \
                     (SELECT room, id, row_number() OVER (PARTITION BY room ORDER BY id DESC) AS n \
                      FROM messages) WHERE n > ?)",
                )
                .bind(i(*keep))
                .execute(&mut *conn)
                .await?
                .rows_affected();
            }
            return Ok(Answer::Count(gone));
        }
        Write::Delivered { account, ids } => {
            for id in ids {
                sqlx::query("UPDATE directs SET pending = 0 WHERE id = ? AND recipient_key = ?")
                    .bind(i(*id))
                    .bind(key(account))
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Write::Persist {
            messages, directs, ..
        } => {
            for m in messages {
                sqlx::query(
                    "INSERT INTO messages (room, id, sender, text, ts) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(m.room.as_str())
                .bind(i(m.id))
                .bind(m.from.as_str())
                .bind(&m.text)
                .bind(i(m.ts))
                .execute(&mut *conn)
                .await?;
                sqlx::query(
                    "INSERT INTO rooms (name, last_id) VALUES (?, ?) \
                     ON CONFLICT (name) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                )
                .bind(m.room.as_str())
                .bind(i(m.id))
                .execute(&mut *conn)
                .await?;
            }
            for (d, pending) in directs {
                sqlx::query(
                    "INSERT INTO directs (id, sender, recipient, recipient_key, text, ts, pending) \
                     VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                )
                .bind(i(d.id))
                .bind(d.from.as_str())
                .bind(d.to.as_str())
                .bind(key(&d.to))
                .bind(&d.text)
                .bind(i(d.ts))
                .bind(*pending)
                .execute(&mut *conn)
                .await?;
                counter(&mut *conn, "last_direct_id", d.id).await?;
            }
        }
        Write::Flush(_) => {}
    }
    Ok(Answer::Nothing)
}

async fn counter(conn: impl SqliteExecutor<'_>, name: &str, value: u64) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO meta (key, value) VALUES (?, ?) \
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )
    .bind(name)
    .bind(i(value))
    .execute(conn)
    .await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
