//! IRC users and web/TCP users in the same rooms, over real sockets: what
//! each side sees of the other, IRCv3 tags, long messages, and a numeric
//! for every bad line. Lines are read with Banter's own IRC parser here;
//! `irc_library.rs` drives the same flows with an independent one.

mod common;

use std::time::Duration;

use banter::transport::irc::line::Line;
use common::{Client, IrcClient, IrcNext, Kind, TestServer, WAIT, irc_command};
use serde_json::json;

fn parse(line: &str) -> Line {
    Line::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

fn tag<'a>(line: &'a Line, key: &str) -> Option<&'a str> {
    line.tags
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn irc_and_web_users_see_each_other_in_one_room() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut irc = IrcClient::register(&server, "ircy").await;

    irc.send("JOIN #Lobby").await;
    assert_eq!(irc.expect("JOIN").await, ":ircy!ircy@banter JOIN #lobby");
    let names = parse(&irc.expect("353").await);
    assert_eq!(names.params, ["ircy", "=", "#lobby", "webby ircy"]);
    irc.expect("366").await;
    let joined = web.expect("presence").await;
    assert_eq!(
        (&joined["nick"], &joined["event"]),
        (&json!("ircy"), &json!("join"))
    );

    web.send(json!({"type":"say","room":"lobby","text":"hi irc"}))
        .await;
    web.expect("message").await;
    assert_eq!(
        irc.recv().await,
        ":webby!webby@banter PRIVMSG #lobby :hi irc"
    );

    irc.send("PRIVMSG #lobby :hello web \x02bold\x02").await;
    let got = web.expect("message").await;
    assert_eq!(
        (&got["from"], &got["text"]),
        (&json!("ircy"), &json!("hello web \x02bold\x02"))
    );
    // Without echo-message, the sender does not get its own line back.
    irc.assert_usable().await;

    // A TCP user joins, renames itself, and goes away.
    let mut tcp = Client::hello(&server, Kind::Tcp, "tcpy").await;
    tcp.join("lobby").await;
    assert_eq!(irc.recv().await, ":tcpy!tcpy@banter JOIN #lobby");
    web.expect("presence").await;
    tcp.send(json!({"type":"nick","nick":"tcpz"})).await;
    tcp.expect("nick").await;
    assert_eq!(irc.recv().await, ":tcpy!tcpy@banter NICK :tcpz");
    web.expect("presence").await;
    drop(tcp);
    assert_eq!(irc.recv().await, ":tcpz!tcpz@banter QUIT :Quit");
    web.expect("presence").await;

    // The IRC user renames itself: the web sees a presence event.
    irc.send("NICK ircy2").await;
    assert_eq!(irc.recv().await, ":ircy!ircy@banter NICK :ircy2");
    let renamed = web.expect("presence").await;
    assert_eq!(
        (&renamed["event"], &renamed["nick"], &renamed["new_nick"]),
        (&json!("nick"), &json!("ircy"), &json!("ircy2"))
    );

    // Parts both ways.
    web.send(json!({"type":"part","room":"lobby"})).await;
    web.expect("parted").await;
    assert_eq!(irc.recv().await, ":webby!webby@banter PART #lobby");
    web.join("lobby").await;
    assert_eq!(irc.recv().await, ":webby!webby@banter JOIN #lobby");
    irc.send("PART #lobby :see you").await;
    assert_eq!(irc.recv().await, ":ircy2!ircy2@banter PART #lobby");
    let parted = web.expect("presence").await;
    assert_eq!(
        (&parted["nick"], &parted["event"]),
        (&json!("ircy2"), &json!("part"))
    );

    // QUIT: the room hears it, the client gets ERROR and the close.
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    web.expect("presence").await;
    irc.send("QUIT :bye now").await;
    let rest = irc.until_closed(Duration::from_secs(5)).await;
    assert!(
        rest.last()
            .is_some_and(|l| l.starts_with("ERROR :") && l.contains("bye now")),
        "{rest:?}"
    );
    let quit = web.expect("presence").await;
    assert_eq!(
        (&quit["nick"], &quit["event"]),
        (&json!("ircy2"), &json!("quit"))
    );
}

