//! Outgoing: protocol frames as IRC lines. Events every member receives
//! alike (messages, joins, parts, quits, nick changes, topic changes,
//! away) are rendered by [`fan_out`] once per frame and tag variant, and
//! cached in the [`Frame`]; replies to this client (JOIN's names, WHOIS,
//! errors as numerics) are rendered here, for it.
//!
//! Bridging rules: a text is cut into lines at `\n`, and each line into
//! PRIVMSGs that fit [`MAX_BODY`] bytes on the wire, at a space where one
//! is near the limit, never inside a UTF-8 character, without losing a
//! byte; a text starting with `/me ` is a CTCP ACTION. A notice is sent
//! as NOTICE, everything else as PRIVMSG.

use banter_protocol::{
    ACTION_PREFIX, ChatMessage, DirectMessage, ErrorCode, Nick, PresenceEvent, RoomName,
    ServerMessage,
};
use bytes::Bytes;

use super::Client;
use super::asked::Asked;
use super::caps::{
    AWAY_NOTIFY, BATCH, ECHO_MESSAGE, SERVER_TIME, VARIANT_ACCOUNT, VARIANT_MSGID, VARIANT_TIME,
};
use super::command::motd;
use super::line::{Line, MAX_BODY};
use super::numeric::*;
use crate::core::frame::Frame;

/// A ban as an IRC mask: `nick!*@*`, or `$a:account` for an account.
fn ban_mask(ban: &banter_protocol::BanInfo) -> String {
    match (&ban.nick, &ban.account) {
        (_, Some(account)) => format!("$a:{account}"),
        (Some(nick), None) => format!("{nick}!*@*"),
        (None, None) => "*!*@*".to_string(),
    }
}

