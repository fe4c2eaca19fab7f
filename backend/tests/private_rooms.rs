//! Private rooms (issue 22, "Who gets in") over real sockets: invite-only
//! rooms and invitations, keys, member limits, moderated rooms and
//! voices, secret rooms, on JSON (WebSocket and TCP) and on IRC with its
//! numerics; the modes kept across a restart; outsiders never read a
//! private room's history.

mod common;

use common::{Client, IrcClient, Kind, PW, TestServer, irc_command, log_in, register};
use serde_json::{Value, json};

async fn login(server: &TestServer, kind: Kind, nick: &str) -> Client {
    log_in(server, kind, nick).await.0
}

/// An IRC client logged into `nick`'s account with PASS.
async fn irc_login(server: &TestServer, nick: &str) -> IrcClient {
    irc_login_with(server, nick, None).await
}

/// [`irc_login`], enabling the capabilities `caps` first.
async fn irc_login_with(server: &TestServer, nick: &str, caps: Option<&str>) -> IrcClient {
    let mut irc = IrcClient::connect(server).await;
    if let Some(caps) = caps {
        irc.send("CAP LS 302").await;
        irc.send(&format!("CAP REQ :{caps}")).await;
        let ack = irc.wait_for("CAP").await;
        let ack = if ack.contains(" LS ") {
            irc.wait_for("CAP").await
        } else {
            ack
        };
        assert!(ack.contains("ACK"), "{ack}");
        irc.send("CAP END").await;
    }
    irc.send(&format!("PASS :{PW}")).await;
    irc.send(&format!("NICK {nick}")).await;
    irc.send(&format!("USER {nick} 0 * :{nick}")).await;
    irc.wait_for("376").await;
    irc.wait_for("900").await;
    irc
}

/// Sets modes of `room` as `client` and returns the `modes` it announces.
async fn set_modes(client: &mut Client, room: &str, set: Value) -> Value {
    client
        .send(json!({"type":"mode","room":room,"set":set,"ref":"m"}))
        .await;
    let modes = client.wait_for("modes").await;
    assert_eq!(modes["ref"], "m", "{modes}");
    modes
}

/// Skips IRC lines until a MODE that ends with `change`.
async fn wait_mode(irc: &mut IrcClient, change: &str) -> String {
    loop {
        let line = irc.wait_for("MODE").await;
        if line.ends_with(change) {
            return line;
        }
    }
}

async fn join_with(client: &mut Client, room: &str, key: Option<&str>) -> Value {
    let mut join = json!({"type":"join","room":room});
    if let Some(key) = key {
        join["key"] = json!(key);
    }
    client.send(join).await;
    client.recv().await
}

fn error_code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().unwrap()
}