#[tokio::test]
async fn whispers_and_actions_cross_both_ways() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    let mut irc = IrcClient::register(&server, "ircy").await;

    irc.send("PRIVMSG WEBBY :psst").await;
    let direct = web.expect("direct").await;
    assert_eq!(
        (&direct["from"], &direct["to"], &direct["text"]),
        (&json!("ircy"), &json!("webby"), &json!("psst"))
    );
    web.send(json!({"type":"whisper","to":"IRCY","text":"back at you"}))
        .await;
    web.expect("direct").await;
    assert_eq!(
        irc.recv().await,
        ":webby!webby@banter PRIVMSG ircy :back at you"
    );

    irc.send("PRIVMSG webby :\x01ACTION waves\x01").await;
    assert_eq!(web.expect("direct").await["text"], "/me waves");
    web.send(json!({"type":"whisper","to":"ircy","text":"/me bows"}))
        .await;
    web.expect("direct").await;
    assert_eq!(
        irc.recv().await,
        ":webby!webby@banter PRIVMSG ircy :\x01ACTION bows\x01"
    );

    // A multi-line web message is several lines; NOTICE is delivered too.
    web.send(json!({"type":"whisper","to":"ircy","text":"one\ntwo"}))
        .await;
    web.expect("direct").await;
    assert_eq!(irc.recv().await, ":webby!webby@banter PRIVMSG ircy :one");
    assert_eq!(irc.recv().await, ":webby!webby@banter PRIVMSG ircy :two");
    irc.send("NOTICE webby :note").await;
    assert_eq!(web.wait_for("direct").await["text"], "note");
    irc.assert_usable().await;
}

#[tokio::test]
async fn nicks_held_on_the_web_are_taken_ignoring_case() {
    let server = TestServer::start();
    let _web = Client::hello(&server, Kind::Ws, "Alice").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send("NICK alice").await;
    irc.send("USER a 0 * :A").await;
    assert_eq!(
        irc.recv().await,
        ":banter 433 * alice :Nickname is already in use"
    );
    irc.send("NICK alice_").await;
    assert!(irc.wait_for("001").await.contains("alice_"));
    irc.wait_for("376").await;
    irc.send("NICK ALICE").await;
    assert_eq!(
        irc.recv().await,
        ":banter 433 alice_ ALICE :Nickname is already in use"
    );
    // And the other way: the web cannot take the IRC user's nick.
    let mut web2 = Client::connect(&server, Kind::Tcp).await;
    web2.send(json!({"type":"hello","nick":"ALICE_"})).await;
    web2.expect_error("nick_taken").await;
    irc.assert_usable().await;
}

#[tokio::test]
async fn capabilities_add_echo_server_time_message_ids_and_history_batches() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    web.send(json!({"type":"say","room":"lobby","text":"before you came"}))
        .await;
    let earlier = web.expect("message").await;

    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP LS 302").await;
    let ls = parse(&irc.expect("CAP").await);
    assert_eq!(ls.params[1], "LS");
    for cap in [
        "server-time",
        "message-tags",
        "echo-message",
        "multi-prefix",
        "away-notify",
        "batch",
    ] {
        assert!(
            ls.params[2].split(' ').any(|c| c == cap),
            "{cap} in {:?}",
            ls.params
        );
    }
    irc.send("NICK ircy").await;
    irc.send("USER ircy 0 * :I").await;
    irc.send("CAP REQ :server-time echo-message sasl3").await;
    assert_eq!(
        parse(&irc.expect("CAP").await).params[1],
        "NAK",
        "all or nothing"
    );
    irc.send("CAP REQ :server-time echo-message message-tags batch")
        .await;
    let ack = parse(&irc.expect("CAP").await);
    assert_eq!(
        ack.params[1..],
        ["ACK", "server-time echo-message message-tags batch"]
    );
    // Registration waits for CAP END.
    irc.send("PING :before-end").await;
    irc.expect("PONG").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;

    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    let start = parse(&irc.expect("BATCH").await);
    assert_eq!(start.params[1..], ["chathistory", "#lobby"]);
    let id = start.params[0].strip_prefix('+').unwrap().to_string();
    let old = parse(&irc.expect("PRIVMSG").await);
    assert_eq!(tag(&old, "batch"), Some(id.as_str()));
    assert_eq!(old.params, ["#lobby", "before you came"]);
    assert_eq!(
        tag(&old, "msgid"),
        Some(format!("lobby-{}", earlier["id"]).as_str())
    );
    assert_eq!(parse(&irc.expect("BATCH").await).params, [format!("-{id}")]);

    irc.send("PRIVMSG #lobby :echo me").await;
    let echo = parse(&irc.expect("PRIVMSG").await);
    assert_eq!(echo.source.as_deref(), Some("ircy!ircy@banter"));
    let got = web.wait_for("message").await;
    assert_eq!(
        tag(&echo, "msgid"),
        Some(format!("lobby-{}", got["id"]).as_str())
    );
    let time = tag(&echo, "time").expect("server-time tag");
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{time}"
    );
    web.send(json!({"type":"say","room":"lobby","text":"tagged"}))
        .await;
    let line = parse(&irc.expect("PRIVMSG").await);
    assert!(
        tag(&line, "time").is_some() && tag(&line, "msgid").is_some(),
        "{line}"
    );
}

