//! The helper every integration test uses: [`TestServer`] starts the
//! server on port 0, in a data directory of its own ([`TempDir`], deleted
//! when dropped): in this process, on a thread with its own runtime, or,
//! for a test that kills, signals or measures it, as the real `banter`
//! binary in a child process; it restarts the server on the same data and
//! stops it when dropped; [`Client`] talks to
//! it over a real WebSocket or TCP socket, with a timeout on every wait;
//! [`IrcClient`] does the same over the IRC port, line by line, leaving
//! the parsing of lines to the test (so that tests can use different
//! parsers). [`PgCluster`] starts a throw-away PostgreSQL server for the
//! tests of the PostgreSQL store ([`postgres_url`]: a fresh database on
//! the one this test process shares).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// How long any single expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A fresh directory under the system's temporary directory, removed
/// (with everything in it) when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "banter-test-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct TestServer {
    process: Process,
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub irc: SocketAddr,
    /// `--admin` (every test server has one unless its flags say so).
    pub admin: Option<SocketAddr>,
    logs: Logs,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Declared last: removed after the server has been stopped.
    pub data: Arc<TempDir>,
}

/// Where a test's server runs.
enum Process {
    /// On a thread of this test process, with a runtime of its own: most
    /// tests (no process to start, nothing to parse).
    InProcess(InProcess),
    /// The `banter` binary in a child process: for tests that kill it,
    /// signal it, measure its memory or set its environment.
    Child(Child),
    /// On the test's own runtime: under tokio's paused clock
    /// (`#[tokio::test(start_paused = true)]`) the server's time is the
    /// test's, so timeouts of minutes are tested in an instant.
    Here(CancellationToken),
}

struct InProcess {
    shutdown: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Starts the server on `data` with `args` and waits until it listens.
    fn start(data: &Path, args: &[String]) -> (InProcess, banter::server::Listening) {
        let data = data.display().to_string();
        let settings = settings(&["--data-dir", &data], args);
        let (tx, rx) = mpsc::channel();
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            let ready = tx.clone();
            let ran = runtime.block_on(banter::server::run_with(settings, token, move |at| {
                let _ = ready.send(Ok(at));
            }));
            if let Err(e) = ran {
                let _ = tx.send(Err(format!("{e:#}")));
            }
            runtime.shutdown_timeout(Duration::from_secs(5));
        });
        let at = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("banter did not start within 30 s")
            .unwrap_or_else(|e| panic!("banter did not start: {e}"));
        let server = InProcess {
            shutdown,
            thread: Some(thread),
        };
        (server, at)
    }

    /// Shuts the server down gracefully and waits (a bounded time) for it.
    fn stop(&mut self) {
        self.shutdown.cancel();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
        } else {
            eprintln!("banter did not stop within 30 s; leaving its thread");
        }
    }
}

/// The settings of an in-process server: `first`, the defaults, then `args`.
fn settings(first: &[&str], args: &[String]) -> banter::config::Settings {
    let mut argv: Vec<String> = vec!["banter".into()];
    argv.extend(first.iter().map(|a| a.to_string()));
    argv.extend(default_args(args));
    argv.extend(args.iter().cloned());
    let cli = banter::config::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("bad flags {argv:?}: {e}"));
    cli.settings().expect("valid settings")
}

/// The flags every test server gets unless the test names them.
fn default_args(args: &[String]) -> Vec<String> {
    let mut defaults = Vec::new();
    if !args.iter().any(|a| a == "--argon2-memory-kib") {
        // Cheap password hashes: tests register and log in a lot.
        defaults.extend(["--argon2-memory-kib", "64"].map(String::from));
    }
    if !args.iter().any(|a| a == "--server-name") {
        // What the tests' expected IRC lines name (the default is the host
        // name).
        defaults.extend(["--server-name", "banter"].map(String::from));
    }
    if !args.iter().any(|a| a == "--admin") {
        // Health in detail and metrics for the tests that read them.
        defaults.extend(["--admin", "127.0.0.1:0"].map(String::from));
    }
    defaults.extend(
        [
            "--http",
            "127.0.0.1:0",
            "--tcp",
            "127.0.0.1:0",
            "--irc",
            "127.0.0.1:0",
            "--log",
            "info,banter=debug",
        ]
        .map(String::from),
    );
    defaults
}

