//! Accounts and room moderation over real sockets: wrong passwords and
//! their limit, reserved nicks, waiting whispers confirmed by a JSON-lines
//! client, kick/ban/operators enforced on every transport (JSON over
//! WebSocket and TCP, and IRC with PASS and SASL), room changes that the
//! store refuses, and the password hasher under a burst. Logins and tokens
//! and offline whispers across restarts are scenarios of every store, in
//! `stores.rs`.

mod common;

use std::sync::Arc;

use common::{Client, IrcClient, Kind, TempDir, TestServer, irc_command, irc_sasl};
use serde_json::{Value, json};

const PW: &str = "correct horse";

async fn register(server: &TestServer, nick: &str) {
    let mut c = Client::connect(server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":nick,"password":PW,"ref":1}))
        .await;
    let reply = c.expect("registered").await;
    assert_eq!((&reply["nick"], &reply["ref"]), (&json!(nick), &json!(1)));
}

/// Logs in with a password; returns the client and its token.
async fn login(server: &TestServer, kind: Kind, nick: &str) -> (Client, String) {
    let hello = json!({"type":"hello","nick":nick,"password":PW});
    let (mut c, welcome) = Client::hello_with(server, kind, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let logged = c.expect("logged_in").await;
    assert!(
        logged["account"]
            .as_str()
            .unwrap()
            .eq_ignore_ascii_case(nick),
        "{logged}"
    );
    let token = logged["token"].as_str().expect("a token").to_string();
    (c, token)
}

async fn hello_error(server: &TestServer, hello: Value, code: &str) {
    let (_, answer) = Client::hello_with(server, Kind::Ws, hello).await;
    assert_eq!(
        (&answer["type"], &answer["code"]),
        (&json!("error"), &json!(code)),
        "{answer}"
    );
}

/// One `hello` from `local`; its first answer (retried while the nick is
/// still held by an earlier connection that is closing).
async fn hello_from(server: &TestServer, local: &str, hello: Value) -> Value {
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let mut c = Client::tcp_from(server, local).await;
        c.send(hello.clone()).await;
        let answer = c.recv().await;
        if answer["code"] != "nick_taken" || std::time::Instant::now() > deadline {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Guessing locks the guesser's address, never the account: wrong tokens
/// and passwords from one address leave the owner free to log in from
/// another (slowed down a little), and a valid token always gets in.
#[tokio::test]
async fn guessing_never_locks_an_account_out() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (_, token) = login(&server, Kind::Tcp, "alice").await;
    let attacker = "127.0.0.2";
    for _ in 0..5 {
        let bad_token = json!({"type":"hello","nick":"alice","token":"x"});
        let answer = hello_from(&server, attacker, bad_token).await;
        assert_eq!(answer["code"], "auth_failed", "{answer}");
    }
    let guess = json!({"type":"hello","nick":"alice","password":"wrong guess"});
    let answer = hello_from(&server, attacker, guess).await;
    assert_eq!(answer["code"], "rate_limited", "{answer}");
    // The owner, elsewhere, is not locked out by the bad tokens.
    let (c, _) = login(&server, Kind::Tcp, "alice").await;
    drop(c);
    // Wrong passwords from another address only slow the account down.
    for _ in 0..5 {
        let guess = json!({"type":"hello","nick":"alice","password":"wrong guess"});
        let answer = hello_from(&server, "127.0.0.3", guess).await;
        assert_eq!(answer["code"], "auth_failed", "{answer}");
    }
    let (c, _) = login(&server, Kind::Ws, "alice").await;
    drop(c);
    // A valid token gets in even from the locked address.
    let with_token = json!({"type":"hello","nick":"alice","token":token});
    let answer = hello_from(&server, attacker, with_token).await;
    assert_eq!(answer["type"], "welcome", "{answer}");
}

#[tokio::test]
async fn wrong_passwords_reserved_nicks_and_their_codes() {
    let server = TestServer::start();
    register(&server, "bob").await;
    let mut c = Client::connect(&server, Kind::Ws).await;
    c.send(json!({"type":"register","nick":"BOB","password":"another one"}))
        .await;
    c.expect_error("account_exists").await;
    c.send(json!({"type":"register","nick":"carol","password":"short"}))
        .await;
    c.expect_error("invalid_password").await;

    hello_error(
        &server,
        json!({"type":"hello","nick":"bob"}),
        "nick_reserved",
    )
    .await;
    hello_error(
        &server,
        json!({"type":"hello","nick":"ghost","password":PW}),
        "no_such_account",
    )
    .await;
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest.send(json!({"type":"nick","nick":"Bob"})).await;
    guest.expect_error("nick_reserved").await;
    guest.assert_usable().await;

    // Wrong passwords: a few are refused as such, then even the right one
    // is refused for a while (per account and per address).
    for _ in 0..5 {
        hello_error(
            &server,
            json!({"type":"hello","nick":"bob","password":"wrong guess"}),
            "auth_failed",
        )
        .await;
    }
    hello_error(
        &server,
        json!({"type":"hello","nick":"bob","password":PW}),
        "rate_limited",
    )
    .await;
    register(&server, "dave").await;
    hello_error(
        &server,
        json!({"type":"hello","nick":"dave","password":PW}),
        "rate_limited",
    )
    .await;

    // A guest may register its own nick after hello, and is then logged in.
    guest
        .send(json!({"type":"register","nick":"guest","password":PW}))
        .await;
    guest.expect("registered").await;
    assert_eq!(guest.expect("logged_in").await["account"], "guest");
}

#[tokio::test]
async fn a_json_lines_client_confirms_waiting_whispers_by_answering_the_ping() {
    let server = TestServer::start();
    register(&server, "bob").await;
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    for text in ["one", "two"] {
        alice
            .send(json!({"type":"whisper","to":"bob","text":text}))
            .await;
        alice.expect("direct").await;
    }
    // Read but not confirmed: they come again.
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    assert_eq!(bob.expect("direct").await["text"], "one");
    assert_eq!(bob.expect("direct").await["text"], "two");
    bob.expect("ping").await;
    drop(bob);
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    assert_eq!(bob.expect("direct").await["text"], "one");
    assert_eq!(bob.expect("direct").await["text"], "two");
    bob.expect("ping").await;
    bob.send(json!({"type":"pong"})).await;
    bob.assert_usable().await;
    drop(bob);
    // Confirmed: gone.
    let (mut bob, _) = login(&server, Kind::Tcp, "bob").await;
    bob.assert_usable().await;
}

#[tokio::test]
async fn kick_ban_and_operators_are_enforced_on_every_transport() {
    let mut server = TestServer::start();
    for nick in ["alice", "dave", "erin"] {
        register(&server, nick).await;
    }
    // alice creates #den: she owns it.
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    let roles = alice.expect("roles").await;
    assert_eq!(
        (&roles["owner"], &roles["ops"]),
        (&json!("alice"), &json!([]))
    );
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.join("den").await;
    // IRC, logged in with PASS.
    let mut dave = IrcClient::connect(&server).await;
    dave.send(&format!("PASS :{PW}")).await;
    dave.send("NICK dave").await;
    dave.send("USER dave 0 * :Dave").await;
    dave.wait_for("001").await;
    dave.wait_for("900").await;
    dave.send("JOIN #den").await;
    let names = dave.wait_for("353").await;
    assert!(names.ends_with(":@alice bob dave"), "{names}");
    dave.wait_for("366").await;
    alice.wait_for("presence").await;

    // Guests and plain members may not moderate, on any transport.
    bob.send(json!({"type":"kick","room":"den","nick":"alice"}))
        .await;
    bob.wait_error("not_operator").await;
    dave.send("KICK #den bob :out").await;
    assert_eq!(irc_command(&dave.wait_for("482").await), "482");
    dave.send("TOPIC #den :mine").await;
    let refused = dave.wait_for("482").await;
    assert!(
        refused.contains("#den"),
        "owned rooms: ops set topics: {refused}"
    );

    // The owner makes dave an operator; IRC sees +o.
    alice
        .send(json!({"type":"op","room":"den","account":"dave","ref":"op"}))
        .await;
    let roles = alice.wait_for("roles").await;
    assert_eq!(
        (&roles["ops"], &roles["ref"]),
        (&json!(["dave"]), &json!("op"))
    );
    assert!(dave.wait_for("MODE").await.ends_with("MODE #den +o dave"));

    // dave kicks bob from IRC: everyone sees it, bob is out.
    dave.send("KICK #den bob :behave").await;
    assert_eq!(
        dave.wait_for("KICK").await,
        ":dave!dave@banter KICK #den bob :behave"
    );
    let kicked = bob.wait_for("kicked").await;
    assert_eq!(
        (&kicked["by"], &kicked["reason"]),
        (&json!("dave"), &json!("behave"))
    );
    bob.send(json!({"type":"say","room":"den","text":"still here?"}))
        .await;
    bob.wait_error("not_in_room").await;
    assert_eq!(alice.wait_for("kicked").await["nick"], "bob");

    // A ban by nick keeps bob out; one by account keeps erin out under any nick.
    dave.send("MODE #den +b bob!*@*").await;
    assert!(
        dave.wait_for("MODE")
            .await
            .ends_with("MODE #den +b bob!*@*")
    );
    alice
        .send(json!({"type":"ban","room":"den","account":"erin"}))
        .await;
    let banned = loop {
        let banned = alice.wait_for("banned").await;
        if banned["ban"]["account"] == "erin" {
            break banned;
        }
        assert_eq!(banned["ban"]["nick"], "bob", "{banned}");
    };
    assert_eq!(banned["set"], true);
    bob.join_err("den", "banned").await;

    // Both survive a restart, and so do the operators.
    server.restart();
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    bob.join_err("den", "banned").await;
    let mut erin = IrcClient::connect(&server).await;
    // A wrong password (PASS takes one word unless it has a colon): 464,
    // and the client may try again.
    erin.send(&format!("PASS {PW}")).await;
    erin.send("NICK erin").await;
    erin.send("USER erin 0 * :Erin").await;
    erin.wait_for("464").await;
    erin.send(&format!("PASS :{PW}")).await;
    erin.send("NICK erin").await;
    erin.wait_for("001").await;
    erin.send("JOIN #den").await;
    let refused = erin.wait_for("474").await;
    assert!(refused.contains("#den"), "{refused}");
    let mut dave = irc_sasl(&server, "dave").await;
    dave.send("JOIN #den").await;
    dave.wait_for("366").await;
    let mut carol = Client::hello(&server, Kind::Tcp, "carol").await;
    carol.join("den").await;
    dave.wait_for("JOIN").await;
    dave.send("MODE #den b").await;
    let list = dave.wait_for("367").await;
    assert!(
        list.contains("bob!*@*") || list.contains("$a:erin"),
        "{list}"
    );
    dave.send("KICK #den carol").await;
    assert_eq!(
        carol.wait_for("kicked").await["by"],
        "dave",
        "still an operator"
    );
    dave.send("MODE #den -b bob").await;
    assert!(
        dave.wait_for("MODE")
            .await
            .ends_with("MODE #den -b bob!*@*")
    );
    bob.join("den").await;
}

/// A data directory whose database refuses (by triggers) to store the
/// topic `refused`, a ban of the nick `refused` and operator rights for
/// the account `refused`: a store failure on demand.
async fn refusing_store() -> Arc<TempDir> {
    use sqlx::Connection;
    let data = Arc::new(TempDir::new());
    let db = data.path().join(banter::store::DB_FILE);
    let mut conn = sqlx::SqliteConnection::connect_with(&banter::store::connect_options(&db))
        .await
        .unwrap();
    banter::store::migrator(i64::MAX)
        .run(&mut conn)
        .await
        .unwrap();
    for sql in [
        "CREATE TRIGGER refuse_topic_insert BEFORE INSERT ON rooms WHEN NEW.topic = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'test: topic refused'); END",
        "CREATE TRIGGER refuse_topic_update BEFORE UPDATE ON rooms WHEN NEW.topic = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'test: topic refused'); END",
        "CREATE TRIGGER refuse_ban BEFORE INSERT ON bans WHEN NEW.target = 'refused' \
         BEGIN SELECT RAISE(ABORT, 'test: ban refused'); END",
        "CREATE TRIGGER refuse_op BEFORE INSERT ON room_roles \
         WHEN NEW.account = 'refused' AND NEW.role = 'op' \
         BEGIN SELECT RAISE(ABORT, 'test: op refused'); END",
    ] {
        sqlx::query(sql).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();
    data
}

#[tokio::test]
async fn a_room_change_the_store_refuses_is_neither_made_nor_announced() {
    let mut server = TestServer::start_in(refusing_store().await, &[]);
    register(&server, "alice").await;
    register(&server, "refused").await;
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    assert_eq!(alice.expect("roles").await["owner"], "alice");
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.join("den").await;
    bob.expect("roles").await;
    alice.expect("presence").await;

    alice
        .send(json!({"type":"topic","room":"den","text":"fine","ref":"t1"}))
        .await;
    assert_eq!(alice.expect("topic").await["ref"], "t1");
    assert_eq!(bob.expect("topic").await["topic"]["text"], "fine");

    // Each refused change: the requester gets `internal` with its ref, and
    // neither it nor anyone else hears of the change.
    for (request, why) in [
        (
            json!({"type":"topic","room":"den","text":"refused","ref":"t2"}),
            "t2",
        ),
        (
            json!({"type":"op","room":"den","account":"refused","ref":"o1"}),
            "o1",
        ),
        (
            json!({"type":"ban","room":"den","nick":"refused","ref":"b1"}),
            "b1",
        ),
    ] {
        alice.send(request).await;
        let error = alice.expect_error("internal").await;
        assert_eq!(error["ref"], why, "{error}");
    }
    // The next thing anyone hears is the next change that was saved.
    alice
        .send(json!({"type":"topic","room":"den","text":"after","ref":"t3"}))
        .await;
    assert_eq!(alice.expect("topic").await["topic"]["text"], "after");
    assert_eq!(bob.expect("topic").await["topic"]["text"], "after");
    // And the room is as before the refusals, also after a restart.
    for client in [&mut alice, &mut bob] {
        client.send(json!({"type":"bans","room":"den"})).await;
        assert_eq!(client.expect("bans").await["bans"], json!([]));
    }
    drop((alice, bob));
    server.restart();
    // Back in den at login (her stored membership).
    let (mut alice, _) = login(&server, Kind::Tcp, "alice").await;
    let joined = alice.expect("joined").await;
    assert_eq!(joined["topic"]["text"], "after");
    let roles = alice.expect("roles").await;
    assert_eq!(
        (&roles["owner"], &roles["ops"]),
        (&json!("alice"), &json!([]))
    );
    alice.send(json!({"type":"bans","room":"den"})).await;
    assert_eq!(alice.expect("bans").await["bans"], json!([]));
}

/// The server's resident memory, in KiB, read from /proc every few
/// milliseconds until stopped; returns the highest reading.
struct RssSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
                let rss: u64 = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap();
                peak = peak.max(rss);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            peak
        });
        RssSampler { stop, thread }
    }

    fn peak(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[tokio::test]
async fn a_burst_of_registrations_and_logins_is_hashed_a_few_at_a_time_and_all_succeed() {
    // 64 MiB a hash, two at a time: a burst of 12 may hold 128 MiB of
    // hashing memory, not 768.
    const MIB: u64 = 1024;
    const BURST: usize = 12;
    let server = TestServer::child_with(&[
        "--argon2-memory-kib",
        "65536",
        "--argon2-concurrency",
        "2",
        "--argon2-wait",
        "60",
        "--registrations-per-hour",
        "0",
    ]);
    let base = server.rss_kib();
    let started = std::time::Instant::now();
    let sampler = RssSampler::start(server.pid());
    let registrations: Vec<_> = (0..BURST)
        .map(|i| {
            let server = &server;
            async move { register(server, &format!("user{i}")).await }
        })
        .collect();
    futures_util::future::join_all(registrations).await;
    let logins: Vec<_> = (0..BURST)
        .map(|i| {
            let server = &server;
            async move { login(server, Kind::Tcp, &format!("user{i}")).await }
        })
        .collect();
    let clients = futures_util::future::join_all(logins).await;
    let peak = sampler.peak();
    assert_eq!(clients.len(), BURST, "every login succeeded");
    eprintln!(
        "{} hashes in {:?}; server RSS {} MiB before, {} MiB at most",
        2 * BURST,
        started.elapsed(),
        base / MIB,
        peak / MIB
    );
    assert!(
        peak < base + 3 * 64 * MIB,
        "at most two 64 MiB hashes at once (and some slack): RSS went from {} to {} MiB",
        base / MIB,
        peak / MIB
    );
}

#[tokio::test]
async fn a_login_that_finds_every_hashing_slot_taken_is_told_busy_and_may_retry() {
    let server = TestServer::start_with(&[
        "--argon2-memory-kib",
        "65536",
        "--argon2-concurrency",
        "1",
        "--argon2-wait",
        "0",
    ]);
    register(&server, "bob").await;
    // Six at once, one slot, no waiting: while the first is hashed (64 MiB
    // take a while), the others are refused with `busy`.
    let tries: Vec<_> = (0..6)
        .map(|_| {
            let server = &server;
            async move {
                let mut c = Client::connect(server, Kind::Ws).await;
                c.send(json!({"type":"register","nick":"carol","password":PW,"ref":"r"}))
                    .await;
                c.recv().await
            }
        })
        .collect();
    let answers = futures_util::future::join_all(tries).await;
    let busy: Vec<&Value> = answers.iter().filter(|a| a["code"] == "busy").collect();
    assert!(!busy.is_empty(), "{answers:?}");
    for answer in &busy {
        assert_eq!(answer["ref"], "r");
        assert!(
            answer["message"].as_str().unwrap().contains("try again"),
            "{answer}"
        );
    }
    // The others were hashed: carol was created once, the rest found her.
    for answer in &answers {
        assert!(
            ["registered", "error"].contains(&answer["type"].as_str().unwrap()),
            "{answer}"
        );
    }
    // Once the burst is over, a retry works.
    let (_bob, _) = login(&server, Kind::Tcp, "bob").await;
}

/// Two sessions of one account (different nicks: `alice` and a guest
/// nick logged in as alice is not possible, so the second logs in with a
/// token as `alice` after the first renamed itself).
async fn two_sessions(server: &TestServer) -> (Client, Client, String) {
    let (mut first, token) = login(server, Kind::Ws, "alice").await;
    first
        .send(json!({"type":"nick","nick":"alice_phone"}))
        .await;
    first.expect("nick").await;
    let (second, _) = login(server, Kind::Tcp, "alice").await;
    (first, second, token)
}

/// A password change needs the old password, revokes every token, ends
/// the account's other sessions, and gives this one a fresh token.
#[tokio::test]
async fn changing_the_password_revokes_tokens_and_ends_other_sessions() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut phone, mut laptop, old_token) = two_sessions(&server).await;
    let change = |old: &str| json!({"type":"change_password","old_password":old,"new_password":"battery staple","ref":7});
    phone.send(change("wrong guess")).await;
    phone.expect_error("auth_failed").await;
    phone.send(change(PW)).await;
    let changed = phone.expect("password_changed").await;
    assert_eq!(changed["ref"], 7);
    let new_token = changed["token"].as_str().unwrap().to_string();
    let seen = laptop.until_closed(common::WAIT).await;
    assert!(
        seen.iter()
            .any(|m| m["type"] == "closing" && m["code"] == "logged_out_elsewhere"),
        "{seen:?}"
    );
    phone.assert_usable().await;
    for hello in [
        json!({"type":"hello","nick":"alice","token":old_token}),
        json!({"type":"hello","nick":"alice","password":PW}),
    ] {
        hello_error(&server, hello, "auth_failed").await;
    }
    let hello = json!({"type":"hello","nick":"alice","token":new_token});
    let (_, welcome) = Client::hello_with(&server, Kind::Tcp, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let hello = json!({"type":"hello","nick":"alice","password":"battery staple"});
    let (_, welcome) = Client::hello_with(&server, Kind::Ws, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

/// `logout` with `all` ends the account's other sessions too.
#[tokio::test]
async fn logging_out_everywhere_ends_the_other_sessions() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut phone, mut laptop, token) = two_sessions(&server).await;
    phone.send(json!({"type":"logout","all":true})).await;
    assert_eq!(phone.expect("logged_out").await["revoked"], 2);
    let seen = laptop.until_closed(common::WAIT).await;
    assert!(
        seen.iter().any(|m| m["code"] == "logged_out_elsewhere"),
        "{seen:?}"
    );
    phone.assert_usable().await;
    hello_error(
        &server,
        json!({"type":"hello","nick":"alice","token":token}),
        "auth_failed",
    )
    .await;
}

/// Deleting an account needs its password; it ends the other sessions,
/// frees the nick, and this session goes on as a guest.
#[tokio::test]
async fn deleting_an_account_frees_its_nick_and_ends_its_sessions() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut phone, mut laptop, _) = two_sessions(&server).await;
    phone.join("den").await;
    assert_eq!(phone.expect("roles").await["owner"], "alice");
    phone
        .send(json!({"type":"delete_account","password":"wrong guess"}))
        .await;
    phone.expect_error("auth_failed").await;
    phone
        .send(json!({"type":"delete_account","password":PW,"ref":"d"}))
        .await;
    // Its room has no owner any more, and says so.
    let roles = phone.expect("roles").await;
    assert_eq!(roles["owner"], Value::Null, "{roles}");
    let deleted = phone.expect("account_deleted").await;
    assert_eq!(
        (&deleted["account"], &deleted["ref"]),
        (&json!("alice"), &json!("d"))
    );
    let seen = laptop.until_closed(common::WAIT).await;
    assert!(
        seen.iter().any(|m| m["code"] == "logged_out_elsewhere"),
        "{seen:?}"
    );
    phone.assert_usable().await;
    phone.send(json!({"type":"logout"})).await;
    phone.expect_error("no_such_account").await;
    hello_error(
        &server,
        json!({"type":"hello","nick":"alice","password":PW}),
        "no_such_account",
    )
    .await;
    // The nick is anyone's now, and can be registered again.
    let mut guest = Client::hello(&server, Kind::Tcp, "alice").await;
    guest
        .send(json!({"type":"register","nick":"alice","password":"a new one!"}))
        .await;
    guest.expect("registered").await;
}

