//! Channels: who comes and goes (presence, joins, parts, kicks, nick
//! changes, operators as MODE), and the replies about a channel (topic,
//! NAMES and WHO, LIST, ban and exception lists). Rendering these also keeps the
//! client's view of its channels and their operators up to date, since
//! IRC shows operator changes as MODE lines the protocol does not send.

use banter_protocol::{
    BanInfo, BanList, Nick, PresenceEvent, RoomInfo, RoomName, ServerMessage, Topic, UserInfo,
};

use super::super::Client;
use super::super::asked::Asked;
use super::super::caps::{
    Caps, EXTENDED_JOIN, MULTI_PREFIX, READ_MARKER, USERHOST_IN_NAMES, VARIANT_ACCOUNT,
};
use super::super::line::{Line, MAX_BODY};
use super::super::numeric::*;
use super::chat::{shared, variant_for};
use crate::core::frame::Frame;

/// A presence event, as the router sent it.
struct Presence<'a> {
    room: &'a RoomName,
    event: PresenceEvent,
    nick: &'a Nick,
    new_nick: Option<&'a Nick>,
    account: Option<&'a Nick>,
    realname: Option<&'a str>,
}

impl Client {
    /// Who is in our channels, and who runs them, as it changes.
    pub(super) fn membership(
        &mut self,
        frame: &Frame,
        message: &ServerMessage,
        last_event: Option<Box<(PresenceEvent, Nick, Option<Nick>)>>,
        out: &mut Vec<u8>,
    ) {
        match message {
            ServerMessage::Presence {
                room,
                event,
                nick,
                new_nick,
                account,
                realname,
                ..
            } => {
                let presence = Presence {
                    room,
                    event: *event,
                    nick,
                    new_nick: new_nick.as_ref(),
                    account: account.as_ref(),
                    realname: realname.as_deref(),
                };
                self.presence(frame, presence, last_event, out)
            }
            ServerMessage::Joined {
                room,
                members,
                history,
                topic,
                moderators,
                access,
            } => self.joined_room(
                out,
                room,
                (
                    members,
                    moderators,
                    access.as_ref().map_or(&[][..], |a| &a.voiced[..]),
                ),
                topic.as_ref(),
                history,
                (
                    access.as_ref().and_then(|a| a.read),
                    access.as_ref().is_some_and(|a| a.modes.secret),
                ),
            ),
            ServerMessage::Parted { room, reason } => self.parted(out, room, reason.as_deref()),
            ServerMessage::Nick { nick, old } => self.renamed(out, nick, old),
            ServerMessage::Kicked {
                room,
                nick,
                by,
                reason,
            } => self.kicked(out, room, (nick, by), reason.as_deref()),
            ServerMessage::Roles {
                room,
                owner,
                ops,
                moderators,
            } => self.roles(out, room, (owner.as_ref(), ops), moderators),
            _ => {}
        }
    }

    /// Replies about a channel: its topic, members, bans, history; LIST.
    pub(super) fn room_reply(
        &mut self,
        frame: &Frame,
        message: &ServerMessage,
        asked: Option<&Asked>,
        out: &mut Vec<u8>,
    ) {
        match message {
            ServerMessage::Topic { room, topic } => {
                self.topic(frame, out, room, topic.as_ref(), asked)
            }
            ServerMessage::Members {
                room,
                members,
                moderators,
                voiced,
                users,
                secret,
                ..
            } => {
                let lists = (members.as_slice(), moderators.as_slice(), voiced.as_slice());
                self.members(out, (room, *secret), lists, users, asked)
            }
            ServerMessage::Rooms { rooms } => self.rooms(out, rooms, asked),
            ServerMessage::Bans { room, bans, list } => self.bans(out, room, bans, *list),
            ServerMessage::Banned { room, ban, set } => banned(out, room, ban, *set),
            ServerMessage::History { room, messages } => {
                if let Some(Asked::Chathistory(_)) = asked {
                    self.history_batch(out, room, messages);
                }
            }
            _ => {}
        }
    }

