//! What only the PostgreSQL store (`--store postgres://…`) does, over real
//! sockets (the scenarios every store must pass are in `stores.rs`, run on
//! both): backups point to pg_dump; the `Persist` write (both backends) is
//! idempotent and delivers nothing; an outage of PostgreSQL refuses
//! messages clearly, makes `/readyz` say 503, and heals by itself once
//! PostgreSQL is back, without restarting banter.
//!
//! Each test has a database of its own on a PostgreSQL server that this
//! test process starts ([`common::PgCluster`]); the outage tests start a
//! server of their own, to stop it. Without PostgreSQL installed the tests
//! say they are skipped and pass, unless BANTER_REQUIRE_POSTGRES is set.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use banter::core::model::Page;
use banter::store::{Backend, Store, Write};
use banter_protocol::{ChatMessage, DirectMessage, Nick, RoomName};
use common::{Client, Kind, PgCluster, TempDir, TestServer, history, postgres_url, say, texts};
use serde_json::json;

/// Starts banter on the PostgreSQL database at `url`, with more flags.
fn start(url: &str, args: &[&str]) -> TestServer {
    let mut all = vec!["--store", url];
    all.extend_from_slice(args);
    TestServer::start_with(&all)
}

/// The database name at the end of a URL (for psql).
fn database(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

#[tokio::test]
async fn backup_with_a_postgres_store_points_to_pg_dump() {
    let Some(url) = postgres_url() else { return };
    let server = start(&url, &[]);
    let target = server.data.path().join("copy.db");
    let out = server.run_command(&["--store", &url, "backup", target.to_str().unwrap()]);
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pg_dump"), "{stderr}");
    assert!(!target.exists());
}

fn chat(room: &str, id: u64, text: &str) -> ChatMessage {
    ChatMessage {
        reply_to: None,
        edited: None,
        deleted: false,
        reactions: Vec::new(),
        room: RoomName::new(room).unwrap(),
        id,
        from: Nick::new("alice").unwrap(),
        text: text.into(),
        ts: 1_700_000_000_000 + id,
        account: None,
        notice: false,
    }
}

fn direct(id: u64, to: &str, text: &str) -> DirectMessage {
    DirectMessage {
        reply_to: None,
        edited: None,
        deleted: false,
        reactions: Vec::new(),
        id,
        from: Nick::new("alice").unwrap(),
        to: Nick::new(to).unwrap(),
        text: text.into(),
        ts: 1_700_000_000_000 + id,
        account: None,
        notice: false,
    }
}

async fn persist(
    store: &Store,
    messages: Vec<ChatMessage>,
    directs: Vec<(DirectMessage, bool)>,
) -> anyhow::Result<()> {
    let refused = persist_within(store, messages, directs, None).await?;
    assert!(refused.is_empty(), "{refused:?}");
    Ok(())
}

/// [`persist`] with bounds on the waiting whispers; the ids refused.
async fn persist_within(
    store: &Store,
    messages: Vec<ChatMessage>,
    directs: Vec<(DirectMessage, bool)>,
    mailbox: Option<banter::store::Mailbox>,
) -> anyhow::Result<Vec<u64>> {
    store
        .request(|reply| Write::Persist {
            messages,
            directs,
            unconfirmed: Vec::new(),
            mailbox,
            reply,
        })
        .await
}

/// A SQLite file in `dir`, and a PostgreSQL database when there is one.
fn both_backends(dir: &TempDir) -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite(dir.path().join("banter.db"))];
    if let Some(url) = postgres_url() {
        backends.push(Backend::Postgres(url));
    }
    backends
}

/// `chat(room, id, text)` as the router queues it for the store.
fn said(room: &str, id: u64, text: &str) -> Write {
    Write::Chat(banter::core::event::ChatEvent {
        message: chat(room, id, text),
        sender: 1,
        reference: None,
    })
}

