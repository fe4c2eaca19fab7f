//! The durability promise, tested the hard way: a real `banter` gets a
//! steady stream of messages, is killed with SIGKILL mid-stream, and is
//! started again on the same data directory. Every message whose echo the
//! sender had received must be there, with the same id and text, whether
//! SQLite syncs every commit to disk or every second.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Client, Kind, Next, TestServer};
use serde_json::json;

/// By default (`--sync-every 1000`) a commit is written to SQLite's log
/// before anyone sees it, and synced later: a kill loses nothing seen.
#[tokio::test]
async fn every_echoed_message_survives_a_sigkill() {
    echoed_messages_survive_a_sigkill(&[], &[]).await;
}

/// The same with a sync to disk in every commit (`--sync-every 0`).
#[tokio::test]
async fn every_echoed_message_survives_a_sigkill_syncing_every_commit() {
    echoed_messages_survive_a_sigkill(&["--sync-every", "0"], &[]).await;
}

/// Killed with messages in the message log (`--sync-every 1000`), then
/// started syncing every commit (`--sync-every 0`, which keeps no log):
/// what the log held is moved into the tables at the start all the same.
#[tokio::test]
async fn every_echoed_message_survives_a_sigkill_and_a_restart_syncing_every_commit() {
    echoed_messages_survive_a_sigkill(&[], &["--sync-every", "0"]).await;
}

/// Kills a server started with `flags` mid-stream and starts it again
/// with `then` added.
async fn echoed_messages_survive_a_sigkill(flags: &[&str], then: &[&str]) {
    // A steady stream from one sender: above the default message rate. The
    // echoes of one commit come at once (a thousand when the machine is
    // busy): an outbox that holds them all, so that none is dropped as lag.
    let mut args = vec!["--message-rate", "0", "--outbox-len", "100000"];
    args.extend_from_slice(flags);
    let mut server = TestServer::child_with(&args);
    let mut alice = Client::hello(&server, Kind::Tcp, "alice").await;
    alice.join("lobby").await;

    // Send without waiting for each echo, so that messages are always in
    // flight (in the writer's queue, or being committed) when the kill
    // comes; read echoes as they arrive.
    let mut echoed: BTreeMap<u64, String> = BTreeMap::new();
    let mut sent = 0u64;
    let mut killed = false;
    loop {
        if !killed {
            for _ in 0..20 {
                sent += 1;
                alice
                    .send(json!({"type":"say","room":"lobby","text":format!("msg {sent}")}))
                    .await;
            }
        }
        match alice
            .next_within(Duration::from_millis(if killed { 2000 } else { 5 }))
            .await
        {
            Next::Msg(m) if m["type"] == "message" => {
                echoed.insert(
                    m["id"].as_u64().unwrap(),
                    m["text"].as_str().unwrap().into(),
                );
            }
            Next::Msg(m) => panic!("unexpected {m}"),
            Next::Timeout => {}
            Next::Closed => break,
        }
        if !killed && echoed.len() >= 300 {
            server.kill();
            killed = true;
        }
    }
    assert!(
        echoed.len() >= 300 && sent > echoed.len() as u64,
        "killed mid-stream"
    );

    server.restart_with(then);
    let mut bob = Client::hello(&server, Kind::Ws, "bob").await;
    bob.join("lobby").await;
    let mut stored: BTreeMap<u64, String> = BTreeMap::new();
    let mut after = 0;
    loop {
        bob.send(json!({"type":"history","room":"lobby","after":after,"limit":200}))
            .await;
        let page = bob.wait_for("history").await;
        let page = page["messages"].as_array().unwrap().clone();
        if page.is_empty() {
            break;
        }
        for m in page {
            after = m["id"].as_u64().unwrap();
            stored.insert(after, m["text"].as_str().unwrap().into());
        }
    }
    for (id, text) in &echoed {
        assert_eq!(
            stored.get(id),
            Some(text),
            "echoed message {id} lost or changed"
        );
    }
    // Ids are gap-free from 1 and texts in sending order: one order.
    let ids: Vec<u64> = stored.keys().copied().collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    for (id, text) in &stored {
        assert_eq!(text, &format!("msg {id}"));
    }
    eprintln!(
        "sent {sent}, echoed {}, stored {} after the kill",
        echoed.len(),
        stored.len()
    );
}

