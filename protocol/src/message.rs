//! Every protocol v1 message, in both directions, and [`parse_request`].
//!
//! A frame is one JSON object tagged by `"type"`. Any request may carry a
//! `"ref"` (a string of at most [`MAX_REF_LEN`] bytes, or an integer); the
//! reply or error it causes carries the same `"ref"`. [`Envelope`] pairs a
//! message with its optional `ref`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::names::{Nick, RoomName};

/// Longest accepted string `ref`, in bytes.
pub const MAX_REF_LEN: usize = 64;
/// Default largest `text`, in UTF-8 bytes (servers may configure another).
pub const DEFAULT_MAX_TEXT_BYTES: usize = 4096;
/// Most messages one `history` request returns.
pub const MAX_HISTORY_PAGE: u32 = 200;
/// Longest room topic, in UTF-8 bytes.
pub const MAX_TOPIC_BYTES: usize = 390;
/// Longest away message, in UTF-8 bytes.
pub const MAX_AWAY_BYTES: usize = 200;
/// Longest real name (IRC's `USER` and `SETNAME`), in UTF-8 bytes.
pub const MAX_REALNAME_BYTES: usize = 100;
/// Longest IRC username (`USER`'s first parameter), in bytes.
pub const MAX_USERNAME_BYTES: usize = 16;
/// Most nicks one connection may watch (IRC's `MONITOR=`).
pub const MAX_WATCHED: usize = 100;
/// Longest reaction (`react`), in UTF-8 bytes: one emoji, or a short word.
pub const MAX_REACTION_BYTES: usize = 32;
/// Most different reactions one user may leave on one message.
pub const MAX_REACTIONS_PER_USER: usize = 10;
/// Default most lines in one message (servers may configure another; IRC's
/// `draft/multiline` `max-lines`).
pub const DEFAULT_MAX_LINES: usize = 100;
/// Longest part or quit reason, in UTF-8 bytes.
pub const MAX_REASON_BYTES: usize = 390;
/// Most nicks one `users` request may ask about.
pub const MAX_USERS_QUERY: usize = 100;
/// A message `text` that starts with this is an action ("/me waves" shows
/// as "* alice waves"); IRC clients see it as a CTCP ACTION.
pub const ACTION_PREFIX: &str = "/me ";
/// The CTCP delimiter: IRC clients take a message holding it for a command
/// (VERSION, PING, DCC SEND…), so no text may hold it; an action is written
/// with [`ACTION_PREFIX`], and the IRC face makes the CTCP ACTION itself.
pub const CTCP: char = '\x01';

/// A client's correlation id, echoed on the reply or error a request causes.
/// A JSON integer (that fits an `i64`) or string; read by hand, as serde's
/// `untagged` would, without buffering it into serde's generic `Content`
/// (whose code was about 1 KB of the web client's download).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Ref {
    Int(i64),
    Str(String),
}

