//! The router: rooms, members, presence and delivery.
//!
//! It is plain data behind one `std::sync::Mutex`: every operation locks,
//! updates, pushes frames into the affected members' [`Outbox`]es and
//! unlocks, without ever awaiting (pushing never blocks, see
//! [`crate::core::outbox`]). Delivering under the lock is what keeps a room's
//! messages in one order for everyone, and lets a reply (`joined`) reach its
//! session before any message that follows it. Sessions are known by
//! [`SessionId`] and an outbox; the router never learns which transport a
//! session uses.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use banter_protocol::{
    BanInfo, ChatMessage, DirectMessage, ErrorCode, MAX_AWAY_BYTES, MAX_HISTORY_PAGE,
    MAX_REASON_BYTES, MAX_TOPIC_BYTES, MAX_USERS_QUERY, Nick, PresenceEvent, Ref, RoomInfo,
    RoomName, ServerMessage, Topic, UserInfo, check_line, check_text,
};
use tracing::warn;

mod cluster;

use super::event::{ChatEvent, DirectEvent, Event, RoomChange, RoomEvent};
use super::model::{Page, Role, RoomState};
use super::port::{Memory, Port, Refusal, Taken};
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
    pub max_rooms: usize,
    pub history_len: usize,
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
}

struct Session {
    nick: Nick,
    /// The account it logged into, if any.
    account: Option<Nick>,
    outbox: Arc<Outbox>,
    rooms: Vec<RoomName>,
    away: Option<Box<str>>,
    /// When it registered, and when it last said something (Unix ms).
    since: u64,
    last_said: u64,
    /// `None`: a session of this node. Otherwise a "ghost": a user of
    /// that node of the cluster, whose outbox drops everything.
    node: Option<Node>,
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
    /// Whether its state came from the store (a room that only a cluster's
    /// stream has mentioned is not, until a local user joins it).
    loaded: bool,
    /// Changes the stream brought while not loaded, made again on top of
    /// the store's state once it is (the load may have read older state).
    replay: Vec<RoomChange>,
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
    outbox: Arc<Outbox>,
}

type Sessions = HashMap<SessionId, Box<Session>>;

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

fn unsaved(reference: Option<Ref>) -> Frame {
    Frame::error(
        ErrorCode::Internal,
        "your message could not be saved, so it was not delivered; try again",
        reference,
    )
}

fn unsaved_change(reference: Option<Ref>) -> Frame {
    Frame::error(
        ErrorCode::Internal,
        "that change could not be saved, so it was not made; try again",
        reference,
    )
}

/// Makes a room change that the store has committed (or, without a
/// store, at once): updates the room and tells its members, the
/// requester's copy with its `ref` (the requester gets it even if it left
/// the room meanwhile). A ban also kicks the members it matches.
/// In a cluster, `port` tells the other nodes of the kicks a ban causes,
/// and of the change itself unless it came from them (`from_cluster`).
fn apply_room_change(state: &mut State, write: RoomEvent, port: &dyn Port, from_cluster: bool) {
    let RoomEvent {
        room,
        change,
        requester,
        reference,
    } = write;
    let State {
        sessions, rooms, ..
    } = state;
    let Some(r) = rooms.get_mut(&room) else {
        return;
    };
    if !from_cluster {
        cluster::publish_room(port, &room, &change);
    }
    r.set(&change);
    let event = match &change {
        RoomChange::Topic(topic) => ServerMessage::Topic {
            room: room.clone(),
            topic: Some(topic.clone()),
        },
        RoomChange::Role { .. } => r.roles(&room, sessions),
        RoomChange::Ban { ban, set } => ServerMessage::Banned {
            room: room.clone(),
            ban: ban.clone(),
            set: *set,
        },
    };
    let asker = requester.and_then(|id| Some((id, sessions.get(&id)?)));
    match asker {
        Some((id, session)) => {
            r.broadcast(&Frame::new(event.clone()), Some(id));
            session.outbox.push(Frame::with_ref(event, reference));
        }
        None => r.broadcast(&Frame::new(event), None),
    }
    if let RoomChange::Ban { ban, set: true } = change {
        // Only this node's members: a ghost is kicked by its own node,
        // which tells the cluster.
        while let Some(pos) = r.members.iter().position(|m| {
            Some(m.session) != requester
                && sessions.get(&m.session).is_some_and(|s| {
                    s.node.is_none()
                        && (ban.nick.as_ref() == Some(&s.nick)
                            || (ban.account.is_some() && ban.account == s.account))
                })
        }) {
            let reason = Some("banned".to_string());
            kick_member(
                sessions,
                r,
                &room,
                pos,
                (ban.by.clone(), reason),
                None,
                port,
            );
        }
    }
}

/// A room change the store could not commit: nothing changes (a claim of
/// ownership made on join is undone) and the requester is told.
fn drop_room_change(state: &mut State, write: RoomEvent) {
    if let RoomChange::Role {
        account,
        role: Some(Role::Owner),
    } = &write.change
        && let Some(r) = state.rooms.get_mut(&write.room)
        && r.owner.as_ref() == Some(account)
    {
        r.owner = None;
        r.claiming = false;
    }
    if let Some(s) = write.requester.and_then(|id| state.sessions.get(&id)) {
        s.outbox.push(unsaved_change(write.reference));
    }
}

/// Sends a message to its room's members (the sender's copy with its
/// `ref`) and keeps it in the room's recent history.
fn deliver_chat(state: &mut State, config: &RouterConfig, write: ChatEvent) {
    let ChatEvent {
        message,
        sender,
        reference,
    } = write;
    let Some(r) = state.rooms.get_mut(&message.room) else {
        return;
    };
    // The sender's copy differs only when it must carry a `ref`.
    let own = reference
        .map(|reference| Frame::with_ref(ServerMessage::Message(message.clone()), Some(reference)));
    let shared = Frame::new(ServerMessage::Message(message));
    match own {
        Some(own) => {
            r.broadcast(&shared, Some(sender));
            if let Some(member) = r.members.iter().find(|m| m.session == sender) {
                member.outbox.push(own);
            }
        }
        None => r.broadcast(&shared, None),
    }
    r.history.push_back(shared);
    while r.history.len() > config.history_len {
        r.history.pop_front();
    }
}

/// Sends a direct message to its target (if online) and echoes it, with
/// the target's away message if any, to the sender.
fn deliver_direct(state: &mut State, write: DirectEvent) {
    let DirectEvent {
        message,
        sender,
        target,
        reference,
    } = write;
    let target = target.and_then(|t| state.sessions.get(&t).map(|s| (t, s)));
    if let Some((t, session)) = target
        && t != sender
    {
        session
            .outbox
            .push(Frame::new(ServerMessage::Direct(message.clone())));
    }
    let Some(from) = state.sessions.get(&sender) else {
        return;
    };
    // A notice is never answered, not even by an away message.
    let away = target
        .filter(|_| !message.notice)
        .and_then(|(_, s)| Some((s.nick.clone(), s.away.clone()?)));
    from.outbox.push(Frame::with_ref(
        ServerMessage::Direct(message),
        reference.clone(),
    ));
    if let Some((nick, away)) = away {
        from.outbox.push(Frame::with_ref(
            ServerMessage::Away {
                nick,
                message: Some(away.into()),
            },
            reference,
        ));
    }
}

fn chat(frame: &Frame) -> &ChatMessage {
    match frame.message() {
        Some(ServerMessage::Message(m)) => m,
        other => unreachable!("history holds only messages, found {other:?}"),
    }
}

