//! An account's devices across the nodes of a cluster. Its user lives on
//! one node, its *home* (the node that holds its nick in the broker). A
//! login on another node becomes a device of that node's ghost of the
//! user: whatever the ghost receives there (its rooms' messages, presence,
//! whispers, the user's own changes as the stream tells them) goes to the
//! device. What only the home may do for the user (join, part, away) the
//! device asks of it with an [`Act`]; the home keeps the user while any
//! node has a device of it ([`Event::Device`](crate::core::cluster::Event)),
//! and a moved read position reaches every node's devices as `Read`.

use super::*;
pub(super) use crate::core::cluster::Act;
use crate::core::cluster::News;

/// How many connections of this node `s` has (a ghost's sink also holds
/// the shared discarding outbox).
pub(super) fn devices_here(s: &Connection) -> u32 {
    let all = s.sink.len() as u32;
    if s.node.is_some() { all - 1 } else { all }
}

/// The ghost of `account`'s user (a user of another node), if any.
pub(super) fn ghost_of(state: &State, account: &Nick) -> Option<SessionId> {
    // Only a cluster has ghosts (and this scans them).
    if state.nodes.is_empty() {
        return None;
    }
    state
        .sessions
        .iter()
        .find(|(_, s)| s.node.is_some() && s.account.as_ref() == Some(account))
        .map(|(&id, _)| id)
}

/// Tells the cluster how many devices of ghost `id`'s account this node
/// has now.
pub(super) fn publish_devices(port: &dyn Port, s: &Connection) {
    if let (Some(account), Some(_)) = (&s.account, &s.node) {
        port.tell(News::Device {
            account: account.clone(),
            devices: devices_here(s),
        });
    }
}

/// The cluster hears that this node has no devices left of the accounts
/// whose ghosts went with some (they were closed).
pub(super) fn tell_orphaned(state: &mut State, port: &dyn Port) {
    for account in std::mem::take(&mut state.orphaned) {
        port.tell(News::Device {
            account,
            devices: 0,
        });
    }
}

/// The devices of `account`'s user (living here, with none of its own
/// here) changed on other nodes: some left, it is back from offline; none
/// anywhere, it goes offline (always-on) or quits.
fn remote_changed(state: &mut State, port: &dyn Port, account: &Nick) {
    let Some(&user) = state.online.get(account) else {
        return;
    };
    let State {
        sessions,
        rooms,
        remote,
        ..
    } = state;
    let Some(session) = sessions.get_mut(&user) else {
        return;
    };
    if session.sink.len() > 0 {
        return;
    }
    if devices::remote_held(remote, account) {
        devices::back_online(session, rooms, port);
    } else if !session.always_on {
        sessions::remove_user(state, port, user, None);
    } else if !session.offline {
        devices::go_offline(session, rooms, port);
    }
}

/// A whisper from the stream reaches the devices here of users living
/// elsewhere: its target's, and (sent from another node) its sender's,
/// whose user may live here (then its devices here get the copy the
/// sender's node gave its own).
pub(super) fn deliver_copies(state: &State, message: &banter_protocol::DirectMessage, mine: bool) {
    // To oneself: the sender's echo (on its node) is every copy there is.
    if message.from == message.to {
        return;
    }
    let frame = Frame::new(ServerMessage::Direct(message.clone()));
    let user = |nick: &Nick| {
        let id = *state.nicks.get(nick)?;
        Some((id, state.sessions.get(&id)?))
    };
    let mut told = None;
    if let Some((id, s)) = user(&message.to)
        && s.node.is_some()
        && devices_here(s) > 0
    {
        s.sink.push(frame.clone());
        told = Some(id);
    }
    if !mine
        && let Some((id, s)) = user(&message.from)
        && told != Some(id)
        && (s.node.is_none() || devices_here(s) > 0)
    {
        s.sink.push(frame);
    }
}

impl Router {
    /// Whether connection `id` is a device of a user that lives on another
    /// node of the cluster.
    pub fn lives_elsewhere(&self, id: SessionId) -> bool {
        let state = self.state.lock().unwrap();
        state.sessions.get(&id).is_some_and(|s| s.node.is_some())
    }

