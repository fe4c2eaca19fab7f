//! The router alone: no sockets, no runtime.

use super::*;
use banter_protocol::{Limits, PROTOCOL_VERSION};

fn router() -> Router {
    Router::new(RouterConfig {
        max_text_bytes: 100,
        max_rooms_per_session: 3,
        max_devices: 10,
        max_offline: 100,
        max_rooms: 4,
        history_len: 5,
        max_lines: 100,
        edit_window_ms: 86_400_000,
    })
}

fn nick(s: &str) -> Nick {
    Nick::new(s).unwrap()
}
fn room(s: &str) -> RoomName {
    RoomName::new(s).unwrap()
}

fn welcome(n: &str) -> ServerMessage {
    ServerMessage::Welcome {
        vapid_public_key: None,
        nick: nick(n),
        protocol: PROTOCOL_VERSION,
        server: "test".into(),
        limits: Limits {
            max_text_bytes: 100,
            max_frame_bytes: 1000,
            max_rooms: 3,
            idle_timeout_secs: 60,
            max_lines: 100,
            edit_window_secs: 86_400,
        },
    }
}

struct Client {
    id: SessionId,
    outbox: Arc<Outbox>,
}

impl Client {
    fn new(router: &Router, n: &str) -> Client {
        let outbox = Arc::new(Outbox::new(64));
        let id = router
            .connect(nick(n), outbox.clone(), welcome(n), None)
            .unwrap();
        let client = Client { id, outbox };
        assert!(matches!(client.take()[..], [ServerMessage::Welcome { .. }]));
        client
    }

    fn take(&self) -> Vec<ServerMessage> {
        let mut batch = VecDeque::new();
        self.outbox.take_batch(&mut batch);
        batch.iter().map(|f| f.message().unwrap().clone()).collect()
    }

    fn take_frames(&self) -> Vec<Frame> {
        let mut batch = VecDeque::new();
        self.outbox.take_batch(&mut batch);
        batch.into_iter().collect()
    }
}

#[test]
fn nicks_are_unique_ignoring_case() {
    let r = router();
    let _a = Client::new(&r, "Alice");
    let err = r
        .connect(
            nick("aLiCe"),
            Arc::new(Outbox::new(4)),
            welcome("aLiCe"),
            None,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NickTaken);
    r.quit(_a.id, None);
    assert!(
        r.connect(
            nick("alice"),
            Arc::new(Outbox::new(4)),
            welcome("alice"),
            None
        )
        .is_ok(),
        "a quit frees the nick"
    );
}

#[test]
fn join_say_and_presence() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "bob");
    r.join(a.id, room("lobby"), None, Some(Ref::Int(1)))
        .unwrap();
    r.say(a.id, room("lobby"), "first".into(), false, None, None)
        .unwrap();
    r.join(b.id, room("lobby"), None, None).unwrap();

    let got = a.take();
    assert!(
        matches!(&got[0], ServerMessage::Joined { members, history, .. } if members == &[nick("alice")] && history.is_empty())
    );
    assert!(matches!(&got[1], ServerMessage::Message(m) if m.id == 1 && m.text == "first"));
    assert!(
        matches!(&got[2], ServerMessage::Presence { nick: n, event: PresenceEvent::Join, .. } if n == &nick("bob"))
    );

    let got = b.take();
    let ServerMessage::Joined {
        members, history, ..
    } = &got[0]
    else {
        panic!("{got:?}")
    };
    assert_eq!(members, &[nick("alice"), nick("bob")]);
    assert_eq!(history.len(), 1, "joined carries recent history");

    // Everyone gets one shared frame; the sender's copy carries its ref.
    r.say(
        b.id,
        room("lobby"),
        "hi".into(),
        false,
        None,
        Some(Ref::Str("r1".into())),
    )
    .unwrap();
    r.say(a.id, room("lobby"), "hey".into(), false, None, None)
        .unwrap();
    let (fa, fb) = (a.take_frames(), b.take_frames());
    assert_eq!(fb[0].reference(), Some(&Ref::Str("r1".into())));
    assert_eq!(fa[0].reference(), None);
    assert!(
        fa[1].ptr_eq(&fb[1]),
        "one frame, shared, not copied per member"
    );
    let (ServerMessage::Message(m1), ServerMessage::Message(m2)) =
        (fa[0].message().unwrap(), fa[1].message().unwrap())
    else {
        panic!()
    };
    assert!(m2.id > m1.id && m2.ts >= m1.ts);
}

