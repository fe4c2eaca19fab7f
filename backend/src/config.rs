//! Settings: built-in defaults, overlaid by a TOML file (`--config`), then by
//! `BANTER_*` environment variables, then by command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use serde::Deserialize;

use crate::net::forwarded::{Cidr, normalize_origin};

/// The longest `--broker-linger`: a node leaving the cluster gives its
/// last changes about twice this long to go out and be read back.
pub const MAX_BROKER_LINGER_MS: u64 = 100;

/// Every setting, with its default. TOML keys are the flag names
/// (`max-text-bytes = 2048`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub irc: SocketAddr,
    pub data_dir: PathBuf,
    /// Serve the web client from this directory instead of the built-in one.
    pub web_dir: Option<PathBuf>,
    pub log: String,
    pub max_connections: usize,
    pub max_frame_bytes: usize,
    pub max_text_bytes: usize,
    pub max_rooms_per_session: usize,
    /// Most connections logged into one account at once.
    pub max_devices: usize,
    pub max_rooms: usize,
    pub history_len: usize,
    /// Most lines in one message (IRC `draft/multiline`'s `max-lines`).
    pub max_lines: usize,
    /// How long after sending a message its sender may edit it (seconds;
    /// 0: no edits).
    pub edit_window_secs: u64,
    /// How often the SQLite store syncs its log to disk, in milliseconds
    /// (0: every commit, before anyone sees what it holds).
    pub sync_every_ms: u64,
    /// Web Push endpoints may be plain `http://` (for a test push service).
    pub push_allow_http: bool,
    /// The VAPID contact push services are given (`mailto:` or `https:`);
    /// empty: `mailto:admin@<server name>`.
    pub push_contact: String,
    /// Pushes carry the first words of the message.
    pub push_previews: bool,
    pub outbox_len: usize,
    /// What a session's queued frames may weigh together (about their JSON
    /// size), besides `outbox_len`.
    pub outbox_bytes: usize,
    pub handshake_timeout: u64,
    pub idle_timeout: u64,
    pub ping_timeout: u64,
    pub write_timeout: u64,
    pub shutdown_grace: u64,
    pub irc_flood_burst: u32,
    pub irc_flood_rate: u32,
    /// IRC lines over the rate that wait their turn before the client is
    /// disconnected for excess flood.
    pub irc_flood_backlog: u32,
    /// Recent messages a JOIN replays to an IRC client with `server-time`
    /// (and without `draft/chathistory`); 0: none.
    pub irc_join_replay: u32,
    /// The server's name on IRC, in every prefix and PONG (default: the
    /// host name).
    pub server_name: Option<String>,
    /// No store: history in memory only, no accounts (benchmarks, tests).
    pub memory_only: bool,
    /// Cluster mode: the Redis URL of the broker that joins the nodes.
    pub broker: Option<String>,
    /// This node's name in the cluster (default: host name and a random
    /// number, new at every start).
    pub node_name: Option<String>,
    /// Under steady traffic, the broker's publisher sends at most one
    /// batch of changes per this many milliseconds (0: each as soon as it
    /// can; at most [`MAX_BROKER_LINGER_MS`]).
    pub broker_linger_ms: u64,
    /// The store's database: `postgres://…` (or `postgresql://…`) for
    /// PostgreSQL, `sqlite://PATH` for a SQLite file; `None`: the SQLite
    /// file `<data-dir>/banter.db`.
    pub store: Option<String>,
    /// Seconds a message is kept (0: forever).
    pub retain_age: u64,
    /// Messages kept per room (0: all).
    pub retain_count: u64,
    /// Seconds between retention sweeps.
    pub retention_interval: u64,
    /// Memory for one argon2id password hash, in KiB.
    pub argon2_memory_kib: u32,
    /// Chat messages (say, whisper) a session may send a second (0: no
    /// limit), after a burst of `message_burst`.
    pub message_rate: f64,
    pub message_burst: u32,
    /// Joins a session may make a second (0: no limit), after a burst.
    pub join_rate: f64,
    pub join_burst: u32,
    /// Other requests that write or broadcast (nick, away, topic, kick,
    /// ban, op, logout, ...) a session may make a second (0: no limit),
    /// after a burst.
    pub change_rate: f64,
    pub change_burst: u32,
    /// Who may create an account.
    pub registration: Registration,
    /// Accounts one address may create an hour (0: no limit), all at once
    /// at most.
    pub registrations_per_hour: u32,
    /// Rooms one address, and one account, may bring into being an hour
    /// (0: no limit), all at once at most.
    pub new_rooms_per_hour: u32,
    /// Days a login token lasts unused (each login with it renews it).
    pub token_days: u32,
    /// Whispers that may wait for one offline account, in all and from
    /// one sender.
    pub max_waiting_whispers: u32,
    pub max_waiting_whispers_per_sender: u32,
    /// Open connections per client address (0: no limit).
    pub max_connections_per_address: usize,
    /// New connections per client address a second (0: no limit), after
    /// a burst.
    pub handshake_rate: f64,
    pub handshake_burst: u32,
    /// `text` (human) or `json` (one object per line).
    pub log_format: LogFormat,
    /// Password hashes computed at once; more wait.
    pub argon2_concurrency: usize,
    /// Seconds a password check may wait for its turn before `busy`.
    pub argon2_wait: u64,
    /// Peers whose `X-Forwarded-*`/`Forwarded` headers (and PROXY
    /// protocol headers) are believed.
    pub trusted_proxy: Vec<Cidr>,
    /// Page origins besides the server's own that may open `/ws`.
    pub allowed_origin: Vec<String>,
    /// Accounts that administer the server (besides those granted by
    /// `banter admin grant`).
    pub server_admin: Vec<String>,
    /// PEM certificate chain and private key for every TLS listener.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// HTTPS (and WSS) on the HTTP listener.
    pub http_tls: bool,
    /// TLS on the JSON-lines listener.
    pub tcp_tls: bool,
    /// A second IRC listener, with TLS (6697 by convention).
    pub irc_tls: Option<SocketAddr>,
    /// The PROXY protocol (v1/v2) is required on the JSON-lines listener.
    pub tcp_proxy_protocol: bool,
    /// ... and on the IRC listeners.
    pub irc_proxy_protocol: bool,
    /// "I know": a `trusted-proxy` range may cover every address, and the
    /// PROXY protocol may be on with no `trusted-proxy` (any peer sends it).
    pub trust_any_peer: bool,
    /// A listener for operators: `/healthz`, `/readyz` with the error in
    /// full, and `/metrics`.
    pub admin: Option<SocketAddr>,
    /// Also serve `/metrics` on the chat port (`--http`), to anyone.
    pub metrics_public: bool,
}

