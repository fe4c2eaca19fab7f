//! The HTTP listener: plain TCP, or TLS with the handshakes done in tasks
//! of their own (one slow client never holds up the others) and finished
//! connections handed on in order of completion; and [`serve`], which runs
//! the axum app on it with bounded connections, a request-head timeout and
//! a response write timeout, and shuts down gracefully on both.
//!
//! Every connection from a peer that is not a trusted proxy is admitted by
//! its address ([`AddressLimits`]) at accept, before the TLS handshake:
//! one address holds no more connections (handshaking or not) than its
//! share. A WebSocket upgrade takes that permit over ([`HttpConn::upgrade`]),
//! so a session counts once.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::Stream;
use super::forwarded::{Cidr, is_trusted};
use super::handshakes::Handshakes;
use crate::limits::{AddressLimits, AddressPermit, Refusal};

/// Who an HTTP request came from, directly: the peer's address and
/// whether the connection is TLS. (The client behind a proxy is
/// [`client_addr`](super::forwarded::client_addr).)
#[derive(Clone, Copy, Debug)]
pub struct HttpPeer {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// Who is let in at accept: every peer but a trusted proxy (which
/// carries many clients; their WebSocket sessions are counted by the
/// forwarded address) is admitted by its address.
#[derive(Clone)]
pub struct Admission {
    pub addresses: Arc<AddressLimits>,
    pub trusted: Vec<Cidr>,
}

impl Admission {
    /// `Ok(None)`: a trusted proxy, not counted here.
    fn admit(&self, peer: SocketAddr) -> Result<Option<AddressPermit>, Refusal> {
        if is_trusted(peer.ip(), &self.trusted) {
            return Ok(None);
        }
        self.addresses.admit(peer.ip()).map(Some)
    }
}

/// An accepted connection, ready for HTTP.
pub struct Accepted {
    pub io: Stream,
    pub peer: HttpPeer,
    /// The peer's place among its address's connections (`None` for a
    /// trusted proxy).
    pub address: Option<AddressPermit>,
}

pub enum HttpListener {
    Plain {
        listener: TcpListener,
        admission: Admission,
    },
    Tls {
        local: SocketAddr,
        done: mpsc::Receiver<Accepted>,
    },
}

impl HttpListener {
    pub fn plain(listener: TcpListener, admission: Admission) -> HttpListener {
        HttpListener::Plain {
            listener,
            admission,
        }
    }

