//! An account's devices: every connection logged into one account is the
//! same user (one nick, one member of each room, one away message), and
//! what the user is sent goes to each of its connections.
//!
//! The router keeps a user under the id of its first connection; the ids
//! of the others map to it ([`Sessions::user_of`]), so a request from any
//! device acts as the user. A [`Sink`] is where the user's frames go: one
//! outbox (a guest, or an account on one device: the common case costs
//! nothing) or several. A reply with a `ref` goes to the device that asked
//! only; the user's other devices get the same change without it.

use super::*;

/// The outboxes of a user's connections, each with its session id.
#[derive(Clone, Debug)]
pub(super) enum Sink {
    /// No device: an always-on account offline (see `Router::keep_offline`).
    None,
    One(SessionId, Arc<Outbox>),
    Many(Arc<[(SessionId, Arc<Outbox>)]>),
}

impl Sink {
    /// Something the user is sent: to every device.
    pub fn push(&self, frame: Frame) {
        match self {
            Sink::None => {}
            Sink::One(_, outbox) => {
                outbox.push(frame);
            }
            Sink::Many(all) => {
                for (_, outbox) in all.iter() {
                    outbox.push(frame.clone());
                }
            }
        }
    }

    /// The answer to a request of device `origin` (a query, an error): to
    /// it only.
    pub fn answer(&self, origin: SessionId, frame: Frame) {
        if let Some(outbox) = self.outbox(origin) {
            outbox.push(frame);
        }
    }

    /// A change the user made from device `origin`: that device gets it
    /// with the request's `ref`, the others without.
    pub fn tell(&self, origin: SessionId, message: ServerMessage, reference: Option<Ref>) {
        self.tell_with(origin, |r| Frame::with_ref(message.clone(), r), reference);
    }

    /// [`tell`](Self::tell) of a frame that `make` builds for a `ref` (once
    /// per kind: with it for `origin`, without for the others).
    pub fn tell_with(
        &self,
        origin: SessionId,
        make: impl Fn(Option<Ref>) -> Frame,
        reference: Option<Ref>,
    ) {
        match self {
            Sink::None => {}
            Sink::One(id, outbox) if *id == origin || reference.is_none() => {
                outbox.push(make(reference));
            }
            Sink::One(_, outbox) => {
                outbox.push(make(None));
            }
            Sink::Many(all) => {
                let plain = make(None);
                for (id, outbox) in all.iter() {
                    if *id == origin && reference.is_some() {
                        outbox.push(make(reference.clone()));
                    } else {
                        outbox.push(plain.clone());
                    }
                }
            }
        }
    }

    /// To every device but `origin` (which has had its own copy).
    pub fn push_except(&self, origin: SessionId, frame: &Frame) {
        for (id, outbox) in self.iter() {
            if id != origin {
                outbox.push(frame.clone());
            }
        }
    }

    /// Asks every device to close.
    pub fn close(&self, code: ErrorCode, message: &str) {
        for (_, outbox) in self.iter() {
            outbox.close(code, message);
        }
    }

    /// Device `id`'s outbox.
    pub fn outbox(&self, id: SessionId) -> Option<&Arc<Outbox>> {
        self.iter().find(|(d, _)| *d == id).map(|(_, o)| o)
    }

    pub fn iter(&self) -> impl Iterator<Item = (SessionId, &Arc<Outbox>)> {
        let (one, many) = match self {
            Sink::None => (None, &[][..]),
            Sink::One(id, outbox) => (Some((*id, outbox)), &[][..]),
            Sink::Many(all) => (None, &all[..]),
        };
        one.into_iter()
            .chain(many.iter().map(|(id, outbox)| (*id, outbox)))
    }

    pub fn len(&self) -> usize {
        match self {
            Sink::None => 0,
            Sink::One(..) => 1,
            Sink::Many(all) => all.len(),
        }
    }

