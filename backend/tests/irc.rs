//! IRC users and web/TCP users in the same rooms, over real sockets: what
//! each side sees of the other, IRCv3 tags, long messages, and a numeric
//! for every bad line. Lines are read with Banter's own IRC parser here;
//! `irc_library.rs` drives the same flows with an independent one.

mod common;

use std::time::Duration;

use banter::transport::irc::line::Line;
use common::{Client, IrcClient, Kind, TestServer, WAIT, irc_command};
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
    assert_eq!(irc.recv().await, ":ircy2!ircy2@banter PART #lobby :see you");
    let parted = web.expect("presence").await;
    assert_eq!(
        (&parted["nick"], &parted["event"], &parted["reason"]),
        (&json!("ircy2"), &json!("part"), &json!("see you"))
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
        (&quit["nick"], &quit["event"], &quit["reason"]),
        (&json!("ircy2"), &json!("quit"), &json!("bye now"))
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
    let notice = web.wait_for("direct").await;
    assert_eq!(
        (&notice["text"], &notice["notice"]),
        (&json!("note"), &json!(true))
    );
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
    // #lobby exists (webby is in it); #empty does not.
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let long_body = format!("PRIVMSG #lobby :{}", "x".repeat(600));
    let long_line = format!("PRIVMSG #lobby :{}", "x".repeat(9000));
    let cases: Vec<(&[u8], &str)> = vec![
        (b"FROBNICATE now", "421"),
        (b"JOIN", "461"),
        (b"JOIN lobby", "403"),
        (b"JOIN #no.dots", "479"),
        (b"JOIN ##twice", "479"),
        (b"PART #lobby", "442"),
        (b"PART #empty", "403"),
        (b"PRIVMSG #empty :anyone?", "401"),
        (b"TOPIC #empty :mine", "403"),
        (b"KICK #empty webby", "403"),
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
        if code == "324" {
            // When the channel was opened.
            let created = parse(&irc.expect("329").await);
            assert!(created.params[2].parse::<u64>().unwrap() > 1_700_000_000);
        }
    }
    irc.wait_for("376").await;
    irc.send("MODE ircy +i").await;
    irc.assert_usable().await;
}

