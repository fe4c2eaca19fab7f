//! Rich messages over real sockets: replies, reactions, edits, deletions,
//! typing and multi-line messages between a WebSocket user and a JSON
//! bot; what history keeps of them after a restart; and the specific
//! error each bad request gets. (IRC's side: `irc_rich.rs`.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, Kind, TempDir, TestServer, history, log_in, register, say};
use serde_json::{Value, json};

/// The message with `id` among `messages` (of a history page).
fn find(messages: &Value, id: u64) -> Value {
    messages
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no message {id} in {messages}"))
}

#[tokio::test]
async fn replies_reactions_edits_and_deletions_reach_everyone_and_survive_a_restart() {
    let data = Arc::new(TempDir::new());
    let mut server = TestServer::start_in(data.clone(), &[]);
    register(&server, "alice").await;
    let (mut alice, _) = log_in(&server, Kind::Ws, "alice").await;
    let mut bot = Client::hello(&server, Kind::Tcp, "bot").await;
    alice.join("den").await;
    bot.join("den").await;

    let first = say(&mut alice, "den", "what is for lunch?").await;
    // A reply names the message it answers; everyone sees it.
    bot.send(json!({"type":"say","room":"den","text":"soup","reply_to":first,"ref":1}))
        .await;
    let answer = alice.wait_for("message").await;
    assert_eq!(
        (&answer["text"], &answer["reply_to"]),
        (&json!("soup"), &json!(first))
    );
    let echo = loop {
        let m = bot.wait_for("message").await;
        if m["ref"] == 1 {
            break m;
        }
    };
    assert_eq!(echo["reply_to"], first);
    let reply = answer["id"].as_u64().unwrap();

    // A reaction, by each; one taken back.
    bot.send(json!({"type":"react","room":"den","id":first,"reaction":"👍"}))
        .await;
    let seen = alice.wait_for("reaction").await;
    assert_eq!(
        seen,
        json!({"type":"reaction","room":"den","id":first,"reaction":"👍","nick":"bot","remove":false})
    );
    bot.wait_for("reaction").await;
    alice
        .send(json!({"type":"react","room":"den","id":first,"reaction":"👍","ref":"r"}))
        .await;
    let mine = alice.wait_for("reaction").await;
    assert_eq!(
        (&mine["nick"], &mine["account"], &mine["ref"]),
        (&json!("alice"), &json!("alice"), &json!("r"))
    );
    bot.wait_for("reaction").await;
    alice
        .send(json!({"type":"react","room":"den","id":first,"reaction":"🎉"}))
        .await;
    alice.wait_for("reaction").await;
    bot.wait_for("reaction").await;
    bot.send(json!({"type":"react","room":"den","id":first,"reaction":"👍","remove":true}))
        .await;
    let removed = alice.wait_for("reaction").await;
    assert_eq!(
        (&removed["nick"], &removed["remove"]),
        (&json!("bot"), &json!(true))
    );
    bot.wait_for("reaction").await;

    // An edit of one's own message.
    alice
        .send(json!({"type":"edit","room":"den","id":first,"text":"what is for dinner?","ref":2}))
        .await;
    let edited = bot.wait_for("edited").await;
    assert_eq!(
        (
            &edited["room"],
            &edited["id"],
            &edited["text"],
            &edited["nick"]
        ),
        (
            &json!("den"),
            &json!(first),
            &json!("what is for dinner?"),
            &json!("alice")
        )
    );
    assert!(edited["ts"].as_u64().unwrap() > 0);
    assert_eq!(alice.wait_for("edited").await["ref"], 2);

    // A deletion of one's own message.
    bot.send(json!({"type":"delete","room":"den","id":reply}))
        .await;
    let deleted = alice.wait_for("deleted").await;
    assert_eq!(
        (&deleted["room"], &deleted["id"], &deleted["nick"]),
        (&json!("den"), &json!(reply), &json!("bot"))
    );
    bot.wait_for("deleted").await;

    let check = |page: &Value| {
        let q = find(page, first);
        assert_eq!(q["text"], "what is for dinner?", "{q}");
        assert!(q["edited"].as_u64().is_some(), "{q}");
        assert_eq!(
            q["reactions"],
            json!([{"reaction":"👍","nicks":["alice"]},{"reaction":"🎉","nicks":["alice"]}]),
            "{q}"
        );
        let a = find(page, reply);
        assert_eq!(
            (&a["deleted"], &a["text"]),
            (&json!(true), &json!("")),
            "{a}"
        );
        assert_eq!(a["reply_to"], first, "{a}");
    };
    check(&history(&mut bot, json!({"type":"history","room":"den"})).await);
    drop((alice, bot));
    server.restart();
    let (mut alice, _) = log_in(&server, Kind::Tcp, "alice").await;
    let joined = alice.join("den").await;
    check(&joined["history"]);
    check(&history(&mut alice, json!({"type":"history","room":"den"})).await);
}