fn not_in_room(room: &RoomName) -> RouterError {
    RouterError::new(
        ErrorCode::NotInRoom,
        format!("you are not in room {room}; join it first"),
    )
}

fn not_operator(room: &RoomName) -> RouterError {
    RouterError::new(
        ErrorCode::NotOperator,
        format!("only operators of {room} may do that"),
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
            topic: state.topic,
            last_id: state.last_id,
            last_ts: state.last_ts,
            history,
            pending: 0,
            claiming: false,
            owner: state.owner,
            ops: state.ops,
            bans: state.bans,
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
                    self.claiming = false;
                }
                Some(Role::Op) => {
                    self.ops.retain(|a| a != account);
                    self.ops.push(account.clone());
                }
                None => self.ops.retain(|a| a != account),
            },
            RoomChange::Ban { ban, set } => {
                let same = |b: &BanInfo| b.nick == ban.nick && b.account == ban.account;
                self.bans.retain(|b| !same(b));
                if *set {
                    self.bans.push(ban.clone());
                }
            }
        }
    }

    /// Whether `account` may moderate this room.
    fn is_operator(&self, account: Option<&Nick>) -> bool {
        account.is_some_and(|a| self.owner.as_ref() == Some(a) || self.ops.contains(a))
    }

    fn is_banned(&self, nick: &Nick, account: Option<&Nick>) -> bool {
        self.bans.iter().any(|b| {
            b.nick.as_ref() == Some(nick) || (b.account.is_some() && b.account.as_ref() == account)
        })
    }

    fn roles(&self, room: &RoomName, sessions: &Sessions) -> ServerMessage {
        ServerMessage::Roles {
            room: room.clone(),
            owner: self.owner.clone(),
            ops: self.ops.clone(),
            moderators: self.moderators(sessions),
        }
    }

    /// The members logged into the owner's or an operator's account, by
    /// nick (the owner once its claim is stored: until then it is not
    /// shown).
    fn moderators(&self, sessions: &Sessions) -> Vec<Nick> {
        let owner = self.owner.as_ref().filter(|_| !self.claiming);
        let moderates = |a: &Nick| owner == Some(a) || self.ops.contains(a);
        self.members
            .iter()
            .filter_map(|m| sessions.get(&m.session))
            .filter(|s| s.account.as_ref().is_some_and(moderates))
            .map(|s| s.nick.clone())
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
                member.outbox.push(frame.clone());
            }
        }
        metrics().fanout.observe(secs(start.elapsed()));
    }

    /// Adds session `id` to the members; `announce`: the members hear it
    /// join (and, if it is away, that too: IRC away-notify sends AWAY
    /// right after the JOIN).
    fn admit(&mut self, room: &RoomName, id: SessionId, session: &Session, announce: bool) {
        if announce {
            self.broadcast(
                &Frame::new(ServerMessage::Presence {
                    room: room.clone(),
                    nick: session.nick.clone(),
                    event: PresenceEvent::Join,
                    new_nick: None,
                    reason: None,
                    account: session.account.clone(),
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
            outbox: session.outbox.clone(),
        });
    }

    fn joined(&self, sessions: &Sessions, room: &RoomName, reference: Option<Ref>) -> Frame {
        Frame::with_ref(
            ServerMessage::Joined {
                room: room.clone(),
                members: self.nicks(sessions).cloned().collect(),
                history: self.history.iter().map(|f| chat(f).clone()).collect(),
                topic: self.topic.clone(),
                moderators: self.moderators(sessions),
            },
            reference,
        )
    }
}

impl State {
    fn session(&self, id: SessionId) -> Result<&Session> {
        self.sessions
            .get(&id)
            .map(|s| &**s)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))
    }
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

    /// Hands a room change to the port: made at once, or once the port
    /// gives it back (the room is kept meanwhile, see `Room::pending`);
    /// `busy` if the port has no room for it.
    fn change_room(&self, state: &mut State, event: RoomEvent) -> Result<()> {
        let room = event.room.clone();
        match self.port.submit(Event::Room(event)) {
            Taken::Now(event) => self.apply_event(state, event, true),
            Taken::Later => {
                if let Some(r) = state.rooms.get_mut(&room) {
                    r.pending += 1;
                }
            }
            Taken::Relayed => {}
            Taken::Refused(_, why) => return Err(refused(why)),
        }
        Ok(())
    }

    /// Whether `room` is in memory (else, with a store, load it first).
    pub fn has_room(&self, room: &RoomName) -> bool {
        !self.port.durable()
            || self
                .state
                .lock()
                .unwrap()
                .rooms
                .get(room)
                .is_some_and(|r| r.loaded)
    }

    /// Adds a room loaded from the store, unless it is there already;
    /// rooms nobody is in are forgotten to make space.
    pub fn insert_room(&self, room: RoomName, loaded: RoomState) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let rooms = &mut guard.rooms;
        if let Some(r) = rooms.get_mut(&room) {
            if !r.loaded {
                cluster::merge_loaded(r, loaded, self.config.history_len);
            }
            return Ok(());
        }
        if rooms.len() >= self.config.max_rooms {
            rooms.retain(|_, r| !r.members.is_empty() || r.pending > 0);
            if rooms.len() >= self.config.max_rooms {
                return Err(RouterError::new(
                    ErrorCode::ServerFull,
                    "the server holds as many rooms as it may; join an existing one",
                ));
            }
        }
        rooms.insert(room, Room::from_state(loaded, self.config.history_len));
        Ok(())
    }

    /// Whether `nick` is a registered account.
    pub fn is_account(&self, nick: &Nick) -> bool {
        self.state.lock().unwrap().accounts.contains(nick)
    }

    /// Whether a session uses `nick`.
    pub fn nick_in_use(&self, nick: &Nick) -> bool {
        self.state.lock().unwrap().nicks.contains_key(nick)
    }

    /// The nick of session `id`.
    pub fn nick_of(&self, id: SessionId) -> Option<Nick> {
        let state = self.state.lock().unwrap();
        state.sessions.get(&id).map(|s| s.nick.clone())
    }

    /// Records a new account.
    pub fn add_account(&self, name: Nick) {
        cluster::publish_account(&*self.port, &name);
        self.state.lock().unwrap().accounts.insert(name);
    }

    /// The account a session is logged into.
    pub fn account_of(&self, id: SessionId) -> Option<Nick> {
        let state = self.state.lock().unwrap();
        state.sessions.get(&id).and_then(|s| s.account.clone())
    }

    /// Logs a guest session into the account of its own nick.
    pub fn log_in(&self, id: SessionId, account: Nick) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State { sessions, .. } = &mut *guard;
        let session = sessions
            .get_mut(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        session.account = Some(account.clone());
        cluster::publish_user(&*self.port, session, Change::Login);
        Ok(())
    }

    /// Refuses unless the session is in `room` (history is then served
    /// from the store, outside the lock).
    pub fn check_member(&self, id: SessionId, room: &RoomName) -> Result<()> {
        let state = self.state.lock().unwrap();
        if !state.session(id)?.rooms.contains(room) {
            return Err(not_in_room(room));
        }
        Ok(())
    }

    /// Queues `frame` for session `id`, if it still exists.
    pub fn send_to(&self, id: SessionId, frame: Frame) {
        let state = self.state.lock().unwrap();
        if let Some(session) = state.sessions.get(&id) {
            session.outbox.push(frame);
        }
    }

    /// Makes what the port gave back take effect (or, `taken ==
    /// false`, tells the requesters it could not be made), in the port's
    /// order: that is id order within each room, so every member sees one
    /// order. Called by the port's owner (the store's writer, after each
    /// commit).
    pub fn apply(&self, events: &mut Vec<Event>, taken: bool) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        for event in events.drain(..) {
            let room = match &event {
                Event::Chat(chat) => Some(&chat.message.room),
                Event::Room(change) => Some(&change.room),
                Event::Direct(_) => None,
            };
            if let Some(r) = room.and_then(|room| state.rooms.get_mut(room)) {
                r.pending = r.pending.saturating_sub(1);
            }
            self.apply_event(state, event, taken);
        }
    }

    /// Makes one event take effect: delivers a message, makes and
    /// announces a room change; or, `taken == false`, tells the requester
    /// it could not be made.
    fn apply_event(&self, state: &mut State, event: Event, taken: bool) {
        match event {
            Event::Chat(chat) if taken => deliver_chat(state, &self.config, chat),
            Event::Direct(direct) if taken => deliver_direct(state, direct),
            Event::Room(change) if taken => apply_room_change(state, change, &*self.port, false),
            Event::Room(change) => drop_room_change(state, change),
            Event::Chat(ChatEvent {
                sender, reference, ..
            })
            | Event::Direct(DirectEvent {
                sender, reference, ..
            }) => {
                if let Some(s) = state.sessions.get(&sender) {
                    s.outbox.push(unsaved(reference));
                }
            }
        }
    }

    /// Prunes the in-memory recent history as retention does in the store.
    pub fn retain(&self, before_ts: Option<u64>, keep: Option<u64>) {
        let mut state = self.state.lock().unwrap();
        for room in state.rooms.values_mut() {
            if let Some(ts) = before_ts {
                room.history.retain(|f| chat(f).ts >= ts);
            }
            if let Some(keep) = keep {
                while room.history.len() as u64 > keep {
                    room.history.pop_front();
                }
            }
        }
    }

    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    pub fn stats(&self) -> RouterStats {
        let state = self.state.lock().unwrap();
        RouterStats {
            sessions: state.sessions.len(),
            rooms: state.rooms.len(),
        }
    }

    /// Claims `nick` for a new session whose frames go to `outbox`, and
    /// queues `welcome` as its first frame.
    pub fn register(
        &self,
        nick: Nick,
        outbox: Arc<Outbox>,
        welcome: ServerMessage,
        reference: Option<Ref>,
    ) -> Result<SessionId> {
        self.register_as(nick, None, outbox, vec![welcome], reference)
    }

    /// Like [`register`](Self::register), logged into `account` (whose
    /// name is `nick`; checked by the caller) or as a guest (`None`), who
    /// may not use an account's nick. `first` are the frames it gets first.
    pub fn register_as(
        &self,
        nick: Nick,
        account: Option<Nick>,
        outbox: Arc<Outbox>,
        first: Vec<ServerMessage>,
        reference: Option<Ref>,
    ) -> Result<SessionId> {
        let mut state = self.state.lock().unwrap();
        // In a cluster the broker gave this nick to the caller: a ghost
        // still holding it is out of date.
        cluster::evict_ghost(&mut state, &nick);
        if state.nicks.contains_key(&nick) {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        if account.is_none() && state.accounts.contains(&nick) {
            return Err(reserved(&nick));
        }
        state.next_session += 1;
        let id = state.next_session;
        for message in first {
            outbox.push(Frame::with_ref(message, reference.clone()));
        }
        state.nicks.insert(nick.clone(), id);
        let now = now_ms();
        state.sessions.insert(
            id,
            Box::new(Session {
                nick,
                account,
                outbox,
                rooms: Vec::new(),
                away: None,
                since: now,
                last_said: now,
                node: None,
            }),
        );
        Ok(id)
    }

    /// Puts session `id` in `room` (it gets `joined`, the room hears it),
    /// unless the room must be loaded from the store first.
    pub fn join(&self, id: SessionId, room: RoomName, reference: Option<Ref>) -> Result<Joined> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = sessions
            .get_mut(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        if session.rooms.contains(&room) {
            // Joining twice is harmless: answer with the room's state again.
            let outbox = session.outbox.clone();
            outbox.push(rooms[&room].joined(sessions, &room, reference));
            return Ok(Joined::Joined);
        }
        if self.port.durable() && !rooms.get(&room).is_some_and(|r| r.loaded) {
            return Ok(Joined::NotLoaded);
        }
        if session.rooms.len() >= self.config.max_rooms_per_session {
            return Err(RouterError::new(
                ErrorCode::TooManyRooms,
                format!(
                    "you are in {} rooms, the most allowed; part one first",
                    session.rooms.len()
                ),
            ));
        }
        if !rooms.contains_key(&room) && rooms.len() >= self.config.max_rooms {
            // Forget rooms nobody is in (and their history) to make space.
            rooms.retain(|_, r| !r.members.is_empty() || r.pending > 0);
            if rooms.len() >= self.config.max_rooms {
                return Err(RouterError::new(
                    ErrorCode::ServerFull,
                    "the server holds as many rooms as it may; join an existing one",
                ));
            }
        }
        let r = rooms.entry(room.clone()).or_default();
        if r.is_banned(&session.nick, session.account.as_ref()) {
            return Err(RouterError::new(
                ErrorCode::Banned,
                format!("you are banned from {room}"),
            ));
        }
        // A room's first logged-in joiner owns it, once that is stored; the
        // claim holds meanwhile, so nobody else claims it. A port too busy
        // to take the claim leaves the room unowned.
        let claim = match &session.account {
            Some(account) if r.owner.is_none() => Some(account.clone()),
            _ => None,
        };
        r.admit(&room, id, session, true);
        let joined = r.joined(sessions, &room, reference);
        let roles = (claim.is_none() && r.owner.is_some() && !r.claiming)
            .then(|| Frame::new(r.roles(&room, sessions)));
        let session = sessions.get_mut(&id).expect("looked up above");
        session.outbox.push(joined);
        if claim.is_some() {
            r.claiming = true;
        } else if let Some(roles) = roles {
            session.outbox.push(roles);
        }
        enter(&mut session.rooms, &room);
        cluster::publish_user(&*self.port, session, Change::Join { room: room.clone() });
        if let Some(account) = claim {
            r.owner = Some(account.clone());
            let event = RoomEvent {
                room: room.clone(),
                change: RoomChange::Role {
                    account,
                    role: Some(Role::Owner),
                },
                requester: Some(id),
                reference: None,
            };
            if self.change_room(&mut guard, event).is_err() {
                warn!(%room, "the store's queue is full; the room stays unowned");
                if let Some(r) = guard.rooms.get_mut(&room) {
                    r.owner = None;
                    r.claiming = false;
                }
            }
        }
        Ok(Joined::Joined)
    }

    /// Leaves `room`; the others hear it with `reason`, if any.
    pub fn part(
        &self,
        id: SessionId,
        room: RoomName,
        reason: Option<String>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let reason = optional_line(reason, MAX_REASON_BYTES, "reason")?;
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = sessions
            .get_mut(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        let Some(pos) = session.rooms.iter().position(|r| *r == room) else {
            return Err(not_in_room(&room));
        };
        session.rooms.remove(pos);
        if let Some(r) = rooms.get_mut(&room) {
            r.members.retain(|m| m.session != id);
            r.broadcast(
                &Frame::new(ServerMessage::Presence {
                    room: room.clone(),
                    nick: session.nick.clone(),
                    event: PresenceEvent::Part,
                    new_nick: None,
                    reason: reason.clone(),
                    account: session.account.clone(),
                }),
                None,
            );
        }
        cluster::publish_user(
            &*self.port,
            session,
            Change::Part {
                room: room.clone(),
                reason: reason.clone(),
            },
        );
        session.outbox.push(Frame::with_ref(
            ServerMessage::Parted { room, reason },
            reference,
        ));
        Ok(())
    }

    /// Sends `text` to everyone in `room`, the sender included (whose copy
    /// carries `reference`). Returns the message's id.
    pub fn say(
        &self,
        id: SessionId,
        room: RoomName,
        text: String,
        notice: bool,
        reference: Option<Ref>,
    ) -> Result<u64> {
        check_text(&text, self.config.max_text_bytes)?;
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = sessions
            .get_mut(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let r = rooms.get_mut(&room).expect("a session's rooms exist");
        let now = now_ms();
        let (message_id, ts) = (r.last_id + 1, now.max(r.last_ts));
        let message = ChatMessage {
            room,
            id: message_id,
            from: session.nick.clone(),
            text,
            ts,
            account: session.account.clone(),
            notice,
        };
        let event = Event::Chat(ChatEvent {
            message,
            sender: id,
            reference,
        });
        let taken = self.port.submit(event);
        if let Taken::Refused(_, why) = taken {
            return Err(refused(why));
        }
        session.last_said = now;
        if let Taken::Relayed = taken {
            // Numbered by the cluster's broker: 0 until the stream brings it.
            return Ok(0);
        }
        r.last_id = message_id;
        r.last_ts = ts;
        match taken {
            Taken::Now(event) => self.apply_event(&mut guard, event, true),
            Taken::Later => r.pending += 1,
            Taken::Relayed | Taken::Refused(..) => {}
        }
        Ok(message_id)
    }

    /// Sends a direct message to `to`, echoed to the sender.
    pub fn whisper(
        &self,
        id: SessionId,
        to: Nick,
        text: String,
        notice: bool,
        reference: Option<Ref>,
    ) -> Result<u64> {
        check_text(&text, self.config.max_text_bytes)?;
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        state.session(id)?;
        // An offline account's whispers wait for its next login.
        let (target, to) = match state.nicks.get(&to) {
            Some(&target) => (Some(target), state.sessions[&target].nick.clone()),
            None => match state.accounts.get(&to) {
                Some(account) if self.port.durable() => (None, account.clone()),
                _ => {
                    return Err(RouterError::new(
                        ErrorCode::NoSuchNick,
                        format!("nobody is using the nick {to}"),
                    ));
                }
            },
        };
        let (message_id, ts) = (state.next_direct_id + 1, now_ms().max(state.last_direct_ts));
        let sender = state.sessions.get_mut(&id).expect("checked");
        let message = DirectMessage {
            id: message_id,
            from: sender.nick.clone(),
            to,
            text,
            ts,
            account: sender.account.clone(),
            notice,
        };
        let event = Event::Direct(DirectEvent {
            message,
            sender: id,
            target,
            reference,
        });
        let taken = self.port.submit(event);
        if let Taken::Refused(_, why) = taken {
            return Err(refused(why));
        }
        sender.last_said = ts;
        if let Taken::Relayed = taken {
            return Ok(0);
        }
        state.next_direct_id = message_id;
        state.last_direct_ts = ts;
        if let Taken::Now(event) = taken {
            self.apply_event(state, event, true);
        }
        Ok(message_id)
    }

    /// Answers with a room's topic (`set` = `None`), or sets it and tells
    /// every member (with a store, once stored). A blank text clears it;
    /// the announcement then carries an empty text and who cleared it.
    pub fn topic(
        &self,
        id: SessionId,
        room: RoomName,
        set: Option<String>,
        reference: Option<Ref>,
    ) -> Result<()> {
        if let Some(text) = &set {
            check_line(text, MAX_TOPIC_BYTES, "topic")?;
        }
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = sessions
            .get(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        let Some(text) = set else {
            let topic = rooms.get(&room).and_then(|r| r.topic.clone());
            session.outbox.push(Frame::with_ref(
                ServerMessage::Topic { room, topic },
                reference,
            ));
            return Ok(());
        };
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let r = rooms.get_mut(&room).expect("a session's rooms exist");
        if r.owner.is_some() && !r.is_operator(session.account.as_ref()) {
            return Err(not_operator(&room));
        }
        // The announcement says who changed it; an empty text: cleared.
        let topic = Topic {
            text: if text.trim().is_empty() {
                String::new()
            } else {
                text
            },
            by: session.nick.clone(),
            ts: now_ms(),
        };
        let event = RoomEvent {
            room,
            change: RoomChange::Topic(topic),
            requester: Some(id),
            reference,
        };
        self.change_room(&mut guard, event)
    }

    /// Answers with who is in `room` (empty if nobody is).
    pub fn members(&self, id: SessionId, room: RoomName, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let (mut members, mut away) = (Vec::new(), Vec::new());
        let r = state.rooms.get(&room);
        let moderators = r.map_or_else(Vec::new, |r| r.moderators(&state.sessions));
        for member in r.map_or(&[][..], |r| &r.members[..]) {
            let member = &state.sessions[&member.session];
            if member.away.is_some() {
                away.push(member.nick.clone());
            }
            members.push(member.nick.clone());
        }
        session.outbox.push(Frame::with_ref(
            ServerMessage::Members {
                room,
                members,
                away,
                moderators,
            },
            reference,
        ));
        Ok(())
    }

    /// Answers with every room that has members, by name.
    pub fn rooms(&self, id: SessionId, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let mut rooms: Vec<RoomInfo> = state
            .rooms
            .iter()
            .filter(|(_, r)| !r.members.is_empty())
            .map(|(name, r)| RoomInfo {
                room: name.clone(),
                members: r.members.len(),
                topic: r.topic.as_ref().map(|t| t.text.clone()),
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        session
            .outbox
            .push(Frame::with_ref(ServerMessage::Rooms { rooms }, reference));
        Ok(())
    }

    /// Answers with what there is to know about `nick`.
    pub fn whois(&self, id: SessionId, nick: Nick, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let Some(target) = state.nicks.get(&nick).map(|t| &state.sessions[t]) else {
            return Err(RouterError::new(
                ErrorCode::NoSuchNick,
                format!("nobody is using the nick {nick}"),
            ));
        };
        session.outbox.push(Frame::with_ref(
            ServerMessage::Whois {
                nick: target.nick.clone(),
                rooms: target.rooms.clone(),
                away: target.away.as_deref().map(str::to_string),
                idle_secs: now_ms().saturating_sub(target.last_said) / 1000,
                since: target.since,
                account: target.account.clone(),
            },
            reference,
        ));
        Ok(())
    }

    /// Answers with the online users among `nicks`, in their order, each
    /// once.
    pub fn users(&self, id: SessionId, nicks: Vec<Nick>, reference: Option<Ref>) -> Result<()> {
        if nicks.len() > MAX_USERS_QUERY {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                format!("ask about at most {MAX_USERS_QUERY} nicks at once"),
            ));
        }
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let mut seen = HashSet::new();
        let users = nicks
            .iter()
            .filter_map(|n| state.nicks.get(n))
            .filter(|&&t| seen.insert(t))
            .map(|t| {
                let user = &state.sessions[t];
                UserInfo {
                    nick: user.nick.clone(),
                    away: user.away.as_deref().map(str::to_string),
                    account: user.account.clone(),
                }
            })
            .collect();
        session
            .outbox
            .push(Frame::with_ref(ServerMessage::Users { users }, reference));
        Ok(())
    }

    /// Marks a session away (`Some` message) or back (`None`, or a blank
    /// message). The session and everyone sharing a room with it get
    /// `away`, once each.
    pub fn away(
        &self,
        id: SessionId,
        message: Option<String>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let message = optional_line(message, MAX_AWAY_BYTES, "away message")?;
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = sessions
            .get_mut(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        session.away = message.as_deref().map(Into::into);
        cluster::publish_user(&*self.port, session, Change::Away);
        let event = ServerMessage::Away {
            nick: session.nick.clone(),
            message,
        };
        let mut told = HashSet::from([id]);
        let shared = Frame::new(event.clone());
        for room in &session.rooms {
            for member in &rooms[room].members {
                if told.insert(member.session) {
                    member.outbox.push(shared.clone());
                }
            }
        }
        session.outbox.push(Frame::with_ref(event, reference));
        Ok(())
    }

    /// Answers with up to `limit` messages of a joined room from its
    /// recent history (without a store; with one, the store answers): the
    /// oldest ones past `after`/`after_ts` if given (to fill a gap), unless
    /// `latest`; else the newest (before `before`/`before_ts`, to page back).
    pub fn history(
        &self,
        id: SessionId,
        room: RoomName,
        page: Page,
        reference: Option<Ref>,
    ) -> Result<()> {
        let limit = page.limit.clamp(1, MAX_HISTORY_PAGE) as usize;
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let r = &state.rooms[&room];
        let in_range = |m: &&ChatMessage| {
            page.before.is_none_or(|b| m.id < b)
                && page.after.is_none_or(|a| m.id > a)
                && page.before_ts.is_none_or(|b| m.ts < b)
                && page.after_ts.is_none_or(|a| m.ts > a)
        };
        let forward = (page.after.is_some() || page.after_ts.is_some()) && !page.latest;
        let messages: Vec<ChatMessage> = if forward {
            r.history
                .iter()
                .map(chat)
                .filter(in_range)
                .take(limit)
                .cloned()
                .collect()
        } else {
            let mut newest: Vec<_> = r
                .history
                .iter()
                .rev()
                .map(chat)
                .filter(in_range)
                .take(limit)
                .cloned()
                .collect();
            newest.reverse();
            newest
        };
        session.outbox.push(Frame::with_ref(
            ServerMessage::History { room, messages },
            reference,
        ));
        Ok(())
    }

    /// Renames a session; everyone sharing a room with it sees a `nick`
    /// presence event.
    pub fn change_nick(&self, id: SessionId, nick: Nick, reference: Option<Ref>) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        cluster::evict_ghost(&mut guard, &nick);
        let State {
            sessions,
            nicks,
            rooms,
            accounts,
            ..
        } = &mut *guard;
        if let Some(&holder) = nicks.get(&nick)
            && holder != id
        {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        let session = sessions
            .get_mut(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        if accounts.contains(&nick) && session.account.as_ref() != Some(&nick) {
            return Err(reserved(&nick));
        }
        let old = std::mem::replace(&mut session.nick, nick.clone());
        nicks.remove(&old);
        nicks.insert(nick.clone(), id);
        for room in &session.rooms {
            let r = rooms.get_mut(room).expect("a session's rooms exist");
            r.broadcast(
                &Frame::new(ServerMessage::Presence {
                    room: room.clone(),
                    nick: old.clone(),
                    event: PresenceEvent::Nick,
                    new_nick: Some(nick.clone()),
                    reason: None,
                    account: session.account.clone(),
                }),
                Some(id),
            );
        }
        session.outbox.push(Frame::with_ref(
            ServerMessage::Nick { nick, old },
            reference,
        ));
        Ok(())
    }

    /// Removes `nick` from `room` (operators only); the room, `nick`
    /// included, gets `kicked`.
    pub fn kick(
        &self,
        id: SessionId,
        room: RoomName,
        nick: Nick,
        reason: Option<String>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let reason = optional_line(reason, MAX_TOPIC_BYTES, "reason")?;
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let (by, r) = moderator(sessions, rooms, id, &room)?;
        let named = |m: &Member| sessions.get(&m.session).is_some_and(|s| s.nick == nick);
        let Some(pos) = r.members.iter().position(named) else {
            return Err(RouterError::new(
                ErrorCode::NoSuchNick,
                format!("{nick} is not in {room}"),
            ));
        };
        let ghost = sessions
            .get(&r.members[pos].session)
            .is_some_and(|s| s.node.is_some());
        if ghost {
            // A user of another node: that node kicks it, and the room
            // hears it from there.
            cluster::publish_kick(&*self.port, room, nick, by, reason);
            return Ok(());
        }
        kick_member(
            sessions,
            r,
            &room,
            pos,
            (by, reason),
            Some((id, reference)),
            &*self.port,
        );
        Ok(())
    }

    /// Sets (`set`) or lifts a ban on a nick or an account (operators
    /// only). Once stored, the room gets `banned` and members it matches
    /// are kicked.
    pub fn ban(
        &self,
        id: SessionId,
        room: RoomName,
        nick: Option<Nick>,
        account: Option<Nick>,
        set: bool,
        reference: Option<Ref>,
    ) -> Result<()> {
        if nick.is_some() == account.is_some() {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                "a ban names either a nick or an account",
            ));
        }
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions,
            rooms,
            accounts,
            ..
        } = &mut *guard;
        let account = match account {
            Some(a) => Some(accounts.get(&a).cloned().ok_or_else(|| {
                RouterError::new(ErrorCode::NoSuchAccount, format!("there is no account {a}"))
            })?),
            None => None,
        };
        let (by, _) = moderator(sessions, rooms, id, &room)?;
        let ban = BanInfo {
            nick,
            account,
            by,
            ts: now_ms(),
        };
        let event = RoomEvent {
            room,
            change: RoomChange::Ban { ban, set },
            requester: Some(id),
            reference,
        };
        self.change_room(&mut guard, event)
    }

    /// Answers with a room's bans (members only).
    pub fn bans(&self, id: SessionId, room: RoomName, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let bans = state.rooms[&room].bans.clone();
        session.outbox.push(Frame::with_ref(
            ServerMessage::Bans { room, bans },
            reference,
        ));
        Ok(())
    }

    /// Makes `account` an operator of `room` (`op`), or not. Operators may
    /// make operators; only the owner takes the rights away (or an operator
    /// from itself). Once stored, the room gets `roles`.
    pub fn set_op(
        &self,
        id: SessionId,
        room: RoomName,
        account: Nick,
        op: bool,
        reference: Option<Ref>,
    ) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions,
            rooms,
            accounts,
            ..
        } = &mut *guard;
        let session = sessions
            .get(&id)
            .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let r = rooms.get_mut(&room).expect("a session's rooms exist");
        let mine = session.account.as_ref();
        if !r.is_operator(mine) && mine != Some(&account) {
            return Err(not_operator(&room));
        }
        let Some(account) = accounts.get(&account).cloned() else {
            return Err(RouterError::new(
                ErrorCode::NoSuchAccount,
                format!("there is no account {account}; operators need one"),
            ));
        };
        let allowed = if op {
            r.is_operator(mine)
        } else {
            r.owner.as_ref().is_some_and(|o| Some(o) == mine) || mine == Some(&account)
        };
        if !allowed {
            return Err(not_operator(&room));
        }
        if r.owner.as_ref() == Some(&account) {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                format!("{account} owns {room}; an owner is always an operator"),
            ));
        }
        let event = RoomEvent {
            room,
            change: RoomChange::Role {
                account,
                role: op.then_some(Role::Op),
            },
            requester: Some(id),
            reference,
        };
        self.change_room(&mut guard, event)
    }

    /// Removes a session: it leaves every room (members see `quit`, with
    /// `reason` if given) and its nick becomes free. Unknown ids are ignored.
    pub fn quit(&self, id: SessionId, reason: Option<String>) {
        let reason = reason
            .map(|r| clip(r.trim(), MAX_REASON_BYTES))
            .filter(|r| !r.is_empty() && check_line(r, MAX_REASON_BYTES, "reason").is_ok());
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions,
            nicks,
            rooms,
            ..
        } = &mut *guard;
        let Some(session) = sessions.remove(&id) else {
            return;
        };
        cluster::publish_quit(&*self.port, &session, reason.clone());
        nicks.remove(&session.nick);
        for room in session.rooms {
            if let Some(r) = rooms.get_mut(&room) {
                r.members.retain(|m| m.session != id);
                r.broadcast(
                    &Frame::new(ServerMessage::Presence {
                        room,
                        nick: session.nick.clone(),
                        event: PresenceEvent::Quit,
                        new_nick: None,
                        reason: reason.clone(),
                        account: session.account.clone(),
                    }),
                    None,
                );
            }
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

/// The nick of session `id` and its room, if it may moderate `room`.
fn moderator<'a>(
    sessions: &Sessions,
    rooms: &'a mut HashMap<RoomName, Room>,
    id: SessionId,
    room: &RoomName,
) -> Result<(Nick, &'a mut Room)> {
    let session = sessions
        .get(&id)
        .ok_or_else(|| RouterError::new(ErrorCode::NotRegistered, "send hello first"))?;
    if !session.rooms.contains(room) {
        return Err(not_in_room(room));
    }
    let r = rooms.get_mut(room).expect("a session's rooms exist");
    if !r.is_operator(session.account.as_ref()) {
        return Err(not_operator(room));
    }
    Ok((session.nick.clone(), r))
}

