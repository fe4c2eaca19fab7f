//! A room's modes (who gets in, who speaks, who sees it), invitations
//! and voices. Modes are a room change like a topic: stored, then
//! announced (`modes`), relayed in a cluster. Invitations and voices are
//! kept in memory only: an invitation lasts until the invited session
//! joins (or ends), a voice until its member leaves, as on IRC. In a
//! cluster both travel the broker's stream (see `cluster.rs`): the
//! invitee's node keeps an invitation, every node marks a voice.

use super::*;
use crate::core::model::valid_key;

/// Most invitations a room keeps waiting; past it the oldest is dropped.
const MAX_INVITED: usize = 100;

impl Room {
    /// Whether the session `id` (`nick`, logged into `account`) may join,
    /// given the key it gave: operators always may; an invitation passes
    /// `+i`, `+k` and `+l`, an invite exception (`+I`) only `+i`; `+R`
    /// wants an account. Bans are checked before.
    pub(super) fn admits(
        &self,
        room: &RoomName,
        (id, nick): (SessionId, &Nick),
        account: Option<&Nick>,
        key: Option<&str>,
    ) -> Result<()> {
        if self.is_operator(account) {
            return Ok(());
        }
        let invited = self.invited.contains(&id);
        let m = &self.modes;
        if m.registered_only && account.is_none() {
            return Err(RouterError::new(
                ErrorCode::AccountRequired,
                format!("{room} lets in only logged-in users (+R); log in first"),
            ));
        }
        if invited {
            return Ok(());
        }
        if m.invite_only && !self.listed(BanList::InviteException, nick, account) {
            return Err(RouterError::new(
                ErrorCode::InviteOnly,
                format!("{room} is invite-only (+i); ask one of its operators to invite you"),
            ));
        }
        if let Some(want) = &m.key
            && key != Some(want.as_str())
        {
            return Err(RouterError::new(
                ErrorCode::BadKey,
                format!("{room} has a key (+k); join with the right one"),
            ));
        }
        if let Some(limit) = m.limit
            && self.members.len() >= limit as usize
        {
            return Err(RouterError::new(
                ErrorCode::RoomFull,
                format!("{room} is full: it lets in {limit} members (+l)"),
            ));
        }
        Ok(())
    }

    /// Whether member `id` may say something: in a moderated room only
    /// operators and voiced members speak.
    pub(super) fn may_speak(
        &self,
        room: &RoomName,
        id: SessionId,
        account: Option<&Nick>,
    ) -> Result<()> {
        let voiced = || self.members.iter().any(|m| m.session == id && m.voiced);
        if self.modes.moderated && !self.is_operator(account) && !voiced() {
            return Err(RouterError::new(
                ErrorCode::Moderated,
                format!("{room} is moderated (+m): only voiced members and operators speak"),
            ));
        }
        Ok(())
    }

    /// The modes as a `member` (or not) sees them: others see the key as `*`.
    fn modes_for(&self, member: bool) -> RoomModes {
        let mut modes = self.modes.clone();
        if !member {
            modes.key = modes.key.map(|_| "*".to_string());
        }
        modes
    }
}

/// A room key: 1 to [`MAX_KEY_BYTES`] printable ASCII characters, no
/// space or comma (IRC separates keys with them), not starting with `:`.
fn check_key(key: &str) -> Result<()> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(RouterError::new(
            ErrorCode::BadRequest,
            format!(
                "a room key is 1 to {MAX_KEY_BYTES} printable ASCII characters, without spaces or commas"
            ),
        ))
    }
}