/// An IRC login (PASS or SASL) makes no token nobody could see or revoke.
#[tokio::test]
async fn irc_logins_make_no_tokens() {
    let server = TestServer::start();
    register(&server, "dave").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send(&format!("PASS :{PW}")).await;
    irc.send("NICK dave").await;
    irc.send("USER dave 0 * :Dave").await;
    irc.wait_for("001").await;
    irc.wait_for("900").await;
    irc.send("NICK dave_irc").await;
    irc.wait_for("NICK").await;
    let (mut json, _) = login(&server, Kind::Tcp, "dave").await;
    json.send(json!({"type":"logout","all":true})).await;
    assert_eq!(
        json.expect("logged_out").await["revoked"],
        1,
        "the JSON login's only"
    );
}

/// Issue 22, finding 5: only a logged-in user who creates a room owns it
/// (joining a busy `#lobby`, or a room with history, makes nobody owner),
/// and operators can't take a room from its owner: kicking, banning (by
/// account, by its name, by the nick it uses now) and deopping the owner
/// are refused on every transport, while operators may still act against
/// each other.
#[tokio::test]
async fn operators_cannot_take_a_room_from_its_owner_and_joining_a_used_room_owns_nothing() {
    let server = TestServer::start_with(&["--change-burst", "100"]);
    for nick in ["alice", "dave", "erin", "mallory"] {
        register(&server, nick).await;
    }
    // #lobby is busy (a guest is in it) and #old has history, nobody in it:
    // a logged-in user joining either becomes no owner.
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest.join("lobby").await;
    guest.join("old").await;
    common::say(&mut guest, "old", "history").await;
    guest.send(json!({"type":"part","room":"old"})).await;
    guest.expect("parted").await;
    let (mut mallory, _) = login(&server, Kind::Ws, "mallory").await;
    mallory.join("lobby").await;
    mallory
        .send(json!({"type":"op","room":"lobby","account":"mallory","ref":"lobby"}))
        .await;
    let refused = mallory.expect_error("not_operator").await;
    assert_eq!(refused["ref"], "lobby", "{refused}");
    mallory.join("old").await;
    mallory
        .send(json!({"type":"kick","room":"lobby","nick":"guest"}))
        .await;
    mallory.expect_error("not_operator").await;
    // Nobody was in #old: mallory runs it while she stays (IRC's channel
    // creator), which gives her no role to keep: `op` of herself makes
    // her what she is, for her stay only.
    mallory
        .send(json!({"type":"op","room":"old","account":"mallory","ref":"old"}))
        .await;
    let roles = mallory.wait_for("roles").await;
    assert_eq!(
        (&roles["ops"], &roles["moderators"]),
        (&json!([]), &json!(["mallory"]))
    );
    mallory.send(json!({"type":"members","room":"old"})).await;
    let members = mallory.wait_for("members").await;
    assert_eq!(members["moderators"], json!(["mallory"]), "{members}");
    guest.send(json!({"type":"members","room":"lobby"})).await;
    guest.wait_for("members").await;

    // A brand-new room: its creator owns it and names two operators.
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    assert_eq!(alice.expect("roles").await["owner"], "alice");
    for op in ["dave", "erin"] {
        alice
            .send(json!({"type":"op","room":"den","account":op}))
            .await;
        alice.wait_for("roles").await;
    }
    let (mut erin, _) = login(&server, Kind::Tcp, "erin").await;
    erin.join("den").await;
    let mut dave = irc_sasl(&server, "dave").await;
    dave.send("JOIN #den").await;
    dave.wait_for("366").await;
    // alice goes by another nick: a nick ban on it would catch her too.
    alice
        .send(json!({"type":"nick","nick":"ally","ref":"n"}))
        .await;
    assert_eq!(alice.wait_for("nick").await["nick"], "ally");

    // The operator erin, on JSON: every move against the owner is refused.
    for request in [
        json!({"type":"kick","room":"den","nick":"ally"}),
        json!({"type":"ban","room":"den","account":"alice"}),
        json!({"type":"ban","room":"den","nick":"alice"}),
        json!({"type":"ban","room":"den","nick":"ally"}),
        json!({"type":"deop","room":"den","account":"alice"}),
    ] {
        let mut request = request;
        request["ref"] = json!("x");
        erin.send(request.clone()).await;
        let refused = erin.wait_error("not_operator").await;
        assert!(
            refused["message"].as_str().unwrap().contains("owner"),
            "{request}: {refused}"
        );
    }
    // The operator dave, on IRC: 482, saying the owner is protected.
    for line in [
        "KICK #den ally :mine now",
        "MODE #den +b $a:alice",
        "MODE #den +b ally!*@*",
        "MODE #den -o alice",
    ] {
        dave.send(line).await;
        let refused = dave.wait_for("482").await;
        assert!(
            refused.contains("#den") && refused.contains("owner"),
            "{line}: {refused}"
        );
    }
    // Nothing happened to alice: she is in, unbanned, still the owner,
    // and she can still take erin's rights away.
    alice.send(json!({"type":"bans","room":"den"})).await;
    assert_eq!(alice.wait_for("bans").await["bans"], json!([]));
    alice
        .send(json!({"type":"deop","room":"den","account":"erin"}))
        .await;
    let roles = alice.wait_for("roles").await;
    assert_eq!(
        (&roles["owner"], &roles["ops"]),
        (&json!("alice"), &json!(["dave"]))
    );
    alice
        .send(json!({"type":"say","room":"den","text":"still mine"}))
        .await;
    alice.wait_for("message").await;

    // Operators may act against each other, as on IRC: dave kicks erin.
    alice
        .send(json!({"type":"op","room":"den","account":"erin"}))
        .await;
    alice.wait_for("roles").await;
    dave.send("KICK #den erin :ops too").await;
    assert_eq!(erin.wait_for("kicked").await["by"], "dave");
}

