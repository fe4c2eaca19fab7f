//! TLS on every listener with an rcgen-made certificate: HTTPS, WSS chat,
//! JSON lines over TLS, IRC over TLS, and reloading the certificate on
//! SIGHUP without dropping connections.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter::net::proxy_protocol::{v1_header, v2_header};
use common::{TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

/// A CA and a `localhost` certificate it signed.
struct Pki {
    ca: CertificateDer<'static>,
    leaf: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        leaf: leaf.der().clone(),
        cert_pem: leaf.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn write_pair(dir: &Path, pki: &Pki) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    // Written to a new name and renamed, as certbot and friends do.
    for (path, text) in [(&cert, &pki.cert_pem), (&key, &pki.key_pem)] {
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (cert, key)
}

/// A client that trusts `cas`, offers `alpn`, and never resumes a session
/// (a resumed session shows the certificate of the one it resumes).
fn connector(cas: &[&CertificateDer<'static>], alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots.add((*ca).clone()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

async fn tls(addr: SocketAddr, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tokio::time::timeout(
        WAIT,
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("a TLS handshake in time")
    .expect("a TLS handshake")
}

fn server_cert(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// The address after `key=` in the `banter ready:` line.
fn ready_addr(server: &TestServer, key: &str) -> SocketAddr {
    wait_log(server, "banter ready: ");
    let logs = server.logs();
    let ready = logs
        .iter()
        .find_map(|l| l.split("banter ready: ").nth(1))
        .unwrap();
    ready
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {ready}"))
        .parse()
        .unwrap()
}

/// Lines over a TLS stream.
struct Lines {
    read: BufReader<ReadHalf<TlsStream<TcpStream>>>,
    write: WriteHalf<TlsStream<TcpStream>>,
}

impl Lines {
    fn new(stream: TlsStream<TcpStream>) -> Lines {
        let (read, write) = tokio::io::split(stream);
        Lines {
            read: BufReader::new(read),
            write,
        }
    }

    async fn send(&mut self, line: &str) {
        self.write.write_all(line.as_bytes()).await.unwrap();
        self.write.flush().await.unwrap();
    }

    async fn recv(&mut self) -> String {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.read.read_line(&mut line))
            .await
            .expect("a line in time")
            .unwrap();
        assert!(n > 0, "the server closed the connection");
        line.trim_end().to_string()
    }

    async fn wait_for(&mut self, part: &str) -> String {
        loop {
            let line = self.recv().await;
            if line.contains(part) {
                return line;
            }
        }
    }
}

async fn irc_register(addr: SocketAddr, connector: &TlsConnector, nick: &str) -> Lines {
    let mut irc = Lines::new(tls(addr, connector).await);
    irc.send(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"))
        .await;
    irc.wait_for(&format!(" 001 {nick} ")).await;
    irc.wait_for(" 376 ").await;
    irc
}

fn start(dir: &Path) -> TestServer {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    TestServer::child_with(&[
        "--memory-only",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--http-tls",
        "--tcp-tls",
        "--irc-tls",
        "127.0.0.1:0",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listener_speaks_tls() {
    let dir = common::TempDir::new();
    let pki = pki();
    write_pair(dir.path(), &pki);
    let server = start(dir.path());
    let ircs = ready_addr(&server, "ircs=");

    // HTTPS, with ALPN http/1.1.
    let https = connector(&[&pki.ca], &[b"http/1.1"]);
    let mut stream = tls(server.http, &https).await;
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(server_cert(&stream), pki.leaf);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .ok();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");

    // Plain HTTP on the HTTPS port gets no page.
    let mut plain = TcpStream::connect(server.http).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut got)).await;
    assert!(!String::from_utf8_lossy(&got).contains("ok\n"));

    // WSS: a browser on https://localhost:PORT chats with a TLS IRC user.
    let origin = format!("https://localhost:{}", server.http.port());
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://localhost:{}/ws",
            server.http.port()
        ))
        .unwrap();
    request
        .headers_mut()
        .insert("origin", origin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls(server.http, &https).await)
        .await
        .expect("WSS upgrade");
    ws_send(&mut ws, json!({"type": "hello", "nick": "webby"})).await;
    ws_send(&mut ws, json!({"type": "join", "room": "lobby"})).await;

    let plain_tls = connector(&[&pki.ca], &[]);
    let mut irc = irc_register(ircs, &plain_tls, "ircy").await;
    irc.send("JOIN #lobby\r\n").await;
    irc.wait_for(" 366 ").await;

    // JSON lines over TLS.
    let mut bot = Lines::new(tls(server.tcp, &plain_tls).await);
    bot.send("{\"type\":\"hello\",\"nick\":\"boty\"}\n").await;
    assert!(bot.recv().await.contains("\"welcome\""));
    bot.send("{\"type\":\"join\",\"room\":\"lobby\"}\n").await;
    bot.wait_for("\"joined\"").await;

    ws_send(
        &mut ws,
        json!({"type": "say", "room": "lobby", "text": "over wss"}),
    )
    .await;
    let line = irc.wait_for("PRIVMSG #lobby").await;
    assert!(
        line.starts_with(":webby!") && line.ends_with(":over wss"),
        "{line}"
    );
    let line = bot.wait_for("\"message\"").await;
    assert!(line.contains("over wss"), "{line}");
    irc.send("PRIVMSG #lobby :over ircs\r\n").await;
    let line = bot.wait_for("over ircs").await;
    assert!(line.contains("\"from\":\"ircy\""), "{line}");
    let deadline = Instant::now() + WAIT;
    loop {
        let next = tokio::time::timeout(WAIT, ws.next()).await.unwrap();
        if let Some(Ok(Message::Text(t))) = next
            && t.contains("over ircs")
        {
            break;
        }
        assert!(Instant::now() < deadline);
    }

    // The plain IRC port is still plain.
    let mut irc = common::IrcClient::register(&server, "plain").await;
    irc.assert_usable().await;

    // A PROXY header where none is expected is refused, in plain text.
    let mut raw = TcpStream::connect(ircs).await.unwrap();
    let src: SocketAddr = "198.51.100.30:6000".parse().unwrap();
    raw.write_all(&v1_header(src, ircs)).await.unwrap();
    let mut refusal = String::new();
    let _ = tokio::time::timeout(WAIT, raw.read_to_string(&mut refusal)).await;
    assert!(
        refusal.starts_with("ERROR :") && refusal.contains("PROXY protocol"),
        "{refusal:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_protocol_header_comes_before_the_tls_handshake() {
    let dir = common::TempDir::new();
    let pki = pki();
    let (cert, key) = write_pair(dir.path(), &pki);
    let server = TestServer::start_with(&[
        "--memory-only",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--irc-tls",
        "127.0.0.1:0",
        "--irc-proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let ircs = ready_addr(&server, "ircs=");
    let mut tcp = TcpStream::connect(ircs).await.unwrap();
    let src: SocketAddr = "198.51.100.31:6001".parse().unwrap();
    tcp.write_all(&v2_header(src, ircs)).await.unwrap();
    let stream = connector(&[&pki.ca], &[])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS after the PROXY header");
    let mut irc = Lines::new(stream);
    irc.send("NICK viaproxy\r\nUSER v 0 * :v\r\n").await;
    irc.wait_for(" 001 viaproxy ").await;
    wait_log(&server, "peer=198.51.100.31:6001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = common::TempDir::new();
    let (old, new) = (pki(), pki());
    write_pair(dir.path(), &old);
    let server = start(dir.path());
    let ircs = ready_addr(&server, "ircs=");
    let trust_both = connector(&[&old.ca, &new.ca], &[]);

    let first = tls(ircs, &trust_both).await;
    assert_eq!(server_cert(&first), old.leaf);
    let mut before = Lines::new(first);
    before.send("NICK before\r\nUSER b 0 * :b\r\n").await;
    before.wait_for(" 376 ").await;
    let mut wss_before = tls(server.http, &trust_both).await;
    assert_eq!(server_cert(&wss_before), old.leaf);

    write_pair(dir.path(), &new);
    server.signal("HUP");
    wait_log(&server, "reloaded the TLS certificate");

    for addr in [ircs, server.http, server.tcp] {
        let stream = tls(addr, &trust_both).await;
        assert_eq!(server_cert(&stream), new.leaf, "{addr}");
    }
    // A client that knows only the new CA can connect.
    let mut after = irc_register(ircs, &connector(&[&new.ca], &[]), "after").await;

    // The connection made before the reload carries on.
    before.send("PRIVMSG after :still here\r\n").await;
    let line = after.wait_for("PRIVMSG after").await;
    assert!(line.ends_with(":still here"), "{line}");
    before.send("PING :alive\r\n").await;
    before.wait_for("PONG").await;
    wss_before
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    let _ = tokio::time::timeout(WAIT, wss_before.read_to_string(&mut response)).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // A broken pair is refused, and the last good one stays.
    std::fs::write(dir.path().join("key.pem"), "not a key").unwrap();
    server.signal("HUP");
    wait_log(&server, "not reloaded");
    let stream = tls(ircs, &trust_both).await;
    assert_eq!(server_cert(&stream), new.leaf);
    assert!(server.logs().iter().all(|l| !l.contains("panicked")));
    drop(stream);
}

#[test]
fn a_bad_certificate_stops_startup_with_a_reason() {
    let dir = common::TempDir::new();
    std::fs::write(dir.path().join("cert.pem"), "nope").unwrap();
    std::fs::write(dir.path().join("key.pem"), "nope").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_banter"))
        .args([
            "--memory-only",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
        ])
        .args(["--irc", "127.0.0.1:0", "--http-tls", "--tls-cert"])
        .arg(dir.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.path().join("key.pem"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cert.pem"), "{stderr}");
}

async fn ws_send(ws: &mut tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

fn wait_log(server: &TestServer, part: &str) {
    let deadline = Instant::now() + WAIT;
    while !server.logs().iter().any(|l| l.contains(part)) {
        assert!(
            Instant::now() < deadline,
            "no {part:?} in the log:\n{}",
            server.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_changes_nothing() {
    let server = TestServer::child_with(&["--memory-only"]);
    server.signal("HUP");
    wait_log(&server, "SIGHUP: no TLS certificate to reload");
    let mut client = common::Client::hello(&server, common::Kind::Tcp, "still").await;
    client.assert_usable().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_sessions_are_told_when_the_server_shuts_down() {
    let dir = common::TempDir::new();
    let pki = pki();
    write_pair(dir.path(), &pki);
    let mut server = start(dir.path());
    let ircs = ready_addr(&server, "ircs=");
    let mut irc = irc_register(ircs, &connector(&[&pki.ca], &[]), "leaving").await;
    let mut bot = Lines::new(tls(server.tcp, &connector(&[&pki.ca], &[])).await);
    bot.send("{\"type\":\"hello\",\"nick\":\"botleaving\"}\n")
        .await;
    bot.wait_for("\"welcome\"").await;
    let https = connector(&[&pki.ca], &[b"http/1.1"]);
    let request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("wss://localhost:{}/ws", server.http.port()),
    )
    .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls(server.http, &https).await)
        .await
        .expect("WSS upgrade");
    ws_send(&mut ws, json!({"type": "hello", "nick": "wsleaving"})).await;

    server.signal("TERM");
    let line = irc.wait_for("ERROR").await;
    assert!(line.contains("shutting down"), "{line}");
    let line = bot.wait_for("\"closing\"").await;
    assert!(line.contains("shutting_down"), "{line}");
    let closing = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Text(t))) if t.contains("\"closing\"") => break t,
            Some(Ok(_)) => {}
            other => panic!("no closing notice: {other:?}"),
        }
    };
    assert!(closing.contains("shutting_down"), "{closing}");
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}");
}

/// A TLS connection from `from` (an address of 127/8 other than the
/// attacker's 127.0.0.1: another client to the per-address limits).
async fn tls_from(from: &str, addr: SocketAddr, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    let tcp = socket.connect(addr).await.unwrap();
    tokio::time::timeout(
        WAIT,
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp),
    )
    .await
    .expect("a TLS handshake in time (not stuck behind another address's silent connections)")
    .expect("a TLS handshake")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_from_one_address_lock_no_one_else_out() {
    let dir = common::TempDir::new();
    let pki = pki();
    let (cert, key) = write_pair(dir.path(), &pki);
    // A handshake timeout far longer than the test: whatever a silent
    // connection holds, it holds throughout. The defaults otherwise
    // (50 connections and 5 a second, burst 30, per address), but 100
    // connections in all, fewer than the silent ones.
    let server = TestServer::start_with(&[
        "--memory-only",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--http-tls",
        "--tcp-tls",
        "--handshake-timeout",
        "600",
        "--max-connections",
        "100",
    ]);
    // 300 connections from 127.0.0.1 to each TLS port that never say a
    // word (more than the 256 HTTPS handshakes at once, and than the 100
    // connections in all).
    let mut silent = Vec::new();
    for _ in 0..300 {
        for addr in [server.http, server.tcp] {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
    }
    // Another address still chats, over WSS and JSON lines over TLS.
    let https = connector(&[&pki.ca], &[b"http/1.1"]);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "wss://localhost:{}/ws",
            server.http.port()
        ))
        .unwrap();
    request.headers_mut().insert(
        "origin",
        format!("https://localhost:{}", server.http.port())
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(request, tls_from("127.0.0.2", server.http, &https).await),
    )
    .await
    .expect("a WSS upgrade in time")
    .expect("WSS upgrade");
    ws_send(&mut ws, json!({"type": "hello", "nick": "webby"})).await;
    ws_send(&mut ws, json!({"type": "join", "room": "lobby"})).await;
    let mut bot = Lines::new(tls_from("127.0.0.3", server.tcp, &connector(&[&pki.ca], &[])).await);
    bot.send("{\"type\":\"hello\",\"nick\":\"boty\"}\n").await;
    let welcome = bot.recv().await;
    assert!(welcome.contains("\"welcome\""), "{welcome}");
    bot.send("{\"type\":\"join\",\"room\":\"lobby\"}\n").await;
    bot.wait_for("\"joined\"").await;
    ws_send(
        &mut ws,
        json!({"type": "say", "room": "lobby", "text": "still here"}),
    )
    .await;
    let line = bot.wait_for("\"message\"").await;
    assert!(line.contains("still here"), "{line}");
    drop(silent);
}

/// The JSON-lines and IRC TLS ports, like HTTPS, let one address have at
/// most 8 TLS handshakes in progress, whatever its share of connections:
/// past them a silent connection is closed at once (before any TLS work),
/// and clients of other addresses still get through and chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_in_progress_are_capped_per_address_on_every_port() {
    let dir = common::TempDir::new();
    let pki = pki();
    let (cert, key) = write_pair(dir.path(), &pki);
    // A handshake timeout far longer than the test, and per-address
    // connection limits that let one address (a NAT, say) open plenty.
    let server = TestServer::child_with(&[
        "--memory-only",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tcp-tls",
        "--irc-tls",
        "127.0.0.1:0",
        "--handshake-timeout",
        "600",
        "--max-connections-per-address",
        "1000",
        "--handshake-burst",
        "1000",
    ]);
    let ircs = ready_addr(&server, "ircs=");
    let mut held = Vec::new();
    for addr in [server.tcp, ircs] {
        let mut silent = Vec::new();
        for _ in 0..20 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut open = Vec::new();
        for mut s in silent {
            let mut byte = [0u8; 1];
            match tokio::time::timeout(Duration::from_millis(200), s.read(&mut byte)).await {
                Ok(Ok(0) | Err(_)) => {}
                Ok(Ok(_)) => panic!("the server spoke first on a TLS port"),
                Err(_) => open.push(s),
            }
        }
        assert_eq!(open.len(), 8, "handshakes left waiting on {addr}");
        held.extend(open);
    }
    // Another address still chats over both ports meanwhile.
    let mut bot = Lines::new(tls_from("127.0.0.2", server.tcp, &connector(&[&pki.ca], &[])).await);
    bot.send("{\"type\":\"hello\",\"nick\":\"boty\"}\n").await;
    assert!(bot.recv().await.contains("\"welcome\""));
    bot.send("{\"type\":\"join\",\"room\":\"lobby\"}\n").await;
    bot.wait_for("\"joined\"").await;
    let mut irc = Lines::new(tls_from("127.0.0.3", ircs, &connector(&[&pki.ca], &[])).await);
    irc.send("NICK ircy\r\nUSER ircy 0 * :ircy\r\n").await;
    irc.wait_for(" 376 ").await;
    irc.send("JOIN #lobby\r\n").await;
    irc.wait_for(" 366 ").await;
    irc.send("PRIVMSG #lobby :still here\r\n").await;
    let line = bot.wait_for("\"message\"").await;
    assert!(line.contains("still here"), "{line}");
    // A handshake that ends frees its place: the same address gets one
    // (the first held ones are on the JSON-lines port).
    drop(held.remove(0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = Lines::new(tls(server.tcp, &connector(&[&pki.ca], &[])).await);
    again
        .send("{\"type\":\"hello\",\"nick\":\"again\"}\n")
        .await;
    assert!(again.recv().await.contains("\"welcome\""));
}
