//! Rich messages bridged to IRC, over real sockets: an IRC client with
//! `message-tags`, `echo-message`, `draft/multiline` and
//! `draft/message-redaction`, one with no capabilities, and a JSON user
//! in one room. Replies (`+draft/reply`), reactions (TAGMSG
//! `+draft/react`), deletions (REDACT), edits (the `* alice edited:`
//! message), typing (TAGMSG `+typing`) and multi-line messages (one
//! `draft/multiline` batch, or one PRIVMSG per line) each way, and what
//! CHATHISTORY shows of them.

mod common;

use std::time::Duration;

use common::{Client, IrcClient, Kind, TestServer, say};
use serde_json::json;

const CAPS: &str =
    "message-tags echo-message batch server-time draft/multiline draft/message-redaction";

async fn with_caps(server: &TestServer, nick: &str, caps: &str) -> IrcClient {
    let mut irc = IrcClient::connect(server).await;
    if !caps.is_empty() {
        irc.send(&format!("CAP REQ :{caps}")).await;
        let ack = irc.expect("CAP").await;
        assert!(ack.contains(" ACK "), "{ack}");
    }
    irc.send(&format!("NICK {nick}")).await;
    irc.send(&format!("USER {nick} 0 * :{nick}")).await;
    if !caps.is_empty() {
        irc.send("CAP END").await;
    }
    irc.wait_for("376").await;
    irc
}

/// Joins `#den` and reads up to the end of NAMES.
async fn join(irc: &mut IrcClient) {
    irc.send("JOIN #den").await;
    irc.wait_for("366").await;
}

/// Lines up to (not including) the PONG answering a PING sent now.
async fn until_pong(irc: &mut IrcClient) -> Vec<String> {
    irc.send("PING :sync").await;
    let mut lines = Vec::new();
    loop {
        let line = irc.recv().await;
        if line.contains(" PONG ") {
            return lines;
        }
        lines.push(line);
    }
}

fn tag<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let tags = line.strip_prefix('@')?.split(' ').next()?;
    tags.split(';').find_map(|t| match t.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if t == name => Some(""),
        _ => None,
    })
}

#[tokio::test]
async fn capabilities_are_offered_with_their_bounds() {
    let server = TestServer::start_with(&["--max-lines", "20"]);
    let mut irc = IrcClient::connect(&server).await;
    irc.send("CAP LS 302").await;
    let mut ls = String::new();
    loop {
        let line = irc.expect("CAP").await;
        ls.push_str(&line);
        if !line.contains(" LS * ") {
            break;
        }
    }
    assert!(ls.contains("draft/message-redaction"), "{ls}");
    assert!(
        ls.contains("draft/multiline=max-bytes=4096,max-lines=20"),
        "{ls}"
    );
    assert!(ls.contains("message-tags"), "{ls}");
    irc.send("NICK a").await;
    irc.send("USER a 0 * :a").await;
    irc.send("CAP END").await;
    let isupport = irc.wait_for("005").await;
    let rest = if isupport.contains("CLIENTTAGDENY") {
        isupport
    } else {
        irc.wait_for("005").await
    };
    assert!(
        rest.contains("CLIENTTAGDENY=*,-draft/react,-draft/reply,-draft/unreact,-typing"),
        "{rest}"
    );
}

