//! What notifies an account, over real sockets: notification levels per
//! room and direct conversation (`notify_level`), and highlight words
//! (`highlights`), kept for the account (every device hears a change, a
//! login hears them all) and across a restart.

mod common;

use std::sync::Arc;

use common::{Client, Kind, PW, TempDir, TestServer, register};
use serde_json::{Value, json};

/// Logs `nick` in with its password; the frames up to its first pong.
async fn login(server: &TestServer, kind: Kind, nick: &str) -> (Client, Vec<Value>) {
    let hello = json!({"type":"hello","nick":nick,"password":PW});
    let (mut c, _) = Client::hello_with(server, kind, hello).await;
    c.send(json!({"type":"ping"})).await;
    let mut seen = Vec::new();
    loop {
        let next = c.recv().await;
        if next["type"] == "pong" {
            return (c, seen);
        }
        seen.push(next);
    }
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Option<&'a Value> {
    frames.iter().find(|f| f["type"] == kind)
}

#[tokio::test]
async fn levels_and_highlights_follow_the_account() {
    let data = Arc::new(TempDir::new());
    let mut server = TestServer::start_in(data, &[]);
    register(&server, "alice").await;
    let (mut laptop, first) = login(&server, Kind::Tcp, "alice").await;
    // Nothing set: nothing told.
    assert!(of_type(&first, "notify_levels").is_none(), "{first:?}");
    assert!(of_type(&first, "highlights").is_none(), "{first:?}");
    let (mut phone, _) = login(&server, Kind::Ws, "alice").await;

    laptop
        .send(json!({"type":"notify_level","room":"den","level":"none","ref":1}))
        .await;
    let set = laptop.wait_for("notify_level").await;
    assert_eq!(
        set,
        json!({"type":"notify_level","room":"den","level":"none","ref":1})
    );
    assert_eq!(
        phone.wait_for("notify_level").await,
        json!({"type":"notify_level","room":"den","level":"none"})
    );
    laptop
        .send(json!({"type":"notify_level","with":"bob","level":"all"}))
        .await;
    laptop.wait_for("notify_level").await;
    laptop
        .send(json!({"type":"highlights","words":["deploy","oncall"]}))
        .await;
    assert_eq!(
        laptop.wait_for("highlights").await["words"],
        json!(["deploy", "oncall"])
    );
    assert_eq!(
        phone.wait_for("highlights").await["words"],
        json!(["deploy", "oncall"])
    );
    // Asking.
    phone
        .send(json!({"type":"notify_level","room":"lobby"}))
        .await;
    assert_eq!(phone.wait_for("notify_level").await["level"], "mentions");
    phone
        .send(json!({"type":"notify_level","room":"den"}))
        .await;
    assert_eq!(phone.wait_for("notify_level").await["level"], "none");

    drop((laptop, phone));
    server.restart();
    let (mut again, first) = login(&server, Kind::Tcp, "alice").await;
    let levels = of_type(&first, "notify_levels").expect("levels after login");
    assert_eq!(
        levels["levels"],
        json!([{"room":"den","level":"none"},{"with":"bob","level":"all"}]),
    );
    assert_eq!(
        of_type(&first, "highlights").unwrap()["words"],
        json!(["deploy", "oncall"])
    );
    // Back to the default: no longer listed.
    again
        .send(json!({"type":"notify_level","room":"den","level":"mentions"}))
        .await;
    again.wait_for("notify_level").await;
    again.send(json!({"type":"highlights","words":[]})).await;
    again.wait_for("highlights").await;
    drop(again);
    let (_, first) = login(&server, Kind::Tcp, "alice").await;
    assert_eq!(
        of_type(&first, "notify_levels").unwrap()["levels"],
        json!([{"with":"bob","level":"all"}])
    );
    assert!(of_type(&first, "highlights").is_none());
}

#[tokio::test]
async fn bad_settings_get_specific_errors() {
    let server = TestServer::start();
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest
        .send(json!({"type":"notify_level","room":"den","level":"none"}))
        .await;
    guest.expect_error("no_such_account").await;
    register(&server, "alice").await;
    let (mut alice, _) = login(&server, Kind::Tcp, "alice").await;
    for (request, code) in [
        (
            json!({"type":"notify_level","room":"den","level":"loud"}),
            "bad_request",
        ),
        (
            json!({"type":"notify_level","level":"all"}),
            "missing_field",
        ),
        (
            json!({"type":"highlights","words":["two words"]}),
            "bad_request",
        ),
        (
            json!({"type":"highlights","words":["x".repeat(33)]}),
            "bad_request",
        ),
        (
            json!({"type":"highlights","words":vec!["w"; 21]}),
            "bad_request",
        ),
    ] {
        alice.send(request).await;
        alice.expect_error(code).await;
    }
}
