//! Outgoing: protocol frames as IRC lines. [`Client::render`] is a short
//! dispatcher; each family of messages renders in its own module:
//!
//! * [`chat`] — messages and the events every member sees alike, rendered
//!   once per frame and tag variant and shared (the fan-out hot path).
//! * [`channel`] — presence, joins, parts, kicks, operators, and replies
//!   about a channel (topic, NAMES, WHO, LIST, bans).
//! * [`user`] — WHOIS, USERHOST, ISON and away.
//! * [`account`] — `welcome`, logins, and the link's own notices.
//! * [`error`] — refused requests as numerics.
//!
//! A reply is rendered for what its request asked, found by its `ref` in
//! the connection's [`AskedTable`](super::asked::AskedTable).

mod account;
mod channel;
mod chat;
pub use chat::push_line;
mod error;
mod modes;
mod user;

use banter_protocol::{Nick, ServerMessage};

use super::Client;
use super::asked::Asked;
use super::caps::BATCH;
use super::numeric::notice;
use crate::core::frame::Frame;

pub use self::chat::privmsg;

impl Client {
    fn is_me(&self, nick: &Nick) -> bool {
        self.nick.as_ref() == Some(nick)
    }

    /// Appends what this client should see of `frame`: a labeled
    /// command's first reply as [`labels`](super::labels) words it.
    pub fn render(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        if let Some(label) = self.asked.take_label(frame.reference()) {
            let mut lines = Vec::new();
            self.render_frame(frame, &mut lines);
            super::labels::labeled(&label, &lines, self.caps.has(BATCH), out);
        } else {
            self.render_frame(frame, out);
        }
        // Lines made at once that waited for this answer follow it.
        if self.waiting.any() {
            for bytes in self.waiting.release(&self.asked, false) {
                out.extend_from_slice(&bytes);
            }
        }
    }

