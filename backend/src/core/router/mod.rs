//! The router: rooms, members, presence and delivery.
//!
//! It is plain data behind one `std::sync::Mutex`: every operation locks,
//! updates, pushes frames into the affected members' [`Outbox`]es and
//! unlocks, without ever awaiting (pushing never blocks, see
//! [`crate::core::outbox`]). Delivering under the lock is what keeps a
//! room's messages in one order for everyone, and lets a reply (`joined`)
//! reach its session before any message that follows it. Sessions are
//! known by [`SessionId`] and an outbox; the router never learns which
//! transport a session uses.
//!
//! A change the router accepts (a message, a whisper, a room change) is an
//! [`Event`] handed to its [`Port`]; `apply` makes it take effect, the same
//! way whichever port gave it back. By concern:
//!
//! * `sessions` — connecting under a nick, logging in, away, nick changes,
//!   quitting;
//! * `rooms` — joining, leaving, loading rooms, topics;
//! * `chat` — messages, whispers, recent history;
//! * `moderation` — kicks, bans and their exceptions, operators;
//! * `modes` — a room's modes, invitations and voices;
//! * `queries` — members, rooms, whois, users;
//! * `apply` — how an event takes effect;
//! * `cluster` — the users of other nodes, and the broker's stream.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use banter_protocol::{
    Access, BanInfo, BanList, ChatMessage, DirectMessage, ErrorCode, MAX_AWAY_BYTES,
    MAX_HISTORY_PAGE, MAX_KEY_BYTES, MAX_READ_POSITIONS, MAX_REASON_BYTES, MAX_TOPIC_BYTES,
    MAX_USERS_QUERY, MAX_WATCHED, ModeChange, Nick, PresenceEvent, ReadMark, ReadPosition, Ref,
    RoomInfo, RoomModes, RoomName, ServerMessage, Topic, UserInfo, check_line, check_text,
};
use tracing::warn;

mod amend;
mod apply;
mod chat;
mod cluster;
mod devices;
mod moderation;
mod modes;
mod queries;
mod reads;
mod remote;
mod rooms;
mod sessions;
#[cfg(test)]
mod tests;
mod watches;

pub use amend::{Typed, amend_reactions, check_lines};
use apply::{apply_room_change, deliver_chat, deliver_direct_with};
use chat::chat;
use devices::{Sessions, Sink};
use moderation::kick_member;
pub use queries::Lusers;

use super::event::{AmendEvent, ChatEvent, DirectEvent, Event, RoomChange, RoomEvent};
use super::model::{Page, Profile, Role, RoomState, mask_matches};
use super::port::{Memory, Port, Refusal, Taken, Verdict};
use crate::core::cluster::Change;
use crate::core::frame::Frame;
use crate::core::outbox::Outbox;
use crate::metrics::{metrics, secs};

pub type SessionId = u64;

/// Default number of messages a `history` request returns.
pub const DEFAULT_HISTORY_PAGE: u32 = 50;

#[derive(Clone, Debug)]
pub struct RouterConfig {
    pub max_text_bytes: usize,
    pub max_rooms_per_session: usize,
    /// Most connections one account may have here at once.
    pub max_devices: usize,
    /// Most always-on users kept here with no device connected.
    pub max_offline: usize,
    pub max_rooms: usize,
    pub history_len: usize,
    /// Most lines in one message.
    pub max_lines: usize,
    /// How long after sending a message may be edited (ms; 0: never).
    pub edit_window_ms: u64,
}

/// A refused request: a protocol error code and a sentence for humans.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RouterError {
    pub code: ErrorCode,
    pub message: String,
}

/// What [`Router::join`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// The session is in the room (it got `joined`).
    Joined,
    /// The room is not in memory: load it from the store
    /// ([`Router::insert_room`], outside the lock) and join again.
    NotLoaded,
}

/// The text checks of the protocol crate answer with a code and a sentence.
impl From<(ErrorCode, String)> for RouterError {
    fn from((code, message): (ErrorCode, String)) -> Self {
        RouterError::new(code, message)
    }
}

