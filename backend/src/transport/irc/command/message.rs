//! Messages: PRIVMSG and NOTICE to channels and nicks (a CTCP ACTION is
//! `/me`; other CTCP is not relayed, and a query is told so), TAGMSG (nothing to carry), and
//! CHATHISTORY, IRCv3's way to page through a channel's history.

use std::collections::VecDeque;

use banter_protocol::{ACTION_PREFIX, ClientMessage, Nick};

use super::super::Client;
use super::super::asked::Asked;
use super::super::line::Line;
use super::super::numeric::*;
use super::room_of;
use crate::session::Inbound;

impl Client {
    /// PRIVMSG, NOTICE, TAGMSG or CHATHISTORY.
    pub(super) fn message_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let command = line.command.as_str();
        match command {
            // message-tags: client-only tags are not relayed, so a TAGMSG
            // (typing notices and the like) has nothing to carry.
            "TAGMSG" => {}
            "CHATHISTORY" => self.chathistory(line, queue),
            "MARKREAD" => self.markread_command(line, queue),
            // A NOTICE is never answered with an error (the spec's rule).
            "NOTICE" if line.params.len() < 2 || line.params[1].is_empty() => {}
            _ if line.params.is_empty() => self.numeric(
                queue,
                ERR_NORECIPIENT,
                &[&format!("No recipient given ({command})")],
            ),
            _ if line.params.len() < 2 || line.params[1].is_empty() => {
                self.numeric(queue, ERR_NOTEXTTOSEND, &["No text to send"])
            }
            // CTCP other than ACTION (VERSION, PING, DCC, their NOTICE
            // replies) is not relayed: web users can't answer it, a DCC
            // offer would reach IRC users as from a stranger's address,
            // and a reply delivered as a message would be taken for a new
            // request. A query is told so; a reply (a NOTICE) is dropped,
            // as nothing answers a notice.
            _ if is_ctcp_query(&line.params[1]) => {
                if command == "PRIVMSG" {
                    self.ctcp_refused(&line.params[1], queue);
                }
            }
            _ => self.say(line, command == "NOTICE", queue),
        }
    }

    /// A PRIVMSG or NOTICE with its text, to each of its targets.
    fn say(&mut self, line: &Line, notice: bool, queue: &mut VecDeque<Inbound>) {
        let text = text_of(&line.params[1]);
        for target in self.targets(&line.params[0], &line.command, queue) {
            let asked = if notice {
                Asked::Notice(target.into())
            } else {
                Asked::Privmsg(target.into())
            };
            if target.starts_with('#') {
                match room_of(target) {
                    Ok(room) => {
                        let text = text.clone();
                        let body = ClientMessage::Say { room, text, notice };
                        self.request(queue, body, asked)
                    }
                    Err(_) if notice => {}
                    Err(_) => self.numeric(queue, ERR_NOSUCHCHANNEL, &[target, "No such channel"]),
                }
            } else {
                match Nick::new(target) {
                    Ok(to) => {
                        let text = text.clone();
                        let body = ClientMessage::Whisper { to, text, notice };
                        self.request(queue, body, asked)
                    }
                    Err(_) if notice => {}
                    Err(_) => {
                        self.numeric(queue, ERR_NOSUCHNICK, &[target, "No such nick/channel"])
                    }
                }
            }
        }
    }

    /// `CHATHISTORY LATEST|BEFORE|AFTER <#room | nick> <* | msgid=… |
    /// timestamp=…> <limit>` (a nick: the direct conversation with that
    /// account), or `CHATHISTORY TARGETS <timestamp> <timestamp> <limit>`.
    fn chathistory(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let sub = line.params[0].to_ascii_uppercase();
        let limit = line.params[3].parse::<u32>().unwrap_or(50);
        if sub == "TARGETS" {
            return self.chathistory_targets(line, limit, queue);
        }
        let target = line.params[1].as_str();
        let (room, with) = if target.starts_with('#') {
            match room_of(target) {
                Ok(room) => (Some(room), None),
                Err(_) => return self.fail(queue, "CHATHISTORY INVALID_TARGET", &sub, target),
            }
        } else {
            match Nick::new(target) {
                Ok(nick) => (None, Some(nick)),
                Err(_) => return self.fail(queue, "CHATHISTORY INVALID_TARGET", &sub, target),
            }
        };
        let point = line.params[2].as_str();
        let Some((id, ts)) = history_point(point) else {
            return self.fail(queue, "CHATHISTORY INVALID_PARAMS", &sub, point);
        };
        let (before, after, before_ts, after_ts) = match sub.as_str() {
            "LATEST" => (None, id, None, ts),
            "BEFORE" => (id, None, ts, None),
            "AFTER" => (None, id, None, ts),
            _ => return self.fail(queue, "CHATHISTORY INVALID_PARAMS", &sub, "-"),
        };
        self.request(
            queue,
            ClientMessage::History {
                room,
                with,
                before,
                after,
                limit: Some(limit),
                before_ts,
                after_ts,
                latest: sub == "LATEST",
            },
            Asked::Chathistory(target.into()),
        );
    }

    /// `CHATHISTORY TARGETS timestamp=… timestamp=… <limit>`: the rooms and
    /// direct conversations with a message between the two times.
    fn chathistory_targets(&mut self, line: &Line, limit: u32, queue: &mut VecDeque<Inbound>) {
        let time = |p: &str| p.strip_prefix("timestamp=").and_then(parse_time);
        let (Some(a), Some(b)) = (time(&line.params[1]), time(&line.params[2])) else {
            let bad = &line.params[if time(&line.params[1]).is_none() {
                1
            } else {
                2
            }];
            return self.fail(queue, "CHATHISTORY INVALID_PARAMS", "TARGETS", bad);
        };
        self.request(
            queue,
            ClientMessage::Targets {
                after_ts: Some(a.min(b)),
                before_ts: Some(a.max(b)),
                limit: Some(limit),
            },
            Asked::Chathistory("*".into()),
        );
    }

    /// Tells the sender of a CTCP query that it went nowhere.
    fn ctcp_refused(&self, text: &str, queue: &mut VecDeque<Inbound>) {
        let name: String = text
            .trim_start_matches('\x01')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .take(16)
            .collect();
        let name = if name.is_empty() { "query" } else { &name };
        let why = format!("CTCP {name} is not relayed here: only ACTION (/me) reaches others");
        self.local(queue, |out, me| {
            Line::new(Some(server()), "NOTICE", &[me, &why])
                .text()
                .write(out)
        });
    }

    /// A standard reply: `FAIL <command> <code> <subcommand> <context>
    /// :text`, as the chathistory spec words its failures.
    fn fail(&self, queue: &mut VecDeque<Inbound>, what: &str, sub: &str, about: &str) {
        self.standard_fail(queue, what, &[sub, about], "Cannot do that");
    }

    /// `FAIL <command> <code> <context…> :text` (`what`: command and code).
    fn standard_fail(
        &self,
        queue: &mut VecDeque<Inbound>,
        what: &str,
        context: &[&str],
        text: &str,
    ) {
        let (command, code) = what.split_once(' ').unwrap_or((what, "FAILED"));
        let mut params = vec![command, code];
        params.extend_from_slice(context);
        params.push(text);
        self.local(queue, |out, _| {
            Line::new(Some(server()), "FAIL", &params).text().write(out)
        });
    }

    /// `MARKREAD <#room | nick> [timestamp=…]` (`draft/read-marker`):
    /// without a time, asks for our read position there; with one, moves
    /// it to the newest message at or before that time.
    fn markread_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(target) = line.params.first() else {
            return self.standard_fail(
                queue,
                "MARKREAD NEED_MORE_PARAMS",
                &[],
                "Missing parameters",
            );
        };
        let invalid = |client: &Self, queue: &mut VecDeque<Inbound>, about: &str| {
            client.standard_fail(
                queue,
                "MARKREAD INVALID_PARAMS",
                &[about],
                "Invalid parameters",
            );
        };
        let (room, with) = if target.starts_with('#') {
            match room_of(target) {
                Ok(room) => (Some(room), None),
                Err(_) => return invalid(self, queue, target),
            }
        } else {
            match Nick::new(target.as_str()) {
                Ok(nick) => (None, Some(nick)),
                Err(_) => return invalid(self, queue, target),
            }
        };
        let ts = match line.params.get(1) {
            None => None,
            Some(at) => match at.strip_prefix("timestamp=").and_then(parse_time) {
                Some(ts) => Some(ts),
                None => return invalid(self, queue, at),
            },
        };
        self.request(
            queue,
            ClientMessage::MarkRead {
                room,
                with,
                id: None,
                ts,
            },
            Asked::Markread(target.as_str().into()),
        );
    }
}

