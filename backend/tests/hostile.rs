//! Hostile clients: thousands of garbage, oversized and half-open
//! connections against every listener (HTTP/WebSocket, JSON-lines TCP,
//! IRC) while legitimate users on all three keep chatting. Nobody
//! legitimate loses a message, the half-open connections are closed by
//! the server's timeouts, and the server's memory stays bounded (the
//! figures are printed; see docs/operating.md).

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
