//! Binds the listeners, runs the transports, and shuts down gracefully:
//! on the shutdown signal listeners stop accepting, every session sends
//! its client a `closing` notice and ends, and [`run`] returns once they
//! have (or once the grace period is over).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Settings;
use crate::context::Context;
use crate::net::http::{Admission, HttpLimits, HttpListener};
use crate::net::tls::{ALPN_HTTP, Certs};
use crate::net::{Listen, forwarded::Cidr};
use crate::store::Write;
use crate::transport;

/// Retention: every `--retention-interval` seconds, deletes what is older
/// than `--retain-age` or beyond the newest `--retain-count` of a room.
async fn retention(ctx: Arc<Context>) {
    let settings = &ctx.settings;
    let age = (settings.retain_age > 0).then_some(settings.retain_age);
    let keep = (settings.retain_count > 0).then_some(settings.retain_count);
    let Some(store) = &ctx.store else { return };
    if age.is_none() && keep.is_none() {
        return;
    }
    let every = Duration::from_secs(settings.retention_interval);
    loop {
        tokio::select! {
            _ = ctx.shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let before_ts = age.map(|secs| crate::core::router::now_ms().saturating_sub(secs * 1000));
        ctx.router.retain(before_ts, keep);
        match store
            .request(|reply| Write::Retain {
                before_ts,
                keep,
                reply,
            })
            .await
        {
            Ok(0) => {}
            Ok(gone) => info!(gone, "retention deleted old messages"),
            Err(e) => warn!("retention failed: {e:#}"),
        }
    }
}

/// Where a running server listens (port 0 in the settings: the port the
/// system chose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub irc: SocketAddr,
    pub ircs: Option<SocketAddr>,
    /// `--admin`: health and metrics for operators.
    pub admin: Option<SocketAddr>,
}

/// Runs the server until `shutdown` is cancelled, then drains it.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with(settings, shutdown, |_| {}).await
}

/// [`run`], telling `ready` where the server listens once every listener
/// runs (tests run servers in-process this way).
pub async fn run_with(
    settings: Settings,
    shutdown: CancellationToken,
    ready: impl FnOnce(Listening),
) -> anyhow::Result<()> {
    let server = start(settings, shutdown.clone()).await?;
    ready(server.listening);
    shutdown.cancelled().await;
    server.drain().await;
    Ok(())
}

/// The sockets a server listens on, bound before anything else starts (so
/// a taken port fails at once).
struct Sockets {
    http: TcpListener,
    tcp: TcpListener,
    irc: TcpListener,
    ircs: Option<TcpListener>,
    admin: Option<TcpListener>,
}

impl Sockets {
    fn bind(settings: &Settings) -> anyhow::Result<Sockets> {
        let http = bind(settings.http)
            .with_context(|| format!("cannot listen for HTTP on {}", settings.http))?;
        let tcp = bind(settings.tcp)
            .with_context(|| format!("cannot listen for JSON-lines TCP on {}", settings.tcp))?;
        let irc = bind(settings.irc)
            .with_context(|| format!("cannot listen for IRC on {}", settings.irc))?;
        let ircs = match settings.irc_tls {
            Some(addr) => Some(
                bind(addr).with_context(|| format!("cannot listen for IRC over TLS on {addr}"))?,
            ),
            None => None,
        };
        let admin = match settings.admin {
            Some(addr) => {
                Some(bind(addr).with_context(|| format!("cannot listen for --admin on {addr}"))?)
            }
            None => None,
        };
        Ok(Sockets {
            http,
            tcp,
            irc,
            ircs,
            admin,
        })
    }

    fn listening(&self) -> std::io::Result<Listening> {
        Ok(Listening {
            http: self.http.local_addr()?,
            tcp: self.tcp.local_addr()?,
            irc: self.irc.local_addr()?,
            ircs: self
                .ircs
                .as_ref()
                .map(TcpListener::local_addr)
                .transpose()?,
            admin: self
                .admin
                .as_ref()
                .map(TcpListener::local_addr)
                .transpose()?,
        })
    }
}

