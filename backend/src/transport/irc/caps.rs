//! IRCv3 capabilities: which ones Banter offers, which a client enabled,
//! and which set of message tags that makes it receive.

/// The capabilities a client may enable, as a bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(u8);

pub const SERVER_TIME: u8 = 1;
pub const MESSAGE_TAGS: u8 = 2;
pub const ECHO_MESSAGE: u8 = 4;
pub const MULTI_PREFIX: u8 = 8;
pub const AWAY_NOTIFY: u8 = 16;
pub const BATCH: u8 = 32;
pub const SASL: u8 = 64;
pub const CHATHISTORY: u8 = 128;

/// Name and bit of every capability offered, in `CAP LS` order.
const OFFERED: &[(&str, u8)] = &[
    ("away-notify", AWAY_NOTIFY),
    ("batch", BATCH),
    ("draft/chathistory", CHATHISTORY),
    ("echo-message", ECHO_MESSAGE),
    ("message-tags", MESSAGE_TAGS),
    ("multi-prefix", MULTI_PREFIX),
    ("sasl", SASL),
    ("server-time", SERVER_TIME),
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
pub fn bit(name: &str) -> Option<u8> {
    OFFERED
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, bit)| bit)
}

impl Caps {
    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    pub fn with(self, bit: u8) -> Caps {
        Caps(self.0 | bit)
    }

    pub fn without(self, bit: u8) -> Caps {
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
    /// bit 0 adds `time` (server-time), bit 1 `msgid` (message-tags).
    pub fn tag_variant(self) -> usize {
        usize::from(self.has(SERVER_TIME)) | usize::from(self.has(MESSAGE_TAGS)) << 1
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
    }
}
