//! Hostile clients: thousands of garbage, oversized and half-open
//! connections against every listener (HTTP/WebSocket, JSON-lines TCP,
//! IRC) while legitimate users on all three keep chatting. Nobody
//! legitimate loses a message, the half-open connections are closed by
//! the server's timeouts, and the server's memory stays bounded (the
//! figures are printed; see docs/operating.md). And floods of every
//! request kind from one address, under the default limits, while a user
//! at another address chats on without losing a message.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use futures_util::SinkExt;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Per listener: connections that send nothing, that send random bytes,
/// and that send one huge line / header / frame.
const HALF_OPEN: usize = 300;
const GARBAGE: usize = 300;
const OVERSIZED: usize = 60;
/// Legitimate messages sent while the attack runs.
const MESSAGES: usize = 300;

/// xorshift: garbage without a dependency.
struct Noise(u64);

impl Noise {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                self.0 as u8
            })
            .collect()
    }
}

#[derive(Default)]
struct Tally {
    /// Half-open connections the server closed: HTTP, TCP, IRC.
    closed_by_server: [AtomicU64; 3],
    /// Connections the attack managed to open.
    opened: AtomicU64,
}

/// Holds a connection open without a byte, until the server closes it
/// (its handshake or header timeout) or 30 s pass.
async fn half_open(addr: SocketAddr, which: usize, tally: Arc<Tally>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                tally.closed_by_server[which].fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(Ok(_)) => {} // a closing notice, an error line: keep waiting
            Err(_) => return,
        }
    }
}

/// Random bytes (with newlines here and there), a short read, gone.
async fn garbage(addr: SocketAddr, seed: u64, http: bool, tally: Arc<Tally>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    let mut noise = Noise(seed | 1);
    let mut data = if http {
        b"GET /ws HTTP/1.1\r\nHost: x\r\n".to_vec()
    } else {
        Vec::new()
    };
    data.extend(noise.bytes(2048));
    let _ = tokio::time::timeout(Duration::from_secs(5), s.write_all(&data)).await;
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await;
}

/// One megabyte without a line end (or as one HTTP header).
async fn oversized(addr: SocketAddr, http: bool, tally: Arc<Tally>) {
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return;
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    if http {
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ").await;
    }
    let chunk = vec![b'a'; 64 * 1024];
    let write = async {
        for _ in 0..16 {
            if s.write_all(&chunk).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), write).await;
}

/// WebSocket clients that upgrade properly, then misbehave: garbage text
/// frames, then a frame far over the limit.
async fn bad_websocket(url: String, seed: u64, tally: Arc<Tally>) {
    let Ok(Ok((mut ws, _))) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    else {
        return;
    };
    tally.opened.fetch_add(1, Ordering::Relaxed);
    let mut noise = Noise(seed | 1);
    let send = async {
        for _ in 0..5 {
            let text = String::from_utf8_lossy(&noise.bytes(200)).into_owned();
            ws.send(Message::text(text)).await?;
        }
        ws.send(Message::text("x".repeat(200_000))).await
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), send).await;
}