/// Who may create an account with `register` (IRC: through the web or
/// JSON clients).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Registration {
    /// Anyone (within --registrations-per-hour).
    #[default]
    Open,
    /// Nobody: accounts that exist keep working.
    Closed,
    /// With an invite code (`banter invite`), each good for a number of
    /// accounts.
    Invite,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            http: "127.0.0.1:8080".parse().unwrap(),
            tcp: "127.0.0.1:7878".parse().unwrap(),
            irc: "127.0.0.1:6667".parse().unwrap(),
            data_dir: PathBuf::from("data"),
            web_dir: None,
            log: "info".into(),
            max_connections: 10_000,
            max_frame_bytes: banter_protocol::codec::DEFAULT_MAX_LINE,
            max_text_bytes: banter_protocol::DEFAULT_MAX_TEXT_BYTES,
            max_rooms_per_session: 50,
            max_devices: 10,
            max_rooms: 10_000,
            history_len: 100,
            max_lines: banter_protocol::DEFAULT_MAX_LINES,
            edit_window_secs: 24 * 3600,
            sync_every_ms: 1000,
            push_allow_http: false,
            push_contact: String::new(),
            push_previews: true,
            outbox_len: 1024,
            outbox_bytes: 1 << 20,
            handshake_timeout: 10,
            idle_timeout: 60,
            ping_timeout: 30,
            write_timeout: 30,
            shutdown_grace: 5,
            irc_flood_burst: 30,
            irc_flood_rate: 2,
            irc_flood_backlog: 100,
            irc_join_replay: 50,
            server_name: None,
            memory_only: false,
            broker: None,
            node_name: None,
            broker_linger_ms: 3,
            store: None,
            retain_age: 0,
            retain_count: 0,
            retention_interval: 3600,
            argon2_memory_kib: 19 * 1024,
            message_rate: 5.0,
            message_burst: 20,
            join_rate: 1.0,
            join_burst: 20,
            change_rate: 1.0,
            change_burst: 10,
            registration: Registration::Open,
            registrations_per_hour: 10,
            new_rooms_per_hour: 30,
            token_days: 90,
            max_waiting_whispers: 100,
            max_waiting_whispers_per_sender: 20,
            max_connections_per_address: 50,
            handshake_rate: 5.0,
            handshake_burst: 30,
            log_format: LogFormat::Text,
            argon2_concurrency: 4,
            argon2_wait: 10,
            trusted_proxy: Vec::new(),
            allowed_origin: Vec::new(),
            server_admin: Vec::new(),
            tls_cert: None,
            tls_key: None,
            http_tls: false,
            tcp_tls: false,
            irc_tls: None,
            tcp_proxy_protocol: false,
            irc_proxy_protocol: false,
            trust_any_peer: false,
            admin: None,
            metrics_public: false,
        }
    }
}

/// This machine's host name (empty if it can't be read).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A server name IRC clients accept: 1 to 63 characters of letters,
/// digits, `.` and `-`.
fn check_server_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if !ok {
        bail!(
            "server-name {name:?} is not a host name: write 1 to 63 letters, digits, '.' and '-', like irc.example.org"
        );
    }
    Ok(())
}