impl<'de> Deserialize<'de> for Ref {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, Visitor};
        struct V;
        impl Visitor<'_> for V {
            type Value = Ref;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Ref, E> {
                Ok(Ref::Int(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Ref, E> {
                i64::try_from(n)
                    .map(Ref::Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Ref, E> {
                Ok(Ref::Str(s.to_owned()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Ref, E> {
                Ok(Ref::Str(s))
            }
        }
        d.deserialize_any(V)
    }
}

/// A message with its optional `ref`, exactly as framed on the wire.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<M> {
    #[serde(flatten)]
    pub body: M,
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Ref>,
}

impl<M> Envelope<M> {
    pub fn new(body: M) -> Self {
        Envelope {
            body,
            reference: None,
        }
    }

    pub fn with_ref(body: M, reference: Option<Ref>) -> Self {
        Envelope { body, reference }
    }
}

/// Requests, client → server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// The first frame of every session: who I am.
    Hello {
        nick: Nick,
        /// Log into the account `nick` with its password.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// Log into the account `nick` with a token from an earlier
        /// `logged_in`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// A free-text name shown in `whois` and IRC's WHOIS and WHO (at
        /// most 100 bytes, one line).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(target_arch = "wasm32", serde(skip))]
        realname: Option<String>,
        /// IRC's `USER` username, shown in WHOIS and WHO (`~username`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(target_arch = "wasm32", serde(skip))]
        username: Option<String>,
        /// The user is a bot (IRC's `+B`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        #[cfg_attr(target_arch = "wasm32", serde(skip))]
        bot: bool,
    },
    /// Creates the account `nick` with `password`; answered by
    /// `registered`. Allowed before `hello` (then log in with `hello`), or
    /// after it for your own nick (you are then logged in).
    /// On a server with `--registration invite`, `invite` is a code from
    /// its administrator (each code creates a limited number of accounts).
    Register {
        nick: Nick,
        password: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invite: Option<String>,
    },
    /// Revokes the token this session logged in with (or, with `all`,
    /// every token of the account, and ends its other sessions); answered
    /// by `logged_out`.
    Logout {
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        all: bool,
    },
    /// Changes the password of the account this session is logged into;
    /// every token is revoked and every other session of the account
    /// ended. Answered by `password_changed` with a fresh token.
    ChangePassword {
        old_password: String,
        new_password: String,
    },
    /// Deletes the account this session is logged into (its tokens, room
    /// roles and waiting whispers too); its other sessions are ended and
    /// this one goes on as a guest. Answered by `account_deleted`.
    DeleteAccount { password: String },
    /// Server administrators: ends the session using `nick`; answered by
    /// `killed`, the victim gets `closing` `killed`.
    Kill {
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Server administrators: bans an address (or CIDR range) or an
    /// account from the whole server, for `minutes` (or until lifted);
    /// matching sessions are ended. Answered by `server_banned`.
    Kline {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minutes: Option<u32>,
    },
    /// Server administrators: lifts a server ban; answered by
    /// `server_banned` with `set: false`.
    Unkline {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        address: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
    },
    /// Server administrators: the server bans; answered by `server_bans`.
    Klines,
    /// Server administrators: deletes another account (as
    /// `delete_account` does); answered by `account_deleted`.
    RemoveAccount { account: Nick },
    /// Removes `nick` from `room` (operators only); the room gets `kicked`.
    Kick {
        room: RoomName,
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Bans a nick or an account from `room` (operators only); the room
    /// gets `banned`, and matching members are kicked.
    Ban {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        /// `nick!user@host` with `*`/`?` wildcards.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<String>,
    },
    /// Lifts a ban; the room gets `banned` with `set: false`.
    Unban {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<String>,
    },
    /// A room's bans (or, with `list`, its ban or invite exceptions);
    /// answered by `bans`.
    Bans {
        room: RoomName,
        /// Not sent by the web client (wasm), which lists bans only.
        #[cfg(not(target_arch = "wasm32"))]
        #[serde(default, skip_serializing_if = "BanList::is_ban")]
        list: BanList,
    },
    /// Adds an entry to a room's ban exceptions (`+e`: a user it matches
    /// is not stopped by a ban) or invite exceptions (`+I`: a user it
    /// matches joins an invite-only room uninvited); operators only. Named
    /// like a ban: one `nick`, `account` or `mask`. The room gets `banned`
    /// with the entry's `list`. Not sent by the web client.
    #[cfg(not(target_arch = "wasm32"))]
    Except {
        room: RoomName,
        list: BanList,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<String>,
    },
    /// Removes an entry from a room's ban or invite exceptions; the room
    /// gets `banned` with `set: false`.
    #[cfg(not(target_arch = "wasm32"))]
    Unexcept {
        room: RoomName,
        list: BanList,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mask: Option<String>,
    },
    /// Makes the account `account` an operator of `room` (operators only);
    /// the room gets `roles`.
    Op { room: RoomName, account: Nick },
    /// Takes operator rights away (the owner, or an operator from itself).
    Deop { room: RoomName, account: Nick },
    /// Gives `room` to the account `account` (its owner, or a server
    /// administrator); the owner before stays an operator. The room gets
    /// `roles`.
    SetOwner { room: RoomName, account: Nick },
    /// Join (creating if needed) a room; answered by `joined`. `key`: the
    /// room's key, if it has one (`+k`).
    Join {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        /// A client joining again the rooms it had, after a reconnect (not
        /// the user asking): refused (`not_in_room`) for a room the
        /// account left from another device meanwhile.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        rejoin: bool,
    },
    /// Without `set`: asks for a room's modes (answered by `modes`). With
    /// it: changes those it names (the owner, operators and server
    /// administrators), and every member gets `modes`.
    Mode {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set: Option<ModeChange>,
    },
    /// Invites `nick` into a joined room (operators only if it is
    /// invite-only): answered by `invited`; `nick` gets `invite`.
    Invite { room: RoomName, nick: Nick },
    /// Lets member `nick` speak in a moderated room (operators only); the
    /// room gets `voiced`.
    Voice { room: RoomName, nick: Nick },
    /// Takes the voice away; the room gets `voiced` with `set: false`.
    Devoice { room: RoomName, nick: Nick },
    /// Leave a room, optionally saying why; answered by `parted`.
    Part {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Say something in a joined room; echoed back as `message`. A
    /// `notice` is a message that no program may answer automatically
    /// (an IRC NOTICE).
    Say {
        room: RoomName,
        text: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        notice: bool,
        /// The id of the room's message this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    /// A direct message to one nick; echoed back as `direct`.
    Whisper {
        to: Nick,
        text: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        notice: bool,
        /// The id of the conversation's message this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<u64>,
    },
    /// Adds (or, with `remove`, takes back) your `reaction` to message `id`
    /// of a joined `room` or of the direct conversation `with` someone;
    /// everyone there gets `reaction`.
    React {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        id: u64,
        reaction: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        remove: bool,
    },
    /// Replaces the text of your message `id`; everyone there gets
    /// `edited`.
    Edit {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        id: u64,
        text: String,
    },
    /// Deletes your message `id` (a room's operators may delete anyone's);
    /// everyone there gets `deleted`, and history keeps only that it was.
    Delete {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Searches the history of your rooms and your direct conversations:
    /// words and "quoted phrases" (all required), `from:nick`, `in:#room`
    /// or `in:nick`; answered by `search_results`, newest first.
    /// `before` (a message id) and `before_ts` (Unix ms) page back.
    Search {
        query: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_ts: Option<u64>,
    },
    /// Your account's notification level in `room` (or the direct
    /// conversation `with` someone): with `level`, changes it; without,
    /// asks. Answered by `notify_level` (every device of the account gets
    /// a change).
    NotifyLevel {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        level: Option<NotifyLevel>,
    },
    /// Subscribes this browser to Web Push for your account: the fields of
    /// its `PushSubscription.toJSON()`. Answered by `push_subscribed`.
    PushSubscribe { endpoint: String, keys: PushKeys },
    /// Ends the subscription with this endpoint. Answered by
    /// `push_unsubscribed`.
    PushUnsubscribe { endpoint: String },
    /// Your account's highlight words (besides your nick, what makes a
    /// message a mention): with `words`, replaces them; without, asks.
    /// Answered by `highlights`.
    Highlights {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        words: Option<Vec<String>>,
    },
    /// You are typing in `room`, or to `to` (or `with`: the same); never
    /// stored, and at most one every few seconds is relayed.
    Typing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        state: TypingState,
    },
    /// Page through a joined room's recent history, or (`with` instead of
    /// `room`) the direct conversation with another account; answered by
    /// `history`. `after` returns the oldest messages newer than that id
    /// (to fill a gap), `before` the newest ones older than that id,
    /// neither the newest.
    History {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        /// The other account of a direct conversation (logged in only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
        /// Like `before`, by time: messages older than this Unix ms time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_ts: Option<u64>,
        /// Like `after`, by time: messages newer than this Unix ms time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ts: Option<u64>,
        /// With `after`/`after_ts`: the newest `limit` messages past it
        /// (IRC `CHATHISTORY LATEST`), not the oldest.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        latest: bool,
    },
    /// Change nick; answered by `nick`, seen by others as `presence`.
    Nick { nick: Nick },
    /// Liveness check; answered by `pong`.
    Ping,
    /// The answer to a server `ping`.
    Pong,
    /// Without `text`: asks for a room's topic (answered by `topic`). With
    /// it: sets the topic of a joined room (an empty text clears it), and
    /// every member gets `topic`.
    Topic {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// Who is in a room (joined or not); answered by `members`.
    Members { room: RoomName },
    /// Every room that has members; answered by `rooms`.
    Rooms,
    /// About one user; answered by `whois`.
    Whois { nick: Nick },
    /// Which of these nicks (at most [`MAX_USERS_QUERY`]) are online;
    /// answered by `users`.
    Users { nicks: Vec<Nick> },
    /// Your account's read position in a room (or a direct conversation
    /// `with` another account): with `id` (or `ts`, the newest message at
    /// or before that time) it moves forward there, and every session of
    /// the account gets `read`; without either, you get it. Positions only
    /// move forward: an older one is answered with the stored `read`.
    MarkRead {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
    },
    /// The conversations with activity between two times: your rooms and
    /// your direct conversations with other accounts; answered by
    /// `targets`. Without bounds, the most recent.
    Targets {
        /// Only those whose newest message is newer than this (Unix ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after_ts: Option<u64>,
        /// Only those whose newest message is older than this (Unix ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        before_ts: Option<u64>,
        /// At most this many (default and most: [`MAX_TARGETS`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Your account's settings: with a field, changes it. Answered by
    /// `settings` (every device of the account gets it).
    Settings {
        /// Stay in your rooms while none of your devices is connected
        /// (listed as away, whispers waiting for you); on by default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        always_on: Option<bool>,
    },
    /// With `message`: marks you away; without: back. Answered by `away`;
    /// room-mates get `away` too.
    Away {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The online users whose nick matches `mask` (`*` any run, `?` any
    /// one character), among those sharing a room with you and yourself
    /// (IRC's WHO with a mask), at most 100; answered by `users`.
    #[cfg(not(target_arch = "wasm32"))]
    Who { mask: String },
    #[cfg(not(target_arch = "wasm32"))]
    /// Adds `nicks` to this connection's watch list (at most
    /// [`MAX_WATCHED`] in all); answered by `watched` with which of them
    /// are online. With no nicks: `watched` with the whole list. Then a
    /// `watched` comes whenever one of them comes online or goes (IRC's
    /// MONITOR).
    Watch { nicks: Vec<Nick> },
    #[cfg(not(target_arch = "wasm32"))]
    /// Removes `nicks` from the watch list (none: all of them); answered
    /// by an empty `watched`.
    Unwatch {
        #[serde(default)]
        nicks: Vec<Nick>,
    },
    #[cfg(not(target_arch = "wasm32"))]
    /// Changes your real name (empty: none) or whether you are a bot;
    /// answered by `profile`, which your room-mates get too.
    Profile {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        realname: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bot: Option<bool>,
    },
}

impl ClientMessage {
    /// Every request `type`, for telling `unknown_type` from a bad body.
    pub const TYPES: &'static [&'static str] = &[
        "hello",
        "join",
        "part",
        "say",
        "whisper",
        "history",
        "nick",
        "ping",
        "pong",
        "topic",
        "members",
        "rooms",
        "whois",
        "away",
        "register",
        "logout",
        "kick",
        "ban",
        "unban",
        "bans",
        "except",
        "unexcept",
        "op",
        "deop",
        "users",
        "change_password",
        "delete_account",
        "kill",
        "kline",
        "unkline",
        "klines",
        "remove_account",
        "set_owner",
        "mode",
        "invite",
        "voice",
        "devoice",
        "targets",
        "mark_read",
        "settings",
        "profile",
        "watch",
        "unwatch",
        "who",
        "react",
        "edit",
        "delete",
        "typing",
        "search",
        "notify_level",
        "highlights",
        "push_subscribe",
        "push_unsubscribe",
    ];
}

/// What someone typing is doing: `active` (typing now), `paused` (stopped
/// with text in the box), `done` (cleared it, or sent). A state expires by
/// itself: `active` after [`TYPING_ACTIVE_SECS`], `paused` after
/// [`TYPING_PAUSED_SECS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    Active,
    Paused,
    Done,
}

impl TypingState {
    pub fn as_str(self) -> &'static str {
        match self {
            TypingState::Active => "active",
            TypingState::Paused => "paused",
            TypingState::Done => "done",
        }
    }
}

/// What of a room or direct conversation notifies you: every message,
/// only mentions (the default), or nothing (muted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyLevel {
    All,
    #[default]
    Mentions,
    None,
}

impl NotifyLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyLevel::All => "all",
            NotifyLevel::Mentions => "mentions",
            NotifyLevel::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<NotifyLevel> {
        match text {
            "all" => Some(NotifyLevel::All),
            "mentions" => Some(NotifyLevel::Mentions),
            "none" => Some(NotifyLevel::None),
            _ => None,
        }
    }
}

/// A push subscription's keys, base64url: the browser's P-256 public key
/// (`p256dh`) and its 16-byte authentication secret (`auth`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// An account's notification level in a room or a direct conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelOf {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Nick>,
    pub level: NotifyLevel,
}

/// Most highlight words an account keeps, and the longest, in bytes.
pub const MAX_HIGHLIGHTS: usize = 20;
pub const MAX_HIGHLIGHT_BYTES: usize = 32;
/// Most notification levels kept per account.
pub const MAX_NOTIFY_LEVELS: usize = 500;

/// Whether `text` mentions someone called `nick` or holding one of the
/// `highlights`: the name or word as a whole word (not inside a longer
/// one), ignoring case.
pub fn mentions(text: &str, nick: &str, highlights: &[String]) -> bool {
    mentions_lowered(text, nick, highlights, str::to_lowercase)
}

/// [`mentions`] with the lowercasing given: the web client lowercases
/// with the browser's (the same Unicode mapping) rather than carry Rust's
/// case tables in its download.
pub fn mentions_lowered(
    text: &str,
    nick: &str,
    highlights: &[String],
    lower: impl Fn(&str) -> String,
) -> bool {
    let text = lower(text);
    std::iter::once(nick)
        .chain(highlights.iter().map(String::as_str))
        .filter(|w| !w.is_empty())
        .any(|word| as_word(&text, &lower(word)))
}

/// Whether `word` stands in `text` as a word of its own: what is beside it
/// is no letter, digit or character a nick may hold.
fn as_word(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || "-_[]\\`^{|}".contains(c);
    let mut from = 0;
    while let Some(at) = text[from..].find(word) {
        let start = from + at;
        let end = start + word.len();
        let before = text[..start].chars().next_back();
        let after = text[end..].chars().next();
        if !before.is_some_and(part) && !after.is_some_and(part) {
            return true;
        }
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// How long an `active` typing state lasts without another.
pub const TYPING_ACTIVE_SECS: u64 = 6;
/// How long a `paused` typing state lasts without another.
pub const TYPING_PAUSED_SECS: u64 = 30;

/// One reaction on a message and who left it, in the order they did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    pub reaction: String,
    pub nicks: Vec<Nick>,
}

/// Checks a reaction: one emoji or a short word, with no white space or
/// control characters.
pub fn check_reaction(reaction: &str) -> Result<(), (ErrorCode, String)> {
    if reaction.is_empty() || reaction.len() > MAX_REACTION_BYTES {
        return Err((
            ErrorCode::InvalidReaction,
            format!("a reaction is 1 to {MAX_REACTION_BYTES} bytes"),
        ));
    }
    if reaction
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err((
            ErrorCode::InvalidReaction,
            "a reaction may not hold spaces or control characters".into(),
        ));
    }
    Ok(())
}

/// A room's topic and who set it when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub text: String,
    pub by: Nick,
    /// Unix time in milliseconds.
    pub ts: u64,
}

/// A room's modes (IRC's channel modes): who gets in, who speaks, who
/// sees it. `+n` (no messages from outside) always holds, so it is no
/// field. Absent fields are off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomModes {
    /// `+i`: only the invited (and operators) join.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invite_only: bool,
    /// `+k`: `join` must give this key (operators and the invited need not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `+l`: at most this many members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `+m`: only voiced members and operators speak.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moderated: bool,
    /// `+s`: hidden from `rooms` and `whois` of those not in it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// `+R`: only logged-in users join.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub registered_only: bool,
}

impl RoomModes {
    /// No mode is set (but `+n`).
    pub fn is_default(&self) -> bool {
        *self == RoomModes::default()
    }

    /// Makes `change`: a field it names replaces this one's (an empty
    /// `key` or a `limit` of 0 removes it).
    pub fn apply(&mut self, change: &ModeChange) {
        let ModeChange {
            invite_only,
            key,
            limit,
            moderated,
            secret,
            registered_only,
        } = change;
        if let Some(on) = invite_only {
            self.invite_only = *on;
        }
        if let Some(key) = key {
            self.key = (!key.is_empty()).then(|| key.clone());
        }
        if let Some(limit) = limit {
            self.limit = (*limit > 0).then_some(*limit);
        }
        if let Some(on) = moderated {
            self.moderated = *on;
        }
        if let Some(on) = secret {
            self.secret = *on;
        }
        if let Some(on) = registered_only {
            self.registered_only = *on;
        }
    }
}

/// What `joined` tells beyond members and history: the room's modes and
/// voices, and the joiner's read position in it. Boxed in `joined` (most
/// rooms have none of it, and every frame has room for a `joined`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Access {
    /// The room's modes (absent: none but `+n`).
    #[serde(skip_serializing_if = "RoomModes::is_default")]
    pub modes: RoomModes,
    /// The members with a voice (`+v`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub voiced: Vec<Nick>,
    /// The newest message your account read here (see `mark_read`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadMark>,
    /// The members who are bots (see `profile`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bots: Vec<Nick>,
}

impl Access {
    /// `None` when there is nothing to tell.
    pub fn boxed(
        modes: RoomModes,
        voiced: Vec<Nick>,
        read: Option<ReadMark>,
        bots: Vec<Nick>,
    ) -> Option<Box<Access>> {
        let access = Access {
            modes,
            voiced,
            read,
            bots,
        };
        (access != Access::default()).then(|| Box::new(access))
    }
}

/// A read position: the newest message read (its id, and its time in
/// Unix ms, for IRC's `MARKREAD`). Id 0: nothing read yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadMark {
    pub id: u64,
    pub ts: u64,
}

/// An account's read position in a room or in a direct conversation
/// `with` another account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadPosition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Nick>,
    pub id: u64,
    pub ts: u64,
}