/// A server whose listeners run.
struct Running {
    ctx: Arc<Context>,
    listening: Listening,
    /// The listeners' tasks: the HTTP one last, as it serves the
    /// WebSocket sessions that shutdown waits for.
    listeners: Vec<tokio::task::JoinHandle<()>>,
    http: tokio::task::JoinHandle<()>,
}

/// Binds the listeners, opens the store (and broker), and starts every
/// listener and background task.
async fn start(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Running> {
    let sockets = Sockets::bind(&settings)?;
    let listening = sockets.listening()?;
    let certs = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(Certs::load(cert, key)?),
        _ => None,
    };
    let ctx = Arc::new(Context::open(settings, shutdown.clone()).await?);
    announce(&ctx.settings, &listening, certs.as_deref());
    let settings = &ctx.settings;
    let tls = |on: bool, alpn: &[&[u8]]| match (&certs, on) {
        (Some(certs), true) => certs.acceptor(alpn).map(Some),
        _ => Ok(None),
    };
    let listen = |proxy_protocol: bool, tls| Listen {
        proxy_protocol,
        trusted: settings.trusted_proxy.clone(),
        tls,
        timeout: settings.handshake_timeout(),
        handshakes: Default::default(),
    };
    let tcp_listen = listen(settings.tcp_proxy_protocol, tls(settings.tcp_tls, &[])?);
    let irc_listen = listen(settings.irc_proxy_protocol, None);
    let admission = Admission {
        addresses: ctx.addresses.clone(),
        trusted: settings.trusted_proxy.clone(),
    };
    let http = match tls(settings.http_tls, ALPN_HTTP)? {
        Some(acceptor) => HttpListener::tls(
            sockets.http,
            acceptor,
            admission,
            settings.handshake_timeout(),
            shutdown.clone(),
        )?,
        None => HttpListener::plain(sockets.http, admission),
    };
    let mut listeners = vec![
        tokio::spawn(transport::tcp::serve(sockets.tcp, ctx.clone(), tcp_listen)),
        tokio::spawn(transport::irc::serve(sockets.irc, ctx.clone(), irc_listen)),
    ];
    if let Some(ircs) = sockets.ircs {
        let ircs_listen = listen(settings.irc_proxy_protocol, tls(true, &[])?);
        listeners.push(tokio::spawn(transport::irc::serve(
            ircs,
            ctx.clone(),
            ircs_listen,
        )));
    }
    tokio::spawn(crate::net::tls::reload_on_sighup(certs, shutdown.clone()));
    tokio::spawn(retention(ctx.clone()));
    let alarms = ctx.clone();
    tokio::spawn(async move { alarms.alarms.run(&alarms.shutdown).await });
    if let Some(admin) = sockets.admin {
        let app = axum::Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz_in_detail))
            .route("/metrics", get(metrics))
            .with_state(ctx.clone());
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(admin, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await;
            if let Err(e) = served {
                warn!("the --admin listener stopped: {e}");
            }
        });
    }
    let mut app = axum::Router::new()
        .route("/ws", get(transport::ws::upgrade))
        .route("/irc", get(transport::irc::websocket::upgrade))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if settings.metrics_public {
        app = app.route("/metrics", get(metrics));
    }
    let app = app
        .merge(crate::web::routes(ctx.settings.web_dir.clone()))
        .layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            irc_at_root,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(crate::web::SecurityHeaders {
                web_dir: ctx.settings.web_dir.clone(),
                tls: ctx.settings.http_tls,
            }),
            crate::web::security_headers,
        ))
        .with_state(ctx.clone());
    let limits = HttpLimits {
        max_connections: settings.max_connections,
        header_timeout: settings.handshake_timeout(),
        write_timeout: settings.write_timeout(),
    };
    let http = tokio::spawn(crate::net::http::serve(http, app, limits, shutdown));
    ctx.listening.store(true, Ordering::Release);
    info!("banter ready: {}", ready_line(&listening));
    Ok(Running {
        ctx,
        listening,
        listeners,
        http,
    })
}

