//! Changes to messages already sent (edit, delete, react), and typing.
//!
//! An amendment is an [`Event`] like a message: checked here against the
//! message when the room's recent history holds it, handed to the port
//! (the store checks it again against its row, which may be older than
//! memory), and applied when it takes effect: the history kept here is
//! updated and everyone in the room (or both sides of a direct
//! conversation) gets `edited`, `deleted` or `reaction`. Typing is never
//! stored: it is relayed at once, at most once every
//! [`TYPING_INTERVAL_MS`] per user and conversation.

use banter_protocol::{Reaction, TypingState};

use super::*;
use crate::core::event::{Actor, AmendEvent, Amended, Amendment};

/// At most one typing notice per user and conversation this often (a
/// `done` after a relayed state always goes through, to end it).
pub const TYPING_INTERVAL_MS: u64 = 3_000;
/// Conversations whose last typing notice a user remembers (the oldest
/// is forgotten first).
const TYPING_REMEMBERED: usize = 16;

/// Where someone types: a room, or to a nick.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Typed {
    Room(RoomName),
    To(Nick),
}

impl Router {
    /// Edits, deletes or reacts to message `message` of `room` (which the
    /// session must be in), or of the direct conversation `with` another
    /// account (logged in, with a store).
    pub fn amend(
        &self,
        id: SessionId,
        place: Conversation,
        message: u64,
        mut change: Amendment,
        reference: Option<Ref>,
    ) -> Result<()> {
        let now = now_ms();
        match &mut change {
            Amendment::Edit {
                text,
                ts,
                window_ms,
            } => {
                check_text(text, self.config.max_text_bytes)?;
                check_lines(text, self.config.max_lines)?;
                (*ts, *window_ms) = (now, self.config.edit_window_ms);
            }
            Amendment::React { reaction, ts, .. } => {
                banter_protocol::check_reaction(reaction)?;
                *ts = now;
            }
            Amendment::Delete { reason } => {
                if let Some(reason) = reason {
                    check_line(reason, MAX_REASON_BYTES, "reason")?;
                }
            }
        }
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let session = connection(&state.sessions, id)?;
        let mut by = Actor {
            nick: session.nick.clone(),
            account: session.account.clone(),
            since: session.named,
            moderator: false,
        };
        let (room, with) = match place {
            Conversation::Room(room) => {
                let (_, r) = member(&state.sessions, &mut state.rooms, id, &room)?;
                if message == 0 || message > r.last_id {
                    change.check(None, &by)?;
                }
                by.moderator = moderates(r, &state.sessions, id);
                let held = r.history.iter().map(chat).find(|m| m.id == message);
                match held {
                    Some(m) => change.check(Some(amended(m, &by, &change)), &by)?,
                    // Older than the history kept here: only a store knows.
                    None if !self.port.durable() => change.check(None, &by)?,
                    None => {}
                }
                (Some(room), None)
            }
            Conversation::With(with) => {
                if !self.port.durable() {
                    return Err(RouterError::new(
                        ErrorCode::Unsupported,
                        "this server keeps no direct history (it runs without a store)",
                    ));
                }
                (None, Some(with))
            }
        };
        let room_name = room.clone();
        let event = Event::Amend(AmendEvent {
            room,
            with,
            id: message,
            change,
            by,
            requester: id,
            reference,
        });
        match self.port.submit(event) {
            Taken::Now(event) => self.apply_event(state, event, true),
            Taken::Later => {
                if let Some(r) = room_name.and_then(|room| state.rooms.get_mut(&room)) {
                    r.pending += 1;
                }
            }
            Taken::Relayed => {}
            Taken::Refused(_, why) => return Err(refused(why)),
        }
        Ok(())
    }

