//! Scenarios that must hold whichever store keeps the data, written once
//! and run on each: SQLite (the default, in the test's data directory)
//! and PostgreSQL (`--store postgres://…`, a database of the test's own on
//! the server this test process starts, see [`common::PgCluster`]).
//! History, ids, topics, accounts and tokens, roles and bans, waiting
//! whispers and retention survive restarts. Each scenario is a module with
//! two tests, `sqlite` and `postgres`; without PostgreSQL installed the
//! `postgres` ones say they are skipped and pass, unless
//! BANTER_REQUIRE_POSTGRES is set.

mod common;

use std::time::{Duration, Instant};

use common::{
    Client, Kind, PG_PASSWORD, TestServer, history, ids, postgres_url, say, shared_postgres, texts,
};
use serde_json::{Value, json};

const PW: &str = "correct horse";

/// Where a scenario's server keeps its data.
enum Store {
    Sqlite,
    Postgres(String),
}

impl Store {
    /// Starts banter on this store, with more flags.
    fn start(&self, args: &[&str]) -> TestServer {
        let mut all = Vec::new();
        if let Store::Postgres(url) = self {
            all.extend(["--store", url.as_str()]);
        }
        all.extend_from_slice(args);
        TestServer::start_with(&all)
    }

    /// How the startup log names this store (a password never shown).
    fn described(&self, server: &TestServer) -> String {
        match self {
            Store::Sqlite => {
                let path = server.data.path().join(banter::store::DB_FILE);
                format!("{} (SQLite, WAL)", path.display())
            }
            Store::Postgres(url) => format!("{} (PostgreSQL)", url.replace(PG_PASSWORD, "***")),
        }
    }
}

/// A scenario as a module of two tests: `sqlite` and `postgres`.
macro_rules! on_both {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                super::$scenario(super::Store::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = super::postgres_url() else {
                    return;
                };
                super::$scenario(super::Store::Postgres(url)).await;
            }
        }
    };
}

on_both!(history_ids_topic_and_directs_survive_a_restart);
on_both!(accounts_tokens_and_logins_survive_a_restart);
on_both!(topics_roles_and_bans_survive_a_restart);
on_both!(exceptions_survive_a_restart_beside_the_bans);
on_both!(room_modes_survive_a_restart);
on_both!(an_offline_whisper_waits_until_it_was_read);
on_both!(waiting_whispers_are_bounded_per_recipient_and_per_sender);
on_both!(a_whisper_to_an_online_account_is_kept_until_it_was_read);
on_both!(retention_keeps_the_newest_and_ids_go_on);
on_both!(direct_history_pages_and_leaves_with_a_deleted_account);
on_both!(memberships_and_always_on_survive_a_restart);