#[tokio::test]
async fn bad_amendments_get_specific_errors() {
    let server = TestServer::start_with(&["--edit-window", "3600"]);
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    alice.join("den").await;
    bob.join("den").await;
    let mine = say(&mut alice, "den", "mine").await;

    let cases = [
        (
            json!({"type":"edit","room":"den","id":mine + 10,"text":"x"}),
            "no_such_message",
        ),
        (
            json!({"type":"react","room":"den","id":0,"reaction":"x"}),
            "no_such_message",
        ),
        (
            json!({"type":"say","room":"den","text":"x","reply_to":mine + 10}),
            "no_such_message",
        ),
        (
            json!({"type":"edit","room":"den","id":mine,"text":"theirs"}),
            "not_your_message",
        ),
        (
            json!({"type":"delete","room":"den","id":mine}),
            "not_your_message",
        ),
        (
            json!({"type":"react","room":"den","id":mine,"reaction":""}),
            "invalid_reaction",
        ),
        (
            json!({"type":"react","room":"den","id":mine,"reaction":"two words"}),
            "invalid_reaction",
        ),
        (
            json!({"type":"react","room":"den","id":mine,"reaction":"x".repeat(33)}),
            "invalid_reaction",
        ),
        (
            json!({"type":"edit","room":"den","id":mine,"text":""}),
            "empty_text",
        ),
        (
            json!({"type":"edit","room":"elsewhere","id":mine,"text":"x"}),
            "no_such_room",
        ),
        (json!({"type":"edit","id":mine,"text":"x"}), "missing_field"),
        (
            json!({"type":"react","room":"den","with":"alice","id":mine,"reaction":"x"}),
            "bad_request",
        ),
        (
            json!({"type":"typing","room":"den","state":"sleeping"}),
            "bad_request",
        ),
        (
            json!({"type":"edit","with":"alice","id":mine,"text":"x"}),
            "no_such_message",
        ),
        (
            json!({"type":"say","room":"den","text":"l\n".repeat(101)}),
            "too_many_lines",
        ),
    ];
    for (i, (request, code)) in cases.into_iter().enumerate() {
        let mut request = request;
        request["ref"] = json!(i);
        bob.send(request.clone()).await;
        let error = bob.wait_error(code).await;
        assert_eq!(error["ref"], i, "{request} → {error}");
    }
    // Ten different reactions per user and message, no more.
    for i in 0..10 {
        bob.send(json!({"type":"react","room":"den","id":mine,"reaction":format!("r{i}")}))
            .await;
        bob.wait_for("reaction").await;
    }
    bob.send(json!({"type":"react","room":"den","id":mine,"reaction":"r10"}))
        .await;
    bob.expect_error("too_many_reactions").await;
    // A deleted message takes no more changes.
    alice
        .send(json!({"type":"delete","room":"den","id":mine}))
        .await;
    alice.wait_for("deleted").await;
    alice
        .send(json!({"type":"edit","room":"den","id":mine,"text":"back"}))
        .await;
    alice.expect_error("no_such_message").await;
    bob.wait_for("deleted").await;
    bob.assert_usable().await;
}

#[tokio::test]
async fn a_room_operator_deletes_anyones_message_and_edits_can_be_turned_off() {
    let server = TestServer::start_with(&["--edit-window", "0"]);
    let mut op = Client::hello(&server, Kind::Tcp, "opener").await;
    op.join("den").await; // opened it: runs it
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest.join("den").await;
    let spam = say(&mut guest, "den", "buy now").await;
    guest
        .send(json!({"type":"edit","room":"den","id":spam,"text":"x"}))
        .await;
    assert!(
        guest.expect_error("edit_too_late").await["message"]
            .as_str()
            .unwrap()
            .contains("does not allow edits")
    );
    op.send(json!({"type":"delete","room":"den","id":spam,"reason":"spam"}))
        .await;
    let deleted = guest.wait_for("deleted").await;
    assert_eq!(
        (&deleted["nick"], &deleted["reason"]),
        (&json!("opener"), &json!("spam"))
    );
}

#[tokio::test]
async fn typing_is_relayed_at_most_every_three_seconds_and_ends_with_done() {
    let server = TestServer::start();
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    alice.join("den").await;
    bob.join("den").await;
    alice
        .send(json!({"type":"typing","room":"den","state":"active"}))
        .await;
    assert_eq!(
        bob.wait_for("typing").await,
        json!({"type":"typing","room":"den","nick":"alice","state":"active"})
    );
    // Again at once: dropped; `done` goes through.
    alice
        .send(json!({"type":"typing","room":"den","state":"active"}))
        .await;
    alice
        .send(json!({"type":"typing","room":"den","state":"done"}))
        .await;
    assert_eq!(bob.wait_for("typing").await["state"], "done");
    bob.assert_quiet(Duration::from_millis(200)).await;
    // The typist hears nothing of its own.
    alice.send(json!({"type":"ping"})).await;
    loop {
        let next = alice.recv().await;
        assert_ne!(next["type"], "typing", "{next}");
        if next["type"] == "pong" {
            break;
        }
    }
    // To a nick: `with` names who types.
    bob.send(json!({"type":"typing","to":"alice","state":"paused"}))
        .await;
    assert_eq!(
        alice.wait_for("typing").await,
        json!({"type":"typing","with":"bob","nick":"bob","state":"paused"})
    );
    bob.send(json!({"type":"typing","to":"nobody","state":"active"}))
        .await;
    bob.expect_error("no_such_nick").await;
    bob.send(json!({"type":"typing","room":"elsewhere","state":"active"}))
        .await;
    bob.expect_error("no_such_room").await;
}

