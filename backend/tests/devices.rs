//! One account, many devices, over real sockets: every connection logged
//! into an account is the same user (one nick, one member). What one
//! device says, joins or parts reaches the others (JSON with the same id,
//! IRC as the user's own lines); the other members see one member and no
//! presence change until the last device goes; a device limit holds.

mod common;

use std::time::Duration;

use common::{
    Client, IrcClient, Kind, Next, TestServer, irc_command, irc_sasl, log_in, register, say,
};
use serde_json::{Value, json};

/// A ping's pong: everything sent to `c` before it has been read.
async fn drain(c: &mut Client) -> Vec<Value> {
    c.send(json!({"type":"ping","ref":"drain"})).await;
    let mut seen = Vec::new();
    loop {
        let next = c.recv().await;
        if next["type"] == "pong" && next["ref"] == "drain" {
            return seen;
        }
        seen.push(next);
    }
}

/// IRC lines until the answer to a PING (everything sent before it).
async fn irc_drain(irc: &mut IrcClient) -> Vec<String> {
    irc.send("PING :drain").await;
    let mut seen = Vec::new();
    loop {
        let line = irc.recv().await;
        if irc_command(&line) == "PONG" && line.ends_with("drain") {
            return seen;
        }
        seen.push(line);
    }
}

#[tokio::test]
async fn devices_of_one_account_are_one_user_on_every_transport() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut web, _) = log_in(&server, Kind::Ws, "alice").await;
    web.join("lobby").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    let joined = bob.join("lobby").await;
    assert_eq!(joined["members"], json!(["alice", "bob"]));
    let said = say(&mut bob, "lobby", "before").await;

    // A second JSON device: the account's nick, never alice_, and the
    // user's rooms at once; bob hears nothing of it.
    let hello = json!({"type":"hello","nick":"alice","password":common::PW});
    let (mut phone, welcome) = Client::hello_with(&server, Kind::Tcp, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["nick"], "alice", "{welcome}");
    phone.expect("logged_in").await;
    let lobby = phone.expect("joined").await;
    assert_eq!(lobby["room"], "lobby");
    assert_eq!(lobby["members"], json!(["alice", "bob"]));
    assert!(lobby.get("ref").is_none(), "{lobby}");
    assert_eq!(lobby["history"][0]["id"], said);
    assert_eq!(phone.expect("roles").await["owner"], "alice");

    // An IRC device over SASL: 001 names alice, and it is in #lobby.
    let mut irc = irc_sasl(&server, "alice").await;
    let lines = irc_drain(&mut irc).await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(":alice!") && l.ends_with("JOIN #lobby")),
        "{lines:?}"
    );
    bob.assert_quiet(Duration::from_millis(200)).await;
    drain(&mut web).await;

    // What one device says reaches the others once, with the same id:
    // the sayer's copy with its ref, the others without; IRC as alice's
    // own PRIVMSG.
    web.send(json!({"type":"say","room":"lobby","text":"from the laptop","ref":7}))
        .await;
    let own = web.wait_for("message").await;
    assert_eq!(own["ref"], 7);
    let id = own["id"].as_u64().unwrap();
    let copy = phone.expect("message").await;
    assert_eq!((copy["id"].as_u64(), copy.get("ref")), (Some(id), None));
    assert_eq!(copy["from"], "alice");
    let line = irc.wait_for("PRIVMSG").await;
    assert!(
        line.starts_with(":alice!") && line.ends_with("PRIVMSG #lobby :from the laptop"),
        "{line}"
    );
    let heard = bob.expect("message").await;
    assert_eq!(heard["id"], id);
    assert!(drain(&mut bob).await.is_empty(), "bob heard it once");

    // IRC speaks: the JSON devices and bob get it once.
    irc.send("PRIVMSG #lobby :from irc").await;
    for c in [&mut web, &mut phone, &mut bob] {
        let m = c.expect("message").await;
        assert_eq!(
            (m["from"].as_str(), m["text"].as_str()),
            (Some("alice"), Some("from irc"))
        );
    }

    // A join on one device is a join for the user: every device is told.
    phone
        .send(json!({"type":"join","room":"den","ref":"j"}))
        .await;
    let den = phone.expect("joined").await;
    assert_eq!(
        (den["room"].as_str(), den["ref"].as_str()),
        (Some("den"), Some("j"))
    );
    let den = web.expect("joined").await;
    assert_eq!(den["room"], "den");
    assert!(den.get("ref").is_none(), "{den}");
    let line = irc.wait_for("JOIN").await;
    assert!(line.ends_with("JOIN #den"), "{line}");
    // And a part.
    irc.send("PART #den").await;
    assert_eq!(web.wait_for("parted").await["room"], "den");
    assert_eq!(phone.wait_for("parted").await["room"], "den");

    // Whispers: both directions reach every device.
    bob.send(json!({"type":"whisper","to":"alice","text":"psst"}))
        .await;
    assert_eq!(bob.wait_for("direct").await["text"], "psst");
    assert_eq!(web.wait_for("direct").await["text"], "psst");
    assert_eq!(phone.wait_for("direct").await["text"], "psst");
    let line = irc.wait_for("PRIVMSG").await;
    assert!(line.ends_with("PRIVMSG alice :psst"), "{line}");
    phone
        .send(json!({"type":"whisper","to":"bob","text":"hi bob","ref":1}))
        .await;
    let sent = phone.wait_for("direct").await;
    assert_eq!(sent["ref"], 1);
    let copy = web.wait_for("direct").await;
    assert_eq!(
        (copy["id"].clone(), copy["to"].as_str()),
        (sent["id"].clone(), Some("bob"))
    );
    let line = irc.wait_for("PRIVMSG").await;
    assert!(
        line.starts_with(":alice!") && line.ends_with("PRIVMSG bob :hi bob"),
        "{line}"
    );
    assert_eq!(bob.wait_for("direct").await["text"], "hi bob");

    // Devices go: bob sees no presence change until the last one.
    drop(phone);
    irc.send("QUIT :bye").await;
    irc.until_closed(Duration::from_secs(5)).await;
    let members = {
        bob.send(json!({"type":"members","room":"lobby"})).await;
        bob.wait_for("members").await
    };
    assert_eq!(members["members"], json!(["alice", "bob"]));
    web.send(json!({"type":"say","room":"lobby","text":"still here"}))
        .await;
    let next = bob.expect("message").await;
    assert_eq!(next["text"], "still here", "no quit before it: {next}");
    // The last one: alice is always-on (the default), so she stays in
    // lobby, away, and whispers to her wait for her next login.
    drop(web);
    let away = bob.wait_for("away").await;
    assert_eq!(away["nick"], "alice");
    assert!(
        away["message"].as_str().unwrap().starts_with("offline"),
        "{away}"
    );
    bob.send(json!({"type":"whisper","to":"alice","text":"while you were out"}))
        .await;
    assert_eq!(bob.wait_for("direct").await["text"], "while you were out");
    let (mut back, _) = log_in(&server, Kind::Tcp, "alice").await;
    let lobby = back.expect("joined").await;
    assert_eq!(lobby["room"], "lobby");
    assert_eq!(back.wait_for("direct").await["text"], "while you were out");
    let away = bob.wait_for("away").await;
    assert_eq!(
        (away["nick"].as_str(), away.get("message")),
        (Some("alice"), None)
    );
}