#[tokio::test]
async fn a_long_web_message_arrives_in_lines_that_fit_and_reassemble() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut irc = IrcClient::register(&server, "ircy").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 1500 {
        text.push_str(&format!("wörd{i} €uro "));
        i += 1;
    }
    let mut end = 1500;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    let text = text.trim_end().to_string();
    assert!(text.len() >= 1490);
    web.send(json!({"type":"say","room":"lobby","text":text}))
        .await;
    let mut joined = String::new();
    let mut lines = 0;
    while joined.len() < text.len() {
        let raw = irc.expect("PRIVMSG").await;
        assert!(raw.len() + 2 <= 512, "{} bytes: {raw}", raw.len() + 2);
        let line = parse(&raw);
        assert_eq!(line.params[0], "#lobby");
        joined.push_str(&line.params[1]);
        lines += 1;
    }
    assert_eq!(joined, text);
    assert!(lines >= 3, "{lines} lines");
    irc.assert_usable().await;
}

#[tokio::test]
async fn every_bad_line_gets_its_numeric_and_the_connection_stays() {
    let server = TestServer::start_with(&["--irc-flood-burst", "1000"]);
    let mut irc = IrcClient::connect(&server).await;
    for (line, code) in [
        ("JOIN #lobby", "451"),
        ("PRIVMSG x :y", "451"),
        ("NICK 9lives", "432"),
        ("NICK", "431"),
        ("USER only", "461"),
    ] {
        irc.send(line).await;
        assert_eq!(parse(&irc.recv().await).command, code, "{line}");
    }
    irc.assert_usable().await;
    irc.send("NICK ircy").await;
    irc.send("USER ircy 0 * :I").await;
    irc.wait_for("376").await;
    let _web = Client::hello(&server, Kind::Ws, "webby").await;
    let long_body = format!("PRIVMSG #lobby :{}", "x".repeat(600));
    let long_line = format!("PRIVMSG #lobby :{}", "x".repeat(9000));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"FROBNICATE now", "421"),
        (b"JOIN", "461"),
        (b"JOIN lobby", "403"),
        (b"JOIN #no.dots", "479"),
        (b"JOIN ##twice", "479"),
        (b"PART #lobby", "442"),
        (b"PRIVMSG", "411"),
        (b"PRIVMSG #lobby", "412"),
        (b"PRIVMSG #lobby :hi", "404"),
        (b"PRIVMSG ghost :boo", "401"),
        (b"PRIVMSG bad!nick :boo", "401"),
        (b"NICK webby", "433"),
        (b"NICK WEBBY", "433"),
        (b"NICK 9lives", "432"),
        (b"USER a 0 * :b", "462"),
        (b"PASS secret", "462"),
        (b"PING", "409"),
        (b"CAP FROB", "410"),
        (b"CAP", "461"),
        (b"TOPIC", "461"),
        (b"TOPIC #lobby :mine", "442"),
        (b"MODE", "461"),
        (b"MODE #lobby +o webby", "442"),
        (b"MODE #lobby +x", "472"),
        (b"MODE webby", "502"),
        (b"MODE ircy +x", "501"),
        (b"KICK #lobby webby", "442"),
        (b"KICK #lobby", "461"),
        (b"WHOIS", "431"),
        (b"WHOIS ghost", "401"),
        (b"@bad_key=1 PING x", "400"),
        (b"PING \xff\xfe", "400"),
        (b"PING a\0b", "400"),
        (b"12 x", "421"),
        (b":onlyasource", "421"),
        (long_body.as_bytes(), "417"),
        (long_line.as_bytes(), "417"),
    ];
    for (line, code) in cases {
        irc.send_bytes(line).await;
        irc.send_bytes(b"\r\n").await;
        let reply = parse(&irc.recv().await);
        assert_eq!(
            reply.command,
            code,
            "{} -> {reply}",
            String::from_utf8_lossy(&line[..line.len().min(40)])
        );
        assert_eq!(reply.source.as_deref(), Some("banter"));
        assert_eq!(reply.params[0], "ircy", "numerics address the client");
        if code == "401" && line.starts_with(b"WHOIS") {
            assert_eq!(parse(&irc.recv().await).command, "318");
        }
        irc.assert_usable().await;
    }
    // Bare CR and bare LF end lines too.
    irc.send_bytes(b"PING :cr\rPING :lf\n").await;
    assert!(irc.expect("PONG").await.ends_with("cr"));
    assert!(irc.expect("PONG").await.ends_with("lf"));
}

