//! One load client's connection on any of the three wires: Banter's JSON
//! over WebSocket or TCP lines, or plain IRC (any server: NICK/USER, wait
//! for 001, JOIN, PRIVMSG, PING/PONG). Registration and join happen in
//! [`Conn::open`]; after that [`Conn::recv`] reads (cancel-safely) and
//! [`Conn::drain`] reports the deliveries found. Frames Banter's outbox
//! policy dropped for a slow reader are counted as it announces them:
//! JSON's `lagged`, and on IRC the notice it renders that as
//! ([`irc_lagged`]).
//!
//! WebSocket: tungstenite does the opening handshake; after it the frames
//! are read in place from the same buffer as a stream wire's lines (its
//! `FrameHeader` parses each header) and ours are masked and written here.
//! A message per `poll_next`, each in its own allocation, validated as
//! UTF-8, made the generator twice as costly per delivery on WebSocket as
//! on IRC, and it measures the server only as far as it keeps up.

use std::hash::{BuildHasher, RandomState};
use std::io::Cursor;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::payload::{JsonEvent, irc_lagged, irc_line, json_event};

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
/// The longest WebSocket message taken from a server (Banter's largest is
/// a `joined` with history, tens of KB).
const MAX_WS_MESSAGE: u64 = 16 << 20;

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

pub struct Conn {
    transport: Transport,
    stream: TcpStream,
    /// Bytes read and not yet handled: lines, or WebSocket frames.
    buf: Vec<u8>,
    /// Answers owed to the server (pongs), written by [`flush_replies`](Self::flush_replies).
    replies: String,
    ws: Ws,
}

