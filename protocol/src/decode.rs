//! [`ServerMessage`]'s `Deserialize`: the frame is read once into one flat
//! struct of optional fields, then checked against its `type`.
//!
//! serde's derive for an internally tagged enum buffers every frame into
//! its generic `Content` tree and generates a second deserializer per
//! variant over that tree; in the web client that was one sixth of the
//! wasm. This reads straight from the input, with the same result for
//! every frame the server sends (the round-trip tests below cover each
//! type). One difference: a field of the wrong JSON type is an error even
//! when the frame's `type` does not use it.

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

#[cfg(not(target_arch = "wasm32"))]
use crate::TargetInfo;
use crate::{
    Access, BanInfo, ChatMessage, DirectMessage, Envelope, ErrorCode, Limits, ModeChange, Nick,
    PresenceEvent, Reaction, ReadMark, ReadPosition, Ref, RoomInfo, RoomModes, RoomName, ServerBan,
    ServerMessage, Topic, TypingState, UserInfo,
};

/// The `type` of a server frame.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Welcome,
    Joined,
    Parted,
    Message,
    Direct,
    Presence,
    History,
    Nick,
    Ping,
    Pong,
    Topic,
    Members,
    Rooms,
    Whois,
    Users,
    Away,
    LoggedIn,
    Registered,
    LoggedOut,
    PasswordChanged,
    AccountDeleted,
    Killed,
    Klined,
    Klines,
    Kicked,
    Banned,
    Bans,
    Roles,
    Modes,
    Invited,
    Invite,
    Voiced,
    Targets,
    Settings,
    // Not read by the web client, whose build does not know them (a
    // frame of an unknown type is skipped).
    Profile,
    #[cfg(not(target_arch = "wasm32"))]
    Account,
    #[cfg(not(target_arch = "wasm32"))]
    Watched,
    Read,
    ReadPositions,
    Reaction,
    Edited,
    Deleted,
    Typing,
    #[cfg(not(target_arch = "wasm32"))]
    SearchResults,
    NotifyLevel,
    NotifyLevels,
    Highlights,
    PushSubscribed,
    PushUnsubscribed,
    Lagged,
    Error,
    Closing,
}

/// Every field any server frame has. Two names carry different JSON in
/// different types (`rooms`, `away`); they get a type that takes either.
#[derive(Deserialize)]
struct Flat {
    #[serde(rename = "type")]
    kind: Option<Kind>,
    #[serde(rename = "ref")]
    reference: Option<Ref>,
    nick: Option<Nick>,
    protocol: Option<u32>,
    server: Option<String>,
    limits: Option<Limits>,
    room: Option<RoomName>,
    members: Option<Vec<Nick>>,
    history: Option<Vec<ChatMessage>>,
    topic: Option<Topic>,
    id: Option<u64>,
    from: Option<Nick>,
    to: Option<Nick>,
    text: Option<String>,
    ts: Option<u64>,
    event: Option<PresenceEvent>,
    new_nick: Option<Nick>,
    /// The web client (wasm) reads only rooms' history.
    #[cfg(target_arch = "wasm32")]
    messages: Option<Vec<ChatMessage>>,
    /// A room's messages, or a direct conversation's (with `with`).
    #[cfg(not(target_arch = "wasm32"))]
    messages: Option<Vec<Entry>>,
    with: Option<Nick>,
    #[cfg(not(target_arch = "wasm32"))]
    targets: Option<Vec<TargetInfo>>,
    #[cfg(not(target_arch = "wasm32"))]
    always_on: Option<bool>,
    realname: Option<String>,
    #[cfg(not(target_arch = "wasm32"))]
    username: Option<String>,
    bot: Option<bool>,
    bots: Option<Vec<Nick>>,
    #[cfg(not(target_arch = "wasm32"))]
    oper: Option<bool>,
    #[cfg(not(target_arch = "wasm32"))]
    secret: Option<bool>,
    #[cfg(not(target_arch = "wasm32"))]
    prefixes: Option<Vec<String>>,
    #[cfg(not(target_arch = "wasm32"))]
    created: Option<u64>,
    #[cfg(not(target_arch = "wasm32"))]
    online: Option<Vec<Nick>>,
    #[cfg(not(target_arch = "wasm32"))]
    offline: Option<Vec<Nick>>,
    read: Option<ReadMark>,
    positions: Option<Vec<ReadPosition>>,
    old: Option<Nick>,
    away: Option<Away>,
    rooms: Option<Rooms>,
    idle_secs: Option<u64>,
    since: Option<u64>,
    message: Option<String>,
    account: Option<Nick>,
    token: Option<String>,
    admin: Option<bool>,
    revoked: Option<u64>,
    by: Option<Nick>,
    reason: Option<String>,
    ban: Option<BanInfo>,
    set: Option<bool>,
    bans: Option<Vec<BanInfo>>,
    kline: Option<ServerBan>,
    klines: Option<Vec<ServerBan>>,
    owner: Option<Nick>,
    ops: Option<Vec<Nick>>,
    moderators: Option<Vec<Nick>>,
    dropped: Option<u64>,
    code: Option<ErrorCode>,
    notice: Option<bool>,
    users: Option<Vec<UserInfo>>,
    modes: Option<RoomModes>,
    /// Not read in the web client (wasm), which tells a change by
    /// comparing the room's modes before and after: a second reader
    /// would cost its download budget. Its `modes` carry no `change`.
    #[cfg(not(target_arch = "wasm32"))]
    change: Option<ModeChange>,
    /// Not read in the web client (wasm): it asks for bans only.
    #[cfg(not(target_arch = "wasm32"))]
    list: Option<crate::BanList>,
    voiced: Option<Vec<Nick>>,
    reply_to: Option<u64>,
    edited: Option<u64>,
    deleted: Option<bool>,
    reactions: Option<Vec<Reaction>>,
    reaction: Option<String>,
    remove: Option<bool>,
    state: Option<TypingState>,
    level: Option<crate::NotifyLevel>,
    levels: Option<Vec<crate::LevelOf>>,
    words: Option<Vec<String>>,
    vapid_public_key: Option<String>,
    endpoint: Option<String>,
}

