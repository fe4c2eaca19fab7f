//! The router's side of a cluster (see [`crate::broker`]): what it
//! publishes about its own users, and how it applies the broker's stream.
//!
//! A user of another node is a "ghost" session here: in `sessions`,
//! `nicks` and the rooms' member lists like any other (so members, whois,
//! whispers and nick checks see the whole cluster), with the shared
//! discarding outbox, because its own node delivers to it. Ghosts change
//! only as the stream says, in stream order; local members hear of those
//! changes as they would of a local user's. A room whose changes another
//! node could not announce is set right from the store's copy
//! ([`Router::reload_rooms`]), its differences announced the same way.

use std::collections::HashSet;

use banter_protocol::{
    BanInfo, ErrorCode, ModeChange, Nick, PresenceEvent, Ref, RoomName, ServerMessage,
};
use tracing::{debug, warn};

use super::devices::Sink;
use super::modes::{keep_invitation, notify_operators};
use super::remote;
use super::{
    ChatEvent, Connection, DirectEvent, Member, Node, Result, Role, Room, RoomChange, RoomEvent,
    RoomState, Router, RouterError, SessionId, State, apply_room_change, chat, deliver_chat,
    deliver_direct_with, kick_member, now_ms, same_ban,
};
use crate::core::cluster::{Change, Event, News, Received, UserRecord};
use crate::core::frame::Frame;
use crate::core::model::{Profile, key};
use crate::core::outbox::Outbox;
use crate::core::port::Port;

/// The quit reason local members see when a node's users go with it.
const NODE_LOST: &str = "lost touch with its server";

/// A local session as the cluster knows it.
fn record(node: &str, s: &Connection) -> UserRecord {
    UserRecord {
        nick: s.nick.clone(),
        node: node.to_string(),
        account: s.account.clone(),
        away: s.away.as_deref().map(str::to_string),
        rooms: s.rooms.clone(),
        since: s.since,
        offline: s.offline,
    }
}

/// Tells the cluster that local session `s` changed (`change`; `s` is the
/// state after it). Ghosts and routers outside a cluster tell nothing.
pub(super) fn publish_user(port: &dyn Port, s: &Connection, change: Change) {
    let Some(node) = port.node().filter(|_| s.node.is_none()) else {
        return;
    };
    port.tell(News::User {
        user: record(node, s),
        change,
    });
}

/// Tells the cluster that local session `s` is gone; its nick is free.
pub(super) fn publish_quit(port: &dyn Port, s: &Connection, reason: Option<String>) {
    let Some(node) = port.node().filter(|_| s.node.is_none()) else {
        return;
    };
    let mut user = record(node, s);
    user.rooms.clear();
    port.tell(News::User {
        user,
        change: Change::Quit { reason },
    });
}

pub(super) fn publish_room(port: &dyn Port, room: &RoomName, change: &RoomChange) {
    if port.node().is_some() {
        port.tell(News::Room {
            room: room.clone(),
            change: change.clone(),
        });
    }
}

pub(super) fn publish_account(port: &dyn Port, name: &Nick) {
    if port.node().is_some() {
        port.tell(News::Account { name: name.clone() });
    }
}

pub(super) fn publish_kick(
    port: &dyn Port,
    room: RoomName,
    nick: Nick,
    by: Nick,
    reason: Option<String>,
) {
    port.tell(News::Kick {
        room,
        nick,
        by,
        reason,
    });
}

/// Tells the cluster of an invitation made here (nothing outside one).
pub(super) fn publish_invite(port: &dyn Port, room: RoomName, nick: Nick, by: Nick) {
    if port.node().is_some() {
        port.tell(News::Invite { room, nick, by });
    }
}

/// Tells the cluster of a voice given or taken here.
pub(super) fn publish_voice(port: &dyn Port, room: RoomName, nick: Nick, by: Nick, set: bool) {
    if port.node().is_some() {
        port.tell(News::Voice {
            room,
            nick,
            by,
            set,
        });
    }
}

/// The ghost of `node` using `nick`, if any.
fn ghost(state: &State, nick: &Nick, node: &str) -> Option<SessionId> {
    let &id = state.nicks.get(nick)?;
    let s = state.sessions.get(&id)?;
    (s.node.as_deref() == Some(node)).then_some(id)
}

