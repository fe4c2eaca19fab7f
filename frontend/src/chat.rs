//! The client's state and all of its protocol logic, free of any browser
//! API so it is unit-tested natively: what the user sees (rooms, direct
//! conversations, members, unread counts, connection status) and what to
//! send in answer to each server event or user command — including the
//! reconnection bookkeeping (rejoin every room, fill exactly the gap since
//! the last message seen in each).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::rc::Rc;

use banter_protocol::{
    ChatMessage, ClientMessage, DirectMessage, Envelope, ErrorCode, Limits, MAX_HISTORY_PAGE,
    ModeChange, Nick, PresenceEvent, Reaction, Ref, RoomModes, RoomName, ServerMessage, Topic,
    TypingState,
};

pub use admin::{Admin, AdminAsk, ban_target};
use attention::Attention;
pub use attention::Hit;
use rich::Change;
pub use rich::{Draft, Quote, typing_sentence};

use crate::command::{self, Command};
use crate::reconnect;
use crate::text;

mod admin;
mod attention;
mod rich;

/// Lines kept per conversation; older ones scroll away as new ones come,
/// and scrolling back stops loading there.
pub const MAX_LINES: usize = 3000;
/// Messages asked for per "load older" page.
pub const OLDER_PAGE: u32 = 50;
/// Live messages held back while a room catches up.
const MAX_HELD: usize = 2000;
/// Least time between two `mark_read`s as messages arrive (ms); the
/// server allows two a second.
const MARK_EVERY_MS: u64 = 1000;

pub type Request = Envelope<ClientMessage>;

/// Which conversation is on screen; also the page's URL fragment
/// (`#lobby`, `#@bob`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum View {
    Room(RoomName),
    Direct(Nick),
}

impl View {
    pub fn fragment(&self) -> String {
        match self {
            View::Room(room) => room.to_string(),
            View::Direct(nick) => format!("@{nick}"),
        }
    }

    pub fn from_fragment(fragment: &str) -> Option<View> {
        let fragment = fragment.trim_start_matches('#');
        match fragment.strip_prefix('@') {
            Some(nick) => Nick::new(nick).ok().map(View::Direct),
            None => RoomName::new(fragment).ok().map(View::Room),
        }
    }

    pub fn title(&self) -> String {
        match self {
            View::Room(room) => format!("#{room}"),
            View::Direct(nick) => format!("@{nick}"),
        }
    }
}

/// One entry of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Chat {
        id: u64,
        from: Nick,
        text: String,
        ts: u64,
        /// The message this one answers.
        reply_to: Option<u64>,
        /// Its text was edited since it was sent.
        edited: bool,
        /// A tombstone: the text is gone, the place stays.
        deleted: bool,
        /// In the order they were first left.
        reactions: Vec<Reaction>,
    },
    /// Presence and notices from the client itself.
    Event { text: String, ts: u64 },
}

impl From<ChatMessage> for Line {
    fn from(m: ChatMessage) -> Line {
        Line::Chat {
            id: m.id,
            from: m.from,
            text: m.text,
            ts: m.ts,
            reply_to: m.reply_to,
            edited: m.edited.is_some(),
            deleted: m.deleted,
            reactions: m.reactions,
        }
    }
}

impl From<DirectMessage> for Line {
    fn from(d: DirectMessage) -> Line {
        Line::Chat {
            id: d.id,
            from: d.from,
            text: d.text,
            ts: d.ts,
            reply_to: d.reply_to,
            edited: d.edited.is_some(),
            deleted: d.deleted,
            reactions: d.reactions,
        }
    }
}

impl Line {
    pub fn ts(&self) -> u64 {
        match self {
            Line::Chat { ts, .. } | Line::Event { ts, .. } => *ts,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conversation {
    /// Shared with the view, which redraws only the lines that are new.
    pub lines: VecDeque<Rc<Line>>,
    pub unread: u32,
    /// Of the unread, those that mention us.
    pub mentions: u32,
    /// The newest message the account has read here (its position on the
    /// server, shared by all its devices).
    read: u64,
    /// The server keeps a position here: a room, or a direct conversation
    /// with an account.
    positions: bool,
    /// Who is typing here, and until when (ms) that holds.
    pub typing: Vec<(Nick, u64)>,
}

impl Conversation {
    /// The newest message's id (0: none).
    fn newest(&self) -> u64 {
        self.lines
            .iter()
            .rev()
            .find_map(|l| match &**l {
                Line::Chat { id, .. } => Some(*id),
                Line::Event { .. } => None,
            })
            .unwrap_or(0)
    }

    /// The account read up to `id` (on any device): unread are the others'
    /// messages after it. Positions only move forward.
    fn read_up_to(&mut self, id: u64, me: Option<&Nick>) {
        self.positions = true;
        if id <= self.read {
            return;
        }
        self.read = id;
        let after = |l: &Rc<Line>| matches!(&**l, Line::Chat { id: i, from, .. } if *i > id && Some(from) != me);
        self.unread = self.lines.iter().filter(|l| after(l)).count() as u32;
    }

    fn push(&mut self, line: Line) {
        if self.lines.len() >= MAX_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(Rc::new(line));
    }

    fn event(&mut self, text: impl Into<String>, ts: u64) {
        self.push(Line::Event {
            text: text.into(),
            ts,
        });
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RoomState {
    pub conv: Conversation,
    /// Sorted, case-insensitively.
    pub members: Vec<Nick>,
    /// The newest message id shown; what a gap fill asks `after`.
    pub last_id: u64,
    /// Whether the server has answered our `join` on this connection.
    pub joined: bool,
    pub topic: Option<Topic>,
    /// Fetching `history after last_id`; live messages wait in `held`.
    pub syncing: bool,
    /// Whether older messages than the first one shown may exist.
    pub more_before: bool,
    /// A "load older" page is on its way.
    pub loading_older: bool,
    /// Who runs the room (account names), once it has an owner.
    pub owner: Option<Nick>,
    pub ops: Vec<Nick>,
    /// Who gets in and who speaks (`+i`, `+k`, `+l`, `+m`, `+s`, `+R`).
    pub modes: RoomModes,
    /// The members with a voice (`+v`).
    pub voiced: Vec<Nick>,
    /// The key we joined with, or the room's as its members are told:
    /// joining again after a reconnect gives it.
    key: Option<String>,
    held: Vec<ChatMessage>,
}

impl RoomState {
    /// Appends the messages newer than anything shown; returns how many.
    fn append_new(&mut self, messages: impl IntoIterator<Item = ChatMessage>) -> u32 {
        let mut added = 0;
        for m in messages {
            if m.id > self.last_id {
                self.last_id = m.id;
                self.conv.push(m.into());
                added += 1;
            }
        }
        added
    }

    fn first_id(&self) -> Option<u64> {
        self.conv.lines.iter().find_map(|l| match l.as_ref() {
            Line::Chat { id, .. } => Some(*id),
            Line::Event { .. } => None,
        })
    }

    /// Puts a page of older messages before everything shown.
    fn prepend_older(&mut self, messages: Vec<ChatMessage>, full_page: bool) {
        let first = self.first_id().unwrap_or(u64::MAX);
        let room = MAX_LINES.saturating_sub(self.conv.lines.len());
        let older: Vec<ChatMessage> = messages.into_iter().filter(|m| m.id < first).collect();
        let skip = older.len().saturating_sub(room);
        for m in older.into_iter().skip(skip).rev() {
            self.conv.lines.push_front(Rc::new(m.into()));
        }
        self.more_before = full_page && skip == 0 && self.first_id().is_some_and(|id| id > 1);
        self.loading_older = false;
    }

    fn set_members(&mut self, mut members: Vec<Nick>) {
        members.sort();
        members.dedup();
        self.members = members;
    }

    fn add_member(&mut self, nick: Nick) {
        if let Err(pos) = self.members.binary_search(&nick) {
            self.members.insert(pos, nick);
        }
    }

    fn remove_member(&mut self, nick: &Nick) {
        self.members.retain(|m| m != nick);
        self.voiced.retain(|m| m != nick);
    }

    /// A member changed nick: its voice goes with it.
    fn rename(&mut self, old: &Nick, new: &Nick) {
        let voiced = self.voiced.contains(old);
        self.remove_member(old);
        self.add_member(new.clone());
        if voiced {
            self.voiced.push(new.clone());
        }
    }

    /// Takes the room's modes (and its key, when told one).
    fn set_modes(&mut self, modes: RoomModes) {
        if modes.key.is_some() {
            self.key = modes.key.clone();
        }
        self.modes = modes;
    }
}

/// A room's modes in words, for its settings ("open to everyone" if none).
pub fn describe_modes(m: &RoomModes) -> String {
    let mut said: Vec<String> = [
        (m.invite_only, "Invite only"),
        (m.key.is_some(), "Key needed"),
        (m.moderated, "Moderated"),
        (m.secret, "Secret"),
        (m.registered_only, "Accounts only"),
    ]
    .into_iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| name.to_string())
    .collect();
    if let Some(limit) = m.limit {
        said.push(format!("At most {limit} members"));
    }
    if said.is_empty() {
        "Open to everyone".into()
    } else {
        said.join(" · ")
    }
}

/// What changed from `old` to `new`, in words ("invite only on, key set").
fn mode_changes(old: &RoomModes, new: &RoomModes) -> String {
    let mut said: Vec<String> = [
        (old.invite_only, new.invite_only, "invite only"),
        (old.moderated, new.moderated, "moderated"),
        (old.secret, new.secret, "secret"),
        (old.registered_only, new.registered_only, "accounts only"),
        (old.key.is_some(), new.key.is_some(), "key"),
    ]
    .into_iter()
    .filter(|(was, is, _)| was != is)
    .map(|(_, is, name)| format!("{name} {}", if is { "on" } else { "off" }))
    .collect();
    if old.limit != new.limit {
        said.push(match new.limit {
            Some(limit) => format!("at most {limit} members"),
            None => "no member limit".into(),
        });
    }
    said.join(", ")
}

/// The request for a moderation command (`/kick nick`, the member list's
/// buttons) in `room`; any other name is `deop`.
fn moderation(what: &str, room: RoomName, target: Nick) -> ClientMessage {
    match what {
        "kick" => ClientMessage::Kick {
            room,
            nick: target,
            reason: None,
        },
        "ban" => ClientMessage::Ban {
            room,
            nick: Some(target),
            account: None,
            mask: None,
        },
        "unban" => ClientMessage::Unban {
            room,
            nick: Some(target),
            account: None,
            mask: None,
        },
        "op" => ClientMessage::Op {
            room,
            account: target,
        },
        "invite" => ClientMessage::Invite { room, nick: target },
        "voice" => ClientMessage::Voice { room, nick: target },
        "devoice" => ClientMessage::Devoice { room, nick: target },
        _ => ClientMessage::Deop {
            room,
            account: target,
        },
    }
}

/// Where the connection stands, always shown to the user.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// No nick chosen yet: the sign-in form.
    SignedOut,
    /// Opening the WebSocket (try `attempt`, 0 for the first).
    Connecting {
        attempt: u32,
    },
    /// `hello` sent, waiting for `welcome`.
    Registering,
    /// The server refused the nick at sign-in: the form shows why.
    NickRefused(String),
    Online,
    /// Disconnected; the next try starts after `wait_ms`.
    Offline {
        attempt: u32,
        wait_ms: u64,
        reason: Option<String>,
    },
}

/// What a request with a given `ref` was for, to route its answer.
#[derive(Clone, Debug, PartialEq)]
enum Purpose {
    Hello,
    Join(RoomName),
    GapFill(RoomName),
    Older(RoomName),
    Say,
    Whisper(Nick),
    Part,
    Nick,
    TopicQuery,
    Whois,
    Register,
    Logout,
    Account(AccountAction),
    Admin(AdminAsk),
    MarkRead,
    Search,
    /// A `typing` notice: a refusal is not worth telling.
    Typing,
}

/// A panel shown in the conversation's place.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Panel {
    Account,
    Admin,
    /// Recent mentions, notification settings.
    Mentions,
    Search,
}

/// What the Account panel asked the server to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AccountAction {
    ChangePassword,
    SignOutEverywhere,
    Delete,
}

/// How the Account panel's last request went: a sentence for the user,
/// `Ok` when it was done.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountReply {
    pub action: AccountAction,
    pub result: Result<String, String>,
}

