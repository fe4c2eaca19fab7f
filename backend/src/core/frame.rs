//! [`Frame`]: one outbound item, shared by every recipient. Usually a
//! protocol message, encoded at most once per wire format (JSON, and each
//! IRC tag variant), on first use, by whichever session writes it first:
//! fanning a message out to N members costs N reference-count increments,
//! not N serializations. A transport may also queue a *local* frame, bytes
//! it already rendered for its own client (an IRC numeric), so that its
//! answers leave in order with the router's.
//!
//! A frame also has a [`weight`](Frame::weight): about the bytes of its
//! JSON encoding, which is what outboxes bound (see
//! [`crate::core::outbox`]). It is worked out once per frame, however many
//! outboxes hold it.

use std::sync::{Arc, OnceLock};

use banter_protocol::{Envelope, ErrorCode, Nick, Ref, ServerMessage, encode_line};
use bytes::Bytes;

/// How many IRC renderings a frame caches: one per combination of the
/// message tags a client may have negotiated (see `transport::irc`). A
/// message of several lines has twice as many (with a `draft/multiline`
/// batch, and without), every other frame only the first half.
pub const IRC_VARIANTS: usize = 16;
const SINGLE_LINE_VARIANTS: usize = IRC_VARIANTS / 2;

#[derive(Clone, Debug)]
pub struct Frame(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    body: Body,
    /// JSON followed by `\n`: a TCP line as is, a WebSocket text frame
    /// without its last byte.
    json_line: OnceLock<Bytes>,
    /// IRC lines (`\r\n`-terminated), per tag variant; allocated when an
    /// IRC client first needs one (a frame is a pointer here, not 320 bytes: rooms
    /// keep 100 frames of history each, most never rendered for IRC).
    irc: OnceLock<Box<[OnceLock<Bytes>]>>,
    /// [`Frame::weight`], once asked.
    weight: OnceLock<u32>,
}

#[derive(Debug)]
enum Body {
    Message(Envelope<ServerMessage>),
    /// Already in the wire format of the transport that queued it.
    Local(Bytes),
}

impl Frame {
    pub fn new(message: ServerMessage) -> Self {
        Frame::with_ref(message, None)
    }

    pub fn with_ref(message: ServerMessage, reference: Option<Ref>) -> Self {
        Frame::from_body(Body::Message(Envelope::with_ref(message, reference)))
    }

    /// Bytes a transport rendered for its own client; only that
    /// transport's session ever writes them.
    pub fn local(bytes: Bytes) -> Self {
        Frame::from_body(Body::Local(bytes))
    }

    fn from_body(body: Body) -> Self {
        Frame(Arc::new(Inner {
            body,
            json_line: OnceLock::new(),
            irc: OnceLock::new(),
            weight: OnceLock::new(),
        }))
    }

    /// About the bytes of the JSON encoding, worked out once and the same
    /// ever after: the length of the encoding if it is made already; for a
    /// message or a whisper (what fans out) counted from its fields
    /// without encoding it (IRC members never need the JSON): exact, or up
    /// to 20 bytes over for a numeric `ref`; for anything else
    /// the encoding itself; a local frame's own length.
    pub fn weight(&self) -> usize {
        *self.0.weight.get_or_init(|| {
            let bytes = match (&self.0.body, self.0.json_line.get()) {
                (_, Some(line)) => line.len(),
                (Body::Local(bytes), None) => bytes.len(),
                (Body::Message(envelope), None) => match &envelope.body {
                    ServerMessage::Message(m) => {
                        MESSAGE_FIELDS
                            + json_string_len(m.room.as_str())
                            + message_len(m.id, &m.from, &m.text, m.ts, &m.account, m.notice)
                            + reference_len(envelope.reference.as_ref())
                    }
                    ServerMessage::Direct(d) => {
                        DIRECT_FIELDS
                            + json_string_len(d.to.as_str())
                            + message_len(d.id, &d.from, &d.text, d.ts, &d.account, d.notice)
                            + reference_len(envelope.reference.as_ref())
                    }
                    _ => self.json_line().len(),
                },
            };
            u32::try_from(bytes).unwrap_or(u32::MAX)
        }) as usize
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, reference: Option<Ref>) -> Self {
        Frame::with_ref(ServerMessage::error(code, message), reference)
    }

