//! What a room's owner and operators may do: kick, ban (and except from
//! bans and from invite-only: `+e`, `+I`), and make or unmake operators.
//! Operators may act against each other, as on IRC; nobody but the owner
//! acts against the owner (it can't be kicked, banned or deopped), so an
//! operator can't take a room from its owner.

use super::*;
use crate::core::model::{MAX_LIST_ENTRIES, check_mask};

/// What an entry of `list` is called, for error messages.
fn entry_name(list: BanList) -> &'static str {
    match list {
        BanList::Ban => "ban",
        BanList::BanException => "ban exception",
        BanList::InviteException => "invite exception",
    }
}

impl Router {
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
        if !sessions[&id].admin {
            spare_owner(
                r,
                &room,
                sessions[&id].account.as_ref(),
                sessions[&r.members[pos].session].account.as_ref(),
            )?;
        }
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

    /// Sets (`set`) or lifts an entry of one of a room's lists: a ban, a
    /// ban exception or an invite exception (`list`), on a nick, an
    /// account or a mask (operators only). Once stored, the room gets
    /// `banned`; members a new ban matches (and no ban exception does) are
    /// kicked.
    #[allow(clippy::too_many_arguments)] // one per field of the request
    pub fn ban(
        &self,
        id: SessionId,
        (room, list): (RoomName, BanList),
        nick: Option<Nick>,
        account: Option<Nick>,
        mask: Option<String>,
        set: bool,
        reference: Option<Ref>,
    ) -> Result<()> {
        let named = [nick.is_some(), account.is_some(), mask.is_some()];
        if named.iter().filter(|&&n| n).count() != 1 {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                format!(
                    "each {} names one nick, account or mask (nick!user@host)",
                    entry_name(list)
                ),
            ));
        }
        if let Some(mask) = &mask {
            check_mask(mask).map_err(|m| RouterError::new(ErrorCode::BadRequest, m))?;
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
        let (by, r) = moderator(sessions, rooms, id, &room)?;
        let admin = sessions[&id].admin;
        if set
            && !admin
            && list.is_ban()
            && let Some(owner) = &r.owner
        {
            // No ban may match the owner: not its account, nor its account's
            // name or the nick of any of its sessions as a nick ban.
            let matches_owner = match (&nick, &account) {
                (_, Some(account)) => account == owner,
                (Some(nick), None) => {
                    nick == owner
                        || sessions
                            .values()
                            .any(|s| s.account.as_ref() == Some(owner) && &s.nick == nick)
                }
                (None, None) => false,
            };
            if matches_owner {
                return Err(owner_protected(&room, owner));
            }
        }
        let ban = BanInfo {
            nick,
            account,
            mask,
            by,
            ts: now_ms(),
            list,
        };
        let on_list = || r.bans.iter().filter(|b| b.list == list);
        if set && !on_list().any(|b| same_ban(b, &ban)) && on_list().count() >= MAX_LIST_ENTRIES {
            return Err(RouterError::new(
                ErrorCode::ListFull,
                format!(
                    "{room} has {MAX_LIST_ENTRIES} {}s, the most it may; lift one first",
                    entry_name(list)
                ),
            ));
        }
        let event = RoomEvent {
            room,
            change: RoomChange::Ban { ban, set },
            requester: Some(id),
            reference,
        };
        self.change_room(&mut guard, event)
    }

    /// Answers with a room's bans, or its ban or invite exceptions
    /// (`list`; members only).
    pub fn bans(
        &self,
        id: SessionId,
        room: RoomName,
        list: BanList,
        reference: Option<Ref>,
    ) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let bans = state.rooms[&room]
            .bans
            .iter()
            .filter(|b| b.list == list)
            .cloned()
            .collect();
        session.sink.answer(
            id,
            Frame::with_ref(ServerMessage::Bans { room, bans, list }, reference),
        );
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
        let (session, r) = member(sessions, rooms, id, &room)?;
        let mine = session.account.as_ref();
        // A server administrator acts as the owner would.
        let admin = session.admin;
        if !moderates(r, sessions, id) && mine != Some(&account) {
            return Err(not_operator(&room));
        }
        // A member named by its nick runs the room for this membership
        // (IRC's `+o`): a guest always; a logged-in member when whoever
        // asks runs the room only for its own membership, or when `-o`
        // takes that away. The rest is about accounts' stored roles.
        let named = r
            .members
            .iter()
            .position(|m| sessions.get(&m.session).is_some_and(|s| s.nick == account));
        let persistent = admin || r.is_operator(mine);
        if let Some(pos) = named {
            let target = &sessions[&r.members[pos].session];
            let stored = target
                .account
                .as_ref()
                .is_some_and(|a| r.is_operator(Some(a)));
            let by_membership = target.account.is_none()
                || (op && !persistent)
                || (!op && r.members[pos].opped && !stored);
            if by_membership {
                if !moderates(r, sessions, id) {
                    return Err(not_operator(&room));
                }
                r.members[pos].opped = op;
                let roles = r.roles(&room, sessions);
                r.broadcast(&Frame::new(roles.clone()), Some(sessions.user_of(id)));
                session.sink.tell(id, roles, reference);
                return Ok(());
            }
            if !op {
                r.members[pos].opped = false;
            }
        }
        let Some(account) = accounts.get(&account).cloned() else {
            return Err(RouterError::new(
                ErrorCode::NoSuchAccount,
                format!("there is no account {account}; operators need one"),
            ));
        };
        if !op && !r.is_owner(mine) && !admin && r.owner.as_ref() == Some(&account) {
            return Err(owner_protected(&room, &account));
        }
        let allowed = admin
            || if op {
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
}