#[tokio::test]
async fn registration_times_out() {
    let server = TestServer::start_with(&["--handshake-timeout", "1"]);
    let mut idle = IrcClient::connect(&server).await;
    idle.send("NICK slow").await;
    let rest = idle.until_closed(Duration::from_secs(5)).await;
    assert!(
        rest.last()
            .is_some_and(|l| l.starts_with("ERROR :") && l.contains("registration timed out")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn a_burst_over_the_flood_limit_is_slowed_down_not_dropped() {
    let server = TestServer::start_with(&[
        "--irc-flood-burst",
        "10",
        "--irc-flood-rate",
        "20",
        "--irc-flood-backlog",
        "60",
        // The per-session message limit is not what this is about.
        "--message-rate",
        "0",
    ]);
    let mut web = Client::hello(&server, Kind::Tcp, "webby").await;
    web.join("lobby").await;
    let mut irc = IrcClient::register(&server, "flooder").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    web.expect("presence").await;

    // 10 lines at once, then 20 a second: 60 lines take about 2.5 s, and
    // every one of them is carried out, in order.
    let started = std::time::Instant::now();
    let burst: String = (0..30)
        .map(|i| format!("PRIVMSG #lobby :line {i}\r\nPING :n{i}\r\n"))
        .collect();
    irc.send_bytes(burst.as_bytes()).await;
    for i in 0..30 {
        let pong = irc.expect("PONG").await;
        assert!(pong.ends_with(&format!(":n{i}")), "{pong}");
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "not slowed down: {took:?}");
    for i in 0..30 {
        assert_eq!(web.expect("message").await["text"], format!("line {i}"));
    }
    irc.assert_usable().await;

    // Far more than may wait: disconnected, and the room sees it go.
    let flood: String = (0..300).map(|i| format!("PING :f{i}\r\n")).collect();
    irc.send_bytes(flood.as_bytes()).await;
    let rest = irc.until_closed(Duration::from_secs(10)).await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("ERROR :Closing link: Excess Flood"),
        "{rest:?}"
    );
    assert!(rest.len() <= 11, "at most the burst was answered: {rest:?}");
    let quit = web.expect("presence").await;
    assert_eq!(
        (&quit["nick"], &quit["event"]),
        (&json!("flooder"), &json!("quit"))
    );
    let (_, metrics) = common::http_get(server.admin(), "/metrics", &[]).await;
    assert!(
        metrics.contains("banter_rate_limited_total{kind=\"irc_flood\"} 1\n"),
        "{metrics}"
    );
}

const PW: &str = "correct horse";

/// Registers the account `nick` over TCP, then logs in with it.
async fn logged_in(server: &TestServer, kind: Kind, nick: &str) -> Client {
    let mut c = Client::connect(server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":nick,"password":PW}))
        .await;
    c.expect("registered").await;
    drop(c);
    let hello = json!({"type":"hello","nick":nick,"password":PW});
    let (mut c, welcome) = Client::hello_with(server, kind, hello).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    c.expect("logged_in").await;
    c
}

/// The names in the 353 of `line`.
fn names_of(line: &str) -> Vec<String> {
    let line = parse(line);
    line.params[3].split(' ').map(str::to_string).collect()
}

#[tokio::test]
async fn irc_shows_the_members_who_moderate_by_nick_not_by_account() {
    let server = TestServer::start();
    // alice owns #den, then takes another nick: its account stays alice.
    let mut alice = logged_in(&server, Kind::Ws, "alice").await;
    alice.join("den").await;
    alice.expect("roles").await;
    alice.send(json!({"type":"nick","nick":"ali"})).await;
    alice.wait_for("nick").await;
    let dave = logged_in(&server, Kind::Tcp, "dave").await;
    drop(dave);

    // An IRC user who joins sees ali as an operator, and nobody called alice.
    let mut irc = IrcClient::register(&server, "ircy").await;
    irc.send("JOIN #den").await;
    irc.expect("JOIN").await;
    assert_eq!(names_of(&irc.wait_for("353").await), ["@ali", "ircy"]);
    irc.wait_for("366").await;
    irc.assert_usable().await;
    irc.send("NAMES #den").await;
    assert_eq!(names_of(&irc.expect("353").await), ["@ali", "ircy"]);
    irc.expect("366").await;
    irc.send("WHO #den").await;
    let who: Vec<Line> = [irc.expect("352").await, irc.expect("352").await]
        .iter()
        .map(|l| parse(l))
        .collect();
    assert_eq!(
        (&who[0].params[5][..], &who[0].params[6][..]),
        ("ali", "H@")
    );
    assert_eq!(
        (&who[1].params[5][..], &who[1].params[6][..]),
        ("ircy", "H")
    );
    irc.expect("315").await;

    // Making an absent account an operator shows nothing yet...
    alice
        .send(json!({"type":"op","room":"den","account":"dave"}))
        .await;
    assert_eq!(alice.wait_for("roles").await["moderators"], json!(["ali"]));
    irc.assert_usable().await;
    // ...until someone logged into it joins, under any nick.
    let mut dave = Client::hello_with(
        &server,
        Kind::Tcp,
        json!({"type":"hello","nick":"dave","password":PW}),
    )
    .await
    .0;
    dave.expect("logged_in").await;
    dave.send(json!({"type":"nick","nick":"dv"})).await;
    dave.wait_for("nick").await;
    dave.join("den").await;
    assert_eq!(irc.expect("JOIN").await, ":dv!dv@banter JOIN #den");
    assert_eq!(irc.expect("MODE").await, ":banter MODE #den +o dv");
    // A moderator's new nick stays one; taking the rights away shows -o.
    dave.send(json!({"type":"nick","nick":"dvd"})).await;
    assert_eq!(irc.expect("NICK").await, ":dv!dv@banter NICK :dvd");
    alice
        .send(json!({"type":"deop","room":"den","account":"dave"}))
        .await;
    assert_eq!(irc.expect("MODE").await, ":banter MODE #den -o dvd");
    irc.assert_usable().await;
    irc.send("NAMES #den").await;
    assert_eq!(names_of(&irc.expect("353").await), ["@ali", "ircy", "dvd"]);
}

#[tokio::test]
async fn account_tag_marks_what_logged_in_users_send() {
    let server = TestServer::start();
    // alice creates #lobby (so she owns it) and leaves it.
    let mut alice = logged_in(&server, Kind::Ws, "alice").await;
    alice.join("lobby").await;
    alice.expect("roles").await;
    alice.send(json!({"type":"part","room":"lobby"})).await;
    alice.wait_for("parted").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP LS 302").await;
    let ls = parse(&irc.expect("CAP").await);
    assert!(ls.params[2].split(' ').any(|c| c == "account-tag"), "{ls}");
    irc.send("CAP REQ account-tag").await;
    irc.expect("CAP").await;
    irc.send("NICK ircy").await;
    irc.send("USER ircy 0 * :I").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    let mut plain = IrcClient::register(&server, "plain").await;
    plain.send("JOIN #lobby").await;
    plain.wait_for("366").await;
    irc.expect("JOIN").await;

    // A logged-in user: its JOIN, messages and whispers carry the tag.
    alice.join("lobby").await;
    assert_eq!(
        irc.recv().await,
        "@account=alice :alice!alice@banter JOIN #lobby"
    );
    // Its owner is shown as an operator.
    assert_eq!(irc.recv().await, ":banter MODE #lobby +o alice");
    alice.expect("roles").await;
    alice
        .send(json!({"type":"say","room":"lobby","text":"signed"}))
        .await;
    let echo = alice.expect("message").await;
    assert_eq!(echo["account"], "alice", "the JSON message says so too");
    assert_eq!(
        irc.recv().await,
        "@account=alice :alice!alice@banter PRIVMSG #lobby :signed"
    );
    alice
        .send(json!({"type":"whisper","to":"ircy","text":"psst"}))
        .await;
    assert_eq!(
        irc.recv().await,
        "@account=alice :alice!alice@banter PRIVMSG ircy :psst"
    );
    // Without the capability: no tags at all.
    assert_eq!(
        plain.expect("JOIN").await,
        ":alice!alice@banter JOIN #lobby"
    );
    plain.expect("MODE").await;
    assert_eq!(
        plain.recv().await,
        ":alice!alice@banter PRIVMSG #lobby :signed"
    );

    // PART too; and an operator who comes back is shown as one again.
    alice.send(json!({"type":"part","room":"lobby"})).await;
    alice.wait_for("parted").await;
    assert_eq!(
        irc.recv().await,
        "@account=alice :alice!alice@banter PART #lobby"
    );
    alice.join("lobby").await;
    alice.expect("roles").await;
    assert_eq!(
        irc.recv().await,
        "@account=alice :alice!alice@banter JOIN #lobby"
    );
    assert_eq!(irc.recv().await, ":banter MODE #lobby +o alice");
    // So is every operator to an IRC client that leaves and comes back
    // (its client forgot them with the channel).
    irc.send("PART #lobby").await;
    irc.expect("PART").await;
    irc.send("JOIN #lobby").await;
    irc.expect("JOIN").await;
    let names = parse(&irc.wait_for("353").await);
    assert!(names.params[3].split(' ').any(|n| n == "@alice"), "{names}");
    irc.wait_for("366").await;
    irc.assert_usable().await;

    // A guest's lines have no account tag.
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest.join("lobby").await;
    assert_eq!(irc.recv().await, ":guest!guest@banter JOIN #lobby");
    guest
        .send(json!({"type":"say","room":"lobby","text":"anon"}))
        .await;
    assert!(guest.wait_for("message").await.get("account").is_none());
    assert_eq!(irc.recv().await, ":guest!guest@banter PRIVMSG #lobby :anon");

    // WHOIS tells the account (330).
    irc.send("WHOIS alice").await;
    let account = parse(&irc.wait_for("330").await);
    assert_eq!(account.params[1..3], ["alice", "alice"]);
    irc.wait_for("318").await;
    irc.send("WHOIS guest").await;
    loop {
        let line = irc.recv().await;
        assert_ne!(irc_command(&line), "330", "a guest has no account");
        if irc_command(&line) == "318" {
            break;
        }
    }

    // An IRC user logged in with PASS: the web sees its account.
    let mut c = Client::connect(&server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":"erin","password":PW}))
        .await;
    c.expect("registered").await;
    let mut erin = IrcClient::connect(&server).await;
    erin.send(&format!("PASS :{PW}")).await;
    erin.send("NICK erin").await;
    erin.send("USER erin 0 * :Erin").await;
    erin.wait_for("900").await;
    erin.send("JOIN #lobby").await;
    erin.wait_for("366").await;
    erin.send("PRIVMSG #lobby :from irc").await;
    assert_eq!(alice.wait_for("message").await["text"], "anon");
    let got = alice.wait_for("message").await;
    assert_eq!(
        (&got["from"], &got["account"]),
        (&json!("erin"), &json!("erin"))
    );
}

#[tokio::test]
async fn away_users_who_join_are_announced_to_away_notify() {
    let server = TestServer::start();
    let mut notified = IrcClient::register(&server, "notified").await;
    notified.send("CAP REQ away-notify").await;
    notified.expect("CAP").await;
    notified.send("JOIN #lobby").await;
    notified.wait_for("366").await;
    let mut plain = IrcClient::register(&server, "plain").await;
    plain.send("JOIN #lobby").await;
    plain.wait_for("366").await;
    notified.expect("JOIN").await;

    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.send(json!({"type":"away","message":"lunch"})).await;
    web.expect("away").await;
    web.join("lobby").await;
    assert_eq!(notified.recv().await, ":webby!webby@banter JOIN #lobby");
    assert_eq!(notified.recv().await, ":webby!webby@banter AWAY :lunch");
    assert_eq!(plain.recv().await, ":webby!webby@banter JOIN #lobby");
    plain.assert_usable().await;
    // The joiner itself is not told it is away.
    web.assert_usable().await;

    // An IRC user who is away, joining: the same.
    let mut away = IrcClient::register(&server, "aways").await;
    away.send("AWAY :gone fishing").await;
    away.expect("306").await;
    away.send("JOIN #lobby").await;
    away.wait_for("366").await;
    away.assert_usable().await;
    assert_eq!(notified.recv().await, ":aways!aways@banter JOIN #lobby");
    assert_eq!(
        notified.recv().await,
        ":aways!aways@banter AWAY :gone fishing"
    );
    let json_side = web.wait_for("away").await;
    assert_eq!(
        (&json_side["nick"], &json_side["message"]),
        (&json!("aways"), &json!("gone fishing"))
    );
}

#[tokio::test]
async fn ison_userhost_and_bare_names_and_who() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "Webby").await;
    let mut irc = IrcClient::register(&server, "ircy").await;
    irc.send("ISON webby ghost IRCY webby").await;
    assert_eq!(irc.recv().await, ":banter 303 ircy :Webby ircy");
    irc.send("ISON :ghost nobody").await;
    assert_eq!(irc.recv().await, ":banter 303 ircy :");
    irc.send("USERHOST webby ircy ghost").await;
    assert_eq!(
        irc.recv().await,
        ":banter 302 ircy :Webby=+Webby@banter ircy=+ircy@banter"
    );
    web.send(json!({"type":"away","message":"out"})).await;
    web.expect("away").await;
    irc.send("USERHOST webby").await;
    assert_eq!(irc.recv().await, ":banter 302 ircy :Webby=-Webby@banter");
    // JSON clients ask the same way.
    web.send(json!({"type":"users","nicks":["IRCY","ghost"],"ref":7}))
        .await;
    let users = web.expect("users").await;
    // With what its USER said.
    assert_eq!(
        users["users"],
        json!([{"nick":"ircy","username":"ircy","realname":"ircy the tester"}])
    );
    assert_eq!(users["ref"], 7);

    for (line, want) in [
        ("NAMES", ":banter 366 ircy * :End of /NAMES list"),
        ("WHO", ":banter 315 ircy * :End of /WHO list"),
        ("ISON", ":banter 461 ircy ISON :Not enough parameters"),
        (
            "USERHOST",
            ":banter 461 ircy USERHOST :Not enough parameters",
        ),
    ] {
        irc.send(line).await;
        assert_eq!(irc.recv().await, want, "{line}");
    }
    irc.assert_usable().await;
}

#[tokio::test]
async fn notices_arrive_as_notices_and_are_never_answered() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut a = IrcClient::register(&server, "alpha").await;
    let mut b = IrcClient::register(&server, "beta").await;
    b.send("CAP REQ echo-message").await;
    b.expect("CAP").await;
    for irc in [&mut a, &mut b] {
        irc.send("JOIN #lobby").await;
        irc.wait_for("366").await;
    }
    a.expect("JOIN").await;

    b.send("NOTICE #lobby :heads up").await;
    assert_eq!(a.recv().await, ":beta!beta@banter NOTICE #lobby :heads up");
    assert_eq!(b.recv().await, ":beta!beta@banter NOTICE #lobby :heads up");
    let got = web.wait_for("message").await;
    assert_eq!(
        (&got["text"], &got["notice"]),
        (&json!("heads up"), &json!(true))
    );
    b.send("PRIVMSG #lobby :plain").await;
    assert_eq!(a.recv().await, ":beta!beta@banter PRIVMSG #lobby :plain");
    assert_eq!(b.recv().await, ":beta!beta@banter PRIVMSG #lobby :plain");
    assert!(web.expect("message").await.get("notice").is_none());

    // From the web, to a room and to a nick.
    web.send(json!({"type":"say","room":"lobby","text":"bot says","notice":true}))
        .await;
    assert_eq!(
        a.recv().await,
        ":webby!webby@banter NOTICE #lobby :bot says"
    );
    assert_eq!(
        b.recv().await,
        ":webby!webby@banter NOTICE #lobby :bot says"
    );
    web.send(json!({"type":"whisper","to":"alpha","text":"fyi","notice":true}))
        .await;
    assert_eq!(a.recv().await, ":webby!webby@banter NOTICE alpha :fyi");

    // To someone away: a PRIVMSG gets 301, a NOTICE nothing.
    a.send("AWAY :busy").await;
    a.expect("306").await;
    b.send("NOTICE alpha :you there?").await;
    assert_eq!(b.recv().await, ":beta!beta@banter NOTICE alpha :you there?");
    b.assert_usable().await;
    assert_eq!(a.recv().await, ":beta!beta@banter NOTICE alpha :you there?");
    b.send("PRIVMSG alpha :you there?").await;
    // The away message comes first, then the echo.
    assert_eq!(parse(&b.expect("301").await).params[1..], ["alpha", "busy"]);
    b.expect("PRIVMSG").await;
    assert_eq!(web.wait_for("away").await["nick"], "alpha");
    web.send(json!({"type":"whisper","to":"alpha","text":"ping","notice":true}))
        .await;
    web.expect("direct").await;
    web.assert_usable().await;
}

#[tokio::test]
async fn part_and_quit_reasons_reach_everyone() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Tcp, "webby").await;
    web.join("lobby").await;
    let mut watcher = IrcClient::register(&server, "watcher").await;
    watcher.send("JOIN #lobby").await;
    watcher.wait_for("366").await;
    let mut leaver = IrcClient::register(&server, "leaver").await;
    leaver.send("JOIN #lobby,#dev").await;
    leaver.wait_for("366").await;
    leaver.wait_for("366").await;
    watcher.expect("JOIN").await;
    web.wait_for("presence").await;
    web.wait_for("presence").await;

    leaver.send("PART #dev,#lobby :off to lunch").await;
    assert_eq!(
        leaver.recv().await,
        ":leaver!leaver@banter PART #dev :off to lunch"
    );
    assert_eq!(
        leaver.recv().await,
        ":leaver!leaver@banter PART #lobby :off to lunch"
    );
    assert_eq!(
        watcher.recv().await,
        ":leaver!leaver@banter PART #lobby :off to lunch"
    );
    let part = web.expect("presence").await;
    assert_eq!(
        (&part["event"], &part["reason"]),
        (&json!("part"), &json!("off to lunch"))
    );

    // From JSON: part with a reason.
    web.send(json!({"type":"part","room":"lobby","reason":"brb"}))
        .await;
    assert_eq!(web.expect("parted").await["reason"], "brb");
    assert_eq!(watcher.recv().await, ":webby!webby@banter PART #lobby :brb");
    web.join("lobby").await;
    watcher.expect("JOIN").await;
    web.send(json!({"type":"part","room":"lobby","reason":"a\nb"}))
        .await;
    web.expect_error("invalid_text").await;

    // QUIT: others see the user's words after "Quit: ".
    leaver.send("JOIN #lobby").await;
    leaver.wait_for("366").await;
    watcher.expect("JOIN").await;
    web.expect("presence").await;
    leaver.send("QUIT :see you tomorrow").await;
    leaver.until_closed(WAIT).await;
    assert_eq!(
        watcher.recv().await,
        ":leaver!leaver@banter QUIT :Quit: see you tomorrow"
    );
    let quit = web.expect("presence").await;
    assert_eq!(
        (&quit["event"], &quit["reason"]),
        (&json!("quit"), &json!("see you tomorrow"))
    );
    // A bare QUIT, or a dropped connection: no reason.
    let mut quiet = IrcClient::register(&server, "quiet").await;
    quiet.send("JOIN #lobby").await;
    quiet.wait_for("366").await;
    watcher.expect("JOIN").await;
    web.expect("presence").await;
    quiet.send("QUIT").await;
    assert_eq!(
        quiet.until_closed(WAIT).await.last().map(String::as_str),
        Some("ERROR :Closing link: quiet (Quit)")
    );
    assert_eq!(watcher.recv().await, ":quiet!quiet@banter QUIT :Quit");
    assert!(web.expect("presence").await.get("reason").is_none());
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
    // 50 new rooms at once: above the default join burst and new-room quota.
    let server = TestServer::start_with(&["--join-rate", "0", "--new-rooms-per-hour", "0"]);
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
    // busy opened each room, so runs it: `@` before each.
    let mut want: Vec<String> = rooms.iter().map(|r| format!("@{r}")).collect();
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
    // The query is answered (by the server), the reply and TAGMSG are not.
    assert_eq!(irc_command(&irc.recv().await), "NOTICE");
    irc.assert_usable().await;
    irc.send("PRIVMSG webby :\x01ACTION waves\x01").await;
    // The first thing the web user gets is the action: no CTCP got through.
    let direct = web.expect("direct").await;
    assert_eq!(direct["text"], "/me waves");
}

