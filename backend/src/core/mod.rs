//! The core: what a chat server is, whatever carries it.
//!
//! * [`model`] — the data the core and its ports share: room roles, a
//!   room's stored state, a page of history.
//! * [`cluster`] — what the nodes of a cluster tell each other.
//! * [`event`] — the changes the router accepts (a message, a whisper, a
//!   room change) and hands to its [`port`].
//! * [`port`] — where an accepted change goes before it takes effect: in
//!   memory at once; the store ([`crate::store`]) after its commit; a
//!   cluster's broker ([`crate::broker`]) after its stream.
//! * [`router`] — sessions, rooms, members, presence and delivery.
//! * [`outbox`] — each session's bounded outbound queue; [`frame`] — an
//!   outbound message encoded once per wire format.
//! * [`search`] — what a search asks for, parsed once for every store.
//! * [`notify`] — the port for what an account missed with no device
//!   connected (Web Push is its implementation).
//!
//! The core depends on `banter_protocol` and the metrics registry only.
//! The store and the broker implement [`port::Port`] and hand events back
//! to [`router::Router::apply`] (or, a cluster's stream, to
//! [`router::Router::apply_stream`]): dependencies point inwards. See
//! `docs/architecture.md`.

pub mod cluster;
pub mod event;
pub mod frame;
pub mod model;
pub mod notify;
pub mod outbox;
pub mod port;
pub mod router;
pub mod search;