/// A store opened by the test itself, counting what it hands to delivery.
async fn open(backend: &Backend, delivered: &Arc<AtomicUsize>) -> Store {
    let count = delivered.clone();
    Store::open_backend(backend, move |done, _| {
        count.fetch_add(done.len(), Ordering::SeqCst);
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn persist_stores_once_keeps_the_counters_and_delivers_nothing_on_both_backends() {
    let sqlite = TempDir::new();
    let backends = both_backends(&sqlite);
    let lobby = RoomName::new("lobby").unwrap();
    let all = Page {
        limit: 100,
        ..Page::default()
    };
    for backend in &backends {
        let delivered = Arc::new(AtomicUsize::new(0));
        let store = open(backend, &delivered).await;
        persist(
            &store,
            vec![chat("lobby", 5, "five"), chat("lobby", 6, "six")],
            vec![
                (direct(9, "bob", "waits"), true),
                (direct(10, "carol", "read"), false),
            ],
        )
        .await
        .unwrap();
        // A retry of the same (even with other contents) and more: no
        // error, no duplicate, the first copy kept.
        persist(
            &store,
            vec![
                chat("lobby", 5, "five again"),
                chat("lobby", 6, "six"),
                chat("lobby", 7, "seven"),
                chat("other", 1, "elsewhere"),
            ],
            vec![(direct(9, "bob", "waits again"), true)],
        )
        .await
        .unwrap();
        // An older message arriving late lowers no counter.
        persist(
            &store,
            vec![chat("lobby", 2, "two")],
            vec![(direct(3, "bob", "old"), false)],
        )
        .await
        .unwrap();
        let history = store.history(&lobby, all).await.unwrap();
        let got: Vec<(u64, &str)> = history.iter().map(|m| (m.id, m.text.as_str())).collect();
        assert_eq!(
            got,
            [(2, "two"), (5, "five"), (6, "six"), (7, "seven")],
            "{backend:?}"
        );
        let room = store.load_room(&lobby, 2).await.unwrap();
        assert_eq!(room.last_id, 7, "{backend:?}");
        assert_eq!(room.recent.iter().map(|m| m.id).collect::<Vec<_>>(), [6, 7]);
        assert_eq!(store.last_direct_id().await.unwrap(), 10, "{backend:?}");
        let pending = store
            .pending(&Nick::new("Bob").unwrap(), 100)
            .await
            .unwrap();
        let pending: Vec<(u64, &str)> = pending.iter().map(|d| (d.id, d.text.as_str())).collect();
        assert_eq!(pending, [(9, "waits")], "{backend:?}");
        store.flush().await.unwrap();
        assert_eq!(
            delivered.load(Ordering::SeqCst),
            0,
            "Persist is not delivered"
        );
        // And it is all there for the next process.
        drop(store);
        let again = open(backend, &delivered).await;
        assert_eq!(again.history(&lobby, all).await.unwrap().len(), 4);
        assert_eq!(again.load_room(&lobby, 0).await.unwrap().last_id, 7);
        assert_eq!(again.last_direct_id().await.unwrap(), 10);
        // Retention may delete every message: the counters stay.
        let gone = again
            .request(|reply| Write::Retain {
                before_ts: Some(i64::MAX as u64),
                keep: None,
                reply,
            })
            .await
            .unwrap();
        assert_eq!(
            gone,
            5 + 3,
            "every message, and every direct (waiting ones too)"
        );
        assert!(again.history(&lobby, all).await.unwrap().is_empty());
        assert_eq!(again.load_room(&lobby, 10).await.unwrap().last_id, 7);
        assert_eq!(again.last_direct_id().await.unwrap(), 10, "{backend:?}");
    }
}

/// In a cluster, whispers to an offline account come through `Persist`:
/// its bounds hold there too (per recipient, and per sender with every
/// guest as one), and a retry of whispers stored already is no refusal.
#[tokio::test]
async fn persisted_waiting_whispers_keep_the_mailbox_bounds_on_both_backends() {
    let sqlite = TempDir::new();
    for backend in both_backends(&sqlite) {
        let store = open(&backend, &Arc::new(AtomicUsize::new(0))).await;
        let mailbox = Some(banter::store::Mailbox {
            per_recipient: 3,
            per_sender: 2,
        });
        let from_guest = |id| (direct(id, "bob", &format!("w{id}")), true);
        let first = vec![from_guest(1), from_guest(2), from_guest(3)];
        let refused = persist_within(&store, Vec::new(), first.clone(), mailbox)
            .await
            .unwrap();
        assert_eq!(refused, [3], "two from the guests at most ({backend:?})");
        let again = persist_within(&store, Vec::new(), first, mailbox)
            .await
            .unwrap();
        assert_eq!(again, [3], "a retry: 1 and 2 are stored already");
        let mut from_carol = direct(4, "bob", "c4");
        from_carol.account = Some(Nick::new("carol").unwrap());
        let mut from_dave = direct(5, "bob", "d5");
        from_dave.account = Some(Nick::new("dave").unwrap());
        let refused = persist_within(
            &store,
            Vec::new(),
            vec![
                (from_carol, true),
                (from_dave, true),
                (direct(6, "erin", "e6"), false),
            ],
            mailbox,
        )
        .await
        .unwrap();
        assert_eq!(refused, [5], "three for bob in all ({backend:?})");
        let waiting: Vec<u64> = store
            .pending(&Nick::new("bob").unwrap(), 100)
            .await
            .unwrap()
            .iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(waiting, [1, 2, 4]);
    }
}

/// Tokens expire unless used: a token not used since the cut-off logs in
/// no more, use renews it, and an account's expired tokens are deleted
/// when it gets a new one.
#[tokio::test]
async fn tokens_expire_unless_used_on_both_backends() {
    let sqlite = TempDir::new();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    for backend in both_backends(&sqlite) {
        let store = open(&backend, &Arc::new(AtomicUsize::new(0))).await;
        let alice = Nick::new("alice").unwrap();
        let named = alice.clone();
        let created = store
            .request(|reply| Write::Register {
                name: named,
                hash: "not a real hash".into(),
                invite: None,
                reply,
            })
            .await
            .unwrap();
        assert_eq!(created, banter::store::Registered::Created);
        let add = |hash: Vec<u8>, expired_before: u64| {
            let account = alice.clone();
            let store = store.clone();
            async move {
                store
                    .request(|reply| Write::AddToken {
                        account,
                        hash,
                        expired_before,
                        reply,
                    })
                    .await
                    .unwrap()
            }
        };
        let (old, new) = (vec![1u8; 32], vec![2u8; 32]);
        add(old.clone(), 0).await;
        let made = now();
        assert_eq!(
            store.token_account(&old, 0).await.unwrap(),
            Some(alice.clone())
        );
        let later = made + 3_600_000;
        assert_eq!(
            store.token_account(&old, later).await.unwrap(),
            None,
            "unused since the cut-off: expired ({backend:?})"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let before_use = now();
        store
            .writes()
            .send(Write::TouchToken { hash: old.clone() })
            .await
            .unwrap();
        store.flush().await.unwrap();
        assert_eq!(
            store.token_account(&old, before_use).await.unwrap(),
            Some(alice.clone()),
            "renewed by use"
        );
        // A new token deletes those unused since its cut-off.
        add(new.clone(), later).await;
        assert_eq!(store.token_account(&old, 0).await.unwrap(), None, "deleted");
        assert_eq!(store.token_account(&new, 0).await.unwrap(), Some(alice));
    }
}

/// A burst queued at once commits as few batches of multi-row inserts:
/// every message lands, in order, around a room change in the same queue,
/// and each room's last id is the highest of the burst.
#[tokio::test]
async fn a_burst_is_stored_whole_and_in_order_on_both_backends() {
    use banter::core::event::{ChatEvent, RoomChange, RoomEvent};
    let sqlite = TempDir::new();
    let backends = both_backends(&sqlite);
    let all = Page {
        limit: 500,
        ..Page::default()
    };
    for backend in &backends {
        let delivered = Arc::new(AtomicUsize::new(0));
        let store = open(backend, &delivered).await;
        // 150 messages each in two rooms, alternating, and a topic after
        // the first 101 writes: more than one statement's worth of rows on
        // each side of it.
        for n in 1..=300u64 {
            let room = if n % 2 == 0 { "even" } else { "odd" };
            let message = chat(room, n.div_ceil(2), &format!("m{n}"));
            store
                .writes()
                .send(Write::Chat(ChatEvent {
                    message,
                    sender: 1,
                    reference: None,
                }))
                .await
                .unwrap();
            if n == 101 {
                let topic = banter_protocol::Topic {
                    text: "burst".into(),
                    by: Nick::new("alice").unwrap(),
                    ts: 1,
                };
                store
                    .writes()
                    .send(Write::Room(RoomEvent {
                        room: RoomName::new("odd").unwrap(),
                        change: RoomChange::Topic(topic),
                        requester: None,
                        reference: None,
                    }))
                    .await
                    .unwrap();
            }
        }
        store.flush().await.unwrap();
        assert_eq!(delivered.load(Ordering::SeqCst), 301, "{backend:?}");
        drop(store);
        let again = open(backend, &delivered).await;
        for (room, first) in [("odd", 1u64), ("even", 2)] {
            let name = RoomName::new(room).unwrap();
            let history = again.history(&name, all).await.unwrap();
            let got: Vec<(u64, String)> = history.iter().map(|m| (m.id, m.text.clone())).collect();
            let want: Vec<(u64, String)> = (0..150u64)
                .map(|k| (k + 1, format!("m{}", first + 2 * k)))
                .collect();
            assert_eq!(got, want, "{room} on {backend:?}");
            let loaded = again.load_room(&name, 0).await.unwrap();
            assert_eq!(loaded.last_id, 150, "{room} on {backend:?}");
        }
        let odd = again
            .load_room(&RoomName::new("odd").unwrap(), 0)
            .await
            .unwrap();
        assert_eq!(odd.topic.map(|t| t.text).as_deref(), Some("burst"));
    }
}

/// `/readyz`: its status and body.
async fn readyz(server: &TestServer) -> (u16, String) {
    common::http_get(server.http, "/readyz", &[]).await
}

#[tokio::test]
async fn while_postgres_is_down_messages_are_refused_and_chat_resumes_by_itself() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database();
    let server = start(&url, &["--message-rate", "0"]);
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    alice.wait_for("presence").await;
    assert_eq!(say(&mut alice, "lobby", "before").await, 1);
    assert_eq!(bob.wait_for("message").await["text"], "before");
    assert_eq!(readyz(&server).await.0, 200);

    pg.stop();
    alice
        .send(json!({"type":"say","room":"lobby","text":"lost","ref":"l"}))
        .await;
    let refused = alice.expect_error("internal").await;
    assert_eq!(refused["ref"], "l");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("could not be saved"),
        "{refused}"
    );
    bob.assert_quiet(Duration::from_millis(300)).await;
    let started = Instant::now();
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    // Anyone sees which part is down; only --admin sees the error itself.
    assert_eq!(body, "store: unavailable\n");
    let (status, detail) = common::http_get(server.admin(), "/readyz", &[]).await;
    assert_eq!(status, 503, "{detail}");
    assert!(detail.starts_with("store:") && detail != body, "{detail}");
    assert!(started.elapsed() < Duration::from_secs(2), "fails fast");
    // The sessions are fine, and reads of the store fail cleanly too.
    alice.assert_usable().await;
    bob.send(json!({"type":"history","room":"lobby","before":1,"ref":"h"}))
        .await;
    assert_eq!(bob.wait_error("internal").await["ref"], "h");
    bob.assert_usable().await;

    pg.resume();
    // Once the writer has reconnected (it retries by itself), chat works
    // again: no restart of banter.
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        alice
            .send(json!({"type":"say","room":"lobby","text":"after"}))
            .await;
        let answer = loop {
            let m = alice.recv().await;
            if m["type"] == "message" || m["type"] == "error" {
                break m;
            }
        };
        if answer["type"] == "message" {
            break answer["id"].as_u64().unwrap();
        }
        assert_eq!(answer["code"], "internal", "{answer}");
        assert!(Instant::now() < deadline, "chat did not resume");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seen = loop {
        let m = bob.wait_for("message").await;
        if m["id"] == id {
            break m;
        }
    };
    assert_eq!(seen["text"], "after");
    let deadline = Instant::now() + Duration::from_secs(15);
    while readyz(&server).await.0 != 200 {
        assert!(Instant::now() < deadline, "readyz stayed 503");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let page = history(&mut bob, json!({"type":"history","room":"lobby"})).await;
    let stored = texts(&page);
    assert_eq!(stored.first().map(String::as_str), Some("before"));
    assert_eq!(stored.last().map(String::as_str), Some("after"));
    assert!(!stored.iter().any(|t| t == "lost"), "{stored:?}");
}

#[tokio::test]
async fn the_store_fails_fast_while_postgres_is_down_and_heals_without_reopening() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database();
    let delivered = Arc::new(AtomicUsize::new(0));
    let store = open(&Backend::Postgres(url), &delivered).await;
    store.check().await.unwrap();
    persist(&store, vec![chat("lobby", 1, "one")], vec![])
        .await
        .unwrap();

    pg.stop();
    let started = Instant::now();
    let err = persist(&store, vec![chat("lobby", 2, "two")], vec![])
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("could not commit"), "{err:#}");
    let err = store.check().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "{err:#}");
    // Once the writer knows, it says so at once.
    let started = Instant::now();
    let err = store.check().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "{:?}: {err:#}",
        started.elapsed()
    );
    assert!(
        format!("{err:#}").contains("no connection to the database"),
        "{err:#}"
    );
    let started = Instant::now();
    assert!(
        persist(&store, vec![chat("lobby", 3, "three")], vec![])
            .await
            .is_err()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    pg.resume();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.check().await.is_err() {
        assert!(Instant::now() < deadline, "the store did not reconnect");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The retry of what failed goes through, once.
    persist(
        &store,
        vec![chat("lobby", 2, "two"), chat("lobby", 3, "three")],
        vec![],
    )
    .await
    .unwrap();
    let lobby = RoomName::new("lobby").unwrap();
    let page = Page {
        limit: 10,
        ..Page::default()
    };
    let ids: Vec<u64> = store
        .history(&lobby, page)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(delivered.load(Ordering::SeqCst), 0);
}

/// The helper's promise: the tests' PostgreSQL servers stop with them.
#[test]
fn a_dropped_cluster_leaves_no_server_running() {
    let Some(pg) = PgCluster::start() else { return };
    let url = pg.create_database();
    let (port, dir) = (pg.port, pg.path().to_path_buf());
    assert_eq!(pg.psql(database(&url), "SELECT 1"), "1");
    drop(pg);
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "PostgreSQL still listens on {port}"
    );
    assert!(!dir.exists(), "{} is left", dir.display());
}