/// What a WebSocket client keeps between reads.
#[derive(Default)]
struct Ws {
    /// The message in progress, if its first frame was not its last:
    /// whether it is text (a binary one is skipped), and its text so far.
    message: Option<bool>,
    fragments: Vec<u8>,
    /// The state of the masks for our frames (see [`Ws::mask`]).
    masks: u64,
    /// Control frames owed to the server (pongs), ready to write.
    control: Vec<u8>,
    /// Why the stream can no longer be read: after a frame the generator
    /// cannot take, the bytes that follow are not frames.
    broken: Option<&'static str>,
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
        let stream = match transport {
            Transport::Ws => {
                let url = format!("ws://{addr}/ws");
                let (ws, _) = tokio_tungstenite::client_async(url, stream)
                    .await
                    .context("WebSocket handshake")?;
                // The server says nothing before our hello, so nothing read
                // past the handshake's response is left in tungstenite.
                ws.into_inner()
            }
            Transport::Tcp | Transport::Irc => stream,
        };
        Ok(Conn {
            transport,
            stream,
            buf: Vec::new(),
            replies: String::new(),
            ws: Ws {
                masks: RandomState::new().hash_one(addr) | 1,
                ..Ws::default()
            },
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
        if let Some(why) = self.ws.broken {
            bail!("{why}");
        }
        if self.buf.capacity() - self.buf.len() < READ_CHUNK / 2 {
            self.buf.reserve(READ_CHUNK);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the connection");
        }
        Ok(())
    }

    /// Hands every complete line (or WebSocket message) read so far to
    /// `on_event`; pings are answered (queued in the replies).
    pub fn drain(&mut self, mut on_event: impl FnMut(Event)) {
        let start = match self.transport {
            Transport::Ws => {
                drain_frames(&self.buf, &mut self.ws, &mut self.replies, &mut on_event)
            }
            transport => {
                let mut start = 0;
                while let Some(len) = memchr::memchr(b'\n', &self.buf[start..]) {
                    let line = &self.buf[start..start + len];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    match transport {
                        Transport::Irc => handle_irc(line, &mut self.replies, &mut on_event),
                        _ => handle_json(line, &mut self.replies, &mut on_event),
                    }
                    start += len + 1;
                }
                start
            }
        };
        self.buf.drain(..start);
        if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK {
            self.buf = Vec::new();
        }
    }

    /// Writes pongs owed to the server.
    pub async fn flush_replies(&mut self) -> Result<()> {
        if !self.ws.control.is_empty() {
            let control = std::mem::take(&mut self.ws.control);
            self.stream.write_all(&control).await?;
        }
        if self.replies.is_empty() {
            return Ok(());
        }
        let replies = std::mem::take(&mut self.replies);
        self.write(&replies).await
    }

    /// Writes lines in the transport's format (IRC lines, or JSON lines:
    /// on WebSocket each line becomes one masked text frame), in one go.
    pub async fn write(&mut self, lines: &str) -> Result<()> {
        match self.transport {
            Transport::Ws => {
                let mut out = Vec::with_capacity(lines.len() + 16);
                for line in lines.split_terminator('\n') {
                    let mask = Some(self.ws.mask());
                    put_frame(
                        OpCode::Data(Data::Text),
                        true,
                        mask,
                        line.as_bytes(),
                        &mut out,
                    );
                }
                self.stream.write_all(&out).await?;
            }
            _ => self.stream.write_all(lines.as_bytes()).await?,
        }
        Ok(())
    }

    /// Says goodbye (IRC `QUIT`, WebSocket close) and closes, briefly.
    pub async fn close(mut self) {
        let _ = timeout(Duration::from_secs(1), async {
            match self.transport {
                Transport::Irc => {
                    let _ = self.stream.write_all(b"QUIT :done\r\n").await;
                }
                Transport::Ws => {
                    let mut out = Vec::new();
                    put_frame(
                        OpCode::Control(Control::Close),
                        true,
                        Some(self.ws.mask()),
                        &[],
                        &mut out,
                    );
                    let _ = self.stream.write_all(&out).await;
                }
                Transport::Tcp => {}
            }
            let _ = self.stream.shutdown().await;
        })
        .await;
    }
}

/// The WebSocket part of [`Conn::drain`]: handles every whole frame in
/// `buf` and returns how many bytes they took. A frame the generator
/// cannot take (masked, over-long, malformed, out of sequence) is a
/// failure, and the stream is broken from there: [`Conn::recv`] says so.
fn drain_frames(
    buf: &[u8],
    ws: &mut Ws,
    replies: &mut String,
    on_event: &mut impl FnMut(Event),
) -> usize {
    if ws.broken.is_some() {
        return buf.len();
    }
    match frames(buf, ws, replies, on_event) {
        Ok(used) => used,
        Err(why) => {
            ws.broken = Some(why);
            on_event(Event::Failure(why.as_bytes()));
            buf.len()
        }
    }
}

/// [`drain_frames`] until a frame it cannot take.
fn frames(
    buf: &[u8],
    ws: &mut Ws,
    replies: &mut String,
    on_event: &mut impl FnMut(Event),
) -> Result<usize, &'static str> {
    let mut start = 0;
    loop {
        let mut cursor = Cursor::new(&buf[start..]);
        let (header, len) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(start),
            Err(_) => return Err("malformed WebSocket frame"),
        };
        let control = matches!(header.opcode, OpCode::Control(_));
        if header.mask.is_some() || header.rsv1 || header.rsv2 || header.rsv3 {
            return Err("a WebSocket frame masked or with reserved bits");
        }
        if len > MAX_WS_MESSAGE || (control && (len > 125 || !header.is_final)) {
            return Err("an over-long or fragmented WebSocket frame");
        }
        let body = start + cursor.position() as usize;
        let Some(end) = body.checked_add(len as usize).filter(|&e| e <= buf.len()) else {
            return Ok(start);
        };
        let payload = &buf[body..end];
        start = end;
        match header.opcode {
            OpCode::Data(data) => {
                let first = !matches!(data, Data::Continue);
                let text = match (first, ws.message) {
                    (true, None) => matches!(data, Data::Text),
                    (false, Some(text)) => text,
                    _ => return Err("a WebSocket frame out of sequence"),
                };
                if first && header.is_final {
                    if text {
                        handle_json(payload, replies, on_event);
                    }
                    continue;
                }
                if ws.fragments.len() as u64 + len > MAX_WS_MESSAGE {
                    return Err("an over-long WebSocket message");
                }
                ws.message = Some(text);
                if text {
                    ws.fragments.extend_from_slice(payload);
                }
                if header.is_final {
                    ws.message = None;
                    let message = std::mem::take(&mut ws.fragments);
                    if text {
                        handle_json(&message, replies, on_event);
                    }
                }
            }
            OpCode::Control(Control::Ping) => {
                let mask = Some(ws.mask());
                put_frame(
                    OpCode::Control(Control::Pong),
                    true,
                    mask,
                    payload,
                    &mut ws.control,
                );
            }
            OpCode::Control(Control::Close) => on_event(Event::Failure(b"WebSocket close")),
            OpCode::Control(_) => {}
        }
    }
}

impl Ws {
    /// The mask for our next frame, as a client's frames must be masked
    /// (xorshift64: unpredictable enough for a load generator, and no
    /// system call per frame).
    fn mask(&mut self) -> [u8; 4] {
        let state = &mut self.masks;
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        (*state as u32).to_ne_bytes()
    }
}