#[tokio::test]
async fn a_multi_line_message_is_one_message() {
    let server = TestServer::start();
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bot = Client::hello(&server, Kind::Tcp, "bot").await;
    alice.join("den").await;
    bot.join("den").await;
    alice
        .send(json!({"type":"say","room":"den","text":"one\ntwo\nthree"}))
        .await;
    let m = bot.wait_for("message").await;
    assert_eq!(m["text"], "one\ntwo\nthree");
    bot.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn direct_messages_take_replies_reactions_edits_and_deletions() {
    let data = Arc::new(TempDir::new());
    let server = TestServer::start_in(data, &[]);
    register(&server, "alice").await;
    register(&server, "bob").await;
    let (mut alice, _) = log_in(&server, Kind::Ws, "alice").await;
    let (mut bob, _) = log_in(&server, Kind::Tcp, "bob").await;
    alice
        .send(json!({"type":"whisper","to":"bob","text":"hi bob"}))
        .await;
    let hi = bob.wait_for("direct").await["id"].as_u64().unwrap();
    alice.wait_for("direct").await;
    bob.send(json!({"type":"whisper","to":"alice","text":"hi!","reply_to":hi}))
        .await;
    assert_eq!(alice.wait_for("direct").await["reply_to"], hi);
    bob.wait_for("direct").await;
    bob.send(json!({"type":"react","with":"alice","id":hi,"reaction":"❤️"}))
        .await;
    let r = alice.wait_for("reaction").await;
    assert_eq!(
        (&r["with"], &r["nick"], &r["id"]),
        (&json!("bob"), &json!("bob"), &json!(hi))
    );
    assert_eq!(bob.wait_for("reaction").await["with"], "alice");
    alice
        .send(json!({"type":"edit","with":"bob","id":hi,"text":"hello bob"}))
        .await;
    assert_eq!(bob.wait_for("edited").await["text"], "hello bob");
    alice.wait_for("edited").await;
    bob.send(json!({"type":"edit","with":"alice","id":hi,"text":"mine now"}))
        .await;
    bob.expect_error("not_your_message").await;
    let page = history(&mut bob, json!({"type":"history","with":"alice"})).await;
    let m = find(&page, hi);
    assert_eq!(m["text"], "hello bob");
    assert_eq!(m["reactions"], json!([{"reaction":"❤️","nicks":["bob"]}]));
    alice
        .send(json!({"type":"delete","with":"bob","id":hi}))
        .await;
    bob.wait_for("deleted").await;
    let page = history(&mut alice, json!({"type":"history","with":"bob"})).await;
    assert_eq!(find(&page, hi)["deleted"], true);
}

#[tokio::test]
async fn guests_react_to_edit_and_delete_their_whispers() {
    let data = Arc::new(TempDir::new());
    let server = TestServer::start_in(data, &[]);
    let mut ann = Client::hello(&server, Kind::Ws, "ann").await;
    let mut ben = Client::hello(&server, Kind::Tcp, "ben").await;
    ann.send(json!({"type":"whisper","to":"ben","text":"hey"}))
        .await;
    let id = ben.wait_for("direct").await["id"].as_u64().unwrap();
    ann.wait_for("direct").await;
    ben.send(json!({"type":"react","with":"ann","id":id,"reaction":"👋"}))
        .await;
    let r = ann.wait_for("reaction").await;
    assert_eq!((&r["with"], &r["nick"]), (&json!("ben"), &json!("ben")));
    ben.wait_for("reaction").await;
    ann.send(json!({"type":"edit","with":"ben","id":id,"text":"hey ben"}))
        .await;
    assert_eq!(ben.wait_for("edited").await["text"], "hey ben");
    ben.send(json!({"type":"delete","with":"ann","id":id}))
        .await;
    ben.expect_error("not_your_message").await;
    // A third guest cannot touch their conversation.
    let mut cat = Client::hello(&server, Kind::Tcp, "cat").await;
    cat.send(json!({"type":"delete","with":"ann","id":id}))
        .await;
    cat.expect_error("no_such_message").await;
    ann.send(json!({"type":"delete","with":"ben","id":id}))
        .await;
    assert_eq!(ben.wait_for("deleted").await["id"], id);
}