/// An operator makes a room invite-only; only the invited get in, once
/// each; members may not invite into it, operators hear of invitations.
#[tokio::test]
async fn an_invite_only_room_lets_in_the_invited_once() {
    let server = TestServer::start_with(&["--change-burst", "100"]);
    for nick in ["alice", "erin"] {
        register(&server, nick).await;
    }
    let mut alice = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    alice
        .send(json!({"type":"op","room":"den","account":"erin"}))
        .await;
    alice.wait_for("roles").await;
    let mut erin = login(&server, Kind::Tcp, "erin").await;
    erin.join("den").await;

    let modes = set_modes(&mut alice, "den", json!({"invite_only":true})).await;
    assert_eq!(modes["modes"], json!({"invite_only":true}), "{modes}");
    assert_eq!(modes["by"], "alice");
    assert_eq!(erin.wait_for("modes").await["modes"]["invite_only"], true);

    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    let mut carol = Client::hello(&server, Kind::Ws, "carol").await;
    assert_eq!(
        error_code(&join_with(&mut bob, "den", None).await),
        "invite_only"
    );

    alice
        .send(json!({"type":"invite","room":"den","nick":"bob","ref":7}))
        .await;
    let invited = alice.expect("invited").await;
    assert_eq!(
        (
            &invited["room"],
            &invited["nick"],
            &invited["by"],
            &invited["ref"]
        ),
        (&json!("den"), &json!("bob"), &json!("alice"), &json!(7))
    );
    let invite = bob.expect("invite").await;
    assert_eq!(invite, json!({"type":"invite","room":"den","from":"alice"}));
    // The other operator hears of it (IRC's invite-notify).
    assert_eq!(erin.wait_for("invited").await["nick"], "bob");

    let joined = join_with(&mut bob, "den", None).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["modes"]["invite_only"], true, "{joined}");
    // A member who is no operator can't invite into an invite-only room.
    bob.send(json!({"type":"invite","room":"den","nick":"carol"}))
        .await;
    bob.wait_error("not_operator").await;
    // Invitations of members, of nobody, into rooms one is not in.
    alice
        .send(json!({"type":"invite","room":"den","nick":"bob"}))
        .await;
    alice.wait_error("already_in_room").await;
    alice
        .send(json!({"type":"invite","room":"den","nick":"nobody"}))
        .await;
    alice.wait_error("no_such_nick").await;
    carol
        .send(json!({"type":"invite","room":"den","nick":"carol"}))
        .await;
    carol.wait_error("not_in_room").await;

    // The invitation was used up: out and back in is refused.
    bob.send(json!({"type":"part","room":"den"})).await;
    bob.wait_for("parted").await;
    assert_eq!(
        error_code(&join_with(&mut bob, "den", None).await),
        "invite_only"
    );
    // Open again: anyone joins, and any member may invite.
    set_modes(&mut alice, "den", json!({"invite_only":false})).await;
    assert_eq!(join_with(&mut bob, "den", None).await["type"], "joined");
    bob.send(json!({"type":"invite","room":"den","nick":"carol"}))
        .await;
    bob.wait_for("invited").await;
    assert_eq!(carol.expect("invite").await["from"], "bob");
}