impl Router {
    /// Gives `room` to `account` (the owner, or a server administrator);
    /// the owner before stays an operator. Once stored, the room gets
    /// `roles`.
    pub fn set_owner(
        &self,
        id: SessionId,
        room: RoomName,
        account: Nick,
        reference: Option<Ref>,
    ) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions,
            rooms,
            accounts,
            ..
        } = &mut *guard;
        let (session, r) = member(sessions, rooms, id, &room)?;
        if !session.admin && !r.is_owner(session.account.as_ref()) {
            return Err(RouterError::new(
                ErrorCode::NotOperator,
                format!("only the owner of {room} or a server administrator may give it away"),
            ));
        }
        let Some(account) = accounts.get(&account).cloned() else {
            return Err(RouterError::new(
                ErrorCode::NoSuchAccount,
                format!("there is no account {account}; an owner needs one"),
            ));
        };
        if r.owner.as_ref() == Some(&account) {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                format!("{account} owns {room} already"),
            ));
        }
        let before = r.owner.clone();
        if let Some(before) = before {
            let event = RoomEvent {
                room: room.clone(),
                change: RoomChange::Role {
                    account: before,
                    role: Some(Role::Op),
                },
                requester: None,
                reference: None,
            };
            self.change_room(&mut guard, event)?;
        }
        let event = RoomEvent {
            room,
            change: RoomChange::Role {
                account,
                role: Some(Role::Owner),
            },
            requester: Some(id),
            reference,
        };
        self.change_room(&mut guard, event)
    }
}

/// The nick of session `id` and its room, if it may moderate `room`.
pub(super) fn moderator<'a>(
    sessions: &Sessions,
    rooms: &'a mut HashMap<RoomName, Room>,
    id: SessionId,
    room: &RoomName,
) -> Result<(Nick, &'a mut Room)> {
    let (session, r) = member(sessions, rooms, id, room)?;
    if !moderates(r, sessions, id) {
        return Err(not_operator(room));
    }
    Ok((session.nick.clone(), r))
}

/// Refuses what `actor` would do to `target` if the target owns the room
/// and the actor does not: operators may act against operators (as on
/// IRC), never against the owner.
fn spare_owner(
    r: &Room,
    room: &RoomName,
    actor: Option<&Nick>,
    target: Option<&Nick>,
) -> Result<()> {
    match &r.owner {
        Some(owner) if r.is_owner(target) && !r.is_owner(actor) => {
            Err(owner_protected(room, owner))
        }
        _ => Ok(()),
    }
}

/// Tells the room (the kicked member included; the kicker's copy with
/// its `ref`) and removes member `pos`, kicked by whom and why.
pub(super) fn kick_member(
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
            r.broadcast(&Frame::new(event.clone()), Some(sessions.user_of(*kicker)));
            if let Some(s) = sessions.get(kicker) {
                s.sink.tell(*kicker, event, reference.clone());
            }
        }
        _ => r.broadcast(&Frame::new(event), None),
    }
    let member = r.members.remove(pos);
    if let Some(s) = sessions.get_mut(&member.session) {
        s.rooms.retain(|x| x != room);
        if let Some(account) = s.account.as_ref().filter(|_| s.node.is_none()) {
            port.remember(account, room, false);
        }
        cluster::publish_user(port, s, change);
    }
}