    /// The protocol message, or `None` for a local frame.
    pub fn message(&self) -> Option<&ServerMessage> {
        match &self.0.body {
            Body::Message(envelope) => Some(&envelope.body),
            Body::Local(_) => None,
        }
    }

    /// The bytes of a local frame.
    pub fn local_bytes(&self) -> Option<&Bytes> {
        match &self.0.body {
            Body::Local(bytes) => Some(bytes),
            Body::Message(_) => None,
        }
    }

    pub fn reference(&self) -> Option<&Ref> {
        match &self.0.body {
            Body::Message(envelope) => envelope.reference.as_ref(),
            Body::Local(_) => None,
        }
    }

    /// The JSON encoding with a trailing newline (a local frame's own bytes).
    pub fn json_line(&self) -> &Bytes {
        self.0.json_line.get_or_init(|| match &self.0.body {
            Body::Message(envelope) => Bytes::from(encode_line(envelope)),
            Body::Local(bytes) => bytes.clone(),
        })
    }

    /// The JSON encoding alone (a cheap slice of [`json_line`](Self::json_line)).
    pub fn json(&self) -> Bytes {
        let line = self.json_line();
        line.slice(..line.len().saturating_sub(1))
    }

    /// The IRC rendering for tag variant `variant`, made by `render` the
    /// first time any session asks for it and shared after that. Only for
    /// messages whose IRC form is the same for every recipient.
    pub fn irc(&self, variant: usize, render: impl FnOnce(&ServerMessage) -> Bytes) -> &Bytes {
        let variants = self.0.irc.get_or_init(|| {
            let lines = match &self.0.body {
                Body::Message(envelope) => match &envelope.body {
                    ServerMessage::Message(m) => m.text.contains('\n'),
                    ServerMessage::Direct(d) => d.text.contains('\n'),
                    _ => false,
                },
                Body::Local(_) => false,
            };
            let count = if lines {
                IRC_VARIANTS
            } else {
                SINGLE_LINE_VARIANTS
            };
            (0..count).map(|_| OnceLock::new()).collect()
        });
        // A frame of one line renders alike with and without a batch.
        let slot = variant % variants.len();
        variants[slot].get_or_init(|| match &self.0.body {
            Body::Message(envelope) => render(&envelope.body),
            Body::Local(bytes) => bytes.clone(),
        })
    }

