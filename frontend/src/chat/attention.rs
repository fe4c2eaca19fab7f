//! Attention: what mentions the user (its nick or a highlight word as a
//! word, and every direct message), mention counts, the account's
//! notification level per room and direct conversation, the system
//! notifications owed while the page is hidden, Web Push bookkeeping,
//! and search. The page (`ui`) shows and sends; the rules live here.

use std::collections::BTreeMap;

use banter_protocol::{ClientMessage, Found, LevelOf, Nick, NotifyLevel, PushKeys, RoomName};

use super::{Chat, Line, Purpose, Request, View};

/// Results asked for per search page.
pub const SEARCH_PAGE: u32 = 30;
/// Most mentions the Mentions panel lists.
pub const MAX_MENTIONS: usize = 100;

/// A message found: a mention or a search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub view: View,
    pub id: u64,
    pub from: Nick,
    pub text: String,
    pub ts: u64,
}

impl From<Found> for Hit {
    fn from(f: Found) -> Hit {
        let view = match (f.room, f.with) {
            (Some(room), _) => View::Room(room),
            (None, Some(with)) => View::Direct(with),
            (None, None) => View::Direct(f.to.unwrap_or_else(|| f.from.clone())),
        };
        Hit {
            view,
            id: f.id,
            from: f.from,
            text: f.text,
            ts: f.ts,
        }
    }
}

/// The search panel's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    pub query: String,
    /// Newest first.
    pub results: Vec<Hit>,
    /// A page was asked for and has not come.
    pub waiting: bool,
    /// The last page was full: older results may exist.
    pub more: bool,
    /// Why the last search failed, for the user.
    pub error: Option<String>,
}

/// A system notification the page owes the user (it is hidden).
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub view: View,
    pub id: u64,
    pub title: String,
    pub body: String,
}

/// The account's attention settings and what they produce.
#[derive(Debug, Default)]
pub struct Attention {
    /// Levels other than the default (mentions).
    pub levels: BTreeMap<View, NotifyLevel>,
    /// Words that mention the user besides its nick.
    pub highlights: Vec<String>,
    pub search: Search,
    /// Waiting for the page to show them (it takes them).
    pub notices: Vec<Notice>,
    /// The server's VAPID public key: Web Push is possible.
    pub vapid_key: Option<String>,
    /// The Web Push endpoint the server confirmed for this browser.
    pub pushing: Option<String>,
}

fn level_of(view: &View, level: NotifyLevel) -> ClientMessage {
    let (room, with) = split(view);
    ClientMessage::NotifyLevel {
        room,
        with,
        level: Some(level),
    }
}

fn split(view: &View) -> (Option<RoomName>, Option<Nick>) {
    match view {
        View::Room(room) => (Some(room.clone()), None),
        View::Direct(nick) => (None, Some(nick.clone())),
    }
}

impl Chat {
    /// Whether `text` (by someone else) names us: our nick or one of our
    /// highlight words, as a word.
    pub fn names_me(&self, text: &str) -> bool {
        self.nick
            .as_ref()
            .is_some_and(|n| crate::text::mentions(text, n.as_str(), &self.attention.highlights))
    }

    /// Whether a line in `view` is a mention for us (direct messages all are).
    pub(super) fn is_mention(&self, view: &View, line: &Line) -> bool {
        match line {
            Line::Chat {
                from,
                text,
                deleted: false,
                ..
            } if self.nick.as_ref() != Some(from) => {
                matches!(view, View::Direct(_)) || self.names_me(text)
            }
            _ => false,
        }
    }

    /// The account's level in a conversation (mentions unless set).
    pub fn level(&self, view: &View) -> NotifyLevel {
        self.attention.levels.get(view).copied().unwrap_or_default()
    }

    /// Sets the level (shown at once; the server tells every device).
    pub fn set_level(&mut self, view: View, level: NotifyLevel) -> Vec<Request> {
        self.version += 1;
        if self.account.is_none() || !self.is_online() {
            return Vec::new();
        }
        let body = level_of(&view, level);
        self.store_level(view, level);
        vec![self.request(Purpose::Say, body)]
    }

    fn store_level(&mut self, view: View, level: NotifyLevel) {
        if level == NotifyLevel::default() {
            self.attention.levels.remove(&view);
        } else {
            self.attention.levels.insert(view, level);
        }
    }

