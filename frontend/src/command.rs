//! What the composer's input means: plain text, or a slash command such as
//! `/join room` or `/msg nick text`. Pure parsing, no side effects.

use banter_protocol::{Nick, RoomName};

/// One line the user submitted.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Text to send to the current conversation.
    Say(String),
    /// `/me waves`: an action, sent as a CTCP ACTION (see [`crate::text`]).
    Me(String),
    /// `/join room [key]`: the key of a room that has one (`+k`).
    Join(RoomName, Option<String>),
    /// `/part` leaves the current room; `/part room` a named one.
    Part(Option<RoomName>),
    Msg(Nick, String),
    Nick(Nick),
    /// `/topic` shows the room's topic; `/topic text` sets it.
    Topic(Option<String>),
    /// `/away message` marks you away; `/away` alone, back.
    Away(Option<String>),
    Whois(Nick),
    /// Operators: `/kick nick`, `/ban nick`, `/unban nick`, `/op account`,
    /// `/deop account`, `/voice nick`, `/devoice nick`; anyone (operators
    /// only in an invite-only room): `/invite nick`; in the current room.
    Moderate(&'static str, Nick),
    Help,
}

pub const HELP: &str = "Commands: /join room [key] · /part [room] · /msg nick text · /me action · /nick newnick · /topic [text] · /away [message] · /whois nick · /invite nick · /kick, /ban, /unban, /voice, /devoice nick · /op, /deop account · /help. Start a line with // to send a message that begins with /.";

