//! Incoming IRC commands: registration (CAP, PASS, NICK, USER), and every
//! command after it, each turned into protocol requests for the shared
//! session, or answered here when the answer needs no router (PING, MODE,
//! CAP, errors in the line itself). A request carries a `ref` naming the
//! command and its target (`"PRIVMSG #lobby"`), so that its reply or error
//! can be rendered as the right numeric (see `render`).

use std::collections::VecDeque;

use banter_protocol::{
    ACTION_PREFIX, ClientMessage, Envelope, MAX_REASON_BYTES, MAX_USERS_QUERY, Nick, RoomName,
};
use bytes::Bytes;

use super::Client;
use super::asked::Asked;
use super::caps::{self, Caps};
use super::registration::{Hello, Registration, SaslStep};

use super::line::{Line, LineError};
use super::numeric::*;
use crate::core::frame::Frame;
use crate::session::{Inbound, Verify};

/// Most targets one JOIN, PART, PRIVMSG, NOTICE, NAMES or WHOIS may name.
pub const MAX_TARGETS: usize = 10;

/// A channel name as a room: `#lobby` is room `lobby`.
pub fn room_of(channel: &str) -> Result<RoomName, &'static str> {
    let Some(name) = channel.strip_prefix('#') else {
        return Err(ERR_NOSUCHCHANNEL);
    };
    RoomName::new(name).map_err(|_| ERR_BADCHANNAME)
}

/// Most nicks one USERHOST asks about (RFC 2812).
pub const MAX_USERHOST: usize = 5;

