//! IRC over WebSocket (IRCv3 `extensions/websocket`) at `GET /irc`, over
//! real sockets: the subprotocols (`binary.ircv3.net`, `text.ircv3.net`,
//! or none, as gamja asks), one IRC line per message without CR LF, the
//! same users and rooms as every other transport, and `/ws`'s origin
//! rules.

mod common;

use std::time::Duration;

use common::{Client, Kind, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `/irc` offering `protocols` (and `origin`, if given): the
/// socket and the subprotocol the server chose.
async fn connect(
    server: &TestServer,
    protocols: &[&str],
    origin: Option<&str>,
) -> Result<(Socket, Option<String>), tokio_tungstenite::tungstenite::Error> {
    connect_at(server, "/irc", protocols, origin).await
}

/// [`connect`] at `path`.
async fn connect_at(
    server: &TestServer,
    path: &str,
    protocols: &[&str],
    origin: Option<&str>,
) -> Result<(Socket, Option<String>), tokio_tungstenite::tungstenite::Error> {
    let mut request = format!("ws://{}{path}", server.http)
        .into_client_request()
        .unwrap();
    if !protocols.is_empty() {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(&protocols.join(", ")).unwrap(),
        );
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", HeaderValue::from_str(origin).unwrap());
    }
    let (ws, response) = tokio_tungstenite::connect_async(request).await?;
    let chosen = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .map(|v| v.to_str().unwrap().to_string());
    Ok((ws, chosen))
}

/// The next IRC line and whether it came in a binary frame.
async fn next_line(ws: &mut Socket) -> (String, bool) {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a line in time")
            .expect("the socket is open")
            .expect("a WebSocket message");
        let (bytes, binary) = match message {
            Message::Text(text) => (text.as_bytes().to_vec(), false),
            Message::Binary(bytes) => (bytes.to_vec(), true),
            _ => continue,
        };
        let line = String::from_utf8(bytes).unwrap();
        assert!(
            !line.contains('\r') && !line.contains('\n'),
            "one line per message, without CR LF: {line:?}"
        );
        return (line, binary);
    }
}

/// Lines until one that `wanted` accepts.
async fn wait_line(ws: &mut Socket, wanted: impl Fn(&str) -> bool) -> String {
    loop {
        let (line, _) = next_line(ws).await;
        if wanted(&line) {
            return line;
        }
    }
}

async fn send(ws: &mut Socket, line: &str) {
    ws.send(Message::text(line)).await.unwrap();
}

async fn register(ws: &mut Socket, nick: &str) {
    send(ws, &format!("NICK {nick}")).await;
    send(ws, &format!("USER {nick} 0 * :{nick} on the web")).await;
    wait_line(ws, |l| l.contains(" 001 ")).await;
    wait_line(ws, |l| l.contains(" 376 ") || l.contains(" 422 ")).await;
}

#[tokio::test]
async fn irc_over_websocket_chats_with_every_transport() {
    let server = TestServer::start();
    let (mut ws, chosen) = connect(&server, &["text.ircv3.net"], None).await.unwrap();
    assert_eq!(chosen.as_deref(), Some("text.ircv3.net"));
    send(&mut ws, "NICK webirc").await;
    send(&mut ws, "USER webirc 0 * :Web IRC").await;
    let (welcome, binary) = next_line(&mut ws).await;
    assert!(!binary, "text.ircv3.net: text frames");
    assert!(welcome.contains(" 001 webirc "), "{welcome}");
    send(&mut ws, "JOIN #lobby").await;
    wait_line(&mut ws, |l| l.contains(" 366 webirc #lobby ")).await;

    // A web user and an IRC-over-WebSocket user in one room.
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    bob.join("lobby").await;
    wait_line(&mut ws, |l| l.starts_with(":bob!") && l.contains(" JOIN ")).await;
    bob.send(serde_json::json!({"type":"say","room":"lobby","text":"hello irc"}))
        .await;
    let line = wait_line(&mut ws, |l| l.contains("PRIVMSG")).await;
    assert!(
        line.starts_with(":bob!") && line.ends_with("PRIVMSG #lobby :hello irc"),
        "{line}"
    );
    assert_eq!(
        bob.wait_for("message").await["from"],
        "bob",
        "bob's own first"
    );
    send(&mut ws, "PRIVMSG #lobby :hi bob").await;
    let heard = bob.wait_for("message").await;
    assert_eq!(
        (heard["from"].as_str(), heard["text"].as_str()),
        (Some("webirc"), Some("hi bob"))
    );

    // Lenient: a message holding several lines, each ended by CR LF.
    send(&mut ws, "PING :one\r\nPING :two\r\n").await;
    wait_line(&mut ws, |l| l.contains("PONG") && l.ends_with(":one")).await;
    wait_line(&mut ws, |l| l.contains("PONG") && l.ends_with(":two")).await;

    // QUIT: an ERROR line, then the close.
    send(&mut ws, "QUIT :bye").await;
    let error = wait_line(&mut ws, |l| l.starts_with("ERROR")).await;
    assert!(error.contains("Quit: bye"), "{error}");
    let quit = bob.wait_for("presence").await;
    assert_eq!(
        (quit["event"].as_str(), quit["reason"].as_str()),
        (Some("quit"), Some("bye"))
    );
}

