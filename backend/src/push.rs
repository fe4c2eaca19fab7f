//! Web Push (RFC 8030) for accounts with no device connected.
//!
//! * The VAPID key pair (RFC 8292) is made at first start and kept in the
//!   store (`server_keys`: in the data directory's database with SQLite,
//!   shared by every node with PostgreSQL); `welcome` gives its public
//!   key, and each push is signed with it (an ES256 JWT for the
//!   endpoint's origin).
//! * A browser's subscription (`push_subscribe`) is kept for its account
//!   (at most [`MAX_SUBSCRIPTIONS`]; the oldest goes).
//! * The router tells the [`Pusher`] of each message an account missed
//!   ([`Notify`]); the pusher reads what notifies the account (its level
//!   there, its highlight words), and for a message at that level sends an
//!   encrypted push (RFC 8291, `aes128gcm`) to each subscription: from a
//!   bounded queue, [`CONCURRENT`] at once, each with a timeout and at most
//!   one retry. An endpoint that answers 404 or 410 is forgotten; none is
//!   ever followed to another (a redirect is a failure). Endpoints must be
//!   `https` (`--push-allow-http` lets a test push service use plain HTTP).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use banter_protocol::{Nick, NotifyLevel, PushKeys, RoomName, mentions};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use ring::rand::{SecureRandom, SystemRandom};
use ring::{aead, agreement, hkdf, signature};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, warn};

use crate::core::notify::{Missed, Notify};
use crate::store::{Store, Write};

/// The VAPID key pair's name among the store's server keys.
pub const VAPID_KEY: &str = "vapid";
/// Most subscriptions (browsers) one account keeps.
pub const MAX_SUBSCRIPTIONS: usize = 10;
/// Longest endpoint URL, in bytes.
pub const MAX_ENDPOINT_BYTES: usize = 2048;
/// Missed messages waiting for the pusher; more are dropped.
const QUEUE: usize = 1024;
/// Pushes in flight at once.
const CONCURRENT: usize = 16;
/// How long one push may take (connection, TLS, answer).
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long before the one retry of a push that failed.
const RETRY_AFTER: Duration = Duration::from_secs(2);
/// How long a push service keeps a push for an offline browser.
const TTL_SECS: u32 = 24 * 3600;
/// How often the accounts with subscriptions are read again.
const REFRESH: Duration = Duration::from_secs(60);
/// A preview's most characters.
const PREVIEW_CHARS: usize = 140;

/// The server's VAPID key pair.
pub struct Vapid {
    pair: signature::EcdsaKeyPair,
    /// The public key, base64url (an uncompressed P-256 point).
    public: String,
}

impl Vapid {
    /// The store's key pair (shared by every node of a cluster), made
    /// and kept by the first server that needs it.
    pub async fn load_or_create(store: &Store) -> anyhow::Result<Vapid> {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let stored = store
            .server_key(VAPID_KEY, || {
                let doc = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng)
                    .map_err(|_| anyhow::anyhow!("cannot make a VAPID key"))?;
                tracing::info!("made the Web Push (VAPID) key pair");
                Ok(URL_SAFE_NO_PAD.encode(doc.as_ref()))
            })
            .await?;
        let pkcs8 = URL_SAFE_NO_PAD
            .decode(stored)
            .context("the stored VAPID key is not base64url")?;
        let pair = signature::EcdsaKeyPair::from_pkcs8(alg, &pkcs8, &rng)
            .map_err(|_| anyhow::anyhow!("the stored VAPID key is not a P-256 key (PKCS#8)"))?;
        let public = URL_SAFE_NO_PAD.encode(signature::KeyPair::public_key(&pair).as_ref());
        Ok(Vapid { pair, public })
    }

    /// The public key, base64url, as `welcome` gives it.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// `Authorization: vapid t=<JWT>, k=<public key>` for a push service
    /// at `origin`, valid 12 hours from `now` (Unix seconds).
    fn authorization(&self, origin: &str, contact: &str, now: u64) -> anyhow::Result<String> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({"aud": origin, "exp": now + 12 * 3600, "sub": contact});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{header}.{claims}");
        let signed = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| anyhow::anyhow!("cannot sign the VAPID token"))?;
        let signature = URL_SAFE_NO_PAD.encode(signed.as_ref());
        Ok(format!("vapid t={input}.{signature}, k={}", self.public))
    }
}