/// The most read positions kept per account (the most recently moved).
pub const MAX_READ_POSITIONS: usize = 500;

/// What a `mode` request changes: the fields it names, the rest stays.
/// An empty `key` removes the key, a `limit` of 0 the limit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invite_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moderated: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_only: Option<bool>,
}

impl ModeChange {
    /// It changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ModeChange::default()
    }
}

/// The most bytes of a room key.
pub const MAX_KEY_BYTES: usize = 32;

/// The most conversations one `targets` request lists.
pub const MAX_TARGETS: u32 = 1000;

/// One conversation of a `targets` answer: a room, or a direct
/// conversation `with` an account, and the time of its newest message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Nick>,
    /// Unix time in milliseconds.
    pub ts: u64,
}

/// One line of a `rooms` listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    pub room: RoomName,
    /// How many members it has.
    pub members: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// A chat message in a room, as delivered and as kept in history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub room: RoomName,
    /// Strictly increasing within the room.
    pub id: u64,
    pub from: Nick,
    pub text: String,
    /// Unix time in milliseconds; never decreases within the room.
    pub ts: u64,
    /// The account the sender was logged into, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    /// A notice: never answer it automatically.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
    /// The id of the message this one answers (in the same room or
    /// conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// When its text was last edited (Unix ms); `text` is the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<u64>,
    /// It was deleted: `text` is empty, and only this tombstone stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Its reactions, in the order they were first left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

