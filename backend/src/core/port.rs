//! The core's port: where an accepted change goes before it takes effect.
//!
//! The router builds an [`Event`] under its lock and submits it. The port
//! answers whether it takes effect now ([`Taken::Now`]: the router applies
//! it at once, as it does in memory), later ([`Taken::Later`]: the port
//! hands it back to [`Router::apply`](super::router::Router::apply), as the
//! store does after its commit), or not at all ([`Taken::Refused`]: the
//! port is full; nothing changes and the requester is told). In a cluster
//! a message is [`Taken::Relayed`]: the broker numbers it and its stream
//! brings it back to every node. The router applies an event the same way
//! whichever answer brought it.
//!
//! The store ([`crate::store::Durable`]) and the broker
//! ([`crate::broker::Clustered`]) implement [`Port`]; the core names
//! neither.

use banter_protocol::{ErrorCode, Nick, RoomName};

use super::cluster::News;
use super::event::Event;

/// What a port did with an event.
#[derive(Debug)]
pub enum Taken {
    /// Apply it now.
    Now(Event),
    /// The port gives it back once it takes effect (or fails to).
    Later,
    /// Sent on to be numbered elsewhere (a cluster's broker): it comes
    /// back, numbered, through the stream
    /// ([`Router::apply_stream`](super::router::Router::apply_stream)).
    Relayed,
    /// Not taken: nothing changes.
    Refused(Event, Refusal),
}

/// What became of events a port gave back later (see
/// [`Router::apply`](super::router::Router::apply)).
#[derive(Debug)]
pub enum Verdict {
    /// They take effect.
    Taken,
    /// They could not be saved: nothing changes, the requesters are told
    /// to try again.
    Failed,
    /// Refused as they stand (a rule of the port's, like an offline
    /// account's full mailbox): nothing changes, the requesters are told
    /// this error.
    Refused(ErrorCode, String),
}

/// Why a port did not take an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its queue is full: try again in a moment.
    Full,
    /// What it needs is out of reach (a cluster node whose store is down).
    Unavailable,
}

pub trait Port: Send + Sync {
    /// Takes `event` (see [`Taken`]). Never waits.
    fn submit(&self, event: Event) -> Taken;

    /// Whether state lives outside memory: rooms are loaded before use,
    /// and whispers to an offline account wait for its next login.
    fn durable(&self) -> bool;

    /// In a cluster, this node's name.
    fn node(&self) -> Option<&str> {
        None
    }

    /// Tells the other nodes of a cluster about this node's users; `false`
    /// if that could not be queued (the next restatement sets it right).
    /// Alone, there is nobody to tell.
    fn tell(&self, _news: News) -> bool {
        true
    }
    /// `account` joined `room` (`member`) or left it: a durable port keeps
    /// the account's memberships (see `memberships` in the store). Never
    /// waits: a full queue loses it, and the account's next join or part
    /// there sets it right.
    fn remember(&self, _account: &Nick, _room: &RoomName, _member: bool) {}
}

/// Memory only: every event takes effect at once.
#[derive(Clone, Copy, Debug)]
pub struct Memory;

impl Port for Memory {
    fn submit(&self, event: Event) -> Taken {
        Taken::Now(event)
    }

    fn durable(&self) -> bool {
        false
    }
}