#[tokio::test]
async fn queries_answer_like_a_serious_server() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut irc = IrcClient::register(&server, "ircy").await;
    irc.send("CAP REQ away-notify").await;
    irc.expect("CAP").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    web.expect("presence").await;

    // TOPIC both ways, and 332/333 on query and on join.
    irc.send("TOPIC #lobby").await;
    assert_eq!(parse(&irc.expect("331").await).params[1], "#lobby");
    irc.send("TOPIC #lobby :Welcome, all").await;
    assert_eq!(
        irc.recv().await,
        ":ircy!ircy@banter TOPIC #lobby :Welcome, all"
    );
    let topic = web.expect("topic").await;
    assert_eq!(
        (&topic["topic"]["text"], &topic["topic"]["by"]),
        (&json!("Welcome, all"), &json!("ircy"))
    );
    web.send(json!({"type":"topic","room":"lobby","text":"web rules"}))
        .await;
    web.expect("topic").await;
    assert_eq!(
        irc.recv().await,
        ":webby!webby@banter TOPIC #lobby :web rules"
    );
    irc.send("TOPIC #lobby").await;
    assert_eq!(
        parse(&irc.expect("332").await).params[1..],
        ["#lobby", "web rules"]
    );
    assert_eq!(parse(&irc.expect("333").await).params[2], "webby");

    irc.send("NAMES #lobby").await;
    assert_eq!(parse(&irc.expect("353").await).params[3], "webby ircy");
    irc.expect("366").await;

    // AWAY: web users see it; IRC sees 301, G in WHO, away-notify.
    web.send(json!({"type":"away","message":"lunch"})).await;
    assert_eq!(web.expect("away").await["message"], "lunch");
    assert_eq!(irc.recv().await, ":webby!webby@banter AWAY :lunch");
    irc.send("PRIVMSG webby :are you there?").await;
    assert_eq!(
        parse(&irc.expect("301").await).params[1..],
        ["webby", "lunch"]
    );
    irc.send("WHO #lobby").await;
    let who: Vec<Line> = vec![
        parse(&irc.expect("352").await),
        parse(&irc.expect("352").await),
    ];
    assert_eq!(
        (who[0].params[5].as_str(), who[0].params[6].as_str()),
        ("webby", "G")
    );
    assert_eq!(
        (who[1].params[5].as_str(), who[1].params[6].as_str()),
        ("ircy", "H")
    );
    irc.expect("315").await;
    irc.send("AWAY :brb").await;
    irc.expect("306").await;
    let away = web.wait_for("away").await;
    assert_eq!(
        (&away["nick"], &away["message"]),
        (&json!("ircy"), &json!("brb"))
    );
    irc.send("AWAY").await;
    irc.expect("305").await;

    irc.send("WHOIS webby").await;
    let user = parse(&irc.expect("311").await);
    assert_eq!(user.params[1..], ["webby", "webby", "banter", "*", "webby"]);
    assert_eq!(parse(&irc.expect("319").await).params[2], "#lobby");
    irc.expect("312").await;
    assert_eq!(parse(&irc.expect("301").await).params[2], "lunch");
    irc.expect("317").await;
    irc.expect("318").await;

    web.send(json!({"type":"join","room":"dev"})).await;
    web.wait_for("joined").await;
    irc.send("LIST").await;
    irc.expect("321").await;
    assert_eq!(
        parse(&irc.expect("322").await).params[1..],
        ["#dev", "1", ""]
    );
    assert_eq!(
        parse(&irc.expect("322").await).params[1..],
        ["#lobby", "2", "web rules"]
    );
    irc.expect("323").await;

    for (line, code) in [
        ("MODE #lobby", "324"),
        ("MODE #lobby b", "368"),
        ("MODE ircy", "221"),
        ("MOTD", "375"),
    ] {
        irc.send(line).await;
        assert_eq!(parse(&irc.recv().await).command, code, "{line}");
    }
    irc.wait_for("376").await;
    irc.send("MODE ircy +i").await;
    irc.assert_usable().await;
}