/// A server's log lines: a child's own, or those this process logged
/// since an in-process server started (one server at a time per test
/// process under nextest).
#[derive(Clone)]
struct Logs {
    lines: Arc<Mutex<Vec<String>>>,
    from: usize,
}

/// Every log line of the in-process servers, also echoed to stderr.
fn capture_logs() -> Arc<Mutex<Vec<String>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info,banter=debug"))
            .with_ansi(false)
            .with_writer(LogSink(lines.clone()))
            .try_init();
        lines
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<String>>>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogSink {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new(), self.0.clone())
    }
}

/// One event's text, kept when the formatter is done with it.
struct LogLine(Vec<u8>, Arc<Mutex<Vec<String>>>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let mut lines = self.1.lock().unwrap();
        for line in text.lines() {
            eprintln!("[banter] {line}");
            lines.push(line.to_string());
        }
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(&[])
    }

    /// Starts `banter` in-process on free ports with extra flags, in a new
    /// data directory, and waits until it is ready.
    pub fn start_with(args: &[&str]) -> TestServer {
        TestServer::start_in(Arc::new(TempDir::new()), args)
    }

    /// Starts `banter` in-process on the data directory `data` (which may
    /// hold a database already).
    pub fn start_in(data: Arc<TempDir>, args: &[&str]) -> TestServer {
        TestServer::launch(data, args, &[], false)
    }

    /// Runs `test` with banter on the calling test's own runtime (memory
    /// only: no store, whose SQLite thread would let a paused clock run
    /// ahead), for tests of timeouts under tokio's paused clock
    /// (`#[tokio::test(start_paused = true)]`). The server runs as a local
    /// task (its future is not `Send`), beside the test.
    pub async fn here<F, Fut>(args: &[&str], test: F)
    where
        F: FnOnce(TestServer) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move { test(TestServer::start_here(args).await).await })
            .await;
    }

    async fn start_here(args: &[&str]) -> TestServer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let settings = settings(&["--memory-only"], &args);
        let lines = capture_logs();
        let from = lines.lock().unwrap().len();
        let shutdown = CancellationToken::new();
        let (ready, at) = tokio::sync::oneshot::channel();
        tokio::task::spawn_local(banter::server::run_with(
            settings,
            shutdown.clone(),
            move |at| {
                let _ = ready.send(at);
            },
        ));
        let at = at.await.expect("banter did not start");
        TestServer {
            process: Process::Here(shutdown),
            http: at.http,
            tcp: at.tcp,
            irc: at.irc,
            admin: at.admin,
            logs: Logs { lines, from },
            args,
            env: Vec::new(),
            data: Arc::new(TempDir::new()),
        }
    }

    /// Starts the `banter` binary as a child process (for tests that kill
    /// or signal it, or measure its memory).
    pub fn child_with(args: &[&str]) -> TestServer {
        TestServer::child_in(Arc::new(TempDir::new()), args)
    }

    pub fn child_in(data: Arc<TempDir>, args: &[&str]) -> TestServer {
        TestServer::launch(data, args, &[], true)
    }

    /// A child process with extra environment variables (`BANTER_*`).
    pub fn child_env(args: &[&str], env: &[(&str, &str)]) -> TestServer {
        TestServer::launch(Arc::new(TempDir::new()), args, env, true)
    }

    fn launch(data: Arc<TempDir>, args: &[&str], env: &[(&str, &str)], child: bool) -> TestServer {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (process, at, logs) = TestServer::spawn(data.path(), &args, &env, child);
        TestServer {
            process,
            http: at.http,
            tcp: at.tcp,
            irc: at.irc,
            admin: at.admin,
            logs,
            args,
            env,
            data,
        }
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.process {
            Process::Child(child) => child,
            Process::InProcess(_) | Process::Here(_) => {
                panic!(
                    "this test needs banter in a child process: start it with TestServer::child_*"
                )
            }
        }
    }

    /// Stops the server with SIGKILL (no chance to flush anything) and
    /// waits for it to be gone.
    pub fn kill(&mut self) {
        let child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Stops the server gracefully (SIGTERM for a child, waiting for its
    /// exit), then starts it again with the same flags on the same data
    /// directory (on new ports). The crash test [`kill`](Self::kill)s it
    /// first instead.
    pub fn restart(&mut self) {
        let child = match &mut self.process {
            Process::InProcess(server) => {
                server.stop();
                false
            }
            Process::Here(_) => panic!("a server on the test's runtime is not restarted"),
            Process::Child(child) => {
                if child.try_wait().unwrap().is_none() {
                    self.signal("TERM");
                    let status = self.wait_exit(Duration::from_secs(15));
                    assert!(status.success(), "banter exited with {status}");
                }
                true
            }
        };
        let (process, at, logs) = TestServer::spawn(self.data.path(), &self.args, &self.env, child);
        (self.process, self.logs) = (process, logs);
        (self.http, self.tcp, self.irc) = (at.http, at.tcp, at.irc);
        self.admin = at.admin;
    }

    /// [`restart`](Self::restart), with `more` flags from now on.
    pub fn restart_with(&mut self, more: &[&str]) {
        self.args.extend(more.iter().map(|a| a.to_string()));
        self.restart();
    }

    /// Runs the `banter` binary to completion with these arguments (e.g.
    /// `backup`), on this server's data directory.
    pub fn run_command(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_banter"))
            .arg("--data-dir")
            .arg(self.data.path())
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .expect("run banter")
    }

    fn spawn(
        data: &Path,
        args: &[String],
        env: &[(String, String)],
        child: bool,
    ) -> (Process, banter::server::Listening, Logs) {
        if !child {
            let lines = capture_logs();
            let from = lines.lock().unwrap().len();
            let (server, at) = InProcess::start(data, args);
            return (Process::InProcess(server), at, Logs { lines, from });
        }
        let (child, at, lines) = TestServer::spawn_child(data, args, env);
        (Process::Child(child), at, Logs { lines, from: 0 })
    }

    fn spawn_child(
        data: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> (Child, banter::server::Listening, Arc<Mutex<Vec<String>>>) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_banter"));
        command
            .arg("--data-dir")
            .arg(data)
            .args(default_args(args))
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("start banter");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[banter] {line}");
                if let Some(rest) = line.split("banter ready: ").nth(1) {
                    let _ = ready_tx.send(rest.to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let ready = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("banter did not log that it was ready");
        let addr = |key: &str| -> Option<SocketAddr> {
            // Text or JSON logs: the addresses end at a space or a quote.
            ready
                .split(|c: char| c.is_whitespace() || c == '"')
                .find_map(|w| w.strip_prefix(key))
                .map(|a| a.parse().unwrap())
        };
        let need = |key: &str| addr(key).unwrap_or_else(|| panic!("no {key} in {ready:?}"));
        let at = banter::server::Listening {
            http: need("http="),
            tcp: need("tcp="),
            irc: need("irc="),
            ircs: addr("ircs="),
            admin: addr("admin="),
        };
        (child, at, logs)
    }

    pub fn pid(&self) -> u32 {
        match &self.process {
            Process::Child(child) => child.id(),
            Process::InProcess(_) | Process::Here(_) => {
                panic!(
                    "this test needs banter in a child process: start it with TestServer::child_*"
                )
            }
        }
    }

    /// The `--admin` listener's address.
    pub fn admin(&self) -> SocketAddr {
        self.admin.expect("this server runs without --admin")
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.http)
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc")
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lines.lock().unwrap()[self.logs.from..].to_vec()
    }

    /// Sends a signal (`TERM`, `INT`) to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.pid();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the server to exit on its own.
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        let child = self.child();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "banter did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.process {
            Process::InProcess(server) => server.stop(),
            Process::Here(shutdown) => shutdown.cancel(),
            Process::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ws,
    Tcp,
}

pub const BOTH: [Kind; 2] = [Kind::Ws, Kind::Tcp];

/// What the next read brought.
#[derive(Debug)]
pub enum Next {
    Msg(Value),
    Closed,
    Timeout,
}

pub enum Client {
    Ws(Box<WebSocketStream<MaybeTlsStream<TcpStream>>>),
    Tcp {
        read: AsyncBufReader<OwnedReadHalf>,
        write: OwnedWriteHalf,
    },
}

impl Client {
    pub async fn connect(server: &TestServer, kind: Kind) -> Client {
        match kind {
            Kind::Ws => {
                let (ws, _) =
                    tokio_tungstenite::connect_async_with_config(server.ws_url(), None, true)
                        .await
                        .expect("WebSocket connect");
                Client::Ws(Box::new(ws))
            }
            Kind::Tcp => {
                let stream = TcpStream::connect(server.tcp).await.expect("TCP connect");
                // Small writes leave at once (no Nagle delay), so that a test
                // on tokio's paused clock never waits on the kernel.
                stream.set_nodelay(true).unwrap();
                let (read, write) = stream.into_split();
                Client::Tcp {
                    read: AsyncBufReader::new(read),
                    write,
                }
            }
        }
    }

    /// A JSON-lines client of whatever listens at `addr` (a proxy, say).
    pub async fn tcp_at(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("TCP connect");
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        Client::Tcp {
            read: AsyncBufReader::new(read),
            write,
        }
    }

    /// A JSON-lines client of `server` connecting from `local` (any of
    /// 127/8 works on Linux): another address, as far as limits go.
    pub async fn tcp_from(server: &TestServer, local: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(local.parse().unwrap(), 0))
            .unwrap();
        let stream = socket.connect(server.tcp).await.expect("TCP connect");
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        Client::Tcp {
            read: AsyncBufReader::new(read),
            write,
        }
    }

    /// A WebSocket client of `url`.
    pub async fn ws_at(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true)
            .await
            .expect("WebSocket connect");
        Client::Ws(Box::new(ws))
    }

    /// A WebSocket client of `server` connecting from `from` (an address
    /// of 127/8 other than 127.0.0.1: another client to per-address
    /// limits; Linux routes all of 127/8 to the loopback).
    pub async fn ws_from(server: &TestServer, from: &str) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
        let tcp = tokio::time::timeout(WAIT, socket.connect(server.http))
            .await
            .expect("TCP connect in time")
            .expect("TCP connect");
        tcp.set_nodelay(true).unwrap();
        let stream = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async_with_config(server.ws_url(), stream, None),
        )
        .await
        .expect("WebSocket upgrade in time")
        .expect("WebSocket upgrade");
        Client::Ws(Box::new(ws))
    }

    /// Connects, says hello and checks the welcome.
    pub async fn hello(server: &TestServer, kind: Kind, nick: &str) -> Client {
        let mut client = Client::connect(server, kind).await;
        client.send(json!({"type": "hello", "nick": nick})).await;
        let welcome = client.expect("welcome").await;
        assert_eq!(welcome["nick"], nick);
        client
    }

    /// Joins a room and returns the `joined` reply.
    pub async fn join(&mut self, room: &str) -> Value {
        self.send(json!({"type": "join", "room": room})).await;
        self.expect("joined").await
    }

    pub async fn send(&mut self, message: Value) {
        self.send_raw(&message.to_string()).await;
    }

    /// Sends text as one frame (WS) or one line (TCP, newline added).
    pub async fn send_raw(&mut self, text: &str) {
        match self {
            Client::Ws(ws) => ws.send(Message::text(text)).await.expect("ws send"),
            Client::Tcp { write, .. } => write
                .write_all(format!("{text}\n").as_bytes())
                .await
                .expect("tcp send"),
        }
    }

    pub async fn send_binary(&mut self, data: &[u8]) {
        match self {
            Client::Ws(ws) => ws
                .send(Message::binary(data.to_vec()))
                .await
                .expect("ws send"),
            Client::Tcp { write, .. } => write.write_all(data).await.expect("tcp send"),
        }
    }

    pub async fn next_within(&mut self, wait: Duration) -> Next {
        let read = async {
            match self {
                Client::Ws(ws) => loop {
                    match ws.next().await {
                        Some(Ok(Message::Text(t))) => {
                            return Next::Msg(serde_json::from_str(&t).expect("server sent JSON"));
                        }
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Next::Closed,
                        Some(Ok(_)) => continue,
                    }
                },
                Client::Tcp { read, .. } => {
                    let mut line = String::new();
                    match read.read_line(&mut line).await {
                        Ok(0) | Err(_) => Next::Closed,
                        // A cut-off client may see half a line before EOF.
                        Ok(_) if !line.ends_with('\n') => Next::Closed,
                        Ok(_) => {
                            Next::Msg(serde_json::from_str(&line).expect("server sent a JSON line"))
                        }
                    }
                }
            }
        };
        tokio::time::timeout(wait, read)
            .await
            .unwrap_or(Next::Timeout)
    }

    /// The next message; fails the test on close or timeout.
    pub async fn recv(&mut self) -> Value {
        match self.next_within(WAIT).await {
            Next::Msg(v) => v,
            other => panic!("expected a message, got {other:?}"),
        }
    }

    /// The next message, which must be of type `ty`.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let msg = self.recv().await;
        assert_eq!(msg["type"], ty, "expected {ty}, got {msg}");
        msg
    }

    /// Skips messages until one of type `ty` arrives.
    pub async fn wait_for(&mut self, ty: &str) -> Value {
        loop {
            let msg = self.recv().await;
            if msg["type"] == ty {
                return msg;
            }
        }
    }

    /// Tries to join; the answer must be an error with this code.
    pub async fn join_err(&mut self, room: &str, code: &str) {
        self.send(json!({"type": "join", "room": room})).await;
        self.wait_error(code).await;
    }

    /// Skips messages until an error arrives, which must have this code.
    pub async fn wait_error(&mut self, code: &str) -> Value {
        let msg = self.wait_for("error").await;
        assert_eq!(msg["code"], code, "{msg}");
        msg
    }

    /// Connects and sends `hello` (any fields), retrying while the nick is
    /// still held by an earlier connection that is closing; returns the
    /// client and the first answer.
    pub async fn hello_with(server: &TestServer, kind: Kind, hello: Value) -> (Client, Value) {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut client = Client::connect(server, kind).await;
            client.send(hello.clone()).await;
            let answer = client.recv().await;
            if answer["code"] != "nick_taken" || Instant::now() > deadline {
                return (client, answer);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The next message must be an error with this code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let msg = self.expect("error").await;
        assert_eq!(msg["code"], code, "{msg}");
        assert!(
            msg["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{msg}"
        );
        msg
    }

    /// Proves the connection still works: a ping is answered with its ref.
    pub async fn assert_usable(&mut self) {
        self.send(json!({"type": "ping", "ref": "alive?"})).await;
        let pong = self.expect("pong").await;
        assert_eq!(pong["ref"], "alive?");
    }

    /// Asserts nothing arrives for a while.
    pub async fn assert_quiet(&mut self, wait: Duration) {
        if let Next::Msg(m) = self.next_within(wait).await {
            panic!("expected silence, got {m}");
        }
    }

    /// Reads until the server closes the connection, returning what came.
    pub async fn until_closed(&mut self, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Next::Msg(m) => seen.push(m),
                Next::Closed => return seen,
                Next::Timeout => panic!("connection still open after {within:?}; got {seen:?}"),
            }
        }
    }
}

