//! The core's second port, outward: a message that an account missed
//! because none of its devices is connected (an always-on member of the
//! room, or the target of a whisper that waits). What becomes of it
//! (a Web Push, nothing) is decided outside the core ([`crate::push`]).

use banter_protocol::{Nick, RoomName};

/// A message an account with no device connected did not see.
#[derive(Clone, Debug, PartialEq)]
pub struct Missed {
    pub account: Nick,
    /// Its room; `None`: a direct message.
    pub room: Option<RoomName>,
    pub from: Nick,
    /// The account `from` was logged into, if any (a direct message's
    /// level is kept under the other side's account).
    pub from_account: Option<Nick>,
    pub text: String,
    pub id: u64,
}

pub trait Notify: Send + Sync {
    /// Whether what `account` misses matters here (asked first, so that
    /// nothing is copied for the accounts that have no way to be told).
    fn wants(&self, account: &Nick) -> bool;

    /// Takes `missed`; never waits (a full queue drops it).
    fn missed(&self, missed: Missed);
}
