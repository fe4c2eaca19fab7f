//! A room's modes, invitations and voices as IRC shows them: 324 for a
//! `MODE #room` query, a MODE line for each change (from whoever made
//! it), 341 and INVITE for invitations (`invite-notify` for operators
//! who did not invite).

use banter_protocol::{ModeChange, RoomModes, ServerMessage};

use super::super::Client;
use super::super::caps::INVITE_NOTIFY;
use super::super::line::Line;
use super::super::numeric::*;

impl Client {
    pub(super) fn modes_reply(&mut self, message: &ServerMessage, out: &mut Vec<u8>) {
        let me = self.me().to_string();
        match message {
            ServerMessage::Modes {
                room,
                modes,
                by,
                change,
                created,
            } => {
                let channel = format!("#{room}");
                match change {
                    // A room nobody is in is no channel.
                    None if created.is_none() => {
                        reply(out, ERR_NOSUCHCHANNEL, &me, &[&channel, "No such channel"]);
                    }
                    None => {
                        // No trailing `:`: the modes and their arguments
                        // are parameters, as other servers send them.
                        let mut params = vec![me.clone(), channel.clone()];
                        params.extend(mode_string(modes));
                        let params: Vec<&str> = params.iter().map(String::as_str).collect();
                        Line::new(Some(server()), RPL_CHANNELMODEIS, &params).write(out);
                        let secs = (created.unwrap_or(0) / 1000).to_string();
                        reply(out, RPL_CREATIONTIME, &me, &[&channel, &secs]);
                    }
                    Some(change) => {
                        let source = by
                            .as_ref()
                            .map_or(server().to_string(), |b| mask(b.as_str()));
                        let mut params = vec![channel];
                        params.extend(change_string(change));
                        let params: Vec<&str> = params.iter().map(String::as_str).collect();
                        Line::new(Some(&source), "MODE", &params).write(out);
                    }
                }
            }
            ServerMessage::Voiced {
                room,
                nick,
                by,
                set,
            } => {
                let sign = if *set { "+v" } else { "-v" };
                Line::new(
                    Some(&mask(by.as_str())),
                    "MODE",
                    &[&format!("#{room}"), sign, nick.as_str()],
                )
                .write(out);
            }
            ServerMessage::Invited { room, nick, by } => {
                let channel = format!("#{room}");
                if by.as_str() == me {
                    Line::new(
                        Some(server()),
                        RPL_INVITING,
                        &[&me, nick.as_str(), &channel],
                    )
                    .write(out);
                } else if self.caps.has(INVITE_NOTIFY) {
                    Line::new(
                        Some(&mask(by.as_str())),
                        "INVITE",
                        &[nick.as_str(), &channel],
                    )
                    .write(out);
                }
            }
            ServerMessage::Invite { room, from } => {
                Line::new(
                    Some(&mask(from.as_str())),
                    "INVITE",
                    &[&me, &format!("#{room}")],
                )
                .write(out);
            }
            _ => {}
        }
    }
}

/// `+iklmnsR key limit`, the letters set and their arguments (`n` always).
pub fn mode_string(modes: &RoomModes) -> Vec<String> {
    let mut letters = String::from("+");
    let mut args = Vec::new();
    if modes.invite_only {
        letters.push('i');
    }
    if let Some(key) = &modes.key {
        letters.push('k');
        args.push(key.clone());
    }
    if let Some(limit) = modes.limit {
        letters.push('l');
        args.push(limit.to_string());
    }
    if modes.moderated {
        letters.push('m');
    }
    letters.push('n');
    if modes.secret {
        letters.push('s');
    }
    if modes.registered_only {
        letters.push('R');
    }
    std::iter::once(letters).chain(args).collect()
}

/// A change as `+ik-m key` (a removed key shows as `-k *`: `k` always
/// takes an argument).
pub fn change_string(change: &ModeChange) -> Vec<String> {
    let (mut plus, mut minus, mut args) = (String::new(), String::new(), Vec::new());
    let mut flag = |on: Option<bool>, letter: char| match on {
        Some(true) => plus.push(letter),
        Some(false) => minus.push(letter),
        None => {}
    };
    flag(change.invite_only, 'i');
    flag(change.moderated, 'm');
    flag(change.secret, 's');
    flag(change.registered_only, 'R');
    match change.key.as_deref() {
        Some("") => {
            minus.push('k');
            args.push("*".to_string());
        }
        Some(key) => {
            plus.push('k');
            args.insert(0, key.to_string());
        }
        None => {}
    }
    match change.limit {
        Some(0) => minus.push('l'),
        Some(limit) => {
            plus.push('l');
            args.push(limit.to_string());
        }
        None => {}
    }
    let mut letters = String::new();
    if !plus.is_empty() {
        letters = format!("+{plus}");
    }
    if !minus.is_empty() {
        letters.push('-');
        letters.push_str(&minus);
    }
    std::iter::once(letters).chain(args).collect()
}
