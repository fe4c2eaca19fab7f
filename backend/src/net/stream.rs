//! [`Stream`]: an accepted connection, plain TCP or TLS, that the
//! transports read and write without caring which.
//!
//! Plain connections keep the transports' readiness-first reading (an idle
//! connection holds no read buffer) and, on listeners not configured for
//! the PROXY protocol, watch the first bytes for a PROXY header, which they
//! report as [`UnexpectedHeader`]. TLS connections read through rustls,
//! which holds its own buffers; ours is released whenever a read finds
//! nothing.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use banter_protocol::LineDecoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::proxy_protocol::{Sniffer, UnexpectedHeader};

pub enum Stream {
    Plain {
        tcp: TcpStream,
        /// Watching for a PROXY header that must not be there; `None` once
        /// the first bytes have shown there is none.
        sniff: Option<Sniffer>,
    },
    Tls(Box<TlsStream<TcpStream>>),
}

/// A read buffer the transports fill: `read` gets the free space.
pub trait Fill {
    fn fill_with(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize>;

    /// Frees the buffer if it holds nothing (while waiting for input).
    fn release_if_idle(&mut self);
}

impl Fill for LineDecoder {
    fn fill_with(
        &mut self,
        max: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.fill(max, read)
    }

    fn release_if_idle(&mut self) {
        self.shrink_if_idle();
    }
}

impl Stream {
    /// A plain connection; `sniff`: refuse a PROXY header at its start.
    pub fn plain(tcp: TcpStream, sniff: bool) -> Stream {
        Stream::Plain {
            tcp,
            sniff: sniff.then(Sniffer::new),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Reads up to `max` bytes of waiting input into `buf`, or registers
    /// `cx` to be woken when some comes; `Ok(0)` at the end of the stream.
    /// Holds no state between polls, so a session needs no future for it.
    pub fn poll_read_into<B: Fill>(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut B,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        match self {
            Stream::Plain { tcp, sniff } => loop {
                std::task::ready!(tcp.poll_read_ready(cx))?;
                let result = buf.fill_with(max, |space| {
                    // `poll_read`, unlike `try_read`, forgets the readiness
                    // after a short read (on Linux): the next poll waits for
                    // the next input instead of asking the kernel to hear
                    // "none yet" (a system call per message saved).
                    let mut read = ReadBuf::new(space);
                    match Pin::new(&mut *tcp).poll_read(cx, &mut read) {
                        Poll::Ready(result) => result?,
                        Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
                    }
                    let n = read.filled().len();
                    if let Some(sniffer) = sniff {
                        match sniffer.feed(&space[..n]) {
                            Some(true) => return Err(UnexpectedHeader::error()),
                            Some(false) => *sniff = None,
                            None => {}
                        }
                    }
                    Ok(n)
                });
                match result {
                    // Nothing came (the readiness cleared, `cx` registered)
                    // or the task's budget is spent: the next poll waits,
                    // unless input came meanwhile, and an idle connection
                    // keeps no read buffer of ours meanwhile.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        buf.release_if_idle();
                        continue;
                    }
                    other => return Poll::Ready(other),
                }
            },
            Stream::Tls(tls) => {
                let result = buf.fill_with(max, |space| {
                    let mut read = ReadBuf::new(space);
                    match Pin::new(&mut **tls).poll_read(cx, &mut read) {
                        Poll::Ready(Ok(())) => Ok(read.filled().len()),
                        Poll::Ready(Err(e)) => Err(e),
                        Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
                    }
                });
                match result {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Nothing came: an idle connection keeps no
                        // read buffer of ours (rustls keeps its own).
                        buf.release_if_idle();
                        Poll::Pending
                    }
                    other => Poll::Ready(other),
                }
            }
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain { tcp, .. } => tcp.is_write_vectored(),
            Stream::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain { tcp, .. } => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}
