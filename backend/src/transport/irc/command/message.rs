//! Messages: PRIVMSG and NOTICE to channels and nicks (a CTCP ACTION is
//! `/me`; other CTCP is not relayed, and a query is told so; a
//! `+draft/reply` tag makes a reply), `draft/multiline` batches of them
//! (one message), TAGMSG (reactions: `+draft/react`/`+draft/unreact`
//! with `+draft/reply`; typing: `+typing`), REDACT (a deletion), and
//! CHATHISTORY, IRCv3's way to page through a channel's history.
//!
//! Message ids on IRC are `room-id` for a room's message and `d-id` for a
//! direct one (see `render::chat`).

use std::collections::VecDeque;

use banter_protocol::{ACTION_PREFIX, ClientMessage, Nick, RoomName, TypingState};

use super::super::Client;
use super::super::asked::Asked;
use super::super::caps::{BATCH, MESSAGE_TAGS, MULTILINE};
use super::super::line::Line;
use super::super::numeric::*;
use super::room_of;
use crate::session::Inbound;

impl Client {
    /// PRIVMSG, NOTICE, TAGMSG or CHATHISTORY.
    pub(super) fn message_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let command = line.command.as_str();
        match command {
            "TAGMSG" => self.tagmsg(line, queue),
            "REDACT" => self.redact(line, queue),
            "BATCH" => self.batch_command(line, queue),
            "SEARCH" => self.search(line, queue),
            "WEBPUSH" => self.webpush(line, queue),
            "CHATHISTORY" => self.chathistory(line, queue),
            "MARKREAD" => self.markread_command(line, queue),
            // A line of a multiline batch may be blank.
            _ if line.params.len() >= 2 && tag(line, "batch").is_some() => {
                let id = tag(line, "batch").unwrap_or_default();
                self.batch_line(id, line, command == "NOTICE", queue)
            }
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

    /// A PRIVMSG or NOTICE with its text, to each of its targets (or the
    /// next line of the `draft/multiline` batch it names).
    fn say(&mut self, line: &Line, notice: bool, queue: &mut VecDeque<Inbound>) {
        self.send_text(line, text_of(&line.params[1]), notice, queue);
    }

    /// Sends `text` from a PRIVMSG or NOTICE (or a whole batch of them:
    /// `line` is its opening) to each of its targets, a reply if it has
    /// `+draft/reply`.
    fn send_text(
        &mut self,
        line: &Line,
        text: String,
        notice: bool,
        queue: &mut VecDeque<Inbound>,
    ) {
        let reply = tag(line, "+draft/reply");
        let target_list = if line.command == "BATCH" {
            line.params[2].as_str()
        } else {
            line.params[0].as_str()
        };
        let command = if notice { "NOTICE" } else { "PRIVMSG" };
        for target in self.targets(target_list, command, queue) {
            let reply_to = reply.and_then(|msgid| message_id(msgid, target));
            let asked = if notice {
                Asked::Notice(target.into())
            } else {
                Asked::Privmsg(target.into())
            };
            if target.starts_with('#') {
                match room_of(target) {
                    Ok(room) => {
                        let text = text.clone();
                        let body = ClientMessage::Say {
                            reply_to,
                            room,
                            text,
                            notice,
                        };
                        self.request(queue, body, asked)
                    }
                    Err(_) if notice => {}
                    Err(_) => self.numeric(queue, ERR_NOSUCHCHANNEL, &[target, "No such channel"]),
                }
            } else {
                match Nick::new(target) {
                    Ok(to) => {
                        let text = text.clone();
                        let body = ClientMessage::Whisper {
                            reply_to,
                            to,
                            text,
                            notice,
                        };
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

    /// TAGMSG with client-only tags (message-tags): `+typing` is a typing
    /// notice; `+draft/react` (or `+draft/unreact`) with `+draft/reply`
    /// reacts to that message. Other tags are not relayed (CLIENTTAGDENY).
    fn tagmsg(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(target) = line.params.first().map(String::as_str) else {
            return self.numeric(queue, ERR_NORECIPIENT, &["No recipient given (TAGMSG)"]);
        };
        if !self.caps.has(MESSAGE_TAGS) {
            return;
        }
        let Some(place) = place_of(target) else {
            return self.standard_fail(
                queue,
                "TAGMSG INVALID_TARGET",
                &[target],
                "No such channel or nick",
            );
        };
        if let Some(state) = tag(line, "+typing") {
            let state = match state {
                "active" => TypingState::Active,
                "paused" => TypingState::Paused,
                "done" => TypingState::Done,
                // The spec's rule: an unknown value is ignored.
                _ => return,
            };
            let (room, to) = place.split();
            let body = ClientMessage::Typing {
                room,
                to,
                with: None,
                state,
            };
            // Nothing answers a typing notice, so nothing waits for it.
            queue.push_back(Inbound::Request(Box::new(banter_protocol::Envelope::new(
                body,
            ))));
            return;
        }
        let (reaction, remove) = match (tag(line, "+draft/react"), tag(line, "+draft/unreact")) {
            (Some(r), _) => (r, false),
            (None, Some(r)) => (r, true),
            (None, None) => return,
        };
        let Some(id) = tag(line, "+draft/reply").and_then(|m| message_id(m, target)) else {
            return self.standard_fail(
                queue,
                "TAGMSG UNKNOWN_MSGID",
                &[target],
                "A reaction names the message it is for with +draft/reply",
            );
        };
        let (room, with) = place.split();
        let body = ClientMessage::React {
            room,
            with,
            id,
            reaction: reaction.to_string(),
            remove,
        };
        self.request(queue, body, Asked::Tagmsg(target.into()));
    }

    /// `REDACT <target> <msgid> [:reason]` (draft/message-redaction).
    fn redact(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        if line.params.len() < 2 {
            return self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &["REDACT", "Not enough parameters"],
            );
        }
        let (target, msgid) = (line.params[0].as_str(), line.params[1].as_str());
        let Some(place) = place_of(target) else {
            return self.standard_fail(queue, "REDACT INVALID_TARGET", &[target], "No such target");
        };
        // A msgid of no message of ours is id 0, which no message has:
        // the router tells a target we may not use from an unknown id.
        let id = message_id(msgid, target).unwrap_or(0);
        let (room, with) = place.split();
        let reason = line.params.get(2).filter(|r| !r.is_empty()).cloned();
        let body = ClientMessage::Delete {
            room,
            with,
            id,
            reason,
        };
        self.request(queue, body, Asked::Redact(target.into(), msgid.into()));
    }

    /// `SEARCH <attrs>` (soju.im/search): `text`, `from`, `in`, `before`
    /// (a timestamp) and `limit`, `;`-separated `key=value` with
    /// message-tags escaping; the answer is a `soju.im/search` batch.
    fn search(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let attrs = line.params.first().map(String::as_str).unwrap_or("");
        let mut query = Vec::new();
        let (mut limit, mut before_ts) = (None, None);
        for pair in attrs.split(';').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = super::super::line::unescape_tag_value(value);
            match key {
                "text" => query.push(value),
                "from" => query.push(format!("from:{value}")),
                "in" => query.push(format!("in:{value}")),
                "limit" => limit = value.parse().ok(),
                "before" => match parse_time(&value) {
                    Some(ts) => before_ts = Some(ts),
                    None => {
                        return self.standard_fail(
                            queue,
                            "SEARCH INVALID_PARAMS",
                            &[pair],
                            "before takes a timestamp",
                        );
                    }
                },
                // after= and anything else: not a filter here.
                _ => {}
            }
        }
        let body = ClientMessage::Search {
            query: query.join(" "),
            limit,
            before: None,
            before_ts,
        };
        self.request(queue, body, Asked::Search);
    }

    /// `WEBPUSH REGISTER <endpoint> <keys>` (`p256dh=…;auth=…`) and
    /// `WEBPUSH UNREGISTER <endpoint>` (draft/webpush): this account's
    /// pushes, as IRC lines, for a client with no connection open.
    fn webpush(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let sub = line.params.first().map(|s| s.to_ascii_uppercase());
        let endpoint = line.params.get(1).cloned().unwrap_or_default();
        match (sub.as_deref(), line.params.get(2)) {
            (Some("REGISTER"), Some(keys)) => {
                let (mut p256dh, mut auth) = (String::new(), String::new());
                for pair in keys.split(';') {
                    match pair.split_once('=') {
                        Some(("p256dh", v)) => p256dh = v.to_string(),
                        Some(("auth", v)) => auth = v.to_string(),
                        _ => {}
                    }
                }
                let body = ClientMessage::PushSubscribe {
                    endpoint: endpoint.clone(),
                    keys: banter_protocol::PushKeys { p256dh, auth },
                };
                self.request(queue, body, Asked::Webpush(true, endpoint.into()));
            }
            (Some("UNREGISTER"), _) if !endpoint.is_empty() => {
                let body = ClientMessage::PushUnsubscribe {
                    endpoint: endpoint.clone(),
                };
                self.request(queue, body, Asked::Webpush(false, endpoint.into()));
            }
            _ => self.standard_fail(
                queue,
                "WEBPUSH INVALID_PARAMS",
                &[],
                "WEBPUSH REGISTER <endpoint> <keys>, or WEBPUSH UNREGISTER <endpoint>",
            ),
        }
    }

    /// `BATCH +id draft/multiline <target>` opens a message of several
    /// lines (the PRIVMSGs or NOTICEs tagged `batch=id`); `BATCH -id`
    /// sends it, as one message.
    fn batch_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(reference) = line.params.first().map(String::as_str) else {
            return self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &["BATCH", "Not enough parameters"],
            );
        };
        if let Some(id) = reference.strip_prefix('+') {
            let kind = line.params.get(1).map(String::as_str);
            if kind != Some("draft/multiline") || line.params.len() < 3 {
                return self.standard_fail(
                    queue,
                    "BATCH MULTILINE_INVALID",
                    &[],
                    "Only draft/multiline batches (with a target) are taken",
                );
            }
            if !(self.caps.has(MULTILINE) && self.caps.has(BATCH))
                || self.rare.as_ref().is_some_and(|r| r.multiline.is_some())
            {
                return self.standard_fail(
                    queue,
                    "BATCH MULTILINE_INVALID",
                    &[],
                    "Enable draft/multiline and batch, and send one batch at a time",
                );
            }
            // The label answers at the batch's end, with its message.
            self.label.take();
            self.rare().multiline = Some(Box::new(Multiline {
                id: id.into(),
                opening: line.clone(),
                text: String::new(),
                lines: 0,
                notice: None,
                error: None,
                free: 0,
            }));
            return;
        }
        let id = reference.strip_prefix('-').unwrap_or(reference);
        let Some(batch) = self
            .rare
            .as_mut()
            .and_then(|r| r.multiline.take_if(|b| *b.id == *id))
        else {
            return self.standard_fail(
                queue,
                "BATCH MULTILINE_INVALID",
                &[],
                "No such batch is open",
            );
        };
        if let Some((code, why)) = batch.error {
            // The spec's context: the limit passed, or the targets.
            let context = match code {
                "MULTILINE_MAX_BYTES" => vec![self.info.max_text_bytes.to_string()],
                "MULTILINE_MAX_LINES" => vec![self.info.max_lines.to_string()],
                "MULTILINE_INVALID_TARGET" => vec![batch.opening.params[2].clone()],
                _ => Vec::new(),
            };
            let context: Vec<&str> = context.iter().map(String::as_str).collect();
            return self.standard_fail(queue, &format!("BATCH {code}"), &context, why);
        }
        let Some(notice) = batch.notice.filter(|_| !batch.text.trim().is_empty()) else {
            return self.standard_fail(
                queue,
                "BATCH MULTILINE_INVALID",
                &[],
                "The batch holds no text",
            );
        };
        // The batch's label answers its message.
        self.label.set(self.label_of(&batch.opening));
        self.send_text(&batch.opening, batch.text, notice, queue);
    }

    /// Whether `next` (the next line's start) is a line of the open
    /// `draft/multiline` batch, within its bounds: flood control lets it
    /// through (the batch is one message, and its lines are bounded by
    /// `--max-lines`), as other servers do.
    pub fn batch_line_next(&mut self, next: &[u8]) -> bool {
        let max = self.info.max_lines;
        let Some(batch) = self
            .rare
            .as_mut()
            .and_then(|r| r.multiline.as_mut())
            .filter(|b| b.free <= max)
        else {
            return false;
        };
        let Some(rest) = next.strip_prefix(b"@batch=") else {
            return false;
        };
        let ours = rest
            .strip_prefix(batch.id.as_bytes())
            .is_some_and(|r| r.first().is_some_and(|&b| b == b';' || b == b' '));
        if ours {
            batch.free += 1;
        }
        ours
    }

    /// One line of the open `draft/multiline` batch `id`.
    fn batch_line(&mut self, id: &str, line: &Line, notice: bool, queue: &mut VecDeque<Inbound>) {
        let (max_bytes, max_lines) = (self.info.max_text_bytes, self.info.max_lines);
        let Some(batch) = self
            .rare
            .as_mut()
            .and_then(|r| r.multiline.as_mut())
            .filter(|b| *b.id == *id)
        else {
            return self.standard_fail(
                queue,
                "BATCH MULTILINE_INVALID",
                &[],
                "That batch is not open",
            );
        };
        if batch.error.is_some() {
            return;
        }
        let same_target = line.params[0].eq_ignore_ascii_case(&batch.opening.params[2]);
        let concat = line.tags.iter().any(|(k, _)| k == "draft/multiline-concat");
        let text = text_of(&line.params[1]);
        batch.error = if !same_target {
            Some((
                "MULTILINE_INVALID_TARGET",
                "Every line of a batch goes to the batch's target",
            ))
        } else if batch.notice.is_some_and(|n| n != notice) {
            Some((
                "MULTILINE_INVALID",
                "The lines of a batch are all PRIVMSG or all NOTICE",
            ))
        } else if concat && text.is_empty() {
            Some(("MULTILINE_INVALID", "An empty line cannot be concatenated"))
        } else {
            None
        };
        if batch.error.is_some() {
            return;
        }
        batch.notice = Some(notice);
        if batch.lines > 0 && !concat {
            batch.text.push('\n');
        }
        if !concat || batch.lines == 0 {
            batch.lines += 1;
        }
        batch.text.push_str(&text);
        if batch.text.len() > max_bytes {
            batch.error = Some(("MULTILINE_MAX_BYTES", "The message is too long"));
            batch.text = String::new();
        } else if batch.lines > max_lines {
            batch.error = Some(("MULTILINE_MAX_LINES", "The message has too many lines"));
            batch.text = String::new();
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
        // Each subcommand's bounds, and whether it pages backwards.
        let (before, after, before_ts, after_ts, limit, latest) = match sub.as_str() {
            "LATEST" => (None, id, None, ts, limit, true),
            "BEFORE" => (id, None, ts, None, limit, false),
            "AFTER" => (None, id, None, ts, limit, false),
            // BETWEEN <target> <ref> <ref> <limit>: both bounds excluded,
            // from the first towards the second (backwards: the newest
            // before the first bound).
            "BETWEEN" => {
                let second = line.params.get(3).map_or("", String::as_str);
                let Some((id2, ts2)) = history_point(second).filter(|_| point != "*") else {
                    return self.fail(queue, "CHATHISTORY INVALID_PARAMS", &sub, second);
                };
                let limit = line
                    .params
                    .get(4)
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(50);
                let backwards = match ((id, ts), (id2, ts2)) {
                    ((Some(a), _), (Some(b), _)) => a > b,
                    ((_, Some(a)), (_, Some(b))) => a > b,
                    _ => false,
                };
                if backwards {
                    (id, id2, ts, ts2, limit, true)
                } else {
                    (id2, id, ts2, ts, limit, false)
                }
            }
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
                latest,
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

/// An incoming `draft/multiline` batch, until its end.
#[derive(Debug)]
pub struct Multiline {
    id: Box<str>,
    /// The `BATCH +id draft/multiline <target>` line (its tags too:
    /// `+draft/reply`, `label`).
    opening: Line,
    text: String,
    lines: usize,
    /// Whether its lines are NOTICEs (`None`: none yet).
    notice: Option<bool>,
    /// Why it will be refused: the spec's code, and a sentence.
    error: Option<(&'static str, &'static str)>,
    /// Its lines that flood control let through.
    free: usize,
}

/// A tag's value on `line`.
fn tag<'a>(line: &'a Line, name: &str) -> Option<&'a str> {
    line.tags
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Where a TAGMSG or REDACT goes: a room, or a nick.
enum Place {
    Room(RoomName),
    Nick(Nick),
}

impl Place {
    fn split(self) -> (Option<RoomName>, Option<Nick>) {
        match self {
            Place::Room(room) => (Some(room), None),
            Place::Nick(nick) => (None, Some(nick)),
        }
    }
}

fn place_of(target: &str) -> Option<Place> {
    if target.starts_with('#') {
        room_of(target).ok().map(Place::Room)
    } else {
        Nick::new(target).ok().map(Place::Nick)
    }
}

/// The id of message `msgid` of `target`: `room-id` for a channel's
/// (its room's name must match), `d-id` for a direct message; `None` if
/// it is neither.
fn message_id(msgid: &str, target: &str) -> Option<u64> {
    let (scope, id) = msgid.rsplit_once('-')?;
    let id: u64 = id.split('.').next()?.parse().ok()?;
    let matches = match target.strip_prefix('#') {
        Some(room) => scope.eq_ignore_ascii_case(room),
        None => scope == "d",
    };
    matches.then_some(id)
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
