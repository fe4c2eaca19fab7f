//! The JSON-lines TCP transport: one JSON object per `\n`-terminated line,
//! the same messages as the WebSocket transport.
//!
//! An idle connection holds no buffers: the socket is polled for
//! readiness first and read into the line decoder only when bytes wait.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, ready};
use std::time::Duration;

use banter_protocol::{ErrorCode, LineDecoder};
use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::context::Context;
use crate::core::frame::Frame;
use crate::net::proxy_protocol::UnexpectedHeader;
use crate::net::{Listen, Stream};
use crate::session::{Inbound, Transport};

const READ_CHUNK: usize = 4096;
const PING_LINE: &[u8] = b"{\"type\":\"ping\"}\n";

pub struct TcpConnection {
    stream: Stream,
    decoder: LineDecoder,
}

impl TcpConnection {
    pub fn new(stream: Stream, max_line: usize) -> Self {
        TcpConnection {
            stream,
            decoder: LineDecoder::new(max_line),
        }
    }
}

impl Transport for TcpConnection {
    const TRANSPORT: &'static str = "tcp";
    const TOO_LONG: ErrorCode = ErrorCode::LineTooLong;

    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<Option<Inbound>>> {
        loop {
            if let Some(line) = self.decoder.next_line() {
                return Poll::Ready(Ok(Some(match line {
                    Ok(line) => Inbound::Text(Bytes::copy_from_slice(line)),
                    Err(_) => Inbound::TooLong,
                })));
            }
            self.decoder.shrink_if_idle();
            let read = ready!(
                self.stream
                    .poll_read_into(cx, &mut self.decoder, READ_CHUNK)
            );
            match read {
                Ok(0) => return Poll::Ready(Ok(None)),
                Ok(_) => {}
                Err(e) if UnexpectedHeader::is(&e) => {
                    return Poll::Ready(Ok(Some(Inbound::Unreadable(
                        ErrorCode::BadRequest,
                        format!("{e}: send JSON lines, or start banter with --tcp-proxy-protocol"),
                    ))));
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    async fn send(&mut self, frames: &mut VecDeque<Frame>) -> io::Result<()> {
        if frames.len() == 1 {
            let frame = frames.pop_front().expect("one frame");
            self.stream.write_all(frame.json_line()).await?;
            return self.stream.flush().await;
        }
        // Several frames: one write. Copying a few lines is far cheaper
        // than a system call per line.
        let total = frames.iter().map(|f| f.json_line().len()).sum();
        let mut buf = Vec::with_capacity(total);
        for frame in frames.drain(..) {
            buf.extend_from_slice(frame.json_line());
        }
        self.stream.write_all(&buf).await?;
        self.stream.flush().await
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.stream.write_all(PING_LINE).await?;
        self.stream.flush().await
    }

    async fn close(&mut self, closing: Option<Frame>) {
        if let Some(frame) = closing {
            let _ = self.stream.write_all(frame.json_line()).await;
        }
        let _ = self.stream.shutdown().await;
        // Read until the peer closes too (briefly), so that unread input
        // does not turn our close into a reset that destroys the notice.
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while matches!(self.stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
}

/// Accepts JSON-lines connections until shutdown.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, listen: Listen) {
    let max_line = ctx.settings.max_frame_bytes;
    super::accept_loop(listener, ctx, listen, move |stream| {
        TcpConnection::new(stream, max_line)
    })
    .await;
}