impl Settings {
    /// The IRC server name: as set, else the host name (else `banter`).
    pub fn server_name(&self) -> String {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        let host = host_name();
        if check_server_name(&host).is_ok() {
            host
        } else {
            "banter".to_string()
        }
    }

    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs(self.handshake_timeout)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout)
    }
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_secs(self.ping_timeout)
    }
    pub fn write_timeout(&self) -> Duration {
        Duration::from_secs(self.write_timeout)
    }
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace)
    }

    /// Refuses combinations that cannot work, with a sentence saying why.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.max_lines == 0 {
            anyhow::bail!("--max-lines must be at least 1");
        }
        if self.broker_linger_ms > MAX_BROKER_LINGER_MS {
            bail!(
                "broker-linger-ms ({}) must be at most {MAX_BROKER_LINGER_MS}: a node leaving the cluster waits briefly for its last changes",
                self.broker_linger_ms
            );
        }
        if self.max_text_bytes == 0 || self.max_frame_bytes < self.max_text_bytes + 256 {
            bail!(
                "max-frame-bytes ({}) must exceed max-text-bytes ({}) by at least 256 bytes of JSON framing",
                self.max_frame_bytes,
                self.max_text_bytes
            );
        }
        for (name, value) in [
            ("max-connections", self.max_connections),
            ("max-rooms-per-session", self.max_rooms_per_session),
            ("max-devices", self.max_devices),
            ("max-rooms", self.max_rooms),
            ("outbox-len", self.outbox_len),
            ("outbox-bytes", self.outbox_bytes),
            ("irc-flood-burst", self.irc_flood_burst as usize),
            ("irc-flood-rate", self.irc_flood_rate as usize),
            ("retention-interval", self.retention_interval as usize),
            ("argon2-concurrency", self.argon2_concurrency),
            ("max-waiting-whispers", self.max_waiting_whispers as usize),
            ("token-days", self.token_days as usize),
            (
                "max-waiting-whispers-per-sender",
                self.max_waiting_whispers_per_sender as usize,
            ),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        for (name, secs) in [
            ("handshake-timeout", self.handshake_timeout),
            ("idle-timeout", self.idle_timeout),
            ("ping-timeout", self.ping_timeout),
            ("write-timeout", self.write_timeout),
        ] {
            if secs == 0 {
                bail!("{name} must be at least 1 second");
            }
        }
        for (name, rate) in [
            ("message-rate", self.message_rate),
            ("join-rate", self.join_rate),
            ("change-rate", self.change_rate),
            ("handshake-rate", self.handshake_rate),
        ] {
            if !rate.is_finite() || rate < 0.0 {
                bail!("{name} must be 0 (no limit) or a positive number");
            }
        }
        if self.memory_only && self.store.is_some() {
            bail!("--memory-only keeps no store: drop either it or --store");
        }
        crate::store::Backend::from_settings(self.store.as_deref(), &self.data_dir)?;
        if self.argon2_memory_kib < 8 {
            bail!("argon2-memory-kib must be at least 8");
        }
        for origin in &self.allowed_origin {
            if normalize_origin(origin).is_none() {
                bail!(
                    "allowed-origin {origin:?} is not an origin: write scheme://host[:port], like https://chat.example.com"
                );
            }
        }
        if let Some(name) = &self.server_name {
            check_server_name(name)?;
        }
        for name in &self.server_admin {
            if banter_protocol::Nick::new(name).is_err() {
                bail!("server-admin {name:?} is not an account name");
            }
        }
        self.validate_proxies()?;
        let tls_used = self.http_tls || self.tcp_tls || self.irc_tls.is_some();
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), Some(_)) if !tls_used => bail!(
                "tls-cert is set but no listener uses TLS: add --http-tls, --tcp-tls or --irc-tls ADDR"
            ),
            (Some(_), Some(_)) => {}
            (None, None) if tls_used => bail!(
                "--http-tls, --tcp-tls and --irc-tls need a certificate: give --tls-cert and --tls-key"
            ),
            (None, None) => {}
            _ => bail!("tls-cert and tls-key go together: give both"),
        }
        Ok(())
    }
}

impl Settings {
    /// Refuses proxy settings that let any client choose its own address
    /// (and so escape every per-address limit), unless `--trust-any-peer`
    /// says that every peer really is a proxy.
    fn validate_proxies(&self) -> anyhow::Result<()> {
        if self.trust_any_peer {
            return Ok(());
        }
        if let Some(all) = self.trusted_proxy.iter().find(|c| c.0.prefix_len() == 0) {
            bail!(
                "--trusted-proxy {all} trusts every address, so any client could name its own \
                 address in X-Forwarded-For or a PROXY header and escape the per-address limits: \
                 list your proxies' addresses or network instead (like 10.0.0.5 or 172.28.0.0/24), \
                 or add --trust-any-peer if every peer that can reach banter is a proxy"
            );
        }
        if (self.tcp_proxy_protocol || self.irc_proxy_protocol) && self.trusted_proxy.is_empty() {
            bail!(
                "--tcp-proxy-protocol and --irc-proxy-protocol believe the client address in the \
                 PROXY header, so they need --trusted-proxy naming the balancers that may send it \
                 (or --trust-any-peer if no one else can reach these ports)"
            );
        }
        Ok(())
    }
}

/// What to do instead of serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Writes a consistent copy of the SQLite database (in --data-dir, or
    /// --store sqlite://FILE) to PATH, a new file; safe while the server
    /// runs (SQLite VACUUM INTO). For PostgreSQL use pg_dump.
    Backup {
        /// The new file.
        path: PathBuf,
    },
    /// Grants or revokes server administration, or lists who has it
    /// (safe while the server runs; takes effect at the account's next
    /// login).
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Makes an invite code for --registration invite and prints it: give
    /// it to whoever may create an account (in the web client's "Invite
    /// code", or `"invite"` in a JSON `register`). Safe while the server
    /// runs.
    Invite {
        /// Accounts the code may create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Days the code stays good.
        #[arg(long, default_value_t = 7)]
        days: u32,
    },
}

/// What `banter admin` does.
#[derive(Debug, clap::Subcommand)]
pub enum AdminAction {
    /// Makes the account NAME a server administrator.
    Grant { name: String },
    /// Makes NAME no longer one (unless named by --server-admin).
    Revoke { name: String },
    /// Lists the server administrators.
    List,
}

