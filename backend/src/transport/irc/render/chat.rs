//! Chat lines: messages and direct messages as PRIVMSG or NOTICE, with the
//! tags the client enabled, and the events every member sees alike. These
//! are the fan-out hot path: [`fan_out`] renders one once per frame and
//! tag variant, the [`Frame`] caches it, and each recipient only copies it.
//!
//! Bridging rules: a text is cut into lines at `\n`, and each line into
//! PRIVMSGs that fit [`MAX_BODY`] bytes on the wire, at a space where one
//! is near the limit, never inside a UTF-8 character, without losing a
//! byte; a text starting with `/me ` is a CTCP ACTION. A notice is sent
//! as NOTICE, everything else as PRIVMSG. Every line of a message carries
//! its one `msgid`; a client with `draft/multiline` gets a message of
//! several lines as one batch (a long line's later parts tagged
//! `draft/multiline-concat`). A reply carries `+draft/reply`.
//!
//! What happens to a message later: a reaction or typing notice is a
//! TAGMSG with `+draft/react`/`+draft/unreact` and `+draft/reply`, or
//! `+typing` (message-tags only: others get nothing); a deletion is
//! `REDACT` (draft/message-redaction only); an edit is a new PRIVMSG
//! `* alice edited: <text>` replying to the message.

use banter_protocol::{
    ACTION_PREFIX, CTCP, ChatMessage, DirectMessage, Nick, PresenceEvent, RoomName, ServerMessage,
    TargetInfo,
};
use bytes::Bytes;

use super::super::Client;
use super::super::caps::{
    BATCH, CHATHISTORY, ECHO_MESSAGE, MESSAGE_TAGS, REDACTION, SERVER_TIME, VARIANT_ACCOUNT,
    VARIANT_MSGID, VARIANT_MULTILINE, VARIANT_TIME,
};
use super::super::line::{Line, MAX_BODY};
use super::super::numeric::*;
use crate::core::frame::Frame;

/// Appends `text` from `from` to `target` as PRIVMSG (or, for a
/// `notice`, NOTICE) lines, with `tags` on each.
pub fn privmsg(
    out: &mut Vec<u8>,
    from: &str,
    target: &str,
    text: &str,
    notice: bool,
    tags: &[(String, String)],
) {
    message_lines(out, (from, target), text, notice, tags, None);
}

/// [`privmsg`], or with `batch` (a `draft/multiline` client's, and
/// inside `batch.1` if given, a chathistory batch) a text of several
/// lines as one `draft/multiline` batch whose reference is `batch.0`.
fn message_lines(
    out: &mut Vec<u8>,
    (from, target): (&str, &str),
    text: &str,
    notice: bool,
    tags: &[(String, String)],
    batch: Option<(&str, Option<&str>)>,
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
    let batch = batch.filter(|_| !action && text.contains('\n'));
    let mut line_tags = tags.to_vec();
    if let Some((id, outer)) = batch {
        // The batch carries the message's tags; its lines, the batch's.
        let mut open = Line::new(
            Some(&source),
            "BATCH",
            &[&format!("+{id}"), "draft/multiline", target],
        );
        open.tags = tags.to_vec();
        if let Some(outer) = outer {
            open.tags
                .insert(0, ("batch".to_string(), outer.to_string()));
        }
        open.write(out);
        line_tags = vec![("batch".to_string(), id.to_string())];
    }
    for piece in text.split('\n') {
        if piece.is_empty() {
            // A blank line is a line of a batch; elsewhere, nothing.
            if batch.is_some() {
                let mut line = template.clone();
                line.tags = line_tags.clone();
                line.write(out);
            }
            continue;
        }
        let mut rest = piece;
        let mut part = 0;
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
            line.tags = line_tags.clone();
            part += 1;
            if part > 1 && batch.is_some() {
                line.tags
                    .push(("draft/multiline-concat".to_string(), String::new()));
            }
            line.write(out);
        }
    }
    if let Some((id, outer)) = batch {
        let mut close = Line::new(Some(&source), "BATCH", &[&format!("-{id}")]);
        if let Some(outer) = outer {
            close.tags.push(("batch".to_string(), outer.to_string()));
        }
        close.write(out);
    }
}

