//! The abuse limits, each hit over real sockets: chat messages, joins and
//! every other request that writes or broadcasts, per session; accounts
//! created and rooms opened per address (and account); connections and
//! handshakes per address. Each gives its own error, and everyone else
//! goes on unaffected.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn say(room: &str, text: &str, reference: u64) -> serde_json::Value {
    json!({"type": "say", "room": room, "text": text, "ref": reference})
}

#[tokio::test]
async fn messages_over_the_rate_are_refused_with_when_to_retry() {
    let server = TestServer::start_with(&["--message-rate", "2", "--message-burst", "3"]);
    for kind in BOTH {
        let mut fast = Client::hello(&server, kind, &format!("fast{kind:?}")).await;
        let mut calm = Client::hello(&server, Kind::Tcp, &format!("calm{kind:?}")).await;
        fast.join("lobby").await;
        calm.join("lobby").await;
        for i in 0..3 {
            fast.send(say("lobby", &format!("burst {i}"), i)).await;
        }
        fast.send(say("lobby", "one too many", 99)).await;
        // The refusal is immediate; the echoes come once committed.
        let (mut echoed, mut refused) = (0, None);
        while echoed < 3 || refused.is_none() {
            let m = fast.recv().await;
            match m["type"].as_str() {
                Some("message") => echoed += 1,
                Some("error") => refused = Some(m),
                _ => {}
            }
        }
        let refused = refused.unwrap();
        fast.assert_quiet(Duration::from_millis(200)).await;
        assert_eq!(echoed, 3, "the burst is delivered");
        assert_eq!(refused["code"], "rate_limited", "{refused}");
        assert_eq!(refused["ref"], 99, "the refusal names the request");
        let text = refused["message"].as_str().unwrap();
        assert!(text.contains("retry in"), "{text}");
        // The others saw exactly the burst, and can talk.
        for i in 0..3 {
            let m = calm.wait_for("message").await;
            assert_eq!(m["text"], format!("burst {i}"));
        }
        calm.send(say("lobby", "calm here", 1)).await;
        assert_eq!(calm.wait_for("message").await["text"], "calm here");
        assert_eq!(fast.wait_for("message").await["text"], "calm here");
        // After the wait, the fast one may speak again.
        tokio::time::sleep(Duration::from_millis(600)).await;
        fast.send(say("lobby", "patient now", 5)).await;
        let m = fast.wait_for("message").await;
        assert_eq!(m["text"], "patient now");
    }
}

#[tokio::test]
async fn whispers_count_as_messages() {
    let server = TestServer::start_with(&["--message-rate", "0.5", "--message-burst", "1"]);
    let mut a = Client::hello(&server, Kind::Ws, "a").await;
    let _b = Client::hello(&server, Kind::Tcp, "b").await;
    a.send(json!({"type": "whisper", "to": "b", "text": "1"}))
        .await;
    a.expect("direct").await;
    a.send(json!({"type": "whisper", "to": "b", "text": "2"}))
        .await;
    let e = a.expect_error("rate_limited").await;
    assert!(e["message"].as_str().unwrap().contains("retry in"), "{e}");
}

#[tokio::test]
async fn joins_over_the_rate_are_refused() {
    let server = TestServer::start_with(&["--join-rate", "0.2", "--join-burst", "2"]);
    let mut c = Client::hello(&server, Kind::Tcp, "joiner").await;
    c.join("a").await;
    c.join("b").await;
    c.join_err("c", "rate_limited").await;
    c.assert_usable().await;
    let mut irc = IrcClient::register(&server, "ircjoiner").await;
    irc.send("JOIN #a,#b,#c").await;
    irc.wait_for("JOIN").await;
    irc.wait_for("JOIN").await;
    let refused = irc.wait_for("400").await;
    assert!(refused.contains("retry in"), "{refused}");
    irc.assert_usable().await;
}

/// Every request that broadcasts or writes has a limit: nick changes,
/// away toggles, topics (in an ownerless room anyone may set one), deop
/// of oneself; they share one bucket, and queries are not counted.
#[tokio::test]
async fn changes_that_broadcast_are_limited() {
    let server = TestServer::start_with(&["--change-rate", "0.1", "--change-burst", "4"]);
    let mut flooder = Client::hello(&server, Kind::Tcp, "flooder").await;
    let mut calm = Client::hello(&server, Kind::Ws, "calm").await;
    flooder.join("lobby").await;
    calm.join("lobby").await;
    let requests = [
        json!({"type":"nick","nick":"flooder2"}),
        json!({"type":"away","message":"gone"}),
        json!({"type":"away"}),
        json!({"type":"topic","room":"lobby","text":"mine"}),
    ];
    for request in requests.iter().cycle().take(12) {
        flooder.send(request.clone()).await;
    }
    flooder.send(json!({"type":"rooms","ref":"q"})).await;
    let mut refused = 0;
    loop {
        let m = flooder.recv().await;
        if m["code"] == "rate_limited" {
            refused += 1;
            assert!(m["message"].as_str().unwrap().contains("retry in"), "{m}");
        }
        if m["type"] == "rooms" {
            break;
        }
    }
    assert_eq!(
        refused, 8,
        "a burst of 4, then refusals; queries still answered"
    );
    // The room saw the burst only, and the others chat on.
    let mut seen = 0;
    calm.send(say("lobby", "still here", 1)).await;
    loop {
        let m = calm.recv().await;
        match m["type"].as_str() {
            Some("presence" | "away" | "topic") => seen += 1,
            Some("message") => break,
            _ => {}
        }
    }
    assert!(seen <= 4, "{seen} broadcasts");
}