/// Tells the room (the kicked member included; the kicker's copy with
/// its `ref`) and removes member `pos`, kicked by whom and why.
fn kick_member(
    sessions: &mut Sessions,
    r: &mut Room,
    room: &RoomName,
    pos: usize,
    (by, reason): (Nick, Option<String>),
    kicker: Option<(SessionId, Option<Ref>)>,
    port: &dyn Port,
) {
    let change = Change::Kicked {
        room: room.clone(),
        by: by.clone(),
        reason: reason.clone(),
    };
    let event = ServerMessage::Kicked {
        room: room.clone(),
        nick: sessions[&r.members[pos].session].nick.clone(),
        by,
        reason,
    };
    match &kicker {
        Some((kicker, reference @ Some(_))) => {
            r.broadcast(&Frame::new(event.clone()), Some(*kicker));
            if let Some(s) = sessions.get(kicker) {
                s.outbox.push(Frame::with_ref(event, reference.clone()));
            }
        }
        _ => r.broadcast(&Frame::new(event), None),
    }
    let member = r.members.remove(pos);
    if let Some(s) = sessions.get_mut(&member.session) {
        s.rooms.retain(|x| x != room);
        cluster::publish_user(port, s, change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::{Limits, PROTOCOL_VERSION};

    fn router() -> Router {
        Router::new(RouterConfig {
            max_text_bytes: 100,
            max_rooms_per_session: 3,
            max_rooms: 4,
            history_len: 5,
        })
    }

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    fn welcome(n: &str) -> ServerMessage {
        ServerMessage::Welcome {
            nick: nick(n),
            protocol: PROTOCOL_VERSION,
            server: "test".into(),
            limits: Limits {
                max_text_bytes: 100,
                max_frame_bytes: 1000,
                max_rooms: 3,
                idle_timeout_secs: 60,
            },
        }
    }

    struct Client {
        id: SessionId,
        outbox: Arc<Outbox>,
    }

    impl Client {
        fn new(router: &Router, n: &str) -> Client {
            let outbox = Arc::new(Outbox::new(64));
            let id = router
                .register(nick(n), outbox.clone(), welcome(n), None)
                .unwrap();
            let client = Client { id, outbox };
            assert!(matches!(client.take()[..], [ServerMessage::Welcome { .. }]));
            client
        }

        fn take(&self) -> Vec<ServerMessage> {
            let mut batch = VecDeque::new();
            self.outbox.take_batch(&mut batch);
            batch.iter().map(|f| f.message().unwrap().clone()).collect()
        }

        fn take_frames(&self) -> Vec<Frame> {
            let mut batch = VecDeque::new();
            self.outbox.take_batch(&mut batch);
            batch.into_iter().collect()
        }
    }

    #[test]
    fn nicks_are_unique_ignoring_case() {
        let r = router();
        let _a = Client::new(&r, "Alice");
        let err = r
            .register(
                nick("aLiCe"),
                Arc::new(Outbox::new(4)),
                welcome("aLiCe"),
                None,
            )
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NickTaken);
        r.quit(_a.id, None);
        assert!(
            r.register(
                nick("alice"),
                Arc::new(Outbox::new(4)),
                welcome("alice"),
                None
            )
            .is_ok(),
            "a quit frees the nick"
        );
    }

    #[test]
    fn join_say_and_presence() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "bob");
        r.join(a.id, room("lobby"), Some(Ref::Int(1))).unwrap();
        r.say(a.id, room("lobby"), "first".into(), false, None)
            .unwrap();
        r.join(b.id, room("lobby"), None).unwrap();

        let got = a.take();
        assert!(
            matches!(&got[0], ServerMessage::Joined { members, history, .. } if members == &[nick("alice")] && history.is_empty())
        );
        assert!(matches!(&got[1], ServerMessage::Message(m) if m.id == 1 && m.text == "first"));
        assert!(
            matches!(&got[2], ServerMessage::Presence { nick: n, event: PresenceEvent::Join, .. } if n == &nick("bob"))
        );

        let got = b.take();
        let ServerMessage::Joined {
            members, history, ..
        } = &got[0]
        else {
            panic!("{got:?}")
        };
        assert_eq!(members, &[nick("alice"), nick("bob")]);
        assert_eq!(history.len(), 1, "joined carries recent history");

        // Everyone gets one shared frame; the sender's copy carries its ref.
        r.say(
            b.id,
            room("lobby"),
            "hi".into(),
            false,
            Some(Ref::Str("r1".into())),
        )
        .unwrap();
        r.say(a.id, room("lobby"), "hey".into(), false, None)
            .unwrap();
        let (fa, fb) = (a.take_frames(), b.take_frames());
        assert_eq!(fb[0].reference(), Some(&Ref::Str("r1".into())));
        assert_eq!(fa[0].reference(), None);
        assert!(
            fa[1].ptr_eq(&fb[1]),
            "one frame, shared, not copied per member"
        );
        let (ServerMessage::Message(m1), ServerMessage::Message(m2)) =
            (fa[0].message().unwrap(), fa[1].message().unwrap())
        else {
            panic!()
        };
        assert!(m2.id > m1.id && m2.ts >= m1.ts);
    }

    #[test]
    fn ids_strictly_increase_and_history_is_a_bounded_ring() {
        let r = router();
        let a = Client::new(&r, "alice");
        r.join(a.id, room("x"), None).unwrap();
        let mut last = 0;
        for i in 0..20 {
            let id = r
                .say(a.id, room("x"), format!("m{i}"), false, None)
                .unwrap();
            assert!(id > last);
            last = id;
        }
        a.take();
        let page = |before: Option<u64>, after: Option<u64>, limit: u32, latest: bool| Page {
            before,
            after,
            limit,
            latest,
            ..Page::default()
        };
        r.history(a.id, room("x"), page(None, None, 50, false), None)
            .unwrap();
        let [ServerMessage::History { messages, .. }] = &a.take()[..] else {
            panic!()
        };
        let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            vec![16, 17, 18, 19, 20],
            "only history_len messages are kept"
        );

        for (before, after, limit, latest) in [
            (None, Some(16), 2, false),
            (Some(19), None, 2, false),
            (Some(19), Some(16), 50, false),
            (None, Some(16), 2, true),
        ] {
            r.history(a.id, room("x"), page(before, after, limit, latest), None)
                .unwrap();
        }
        let pages: Vec<Vec<u64>> = a
            .take()
            .into_iter()
            .map(|m| match m {
                ServerMessage::History { messages, .. } => messages.iter().map(|m| m.id).collect(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            pages,
            vec![vec![17, 18], vec![17, 18], vec![17, 18], vec![19, 20]],
            "after: the oldest past it; latest: the newest past it, oldest first"
        );
    }

    #[test]
    fn errors_are_specific() {
        let r = router();
        let a = Client::new(&r, "alice");
        let code = |res: Result<u64>| res.unwrap_err().code;
        assert_eq!(
            code(r.say(a.id, room("x"), "hi".into(), false, None)),
            ErrorCode::NotInRoom
        );
        r.join(a.id, room("x"), None).unwrap();
        assert_eq!(
            code(r.say(a.id, room("x"), "x".repeat(101), false, None)),
            ErrorCode::TextTooLong
        );
        assert_eq!(
            code(r.say(a.id, room("x"), "  ".into(), false, None)),
            ErrorCode::EmptyText
        );
        assert_eq!(
            code(r.whisper(a.id, nick("ghost"), "boo".into(), false, None)),
            ErrorCode::NoSuchNick
        );
        assert_eq!(
            r.part(a.id, room("y"), None, None).unwrap_err().code,
            ErrorCode::NotInRoom
        );
        r.join(a.id, room("y"), None).unwrap();
        r.join(a.id, room("z"), None).unwrap();
        assert_eq!(
            r.join(a.id, room("w"), None).unwrap_err().code,
            ErrorCode::TooManyRooms
        );
        assert_eq!(
            r.join(999, room("w"), None).unwrap_err().code,
            ErrorCode::NotRegistered
        );
    }

    #[test]
    fn empty_rooms_are_forgotten_only_under_pressure() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "bob");
        for n in ["r1", "r2", "r3"] {
            r.join(a.id, room(n), None).unwrap();
        }
        r.join(b.id, room("r4"), None).unwrap();
        assert_eq!(r.stats().rooms, 4);
        assert_eq!(
            r.join(b.id, room("r5"), None).unwrap_err().code,
            ErrorCode::ServerFull
        );
        r.part(a.id, room("r1"), None, None).unwrap();
        r.join(b.id, room("r5"), None).unwrap();
        assert_eq!(r.stats().rooms, 4);
    }

    #[test]
    fn whisper_reaches_the_target_and_echoes() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "Bob");
        r.whisper(a.id, nick("BOB"), "psst".into(), false, Some(Ref::Int(5)))
            .unwrap();
        let [ServerMessage::Direct(to_b)] = &b.take()[..] else {
            panic!()
        };
        assert_eq!(
            (to_b.from.as_str(), to_b.to.as_str(), to_b.text.as_str()),
            ("alice", "Bob", "psst")
        );
        let echo = a.take_frames();
        assert_eq!(echo[0].reference(), Some(&Ref::Int(5)));
        assert_eq!(
            echo[0].message(),
            Some(&ServerMessage::Direct(to_b.clone()))
        );
    }

    #[test]
    fn part_quit_and_nick_change_are_seen_by_the_room() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "bob");
        let c = Client::new(&r, "carol");
        for s in [&a, &b, &c] {
            r.join(s.id, room("lobby"), None).unwrap();
        }
        a.take();
        r.part(b.id, room("lobby"), None, None).unwrap();
        assert!(matches!(
            &b.take().last(),
            Some(ServerMessage::Parted { .. })
        ));
        r.change_nick(c.id, nick("caz"), None).unwrap();
        assert_eq!(
            r.change_nick(c.id, nick("ALICE"), None).unwrap_err().code,
            ErrorCode::NickTaken
        );
        r.quit(c.id, None);
        let events: Vec<(PresenceEvent, String, Option<String>)> = a
            .take()
            .into_iter()
            .map(|m| match m {
                ServerMessage::Presence {
                    event,
                    nick,
                    new_nick,
                    ..
                } => (event, nick.to_string(), new_nick.map(|n| n.to_string())),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            events,
            vec![
                (PresenceEvent::Part, "bob".into(), None),
                (PresenceEvent::Nick, "carol".into(), Some("caz".into())),
                (PresenceEvent::Quit, "caz".into(), None),
            ]
        );
        // "carol" is free again, "caz" too after the quit.
        Client::new(&r, "carol");
        Client::new(&r, "caz");
    }

    #[test]
    fn topics_are_kept_shown_on_join_and_announced() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "bob");
        r.join(a.id, room("lobby"), None).unwrap();
        assert_eq!(
            r.topic(b.id, room("lobby"), Some("mine".into()), None)
                .unwrap_err()
                .code,
            ErrorCode::NotInRoom,
            "only members set the topic"
        );
        assert_eq!(
            r.topic(a.id, room("lobby"), Some("x".repeat(391)), None)
                .unwrap_err()
                .code,
            ErrorCode::TextTooLong
        );
        r.topic(
            a.id,
            room("lobby"),
            Some("welcome".into()),
            Some(Ref::Int(1)),
        )
        .unwrap();
        let got = a.take_frames();
        assert_eq!(got.last().unwrap().reference(), Some(&Ref::Int(1)));
        let Some(ServerMessage::Topic { topic: Some(t), .. }) = got.last().unwrap().message()
        else {
            panic!("{got:?}")
        };
        assert_eq!((t.text.as_str(), t.by.as_str()), ("welcome", "alice"));
        // Anyone may read it; a joiner gets it with `joined`.
        r.topic(b.id, room("lobby"), None, None).unwrap();
        assert!(
            matches!(&b.take()[..], [ServerMessage::Topic { topic: Some(t), .. }] if t.text == "welcome")
        );
        r.join(b.id, room("lobby"), None).unwrap();
        assert!(
            matches!(&b.take()[..], [ServerMessage::Joined { topic: Some(t), .. }] if t.text == "welcome")
        );
        a.take();
        r.topic(b.id, room("lobby"), Some(" ".into()), None)
            .unwrap();
        assert!(
            matches!(&a.take()[..], [ServerMessage::Topic { topic: Some(t), .. }] if t.text.is_empty() && t.by == nick("bob")),
            "blank clears, and the room hears who cleared it"
        );
        r.topic(a.id, room("lobby"), None, None).unwrap();
        assert!(matches!(
            &a.take()[..],
            [ServerMessage::Topic { topic: None, .. }]
        ));
        r.topic(a.id, room("nowhere"), None, None).unwrap();
        assert!(matches!(
            &a.take()[..],
            [ServerMessage::Topic { topic: None, .. }]
        ));
    }

    #[test]
    fn members_rooms_and_whois_describe_the_server() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "Bob");
        r.join(a.id, room("lobby"), None).unwrap();
        r.join(b.id, room("lobby"), None).unwrap();
        r.join(b.id, room("dev"), None).unwrap();
        r.topic(b.id, room("dev"), Some("rust".into()), None)
            .unwrap();
        r.away(b.id, Some("lunch".into()), None).unwrap();
        a.take();
        r.members(a.id, room("lobby"), None).unwrap();
        r.members(a.id, room("ghosts"), None).unwrap();
        r.rooms(a.id, None).unwrap();
        r.whois(a.id, nick("bob"), None).unwrap();
        let got = a.take();
        assert_eq!(
            got[0],
            ServerMessage::Members {
                room: room("lobby"),
                members: vec![nick("alice"), nick("Bob")],
                away: vec![nick("Bob")],
                moderators: vec![],
            }
        );
        assert!(matches!(&got[1], ServerMessage::Members { members, .. } if members.is_empty()));
        let ServerMessage::Rooms { rooms } = &got[2] else {
            panic!("{got:?}")
        };
        let listed: Vec<(&str, usize, Option<&str>)> = rooms
            .iter()
            .map(|i| (i.room.as_str(), i.members, i.topic.as_deref()))
            .collect();
        assert_eq!(listed, vec![("dev", 1, Some("rust")), ("lobby", 2, None)]);
        let ServerMessage::Whois {
            nick: n,
            rooms,
            away,
            ..
        } = &got[3]
        else {
            panic!()
        };
        assert_eq!(n.as_str(), "Bob");
        assert_eq!(rooms, &[room("lobby"), room("dev")]);
        assert_eq!(away.as_deref(), Some("lunch"));
        assert_eq!(
            r.whois(a.id, nick("ghost"), None).unwrap_err().code,
            ErrorCode::NoSuchNick
        );
    }

    #[test]
    fn away_is_told_once_to_room_mates_and_to_whisperers() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "bob");
        let loner = Client::new(&r, "loner");
        for n in ["one", "two"] {
            r.join(a.id, room(n), None).unwrap();
            r.join(b.id, room(n), None).unwrap();
        }
        a.take();
        b.take();
        r.away(b.id, Some("lunch".into()), Some(Ref::Int(4)))
            .unwrap();
        let away = ServerMessage::Away {
            nick: nick("bob"),
            message: Some("lunch".into()),
        };
        assert_eq!(
            a.take(),
            vec![away.clone()],
            "once, though they share two rooms"
        );
        assert_eq!(b.take_frames()[0].reference(), Some(&Ref::Int(4)));
        assert!(loner.take().is_empty());
        r.whisper(loner.id, nick("bob"), "hi".into(), false, None)
            .unwrap();
        let got = loner.take();
        assert!(matches!(&got[..], [ServerMessage::Direct(_), a] if *a == away));
        r.away(b.id, None, None).unwrap();
        assert_eq!(
            a.take(),
            vec![ServerMessage::Away {
                nick: nick("bob"),
                message: None
            }]
        );
    }

    #[test]
    fn reasons_accounts_away_joiners_and_user_lookups() {
        let r = router();
        let a = Client::new(&r, "alice");
        let b = Client::new(&r, "Bob");
        r.log_in(b.id, nick("Bob")).unwrap();
        r.join(a.id, room("lobby"), None).unwrap();
        r.away(b.id, Some("lunch".into()), None).unwrap();
        a.take();
        b.take();
        // An away joiner: the room hears the join (with the account), then
        // the away message; the joiner only gets `joined`.
        r.join(b.id, room("lobby"), None).unwrap();
        let got = a.take();
        assert!(
            matches!(&got[..], [
                ServerMessage::Presence { event: PresenceEvent::Join, account: Some(acc), .. },
                ServerMessage::Away { message: Some(m), .. },
                .. // `roles`: Bob owns the room now
            ] if acc == &nick("bob") && m == "lunch"),
            "{got:?}"
        );
        assert!(matches!(
            &b.take()[..],
            [ServerMessage::Joined { .. }, ServerMessage::Roles { .. }]
        ));
        // Messages carry the sender's account and the notice flag.
        r.say(b.id, room("lobby"), "hi".into(), true, None).unwrap();
        let [ServerMessage::Message(m)] = &a.take()[..] else {
            panic!()
        };
        assert_eq!((m.account.as_ref(), m.notice), (Some(&nick("bob")), true));
        // A notice to someone away gets no away answer; a whisper does.
        r.whisper(a.id, nick("bob"), "psst".into(), true, None)
            .unwrap();
        assert!(
            matches!(&a.take()[..], [ServerMessage::Direct(d)] if d.notice && d.account.is_none())
        );
        r.whisper(a.id, nick("bob"), "psst".into(), false, None)
            .unwrap();
        assert!(matches!(
            &a.take()[..],
            [ServerMessage::Direct(_), ServerMessage::Away { .. }]
        ));
        b.take();
        // Who is online, in the order asked, once each.
        r.users(
            a.id,
            vec![nick("ghost"), nick("BOB"), nick("alice"), nick("bob")],
            None,
        )
        .unwrap();
        let [ServerMessage::Users { users }] = &a.take()[..] else {
            panic!()
        };
        let listed: Vec<(&str, Option<&str>)> = users
            .iter()
            .map(|u| (u.nick.as_str(), u.away.as_deref()))
            .collect();
        assert_eq!(listed, [("Bob", Some("lunch")), ("alice", None)]);
        assert_eq!(
            r.users(a.id, vec![nick("x"); MAX_USERS_QUERY + 1], None)
                .unwrap_err()
                .code,
            ErrorCode::BadRequest
        );
        // Part and quit reasons reach the room; a bad one is refused.
        assert_eq!(
            r.part(
                b.id,
                room("lobby"),
                Some("x".repeat(MAX_REASON_BYTES + 1)),
                None
            )
            .unwrap_err()
            .code,
            ErrorCode::TextTooLong
        );
        r.part(b.id, room("lobby"), Some("bye".into()), None)
            .unwrap();
        assert!(
            matches!(&b.take()[..], [ServerMessage::Parted { reason: Some(w), .. }] if w == "bye")
        );
        r.join(b.id, room("lobby"), None).unwrap();
        r.quit(b.id, Some(format!("  {}  ", "é".repeat(MAX_REASON_BYTES))));
        let got = a.take();
        let reasons: Vec<Option<&str>> = got
            .iter()
            .filter_map(|m| match m {
                ServerMessage::Presence { reason, .. } => Some(reason.as_deref()),
                _ => None,
            })
            .collect();
        assert_eq!(reasons.len(), 3);
        assert_eq!(reasons[0], Some("bye"));
        let quit = reasons[2].unwrap();
        assert!(
            quit.len() <= MAX_REASON_BYTES && quit.starts_with('é'),
            "clipped: {quit}"
        );
    }

    #[test]
    fn a_full_outbox_never_blocks_the_room() {
        let r = router();
        let a = Client::new(&r, "alice");
        let slow_outbox = Arc::new(Outbox::new(8));
        let slow = r
            .register(nick("slow"), slow_outbox.clone(), welcome("slow"), None)
            .unwrap();
        r.join(slow, room("x"), None).unwrap();
        r.join(a.id, room("x"), None).unwrap();
        for i in 0..1000 {
            r.say(a.id, room("x"), format!("m{i}"), false, None)
                .unwrap();
            a.take();
        }
        assert_eq!(slow_outbox.len(), 8, "bounded");
        let mut batch = VecDeque::new();
        let info = slow_outbox.take_batch(&mut batch);
        assert!(info.dropped > 900);
        let Some(ServerMessage::Message(last)) = batch.back().unwrap().message() else {
            panic!()
        };
        assert_eq!(last.text, "m999", "the newest messages survive");
    }
}
