//! IRCv3 capabilities: which ones Banter offers, which a client enabled,
//! and which set of message tags that makes it receive.

/// The capabilities a client may enable, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(u16);

pub const SERVER_TIME: u16 = 1;
pub const MESSAGE_TAGS: u16 = 2;
pub const ECHO_MESSAGE: u16 = 4;
pub const MULTI_PREFIX: u16 = 8;
pub const AWAY_NOTIFY: u16 = 16;
pub const BATCH: u16 = 32;
pub const SASL: u16 = 64;
pub const CHATHISTORY: u16 = 128;
pub const ACCOUNT_TAG: u16 = 256;
pub const INVITE_NOTIFY: u16 = 512;
pub const READ_MARKER: u16 = 1024;
pub const USERHOST_IN_NAMES: u16 = 2048;
/// Offered and accepted; the server's capabilities never change while a
/// client is connected, so it never sends `CAP NEW` or `CAP DEL`.
pub const CAP_NOTIFY: u16 = 4096;
/// Refusals with no numeric of their own come as `FAIL` (else 400).
pub const STANDARD_REPLIES: u16 = 8192;

/// Tag variant bits (see [`Caps::tag_variant`]).
pub const VARIANT_TIME: usize = 1;
pub const VARIANT_MSGID: usize = 2;
pub const VARIANT_ACCOUNT: usize = 4;

/// Name and bit of every capability offered, in `CAP LS` order.
const OFFERED: &[(&str, u16)] = &[
    ("account-tag", ACCOUNT_TAG),
    ("away-notify", AWAY_NOTIFY),
    ("batch", BATCH),
    ("cap-notify", CAP_NOTIFY),
    ("draft/chathistory", CHATHISTORY),
    ("draft/read-marker", READ_MARKER),
    ("echo-message", ECHO_MESSAGE),
    ("invite-notify", INVITE_NOTIFY),
    ("message-tags", MESSAGE_TAGS),
    ("multi-prefix", MULTI_PREFIX),
    ("sasl", SASL),
    ("server-time", SERVER_TIME),
    ("standard-replies", STANDARD_REPLIES),
    ("userhost-in-names", USERHOST_IN_NAMES),
];

/// The `CAP LS` list.
pub fn offered() -> String {
    OFFERED
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bit of a capability name, if offered.
pub fn bit(name: &str) -> Option<u16> {
    OFFERED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, bit)| bit)
}

impl Caps {
    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    pub fn with(self, bit: u16) -> Caps {
        Caps(self.0 | bit)
    }

    pub fn without(self, bit: u16) -> Caps {
        Caps(self.0 & !bit)
    }

    /// The enabled capabilities, for `CAP LIST`.
    pub fn names(self) -> String {
        OFFERED
            .iter()
            .filter(|(_, bit)| self.has(*bit))
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Applies a `CAP REQ` list (`a b -c`): all of it, or nothing (`None`)
    /// if any name is unknown.
    pub fn request(mut self, list: &str) -> Option<Caps> {
        if list.trim().is_empty() {
            return None;
        }
        for name in list.split_whitespace() {
            let (remove, name) = match name.strip_prefix('-') {
                Some(name) => (true, name),
                None => (false, name),
            };
            let bit = bit(name)?;
            self = if remove {
                self.without(bit)
            } else {
                self.with(bit)
            };
        }
        Some(self)
    }

    /// Which cached IRC rendering of a chat message this client gets:
    /// [`VARIANT_TIME`] adds `time` (server-time), [`VARIANT_MSGID`]
    /// `msgid` (message-tags), [`VARIANT_ACCOUNT`] `account` (account-tag).
    pub fn tag_variant(self) -> usize {
        let bit = |cap, variant| if self.has(cap) { variant } else { 0 };
        bit(SERVER_TIME, VARIANT_TIME)
            | bit(MESSAGE_TAGS, VARIANT_MSGID)
            | bit(ACCOUNT_TAG, VARIANT_ACCOUNT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_all_or_nothing() {
        let caps = Caps::default().request("server-time echo-message").unwrap();
        assert!(caps.has(SERVER_TIME) && caps.has(ECHO_MESSAGE) && !caps.has(BATCH));
        assert_eq!(caps.names(), "echo-message server-time");
        assert_eq!(caps.request("batch sasl2"), None, "sasl2 is not offered");
        assert_eq!(caps.request(""), None);
        let caps = caps.request("-server-time message-tags").unwrap();
        assert_eq!(caps.names(), "echo-message message-tags");
        assert_eq!(caps.tag_variant(), 2);
        assert_eq!(Caps::default().tag_variant(), 0);
        let all = Caps::default()
            .request("account-tag server-time message-tags")
            .unwrap();
        assert_eq!(all.tag_variant(), 7);
        assert!(offered().starts_with("account-tag "));
    }
}