/// Removes a ghost holding `nick` (the broker says the nick is free, so
/// the ghost is out of date); local members see it quit.
pub(super) fn evict_ghost(state: &mut State, nick: &Nick) {
    if let Some(&id) = state.nicks.get(nick)
        && state.sessions.get(&id).is_some_and(|s| s.node.is_some())
    {
        ghost_quit(state, id, Some(NODE_LOST.into()), true);
    }
}

/// Takes a room's state from the store into a room the stream created:
/// the store's settings, with the changes the stream brought meanwhile
/// made again on top; the store's recent messages and the stream's,
/// merged by id.
pub(super) fn merge_loaded(r: &mut Room, loaded: RoomState, keep: usize) {
    r.topic = loaded.topic;
    r.owner = loaded.owner;
    r.ops = loaded.ops;
    r.bans = loaded.bans;
    r.modes = loaded.modes;
    r.last_id = r.last_id.max(loaded.last_id);
    r.last_ts = r.last_ts.max(loaded.last_ts);
    // Not `collect` from the loaded messages: that would keep their
    // allocation, many times the frames' size (see `Room::from_state`).
    let mut all = Vec::with_capacity(loaded.recent.len() + r.history.len());
    all.extend(
        loaded
            .recent
            .into_iter()
            .map(|m| Frame::new(ServerMessage::Message(m))),
    );
    all.extend(r.history.drain(..));
    all.sort_by_key(|f| chat(f).id);
    all.dedup_by_key(|f| chat(f).id);
    let skip = all.len().saturating_sub(keep);
    r.history.extend(all.into_iter().skip(skip));
    r.history.shrink_to_fit();
    for change in std::mem::take(&mut r.replay) {
        r.set(&change);
    }
    r.loaded = true;
}

fn presence(
    room: &RoomName,
    nick: &Nick,
    event: PresenceEvent,
    reason: Option<String>,
    account: Option<Nick>,
) -> Frame {
    Frame::new(ServerMessage::Presence {
        room: room.clone(),
        nick: nick.clone(),
        event,
        new_nick: None,
        reason,
        account,
        realname: None,
        bot: false,
    })
}

/// Adds a ghost for `user` in its rooms (`announce`: local members hear
/// the joins).
fn ghost_add(state: &mut State, user: &UserRecord, announce: bool) -> SessionId {
    let node = node_named(state, &user.node);
    state.next_session += 1;
    let id = state.next_session;
    state.nicks.insert(user.nick.clone(), id);
    state.watches.seen(&state.sessions, &user.nick, true);
    state.sessions.insert(
        id,
        Box::new(Connection {
            nick: user.nick.clone(),
            account: user.account.clone(),
            sink: Sink::One(id, Outbox::discard()),
            rooms: Vec::new(),
            away: user.away.as_deref().map(Into::into),
            since: user.since,
            named: user.since,
            last_said: user.since,
            node: Some(node),
            admin: false,
            always_on: false,
            auto_away: false,
            offline: user.offline,
            profile: Profile::default(),
            typing: Default::default(),
        }),
    );
    for room in &user.rooms {
        ghost_join(state, id, room, announce);
    }
    id
}

/// Node `name`'s shared name: one allocation per node, not one per ghost.
fn node_named(state: &mut State, name: &str) -> Node {
    if let Some(node) = state.nodes.iter().find(|n| ***n == *name) {
        return node.clone();
    }
    let node = Node::from(name);
    state.nodes.push(node.clone());
    node
}

fn ghost_join(state: &mut State, id: SessionId, room: &RoomName, announce: bool) {
    let State {
        sessions, rooms, ..
    } = state;
    let Some(s) = sessions.get_mut(&id) else {
        return;
    };
    if s.rooms.contains(room) {
        return;
    }
    let r = rooms.entry(room.clone()).or_default();
    r.admit(room, id, s, announce);
    super::enter(&mut s.rooms, room);
    // This node's devices of the user (see `remote`) are in it too.
    if remote::devices_here(s) > 0 {
        let s = &sessions[&id];
        s.sink.push(r.joined(sessions, room, None, None));
        if r.owner.is_some() && !r.claiming {
            s.sink.push(Frame::new(r.roles(room, sessions)));
        }
    }
}