impl RouterError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RouterError {
            code,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, RouterError>;

pub struct Router {
    config: RouterConfig,
    state: Mutex<State>,
    /// Where accepted changes go before they take effect (see
    /// [`crate::core::port`]). A durable port (the store) gives a message
    /// or a room change back to [`Router::apply`] once committed; rooms
    /// are then loaded from it before use.
    port: Box<dyn Port>,
}

#[derive(Default)]
struct State {
    /// Boxed: the table then holds a pointer per slot, not a whole session
    /// (a hash table keeps up to half its slots empty).
    sessions: Sessions,
    nicks: HashMap<Nick, SessionId>,
    rooms: HashMap<RoomName, Room>,
    /// Every registered account (a guest may not use these nicks).
    accounts: HashSet<Nick>,
    next_session: SessionId,
    /// In a cluster: nicks a local session is claiming from the broker
    /// (with the account it logs into), not yet registered.
    claiming: HashMap<Nick, Option<Nick>>,
    next_direct_id: u64,
    last_direct_ts: u64,
    /// The other nodes of the cluster seen so far: their ghosts share these.
    nodes: Vec<Node>,
    /// Read positions of the accounts logged in here, by account.
    reads: HashMap<Nick, Box<Reads>>,
    /// The user of each account logged in here, by account.
    online: HashMap<Nick, SessionId>,
    /// How many users are always-on accounts with no device connected.
    offline: usize,
    /// In a cluster: the devices that other nodes have of the accounts
    /// whose users live here (by account: node, count).
    remote: HashMap<Nick, Vec<(String, u32)>>,
    /// Accounts whose ghost went with devices of it here (closed): the
    /// cluster is told they are none (see `remote`).
    orphaned: Vec<Nick>,
    /// Who watches which nicks (see `watches`).
    watches: watches::Watches,
    /// Where messages that accounts with no device missed go (Web Push).
    notify: Option<Arc<dyn crate::core::notify::Notify>>,
}

/// One user as the router knows it: its nick, account, rooms and the
/// outboxes of its connections (a user of this node: see `devices`), or a
/// user of another node (a ghost).
struct Connection {
    nick: Nick,
    /// The account it logged into, if any.
    account: Option<Nick>,
    sink: Sink,
    rooms: Vec<RoomName>,
    away: Option<Box<str>>,
    /// When it registered, and when it last said something (Unix ms).
    since: u64,
    last_said: u64,
    /// When it took its nick (Unix ms): a guest may edit and delete its
    /// messages from then on.
    named: u64,
    /// `None`: a session of this node. Otherwise a "ghost": a user of
    /// that node of the cluster, whose outbox drops everything.
    node: Option<Node>,
    /// Logged into a server administrator's account: it may moderate any
    /// room it is in, its owner included (set by the session at login).
    admin: bool,
    /// Its account stays in its rooms while none of its devices is
    /// connected (see `devices`); set by the session at login.
    always_on: bool,
    /// Away only because no device is connected (cleared by the next).
    auto_away: bool,
    /// An always-on account with no device connected anywhere (see
    /// `devices`): in a cluster, whispers to it wait as if it were
    /// offline.
    offline: bool,
    /// Its real name, username and bot flag (its first device's, then as
    /// changed by `profile`).
    profile: Profile,
    /// Its last typing notices (see `amend`).
    typing: amend::Typing,
}

impl Connection {
    /// The user as `users` and `members` list it.
    fn info(&self) -> UserInfo {
        UserInfo {
            nick: self.nick.clone(),
            away: self.away.as_deref().map(str::to_string),
            account: self.account.clone(),
            realname: self.profile.realname.as_deref().map(str::to_string),
            username: self.profile.username.as_deref().map(str::to_string),
            bot: self.profile.bot,
            oper: self.admin,
        }
    }
}

/// An online account's read positions (see `mark_read`), loaded at login
/// (at most [`MAX_READ_POSITIONS`]), and its sessions here that loaded
/// them (one may have logged out since: check its account before use).
#[derive(Default)]
struct Reads {
    marks: HashMap<Conversation, ReadMark>,
    sessions: Vec<SessionId>,
}

/// Where a read position is: a room, or a direct conversation with an
/// account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Conversation {
    Room(RoomName),
    With(Nick),
}

impl Conversation {
    /// The protocol's form of a position here.
    pub fn position(&self, mark: ReadMark) -> ReadPosition {
        let (room, with) = match self {
            Conversation::Room(room) => (Some(room.clone()), None),
            Conversation::With(nick) => (None, Some(nick.clone())),
        };
        ReadPosition {
            room,
            with,
            id: mark.id,
            ts: mark.ts,
        }
    }
}

