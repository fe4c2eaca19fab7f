//! Refused requests as the numerics IRC clients expect: which numeric
//! depends on the error and on what was asked (a missing nick is 441 for
//! KICK, 401 and an end of list for WHOIS). Errors about nicks and logins
//! may also end a registration attempt, so a new NICK or PASS can retry.

use std::borrow::Cow;

use banter_protocol::ErrorCode;

use super::super::Client;
use super::super::asked::{Asked, Monitor};
use super::super::caps::STANDARD_REPLIES;
use super::super::line::Line;
use super::super::numeric::*;

impl Client {
    /// A refused request, as the numeric an IRC client expects for it.
    pub(super) fn error(
        &mut self,
        out: &mut Vec<u8>,
        code: ErrorCode,
        message: &str,
        asked: Option<&Asked>,
    ) {
        // A NOTICE is never answered with an error (the spec's rule).
        if let Some(Asked::Notice(_)) = asked {
            return;
        }
        let target = asked.map_or(Cow::Borrowed(""), Asked::target);
        if !self.account_error(out, code, message, asked, &target) {
            let standard = self.caps.has(STANDARD_REPLIES);
            request_error(out, (self.me(), standard), (code, message), asked, &target);
        }
    }

    /// Errors about nicks, passwords and SASL; `false` if `code` with
    /// `asked` is not one of them.
    fn account_error(
        &mut self,
        out: &mut Vec<u8>,
        code: ErrorCode,
        message: &str,
        asked: Option<&Asked>,
        target: &str,
    ) -> bool {
        let me = self.me().to_string();
        let me = me.as_str();
        let nick_asked = matches!(asked, Some(Asked::Hello(_) | Asked::Nick(_)));
        let registering = nick_asked && self.nick.is_none();
        match code {
            ErrorCode::NickTaken => {
                if nick_asked && let Some(reg) = self.registration() {
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
            _ if matches!(asked, Some(Asked::Sasl(_))) => {
                if let Some(reg) = self.registration() {
                    reg.sasl_failed();
                }
                let text = format!("SASL authentication failed: {message}");
                reply(out, ERR_SASLFAIL, me, &[&text]);
            }
            ErrorCode::NickReserved
            | ErrorCode::AuthFailed
            | ErrorCode::NoSuchAccount
            | ErrorCode::RateLimited
            | ErrorCode::Busy
                if registering =>
            {
                // Registration failed: NICK or PASS may try again.
                if let Some(reg) = self.registration() {
                    reg.hello_refused();
                }
                if code == ErrorCode::NickReserved {
                    reply(out, ERR_NICKNAMEINUSE, me, &[target, message]);
                } else {
                    reply(out, ERR_PASSWDMISMATCH, me, &[message]);
                }
            }
            ErrorCode::NickReserved => reply(out, ERR_NICKNAMEINUSE, me, &[target, message]),
            _ => return false,
        }
        true
    }
}

/// Any other refusal: its numeric, naming `target` where IRC does.
/// `standard`: the client has `standard-replies`, so a refusal with no
/// numeric of its own is a `FAIL` (else 400).
fn request_error(
    out: &mut Vec<u8>,
    (me, standard): (&str, bool),
    (code, message): (ErrorCode, &str),
    asked: Option<&Asked>,
    target: &str,
) {
    match code {
        // draft/webpush words its refusals as standard replies.
        _ if matches!(asked, Some(Asked::Webpush(..))) => {
            let kind = match code {
                ErrorCode::BadRequest => "INVALID_PARAMS",
                _ => "INTERNAL_ERROR",
            };
            Line::new(Some(server()), "FAIL", &["WEBPUSH", kind, target, message])
                .text()
                .write(out);
        }
        // soju.im/search words its refusals as standard replies.
        _ if matches!(asked, Some(Asked::Search)) => {
            let kind = match code {
                ErrorCode::RateLimited => "RATE_LIMITED".to_string(),
                ErrorCode::Unsupported | ErrorCode::Internal => "INTERNAL_ERROR".to_string(),
                _ => "INVALID_PARAMS".to_string(),
            };
            Line::new(Some(server()), "FAIL", &["SEARCH", &kind, message])
                .text()
                .write(out);
        }
        // draft/message-redaction's and message-tags' refusals are
        // standard replies.
        _ if matches!(asked, Some(Asked::Redact(..) | Asked::Tagmsg(_))) => {
            let command = asked.map_or("TAGMSG", Asked::command);
            let redact = command == "REDACT";
            let kind = match code {
                ErrorCode::NoSuchMessage => "UNKNOWN_MSGID".to_string(),
                ErrorCode::NotYourMessage | ErrorCode::NotOperator if redact => {
                    "REDACT_FORBIDDEN".to_string()
                }
                ErrorCode::NotInRoom | ErrorCode::NoSuchRoom | ErrorCode::NoSuchNick => {
                    "INVALID_TARGET".to_string()
                }
                other => other.as_str().to_ascii_uppercase(),
            };
            let mut params = vec![command, &kind, target];
            if let Some(Asked::Redact(_, msgid)) = asked
                && kind != "INVALID_TARGET"
            {
                params.push(msgid);
            }
            params.push(message);
            Line::new(Some(server()), "FAIL", &params).text().write(out);
        }
        // A guest's read positions are not kept: it hears that nothing
        // is read, not an error (web clients such as gamja send MARKREAD
        // as they scroll, whoever is logged in).
        ErrorCode::AccountRequired if matches!(asked, Some(Asked::Markread(_))) => {
            Line::new(Some(server()), "MARKREAD", &[target, "*"]).write(out);
        }
        // draft/read-marker words its refusals as standard replies.
        _ if matches!(asked, Some(Asked::Markread(_))) => {
            let kind = match code {
                ErrorCode::Internal | ErrorCode::Unsupported => "INTERNAL_ERROR",
                ErrorCode::RateLimited => "RATE_LIMITED",
                _ => "INVALID_PARAMS",
            };
            Line::new(Some(server()), "FAIL", &["MARKREAD", kind, target, message])
                .text()
                .write(out);
        }
        ErrorCode::TooManyWatched => {
            let targets = match asked {
                Some(Asked::Monitor(Monitor::Add(targets))) => targets,
                _ => "*",
            };
            let limit = banter_protocol::MAX_WATCHED.to_string();
            reply(
                out,
                ERR_MONLISTFULL,
                me,
                &[&limit, targets, "Monitor list is full"],
            );
        }
        // setname words its refusals as standard replies.
        ErrorCode::TextTooLong | ErrorCode::InvalidText | ErrorCode::BadRequest
            if matches!(asked, Some(Asked::Setname)) =>
        {
            Line::new(
                Some(server()),
                "FAIL",
                &["SETNAME", "INVALID_REALNAME", message],
            )
            .text()
            .write(out);
        }
        // A direct conversation's history: a guest, or no such account.
        ErrorCode::AccountRequired | ErrorCode::NoSuchAccount
            if matches!(asked, Some(Asked::Chathistory(_))) =>
        {
            Line::new(
                Some(server()),
                "FAIL",
                &["CHATHISTORY", "INVALID_TARGET", "*", target, message],
            )
            .text()
            .write(out);
        }
        _ if matches!(asked, Some(Asked::Oper)) && code != ErrorCode::NotAdmin => {
            reply(out, ERR_PASSWDMISMATCH, me, &["Password incorrect"])
        }
        ErrorCode::NotAdmin if matches!(asked, Some(Asked::Oper)) => reply(
            out,
            ERR_NOOPERHOST,
            me,
            &["No O-lines for your host (log into an administrator's account)"],
        ),
        ErrorCode::ServerBanned => reply(out, ERR_YOUREBANNEDCREEP, me, &[message]),
        ErrorCode::NotAdmin => reply(
            out,
            ERR_NOPRIVILEGES,
            me,
            &["Permission Denied- You're not a server administrator"],
        ),
        // The router's sentence: it says whether rights are missing or the
        // target is the protected owner.
        ErrorCode::NotOperator => reply(out, ERR_CHANOPRIVSNEEDED, me, &[target, message]),
        ErrorCode::Banned => reply(
            out,
            ERR_BANNEDFROMCHAN,
            me,
            &[target, "Cannot join channel (+b)"],
        ),
        ErrorCode::InviteOnly => reply(
            out,
            ERR_INVITEONLYCHAN,
            me,
            &[target, "Cannot join channel (+i)"],
        ),
        ErrorCode::BadKey => reply(
            out,
            ERR_BADCHANNELKEY,
            me,
            &[target, "Cannot join channel (+k)"],
        ),
        ErrorCode::ListFull => {
            let letter = match asked {
                Some(Asked::ModeList(_, list)) => list.letter(),
                _ => 'b',
            };
            reply(
                out,
                ERR_BANLISTFULL,
                me,
                &[target, &letter.to_string(), message],
            )
        }
        ErrorCode::RoomFull => reply(
            out,
            ERR_CHANNELISFULL,
            me,
            &[target, "Cannot join channel (+l)"],
        ),
        ErrorCode::AccountRequired => reply(
            out,
            ERR_NEEDREGGEDNICK,
            me,
            &[
                target,
                "Cannot join channel (+R): log into your account first",
            ],
        ),
        ErrorCode::Moderated => reply(
            out,
            ERR_CANNOTSENDTOCHAN,
            me,
            &[target, "Cannot send to channel (+m)"],
        ),
        ErrorCode::AlreadyInRoom => {
            let nick = match asked {
                Some(Asked::Invite(nick, _)) => nick.as_str(),
                _ => "*",
            };
            reply(
                out,
                ERR_USERONCHANNEL,
                me,
                &[nick, target, "is already on channel"],
            )
        }
        ErrorCode::NoSuchNick => no_such_nick(out, me, asked, target),
        // `+o` of a guest nick that is not in the channel.
        ErrorCode::NoSuchAccount if matches!(asked, Some(Asked::ModeMember(..))) => {
            no_such_nick(out, me, asked, target)
        }
        ErrorCode::NotInRoom if matches!(asked, Some(Asked::Privmsg(_) | Asked::Notice(_))) => {
            reply(
                out,
                ERR_CANNOTSENDTOCHAN,
                me,
                &[target, "Cannot send to channel (join it first)"],
            )
        }
        ErrorCode::NotInRoom => reply(
            out,
            ERR_NOTONCHANNEL,
            me,
            &[target, "You're not on that channel"],
        ),
        // A message to a channel nobody is in: no such nick/channel, as
        // the spec's PRIVMSG numerics have it.
        ErrorCode::NoSuchRoom if matches!(asked, Some(Asked::Privmsg(_) | Asked::Notice(_))) => {
            reply(out, ERR_NOSUCHNICK, me, &[target, "No such nick/channel"])
        }
        ErrorCode::NoSuchRoom => reply(out, ERR_NOSUCHCHANNEL, me, &[target, "No such channel"]),
        ErrorCode::TooManyRooms | ErrorCode::ServerFull => {
            reply(out, ERR_TOOMANYCHANNELS, me, &[target, message])
        }
        ErrorCode::TextTooLong => reply(out, ERR_INPUTTOOLONG, me, &[message]),
        ErrorCode::EmptyText => reply(out, ERR_NOTEXTTOSEND, me, &["No text to send"]),
        ErrorCode::NotRegistered => reply(out, ERR_NOTREGISTERED, me, &["You have not registered"]),
        ErrorCode::AlreadyRegistered => {
            reply(out, ERR_ALREADYREGISTERED, me, &["You may not reregister"])
        }
        _ if standard => {
            let command = asked.map_or("*", Asked::command);
            let kind = code.as_str().to_ascii_uppercase();
            Line::new(Some(server()), "FAIL", &[command, &kind, message])
                .text()
                .write(out);
        }
        _ => reply(
            out,
            ERR_UNKNOWNERROR,
            me,
            &[asked.map_or("*", Asked::command), message],
        ),
    }
}

/// No such nick: 441 for KICK and a member's MODE, only the end for
/// WHO, else 401 (and the end of a WHOIS).
fn no_such_nick(out: &mut Vec<u8>, me: &str, asked: Option<&Asked>, target: &str) {
    match asked {
        Some(Asked::Kick(_, nick) | Asked::ModeMember(_, nick)) => reply(
            out,
            ERR_USERNOTINCHANNEL,
            me,
            &[nick.as_str(), target, "They aren't on that channel"],
        ),
        Some(Asked::WhoNick(nick, _)) => {
            reply(out, RPL_ENDOFWHO, me, &[nick.as_str(), "End of /WHO list"])
        }
        Some(Asked::Invite(nick, _)) => reply(
            out,
            ERR_NOSUCHNICK,
            me,
            &[nick.as_str(), "No such nick/channel"],
        ),
        _ => {
            reply(out, ERR_NOSUCHNICK, me, &[target, "No such nick/channel"]);
            match asked {
                Some(Asked::Whois(_)) => {
                    reply(out, RPL_ENDOFWHOIS, me, &[target, "End of /WHOIS list"])
                }
                Some(Asked::WhoRoom(..)) => {
                    reply(out, RPL_ENDOFWHO, me, &[target, "End of /WHO list"])
                }
                _ => {}
            }
        }
    }
}