/// Keys, limits, moderation and voices, secrecy, and who may set modes.
#[tokio::test]
async fn keys_limits_moderation_and_secrecy_hold_on_json() {
    let server = TestServer::start_with(&["--change-burst", "100"]);
    register(&server, "alice").await;
    let mut alice = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    let mut carol = Client::hello(&server, Kind::Ws, "carol").await;
    bob.join("den").await;
    // Only operators set modes, and only in rooms they are in.
    bob.send(json!({"type":"mode","room":"den","set":{"moderated":true}}))
        .await;
    bob.wait_error("not_operator").await;
    carol
        .send(json!({"type":"mode","room":"den","set":{"moderated":true}}))
        .await;
    carol.wait_error("not_in_room").await;
    alice
        .send(json!({"type":"mode","room":"den","set":{"key":"has space"}}))
        .await;
    alice.wait_error("bad_request").await;

    let modes = set_modes(&mut alice, "den", json!({"key":"sesame","limit":2})).await;
    assert_eq!(modes["modes"], json!({"key":"sesame","limit":2}));
    assert_eq!(bob.wait_for("modes").await["modes"]["key"], "sesame");
    // An outsider asking sees that there is a key, not the key.
    carol.send(json!({"type":"mode","room":"den"})).await;
    let seen = carol.expect("modes").await;
    assert_eq!(seen["modes"], json!({"key":"*","limit":2}), "{seen}");

    assert_eq!(
        error_code(&join_with(&mut carol, "den", None).await),
        "bad_key"
    );
    assert_eq!(
        error_code(&join_with(&mut carol, "den", Some("wrong")).await),
        "bad_key"
    );
    assert_eq!(
        error_code(&join_with(&mut carol, "den", Some("sesame")).await),
        "room_full"
    );
    set_modes(&mut alice, "den", json!({"limit":0})).await;
    let joined = join_with(&mut carol, "den", Some("sesame")).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(joined["modes"], json!({"key":"sesame"}));

    // Moderated: only operators and the voiced speak.
    set_modes(&mut alice, "den", json!({"moderated":true})).await;
    bob.send(json!({"type":"say","room":"den","text":"hi"}))
        .await;
    bob.wait_error("moderated").await;
    common::say(&mut alice, "den", "the owner speaks").await;
    alice
        .send(json!({"type":"voice","room":"den","nick":"bob","ref":2}))
        .await;
    let voiced = alice.wait_for("voiced").await;
    assert_eq!(
        (
            &voiced["nick"],
            &voiced["by"],
            &voiced["set"],
            &voiced["ref"]
        ),
        (&json!("bob"), &json!("alice"), &json!(true), &json!(2))
    );
    assert_eq!(bob.wait_for("voiced").await["nick"], "bob");
    common::say(&mut bob, "den", "voiced now").await;
    carol.send(json!({"type":"members","room":"den"})).await;
    assert_eq!(carol.wait_for("members").await["voiced"], json!(["bob"]));
    carol
        .send(json!({"type":"voice","room":"den","nick":"carol"}))
        .await;
    carol.wait_error("not_operator").await;
    alice
        .send(json!({"type":"devoice","room":"den","nick":"bob"}))
        .await;
    assert_eq!(bob.wait_for("voiced").await["set"], false);
    bob.send(json!({"type":"say","room":"den","text":"hi"}))
        .await;
    bob.wait_error("moderated").await;

    // Secret: hidden from the listings of those not in it.
    set_modes(&mut alice, "den", json!({"secret":true})).await;
    let mut dave = Client::hello(&server, Kind::Tcp, "dave").await;
    dave.join("lobby").await;
    dave.send(json!({"type":"rooms"})).await;
    let rooms = dave.expect("rooms").await;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 1, "{rooms}");
    assert_eq!(rooms["rooms"][0]["room"], "lobby");
    bob.send(json!({"type":"rooms"})).await;
    let rooms = bob.wait_for("rooms").await;
    assert!(rooms.to_string().contains("\"den\""), "{rooms}");
    dave.send(json!({"type":"whois","nick":"alice"})).await;
    assert_eq!(dave.expect("whois").await["rooms"], json!([]));
    bob.send(json!({"type":"whois","nick":"alice"})).await;
    assert_eq!(bob.wait_for("whois").await["rooms"], json!(["den"]));
    dave.send(json!({"type":"members","room":"den"})).await;
    assert_eq!(dave.expect("members").await["members"], json!([]));
    alice
        .send(json!({"type":"topic","room":"den","text":"hush"}))
        .await;
    alice.wait_for("topic").await;
    dave.send(json!({"type":"topic","room":"den"})).await;
    assert_eq!(dave.expect("topic").await["topic"], Value::Null);
    // Nor does an outsider read its history.
    dave.send(json!({"type":"history","room":"den"})).await;
    dave.expect_error("not_in_room").await;
}

