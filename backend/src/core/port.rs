//! The core's port: where an accepted change goes before it takes effect.
//!
//! The router builds an [`Event`] under its lock and submits it. The port
//! answers whether it takes effect now ([`Taken::Now`]: the router applies
//! it at once, as it does in memory), later ([`Taken::Later`]: the port
//! hands it back to [`Router::apply`](super::router::Router::apply), as the
//! store does after its commit), or not at all ([`Taken::Refused`]: the
//! port is full; nothing changes and the requester is told). The router
//! applies an event the same way whichever answer brought it.

use super::event::Event;

/// What a port did with an event.
#[derive(Debug)]
pub enum Taken {
    /// Apply it now.
    Now(Event),
    /// The port gives it back once it takes effect (or fails to).
    Later,
    /// No room for it: nothing changes.
    Refused(Event),
}

pub trait Port: Send + Sync {
    /// Takes `event` (see [`Taken`]). Never waits.
    fn submit(&self, event: Event) -> Taken;

    /// Whether state lives outside memory: rooms are loaded before use,
    /// and whispers to an offline account wait for its next login.
    fn durable(&self) -> bool;
}

/// Memory only: every event takes effect at once.
pub struct Memory;

impl Port for Memory {
    fn submit(&self, event: Event) -> Taken {
        Taken::Now(event)
    }

    fn durable(&self) -> bool {
        false
    }
}