/// The `banter ready:` log line's addresses (scripts and tests read it).
fn ready_line(at: &Listening) -> String {
    let mut ready = format!("http={} tcp={} irc={}", at.http, at.tcp, at.irc);
    if let Some(ircs) = at.ircs {
        ready.push_str(&format!(" ircs={ircs}"));
    }
    if let Some(admin) = at.admin {
        ready.push_str(&format!(" admin={admin}"));
    }
    ready
}

/// Logs where each kind of client connects.
fn announce(settings: &Settings, at: &Listening, certs: Option<&Certs>) {
    let http = at.http;
    let web = if settings.http_tls { "https" } else { "http" };
    match &settings.web_dir {
        Some(dir) => info!(
            "web client: {web}://{http}/ (served from {})",
            dir.display()
        ),
        None if crate::web::embedded_client_present() => info!("web client: {web}://{http}/"),
        None => warn!(
            "this build has no web client (build it with scripts/run); {web}://{http}/ says so"
        ),
    }
    let ws = if settings.http_tls { "wss" } else { "ws" };
    info!("WebSocket clients: {ws}://{http}/ws (web IRC clients: {ws}://{http}/irc)");
    let tcp_tls = if settings.tcp_tls { ", TLS" } else { "" };
    info!(
        "JSON-lines TCP clients: {}{tcp_tls}{}",
        at.tcp,
        proxied(settings.tcp_proxy_protocol)
    );
    info!(
        "IRC clients: {} (e.g. irssi -c {} -p {}){}",
        at.irc,
        at.irc.ip(),
        at.irc.port(),
        proxied(settings.irc_proxy_protocol)
    );
    if let Some(addr) = at.ircs {
        info!(
            "IRC over TLS: {addr} (e.g. irssi -c {} -p {} -tls){}",
            addr.ip(),
            addr.port(),
            proxied(settings.irc_proxy_protocol)
        );
    }
    if let Some(admin) = at.admin {
        info!("health and metrics: http://{admin}/readyz, http://{admin}/metrics (--admin)");
    }
    if settings.metrics_public {
        info!("/metrics is public on {web}://{http}/metrics (--metrics-public)");
    }
    if let Some(certs) = certs {
        info!(
            "TLS certificate: {} (send SIGHUP to reload it)",
            certs.cert_path().display()
        );
    }
    if !settings.trusted_proxy.is_empty() {
        let list: Vec<String> = settings.trusted_proxy.iter().map(Cidr::to_string).collect();
        info!("trusted proxies: {}", list.join(", "));
    }
    let everyone = settings.trusted_proxy.iter().any(|c| c.0.prefix_len() == 0);
    let any_proxy_protocol = (settings.tcp_proxy_protocol || settings.irc_proxy_protocol)
        && settings.trusted_proxy.is_empty();
    if settings.trust_any_peer && (everyone || any_proxy_protocol) {
        warn!(
            "--trust-any-peer: every peer's forwarded or PROXY headers name the client, so \
             per-address limits hold only if nothing but your proxies can reach banter"
        );
    }
}

