//! The durability promise, tested the hard way: a real `banter` gets a
//! steady stream of messages, is killed with SIGKILL mid-stream, and is
//! started again on the same data directory. Every message whose echo the
//! sender had received must be there, with the same id and text.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Client, Kind, Next, TestServer};
use serde_json::json;

#[tokio::test]
async fn every_echoed_message_survives_a_sigkill() {
    // A steady stream from one sender: above the default message rate.
    let mut server = TestServer::start_with(&["--message-rate", "0"]);
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

    server.restart();
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
