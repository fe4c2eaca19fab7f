//! What every session and listener shares ([`Context`]), and how it is
//! built from the settings: the store (unless `--memory-only`), the
//! broker (with `--broker`), the router on the port they make, the
//! password hasher and the limits. The server binds the listeners around
//! it; the transports and sessions only read it.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::admin::{Admins, ServerBans};
use crate::auth::{Hasher, Limiter};
use crate::broker::port::Clustered;
use crate::broker::{Broker, Link};
use crate::config::Settings;
use crate::core::port::{Memory, Port};
use crate::core::router::{Router, RouterConfig};
use crate::limits::{AddressLimits, AddressRules, Quota};
use crate::store::{Backend, Mailbox, Store, Syncing};

/// What every session and listener shares.
pub struct Context {
    pub settings: Settings,
    pub router: Arc<Router>,
    /// `None` with `--memory-only`: history in memory, no accounts.
    pub store: Option<Store>,
    /// Web Push (with a store): the VAPID key and the pusher.
    pub push: Option<(Arc<crate::push::Vapid>, Arc<crate::push::Pusher>)>,
    /// In cluster mode: the broker, as `/readyz` checks it.
    pub broker: Option<crate::broker::Running>,
    /// In cluster mode: this node's link to the broker (sessions claim
    /// their nicks through it).
    pub link: Option<crate::broker::Link>,
    pub hasher: Hasher,
    /// Wrong passwords, per account and per address.
    pub limiter: Limiter,
    /// Accounts created, per address.
    pub registrations: Quota,
    /// Who administers the server.
    pub admins: Admins,
    /// Server bans (K-lines), checked at every `hello`.
    pub server_bans: ServerBans,
    /// Rooms brought into being, per address and per account.
    pub new_rooms: Quota,
    /// Cancelled once, when the server starts shutting down.
    pub shutdown: CancellationToken,
    /// Every session's deadline, and the shutdown notice to each.
    pub alarms: crate::alarms::Alarms,
    /// Every connection's task, so shutdown can wait for them.
    pub tracker: TaskTracker,
    /// One permit per open connection, all transports together.
    pub connections: Arc<Semaphore>,
    /// Open connections and handshakes per client address.
    pub addresses: Arc<AddressLimits>,
    /// Set once every listener runs; cleared when shutdown begins.
    pub listening: AtomicBool,
}

