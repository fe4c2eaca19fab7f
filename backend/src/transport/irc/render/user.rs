//! Replies about users: WHOIS (and WHO of one nick), USERHOST and ISON,
//! and away: our own (305/306), a whisper's target's (301), or someone's
//! change for `away-notify`.

use banter_protocol::{Nick, RoomName, ServerMessage, UserInfo};

use super::super::Client;
use super::super::asked::{Asked, Monitor};
use super::super::caps::{ACCOUNT_NOTIFY, AWAY_NOTIFY, SETNAME};
use super::super::line::Line;
use super::super::numeric::*;
use super::channel::{packed, prefixes, username, who_line};
use super::chat::shared;
use crate::core::frame::Frame;

/// What WHOIS tells of a user, as the router sent it.
struct Whois<'a> {
    /// Its nick, away message, account and profile.
    user: UserInfo,
    rooms: &'a [RoomName],
    /// The user's prefixes in each of `rooms` (`@`, `+`).
    prefixes: &'a [String],
    idle_secs: u64,
    since: u64,
}

impl Client {
    /// Replies about other users, and away messages.
    pub(super) fn user_reply(
        &mut self,
        frame: &Frame,
        message: &ServerMessage,
        asked: Option<&Asked>,
        out: &mut Vec<u8>,
    ) {
        match message {
            ServerMessage::Whois {
                nick,
                rooms,
                away,
                idle_secs,
                since,
                account,
                realname,
                username,
                bot,
                oper,
                prefixes,
            } => {
                let whois = Whois {
                    user: UserInfo {
                        nick: nick.clone(),
                        away: away.clone(),
                        account: account.clone(),
                        realname: realname.clone(),
                        username: username.clone(),
                        bot: *bot,
                        oper: *oper,
                    },
                    rooms,
                    prefixes,
                    idle_secs: *idle_secs,
                    since: *since,
                };
                self.whois(out, whois, asked)
            }
            ServerMessage::Users { users } => self.users(out, users, asked),
            ServerMessage::Watched { online, offline } => {
                self.watched(out, (online, offline), asked)
            }
            ServerMessage::Account { nick, account } if self.caps.has(ACCOUNT_NOTIFY) => {
                let account = account.as_ref().map_or("*", Nick::as_str);
                Line::new(Some(&mask(nick.as_str())), "ACCOUNT", &[account]).write(out);
            }
            ServerMessage::Profile {
                nick,
                realname,
                bot,
            } => self.profile(out, nick, (realname.as_deref(), *bot), asked),
            ServerMessage::Away { nick, message } => {
                self.away(frame, out, (nick, message.as_deref()), asked)
            }
            _ => {}
        }
    }