/// The read position at `target` of `session`'s account, if it has one.
fn read_of(
    reads: &HashMap<Nick, Box<Reads>>,
    session: &Connection,
    target: &Conversation,
) -> Option<ReadMark> {
    let reads = reads.get(session.account.as_ref()?)?;
    reads.marks.get(target).copied()
}

/// The name of another node of the cluster, shared by its ghosts (see
/// `cluster::node_named`): one pointer, as every session has the field and
/// few have one.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Node(Arc<String>);

impl std::ops::Deref for Node {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Node {
    fn from(name: &str) -> Node {
        Node(Arc::new(name.to_string()))
    }
}

#[derive(Default)]
struct Room {
    members: Vec<Member>,
    /// When its first member of now joined (Unix ms; IRC's 329).
    created: u64,
    topic: Option<Topic>,
    last_id: u64,
    last_ts: u64,
    /// Recent `message` frames, oldest first, shared with their delivery.
    history: VecDeque<Frame>,
    /// Messages and changes handed to the store and not yet delivered: a
    /// room with some is never forgotten (its ids must not be given again,
    /// and its changes must find it).
    pending: usize,
    /// The owner's and operators' accounts.
    owner: Option<Nick>,
    /// The owner was claimed on join and that is not stored yet (so the
    /// owner is not shown until it is).
    claiming: bool,
    ops: Vec<Nick>,
    bans: Vec<BanInfo>,
    modes: RoomModes,
    /// The sessions invited in (by `invite`), each until it joins: it may
    /// then pass `+i`, `+k` and `+l`. Kept here only, never stored.
    invited: Vec<SessionId>,
    /// Whether its state came from the store (a room that only a cluster's
    /// stream has mentioned is not, until a local user joins it).
    loaded: bool,
    /// Changes the stream brought while not loaded, made again on top of
    /// the store's state once it is (the load may have read older state).
    replay: Vec<RoomChange>,
}

/// Whether two bans have the same target (a nick, an account or a mask;
/// masks compare ignoring ASCII case).
fn same_ban(a: &BanInfo, b: &BanInfo) -> bool {
    a.list == b.list
        && a.nick == b.nick
        && a.account == b.account
        && match (&a.mask, &b.mask) {
            (Some(x), Some(y)) => x.eq_ignore_ascii_case(y),
            (x, y) => x == y,
        }
}

/// Whether a ban list entry names this user: its nick, its account, or a
/// mask that matches its nick.
fn entry_matches(entry: &BanInfo, nick: &Nick, account: Option<&Nick>) -> bool {
    entry.nick.as_ref() == Some(nick)
        || (entry.account.is_some() && entry.account.as_ref() == account)
        || entry.mask.as_deref().is_some_and(|m| mask_matches(m, nick))
}

/// Sends `frame` once to everyone sharing one of `of` (the rooms of some
/// user), but those in `told` (who are added to it).
fn tell_room_mates(
    rooms: &HashMap<RoomName, Room>,
    of: &[RoomName],
    frame: &Frame,
    told: &mut HashSet<SessionId>,
) {
    for room in of {
        for member in rooms.get(room).map_or(&[][..], |r| &r.members[..]) {
            if told.insert(member.session) {
                member.sink.push(frame.clone());
            }
        }
    }
}

/// Adds `room` to a session's rooms. Most sessions are in one room: the
/// first takes room for one (a `Vec` would make room for four).
fn enter(rooms: &mut Vec<RoomName>, room: &RoomName) {
    if rooms.capacity() == 0 {
        rooms.reserve_exact(1);
    }
    rooms.push(room.clone());
}

/// A room's member: its nick and account are its session's (a member
/// holds no copies of its own).
struct Member {
    session: SessionId,
    /// Its user's connections (updated as devices come and go).
    sink: Sink,
    /// It may speak when the room is moderated (`+v`): given per
    /// membership, as on IRC, and gone when it leaves.
    voiced: bool,
    /// It runs the room for this membership (IRC's channel operator
    /// without an account behind it): the first to join a room with no
    /// members and nobody running it, or given `+o` as a guest.
    opped: bool,
}

/// Counts for health checks and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterStats {
    pub sessions: usize,
    pub rooms: usize,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn reserved(nick: &Nick) -> RouterError {
    RouterError::new(
        ErrorCode::NickReserved,
        format!("the nick {nick} belongs to an account; log in with its password or token"),
    )
}

/// The error for an event the port did not take.
fn refused(why: Refusal) -> RouterError {
    match why {
        Refusal::Full => busy(),
        Refusal::Unavailable => RouterError::new(
            ErrorCode::Internal,
            "the store is unreachable, so your message was not sent; try again in a moment",
        ),
    }
}

fn busy() -> RouterError {
    RouterError::new(
        ErrorCode::ServerFull,
        "the server is behind saving messages; try again in a moment",
    )
}

fn not_in_room(room: &RoomName) -> RouterError {
    RouterError::new(
        ErrorCode::NotInRoom,
        format!("you are not in room {room}; join it first"),
    )
}

/// Not in `room`: `no_such_room` if nobody is (IRC tells the two apart),
/// else `not_in_room`.
fn outside(rooms: &HashMap<RoomName, Room>, room: &RoomName) -> RouterError {
    if rooms.get(room).is_some_and(|r| !r.members.is_empty()) {
        not_in_room(room)
    } else {
        RouterError::new(
            ErrorCode::NoSuchRoom,
            format!("nobody is in room {room}; join it to open it"),
        )
    }
}

fn not_operator(room: &RoomName) -> RouterError {
    RouterError::new(
        ErrorCode::NotOperator,
        format!("only operators of {room} may do that"),
    )
}

/// An operator acting against the room's owner (kick, ban, deop).
fn owner_protected(room: &RoomName, owner: &Nick) -> RouterError {
    RouterError::new(
        ErrorCode::NotOperator,
        format!(
            "{owner} owns {room}; the owner is protected: operators can't kick, ban or deop it"
        ),
    )
}

impl Room {
    fn from_state(state: RoomState, keep: usize) -> Room {
        let loaded = true;
        let skip = state.recent.len().saturating_sub(keep);
        // Not `collect`: that would reuse the loaded messages' allocation,
        // fifteen times the size of the frames, for the room's whole life.
        let mut history = VecDeque::with_capacity(state.recent.len() - skip);
        history.extend(
            state
                .recent
                .into_iter()
                .skip(skip)
                .map(|m| Frame::new(ServerMessage::Message(m))),
        );
        Room {
            members: Vec::new(),
            created: 0,
            topic: state.topic,
            last_id: state.last_id,
            last_ts: state.last_ts,
            history,
            pending: 0,
            claiming: false,
            owner: state.owner,
            ops: state.ops,
            bans: state.bans,
            modes: state.modes,
            invited: Vec::new(),
            loaded,
            replay: Vec::new(),
        }
    }