/// SQLite indexes messages for search beside the commit, in batches (see
/// the writer): a search still finds everything committed before it, a
/// burst larger than one indexing batch included, and what a stopped
/// server had not indexed yet is found after the restart. On PostgreSQL
/// the index is part of the commit; the same searches hold.
#[tokio::test]
async fn search_finds_every_committed_message_across_batches_and_restarts_on_both_backends() {
    use banter::core::search::Query;
    let sqlite = TempDir::new();
    let backends = both_backends(&sqlite);
    let rooms = [RoomName::new("one").unwrap(), RoomName::new("two").unwrap()];
    let count = |store: &Store, words: &'static str| {
        let store = store.clone();
        let rooms = rooms.clone();
        async move {
            let query = Query::parse(words).unwrap();
            let found = store
                .search(&rooms, None, &query, 200, (None, None))
                .await
                .unwrap();
            found.len()
        }
    };
    for backend in &backends {
        let delivered = Arc::new(AtomicUsize::new(0));
        let store = open(backend, &delivered).await;
        // 2,500 messages (more than two indexing batches), only chat: the
        // writer's one-statement path.
        for n in 1..=2500u64 {
            let room = if n % 2 == 0 { "two" } else { "one" };
            let word = if n % 100 == 0 { "hundredth" } else { "plain" };
            let text = format!("{word} message number{n}");
            let write = said(room, n.div_ceil(2), &text);
            store.writes().send(write).await.unwrap();
        }
        store.flush().await.unwrap();
        assert_eq!(delivered.load(Ordering::SeqCst), 2500, "{backend:?}");
        assert_eq!(count(&store, "number2500").await, 1, "{backend:?}");
        assert_eq!(count(&store, "hundredth").await, 25, "{backend:?}");
        assert_eq!(count(&store, "plain").await, 200, "{backend:?}");
        // More, then the server stops at once: nothing has searched them.
        for n in 2501..=2600u64 {
            let room = if n % 2 == 0 { "two" } else { "one" };
            let write = said(room, n.div_ceil(2), &format!("late number{n}"));
            store.writes().send(write).await.unwrap();
        }
        store.flush().await.unwrap();
        drop(store);
        let again = open(backend, &delivered).await;
        assert_eq!(count(&again, "number2600").await, 1, "{backend:?}");
        assert_eq!(count(&again, "late").await, 100, "{backend:?}");
        assert_eq!(count(&again, "number1").await, 1, "{backend:?}");
    }
}