/// An account that turns always-on off leaves its rooms with its last
/// device (the others see it quit), and is back in them at its next login.
#[tokio::test]
async fn without_always_on_the_last_device_quits_and_the_rooms_come_back() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut alice, _) = log_in(&server, Kind::Ws, "alice").await;
    alice.send(json!({"type":"settings","ref":1})).await;
    let settings = alice.expect("settings").await;
    assert_eq!(
        (settings["always_on"].as_bool(), settings["ref"].as_i64()),
        (Some(true), Some(1))
    );
    let (mut phone, _) = log_in(&server, Kind::Tcp, "alice").await;
    alice
        .send(json!({"type":"settings","always_on":false,"ref":2}))
        .await;
    assert_eq!(alice.expect("settings").await["always_on"], false);
    let told = phone.expect("settings").await;
    assert_eq!(
        (told["always_on"].as_bool(), told.get("ref")),
        (Some(false), None)
    );
    alice.join("den").await;
    alice.wait_for("roles").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.join("den").await;
    drain(&mut bob).await;
    drop(alice);
    bob.assert_quiet(Duration::from_millis(200)).await;
    drop(phone);
    let quit = bob.wait_for("presence").await;
    assert_eq!(
        (quit["event"].as_str(), quit["nick"].as_str()),
        (Some("quit"), Some("alice"))
    );
    // The rooms come back with the next login, on any transport.
    let mut irc = irc_sasl(&server, "alice").await;
    let join = irc.wait_for("JOIN").await;
    assert!(
        join.starts_with(":alice!") && join.ends_with("JOIN #den"),
        "{join}"
    );
    let back = bob.wait_for("presence").await;
    assert_eq!(back["event"], "join");
    // A part is kept too.
    irc.send("PART #den").await;
    irc.wait_for("PART").await;
    irc.send("QUIT").await;
    irc.until_closed(Duration::from_secs(5)).await;
    let (mut web, _) = log_in(&server, Kind::Ws, "alice").await;
    let next = drain(&mut web).await;
    assert!(next.iter().all(|m| m["type"] != "joined"), "{next:?}");
}

