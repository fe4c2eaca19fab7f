//! The IRC flows again, but every line we send is composed, and every line
//! we receive is parsed, by an independent IRC library (`irc-proto`, the
//! protocol half of the `irc` crate): proof that Banter speaks IRC as
//! others understand it, not only as its own parser does.

mod common;

use common::{Client, IrcClient, Kind, TestServer};
use irc_proto::{CapSubCommand, Command, Message, Prefix, Response};
use serde_json::json;

/// An IRC client that speaks only through `irc-proto`.
struct Lib(IrcClient);

impl Lib {
    async fn send(&mut self, command: Command) {
        let line = Message::from(command).to_string();
        self.0.send_bytes(line.as_bytes()).await;
    }

    async fn recv(&mut self) -> Message {
        self.recv_raw().await.1
    }

    /// The line as it came (without CRLF), and as the library reads it.
    async fn recv_raw(&mut self) -> (String, Message) {
        let line = self.0.recv().await;
        let message = line
            .parse()
            .unwrap_or_else(|e| panic!("irc-proto cannot parse {line:?}: {e}"));
        (line, message)
    }

    /// Skips messages until `pick` accepts one.
    async fn wait<T>(&mut self, mut pick: impl FnMut(&Message) -> Option<T>) -> T {
        loop {
            let message = self.recv().await;
            if let Some(found) = pick(&message) {
                return found;
            }
        }
    }

    async fn response(&mut self, want: Response) -> Vec<String> {
        self.wait(|m| match &m.command {
            Command::Response(r, args) if *r == want => Some(args.clone()),
            _ => None,
        })
        .await
    }

    async fn register(server: &TestServer, nick: &str, caps: Option<&str>) -> Lib {
        let mut lib = Lib(IrcClient::connect(server).await);
        if let Some(caps) = caps {
            lib.send(Command::CAP(
                None,
                CapSubCommand::LS,
                Some("302".into()),
                None,
            ))
            .await;
            lib.send(Command::CAP(
                None,
                CapSubCommand::REQ,
                None,
                Some(caps.into()),
            ))
            .await;
        }
        lib.send(Command::NICK(nick.into())).await;
        lib.send(Command::USER(
            nick.into(),
            "0".into(),
            "Library User".into(),
        ))
        .await;
        if caps.is_some() {
            let acked = lib
                .wait(|m| match &m.command {
                    Command::CAP(_, CapSubCommand::ACK, a, b) => b.clone().or(a.clone()),
                    _ => None,
                })
                .await;
            assert_eq!(Some(acked.trim()), caps);
            lib.send(Command::CAP(None, CapSubCommand::END, None, None))
                .await;
        }
        let welcome = lib.response(Response::RPL_WELCOME).await;
        assert_eq!(welcome[0], nick);
        let isupport = lib.response(Response::RPL_ISUPPORT).await;
        for token in [
            "CHANTYPES=#",
            "CASEMAPPING=ascii",
            "NICKLEN=24",
            "NETWORK=Banter",
        ] {
            assert!(
                isupport.iter().any(|t| t == token),
                "{token} in {isupport:?}"
            );
        }
        lib.response(Response::RPL_ENDOFMOTD).await;
        lib
    }
}

fn nick_of(message: &Message) -> Option<&str> {
    match &message.prefix {
        Some(Prefix::Nickname(nick, _, _)) => Some(nick),
        _ => None,
    }
}