/// `text` cut to at most `max` bytes, on a character boundary.
fn clip(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A CTCP message that is not an ACTION.
fn is_ctcp_query(text: &str) -> bool {
    text.starts_with('\x01') && !text.starts_with("\x01ACTION")
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
        queue.push_back(Inbound::Reply(Frame::local(Bytes::from(out))));
    }

    fn numeric(&self, queue: &mut VecDeque<Inbound>, code: &str, params: &[&str]) {
        self.local(queue, |out, me| reply(out, code, me, params));
    }

    /// Queues a request for the session; its replies find `asked` by ref.
    fn request(&mut self, queue: &mut VecDeque<Inbound>, body: ClientMessage, asked: Asked) {
        let reference = self.asked.ask(asked);
        queue.push_back(Inbound::Request(Box::new(Envelope::with_ref(
            body,
            Some(reference),
        ))));
    }

    /// Handles one line from the client.
    pub fn on_line(&mut self, bytes: &[u8], queue: &mut VecDeque<Inbound>) {
        let line = match Line::parse(bytes) {
            Ok(line) => line,
            Err(e) => return self.bad_line(e, queue),
        };
        let registered = self.nick.is_some();
        let command = line.command.as_str();
        let need = |n: usize| line.params.len() < n;
        match command {
            "CAP" => self.cap(&line, queue),
            "PING" => match line.param(0) {
                Some(token) => self.local(queue, |out, _| {
                    Line::new(Some(SERVER), "PONG", &[SERVER, token])
                        .text()
                        .write(out)
                }),
                None => self.numeric(queue, ERR_NOORIGIN, &["No origin specified"]),
            },
            "PONG" => {}
            "QUIT" => self.quit = Some(line.param(0).unwrap_or("").trim().into()),
            "PASS" | "USER" if registered => {
                self.numeric(queue, ERR_ALREADYREGISTERED, &["You may not reregister"])
            }
            "PASS" | "USER" if need(if command == "USER" { 4 } else { 1 }) => self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &[command, "Not enough parameters"],
            ),
            "PASS" => {
                if let Some(reg) = self.registration() {
                    reg.on_pass(&line.params[0]);
                }
            }
            "USER" => {
                if let Some(reg) = self.registration() {
                    reg.on_user();
                }
                self.try_register(queue);
            }
            "NICK" => self.nick_command(&line, queue),
            "AUTHENTICATE" => self.authenticate(&line, queue),
            _ if !registered => self.numeric(
                queue,
                ERR_NOTREGISTERED,
                &["You have not registered (send NICK and USER)"],
            ),
            "KICK" if need(2) => self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &[command, "Not enough parameters"],
            ),
            "CHATHISTORY" if need(4) => self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &[command, "Not enough parameters"],
            ),
            // Lenient like common servers: the whole list is too much to
            // send, so NAMES and WHO without a target are just the end.
            "NAMES" if need(1) => self.numeric(queue, RPL_ENDOFNAMES, &["*", "End of /NAMES list"]),
            "WHO" if need(1) => self.numeric(queue, RPL_ENDOFWHO, &["*", "End of /WHO list"]),
            "JOIN" | "PART" | "TOPIC" | "WHOIS" | "MODE" | "ISON" | "USERHOST" if need(1) => {
                if command == "WHOIS" {
                    self.numeric(queue, ERR_NONICKNAMEGIVEN, &["No nickname given"])
                } else {
                    self.numeric(
                        queue,
                        ERR_NEEDMOREPARAMS,
                        &[command, "Not enough parameters"],
                    )
                }
            }
            "JOIN" if line.params[0] == "0" => {
                let rooms: Vec<RoomName> = self.channels.iter().map(|c| c.room.clone()).collect();
                for room in rooms {
                    self.request(
                        queue,
                        ClientMessage::Part {
                            room: room.clone(),
                            reason: None,
                        },
                        Asked::Part(room),
                    );
                }
            }
            "JOIN" | "PART" => {
                // JOIN's second parameter is keys (rooms have none).
                let reason = line
                    .param(1)
                    .filter(|_| command == "PART")
                    .map(|r| clip(r, MAX_REASON_BYTES).to_string());
                for channel in self.targets(&line.params[0], command, queue) {
                    match room_of(channel) {
                        Ok(room) => {
                            let (body, asked) = if command == "JOIN" {
                                (
                                    ClientMessage::Join { room: room.clone() },
                                    Asked::Join(room),
                                )
                            } else {
                                let reason = reason.clone();
                                (
                                    ClientMessage::Part {
                                        room: room.clone(),
                                        reason,
                                    },
                                    Asked::Part(room),
                                )
                            };
                            self.request(queue, body, asked);
                        }
                        Err(code) => self.numeric(
                            queue,
                            code,
                            &[
                                channel,
                                "No such channel (channels are # and a room name: a-z 0-9 - _)",
                            ],
                        ),
                    }
                }
            }
            "PRIVMSG" | "NOTICE" if need(1) => self.numeric(
                queue,
                ERR_NORECIPIENT,
                &[&format!("No recipient given ({command})")],
            ),
            "PRIVMSG" | "NOTICE" if need(2) || line.params[1].is_empty() => {
                self.numeric(queue, ERR_NOTEXTTOSEND, &["No text to send"])
            }
            // CTCP other than ACTION (VERSION, PING, their NOTICE replies)
            // is not relayed: web users can't answer it, and a reply
            // delivered as a message would be taken for a new request.
            "PRIVMSG" | "NOTICE" if is_ctcp_query(&line.params[1]) => {}
            "PRIVMSG" | "NOTICE" => {
                let text = text_of(&line.params[1]);
                let notice = command == "NOTICE";
                for target in self.targets(&line.params[0], command, queue) {
                    let asked = if notice {
                        Asked::Notice(target.into())
                    } else {
                        Asked::Privmsg(target.into())
                    };
                    if target.starts_with('#') {
                        match room_of(target) {
                            Ok(room) => self.request(
                                queue,
                                ClientMessage::Say {
                                    room,
                                    text: text.clone(),
                                    notice,
                                },
                                asked,
                            ),
                            Err(_) => {
                                self.numeric(queue, ERR_NOSUCHCHANNEL, &[target, "No such channel"])
                            }
                        }
                    } else {
                        match Nick::new(target) {
                            Ok(to) => self.request(
                                queue,
                                ClientMessage::Whisper {
                                    to,
                                    text: text.clone(),
                                    notice,
                                },
                                asked,
                            ),
                            Err(_) => self.numeric(
                                queue,
                                ERR_NOSUCHNICK,
                                &[target, "No such nick/channel"],
                            ),
                        }
                    }
                }
            }
            "TOPIC" => match room_of(&line.params[0]) {
                Ok(room) => match line.param(1) {
                    Some(text) => self.request(
                        queue,
                        ClientMessage::Topic {
                            room: room.clone(),
                            text: Some(text.to_string()),
                        },
                        Asked::Topic(room),
                    ),
                    None => self.request(
                        queue,
                        ClientMessage::Topic {
                            room: room.clone(),
                            text: None,
                        },
                        Asked::TopicQuery(room),
                    ),
                },
                Err(_) => self.numeric(
                    queue,
                    ERR_NOSUCHCHANNEL,
                    &[&line.params[0], "No such channel"],
                ),
            },
            "NAMES" => {
                for channel in self.targets(&line.params[0], command, queue) {
                    match room_of(channel) {
                        Ok(room) => {
                            let body = ClientMessage::Members { room: room.clone() };
                            self.request(queue, body, Asked::Names(room))
                        }
                        Err(_) => {
                            self.numeric(queue, RPL_ENDOFNAMES, &[channel, "End of /NAMES list"])
                        }
                    }
                }
            }
            "LIST" => {
                let filter = line.param(0).filter(|f| f.len() < 50).unwrap_or("*");
                self.request(queue, ClientMessage::Rooms, Asked::List(filter.into()));
            }
            "WHO" => {
                let mask = line.params[0].as_str();
                if let Ok(room) = room_of(mask) {
                    let body = ClientMessage::Members { room: room.clone() };
                    self.request(queue, body, Asked::WhoRoom(room));
                } else if let Ok(nick) = Nick::new(mask) {
                    let body = ClientMessage::Whois { nick: nick.clone() };
                    self.request(queue, body, Asked::WhoNick(nick));
                } else {
                    self.numeric(queue, RPL_ENDOFWHO, &[mask, "End of /WHO list"]);
                }
            }
            "WHOIS" => {
                // `WHOIS server nick` asks a given server; there is one.
                let nicks = line.params.last().expect("checked");
                for target in self.targets(nicks, command, queue) {
                    match Nick::new(target) {
                        Ok(nick) => self.request(
                            queue,
                            ClientMessage::Whois { nick: nick.clone() },
                            Asked::Whois(nick),
                        ),
                        Err(_) => self.local(queue, |out, me| {
                            reply(out, ERR_NOSUCHNICK, me, &[target, "No such nick/channel"]);
                            reply(out, RPL_ENDOFWHOIS, me, &[target, "End of /WHOIS list"]);
                        }),
                    }
                }
            }
            // `ISON a b c` or `ISON :a b c`; USERHOST takes up to five.
            "ISON" | "USERHOST" => {
                let most = if command == "ISON" {
                    MAX_USERS_QUERY
                } else {
                    MAX_USERHOST
                };
                let nicks: Vec<Nick> = line
                    .params
                    .iter()
                    .flat_map(|p| p.split(' '))
                    .filter_map(|n| Nick::new(n).ok())
                    .take(most)
                    .collect();
                let asked = if command == "ISON" {
                    Asked::Ison
                } else {
                    Asked::Userhost
                };
                self.request(queue, ClientMessage::Users { nicks }, asked);
            }
            "AWAY" => {
                let message = line.param(0).filter(|m| !m.is_empty()).map(str::to_string);
                self.request(queue, ClientMessage::Away { message }, Asked::Away);
            }
            // message-tags: client-only tags are not relayed, so a TAGMSG
            // (typing notices and the like) has nothing to carry.
            "TAGMSG" => {}
            "MODE" => self.mode(&line, queue),
            "MOTD" => self.local(queue, motd),
            "VERSION" => self.numeric(
                queue,
                RPL_VERSION,
                &[
                    concat!("banter-", env!("CARGO_PKG_VERSION")),
                    SERVER,
                    "Banter chat server",
                ],
            ),
            "KICK" => match room_of(&line.params[0]) {
                Ok(room) => {
                    let reason = line.param(2).map(str::to_string);
                    for target in self.targets(&line.params[1], command, queue) {
                        match Nick::new(target) {
                            Ok(nick) => self.request(
                                queue,
                                ClientMessage::Kick {
                                    room: room.clone(),
                                    nick,
                                    reason: reason.clone(),
                                },
                                Asked::Kick(room.clone()),
                            ),
                            Err(_) => self.numeric(
                                queue,
                                ERR_NOSUCHNICK,
                                &[target, "No such nick/channel"],
                            ),
                        }
                    }
                }
                Err(_) => self.numeric(
                    queue,
                    ERR_NOSUCHCHANNEL,
                    &[&line.params[0], "No such channel"],
                ),
            },
            "CHATHISTORY" => self.chathistory(&line, queue),
            "INVITE" => self.numeric(
                queue,
                ERR_CHANOPRIVSNEEDED,
                &[
                    line.param(0).unwrap_or("*"),
                    "Rooms are open to all; there is nothing to invite to",
                ],
            ),
            _ => self.numeric(queue, ERR_UNKNOWNCOMMAND, &[command, "Unknown command"]),
        }
    }

    /// A line that did not parse gets the numeric for what is wrong.
    fn bad_line(&self, error: LineError, queue: &mut VecDeque<Inbound>) {
        let text = format!("Malformed line: {error}");
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
                let text = format!("Too many targets: {command} takes at most {MAX_TARGETS}");
                self.numeric(queue, ERR_TOOMANYTARGETS, &[extra, &text]);
            }
        }
        all
    }

    fn nick_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(wanted) = line.param(0).filter(|n| !n.is_empty()) else {
            return self.numeric(queue, ERR_NONICKNAMEGIVEN, &["No nickname given"]);
        };
        let Ok(nick) = Nick::new(wanted) else {
            return self.numeric(queue, ERR_ERRONEUSNICKNAME, &[wanted, "Erroneous nickname: 1-24 of a-z A-Z 0-9 - [ ] \\ ` _ ^ { | }, not starting with a digit or -"]);
        };
        match &self.nick {
            Some(current) if current.as_str() == nick.as_str() => {}
            Some(_) => {
                let body = ClientMessage::Nick { nick: nick.clone() };
                self.request(queue, body, Asked::Nick(nick))
            }
            None => {
                if let Some(reg) = self.registration() {
                    reg.on_nick(nick);
                }
                self.try_register(queue);
            }
        }
    }

    /// Sends `hello` once NICK and USER are in and CAP negotiation is over.
    pub(super) fn try_register(&mut self, queue: &mut VecDeque<Inbound>) {
        let Some(Hello { nick, password }) = self.registration().and_then(Registration::hello)
        else {
            return;
        };
        let body = ClientMessage::Hello {
            nick: nick.clone(),
            password,
            token: None,
        };
        self.request(queue, body, Asked::Hello(nick));
    }

    fn cap(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(sub) = line.param(0) else {
            return self.numeric(queue, ERR_NEEDMOREPARAMS, &["CAP", "Not enough parameters"]);
        };
        let sub = sub.to_ascii_uppercase();
        match sub.as_str() {
            "LS" => {
                if let Some(reg) = self.registration() {
                    reg.on_cap_negotiation();
                }
                self.local(queue, |out, me| {
                    Line::new(Some(SERVER), "CAP", &[me, "LS", &caps::offered()])
                        .text()
                        .write(out)
                });
            }
            "LIST" => {
                let enabled = self.caps.names();
                self.local(queue, |out, me| {
                    Line::new(Some(SERVER), "CAP", &[me, "LIST", &enabled])
                        .text()
                        .write(out)
                });
            }
            "REQ" => {
                if let Some(reg) = self.registration() {
                    reg.on_cap_negotiation();
                }
                let wanted = line.param(1).unwrap_or("");
                let answer = match Caps::request(self.caps, wanted) {
                    Some(caps) => {
                        self.caps = caps;
                        "ACK"
                    }
                    None => "NAK",
                };
                self.local(queue, |out, me| {
                    Line::new(Some(SERVER), "CAP", &[me, answer, wanted])
                        .text()
                        .write(out)
                });
            }
            "END" => {
                if let Some(reg) = self.registration() {
                    reg.on_cap_end();
                }
                self.try_register(queue);
            }
            _ => self.numeric(queue, ERR_INVALIDCAPCMD, &[&sub, "Invalid CAP command"]),
        }
    }

    fn mode(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let target = line.params[0].as_str();
        let change = line.param(1);
        if target.starts_with('#') {
            let channel = match room_of(target) {
                Ok(room) => format!("#{room}"),
                Err(_) => {
                    return self.numeric(queue, ERR_NOSUCHCHANNEL, &[target, "No such channel"]);
                }
            };
            let room = room_of(&channel).expect("checked");
            let asked_room = room.clone();
            let arg = line.param(2);
            match (change, arg) {
                (None, _) => self.numeric(queue, RPL_CHANNELMODEIS, &[&channel, "+n"]),
                (Some("b" | "+b"), None) => self.request(
                    queue,
                    ClientMessage::Bans { room: room.clone() },
                    Asked::Mode(room),
                ),
                (Some(sign @ ("+b" | "-b")), Some(mask)) => {
                    let (nick, account) = match mask.strip_prefix("$a:") {
                        Some(account) => (None, Nick::new(account).ok()),
                        None => (Nick::new(mask.split('!').next().unwrap_or("")).ok(), None),
                    };
                    if nick.is_none() && account.is_none() {
                        return self.numeric(
                            queue,
                            ERR_NEEDMOREPARAMS,
                            &["MODE", "A ban mask is nick, nick!*@* or $a:account"],
                        );
                    }
                    let body = if sign == "+b" {
                        ClientMessage::Ban {
                            room,
                            nick,
                            account,
                        }
                    } else {
                        ClientMessage::Unban {
                            room,
                            nick,
                            account,
                        }
                    };
                    self.request(queue, body, Asked::Mode(asked_room));
                }
                (Some(sign @ ("+o" | "-o")), Some(target)) => match Nick::new(target) {
                    Ok(account) => {
                        let body = if sign == "+o" {
                            ClientMessage::Op { room, account }
                        } else {
                            ClientMessage::Deop { room, account }
                        };
                        self.request(queue, body, Asked::Mode(asked_room));
                    }
                    Err(_) => self.numeric(queue, ERR_NOSUCHNICK, &[target, "No such nick"]),
                },
                (Some("+o" | "-o" | "-b"), None) => self.numeric(
                    queue,
                    ERR_NEEDMOREPARAMS,
                    &["MODE", "Not enough parameters"],
                ),
                (Some("e" | "+e"), _) => self.numeric(
                    queue,
                    RPL_ENDOFEXCEPTLIST,
                    &[&channel, "End of channel exception list"],
                ),
                (Some("I" | "+I"), _) => self.numeric(
                    queue,
                    RPL_ENDOFINVITELIST,
                    &[&channel, "End of channel invite list"],
                ),
                (Some(other), _) => self.numeric(
                    queue,
                    ERR_UNKNOWNMODE,
                    &[other, "Only +b, -b, +o and -o change here"],
                ),
            }
        } else if !target.eq_ignore_ascii_case(self.me()) {
            self.numeric(
                queue,
                ERR_USERSDONTMATCH,
                &["Can't view or change modes for other users"],
            );
        } else {
            match change {
                None => self.numeric(queue, RPL_UMODEIS, &["+i"]),
                Some("+i" | "-i" | "i") => {}
                Some(_) => self.numeric(
                    queue,
                    ERR_UMODEUNKNOWNFLAG,
                    &["Unknown MODE flag (only +i, always set)"],
                ),
            }
        }
    }
}

