//! Which way a request goes, declared by its type: answered by the
//! session itself, by the router at once (under its lock, never waiting),
//! or after a wait (for the store, the broker or a password hash); or
//! refused before any of that. A pure function of the request and whether
//! the session said hello, so it is tested without sockets or a runtime.

use banter_protocol::{
    BanList, ClientMessage, ErrorCode, MAX_HIGHLIGHT_BYTES, MAX_HIGHLIGHTS, ModeChange, Nick,
    NotifyLevel, RoomName, TypingState,
};

use crate::core::event::Amendment;
use crate::core::model::{Page, Profile};
use crate::core::router::{Conversation, DEFAULT_HISTORY_PAGE, RouterError, SessionId, Typed};
use crate::core::search::{self, Query};

/// What answering a request takes.
#[derive(Debug, PartialEq)]
pub(super) enum Route {
    /// The session answers it (a keepalive).
    Local(Local),
    /// The router answers it at once.
    Now(SessionId, Now),
    /// It waits for something; the session's task awaits it.
    Waits(Wait),
    /// Refused as it stands.
    Refused(RouterError),
}

#[derive(Debug, PartialEq)]
pub(super) enum Local {
    Ping,
    /// Confirms that whispers that waited were read.
    Pong,
}

/// A request the router answers at once.
#[derive(Debug, PartialEq)]
pub(super) enum Now {
    Part {
        room: RoomName,
        reason: Option<String>,
    },
    Say {
        room: RoomName,
        text: String,
        notice: bool,
        reply_to: Option<u64>,
    },
    Whisper {
        to: Nick,
        text: String,
        notice: bool,
        reply_to: Option<u64>,
    },
    /// An edit, deletion or reaction (its time set by the router).
    Amend {
        place: Conversation,
        message: u64,
        change: Amendment,
    },
    Typing {
        place: Typed,
        state: TypingState,
    },
    Topic {
        room: RoomName,
        text: Option<String>,
    },
    Members {
        room: RoomName,
    },
    Rooms,
    Whois {
        nick: Nick,
    },
    Users {
        nicks: Vec<Nick>,
    },
    Profile {
        realname: Option<String>,
        bot: Option<bool>,
    },
    Watch {
        nicks: Vec<Nick>,
    },
    Who {
        mask: String,
    },
    Unwatch {
        nicks: Vec<Nick>,
    },
    Away {
        message: Option<String>,
    },
    Kick {
        room: RoomName,
        nick: Nick,
        reason: Option<String>,
    },
    /// Sets (`set`) or lifts a ban, or an exception (`list`).
    Ban {
        room: RoomName,
        list: BanList,
        nick: Option<Nick>,
        account: Option<Nick>,
        mask: Option<String>,
        set: bool,
    },
    Bans {
        room: RoomName,
        list: BanList,
    },
    /// Makes (`op`) or unmakes an operator.
    Op {
        room: RoomName,
        account: Nick,
        op: bool,
    },
    SetOwner {
        room: RoomName,
        account: Nick,
    },
    /// Asks for (`set` none) or changes a room's modes.
    Mode {
        room: RoomName,
        set: Option<ModeChange>,
    },
    Invite {
        room: RoomName,
        nick: Nick,
    },
    /// Gives (`set`) or takes a voice.
    Voice {
        room: RoomName,
        nick: Nick,
        set: bool,
    },
}

