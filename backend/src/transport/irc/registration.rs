//! Registration (CAP, PASS, NICK, USER, AUTHENTICATE) as one state
//! machine: what the client has said so far, when `hello` may go, and how
//! SASL PLAIN proceeds. Commands and replies move it only through the
//! named transitions below, so what registration waits for is in one
//! place, testable without a socket. Once `welcome` is rendered the
//! client is registered and this state is dropped ([`Client::welcomed`]).
//!
//! Clients and bots pipeline: `NICK`, `USER` and a `JOIN` in one packet.
//! Commands that come once registration is complete on the client's side
//! (`hello` is out) but before the router's welcome are held, bounded
//! ([`MAX_HELD_LINES`], [`MAX_HELD_BYTES`]), and carried out in order
//! right after the welcome; past the bounds one is refused with 451.

use std::collections::VecDeque;

use banter_protocol::{MAX_REALNAME_BYTES, MAX_USERNAME_BYTES, Nick};

use super::Client;

/// Most commands held until the welcome.
pub const MAX_HELD_LINES: usize = 16;
/// Most bytes of commands held until the welcome, together.
pub const MAX_HELD_BYTES: usize = 8192;

/// An account and its password, from SASL PLAIN.
type Credentials = (Nick, String);

/// The state of a client not yet registered.
#[derive(Debug, Default)]
pub struct Registration {
    /// The nick asked for.
    wanted: Option<Nick>,
    pass: Option<String>,
    /// USER's username and real name, made fit for a profile.
    user: Option<(String, String)>,
    /// Between `CAP LS`/`REQ` and `CAP END`, registration waits.
    negotiating: bool,
    /// `hello` is out and not yet refused.
    hello_sent: bool,
    sasl: Sasl,
    /// Lines that came while `hello` was out, to carry out after the
    /// welcome, and their bytes together.
    held: VecDeque<Box<[u8]>>,
    held_bytes: usize,
}

/// SASL PLAIN's progress. Its parts are independent: a client may start a
/// new exchange while the last one is still being checked.
#[derive(Debug, Default)]
struct Sasl {
    /// `AUTHENTICATE PLAIN` came; the payload is next.
    started: bool,
    /// Sent for checking, not yet answered.
    pending: Option<Credentials>,
    /// Checked: registration logs into this account.
    verified: Option<Credentials>,
}

/// What registration's `hello` says.
#[derive(Debug, PartialEq, Eq)]
pub struct Hello {
    pub nick: Nick,
    pub password: Option<String>,
    pub username: String,
    pub realname: String,
}

/// What an `AUTHENTICATE` means, given the exchange so far.
#[derive(Debug, PartialEq, Eq)]
pub enum SaslStep {
    /// `AUTHENTICATE *`: the exchange is abandoned.
    Aborted,
    /// `AUTHENTICATE PLAIN`: send `AUTHENTICATE +` for the payload.
    Challenge,
    /// A mechanism other than PLAIN.
    Unsupported,
    /// The payload: decode it and have it checked ([`Registration::sasl_checking`]).
    Payload,
}

impl Registration {
    /// `CAP LS` or `CAP REQ`: registration waits for `CAP END`.
    pub fn on_cap_negotiation(&mut self) {
        self.negotiating = true;
    }

    pub fn on_cap_end(&mut self) {
        self.negotiating = false;
    }

    pub fn on_pass(&mut self, pass: &str) {
        self.pass = Some(pass.to_string());
    }

    /// `USER username * * :real name`: kept (see [`Profile`]) with the
    /// username cut to the letters, digits, `.`, `-` and `_` it has, at
    /// most [`MAX_USERNAME_BYTES`] of them (`user` if none), and the
    /// real name to [`MAX_REALNAME_BYTES`] without control characters.
    pub fn on_user(&mut self, username: &str, realname: &str) {
        let mut username: String = username
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            .take(MAX_USERNAME_BYTES)
            .collect();
        if username.is_empty() {
            username = "user".into();
        }
        let mut realname: String = realname.chars().filter(|c| !c.is_control()).collect();
        let mut end = realname.len().min(MAX_REALNAME_BYTES);
        while !realname.is_char_boundary(end) {
            end -= 1;
        }
        realname.truncate(end);
        self.user = Some((username, realname));
    }

