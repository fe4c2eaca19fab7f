//! Banter behind reverse proxies: real nginx and Caddy running the example
//! configs in deploy/ in front of banter under /chat/, `--trusted-proxy`
//! (the client address, forged headers), the WebSocket Origin check, and
//! the PROXY protocol on the JSON-lines and IRC ports, by hand and from
//! real HAProxy (v2) and nginx stream (v1) running deploy/'s examples.
//!
//! nginx (and libnginx-mod-stream), Caddy and HAProxy are Debian packages
//! (scripts/test installs them);
//! without them those tests say so and pass, unless BANTER_REQUIRE_PROXIES
//! is set (scripts/test sets it).
//!
//! The client address banter sees is read from its debug log
//! (`connected peer=…`). Tests connect from 127.0.0.2 (all of 127/8 is
//! loopback on Linux) so that the client is not the proxy (127.0.0.1).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use banter::net::proxy_protocol::{v1_header, v2_header};
use common::{
    IrcClient, TempDir, TestServer, WAIT, free_port, http_get_on, swap, try_wait_for_port,
    wait_for_port,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

const CLIENT_IP: &str = "127.0.0.2";

fn client_ip() -> IpAddr {
    CLIENT_IP.parse().unwrap()
}

fn deploy(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy")
        .join(file)
}

/// The path of `program`, or `None` (the test is skipped) when it is not
/// installed and BANTER_REQUIRE_PROXIES is not set.
fn installed(program: &str) -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return Some(path);
        }
    }
    assert!(
        std::env::var_os("BANTER_REQUIRE_PROXIES").is_none(),
        "{program} is not installed (scripts/test installs it)"
    );
    eprintln!("skipped: {program} is not installed");
    None
}

/// A reverse proxy process, killed when dropped.
struct Proxy {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Proxy {
    /// SIGTERM first: SIGKILL would leave nginx's worker behind.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + WAIT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// nginx running deploy/nginx.conf (its listen port and upstream
/// replaced) inside a minimal main configuration.
fn start_nginx(upstream: SocketAddr) -> Option<Proxy> {
    let bin = installed("nginx")?;
    let dir = TempDir::new();
    let port = free_port();
    let site = std::fs::read_to_string(deploy("nginx.conf")).unwrap();
    let site = swap(&site, "listen 80;", &format!("listen 127.0.0.1:{port};"));
    let site = swap(
        &site,
        "server 127.0.0.1:8080;",
        &format!("server {upstream};"),
    );
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         {site}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    wait_for_port(port, "nginx", &mut child);
    Some(Proxy {
        child,
        port,
        _dir: dir,
    })
}

/// Caddy running deploy/Caddyfile (its site address and upstream replaced).
/// A free port can be taken by another test before Caddy binds it (Caddy
/// then exits): it is tried again on a new one, up to three times.
fn start_caddy(upstream: SocketAddr) -> Option<Proxy> {
    let bin = installed("caddy")?;
    let mut failures = Vec::new();
    for _ in 0..3 {
        let dir = TempDir::new();
        let port = free_port();
        let site = std::fs::read_to_string(deploy("Caddyfile")).unwrap();
        let site = swap(
            &site,
            "chat.example.com {",
            &format!("http://127.0.0.1:{port} {{"),
        );
        let site = swap(
            &site,
            "reverse_proxy 127.0.0.1:8080",
            &format!("reverse_proxy {upstream}"),
        );
        let conf = format!("{{\n\tadmin off\n}}\n{site}");
        let path = dir.path().join("Caddyfile");
        std::fs::write(&path, conf).unwrap();
        let mut child = Command::new(&bin)
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path())
            .env("XDG_CONFIG_HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start caddy");
        match try_wait_for_port(port, "caddy", &mut child) {
            Ok(()) => {
                return Some(Proxy {
                    child,
                    port,
                    _dir: dir,
                });
            }
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                failures.push(why);
            }
        }
    }
    panic!("caddy did not start: {failures:?}");
}

/// One HTTP/1.1 GET from `CLIENT_IP`: status and body.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_get_on(connect_from(addr).await, addr, path, &[]).await
}

