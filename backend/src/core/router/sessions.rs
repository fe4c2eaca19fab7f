//! Sessions coming and going: connecting under a nick, logging in,
//! away messages, nick changes and quitting.

use super::reads::forget_reads;
use super::*;

impl Router {
    /// Whether `nick` is a registered account.
    pub fn is_account(&self, nick: &Nick) -> bool {
        self.state.lock().unwrap().accounts.contains(nick)
    }

    /// The account that the session using `nick` (on any node of a
    /// cluster) is logged into, if it is.
    pub fn online_account(&self, nick: &Nick) -> Option<Nick> {
        let state = self.state.lock().unwrap();
        let id = state.nicks.get(nick)?;
        state.sessions.get(id)?.account.clone()
    }

    /// Whether `account` is logged in on this node (a new login to it is
    /// one more device of that user: no nick to claim).
    pub fn account_here(&self, account: &Nick) -> bool {
        let state = self.state.lock().unwrap();
        state.online.contains_key(account) || remote::ghost_of(&state, account).is_some()
    }

    /// The rooms of `account`'s user (here or, in a cluster, on another
    /// node), to load before one more device of it gets them.
    pub fn rooms_of_account(&self, account: &Nick) -> Vec<RoomName> {
        let state = self.state.lock().unwrap();
        let user = state
            .online
            .get(account)
            .copied()
            .or_else(|| remote::ghost_of(&state, account));
        user.and_then(|u| state.sessions.get(&u))
            .map_or_else(Vec::new, |s| s.rooms.clone())
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
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let user = sessions.user_of(id);
        let session = connection_mut(sessions, id)?;
        session.account = Some(account.clone());
        // Room-mates hear of it (IRC's account-notify).
        let changed = Frame::new(ServerMessage::Account {
            nick: session.nick.clone(),
            account: Some(account.clone()),
        });
        tell_room_mates(rooms, &session.rooms, &changed, &mut HashSet::from([user]));
        // The rooms it is in become the account's.
        for room in &session.rooms {
            self.port.remember(&account, room, true);
        }
        cluster::publish_user(&*self.port, session, Change::Login);
        guard.online.insert(account, user);
        Ok(())
    }

    /// Ends every session of this node logged into `account` except
    /// `except` (after a password change, `logout` everywhere, or the
    /// account's deletion): each is sent `closing` with `code` and closed.
    /// Returns how many.
    pub fn end_sessions_of(
        &self,
        account: &Nick,
        except: SessionId,
        code: ErrorCode,
        message: &str,
    ) -> usize {
        let mut state = self.state.lock().unwrap();
        // The account's devices on the cluster's other nodes end too.
        if self.port.node().is_some() {
            self.port.tell(crate::core::cluster::News::End {
                account: account.clone(),
                code,
                message: message.to_string(),
            });
        }
        end_devices(&mut state, &*self.port, account, except, code, message)
    }

    /// Marks session `id` as a server administrator's (or not): it may
    /// moderate any room it is in.
    pub fn set_admin(&self, id: SessionId, admin: bool) {
        if let Some(session) = self.state.lock().unwrap().sessions.get_mut(&id) {
            session.admin = admin;
        }
    }

    /// Ends the session of this node using `nick` (an administrator's
    /// `kill`): it is sent `closing` with `code` and closed. `false` if no
    /// session here uses it.
    pub fn kill(&self, nick: &Nick, code: ErrorCode, message: &str) -> bool {
        let mut state = self.state.lock().unwrap();
        let Some(&id) = state.nicks.get(nick) else {
            return false;
        };
        let Some(session) = state.sessions.get_mut(&id) else {
            return false;
        };
        // Out of its rooms with its last device, always-on or not.
        session.always_on = false;
        if session.node.is_some() {
            return false;
        }
        if session.sink.len() == 0 {
            // An always-on account with no device: out of its rooms too.
            remove_user(&mut state, &*self.port, id, Some(message.to_string()));
            return true;
        }
        session.sink.close(code, message);
        true
    }