#[tokio::test]
async fn a_multi_line_message_is_one_batch_or_one_privmsg_per_line() {
    let server = TestServer::start();
    let mut tagged = with_caps(&server, "tagged", CAPS).await;
    let mut plain = with_caps(&server, "plain", "").await;
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    join(&mut tagged).await;
    join(&mut plain).await;
    web.join("den").await;
    until_pong(&mut tagged).await;
    until_pong(&mut plain).await;

    // From the web: one batch for the client that takes it.
    let id = say(&mut web, "den", "one\ntwo\nthree").await;
    let lines = until_pong(&mut tagged).await;
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert!(lines[0].contains(" BATCH +den-"), "{}", lines[0]);
    assert!(lines[0].ends_with(" draft/multiline #den"), "{}", lines[0]);
    assert_eq!(tag(&lines[0], "msgid"), Some(format!("den-{id}").as_str()));
    let reference = lines[0]
        .split(" BATCH +")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    for (line, text) in lines[1..4].iter().zip(["one", "two", "three"]) {
        assert_eq!(tag(line, "batch"), Some(reference), "{line}");
        assert!(line.ends_with(&format!("PRIVMSG #den :{text}")), "{line}");
    }
    assert!(
        lines[4].contains(&format!(" BATCH -{reference}")),
        "{}",
        lines[4]
    );
    // Without the capability: a PRIVMSG per line.
    let lines = until_pong(&mut plain).await;
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit(" :").next().unwrap())
        .collect();
    assert_eq!(texts, ["one", "two", "three"], "{lines:#?}");
    assert!(lines.iter().all(|l| l.contains("PRIVMSG #den")));

    // From IRC: a batch becomes one message.
    tagged.send("BATCH +b1 draft/multiline #den").await;
    tagged.send("@batch=b1 PRIVMSG #den :first").await;
    tagged.send("@batch=b1 PRIVMSG #den :").await;
    tagged.send("@batch=b1 PRIVMSG #den :sec").await;
    tagged
        .send("@batch=b1;draft/multiline-concat PRIVMSG #den :ond")
        .await;
    tagged.send("BATCH -b1").await;
    let m = web.wait_for("message").await;
    assert_eq!(
        (&m["from"], &m["text"]),
        (&json!("tagged"), &json!("first\n\nsecond"))
    );
    // The sender's echo is the batch too.
    let echo = until_pong(&mut tagged).await;
    assert!(echo[0].contains(" BATCH +"), "{echo:#?}");
    let lines = until_pong(&mut plain).await;
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| l.rsplit(" :").next().unwrap())
        .collect();
    assert_eq!(texts, ["first", "second"], "{lines:#?}");

    // Over the bounds: refused, and nothing is sent.
    tagged.send("BATCH +b2 draft/multiline #den").await;
    for _ in 0..101 {
        tagged.send("@batch=b2 PRIVMSG #den :x").await;
    }
    tagged.send("BATCH -b2").await;
    let fail = tagged.wait_for("FAIL").await;
    assert!(fail.contains("FAIL BATCH MULTILINE_MAX_LINES"), "{fail}");
    web.assert_quiet(Duration::from_millis(200)).await;
}

