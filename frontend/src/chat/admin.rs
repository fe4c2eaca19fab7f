//! The Administration panel's half of [`Chat`], for server administrators
//! (`logged_in` says `admin`): the rooms, the members of one room, the
//! server bans, and the requests that disconnect a user (`kill`), set or
//! lift a server ban (`kline`, `unkline`) and remove an account. The panel
//! reads [`Admin`]; every outcome, a refusal included, lands in its
//! `reply` as a sentence.

use banter_protocol::{ClientMessage, ErrorCode, Nick, RoomInfo, RoomName, ServerBan};

use super::{Chat, Purpose, Request};

/// What an administration request asked, to word its answer.
#[derive(Clone, Debug, PartialEq)]
pub enum AdminAsk {
    Rooms,
    Members,
    Klines,
    Kill(Nick),
    Kline,
    Unkline,
    Remove(Nick),
}

/// What the Administration panel shows.
#[derive(Debug, Default)]
pub struct Admin {
    /// Every room that has members (`rooms`).
    pub rooms: Vec<RoomInfo>,
    /// The room whose members are listed, and its members.
    pub room: Option<(RoomName, Vec<Nick>)>,
    /// The server bans (`klines`).
    pub klines: Vec<ServerBan>,
    /// How the last request went: a sentence, `Ok` when it was done.
    pub reply: Option<Result<String, String>>,
}

/// Whom a server ban keeps out, in words.
pub fn ban_target(ban: &ServerBan) -> String {
    match (&ban.account, &ban.address) {
        (Some(account), _) => format!("the account {account}"),
        (None, Some(address)) => address.clone(),
        (None, None) => "?".into(),
    }
}

impl Chat {
    fn admin_request(&mut self, ask: AdminAsk, body: ClientMessage) -> Vec<Request> {
        self.version += 1;
        if !self.is_online() {
            self.admin.reply = Some(Err(
                "Not connected: wait until Banter is back online.".into()
            ));
            return Vec::new();
        }
        vec![self.request(Purpose::Admin(ask), body)]
    }

    /// Asks for fresh lists: the rooms and the server bans.
    pub fn admin_refresh(&mut self) -> Vec<Request> {
        let mut out = self.admin_request(AdminAsk::Rooms, ClientMessage::Rooms);
        out.extend(self.admin_request(AdminAsk::Klines, ClientMessage::Klines));
        out
    }

    /// Lists the members of `room`.
    pub fn admin_members(&mut self, room: RoomName) -> Vec<Request> {
        self.admin_request(AdminAsk::Members, ClientMessage::Members { room })
    }

    /// Disconnects `nick`, with an optional reason (empty: none).
    pub fn kill(&mut self, nick: Nick, reason: String) -> Vec<Request> {
        let reason = Some(reason).filter(|r| !r.is_empty());
        self.admin_request(
            AdminAsk::Kill(nick.clone()),
            ClientMessage::Kill { nick, reason },
        )
    }

    /// Bans an account, or an address or CIDR range, from the server, for
    /// `minutes` or until lifted. A nick never has `.`, `:` or `/`, an
    /// address always has one: the form needs no "which" choice.
    pub fn kline(&mut self, target: &str, reason: String, minutes: Option<u32>) -> Vec<Request> {
        let target = target.trim();
        let (address, account) = if target.contains(['.', ':', '/']) {
            (Some(target.to_string()), None)
        } else {
            let Ok(nick) = Nick::new(target) else {
                self.version += 1;
                self.admin.reply = Some(Err(format!(
                    "“{target}” is neither an account name nor an address."
                )));
                return Vec::new();
            };
            (None, Some(nick))
        };
        self.admin_request(
            AdminAsk::Kline,
            ClientMessage::Kline {
                address,
                account,
                reason,
                minutes,
            },
        )
    }

    /// Lifts a server ban.
    pub fn unkline(&mut self, ban: &ServerBan) -> Vec<Request> {
        self.admin_request(
            AdminAsk::Unkline,
            ClientMessage::Unkline {
                address: ban.address.clone(),
                account: ban.account.clone(),
            },
        )
    }

    /// Removes another account (its tokens, roles and waiting whispers).
    pub fn remove_account(&mut self, name: &str) -> Vec<Request> {
        let Ok(account) = Nick::new(name.trim()) else {
            self.version += 1;
            self.admin.reply = Some(Err(format!("“{name}” is not an account name.")));
            return Vec::new();
        };
        self.admin_request(
            AdminAsk::Remove(account.clone()),
            ClientMessage::RemoveAccount { account },
        )
    }

    /// A server ban was set or lifted (answering this session).
    pub(super) fn on_klined(&mut self, ban: ServerBan, set: bool) {
        let target = ban_target(&ban);
        let klines = &mut self.admin.klines;
        klines.retain(|b| b.account != ban.account || b.address != ban.address);
        let text = if set {
            klines.push(ban);
            format!("Banned {target} from the server.")
        } else {
            format!("Lifted the ban on {target}.")
        };
        self.admin.reply = Some(Ok(text));
    }

    /// `kill` ended the session of `nick`.
    pub(super) fn on_killed(&mut self, nick: Nick) {
        if let Some((_, members)) = &mut self.admin.room {
            members.retain(|m| *m != nick);
        }
        self.admin.reply = Some(Ok(format!("{nick} was disconnected.")));
    }

    /// A refused administration request, as a sentence.
    pub(super) fn on_admin_error(&mut self, ask: AdminAsk, code: ErrorCode, message: String) {
        let text = match (code, ask) {
            (ErrorCode::NotAdmin, _) => {
                self.administers = false;
                "Only server administrators may do that, and this account no longer is one.".into()
            }
            (ErrorCode::NoSuchNick, AdminAsk::Kill(nick)) => {
                format!("{nick} is not online: nobody was disconnected.")
            }
            (ErrorCode::NoSuchAccount, AdminAsk::Remove(account)) => {
                format!("There is no account {account}.")
            }
            _ => message,
        };
        self.admin.reply = Some(Err(text));
    }
}