/// What the next IRC read brought.
#[derive(Debug, PartialEq)]
pub enum IrcNext {
    /// One line, without its CRLF.
    Line(String),
    Closed,
    Timeout,
}

/// A raw IRC connection: lines out, lines in, every wait timed out.
pub struct IrcClient {
    read: AsyncBufReader<OwnedReadHalf>,
    write: OwnedWriteHalf,
}

/// The command (or numeric) of a raw IRC line, after any tags and source.
pub fn irc_command(line: &str) -> &str {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let mut word = words.next().unwrap_or("");
    if word.starts_with('@') {
        word = words.next().unwrap_or("");
    }
    if word.starts_with(':') {
        word = words.next().unwrap_or("");
    }
    word
}

impl IrcClient {
    pub async fn connect(server: &TestServer) -> IrcClient {
        IrcClient::connect_to(server.irc).await
    }

    /// An IRC client of whatever listens at `addr` (a proxy, say).
    pub async fn connect_to(addr: SocketAddr) -> IrcClient {
        let stream = TcpStream::connect(addr).await.expect("IRC connect");
        stream.set_nodelay(true).unwrap();
        let (read, write) = stream.into_split();
        IrcClient {
            read: AsyncBufReader::new(read),
            write,
        }
    }

    /// Connects, registers as `nick` and reads up to the end of the MOTD.
    pub async fn register(server: &TestServer, nick: &str) -> IrcClient {
        let mut irc = IrcClient::connect(server).await;
        irc.send(&format!("NICK {nick}")).await;
        irc.send(&format!("USER {nick} 0 * :{nick} the tester"))
            .await;
        let welcome = irc.wait_for("001").await;
        assert!(welcome.contains(nick), "{welcome}");
        irc.wait_for("376").await;
        irc
    }

