//! Replies about users: WHOIS (and WHO of one nick), USERHOST and ISON,
//! and away: our own (305/306), a whisper's target's (301), or someone's
//! change for `away-notify`.

use banter_protocol::{Nick, RoomName, ServerMessage, UserInfo};

use super::super::Client;
use super::super::asked::Asked;
use super::super::caps::AWAY_NOTIFY;
use super::super::numeric::*;
use super::channel::{packed, who_line};
use super::chat::shared;
use crate::core::frame::Frame;

/// What WHOIS tells of a user, as the router sent it.
struct Whois<'a> {
    nick: &'a Nick,
    rooms: &'a [RoomName],
    away: Option<&'a str>,
    idle_secs: u64,
    since: u64,
    account: Option<&'a Nick>,
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
            } => {
                let whois = Whois {
                    nick,
                    rooms,
                    away: away.as_deref(),
                    idle_secs: *idle_secs,
                    since: *since,
                    account: account.as_ref(),
                };
                self.whois(out, whois, asked)
            }
            ServerMessage::Users { users } => self.users(out, users, asked),
            ServerMessage::Away { nick, message } => {
                self.away(frame, out, (nick, message.as_deref()), asked)
            }
            _ => {}
        }
    }

    /// WHOIS's answer (311 to 318), or WHO's for one nick.
    fn whois(&self, out: &mut Vec<u8>, w: Whois<'_>, asked: Option<&Asked>) {
        let me = self.me();
        let n = w.nick.as_str();
        if let Some(Asked::WhoRoom(_) | Asked::WhoNick(_)) = asked {
            who_line(out, me, "*", w.nick, (w.away.is_some(), false));
            reply(out, RPL_ENDOFWHO, me, &[n, "End of /WHO list"]);
            return;
        }
        reply(out, RPL_WHOISUSER, me, &[n, n, server(), "*", n]);
        let channels: Vec<String> = w.rooms.iter().map(|r| format!("#{r}")).collect();
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
        if let Some(text) = w.away {
            reply(out, RPL_AWAY, me, &[n, text]);
        }
        if let Some(account) = w.account {
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

    /// USERHOST's answer (302), or ISON's (303).
    fn users(&self, out: &mut Vec<u8>, users: &[UserInfo], asked: Option<&Asked>) {
        let me = self.me();
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