    /// Makes a settings change (announcing it is the caller's job).
    fn set(&mut self, change: &RoomChange) {
        match change {
            RoomChange::Topic(topic) => {
                self.topic = (!topic.text.is_empty()).then(|| topic.clone());
            }
            RoomChange::Role { account, role } => match role {
                Some(Role::Owner) => {
                    self.owner = Some(account.clone());
                    self.ops.retain(|a| a != account);
                    self.claiming = false;
                }
                Some(Role::Op) => {
                    self.ops.retain(|a| a != account);
                    self.ops.push(account.clone());
                }
                None => self.ops.retain(|a| a != account),
            },
            RoomChange::Ban { ban, set } => {
                let same = |b: &BanInfo| same_ban(b, ban);
                self.bans.retain(|b| !same(b));
                if *set {
                    self.bans.push(ban.clone());
                }
            }
            RoomChange::Modes { change, .. } => self.modes.apply(change),
        }
    }

    /// Whether `account` may moderate this room.
    fn is_operator(&self, account: Option<&Nick>) -> bool {
        account.is_some_and(|a| self.owner.as_ref() == Some(a) || self.ops.contains(a))
    }

    /// Whether `account` owns this room (or is claiming it).
    fn is_owner(&self, account: Option<&Nick>) -> bool {
        account.is_some() && self.owner.as_ref() == account
    }

