//! One load client's connection on any of the three wires: Banter's JSON
//! over WebSocket or TCP lines, or plain IRC (any server: NICK/USER, wait
//! for 001, JOIN, PRIVMSG, PING/PONG). Registration and join happen in
//! [`Conn::open`]; after that [`Conn::recv`] reads (cancel-safely) and
//! [`Conn::drain`] reports the deliveries found.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::payload::{JsonEvent, irc_line, json_event};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Banter JSON over WebSocket (`ws://ADDR/ws`).
    Ws,
    /// Banter JSON lines over TCP.
    Tcp,
    /// IRC (Banter's IRC face or any IRC server).
    Irc,
}

/// How long registration and join may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Per-connection read buffer; it grows only for a longer line.
const READ_CHUNK: usize = 4096;

/// Something a read brought that the load accounting cares about.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// The text of a chat message (JSON `message`, IRC `PRIVMSG`).
    Text(&'a [u8]),
    /// The server dropped this many frames for us.
    Lagged(u64),
    /// The server refused something or is closing: the line, for the report.
    Failure(&'a [u8]),
    /// Our join completed (`joined`, or IRC 366 end of names).
    Joined,
    /// IRC 001: registered.
    Welcome,
}

enum Wire {
    Stream(TcpStream),
    Ws(Box<WebSocketStream<TcpStream>>),
}

pub struct Conn {
    transport: Transport,
    wire: Wire,
    /// Bytes read and not yet handled (stream wires).
    buf: Vec<u8>,
    /// Whole WebSocket messages read and not yet handled.
    frames: Vec<Message>,
    /// Answers owed to the server (pongs), written by [`flush_replies`](Self::flush_replies).
    replies: String,
}

impl Conn {
    /// Connects, registers as `nick` and joins `room`.
    pub async fn open(
        transport: Transport,
        addr: SocketAddr,
        nick: &str,
        room: &str,
    ) -> Result<Conn> {
        timeout(OPEN_TIMEOUT, Conn::open_inner(transport, addr, nick, room))
            .await
            .map_err(|_| anyhow!("no join within {}s", OPEN_TIMEOUT.as_secs()))?
    }

    /// Only connects: what a connection storm measures before registration.
    async fn connect(transport: Transport, addr: SocketAddr) -> Result<Conn> {
        let stream = TcpStream::connect(addr).await.context("connect")?;
        stream.set_nodelay(true)?;
        let wire = match transport {
            Transport::Ws => {
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_CHUNK)
                    .write_buffer_size(16 * 1024)
                    .max_write_buffer_size(1 << 20);
                let url = format!("ws://{addr}/ws");
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                        .await
                        .context("WebSocket handshake")?;
                Wire::Ws(Box::new(ws))
            }
            Transport::Tcp | Transport::Irc => Wire::Stream(stream),
        };
        Ok(Conn {
            transport,
            wire,
            buf: Vec::new(),
            frames: Vec::new(),
            replies: String::new(),
        })
    }

    async fn open_inner(
        transport: Transport,
        addr: SocketAddr,
        nick: &str,
        room: &str,
    ) -> Result<Conn> {
        let mut conn = Conn::connect(transport, addr).await?;
        match transport {
            Transport::Irc => {
                conn.write(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"))
                    .await?;
                conn.wait_for(|e| matches!(e, Event::Welcome)).await?;
                conn.write(&format!("JOIN #{room}\r\n")).await?;
            }
            Transport::Ws | Transport::Tcp => {
                conn.write(&format!(
                    "{{\"type\":\"hello\",\"nick\":\"{nick}\"}}\n{{\"type\":\"join\",\"room\":\"{room}\"}}\n"
                ))
                .await?;
            }
        }
        conn.wait_for(|e| matches!(e, Event::Joined)).await?;
        Ok(conn)
    }

    /// Reads until `wanted` is seen; a failure line before it is an error.
    async fn wait_for(&mut self, wanted: impl Fn(&Event) -> bool) -> Result<()> {
        loop {
            self.recv().await?;
            let mut found = false;
            let mut failure = None;
            self.drain(|event| {
                if let Event::Failure(line) = event {
                    failure.get_or_insert_with(|| String::from_utf8_lossy(line).into_owned());
                } else if wanted(&event) {
                    found = true;
                }
            });
            self.flush_replies().await?;
            if let Some(line) = failure {
                bail!("refused: {line}");
            }
            if found {
                return Ok(());
            }
        }
    }

    /// Waits for input and reads what is there. Cancel-safe: nothing read
    /// is lost if the future is dropped. Errors when the server closed.
    pub async fn recv(&mut self) -> Result<()> {
        match &mut self.wire {
            Wire::Stream(stream) => {
                if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
                    self.buf.reserve(READ_CHUNK);
                }
                let n = stream.read_buf(&mut self.buf).await?;
                if n == 0 {
                    bail!("the server closed the connection");
                }
            }
            Wire::Ws(ws) => {
                let message = ws
                    .next()
                    .await
                    .ok_or_else(|| anyhow!("the server closed the connection"))??;
                self.frames.push(message);
            }
        }
        Ok(())
    }

    /// Hands every complete line (or frame) read so far to `on_event`;
    /// pings are answered (queued in the replies).
    pub fn drain(&mut self, mut on_event: impl FnMut(Event)) {
        let transport = self.transport;
        let replies = &mut self.replies;
        for frame in self.frames.drain(..) {
            match frame {
                Message::Text(text) => handle_json(text.as_bytes(), replies, &mut on_event),
                Message::Close(_) => on_event(Event::Failure(b"WebSocket close")),
                _ => {}
            }
        }
        let mut start = 0;
        while let Some(len) = self.buf[start..].iter().position(|&b| b == b'\n') {
            let line = &self.buf[start..start + len];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            match transport {
                Transport::Irc => handle_irc(line, replies, &mut on_event),
                _ => handle_json(line, replies, &mut on_event),
            }
            start += len + 1;
        }
        self.buf.drain(..start);
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
    }

    /// Writes pongs owed to the server.
    pub async fn flush_replies(&mut self) -> Result<()> {
        if self.replies.is_empty() {
            return Ok(());
        }
        let replies = std::mem::take(&mut self.replies);
        self.write(&replies).await
    }

    /// Writes lines in the transport's format (IRC lines, or JSON lines:
    /// on WebSocket each line becomes one text frame), in one go.
    pub async fn write(&mut self, lines: &str) -> Result<()> {
        match &mut self.wire {
            Wire::Stream(stream) => stream.write_all(lines.as_bytes()).await?,
            Wire::Ws(ws) => {
                for line in lines.split_terminator('\n') {
                    ws.feed(Message::text(line)).await?;
                }
                ws.flush().await?;
            }
        }
        Ok(())
    }

    /// Says goodbye (IRC `QUIT`, WebSocket close) and closes, briefly.
    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(1), async {
            match &mut self.wire {
                Wire::Stream(stream) => {
                    if self.transport == Transport::Irc {
                        let _ = stream.write_all(b"QUIT :done\r\n").await;
                    }
                    let _ = stream.shutdown().await;
                }
                Wire::Ws(ws) => {
                    let _ = ws.send(Message::Close(None)).await;
                }
            }
        })
        .await;
    }
}

