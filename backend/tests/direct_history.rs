//! Direct-message history between accounts over real sockets: `history`
//! with `with` pages a conversation both ways (JSON), across a restart;
//! guests' whispers stay out of it; `targets` lists rooms and direct
//! conversations; IRC `CHATHISTORY` on a nick and `CHATHISTORY TARGETS`;
//! a deleted account's history is not handed to whoever takes its name.

mod common;

use std::sync::Arc;

use common::{
    Client, IrcClient, Kind, PW, TempDir, TestServer, history, ids, log_in, register, texts,
};
use serde_json::{Value, json};

async fn login(server: &TestServer, nick: &str) -> Client {
    log_in(server, Kind::Tcp, nick).await.0
}

/// Whispers `text` to `to`; the id of the sender's echo.
async fn whisper(from: &mut Client, to: &str, text: &str) -> u64 {
    from.send(json!({"type":"whisper","to":to,"text":text}))
        .await;
    let echo = from.wait_for("direct").await;
    assert_eq!(echo["text"], text, "{echo}");
    echo["id"].as_u64().unwrap()
}

#[tokio::test]
async fn a_direct_conversation_pages_both_ways_and_survives_a_restart() {
    let data = Arc::new(TempDir::new());
    let mut server = TestServer::start_in(data.clone(), &[]);
    register(&server, "alice").await;
    register(&server, "bob").await;
    let mut alice = login(&server, "alice").await;
    let mut bob = login(&server, "bob").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(whisper(&mut alice, "bob", &format!("a{i}")).await);
        bob.wait_for("direct").await;
        sent.push(whisper(&mut bob, "alice", &format!("b{i}")).await);
        alice.wait_for("direct").await;
    }

    let page = history(&mut alice, json!({"type":"history","with":"bob"})).await;
    assert_eq!(texts(&page), ["a0", "b0", "a1", "b1", "a2", "b2"]);
    assert_eq!(ids(&page), sent);
    let first = &page[0];
    assert_eq!(
        (&first["from"], &first["to"], &first["account"]),
        (&json!("alice"), &json!("bob"), &json!("alice")),
        "{first}"
    );
    assert_eq!(page[1]["account"], "bob");
    // The answer names the conversation.
    alice
        .send(json!({"type":"history","with":"BOB","limit":2,"ref":"p"}))
        .await;
    let answer = alice.wait_for("history").await;
    assert_eq!(
        (&answer["with"], &answer["ref"]),
        (&json!("BOB"), &json!("p"))
    );
    assert_eq!(texts(&answer["messages"]), ["a2", "b2"]);
    // Paging back and forth by id, as rooms do.
    let before = json!({"type":"history","with":"bob","before":sent[2],"limit":2});
    assert_eq!(texts(&history(&mut alice, before).await), ["a0", "b0"]);
    let after = json!({"type":"history","with":"alice","after":sent[3]});
    assert_eq!(texts(&history(&mut bob, after).await), ["a2", "b2"]);

    // Bad requests say what is wrong.
    alice
        .send(json!({"type":"history","room":"lobby","with":"bob"}))
        .await;
    alice.expect_error("bad_request").await;
    alice.send(json!({"type":"history"})).await;
    alice.expect_error("missing_field").await;
    alice.send(json!({"type":"history","with":"nobody"})).await;
    alice.expect_error("no_such_account").await;

    // After a restart, the conversation is still there.
    drop((alice, bob));
    server.restart();
    let mut alice = login(&server, "alice").await;
    let page = history(&mut alice, json!({"type":"history","with":"bob"})).await;
    assert_eq!(texts(&page), ["a0", "b0", "a1", "b1", "a2", "b2"]);
}

#[tokio::test]
async fn guests_whispers_stay_out_of_history() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let mut alice = login(&server, "alice").await;
    let mut guest = Client::hello(&server, Kind::Tcp, "gus").await;
    whisper(&mut guest, "alice", "from a guest").await;
    alice.wait_for("direct").await;
    whisper(&mut alice, "gus", "to a guest").await;
    // A guest has no history to read.
    guest.send(json!({"type":"history","with":"alice"})).await;
    guest.wait_error("account_required").await;
    // And a guest nick is no account to keep one with.
    alice.send(json!({"type":"history","with":"gus"})).await;
    alice.expect_error("no_such_account").await;
    // Once gus registers, nothing of the guest's time shows up.
    guest.send(json!({"type":"nick","nick":"gustav"})).await;
    guest.wait_for("nick").await;
    register(&server, "gus").await;
    let page = history(&mut alice, json!({"type":"history","with":"gus"})).await;
    assert_eq!(page, json!([]));
}