#[tokio::test]
async fn registration_times_out_and_floods_are_refused() {
    let server = TestServer::start_with(&["--handshake-timeout", "1"]);
    let mut idle = IrcClient::connect(&server).await;
    idle.send("NICK slow").await;
    let rest = idle.until_closed(Duration::from_secs(5)).await;
    assert!(
        rest.last()
            .is_some_and(|l| l.starts_with("ERROR :") && l.contains("registration timed out")),
        "{rest:?}"
    );

    let mut irc = IrcClient::register(&server, "flooder").await;
    let burst: String = (0..60).map(|i| format!("PING :n{i}\r\n")).collect();
    irc.send_bytes(burst.as_bytes()).await;
    let (mut pongs, mut notices) = (0, 0);
    loop {
        match irc.next_within(Duration::from_millis(500)).await {
            IrcNext::Line(l) if common::irc_command(&l) == "PONG" => pongs += 1,
            IrcNext::Line(l) if l.contains("Flood control") => notices += 1,
            IrcNext::Line(l) => panic!("unexpected {l}"),
            IrcNext::Timeout => break,
            IrcNext::Closed => panic!("a flood must not close the connection"),
        }
    }
    assert!((25..60).contains(&pongs), "{pongs} of 60 answered");
    assert_eq!(notices, 1, "told once");
    tokio::time::sleep(Duration::from_secs(1)).await;
    irc.assert_usable().await;
}

/// Found in review: a long non-ASCII target once panicked the session and
/// left its nick and memberships behind.
#[tokio::test]
async fn odd_targets_get_numerics_and_nothing_leaks() {
    let server = TestServer::start();
    let mut irc = IrcClient::register(&server, "panicky").await;
    let target = format!("{}é", "a".repeat(55));
    irc.send(&format!("PRIVMSG {target} :hi")).await;
    assert_eq!(irc_command(&irc.recv().await), "401");
    irc.send(&format!("PRIVMSG #{target} :hi")).await;
    assert_eq!(irc_command(&irc.recv().await), "403");
    irc.assert_usable().await;
    irc.send("QUIT :done").await;
    irc.until_closed(WAIT).await;
    // The nick is free again at once.
    let mut again = IrcClient::register(&server, "panicky").await;
    again.assert_usable().await;
}