#[test]
fn ids_strictly_increase_and_history_is_a_bounded_ring() {
    let r = router();
    let a = Client::new(&r, "alice");
    r.join(a.id, room("x"), None, None).unwrap();
    let mut last = 0;
    for i in 0..20 {
        let id = r
            .say(a.id, room("x"), format!("m{i}"), false, None, None)
            .unwrap();
        assert!(id > last);
        last = id;
    }
    a.take();
    let page = |before: Option<u64>, after: Option<u64>, limit: u32, latest: bool| Page {
        before,
        after,
        limit,
        latest,
        ..Page::default()
    };
    r.history(a.id, room("x"), page(None, None, 50, false), None)
        .unwrap();
    let [ServerMessage::History { messages, .. }] = &a.take()[..] else {
        panic!()
    };
    let ids: Vec<u64> = messages.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        vec![16, 17, 18, 19, 20],
        "only history_len messages are kept"
    );

    for (before, after, limit, latest) in [
        (None, Some(16), 2, false),
        (Some(19), None, 2, false),
        (Some(19), Some(16), 50, false),
        (None, Some(16), 2, true),
    ] {
        r.history(a.id, room("x"), page(before, after, limit, latest), None)
            .unwrap();
    }
    let pages: Vec<Vec<u64>> = a
        .take()
        .into_iter()
        .map(|m| match m {
            ServerMessage::History { messages, .. } => messages.iter().map(|m| m.id).collect(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        pages,
        vec![vec![17, 18], vec![17, 18], vec![17, 18], vec![19, 20]],
        "after: the oldest past it; latest: the newest past it, oldest first"
    );
}

#[test]
fn errors_are_specific() {
    let r = router();
    let a = Client::new(&r, "alice");
    let code = |res: Result<u64>| res.unwrap_err().code;
    assert_eq!(
        code(r.say(a.id, room("x"), "hi".into(), false, None, None)),
        ErrorCode::NoSuchRoom,
        "nobody is in x"
    );
    let b = Client::new(&r, "bob");
    r.join(b.id, room("x"), None, None).unwrap();
    assert_eq!(
        code(r.say(a.id, room("x"), "hi".into(), false, None, None)),
        ErrorCode::NotInRoom
    );
    r.join(a.id, room("x"), None, None).unwrap();
    assert_eq!(
        code(r.say(a.id, room("x"), "x".repeat(101), false, None, None)),
        ErrorCode::TextTooLong
    );
    assert_eq!(
        code(r.say(a.id, room("x"), "  ".into(), false, None, None)),
        ErrorCode::EmptyText
    );
    assert_eq!(
        code(r.whisper(a.id, nick("ghost"), "boo".into(), false, None, None)),
        ErrorCode::NoSuchNick
    );
    assert_eq!(
        r.part(a.id, room("y"), None, None).unwrap_err().code,
        ErrorCode::NoSuchRoom
    );
    assert_eq!(
        r.part(b.id, room("x"), None, None).map(|_| ()),
        Ok(()),
        "bob leaves x"
    );
    assert_eq!(
        r.part(b.id, room("x"), None, None).unwrap_err().code,
        ErrorCode::NotInRoom,
        "alice is still in x"
    );
    r.join(a.id, room("y"), None, None).unwrap();
    r.join(a.id, room("z"), None, None).unwrap();
    assert_eq!(
        r.join(a.id, room("w"), None, None).unwrap_err().code,
        ErrorCode::TooManyRooms
    );
    assert_eq!(
        r.join(999, room("w"), None, None).unwrap_err().code,
        ErrorCode::NotRegistered
    );
}

#[test]
fn empty_rooms_are_forgotten_only_under_pressure() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "bob");
    for n in ["r1", "r2", "r3"] {
        r.join(a.id, room(n), None, None).unwrap();
    }
    r.join(b.id, room("r4"), None, None).unwrap();
    assert_eq!(r.stats().rooms, 4);
    assert_eq!(
        r.join(b.id, room("r5"), None, None).unwrap_err().code,
        ErrorCode::ServerFull
    );
    r.part(a.id, room("r1"), None, None).unwrap();
    r.join(b.id, room("r5"), None, None).unwrap();
    assert_eq!(r.stats().rooms, 4);
}