/// Takes a ghost out of `room`; local members see `event` (or, for a
/// kick, `kicked`).
fn ghost_leave(
    state: &mut State,
    id: SessionId,
    room: &RoomName,
    event: PresenceEvent,
    reason: Option<String>,
    kicked_by: Option<Nick>,
    announce: bool,
) {
    let State {
        sessions, rooms, ..
    } = state;
    let Some(s) = sessions.get_mut(&id) else {
        return;
    };
    let Some(pos) = s.rooms.iter().position(|r| r == room) else {
        return;
    };
    s.rooms.remove(pos);
    // This node's devices of the user (see `remote`) leave it too.
    if remote::devices_here(s) > 0 {
        s.sink.push(Frame::new(match &kicked_by {
            Some(by) => ServerMessage::Kicked {
                room: room.clone(),
                nick: s.nick.clone(),
                by: by.clone(),
                reason: reason.clone(),
            },
            None => ServerMessage::Parted {
                room: room.clone(),
                reason: reason.clone(),
            },
        }));
    }
    let Some(r) = rooms.get_mut(room) else {
        return;
    };
    r.members.retain(|m| m.session != id);
    if !announce {
        return;
    }
    let frame = match kicked_by {
        Some(by) => Frame::new(ServerMessage::Kicked {
            room: room.clone(),
            nick: s.nick.clone(),
            by,
            reason,
        }),
        None => presence(room, &s.nick, event, reason, s.account.clone()),
    };
    r.broadcast(&frame, None);
}

fn ghost_quit(state: &mut State, id: SessionId, reason: Option<String>, announce: bool) {
    let rooms = match state.sessions.get(&id) {
        Some(s) => s.rooms.clone(),
        None => return,
    };
    for room in &rooms {
        ghost_leave(
            state,
            id,
            room,
            PresenceEvent::Quit,
            reason.clone(),
            None,
            announce,
        );
    }
    if let Some(s) = state.sessions.remove(&id) {
        state.nicks.remove(&s.nick);
        state.watches.seen(&state.sessions, &s.nick, false);
        if let Some(account) = s.account.as_ref().filter(|_| remote::devices_here(&s) > 0) {
            state.orphaned.push(account.clone());
            if !state.online.contains_key(account) {
                state.reads.remove(account);
            }
        }
        // Devices here of a user gone from its node: they connect again
        // (and the user lives here then).
        for (_, outbox) in s.sink.iter().filter(|(device, _)| *device != id) {
            outbox.close(
                ErrorCode::Internal,
                "your account's user left the cluster's other server; connect again",
            );
        }
    }
}

fn ghost_rename(state: &mut State, id: SessionId, nick: &Nick) {
    let State {
        sessions,
        nicks,
        rooms,
        watches,
        ..
    } = state;
    let Some(s) = sessions.get_mut(&id) else {
        return;
    };
    let old = std::mem::replace(&mut s.nick, nick.clone());
    nicks.remove(&old);
    nicks.insert(nick.clone(), id);
    if old != *nick {
        watches.seen(sessions, &old, false);
        watches.seen(sessions, nick, true);
    }
    let Some(s) = sessions.get_mut(&id) else {
        return;
    };
    if remote::devices_here(s) > 0 {
        s.sink.push(Frame::new(ServerMessage::Nick {
            nick: nick.clone(),
            old: old.clone(),
        }));
    }
    for room in &s.rooms {
        let Some(r) = rooms.get_mut(room) else {
            continue;
        };
        r.broadcast(
            &Frame::new(ServerMessage::Presence {
                room: room.clone(),
                nick: old.clone(),
                event: PresenceEvent::Nick,
                new_nick: Some(nick.clone()),
                reason: None,
                account: s.account.clone(),
                realname: None,
                bot: false,
            }),
            None,
        );
    }
}

fn ghost_away(state: &mut State, id: SessionId, away: Option<String>) {
    let State {
        sessions, rooms, ..
    } = state;
    let Some(s) = sessions.get_mut(&id) else {
        return;
    };
    if s.away.as_deref() == away.as_deref() {
        return;
    }
    s.away = away.as_deref().map(Into::into);
    let frame = Frame::new(ServerMessage::Away {
        nick: s.nick.clone(),
        message: away,
    });
    super::tell_room_mates(rooms, &s.rooms, &frame, &mut HashSet::new());
}

fn ghost_account(state: &mut State, id: SessionId, account: Option<Nick>) {
    let Some(s) = state.sessions.get_mut(&id) else {
        return;
    };
    s.account = account;
}

