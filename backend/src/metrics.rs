//! What `GET /metrics` reports, in the Prometheus/OpenMetrics text format
//! (the `prometheus-client` crate): connections, messages in and out,
//! deliveries and drops, disconnects by reason, rate-limit hits, latency
//! histograms for store commits and fan-out, and the broker's counters in
//! cluster mode.
//!
//! One process-wide set ([`metrics()`]): the counters are plain atomics
//! that the hot paths (an outbox push, a session's write) bump without
//! being handed a registry.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// A label set of one `(name, value)` pair.
type Label = [(&'static str, &'static str); 1];

/// The transports, in the order of the per-transport arrays.
pub const TRANSPORTS: [&str; 4] = ["ws", "tcp", "irc", "irc-ws"];

/// Per-transport handles, looked up once.
pub struct PerTransport<M> {
    by: [M; 4],
}

impl<M> PerTransport<M> {
    /// The handle for `transport` (`ws`, `tcp`, `irc` or `irc-ws`).
    pub fn get(&self, transport: &str) -> &M {
        let i = TRANSPORTS.iter().position(|t| *t == transport).unwrap_or(0);
        &self.by[i]
    }
}

fn per_transport<M: Clone + Default>(family: &Family<Label, M>) -> PerTransport<M> {
    PerTransport {
        by: TRANSPORTS.map(|t| family.get_or_create(&[("transport", t)]).clone()),
    }
}

/// Why a limit refused something; the `kind` label of `rate_limited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Chat messages (say, whisper) of one session.
    Messages,
    /// Joins of one session.
    Joins,
    /// Open connections from one address.
    ConnectionsPerAddress,
    /// New connections (handshakes) from one address per second.
    Handshakes,
    /// All connections together.
    Connections,
    /// Wrong passwords.
    Passwords,
    /// IRC clients past flood control's backlog (disconnected: Excess Flood).
    IrcFlood,
    /// Other requests that write or broadcast, of one session.
    Changes,
    /// Accounts created from one address.
    Registrations,
    /// Rooms brought into being by one address or account.
    NewRooms,
    /// Read positions moved by one session.
    MarkRead,
    /// Edits, deletions and reactions of one session.
    Edits,
    /// Searches of one session.
    Searches,
}

impl Limit {
    const ALL: [Limit; 13] = [
        Limit::Messages,
        Limit::Joins,
        Limit::ConnectionsPerAddress,
        Limit::Handshakes,
        Limit::Connections,
        Limit::Passwords,
        Limit::IrcFlood,
        Limit::Changes,
        Limit::Registrations,
        Limit::NewRooms,
        Limit::MarkRead,
        Limit::Edits,
        Limit::Searches,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Limit::Messages => "messages",
            Limit::Joins => "joins",
            Limit::ConnectionsPerAddress => "connections_per_address",
            Limit::Handshakes => "handshakes",
            Limit::Connections => "connections",
            Limit::Passwords => "passwords",
            Limit::IrcFlood => "irc_flood",
            Limit::Changes => "changes",
            Limit::Registrations => "registrations",
            Limit::NewRooms => "new_rooms",
            Limit::MarkRead => "mark_read",
            Limit::Edits => "edits",
            Limit::Searches => "searches",
        }
    }
}

pub struct Metrics {
    registry: Registry,
    /// Open connections, by transport.
    pub connections: PerTransport<Gauge>,
    /// Frames (requests, lines) received, by transport.
    pub messages_in: PerTransport<Counter>,
    /// Frames written to clients, by transport.
    pub messages_out: PerTransport<Counter>,
    /// Frames queued for a client (one per recipient of an event).
    pub deliveries: Counter,
    /// Queued frames dropped because a client fell behind (it is sent
    /// `lagged`).
    pub dropped: Counter,
    disconnects: Family<Label, Counter>,
    rate_limited: [Counter; Limit::ALL.len()],
    /// Seconds one store transaction (a group commit) took.
    pub store_commit: Histogram,
    /// Seconds to queue one event for every member of a room.
    pub fanout: Histogram,
    /// Cluster mode: changes this node published to the broker, those it
    /// could not, and stream entries it read (see [`crate::broker`]).
    pub broker_published: Counter,
    pub broker_failed: Counter,
    pub broker_read: Counter,
    /// 1 while the broker answers this node's heartbeat, else 0.
    pub broker_up: Gauge,
}

