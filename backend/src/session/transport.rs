//! What a session needs from its transport ([`Transport`]) and what a
//! transport hands it ([`Inbound`]). Transports implement this; the
//! session never learns which one it runs on.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::task::Poll;

use banter_protocol::{ClientMessage, Envelope, ErrorCode, Nick, Ref};
use bytes::Bytes;

use crate::core::frame::Frame;

/// One unit of input from a peer.
#[derive(Debug)]
pub enum Inbound {
    /// A complete frame (text frame or line) to parse as a JSON request.
    Text(Bytes),
    /// A request the transport already decoded from its own wire format
    /// (boxed, as the rarer variants below: a session keeps room for one
    /// `Inbound` while it waits).
    Request(Box<Envelope<ClientMessage>>),
    /// An answer the transport made itself (a local [`Frame`]), queued in
    /// order with everything else the session sends.
    Reply(Frame),
    /// A frame over the size limit, already skipped; the stream is usable.
    TooLong,
    /// A frame the protocol does not use (a WebSocket binary frame).
    Binary,
    /// A sign of life with no request in it (a WebSocket pong).
    Alive,
    /// Input that ends the session: close with this reason (a PROXY
    /// protocol header on a port not configured for one; an IRC client's
    /// excess flood).
    Unreadable(ErrorCode, String),
    /// Check a password for an account before registration (IRC SASL);
    /// answered with `logged_in` (no token) or an error, with `reference`.
    Verify(Box<Verify>),
}

/// The account and password of an [`Inbound::Verify`].
#[derive(Debug)]
pub struct Verify {
    pub account: Nick,
    pub password: String,
    pub reference: Option<Ref>,
    /// IRC's OPER: an administrator's account and password give this
    /// session the administrator's rights (whatever it is logged into).
    pub oper: bool,
}

/// What the session loop needs from a transport.
pub trait Transport: Send {
    /// Short name for logs: `ws`, `tcp`, `irc`.
    const TRANSPORT: &'static str;
    /// The error code for an over-long frame on this transport.
    const TOO_LONG: ErrorCode;
    /// Whether a password login is given a token (`logged_in`'s `token`):
    /// not on IRC, whose clients keep the password and cannot see one.
    const TOKENS: bool = true;
    /// Whether a Web Push subscription made here gets IRC lines
    /// (draft/webpush) rather than the JSON a web page reads.
    const PUSHES_IRC: bool = false;

    /// The next input, or `None` once the peer has closed; `Pending` (with
    /// `cx` registered) when nothing waits. A poll rather than a future:
    /// the session waits on it and its outbox together, and keeps nothing
    /// for it between wake-ups (an idle connection's task is that much
    /// smaller).
    fn poll_recv(&mut self, cx: &mut std::task::Context<'_>) -> Poll<io::Result<Option<Inbound>>>;

    /// Writes every frame in order (draining `frames`) and flushes; many
    /// frames share as few writes as the transport allows.
    fn send(&mut self, frames: &mut VecDeque<Frame>)
    -> impl Future<Output = io::Result<()>> + Send;

    /// Sends a keepalive probe that a live peer answers.
    fn ping(&mut self) -> impl Future<Output = io::Result<()>> + Send;

    /// Sends the `closing` notice (if any) and closes cleanly.
    fn close(&mut self, closing: Option<Frame>) -> impl Future<Output = ()> + Send;

    /// Everything queued has been written and nothing more waits: a
    /// transport may release buffers it kept for the next write.
    fn idle(&mut self) {}

    /// Why the user left, in its own words (IRC `QUIT :reason`), once the
    /// session has ended; room-mates see it with the `quit`.
    fn quit_reason(&self) -> Option<String> {
        None
    }
}