#[derive(Debug)]
pub struct Chat {
    /// The nick we have, or want at the next `hello`.
    pub nick: Option<Nick>,
    /// The account we are logged into.
    pub account: Option<Nick>,
    /// Logs in at every `hello` (kept in local storage).
    pub token: Option<String>,
    /// Used once, for the `hello` (or `register`) after the sign-in form.
    password: Option<String>,
    /// The sign-in form asked to create the account first.
    create_account: bool,
    /// The invite code for that `register`, if the form had one.
    invite: Option<String>,
    /// The account administers the server (`logged_in` says so).
    pub administers: bool,
    /// The panel on screen in the conversation's place, if any.
    pub panel: Option<Panel>,
    /// What the Administration panel shows.
    pub admin: Admin,
    /// The Account panel's request on its way, if any.
    pub account_waiting: Option<AccountAction>,
    /// The answer to the Account panel's last request.
    pub account_reply: Option<AccountReply>,
    /// The user signed out: the page forgets the session.
    pub signed_out: bool,
    /// The sign-in form was sent and has no answer yet: it stays on screen.
    pub signing_in: bool,
    pub status: Status,
    pub rooms: BTreeMap<RoomName, RoomState>,
    pub directs: BTreeMap<Nick, Conversation>,
    /// Users known to be away, with their messages.
    pub away: BTreeMap<Nick, String>,
    /// Users known to be bots (`profile`; IRC's `+B`).
    pub bots: BTreeSet<Nick>,
    pub view: Option<View>,
    pub limits: Option<Limits>,
    /// Mentions, notification levels, notifications, search.
    pub attention: Attention,
    /// Whether the page is visible (hidden pages count everything unread).
    pub visible: bool,
    /// Set by `welcome`; a later `hello` is then a reconnection.
    was_online: bool,
    /// Whether a WebSocket is open right now.
    open: bool,
    attempt: u32,
    next_ref: i64,
    pending: HashMap<i64, Purpose>,
    /// When the last `mark_read` went (ms), and whether the conversation
    /// on screen has more to mark: marks go at most once a second.
    marked_at: u64,
    mark_due: bool,
    /// The message list shows the newest message (not scrolled up): only
    /// then is what arrives read.
    pub reading: bool,
    /// What the composer is doing besides a new message: a reply or an edit.
    pub draft: Option<Draft>,
    /// The message to bring into view and highlight, and a count that
    /// makes asking again for the same message a change.
    pub jump: Option<(u64, u32)>,
    /// The message whose reaction picker is open.
    pub picking: Option<u64>,
    /// The message a click on a quote asked for, while older pages load.
    seek: Option<u64>,
    /// What we last told the server of our typing, and where.
    typing_out: Option<(View, TypingState)>,
    /// When a notice of typing may go again (the server relays one every
    /// few seconds), and when the user last typed (ms).
    typing_next: u64,
    typed_at: u64,
    /// The user typed while a notice had to wait: it goes when it may.
    typing_owed: bool,
    /// Bumped on every change, so views know when to redraw.
    pub version: u64,
}

impl Default for Chat {
    fn default() -> Self {
        Chat::new(None, Vec::new())
    }
}

impl Chat {
    /// A client that remembers `nick` and `rooms` (from local storage).
    pub fn new(nick: Option<Nick>, rooms: Vec<RoomName>) -> Self {
        Chat {
            account: None,
            token: None,
            password: None,
            create_account: false,
            invite: None,
            administers: false,
            panel: None,
            admin: Admin::default(),
            account_waiting: None,
            account_reply: None,
            signed_out: false,
            signing_in: false,
            status: if nick.is_some() {
                Status::Connecting { attempt: 0 }
            } else {
                Status::SignedOut
            },
            nick,
            view: rooms.first().cloned().map(View::Room),
            rooms: rooms
                .into_iter()
                .map(|r| (r, RoomState::default()))
                .collect(),
            directs: BTreeMap::new(),
            away: BTreeMap::new(),
            bots: BTreeSet::new(),
            limits: None,
            attention: Attention::default(),
            visible: true,
            was_online: false,
            open: false,
            attempt: 0,
            next_ref: 0,
            pending: HashMap::new(),
            marked_at: 0,
            mark_due: false,
            reading: true,
            draft: None,
            jump: None,
            picking: None,
            seek: None,
            typing_out: None,
            typing_next: 0,
            typed_at: 0,
            typing_owed: false,
            version: 0,
        }
    }

    fn request(&mut self, purpose: Purpose, body: ClientMessage) -> Request {
        self.next_ref += 1;
        self.pending.insert(self.next_ref, purpose);
        Envelope::with_ref(body, Some(Ref::Int(self.next_ref)))
    }

    fn hello(&mut self) -> Vec<Request> {
        let Some(nick) = self.nick.clone() else {
            return Vec::new();
        };
        self.status = Status::Registering;
        if self.create_account
            && let Some(password) = self.password.clone()
        {
            return vec![self.request(
                Purpose::Register,
                ClientMessage::Register {
                    nick,
                    password,
                    invite: self.invite.clone(),
                },
            )];
        }
        let (password, token) = match (&self.token, &self.password) {
            (Some(token), _) => (None, Some(token.clone())),
            (None, password) => (password.clone(), None),
        };
        vec![self.request(
            Purpose::Hello,
            ClientMessage::Hello {
                nick,
                password,
                token,
                realname: None,
                username: None,
                bot: false,
            },
        )]
    }

    /// Signs out: revokes the login token on the server first, if any.
    pub fn sign_out(&mut self) -> Vec<Request> {
        self.version += 1;
        if self.token.is_some() && self.is_online() {
            vec![self.request(Purpose::Logout, ClientMessage::Logout { all: false })]
        } else {
            self.signed_out = true;
            Vec::new()
        }
    }

    /// The Account panel's requests; the answer lands in `account_reply`.
    fn account_request(&mut self, action: AccountAction, body: ClientMessage) -> Vec<Request> {
        self.version += 1;
        self.account_reply = None;
        if self.account.is_none() || !self.is_online() {
            self.account_reply = Some(AccountReply {
                action,
                result: Err("Not connected: wait until Banter is back online.".into()),
            });
            return Vec::new();
        }
        self.account_waiting = Some(action);
        vec![self.request(Purpose::Account(action), body)]
    }

    pub fn change_password(&mut self, old_password: String, new_password: String) -> Vec<Request> {
        self.account_request(
            AccountAction::ChangePassword,
            ClientMessage::ChangePassword {
                old_password,
                new_password,
            },
        )
    }

    /// Revokes every login of the account and ends its other sessions;
    /// this page then signs out too.
    pub fn sign_out_everywhere(&mut self) -> Vec<Request> {
        self.account_request(
            AccountAction::SignOutEverywhere,
            ClientMessage::Logout { all: true },
        )
    }

    /// Deletes the account; this session goes on as a guest.
    pub fn delete_account(&mut self, password: String) -> Vec<Request> {
        self.account_request(
            AccountAction::Delete,
            ClientMessage::DeleteAccount { password },
        )
    }

    /// Shows a panel (or, `None`, the conversation again), without an old
    /// answer; the Administration panel asks for fresh lists.
    pub fn open_panel(&mut self, panel: Option<Panel>) -> Vec<Request> {
        self.version += 1;
        self.panel = panel;
        self.account_reply = None;
        self.admin.reply = None;
        match panel {
            Some(Panel::Admin) => self.admin_refresh(),
            _ => Vec::new(),
        }
    }

    fn account_answer(&mut self, action: AccountAction, result: Result<String, String>) {
        self.account_waiting = None;
        self.account_reply = Some(AccountReply { action, result });
    }

    /// Whether we may kick, ban, set the topic and the modes in `room`
    /// (its owner, its operators, and server administrators).
    pub fn is_operator(&self, room: &RoomName) -> bool {
        let (Some(account), Some(r)) = (&self.account, self.rooms.get(room)) else {
            return false;
        };
        self.administers || r.owner.as_ref() == Some(account) || r.ops.contains(account)
    }

    /// Whether we may set the topic: anyone in a room without an owner.
    pub fn may_set_topic(&self, room: &RoomName) -> bool {
        self.rooms.get(room).is_some_and(|r| r.owner.is_none()) || self.is_operator(room)
    }

    /// An operator's action from the member list: `what` is a command
    /// name (`kick`, `ban`, `voice`, `devoice`).
    pub fn moderate(&mut self, room: RoomName, nick: Nick, what: &str) -> Vec<Request> {
        vec![self.request(Purpose::Say, moderation(what, room, nick))]
    }

    /// An operator saved the room settings: asks for what differs.
    pub fn set_modes(&mut self, room: RoomName, want: RoomModes) -> Vec<Request> {
        let Some(have) = self.rooms.get(&room).map(|r| &r.modes) else {
            return Vec::new();
        };
        let flag = |have: bool, want: bool| (have != want).then_some(want);
        let change = ModeChange {
            invite_only: flag(have.invite_only, want.invite_only),
            key: (have.key != want.key).then(|| want.key.unwrap_or_default()),
            limit: (have.limit != want.limit).then(|| want.limit.unwrap_or(0)),
            moderated: flag(have.moderated, want.moderated),
            secret: flag(have.secret, want.secret),
            registered_only: flag(have.registered_only, want.registered_only),
        };
        if change.is_empty() {
            return Vec::new();
        }
        let set = Some(change);
        vec![self.request(Purpose::Say, ClientMessage::Mode { room, set })]
    }

    /// Invites `nick` into the room on screen (the member list's Invite).
    pub fn invite(&mut self, nick: Nick) -> Vec<Request> {
        let Some(View::Room(room)) = self.view.clone() else {
            return Vec::new();
        };
        vec![self.request(Purpose::Say, ClientMessage::Invite { room, nick })]
    }

    /// Sets the topic of the room on screen.
    pub fn set_topic(&mut self, text: String) -> Vec<Request> {
        let Some(View::Room(room)) = self.view.clone() else {
            return Vec::new();
        };
        vec![self.request(
            Purpose::Say,
            ClientMessage::Topic {
                room,
                text: Some(text),
            },
        )]
    }

    pub fn is_online(&self) -> bool {
        self.status == Status::Online
    }

    /// Whether the app should hold a connection open.
    pub fn wants_connection(&self) -> bool {
        self.nick.is_some()
    }

    /// The rooms to remember in local storage.
    pub fn saved_rooms(&self) -> Vec<String> {
        self.rooms.keys().map(|r| r.to_string()).collect()
    }

    /// Total unread, for the page title (muted conversations aside).
    pub fn unread_total(&self) -> u32 {
        let muted = |v: View| self.level(&v) == banter_protocol::NotifyLevel::None;
        let rooms = self
            .rooms
            .iter()
            .filter(|(r, _)| !muted(View::Room((*r).clone())));
        let directs = self
            .directs
            .iter()
            .filter(|(n, _)| !muted(View::Direct((*n).clone())));
        rooms.map(|(_, r)| r.conv.unread).sum::<u32>() + directs.map(|(_, c)| c.unread).sum::<u32>()
    }

    /// The conversation on screen.
    pub fn current(&self) -> Option<&Conversation> {
        match self.view.as_ref()? {
            View::Room(room) => self.rooms.get(room).map(|r| &r.conv),
            View::Direct(nick) => self.directs.get(nick),
        }
    }

    /// The user chose a nick on the sign-in form.
    /// `invite` goes with a new account's `register` (some servers need one).
    pub fn sign_in(
        &mut self,
        nick: Nick,
        password: Option<String>,
        create: bool,
        invite: Option<String>,
    ) -> Vec<Request> {
        self.version += 1;
        self.nick = Some(nick);
        self.token = None;
        self.create_account = create && password.is_some();
        self.invite = invite.filter(|_| self.create_account);
        self.panel = None;
        self.administers = false;
        self.password = password;
        self.signing_in = true;
        match self.status {
            // The socket is open and waits for another hello.
            Status::NickRefused(_) if self.open => self.hello(),
            _ => {
                self.status = Status::Connecting { attempt: 0 };
                Vec::new()
            }
        }
    }

    /// A try to connect begins.
    pub fn on_connecting(&mut self) {
        self.version += 1;
        self.status = Status::Connecting {
            attempt: self.attempt,
        };
    }

    /// The WebSocket is open: introduce ourselves.
    pub fn on_open(&mut self) -> Vec<Request> {
        self.version += 1;
        self.open = true;
        self.pending.clear();
        self.hello()
    }

    /// The connection is gone. Returns how long to wait before the next
    /// try; `random` is in `[0, 1)`.
    pub fn on_close(&mut self, random: f64, now: u64) -> u64 {
        self.version += 1;
        self.open = false;
        if let Status::NickRefused(_) = self.status {
            // Nothing to retry until the user picks another nick.
            self.nick = None;
            return 0;
        }
        self.attempt = self.attempt.saturating_add(1);
        let wait_ms = reconnect::backoff_ms(self.attempt, random);
        let reason = match &self.status {
            Status::Offline { reason, .. } => reason.clone(),
            _ => None,
        };
        if self.status == Status::Online {
            for room in self.rooms.values_mut() {
                room.conv.event("disconnected; reconnecting…", now);
            }
        }
        self.status = Status::Offline {
            attempt: self.attempt,
            wait_ms,
            reason,
        };
        for room in self.rooms.values_mut() {
            room.joined = false;
            room.syncing = false;
            room.held.clear();
            room.conv.typing.clear();
        }
        self.typing_out = None;
        self.seek = None;
        self.attention.search.waiting = false;
        if let Some(action) = self.account_waiting {
            self.account_answer(
                action,
                Err("The connection dropped before the server answered: once Banter is back online, check and try again.".into()),
            );
        }
        self.pending.clear();
        wait_ms
    }

    /// Switches the conversation on screen and marks it read.
    pub fn select(&mut self, view: View) -> Vec<Request> {
        self.version += 1;
        self.panel = None;
        let mut requests = self.leave_conversation();
        match &view {
            View::Room(room) => {
                if !self.rooms.contains_key(room) {
                    // A link to a room we are not in: join it.
                    self.rooms.insert(room.clone(), RoomState::default());
                    if self.is_online() {
                        requests.push(self.join_request(room.clone(), false));
                    }
                }
            }
            View::Direct(nick) => {
                self.directs.entry(nick.clone()).or_default();
            }
        }
        self.view = Some(view);
        // A conversation opens at its newest message.
        self.reading = true;
        requests.extend(self.mark_read());
        requests
    }

