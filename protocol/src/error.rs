//! Stable, machine-readable error codes. Clients match on these strings;
//! renaming one is a breaking change, adding one is not.

use std::fmt;

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The `code` of an `error` or `closing` message. On the wire it is the
/// [`as_str`](ErrorCode::as_str) name; a name this version does not know
/// reads as [`ErrorCode::Unknown`]. A new code goes in [`as_str`](ErrorCode::as_str)
/// and in [`ErrorCode::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    // --- the frame itself ---
    /// The frame is not valid JSON.
    BadJson,
    /// The JSON has a `type` this server does not know.
    UnknownType,
    /// A required field (or `type`) is missing.
    MissingField,
    /// A field has the wrong type or value, or the frame is not an object.
    BadRequest,
    /// A TCP line was longer than the line limit.
    LineTooLong,
    /// A WebSocket text frame was longer than the frame limit.
    FrameTooLong,
    /// A WebSocket binary frame; the protocol is text (JSON) only.
    BinaryUnsupported,
    // --- names and text ---
    InvalidNick,
    InvalidRoom,
    /// `text` is longer than the server's `max_text_bytes`.
    TextTooLong,
    /// `text` is empty or only white space.
    EmptyText,
    /// `text` contains a character that is never allowed (NUL, CR).
    InvalidText,
    // --- session state ---
    /// A request other than `hello` before `hello`.
    NotRegistered,
    /// A second `hello`.
    AlreadyRegistered,
    /// The nick is in use (compared case-insensitively, on every transport).
    NickTaken,
    /// The request names a room the session has not joined.
    NotInRoom,
    /// The request names a room nobody is in (IRC: 403, or 401 for a
    /// message).
    NoSuchRoom,
    /// A whisper to a nick nobody is using.
    NoSuchNick,
    /// Joining would exceed the rooms-per-session limit.
    TooManyRooms,
    /// The account has as many connections (devices) logged in as the
    /// server allows.
    TooManyDevices,
    /// A `watch` would take the watch list past its limit.
    TooManyWatched,
    /// The server holds too many rooms to create another.
    ServerFull,
    /// Too many connections from the client's address, or opened too fast.
    TooManyConnections,
    /// Too many requests (or wrong passwords); slow down.
    RateLimited,
    /// The server is too busy to do that now (every password-hashing slot
    /// stayed taken); try again in a few seconds.
    Busy,
    // --- accounts and rooms ---
    /// The nick belongs to an account: log in with its password or token.
    NickReserved,
    /// Wrong password, or an unknown or revoked token.
    AuthFailed,
    /// `register` for a nick that already has an account.
    AccountExists,
    /// A password shorter than 8 or longer than 256 bytes.
    InvalidPassword,
    /// The request needs an account (log in first), or names an account
    /// that does not exist.
    NoSuchAccount,
    /// Only the room's operators may do that.
    NotOperator,
    /// You are banned from that room.
    Banned,
    /// The room is invite-only (`+i`) and you were not invited.
    InviteOnly,
    /// The room has a key (`+k`) and `join` gave none, or another.
    BadKey,
    /// The room has as many members as its limit (`+l`) allows.
    RoomFull,
    /// A room's ban, ban exception or invite exception list holds as many
    /// entries as it may.
    ListFull,
    /// A `mark_read` names a message that is not there.
    NoSuchMessage,
    /// An `edit` or `delete` of a message that is not yours (and, for a
    /// delete, you are not one of the room's operators).
    NotYourMessage,
    /// An `edit` after the server's edit window (`--edit-window`) closed.
    EditTooLate,
    /// A `react` with an empty reaction, or one too long or holding white
    /// space or control characters.
    InvalidReaction,
    /// A `react` past the reactions one user may leave on a message.
    TooManyReactions,
    /// A message with more lines than the server allows.
    TooManyLines,
    /// The room is moderated (`+m`): only voiced members and operators speak.
    Moderated,
    /// The room lets in only logged-in users (`+R`).
    AccountRequired,
    /// An `invite` of someone who is in the room already.
    AlreadyInRoom,
    /// This server runs without a store (accounts need one).
    Unsupported,
    /// This server does not let anyone create an account now
    /// (`--registration closed`).
    RegistrationClosed,
    /// Only server administrators may do that.
    NotAdmin,
    /// Your address or account is banned from this server (`closing`, or
    /// the answer to `hello`).
    ServerBanned,
    /// A server administrator ended this session (`closing`).
    Killed,
    /// `register` without an `invite` on a server where accounts need one
    /// (`--registration invite`).
    InviteRequired,
    /// An `invite` code that does not exist, expired or was used up.
    InvalidInvite,
    /// A whisper to an offline account that has as many whispers waiting
    /// as it may (in all, or from this sender); it was not kept.
    MailboxFull,
    // --- reasons for `closing` ---
    /// No `hello` within the handshake timeout.
    HandshakeTimeout,
    /// The client stayed silent through the idle timeout and a ping.
    IdleTimeout,
    /// The client did not read what it was sent within the write timeout.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
    /// The account's login was revoked from another session (a password
    /// change, `logout` with `all`, the account deleted).
    LoggedOutElsewhere,
    /// Something went wrong on the server's side.
    Internal,
    /// A code this build does not know (sent by a newer server).
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadJson => "bad_json",
            UnknownType => "unknown_type",
            MissingField => "missing_field",
            BadRequest => "bad_request",
            LineTooLong => "line_too_long",
            FrameTooLong => "frame_too_long",
            BinaryUnsupported => "binary_unsupported",
            InvalidNick => "invalid_nick",
            InvalidRoom => "invalid_room",
            TextTooLong => "text_too_long",
            EmptyText => "empty_text",
            InvalidText => "invalid_text",
            NotRegistered => "not_registered",
            AlreadyRegistered => "already_registered",
            NickTaken => "nick_taken",
            NotInRoom => "not_in_room",
            NoSuchRoom => "no_such_room",
            NoSuchNick => "no_such_nick",
            TooManyRooms => "too_many_rooms",
            TooManyDevices => "too_many_devices",
            TooManyWatched => "too_many_watched",
            ServerFull => "server_full",
            TooManyConnections => "too_many_connections",
            RateLimited => "rate_limited",
            Busy => "busy",
            NickReserved => "nick_reserved",
            AuthFailed => "auth_failed",
            AccountExists => "account_exists",
            InvalidPassword => "invalid_password",
            NoSuchAccount => "no_such_account",
            NotOperator => "not_operator",
            Banned => "banned",
            InviteOnly => "invite_only",
            BadKey => "bad_key",
            RoomFull => "room_full",
            ListFull => "list_full",
            NoSuchMessage => "no_such_message",
            NotYourMessage => "not_your_message",
            EditTooLate => "edit_too_late",
            InvalidReaction => "invalid_reaction",
            TooManyReactions => "too_many_reactions",
            TooManyLines => "too_many_lines",
            Moderated => "moderated",
            AccountRequired => "account_required",
            AlreadyInRoom => "already_in_room",
            Unsupported => "unsupported",
            RegistrationClosed => "registration_closed",
            MailboxFull => "mailbox_full",
            InviteRequired => "invite_required",
            NotAdmin => "not_admin",
            ServerBanned => "server_banned",
            Killed => "killed",
            InvalidInvite => "invalid_invite",
            HandshakeTimeout => "handshake_timeout",
            IdleTimeout => "idle_timeout",
            SlowConsumer => "slow_consumer",
            ShuttingDown => "shutting_down",
            LoggedOutElsewhere => "logged_out_elsewhere",
            Internal => "internal",
            Unknown => "unknown",
        }
    }
}

