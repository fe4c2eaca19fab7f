//! Incoming IRC commands, by family: [`connect`] (CAP, PING, QUIT, and
//! registration's PASS, USER, NICK, AUTHENTICATE), [`channel`] (JOIN,
//! PART, TOPIC, NAMES, LIST, KICK, MODE), [`message`] (PRIVMSG, NOTICE,
//! CHATHISTORY), [`query`] (WHO, WHOIS, ISON, USERHOST, AWAY, MOTD) and
//! [`oper`] (OPER, KILL, KLINE, UNKLINE, STATS).
//! Each becomes protocol requests for the shared session, or is answered
//! here when the answer needs no router (PING, CAP, errors in the line
//! itself). A request's `ref` is a number the connection's
//! [`AskedTable`](super::asked::AskedTable) hands out, remembering what was
//! asked, so that its reply renders as the right numeric (see `render`).

mod channel;
mod connect;
mod message;
mod oper;
mod query;

use std::collections::VecDeque;

use banter_protocol::{ClientMessage, Envelope, Nick, RoomName};
use bytes::Bytes;

use super::Client;
use super::asked::Asked;
use super::caps::{BATCH, STANDARD_REPLIES};
use super::line::{Line, LineError};
use super::numeric::*;
use super::registration::{MAX_HELD_BYTES, MAX_HELD_LINES, NotHeld};
use crate::core::frame::Frame;
use crate::session::Inbound;

pub use self::message::{Multiline, parse_time};
pub use self::query::{lusers, motd};

/// Most targets one JOIN, PART, PRIVMSG, NOTICE, NAMES or WHOIS may name.
pub const MAX_TARGETS: usize = 10;

/// Most nicks one USERHOST asks about (RFC 2812).
pub const MAX_USERHOST: usize = 5;

