//! Chat lines: messages and direct messages as PRIVMSG or NOTICE, with the
//! tags the client enabled, and the events every member sees alike. These
//! are the fan-out hot path: [`fan_out`] renders one once per frame and
//! tag variant, the [`Frame`] caches it, and each recipient only copies it.
//!
//! Bridging rules: a text is cut into lines at `\n`, and each line into
//! PRIVMSGs that fit [`MAX_BODY`] bytes on the wire, at a space where one
//! is near the limit, never inside a UTF-8 character, without losing a
//! byte; a text starting with `/me ` is a CTCP ACTION. A notice is sent
//! as NOTICE, everything else as PRIVMSG.

use banter_protocol::{
    ACTION_PREFIX, CTCP, ChatMessage, DirectMessage, Nick, PresenceEvent, RoomName, ServerMessage,
    TargetInfo,
};
use bytes::Bytes;

use super::super::Client;
use super::super::caps::{
    BATCH, CHATHISTORY, ECHO_MESSAGE, SERVER_TIME, VARIANT_ACCOUNT, VARIANT_MSGID, VARIANT_TIME,
};
use super::super::line::{Line, MAX_BODY};
use super::super::numeric::*;
use crate::core::frame::Frame;

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
    // No text with CTCP's `\x01` is accepted (see `check_text`); one kept
    // from before that rule, or from another node, loses it here, so an
    // IRC client never takes a message for a CTCP command.
    let stripped;
    let text = if text.contains(CTCP) {
        stripped = text.replace(CTCP, "");
        &stripped
    } else {
        text
    };
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
pub(super) fn cut_at(text: &str, max: usize) -> usize {
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
pub(super) fn variant_for(variant: usize, account: Option<&Nick>) -> usize {
    if account.is_some() {
        variant
    } else {
        variant & !VARIANT_ACCOUNT
    }
}

/// Appends the shared rendering of `frame` for tag variant `variant`,
/// made once per frame and variant.
pub(super) fn shared(frame: &Frame, out: &mut Vec<u8>, variant: usize) {
    out.extend_from_slice(frame.irc(variant, |m| fan_out(m, variant)))
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
        ServerMessage::Presence { .. } => presence_line(&mut out, message, variant),
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

/// A join, part, quit or nick change as its IRC line.
fn presence_line(out: &mut Vec<u8>, message: &ServerMessage, variant: usize) {
    let ServerMessage::Presence {
        room,
        nick,
        event,
        new_nick,
        reason,
        account,
        ..
    } = message
    else {
        return;
    };
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
        (PresenceEvent::Quit, _, None) => Line::new(Some(&source), "QUIT", &["Quit"]).text(),
        (PresenceEvent::Quit, _, Some(why)) => {
            Line::new(Some(&source), "QUIT", &[&format!("Quit: {why}")]).text()
        }
        (PresenceEvent::Nick, Some(new), _) => {
            Line::new(Some(&source), "NICK", &[new.as_str()]).text()
        }
        _ => return,
    };
    if variant & VARIANT_ACCOUNT != 0
        && let Some(account) = account
    {
        line.tags.push(("account".to_string(), account.to_string()));
    }
    line.write(out);
}

impl Client {
    /// A chat message, the fan-out hot path: the shared rendering, and no
    /// per-recipient work (not even a copy of our nick).
    pub(super) fn chat(&self, frame: &Frame, message: &ServerMessage, out: &mut Vec<u8>) {
        let variant = self.caps.tag_variant();
        let echo = self.caps.has(ECHO_MESSAGE);
        let mine = frame.reference().is_some();
        match message {
            // This connection's own words come back (with its request's
            // ref) only with echo-message; what the user said from another
            // device (no ref) is shown like anyone's.
            ServerMessage::Message(m) if mine && self.is_me(&m.from) && !echo => {}
            ServerMessage::Direct(d)
                if mine && self.is_me(&d.from) && !self.is_me(&d.to) && !echo => {}
            ServerMessage::Message(m) => {
                shared(frame, out, variant_for(variant, m.account.as_ref()))
            }
            ServerMessage::Direct(d) => {
                shared(frame, out, variant_for(variant, d.account.as_ref()))
            }
            _ => {}
        }
    }

    /// Recent history on join (the newest `--irc-join-replay`), for
    /// clients that can tell old from new: with `server-time` the messages
    /// come with their times (and `msgid`s with `message-tags`), inside a
    /// `chathistory` batch if the client enabled `batch`. A client with
    /// `draft/chathistory` asks for what it misses instead: none, so that
    /// a client keeping its own scrollback shows no line twice.
    pub(super) fn replay(&mut self, out: &mut Vec<u8>, room: &RoomName, history: &[ChatMessage]) {
        if history.is_empty() || !self.caps.has(SERVER_TIME) || self.caps.has(CHATHISTORY) {
            return;
        }
        let keep = history.len().min(self.info.join_replay as usize);
        if keep == 0 {
            return;
        }
        self.history_batch(out, room, &history[history.len() - keep..]);
    }

    /// A `CHATHISTORY` answer: a `chathistory` batch (with `batch`),
    /// each message with the tags this client enabled.
    pub(super) fn history_batch(
        &mut self,
        out: &mut Vec<u8>,
        room: &RoomName,
        messages: &[ChatMessage],
    ) {
        let variant = self.caps.tag_variant();
        let channel = format!("#{room}");
        let batch = self.open_batch(out, "chathistory", &channel);
        for m in messages {
            let msgid = || format!("{}-{}", m.room, m.id);
            let mut tags = tags(variant, m.ts, msgid, m.account.as_ref());
            if let Some(id) = &batch {
                tags.insert(0, ("batch".to_string(), id.clone()));
            }
            privmsg(out, m.from.as_str(), &channel, &m.text, m.notice, &tags);
        }
        close_batch(out, batch);
    }

    /// `CHATHISTORY` of a nick: the direct conversation with that account,
    /// both directions, in a `chathistory` batch named after it.
    pub(super) fn direct_history_batch(
        &mut self,
        out: &mut Vec<u8>,
        with: &Nick,
        messages: &[DirectMessage],
    ) {
        let variant = self.caps.tag_variant();
        let batch = self.open_batch(out, "chathistory", with.as_str());
        for d in messages {
            let mut tags = tags(variant, d.ts, || format!("d-{}", d.id), d.account.as_ref());
            if let Some(id) = &batch {
                tags.insert(0, ("batch".to_string(), id.clone()));
            }
            let (from, to) = (d.from.as_str(), d.to.as_str());
            privmsg(out, from, to, &d.text, d.notice, &tags);
        }
        close_batch(out, batch);
    }

    /// `CHATHISTORY TARGETS`: one `CHATHISTORY TARGETS <name> <time>` line
    /// per conversation, in a `draft/chathistory-targets` batch.
    pub(super) fn targets_batch(&mut self, out: &mut Vec<u8>, targets: &[TargetInfo]) {
        let batch = self.open_batch(out, "draft/chathistory-targets", "");
        for t in targets {
            let name = match (&t.room, &t.with) {
                (Some(room), _) => format!("#{room}"),
                (None, Some(with)) => with.to_string(),
                (None, None) => continue,
            };
            let time = iso_time(t.ts);
            let mut line = Line::new(Some(server()), "CHATHISTORY", &["TARGETS", &name, &time]);
            if let Some(id) = &batch {
                line.tags.push(("batch".to_string(), id.clone()));
            }
            line.write(out);
        }
        close_batch(out, batch);
    }

    /// Opens a batch of `kind` (about `target`, if not empty) when the
    /// client takes batches; its reference tag.
    fn open_batch(&mut self, out: &mut Vec<u8>, kind: &str, target: &str) -> Option<String> {
        if !self.caps.has(BATCH) {
            return None;
        }
        self.batches = self.batches.wrapping_add(1);
        let id = format!("h{}", self.batches);
        let start = format!("+{id}");
        let params: &[&str] = if target.is_empty() {
            &[&start, kind]
        } else {
            &[&start, kind, target]
        };
        Line::new(Some(server()), "BATCH", params).write(out);
        Some(id)
    }
}

/// Ends the batch [`open_batch`](Client::open_batch) opened, if any.
fn close_batch(out: &mut Vec<u8>, batch: Option<String>) {
    if let Some(id) = batch {
        Line::new(Some(server()), "BATCH", &[&format!("-{id}")]).write(out);
    }
}
