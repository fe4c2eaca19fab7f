//! What each request this IRC client made asked for, kept by the
//! connection so that the reply can be rendered as the numeric IRC
//! expects: a `members` reply is NAMES or WHO, an error names the command
//! and target it refuses. The request carries only a number (`Ref::Int`)
//! that the [`Asked`] table allocates; the context never leaves the
//! connection, so nothing is encoded into the `ref` and parsed back.
//!
//! Replies to one request may be several frames with its ref (a whisper's
//! echo and the target's away message; an error), and some come late (a
//! change is announced once the store commits it), so an entry stays until
//! it has been answered *and* a reply to a later request has been
//! rendered. The table is bounded: past [`MAX_ASKED`] requests, the oldest
//! answered one is forgotten first, else the oldest.

use std::borrow::Cow;
use std::collections::VecDeque;

use banter_protocol::{BanList, Nick, Ref, RoomName};

/// Most requests remembered at once.
pub const MAX_ASKED: usize = 64;

/// The command a request was made for, with its target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// Registration's `hello` with this nick (NICK and USER, or SASL).
    Hello(Nick),
    /// NICK once registered.
    Nick(Nick),
    Join(RoomName),
    Part(RoomName),
    /// PRIVMSG to a channel or nick, as the client wrote it.
    Privmsg(Box<str>),
    Notice(Box<str>),
    /// TOPIC with a new topic.
    Topic(RoomName),
    /// TOPIC without one: what is it?
    TopicQuery(RoomName),
    Names(RoomName),
    /// LIST, with its filter (`*` for all).
    List(Box<str>),
    /// WHO of a channel or a nick, with WHOX's `%fields[,token]`.
    WhoRoom(RoomName, Option<Box<str>>),
    WhoNick(Nick, Option<Box<str>>),
    /// WHO of a nick mask (as the client wrote it), with WHOX's fields.
    WhoMask(Box<str>, Option<Box<str>>),
    Whois(Nick),
    Userhost,
    Ison,
    Away,
    /// KICK of this nick out of a room.
    Kick(RoomName, Nick),
    Mode(RoomName),
    /// MODE `+o`/`-o`/`+v`/`-v` of a member.
    ModeMember(RoomName, Nick),
    /// MODE #room with `b`, `e` or `I`: one of its lists, or an entry.
    ModeList(RoomName, BanList),
    /// MODE #room without modes: 324.
    ModeQuery(RoomName),
    /// INVITE of this nick into this room.
    Invite(Nick, RoomName),
    /// SASL PLAIN's check of this account's password.
    Sasl(Nick),
    /// CHATHISTORY of a target as given (`#room`, a nick, or `*` for
    /// TARGETS).
    Chathistory(Box<str>),
    /// MARKREAD of a target as given.
    Markread(Box<str>),
    /// OPER: are we a server administrator?
    Oper,
    /// A server administrator's command (KILL, KLINE, UNKLINE, STATS).
    Admin(&'static str),
    /// SETNAME: a new real name.
    Setname,
    /// MONITOR, by subcommand.
    Monitor(Monitor),
    /// MODE on ourselves: `+B`/`-B`.
    UserMode,
    /// REDACT of a message (its msgid, as given) of this target.
    Redact(Box<str>, Box<str>),
    /// TAGMSG (a reaction) to this target.
    Tagmsg(Box<str>),
    /// SEARCH (soju.im/search).
    Search,
    /// WEBPUSH REGISTER (`true`) or UNREGISTER of an endpoint.
    Webpush(bool, Box<str>),
}

