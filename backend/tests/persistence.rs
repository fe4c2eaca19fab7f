//! Persistence over real sockets, on SQLite: gap filling, paging (also IRC
//! `CHATHISTORY LATEST` with a bound), retention by age, backups, and a
//! database made with the older schema (v1) opened by this build. What
//! every store must keep across restarts is in `stores.rs`, run on SQLite
//! and PostgreSQL alike.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, IrcClient, Kind, TempDir, TestServer, history, ids, irc_command, say, texts};
use serde_json::json;

#[tokio::test]
async fn a_reconnecting_client_fills_exactly_its_gap_and_pages_back_to_the_start() {
    let server = TestServer::start_with(&["--history-len", "5", "--message-rate", "0"]);
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    for i in 1..=3 {
        say(&mut alice, "lobby", &format!("m{i}")).await;
    }
    let mut last_seen = 0;
    while last_seen < 3 {
        let m = bob.wait_for("message").await;
        last_seen = m["id"].as_u64().unwrap();
    }
    drop(bob);
    for i in 4..=40 {
        say(&mut alice, "lobby", &format!("m{i}")).await;
    }
    // The same user again, on a new connection (the old one may not be
    // gone yet, so under another nick).
    let mut bob = Client::hello(&server, Kind::Ws, "bob2").await;
    let joined = bob.join("lobby").await;
    assert_eq!(ids(&joined["history"]), [36, 37, 38, 39, 40], "the newest");
    // Fill the gap forwards, page by page.
    let mut got = Vec::new();
    loop {
        let page = history(
            &mut bob,
            json!({"type":"history","room":"lobby","after":last_seen,"limit":10}),
        )
        .await;
        let page = ids(&page);
        if page.is_empty() {
            break;
        }
        last_seen = *page.last().unwrap();
        got.extend(page);
    }
    assert_eq!(got, (4..=40).collect::<Vec<u64>>(), "exactly the gap");
    // And backwards from the oldest the client has, to the first message.
    let mut oldest = 36;
    let mut back = Vec::new();
    loop {
        let page = history(
            &mut bob,
            json!({"type":"history","room":"lobby","before":oldest,"limit":7}),
        )
        .await;
        let page = ids(&page);
        if page.is_empty() {
            break;
        }
        oldest = page[0];
        back.splice(0..0, page);
    }
    assert_eq!(back, (1..36).collect::<Vec<u64>>());
    // Time bounds work too.
    let all = history(
        &mut bob,
        json!({"type":"history","room":"lobby","limit":200}),
    )
    .await;
    let ts10 = all[9]["ts"].as_u64().unwrap();
    let newer = history(
        &mut bob,
        json!({"type":"history","room":"lobby","after_ts":ts10 - 1,"limit":200}),
    )
    .await;
    // Several messages may share a millisecond: bound by time, not id.
    let times: Vec<u64> = newer
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["ts"].as_u64().unwrap())
        .collect();
    assert!(times.iter().all(|&ts| ts >= ts10), "{times:?}");
    assert!(ids(&newer).contains(&10) && ids(&newer).contains(&40));
}