/// A direct message between two nicks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectMessage {
    pub id: u64,
    pub from: Nick,
    pub to: Nick,
    pub text: String,
    pub ts: u64,
    /// The account the sender was logged into, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    /// A notice: never answer it automatically.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
    /// The id of the message this one answers (in the same room or
    /// conversation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    /// When its text was last edited (Unix ms); `text` is the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<u64>,
    /// It was deleted: `text` is empty, and only this tombstone stays.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// Its reactions, in the order they were first left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

/// A message `search` found: a room's (with `room`, as in its history), or
/// one of a direct conversation (with `to`, and `with`: the other side).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<RoomName>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Nick>,
    pub id: u64,
    pub from: Nick,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Nick>,
    pub text: String,
    pub ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<u64>,
}

/// One online user, in a `users` answer and a `members` one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// As the user spells it.
    pub nick: Nick,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg(not(target_arch = "wasm32"))]
    pub realname: Option<String>,
    /// IRC's `USER` username, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg(not(target_arch = "wasm32"))]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    #[cfg(not(target_arch = "wasm32"))]
    pub bot: bool,
    /// A server administrator (IRC's operator: `*` in WHO).
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oper: bool,
}

/// Which of a room's lists an entry is on, as IRC names them: bans
/// (`+b`), ban exceptions (`+e`: whom they match no ban stops) and invite
/// exceptions (`+I`: whom they match joins an invite-only room without an
/// invitation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BanList {
    #[default]
    Ban,
    BanException,
    InviteException,
}

impl BanList {
    pub fn is_ban(&self) -> bool {
        *self == BanList::Ban
    }

    /// Its IRC channel mode letter.
    pub fn letter(self) -> char {
        match self {
            BanList::Ban => 'b',
            BanList::BanException => 'e',
            BanList::InviteException => 'I',
        }
    }
}

/// One entry of a room's ban list (or of its exception lists, see
/// `list`): a nick, an account or a mask.
///
/// The web client (wasm) reads bans only: its build has no `list` and
/// refuses an entry with fields it does not know, so an exception is never
/// shown there as a ban (the frame is skipped as one of a newer server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(target_arch = "wasm32", serde(deny_unknown_fields))]
pub struct BanInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick: Option<Nick>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    /// A mask `nick!user@host` with `*` and `?` wildcards (every user is
    /// `nick!nick@banter` here, so it is the nick part that counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    pub by: Nick,
    /// Unix time in milliseconds.
    pub ts: u64,
    /// The list it is on (absent: the bans).
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default, skip_serializing_if = "BanList::is_ban")]
    pub list: BanList,
}

/// A server ban (K-line): an address or CIDR range, or an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerBan {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Nick>,
    pub reason: String,
    pub by: Nick,
    /// Unix time in milliseconds.
    pub ts: u64,
    /// When it ends (Unix ms); none: until lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// What happened to a member of a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceEvent {
    Join,
    Part,
    Quit,
    /// `nick` is now called `new_nick`.
    Nick,
    #[serde(other)]
    Unknown,
}

/// Server limits a client should respect (and may show to its user).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_text_bytes: usize,
    pub max_frame_bytes: usize,
    pub max_rooms: usize,
    /// Seconds of silence after which the server pings the client.
    pub idle_timeout_secs: u64,
    /// Most lines in one message (0 from a server that does not say).
    /// Not read by the web client (its download budget).
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default)]
    pub max_lines: usize,
    /// How long after sending a message its sender may edit it, in
    /// seconds (0: no edits, or a server that does not say).
    #[cfg(not(target_arch = "wasm32"))]
    #[serde(default)]
    pub edit_window_secs: u64,
}

