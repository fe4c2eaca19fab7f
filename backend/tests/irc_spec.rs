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