impl Metrics {
    // Long by design: one registration after another, each with its help text.
    fn new() -> Self {
        let mut registry = Registry::with_prefix("banter");
        let connections = Family::<Label, Gauge>::default();
        registry.register(
            "connections",
            "Open connections, by transport",
            connections.clone(),
        );
        let messages_in = Family::<Label, Counter>::default();
        registry.register(
            "messages_in",
            "Frames (requests, IRC lines) received, by transport",
            messages_in.clone(),
        );
        let messages_out = Family::<Label, Counter>::default();
        registry.register(
            "messages_out",
            "Frames written to clients, by transport",
            messages_out.clone(),
        );
        let deliveries = Counter::default();
        registry.register(
            "deliveries",
            "Frames queued for a client, one per recipient",
            deliveries.clone(),
        );
        let dropped = Counter::default();
        registry.register(
            "dropped_deliveries",
            "Queued frames dropped because the client fell behind (it was sent lagged)",
            dropped.clone(),
        );
        let disconnects = Family::<Label, Counter>::default();
        registry.register(
            "disconnects",
            "Closed connections, by reason (client: the client closed or vanished; else the error code sent)",
            disconnects.clone(),
        );
        let limited = Family::<Label, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests or connections refused by a limit, by kind",
            limited.clone(),
        );
        let rate_limited =
            Limit::ALL.map(|l| limited.get_or_create(&[("kind", l.as_str())]).clone());
        // 50 µs to ~1.6 s.
        let store_commit = Histogram::new(exponential_buckets(0.000_05, 2.0, 16));
        registry.register(
            "store_commit_seconds",
            "Seconds one store transaction (a group commit of many writes) took",
            store_commit.clone(),
        );
        // 1 µs to ~65 ms.
        let fanout = Histogram::new(exponential_buckets(0.000_001, 2.0, 17));
        registry.register(
            "fanout_seconds",
            "Seconds to queue one event for every member of a room",
            fanout.clone(),
        );
        let broker_published = Counter::default();
        registry.register(
            "broker_published",
            "Cluster mode: changes (messages, presence) published to the broker",
            broker_published.clone(),
        );
        let broker_failed = Counter::default();
        registry.register(
            "broker_publish_failures",
            "Cluster mode: changes that could not be published (the broker was unreachable)",
            broker_failed.clone(),
        );
        let broker_read = Counter::default();
        registry.register(
            "broker_stream_entries",
            "Cluster mode: entries read from the broker's stream (every node's changes)",
            broker_read.clone(),
        );
        let broker_up = Gauge::default();
        registry.register(
            "broker_up",
            "Cluster mode: 1 while the broker answers this node's heartbeat",
            broker_up.clone(),
        );
        Metrics {
            broker_published,
            broker_failed,
            broker_read,
            broker_up,
            connections: per_transport(&connections),
            messages_in: per_transport(&messages_in),
            messages_out: per_transport(&messages_out),
            deliveries,
            dropped,
            disconnects,
            rate_limited,
            store_commit,
            fanout,
            registry,
        }
    }

    /// Counts a connection closed for `reason` (`client`, or an error code).
    pub fn disconnected(&self, reason: &'static str) {
        self.disconnects.get_or_create(&[("reason", reason)]).inc();
    }

    /// Counts one refusal by `limit`.
    pub fn limited(&self, limit: Limit) {
        self.rate_limited[limit as usize].inc();
    }

    /// The exposition text for `GET /metrics`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Seconds, as the histograms take them.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Counts an open connection of one transport while it lives.
pub struct ConnectionGauge(&'static Gauge);

impl ConnectionGauge {
    pub fn open(transport: &str) -> Self {
        let gauge = metrics().connections.get(transport);
        gauge.inc();
        ConnectionGauge(gauge)
    }
}

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let m = Metrics::new();
        m.messages_in.get("tcp").inc();
        m.limited(Limit::Joins);
        m.disconnected("idle_timeout");
        m.fanout.observe(0.000_003);
        let text = m.render();
        for line in [
            "banter_messages_in_total{transport=\"tcp\"} 1",
            "banter_messages_in_total{transport=\"ws\"} 0",
            "banter_rate_limited_total{kind=\"joins\"} 1",
            "banter_rate_limited_total{kind=\"messages\"} 0",
            "banter_disconnects_total{reason=\"idle_timeout\"} 1",
            "banter_fanout_seconds_count 1",
            "# TYPE banter_store_commit_seconds histogram",
            "# EOF",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }
}