#[tokio::test]
async fn replies_reactions_deletions_edits_and_typing_cross_both_ways() {
    let server = TestServer::start();
    let mut tagged = with_caps(&server, "tagged", CAPS).await;
    let mut plain = with_caps(&server, "plain", "").await;
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    join(&mut tagged).await;
    join(&mut plain).await;
    web.join("den").await;
    until_pong(&mut tagged).await;
    until_pong(&mut plain).await;

    let question = say(&mut web, "den", "tea?").await;
    until_pong(&mut tagged).await;
    until_pong(&mut plain).await;
    let msgid = format!("den-{question}");

    // A reply from IRC.
    tagged
        .send(&format!("@+draft/reply={msgid} PRIVMSG #den :yes please"))
        .await;
    let answer = web.wait_for("message").await;
    assert_eq!(
        (&answer["text"], &answer["reply_to"]),
        (&json!("yes please"), &json!(question))
    );
    let answer_id = answer["id"].as_u64().unwrap();
    let echo = until_pong(&mut tagged).await;
    assert_eq!(
        tag(&echo[0], "+draft/reply"),
        Some(msgid.as_str()),
        "{echo:#?}"
    );
    let seen = until_pong(&mut plain).await;
    assert!(seen[0].ends_with("PRIVMSG #den :yes please"), "{seen:#?}");

    // A reaction from IRC, and one from the web.
    tagged
        .send(&format!(
            "@+draft/react=👍;+draft/reply={msgid} TAGMSG #den"
        ))
        .await;
    let r = web.wait_for("reaction").await;
    assert_eq!(
        (&r["id"], &r["reaction"], &r["nick"], &r["remove"]),
        (
            &json!(question),
            &json!("👍"),
            &json!("tagged"),
            &json!(false)
        )
    );
    let echo = until_pong(&mut tagged).await;
    assert!(echo[0].contains("TAGMSG #den"), "{echo:#?}");
    web.send(json!({"type":"react","room":"den","id":answer_id,"reaction":"🎉"}))
        .await;
    web.wait_for("reaction").await;
    let lines = until_pong(&mut tagged).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(
        lines[0].contains(":web!web@banter TAGMSG #den"),
        "{}",
        lines[0]
    );
    assert_eq!(tag(&lines[0], "+draft/react"), Some("🎉"));
    assert_eq!(
        tag(&lines[0], "+draft/reply"),
        Some(format!("den-{answer_id}").as_str())
    );
    tagged
        .send(&format!(
            "@+draft/unreact=👍;+draft/reply={msgid} TAGMSG #den"
        ))
        .await;
    assert_eq!(web.wait_for("reaction").await["remove"], true);

    // Typing, both ways.
    tagged.send("@+typing=active TAGMSG #den").await;
    let t = web.wait_for("typing").await;
    assert_eq!(
        (&t["nick"], &t["state"]),
        (&json!("tagged"), &json!("active"))
    );
    web.send(json!({"type":"typing","room":"den","state":"paused"}))
        .await;
    // Its typing is made once its ping is answered.
    web.send(json!({"type":"ping"})).await;
    web.wait_for("pong").await;
    let lines = until_pong(&mut tagged).await;
    let typing: Vec<&String> = lines.iter().filter(|l| l.contains("+typing")).collect();
    assert_eq!(typing.len(), 1, "{lines:#?}");
    assert_eq!(tag(typing[0], "+typing"), Some("paused"));

    // An edit from the web reaches every IRC client as a message.
    web.send(json!({"type":"edit","room":"den","id":question,"text":"tea or coffee?"}))
        .await;
    web.wait_for("edited").await;
    let lines = until_pong(&mut plain).await;
    assert!(
        lines.iter().any(|l| l
            .ends_with(":web!web@banter PRIVMSG #den :* web edited: tea or coffee?")
            || l.contains("PRIVMSG #den :* web edited: tea or coffee?")),
        "{lines:#?}"
    );
    let lines = until_pong(&mut tagged).await;
    let edit = lines
        .iter()
        .find(|l| l.contains("edited:"))
        .expect("the edit");
    assert_eq!(tag(edit, "+draft/reply"), Some(msgid.as_str()));

    // A deletion from IRC (its own message), then one from the web.
    tagged
        .send(&format!("REDACT #den den-{answer_id} :typo"))
        .await;
    let d = web.wait_for("deleted").await;
    assert_eq!(
        (&d["id"], &d["nick"], &d["reason"]),
        (&json!(answer_id), &json!("tagged"), &json!("typo"))
    );
    let echo = until_pong(&mut tagged).await;
    assert!(
        echo.iter()
            .any(|l| l.ends_with(&format!("REDACT #den den-{answer_id} :typo"))),
        "{echo:#?}"
    );
    web.send(json!({"type":"delete","room":"den","id":question}))
        .await;
    web.wait_for("deleted").await;
    let lines = until_pong(&mut tagged).await;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!(":web!web@banter REDACT #den {msgid}"))),
        "{lines:#?}"
    );
    // Without the capabilities, reactions, typing and deletions send
    // nothing.
    let lines = until_pong(&mut plain).await;
    assert!(lines.is_empty(), "{lines:#?}");

    // Refusals are standard replies.
    tagged.send(&format!("REDACT #den {msgid}")).await;
    let fail = tagged.wait_for("FAIL").await;
    assert!(fail.contains("FAIL REDACT UNKNOWN_MSGID #den"), "{fail}");
    tagged.send("REDACT #den den-999 :x").await;
    let fail = tagged.wait_for("FAIL").await;
    assert!(fail.contains("FAIL REDACT UNKNOWN_MSGID"), "{fail}");
    // `tagged` opened the room, so it runs it; `plain` does not.
    let mine = say(&mut web, "den", "not yours").await;
    plain.send(&format!("REDACT #den den-{mine}")).await;
    let fail = plain.wait_for("FAIL").await;
    assert!(fail.contains("FAIL REDACT REDACT_FORBIDDEN #den"), "{fail}");
}