#[tokio::test]
async fn binary_is_preferred_and_no_subprotocol_means_text() {
    let server = TestServer::start();
    let (mut ws, chosen) = connect(&server, &["text.ircv3.net", "binary.ircv3.net"], None)
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("binary.ircv3.net"));
    send(&mut ws, "NICK bin").await;
    send(&mut ws, "USER bin 0 * :bin").await;
    let (welcome, binary) = next_line(&mut ws).await;
    assert!(binary && welcome.contains(" 001 bin "), "{welcome}");

    // gamja offers no subprotocol: text frames, none named in the answer.
    let (mut ws, chosen) = connect(&server, &[], None).await.unwrap();
    assert_eq!(chosen, None);
    register(&mut ws, "gamja").await;
    send(&mut ws, "PING :x").await;
    let (pong, binary) = next_line(&mut ws).await;
    assert!(!binary && pong.contains("PONG"), "{pong}");
}

#[tokio::test]
async fn a_foreign_page_may_not_open_irc_over_websocket() {
    let server = TestServer::start_with(&["--allowed-origin", "https://chat.example.org"]);
    let refused = connect(&server, &["text.ircv3.net"], Some("https://evil.example"))
        .await
        .expect_err("refused");
    assert!(refused.to_string().contains("403"), "{refused}");
    let (mut ws, _) = connect(
        &server,
        &["text.ircv3.net"],
        Some("https://chat.example.org"),
    )
    .await
    .unwrap();
    register(&mut ws, "kiwi").await;
}

/// Past the flood backlog, an IRC-over-WebSocket client is disconnected
/// as on the IRC port; a quiet one is kept alive by WebSocket pings.
#[tokio::test]
async fn flood_control_holds_on_websocket_too() {
    let server = TestServer::start_with(&[
        "--irc-flood-burst",
        "5",
        "--irc-flood-rate",
        "1",
        "--irc-flood-backlog",
        "10",
    ]);
    let (mut ws, _) = connect(&server, &[], None).await.unwrap();
    register(&mut ws, "flooder").await;
    for n in 0..60 {
        if ws.send(Message::text(format!("PING :{n}"))).await.is_err() {
            break;
        }
    }
    let error = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.starts_with("ERROR") => return t.to_string(),
                Some(Ok(_)) => continue,
                other => panic!("closed without ERROR: {other:?}"),
            }
        }
    })
    .await
    .expect("ERROR in time");
    assert!(error.contains("Excess Flood"), "{error}");
}

/// A WebSocket upgrade of `/` is IRC too (web IRC clients and test suites
/// given the bare host); a plain `GET /` is still the page.
#[tokio::test]
async fn the_bare_host_takes_irc_over_websocket() {
    let server = TestServer::start();
    let (mut ws, chosen) = connect_at(&server, "/", &["text.ircv3.net"], None)
        .await
        .unwrap();
    assert_eq!(chosen.as_deref(), Some("text.ircv3.net"));
    ws.send(Message::text("NICK rooted")).await.unwrap();
    ws.send(Message::text("USER rooted 0 * :r")).await.unwrap();
    loop {
        let (line, _) = next_line(&mut ws).await;
        if line.contains(" 001 rooted ") {
            break;
        }
    }
    let (status, page) = common::http_get(server.http, "/", &[]).await;
    assert_eq!(status, 200);
    assert!(page.contains("<html"), "{page}");
}
