//! IRCv3 capabilities: which ones Banter offers, which a client enabled,
//! and which set of message tags that makes it receive.

/// The capabilities a client may enable, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(u32);

pub const SERVER_TIME: u32 = 1;
pub const MESSAGE_TAGS: u32 = 2;
pub const ECHO_MESSAGE: u32 = 4;
pub const MULTI_PREFIX: u32 = 8;
pub const AWAY_NOTIFY: u32 = 16;
pub const BATCH: u32 = 32;
pub const SASL: u32 = 64;
pub const CHATHISTORY: u32 = 128;
pub const ACCOUNT_TAG: u32 = 256;
pub const INVITE_NOTIFY: u32 = 512;
pub const READ_MARKER: u32 = 1024;
pub const USERHOST_IN_NAMES: u32 = 2048;
/// Offered and accepted; the server's capabilities never change while a
/// client is connected, so it never sends `CAP NEW` or `CAP DEL`.
pub const CAP_NOTIFY: u32 = 4096;
/// Refusals with no numeric of their own come as `FAIL` (else 400).
pub const STANDARD_REPLIES: u32 = 8192;
/// `SETNAME` of room-mates (and one's own) is shown.
pub const SETNAME: u32 = 1 << 14;
/// JOIN carries the account (`*`: none) and the real name.
pub const EXTENDED_JOIN: u32 = 1 << 15;
/// `ACCOUNT` when a room-mate logs in or out.
pub const ACCOUNT_NOTIFY: u32 = 1 << 16;
/// A command's answer carries its `label` (one line), comes in a
/// `labeled-response` batch (several), or is an `ACK` (none).
pub const LABELED_RESPONSE: u32 = 1 << 17;
/// A deleted message comes as `REDACT`, and the client may send one.
pub const REDACTION: u32 = 1 << 18;
/// A message of several lines comes as one `draft/multiline` batch, and
/// the client may send one.
pub const MULTILINE: u32 = 1 << 19;
/// `SEARCH` (soju.im/search) searches history.
pub const SEARCH: u32 = 1 << 20;
/// `WEBPUSH REGISTER`/`UNREGISTER` (draft/webpush).
pub const WEBPUSH: u32 = 1 << 21;

/// Tag variant bits (see [`Caps::tag_variant`]).
pub const VARIANT_TIME: usize = 1;
pub const VARIANT_MSGID: usize = 2;
pub const VARIANT_ACCOUNT: usize = 4;
/// A message of several lines in a `draft/multiline` batch.
pub const VARIANT_MULTILINE: usize = 8;

/// Name and bit of every capability offered, in `CAP LS` order.
const OFFERED: &[(&str, u32)] = &[
    ("account-notify", ACCOUNT_NOTIFY),
    ("account-tag", ACCOUNT_TAG),
    ("away-notify", AWAY_NOTIFY),
    ("batch", BATCH),
    ("cap-notify", CAP_NOTIFY),
    ("draft/chathistory", CHATHISTORY),
    ("draft/message-redaction", REDACTION),
    ("draft/multiline", MULTILINE),
    ("draft/read-marker", READ_MARKER),
    ("draft/webpush", WEBPUSH),
    ("echo-message", ECHO_MESSAGE),
    ("extended-join", EXTENDED_JOIN),
    ("invite-notify", INVITE_NOTIFY),
    ("labeled-response", LABELED_RESPONSE),
    ("message-tags", MESSAGE_TAGS),
    ("multi-prefix", MULTI_PREFIX),
    ("sasl", SASL),
    ("server-time", SERVER_TIME),
    ("setname", SETNAME),
    ("soju.im/search", SEARCH),
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

/// The `CAP LS 302` list: [`offered`], with values: `sasl=PLAIN` (the one
/// mechanism offered) and `draft/multiline`'s bounds (a message's bytes
/// and lines).
pub fn offered_302(max_bytes: usize, max_lines: usize) -> String {
    OFFERED
        .iter()
        .map(|(name, _)| match *name {
            "sasl" => "sasl=PLAIN".to_string(),
            "draft/multiline" => format!("{name}=max-bytes={max_bytes},max-lines={max_lines}"),
            _ => name.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bit of a capability name, if offered.
pub fn bit(name: &str) -> Option<u32> {
    OFFERED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, bit)| bit)
}

impl Caps {
    pub fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    pub fn with(self, bit: u32) -> Caps {
        Caps(self.0 | bit)
    }

    pub fn without(self, bit: u32) -> Caps {
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
    /// [`VARIANT_MULTILINE`] a batch for a message of several lines
    /// (`draft/multiline`, with `batch`).
    pub fn tag_variant(self) -> usize {
        let bit = |cap, variant| if self.has(cap) { variant } else { 0 };
        let multiline = self.has(MULTILINE) && self.has(BATCH);
        bit(SERVER_TIME, VARIANT_TIME)
            | bit(MESSAGE_TAGS, VARIANT_MSGID)
            | bit(ACCOUNT_TAG, VARIANT_ACCOUNT)
            | if multiline { VARIANT_MULTILINE } else { 0 }
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
        assert!(offered().starts_with("account-notify account-tag "));
    }
}