    fn render_frame(&mut self, frame: &Frame, out: &mut Vec<u8>) {
        // The copies of one change are back to back: anything else between
        // two equal events means they are two changes.
        let last_event = self.rare.as_mut().and_then(|r| r.last_event.take());
        let Some(message) = frame.message() else {
            out.extend_from_slice(frame.local_bytes().expect("a frame is a message or local"));
            return;
        };
        if let ServerMessage::Message(_) | ServerMessage::Direct(_) = message {
            // The sender's own copy carries its request's ref.
            self.asked.answer(frame.reference());
            return self.chat(frame, message, out);
        }
        let asked = self.asked.answer(frame.reference()).cloned();
        let asked = asked.as_ref();
        match message {
            // Rendered above, on the hot path.
            ServerMessage::Message(_) | ServerMessage::Direct(_) => {}
            ServerMessage::Presence { .. }
            | ServerMessage::Joined { .. }
            | ServerMessage::Parted { .. }
            | ServerMessage::Nick { .. }
            | ServerMessage::Kicked { .. }
            | ServerMessage::Roles { .. } => self.membership(frame, message, last_event, out),
            ServerMessage::Modes { .. }
            | ServerMessage::Invited { .. }
            | ServerMessage::Invite { .. }
            | ServerMessage::Voiced { .. } => self.modes_reply(message, out),
            ServerMessage::Topic { .. }
            | ServerMessage::Members { .. }
            | ServerMessage::Rooms { .. }
            | ServerMessage::Bans { .. }
            | ServerMessage::Banned { .. }
            | ServerMessage::History { .. } => self.room_reply(frame, message, asked, out),
            ServerMessage::DirectHistory { with, messages } => {
                if let Some(Asked::Chathistory(_)) = asked {
                    self.direct_history_batch(out, with, messages);
                }
            }
            ServerMessage::Read(position) => self.markread(position, out),
            // IRC clients ask for positions one at a time (MARKREAD), and
            // have no request for settings.
            ServerMessage::ReadPositions { .. } | ServerMessage::Settings { .. } => {}
            ServerMessage::Targets { targets } => {
                if let Some(Asked::Chathistory(_)) = asked {
                    self.targets_batch(out, targets);
                }
            }
            ServerMessage::Whois { .. }
            | ServerMessage::Users { .. }
            | ServerMessage::Profile { .. }
            | ServerMessage::Account { .. }
            | ServerMessage::Watched { .. }
            | ServerMessage::Away { .. } => self.user_reply(frame, message, asked, out),
            ServerMessage::Welcome { .. }
            | ServerMessage::LoggedIn { .. }
            | ServerMessage::Registered { .. }
            | ServerMessage::LoggedOut { .. }
            | ServerMessage::PasswordChanged { .. }
            | ServerMessage::AccountDeleted { .. }
            | ServerMessage::Killed { .. }
            | ServerMessage::Klined { .. }
            | ServerMessage::Klines { .. } => self.account_reply(message, asked, out),
            ServerMessage::Error { code, message } => self.error(out, *code, message, asked),
            ServerMessage::Closing { code, message } => account::closing(out, *code, message),
            ServerMessage::Lagged { dropped } => notice(
                out,
                self.me(),
                &format!("*** Your connection fell behind: {dropped} messages were dropped"),
            ),
            ServerMessage::Reaction { .. }
            | ServerMessage::Edited { .. }
            | ServerMessage::Deleted { .. }
            | ServerMessage::Typing { .. } => self.amended(frame, message, out),
            ServerMessage::SearchResults { messages } => {
                if let Some(Asked::Search) = asked {
                    self.search_batch(out, messages);
                }
            }
            // IRC has no notification settings here.
            ServerMessage::NotifyLevel(_)
            | ServerMessage::NotifyLevels { .. }
            | ServerMessage::Highlights { .. } => {}
            ServerMessage::PushSubscribed { endpoint } => {
                if let Some(Asked::Webpush(..)) = asked {
                    super::line::Line::new(
                        Some(super::numeric::server()),
                        "WEBPUSH",
                        &["REGISTER", endpoint],
                    )
                    .write(out);
                }
            }
            ServerMessage::PushUnsubscribed { endpoint } => {
                if let Some(Asked::Webpush(..)) = asked {
                    super::line::Line::new(
                        Some(super::numeric::server()),
                        "WEBPUSH",
                        &["UNREGISTER", endpoint],
                    )
                    .write(out);
                }
            }
            ServerMessage::Ping | ServerMessage::Pong => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use banter_protocol::{PresenceEvent, RoomName};

    use super::channel::names;
    use super::chat::cut_at;
    use super::*;
    use crate::transport::irc::line::{Line, MAX_BODY};

    fn lines(out: &[u8]) -> Vec<Line> {
        std::str::from_utf8(out)
            .unwrap()
            .split_terminator("\r\n")
            .map(|l| Line::parse(l.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn long_texts_split_into_lines_that_fit_and_reassemble() {
        let text = "héllo wörld ".repeat(130) + &"€".repeat(300);
        let mut out = Vec::new();
        privmsg(&mut out, "alice", "#lobby", &text, false, &[]);
        let wire = std::str::from_utf8(&out).unwrap();
        let mut joined = String::new();
        for raw in wire.split_inclusive("\r\n") {
            assert!(raw.len() <= MAX_BODY, "{} bytes: {raw}", raw.len());
            let raw = raw.strip_suffix("\r\n").unwrap();
            joined.push_str(&Line::parse(raw.as_bytes()).unwrap().params[1]);
        }
        assert_eq!(joined, text, "no byte lost or added");
        assert!(wire.lines().count() >= 4);
    }

    #[test]
    fn actions_and_line_breaks() {
        let mut out = Vec::new();
        privmsg(
            &mut out,
            "bob",
            "alice",
            "/me waves\n\nand smiles",
            false,
            &[("msgid".into(), "d-1".into())],
        );
        let got = lines(&out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].params[1], "\x01ACTION waves\x01");
        assert_eq!(got[1].params[1], "\x01ACTION and smiles\x01");
        assert_eq!(
            got[1].tags[0].1, "d-1",
            "every line carries the message's msgid"
        );
        let long = format!("/me {}", "x".repeat(1000));
        let mut out = Vec::new();
        privmsg(&mut out, "bob", "#a", &long, true, &[]);
        for line in lines(&out) {
            assert_eq!(line.command, "NOTICE");
            let p = &line.params[1];
            assert!(p.starts_with("\x01ACTION ") && p.ends_with('\x01'));
        }
    }

    #[test]
    fn a_stored_text_with_ctcp_reaches_irc_without_it() {
        let mut out = Vec::new();
        let text = "\x01DCC SEND x 1 2 3\x01 and \x02bold\x02";
        privmsg(&mut out, "bob", "#a", text, false, &[]);
        assert_eq!(
            lines(&out)[0].params[1],
            "DCC SEND x 1 2 3 and \x02bold\x02"
        );
        let mut out = Vec::new();
        privmsg(&mut out, "bob", "#a", "/me \x01VERSION\x01", false, &[]);
        assert_eq!(lines(&out)[0].params[1], "\x01ACTION VERSION\x01");
    }

    #[test]
    fn cuts_prefer_spaces_but_never_split_characters() {
        assert_eq!(cut_at("aaaa bbbb", 7), 5);
        assert_eq!(cut_at("aaaaaaaaaa", 4), 4);
        assert_eq!(cut_at("€€", 4), 3);
        assert_eq!(
            cut_at("a bbbbbbbbb", 8),
            8,
            "a space too early is not worth it"
        );
    }

    #[test]
    fn a_change_seen_in_several_rooms_is_shown_once() {
        use super::super::ServerInfo;
        let mut client = Client::new(std::sync::Arc::new(ServerInfo {
            started: 0,
            max_rooms: 5,
            flood_burst: 1,
            flood_rate: 1,
            flood_backlog: 1,
            join_replay: 50,
            max_text_bytes: 4096,
            max_lines: 100,
            vapid: None,
            router: std::sync::Arc::new(crate::core::router::Router::new(
                crate::core::router::RouterConfig {
                    max_text_bytes: 100,
                    max_rooms_per_session: 5,
                    max_devices: 10,
                    max_offline: 10,
                    max_rooms: 10,
                    history_len: 10,
                    max_lines: 100,
                    edit_window_ms: 0,
                },
            )),
        }));
        let n = |s: &str| Nick::new(s).unwrap();
        let presence = |room: &str, event| {
            Frame::new(ServerMessage::Presence {
                room: RoomName::new(room).unwrap(),
                nick: n("bob"),
                event,
                new_nick: None,
                reason: None,
                account: None,
                realname: None,
                bot: false,
            })
        };
        let mut out = Vec::new();
        for frame in [
            presence("a", PresenceEvent::Quit),
            presence("b", PresenceEvent::Quit),
            presence("a", PresenceEvent::Join),
            presence("a", PresenceEvent::Quit),
        ] {
            client.render(&frame, &mut out);
        }
        let commands: Vec<String> = lines(&out).into_iter().map(|l| l.command).collect();
        assert_eq!(
            commands,
            ["QUIT", "JOIN", "QUIT"],
            "a later bob quitting again is shown"
        );
    }

    #[test]
    fn names_fill_lines_up_to_the_limit() {
        let members: Vec<Nick> = (0..200)
            .map(|i| Nick::new(format!("user{i:03}xxxxxxxxxx")).unwrap())
            .collect();
        let mut out = Vec::new();
        // Moderators get `@`, which counts towards the line length.
        let moderators = &members[..50];
        let no_caps = super::super::Caps::default();
        names(
            &mut out,
            "me",
            ("#big", false),
            (&members, moderators, &[]),
            no_caps,
        );
        let got = lines(&out);
        assert!(got.len() > 2);
        let mut seen = Vec::new();
        for line in &got[..got.len() - 1] {
            assert_eq!(line.command, "353");
            let mut wire = Vec::new();
            line.write(&mut wire);
            assert!(wire.len() <= MAX_BODY);
            seen.extend(line.params[3].split(' ').map(str::to_string));
        }
        assert_eq!(seen.len(), 200);
        assert!(seen[..50].iter().all(|n| n.starts_with('@')));
        assert!(seen[50..].iter().all(|n| !n.starts_with('@')));
        assert_eq!(got.last().unwrap().command, "366");
    }
}
