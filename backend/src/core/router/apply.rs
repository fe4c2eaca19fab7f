//! How an accepted event takes effect, whichever port returned it: a
//! message is delivered to its room (and kept in its recent history), a
//! whisper to its target and echoed to its sender, a room change made and
//! announced; an event its port could not make is reported to whoever
//! asked.

use super::*;
use crate::core::notify::Missed;

impl Router {
    /// Hands a room change to the port: made at once, or once the port
    /// gives it back (the room is kept meanwhile, see `Room::pending`);
    /// `busy` if the port has no room for it.
    pub(super) fn change_room(&self, state: &mut State, event: RoomEvent) -> Result<()> {
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

    /// Makes what the port gave back take effect (or tells the requesters
    /// it could not be made, and why), in the port's order: that is id
    /// order within each room, so every member sees one order. Called by
    /// the port's owner (the store's writer, after each commit).
    pub fn apply(&self, events: &mut Vec<Event>, verdict: Verdict) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        for event in events.drain(..) {
            let room = match &event {
                Event::Chat(chat) => Some(&chat.message.room),
                Event::Room(change) => Some(&change.room),
                Event::Amend(amend) => amend.room.as_ref(),
                Event::Direct(_) => None,
            };
            if let Some(r) = room.and_then(|room| state.rooms.get_mut(room)) {
                r.pending = r.pending.saturating_sub(1);
            }
            match &verdict {
                Verdict::Taken => self.apply_event(state, event, true),
                Verdict::Failed => self.apply_event(state, event, false),
                Verdict::Refused(code, why) => refuse(state, event, *code, why),
            }
        }
    }

    /// Makes one event take effect: delivers a message, makes and
    /// announces a room change; or, `taken == false`, tells the requester
    /// it could not be made.
    pub(super) fn apply_event(&self, state: &mut State, event: Event, taken: bool) {
        match event {
            Event::Chat(chat) if taken => deliver_chat(state, &self.config, chat),
            Event::Direct(direct) if taken => deliver_direct(state, direct),
            Event::Room(change) if taken => apply_room_change(state, change, &*self.port, false),
            Event::Room(change) => drop_room_change(state, change),
            Event::Amend(amend) if taken => {
                super::amend::apply_amend(state, amend, &*self.port, false)
            }
            Event::Amend(AmendEvent {
                requester,
                reference,
                ..
            }) => {
                if let Some(s) = state.sessions.get(&requester) {
                    s.sink.answer(requester, unsaved_change(reference));
                }
            }
            Event::Chat(ChatEvent {
                sender, reference, ..
            })
            | Event::Direct(DirectEvent {
                sender, reference, ..
            }) => {
                if let Some(s) = state.sessions.get(&sender) {
                    s.sink.answer(sender, unsaved(reference));
                }
            }
        }
    }
}

/// Tells the requester of `event` that the port refused it, and why.
fn refuse(state: &mut State, event: Event, code: ErrorCode, why: &str) {
    let (requester, reference) = match event {
        Event::Chat(c) => (Some(c.sender), c.reference),
        Event::Direct(d) => (Some(d.sender), d.reference),
        Event::Amend(a) => (Some(a.requester), a.reference),
        Event::Room(r) => {
            let requester = r.requester;
            let reference = r.reference.clone();
            drop_room_change(state, r);
            (requester, reference)
        }
    };
    if let Some(id) = requester
        && let Some(s) = state.sessions.get(&id)
    {
        s.sink.answer(id, Frame::error(code, why, reference));
    }
}