impl Context {
    /// Opens the store (unless `--memory-only`) and the broker (with
    /// `--broker`), and builds the router on the port they make.
    pub async fn open(settings: Settings, shutdown: CancellationToken) -> anyhow::Result<Self> {
        let broker = match &settings.broker {
            Some(url) => Some(join_cluster(&settings, url).await?),
            None => None,
        };
        let link = broker.as_ref().map(|b| b.link.clone());
        let (router, store) = build_router(&settings, link.as_ref()).await?;
        let (granted, bans) = match &store {
            Some(store) => (
                store.admin_names().await?,
                store.server_bans(crate::core::router::now_ms()).await?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        if let (Some(store), None) = (&store, &broker) {
            // Not an account banned from the server (K-line).
            let banned: Vec<_> = bans.iter().filter_map(|b| b.account.clone()).collect();
            restore_always_on(&router, store, &settings, &banned).await?;
        }
        let broker = match broker {
            Some(b) => Some(
                b.start(router.clone(), store.clone(), shutdown.clone())
                    .await?,
            ),
            None => None,
        };
        let push = match &store {
            Some(store) => {
                let vapid = Arc::new(crate::push::Vapid::load_or_create(store).await?);
                let contact = match settings.push_contact.as_str() {
                    "" => format!("mailto:admin@{}", settings.server_name()),
                    given => given.to_string(),
                };
                let push_settings = crate::push::PushSettings {
                    allow_http: settings.push_allow_http,
                    contact,
                    previews: settings.push_previews,
                };
                let pusher =
                    crate::push::Pusher::start(store.clone(), vapid.clone(), push_settings).await?;
                router.set_notify(pusher.clone());
                Some((vapid, pusher))
            }
            None => None,
        };
        Ok(Context {
            broker,
            link,
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            addresses: AddressLimits::new(AddressRules {
                max_connections: settings.max_connections_per_address,
                handshake_rate: settings.handshake_rate,
                handshake_burst: settings.handshake_burst,
            }),
            listening: AtomicBool::new(false),
            hasher: Hasher::limited(
                settings.argon2_memory_kib,
                settings.argon2_concurrency,
                Duration::from_secs(settings.argon2_wait),
            )?,
            limiter: Limiter::default(),
            registrations: Quota::per_hour(settings.registrations_per_hour),
            admins: Admins::new(&settings.server_admin, granted),
            server_bans: ServerBans::new(bans),
            new_rooms: Quota::per_hour(settings.new_rooms_per_hour),
            settings,
            router,
            store,
            push,
            shutdown,
            alarms: crate::alarms::Alarms::default(),
            tracker: TaskTracker::new(),
        })
    }
}

/// Always-on accounts are back in their stored rooms as the server starts,
/// away with no device until they log in (not in a cluster: see
/// `Router::keep_offline`).
async fn restore_always_on(
    router: &Router,
    store: &Store,
    settings: &Settings,
    banned: &[banter_protocol::Nick],
) -> anyhow::Result<()> {
    let limit = settings
        .max_connections
        .saturating_mul(settings.max_rooms_per_session);
    let mut restored = 0;
    for (account, rooms) in store.always_on_memberships(limit).await? {
        if banned.contains(&account) {
            continue;
        }
        let rooms: Vec<_> = rooms
            .into_iter()
            .take(settings.max_rooms_per_session)
            .collect();
        for room in &rooms {
            if !router.has_room(room) {
                let state = store.load_room(room, settings.history_len).await?;
                if router.insert_room(room.clone(), state).is_err() {
                    break;
                }
            }
        }
        restored += usize::from(router.restore(account, rooms));
    }
    if restored > 0 {
        info!(
            accounts = restored,
            "always-on accounts are back in their rooms, away until they log in"
        );
    }
    Ok(())
}

/// Connects to the broker at `url`, once the settings allow a cluster (a
/// store every node shares, or none).
async fn join_cluster(settings: &Settings, url: &str) -> anyhow::Result<Broker> {
    let shared = settings.memory_only
        || matches!(
            Backend::from_settings(settings.store.as_deref(), &settings.data_dir)?,
            Backend::Postgres(_)
        );
    anyhow::ensure!(
        shared,
        "--broker needs a store that every node shares: --store postgres://… (or --memory-only)"
    );
    let node = crate::broker::node_name(settings.node_name.as_deref())?;
    let linger = Duration::from_millis(settings.broker_linger_ms);
    let broker = Broker::connect(url, node, linger).await?;
    info!(
        broker = %crate::store::redact(url),
        node = %broker.link.node,
        "cluster mode: joining the other nodes through the broker"
    );
    Ok(broker)
}

/// The router on its port: memory, or the store (whose writer, started
/// once the router exists, gives events back committed); in a cluster,
/// the broker's port around either.
async fn build_router(
    settings: &Settings,
    link: Option<&Link>,
) -> anyhow::Result<(Arc<Router>, Option<Store>)> {
    let config = RouterConfig {
        max_text_bytes: settings.max_text_bytes,
        max_rooms_per_session: settings.max_rooms_per_session,
        max_devices: settings.max_devices,
        max_offline: settings.max_connections,
        max_rooms: settings.max_rooms,
        history_len: settings.history_len,
        max_lines: settings.max_lines,
        edit_window_ms: settings.edit_window_secs.saturating_mul(1000),
    };
    let cluster = |port: Box<dyn Port>| -> Box<dyn Port> {
        match link {
            Some(link) => Box::new(Clustered::new(link.clone(), port)),
            None => port,
        }
    };
    if settings.memory_only {
        info!(
            "history is kept in memory only (--memory-only): no accounts, nothing survives a restart"
        );
        let port = cluster(Box::new(Memory));
        return Ok((
            Arc::new(Router::with_port(config, port, Vec::new(), 0)),
            None,
        ));
    }
    let backend = Backend::from_settings(settings.store.as_deref(), &settings.data_dir)?;
    let syncing = Syncing::from_ms(settings.sync_every_ms);
    let (store, writer) = Store::prepare_with(&backend, syncing).await?;
    let store = store.with_mailbox(Mailbox {
        per_recipient: settings.max_waiting_whispers,
        per_sender: settings.max_waiting_whispers_per_sender,
    });
    let synced = match (&backend, syncing) {
        (Backend::Sqlite(_), Syncing::Every(every)) => {
            format!(
                "; synced to disk every {} ms (--sync-every)",
                every.as_millis()
            )
        }
        (Backend::Sqlite(_), Syncing::EveryCommit | Syncing::Beside) => {
            "; synced to disk in every commit".into()
        }
        (Backend::Postgres(_), _) => String::new(),
    };
    info!("data: {}{synced}", backend.describe());
    let router = Arc::new(Router::with_port(
        config,
        cluster(Box::new(store.port())),
        store.account_names().await?,
        store.last_direct_id().await?,
    ));
    let apply_to = router.clone();
    writer.start(move |events, verdict| apply_to.apply(events, verdict));
    Ok((router, Some(store)))
}
