//! Room messages, whispers, and the history kept in memory.

use super::*;

impl Router {
    /// Sends `text` to everyone in `room`, the sender included (whose copy
    /// carries `reference`). Returns the message's id.
    pub fn say(
        &self,
        id: SessionId,
        room: RoomName,
        text: String,
        notice: bool,
        reply_to: Option<u64>,
        reference: Option<Ref>,
    ) -> Result<u64> {
        check_text(&text, self.config.max_text_bytes)?;
        check_lines(&text, self.config.max_lines)?;
        let mut guard = self.state.lock().unwrap();
        let State {
            sessions, rooms, ..
        } = &mut *guard;
        let user = sessions.user_of(id);
        let session = connection_mut(sessions, id)?;
        if !session.rooms.contains(&room) {
            return Err(outside(rooms, &room));
        }
        let r = rooms.get_mut(&room).expect("a session's rooms exist");
        r.may_speak(&room, user, session.account.as_ref())?;
        if let Some(answered) = reply_to
            && (answered == 0 || answered > r.last_id)
        {
            return Err(no_such_message(answered));
        }
        let now = now_ms();
        let (message_id, ts) = (r.last_id + 1, now.max(r.last_ts));
        let message = ChatMessage {
            room,
            id: message_id,
            from: session.nick.clone(),
            text,
            ts,
            account: session.account.clone(),
            notice,
            reply_to,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        };
        let event = Event::Chat(ChatEvent {
            message,
            sender: id,
            reference,
        });
        let taken = self.port.submit(event);
        if let Taken::Refused(_, why) = taken {
            return Err(refused(why));
        }
        session.last_said = now;
        if let Taken::Relayed = taken {
            // Numbered by the cluster's broker: 0 until the stream brings it.
            return Ok(0);
        }
        r.last_id = message_id;
        r.last_ts = ts;
        match taken {
            Taken::Now(event) => self.apply_event(&mut guard, event, true),
            Taken::Later => r.pending += 1,
            Taken::Relayed | Taken::Refused(..) => {}
        }
        Ok(message_id)
    }

    /// Sends a direct message to `to`, echoed to the sender.
    pub fn whisper(
        &self,
        id: SessionId,
        to: Nick,
        text: String,
        notice: bool,
        reply_to: Option<u64>,
        reference: Option<Ref>,
    ) -> Result<u64> {
        check_text(&text, self.config.max_text_bytes)?;
        check_lines(&text, self.config.max_lines)?;
        let mut guard = self.state.lock().unwrap();
        let state = &mut *guard;
        state.session(id)?;
        // An offline account's whispers wait for its next login.
        let (target, to, account) = match state.nicks.get(&to) {
            Some(&target) => {
                let recipient = &state.sessions[&target];
                let account = recipient.account.clone().filter(|_| self.port.durable());
                // An always-on account with no device connected: it waits.
                let offline = recipient.sink.len() == 0 && account.is_some();
                (
                    Some(target).filter(|_| !offline),
                    recipient.nick.clone(),
                    account,
                )
            }
            None => match state.accounts.get(&to) {
                Some(account) if self.port.durable() => {
                    (None, account.clone(), Some(account.clone()))
                }
                _ => {
                    return Err(RouterError::new(
                        ErrorCode::NoSuchNick,
                        format!("nobody is using the nick {to}"),
                    ));
                }
            },
        };
        if let Some(answered) = reply_to
            && (answered == 0 || answered > state.next_direct_id)
        {
            return Err(no_such_message(answered));
        }
        let (message_id, ts) = (state.next_direct_id + 1, now_ms().max(state.last_direct_ts));
        let sender = state.sessions.get_mut(&id).expect("checked");
        let message = DirectMessage {
            id: message_id,
            from: sender.nick.clone(),
            to,
            text,
            ts,
            account: sender.account.clone(),
            notice,
            reply_to,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        };
        let event = Event::Direct(DirectEvent {
            message,
            sender: id,
            target,
            account,
            reference,
        });
        let taken = self.port.submit(event);
        if let Taken::Refused(_, why) = taken {
            return Err(refused(why));
        }
        sender.last_said = ts;
        if let Taken::Relayed = taken {
            return Ok(0);
        }
        state.next_direct_id = message_id;
        state.last_direct_ts = ts;
        if let Taken::Now(event) = taken {
            self.apply_event(state, event, true);
        }
        Ok(message_id)
    }

    /// Answers with up to `limit` messages of a joined room from its
    /// recent history (without a store; with one, the store answers): the
    /// oldest ones past `after`/`after_ts` if given (to fill a gap), unless
    /// `latest`; else the newest (before `before`/`before_ts`, to page back).
    pub fn history(
        &self,
        id: SessionId,
        room: RoomName,
        page: Page,
        reference: Option<Ref>,
    ) -> Result<()> {
        let limit = page.limit.clamp(1, MAX_HISTORY_PAGE) as usize;
        let state = self.state.lock().unwrap();
        let session = state.session(id)?;
        if !session.rooms.contains(&room) {
            return Err(not_in_room(&room));
        }
        let r = &state.rooms[&room];
        let in_range = |m: &&ChatMessage| {
            page.before.is_none_or(|b| m.id < b)
                && page.after.is_none_or(|a| m.id > a)
                && page.before_ts.is_none_or(|b| m.ts < b)
                && page.after_ts.is_none_or(|a| m.ts > a)
        };
        let forward = page.forward();
        let messages: Vec<ChatMessage> = if forward {
            r.history
                .iter()
                .map(chat)
                .filter(in_range)
                .take(limit)
                .cloned()
                .collect()
        } else {
            let mut newest: Vec<_> = r
                .history
                .iter()
                .rev()
                .map(chat)
                .filter(in_range)
                .take(limit)
                .cloned()
                .collect();
            newest.reverse();
            newest
        };
        session.sink.answer(
            id,
            Frame::with_ref(ServerMessage::History { room, messages }, reference),
        );
        Ok(())
    }

    /// Prunes the in-memory recent history as retention does in the store.
    pub fn retain(&self, before_ts: Option<u64>, keep: Option<u64>) {
        let mut state = self.state.lock().unwrap();
        for room in state.rooms.values_mut() {
            if let Some(ts) = before_ts {
                room.history.retain(|f| chat(f).ts >= ts);
            }
            if let Some(keep) = keep {
                while room.history.len() as u64 > keep {
                    room.history.pop_front();
                }
            }
        }
    }
}

/// `reply_to` names a message that was never sent here.
fn no_such_message(id: u64) -> RouterError {
    RouterError::new(
        ErrorCode::NoSuchMessage,
        format!("reply_to names message {id}, which is not there"),
    )
}

pub(super) fn chat(frame: &Frame) -> &ChatMessage {
    match frame.message() {
        Some(ServerMessage::Message(m)) => m,
        other => unreachable!("history holds only messages, found {other:?}"),
    }
}