/// Banter: a chat server where browser (WebSocket), TCP (JSON lines) and
/// IRC users talk in the same rooms.
///
/// Every option can also be set in the TOML file given by --config (same
/// names, e.g. `max-text-bytes = 2048`) or by an environment variable
/// (`BANTER_MAX_TEXT_BYTES=2048`). Flags beat the environment, which beats
/// the file, which beats the defaults. Times are in seconds.
#[derive(Debug, Default, Parser)]
#[command(name = "banter", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// TOML file with settings (keys are the long flag names).
    #[arg(long, env = "BANTER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address for HTTP: the web client at /, the WebSocket endpoint /ws,
    /// /healthz and /readyz (/metrics is on --admin). Port 0
    /// picks a free port. [default: 127.0.0.1:8080]
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_HTTP",
        value_name = "ADDR"
    )]
    pub http: Option<SocketAddr>,
    /// Address for the JSON-lines TCP transport. [default: 127.0.0.1:7878]
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_TCP",
        value_name = "ADDR"
    )]
    pub tcp: Option<SocketAddr>,
    /// Address for IRC clients (irssi, WeeChat, HexChat, bots).
    /// [default: 127.0.0.1:6667]
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_IRC",
        value_name = "ADDR"
    )]
    pub irc: Option<SocketAddr>,
    /// Directory for persistent data. [default: data]
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_DATA_DIR",
        value_name = "DIR"
    )]
    pub data_dir: Option<PathBuf>,
    /// Serve the web client from this directory (e.g. frontend/dist while
    /// working on it) instead of the one built into banter.
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_WEB_DIR",
        value_name = "DIR"
    )]
    pub web_dir: Option<PathBuf>,
    /// Log filter, in tracing's EnvFilter syntax (RUST_LOG also works).
    /// [default: info]
    #[arg(
        help_heading = "Logging",
        long,
        env = "BANTER_LOG",
        value_name = "FILTER"
    )]
    pub log: Option<String>,
    /// Most simultaneous connections, all transports together.
    /// [default: 10000]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_CONNECTIONS",
        value_name = "N"
    )]
    pub max_connections: Option<usize>,
    /// Longest WebSocket text frame or TCP line, in bytes. [default: 16384]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_FRAME_BYTES",
        value_name = "BYTES"
    )]
    pub max_frame_bytes: Option<usize>,
    /// Longest message text, in UTF-8 bytes. [default: 4096]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_TEXT_BYTES",
        value_name = "BYTES"
    )]
    pub max_text_bytes: Option<usize>,
    /// Most lines in one message (a multi-line paste; IRC
    /// `draft/multiline`'s `max-lines`). [default: 100]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_LINES",
        value_name = "N"
    )]
    pub max_lines: Option<usize>,
    /// How long after sending a message its sender may still edit it, in
    /// seconds (0: messages cannot be edited). Deleting your own message,
    /// or any in a room you operate, has no time limit. [default: 86400]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_EDIT_WINDOW",
        value_name = "SECS"
    )]
    pub edit_window: Option<u64>,
    /// How often the SQLite store syncs what it committed to disk, in
    /// milliseconds. A message is echoed and delivered once its commit is
    /// written, so a crash of banter (even kill -9) loses nothing anyone
    /// saw; a power cut or a crash of the machine may lose what was
    /// committed since the last sync. 0 syncs every commit before
    /// delivering it (nothing acknowledged is lost even then, at a cost in
    /// latency and CPU). PostgreSQL keeps its own settings
    /// (synchronous_commit). [default: 1000]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_SYNC_EVERY",
        value_name = "MS"
    )]
    pub sync_every: Option<u64>,
    /// Let Web Push endpoints be plain http:// URLs (only for a test push
    /// service on loopback; browsers' push services are https).
    #[arg(help_heading = "Web Push", long, env = "BANTER_PUSH_ALLOW_HTTP")]
    pub push_allow_http: bool,
    /// How push services may reach the server's operator (the VAPID
    /// contact): a mailto: or https: URL. [default: mailto:admin@<server
    /// name>]
    #[arg(
        help_heading = "Web Push",
        long,
        env = "BANTER_PUSH_CONTACT",
        value_name = "URL"
    )]
    pub push_contact: Option<String>,
    /// Whether pushes carry the first words of the message (else only who
    /// wrote, and where). [default: true]
    #[arg(
        help_heading = "Web Push",
        long,
        env = "BANTER_PUSH_PREVIEWS",
        value_name = "BOOL"
    )]
    pub push_previews: Option<bool>,
    /// Most rooms one session may be in at once. [default: 50]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_ROOMS_PER_SESSION",
        value_name = "N"
    )]
    pub max_rooms_per_session: Option<usize>,
    /// Most connections (devices) logged into one account at once; the
    /// next login gets `too_many_devices`. [default: 10]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_DEVICES",
        value_name = "N"
    )]
    pub max_devices: Option<usize>,
    /// Most rooms the server holds; empty rooms are forgotten first.
    /// [default: 10000]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_ROOMS",
        value_name = "N"
    )]
    pub max_rooms: Option<usize>,
    /// Recent messages kept per room and sent on join. [default: 100]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_HISTORY_LEN",
        value_name = "N"
    )]
    pub history_len: Option<usize>,
    /// Outbound queue per session, in messages. When full, the oldest
    /// queued message is dropped and the client is sent `lagged`.
    /// [default: 1024]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_OUTBOX_LEN",
        value_name = "N"
    )]
    pub outbox_len: Option<usize>,
    /// Outbound queue per session, in bytes (each queued message counts
    /// its JSON size): past it, the oldest queued messages are dropped and
    /// the client is sent `lagged`, as past --outbox-len. The newest
    /// message is always kept. [default: 1048576]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_OUTBOX_BYTES",
        value_name = "BYTES"
    )]
    pub outbox_bytes: Option<usize>,
    /// Seconds a new connection has to send `hello`. [default: 10]
    #[arg(
        help_heading = "Timeouts",
        long,
        env = "BANTER_HANDSHAKE_TIMEOUT",
        value_name = "SECS"
    )]
    pub handshake_timeout: Option<u64>,
    /// Seconds of client silence before the server pings it. [default: 60]
    #[arg(
        help_heading = "Timeouts",
        long,
        env = "BANTER_IDLE_TIMEOUT",
        value_name = "SECS"
    )]
    pub idle_timeout: Option<u64>,
    /// Seconds to wait for any sign of life after a ping before
    /// disconnecting. [default: 30]
    #[arg(
        help_heading = "Timeouts",
        long,
        env = "BANTER_PING_TIMEOUT",
        value_name = "SECS"
    )]
    pub ping_timeout: Option<u64>,
    /// Seconds a client may leave written data unread before it is
    /// disconnected as a slow consumer. [default: 30]
    #[arg(
        help_heading = "Timeouts",
        long,
        env = "BANTER_WRITE_TIMEOUT",
        value_name = "SECS"
    )]
    pub write_timeout: Option<u64>,
    /// Seconds to let sessions close cleanly on shutdown. [default: 5]
    #[arg(
        help_heading = "Timeouts",
        long,
        env = "BANTER_SHUTDOWN_GRACE",
        value_name = "SECS"
    )]
    pub shutdown_grace: Option<u64>,
    /// Lines an IRC client may send at once before flood control slows
    /// it down to the rate. [default: 30]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_IRC_FLOOD_BURST",
        value_name = "LINES"
    )]
    pub irc_flood_burst: Option<u32>,
    /// Lines a second an IRC client may send in the long run. [default: 2]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_IRC_FLOOD_RATE",
        value_name = "LINES"
    )]
    pub irc_flood_rate: Option<u32>,
    /// IRC lines over the rate that may wait their turn; more, and the
    /// client is disconnected ("Excess Flood"). [default: 100]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_IRC_FLOOD_BACKLOG",
        value_name = "LINES"
    )]
    pub irc_flood_backlog: Option<u32>,
    /// Recent messages a JOIN replays to IRC clients that have
    /// `server-time` but not `draft/chathistory` (those ask for what they
    /// miss), in a `chathistory` batch; 0: none (as Ergo's
    /// autoreplay-on-join off). [default: 50]
    #[arg(
        help_heading = "IRC",
        long,
        env = "BANTER_IRC_JOIN_REPLAY",
        value_name = "MESSAGES"
    )]
    pub irc_join_replay: Option<u32>,
    /// The server's name on IRC: the source of its numerics and notices
    /// and what PONG answers, like `irc.example.org` [default: the host
    /// name].
    #[arg(
        help_heading = "IRC",
        long,
        env = "BANTER_SERVER_NAME",
        value_name = "NAME"
    )]
    pub server_name: Option<String>,
    /// Keep history in memory only, with no store and no accounts
    /// (for benchmarks and tests).
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_MEMORY_ONLY"
    )]
    pub memory_only: bool,
    /// Join a cluster of banter nodes through this Redis
    /// (redis://[:PASSWORD@]HOST[:PORT][/DB]). Rooms, nicks, presence,
    /// whispers and message ids are then shared by every node; use it with
    /// a PostgreSQL store (--store) or --memory-only. See docs/cluster.md.
    #[arg(
        help_heading = "Cluster",
        long,
        env = "BANTER_BROKER",
        value_name = "URL"
    )]
    pub broker: Option<String>,
    /// This node's name in the cluster, as logs show it
    /// [default: host name and a random number, new at every start].
    #[arg(
        help_heading = "Cluster",
        long,
        env = "BANTER_NODE_NAME",
        value_name = "NAME"
    )]
    pub node_name: Option<String>,
    /// Under steady traffic, send this node's changes to the broker at most
    /// once per MS milliseconds, gathered: a change after a quiet spell goes
    /// at once, one in a busy stream waits at most MS (a round trip to
    /// Redis costs more CPU than the changes it carries). 0 sends each
    /// change as soon as the last round trip is answered; at most 100.
    /// [default: 3]
    #[arg(
        help_heading = "Cluster",
        long,
        env = "BANTER_BROKER_LINGER",
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(0..=MAX_BROKER_LINGER_MS)
    )]
    pub broker_linger: Option<u64>,
    /// Where history and accounts are kept: postgres://USER:PASSWORD@HOST/DB
    /// (or postgresql://…) for PostgreSQL (the database must exist; banter
    /// creates its tables), sqlite://FILE for a SQLite file. [default: the
    /// SQLite file banter.db in --data-dir]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_STORE",
        value_name = "URL"
    )]
    pub store: Option<String>,
    /// Delete messages older than this many seconds (0: keep them).
    /// [default: 0]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_RETAIN_AGE",
        value_name = "SECS"
    )]
    pub retain_age: Option<u64>,
    /// Keep at most this many messages per room (0: all). [default: 0]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_RETAIN_COUNT",
        value_name = "N"
    )]
    pub retain_count: Option<u64>,
    /// Seconds between retention sweeps. [default: 3600]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_RETENTION_INTERVAL",
        value_name = "SECS"
    )]
    pub retention_interval: Option<u64>,
    /// Memory for one argon2id password hash, in KiB. [default: 19456]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_ARGON2_MEMORY_KIB",
        value_name = "KIB"
    )]
    pub argon2_memory_kib: Option<u32>,
    /// Chat messages (say, whisper) one session may send a second, in the
    /// long run; over it the client gets `rate_limited` saying when to
    /// retry. 0: no limit. [default: 5]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MESSAGE_RATE",
        value_name = "PER_SEC"
    )]
    pub message_rate: Option<f64>,
    /// Chat messages one session may send at once before --message-rate
    /// applies. [default: 20]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MESSAGE_BURST",
        value_name = "N"
    )]
    pub message_burst: Option<u32>,
    /// Rooms one session may join a second, in the long run. 0: no limit.
    /// [default: 1]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_JOIN_RATE",
        value_name = "PER_SEC"
    )]
    pub join_rate: Option<f64>,
    /// Joins one session may make at once before --join-rate applies.
    /// [default: 20]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_JOIN_BURST",
        value_name = "N"
    )]
    pub join_burst: Option<u32>,
    /// Other requests that write or broadcast (nick, away, setting a
    /// topic, kick, ban, unban, op, deop, logout) one session may make a
    /// second, in the long run. 0: no limit. [default: 1]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_CHANGE_RATE",
        value_name = "PER_SEC"
    )]
    pub change_rate: Option<f64>,
    /// Such requests one session may make at once before --change-rate
    /// applies. [default: 10]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_CHANGE_BURST",
        value_name = "N"
    )]
    pub change_burst: Option<u32>,
    /// Who may create an account: open (anyone), invite (with a code made
    /// by `banter invite`) or closed (nobody; existing accounts keep
    /// working). [default: open]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_REGISTRATION",
        value_name = "WHO"
    )]
    pub registration: Option<Registration>,
    /// Accounts one client address (an IPv6 /64) may create an hour, all
    /// of them at once at most. 0: no limit. [default: 10]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_REGISTRATIONS_PER_HOUR",
        value_name = "N"
    )]
    pub registrations_per_hour: Option<u32>,
    /// Rooms one client address, and one account, may bring into being
    /// (join when nobody is in them) an hour, all at once at most. 0: no
    /// limit. [default: 30]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_NEW_ROOMS_PER_HOUR",
        value_name = "N"
    )]
    pub new_rooms_per_hour: Option<u32>,
    /// Days a login token stays valid while unused; every login with it
    /// renews it. [default: 90]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_TOKEN_DAYS",
        value_name = "DAYS"
    )]
    pub token_days: Option<u32>,
    /// Whispers that may wait for one offline account until it logs in;
    /// more are refused (`mailbox_full`). [default: 100]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_WAITING_WHISPERS",
        value_name = "N"
    )]
    pub max_waiting_whispers: Option<u32>,
    /// Of those, whispers from one sender (an account; all guests
    /// together count as one). [default: 20]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_WAITING_WHISPERS_PER_SENDER",
        value_name = "N"
    )]
    pub max_waiting_whispers_per_sender: Option<u32>,
    /// Open connections from one client address (an IPv6 /64 counts as
    /// one), all transports together. 0: no limit. [default: 50]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_MAX_CONNECTIONS_PER_ADDRESS",
        value_name = "N"
    )]
    pub max_connections_per_address: Option<usize>,
    /// New connections one client address may open a second, in the long
    /// run. 0: no limit. [default: 5]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_HANDSHAKE_RATE",
        value_name = "PER_SEC"
    )]
    pub handshake_rate: Option<f64>,
    /// New connections one address may open at once before
    /// --handshake-rate applies. [default: 30]
    #[arg(
        help_heading = "Limits",
        long,
        env = "BANTER_HANDSHAKE_BURST",
        value_name = "N"
    )]
    pub handshake_burst: Option<u32>,
    /// Log format: text for people, json (one object per line) for log
    /// collectors. [default: text]
    #[arg(
        help_heading = "Logging",
        long,
        env = "BANTER_LOG_FORMAT",
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,
    /// Most password hashes (logins, registrations) computed at once; each
    /// takes a core and --argon2-memory-kib of memory. [default: 4]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_ARGON2_CONCURRENCY",
        value_name = "N"
    )]
    pub argon2_concurrency: Option<usize>,
    /// Seconds a login or registration waits for a free hashing slot
    /// before it is refused with `busy` (0: refuse at once). [default: 10]
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_ARGON2_WAIT",
        value_name = "SECS"
    )]
    pub argon2_wait: Option<u64>,
    /// A reverse proxy (address or CIDR range) whose X-Forwarded-For,
    /// X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are
    /// believed, and which may send PROXY protocol headers. Repeatable
    /// (or comma-separated). The client address is the rightmost one in
    /// those headers that is not a trusted proxy.
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_TRUSTED_PROXY",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    pub trusted_proxy: Option<Vec<Cidr>>,
    /// Another page origin (scheme://host[:port]) allowed to open /ws,
    /// besides the page's own. Repeatable (or comma-separated).
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_ALLOWED_ORIGIN",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origin: Option<Vec<String>>,
    /// An account that administers the server: may kick, ban and take
    /// over any room, end sessions, remove accounts and ban addresses or
    /// accounts from the server. Repeatable (or comma-separated); more
    /// with `banter admin grant NAME`.
    #[arg(
        help_heading = "History and accounts",
        long,
        env = "BANTER_SERVER_ADMIN",
        value_name = "ACCOUNT",
        value_delimiter = ','
    )]
    pub server_admin: Option<Vec<String>>,
    /// PEM certificate chain for the TLS listeners; reloaded on SIGHUP.
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_TLS_CERT",
        value_name = "FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert; reloaded on SIGHUP.
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_TLS_KEY",
        value_name = "FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS (and WSS) instead of HTTP on --http.
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_HTTP_TLS"
    )]
    pub http_tls: bool,
    /// Use TLS on the JSON-lines port (--tcp).
    #[arg(help_heading = "TLS and reverse proxies", long, env = "BANTER_TCP_TLS")]
    pub tcp_tls: bool,
    /// Also listen for IRC over TLS on this address (6697 by convention).
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_IRC_TLS",
        value_name = "ADDR"
    )]
    pub irc_tls: Option<SocketAddr>,
    /// Require a PROXY protocol (v1 or v2) header on the JSON-lines port
    /// (behind HAProxy or nginx stream); the client address comes from it.
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_TCP_PROXY_PROTOCOL"
    )]
    pub tcp_proxy_protocol: bool,
    /// Require a PROXY protocol header on the IRC ports (plain and TLS).
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_IRC_PROXY_PROTOCOL"
    )]
    pub irc_proxy_protocol: bool,
    /// I know what this does: allow a --trusted-proxy range that covers
    /// every address (0.0.0.0/0, ::/0), and the PROXY protocol with no
    /// --trusted-proxy. Any peer's forwarded or PROXY headers then name
    /// the client, so only use it when nothing but proxies can reach
    /// banter. [default: off: such settings stop startup]
    #[arg(
        help_heading = "TLS and reverse proxies",
        long,
        env = "BANTER_TRUST_ANY_PEER"
    )]
    pub trust_any_peer: bool,
    /// A listener for operators (bind it to loopback or a private
    /// network): /healthz, /readyz with the store's or broker's error in
    /// full, and /metrics (Prometheus). No TLS, no limits. [default: none:
    /// /metrics is not served, and /readyz on --http says only which part
    /// is not ready]
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_ADMIN",
        value_name = "ADDR"
    )]
    pub admin: Option<SocketAddr>,
    /// Also serve /metrics on --http, to anyone who asks (prefer --admin).
    /// [default: off]
    #[arg(
        help_heading = "Listeners and files",
        long,
        env = "BANTER_METRICS_PUBLIC"
    )]
    pub metrics_public: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