    /// The message list was scrolled to its newest message (`true`) or
    /// away from it: reaching it marks the conversation read.
    pub fn set_reading(&mut self, reading: bool) -> Vec<Request> {
        self.reading = reading;
        if reading && self.visible {
            return self.mark_read();
        }
        Vec::new()
    }

    /// The page became visible or hidden.
    pub fn set_visible(&mut self, visible: bool) -> Vec<Request> {
        self.version += 1;
        self.visible = visible;
        if visible {
            return self.mark_read();
        }
        Vec::new()
    }

    /// The conversation on screen is read: no unread here, and (logged
    /// in) the server moves the account's position to its newest message,
    /// which every other device of the account hears.
    fn mark_read(&mut self) -> Vec<Request> {
        let logged_in = self.account.is_some() && self.is_online();
        let (conv, room, with) = match self.view.clone() {
            Some(View::Room(room)) => match self.rooms.get_mut(&room) {
                Some(r) => (&mut r.conv, Some(room), None),
                None => return Vec::new(),
            },
            Some(View::Direct(nick)) => match self.directs.get_mut(&nick) {
                Some(c) => (c, None, Some(nick)),
                None => return Vec::new(),
            },
            None => return Vec::new(),
        };
        conv.unread = 0;
        conv.mentions = 0;
        let newest = conv.newest();
        if !logged_in || newest <= conv.read || (with.is_some() && !conv.positions) {
            return Vec::new();
        }
        conv.read = newest;
        self.mark_due = false;
        let body = ClientMessage::MarkRead {
            room,
            with,
            id: Some(newest),
            ts: None,
        };
        vec![self.request(Purpose::MarkRead, body)]
    }

    /// A read position from the server (`read`, `read_positions`,
    /// `joined`), for a conversation shown here.
    fn on_read(&mut self, room: Option<RoomName>, with: Option<Nick>, id: u64) {
        let me = self.nick.clone();
        let view = match (room.clone(), with.clone()) {
            (Some(room), _) => View::Room(room),
            (None, Some(nick)) => View::Direct(nick),
            (None, None) => return,
        };
        let Some(conv) = self.conv_mut(room, with) else {
            return;
        };
        conv.read_up_to(id, me.as_ref());
        // The mentions among the unread, counted again.
        let conv = match &view {
            View::Room(r) => &self.rooms[r].conv,
            View::Direct(n) => &self.directs[n],
        };
        let read = conv.read;
        let mentions = conv
            .lines
            .iter()
            .filter(|l| matches!(&***l, Line::Chat { id, .. } if *id > read))
            .filter(|l| self.is_mention(&view, l))
            .count() as u32;
        if let Some(conv) = self.conv_mut_of(&view) {
            conv.mentions = mentions;
        }
    }

    /// A room's conversation (`room`), or a direct one (`with`), if shown.
    fn conv_mut(
        &mut self,
        room: Option<RoomName>,
        with: Option<Nick>,
    ) -> Option<&mut Conversation> {
        match (room, with) {
            (Some(room), _) => self.rooms.get_mut(&room).map(|r| &mut r.conv),
            (None, Some(nick)) => self.directs.get_mut(&nick),
            (None, None) => None,
        }
    }

    fn is_viewing(&self, view: &View) -> bool {
        self.visible && self.view.as_ref() == Some(view)
    }

    /// Closes a direct conversation (rooms are left with `/part`).
    pub fn close_direct(&mut self, nick: &Nick) {
        self.version += 1;
        self.directs.remove(nick);
        if self.view == Some(View::Direct(nick.clone())) {
            self.view = self.rooms.keys().next().cloned().map(View::Room);
        }
    }

    /// `rejoin`: joining again a room we had (at a (re)connection), which
    /// the server refuses if the account left it from another device.
    fn join_request(&mut self, room: RoomName, rejoin: bool) -> Request {
        let key = self.rooms.get(&room).and_then(|r| r.key.clone());
        self.request(
            Purpose::Join(room.clone()),
            ClientMessage::Join { room, key, rejoin },
        )
    }

    /// The user submitted the composer. `Ok` carries what to send; `Err` a
    /// sentence to show under the composer (nothing was sent).
    pub fn submit(&mut self, input: &str, now: u64) -> Result<Vec<Request>, String> {
        if let Some(Draft::Edit(id, old)) = self.draft.clone() {
            return self.submit_edit(id, &old, input);
        }
        let command = command::parse(input)?;
        if command == Command::Help {
            self.version += 1;
            if let Some(conv) = self.current_mut() {
                conv.event(command::HELP, now);
            }
            return Ok(Vec::new());
        }
        if !self.is_online() {
            return Err("not connected: wait until Banter is back online".into());
        }
        let requests = match command {
            Command::Say(text) => self.say_here(text, now)?,
            Command::Me(action) => self.say_here(text::encode_action(&action), now)?,
            Command::Join(room, key) => {
                self.version += 1;
                let already = self.rooms.contains_key(&room);
                let mut out = self.leave_conversation();
                self.view = Some(View::Room(room.clone()));
                self.reading = true;
                out.extend(self.mark_read());
                if already {
                    out
                } else {
                    let state = RoomState {
                        key,
                        ..RoomState::default()
                    };
                    self.rooms.insert(room.clone(), state);
                    out.push(self.join_request(room, false));
                    out
                }
            }
            Command::Part(room) => {
                let room = match (room, &self.view) {
                    (Some(room), _) => room,
                    (None, Some(View::Room(room))) => room.clone(),
                    (None, _) => return Err("/part leaves a room; name one: /part room".into()),
                };
                if !self.rooms.contains_key(&room) {
                    return Err(format!("you are not in #{room}"));
                }
                vec![self.part(room)]
            }
            Command::Msg(to, text) => {
                self.check_text(&text)?;
                self.version += 1;
                self.directs.entry(to.clone()).or_default();
                let mut out = self.leave_conversation();
                self.view = Some(View::Direct(to.clone()));
                out.push(self.request(
                    Purpose::Whisper(to.clone()),
                    ClientMessage::Whisper {
                        to,
                        text,
                        notice: false,
                        reply_to: None,
                    },
                ));
                out
            }
            Command::Nick(nick) => vec![self.request(Purpose::Nick, ClientMessage::Nick { nick })],
            Command::Topic(text) => {
                let Some(View::Room(room)) = self.view.clone() else {
                    return Err("/topic works in a room".into());
                };
                let purpose = if text.is_none() {
                    Purpose::TopicQuery
                } else {
                    Purpose::Say
                };
                vec![self.request(purpose, ClientMessage::Topic { room, text })]
            }
            Command::Away(message) => {
                vec![self.request(Purpose::Say, ClientMessage::Away { message })]
            }
            Command::Whois(nick) => {
                vec![self.request(Purpose::Whois, ClientMessage::Whois { nick })]
            }
            Command::Moderate(what, target) => {
                let Some(View::Room(room)) = self.view.clone() else {
                    return Err(format!("/{what} works in a room"));
                };
                self.moderate(room, target, what)
            }
            Command::Help => unreachable!("handled above"),
        };
        Ok(requests)
    }

    /// The reader scrolled to the top of a room: ask for the page before
    /// the first message shown (once at a time, while there may be more).
    pub fn load_older(&mut self) -> Vec<Request> {
        self.load_older_by(OLDER_PAGE)
    }

    /// `limit` messages older than the first shown.
    fn load_older_by(&mut self, limit: u32) -> Vec<Request> {
        let Some(View::Room(room)) = self.view.clone() else {
            return Vec::new();
        };
        let Some(state) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        let Some(first) = state.first_id() else {
            return Vec::new();
        };
        if !self.open || !state.joined || !state.more_before || state.loading_older {
            return Vec::new();
        }
        state.loading_older = true;
        self.version += 1;
        vec![self.request(
            Purpose::Older(room.clone()),
            ClientMessage::History {
                room: Some(room),
                with: None,
                before: Some(first),
                after: None,
                before_ts: None,
                after_ts: None,
                latest: false,
                limit: Some(limit),
            },
        )]
    }

    /// Leaves a room (the sidebar's leave button, or `/part`).
    pub fn part(&mut self, room: RoomName) -> Request {
        self.request(Purpose::Part, ClientMessage::Part { room, reason: None })
    }

    fn check_text(&self, text: &str) -> Result<(), String> {
        let max = self.max_text_bytes();
        if text.trim().is_empty() {
            return Err("type a message first".into());
        }
        if text.len() > max {
            return Err(format!(
                "that is {} bytes; the limit is {max}: shorten it a little",
                text.len()
            ));
        }
        Ok(())
    }

    pub fn max_text_bytes(&self) -> usize {
        self.limits
            .as_ref()
            .map_or(banter_protocol::DEFAULT_MAX_TEXT_BYTES, |l| {
                l.max_text_bytes
            })
    }

    /// Sends `text` to the conversation on screen (answering the message
    /// the composer replies to), and ends our typing there.
    fn say_here(&mut self, text: String, now: u64) -> Result<Vec<Request>, String> {
        self.check_text(&text)?;
        let reply_to = match self.draft {
            Some(Draft::Reply(id)) => Some(id),
            _ => None,
        };
        let say = match self.view.clone() {
            Some(View::Room(room)) => self.request(
                Purpose::Say,
                ClientMessage::Say {
                    room,
                    text,
                    notice: false,
                    reply_to,
                },
            ),
            Some(View::Direct(to)) => self.request(
                Purpose::Whisper(to.clone()),
                ClientMessage::Whisper {
                    to,
                    text,
                    notice: false,
                    reply_to,
                },
            ),
            None => return Err("join a room first: /join lobby".into()),
        };
        self.draft = None;
        let mut out = vec![say];
        out.extend(self.typing_done(now));
        Ok(out)
    }

    fn current_mut(&mut self) -> Option<&mut Conversation> {
        match self.view.clone()? {
            View::Room(room) => self.rooms.get_mut(&room).map(|r| &mut r.conv),
            View::Direct(nick) => self.directs.get_mut(&nick),
        }
    }

