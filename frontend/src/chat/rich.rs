//! Rich messages, the client's half (issue 24): replies, reactions,
//! edits, deletions and typing notices. The composer's [`Draft`] says
//! whether the next text answers a message or replaces one; the server's
//! `reaction`, `edited` and `deleted` change a line in place (a new `Rc`,
//! so the view redraws just that line); `typing` notices come and expire,
//! and ours go at most once every few seconds, as the server relays them.

use std::rc::Rc;

use banter_protocol::{ClientMessage, Nick, Reaction, RoomName, TYPING_ACTIVE_SECS, TypingState};

use super::{Chat, Conversation, Line, Purpose, Request, View};

/// The least time between two typing notices (the server relays one
/// every 3 s per user and conversation; `done` always goes).
const TYPING_EVERY_MS: u64 = 3000;
/// Typing stopped this long with text in the box: `paused`.
const TYPING_PAUSE_MS: u64 = 5000;
/// A quote shows this many characters of the original.
const SNIPPET_CHARS: usize = 80;

/// What the composer is doing besides writing a new message.
#[derive(Clone, Debug, PartialEq)]
pub enum Draft {
    /// The next message answers this one.
    Reply(u64),
    /// Editing this message, whose text was this when the edit began.
    Edit(u64, String),
}

/// What happened to a message since it was sent.
#[derive(Debug, PartialEq)]
pub(super) enum Change {
    /// `nick` left (or, `true`, took back) a reaction.
    React(String, Nick, bool),
    /// Its new text.
    Edit(String),
    Delete,
}

/// What a reply shows of the message it answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Quote {
    /// Its author and the start of its text.
    Found(Nick, String),
    Deleted,
    /// Not loaded here (older than what is shown, or gone).
    Unknown,
}

/// The first line of `text`, cut at [`SNIPPET_CHARS`] characters with `…`.
pub fn snippet(text: &str) -> String {
    let plain = banter_protocol::strip_formatting(text);
    let line = plain.lines().next().unwrap_or("");
    let mut cut: String = line.chars().take(SNIPPET_CHARS).collect();
    if cut.len() < plain.trim_end().len() {
        cut.push('…');
    }
    cut
}