/// Appends `text` from `from` to `target` as PRIVMSG (or, for a
/// `notice`, NOTICE) lines, with `tags` on each (the first line's `msgid`
/// as given, later parts `msgid.N`).
pub fn privmsg(
    out: &mut Vec<u8>,
    from: &str,
    target: &str,
    text: &str,
    notice: bool,
    tags: &[(String, String)],
) {
    let (action, text) = match text.strip_prefix(ACTION_PREFIX) {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let source = mask(from);
    let command = if notice { "NOTICE" } else { "PRIVMSG" };
    let template = Line::new(Some(&source), command, &[target, ""]).text();
    let wrap = if action { "\x01ACTION \x01".len() } else { 0 };
    let room = MAX_BODY - 2 - template.body_len() - wrap;
    let mut part = 0;
    for piece in text.split('\n').filter(|l| !l.is_empty()) {
        let mut rest = piece;
        while !rest.is_empty() {
            let cut = cut_at(rest, room);
            let (chunk, after) = rest.split_at(cut);
            rest = after;
            let mut line = template.clone();
            line.params[1] = if action {
                format!("\x01ACTION {chunk}\x01")
            } else {
                chunk.to_string()
            };
            line.tags = tags.to_vec();
            part += 1;
            if part > 1 {
                for (key, value) in &mut line.tags {
                    if key == "msgid" {
                        value.push_str(&format!(".{part}"));
                    }
                }
            }
            line.write(out);
        }
    }
}

/// Where to cut `text` so the first part is at most `max` bytes: all of it
/// if it fits, else after the last space in the second half of the window,
/// else at the last character boundary.
fn cut_at(text: &str, max: usize) -> usize {
    if text.len() <= max {
        return text.len();
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    match text[..cut].rfind(' ') {
        Some(space) if space + 1 > max / 2 => space + 1,
        _ => cut,
    }
}

/// The tags of a chat message for tag variant `variant`.
fn tags(
    variant: usize,
    ts: u64,
    msgid: impl FnOnce() -> String,
    account: Option<&Nick>,
) -> Vec<(String, String)> {
    let mut tags = Vec::new();
    if variant & VARIANT_ACCOUNT != 0
        && let Some(account) = account
    {
        tags.push(("account".to_string(), account.to_string()));
    }
    if variant & VARIANT_TIME != 0 {
        tags.push(("time".to_string(), iso_time(ts)));
    }
    if variant & VARIANT_MSGID != 0 {
        tags.push(("msgid".to_string(), msgid()));
    }
    tags
}

/// The variant whose rendering serves `variant` for a message whose
/// sender is logged in (`account`) or not: without an account, the
/// account-tag variants are the same lines, so they share one rendering.
fn variant_for(variant: usize, account: Option<&Nick>) -> usize {
    if account.is_some() {
        variant
    } else {
        variant & !VARIANT_ACCOUNT
    }
}

fn chat_lines(out: &mut Vec<u8>, m: &ChatMessage, variant: usize) {
    let tags = tags(
        variant,
        m.ts,
        || format!("{}-{}", m.room, m.id),
        m.account.as_ref(),
    );
    privmsg(
        out,
        m.from.as_str(),
        &format!("#{}", m.room),
        &m.text,
        m.notice,
        &tags,
    );
}

fn direct_lines(out: &mut Vec<u8>, d: &DirectMessage, variant: usize) {
    let tags = tags(variant, d.ts, || format!("d-{}", d.id), d.account.as_ref());
    privmsg(
        out,
        d.from.as_str(),
        d.to.as_str(),
        &d.text,
        d.notice,
        &tags,
    );
}

/// The IRC form of an event that every recipient sees alike, for tag
/// variant `variant`; empty if it has none.
fn fan_out(message: &ServerMessage, variant: usize) -> Bytes {
    let mut out = Vec::new();
    match message {
        ServerMessage::Message(m) => chat_lines(&mut out, m, variant),
        ServerMessage::Direct(d) => direct_lines(&mut out, d, variant),
        ServerMessage::Presence {
            room,
            nick,
            event,
            new_nick,
            reason,
            account,
        } => {
            let source = mask(nick.as_str());
            let channel = format!("#{room}");
            let mut line = match (event, new_nick, reason) {
                (PresenceEvent::Join, _, _) => Line::new(Some(&source), "JOIN", &[&channel]),
                (PresenceEvent::Part, _, None) => Line::new(Some(&source), "PART", &[&channel]),
                (PresenceEvent::Part, _, Some(why)) => {
                    Line::new(Some(&source), "PART", &[&channel, why]).text()
                }
                // "Quit: " marks the user's own words (as on other
                // servers), so nobody can pass them off as a server's.
                (PresenceEvent::Quit, _, None) => {
                    Line::new(Some(&source), "QUIT", &["Quit"]).text()
                }
                (PresenceEvent::Quit, _, Some(why)) => {
                    Line::new(Some(&source), "QUIT", &[&format!("Quit: {why}")]).text()
                }
                (PresenceEvent::Nick, Some(new), _) => {
                    Line::new(Some(&source), "NICK", &[new.as_str()]).text()
                }
                _ => return Bytes::new(),
            };
            if variant & VARIANT_ACCOUNT != 0
                && let Some(account) = account
            {
                line.tags.push(("account".to_string(), account.to_string()));
            }
            line.write(&mut out);
        }
        ServerMessage::Topic {
            room,
            topic: Some(topic),
        } => Line::new(
            Some(&mask(topic.by.as_str())),
            "TOPIC",
            &[&format!("#{room}"), &topic.text],
        )
        .text()
        .write(&mut out),
        ServerMessage::Away { nick, message } => {
            let source = mask(nick.as_str());
            match message {
                Some(text) => Line::new(Some(&source), "AWAY", &[text]).text(),
                None => Line::new(Some(&source), "AWAY", &[]),
            }
            .write(&mut out)
        }
        _ => {}
    }
    Bytes::from(out)
}

impl Client {
    fn is_me(&self, nick: &Nick) -> bool {
        self.nick.as_ref() == Some(nick)
    }

    /// Appends what this client should see of `frame`.
    pub fn render(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        // The copies of one change are back to back: anything else between
        // two equal events means they are two changes.
        let last_event = self.last_event.take();
        let Some(message) = frame.message() else {
            out.extend_from_slice(frame.local_bytes().expect("a frame is a message or local"));
            return;
        };
        let variant = self.caps.tag_variant();
        let shared = |out: &mut Vec<u8>, variant| {
            out.extend_from_slice(frame.irc(variant, |m| fan_out(m, variant)))
        };
        // Chat messages, the fan-out hot path: the shared rendering, and no
        // per-recipient work (not even the copy of our nick below).
        if let ServerMessage::Message(_) | ServerMessage::Direct(_) = message {
            // The sender's own copy carries its request's ref.
            self.asked.answer(frame.reference());
        }
        match message {
            ServerMessage::Message(m) if self.is_me(&m.from) && !self.caps.has(ECHO_MESSAGE) => {
                return;
            }
            ServerMessage::Direct(d)
                if self.is_me(&d.from) && !self.is_me(&d.to) && !self.caps.has(ECHO_MESSAGE) =>
            {
                return;
            }
            ServerMessage::Message(m) => {
                return shared(out, variant_for(variant, m.account.as_ref()));
            }
            ServerMessage::Direct(d) => {
                return shared(out, variant_for(variant, d.account.as_ref()));
            }
            _ => {}
        }
        let asked = self.asked.answer(frame.reference()).cloned();
        let asked = asked.as_ref();
        let me = self.me().to_string();
        let me = me.as_str();
        match message {
            ServerMessage::Message(_) | ServerMessage::Direct(_) => {}
            ServerMessage::Presence {
                room,
                event,
                nick,
                new_nick,
                account,
                ..
            } => {
                // An operator who joins is one again (its PART or QUIT
                // made IRC clients forget it).
                let opped = *event == PresenceEvent::Join
                    && account.as_ref().is_some_and(|a| {
                        self.channels
                            .iter()
                            .any(|c| &c.room == room && c.is_run_by(a))
                    });
                if let Some(channel) = self.channel(room) {
                    match event {
                        PresenceEvent::Join if opped => channel.moderator_changed(None, Some(nick)),
                        PresenceEvent::Part | PresenceEvent::Quit => {
                            channel.moderator_changed(Some(nick), None)
                        }
                        PresenceEvent::Nick if channel.moderators().contains(nick) => {
                            channel.moderator_changed(Some(nick), new_nick.as_ref())
                        }
                        _ => {}
                    }
                }
                // One nick change or quit reaches us once per shared room,
                // back to back: IRC shows it once.
                let key = (*event, nick.clone(), new_nick.clone());
                if matches!(event, PresenceEvent::Quit | PresenceEvent::Nick) {
                    let repeated = last_event.as_deref() == Some(&key);
                    self.last_event = Some(Box::new(key));
                    if repeated {
                        return;
                    }
                }
                // Presence lines carry no time or msgid, only the account.
                shared(
                    out,
                    variant_for(variant & VARIANT_ACCOUNT, account.as_ref()),
                );
                if opped {
                    Line::new(
                        Some(SERVER),
                        "MODE",
                        &[&format!("#{room}"), "+o", nick.as_str()],
                    )
                    .write(out);
                }
            }
            ServerMessage::Topic { room, topic } => {
                let channel = format!("#{room}");
                match (asked, topic) {
                    (Some(Asked::TopicQuery(_)), None) => {
                        reply(out, RPL_NOTOPIC, me, &[&channel, "No topic is set"])
                    }
                    (Some(Asked::TopicQuery(_)), Some(t)) => {
                        reply(out, RPL_TOPIC, me, &[&channel, &t.text]);
                        let when = (t.ts / 1000).to_string();
                        reply(out, RPL_TOPICWHOTIME, me, &[&channel, t.by.as_str(), &when]);
                    }
                    (_, Some(_)) => shared(out, 0),
                    (_, None) => {}
                }
            }
            ServerMessage::Away { nick, message } => match asked {
                _ if self.is_me(nick) => match message {
                    Some(_) => reply(
                        out,
                        RPL_NOWAWAY,
                        me,
                        &["You have been marked as being away"],
                    ),
                    None => reply(
                        out,
                        RPL_UNAWAY,
                        me,
                        &["You are no longer marked as being away"],
                    ),
                },
                Some(Asked::Privmsg(_)) => {
                    if let Some(text) = message {
                        reply(out, RPL_AWAY, me, &[nick.as_str(), text]);
                    }
                }
                Some(Asked::Notice(_)) => {}
                _ if self.caps.has(AWAY_NOTIFY) => shared(out, 0),
                _ => {}
            },
            ServerMessage::Welcome { nick, .. } => {
                self.welcomed(nick.clone());
                self.welcome(out);
            }
            ServerMessage::Joined {
                room,
                members,
                history,
                topic,
                moderators,
            } => {
                let channel = format!("#{room}");
                self.joined(room);
                if let Some(joined) = self.channel(room) {
                    // Who owns them comes next, in `roles`.
                    joined.set_roles(Box::default(), moderators.clone());
                }
                Line::new(Some(&mask(me)), "JOIN", &[&channel]).write(out);
                if let Some(t) = topic {
                    reply(out, RPL_TOPIC, me, &[&channel, &t.text]);
                    reply(
                        out,
                        RPL_TOPICWHOTIME,
                        me,
                        &[&channel, t.by.as_str(), &(t.ts / 1000).to_string()],
                    );
                }
                names(out, me, &channel, members, moderators);
                self.replay(out, room, history);
            }
            ServerMessage::Parted { room, reason } => {
                self.left(room);
                let channel = format!("#{room}");
                match reason {
                    Some(why) => Line::new(Some(&mask(me)), "PART", &[&channel, why]).text(),
                    None => Line::new(Some(&mask(me)), "PART", &[&channel]),
                }
                .write(out);
            }
            ServerMessage::Nick { nick, old } => {
                Line::new(Some(&mask(old.as_str())), "NICK", &[nick.as_str()])
                    .text()
                    .write(out);
                for channel in &mut self.channels {
                    if channel.moderators().contains(old) {
                        channel.moderator_changed(Some(old), Some(nick));
                    }
                }
                self.nick = Some(nick.clone());
            }
            ServerMessage::Members {
                room,
                members,
                away,
                moderators,
            } => {
                let channel = format!("#{room}");
                if let Some(Asked::WhoRoom(_) | Asked::WhoNick(_)) = asked {
                    for nick in members {
                        let flags = (away.contains(nick), moderators.contains(nick));
                        who_line(out, me, &channel, nick, flags);
                    }
                    reply(out, RPL_ENDOFWHO, me, &[&channel, "End of /WHO list"]);
                } else {
                    names(out, me, &channel, members, moderators);
                }
            }
            ServerMessage::Rooms { rooms } => {
                let filter = match asked {
                    Some(Asked::List(filter)) => filter,
                    _ => "",
                };
                reply(out, RPL_LISTSTART, me, &["Channel", "Users  Name"]);
                for info in rooms {
                    let channel = format!("#{}", info.room);
                    if filter == "*" || filter.split(',').any(|f| f.eq_ignore_ascii_case(&channel))
                    {
                        let count = info.members.to_string();
                        reply(
                            out,
                            RPL_LIST,
                            me,
                            &[&channel, &count, info.topic.as_deref().unwrap_or("")],
                        );
                    }
                }
                reply(out, RPL_LISTEND, me, &["End of /LIST"]);
            }
            ServerMessage::Whois {
                nick,
                rooms,
                away,
                idle_secs,
                since,
                account,
            } => {
                let n = nick.as_str();
                if let Some(Asked::WhoRoom(_) | Asked::WhoNick(_)) = asked {
                    who_line(out, me, "*", nick, (away.is_some(), false));
                    reply(out, RPL_ENDOFWHO, me, &[n, "End of /WHO list"]);
                    return;
                }
                reply(out, RPL_WHOISUSER, me, &[n, n, SERVER, "*", n]);
                let channels: Vec<String> = rooms.iter().map(|r| format!("#{r}")).collect();
                packed(
                    out,
                    me,
                    RPL_WHOISCHANNELS,
                    &[n],
                    channels.iter().map(String::as_str),
                );
                reply(out, RPL_WHOISSERVER, me, &[n, SERVER, "Banter chat server"]);
                if let Some(text) = away {
                    reply(out, RPL_AWAY, me, &[n, text]);
                }
                if let Some(account) = account {
                    reply(
                        out,
                        RPL_WHOISACCOUNT,
                        me,
                        &[n, account.as_str(), "is logged in as"],
                    );
                }
                let (idle, signon) = (idle_secs.to_string(), (since / 1000).to_string());
                reply(
                    out,
                    RPL_WHOISIDLE,
                    me,
                    &[n, &idle, &signon, "seconds idle, signon time"],
                );
                reply(out, RPL_ENDOFWHOIS, me, &[n, "End of /WHOIS list"]);
            }
            ServerMessage::Users { users } => {
                if let Some(Asked::Userhost) = asked {
                    // nick=+user@host, `-` for away (RFC 2812 RPL_USERHOST).
                    let list: Vec<String> = users
                        .iter()
                        .map(|u| {
                            let sign = if u.away.is_some() { '-' } else { '+' };
                            format!("{0}={sign}{0}@{SERVER}", u.nick)
                        })
                        .collect();
                    reply(out, RPL_USERHOST, me, &[&list.join(" ")]);
                } else {
                    let list: Vec<&str> = users.iter().map(|u| u.nick.as_str()).collect();
                    reply(out, RPL_ISON, me, &[&list.join(" ")]);
                }
            }
            ServerMessage::Lagged { dropped } => notice(
                out,
                me,
                &format!("*** Your connection fell behind: {dropped} messages were dropped"),
            ),
            ServerMessage::Error { code, message } => self.error(out, *code, message, asked),
            ServerMessage::Closing { code, message } => {
                let why = match code {
                    ErrorCode::HandshakeTimeout => {
                        format!("registration timed out ({message}; send NICK and USER)")
                    }
                    _ => message.clone(),
                };
                Line::new(None, "ERROR", &[&format!("Closing link: {why}")])
                    .text()
                    .write(out);
            }
            ServerMessage::History { room, messages } => {
                if let Some(Asked::Chathistory(_)) = asked {
                    self.history_batch(out, room, messages);
                }
            }
            ServerMessage::LoggedIn { account, .. } => {
                let sasl = matches!(asked, Some(Asked::Sasl(_)));
                if sasl && let Some(reg) = self.registration() {
                    reg.sasl_succeeded();
                }
                let who = mask(account.as_str());
                let text = format!("You are now logged in as {account}");
                reply(out, RPL_LOGGEDIN, me, &[&who, account.as_str(), &text]);
                if sasl {
                    reply(
                        out,
                        RPL_SASLSUCCESS,
                        me,
                        &["SASL authentication successful"],
                    );
                }
            }
            ServerMessage::Registered { nick } => {
                notice(out, me, &format!("*** The account {nick} is registered"))
            }
            ServerMessage::LoggedOut { revoked } => {
                notice(out, me, &format!("*** {revoked} login tokens revoked"))
            }
            ServerMessage::Kicked {
                room,
                nick,
                by,
                reason,
            } => {
                let channel = format!("#{room}");
                if self.is_me(nick) {
                    self.left(room);
                } else if let Some(c) = self.channel(room) {
                    c.moderator_changed(Some(nick), None);
                }
                let why = reason.as_deref().unwrap_or(by.as_str());
                Line::new(
                    Some(&mask(by.as_str())),
                    "KICK",
                    &[&channel, nick.as_str(), why],
                )
                .text()
                .write(out);
            }
            ServerMessage::Banned { room, ban, set } => {
                let sign = if *set { "+b" } else { "-b" };
                Line::new(
                    Some(&mask(ban.by.as_str())),
                    "MODE",
                    &[&format!("#{room}"), sign, &ban_mask(ban)],
                )
                .write(out);
            }
            ServerMessage::Bans { room, bans } => {
                let channel = format!("#{room}");
                for ban in bans {
                    let when = (ban.ts / 1000).to_string();
                    let list = [channel.as_str(), &ban_mask(ban), ban.by.as_str(), &when];
                    let mut line = Line::new(Some(SERVER), RPL_BANLIST, &[me]);
                    line.params.extend(list.iter().map(|p| p.to_string()));
                    line.write(out);
                }
                reply(
                    out,
                    RPL_ENDOFBANLIST,
                    me,
                    &[&channel, "End of channel ban list"],
                );
            }
            ServerMessage::Roles {
                room,
                owner,
                ops,
                moderators,
            } => {
                // Roles come after Joined: only a channel left since is unknown.
                let Some(joined) = self.channel(room) else {
                    return;
                };
                let channel = format!("#{room}");
                let before = joined.moderators();
                for (sign, list, other) in
                    [("+o", &moderators[..], before), ("-o", before, moderators)]
                {
                    for nick in list.iter().filter(|n| !other.contains(n)) {
                        Line::new(Some(SERVER), "MODE", &[&channel, sign, nick.as_str()])
                            .write(out);
                    }
                }
                let accounts = owner.iter().chain(ops).cloned().collect();
                joined.set_roles(accounts, moderators.clone());
            }
            ServerMessage::Ping | ServerMessage::Pong => {}
        }
    }

    fn welcome(&self, out: &mut Vec<u8>) {
        let me = self.me();
        let version = concat!("banter-", env!("CARGO_PKG_VERSION"));
        reply(
            out,
            RPL_WELCOME,
            me,
            &[&format!("Welcome to the {NETWORK} IRC network, {me}")],
        );
        reply(
            out,
            RPL_YOURHOST,
            me,
            &[&format!("Your host is {SERVER}, running version {version}")],
        );
        reply(
            out,
            RPL_CREATED,
            me,
            &[&format!(
                "This server was started {}",
                iso_time(self.info.started)
            )],
        );
        reply(out, RPL_MYINFO, me, &[SERVER, version, "i", "n"]);
        let chanlimit = format!("CHANLIMIT=#:{}", self.info.max_rooms);
        let channellen = format!("CHANNELLEN={}", RoomName::MAX_LEN + 1);
        let nicklen = format!("NICKLEN={}", Nick::MAX_LEN);
        let network = format!("NETWORK={NETWORK}");
        let topiclen = format!("TOPICLEN={}", banter_protocol::MAX_TOPIC_BYTES);
        let awaylen = format!("AWAYLEN={}", banter_protocol::MAX_AWAY_BYTES);
        let targmax = format!(
            "TARGMAX=JOIN:{0},PART:{0},PRIVMSG:{0},NOTICE:{0},NAMES:{0},WHOIS:{0}",
            super::command::MAX_TARGETS
        );
        reply(
            out,
            RPL_ISUPPORT,
            me,
            &[
                &awaylen,
                "CASEMAPPING=ascii",
                &chanlimit,
                "CHANMODES=,,,n",
                &channellen,
                "CHANTYPES=#",
                "CHATHISTORY=200",
                "MSGREFTYPES=msgid,timestamp",
                &nicklen,
                &network,
                "PREFIX=(ov)@+",
                &targmax,
                &topiclen,
                "UTF8ONLY",
                "are supported by this server",
            ],
        );
        motd(out, me);
    }

    /// Recent history on join, for clients that can tell old from new:
    /// with `server-time` the messages come with their times, inside a
    /// `chathistory` batch if the client enabled `batch`.
    fn replay(&mut self, out: &mut Vec<u8>, room: &RoomName, history: &[ChatMessage]) {
        if history.is_empty() || !self.caps.has(SERVER_TIME) {
            return;
        }
        self.history_batch(out, room, history);
    }

    /// A `CHATHISTORY` answer: a `chathistory` batch (with `batch`),
    /// each message with the tags this client enabled.
    fn history_batch(&mut self, out: &mut Vec<u8>, room: &RoomName, messages: &[ChatMessage]) {
        let variant = self.caps.tag_variant();
        let channel = format!("#{room}");
        let batch = self.caps.has(BATCH).then(|| {
            self.batches = self.batches.wrapping_add(1);
            format!("h{}", self.batches)
        });
        if let Some(id) = &batch {
            Line::new(
                Some(SERVER),
                "BATCH",
                &[&format!("+{id}"), "chathistory", &channel],
            )
            .write(out);
        }
        for m in messages {
            let msgid = || format!("{}-{}", m.room, m.id);
            let mut tags = tags(variant, m.ts, msgid, m.account.as_ref());
            if let Some(id) = &batch {
                tags.insert(0, ("batch".to_string(), id.clone()));
            }
            privmsg(out, m.from.as_str(), &channel, &m.text, m.notice, &tags);
        }
        if let Some(id) = &batch {
            Line::new(Some(SERVER), "BATCH", &[&format!("-{id}")]).write(out);
        }
    }

    /// A refused request, as the numeric an IRC client expects for it.
    fn error(&mut self, out: &mut Vec<u8>, code: ErrorCode, message: &str, asked: Option<&Asked>) {
        let me = self.me().to_string();
        let me = me.as_str();
        let (command, target) = asked.map_or(("", "".into()), |a| (a.command(), a.target()));
        let target = &*target;
        match code {
            ErrorCode::NickTaken => {
                if command == "NICK"
                    && let Some(reg) = self.registration()
                {
                    // Registration failed: a new NICK may try again.
                    reg.hello_refused();
                }
                reply(
                    out,
                    ERR_NICKNAMEINUSE,
                    me,
                    &[target, "Nickname is already in use"],
                );
            }
            ErrorCode::InvalidNick => reply(out, ERR_ERRONEUSNICKNAME, me, &[target, message]),
            _ if command == "SASL" => {
                if let Some(reg) = self.registration() {
                    reg.sasl_failed();
                }
                reply(
                    out,
                    ERR_SASLFAIL,
                    me,
                    &[&format!("SASL authentication failed: {message}")],
                );
            }
            ErrorCode::NickReserved
            | ErrorCode::AuthFailed
            | ErrorCode::NoSuchAccount
            | ErrorCode::RateLimited
            | ErrorCode::Busy
                if command == "NICK" && self.nick.is_none() =>
            {
                // Registration failed: NICK or PASS may try again.
                if let Some(reg) = self.registration() {
                    reg.hello_refused();
                }
                let code = if code == ErrorCode::NickReserved {
                    ERR_NICKNAMEINUSE
                } else {
                    ERR_PASSWDMISMATCH
                };
                if code == ERR_NICKNAMEINUSE {
                    reply(out, code, me, &[target, message]);
                } else {
                    reply(out, code, me, &[message]);
                }
            }
            ErrorCode::NickReserved => reply(out, ERR_NICKNAMEINUSE, me, &[target, message]),
            ErrorCode::NotOperator => reply(
                out,
                ERR_CHANOPRIVSNEEDED,
                me,
                &[target, "You're not channel operator"],
            ),
            ErrorCode::Banned => reply(
                out,
                ERR_BANNEDFROMCHAN,
                me,
                &[target, "Cannot join channel (+b)"],
            ),
            ErrorCode::NoSuchNick if command == "KICK" => reply(
                out,
                ERR_USERNOTINCHANNEL,
                me,
                &[target, "They aren't on that channel"],
            ),
            ErrorCode::NoSuchNick => {
                reply(out, ERR_NOSUCHNICK, me, &[target, "No such nick/channel"]);
                match command {
                    "WHOIS" => reply(out, RPL_ENDOFWHOIS, me, &[target, "End of /WHOIS list"]),
                    "WHO" => reply(out, RPL_ENDOFWHO, me, &[target, "End of /WHO list"]),
                    _ => {}
                }
            }
            ErrorCode::NotInRoom if matches!(command, "PRIVMSG" | "NOTICE") => reply(
                out,
                ERR_CANNOTSENDTOCHAN,
                me,
                &[target, "Cannot send to channel (join it first)"],
            ),
            ErrorCode::NotInRoom => reply(
                out,
                ERR_NOTONCHANNEL,
                me,
                &[target, "You're not on that channel"],
            ),
            ErrorCode::TooManyRooms | ErrorCode::ServerFull => {
                reply(out, ERR_TOOMANYCHANNELS, me, &[target, message])
            }
            ErrorCode::TextTooLong => reply(out, ERR_INPUTTOOLONG, me, &[message]),
            ErrorCode::EmptyText => reply(out, ERR_NOTEXTTOSEND, me, &["No text to send"]),
            ErrorCode::NotRegistered => {
                reply(out, ERR_NOTREGISTERED, me, &["You have not registered"])
            }
            ErrorCode::AlreadyRegistered => {
                reply(out, ERR_ALREADYREGISTERED, me, &["You may not reregister"])
            }
            _ => reply(
                out,
                ERR_UNKNOWNERROR,
                me,
                &[if command.is_empty() { "*" } else { command }, message],
            ),
        }
    }
}

/// 353 lines (as many as the names need), moderators with `@`, and the
/// closing 366.
fn names(out: &mut Vec<u8>, me: &str, channel: &str, members: &[Nick], moderators: &[Nick]) {
    let names: Vec<String> = members
        .iter()
        .map(|n| match moderators.contains(n) {
            true => format!("@{n}"),
            false => n.to_string(),
        })
        .collect();
    packed(
        out,
        me,
        RPL_NAMREPLY,
        &["=", channel],
        names.iter().map(String::as_str),
    );
    reply(out, RPL_ENDOFNAMES, me, &[channel, "End of /NAMES list"]);
}

/// Replies `code` with `fixed` parameters and a space-separated list of
/// `items` last, over as many lines as the 512-byte limit needs (353
/// names, 319 channels). Nothing is sent for an empty list.
fn packed<'a>(
    out: &mut Vec<u8>,
    me: &str,
    code: &str,
    fixed: &[&str],
    items: impl IntoIterator<Item = &'a str>,
) {
    let mut params = vec![me];
    params.extend_from_slice(fixed);
    params.push("");
    let template = Line::new(Some(SERVER), code, &params).text();
    let last = params.len() - 1;
    let room = MAX_BODY - 2 - template.body_len();
    let mut list = String::new();
    for item in items {
        if !list.is_empty() && list.len() + 1 + item.len() > room {
            let mut line = template.clone();
            line.params[last] = std::mem::take(&mut list);
            line.write(out);
        }
        if !list.is_empty() {
            list.push(' ');
        }
        list.push_str(item);
    }
    if !list.is_empty() {
        let mut line = template;
        line.params[last] = list;
        line.write(out);
    }
}

/// One 352 line; `(away, moderator)` make its flags (`H`/`G`, then `@`).
fn who_line(out: &mut Vec<u8>, me: &str, channel: &str, nick: &Nick, (away, op): (bool, bool)) {
    let n = nick.as_str();
    let flags = match (away, op) {
        (false, false) => "H",
        (true, false) => "G",
        (false, true) => "H@",
        (true, true) => "G@",
    };
    reply(
        out,
        RPL_WHOREPLY,
        me,
        &[channel, n, SERVER, SERVER, n, flags, &format!("0 {n}")],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(out: &[u8]) -> Vec<Line> {
        std::str::from_utf8(out)
            .unwrap()
            .split_terminator("\r\n")
            .map(|l| Line::parse(l.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn long_texts_split_into_lines_that_fit_and_reassemble() {
        let text = "héllo wörld ".repeat(130) + &"€".repeat(300);
        let mut out = Vec::new();
        privmsg(&mut out, "alice", "#lobby", &text, false, &[]);
        let wire = std::str::from_utf8(&out).unwrap();
        let mut joined = String::new();
        for raw in wire.split_inclusive("\r\n") {
            assert!(raw.len() <= MAX_BODY, "{} bytes: {raw}", raw.len());
            let raw = raw.strip_suffix("\r\n").unwrap();
            joined.push_str(&Line::parse(raw.as_bytes()).unwrap().params[1]);
        }
        assert_eq!(joined, text, "no byte lost or added");
        assert!(wire.lines().count() >= 4);
    }

    #[test]
    fn actions_and_line_breaks() {
        let mut out = Vec::new();
        privmsg(
            &mut out,
            "bob",
            "alice",
            "/me waves\n\nand smiles",
            false,
            &[("msgid".into(), "d-1".into())],
        );
        let got = lines(&out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].params[1], "\x01ACTION waves\x01");
        assert_eq!(got[1].params[1], "\x01ACTION and smiles\x01");
        assert_eq!(got[1].tags[0].1, "d-1.2", "later parts get their own msgid");
        let long = format!("/me {}", "x".repeat(1000));
        let mut out = Vec::new();
        privmsg(&mut out, "bob", "#a", &long, true, &[]);
        for line in lines(&out) {
            assert_eq!(line.command, "NOTICE");
            let p = &line.params[1];
            assert!(p.starts_with("\x01ACTION ") && p.ends_with('\x01'));
        }
    }

    #[test]
    fn cuts_prefer_spaces_but_never_split_characters() {
        assert_eq!(cut_at("aaaa bbbb", 7), 5);
        assert_eq!(cut_at("aaaaaaaaaa", 4), 4);
        assert_eq!(cut_at("€€", 4), 3);
        assert_eq!(
            cut_at("a bbbbbbbbb", 8),
            8,
            "a space too early is not worth it"
        );
    }

    #[test]
    fn a_change_seen_in_several_rooms_is_shown_once() {
        use super::super::ServerInfo;
        let mut client = Client::new(std::sync::Arc::new(ServerInfo {
            started: 0,
            max_rooms: 5,
            flood_burst: 1,
            flood_rate: 1,
            flood_backlog: 1,
        }));
        let n = |s: &str| Nick::new(s).unwrap();
        let presence = |room: &str, event| {
            Frame::new(ServerMessage::Presence {
                room: RoomName::new(room).unwrap(),
                nick: n("bob"),
                event,
                new_nick: None,
                reason: None,
                account: None,
            })
        };
        let mut out = Vec::new();
        for frame in [
            presence("a", PresenceEvent::Quit),
            presence("b", PresenceEvent::Quit),
            presence("a", PresenceEvent::Join),
            presence("a", PresenceEvent::Quit),
        ] {
            client.render(&frame, &mut out);
        }
        let commands: Vec<String> = lines(&out).into_iter().map(|l| l.command).collect();
        assert_eq!(
            commands,
            ["QUIT", "JOIN", "QUIT"],
            "a later bob quitting again is shown"
        );
    }

    #[test]
    fn names_fill_lines_up_to_the_limit() {
        let members: Vec<Nick> = (0..200)
            .map(|i| Nick::new(format!("user{i:03}xxxxxxxxxx")).unwrap())
            .collect();
        let mut out = Vec::new();
        // Moderators get `@`, which counts towards the line length.
        let moderators = &members[..50];
        names(&mut out, "me", "#big", &members, moderators);
        let got = lines(&out);
        assert!(got.len() > 2);
        let mut seen = Vec::new();
        for line in &got[..got.len() - 1] {
            assert_eq!(line.command, "353");
            let mut wire = Vec::new();
            line.write(&mut wire);
            assert!(wire.len() <= MAX_BODY);
            seen.extend(line.params[3].split(' ').map(str::to_string));
        }
        assert_eq!(seen.len(), 200);
        assert!(seen[..50].iter().all(|n| n.starts_with('@')));
        assert!(seen[50..].iter().all(|n| !n.starts_with('@')));
        assert_eq!(got.last().unwrap().command, "366");
    }
}
