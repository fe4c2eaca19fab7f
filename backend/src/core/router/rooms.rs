//! Joining and leaving rooms, loading them from the store, and topics.

use super::*;
use crate::core::model::LOBBY;

impl Router {
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

    /// Puts session `id` in `room` (it gets `joined`, the room hears it),
    /// unless the room must be loaded from the store first, or its bans or
    /// modes keep it out (`key`: the key it gave for `+k`).
    pub fn join(
        &self,
        id: SessionId,
        room: RoomName,
        key: Option<&str>,
        reference: Option<Ref>,
    ) -> Result<Joined> {
        self.join_as(id, room, key, reference, false)
    }

    /// Puts a logged-in account back in a room it was in (its stored
    /// memberships, at login): the room's `+i`, `+k` and `+l` do not keep
    /// a member out; a ban does.
    pub fn rejoin(&self, id: SessionId, room: RoomName) -> Result<Joined> {
        self.join_as(id, room, None, None, true)
    }

    fn join_as(
        &self,
        id: SessionId,
        room: RoomName,
        key: Option<&str>,
        reference: Option<Ref>,
        returning: bool,
    ) -> Result<Joined> {
        let mut guard = self.state.lock().unwrap();
        // A device of a user living on another node: that node joins it.
        let act = remote::Act::Join {
            room: room.clone(),
            key: key.map(str::to_string),
        };
        if self.ask_home(&guard, id, act) {
            return Ok(Joined::Joined);
        }
        self.join_in(&mut guard, id, room, key, reference, returning)
    }

    /// [`join`](Self::join) under the lock.
    pub(super) fn join_in(
        &self,
        guard: &mut State,
        id: SessionId,
        room: RoomName,
        key: Option<&str>,
        reference: Option<Ref>,
        returning: bool,
    ) -> Result<Joined> {
        let State {
            sessions,
            rooms,
            reads,
            ..
        } = &mut *guard;
        let user = sessions.user_of(id);
        let session = connection_mut(sessions, id)?;
        if session.rooms.contains(&room) {
            // Joining twice is harmless: answer with the room's state again.
            let read = read_of(reads, session, &Conversation::Room(room.clone()));
            let joined = rooms[&room].joined(sessions, &room, read, reference);
            sessions[&id].sink.answer(id, joined);
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
        // A server administrator gets into any room (to take it over).
        if !session.admin {
            if r.is_banned(&session.nick, session.account.as_ref()) {
                return Err(RouterError::new(
                    ErrorCode::Banned,
                    format!("you are banned from {room}"),
                ));
            }
            if !returning {
                r.admits(&room, (user, &session.nick), session.account.as_ref(), key)?;
            }
        }
        r.invited.retain(|&s| s != user);
        // A logged-in user who creates a room owns it, once that is stored;
        // the claim holds meanwhile, so nobody else claims it. Creating
        // means the room is brand new: a room with history, a topic, roles,
        // bans or members (`#lobby`) never gets an owner by joining. A port
        // too busy to take the claim leaves the room unowned.
        let claim = match &session.account {
            Some(account) if r.is_new() => Some(account.clone()),
            _ => None,
        };
        // Whoever opens a room nobody runs runs it while it stays (IRC's
        // channel creator), except the lobby everyone starts in.
        let creator = r.unrun() && room.as_str() != LOBBY;
        r.admit(&room, user, session, true);
        if creator {
            r.members.last_mut().expect("admitted").opped = true;
        }
        let read = read_of(reads, session, &Conversation::Room(room.clone()));
        let sink = session.sink.clone();
        sink.tell_with(
            id,
            |reference| r.joined(sessions, &room, read, reference),
            reference,
        );
        let roles = (claim.is_none() && r.owner.is_some() && !r.claiming)
            .then(|| Frame::new(r.roles(&room, sessions)));
        let session = sessions.get_mut(&id).expect("looked up above");
        if claim.is_some() {
            r.claiming = true;
        } else if let Some(roles) = roles {
            session.sink.push(roles);
        }
        enter(&mut session.rooms, &room);
        if let Some(account) = &session.account {
            self.port.remember(account, &room, true);
        }
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
            if self.change_room(guard, event).is_err() {
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
        let act = remote::Act::Part {
            room: room.clone(),
            reason: reason.clone(),
        };
        if self.ask_home(&guard, id, act) {
            return Ok(());
        }
        self.part_in(&mut guard, id, room, reason, reference)
    }

    /// [`part`](Self::part) under the lock (`reason` checked).
    pub(super) fn part_in(
        &self,
        state: &mut State,
        id: SessionId,
        room: RoomName,
        reason: Option<String>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let State {
            sessions, rooms, ..
        } = state;
        let user = sessions.user_of(id);
        let session = connection_mut(sessions, id)?;
        let Some(pos) = session.rooms.iter().position(|r| *r == room) else {
            return Err(outside(rooms, &room));
        };
        session.rooms.remove(pos);
        if let Some(account) = &session.account {
            self.port.remember(account, &room, false);
        }
        if let Some(r) = rooms.get_mut(&room) {
            r.members.retain(|m| m.session != user);
            r.broadcast(
                &Frame::new(ServerMessage::Presence {
                    room: room.clone(),
                    nick: session.nick.clone(),
                    event: PresenceEvent::Part,
                    new_nick: None,
                    reason: reason.clone(),
                    account: session.account.clone(),
                    realname: None,
                    bot: false,
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
        session
            .sink
            .tell(id, ServerMessage::Parted { room, reason }, reference);
        Ok(())
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
        let session = connection(sessions, id)?;
        let Some(text) = set else {
            // A room nobody is in has no topic to show (IRC's 403).
            if rooms.get(&room).is_none_or(|r| r.members.is_empty()) {
                return Err(outside(rooms, &room));
            }
            // A secret room's topic is its members' business.
            let topic = rooms
                .get(&room)
                .filter(|r| !r.modes.secret || session.rooms.contains(&room))
                .and_then(|r| r.topic.clone());
            session.sink.answer(
                id,
                Frame::with_ref(ServerMessage::Topic { room, topic }, reference),
            );
            return Ok(());
        };
        let (session, r) = member(sessions, rooms, id, &room)?;
        if r.owner.is_some() && !moderates(r, sessions, id) {
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
}