#[tokio::test]
async fn whois_channel_lists_are_split_to_fit() {
    // 50 joins at once: above the default join burst.
    let server = TestServer::start_with(&["--join-rate", "0"]);
    let mut busy = IrcClient::register(&server, "busy").await;
    let rooms: Vec<String> = (0..50)
        .map(|i| format!("#{i:02}{}", "x".repeat(30)))
        .collect();
    for chunk in rooms.chunks(10) {
        busy.send(&format!("JOIN {}", chunk.join(","))).await;
    }
    for _ in &rooms {
        busy.wait_for("366").await;
    }
    let mut asker = IrcClient::register(&server, "asker").await;
    asker.send("WHOIS busy").await;
    let mut listed = Vec::new();
    loop {
        let line = asker.recv().await;
        assert!(line.len() + 2 <= 512, "{} bytes: {line}", line.len() + 2);
        match irc_command(&line) {
            "319" => listed.extend(
                line.rsplit_once(" :")
                    .unwrap()
                    .1
                    .split(' ')
                    .map(str::to_string),
            ),
            "318" => break,
            _ => {}
        }
    }
    listed.sort();
    let mut want = rooms.clone();
    want.sort();
    assert_eq!(listed, want, "every channel, once");
}

#[tokio::test]
async fn ctcp_queries_are_not_relayed_but_actions_and_tagmsg_are_fine() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    let mut irc = IrcClient::register(&server, "ircy").await;
    irc.send("PRIVMSG webby :\x01VERSION\x01").await;
    irc.send("NOTICE webby :\x01VERSION irssi\x01").await;
    irc.send("@+typing=active TAGMSG webby").await;
    irc.assert_usable().await;
    irc.send("PRIVMSG webby :\x01ACTION waves\x01").await;
    // The first thing the web user gets is the action: no CTCP got through.
    let direct = web.expect("direct").await;
    assert_eq!(direct["text"], "/me waves");
}

#[tokio::test]
async fn chathistory_pages_by_msgid_and_timestamp() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut stamps = Vec::new();
    for i in 1..=6 {
        web.send(json!({"type":"say","room":"lobby","text":format!("m{i}")}))
            .await;
        stamps.push(web.expect("message").await["ts"].as_u64().unwrap());
    }
    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP LS 302").await;
    let ls = irc.expect("CAP").await;
    assert!(ls.contains("draft/chathistory"), "{ls}");
    irc.send("CAP REQ :batch server-time message-tags draft/chathistory")
        .await;
    irc.expect("CAP").await;
    irc.send("NICK ircy").await;
    irc.send("USER ircy 0 * :I").await;
    irc.send("CAP END").await;
    let isupport = irc.wait_for("005").await;
    assert!(isupport.contains("CHATHISTORY="), "{isupport}");
    irc.wait_for("376").await;
    irc.send("CHATHISTORY LATEST #lobby * 2").await;
    assert_eq!(parse(&irc.recv().await).command, "442", "members only");
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    // The join replays recent history in a batch of its own.
    irc.wait_for("BATCH").await;
    irc.wait_for("BATCH").await;

    async fn page(irc: &mut IrcClient, command: &str) -> Vec<String> {
        irc.send(command).await;
        let start = parse(&irc.expect("BATCH").await);
        assert_eq!(start.params[1], "chathistory");
        let mut texts = Vec::new();
        loop {
            let line = parse(&irc.recv().await);
            if line.command == "BATCH" {
                return texts;
            }
            assert!(tag(&line, "time").is_some() && tag(&line, "msgid").is_some());
            texts.push(line.params[1].clone());
        }
    }
    assert_eq!(
        page(&mut irc, "CHATHISTORY LATEST #lobby * 2").await,
        ["m5", "m6"]
    );
    assert_eq!(
        page(&mut irc, "CHATHISTORY BEFORE #lobby msgid=lobby-4 2").await,
        ["m2", "m3"]
    );
    assert_eq!(
        page(&mut irc, "CHATHISTORY AFTER #lobby msgid=lobby-4 10").await,
        ["m5", "m6"]
    );
    // Timestamps: after the first message's time (minus nothing: strictly after).
    let iso = |ms: u64| banter::transport::irc::numeric::iso_time(ms);
    let after = page(
        &mut irc,
        &format!("CHATHISTORY AFTER #lobby timestamp={} 10", iso(stamps[0])),
    )
    .await;
    assert!(!after.contains(&"m1".to_string()) && after.contains(&"m6".to_string()));
    irc.send("CHATHISTORY BEFORE #lobby msgid=nonsense 2").await;
    assert_eq!(parse(&irc.expect("FAIL").await).params[0], "CHATHISTORY");
}