/// One of `history`'s `messages`: a room's (with `room`) or a direct
/// conversation's (with `to`).
#[cfg(not(target_arch = "wasm32"))]
#[derive(Deserialize)]
struct Entry {
    room: Option<RoomName>,
    to: Option<Nick>,
    /// A search result's other side.
    with: Option<Nick>,
    id: u64,
    from: Nick,
    text: String,
    ts: u64,
    account: Option<Nick>,
    #[serde(default)]
    notice: bool,
    reply_to: Option<u64>,
    edited: Option<u64>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    reactions: Vec<Reaction>,
}

/// `history`: a room's page, or (`with`) a direct conversation's.
#[cfg(not(target_arch = "wasm32"))]
fn history<E: de::Error>(
    room: Option<RoomName>,
    with: Option<Nick>,
    messages: Option<Vec<Entry>>,
) -> Result<ServerMessage, E> {
    let messages = need(messages, "messages")?.into_iter();
    Ok(match with {
        Some(with) => ServerMessage::DirectHistory {
            with,
            messages: messages
                .map(|e| {
                    Ok(DirectMessage {
                        id: e.id,
                        from: e.from,
                        to: need(e.to, "to")?,
                        text: e.text,
                        ts: e.ts,
                        account: e.account,
                        notice: e.notice,
                        reply_to: e.reply_to,
                        edited: e.edited,
                        deleted: e.deleted,
                        reactions: e.reactions,
                    })
                })
                .collect::<Result<_, E>>()?,
        },
        None => ServerMessage::History {
            room: need(room, "room")?,
            messages: messages
                .map(|e| {
                    Ok(ChatMessage {
                        room: need(e.room, "room")?,
                        id: e.id,
                        from: e.from,
                        text: e.text,
                        ts: e.ts,
                        account: e.account,
                        notice: e.notice,
                        reply_to: e.reply_to,
                        edited: e.edited,
                        deleted: e.deleted,
                        reactions: e.reactions,
                    })
                })
                .collect::<Result<_, E>>()?,
        },
    })
}

/// `away`: the away nicks of `members`, or the reason of `whois`.
enum Away {
    Nicks(Vec<Nick>),
    Reason(String),
}

/// `rooms`: the listing of `rooms`, or the names of `whois`.
enum Rooms {
    Infos(Vec<RoomInfo>),
    Names(Vec<RoomName>),
}

impl<'de> Deserialize<'de> for Away {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Away;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of nicks or an away message")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Away, E> {
                Ok(Away::Reason(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Away, A::Error> {
                let mut nicks = Vec::new();
                while let Some(nick) = seq.next_element()? {
                    nicks.push(nick);
                }
                Ok(Away::Nicks(nicks))
            }
        }
        d.deserialize_any(V)
    }
}

/// One element of `rooms`: an object (a listing line) or a name.
enum RoomEntry {
    Info(RoomInfo),
    Name(RoomName),
}

impl<'de> Deserialize<'de> for RoomEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RoomEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a room name or a room listing")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RoomEntry, E> {
                RoomName::new(s).map(RoomEntry::Name).map_err(E::custom)
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RoomEntry, A::Error> {
                RoomInfo::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RoomEntry::Info)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Rooms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<RoomEntry>::deserialize(d)?;
        let mut infos = Vec::new();
        let mut names = Vec::new();
        for entry in entries {
            match entry {
                RoomEntry::Info(info) => infos.push(info),
                RoomEntry::Name(name) => names.push(name),
            }
        }
        match (infos.is_empty(), names.is_empty()) {
            (_, true) => Ok(Rooms::Infos(infos)),
            (true, false) => Ok(Rooms::Names(names)),
            (false, false) => Err(de::Error::custom(
                "`rooms` mixes room names and room listings",
            )),
        }
    }
}

/// A required field, or serde's "missing field" error.
fn need<T, E: de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

fn wrong<E: de::Error>(field: &'static str, want: &str) -> E {
    E::custom(format_args!("invalid type for `{field}`: expected {want}"))
}

impl Flat {
    /// `modes` (none: the default) and `change`, taken out; no `change`
    /// in the web client.
    fn take_modes(&mut self) -> (RoomModes, Option<ModeChange>) {
        let modes = self.modes.take().unwrap_or_default();
        #[cfg(not(target_arch = "wasm32"))]
        return (modes, self.change.take());
        #[cfg(target_arch = "wasm32")]
        (modes, None)
    }