#[tokio::test]
async fn retention_by_age_removes_what_is_older_and_keeps_the_rest() {
    // By count: see stores.rs (retention_keeps_the_newest_and_ids_go_on).
    let server = TestServer::start_with(&["--retain-age", "4", "--retention-interval", "1"]);
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    alice.join("lobby").await;
    say(&mut alice, "lobby", "old1").await;
    say(&mut alice, "lobby", "old2").await;
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let fresh = say(&mut alice, "lobby", "fresh").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let left = loop {
        let page = history(&mut alice, json!({"type":"history","room":"lobby"})).await;
        if ids(&page).len() == 1 || tokio::time::Instant::now() > deadline {
            break ids(&page);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(left, [fresh]);
}

/// Room messages are committed to the message log and reach the tables a
/// moment later (`store/journal.rs`): history past what the room keeps in
/// memory, search and a restart all find them at once.
#[tokio::test]
async fn messages_just_sent_are_read_back_from_the_database_at_once() {
    let mut server = TestServer::start_with(&["--history-len", "2", "--message-rate", "0"]);
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    alice.join("lobby").await;
    for i in 1..=6 {
        say(&mut alice, "lobby", &format!("word{i} fresh")).await;
    }
    let log = server.data.path().join("banter.db-messages-0");
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "the messages are in the log, not yet in the tables"
    );
    let page = history(
        &mut alice,
        json!({"type":"history","room":"lobby","before":7,"limit":6}),
    )
    .await;
    assert_eq!(ids(&page), [1, 2, 3, 4, 5, 6]);
    alice.send(json!({"type":"search","query":"word3"})).await;
    let found = alice.wait_for("search_results").await;
    assert_eq!(texts(&found["messages"]), ["word3 fresh"]);
    // A search with no words (by sender alone) reads the tables too.
    say(&mut alice, "lobby", "word7 fresh").await;
    assert!(
        std::fs::metadata(&log).unwrap().len() > 0,
        "the message is in the log"
    );
    alice
        .send(json!({"type":"search","query":"from:alice","limit":1}))
        .await;
    let found = alice.wait_for("search_results").await;
    assert_eq!(texts(&found["messages"]), ["word7 fresh"]);
    say(&mut alice, "lobby", "last").await;
    server.restart();
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    let joined = bob.join("lobby").await;
    assert_eq!(ids(&joined["history"]), [7, 8]);
    assert_eq!(say(&mut bob, "lobby", "after").await, 9, "ids go on");
}

#[tokio::test]
async fn backup_makes_a_usable_copy_while_the_server_runs() {
    let server = TestServer::start();
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    alice.join("lobby").await;
    for i in 1..=4 {
        say(&mut alice, "lobby", &format!("m{i}")).await;
    }
    let copy = Arc::new(TempDir::new());
    let target = copy.path().join("banter.db");
    let out = server.run_command(&["backup", target.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let again = server.run_command(&["backup", target.to_str().unwrap()]);
    assert!(!again.status.success(), "a backup never overwrites a file");
    // The original goes on; the copy is a database of its own.
    say(&mut alice, "lobby", "m5").await;
    let restored = TestServer::start_in(copy, &[]);
    let mut bob = Client::hello(&restored, Kind::Tcp, "bob").await;
    assert_eq!(ids(&bob.join("lobby").await["history"]), [1, 2, 3, 4]);
}

#[tokio::test]
async fn a_sqlite_store_url_puts_the_database_where_it_says() {
    let elsewhere = TempDir::new();
    let file = elsewhere.path().join("sub").join("chat.db");
    let url = format!("sqlite://{}", file.display());
    let mut server = TestServer::start_with(&["--store", &url]);
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains(&format!("data: {} (SQLite, WAL)", file.display()))),
        "{:?}",
        server.logs()
    );
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    alice.join("lobby").await;
    say(&mut alice, "lobby", "kept").await;
    assert!(file.exists(), "the directory is made, the file created");
    assert!(!server.data.path().join(banter::store::DB_FILE).exists());
    server.restart();
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    assert_eq!(ids(&bob.join("lobby").await["history"]), [1]);
    let copy = elsewhere.path().join("copy.db");
    let out = server.run_command(&["--store", &url, "backup", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(copy.exists());
}

/// A connection to the SQLite store at `db`, migrated up to `version`
/// (`None`: as it is).
async fn old_store(db: &std::path::Path, version: Option<i64>) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect_with(&banter::store::connect_options(db))
        .await
        .unwrap();
    if let Some(version) = version {
        banter::store::migrator(version)
            .run(&mut conn)
            .await
            .unwrap();
    }
    conn
}

/// Stores messages in room `lobby` as an older banter did: ids from 1.
async fn old_messages(conn: &mut sqlx::SqliteConnection, texts: &[&str]) {
    for (id, text) in (1i64..).zip(texts) {
        sqlx::query(
            "INSERT INTO messages (room, id, sender, text, ts) VALUES ('lobby', ?, 'old', ?, ?)",
        )
        .bind(id)
        .bind(text)
        .bind(1_700_000_000_000i64 + id)
        .execute(&mut *conn)
        .await
        .unwrap();
    }
}

#[test]
fn a_version_1_database_is_migrated_and_kept() {
    let data = Arc::new(TempDir::new());
    let db = data.path().join(banter::store::DB_FILE);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = old_store(&db, Some(1)).await;
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        assert!(!tables.iter().any(|t| t == "accounts"), "a v1 schema");
        old_messages(&mut conn, &["from v1", "still here"]).await;
        sqlx::query("INSERT INTO rooms (name, last_id) VALUES ('lobby', 7)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let server = TestServer::start_in(data, &[]);
    runtime.block_on(async {
        let mut c = Client::connect(&server, Kind::Tcp).await;
        c.send(json!({"type":"register","nick":"alice","password":"correct horse"}))
            .await;
        c.expect("registered").await;
        let mut alice = Client::connect(&server, Kind::Ws).await;
        alice
            .send(json!({"type":"hello","nick":"alice","password":"correct horse"}))
            .await;
        alice.expect("welcome").await;
        alice.expect("logged_in").await;
        let joined = alice.join("lobby").await;
        let texts: Vec<&str> = joined["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["from v1", "still here"]);
        assert_eq!(say(&mut alice, "lobby", "v2").await, 8, "after last_id");
    });
}

/// A v13 store (messages indexed for search through `search_rows`, and
/// some still queued) moves to v14's numbering: what was indexed is found
/// and what was queued is indexed, edits and deletions change the index,
/// and messages stored after it are numbered past both.
#[test]
fn a_version_13_search_index_is_kept() {
    let data = Arc::new(TempDir::new());
    let db = data.path().join(banter::store::DB_FILE);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = old_store(&db, Some(13)).await;
        let texts = [
            "indexed apple",
            "indexed banana",
            "queued cherry",
            "queued damson",
        ];
        old_messages(&mut conn, &texts).await;
        // v13's indexer took the first two off the queue (index rowids 7
        // and 9, not their ids), and one entry outlived its message.
        for sql in [
            "INSERT INTO search_rows (rowid, room, id) \
             SELECT 5 + 2 * rowid, room, id FROM search_queue WHERE rowid <= 2",
            "INSERT INTO search_rows (rowid, room, id) VALUES (20, 'lobby', 99)",
            "INSERT INTO message_search (rowid, text) SELECT r.rowid, m.text FROM search_rows r \
              JOIN messages m ON m.room = r.room AND m.id = r.id",
            "DELETE FROM search_queue WHERE rowid <= 2",
            "INSERT INTO rooms (name, last_id) VALUES ('lobby', 4)",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        conn.close().await.unwrap();
    });
    let server = TestServer::start_in(data.clone(), &[]);
    runtime.block_on(async {
        let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
        alice.join("lobby").await;
        async fn found(alice: &mut Client, query: &str) -> Vec<String> {
            alice.send(json!({"type":"search","query":query})).await;
            let found = alice.wait_for("search_results").await;
            let mut found = texts(&found["messages"]);
            found.sort();
            found
        }
        assert_eq!(
            found(&mut alice, "indexed").await,
            ["indexed apple", "indexed banana"]
        );
        assert_eq!(
            found(&mut alice, "queued").await,
            ["queued cherry", "queued damson"]
        );
        assert_eq!(say(&mut alice, "lobby", "fresh apple").await, 5);
        assert_eq!(
            found(&mut alice, "apple").await,
            ["fresh apple", "indexed apple"]
        );
        assert_eq!(found(&mut alice, "cherry").await, ["queued cherry"]);
    });
    // Edits and deletions of what v13 had indexed reach the index: through
    // the store's own triggers, as retention and account deletion do.
    drop(server);
    runtime.block_on(async {
        let mut conn = old_store(&db, None).await;
        for sql in [
            "UPDATE messages SET text = 'indexed elderberry' WHERE id = 1",
            "DELETE FROM messages WHERE id = 2",
            "DELETE FROM messages WHERE id = 5",
        ] {
            sqlx::query(sql).execute(&mut conn).await.unwrap();
        }
        // The index itself, not joined to what is left of the messages.
        let mut rowids = async |words: &str| -> Vec<i64> {
            sqlx::query_scalar(
                "SELECT rowid FROM message_search WHERE message_search MATCH ? ORDER BY rowid",
            )
            .bind(words)
            .fetch_all(&mut conn)
            .await
            .unwrap()
        };
        assert_eq!(rowids("indexed").await, [7]);
        assert_eq!(rowids("elderberry").await, [7]);
        assert_eq!(rowids("apple OR banana OR fresh").await, Vec::<i64>::new());
        assert_eq!(rowids("queued").await, [21, 22]);
        // The next message is numbered past the removed one, which was
        // indexed: it must not count as indexed already.
        sqlx::query(
            "INSERT INTO messages (room, id, sender, text, ts) VALUES ('lobby', 6, 'x', 'late', 1)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let numbers: Vec<(i64, i64)> = sqlx::query_as("SELECT id, seq FROM messages ORDER BY id")
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(numbers, [(1, 7), (3, 21), (4, 22), (6, 24)]);
    });
}

/// The texts of an IRC `CHATHISTORY` answer (a `chathistory` batch).
async fn chathistory(irc: &mut IrcClient, command: &str) -> Vec<String> {
    irc.send(command).await;
    let start = irc.expect("BATCH").await;
    assert!(start.contains("chathistory"), "{start}");
    let mut texts = Vec::new();
    loop {
        let line = irc.recv().await;
        match irc_command(&line) {
            "BATCH" => return texts,
            "PRIVMSG" => texts.push(line.rsplit_once(" :").unwrap().1.to_string()),
            _ => panic!("unexpected {line}"),
        }
    }
}

#[tokio::test]
async fn latest_past_a_bound_is_the_newest_messages_not_the_oldest() {
    for args in [&[][..], &["--memory-only"][..]] {
        let server = TestServer::start_with(args);
        let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
        alice.join("lobby").await;
        for i in 1..=10 {
            say(&mut alice, "lobby", &format!("m{i}")).await;
        }
        // JSON: `after` alone pages forward (the oldest past it); with
        // `latest` it is the newest past it, oldest first.
        let oldest = history(
            &mut alice,
            json!({"type":"history","room":"lobby","after":3,"limit":3}),
        )
        .await;
        assert_eq!(ids(&oldest), [4, 5, 6], "{args:?}");
        let latest = history(
            &mut alice,
            json!({"type":"history","room":"lobby","after":3,"latest":true,"limit":3}),
        )
        .await;
        assert_eq!(ids(&latest), [8, 9, 10], "{args:?}");
        let all_past = history(
            &mut alice,
            json!({"type":"history","room":"lobby","after":8,"latest":true,"limit":5}),
        )
        .await;
        assert_eq!(ids(&all_past), [9, 10], "fewer than the limit: all of them");
        let ts3 = oldest[0]["ts"].as_u64().unwrap() - 1;
        let by_time = history(
            &mut alice,
            json!({"type":"history","room":"lobby","after_ts":ts3,"latest":true,"limit":2}),
        )
        .await;
        assert_eq!(ids(&by_time), [9, 10], "{args:?}");

        // IRC: CHATHISTORY LATEST with a msgid is the newest after it.
        let mut irc = IrcClient::connect(&server).await;
        irc.send("CAP REQ :batch server-time message-tags draft/chathistory")
            .await;
        irc.send("NICK ircy").await;
        irc.send("USER ircy 0 * :I").await;
        irc.send("CAP END").await;
        irc.wait_for("376").await;
        irc.send("JOIN #lobby").await;
        irc.wait_for("366").await;
        // (No replay on JOIN: the client has draft/chathistory.)
        assert_eq!(
            chathistory(&mut irc, "CHATHISTORY LATEST #lobby msgid=lobby-3 3").await,
            ["m8", "m9", "m10"],
            "{args:?}"
        );
        assert_eq!(
            chathistory(&mut irc, "CHATHISTORY AFTER #lobby msgid=lobby-3 3").await,
            ["m4", "m5", "m6"],
            "{args:?}"
        );
        assert_eq!(
            chathistory(&mut irc, "CHATHISTORY LATEST #lobby * 2").await,
            ["m9", "m10"],
            "{args:?}"
        );
    }
}