/// Whispers that waited for an offline account come at login at most half
/// an outbox at a time in bytes too (`--outbox-bytes`): heavy ones are not
/// dropped on the way (no `lagged`), the rest come at the next login.
#[tokio::test]
async fn waiting_whispers_come_half_an_outbox_of_bytes_at_a_time() {
    let server = TestServer::start_with(&["--outbox-bytes", "65536", "--message-rate", "0"]);
    register(&server, "olive").await;
    // Twenty texts of control characters, about 16 KB of JSON each.
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    for i in 0..20 {
        let text = format!("{i:02}{}", "\u{2}".repeat(2600));
        guest
            .send(json!({"type":"whisper","to":"olive","text":text}))
            .await;
        guest.expect("direct").await;
    }
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (mut olive, _) = login(&server, Kind::Tcp, "olive").await;
        loop {
            let m = olive.recv().await;
            match m["type"].as_str() {
                Some("direct") => seen.push(m["text"].as_str().unwrap()[..2].to_string()),
                Some("ping") => break,
                _ => panic!("nothing is dropped: {m}"),
            }
        }
        olive.send(json!({"type":"pong"})).await;
        olive.assert_usable().await;
    }
    // 32 KiB a login: two of them each time, in order.
    assert_eq!(seen, ["00", "01", "02", "03"]);
}

