//! Read positions: how far each logged-in account has read in its rooms
//! and direct conversations. The store keeps them; the router holds those
//! of the accounts online here, puts the room's in `joined`, and tells
//! every session of an account when one of them moves its position.

use super::*;

impl Router {
    /// Session `id` logged in: its account's stored positions (the
    /// newest [`MAX_READ_POSITIONS`]), merged with those held here for
    /// another of its sessions (the newer of each wins: another node may
    /// have moved one).
    pub fn load_reads(&self, id: SessionId, positions: Vec<(Conversation, ReadMark)>) {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, reads, ..
        } = &mut *guard;
        let Some(account) = sessions.get(&id).and_then(|s| s.account.clone()) else {
            return;
        };
        let id = sessions.user_of(id);
        let entry = reads.entry(account).or_default();
        for (target, mark) in positions.into_iter().take(MAX_READ_POSITIONS) {
            let held = entry.marks.entry(target).or_default();
            if mark.id > held.id {
                *held = mark;
            }
        }
        entry
            .sessions
            .retain(|&s| sessions.contains_key(&s) && s != id);
        entry.sessions.push(id);
    }

    /// `account`'s stored positions, held here before one of its
    /// connections registers (so a device joining the account's user gets
    /// them in `joined`); [`load_reads`](Self::load_reads) follows.
    pub fn preload_reads(&self, account: &Nick, positions: Vec<(Conversation, ReadMark)>) {
        let mut state = self.state.lock().unwrap();
        let entry = state.reads.entry(account.clone()).or_default();
        for (target, mark) in positions.into_iter().take(MAX_READ_POSITIONS) {
            let held = entry.marks.entry(target).or_default();
            if mark.id > held.id {
                *held = mark;
            }
        }
    }

    /// The time of message `message` of `room` if it is among the room's
    /// recent messages here: one delivered from another node of a cluster
    /// may be marked read before the store has it.
    pub fn recent_message_ts(&self, room: &RoomName, message: u64) -> Option<u64> {
        let state = self.state.lock().unwrap();
        let r = state.rooms.get(room)?;
        r.history
            .iter()
            .map(chat::chat)
            .find(|m| m.id == message)
            .map(|m| m.ts)
    }

    /// The read position of session `id`'s account at `target` (id 0:
    /// none).
    pub fn read_position(&self, id: SessionId, target: &Conversation) -> Result<ReadMark> {
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        Ok(read_of(&state.reads, session, target).unwrap_or_default())
    }

    /// The store holds `mark` as the read position of session `id`'s
    /// account at `target`: if that is newer than the one held here, it
    /// takes its place and every session of the account here is told with
    /// `read`; `id` is told in any case (with `reference`). `false` if it
    /// did not move here.
    pub fn mark_read(
        &self,
        id: SessionId,
        target: Conversation,
        mark: ReadMark,
        reference: Option<Ref>,
    ) -> Result<bool> {
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, reads, ..
        } = &mut *guard;
        let user = sessions.user_of(id);
        let session = connection(sessions, id)?;
        let Some(account) = session.account.clone() else {
            return Err(RouterError::new(
                ErrorCode::AccountRequired,
                "read positions are kept for accounts: log in first",
            ));
        };
        let entry = reads.entry(account.clone()).or_default();
        if !entry.sessions.contains(&user) {
            entry.sessions.push(user);
        }
        let now = entry.marks.get(&target).copied().unwrap_or_default();
        if mark.id <= now.id || mark.id == 0 {
            let answer = ServerMessage::Read(target.position(now));
            session.sink.answer(id, Frame::with_ref(answer, reference));
            return Ok(false);
        }
        if entry.marks.len() >= MAX_READ_POSITIONS && !entry.marks.contains_key(&target) {
            let oldest = entry.marks.iter().min_by_key(|(_, m)| m.ts);
            if let Some(oldest) = oldest.map(|(t, _)| t.clone()) {
                entry.marks.remove(&oldest);
            }
        }
        entry.marks.insert(target.clone(), mark);
        let moved = Frame::new(ServerMessage::Read(target.position(mark)));
        entry.sessions.retain(|s| {
            sessions
                .get(s)
                .is_some_and(|s| s.account.as_ref() == Some(&account))
        });
        for s in &entry.sessions {
            let sink = &sessions[s].sink;
            if *s == user {
                let answer = ServerMessage::Read(target.position(mark));
                sink.tell(id, answer, reference.clone());
            } else {
                sink.push(moved.clone());
            }
        }
        // The account's devices on other nodes of a cluster hear it too.
        if self.port.node().is_some() {
            self.port.tell(crate::core::cluster::News::Read {
                account,
                position: target.position(mark),
            });
        }
        Ok(true)
    }
}

/// Session `id` (`session`) is gone: its account's positions stay only
/// while another of its sessions here holds them.
pub(super) fn forget_reads(
    reads: &mut HashMap<Nick, Box<Reads>>,
    session: &Connection,
    id: SessionId,
) {
    let Some(account) = &session.account else {
        return;
    };
    if let Some(entry) = reads.get_mut(account) {
        entry.sessions.retain(|&s| s != id);
        if entry.sessions.is_empty() {
            reads.remove(account);
        }
    }
}