/// Makes the ghosts of `only` (or of every other node) match `users`.
fn reconcile(
    state: &mut State,
    me: &str,
    users: Vec<UserRecord>,
    only: Option<&str>,
    announce: bool,
) {
    let wanted: HashSet<(Nick, &str)> = users
        .iter()
        .filter(|u| u.node != me)
        .map(|u| (u.nick.clone(), u.node.as_str()))
        .collect();
    let stale: Vec<SessionId> = state
        .sessions
        .iter()
        .filter(|(_, s)| {
            s.node.as_deref().is_some_and(|n| {
                only.is_none_or(|o| o == n) && !wanted.contains(&(s.nick.clone(), n))
            })
        })
        .map(|(&id, _)| id)
        .collect();
    for id in stale {
        ghost_quit(state, id, Some(NODE_LOST.into()), announce);
    }
    for user in users.iter().filter(|u| u.node != me) {
        match ghost(state, &user.nick, &user.node) {
            Some(id) => update_ghost(state, id, user, announce),
            None => {
                evict_ghost(state, &user.nick);
                if state.nicks.contains_key(&user.nick) {
                    warn!(nick = %user.nick, node = %user.node, "the broker gives a local nick to another node; ignored");
                    continue;
                }
                ghost_add(state, user, announce);
            }
        }
    }
}

/// Brings a ghost's rooms, away message and account in line with `user`.
fn update_ghost(state: &mut State, id: SessionId, user: &UserRecord, announce: bool) {
    let current = state.sessions[&id].rooms.clone();
    for room in current.iter().filter(|r| !user.rooms.contains(r)) {
        ghost_leave(state, id, room, PresenceEvent::Part, None, None, announce);
    }
    for room in user.rooms.iter().filter(|r| !current.contains(r)) {
        ghost_join(state, id, room, announce);
    }
    ghost_away(state, id, user.away.clone());
    if let Some(s) = state.sessions.get_mut(&id) {
        s.offline = user.offline;
    }
    ghost_account(state, id, user.account.clone());
}

impl Router {
    /// This node's name, in a cluster.
    pub fn node(&self) -> Option<&str> {
        self.port.node()
    }

    /// Makes the ghosts match a snapshot of the cluster's users (of node
    /// `only`, or of all other nodes); `announce`: local members are told
    /// what changed.
    pub fn reconcile(&self, users: Vec<UserRecord>, only: Option<&str>, announce: bool) {
        let Some(me) = self.node() else { return };
        let mut state = self.state.lock().unwrap();
        reconcile(&mut state, me, users, only, announce);
        remote::tell_orphaned(&mut state, &*self.port);
    }

    /// Every local user, keyed as the broker keys them, and the nicks
    /// being claimed.
    pub fn local_records(&self) -> Vec<(String, UserRecord)> {
        let state = self.state.lock().unwrap();
        self.records(&state)
    }

    fn records(&self, state: &State) -> Vec<(String, UserRecord)> {
        let Some(node) = self.port.node() else {
            return Vec::new();
        };
        let claims = state.claiming.iter().map(|(nick, account)| {
            let user = UserRecord {
                nick: nick.clone(),
                node: node.to_string(),
                account: account.clone(),
                away: None,
                rooms: Vec::new(),
                since: now_ms(),
                offline: false,
            };
            (key(nick), user)
        });
        state
            .sessions
            .values()
            .filter(|s| s.node.is_none())
            .map(|s| (key(&s.nick), record(node, s)))
            .chain(claims)
            .collect()
    }

    /// Queues a restatement of every local user for the publisher, taken
    /// under the lock so it is ordered with the changes around it; `false`
    /// if the queue is full.
    pub fn queue_sync(&self) -> bool {
        if self.port.node().is_none() {
            return true;
        }
        let state = self.state.lock().unwrap();
        let users = self.records(&state);
        self.port.tell(News::Sync { users })
    }