    pub fn on_nick(&mut self, nick: Nick) {
        self.wanted = Some(nick);
    }

    /// `AUTHENTICATE arg`: whatever comes ends a started exchange, but
    /// `PLAIN` may start one.
    pub fn on_authenticate(&mut self, arg: &str) -> SaslStep {
        let started = std::mem::take(&mut self.sasl.started);
        if arg == "*" {
            SaslStep::Aborted
        } else if started {
            SaslStep::Payload
        } else if arg.eq_ignore_ascii_case("PLAIN") {
            self.sasl.started = true;
            SaslStep::Challenge
        } else {
            SaslStep::Unsupported
        }
    }

    /// The payload named `account` and `password`, now being checked.
    pub fn sasl_checking(&mut self, account: Nick, password: String) {
        self.sasl.pending = Some((account, password));
    }

    /// The check succeeded: registration will log into that account.
    pub fn sasl_succeeded(&mut self) {
        self.sasl.verified = self.sasl.pending.take();
    }

    pub fn sasl_failed(&mut self) {
        self.sasl.pending = None;
    }

    /// `hello`, once NICK and USER are in and CAP negotiation is over,
    /// and none is out: SASL's account (the nick is the account's name)
    /// or the nick asked for with PASS.
    pub fn hello(&mut self) -> Option<Hello> {
        if self.hello_sent || self.negotiating {
            return None;
        }
        let (username, realname) = self.user.clone()?;
        let nick = self.wanted.clone()?;
        self.hello_sent = true;
        let (nick, password) = match &self.sasl.verified {
            Some((account, password)) => (account.clone(), Some(password.clone())),
            None => (nick, self.pass.clone()),
        };
        Some(Hello {
            nick,
            password,
            username,
            realname,
        })
    }

    /// `hello` was refused: a new NICK (or PASS) may try again.
    pub fn hello_refused(&mut self) {
        self.hello_sent = false;
    }

    /// Holds a command that came while `hello` is out, to be carried out
    /// after the welcome; `Err` says why it was not.
    pub fn hold(&mut self, line: &[u8]) -> Result<(), NotHeld> {
        if !self.hello_sent {
            return Err(NotHeld::Unregistered);
        }
        if self.held.len() >= MAX_HELD_LINES || self.held_bytes + line.len() > MAX_HELD_BYTES {
            return Err(NotHeld::Full);
        }
        self.held_bytes += line.len();
        self.held.push_back(line.into());
        Ok(())
    }
}

/// Why a command before the welcome was not held (it gets 451).
#[derive(Debug, PartialEq, Eq)]
pub enum NotHeld {
    /// Registration is not complete (NICK or USER missing, CAP
    /// negotiation not ended, or `hello` refused).
    Unregistered,
    /// [`MAX_HELD_LINES`] or [`MAX_HELD_BYTES`] are held already.
    Full,
}

impl Client {
    /// Registration's state; `None` once registered.
    pub(super) fn registration(&mut self) -> Option<&mut Registration> {
        self.registering.as_deref_mut()
    }

    /// `welcome` came: the client is registered as `nick`; the commands
    /// held meanwhile are carried out next ([`Client::next_held`]).
    pub(super) fn welcomed(&mut self, nick: Nick) {
        let realname = self
            .registering
            .as_ref()
            .and_then(|r| r.user.as_ref())
            .map_or_else(|| nick.to_string(), |(_, realname)| realname.clone());
        self.own = Some(Box::new(super::Own {
            account: None,
            realname: realname.into(),
            bot: false,
        }));
        self.nick = Some(nick);
        if let Some(held) = self.registering.take().map(|r| r.held)
            && !held.is_empty()
        {
            self.rare().held = held;
        }
    }