/// A batch that cannot commit (here a message whose id a room already
/// has) leaves nothing of itself, tells delivery it failed, and the next
/// batch commits as usual.
#[tokio::test]
async fn a_failed_batch_of_messages_leaves_nothing_and_the_next_commits_on_both_backends() {
    use banter::core::event::Event;
    use banter::core::port::Verdict;
    let sqlite = TempDir::new();
    let backends = both_backends(&sqlite);
    let room = RoomName::new("lobby").unwrap();
    for backend in &backends {
        let outcomes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = outcomes.clone();
        let store = Store::open_backend(backend, move |done: &mut Vec<Event>, verdict| {
            let taken = matches!(verdict, Verdict::Taken);
            let mut seen = seen.lock().unwrap();
            for event in done.iter() {
                if let Event::Chat(c) = event {
                    seen.push((c.message.id, taken));
                }
            }
        })
        .await
        .unwrap();
        let send = |id: u64, text: &'static str| {
            let store = store.clone();
            async move {
                store.writes().send(said("lobby", id, text)).await.unwrap();
                // Fails with the batch if the flush shares it.
                let _ = store.flush().await;
            }
        };
        send(1, "first").await;
        send(1, "again").await;
        send(2, "second").await;
        assert_eq!(
            *outcomes.lock().unwrap(),
            [(1, true), (1, false), (2, true)],
            "{backend:?}"
        );
        let page = Page {
            limit: 10,
            ..Page::default()
        };
        let history = store.history(&room, page).await.unwrap();
        let texts: Vec<&str> = history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["first", "second"], "{backend:?}");
        assert_eq!(store.load_room(&room, 0).await.unwrap().last_id, 2);
    }
}