#[tokio::test]
async fn a_library_client_chats_with_web_and_tcp_users() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut lib = Lib::register(&server, "libby", None).await;

    lib.send(Command::JOIN("#lobby".into(), None, None)).await;
    let joined = lib.recv().await;
    assert!(matches!(&joined.command, Command::JOIN(c, _, _) if c == "#lobby"));
    assert_eq!(nick_of(&joined), Some("libby"));
    let names = lib.response(Response::RPL_NAMREPLY).await;
    assert_eq!(names.last().unwrap(), "webby libby");
    lib.response(Response::RPL_ENDOFNAMES).await;
    web.expect("presence").await;

    lib.send(Command::PRIVMSG(
        "#lobby".into(),
        "hi from a library".into(),
    ))
    .await;
    assert_eq!(web.expect("message").await["text"], "hi from a library");
    web.send(json!({"type":"say","room":"lobby","text":"hi library"}))
        .await;
    let got = lib.recv().await;
    assert_eq!(nick_of(&got), Some("webby"));
    assert_eq!(
        got.command,
        Command::PRIVMSG("#lobby".into(), "hi library".into())
    );

    // A whisper each way, and a nick change the web sees.
    lib.send(Command::PRIVMSG("webby".into(), "psst".into()))
        .await;
    let direct = web.wait_for("direct").await;
    assert_eq!(
        (&direct["from"], &direct["text"]),
        (&json!("libby"), &json!("psst"))
    );
    web.send(json!({"type":"whisper","to":"libby","text":"hush"}))
        .await;
    assert_eq!(
        lib.recv().await.command,
        Command::PRIVMSG("libby".into(), "hush".into())
    );
    lib.send(Command::NICK("libra".into())).await;
    let renamed = lib.recv().await;
    assert_eq!(
        (nick_of(&renamed), &renamed.command),
        (Some("libby"), &Command::NICK("libra".into()))
    );
    assert_eq!(web.wait_for("presence").await["new_nick"], "libra");

    // A TCP user arrives and leaves.
    let mut tcp = Client::hello(&server, Kind::Tcp, "tcpy").await;
    tcp.join("lobby").await;
    let join = lib.recv().await;
    assert_eq!(
        (nick_of(&join), matches!(join.command, Command::JOIN(..))),
        (Some("tcpy"), true)
    );
    tcp.send(json!({"type":"part","room":"lobby"})).await;
    let part = lib.recv().await;
    assert!(
        matches!(&part.command, Command::PART(c, _) if c == "#lobby"),
        "{part}"
    );

    // TOPIC, WHOIS, and an unknown command.
    lib.send(Command::TOPIC("#lobby".into(), Some("library day".into())))
        .await;
    let topic = lib.recv().await;
    assert_eq!(
        topic.command,
        Command::TOPIC("#lobby".into(), Some("library day".into()))
    );
    assert_eq!(web.wait_for("topic").await["topic"]["text"], "library day");
    lib.send(Command::WHOIS(None, "webby".into())).await;
    let user = lib.response(Response::RPL_WHOISUSER).await;
    assert_eq!(user[1], "webby");
    lib.response(Response::RPL_ENDOFWHOIS).await;
    lib.send(Command::Raw("FROBNICATE".into(), vec![])).await;
    let unknown = lib.response(Response::ERR_UNKNOWNCOMMAND).await;
    assert_eq!(unknown[1], "FROBNICATE");

    lib.send(Command::QUIT(Some("done".into()))).await;
    let error = lib.recv().await;
    assert!(
        matches!(&error.command, Command::ERROR(e) if e.contains("done")),
        "{error}"
    );
    assert_eq!(web.wait_for("presence").await["event"], "quit");
}