impl Client {
    /// SASL PLAIN: `AUTHENTICATE PLAIN`, then the base64 of
    /// `authzid NUL account NUL password`. The password is checked at once;
    /// registration then logs into that account.
    fn authenticate(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(arg) = line.param(0) else {
            return self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &["AUTHENTICATE", "Not enough parameters"],
            );
        };
        let Some(reg) = self.registration() else {
            return self.numeric(queue, ERR_ALREADYREGISTERED, &["You may not reregister"]);
        };
        match reg.on_authenticate(arg) {
            SaslStep::Aborted => {
                return self.numeric(queue, ERR_SASLABORTED, &["SASL authentication aborted"]);
            }
            SaslStep::Challenge => {
                return self.local(queue, |out, _| {
                    Line::new(None, "AUTHENTICATE", &["+"]).write(out)
                });
            }
            SaslStep::Unsupported => {
                self.numeric(
                    queue,
                    RPL_SASLMECHS,
                    &["PLAIN", "are available SASL mechanisms"],
                );
                return self.numeric(queue, ERR_SASLFAIL, &["SASL authentication failed"]);
            }
            SaslStep::Payload => {}
        }
        let decoded = base64_decode(arg).and_then(|b| String::from_utf8(b).ok());
        let parts: Vec<&str> = decoded.as_deref().unwrap_or("").split('\0').collect();
        let (Some(account), Some(password)) = (parts.get(1), parts.get(2)) else {
            return self.numeric(queue, ERR_SASLFAIL, &["SASL authentication failed"]);
        };
        let Ok(account) = Nick::new(*account) else {
            return self.numeric(queue, ERR_SASLFAIL, &["SASL authentication failed"]);
        };
        queue.push_back(Inbound::Verify(Box::new(Verify {
            account: account.clone(),
            password: password.to_string(),
            reference: Some(self.asked.ask(Asked::Sasl(account.clone()))),
        })));
        if let Some(reg) = self.registration() {
            reg.sasl_checking(account, password.to_string());
        }
    }

    /// `CHATHISTORY LATEST|BEFORE|AFTER #room <* | msgid=… | timestamp=…> <limit>`.
    fn chathistory(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let sub = line.params[0].to_ascii_uppercase();
        let room = match room_of(&line.params[1]) {
            Ok(room) => room,
            Err(_) => {
                return self.fail(queue, "CHATHISTORY INVALID_TARGET", &line.params[1]);
            }
        };
        let limit = line.params[3].parse::<u32>().unwrap_or(50);
        let point = line.params[2].as_str();
        let (id, ts) = if point == "*" {
            (None, None)
        } else if let Some(msgid) = point.strip_prefix("msgid=") {
            match msgid
                .rsplit_once('-')
                .and_then(|(_, id)| id.split('.').next()?.parse().ok())
            {
                Some(id) => (Some(id), None),
                None => return self.fail(queue, "CHATHISTORY INVALID_PARAMS", point),
            }
        } else if let Some(time) = point.strip_prefix("timestamp=") {
            match parse_time(time) {
                Some(ts) => (None, Some(ts)),
                None => return self.fail(queue, "CHATHISTORY INVALID_PARAMS", point),
            }
        } else {
            return self.fail(queue, "CHATHISTORY INVALID_PARAMS", point);
        };
        let (before, after, before_ts, after_ts) = match sub.as_str() {
            "LATEST" => (None, id, None, ts),
            "BEFORE" => (id, None, ts, None),
            "AFTER" => (None, id, None, ts),
            _ => return self.fail(queue, "CHATHISTORY INVALID_PARAMS", &sub),
        };
        self.request(
            queue,
            ClientMessage::History {
                room: room.clone(),
                before,
                after,
                limit: Some(limit),
                before_ts,
                after_ts,
                latest: sub == "LATEST",
            },
            Asked::Chathistory(room),
        );
    }

    /// A standard reply: `FAIL <command> <code> <context> :text`.
    fn fail(&self, queue: &mut VecDeque<Inbound>, what: &str, about: &str) {
        let (command, code) = what.split_once(' ').unwrap_or((what, "FAILED"));
        self.local(queue, |out, _| {
            Line::new(
                Some(SERVER),
                "FAIL",
                &[command, code, about, "Cannot do that"],
            )
            .text()
            .write(out)
        });
    }
}

/// Standard base64 (with or without padding); `None` if malformed.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = acc << 6 | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
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

/// The message of the day: short, and about what is special here.
pub fn motd(out: &mut Vec<u8>, me: &str) {
    reply(
        out,
        RPL_MOTDSTART,
        me,
        &[&format!("- {SERVER} Message of the day -")],
    );
    for text in [
        "- Welcome to Banter. Rooms are channels: /join #lobby",
        "- Web and IRC users share the same rooms and nicks.",
        "- History is kept; CHATHISTORY and SASL PLAIN (or PASS) work.",
    ] {
        reply(out, RPL_MOTD, me, &[text]);
    }
    reply(out, RPL_ENDOFMOTD, me, &["End of /MOTD command."]);
}