/// A browser's push subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    /// The browser's P-256 public key (65 bytes) and its secret (16).
    pub p256dh: Vec<u8>,
    pub auth: Vec<u8>,
    /// An IRC client's (draft/webpush): its pushes are IRC lines, not the
    /// JSON a web page's service worker reads.
    pub irc: bool,
}

impl Subscription {
    /// A subscription from `push_subscribe`, or why it is refused.
    pub fn parse(
        endpoint: &str,
        keys: &PushKeys,
        allow_http: bool,
        irc: bool,
    ) -> Result<Subscription, String> {
        if endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(format!("an endpoint is at most {MAX_ENDPOINT_BYTES} bytes"));
        }
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| "the endpoint is not a URL".to_string())?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if allow_http => {}
            _ => return Err("the endpoint must be an https:// URL".into()),
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err("the endpoint has no host".into());
        }
        let decode = |what: &str, value: &str, len: usize| {
            URL_SAFE_NO_PAD
                .decode(value.trim_end_matches('='))
                .ok()
                .filter(|b| b.len() == len)
                .ok_or_else(|| format!("keys.{what} is not {len} bytes of base64url"))
        };
        let p256dh = decode("p256dh", &keys.p256dh, 65)?;
        if p256dh[0] != 4 {
            return Err("keys.p256dh is not an uncompressed P-256 point".into());
        }
        Ok(Subscription {
            endpoint: endpoint.to_string(),
            p256dh,
            auth: decode("auth", &keys.auth, 16)?,
            irc,
        })
    }
}

/// A length for ring's HKDF.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &[u8], len: usize) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0; len];
    prk.expand(&[info], Len(len))
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| anyhow::anyhow!("HKDF failed"))?;
    Ok(out)
}

/// Record size of the one record a push holds (RFC 8188).
const RECORD_SIZE: u32 = 4096;

/// `payload` encrypted for `sub` (RFC 8291: an ephemeral ECDH key with the
/// browser's, HKDF with its secret, AES-128-GCM): the request body, with
/// the `aes128gcm` header (salt, record size, our public key).
pub fn encrypt(sub: &Subscription, payload: &[u8]) -> anyhow::Result<Vec<u8>> {
    anyhow::ensure!(
        payload.len() + 17 <= RECORD_SIZE as usize,
        "a push payload is at most {} bytes",
        RECORD_SIZE - 17
    );
    let rng = SystemRandom::new();
    let fail = |what: &'static str| move |_| anyhow::anyhow!("{what} failed");
    let ours = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
        .map_err(fail("a key"))?;
    let public = ours.compute_public_key().map_err(fail("a public key"))?;
    let theirs = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, &sub.p256dh);
    let mut info = b"WebPush: info\0".to_vec();
    info.extend_from_slice(&sub.p256dh);
    info.extend_from_slice(public.as_ref());
    let ikm = agreement::agree_ephemeral(ours, &theirs, |shared| {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &sub.auth).extract(shared);
        expand(&prk, &info, 32)
    })
    .map_err(fail("the key agreement"))??;
    let mut salt = [0u8; 16];
    rng.fill(&mut salt).map_err(fail("randomness"))?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(&ikm);
    let cek = expand(&prk, b"Content-Encoding: aes128gcm\0", 16)?;
    let nonce = expand(&prk, b"Content-Encoding: nonce\0", 12)?;
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_128_GCM, &cek).map_err(fail("the content key"))?,
    );
    let mut data = payload.to_vec();
    // The last (only) record's delimiter.
    data.push(2);
    key.seal_in_place_append_tag(
        aead::Nonce::try_assume_unique_for_key(&nonce).map_err(fail("the nonce"))?,
        aead::Aad::empty(),
        &mut data,
    )
    .map_err(fail("encryption"))?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + data.len());
    body.extend_from_slice(&salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(public.as_ref().len() as u8);
    body.extend_from_slice(public.as_ref());
    body.extend_from_slice(&data);
    Ok(body)
}