    /// Forgets the deleted account `name`: its nick is free for anyone,
    /// it owns and operates no room, and session `id` goes on as a guest.
    pub fn remove_account(&self, name: &Nick, id: SessionId) {
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        state.accounts.remove(name);
        // Its read positions go too: whoever registers the name next
        // starts without them.
        state.reads.remove(name);
        // An always-on user of it with no device goes.
        if let Some(&user) = state.online.get(name)
            && state.sessions.get(&user).is_some_and(|s| s.sink.len() == 0)
        {
            remove_user(state, &*self.port, user, None);
        }
        state.online.remove(name);
        if let Some(session) = state.sessions.get_mut(&id) {
            session.account = None;
            session.admin = false;
        }
        let State {
            sessions, rooms, ..
        } = state;
        // Room-mates hear it is logged into nothing now (account-notify).
        if let Some(session) = sessions.get(&id) {
            let user = sessions.user_of(id);
            let changed = Frame::new(ServerMessage::Account {
                nick: session.nick.clone(),
                account: None,
            });
            tell_room_mates(rooms, &session.rooms, &changed, &mut HashSet::from([user]));
        }
        for (name_of_room, room) in rooms.iter_mut() {
            let (owner, ops) = (room.owner.clone(), room.ops.len());
            if room.owner.as_ref() == Some(name) {
                room.owner = None;
            }
            room.ops.retain(|op| op != name);
            if room.owner != owner || room.ops.len() != ops {
                let roles = room.roles(name_of_room, sessions);
                room.broadcast(&Frame::new(roles), None);
            }
        }
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

    /// Queues `frame` for connection `id`, if it still exists.
    pub fn send_to(&self, id: SessionId, frame: Frame) {
        let state = self.state.lock().unwrap();
        if let Some(session) = state.sessions.get(&id) {
            session.sink.answer(id, frame);
        }
    }

    /// Tells every connection of `id`'s user `message`, connection `id`
    /// with `reference`.
    pub fn tell_user(&self, id: SessionId, message: ServerMessage, reference: Option<Ref>) {
        let state = self.state.lock().unwrap();
        if let Some(session) = state.sessions.get(&id) {
            session.sink.tell(id, message, reference);
        }
    }

    /// Claims `nick` for a new session whose frames go to `outbox`, and
    /// queues `welcome` as its first frame.
    pub fn connect(
        &self,
        nick: Nick,
        outbox: Arc<Outbox>,
        welcome: ServerMessage,
        reference: Option<Ref>,
    ) -> Result<SessionId> {
        self.connect_as(nick, None, outbox, vec![welcome], reference)
    }

    /// Like [`connect`](Self::connect), logged into `account` (whose
    /// name is `nick`; checked by the caller) or as a guest (`None`), who
    /// may not use an account's nick. `first` are the frames it gets first.
    /// An account online here already gets another device: the new
    /// connection is the same user (see `devices`).
    pub fn connect_as(
        &self,
        nick: Nick,
        account: Option<Nick>,
        outbox: Arc<Outbox>,
        first: Vec<ServerMessage>,
        reference: Option<Ref>,
    ) -> Result<SessionId> {
        let mut state = self.state.lock().unwrap();
        // An account's nick is for that account only.
        if account.as_ref() != Some(&nick) && state.accounts.contains(&nick) {
            return Err(reserved(&nick));
        }
        if let Some(&user) = account.as_ref().and_then(|a| state.online.get(a))
            && state.sessions.get(&user).is_some_and(|s| s.node.is_none())
        {
            return self.add_device(&mut state, user, outbox, first, reference);
        }
        // In a cluster, an account whose user lives on another node: a
        // device of this node's ghost of it (see `remote`).
        if let Some(ghost) = account.as_ref().and_then(|a| remote::ghost_of(&state, a)) {
            let id = self.add_device(&mut state, ghost, outbox, first, reference)?;
            remote::publish_devices(&*self.port, &state.sessions[&ghost]);
            return Ok(id);
        }
        // In a cluster the broker gave this nick to the caller: a ghost
        // still holding it is out of date.
        cluster::evict_ghost(&mut state, &nick);
        if state.nicks.contains_key(&nick) {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        state.next_session += 1;
        let id = state.next_session;
        for message in first {
            outbox.push(Frame::with_ref(message, reference.clone()));
        }
        state.nicks.insert(nick.clone(), id);
        if let Some(account) = &account {
            state.online.insert(account.clone(), id);
        }
        let State {
            sessions, watches, ..
        } = &mut *state;
        watches.seen(sessions, &nick, true);
        let now = now_ms();
        state.sessions.insert(
            id,
            Box::new(Connection {
                nick,
                account,
                sink: Sink::One(id, outbox),
                rooms: Vec::new(),
                away: None,
                since: now,
                named: now,
                last_said: now,
                node: None,
                admin: false,
                always_on: false,
                auto_away: false,
                offline: false,
                profile: Profile::default(),
                typing: Default::default(),
            }),
        );
        Ok(id)
    }

    /// Gives a new user the profile its first device said it has (a later
    /// device's `hello` changes nothing: `profile` does).
    pub fn set_profile(&self, id: SessionId, profile: Profile) {
        let mut state = self.state.lock().unwrap();
        if let Some(session) = state.sessions.get_mut(&id)
            && session.profile == Profile::default()
        {
            session.profile = profile;
        }
    }

    /// Changes the user's real name (`Some`; empty: none) or bot flag; the
    /// user's devices and everyone sharing a room with it get `profile`.
    pub fn change_profile(
        &self,
        id: SessionId,
        realname: Option<String>,
        bot: Option<bool>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let realname = match realname {
            Some(r) => Some(
                Profile::new(Some(r), None, false)
                    .map_err(|(code, message)| RouterError::new(code, message))?
                    .realname,
            ),
            None => None,
        };
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let session = connection_mut(sessions, id)?;
        if let Some(realname) = realname {
            session.profile.realname = realname;
        }
        if let Some(bot) = bot {
            session.profile.bot = bot;
        }
        let changed = ServerMessage::Profile {
            nick: session.nick.clone(),
            realname: session.profile.realname.as_deref().map(str::to_string),
            bot: session.profile.bot,
        };
        let user = sessions.user_of(id);
        let session = &sessions[&id];
        let shared = Frame::new(changed.clone());
        tell_room_mates(rooms, &session.rooms, &shared, &mut HashSet::from([user]));
        session.sink.tell(id, changed, reference);
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
        let act = remote::Act::Away {
            message: message.clone(),
        };
        if self.ask_home(&guard, id, act) {
            return Ok(());
        }
        self.away_in(&mut guard, id, message, reference)
    }

    /// [`away`](Self::away) under the lock (`message` checked).
    pub(super) fn away_in(
        &self,
        state: &mut State,
        id: SessionId,
        message: Option<String>,
        reference: Option<Ref>,
    ) -> Result<()> {
        let State {
            sessions, rooms, ..
        } = state;
        let user = sessions.user_of(id);
        let session = connection_mut(sessions, id)?;
        session.away = message.as_deref().map(Into::into);
        cluster::publish_user(&*self.port, session, Change::Away);
        let event = ServerMessage::Away {
            nick: session.nick.clone(),
            message,
        };
        let shared = Frame::new(event.clone());
        tell_room_mates(rooms, &session.rooms, &shared, &mut HashSet::from([user]));
        session.sink.tell(id, event, reference);
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
            watches,
            ..
        } = &mut *guard;
        let user = sessions.user_of(id);
        if let Some(&holder) = nicks.get(&nick)
            && holder != user
        {
            return Err(RouterError::new(
                ErrorCode::NickTaken,
                format!("the nick {nick} is in use"),
            ));
        }
        let session = connection_mut(sessions, id)?;
        if accounts.contains(&nick) && session.account.as_ref() != Some(&nick) {
            return Err(reserved(&nick));
        }
        let old = std::mem::replace(&mut session.nick, nick.clone());
        nicks.remove(&old);
        nicks.insert(nick.clone(), user);
        if old != nick {
            watches.seen(sessions, &old, false);
            watches.seen(sessions, &nick, true);
        }
        let session = connection_mut(sessions, id)?;
        if old != nick {
            session.named = now_ms();
        }
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
                    realname: None,
                    bot: false,
                }),
                Some(user),
            );
        }
        session
            .sink
            .tell(id, ServerMessage::Nick { nick, old }, reference);
        Ok(())
    }

    /// Removes a connection. The last of its user's: the user leaves every
    /// room (members see `quit`, with `reason` if given) and its nick
    /// becomes free; one of several: nobody else notices. Unknown ids are
    /// ignored.
    pub fn quit(&self, id: SessionId, reason: Option<String>) {
        let reason = reason
            .map(|r| clip(r.trim(), MAX_REASON_BYTES))
            .filter(|r| !r.is_empty() && check_line(r, MAX_REASON_BYTES, "reason").is_ok());
        let mut guard = self.state.lock().unwrap();
        // Whatever this connection watched, and however it goes.
        guard.watches.forget(id);
        if self.remove_device(&mut guard, id) || self.keep_offline(&mut guard, id) {
            return;
        }
        remove_user(&mut guard, &*self.port, id, reason);
    }

    /// Whether session `id`'s account stays in its rooms while none of its
    /// devices is connected.
    pub fn set_always_on(&self, id: SessionId, on: bool) {
        let mut state = self.state.lock().unwrap();
        // A device of a user living on another node: that node keeps it.
        if self.ask_home(&state, id, remote::Act::AlwaysOn { on }) {
            return;
        }
        if let Some(session) = state.sessions.get_mut(&id) {
            session.always_on = on;
        }
    }
}