/// A channel name as a room: `#lobby` is room `lobby`.
pub fn room_of(channel: &str) -> Result<RoomName, &'static str> {
    let Some(name) = channel.strip_prefix('#') else {
        return Err(ERR_NOSUCHCHANNEL);
    };
    RoomName::new(name).map_err(|_| ERR_BADCHANNAME)
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn clip(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Client {
    /// The nick numerics address: `*` until registration completes.
    pub fn me(&self) -> &str {
        self.nick.as_ref().map_or("*", Nick::as_str)
    }

    /// Queues lines made here, in order with the router's frames.
    pub(super) fn local(
        &self,
        queue: &mut VecDeque<Inbound>,
        make: impl FnOnce(&mut Vec<u8>, &str),
    ) {
        let mut out = Vec::new();
        make(&mut out, self.me());
        if let Some(label) = self.label.take() {
            let lines = std::mem::take(&mut out);
            super::labels::labeled(&label, &lines, self.caps.has(BATCH), &mut out);
        }
        // Behind the answers to earlier requests (see `order`).
        match self.asked.newest_unanswered() {
            Some(after) => self.waiting.hold(after, Bytes::from(out)),
            None => {
                self.release_waiting(queue, true);
                queue.push_back(Inbound::Reply(Frame::local(Bytes::from(out))));
            }
        }
    }

    /// Queues the lines made earlier that may go now (`all`: every one).
    fn release_waiting(&self, queue: &mut VecDeque<Inbound>, all: bool) {
        if self.waiting.any() {
            for bytes in self.waiting.release(&self.asked, all) {
                queue.push_back(Inbound::Reply(Frame::local(bytes)));
            }
        }
    }

    fn numeric(&self, queue: &mut VecDeque<Inbound>, code: &str, params: &[&str]) {
        self.local(queue, |out, me| reply(out, code, me, params));
    }

    /// Queues a request for the session; its replies find `asked` by ref.
    fn request(&mut self, queue: &mut VecDeque<Inbound>, body: ClientMessage, asked: Asked) {
        let reference = self.asked.ask_labeled(asked, self.label.take());
        queue.push_back(Inbound::Request(Box::new(Envelope::with_ref(
            body,
            Some(reference),
        ))));
    }

    /// Handles one line from the client: by family, once registered.
    pub fn on_line(&mut self, bytes: &[u8], queue: &mut VecDeque<Inbound>) {
        let line = match Line::parse(bytes) {
            Ok(line) => line,
            Err(e) => return self.bad_line(e, queue),
        };
        // Lines that waited too long for earlier answers go first.
        self.release_waiting(queue, false);
        self.label.set(self.label_of(&line));
        self.dispatch(&line, bytes, queue);
        // A command that made no request and sent nothing is answered.
        if self.label.is_set() {
            self.local(queue, |_, _| {});
        }
    }

    /// Carries out one parsed line: by family, once registered.
    fn dispatch(&mut self, line: &Line, bytes: &[u8], queue: &mut VecDeque<Inbound>) {
        match line.command.as_str() {
            "CAP" | "PING" | "PONG" | "QUIT" | "PASS" | "USER" | "NICK" | "AUTHENTICATE" => {
                self.connection_command(line, queue)
            }
            _ if self.nick.is_none() => {
                // Held while `hello` is out: a pipelined JOIN runs after
                // the welcome.
                let held = match self.registration() {
                    Some(reg) => reg.hold(bytes),
                    None => Err(NotHeld::Unregistered),
                };
                match held {
                    // Answered after the welcome, label and all.
                    Ok(()) => {
                        self.label.take();
                    }
                    Err(NotHeld::Unregistered) => self.numeric(
                        queue,
                        ERR_NOTREGISTERED,
                        &["You have not registered (send NICK and USER)"],
                    ),
                    Err(NotHeld::Full) => {
                        let why = format!(
                            "You have not registered yet: at most {MAX_HELD_LINES} commands \
                             ({MAX_HELD_BYTES} bytes) wait for the welcome; this one was dropped"
                        );
                        self.numeric(queue, ERR_NOTREGISTERED, &[&why]);
                    }
                }
            }
            _ if self.missing_params(line, queue) => {}
            "JOIN" | "PART" | "TOPIC" | "NAMES" | "LIST" | "KICK" | "MODE" | "INVITE" => {
                self.channel_command(line, queue)
            }
            "PRIVMSG" | "NOTICE" | "TAGMSG" | "REDACT" | "BATCH" | "CHATHISTORY" | "MARKREAD"
            | "SEARCH" | "WEBPUSH" => self.message_command(line, queue),
            "WHO" | "WHOIS" | "ISON" | "USERHOST" | "AWAY" | "MOTD" | "VERSION" | "TIME"
            | "ADMIN" | "INFO" | "WHOWAS" | "LUSERS" | "SETNAME" | "MONITOR" => {
                self.query_command(line, queue)
            }
            "OPER" | "KILL" | "KLINE" | "UNKLINE" | "STATS" => self.oper_command(line, queue),
            command => self.numeric(queue, ERR_UNKNOWNCOMMAND, &[command, "Unknown command"]),
        }
    }

    /// Whether `line` has fewer parameters than its command needs; if so,
    /// the client is told (PRIVMSG and NOTICE check their own).
    fn missing_params(&self, line: &Line, queue: &mut VecDeque<Inbound>) -> bool {
        let command = line.command.as_str();
        let least = match command {
            "USER" | "CHATHISTORY" => 4,
            "KICK" | "KLINE" | "OPER" | "INVITE" => 2,
            "PASS" | "JOIN" | "PART" | "TOPIC" | "WHOIS" | "MODE" | "ISON" | "USERHOST"
            | "NAMES" | "WHO" | "KILL" | "UNKLINE" | "MONITOR" => 1,
            _ => 0,
        };
        if line.params.len() >= least {
            return false;
        }
        match command {
            "WHOIS" => self.numeric(queue, ERR_NONICKNAMEGIVEN, &["No nickname given"]),
            // Lenient like common servers: the whole list is too much to
            // send, so NAMES and WHO without a target are just the end.
            "NAMES" => self.numeric(queue, RPL_ENDOFNAMES, &["*", "End of /NAMES list"]),
            "WHO" => self.numeric(queue, RPL_ENDOFWHO, &["*", "End of /WHO list"]),
            _ => self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &[command, "Not enough parameters"],
            ),
        }
        true
    }

    /// A line that did not parse gets the numeric for what is wrong.
    fn bad_line(&self, error: LineError, queue: &mut VecDeque<Inbound>) {
        let text = format!("Malformed line: {error}");
        // UTF8ONLY: with standard-replies, the spec's FAIL.
        if error == LineError::InvalidUtf8 && self.caps.has(STANDARD_REPLIES) {
            return self.local(queue, |out, _| {
                Line::new(Some(server()), "FAIL", &["*", "INVALID_UTF8", &text])
                    .text()
                    .write(out)
            });
        }
        let code = match error {
            LineError::BodyTooLong | LineError::TagsTooLong => ERR_INPUTTOOLONG,
            LineError::NoCommand | LineError::BadCommand => ERR_UNKNOWNCOMMAND,
            _ => ERR_UNKNOWNERROR,
        };
        match code {
            ERR_INPUTTOOLONG => self.numeric(queue, code, &["Input line was too long"]),
            _ => self.numeric(queue, code, &["*", &text]),
        }
    }

    /// Splits `a,b,c` into at most [`MAX_TARGETS`] targets; the rest get 407.
    fn targets<'a>(
        &self,
        list: &'a str,
        command: &str,
        queue: &mut VecDeque<Inbound>,
    ) -> Vec<&'a str> {
        let mut all: Vec<&str> = list.split(',').filter(|t| !t.is_empty()).collect();
        if all.len() > MAX_TARGETS {
            for extra in all.drain(MAX_TARGETS..) {
                if command == "NOTICE" {
                    continue;
                }
                let text = format!("Too many targets: {command} takes at most {MAX_TARGETS}");
                self.numeric(queue, ERR_TOOMANYTARGETS, &[extra, &text]);
            }
        }
        all
    }
}