    /// This sink with device `id` added.
    pub fn with(&self, id: SessionId, outbox: Arc<Outbox>) -> Sink {
        if let Sink::None = self {
            return Sink::One(id, outbox);
        }
        let mut all: Vec<_> = self.iter().map(|(d, o)| (d, o.clone())).collect();
        all.push((id, outbox));
        Sink::Many(all.into())
    }

    /// This sink without device `id`; `None` if it was the last.
    pub fn without(&self, id: SessionId) -> Option<Sink> {
        let mut rest: Vec<_> = self
            .iter()
            .filter(|(d, _)| *d != id)
            .map(|(d, o)| (d, o.clone()))
            .collect();
        match rest.len() {
            0 => None,
            1 => {
                let (d, o) = rest.pop().expect("one left");
                Some(Sink::One(d, o))
            }
            _ => Some(Sink::Many(rest.into())),
        }
    }
}

/// The users this router knows (its sessions' and, in a cluster, other
/// nodes'), by the id of their first connection, and the other
/// connections' ids mapped to their user.
#[derive(Default)]
pub(super) struct Sessions {
    users: HashMap<SessionId, Box<Connection>>,
    devices: HashMap<SessionId, SessionId>,
    /// Every device of every user.
    connections: usize,
}

impl Sessions {
    /// The user that connection `id` is (its own id, for a first one).
    pub fn user_of(&self, id: SessionId) -> SessionId {
        self.devices.get(&id).copied().unwrap_or(id)
    }

    pub fn get(&self, id: &SessionId) -> Option<&Connection> {
        self.users.get(&self.user_of(*id)).map(|s| &**s)
    }

    pub fn get_mut(&mut self, id: &SessionId) -> Option<&mut Connection> {
        let user = self.user_of(*id);
        self.users.get_mut(&user).map(|s| &mut **s)
    }

    pub fn contains_key(&self, id: &SessionId) -> bool {
        self.users.contains_key(&self.user_of(*id))
    }

    /// A new user, under its first connection's id.
    pub fn insert(&mut self, id: SessionId, session: Box<Connection>) {
        self.connections += session.sink.len();
        self.users.insert(id, session);
    }

    /// Removes user `id` (and forgets its devices' ids).
    pub fn remove(&mut self, id: &SessionId) -> Option<Box<Connection>> {
        let user = self.user_of(*id);
        let session = self.users.remove(&user)?;
        self.connections -= session.sink.len();
        for (device, _) in session.sink.iter() {
            self.devices.remove(&device);
        }
        Some(session)
    }

    /// Connection `device` is user `user` too.
    pub fn add_device(&mut self, device: SessionId, user: SessionId) {
        self.devices.insert(device, user);
        self.connections += 1;
    }

    /// Connection `device` of a user that has others is gone.
    pub fn forget_device(&mut self, device: SessionId) {
        self.devices.remove(&device);
        self.connections -= 1;
    }

    /// Users, with the id each is kept under.
    pub fn iter(&self) -> impl Iterator<Item = (&SessionId, &Connection)> {
        self.users.iter().map(|(id, s)| (id, &**s))
    }

    pub fn values(&self) -> impl Iterator<Item = &Connection> {
        self.users.values().map(|s| &**s)
    }

    /// Connections: every device of every user.
    pub fn connections(&self) -> usize {
        self.connections
    }
}

impl std::ops::Index<&SessionId> for Sessions {
    type Output = Connection;
    fn index(&self, id: &SessionId) -> &Connection {
        self.get(id).expect("a known session")
    }
}

