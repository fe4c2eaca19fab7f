//! Read positions over real sockets: `mark_read` moves an account's
//! position forward and every session of the account hears `read`;
//! `joined` and `read_positions` carry the stored ones, across a restart;
//! bad requests get specific errors; IRC's `draft/read-marker` (MARKREAD
//! before the end of NAMES, MARKREAD get and set) shares the same
//! positions with JSON sessions.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Client, IrcClient, Kind, PW, TempDir, TestServer, log_in, register, say};
use serde_json::{Value, json};

/// Logs in with a password: the client, its token and its positions.
async fn login(server: &TestServer, nick: &str) -> (Client, String, Value) {
    let (mut c, logged) = log_in(server, Kind::Tcp, nick).await;
    // `read_positions` comes only when there are some.
    c.send(json!({"type":"ping"})).await;
    let mut positions = json!([]);
    loop {
        let next = c.recv().await;
        match next["type"].as_str() {
            Some("read_positions") => positions = next["positions"].clone(),
            Some("pong") => break,
            _ => {}
        }
    }
    (c, logged["token"].as_str().unwrap().to_string(), positions)
}

#[tokio::test]
async fn a_read_position_moves_forward_on_every_session_and_survives_a_restart() {
    let data = Arc::new(TempDir::new());
    let mut server = TestServer::start_in(data.clone(), &[]);
    register(&server, "alice").await;
    let (mut laptop, token, positions) = login(&server, "alice").await;
    assert_eq!(positions, json!([]));
    // A second device: the same account under another nick.
    let hello = json!({"type":"hello","nick":"alice_phone","token":token});
    let (mut phone, _) = Client::hello_with(&server, Kind::Ws, hello).await;
    phone.expect("logged_in").await;
    laptop.join("den").await;
    phone.join("den").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.join("den").await;
    let ids: Vec<u64> = [
        say(&mut bob, "den", "one").await,
        say(&mut bob, "den", "two").await,
        say(&mut bob, "den", "three").await,
    ]
    .into();

    laptop
        .send(json!({"type":"mark_read","room":"den","id":ids[1],"ref":"r"}))
        .await;
    let read = laptop.wait_for("read").await;
    assert_eq!(
        (&read["room"], &read["id"], &read["ref"]),
        (&json!("den"), &json!(ids[1]), &json!("r")),
        "{read}"
    );
    assert!(read["ts"].as_u64().unwrap() > 0);
    let told = phone.wait_for("read").await;
    assert_eq!(
        (&told["room"], &told["id"]),
        (&json!("den"), &json!(ids[1]))
    );
    assert!(told.get("ref").is_none(), "{told}");

    // Backwards: the stored position answers, and nobody else hears.
    laptop
        .send(json!({"type":"mark_read","room":"den","id":ids[0]}))
        .await;
    assert_eq!(laptop.wait_for("read").await["id"], ids[1]);
    phone.assert_quiet(Duration::from_millis(200)).await;
    // Asking, without an id.
    phone.send(json!({"type":"mark_read","room":"den"})).await;
    assert_eq!(phone.wait_for("read").await["id"], ids[1]);

    // Bad requests say what is wrong.
    for (request, code) in [
        (
            json!({"type":"mark_read","room":"den","id":9999}),
            "no_such_message",
        ),
        (
            json!({"type":"mark_read","room":"elsewhere","id":1}),
            "not_in_room",
        ),
        (
            json!({"type":"mark_read","room":"den","with":"bob","id":1}),
            "bad_request",
        ),
        (json!({"type":"mark_read","id":1}), "missing_field"),
        (
            json!({"type":"mark_read","with":"nobody","id":1}),
            "no_such_account",
        ),
    ] {
        laptop.send(request.clone()).await;
        let error = laptop.expect("error").await;
        assert_eq!(error["code"], code, "{request} → {error}");
    }
    bob.send(json!({"type":"mark_read","room":"den","id":ids[0]}))
        .await;
    assert_eq!(bob.expect("error").await["code"], "account_required");

    // `joined` carries it.
    laptop.send(json!({"type":"part","room":"den"})).await;
    laptop.wait_for("parted").await;
    let joined = laptop.join("den").await;
    assert_eq!(joined["read"]["id"], ids[1], "{joined}");

    // After a restart: at login, and in `joined`.
    drop((laptop, phone, bob));
    server.restart();
    let (mut alice, _, positions) = login(&server, "alice").await;
    assert_eq!(positions.as_array().unwrap().len(), 1, "{positions}");
    assert_eq!(
        (&positions[0]["room"], &positions[0]["id"]),
        (&json!("den"), &json!(ids[1]))
    );
    let joined = alice.join("den").await;
    assert_eq!(joined["read"]["id"], ids[1], "{joined}");
}

#[tokio::test]
async fn a_direct_conversation_has_a_read_position_too() {
    let server = TestServer::start();
    register(&server, "alice").await;
    register(&server, "bob").await;
    let (mut alice, _, _) = login(&server, "alice").await;
    let (mut bob, _, _) = login(&server, "bob").await;
    bob.send(json!({"type":"whisper","to":"alice","text":"psst"}))
        .await;
    let id = bob.wait_for("direct").await["id"].as_u64().unwrap();
    alice.wait_for("direct").await;
    alice
        .send(json!({"type":"mark_read","with":"bob","id":id}))
        .await;
    let read = alice.wait_for("read").await;
    assert_eq!((&read["with"], &read["id"]), (&json!("bob"), &json!(id)));
    // A whisper of another conversation is no message of this one.
    alice
        .send(json!({"type":"mark_read","with":"alice","id":id}))
        .await;
    assert_eq!(alice.expect("error").await["code"], "no_such_message");
    drop(alice);
    let (_, _, positions) = login(&server, "alice").await;
    assert_eq!(positions[0]["with"], "bob", "{positions}");
}

