//! Users on WebSocket and on JSON-lines TCP chat in the same rooms and
//! cannot tell each other's transport apart.

mod common;

use common::{BOTH, Client, Kind, TestServer};
use serde_json::json;

#[tokio::test]
async fn ws_and_tcp_users_see_the_same_messages() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bot = Client::hello(&server, Kind::Tcp, "bot").await;
    let joined = web.join("lobby").await;
    assert_eq!(joined["members"], json!(["alice"]));
    let joined = bot.join("Lobby").await;
    assert_eq!(joined["room"], "lobby", "room names fold to lower case");
    assert_eq!(joined["members"], json!(["alice", "bot"]));
    let presence = web.expect("presence").await;
    assert_eq!(
        presence,
        json!({"type":"presence","room":"lobby","nick":"bot","event":"join"})
    );

    web.send(json!({"type":"say","room":"lobby","text":"hi from the web"}))
        .await;
    bot.send(json!({"type":"say","room":"lobby","text":"hi from tcp"}))
        .await;
    let mut seen_web = vec![web.expect("message").await, web.expect("message").await];
    let mut seen_bot = vec![bot.expect("message").await, bot.expect("message").await];
    // Both see both messages, in the same order, with identical id and ts.
    assert_eq!(seen_web, seen_bot);
    seen_web.sort_by_key(|m| m["id"].as_u64());
    seen_bot.sort_by_key(|m| m["id"].as_u64());
    assert_eq!(seen_web, seen_bot);
    let (a, b) = (&seen_web[0], &seen_web[1]);
    assert!(b["id"].as_u64() > a["id"].as_u64());
    assert!(b["ts"].as_u64() >= a["ts"].as_u64());
    let ts = a["ts"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now.abs_diff(ts) < 60_000, "ts is Unix milliseconds");
    let texts: Vec<_> = seen_web
        .iter()
        .map(|m| (m["from"].clone(), m["text"].clone()))
        .collect();
    assert!(texts.contains(&(json!("alice"), json!("hi from the web"))));
    assert!(texts.contains(&(json!("bot"), json!("hi from tcp"))));
    // Exactly the contract's fields: nothing betrays the sender's transport.
    let mut keys: Vec<_> = a.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["from", "id", "room", "text", "ts", "type"]);
}

#[tokio::test]
async fn whisper_crosses_transports_both_ways() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bot = Client::hello(&server, Kind::Tcp, "Bob").await;
    web.send(json!({"type":"whisper","to":"bob","text":"psst","ref":"w1"}))
        .await;
    let got = bot.expect("direct").await;
    assert_eq!(
        (got["from"].clone(), got["to"].clone(), got["text"].clone()),
        (json!("alice"), json!("Bob"), json!("psst"))
    );
    assert!(got.get("ref").is_none(), "the ref is the sender's alone");
    let echo = web.expect("direct").await;
    assert_eq!(echo["ref"], "w1");
    assert_eq!(echo["id"], got["id"]);
    assert_eq!(echo["ts"], got["ts"]);

    bot.send(json!({"type":"whisper","to":"ALICE","text":"back"}))
        .await;
    assert_eq!(web.expect("direct").await["text"], "back");
    assert_eq!(bot.expect("direct").await["to"], "alice");

    bot.send(json!({"type":"whisper","to":"nobody","text":"hello?","ref":2}))
        .await;
    assert_eq!(bot.expect_error("no_such_nick").await["ref"], 2);
}