    /// Rooms that the stream's `events` will put users of this node's
    /// devices in (a remote device's join made here, a ghost with devices
    /// here joining) and that are not loaded: the broker's reader loads
    /// them first, so that `joined` carries their history and topic.
    pub fn rooms_to_load(&self, events: &[crate::core::cluster::Received]) -> Vec<RoomName> {
        use crate::core::cluster::{Change, Event};
        let me = self.port.node().unwrap_or_default();
        let state = self.state.lock().unwrap();
        let mut wanted = Vec::new();
        for received in events {
            let room = match &received.event {
                Event::Act {
                    node,
                    account,
                    act: Act::Join { room, .. },
                } if node != me && state.online.contains_key(account) => room,
                Event::User {
                    user,
                    change: Change::Join { room },
                } if user.node != me
                    && state
                        .nicks
                        .get(&user.nick)
                        .and_then(|id| state.sessions.get(id))
                        .is_some_and(|s| s.node.is_some() && devices_here(s) > 0) =>
                {
                    room
                }
                _ => continue,
            };
            let loaded = state.rooms.get(room).is_some_and(|r| r.loaded);
            if !loaded && !wanted.contains(room) {
                wanted.push(room.clone());
            }
        }
        wanted
    }

    /// Whether connection `id` is a device of a user that lives on another
    /// node; if so, `act` is asked of that node (and `true`).
    pub(super) fn ask_home(&self, state: &State, id: SessionId, act: Act) -> bool {
        let Some(session) = state.sessions.get(&id) else {
            return false;
        };
        let (Some(_), Some(account)) = (&session.node, &session.account) else {
            return false;
        };
        self.port.tell(News::Act {
            account: account.clone(),
            act,
        });
        true
    }

    /// A device on node `from` of a user living here asks `act` of it;
    /// a refusal goes back to that node's devices.
    pub(super) fn act_for(&self, state: &mut State, from: &str, account: &Nick, act: Act) {
        let Some(&user) = state.online.get(account) else {
            return;
        };
        let done = match act {
            Act::Join { room, key } => {
                match self.join_in(state, user, room.clone(), key.as_deref(), None, false) {
                    Ok(Joined::NotLoaded) => Err(RouterError::new(
                        ErrorCode::ServerFull,
                        format!("{room} could not be loaded; try again in a moment"),
                    )),
                    other => other.map(|_| ()),
                }
            }
            Act::Part { room, reason } => self.part_in(state, user, room, reason, None),
            Act::Away { message } => self.away_in(state, user, message, None),
            Act::AlwaysOn { on } => {
                if let Some(session) = state.sessions.get_mut(&user) {
                    session.always_on = on;
                }
                Ok(())
            }
        };
        if let Err(e) = done {
            debug!(%account, error = %e, "a remote device's request was refused");
            self.port.tell(News::Refused {
                to: from.to_string(),
                account: account.clone(),
                code: e.code,
                message: e.message,
            });
        }
    }

    /// `node` has `devices` connections of `account`, whose user may live
    /// here.
    pub(super) fn remote_devices(
        &self,
        state: &mut State,
        node: &str,
        account: Nick,
        devices: u32,
    ) {
        let nodes = state.remote.entry(account.clone()).or_default();
        nodes.retain(|(n, _)| n != node);
        if devices > 0 {
            nodes.push((node.to_string(), devices));
        }
        if nodes.is_empty() {
            state.remote.remove(&account);
        }
        remote_changed(state, &*self.port, &account);
    }

    /// A read position moved on another node: this node's devices of the
    /// account hear it (and its copy moves, if newer).
    pub(super) fn remote_read(&self, state: &mut State, account: &Nick, position: ReadPosition) {
        let target = match (&position.room, &position.with) {
            (Some(room), _) => Conversation::Room(room.clone()),
            (None, Some(with)) => Conversation::With(with.clone()),
            (None, None) => return,
        };
        let mark = ReadMark {
            id: position.id,
            ts: position.ts,
        };
        if let Some(reads) = state.reads.get_mut(account) {
            let held = reads.marks.entry(target).or_default();
            if mark.id <= held.id {
                return;
            }
            *held = mark;
        }
        let user = state
            .online
            .get(account)
            .copied()
            .or_else(|| ghost_of(state, account));
        if let Some(s) = user.and_then(|u| state.sessions.get(&u)) {
            s.sink.push(Frame::new(ServerMessage::Read(position)));
        }
    }
}

use tracing::debug;