/// Removes user `id` (the last of its devices, or an offline always-on
/// account): it leaves every room (members see `quit`, with `reason`) and
/// its nick becomes free.
pub(super) fn remove_user(
    state: &mut State,
    port: &dyn Port,
    id: SessionId,
    reason: Option<String>,
) {
    let State {
        sessions,
        nicks,
        rooms,
        reads,
        online,
        offline,
        remote,
        watches,
        ..
    } = state;
    let user = sessions.user_of(id);
    let Some(session) = sessions.remove(&id) else {
        return;
    };
    if session.sink.len() == 0 {
        *offline -= 1;
    }
    if let Some(account) = &session.account
        && session.node.is_none()
    {
        online.remove(account);
        // Whatever other nodes said of its devices is moot now.
        remote.remove(account);
    }
    forget_reads(reads, &session, user);
    cluster::publish_quit(port, &session, reason.clone());
    nicks.remove(&session.nick);
    watches.forget(id);
    watches.seen(sessions, &session.nick, false);
    for room in session.rooms {
        if let Some(r) = rooms.get_mut(&room) {
            r.members.retain(|m| m.session != user);
            r.broadcast(
                &Frame::new(ServerMessage::Presence {
                    room,
                    nick: session.nick.clone(),
                    event: PresenceEvent::Quit,
                    new_nick: None,
                    reason: reason.clone(),
                    account: session.account.clone(),
                    realname: None,
                    bot: false,
                }),
                None,
            );
        }
    }
}

/// Ends every device here of `account`'s user (living here, or, in a
/// cluster, elsewhere) but `except`; returns how many.
pub(super) fn end_devices(
    state: &mut State,
    port: &dyn Port,
    account: &Nick,
    except: SessionId,
    code: ErrorCode,
    message: &str,
) -> usize {
    let user = state
        .online
        .get(account)
        .copied()
        .or_else(|| remote::ghost_of(state, account));
    let Some(session) = user.and_then(|u| state.sessions.get_mut(&u)) else {
        return 0;
    };
    let user = user.expect("found");
    if session.node.is_none() && session.sink.outbox(except).is_none() {
        // Every device ends: the user leaves its rooms with the last,
        // always-on or not (at once if none is connected).
        session.always_on = false;
        if session.sink.len() == 0 {
            remove_user(state, port, user, None);
            return 0;
        }
    }
    let session = &state.sessions[&user];
    // A ghost's own entry is the shared discarding outbox: not a device.
    let ghost = session.node.is_some();
    let mut ended = 0;
    for (device, outbox) in session.sink.iter() {
        if device != except && !(ghost && device == user) {
            outbox.close(code, message);
            ended += 1;
        }
    }
    ended
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(super) fn clip(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