    /// Whether the room has never been used: nothing stored (no message
    /// ever, no topic, roles or bans), nothing on its way to the store,
    /// and nobody in it. Only joining such a room makes an owner.
    fn is_new(&self) -> bool {
        self.members.is_empty()
            && self.last_id == 0
            && self.history.is_empty()
            && self.pending == 0
            && self.topic.is_none()
            && self.owner.is_none()
            && !self.claiming
            && self.ops.is_empty()
            && self.bans.is_empty()
            && self.modes.is_default()
    }

    /// Whether a ban keeps this user out: one matches it and no ban
    /// exception (`+e`) does. The owner is never banned: no ban matching it
    /// can be set, and one set before that rule is ignored.
    fn is_banned(&self, nick: &Nick, account: Option<&Nick>) -> bool {
        !self.is_owner(account)
            && self.listed(BanList::Ban, nick, account)
            && !self.listed(BanList::BanException, nick, account)
    }

    /// Whether an entry of `list` matches this user.
    fn listed(&self, list: BanList, nick: &Nick, account: Option<&Nick>) -> bool {
        self.bans
            .iter()
            .any(|b| b.list == list && entry_matches(b, nick, account))
    }

    fn roles(&self, room: &RoomName, sessions: &Sessions) -> ServerMessage {
        ServerMessage::Roles {
            room: room.clone(),
            owner: self.owner.clone(),
            ops: self.ops.clone(),
            moderators: self.moderators(sessions),
        }
    }

    /// Whether `member` (logged into `account`) shows as running the
    /// room: made operator for its stay, or logged into the owner's (once
    /// its claim is stored: until then it is not shown) or an operator's
    /// account.
    fn shown_running(&self, member: &Member, account: Option<&Nick>) -> bool {
        let owner = self.owner.as_ref().filter(|_| !self.claiming);
        member.opped || account.is_some_and(|a| owner == Some(a) || self.ops.contains(a))
    }

    /// The members shown as running the room ([`Self::shown_running`]), by nick.
    fn moderators(&self, sessions: &Sessions) -> Vec<Nick> {
        self.members
            .iter()
            .filter_map(|m| Some((m, sessions.get(&m.session)?)))
            .filter(|(m, s)| self.shown_running(m, s.account.as_ref()))
            .map(|(_, s)| s.nick.clone())
            .collect()
    }

    /// The members' nicks, in the order they joined.
    fn nicks<'a>(&'a self, sessions: &'a Sessions) -> impl Iterator<Item = &'a Nick> {
        self.members
            .iter()
            .filter_map(|m| sessions.get(&m.session).map(|s| &s.nick))
    }

    fn broadcast(&self, frame: &Frame, except: Option<SessionId>) {
        let start = std::time::Instant::now();
        for member in &self.members {
            if Some(member.session) != except {
                member.sink.push(frame.clone());
            }
        }
        metrics().fanout.observe(secs(start.elapsed()));
    }

    /// Adds session `id` to the members; `announce`: the members hear it
    /// join (and, if it is away, that too: IRC away-notify sends AWAY
    /// right after the JOIN).
    /// Whether nobody runs this room: no members, no owner (or claim)
    /// and no operators. Whoever joins it first runs it for the session.
    fn unrun(&self) -> bool {
        self.members.is_empty() && self.owner.is_none() && !self.claiming && self.ops.is_empty()
    }

    fn admit(&mut self, room: &RoomName, id: SessionId, session: &Connection, announce: bool) {
        if self.members.is_empty() {
            self.created = now_ms();
        }
        if announce {
            self.broadcast(
                &Frame::new(ServerMessage::Presence {
                    room: room.clone(),
                    nick: session.nick.clone(),
                    event: PresenceEvent::Join,
                    new_nick: None,
                    reason: None,
                    account: session.account.clone(),
                    realname: session.profile.realname.as_deref().map(str::to_string),
                    bot: session.profile.bot,
                }),
                None,
            );
            if let Some(message) = &session.away {
                self.broadcast(
                    &Frame::new(ServerMessage::Away {
                        nick: session.nick.clone(),
                        message: Some(message.to_string()),
                    }),
                    None,
                );
            }
        }
        self.members.push(Member {
            session: id,
            sink: session.sink.clone(),
            voiced: false,
            opped: false,
        });
    }

