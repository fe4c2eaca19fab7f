//! Validated names: [`Nick`] (case-preserving, compared case-insensitively)
//! and [`RoomName`] (normalised to lower case). With the `inline-names`
//! feature (the server's) both are stored inline up to 24 bytes (every nick,
//! most room names): a name is copied into many places per connection, and
//! each copy would be an allocation.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

#[cfg(feature = "inline-names")]
type Text = compact_str::CompactString;
#[cfg(not(feature = "inline-names"))]
type Text = String;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a name was refused. Its `Display` starts with `invalid nick` or
/// `invalid room`, which [`crate::parse_request`] relies on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {name:?}: {problem}")]
pub struct NameError {
    pub kind: &'static str,
    pub name: String,
    pub problem: NameProblem,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameProblem {
    #[error("it is empty")]
    Empty,
    #[error("it is longer than {max} characters")]
    TooLong { max: usize },
    #[error("{ch:?} is not allowed here (allowed: {allowed})")]
    BadChar { ch: char, allowed: &'static str },
}

fn shown(name: &str) -> String {
    // Never echo back an unbounded string in an error.
    name.chars().take(40).collect()
}

/// A user's nickname: 1–24 IRC-safe ASCII characters.
///
/// The first character is a letter or one of `` []\`_^{|} ``; the rest may
/// also be digits or `-`. The original case is kept for display, while
/// equality and hashing ignore ASCII case, so `Alice` and `alice` are the
/// same nick everywhere (IRC `CASEMAPPING=ascii`).
#[derive(Clone)]
pub struct Nick(Text);

impl Nick {
    pub const MAX_LEN: usize = 24;
    const SPECIAL: &'static [u8] = b"[]\\`_^{|}";

    pub fn new(name: impl AsRef<str>) -> Result<Self, NameError> {
        let name = name.as_ref();
        let fail = |problem| {
            Err(NameError {
                kind: "nick",
                name: shown(name),
                problem,
            })
        };
        if name.is_empty() {
            return fail(NameProblem::Empty);
        }
        if name.chars().count() > Self::MAX_LEN {
            return fail(NameProblem::TooLong { max: Self::MAX_LEN });
        }
        for (i, ch) in name.chars().enumerate() {
            let ok = ch.is_ascii()
                && (ch.is_ascii_alphabetic()
                    || Self::SPECIAL.contains(&(ch as u8))
                    || (i > 0 && (ch.is_ascii_digit() || ch == '-')));
            if !ok {
                let allowed = if i == 0 {
                    "a letter or one of []\\`_^{|} first"
                } else {
                    "letters, digits, - and []\\`_^{|}"
                };
                return fail(NameProblem::BadChar { ch, allowed });
            }
        }
        Ok(Nick(Text::from(name)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq for Nick {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}
impl Eq for Nick {}

impl Hash for Nick {
    fn hash<H: Hasher>(&self, state: &mut H) {
        for b in self.0.bytes() {
            state.write_u8(b.to_ascii_lowercase());
        }
        state.write_u8(0xff);
    }
}

impl PartialOrd for Nick {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Nick {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let a = self.0.bytes().map(|b| b.to_ascii_lowercase());
        let b = other.0.bytes().map(|b| b.to_ascii_lowercase());
        a.cmp(b)
    }
}

/// A room name: 1–32 characters of `a-z 0-9 - _`. Upper-case letters are
/// accepted and folded to lower case, so `Lobby` and `lobby` are one room.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Text);

impl RoomName {
    pub const MAX_LEN: usize = 32;

    pub fn new(name: impl AsRef<str>) -> Result<Self, NameError> {
        let name = name.as_ref();
        let fail = |name: &str, problem| {
            Err(NameError {
                kind: "room",
                name: shown(name),
                problem,
            })
        };
        if name.is_empty() {
            return fail(name, NameProblem::Empty);
        }
        if name.chars().count() > Self::MAX_LEN {
            return fail(name, NameProblem::TooLong { max: Self::MAX_LEN });
        }
        if let Some(ch) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            let allowed = "a-z, 0-9, - and _";
            return fail(name, NameProblem::BadChar { ch, allowed });
        }
        let mut name = Text::from(name);
        name.make_ascii_lowercase();
        Ok(RoomName(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! name_impls {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl FromStr for $t {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, NameError> {
                $t::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = NameError;
            fn try_from(s: String) -> Result<Self, NameError> {
                $t::new(s)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<$t> for String {
            fn from(n: $t) -> String {
                String::from(n.0)
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                $t::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}
name_impls!(Nick);
name_impls!(RoomName);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn nick_rules() {
        for ok in [
            "a",
            "Alice",
            "bob_2",
            "[x]",
            "`^{|}",
            "a-b",
            "x".repeat(24).as_str(),
        ] {
            assert!(Nick::new(ok).is_ok(), "{ok} should be a valid nick");
        }
        for bad in [
            "", "1abc", "-ab", "a b", "é", "a,b", "#chan", "a:b", "a!b", "a@b",
        ] {
            assert!(Nick::new(bad).is_err(), "{bad:?} should be refused");
        }
        let long = Nick::new("x".repeat(25)).unwrap_err();
        assert_eq!(long.problem, NameProblem::TooLong { max: 24 });
        assert!(long.to_string().starts_with("invalid nick"));
    }

    #[test]
    fn nick_is_case_insensitive_but_keeps_case() {
        let a = Nick::new("Alice").unwrap();
        let b = Nick::new("aLICE").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "Alice");
        let set: HashSet<_> = [a, b].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn room_rules_and_folding() {
        assert_eq!(RoomName::new("Lobby").unwrap().as_str(), "lobby");
        assert!(RoomName::new("a-b_c9").is_ok());
        assert!(RoomName::new("x".repeat(32)).is_ok());
        for bad in ["", "#lobby", "a b", "ü", "x".repeat(33).as_str(), "a.b"] {
            let err = RoomName::new(bad).unwrap_err();
            assert!(err.to_string().starts_with("invalid room"), "{err}");
        }
    }

    #[test]
    #[cfg(all(feature = "inline-names", target_pointer_width = "64"))]
    fn names_up_to_24_bytes_are_stored_inline() {
        assert_eq!(std::mem::size_of::<Nick>(), 24);
        assert_eq!(std::mem::size_of::<Option<Nick>>(), 24);
        let longest = Nick::new("x".repeat(Nick::MAX_LEN)).unwrap();
        assert!(!longest.0.is_heap_allocated(), "every nick is inline");
        assert!(!RoomName::new("r".repeat(24)).unwrap().0.is_heap_allocated());
        let long_room = RoomName::new("R".repeat(RoomName::MAX_LEN)).unwrap();
        assert!(long_room.0.is_heap_allocated());
        assert_eq!(long_room.as_str(), "r".repeat(32), "folded, whole");
    }

    #[test]
    fn serde_validates() {
        let n: Nick = serde_json::from_str("\"bob\"").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"bob\"");
        let err = serde_json::from_str::<Nick>("\"9bob\"").unwrap_err();
        assert!(err.to_string().starts_with("invalid nick"));
        // Escaped strings (which can't be borrowed) work too.
        let r: RoomName = serde_json::from_str("\"lob\\u0062y\"").unwrap();
        assert_eq!(r.as_str(), "lobby");
    }

    proptest! {
        #[test]
        fn valid_nicks_round_trip(s in "[a-zA-Z\\[\\]\\\\`_^{|}][a-zA-Z0-9\\-\\[\\]\\\\`_^{|}]{0,23}") {
            let n = Nick::new(s.clone()).unwrap();
            prop_assert_eq!(n.as_str(), s.as_str());
            let json = serde_json::to_string(&n).unwrap();
            let back: Nick = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.as_str(), s.as_str());
        }

        #[test]
        fn nick_equality_matches_lowercase(a in "[a-zA-Z]{1,6}", b in "[a-zA-Z]{1,6}") {
            let (na, nb) = (Nick::new(a.clone()).unwrap(), Nick::new(b.clone()).unwrap());
            prop_assert_eq!(na == nb, a.eq_ignore_ascii_case(&b));
            prop_assert_eq!(na.cmp(&nb) == std::cmp::Ordering::Equal, na == nb);
        }

        #[test]
        fn any_string_is_accepted_or_refused_without_panic(s in "\\PC{0,40}") {
            let _ = Nick::new(s.clone());
            if let Ok(r) = RoomName::new(s) {
                prop_assert!(r.as_str().len() <= 32);
                prop_assert!(r.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'));
            }
        }
    }
}