macro_rules! overlay {
    ($settings:ident, $cli:ident, $($field:ident),+ $(,)?) => {
        $( if let Some(value) = $cli.$field { $settings.$field = value; } )+
    };
}

impl Cli {
    /// Resolves the final settings: defaults, then the file, then the
    /// environment and flags (which clap has already merged).
    // Long by design: one overlay per setting, in the order of `Settings`.
    pub fn settings(self) -> anyhow::Result<Settings> {
        let mut settings = match &self.config {
            Some(path) => load_file(path)?,
            None => Settings::default(),
        };
        let cli = self;
        if let Some(dir) = cli.web_dir {
            settings.web_dir = Some(dir);
        }
        if cli.memory_only {
            settings.memory_only = true;
        }
        if let Some(url) = cli.broker {
            settings.broker = Some(url);
        }
        if let Some(name) = cli.node_name {
            settings.node_name = Some(name);
        }
        if let Some(ms) = cli.broker_linger {
            settings.broker_linger_ms = ms;
        }
        if let Some(name) = cli.server_name {
            settings.server_name = Some(name);
        }
        for (flag, setting) in [
            (cli.http_tls, &mut settings.http_tls),
            (cli.tcp_tls, &mut settings.tcp_tls),
            (cli.tcp_proxy_protocol, &mut settings.tcp_proxy_protocol),
            (cli.irc_proxy_protocol, &mut settings.irc_proxy_protocol),
            (cli.trust_any_peer, &mut settings.trust_any_peer),
            (cli.metrics_public, &mut settings.metrics_public),
        ] {
            if flag {
                *setting = true;
            }
        }
        if let Some(path) = cli.tls_cert {
            settings.tls_cert = Some(path);
        }
        if let Some(path) = cli.tls_key {
            settings.tls_key = Some(path);
        }
        if let Some(addr) = cli.irc_tls {
            settings.irc_tls = Some(addr);
        }
        if let Some(addr) = cli.admin {
            settings.admin = Some(addr);
        }
        if let Some(url) = cli.store {
            settings.store = Some(url);
        }
        if let Some(secs) = cli.edit_window {
            settings.edit_window_secs = secs;
        }
        if let Some(ms) = cli.sync_every {
            settings.sync_every_ms = ms;
        }
        if cli.push_allow_http {
            settings.push_allow_http = true;
        }
        if let Some(contact) = cli.push_contact {
            settings.push_contact = contact;
        }
        if let Some(previews) = cli.push_previews {
            settings.push_previews = previews;
        }
        overlay!(
            settings,
            cli,
            http,
            tcp,
            irc,
            data_dir,
            log,
            max_connections,
            max_frame_bytes,
            max_text_bytes,
            max_lines,
            max_rooms_per_session,
            max_devices,
            max_rooms,
            history_len,
            outbox_len,
            outbox_bytes,
            handshake_timeout,
            idle_timeout,
            ping_timeout,
            write_timeout,
            shutdown_grace,
            irc_flood_burst,
            irc_flood_rate,
            irc_flood_backlog,
            irc_join_replay,
            retain_age,
            retain_count,
            retention_interval,
            argon2_memory_kib,
            message_rate,
            message_burst,
            join_rate,
            join_burst,
            change_rate,
            change_burst,
            registration,
            registrations_per_hour,
            new_rooms_per_hour,
            token_days,
            max_waiting_whispers,
            max_waiting_whispers_per_sender,
            max_connections_per_address,
            handshake_rate,
            handshake_burst,
            log_format,
            argon2_concurrency,
            argon2_wait,
            trusted_proxy,
            allowed_origin,
            server_admin,
        );
        settings.validate()?;
        Ok(settings)
    }
}