#[tokio::test]
async fn a_library_client_reads_tags_and_long_messages() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "Webby").await;
    web.join("lobby").await;

    // 433 for the web user's nick, in another case.
    let mut taken = Lib(IrcClient::connect(&server).await);
    taken.send(Command::NICK("WEBBY".into())).await;
    taken
        .send(Command::USER("w".into(), "0".into(), "W".into()))
        .await;
    let refused = taken.response(Response::ERR_NICKNAMEINUSE).await;
    assert_eq!(refused[1], "WEBBY");

    let mut lib = Lib::register(
        &server,
        "libby",
        Some("server-time echo-message message-tags"),
    )
    .await;
    lib.send(Command::JOIN("#lobby".into(), None, None)).await;
    lib.response(Response::RPL_ENDOFNAMES).await;
    lib.send(Command::PRIVMSG("#lobby".into(), "echoed".into()))
        .await;
    let echo = lib.recv().await;
    assert_eq!(
        echo.command,
        Command::PRIVMSG("#lobby".into(), "echoed".into())
    );
    let tags = echo.tags.clone().expect("tags on the echo");
    let value = |key: &str| {
        tags.iter()
            .find(|t| t.0 == key)
            .and_then(|t| t.1.clone())
            .unwrap_or_else(|| panic!("no {key} in {tags:?}"))
    };
    let id = web.wait_for("message").await["id"].clone();
    assert_eq!(value("msgid"), format!("lobby-{id}"));
    assert!(value("time").ends_with('Z'));

    let text: String = (0..300).map(|i| format!("w{i}ö ")).collect::<String>();
    let text = text.trim_end().to_string();
    assert!(text.len() > 1500);
    web.send(json!({"type":"say","room":"lobby","text":text}))
        .await;
    let mut joined = String::new();
    while joined.len() < text.len() {
        let (wire, message) = lib.recv_raw().await;
        // The 512 bytes (CRLF included) exclude the tags.
        let body = match wire.split_once(' ') {
            Some((tags, rest)) if tags.starts_with('@') => rest,
            _ => &wire[..],
        };
        assert!(body.len() + 2 <= 512, "{} bytes", body.len() + 2);
        match message.command {
            Command::PRIVMSG(target, part) => {
                assert_eq!(target, "#lobby");
                joined.push_str(&part);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(joined, text);
    lib.send(Command::PING("done".into(), None)).await;
    assert!(matches!(lib.recv().await.command, Command::PONG(..)));
}

#[tokio::test]
async fn a_library_client_reads_accounts_notices_reasons_and_ison() {
    let server = TestServer::start();
    let password = "correct horse";
    let mut c = Client::connect(&server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":"erin","password":password}))
        .await;
    c.expect("registered").await;
    c.send(json!({"type":"hello","nick":"erin","password":password}))
        .await;
    c.expect("welcome").await;
    let mut erin = c;

    let mut lib = Lib::register(&server, "libby", Some("account-tag message-tags")).await;
    lib.send(Command::JOIN("#lobby".into(), None, None)).await;
    lib.response(Response::RPL_ENDOFNAMES).await;
    erin.send(json!({"type":"join","room":"lobby"})).await;
    erin.wait_for("joined").await;
    let account = |m: &Message| {
        m.tags
            .iter()
            .flatten()
            .find(|t| t.0 == "account")
            .and_then(|t| t.1.clone())
    };
    let join = lib.recv().await;
    assert!(matches!(join.command, Command::JOIN(..)), "{join}");
    assert_eq!(account(&join).as_deref(), Some("erin"));
    // libby was in #lobby first: erin's join makes no owner (no MODE +o),
    // so the next line is erin's notice.
    erin.send(json!({"type":"say","room":"lobby","text":"fyi","notice":true}))
        .await;
    let notice = lib.recv().await;
    assert_eq!(
        notice.command,
        Command::NOTICE("#lobby".into(), "fyi".into())
    );
    assert_eq!(account(&notice).as_deref(), Some("erin"));

    lib.send(Command::ISON(vec!["ERIN".into(), "ghost".into()]))
        .await;
    let online = lib.response(Response::RPL_ISON).await;
    assert_eq!(online.last().map(String::as_str), Some("erin"));

    erin.send(json!({"type":"part","room":"lobby","reason":"later"}))
        .await;
    let part = lib.recv().await;
    assert_eq!(
        part.command,
        Command::PART("#lobby".into(), Some("later".into()))
    );
    assert_eq!(account(&part).as_deref(), Some("erin"));
}

/// A private room, as the library reads it: 473 for an invite-only
/// channel, the INVITE, 324 with the modes and key, 404 when moderated,
/// and the owner's MODE change.
#[tokio::test]
async fn a_library_client_is_invited_into_a_private_room() {
    let server = TestServer::start();
    let password = "correct horse";
    let mut alice = Client::connect(&server, Kind::Tcp).await;
    alice
        .send(json!({"type":"register","nick":"alice","password":password}))
        .await;
    alice.expect("registered").await;
    alice
        .send(json!({"type":"hello","nick":"alice","password":password}))
        .await;
    alice.expect("welcome").await;
    alice.send(json!({"type":"join","room":"vault"})).await;
    alice.wait_for("roles").await;
    alice
        .send(json!({"type":"mode","room":"vault","set":{"invite_only":true,"key":"sesame"}}))
        .await;
    alice.wait_for("modes").await;

    let mut lib = Lib::register(&server, "libby", None).await;
    lib.send(Command::JOIN("#vault".into(), None, None)).await;
    let refused = lib.response(Response::ERR_INVITEONLYCHAN).await;
    assert_eq!(refused[1], "#vault");
    alice
        .send(json!({"type":"invite","room":"vault","nick":"libby"}))
        .await;
    alice.wait_for("invited").await;
    let invite = lib
        .wait(|m| match &m.command {
            Command::INVITE(nick, channel) => Some((
                nick.clone(),
                channel.clone(),
                nick_of(m).map(str::to_string),
            )),
            _ => None,
        })
        .await;
    assert_eq!(
        invite,
        ("libby".into(), "#vault".into(), Some("alice".into()))
    );
    // Invited, so no key is needed.
    lib.send(Command::JOIN("#vault".into(), None, None)).await;
    lib.response(Response::RPL_ENDOFNAMES).await;
    lib.send(Command::Raw("MODE".into(), vec!["#vault".into()]))
        .await;
    let modes = lib.response(Response::RPL_CHANNELMODEIS).await;
    assert_eq!(modes[1..], ["#vault", "+ikn", "sesame"]);

    alice
        .send(json!({"type":"mode","room":"vault","set":{"moderated":true}}))
        .await;
    let mode = lib
        .wait(|m| match &m.command {
            Command::ChannelMODE(channel, modes) => Some((channel.clone(), modes.len())),
            _ => None,
        })
        .await;
    assert_eq!(mode, ("#vault".into(), 1));
    lib.send(Command::PRIVMSG("#vault".into(), "may I?".into()))
        .await;
    let muted = lib.response(Response::ERR_CANNOTSENDTOCHAN).await;
    assert_eq!(muted[1], "#vault");
}

/// The IRCv3 set a modern client negotiates, through `irc-proto`: SASL
/// PLAIN, extended-join account names, a chat with a JSON user, MONITOR
/// online and offline, a labeled response and a CHATHISTORY page.
#[tokio::test]
async fn a_library_client_logs_in_with_sasl_and_uses_the_ircv3_set() {
    let server = TestServer::start();
    common::register(&server, "saslib").await;
    common::register(&server, "other").await;
    let mut lib = Lib(IrcClient::connect(&server).await);
    let caps = "sasl extended-join account-notify labeled-response batch draft/chathistory server-time message-tags";
    lib.send(Command::CAP(
        None,
        CapSubCommand::REQ,
        None,
        Some(caps.into()),
    ))
    .await;
    lib.send(Command::NICK("saslib".into())).await;
    lib.send(Command::USER(
        "saslib".into(),
        "0".into(),
        "Lib Rary".into(),
    ))
    .await;
    lib.wait(|m| matches!(&m.command, Command::CAP(_, CapSubCommand::ACK, ..)).then_some(()))
        .await;
    lib.send(Command::AUTHENTICATE("PLAIN".into())).await;
    lib.wait(|m| matches!(&m.command, Command::AUTHENTICATE(a) if a == "+").then_some(()))
        .await;
    let payload = common::base64(format!("\0saslib\0{}", common::PW).as_bytes());
    lib.send(Command::AUTHENTICATE(payload)).await;
    lib.response(Response::RPL_SASLSUCCESS).await;
    lib.send(Command::CAP(None, CapSubCommand::END, None, None))
        .await;
    assert_eq!(lib.response(Response::RPL_WELCOME).await[0], "saslib");
    lib.response(Response::RPL_ENDOFMOTD).await;

    // MONITOR: nobody yet.
    lib.send(Command::MONITOR("+".into(), Some("later".into())))
        .await;
    let offline = lib.response(Response::RPL_MONOFFLINE).await;
    assert_eq!(offline.last().unwrap(), "later");

    lib.send(Command::JOIN("#v3".into(), None, None)).await;
    let own = lib
        .wait(|m| match &m.command {
            Command::JOIN(c, account, name) if c == "#v3" => Some((account.clone(), name.clone())),
            _ => None,
        })
        .await;
    assert_eq!(own, (Some("saslib".into()), Some("Lib Rary".into())));
    lib.response(Response::RPL_ENDOFNAMES).await;

    // A JSON guest comes online, joins and talks.
    let (mut web, _) = Client::hello_with(
        &server,
        Kind::Tcp,
        json!({"type":"hello","nick":"later","realname":"Later Person"}),
    )
    .await;
    let online = lib.response(Response::RPL_MONONLINE).await;
    assert_eq!(online.last().unwrap(), "later!later@banter");
    web.join("v3").await;
    let theirs = lib
        .wait(|m| match &m.command {
            Command::JOIN(c, account, name) if c == "#v3" && nick_of(m) == Some("later") => {
                Some((account.clone(), name.clone()))
            }
            _ => None,
        })
        .await;
    assert_eq!(theirs, (Some("*".into()), Some("Later Person".into())));
    web.send(json!({"type":"say","room":"v3","text":"from json"}))
        .await;
    let said = lib
        .wait(|m| match &m.command {
            Command::PRIVMSG(t, text) if t == "#v3" => Some(text.clone()),
            _ => None,
        })
        .await;
    assert_eq!(said, "from json");
    lib.send(Command::PRIVMSG("#v3".into(), "from irc-proto".into()))
        .await;
    loop {
        let message = web.wait_for("message").await;
        if message["from"] == "saslib" {
            assert_eq!(message["text"], "from irc-proto");
            break;
        }
    }

    // An account joins: its name is in the JOIN.
    let mut other = common::irc_sasl(&server, "other").await;
    other.send("JOIN #v3").await;
    let account = lib
        .wait(|m| match &m.command {
            Command::JOIN(_, account, _) if nick_of(m) == Some("other") => account.clone(),
            _ => None,
        })
        .await;
    assert_eq!(account, "other");

    // A labeled PING: one line, with the label.
    let ping = irc_proto::Message::with_tags(
        Some(vec![irc_proto::message::Tag(
            "label".into(),
            Some("l1".into()),
        )]),
        None,
        "PING",
        vec!["x"],
    )
    .unwrap();
    lib.0.send_bytes(ping.to_string().as_bytes()).await;
    let label = lib
        .wait(|m| match &m.command {
            Command::PONG(..) => m.tags.clone(),
            _ => None,
        })
        .await;
    assert_eq!(
        label,
        vec![irc_proto::message::Tag("label".into(), Some("l1".into()))]
    );

    // A CHATHISTORY page: a batch of what was said, oldest first.
    lib.send(Command::Raw(
        "CHATHISTORY".into(),
        vec!["LATEST".into(), "#v3".into(), "*".into(), "10".into()],
    ))
    .await;
    let mut texts = Vec::new();
    loop {
        let message = lib.recv().await;
        match &message.command {
            Command::PRIVMSG(_, text) => texts.push(text.clone()),
            Command::BATCH(reference, None, None) if reference.starts_with('-') => break,
            _ => {}
        }
    }
    assert_eq!(texts, ["from json", "from irc-proto"]);

    // MONITOR: offline again once the JSON user leaves.
    drop(web);
    let offline = lib.response(Response::RPL_MONOFFLINE).await;
    assert_eq!(offline.last().unwrap(), "later");
}

/// Rich messages as an independent library composes and reads them: a
/// `draft/multiline` batch, a reply tag, a reaction TAGMSG and a REDACT.
#[tokio::test]
async fn a_library_client_sends_and_reads_rich_messages() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    web.join("den").await;
    let mut lib = Lib::register(
        &server,
        "libby",
        Some("message-tags batch draft/multiline draft/message-redaction"),
    )
    .await;
    lib.send(Command::JOIN("#den".into(), None, None)).await;
    lib.response(Response::RPL_ENDOFNAMES).await;

    web.send(json!({"type":"say","room":"den","text":"a\nb"}))
        .await;
    let id = web.wait_for("message").await["id"].as_u64().unwrap();
    let msgid = format!("den-{id}");
    let open = lib.recv().await;
    let Command::BATCH(reference, Some(kind), Some(params)) = &open.command else {
        panic!("{open:?}");
    };
    assert_eq!(
        kind,
        &irc_proto::command::BatchSubCommand::CUSTOM("DRAFT/MULTILINE".into())
    );
    assert_eq!(params, &["#den".to_string()]);
    let tag = |m: &Message, key: &str| {
        m.tags
            .iter()
            .flatten()
            .find(|t| t.0 == key)
            .and_then(|t| t.1.clone())
    };
    assert_eq!(tag(&open, "msgid"), Some(msgid.clone()));
    let reference = reference.trim_start_matches('+').to_string();
    for want in ["a", "b"] {
        let line = lib.recv().await;
        assert_eq!(line.command, Command::PRIVMSG("#den".into(), want.into()));
        assert_eq!(tag(&line, "batch"), Some(reference.clone()));
    }
    let close = lib.recv().await;
    assert!(matches!(&close.command, Command::BATCH(r, ..) if *r == format!("-{reference}")));

    // A reply and a reaction, composed by the library.
    let tagged = |tags: Vec<(&str, &str)>, command: Command| Message {
        tags: Some(
            tags.into_iter()
                .map(|(k, v)| irc_proto::message::Tag(k.into(), Some(v.into())))
                .collect(),
        ),
        prefix: None,
        command,
    };
    let reply = tagged(
        vec![("+draft/reply", &msgid)],
        Command::PRIVMSG("#den".into(), "b indeed".into()),
    );
    lib.0.send_bytes(reply.to_string().as_bytes()).await;
    let m = web.wait_for("message").await;
    assert_eq!(
        (&m["text"], &m["reply_to"]),
        (&json!("b indeed"), &json!(id))
    );
    let react = tagged(
        vec![("+draft/react", "🎉"), ("+draft/reply", &msgid)],
        Command::Raw("TAGMSG".into(), vec!["#den".into()]),
    );
    lib.0.send_bytes(react.to_string().as_bytes()).await;
    let r = web.wait_for("reaction").await;
    assert_eq!(
        (&r["reaction"], &r["nick"]),
        (&json!("🎉"), &json!("libby"))
    );

    // A deletion from the web, as the library reads it.
    web.send(json!({"type":"delete","room":"den","id":id}))
        .await;
    web.wait_for("deleted").await;
    let redact = lib
        .wait(|m| match &m.command {
            Command::Raw(c, params) if c == "REDACT" => Some(params.clone()),
            _ => None,
        })
        .await;
    assert_eq!(redact, ["#den".to_string(), msgid]);
}
