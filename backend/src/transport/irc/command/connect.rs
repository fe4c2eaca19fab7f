//! Commands about the connection itself, allowed before registration:
//! CAP, PING, PONG, QUIT, and registration's PASS, USER, NICK and SASL's
//! AUTHENTICATE. They move the [`Registration`] state machine; once it
//! says `hello` may go, the session is asked to log in.

use std::collections::VecDeque;

use banter_protocol::{ClientMessage, Nick};

use super::super::Client;
use super::super::asked::Asked;
use super::super::caps::{self, Caps};
use super::super::line::Line;
use super::super::numeric::*;
use super::super::registration::{Hello, Registration, SaslStep};
use crate::session::{Inbound, Verify};

impl Client {
    /// CAP, PING, PONG, QUIT, PASS, USER, NICK or AUTHENTICATE.
    pub(super) fn connection_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let command = line.command.as_str();
        match command {
            "CAP" => self.cap(line, queue),
            "PING" => match line.param(0) {
                Some(token) => self.local(queue, |out, _| {
                    Line::new(Some(server()), "PONG", &[server(), token])
                        .text()
                        .write(out)
                }),
                None => self.numeric(queue, ERR_NOORIGIN, &["No origin specified"]),
            },
            "QUIT" => self.rare().quit = Some(line.param(0).unwrap_or("").trim().into()),
            "PASS" | "USER" if self.nick.is_some() => {
                self.numeric(queue, ERR_ALREADYREGISTERED, &["You may not reregister"])
            }
            "PASS" | "USER" if self.missing_params(line, queue) => {}
            "PASS" => {
                if let Some(reg) = self.registration() {
                    reg.on_pass(&line.params[0]);
                }
            }
            // The username and the real name may not be empty (the spec's
            // 461); both are kept for WHOIS and WHO (prefixes show the
            // nick!nick@banter cloak).
            "USER" if line.params[0].is_empty() || line.params[3].is_empty() => self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &["USER", "Not enough parameters"],
            ),
            "USER" => {
                if let Some(reg) = self.registration() {
                    reg.on_user(&line.params[0], &line.params[3]);
                }
                self.try_register(queue);
            }
            "NICK" => self.nick_command(line, queue),
            "AUTHENTICATE" => self.authenticate(line, queue),
            // PONG answers our PING; the line itself kept the link alive.
            _ => {}
        }
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

    /// Sends `hello` once registration says it may go.
    fn try_register(&mut self, queue: &mut VecDeque<Inbound>) {
        let Some(Hello {
            nick,
            password,
            username,
            realname,
        }) = self.registration().and_then(Registration::hello)
        else {
            return;
        };
        let body = ClientMessage::Hello {
            nick: nick.clone(),
            password,
            token: None,
            realname: Some(realname),
            username: Some(username),
            bot: false,
        };
        self.request(queue, body, Asked::Hello(nick));
    }

    fn cap(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Some(sub) = line.param(0) else {
            return self.numeric(queue, ERR_NEEDMOREPARAMS, &["CAP", "Not enough parameters"]);
        };
        let sub = sub.to_ascii_uppercase();
        let answer = |client: &Self, queue: &mut VecDeque<Inbound>, params: &[&str]| {
            client.local(queue, |out, me| {
                let mut all = vec![me];
                all.extend_from_slice(params);
                Line::new(Some(server()), "CAP", &all).text().write(out)
            })
        };
        match sub.as_str() {
            "LS" => {
                if let Some(reg) = self.registration() {
                    reg.on_cap_negotiation();
                }
                // Version 302 and later: values, and cap-notify implied.
                let version = line.param(1).and_then(|v| v.parse::<u32>().ok());
                if version.is_some_and(|v| v >= 302) {
                    self.caps = self.caps.with(caps::CAP_NOTIFY);
                    let values = caps::offered_302(self.info.max_text_bytes, self.info.max_lines);
                    answer(self, queue, &["LS", &values]);
                } else {
                    answer(self, queue, &["LS", &caps::offered()]);
                }
            }
            "LIST" => answer(self, queue, &["LIST", &self.caps.names()]),
            "REQ" => {
                if let Some(reg) = self.registration() {
                    reg.on_cap_negotiation();
                }
                let wanted = line.param(1).unwrap_or("");
                let ack = match Caps::request(self.caps, wanted) {
                    Some(caps) => {
                        self.caps = caps;
                        "ACK"
                    }
                    None => "NAK",
                };
                answer(self, queue, &[ack, wanted]);
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
                self.numeric(queue, ERR_SASLABORTED, &["SASL authentication aborted"])
            }
            SaslStep::Challenge => self.local(queue, |out, _| {
                Line::new(None, "AUTHENTICATE", &["+"]).write(out)
            }),
            SaslStep::Unsupported => {
                self.numeric(
                    queue,
                    RPL_SASLMECHS,
                    &["PLAIN", "are available SASL mechanisms"],
                );
                self.numeric(queue, ERR_SASLFAIL, &["SASL authentication failed"]);
            }
            SaslStep::Payload => self.sasl_payload(arg, queue),
        }
    }

    /// SASL PLAIN's payload: its account and password go to be checked.
    fn sasl_payload(&mut self, arg: &str, queue: &mut VecDeque<Inbound>) {
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
            oper: false,
        })));
        if let Some(reg) = self.registration() {
            reg.sasl_checking(account, password.to_string());
        }
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
