//! The IRC basics as modern.ircdocs.horse and the IRCv3 specs word them,
//! one test per behaviour: who runs a new channel, what USER and SETNAME
//! set, the server's name, error precedence, MODE's replies, ISUPPORT, and
//! the capabilities clients negotiate. Lines are read with Banter's own
//! parser; `irc_library.rs` and the e2e tests use independent ones.

mod common;

use banter::transport::irc::line::Line;
use clap::Parser as _;
use common::{IrcClient, Kind, TestServer};
use serde_json::json;

fn parse(line: &str) -> Line {
    Line::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// Registers `nick` after asking for `caps` (none: no CAP at all).
async fn with_caps(server: &TestServer, nick: &str, caps: &str) -> IrcClient {
    let mut irc = IrcClient::connect(server).await;
    if !caps.is_empty() {
        irc.send(&format!("CAP REQ :{caps}")).await;
        let ack = irc.expect("CAP").await;
        assert!(ack.contains(" ACK "), "{ack}");
    }
    irc.send(&format!("NICK {nick}")).await;
    irc.send(&format!("USER {nick} 0 * :{nick} the tester"))
        .await;
    if !caps.is_empty() {
        irc.send("CAP END").await;
    }
    irc.wait_for("376").await;
    irc
}

/// The first to join an empty channel nobody runs is its operator for the
/// session: `@` in NAMES, and may set modes, kick, invite and give `+o`.
#[tokio::test]
async fn whoever_opens_a_channel_runs_it() {
    let server = TestServer::start();
    let mut first = IrcClient::register(&server, "first").await;
    first.send("JOIN #fresh").await;
    first.expect("JOIN").await;
    let names = parse(&first.wait_for("353").await);
    assert_eq!(names.params[3], "@first");
    first.wait_for("366").await;

    let mut second = IrcClient::register(&server, "second").await;
    second.send("JOIN #fresh").await;
    let names = parse(&second.wait_for("353").await);
    assert_eq!(names.params[3], "@first second");
    second.wait_for("366").await;
    // The second may not set modes; the first may.
    second.send("MODE #fresh +m").await;
    let refused = parse(&second.wait_for("482").await);
    assert_eq!(refused.params[1], "#fresh");
    first.wait_for("JOIN").await;
    first.send("MODE #fresh +o second").await;
    let mode = first.wait_for("MODE").await;
    assert!(mode.ends_with(" MODE #fresh +o second"), "{mode}");
    assert!(
        second
            .wait_for("MODE")
            .await
            .ends_with("MODE #fresh +o second")
    );
    // A web user sees both as moderators.
    let mut web = common::Client::hello(&server, Kind::Ws, "webby").await;
    let joined = web.join("fresh").await;
    assert_eq!(joined["moderators"], json!(["first", "second"]), "{joined}");
    second.send("KICK #fresh webby :out").await;
    assert_eq!(web.wait_for("kicked").await["by"], "second");

    // Leaving ends it: back in, the first is a plain member.
    first.send("PART #fresh").await;
    first.wait_for("PART").await;
    first.send("JOIN #fresh").await;
    let names = parse(&first.wait_for("353").await);
    assert_eq!(names.params[3], "@second first");
    first.send("MODE #fresh +m").await;
    first.wait_for("482").await;
}

/// The lobby every web user starts in is run by no first comer.
#[tokio::test]
async fn the_lobby_is_run_by_nobody_who_merely_arrives() {
    let server = TestServer::start();
    let mut first = IrcClient::register(&server, "first").await;
    first.send("JOIN #lobby").await;
    let names = parse(&first.wait_for("353").await);
    assert_eq!(names.params[3], "first");
    first.send("MODE #lobby +m").await;
    first.wait_for("482").await;
}

/// `--server-name` names the server in every prefix and in PONG.
#[tokio::test]
async fn the_server_name_is_a_setting() {
    let server = TestServer::start_with(&["--server-name", "irc.example.org"]);
    let mut irc = IrcClient::connect(&server).await;
    irc.send("NICK named").await;
    irc.send("USER named 0 * :Named").await;
    let welcome = irc.expect("001").await;
    assert!(
        welcome.starts_with(":irc.example.org 001 named "),
        "{welcome}"
    );
    let host = parse(&irc.expect("002").await);
    assert!(host.params[1].contains("irc.example.org"), "{host:?}");
    let myinfo = parse(&irc.wait_for("004").await);
    assert_eq!(myinfo.params[1], "irc.example.org");
    irc.wait_for("376").await;
    irc.send("PING :token").await;
    assert_eq!(
        irc.expect("PONG").await,
        ":irc.example.org PONG irc.example.org :token"
    );
    let bad = banter::config::Cli::try_parse_from(["banter", "--server-name", "no spaces"])
        .unwrap()
        .settings();
    assert!(bad.unwrap_err().to_string().contains("server-name"));
}

/// USER's username and real name are kept: WHOIS (311), WHO (352) and
/// WHOX (354) show them, and web users' `whois`; a web user's `hello`
/// real name shows on IRC the same way.
#[tokio::test]
async fn user_and_real_names_are_kept_and_shown() {
    let server = TestServer::start();
    let mut irc = IrcClient::connect(&server).await;
    irc.send("NICK rosa").await;
    irc.send("USER rlux 0 * :Rosa Luxemburg").await;
    irc.wait_for("376").await;
    irc.send("JOIN #spec").await;
    irc.wait_for("366").await;
    let (mut web, _) = common::Client::hello_with(
        &server,
        Kind::Ws,
        json!({"type":"hello","nick":"webby","realname":"Web Person"}),
    )
    .await;
    web.join("spec").await;

    irc.send("WHOIS rosa").await;
    let user = parse(&irc.wait_for("311").await);
    assert_eq!(
        user.params[1..],
        ["rosa", "~rlux", "banter", "*", "Rosa Luxemburg"]
    );
    irc.wait_for("318").await;
    irc.send("WHOIS webby").await;
    let user = parse(&irc.wait_for("311").await);
    assert_eq!(
        user.params[1..],
        ["webby", "webby", "banter", "*", "Web Person"]
    );
    irc.wait_for("318").await;

    irc.send("WHO #spec").await;
    let first = parse(&irc.wait_for("352").await);
    assert_eq!(
        first.params[1..],
        [
            "#spec",
            "~rlux",
            "banter",
            "banter",
            "rosa",
            "H@",
            "0 Rosa Luxemburg"
        ]
    );
    let second = parse(&irc.expect("352").await);
    assert_eq!(second.params[7], "0 Web Person");
    irc.expect("315").await;
    // WHOX: the fields asked for, in the spec's order, with the token.
    irc.send("WHO #spec %tnuar,42").await;
    let line = parse(&irc.wait_for("354").await);
    assert_eq!(
        line.params[1..],
        ["42", "~rlux", "rosa", "0", "Rosa Luxemburg"]
    );
    irc.wait_for("354").await;
    irc.expect("315").await;

    web.send(json!({"type":"whois","nick":"rosa"})).await;
    let whois = web.wait_for("whois").await;
    assert_eq!(
        (&whois["realname"], &whois["username"]),
        (&json!("Rosa Luxemburg"), &json!("rlux"))
    );
}

/// `setname`: SETNAME changes the real name; room-mates with the
/// capability see it, FAIL for a blank one.
#[tokio::test]
async fn setname_changes_the_real_name() {
    let server = TestServer::start();
    let mut ana = with_caps(&server, "ana", "setname").await;
    let mut ben = with_caps(&server, "ben", "setname").await;
    let mut plain = IrcClient::register(&server, "plain").await;
    for irc in [&mut ana, &mut ben, &mut plain] {
        irc.send("JOIN #names").await;
        irc.wait_for("366").await;
    }
    ana.send("SETNAME :Ana New").await;
    assert_eq!(
        ana.wait_for("SETNAME").await,
        ":ana!ana@banter SETNAME :Ana New"
    );
    assert_eq!(
        ben.wait_for("SETNAME").await,
        ":ana!ana@banter SETNAME :Ana New"
    );
    plain.assert_usable().await;
    ben.send("WHOIS ana").await;
    assert_eq!(parse(&ben.wait_for("311").await).params[5], "Ana New");
    ana.send("SETNAME :").await;
    let fail = ana.wait_for("FAIL").await;
    assert!(fail.contains("FAIL SETNAME INVALID_REALNAME"), "{fail}");
    let ls = {
        let mut irc = IrcClient::connect(&server).await;
        irc.send("CAP LS 302").await;
        irc.expect("CAP").await
    };
    for cap in [
        "setname",
        "extended-join",
        "account-notify",
        "labeled-response",
    ] {
        assert!(ls.contains(cap), "{cap} in {ls}");
    }
}

/// Bot mode: `MODE me +B`, 221, WHOIS 335, the WHO flag, ISUPPORT
/// `BOT=B`, and web users see `bot` in `whois` and `members`.
#[tokio::test]
async fn bots_say_so() {
    let server = TestServer::start();
    let mut bot = IrcClient::connect(&server).await;
    bot.send("NICK robo").await;
    bot.send("USER robo 0 * :A robot").await;
    let mut isupport = String::new();
    loop {
        let line = bot.recv().await;
        if line.contains(" 005 ") {
            isupport.push_str(&line);
        }
        if line.contains(" 376 ") {
            break;
        }
    }
    assert!(isupport.contains(" BOT=B "), "{isupport}");
    assert!(isupport.contains(" WHOX "), "{isupport}");
    bot.send("MODE robo +B").await;
    assert_eq!(bot.wait_for("MODE").await, ":robo!robo@banter MODE robo +B");
    bot.send("MODE robo").await;
    assert_eq!(parse(&bot.wait_for("221").await).params[1], "+iB");
    bot.send("JOIN #bots").await;
    bot.wait_for("366").await;
    bot.send("WHOIS robo").await;
    assert_eq!(parse(&bot.wait_for("335").await).params[1], "robo");
    bot.send("WHO #bots").await;
    assert_eq!(parse(&bot.wait_for("352").await).params[6], "HB@");

    let mut web = common::Client::hello(&server, Kind::Ws, "webby").await;
    let joined = web.join("bots").await;
    assert_eq!(joined["bots"], json!(["robo"]), "{joined}");
    web.send(json!({"type":"whois","nick":"robo"})).await;
    assert_eq!(web.wait_for("whois").await["bot"], true);
    web.send(json!({"type":"members","room":"bots"})).await;
    let members = web.wait_for("members").await;
    assert_eq!(members["users"][0]["bot"], true, "{members}");
    // And a JSON bot says so itself.
    web.send(json!({"type":"profile","bot":true,"ref":"p"}))
        .await;
    let profile = web.wait_for("profile").await;
    assert_eq!(
        (&profile["bot"], &profile["ref"]),
        (&json!(true), &json!("p"))
    );
    bot.send("WHOIS webby").await;
    bot.wait_for("335").await;
}

/// `extended-join`: JOIN carries the account (`*` for none) and the real
/// name, our own too; `account-notify`: ACCOUNT when a room-mate logs in.
#[tokio::test]
async fn extended_join_and_account_notify() {
    let server = TestServer::start();
    common::register(&server, "acct").await;
    let mut watcher = with_caps(&server, "watcher", "extended-join account-notify").await;
    watcher.send("JOIN #ext").await;
    assert_eq!(
        watcher.wait_for("JOIN").await,
        ":watcher!watcher@banter JOIN #ext * :watcher the tester"
    );
    watcher.wait_for("366").await;
    let mut acct = common::irc_sasl(&server, "acct").await;
    acct.send("JOIN #ext").await;
    let join = watcher.wait_for("JOIN").await;
    assert!(
        join.starts_with(":acct!acct@banter JOIN #ext acct :"),
        "{join}"
    );
    let mut plain = IrcClient::register(&server, "plainjoin").await;
    plain.send("JOIN #ext").await;
    assert_eq!(
        plain.wait_for("JOIN").await,
        ":plainjoin!plainjoin@banter JOIN #ext"
    );
    assert_eq!(
        watcher.wait_for("JOIN").await,
        ":plainjoin!plainjoin@banter JOIN #ext * :plainjoin the tester"
    );
    // A web guest in the room registers its nick: it is logged in now.
    let mut web = common::Client::hello(&server, Kind::Ws, "newbie").await;
    web.join("ext").await;
    watcher.wait_for("JOIN").await;
    web.send(json!({"type":"register","nick":"newbie","password":"long enough pw"}))
        .await;
    web.wait_for("registered").await;
    assert_eq!(
        watcher.wait_for("ACCOUNT").await,
        ":newbie!newbie@banter ACCOUNT newbie"
    );
}

/// `labeled-response`: one line carries the label, several come in a
/// batch, none is an ACK.
#[tokio::test]
async fn labeled_responses() {
    let server = TestServer::start();
    let mut irc = with_caps(&server, "labeler", "labeled-response batch").await;
    irc.send("@label=p1 PING :x").await;
    assert_eq!(irc.expect("PONG").await, "@label=p1 :banter PONG banter :x");
    irc.send("JOIN #lab").await;
    irc.wait_for("366").await;
    // No echo-message: nothing comes back but the ACK.
    irc.send("@label=m2 PRIVMSG #lab :hi").await;
    assert_eq!(irc.expect("ACK").await, "@label=m2 :banter ACK");
    irc.send("@label=w3 WHOIS labeler").await;
    let start = irc.expect("BATCH").await;
    assert!(start.starts_with("@label=w3 :banter BATCH +"), "{start}");
    assert!(start.ends_with(" labeled-response"), "{start}");
    let id = parse(&start).params[0][1..].to_string();
    let user = irc.expect("311").await;
    assert!(user.starts_with(&format!("@batch={id} ")), "{user}");
    irc.wait_for("318").await;
    assert_eq!(irc.expect("BATCH").await, format!(":banter BATCH -{id}"));
    // Without the capability, no label.
    let mut plain = IrcClient::register(&server, "unlabeled").await;
    plain.send("@label=p1 PING :x").await;
    assert_eq!(plain.expect("PONG").await, ":banter PONG banter :x");
}

/// Error numerics with the parameters and in the order the spec gives.
#[tokio::test]
async fn errors_name_what_the_spec_names() {
    let server = TestServer::start();
    let mut op = IrcClient::register(&server, "opper").await;
    op.send("JOIN #errs").await;
    op.wait_for("366").await;
    // 441: <nick> <channel>.
    op.send("KICK #errs ghost :bye").await;
    let line = parse(&op.wait_for("441").await);
    assert_eq!(line.params[1..3], ["ghost", "#errs"]);
    op.send("MODE #errs +v ghost").await;
    let line = parse(&op.wait_for("441").await);
    assert_eq!(line.params[1..3], ["ghost", "#errs"]);
    op.send("MODE #errs +o ghost").await;
    let line = parse(&op.wait_for("441").await);
    assert_eq!(line.params[1..3], ["ghost", "#errs"]);
    // A channel nobody is in: 403 for MODE and TOPIC.
    op.send("MODE #nowhere").await;
    assert_eq!(parse(&op.wait_for("403").await).params[1], "#nowhere");
    op.send("MODE #nowhere +m").await;
    assert_eq!(parse(&op.wait_for("403").await).params[1], "#nowhere");
    op.send("TOPIC #nowhere").await;
    assert_eq!(parse(&op.wait_for("403").await).params[1], "#nowhere");
    // MODE #chan: 324 then 329.
    op.send("MODE #errs").await;
    assert_eq!(parse(&op.wait_for("324").await).params[1], "#errs");
    assert_eq!(parse(&op.expect("329").await).params[1], "#errs");
    // WHO of nobody: just the end.
    op.send("WHO ghost").await;
    assert_eq!(parse(&op.expect("315").await).params[1], "ghost");
    // A NOTICE is never answered with an error.
    op.send("NOTICE ghost :hello").await;
    op.send("NOTICE #nowhere :hello").await;
    op.send("NOTICE #bad.name :hello").await;
    op.send("NOTICE ghost").await;
    op.assert_usable().await;
    // JOIN of a channel one is in says nothing.
    op.send("JOIN #errs").await;
    op.assert_usable().await;
    // A topic over TOPICLEN is cut, not refused.
    op.send(&format!("TOPIC #errs :{}", "t".repeat(450))).await;
    let topic = parse(&op.wait_for("TOPIC").await);
    assert_eq!(topic.params[1].len(), banter_protocol::MAX_TOPIC_BYTES);
}

/// 004 lists the user modes, the channel modes and those with a
/// parameter, without a trailing parameter.
#[tokio::test]
async fn myinfo_lists_every_mode() {
    let server = TestServer::start();
    let mut irc = IrcClient::connect(&server).await;
    irc.send("NICK info").await;
    irc.send("USER info 0 * :I").await;
    let myinfo = irc.wait_for("004").await;
    let line = parse(&myinfo);
    assert_eq!(line.params[3..], ["iB", "IRbeiklmnosv", "Ibeklov"]);
    assert!(!myinfo.contains(" :"), "{myinfo}");
}

/// MONITOR (ISUPPORT `MONITOR=100`): 730/731 at once and as nicks come
/// and go (connect, rename, quit, on any transport), the list, removal,
/// and 734 past the limit. JSON clients have the same as `watch`.
#[tokio::test]
async fn monitor_tells_who_comes_and_goes() {
    let server = TestServer::start();
    let mut irc = IrcClient::register(&server, "watcher").await;
    let mut here = IrcClient::register(&server, "present").await;
    irc.send("MONITOR + present,absent,bad.nick").await;
    assert_eq!(
        irc.expect("730").await,
        ":banter 730 watcher :present!present@banter"
    );
    assert_eq!(irc.expect("731").await, ":banter 731 watcher :absent");
    // A web user takes the nick: online; it renames: offline, and back.
    let mut web = common::Client::hello(&server, Kind::Ws, "absent").await;
    assert_eq!(
        irc.expect("730").await,
        ":banter 730 watcher :absent!absent@banter"
    );
    web.send(json!({"type":"nick","nick":"elsewhere"})).await;
    assert_eq!(irc.expect("731").await, ":banter 731 watcher :absent");
    here.send("QUIT :bye").await;
    assert_eq!(irc.expect("731").await, ":banter 731 watcher :present");
    irc.send("MONITOR L").await;
    let list = parse(&irc.expect("732").await);
    assert_eq!(list.params[1], "present,absent");
    irc.expect("733").await;
    irc.send("MONITOR S").await;
    assert_eq!(
        irc.expect("731").await,
        ":banter 731 watcher :present,absent"
    );
    irc.send("MONITOR - present").await;
    irc.send("MONITOR L").await;
    assert_eq!(parse(&irc.expect("732").await).params[1], "absent");
    irc.expect("733").await;
    irc.send("MONITOR C").await;
    irc.send("MONITOR L").await;
    irc.expect("733").await;
    // Past the limit: 734, and nothing added.
    let many: Vec<String> = (0..101).map(|i| format!("n{i}")).collect();
    irc.send(&format!("MONITOR + {}", many.join(","))).await;
    let full = parse(&irc.expect("734").await);
    assert_eq!(full.params[1], "100");
    irc.assert_usable().await;

    web.send(json!({"type":"watch","nicks":["watcher","nobody"],"ref":1}))
        .await;
    let watched = web.wait_for("watched").await;
    assert_eq!(
        (&watched["online"], &watched["offline"], &watched["ref"]),
        (&json!(["watcher"]), &json!(["nobody"]), &json!(1))
    );
    irc.send("QUIT").await;
    let gone = web.wait_for("watched").await;
    assert_eq!(gone["offline"], json!(["watcher"]));
}

/// A guest's MARKREAD (web IRC clients send it as they scroll) hears that
/// nothing is read, not an error: guests' positions are not kept.
#[tokio::test]
async fn a_guests_markread_is_answered_not_refused() {
    let server = TestServer::start();
    let mut guest = with_caps(&server, "guesty", "draft/read-marker").await;
    guest.send("JOIN #marks").await;
    guest.wait_for("366").await;
    guest
        .send("MARKREAD #marks timestamp=2100-01-01T00:00:00.000Z")
        .await;
    assert_eq!(guest.expect("MARKREAD").await, ":banter MARKREAD #marks *");
    guest.assert_usable().await;
}

/// INVITE of nobody is 401 before the rights (482); a line that is not
/// UTF-8 is `FAIL * INVALID_UTF8` with standard-replies (UTF8ONLY).
#[tokio::test]
async fn invite_of_nobody_and_invalid_utf8() {
    let server = TestServer::start();
    let mut op = IrcClient::register(&server, "inviter").await;
    op.send("JOIN #closed").await;
    op.wait_for("366").await;
    op.send("MODE #closed +i").await;
    op.wait_for("MODE").await;
    let mut member = with_caps(&server, "member", "standard-replies").await;
    op.send("INVITE member #closed").await;
    op.wait_for("341").await;
    member.send("JOIN #closed").await;
    member.wait_for("366").await;
    member.send("INVITE nobody #closed").await;
    assert_eq!(parse(&member.wait_for("401").await).params[1], "nobody");
    member.send("INVITE inviter #closed").await;
    member.wait_for("482").await;
    member.send_bytes(b"PRIVMSG #closed :\xff\xfe\r\n").await;
    let fail = member.wait_for("FAIL").await;
    assert!(fail.contains("FAIL * INVALID_UTF8 "), "{fail}");
    member.assert_usable().await;
}

/// Labels on answers that hold a batch, or that come before a message's
/// echo; MONITOR's repeats; WHOX's `t` without a token.
#[tokio::test]
async fn labels_nest_and_monitor_repeats_count_once() {
    let server = TestServer::start();
    let mut irc = with_caps(
        &server,
        "nester",
        "labeled-response batch server-time message-tags draft/chathistory",
    )
    .await;
    irc.send("JOIN #nest").await;
    irc.wait_for("366").await;
    // Its ACK comes once the message is delivered (and stored).
    irc.send("@label=m1 PRIVMSG #nest :one").await;
    assert_eq!(irc.wait_for("ACK").await, "@label=m1 :banter ACK");
    irc.send("@label=h1 CHATHISTORY LATEST #nest * 10").await;
    let outer = irc.wait_for("BATCH").await;
    assert!(
        outer.starts_with("@label=h1 :banter BATCH +labeled labeled-response"),
        "{outer}"
    );
    let inner = irc.expect("BATCH").await;
    assert!(
        inner.starts_with("@batch=labeled :banter BATCH +"),
        "{inner}"
    );
    let message = irc.expect("PRIVMSG").await;
    assert_eq!(message.matches("batch=").count(), 1, "{message}");
    irc.expect("BATCH").await;
    assert_eq!(irc.expect("BATCH").await, ":banter BATCH -labeled");

    // A whisper to someone away: the 301 is the labeled answer.
    let mut away = IrcClient::register(&server, "sleeper").await;
    away.send("AWAY :zzz").await;
    away.wait_for("306").await;
    irc.send("@label=w1 PRIVMSG sleeper :hi").await;
    let answer = irc.wait_for("301").await;
    assert!(answer.starts_with("@label=w1 "), "{answer}");

    irc.send("MONITOR + ghost,other,ghost").await;
    assert_eq!(irc.wait_for("731").await, ":banter 731 nester :ghost,other");
    irc.send("MONITOR + ghost").await;
    assert_eq!(irc.expect("731").await, ":banter 731 nester :ghost");
    irc.send("MONITOR L").await;
    assert_eq!(parse(&irc.expect("732").await).params[1], "ghost,other");
    irc.expect("733").await;

    irc.send("WHO #nest %tn").await;
    assert_eq!(parse(&irc.expect("354").await).params[1..], ["0", "nester"]);
}

/// `CAP LS 302` gives values (`sasl=PLAIN`) and turns cap-notify on; a
/// plain `CAP LS` gives names only.
#[tokio::test]
async fn cap_ls_302_gives_values() {
    let server = TestServer::start();
    let mut modern = IrcClient::connect(&server).await;
    modern.send("CAP LS 302").await;
    let ls = modern.expect("CAP").await;
    assert!(ls.contains(" sasl=PLAIN "), "{ls}");
    modern.send("CAP LIST").await;
    assert!(modern.expect("CAP").await.ends_with(":cap-notify"));
    modern.send("CAP REQ :sasl").await;
    assert!(modern.expect("CAP").await.contains(" ACK :sasl"));
    let mut old = IrcClient::connect(&server).await;
    old.send("CAP LS").await;
    let ls = old.expect("CAP").await;
    assert!(ls.contains(" sasl ") && !ls.contains("sasl="), "{ls}");
}

/// A PING after a change that is stored first (a mode, a topic, a
/// message) is answered after the change: clients use it to know that
/// what they asked is done.
#[tokio::test]
async fn a_ping_is_answered_after_what_came_before_it() {
    let server = TestServer::start();
    let mut irc = with_caps(&server, "orderly", "echo-message").await;
    irc.send("JOIN #order").await;
    irc.send("MODE #order +l 5").await;
    irc.send("TOPIC #order :first").await;
    irc.send("PRIVMSG #order :hello").await;
    irc.send("PING :sync").await;
    let mut seen = Vec::new();
    loop {
        let line = parse(&irc.recv().await);
        if line.command == "PONG" {
            break;
        }
        seen.push(line.command);
    }
    for command in ["JOIN", "MODE", "TOPIC", "PRIVMSG"] {
        assert!(
            seen.iter().any(|c| c == command),
            "{command} before PONG: {seen:?}"
        );
    }
}

/// WHO with a mask lists the matching users one shares a channel with,
/// and oneself (everyone is invisible to strangers); 315 echoes the mask.
#[tokio::test]
async fn who_with_a_mask() {
    let server = TestServer::start();
    let mut asker = IrcClient::register(&server, "asker").await;
    let mut cool = IrcClient::register(&server, "coolNick").await;
    let mut stranger = IrcClient::register(&server, "coolStranger").await;
    for irc in [&mut asker, &mut cool] {
        irc.send("JOIN #masks").await;
        irc.wait_for("366").await;
    }
    stranger.assert_usable().await;
    asker.wait_for("JOIN").await;
    asker.send("WHO cool*").await;
    let reply = parse(&asker.expect("352").await);
    assert_eq!(
        reply.params[1..7],
        ["*", "~coolNick", "banter", "banter", "coolNick", "H"]
    );
    let end = parse(&asker.expect("315").await);
    assert_eq!(end.params[1], "cool*");
    asker.send("WHO *").await;
    assert_eq!(parse(&asker.expect("352").await).params[5], "asker");
    assert_eq!(parse(&asker.expect("352").await).params[5], "coolNick");
    asker.expect("315").await;
}

/// A `+l` or `+k` parameter the mode does not take is 696
/// (ERR_INVALIDMODEPARAM), naming the mode and the parameter.
#[tokio::test]
async fn invalid_mode_parameters_are_696() {
    let server = TestServer::start();
    let mut op = IrcClient::register(&server, "chanop").await;
    op.send("JOIN #params").await;
    op.wait_for("366").await;
    op.send("MODE #params +l abc").await;
    let line = parse(&op.wait_for("696").await);
    assert_eq!(line.params[1..4], ["#params", "l", "abc"]);
    op.send("MODE #params +l 0").await;
    assert_eq!(parse(&op.wait_for("696").await).params[3], "0");
    op.send("MODE #params +k :a,b").await;
    let line = parse(&op.wait_for("696").await);
    assert_eq!(line.params[1..4], ["#params", "k", "*"]);
}

/// NAMES marks a secret channel (`+s`) with `@`, a public one with `=`.
#[tokio::test]
async fn names_say_whether_a_channel_is_secret() {
    let server = TestServer::start();
    let mut op = IrcClient::register(&server, "hider").await;
    op.send("JOIN #hidden").await;
    assert_eq!(parse(&op.wait_for("353").await).params[1], "=");
    op.send("MODE #hidden +s").await;
    op.wait_for("MODE").await;
    op.send("NAMES #hidden").await;
    assert_eq!(parse(&op.wait_for("353").await).params[1], "@");
    let mut other = IrcClient::register(&server, "seeker").await;
    other.send("JOIN #hidden").await;
    assert_eq!(parse(&other.wait_for("353").await).params[1], "@");
}

/// WHOIS 319 gives the channel prefixes the user has in each channel.
#[tokio::test]
async fn whois_channels_carry_prefixes() {
    let server = TestServer::start();
    let mut op = IrcClient::register(&server, "chanowner").await;
    op.send("JOIN #one,#two").await;
    op.wait_for("366").await;
    op.wait_for("366").await;
    let mut other = IrcClient::register(&server, "peer").await;
    other.send("JOIN #one").await;
    other.wait_for("366").await;
    op.send("MODE #one +v peer").await;
    op.wait_for("MODE").await;
    op.send("WHOIS chanowner").await;
    let channels = parse(&op.wait_for("319").await);
    assert_eq!(channels.params[2], "@#one @#two");
    op.send("WHOIS peer").await;
    assert_eq!(parse(&op.wait_for("319").await).params[2], "+#one");
}

/// The texts of a CHATHISTORY answer's batch.
async fn page(irc: &mut IrcClient, line: &str) -> Vec<String> {
    irc.send(line).await;
    let mut texts = Vec::new();
    irc.wait_for("BATCH").await;
    loop {
        let next = irc.recv().await;
        if next.contains(" BATCH -") {
            return texts;
        }
        texts.push(next.rsplit(':').next().unwrap().to_string());
    }
}

/// `CHATHISTORY BETWEEN`: both bounds left out, from the first towards the
/// second (a limit keeps the messages nearest the first).
#[tokio::test]
async fn chathistory_between_two_messages() {
    let server = TestServer::start();
    let mut web = common::Client::hello(&server, common::Kind::Ws, "web").await;
    web.join("den").await;
    for i in 1..=5 {
        common::say(&mut web, "den", &format!("m{i}")).await;
    }
    let mut irc = with_caps(&server, "reader", "batch draft/chathistory message-tags").await;
    irc.send("JOIN #den").await;
    irc.wait_for("366").await;
    let forward = page(
        &mut irc,
        "CHATHISTORY BETWEEN #den msgid=den-1 msgid=den-5 10",
    )
    .await;
    assert_eq!(forward, ["m2", "m3", "m4"]);
    let back = page(
        &mut irc,
        "CHATHISTORY BETWEEN #den msgid=den-5 msgid=den-1 2",
    )
    .await;
    assert_eq!(back, ["m3", "m4"]);
    let first = page(
        &mut irc,
        "CHATHISTORY BETWEEN #den msgid=den-1 msgid=den-5 2",
    )
    .await;
    assert_eq!(first, ["m2", "m3"]);
}