    /// Relays that session `id` is typing in a room it is in, or to a
    /// nick; more often than [`TYPING_INTERVAL_MS`] is dropped silently
    /// (clients send it on every key).
    pub fn typing(&self, id: SessionId, place: Typed, typing: TypingState) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        let user = state.sessions.user_of(id);
        let session = connection(&state.sessions, id)?;
        match &place {
            Typed::Room(room) => {
                member(&state.sessions, &mut state.rooms, id, room)?;
            }
            Typed::To(nick) if !state.nicks.contains_key(nick) => {
                return Err(RouterError::new(
                    ErrorCode::NoSuchNick,
                    format!("nobody is using the nick {nick}"),
                ));
            }
            Typed::To(_) => {}
        }
        let nick = session.nick.clone();
        let now = now_ms();
        let Some(s) = state.sessions.get_mut(&user) else {
            return Ok(());
        };
        if !s.typing.relay(&place, typing, now) {
            return Ok(());
        }
        if self.port.node().is_some() {
            self.port.tell(crate::core::cluster::News::Typing {
                place: place.clone(),
                nick: nick.clone(),
                state: typing,
            });
        }
        deliver_typing(state, &place, &nick, typing);
        Ok(())
    }
}

/// Sends a typing notice to the room's members here (the typist's user
/// excluded), or to the nick's user if it has devices here.
pub(super) fn deliver_typing(state: &State, place: &Typed, nick: &Nick, typing: TypingState) {
    let from = state.nicks.get(nick).copied();
    match place {
        Typed::Room(room) => {
            if let Some(r) = state.rooms.get(room) {
                let frame = Frame::new(ServerMessage::Typing {
                    room: Some(room.clone()),
                    with: None,
                    nick: nick.clone(),
                    state: typing,
                });
                r.broadcast(&frame, from);
            }
        }
        Typed::To(to) => {
            if let Some(target) = state.nicks.get(to).and_then(|t| state.sessions.get(t))
                && Some(state.nicks[to]) != from
            {
                target.sink.push(Frame::new(ServerMessage::Typing {
                    room: None,
                    with: Some(nick.clone()),
                    nick: nick.clone(),
                    state: typing,
                }));
            }
        }
    }
}

/// What a user last relayed of its typing, per conversation (boxed when
/// first needed: every idle connection would carry an empty list).
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // one word in every connection, not three
pub(super) struct Typing(Option<Box<Vec<(Typed, u64, TypingState)>>>);

impl Typing {
    /// Whether a notice of `typing` in `place` at `now` goes out: not
    /// within [`TYPING_INTERVAL_MS`] of the last one there, unless it is
    /// the `done` that ends a state relayed.
    fn relay(&mut self, place: &Typed, typing: TypingState, now: u64) -> bool {
        let relayed = self.0.get_or_insert_default();
        let last = relayed.iter().position(|(p, ..)| p == place);
        let go = match last.map(|i| &relayed[i]) {
            None => typing != TypingState::Done,
            Some((_, _, before)) if typing == TypingState::Done => *before != TypingState::Done,
            Some((_, at, _)) => now.saturating_sub(*at) >= TYPING_INTERVAL_MS,
        };
        if go {
            if let Some(i) = last {
                relayed.remove(i);
            }
            if relayed.len() >= TYPING_REMEMBERED {
                relayed.remove(0);
            }
            relayed.push((place.clone(), now, typing));
        }
        go
    }
}

/// Checks a message's line count against the server's limit.
pub fn check_lines(text: &str, max_lines: usize) -> Result<()> {
    let lines = text.split('\n').count();
    if lines > max_lines {
        return Err(RouterError::new(
            ErrorCode::TooManyLines,
            format!("the message has {lines} lines; the limit is {max_lines}"),
        ));
    }
    Ok(())
}

/// What the rule of [`Amendment::check`] needs of a message held here,
/// for `change` by `by`.
fn amended<'a>(m: &'a ChatMessage, by: &Actor, change: &Amendment) -> Amended<'a> {
    let shown = by.shown();
    let mine = || {
        m.reactions
            .iter()
            .filter(|r| r.nicks.iter().any(|n| n == shown))
    };
    let reacted = match change {
        Amendment::React { reaction, .. } => mine().any(|r| &r.reaction == reaction),
        _ => false,
    };
    Amended {
        from: &m.from,
        account: m.account.as_ref(),
        ts: m.ts,
        deleted: m.deleted,
        reactions: mine().count(),
        reacted,
    }
}

/// Makes `change` to a message kept here: its new text, its tombstone,
/// or its reactions with `shown`'s added or taken back.
pub(super) fn amend_message(m: &mut ChatMessage, change: &Amendment, shown: &Nick) {
    match change {
        Amendment::Edit { text, ts, .. } => {
            m.text = text.clone();
            m.edited = Some(*ts);
        }
        Amendment::Delete { .. } => {
            m.text.clear();
            m.deleted = true;
            m.edited = None;
            m.reactions.clear();
        }
        Amendment::React {
            reaction, remove, ..
        } => amend_reactions(&mut m.reactions, reaction, shown, *remove),
    }
}