fn load_file(path: &Path) -> anyhow::Result<Settings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn help_shows_the_real_defaults() {
        let help = Cli::command().render_long_help().to_string();
        let d = Settings::default();
        for shown in [
            format!("[default: {}]", d.http),
            format!("[default: {}]", d.tcp),
            format!("[default: {}]", d.irc),
            format!("[default: {}]", d.max_frame_bytes),
            format!("[default: {}]", d.max_text_bytes),
            format!("[default: {}]", d.outbox_len),
            format!("[default: {}]", d.outbox_bytes),
            format!("[default: {}]", d.idle_timeout),
            format!("[default: {}]", d.argon2_concurrency),
            format!("[default: {}]", d.argon2_wait),
            format!("[default: {}]", d.sync_every_ms),
            format!("[default: {}]", d.broker_linger_ms),
        ] {
            assert!(help.contains(&shown), "help lacks {shown}:\n{help}");
        }
        Cli::command().debug_assert();
    }

    #[test]
    fn file_then_flags() {
        let dir = std::env::temp_dir().join(format!("banter-config-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("banter.toml");
        std::fs::write(
            &file,
            "max-text-bytes = 100\nhistory-len = 7\ntcp = \"127.0.0.1:9\"\nirc = \"127.0.0.1:0\"\n",
        )
        .unwrap();
        let cli = Cli::try_parse_from([
            "banter",
            "--config",
            file.to_str().unwrap(),
            "--history-len",
            "9",
        ])
        .unwrap();
        let s = cli.settings().unwrap();
        assert_eq!(s.max_text_bytes, 100);
        assert_eq!(s.history_len, 9, "the flag beats the file");
        assert_eq!(s.tcp, "127.0.0.1:9".parse().unwrap());
        assert_eq!(s.irc, "127.0.0.1:0".parse().unwrap());
        assert_eq!(s.http, Settings::default().http);
        assert_eq!(s.sync_every_ms, 1000);
        let cli = Cli::try_parse_from(["banter", "--sync-every", "0"]).unwrap();
        assert_eq!(cli.settings().unwrap().sync_every_ms, 0);
        assert_eq!(s.broker_linger_ms, 3);
        let cli = Cli::try_parse_from(["banter", "--broker-linger", "0"]).unwrap();
        assert_eq!(cli.settings().unwrap().broker_linger_ms, 0);
        assert!(Cli::try_parse_from(["banter", "--broker-linger", "101"]).is_err());

        std::fs::write(&file, "max-txt-bytes = 1\n").unwrap();
        let cli = Cli::try_parse_from(["banter", "--config", file.to_str().unwrap()]).unwrap();
        let err = format!("{:#}", cli.settings().unwrap_err());
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn proxy_and_tls_settings() {
        let cli = Cli::try_parse_from([
            "banter",
            "--trusted-proxy",
            "10.0.0.0/8,127.0.0.1",
            "--trusted-proxy",
            "::1",
            "--allowed-origin",
            "https://other.example",
        ])
        .unwrap();
        let s = cli.settings().unwrap();
        assert_eq!(
            s.trusted_proxy
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
            ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
        );
        assert_eq!(s.allowed_origin, ["https://other.example"]);
        let file: Settings = toml::from_str(
            "trusted-proxy = [\"192.168.0.0/16\"]\nirc-tls = \"0.0.0.0:6697\"\ntls-cert = \"c.pem\"\ntls-key = \"k.pem\"\n",
        )
        .unwrap();
        assert_eq!(file.trusted_proxy[0].to_string(), "192.168.0.0/16");
        file.validate().unwrap();
        for bad in [
            &["banter", "--trusted-proxy", "proxy.example"][..],
            &["banter", "--allowed-origin", "evil.example"],
            &["banter", "--http-tls"],
            &["banter", "--tls-cert", "c.pem", "--tls-key", "k.pem"],
            &["banter", "--tls-cert", "c.pem", "--tcp-tls"],
            &["banter", "--trusted-proxy", "0.0.0.0/0"],
            &["banter", "--trusted-proxy", "10.0.0.0/8,::/0"],
            &["banter", "--tcp-proxy-protocol"],
            &["banter", "--irc-proxy-protocol"],
        ] {
            let refused = Cli::try_parse_from(bad).map_err(|e| e.to_string());
            assert!(
                refused
                    .and_then(|cli| cli.settings().map_err(|e| e.to_string()))
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn trusting_everyone_takes_an_explicit_flag() {
        for args in [
            &["banter", "--trusted-proxy", "0.0.0.0/0", "--trust-any-peer"][..],
            &["banter", "--tcp-proxy-protocol", "--trust-any-peer"],
            &[
                "banter",
                "--irc-proxy-protocol",
                "--trusted-proxy",
                "10.0.0.5",
            ],
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            cli.settings().unwrap_or_else(|e| panic!("{args:?}: {e:#}"));
        }
        let cli = Cli::try_parse_from(["banter", "--trusted-proxy", "0.0.0.0/0"]).unwrap();
        let err = format!("{:#}", cli.settings().unwrap_err());
        assert!(err.contains("--trust-any-peer"), "{err}");
    }

    #[test]
    fn store_urls() {
        use crate::store::Backend;
        let s = Cli::try_parse_from(["banter", "--data-dir", "/d"])
            .unwrap()
            .settings()
            .unwrap();
        let backend = Backend::from_settings(s.store.as_deref(), &s.data_dir).unwrap();
        assert_eq!(backend, Backend::Sqlite(PathBuf::from("/d/banter.db")));
        let s = Cli::try_parse_from(["banter", "--store", "sqlite:///var/x.db"])
            .unwrap()
            .settings()
            .unwrap();
        let backend = Backend::from_settings(s.store.as_deref(), &s.data_dir).unwrap();
        assert_eq!(backend, Backend::Sqlite(PathBuf::from("/var/x.db")));
        let url = "postgresql://banter:s3cret@db.example:5433/chat";
        let file: Settings = toml::from_str(&format!("store = {url:?}\n")).unwrap();
        file.validate().unwrap();
        let backend = Backend::from_settings(file.store.as_deref(), &file.data_dir).unwrap();
        assert_eq!(backend, Backend::Postgres(url.into()));
        let shown = backend.describe();
        assert_eq!(
            shown,
            "postgresql://banter:***@db.example:5433/chat (PostgreSQL)"
        );
        for bad in [
            &["banter", "--store", "mysql://x@y/z"][..],
            &["banter", "--store", "sqlite://"],
            &["banter", "--store", "postgres://x@[bad/z"],
            &["banter", "--store", "postgres://x@y/z", "--memory-only"],
            &["banter", "--store", "postgres://x@y/z?sslmode=require"],
        ] {
            let cli = Cli::try_parse_from(bad).unwrap();
            let err = format!("{:#}", cli.settings().unwrap_err());
            assert!(err.contains("store"), "{bad:?}: {err}");
        }
        let err = Cli::try_parse_from(["banter", "--store", "mysql://u:hidden@y/z"])
            .unwrap()
            .settings()
            .unwrap_err();
        assert!(!format!("{err:#}").contains("hidden"), "{err:#}");
    }

    #[test]
    fn nonsense_is_refused() {
        let cli = Cli::try_parse_from(["banter", "--max-text-bytes", "20000"]).unwrap();
        assert!(cli.settings().is_err());
        let cli = Cli::try_parse_from(["banter", "--idle-timeout", "0"]).unwrap();
        assert!(cli.settings().is_err());
    }
}