/// Events and replies, server → client. Its `Deserialize` is in
/// [`crate::decode`] (a flat struct, smaller than the derive's).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    Welcome {
        nick: Nick,
        protocol: u32,
        server: String,
        limits: Limits,
        /// The server's VAPID public key (base64url, an uncompressed P-256
        /// point) for Web Push subscriptions; absent without a store.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vapid_public_key: Option<String>,
    },
    Joined {
        room: RoomName,
        /// Everyone in the room, the joiner included.
        members: Vec<Nick>,
        /// The most recent messages, oldest first.
        history: Vec<ChatMessage>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        topic: Option<Topic>,
        /// The members (nicks) who moderate the room: logged into its
        /// owner's or an operator's account. IRC shows them as `@`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moderators: Vec<Nick>,
        /// The room's modes and voices, if it has any (`modes`, `voiced`
        /// in the JSON).
        #[serde(flatten)]
        access: Option<Box<Access>>,
    },
    Parted {
        room: RoomName,
        /// The reason the `part` gave, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Message(ChatMessage),
    Direct(DirectMessage),
    Presence {
        room: RoomName,
        nick: Nick,
        event: PresenceEvent,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_nick: Option<Nick>,
        /// Why, in the user's words (`part` and `quit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The account the user is logged into, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        #[cfg(not(target_arch = "wasm32"))]
        /// The user's real name, if it gave one (`join` only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        realname: Option<String>,
        /// The user is a bot (`join` only).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bot: bool,
    },
    History {
        room: RoomName,
        /// Oldest first.
        messages: Vec<ChatMessage>,
    },
    /// A page of the direct conversation `with` another account, answering
    /// `history` with `with`: both directions, oldest first.
    #[serde(rename = "history")]
    DirectHistory {
        with: Nick,
        messages: Vec<DirectMessage>,
    },
    /// A read position of your account (`id` 0: none), answering
    /// `mark_read`, or moved by one of its sessions.
    Read(ReadPosition),
    /// Your account's stored read positions, right after `logged_in`.
    ReadPositions {
        positions: Vec<ReadPosition>,
    },
    /// Conversations with their newest activity (Unix ms), oldest first,
    /// answering `targets`.
    Targets {
        targets: Vec<TargetInfo>,
    },
    /// Your account's settings, answering `settings`.
    Settings {
        always_on: bool,
    },
    /// Your nick changed from `old` to `nick`.
    Nick {
        nick: Nick,
        old: Nick,
    },
    Ping,
    Pong,
    /// A room's topic (`null`: none), answering `topic`; or a change,
    /// announced to every member (an empty `text`: `by` cleared it).
    Topic {
        room: RoomName,
        topic: Option<Topic>,
    },
    /// Who is in `room`; `away` lists the members who are away.
    Members {
        room: RoomName,
        members: Vec<Nick>,
        away: Vec<Nick>,
        /// The members who moderate the room, as in `joined`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moderators: Vec<Nick>,
        /// The members with a voice (`+v`), as in `joined`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        voiced: Vec<Nick>,
        #[cfg(not(target_arch = "wasm32"))]
        /// Each member in the order of `members`, with its account, real
        /// name and bot flag (what IRC's WHO shows).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        users: Vec<UserInfo>,
        /// The room is secret (`+s`; IRC's `@` in NAMES).
        #[cfg(not(target_arch = "wasm32"))]
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        secret: bool,
    },
    /// Every room that has members, by name.
    Rooms {
        rooms: Vec<RoomInfo>,
    },
    Whois {
        nick: Nick,
        /// The rooms the user is in.
        rooms: Vec<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
        /// Seconds since the user last said something.
        idle_secs: u64,
        /// When the user connected, Unix milliseconds.
        since: u64,
        /// The account the user is logged into, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        realname: Option<String>,
        #[cfg(not(target_arch = "wasm32"))]
        /// IRC's `USER` username, if it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bot: bool,
        /// A server administrator (IRC's 313).
        #[cfg(not(target_arch = "wasm32"))]
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        oper: bool,
        /// For each of `rooms`, the user's prefixes there: `@` it runs
        /// the room, `+` it has a voice (IRC's 319).
        #[cfg(not(target_arch = "wasm32"))]
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        prefixes: Vec<String>,
    },
    /// The online users among the nicks a `users` request named, in its
    /// order.
    Users {
        users: Vec<UserInfo>,
    },
    #[cfg(not(target_arch = "wasm32"))]
    /// Watched nicks that are online and offline: answering `watch`, and
    /// when one comes or goes.
    Watched {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        online: Vec<Nick>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        offline: Vec<Nick>,
    },
    #[cfg(not(target_arch = "wasm32"))]
    /// Room-mate `nick` logged into `account` (none: logged out).
    Account {
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
    },
    /// `nick`'s real name or bot flag changed (answering `profile`; sent to
    /// the user and its room-mates).
    Profile {
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        realname: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        bot: bool,
    },
    /// `nick` is away with `message`, or back (no `message`). Sent to the
    /// user itself, to room-mates, and to whoever whispers to an away user.
    Away {
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// You are logged into `account`. `token` (given after a password
    /// login or `register`) logs in later without the password, until a
    /// `logout` revokes it. Sent right after `welcome`.
    LoggedIn {
        account: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// The account administers the server (`kill`, `kline`, ...).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        admin: bool,
    },
    /// The account `nick` now exists.
    Registered {
        nick: Nick,
    },
    /// Tokens were revoked (`revoked` of them).
    LoggedOut {
        revoked: u64,
    },
    /// The password was changed; every earlier token is revoked, and
    /// `token` logs in from now on.
    PasswordChanged {
        token: String,
    },
    /// The account `account` is gone; this session goes on as a guest.
    AccountDeleted {
        account: Nick,
    },
    /// `kill` ended the session of `nick`.
    Killed {
        nick: Nick,
    },
    /// A server ban was set (or, `set: false`, lifted).
    Klined {
        kline: ServerBan,
        set: bool,
    },
    /// The server bans.
    Klines {
        klines: Vec<ServerBan>,
    },
    /// `by` removed `nick` from `room`; sent to the room, `nick` included.
    Kicked {
        room: RoomName,
        nick: Nick,
        by: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A ban was set (`set: true`) or lifted; sent to the room.
    Banned {
        room: RoomName,
        ban: BanInfo,
        set: bool,
    },
    /// A room's bans, answering `bans` (or its exceptions of `list`).
    Bans {
        room: RoomName,
        bans: Vec<BanInfo>,
        /// Not read by the web client (wasm), which asks for bans only.
        #[cfg(not(target_arch = "wasm32"))]
        #[serde(default, skip_serializing_if = "BanList::is_ban")]
        list: BanList,
    },
    /// Who runs `room`: its owner and operators (account names). Sent
    /// after `joined` when the room has an owner, and to the room when
    /// it changes.
    Roles {
        room: RoomName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<Nick>,
        ops: Vec<Nick>,
        /// The members (nicks) logged into those accounts now.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        moderators: Vec<Nick>,
    },
    /// A room's modes: answering `mode` (the `key` only for members), or
    /// a change `by` someone, announced to the room with what it changed.
    Modes {
        room: RoomName,
        modes: RoomModes,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<Nick>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        change: Option<ModeChange>,
        #[cfg(not(target_arch = "wasm32"))]
        /// When the room was opened (its first member of now joined),
        /// Unix ms: in the answer to `mode` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created: Option<u64>,
    },
    /// `by` invited `nick` into `room`: the answer to `invite`, and told
    /// to the room's operators present.
    Invited {
        room: RoomName,
        nick: Nick,
        by: Nick,
    },
    /// You are invited into `room` by `from`.
    Invite {
        room: RoomName,
        from: Nick,
    },
    /// `by` gave `nick` a voice in `room` (`set: false`: took it).
    Voiced {
        room: RoomName,
        nick: Nick,
        by: Nick,
        set: bool,
    },
    /// `nick` added (or, `remove`, took back) `reaction` to message `id`
    /// of `room`, or of the direct conversation `with` someone.
    Reaction {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        id: u64,
        reaction: String,
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<Nick>,
        remove: bool,
    },
    /// Message `id` now reads `text`: `nick` edited it at `ts`.
    Edited {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        id: u64,
        text: String,
        nick: Nick,
        ts: u64,
    },
    /// `nick` deleted message `id`.
    Deleted {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        id: u64,
        nick: Nick,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The answer to `search`: what it found, newest first. The web build
    /// reads it itself (its shared decoder reads rooms' history only).
    SearchResults {
        messages: Vec<Found>,
    },
    /// A notification level, answering `notify_level` (a change reaches
    /// every device of the account).
    NotifyLevel(LevelOf),
    /// The account's notification levels other than the default, right
    /// after `logged_in` (only when it has some).
    NotifyLevels {
        levels: Vec<LevelOf>,
    },
    /// The account's highlight words, answering `highlights` (and right
    /// after `logged_in` when it has some).
    Highlights {
        words: Vec<String>,
    },
    /// A Web Push subscription is kept (answering `push_subscribe`).
    PushSubscribed {
        endpoint: String,
    },
    /// A Web Push subscription is gone (answering `push_unsubscribe`).
    PushUnsubscribed {
        endpoint: String,
    },
    /// `nick` is typing in `room`, or to you (`with`: `nick`).
    Typing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<RoomName>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        with: Option<Nick>,
        nick: Nick,
        state: TypingState,
    },
    /// Your outbox overflowed: `dropped` older events were discarded.
    /// Use `history` with `after` to fill the gap.
    Lagged {
        dropped: u64,
    },
    /// A request failed; the connection stays open.
    Error {
        code: ErrorCode,
        message: String,
    },
    /// The server is about to close this connection, and why.
    Closing {
        code: ErrorCode,
        message: String,
    },
}

impl ServerMessage {
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerMessage::Error {
            code,
            message: message.into(),
        }
    }
}

/// Why a frame could not become a request. Carries the frame's `ref`
/// whenever it could be read, so the error can echo it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestError {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<Ref>,
}

impl RequestError {
    fn new(code: ErrorCode, message: impl Into<String>, reference: Option<Ref>) -> Self {
        RequestError {
            code,
            message: message.into(),
            reference,
        }
    }

    /// The `error` frame to send back.
    pub fn to_envelope(&self) -> Envelope<ServerMessage> {
        Envelope::with_ref(
            ServerMessage::error(self.code, self.message.clone()),
            self.reference.clone(),
        )
    }
}

/// What every frame must have, read before the body so that an unknown
/// `type` or a broken body can still be answered with the right `ref`.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(rename = "ref", default)]
    reference: Option<Ref>,
}

/// Parses one frame (a WebSocket text frame or a JSON line) into a request,
/// or into an error with a specific code: `bad_json`, `bad_request`,
/// `missing_field`, `unknown_type`, `invalid_nick` or `invalid_room`.
pub fn parse_request(frame: &[u8]) -> Result<Envelope<ClientMessage>, RequestError> {
    let probe: Probe = serde_json::from_slice(frame).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            RequestError::new(ErrorCode::BadJson, format!("malformed JSON: {e}"), None)
        } else {
            RequestError::new(
                ErrorCode::BadRequest,
                "a frame must be a JSON object with a string \"type\"; \"ref\" must be a string or an integer",
                None,
            )
        }
    })?;
    let reference = probe.reference;
    if let Some(Ref::Str(s)) = &reference
        && s.len() > MAX_REF_LEN
    {
        return Err(RequestError::new(
            ErrorCode::BadRequest,
            format!("\"ref\" is longer than {MAX_REF_LEN} bytes"),
            None,
        ));
    }
    let Some(kind) = probe.kind else {
        return Err(RequestError::new(
            ErrorCode::MissingField,
            "missing field `type`",
            reference,
        ));
    };
    if !ClientMessage::TYPES.contains(&kind.as_ref()) {
        let shown: String = kind.chars().take(40).collect();
        return Err(RequestError::new(
            ErrorCode::UnknownType,
            format!(
                "unknown message type {shown:?} (known: {})",
                ClientMessage::TYPES.join(", ")
            ),
            reference,
        ));
    }
    match serde_json::from_slice::<ClientMessage>(frame) {
        Ok(body) => Ok(Envelope { body, reference }),
        Err(e) => {
            let text = e.to_string();
            let code = if text.starts_with("missing field") {
                ErrorCode::MissingField
            } else if text.starts_with("invalid nick") {
                ErrorCode::InvalidNick
            } else if text.starts_with("invalid room") {
                ErrorCode::InvalidRoom
            } else {
                ErrorCode::BadRequest
            };
            Err(RequestError::new(code, text, reference))
        }
    }
}

