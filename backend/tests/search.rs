//! `search` over real sockets, on both stores (SQLite's FTS5, PostgreSQL's
//! full-text search): words, phrases, `from:` and `in:` filters, paging,
//! edits and deletions, direct conversations, and what a searcher may not
//! read (a room it is not in, others' direct messages).

mod common;

use common::{Client, Kind, TestServer, log_in, postgres_url, register};
use serde_json::{Value, json};

/// Starts banter on SQLite, or on PostgreSQL at `url`.
fn start(url: Option<&str>) -> TestServer {
    match url {
        Some(url) => TestServer::start_with(&["--store", url]),
        None => TestServer::start(),
    }
}

async fn search(client: &mut Client, request: Value) -> Vec<Value> {
    client.send(request).await;
    let found = client.wait_for("search_results").await;
    found["messages"].as_array().unwrap().clone()
}

/// Says `text` and waits for its own echo (others' messages may come
/// first); its id.
async fn say(client: &mut Client, room: &str, text: &str) -> u64 {
    client
        .send(json!({"type":"say","room":room,"text":text,"ref":"s"}))
        .await;
    loop {
        let m = client.wait_for("message").await;
        if m["ref"] == "s" {
            return m["id"].as_u64().unwrap();
        }
    }
}

fn texts(found: &[Value]) -> Vec<&str> {
    found.iter().map(|m| m["text"].as_str().unwrap()).collect()
}

async fn scenario(url: Option<&str>) {
    let server = start(url);
    register(&server, "alice").await;
    register(&server, "dave").await;
    let (mut alice, _) = log_in(&server, Kind::Ws, "alice").await;
    let (mut dave, _) = log_in(&server, Kind::Tcp, "dave").await;
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    let mut carol = Client::hello(&server, Kind::Tcp, "carol").await;
    alice.join("den").await;
    bob.join("den").await;
    carol.join("secret").await;

    let failed = say(&mut bob, "den", "the deploy failed again").await;
    say(&mut alice, "den", "Deploying a fix now").await;
    say(&mut alice, "den", "lunch?").await;
    let fixed = say(&mut bob, "den", "deploy works, thanks").await;
    say(&mut carol, "secret", "secret deploy plans").await;
    let typo = say(&mut bob, "den", "deploy tpyo").await;
    bob.send(json!({"type":"delete","room":"den","id":typo}))
        .await;
    bob.wait_for("deleted").await;
    alice
        .send(json!({"type":"whisper","to":"dave","text":"the deploy plan for friday"}))
        .await;
    let plan = alice.wait_for("direct").await["id"].as_u64().unwrap();
    dave.wait_for("direct").await;
    // A direct message edited before anything searched (so, with SQLite,
    // before it is indexed): found by its new words only.
    alice
        .send(json!({"type":"whisper","to":"dave","text":"an old draft note"}))
        .await;
    let draft = alice.wait_for("direct").await["id"].as_u64().unwrap();
    dave.wait_for("direct").await;
    alice
        .send(json!({"type":"edit","with":"dave","id":draft,"text":"a new draft note"}))
        .await;
    alice.wait_for("edited").await;

    // Words, newest first; never another room's, never a deleted message.
    let found = search(
        &mut alice,
        json!({"type":"search","query":"deploy","ref":1}),
    )
    .await;
    assert_eq!(
        texts(&found),
        [
            "the deploy plan for friday",
            "deploy works, thanks",
            "the deploy failed again"
        ],
        "{found:?}"
    );
    assert_eq!(found[1]["room"], "den");
    assert_eq!(found[1]["id"], fixed);
    assert_eq!(found[1]["from"], "bob");
    assert_eq!(found[0]["with"], "dave");
    assert!(found[0].get("room").is_none());
    // The same for bob, a guest: no direct messages, and his room only.
    let found = search(&mut bob, json!({"type":"search","query":"deploy"})).await;
    assert_eq!(
        texts(&found),
        ["deploy works, thanks", "the deploy failed again"]
    );
    // Filters and phrases.
    let found = search(
        &mut alice,
        json!({"type":"search","query":"from:bob in:#den deploy"}),
    )
    .await;
    assert_eq!(found.len(), 2);
    let found = search(
        &mut alice,
        json!({"type":"search","query":"\"deploy failed\""}),
    )
    .await;
    assert_eq!(texts(&found), ["the deploy failed again"]);
    let found = search(
        &mut alice,
        json!({"type":"search","query":"deploy in:dave"}),
    )
    .await;
    assert_eq!(texts(&found), ["the deploy plan for friday"]);
    let found = search(&mut alice, json!({"type":"search","query":"from:alice"})).await;
    assert_eq!(
        texts(&found),
        [
            "a new draft note",
            "the deploy plan for friday",
            "lunch?",
            "Deploying a fix now"
        ]
    );
    // A room one is not in finds nothing, even named.
    let found = search(
        &mut alice,
        json!({"type":"search","query":"secret in:#secret"}),
    )
    .await;
    assert!(found.is_empty(), "{found:?}");
    // Paging: one at a time, older than the last.
    let found = search(
        &mut bob,
        json!({"type":"search","query":"deploy","limit":1}),
    )
    .await;
    assert_eq!(texts(&found), ["deploy works, thanks"]);
    let found = search(
        &mut bob,
        json!({"type":"search","query":"deploy","limit":1,"before":fixed}),
    )
    .await;
    assert_eq!(found[0]["id"], failed);
    // An edit is found by its new words only.
    bob.send(json!({"type":"edit","room":"den","id":failed,"text":"the rollout failed again"}))
        .await;
    bob.wait_for("edited").await;
    let found = search(&mut bob, json!({"type":"search","query":"rollout"})).await;
    assert_eq!(found[0]["id"], failed);
    assert!(found[0]["edited"].as_u64().is_some());
    let found = search(&mut bob, json!({"type":"search","query":"deploy failed"})).await;
    assert!(found.is_empty(), "{found:?}");

    // Direct messages, edited and deleted before and after being indexed.
    let found = search(&mut alice, json!({"type":"search","query":"draft"})).await;
    assert_eq!(texts(&found), ["a new draft note"]);
    alice
        .send(json!({"type":"edit","with":"dave","id":plan,"text":"the deploy plan for monday"}))
        .await;
    alice.wait_for("edited").await;
    let found = search(&mut dave, json!({"type":"search","query":"friday"})).await;
    assert!(found.is_empty(), "{found:?}");
    let found = search(&mut dave, json!({"type":"search","query":"monday"})).await;
    assert_eq!(found[0]["id"], plan);
    alice
        .send(json!({"type":"delete","with":"dave","id":draft}))
        .await;
    alice.wait_for("deleted").await;
    let found = search(&mut alice, json!({"type":"search","query":"draft"})).await;
    assert!(found.is_empty(), "{found:?}");

    // Bad queries say why.
    for (query, code) in [
        (json!(""), "empty_text"),
        (json!("from:no!body"), "bad_request"),
        (json!("x".repeat(300)), "text_too_long"),
    ] {
        bob.send(json!({"type":"search","query":query})).await;
        bob.wait_error(code).await;
    }
}