/// Issue 22, finding 12: no web, JSON-lines or IRC user can send CTCP
/// (`\x01`: VERSION, DCC, …) to IRC clients. JSON texts, topics and away
/// messages holding `\x01` are refused (`invalid_text`); an IRC CTCP query
/// is answered with a NOTICE saying it went nowhere, a CTCP reply dropped,
/// a stray `\x01` refused with a numeric. `/me` (an ACTION) and IRC
/// formatting codes still pass.
#[tokio::test]
async fn ctcp_from_any_transport_never_reaches_irc_clients() {
    let server = TestServer::start();
    let mut irc = IrcClient::register(&server, "ircy").await;
    irc.send("JOIN #lobby").await;
    irc.wait_for("366").await;
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    let mut bot = Client::hello(&server, Kind::Tcp, "bot").await;
    bot.join("lobby").await;
    web.expect("presence").await;
    irc.wait_for("JOIN").await;
    irc.wait_for("JOIN").await;

    let dcc = "\x01DCC SEND evil.exe 2130706433 4444 1\x01";
    for (on_web, request) in [
        (
            true,
            json!({"type":"say","room":"lobby","text":"\x01VERSION\x01"}),
        ),
        (true, json!({"type":"whisper","to":"ircy","text":dcc})),
        (
            true,
            json!({"type":"say","room":"lobby","text":"/me \x01PING 1\x01"}),
        ),
        (
            false,
            json!({"type":"say","room":"lobby","text":format!("look {dcc}")}),
        ),
        (
            false,
            json!({"type":"whisper","to":"ircy","text":"\x01ACTION fakes\x01"}),
        ),
        (
            false,
            json!({"type":"topic","room":"lobby","text":"\x01VERSION\x01"}),
        ),
        (false, json!({"type":"away","message":"\x01TIME\x01"})),
    ] {
        let client = if on_web { &mut web } else { &mut bot };
        let mut request = request;
        request["ref"] = json!("ctcp");
        client.send(request.clone()).await;
        let refused = client.expect_error("invalid_text").await;
        assert_eq!(refused["ref"], "ctcp", "{request}: {refused}");
    }

    // From IRC: a query gets a NOTICE back, a reply is dropped, a stray
    // \x01 inside a text is refused.
    irc.send(&format!("PRIVMSG #lobby :{dcc}")).await;
    let told = parse(&irc.recv().await);
    assert_eq!(
        (told.command.as_str(), told.params[0].as_str()),
        ("NOTICE", "ircy")
    );
    assert!(
        told.params[1].contains("CTCP DCC is not relayed"),
        "{told:?}"
    );
    irc.send("PRIVMSG webby :\x01VERSION\x01").await;
    assert!(parse(&irc.recv().await).params[1].contains("CTCP VERSION"));
    irc.send("NOTICE webby :\x01VERSION irssi 1.4\x01").await;
    irc.send("PRIVMSG #lobby :hi \x01VERSION\x01").await;
    let refused = irc.recv().await;
    assert_eq!(irc_command(&refused), "400", "{refused}");
    assert!(refused.contains("x01"), "{refused}");

    // Actions and formatting pass, both ways: the first thing the web user
    // hears from anyone else is the IRC user's action.
    web.send(json!({"type":"say","room":"lobby","text":"/me waves \x02bold\x02 \x0304red"}))
        .await;
    web.expect("message").await;
    assert_eq!(
        irc.recv().await,
        ":webby!webby@banter PRIVMSG #lobby :\x01ACTION waves \x02bold\x02 \x0304red\x01"
    );
    irc.send("PRIVMSG #lobby :\x01ACTION bows\x01").await;
    let action = web.expect("message").await;
    assert_eq!(
        (&action["from"], &action["text"]),
        (&json!("ircy"), &json!("/me bows"))
    );
    let seen = bot.wait_for("message").await;
    assert_eq!(seen["from"], "webby", "{seen}");
    assert_eq!(bot.expect("message").await["text"], "/me bows");
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
    // With draft/chathistory the join replays nothing: the client asks
    // for what it misses (the next line answers the first request).

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

#[tokio::test]
async fn a_login_refused_busy_may_try_again_with_nick() {
    let server = TestServer::start_with(&[
        "--argon2-memory-kib",
        "65536",
        "--argon2-concurrency",
        "1",
        "--argon2-wait",
        "0",
    ]);
    let mut c = Client::connect(&server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":"dave","password":PW}))
        .await;
    c.expect("registered").await;
    // While a registration holds the one hashing slot, an IRC login is
    // told to try again (464), and PASS + NICK may retry it on the same
    // connection.
    for attempt in 0..10 {
        let mut holder = Client::connect(&server, Kind::Ws).await;
        holder
            .send(json!({"type":"register","nick":format!("hold{attempt}"),"password":PW}))
            .await;
        let mut irc = IrcClient::connect(&server).await;
        irc.send(&format!("PASS :{PW}")).await;
        irc.send("NICK dave").await;
        irc.send("USER dave 0 * :Dave").await;
        let first = irc.recv().await;
        if irc_command(&first) == "001" {
            continue; // the slot was free already: try again
        }
        assert_eq!(irc_command(&first), "464", "{first}");
        assert!(first.contains("try again"), "{first}");
        holder.expect("registered").await;
        irc.send(&format!("PASS :{PW}")).await;
        irc.send("NICK dave").await;
        irc.expect("001").await;
        return;
    }
    panic!("the hashing slot was never busy");
}

#[tokio::test]
async fn pipelined_requests_each_get_the_numerics_for_what_they_asked() {
    let server = TestServer::start();
    let mut irc = IrcClient::register(&server, "eager").await;
    // More requests in one write than the connection remembers at once
    // (each WHOIS target is one): every reply still finds its own.
    let nicks: Vec<Vec<String>> = (0..12)
        .map(|i| (0..10).map(|j| format!("gone{i}x{j}")).collect())
        .collect();
    let mut burst = String::new();
    for line in &nicks {
        burst.push_str(&format!("WHOIS {}\r\n", line.join(",")));
    }
    irc.send_bytes(burst.as_bytes()).await;
    for nick in nicks.iter().flatten() {
        assert_eq!(
            irc.recv().await,
            format!(":banter 401 eager {nick} :No such nick/channel")
        );
        assert_eq!(
            irc.recv().await,
            format!(":banter 318 eager {nick} :End of /WHOIS list")
        );
    }
    irc.send("TOPIC #lobby").await;
    assert_eq!(
        irc.recv().await,
        ":banter 403 eager #lobby :No such channel"
    );
    irc.assert_usable().await;
}

/// A bot that pipelines its first commands (NICK, USER, JOIN and a
/// PRIVMSG in one write, before the welcome can have come) gets them all
/// carried out, in order, right after the welcome, however its lines and
/// the welcome interleave (with or without CAP negotiation first); a
/// command before NICK and USER are in is still refused with 451.
#[tokio::test]
async fn commands_pipelined_after_registration_run_after_the_welcome() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "webby").await;
    web.join("lobby").await;
    for (nick, prefix) in [
        ("a", ""),
        ("b", "CAP LS 302\r\nCAP REQ :server-time\r\nCAP END\r\n"),
        ("c", "PING :x\r\n"),
    ] {
        let mut irc = IrcClient::connect(&server).await;
        let mut burst = format!("{prefix}NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n");
        burst.push_str("JOIN #lobby\r\nPRIVMSG #lobby :hi\r\n");
        for i in 0..5 {
            burst.push_str(&format!("PRIVMSG webby :{i}\r\n"));
        }
        irc.send_bytes(burst.as_bytes()).await;
        loop {
            let line = irc.recv().await;
            assert_ne!(irc_command(&line), "451", "{line}");
            if irc_command(&line) == "001" {
                break;
            }
        }
        let join = irc.wait_for("JOIN").await;
        assert!(
            join.ends_with(&format!(":{nick}!{nick}@banter JOIN #lobby")),
            "{join}"
        );
        irc.wait_for("366").await;
        let got = web.wait_for("message").await;
        assert_eq!((&got["from"], &got["text"]), (&json!(nick), &json!("hi")));
        for i in 0..5 {
            let direct = web.wait_for("direct").await;
            assert_eq!(
                (&direct["from"], &direct["text"]),
                (&json!(nick), &json!(i.to_string()))
            );
        }
        // Still usable (with server-time, the join replayed the history).
        irc.send("PING :still-there").await;
        assert!(irc.wait_for("PONG").await.ends_with("still-there"));
    }

    // Before NICK and USER are in, a command is still refused at once.
    let mut early = IrcClient::connect(&server).await;
    early.send_bytes(b"JOIN #lobby\r\nNICK d\r\n").await;
    let line = early.recv().await;
    assert_eq!(parse(&line).command, "451", "{line}");
    assert!(line.contains("send NICK and USER"), "{line}");
}