impl Router {
    /// Connection `outbox` logs into the account of `user`, online here:
    /// it is one more device of that user. It gets `first` (its welcome
    /// naming the user's nick), then the user's rooms as `joined` and its
    /// away message; nobody else hears of it.
    pub(super) fn add_device(
        &self,
        state: &mut State,
        user: SessionId,
        outbox: Arc<Outbox>,
        first: Vec<ServerMessage>,
        reference: Option<Ref>,
    ) -> Result<SessionId> {
        let State {
            sessions,
            rooms,
            reads,
            next_session,
            offline,
            ..
        } = state;
        let session = &sessions[&user];
        if session.sink.len() >= self.config.max_devices {
            return Err(RouterError::new(
                ErrorCode::TooManyDevices,
                format!(
                    "{} devices are logged into this account already, the most allowed; \
                     sign out on one of them first",
                    session.sink.len()
                ),
            ));
        }
        *next_session += 1;
        let id = *next_session;
        if session.sink.len() == 0 {
            *offline -= 1;
            // Back before the replay: the new device hears no away it
            // ends at once.
            if let Some(session) = sessions.get_mut(&user) {
                back_online(session, rooms, &*self.port);
            }
        }
        let session = &sessions[&user];
        for mut message in first {
            if let ServerMessage::Welcome { nick, .. } = &mut message {
                *nick = session.nick.clone();
            }
            outbox.push(Frame::with_ref(message, reference.clone()));
        }
        for room in &session.rooms {
            let r = &rooms[room];
            let read = read_of(reads, session, &Conversation::Room(room.clone()));
            outbox.push(r.joined(sessions, room, read, None));
            if r.owner.is_some() && !r.claiming {
                outbox.push(Frame::new(r.roles(room, sessions)));
            }
        }
        // (An always-on user offline everywhere is about to come back.)
        if let Some(away) = session.away.as_ref().filter(|_| !session.offline) {
            outbox.push(Frame::new(ServerMessage::Away {
                nick: session.nick.clone(),
                message: Some(away.to_string()),
            }));
        }
        let sink = session.sink.with(id, outbox);
        set_sink(sessions, rooms, user, sink);
        sessions.add_device(id, user);
        Ok(id)
    }

    /// Connection `id` goes: if its user has other devices, only this one
    /// leaves (`true`); else the caller removes the user.
    pub(super) fn remove_device(&self, state: &mut State, id: SessionId) -> bool {
        let State {
            sessions, rooms, ..
        } = state;
        let user = sessions.user_of(id);
        let Some(session) = sessions.get(&user) else {
            return false;
        };
        if session.sink.outbox(id).is_none() {
            // Not a device of it (a connection that never registered).
            return true;
        }
        let Some(sink) = session.sink.without(id) else {
            return false;
        };
        set_sink(sessions, rooms, user, sink);
        sessions.forget_device(id);
        // A device of a user living on another node: its home hears.
        remote::publish_devices(&*self.port, &sessions[&user]);
        true
    }
}

impl Router {
    /// The last device of user `id` went: an always-on account stays in
    /// its rooms with no device (`true`), away unless it was already;
    /// whispers to it wait. Else (`false`) the caller removes the user.
    pub(super) fn keep_offline(&self, state: &mut State, id: SessionId) -> bool {
        let State {
            sessions,
            rooms,
            offline,
            remote,
            ..
        } = state;
        let user = sessions.user_of(id);
        let Some(session) = sessions.get_mut(&user) else {
            return false;
        };
        // In a cluster, a user whose devices on other nodes remain stays,
        // with none here, and nobody notices.
        if let Some(account) = &session.account
            && self.port.node().is_some()
            && session.node.is_none()
            && remote_held(remote, account)
        {
            sessions.forget_device(id);
            *offline += 1;
            set_sink(sessions, rooms, user, Sink::None);
            return true;
        }
        if *offline >= self.config.max_offline {
            return false;
        }
        if !session.always_on
            || session.account.is_none()
            || session.node.is_some()
            || !self.port.durable()
        {
            return false;
        }
        sessions.forget_device(id);
        *offline += 1;
        set_sink(sessions, rooms, user, Sink::None);
        let session = sessions.get_mut(&user).expect("looked up above");
        go_offline(session, rooms, &*self.port);
        true
    }
}

impl Router {
    /// Whether connection `id` is its user's first (a new user, not one
    /// more device of a user already here).
    pub fn is_first_device(&self, id: SessionId) -> bool {
        self.state.lock().unwrap().sessions.user_of(id) == id
    }

