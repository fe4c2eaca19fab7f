//! [`Frame`]: one outbound protocol message, shared by every recipient and
//! encoded at most once per wire format, on first use, by whichever
//! session writes it first. Fanning a message out to N members costs N
//! reference-count increments, not N serializations.

use std::sync::{Arc, OnceLock};

use banter_protocol::{Envelope, ErrorCode, Ref, ServerMessage, encode_line};
use bytes::Bytes;

#[derive(Clone, Debug)]
pub struct Frame(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    envelope: Envelope<ServerMessage>,
    /// JSON followed by `\n`: a TCP line as is, a WebSocket text frame
    /// without its last byte.
    json_line: OnceLock<Bytes>,
}

impl Frame {
    pub fn new(message: ServerMessage) -> Self {
        Frame::with_ref(message, None)
    }

    pub fn with_ref(message: ServerMessage, reference: Option<Ref>) -> Self {
        Frame(Arc::new(Inner {
            envelope: Envelope::with_ref(message, reference),
            json_line: OnceLock::new(),
        }))
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, reference: Option<Ref>) -> Self {
        Frame::with_ref(ServerMessage::error(code, message), reference)
    }

    pub fn message(&self) -> &ServerMessage {
        &self.0.envelope.body
    }

    pub fn reference(&self) -> Option<&Ref> {
        self.0.envelope.reference.as_ref()
    }

    /// The JSON encoding with a trailing newline.
    pub fn json_line(&self) -> &Bytes {
        self.0
            .json_line
            .get_or_init(|| Bytes::from(encode_line(&self.0.envelope)))
    }

    /// The JSON encoding alone (a cheap slice of [`json_line`](Self::json_line)).
    pub fn json(&self) -> Bytes {
        let line = self.json_line();
        line.slice(..line.len() - 1)
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
}