#[tokio::test]
async fn search_on_sqlite() {
    scenario(None).await;
}

#[tokio::test]
async fn search_on_postgres() {
    let Some(url) = postgres_url() else {
        return;
    };
    scenario(Some(&url)).await;
}

#[tokio::test]
async fn search_needs_a_store_and_is_rate_limited() {
    let server = TestServer::start_with(&["--memory-only"]);
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    bob.send(json!({"type":"search","query":"x"})).await;
    bob.wait_error("unsupported").await;
    let server = TestServer::start();
    let mut bob = Client::hello(&server, Kind::Tcp, "bob").await;
    for _ in 0..10 {
        bob.send(json!({"type":"search","query":"x"})).await;
        bob.wait_for("search_results").await;
    }
    bob.send(json!({"type":"search","query":"x"})).await;
    bob.wait_error("rate_limited").await;
}

/// IRC's `soju.im/search`: `SEARCH text=…;in=…` answers with a
/// `soju.im/search` batch of the messages, oldest first.
#[tokio::test]
async fn irc_clients_search_with_soju_search() {
    let server = TestServer::start();
    let mut web = Client::hello(&server, Kind::Ws, "web").await;
    web.join("den").await;
    say(&mut web, "den", "first deploy").await;
    say(&mut web, "den", "nothing here").await;
    let last = say(&mut web, "den", "second deploy").await;
    let mut irc = common::IrcClient::connect(&server).await;
    irc.send("CAP REQ :soju.im/search batch server-time message-tags")
        .await;
    assert!(irc.expect("CAP").await.contains(" ACK "));
    irc.send("NICK seeker").await;
    irc.send("USER seeker 0 * :seeker").await;
    irc.send("CAP END").await;
    irc.wait_for("376").await;
    irc.send("JOIN #den").await;
    irc.wait_for("366").await;
    irc.send("SEARCH text=deploy;in=#den;limit=10").await;
    // The join's replay (a chathistory batch) may come first.
    while !irc.wait_for("BATCH").await.ends_with(" soju.im/search") {}
    let first = irc.recv().await;
    assert!(first.ends_with("PRIVMSG #den :first deploy"), "{first}");
    let second = irc.recv().await;
    assert!(second.ends_with("PRIVMSG #den :second deploy"), "{second}");
    assert!(second.contains(&format!("msgid=den-{last}")), "{second}");
    assert!(irc.recv().await.contains(" BATCH -"));
    irc.send("SEARCH in=#den").await;
    let fail = irc.wait_for("FAIL").await;
    assert!(fail.contains("FAIL SEARCH INVALID_PARAMS"), "{fail}");
}