/// A CHATHISTORY reference point: `*` (none), `msgid=room-id` or
/// `timestamp=…`, as (message id, Unix milliseconds); `None` if malformed.
fn history_point(point: &str) -> Option<(Option<u64>, Option<u64>)> {
    if point == "*" {
        Some((None, None))
    } else if let Some(msgid) = point.strip_prefix("msgid=") {
        let id = msgid
            .rsplit_once('-')
            .and_then(|(_, id)| id.split('.').next()?.parse().ok())?;
        Some((Some(id), None))
    } else if let Some(time) = point.strip_prefix("timestamp=") {
        Some((None, Some(parse_time(time)?)))
    } else {
        None
    }
}

/// A CTCP message that is not an ACTION (`\x01ACTION ` and a text).
/// Any other `\x01` in a text reaches the router, which refuses it.
fn is_ctcp_query(text: &str) -> bool {
    text.starts_with('\x01') && !text.starts_with("\x01ACTION ")
}

/// IRC text as protocol text: a CTCP ACTION becomes `/me …`.
fn text_of(text: &str) -> String {
    match text.strip_prefix("\x01ACTION ") {
        Some(action) => format!(
            "{ACTION_PREFIX}{}",
            action.strip_suffix('\x01').unwrap_or(action)
        ),
        None => text.to_string(),
    }
}

/// `2026-12-01T12:00:00.123Z` as Unix milliseconds.
pub fn parse_time(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, ms) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, s) = (t.next()??, t.next()??, t.next()??);
    let ms: i64 = format!("{ms:0<3}").get(..3)?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + h) * 60 + min) * 60_000 + s * 1000 + ms).ok()
}
