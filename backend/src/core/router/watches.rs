//! Watch lists (`watch`; IRC's MONITOR): each connection names up to
//! [`MAX_WATCHED`] nicks and hears `watched` whenever one of them comes
//! online (a session claims it, a user renames to it) or goes (a quit, a
//! rename away). The router calls [`Watches::seen`] wherever a nick is
//! taken or given up; a watcher whose connection has gone is dropped the
//! next time it would be told.

use super::*;

/// Who watches which nicks, both ways.
#[derive(Default)]
pub(super) struct Watches {
    /// The connections watching each nick.
    by_nick: HashMap<Nick, Vec<SessionId>>,
    /// Each watching connection's list.
    lists: HashMap<SessionId, Vec<Nick>>,
}

impl Watches {
    /// `nick` came online (`online`) or went: its watchers are told.
    pub(super) fn seen(&mut self, sessions: &Sessions, nick: &Nick, online: bool) {
        let Some(watchers) = self.by_nick.get_mut(nick) else {
            return;
        };
        let (mut on, mut off) = (Vec::new(), Vec::new());
        if online { &mut on } else { &mut off }.push(nick.clone());
        let event = Frame::new(ServerMessage::Watched {
            online: on,
            offline: off,
        });
        let mut gone = Vec::new();
        for &watcher in watchers.iter() {
            match sessions.get(&watcher) {
                Some(s) if s.sink.outbox(watcher).is_some() => {
                    s.sink.answer(watcher, event.clone())
                }
                _ => gone.push(watcher),
            }
        }
        for watcher in gone {
            self.forget(watcher);
        }
    }

    /// Connection `id` watches nothing any more.
    pub(super) fn forget(&mut self, id: SessionId) {
        for nick in self.lists.remove(&id).unwrap_or_default() {
            self.unwatch_one(id, &nick);
        }
    }

    fn unwatch_one(&mut self, id: SessionId, nick: &Nick) {
        if let Some(watchers) = self.by_nick.get_mut(nick) {
            watchers.retain(|&w| w != id);
            if watchers.is_empty() {
                self.by_nick.remove(nick);
            }
        }
    }
}

impl Router {
    /// Adds `nicks` to connection `id`'s watch list (none: just asks);
    /// answered by `watched` with the nicks added (or, for none, all of
    /// them) split into online and offline.
    pub fn watch(&self, id: SessionId, nicks: Vec<Nick>, reference: Option<Ref>) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions,
            nicks: online,
            watches,
            ..
        } = &mut *guard;
        let session = connection(sessions, id)?;
        let list = watches.lists.entry(id).or_default();
        let mut seen = HashSet::new();
        let named: Vec<Nick> = nicks
            .into_iter()
            .filter(|n| seen.insert(n.clone()))
            .collect();
        let fresh: Vec<Nick> = named
            .iter()
            .filter(|n| !list.contains(n))
            .cloned()
            .collect();
        if list.len() + fresh.len() > MAX_WATCHED {
            let full = RouterError::new(
                ErrorCode::TooManyWatched,
                format!(
                    "you watch {} nicks; at most {MAX_WATCHED} may be watched",
                    list.len()
                ),
            );
            if list.is_empty() {
                watches.lists.remove(&id);
            }
            return Err(full);
        }
        // The nicks named (watched already or not), or with none the list.
        let asked = if named.is_empty() {
            list.clone()
        } else {
            named
        };
        list.extend(fresh.iter().cloned());
        if list.is_empty() {
            watches.lists.remove(&id);
        }
        for nick in fresh {
            watches.by_nick.entry(nick).or_default().push(id);
        }
        let (on, off): (Vec<Nick>, Vec<Nick>) =
            asked.into_iter().partition(|n| online.contains_key(n));
        // As the users spell their nicks.
        let on = on
            .iter()
            .map(|n| {
                sessions
                    .get(&online[n])
                    .map_or_else(|| n.clone(), |s| s.nick.clone())
            })
            .collect();
        let answer = ServerMessage::Watched {
            online: on,
            offline: off,
        };
        session.sink.answer(id, Frame::with_ref(answer, reference));
        Ok(())
    }

    /// Removes `nicks` from connection `id`'s watch list (none: all);
    /// answered by an empty `watched`.
    pub fn unwatch(&self, id: SessionId, nicks: Vec<Nick>, reference: Option<Ref>) -> Result<()> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, watches, ..
        } = &mut *guard;
        let session = connection(sessions, id)?;
        if nicks.is_empty() {
            watches.forget(id);
        } else if let Some(list) = watches.lists.get_mut(&id) {
            list.retain(|n| !nicks.contains(n));
            for nick in &nicks {
                watches.unwatch_one(id, nick);
            }
        }
        let answer = ServerMessage::Watched {
            online: Vec::new(),
            offline: Vec::new(),
        };
        session.sink.answer(id, Frame::with_ref(answer, reference));
        Ok(())
    }
}
