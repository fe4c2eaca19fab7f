//! What a load message carries and how it is found again on each wire:
//! the text `bl <sender> <seq> <sent_us> <padding>`, the JSON requests
//! that send it, and fast extraction from a received JSON line or IRC line
//! (no general JSON parse per delivery: the generator must stay cheaper
//! than the server it measures).

use std::fmt::Write as _;
use std::sync::LazyLock;

use memchr::memmem::Finder;

/// One load message, as decoded from a delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// The sending client's index.
    pub sender: u32,
    /// 0, 1, 2, … per sender.
    pub seq: u64,
    /// Microseconds since the generator started, when it was written.
    pub sent_us: u64,
}

const MAGIC: &str = "bl ";

impl Payload {
    /// Appends the message text, padded with `x` to at least `size` bytes.
    /// Only ASCII letters, digits and spaces: it needs no escaping in JSON
    /// and no special handling on IRC.
    pub fn write_text(&self, size: usize, out: &mut String) {
        let start = out.len();
        let _ = write!(out, "{MAGIC}{} {} {} ", self.sender, self.seq, self.sent_us);
        while out.len() - start < size {
            out.push('x');
        }
    }

    /// Parses a message text written by [`write_text`](Self::write_text);
    /// `None` for any other text.
    pub fn parse(text: &[u8]) -> Option<Payload> {
        let rest = text.strip_prefix(MAGIC.as_bytes())?;
        let mut fields = rest.split(|&b| b == b' ');
        let mut number = || -> Option<u64> {
            let field = fields.next()?;
            if field.is_empty() || field.len() > 20 {
                return None;
            }
            field.iter().try_fold(0u64, |n, &b| {
                let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
                n.checked_mul(10)?.checked_add(u64::from(digit))
            })
        };
        Some(Payload {
            sender: u32::try_from(number()?).ok()?,
            seq: number()?,
            sent_us: number()?,
        })
    }
}

/// A Banter JSON `say` request (a TCP line with its `\n`; a WebSocket
/// frame without it).
pub fn json_say(room: &str, payload: &Payload, size: usize, out: &mut String) {
    out.push_str("{\"type\":\"say\",\"room\":\"");
    out.push_str(room);
    out.push_str("\",\"text\":\"");
    payload.write_text(size, out);
    out.push_str("\"}\n");
}

/// An IRC `PRIVMSG` line for channel `#room`.
pub fn irc_privmsg(room: &str, payload: &Payload, size: usize, out: &mut String) {
    out.push_str("PRIVMSG #");
    out.push_str(room);
    out.push_str(" :");
    payload.write_text(size, out);
    out.push_str("\r\n");
}

/// What a received JSON line means to the generator.
#[derive(Debug, PartialEq, Eq)]
pub enum JsonEvent<'a> {
    /// A `message`: its text.
    Message(&'a [u8]),
    /// The server dropped this many frames for us (the outbox policy).
    Lagged(u64),
    /// The server pings us (JSON-lines TCP): answer with a pong.
    Ping,
    /// `joined`: the join this client asked for is done.
    Joined,
    /// `error` or `closing`: the line itself, for the report.
    Failure,
    /// Anything else (presence, welcome, …).
    Other,
}

/// Classifies a Banter JSON line by its leading `type` field, as Banter
/// writes it (`{"type":"…",`); only what load accounting needs.
pub fn json_event(line: &[u8]) -> JsonEvent<'_> {
    let Some(rest) = line.strip_prefix(b"{\"type\":\"") else {
        return JsonEvent::Other;
    };
    let end = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
    match &rest[..end] {
        b"message" => match string_field(line, &TEXT_KEY) {
            Some(text) => JsonEvent::Message(text),
            None => JsonEvent::Other,
        },
        b"lagged" => JsonEvent::Lagged(number_field(line, &DROPPED_KEY).unwrap_or(0)),
        b"ping" => JsonEvent::Ping,
        b"joined" => JsonEvent::Joined,
        b"error" | b"closing" => JsonEvent::Failure,
        _ => JsonEvent::Other,
    }
}