/// How pushes go out.
#[derive(Clone, Debug)]
pub struct PushSettings {
    pub allow_http: bool,
    /// The VAPID `sub` claim: how a push service reaches the operator.
    pub contact: String,
    /// Pushes carry the message's first words (else only who and where).
    pub previews: bool,
}

/// Takes what the router says accounts missed and pushes it to their
/// browsers.
pub struct Pusher {
    queue: mpsc::Sender<Missed>,
    /// Accounts with a subscription: the others' missed messages are not
    /// even queued.
    subscribed: Mutex<HashSet<Nick>>,
}

impl Notify for Pusher {
    fn wants(&self, account: &Nick) -> bool {
        self.subscribed.lock().unwrap().contains(account)
    }

    fn missed(&self, missed: Missed) {
        if self.queue.try_send(missed).is_err() {
            debug!("the push queue is full; a notification was dropped");
        }
    }
}

impl Pusher {
    /// Starts the pusher for the accounts `store` holds subscriptions of.
    pub async fn start(
        store: Store,
        vapid: Arc<Vapid>,
        settings: PushSettings,
    ) -> anyhow::Result<Arc<Pusher>> {
        let subscribed = store.subscribed_accounts().await?.into_iter().collect();
        let (queue, missed) = mpsc::channel(QUEUE);
        let pusher = Arc::new(Pusher {
            queue,
            subscribed: Mutex::new(subscribed),
        });
        let client = Client::new(vapid, settings);
        tokio::spawn(run(missed, store.clone(), client, pusher.clone()));
        tokio::spawn(refresh(store, Arc::downgrade(&pusher)));
        Ok(pusher)
    }

    /// `account` has a subscription now (or, `false`, has none left).
    pub fn subscribed(&self, account: &Nick, any: bool) {
        let mut set = self.subscribed.lock().unwrap();
        if any {
            set.insert(account.clone());
        } else {
            set.remove(account);
        }
    }
}

/// Reads again, every [`REFRESH`], which accounts have a subscription:
/// in a cluster, one made through another node (whose user may live here)
/// is pushed for here too, at the latest that much later.
async fn refresh(store: Store, pusher: std::sync::Weak<Pusher>) {
    let mut every = tokio::time::interval(REFRESH);
    every.tick().await;
    loop {
        every.tick().await;
        let Some(pusher) = pusher.upgrade() else {
            return;
        };
        match store.subscribed_accounts().await {
            Ok(accounts) => *pusher.subscribed.lock().unwrap() = accounts.into_iter().collect(),
            Err(e) => debug!(error = %e, "cannot read which accounts have push subscriptions"),
        }
    }
}