    /// Holds `nick` for a session of this node while the broker is asked
    /// for it (so a restatement meanwhile keeps it, and a second local
    /// session cannot claim it too).
    pub fn reserve_nick(&self, nick: &Nick, account: Option<&Nick>) -> Result<()> {
        let mut state = self.state.lock().unwrap();
        let local = state
            .nicks
            .get(nick)
            .and_then(|id| state.sessions.get(id))
            .is_some_and(|s| s.node.is_none());
        if local || state.claiming.contains_key(nick) {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        state.claiming.insert(nick.clone(), account.cloned());
        Ok(())
    }

    /// Ends [`reserve_nick`](Self::reserve_nick) (the session registered
    /// under it, or gave up).
    pub fn release_nick(&self, nick: &Nick) {
        self.state.lock().unwrap().claiming.remove(nick);
    }

    /// What the broker should hold for session `id` once it is called
    /// `nick` (for a claim or a rename).
    pub fn record_as(&self, id: SessionId, nick: &Nick) -> Option<UserRecord> {
        let node = self.port.node()?;
        let state = self.state.lock().unwrap();
        let mut user = record(node, state.sessions.get(&id)?);
        user.nick = nick.clone();
        Some(user)
    }

    /// Closes the local sessions whose nicks (keys) another node took.
    pub fn close_nicks(&self, keys: &[String]) {
        let state = self.state.lock().unwrap();
        for s in state.sessions.values().filter(|s| s.node.is_none()) {
            if keys.contains(&key(&s.nick)) {
                s.sink.close(
                    ErrorCode::NickTaken,
                    &format!(
                        "another server of the cluster gave the nick {} away while this one was out of touch; connect again",
                        s.nick
                    ),
                );
            }
        }
    }

    /// The rooms whose settings came from the store (those a re-read can
    /// set right).
    pub fn loaded_rooms(&self) -> Vec<RoomName> {
        let state = self.state.lock().unwrap();
        let loaded = state.rooms.iter().filter(|(_, r)| r.loaded);
        loaded.map(|(name, _)| name.clone()).collect()
    }

    /// Brings rooms' settings in line with the store's (read after every
    /// stream entry applied so far was committed), for changes another
    /// node made but could not announce; members hear each difference.
    pub fn reload_rooms(&self, rooms: Vec<(RoomName, RoomState)>) {
        let mut state = self.state.lock().unwrap();
        for (room, stored) in rooms {
            reload(&mut state, room, stored, &*self.port);
        }
    }

    /// Applies entries of the broker's stream, in order.
    pub fn apply_stream(&self, events: Vec<Received>) {
        let port = &*self.port;
        let Some(me) = port.node() else { return };
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        for received in events {
            let mine = received.event.node() == me;
            let Received {
                event,
                id,
                ts,
                target,
                away,
            } = received;
            match event {
                Event::Say {
                    session,
                    reference,
                    mut message,
                    ..
                } => {
                    (message.id, message.ts) = (id, ts);
                    // Only the sender's own node echoes it with its `ref`.
                    let (sender, reference) = if mine {
                        (session, reference)
                    } else {
                        (0, None)
                    };
                    self.stream_chat(state, message, sender, reference);
                }
                Event::Direct {
                    session,
                    reference,
                    mut message,
                    ..
                } => {
                    (message.id, message.ts) = (id, ts);
                    state.next_direct_id = state.next_direct_id.max(message.id);
                    state.last_direct_ts = state.last_direct_ts.max(message.ts);
                    // Delivered as any whisper: to its target if that is a
                    // user of this node, echoed to its sender if that is.
                    let target = (target.as_deref() == Some(me))
                        .then(|| state.nicks.get(&message.to).copied())
                        .flatten()
                        .filter(|t| state.sessions.get(t).is_some_and(|s| s.node.is_none()));
                    let away = away.map(|away| (message.to.clone(), away));
                    let (sender, reference) = if mine {
                        (session, reference)
                    } else {
                        (0, None)
                    };
                    remote::deliver_copies(state, &message, mine);
                    let direct = DirectEvent {
                        message,
                        sender,
                        target,
                        account: None,
                        reference,
                    };
                    deliver_direct_with(state, direct, away);
                }
                // This node made and announced it already; made again in
                // stream order (without a second announcement), so that
                // changes two nodes made at once end the same everywhere.
                Event::Room { room, change, .. } if mine => {
                    if let Some(r) = state.rooms.get_mut(&room) {
                        r.set(&change);
                    }
                }
                _ if mine => {}
                Event::User { user, change } => apply_user(state, user, change),
                Event::Room { room, change, .. } => stream_room(state, room, change, port),
                Event::Kick {
                    room,
                    nick,
                    by,
                    reason,
                    ..
                } => stream_kick(state, room, nick, (by, reason), port),
                Event::Invite { room, nick, by, .. } => stream_invite(state, room, nick, by),
                Event::Voice {
                    room,
                    nick,
                    by,
                    set,
                    ..
                } => stream_voice(state, room, nick, by, set),
                Event::Account { name, .. } => {
                    state.accounts.insert(name);
                }
                // The broker's reader reads the rooms from the store and
                // hands them to `reload_rooms`.
                Event::Reload { .. } => {}
                Event::Sync { node, users } => reconcile(state, me, users, Some(&node), true),
                Event::Lost { node } => {
                    node_lost(state, &node);
                    let held: Vec<Nick> = state.remote.keys().cloned().collect();
                    for account in held {
                        self.remote_devices(state, &node, account, 0);
                    }
                }
                Event::Device {
                    node,
                    account,
                    devices,
                } => self.remote_devices(state, &node, account, devices),
                Event::Act { node, account, act } => self.act_for(state, &node, &account, act),
                Event::Refused {
                    to,
                    account,
                    code,
                    message,
                    ..
                } if to == me => {
                    if let Some(s) =
                        remote::ghost_of(state, &account).and_then(|g| state.sessions.get(&g))
                    {
                        s.sink.push(Frame::error(code, message, None));
                    }
                }
                Event::Refused { .. } => {}
                Event::End {
                    account,
                    code,
                    message,
                    ..
                } => {
                    super::sessions::end_devices(state, port, &account, 0, code, &message);
                }
                Event::Read {
                    account, position, ..
                } => self.remote_read(state, &account, position),
                Event::Amend { amend, .. } => {
                    // Its requester is a session of another node.
                    let amend = crate::core::event::AmendEvent {
                        requester: 0,
                        reference: None,
                        ..amend
                    };
                    super::amend::apply_amend(state, amend, port, true);
                }
                Event::Typing {
                    place,
                    nick,
                    state: typing,
                    ..
                } => super::amend::deliver_typing(state, &place, &nick, typing),
            }
        }
        remote::tell_orphaned(state, port);
    }

    /// A room message numbered by the broker: the room's counters catch up
    /// and its members get it, as [`Router::apply`] delivers one.
    fn stream_chat(
        &self,
        state: &mut State,
        message: banter_protocol::ChatMessage,
        sender: SessionId,
        reference: Option<Ref>,
    ) {
        let r = state.rooms.entry(message.room.clone()).or_default();
        r.last_id = r.last_id.max(message.id);
        r.last_ts = r.last_ts.max(message.ts);
        let chat = ChatEvent {
            message,
            sender,
            reference,
        };
        deliver_chat(state, &self.config, chat);
    }
}

/// Another node changed a room's settings: made and announced here (and
/// kept to make again on the store's state if the room is not loaded yet).
fn stream_room(state: &mut State, room: RoomName, change: RoomChange, port: &dyn Port) {
    if let Some(r) = state.rooms.get_mut(&room)
        && !r.loaded
    {
        // Only the latest of each setting matters (so this stays small
        // however long the room is not loaded).
        r.replay.retain(|c| !supersedes(&change, c));
        r.replay.push(change.clone());
    }
    let event = RoomEvent {
        room,
        change,
        requester: None,
        reference: None,
    };
    apply_room_change(state, event, port, true);
}

/// Sets a loaded room's settings to what the store holds, as if each
/// difference had come through the stream: members hear it, and a ban
/// kicks this node's members it names. An ownership this node is claiming
/// is kept (its commit comes back by itself).
fn reload(state: &mut State, room: RoomName, stored: RoomState, port: &dyn Port) {
    let Some(r) = state.rooms.get_mut(&room).filter(|r| r.loaded) else {
        return;
    };
    let mut changes = Vec::new();
    if r.topic != stored.topic {
        match stored.topic {
            Some(topic) => changes.push(RoomChange::Topic(topic)),
            None => {
                r.topic = None;
                r.broadcast(
                    &Frame::new(ServerMessage::Topic {
                        room: room.clone(),
                        topic: None,
                    }),
                    None,
                );
            }
        }
    }
    if stored.owner != r.owner
        && !r.claiming
        && let Some(owner) = &stored.owner
    {
        changes.push(RoomChange::Role {
            account: owner.clone(),
            role: Some(Role::Owner),
        });
    }
    let (ops, gone): (Vec<_>, Vec<_>) = (
        stored
            .ops
            .iter()
            .filter(|a| !r.ops.contains(a))
            .cloned()
            .collect(),
        r.ops
            .iter()
            .filter(|a| !stored.ops.contains(a))
            .cloned()
            .collect(),
    );
    let role = |role| move |account| RoomChange::Role { account, role };
    changes.extend(ops.into_iter().map(role(Some(Role::Op))));
    changes.extend(gone.into_iter().map(role(None)));
    let same = |a: &BanInfo, b: &BanInfo| same_ban(a, b);
    let lifted: Vec<_> = r
        .bans
        .iter()
        .filter(|b| !stored.bans.iter().any(|s| same(s, b)))
        .map(|b| RoomChange::Ban {
            ban: b.clone(),
            set: false,
        })
        .collect();
    changes.extend(lifted);
    let set: Vec<_> = stored
        .bans
        .into_iter()
        .filter(|s| !r.bans.iter().any(|b| same(s, b)))
        .map(|ban| RoomChange::Ban { ban, set: true })
        .collect();
    changes.extend(set);
    if stored.modes != r.modes {
        let m = stored.modes;
        changes.push(RoomChange::Modes {
            change: ModeChange {
                invite_only: Some(m.invite_only),
                key: Some(m.key.unwrap_or_default()),
                limit: Some(m.limit.unwrap_or(0)),
                moderated: Some(m.moderated),
                secret: Some(m.secret),
                registered_only: Some(m.registered_only),
            },
            by: None,
        });
    }
    if !changes.is_empty() {
        debug!(%room, changes = changes.len(), "the store had changes the stream did not bring");
    }
    for change in changes {
        let event = RoomEvent {
            room: room.clone(),
            change,
            requester: None,
            reference: None,
        };
        apply_room_change(state, event, port, true);
    }
}

/// An operator on another node kicks a user of this one.
fn stream_kick(
    state: &mut State,
    room: RoomName,
    nick: Nick,
    (by, reason): (Nick, Option<String>),
    port: &dyn Port,
) {
    let State {
        sessions, rooms, ..
    } = state;
    let Some(r) = rooms.get_mut(&room) else {
        return;
    };
    let local = |m: &Member| {
        sessions
            .get(&m.session)
            .is_some_and(|s| s.nick == nick && s.node.is_none())
    };
    if let Some(pos) = r.members.iter().position(local) {
        kick_member(sessions, r, &room, pos, (by, reason), None, port);
    }
}

/// Another node's invitation: kept here if `nick` is a user of this node
/// (which gets `invite`); the room's operators here get `invited`.
fn stream_invite(state: &mut State, room: RoomName, nick: Nick, by: Nick) {
    let State {
        sessions,
        rooms,
        nicks,
        ..
    } = state;
    let local = nicks
        .get(&nick)
        .and_then(|id| Some((*id, sessions.get(id)?)))
        .filter(|(_, s)| s.node.is_none() && !s.rooms.contains(&room));
    // A room this node does not hold gets an entry only for an invitee
    // of this node (the invitation must wait there for its join).
    let r = match (local, rooms.contains_key(&room)) {
        (None, false) => return,
        _ => rooms.entry(room.clone()).or_default(),
    };
    if let Some((id, invitee)) = local {
        keep_invitation(r, id, &room, &by, &invitee.sink);
    }
    let invited = ServerMessage::Invited { room, nick, by };
    notify_operators(sessions, r, &invited, None);
}

/// Another node's voice given or taken: the member is marked here (its
/// own node lets it speak) and the room told.
fn stream_voice(state: &mut State, room: RoomName, nick: Nick, by: Nick, set: bool) {
    let State {
        sessions, rooms, ..
    } = state;
    let Some(r) = rooms.get_mut(&room) else {
        return;
    };
    let named = |m: &&mut Member| sessions.get(&m.session).is_some_and(|s| s.nick == nick);
    let Some(member) = r.members.iter_mut().find(named) else {
        return;
    };
    member.voiced = set;
    let event = ServerMessage::Voiced {
        room,
        nick,
        by,
        set,
    };
    r.broadcast(&Frame::new(event), None);
}

/// A node stopped renewing its lease: its users quit here.
fn node_lost(state: &mut State, node: &str) {
    let gone: Vec<SessionId> = state
        .sessions
        .iter()
        .filter(|(_, s)| s.node.as_deref() == Some(node))
        .map(|(&id, _)| id)
        .collect();
    debug!(%node, users = gone.len(), "a node is gone");
    for id in gone {
        ghost_quit(state, id, Some(NODE_LOST.into()), true);
    }
}

/// Whether room change `new` makes `old` moot (the same setting).
fn supersedes(new: &RoomChange, old: &RoomChange) -> bool {
    match (new, old) {
        (RoomChange::Topic(_), RoomChange::Topic(_)) => true,
        (RoomChange::Role { account: a, .. }, RoomChange::Role { account: b, .. }) => a == b,
        (RoomChange::Ban { ban: a, .. }, RoomChange::Ban { ban: b, .. }) => same_ban(a, b),
        _ => false,
    }
}

/// A change to a user of another node.
fn apply_user(state: &mut State, user: UserRecord, change: Change) {
    let node = user.node.as_str();
    let id = match &change {
        Change::Nick { old } => ghost(state, old, node),
        _ => ghost(state, &user.nick, node),
    };
    let Some(id) = id else {
        match change {
            // Gone already, or never known: nothing to undo.
            Change::Quit { .. } | Change::Part { .. } | Change::Kicked { .. } => {}
            _ => {
                evict_ghost(state, &user.nick);
                if state.nicks.contains_key(&user.nick) {
                    warn!(nick = %user.nick, %node, "the broker gives a local nick to another node; ignored");
                    return;
                }
                ghost_add(state, &user, true);
            }
        }
        return;
    };
    match change {
        Change::Online | Change::Login => ghost_account(state, id, user.account),
        Change::Join { room } => ghost_join(state, id, &room, true),
        Change::Part { room, reason } => {
            ghost_leave(state, id, &room, PresenceEvent::Part, reason, None, true)
        }
        Change::Kicked { room, by, reason } => ghost_leave(
            state,
            id,
            &room,
            PresenceEvent::Part,
            reason,
            Some(by),
            true,
        ),
        Change::Quit { reason } => ghost_quit(state, id, reason, true),
        Change::Nick { .. } => {
            // A ghost still holding the new nick is out of date, unless it
            // is this one (a change of case only).
            if state.nicks.get(&user.nick) != Some(&id) {
                evict_ghost(state, &user.nick);
            }
            ghost_rename(state, id, &user.nick);
        }
        Change::Away => {
            ghost_away(state, id, user.away);
            if let Some(s) = state.sessions.get_mut(&id) {
                s.offline = user.offline;
            }
        }
    }
}

impl Router {
    /// Whether a session of this node uses `nick`.
    pub fn nick_is_local(&self, nick: &Nick) -> bool {
        let state = self.state.lock().unwrap();
        state
            .nicks
            .get(nick)
            .and_then(|id| state.sessions.get(id))
            .is_some_and(|s| s.node.is_none())
    }

