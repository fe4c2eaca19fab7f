//! Registration's end (`welcome` as 001 to 005 and the MOTD), accounts
//! (logged in, SASL's success, registered, logged out), and the link
//! closing (`ERROR`).

use banter_protocol::{ErrorCode, Nick, RoomName, ServerMessage};

use super::super::Client;
use super::super::asked::Asked;
use super::super::command::{MAX_TARGETS, lusers, motd};
use super::super::line::{Line, MAX_BODY};
use super::super::numeric::*;
use crate::core::model::MAX_LIST_ENTRIES;

impl Client {
    /// Registration's end and the account's news.
    pub(super) fn account_reply(
        &mut self,
        message: &ServerMessage,
        asked: Option<&Asked>,
        out: &mut Vec<u8>,
    ) {
        match message {
            ServerMessage::Welcome { nick, .. } => self.welcome(out, nick),
            ServerMessage::LoggedIn { account, admin, .. }
                if matches!(asked, Some(Asked::Oper)) =>
            {
                if *admin {
                    reply(
                        out,
                        RPL_YOUREOPER,
                        self.me(),
                        &["You are now an IRC operator"],
                    );
                } else {
                    let why = "No O-lines for your host (log into an administrator's account)";
                    reply(out, ERR_NOOPERHOST, self.me(), &[why]);
                }
            }
            ServerMessage::LoggedIn { account, .. } => self.logged_in(out, account, asked),
            ServerMessage::Registered { nick } => notice(
                out,
                self.me(),
                &format!("*** The account {nick} is registered"),
            ),
            ServerMessage::LoggedOut { revoked } => notice(
                out,
                self.me(),
                &format!("*** {revoked} login tokens revoked"),
            ),
            ServerMessage::PasswordChanged { .. } => notice(
                out,
                self.me(),
                "*** Your password was changed; your other sessions were logged out",
            ),
            ServerMessage::Killed { nick } => {
                notice(out, self.me(), &format!("*** {nick} was disconnected"));
            }
            ServerMessage::Klined { kline: ban, set } => {
                let what = if *set { "set" } else { "lifted" };
                notice(
                    out,
                    self.me(),
                    &format!(
                        "*** Server ban on {} {what}: {}",
                        ban_target(ban),
                        ban.reason
                    ),
                );
            }
            ServerMessage::Klines { klines: bans } => {
                let me = self.me().to_string();
                for ban in bans {
                    let target = ban_target(ban);
                    reply(
                        out,
                        RPL_STATSKLINE,
                        &me,
                        &["K", &target, "*", "*", &ban.reason],
                    );
                }
                reply(out, RPL_ENDOFSTATS, &me, &["K", "End of /STATS report"]);
            }
            ServerMessage::AccountDeleted { account } => {
                if let Some(own) = &mut self.own {
                    own.account = None;
                }
                let me = self.me();
                let text = format!("The account {account} was deleted; you are now logged out");
                reply(out, RPL_LOGGEDOUT, me, &[&mask(me), &text]);
            }
            _ => {}
        }
    }

    /// Registration is done: we are `nick`.
    fn welcome(&mut self, out: &mut Vec<u8>, nick: &Nick) {
        self.welcomed(nick.clone());
        let me = self.me();
        let version = concat!("banter-", env!("CARGO_PKG_VERSION"));
        reply(
            out,
            RPL_WELCOME,
            me,
            &[&format!("Welcome to the {NETWORK} IRC network, {me}")],
        );
        reply(
            out,
            RPL_YOURHOST,
            me,
            &[&format!(
                "Your host is {}, running version {version}",
                server()
            )],
        );
        reply(
            out,
            RPL_CREATED,
            me,
            &[&format!(
                "This server was started {}",
                iso_time(self.info.started)
            )],
        );
        // User modes, channel modes, and those of them with a parameter.
        let params = [me, server(), version, "iB", "IRbeiklmnosv", "Ibeklov"];
        Line::new(Some(server()), RPL_MYINFO, &params).write(out);
        self.isupport(out);
        lusers(out, me, self.info.router.lusers());
        motd(out, me);
    }