/// IRC: MODE sets and shows modes (324), JOIN takes keys, INVITE invites,
/// and each refusal is the numeric IRC clients know.
#[tokio::test]
async fn irc_clients_see_modes_and_their_numerics() {
    let server = TestServer::start_with(&["--change-burst", "100", "--irc-flood-burst", "100"]);
    register(&server, "alice").await;
    register(&server, "erin").await;
    let mut alice = irc_login(&server, "alice").await;
    alice.send("JOIN #den").await;
    alice.wait_for("366").await;
    alice.send("MODE #den +o erin").await;
    // erin, another operator, hears of invitations (invite-notify).
    let mut erin = irc_login_with(&server, "erin", Some("invite-notify")).await;
    erin.send("JOIN #den").await;
    // Shown as an operator as it joins: the role is stored.
    wait_mode(&mut alice, "MODE #den +o erin").await;
    alice.send("MODE #den +ikl sesame 2").await;
    let mode = wait_mode(&mut alice, "MODE #den +ikl sesame 2").await;
    assert!(mode.starts_with(":alice!"), "{mode}");
    alice.send("MODE #den").await;
    let is = alice.wait_for("324").await;
    assert!(is.ends_with("alice #den +ikln sesame 2"), "{is}");

    let mut bob = IrcClient::register(&server, "bob").await;
    bob.send("JOIN #den").await;
    assert!(bob.wait_for("473").await.contains("#den"));
    // An outsider's MODE shows the key hidden.
    bob.send("MODE #den").await;
    assert!(bob.wait_for("324").await.contains("+ikln * "));
    alice.send("INVITE bob #den").await;
    let inviting = alice.wait_for("341").await;
    assert!(inviting.ends_with("alice bob #den"), "{inviting}");
    let invite = bob.wait_for("INVITE").await;
    assert!(
        invite.starts_with(":alice!") && invite.ends_with("INVITE bob #den"),
        "{invite}"
    );
    let notified = erin.wait_for("INVITE").await;
    assert!(
        notified.starts_with(":alice!") && notified.ends_with("INVITE bob #den"),
        "{notified}"
    );
    bob.send("JOIN #den").await;
    bob.wait_for("366").await;
    alice.send("INVITE bob #den").await;
    assert!(alice.wait_for("443").await.contains("bob #den"));
    alice.send("INVITE nobody #den").await;
    assert!(alice.wait_for("401").await.contains("nobody"));

    let mut carol = IrcClient::register(&server, "carol").await;
    carol.send("JOIN #den sesame").await;
    carol.wait_for("473").await;
    alice.send("MODE #den -i").await;
    wait_mode(&mut alice, "MODE #den -i").await;
    carol.send("JOIN #den sesame").await;
    carol.wait_for("471").await;
    alice.send("MODE #den -l").await;
    wait_mode(&mut alice, "MODE #den -l").await;
    carol.send("JOIN #den wrong").await;
    carol.wait_for("475").await;
    carol.send("JOIN #lobby,#den x,sesame").await;
    carol.wait_for("366").await;
    let names = carol.wait_for("353").await;
    assert!(names.contains("#den"), "{names}");
    carol.wait_for("366").await;

    // Moderated: 404 until voiced; MODE +v shows.
    alice.send("MODE #den +m").await;
    wait_mode(&mut alice, "MODE #den +m").await;
    carol.send("PRIVMSG #den :hello?").await;
    assert!(carol.wait_for("404").await.contains("#den"));
    carol.send("MODE #den +s").await;
    assert!(carol.wait_for("482").await.contains("#den"));
    alice.send("MODE #den +v carol").await;
    let voiced = wait_mode(&mut carol, "MODE #den +v carol").await;
    assert!(voiced.starts_with(":alice!"), "{voiced}");
    carol.send("NAMES #den").await;
    let names = carol.wait_for("353").await;
    assert!(
        names.contains("+carol") && names.contains("@alice"),
        "{names}"
    );
    carol.send("PRIVMSG #den :now I speak").await;
    let heard = alice.wait_for("PRIVMSG").await;
    assert!(heard.ends_with("#den :now I speak"), "{heard}");

    // Secret: not in LIST or WHOIS of outsiders; their CHATHISTORY fails.
    alice.send("MODE #den +s").await;
    wait_mode(&mut alice, "MODE #den +s").await;
    let mut dave = IrcClient::register(&server, "dave").await;
    dave.send("LIST").await;
    loop {
        let line = dave.recv().await;
        assert!(!line.contains("#den"), "{line}");
        if irc_command(&line) == "323" {
            break;
        }
    }
    dave.send("WHOIS alice").await;
    loop {
        let line = dave.recv().await;
        assert!(!line.contains("#den"), "{line}");
        if irc_command(&line) == "318" {
            break;
        }
    }
    dave.send("CHATHISTORY LATEST #den * 10").await;
    let refused = dave.recv().await;
    assert!(
        ["442", "FAIL"].contains(&irc_command(&refused)),
        "{refused}"
    );
    // Registered users only (+R): a guest gets 477; a ban is 474.
    alice.send("MODE #den +R").await;
    wait_mode(&mut alice, "MODE #den +R").await;
    dave.send("JOIN #den sesame").await;
    dave.wait_for("477").await;
    alice.send("MODE #den -R+b dave").await;
    // The ban goes first (its own request), then the room's modes.
    wait_mode(&mut alice, "MODE #den +b dave!*@*").await;
    wait_mode(&mut alice, "MODE #den -R").await;
    dave.send("JOIN #den sesame").await;
    dave.wait_for("474").await;
}