/// "alice is typing…", "alice and bob are typing…", "several people are
/// typing…", or nothing: who types in `conv` at `now`.
pub fn typing_sentence(conv: &Conversation, now: u64) -> String {
    let names: Vec<&Nick> = conv
        .typing
        .iter()
        .filter(|(_, until)| *until > now)
        .map(|(n, _)| n)
        .collect();
    match names[..] {
        [] => String::new(),
        [a] => format!("{a} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        _ => "several people are typing…".into(),
    }
}

/// Adds `nick` to `reaction`'s list, or (`remove`) takes it away; a
/// reaction nobody left any more goes.
pub fn toggle_reaction(reactions: &mut Vec<Reaction>, reaction: &str, nick: Nick, remove: bool) {
    let at = reactions.iter().position(|r| r.reaction == reaction);
    match (at, remove) {
        (Some(i), true) => {
            reactions[i].nicks.retain(|n| *n != nick);
            if reactions[i].nicks.is_empty() {
                reactions.remove(i);
            }
        }
        (Some(i), false) if !reactions[i].nicks.contains(&nick) => reactions[i].nicks.push(nick),
        (None, false) => reactions.push(Reaction {
            reaction: reaction.into(),
            nicks: vec![nick],
        }),
        _ => {}
    }
}

impl Conversation {
    /// The message `id`, if it is shown.
    pub fn find(&self, id: u64) -> Option<&Line> {
        self.lines
            .iter()
            .rev()
            .map(|l| l.as_ref())
            .find(|l| matches!(l, Line::Chat { id: i, .. } if *i == id))
    }

    /// What a reply to `id` quotes.
    pub fn quote(&self, id: u64) -> Quote {
        match self.find(id) {
            Some(Line::Chat { deleted: true, .. }) => Quote::Deleted,
            Some(Line::Chat { from, text, .. }) => Quote::Found(from.clone(), snippet(text)),
            _ => Quote::Unknown,
        }
    }
}

impl Chat {
    /// Who we are in reactions: the account's name, or the nick.
    pub fn me(&self) -> Option<&Nick> {
        self.account.as_ref().or(self.nick.as_ref())
    }

    /// The `room` and `with` of a request about the conversation on screen.
    fn place(&self) -> Option<(Option<RoomName>, Option<Nick>)> {
        Some(match self.view.clone()? {
            View::Room(room) => (Some(room), None),
            View::Direct(nick) => (None, Some(nick)),
        })
    }

    /// Applies `change` to message `id` of a conversation, as a new line
    /// (the view redraws just that one).
    pub(super) fn amend(
        &mut self,
        room: Option<RoomName>,
        with: Option<Nick>,
        id: u64,
        change: Change,
    ) {
        if change == Change::Delete && matches!(self.draft, Some(Draft::Edit(i, _)) if i == id) {
            self.draft = None;
        }
        let Some(conv) = self.conv_mut(room, with) else {
            return;
        };
        let found = conv
            .lines
            .iter()
            .rposition(|l| matches!(l.as_ref(), Line::Chat { id: i, .. } if *i == id));
        let Some(i) = found else {
            return;
        };
        let mut line = Line::clone(&conv.lines[i]);
        if let Line::Chat {
            text,
            edited,
            deleted,
            reactions,
            ..
        } = &mut line
        {
            match change {
                Change::React(reaction, nick, remove) => {
                    toggle_reaction(reactions, &reaction, nick, remove)
                }
                Change::Edit(new) => {
                    *text = new;
                    *edited = true;
                }
                Change::Delete => {
                    text.clear();
                    *edited = false;
                    *deleted = true;
                    reactions.clear();
                }
            }
        }
        conv.lines[i] = Rc::new(line);
    }

    /// A message's button, by the name the view gives it: `reply`,
    /// `edit`, `delete` (the view asked first), `react` (opens or closes
    /// the picker), `pick` (a reaction, `value`, from the picker or the
    /// bar) or `show` (a reply's quote: its original).
    pub fn message_action(&mut self, what: &str, id: u64, value: &str, now: u64) -> Vec<Request> {
        self.version += 1;
        let picking = self.picking.take();
        match what {
            "reply" => self.start_reply(id),
            "edit" => self.start_edit(id),
            "react" if picking != Some(id) => self.picking = Some(id),
            "pick" => return self.react(id, value),
            "delete" => return self.delete(id),
            "show" => {
                if let Some(Line::Chat {
                    reply_to: Some(original),
                    ..
                }) = self.current().and_then(|c| c.find(id))
                {
                    return self.show_message(*original, now);
                }
            }
            _ => {}
        }
        Vec::new()
    }

    /// One click on a reaction (the bar's or the picker's): ours is taken
    /// back if we left it, else added.
    pub fn react(&mut self, id: u64, reaction: &str) -> Vec<Request> {
        let me = self.me();
        let remove = matches!(
            self.current().and_then(|c| c.find(id)),
            Some(Line::Chat { reactions, .. })
                if reactions.iter().any(|r| r.reaction == reaction && r.nicks.iter().any(|n| Some(n) == me))
        );
        let Some((room, with)) = self.place() else {
            return Vec::new();
        };
        let body = ClientMessage::React {
            room,
            with,
            id,
            reaction: reaction.into(),
            remove,
        };
        vec![self.request(Purpose::Say, body)]
    }

    /// Deletes message `id` of the conversation on screen (the view asked
    /// first).
    pub fn delete(&mut self, id: u64) -> Vec<Request> {
        let Some((room, with)) = self.place() else {
            return Vec::new();
        };
        let body = ClientMessage::Delete {
            room,
            with,
            id,
            reason: None,
        };
        vec![self.request(Purpose::Say, body)]
    }

    /// The composer's next message answers `id`.
    pub fn start_reply(&mut self, id: u64) {
        self.version += 1;
        self.draft = Some(Draft::Reply(id));
    }

    /// The composer edits message `id` (ours, not deleted).
    pub fn start_edit(&mut self, id: u64) {
        if let Some(Line::Chat {
            text,
            deleted: false,
            ..
        }) = self.current().and_then(|c| c.find(id))
        {
            self.draft = Some(Draft::Edit(id, text.clone()));
            self.version += 1;
        }
    }

    /// Up-arrow in an empty composer: edit our newest message here.
    pub fn edit_last(&mut self) {
        let me = self.nick.as_ref();
        let last = self.current().and_then(|c| {
            c.lines.iter().rev().find_map(|l| match l.as_ref() {
                Line::Chat {
                    id,
                    from,
                    deleted: false,
                    ..
                } if Some(from) == me => Some(*id),
                _ => None,
            })
        });
        if let Some(id) = last {
            self.start_edit(id);
        }
    }

    pub fn cancel_draft(&mut self) {
        self.version += 1;
        self.draft = None;
    }

    /// The composer's text, sent in edit mode: the new text of `id`
    /// (taken as it is: no commands). Unchanged text just ends the edit.
    pub(super) fn submit_edit(
        &mut self,
        id: u64,
        old: &str,
        input: &str,
    ) -> Result<Vec<Request>, String> {
        if !self.is_online() {
            return Err("not connected: wait until Banter is back online".into());
        }
        let text = input.trim_end_matches(['\n', ' ']);
        self.check_text(text)?;
        self.cancel_draft();
        if text == old {
            return Ok(Vec::new());
        }
        let Some((room, with)) = self.place() else {
            return Ok(Vec::new());
        };
        let body = ClientMessage::Edit {
            room,
            with,
            id,
            text: text.into(),
        };
        Ok(vec![self.request(Purpose::Say, body)])
    }

    /// A click on a reply's quote: bring the original into view, loading
    /// older pages until it is there (or the room's history ends).
    pub fn show_message(&mut self, id: u64, now: u64) -> Vec<Request> {
        self.version += 1;
        self.seek = None;
        if self.current().is_some_and(|c| c.find(id).is_some()) {
            let count = self.jump.map_or(0, |(_, n)| n + 1);
            self.jump = Some((id, count));
            return Vec::new();
        }
        // Big pages: a search result or a mention may be far back.
        let older = self.load_older_by(banter_protocol::MAX_HISTORY_PAGE);
        if older.is_empty() {
            if let Some(conv) = self.current_mut() {
                conv.event("the original message is no longer in the history", now);
            }
        } else {
            self.seek = Some(id);
        }
        older
    }

    /// Leaving the conversation on screen: the draft and any search go,
    /// and our typing there ends.
    pub(super) fn leave_conversation(&mut self) -> Vec<Request> {
        self.draft = None;
        self.picking = None;
        self.seek = None;
        self.jump = None;
        // The last keystroke is when it ended, near enough.
        self.typing_done(self.typed_at)
    }

    fn typing_request(&mut self, view: View, state: TypingState) -> Request {
        let (room, to) = match view {
            View::Room(room) => (Some(room), None),
            View::Direct(nick) => (None, Some(nick)),
        };
        let body = ClientMessage::Typing {
            room,
            to,
            with: None,
            state,
        };
        self.request(Purpose::Typing, body)
    }

    /// The composer's text changed to `text`: typing a message (not a
    /// command, not an edit) is `active`, at most once every
    /// [`TYPING_EVERY_MS`]; an emptied box is `done`.
    pub fn typed(&mut self, text: &str, now: u64) -> Vec<Request> {
        self.typed_at = now;
        let message = !text.trim().is_empty() && (!text.starts_with('/') || text.starts_with("//"));
        let view = self.view.clone().filter(|_| {
            message && self.is_online() && !matches!(self.draft, Some(Draft::Edit(..)))
        });
        let Some(view) = view else {
            return self.typing_done(now);
        };
        if now < self.typing_next {
            // Too soon after the last notice: the tick sends it when it may.
            self.typing_owed = self.typing_out != Some((view, TypingState::Active));
            return Vec::new();
        }
        self.typing_active(view, now)
    }

    fn typing_active(&mut self, view: View, now: u64) -> Vec<Request> {
        self.typing_next = now + TYPING_EVERY_MS;
        self.typing_owed = false;
        self.typing_out = Some((view.clone(), TypingState::Active));
        vec![self.typing_request(view, TypingState::Active)]
    }

    /// Ends our typing notice, if one is on (at `now`: the next may go
    /// [`TYPING_EVERY_MS`] later).
    pub(super) fn typing_done(&mut self, now: u64) -> Vec<Request> {
        self.typing_owed = false;
        match self.typing_out.take() {
            Some((view, _)) if self.is_online() => {
                self.typing_next = now + TYPING_EVERY_MS;
                vec![self.typing_request(view, TypingState::Done)]
            }
            _ => Vec::new(),
        }
    }

    /// Forgets others' typing that expired by `now` (every second);
    /// `true` if a name went, so the page redraws.
    pub fn expire_typing(&mut self, now: u64) -> bool {
        let convs = self.rooms.values_mut().map(|r| &mut r.conv);
        let mut gone = false;
        for conv in convs.chain(self.directs.values_mut()) {
            let before = conv.typing.len();
            conv.typing.retain(|(_, until)| *until > now);
            gone |= conv.typing.len() != before;
        }
        if gone {
            self.version += 1;
        }
        gone
    }

    /// Ours goes when it had to wait, and pauses when the user stopped
    /// with text in the box.
    pub(super) fn typing_tick(&mut self, now: u64) -> Vec<Request> {
        if self.typing_owed && now >= self.typing_next {
            self.typing_owed = false;
            if let Some(view) = self
                .view
                .clone()
                .filter(|_| now < self.typed_at + TYPING_PAUSE_MS)
            {
                return self.typing_active(view, now);
            }
        }
        match self.typing_out.clone() {
            Some((view, TypingState::Active))
                if now >= self.typed_at + TYPING_PAUSE_MS && now >= self.typing_next =>
            {
                self.typing_next = now + TYPING_EVERY_MS;
                self.typing_out = Some((view.clone(), TypingState::Paused));
                vec![self.typing_request(view, TypingState::Paused)]
            }
            _ => Vec::new(),
        }
    }

    /// Someone's typing notice: `active` shows their name for
    /// [`TYPING_ACTIVE_SECS`]; `paused` and `done` take it away.
    pub(super) fn on_typing(
        &mut self,
        room: Option<RoomName>,
        with: Option<Nick>,
        nick: Nick,
        state: TypingState,
        now: u64,
    ) {
        if self.nick.as_ref() == Some(&nick) {
            return;
        }
        if let Some(conv) = self.conv_mut(room, with) {
            conv.typing.retain(|(n, _)| *n != nick);
            if state == TypingState::Active {
                conv.typing.push((nick, now + TYPING_ACTIVE_SECS * 1000));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use banter_protocol::{ClientMessage, ServerMessage, TypingState};

    use super::*;
    use crate::chat::tests::{joined, msg, nick, online, reply, room, server};

    fn line(chat: &Chat, id: u64) -> Line {
        chat.current().unwrap().find(id).unwrap().clone()
    }

    fn reactions(chat: &Chat, id: u64) -> Vec<(String, Vec<Nick>)> {
        match line(chat, id) {
            Line::Chat { reactions, .. } => reactions
                .into_iter()
                .map(|r| (r.reaction, r.nicks))
                .collect(),
            Line::Event { .. } => unreachable!(),
        }
    }

    fn reaction(id: u64, reaction: &str, who: &str, remove: bool) -> ServerMessage {
        ServerMessage::Reaction {
            room: Some(room("lobby")),
            with: None,
            id,
            reaction: reaction.into(),
            nick: nick(who),
            account: None,
            remove,
        }
    }

    /// `online()` with alice's own message 4 after bob's 1..=3.
    fn with_own_message() -> Chat {
        let mut chat = online();
        chat.on_message(server(ServerMessage::Message(msg("lobby", 4, "alice"))), 0);
        chat
    }

    #[test]
    fn a_click_toggles_our_reaction_and_the_server_says_who() {
        let mut chat = online();
        chat.on_message(server(reaction(2, "👍", "bob", false)), 0);
        assert_eq!(reactions(&chat, 2), vec![("👍".into(), vec![nick("bob")])]);
        // Not ours yet: a click adds it.
        let react = chat.react(2, "👍");
        assert_eq!(
            react[0].body,
            ClientMessage::React {
                room: Some(room("lobby")),
                with: None,
                id: 2,
                reaction: "👍".into(),
                remove: false,
            }
        );
        let before = chat.rooms[&room("lobby")].conv.lines.clone();
        chat.on_message(reply(reaction(2, "👍", "alice", false), &react[0]), 0);
        assert_eq!(
            reactions(&chat, 2),
            vec![("👍".into(), vec![nick("bob"), nick("alice")])]
        );
        // Only the changed line is a new one (the view redraws just it).
        let after = &chat.rooms[&room("lobby")].conv.lines;
        let same: Vec<bool> = before
            .iter()
            .zip(after)
            .map(|(a, b)| Rc::ptr_eq(a, b))
            .collect();
        assert_eq!(same, vec![true, false, true]);
        // Ours now: the next click takes it back.
        let again = chat.react(2, "👍");
        assert!(matches!(
            again[0].body,
            ClientMessage::React { remove: true, .. }
        ));
        chat.on_message(server(reaction(2, "👍", "alice", true)), 0);
        chat.on_message(server(reaction(2, "🎉", "carol", false)), 0);
        assert_eq!(
            reactions(&chat, 2),
            vec![
                ("👍".into(), vec![nick("bob")]),
                ("🎉".into(), vec![nick("carol")])
            ]
        );
        // The last one to take a reaction back removes it; a repeat is nothing.
        chat.on_message(server(reaction(2, "👍", "bob", true)), 0);
        chat.on_message(server(reaction(2, "🎉", "carol", false)), 0);
        assert_eq!(
            reactions(&chat, 2),
            vec![("🎉".into(), vec![nick("carol")])]
        );
        // A reaction to a message not shown changes nothing.
        chat.on_message(server(reaction(99, "👍", "bob", false)), 0);
    }

    #[test]
    fn the_views_buttons_by_name() {
        let mut chat = online();
        // React opens the picker, again closes it; a pick closes it too.
        assert!(chat.message_action("react", 2, "", 0).is_empty());
        assert_eq!(chat.picking, Some(2));
        chat.message_action("react", 2, "", 0);
        assert_eq!(chat.picking, None);
        chat.message_action("react", 2, "", 0);
        let pick = chat.message_action("pick", 2, "👀", 0);
        assert!(
            matches!(&pick[0].body, ClientMessage::React { id: 2, reaction, remove: false, .. } if reaction == "👀")
        );
        assert_eq!(chat.picking, None);
        chat.message_action("reply", 3, "", 0);
        assert_eq!(chat.draft, Some(Draft::Reply(3)));
        let delete = chat.message_action("delete", 3, "", 0);
        assert!(matches!(
            delete[0].body,
            ClientMessage::Delete { id: 3, .. }
        ));
        // A quote's click: the message it answers.
        let mut answer = msg("lobby", 4, "bob");
        answer.reply_to = Some(1);
        chat.on_message(server(ServerMessage::Message(answer)), 0);
        chat.message_action("show", 4, "", 0);
        assert_eq!(chat.jump, Some((1, 0)));
    }

    #[test]
    fn editing_our_message_in_the_composer() {
        let mut chat = with_own_message();
        // Up-arrow in an empty composer: our newest message.
        chat.edit_last();
        assert_eq!(chat.draft, Some(Draft::Edit(4, "m4".into())));
        let edit = chat.submit("m4, fixed\n", 0).unwrap();
        assert_eq!(
            edit[0].body,
            ClientMessage::Edit {
                room: Some(room("lobby")),
                with: None,
                id: 4,
                text: "m4, fixed".into(),
            }
        );
        assert_eq!(chat.draft, None);
        // The text is taken as it is: a slash is no command in an edit.
        chat.start_edit(4);
        let edit = chat.submit("/part", 0).unwrap();
        assert!(matches!(&edit[0].body, ClientMessage::Edit { text, .. } if text == "/part"));
        // Unchanged text just ends the edit; cancelling too.
        chat.start_edit(4);
        assert_eq!(chat.submit("m4", 0), Ok(Vec::new()));
        chat.start_edit(4);
        chat.cancel_draft();
        assert_eq!(chat.draft, None);
        // Everyone's copy changes, marked edited.
        chat.on_message(
            server(ServerMessage::Edited {
                room: Some(room("lobby")),
                with: None,
                id: 4,
                text: "m4, fixed".into(),
                nick: nick("alice"),
                ts: 5,
            }),
            0,
        );
        assert!(
            matches!(line(&chat, 4), Line::Chat { text, edited: true, .. } if text == "m4, fixed")
        );
        // An edit refused (too late) is said in the conversation.
        chat.start_edit(4);
        let edit = chat.submit("later", 0).unwrap();
        chat.on_message(
            reply(
                ServerMessage::error(banter_protocol::ErrorCode::EditTooLate, "too late to edit"),
                &edit[0],
            ),
            0,
        );
        let last = chat.current().unwrap().lines.back().unwrap().clone();
        assert!(matches!(last.as_ref(), Line::Event { text, .. } if text.contains("too late")));
    }

    #[test]
    fn a_deleted_message_keeps_its_place_as_a_tombstone() {
        let mut chat = with_own_message();
        chat.on_message(server(reaction(4, "👍", "bob", false)), 0);
        let delete = chat.delete(4);
        assert_eq!(
            delete[0].body,
            ClientMessage::Delete {
                room: Some(room("lobby")),
                with: None,
                id: 4,
                reason: None,
            }
        );
        chat.start_edit(4);
        chat.on_message(
            server(ServerMessage::Deleted {
                room: Some(room("lobby")),
                with: None,
                id: 4,
                nick: nick("alice"),
                reason: None,
            }),
            0,
        );
        assert!(matches!(
            line(&chat, 4),
            Line::Chat { text, deleted: true, edited: false, reactions, .. } if text.is_empty() && reactions.is_empty()
        ));
        // An edit of it ends; it can't be edited again; a reply quotes it as gone.
        assert_eq!(chat.draft, None);
        chat.start_edit(4);
        assert_eq!(chat.draft, None);
        assert_eq!(chat.current().unwrap().quote(4), Quote::Deleted);
        assert_eq!(super::super::tests::ids(&chat, "lobby"), vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_reply_names_its_original_and_quotes_it() {
        let mut chat = online();
        chat.start_reply(2);
        let say = chat.submit("an answer", 0).unwrap();
        assert_eq!(
            say[0].body,
            ClientMessage::Say {
                room: room("lobby"),
                text: "an answer".into(),
                notice: false,
                reply_to: Some(2),
            }
        );
        assert_eq!(chat.draft, None);
        let mut answer = msg("lobby", 4, "alice");
        answer.reply_to = Some(2);
        chat.on_message(reply(ServerMessage::Message(answer), &say[0]), 0);
        assert!(matches!(
            line(&chat, 4),
            Line::Chat {
                reply_to: Some(2),
                ..
            }
        ));
        let conv = chat.current().unwrap();
        assert_eq!(conv.quote(2), Quote::Found(nick("bob"), "m2".into()));
        assert_eq!(conv.quote(99), Quote::Unknown);
        // A refused text keeps the reply; switching conversations drops it.
        chat.start_reply(3);
        assert!(chat.submit(&"x".repeat(100), 0).is_err());
        assert_eq!(chat.draft, Some(Draft::Reply(3)));
        chat.select(View::Direct(nick("bob")));
        assert_eq!(chat.draft, None);
    }

    #[test]
    fn a_quote_brings_its_original_into_view_loading_older_pages() {
        let mut chat = online();
        chat.show_message(2, 0);
        assert_eq!(chat.jump, Some((2, 0)));
        chat.show_message(2, 0);
        assert_eq!(chat.jump, Some((2, 1)), "asking again is a change");
        // A room whose history starts at 101: message 30 is two pages back.
        let join = chat.submit("/join dev", 0).unwrap();
        let history = (101..=150).map(|i| msg("dev", i, "bob")).collect();
        chat.on_message(reply(joined("dev", &["bob"], history), &join[0]), 0);
        let older = chat.show_message(30, 0);
        assert!(matches!(
            older[0].body,
            ClientMessage::History {
                before: Some(101),
                ..
            }
        ));
        let page = (51..=100).map(|i| msg("dev", i, "bob")).collect();
        let history = |messages| ServerMessage::History {
            room: room("dev"),
            messages,
        };
        let next = chat.on_message(reply(history(page), &older[0]), 0);
        assert!(matches!(
            next[0].body,
            ClientMessage::History {
                before: Some(51),
                ..
            }
        ));
        assert_eq!(chat.jump, None);
        let page = (1..=50).map(|i| msg("dev", i, "bob")).collect();
        let done = chat.on_message(reply(history(page), &next[0]), 0);
        assert!(
            done.iter()
                .all(|r| !matches!(r.body, ClientMessage::History { .. }))
        );
        assert_eq!(chat.jump.map(|(id, _)| id), Some(30));
        // Before the beginning there is nothing to load: the user is told.
        chat.show_message(0, 7);
        let last = chat.current().unwrap().lines.back().unwrap().clone();
        assert!(matches!(last.as_ref(), Line::Event { text, .. } if text.contains("no longer")));
    }

    #[test]
    fn direct_conversations_are_found_by_with() {
        use banter_protocol::DirectMessage;
        let mut chat = online();
        let direct = DirectMessage {
            id: 9,
            from: nick("bob"),
            to: nick("alice"),
            text: "psst".into(),
            ts: 1,
            account: Some(nick("bob")),
            notice: false,
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        };
        let bob = || Some(nick("bob"));
        chat.on_message(
            server(ServerMessage::Typing {
                room: None,
                with: bob(),
                nick: nick("bob"),
                state: TypingState::Active,
            }),
            0,
        );
        assert_eq!(
            chat.directs.get(&nick("bob")),
            None,
            "typing opens no conversation"
        );
        chat.on_message(server(ServerMessage::Direct(direct)), 0);
        chat.on_message(
            server(ServerMessage::Typing {
                room: None,
                with: bob(),
                nick: nick("bob"),
                state: TypingState::Active,
            }),
            0,
        );
        chat.on_message(
            server(ServerMessage::Reaction {
                room: None,
                with: bob(),
                id: 9,
                reaction: "👍".into(),
                nick: nick("alice"),
                account: None,
                remove: false,
            }),
            0,
        );
        chat.select(View::Direct(nick("bob")));
        assert_eq!(
            reactions(&chat, 9),
            vec![("👍".into(), vec![nick("alice")])]
        );
        assert_eq!(sentence(&chat, 0), "bob is typing…");
        let react = chat.react(9, "👍");
        assert!(
            matches!(&react[0].body, ClientMessage::React { room: None, with: Some(w), remove: true, .. } if w == &nick("bob"))
        );
        chat.on_message(
            server(ServerMessage::Edited {
                room: None,
                with: bob(),
                id: 9,
                text: "psst!".into(),
                nick: nick("bob"),
                ts: 2,
            }),
            0,
        );
        assert!(matches!(line(&chat, 9), Line::Chat { text, edited: true, .. } if text == "psst!"));
    }

    fn typing(who: &str, state: TypingState) -> ServerMessage {
        ServerMessage::Typing {
            room: Some(room("lobby")),
            with: None,
            nick: nick(who),
            state,
        }
    }

    fn sentence(chat: &Chat, now: u64) -> String {
        typing_sentence(chat.current().unwrap(), now)
    }

    #[test]
    fn who_is_typing_and_when_it_expires() {
        let mut chat = online();
        let t = 100_000;
        assert_eq!(sentence(&chat, t), "");
        chat.on_message(server(typing("bob", TypingState::Active)), t);
        assert_eq!(sentence(&chat, t), "bob is typing…");
        chat.on_message(server(typing("carol", TypingState::Active)), t + 2000);
        assert_eq!(sentence(&chat, t + 2000), "bob and carol are typing…");
        chat.on_message(server(typing("dave", TypingState::Active)), t + 2000);
        assert_eq!(sentence(&chat, t + 2000), "several people are typing…");
        // Paused and done take a name away; so does a message from it.
        chat.on_message(server(typing("dave", TypingState::Paused)), t + 2000);
        chat.on_message(
            server(ServerMessage::Message(msg("lobby", 4, "carol"))),
            t + 2000,
        );
        assert_eq!(sentence(&chat, t + 2000), "bob is typing…");
        // Active lasts 6 s without another; the page redraws when it goes.
        assert!(!chat.expire_typing(t + 5999));
        assert_eq!(sentence(&chat, t + 5999), "bob is typing…");
        assert_eq!(sentence(&chat, t + 6000), "");
        assert!(chat.expire_typing(t + 6000));
        assert!(chat.current().unwrap().typing.is_empty());
        chat.on_message(server(typing("bob", TypingState::Active)), t + 7000);
        chat.on_message(server(typing("bob", TypingState::Done)), t + 8000);
        assert_eq!(sentence(&chat, t + 8000), "");
        // Never ourselves (another device of ours, say).
        chat.on_message(server(typing("alice", TypingState::Active)), t + 8000);
        assert_eq!(sentence(&chat, t + 8000), "");
    }

    fn states(requests: &[Request]) -> Vec<TypingState> {
        requests
            .iter()
            .filter_map(|r| match &r.body {
                ClientMessage::Typing { state, .. } => Some(*state),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn our_typing_goes_at_most_every_three_seconds_then_pauses_and_ends() {
        use TypingState::*;
        let mut chat = online();
        let t = 100_000;
        let first = chat.typed("h", t);
        assert_eq!(
            first[0].body,
            ClientMessage::Typing {
                room: Some(room("lobby")),
                to: None,
                with: None,
                state: Active,
            }
        );
        assert_eq!(states(&chat.typed("hi", t + 1000)), vec![]);
        assert_eq!(states(&chat.tick(t + 2000)), vec![], "already on");
        assert_eq!(states(&chat.typed("hi ", t + 3000)), vec![Active]);
        // Five seconds without typing, with text in the box: paused.
        assert_eq!(states(&chat.tick(t + 7999)), vec![]);
        assert_eq!(states(&chat.tick(t + 8000)), vec![Paused]);
        assert_eq!(states(&chat.tick(t + 20_000)), vec![]);
        // Emptied: done (once).
        assert_eq!(states(&chat.typed("", t + 21_000)), vec![Done]);
        assert_eq!(states(&chat.typed("", t + 21_500)), vec![]);
        // Commands are not typing; sending ends it.
        assert_eq!(states(&chat.typed("/join x", t + 30_000)), vec![]);
        assert_eq!(states(&chat.typed("hello", t + 40_000)), vec![Active]);
        let sent = chat.submit("hello", t + 41_000).unwrap();
        assert!(matches!(sent[0].body, ClientMessage::Say { .. }));
        assert_eq!(states(&sent), vec![Done]);
        // Typing again at once: the notice waits for its 3 s, then goes.
        assert_eq!(states(&chat.typed("n", t + 42_000)), vec![]);
        assert_eq!(states(&chat.tick(t + 43_000)), vec![]);
        assert_eq!(states(&chat.tick(t + 44_000)), vec![Active]);
        assert_eq!(states(&chat.typed("", t + 44_500)), vec![Done]);
        // To a nick in a direct conversation; leaving it ends it there.
        chat.select(View::Direct(nick("bob")));
        let direct = chat.typed("psst", t + 50_000);
        assert!(
            matches!(&direct[0].body, ClientMessage::Typing { to: Some(n), room: None, .. } if n == &nick("bob"))
        );
        let back = chat.select(View::Room(room("lobby")));
        assert!(matches!(
            &back[0].body,
            ClientMessage::Typing {
                to: Some(_),
                state: Done,
                ..
            }
        ));
        // Editing is not typing a message.
        chat.on_message(server(ServerMessage::Message(msg("lobby", 4, "alice"))), 0);
        chat.edit_last();
        assert_eq!(states(&chat.typed("m4!", t + 60_000)), vec![]);
    }

    #[test]
    fn snippets_are_the_first_line_cut_short() {
        assert_eq!(snippet("short"), "short");
        assert_eq!(snippet("one\ntwo"), "one…");
        assert_eq!(snippet(&"é".repeat(100)), format!("{}…", "é".repeat(80)));
        assert_eq!(snippet("\x02bold\x02"), "bold");
    }
}