/// A token logs into its account whatever nick the client asks for (a
/// client reconnecting as `alice_` keeps its login), but never under
/// another account's nick.
#[tokio::test]
async fn a_token_logs_in_under_another_nick_but_not_another_accounts() {
    let server = TestServer::start();
    register(&server, "alice").await;
    register(&server, "bob").await;
    let (_alice, token) = login(&server, Kind::Ws, "alice").await;
    // The account is online: another device of it, under its nick
    // whatever the hello asked for.
    let hello = json!({"type":"hello","nick":"alice_","token":token});
    let (mut second, welcome) = Client::hello_with(&server, Kind::Tcp, hello).await;
    assert_eq!(welcome["nick"], "alice", "{welcome}");
    assert_eq!(second.expect("logged_in").await["account"], "alice");
    hello_error(
        &server,
        json!({"type":"hello","nick":"bob","token":token}),
        "nick_reserved",
    )
    .await;
}

/// Bans by mask (`nick!user@host` with `*` and `?`): every nick that
/// matches is kicked and kept out, on JSON and IRC alike; the list shows
/// the mask; lifting it lets them back.
#[tokio::test]
async fn bans_by_mask_match_every_nick_they_cover() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut alice, _) = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    let mut spammer = Client::hello(&server, Kind::Tcp, "spambot1").await;
    spammer.join("den").await;
    alice
        .send(json!({"type":"ban","room":"den","mask":"not a mask"}))
        .await;
    alice.wait_error("bad_request").await;
    alice
        .send(json!({"type":"ban","room":"den","mask":"SPAM*!*@*"}))
        .await;
    let banned = alice.wait_for("banned").await;
    assert_eq!(banned["ban"]["mask"], "SPAM*!*@*", "{banned}");
    let kicked = spammer.wait_for("kicked").await;
    assert_eq!(kicked["nick"], "spambot1");
    let mut other = Client::hello(&server, Kind::Ws, "spambot2").await;
    other.join_err("den", "banned").await;
    let mut irc = IrcClient::register(&server, "spamirc").await;
    irc.send("JOIN #den").await;
    irc.wait_for("474").await;
    let mut fine = IrcClient::register(&server, "friend").await;
    fine.send("JOIN #den").await;
    fine.wait_for("366").await;
    fine.send("MODE #den b").await;
    let listed = fine.wait_for("367").await;
    assert!(listed.contains("SPAM*!*@*"), "{listed}");
    alice
        .send(json!({"type":"unban","room":"den","mask":"spam*!*@*"}))
        .await;
    assert_eq!(alice.wait_for("banned").await["set"], false);
    other.join("den").await;
}