#[test]
fn whisper_reaches_the_target_and_echoes() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "Bob");
    r.whisper(
        a.id,
        nick("BOB"),
        "psst".into(),
        false,
        None,
        Some(Ref::Int(5)),
    )
    .unwrap();
    let [ServerMessage::Direct(to_b)] = &b.take()[..] else {
        panic!()
    };
    assert_eq!(
        (to_b.from.as_str(), to_b.to.as_str(), to_b.text.as_str()),
        ("alice", "Bob", "psst")
    );
    let echo = a.take_frames();
    assert_eq!(echo[0].reference(), Some(&Ref::Int(5)));
    assert_eq!(
        echo[0].message(),
        Some(&ServerMessage::Direct(to_b.clone()))
    );
}

#[test]
fn part_quit_and_nick_change_are_seen_by_the_room() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "bob");
    let c = Client::new(&r, "carol");
    for s in [&a, &b, &c] {
        r.join(s.id, room("lobby"), None, None).unwrap();
    }
    a.take();
    r.part(b.id, room("lobby"), None, None).unwrap();
    assert!(matches!(
        &b.take().last(),
        Some(ServerMessage::Parted { .. })
    ));
    r.change_nick(c.id, nick("caz"), None).unwrap();
    assert_eq!(
        r.change_nick(c.id, nick("ALICE"), None).unwrap_err().code,
        ErrorCode::NickTaken
    );
    r.quit(c.id, None);
    let events: Vec<(PresenceEvent, String, Option<String>)> = a
        .take()
        .into_iter()
        .map(|m| match m {
            ServerMessage::Presence {
                event,
                nick,
                new_nick,
                ..
            } => (event, nick.to_string(), new_nick.map(|n| n.to_string())),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        events,
        vec![
            (PresenceEvent::Part, "bob".into(), None),
            (PresenceEvent::Nick, "carol".into(), Some("caz".into())),
            (PresenceEvent::Quit, "caz".into(), None),
        ]
    );
    // "carol" is free again, "caz" too after the quit.
    Client::new(&r, "carol");
    Client::new(&r, "caz");
}

#[test]
fn topics_are_kept_shown_on_join_and_announced() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "bob");
    r.join(a.id, room("lobby"), None, None).unwrap();
    assert_eq!(
        r.topic(b.id, room("lobby"), Some("mine".into()), None)
            .unwrap_err()
            .code,
        ErrorCode::NotInRoom,
        "only members set the topic"
    );
    assert_eq!(
        r.topic(a.id, room("lobby"), Some("x".repeat(391)), None)
            .unwrap_err()
            .code,
        ErrorCode::TextTooLong
    );
    r.topic(
        a.id,
        room("lobby"),
        Some("welcome".into()),
        Some(Ref::Int(1)),
    )
    .unwrap();
    let got = a.take_frames();
    assert_eq!(got.last().unwrap().reference(), Some(&Ref::Int(1)));
    let Some(ServerMessage::Topic { topic: Some(t), .. }) = got.last().unwrap().message() else {
        panic!("{got:?}")
    };
    assert_eq!((t.text.as_str(), t.by.as_str()), ("welcome", "alice"));
    // Anyone may read it; a joiner gets it with `joined`.
    r.topic(b.id, room("lobby"), None, None).unwrap();
    assert!(
        matches!(&b.take()[..], [ServerMessage::Topic { topic: Some(t), .. }] if t.text == "welcome")
    );
    r.join(b.id, room("lobby"), None, None).unwrap();
    assert!(
        matches!(&b.take()[..], [ServerMessage::Joined { topic: Some(t), .. }] if t.text == "welcome")
    );
    a.take();
    r.topic(b.id, room("lobby"), Some(" ".into()), None)
        .unwrap();
    assert!(
        matches!(&a.take()[..], [ServerMessage::Topic { topic: Some(t), .. }] if t.text.is_empty() && t.by == nick("bob")),
        "blank clears, and the room hears who cleared it"
    );
    r.topic(a.id, room("lobby"), None, None).unwrap();
    assert!(matches!(
        &a.take()[..],
        [ServerMessage::Topic { topic: None, .. }]
    ));
    // A room nobody is in has no topic to show.
    let err = r.topic(a.id, room("nowhere"), None, None).unwrap_err();
    assert_eq!(err.code, ErrorCode::NoSuchRoom);
}