impl Asked {
    /// The IRC command, as an unknown error names it.
    pub fn command(&self) -> &'static str {
        match self {
            Asked::Hello(_) | Asked::Nick(_) => "NICK",
            Asked::Join(_) => "JOIN",
            Asked::Part(_) => "PART",
            Asked::Privmsg(_) => "PRIVMSG",
            Asked::Notice(_) => "NOTICE",
            Asked::Topic(_) => "TOPIC",
            // How ERR_UNKNOWNERROR names a topic query (clients see it so).
            Asked::TopicQuery(_) => "TOPIC?",
            Asked::Names(_) => "NAMES",
            Asked::List(_) => "LIST",
            Asked::WhoRoom(..) | Asked::WhoNick(..) | Asked::WhoMask(..) => "WHO",
            Asked::Whois(_) => "WHOIS",
            Asked::Userhost => "USERHOST",
            Asked::Ison => "ISON",
            Asked::Away => "AWAY",
            Asked::Kick(..) => "KICK",
            Asked::Mode(_) | Asked::ModeMember(..) | Asked::ModeList(..) | Asked::ModeQuery(_) => {
                "MODE"
            }
            Asked::Invite(..) => "INVITE",
            Asked::Sasl(_) => "SASL",
            Asked::Chathistory(_) => "CHATHISTORY",
            Asked::Markread(_) => "MARKREAD",
            Asked::Oper => "OPER",
            Asked::Admin(command) => command,
            Asked::Setname => "SETNAME",
            Asked::Monitor(_) => "MONITOR",
            Asked::UserMode => "MODE",
            Asked::Redact(..) => "REDACT",
            Asked::Tagmsg(_) => "TAGMSG",
            Asked::Search => "SEARCH",
            Asked::Webpush(..) => "WEBPUSH",
        }
    }

    /// What the request was about, as numerics name it (`-` for none).
    pub fn target(&self) -> Cow<'_, str> {
        match self {
            Asked::Join(room)
            | Asked::Part(room)
            | Asked::Topic(room)
            | Asked::TopicQuery(room)
            | Asked::Names(room)
            | Asked::WhoRoom(room, _)
            | Asked::Kick(room, _)
            | Asked::Mode(room)
            | Asked::ModeMember(room, _)
            | Asked::ModeList(room, _)
            | Asked::ModeQuery(room)
            | Asked::Invite(_, room) => Cow::Owned(format!("#{room}")),
            Asked::Hello(nick)
            | Asked::Nick(nick)
            | Asked::WhoNick(nick, _)
            | Asked::Whois(nick)
            | Asked::Sasl(nick) => Cow::Borrowed(nick.as_str()),
            Asked::Privmsg(target)
            | Asked::Notice(target)
            | Asked::Redact(target, _)
            | Asked::Webpush(_, target)
            | Asked::Tagmsg(target)
            | Asked::List(target)
            | Asked::WhoMask(target, _)
            | Asked::Chathistory(target)
            | Asked::Markread(target) => Cow::Borrowed(target),
            Asked::Userhost
            | Asked::Ison
            | Asked::Away
            | Asked::Oper
            | Asked::Admin(_)
            | Asked::Setname
            | Asked::Monitor(_)
            | Asked::UserMode
            | Asked::Search => Cow::Borrowed("-"),
        }
    }
}

/// What a MONITOR asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Monitor {
    /// `+`: these targets (as written, for 734).
    Add(Box<str>),
    /// `-` or `C`: nothing is answered.
    Remove,
    /// `L`: the list (732, 733).
    List,
    /// `S`: who is online and who is not (730, 731).
    Status,
}

/// The requests made and not yet done with, oldest first.
#[derive(Debug, Default)]
pub struct AskedTable {
    /// The last ref handed out.
    last: i64,
    entries: VecDeque<Entry>,
}

#[derive(Debug)]
struct Entry {
    id: i64,
    /// A reply to it has been rendered.
    answered: bool,
    asked: Asked,
    /// Its command's `label` (labeled-response), until its first reply.
    label: Option<Box<str>>,
}

impl AskedTable {
    /// Remembers `asked`; the request carries the ref returned.
    pub fn ask(&mut self, asked: Asked) -> Ref {
        self.ask_labeled(asked, None)
    }

    /// [`ask`](Self::ask), for a command with a `label`.
    pub fn ask_labeled(&mut self, asked: Asked, label: Option<Box<str>>) -> Ref {
        self.last += 1;
        if self.entries.len() >= MAX_ASKED {
            // The oldest answered request goes first (a late second reply
            // to it is the least likely); else the oldest of all.
            let oldest = self.entries.iter().position(|e| e.answered).unwrap_or(0);
            self.entries.remove(oldest);
        }
        self.entries.push_back(Entry {
            id: self.last,
            answered: false,
            asked,
            label,
        });
        Ref::Int(self.last)
    }

    /// What the frame with `reference` answers (`None` for a ref not made
    /// here); requests answered before it and older than it are done.
    pub fn answer(&mut self, reference: Option<&Ref>) -> Option<&Asked> {
        let Some(&Ref::Int(id)) = reference else {
            return None;
        };
        self.entries.retain(|e| !(e.answered && e.id < id));
        if self.entries.len() <= 1 && self.entries.capacity() > 1 {
            // An idle connection keeps its last request: room for one, not
            // the four a first push makes.
            self.entries.shrink_to_fit();
        }
        let entry = self.entries.iter_mut().find(|e| e.id == id)?;
        entry.answered = true;
        Some(&entry.asked)
    }

