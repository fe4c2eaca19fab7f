//! The web client as banter serves it: the page at `/`, long-cached hashed
//! assets, compression, ETags and `--web-dir`; and the `/ws` handshake.
//! The page tests need a built client (`trunk build --release`, which
//! scripts/test runs first); without one they say so and pass, unless
//! BANTER_REQUIRE_WEB is set.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use common::{TempDir, TestServer};

fn dist() -> Option<PathBuf> {
    let dist = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../frontend/dist");
    if dist.join("index.html").exists() {
        return Some(dist);
    }
    assert!(
        std::env::var_os("BANTER_REQUIRE_WEB").is_none(),
        "frontend/dist is not built: run `trunk build --release` (scripts/test does)"
    );
    eprintln!("skipped: frontend/dist is not built (trunk build --release)");
    None
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 request over a real socket.
fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

fn hashed_wasm(dist: &std::path::Path) -> String {
    std::fs::read_dir(dist)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.ends_with("_bg.wasm"))
        .expect("a wasm file in dist")
}

#[test]
fn the_page_and_its_assets_are_served_with_the_right_headers() {
    let Some(dist) = dist() else { return };
    let server = TestServer::start();
    let page = get(server.http, "/", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let html = String::from_utf8(page.body.clone()).unwrap();
    assert!(html.contains("_bg.wasm"), "{html}");
    // Every asset URL in the page is relative, so the page works under a
    // sub-path behind a proxy.
    assert!(
        !html.contains("href=\"/") && !html.contains("src=\"/") && !html.contains("'/banter"),
        "{html}"
    );

    let wasm = hashed_wasm(&dist);
    let plain = get(server.http, &format!("/{wasm}"), &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-type"), Some("application/wasm"));
    assert_eq!(
        plain.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert_eq!(plain.body, std::fs::read(dist.join(&wasm)).unwrap());

    let compressed = get(
        server.http,
        &format!("/{wasm}"),
        &[("Accept-Encoding", "gzip, br")],
    );
    assert_eq!(compressed.status, 200);
    assert!(
        matches!(compressed.header("content-encoding"), Some("br" | "gzip")),
        "{:?}",
        compressed.headers
    );
    assert!(compressed.body.len() < plain.body.len() / 2);

    // Revalidation with the ETag costs no body.
    let etag = page.header("etag").expect("an ETag").to_string();
    let again = get(server.http, "/", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());

    for asset in ["icon.svg", "manifest.webmanifest"] {
        let r = get(server.http, &format!("/{asset}"), &[]);
        assert_eq!(r.status, 200, "{asset}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{asset}");
    }
    assert_eq!(get(server.http, "/nope.js", &[]).status, 404);
    // The other routes still answer beside the client.
    assert_eq!(get(server.http, "/healthz", &[]).status, 200);
}

#[test]
fn web_dir_serves_another_directory() {
    let dir = std::env::temp_dir().join(format!("banter-web-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>my own client</p>").unwrap();
    let server = TestServer::start_with(&["--web-dir", dir.to_str().unwrap()]);
    let page = get(server.http, "/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(page.body, b"<p>my own client</p>");
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(get(server.http, "/../Cargo.toml", &[]).status, 404);
    assert!(
        server
            .logs()
            .iter()
            .any(|l| l.contains("web client") && l.contains(dir.to_str().unwrap())),
        "the startup log names the directory"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/ws` answers what is not a WebSocket handshake with a status and a
/// sentence saying what is missing, and a real one with 101 and the key's
/// accept value (RFC 6455's own example).
#[test]
fn ws_refuses_what_is_no_websocket_handshake_and_accepts_a_real_one() {
    let server = TestServer::start();
    let plain = get(server.http, "/ws", &[]);
    assert_eq!(plain.status, 400);
    assert!(
        String::from_utf8_lossy(&plain.body).contains("Connection header must include"),
        "{:?}",
        String::from_utf8_lossy(&plain.body)
    );
    let upgrade = [("Connection", "Upgrade")];
    let r = get(server.http, "/ws", &upgrade);
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("Upgrade header must be"));
    let key = ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==");
    let old = [
        upgrade[0],
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "8"),
        key,
    ];
    let r = get(server.http, "/ws", &old);
    assert_eq!(r.status, 426);
    assert_eq!(r.header("sec-websocket-version"), Some("13"));
    let keyless = [
        upgrade[0],
        ("Upgrade", "websocket"),
        ("Sec-WebSocket-Version", "13"),
    ];
    let r = get(server.http, "/ws", &keyless);
    assert_eq!(r.status, 400);
    assert!(String::from_utf8_lossy(&r.body).contains("Sec-WebSocket-Key"));

    // A real handshake (read only the head: the socket stays open).
    let mut stream = TcpStream::connect(server.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive, Upgrade\r\n\
         Upgrade: WebSocket\r\nSec-WebSocket-Version: 13\r\n{}: {}\r\n\r\n",
        server.http, key.0, key.1
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the head ends");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
}

/// The security headers of `response`, whatever served it.
fn assert_locked_down(response: &Response, what: &str) {
    let csp = response
        .header("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"));
    for part in [
        "default-src 'self'",
        "script-src 'self' 'wasm-unsafe-eval'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{what}: {part} not in {csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(
        response.header("referrer-policy"),
        Some("no-referrer"),
        "{what}"
    );
    assert_eq!(response.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        response.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    // Plain HTTP: no HSTS (tls.rs checks it on HTTPS).
    assert_eq!(response.header("strict-transport-security"), None, "{what}");
}

#[test]
fn pages_are_served_with_security_headers() {
    let dir = TempDir::new();
    let script = "import init from './app.js'; await init();";
    std::fs::write(
        dir.path().join("index.html"),
        format!("<html><script type=module>{script}</script></html>"),
    )
    .unwrap();
    let server = TestServer::start_with(&["--web-dir", dir.path().to_str().unwrap()]);
    let page = get(server.http, "/", &[]);
    assert_eq!(page.status, 200);
    assert_locked_down(&page, "--web-dir page");
    // The page's one inline script, the one Trunk writes, is allowed by
    // its hash (and only it: no 'unsafe-inline').
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(script));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains(&format!("'sha256-{hash}'")), "{csp}");
    assert_locked_down(&get(server.http, "/missing.js", &[]), "a 404");
    assert_locked_down(&get(server.http, "/healthz", &[]), "/healthz");
    // The built-in client's page too, with the hash of its own script.
    if let Some(dist) = dist() {
        let server = TestServer::start();
        let page = get(server.http, "/", &[]);
        assert_locked_down(&page, "the built-in page");
        let html = std::fs::read_to_string(dist.join("index.html")).unwrap();
        let csp = page.header("content-security-policy").unwrap();
        assert_eq!(
            csp,
            banter::web::content_security_policy(&html),
            "the policy is the one for the built page"
        );
        assert!(csp.contains("'sha256-"), "Trunk's inline script: {csp}");
    }
}
