//! What the nodes of a cluster tell each other. The router tells its port
//! [`News`] of its own users; the broker ([`crate::broker`]) carries it as
//! one [`Event`] per entry of its stream, as JSON in the entry's `e`
//! field, and hands the stream back to every node's router
//! ([`Router::apply_stream`](crate::core::router::Router::apply_stream)).
//! Ids and times that the broker assigns (a room message's id, a
//! whisper's id) travel beside an event in fields of their own, see
//! [`Received`].

use banter_protocol::{ChatMessage, DirectMessage, ErrorCode, Nick, ReadPosition, Ref, RoomName};
use serde::{Deserialize, Serialize};

use banter_protocol::TypingState;

use crate::core::event::{AmendEvent, RoomChange};
use crate::core::router::Typed;

/// A user online on some node, as the cluster knows it: the value of the
/// broker's users hash (keyed by the lower-case nick) and what remote
/// nodes keep as a "ghost" session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    pub nick: Nick,
    /// The node whose session this is.
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    #[serde(default)]
    pub rooms: Vec<RoomName>,
    /// When it came online (Unix ms).
    pub since: u64,
    /// An always-on account with no device connected anywhere: listed in
    /// its rooms, but whispers to it wait as for an offline account.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offline: bool,
}

/// What happened to a user; the record beside it is the state after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "c", rename_all = "snake_case")]
pub enum Change {
    Online,
    Join {
        room: RoomName,
    },
    Part {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Kicked {
        room: RoomName,
        by: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Quit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Nick {
        old: Nick,
    },
    Away,
    /// Logged into its account.
    Login,
}

/// What a device of an account on one node asks the account's home node
/// (the node whose user it is) to do for the user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "a", rename_all = "snake_case")]
pub enum Act {
    Join {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    Part {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Away {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The account's always-on setting changed (stored already).
    AlwaysOn { on: bool },
}

/// One entry of the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A user's state changed (`user.node` is where it lives).
    User { user: UserRecord, change: Change },
    /// A room message; its `id` and `ts` are the broker's (see
    /// [`Received`]), the ones in `message` are zero.
    Say {
        node: String,
        session: u64,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        message: ChatMessage,
    },
    /// A whisper, id and time assigned like a room message's. `pending`:
    /// its target is an account that is offline everywhere.
    Direct {
        node: String,
        session: u64,
        #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
        reference: Option<Ref>,
        message: DirectMessage,
    },
    /// A room's settings changed (stored already by `node`).
    Room {
        node: String,
        room: RoomName,
        change: RoomChange,
    },
    /// An operator on `node` kicks `nick`, who lives on another node:
    /// that node carries it out.
    Kick {
        node: String,
        room: RoomName,
        nick: Nick,
        by: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// `by` (on `node`) invited `nick` (a user of any node) into `room`:
    /// the node `nick` is on keeps the invitation and tells it; every
    /// node tells the room's operators it has there (invite-notify).
    Invite {
        node: String,
        room: RoomName,
        nick: Nick,
        by: Nick,
    },
    /// `by` (on `node`) gave member `nick` a voice in `room` (`set`), or
    /// took it: every node marks the member and tells the room.
    Voice {
        node: String,
        room: RoomName,
        nick: Nick,
        by: Nick,
        set: bool,
    },
    /// A new account (so other nodes reserve its nick).
    Account { node: String, name: Nick },
    /// `node` changed these rooms' settings (and stored them) but could
    /// not announce every change: the others read them from the store.
    Reload { node: String, rooms: Vec<RoomName> },
    /// Every user of `node`, replacing what others knew of it (sent when
    /// it (re)joins the cluster after losing touch).
    Sync {
        node: String,
        users: Vec<UserRecord>,
    },
    /// `node` stopped renewing its lease: its users are gone.
    Lost { node: String },
    /// `node` has `devices` connections logged into `account`, whose user
    /// lives on another node (its home): while any node has some, the
    /// home keeps the user.
    Device {
        node: String,
        account: Nick,
        devices: u32,
    },
    /// A device on `node` asks `account`'s home node to act for its user.
    Act {
        node: String,
        account: Nick,
        act: Act,
    },
    /// `account`'s home node (`node`) refused what a device on `to` asked:
    /// that node's devices of the account are told why.
    Refused {
        node: String,
        to: String,
        account: Nick,
        code: ErrorCode,
        message: String,
    },
    /// Every session of `account` ends (sign out everywhere, a password
    /// change, its deletion or ban): each node closes its devices of it.
    End {
        node: String,
        account: Nick,
        code: ErrorCode,
        message: String,
    },
    /// `account`'s read position moved on `node`: its devices elsewhere
    /// are told.
    Read {
        node: String,
        account: Nick,
        position: ReadPosition,
    },
    /// A message was edited, deleted or reacted to on `node` (and stored).
    Amend { node: String, amend: AmendEvent },
    /// `nick` (a user of `node`) is typing.
    Typing {
        node: String,
        place: Typed,
        nick: Nick,
        state: TypingState,
    },
}

impl Event {
    /// The node that sent it.
    pub fn node(&self) -> &str {
        match self {
            Event::User { user, .. } => &user.node,
            Event::Say { node, .. }
            | Event::Direct { node, .. }
            | Event::Room { node, .. }
            | Event::Kick { node, .. }
            | Event::Invite { node, .. }
            | Event::Voice { node, .. }
            | Event::Account { node, .. }
            | Event::Reload { node, .. }
            | Event::Sync { node, .. }
            | Event::Device { node, .. }
            | Event::Act { node, .. }
            | Event::Refused { node, .. }
            | Event::End { node, .. }
            | Event::Read { node, .. }
            | Event::Amend { node, .. }
            | Event::Typing { node, .. }
            | Event::Lost { node } => node,
        }
    }
}

/// An event as read from the stream, with what the broker added.
#[derive(Clone, Debug, PartialEq)]
pub struct Received {
    pub event: Event,
    /// A message's or whisper's id and time.
    pub id: u64,
    pub ts: u64,
    /// A whisper's target: the node it is on (`None`: offline) and its
    /// away message.
    pub target: Option<String>,
    pub away: Option<String>,
}

/// What a node tells the others about its own users, through its port
/// ([`Port::tell`](crate::core::port::Port::tell)).
#[derive(Clone, Debug, PartialEq)]
pub enum News {
    /// A local user changed (`user` is the state after). After
    /// [`Change::Quit`] its nick is free.
    User { user: UserRecord, change: Change },
    /// A room's settings changed here (and are stored).
    Room { room: RoomName, change: RoomChange },
    /// An operator here kicks `nick`, a user of another node.
    Kick {
        room: RoomName,
        nick: Nick,
        by: Nick,
        reason: Option<String>,
    },
    /// An invitation made here (of a user of any node).
    Invite {
        room: RoomName,
        nick: Nick,
        by: Nick,
    },
    /// A voice given (`set`) or taken here.
    Voice {
        room: RoomName,
        nick: Nick,
        by: Nick,
        set: bool,
    },
    /// A new account.
    Account { name: Nick },
    /// This node has `devices` connections of `account`, whose home is
    /// another node.
    Device { account: Nick, devices: u32 },
    /// A device here asks `account`'s home node to act.
    Act { account: Nick, act: Act },
    /// What a device on node `to` asked of `account`'s user here was
    /// refused.
    Refused {
        to: String,
        account: Nick,
        code: ErrorCode,
        message: String,
    },
    /// Every session of `account` ends.
    End {
        account: Nick,
        code: ErrorCode,
        message: String,
    },
    /// `account`'s read position moved here.
    Read {
        account: Nick,
        position: ReadPosition,
    },
    /// Every local user (keyed as [`key`](crate::core::model::key) keys
    /// them) and the nicks being claimed, restating what the others know.
    Sync { users: Vec<(String, UserRecord)> },
    /// A message was amended here (and stored).
    Amend(AmendEvent),
    /// A local user is typing.
    Typing {
        place: Typed,
        nick: Nick,
        state: TypingState,
    },
}