    /// The newest request not answered yet, if any.
    pub fn newest_unanswered(&self) -> Option<i64> {
        self.entries
            .iter()
            .rev()
            .find(|e| !e.answered)
            .map(|e| e.id)
    }

    /// Whether a request up to `id` still waits for its answer.
    pub fn waits_through(&self, id: i64) -> bool {
        self.entries.iter().any(|e| !e.answered && e.id <= id)
    }

    /// The label of the request that the frame with `reference` answers,
    /// the first time it is asked.
    pub fn take_label(&mut self, reference: Option<&Ref>) -> Option<Box<str>> {
        let Some(&Ref::Int(id)) = reference else {
            return None;
        };
        self.entries.iter_mut().find(|e| e.id == id)?.label.take()
    }

    /// Nothing is being written: a table that grew in a burst gives its
    /// memory back (an idle connection keeps only what it remembers).
    pub fn shrink(&mut self) {
        if self.entries.capacity() > 4 {
            self.entries.shrink_to(4);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::new(name).unwrap()
    }

    #[test]
    fn replies_find_what_they_answer_several_times() {
        let mut table = AskedTable::default();
        let whisper = table.ask(Asked::Privmsg("bob".into()));
        let who = table.ask(Asked::WhoRoom(room("lobby"), None));
        assert_ne!(whisper, who);
        // The echo and the away message answer the same request.
        assert_eq!(
            table.answer(Some(&whisper)),
            Some(&Asked::Privmsg("bob".into()))
        );
        assert_eq!(
            table.answer(Some(&whisper)),
            Some(&Asked::Privmsg("bob".into()))
        );
        let asked = table.answer(Some(&who)).unwrap();
        assert_eq!((asked.command(), &*asked.target()), ("WHO", "#lobby"));
        assert_eq!(table.len(), 1, "the whisper is done once WHO is answered");
    }

    #[test]
    fn a_late_reply_to_an_earlier_request_still_finds_it() {
        let mut table = AskedTable::default();
        let topic = table.ask(Asked::Topic(room("a")));
        let names = table.ask(Asked::Names(room("a")));
        // NAMES is answered first; TOPIC's change comes after its commit.
        assert!(table.answer(Some(&names)).is_some());
        assert_eq!(table.answer(Some(&topic)), Some(&Asked::Topic(room("a"))));
    }

    #[test]
    fn refs_not_made_here_have_no_context() {
        let mut table = AskedTable::default();
        table.ask(Asked::Away);
        assert_eq!(table.answer(None), None);
        assert_eq!(table.answer(Some(&Ref::Str("WHO #a".into()))), None);
        assert_eq!(table.answer(Some(&Ref::Int(99))), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let mut table = AskedTable::default();
        let first = table.ask(Asked::Ison);
        for _ in 0..MAX_ASKED * 3 {
            table.ask(Asked::Userhost);
        }
        assert_eq!(table.len(), MAX_ASKED);
        assert_eq!(table.answer(Some(&first)), None, "the oldest is forgotten");
    }

    #[test]
    fn targets_are_as_numerics_name_them() {
        let nick = Nick::new("Bob").unwrap();
        assert_eq!(&*Asked::Whois(nick.clone()).target(), "Bob");
        assert_eq!(Asked::Hello(nick).command(), "NICK");
        assert_eq!(
            &*Asked::Kick(room("Lobby"), Nick::new("bob").unwrap()).target(),
            "#lobby"
        );
        assert_eq!(&*Asked::Away.target(), "-");
        assert_eq!(Asked::TopicQuery(room("a")).command(), "TOPIC?");
    }

    #[test]
    fn a_full_table_forgets_answered_requests_first_and_shrinks_when_idle() {
        let mut table = AskedTable::default();
        let pending = table.ask(Asked::Privmsg("bob".into()));
        let answered = table.ask(Asked::Whois(Nick::new("carol").unwrap()));
        assert!(table.answer(Some(&answered)).is_some());
        for _ in 2..MAX_ASKED {
            table.ask(Asked::Away);
        }
        assert_eq!(table.len(), MAX_ASKED);
        table.ask(Asked::Away);
        assert_eq!(table.len(), MAX_ASKED, "bounded");
        assert_eq!(
            table.answer(Some(&pending)),
            Some(&Asked::Privmsg("bob".into())),
            "the unanswered request outlives the answered one"
        );
        assert_eq!(table.answer(Some(&answered)), None);
        table.shrink();
        assert!(table.entries.capacity() >= table.len());
    }
}
