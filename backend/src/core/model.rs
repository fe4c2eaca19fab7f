//! The data the core shares with its ports: what the store keeps of a
//! room, a room's roles, and which page of history a request wants.

use banter_protocol::{BanInfo, ChatMessage, Nick, RoomModes, Topic};

/// Everything the router needs to know about a room it loads.
#[derive(Clone, Debug, Default)]
pub struct RoomState {
    pub last_id: u64,
    pub last_ts: u64,
    /// The most recent messages, oldest first.
    pub recent: Vec<ChatMessage>,
    pub topic: Option<Topic>,
    pub owner: Option<Nick>,
    pub ops: Vec<Nick>,
    pub bans: Vec<BanInfo>,
    pub modes: RoomModes,
}

/// Which messages a `history` request wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub before_ts: Option<u64>,
    pub after_ts: Option<u64>,
    /// With `after`/`after_ts`: the newest messages past it, not the
    /// oldest (IRC `CHATHISTORY LATEST` with a bound).
    pub latest: bool,
    pub limit: u32,
}

/// A room role kept in `room_roles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Op,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Op => "op",
        }
    }
}

/// The lower-case key a name is stored under.
pub fn key(nick: &Nick) -> String {
    nick.as_str().to_ascii_lowercase()
}