impl Router {
    /// Without `set`, answers with a room's modes (the key is shown to its
    /// members and to administrators only). With it, changes them: the
    /// room's owner and operators may, and server administrators; once
    /// stored the room gets
    /// `modes`. A room without an owner or operators (`lobby`) has its
    /// modes changed by administrators only.
    pub fn mode(
        &self,
        id: SessionId,
        room: RoomName,
        set: Option<ModeChange>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = connection(sessions, id)?;
        let member = session.rooms.contains(&room);
        let Some(change) = set else {
            let r = rooms.get(&room);
            let modes = r
                .map(|r| r.modes_for(member || session.admin))
                .unwrap_or_default();
            let modes = ServerMessage::Modes {
                room,
                modes,
                by: None,
                change: None,
                created: r.filter(|r| !r.members.is_empty()).map(|r| r.created),
            };
            session.sink.answer(id, Frame::with_ref(modes, reference));
            return Ok(());
        };
        if !member {
            return Err(outside(rooms, &room));
        }
        let r = &rooms[&room];
        if !moderates(r, sessions, id) {
            return Err(not_operator(&room));
        }
        if change.is_empty() {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                "name the modes to change in set",
            ));
        }
        if let Some(key) = change.key.as_deref().filter(|k| !k.is_empty()) {
            check_key(key)?;
        }
        let event = RoomEvent {
            room,
            change: RoomChange::Modes {
                change,
                by: Some(session.nick.clone()),
            },
            requester: Some(id),
            reference,
        };
        self.change_room(&mut guard, event)
    }

    /// Invites `nick` into `room` (a member may, but only operators into
    /// an invite-only room): `nick` gets `invite`, the inviter and the
    /// operators in the room get `invited`. The invitation lets `nick`'s
    /// session past `+i`, `+k` and `+l` once, until it joins.
    pub fn invite(
        &self,
        id: SessionId,
        room: RoomName,
        nick: Nick,
        reference: Option<Ref>,
    ) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions,
            rooms,
            nicks,
            ..
        } = &mut *guard;
        let (session, r) = member(sessions, rooms, id, &room)?;
        // Nobody by that name comes before the rights (IRC's 401, 482).
        let Some(&target) = nicks.get(&nick) else {
            return Err(RouterError::new(
                ErrorCode::NoSuchNick,
                format!("nobody is using the nick {nick}"),
            ));
        };
        if r.modes.invite_only && !moderates(r, sessions, id) {
            return Err(not_operator(&room));
        }
        let invitee = &sessions[&target];
        if invitee.rooms.contains(&room) {
            return Err(RouterError::new(
                ErrorCode::AlreadyInRoom,
                format!("{} is in {room} already", invitee.nick),
            ));
        }
        let (nick, by) = (invitee.nick.clone(), session.nick.clone());
        if invitee.node.is_none() {
            keep_invitation(r, target, &room, &by, &invitee.sink);
        }
        let invited = ServerMessage::Invited {
            room: room.clone(),
            nick: nick.clone(),
            by: by.clone(),
        };
        notify_operators(sessions, r, &invited, Some(sessions.user_of(id)));
        session.sink.tell(id, invited, reference);
        // A user of another node gets it from its node, which keeps it;
        // every node's operators in the room hear of it.
        cluster::publish_invite(&*self.port, room, nick, by);
        Ok(())
    }

    /// Gives member `nick` a voice in `room` (`set`), or takes it
    /// (operators only); the room gets `voiced`.
    pub fn voice(
        &self,
        id: SessionId,
        room: RoomName,
        nick: Nick,
        set: bool,
        reference: Option<Ref>,
    ) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let (by, r) = moderation::moderator(sessions, rooms, id, &room)?;
        let named = |m: &&mut Member| sessions.get(&m.session).is_some_and(|s| s.nick == nick);
        let Some(member) = r.members.iter_mut().find(named) else {
            return Err(RouterError::new(
                ErrorCode::NoSuchNick,
                format!("{nick} is not in {room}"),
            ));
        };
        let target = &sessions[&member.session];
        member.voiced = set;
        let nick = target.nick.clone();
        let event = ServerMessage::Voiced {
            room: room.clone(),
            nick: nick.clone(),
            by: by.clone(),
            set,
        };
        r.broadcast(&Frame::new(event.clone()), Some(sessions.user_of(id)));
        sessions[&id].sink.tell(id, event, reference);
        // Every node marks the member (its own node lets it speak).
        cluster::publish_voice(&*self.port, room, nick, by, set);
        Ok(())
    }
}

/// Keeps an invitation of local session `target` into `r` (the oldest
/// goes past [`MAX_INVITED`]) and tells it, invited by `by`.
pub(super) fn keep_invitation(
    r: &mut Room,
    target: SessionId,
    room: &RoomName,
    by: &Nick,
    sink: &Sink,
) {
    if !r.invited.contains(&target) {
        if r.invited.len() >= MAX_INVITED {
            r.invited.remove(0);
        }
        r.invited.push(target);
    }
    sink.push(Frame::new(ServerMessage::Invite {
        room: room.clone(),
        from: by.clone(),
    }));
}

/// Tells the room's operators present (but `except`) of an invitation
/// (IRC's invite-notify).
pub(super) fn notify_operators(
    sessions: &Sessions,
    r: &Room,
    invited: &ServerMessage,
    except: Option<SessionId>,
) {
    let shared = Frame::new(invited.clone());
    for m in &r.members {
        let operator = m.opped
            || sessions
                .get(&m.session)
                .is_some_and(|s| r.is_operator(s.account.as_ref()));
        if Some(m.session) != except && operator {
            m.sink.push(shared.clone());
        }
    }
}
