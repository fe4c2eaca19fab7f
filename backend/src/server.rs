//! Binds the listeners, runs the transports, and shuts down gracefully:
//! on the shutdown signal listeners stop accepting, every session sends
//! its client a `closing` notice and ends, and [`run`] returns once they
//! have (or once the grace period is over).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Settings;
use crate::router::{Router, RouterConfig};
use crate::transport;

/// What every session and listener shares.
pub struct Context {
    pub settings: Settings,
    pub router: Router,
    /// Cancelled once, when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every connection's task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// One permit per open connection, all transports together.
    pub connections: Arc<Semaphore>,
}

impl Context {
    pub fn new(settings: Settings, shutdown: CancellationToken) -> Self {
        let router = Router::new(RouterConfig {
            max_text_bytes: settings.max_text_bytes,
            max_rooms_per_session: settings.max_rooms_per_session,
            max_rooms: settings.max_rooms,
            history_len: settings.history_len,
        });
        Context {
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            settings,
            router,
            shutdown,
            tracker: TaskTracker::new(),
        }
    }
}

/// Runs the server until `shutdown` is cancelled, then drains it.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<()> {
    let http = TcpListener::bind(settings.http)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", settings.http))?;
    let tcp = TcpListener::bind(settings.tcp)
        .await
        .with_context(|| format!("cannot listen for JSON-lines TCP on {}", settings.tcp))?;
    let irc = TcpListener::bind(settings.irc)
        .await
        .with_context(|| format!("cannot listen for IRC on {}", settings.irc))?;
    let (http_addr, tcp_addr, irc_addr) =
        (http.local_addr()?, tcp.local_addr()?, irc.local_addr()?);
    let grace = settings.shutdown_grace();
    info!(
        "history is kept in memory (data directory {} is reserved for persistence)",
        settings.data_dir.display()
    );
    match &settings.web_dir {
        Some(dir) => info!(
            "web client: http://{http_addr}/ (served from {})",
            dir.display()
        ),
        None if crate::web::embedded_client_present() => info!("web client: http://{http_addr}/"),
        None => warn!(
            "this build has no web client (build it with scripts/run); http://{http_addr}/ says so"
        ),
    }
    info!("WebSocket clients: ws://{http_addr}/ws");
    info!("JSON-lines TCP clients: {tcp_addr}");
    info!(
        "IRC clients: {irc_addr} (e.g. irssi -c {} -p {})",
        irc_addr.ip(),
        irc_addr.port()
    );
    let ctx = Arc::new(Context::new(settings, shutdown.clone()));

    let tcp_task = tokio::spawn(transport::tcp::serve(tcp, ctx.clone()));
    let irc_task = tokio::spawn(transport::irc::serve(irc, ctx.clone()));
    let app = axum::Router::new()
        .route("/ws", get(transport::ws::upgrade))
        .route("/healthz", get(healthz))
        .merge(crate::web::routes(ctx.settings.web_dir.clone()))
        .with_state(ctx.clone());
    let http_task = tokio::spawn(
        axum::serve(
            http,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future(),
    );
    info!("banter ready: http={http_addr} tcp={tcp_addr} irc={irc_addr}");

    shutdown.cancelled().await;
    info!("shutting down: closing listeners and telling clients");
    ctx.tracker.close();
    let drained = tokio::time::timeout(grace, async {
        let _ = tcp_task.await;
        let _ = irc_task.await;
        ctx.tracker.wait().await;
        let _ = http_task.await;
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
    Ok(())
}

async fn healthz() -> &'static str {
    "ok\n"
}