    /// Handles one frame from the server; returns what to send back.
    pub fn on_message(&mut self, envelope: Envelope<ServerMessage>, now: u64) -> Vec<Request> {
        self.version += 1;
        let purpose = match &envelope.reference {
            Some(Ref::Int(n)) => self.pending.remove(n),
            _ => None,
        };
        let mut out = Vec::new();
        match envelope.body {
            ServerMessage::Welcome {
                nick,
                limits,
                vapid_public_key,
                ..
            } => {
                self.attention.vapid_key = vapid_public_key;
                self.status = Status::Online;
                self.signing_in = false;
                self.attempt = 0;
                self.limits = Some(limits);
                if self.was_online && self.nick.as_ref() != Some(&nick) {
                    let text = format!(
                        "your nick was still in use, so you are {nick} for now; /nick {} takes it back once it is free",
                        self.nick.as_ref().map_or("", |n| n.as_str())
                    );
                    if let Some(conv) = self.current_mut() {
                        conv.event(text, now);
                    }
                }
                self.nick = Some(nick);
                self.was_online = true;
                let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
                out.extend(rooms.into_iter().map(|room| self.join_request(room, true)));
            }
            ServerMessage::Joined {
                room,
                members,
                history,
                topic,
                access,
                ..
            } => {
                out.extend(self.on_joined(room.clone(), members, history, now));
                let access = access.map(|a| *a).unwrap_or_default();
                self.bots.extend(access.bots);
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.topic = topic.filter(|t| !t.text.is_empty());
                    r.set_modes(access.modes);
                    r.voiced = access.voiced;
                    if self.account.is_some() {
                        r.conv.positions = true;
                    }
                }
                if let Some(read) = access.read {
                    self.on_read(Some(room), None, read.id);
                }
            }
            ServerMessage::Topic { room, topic } => {
                let asked = purpose == Some(Purpose::TopicQuery);
                if let Some(r) = self.rooms.get_mut(&room) {
                    let text = match (&topic, asked) {
                        (Some(t), true) if !t.text.is_empty() => {
                            format!("the topic is: {} (set by {})", t.text, t.by)
                        }
                        (_, true) => "no topic is set".to_string(),
                        (Some(t), false) if t.text.is_empty() => {
                            format!("{} cleared the topic", t.by)
                        }
                        (Some(t), false) => format!("{} set the topic: {}", t.by, t.text),
                        (None, false) => "the topic was cleared".to_string(),
                    };
                    r.conv.event(text, now);
                    r.topic = topic.filter(|t| !t.text.is_empty());
                }
            }
            ServerMessage::Away { nick, message } => {
                let me = self.nick.as_ref() == Some(&nick);
                match message {
                    Some(message) => {
                        if me {
                            if let Some(conv) = self.current_mut() {
                                conv.event(format!("you are marked as away: {message}"), now);
                            }
                        } else if let Some(conv) = self.directs.get_mut(&nick) {
                            conv.event(format!("{nick} is away: {message}"), now);
                        }
                        self.away.insert(nick, message);
                    }
                    None => {
                        self.away.remove(&nick);
                        if me && let Some(conv) = self.current_mut() {
                            conv.event("you are back", now);
                        }
                    }
                }
            }
            ServerMessage::Whois {
                nick,
                rooms,
                away,
                idle_secs,
                realname,
                bot,
                account,
                ..
            } => {
                let rooms: Vec<String> = rooms.iter().map(|r| format!("#{r}")).collect();
                // The real name, bot flag and account, as IRC's WHOIS shows them.
                let name = realname.map(|r| format!(" ({r})")).unwrap_or_default();
                let account = account
                    .map(|a| format!(", account {a}"))
                    .unwrap_or_default();
                let bot = if bot { ", a bot" } else { "" };
                let mut text = format!(
                    "{nick}{name}{bot}{account}: in {} · idle {}",
                    if rooms.is_empty() {
                        "no rooms".into()
                    } else {
                        rooms.join(", ")
                    },
                    human_secs(idle_secs)
                );
                if let Some(away) = away {
                    text.push_str(&format!(" · away: {away}"));
                }
                if let Some(conv) = self.current_mut() {
                    conv.event(text, now);
                }
            }
            // The Administration panel's lists.
            ServerMessage::Members { room, members, .. }
                if matches!(purpose, Some(Purpose::Admin(_))) =>
            {
                self.admin.room = Some((room, members));
            }
            ServerMessage::Rooms { rooms } => self.admin.rooms = rooms,
            ServerMessage::Klines { klines } => self.admin.klines = klines,
            ServerMessage::Klined { kline, set } => self.on_klined(kline, set),
            ServerMessage::Killed { nick } => self.on_killed(nick),
            ServerMessage::Members { .. } | ServerMessage::Users { .. } => {}
            ServerMessage::History { room, messages } => match purpose {
                Some(Purpose::GapFill(r)) if r == room => {
                    out.extend(self.on_gap_page(room, messages))
                }
                Some(Purpose::Older(r)) if r == room => {
                    if let Some(state) = self.rooms.get_mut(&room) {
                        let full = messages.len() >= OLDER_PAGE as usize;
                        state.prepend_older(messages, full);
                    }
                    // A quote's original may be on this page, or further back.
                    if let Some(id) = self.seek.take() {
                        out.extend(self.show_message(id, now));
                    }
                }
                _ => {}
            },
            ServerMessage::Message(m) => self.on_chat(m),
            ServerMessage::Direct(d) => self.on_direct(d),
            ServerMessage::Reaction {
                room,
                with,
                id,
                reaction,
                nick,
                remove,
                ..
            } => self.amend(room, with, id, Change::React(reaction, nick, remove)),
            ServerMessage::Edited {
                room,
                with,
                id,
                text,
                ..
            } => self.amend(room, with, id, Change::Edit(text)),
            ServerMessage::Deleted { room, with, id, .. } => {
                self.amend(room, with, id, Change::Delete)
            }
            ServerMessage::Typing {
                room,
                with,
                nick,
                state,
            } => self.on_typing(room, with, nick, state, now),
            ServerMessage::Presence {
                room,
                nick,
                event,
                new_nick,
                reason,
                bot,
                ..
            } => {
                if event == PresenceEvent::Join {
                    self.set_bot(&nick, bot);
                }
                self.on_presence(room, nick, event, new_nick, reason, now)
            }
            ServerMessage::Profile { nick, bot, .. } => self.set_bot(&nick, bot),
            ServerMessage::Parted { room, .. } => {
                self.rooms.remove(&room);
                if self.view == Some(View::Room(room)) {
                    self.view = self.rooms.keys().next().cloned().map(View::Room);
                    out.extend(self.mark_read());
                }
            }
            ServerMessage::Nick { nick, old } => {
                self.nick = Some(nick.clone());
                for r in self.rooms.values_mut() {
                    r.rename(&old, &nick);
                }
                if let Some(conv) = self.current_mut() {
                    conv.event(format!("you are now known as {nick}"), now);
                }
            }
            ServerMessage::Lagged { dropped } => {
                let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
                for room in rooms {
                    let r = self.rooms.get_mut(&room).expect("listed");
                    r.conv.event(
                        format!(
                            "the connection fell behind ({dropped} events skipped); catching up"
                        ),
                        now,
                    );
                    if r.joined && !r.syncing {
                        out.push(self.gap_request(room));
                    }
                }
            }
            ServerMessage::Error { code, message } => {
                out.extend(self.on_error(purpose, code, message, now))
            }
            ServerMessage::Closing {
                code: ErrorCode::LoggedOutElsewhere,
                message,
            } => {
                // Every token is revoked: reconnecting with ours would only
                // fail. Back to the form, saying why.
                self.token = None;
                self.account = None;
                self.administers = false;
                self.password = None;
                self.status = Status::NickRefused(format!(
                    "You were signed out: {message}. Log in again, or chat as a guest."
                ));
            }
            ServerMessage::Closing { code, message } => {
                let reason = format!("{message} ({code})");
                self.status = Status::Offline {
                    attempt: self.attempt,
                    wait_ms: 0,
                    reason: Some(reason),
                };
            }
            ServerMessage::Ping => out.push(Envelope::new(ClientMessage::Pong)),
            ServerMessage::Pong => {}
            // Accounts and moderation (issue 9): the web client's part.
            ServerMessage::Registered { .. } if purpose == Some(Purpose::Register) => {
                // The account exists: now log into it.
                self.create_account = false;
                self.invite = None;
                out.extend(self.hello());
            }
            ServerMessage::LoggedIn {
                account,
                token,
                admin,
            } => {
                self.account = Some(account);
                self.administers = admin;
                if token.is_some() {
                    self.token = token;
                }
                self.password = None;
            }
            ServerMessage::LoggedOut { .. } => self.signed_out = true,
            // Changed from this client: the new token replaces the old.
            ServerMessage::PasswordChanged { token } => {
                self.token = Some(token);
                self.account_answer(
                    AccountAction::ChangePassword,
                    Ok("Password changed. Your other sessions were signed out; this one stays signed in.".into()),
                );
            }
            // An administrator removed another account.
            ServerMessage::AccountDeleted { account }
                if matches!(purpose, Some(Purpose::Admin(_)))
                    && self.account.as_ref() != Some(&account) =>
            {
                self.admin.reply = Some(Ok(format!("The account {account} is removed.")));
            }
            // Deleted from this client: on as a guest, nothing to remember.
            ServerMessage::AccountDeleted { account } => {
                self.account = None;
                self.administers = false;
                self.token = None;
                let text = format!(
                    "The account {account} is deleted. You go on chatting as a guest; the nick is free for anyone to register."
                );
                if let Some(conv) = self.current_mut() {
                    conv.event(text.clone(), now);
                }
                self.account_answer(AccountAction::Delete, Ok(text));
            }
            ServerMessage::Roles {
                room, owner, ops, ..
            } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.owner = owner;
                    r.ops = ops;
                }
            }
            ServerMessage::Kicked {
                room,
                nick,
                by,
                reason,
            } => {
                let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
                if self.nick.as_ref() == Some(&nick) {
                    self.rooms.remove(&room);
                    if self.view == Some(View::Room(room.clone())) {
                        self.view = self.rooms.keys().next().cloned().map(View::Room);
                    }
                    if let Some(conv) = self.current_mut() {
                        conv.event(format!("{by} removed you from #{room}{why}"), now);
                    }
                } else if let Some(r) = self.rooms.get_mut(&room) {
                    r.remove_member(&nick);
                    r.conv.event(format!("{by} removed {nick}{why}"), now);
                }
            }
            ServerMessage::Banned { room, ban, set } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    let who = match (&ban.nick, &ban.account) {
                        (_, Some(account)) => format!("the account {account}"),
                        (Some(nick), None) => nick.to_string(),
                        (None, None) => "someone".into(),
                    };
                    // Only bans: the web client's build skips exception
                    // entries (it does not read `list`).
                    let text = if set {
                        format!("{} banned {who}", ban.by)
                    } else {
                        format!("{} lifted the ban on {who}", ban.by)
                    };
                    r.conv.event(text, now);
                }
            }
            ServerMessage::Invite { room, from } => {
                if let Some(conv) = self.current_mut() {
                    conv.event(format!("{from} invites you to #{room}: /join {room}"), now);
                }
            }
            ServerMessage::Modes {
                room, modes, by, ..
            } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    let changed = mode_changes(&r.modes, &modes);
                    if let (Some(by), false) = (by, changed.is_empty()) {
                        r.conv
                            .event(format!("{by} changed the room: {changed}"), now);
                    }
                    r.set_modes(modes);
                }
            }
            ServerMessage::Voiced {
                room,
                nick,
                by,
                set,
            } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.voiced.retain(|n| *n != nick);
                    let text = if set {
                        r.voiced.push(nick.clone());
                        format!("{by} gave {nick} a voice")
                    } else {
                        format!("{by} took {nick}'s voice")
                    };
                    r.conv.event(text, now);
                }
            }
            ServerMessage::Invited { room, nick, by } => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.conv.event(format!("{by} invited {nick}"), now);
                }
            }
            // Not asked by the web client (its build does not even read them).
            ServerMessage::DirectHistory { .. }
            | ServerMessage::Targets { .. }
            | ServerMessage::Settings { .. } => {}
            #[cfg(not(target_arch = "wasm32"))]
            ServerMessage::Account { .. } | ServerMessage::Watched { .. } => {}
            ServerMessage::SearchResults { messages } => self.on_search_results(messages),
            ServerMessage::NotifyLevel(of) => self.on_level(of),
            ServerMessage::NotifyLevels { levels } => self.on_levels(levels),
            ServerMessage::Highlights { words } => self.attention.highlights = words,
            ServerMessage::PushSubscribed { endpoint } => self.attention.pushing = Some(endpoint),
            ServerMessage::PushUnsubscribed { .. } => self.attention.pushing = None,
            ServerMessage::Read(p) => self.on_read(p.room, p.with, p.id),
            ServerMessage::ReadPositions { positions } => {
                for p in positions {
                    self.on_read(p.room, p.with, p.id);
                }
            }
            ServerMessage::Registered { .. } | ServerMessage::Bans { .. } => {}
        }
        // What arrives in the conversation on screen is read; its mark
        // goes at most once a second (the next frame sends a late one).
        if self.visible && self.reading && self.current_mut().is_some_and(|c| c.newest() > c.read) {
            self.mark_due = true;
        }
        out.extend(self.tick(now));
        out
    }

    /// A mark that had to wait goes once its second is over (called for
    /// each frame, and every second by the connection).
    /// Typing notices are kept up too: others' expire, ours pauses.
    pub fn tick(&mut self, now: u64) -> Vec<Request> {
        let mut out = self.typing_tick(now);
        if self.mark_due && self.visible && self.reading && now >= self.marked_at + MARK_EVERY_MS {
            self.marked_at = now;
            self.version += 1;
            out.extend(self.mark_read());
        }
        out
    }

    fn gap_request(&mut self, room: RoomName) -> Request {
        let r = self.rooms.get_mut(&room).expect("a room we are in");
        r.syncing = true;
        let after = r.last_id;
        self.request(
            Purpose::GapFill(room.clone()),
            ClientMessage::History {
                room: Some(room),
                with: None,
                before: None,
                after: Some(after),
                limit: Some(MAX_HISTORY_PAGE),
                before_ts: None,
                after_ts: None,
                latest: false,
            },
        )
    }

    fn on_joined(
        &mut self,
        room: RoomName,
        members: Vec<Nick>,
        history: Vec<ChatMessage>,
        now: u64,
    ) -> Vec<Request> {
        let r = self.rooms.entry(room.clone()).or_default();
        r.joined = true;
        r.loading_older = false;
        r.set_members(members);
        let newest = history.last().map_or(0, |m| m.id);
        let oldest = history.first().map_or(0, |m| m.id);
        if r.last_id == 0 {
            r.more_before = oldest > 1;
            r.append_new(history);
        } else if newest < r.last_id {
            // Ids went backwards: the server lost its history (a restart
            // without persistence). Start over from what it has.
            r.conv.event(
                "the server restarted; earlier messages are not on it any more",
                now,
            );
            r.last_id = 0;
            r.append_new(history);
        } else if newest == r.last_id || oldest <= r.last_id + 1 {
            r.append_new(history);
        } else {
            // More was said while we were away than `joined` carries.
            return vec![self.gap_request(room)];
        }
        Vec::new()
    }

    fn on_gap_page(&mut self, room: RoomName, messages: Vec<ChatMessage>) -> Vec<Request> {
        let full_page = messages.len() >= MAX_HISTORY_PAGE as usize;
        let Some(r) = self.rooms.get_mut(&room) else {
            return Vec::new();
        };
        let added = r.append_new(messages);
        self.count_unread(&room, added);
        if full_page {
            return vec![self.gap_request(room)];
        }
        let r = self.rooms.get_mut(&room).expect("checked above");
        r.syncing = false;
        let held = std::mem::take(&mut r.held);
        let added = r.append_new(held);
        self.count_unread(&room, added);
        Vec::new()
    }

    /// `added` messages came at the end of `room`: unread unless on
    /// screen; mentions counted, notifications owed.
    fn count_unread(&mut self, room: &RoomName, added: u32) {
        let view = View::Room(room.clone());
        let viewing = self.is_viewing(&view);
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if !viewing {
            r.conv.unread += added;
        }
        let skip = r.conv.lines.len().saturating_sub(added as usize);
        let new: Vec<Rc<Line>> = r.conv.lines.iter().skip(skip).cloned().collect();
        for line in new {
            self.attend(view.clone(), &line, !viewing);
        }
    }

    fn on_chat(&mut self, m: ChatMessage) {
        let room = m.room.clone();
        let own = self.nick.as_ref() == Some(&m.from);
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        r.conv.typing.retain(|(n, _)| *n != m.from);
        if r.syncing {
            if r.held.len() >= MAX_HELD {
                r.held.remove(0);
            }
            r.held.push(m);
            return;
        }
        let added = r.append_new([m]);
        if !own {
            self.count_unread(&room, added);
        }
    }

    fn on_direct(&mut self, d: DirectMessage) {
        let own = self.nick.as_ref() == Some(&d.from);
        let peer = if own { d.to.clone() } else { d.from.clone() };
        let viewing = self.is_viewing(&View::Direct(peer.clone()));
        let conv = self.directs.entry(peer.clone()).or_default();
        conv.typing.retain(|(n, _)| *n != d.from);
        if !own && d.account.is_some() {
            conv.positions = true;
        }
        conv.push(d.into());
        if !own {
            if !viewing {
                conv.unread += 1;
            }
            let line = conv.lines.back().cloned();
            if let Some(line) = line {
                self.attend(View::Direct(peer), &line, !viewing);
            }
        }
    }

    fn set_bot(&mut self, nick: &Nick, bot: bool) {
        if bot {
            self.bots.insert(nick.clone());
        } else {
            self.bots.remove(nick);
        }
    }

    fn on_presence(
        &mut self,
        room: RoomName,
        nick: Nick,
        event: PresenceEvent,
        new_nick: Option<Nick>,
        reason: Option<String>,
        now: u64,
    ) {
        let Some(r) = self.rooms.get_mut(&room) else {
            return;
        };
        let why = reason.map_or(String::new(), |r| format!(" ({r})"));
        let text = match (event, new_nick) {
            (PresenceEvent::Join, _) => {
                r.add_member(nick.clone());
                format!("{nick} joined")
            }
            (PresenceEvent::Part, _) => {
                r.remove_member(&nick);
                format!("{nick} left{why}")
            }
            (PresenceEvent::Quit, _) => {
                r.remove_member(&nick);
                format!("{nick} quit{why}")
            }
            (PresenceEvent::Nick, Some(new)) => {
                r.rename(&nick, &new);
                // Keep a direct conversation with them going under the new nick.
                if let Some(conv) = self.directs.remove(&nick) {
                    self.directs.insert(new.clone(), conv);
                    if self.view == Some(View::Direct(nick.clone())) {
                        self.view = Some(View::Direct(new.clone()));
                    }
                }
                format!("{nick} is now known as {new}")
            }
            _ => return,
        };
        if let Some(r) = self.rooms.get_mut(&room) {
            r.conv.event(text, now);
        }
    }

    fn on_error(
        &mut self,
        purpose: Option<Purpose>,
        code: ErrorCode,
        message: String,
        now: u64,
    ) -> Vec<Request> {
        match purpose {
            Some(Purpose::Hello) if code == ErrorCode::NickTaken && self.was_online => {
                // Reconnecting while our old session lingers on the server:
                // take a variant now rather than wait for it to time out.
                if let Some(nick) = self.nick.as_ref().and_then(alternative_nick) {
                    self.nick = Some(nick);
                    return self.hello();
                }
                self.status = Status::NickRefused(message);
            }
            Some(Purpose::Hello) if code == ErrorCode::AuthFailed && self.token.is_some() => {
                // The remembered login was revoked (signed out elsewhere).
                self.token = None;
                self.status = Status::NickRefused(
                    "Your saved login is no longer valid (it expired, or the account was signed out from another session): enter your password.".into(),
                );
            }
            Some(Purpose::Hello | Purpose::Register) => {
                self.password = None;
                self.status = Status::NickRefused(match code {
                    ErrorCode::InviteRequired => "This server needs an invite code to create an account: ask its administrator for one.".into(),
                    ErrorCode::InvalidInvite => "That invite code is not valid (mistyped, expired or used up).".into(),
                    ErrorCode::RegistrationClosed => "This server is not taking new accounts. Leave the password empty to chat as a guest.".into(),
                    _ => message,
                });
            }
            Some(Purpose::Logout) => self.signed_out = true,
            Some(Purpose::Search) => self.on_search_error(match code {
                ErrorCode::RateLimited => {
                    "Too many searches: wait a minute, then try again.".into()
                }
                ErrorCode::Unsupported => "This server keeps no history to search.".into(),
                ErrorCode::TextTooLong => "That search is too long.".into(),
                _ => message,
            }),
            // A position the server would not move (an old message, a
            // conversation it keeps none for): nothing to tell.
            Some(Purpose::MarkRead | Purpose::Typing) => {}
            Some(Purpose::Account(action)) => {
                let text = match code {
                    ErrorCode::AuthFailed if action == AccountAction::Delete => {
                        "Wrong password: the account was not deleted.".into()
                    }
                    ErrorCode::AuthFailed => "The current password is wrong.".into(),
                    ErrorCode::InvalidPassword => {
                        "The new password must have 8 to 256 characters.".into()
                    }
                    ErrorCode::RateLimited => {
                        format!("Too many tries: wait a little, then try again ({message}).")
                    }
                    ErrorCode::Busy => "The server is busy: try again in a few seconds.".into(),
                    _ => message,
                };
                self.account_answer(action, Err(text));
            }
            Some(Purpose::Admin(ask)) => self.on_admin_error(ask, code, message),
            Some(Purpose::Join(room)) => {
                self.rooms.remove(&room);
                if self.view == Some(View::Room(room.clone())) {
                    self.view = self.rooms.keys().next().cloned().map(View::Room);
                }
                let hint = if code == ErrorCode::BadKey {
                    format!(" (type /join {room} and the key)")
                } else {
                    String::new()
                };
                if let Some(conv) = self.current_mut() {
                    conv.event(format!("could not join #{room}: {message}{hint}"), now);
                }
            }
            Some(Purpose::Whisper(nick)) => {
                let text = if code == ErrorCode::NoSuchNick {
                    format!("{nick} is not online; the message was not sent")
                } else {
                    format!("not sent: {message}")
                };
                self.directs.entry(nick).or_default().event(text, now);
            }
            Some(Purpose::GapFill(room)) => {
                if let Some(r) = self.rooms.get_mut(&room) {
                    r.syncing = false;
                    let held = std::mem::take(&mut r.held);
                    r.append_new(held);
                }
            }
            _ => {
                if let Some(conv) = self.current_mut() {
                    conv.event(format!("error: {message}"), now);
                }
            }
        }
        Vec::new()
    }
}