/// A JOIN replays the newest `--irc-join-replay` messages, in a
/// `chathistory` batch with their times and msgids, to clients with
/// `server-time` (and not `draft/chathistory`); 0 turns it off.
#[tokio::test]
async fn join_replay_is_bounded_and_can_be_turned_off() {
    for (replay, expected) in [("2", vec!["m3", "m4"]), ("0", vec![])] {
        let server = TestServer::start_with(&["--irc-join-replay", replay]);
        let mut web = Client::hello(&server, Kind::Ws, "web").await;
        web.join("lobby").await;
        for i in 1..=4 {
            common::say(&mut web, "lobby", &format!("m{i}")).await;
        }
        let mut irc = IrcClient::connect(&server).await;
        irc.send("CAP REQ :batch server-time message-tags").await;
        irc.expect("CAP").await;
        irc.send("NICK ircy").await;
        irc.send("USER ircy 0 * :I").await;
        irc.send("CAP END").await;
        irc.wait_for("376").await;
        irc.send("JOIN #lobby").await;
        irc.send("PING :done").await;
        let mut replayed = Vec::new();
        loop {
            let line = parse(&irc.recv().await);
            match line.command.as_str() {
                "PONG" => break,
                "PRIVMSG" => {
                    assert!(tag(&line, "time").is_some() && tag(&line, "msgid").is_some());
                    assert!(tag(&line, "batch").is_some(), "in the batch");
                    replayed.push(line.params[1].clone());
                }
                _ => {}
            }
        }
        assert_eq!(replayed, expected, "--irc-join-replay {replay}");
    }
}