/// Accounts per address per hour, and registration closed by a flag.
#[tokio::test]
async fn registrations_are_limited_per_address_and_can_be_closed() {
    let server = TestServer::start_with(&["--registrations-per-hour", "2"]);
    let register = |nick: &str| json!({"type":"register","nick":nick,"password":"correct horse"});
    let mut c = Client::connect(&server, Kind::Tcp).await;
    for nick in ["first", "second"] {
        c.send(register(nick)).await;
        c.expect("registered").await;
    }
    c.send(register("third")).await;
    let refused = c.expect_error("rate_limited").await;
    assert!(
        refused["message"].as_str().unwrap().contains("address"),
        "{refused}"
    );
    // Another connection from the same address is counted the same way;
    // another address is not.
    let mut again = Client::connect(&server, Kind::Ws).await;
    again.send(register("third")).await;
    again.expect_error("rate_limited").await;
    let mut elsewhere = Client::tcp_from(&server, "127.0.0.2").await;
    elsewhere.send(register("third")).await;
    elsewhere.expect("registered").await;

    let closed = TestServer::start_with(&["--registration", "closed"]);
    let mut c = Client::connect(&closed, Kind::Tcp).await;
    c.send(register("anyone")).await;
    c.expect_error("registration_closed").await;
}

/// `--registration invite`: an account needs a code made by `banter
/// invite`, good for its number of uses; a wrong code is refused clearly
/// and creates nothing.
#[tokio::test]
async fn invite_only_registration_takes_codes_from_banter_invite() {
    let server = TestServer::start_with(&["--registration", "invite"]);
    let out = server.run_command(&["invite", "--uses", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(code.len(), 20, "{code}");
    let register = |nick: &str, invite: Option<&str>| {
        let mut r = json!({"type":"register","nick":nick,"password":"correct horse"});
        if let Some(invite) = invite {
            r["invite"] = json!(invite);
        }
        r
    };
    let mut c = Client::connect(&server, Kind::Tcp).await;
    c.send(register("ann", None)).await;
    c.expect_error("invite_required").await;
    c.send(register("ann", Some("00112233445566778899"))).await;
    c.expect_error("invalid_invite").await;
    for nick in ["ann", "ben"] {
        c.send(register(nick, Some(&code))).await;
        c.expect("registered").await;
    }
    c.send(register("cid", Some(&code))).await;
    c.expect_error("invalid_invite").await;
    // A refused code created nothing: cid is still free, ann works.
    let (_, welcome) = Client::hello_with(
        &server,
        Kind::Ws,
        json!({"type":"hello","nick":"cid","password":"correct horse"}),
    )
    .await;
    assert_eq!(welcome["code"], "no_such_account", "{welcome}");
    let (_, welcome) = Client::hello_with(
        &server,
        Kind::Ws,
        json!({"type":"hello","nick":"ann","password":"correct horse"}),
    )
    .await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

/// A few addresses cannot fill the server's room limit: rooms opened per
/// address (and per account) are limited over time, while joining a room
/// that is open is not.
#[tokio::test]
async fn rooms_opened_are_limited_per_address() {
    let server = TestServer::start_with(&["--new-rooms-per-hour", "3"]);
    let mut opener = Client::hello(&server, Kind::Tcp, "opener").await;
    for room in ["a", "b", "c"] {
        opener.join(room).await;
    }
    opener.join_err("d", "rate_limited").await;
    let mut other = Client::hello(&server, Kind::Ws, "other").await;
    other.join_err("e", "rate_limited").await;
    other.join("a").await;
    let mut elsewhere = Client::tcp_from(&server, "127.0.0.2").await;
    elsewhere
        .send(json!({"type":"hello","nick":"elsewhere"}))
        .await;
    elsewhere.expect("welcome").await;
    elsewhere.join("d").await;
}

#[tokio::test]
async fn connections_per_address_are_limited_on_every_listener() {
    let server = TestServer::start_with(&[
        "--max-connections-per-address",
        "2",
        "--handshake-rate",
        "0",
    ]);
    let mut first = Client::hello(&server, Kind::Ws, "first").await;
    let mut second = IrcClient::register(&server, "second").await;
    // TCP: told why, then closed.
    let mut third = Client::connect(&server, Kind::Tcp).await;
    let seen = third.until_closed(WAIT).await;
    assert!(
        seen.iter()
            .any(|m| m["type"] == "closing" && m["code"] == "too_many_connections"),
        "{seen:?}"
    );
    // IRC: an ERROR line, then closed.
    let mut irc = IrcClient::connect(&server).await;
    let line = irc.recv().await;
    assert!(
        line.starts_with("ERROR") && line.contains("too many connections"),
        "{line}"
    );
    assert_eq!(irc.next_within(WAIT).await, IrcNext::Closed);
    // WebSocket: 429 before the upgrade.
    let (status, body) = http_get(
        server.http,
        "/ws",
        &[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade, close"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("too many connections"), "{body}");
    // Plain HTTP counts too: the address is at its limit.
    let (status, body) = http_get(server.http, "/healthz", &[]).await;
    assert_eq!(status, 429, "{body}");
    // Those already in are unaffected, and a closed one frees its slot.
    first.assert_usable().await;
    second.assert_usable().await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut again = Client::hello(&server, Kind::Tcp, "again").await;
    again.assert_usable().await;
}

#[tokio::test]
async fn handshakes_per_address_are_rate_limited() {
    let server = TestServer::start_with(&["--handshake-rate", "0.5", "--handshake-burst", "2"]);
    let mut a = Client::hello(&server, Kind::Tcp, "a").await;
    let mut b = Client::hello(&server, Kind::Tcp, "b").await;
    let mut c = Client::connect(&server, Kind::Tcp).await;
    let seen = c.until_closed(WAIT).await;
    let closing = seen
        .iter()
        .find(|m| m["type"] == "closing")
        .unwrap_or_else(|| panic!("{seen:?}"));
    assert_eq!(closing["code"], "too_many_connections");
    assert!(
        closing["message"].as_str().unwrap().contains("retry in"),
        "{closing}"
    );
    a.assert_usable().await;
    b.assert_usable().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_http_connections_from_one_address_lock_no_one_else_out() {
    // A request head may take far longer than the test: whatever a silent
    // connection holds, it holds throughout. The per-address defaults,
    // and 100 connections in all, fewer than the silent ones.
    let server = TestServer::start_with(&[
        "--memory-only",
        "--handshake-timeout",
        "600",
        "--max-connections",
        "100",
    ]);
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(tokio::net::TcpStream::connect(server.http).await.unwrap());
    }
    // Another address still chats from the browser's transport.
    let mut web = Client::ws_from(&server, "127.0.0.2").await;
    web.send(json!({"type": "hello", "nick": "web"})).await;
    web.expect("welcome").await;
    web.join("lobby").await;
    let mut other = Client::ws_from(&server, "127.0.0.3").await;
    other.send(json!({"type": "hello", "nick": "other"})).await;
    other.expect("welcome").await;
    other.join("lobby").await;
    web.send(say("lobby", "still here", 1)).await;
    assert_eq!(other.wait_for("message").await["text"], "still here");
    // Those over the address's limit were refused at once, with a reason.
    let mut refused = 0;
    for mut s in silent {
        use tokio::io::AsyncReadExt;
        let mut got = Vec::new();
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_millis(50), s.read_to_end(&mut got)).await
            && String::from_utf8_lossy(&got).starts_with("HTTP/1.1 429")
        {
            refused += 1;
        }
    }
    assert!(refused >= 250, "{refused} of 300 refused");
}

#[tokio::test(start_paused = true)]
async fn an_http_response_nobody_reads_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A file far larger than the sockets' buffers, and the default write
    // timeout (30 s) on tokio's paused clock.
    let dir = TempDir::new();
    let size = 64 << 20;
    std::fs::write(dir.path().join("big.bin"), vec![7u8; size]).unwrap();
    let web_dir = dir.path().to_str().unwrap().to_string();
    TestServer::here(&["--web-dir", &web_dir], |server| async move {
        // The whole server (not only its address) lives to the end.
        let server = server;
        let mut s = tokio::net::TcpStream::connect(server.http).await.unwrap();
        s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nAccept-Encoding: identity\r\n\r\n")
            .await
            .unwrap();
        // Read nothing for longer than the write timeout...
        tokio::time::sleep(Duration::from_secs(120)).await;
        // ...then all there is: the server gave up on the rest.
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got).await;
        assert!(
            got.len() < size,
            "the whole response came ({} bytes): the server waited for the reader forever",
            got.len()
        );
        assert!(got.starts_with(b"HTTP/1.1 200"));
    })
    .await;
}