#[tokio::test]
async fn presence_join_part_quit_and_nick_change() {
    let server = TestServer::start();
    for watcher_kind in BOTH {
        let mut watcher = Client::hello(&server, watcher_kind, "watcher").await;
        watcher.join("lobby").await;
        for other_kind in BOTH {
            let mut other = Client::hello(&server, other_kind, "other").await;
            other.join("lobby").await;
            let ev = watcher.expect("presence").await;
            assert_eq!(
                (ev["nick"].clone(), ev["event"].clone()),
                (json!("other"), json!("join"))
            );

            other
                .send(json!({"type":"nick","nick":"other2","ref":"n"}))
                .await;
            let reply = other.expect("nick").await;
            assert_eq!(
                (
                    reply["nick"].clone(),
                    reply["old"].clone(),
                    reply["ref"].clone()
                ),
                (json!("other2"), json!("other"), json!("n"))
            );
            let ev = watcher.expect("presence").await;
            assert_eq!(
                (
                    ev["event"].clone(),
                    ev["nick"].clone(),
                    ev["new_nick"].clone()
                ),
                (json!("nick"), json!("other"), json!("other2"))
            );

            other
                .send(json!({"type":"part","room":"lobby","ref":9}))
                .await;
            let parted = other.expect("parted").await;
            assert_eq!(
                (parted["room"].clone(), parted["ref"].clone()),
                (json!("lobby"), json!(9))
            );
            let ev = watcher.expect("presence").await;
            assert_eq!(
                (ev["nick"].clone(), ev["event"].clone()),
                (json!("other2"), json!("part"))
            );

            other.join("lobby").await;
            watcher.expect("presence").await;
            drop(other); // vanishes without a word
            let ev = watcher.expect("presence").await;
            assert_eq!(
                (ev["nick"].clone(), ev["event"].clone()),
                (json!("other2"), json!("quit"))
            );
        }
        drop(watcher);
        // Let the server notice before the nick is reused.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn nicks_are_unique_across_transports_ignoring_case() {
    let server = TestServer::start();
    let _web = Client::hello(&server, Kind::Ws, "Alice").await;
    let mut tcp = Client::connect(&server, Kind::Tcp).await;
    tcp.send(json!({"type":"hello","nick":"aLICE","ref":"h"}))
        .await;
    assert_eq!(tcp.expect_error("nick_taken").await["ref"], "h");
    // The refused client may try again with another nick.
    tcp.send(json!({"type":"hello","nick":"alice2"})).await;
    tcp.expect("welcome").await;
    let mut ws = Client::connect(&server, Kind::Ws).await;
    ws.send(json!({"type":"hello","nick":"ALICE2"})).await;
    ws.expect_error("nick_taken").await;
    // A nick change is held to the same rule.
    tcp.send(json!({"type":"nick","nick":"ALICE"})).await;
    tcp.expect_error("nick_taken").await;
}

#[tokio::test]
async fn refs_come_back_on_replies_and_errors() {
    let server = TestServer::start();
    for kind in BOTH {
        let mut c = Client::connect(&server, kind).await;
        c.send(json!({"type":"hello","nick":format!("r{kind:?}"),"ref":1}))
            .await;
        assert_eq!(c.expect("welcome").await["ref"], 1);
        let room = format!("room-{kind:?}").to_lowercase();
        c.send(json!({"type":"join","room":room,"ref":"j"})).await;
        assert_eq!(c.expect("joined").await["ref"], "j");
        c.send(json!({"type":"say","room":room,"text":"x","ref":"s"}))
            .await;
        assert_eq!(c.expect("message").await["ref"], "s");
        c.send(json!({"type":"history","room":room,"ref":"h"}))
            .await;
        let page = c.expect("history").await;
        assert_eq!(page["ref"], "h");
        assert_eq!(page["messages"].as_array().unwrap().len(), 1);
        c.send(json!({"type":"ping","ref":-5})).await;
        assert_eq!(c.expect("pong").await["ref"], -5);
        c.send(json!({"type":"say","room":"nowhere","text":"x","ref":"e"}))
            .await;
        assert_eq!(c.expect_error("no_such_room").await["ref"], "e");
        c.send(json!({"type":"fly","ref":"u"})).await;
        assert_eq!(c.expect_error("unknown_type").await["ref"], "u");
    }
}

#[tokio::test]
async fn joined_carries_recent_history_and_history_fills_gaps() {
    let server = TestServer::start_with(&["--history-len", "5"]);
    let mut a = Client::hello(&server, Kind::Tcp, "alice").await;
    a.join("lobby").await;
    for i in 1..=8 {
        a.send(json!({"type":"say","room":"lobby","text":format!("m{i}")}))
            .await;
        a.expect("message").await;
    }
    let mut b = Client::hello(&server, Kind::Ws, "bob").await;
    let joined = b.join("lobby").await;
    let texts: Vec<_> = joined["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["m4", "m5", "m6", "m7", "m8"]);
    b.send(json!({"type":"history","room":"lobby","after":6}))
        .await;
    let page = b.expect("history").await;
    let ids: Vec<_> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [7, 8]);
    b.send(json!({"type":"history","room":"lobby","before":6,"limit":1}))
        .await;
    let page = b.expect("history").await;
    assert_eq!(page["messages"][0]["id"], 5);
}
