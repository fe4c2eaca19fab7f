//! What an operator relies on: `/healthz`, `/readyz`, `/metrics` counters
//! that move with the traffic, JSON logs, and no message text in the logs.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

/// The value of one sample line (`name{labels} value`) in `/metrics`.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{metrics}"))
}

async fn scrape(server: &TestServer) -> String {
    let (status, body) = http_get(server.admin(), "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(
        body.ends_with("# EOF\n"),
        "OpenMetrics text ends with # EOF"
    );
    body
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::start();
    assert_eq!(
        http_get(server.http, "/healthz", &[]).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        http_get(server.http, "/readyz", &[]).await,
        (200, "ready\n".into())
    );
    let memory = TestServer::start_with(&["--memory-only"]);
    assert_eq!(http_get(memory.http, "/readyz", &[]).await.0, 200);
}

#[tokio::test]
async fn metrics_counters_move_with_the_traffic() {
    let server = TestServer::start_with(&["--message-rate", "1", "--message-burst", "2"]);
    let before = scrape(&server).await;
    assert_eq!(sample(&before, "banter_connections{transport=\"ws\"}"), 0.0);
    assert_eq!(sample(&before, "banter_deliveries_total"), 0.0);

    let mut ws = Client::hello(&server, Kind::Ws, "webby").await;
    let mut tcp = Client::hello(&server, Kind::Tcp, "bot").await;
    let mut irc = IrcClient::register(&server, "irky").await;
    ws.join("lobby").await;
    tcp.join("lobby").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    ws.send(json!({"type": "say", "room": "lobby", "text": "one"}))
        .await;
    ws.send(json!({"type": "say", "room": "lobby", "text": "two"}))
        .await;
    ws.send(json!({"type": "say", "room": "lobby", "text": "three"}))
        .await;
    assert_eq!(ws.wait_for("error").await["code"], "rate_limited");
    for _ in 0..2 {
        tcp.wait_for("message").await;
        irc.wait_for("PRIVMSG").await;
    }

    let m = scrape(&server).await;
    assert_eq!(sample(&m, "banter_connections{transport=\"ws\"}"), 1.0);
    assert_eq!(sample(&m, "banter_connections{transport=\"tcp\"}"), 1.0);
    assert_eq!(sample(&m, "banter_connections{transport=\"irc\"}"), 1.0);
    // hello, join and three says.
    assert!(sample(&m, "banter_messages_in_total{transport=\"ws\"}") >= 5.0);
    assert!(sample(&m, "banter_messages_in_total{transport=\"irc\"}") >= 2.0);
    // Two messages to three members, and the replies.
    assert!(sample(&m, "banter_deliveries_total") >= 6.0);
    assert!(sample(&m, "banter_messages_out_total{transport=\"tcp\"}") >= 4.0);
    assert_eq!(
        sample(&m, "banter_rate_limited_total{kind=\"messages\"}"),
        1.0
    );
    assert_eq!(sample(&m, "banter_rate_limited_total{kind=\"joins\"}"), 0.0);
    assert!(sample(&m, "banter_fanout_seconds_count") >= 2.0);
    assert!(sample(&m, "banter_store_commit_seconds_count") >= 1.0);

    drop(tcp);
    let mut closed = false;
    for _ in 0..50 {
        let m = scrape(&server).await;
        if sample(&m, "banter_connections{transport=\"tcp\"}") == 0.0 {
            assert_eq!(
                sample(&m, "banter_disconnects_total{reason=\"client\"}"),
                1.0
            );
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(closed, "the TCP connection is no longer counted");
    ws.send(json!({"type": "ping", "ref": "still"})).await;
    assert_eq!(ws.wait_for("pong").await["ref"], "still");
}

#[tokio::test]
async fn json_logs_and_no_message_text_in_them() {
    // The tests log at debug for banter: the text must not appear even there.
    let server = TestServer::child_with(&["--log-format", "json"]);
    let mut a = Client::hello(&server, Kind::Tcp, "a").await;
    let mut b = Client::hello(&server, Kind::Ws, "b").await;
    a.join("lobby").await;
    b.join("lobby").await;
    let secret = "a-very-private-sentence-4711";
    a.send(json!({"type": "say", "room": "lobby", "text": secret}))
        .await;
    b.wait_for("message").await;
    a.send(json!({"type": "whisper", "to": "b", "text": secret}))
        .await;
    b.wait_for("direct").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = server.logs();
    let mut ready = false;
    for line in &logs {
        let entry: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["timestamp"].is_string(),
            "{line}"
        );
        ready |= entry["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("banter ready:"));
        assert!(!line.contains(secret), "message text in the log: {line}");
    }
    assert!(ready, "the ready line is logged: {logs:?}");
}

#[tokio::test]
async fn metrics_and_health_in_detail_are_for_operators_only() {
    let server = TestServer::start_with(&["--memory-only"]);
    // The chat port: health for load balancers, no metrics.
    assert_eq!(http_get(server.http, "/healthz", &[]).await.0, 200);
    assert_eq!(http_get(server.http, "/readyz", &[]).await.0, 200);
    assert_eq!(http_get(server.http, "/metrics", &[]).await.0, 404);
    // --admin: all three.
    assert_eq!(
        http_get(server.admin(), "/healthz", &[]).await,
        (200, "ok\n".into())
    );
    assert_eq!(
        http_get(server.admin(), "/readyz", &[]).await,
        (200, "ready\n".into())
    );
    scrape(&server).await;
    // --metrics-public puts /metrics back on the chat port.
    let public = TestServer::start_with(&["--memory-only", "--metrics-public"]);
    let (status, body) = http_get(public.http, "/metrics", &[]).await;
    assert_eq!(status, 200);
    assert!(body.contains("banter_connections"), "{body}");
}