    /// Serves TLS on `listener`: handshakes run until `shutdown`, each one
    /// only once its peer's address is admitted.
    pub fn tls(
        listener: TcpListener,
        acceptor: TlsAcceptor,
        admission: Admission,
        handshake_timeout: Duration,
        shutdown: CancellationToken,
    ) -> io::Result<HttpListener> {
        let local = listener.local_addr()?;
        let (tx, done) = mpsc::channel(64);
        tokio::spawn(async move {
            let handshakes = Handshakes::default();
            loop {
                let Some(permit) = handshakes.slot().await else {
                    return;
                };
                let (tcp, addr) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    accepted = super::accept(&listener, "http") => accepted,
                };
                // Refused: closed at once, before any TLS work (nothing
                // can be said before the handshake).
                let address = match admission.admit(addr) {
                    Ok(address) => address,
                    Err(refusal) => {
                        debug!(peer = %addr, "HTTPS connection refused: {}", refusal.message());
                        continue;
                    }
                };
                let Some(handshaking) = handshakes.start(addr.ip()) else {
                    debug!(peer = %addr, "HTTPS connection refused: too many TLS handshakes from its address");
                    continue;
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await;
                    drop((permit, handshaking));
                    match handshake {
                        Ok(Ok(tls)) => {
                            let accepted = Accepted {
                                io: Stream::Tls(Box::new(tls)),
                                peer: HttpPeer { addr, tls: true },
                                address,
                            };
                            let _ = tx.send(accepted).await;
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

    /// The next connection whose address is admitted; a plain one that is
    /// not is answered `429` and closed.
    pub async fn accept(&mut self) -> Accepted {
        match self {
            HttpListener::Plain {
                listener,
                admission,
            } => loop {
                let (tcp, addr) = super::accept(listener, "http").await;
                match admission.admit(addr) {
                    Ok(address) => {
                        return Accepted {
                            io: Stream::plain(tcp, false),
                            peer: HttpPeer { addr, tls: false },
                            address,
                        };
                    }
                    Err(refusal) => too_many_requests(tcp, addr, &refusal),
                }
            },
            HttpListener::Tls { done, .. } => match done.recv().await {
                Some(conn) => conn,
                // Shut down: `serve` stops asking before long.
                None => std::future::pending().await,
            },
        }
    }

    pub fn local_addr(&self) -> io::Result<HttpPeer> {
        Ok(match self {
            HttpListener::Plain { listener, .. } => HttpPeer {
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

/// How long a refused plain connection is given to read its answer.
const REFUSAL_GRACE: Duration = Duration::from_secs(2);

/// Answers a refused plain connection `429` (with `Retry-After` when the
/// address connected too often) and closes it, in a task of its own that
/// reads the request first (closing on an unread request resets the
/// connection, and the client would miss the answer), for a moment at most.
fn too_many_requests(mut tcp: TcpStream, addr: SocketAddr, refusal: &Refusal) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    debug!(peer = %addr, "HTTP connection refused: {}", refusal.message());
    let retry = match refusal {
        Refusal::TooFast(wait) => format!(
            "Retry-After: {}\r\n",
            wait.as_secs_f64().ceil().max(1.0) as u64
        ),
        Refusal::TooMany(_) => String::new(),
    };
    let body = refusal.message() + "\n";
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\n{retry}Connection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_GRACE, async {
            tcp.write_all(response.as_bytes()).await?;
            tcp.shutdown().await?;
            let mut sink = [0u8; 1024];
            while tcp.read(&mut sink).await? > 0 {}
            io::Result::Ok(())
        })
        .await;
    });
}

/// What a request knows of its connection: an extension of every request
/// [`serve`] hands to the app.
#[derive(Clone)]
pub struct HttpConn(Arc<ConnState>);

struct ConnState {
    /// The connection's address permit, until an upgrade takes it.
    address: Mutex<Option<AddressPermit>>,
    /// Upgraded (a WebSocket): the write timeout is the session's now.
    upgraded: AtomicBool,
}

impl HttpConn {
    /// For a WebSocket upgrade: stops the HTTP write timeout (the session
    /// has its own) and takes the connection's address permit, if it has
    /// one (a trusted proxy's has none: the session admits the forwarded
    /// client).
    pub fn upgrade(&self) -> Option<AddressPermit> {
        self.0.upgraded.store(true, Ordering::Release);
        self.0
            .address
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// A connection whose writes fail with `TimedOut` once one has made no
/// progress for `timeout` (a client that stops reading a response),
/// until the connection is upgraded.
struct WriteTimeout {
    io: Stream,
    conn: Arc<ConnState>,
    timeout: Duration,
    /// Armed while a write waits.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteTimeout {
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() || self.conn.upgraded.load(Ordering::Acquire) {
            self.stalled = None;
            return polled;
        }
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing of the response for the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.check(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.check(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.check(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
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
    /// Time a response may wait for the client to read any of it.
    pub write_timeout: Duration,
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
        let Accepted { io, peer, address } = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            crate::metrics::metrics().limited(crate::metrics::Limit::Connections);
            debug!(peer = %peer.addr, "HTTP connection refused: too many open");
            continue;
        };
        let state = Arc::new(ConnState {
            address: Mutex::new(address),
            upgraded: AtomicBool::new(false),
        });
        let io = WriteTimeout {
            io,
            conn: state.clone(),
            timeout: limits.write_timeout,
            stalled: None,
        };
        let conn = HttpConn(state);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(conn.clone());
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