    fn into_message<E: de::Error>(mut self) -> Result<ServerMessage, E> {
        let (modes, change) = self.take_modes();
        let f = self;
        use ServerMessage as M;
        Ok(match need(f.kind, "type")? {
            Kind::Welcome => M::Welcome {
                nick: need(f.nick, "nick")?,
                protocol: need(f.protocol, "protocol")?,
                server: need(f.server, "server")?,
                limits: need(f.limits, "limits")?,
                vapid_public_key: f.vapid_public_key,
            },
            Kind::Joined => M::Joined {
                room: need(f.room, "room")?,
                members: need(f.members, "members")?,
                history: need(f.history, "history")?,
                topic: f.topic,
                moderators: f.moderators.unwrap_or_default(),
                access: Access::boxed(
                    modes,
                    f.voiced.unwrap_or_default(),
                    f.read,
                    f.bots.unwrap_or_default(),
                ),
            },
            Kind::Parted => M::Parted {
                room: need(f.room, "room")?,
                reason: f.reason,
            },
            Kind::Message => M::Message(ChatMessage {
                room: need(f.room, "room")?,
                id: need(f.id, "id")?,
                from: need(f.from, "from")?,
                text: need(f.text, "text")?,
                ts: need(f.ts, "ts")?,
                account: f.account,
                notice: f.notice.unwrap_or(false),
                reply_to: f.reply_to,
                edited: f.edited,
                deleted: f.deleted.unwrap_or(false),
                reactions: f.reactions.unwrap_or_default(),
            }),
            Kind::Direct => M::Direct(DirectMessage {
                id: need(f.id, "id")?,
                from: need(f.from, "from")?,
                to: need(f.to, "to")?,
                text: need(f.text, "text")?,
                ts: need(f.ts, "ts")?,
                account: f.account,
                notice: f.notice.unwrap_or(false),
                reply_to: f.reply_to,
                edited: f.edited,
                deleted: f.deleted.unwrap_or(false),
                reactions: f.reactions.unwrap_or_default(),
            }),
            Kind::Presence => M::Presence {
                room: need(f.room, "room")?,
                nick: need(f.nick, "nick")?,
                event: need(f.event, "event")?,
                new_nick: f.new_nick,
                reason: f.reason,
                account: f.account,
                #[cfg(not(target_arch = "wasm32"))]
                realname: f.realname,
                bot: f.bot.unwrap_or(false),
            },
            #[cfg(not(target_arch = "wasm32"))]
            Kind::History => history(f.room, f.with, f.messages)?,
            #[cfg(target_arch = "wasm32")]
            Kind::History => M::History {
                room: need(f.room, "room")?,
                messages: need(f.messages, "messages")?,
            },
            #[cfg(not(target_arch = "wasm32"))]
            Kind::Targets => M::Targets {
                targets: need(f.targets, "targets")?,
            },
            // The web client never asks for these (one short message for
            // both: its text is part of the download).
            #[cfg(target_arch = "wasm32")]
            Kind::Targets | Kind::Settings => {
                return Err(E::custom("not read by the web client"));
            }
            #[cfg(not(target_arch = "wasm32"))]
            Kind::Watched => M::Watched {
                online: f.online.unwrap_or_default(),
                offline: f.offline.unwrap_or_default(),
            },
            #[cfg(not(target_arch = "wasm32"))]
            Kind::Account => M::Account {
                nick: need(f.nick, "nick")?,
                account: f.account,
            },
            Kind::Profile => M::Profile {
                nick: need(f.nick, "nick")?,
                realname: f.realname,
                bot: f.bot.unwrap_or(false),
            },
            #[cfg(not(target_arch = "wasm32"))]
            Kind::Settings => M::Settings {
                always_on: need(f.always_on, "always_on")?,
            },

            Kind::Read => M::Read(ReadPosition {
                room: f.room,
                with: f.with,
                id: need(f.id, "id")?,
                ts: need(f.ts, "ts")?,
            }),
            Kind::ReadPositions => M::ReadPositions {
                positions: need(f.positions, "positions")?,
            },
            Kind::Nick => M::Nick {
                nick: need(f.nick, "nick")?,
                old: need(f.old, "old")?,
            },
            Kind::Ping => M::Ping,
            Kind::Pong => M::Pong,
            Kind::Topic => M::Topic {
                room: need(f.room, "room")?,
                topic: f.topic,
            },
            Kind::Members => M::Members {
                room: need(f.room, "room")?,
                members: need(f.members, "members")?,
                away: match need(f.away, "away")? {
                    Away::Nicks(nicks) => nicks,
                    Away::Reason(_) => return Err(wrong("away", "a list of nicks")),
                },
                moderators: f.moderators.unwrap_or_default(),
                voiced: f.voiced.unwrap_or_default(),
                // The web client shows no profiles.
                #[cfg(not(target_arch = "wasm32"))]
                users: f.users.unwrap_or_default(),
                #[cfg(not(target_arch = "wasm32"))]
                secret: f.secret.unwrap_or(false),
            },
            Kind::Rooms => M::Rooms {
                rooms: match need(f.rooms, "rooms")? {
                    Rooms::Infos(infos) => infos,
                    Rooms::Names(_) => return Err(wrong("rooms", "room listings")),
                },
            },
            Kind::Whois => M::Whois {
                nick: need(f.nick, "nick")?,
                rooms: match need(f.rooms, "rooms")? {
                    Rooms::Names(names) => names,
                    Rooms::Infos(infos) if infos.is_empty() => Vec::new(),
                    Rooms::Infos(_) => return Err(wrong("rooms", "room names")),
                },
                away: match f.away {
                    None => None,
                    Some(Away::Reason(reason)) => Some(reason),
                    Some(Away::Nicks(_)) => return Err(wrong("away", "an away message")),
                },
                idle_secs: need(f.idle_secs, "idle_secs")?,
                since: need(f.since, "since")?,
                account: f.account,
                realname: f.realname,
                #[cfg(not(target_arch = "wasm32"))]
                username: f.username,
                bot: f.bot.unwrap_or(false),
                #[cfg(not(target_arch = "wasm32"))]
                oper: f.oper.unwrap_or(false),
                #[cfg(not(target_arch = "wasm32"))]
                prefixes: f.prefixes.unwrap_or_default(),
            },
            Kind::Users => M::Users {
                users: need(f.users, "users")?,
            },
            Kind::Away => M::Away {
                nick: need(f.nick, "nick")?,
                message: f.message,
            },
            Kind::LoggedIn => M::LoggedIn {
                account: need(f.account, "account")?,
                token: f.token,
                admin: f.admin.unwrap_or(false),
            },
            Kind::Registered => M::Registered {
                nick: need(f.nick, "nick")?,
            },
            Kind::LoggedOut => M::LoggedOut {
                revoked: need(f.revoked, "revoked")?,
            },
            Kind::PasswordChanged => M::PasswordChanged {
                token: need(f.token, "token")?,
            },
            Kind::AccountDeleted => M::AccountDeleted {
                account: need(f.account, "account")?,
            },
            Kind::Killed => M::Killed {
                nick: need(f.nick, "nick")?,
            },
            Kind::Klined => M::Klined {
                kline: need(f.kline, "kline")?,
                set: need(f.set, "set")?,
            },
            Kind::Klines => M::Klines {
                klines: need(f.klines, "klines")?,
            },
            Kind::Kicked => M::Kicked {
                room: need(f.room, "room")?,
                nick: need(f.nick, "nick")?,
                by: need(f.by, "by")?,
                reason: f.reason,
            },
            Kind::Banned => M::Banned {
                room: need(f.room, "room")?,
                ban: need(f.ban, "ban")?,
                set: need(f.set, "set")?,
            },
            Kind::Bans => M::Bans {
                room: need(f.room, "room")?,
                bans: need(f.bans, "bans")?,
                #[cfg(not(target_arch = "wasm32"))]
                list: f.list.unwrap_or_default(),
            },
            Kind::Roles => M::Roles {
                room: need(f.room, "room")?,
                owner: f.owner,
                ops: need(f.ops, "ops")?,
                moderators: f.moderators.unwrap_or_default(),
            },
            Kind::Modes => M::Modes {
                room: need(f.room, "room")?,
                modes,
                by: f.by,
                change,
                #[cfg(not(target_arch = "wasm32"))]
                created: f.created,
            },
            Kind::Invited => M::Invited {
                room: need(f.room, "room")?,
                nick: need(f.nick, "nick")?,
                by: need(f.by, "by")?,
            },
            Kind::Invite => M::Invite {
                room: need(f.room, "room")?,
                from: need(f.from, "from")?,
            },
            Kind::Voiced => M::Voiced {
                room: need(f.room, "room")?,
                nick: need(f.nick, "nick")?,
                by: need(f.by, "by")?,
                set: need(f.set, "set")?,
            },
            Kind::Reaction => M::Reaction {
                room: f.room,
                with: f.with,
                id: need(f.id, "id")?,
                reaction: need(f.reaction, "reaction")?,
                nick: need(f.nick, "nick")?,
                account: f.account,
                remove: f.remove.unwrap_or(false),
            },
            Kind::Edited => M::Edited {
                room: f.room,
                with: f.with,
                id: need(f.id, "id")?,
                text: need(f.text, "text")?,
                nick: need(f.nick, "nick")?,
                ts: need(f.ts, "ts")?,
            },
            Kind::Deleted => M::Deleted {
                room: f.room,
                with: f.with,
                id: need(f.id, "id")?,
                nick: need(f.nick, "nick")?,
                reason: f.reason,
            },
            Kind::Typing => M::Typing {
                room: f.room,
                with: f.with,
                nick: need(f.nick, "nick")?,
                state: need(f.state, "state")?,
            },
            #[cfg(not(target_arch = "wasm32"))]
            Kind::SearchResults => M::SearchResults {
                messages: need(f.messages, "messages")?
                    .into_iter()
                    .map(|e| crate::Found {
                        room: e.room,
                        with: e.with,
                        id: e.id,
                        from: e.from,
                        to: e.to,
                        text: e.text,
                        ts: e.ts,
                        account: e.account,
                        reply_to: e.reply_to,
                        edited: e.edited,
                    })
                    .collect(),
            },
            Kind::NotifyLevel => M::NotifyLevel(crate::LevelOf {
                room: f.room,
                with: f.with,
                level: need(f.level, "level")?,
            }),
            Kind::NotifyLevels => M::NotifyLevels {
                levels: need(f.levels, "levels")?,
            },
            Kind::Highlights => M::Highlights {
                words: need(f.words, "words")?,
            },
            Kind::PushSubscribed => M::PushSubscribed {
                endpoint: need(f.endpoint, "endpoint")?,
            },
            Kind::PushUnsubscribed => M::PushUnsubscribed {
                endpoint: need(f.endpoint, "endpoint")?,
            },
            Kind::Lagged => M::Lagged {
                dropped: need(f.dropped, "dropped")?,
            },
            Kind::Error => M::Error {
                code: need(f.code, "code")?,
                message: need(f.message, "message")?,
            },
            Kind::Closing => M::Closing {
                code: need(f.code, "code")?,
                message: need(f.message, "message")?,
            },
        })
    }
}

