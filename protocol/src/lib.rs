//! Banter's wire protocol, shared by the server and the browser client.
//!
//! * [`names`] — validated, case-insensitive [`Nick`] and [`RoomName`].
//! * [`message`] — every request and event as serde types, tagged by `"type"`,
//!   and [`parse_request`], which turns one frame into a request or a
//!   precise [`ErrorCode`].
//! * [`error`] — the stable, machine-readable error codes.
//! * [`decode`] — how a server frame is read (by the browser, bots, tests).
//! * [`codec`] — the JSON-lines framing used on the raw TCP port.
//! * [`format`] — IRC formatting codes in texts, and how to strip them for
//!   plain display.
//!
//! This crate has no runtime dependencies beyond serde so that it builds for
//! `wasm32-unknown-unknown`.

pub mod codec;
pub mod decode;
pub mod error;
pub mod format;
pub mod message;
pub mod names;

pub use codec::{LineDecoder, LineTooLong, encode_line};
pub use decode::decode_server_frame;
pub use error::ErrorCode;
pub use format::strip_formatting;
pub use message::*;
pub use names::{NameError, Nick, RoomName};

/// The protocol version this crate speaks; sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
