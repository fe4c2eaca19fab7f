//! Questions about users and the server: WHO, WHOIS, ISON, USERHOST and
//! AWAY go to the router; MOTD, VERSION, TIME, ADMIN, INFO and WHOWAS are
//! answered here (the server keeps no record of nicks gone: WHOWAS always
//! says there was none).

use std::collections::VecDeque;

use banter_protocol::{ClientMessage, MAX_USERS_QUERY, Nick};

use super::super::Client;
use super::super::asked::{Asked, Monitor};
use super::super::line::Line;
use super::super::numeric::*;
use super::{MAX_USERHOST, room_of};
use crate::session::Inbound;

impl Client {
    /// WHO, WHOIS, ISON, USERHOST, AWAY, MOTD or VERSION.
    pub(super) fn query_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        match line.command.as_str() {
            "WHO" => self.who(&line.params[0], line.param(1), queue),
            "WHOIS" => {
                // `WHOIS server nick` asks a given server; there is one.
                let nicks = line.params.last().expect("checked");
                for target in self.targets(nicks, "WHOIS", queue) {
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
            "ISON" => self.users_query(line, MAX_USERS_QUERY, Asked::Ison, queue),
            "USERHOST" => self.users_query(line, MAX_USERHOST, Asked::Userhost, queue),
            // setname: a new real name; FAIL if blank (or, from the
            // router, too long).
            "SETNAME" => match line.param(0).filter(|r| !r.trim().is_empty()) {
                Some(realname) => {
                    let body = ClientMessage::Profile {
                        realname: Some(realname.to_string()),
                        bot: None,
                    };
                    self.request(queue, body, Asked::Setname);
                }
                None => self.local(queue, |out, _| {
                    let why = "The real name may not be empty";
                    Line::new(
                        Some(server()),
                        "FAIL",
                        &["SETNAME", "INVALID_REALNAME", why],
                    )
                    .text()
                    .write(out)
                }),
            },
            "MONITOR" => self.monitor(line, queue),
            "AWAY" => {
                let message = line
                    .param(0)
                    .filter(|m| !m.is_empty())
                    .map(|m| super::clip(m, banter_protocol::MAX_AWAY_BYTES).to_string());
                self.request(queue, ClientMessage::Away { message }, Asked::Away);
            }
            "MOTD" => self.local(queue, motd),
            "VERSION" => self.numeric(
                queue,
                RPL_VERSION,
                &[
                    concat!("banter-", env!("CARGO_PKG_VERSION")),
                    server(),
                    "Banter chat server",
                ],
            ),
            "LUSERS" => {
                let counts = self.info.router.lusers();
                self.local(queue, |out, me| lusers(out, me, counts));
            }
            "TIME" => {
                let now = crate::core::router::now_ms();
                let secs = (now / 1000).to_string();
                let human = iso_time(now);
                self.numeric(queue, RPL_TIME, &[server(), &secs, "0", &human]);
            }
            "ADMIN" => self.local(queue, |out, me| {
                reply(out, RPL_ADMINME, me, &[server(), "Administrative info"]);
                reply(out, RPL_ADMINLOC1, me, &["Banter chat server"]);
                reply(
                    out,
                    RPL_ADMINLOC2,
                    me,
                    &["Its administrators use OPER with their accounts"],
                );
                reply(out, RPL_ADMINEMAIL, me, &["-"]);
            }),
            "INFO" => self.local(queue, |out, me| {
                for text in [
                    concat!("Banter ", env!("CARGO_PKG_VERSION")),
                    "One chat server for web, JSON-lines and IRC clients, in the same rooms.",
                    "Source and documentation: the project's README and docs/.",
                ] {
                    reply(out, RPL_INFO, me, &[text]);
                }
                reply(out, RPL_ENDOFINFO, me, &["End of /INFO list"]);
            }),
            "WHOWAS" => match line.param(0).filter(|n| !n.is_empty()) {
                None => self.numeric(queue, ERR_NONICKNAMEGIVEN, &["No nickname given"]),
                Some(nicks) => {
                    let nicks = nicks.to_string();
                    self.local(queue, |out, me| {
                        for nick in nicks.split(',').filter(|n| !n.is_empty()) {
                            reply(
                                out,
                                ERR_WASNOSUCHNICK,
                                me,
                                &[nick, "There was no such nickname"],
                            );
                            reply(out, RPL_ENDOFWHOWAS, me, &[nick, "End of WHOWAS"]);
                        }
                    });
                }
            },
            _ => {}
        }
    }

    /// `WHO #room` lists its members; `WHO nick` is one user.
    /// `WHO <#channel|nick> [%fields[,token]]` (the second: WHOX; a token
    /// is at most 3 digits, as the spec has it).
    fn who(&mut self, mask: &str, whox: Option<&str>, queue: &mut VecDeque<Inbound>) {
        let whox = whox
            .and_then(|w| w.strip_prefix('%'))
            .filter(|w| {
                let (fields, token) = w.split_once(',').unwrap_or((w, ""));
                fields.chars().all(|c| "tcuihsnfdlaor".contains(c))
                    && token.len() <= 3
                    && token.chars().all(|c| c.is_ascii_digit())
            })
            .map(Into::into);
        if mask.contains(['*', '?']) && !mask.starts_with('#') {
            let body = ClientMessage::Who {
                mask: mask.to_string(),
            };
            self.request(queue, body, Asked::WhoMask(mask.into(), whox));
        } else if let Ok(room) = room_of(mask) {
            let body = ClientMessage::Members { room: room.clone() };
            self.request(queue, body, Asked::WhoRoom(room, whox));
        } else if let Ok(nick) = Nick::new(mask) {
            let body = ClientMessage::Whois { nick: nick.clone() };
            self.request(queue, body, Asked::WhoNick(nick, whox));
        } else {
            self.numeric(queue, RPL_ENDOFWHO, &[mask, "End of /WHO list"]);
        }
    }

    /// `MONITOR + a,b`, `- a,b`, `C`, `L` or `S` (the IRCv3 spec).
    fn monitor(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let sub = line.params[0].to_ascii_uppercase();
        let targets = line.param(1).unwrap_or("");
        let nicks: Vec<Nick> = targets
            .split(',')
            .filter_map(|n| Nick::new(n).ok())
            .collect();
        let (body, asked) = match sub.as_str() {
            "+" | "-" if targets.is_empty() => {
                return self.numeric(
                    queue,
                    ERR_NEEDMOREPARAMS,
                    &["MONITOR", "Not enough parameters"],
                );
            }
            // Nothing valid to add: nothing to say.
            "+" if nicks.is_empty() => return,
            "+" => {
                let named: Vec<&str> = nicks.iter().map(Nick::as_str).collect();
                let named = named.join(",").into();
                (ClientMessage::Watch { nicks }, Monitor::Add(named))
            }
            "-" if nicks.is_empty() => return,
            "-" => (ClientMessage::Unwatch { nicks }, Monitor::Remove),
            "C" => (
                ClientMessage::Unwatch { nicks: Vec::new() },
                Monitor::Remove,
            ),
            "L" | "S" => (
                ClientMessage::Watch { nicks: Vec::new() },
                if sub == "L" {
                    Monitor::List
                } else {
                    Monitor::Status
                },
            ),
            other => {
                let why = format!("Unknown MONITOR subcommand {other}");
                return self.numeric(queue, ERR_UNKNOWNCOMMAND, &["MONITOR", &why]);
            }
        };
        self.request(queue, body, Asked::Monitor(asked));
    }

    /// `ISON a b c` or `ISON :a b c`, up to `most` nicks; USERHOST alike.
    fn users_query(
        &mut self,
        line: &Line,
        most: usize,
        asked: Asked,
        queue: &mut VecDeque<Inbound>,
    ) {
        let nicks: Vec<Nick> = line
            .params
            .iter()
            .flat_map(|p| p.split(' '))
            .filter_map(|n| Nick::new(n).ok())
            .take(most)
            .collect();
        self.request(queue, ClientMessage::Users { nicks }, asked);
    }
}

/// The message of the day: short, and about what is special here.
/// LUSERS' answer (251 to 255, 265, 266), also sent at registration.
pub fn lusers(out: &mut Vec<u8>, me: &str, n: crate::core::router::Lusers) {
    let users = n.users.to_string();
    reply(
        out,
        RPL_LUSERCLIENT,
        me,
        &[&format!(
            "There are {users} users and 0 invisible on {} servers",
            n.servers
        )],
    );
    reply(
        out,
        RPL_LUSEROP,
        me,
        &[&n.operators.to_string(), "operator(s) online"],
    );
    reply(out, RPL_LUSERUNKNOWN, me, &["0", "unknown connection(s)"]);
    reply(
        out,
        RPL_LUSERCHANNELS,
        me,
        &[&n.channels.to_string(), "channels formed"],
    );
    reply(
        out,
        RPL_LUSERME,
        me,
        &[&format!("I have {} clients and 1 servers", n.connections)],
    );
    let local = n.connections.to_string();
    reply(
        out,
        RPL_LOCALUSERS,
        me,
        &[
            &local,
            &local,
            &format!("Current local users {local}, max {local}"),
        ],
    );
    reply(
        out,
        RPL_GLOBALUSERS,
        me,
        &[
            &users,
            &users,
            &format!("Current global users {users}, max {users}"),
        ],
    );
}

pub fn motd(out: &mut Vec<u8>, me: &str) {
    reply(
        out,
        RPL_MOTDSTART,
        me,
        &[&format!("- {} Message of the day -", server())],
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