/// A TCP connection from `CLIENT_IP`.
async fn connect_from(addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(client_ip(), 0)).unwrap();
    socket.connect(addr).await.expect("connect")
}

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket from `CLIENT_IP` to `url` (on `addr`), with extra headers.
async fn ws_from(
    addr: SocketAddr,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<Ws, tungstenite::Error> {
    let mut request = url.into_client_request().unwrap();
    for (k, v) in headers {
        request.headers_mut().insert(
            tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let stream = connect_from(addr).await;
    tokio_tungstenite::client_async(request, stream)
        .await
        .map(|(ws, _)| ws)
}

async fn send(ws: &mut Ws, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

async fn expect(ws: &mut Ws, ty: &str) -> Value {
    loop {
        let next = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {ty} in time"));
        match next {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == ty {
                    return v;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("expected {ty}, got {other:?}"),
        }
    }
}

async fn hello(ws: &mut Ws, nick: &str) {
    send(ws, json!({"type": "hello", "nick": nick})).await;
    assert_eq!(expect(ws, "welcome").await["nick"], nick);
}

/// Waits for banter's log to show a connection from `client` (the address
/// banter believes) on `transport`.
fn wait_connected(server: &TestServer, client: &str, transport: &str) {
    wait_log(server, |l| {
        l.contains("connected")
            && l.contains(&format!("peer={client}"))
            && l.contains(&format!("transport=\"{transport}\""))
    });
}

fn wait_log(server: &TestServer, found: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(line) = server.logs().into_iter().find(|l| found(l)) {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "not in the log:\n{}",
            server.logs().join("\n")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small page for --web-dir, so the test doesn't need a built client.
fn web_dir() -> TempDir {
    let dir = TempDir::new();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>Banter</title><script src=\"./app.js\"></script>",
    )
    .unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log('banter')").unwrap();
    dir
}

/// Through a proxy at `/chat/`: the page and its relative asset load, a
/// WebSocket opened by the page's origin chats with a TCP user, and banter
/// sees the client's real address, not the proxy's or a forged one.
async fn chat_through(proxy: &Proxy, server: &TestServer) {
    let origin = format!("http://{}", proxy.addr());
    let (status, page) = get(proxy.addr(), "/chat/").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("./app.js"), "{page}");
    let (status, js) = get(proxy.addr(), "/chat/app.js").await;
    assert_eq!((status, js.as_str()), (200, "console.log('banter')"));
    let (status, _) = get(proxy.addr(), "/chat/healthz").await;
    assert_eq!(status, 200);

    let url = format!("ws://{}/chat/ws", proxy.addr());
    let mut alice = ws_from(
        proxy.addr(),
        &url,
        &[("Origin", &origin), ("X-Forwarded-For", "198.51.100.66")],
    )
    .await
    .expect("the page's own origin may open /chat/ws");
    hello(&mut alice, "alice").await;
    wait_connected(server, &format!("{CLIENT_IP}:0"), "ws");
    assert!(
        !server.logs().iter().any(|l| l.contains("198.51.100.66")),
        "a forged X-Forwarded-For was believed"
    );
    send(&mut alice, json!({"type": "join", "room": "lobby"})).await;
    expect(&mut alice, "joined").await;
    let mut bob = common::Client::hello(server, common::Kind::Tcp, "bob").await;
    bob.join("lobby").await;
    send(
        &mut alice,
        json!({"type": "say", "room": "lobby", "text": "through the proxy"}),
    )
    .await;
    let said = bob.wait_for("message").await;
    assert_eq!(said["text"], "through the proxy");
    assert_eq!(expect(&mut alice, "message").await["from"], "alice");

    // A web IRC client (gamja, Kiwi IRC) at /chat/irc: IRC over WebSocket.
    let irc_url = format!("ws://{}/chat/irc", proxy.addr());
    let mut irc = ws_from(
        proxy.addr(),
        &irc_url,
        &[
            ("Origin", &origin),
            ("Sec-WebSocket-Protocol", "text.ircv3.net"),
        ],
    )
    .await
    .expect("the page's own origin may open /chat/irc");
    for line in ["NICK webirc", "USER webirc 0 * :Web IRC", "JOIN #lobby"] {
        irc.send(tungstenite::Message::text(line)).await.unwrap();
    }
    let mut irc_line = async |wanted: &str| {
        tokio::time::timeout(WAIT, async {
            while let Some(Ok(message)) = irc.next().await {
                if let tungstenite::Message::Text(line) = message
                    && line.contains(wanted)
                {
                    return line.to_string();
                }
            }
            panic!("/chat/irc closed");
        })
        .await
        .expect("the line in time")
    };
    irc_line(" 366 webirc #lobby ").await;
    bob.send(json!({"type":"say","room":"lobby","text":"to the web irc"}))
        .await;
    let heard = irc_line("PRIVMSG #lobby :to the web irc").await;
    assert!(heard.starts_with(":bob!"), "{heard}");

    // A page elsewhere may not.
    let refused = ws_from(proxy.addr(), &url, &[("Origin", "http://evil.example")]).await;
    match refused {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
    wait_log(server, |l| {
        l.contains("foreign Origin") && l.contains("evil.example")
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_serves_banter_under_a_sub_path() {
    let web = web_dir();
    let server = TestServer::start_with(&[
        "--memory-only",
        "--web-dir",
        web.path().to_str().unwrap(),
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let Some(nginx) = start_nginx(server.http) else {
        return;
    };
    chat_through(&nginx, &server).await;
    // The example redirects /chat to /chat/.
    let (status, _) = get(nginx.addr(), "/chat").await;
    assert_eq!(status, 301);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caddy_serves_banter_under_a_sub_path() {
    let web = web_dir();
    let server = TestServer::start_with(&[
        "--memory-only",
        "--web-dir",
        web.path().to_str().unwrap(),
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let Some(caddy) = start_caddy(server.http) else {
        return;
    };
    chat_through(&caddy, &server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_headers_from_an_untrusted_peer_are_ignored() {
    // Only 10.0.0.0/8 is trusted; the test connects from 127.0.0.2.
    let server = TestServer::start_with(&["--memory-only", "--trusted-proxy", "10.0.0.0/8"]);
    let url = format!("ws://{}/ws", server.http);
    let mut ws = ws_from(
        server.http,
        &url,
        &[
            ("X-Forwarded-For", "198.51.100.7"),
            ("Forwarded", "for=198.51.100.8"),
        ],
    )
    .await
    .unwrap();
    hello(&mut ws, "mallory").await;
    wait_connected(&server, &format!("{CLIENT_IP}:"), "ws");
    let logs = server.logs().join("\n");
    assert!(
        !logs.contains("198.51.100.7") && !logs.contains("198.51.100.8"),
        "{logs}"
    );

    // Nor do they make a foreign page's origin look like the server's own.
    let foreign = ws_from(
        server.http,
        &url,
        &[
            ("Origin", "https://evil.example"),
            ("X-Forwarded-Host", "evil.example"),
            ("X-Forwarded-Proto", "https"),
        ],
    )
    .await;
    assert!(
        matches!(&foreign, Err(tungstenite::Error::Http(r)) if r.status() == 403),
        "{foreign:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_check_allows_the_page_and_allowed_origins_only() {
    let server = TestServer::start_with(&[
        "--memory-only",
        "--allowed-origin",
        "https://app.example",
        "--trusted-proxy",
        "127.0.0.2",
    ]);
    let url = format!("ws://{}/ws", server.http);
    let own = format!("http://{}", server.http);
    for ok in [
        vec![("Origin", own.as_str())],
        vec![("Origin", "https://app.example")],
        vec![("Origin", "HTTPS://APP.example:443")],
        // Scripts and bots send no Origin.
        vec![],
        // As seen through a trusted proxy (here, the test itself).
        vec![
            ("Origin", "https://chat.example"),
            ("X-Forwarded-Host", "chat.example"),
            ("X-Forwarded-Proto", "https"),
        ],
        vec![
            ("Origin", "https://chat.example"),
            ("Forwarded", "for=192.0.2.1;host=chat.example;proto=https"),
        ],
    ] {
        let mut ws = ws_from(server.http, &url, &ok)
            .await
            .unwrap_or_else(|e| panic!("{ok:?} refused: {e}"));
        send(&mut ws, json!({"type": "ping"})).await;
        expect(&mut ws, "pong").await;
    }
    for bad in [
        "http://app.example",
        "https://evil.example",
        "null",
        "http://127.0.0.1:1",
    ] {
        let refused = ws_from(server.http, &url, &[("Origin", bad)]).await;
        match refused {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403, "{bad}"),
            other => panic!("{bad}: expected 403, got {other:?}"),
        }
        wait_log(&server, |l| l.contains("foreign Origin") && l.contains(bad));
    }
    // Through the trusted proxy, the page's own origin is the forwarded one.
    let refused = ws_from(
        server.http,
        &url,
        &[
            ("Origin", own.as_str()),
            ("X-Forwarded-Host", "chat.example"),
        ],
    )
    .await;
    assert!(
        matches!(&refused, Err(tungstenite::Error::Http(r)) if r.status() == 403),
        "{refused:?}"
    );
}

// --- the PROXY protocol ---

async fn tcp_lines(
    stream: TcpStream,
) -> (
    BufReader<tokio::net::tcp::OwnedReadHalf>,
    tokio::net::tcp::OwnedWriteHalf,
) {
    let (read, write) = stream.into_split();
    (BufReader::new(read), write)
}

async fn read_line(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
    let mut line = String::new();
    tokio::time::timeout(WAIT, read.read_line(&mut line))
        .await
        .expect("a line in time")
        .unwrap();
    line
}

/// Sends `header` then a hello on the JSON-lines port; returns the answer.
async fn json_with_header(server: &TestServer, header: &[u8], nick: &str) -> Value {
    let stream = TcpStream::connect(server.tcp).await.unwrap();
    let (mut read, mut write) = tcp_lines(stream).await;
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(format!("{{\"type\":\"hello\",\"nick\":\"{nick}\"}}\n").as_bytes());
    write.write_all(&bytes).await.unwrap();
    let line = read_line(&mut read).await;
    serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line:?}"))
}

/// Sends `header` then registers on the IRC port; returns the first line.
async fn irc_with_header(server: &TestServer, header: &[u8], nick: &str) -> String {
    let stream = TcpStream::connect(server.irc).await.unwrap();
    let (mut read, mut write) = tcp_lines(stream).await;
    let mut bytes = header.to_vec();
    bytes.extend_from_slice(format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n").as_bytes());
    write.write_all(&bytes).await.unwrap();
    read_line(&mut read).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_headers_are_required_and_honoured() {
    let server = TestServer::start_with(&[
        "--memory-only",
        "--tcp-proxy-protocol",
        "--irc-proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
    ]);
    let me: SocketAddr = "127.0.0.1:1".parse().unwrap();
    let v1_src: SocketAddr = "198.51.100.20:4242".parse().unwrap();
    let v2_src: SocketAddr = "[2001:db8::20]:4343".parse().unwrap();

    let welcome = json_with_header(&server, &v1_header(v1_src, server.tcp), "v1json").await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    wait_connected(&server, "198.51.100.20:4242", "tcp");
    let welcome = json_with_header(&server, &v2_header(v2_src, me), "v2json").await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    wait_connected(&server, "[2001:db8::20]:4343", "tcp");

    let irc_src: SocketAddr = "198.51.100.21:5000".parse().unwrap();
    let first = irc_with_header(&server, &v2_header(irc_src, server.irc), "v2irc").await;
    assert!(first.contains(" 001 v2irc "), "{first}");
    wait_connected(&server, "198.51.100.21:5000", "irc");
    let irc_src: SocketAddr = "198.51.100.22:5001".parse().unwrap();
    let first = irc_with_header(&server, &v1_header(irc_src, server.irc), "v1irc").await;
    assert!(first.contains(" 001 v1irc "), "{first}");
    wait_connected(&server, "198.51.100.22:5001", "irc");

    // A health check (v1 UNKNOWN) is the balancer's own connection.
    let welcome = json_with_header(&server, b"PROXY UNKNOWN\r\n", "local").await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");

    // Without a header: refused, saying why.
    let refused = json_with_header(&server, b"", "nohead").await;
    assert_eq!(refused["type"], "closing", "{refused}");
    assert_eq!(refused["code"], "bad_request", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("PROXY protocol"),
        "{refused}"
    );
    let refused = irc_with_header(&server, b"", "nohead").await;
    assert!(
        refused.starts_with("ERROR :") && refused.contains("PROXY protocol"),
        "{refused}"
    );
    // A malformed one too.
    let refused = json_with_header(&server, b"PROXY TCP4 nonsense\r\n", "bad").await;
    assert_eq!(refused["code"], "bad_request", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_is_only_taken_from_trusted_proxies_when_they_are_listed() {
    let server = TestServer::start_with(&[
        "--memory-only",
        "--tcp-proxy-protocol",
        "--trusted-proxy",
        "10.0.0.0/8",
    ]);
    let src: SocketAddr = "198.51.100.20:4242".parse().unwrap();
    let refused = json_with_header(&server, &v1_header(src, server.tcp), "spoof").await;
    assert_eq!(refused["type"], "closing", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("trusted"),
        "{refused}"
    );
}

/// Runs the banter binary with `args` and, if it started, stops it: its
/// exit status (None: it ran) and what it logged.
fn try_start(args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    try_start_env(args, &[])
}

fn try_start_env(
    args: &[&str],
    env: &[(&str, &str)],
) -> (Option<std::process::ExitStatus>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_banter"))
        .args([
            "--memory-only",
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
        ])
        .args(["--irc", "127.0.0.1:0"])
        .args(args)
        .envs(env.iter().copied())
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut started = false;
    loop {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut lines, &mut line).unwrap_or(0) == 0 {
            break;
        }
        log.push_str(&line);
        if line.contains("banter ready:") {
            started = true;
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait().unwrap();
    let exited = (!started).then_some(status);
    (exited, log)
}

#[test]
fn trusting_every_address_stops_startup_unless_the_operator_says_so() {
    for everyone in ["0.0.0.0/0", "::/0"] {
        let (exited, log) = try_start(&["--trusted-proxy", everyone]);
        let exited = exited.unwrap_or_else(|| panic!("started with {everyone}: {log}"));
        assert!(!exited.success());
        assert!(log.contains("--trust-any-peer"), "{log}");
    }
    let (exited, log) = try_start(&["--trusted-proxy", "0.0.0.0/0", "--trust-any-peer"]);
    assert!(exited.is_none(), "{log}");
    // The variable the shipped cluster example used to set.
    let (exited, log) = try_start_env(&[], &[("BANTER_TRUSTED_PROXY", "0.0.0.0/0")]);
    assert!(exited.is_some_and(|e| !e.success()), "{log}");
}

#[test]
fn the_proxy_protocol_without_trusted_proxies_stops_startup() {
    for flag in ["--tcp-proxy-protocol", "--irc-proxy-protocol"] {
        let (exited, log) = try_start(&[flag]);
        let exited = exited.unwrap_or_else(|| panic!("started with only {flag}: {log}"));
        assert!(!exited.success());
        assert!(log.contains("--trusted-proxy"), "{log}");
        let (exited, log) = try_start(&[flag, "--trusted-proxy", "10.0.0.5"]);
        assert!(exited.is_none(), "{log}");
        let (exited, log) = try_start(&[flag, "--trust-any-peer"]);
        assert!(exited.is_none(), "{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unexpected_proxy_protocol_header_is_refused() {
    let server = TestServer::start_with(&["--memory-only"]);
    let src: SocketAddr = "198.51.100.20:4242".parse().unwrap();
    for header in [v1_header(src, server.tcp), v2_header(src, server.tcp)] {
        let refused = json_with_header(&server, &header, "json").await;
        assert_eq!(refused["type"], "closing", "{refused}");
        assert_eq!(refused["code"], "bad_request", "{refused}");
        assert!(
            refused["message"]
                .as_str()
                .unwrap()
                .contains("--tcp-proxy-protocol"),
            "{refused}"
        );
    }
    for header in [v1_header(src, server.irc), v2_header(src, server.irc)] {
        let refused = irc_with_header(&server, &header, "irc").await;
        assert!(
            refused.starts_with("ERROR :") && refused.contains("--irc-proxy-protocol"),
            "{refused}"
        );
    }
    assert!(
        !server.logs().iter().any(|l| l.contains("198.51.100.20")),
        "the header's address was believed"
    );
    // Ordinary clients are unaffected, including ones whose first bytes
    // look a little like a header.
    let mut irc = IrcClient::connect(&server).await;
    irc.send("PING :x").await;
    irc.send("NICK pat").await;
    irc.send("USER pat 0 * :pat").await;
    irc.wait_for("001").await;
    let mut bot = common::Client::hello(&server, common::Kind::Tcp, "bot").await;
    bot.assert_usable().await;
}

// --- TCP balancers in front of the IRC and JSON-lines ports ---

/// Starts `program args` and waits for `ports` to listen.
fn spawn_proxy(program: &Path, args: &[&str], dir: TempDir, ports: [u16; 2]) -> Proxy {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
    for port in ports {
        wait_for_port(port, &program.display().to_string(), &mut child);
    }
    Proxy {
        child,
        port: ports[0],
        _dir: dir,
    }
}

/// Through a balancer listening on `irc` and `json`: an IRC user and a
/// JSON-lines bot, connecting from `CLIENT_IP`, are seen by banter with
/// their own addresses and ports, and chat.
async fn chat_through_balancer(server: &TestServer, irc: SocketAddr, json: SocketAddr) {
    let stream = connect_from(irc).await;
    let irc_port = stream.local_addr().unwrap().port();
    let (mut irc_read, mut irc_write) = tcp_lines(stream).await;
    irc_write
        .write_all(b"NICK balanced\r\nUSER b 0 * :b\r\n")
        .await
        .unwrap();
    // Registered (end of MOTD) before JOIN, as IRC clients do.
    for end in [" 376 ", " 366 "] {
        loop {
            let line = read_line(&mut irc_read).await;
            if line.contains(end) {
                break;
            }
        }
        if end == " 376 " {
            irc_write.write_all(b"JOIN #lobby\r\n").await.unwrap();
        }
    }
    wait_connected(server, &format!("{CLIENT_IP}:{irc_port}"), "irc");

    let stream = connect_from(json).await;
    let json_port = stream.local_addr().unwrap().port();
    let (mut read, mut write) = tcp_lines(stream).await;
    write
        .write_all(
            b"{\"type\":\"hello\",\"nick\":\"botbal\"}\n{\"type\":\"join\",\"room\":\"lobby\"}\n",
        )
        .await
        .unwrap();
    assert!(read_line(&mut read).await.contains("\"welcome\""));
    assert!(read_line(&mut read).await.contains("\"joined\""));
    wait_connected(server, &format!("{CLIENT_IP}:{json_port}"), "tcp");

    irc_write
        .write_all(b"PRIVMSG #lobby :balanced hello\r\n")
        .await
        .unwrap();
    loop {
        let line = read_line(&mut read).await;
        if line.contains("\"message\"") {
            assert!(line.contains("balanced hello"), "{line}");
            break;
        }
    }
}

fn balanced_server() -> TestServer {
    TestServer::start_with(&[
        "--memory-only",
        "--irc-proxy-protocol",
        "--tcp-proxy-protocol",
        "--trusted-proxy",
        "127.0.0.1",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_passes_client_addresses_with_proxy_protocol_v2() {
    let Some(bin) = installed("haproxy") else {
        return;
    };
    let server = balanced_server();
    let dir = TempDir::new();
    let (irc_port, json_port) = (free_port(), free_port());
    let conf = std::fs::read_to_string(deploy("haproxy.cfg")).unwrap();
    let conf = swap(&conf, "bind :6667", &format!("bind 127.0.0.1:{irc_port}"));
    let conf = swap(&conf, "bind :7878", &format!("bind 127.0.0.1:{json_port}"));
    let conf = swap(&conf, "127.0.0.1:16667", &server.irc.to_string());
    let conf = swap(&conf, "127.0.0.1:17878", &server.tcp.to_string());
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, conf).unwrap();
    let path = path.to_str().unwrap().to_string();
    let _haproxy = spawn_proxy(&bin, &["-db", "-f", &path], dir, [irc_port, json_port]);
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    chat_through_balancer(&server, at(irc_port), at(json_port)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_stream_passes_client_addresses_with_proxy_protocol_v1() {
    let Some(bin) = installed("nginx") else {
        return;
    };
    let module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
    if !module.exists() {
        assert!(
            std::env::var_os("BANTER_REQUIRE_PROXIES").is_none(),
            "nginx's stream module is not installed (libnginx-mod-stream; scripts/test installs it)"
        );
        eprintln!("skipped: nginx's stream module is not installed");
        return;
    }
    let server = balanced_server();
    let dir = TempDir::new();
    let (irc_port, json_port) = (free_port(), free_port());
    let site = std::fs::read_to_string(deploy("nginx-stream.conf")).unwrap();
    let site = swap(
        &site,
        "listen 6667;",
        &format!("listen 127.0.0.1:{irc_port};"),
    );
    let site = swap(
        &site,
        "listen 7878;",
        &format!("listen 127.0.0.1:{json_port};"),
    );
    let site = swap(&site, "127.0.0.1:16667;", &format!("{};", server.irc));
    let site = swap(&site, "127.0.0.1:17878;", &format!("{};", server.tcp));
    let d = dir.path().display();
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         load_module {};\nevents {{ worker_connections 64; }}\n{site}\n",
        module.display()
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let (prefix, path) = (
        dir.path().to_str().unwrap().to_string(),
        path.to_str().unwrap().to_string(),
    );
    let _nginx = spawn_proxy(
        &bin,
        &["-p", &prefix, "-c", &path],
        dir,
        [irc_port, json_port],
    );
    let at = |port| SocketAddr::from(([127, 0, 0, 1], port));
    chat_through_balancer(&server, at(irc_port), at(json_port)).await;
}