impl ErrorCode {
    /// Every code but [`ErrorCode::Unknown`].
    pub const ALL: &'static [ErrorCode] = {
        use ErrorCode::*;
        &[
            BadJson,
            UnknownType,
            MissingField,
            BadRequest,
            LineTooLong,
            FrameTooLong,
            BinaryUnsupported,
            InvalidNick,
            InvalidRoom,
            TextTooLong,
            EmptyText,
            InvalidText,
            NotRegistered,
            AlreadyRegistered,
            NickTaken,
            NotInRoom,
            NoSuchRoom,
            NoSuchNick,
            TooManyRooms,
            TooManyDevices,
            TooManyWatched,
            ServerFull,
            TooManyConnections,
            RateLimited,
            Busy,
            NickReserved,
            AuthFailed,
            AccountExists,
            InvalidPassword,
            NoSuchAccount,
            NotOperator,
            Banned,
            InviteOnly,
            BadKey,
            RoomFull,
            ListFull,
            NoSuchMessage,
            NotYourMessage,
            EditTooLate,
            InvalidReaction,
            TooManyReactions,
            TooManyLines,
            Moderated,
            AccountRequired,
            AlreadyInRoom,
            Unsupported,
            RegistrationClosed,
            MailboxFull,
            InviteRequired,
            InvalidInvite,
            NotAdmin,
            ServerBanned,
            Killed,
            HandshakeTimeout,
            IdleTimeout,
            SlowConsumer,
            ShuttingDown,
            LoggedOutElsewhere,
            Internal,
        ]
    };
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

// By hand rather than derived: one lookup in [`ErrorCode::ALL`] is a
// fraction of the derive's code, which the web client downloads.
impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == name)
            .unwrap_or(ErrorCode::Unknown))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for &code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
        let future: ErrorCode = serde_json::from_str("\"some_new_code\"").unwrap();
        assert_eq!(future, ErrorCode::Unknown);
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len(), "every name is different");
    }
}