    /// Sends one line; CRLF is added.
    pub async fn send(&mut self, line: &str) {
        self.send_bytes(format!("{line}\r\n").as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.write.write_all(bytes).await.expect("irc send");
    }

    pub async fn next_within(&mut self, wait: Duration) -> IrcNext {
        let read = async {
            let mut line = String::new();
            match self.read.read_line(&mut line).await {
                Ok(0) | Err(_) => IrcNext::Closed,
                Ok(_) => {
                    assert!(line.ends_with("\r\n"), "IRC lines end with CRLF: {line:?}");
                    line.truncate(line.len() - 2);
                    IrcNext::Line(line)
                }
            }
        };
        tokio::time::timeout(wait, read)
            .await
            .unwrap_or(IrcNext::Timeout)
    }

    /// The next line; fails the test on close or timeout.
    pub async fn recv(&mut self) -> String {
        match self.next_within(WAIT).await {
            IrcNext::Line(l) => l,
            other => panic!("expected an IRC line, got {other:?}"),
        }
    }

    /// The next line, whose command must be `command`.
    pub async fn expect(&mut self, command: &str) -> String {
        let line = self.recv().await;
        assert_eq!(
            irc_command(&line),
            command,
            "expected {command}, got {line}"
        );
        line
    }

    /// Skips lines until one with `command` arrives.
    pub async fn wait_for(&mut self, command: &str) -> String {
        loop {
            let line = self.recv().await;
            if irc_command(&line) == command {
                return line;
            }
        }
    }

    /// Proves the connection still works: a PING is answered, and nothing
    /// else came before the answer.
    pub async fn assert_usable(&mut self) {
        self.send("PING :still-there").await;
        let pong = self.expect("PONG").await;
        assert!(pong.ends_with("still-there"), "{pong}");
    }

    /// Reads until the server closes, returning what came.
    pub async fn until_closed(&mut self, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                IrcNext::Line(l) => seen.push(l),
                IrcNext::Closed => return seen,
                IrcNext::Timeout => {
                    panic!("IRC connection still open after {within:?}; got {seen:?}")
                }
            }
        }
    }
}

