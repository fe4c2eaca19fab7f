//! Banter: one chat server, many transports.
//!
//! * [`config`] — command line, `BANTER_*` environment and TOML settings.
//! * [`store`] — SQLite or PostgreSQL persistence: history, accounts, room
//!   roles and bans, with one group-committing writer task; the core's
//!   durable port.
//! * [`auth`] — argon2id password hashes, login tokens, the wrong-password
//!   limiter; [`admin`] — who administers the server, and server bans.
//! * [`core`] — what a chat server is, whatever carries it: the router
//!   (rooms, members, presence, delivery), the events it accepts, the
//!   port they go through before taking effect (memory, or the store),
//!   each session's outbox and the frames in it.
//! * [`alarms`] — every session's deadline and the shutdown notice, kept
//!   by one task.
//! * [`session`] — the one session loop every transport shares: handshake,
//!   requests, replies, keepalive, timeouts, closing.
//! * [`transport`] — `ws` (axum WebSocket at `/ws`), `tcp` (JSON lines) and
//!   `irc` (an IRC server face): bytes in, protocol frames out.
//! * [`limits`] — token buckets and per-address connection limits;
//!   [`metrics`] — the counters and histograms of `GET /metrics`.
//! * [`web`] — serves the web client (built into the binary, or `--web-dir`).
//! * [`net`] — production plumbing under the transports: TLS (reloaded on
//!   SIGHUP), the PROXY protocol, and trusted proxies' forwarded headers.
//! * [`push`] — Web Push to the browsers of accounts with no device
//!   connected (VAPID, RFC 8291 encryption).
//! * [`broker`] — cluster mode (`--broker redis://…`): nodes share one
//!   ordered stream of messages and presence through Redis.
//! * [`server`] — binds the listeners, supervises connections and shuts
//!   down gracefully.

pub mod admin;
pub mod alarms;
pub mod auth;
pub mod broker;
pub mod config;
pub mod context;
pub mod core;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod push;
pub mod server;
pub mod session;
pub mod store;
pub mod transport;
pub mod web;
