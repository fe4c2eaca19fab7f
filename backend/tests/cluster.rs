//! Cluster mode: three real `banter` nodes joined through a real
//! `redis-server` (started here, on loopback, with its append-only file
//! on) and sharing a real PostgreSQL store (`common::postgres_url`), with
//! WebSocket, TCP and IRC users spread over them. Skipped, with a message
//! saying so, only when redis-server or PostgreSQL is not installed
//! (`scripts/test` installs both, and then requires them).

mod common;

use std::collections::{HashMap, HashSet};
use std::net::TcpStream as StdTcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Client, IrcClient, Kind, Next, TempDir, TestServer, WAIT, free_port, http_get, irc_command,
    swap, wait_for_port,
};
use serde_json::json;

/// A throw-away redis-server on a free loopback port, persisting to an
/// append-only file (fsync always) in a directory of its own, so that a
/// restart keeps everything.
struct Redis {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl Redis {
    fn start() -> Option<Redis> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            eprintln!(
                "skipped: redis-server is not installed (apt install redis-server; scripts/test installs it)"
            );
            return None;
        }
        let port = free_port();
        let mut redis = Redis {
            child: None,
            port,
            dir: TempDir::new(),
        };
        redis.spawn();
        Some(redis)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while StdTcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it and throws its data away (as a Redis without persistence
    /// would lose it), then starts it again, empty.
    fn wipe(&mut self) {
        self.stop();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
        self.spawn();
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Runs one command with `redis-cli` (installed with the server);
    /// its output.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    /// Stops it cleanly (SIGTERM: it finishes writing its file).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A broker and a database for the nodes of one test.
struct Cluster {
    redis: Redis,
    store: String,
}

impl Cluster {
    fn start() -> Option<Cluster> {
        let store = common::postgres_url()?;
        if std::env::var_os("BANTER_REQUIRE_POSTGRES").is_some()
            && Command::new("redis-server")
                .arg("--version")
                .output()
                .is_err()
        {
            panic!("redis-server is required (BANTER_REQUIRE_POSTGRES is set) but not installed");
        }
        Some(Cluster {
            redis: Redis::start()?,
            store,
        })
    }
}

/// A node of `cluster`.
fn node(cluster: &Cluster, name: &str) -> TestServer {
    node_with(
        cluster,
        name,
        &[
            "--message-rate",
            "0",
            "--join-rate",
            "0",
            "--history-len",
            "500",
        ],
    )
}

/// A node of `cluster` with these flags.
fn node_with(cluster: &Cluster, name: &str, args: &[&str]) -> TestServer {
    let url = cluster.redis.url();
    let mut all = vec![
        "--broker",
        &url,
        "--node-name",
        name,
        "--store",
        &cluster.store,
    ];
    all.extend_from_slice(args);
    TestServer::child_with(&all)
}

/// Asks for `room`'s members until `want` are all there (other nodes'
/// joins arrive through the broker).
async fn await_members(client: &mut Client, room: &str, want: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        client.send(json!({"type": "members", "room": room})).await;
        let members = client.wait_for("members").await;
        let have: HashSet<String> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_ascii_lowercase())
            .collect();
        if want.iter().all(|w| have.contains(*w)) {
            return;
        }
        assert!(Instant::now() < deadline, "members {have:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two nodes of `cluster`, a watcher on n2 and a sender on n1, both in
/// #lobby and known to each other.
async fn watcher_and_sender(cluster: &Cluster) -> (TestServer, TestServer, Client, Client) {
    let (n1, n2) = (node(cluster, "n1"), node(cluster, "n2"));
    let mut watcher = Client::hello(&n2, Kind::Tcp, "watcher").await;
    watcher.join("lobby").await;
    let mut sender = Client::hello(&n1, Kind::Tcp, "sender").await;
    sender.join("lobby").await;
    await_members(&mut watcher, "lobby", &["sender", "watcher"]).await;
    (n1, n2, watcher, sender)
}

/// Asks `/readyz` until it answers `status` with `says` in its body.
async fn await_readyz(node: &TestServer, status: u16, says: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (got, body) = http_get(node.http, "/readyz", &[]).await;
        if got == status {
            assert!(body.contains(says), "{body}");
            return;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {got}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `text` to #lobby (its ref is the text) until it is acknowledged,
/// while the node recovers; returns the other acknowledgements that came
/// meanwhile (of messages held earlier), in order.
async fn say_until_acknowledged(sender: &mut Client, text: &str) -> Vec<String> {
    let mut others = Vec::new();
    let deadline = Instant::now() + WAIT;
    loop {
        sender
            .send(json!({"type": "say", "room": "lobby", "text": text, "ref": text}))
            .await;
        let answer = loop {
            let m = sender.recv().await;
            if m["ref"] == json!(text) {
                break m;
            }
            if m["type"] == "message" && m.get("ref").is_some() {
                others.push(m["text"].as_str().unwrap().to_string());
            }
        };
        if answer["type"] == "message" {
            return others;
        }
        assert!(Instant::now() < deadline, "never acknowledged: {answer}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The next `count` room messages a client gets (other frames skipped):
/// (id, from, text).
async fn messages(client: &mut Client, count: usize) -> Vec<(u64, String, String)> {
    let mut got = Vec::new();
    while got.len() < count {
        let m = client.recv().await;
        if m["type"] == "message" {
            got.push((
                m["id"].as_u64().unwrap(),
                m["from"].as_str().unwrap().to_string(),
                m["text"].as_str().unwrap().to_string(),
            ));
        }
    }
    got
}

#[tokio::test]
async fn users_on_three_nodes_see_one_room_in_one_order() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2, n3) = (
        node(&cluster, "n1"),
        node(&cluster, "n2"),
        node(&cluster, "n3"),
    );
    let mut alice = Client::hello(&n1, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    let mut dave = Client::hello(&n3, Kind::Tcp, "dave").await;
    let mut carol = IrcClient::register(&n3, "carol").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    dave.join("lobby").await;
    carol.send("JOIN #lobby").await;
    carol.wait_for("366").await;
    for c in [&mut alice, &mut bob, &mut dave] {
        await_members(c, "lobby", &["alice", "bob", "carol", "dave"]).await;
    }
    // The IRC user's NAMES on another node lists everyone too.
    carol.send("NAMES #lobby").await;
    let names = carol.wait_for("353").await;
    for nick in ["alice", "bob", "dave", "carol"] {
        assert!(names.contains(nick), "{names}");
    }

    // Everyone talks at once, from every node and transport.
    const EACH: usize = 25;
    for i in 0..EACH {
        alice
            .send(json!({"type": "say", "room": "lobby", "text": format!("alice {i}")}))
            .await;
        bob.send(json!({"type": "say", "room": "lobby", "text": format!("bob {i}")}))
            .await;
        dave.send(json!({"type": "say", "room": "lobby", "text": format!("dave {i}")}))
            .await;
        carol.send(&format!("PRIVMSG #lobby :carol {i}")).await;
    }
    let total = EACH * 4;
    let seen_by_alice = messages(&mut alice, total).await;
    let seen_by_bob = messages(&mut bob, total).await;
    let seen_by_dave = messages(&mut dave, total).await;
    assert_eq!(seen_by_alice, seen_by_bob, "n1 and n2 disagree");
    assert_eq!(seen_by_alice, seen_by_dave, "n1 and n3 disagree");
    let ids: Vec<u64> = seen_by_alice.iter().map(|m| m.0).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids not increasing: {ids:?}"
    );
    for who in ["alice", "bob", "dave", "carol"] {
        // Each sender's own messages are in the order it sent them.
        let mine: Vec<&str> = seen_by_alice
            .iter()
            .filter(|m| m.1 == who)
            .map(|m| m.2.as_str())
            .collect();
        let sent: Vec<String> = (0..EACH).map(|i| format!("{who} {i}")).collect();
        assert_eq!(mine, sent, "{who}'s messages");
    }
    // The IRC user sees the others' messages in the same order.
    let mut from_irc = Vec::new();
    while from_irc.len() < EACH * 3 {
        let line = carol.recv().await;
        if irc_command(&line) == "PRIVMSG" {
            from_irc.push(line.rsplit_once(" :").unwrap().1.to_string());
        }
    }
    let expected: Vec<String> = seen_by_alice
        .iter()
        .filter(|m| m.1 != "carol")
        .map(|m| m.2.clone())
        .collect();
    assert_eq!(from_irc, expected);
}

/// Two nodes of `cluster`, alice (TCP) on n1 and bob (TCP) on n2, both
/// in `rooms` and seen there by each other's node. A join passes over
/// what else arrives meanwhile (the other node's joins reach a client
/// whenever the stream brings them).
async fn alice_and_bob_in(
    cluster: &Cluster,
    rooms: &[&str],
) -> (TestServer, TestServer, Client, Client) {
    let (n1, n2) = (node(cluster, "n1"), node(cluster, "n2"));
    let mut alice = Client::hello(&n1, Kind::Tcp, "alice").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    for room in rooms {
        for client in [&mut alice, &mut bob] {
            client.send(json!({"type": "join", "room": room})).await;
            let joined = client.wait_for("joined").await;
            assert_eq!(joined["room"], *room, "{joined}");
        }
        await_members(&mut alice, room, &["alice", "bob"]).await;
        await_members(&mut bob, room, &["alice", "bob"]).await;
    }
    (n1, n2, alice, bob)
}

/// A burst in two rooms with a topic change in it: the broker sends what
/// comes meanwhile together (one script call for each run of room
/// messages, `--broker-linger`), and every node still sees each room's
/// messages with increasing ids, in the order they were sent.
#[tokio::test]
async fn a_burst_in_several_rooms_keeps_its_order_across_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (_n1, _n2, mut alice, mut bob) = alice_and_bob_in(&cluster, &["lobby", "den"]).await;
    const EACH: usize = 60;
    for i in 0..EACH {
        if i == EACH / 2 {
            alice
                .send(json!({"type": "topic", "room": "den", "text": "halfway"}))
                .await;
        }
        for room in ["lobby", "den"] {
            alice
                .send(json!({"type": "say", "room": room, "text": format!("{room} {i}")}))
                .await;
        }
    }
    for (who, client) in [("alice", &mut alice), ("bob", &mut bob)] {
        // What each room showed, in order: messages (id, text) and the topic.
        let mut seen: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        while seen.values().map(Vec::len).sum::<usize>() < 2 * EACH + 1 {
            let m = client.recv().await;
            let room = m["room"].as_str().unwrap_or_default().to_string();
            match m["type"].as_str() {
                Some("message") => seen.entry(room).or_default().push((
                    m["id"].as_u64().unwrap(),
                    m["text"].as_str().unwrap().into(),
                )),
                Some("topic") if m["topic"]["text"] == "halfway" => {
                    seen.entry(room).or_default().push((0, "topic".into()))
                }
                _ => {}
            }
        }
        for room in ["lobby", "den"] {
            // A room change takes effect at once where it is made, and is
            // not ordered with messages still on their way to the store:
            // the topic is there, wherever it falls.
            let mut got: Vec<&str> = seen[room].iter().map(|m| m.1.as_str()).collect();
            if room == "den" {
                let topic = got.iter().position(|&t| t == "topic");
                got.remove(topic.unwrap_or_else(|| panic!("{who} saw no topic")));
            }
            let want: Vec<String> = (0..EACH).map(|i| format!("{room} {i}")).collect();
            assert_eq!(got, want, "{who} in {room}");
            let ids: Vec<u64> = seen[room]
                .iter()
                .map(|m| m.0)
                .filter(|&id| id > 0)
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "{who} in {room}: ids {ids:?}"
            );
        }
    }
}

/// A message that Redis refuses (its room's sequence is broken) fails
/// alone, with an error saying it was not sent, when it went out in one
/// script call with others: the others are delivered.
#[tokio::test]
async fn a_message_redis_refuses_fails_alone_in_its_batch() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (_n1, _n2, mut alice, mut bob) = alice_and_bob_in(&cluster, &["broken", "fine"]).await;
    alice
        .send(json!({"type": "say", "room": "broken", "text": "first", "ref": "b0"}))
        .await;
    let echo = alice.wait_for("message").await;
    assert_eq!(echo["ref"], "b0", "{echo}");
    let keys = cluster.redis.cli(&["HKEYS", "banter:seq"]);
    let key = keys
        .lines()
        .find(|k| k.contains("broken"))
        .unwrap_or_else(|| panic!("no sequence for broken in {keys:?}"));
    cluster
        .redis
        .cli(&["HSET", "banter:seq", key, "not a number"]);
    for (room, reference) in [("fine", "f1"), ("broken", "b1"), ("fine", "f2")] {
        alice
            .send(json!({"type": "say", "room": room, "text": reference, "ref": reference}))
            .await;
    }
    let mut echoed = Vec::new();
    let mut refused = Vec::new();
    while echoed.len() + refused.len() < 3 {
        let m = alice.recv().await;
        match m["type"].as_str() {
            Some("message") => echoed.push(m["ref"].as_str().unwrap().to_string()),
            Some("error") => {
                assert!(
                    m["message"]
                        .as_str()
                        .unwrap()
                        .contains("refused your message"),
                    "{m}"
                );
                refused.push(m["ref"].as_str().unwrap().to_string());
            }
            _ => {}
        }
    }
    assert_eq!(echoed, ["f1", "f2"]);
    assert_eq!(refused, ["b1"]);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let m = bob.recv().await;
        if m["type"] == "message" {
            seen.push(m["text"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, ["first", "f1", "f2"]);
}

#[tokio::test]
async fn a_nick_is_unique_across_nodes_and_moves_with_renames() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2, n3) = (
        node(&cluster, "n1"),
        node(&cluster, "n2"),
        node(&cluster, "n3"),
    );
    let alice = Client::hello(&n1, Kind::Tcp, "alice").await;
    for kind in [Kind::Ws, Kind::Tcp] {
        let mut other = Client::connect(&n2, kind).await;
        other.send(json!({"type": "hello", "nick": "ALICE"})).await;
        other.expect_error("nick_taken").await;
    }
    let mut irc = IrcClient::connect(&n3).await;
    irc.send("NICK alice").await;
    irc.send("USER a 0 * :a").await;
    let refused = irc.wait_for("433").await;
    assert!(refused.contains("alice"), "{refused}");

    // A rename on another node can't take it either, and a rename moves
    // the nick: the old one is free everywhere, the new one taken.
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    bob.send(json!({"type": "nick", "nick": "alice", "ref": 1}))
        .await;
    bob.expect_error("nick_taken").await;
    bob.send(json!({"type": "nick", "nick": "robert", "ref": 2}))
        .await;
    let renamed = bob.expect("nick").await;
    assert_eq!(renamed["nick"], "robert");
    let mut again = Client::connect(&n3, Kind::Tcp).await;
    again.send(json!({"type": "hello", "nick": "robert"})).await;
    again.expect_error("nick_taken").await;
    let (_bob2, answer) =
        Client::hello_with(&n1, Kind::Tcp, json!({"type": "hello", "nick": "bob"})).await;
    assert_eq!(answer["type"], "welcome", "{answer}");

    // Once alice leaves, her nick is free on the other nodes.
    drop(alice);
    let (_alice2, answer) =
        Client::hello_with(&n2, Kind::Ws, json!({"type": "hello", "nick": "alice"})).await;
    assert_eq!(answer["type"], "welcome", "{answer}");
}

#[tokio::test]
async fn whispers_presence_and_whois_cross_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut alice = Client::hello(&n1, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    let joined = alice.wait_for("presence").await;
    assert_eq!(
        (&joined["nick"], &joined["event"]),
        (&json!("bob"), &json!("join"))
    );

    alice
        .send(json!({"type": "whisper", "to": "bob", "text": "psst", "ref": 7}))
        .await;
    let echo = alice.wait_for("direct").await;
    assert_eq!(echo["ref"], 7);
    let got = bob.wait_for("direct").await;
    assert_eq!(
        (&got["from"], &got["text"]),
        (&json!("alice"), &json!("psst"))
    );
    assert_eq!(got["id"], echo["id"], "one id for both ends");

    // Away, on n2, reaches n1: as an event, in whois, and as the answer
    // to a whisper.
    bob.send(json!({"type": "away", "message": "lunch"})).await;
    bob.wait_for("away").await;
    let away = alice.wait_for("away").await;
    assert_eq!(
        (&away["nick"], &away["message"]),
        (&json!("bob"), &json!("lunch"))
    );
    alice.send(json!({"type": "whois", "nick": "bob"})).await;
    let whois = alice.wait_for("whois").await;
    assert_eq!(whois["rooms"], json!(["lobby"]), "{whois}");
    assert_eq!(whois["away"], "lunch");
    alice
        .send(json!({"type": "whisper", "to": "bob", "text": "back?", "ref": 8}))
        .await;
    let reply = alice.wait_for("away").await;
    assert_eq!((&reply["nick"], &reply["ref"]), (&json!("bob"), &json!(8)));
    alice.wait_for("direct").await;

    // A change of case only is a rename too, not a departure.
    bob.send(json!({"type": "nick", "nick": "BOB"})).await;
    let renamed = alice.wait_for("presence").await;
    assert_eq!(
        (&renamed["event"], &renamed["new_nick"]),
        (&json!("nick"), &json!("BOB"))
    );
    await_members(&mut alice, "lobby", &["alice", "bob"]).await;
    alice
        .send(json!({"type": "whisper", "to": "bob", "text": "still there?"}))
        .await;
    while bob.wait_for("direct").await["text"] != "still there?" {}

    // A rename, a part with a reason, and a quit, each seen on the other node.
    bob.send(json!({"type": "nick", "nick": "robert"})).await;
    let renamed = alice.wait_for("presence").await;
    assert_eq!(renamed["event"], "nick", "{renamed}");
    assert_eq!(renamed["new_nick"], "robert");
    bob.send(json!({"type": "part", "room": "lobby", "reason": "bye"}))
        .await;
    let parted = alice.wait_for("presence").await;
    assert_eq!(
        (&parted["nick"], &parted["event"], &parted["reason"]),
        (&json!("robert"), &json!("part"), &json!("bye"))
    );
    bob.send(json!({"type": "join", "room": "lobby"})).await;
    bob.wait_for("joined").await;
    alice.wait_for("presence").await;
    drop(bob);
    let quit = alice.wait_for("presence").await;
    assert_eq!(
        (&quit["nick"], &quit["event"]),
        (&json!("robert"), &json!("quit"))
    );
    alice
        .send(json!({"type": "whisper", "to": "robert", "text": "?"}))
        .await;
    alice.wait_error("no_such_nick").await;
}

const PW: &str = "correct horse";

/// Registers `nick` on `server` and logs in (a fresh connection).
async fn account(server: &TestServer, kind: Kind, nick: &str) -> Client {
    let mut c = Client::connect(server, kind).await;
    c.send(json!({"type": "register", "nick": nick, "password": PW}))
        .await;
    c.expect("registered").await;
    drop(c);
    let hello = json!({"type": "hello", "nick": nick, "password": PW});
    let (mut c, welcome) = Client::hello_with(server, kind, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    c.expect("logged_in").await;
    c
}

#[tokio::test]
async fn accounts_topics_kicks_and_bans_work_across_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    // alice (n1) owns #den; an account made on n1 is reserved on n2.
    let mut alice = account(&n1, Kind::Tcp, "alice").await;
    alice.join("den").await;
    alice.wait_for("roles").await;
    let mut guest = Client::connect(&n2, Kind::Tcp).await;
    guest.send(json!({"type": "hello", "nick": "Alice2"})).await;
    guest.expect("welcome").await;
    guest.send(json!({"type": "nick", "nick": "alice"})).await;
    guest.wait_error("nick_reserved").await;
    drop(guest);

    // The owner's topic reaches a member on n2, and a later joiner there.
    let mut bob = Client::hello(&n2, Kind::Ws, "bob").await;
    let joined = bob.join("den").await;
    assert!(
        joined["members"]
            .as_array()
            .unwrap()
            .contains(&json!("alice")),
        "{joined}"
    );
    let roles = bob.wait_for("roles").await;
    assert_eq!(roles["owner"], "alice", "n2 knows who owns #den: {roles}");
    await_members(&mut alice, "den", &["alice", "bob"]).await;
    alice
        .send(json!({"type": "topic", "room": "den", "text": "cluster talk"}))
        .await;
    assert_eq!(bob.wait_for("topic").await["topic"]["text"], "cluster talk");
    // bob is no operator, on n2 either.
    bob.send(json!({"type": "topic", "room": "den", "text": "mine"}))
        .await;
    bob.wait_error("not_operator").await;

    // The owner on n1 kicks bob on n2: both see it, bob is out.
    alice
        .send(json!({"type": "kick", "room": "den", "nick": "bob", "reason": "behave"}))
        .await;
    let kicked = bob.wait_for("kicked").await;
    assert_eq!(
        (&kicked["nick"], &kicked["by"], &kicked["reason"]),
        (&json!("bob"), &json!("alice"), &json!("behave"))
    );
    assert_eq!(alice.wait_for("kicked").await["nick"], "bob");
    bob.send(json!({"type": "say", "room": "den", "text": "still here?"}))
        .await;
    bob.wait_error("not_in_room").await;

    // A ban on n1 kicks and keeps out a user of n2.
    bob.join("den").await;
    await_members(&mut alice, "den", &["alice", "bob"]).await;
    alice
        .send(json!({"type": "ban", "room": "den", "nick": "bob"}))
        .await;
    let kicked = bob.wait_for("kicked").await;
    assert_eq!(kicked["reason"], "banned", "{kicked}");
    bob.join_err("den", "banned").await;
    // A user of n2 logs into alice's account there (tokens, passwords
    // and accounts are in the shared store) only once alice is gone.
    drop(alice);
    let hello = json!({"type": "hello", "nick": "alice", "password": PW});
    let (mut again, welcome) = Client::hello_with(&n2, Kind::Tcp, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    again.expect("logged_in").await;
}

/// A room's modes set on one node hold on another: a member limit counts
/// the members of every node, an invite-only room keeps out a user of
/// another node; invitations and voices reach users of other nodes, and
/// operators of other nodes hear of invitations.
#[tokio::test]
async fn room_modes_invitations_and_voices_hold_across_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut alice = account(&n1, Kind::Tcp, "alice").await;
    alice.join("den").await;
    alice.wait_for("roles").await;
    let mut bob = Client::hello(&n2, Kind::Ws, "bob").await;
    bob.join("den").await;
    await_members(&mut alice, "den", &["alice", "bob"]).await;
    alice
        .send(json!({"type": "mode", "room": "den", "set": {"limit": 2, "moderated": true}}))
        .await;
    alice.wait_for("modes").await;
    assert_eq!(bob.wait_for("modes").await["modes"]["limit"], 2);
    bob.send(json!({"type": "say", "room": "den", "text": "may I?"}))
        .await;
    bob.wait_error("moderated").await;
    // alice (n1) and bob (n2) fill it, whichever node counts.
    let mut carol = Client::hello(&n2, Kind::Tcp, "carol").await;
    carol.join_err("den", "room_full").await;
    let mut dave = Client::hello(&n1, Kind::Tcp, "dave").await;
    dave.join_err("den", "room_full").await;

    alice
        .send(json!({"type": "mode", "room": "den", "set": {"limit": 0, "invite_only": true}}))
        .await;
    alice.wait_for("modes").await;
    bob.wait_for("modes").await;
    carol.join_err("den", "invite_only").await;
    // erin, an operator on n2, hears of invitations made on n1.
    let mut erin = account(&n2, Kind::Tcp, "erin").await;
    let deadline = Instant::now() + WAIT;
    loop {
        // Until n1 has heard of erin's account.
        alice
            .send(json!({"type": "op", "room": "den", "account": "erin"}))
            .await;
        let answer = loop {
            let m = alice.recv().await;
            if m["type"] == "roles" || m["type"] == "error" {
                break m;
            }
        };
        if answer["type"] == "roles" {
            break;
        }
        assert_eq!(answer["code"], "no_such_account", "{answer}");
        assert!(Instant::now() < deadline, "n1 never heard of erin");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    loop {
        // Once n2 has made erin an operator too, past +i.
        erin.send(json!({"type": "join", "room": "den"})).await;
        let answer = erin.recv().await;
        if answer["type"] == "joined" {
            break;
        }
        assert_eq!(answer["code"], "invite_only", "{answer}");
        assert!(Instant::now() < deadline, "n2 never made erin an operator");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    await_members(&mut alice, "den", &["alice", "bob", "erin"]).await;
    alice
        .send(json!({"type": "invite", "room": "den", "nick": "carol", "ref": 1}))
        .await;
    let invited = alice.wait_for("invited").await;
    assert_eq!(
        (&invited["nick"], &invited["ref"]),
        (&json!("carol"), &json!(1))
    );
    let invite = carol.expect("invite").await;
    assert_eq!(
        invite,
        json!({"type": "invite", "room": "den", "from": "alice"})
    );
    let notified = erin.wait_for("invited").await;
    assert_eq!(
        (&notified["nick"], &notified["by"]),
        (&json!("carol"), &json!("alice"))
    );
    // The invitation is carol's node's: it lets her in there, once.
    assert_eq!(carol.join("den").await["room"], "den");
    alice
        .send(json!({"type": "invite", "room": "den", "nick": "dave"}))
        .await;
    alice.wait_for("invited").await;
    assert_eq!(dave.expect("invite").await["from"], "alice");
    assert_eq!(dave.join("den").await["room"], "den");

    // A voice given on n1 lets bob speak on n2, and everyone sees it.
    alice
        .send(json!({"type": "voice", "room": "den", "nick": "bob", "ref": 2}))
        .await;
    let voiced = alice.wait_for("voiced").await;
    assert_eq!(
        (&voiced["nick"], &voiced["ref"]),
        (&json!("bob"), &json!(2))
    );
    let heard = bob.wait_for("voiced").await;
    assert_eq!(
        (&heard["nick"], &heard["by"], &heard["set"]),
        (&json!("bob"), &json!("alice"), &json!(true))
    );
    assert_eq!(carol.wait_for("voiced").await["nick"], "bob");
    bob.send(json!({"type": "say", "room": "den", "text": "now I may"}))
        .await;
    assert_eq!(bob.wait_for("message").await["text"], "now I may");
    assert_eq!(alice.wait_for("message").await["text"], "now I may");
    // Shown to those who join later, on either node.
    let mut frank = Client::hello(&n1, Kind::Tcp, "frank").await;
    alice
        .send(json!({"type": "invite", "room": "den", "nick": "frank"}))
        .await;
    alice.wait_for("invited").await;
    frank.expect("invite").await;
    let joined = frank.join("den").await;
    assert_eq!(joined["voiced"], json!(["bob"]), "{joined}");
    alice
        .send(json!({"type": "devoice", "room": "den", "nick": "bob"}))
        .await;
    let taken = bob.wait_for("voiced").await;
    assert_eq!(taken["set"], false, "{taken}");
    bob.send(json!({"type": "say", "room": "den", "text": "and now?"}))
        .await;
    bob.wait_error("moderated").await;
}

/// Sends `count` numbered messages as fast as the socket takes them and
/// collects the echoes (the acknowledgements) until the connection dies
/// or all are acknowledged; calls `midway` after `after` echoes.
async fn send_and_collect(
    client: &mut Client,
    count: usize,
    after: usize,
    mut midway: impl FnMut(),
) -> Vec<String> {
    for i in 0..count {
        client
            .send(json!({"type": "say", "room": "lobby", "text": format!("m{i}"), "ref": i}))
            .await;
    }
    let mut acked = Vec::new();
    let mut fired = false;
    loop {
        match client.next_within(WAIT).await {
            Next::Msg(m) if m["type"] == "message" && m.get("ref").is_some() => {
                acked.push(m["text"].as_str().unwrap().to_string());
                if acked.len() == after && !fired {
                    fired = true;
                    midway();
                }
                if acked.len() == count {
                    return acked;
                }
            }
            Next::Msg(_) => {}
            Next::Closed | Next::Timeout => return acked,
        }
    }
}

#[tokio::test]
async fn killing_a_node_loses_no_acknowledged_message() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let mut n1 = node(&cluster, "n1");
    let (n2, n3) = (node(&cluster, "n2"), node(&cluster, "n3"));
    let mut watcher = Client::hello(&n2, Kind::Tcp, "watcher").await;
    watcher.join("lobby").await;
    let mut sender = Client::hello(&n1, Kind::Tcp, "sender").await;
    sender.join("lobby").await;
    await_members(&mut watcher, "lobby", &["sender", "watcher"]).await;

    let acked = send_and_collect(&mut sender, 150, 30, || n1.kill()).await;
    // (How many of the rest were in flight when it died depends on the
    // machine: those were never acknowledged, and may or may not be seen.)
    assert!(acked.len() >= 30, "only {} acknowledged", acked.len());

    // The watcher, on another node, got every acknowledged message, in
    // order, and then hears that the sender is gone.
    let mut seen = Vec::new();
    let quit = loop {
        let m = watcher.recv().await;
        match m["type"].as_str() {
            Some("message") => seen.push(m["text"].as_str().unwrap().to_string()),
            Some("presence") if m["event"] == "quit" => break m,
            _ => {}
        }
    };
    assert_eq!(quit["nick"], "sender");
    assert!(
        seen.len() >= acked.len(),
        "seen {} of {}",
        seen.len(),
        acked.len()
    );
    assert_eq!(
        seen[..acked.len()],
        acked[..],
        "acknowledged messages lost or reordered"
    );

    // The sender comes back on another node under the same nick (free
    // once the dead node's lease runs out) and finds them all in history.
    let (mut back, answer) =
        Client::hello_with(&n3, Kind::Ws, json!({"type": "hello", "nick": "sender"})).await;
    assert_eq!(answer["type"], "welcome", "{answer}");
    back.join("lobby").await;
    back.send(json!({"type": "history", "room": "lobby", "limit": 200}))
        .await;
    let history = back.wait_for("history").await;
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    for text in &acked {
        assert!(texts.contains(&text.as_str()), "{text} is not in history");
    }
}

#[tokio::test]
async fn restarting_redis_loses_no_acknowledged_message() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let (n1, _n2, mut watcher, mut sender) = watcher_and_sender(&cluster).await;
    let mut acked = send_and_collect(&mut sender, 20, 0, || {}).await;
    assert_eq!(acked.len(), 20);

    // While Redis is down: /readyz says so, and a message is refused
    // with a clear error (not acknowledged, not lost in silence).
    cluster.redis.stop();
    await_readyz(&n1, 503, "broker").await;
    sender
        .send(json!({"type": "say", "room": "lobby", "text": "into the void", "ref": "lost"}))
        .await;
    let refused = sender.wait_for("error").await;
    assert_eq!(refused["ref"], "lost");
    assert!(
        refused["message"].as_str().unwrap().contains("broker"),
        "{refused}"
    );

    // Redis comes back on the same data: service resumes by itself.
    cluster.redis.spawn();
    await_readyz(&n1, 200, "ready").await;
    for i in 0..10 {
        let text = format!("after {i}");
        say_until_acknowledged(&mut sender, &text).await;
        acked.push(text);
    }
    let mut seen = Vec::new();
    while seen.len() < acked.len() {
        let m = watcher.recv().await;
        if m["type"] == "message" {
            seen.push(m["text"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(seen, acked, "the watcher on the other node");
    // Nobody was dropped from the room meanwhile.
    await_members(&mut watcher, "lobby", &["sender", "watcher"]).await;
    // The operator can see it all in /metrics.
    let (_, metrics) = http_get(n1.admin(), "/metrics", &[]).await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert_eq!(value("banter_broker_up "), 1.0);
    assert!(value("banter_broker_publish_failures_total ") >= 1.0);
    assert!(value("banter_broker_published_total ") >= 30.0);
    assert!(value("banter_broker_stream_entries_total ") >= 30.0);
}

#[tokio::test]
async fn a_node_that_shuts_down_takes_its_users_along_at_once() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (mut n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut alice = Client::hello(&n1, Kind::Tcp, "alice").await;
    alice.join("lobby").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    bob.join("lobby").await;
    await_members(&mut bob, "lobby", &["alice", "bob"]).await;
    n1.signal("TERM");
    let quit = bob.wait_for("presence").await;
    assert_eq!(
        (&quit["nick"], &quit["event"]),
        (&json!("alice"), &json!("quit"))
    );
    assert!(n1.wait_exit(WAIT).success());
    assert!(
        n1.logs().iter().any(|l| l.contains("left the cluster")),
        "no goodbye in the logs"
    );
    // Its nick is free at once, not only when its lease would run out.
    let mut again = Client::connect(&n2, Kind::Tcp).await;
    again.send(json!({"type": "hello", "nick": "alice"})).await;
    assert_eq!(again.recv().await["type"], "welcome");
    drop(alice);
}

#[tokio::test]
async fn a_node_restarted_under_its_name_forgets_its_former_users() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (mut n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut alice = Client::hello(&n1, Kind::Tcp, "alice").await;
    alice.join("lobby").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    bob.join("lobby").await;
    await_members(&mut bob, "lobby", &["alice", "bob"]).await;
    // Killed, and back at once under the same name, its lease still alive.
    n1.kill();
    n1.restart();
    let quit = bob.wait_for("presence").await;
    assert_eq!(
        (&quit["nick"], &quit["event"]),
        (&json!("alice"), &json!("quit"))
    );
    let mut again = Client::connect(&n1, Kind::Tcp).await;
    again.send(json!({"type": "hello", "nick": "alice"})).await;
    assert_eq!(again.recv().await["type"], "welcome");
    drop(alice);
}

/// deploy/cluster/nginx.conf, as is but for its addresses, balancing two
/// real nodes: users who come in through it land on both, and chat.
#[tokio::test]
async fn the_deploy_example_balances_users_over_two_nodes() {
    let nginx = std::path::Path::new("/usr/sbin/nginx");
    let module = std::path::Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !nginx.exists() || !module.exists() {
        assert!(
            std::env::var_os("BANTER_REQUIRE_PROXIES").is_none(),
            "nginx with its stream module is not installed (scripts/test installs it)"
        );
        eprintln!("skipped: nginx (with libnginx-mod-stream) is not installed");
        return;
    }
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let proxied = [
        "--trusted-proxy",
        "127.0.0.1",
        "--tcp-proxy-protocol",
        "--irc-proxy-protocol",
    ];
    let start = |name: &str| {
        let url = cluster.redis.url();
        let mut args = vec![
            "--broker",
            &url,
            "--node-name",
            name,
            "--store",
            &cluster.store,
        ];
        args.extend(proxied);
        TestServer::child_with(&args)
    };
    let (n1, n2) = (start("banter1"), start("banter2"));
    let dir = TempDir::new();
    let d = dir.path().display();
    let (http, tcp, irc) = (free_port(), free_port(), free_port());
    let mut conf = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/cluster/nginx.conf"),
    )
    .unwrap();
    conf = swap(
        &conf,
        "worker_processes auto;",
        &format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nload_module {};",
            module.display()
        ),
    );
    conf = swap(
        &conf,
        "\nhttp {\n",
        &format!(
            "\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    \
             fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n"
        ),
    );
    conf = swap(&conf, "listen 80;", &format!("listen 127.0.0.1:{http};"));
    conf = swap(&conf, "listen 7878;", &format!("listen 127.0.0.1:{tcp};"));
    conf = swap(&conf, "listen 6667;", &format!("listen 127.0.0.1:{irc};"));
    for (n, node) in [(1, &n1), (2, &n2)] {
        conf = swap(&conf, &format!("banter{n}:8080"), &node.http.to_string());
        conf = swap(&conf, &format!("banter{n}:7878"), &node.tcp.to_string());
        conf = swap(&conf, &format!("banter{n}:6667"), &node.irc.to_string());
    }
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new(nginx)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    for port in [http, tcp, irc] {
        wait_for_port(port, "nginx", &mut child);
    }
    struct Stop(Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let _nginx = Stop(child);

    let tcp_addr: std::net::SocketAddr = ([127, 0, 0, 1], tcp).into();
    let mut users = Vec::new();
    for (i, nick) in ["ann", "ben", "cat", "dan"].into_iter().enumerate() {
        let mut c = if i % 2 == 0 {
            Client::tcp_at(tcp_addr).await
        } else {
            Client::ws_at(&format!("ws://127.0.0.1:{http}/ws")).await
        };
        c.send(json!({"type": "hello", "nick": nick})).await;
        c.expect("welcome").await;
        c.join("lobby").await;
        users.push(c);
    }
    let mut irc = IrcClient::connect_to(([127, 0, 0, 1], irc).into()).await;
    irc.send("NICK eve").await;
    irc.send("USER eve 0 * :eve").await;
    irc.wait_for("376").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    for c in &mut users {
        await_members(c, "lobby", &["ann", "ben", "cat", "dan", "eve"]).await;
    }
    // nginx spread them: both nodes have users, and saw them come from
    // 127.0.0.1 through the proxy.
    for node in [&n1, &n2] {
        let logs = node.logs();
        assert!(
            logs.iter().any(|l| l.contains("connected peer=127.0.0.1")),
            "no user on {}",
            node.http
        );
    }
    users[0]
        .send(json!({"type": "say", "room": "lobby", "text": "hello, all"}))
        .await;
    for c in &mut users[1..] {
        let m = c.wait_for("message").await;
        assert_eq!(
            (&m["from"], &m["text"]),
            (&json!("ann"), &json!("hello, all"))
        );
    }
    let line = irc.wait_for("PRIVMSG").await;
    assert!(line.ends_with(":hello, all"), "{line}");
}

/// Whether `sub` appears in `seq` in order (not necessarily adjacent).
fn in_order(sub: &[String], seq: &[String]) -> bool {
    let mut it = seq.iter();
    sub.iter().all(|s| it.any(|x| x == s))
}

#[tokio::test]
async fn a_database_outage_holds_messages_and_heals_by_itself() {
    let Some(pg) = common::PgCluster::start() else {
        return;
    };
    let Some(redis) = Redis::start() else { return };
    let cluster = Cluster {
        redis,
        store: pg.create_database(),
    };
    let (n1, _n2, mut watcher, mut sender) = watcher_and_sender(&cluster).await;
    let mut acked = send_and_collect(&mut sender, 10, 0, || {}).await;
    assert_eq!(acked.len(), 10);

    pg.stop();
    await_readyz(&n1, 503, "store").await;
    // A message now cannot be stored: it is not acknowledged, and once
    // the node knows, new ones are refused with an error saying why.
    let mut refused = None;
    for i in 0..100 {
        let text = format!("during {i}");
        sender
            .send(json!({"type": "say", "room": "lobby", "text": text, "ref": text}))
            .await;
        match sender.next_within(Duration::from_millis(100)).await {
            Next::Msg(m) if m["type"] == "error" => {
                refused = Some(m);
                break;
            }
            Next::Msg(m) => panic!("acknowledged while the store is down: {m}"),
            _ => {}
        }
    }
    let refused = refused.expect("no message was refused");
    assert!(
        refused["message"].as_str().unwrap().contains("store"),
        "{refused}"
    );

    // The database comes back: what was held is stored and acknowledged,
    // and chat goes on, without a restart.
    pg.resume();
    for i in 0..5 {
        let text = format!("after {i}");
        // What was held is acknowledged meanwhile, in stream order.
        acked.extend(say_until_acknowledged(&mut sender, &text).await);
        acked.push(text);
    }
    assert!(
        acked.iter().any(|t| t.starts_with("during")),
        "the held message: {acked:?}"
    );
    let mut seen = Vec::new();
    while !seen.ends_with(&["after 4".to_string()]) {
        let m = watcher.recv().await;
        if m["type"] == "message" {
            seen.push(m["text"].as_str().unwrap().to_string());
        }
    }
    assert!(
        in_order(&acked, &seen),
        "acknowledged {acked:?}, seen {seen:?}"
    );
    watcher
        .send(json!({"type": "history", "room": "lobby", "limit": 200}))
        .await;
    let history = watcher.wait_for("history").await;
    let stored: Vec<String> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        in_order(&acked, &stored),
        "acknowledged {acked:?}, stored {stored:?}"
    );
}

#[tokio::test]
async fn after_redis_comes_back_empty_the_nodes_restate_everything() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2, mut watcher, mut sender) = watcher_and_sender(&cluster).await;
    let before = send_and_collect(&mut sender, 5, 0, || {}).await;
    assert_eq!(before.len(), 5);
    while watcher.wait_for("message").await["text"] != "m4" {}
    watcher
        .send(json!({"type": "history", "room": "lobby", "limit": 10}))
        .await;
    let history = watcher.wait_for("history").await;
    let last_id = history["messages"].as_array().unwrap().last().unwrap()["id"]
        .as_u64()
        .unwrap();

    cluster.redis.wipe();
    // Both nodes find their place in the stream gone and their leases
    // lost: they take a snapshot and restate their users, so the room's
    // members are as before on both, and a nick is still unique.
    await_readyz(&n1, 200, "ready").await;
    await_readyz(&n2, 200, "ready").await;
    await_members(&mut watcher, "lobby", &["sender", "watcher"]).await;
    await_members(&mut sender, "lobby", &["sender", "watcher"]).await;
    let mut twin = Client::connect(&n2, Kind::Tcp).await;
    twin.send(json!({"type": "hello", "nick": "sender"})).await;
    twin.expect_error("nick_taken").await;
    // Chat goes on, and ids go on above the ones given before.
    let text = "after the wipe";
    say_until_acknowledged(&mut sender, text).await;
    let got = loop {
        let m = watcher.recv().await;
        if m["type"] == "message" && m["text"] == text {
            break m;
        }
    };
    assert!(
        got["id"].as_u64().unwrap() > last_id,
        "{got} after id {last_id}"
    );
}

/// The value of `name` (with its trailing space) in a node's /metrics.
async fn metric(node: &TestServer, name: &str) -> f64 {
    let (_, metrics) = http_get(node.admin(), "/metrics", &[]).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// Says hello on `server` as `nick` and, with `room`, joins it, until the
/// node refuses either with `code` (it learns of a change made on another
/// node a moment later); each time it gets in, it leaves and tries again.
async fn until_refused(server: &TestServer, nick: &str, room: Option<&str>, code: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "{nick} still gets in ({room:?})");
        let mut c = Client::connect(server, Kind::Tcp).await;
        c.send(json!({"type": "hello", "nick": nick})).await;
        let mut answer = c.recv().await;
        if answer["code"] == "nick_taken" {
            // Its last try is still leaving.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        if let (Some(room), "welcome") = (room, answer["type"].as_str().unwrap_or("")) {
            c.send(json!({"type": "join", "room": room})).await;
            answer = c.recv().await;
        }
        if answer["type"] == "error" {
            assert_eq!(answer["code"], code, "{answer}");
            return;
        }
        drop(c);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_ban_and_an_account_made_while_redis_is_down_reach_the_other_nodes() {
    let Some(mut cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    // alice (n1) owns #den; dave and carol are in it on n2, so n2 holds it.
    let mut alice = account(&n1, Kind::Tcp, "alice").await;
    alice.join("den").await;
    alice.wait_for("roles").await;
    let mut carol = Client::hello(&n2, Kind::Tcp, "carol").await;
    carol.join("den").await;
    let mut dave = Client::hello(&n2, Kind::Ws, "dave").await;
    dave.join("den").await;
    await_members(&mut alice, "den", &["alice", "carol", "dave"]).await;

    // Redis is down: the store still takes bans (of dave, in the room, and
    // of bob, not in it) and a new account, so n1 makes them, but cannot
    // announce them to n2.
    cluster.redis.stop();
    await_readyz(&n1, 503, "broker").await;
    for nick in ["dave", "bob"] {
        alice
            .send(json!({"type": "ban", "room": "den", "nick": nick}))
            .await;
        let banned = alice.wait_for("banned").await;
        assert_eq!(
            (&banned["ban"]["nick"], &banned["set"]),
            (&json!(nick), &json!(true))
        );
    }
    let mut erin = Client::connect(&n1, Kind::Tcp).await;
    erin.send(json!({"type": "register", "nick": "erin", "password": PW}))
        .await;
    erin.expect("registered").await;
    // Not before n1 tried to announce them and failed (the publisher may
    // still be waiting for a connection).
    let deadline = Instant::now() + WAIT;
    while metric(&n1, "banter_broker_publish_failures_total ").await < 3.0 {
        assert!(Instant::now() < deadline, "n1 never tried to publish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Redis is back: within a bounded time n2 knows all three.
    cluster.redis.spawn();
    await_readyz(&n1, 200, "ready").await;
    let kicked = dave.wait_for("kicked").await;
    assert_eq!(
        (&kicked["nick"], &kicked["reason"]),
        (&json!("dave"), &json!("banned"))
    );
    dave.join_err("den", "banned").await;
    let banned = carol.wait_for("banned").await;
    assert_eq!(banned["set"], true, "{banned}");
    until_refused(&n2, "bob", Some("den"), "banned").await;
    until_refused(&n2, "erin", None, "nick_reserved").await;
}

/// Whispers to an offline account keep the mailbox's bounds in a cluster
/// too: past them the sender is told `mailbox_full`, and the owner gets
/// what was kept at its next login, on any node.
#[tokio::test]
async fn a_full_mailbox_refuses_whispers_across_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let bounded = |name| node_with(&cluster, name, &["--max-waiting-whispers", "2"]);
    let (n1, n2) = (bounded("n1"), bounded("n2"));
    drop(account(&n1, Kind::Tcp, "bob").await);
    let mut guest = Client::hello(&n2, Kind::Ws, "guest").await;
    // Once bob's session is gone everywhere (until then a whisper finds it).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        guest.send(json!({"type": "whois", "nick": "bob"})).await;
        let answer = guest.recv().await;
        // Gone, or (always-on) with no device anywhere: whispers wait.
        let offline = answer["away"]
            .as_str()
            .is_some_and(|a| a.starts_with("offline"));
        if answer["code"] == "no_such_nick" || offline {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "bob is still online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for text in ["w0", "w1"] {
        guest
            .send(json!({"type": "whisper", "to": "bob", "text": text}))
            .await;
        let answer = guest.recv().await;
        assert_eq!(answer["type"], "direct", "{answer}");
    }
    guest
        .send(json!({"type": "whisper", "to": "bob", "text": "one too many"}))
        .await;
    let refused = guest.recv().await;
    assert_eq!(refused["code"], "mailbox_full", "{refused}");
    guest.assert_usable().await;
    let hello = json!({"type": "hello", "nick": "bob", "password": PW});
    let (mut bob, _) = Client::hello_with(&n2, Kind::Tcp, hello).await;
    bob.expect("logged_in").await;
    assert_eq!(bob.expect("direct").await["text"], "w0");
    assert_eq!(bob.expect("direct").await["text"], "w1");
    bob.expect("ping").await;
}

/// Waits until no node has a session using `nick` (as `client` sees it).
async fn until_gone(client: &mut Client, nick: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        client.send(json!({"type": "whois", "nick": nick})).await;
        let answer = loop {
            let m = client.recv().await;
            if m["type"] == "whois" || m["type"] == "error" {
                break m;
            }
        };
        // Gone, or (an always-on account) with no device anywhere.
        let offline = answer["away"]
            .as_str()
            .is_some_and(|a| a.starts_with("offline"));
        if answer["code"] == "no_such_nick" || offline {
            return;
        }
        assert!(Instant::now() < deadline, "{nick} is still online");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A whisper to an account online on another node waits, as on one node,
/// until that node's session shows it read it: one its client never read
/// comes again at the next login; one it read and confirmed does not.
#[tokio::test]
async fn a_whisper_to_an_account_on_another_node_waits_until_it_was_read() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let bob = account(&n2, Kind::Tcp, "bob").await;
    let mut alice = Client::hello(&n1, Kind::Ws, "alice").await;
    let deadline = Instant::now() + WAIT;
    let echo = loop {
        // Until n1 knows bob is online (else the whisper waits offline).
        alice
            .send(json!({"type": "whisper", "to": "bob", "text": "unread"}))
            .await;
        let answer = alice.recv().await;
        if answer["type"] == "direct" {
            break answer;
        }
        assert_eq!(answer["code"], "no_such_nick", "{answer}");
        assert!(Instant::now() < deadline, "n1 never saw bob");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Bob's client goes before reading it.
    drop(bob);
    until_gone(&mut alice, "bob").await;
    let hello = json!({"type": "hello", "nick": "bob", "password": PW});
    let (mut bob, _) = Client::hello_with(&n2, Kind::Tcp, hello.clone()).await;
    bob.expect("logged_in").await;
    let got = bob.expect("direct").await;
    assert_eq!((&got["text"], &got["id"]), (&json!("unread"), &echo["id"]));
    bob.expect("ping").await;
    bob.send(json!({"type": "pong"})).await;

    // Read live on n2 and confirmed there: not again.
    alice
        .send(json!({"type": "whisper", "to": "bob", "text": "read"}))
        .await;
    alice.expect("direct").await;
    assert_eq!(bob.expect("direct").await["text"], "read");
    bob.expect("ping").await;
    bob.send(json!({"type": "pong"})).await;
    bob.assert_usable().await;
    drop(bob);
    until_gone(&mut alice, "bob").await;
    let (mut bob, _) = Client::hello_with(&n2, Kind::Ws, hello).await;
    bob.expect("logged_in").await;
    bob.assert_usable().await;
}

/// Logs into `nick`'s account (registered already) on `server`, until the
/// node knows the account's user (a login before the stream brought it
/// would take the nick, or wait for it, as a new user).
async fn device(server: &TestServer, kind: Kind, nick: &str) -> (Client, serde_json::Value) {
    let hello = json!({"type": "hello", "nick": nick, "password": PW});
    let (mut c, welcome) = Client::hello_with(server, kind, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    c.expect("logged_in").await;
    (c, welcome)
}

/// One account's devices on two nodes are one user: one nick and one
/// member for everyone; what a device on either node says, joins or
/// reads reaches the other; whispers reach both; the others see no
/// presence change until the last device goes.
#[tokio::test]
async fn an_accounts_devices_on_two_nodes_are_one_user() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut laptop = account(&n1, Kind::Tcp, "alice").await;
    laptop.join("lobby").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    bob.join("lobby").await;
    await_members(&mut bob, "lobby", &["alice", "bob"]).await;
    await_members(&mut laptop, "lobby", &["alice", "bob"]).await;

    // The phone logs in on n2: the same user, in lobby at once.
    let (mut phone, welcome) = device(&n2, Kind::Ws, "alice").await;
    assert_eq!(welcome["nick"], "alice");
    let lobby = phone.wait_for("joined").await;
    assert_eq!(lobby["room"], "lobby");
    let members: Vec<&str> = lobby["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert_eq!(members.iter().filter(|m| **m == "alice").count(), 1);

    // What the phone says reaches the laptop (n1) and bob once.
    phone
        .send(json!({"type":"say","room":"lobby","text":"from n2","ref":5}))
        .await;
    let own = phone.wait_for("message").await;
    assert_eq!(
        (own["text"].as_str(), own["ref"].as_i64()),
        (Some("from n2"), Some(5))
    );
    let copy = laptop.wait_for("message").await;
    assert_eq!(
        (copy["text"].as_str(), copy["id"].clone()),
        (Some("from n2"), own["id"].clone())
    );
    assert_eq!(bob.wait_for("message").await["text"], "from n2");
    // An IRC client on n2 is a device too: in #lobby at once.
    let mut irc = common::irc_sasl(&n2, "alice").await;
    let join = irc.wait_for("JOIN").await;
    assert!(
        join.starts_with(":alice!") && join.ends_with("JOIN #lobby"),
        "{join}"
    );
    // And the laptop's words reach the phone and the IRC client.
    laptop
        .send(json!({"type":"say","room":"lobby","text":"from n1"}))
        .await;
    assert_eq!(phone.wait_for("message").await["text"], "from n1");
    let line = irc.wait_for("PRIVMSG").await;
    assert!(
        line.starts_with(":alice!") && line.ends_with("PRIVMSG #lobby :from n1"),
        "{line}"
    );
    irc.send("QUIT").await;
    irc.until_closed(Duration::from_secs(5)).await;

    // A join on the phone (n2) is made by n1 and reaches both devices.
    phone.send(json!({"type":"join","room":"den"})).await;
    assert_eq!(laptop.wait_for("joined").await["room"], "den");
    assert_eq!(phone.wait_for("joined").await["room"], "den");
    await_members(&mut bob, "den", &["alice"]).await;

    // A join the home node refuses is refused on the phone.
    let mut carol = account(&n1, Kind::Tcp, "carol").await;
    carol.join("vault").await;
    carol.wait_for("roles").await;
    carol
        .send(json!({"type":"ban","room":"vault","account":"alice"}))
        .await;
    carol.wait_for("banned").await;
    phone.send(json!({"type":"join","room":"vault"})).await;
    let refused = phone.wait_for("error").await;
    assert_eq!(refused["code"], "banned", "{refused}");

    // Whispers: to alice reach both; from the phone reach the laptop.
    bob.send(json!({"type":"whisper","to":"alice","text":"psst"}))
        .await;
    assert_eq!(bob.wait_for("direct").await["text"], "psst");
    assert_eq!(laptop.wait_for("direct").await["text"], "psst");
    assert_eq!(phone.wait_for("direct").await["text"], "psst");
    phone
        .send(json!({"type":"whisper","to":"bob","text":"hi from n2"}))
        .await;
    assert_eq!(bob.wait_for("direct").await["text"], "hi from n2");
    let copy = laptop.wait_for("direct").await;
    assert_eq!(
        (copy["from"].as_str(), copy["to"].as_str()),
        (Some("alice"), Some("bob"))
    );

    // A read position moved on n2 reaches n1.
    let id = own["id"].as_u64().unwrap();
    phone
        .send(json!({"type":"mark_read","room":"lobby","id":id}))
        .await;
    phone.wait_for("read").await;
    let read = laptop.wait_for("read").await;
    assert_eq!(
        (read["room"].as_str(), read["id"].as_u64()),
        (Some("lobby"), Some(id))
    );

    // The laptop goes: alice stays (the phone), bob sees nothing.
    drop(laptop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    phone
        .send(json!({"type":"say","room":"lobby","text":"still here"}))
        .await;
    let next = loop {
        let m = bob.recv().await;
        if m["type"] == "message" || m["type"] == "presence" {
            break m;
        }
    };
    assert_eq!(next["text"], "still here", "no quit before it: {next}");
    // The phone goes too: alice is always-on, so she stays, away, and a
    // whisper to her waits for her next login, on any node.
    drop(phone);
    let away = bob.wait_for("away").await;
    assert_eq!(away["nick"], "alice");
    assert!(
        away["message"].as_str().unwrap().starts_with("offline"),
        "{away}"
    );
    bob.send(json!({"type":"whisper","to":"alice","text":"while away"}))
        .await;
    assert_eq!(bob.wait_for("direct").await["text"], "while away");
    let (mut tablet, _) = device(&n2, Kind::Tcp, "alice").await;
    assert_eq!(tablet.wait_for("direct").await["text"], "while away");
    let back = bob.wait_for("away").await;
    assert_eq!(
        (back["nick"].as_str(), back.get("message")),
        (Some("alice"), None)
    );
    // Without always-on, the last device's going is a quit.
    tablet
        .send(json!({"type":"settings","always_on":false}))
        .await;
    tablet.wait_for("settings").await;
    drop(tablet);
    let quit = bob.wait_for("presence").await;
    assert_eq!(
        (quit["event"].as_str(), quit["nick"].as_str()),
        (Some("quit"), Some("alice"))
    );
}

/// "Sign out everywhere" on one node ends the account's devices on the
/// others too.
#[tokio::test]
async fn signing_out_everywhere_ends_every_nodes_devices() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut laptop = account(&n1, Kind::Tcp, "alice").await;
    laptop.join("lobby").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    bob.join("lobby").await;
    await_members(&mut bob, "lobby", &["alice", "bob"]).await;
    let (mut phone, _) = device(&n2, Kind::Tcp, "alice").await;
    phone.wait_for("joined").await;
    phone
        .send(json!({"type":"logout","all":true,"ref":1}))
        .await;
    assert_eq!(phone.wait_for("logged_out").await["ref"], 1);
    let closed = laptop.until_closed(WAIT).await;
    assert!(
        closed
            .iter()
            .any(|m| m["type"] == "closing" && m["code"] == "logged_out_elsewhere"),
        "{closed:?}"
    );
    // The phone stays; the laptop's going is no quit for bob.
    phone
        .send(json!({"type":"say","room":"lobby","text":"still here"}))
        .await;
    let next = loop {
        let m = bob.recv().await;
        if m["type"] == "message" || m["type"] == "presence" {
            break m;
        }
    };
    assert_eq!(next["text"], "still here", "{next}");
}

/// Replies, reactions, edits, deletions and typing reach the users of the
/// other node, and the shared store keeps them.
#[tokio::test]
async fn rich_messages_cross_nodes() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let (n1, n2) = (node(&cluster, "n1"), node(&cluster, "n2"));
    let mut alice = Client::hello(&n1, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&n2, Kind::Tcp, "bob").await;
    let mut irc = IrcClient::connect(&n2).await;
    irc.send("CAP REQ :message-tags draft/message-redaction batch draft/multiline")
        .await;
    irc.expect("CAP").await;
    irc.send("NICK carol").await;
    irc.send("USER carol 0 * :carol").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    alice.join("den").await;
    bob.join("den").await;
    irc.send("JOIN #den").await;
    irc.wait_for("366").await;
    await_members(&mut alice, "den", &["alice", "bob", "carol"]).await;

    alice
        .send(json!({"type": "say", "room": "den", "text": "one\ntwo", "ref": 1}))
        .await;
    let first = alice.wait_for("message").await["id"].as_u64().unwrap();
    assert_eq!(bob.wait_for("message").await["text"], "one\ntwo");
    let open = irc.wait_for("BATCH").await;
    assert!(open.contains("draft/multiline #den"), "{open}");

    bob.send(json!({"type": "say", "room": "den", "text": "yes", "reply_to": first}))
        .await;
    let reply = alice.wait_for("message").await;
    assert_eq!(reply["reply_to"], first);
    let reply = reply["id"].as_u64().unwrap();

    bob.send(json!({"type": "react", "room": "den", "id": first, "reaction": "👍"}))
        .await;
    let r = alice.wait_for("reaction").await;
    assert_eq!((&r["nick"], &r["id"]), (&json!("bob"), &json!(first)));
    let tagmsg = irc.wait_for("TAGMSG").await;
    assert!(tagmsg.contains("+draft/react=👍"), "{tagmsg}");

    alice
        .send(json!({"type": "edit", "room": "den", "id": first, "text": "uno"}))
        .await;
    assert_eq!(bob.wait_for("edited").await["text"], "uno");
    bob.send(json!({"type": "delete", "room": "den", "id": reply}))
        .await;
    assert_eq!(alice.wait_for("deleted").await["id"], reply);
    let redact = irc.wait_for("REDACT").await;
    assert!(
        redact.contains(&format!("REDACT #den den-{reply}")),
        "{redact}"
    );

    alice
        .send(json!({"type": "typing", "room": "den", "state": "active"}))
        .await;
    let t = bob.wait_for("typing").await;
    assert_eq!(
        (&t["nick"], &t["state"]),
        (&json!("alice"), &json!("active"))
    );

    // The other node's history says the same.
    bob.send(json!({"type": "history", "room": "den"})).await;
    let page = bob.wait_for("history").await;
    let messages = page["messages"].as_array().unwrap();
    let m = messages.iter().find(|m| m["id"] == first).unwrap();
    assert_eq!(m["text"], "uno");
    assert_eq!(
        m["reactions"],
        json!([{"reaction": "👍", "nicks": ["bob"]}])
    );
    let gone = messages.iter().find(|m| m["id"] == reply).unwrap();
    assert_eq!(gone["deleted"], true);
}
