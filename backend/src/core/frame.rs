//! [`Frame`]: one outbound item, shared by every recipient. Usually a
//! protocol message, encoded at most once per wire format (JSON, and each
//! IRC tag variant), on first use, by whichever session writes it first:
//! fanning a message out to N members costs N reference-count increments,
//! not N serializations. A transport may also queue a *local* frame, bytes
//! it already rendered for its own client (an IRC numeric), so that its
//! answers leave in order with the router's.

use std::sync::{Arc, OnceLock};

use banter_protocol::{Envelope, ErrorCode, Ref, ServerMessage, encode_line};
use bytes::Bytes;

/// How many IRC renderings a frame caches: one per combination of the
/// message tags a client may have negotiated (see `transport::irc`).
pub const IRC_VARIANTS: usize = 8;

#[derive(Clone, Debug)]
pub struct Frame(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    body: Body,
    /// JSON followed by `\n`: a TCP line as is, a WebSocket text frame
    /// without its last byte.
    json_line: OnceLock<Bytes>,
    /// IRC lines (`\r\n`-terminated), per tag variant; allocated when an
    /// IRC client first needs one (a frame is 16 bytes here, not 320: rooms
    /// keep 100 frames of history each, most never rendered for IRC).
    irc: OnceLock<Box<[OnceLock<Bytes>; IRC_VARIANTS]>>,
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
        }))
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
        let variants = self.0.irc.get_or_init(Default::default);
        variants[variant].get_or_init(|| match &self.0.body {
            Body::Message(envelope) => render(&envelope.body),
            Body::Local(bytes) => bytes.clone(),
        })
    }

    /// Whether two handles share one encoding.
    pub fn ptr_eq(&self, other: &Frame) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
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