impl<'de> Deserialize<'de> for ServerMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Flat::deserialize(d)?.into_message()
    }
}

/// A server frame with its `ref`, read in one pass (the derived
/// `Envelope` deserializer would buffer the frame to split it).
pub fn decode_server_frame(text: &str) -> serde_json::Result<Envelope<ServerMessage>> {
    let mut flat: Flat = serde_json::from_str(text)?;
    let reference = flat.reference.take();
    Ok(Envelope::with_ref(flat.into_message()?, reference))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    fn every_type() -> Vec<ServerMessage> {
        use ServerMessage as M;
        let chat = ChatMessage {
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
            room: room("lobby"),
            id: 7,
            from: nick("alice"),
            text: "hi \"there\"".into(),
            ts: 1_763_823_600_123,
            account: None,
            notice: false,
        };
        let topic = Topic {
            text: "t".into(),
            by: nick("bob"),
            ts: 3,
        };
        let ban = BanInfo {
            nick: None,
            account: None,
            mask: Some("eve*!*@*".into()),
            by: nick("alice"),
            ts: 9,
            list: crate::BanList::Ban,
        };
        vec![
            M::Welcome {
                vapid_public_key: None,
                nick: nick("alice"),
                protocol: 1,
                server: "banter".into(),
                limits: Limits {
                    max_text_bytes: 4096,
                    max_frame_bytes: 16384,
                    max_rooms: 50,
                    idle_timeout_secs: 60,
                    max_lines: 100,
                    edit_window_secs: 86_400,
                },
            },
            M::Joined {
                room: room("lobby"),
                members: vec![nick("alice"), nick("bob")],
                history: vec![chat.clone()],
                topic: Some(topic.clone()),
                moderators: vec![nick("alice")],
                access: Access::boxed(
                    RoomModes {
                        invite_only: true,
                        key: Some("k".into()),
                        limit: Some(9),
                        moderated: true,
                        secret: true,
                        registered_only: true,
                    },
                    vec![nick("bob")],
                    None,
                    vec![nick("bob")],
                ),
            },
            M::Joined {
                room: room("lobby"),
                members: vec![],
                history: vec![],
                topic: None,
                moderators: vec![],
                access: None,
            },
            M::Joined {
                room: room("lobby"),
                members: vec![nick("bob")],
                history: vec![],
                topic: None,
                moderators: vec![],
                access: Access::boxed(
                    RoomModes::default(),
                    vec![nick("bob")],
                    Some(ReadMark { id: 4, ts: 40 }),
                    vec![],
                ),
            },
            M::Parted {
                room: room("x"),
                reason: None,
            },
            M::Parted {
                room: room("x"),
                reason: Some("lunch".into()),
            },
            M::Message(chat.clone()),
            M::Message(ChatMessage {
                account: Some(nick("alice")),
                notice: true,
                ..chat.clone()
            }),
            M::Direct(DirectMessage {
                reply_to: None,
                edited: None,
                deleted: false,
                reactions: Vec::new(),
                id: 5,
                from: nick("alice"),
                to: nick("bob"),
                text: "psst".into(),
                ts: 4,
                account: None,
                notice: false,
            }),
            M::Direct(DirectMessage {
                reply_to: None,
                edited: None,
                deleted: false,
                reactions: Vec::new(),
                id: 6,
                from: nick("alice"),
                to: nick("bob"),
                text: "fyi".into(),
                ts: 5,
                account: Some(nick("alice")),
                notice: true,
            }),
            M::Presence {
                room: room("lobby"),
                nick: nick("bob"),
                event: PresenceEvent::Nick,
                new_nick: Some(nick("bobby")),
                reason: None,
                account: Some(nick("bob")),
                realname: None,
                bot: false,
            },
            M::Presence {
                room: room("lobby"),
                nick: nick("bob"),
                event: PresenceEvent::Quit,
                new_nick: None,
                reason: Some("bye".into()),
                account: None,
                realname: None,
                bot: false,
            },
            M::Presence {
                room: room("lobby"),
                nick: nick("bob"),
                event: PresenceEvent::Join,
                new_nick: None,
                reason: None,
                account: None,
                realname: Some("Bob B.".into()),
                bot: false,
            },
            M::History {
                room: room("lobby"),
                messages: vec![chat.clone(), chat.clone()],
            },
            M::DirectHistory {
                with: nick("bob"),
                messages: vec![DirectMessage {
                    reply_to: None,
                    edited: None,
                    deleted: false,
                    reactions: Vec::new(),
                    id: 5,
                    from: nick("alice"),
                    to: nick("bob"),
                    text: "psst".into(),
                    ts: 4,
                    account: Some(nick("alice")),
                    notice: false,
                }],
            },
            M::Read(ReadPosition {
                room: Some(room("lobby")),
                with: None,
                id: 7,
                ts: 70,
            }),
            M::Settings { always_on: false },
            M::ReadPositions {
                positions: vec![
                    ReadPosition {
                        room: None,
                        with: Some(nick("bob")),
                        id: 3,
                        ts: 30,
                    },
                    ReadPosition {
                        room: Some(room("lobby")),
                        with: None,
                        id: 0,
                        ts: 0,
                    },
                ],
            },
            M::Targets {
                targets: vec![
                    TargetInfo {
                        room: Some(room("lobby")),
                        with: None,
                        ts: 5,
                    },
                    TargetInfo {
                        room: None,
                        with: Some(nick("bob")),
                        ts: 9,
                    },
                ],
            },
            M::Nick {
                nick: nick("b"),
                old: nick("a"),
            },
            M::Ping,
            M::Pong,
            M::Topic {
                room: room("lobby"),
                topic: Some(topic),
            },
            M::Topic {
                room: room("lobby"),
                topic: None,
            },
            M::Members {
                room: room("lobby"),
                members: vec![nick("a"), nick("b")],
                away: vec![nick("b")],
                moderators: vec![nick("a")],
                voiced: vec![nick("b")],
                users: vec![
                    UserInfo {
                        nick: nick("a"),
                        away: None,
                        account: Some(nick("a")),
                        realname: Some("Ann".into()),
                        username: Some("ann".into()),
                        bot: false,
                        oper: false,
                    },
                    UserInfo {
                        nick: nick("b"),
                        away: Some("gone".into()),
                        account: None,
                        realname: None,
                        username: None,
                        bot: true,
                        oper: false,
                    },
                ],
                secret: false,
            },
            M::Members {
                room: room("lobby"),
                members: vec![nick("a")],
                away: vec![],
                moderators: vec![],
                voiced: vec![],
                users: vec![],
                secret: false,
            },
            M::Rooms {
                rooms: vec![RoomInfo {
                    room: room("lobby"),
                    members: 2,
                    topic: Some("t".into()),
                }],
            },
            M::Rooms { rooms: vec![] },
            M::Whois {
                nick: nick("a"),
                rooms: vec![room("lobby"), room("dev")],
                away: Some("lunch".into()),
                idle_secs: 3,
                since: 4,
                account: Some(nick("a")),
                realname: Some("Ann A.".into()),
                username: Some("ann".into()),
                bot: true,
                oper: false,
                prefixes: vec![],
            },
            M::Whois {
                nick: nick("a"),
                rooms: vec![],
                away: None,
                idle_secs: 0,
                since: 0,
                account: None,
                realname: None,
                username: None,
                bot: false,
                oper: false,
                prefixes: vec![],
            },
            M::Users {
                users: vec![
                    UserInfo {
                        nick: nick("a"),
                        away: Some("lunch".into()),
                        account: Some(nick("a")),
                        realname: Some("Ann".into()),
                        username: None,
                        bot: true,
                        oper: false,
                    },
                    UserInfo {
                        nick: nick("b"),
                        away: None,
                        account: None,
                        realname: None,
                        username: None,
                        bot: false,
                        oper: false,
                    },
                ],
            },
            M::Users { users: vec![] },
            M::Profile {
                nick: nick("a"),
                realname: Some("Ann".into()),
                bot: true,
            },
            M::Profile {
                nick: nick("a"),
                realname: None,
                bot: false,
            },
            M::Account {
                nick: nick("a"),
                account: Some(nick("a")),
            },
            M::Account {
                nick: nick("a"),
                account: None,
            },
            M::Watched {
                online: vec![nick("a")],
                offline: vec![nick("b"), nick("c")],
            },
            M::Watched {
                online: vec![],
                offline: vec![],
            },
            M::Away {
                nick: nick("a"),
                message: Some("brb".into()),
            },
            M::Away {
                nick: nick("a"),
                message: None,
            },
            M::LoggedIn {
                account: nick("a"),
                token: Some("tok".into()),
                admin: false,
            },
            M::LoggedIn {
                account: nick("a"),
                token: None,
                admin: true,
            },
            M::Registered { nick: nick("a") },
            M::LoggedOut { revoked: 2 },
            M::PasswordChanged {
                token: "fresh".into(),
            },
            M::AccountDeleted { account: nick("a") },
            M::Killed { nick: nick("eve") },
            M::Klined {
                kline: ServerBan {
                    address: Some("192.0.2.0/24".into()),
                    account: None,
                    reason: "spam".into(),
                    by: nick("root"),
                    ts: 5,
                    expires: Some(9),
                },
                set: true,
            },
            M::Klines {
                klines: vec![ServerBan {
                    address: None,
                    account: Some(nick("eve")),
                    reason: "spam".into(),
                    by: nick("root"),
                    ts: 5,
                    expires: None,
                }],
            },
            M::Kicked {
                room: room("lobby"),
                nick: nick("eve"),
                by: nick("alice"),
                reason: Some("spam".into()),
            },
            M::Banned {
                room: room("lobby"),
                ban: ban.clone(),
                set: true,
            },
            M::Bans {
                room: room("lobby"),
                bans: vec![ban.clone()],
                list: crate::BanList::Ban,
            },
            M::Bans {
                room: room("lobby"),
                bans: vec![BanInfo {
                    list: crate::BanList::InviteException,
                    ..ban
                }],
                list: crate::BanList::InviteException,
            },
            M::Roles {
                room: room("lobby"),
                owner: Some(nick("alice")),
                ops: vec![nick("bob")],
                moderators: vec![nick("al")],
            },
            M::Roles {
                room: room("lobby"),
                owner: None,
                ops: vec![],
                moderators: vec![],
            },
            M::Modes {
                room: room("den"),
                modes: RoomModes {
                    invite_only: true,
                    ..RoomModes::default()
                },
                by: Some(nick("alice")),
                change: Some(ModeChange {
                    invite_only: Some(true),
                    key: Some(String::new()),
                    limit: Some(0),
                    ..ModeChange::default()
                }),
                created: None,
            },
            M::Modes {
                room: room("den"),
                modes: RoomModes::default(),
                by: None,
                change: None,
                created: Some(1_700_000_000_000),
            },
            M::Invited {
                room: room("den"),
                nick: nick("bob"),
                by: nick("alice"),
            },
            M::Invite {
                room: room("den"),
                from: nick("alice"),
            },
            M::Voiced {
                room: room("den"),
                nick: nick("bob"),
                by: nick("alice"),
                set: false,
            },
            M::Message(ChatMessage {
                reply_to: Some(3),
                edited: Some(9),
                reactions: vec![Reaction {
                    reaction: "👍".into(),
                    nicks: vec![nick("bob"), nick("carol")],
                }],
                ..chat.clone()
            }),
            M::Message(ChatMessage {
                deleted: true,
                text: String::new(),
                ..chat
            }),
            M::Reaction {
                room: Some(room("den")),
                with: None,
                id: 7,
                reaction: "🎉".into(),
                nick: nick("bob"),
                account: Some(nick("bob")),
                remove: true,
            },
            M::Edited {
                room: None,
                with: Some(nick("bob")),
                id: 7,
                text: "fixed".into(),
                nick: nick("alice"),
                ts: 11,
            },
            M::Deleted {
                room: Some(room("den")),
                with: None,
                id: 7,
                nick: nick("alice"),
                reason: Some("oops".into()),
            },
            M::Typing {
                room: None,
                with: Some(nick("bob")),
                nick: nick("bob"),
                state: TypingState::Paused,
            },
            M::SearchResults {
                messages: vec![
                    crate::Found {
                        room: Some(room("den")),
                        with: None,
                        id: 7,
                        from: nick("alice"),
                        to: None,
                        text: "the plan".into(),
                        ts: 5,
                        account: Some(nick("alice")),
                        reply_to: Some(3),
                        edited: None,
                    },
                    crate::Found {
                        room: None,
                        with: Some(nick("bob")),
                        id: 9,
                        from: nick("bob"),
                        to: Some(nick("alice")),
                        text: "the plan?".into(),
                        ts: 6,
                        account: Some(nick("bob")),
                        reply_to: None,
                        edited: Some(8),
                    },
                ],
            },
            M::NotifyLevel(crate::LevelOf {
                room: Some(room("den")),
                with: None,
                level: crate::NotifyLevel::None,
            }),
            M::NotifyLevels {
                levels: vec![crate::LevelOf {
                    room: None,
                    with: Some(nick("bob")),
                    level: crate::NotifyLevel::All,
                }],
            },
            M::Highlights {
                words: vec!["deploy".into(), "oncall".into()],
            },
            M::PushSubscribed {
                endpoint: "https://push.example/a".into(),
            },
            M::PushUnsubscribed {
                endpoint: "https://push.example/a".into(),
            },
            M::Lagged { dropped: 12 },
            M::error(ErrorCode::NickTaken, "that nick is in use"),
            M::Closing {
                code: ErrorCode::NickTaken,
                message: "bye".into(),
            },
        ]
    }

    /// A number per variant, so a variant added to [`ServerMessage`] fails
    /// to compile here until it is also added to [`every_type`].
    fn variant(m: &ServerMessage) -> usize {
        use ServerMessage as M;
        match m {
            M::Welcome { .. } => 0,
            M::Joined { .. } => 1,
            M::Parted { .. } => 2,
            M::Message(_) => 3,
            M::Direct(_) => 4,
            M::Presence { .. } => 5,
            M::History { .. } => 6,
            M::Nick { .. } => 7,
            M::Ping => 8,
            M::Pong => 9,
            M::Topic { .. } => 10,
            M::Members { .. } => 11,
            M::Rooms { .. } => 12,
            M::Whois { .. } => 13,
            M::Users { .. } => 14,
            M::Away { .. } => 15,
            M::LoggedIn { .. } => 16,
            M::Registered { .. } => 17,
            M::LoggedOut { .. } => 18,
            M::PasswordChanged { .. } => 19,
            M::AccountDeleted { .. } => 20,
            M::Kicked { .. } => 21,
            M::Banned { .. } => 22,
            M::Bans { .. } => 23,
            M::Roles { .. } => 24,
            M::Lagged { .. } => 25,
            M::Error { .. } => 26,
            M::Closing { .. } => 27,
            M::Killed { .. } => 28,
            M::Klined { .. } => 29,
            M::Klines { .. } => 30,
            M::Modes { .. } => 31,
            M::Invited { .. } => 32,
            M::Invite { .. } => 33,
            M::Voiced { .. } => 34,
            M::DirectHistory { .. } => 35,
            M::Targets { .. } => 36,
            M::Read(_) => 37,
            M::ReadPositions { .. } => 38,
            M::Settings { .. } => 39,
            M::Profile { .. } => 40,
            M::Account { .. } => 41,
            M::Watched { .. } => 42,
            M::Reaction { .. } => 43,
            M::Edited { .. } => 44,
            M::Deleted { .. } => 45,
            M::Typing { .. } => 46,
            M::SearchResults { .. } => 47,
            M::NotifyLevel(_) => 48,
            M::NotifyLevels { .. } => 49,
            M::Highlights { .. } => 50,
            M::PushSubscribed { .. } => 51,
            M::PushUnsubscribed { .. } => 52,
        }
    }

    #[test]
    fn every_type_is_tested() {
        let mut seen = [false; 53];
        for message in every_type() {
            seen[variant(&message)] = true;
        }
        let missing: Vec<usize> = (0..seen.len()).filter(|&i| !seen[i]).collect();
        assert!(
            missing.is_empty(),
            "variants missing from every_type: {missing:?}"
        );
    }

    #[test]
    fn every_type_round_trips() {
        for message in every_type() {
            let text = serde_json::to_string(&message).unwrap();
            let back: ServerMessage = serde_json::from_str(&text).unwrap();
            assert_eq!(back, message, "{text}");
            let framed = decode_server_frame(&text).unwrap();
            assert_eq!(framed.body, message);
            assert_eq!(framed.reference, None);
        }
    }

    #[test]
    fn frame_keeps_its_ref() {
        let framed = decode_server_frame(r#"{"ref":"r1","type":"pong"}"#).unwrap();
        assert_eq!(framed.body, ServerMessage::Pong);
        assert_eq!(framed.reference, Some(Ref::Str("r1".into())));
        let framed = decode_server_frame(r#"{"type":"parted","room":"x","ref":3}"#).unwrap();
        assert_eq!(framed.reference, Some(Ref::Int(3)));
    }

    #[test]
    fn bad_frames_say_what_is_wrong() {
        let err = |text: &str| {
            serde_json::from_str::<ServerMessage>(text)
                .unwrap_err()
                .to_string()
        };
        assert!(err(r#"{"room":"x"}"#).contains("missing field `type`"));
        assert!(err(r#"{"type":"parted"}"#).contains("missing field `room`"));
        assert!(err(r#"{"type":"nope"}"#).contains("unknown variant `nope`"));
        assert!(err(r#"{"type":"parted","room":"Bad Room!"}"#).contains("room"));
        assert!(err(r#"{"type":"members","room":"x","members":[],"away":"brb"}"#).contains("away"));
        assert!(
            err(r#"{"type":"whois","nick":"a","rooms":[],"away":["a"],"idle_secs":0,"since":0}"#)
                .contains("away")
        );
        assert!(err(r#"{"type":"rooms","rooms":["lobby"]}"#).contains("rooms"));
        assert!(
            err(r#"{"type":"rooms","rooms":["lobby",{"room":"a","members":1}]}"#).contains("mixes")
        );
        assert!(err(r#"{"type":"pong","type":"ping"}"#).contains("duplicate field `type`"));
        assert!(err("\"pong\"").contains("invalid type"));
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_decodes_or_fails_cleanly(text in "\\PC{0,200}") {
            let _ = decode_server_frame(&text);
        }

        /// Valid frames with one byte changed: deep inside the decoder.
        #[test]
        fn damaged_frames_decode_or_fail_cleanly(
            pick in any::<prop::sample::Index>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let all = every_type();
            let mut text = serde_json::to_vec(pick.get(&all)).unwrap();
            let i = at.index(text.len());
            text[i] = byte;
            if let Ok(text) = std::str::from_utf8(&text)
                && let Ok(frame) = decode_server_frame(text)
            {
                // Whatever decoded encodes back to the same thing.
                let again = serde_json::to_string(&frame.body).unwrap();
                prop_assert_eq!(decode_server_frame(&again).unwrap().body, frame.body);
            }
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let m: ServerMessage =
            serde_json::from_str(r#"{"type":"parted","room":"x","later":{"a":[1,2]}}"#).unwrap();
        assert_eq!(
            m,
            ServerMessage::Parted {
                room: room("x"),
                reason: None
            }
        );
    }
}