/// The same promise for room changes: topics and bans are announced only
/// once committed, so every change its requester saw announced is there
/// after a SIGKILL (and a later topic may be too, never an earlier one).
#[tokio::test]
async fn every_announced_topic_and_ban_survives_a_sigkill() {
    const PW: &str = "correct horse";
    // Changes as fast as the store takes them: no rate limit.
    let mut server = TestServer::child_with(&["--change-rate", "0"]);
    let mut c = Client::connect(&server, Kind::Tcp).await;
    c.send(json!({"type":"register","nick":"alice","password":PW}))
        .await;
    c.expect("registered").await;
    let mut alice = Client::connect(&server, Kind::Tcp).await;
    alice
        .send(json!({"type":"hello","nick":"alice","password":PW}))
        .await;
    alice.expect("welcome").await;
    alice.expect("logged_in").await;
    alice.join("den").await;
    assert_eq!(alice.expect("roles").await["owner"], "alice");

    // Topic `t N` and a ban of nick `bN` (N below 100: a room keeps at most
    // 100 bans, and setting one it has is a change all the same), twenty
    // of each at a time, without waiting; read the announcements as they
    // come (keeping up, so that the kill follows the newest announcement
    // closely).
    let mut last_topic = 0u64;
    let mut bans: Vec<String> = Vec::new();
    let mut sent = 0u64;
    let mut killed = false;
    'run: loop {
        if !killed {
            for _ in 0..20 {
                sent += 1;
                alice
                    .send(json!({"type":"topic","room":"den","text":format!("t {sent}")}))
                    .await;
                alice
                    .send(json!({"type":"ban","room":"den","nick":format!("b{}", sent % 100)}))
                    .await;
            }
        }
        for _ in 0..40 {
            match alice
                .next_within(Duration::from_millis(if killed { 2000 } else { 2 }))
                .await
            {
                Next::Msg(m) if m["type"] == "topic" => {
                    let text = m["topic"]["text"].as_str().unwrap();
                    let n: u64 = text.strip_prefix("t ").unwrap().parse().unwrap();
                    assert!(n > last_topic, "in order");
                    last_topic = n;
                }
                Next::Msg(m) if m["type"] == "banned" => {
                    bans.push(m["ban"]["nick"].as_str().unwrap().to_string());
                }
                Next::Msg(m) => panic!("unexpected {m}"),
                Next::Timeout => break,
                Next::Closed => break 'run,
            }
            if !killed && last_topic >= 150 {
                server.kill();
                killed = true;
            }
        }
    }
    assert!(last_topic >= 150, "killed after 150 topics");

    server.restart();
    let mut alice = Client::connect(&server, Kind::Tcp).await;
    alice
        .send(json!({"type":"hello","nick":"alice","password":PW}))
        .await;
    alice.expect("welcome").await;
    alice.expect("logged_in").await;
    let joined = alice.join("den").await;
    let text = joined["topic"]["text"].as_str().unwrap();
    let stored: u64 = text.strip_prefix("t ").unwrap().parse().unwrap();
    assert!(
        stored >= last_topic,
        "topic {last_topic} was announced, but {stored} is stored"
    );
    alice.send(json!({"type":"bans","room":"den"})).await;
    let listed = alice.wait_for("bans").await;
    let stored_bans: Vec<&str> = listed["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["nick"].as_str().unwrap())
        .collect();
    for ban in &bans {
        assert!(
            stored_bans.contains(&ban.as_str()),
            "ban of {ban} was announced but is lost"
        );
    }
    eprintln!(
        "sent {sent}, announced {last_topic} topics and {} bans, stored topic {stored} and {} bans",
        bans.len(),
        stored_bans.len()
    );
}