#[tokio::test]
async fn an_account_has_at_most_max_devices_connections() {
    let server = TestServer::start_with(&["--max-devices", "2"]);
    register(&server, "alice").await;
    let (_one, _) = log_in(&server, Kind::Tcp, "alice").await;
    let (two, _) = log_in(&server, Kind::Ws, "alice").await;
    let hello = json!({"type":"hello","nick":"alice","password":common::PW});
    let (_, refused) = Client::hello_with(&server, Kind::Tcp, hello.clone()).await;
    assert_eq!(refused["code"], "too_many_devices", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("2 devices"),
        "{refused}"
    );
    // One goes: there is room for another, once the server has seen it
    // close.
    drop(two);
    let (mut three, mut answer) = Client::hello_with(&server, Kind::Tcp, hello.clone()).await;
    for _ in 0..100 {
        if answer["type"] == "welcome" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        (three, answer) = Client::hello_with(&server, Kind::Tcp, hello.clone()).await;
    }
    assert_eq!(answer["nick"], "alice", "{answer}");
    three.expect("logged_in").await;
}

/// A guest may not take the nick of an account that is online, and a
/// guest's second connection is another user.
#[tokio::test]
async fn guests_stay_one_connection_one_user() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (_alice, _) = log_in(&server, Kind::Tcp, "alice").await;
    let (_, refused) =
        Client::hello_with(&server, Kind::Ws, json!({"type":"hello","nick":"alice"})).await;
    assert_eq!(refused["code"], "nick_reserved", "{refused}");
    let _carol = Client::hello(&server, Kind::Tcp, "carol").await;
    let mut second = Client::connect(&server, Kind::Ws).await;
    second.send(json!({"type":"hello","nick":"carol"})).await;
    second.expect_error("nick_taken").await;
}

/// An administrator's `kill` takes an always-on account out of its rooms
/// with its devices: the others see it quit, not go away.
#[tokio::test]
async fn a_killed_always_on_account_quits_its_rooms() {
    let server = TestServer::start_with(&["--server-admin", "root"]);
    register(&server, "root").await;
    register(&server, "alice").await;
    let (mut root, _) = log_in(&server, Kind::Tcp, "root").await;
    let (mut alice, _) = log_in(&server, Kind::Ws, "alice").await;
    alice.join("lobby").await;
    root.join("lobby").await;
    drain(&mut root).await;
    root.send(json!({"type":"kill","nick":"alice","reason":"spam"}))
        .await;
    // The answer and alice's quit come in either order: alice's session
    // ends on its own task while root's answers.
    let (mut killed, mut quit) = (false, None);
    while !killed || quit.is_none() {
        match root.next_within(Duration::from_secs(10)).await {
            Next::Msg(m) if m["type"] == "killed" => killed = true,
            Next::Msg(m) if m["type"] == "presence" && quit.is_none() => quit = Some(m),
            Next::Msg(_) => {}
            other => panic!("{other:?}: killed {killed}, quit {quit:?}"),
        }
    }
    alice.until_closed(Duration::from_secs(5)).await;
    let quit = quit.unwrap();
    assert_eq!(
        (quit["event"].as_str(), quit["nick"].as_str()),
        (Some("quit"), Some("alice"))
    );
}

/// A device that reconnects joins its rooms again with `rejoin`: a room the
/// account left from another device meanwhile stays left (`not_in_room`),
/// the others (and rooms it never had) are joined; a plain `join` always
/// joins.
#[tokio::test]
async fn a_reconnecting_device_does_not_undo_a_part_made_elsewhere() {
    let server = TestServer::start_with(&["--max-devices", "3"]);
    register(&server, "alice").await;
    let (mut laptop, _) = log_in(&server, Kind::Ws, "alice").await;
    laptop.join("den").await;
    laptop.wait_for("roles").await;
    laptop.join("lobby").await;
    laptop.wait_for("roles").await;
    laptop.send(json!({"type":"part","room":"den"})).await;
    laptop.wait_for("parted").await;
    // The phone was away all along; it comes back with its two rooms.
    let (mut phone, _) = log_in(&server, Kind::Tcp, "alice").await;
    drain(&mut phone).await;
    for (room, n) in [("den", 1), ("lobby", 2), ("attic", 3)] {
        phone
            .send(json!({"type":"join","room":room,"rejoin":true,"ref":n}))
            .await;
    }
    let mut answers = Vec::new();
    while answers.len() < 3 {
        let m = phone.recv().await;
        if m.get("ref").is_some() {
            answers.push(m);
        }
    }
    answers.sort_by_key(|m| m["ref"].as_i64());
    assert_eq!(answers[0]["code"], "not_in_room", "{}", answers[0]);
    assert!(
        answers[0]["message"]
            .as_str()
            .unwrap()
            .contains("another device")
    );
    assert_eq!(
        (answers[1]["type"].as_str(), answers[1]["room"].as_str()),
        (Some("joined"), Some("lobby"))
    );
    assert_eq!(
        (answers[2]["type"].as_str(), answers[2]["room"].as_str()),
        (Some("joined"), Some("attic"))
    );
    // The user asking is another matter.
    phone.send(json!({"type":"join","room":"den"})).await;
    assert_eq!(phone.wait_for("joined").await["room"], "den");
}
