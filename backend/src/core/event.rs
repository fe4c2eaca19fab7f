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

/// A change to a message already sent (an edit, a deletion, a
/// reaction), and whom to tell once it takes effect. The router checks it
/// against the message if it holds it; a store checks it again against
/// its row ([`Amendment::check`]), which may be older than memory.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AmendEvent {
    /// The message's room; `None`: a direct message, between `by` and
    /// `with` (both accounts).
    pub room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Nick>,
    pub id: u64,
    pub change: Amendment,
    pub by: Actor,
    /// The session that asked (`0`: none here), which gets the answer
    /// with `reference`, or the error.
    #[serde(skip)]
    pub requester: u64,
    #[serde(skip)]
    pub reference: Option<Ref>,
}

/// What is done to a message.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Amendment {
    /// Its text becomes `text`, at `ts`; allowed within `window_ms` of
    /// the message (0: edits are off).
    Edit {
        text: String,
        ts: u64,
        window_ms: u64,
    },
    Delete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    React {
        reaction: String,
        remove: bool,
        ts: u64,
    },
}

/// Who amends a message.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Actor {
    pub nick: Nick,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    /// When it took its nick (Unix ms): a guest's own messages are those
    /// from its nick since then.
    pub since: u64,
    /// May delete anyone's message (one of the room's operators).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderator: bool,
}

impl Actor {
    /// The name its reactions are listed under: its account's, else its
    /// nick (see [`Actor::key`]).
    pub fn shown(&self) -> &Nick {
        self.account.as_ref().unwrap_or(&self.nick)
    }

    /// Who it is, for one reaction per person: its account's key, or `~`
    /// and its nick's key for a guest.
    pub fn key(&self) -> String {
        match &self.account {
            Some(account) => super::model::key(account),
            None => format!("~{}", super::model::key(&self.nick)),
        }
    }
}

/// What [`Amendment::check`] needs to know of the message amended.
#[derive(Clone, Copy, Debug)]
pub struct Amended<'a> {
    pub from: &'a Nick,
    pub account: Option<&'a Nick>,
    pub ts: u64,
    pub deleted: bool,
    /// How many different reactions the actor left on it, and whether
    /// this one is among them.
    pub reactions: usize,
    pub reacted: bool,
}

impl Amendment {
    /// Whether `by` may make this change to `message` (`None`: there is
    /// no such message): the one rule, for memory and the store alike.
    pub fn check(
        &self,
        message: Option<Amended>,
        by: &Actor,
    ) -> Result<(), (banter_protocol::ErrorCode, String)> {
        use banter_protocol::{ErrorCode, MAX_REACTIONS_PER_USER};
        let Some(m) = message.filter(|m| !m.deleted) else {
            return Err((
                ErrorCode::NoSuchMessage,
                "there is no such message here (or it was deleted)".into(),
            ));
        };
        let own = match (&by.account, m.account) {
            (Some(mine), Some(its)) => super::model::key(mine) == super::model::key(its),
            (None, None) => m.from == &by.nick && m.ts >= by.since,
            _ => false,
        };
        match self {
            Amendment::Edit { ts, window_ms, .. } => {
                if !own {
                    return Err((
                        ErrorCode::NotYourMessage,
                        "you may edit only your own messages".into(),
                    ));
                }
                if *window_ms == 0 {
                    return Err((
                        ErrorCode::EditTooLate,
                        "this server does not allow edits".into(),
                    ));
                }
                if ts.saturating_sub(m.ts) > *window_ms {
                    return Err((
                        ErrorCode::EditTooLate,
                        format!(
                            "a message may be edited for {} after it was sent",
                            shown_duration(*window_ms)
                        ),
                    ));
                }
            }
            Amendment::Delete { .. } if !own && !by.moderator => {
                return Err((
                    ErrorCode::NotYourMessage,
                    "you may delete only your own messages (operators: any in their room)".into(),
                ));
            }
            Amendment::Delete { .. } => {}
            Amendment::React { remove: false, .. }
                if !m.reacted && m.reactions >= MAX_REACTIONS_PER_USER =>
            {
                return Err((
                    ErrorCode::TooManyReactions,
                    format!(
                        "you may leave at most {MAX_REACTIONS_PER_USER} different reactions on a message"
                    ),
                ));
            }
            Amendment::React { .. } => {}
        }
        Ok(())
    }
}

/// `ms` as people say it: "10 minutes", "24 hours", "90 seconds".
fn shown_duration(ms: u64) -> String {
    let secs = ms / 1000;
    match secs {
        s if s >= 3600 && s % 3600 == 0 => format!("{} hours", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// One accepted change.
#[derive(Debug)]
pub enum Event {
    Chat(ChatEvent),
    Direct(DirectEvent),
    Room(RoomEvent),
    Amend(AmendEvent),
}