/// Makes a room change that the store has committed (or, without a
/// store, at once): updates the room and tells its members, the
/// requester's copy with its `ref` (the requester gets it even if it left
/// the room meanwhile). A ban also kicks the members it matches.
/// In a cluster, `port` tells the other nodes of the kicks a ban causes,
/// and of the change itself unless it came from them (`from_cluster`).
pub(super) fn apply_room_change(
    state: &mut State,
    write: RoomEvent,
    port: &dyn Port,
    from_cluster: bool,
) {
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
        RoomChange::Modes { change, by } => ServerMessage::Modes {
            room: room.clone(),
            modes: r.modes.clone(),
            by: by.clone(),
            change: Some(change.clone()),
            created: None,
        },
    };
    let asker = requester.and_then(|id| Some((id, sessions.get(&id)?)));
    let requester = requester.map(|id| sessions.user_of(id));
    match asker {
        Some((id, session)) => {
            r.broadcast(&Frame::new(event.clone()), requester);
            session.sink.tell(id, event, reference);
        }
        None => r.broadcast(&Frame::new(event), None),
    }
    if let RoomChange::Ban { ban, set: true } = change
        && ban.list.is_ban()
    {
        // Only this node's members: a ghost is kicked by its own node,
        // which tells the cluster. A ban exception (`+e`) spares whom it
        // matches.
        while let Some(pos) = r.members.iter().position(|m| {
            Some(m.session) != requester
                && sessions.get(&m.session).is_some_and(|s| {
                    let account = s.account.as_ref();
                    s.node.is_none()
                        && !r.is_owner(account)
                        && entry_matches(&ban, &s.nick, account)
                        && !r.listed(BanList::BanException, &s.nick, account)
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
pub(super) fn drop_room_change(state: &mut State, write: RoomEvent) {
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
    if let Some(id) = write.requester
        && let Some(s) = state.sessions.get(&id)
    {
        s.sink.answer(id, unsaved_change(write.reference));
    }
}

/// Sends a message to its room's members (the sender's copy with its
/// `ref`) and keeps it in the room's recent history.
pub(super) fn deliver_chat(state: &mut State, config: &RouterConfig, write: ChatEvent) {
    let ChatEvent {
        message,
        sender,
        reference,
    } = write;
    let user = state.sessions.user_of(sender);
    let Some(r) = state.rooms.get_mut(&message.room) else {
        return;
    };
    // Members here with no device connected (always-on accounts) miss it.
    if let Some(notify) = &state.notify {
        for m in r
            .members
            .iter()
            .filter(|m| m.session != user && m.sink.len() == 0)
        {
            if let Some(s) = state.sessions.get(&m.session)
                && s.node.is_none()
                && let Some(account) = s.account.as_ref().filter(|a| notify.wants(a))
            {
                notify.missed(Missed {
                    account: account.clone(),
                    room: Some(message.room.clone()),
                    from: message.from.clone(),
                    from_account: message.account.clone(),
                    text: message.text.clone(),
                    id: message.id,
                });
            }
        }
    }
    // The sender's copy differs only when it must carry a `ref`; the
    // sender's other devices get the shared one.
    let own = reference
        .map(|reference| Frame::with_ref(ServerMessage::Message(message.clone()), Some(reference)));
    let shared = Frame::new(ServerMessage::Message(message));
    match own {
        Some(own) => {
            r.broadcast(&shared, Some(user));
            if let Some(member) = r.members.iter().find(|m| m.session == user) {
                member.sink.answer(sender, own);
                member.sink.push_except(sender, &shared);
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
pub(super) fn deliver_direct(state: &mut State, direct: DirectEvent) {
    // To an account with no device connected: it waits, and is missed.
    if let (None, Some(account), Some(notify)) = (direct.target, &direct.account, &state.notify)
        && !direct.message.notice
        && notify.wants(account)
    {
        notify.missed(Missed {
            account: account.clone(),
            room: None,
            from: direct.message.from.clone(),
            from_account: direct.message.account.clone(),
            text: direct.message.text.clone(),
            id: direct.message.id,
        });
    }
    let away = direct
        .target
        .and_then(|t| state.sessions.get(&t))
        .and_then(|s| Some((s.nick.clone(), s.away.as_deref()?.to_string())));
    deliver_direct_with(state, direct, away);
}

/// Sends a direct message to its target's session (if there is one here,
/// and it is not the sender's) and echoes it to the sender (if that is a
/// session here), followed by the target's away message (`away`: the
/// target's nick and text) unless it is a notice: a notice is never
/// answered. Whispers from a cluster's stream come this way too, with the
/// away message the broker saw.
pub(super) fn deliver_direct_with(
    state: &State,
    direct: DirectEvent,
    away: Option<(Nick, String)>,
) {
    let DirectEvent {
        message,
        sender,
        target,
        reference,
        ..
    } = direct;
    let user = state.sessions.user_of(sender);
    if let Some(t) = target.filter(|&t| state.sessions.user_of(t) != user)
        && let Some(session) = state.sessions.get(&t)
    {
        session
            .sink
            .push(Frame::new(ServerMessage::Direct(message.clone())));
    }
    let Some(from) = state.sessions.get(&sender) else {
        return;
    };
    // The target's away message first: the echo may render as nothing
    // (IRC without echo-message), and a labeled command's answer is the
    // first frame with its ref.
    let away = away.filter(|_| !message.notice);
    if let Some((nick, away)) = away {
        from.sink.answer(
            sender,
            Frame::with_ref(
                ServerMessage::Away {
                    nick,
                    message: Some(away),
                },
                reference.clone(),
            ),
        );
    }
    from.sink
        .tell(sender, ServerMessage::Direct(message), reference);
}

pub(super) fn unsaved(reference: Option<Ref>) -> Frame {
    Frame::error(
        ErrorCode::Internal,
        "your message could not be saved, so it was not delivered; try again",
        reference,
    )
}

pub(super) fn unsaved_change(reference: Option<Ref>) -> Frame {
    Frame::error(
        ErrorCode::Internal,
        "that change could not be saved, so it was not made; try again",
        reference,
    )
}
