//! Connection lifecycle: handshake and idle timeouts, connection limits,
//! configuration sources, the command line, and graceful shutdown.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BOTH, Client, Kind, Next, TestServer};
use serde_json::json;
use tokio::time::Instant;

/// Virtual seconds since `start` (tokio's paused clock).
fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn silent_connections_time_out_without_hello() {
    // The default handshake timeout, 10 s, on tokio's paused clock.
    TestServer::here(&[], |server| async move {
        for kind in BOTH {
            let start = Instant::now();
            let mut c = Client::connect(&server, kind).await;
            let seen = c.until_closed(Duration::from_secs(60)).await;
            assert_eq!(seen.len(), 1, "{seen:?}");
            assert_eq!(seen[0]["type"], "closing");
            assert_eq!(seen[0]["code"], "handshake_timeout");
            // An alarm goes off at its deadline or up to a tick after it.
            let waited = since(start);
            assert!((10.0..10.5).contains(&waited), "closed after {waited} s");
        }
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn idle_clients_are_pinged_then_dropped() {
    // The defaults, on tokio's paused clock: a ping after 60 s of
    // silence, and the connection dropped 30 s later without an answer.
    TestServer::here(&[], |server| async move {
        let start = Instant::now();
        let mut mute = Client::hello(&server, Kind::Tcp, "mute").await;
        let mut polite = Client::hello(&server, Kind::Tcp, "polite").await;
        let mut browser = Client::hello(&server, Kind::Ws, "browser").await;
        let browser_task = tokio::spawn(async move {
            // A WebSocket client answers pings on its own while it reads.
            browser.assert_quiet(Duration::from_secs(200)).await;
            browser.assert_usable().await;
        });
        let minute = Duration::from_secs(120);
        let ping = |next| match next {
            Next::Msg(m) => m,
            other => panic!("expected a ping, got {other:?}"),
        };
        assert_eq!(
            ping(polite.next_within(minute).await),
            json!({"type":"ping"})
        );
        let pinged = since(start);
        assert!((60.0..60.5).contains(&pinged), "pinged after {pinged} s");
        polite.send(json!({"type":"pong"})).await;

        assert_eq!(ping(mute.next_within(minute).await)["type"], "ping");
        let rest = mute.until_closed(minute).await;
        assert_eq!(rest.len(), 1, "{rest:?}");
        assert_eq!(rest[0]["code"], "idle_timeout");
        let dropped = since(start);
        assert!((90.0..90.5).contains(&dropped), "dropped after {dropped} s");

        assert_eq!(ping(polite.next_within(minute).await)["type"], "ping");
        polite.send(json!({"type":"pong"})).await;
        polite.assert_usable().await;
        browser_task.await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn the_connection_limit_is_enforced_on_both_transports() {
    let server = TestServer::start_with(&["--max-connections", "2"]);
    let _a = Client::hello(&server, Kind::Ws, "a").await;
    let mut b = Client::hello(&server, Kind::Tcp, "b").await;
    let mut refused = Client::connect(&server, Kind::Tcp).await;
    let seen = refused.until_closed(Duration::from_secs(5)).await;
    assert_eq!(seen[0]["code"], "server_full", "{seen:?}");
    match tokio_tungstenite::connect_async(server.ws_url()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
    // A freed slot can be used again.
    b.send(json!({"type":"ping"})).await;
    b.expect("pong").await;
    drop(b);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Client::hello(&server, Kind::Tcp, "c").await;
}

#[tokio::test]
async fn foreign_origins_may_not_open_a_websocket() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start();
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let mut request = server.ws_url().into_client_request().unwrap();
    let own = format!("http://{}", server.http);
    request.headers_mut().insert("Origin", own.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn settings_come_from_file_environment_and_flags() {
    let dir = std::env::temp_dir().join(format!("banter-lifecycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("banter.toml");
    std::fs::write(
        &file,
        "max-text-bytes = 300\nmax-rooms-per-session = 7\nidle-timeout = 45\n",
    )
    .unwrap();
    let server = TestServer::child_env(
        &["--config", file.to_str().unwrap(), "--idle-timeout", "50"],
        &[("BANTER_MAX_ROOMS_PER_SESSION", "2")],
    );
    let mut c = Client::connect(&server, Kind::Tcp).await;
    c.send(json!({"type":"hello","nick":"cfg"})).await;
    let limits = c.expect("welcome").await["limits"].clone();
    assert_eq!(limits["max_text_bytes"], 300, "from the file");
    assert_eq!(limits["max_rooms"], 2, "the environment beats the file");
    assert_eq!(limits["idle_timeout_secs"], 50, "a flag beats the file");
    c.join("one").await;
    c.join("two").await;
    c.send(json!({"type":"join","room":"three"})).await;
    c.expect_error("too_many_rooms").await;
}

#[test]
fn help_version_and_bad_settings() {
    let bin = env!("CARGO_BIN_EXE_banter");
    let help = Command::new(bin).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for needle in [
        "--http",
        "--tcp",
        "--data-dir",
        "--config",
        "BANTER_HTTP",
        "127.0.0.1:8080",
        "127.0.0.1:7878",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let version = Command::new(bin).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("banter {}", env!("CARGO_PKG_VERSION"))
    );

    let bad = Command::new(bin)
        .args(["--max-text-bytes", "999999"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("max-frame-bytes"));

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let busy = Command::new(bin)
        .args(["--http", "127.0.0.1:0", "--tcp", &port])
        .output()
        .unwrap();
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("cannot listen"));
}

#[tokio::test]
async fn sigterm_tells_clients_and_exits_cleanly() {
    let mut server = TestServer::child_with(&[]);
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    let mut bot = Client::hello(&server, Kind::Tcp, "bot").await;
    web.join("lobby").await;
    bot.join("lobby").await;
    web.expect("presence").await;
    server.signal("TERM");
    for c in [&mut web, &mut bot] {
        let seen = c.until_closed(Duration::from_secs(10)).await;
        let closing = seen
            .iter()
            .find(|m| m["type"] == "closing")
            .expect("a closing notice");
        assert_eq!(closing["code"], "shutting_down");
    }
    let status = server.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("shut down cleanly"))
    );
}