/// TIME (391), ADMIN (256-259), INFO (371, 374) and WHOWAS (406 and 369
/// for each nick: the server keeps no record of nicks gone; 431 without
/// one), with the parameters modern.ircdocs.horse gives them.
#[tokio::test]
async fn time_admin_info_and_whowas_answer_as_the_spec_says() {
    let server = TestServer::start();
    let mut irc = IrcClient::register(&server, "asker").await;
    irc.send("TIME").await;
    let time = parse(&irc.expect("391").await);
    assert_eq!(time.params[..2], ["asker", "banter"]);
    let secs: u64 = time.params[2].parse().unwrap();
    assert!(secs > 1_700_000_000, "{time:?}");
    assert!(time.params.last().unwrap().contains('T'), "{time:?}");
    irc.send("ADMIN").await;
    for code in ["256", "257", "258", "259"] {
        assert_eq!(parse(&irc.recv().await).command, code);
    }
    irc.send("INFO").await;
    assert_eq!(parse(&irc.recv().await).command, "371");
    assert!(irc.wait_for("374").await.contains("End of /INFO"));
    irc.send("WHOWAS gone,also").await;
    for nick in ["gone", "also"] {
        let was = parse(&irc.expect("406").await);
        assert_eq!(was.params[..2], ["asker", nick]);
        let end = parse(&irc.expect("369").await);
        assert_eq!(end.params[..2], ["asker", nick]);
    }
    irc.send("WHOWAS").await;
    irc.expect("431").await;
}