#[tokio::test]
async fn chathistory_shows_edits_reactions_and_replies_and_leaves_out_deletions() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    web.join("den").await;
    let first = say(&mut web, "den", "first").await;
    web.send(json!({"type":"say","room":"den","text":"second","reply_to":first}))
        .await;
    let second = web.wait_for("message").await["id"].as_u64().unwrap();
    let gone = say(&mut web, "den", "gone").await;
    web.send(json!({"type":"edit","room":"den","id":first,"text":"first!"}))
        .await;
    web.wait_for("edited").await;
    web.send(json!({"type":"react","room":"den","id":second,"reaction":"👀"}))
        .await;
    web.wait_for("reaction").await;
    web.send(json!({"type":"delete","room":"den","id":gone}))
        .await;
    web.wait_for("deleted").await;

    let mut irc = with_caps(&server, "reader", &format!("{CAPS} draft/chathistory")).await;
    join(&mut irc).await;
    until_pong(&mut irc).await;
    irc.send("CHATHISTORY LATEST #den * 10").await;
    let lines = until_pong(&mut irc).await;
    let privmsgs: Vec<&String> = lines.iter().filter(|l| l.contains(" PRIVMSG ")).collect();
    assert_eq!(privmsgs.len(), 2, "{lines:#?}");
    assert!(privmsgs[0].ends_with(":first!"), "{}", privmsgs[0]);
    assert!(privmsgs[1].ends_with(":second"), "{}", privmsgs[1]);
    assert_eq!(
        tag(privmsgs[1], "+draft/reply"),
        Some(format!("den-{first}").as_str())
    );
    let react = lines
        .iter()
        .find(|l| l.contains(" TAGMSG "))
        .expect("the reaction");
    assert_eq!(tag(react, "+draft/react"), Some("👀"));
    assert!(tag(react, "batch").is_some(), "{react}");
}

/// A direct message between two accounts: the IRC side sees the deletion
/// of one it got, and deletes one it sent.
#[tokio::test]
async fn direct_messages_are_redacted_both_ways() {
    let server = TestServer::start_in(std::sync::Arc::new(common::TempDir::new()), &[]);
    common::register(&server, "alice").await;
    common::register(&server, "bob").await;
    let (mut alice, _) = common::log_in(&server, Kind::Ws, "alice").await;
    let mut bob = common::irc_sasl(&server, "bob").await;
    bob.send("CAP REQ :message-tags echo-message draft/message-redaction")
        .await;
    assert!(bob.wait_for("CAP").await.contains(" ACK "));
    alice
        .send(json!({"type":"whisper","to":"bob","text":"psst"}))
        .await;
    let id = alice.wait_for("direct").await["id"].as_u64().unwrap();
    let got = bob.wait_for("PRIVMSG").await;
    assert_eq!(
        tag(&got, "msgid"),
        Some(format!("d-{id}").as_str()),
        "{got}"
    );
    alice
        .send(json!({"type":"delete","with":"bob","id":id}))
        .await;
    alice.wait_for("deleted").await;
    let redact = bob.wait_for("REDACT").await;
    assert!(redact.ends_with(&format!("REDACT bob d-{id}")), "{redact}");

    bob.send("PRIVMSG alice :oops").await;
    let mine = alice.wait_for("direct").await["id"].as_u64().unwrap();
    bob.wait_for("PRIVMSG").await;
    bob.send(&format!("REDACT alice d-{mine}")).await;
    let deleted = alice.wait_for("deleted").await;
    assert_eq!(
        (&deleted["id"], &deleted["with"]),
        (&json!(mine), &json!("bob"))
    );
    let echo = bob.wait_for("REDACT").await;
    assert!(echo.ends_with(&format!("REDACT alice d-{mine}")), "{echo}");
}

/// A label on a multiline batch answers on the echoed batch's opening
/// line, not in a labeled-response batch.
#[tokio::test]
async fn a_labeled_multiline_batch_carries_its_label() {
    let server = TestServer::start();
    let mut irc = with_caps(&server, "labeler", &format!("{CAPS} labeled-response")).await;
    join(&mut irc).await;
    until_pong(&mut irc).await;
    irc.send("@label=xyz BATCH +7 draft/multiline #den").await;
    irc.send("@batch=7 PRIVMSG #den :hello").await;
    irc.send("@batch=7 PRIVMSG #den :world").await;
    irc.send("BATCH -7").await;
    let echo = until_pong(&mut irc).await;
    assert_eq!(echo.len(), 4, "{echo:#?}");
    assert_eq!(tag(&echo[0], "label"), Some("xyz"), "{}", echo[0]);
    assert!(
        echo[0].contains(" BATCH +den-1 draft/multiline #den"),
        "{}",
        echo[0]
    );
    assert!(echo[3].contains(" BATCH -den-1"), "{}", echo[3]);
}