/// `42s`, `5m`, `3h`, `2d`.
fn human_secs(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86400),
    }
}

/// `alice` → `alice_`, or with the last character replaced when full.
fn alternative_nick(nick: &Nick) -> Option<Nick> {
    let mut name = nick.as_str().to_string();
    if name.len() >= Nick::MAX_LEN {
        name.pop();
    }
    name.push('_');
    Nick::new(name).ok().filter(|n| n.as_str() != nick.as_str())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use banter_protocol::{Limits, ReadPosition};

    pub(super) fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }
    pub(super) fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }
    pub(super) fn msg(r: &str, id: u64, from: &str) -> ChatMessage {
        ChatMessage {
            room: room(r),
            id,
            from: nick(from),
            text: format!("m{id}"),
            ts: 1_000 + id,
            account: None,
            notice: false,
            reply_to: None,
            edited: None,
            deleted: false,
            reactions: Vec::new(),
        }
    }
    pub(super) fn server(body: ServerMessage) -> Envelope<ServerMessage> {
        Envelope::new(body)
    }
    pub(super) fn reply(body: ServerMessage, to: &Request) -> Envelope<ServerMessage> {
        Envelope::with_ref(body, to.reference.clone())
    }
    pub(super) fn welcome(n: &str) -> ServerMessage {
        ServerMessage::Welcome {
            vapid_public_key: None,
            nick: nick(n),
            protocol: 1,
            server: "test".into(),
            limits: Limits {
                max_text_bytes: 20,
                max_frame_bytes: 100,
                max_rooms: 5,
                idle_timeout_secs: 60,
                max_lines: 100,
                edit_window_secs: 86_400,
            },
        }
    }
    pub(super) fn joined(r: &str, members: &[&str], history: Vec<ChatMessage>) -> ServerMessage {
        ServerMessage::Joined {
            room: room(r),
            members: members.iter().map(|m| nick(m)).collect(),
            history,
            topic: None,
            moderators: vec![],
            access: None,
        }
    }
    pub(super) fn ids(chat: &Chat, r: &str) -> Vec<u64> {
        chat.rooms[&room(r)]
            .conv
            .lines
            .iter()
            .filter_map(|l| match l.as_ref() {
                Line::Chat { id, .. } => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// A client remembered as alice in `lobby`, online and joined with
    /// messages 1..=3.
    pub(super) fn online() -> Chat {
        let mut chat = Chat::new(Some(nick("alice")), vec![room("lobby")]);
        let hello = chat.on_open();
        assert!(matches!(hello[0].body, ClientMessage::Hello { .. }));
        let joins = chat.on_message(reply(welcome("alice"), &hello[0]), 0);
        assert_eq!(joins.len(), 1);
        assert_eq!(
            joins[0].body,
            ClientMessage::Join {
                room: room("lobby"),
                key: None,
                rejoin: true,
            }
        );
        let more = chat.on_message(
            reply(
                joined(
                    "lobby",
                    &["bob", "alice"],
                    (1..=3).map(|i| msg("lobby", i, "bob")).collect(),
                ),
                &joins[0],
            ),
            0,
        );
        assert!(more.is_empty());
        chat
    }

    #[test]
    fn sign_in_then_join_and_chat() {
        let chat = online();
        assert!(chat.is_online());
        assert_eq!(ids(&chat, "lobby"), vec![1, 2, 3]);
        assert_eq!(
            chat.rooms[&room("lobby")].members,
            vec![nick("alice"), nick("bob")]
        );
        assert_eq!(chat.view, Some(View::Room(room("lobby"))));
    }

    #[test]
    fn reconnect_rejoins_and_fills_exactly_the_gap() {
        let mut chat = online();
        let wait = chat.on_close(0.5, 10);
        assert!(wait > 0);
        assert!(matches!(chat.status, Status::Offline { attempt: 1, .. }));
        let hello = chat.on_open();
        let joins = chat.on_message(reply(welcome("alice"), &hello[0]), 20);
        assert_eq!(joins.len(), 1, "rejoins its room");
        // The server's recent history starts after a gap (4..=100 missed,
        // joined carries 101..=150).
        let fill = chat.on_message(
            reply(
                joined(
                    "lobby",
                    &["bob"],
                    (101..=150).map(|i| msg("lobby", i, "bob")).collect(),
                ),
                &joins[0],
            ),
            20,
        );
        assert_eq!(
            fill[0].body,
            ClientMessage::History {
                room: Some(room("lobby")),
                with: None,
                before: None,
                after: Some(3),
                limit: Some(MAX_HISTORY_PAGE),
                before_ts: None,
                after_ts: None,
                latest: false,
            }
        );
        // A live message during the catch-up waits its turn.
        chat.on_message(server(ServerMessage::Message(msg("lobby", 151, "bob"))), 21);
        assert_eq!(ids(&chat, "lobby"), vec![1, 2, 3]);
        // A full page means there may be more.
        let next = chat.on_message(
            reply(
                ServerMessage::History {
                    room: room("lobby"),
                    messages: (4..4 + MAX_HISTORY_PAGE as u64)
                        .map(|i| msg("lobby", i, "bob"))
                        .collect(),
                },
                &fill[0],
            ),
            22,
        );
        assert!(matches!(
            next[0].body,
            ClientMessage::History {
                after: Some(203),
                ..
            }
        ));
        let done = chat.on_message(
            reply(
                ServerMessage::History {
                    room: room("lobby"),
                    messages: (204..=220).map(|i| msg("lobby", i, "bob")).collect(),
                },
                &next[0],
            ),
            23,
        );
        assert!(done.is_empty());
        // Every message once, in order: 151 arrived live during the catch-up
        // and came again in a page; it is shown once, in its place.
        assert_eq!(ids(&chat, "lobby"), (1..=220).collect::<Vec<u64>>());
        assert!(!chat.rooms[&room("lobby")].syncing);
    }

    #[test]
    fn no_gap_means_no_history_request() {
        let mut chat = online();
        chat.on_close(0.0, 0);
        let hello = chat.on_open();
        let joins = chat.on_message(reply(welcome("alice"), &hello[0]), 0);
        let out = chat.on_message(
            reply(
                joined(
                    "lobby",
                    &["bob"],
                    (1..=5).map(|i| msg("lobby", i, "bob")).collect(),
                ),
                &joins[0],
            ),
            0,
        );
        assert!(out.is_empty());
        assert_eq!(ids(&chat, "lobby"), vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_server_that_lost_its_history_starts_over() {
        let mut chat = online();
        chat.on_close(0.0, 0);
        let hello = chat.on_open();
        let joins = chat.on_message(reply(welcome("alice"), &hello[0]), 0);
        let out = chat.on_message(reply(joined("lobby", &["alice"], vec![]), &joins[0]), 0);
        assert!(out.is_empty());
        chat.on_message(server(ServerMessage::Message(msg("lobby", 1, "bob"))), 1);
        let lines = &chat.rooms[&room("lobby")].conv.lines;
        assert!(matches!(
            lines.back().map(Rc::as_ref),
            Some(Line::Chat { id: 1, .. })
        ));
        assert!(
            lines.iter().any(
                |l| matches!(l.as_ref(), Line::Event { text, .. } if text.contains("restarted"))
            )
        );
    }

    #[test]
    fn unread_counts_and_title_total() {
        let mut chat = online();
        chat.submit("/join dev", 0).unwrap();
        assert_eq!(chat.view, Some(View::Room(room("dev"))));
        chat.on_message(server(ServerMessage::Message(msg("lobby", 4, "bob"))), 0);
        chat.on_message(server(ServerMessage::Message(msg("lobby", 5, "bob"))), 0);
        // Our own echo never counts.
        chat.on_message(server(ServerMessage::Message(msg("lobby", 6, "alice"))), 0);
        chat.on_message(
            server(ServerMessage::Direct(DirectMessage {
                id: 1,
                from: nick("carol"),
                to: nick("alice"),
                text: "psst".into(),
                ts: 5,
                account: None,
                notice: false,
                reply_to: None,
                edited: None,
                deleted: false,
                reactions: Vec::new(),
            })),
            0,
        );
        assert_eq!(chat.rooms[&room("lobby")].conv.unread, 2);
        assert_eq!(chat.directs[&nick("carol")].unread, 1);
        assert_eq!(chat.unread_total(), 3);
        chat.select(View::Room(room("lobby")));
        assert_eq!(chat.unread_total(), 1);
        // A hidden page counts even the conversation on screen.
        chat.set_visible(false);
        chat.on_message(server(ServerMessage::Message(msg("lobby", 7, "bob"))), 0);
        assert_eq!(chat.rooms[&room("lobby")].conv.unread, 1);
        chat.set_visible(true);
        assert_eq!(chat.rooms[&room("lobby")].conv.unread, 0);
    }

    /// Logged in, unread counts follow the account's read positions (set
    /// on any of its devices), and reading here moves them.
    #[test]
    fn unread_follows_the_accounts_read_positions() {
        let mut chat = logged_in();
        chat.submit("/join dev", 0).unwrap();
        for id in 4..=7 {
            chat.on_message(server(ServerMessage::Message(msg("lobby", id, "bob"))), 0);
        }
        assert_eq!(chat.rooms[&room("lobby")].conv.unread, 4);
        // Another device read up to 5.
        let read = |id| {
            server(ServerMessage::Read(ReadPosition {
                room: Some(room("lobby")),
                with: None,
                id,
                ts: 0,
            }))
        };
        chat.on_message(read(5), 10_000);
        assert_eq!(chat.rooms[&room("lobby")].conv.unread, 2);
        // Positions only move forward.
        chat.on_message(read(4), 10_000);
        assert_eq!(chat.rooms[&room("lobby")].conv.unread, 2);
        // Opening lobby marks its newest message read on the server.
        let out = chat.select(View::Room(room("lobby")));
        let marks: Vec<_> = out
            .iter()
            .filter(|r| matches!(r.body, ClientMessage::MarkRead { .. }))
            .collect();
        assert_eq!(
            marks[0].body,
            ClientMessage::MarkRead {
                room: Some(room("lobby")),
                with: None,
                id: Some(7),
                ts: None
            }
        );
        assert_eq!(chat.unread_total(), 0);
        // A message arriving on screen is marked, at most once a second.
        let out = chat.on_message(
            server(ServerMessage::Message(msg("lobby", 8, "bob"))),
            20_000,
        );
        assert!(matches!(
            out[0].body,
            ClientMessage::MarkRead { id: Some(8), .. }
        ));
        let out = chat.on_message(
            server(ServerMessage::Message(msg("lobby", 9, "bob"))),
            20_100,
        );
        assert!(out.is_empty());
        let out = chat.on_message(server(ServerMessage::Pong), 21_100);
        assert!(matches!(
            out[0].body,
            ClientMessage::MarkRead { id: Some(9), .. }
        ));
        // Scrolled up, the newest message is not on screen: not read,
        // until the list is back at the bottom.
        assert!(chat.set_reading(false).is_empty());
        let m10 = server(ServerMessage::Message(msg("lobby", 10, "bob")));
        assert!(chat.on_message(m10, 30_000).is_empty());
        assert!(chat.tick(40_000).is_empty());
        let out = chat.set_reading(true);
        assert!(matches!(
            out[0].body,
            ClientMessage::MarkRead { id: Some(10), .. }
        ));
    }

    #[test]
    fn duplicate_messages_are_shown_once() {
        let mut chat = online();
        chat.on_message(server(ServerMessage::Message(msg("lobby", 3, "bob"))), 0);
        chat.on_message(server(ServerMessage::Message(msg("lobby", 4, "bob"))), 0);
        chat.on_message(server(ServerMessage::Message(msg("lobby", 4, "bob"))), 0);
        assert_eq!(ids(&chat, "lobby"), vec![1, 2, 3, 4]);
    }

    #[test]
    fn lagged_fills_each_room() {
        let mut chat = online();
        let out = chat.on_message(server(ServerMessage::Lagged { dropped: 9 }), 0);
        assert!(matches!(
            out[0].body,
            ClientMessage::History { after: Some(3), .. }
        ));
    }

    #[test]
    fn commands_become_requests() {
        let mut chat = online();
        let say = chat.submit("hi", 0).unwrap();
        assert_eq!(
            say[0].body,
            ClientMessage::Say {
                room: room("lobby"),
                text: "hi".into(),
                notice: false,
                reply_to: None,
            }
        );
        let me = chat.submit("/me waves", 0).unwrap();
        assert!(matches!(&me[0].body, ClientMessage::Say { text, .. } if text == "/me waves"));
        let msg = chat.submit("/msg bob yo", 0).unwrap();
        assert!(matches!(&msg[0].body, ClientMessage::Whisper { to, .. } if to == &nick("bob")));
        assert_eq!(chat.view, Some(View::Direct(nick("bob"))));
        // In a direct view, plain text is a whisper.
        let again = chat.submit("more", 0).unwrap();
        assert!(matches!(&again[0].body, ClientMessage::Whisper { text, .. } if text == "more"));
        // The limit from welcome (20 bytes) is checked before sending.
        let err = chat.submit("this is far too long to send", 0).unwrap_err();
        assert!(err.contains("limit is 20"), "{err}");
        assert!(
            chat.submit("/bogus", 0)
                .unwrap_err()
                .contains("unknown command")
        );
        chat.select(View::Room(room("lobby")));
        let part = chat.submit("/part", 0).unwrap();
        assert_eq!(
            part[0].body,
            ClientMessage::Part {
                room: room("lobby"),
                reason: None,
            }
        );
        chat.on_message(
            reply(
                ServerMessage::Parted {
                    room: room("lobby"),
                    reason: None,
                },
                &part[0],
            ),
            0,
        );
        assert!(!chat.rooms.contains_key(&room("lobby")));
    }

    #[test]
    fn nothing_is_sent_while_offline() {
        let mut chat = online();
        chat.on_close(0.0, 0);
        assert!(chat.submit("hi", 0).unwrap_err().contains("not connected"));
    }

    #[test]
    fn a_taken_nick_at_sign_in_is_shown_and_retried() {
        let mut chat = Chat::new(Some(nick("alice")), vec![]);
        let hello = chat.on_open();
        chat.on_message(
            reply(
                ServerMessage::error(ErrorCode::NickTaken, "the nick alice is in use"),
                &hello[0],
            ),
            0,
        );
        assert!(matches!(&chat.status, Status::NickRefused(m) if m.contains("in use")));
        let again = chat.sign_in(nick("alice2"), None, false, None);
        assert!(
            matches!(&again[0].body, ClientMessage::Hello { nick: n, .. } if n == &nick("alice2"))
        );
    }

    #[test]
    fn a_taken_nick_on_reconnect_takes_a_variant() {
        let mut chat = online();
        chat.on_close(0.0, 0);
        let hello = chat.on_open();
        let retry = chat.on_message(
            reply(
                ServerMessage::error(ErrorCode::NickTaken, "in use"),
                &hello[0],
            ),
            0,
        );
        assert!(
            matches!(&retry[0].body, ClientMessage::Hello { nick: n, .. } if n.as_str() == "alice_")
        );
    }

    #[test]
    fn presence_updates_members_and_follows_renames() {
        let mut chat = online();
        chat.submit("/msg bob hi", 0).unwrap();
        chat.on_message(
            server(ServerMessage::Presence {
                room: room("lobby"),
                nick: nick("carol"),
                event: PresenceEvent::Join,
                new_nick: None,
                reason: None,
                account: None,
                realname: None,
                bot: false,
            }),
            0,
        );
        chat.on_message(
            server(ServerMessage::Presence {
                room: room("lobby"),
                nick: nick("bob"),
                event: PresenceEvent::Nick,
                new_nick: Some(nick("bobby")),
                reason: None,
                account: None,
                realname: None,
                bot: false,
            }),
            0,
        );
        let members = &chat.rooms[&room("lobby")].members;
        assert_eq!(members, &vec![nick("alice"), nick("bobby"), nick("carol")]);
        assert_eq!(chat.view, Some(View::Direct(nick("bobby"))));
        assert!(chat.directs.contains_key(&nick("bobby")));
        chat.on_message(
            server(ServerMessage::Presence {
                room: room("lobby"),
                nick: nick("carol"),
                event: PresenceEvent::Quit,
                new_nick: None,
                reason: Some("bye".into()),
                account: None,
                realname: None,
                bot: false,
            }),
            0,
        );
        assert_eq!(chat.rooms[&room("lobby")].members.len(), 2);
    }

    #[test]
    fn topics_and_away() {
        let mut chat = online();
        let set = chat.submit("/topic release day", 0).unwrap();
        assert_eq!(
            set[0].body,
            ClientMessage::Topic {
                room: room("lobby"),
                text: Some("release day".into())
            }
        );
        chat.on_message(
            server(ServerMessage::Topic {
                room: room("lobby"),
                topic: Some(Topic {
                    text: "release day".into(),
                    by: nick("alice"),
                    ts: 1,
                }),
            }),
            0,
        );
        assert_eq!(
            chat.rooms[&room("lobby")].topic.as_ref().unwrap().text,
            "release day"
        );
        chat.on_message(
            server(ServerMessage::Away {
                nick: nick("bob"),
                message: Some("lunch".into()),
            }),
            0,
        );
        assert_eq!(
            chat.away.get(&nick("bob")).map(String::as_str),
            Some("lunch")
        );
        chat.on_message(
            server(ServerMessage::Away {
                nick: nick("bob"),
                message: None,
            }),
            0,
        );
        assert!(chat.away.is_empty());
        let away = chat.submit("/away brb", 0).unwrap();
        assert_eq!(
            away[0].body,
            ClientMessage::Away {
                message: Some("brb".into())
            }
        );
    }

    #[test]
    fn scrolling_up_loads_older_pages_until_the_first_message() {
        let mut chat = Chat::new(Some(nick("alice")), vec![room("lobby")]);
        let hello = chat.on_open();
        let joins = chat.on_message(reply(welcome("alice"), &hello[0]), 0);
        chat.on_message(
            reply(
                joined(
                    "lobby",
                    &["alice"],
                    (71..=120).map(|i| msg("lobby", i, "bob")).collect(),
                ),
                &joins[0],
            ),
            0,
        );
        assert!(chat.rooms[&room("lobby")].more_before);
        let page = chat.load_older();
        assert_eq!(
            page[0].body,
            ClientMessage::History {
                room: Some(room("lobby")),
                with: None,
                before: Some(71),
                after: None,
                before_ts: None,
                after_ts: None,
                latest: false,
                limit: Some(OLDER_PAGE),
            }
        );
        assert!(chat.load_older().is_empty(), "one page at a time");
        chat.on_message(
            reply(
                ServerMessage::History {
                    room: room("lobby"),
                    messages: (21..=70).map(|i| msg("lobby", i, "bob")).collect(),
                },
                &page[0],
            ),
            0,
        );
        let next = chat.load_older();
        assert!(matches!(
            next[0].body,
            ClientMessage::History {
                before: Some(21),
                ..
            }
        ));
        chat.on_message(
            reply(
                ServerMessage::History {
                    room: room("lobby"),
                    messages: (1..=20).map(|i| msg("lobby", i, "bob")).collect(),
                },
                &next[0],
            ),
            0,
        );
        assert_eq!(ids(&chat, "lobby"), (1..=120).collect::<Vec<u64>>());
        assert!(
            !chat.rooms[&room("lobby")].more_before,
            "the first message is shown"
        );
        assert!(chat.load_older().is_empty());
        // New messages still land at the end.
        chat.on_message(server(ServerMessage::Message(msg("lobby", 121, "bob"))), 0);
        assert_eq!(ids(&chat, "lobby").last(), Some(&121));
    }

    #[test]
    fn a_refused_nick_waits_for_the_user() {
        let mut chat = Chat::new(Some(nick("alice")), vec![]);
        let hello = chat.on_open();
        chat.on_message(
            reply(
                ServerMessage::error(ErrorCode::NickTaken, "in use"),
                &hello[0],
            ),
            0,
        );
        // The server closes the idle socket meanwhile: the form stays up
        // and nothing reconnects until the user picks a nick.
        chat.on_close(0.0, 0);
        assert!(matches!(chat.status, Status::NickRefused(_)));
        assert!(!chat.wants_connection());
        assert!(
            chat.sign_in(nick("alice3"), None, false, None).is_empty(),
            "the next socket says hello"
        );
        assert!(chat.wants_connection());
        assert_eq!(chat.status, Status::Connecting { attempt: 0 });
    }

    #[test]
    fn register_then_log_in_then_reconnect_with_the_token() {
        let mut chat = Chat::new(None, vec![room("lobby")]);
        assert!(
            chat.sign_in(nick("alice"), Some("hunter22".into()), true, None)
                .is_empty()
        );
        let first = chat.on_open();
        assert_eq!(
            first[0].body,
            ClientMessage::Register {
                nick: nick("alice"),
                password: "hunter22".into(),
                invite: None,
            }
        );
        let hello = chat.on_message(
            reply(
                ServerMessage::Registered {
                    nick: nick("alice"),
                },
                &first[0],
            ),
            0,
        );
        assert!(
            matches!(&hello[0].body, ClientMessage::Hello { password: Some(p), token: None, .. } if p == "hunter22")
        );
        chat.on_message(reply(welcome("alice"), &hello[0]), 0);
        chat.on_message(
            server(ServerMessage::LoggedIn {
                account: nick("alice"),
                token: Some("t0k3n".into()),
                admin: false,
            }),
            0,
        );
        assert_eq!(chat.account, Some(nick("alice")));
        assert_eq!(chat.token.as_deref(), Some("t0k3n"));
        assert!(chat.password.is_none(), "the password is not kept");
        chat.on_close(0.0, 0);
        let again = chat.on_open();
        assert!(
            matches!(&again[0].body, ClientMessage::Hello { password: None, token: Some(t), .. } if t == "t0k3n")
        );
        // A revoked token sends the user back to the form, token forgotten.
        chat.on_message(
            reply(
                ServerMessage::error(ErrorCode::AuthFailed, "revoked"),
                &again[0],
            ),
            0,
        );
        assert!(matches!(&chat.status, Status::NickRefused(m) if m.contains("password")));
        assert!(chat.token.is_none());
    }

    #[test]
    fn operators_see_roles_and_kicks() {
        let mut chat = online();
        chat.on_message(
            server(ServerMessage::LoggedIn {
                account: nick("alice"),
                token: None,
                admin: false,
            }),
            0,
        );
        assert!(!chat.is_operator(&room("lobby")));
        assert!(
            chat.may_set_topic(&room("lobby")),
            "a room without owner is open"
        );
        chat.on_message(
            server(ServerMessage::Roles {
                room: room("lobby"),
                owner: Some(nick("alice")),
                ops: vec![],
                moderators: vec![],
            }),
            0,
        );
        assert!(chat.is_operator(&room("lobby")));
        let kick = chat.moderate(room("lobby"), nick("bob"), "kick");
        assert!(matches!(&kick[0].body, ClientMessage::Kick { nick: n, .. } if n == &nick("bob")));
        chat.on_message(
            server(ServerMessage::Kicked {
                room: room("lobby"),
                nick: nick("bob"),
                by: nick("alice"),
                reason: None,
            }),
            0,
        );
        assert_eq!(chat.rooms[&room("lobby")].members, vec![nick("alice")]);
        assert!(chat.submit("/ban bob", 0).is_ok());
        // Kicked ourselves: the room goes.
        chat.on_message(
            server(ServerMessage::Kicked {
                room: room("lobby"),
                nick: nick("alice"),
                by: nick("carol"),
                reason: Some("bye".into()),
            }),
            0,
        );
        assert!(!chat.rooms.contains_key(&room("lobby")));
    }

    #[test]
    fn signing_out_revokes_the_token_first() {
        let mut chat = online();
        chat.token = Some("t".into());
        let out = chat.sign_out();
        assert_eq!(out[0].body, ClientMessage::Logout { all: false });
        assert!(!chat.signed_out);
        chat.on_message(reply(ServerMessage::LoggedOut { revoked: 1 }, &out[0]), 0);
        assert!(chat.signed_out);
    }

    /// `online()`, logged into the account alice with token `t0`.
    pub(super) fn logged_in() -> Chat {
        let mut chat = online();
        chat.on_message(
            server(ServerMessage::LoggedIn {
                account: nick("alice"),
                token: Some("t0".into()),
                admin: false,
            }),
            0,
        );
        chat
    }

    fn account_result(chat: &Chat, action: AccountAction) -> Result<String, String> {
        let reply = chat.account_reply.clone().expect("an answer");
        assert_eq!(reply.action, action);
        reply.result
    }

    #[test]
    fn changing_the_password_keeps_the_new_token() {
        let mut chat = logged_in();
        chat.open_panel(Some(Panel::Account));
        let out = chat.change_password("old secret".into(), "new secret".into());
        assert_eq!(
            out[0].body,
            ClientMessage::ChangePassword {
                old_password: "old secret".into(),
                new_password: "new secret".into(),
            }
        );
        assert_eq!(chat.account_waiting, Some(AccountAction::ChangePassword));
        chat.on_message(
            reply(
                ServerMessage::PasswordChanged { token: "t1".into() },
                &out[0],
            ),
            0,
        );
        assert_eq!(chat.token.as_deref(), Some("t1"), "the new token is kept");
        assert_eq!(chat.account_waiting, None);
        assert!(
            account_result(&chat, AccountAction::ChangePassword)
                .is_ok_and(|t| t.contains("Password changed"))
        );
        assert_eq!(chat.account, Some(nick("alice")), "still logged in");
        // Opening the panel again starts without the old answer.
        chat.open_panel(Some(Panel::Account));
        assert!(chat.account_reply.is_none());
    }

    #[test]
    fn account_errors_become_sentences() {
        let mut chat = logged_in();
        for (code, action, expect) in [
            (
                ErrorCode::AuthFailed,
                AccountAction::ChangePassword,
                "current password is wrong",
            ),
            (
                ErrorCode::InvalidPassword,
                AccountAction::ChangePassword,
                "8 to 256",
            ),
            (
                ErrorCode::RateLimited,
                AccountAction::ChangePassword,
                "Too many tries",
            ),
            (ErrorCode::AuthFailed, AccountAction::Delete, "not deleted"),
            (
                ErrorCode::RateLimited,
                AccountAction::SignOutEverywhere,
                "Too many tries",
            ),
        ] {
            let out = match action {
                AccountAction::ChangePassword => chat.change_password("a".into(), "b".into()),
                AccountAction::Delete => chat.delete_account("pw".into()),
                AccountAction::SignOutEverywhere => chat.sign_out_everywhere(),
            };
            chat.on_message(reply(ServerMessage::error(code, "no"), &out[0]), 0);
            let text = account_result(&chat, action).unwrap_err();
            assert!(text.contains(expect), "{code:?}: {text}");
            assert_eq!(chat.account_waiting, None);
        }
        assert_eq!(chat.token.as_deref(), Some("t0"), "nothing changed");
        assert!(!chat.signed_out, "a refused sign-out-everywhere stays");
        assert!(chat.is_online());
    }

    #[test]
    fn signing_out_everywhere_signs_out_here_too() {
        let mut chat = logged_in();
        let out = chat.sign_out_everywhere();
        assert_eq!(out[0].body, ClientMessage::Logout { all: true });
        chat.on_message(reply(ServerMessage::LoggedOut { revoked: 3 }, &out[0]), 0);
        assert!(chat.signed_out);
    }

    #[test]
    fn a_deleted_account_goes_on_as_a_guest() {
        let mut chat = logged_in();
        chat.open_panel(Some(Panel::Account));
        let out = chat.delete_account("hunter22".into());
        assert_eq!(
            out[0].body,
            ClientMessage::DeleteAccount {
                password: "hunter22".into()
            }
        );
        chat.on_message(
            reply(
                ServerMessage::AccountDeleted {
                    account: nick("alice"),
                },
                &out[0],
            ),
            5,
        );
        assert_eq!(chat.account, None);
        assert_eq!(chat.token, None, "nothing to log in with any more");
        assert!(chat.is_online() && !chat.signed_out);
        assert_eq!(chat.nick, Some(nick("alice")));
        assert!(account_result(&chat, AccountAction::Delete).is_ok_and(|t| t.contains("guest")));
        assert!(
            matches!(chat.current().unwrap().lines.back().map(|l| l.as_ref()), Some(Line::Event { text, .. }) if text.contains("guest")),
            "the conversation says so too"
        );
        // Choosing a conversation closes the panel.
        chat.select(View::Room(room("lobby")));
        assert_eq!(chat.panel, None);
    }

    #[test]
    fn account_requests_wait_for_a_connection() {
        let mut chat = logged_in();
        chat.on_close(0.0, 0);
        assert!(chat.change_password("a".into(), "b".into()).is_empty());
        assert!(account_result(&chat, AccountAction::ChangePassword).is_err());
        // A request cut off by a dropped connection is answered too.
        let mut chat = logged_in();
        chat.delete_account("pw".into());
        chat.on_close(0.0, 0);
        assert_eq!(chat.account_waiting, None);
        assert!(
            account_result(&chat, AccountAction::Delete)
                .is_err_and(|t| t.contains("connection dropped"))
        );
    }

    #[test]
    fn logged_out_elsewhere_returns_to_the_form_without_reconnecting() {
        let mut chat = logged_in();
        chat.on_message(
            server(ServerMessage::Closing {
                code: ErrorCode::LoggedOutElsewhere,
                message: "the account's password was changed from another session".into(),
            }),
            0,
        );
        assert_eq!(chat.token, None, "the revoked token is forgotten");
        assert_eq!(chat.account, None);
        assert!(
            matches!(&chat.status, Status::NickRefused(m) if m.contains("signed out") && m.contains("password was changed"))
        );
        // The server closes the socket: no retry with a dead token.
        assert_eq!(chat.on_close(0.5, 0), 0);
        assert!(!chat.wants_connection());
        assert!(matches!(chat.status, Status::NickRefused(_)));
        // Logging in again works as at first.
        chat.sign_in(nick("alice"), Some("new secret".into()), false, None);
        let hello = chat.on_open();
        assert!(
            matches!(&hello[0].body, ClientMessage::Hello { password: Some(p), token: None, .. } if p == "new secret")
        );
    }

    #[test]
    fn other_closings_still_reconnect() {
        let mut chat = logged_in();
        chat.on_message(
            server(ServerMessage::Closing {
                code: ErrorCode::ShuttingDown,
                message: "bye".into(),
            }),
            0,
        );
        assert!(chat.on_close(0.5, 0) > 0);
        assert!(chat.wants_connection());
        assert_eq!(chat.token.as_deref(), Some("t0"));
    }

    #[test]
    fn registering_with_an_invite() {
        let mut chat = Chat::new(None, vec![room("lobby")]);
        chat.sign_in(
            nick("alice"),
            Some("hunter22".into()),
            true,
            Some("c0de".into()),
        );
        let first = chat.on_open();
        assert_eq!(
            first[0].body,
            ClientMessage::Register {
                nick: nick("alice"),
                password: "hunter22".into(),
                invite: Some("c0de".into()),
            }
        );
        for (code, expect) in [
            (ErrorCode::InviteRequired, "needs an invite code"),
            (ErrorCode::InvalidInvite, "invite code is not valid"),
            (ErrorCode::RegistrationClosed, "not taking new accounts"),
        ] {
            let mut chat = Chat::new(None, vec![]);
            chat.sign_in(nick("alice"), Some("hunter22".into()), true, None);
            let first = chat.on_open();
            assert!(matches!(
                &first[0].body,
                ClientMessage::Register { invite: None, .. }
            ));
            chat.on_message(reply(ServerMessage::error(code, "no"), &first[0]), 0);
            assert!(
                matches!(&chat.status, Status::NickRefused(m) if m.contains(expect)),
                "{code:?}: {:?}",
                chat.status
            );
        }
        // An invite is only for creating an account.
        let mut chat = Chat::new(None, vec![]);
        chat.sign_in(nick("bob"), Some("pw".into()), false, Some("c0de".into()));
        assert!(matches!(
            &chat.on_open()[0].body,
            ClientMessage::Hello { .. }
        ));
    }

    #[test]
    fn fragments_name_views() {
        assert_eq!(
            View::from_fragment("#lobby"),
            Some(View::Room(room("lobby")))
        );
        assert_eq!(
            View::from_fragment("#@Bob"),
            Some(View::Direct(nick("bob")))
        );
        assert_eq!(View::from_fragment("#not a room"), None);
        assert_eq!(View::Direct(nick("Bob")).fragment(), "@Bob");
    }

    /// `online()`, logged into the account root, which administers the
    /// server.
    fn administrator() -> Chat {
        let mut chat = online();
        chat.on_message(
            server(ServerMessage::LoggedIn {
                account: nick("root"),
                token: None,
                admin: true,
            }),
            0,
        );
        chat
    }

    fn admin_reply(chat: &Chat) -> Result<String, String> {
        chat.admin.reply.clone().expect("an answer")
    }

    fn ban(account: Option<&str>, address: Option<&str>) -> banter_protocol::ServerBan {
        banter_protocol::ServerBan {
            address: address.map(String::from),
            account: account.map(nick),
            reason: "spam".into(),
            by: nick("root"),
            ts: 1,
            expires: None,
        }
    }

    #[test]
    fn only_administrators_are_told_so() {
        assert!(!logged_in().administers);
        let mut chat = administrator();
        assert!(chat.administers);
        // Signing in again (as someone else) forgets it until the server says.
        chat.sign_in(nick("bob"), None, false, None);
        assert!(!chat.administers);
    }

    #[test]
    fn the_admin_panel_lists_rooms_members_and_bans() {
        let mut chat = administrator();
        let out = chat.open_panel(Some(Panel::Admin));
        let bodies: Vec<_> = out.iter().map(|r| r.body.clone()).collect();
        assert_eq!(bodies, [ClientMessage::Rooms, ClientMessage::Klines]);
        let info = banter_protocol::RoomInfo {
            room: room("lobby"),
            members: 2,
            topic: None,
        };
        chat.on_message(
            reply(
                ServerMessage::Rooms {
                    rooms: vec![info.clone()],
                },
                &out[0],
            ),
            0,
        );
        chat.on_message(
            reply(
                ServerMessage::Klines {
                    klines: vec![ban(None, Some("10.0.0.0/8"))],
                },
                &out[1],
            ),
            0,
        );
        assert_eq!(chat.admin.rooms, [info]);
        assert_eq!(chat.admin.klines.len(), 1);

        let asked = chat.admin_members(room("lobby"));
        let members = ServerMessage::Members {
            room: room("lobby"),
            members: vec![nick("alice"), nick("mallory")],
            away: vec![],
            moderators: vec![],
            voiced: vec![],
            users: vec![],
            secret: false,
        };
        chat.on_message(reply(members, &asked[0]), 0);
        let (listed, people) = chat.admin.room.clone().expect("members");
        assert_eq!((listed, people.len()), (room("lobby"), 2));

        // Disconnecting: the reason is optional, the victim leaves the list.
        let out = chat.kill(nick("mallory"), String::new());
        assert_eq!(
            out[0].body,
            ClientMessage::Kill {
                nick: nick("mallory"),
                reason: None
            }
        );
        chat.on_message(
            reply(
                ServerMessage::Killed {
                    nick: nick("mallory"),
                },
                &out[0],
            ),
            0,
        );
        assert_eq!(admin_reply(&chat), Ok("mallory was disconnected.".into()));
        assert_eq!(chat.admin.room.as_ref().unwrap().1, [nick("alice")]);
        // Going back to the conversation closes the panel.
        chat.open_panel(None);
        assert_eq!((chat.panel, &chat.admin.reply), (None, &None));
    }

    #[test]
    fn server_bans_are_set_and_lifted() {
        let mut chat = administrator();
        let out = chat.kline(" eve ", "spam".into(), Some(60));
        assert_eq!(
            out[0].body,
            ClientMessage::Kline {
                address: None,
                account: Some(nick("eve")),
                reason: "spam".into(),
                minutes: Some(60),
            }
        );
        let eve = ban(Some("eve"), None);
        chat.on_message(
            reply(
                ServerMessage::Klined {
                    kline: eve.clone(),
                    set: true,
                },
                &out[0],
            ),
            0,
        );
        assert_eq!(chat.admin.klines, std::slice::from_ref(&eve));
        assert_eq!(
            admin_reply(&chat),
            Ok("Banned the account eve from the server.".into())
        );
        // Set again (a new reason): replaced, not listed twice.
        chat.on_message(
            server(ServerMessage::Klined {
                kline: eve.clone(),
                set: true,
            }),
            0,
        );
        assert_eq!(chat.admin.klines.len(), 1);

        let out = chat.unkline(&eve);
        assert_eq!(
            out[0].body,
            ClientMessage::Unkline {
                address: None,
                account: Some(nick("eve"))
            }
        );
        chat.on_message(
            reply(
                ServerMessage::Klined {
                    kline: eve,
                    set: false,
                },
                &out[0],
            ),
            0,
        );
        assert!(chat.admin.klines.is_empty());
        assert_eq!(
            admin_reply(&chat),
            Ok("Lifted the ban on the account eve.".into())
        );

        // An address or range goes as `address`; a bad account name is
        // refused here, as a sentence.
        let out = chat.kline("1.2.3.0/24", "spam".into(), None);
        assert!(
            matches!(&out[0].body, ClientMessage::Kline { address: Some(a), account: None, .. } if a == "1.2.3.0/24")
        );
        assert!(chat.kline("no good", "x".into(), None).is_empty());
        assert_eq!(
            admin_reply(&chat),
            Err("“no good” is neither an account name nor an address.".into())
        );
    }

    #[test]
    fn removing_an_account_is_not_deleting_ours() {
        let mut chat = administrator();
        let out = chat.remove_account("eve");
        assert_eq!(
            out[0].body,
            ClientMessage::RemoveAccount {
                account: nick("eve")
            }
        );
        chat.on_message(
            reply(
                ServerMessage::AccountDeleted {
                    account: nick("eve"),
                },
                &out[0],
            ),
            0,
        );
        assert_eq!(admin_reply(&chat), Ok("The account eve is removed.".into()));
        assert_eq!(chat.account, Some(nick("root")), "still logged in");
        assert!(chat.administers);
    }

    #[test]
    fn admin_refusals_become_sentences() {
        let mut chat = administrator();
        for (request, code, says) in [
            (
                chat.kill(nick("ghost"), "x".into()),
                ErrorCode::NoSuchNick,
                "ghost is not online",
            ),
            (
                chat.remove_account("ghost"),
                ErrorCode::NoSuchAccount,
                "There is no account ghost.",
            ),
            (
                chat.admin_refresh(),
                ErrorCode::NotAdmin,
                "no longer is one",
            ),
        ]
        .map(|(out, code, says)| (out.into_iter().next().unwrap(), code, says))
        {
            chat.on_message(
                reply(
                    ServerMessage::Error {
                        code,
                        message: "refused".into(),
                    },
                    &request,
                ),
                0,
            );
            let text = admin_reply(&chat).unwrap_err();
            assert!(text.contains(says), "{code:?}: {text}");
        }
        assert!(!chat.administers, "not_admin: the link goes");
        // Offline, nothing is sent and the panel says why.
        chat.on_close(0.5, 0);
        assert!(chat.kill(nick("x"), String::new()).is_empty());
        assert!(admin_reply(&chat).unwrap_err().contains("Not connected"));
    }

    /// The text of the newest line of `r`'s conversation.
    pub(super) fn last_event(chat: &Chat, r: &str) -> String {
        match chat.rooms[&room(r)].conv.lines.back().map(|l| l.as_ref()) {
            Some(Line::Event { text, .. }) => text.clone(),
            other => panic!("no event last: {other:?}"),
        }
    }

    #[test]
    fn room_modes_voices_and_invitations_are_shown() {
        let mut chat = online();
        let modes = RoomModes {
            invite_only: true,
            key: Some("sesame".into()),
            ..RoomModes::default()
        };
        let change = |modes: RoomModes| {
            server(ServerMessage::Modes {
                room: room("lobby"),
                modes,
                by: Some(nick("bob")),
                change: None,
                created: None,
            })
        };
        chat.on_message(change(modes.clone()), 0);
        assert_eq!(chat.rooms[&room("lobby")].modes, modes);
        assert_eq!(
            last_event(&chat, "lobby"),
            "bob changed the room: invite only on, key on"
        );
        assert_eq!(
            describe_modes(&chat.rooms[&room("lobby")].modes),
            "Invite only · Key needed"
        );
        let limited = RoomModes {
            limit: Some(20),
            moderated: true,
            ..RoomModes::default()
        };
        chat.on_message(change(limited), 0);
        assert_eq!(
            last_event(&chat, "lobby"),
            "bob changed the room: invite only off, moderated on, key off, at most 20 members"
        );
        chat.on_message(
            server(ServerMessage::Voiced {
                room: room("lobby"),
                nick: nick("alice"),
                by: nick("bob"),
                set: true,
            }),
            0,
        );
        assert_eq!(last_event(&chat, "lobby"), "bob gave alice a voice");
        // Our voice follows our nick.
        chat.on_message(
            server(ServerMessage::Nick {
                nick: nick("alicia"),
                old: nick("alice"),
            }),
            0,
        );
        assert_eq!(chat.rooms[&room("lobby")].voiced, vec![nick("alicia")]);
        chat.on_message(
            server(ServerMessage::Voiced {
                room: room("lobby"),
                nick: nick("alicia"),
                by: nick("bob"),
                set: false,
            }),
            0,
        );
        assert!(chat.rooms[&room("lobby")].voiced.is_empty());
        chat.on_message(
            server(ServerMessage::Invited {
                room: room("lobby"),
                nick: nick("carol"),
                by: nick("bob"),
            }),
            0,
        );
        assert_eq!(last_event(&chat, "lobby"), "bob invited carol");
    }

    #[test]
    fn saving_room_settings_asks_only_for_what_changed() {
        let mut chat = online();
        chat.rooms.get_mut(&room("lobby")).unwrap().modes = RoomModes {
            key: Some("old".into()),
            limit: Some(5),
            secret: true,
            ..RoomModes::default()
        };
        let want = RoomModes {
            invite_only: true,
            secret: true,
            ..RoomModes::default()
        };
        let sent = chat.set_modes(room("lobby"), want.clone());
        assert_eq!(
            sent[0].body,
            ClientMessage::Mode {
                room: room("lobby"),
                set: Some(ModeChange {
                    invite_only: Some(true),
                    key: Some(String::new()),
                    limit: Some(0),
                    ..ModeChange::default()
                }),
            }
        );
        chat.rooms.get_mut(&room("lobby")).unwrap().modes = want.clone();
        assert!(
            chat.set_modes(room("lobby"), want).is_empty(),
            "nothing changed"
        );
    }

    #[test]
    fn a_room_key_is_given_again_after_a_reconnect() {
        let mut chat = online();
        let sent = chat.submit("/join den sesame", 0).unwrap();
        assert_eq!(
            sent[0].body,
            ClientMessage::Join {
                room: room("den"),
                key: Some("sesame".into()),
                rejoin: false,
            }
        );
        chat.on_message(reply(joined("den", &["alice"], vec![]), &sent[0]), 0);
        chat.on_close(0.5, 0);
        let hello = chat.on_open();
        let joins = chat.on_message(reply(welcome("alice"), &hello[0]), 0);
        assert!(joins.iter().any(|j| j.body
            == ClientMessage::Join {
                room: room("den"),
                key: Some("sesame".into()),
                rejoin: true,
            }));
        // A wrong key says how to give one.
        let refused = chat.submit("/join vault", 0).unwrap();
        chat.on_message(
            reply(
                ServerMessage::Error {
                    code: ErrorCode::BadKey,
                    message: "vault has a key (+k)".into(),
                },
                &refused[0],
            ),
            0,
        );
        let view = chat.current().unwrap();
        assert!(matches!(view.lines.back().map(|l| l.as_ref()),
            Some(Line::Event { text, .. }) if text.contains("/join vault and the key")));
    }

    #[test]
    fn bots_are_known_from_joins_and_profiles() {
        let mut chat = online();
        let joined = ServerMessage::Joined {
            room: room("den"),
            members: vec![nick("alice"), nick("robo")],
            history: vec![],
            topic: None,
            moderators: vec![],
            access: banter_protocol::Access::boxed(
                RoomModes::default(),
                vec![],
                None,
                vec![nick("robo")],
            ),
        };
        chat.on_message(server(joined), 0);
        assert!(chat.bots.contains(&nick("robo")));
        let profile = ServerMessage::Profile {
            nick: nick("robo"),
            realname: None,
            bot: false,
        };
        chat.on_message(server(profile), 0);
        assert!(chat.bots.is_empty());
    }

    #[test]
    fn whois_shows_the_real_name_the_account_and_a_bot() {
        let mut chat = online();
        let whois = ServerMessage::Whois {
            nick: nick("bob"),
            rooms: vec![room("lobby")],
            away: None,
            idle_secs: 0,
            since: 0,
            account: Some(nick("bob")),
            realname: Some("Bob B.".into()),
            username: None,
            bot: true,
            oper: false,
            prefixes: vec![],
        };
        chat.on_message(server(whois), 0);
        let view = chat.current().unwrap();
        assert!(matches!(view.lines.back().map(|l| l.as_ref()),
            Some(Line::Event { text, .. }) if text.starts_with("bob (Bob B.), a bot, account bob: in #lobby")));
    }
}