#[test]
fn members_rooms_and_whois_describe_the_server() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "Bob");
    r.join(a.id, room("lobby"), None, None).unwrap();
    r.join(b.id, room("lobby"), None, None).unwrap();
    r.join(b.id, room("dev"), None, None).unwrap();
    r.topic(b.id, room("dev"), Some("rust".into()), None)
        .unwrap();
    r.away(b.id, Some("lunch".into()), None).unwrap();
    a.take();
    r.members(a.id, room("lobby"), None).unwrap();
    r.members(a.id, room("ghosts"), None).unwrap();
    r.rooms(a.id, None).unwrap();
    r.whois(a.id, nick("bob"), None).unwrap();
    let got = a.take();
    assert_eq!(
        got[0],
        ServerMessage::Members {
            room: room("lobby"),
            members: vec![nick("alice"), nick("Bob")],
            away: vec![nick("Bob")],
            // The lobby's first member does not run it.
            moderators: vec![],
            voiced: vec![],
            users: vec![
                UserInfo {
                    nick: nick("alice"),
                    away: None,
                    account: None,
                    realname: None,
                    username: None,
                    bot: false,
                    oper: false,
                },
                UserInfo {
                    nick: nick("Bob"),
                    away: Some("lunch".into()),
                    account: None,
                    realname: None,
                    username: None,
                    bot: false,
                    oper: false,
                },
            ],
            secret: false,
        }
    );
    assert!(matches!(&got[1], ServerMessage::Members { members, .. } if members.is_empty()));
    let ServerMessage::Rooms { rooms } = &got[2] else {
        panic!("{got:?}")
    };
    let listed: Vec<(&str, usize, Option<&str>)> = rooms
        .iter()
        .map(|i| (i.room.as_str(), i.members, i.topic.as_deref()))
        .collect();
    assert_eq!(listed, vec![("dev", 1, Some("rust")), ("lobby", 2, None)]);
    let ServerMessage::Whois {
        nick: n,
        rooms,
        away,
        ..
    } = &got[3]
    else {
        panic!()
    };
    assert_eq!(n.as_str(), "Bob");
    assert_eq!(rooms, &[room("lobby"), room("dev")]);
    assert_eq!(away.as_deref(), Some("lunch"));
    assert_eq!(
        r.whois(a.id, nick("ghost"), None).unwrap_err().code,
        ErrorCode::NoSuchNick
    );
}

#[test]
fn away_is_told_once_to_room_mates_and_to_whisperers() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "bob");
    let loner = Client::new(&r, "loner");
    for n in ["one", "two"] {
        r.join(a.id, room(n), None, None).unwrap();
        r.join(b.id, room(n), None, None).unwrap();
    }
    a.take();
    b.take();
    r.away(b.id, Some("lunch".into()), Some(Ref::Int(4)))
        .unwrap();
    let away = ServerMessage::Away {
        nick: nick("bob"),
        message: Some("lunch".into()),
    };
    assert_eq!(
        a.take(),
        vec![away.clone()],
        "once, though they share two rooms"
    );
    assert_eq!(b.take_frames()[0].reference(), Some(&Ref::Int(4)));
    assert!(loner.take().is_empty());
    r.whisper(loner.id, nick("bob"), "hi".into(), false, None, None)
        .unwrap();
    let got = loner.take();
    assert!(matches!(&got[..], [a, ServerMessage::Direct(_)] if *a == away));
    r.away(b.id, None, None).unwrap();
    assert_eq!(
        a.take(),
        vec![ServerMessage::Away {
            nick: nick("bob"),
            message: None
        }]
    );
}

