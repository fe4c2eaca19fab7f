//! The data the core shares with its ports: what the store keeps of a
//! room, a room's roles, a user's profile, and which page of history a
//! request wants.

use banter_protocol::{
    BanInfo, ChatMessage, ErrorCode, MAX_KEY_BYTES, MAX_REALNAME_BYTES, MAX_USERNAME_BYTES, Nick,
    RoomModes, Topic, check_line,
};

/// Everything the router needs to know about a room it loads.
#[derive(Clone, Debug, Default)]
pub struct RoomState {
    pub last_id: u64,
    pub last_ts: u64,
    /// The most recent messages, oldest first.
    pub recent: Vec<ChatMessage>,
    pub topic: Option<Topic>,
    pub owner: Option<Nick>,
    pub ops: Vec<Nick>,
    pub bans: Vec<BanInfo>,
    pub modes: RoomModes,
}

/// Which messages a `history` request wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub before: Option<u64>,
    pub after: Option<u64>,
    pub before_ts: Option<u64>,
    pub after_ts: Option<u64>,
    /// With `after`/`after_ts`: the newest messages past it, not the
    /// oldest (IRC `CHATHISTORY LATEST` with a bound).
    pub latest: bool,
    pub limit: u32,
}

impl Page {
    /// Whether it pages forward: the oldest messages past `after` or
    /// `after_ts` (unless `latest`); otherwise the newest before the
    /// bounds.
    pub fn forward(&self) -> bool {
        (self.after.is_some() || self.after_ts.is_some()) && !self.latest
    }
}

/// A room role kept in `room_roles`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Op,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Op => "op",
        }
    }
}

/// The lower-case key a name is stored under.
pub fn key(nick: &Nick) -> String {
    nick.as_str().to_ascii_lowercase()
}

/// Two accounts' direct conversation as stored (`directs.pair`).
pub fn pair_key(a: &Nick, b: &Nick) -> String {
    pair_keys(key(a), key(b))
}

/// [`pair_key`] of two account keys: sorted, a space between (a key never
/// holds one).
pub fn pair_keys(a: String, b: String) -> String {
    if a <= b {
        format!("{a} {b}")
    } else {
        format!("{b} {a}")
    }
}

/// What a user says of itself (`hello`, `profile`; IRC's `USER`,
/// `SETNAME` and `+B`): shown in `whois`, `members` and IRC's WHOIS and
/// WHO. Checked by [`Profile::new`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    pub realname: Option<Box<str>>,
    pub username: Option<Box<str>>,
    pub bot: bool,
}

impl Profile {
    /// A profile from a request's fields: a real name of one line and at
    /// most [`MAX_REALNAME_BYTES`] (blank: none), a username of at most
    /// [`MAX_USERNAME_BYTES`] letters, digits, `.`, `-` and `_`.
    pub fn new(
        realname: Option<String>,
        username: Option<String>,
        bot: bool,
    ) -> Result<Profile, (ErrorCode, String)> {
        let realname = realname.filter(|r| !r.trim().is_empty());
        if let Some(r) = &realname {
            check_line(r, MAX_REALNAME_BYTES, "real name")?;
        }
        if let Some(u) = &username {
            let ok = !u.is_empty()
                && u.len() <= MAX_USERNAME_BYTES
                && u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
            if !ok {
                return Err((
                    ErrorCode::BadRequest,
                    format!(
                        "a username is 1 to {MAX_USERNAME_BYTES} letters, digits, '.', '-' and '_'"
                    ),
                ));
            }
        }
        Ok(Profile {
            realname: realname.map(Into::into),
            username: username.map(Into::into),
            bot,
        })
    }
}

/// Whether `key` may be a room's key (`+k`): 1 to [`MAX_KEY_BYTES`]
/// printable ASCII characters, no space or comma, not starting with `:`
/// (IRC would read those as something else).
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_BYTES
        && !key.starts_with(':')
        && key.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}

/// The room every web user starts in. Its first member does not run it
/// (see `Room::unrun`): only an owner, its operators and administrators do.
pub const LOBBY: &str = "lobby";

/// The host every user has in a ban mask: a user is `nick!nick@banter`.
pub const MASK_HOST: &str = "banter";

/// Longest ban mask, in bytes.
pub const MAX_MASK: usize = 128;

/// Most entries each of a room's lists (bans, ban exceptions, invite
/// exceptions) holds; IRC's ISUPPORT says so as `MAXLIST`.
pub const MAX_LIST_ENTRIES: usize = 100;

/// Whether the ban mask `mask` (`nick!user@host`, `*` any run, `?` any
/// one character, ASCII case ignored) matches the user `nick`.
pub fn mask_matches(mask: &str, nick: &Nick) -> bool {
    let user = format!("{nick}!{nick}@{MASK_HOST}");
    glob(mask.as_bytes(), user.as_bytes())
}

/// Whether the nick mask `mask` (`*` any run, `?` any one character,
/// ASCII case ignored) matches `nick`.
pub fn nick_matches(mask: &str, nick: &Nick) -> bool {
    glob(mask.as_bytes(), nick.as_str().as_bytes())
}

/// `*`/`?` matching, iterative with one backtrack point (linear for the
/// usual masks, never exponential).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Checks a ban mask: `nick!user@host`, printable ASCII, no spaces.
pub fn check_mask(mask: &str) -> Result<(), String> {
    let shaped = mask
        .split_once('!')
        .is_some_and(|(_, rest)| rest.contains('@'));
    if !shaped || mask.len() > MAX_MASK || !mask.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "a ban mask is nick!user@host (wildcards * and ?), at most {MAX_MASK} bytes"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_nicks_with_wildcards() {
        let nick = |n: &str| Nick::new(n).unwrap();
        assert!(mask_matches("spam*!*@*", &nick("SpamBot7")));
        assert!(mask_matches("*!*@banter", &nick("anyone")));
        assert!(mask_matches("b?b!*@*", &nick("bob")));
        assert!(!mask_matches("b?b!*@*", &nick("bobby")));
        assert!(!mask_matches("*!*@elsewhere", &nick("bob")));
        assert!(mask_matches("*a*a*a*a*!*@*", &nick("aaaaaaaaaaaaaaaa")));
        assert!(!mask_matches("*a*a*a*a*b!*@*", &nick("aaaaaaaaaaaaaaaa")));
        assert!(check_mask("spam*!*@*").is_ok());
        assert!(check_mask("spam").is_err());
        assert!(check_mask("a b!*@*").is_err());
    }
}