/// A message an account missed, as the one IRC line a `draft/webpush`
/// push carries (with its `msgid` and the time now): to the channel, or
/// for a direct message to the account.
pub fn push_line(m: &crate::core::notify::Missed, text: &str) -> String {
    let target = match &m.room {
        Some(room) => format!("#{room}"),
        None => m.account.to_string(),
    };
    let tags = [
        ("msgid".to_string(), msgid(m.room.as_ref(), m.id)),
        ("time".to_string(), iso_time(crate::core::router::now_ms())),
    ];
    let mut out = Vec::new();
    privmsg(&mut out, m.from.as_str(), &target, text, false, &tags);
    let first = out
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .strip_suffix(b"\r")
        .unwrap_or_default();
    String::from_utf8_lossy(first).into_owned()
}

/// A message's IRC `msgid`: `room-id` in a room, `d-id` for a direct one.
pub fn msgid(room: Option<&RoomName>, id: u64) -> String {
    match room {
        Some(room) => format!("{room}-{id}"),
        None => format!("d-{id}"),
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

/// The tags of a chat message for tag variant `variant`: `reply`, the
/// msgid of the message it answers.
fn tags(
    variant: usize,
    ts: u64,
    msgid: impl FnOnce() -> String,
    account: Option<&Nick>,
    reply: Option<String>,
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
        if let Some(reply) = reply {
            tags.push(("+draft/reply".to_string(), reply));
        }
    }
    tags
}

/// The variant whose rendering serves `variant` for a message whose
/// sender is logged in (`account`) or not: without an account, the
/// account-tag variants are the same lines, so they share one rendering.
/// (A frame of one line keeps no multiline variants: see `Frame::irc`.)
pub(super) fn variant_for(variant: usize, account: Option<&Nick>) -> usize {
    if account.is_some() {
        variant
    } else {
        variant & !VARIANT_ACCOUNT
    }
}

/// [`variant_for`], for history, which picks how to render by it: a text
/// of one line has no multiline batch.
fn history_variant(variant: usize, account: Option<&Nick>, text: &str) -> usize {
    let variant = variant_for(variant, account);
    if text.contains('\n') {
        variant
    } else {
        variant & !VARIANT_MULTILINE
    }
}

/// Appends the shared rendering of `frame` for tag variant `variant`,
/// made once per frame and variant.
pub(super) fn shared(frame: &Frame, out: &mut Vec<u8>, variant: usize) {
    out.extend_from_slice(frame.irc(variant, |m| fan_out(m, variant)))
}

/// A room's message for tag variant `variant`, inside batch `outer` if
/// given.
fn chat_lines(out: &mut Vec<u8>, m: &ChatMessage, variant: usize, outer: Option<&str>) {
    let room = Some(&m.room);
    let id = msgid(room, m.id);
    let reply = m.reply_to.map(|r| msgid(room, r));
    let tags = tags(variant, m.ts, || id.clone(), m.account.as_ref(), reply);
    let batch = (variant & VARIANT_MULTILINE != 0).then_some((id.as_str(), outer));
    let target = format!("#{}", m.room);
    let from = m.from.as_str();
    message_lines(out, (from, &target), &m.text, m.notice, &tags, batch);
}

fn direct_lines(out: &mut Vec<u8>, d: &DirectMessage, variant: usize, outer: Option<&str>) {
    let id = msgid(None, d.id);
    let reply = d.reply_to.map(|r| msgid(None, r));
    let tags = tags(variant, d.ts, || id.clone(), d.account.as_ref(), reply);
    let batch = (variant & VARIANT_MULTILINE != 0).then_some((id.as_str(), outer));
    let (from, to) = (d.from.as_str(), d.to.as_str());
    message_lines(out, (from, to), &d.text, d.notice, &tags, batch);
}

/// The reactions of a message of `target` as TAGMSGs (message-tags), one
/// per person and reaction, inside batch `outer` if given.
fn reaction_lines(
    out: &mut Vec<u8>,
    target: &str,
    msgid: &str,
    reactions: &[banter_protocol::Reaction],
    outer: Option<&str>,
) {
    for r in reactions {
        for nick in &r.nicks {
            let mut line = Line::new(Some(&mask(nick.as_str())), "TAGMSG", &[target]);
            if let Some(outer) = outer {
                line.tags.push(("batch".to_string(), outer.to_string()));
            }
            line.tags
                .push(("+draft/react".to_string(), r.reaction.clone()));
            line.tags
                .push(("+draft/reply".to_string(), msgid.to_string()));
            line.write(out);
        }
    }
}

/// The IRC form of an event that every recipient sees alike, for tag
/// variant `variant`; empty if it has none.
fn fan_out(message: &ServerMessage, variant: usize) -> Bytes {
    let mut out = Vec::new();
    match message {
        ServerMessage::Message(m) => chat_lines(&mut out, m, variant, None),
        ServerMessage::Direct(d) => direct_lines(&mut out, d, variant, None),
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

    /// A reaction, typing notice, deletion or edit (see the module's
    /// doc). Our own comes back only with echo-message (typing never).
    pub(super) fn amended(&mut self, frame: &Frame, message: &ServerMessage, out: &mut Vec<u8>) {
        let mine = frame.reference().is_some();
        if mine && !self.caps.has(ECHO_MESSAGE) {
            return;
        }
        let tagged = self.caps.has(MESSAGE_TAGS);
        let time = self
            .caps
            .has(SERVER_TIME)
            .then(|| iso_time(crate::core::router::now_ms()));
        // Where it happened, as this client names it: the channel, or
        // for a direct message the other side (we are the target).
        let target = |room: &Option<RoomName>, with: &Option<Nick>, nick: &Nick| match (room, with)
        {
            (Some(room), _) => format!("#{room}"),
            (None, Some(with)) if self.is_me(nick) => with.to_string(),
            (None, _) => self.me().to_string(),
        };
        let mut line = match message {
            ServerMessage::Reaction {
                room,
                with,
                id,
                reaction,
                nick,
                remove,
                ..
            } if tagged => {
                let mut line = Line::new(
                    Some(&mask(nick.as_str())),
                    "TAGMSG",
                    &[&target(room, with, nick)],
                );
                let key = if *remove {
                    "+draft/unreact"
                } else {
                    "+draft/react"
                };
                line.tags.push((key.to_string(), reaction.clone()));
                line.tags
                    .push(("+draft/reply".to_string(), msgid(room.as_ref(), *id)));
                line
            }
            ServerMessage::Typing {
                room,
                with,
                nick,
                state,
            } if tagged => {
                let mut line = Line::new(
                    Some(&mask(nick.as_str())),
                    "TAGMSG",
                    &[&target(room, with, nick)],
                );
                line.tags
                    .push(("+typing".to_string(), state.as_str().to_string()));
                line
            }
            ServerMessage::Deleted {
                room,
                with,
                id,
                nick,
                reason,
            } if self.caps.has(REDACTION) => {
                let target = target(room, with, nick);
                let id = msgid(room.as_ref(), *id);
                let source = mask(nick.as_str());
                match reason {
                    Some(reason) => {
                        Line::new(Some(&source), "REDACT", &[&target, &id, reason]).text()
                    }
                    None => Line::new(Some(&source), "REDACT", &[&target, &id]),
                }
            }
            ServerMessage::Edited {
                room,
                with,
                id,
                text,
                nick,
                ..
            } => {
                let target = target(room, with, nick);
                let text = format!("* {nick} edited: {text}");
                let mut tags: Vec<(String, String)> =
                    time.into_iter().map(|t| ("time".to_string(), t)).collect();
                if tagged {
                    tags.push(("+draft/reply".to_string(), msgid(room.as_ref(), *id)));
                }
                return privmsg(out, nick.as_str(), &target, &text, false, &tags);
            }
            _ => return,
        };
        if let Some(time) = time {
            line.tags.insert(0, ("time".to_string(), time));
        }
        line.write(out);
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
            // A deleted message is gone; an edited one reads as it does
            // now.
            if m.deleted {
                continue;
            }
            let variant = history_variant(variant, m.account.as_ref(), &m.text);
            match &batch {
                Some(id) if variant & VARIANT_MULTILINE == 0 => {
                    let mut lines = Vec::new();
                    chat_lines(&mut lines, m, variant, None);
                    in_batch(out, &lines, id);
                }
                _ => chat_lines(out, m, variant, batch.as_deref()),
            }
            if variant & VARIANT_MSGID != 0 {
                let id = msgid(Some(&m.room), m.id);
                reaction_lines(out, &channel, &id, &m.reactions, batch.as_deref());
            }
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
            if d.deleted {
                continue;
            }
            let variant = history_variant(variant, d.account.as_ref(), &d.text);
            match &batch {
                Some(id) if variant & VARIANT_MULTILINE == 0 => {
                    let mut lines = Vec::new();
                    direct_lines(&mut lines, d, variant, None);
                    in_batch(out, &lines, id);
                }
                _ => direct_lines(out, d, variant, batch.as_deref()),
            }
            if variant & VARIANT_MSGID != 0 {
                let target = if self.is_me(&d.from) { &d.to } else { &d.from };
                let id = msgid(None, d.id);
                reaction_lines(out, target.as_str(), &id, &d.reactions, batch.as_deref());
            }
        }
        close_batch(out, batch);
    }

    /// A `SEARCH` answer: a `soju.im/search` batch of the messages found,
    /// oldest first, each with its msgid and time.
    pub(super) fn search_batch(&mut self, out: &mut Vec<u8>, found: &[banter_protocol::Found]) {
        let variant = self.caps.tag_variant() & !VARIANT_MULTILINE;
        let batch = self.open_batch(out, "soju.im/search", "");
        for m in found.iter().rev() {
            let id = msgid(m.room.as_ref(), m.id);
            let mut tags = tags(
                variant | VARIANT_TIME,
                m.ts,
                || id.clone(),
                m.account.as_ref(),
                None,
            );
            if let Some(batch) = &batch {
                tags.insert(0, ("batch".to_string(), batch.clone()));
            }
            let target = match (&m.room, &m.to) {
                (Some(room), _) => format!("#{room}"),
                (None, Some(to)) => to.to_string(),
                (None, None) => continue,
            };
            privmsg(out, m.from.as_str(), &target, &m.text, false, &tags);
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
        let rare = self.rare();
        rare.batches = rare.batches.wrapping_add(1);
        let id = format!("h{}", rare.batches);
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

/// Appends `lines` (whole IRC lines) with `batch=<id>` as their first
/// tag.
fn in_batch(out: &mut Vec<u8>, lines: &[u8], id: &str) {
    for line in lines.split_inclusive(|&b| b == b'\n') {
        let tag = format!("batch={id}");
        match line.strip_prefix(b"@") {
            Some(rest) => {
                out.push(b'@');
                out.extend_from_slice(tag.as_bytes());
                out.push(b';');
                out.extend_from_slice(rest);
            }
            None => {
                out.push(b'@');
                out.extend_from_slice(tag.as_bytes());
                out.push(b' ');
                out.extend_from_slice(line);
            }
        }
    }
}

/// Ends the batch [`open_batch`](Client::open_batch) opened, if any.
fn close_batch(out: &mut Vec<u8>, batch: Option<String>) {
    if let Some(id) = batch {
        Line::new(Some(server()), "BATCH", &[&format!("-{id}")]).write(out);
    }
}