#[test]
fn reasons_accounts_away_joiners_and_user_lookups() {
    let r = router();
    let a = Client::new(&r, "alice");
    let b = Client::new(&r, "Bob");
    r.log_in(b.id, nick("Bob")).unwrap();
    r.join(a.id, room("lobby"), None, None).unwrap();
    r.away(b.id, Some("lunch".into()), None).unwrap();
    a.take();
    b.take();
    // An away joiner: the room hears the join (with the account), then
    // the away message; the joiner only gets `joined`.
    r.join(b.id, room("lobby"), None, None).unwrap();
    let got = a.take();
    assert!(
        matches!(&got[..], [
            ServerMessage::Presence { event: PresenceEvent::Join, account: Some(acc), .. },
            ServerMessage::Away { message: Some(m), .. },
        ] if acc == &nick("bob") && m == "lunch"),
        "{got:?}"
    );
    // alice was in the room: Bob's join makes no owner (no `roles`).
    assert!(matches!(&b.take()[..], [ServerMessage::Joined { .. }]));
    // Messages carry the sender's account and the notice flag.
    r.say(b.id, room("lobby"), "hi".into(), true, None, None)
        .unwrap();
    let [ServerMessage::Message(m)] = &a.take()[..] else {
        panic!()
    };
    assert_eq!((m.account.as_ref(), m.notice), (Some(&nick("bob")), true));
    // A notice to someone away gets no away answer; a whisper does.
    r.whisper(a.id, nick("bob"), "psst".into(), true, None, None)
        .unwrap();
    assert!(matches!(&a.take()[..], [ServerMessage::Direct(d)] if d.notice && d.account.is_none()));
    r.whisper(a.id, nick("bob"), "psst".into(), false, None, None)
        .unwrap();
    assert!(matches!(
        &a.take()[..],
        [ServerMessage::Away { .. }, ServerMessage::Direct(_)]
    ));
    b.take();
    // Who is online, in the order asked, once each.
    r.users(
        a.id,
        vec![nick("ghost"), nick("BOB"), nick("alice"), nick("bob")],
        None,
    )
    .unwrap();
    let [ServerMessage::Users { users }] = &a.take()[..] else {
        panic!()
    };
    let listed: Vec<(&str, Option<&str>)> = users
        .iter()
        .map(|u| (u.nick.as_str(), u.away.as_deref()))
        .collect();
    assert_eq!(listed, [("Bob", Some("lunch")), ("alice", None)]);
    assert_eq!(
        r.users(a.id, vec![nick("x"); MAX_USERS_QUERY + 1], None)
            .unwrap_err()
            .code,
        ErrorCode::BadRequest
    );
    // Part and quit reasons reach the room; a bad one is refused.
    assert_eq!(
        r.part(
            b.id,
            room("lobby"),
            Some("x".repeat(MAX_REASON_BYTES + 1)),
            None
        )
        .unwrap_err()
        .code,
        ErrorCode::TextTooLong
    );
    r.part(b.id, room("lobby"), Some("bye".into()), None)
        .unwrap();
    assert!(matches!(&b.take()[..], [ServerMessage::Parted { reason: Some(w), .. }] if w == "bye"));
    r.join(b.id, room("lobby"), None, None).unwrap();
    r.quit(b.id, Some(format!("  {}  ", "é".repeat(MAX_REASON_BYTES))));
    let got = a.take();
    let reasons: Vec<Option<&str>> = got
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Presence { reason, .. } => Some(reason.as_deref()),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 3);
    assert_eq!(reasons[0], Some("bye"));
    let quit = reasons[2].unwrap();
    assert!(
        quit.len() <= MAX_REASON_BYTES && quit.starts_with('é'),
        "clipped: {quit}"
    );
}

#[test]
fn a_full_outbox_never_blocks_the_room() {
    let r = router();
    let a = Client::new(&r, "alice");
    let slow_outbox = Arc::new(Outbox::new(8));
    let slow = r
        .connect(nick("slow"), slow_outbox.clone(), welcome("slow"), None)
        .unwrap();
    r.join(slow, room("x"), None, None).unwrap();
    r.join(a.id, room("x"), None, None).unwrap();
    for i in 0..1000 {
        r.say(a.id, room("x"), format!("m{i}"), false, None, None)
            .unwrap();
        a.take();
    }
    assert_eq!(slow_outbox.len(), 8, "bounded");
    let mut batch = VecDeque::new();
    let info = slow_outbox.take_batch(&mut batch);
    assert!(info.dropped > 900);
    let Some(ServerMessage::Message(last)) = batch.back().unwrap().message() else {
        panic!()
    };
    assert_eq!(last.text, "m999", "the newest messages survive");
}

