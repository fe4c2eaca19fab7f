//! Fan-out to many members, and slow consumers that must not hold the
//! room back or grow the server's memory.

mod common;

use std::time::Duration;

use common::{Client, Kind, Next, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_members_all_receive_a_broadcast() {
    // Hundreds of clients from one address.
    let server = TestServer::start_with(&[
        "--max-connections-per-address",
        "0",
        "--handshake-rate",
        "0",
    ]);
    let mut clients = Vec::new();
    for i in 0..500 {
        let kind = if i % 2 == 0 { Kind::Ws } else { Kind::Tcp };
        let mut c = Client::hello(&server, kind, &format!("user{i}")).await;
        c.join("crowd").await;
        clients.push(c);
    }
    clients[0]
        .send(json!({"type":"say","room":"crowd","text":"hello, everyone"}))
        .await;
    let mut first: Option<serde_json::Value> = None;
    for c in &mut clients {
        // Skip the join notices of those who came after.
        let msg = c.wait_for("message").await;
        assert_eq!(msg["text"], "hello, everyone");
        match &first {
            None => first = Some(msg),
            Some(f) => assert_eq!(&msg, f, "everyone sees the same message"),
        }
    }
}

/// Smaller than the `--outbox-len` the tests use, so a reader that keeps up
/// with the windows never lags.
const WINDOW: usize = 32;

/// Sends `count` messages of `text` into `room` from a fresh
/// `sender`, in windows of 32: after each window the sender and every
/// reader read what it produced, so readers never fall behind by more than
/// a window. Each reader must see every message, in order. Returns what
/// else the readers saw (presence and so on).
async fn flood(
    server: &TestServer,
    room: &str,
    count: usize,
    text: &str,
    readers: &mut [&mut Client],
) -> Vec<serde_json::Value> {
    let mut sender = Client::hello(server, Kind::Tcp, "sender").await;
    sender.join(room).await;
    for r in readers.iter_mut() {
        r.wait_for("presence").await;
    }
    let mut others = Vec::new();
    let mut last_ids = vec![0u64; readers.len()];
    let mut sent = 0;
    while sent < count {
        let n = WINDOW.min(count - sent);
        for _ in 0..n {
            sender
                .send(json!({"type":"say","room":room,"text":text}))
                .await;
        }
        sent += n;
        for _ in 0..n {
            sender.wait_for("message").await;
        }
        for (r, last_id) in readers.iter_mut().zip(&mut last_ids) {
            let mut got = 0;
            while got < n {
                let msg = match r.next_within(common::WAIT).await {
                    common::Next::Msg(m) => m,
                    other => panic!("reader stalled after {last_id} ({sent} sent): {other:?}"),
                };
                if msg["type"] != "message" {
                    others.push(msg);
                    continue;
                }
                let id = msg["id"].as_u64().unwrap();
                assert!(id > *last_id, "in order, without loss");
                *last_id = id;
                got += 1;
            }
        }
    }
    others
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_holds_nobody_back() {
    // In memory: what is measured is what the server keeps for a client
    // that does not read (the store's own memory under a flood of long
    // messages is its caches' and the message log's, bounded apart).
    let server =
        TestServer::child_with(&["--outbox-len", "64", "--message-rate", "0", "--memory-only"]);
    let mut sleeper = Client::hello(&server, Kind::Tcp, "sleeper").await;
    sleeper.join("busy").await;
    let mut reader = Client::hello(&server, Kind::Ws, "reader").await;
    reader.join("busy").await;
    sleeper
        .send(json!({"type":"whisper","to":"reader","text":"I will not read"}))
        .await;
    reader.expect("direct").await;
    let rss_before = server.rss_kib();

    const COUNT: usize = 5000;
    flood(
        &server,
        "busy",
        COUNT,
        &"x".repeat(3000),
        &mut [&mut reader],
    )
    .await;

    // ~15 MB went to the sleeper; the server kept at most 64 frames of it
    // plus what the kernel's socket buffers took.
    let grown = server.rss_kib().saturating_sub(rss_before);
    eprintln!("server RSS grew by {grown} KiB during the flood");
    assert!(grown < 8 * 1024, "server memory grew by {grown} KiB");

    // When the sleeper finally reads, it learns what it lost and still
    // gets the newest messages.
    let mut lagged = 0;
    let mut last_id = 0;
    let mut messages = 0;
    loop {
        match sleeper.next_within(Duration::from_secs(2)).await {
            Next::Msg(m) if m["type"] == "lagged" => lagged += m["dropped"].as_u64().unwrap(),
            Next::Msg(m) if m["type"] == "message" => {
                messages += 1;
                last_id = m["id"].as_u64().unwrap();
            }
            Next::Msg(_) => {}
            Next::Closed => panic!("the sleeper was disconnected"),
            Next::Timeout => break,
        }
    }
    assert!(lagged > 0, "a lagged notice tells what was dropped");
    assert!(messages < COUNT);
    assert_eq!(last_id, COUNT as u64, "the newest message survived");
    sleeper.assert_usable().await;
}

/// Issue 22, finding 14: outboxes are bounded in bytes too. A client that
/// never reads, in a room flooded with texts of control characters (each
/// six times its size as JSON), has at most `--outbox-bytes` (default
/// 1 MiB) queued for it: when it reads at last, the messages after its
/// last `lagged` notice (what its outbox held) weigh no more than that,
/// every other message is accounted for, and a reader who keeps up loses
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_has_at_most_the_byte_bound_queued() {
    let server = TestServer::start_with(&["--memory-only", "--message-rate", "0"]);
    let bound = banter::config::Settings::default().outbox_bytes;
    // The sleeper's socket takes little, so the server holds the rest.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.tcp).await.unwrap();
    let (read, write) = stream.into_split();
    let mut sleeper = Client::Tcp {
        read: tokio::io::BufReader::new(read),
        write,
    };
    sleeper.send(json!({"type":"hello","nick":"sleeper"})).await;
    sleeper.expect("welcome").await;
    sleeper.join("busy").await;
    let mut reader = Client::hello(&server, Kind::Ws, "reader").await;
    reader.join("busy").await;

    // 2,600 bytes of text, 6 times that as JSON (as much as a request
    // under --max-frame-bytes can carry); 800 × 16 KB: far more than the
    // kernel's buffers and the bound.
    const COUNT: usize = 800;
    let text = "\u{2}".repeat(2600);
    let others = flood(&server, "busy", COUNT, &text, &mut [&mut reader]).await;
    assert!(
        others.iter().all(|m| m["type"] != "lagged"),
        "the reader lost nothing: {others:?}"
    );

    let (mut lagged, mut messages, mut after_lagged, mut last_id) = (0, 0, 0, 0);
    let mut weight = 0;
    loop {
        match sleeper.next_within(Duration::from_secs(2)).await {
            Next::Msg(m) if m["type"] == "lagged" => {
                lagged += m["dropped"].as_u64().unwrap() as usize;
                after_lagged = 0;
            }
            Next::Msg(m) if m["type"] == "message" => {
                messages += 1;
                after_lagged += 1;
                last_id = m["id"].as_u64().unwrap();
                weight = serde_json::to_string(&m).unwrap().len() + 1;
            }
            Next::Msg(_) => {}
            Next::Closed => panic!("the sleeper was disconnected"),
            Next::Timeout => break,
        }
    }
    eprintln!(
        "sleeper: {messages} messages of {weight} bytes, {lagged} dropped, \
         {after_lagged} after the last lagged notice"
    );
    assert!(lagged > 0, "past {bound} bytes, messages were dropped");
    assert_eq!(messages + lagged, COUNT, "each message came or was counted");
    assert!(
        after_lagged * weight <= bound,
        "{after_lagged} messages of {weight} bytes were queued: over {bound} bytes"
    );
    assert_eq!(last_id, COUNT as u64, "the newest message survived");
    sleeper.assert_usable().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_after_the_write_timeout() {
    let server = TestServer::start_with(&[
        "--outbox-len",
        "64",
        "--write-timeout",
        "1",
        "--message-rate",
        "0",
    ]);
    let mut sleeper = Client::hello(&server, Kind::Tcp, "sleeper").await;
    sleeper.join("busy").await;
    let mut watcher = Client::hello(&server, Kind::Ws, "watcher").await;
    watcher.join("busy").await;
    let mut seen = flood(
        &server,
        "busy",
        3000,
        &"x".repeat(4000),
        &mut [&mut watcher],
    )
    .await;
    // The watcher (who reads) sees the sleeper go: during the flood, or
    // after it, once the write has waited its second (how long the flood
    // takes depends on the machine).
    let quit = |m: &serde_json::Value| {
        m["type"] == "presence" && m["nick"] == "sleeper" && m["event"] == "quit"
    };
    while !seen.iter().any(quit) {
        match watcher.next_within(Duration::from_secs(5)).await {
            Next::Msg(m) => seen.push(m),
            other => panic!("the sleeper is still there: {other:?}; saw {seen:?}"),
        }
    }
    sleeper.until_closed(Duration::from_secs(20)).await;
    assert!(
        server.logs().iter().any(|l| l.contains("slow_consumer")),
        "the server logged why"
    );
}