/// The keys looked for in every delivery, each searcher built once.
static TEXT_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"text\":\""));
static DROPPED_KEY: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"dropped\":"));

/// The raw (still escaped) value of a string field; load texts have no
/// escapes, and a text that has them simply fails [`Payload::parse`].
fn string_field<'a>(line: &'a [u8], key: &Finder<'_>) -> Option<&'a [u8]> {
    let start = key.find(line)? + key.needle().len();
    let rest = &line[start..];
    let mut i = 0;
    while let Some(at) = memchr::memchr2(b'\\', b'"', &rest[i..]) {
        i += at;
        if rest[i] == b'"' {
            return Some(&rest[..i]);
        }
        i += 2;
        if i >= rest.len() {
            break;
        }
    }
    None
}

fn number_field(line: &[u8], key: &Finder<'_>) -> Option<u64> {
    let start = key.find(line)? + key.needle().len();
    leading_number(&line[start..])
}

/// The number `bytes` start with.
fn leading_number(bytes: &[u8]) -> Option<u64> {
    let end = bytes
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(bytes.len());
    std::str::from_utf8(&bytes[..end]).ok()?.parse().ok()
}

/// The start of the notice in which Banter's IRC face tells a slow reader
/// how many messages it dropped (`ServerMessage::Lagged`), then the count.
const IRC_LAGGED: &[u8] = b"*** Your connection fell behind: ";

/// The count of an `IRC_LAGGED` notice's text: IRC's `lagged`.
pub fn irc_lagged(text: &[u8]) -> Option<u64> {
    leading_number(text.strip_prefix(IRC_LAGGED)?)
}

/// One IRC line, split as far as the generator needs.
#[derive(Debug, PartialEq, Eq)]
pub struct IrcLine<'a> {
    /// The prefix without its `:` (a server's name, or `nick!user@host`).
    pub source: Option<&'a [u8]>,
    pub command: &'a [u8],
    /// Middle parameters and the trailing one, in order.
    pub params: Vec<&'a [u8]>,
}

/// Splits an IRC line (without `\r\n`): tags are skipped.
pub fn irc_line(line: &[u8]) -> Option<IrcLine<'_>> {
    let mut rest = line;
    let mut source = None;
    for sigil in [b'@', b':'] {
        if rest.first() == Some(&sigil) {
            let space = rest.iter().position(|&b| b == b' ')?;
            if sigil == b':' {
                source = Some(&rest[1..space]);
            }
            rest = trim_spaces(&rest[space..]);
        }
    }
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let command = &rest[..end];
    if command.is_empty() {
        return None;
    }
    rest = trim_spaces(&rest[end..]);
    let mut params = Vec::new();
    while !rest.is_empty() {
        if rest[0] == b':' {
            params.push(&rest[1..]);
            break;
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        params.push(&rest[..end]);
        rest = trim_spaces(&rest[end..]);
    }
    Some(IrcLine {
        source,
        command,
        params,
    })
}

