//! Questions about the server: who is in a room, which rooms there are,
//! who someone is.

use super::*;
use crate::core::model::nick_matches;

/// What IRC's LUSERS counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lusers {
    /// Users (an account on several devices is one), on every node.
    pub users: usize,
    /// Connections of this node.
    pub connections: usize,
    /// Rooms with members.
    pub channels: usize,
    /// Users logged into a server administrator's account.
    pub operators: usize,
    /// Nodes of the cluster (1 alone).
    pub servers: usize,
}

impl Router {
    /// The counts IRC's LUSERS shows.
    pub fn lusers(&self) -> Lusers {
        let state = self.state.lock().unwrap();
        Lusers {
            users: state.sessions.values().count(),
            connections: state.sessions.connections(),
            channels: state
                .rooms
                .values()
                .filter(|r| !r.members.is_empty())
                .count(),
            operators: state.sessions.values().filter(|s| s.admin).count(),
            servers: 1 + state.nodes.len(),
        }
    }

    /// Answers with who is in `room` (empty if nobody is).
    pub fn members(&self, id: SessionId, room: RoomName, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let (mut members, mut away, mut users) = (Vec::new(), Vec::new(), Vec::new());
        // A secret room's members are its own business.
        let r = state
            .rooms
            .get(&room)
            .filter(|r| !r.modes.secret || session.rooms.contains(&room));
        let moderators = r.map_or_else(Vec::new, |r| r.moderators(&state.sessions));
        let voiced = r.map_or_else(Vec::new, |r| r.voiced(&state.sessions));
        for member in r.map_or(&[][..], |r| &r.members[..]) {
            let member = &state.sessions[&member.session];
            if member.away.is_some() {
                away.push(member.nick.clone());
            }
            members.push(member.nick.clone());
            users.push(member.info());
        }
        let answer = ServerMessage::Members {
            room,
            members,
            away,
            moderators,
            voiced,
            users,
            secret: r.is_some_and(|r| r.modes.secret),
        };
        session.sink.answer(id, Frame::with_ref(answer, reference));
        Ok(())
    }

    /// The rooms session `id` is in, with the time of each one's newest
    /// message (Unix ms; 0: none yet).
    pub fn room_times(&self, id: SessionId) -> Result<Vec<(RoomName, u64)>> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        Ok(session
            .rooms
            .iter()
            .map(|room| (room.clone(), state.rooms.get(room).map_or(0, |r| r.last_ts)))
            .collect())
    }

    /// Answers with every room that has members, by name.
    pub fn rooms(&self, id: SessionId, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let mut rooms: Vec<RoomInfo> = state
            .rooms
            .iter()
            .filter(|(name, r)| {
                !r.members.is_empty() && (!r.modes.secret || session.rooms.contains(name))
            })
            .map(|(name, r)| RoomInfo {
                room: name.clone(),
                members: r.members.len(),
                topic: r.topic.as_ref().map(|t| t.text.clone()),
            })
            .collect();
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        let answer = ServerMessage::Rooms { rooms };
        session.sink.answer(id, Frame::with_ref(answer, reference));
        Ok(())
    }

    /// Answers with what there is to know about `nick`.
    pub fn whois(&self, id: SessionId, nick: Nick, reference: Option<Ref>) -> Result<()> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let user = state.nicks.get(&nick).copied();
        let Some(target) = user.map(|t| &state.sessions[&t]) else {
            return Err(RouterError::new(
                ErrorCode::NoSuchNick,
                format!("nobody is using the nick {nick}"),
            ));
        };
        // Secret rooms show only to those in them too.
        let rooms = target
            .rooms
            .iter()
            .filter(|&room| {
                session.rooms.contains(room)
                    || !state.rooms.get(room).is_some_and(|r| r.modes.secret)
            })
            .cloned()
            .collect::<Vec<RoomName>>();
        let prefixes = rooms
            .iter()
            .map(|room| {
                let member = state
                    .rooms
                    .get(room)
                    .and_then(|r| Some((r, r.members.iter().find(|m| Some(m.session) == user)?)));
                let Some((r, member)) = member else {
                    return String::new();
                };
                let mut prefix = String::new();
                if r.shown_running(member, target.account.as_ref()) {
                    prefix.push('@');
                }
                if member.voiced {
                    prefix.push('+');
                }
                prefix
            })
            .collect();
        let answer = ServerMessage::Whois {
            nick: target.nick.clone(),
            prefixes,
            rooms,
            away: target.away.as_deref().map(str::to_string),
            idle_secs: now_ms().saturating_sub(target.last_said) / 1000,
            since: target.since,
            account: target.account.clone(),
            realname: target.profile.realname.as_deref().map(str::to_string),
            username: target.profile.username.as_deref().map(str::to_string),
            bot: target.profile.bot,
            oper: target.admin,
        };
        session.sink.answer(id, Frame::with_ref(answer, reference));
        Ok(())
    }

    /// Answers with the online users whose nick matches `mask`, among
    /// those sharing a room with session `id` and itself (IRC's WHO with
    /// a mask: everyone is invisible to strangers), at most
    /// [`MAX_USERS_QUERY`], by nick.
    pub fn who(&self, id: SessionId, mask: &str, reference: Option<Ref>) -> Result<()> {
        if mask.len() > 64 {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                "a mask is at most 64 bytes",
            ));
        }
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        let me = state.sessions.user_of(id);
        let mut seen = HashSet::new();
        let mut users: Vec<UserInfo> = std::iter::once(me)
            .chain(session.rooms.iter().flat_map(|room| {
                state
                    .rooms
                    .get(room)
                    .map_or(&[][..], |r| &r.members[..])
                    .iter()
                    .map(|m| m.session)
            }))
            .filter(|&user| seen.insert(user))
            .filter_map(|user| state.sessions.get(&user))
            .filter(|s| nick_matches(mask, &s.nick))
            .take(MAX_USERS_QUERY)
            .map(|s| s.info())
            .collect();
        users.sort_by(|a, b| a.nick.as_str().cmp(b.nick.as_str()));
        let answer = ServerMessage::Users { users };
        session.sink.answer(id, Frame::with_ref(answer, reference));
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
            .map(|t| state.sessions[t].info())
            .collect();
        let answer = ServerMessage::Users { users };
        session.sink.answer(id, Frame::with_ref(answer, reference));
        Ok(())
    }
}