/// A room's modes are stored: after a restart they still hold.
#[tokio::test]
async fn modes_survive_a_restart() {
    let mut server = TestServer::start_with(&[]);
    register(&server, "alice").await;
    let mut alice = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    set_modes(
        &mut alice,
        "den",
        json!({"invite_only":true,"key":"sesame","limit":20,"moderated":true,"secret":true}),
    )
    .await;
    set_modes(&mut alice, "den", json!({"limit":10})).await;
    drop(alice);
    server.restart();

    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    // Asked before anyone opens it again: read from the store.
    bob.send(json!({"type":"mode","room":"den"})).await;
    let modes = bob.expect("modes").await;
    assert_eq!(
        modes["modes"],
        json!({"invite_only":true,"key":"*","limit":10,"moderated":true,"secret":true}),
        "{modes}"
    );
    assert_eq!(
        error_code(&join_with(&mut bob, "den", Some("sesame")).await),
        "invite_only"
    );
    let mut alice = login(&server, Kind::Ws, "alice").await;
    let joined = alice.join("den").await;
    assert_eq!(
        joined["modes"],
        json!({"invite_only":true,"key":"sesame","limit":10,"moderated":true,"secret":true}),
        "{joined}"
    );
    // Removing the key is stored too.
    set_modes(&mut alice, "den", json!({"key":"","invite_only":false})).await;
    drop(alice);
    server.restart();
    let joined = join_with(
        &mut Client::hello(&server, Kind::Tcp, "bob").await,
        "den",
        None,
    )
    .await;
    assert_eq!(
        joined["modes"],
        json!({"limit":10,"moderated":true,"secret":true}),
        "{joined}"
    );
}

/// Server administrators set the modes of any room they are in, even one
/// without owner or operators (`lobby`), where nobody else may.
#[tokio::test]
async fn administrators_set_modes_where_nobody_else_may() {
    let server = TestServer::start_with(&["--server-admin", "root"]);
    register(&server, "root").await;
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest.join("lobby").await;
    guest
        .send(json!({"type":"mode","room":"lobby","set":{"moderated":true}}))
        .await;
    guest.expect_error("not_operator").await;
    let mut root = login(&server, Kind::Ws, "root").await;
    root.join("lobby").await;
    let modes = set_modes(&mut root, "lobby", json!({"moderated":true})).await;
    assert_eq!(modes["modes"], json!({"moderated":true}));
    assert_eq!(guest.wait_for("modes").await["by"], "root");
    guest
        .send(json!({"type":"say","room":"lobby","text":"hello?"}))
        .await;
    guest.expect_error("moderated").await;
}

/// An `except` (or `unexcept`) request of `list` for `target` (a JSON
/// object naming `nick`, `account` or `mask`) as `client`, who gets the
/// `banned` it causes.
async fn except(client: &mut Client, set: bool, list: &str, target: Value) -> Value {
    let mut request = json!({
        "type": if set { "except" } else { "unexcept" },
        "room": "den",
        "list": list,
        "ref": "x",
    });
    for (k, v) in target.as_object().unwrap() {
        request[k] = v.clone();
    }
    client.send(request).await;
    let banned = client.wait_for("banned").await;
    assert_eq!(banned["ref"], "x", "{banned}");
    assert_eq!(banned["set"], set, "{banned}");
    assert_eq!(banned["ban"]["list"], list, "{banned}");
    banned
}