/// Decides, for each missed message, whether it notifies its account, and
/// sends the pushes.
async fn run(
    mut missed: mpsc::Receiver<Missed>,
    store: Store,
    client: Client,
    pusher: Arc<Pusher>,
) {
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    let client = Arc::new(client);
    while let Some(m) = missed.recv().await {
        let wanted = match notifies(&store, &m).await {
            Ok(wanted) => wanted,
            Err(e) => {
                warn!(error = %e, "cannot read what notifies an account; no push");
                continue;
            }
        };
        if !wanted {
            continue;
        }
        let subscriptions = match store.subscriptions(&m.account).await {
            Ok(subs) => subs,
            Err(e) => {
                warn!(error = %e, "cannot read push subscriptions");
                continue;
            }
        };
        if subscriptions.is_empty() {
            pusher.subscribed(&m.account, false);
        }
        let (json, irc) = (client.payload(&m), client.irc_payload(&m));
        for sub in subscriptions {
            let payload = if sub.irc { irc.clone() } else { json.clone() };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (client, store, payload, account) = (
                client.clone(),
                store.clone(),
                payload.clone(),
                m.account.clone(),
            );
            tokio::spawn(async move {
                let _slot = slot;
                match client.deliver(&sub, &payload).await {
                    Gone::Yes => {
                        debug!(endpoint = %sub.endpoint, "a push subscription expired");
                        let _ = store
                            .request(|reply| Write::DropSubscription {
                                account,
                                endpoint: sub.endpoint.clone(),
                                reply,
                            })
                            .await;
                    }
                    Gone::No => {}
                }
            });
        }
    }
}

/// Whether message `m` notifies its account: its level where it was said
/// (all, mentions by default, none), a direct message always mentioning.
async fn notifies(store: &Store, m: &Missed) -> anyhow::Result<bool> {
    let target = match &m.room {
        Some(room) => format!("#{room}"),
        None => crate::core::model::key(m.from_account.as_ref().unwrap_or(&m.from)),
    };
    let level = store.notify_level(&m.account, &target).await?;
    Ok(match level {
        NotifyLevel::None => false,
        NotifyLevel::All => true,
        NotifyLevel::Mentions if m.room.is_none() => true,
        NotifyLevel::Mentions => {
            let words = store.highlights(&m.account).await?;
            mentions(&m.text, m.account.as_str(), &words)
        }
    })
}

/// Whether an endpoint is gone for good.
enum Gone {
    Yes,
    No,
}

/// Sends pushes over HTTP/1.1 (TLS with the Mozilla roots).
struct Client {
    vapid: Arc<Vapid>,
    settings: PushSettings,
    tls: tokio_rustls::TlsConnector,
}