    /// `joined` for a member whose account read up to `read` here.
    fn joined(
        &self,
        sessions: &Sessions,
        room: &RoomName,
        read: Option<ReadMark>,
        reference: Option<Ref>,
    ) -> Frame {
        Frame::with_ref(
            ServerMessage::Joined {
                room: room.clone(),
                members: self.nicks(sessions).cloned().collect(),
                history: self.history.iter().map(|f| chat(f).clone()).collect(),
                topic: self.topic.clone(),
                moderators: self.moderators(sessions),
                access: Access::boxed(
                    self.modes.clone(),
                    self.voiced(sessions),
                    read,
                    self.bots(sessions),
                ),
            },
            reference,
        )
    }

    /// The members who are bots, by nick.
    fn bots(&self, sessions: &Sessions) -> Vec<Nick> {
        self.members
            .iter()
            .filter_map(|m| sessions.get(&m.session))
            .filter(|s| s.profile.bot)
            .map(|s| s.nick.clone())
            .collect()
    }

    /// The members with a voice, by nick.
    fn voiced(&self, sessions: &Sessions) -> Vec<Nick> {
        self.members
            .iter()
            .filter(|m| m.voiced)
            .filter_map(|m| sessions.get(&m.session).map(|s| s.nick.clone()))
            .collect()
    }
}

impl State {
    fn session(&self, id: SessionId) -> Result<&Connection> {
        connection(&self.sessions, id)
    }
}

/// Session `id`, or `not_registered` (it has not said hello).
fn connection(sessions: &Sessions, id: SessionId) -> Result<&Connection> {
    sessions.get(&id).ok_or_else(not_registered)
}

/// Session `id` and `room`, which it must be in.
fn member<'s, 'r>(
    sessions: &'s Sessions,
    rooms: &'r mut HashMap<RoomName, Room>,
    id: SessionId,
    room: &RoomName,
) -> Result<(&'s Connection, &'r mut Room)> {
    let session = connection(sessions, id)?;
    if !session.rooms.contains(room) {
        return Err(outside(rooms, room));
    }
    Ok((
        session,
        rooms.get_mut(room).expect("a session's rooms exist"),
    ))
}

/// Whether session `id` may moderate `r`: one of its operators (the owner
/// included), a member it made operator for the session, or a server
/// administrator.
fn moderates(r: &Room, sessions: &Sessions, id: SessionId) -> bool {
    let user = sessions.user_of(id);
    sessions
        .get(&id)
        .is_some_and(|s| s.admin || r.is_operator(s.account.as_ref()))
        || r.members.iter().any(|m| m.session == user && m.opped)
}

/// [`connection`], to change it.
fn connection_mut(sessions: &mut Sessions, id: SessionId) -> Result<&mut Connection> {
    sessions.get_mut(&id).ok_or_else(not_registered)
}

fn not_registered() -> RouterError {
    RouterError::new(ErrorCode::NotRegistered, "send hello first")
}

/// An optional one-line text (a reason, an away message): blank is none,
/// anything else must pass the protocol's line checks.
fn optional_line(text: Option<String>, max: usize, what: &str) -> Result<Option<String>> {
    let text = text.filter(|t| !t.trim().is_empty());
    if let Some(t) = &text {
        check_line(t, max, what)?;
    }
    Ok(text)
}

impl Router {
    /// A router that keeps history in memory only.
    pub fn new(config: RouterConfig) -> Self {
        Router {
            config,
            state: Mutex::new(State::default()),
            port: Box::new(Memory),
        }
    }

    /// A router whose changes go through `port` (the store), knowing the
    /// registered accounts and the last direct message id.
    pub fn with_port(
        config: RouterConfig,
        port: Box<dyn Port>,
        accounts: Vec<Nick>,
        last_direct_id: u64,
    ) -> Self {
        let state = State {
            accounts: accounts.into_iter().collect(),
            next_direct_id: last_direct_id,
            ..State::default()
        };
        Router {
            config,
            state: Mutex::new(state),
            port,
        }
    }

    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// Where what accounts with no device connected miss goes from now.
    pub fn set_notify(&self, notify: Arc<dyn crate::core::notify::Notify>) {
        self.state.lock().unwrap().notify = Some(notify);
    }

    pub fn stats(&self) -> RouterStats {
        let state = self.state.lock().unwrap();
        RouterStats {
            sessions: state.sessions.connections(),
            rooms: state.rooms.len(),
        }
    }
}