/// Ban exceptions (`+e`) and invite exceptions (`+I`) on JSON: operators
/// set them by nick, account or mask; a ban neither keeps out nor kicks
/// whom a ban exception matches; an invite exception lets whom it matches
/// into an invite-only room without an invitation (but not past a key);
/// members list each list apart; bad requests get specific errors.
#[tokio::test]
async fn exceptions_let_their_matches_past_bans_and_invite_only() {
    let server = TestServer::start_with(&["--change-burst", "100"]);
    for nick in ["alice", "bob"] {
        register(&server, nick).await;
    }
    let mut alice = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    let mut carol = Client::hello(&server, Kind::Tcp, "carol").await;
    carol.join("den").await;

    // Members who are not operators may not; requests are checked.
    let exception = json!({"type":"except","room":"den","list":"ban_exception","mask":"*!*@*"});
    carol.send(exception.clone()).await;
    carol.wait_error("not_operator").await;
    for (request, code) in [
        (
            json!({"type":"except","room":"den","list":"ban","nick":"carol"}),
            "bad_request",
        ),
        (
            json!({"type":"except","room":"den","list":"everyone","nick":"carol"}),
            "bad_request",
        ),
        (
            json!({"type":"except","room":"den","nick":"carol"}),
            "missing_field",
        ),
        (
            json!({"type":"except","room":"den","list":"ban_exception"}),
            "bad_request",
        ),
        (
            json!({"type":"except","room":"den","list":"ban_exception","mask":"carol"}),
            "bad_request",
        ),
        (
            json!({"type":"except","room":"den","list":"ban_exception","account":"nobody"}),
            "no_such_account",
        ),
    ] {
        alice.send(request.clone()).await;
        let error = alice.wait_for("error").await;
        assert_eq!(error["code"], code, "{request} → {error}");
    }

    // bob's account and carol's nick (as a mask) are excepted from bans;
    // then everyone is banned: nobody excepted is kicked.
    except(&mut alice, true, "ban_exception", json!({"account":"bob"})).await;
    let banned = except(
        &mut alice,
        true,
        "ban_exception",
        json!({"mask":"carol*!*@*"}),
    )
    .await;
    assert_eq!(banned["ban"]["mask"], "carol*!*@*");
    assert_eq!(banned["ban"]["by"], "alice");
    assert_eq!(
        carol.wait_for("banned").await["ban"]["list"],
        "ban_exception"
    );
    alice
        .send(json!({"type":"ban","room":"den","mask":"*!*@*"}))
        .await;
    let ban = alice.wait_for("banned").await;
    assert!(ban["ban"].get("list").is_none(), "a ban has no list: {ban}");
    carol
        .send(json!({"type":"say","room":"den","text":"still here"}))
        .await;
    assert_eq!(alice.wait_for("message").await["text"], "still here");

    let mut dave = Client::hello(&server, Kind::Ws, "dave").await;
    assert_eq!(
        error_code(&join_with(&mut dave, "den", None).await),
        "banned"
    );
    let mut bob = login(&server, Kind::Tcp, "bob").await;
    bob.send(json!({"type":"nick","nick":"bobby"})).await;
    bob.wait_for("nick").await;
    let joined = join_with(&mut bob, "den", None).await;
    assert_eq!(
        joined["type"], "joined",
        "the account's exception holds under any nick: {joined}"
    );
    bob.send(json!({"type":"say","room":"den","text":"hi"}))
        .await;
    assert_eq!(alice.wait_for("message").await["from"], "bobby");

    // Each list on its own.
    alice
        .send(json!({"type":"bans","room":"den","list":"ban_exception","ref":1}))
        .await;
    let list = alice.wait_for("bans").await;
    assert_eq!(list["list"], "ban_exception", "{list}");
    let entries = list["bans"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{list}");
    assert!(entries.iter().all(|e| e["list"] == "ban_exception"));
    alice
        .send(json!({"type":"bans","room":"den","ref":2}))
        .await;
    let bans = alice.wait_for("bans").await;
    assert!(bans.get("list").is_none(), "{bans}");
    assert_eq!(bans["bans"].as_array().unwrap().len(), 1, "{bans}");
    alice
        .send(json!({"type":"bans","room":"den","list":"invite_exception"}))
        .await;
    assert_eq!(alice.wait_for("bans").await["bans"], json!([]));

    // Lifted: carol's next join is refused.
    except(
        &mut alice,
        false,
        "ban_exception",
        json!({"mask":"CAROL*!*@*"}),
    )
    .await;
    carol.send(json!({"type":"part","room":"den"})).await;
    carol.wait_for("parted").await;
    assert_eq!(
        error_code(&join_with(&mut carol, "den", None).await),
        "banned"
    );

    // Invite exceptions: past +i without an invitation, not past +k.
    alice
        .send(json!({"type":"unban","room":"den","mask":"*!*@*"}))
        .await;
    alice.wait_for("banned").await;
    set_modes(&mut alice, "den", json!({"invite_only":true})).await;
    assert_eq!(
        error_code(&join_with(&mut dave, "den", None).await),
        "invite_only"
    );
    except(&mut alice, true, "invite_exception", json!({"nick":"dave"})).await;
    let joined = join_with(&mut dave, "den", None).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    assert_eq!(
        error_code(&join_with(&mut carol, "den", None).await),
        "invite_only"
    );
    dave.send(json!({"type":"part","room":"den"})).await;
    dave.wait_for("parted").await;
    set_modes(&mut alice, "den", json!({"key":"sesame"})).await;
    assert_eq!(
        error_code(&join_with(&mut dave, "den", None).await),
        "bad_key"
    );
    let joined = join_with(&mut dave, "den", Some("sesame")).await;
    assert_eq!(joined["type"], "joined", "{joined}");
}

/// Each list holds at most 100 entries (ISUPPORT `MAXLIST=b:100,e:100,I:100`);
/// replacing an entry it holds is fine.
#[tokio::test]
async fn exception_lists_are_bounded() {
    let server = TestServer::start_with(&["--change-burst", "1000", "--change-rate", "1000"]);
    register(&server, "alice").await;
    let mut alice = login(&server, Kind::Tcp, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    for i in 0..100 {
        let mask = json!({ "mask": format!("n{i}!*@*") });
        except(&mut alice, true, "invite_exception", mask).await;
    }
    alice
        .send(json!({"type":"except","room":"den","list":"invite_exception","mask":"n100!*@*"}))
        .await;
    let full = alice.expect_error("list_full").await;
    assert!(full["message"].as_str().unwrap().contains("100"), "{full}");
    except(
        &mut alice,
        true,
        "invite_exception",
        json!({"mask":"N7!*@*"}),
    )
    .await;
    // The other lists are counted apart.
    except(
        &mut alice,
        true,
        "ban_exception",
        json!({"mask":"n100!*@*"}),
    )
    .await;
}

/// IRC: `MODE #den +e`/`-e`/`e` and `+I`/`-I`/`I` with 348/349 and
/// 346/347, advertised in ISUPPORT; the exceptions act as on JSON.
#[tokio::test]
async fn irc_clients_set_and_list_exceptions() {
    let server = TestServer::start_with(&["--change-burst", "100", "--irc-flood-burst", "100"]);
    register(&server, "alice").await;
    register(&server, "bob").await;
    let mut alice = IrcClient::connect(&server).await;
    alice.send(&format!("PASS :{PW}")).await;
    alice.send("NICK alice").await;
    alice.send("USER alice 0 * :alice").await;
    let mut isupport = Vec::new();
    loop {
        let line = alice.recv().await;
        match irc_command(&line) {
            "005" => isupport.push(line),
            "376" => break,
            _ => {}
        }
    }
    let tokens = isupport.join(" ");
    for token in [
        "CHANMODES=beI,k,l,imnsR",
        "EXCEPTS=e",
        "INVEX=I",
        "MAXLIST=b:100,e:100,I:100",
    ] {
        assert!(tokens.contains(token), "{token} in {isupport:?}");
    }
    alice.wait_for("900").await;
    alice.send("JOIN #den").await;
    alice.wait_for("366").await;

    alice.send("MODE #den +e $a:bob").await;
    wait_mode(&mut alice, "MODE #den +e $a:bob").await;
    alice.send("MODE #den +eI carol*!*@* dave").await;
    let set = wait_mode(&mut alice, "MODE #den +e carol*!*@*").await;
    assert!(set.starts_with(":alice!"), "{set}");
    wait_mode(&mut alice, "MODE #den +I dave!*@*").await;
    alice.send("MODE #den e").await;
    let mut listed = Vec::new();
    loop {
        let line = alice.recv().await;
        match irc_command(&line) {
            "348" => listed.push(line),
            "349" => {
                assert!(line.contains("#den"), "{line}");
                break;
            }
            _ => {}
        }
    }
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[0].contains("#den $a:bob alice "), "{listed:?}");
    assert!(listed[1].contains("#den carol*!*@* alice "), "{listed:?}");
    alice.send("MODE #den +I").await;
    let invex = alice.wait_for("346").await;
    assert!(invex.contains("#den dave!*@* alice "), "{invex}");
    assert!(alice.wait_for("347").await.contains("#den"));
    alice.send("MODE #den b").await;
    assert!(alice.wait_for("368").await.contains("#den"));
    alice.send("MODE #den +e").await;
    alice.wait_for("349").await;
    // Without a mask, `-e` lists too (the spec's type A rule).
    alice.send("MODE #den -e").await;
    alice.wait_for("349").await;
    alice.send("MODE #den +e a!b").await;
    alice.wait_for("461").await;

    // Everyone banned, the room invite-only: carol (+e) is still banned
    // from an invite-only room, dave (+I) is banned; after -b, dave
    // joins uninvited and carol is refused with 473.
    alice.send("MODE #den +bi *!*@*").await;
    wait_mode(&mut alice, "MODE #den +b *!*@*").await;
    wait_mode(&mut alice, "MODE #den +i").await;
    let mut carol = IrcClient::register(&server, "carol").await;
    carol.send("JOIN #den").await;
    carol.wait_for("473").await;
    let mut dave = IrcClient::register(&server, "dave").await;
    dave.send("JOIN #den").await;
    dave.wait_for("474").await;
    alice.send("MODE #den -b *!*@*").await;
    wait_mode(&mut alice, "MODE #den -b *!*@*").await;
    dave.send("JOIN #den").await;
    dave.wait_for("366").await;
    alice.send("MODE #den -I dave").await;
    wait_mode(&mut alice, "MODE #den -I dave!*@*").await;
    alice.send("MODE #den -i+b *!*@*").await;
    wait_mode(&mut alice, "MODE #den +b *!*@*").await;
    wait_mode(&mut alice, "MODE #den -i").await;
    // carol's exception lets her in through the ban.
    carol.send("JOIN #den").await;
    carol.wait_for("366").await;
    carol.send("PRIVMSG #den :through the ban").await;
    let heard = alice.wait_for("PRIVMSG").await;
    assert!(heard.ends_with("#den :through the ban"), "{heard}");

    // Not an operator: 482.
    carol.send("MODE #den +e eve").await;
    assert!(carol.wait_for("482").await.contains("#den"));
}

/// Exceptions are stored: after a restart they still let their matches in.
#[tokio::test]
async fn exceptions_survive_a_restart() {
    let mut server = TestServer::start_with(&[]);
    register(&server, "alice").await;
    let mut alice = login(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    set_modes(&mut alice, "den", json!({"invite_only":true})).await;
    except(&mut alice, true, "invite_exception", json!({"nick":"bob"})).await;
    except(&mut alice, true, "ban_exception", json!({"nick":"bob"})).await;
    alice
        .send(json!({"type":"ban","room":"den","nick":"bob"}))
        .await;
    alice.wait_for("banned").await;
    drop(alice);
    server.restart();

    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    let joined = join_with(&mut bob, "den", None).await;
    assert_eq!(joined["type"], "joined", "{joined}");
    bob.send(json!({"type":"bans","room":"den","list":"invite_exception"}))
        .await;
    let list = bob.wait_for("bans").await;
    assert_eq!(list["bans"][0]["nick"], "bob", "{list}");
    let mut carol = Client::hello(&server, Kind::Tcp, "carol").await;
    assert_eq!(
        error_code(&join_with(&mut carol, "den", None).await),
        "invite_only"
    );
}