fn trim_spaces(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != b' ').unwrap_or(bytes.len());
    &bytes[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::{
        ChatMessage, ClientMessage, Envelope, Nick, RoomName, ServerMessage, encode_line,
        parse_request,
    };

    fn sample() -> Payload {
        Payload {
            sender: 3,
            seq: 41,
            sent_us: 1_234_567,
        }
    }

    #[test]
    fn text_round_trips_and_is_padded() {
        let mut text = String::new();
        sample().write_text(64, &mut text);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("bl 3 41 1234567 x"));
        assert_eq!(Payload::parse(text.as_bytes()), Some(sample()));
        // Shorter than the header: no padding, still parseable.
        let mut short = String::new();
        sample().write_text(0, &mut short);
        assert_eq!(short, "bl 3 41 1234567 ");
        assert_eq!(Payload::parse(short.as_bytes()), Some(sample()));
    }

    #[test]
    fn foreign_texts_are_not_payloads() {
        for text in [
            "hello",
            "bl 1 2",
            "bl 1 2 x",
            "bl -1 2 3 ",
            "bl 99999999999 2 3 ",
            "bl 1 2 99999999999999999999 ",
            "bl 1 2 3x ",
            "bl 1  2 3",
            "",
        ] {
            assert_eq!(Payload::parse(text.as_bytes()), None, "{text:?}");
        }
    }

    #[test]
    fn say_request_is_what_banter_parses() {
        let mut line = String::new();
        json_say("b7", &sample(), 40, &mut line);
        assert!(line.ends_with('\n'));
        let request = parse_request(line.trim_end().as_bytes()).expect("valid request");
        match request.body {
            ClientMessage::Say { room, text, .. } => {
                assert_eq!(room.as_str(), "b7");
                assert_eq!(Payload::parse(text.as_bytes()), Some(sample()));
            }
            other => panic!("not a say: {other:?}"),
        }
    }

    #[test]
    fn finds_the_payload_in_a_message_banter_encodes() {
        let mut text = String::new();
        sample().write_text(50, &mut text);
        let message = ServerMessage::Message(ChatMessage {
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
            room: RoomName::new("b0").unwrap(),
            id: 17,
            from: Nick::new("u3").unwrap(),
            text,
            ts: 1_763_823_600_123,
            account: None,
            notice: false,
        });
        let line = encode_line(&Envelope::with_ref(message, None));
        let line = line.strip_suffix(b"\n").unwrap();
        let JsonEvent::Message(found) = json_event(line) else {
            panic!("not seen as a message: {}", String::from_utf8_lossy(line));
        };
        assert_eq!(Payload::parse(found), Some(sample()));
        let lagged = encode_line(&Envelope::with_ref(
            ServerMessage::Lagged { dropped: 12 },
            None,
        ));
        assert_eq!(json_event(lagged.trim_ascii_end()), JsonEvent::Lagged(12));
        let ping = encode_line(&Envelope::with_ref(ServerMessage::Ping, None));
        assert_eq!(json_event(ping.trim_ascii_end()), JsonEvent::Ping);
        assert_eq!(
            json_event(b"{\"type\":\"presence\",\"room\":\"b0\"}"),
            JsonEvent::Other
        );
        assert_eq!(json_event(b"not json"), JsonEvent::Other);
    }

    #[test]
    fn escaped_text_is_skipped_not_misread() {
        let line = br#"{"type":"message","room":"b0","id":1,"from":"a","text":"say \"bl 1 2 3 \"","ts":1}"#;
        let JsonEvent::Message(text) = json_event(line) else {
            panic!()
        };
        assert_eq!(text, br#"say \"bl 1 2 3 \""#);
        assert_eq!(Payload::parse(text), None);
    }

    #[test]
    fn splits_irc_lines_with_tags_prefix_and_trailing() {
        let mut line = String::new();
        irc_privmsg("b0", &sample(), 30, &mut line);
        assert!(line.starts_with("PRIVMSG #b0 :bl 3 41 "));
        let relayed = format!(":u3!u3@127.0.0.1 {}", line.trim_end());
        let parsed = irc_line(relayed.as_bytes()).unwrap();
        assert_eq!(parsed.source, Some(&b"u3!u3@127.0.0.1"[..]));
        assert_eq!(parsed.command, b"PRIVMSG");
        assert_eq!(parsed.params[0], b"#b0");
        assert_eq!(Payload::parse(parsed.params[1]), Some(sample()));

        let tagged = irc_line(b"@time=2025-01-01T00:00:00Z :srv 001 u1 :Welcome  here").unwrap();
        assert_eq!(tagged.source, Some(&b"srv"[..]));
        assert_eq!(tagged.command, b"001");
        assert_eq!(tagged.params, vec![&b"u1"[..], b"Welcome  here"]);
        let ping = irc_line(b"PING :irc.example").unwrap();
        assert_eq!(ping.source, None);
        assert_eq!(
            (ping.command, ping.params),
            (&b"PING"[..], vec![&b"irc.example"[..]])
        );
        assert_eq!(irc_line(b""), None);
        assert_eq!(irc_line(b":only-a-prefix"), None);
    }
}