    pub(super) fn on_level(&mut self, of: LevelOf) {
        let view = match (of.room, of.with) {
            (Some(room), _) => View::Room(room),
            (None, Some(nick)) => View::Direct(nick),
            (None, None) => return,
        };
        self.store_level(view, of.level);
    }

    /// `notify_levels` after login: all of the account's levels.
    pub(super) fn on_levels(&mut self, levels: Vec<LevelOf>) {
        self.attention.levels.clear();
        for of in levels {
            self.on_level(of);
        }
    }

    /// Replaces the highlight words (`deploy release`, spaces or commas).
    pub fn set_highlights(&mut self, words: &str) -> Vec<Request> {
        self.version += 1;
        if self.account.is_none() || !self.is_online() {
            return Vec::new();
        }
        let words: Vec<String> = words
            .split([' ', ','])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        let body = ClientMessage::Highlights { words: Some(words) };
        vec![self.request(Purpose::Say, body)]
    }

    /// A message in `view` just arrived live: counts a mention, and owes a
    /// notification when the page is hidden and the level asks for one.
    pub(super) fn attend(&mut self, view: View, line: &Line, counted: bool) {
        let mention = self.is_mention(&view, line);
        let level = self.level(&view);
        if mention
            && counted
            && let Some(conv) = self.conv_mut_of(&view)
        {
            conv.mentions += 1;
        }
        let wanted = match level {
            NotifyLevel::All => {
                !matches!(line, Line::Chat { from, .. } if self.nick.as_ref() == Some(from))
            }
            NotifyLevel::Mentions => mention,
            NotifyLevel::None => false,
        };
        if self.visible || !wanted {
            return;
        }
        if let Line::Chat { id, from, text, .. } = line {
            let title = match &view {
                View::Room(room) => format!("{from} in #{room}"),
                View::Direct(_) => from.to_string(),
            };
            let body = crate::text::decode_action(text)
                .map(|a| format!("* {from} {a}"))
                .unwrap_or_else(|| text.clone());
            self.attention.notices.push(Notice {
                view,
                id: *id,
                title,
                body: banter_protocol::strip_formatting(&body),
            });
        }
    }

    pub(super) fn conv_mut_of(&mut self, view: &View) -> Option<&mut super::Conversation> {
        let (room, with) = split(view);
        self.conv_mut(room, with)
    }

    /// Mentions left unread (for the page title), muted conversations aside.
    pub fn mention_total(&self) -> u32 {
        self.rooms
            .iter()
            .map(|(r, s)| (View::Room(r.clone()), &s.conv))
            .chain(
                self.directs
                    .iter()
                    .map(|(n, c)| (View::Direct(n.clone()), c)),
            )
            .filter(|(v, _)| self.level(v) != NotifyLevel::None)
            .map(|(_, c)| c.mentions)
            .sum()
    }

    /// The recent mentions among the messages loaded, newest first.
    pub fn recent_mentions(&self) -> Vec<Hit> {
        let rooms = self
            .rooms
            .iter()
            .map(|(r, s)| (View::Room(r.clone()), &s.conv));
        let directs = self
            .directs
            .iter()
            .map(|(n, c)| (View::Direct(n.clone()), c));
        // Each conversation's, oldest first; merged newest first by hand
        // (a sort would cost more download than this loop).
        let mut each: Vec<Vec<Hit>> = rooms
            .chain(directs)
            .map(|(view, conv)| {
                conv.lines
                    .iter()
                    .filter(|l| self.is_mention(&view, l))
                    .filter_map(|l| match &**l {
                        Line::Chat {
                            id, from, text, ts, ..
                        } => Some(Hit {
                            view: view.clone(),
                            id: *id,
                            from: from.clone(),
                            text: text.clone(),
                            ts: *ts,
                        }),
                        Line::Event { .. } => None,
                    })
                    .collect()
            })
            .collect();
        let mut hits = Vec::new();
        while hits.len() < MAX_MENTIONS {
            let newest = each
                .iter_mut()
                .filter(|c| !c.is_empty())
                .max_by_key(|c| c.last().map_or(0, |h| h.ts));
            match newest.and_then(Vec::pop) {
                Some(hit) => hits.push(hit),
                None => break,
            }
        }
        hits
    }