/// A plain HTTP/1.1 GET: the status code and the body. Every wait is
/// bounded.
pub async fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
        .await
        .expect("HTTP connect in time")
        .expect("HTTP connect");
    http_get_on(stream, addr, path, headers).await
}

/// [`http_get`] on a connection the caller opened (from an address of its
/// choice, say).
pub async fn http_get_on(
    mut stream: TcpStream,
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    use tokio::io::AsyncReadExt;
    let exchange = async {
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
        {
            request.push_str("Connection: close\r\n");
        }
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("HTTP answer in time");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

/// The superuser password of every [`PgCluster`] (which listens on
/// 127.0.0.1 only).
pub const PG_PASSWORD: &str = "banter-test-secret";

/// A throw-away PostgreSQL server: a new cluster (`initdb`) in a temporary
/// directory, listening on 127.0.0.1 on a free port, superuser `postgres`
/// with [`PG_PASSWORD`]. Dropping it stops it and deletes its files; so
/// does the end of the test process, however it ends (a watchdog process
/// waits for a pipe from this one to close; the shared one is also
/// stopped at exit), so no server outlives the tests.
pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// Its stdin is the pipe; it stops the server when the pipe closes.
    watchdog: Mutex<Option<Child>>,
}

/// Where PostgreSQL's programs are: `BANTER_PG_BIN` (if it has them),
/// the newest `/usr/lib/postgresql/*/bin` (Debian), or `initdb` on the
/// PATH.
fn pg_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BANTER_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
    })
}

