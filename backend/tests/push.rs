//! Web Push end to end without the internet: a test push service on
//! loopback (plain HTTP, allowed by `--push-allow-http`) records what it
//! receives, and the test decrypts it with the subscription's keys (RFC
//! 8291), as a browser would, and checks the VAPID signature (RFC 8292).
//! Exactly one push for a mention to an account with no device connected;
//! none for a message that does not mention it, none in a muted room, none
//! while a device is connected; an endpoint that says 410 is forgotten.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Client, Kind, PW, TestServer, register};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, hkdf, signature};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the push service received.
#[derive(Clone, Debug)]
struct Pushed {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Pushed {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A push service on loopback: 201 for every push, 410 under `/gone`.
async fn push_service() -> (String, Arc<Mutex<Vec<Pushed>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let record = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let path = lines.next().unwrap().split(' ').nth(1).unwrap().to_string();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let length: usize = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse().unwrap());
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..].to_vec();
                let status = if path.starts_with("/gone") {
                    "410 Gone"
                } else {
                    "201 Created"
                };
                record.lock().unwrap().push(Pushed {
                    path,
                    headers,
                    body,
                });
                let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    (base, got)
}

/// A browser's side of a subscription: its key pair and secret.
struct Browser {
    private: Option<agreement::EphemeralPrivateKey>,
    public: Vec<u8>,
    auth: [u8; 16],
}

impl Browser {
    fn new() -> Browser {
        let rng = SystemRandom::new();
        let private =
            agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).unwrap();
        let public = private.compute_public_key().unwrap().as_ref().to_vec();
        let mut auth = [0u8; 16];
        rng.fill(&mut auth).unwrap();
        Browser {
            private: Some(private),
            public,
            auth,
        }
    }

    fn keys(&self) -> Value {
        json!({"p256dh": URL_SAFE_NO_PAD.encode(&self.public), "auth": URL_SAFE_NO_PAD.encode(self.auth)})
    }

    /// Decrypts an `aes128gcm` push body (once: the key is ephemeral).
    fn decrypt(&mut self, body: &[u8]) -> Vec<u8> {
        struct Len(usize);
        impl hkdf::KeyType for Len {
            fn len(&self) -> usize {
                self.0
            }
        }
        let expand = |prk: &hkdf::Prk, info: &[u8], len: usize| {
            let mut out = vec![0; len];
            prk.expand(&[info], Len(len))
                .unwrap()
                .fill(&mut out)
                .unwrap();
            out
        };
        let (salt, rest) = body.split_at(16);
        let rs = u32::from_be_bytes(rest[..4].try_into().unwrap());
        assert_eq!(rs, 4096);
        let idlen = rest[4] as usize;
        let (server_public, ciphertext) = rest[5..].split_at(idlen);
        let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, server_public);
        let mut info = b"WebPush: info\0".to_vec();
        info.extend_from_slice(&self.public);
        info.extend_from_slice(server_public);
        let ikm = agreement::agree_ephemeral(self.private.take().unwrap(), &theirs, |shared| {
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &self.auth).extract(shared);
            expand(&prk, &info, 32)
        })
        .unwrap();
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
        let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16);
        let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12);
        let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek).unwrap());
        let mut data = ciphertext.to_vec();
        let plain = key
            .open_in_place(
                aead::Nonce::try_assume_unique_for_key(&nonce).unwrap(),
                aead::Aad::empty(),
                &mut data,
            )
            .unwrap();
        assert_eq!(plain.last(), Some(&2), "the last record's delimiter");
        plain[..plain.len() - 1].to_vec()
    }
}

/// Checks `Authorization: vapid t=<jwt>, k=<key>` against the server's key.
fn check_vapid(pushed: &Pushed, server_key: &str, origin: &str) {
    let auth = pushed
        .header("authorization")
        .expect("a VAPID authorization");
    let rest = auth.strip_prefix("vapid t=").expect(auth);
    let (jwt, key) = rest.split_once(", k=").expect(auth);
    assert_eq!(key, server_key);
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let public = URL_SAFE_NO_PAD.decode(key).unwrap();
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public)
        .verify(input.as_bytes(), &URL_SAFE_NO_PAD.decode(sig).unwrap())
        .expect("a valid ES256 signature");
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(input.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], origin);
    assert!(claims["sub"].as_str().unwrap().starts_with("mailto:"));
    assert_eq!(pushed.header("content-encoding"), Some("aes128gcm"));
    assert!(pushed.header("ttl").is_some());
}

