//! Server administrators over real sockets: who they are (`--server-admin`
//! and `banter admin grant`), and what only they may do: end a session
//! (`kill`), ban an address range or an account from the server (`kline`,
//! `unkline`, `klines`), remove an account. Everyone else is told
//! `not_admin`.

mod common;

use common::*;
use serde_json::{Value, json};

async fn login(server: &TestServer, nick: &str) -> Client {
    login_seeing(server, nick).await.0
}

/// Logs in; also gives the `logged_in` frame.
async fn login_seeing(server: &TestServer, nick: &str) -> (Client, Value) {
    log_in(server, Kind::Ws, nick).await
}

/// The `closing` code a client got before its connection closed.
async fn closed_with(client: &mut Client) -> Value {
    let seen = client.until_closed(WAIT).await;
    seen.into_iter()
        .find(|m| m["type"] == "closing")
        .map(|m| m["code"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn administrators_kill_ban_and_remove_and_nobody_else_may() {
    let server = TestServer::start_with(&["--server-admin", "root"]);
    for nick in ["root", "bob", "mallory"] {
        register(&server, nick).await;
    }
    // `logged_in` says who administers the server (the web client shows
    // its Administration panel to them only).
    let (mut root, logged_in) = login_seeing(&server, "root").await;
    assert_eq!(logged_in["admin"], true, "{logged_in}");
    let (mut bob, logged_in) = login_seeing(&server, "bob").await;
    assert_eq!(logged_in.get("admin"), None, "{logged_in}");
    for request in [
        json!({"type":"kill","nick":"root"}),
        json!({"type":"kline","account":"root","reason":"no"}),
        json!({"type":"klines"}),
        json!({"type":"remove_account","account":"root"}),
    ] {
        bob.send(request).await;
        bob.expect_error("not_admin").await;
    }

    // kill
    let mut mallory = login(&server, "mallory").await;
    root.send(json!({"type":"kill","nick":"mallory","reason":"spam"}))
        .await;
    assert_eq!(root.expect("killed").await["nick"], "mallory");
    assert_eq!(closed_with(&mut mallory).await, "killed");
    root.send(json!({"type":"kill","nick":"nobody"})).await;
    root.expect_error("no_such_nick").await;

    // A ban on an account ends its sessions and keeps it out.
    let mut mallory = login(&server, "mallory").await;
    root.send(json!({"type":"kline","account":"mallory","reason":"spam","minutes":60}))
        .await;
    let banned = root.expect("klined").await;
    assert_eq!(
        (&banned["set"], &banned["kline"]["account"]),
        (&json!(true), &json!("mallory"))
    );
    assert!(banned["kline"]["expires"].as_u64().is_some());
    assert_eq!(closed_with(&mut mallory).await, "server_banned");
    let hello = json!({"type":"hello","nick":"mallory","password":PW});
    let (_, answer) = Client::hello_with(&server, Kind::Tcp, hello.clone()).await;
    assert_eq!(answer["code"], "server_banned", "{answer}");
    root.send(json!({"type":"klines"})).await;
    let bans = root.expect("klines").await;
    assert_eq!(bans["klines"].as_array().unwrap().len(), 1, "{bans}");
    root.send(json!({"type":"unkline","account":"mallory"}))
        .await;
    assert_eq!(root.expect("klined").await["set"], false);
    let (_, answer) = Client::hello_with(&server, Kind::Tcp, hello).await;
    assert_eq!(answer["type"], "welcome", "{answer}");

    // A ban on an address range: not one's own; sessions from it end,
    // new ones are refused, other addresses are not touched.
    root.send(json!({"type":"kline","address":"127.0.0.0/8","reason":"oops"}))
        .await;
    root.expect_error("bad_request").await;
    let mut far = Client::tcp_from(&server, "127.0.0.2").await;
    far.send(json!({"type":"hello","nick":"far"})).await;
    far.expect("welcome").await;
    root.send(json!({"type":"kline","address":"127.0.0.2","reason":"botnet"}))
        .await;
    assert_eq!(
        root.expect("klined").await["kline"]["address"],
        "127.0.0.2/32"
    );
    assert_eq!(closed_with(&mut far).await, "server_banned");
    let mut again = Client::tcp_from(&server, "127.0.0.2").await;
    again.send(json!({"type":"hello","nick":"far"})).await;
    again.expect_error("server_banned").await;
    bob.assert_usable().await;

    // Removing an account ends its sessions and frees its name.
    root.send(json!({"type":"remove_account","account":"bob"}))
        .await;
    assert_eq!(root.expect("account_deleted").await["account"], "bob");
    assert_eq!(closed_with(&mut bob).await, "logged_out_elsewhere");
    let (_, answer) = Client::hello_with(
        &server,
        Kind::Ws,
        json!({"type":"hello","nick":"bob","password":PW}),
    )
    .await;
    assert_eq!(answer["code"], "no_such_account", "{answer}");
}

/// `banter admin grant NAME` makes an administrator from its next login
/// (the server may be running); `revoke` undoes it.
#[tokio::test]
async fn banter_admin_grants_and_revokes() {
    let server = TestServer::start();
    register(&server, "carol").await;
    let mut carol = login(&server, "carol").await;
    carol.send(json!({"type":"klines"})).await;
    carol.expect_error("not_admin").await;
    let out = server.run_command(&["admin", "grant", "carol"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.run_command(&["admin", "list"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "carol");
    drop(carol);
    let mut carol = login(&server, "carol").await;
    carol.send(json!({"type":"klines"})).await;
    carol.expect("klines").await;
    let out = server.run_command(&["admin", "grant", "nobody"]);
    assert!(!out.status.success(), "no such account");
    let out = server.run_command(&["admin", "revoke", "carol"]);
    assert!(out.status.success());
    drop(carol);
    let mut carol = login(&server, "carol").await;
    carol.send(json!({"type":"klines"})).await;
    carol.expect_error("not_admin").await;
}

/// The same from IRC: OPER says whether the logged-in account
/// administers the server; KILL, KLINE, UNKLINE and STATS K work for
/// administrators, 481 for anyone else.
#[tokio::test]
async fn administrators_on_irc() {
    let server = TestServer::start_with(&["--server-admin", "root"]);
    register(&server, "root").await;
    let mut root = IrcClient::connect(&server).await;
    root.send(&format!("PASS :{PW}")).await;
    root.send("NICK root").await;
    root.send("USER root 0 * :Root").await;
    root.wait_for("900").await;
    let mut guest = IrcClient::register(&server, "guest").await;
    // OPER checks the password (464), then whether the account named
    // administers the server (491): if so, this connection has its rights.
    register(&server, "plainacct").await;
    guest.send("OPER guest whatever").await;
    guest.wait_for("464").await;
    guest.send(&format!("OPER plainacct :{PW}")).await;
    guest.wait_for("491").await;
    guest.send("KILL root :no").await;
    guest.wait_for("481").await;
    let mut opered = IrcClient::register(&server, "opered").await;
    opered.send(&format!("OPER root :{PW}")).await;
    opered.wait_for("381").await;
    opered.send("WHOIS opered").await;
    opered.wait_for("313").await;
    let mut target = Client::hello(&server, Kind::Tcp, "target").await;
    opered.send("KILL target :bye").await;
    assert_eq!(closed_with(&mut target).await, "killed");

    root.send("OPER root whatever").await;
    root.wait_for("464").await;
    root.send(&format!("OPER root :{PW}")).await;
    root.wait_for("381").await;
    let mut victim = Client::hello(&server, Kind::Tcp, "victim").await;
    root.send("KILL victim :bye").await;
    let notice = root.wait_for("NOTICE").await;
    assert!(notice.contains("victim was disconnected"), "{notice}");
    assert_eq!(closed_with(&mut victim).await, "killed");
    root.send("KLINE 10 *@192.0.2.0/24 :botnet").await;
    let notice = root.wait_for("NOTICE").await;
    assert!(notice.contains("192.0.2.0/24 set: botnet"), "{notice}");
    root.send("STATS k").await;
    let kline = root.wait_for("216").await;
    assert!(kline.contains("192.0.2.0/24"), "{kline}");
    root.wait_for("219").await;
    root.send("UNKLINE 192.0.2.0/24").await;
    let notice = root.wait_for("NOTICE").await;
    assert!(notice.contains("lifted"), "{notice}");
    // An IRC login into a banned account gets 465.
    register(&server, "mallory").await;
    root.send("KLINE $a:mallory :spam").await;
    root.wait_for("NOTICE").await;
    let mut mallory = IrcClient::connect(&server).await;
    mallory.send(&format!("PASS :{PW}")).await;
    mallory.send("NICK mallory").await;
    mallory.send("USER m 0 * :M").await;
    let banned = mallory.wait_for("465").await;
    assert!(banned.contains("spam"), "{banned}");
}

/// In any room they are in, administrators act as its owner: they may
/// kick or deop the owner, set the topic, and give the room to another
/// account (`set_owner`, which the owner may do too); nobody else may.
#[tokio::test]
async fn administrators_take_over_rooms() {
    let server = TestServer::start_with(&["--server-admin", "root"]);
    for nick in ["root", "alice", "bob"] {
        register(&server, nick).await;
    }
    let mut alice = login(&server, "alice").await;
    alice.join("den").await;
    assert_eq!(alice.expect("roles").await["owner"], "alice");
    let mut bob = login(&server, "bob").await;
    bob.join("den").await;
    bob.expect("roles").await;
    bob.send(json!({"type":"set_owner","room":"den","account":"bob"}))
        .await;
    bob.expect_error("not_operator").await;
    // Locked against everyone, root included: an administrator gets in.
    alice
        .send(json!({"type":"mode","room":"den","set":{"invite_only":true,"key":"sesame"}}))
        .await;
    alice.wait_for("modes").await;
    alice
        .send(json!({"type":"ban","room":"den","account":"root"}))
        .await;
    alice.wait_for("banned").await;
    let mut root = login(&server, "root").await;
    root.join("den").await;
    root.expect("roles").await;
    root.send(json!({"type":"topic","room":"den","text":"under new management"}))
        .await;
    root.wait_for("topic").await;
    root.send(json!({"type":"set_owner","room":"den","account":"bob","ref":"own"}))
        .await;
    let roles = loop {
        let m = root.recv().await;
        if m["type"] == "roles" && m["owner"] == "bob" {
            break m;
        }
    };
    assert_eq!(roles["ops"], json!(["alice"]), "{roles}");
    // The owner before is an operator now; the admin may still kick it.
    root.send(json!({"type":"kick","room":"den","nick":"alice","reason":"cleanup"}))
        .await;
    let kicked = root.wait_for("kicked").await;
    assert_eq!(kicked["nick"], "alice");
    // And the owner itself.
    root.send(json!({"type":"kick","room":"den","nick":"bob"}))
        .await;
    assert_eq!(root.wait_for("kicked").await["nick"], "bob");
}