    /// 005: what this server supports.
    fn isupport(&self, out: &mut Vec<u8>) {
        let chanlimit = format!("CHANLIMIT=#:{}", self.info.max_rooms);
        let channellen = format!("CHANNELLEN={}", RoomName::MAX_LEN + 1);
        let nicklen = format!("NICKLEN={}", Nick::MAX_LEN);
        let network = format!("NETWORK={NETWORK}");
        let topiclen = format!("TOPICLEN={}", banter_protocol::MAX_TOPIC_BYTES);
        let awaylen = format!("AWAYLEN={}", banter_protocol::MAX_AWAY_BYTES);
        let targmax = format!(
            "TARGMAX=JOIN:{0},PART:{0},PRIVMSG:{0},NOTICE:{0},NAMES:{0},WHOIS:{0},KICK:{0}",
            MAX_TARGETS
        );
        // draft/webpush's key, when the server pushes.
        let vapid = self.info.vapid.as_ref().map(|key| format!("VAPID={key}"));
        let mut first = vec![
            awaylen.as_str(),
            "CASEMAPPING=ascii",
            &chanlimit,
            "CHANMODES=beI,k,l,imnsR",
            &channellen,
            "CHANTYPES=#",
            "CHATHISTORY=200",
            "MSGREFTYPES=msgid,timestamp",
            &nicklen,
            &network,
            "PREFIX=(ov)@+",
            &targmax,
        ];
        first.extend(vapid.as_deref());
        first.push("are supported by this server");
        reply(out, RPL_ISUPPORT, self.me(), &first);
        // A second line: clients expect at most 13 tokens in one.
        // Each list holds as many entries, counted apart.
        let maxlist = format!("MAXLIST=b:{0},e:{0},I:{0}", MAX_LIST_ENTRIES);
        let kicklen = format!("KICKLEN={}", banter_protocol::MAX_TOPIC_BYTES);
        let linelen = format!("LINELEN={MAX_BODY}");
        let monitor = format!("MONITOR={}", banter_protocol::MAX_WATCHED);
        reply(
            out,
            RPL_ISUPPORT,
            self.me(),
            &[
                "BOT=B",
                // message-tags: the client-only tags relayed; others are
                // dropped.
                "CLIENTTAGDENY=*,-draft/react,-draft/reply,-draft/unreact,-typing",
                "EXCEPTS=e",
                "EXTBAN=$,a",
                "INVEX=I",
                &kicklen,
                &linelen,
                &maxlist,
                &monitor,
                // Each letter is a change of its own: no limit per line.
                "MODES",
                &topiclen,
                "UTF8ONLY",
                "WHOX",
                "are supported by this server",
            ],
        );
    }

    /// Logged into `account`: 900, and 903 if SASL asked.
    fn logged_in(&mut self, out: &mut Vec<u8>, account: &Nick, asked: Option<&Asked>) {
        let sasl = matches!(asked, Some(Asked::Sasl(_)));
        if sasl && let Some(reg) = self.registration() {
            reg.sasl_succeeded();
        }
        if let Some(own) = &mut self.own {
            own.account = Some(account.clone());
        }
        let me = self.me();
        let who = mask(account.as_str());
        let text = format!("You are now logged in as {account}");
        reply(out, RPL_LOGGEDIN, me, &[&who, account.as_str(), &text]);
        if sasl {
            reply(
                out,
                RPL_SASLSUCCESS,
                me,
                &["SASL authentication successful"],
            );
        }
    }
}

/// What a server ban names, as IRC shows it: an address range, or
/// `$a:account`.
fn ban_target(ban: &banter_protocol::ServerBan) -> String {
    match (&ban.address, &ban.account) {
        (Some(address), _) => address.clone(),
        (None, Some(account)) => format!("$a:{account}"),
        (None, None) => "*".into(),
    }
}

/// The link is closing: IRC's `ERROR`.
pub(super) fn closing(out: &mut Vec<u8>, code: ErrorCode, message: &str) {
    let why = match code {
        ErrorCode::HandshakeTimeout => {
            format!("registration timed out ({message}; send NICK and USER)")
        }
        _ => message.to_string(),
    };
    Line::new(None, "ERROR", &[&format!("Closing link: {why}")])
        .text()
        .write(out);
}