/// A request that waits: for a password hash (`hello` with a password,
/// `register`), the store (a room to load, history, tokens) or the broker
/// (a nick to claim in a cluster).
#[derive(Debug, PartialEq)]
pub(super) enum Wait {
    Hello {
        nick: Nick,
        password: Option<String>,
        token: Option<String>,
        profile: Profile,
    },
    RegisterAccount {
        nick: Nick,
        password: String,
        invite: Option<String>,
    },
    Join {
        id: SessionId,
        room: RoomName,
        key: Option<String>,
        /// A reconnecting client's join of a room it had (see `rejoin`
        /// in the protocol).
        rejoin: bool,
    },
    History {
        id: SessionId,
        room: RoomName,
        page: Page,
    },
    /// The account's notification level in a conversation: changed
    /// (`level`) or told.
    NotifyLevel {
        id: SessionId,
        target: Conversation,
        level: Option<NotifyLevel>,
    },
    /// A Web Push subscription for the account: kept (`keys`) or ended.
    Push {
        id: SessionId,
        endpoint: String,
        keys: Option<banter_protocol::PushKeys>,
    },
    /// The account's highlight words: replaced (`words`) or told.
    Highlights {
        id: SessionId,
        words: Option<Vec<String>>,
    },
    /// A search of the history the session may read.
    Search {
        id: SessionId,
        query: Query,
        limit: u32,
        before: Option<u64>,
        before_ts: Option<u64>,
    },
    /// A page of the direct conversation with account `with`.
    DirectHistory {
        id: SessionId,
        with: Nick,
        page: Page,
    },
    /// A read position to move (`message` or `ts`) or, with neither, to
    /// tell.
    MarkRead {
        id: SessionId,
        target: Conversation,
        message: Option<u64>,
        ts: Option<u64>,
    },
    /// The account's settings, changed (`always_on`) or told.
    Settings {
        id: SessionId,
        always_on: Option<bool>,
    },
    /// The conversations with activity between the times (Unix ms).
    Targets {
        id: SessionId,
        after_ts: Option<u64>,
        before_ts: Option<u64>,
        limit: Option<u32>,
    },
    /// A room's modes: from the store if the room is not in memory.
    ModeQuery {
        id: SessionId,
        room: RoomName,
    },
    Nick {
        id: SessionId,
        nick: Nick,
    },
    Logout {
        id: SessionId,
        all: bool,
    },
    ChangePassword {
        id: SessionId,
        old: String,
        new: String,
    },
    DeleteAccount {
        id: SessionId,
        password: String,
    },
    /// A server administrator's request.
    Admin {
        id: SessionId,
        act: Admin,
    },
}

/// What a server administrator asks for.
#[derive(Debug, PartialEq)]
pub(super) enum Admin {
    Kill {
        nick: Nick,
        reason: Option<String>,
    },
    /// Sets (`ban` with a reason and a duration) or lifts a server ban.
    Kline {
        address: Option<String>,
        account: Option<Nick>,
        ban: Option<(String, Option<u32>)>,
    },
    Klines,
    RemoveAccount {
        account: Nick,
    },
}

fn admin(id: SessionId, act: Admin) -> Route {
    Route::Waits(Wait::Admin { id, act })
}

/// The conversation an `edit`, `delete` or `react` names: `room` or `with`.
fn place(
    what: &str,
    room: Option<RoomName>,
    with: Option<Nick>,
) -> Result<Conversation, RouterError> {
    match (room, with) {
        (Some(room), None) => Ok(Conversation::Room(room)),
        (None, Some(with)) => Ok(Conversation::With(with)),
        (Some(_), Some(_)) => Err(RouterError::new(
            ErrorCode::BadRequest,
            format!("{what} takes `room` or `with`, not both"),
        )),
        (None, None) => Err(RouterError::new(
            ErrorCode::MissingField,
            format!(
                "{what} needs `room` (a room) or `with` (the other side of a direct conversation)"
            ),
        )),
    }
}

/// Highlight words: at most [`MAX_HIGHLIGHTS`], each one word of at most
/// [`MAX_HIGHLIGHT_BYTES`] bytes.
fn check_highlights(words: &[String]) -> Result<(), RouterError> {
    if words.len() > MAX_HIGHLIGHTS {
        return Err(RouterError::new(
            ErrorCode::BadRequest,
            format!("at most {MAX_HIGHLIGHTS} highlight words"),
        ));
    }
    for word in words {
        let bad = word.is_empty()
            || word.len() > MAX_HIGHLIGHT_BYTES
            || word.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad {
            return Err(RouterError::new(
                ErrorCode::BadRequest,
                format!(
                    "a highlight word is 1 to {MAX_HIGHLIGHT_BYTES} bytes with no spaces; {word:?} is not"
                ),
            ));
        }
    }
    Ok(())
}

/// An amendment of message `message` in the conversation `room`/`with`.
fn amend(
    id: SessionId,
    what: &str,
    (room, with): (Option<RoomName>, Option<Nick>),
    message: u64,
    change: Amendment,
) -> Route {
    match place(what, room, with) {
        Ok(place) => Route::Now(
            id,
            Now::Amend {
                place,
                message,
                change,
            },
        ),
        Err(e) => Route::Refused(e),
    }
}