async fn attack(server: &TestServer, tally: Arc<Tally>) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..HALF_OPEN.max(GARBAGE).max(OVERSIZED) {
        let listeners = [
            (server.http, true),
            (server.tcp, false),
            (server.irc, false),
        ];
        for (which, (addr, http)) in listeners.into_iter().enumerate() {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            if i < HALF_OPEN {
                tasks.spawn(half_open(addr, which, tally.clone()));
            }
            if i < GARBAGE {
                tasks.spawn(garbage(addr, seed, http, tally.clone()));
            }
            if i < OVERSIZED {
                tasks.spawn(oversized(addr, http, tally.clone()));
            }
        }
        if i < OVERSIZED {
            tasks.spawn(bad_websocket(server.ws_url(), seed, tally.clone()));
        }
        if i % 20 == 0 {
            // Waves, not one instant: the attack overlaps the chat.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    while tasks.join_next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_clients_do_not_disturb_legitimate_ones() {
    let server = TestServer::child_with(&[
        // One test address plays a whole botnet: the per-address limits
        // would refuse it at once, so they are off; the rest are defaults
        // except a short handshake timeout.
        "--max-connections-per-address",
        "0",
        "--handshake-rate",
        "0",
        "--message-rate",
        "0",
        "--handshake-timeout",
        "3",
    ]);
    let mut sender = Client::hello(&server, Kind::Ws, "sender").await;
    let mut tcp = Client::hello(&server, Kind::Tcp, "bot").await;
    let mut irc = IrcClient::register(&server, "irky").await;
    sender.join("lobby").await;
    tcp.join("lobby").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    let rss_before = server.rss_kib();

    let tally = Arc::new(Tally::default());
    let peak = Arc::new(AtomicU64::new(rss_before));
    let pid_server = &server;
    let started = Instant::now();
    let chat = async {
        for i in 0..MESSAGES {
            sender
                .send(json!({"type": "say", "room": "lobby", "text": format!("m{i}")}))
                .await;
            tokio::time::sleep(Duration::from_millis(10)).await;
            peak.fetch_max(pid_server.rss_kib(), Ordering::Relaxed);
        }
        // Every message, in order, on TCP and on IRC.
        for i in 0..MESSAGES {
            let m = tcp.wait_for("message").await;
            assert_eq!(m["text"], format!("m{i}"), "TCP lost or reordered");
            let line = irc.wait_for("PRIVMSG").await;
            assert!(
                line.ends_with(&format!(" :m{i}")),
                "IRC lost or reordered: {line}"
            );
        }
    };
    let sample = async {
        loop {
            peak.fetch_max(pid_server.rss_kib(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = async { tokio::join!(chat, attack(&server, tally.clone())) } => {}
        _ = sample => unreachable!(),
    }
    let attack_secs = started.elapsed().as_secs_f64();
    let rss_peak = peak.load(Ordering::Relaxed);

    // The half-open ones were closed by the server, not left hanging.
    let opened = tally.opened.load(Ordering::Relaxed);
    let closed = tally
        .closed_by_server
        .each_ref()
        .map(|c| c.load(Ordering::Relaxed));
    assert!(opened as usize >= 3 * (HALF_OPEN + GARBAGE + OVERSIZED) * 9 / 10);
    assert_eq!(
        closed, [HALF_OPEN as u64; 3],
        "every half-open connection (HTTP, TCP, IRC) is closed by a server timeout"
    );
    // Only the legitimate three are left, and they still work.
    let mut left = None;
    for _ in 0..100 {
        let (_, m) = http_get(server.admin(), "/metrics", &[]).await;
        let open: f64 = m
            .lines()
            .filter(|l| l.starts_with("banter_connections{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        left = Some(open);
        if open == 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(left, Some(3.0), "sessions left after the attack");
    sender.send(json!({"type": "ping", "ref": "after"})).await;
    assert_eq!(sender.wait_for("pong").await["ref"], "after");
    tcp.assert_usable().await;
    irc.assert_usable().await;
    let rss_after = server.rss_kib();
    eprintln!(
        "hostile: {opened} hostile connections in {attack_secs:.1}s; server RSS {} MiB before, \
         {} MiB peak, {} MiB after",
        rss_before / 1024,
        rss_peak / 1024,
        rss_after / 1024
    );
    assert!(
        rss_peak < rss_before + 256 * 1024,
        "memory grew by {} MiB under attack",
        (rss_peak - rss_before) / 1024
    );
}

/// One connection from `local` that says hello as `nick`, joins the lobby,
/// then sends `request` `times` times as fast as it can, reading (and
/// dropping) whatever comes back so that it is limited by the server's
/// rules, not by its own socket.
async fn flood(server_tcp: SocketAddr, local: &str, nick: String, request: serde_json::Value) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    let Ok(stream) = socket.connect(server_tcp).await else {
        return;
    };
    let (mut read, mut write) = stream.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let mut lines = format!(
        "{}\n{}\n",
        json!({"type":"hello","nick":nick}),
        json!({"type":"join","room":"lobby"})
    );
    for _ in 0..300 {
        lines.push_str(&request.to_string());
        lines.push('\n');
    }
    let _ = write.write_all(lines.as_bytes()).await;
    // Hold the connection a moment, then go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(write);
    drain.abort();
}

/// Floods of every request kind from one address, with the default
/// limits: a normal user at another address keeps chatting, and loses
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_of_every_request_kind_leave_others_chatting() {
    let server = TestServer::start();
    let mut alice = Client::hello(&server, Kind::Ws, "alice").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    let kinds = [
        json!({"type":"say","room":"lobby","text":"spam"}),
        json!({"type":"say","room":"lobby","text":"\u{1}".repeat(4000)}),
        json!({"type":"whisper","to":"bob","text":"spam"}),
        json!({"type":"join","room":"x"}),
        json!({"type":"part","room":"lobby"}),
        json!({"type":"nick","nick":"renamed"}),
        json!({"type":"away","message":"gone"}),
        json!({"type":"topic","room":"lobby","text":"spam"}),
        json!({"type":"kick","room":"lobby","nick":"bob"}),
        json!({"type":"ban","room":"lobby","nick":"bob"}),
        json!({"type":"op","room":"lobby","account":"bob"}),
        json!({"type":"register","nick":"squatter","password":"correct horse"}),
        json!({"type":"history","room":"lobby"}),
        json!({"type":"members","room":"lobby"}),
        json!({"type":"rooms"}),
        json!({"type":"whois","nick":"bob"}),
        json!({"type":"users","nicks":["bob","alice"]}),
        json!({"type":"hello","nick":"again"}),
        json!({"type":"ping"}),
        json!({"type":"no such type"}),
    ];
    let attack = async {
        let mut tasks = tokio::task::JoinSet::new();
        for (i, request) in kinds.iter().enumerate() {
            for copy in 0..2 {
                let nick = format!("f{i}x{copy}");
                tasks.spawn(flood(server.tcp, "127.0.0.2", nick, request.clone()));
            }
        }
        // And wrong passwords for alice's nick, on new connections.
        for _ in 0..20 {
            let hello = json!({"type":"hello","nick":"victim","password":"wrong guess"});
            tasks.spawn(flood(server.tcp, "127.0.0.2", "unused".into(), hello));
        }
        while tasks.join_next().await.is_some() {}
    };
    let chat = async {
        for i in 0..30 {
            // A burst of 15, then within the rate (5 a second after a burst
            // of 20: the 5 left cover the server reading the burst later
            // than the next message, on a busy machine).
            if i >= 15 {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            alice
                .send(json!({"type":"say","room":"lobby","text":format!("m{i}")}))
                .await;
        }
        bob.send(json!({"type":"whisper","to":"alice","text":"still here"}))
            .await;
    };
    tokio::join!(attack, chat);
    // Bob got every message of alice's, in order, and alice the whisper.
    let mut got = Vec::new();
    let mut seen = std::collections::BTreeMap::new();
    while got.len() < 30 {
        let m = match bob.next_within(Duration::from_secs(10)).await {
            Next::Msg(m) => m,
            other => panic!("{other:?} after {got:?}; bob saw {seen:?}"),
        };
        *seen.entry(m["type"].to_string()).or_insert(0) += 1;
        if m["type"] == "message" && m["from"] == "alice" {
            got.push(m["text"].as_str().unwrap().to_string());
        }
    }
    let want: Vec<String> = (0..30).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    let (mut echoes, mut whispered) = (0, false);
    while echoes < 30 || !whispered {
        let m = alice.recv().await;
        assert_ne!(m["type"], "error", "alice was refused: {m}");
        assert_ne!(m["type"], "lagged", "alice lost messages: {m}");
        if m["type"] == "message" && m["from"] == "alice" {
            echoes += 1;
        }
        whispered |= m["type"] == "direct" && m["text"] == "still here";
    }
    alice.assert_usable().await;
    // Bob, in the flooded room, has more to read; he is still served.
    bob.send(json!({"type": "ping", "ref": "alive?"})).await;
    assert_eq!(bob.wait_for("pong").await["ref"], "alive?");
}
