//! The HTTP listener: plain TCP, or TLS with the handshakes done in tasks
//! of their own (one slow client never holds up the others) and finished
//! connections handed on in order of completion; and [`serve`], which runs
//! the axum app on it with bounded connections and a request-head timeout,
//! and shuts down gracefully on both.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::Listener;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Stream;

/// TLS handshakes in progress at once; more connections wait in the
/// kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;

/// Who an HTTP request came from, directly: the peer's address and
/// whether the connection is TLS. (The client behind a proxy is
/// [`client_addr`](super::forwarded::client_addr).)
#[derive(Clone, Copy, Debug)]
pub struct HttpPeer {
    pub addr: SocketAddr,
    pub tls: bool,
}

pub enum HttpListener {
    Plain(TcpListener),
    Tls {
        local: SocketAddr,
        done: mpsc::Receiver<(Stream, HttpPeer)>,
    },
}

impl HttpListener {
    /// Serves TLS on `listener`: handshakes run until `shutdown`.
    pub fn tls(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        handshake_timeout: Duration,
        shutdown: CancellationToken,
    ) -> io::Result<HttpListener> {
        let local = listener.local_addr()?;
        let (tx, done) = mpsc::channel(64);
        tokio::spawn(async move {
            let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
            loop {
                let Ok(permit) = handshakes.clone().acquire_owned().await else {
                    return;
                };
                let (tcp, addr) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = super::accept(&listener, "http") => accepted,
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await;
                    drop(permit);
                    match handshake {
                        Ok(Ok(tls)) => {
                            let peer = HttpPeer { addr, tls: true };
                            let _ = tx.send((Stream::Tls(Box::new(tls)), peer)).await;
                        }
                        Ok(Err(e)) => {
                            debug!(peer = %addr, error = %e, "HTTPS: TLS handshake failed")
                        }
                        Err(_) => debug!(peer = %addr, "HTTPS: no TLS handshake in time"),
                    }
                });
            }
        });
        Ok(HttpListener::Tls { local, done })
    }
}

impl Listener for HttpListener {
    type Io = Stream;
    type Addr = HttpPeer;

    async fn accept(&mut self) -> (Stream, HttpPeer) {
        match self {
            HttpListener::Plain(listener) => {
                let (tcp, addr) = super::accept(listener, "http").await;
                (Stream::plain(tcp, false), HttpPeer { addr, tls: false })
            }
            HttpListener::Tls { done, .. } => match done.recv().await {
                Some(conn) => conn,
                // Shut down: axum stops asking before long.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<HttpPeer> {
        Ok(match self {
            HttpListener::Plain(listener) => HttpPeer {
                addr: listener.local_addr()?,
                tls: false,
            },
            HttpListener::Tls { local, .. } => HttpPeer {
                addr: *local,
                tls: true,
            },
        })
    }
}

/// How [`serve`] bounds HTTP connections.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Open HTTP connections at once (an upgraded WebSocket stops counting
    /// here and counts as a session instead); more are closed at once.
    pub max_connections: usize,
    /// Time to send a request's head (slowloris), also between requests
    /// on a kept-alive connection.
    pub header_timeout: Duration,
}

/// Serves `app` over HTTP/1.1 (with upgrades, for `/ws`) until
/// `shutdown`, then lets each connection finish its request. Unlike
/// `axum::serve` it bounds the number of connections and the time to send
/// a request head.
pub async fn serve(
    mut listener: HttpListener,
    app: axum::Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    use axum::extract::ConnectInfo;
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower_service::Service;

    let open = Arc::new(Semaphore::new(limits.max_connections));
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let (io, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            crate::metrics::metrics().limited(crate::metrics::Limit::Connections);
            debug!(peer = %peer.addr, "HTTP connection refused: too many open");
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move { app.call(request).await }
        });
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            let done = tokio::select! {
                done = conn.as_mut() => done,
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = done {
                debug!(peer = %peer.addr, error = %e, "HTTP connection ended");
            }
            drop(permit);
        });
    }
    connections.close();
    connections.wait().await;
}