/// Connects and registers only, for the connection storm: returns when the
/// server has welcomed `nick` (JSON `welcome`, IRC 001).
pub async fn register(transport: Transport, addr: SocketAddr, nick: &str) -> Result<Conn> {
    timeout(OPEN_TIMEOUT, async {
        let mut conn = Conn::connect(transport, addr).await?;
        match transport {
            Transport::Irc => {
                conn.write(&format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n"))
                    .await?
            }
            _ => {
                conn.write(&format!("{{\"type\":\"hello\",\"nick\":\"{nick}\"}}\n"))
                    .await?
            }
        }
        conn.wait_for(|e| matches!(e, Event::Welcome)).await?;
        Ok(conn)
    })
    .await
    .map_err(|_| anyhow!("no welcome within {}s", OPEN_TIMEOUT.as_secs()))?
}

fn handle_json(line: &[u8], replies: &mut String, on_event: &mut impl FnMut(Event)) {
    match json_event(line) {
        JsonEvent::Message(text) => on_event(Event::Text(text)),
        JsonEvent::Lagged(n) => on_event(Event::Lagged(n)),
        JsonEvent::Ping => replies.push_str("{\"type\":\"pong\"}\n"),
        JsonEvent::Joined => on_event(Event::Joined),
        JsonEvent::Failure => on_event(Event::Failure(line)),
        JsonEvent::Other if line.starts_with(b"{\"type\":\"welcome\"") => on_event(Event::Welcome),
        JsonEvent::Other => {}
    }
}

fn handle_irc(line: &[u8], replies: &mut String, on_event: &mut impl FnMut(Event)) {
    let Some(parsed) = irc_line(line) else {
        return;
    };
    match parsed.command {
        b"PRIVMSG" if parsed.params.len() >= 2 => on_event(Event::Text(parsed.params[1])),
        b"PING" => {
            replies.push_str("PONG :");
            replies.push_str(&String::from_utf8_lossy(
                parsed.params.first().copied().unwrap_or_default(),
            ));
            replies.push_str("\r\n");
        }
        b"001" => on_event(Event::Welcome),
        b"366" => on_event(Event::Joined),
        // Refusals that stop registration or a join: nick in use or bad,
        // channel full or banned, too many channels, and ERROR.
        b"ERROR" | b"431" | b"432" | b"433" | b"436" | b"405" | b"471" | b"473" | b"474"
        | b"475" => on_event(Event::Failure(line)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(transport: Transport, input: &[u8]) -> (Vec<String>, String) {
        let mut replies = String::new();
        let mut seen = Vec::new();
        for line in input.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let mut record = |e: Event| seen.push(format!("{e:?}"));
            match transport {
                Transport::Irc => handle_irc(line, &mut replies, &mut record),
                _ => handle_json(line, &mut replies, &mut record),
            }
        }
        (seen, replies)
    }

    #[test]
    fn irc_registration_pings_and_messages() {
        let input = b":srv 001 u1 :Welcome\r\nPING :srv.example\r\n\
                      :srv 353 u1 = #b0 :u1 u2\r\n:srv 366 u1 #b0 :End of /NAMES list.\r\n\
                      :u2!u2@h PRIVMSG #b0 :bl 2 0 5 \r\n:srv 433 * u1 :Nickname is already in use\r\n";
        let (seen, replies) = events(Transport::Irc, input);
        assert_eq!(replies, "PONG :srv.example\r\n");
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[0], "Welcome");
        assert_eq!(seen[1], "Joined");
        assert!(seen[2].starts_with("Text("));
        assert!(seen[3].starts_with("Failure("));
    }

    #[test]
    fn json_welcome_join_ping_and_errors() {
        let input =
            b"{\"type\":\"welcome\",\"nick\":\"u1\"}\n{\"type\":\"joined\",\"room\":\"b0\"}\n\
                      {\"type\":\"ping\"}\n{\"type\":\"lagged\",\"dropped\":3}\n\
                      {\"type\":\"error\",\"code\":\"nick_taken\"}\n";
        let (seen, replies) = events(Transport::Tcp, input);
        assert_eq!(replies, "{\"type\":\"pong\"}\n");
        assert_eq!(seen[..3], ["Welcome", "Joined", "Lagged(3)"]);
        assert!(seen[3].starts_with("Failure("));
    }
}