/// The database name at the end of a URL (for psql).
fn database(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

async fn register(server: &TestServer, nick: &str) {
    let mut c = Client::connect(server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":nick,"password":PW,"ref":1}))
        .await;
    let reply = c.expect("registered").await;
    assert_eq!(reply["nick"], nick);
}

/// Logs in with a password; returns the client and its token.
async fn login(server: &TestServer, kind: Kind, nick: &str) -> (Client, String) {
    let hello = json!({"type":"hello","nick":nick,"password":PW});
    let (mut c, welcome) = Client::hello_with(server, kind, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let logged = c.expect("logged_in").await;
    let token = logged["token"].as_str().expect("a token").to_string();
    (c, token)
}

/// Waits (a bounded time) until the server has seen `nick` go: gone, or
/// (an always-on account) with no device connected.
async fn until_offline(server: &TestServer, nick: &str) {
    let mut watcher = Client::hello(server, Kind::Tcp, "watcher").await;
    let deadline = Instant::now() + common::WAIT;
    loop {
        watcher.send(json!({"type":"whois","nick":nick})).await;
        let answer = watcher.recv().await;
        let always_on = answer["away"]
            .as_str()
            .is_some_and(|a| a.starts_with("offline"));
        if answer["code"] == "no_such_nick" || always_on {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nick} is still online: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn hello_answer(server: &TestServer, hello: Value) -> Value {
    Client::hello_with(server, Kind::Ws, hello).await.1
}

async fn history_ids_topic_and_directs_survive_a_restart(store: Store) {
    let mut server = store.start(&[]);
    let logs = server.logs().join("\n");
    assert!(
        logs.contains(&store.described(&server)),
        "the startup log names the backend: {logs}"
    );
    assert!(!logs.contains(PG_PASSWORD), "the password is never logged");
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    alice.join("lobby").await;
    for i in 1..=5 {
        assert_eq!(say(&mut alice, "lobby", &format!("m{i}")).await, i);
    }
    alice
        .send(json!({"type":"topic","room":"lobby","text":"kept"}))
        .await;
    alice.wait_for("topic").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"d1"}))
        .await;
    assert_eq!(alice.wait_for("direct").await["id"], 1);
    assert_eq!(bob.wait_for("direct").await["text"], "d1");
    // It is the backend named that holds them.
    let db_file = server.data.path().join(banter::store::DB_FILE);
    match &store {
        Store::Postgres(url) => {
            let pg = shared_postgres().unwrap();
            assert_eq!(
                pg.psql(
                    database(url),
                    "SELECT string_agg(text, ',' ORDER BY id) FROM messages WHERE room = 'lobby'"
                ),
                "m1,m2,m3,m4,m5"
            );
            assert!(!db_file.exists(), "no SQLite file beside PostgreSQL");
        }
        Store::Sqlite => assert!(db_file.exists(), "the SQLite file is in the data directory"),
    }

    server.restart();
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    let _bob = Client::hello(&server, Kind::Ws, "bob").await;
    let joined = alice.join("lobby").await;
    assert_eq!(texts(&joined["history"]), ["m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(ids(&joined["history"]), [1, 2, 3, 4, 5]);
    assert_eq!(joined["topic"]["text"], "kept", "the topic persists");
    assert_eq!(joined["topic"]["by"], "alice");
    assert_eq!(say(&mut alice, "lobby", "after").await, 6, "ids go on");
    alice
        .send(json!({"type":"whisper","to":"bob","text":"d2"}))
        .await;
    assert_eq!(alice.wait_for("direct").await["id"], 2, "direct ids go on");

    // Paging back and forth reads PostgreSQL too (the room's recent
    // history in memory holds only what it loaded).
    let page = history(
        &mut alice,
        json!({"type":"history","room":"lobby","before":6,"limit":2}),
    )
    .await;
    assert_eq!(ids(&page), [4, 5]);
    let page = history(
        &mut alice,
        json!({"type":"history","room":"lobby","after":1,"limit":3}),
    )
    .await;
    assert_eq!(ids(&page), [2, 3, 4]);
    let page = history(
        &mut alice,
        json!({"type":"history","room":"lobby","after":1,"latest":true,"limit":2}),
    )
    .await;
    assert_eq!(ids(&page), [5, 6]);
}

async fn accounts_tokens_and_logins_survive_a_restart(store: Store) {
    let mut server = store.start(&[]);
    register(&server, "alice").await;
    let mut again = Client::connect(&server, Kind::Ws).await;
    again
        .send(json!({"type":"register","nick":"ALICE","password":"another one"}))
        .await;
    again.expect_error("account_exists").await;
    let (_, token) = login(&server, Kind::Ws, "alice").await;
    server.restart();

    let answer = hello_answer(&server, json!({"type":"hello","nick":"alice"})).await;
    assert_eq!(answer["code"], "nick_reserved", "{answer}");
    let answer = hello_answer(
        &server,
        json!({"type":"hello","nick":"alice","password":"wrong guess"}),
    )
    .await;
    assert_eq!(answer["code"], "auth_failed", "{answer}");
    let (_, second) = login(&server, Kind::Tcp, "Alice").await;
    assert_ne!(token, second);
    let hello = json!({"type":"hello","nick":"alice","token":token});
    let (mut c, welcome) = Client::hello_with(&server, Kind::Ws, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let logged = c.expect("logged_in").await;
    assert_eq!(logged["account"], "alice");
    assert!(
        logged.get("token").is_none(),
        "a token login gets no new token"
    );
    // Logging out revokes the token this session used; the other stays.
    c.send(json!({"type":"logout","ref":"bye"})).await;
    let out = c.expect("logged_out").await;
    assert_eq!((&out["revoked"], &out["ref"]), (&json!(1), &json!("bye")));
    drop(c);
    server.restart();
    let answer = hello_answer(
        &server,
        json!({"type":"hello","nick":"alice2","token":token}),
    )
    .await;
    assert_eq!(
        answer["code"], "auth_failed",
        "a revoked token stays revoked"
    );
    let hello = json!({"type":"hello","nick":"alice","token":second});
    let (mut c, welcome) = Client::hello_with(&server, Kind::Tcp, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    c.expect("logged_in").await;
    c.send(json!({"type":"logout","all":true})).await;
    assert_eq!(c.expect("logged_out").await["revoked"], 1);
}

/// A room's modes, set in two changes (the second naming only some), kept
/// across restarts; removing the key is kept too.
async fn room_modes_survive_a_restart(store: Store) {
    let mut server = store.start(&[]);
    register(&server, "alice").await;
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    for set in [
        json!({"invite_only":true,"key":"sesame","limit":20,"moderated":true,"secret":true}),
        json!({"limit":10,"registered_only":true}),
    ] {
        alice
            .send(json!({"type":"mode","room":"den","set":set}))
            .await;
        alice.wait_for("modes").await;
    }
    drop(alice);

    server.restart();
    let (mut bob, _) = {
        register(&server, "bob").await;
        login(&server, Kind::Tcp, "bob").await
    };
    bob.send(json!({"type":"join","room":"den","key":"sesame"}))
        .await;
    bob.wait_error("invite_only").await;
    let (mut alice, _) = login(&server, Kind::Tcp, "alice").await;
    let joined = alice.join("den").await;
    assert_eq!(
        joined["modes"],
        json!({"invite_only":true,"key":"sesame","limit":10,"moderated":true,"secret":true,"registered_only":true}),
        "{joined}"
    );
    alice
        .send(json!({"type":"mode","room":"den","set":{"key":"","invite_only":false}}))
        .await;
    alice.wait_for("modes").await;
    drop(alice);

    server.restart();
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    let joined = bob.join("den").await;
    assert_eq!(
        joined["modes"],
        json!({"limit":10,"moderated":true,"secret":true,"registered_only":true}),
        "{joined}"
    );
}

async fn topics_roles_and_bans_survive_a_restart(store: Store) {
    let mut server = store.start(&[]);
    for nick in ["alice", "dave", "erin"] {
        register(&server, nick).await;
    }
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    assert_eq!(alice.expect("roles").await["owner"], "alice");
    alice
        .send(json!({"type":"op","room":"den","account":"dave","ref":"op"}))
        .await;
    assert_eq!(alice.wait_for("roles").await["ops"], json!(["dave"]));
    alice
        .send(json!({"type":"topic","room":"den","text":"owned"}))
        .await;
    alice.wait_for("topic").await;
    for ban in [
        json!({"type":"ban","room":"den","nick":"bob"}),
        json!({"type":"ban","room":"den","account":"erin"}),
        // Set again: replaced, not an error.
        json!({"type":"ban","room":"den","account":"erin"}),
    ] {
        alice.send(ban).await;
        assert_eq!(alice.wait_for("banned").await["set"], true);
    }
    drop(alice);

    server.restart();
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.join_err("den", "banned").await;
    let hello = json!({"type":"hello","nick":"erin_alt","password":PW});
    let answer = hello_answer(&server, hello).await;
    assert_eq!(answer["code"], "no_such_account", "{answer}");
    let (mut erin, _) = login(&server, Kind::Ws, "erin").await;
    erin.join_err("den", "banned").await;
    // Back in den as soon as she logs in: her stored membership.
    let (mut alice, _) = login(&server, Kind::Tcp, "alice").await;
    let joined = alice.expect("joined").await;
    assert_eq!(joined["room"], "den");
    assert_eq!(joined["topic"]["text"], "owned");
    let roles = alice.expect("roles").await;
    assert_eq!(
        (&roles["owner"], &roles["ops"]),
        (&json!("alice"), &json!(["dave"]))
    );
    alice.send(json!({"type":"bans","room":"den"})).await;
    let bans = alice.expect("bans").await["bans"].clone();
    let targets: Vec<(Value, Value)> = bans
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["nick"].clone(), b["account"].clone()))
        .collect();
    assert_eq!(
        targets,
        [(json!("bob"), Value::Null), (Value::Null, json!("erin"))],
        "{bans}"
    );
    alice
        .send(json!({"type":"unban","room":"den","nick":"bob"}))
        .await;
    assert_eq!(alice.wait_for("banned").await["set"], false);
    alice
        .send(json!({"type":"deop","room":"den","account":"dave"}))
        .await;
    assert_eq!(alice.wait_for("roles").await["ops"], json!([]));
    drop(alice);
    server.restart();
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    bob.join("den").await;
    let roles = bob.expect("roles").await;
    assert_eq!(roles["ops"], json!([]), "the deop persists");
}

/// Ban and invite exceptions are kept beside the bans (the same target
/// on several lists), replaced when set again, lifted apart from the ban.
async fn exceptions_survive_a_restart_beside_the_bans(store: Store) {
    let mut server = store.start(&[]);
    register(&server, "alice").await;
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    alice
        .send(json!({"type":"mode","room":"den","set":{"invite_only":true}}))
        .await;
    alice.wait_for("modes").await;
    for request in [
        json!({"type":"ban","room":"den","mask":"b*!*@*"}),
        json!({"type":"except","room":"den","list":"ban_exception","mask":"b*!*@*"}),
        json!({"type":"except","room":"den","list":"ban_exception","nick":"bob"}),
        // Set again: replaced, not an error.
        json!({"type":"except","room":"den","list":"ban_exception","nick":"bob"}),
        json!({"type":"except","room":"den","list":"invite_exception","nick":"bob"}),
        json!({"type":"except","room":"den","list":"invite_exception","nick":"bill"}),
        json!({"type":"unexcept","room":"den","list":"ban_exception","mask":"B*!*@*"}),
    ] {
        alice.send(request.clone()).await;
        let banned = alice.wait_for("banned").await;
        assert_eq!(banned["set"], request["type"] != "unexcept", "{banned}");
    }
    drop(alice);

    server.restart();
    // bob: banned by the mask, excepted by nick, let past +i by nick.
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    assert_eq!(bob.join("den").await["room"], "den");
    // bill: invite exception, but the mask's ban holds.
    let mut bill = Client::hello(&server, Kind::Tcp, "bill").await;
    bill.join_err("den", "banned").await;
    let mut lists = Vec::new();
    for list in ["ban", "ban_exception", "invite_exception"] {
        bob.send(json!({"type":"bans","room":"den","list":list}))
            .await;
        let answer = bob.wait_for("bans").await;
        let mut targets: Vec<String> = answer["bans"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                assert_eq!(b.get("list").map_or("ban", |l| l.as_str().unwrap()), list);
                b["nick"]
                    .as_str()
                    .or(b["mask"].as_str())
                    .unwrap()
                    .to_string()
            })
            .collect();
        // Stored in order of time, then target: set in one millisecond,
        // either may come first.
        targets.sort();
        lists.push(targets);
    }
    assert_eq!(
        lists,
        [vec!["b*!*@*"], vec!["bob"], vec!["bill", "bob"]],
        "bans, ban exceptions, invite exceptions"
    );
}

async fn an_offline_whisper_waits_until_it_was_read(store: Store) {
    let mut server = store.start(&[]);
    register(&server, "bob").await;
    register(&server, "carol").await;
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    for (n, text) in ["call me", "please"].into_iter().enumerate() {
        alice
            .send(json!({"type":"whisper","to":"bob","text":text,"ref":n}))
            .await;
        let echo = alice.expect("direct").await;
        assert_eq!((&echo["to"], &echo["ref"]), (&json!("bob"), &json!(n)));
    }
    alice
        .send(json!({"type":"whisper","to":"nobody","text":"x"}))
        .await;
    alice.expect_error("no_such_nick").await;
    // They wait in the store, across a restart.
    server.restart();
    // Read but not confirmed (no answer to the ping): they come again.
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    assert_eq!(bob.expect("direct").await["text"], "call me");
    assert_eq!(bob.expect("direct").await["text"], "please");
    bob.expect("ping").await;
    drop(bob);
    until_offline(&server, "bob").await;
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    assert_eq!(bob.expect("direct").await["text"], "call me");
    assert_eq!(bob.expect("direct").await["text"], "please");
    bob.expect("ping").await;
    bob.send(json!({"type":"pong"})).await;
    bob.assert_usable().await;
    drop(bob);
    server.restart();
    // Confirmed: delivered once, also after a restart.
    let (mut bob, _) = login(&server, Kind::Ws, "bob").await;
    bob.assert_usable().await;
    drop(bob);

    // A WebSocket client that reads on confirms by itself (its socket
    // answers the ping that follows the whispers); a login that drops at
    // once confirms nothing. (To carol, who was never online: a whisper to
    // bob might still find the session just dropped.)
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    alice
        .send(json!({"type":"whisper","to":"carol","text":"again"}))
        .await;
    let echo = alice.expect("direct").await;
    drop(alice);
    let hello = json!({"type":"hello","nick":"carol","password":PW});
    let (dropped, welcome) = Client::hello_with(&server, Kind::Tcp, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    drop(dropped);
    until_offline(&server, "carol").await;
    let (mut carol, _) = login(&server, Kind::Ws, "carol").await;
    let got = carol.expect("direct").await;
    assert_eq!(
        (&got["from"], &got["text"], &got["id"]),
        (&json!("alice"), &json!("again"), &echo["id"])
    );
    // Reading on answers the WebSocket ping that followed it; the next
    // request leaves after that answer, so once it is answered the server
    // has the confirmation.
    carol.assert_usable().await;
    carol.assert_usable().await;
    drop(carol);
    server.restart();
    for kind in [Kind::Tcp, Kind::Ws] {
        let (mut carol, _) = login(&server, kind, "carol").await;
        carol.assert_usable().await;
    }
}

/// An offline account's mailbox is bounded: in all, and per sender (every
/// guest together is one sender); past a bound the whisper is refused
/// with `mailbox_full`, and the owner gets exactly what was kept.
async fn waiting_whispers_are_bounded_per_recipient_and_per_sender(store: Store) {
    let server = store.start(&[
        "--max-waiting-whispers",
        "5",
        "--max-waiting-whispers-per-sender",
        "2",
    ]);
    for nick in ["bob", "dave", "erin"] {
        register(&server, nick).await;
    }
    async fn whisper(from: &mut Client, text: &str) -> Value {
        from.send(json!({"type":"whisper","to":"bob","text":text}))
            .await;
        from.recv().await
    }
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    let mut zed = Client::hello(&server, Kind::Ws, "zed").await;
    assert_eq!(whisper(&mut alice, "a1").await["type"], "direct");
    assert_eq!(whisper(&mut zed, "z1").await["type"], "direct");
    let full = whisper(&mut alice, "a2").await;
    assert_eq!(full["code"], "mailbox_full", "guests count as one: {full}");
    let (mut dave, _) = login(&server, Kind::Tcp, "dave").await;
    let (mut erin, _) = login(&server, Kind::Ws, "erin").await;
    for text in ["d1", "d2"] {
        assert_eq!(whisper(&mut dave, text).await["type"], "direct");
    }
    let full = whisper(&mut dave, "d3").await;
    assert_eq!(full["code"], "mailbox_full", "{full}");
    assert!(
        full["message"].as_str().unwrap().contains("from you"),
        "{full}"
    );
    assert_eq!(whisper(&mut erin, "e1").await["type"], "direct");
    let full = whisper(&mut erin, "e2").await;
    assert_eq!(full["code"], "mailbox_full", "{full}");
    assert!(
        full["message"].as_str().unwrap().contains("5 whispers"),
        "{full}"
    );

    // Bob gets what was kept, in order, and confirms it.
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    let mut got = Vec::new();
    loop {
        let m = bob.recv().await;
        match m["type"].as_str() {
            Some("direct") => got.push(m["text"].as_str().unwrap().to_string()),
            Some("ping") => break,
            _ => panic!("unexpected {m}"),
        }
    }
    assert_eq!(got, ["a1", "z1", "d1", "d2", "e1"]);
    bob.send(json!({"type":"pong"})).await;
    bob.assert_usable().await;
    drop(bob);
    until_offline(&server, "bob").await;
    // Read: the mailbox has room again.
    assert_eq!(whisper(&mut erin, "e3").await["type"], "direct");
}

/// A whisper to an online account that its client never read (the
/// connection dropped first) is not lost: it comes at the next login, and
/// once that login confirms it (answers the ping after it), never again.
async fn a_whisper_to_an_online_account_is_kept_until_it_was_read(store: Store) {
    let server = store.start(&[]);
    register(&server, "bob").await;
    let (bob, _) = login(&server, Kind::Tcp, "bob").await;
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"unread"}))
        .await;
    let echo = alice.expect("direct").await;
    // Bob's client goes before reading it.
    drop(bob);
    until_offline(&server, "bob").await;
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    let got = bob.expect("direct").await;
    assert_eq!((&got["text"], &got["id"]), (&json!("unread"), &echo["id"]));
    bob.expect("ping").await;
    bob.send(json!({"type":"pong"})).await;
    // Read live and confirmed: not again.
    alice
        .send(json!({"type":"whisper","to":"bob","text":"read"}))
        .await;
    alice.expect("direct").await;
    assert_eq!(bob.expect("direct").await["text"], "read");
    bob.expect("ping").await;
    bob.send(json!({"type":"pong"})).await;
    bob.assert_usable().await;
    drop(bob);
    until_offline(&server, "bob").await;
    let (mut bob, _) = login(&server, Kind::Ws, "bob").await;
    bob.assert_usable().await;
}

/// Whispers between accounts, one of them offline (waiting) and one online
/// (kept until read), are their direct history; `targets` lists it; a
/// deleted account takes its conversations along.
async fn direct_history_pages_and_leaves_with_a_deleted_account(store: Store) {
    let server = store.start(&[]);
    for nick in ["ann", "ben"] {
        register(&server, nick).await;
    }
    let (mut ann, _) = login(&server, Kind::Tcp, "ann").await;
    ann.send(json!({"type":"whisper","to":"ben","text":"while away"}))
        .await;
    ann.expect("direct").await;
    let (mut ben, _) = login(&server, Kind::Tcp, "ben").await;
    assert_eq!(ben.wait_for("direct").await["text"], "while away");
    ben.send(json!({"type":"whisper","to":"ann","text":"back now"}))
        .await;
    ben.wait_for("direct").await;
    ann.wait_for("direct").await;
    let page = history(&mut ann, json!({"type":"history","with":"ben"})).await;
    assert_eq!(texts(&page), ["while away", "back now"]);
    let page = history(&mut ben, json!({"type":"history","with":"ann","limit":1})).await;
    assert_eq!(texts(&page), ["back now"]);
    ann.send(json!({"type":"targets"})).await;
    let targets = ann.wait_for("targets").await;
    assert_eq!(targets["targets"][0]["with"], "ben", "{targets}");

    ben.send(json!({"type":"delete_account","password":PW}))
        .await;
    ben.wait_for("account_deleted").await;
    ann.send(json!({"type":"history","with":"ben"})).await;
    ann.wait_error("no_such_account").await;
    // Whoever takes the name next finds no conversation.
    ben.send(json!({"type":"nick","nick":"benny"})).await;
    ben.wait_for("nick").await;
    register(&server, "ben").await;
    let page = history(&mut ann, json!({"type":"history","with":"ben"})).await;
    assert_eq!(page, json!([]), "gone with the account");
    ann.send(json!({"type":"targets"})).await;
    let targets = ann.wait_for("targets").await;
    assert_eq!(targets["targets"], json!([]), "{targets}");
}

async fn retention_keeps_the_newest_and_ids_go_on(store: Store) {
    let mut server = store.start(&["--retain-count", "3", "--retention-interval", "1"]);
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    alice.join("big").await;
    alice.join("small").await;
    for i in 1..=6 {
        say(&mut alice, "big", &format!("b{i}")).await;
    }
    for i in 1..=2 {
        say(&mut alice, "small", &format!("s{i}")).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let big = loop {
        let page = history(&mut alice, json!({"type":"history","room":"big"})).await;
        if ids(&page).len() == 3 || Instant::now() > deadline {
            break ids(&page);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(big, [4, 5, 6], "the newest three are kept");
    let small = history(&mut alice, json!({"type":"history","room":"small"})).await;
    assert_eq!(ids(&small), [1, 2], "a room under the limit is untouched");
    if let Store::Postgres(url) = &store {
        let pg = shared_postgres().unwrap();
        assert_eq!(pg.psql(database(url), "SELECT count(*) FROM messages"), "5");
    }
    // A joiner sees what retention left, from the router's memory.
    let mut late = Client::hello(&server, Kind::Ws, "late").await;
    assert_eq!(ids(&late.join("big").await["history"]), [4, 5, 6]);
    drop((alice, late));
    server.restart();
    // And from the store after a restart.
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    assert_eq!(ids(&alice.join("big").await["history"]), [4, 5, 6]);
    assert_eq!(
        say(&mut alice, "big", "b7").await,
        7,
        "ids are never reused"
    );
}

/// An account's rooms and its always-on setting are stored: after a
/// restart an always-on account is in its rooms at once (away, whispers
/// waiting), and one that turned it off is back in them when it logs in.
async fn memberships_and_always_on_survive_a_restart(store: Store) {
    let mut server = store.start(&[]);
    register(&server, "alice").await;
    register(&server, "carol").await;
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.wait_for("roles").await;
    alice.join("attic").await;
    alice.send(json!({"type":"part","room":"attic"})).await;
    alice.wait_for("parted").await;
    let (mut carol, _) = login(&server, Kind::Tcp, "carol").await;
    carol
        .send(json!({"type":"settings","always_on":false}))
        .await;
    assert_eq!(carol.wait_for("settings").await["always_on"], false);
    carol.join("den").await;
    drop((alice, carol));
    server.restart();

    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    let den = bob.join("den").await;
    assert_eq!(den["members"], json!(["alice", "bob"]), "{den}");
    bob.send(json!({"type":"whois","nick":"alice"})).await;
    let whois = bob.wait_for("whois").await;
    assert!(
        whois["away"].as_str().unwrap().starts_with("offline"),
        "{whois}"
    );
    bob.send(json!({"type":"whisper","to":"alice","text":"see you"}))
        .await;
    bob.wait_for("direct").await;

    let (mut alice, _) = login(&server, Kind::Tcp, "alice").await;
    let joined = alice.expect("joined").await;
    assert_eq!(joined["room"], "den");
    assert_eq!(alice.wait_for("direct").await["text"], "see you");
    let back = bob.wait_for("away").await;
    assert_eq!(
        (back["nick"].as_str(), back.get("message")),
        (Some("alice"), None)
    );
    let (mut carol, _) = login(&server, Kind::Tcp, "carol").await;
    assert_eq!(carol.expect("joined").await["room"], "den");
    carol.send(json!({"type":"settings"})).await;
    assert_eq!(carol.wait_for("settings").await["always_on"], false);
}