    /// WHOIS's answer (311 to 318), or WHO's for one nick.
    fn whois(&self, out: &mut Vec<u8>, w: Whois<'_>, asked: Option<&Asked>) {
        let me = self.me();
        let n = w.user.nick.as_str();
        if let Some(Asked::WhoNick(_, whox) | Asked::WhoRoom(_, whox)) = asked {
            who_line(out, me, ("*", ""), &w.user, whox.as_deref());
            reply(out, RPL_ENDOFWHO, me, &[n, "End of /WHO list"]);
            return;
        }
        let realname = w.user.realname.as_deref().unwrap_or(n);
        let user = username(&w.user);
        reply(
            out,
            RPL_WHOISUSER,
            me,
            &[n, &user, MASK_HOST, "*", realname],
        );
        // `@#room`, `+#room` (both, with multi-prefix), as NAMES shows them.
        let channels: Vec<String> = w
            .rooms
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let given = w.prefixes.get(i).map_or("", String::as_str);
                let prefix = prefixes(self.caps, given.contains('@'), given.contains('+'));
                format!("{prefix}#{r}")
            })
            .collect();
        packed(
            out,
            me,
            RPL_WHOISCHANNELS,
            &[n],
            channels.iter().map(String::as_str),
        );
        reply(
            out,
            RPL_WHOISSERVER,
            me,
            &[n, server(), "Banter chat server"],
        );
        if let Some(text) = w.user.away.as_deref() {
            reply(out, RPL_AWAY, me, &[n, text]);
        }
        if w.user.oper {
            reply(out, RPL_WHOISOPERATOR, me, &[n, "is an IRC operator"]);
        }
        if w.user.bot {
            reply(out, RPL_WHOISBOT, me, &[n, "is a bot"]);
        }
        if let Some(account) = &w.user.account {
            reply(
                out,
                RPL_WHOISACCOUNT,
                me,
                &[n, account.as_str(), "is logged in as"],
            );
        }
        let (idle, signon) = (w.idle_secs.to_string(), (w.since / 1000).to_string());
        reply(
            out,
            RPL_WHOISIDLE,
            me,
            &[n, &idle, &signon, "seconds idle, signon time"],
        );
        reply(out, RPL_ENDOFWHOIS, me, &[n, "End of /WHOIS list"]);
    }

    /// A real name or bot flag changed: our `+B`/`-B` as MODE, a real
    /// name as SETNAME (with `setname`; sent for any change of a
    /// room-mate's, which the frame does not tell apart).
    fn profile(
        &mut self,
        out: &mut Vec<u8>,
        nick: &Nick,
        (realname, bot): (Option<&str>, bool),
        asked: Option<&Asked>,
    ) {
        if self.is_me(nick)
            && let Some(own) = &mut self.own
        {
            if own.bot != bot {
                let source = mask(nick.as_str());
                let change = if bot { "+B" } else { "-B" };
                Line::new(Some(&source), "MODE", &[nick.as_str(), change]).write(out);
            }
            own.bot = bot;
            own.realname = realname.unwrap_or(nick.as_str()).into();
        }
        if self.caps.has(SETNAME) && !matches!(asked, Some(Asked::UserMode)) {
            let source = mask(nick.as_str());
            let name = realname.unwrap_or(nick.as_str());
            Line::new(Some(&source), "SETNAME", &[name])
                .text()
                .write(out);
        }
    }

    /// MONITOR's answers and notifications: 730 (as masks) and 731, or
    /// the list (732, 733); nothing for a removal. A few to a line, so
    /// every line fits.
    fn watched(
        &self,
        out: &mut Vec<u8>,
        (online, offline): (&[Nick], &[Nick]),
        asked: Option<&Asked>,
    ) {
        let me = self.me();
        let lines = |out: &mut Vec<u8>, code: &str, items: &[String]| {
            // Five 24-character nicks as masks fit a line with room to spare.
            for chunk in items.chunks(5) {
                reply(out, code, me, &[&chunk.join(",")]);
            }
        };
        match asked {
            Some(Asked::Monitor(Monitor::Remove)) => {}
            Some(Asked::Monitor(Monitor::List)) => {
                let all: Vec<String> = online.iter().chain(offline).map(Nick::to_string).collect();
                lines(out, RPL_MONLIST, &all);
                reply(out, RPL_ENDOFMONLIST, me, &["End of MONITOR list"]);
            }
            _ => {
                let on: Vec<String> = online.iter().map(|n| mask(n.as_str())).collect();
                let off: Vec<String> = offline.iter().map(Nick::to_string).collect();
                lines(out, RPL_MONONLINE, &on);
                lines(out, RPL_MONOFFLINE, &off);
            }
        }
    }

    /// USERHOST's answer (302), or ISON's (303).
    fn users(&self, out: &mut Vec<u8>, users: &[UserInfo], asked: Option<&Asked>) {
        let me = self.me();
        if let Some(Asked::WhoMask(mask, whox)) = asked {
            for user in users {
                who_line(out, me, ("*", ""), user, whox.as_deref());
            }
            return reply(out, RPL_ENDOFWHO, me, &[mask, "End of /WHO list"]);
        }
        if let Some(Asked::Userhost) = asked {
            // nick=+user@host, `-` for away (RFC 2812 RPL_USERHOST).
            let list: Vec<String> = users
                .iter()
                .map(|u| {
                    let sign = if u.away.is_some() { '-' } else { '+' };
                    format!("{0}={sign}{0}@{MASK_HOST}", u.nick)
                })
                .collect();
            reply(out, RPL_USERHOST, me, &[&list.join(" ")]);
        } else {
            let list: Vec<&str> = users.iter().map(|u| u.nick.as_str()).collect();
            reply(out, RPL_ISON, me, &[&list.join(" ")]);
        }
    }

    /// Someone's away message: ours set or cleared, the target's of a
    /// PRIVMSG (never a NOTICE's), or a change others see.
    fn away(
        &self,
        frame: &Frame,
        out: &mut Vec<u8>,
        (nick, message): (&Nick, Option<&str>),
        asked: Option<&Asked>,
    ) {
        let me = self.me();
        match asked {
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
            _ if self.caps.has(AWAY_NOTIFY) => shared(frame, out, 0),
            _ => {}
        }
    }
}