/// Adds `shown` to (or takes it from) `reaction`'s list in `reactions`.
pub fn amend_reactions(reactions: &mut Vec<Reaction>, reaction: &str, shown: &Nick, remove: bool) {
    let at = reactions.iter().position(|r| r.reaction == reaction);
    match (at, remove) {
        (Some(i), true) => {
            reactions[i].nicks.retain(|n| n != shown);
            if reactions[i].nicks.is_empty() {
                reactions.remove(i);
            }
        }
        (Some(i), false) => {
            if !reactions[i].nicks.contains(shown) {
                reactions[i].nicks.push(shown.clone());
            }
        }
        (None, true) => {}
        (None, false) => reactions.push(Reaction {
            reaction: reaction.to_string(),
            nicks: vec![shown.clone()],
        }),
    }
}

/// The frame everyone is sent of an amendment.
pub(super) fn amended_frame(event: &AmendEvent, with: Option<Nick>) -> ServerMessage {
    let (room, id) = (event.room.clone(), event.id);
    match &event.change {
        Amendment::Edit { text, ts, .. } => ServerMessage::Edited {
            room,
            with,
            id,
            text: text.clone(),
            nick: event.by.nick.clone(),
            ts: *ts,
        },
        Amendment::Delete { reason } => ServerMessage::Deleted {
            room,
            with,
            id,
            nick: event.by.nick.clone(),
            reason: reason.clone(),
        },
        Amendment::React {
            reaction, remove, ..
        } => ServerMessage::Reaction {
            room,
            with,
            id,
            reaction: reaction.clone(),
            nick: event.by.shown().clone(),
            account: event.by.account.clone(),
            remove: *remove,
        },
    }
}

/// Makes an amendment that took effect: the room's history here is
/// updated and its members told (the requester's copy with its `ref`);
/// for a direct message, both accounts' users here are told. In a
/// cluster, `port` tells the other nodes unless it came from them.
pub(super) fn apply_amend(
    state: &mut State,
    event: AmendEvent,
    port: &dyn Port,
    from_cluster: bool,
) {
    if !from_cluster && port.node().is_some() {
        port.tell(crate::core::cluster::News::Amend(event.clone()));
    }
    let requester = (event.requester != 0).then_some(event.requester);
    match &event.room {
        Some(room) => {
            let State {
                sessions, rooms, ..
            } = state;
            let Some(r) = rooms.get_mut(room) else {
                return;
            };
            let shown = event.by.shown().clone();
            if let Some(frame) = r.history.iter_mut().find(|f| chat(f).id == event.id) {
                let mut m = chat(frame).clone();
                amend_message(&mut m, &event.change, &shown);
                *frame = Frame::new(ServerMessage::Message(m));
            }
            let message = amended_frame(&event, None);
            let asker = requester.and_then(|id| Some((id, sessions.get(&id)?)));
            match asker {
                Some((id, session)) => {
                    let user = sessions.user_of(id);
                    r.broadcast(&Frame::new(message.clone()), Some(user));
                    session.sink.tell(id, message, event.reference.clone());
                }
                None => r.broadcast(&Frame::new(message), None),
            }
        }
        None => {
            let Some(with) = event.with.clone() else {
                return;
            };
            // Each side by its account (any nick it uses now), else its
            // nick; each is told with the other side's name.
            let me = event.by.shown().clone();
            let user = |name: &Nick| {
                state
                    .online
                    .get(name)
                    .or_else(|| state.nicks.get(name))
                    .copied()
            };
            let mine = user(&me);
            // A whisper to oneself has one side.
            let theirs = user(&with).filter(|&u| Some(u) != mine);
            for (user, other) in [(mine, &with), (theirs, &me)] {
                let Some(s) = user.and_then(|u| state.sessions.get(&u)) else {
                    continue;
                };
                let message = amended_frame(&event, Some(other.clone()));
                match requester.filter(|&r| Some(state.sessions.user_of(r)) == user) {
                    Some(origin) => s.sink.tell(origin, message, event.reference.clone()),
                    None => s.sink.push(Frame::new(message)),
                }
            }
        }
    }
}