/// A port that refuses every event while it is shut (a full store queue),
/// and otherwise makes each take effect at once.
#[derive(Default)]
struct Gate(std::sync::atomic::AtomicBool);

impl Gate {
    fn shut(&self, shut: bool) {
        self.0.store(shut, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Port for Arc<Gate> {
    fn submit(&self, event: Event) -> Taken {
        match self.0.load(std::sync::atomic::Ordering::Relaxed) {
            true => Taken::Refused(event, Refusal::Full),
            false => Taken::Now(event),
        }
    }

    fn durable(&self) -> bool {
        false
    }
}

/// A session logged into the account of its nick.
fn account(r: &Router, n: &str) -> Client {
    let outbox = Arc::new(Outbox::new(64));
    let id = r
        .connect_as(
            nick(n),
            Some(nick(n)),
            outbox.clone(),
            vec![welcome(n)],
            None,
        )
        .unwrap();
    let client = Client { id, outbox };
    client.take();
    client
}

#[test]
fn what_the_port_refuses_changes_nothing_and_the_requester_hears_busy() {
    let gate = Arc::new(Gate::default());
    let config = RouterConfig {
        max_text_bytes: 100,
        max_rooms_per_session: 3,
        max_devices: 10,
        max_offline: 100,
        max_rooms: 4,
        history_len: 5,
        max_lines: 100,
        edit_window_ms: 86_400_000,
    };
    let r = Router::with_port(
        config,
        Box::new(gate.clone()),
        vec![nick("alice"), nick("bob")],
        0,
    );
    let alice = account(&r, "alice");
    let bob = account(&r, "bob");

    // The owner's claim is refused: alice joins, the room stays unowned.
    gate.shut(true);
    r.join(alice.id, room("den"), None, None).unwrap();
    assert!(matches!(alice.take()[..], [ServerMessage::Joined { .. }]));
    let busy = |e: RouterError| e.code;
    assert_eq!(
        busy(
            r.say(alice.id, room("den"), "lost".into(), false, None, None)
                .unwrap_err()
        ),
        ErrorCode::ServerFull
    );
    assert_eq!(
        busy(
            r.whisper(alice.id, nick("bob"), "lost".into(), false, None, None)
                .unwrap_err()
        ),
        ErrorCode::ServerFull
    );
    assert_eq!(
        busy(
            r.topic(alice.id, room("den"), Some("lost".into()), None)
                .unwrap_err()
        ),
        ErrorCode::ServerFull
    );
    assert!(alice.take().is_empty(), "nothing refused was delivered");
    assert!(bob.take().is_empty());

    // Open again: no id was used up. The room is in use now, so the next
    // joiner does not own it: it stays unowned.
    gate.shut(false);
    assert_eq!(
        r.say(alice.id, room("den"), "kept".into(), false, None, None),
        Ok(1)
    );
    assert_eq!(
        r.whisper(alice.id, nick("bob"), "psst".into(), false, None, None),
        Ok(1)
    );
    r.join(bob.id, room("den"), None, None).unwrap();
    let seen = bob.take();
    assert!(
        !seen
            .iter()
            .any(|m| matches!(m, ServerMessage::Roles { .. })),
        "nobody owns a room that was in use when joined: {seen:?}"
    );
    // A brand-new room is claimed as before.
    r.join(bob.id, room("new"), None, None).unwrap();
    let seen = bob.take();
    assert!(
        seen.iter().any(|m| matches!(
            m,
            ServerMessage::Roles { owner: Some(o), .. } if o == &nick("bob")
        )),
        "bob owns the room he created: {seen:?}"
    );
}

#[test]
fn a_stored_ban_that_matches_the_owner_keeps_only_others_out() {
    let r = router();
    let ban = |nick_ban: Option<&str>, account: Option<&str>| BanInfo {
        nick: nick_ban.map(nick),
        account: account.map(nick),
        mask: None,
        by: nick("dave"),
        ts: 1,
        list: BanList::Ban,
    };
    // Bans set before owners were protected: alice's account, her nick.
    let state = RoomState {
        owner: Some(nick("alice")),
        bans: vec![ban(None, Some("alice")), ban(Some("alice"), None)],
        ..RoomState::default()
    };
    r.insert_room(room("den"), state).unwrap();
    let alice = account(&r, "alice");
    r.join(alice.id, room("den"), None, None).unwrap();
    assert!(matches!(
        &alice.take()[..],
        [ServerMessage::Joined { .. }, ServerMessage::Roles { .. }]
    ));
    // Anyone else a ban matches stays out.
    let guest = Client::new(&r, "carol");
    r.insert_room(
        room("hall"),
        RoomState {
            bans: vec![ban(Some("carol"), None)],
            ..RoomState::default()
        },
    )
    .unwrap();
    assert_eq!(
        r.join(guest.id, room("hall"), None, None).unwrap_err().code,
        ErrorCode::Banned
    );
}

/// A cluster node's port with a store: every event takes effect at once.
struct Clustered;

impl Port for Clustered {
    fn submit(&self, event: Event) -> Taken {
        Taken::Now(event)
    }

    fn durable(&self) -> bool {
        true
    }

    fn node(&self) -> Option<&str> {
        Some("n1")
    }
}

#[test]
fn a_room_read_again_from_the_store_is_set_right_and_announced() {
    let config = RouterConfig {
        max_text_bytes: 100,
        max_rooms_per_session: 3,
        max_devices: 10,
        max_offline: 100,
        max_rooms: 4,
        history_len: 5,
        max_lines: 100,
        edit_window_ms: 86_400_000,
    };
    let r = Router::with_port(config, Box::new(Clustered), vec![nick("alice")], 0);
    r.insert_room(room("den"), RoomState::default()).unwrap();
    let alice = account(&r, "alice");
    let (bob, carol) = (Client::new(&r, "bob"), Client::new(&r, "carol"));
    for c in [&alice, &bob, &carol] {
        r.join(c.id, room("den"), None, None).unwrap();
    }
    for c in [&alice, &bob, &carol] {
        c.take();
    }
    assert_eq!(r.loaded_rooms(), vec![room("den")]);

    // Another node banned bob and set a topic, and could not say so.
    let ban = BanInfo {
        nick: Some(nick("bob")),
        account: None,
        mask: None,
        by: nick("alice"),
        ts: 1,
        list: BanList::Ban,
    };
    let topic = Topic {
        text: "new".into(),
        by: nick("alice"),
        ts: 2,
    };
    let stored = RoomState {
        owner: Some(nick("alice")),
        topic: Some(topic.clone()),
        bans: vec![ban.clone()],
        ..RoomState::default()
    };
    r.reload_rooms(vec![(room("den"), stored.clone())]);
    let seen = carol.take();
    assert!(seen.contains(&ServerMessage::Topic {
        room: room("den"),
        topic: Some(topic)
    }));
    assert!(seen.contains(&ServerMessage::Banned {
        room: room("den"),
        ban: ban.clone(),
        set: true
    }));
    assert!(
        seen.iter()
            .any(|m| matches!(m, ServerMessage::Kicked { nick: n, .. } if *n == nick("bob"))),
        "{seen:?}"
    );
    assert!(
        bob.take().iter().any(
            |m| matches!(m, ServerMessage::Kicked { reason: Some(why), .. } if why == "banned")
        )
    );
    let refused = r.join(bob.id, room("den"), None, None).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Banned);

    // Read again unchanged: nothing to say. Then the ban is lifted.
    r.reload_rooms(vec![(room("den"), stored.clone())]);
    assert!(carol.take().is_empty());
    let lifted = RoomState {
        bans: Vec::new(),
        ..stored
    };
    r.reload_rooms(vec![(room("den"), lifted)]);
    assert_eq!(
        carol.take(),
        vec![ServerMessage::Banned {
            room: room("den"),
            ban,
            set: false
        }]
    );
    r.join(bob.id, room("den"), None, None).unwrap();
}

#[test]
fn an_invitation_passes_once_and_a_voice_lasts_one_membership() {
    let r = router();
    let alice = account(&r, "alice");
    let bob = Client::new(&r, "bob");
    r.join(alice.id, room("den"), None, None).unwrap();
    let change = ModeChange {
        invite_only: Some(true),
        key: Some("k".into()),
        limit: Some(1),
        moderated: Some(true),
        ..ModeChange::default()
    };
    r.mode(alice.id, room("den"), Some(change), None).unwrap();
    let refused = |joined: Result<Joined>| joined.unwrap_err().code;
    let join = |key| r.join(bob.id, room("den"), key, None);
    assert_eq!(refused(join(Some("k"))), ErrorCode::InviteOnly);
    r.invite(alice.id, room("den"), nick("bob"), None).unwrap();
    let invite = ServerMessage::Invite {
        room: room("den"),
        from: nick("alice"),
    };
    assert_eq!(bob.take(), [invite]);
    // Invited: past +i, +k and +l (alice alone fills it).
    assert_eq!(join(None), Ok(Joined::Joined));
    let say = |text: &str| r.say(bob.id, room("den"), text.into(), false, None, None);
    assert_eq!(say("hi").unwrap_err().code, ErrorCode::Moderated);
    r.voice(alice.id, room("den"), nick("bob"), true, None)
        .unwrap();
    assert_eq!(say("hi"), Ok(1));
    r.part(bob.id, room("den"), None, None).unwrap();
    assert_eq!(refused(join(Some("k"))), ErrorCode::InviteOnly);
    r.invite(alice.id, room("den"), nick("bob"), None).unwrap();
    assert_eq!(join(None), Ok(Joined::Joined));
    assert_eq!(say("again").unwrap_err().code, ErrorCode::Moderated);
}

#[test]
fn recent_messages_give_their_time_for_a_read_position() {
    let r = router();
    let a = Client::new(&r, "alice");
    r.join(a.id, room("den"), None, None).unwrap();
    r.say(a.id, room("den"), "one".into(), false, None, None)
        .unwrap();
    let sent = a.take();
    let Some(ServerMessage::Message(m)) = sent.last() else {
        panic!("{sent:?}")
    };
    assert_eq!(r.recent_message_ts(&room("den"), m.id), Some(m.ts));
    assert_eq!(r.recent_message_ts(&room("den"), m.id + 1), None);
    assert_eq!(r.recent_message_ts(&room("elsewhere"), m.id), None);
}

/// A guest's own messages are those from its nick since it took it: one
/// that gives its nick up and takes it back cannot edit what another
/// guest said under that nick meanwhile.
#[test]
fn a_guest_edits_only_what_it_said_under_its_nick() {
    use crate::core::event::Amendment;
    let r = router();
    let a = Client::new(&r, "alice");
    r.join(a.id, room("den"), None, None).unwrap();
    let mine = r
        .say(a.id, room("den"), "mine".into(), false, None, None)
        .unwrap();
    let edit = |text: &str| Amendment::Edit {
        text: text.into(),
        ts: 0,
        window_ms: 0,
    };
    let den = || Conversation::Room(room("den"));
    r.amend(a.id, den(), mine, edit("still mine"), None)
        .unwrap();
    r.change_nick(a.id, nick("away"), None).unwrap();
    let b = Client::new(&r, "alice");
    r.join(b.id, room("den"), None, None).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let theirs = r
        .say(b.id, room("den"), "theirs".into(), false, None, None)
        .unwrap();
    r.quit(b.id, None);
    std::thread::sleep(std::time::Duration::from_millis(2));
    r.change_nick(a.id, nick("alice"), None).unwrap();
    let refused = r.amend(a.id, den(), theirs, edit("mine now"), None);
    assert_eq!(refused.unwrap_err().code, ErrorCode::NotYourMessage);
    // Its earlier message is not its own either, under the nick again.
    let refused = r.amend(a.id, den(), mine, edit("again"), None);
    assert_eq!(refused.unwrap_err().code, ErrorCode::NotYourMessage);
}