impl Running {
    /// Shutdown: listeners stop, sessions say `closing` and end (within
    /// the grace period), the cluster is left and the store flushed.
    async fn drain(self) {
        let Running {
            ctx,
            listeners,
            http,
            ..
        } = self;
        let grace = ctx.settings.shutdown_grace();
        ctx.listening.store(false, Ordering::Release);
        info!("shutting down: closing listeners and telling clients");
        ctx.tracker.close();
        let drained = tokio::time::timeout(grace, async {
            for task in listeners {
                let _ = task.await;
            }
            ctx.tracker.wait().await;
            let _ = http.await;
        })
        .await;
        match drained {
            Ok(()) => info!("shut down cleanly"),
            Err(_) => warn!(
                open = ctx.tracker.len(),
                "sessions still open after the {}s grace period; closing them",
                grace.as_secs()
            ),
        }
        if let Some(broker) = &ctx.broker {
            broker.leave().await;
        }
        if let Some(store) = &ctx.store
            && let Err(e) = store.flush().await
        {
            warn!("could not flush the store: {e:#}");
        }
    }
}

fn proxied(on: bool) -> &'static str {
    if on { ", PROXY protocol required" } else { "" }
}

/// Connections the kernel may hold for banter to accept: a reconnect
/// storm (every client of a restarted server at once) must not overflow
/// the queue, or clients wait on SYN retries. Capped by the kernel's
/// `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener with [`LISTEN_BACKLOG`] (tokio's default is 1024).
fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std and tokio do: a restarted server may bind while old
    // connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A WebSocket upgrade of `/` is IRC over WebSocket, as at `/irc`: web IRC
/// clients (and IRC test suites) are often given the bare host.
async fn irc_at_root(
    State(ctx): State<Arc<Context>>,
    peer: axum::extract::ConnectInfo<crate::net::http::HttpPeer>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let upgrade = request.uri().path() == "/"
        && request
            .headers()
            .get(header::UPGRADE)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if upgrade {
        return transport::irc::websocket::upgrade(State(ctx), peer, request).await;
    }
    next.run(request).await
}

/// `GET /healthz`: the process is alive and answering.
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz` on the chat port: 200 when the listeners run and the
/// store (and broker) answer within a second, else 503 with the reason in
/// a word (`store: unavailable`); a load balancer sends no new users
/// while it says 503 (it does from the start of a shutdown). The error
/// itself is for operators: [`readyz_in_detail`], on `--admin`, and the log.
async fn readyz(State(ctx): State<Arc<Context>>) -> (StatusCode, String) {
    match readiness(&ctx).await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(not) => (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", not.reason)),
    }
}

/// `GET /readyz` on `--admin`: the same, with the error in full.
async fn readyz_in_detail(State(ctx): State<Arc<Context>>) -> (StatusCode, String) {
    match readiness(&ctx).await {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(not) => (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", not.detail)),
    }
}

/// Why a node is not ready: in a word, and in full.
struct NotReady {
    reason: &'static str,
    detail: String,
}

impl NotReady {
    fn plain(reason: &'static str) -> NotReady {
        NotReady {
            reason,
            detail: reason.into(),
        }
    }
}

async fn readiness(ctx: &Context) -> Result<(), NotReady> {
    if ctx.shutdown.is_cancelled() {
        return Err(NotReady::plain("shutting down"));
    }
    if !ctx.listening.load(Ordering::Acquire) {
        return Err(NotReady::plain("starting"));
    }
    let second = Duration::from_secs(1);
    if let Some(store) = &ctx.store {
        match tokio::time::timeout(second, store.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!("readyz: store: {e:#}");
                return Err(NotReady {
                    reason: "store: unavailable",
                    detail: format!("store: {e:#}"),
                });
            }
            Err(_) => return Err(NotReady::plain("store: no answer within 1s")),
        }
    }
    if let Some(broker) = &ctx.broker {
        match tokio::time::timeout(second, broker.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                warn!("readyz: broker: {e:#}");
                return Err(NotReady {
                    reason: "broker: unavailable",
                    detail: format!("broker: {e:#}"),
                });
            }
            Err(_) => return Err(NotReady::plain("broker: no answer within 1s")),
        }
    }
    Ok(())
}

/// `GET /metrics`: Prometheus (OpenMetrics text) metrics.
async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        crate::metrics::metrics().render(),
    )
}