/// PostgreSQL refuses to run as root: then its programs run as the
/// `postgres` user.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Says `text` in `room` and waits for the echo; its id.
pub async fn say(client: &mut Client, room: &str, text: &str) -> u64 {
    client
        .send(json!({"type":"say","room":room,"text":text}))
        .await;
    let echo = client.wait_for("message").await;
    assert_eq!(echo["text"], text);
    echo["id"].as_u64().unwrap()
}
/// The texts of a `history` answer's (or `joined` history's) messages.
pub fn texts(messages: &Value) -> Vec<String> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

/// The ids of a `history` answer's messages.
pub fn ids(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}
/// Sends a `history` request; the messages of the answer.
pub async fn history(client: &mut Client, request: Value) -> Value {
    client.send(request).await;
    client.wait_for("history").await["messages"].clone()
}

/// A loopback port nobody listens on (for a server the test starts).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `port`, failing if `child` (`what`)
/// exits first or takes longer than [`WAIT`].
pub fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    if let Err(why) = try_wait_for_port(port, what, child) {
        panic!("{why}");
    }
}

/// [`wait_for_port`], saying why it failed instead of failing the test
/// (a free port may be taken by another test before the child binds it).
pub fn try_wait_for_port(port: u16, what: &str, child: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("{what} exited with {status}"));
        }
        if Instant::now() >= deadline {
            return Err(format!("{what} did not start"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Replaces `from` in `text` (a shipped example config), which must be there.
pub fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the example no longer has {from:?}");
    text.replace(from, to)
}

impl PgCluster {
    /// Starts a new cluster; `None` (after saying that the test is
    /// skipped) if PostgreSQL is not installed, unless
    /// BANTER_REQUIRE_POSTGRES is set (then the test fails).
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bin() else {
            assert!(
                std::env::var_os("BANTER_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is not installed (apt install postgresql) and BANTER_REQUIRE_POSTGRES is set"
            );
            eprintln!("skipped: PostgreSQL not installed (apt install postgresql)");
            return None;
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "banter-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("password"), PG_PASSWORD).unwrap();
        if running_as_root() {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(chown.success(), "cannot give {} to postgres", dir.display());
        }
        let mut cluster = PgCluster {
            bin,
            dir,
            port: 0,
            watchdog: Mutex::new(None),
        };
        cluster.watch();
        let data = format!("--pgdata={}", cluster.data().display());
        let pwfile = format!("--pwfile={}", cluster.dir.join("password").display());
        cluster.run(
            "initdb",
            &[
                &data,
                "--username=postgres",
                &pwfile,
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(cluster.dir.join("data/postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(
            &mut conf,
            b"\n# banter tests\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
              max_connections = 200\nshared_buffers = 16MB\nfsync = on\n",
        )
        .unwrap();
        // A free port may be taken between finding it and binding it: try
        // a few.
        for _ in 0..5 {
            cluster.port = free_port();
            if cluster.try_resume() {
                return Some(cluster);
            }
        }
        panic!(
            "PostgreSQL did not start; its log:\n{}",
            std::fs::read_to_string(cluster.dir.join("log")).unwrap_or_default()
        );
    }

    /// One of PostgreSQL's programs, as the `postgres` user if we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        let mut command = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        };
        command
            .current_dir("/")
            .stdin(Stdio::null())
            .env_remove("PGDATA");
        command
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server (again), on its port; whether it did.
    fn try_resume(&self) -> bool {
        self.command("pg_ctl")
            .arg(format!("--pgdata={}", self.data().display()))
            .arg(format!("--log={}", self.dir.join("log").display()))
            .args(["--wait", "--timeout=60"])
            .arg(format!("--options=-p {}", self.port))
            .arg("start")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port.
    pub fn resume(&self) {
        assert!(
            self.try_resume(),
            "PostgreSQL did not start again; its log:\n{}",
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Stops the server (fast shutdown: open connections are ended).
    pub fn stop(&self) {
        let data = format!("--pgdata={}", self.data().display());
        self.run("pg_ctl", &[&data, "--wait", "--mode=fast", "stop"]);
    }

    /// The cluster's directory (its data, log and password file).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A process that, once this one's end closes the pipe to it, stops
    /// the server and deletes its directory. In a session of its own, so
    /// that a signal to this process's group (a test runner's timeout)
    /// does not end it first.
    fn watch(&self) {
        let shell = |s: &Path| format!("'{}'", s.display());
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if running_as_root() {
            format!("runuser -u postgres -- {}", shell(&pg_ctl))
        } else {
            shell(&pg_ctl)
        };
        let script = format!(
            "cat >/dev/null; {stop} --pgdata={data} --mode=fast --wait stop; rm -rf {dir}",
            data = shell(&self.data()),
            dir = shell(&self.dir)
        );
        let spawn = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
        };
        let child = spawn("setsid", &["sh", "-c", &script])
            .or_else(|_| spawn("sh", &["-c", &script]))
            .expect("start the PostgreSQL watchdog");
        *self.watchdog.lock().unwrap() = Some(child);
    }

    /// The URL of `database` as the superuser.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Runs SQL with `psql` on `database`; its output (unaligned, tuples
    /// only).
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url(database))
            .args(["-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new, empty database: its URL.
    pub fn create_database(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!("banter_test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }
}

impl PgCluster {
    /// Stops the server (if it runs) and lets the watchdog delete the
    /// directory; never panics.
    fn shut_down(&self) {
        let _ = self
            .command("pg_ctl")
            .arg(format!("--pgdata={}", self.data().display()))
            .args(["--wait", "--mode=fast", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let watchdog = self.watchdog.lock().ok().and_then(|mut w| w.take());
        if let Some(mut watchdog) = watchdog {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}

static SHARED_POSTGRES: OnceLock<Option<PgCluster>> = OnceLock::new();

/// Stops the shared server when the test process exits normally (a
/// static is never dropped), so that none is left running, even briefly,
/// once `cargo test` returns. (If the process is killed, the watchdog
/// does it a moment later.)
extern "C" fn stop_shared_postgres() {
    if let Some(Some(pg)) = SHARED_POSTGRES.get() {
        pg.shut_down();
    }
}

unsafe extern "C" {
    /// The C library's: runs `callback` when the process exits.
    fn atexit(callback: extern "C" fn()) -> std::os::raw::c_int;
}

/// The PostgreSQL server this test process shares (started by the first
/// test that asks; stopped when the process ends). `None`: not installed
/// (the caller skips).
pub fn shared_postgres() -> Option<&'static PgCluster> {
    SHARED_POSTGRES
        .get_or_init(|| {
            let pg = PgCluster::start()?;
            // SAFETY: registers a plain function, which touches only a
            // static that outlives it, with the C library.
            unsafe { atexit(stop_shared_postgres) };
            Some(pg)
        })
        .as_ref()
}

/// A fresh database of its own on the shared PostgreSQL server, for one
/// test: its URL, for `banter --store URL`. `None`: PostgreSQL is not
/// installed, and the test should return (it was told it is skipped).
pub fn postgres_url() -> Option<String> {
    shared_postgres().map(PgCluster::create_database)
}

/// The password the tests give the accounts they register.
pub const PW: &str = "correct horse";

/// Registers the account `nick` (password [`PW`]) from a connection of its
/// own.
pub async fn register(server: &TestServer, nick: &str) {
    let mut c = Client::connect(server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":nick,"password":PW}))
        .await;
    c.expect("registered").await;
}

/// Logs into `nick`'s account with [`PW`] over `kind`: the client, and the
/// `logged_in` it got.
pub async fn log_in(server: &TestServer, kind: Kind, nick: &str) -> (Client, Value) {
    let hello = json!({"type":"hello","nick":nick,"password":PW});
    let (mut c, welcome) = Client::hello_with(server, kind, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let logged_in = c.expect("logged_in").await;
    (c, logged_in)
}

/// Registers an IRC client logged into `nick`'s account with SASL PLAIN
/// (asking for the nick `nick_` first).
pub async fn irc_sasl(server: &TestServer, nick: &str) -> IrcClient {
    let mut irc = IrcClient::connect(server).await;
    irc.send("CAP LS 302").await;
    let ls = irc.expect("CAP").await;
    assert!(ls.contains("sasl"), "{ls}");
    irc.send(&format!("NICK {nick}_")).await;
    irc.send(&format!("USER {nick} 0 * :{nick}")).await;
    irc.send("CAP REQ :sasl").await;
    irc.expect("CAP").await;
    irc.send("AUTHENTICATE PLAIN").await;
    assert_eq!(irc.expect("AUTHENTICATE").await, "AUTHENTICATE +");
    let payload = base64(format!("\0{nick}\0{PW}").as_bytes());
    irc.send(&format!("AUTHENTICATE {payload}")).await;
    let logged = irc.expect("900").await;
    assert!(logged.contains(&format!("as {nick}")), "{logged}");
    irc.expect("903").await;
    irc.send("CAP END").await;
    let welcome = irc.wait_for("001").await;
    assert!(welcome.contains(nick), "{welcome}");
    irc.wait_for("376").await;
    irc.wait_for("900").await;
    irc
}

/// Base64 of `bytes` (SASL PLAIN's payload).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