/// Which way `body` goes for a session that said hello as `id` (or not yet).
/// Long by design: one arm per kind of request, so that a new request
/// type does not compile until its way is declared here.
pub(super) fn route(id: Option<SessionId>, body: ClientMessage) -> Route {
    use ClientMessage as C;
    let now = |id, now| Route::Now(id, now);
    match (id, body) {
        (_, C::Ping) => Route::Local(Local::Ping),
        (_, C::Pong) => Route::Local(Local::Pong),
        (
            _,
            C::Register {
                nick,
                password,
                invite,
            },
        ) => Route::Waits(Wait::RegisterAccount {
            nick,
            password,
            invite,
        }),
        (
            None,
            C::Hello {
                nick,
                password,
                token,
                realname,
                username,
                bot,
            },
        ) => match Profile::new(realname, username, bot) {
            Ok(profile) => Route::Waits(Wait::Hello {
                nick,
                password,
                token,
                profile,
            }),
            Err((code, message)) => Route::Refused(RouterError::new(code, message)),
        },
        (Some(_), C::Hello { .. }) => Route::Refused(RouterError::new(
            ErrorCode::AlreadyRegistered,
            "this session already said hello; use nick to change nick",
        )),
        (None, _) => Route::Refused(RouterError::new(
            ErrorCode::NotRegistered,
            "send hello first: {\"type\":\"hello\",\"nick\":\"yourname\"}",
        )),
        (Some(id), C::Join { room, key, rejoin }) => Route::Waits(Wait::Join {
            id,
            room,
            key,
            rejoin,
        }),
        (
            Some(id),
            C::History {
                room,
                with,
                before,
                after,
                limit,
                before_ts,
                after_ts,
                latest,
            },
        ) => {
            let page = Page {
                before,
                after,
                before_ts,
                after_ts,
                latest,
                limit: limit.unwrap_or(DEFAULT_HISTORY_PAGE),
            };
            match (room, with) {
                (Some(room), None) => Route::Waits(Wait::History { id, room, page }),
                (None, Some(with)) => Route::Waits(Wait::DirectHistory { id, with, page }),
                (Some(_), Some(_)) => Route::Refused(RouterError::new(
                    ErrorCode::BadRequest,
                    "history takes `room` (a room's) or `with` (a direct conversation's), not both",
                )),
                (None, None) => Route::Refused(RouterError::new(
                    ErrorCode::MissingField,
                    "history needs `room` (a room's) or `with` (the account of a direct conversation)",
                )),
            }
        }
        (
            Some(id),
            C::MarkRead {
                room,
                with,
                id: message,
                ts,
            },
        ) => {
            let target = match (room, with) {
                (Some(room), None) => Conversation::Room(room),
                (None, Some(with)) => Conversation::With(with),
                (Some(_), Some(_)) => {
                    return Route::Refused(RouterError::new(
                        ErrorCode::BadRequest,
                        "mark_read takes `room` or `with`, not both",
                    ));
                }
                (None, None) => {
                    return Route::Refused(RouterError::new(
                        ErrorCode::MissingField,
                        "mark_read needs `room` (a room) or `with` (the account of a direct conversation)",
                    ));
                }
            };
            Route::Waits(Wait::MarkRead {
                id,
                target,
                message,
                ts,
            })
        }
        (
            Some(id),
            C::Targets {
                after_ts,
                before_ts,
                limit,
            },
        ) => Route::Waits(Wait::Targets {
            id,
            after_ts,
            before_ts,
            limit,
        }),
        (Some(id), C::Settings { always_on }) => Route::Waits(Wait::Settings { id, always_on }),
        (Some(id), C::Nick { nick }) => Route::Waits(Wait::Nick { id, nick }),
        (Some(id), C::Logout { all }) => Route::Waits(Wait::Logout { id, all }),
        (
            Some(id),
            C::ChangePassword {
                old_password,
                new_password,
            },
        ) => Route::Waits(Wait::ChangePassword {
            id,
            old: old_password,
            new: new_password,
        }),
        (Some(id), C::DeleteAccount { password }) => {
            Route::Waits(Wait::DeleteAccount { id, password })
        }
        (Some(id), C::SetOwner { room, account }) => now(id, Now::SetOwner { room, account }),
        (Some(id), C::Kill { nick, reason }) => admin(id, Admin::Kill { nick, reason }),
        (
            Some(id),
            C::Kline {
                address,
                account,
                reason,
                minutes,
            },
        ) => admin(
            id,
            Admin::Kline {
                address,
                account,
                ban: Some((reason, minutes)),
            },
        ),
        (Some(id), C::Unkline { address, account }) => admin(
            id,
            Admin::Kline {
                address,
                account,
                ban: None,
            },
        ),
        (Some(id), C::Klines) => admin(id, Admin::Klines),
        (Some(id), C::RemoveAccount { account }) => admin(id, Admin::RemoveAccount { account }),
        (Some(id), C::Part { room, reason }) => now(id, Now::Part { room, reason }),
        (
            Some(id),
            C::Say {
                room,
                text,
                notice,
                reply_to,
            },
        ) => now(
            id,
            Now::Say {
                room,
                text,
                notice,
                reply_to,
            },
        ),
        (
            Some(id),
            C::Whisper {
                to,
                text,
                notice,
                reply_to,
            },
        ) => now(
            id,
            Now::Whisper {
                to,
                text,
                notice,
                reply_to,
            },
        ),
        (Some(id), C::NotifyLevel { room, with, level }) => match place("notify_level", room, with)
        {
            Ok(target) => Route::Waits(Wait::NotifyLevel { id, target, level }),
            Err(e) => Route::Refused(e),
        },
        (Some(id), C::PushSubscribe { endpoint, keys }) => Route::Waits(Wait::Push {
            id,
            endpoint,
            keys: Some(keys),
        }),
        (Some(id), C::PushUnsubscribe { endpoint }) => Route::Waits(Wait::Push {
            id,
            endpoint,
            keys: None,
        }),
        (Some(id), C::Highlights { words }) => match words.as_deref().map(check_highlights) {
            Some(Err(e)) => Route::Refused(e),
            _ => Route::Waits(Wait::Highlights { id, words }),
        },
        (
            Some(id),
            C::Search {
                query,
                limit,
                before,
                before_ts,
            },
        ) => match Query::parse(&query) {
            Ok(query) => Route::Waits(Wait::Search {
                id,
                query,
                limit: limit
                    .unwrap_or(search::DEFAULT_RESULTS)
                    .clamp(1, search::MAX_RESULTS),
                before,
                before_ts,
            }),
            Err(e) => Route::Refused(e.into()),
        },
        (
            Some(id),
            C::React {
                room,
                with,
                id: message,
                reaction,
                remove,
            },
        ) => amend(
            id,
            "react",
            (room, with),
            message,
            Amendment::React {
                reaction,
                remove,
                ts: 0,
            },
        ),
        (
            Some(id),
            C::Edit {
                room,
                with,
                id: message,
                text,
            },
        ) => amend(
            id,
            "edit",
            (room, with),
            message,
            Amendment::Edit {
                text,
                ts: 0,
                window_ms: 0,
            },
        ),
        (
            Some(id),
            C::Delete {
                room,
                with,
                id: message,
                reason,
            },
        ) => amend(
            id,
            "delete",
            (room, with),
            message,
            Amendment::Delete { reason },
        ),
        (
            Some(id),
            C::Typing {
                room,
                to,
                with,
                state,
            },
        ) => match place("typing", room, to.or(with)) {
            Ok(Conversation::Room(room)) => now(
                id,
                Now::Typing {
                    place: Typed::Room(room),
                    state,
                },
            ),
            Ok(Conversation::With(to)) => now(
                id,
                Now::Typing {
                    place: Typed::To(to),
                    state,
                },
            ),
            Err(e) => Route::Refused(e),
        },
        (Some(id), C::Topic { room, text }) => now(id, Now::Topic { room, text }),
        (Some(id), C::Members { room }) => now(id, Now::Members { room }),
        (Some(id), C::Rooms) => now(id, Now::Rooms),
        (Some(id), C::Whois { nick }) => now(id, Now::Whois { nick }),
        (Some(id), C::Users { nicks }) => now(id, Now::Users { nicks }),
        (Some(id), C::Away { message }) => now(id, Now::Away { message }),
        (Some(id), C::Profile { realname, bot }) => now(id, Now::Profile { realname, bot }),
        (Some(id), C::Watch { nicks }) => now(id, Now::Watch { nicks }),
        (Some(id), C::Who { mask }) => now(id, Now::Who { mask }),
        (Some(id), C::Unwatch { nicks }) => now(id, Now::Unwatch { nicks }),
        (Some(id), C::Kick { room, nick, reason }) => now(id, Now::Kick { room, nick, reason }),
        (
            Some(id),
            C::Ban {
                room,
                nick,
                account,
                mask,
            },
        ) => now(
            id,
            Now::Ban {
                room,
                list: BanList::Ban,
                nick,
                account,
                mask,
                set: true,
            },
        ),
        (
            Some(id),
            C::Unban {
                room,
                nick,
                account,
                mask,
            },
        ) => now(
            id,
            Now::Ban {
                room,
                list: BanList::Ban,
                nick,
                account,
                mask,
                set: false,
            },
        ),
        (_, C::Except { list, .. } | C::Unexcept { list, .. }) if list.is_ban() => {
            Route::Refused(RouterError::new(
                ErrorCode::BadRequest,
                "list is ban_exception or invite_exception; bans are set with ban and unban",
            ))
        }
        (
            Some(id),
            C::Except {
                room,
                list,
                nick,
                account,
                mask,
            },
        ) => now(
            id,
            Now::Ban {
                room,
                list,
                nick,
                account,
                mask,
                set: true,
            },
        ),
        (
            Some(id),
            C::Unexcept {
                room,
                list,
                nick,
                account,
                mask,
            },
        ) => now(
            id,
            Now::Ban {
                room,
                list,
                nick,
                account,
                mask,
                set: false,
            },
        ),
        (Some(id), C::Bans { room, list }) => now(id, Now::Bans { room, list }),
        (Some(id), C::Op { room, account }) => now(
            id,
            Now::Op {
                room,
                account,
                op: true,
            },
        ),
        (Some(id), C::Deop { room, account }) => now(
            id,
            Now::Op {
                room,
                account,
                op: false,
            },
        ),
        (Some(id), C::Mode { room, set: None }) => Route::Waits(Wait::ModeQuery { id, room }),
        (Some(id), C::Mode { room, set }) => now(id, Now::Mode { room, set }),
        (Some(id), C::Invite { room, nick }) => now(id, Now::Invite { room, nick }),
        (Some(id), C::Voice { room, nick }) => now(
            id,
            Now::Voice {
                room,
                nick,
                set: true,
            },
        ),
        (Some(id), C::Devoice { room, nick }) => now(
            id,
            Now::Voice {
                room,
                nick,
                set: false,
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::new(s).unwrap()
    }

    fn room(s: &str) -> RoomName {
        RoomName::new(s).unwrap()
    }

    fn code(route: Route) -> ErrorCode {
        match route {
            Route::Refused(e) => e.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn before_hello_only_hello_register_and_keepalives_are_taken() {
        let hello = ClientMessage::Hello {
            nick: nick("alice"),
            password: None,
            token: None,
            realname: None,
            username: None,
            bot: false,
        };
        assert!(matches!(
            route(None, hello),
            Route::Waits(Wait::Hello { .. })
        ));
        let register = ClientMessage::Register {
            nick: nick("alice"),
            password: "secret".into(),
            invite: None,
        };
        assert!(matches!(
            route(None, register),
            Route::Waits(Wait::RegisterAccount { .. })
        ));
        assert_eq!(route(None, ClientMessage::Ping), Route::Local(Local::Ping));
        assert_eq!(route(None, ClientMessage::Pong), Route::Local(Local::Pong));
        let say = ClientMessage::Say {
            reply_to: None,
            room: room("lobby"),
            text: "hi".into(),
            notice: false,
        };
        assert_eq!(code(route(None, say)), ErrorCode::NotRegistered);
        let join = ClientMessage::Join {
            room: room("lobby"),
            key: None,
            rejoin: false,
        };
        assert_eq!(code(route(None, join)), ErrorCode::NotRegistered);
    }

    #[test]
    fn a_second_hello_is_refused() {
        let hello = ClientMessage::Hello {
            nick: nick("bob"),
            password: None,
            token: None,
            realname: None,
            username: None,
            bot: false,
        };
        assert_eq!(code(route(Some(1), hello)), ErrorCode::AlreadyRegistered);
    }

    #[test]
    fn what_waits_is_declared_by_type() {
        let waits = [
            ClientMessage::Join {
                room: room("lobby"),
                key: None,
                rejoin: false,
            },
            ClientMessage::Nick {
                nick: nick("carol"),
            },
            ClientMessage::Logout { all: true },
            ClientMessage::History {
                room: Some(room("lobby")),
                with: None,
                before: None,
                after: None,
                limit: None,
                before_ts: None,
                after_ts: None,
                latest: false,
            },
            ClientMessage::History {
                room: None,
                with: Some(nick("bob")),
                before: None,
                after: None,
                limit: None,
                before_ts: None,
                after_ts: None,
                latest: false,
            },
            ClientMessage::Targets {
                after_ts: None,
                before_ts: None,
                limit: None,
            },
            ClientMessage::Mode {
                room: room("lobby"),
                set: None,
            },
        ];
        for body in waits {
            assert!(matches!(route(Some(7), body), Route::Waits(_)));
        }
        let now = [
            ClientMessage::Say {
                reply_to: None,
                room: room("lobby"),
                text: "hi".into(),
                notice: true,
            },
            ClientMessage::Rooms,
            ClientMessage::Unban {
                room: room("lobby"),
                nick: Some(nick("dave")),
                account: None,
                mask: None,
            },
            ClientMessage::Deop {
                room: room("lobby"),
                account: nick("erin"),
            },
            ClientMessage::Mode {
                room: room("lobby"),
                set: Some(ModeChange {
                    secret: Some(true),
                    ..ModeChange::default()
                }),
            },
            ClientMessage::Invite {
                room: room("lobby"),
                nick: nick("bob"),
            },
        ];
        for body in now {
            assert!(matches!(route(Some(7), body), Route::Now(7, _)));
        }
    }

    #[test]
    fn requests_keep_their_fields() {
        let history = ClientMessage::History {
            room: Some(room("lobby")),
            with: None,
            before: Some(9),
            after: None,
            limit: None,
            before_ts: None,
            after_ts: Some(5),
            latest: true,
        };
        let Route::Waits(Wait::History { id, room: r, page }) = route(Some(3), history) else {
            panic!("history waits for the store");
        };
        assert_eq!((id, r.as_str()), (3, "lobby"));
        assert_eq!(
            (page.before, page.after_ts, page.latest, page.limit),
            (Some(9), Some(5), true, DEFAULT_HISTORY_PAGE)
        );
        let unban = ClientMessage::Unban {
            room: room("lobby"),
            nick: None,
            account: Some(nick("frank")),
            mask: None,
        };
        assert_eq!(
            route(Some(3), unban),
            Route::Now(
                3,
                Now::Ban {
                    room: room("lobby"),
                    list: BanList::Ban,
                    nick: None,
                    account: Some(nick("frank")),
                    mask: None,
                    set: false,
                }
            )
        );
    }

    #[test]
    fn exceptions_go_to_their_list_and_never_to_the_bans() {
        let except = |list| ClientMessage::Except {
            room: room("lobby"),
            list,
            nick: None,
            account: None,
            mask: Some("bot*!*@*".into()),
        };
        assert_eq!(
            route(Some(3), except(BanList::InviteException)),
            Route::Now(
                3,
                Now::Ban {
                    room: room("lobby"),
                    list: BanList::InviteException,
                    nick: None,
                    account: None,
                    mask: Some("bot*!*@*".into()),
                    set: true,
                }
            )
        );
        let Route::Refused(e) = route(Some(3), except(BanList::Ban)) else {
            panic!("bans are set with ban");
        };
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(matches!(
            route(None, except(BanList::BanException)),
            Route::Refused(RouterError {
                code: ErrorCode::NotRegistered,
                ..
            })
        ));
    }
}