    /// An always-on account, restored as the server starts: in `rooms`
    /// (those loaded here), with no device, away. `false` if its nick is
    /// in use already.
    pub fn restore(&self, account: Nick, rooms: Vec<RoomName>) -> bool {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        if state.online.contains_key(&account)
            || state.nicks.contains_key(&account)
            || state.offline >= self.config.max_offline
        {
            return false;
        }
        state.offline += 1;
        state.next_session += 1;
        let id = state.next_session;
        let now = now_ms();
        let mut session = Box::new(Connection {
            nick: account.clone(),
            account: Some(account.clone()),
            sink: Sink::None,
            rooms: Vec::new(),
            away: Some(OFFLINE.into()),
            since: now,
            named: now,
            last_said: now,
            node: None,
            admin: false,
            always_on: true,
            auto_away: true,
            offline: true,
            profile: Profile::default(),
            typing: Default::default(),
        });
        for room in rooms {
            if let Some(r) = state.rooms.get_mut(&room)
                && r.loaded
                && !session.rooms.contains(&room)
                && session.rooms.len() < self.config.max_rooms_per_session
            {
                if r.is_banned(&account, Some(&account)) {
                    // Banned while away: the membership goes.
                    self.port.remember(&account, &room, false);
                    continue;
                }
                r.admit(&room, id, &session, false);
                enter(&mut session.rooms, &room);
            }
        }
        state.nicks.insert(account.clone(), id);
        state.watches.seen(&state.sessions, &account, true);
        state.online.insert(account, id);
        state.sessions.insert(id, session);
        true
    }
}

/// Whether another node has devices of `account` (see `remote`).
pub(super) fn remote_held(remote: &HashMap<Nick, Vec<(String, u32)>>, account: &Nick) -> bool {
    remote
        .get(account)
        .is_some_and(|nodes| nodes.iter().any(|(_, n)| *n > 0))
}

/// The away message of an always-on account with no device connected.
pub const OFFLINE: &str = "offline (always-on: whispers wait for the next login)";

/// An always-on account has no device connected anywhere: away (unless
/// it was already), and (in a cluster) its whispers wait.
pub(super) fn go_offline(
    session: &mut Connection,
    rooms: &HashMap<RoomName, Room>,
    port: &dyn Port,
) {
    session.offline = true;
    if session.away.is_none() {
        session.away = Some(OFFLINE.into());
        session.auto_away = true;
        announce_away(session, rooms, port);
    } else {
        cluster::publish_user(port, session, Change::Away);
    }
}

/// An always-on account offline gets a device (here, or on another node
/// of a cluster): back from its automatic away.
pub(super) fn back_online(
    session: &mut Connection,
    rooms: &HashMap<RoomName, Room>,
    port: &dyn Port,
) {
    if !std::mem::take(&mut session.offline) {
        return;
    }
    if std::mem::take(&mut session.auto_away) {
        session.away = None;
        announce_away(session, rooms, port);
    } else {
        cluster::publish_user(port, session, Change::Away);
    }
}

/// Tells everyone sharing a room with `session` (and the cluster) its
/// away message as it now is.
fn announce_away(session: &Connection, rooms: &HashMap<RoomName, Room>, port: &dyn Port) {
    cluster::publish_user(port, session, Change::Away);
    let frame = Frame::new(ServerMessage::Away {
        nick: session.nick.clone(),
        message: session.away.as_deref().map(str::to_string),
    });
    tell_room_mates(rooms, &session.rooms, &frame, &mut HashSet::new());
}

/// Gives user `user` (and its memberships) the devices of `sink`.
fn set_sink(
    sessions: &mut Sessions,
    rooms: &mut HashMap<RoomName, Room>,
    user: SessionId,
    sink: Sink,
) {
    let Some(session) = sessions.get_mut(&user) else {
        return;
    };
    for room in &session.rooms {
        if let Some(r) = rooms.get_mut(room)
            && let Some(m) = r.members.iter_mut().find(|m| m.session == user)
        {
            m.sink = sink.clone();
        }
    }
    session.sink = sink;
}