    /// Opens `view` at message `id` (a mention, a search result, a
    /// notification's click): older pages load until it is there.
    pub fn open_at(&mut self, view: View, id: u64, now: u64) -> Vec<Request> {
        let mut out = self.select(view);
        out.extend(self.show_message(id, now));
        out
    }

    /// A new search (the search box's submit).
    pub fn search(&mut self, query: &str) -> Vec<Request> {
        self.version += 1;
        self.attention.search = Search {
            query: query.trim().to_string(),
            ..Search::default()
        };
        self.search_page(None)
    }

    /// The next page of older results.
    pub fn search_older(&mut self) -> Vec<Request> {
        // `before_ts` is exclusive: ask from the last result's millisecond
        // on, and leave out what is shown already.
        let last = self.attention.search.results.last().map(|h| h.ts + 1);
        self.search_page(last)
    }

    fn search_page(&mut self, before_ts: Option<u64>) -> Vec<Request> {
        let online = self.is_online();
        let s = &mut self.attention.search;
        if s.query.is_empty() || s.waiting {
            return Vec::new();
        }
        if !online {
            s.error = Some("Not connected: wait until Banter is back online.".into());
            return Vec::new();
        }
        s.waiting = true;
        let body = ClientMessage::Search {
            query: s.query.clone(),
            limit: Some(SEARCH_PAGE),
            before: None,
            before_ts,
        };
        vec![self.request(Purpose::Search, body)]
    }

    pub(super) fn on_search_results(&mut self, found: Vec<Found>) {
        let s = &mut self.attention.search;
        s.waiting = false;
        s.more = found.len() >= SEARCH_PAGE as usize;
        let before = s.results.len();
        for hit in found.into_iter().map(Hit::from) {
            if !s
                .results
                .iter()
                .any(|h| h.id == hit.id && h.view == hit.view)
            {
                s.results.push(hit);
            }
        }
        if s.results.len() == before {
            s.more = false;
        }
    }

    pub(super) fn on_search_error(&mut self, message: String) {
        let s = &mut self.attention.search;
        s.waiting = false;
        s.error = Some(message);
    }

    /// This browser's push subscription, for the account.
    pub fn push_subscribe(
        &mut self,
        endpoint: String,
        p256dh: String,
        auth: String,
    ) -> Vec<Request> {
        self.version += 1;
        if !self.is_online() {
            return Vec::new();
        }
        let keys = PushKeys { p256dh, auth };
        vec![self.request(
            Purpose::Say,
            ClientMessage::PushSubscribe { endpoint, keys },
        )]
    }

    pub fn push_unsubscribe(&mut self, endpoint: String) -> Vec<Request> {
        self.version += 1;
        self.attention.pushing = None;
        if !self.is_online() {
            return Vec::new();
        }
        vec![self.request(Purpose::Say, ClientMessage::PushUnsubscribe { endpoint })]
    }
}

#[cfg(test)]
mod tests {
    use banter_protocol::{ChatMessage, DirectMessage, ErrorCode, ServerMessage};

    use super::*;
    use crate::chat::tests::{joined, msg, nick, online, reply, room, server};

    fn said(r: &str, id: u64, from: &str, text: &str) -> ChatMessage {
        ChatMessage {
            text: text.into(),
            ..msg(r, id, from)
        }
    }