/// LUSERS (251-255, 265, 266), also at registration before the MOTD.
#[tokio::test]
async fn lusers_counts_users_and_channels() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    web.join("lobby").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send("NICK counter").await;
    irc.send("USER counter 0 * :C").await;
    irc.wait_for("005").await;
    let mut at_welcome = Vec::new();
    loop {
        let line = parse(&irc.recv().await);
        if line.command == "375" {
            break;
        }
        at_welcome.push(line.command.clone());
    }
    assert!(
        ["251", "252", "253", "254", "255", "265", "266"]
            .iter()
            .all(|c| at_welcome.iter().any(|l| l == c)),
        "{at_welcome:?}"
    );
    irc.wait_for("376").await;
    irc.send("LUSERS").await;
    let client = parse(&irc.expect("251").await);
    assert!(client.params[1].contains("There are 2 users"), "{client:?}");
    irc.expect("252").await;
    irc.expect("253").await;
    let channels = parse(&irc.expect("254").await);
    assert_eq!(channels.params[1], "1", "{channels:?}");
    irc.expect("255").await;
    irc.expect("265").await;
    let global = parse(&irc.expect("266").await);
    assert_eq!(global.params[1..3], ["2", "2"]);
}

/// An empty username or real name in USER is 461; a proper USER after it
/// registers.
#[tokio::test]
async fn user_with_an_empty_real_name_is_refused() {
    let server = TestServer::start();
    let mut irc = IrcClient::connect(&server).await;
    irc.send("NICK blank").await;
    irc.send("USER blank 0 * :").await;
    let refused = parse(&irc.expect("461").await);
    assert_eq!(refused.params[1], "USER", "{refused:?}");
    irc.send("USER blank 0 * :Blank Page").await;
    irc.wait_for("001").await;
}

