//! The changes the router accepts, as it hands them to its port and as
//! they come back to take effect (see [`crate::core::port`]).

use banter_protocol::{
    BanInfo, ChatMessage, DirectMessage, ModeChange, Nick, Ref, RoomName, Topic,
};

use super::model::Role;

/// A room message, and whom to tell once it takes effect.
#[derive(Debug)]
pub struct ChatEvent {
    pub message: ChatMessage,
    /// The sender's session, which gets the echo with `reference`.
    pub sender: u64,
    pub reference: Option<Ref>,
}

/// A direct message, and whom to tell once it takes effect.
#[derive(Debug)]
pub struct DirectEvent {
    pub message: DirectMessage,
    pub sender: u64,
    /// The recipient's session; `None`: an offline account, so the message
    /// waits (pending) for its next login.
    pub target: Option<u64>,
    /// The recipient's account, if it has one: the message is stored
    /// waiting until a session of that account confirms it read it, so
    /// that one lost on the way (a full outbox, a dropped connection)
    /// comes at the next login.
    pub account: Option<Nick>,
    pub reference: Option<Ref>,
}

/// A change to a room's settings, and whom to tell once it takes effect.
#[derive(Debug)]
pub struct RoomEvent {
    pub room: RoomName,
    pub change: RoomChange,
    /// The session that asked, which gets the reply with `reference` (or,
    /// if the change could not be made, the error).
    pub requester: Option<u64>,
    pub reference: Option<Ref>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RoomChange {
    /// A new topic, as announced; an empty text clears it (stored as none).
    Topic(Topic),
    /// Sets (`Some`) or removes an account's role in a room.
    Role { account: Nick, role: Option<Role> },
    /// Sets (`set`) or lifts a ban.
    Ban { ban: BanInfo, set: bool },
    /// Changes the room's modes named in `change`, `by` a member (none:
    /// the store's state, found different on a reload).
    Modes {
        change: ModeChange,
        by: Option<Nick>,
    },
}

/// One accepted change.
#[derive(Debug)]
pub enum Event {
    Chat(ChatEvent),
    Direct(DirectEvent),
    Room(RoomEvent),
}