    fn direct(id: u64, from: &str, text: &str) -> DirectMessage {
        DirectMessage {
            id,
            from: nick(from),
            to: nick("alice"),
            text: text.into(),
            ts: 5_000 + id,
            account: None,
            notice: false,
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }

    /// `online()`, logged in, also in `den` (not on screen).
    fn in_two_rooms() -> Chat {
        let mut chat = online();
        chat.account = Some(nick("alice"));
        let join = chat.submit("/join den", 0).unwrap();
        chat.on_message(reply(joined("den", &["bob", "alice"], vec![]), &join[0]), 0);
        chat.select(View::Room(room("lobby")));
        chat
    }

    fn hear(chat: &mut Chat, m: ChatMessage) {
        chat.on_message(server(ServerMessage::Message(m)), 0);
    }

    fn den() -> View {
        View::Room(room("den"))
    }

    #[test]
    fn mentions_are_counted_apart_from_unread() {
        let mut chat = in_two_rooms();
        hear(&mut chat, said("den", 1, "bob", "hey Alice, look"));
        hear(&mut chat, said("den", 2, "bob", "just chatting"));
        hear(&mut chat, said("den", 3, "bob", "alicex is not you"));
        let den_conv = &chat.rooms[&room("den")].conv;
        assert_eq!((den_conv.unread, den_conv.mentions), (3, 1));
        // A highlight word counts too, once the server told it.
        chat.on_message(
            server(ServerMessage::Highlights {
                words: vec!["deploy".into()],
            }),
            0,
        );
        hear(&mut chat, said("den", 4, "bob", "Deploy at noon?"));
        assert_eq!(chat.rooms[&room("den")].conv.mentions, 2);
        assert_eq!(chat.mention_total(), 2);
        // What we say ourselves never mentions us.
        hear(&mut chat, said("den", 5, "alice", "alice here, deploying"));
        assert_eq!(chat.mention_total(), 2);
        // Seen on screen: none left.
        chat.select(den());
        assert_eq!(chat.rooms[&room("den")].conv.mentions, 0);
        assert_eq!(chat.mention_total(), 0);
        // The Mentions panel lists them all, newest first, with their place.
        let recent = chat.recent_mentions();
        assert_eq!(recent.iter().map(|h| h.id).collect::<Vec<_>>(), vec![4, 1]);
        assert_eq!(recent[0].view, den());
    }

    #[test]
    fn direct_messages_always_count() {
        let mut chat = in_two_rooms();
        chat.on_message(server(ServerMessage::Direct(direct(1, "carol", "psst"))), 0);
        assert_eq!(chat.directs[&nick("carol")].mentions, 1);
        assert_eq!(chat.mention_total(), 1);
        assert_eq!(chat.recent_mentions()[0].view, View::Direct(nick("carol")));
    }

    #[test]
    fn levels_come_from_the_server_and_muted_rooms_count_nothing() {
        let mut chat = in_two_rooms();
        chat.on_message(
            server(ServerMessage::NotifyLevels {
                levels: vec![LevelOf {
                    room: Some(room("den")),
                    with: None,
                    level: NotifyLevel::None,
                }],
            }),
            0,
        );
        assert_eq!(chat.level(&den()), NotifyLevel::None);
        hear(&mut chat, said("den", 1, "bob", "alice: muted?"));
        // Still unread there (the room list shows a dot), but no count
        // reaches the title.
        assert_eq!(chat.rooms[&room("den")].conv.unread, 1);
        assert_eq!((chat.unread_total(), chat.mention_total()), (0, 0));
        // Another device of the account unmutes it.
        chat.on_message(
            server(ServerMessage::NotifyLevel(LevelOf {
                room: Some(room("den")),
                with: None,
                level: NotifyLevel::Mentions,
            })),
            0,
        );
        assert_eq!((chat.unread_total(), chat.mention_total()), (1, 1));
        assert!(chat.attention.levels.is_empty(), "the default is not kept");
        // Our own change is shown at once and asked of the server.
        let sent = chat.set_level(View::Direct(nick("bob")), NotifyLevel::All);
        assert_eq!(
            sent[0].body,
            ClientMessage::NotifyLevel {
                room: None,
                with: Some(nick("bob")),
                level: Some(NotifyLevel::All),
            }
        );
        assert_eq!(chat.level(&View::Direct(nick("bob"))), NotifyLevel::All);
        // Guests have no levels to set.
        chat.account = None;
        assert!(chat.set_level(den(), NotifyLevel::All).is_empty());
    }

    #[test]
    fn a_hidden_page_owes_notifications_at_the_rooms_level() {
        let mut chat = in_two_rooms();
        hear(&mut chat, said("den", 1, "bob", "alice?"));
        assert!(chat.attention.notices.is_empty(), "the page is visible");
        chat.set_visible(false);
        hear(&mut chat, said("den", 2, "bob", "just chatting"));
        hear(&mut chat, said("den", 3, "bob", "alice, you there?"));
        assert_eq!(
            chat.attention.notices,
            vec![Notice {
                view: den(),
                id: 3,
                title: "bob in #den".into(),
                body: "alice, you there?".into(),
            }]
        );
        chat.attention.notices.clear();
        chat.set_level(den(), NotifyLevel::All);
        hear(&mut chat, said("den", 4, "bob", "anything"));
        hear(&mut chat, said("den", 5, "alice", "mine"));
        assert_eq!(chat.attention.notices.len(), 1);
        chat.attention.notices.clear();
        chat.set_level(den(), NotifyLevel::None);
        hear(&mut chat, said("den", 6, "bob", "alice!"));
        assert!(chat.attention.notices.is_empty());
        chat.on_message(server(ServerMessage::Direct(direct(1, "carol", "psst"))), 0);
        assert_eq!(chat.attention.notices[0].title, "carol");
    }

    #[test]
    fn read_positions_recount_mentions() {
        let mut chat = in_two_rooms();
        hear(&mut chat, said("den", 1, "bob", "alice one"));
        hear(&mut chat, said("den", 2, "bob", "alice two"));
        assert_eq!(chat.rooms[&room("den")].conv.mentions, 2);
        // Read up to 1 on another device.
        chat.on_message(
            server(ServerMessage::Read(banter_protocol::ReadPosition {
                room: Some(room("den")),
                with: None,
                id: 1,
                ts: 0,
            })),
            0,
        );
        assert_eq!(chat.rooms[&room("den")].conv.mentions, 1);
    }

    fn found(room: Option<&str>, with: Option<&str>, id: u64, ts: u64) -> Found {
        Found {
            room: room.map(super::super::tests::room),
            with: with.map(nick),
            id,
            from: nick("bob"),
            to: with.map(|_| nick("alice")),
            text: format!("plan {id}"),
            ts,
            account: None,
            reply_to: None,
            edited: None,
        }
    }

    #[test]
    fn search_pages_back_and_opens_a_result_at_its_message() {
        let mut chat = in_two_rooms();
        let ask = chat.search("  plan ");
        assert_eq!(
            ask[0].body,
            ClientMessage::Search {
                query: "plan".into(),
                limit: Some(SEARCH_PAGE),
                before: None,
                before_ts: None,
            }
        );
        assert!(chat.search_older().is_empty(), "one page at a time");
        let mut page: Vec<Found> = (0..SEARCH_PAGE as u64)
            .map(|i| found(Some("lobby"), None, 100 - i, 10_000 - i))
            .collect();
        page[1] = found(None, Some("carol"), 7, 9_999);
        chat.on_message(
            reply(ServerMessage::SearchResults { messages: page }, &ask[0]),
            0,
        );
        let s = &chat.attention.search;
        assert!(!s.waiting && s.more);
        assert_eq!(s.results[1].view, View::Direct(nick("carol")));
        let last_ts = s.results.last().unwrap().ts;
        let older = chat.search_older();
        assert!(matches!(
            older[0].body,
            ClientMessage::Search { before_ts: Some(ts), .. } if ts == last_ts + 1
        ));
        // The overlap is not shown twice; a page adding nothing ends it.
        let again = vec![found(Some("lobby"), None, 71, last_ts)];
        chat.on_message(
            reply(ServerMessage::SearchResults { messages: again }, &older[0]),
            0,
        );
        assert_eq!(chat.attention.search.results.len(), SEARCH_PAGE as usize);
        assert!(!chat.attention.search.more);
        // A result far back: the room opens and loads a big page before it.
        chat.rooms.get_mut(&room("lobby")).unwrap().more_before = true;
        let open = chat.open_at(View::Room(room("lobby")), 71, 0);
        assert!(matches!(
            open.last().unwrap().body,
            ClientMessage::History {
                before: Some(1),
                limit: Some(200),
                ..
            }
        ));
        assert_eq!(chat.view, Some(View::Room(room("lobby"))));
    }

    #[test]
    fn search_refusals_become_sentences() {
        let mut chat = in_two_rooms();
        let ask = chat.search("x");
        chat.on_message(
            reply(
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    message: "slow down".into(),
                },
                &ask[0],
            ),
            0,
        );
        let s = &chat.attention.search;
        assert!(!s.waiting);
        assert_eq!(
            s.error.as_deref(),
            Some("Too many searches: wait a minute, then try again.")
        );
    }
}