impl Client {
    fn new(vapid: Arc<Vapid>, settings: PushSettings) -> Client {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Client {
            vapid,
            settings,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }

    /// What the page's service worker gets: where, who, and (with
    /// previews) the message's first words.
    fn payload(&self, m: &Missed) -> Bytes {
        let preview: Option<String> = self.settings.previews.then(|| {
            let plain = banter_protocol::strip_formatting(&m.text);
            let mut cut: String = plain.chars().take(PREVIEW_CHARS).collect();
            if cut.len() < plain.len() {
                cut.push('…');
            }
            cut
        });
        let body = serde_json::json!({
            "room": m.room.as_ref().map(RoomName::as_str),
            "with": m.room.is_none().then(|| m.from.as_str()),
            "from": m.from.as_str(),
            "id": m.id,
            "text": preview,
        });
        Bytes::from(body.to_string())
    }

    /// What an IRC client's push carries (draft/webpush): the message as
    /// the IRC line it would have read, with its `msgid` and `time`.
    fn irc_payload(&self, m: &Missed) -> Bytes {
        let text = if self.settings.previews {
            m.text.clone()
        } else {
            "(a message)".to_string()
        };
        Bytes::from(crate::transport::irc::push_line(m, &text))
    }

    /// Sends one push, and once more after a failure that may pass.
    async fn deliver(&self, sub: &Subscription, payload: &[u8]) -> Gone {
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(RETRY_AFTER).await;
            }
            match tokio::time::timeout(TIMEOUT, self.post(sub, payload)).await {
                Ok(Ok(status)) if status.is_success() => return Gone::No,
                Ok(Ok(StatusCode::NOT_FOUND | StatusCode::GONE)) => return Gone::Yes,
                // Refused as it stands (a bad key, too large, a redirect):
                // the same again would fare no better.
                Ok(Ok(status)) if status.is_client_error() || status.is_redirection() => {
                    warn!(endpoint = %sub.endpoint, %status, "a push service refused a push");
                    return Gone::No;
                }
                Ok(Ok(status)) => {
                    debug!(endpoint = %sub.endpoint, %status, "a push failed");
                }
                Ok(Err(e)) => debug!(endpoint = %sub.endpoint, error = %e, "a push failed"),
                Err(_) => debug!(endpoint = %sub.endpoint, "a push timed out"),
            }
        }
        Gone::No
    }

    async fn post(&self, sub: &Subscription, payload: &[u8]) -> anyhow::Result<StatusCode> {
        let uri: Uri = sub.endpoint.parse()?;
        let https = uri.scheme_str() == Some("https");
        anyhow::ensure!(https || self.settings.allow_http, "not https");
        let host = uri.host().context("no host")?.to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().context("no host")?.to_string();
        let origin = format!("{}://{authority}", if https { "https" } else { "http" });
        let now = crate::core::router::now_ms() / 1000;
        let authorization = self
            .vapid
            .authorization(&origin, &self.settings.contact, now)?;
        let body = encrypt(sub, payload)?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let request = Request::post(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::AUTHORIZATION, authorization)
            .header(hyper::header::CONTENT_ENCODING, "aes128gcm")
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .header("TTL", TTL_SECS.to_string())
            .header("Urgency", "high")
            .body(Full::new(Bytes::from(body)))?;
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        // Accounts name the endpoints: none may make the server post into
        // its own network (a test push service needs --push-allow-http).
        let peer = tcp.peer_addr()?.ip();
        anyhow::ensure!(
            self.settings.allow_http || is_public(peer),
            "the endpoint's address {peer} is not a public one"
        );
        if https {
            let name = rustls::pki_types::ServerName::try_from(host)?;
            let tls = self.tls.connect(name, tcp).await?;
            send(TokioIo::new(tls), request).await
        } else {
            send(TokioIo::new(tcp), request).await
        }
    }
}

/// Whether `ip` is an address on the internet: not loopback, private,
/// link-local, shared (CGNAT), unspecified, multicast or documentation.
fn is_public(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || first & 0xfe00 == 0xfc00
                    || first & 0xffc0 == 0xfe80)
            }
        },
    }
}

/// One request on a fresh HTTP/1.1 connection; its status.
async fn send<T>(io: T, request: Request<Full<Bytes>>) -> anyhow::Result<StatusCode>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let response = sender.send_request(request).await?;
    Ok(response.status())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_take_pushes() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:4700::6810:85e5", "::ffff:8.8.8.8"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn subscriptions_are_checked() {
        let keys = |p256dh: &str, auth: &str| PushKeys {
            p256dh: p256dh.into(),
            auth: auth.into(),
        };
        let point = URL_SAFE_NO_PAD.encode([4u8; 65]);
        let auth = URL_SAFE_NO_PAD.encode([1u8; 16]);
        let good = keys(&point, &auth);
        assert!(Subscription::parse("https://push.example/a", &good, false, false).is_ok());
        assert!(Subscription::parse("http://push.example/a", &good, false, false).is_err());
        assert!(Subscription::parse("http://127.0.0.1:9/a", &good, true, false).is_ok());
        assert!(Subscription::parse("https:///a", &good, false, false).is_err());
        let long = format!("https://push.example/{}", "a".repeat(MAX_ENDPOINT_BYTES));
        assert!(Subscription::parse(&long, &good, false, false).is_err());
        let compressed = URL_SAFE_NO_PAD.encode([2u8; 65]);
        assert!(
            Subscription::parse(
                "https://p.example/",
                &keys(&compressed, &auth),
                false,
                false
            )
            .is_err()
        );
        assert!(
            Subscription::parse("https://p.example/", &keys(&point, "AAAA"), false, false).is_err()
        );
    }
}
