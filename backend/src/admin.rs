//! Server administration: who the administrators are (`--server-admin`
//! names and accounts granted by `banter admin grant`), and the server
//! bans (K-lines) by address range or account, held in memory for the
//! check at every `hello` and kept in the store. The session carries out
//! the administrators' requests; this file only knows who and what.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::RwLock;

use banter_protocol::{Nick, ServerBan};
use ipnet::IpNet;

use crate::net::forwarded::Cidr;

/// Who may administer the server.
#[derive(Default)]
pub struct Admins {
    /// From `--server-admin`: always administrators (lower case).
    named: HashSet<String>,
    /// Granted in the store (lower case), as last read (at start and at
    /// each login of the account).
    granted: RwLock<HashSet<String>>,
}

impl Admins {
    pub fn new(named: &[String], granted: Vec<Nick>) -> Admins {
        Admins {
            named: named.iter().map(|n| n.to_ascii_lowercase()).collect(),
            granted: RwLock::new(granted.iter().map(key).collect()),
        }
    }

    pub fn is_admin(&self, account: &Nick) -> bool {
        let k = key(account);
        self.named.contains(&k) || self.granted.read().unwrap().contains(&k)
    }

    /// What the store says of `account` now (read at its login).
    pub fn set_granted(&self, account: &Nick, admin: bool) {
        let mut granted = self.granted.write().unwrap();
        if admin {
            granted.insert(key(account));
        } else {
            granted.remove(&key(account));
        }
    }
}

fn key(account: &Nick) -> String {
    account.as_str().to_ascii_lowercase()
}

/// A server ban's target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Address(IpNet),
    Account(String),
}

impl Target {
    /// The target `ban` names, or why it names none.
    pub fn of(address: Option<&str>, account: Option<&Nick>) -> Result<Target, String> {
        match (address, account) {
            (Some(address), None) => address.parse::<Cidr>().map(|c| Target::Address(c.0)),
            (None, Some(account)) => Ok(Target::Account(key(account))),
            _ => Err("name either an address (or CIDR range) or an account".into()),
        }
    }

    /// The store's (kind, target) for it.
    pub fn stored(&self) -> (&'static str, String) {
        match self {
            Target::Address(net) => ("address", net.to_string()),
            Target::Account(account) => ("account", account.clone()),
        }
    }
}

/// The server bans, in memory.
#[derive(Default)]
pub struct ServerBans {
    list: RwLock<Vec<(Target, ServerBan)>>,
}

impl ServerBans {
    pub fn new(bans: Vec<ServerBan>) -> ServerBans {
        let list = bans
            .into_iter()
            .filter_map(|b| {
                Some((
                    Target::of(b.address.as_deref(), b.account.as_ref()).ok()?,
                    b,
                ))
            })
            .collect();
        ServerBans {
            list: RwLock::new(list),
        }
    }

    /// The ban that keeps `ip` (or `account`) out at `now_ms`, if any.
    pub fn find(&self, ip: IpAddr, account: Option<&Nick>, now_ms: u64) -> Option<ServerBan> {
        let ip = ip.to_canonical();
        let account = account.map(key);
        self.list
            .read()
            .unwrap()
            .iter()
            .filter(|(_, b)| b.expires.is_none_or(|e| e > now_ms))
            .find(|(target, _)| match target {
                Target::Address(net) => net.contains(&ip),
                Target::Account(a) => account.as_ref() == Some(a),
            })
            .map(|(_, b)| b.clone())
    }

    /// Sets (replacing one with the same target) or lifts a ban; lifting
    /// answers the ban that was lifted.
    pub fn set(&self, target: Target, ban: Option<ServerBan>) -> Option<ServerBan> {
        let mut list = self.list.write().unwrap();
        let old = list
            .iter()
            .position(|(t, _)| *t == target)
            .map(|i| list.swap_remove(i).1);
        if let Some(ban) = ban {
            list.push((target, ban));
        }
        old
    }

    /// Every ban in force at `now_ms`.
    pub fn list(&self, now_ms: u64) -> Vec<ServerBan> {
        let mut bans: Vec<ServerBan> = self
            .list
            .read()
            .unwrap()
            .iter()
            .filter(|(_, b)| b.expires.is_none_or(|e| e > now_ms))
            .map(|(_, b)| b.clone())
            .collect();
        bans.sort_by_key(|b| b.ts);
        bans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ban(address: Option<&str>, account: Option<&str>, expires: Option<u64>) -> ServerBan {
        ServerBan {
            address: address.map(String::from),
            account: account.map(|a| Nick::new(a).unwrap()),
            reason: "spam".into(),
            by: Nick::new("root").unwrap(),
            ts: 1,
            expires,
        }
    }

    #[test]
    fn bans_match_ranges_and_accounts_until_they_expire() {
        let bans = ServerBans::new(vec![
            ban(Some("192.0.2.0/24"), None, None),
            ban(None, Some("Mallory"), Some(100)),
        ]);
        let inside: IpAddr = "192.0.2.77".parse().unwrap();
        let outside: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(bans.find(inside, None, 0).is_some());
        assert!(
            bans.find("::ffff:192.0.2.9".parse().unwrap(), None, 0)
                .is_some()
        );
        assert!(bans.find(outside, None, 0).is_none());
        let mallory = Nick::new("mallory").unwrap();
        assert!(bans.find(outside, Some(&mallory), 99).is_some());
        assert!(bans.find(outside, Some(&mallory), 100).is_none(), "expired");
        let target = Target::of(Some("192.0.2.0/24"), None).unwrap();
        assert!(bans.set(target, None).is_some());
        assert!(bans.find(inside, None, 0).is_none());
        assert!(Target::of(None, None).is_err());
        assert!(Target::of(Some("not an address"), None).is_err());
    }

    #[test]
    fn admins_are_named_or_granted() {
        let admins = Admins::new(&["Root".into()], vec![Nick::new("Ops").unwrap()]);
        assert!(admins.is_admin(&Nick::new("root").unwrap()));
        assert!(admins.is_admin(&Nick::new("OPS").unwrap()));
        admins.set_granted(&Nick::new("ops").unwrap(), false);
        assert!(!admins.is_admin(&Nick::new("ops").unwrap()));
        assert!(!admins.is_admin(&Nick::new("bob").unwrap()));
    }
}