#[tokio::test]
async fn irc_read_markers_share_the_accounts_positions() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut json_alice, _, _) = login(&server, "alice").await;
    json_alice.join("lobby").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.join("lobby").await;
    let first = say(&mut bob, "lobby", "first").await;
    json_alice
        .send(json!({"type":"mark_read","room":"lobby","id":first}))
        .await;
    let marked = json_alice.wait_for("read").await;

    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP LS 302").await;
    assert!(irc.wait_for("CAP").await.contains("draft/read-marker"));
    irc.send("CAP REQ :draft/read-marker server-time").await;
    irc.expect("CAP").await;
    irc.send(&format!("PASS :{PW}")).await;
    irc.send("NICK alice").await;
    irc.send("USER alice 0 * :Alice").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    // Another device of alice: in #lobby at once, the position after the
    // JOIN and before the end of NAMES.
    let mut lines = Vec::new();
    loop {
        let line = irc.recv().await;
        let end = common::irc_command(&line) == "366";
        lines.push(line);
        if end {
            break;
        }
    }
    let at = lines
        .iter()
        .position(|l| l.contains(" MARKREAD #lobby timestamp="))
        .unwrap_or_else(|| panic!("no MARKREAD in {lines:?}"));
    assert!(at > 0 && lines[at - 1].contains(" JOIN"), "{lines:?}");
    let iso = banter::transport::irc::numeric::iso_time(marked["ts"].as_u64().unwrap());
    assert!(
        lines[at].ends_with(&format!("timestamp={iso}")),
        "{}",
        lines[at]
    );

    // Setting it by time moves it to the newest message at that time, for
    // the JSON session too.
    let second = say(&mut bob, "lobby", "second").await;
    irc.send("MARKREAD #lobby timestamp=2100-01-01T00:00:00.000Z")
        .await;
    let answer = irc.wait_for("MARKREAD").await;
    assert!(answer.contains(" MARKREAD #lobby timestamp="), "{answer}");
    assert_eq!(json_alice.wait_for("read").await["id"], second);
    irc.send("MARKREAD #lobby").await;
    assert_eq!(irc.wait_for("MARKREAD").await, answer, "get = what was set");

    irc.send("MARKREAD").await;
    let fail = irc.wait_for("FAIL").await;
    assert!(fail.contains("FAIL MARKREAD NEED_MORE_PARAMS"), "{fail}");
    irc.send("MARKREAD #lobby yesterday").await;
    let fail = irc.wait_for("FAIL").await;
    assert!(
        fail.contains("FAIL MARKREAD INVALID_PARAMS yesterday"),
        "{fail}"
    );
    irc.send("MARKREAD #elsewhere timestamp=2100-01-01T00:00:00.000Z")
        .await;
    let fail = irc.wait_for("FAIL").await;
    assert!(
        fail.contains("FAIL MARKREAD INVALID_PARAMS #elsewhere"),
        "{fail}"
    );
}

#[tokio::test]
async fn a_deleted_accounts_positions_are_not_the_next_owners() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut alice, _, _) = login(&server, "alice").await;
    alice.join("den").await;
    let id = say(&mut alice, "den", "mine").await;
    alice
        .send(json!({"type":"mark_read","room":"den","id":id}))
        .await;
    alice.wait_for("read").await;
    alice
        .send(json!({"type":"delete_account","password":PW}))
        .await;
    alice.wait_for("account_deleted").await;
    // On as a guest, still in the room; the name goes to someone else.
    alice.send(json!({"type":"nick","nick":"old_alice"})).await;
    alice.wait_for("nick").await;
    register(&server, "alice").await;
    let (mut next, _, positions) = login(&server, "alice").await;
    assert_eq!(positions, json!([]));
    let joined = next.join("den").await;
    assert!(joined.get("read").is_none(), "{joined}");
}

#[tokio::test]
async fn a_session_that_registers_hears_its_other_sessions_and_marks_are_rate_limited() {
    let server = TestServer::start();
    // A guest registers its nick and is logged in on the spot.
    let mut carol = Client::hello(&server, Kind::Tcp, "carol").await;
    carol
        .send(json!({"type":"register","nick":"carol","password":PW}))
        .await;
    carol.wait_for("registered").await;
    let token = carol.wait_for("logged_in").await["token"]
        .as_str()
        .unwrap()
        .to_string();
    let hello = json!({"type":"hello","nick":"carol_phone","token":token});
    let (mut phone, _) = Client::hello_with(&server, Kind::Ws, hello).await;
    phone.expect("logged_in").await;
    carol.join("den").await;
    phone.join("den").await;
    let id = say(&mut carol, "den", "hello").await;
    phone
        .send(json!({"type":"mark_read","room":"den","id":id}))
        .await;
    phone.wait_for("read").await;
    assert_eq!(carol.wait_for("read").await["id"], id);

    // Moving positions is limited per session (answers included).
    let mut limited = None;
    for n in 0..40 {
        phone
            .send(json!({"type":"mark_read","room":"den","id":id,"ref":n}))
            .await;
        let answer = phone.recv().await;
        if answer["type"] == "error" {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a limit");
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    // Asking is not limited.
    phone.send(json!({"type":"mark_read","room":"den"})).await;
    assert_eq!(phone.wait_for("read").await["id"], id);
}