    /// The checks of a rename that need no broker: `nick` is not another
    /// local session's, nor an account's that session `id` is not in.
    pub fn check_nick(&self, id: SessionId, nick: &Nick) -> Result<()> {
        let state = self.state.lock().unwrap();
        if let Some(&holder) = state.nicks.get(nick)
            && holder != state.sessions.user_of(id)
            && state
                .sessions
                .get(&holder)
                .is_some_and(|s| s.node.is_none())
        {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        let session = state.session(id)?;
        if state.accounts.contains(nick) && session.account.as_ref() != Some(nick) {
            return Err(super::reserved(nick));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::{BanList, Topic};

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    #[test]
    fn only_the_latest_of_a_setting_is_replayed() {
        let topic = |t: &str| {
            RoomChange::Topic(Topic {
                text: t.into(),
                by: nick("a"),
                ts: 1,
            })
        };
        let role = |a: &str| RoomChange::Role {
            account: nick(a),
            role: None,
        };
        let ban = |n: &str, set| RoomChange::Ban {
            ban: BanInfo {
                nick: Some(nick(n)),
                account: None,
                mask: None,
                by: nick("a"),
                ts: 1,
                list: BanList::Ban,
            },
            set,
        };
        assert!(supersedes(&topic("x"), &topic("y")));
        assert!(supersedes(&role("bob"), &role("BOB")));
        assert!(!supersedes(&role("bob"), &role("carol")));
        assert!(supersedes(&ban("bob", false), &ban("bob", true)));
        assert!(!supersedes(&ban("bob", false), &ban("carol", true)));
        assert!(!supersedes(&topic("x"), &role("bob")));
    }
}
