//! Every kind of bad input gets its specific error code, and the
//! connection stays usable wherever the stream is still readable.

mod common;

use common::{BOTH, Client, Kind, TestServer};
use serde_json::json;

#[tokio::test]
async fn each_bad_request_has_its_code_and_the_connection_survives() {
    let server = TestServer::start_with(&["--max-text-bytes", "100", "--max-frame-bytes", "1024"]);
    // Each client stays connected to the end: a finished one leaving
    // `lobby` would put its `quit` among the next one's expected replies.
    let mut done = Vec::new();
    for kind in BOTH {
        let mut c = Client::connect(&server, kind).await;
        // Before hello, only hello (and ping) are accepted.
        c.send(json!({"type":"join","room":"lobby","ref":"early"}))
            .await;
        assert_eq!(c.expect_error("not_registered").await["ref"], "early");
        c.send(json!({"type":"hello","nick":"9lives"})).await;
        c.expect_error("invalid_nick").await;
        c.send(json!({"type":"hello","nick":"x".repeat(25)})).await;
        c.expect_error("invalid_nick").await;
        c.send(json!({"type":"hello","nick":format!("ok{kind:?}")}))
            .await;
        c.expect("welcome").await;
        c.send(json!({"type":"hello","nick":"again"})).await;
        c.expect_error("already_registered").await;

        let cases: &[(&str, &str)] = &[
            ("{this is not json", "bad_json"),
            ("[1,2,3]", "bad_request"),
            (r#"{"room":"lobby"}"#, "missing_field"),
            (r#"{"type":"teleport"}"#, "unknown_type"),
            (r#"{"type":"join"}"#, "missing_field"),
            (r#"{"type":"say","room":"lobby"}"#, "missing_field"),
            (r#"{"type":"say","room":"lobby","text":42}"#, "bad_request"),
            (r##"{"type":"join","room":"#lobby"}"##, "invalid_room"),
            (
                r#"{"type":"join","room":"way-too-long-for-a-room-name-here-sorry"}"#,
                "invalid_room",
            ),
            (
                r#"{"type":"whisper","to":"no spaces","text":"x"}"#,
                "invalid_nick",
            ),
        ];
        for (raw, code) in cases {
            c.send_raw(raw).await;
            let err = c.expect_error(code).await;
            assert!(err.get("ref").is_none());
        }
        c.join("lobby").await;
        c.send(json!({"type":"say","room":"lobby","text":"é".repeat(51),"ref":"long"}))
            .await;
        let err = c.expect_error("text_too_long").await;
        assert_eq!(err["ref"], "long");
        assert!(err["message"].as_str().unwrap().contains("100"), "{err}");
        c.send(json!({"type":"say","room":"lobby","text":"   "}))
            .await;
        c.expect_error("empty_text").await;
        c.send(json!({"type":"say","room":"lobby","text":"nul\u{0}byte"}))
            .await;
        c.expect_error("invalid_text").await;
        c.assert_usable().await;
        // A message exactly at the limit goes through.
        c.send(json!({"type":"say","room":"lobby","text":"é".repeat(50)}))
            .await;
        c.expect("message").await;
        done.push(c);
    }
}

#[tokio::test]
async fn an_overlong_line_is_skipped_and_the_tcp_stream_goes_on() {
    let server = TestServer::start_with(&["--max-frame-bytes", "1024", "--max-text-bytes", "512"]);
    let mut c = Client::hello(&server, Kind::Tcp, "liner").await;
    let long = format!(r#"{{"type":"ping","ref":"{}"}}"#, "x".repeat(5000));
    c.send_raw(&long).await;
    let err = c.expect_error("line_too_long").await;
    assert!(err["message"].as_str().unwrap().contains("1024"), "{err}");
    c.assert_usable().await;
    // CRLF line endings and blank lines are fine too.
    c.send_raw("{\"type\":\"ping\",\"ref\":\"crlf\"}\r\n").await;
    assert_eq!(c.expect("pong").await["ref"], "crlf");
}

#[tokio::test]
async fn an_overlong_ws_frame_is_refused_and_the_socket_goes_on() {
    let server = TestServer::start_with(&["--max-frame-bytes", "1024", "--max-text-bytes", "512"]);
    let mut c = Client::hello(&server, Kind::Ws, "framer").await;
    c.send_raw(&format!(
        r#"{{"type":"ping","ref":"{}"}}"#,
        "x".repeat(2000)
    ))
    .await;
    c.expect_error("frame_too_long").await;
    c.assert_usable().await;
}

#[tokio::test]
async fn binary_frames_are_refused() {
    let server = TestServer::start();
    let mut c = Client::hello(&server, Kind::Ws, "binary").await;
    c.send_binary(b"\x00\x01\x02").await;
    c.expect_error("binary_unsupported").await;
    c.assert_usable().await;
}

#[tokio::test]
async fn garbage_bytes_on_tcp_get_errors_not_a_crash() {
    let server = TestServer::start();
    let mut c = Client::hello(&server, Kind::Tcp, "fuzz").await;
    c.send_binary(b"\xff\xfe\x00garbage\n").await;
    c.expect_error("bad_json").await;
    c.assert_usable().await;
}