/// Checks a topic (which may be empty: that clears it) or an away message.
pub fn check_line(text: &str, max_bytes: usize, what: &str) -> Result<(), (ErrorCode, String)> {
    if text.len() > max_bytes {
        return Err((
            ErrorCode::TextTooLong,
            format!(
                "the {what} is {} bytes; the limit is {max_bytes} bytes",
                text.len()
            ),
        ));
    }
    if text.contains(['\0', '\r', '\n']) {
        return Err((
            ErrorCode::InvalidText,
            format!("the {what} may not contain NUL or line breaks"),
        ));
    }
    if text.contains(CTCP) {
        return Err((
            ErrorCode::InvalidText,
            format!("the {what} may not contain \\x01 (IRC clients take it for a CTCP command)"),
        ));
    }
    Ok(())
}

/// Checks a message text against the rules every server applies:
/// not blank, at most `max_bytes` UTF-8 bytes, no NUL or CR, and no CTCP
/// (`\x01`: an IRC client would run it as a command; `/me` is how an
/// action is written). IRC formatting codes (bold, colours, …) are kept.
pub fn check_text(text: &str, max_bytes: usize) -> Result<(), (ErrorCode, String)> {
    if text.len() > max_bytes {
        return Err((
            ErrorCode::TextTooLong,
            format!(
                "text is {} bytes; the limit is {max_bytes} bytes",
                text.len()
            ),
        ));
    }
    if text.trim().is_empty() {
        return Err((ErrorCode::EmptyText, "text is empty".into()));
    }
    if text.contains(['\0', '\r']) {
        return Err((
            ErrorCode::InvalidText,
            "text may not contain NUL or carriage return characters".into(),
        ));
    }
    if text.contains(CTCP) {
        return Err((
            ErrorCode::InvalidText,
            "text may not contain \\x01: IRC clients take it for a CTCP command \
             (VERSION, DCC…); write an action as \"/me waves\""
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    #[test]
    fn requests_parse_as_documented() {
        let cases: &[(&str, ClientMessage)] = &[
            (
                r#"{"type":"hello","nick":"alice"}"#,
                ClientMessage::Hello {
                    nick: nick("alice"),
                    password: None,
                    token: None,
                    realname: None,
                    username: None,
                    bot: false,
                },
            ),
            (
                r#"{"type":"hello","nick":"bot","realname":"A Bot","username":"b","bot":true}"#,
                ClientMessage::Hello {
                    nick: nick("bot"),
                    password: None,
                    token: None,
                    realname: Some("A Bot".into()),
                    username: Some("b".into()),
                    bot: true,
                },
            ),
            (
                r#"{"type":"profile","realname":"New"}"#,
                ClientMessage::Profile {
                    realname: Some("New".into()),
                    bot: None,
                },
            ),
            (
                r#"{"type":"join","room":"Lobby"}"#,
                ClientMessage::Join {
                    room: room("lobby"),
                    key: None,
                    rejoin: false,
                },
            ),
            (
                r#"{"type":"join","room":"den","key":"s3cret","rejoin":true}"#,
                ClientMessage::Join {
                    room: room("den"),
                    key: Some("s3cret".into()),
                    rejoin: true,
                },
            ),
            (
                r#"{"type":"invite","room":"den","nick":"bob"}"#,
                ClientMessage::Invite {
                    room: room("den"),
                    nick: nick("bob"),
                },
            ),
            (
                r#"{"type":"mode","room":"den","set":{"invite_only":true,"key":"k","limit":20,"moderated":true,"secret":true}}"#,
                ClientMessage::Mode {
                    room: room("den"),
                    set: Some(ModeChange {
                        invite_only: Some(true),
                        key: Some("k".into()),
                        limit: Some(20),
                        moderated: Some(true),
                        secret: Some(true),
                        registered_only: None,
                    }),
                },
            ),
            (
                r#"{"type":"voice","room":"den","nick":"bob"}"#,
                ClientMessage::Voice {
                    room: room("den"),
                    nick: nick("bob"),
                },
            ),
            (
                r#"{"type":"part","room":"lobby"}"#,
                ClientMessage::Part {
                    room: room("lobby"),
                    reason: None,
                },
            ),
            (
                r#"{"type":"say","room":"lobby","text":"hi"}"#,
                ClientMessage::Say {
                    reply_to: None,
                    room: room("lobby"),
                    text: "hi".into(),
                    notice: false,
                },
            ),
            (
                r#"{"type":"whisper","to":"bob","text":"psst"}"#,
                ClientMessage::Whisper {
                    reply_to: None,
                    to: nick("bob"),
                    text: "psst".into(),
                    notice: false,
                },
            ),
            (r#"{"type":"ping"}"#, ClientMessage::Ping),
            (
                r#"{"type":"history","room":"lobby","after":17}"#,
                ClientMessage::History {
                    room: Some(room("lobby")),
                    with: None,
                    before: None,
                    after: Some(17),
                    limit: None,
                    before_ts: None,
                    after_ts: None,
                    latest: false,
                },
            ),
            (
                r#"{"type":"history","with":"Bob","before":9,"limit":20}"#,
                ClientMessage::History {
                    room: None,
                    with: Some(nick("Bob")),
                    before: Some(9),
                    after: None,
                    limit: Some(20),
                    before_ts: None,
                    after_ts: None,
                    latest: false,
                },
            ),
            (
                r#"{"type":"targets","after_ts":1000}"#,
                ClientMessage::Targets {
                    after_ts: Some(1000),
                    before_ts: None,
                    limit: None,
                },
            ),
        ];
        for (json, want) in cases {
            let got = parse_request(json.as_bytes()).unwrap();
            assert_eq!(&got.body, want, "{json}");
            assert_eq!(got.reference, None);
            // And the same value encodes back to something that parses equal.
            let again = serde_json::to_vec(&Envelope::new(want.clone())).unwrap();
            assert_eq!(&parse_request(&again).unwrap().body, want);
        }
    }

    #[test]
    fn refs_read_as_untagged_would() {
        let read = |json: &str| serde_json::from_str::<Ref>(json).ok();
        assert_eq!(read("7"), Some(Ref::Int(7)));
        assert_eq!(read("-3"), Some(Ref::Int(-3)));
        assert_eq!(read(&i64::MAX.to_string()), Some(Ref::Int(i64::MAX)));
        assert_eq!(read(r#""a\"b""#), Some(Ref::Str("a\"b".into())));
        for bad in ["18446744073709551615", "1.5", "true", "null", "[1]", "{}"] {
            assert_eq!(read(bad), None, "{bad}");
        }
        for r in [Ref::Int(-1), Ref::Str("x".into())] {
            assert_eq!(read(&serde_json::to_string(&r).unwrap()), Some(r));
        }
    }

    #[test]
    fn ref_is_kept_on_success_and_failure() {
        let ok = parse_request(br#"{"type":"ping","ref":"a1"}"#).unwrap();
        assert_eq!(ok.reference, Some(Ref::Str("a1".into())));
        let ok = parse_request(br#"{"type":"ping","ref":7}"#).unwrap();
        assert_eq!(ok.reference, Some(Ref::Int(7)));
        let err = parse_request(br#"{"type":"nope","ref":9}"#).unwrap_err();
        assert_eq!(
            (err.code, err.reference),
            (ErrorCode::UnknownType, Some(Ref::Int(9)))
        );
        let err = parse_request(br#"{"type":"join","ref":"x"}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::MissingField);
        assert_eq!(err.reference, Some(Ref::Str("x".into())));
        let env = err.to_envelope();
        let json = serde_json::to_string(&env).unwrap();
        assert!(
            json.contains(r#""code":"missing_field""#) && json.contains(r#""ref":"x""#),
            "{json}"
        );
    }

    #[test]
    fn each_bad_input_has_its_code() {
        let cases: &[(&str, ErrorCode)] = &[
            ("{not json", ErrorCode::BadJson),
            ("", ErrorCode::BadJson),
            ("[1,2]", ErrorCode::BadRequest),
            ("42", ErrorCode::BadRequest),
            (r#"{"nick":"a"}"#, ErrorCode::MissingField),
            (r#"{"type":5}"#, ErrorCode::BadRequest),
            (r#"{"type":"dance"}"#, ErrorCode::UnknownType),
            (r#"{"type":"say","room":"lobby"}"#, ErrorCode::MissingField),
            (
                r#"{"type":"say","room":"lobby","text":5}"#,
                ErrorCode::BadRequest,
            ),
            (
                r#"{"type":"hello","nick":"9lives"}"#,
                ErrorCode::InvalidNick,
            ),
            (
                r#"{"type":"whisper","to":"a b","text":"x"}"#,
                ErrorCode::InvalidNick,
            ),
            (
                r##"{"type":"join","room":"#lobby"}"##,
                ErrorCode::InvalidRoom,
            ),
            (r#"{"type":"ping","ref":{"a":1}}"#, ErrorCode::BadRequest),
        ];
        for (json, code) in cases {
            let err = parse_request(json.as_bytes()).unwrap_err();
            assert_eq!(err.code, *code, "{json}: {}", err.message);
            assert!(!err.message.is_empty());
        }
        let long_ref = format!(r#"{{"type":"ping","ref":"{}"}}"#, "r".repeat(65));
        assert_eq!(
            parse_request(long_ref.as_bytes()).unwrap_err().code,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn server_messages_have_the_contract_shape() {
        let msg = Envelope::new(ServerMessage::Message(ChatMessage {
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
            room: room("lobby"),
            id: 17,
            from: nick("alice"),
            text: "hi".into(),
            ts: 1763823600123,
            account: None,
            notice: false,
        }));
        assert_eq!(
            serde_json::to_string(&msg).unwrap(),
            r#"{"type":"message","room":"lobby","id":17,"from":"alice","text":"hi","ts":1763823600123}"#
        );
        let presence = Envelope::new(ServerMessage::Presence {
            room: room("lobby"),
            nick: nick("bob"),
            event: PresenceEvent::Join,
            new_nick: None,
            reason: None,
            account: None,
            realname: None,
            bot: false,
        });
        assert_eq!(
            serde_json::to_string(&presence).unwrap(),
            r#"{"type":"presence","room":"lobby","nick":"bob","event":"join"}"#
        );
        let err = Envelope::with_ref(
            ServerMessage::error(ErrorCode::NickTaken, "that nick is in use"),
            Some(Ref::Int(3)),
        );
        let json = serde_json::to_string(&err).unwrap();
        assert_eq!(
            json,
            r#"{"type":"error","code":"nick_taken","message":"that nick is in use","ref":3}"#
        );
        let back: Envelope<ServerMessage> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, err);
        let pong: Envelope<ServerMessage> =
            serde_json::from_str(r#"{"type":"pong","ref":"p"}"#).unwrap();
        assert_eq!(pong.body, ServerMessage::Pong);
    }

    #[test]
    fn new_messages_are_additive() {
        // `joined` without a topic looks exactly as before.
        let joined = ServerMessage::Joined {
            room: room("lobby"),
            members: vec![nick("bob")],
            history: vec![],
            topic: None,
            moderators: vec![],
            access: None,
        };
        assert_eq!(
            serde_json::to_string(&joined).unwrap(),
            r#"{"type":"joined","room":"lobby","members":["bob"],"history":[]}"#
        );
        let old: ServerMessage =
            serde_json::from_str(r#"{"type":"joined","room":"lobby","members":[],"history":[]}"#)
                .unwrap();
        assert!(matches!(old, ServerMessage::Joined { topic: None, .. }));
        let cases: &[(&str, ClientMessage)] = &[
            (
                r#"{"type":"topic","room":"lobby"}"#,
                ClientMessage::Topic {
                    room: room("lobby"),
                    text: None,
                },
            ),
            (
                r#"{"type":"topic","room":"lobby","text":"hi"}"#,
                ClientMessage::Topic {
                    room: room("lobby"),
                    text: Some("hi".into()),
                },
            ),
            (
                r#"{"type":"members","room":"lobby"}"#,
                ClientMessage::Members {
                    room: room("lobby"),
                },
            ),
            (r#"{"type":"rooms"}"#, ClientMessage::Rooms),
            (
                r#"{"type":"whois","nick":"bob"}"#,
                ClientMessage::Whois { nick: nick("bob") },
            ),
            (
                r#"{"type":"away","message":"lunch"}"#,
                ClientMessage::Away {
                    message: Some("lunch".into()),
                },
            ),
            (r#"{"type":"away"}"#, ClientMessage::Away { message: None }),
            (
                r#"{"type":"register","nick":"bob","password":"hunter22"}"#,
                ClientMessage::Register {
                    nick: nick("bob"),
                    password: "hunter22".into(),
                    invite: None,
                },
            ),
            (
                r#"{"type":"register","nick":"bob","password":"hunter22","invite":"c0de"}"#,
                ClientMessage::Register {
                    nick: nick("bob"),
                    password: "hunter22".into(),
                    invite: Some("c0de".into()),
                },
            ),
            (
                r#"{"type":"change_password","old_password":"a","new_password":"b"}"#,
                ClientMessage::ChangePassword {
                    old_password: "a".into(),
                    new_password: "b".into(),
                },
            ),
            (
                r#"{"type":"delete_account","password":"a"}"#,
                ClientMessage::DeleteAccount {
                    password: "a".into(),
                },
            ),
            (r#"{"type":"logout"}"#, ClientMessage::Logout { all: false }),
            (
                r#"{"type":"ban","room":"lobby","account":"bob"}"#,
                ClientMessage::Ban {
                    room: room("lobby"),
                    nick: None,
                    account: Some(nick("bob")),
                    mask: None,
                },
            ),
            (
                r#"{"type":"ban","room":"lobby","mask":"spam*!*@*"}"#,
                ClientMessage::Ban {
                    room: room("lobby"),
                    nick: None,
                    account: None,
                    mask: Some("spam*!*@*".into()),
                },
            ),
            (
                r#"{"type":"kick","room":"lobby","nick":"bob"}"#,
                ClientMessage::Kick {
                    room: room("lobby"),
                    nick: nick("bob"),
                    reason: None,
                },
            ),
            (
                r#"{"type":"op","room":"lobby","account":"bob"}"#,
                ClientMessage::Op {
                    room: room("lobby"),
                    account: nick("bob"),
                },
            ),
            (
                r#"{"type":"kill","nick":"bob"}"#,
                ClientMessage::Kill {
                    nick: nick("bob"),
                    reason: None,
                },
            ),
            (
                r#"{"type":"kline","address":"10.0.0.0/8","reason":"spam","minutes":5}"#,
                ClientMessage::Kline {
                    address: Some("10.0.0.0/8".into()),
                    account: None,
                    reason: "spam".into(),
                    minutes: Some(5),
                },
            ),
            (
                r#"{"type":"unkline","account":"bob"}"#,
                ClientMessage::Unkline {
                    address: None,
                    account: Some(nick("bob")),
                },
            ),
            (r#"{"type":"klines"}"#, ClientMessage::Klines),
            (
                r#"{"type":"set_owner","room":"lobby","account":"bob"}"#,
                ClientMessage::SetOwner {
                    room: room("lobby"),
                    account: nick("bob"),
                },
            ),
            (
                r#"{"type":"remove_account","account":"bob"}"#,
                ClientMessage::RemoveAccount {
                    account: nick("bob"),
                },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                &parse_request(json.as_bytes()).unwrap().body,
                want,
                "{json}"
            );
        }
        let away = ServerMessage::Away {
            nick: nick("bob"),
            message: None,
        };
        assert_eq!(
            serde_json::to_string(&away).unwrap(),
            r#"{"type":"away","nick":"bob"}"#
        );
        assert_eq!(check_line("", 10, "topic"), Ok(()));
        assert_eq!(
            check_line("a\nb", 10, "topic").unwrap_err().0,
            ErrorCode::InvalidText
        );
    }

    #[test]
    fn notices_reasons_accounts_and_users_are_optional_fields() {
        let cases: &[(&str, ClientMessage)] = &[
            (
                r#"{"type":"say","room":"lobby","text":"fyi","notice":true}"#,
                ClientMessage::Say {
                    reply_to: None,
                    room: room("lobby"),
                    text: "fyi".into(),
                    notice: true,
                },
            ),
            (
                r#"{"type":"whisper","to":"bob","text":"fyi","notice":true}"#,
                ClientMessage::Whisper {
                    reply_to: None,
                    to: nick("bob"),
                    text: "fyi".into(),
                    notice: true,
                },
            ),
            (
                r#"{"type":"part","room":"lobby","reason":"lunch"}"#,
                ClientMessage::Part {
                    room: room("lobby"),
                    reason: Some("lunch".into()),
                },
            ),
            (
                r#"{"type":"users","nicks":["bob","Carol"]}"#,
                ClientMessage::Users {
                    nicks: vec![nick("bob"), nick("Carol")],
                },
            ),
        ];
        for (json, want) in cases {
            assert_eq!(
                &parse_request(json.as_bytes()).unwrap().body,
                want,
                "{json}"
            );
            let again = serde_json::to_string(want).unwrap();
            assert_eq!(&again, json, "written back the same way");
        }
        // Set, they are written; unset, the frame is exactly as before.
        let message = ChatMessage {
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
            room: room("lobby"),
            id: 1,
            from: nick("alice"),
            text: "hi".into(),
            ts: 5,
            account: Some(nick("alice")),
            notice: true,
        };
        assert_eq!(
            serde_json::to_string(&ServerMessage::Message(message)).unwrap(),
            r#"{"type":"message","room":"lobby","id":1,"from":"alice","text":"hi","ts":5,"account":"alice","notice":true}"#
        );
        let quit = ServerMessage::Presence {
            room: room("lobby"),
            nick: nick("bob"),
            event: PresenceEvent::Quit,
            new_nick: None,
            reason: Some("bye".into()),
            account: None,
            realname: None,
            bot: false,
        };
        assert_eq!(
            serde_json::to_string(&quit).unwrap(),
            r#"{"type":"presence","room":"lobby","nick":"bob","event":"quit","reason":"bye"}"#
        );
        let old: ServerMessage = serde_json::from_str(
            r#"{"type":"direct","id":1,"from":"a","to":"b","text":"x","ts":1}"#,
        )
        .unwrap();
        assert!(matches!(
            old,
            ServerMessage::Direct(DirectMessage {
                account: None,
                notice: false,
                ..
            })
        ));
    }

    #[test]
    fn text_rules() {
        assert!(check_text("hello", 10).is_ok());
        assert!(check_text("two\nlines", 10).is_ok());
        assert_eq!(
            check_text("x".repeat(11).as_str(), 10).unwrap_err().0,
            ErrorCode::TextTooLong
        );
        assert_eq!(check_text(" \n ", 10).unwrap_err().0, ErrorCode::EmptyText);
        assert_eq!(
            check_text("a\0b", 10).unwrap_err().0,
            ErrorCode::InvalidText
        );
        // CTCP never passes, not even an ACTION (that is `/me`); IRC
        // formatting codes do.
        for ctcp in [
            "\x01VERSION\x01",
            "hi \x01DCC SEND x 1 2 3\x01",
            "\x01ACTION waves\x01",
        ] {
            assert_eq!(check_text(ctcp, 100).unwrap_err().0, ErrorCode::InvalidText);
            assert_eq!(
                check_line(ctcp, 100, "topic").unwrap_err().0,
                ErrorCode::InvalidText
            );
        }
        assert!(
            check_text(
                "\x02bold\x02 \x0304red\x03 \x1ditalic\x1d\x0f \x16\x1f",
                100
            )
            .is_ok()
        );
        // The limit counts UTF-8 bytes: 4 × 3 bytes > 10.
        assert_eq!(
            check_text("€€€€", 10).unwrap_err().0,
            ErrorCode::TextTooLong
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_request(&bytes);
        }

        /// Real requests with one byte changed reach past the JSON syntax
        /// into the field checks: a request or a precise error, never a
        /// panic, and an error keeps the `ref` when it can be read.
        #[test]
        fn damaged_requests_parse_or_fail_cleanly(
            pick in 0usize..12,
            at in any::<proptest::sample::Index>(),
            byte in any::<u8>(),
        ) {
            const FRAMES: [&str; 12] = [
                r#"{"type":"hello","nick":"alice","ref":1}"#,
                r#"{"type":"hello","nick":"alice","password":"secret-pw","ref":"a"}"#,
                r#"{"type":"join","room":"lobby","ref":2}"#,
                r#"{"type":"part","room":"lobby"}"#,
                r#"{"type":"say","room":"lobby","text":"hi é "q"","ref":3}"#,
                r#"{"type":"whisper","to":"bob","text":"psst"}"#,
                r#"{"type":"history","room":"lobby","before":17,"limit":50}"#,
                r#"{"type":"nick","nick":"alice2"}"#,
                r#"{"type":"topic","room":"lobby","text":"news"}"#,
                r#"{"type":"kick","room":"lobby","nick":"eve","reason":"spam"}"#,
                r#"{"type":"register","nick":"alice","password":"long enough"}"#,
                r#"{"type":"ping","ref":"p"}"#,
            ];
            let mut frame = FRAMES[pick].as_bytes().to_vec();
            let i = at.index(frame.len());
            frame[i] = byte;
            if let Err(e) = parse_request(&frame) {
                prop_assert!(!e.message.is_empty());
            }
        }

        #[test]
        fn say_round_trips(text in "\\PC{1,100}", r in proptest::option::of(any::<i64>())) {
            let env = Envelope::with_ref(ClientMessage::Say { reply_to: None, room: room("lobby"), text, notice: false }, r.map(Ref::Int));
            let json = serde_json::to_vec(&env).unwrap();
            prop_assert_eq!(parse_request(&json).unwrap(), env);
        }
    }
}

#[cfg(test)]
mod mention_tests {
    use super::mentions;

    #[test]
    fn a_mention_is_the_nick_or_a_highlight_as_a_word() {
        let none: &[String] = &[];
        assert!(mentions("hey Alice, lunch?", "alice", none));
        assert!(mentions("ALICE: ping", "alice", none));
        assert!(mentions("@alice", "alice", none));
        assert!(mentions("thanks alice!", "alice", none));
        assert!(!mentions("malice aforethought", "alice", none));
        assert!(!mentions("alice_ is away", "alice", none));
        assert!(!mentions("alices", "alice", none));
        assert!(mentions("see alice_ and alice", "alice", none));
        let words = vec!["deploy".to_string(), "Café".to_string()];
        assert!(mentions("the DEPLOY failed", "bob", &words));
        assert!(!mentions("redeploying", "bob", &words));
        assert!(mentions("at the café.", "bob", &words));
        assert!(!mentions("", "bob", &words));
    }
}