async fn enter(client: &mut Client, room: &str) {
    client.send(json!({"type":"join","room":room})).await;
    client.wait_for("joined").await;
}

async fn login(server: &TestServer, nick: &str) -> (Client, Value) {
    let hello = json!({"type":"hello","nick":nick,"password":PW});
    let (mut c, welcome) = Client::hello_with(server, Kind::Ws, hello).await;
    c.expect("logged_in").await;
    (c, welcome)
}

/// Waits until the push service has `n` requests (or a while passed).
async fn pushes(got: &Arc<Mutex<Vec<Pushed>>>, n: usize) -> Vec<Pushed> {
    for _ in 0..100 {
        if got.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Anything more that was coming.
    tokio::time::sleep(Duration::from_millis(200)).await;
    got.lock().unwrap().clone()
}

#[tokio::test]
async fn a_mention_of_an_account_with_no_device_is_pushed_once() {
    let (base, got) = push_service().await;
    let server = TestServer::start_with(&["--push-allow-http"]);
    register(&server, "alice").await;
    register(&server, "bob").await;
    let (mut alice, welcome) = login(&server, "alice").await;
    let server_key = welcome["vapid_public_key"]
        .as_str()
        .expect("a VAPID key")
        .to_string();
    assert_eq!(URL_SAFE_NO_PAD.decode(&server_key).unwrap().len(), 65);
    enter(&mut alice, "den").await;
    enter(&mut alice, "quiet").await;
    alice
        .send(json!({"type":"notify_level","room":"quiet","level":"none"}))
        .await;
    alice.wait_for("notify_level").await;
    let mut browser = Browser::new();
    let endpoint = format!("{base}/push/alice");
    alice
        .send(json!({"type":"push_subscribe","endpoint":endpoint,"keys":browser.keys(),"ref":1}))
        .await;
    assert_eq!(
        alice.wait_for("push_subscribed").await["endpoint"],
        endpoint
    );
    let (mut bob, _) = login(&server, "bob").await;
    enter(&mut bob, "den").await;
    enter(&mut bob, "quiet").await;

    // While alice's device is connected: nothing.
    bob.send(json!({"type":"say","room":"den","text":"alice, are you there?"}))
        .await;
    bob.wait_for("message").await;
    assert!(pushes(&got, 1).await.is_empty());

    // Gone (always-on keeps her in her rooms): a mention is pushed, once;
    // a message that does not name her, or one in a muted room, is not.
    drop(alice);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for text in ["lunch, anyone?", "alice: lunch?"] {
        bob.send(json!({"type":"say","room":"den","text":text}))
            .await;
        bob.wait_for("message").await;
    }
    bob.send(json!({"type":"say","room":"quiet","text":"alice, psst"}))
        .await;
    bob.wait_for("message").await;
    let seen = pushes(&got, 1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/push/alice");
    check_vapid(&seen[0], &server_key, &base);
    let payload: Value = serde_json::from_slice(&browser.decrypt(&seen[0].body)).unwrap();
    assert_eq!(
        (&payload["room"], &payload["from"], &payload["text"]),
        (&json!("den"), &json!("bob"), &json!("alice: lunch?"))
    );

    // A direct message always notifies.
    bob.send(json!({"type":"whisper","to":"alice","text":"call me"}))
        .await;
    bob.wait_for("direct").await;
    let seen = pushes(&got, 2).await;
    assert_eq!(seen.len(), 2, "{seen:?}");

    // An expired endpoint (410) is forgotten: no second try on it.
    let (mut alice, _) = login(&server, "alice").await;
    let gone = format!("{base}/gone/1");
    let other = Browser::new();
    alice
        .send(json!({"type":"push_unsubscribe","endpoint":endpoint}))
        .await;
    alice.wait_for("push_unsubscribed").await;
    alice
        .send(json!({"type":"push_subscribe","endpoint":gone,"keys":other.keys()}))
        .await;
    alice.wait_for("push_subscribed").await;
    drop(alice);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..2 {
        bob.send(json!({"type":"say","room":"den","text":"alice?"}))
            .await;
        bob.wait_for("message").await;
        pushes(&got, 3).await;
    }
    let seen = got.lock().unwrap().clone();
    let to_gone = seen.iter().filter(|p| p.path == "/gone/1").count();
    assert_eq!(to_gone, 1, "{seen:?}");
}

#[tokio::test]
async fn bad_subscriptions_are_refused() {
    let server = TestServer::start();
    register(&server, "alice").await;
    let (mut alice, _) = login(&server, "alice").await;
    let keys = Browser::new().keys();
    for (endpoint, keys) in [
        ("http://push.example/x", keys.clone()),
        ("not a url", keys.clone()),
        (
            "https://push.example/x",
            json!({"p256dh":"AAAA","auth":"AAAA"}),
        ),
    ] {
        alice
            .send(json!({"type":"push_subscribe","endpoint":endpoint,"keys":keys}))
            .await;
        alice.expect_error("bad_request").await;
    }
    let mut guest = Client::hello(&server, Kind::Tcp, "guest").await;
    guest
        .send(json!({"type":"push_subscribe","endpoint":"https://push.example/x","keys":keys}))
        .await;
    guest.expect_error("no_such_account").await;
}

/// IRC's draft/webpush: ISUPPORT `VAPID`, `WEBPUSH REGISTER`, and pushes
/// that are IRC lines.
#[tokio::test]
async fn irc_clients_register_for_pushes_of_irc_lines() {
    let (base, got) = push_service().await;
    let server = TestServer::start_with(&["--push-allow-http"]);
    register(&server, "alice").await;
    register(&server, "bob").await;
    // The key is in ISUPPORT.
    let mut guest = common::IrcClient::connect(&server).await;
    guest.send("NICK guest").await;
    guest.send("USER guest 0 * :guest").await;
    let mut vapid = None;
    while vapid.is_none() {
        let line = guest.wait_for("005").await;
        vapid = line
            .split(' ')
            .find_map(|t| t.strip_prefix("VAPID="))
            .map(str::to_string);
    }
    let mut irc = common::irc_sasl(&server, "alice").await;
    irc.send("CAP REQ :draft/webpush").await;
    assert!(irc.wait_for("CAP").await.contains(" ACK "));
    let mut browser = Browser::new();
    let keys = browser.keys();
    let endpoint = format!("{base}/push/irc");
    irc.send(&format!(
        "WEBPUSH REGISTER {endpoint} p256dh={};auth={}",
        keys["p256dh"].as_str().unwrap(),
        keys["auth"].as_str().unwrap()
    ))
    .await;
    let ok = irc.wait_for("WEBPUSH").await;
    assert!(
        ok.ends_with(&format!("WEBPUSH REGISTER {endpoint}")),
        "{ok}"
    );
    irc.send("QUIT").await;
    drop(irc);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut bob, _) = login(&server, "bob").await;
    bob.send(json!({"type":"whisper","to":"alice","text":"ping from bob"}))
        .await;
    bob.wait_for("direct").await;
    let seen = pushes(&got, 1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    check_vapid(&seen[0], vapid.as_deref().unwrap(), &base);
    let line = String::from_utf8(browser.decrypt(&seen[0].body)).unwrap();
    assert!(line.starts_with("@msgid=d-"), "{line}");
    assert!(
        line.ends_with(":bob!bob@banter PRIVMSG alice :ping from bob"),
        "{line}"
    );
}

/// The VAPID key is made once and kept: a restart, and a second server on
/// the same PostgreSQL database (a cluster's nodes), give the same one.
#[tokio::test]
async fn the_vapid_key_is_kept_and_shared() {
    let data = std::sync::Arc::new(common::TempDir::new());
    let mut server = TestServer::start_in(data, &[]);
    let (_, welcome) =
        Client::hello_with(&server, Kind::Tcp, json!({"type":"hello","nick":"a"})).await;
    let first = welcome["vapid_public_key"].as_str().unwrap().to_string();
    server.restart();
    let (_, welcome) =
        Client::hello_with(&server, Kind::Tcp, json!({"type":"hello","nick":"a"})).await;
    assert_eq!(welcome["vapid_public_key"], first.as_str());
    let Some(url) = common::postgres_url() else {
        return;
    };
    let one = TestServer::start_with(&["--store", &url]);
    let two = TestServer::start_with(&["--store", &url]);
    let (_, a) = Client::hello_with(&one, Kind::Tcp, json!({"type":"hello","nick":"a"})).await;
    let (_, b) = Client::hello_with(&two, Kind::Tcp, json!({"type":"hello","nick":"b"})).await;
    assert!(a["vapid_public_key"].is_string());
    assert_eq!(a["vapid_public_key"], b["vapid_public_key"]);
}