#[tokio::test]
async fn targets_list_rooms_and_direct_conversations() {
    let server = TestServer::start();
    for nick in ["alice", "bob", "carol"] {
        register(&server, nick).await;
    }
    let mut alice = login(&server, "alice").await;
    let mut bob = login(&server, "bob").await;
    let mut carol = login(&server, "carol").await;
    alice.join("den").await;
    // Times are in milliseconds: a pause between the three makes each
    // newer than the one before.
    let tick = || tokio::time::sleep(std::time::Duration::from_millis(3));
    common::say(&mut alice, "den", "hello den").await;
    tick().await;
    whisper(&mut bob, "alice", "hi alice").await;
    alice.wait_for("direct").await;
    tick().await;
    whisper(&mut carol, "alice", "hey").await;
    alice.wait_for("direct").await;

    alice.send(json!({"type":"targets","ref":1})).await;
    let answer = alice.wait_for("targets").await;
    assert_eq!(answer["ref"], 1);
    let names: Vec<Value> = answer["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.get("room").or(t.get("with")).unwrap().clone())
        .collect();
    assert_eq!(
        names,
        [json!("den"), json!("bob"), json!("carol")],
        "{answer}"
    );
    let times: Vec<u64> = answer["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["ts"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {times:?}"
    );
    // A limit keeps the newest; after_ts alone keeps those after it.
    alice.send(json!({"type":"targets","limit":1})).await;
    let newest = alice.wait_for("targets").await;
    assert_eq!(newest["targets"][0]["with"], "carol", "{newest}");
    alice
        .send(json!({"type":"targets","after_ts":times[1]}))
        .await;
    let later = alice.wait_for("targets").await;
    assert_eq!(later["targets"].as_array().unwrap().len(), 1, "{later}");
    // A guest sees its rooms only.
    let mut guest = Client::hello(&server, Kind::Tcp, "gus").await;
    guest.join("den").await;
    guest.send(json!({"type":"targets"})).await;
    let mine = guest.wait_for("targets").await;
    assert_eq!(mine["targets"][0]["room"], "den", "{mine}");
    assert_eq!(mine["targets"].as_array().unwrap().len(), 1);
}

/// The lines of an IRC batch that `command` answers with (without the
/// BATCH lines), and the batch's type.
async fn batch(irc: &mut IrcClient, command: &str) -> (String, Vec<String>) {
    irc.send(command).await;
    let start = irc.wait_for("BATCH").await;
    let kind = start.split(' ').nth(3).unwrap_or_default().to_string();
    let mut lines = Vec::new();
    loop {
        let line = irc.recv().await;
        if common::irc_command(&line) == "BATCH" {
            return (kind, lines);
        }
        lines.push(line);
    }
}

#[tokio::test]
async fn irc_reads_direct_history_and_targets() {
    let server = TestServer::start();
    register(&server, "alice").await;
    register(&server, "bob").await;
    let mut bob = login(&server, "bob").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP REQ :batch server-time message-tags draft/chathistory")
        .await;
    irc.expect("CAP").await;
    irc.send(&format!("PASS :{PW}")).await;
    irc.send("NICK alice").await;
    irc.send("USER alice 0 * :Alice").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    let id = whisper(&mut bob, "alice", "over json").await;
    irc.wait_for("PRIVMSG").await;
    irc.send("PRIVMSG bob :over irc").await;
    bob.wait_for("direct").await;

    let (kind, lines) = batch(&mut irc, "CHATHISTORY LATEST bob * 10").await;
    assert_eq!(kind, "chathistory");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].contains(&format!("msgid=d-{id}")), "{}", lines[0]);
    assert!(lines[0].contains(":bob!") && lines[0].ends_with("PRIVMSG alice :over json"));
    assert!(lines[1].contains(":alice!") && lines[1].ends_with("PRIVMSG bob :over irc"));
    let (_, before) = batch(
        &mut irc,
        &format!("CHATHISTORY BEFORE bob msgid=d-{} 10", id + 1),
    )
    .await;
    assert_eq!(before.len(), 1, "{before:?}");

    let (kind, targets) = batch(
        &mut irc,
        "CHATHISTORY TARGETS timestamp=2100-01-01T00:00:00.000Z timestamp=2000-01-01T00:00:00.000Z 50",
    )
    .await;
    assert_eq!(kind, "draft/chathistory-targets");
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert!(
        targets[0].contains(" CHATHISTORY TARGETS bob 20"),
        "{}",
        targets[0]
    );

    irc.send("CHATHISTORY LATEST nobody * 10").await;
    let fail = irc.wait_for("FAIL").await;
    assert!(
        fail.contains("FAIL CHATHISTORY INVALID_TARGET * nobody"),
        "{fail}"
    );
    irc.send("CHATHISTORY TARGETS * * 10").await;
    let fail = irc.wait_for("FAIL").await;
    assert!(
        fail.contains("FAIL CHATHISTORY INVALID_PARAMS TARGETS"),
        "{fail}"
    );
}

#[tokio::test]
async fn a_deleted_accounts_history_goes_with_it() {
    let server = TestServer::start();
    register(&server, "alice").await;
    register(&server, "bob").await;
    let mut alice = login(&server, "alice").await;
    let mut bob = login(&server, "bob").await;
    whisper(&mut bob, "alice", "secret").await;
    alice.wait_for("direct").await;
    bob.send(json!({"type":"delete_account","password":PW}))
        .await;
    bob.wait_for("account_deleted").await;
    // On as a guest; it makes way for the name.
    bob.send(json!({"type":"nick","nick":"bobby"})).await;
    bob.wait_for("nick").await;
    // Someone else registers the name: the old conversation is not theirs.
    register(&server, "bob").await;
    let mut new_bob = login(&server, "bob").await;
    let page = history(&mut new_bob, json!({"type":"history","with":"alice"})).await;
    assert_eq!(page, json!([]));
    let page = history(&mut alice, json!({"type":"history","with":"bob"})).await;
    assert_eq!(page, json!([]));
}