/// Appends a frame: its header, then the payload, masked if `mask` is set.
fn put_frame(
    opcode: OpCode,
    is_final: bool,
    mask: Option<[u8; 4]>,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    let header = FrameHeader {
        is_final,
        opcode,
        mask,
        ..FrameHeader::default()
    };
    header
        .format(payload.len() as u64, out)
        .expect("writing to a Vec");
    match mask {
        Some(mask) => out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m)),
        None => out.extend_from_slice(payload),
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
        // From the server (a user's source is `nick!user@host`).
        b"NOTICE"
            if parsed.params.len() >= 2 && !parsed.source.unwrap_or_default().contains(&b'!') =>
        {
            if let Some(n) = irc_lagged(parsed.params[1]) {
                on_event(Event::Lagged(n));
            }
        }
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
                      :u2!u2@h PRIVMSG #b0 :bl 2 0 5 \r\n:srv 433 * u1 :Nickname is already in use\r\n\
                      :srv NOTICE u1 :*** Your connection fell behind: 17 messages were dropped\r\n\
                      :srv NOTICE u1 :*** Looking up your hostname\r\n\
                      :u2!u2@h NOTICE #b0 :*** Your connection fell behind: 5 messages were dropped\r\n";
        let (seen, replies) = events(Transport::Irc, input);
        assert_eq!(replies, "PONG :srv.example\r\n");
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[0], "Welcome");
        assert_eq!(seen[1], "Joined");
        assert!(seen[2].starts_with("Text("));
        assert!(seen[3].starts_with("Failure("));
        assert_eq!(seen[4], "Lagged(17)");
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

    /// A server's (unmasked) frame.
    fn server_frame(opcode: OpCode, is_final: bool, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_frame(opcode, is_final, None, payload, &mut out);
        out
    }

    fn ws() -> Ws {
        Ws {
            masks: 7,
            ..Ws::default()
        }
    }

    #[test]
    fn websocket_frames_are_read_in_place_and_pings_answered() {
        let text = OpCode::Data(Data::Text);
        let mut input = server_frame(text, true, b"{\"type\":\"joined\",\"room\":\"b0\"}");
        input.extend(server_frame(text, false, b"{\"type\":\"lag"));
        input.extend(server_frame(OpCode::Control(Control::Ping), true, b"p1"));
        input.extend(server_frame(
            OpCode::Data(Data::Continue),
            true,
            b"ged\",\"dropped\":4}",
        ));
        // A binary message, in two frames: skipped whole.
        input.extend(server_frame(
            OpCode::Data(Data::Binary),
            false,
            b"{\"type\":\"joi",
        ));
        input.extend(server_frame(OpCode::Data(Data::Continue), true, b"ned\"}"));
        // A text message over 64 KiB: the 8-byte length.
        let mut long = b"{\"type\":\"lagged\",\"dropped\":9,\"pad\":\"".to_vec();
        long.resize(70_000, b'x');
        long.extend(b"\"}");
        input.extend(server_frame(text, true, &long));
        let whole = input.len();
        let last = server_frame(text, true, b"{\"type\":\"ping\"}");
        input.extend(&last[..last.len() - 3]);

        let (mut ws, mut replies) = (ws(), String::new());
        let mut seen = Vec::new();
        let used = drain_frames(&input, &mut ws, &mut replies, &mut |e| {
            seen.push(format!("{e:?}"))
        });
        assert_eq!(used, whole, "the unfinished frame waits for the rest");
        assert_eq!(seen, ["Joined", "Lagged(4)", "Lagged(9)"]);
        assert!(replies.is_empty());
        assert!(ws.broken.is_none() && ws.message.is_none() && ws.fragments.is_empty());
        // The pong: masked, with the ping's payload.
        let mut cursor = Cursor::new(&ws.control[..]);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!(header.opcode, OpCode::Control(Control::Pong));
        let mask = header.mask.expect("a client's frames are masked");
        let body = &ws.control[cursor.position() as usize..];
        assert_eq!(len, 2);
        let unmasked: Vec<u8> = body
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        assert_eq!(unmasked, b"p1");

        let used = drain_frames(&last, &mut ws, &mut replies, &mut |_| {});
        assert_eq!(used, last.len());
        assert_eq!(replies, "{\"type\":\"pong\"}\n");
    }

    #[test]
    fn a_frame_the_generator_cannot_take_breaks_the_stream() {
        let text = OpCode::Data(Data::Text);
        let mut masked_frame = Vec::new();
        put_frame(text, true, Some([1, 2, 3, 4]), b"x", &mut masked_frame);
        let out_of_sequence = server_frame(OpCode::Data(Data::Continue), true, b"x");
        let mut interleaved = server_frame(text, false, b"{");
        interleaved.extend(server_frame(text, true, b"}"));
        let long_ping = server_frame(OpCode::Control(Control::Ping), true, &[0; 126]);
        for input in [masked_frame, out_of_sequence, interleaved, long_ping] {
            let mut ws = ws();
            let mut failures = 0;
            let mut count = |e: Event| failures += matches!(e, Event::Failure(_)) as usize;
            let used = drain_frames(&input, &mut ws, &mut String::new(), &mut count);
            assert_eq!((used, failures), (input.len(), 1), "{input:?}");
            assert!(ws.broken.is_some());
            // Nothing more is read from a broken stream.
            let more = server_frame(text, true, b"{\"type\":\"joined\"}");
            let mut seen = 0;
            assert_eq!(
                drain_frames(&more, &mut ws, &mut String::new(), &mut |_| seen += 1),
                more.len()
            );
            assert_eq!(seen, 0);
        }
    }
}