/// Parses the composer's input. `Err` is a sentence to show the user.
pub fn parse(input: &str) -> Result<Command, String> {
    let trimmed = input.trim_end();
    if let Some(escaped) = trimmed.strip_prefix("//") {
        return Ok(Command::Say(format!("/{escaped}")));
    }
    let Some(rest) = trimmed.strip_prefix('/') else {
        return Ok(Command::Say(
            input.trim_end_matches(['\n', ' ']).to_string(),
        ));
    };
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, ""),
    };
    match name.to_ascii_lowercase().as_str() {
        "join" | "j" => {
            let (room, key) = match args.split_once(char::is_whitespace) {
                Some((_, key)) if key.trim().contains(char::is_whitespace) => {
                    return Err("usage: /join room [key] (a key has no spaces)".into());
                }
                Some((room, key)) => (room, Some(key.trim().to_string())),
                None => (args, None),
            };
            let room = room.strip_prefix('#').unwrap_or(room);
            if room.is_empty() {
                return Err("usage: /join room [key]".into());
            }
            RoomName::new(room)
                .map(|room| Command::Join(room, key))
                .map_err(|e| e.to_string())
        }
        "part" | "leave" => {
            if args.is_empty() {
                return Ok(Command::Part(None));
            }
            let room = args.strip_prefix('#').unwrap_or(args);
            RoomName::new(room)
                .map(|r| Command::Part(Some(r)))
                .map_err(|e| e.to_string())
        }
        "msg" | "query" | "whisper" | "w" => {
            let Some((nick, text)) = args.split_once(char::is_whitespace) else {
                return Err("usage: /msg nick text".into());
            };
            let nick = Nick::new(nick).map_err(|e| e.to_string())?;
            Ok(Command::Msg(nick, text.trim().to_string()))
        }
        "me" => {
            if args.is_empty() {
                return Err("usage: /me action (for example /me waves)".into());
            }
            Ok(Command::Me(args.to_string()))
        }
        "nick" => {
            if args.is_empty() {
                return Err("usage: /nick newnick".into());
            }
            Nick::new(args)
                .map(Command::Nick)
                .map_err(|e| e.to_string())
        }
        "topic" => Ok(Command::Topic((!args.is_empty()).then(|| args.to_string()))),
        "away" => Ok(Command::Away((!args.is_empty()).then(|| args.to_string()))),
        "back" => Ok(Command::Away(None)),
        "whois" => Nick::new(args)
            .map(Command::Whois)
            .map_err(|e| format!("usage: /whois nick ({e})")),
        "kick" | "ban" | "unban" | "op" | "deop" | "invite" | "voice" | "devoice" => {
            let what = match name.to_ascii_lowercase().as_str() {
                "kick" => "kick",
                "ban" => "ban",
                "unban" => "unban",
                "op" => "op",
                "invite" => "invite",
                "voice" => "voice",
                "devoice" => "devoice",
                _ => "deop",
            };
            let target = args.split_whitespace().next().unwrap_or("");
            Nick::new(target)
                .map(|n| Command::Moderate(what, n))
                .map_err(|_| format!("usage: /{what} nick"))
        }
        "help" | "?" => Ok(Command::Help),
        other => {
            let shown: String = other.chars().take(20).collect();
            Err(format!("unknown command /{shown}. {HELP}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    #[test]
    fn plain_text_is_said() {
        assert_eq!(parse("hello"), Ok(Command::Say("hello".into())));
        assert_eq!(parse("two\nlines\n"), Ok(Command::Say("two\nlines".into())));
        assert_eq!(
            parse("//slash at start"),
            Ok(Command::Say("/slash at start".into()))
        );
    }

    #[test]
    fn private_room_commands_parse() {
        let bob = Nick::new("bob").unwrap();
        assert_eq!(
            parse("/invite bob"),
            Ok(Command::Moderate("invite", bob.clone()))
        );
        assert_eq!(
            parse("/voice bob"),
            Ok(Command::Moderate("voice", bob.clone()))
        );
        assert_eq!(parse("/DEVOICE bob"), Ok(Command::Moderate("devoice", bob)));
        assert!(parse("/invite").is_err());
    }

    #[test]
    fn commands_parse() {
        assert_eq!(parse("/join Lobby"), Ok(Command::Join(room("lobby"), None)));
        assert_eq!(parse("/join #dev"), Ok(Command::Join(room("dev"), None)));
        assert_eq!(
            parse("/join #den  sesame "),
            Ok(Command::Join(room("den"), Some("sesame".into())))
        );
        assert_eq!(parse("/part"), Ok(Command::Part(None)));
        assert_eq!(parse("/part dev"), Ok(Command::Part(Some(room("dev")))));
        assert_eq!(
            parse("/msg bob  hi there"),
            Ok(Command::Msg(Nick::new("bob").unwrap(), "hi there".into()))
        );
        assert_eq!(parse("/me waves"), Ok(Command::Me("waves".into())));
        assert_eq!(
            parse("/NICK alice2"),
            Ok(Command::Nick(Nick::new("alice2").unwrap()))
        );
        assert_eq!(parse("/help"), Ok(Command::Help));
        assert_eq!(parse("/topic"), Ok(Command::Topic(None)));
        assert_eq!(
            parse("/topic new day"),
            Ok(Command::Topic(Some("new day".into())))
        );
        assert_eq!(
            parse("/away lunch"),
            Ok(Command::Away(Some("lunch".into())))
        );
        assert_eq!(parse("/away"), Ok(Command::Away(None)));
        assert_eq!(
            parse("/whois bob"),
            Ok(Command::Whois(Nick::new("bob").unwrap()))
        );
    }

    #[test]
    fn bad_commands_explain_themselves() {
        let unknown = parse("/dance now").unwrap_err();
        assert!(unknown.contains("unknown command /dance"), "{unknown}");
        assert!(unknown.contains("/join"), "the help is inline: {unknown}");
        assert!(parse("/join").unwrap_err().contains("usage"));
        assert!(parse("/join no!room").unwrap_err().contains("invalid room"));
        assert!(
            parse("/join den two words")
                .unwrap_err()
                .contains("no spaces")
        );
        assert!(parse("/msg bob").unwrap_err().contains("usage"));
        assert!(parse("/msg 9bob hi").unwrap_err().contains("invalid nick"));
        assert!(parse("/nick").unwrap_err().contains("usage"));
        assert!(parse("/me").unwrap_err().contains("usage"));
    }
}