/// NAMES with `multi-prefix` shows every prefix (`@+`), with
/// `userhost-in-names` each member as `nick!user@host`; `cap-notify` is
/// offered and accepted.
#[tokio::test]
async fn names_follow_multi_prefix_and_userhost_in_names() {
    let server = TestServer::start();
    common::register(&server, "olga").await;
    let (mut olga, _) = common::log_in(&server, Kind::Ws, "olga").await;
    olga.join("den").await;
    olga.wait_for("roles").await;
    olga.send(json!({"type":"voice","room":"den","nick":"olga"}))
        .await;
    olga.wait_for("voiced").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP LS 302").await;
    let ls = irc.expect("CAP").await;
    assert!(
        ls.contains("cap-notify") && ls.contains("userhost-in-names"),
        "{ls}"
    );
    irc.send("CAP REQ :multi-prefix userhost-in-names cap-notify")
        .await;
    assert!(irc.expect("CAP").await.contains("ACK"));
    irc.send("NICK viewer").await;
    irc.send("USER viewer 0 * :V").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    irc.send("NAMES #den").await;
    let names = irc.wait_for("353").await;
    assert!(names.contains("@+olga!olga@banter"), "{names}");
    // Without the capabilities: one prefix, nicks only.
    let mut plain = IrcClient::register(&server, "plain").await;
    plain.send("NAMES #den").await;
    let names = plain.wait_for("353").await;
    assert!(names.ends_with(":@olga"), "{names}");
}

/// With `standard-replies`, a refusal that has no numeric of its own comes
/// as `FAIL <command> <CODE> :text`; without it, as 400.
#[tokio::test]
async fn standard_replies_word_refusals_without_a_numeric() {
    let server = TestServer::start_with(&["--max-waiting-whispers", "1"]);
    common::register(&server, "bob").await;
    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP REQ :standard-replies").await;
    assert!(irc.expect("CAP").await.contains("ACK"));
    irc.send("NICK sender").await;
    irc.send("USER sender 0 * :S").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    irc.send("PRIVMSG bob :one").await;
    irc.send("PRIVMSG bob :two").await;
    let fail = irc.wait_for("FAIL").await;
    assert!(fail.contains("FAIL PRIVMSG MAILBOX_FULL "), "{fail}");
    let mut plain = IrcClient::register(&server, "plainer").await;
    plain.send("PRIVMSG bob :three").await;
    let refused = parse(&plain.wait_for("400").await);
    assert_eq!(refused.params[1], "PRIVMSG", "{refused:?}");
}