    /// Someone joined, left, quit or changed nick in a channel of ours.
    fn presence(
        &mut self,
        frame: &Frame,
        p: Presence<'_>,
        last_event: Option<Box<(PresenceEvent, Nick, Option<Nick>)>>,
        out: &mut Vec<u8>,
    ) {
        let Presence {
            room,
            event,
            nick,
            new_nick,
            account,
            realname,
        } = p;
        // An operator who joins is one again (its PART or QUIT made IRC
        // clients forget it).
        let opped = event == PresenceEvent::Join
            && account.is_some_and(|a| {
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
                    channel.moderator_changed(Some(nick), new_nick)
                }
                _ => {}
            }
        }
        // One nick change or quit reaches us once per shared room, back to
        // back: IRC shows it once.
        let key = (event, nick.clone(), new_nick.cloned());
        if matches!(event, PresenceEvent::Quit | PresenceEvent::Nick) {
            let repeated = last_event.as_deref() == Some(&key);
            self.rare().last_event = Some(Box::new(key));
            if repeated {
                return;
            }
        }
        // Presence lines carry no time or msgid, only the account.
        let variant = self.caps.tag_variant() & VARIANT_ACCOUNT;
        if event == PresenceEvent::Join && self.caps.has(EXTENDED_JOIN) {
            // `JOIN #room account :real name`, made for this client.
            let name = realname.unwrap_or(nick.as_str());
            let named = account.map_or("*", Nick::as_str);
            let channel = format!("#{room}");
            let mut line = Line::new(Some(&mask(nick.as_str())), "JOIN", &[&channel, named, name]);
            if variant != 0
                && let Some(account) = account
            {
                line.tags.push(("account".to_string(), account.to_string()));
            }
            line.text().write(out);
        } else {
            shared(frame, out, variant_for(variant, account));
        }
        if opped {
            Line::new(
                Some(server()),
                "MODE",
                &[&format!("#{room}"), "+o", nick.as_str()],
            )
            .write(out);
        }
    }

    /// We joined `room`: JOIN, its topic, its names, and recent history.
    fn joined_room(
        &mut self,
        out: &mut Vec<u8>,
        room: &RoomName,
        (members, moderators, voiced): (&[Nick], &[Nick], &[Nick]),
        topic: Option<&Topic>,
        history: &[banter_protocol::ChatMessage],
        (read, secret): (Option<banter_protocol::ReadMark>, bool),
    ) {
        let me = self.me().to_string();
        let me = me.as_str();
        let channel = format!("#{room}");
        self.joined(room);
        if let Some(joined) = self.channel(room) {
            // Who owns them comes next, in `roles`.
            joined.set_roles(Box::default(), moderators.to_vec());
        }
        match (&self.own, self.caps.has(EXTENDED_JOIN)) {
            (Some(own), true) => {
                let account = own.account.as_ref().map_or("*", Nick::as_str);
                Line::new(Some(&mask(me)), "JOIN", &[&channel, account, &own.realname])
                    .text()
                    .write(out)
            }
            _ => Line::new(Some(&mask(me)), "JOIN", &[&channel]).write(out),
        }
        if self.caps.has(READ_MARKER) {
            markread_line(out, &channel, read.filter(|r| r.id > 0).map(|r| r.ts));
        }
        if let Some(t) = topic {
            reply(out, RPL_TOPIC, me, &[&channel, &t.text]);
            reply(
                out,
                RPL_TOPICWHOTIME,
                me,
                &[&channel, t.by.as_str(), &(t.ts / 1000).to_string()],
            );
        }
        names(
            out,
            me,
            (&channel, secret),
            (members, moderators, voiced),
            self.caps,
        );
        self.replay(out, room, history);
    }

    /// We left `room`.
    fn parted(&mut self, out: &mut Vec<u8>, room: &RoomName, reason: Option<&str>) {
        self.left(room);
        let me = mask(self.me());
        let channel = format!("#{room}");
        match reason {
            Some(why) => Line::new(Some(&me), "PART", &[&channel, why]).text(),
            None => Line::new(Some(&me), "PART", &[&channel]),
        }
        .write(out);
    }

    /// Our nick changed from `old` to `nick`.
    fn renamed(&mut self, out: &mut Vec<u8>, nick: &Nick, old: &Nick) {
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

    /// `nick` was kicked from `room` by `by` (perhaps us).
    fn kicked(
        &mut self,
        out: &mut Vec<u8>,
        room: &RoomName,
        (nick, by): (&Nick, &Nick),
        reason: Option<&str>,
    ) {
        let channel = format!("#{room}");
        if self.is_me(nick) {
            self.left(room);
        } else if let Some(c) = self.channel(room) {
            c.moderator_changed(Some(nick), None);
        }
        let why = reason.unwrap_or(by.as_str());
        Line::new(
            Some(&mask(by.as_str())),
            "KICK",
            &[&channel, nick.as_str(), why],
        )
        .text()
        .write(out);
    }

    /// Who runs `room` now: the moderators' changes as MODE `+o`/`-o`.
    fn roles(
        &mut self,
        out: &mut Vec<u8>,
        room: &RoomName,
        (owner, ops): (Option<&Nick>, &[Nick]),
        moderators: &[Nick],
    ) {
        // Roles come after Joined: only a channel left since is unknown.
        let Some(joined) = self.channel(room) else {
            return;
        };
        let channel = format!("#{room}");
        let before = joined.moderators();
        for (sign, list, other) in [("+o", moderators, before), ("-o", before, moderators)] {
            for nick in list.iter().filter(|n| !other.contains(n)) {
                Line::new(Some(server()), "MODE", &[&channel, sign, nick.as_str()]).write(out);
            }
        }
        let accounts = owner.into_iter().chain(ops).cloned().collect();
        joined.set_roles(accounts, moderators.to_vec());
    }

    /// A topic: TOPIC's answer (332 and 333, or 331), or a change.
    fn topic(
        &self,
        frame: &Frame,
        out: &mut Vec<u8>,
        room: &RoomName,
        topic: Option<&Topic>,
        asked: Option<&Asked>,
    ) {
        let me = self.me();
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
            (_, Some(_)) => shared(frame, out, 0),
            (_, None) => {}
        }
    }

    /// A channel's members, as WHO asked (352s) or NAMES (353s).
    fn members(
        &self,
        out: &mut Vec<u8>,
        (room, secret): (&RoomName, bool),
        (members, moderators, voiced): (&[Nick], &[Nick], &[Nick]),
        users: &[UserInfo],
        asked: Option<&Asked>,
    ) {
        let me = self.me();
        let channel = format!("#{room}");
        if let Some(Asked::WhoRoom(_, whox)) = asked {
            // `users` holds every member, away message and profile included.
            for user in users {
                let nick = &user.nick;
                let prefixes =
                    prefixes(self.caps, moderators.contains(nick), voiced.contains(nick));
                who_line(out, me, (&channel, prefixes), user, whox.as_deref());
            }
            reply(out, RPL_ENDOFWHO, me, &[&channel, "End of /WHO list"]);
        } else {
            names(
                out,
                me,
                (&channel, secret),
                (members, moderators, voiced),
                self.caps,
            );
        }
    }

    /// LIST's answer: the rooms its filter names, or all for `*`.
    fn rooms(&self, out: &mut Vec<u8>, rooms: &[RoomInfo], asked: Option<&Asked>) {
        let me = self.me();
        let filter = match asked {
            Some(Asked::List(filter)) => filter,
            _ => "",
        };
        reply(out, RPL_LISTSTART, me, &["Channel", "Users  Name"]);
        for info in rooms {
            let channel = format!("#{}", info.room);
            if filter == "*" || filter.split(',').any(|f| f.eq_ignore_ascii_case(&channel)) {
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

    /// `MODE #room b`'s answer: the ban list.
    /// One of a channel's lists: bans (367, 368), ban exceptions (348,
    /// 349) or invite exceptions (346, 347).
    fn bans(&self, out: &mut Vec<u8>, room: &RoomName, bans: &[BanInfo], list: BanList) {
        let me = self.me();
        let channel = format!("#{room}");
        let (entry, end, what) = match list {
            BanList::Ban => (RPL_BANLIST, RPL_ENDOFBANLIST, "ban"),
            BanList::BanException => (RPL_EXCEPTLIST, RPL_ENDOFEXCEPTLIST, "exception"),
            BanList::InviteException => (RPL_INVITELIST, RPL_ENDOFINVITELIST, "invite"),
        };
        for ban in bans {
            let when = (ban.ts / 1000).to_string();
            let fields = [channel.as_str(), &ban_mask(ban), ban.by.as_str(), &when];
            let mut line = Line::new(Some(server()), entry, &[me]);
            line.params.extend(fields.iter().map(|p| p.to_string()));
            line.write(out);
        }
        let last = format!("End of channel {what} list");
        reply(out, end, me, &[&channel, &last]);
    }
}

/// A ban (or exception) set or lifted, as MODE `+b`/`-b` (`e`, `I`).
fn banned(out: &mut Vec<u8>, room: &RoomName, ban: &BanInfo, set: bool) {
    let sign = format!("{}{}", if set { '+' } else { '-' }, ban.list.letter());
    Line::new(
        Some(&mask(ban.by.as_str())),
        "MODE",
        &[&format!("#{room}"), &sign, &ban_mask(ban)],
    )
    .write(out);
}

/// A ban as an IRC mask: `nick!*@*`, or `$a:account` for an account.
fn ban_mask(ban: &BanInfo) -> String {
    match (&ban.nick, &ban.account, &ban.mask) {
        (_, Some(account), _) => format!("$a:{account}"),
        (Some(nick), None, _) => format!("{nick}!*@*"),
        (None, None, Some(mask)) => mask.clone(),
        (None, None, None) => "*!*@*".to_string(),
    }
}

/// A member's channel prefixes: `@` operator, `+` voiced, both only with
/// `multi-prefix`.
pub(super) fn prefixes(caps: Caps, op: bool, voice: bool) -> &'static str {
    match (op, voice) {
        (true, true) if caps.has(MULTI_PREFIX) => "@+",
        (true, _) => "@",
        (false, true) => "+",
        (false, false) => "",
    }
}

/// 353 lines (as many as the names need), `@` operators and `+` voiced
/// members (both, with `multi-prefix`; as `nick!user@host`, with
/// `userhost-in-names`), and the closing 366.
pub(super) fn names(
    out: &mut Vec<u8>,
    me: &str,
    (channel, secret): (&str, bool),
    (members, moderators, voiced): (&[Nick], &[Nick], &[Nick]),
    caps: Caps,
) {
    let names: Vec<String> = members
        .iter()
        .map(|n| {
            let prefix = prefixes(caps, moderators.contains(n), voiced.contains(n));
            if caps.has(USERHOST_IN_NAMES) {
                format!("{prefix}{}", mask(n.as_str()))
            } else {
                format!("{prefix}{n}")
            }
        })
        .collect();
    packed(
        out,
        me,
        RPL_NAMREPLY,
        // The channel's kind: `@` secret (+s), `=` public.
        &[if secret { "@" } else { "=" }, channel],
        names.iter().map(String::as_str),
    );
    reply(out, RPL_ENDOFNAMES, me, &[channel, "End of /NAMES list"]);
}

/// Replies `code` with `fixed` parameters and a space-separated list of
/// `items` last, over as many lines as the 512-byte limit needs (353
/// names, 319 channels). Nothing is sent for an empty list.
pub(super) fn packed<'a>(
    out: &mut Vec<u8>,
    me: &str,
    code: &str,
    fixed: &[&str],
    items: impl IntoIterator<Item = &'a str>,
) {
    let mut params = vec![me];
    params.extend_from_slice(fixed);
    params.push("");
    let template = Line::new(Some(server()), code, &params).text();
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

/// What WHO and WHOIS show as a user's username: `~` and its `USER`
/// username (the `~` says no ident server vouched for it), else its nick.
pub(super) fn username(user: &UserInfo) -> String {
    match &user.username {
        Some(u) => format!("~{u}"),
        None => user.nick.to_string(),
    }
}

/// One WHO line for `user` in `channel` (`*`: none) with its channel
/// prefixes: 352, or with a WHOX request (`%fields[,token]`) 354 with the
/// fields asked for, in the spec's order (`tcuihsnfdlaor`).
pub(super) fn who_line(
    out: &mut Vec<u8>,
    me: &str,
    (channel, prefixes): (&str, &str),
    user: &UserInfo,
    whox: Option<&str>,
) {
    let n = user.nick.as_str();
    let mut flags = String::from(if user.away.is_some() { "G" } else { "H" });
    if user.oper {
        flags.push('*');
    }
    if user.bot {
        flags.push('B');
    }
    flags.push_str(prefixes);
    let name = user.realname.as_deref().unwrap_or(n);
    let username = username(user);
    let Some(whox) = whox else {
        let params = [
            channel,
            &username,
            MASK_HOST,
            server(),
            n,
            &flags,
            &format!("0 {name}"),
        ];
        return reply(out, RPL_WHOREPLY, me, &params);
    };
    // A `t` without a token: 0, so the fields after it keep their place.
    let (fields, token) = whox.split_once(',').unwrap_or((whox, "0"));
    let token = if token.is_empty() { "0" } else { token };
    let mut params: Vec<&str> = Vec::new();
    for field in "tcuihsnfdlaor".chars().filter(|f| fields.contains(*f)) {
        params.push(match field {
            't' => token,
            'c' => channel,
            'u' => &username,
            'i' => "255.255.255.255",
            'h' => MASK_HOST,
            's' => server(),
            'n' => n,
            'f' => &flags,
            'd' => "0",
            'l' => "0",
            'a' => user.account.as_ref().map_or("0", |a| a.as_str()),
            'o' => "n/a",
            _ => name,
        });
    }
    let mut line = Line::new(Some(server()), RPL_WHOSPCRPL, &[me]);
    line.params.extend(params.iter().map(|p| p.to_string()));
    if fields.contains('r') {
        line = line.text();
    }
    line.write(out);
}

/// `MARKREAD <target> timestamp=…` (`*`: nothing read yet), as
/// `draft/read-marker` words a read position.
pub(super) fn markread_line(out: &mut Vec<u8>, target: &str, ts: Option<u64>) {
    let at = ts.map_or_else(
        || "*".to_string(),
        |ts| format!("timestamp={}", iso_time(ts)),
    );
    Line::new(Some(server()), "MARKREAD", &[target, &at]).write(out);
}

impl Client {
    /// A read position of our account, for a client that asked for
    /// `draft/read-marker` (others learn nothing of them).
    pub(super) fn markread(&mut self, position: &banter_protocol::ReadPosition, out: &mut Vec<u8>) {
        if !self.caps.has(READ_MARKER) {
            return;
        }
        let target = match (&position.room, &position.with) {
            (Some(room), _) => format!("#{room}"),
            (None, Some(with)) => with.to_string(),
            (None, None) => return,
        };
        let ts = (position.id > 0).then_some(position.ts);
        markread_line(out, &target, ts);
    }
}
