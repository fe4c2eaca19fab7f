//! Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, MODE and
//! INVITE, as requests about rooms (`#lobby` is room `lobby`). Channel
//! modes: `b` bans, `o` operators, `v` voices, and the room's modes
//! `i k l m s R` (`n` always holds); `e` and `I` lists are empty.

use std::collections::VecDeque;

use banter_protocol::{
    BanList, ClientMessage, MAX_REASON_BYTES, MAX_TOPIC_BYTES, ModeChange, Nick, RoomName,
};

use super::super::Client;
use super::super::asked::Asked;
use super::super::line::Line;
use super::super::numeric::*;
use super::{clip, room_of};
use crate::core::model::{check_mask, valid_key};
use crate::session::Inbound;

impl Client {
    /// JOIN, PART, TOPIC, NAMES, LIST, KICK, MODE or INVITE.
    pub(super) fn channel_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        match line.command.as_str() {
            "JOIN" if line.params[0] == "0" => self.part_all(queue),
            "JOIN" | "PART" => self.join_or_part(line, queue),
            "TOPIC" => self.topic_command(line, queue),
            "NAMES" => {
                for channel in self.targets(&line.params[0], "NAMES", queue) {
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
            "KICK" => self.kick(line, queue),
            "MODE" => self.mode(line, queue),
            "INVITE" => self.invite(line, queue),
            _ => {}
        }
    }

    /// `JOIN 0`: leave every channel.
    fn part_all(&mut self, queue: &mut VecDeque<Inbound>) {
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

    fn join_or_part(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let command = line.command.as_str();
        // JOIN's second parameter is keys, one per channel in order.
        let mut keys = line
            .param(1)
            .filter(|_| command == "JOIN")
            .map(|k| k.split(',').map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter();
        let reason = line
            .param(1)
            .filter(|_| command == "PART")
            .map(|r| clip(r, MAX_REASON_BYTES).to_string());
        for channel in self.targets(&line.params[0], command, queue) {
            let key = keys.next().filter(|k| !k.is_empty());
            let room = match room_of(channel) {
                Ok(room) => room,
                Err(code) => {
                    let text = "No such channel (channels are # and a room name: a-z 0-9 - _)";
                    self.numeric(queue, code, &[channel, text]);
                    continue;
                }
            };
            // Joining a channel one is in already changes nothing and
            // says nothing (as Ergo does).
            if command == "JOIN" && self.channels.iter().any(|c| c.room == room) {
                continue;
            }
            let (body, asked) = if command == "JOIN" {
                (
                    ClientMessage::Join {
                        room: room.clone(),
                        key,
                        rejoin: false,
                    },
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
    }

    /// `TOPIC #room` asks it; `TOPIC #room :text` sets it.
    fn topic_command(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Ok(room) = room_of(&line.params[0]) else {
            return self.numeric(
                queue,
                ERR_NOSUCHCHANNEL,
                &[&line.params[0], "No such channel"],
            );
        };
        // Longer than TOPICLEN: cut, as ISUPPORT lets servers do.
        let text = line.param(1).map(|t| clip(t, MAX_TOPIC_BYTES).to_string());
        let asked = match text {
            Some(_) => Asked::Topic(room.clone()),
            None => Asked::TopicQuery(room.clone()),
        };
        self.request(queue, ClientMessage::Topic { room, text }, asked);
    }

    /// `KICK #room nick[,nick…] [:reason]`.
    fn kick(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let Ok(room) = room_of(&line.params[0]) else {
            return self.numeric(
                queue,
                ERR_NOSUCHCHANNEL,
                &[&line.params[0], "No such channel"],
            );
        };
        let reason = line.param(2).map(|r| clip(r, MAX_REASON_BYTES).to_string());
        for target in self.targets(&line.params[1], "KICK", queue) {
            match Nick::new(target) {
                Ok(nick) => self.request(
                    queue,
                    ClientMessage::Kick {
                        room: room.clone(),
                        nick: nick.clone(),
                        reason: reason.clone(),
                    },
                    Asked::Kick(room.clone(), nick),
                ),
                Err(_) => self.numeric(queue, ERR_NOSUCHNICK, &[target, "No such nick/channel"]),
            }
        }
    }

    /// MODE on a channel, or on ourselves (`+i`, always set, and `+B`, a
    /// bot).
    fn mode(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let target = line.params[0].as_str();
        if target.starts_with('#') {
            return match room_of(target) {
                Ok(room) => self.channel_mode(line, room, queue),
                Err(_) => self.numeric(queue, ERR_NOSUCHCHANNEL, &[target, "No such channel"]),
            };
        }
        if !target.eq_ignore_ascii_case(self.me()) {
            return self.numeric(
                queue,
                ERR_USERSDONTMATCH,
                &["Can't view or change modes for other users"],
            );
        }
        let Some(modes) = line.param(1) else {
            let modes = if self.is_bot() { "+iB" } else { "+i" };
            return self.numeric(queue, RPL_UMODEIS, &[modes]);
        };
        let (mut set, mut bot, mut unknown) = (true, None, false);
        for letter in modes.chars() {
            match letter {
                '+' => set = true,
                '-' => set = false,
                'i' => {}
                'B' => bot = Some(set),
                _ => unknown = true,
            }
        }
        if unknown {
            self.numeric(
                queue,
                ERR_UMODEUNKNOWNFLAG,
                &["Unknown MODE flag (+i, always set, and +B, a bot)"],
            );
        }
        if let Some(bot) = bot.filter(|&b| b != self.is_bot()) {
            let body = ClientMessage::Profile {
                realname: None,
                bot: Some(bot),
            };
            self.request(queue, body, Asked::UserMode);
        }
    }

    /// 696: a mode's parameter is not one the mode takes.
    fn invalid_param(
        &self,
        queue: &mut VecDeque<Inbound>,
        room: &RoomName,
        letter: char,
        given: &str,
        why: &str,
    ) {
        let channel = format!("#{room}");
        let given = if given.is_empty() { "*" } else { given };
        let letter = letter.to_string();
        self.numeric(
            queue,
            ERR_INVALIDMODEPARAM,
            &[&channel, &letter, given, why],
        );
    }

    /// `INVITE nick #room`.
    fn invite(&mut self, line: &Line, queue: &mut VecDeque<Inbound>) {
        let (target, channel) = (&line.params[0], &line.params[1]);
        let Ok(room) = room_of(channel) else {
            return self.numeric(queue, ERR_NOSUCHCHANNEL, &[channel, "No such channel"]);
        };
        let Ok(nick) = Nick::new(target) else {
            return self.numeric(queue, ERR_NOSUCHNICK, &[target, "No such nick/channel"]);
        };
        let asked = Asked::Invite(nick.clone(), room.clone());
        self.request(queue, ClientMessage::Invite { room, nick }, asked);
    }

    /// `MODE #room [modes [args…]]`: without modes, 324; else each letter
    /// in turn (`+ik key`, `-l`, `+o account`, `+v nick`, `+b mask`). The
    /// room's own modes go as one `mode` request.
    fn channel_mode(&mut self, line: &Line, room: RoomName, queue: &mut VecDeque<Inbound>) {
        let Some(modes) = line.param(1) else {
            let body = ClientMessage::Mode {
                room: room.clone(),
                set: None,
            };
            return self.request(queue, body, Asked::ModeQuery(room));
        };
        let mut args = line.params.iter().skip(2).map(String::as_str);
        let mut change = ModeChange::default();
        let mut plus = true;
        for letter in modes.chars() {
            match letter {
                '+' | '-' => plus = letter == '+',
                'i' => change.invite_only = Some(plus),
                'm' => change.moderated = Some(plus),
                's' => change.secret = Some(plus),
                'R' => change.registered_only = Some(plus),
                'n' => {}
                'k' if plus => match args.next() {
                    Some(key) if valid_key(key) => change.key = Some(key.to_string()),
                    Some(_) => self.invalid_param(queue, &room, 'k', "*", "Invalid key"),
                    None => self.more_params(queue),
                },
                'k' => {
                    // `-k` may name the key; any key removes it.
                    args.next();
                    change.key = Some(String::new());
                }
                'l' if plus => match args.next() {
                    Some(arg) => match arg.parse::<u32>() {
                        Ok(limit) if limit > 0 => change.limit = Some(limit),
                        _ => self.invalid_param(queue, &room, 'l', arg, "Invalid limit"),
                    },
                    None => self.more_params(queue),
                },
                'l' => change.limit = Some(0),
                'b' | 'e' | 'I' => {
                    let list = match letter {
                        'b' => BanList::Ban,
                        'e' => BanList::BanException,
                        _ => BanList::InviteException,
                    };
                    let asked = Asked::ModeList(room.clone(), list);
                    // Without a mask (`+b` or `-b`), the list.
                    match args.next() {
                        Some(mask) => self.ban(queue, (room.clone(), list), plus, mask),
                        None => self.request(
                            queue,
                            ClientMessage::Bans {
                                room: room.clone(),
                                list,
                            },
                            asked,
                        ),
                    }
                }
                'o' | 'v' => match args.next().map(|a| (a, Nick::new(a))) {
                    Some((_, Ok(nick))) => {
                        let asked = Asked::ModeMember(room.clone(), nick.clone());
                        let room = room.clone();
                        let body = match (letter, plus) {
                            ('o', true) => ClientMessage::Op {
                                room,
                                account: nick,
                            },
                            ('o', false) => ClientMessage::Deop {
                                room,
                                account: nick,
                            },
                            (_, true) => ClientMessage::Voice { room, nick },
                            (_, false) => ClientMessage::Devoice { room, nick },
                        };
                        self.request(queue, body, asked);
                    }
                    Some((given, Err(_))) => {
                        self.numeric(queue, ERR_NOSUCHNICK, &[given, "No such nick/channel"])
                    }
                    None => self.more_params(queue),
                },
                other => self.numeric(
                    queue,
                    ERR_UNKNOWNMODE,
                    &[&other.to_string(), "is unknown mode char to me"],
                ),
            }
        }
        if !change.is_empty() {
            let body = ClientMessage::Mode {
                room: room.clone(),
                set: Some(change),
            };
            self.request(queue, body, Asked::Mode(room));
        }
    }

    fn more_params(&mut self, queue: &mut VecDeque<Inbound>) {
        self.numeric(
            queue,
            ERR_NEEDMOREPARAMS,
            &["MODE", "Not enough parameters"],
        );
    }

    /// `MODE #room +b mask` (or `-b`; `e` and `I` alike, for the ban and
    /// invite exceptions): a nick, `nick!*@*` (a nick too), `$a:account`,
    /// or any other `nick!user@host` with wildcards (a mask).
    fn ban(
        &mut self,
        queue: &mut VecDeque<Inbound>,
        (room, list): (RoomName, BanList),
        set: bool,
        mask: &str,
    ) {
        let plain = |n: &str| Nick::new(n).ok().filter(|_| !n.contains(['*', '?']));
        let (nick, account, mask) = match mask.strip_prefix("$a:") {
            Some(account) => (None, Nick::new(account).ok(), None),
            None => match mask
                .strip_suffix("!*@*")
                .or((!mask.contains('!')).then_some(mask))
            {
                Some(n) if plain(n).is_some() => (plain(n), None, None),
                _ => (None, None, Some(mask.to_string())),
            },
        };
        if mask.as_deref().is_some_and(|m| check_mask(m).is_err())
            || (nick.is_none() && account.is_none() && mask.is_none())
        {
            return self.numeric(
                queue,
                ERR_NEEDMOREPARAMS,
                &[
                    "MODE",
                    "A ban or exception mask is nick, nick!user@host (with * and ?) or $a:account",
                ],
            );
        }
        let asked = Asked::ModeList(room.clone(), list);
        let body = match (list, set) {
            (BanList::Ban, true) => ClientMessage::Ban {
                room,
                nick,
                account,
                mask,
            },
            (BanList::Ban, false) => ClientMessage::Unban {
                room,
                nick,
                account,
                mask,
            },
            (list, true) => ClientMessage::Except {
                room,
                list,
                nick,
                account,
                mask,
            },
            (list, false) => ClientMessage::Unexcept {
                room,
                list,
                nick,
                account,
                mask,
            },
        };
        self.request(queue, body, asked);
    }
}