    /// The next command held during registration, now to carry out.
    pub(super) fn next_held(&mut self) -> Option<Box<[u8]>> {
        let held = &mut self.rare.as_mut()?.held;
        let line = held.pop_front();
        if held.is_empty() {
            *held = VecDeque::new();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(name: &str) -> Nick {
        Nick::new(name).unwrap()
    }

    #[test]
    fn hello_goes_once_nick_and_user_are_in() {
        let mut reg = Registration::default();
        reg.on_nick(nick("alice"));
        assert_eq!(reg.hello(), None, "USER is missing");
        reg.on_pass("secret");
        reg.on_user("~al:ice", "Alice \x02A\x02. Liddell");
        let hello = reg.hello().unwrap();
        assert_eq!(hello.nick.as_str(), "alice");
        assert_eq!(
            (&*hello.username, &*hello.realname),
            ("alice", "Alice A. Liddell")
        );
        assert_eq!(hello.password.as_deref(), Some("secret"));
        assert_eq!(reg.hello(), None, "one at a time");
    }

    #[test]
    fn cap_negotiation_holds_hello_until_cap_end() {
        let mut reg = Registration::default();
        reg.on_cap_negotiation();
        reg.on_user("u", "U");
        reg.on_nick(nick("bob"));
        assert_eq!(reg.hello(), None);
        reg.on_cap_end();
        assert_eq!(reg.hello().unwrap().nick.as_str(), "bob");
    }

    #[test]
    fn a_refused_hello_may_be_retried_with_a_new_nick() {
        let mut reg = Registration::default();
        reg.on_user("u", "U");
        reg.on_nick(nick("taken"));
        assert!(reg.hello().is_some());
        reg.on_nick(nick("other"));
        assert_eq!(reg.hello(), None, "the first is still out");
        reg.hello_refused();
        assert_eq!(reg.hello().unwrap().nick.as_str(), "other");
    }

    #[test]
    fn commands_are_held_only_while_hello_is_out_and_within_bounds() {
        let mut reg = Registration::default();
        assert_eq!(reg.hold(b"JOIN #a"), Err(NotHeld::Unregistered));
        reg.on_user("u", "U");
        reg.on_nick(nick("alice"));
        assert!(reg.hello().is_some());
        for _ in 0..MAX_HELD_LINES {
            assert_eq!(reg.hold(b"JOIN #a"), Ok(()));
        }
        assert_eq!(reg.hold(b"JOIN #a"), Err(NotHeld::Full), "too many lines");
        let mut reg = Registration::default();
        reg.on_user("u", "U");
        reg.on_nick(nick("bob"));
        assert!(reg.hello().is_some());
        let long = vec![b'x'; 500];
        for _ in 0..MAX_HELD_BYTES / 500 {
            assert_eq!(reg.hold(&long), Ok(()));
        }
        assert_eq!(reg.hold(&long), Err(NotHeld::Full), "too many bytes");
        assert_eq!(reg.held.len(), MAX_HELD_BYTES / 500);
    }

    #[test]
    fn sasl_plain_logs_into_the_checked_account() {
        let mut reg = Registration::default();
        assert_eq!(reg.on_authenticate("EXTERNAL"), SaslStep::Unsupported);
        assert_eq!(reg.on_authenticate("plain"), SaslStep::Challenge);
        assert_eq!(reg.on_authenticate("AGFjYwBwdw=="), SaslStep::Payload);
        reg.sasl_checking(nick("acct"), "pw".into());
        assert_eq!(
            reg.on_authenticate("AGFjYwBwdw=="),
            SaslStep::Unsupported,
            "a payload needs PLAIN first"
        );
        reg.sasl_succeeded();
        reg.on_nick(nick("someone"));
        reg.on_pass("ignored");
        reg.on_user("u", "U");
        let hello = reg.hello().unwrap();
        assert_eq!(
            hello.nick.as_str(),
            "acct",
            "the account's name is the nick"
        );
        assert_eq!(hello.password.as_deref(), Some("pw"));
    }

    #[test]
    fn failed_or_aborted_sasl_leaves_pass_in_charge() {
        let mut reg = Registration::default();
        assert_eq!(reg.on_authenticate("PLAIN"), SaslStep::Challenge);
        assert_eq!(reg.on_authenticate("*"), SaslStep::Aborted);
        assert_eq!(reg.on_authenticate("PLAIN"), SaslStep::Challenge);
        assert_eq!(reg.on_authenticate("payload"), SaslStep::Payload);
        reg.sasl_checking(nick("acct"), "wrong".into());
        reg.sasl_failed();
        reg.sasl_succeeded();
        reg.on_nick(nick("carol"));
        reg.on_user("u", "U");
        let hello = reg.hello().unwrap();
        assert_eq!(hello.nick.as_str(), "carol");
        assert_eq!(hello.password, None);
    }
}