    /// Whether two handles share one encoding.
    pub fn ptr_eq(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// The JSON of a `message` without its fields' values, and the newline:
/// `{"type":"message","room":"","id":,"from":"","text":"","ts":}`.
const MESSAGE_FIELDS: usize = 61;
/// The same for a `direct`: `{"type":"direct","id":,"from":"","to":"",
/// "text":"","ts":}`.
const DIRECT_FIELDS: usize = 58;

/// The values both kinds share, and the optional fields.
fn message_len(
    id: u64,
    from: &Nick,
    text: &str,
    ts: u64,
    account: &Option<Nick>,
    notice: bool,
) -> usize {
    let account = account.as_ref().map_or(0, |a| {
        ",\"account\":\"\"".len() + json_string_len(a.as_str())
    });
    let notice = if notice { ",\"notice\":true".len() } else { 0 };
    digits(id)
        + json_string_len(from.as_str())
        + json_string_len(text)
        + digits(ts)
        + account
        + notice
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// The bytes `text` takes as a JSON string's contents: serde_json writes
/// `"` and `\` with a backslash, `\b \t \n \f \r` as two characters and the
/// other control characters as `\u00XX`.
fn json_string_len(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .map(|b| match b {
                b'"' | b'\\' | 8 | 9 | 10 | 12 | 13 => 1,
                0..=0x1f => 5,
                _ => 0,
            })
            .sum::<usize>()
}

/// What `,"ref":…` takes (a number: at most).
fn reference_len(reference: Option<&Ref>) -> usize {
    match reference {
        None => 0,
        Some(Ref::Int(_)) => ",\"ref\":-9223372036854775808".len(),
        Some(Ref::Str(s)) => ",\"ref\":\"\"".len() + json_string_len(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_once_and_shares_the_bytes() {
        let frame = Frame::with_ref(ServerMessage::Pong, Some(Ref::Int(1)));
        let copy = frame.clone();
        assert_eq!(&frame.json_line()[..], b"{\"type\":\"pong\",\"ref\":1}\n");
        assert_eq!(&copy.json()[..], b"{\"type\":\"pong\",\"ref\":1}");
        // Both handles see the very same buffer.
        assert_eq!(frame.json_line().as_ptr(), copy.json_line().as_ptr());
        assert!(frame.ptr_eq(&copy));
    }

    #[test]
    fn a_message_weighs_about_its_json_without_encoding_it() {
        use banter_protocol::{ChatMessage, DirectMessage, RoomName};
        let nick = |n: &str| Nick::new(n).unwrap();
        let texts = [
            "hi".to_string(),
            "\u{2}".repeat(4000),
            "quote \" back\\slash \n\t\r tab € \u{1f}\u{7f}".into(),
        ];
        for (text, n) in texts
            .into_iter()
            .flat_map(|t| [(t.clone(), 1), (t, u64::MAX)])
        {
            for (account, notice, reference) in [
                (None, false, None),
                (
                    Some(nick("alice_logged_in")),
                    true,
                    Some(Ref::Int(-1 << 62)),
                ),
                (None, false, Some(Ref::Str("\"x\"".repeat(16)))),
            ] {
                let message = ChatMessage {
                    reply_to: None,
                    edited: None,
                    deleted: false,
                    reactions: Vec::new(),
                    room: RoomName::new("a-room-name-of-thirty-two-chars_").unwrap(),
                    id: n,
                    from: nick("alice"),
                    text: text.clone(),
                    ts: n,
                    account: account.clone(),
                    notice,
                };
                let direct = DirectMessage {
                    reply_to: None,
                    edited: None,
                    deleted: false,
                    reactions: Vec::new(),
                    id: n,
                    from: nick("alice"),
                    to: nick("bob"),
                    text: text.clone(),
                    ts: n,
                    account,
                    notice,
                };
                for message in [
                    ServerMessage::Message(message),
                    ServerMessage::Direct(direct),
                ] {
                    let frame = Frame::with_ref(message, reference.clone());
                    let weight = frame.weight();
                    let real = frame.json_line().len();
                    assert!(
                        (real..=real + 20).contains(&weight),
                        "weight {weight}, JSON {real}: {:?}",
                        frame.json_line()
                    );
                    assert_eq!(frame.weight(), weight, "the weight never changes");
                }
            }
        }
        // Anything else weighs its encoding; a local frame its bytes.
        let pong = Frame::new(ServerMessage::Pong);
        assert_eq!(pong.weight(), pong.json_line().len());
        assert_eq!(Frame::local(Bytes::from_static(b"PING x\r\n")).weight(), 8);
    }

    #[test]
    fn each_irc_variant_is_rendered_once() {
        let frame = Frame::new(ServerMessage::Pong);
        let calls = std::cell::Cell::new(0);
        let render = |_: &ServerMessage| {
            calls.set(calls.get() + 1);
            Bytes::from_static(b"PONG\r\n")
        };
        let first = frame.irc(1, render).as_ptr();
        assert_eq!(frame.clone().irc(1, render).as_ptr(), first);
        assert_eq!(calls.get(), 1);
        frame.irc(2, render);
        assert_eq!(calls.get(), 2, "another variant is its own rendering");
        let local = Frame::local(Bytes::from_static(b":banter 421 x FOO :Unknown\r\n"));
        assert!(local.message().is_none());
        assert_eq!(&local.irc(0, render)[..], b":banter 421 x FOO :Unknown\r\n");
        assert_eq!(calls.get(), 2, "a local frame is never rendered");
    }
}
