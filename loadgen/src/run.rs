//! Running one scenario: connect the clients gradually, then chat (senders
//! at a fixed rate or flat out within a window), sit idle, or storm the
//! server with connects; measure in a window after a warm-up, drain, and
//! produce a [`Report`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::payload::{Payload, irc_privmsg, json_say};
use crate::procstat::{self, Sample};
use crate::tracker::{Tracker, lost};
use crate::wire::{self, Conn, Event, Transport};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Clients in rooms, senders sending: throughput, latency, loss.
    Chat,
    /// Clients connect, join and sit: server memory per connection.
    Idle,
    /// Clients connect and register as fast as allowed: connects per second.
    Storm,
}

/// Everything one run needs (the command line, checked).
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct Plan {
    /// Which wire the clients speak.
    #[arg(long, value_enum)]
    pub transport: Transport,
    /// The server: host:port of its WebSocket (HTTP), TCP or IRC listener.
    /// Several (comma-separated: the nodes of a cluster): client `i`
    /// connects to the `i % n`th.
    #[arg(long, value_delimiter = ',', required = true)]
    pub addr: Vec<SocketAddr>,
    #[arg(long, value_enum, default_value = "chat")]
    pub mode: Mode,
    /// A name for this run in the report (scenario and server).
    #[arg(long, default_value = "run")]
    pub label: String,
    /// The server's name in the report (banter, inspircd, ngircd, …).
    #[arg(long, default_value = "server")]
    pub server: String,
    /// The server's process id: its CPU time and memory are read from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Client `i` joins room `i % rooms`.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Clients `0..senders` send (so with several rooms, one per room first).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Messages a second, all senders together; 0 sends flat out within `--window`.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Flat out: messages a sender may have on the way (not yet delivered to
    /// all of its room).
    #[arg(long, default_value_t = 32)]
    pub window: u64,
    /// Message text size in bytes (sender, sequence and send time, padded).
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Seconds of sending before the measurement starts.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds measured (chat); seconds to settle before reading memory (idle).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// New connections a second while connecting (0: no pacing).
    #[arg(long, default_value_t = 2000.0)]
    pub connect_rate: f64,
    /// Connections registering at once (a small listen backlog needs few).
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
    /// Nicks are this prefix and the client's index (`u0`, `u1`, …: short
    /// enough for a 9-character NICKLEN).
    #[arg(long, default_value = "u")]
    pub nick_prefix: String,
    /// Rooms are this prefix and the room's index (`b0` is IRC `#b0`).
    #[arg(long, default_value = "b")]
    pub room_prefix: String,
    /// A shell command run as the measurement starts (a profiler's "zero
    /// the counters", say).
    #[arg(long)]
    pub on_measure_start: Option<String>,
    /// A shell command run as the measurement ends (a profiler's "dump").
    #[arg(long)]
    pub on_measure_end: Option<String>,
}

impl Plan {
    fn check(&self) -> Result<()> {
        if self.clients == 0 || self.rooms == 0 || self.rooms > self.clients {
            bail!("need 1 ≤ rooms ≤ clients");
        }
        if self.mode == Mode::Chat {
            if self.senders == 0 || self.senders > self.clients {
                bail!("need 1 ≤ senders ≤ clients");
            }
            if self.clients / self.rooms < 2 {
                bail!("every room needs a receiver besides its sender");
            }
            if self.rate == 0.0 && self.window == 0 {
                bail!("flat out needs a window of at least 1");
            }
        }
        Ok(())
    }

    fn room_of(&self, client: usize) -> usize {
        client % self.rooms
    }

    fn members_of(&self, room: usize) -> u64 {
        (self.clients / self.rooms + usize::from(room < self.clients % self.rooms)) as u64
    }
}

/// Latency percentiles, microseconds.
#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// The result of one run: what the JSON output holds.
#[derive(Debug, Serialize)]
pub struct Report {
    pub plan: Plan,
    /// Cores this generator may use (its CPU affinity).
    pub generator_cores: usize,
    pub connected: usize,
    pub connect_failures: usize,
    /// Seconds from the first connect until every client was in.
    pub connect_secs: f64,
    pub connects_per_sec: f64,
    /// Connect to welcome (storm) or to joined (other modes).
    pub connect_latency: Latency,
    /// Messages written by the senders, in the whole run.
    pub sent: u64,
    /// Deliveries owed: every message to every other member of its room.
    pub expected: u64,
    /// First copies received.
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
    /// Frames the server said it dropped (`lagged`), by its documented policy.
    pub lagged: u64,
    /// Expected, never received, and not admitted as dropped.
    pub lost: u64,
    /// Connections that failed after joining.
    pub disconnects: u64,
    /// Times a flat-out sender's window stayed shut for 200 ms.
    pub window_stalls: u64,
    pub measured_secs: f64,
    /// Copies received within the measurement window.
    pub measured_deliveries: u64,
    pub sent_per_sec: f64,
    pub deliveries_per_sec: f64,
    /// Of messages sent within the measurement, send to receipt.
    pub latency: Latency,
    pub server_cpu_secs: Option<f64>,
    pub server_cpu_per_100k: Option<f64>,
    pub server_cpu_per_1k_connects: Option<f64>,
    pub server_rss_kib_before: Option<u64>,
    pub server_rss_kib_after: Option<u64>,
    pub server_bytes_per_conn: Option<f64>,
    pub generator_cpu_secs: f64,
    /// Generator CPU as a share of the cores it may use, %.
    pub generator_cpu_pct: f64,
    /// How busy the generator's cores were (by anyone), %.
    pub generator_core_busy_pct: f64,
    /// How busy the server's cores were (by anyone), %.
    pub server_core_busy_pct: Option<f64>,
    /// Whether the generator itself was the limit: ≥ 90 % of its cores for
    /// itself, or its cores ≥ 95 % busy (on a shared machine, others'
    /// work leaves it no more).
    pub generator_saturated: bool,
    /// The first few errors seen, for the reader.
    pub errors: Vec<String>,
}

/// What a sender shares with the clients that receive from it.
struct SenderState {
    receivers: u64,
    sent: AtomicU64,
    delivered: AtomicU64,
    waiting: AtomicBool,
    window_open: Notify,
}

/// Where the run is; clients watch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd)]
enum Phase {
    Connecting,
    Sending,
    Draining,
    Stopped,
}

struct Shared {
    plan: Plan,
    base: Instant,
    senders: Vec<SenderState>,
    /// Microseconds since `base`; outside the window nothing is measured.
    measure_from_us: AtomicU64,
    measure_until_us: AtomicU64,
    measured_deliveries: AtomicU64,
    lagged: AtomicU64,
    disconnects: AtomicU64,
    stalls: AtomicU64,
    ready: AtomicUsize,
    failed: AtomicUsize,
    latency: Vec<Mutex<Histogram<u64>>>,
    connect_latency: Mutex<Histogram<u64>>,
    errors: Mutex<Vec<String>>,
}

const SHARDS: usize = 16;
const MAX_ERRORS: usize = 5;

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes, 3 significant figures.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

impl Shared {
    fn now_us(&self) -> u64 {
        self.base.elapsed().as_micros() as u64
    }

    /// Whether `at` (µs on the run's clock) is within the measurement.
    fn measuring(&self, at: u64) -> bool {
        let from = self.measure_from_us.load(Relaxed);
        at >= from && at < self.measure_until_us.load(Relaxed)
    }

    fn error(&self, message: String) {
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < MAX_ERRORS {
            errors.push(message);
        }
    }

    fn sent(&self) -> u64 {
        self.senders.iter().map(|s| s.sent.load(Relaxed)).sum()
    }

    fn expected(&self) -> u64 {
        self.senders
            .iter()
            .map(|s| s.sent.load(Relaxed) * s.receivers)
            .sum()
    }

    fn delivered(&self) -> u64 {
        self.senders.iter().map(|s| s.delivered.load(Relaxed)).sum()
    }
}

fn progress(message: &str) {
    eprintln!("[banter-load] {message}");
}

/// Runs the plan to its end.
pub async fn run(plan: Plan) -> Result<Report> {
    plan.check()?;
    let senders = if plan.mode == Mode::Chat {
        plan.senders
    } else {
        0
    };
    let shared = Arc::new(Shared {
        base: Instant::now(),
        senders: (0..senders)
            .map(|s| SenderState {
                receivers: plan.members_of(plan.room_of(s)) - 1,
                sent: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                waiting: AtomicBool::new(false),
                window_open: Notify::new(),
            })
            .collect(),
        measure_from_us: AtomicU64::new(u64::MAX),
        measure_until_us: AtomicU64::new(u64::MAX),
        measured_deliveries: AtomicU64::new(0),
        lagged: AtomicU64::new(0),
        disconnects: AtomicU64::new(0),
        stalls: AtomicU64::new(0),
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        latency: (0..SHARDS).map(|_| Mutex::new(histogram())).collect(),
        connect_latency: Mutex::new(histogram()),
        errors: Mutex::new(Vec::new()),
        plan,
    });
    let plan = &shared.plan;
    let pid = plan.server_pid;
    let server_before = match pid {
        Some(pid) => settled(pid).await,
        None => None,
    };
    let (phase_tx, phase_rx) = watch::channel(Phase::Connecting);

    // Connect gradually: paced, and with few registrations in flight.
    progress(&format!(
        "{}: connecting {} {:?} clients to {}",
        plan.label,
        plan.clients,
        plan.transport,
        plan.addr
            .iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join(",")
    ));
    let connect_started = Instant::now();
    let connect_times = (
        procstat::core_times(&procstat::allowed_cpus(None)),
        pid.map(|p| procstat::core_times(&procstat::allowed_cpus(Some(p)))),
    );
    let gate = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let mut tasks = Vec::with_capacity(plan.clients);
    let mut last_note = Instant::now();
    for index in 0..plan.clients {
        if plan.connect_rate > 0.0 {
            sleep_until(
                connect_started + Duration::from_secs_f64(index as f64 / plan.connect_rate),
            )
            .await;
        }
        let permit = gate.clone().acquire_owned().await.expect("never closed");
        let task = client(index, shared.clone(), phase_rx.clone(), permit);
        tasks.push(tokio::spawn(task));
        if last_note.elapsed() >= Duration::from_secs(1) {
            last_note = Instant::now();
            note_connecting(&shared);
        }
    }
    while shared.ready.load(Relaxed) + shared.failed.load(Relaxed) < plan.clients {
        sleep(Duration::from_millis(20)).await;
        if last_note.elapsed() >= Duration::from_secs(1) {
            last_note = Instant::now();
            note_connecting(&shared);
        }
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    let connected = shared.ready.load(Relaxed);
    progress(&format!(
        "{connected} connected in {connect_secs:.1}s ({} failed)",
        shared.failed.load(Relaxed)
    ));

    let mut measured_secs = 0.0;
    let (mut server_window, mut generator_window) = (None, (Sample::default(), Sample::default()));
    let (mut sent_in_window, mut rss_before, mut rss_after) = (0, None, None);
    let generator_cpus = procstat::allowed_cpus(None);
    let server_cpus = pid.map(|p| procstat::allowed_cpus(Some(p)));
    let mut cores_window = Default::default();
    match plan.mode {
        Mode::Storm => {
            generator_window = (
                Sample::default(),
                procstat::sample(None).unwrap_or_default(),
            );
            cores_window = (
                (connect_times.0, procstat::core_times(&generator_cpus)),
                (
                    connect_times.1,
                    server_cpus.as_deref().map(procstat::core_times),
                ),
            );
            let after = pid.and_then(|p| procstat::sample(Some(p)));
            server_window = server_before.zip(after);
            measured_secs = connect_secs;
        }
        Mode::Idle => {
            rss_before = server_before.map(|s| s.rss_kib);
            sleep(Duration::from_secs_f64(plan.duration)).await;
            rss_after = pid
                .and_then(|p| procstat::sample(Some(p)))
                .map(|s| s.rss_kib);
        }
        Mode::Chat => {
            phase_tx.send_replace(Phase::Sending);
            sleep(Duration::from_secs_f64(plan.warmup)).await;
            let started = Instant::now();
            let server_start = pid.and_then(|p| procstat::sample(Some(p)));
            let generator_start = procstat::sample(None).unwrap_or_default();
            let cores_start = (
                procstat::core_times(&generator_cpus),
                server_cpus.as_deref().map(procstat::core_times),
            );
            hook(plan.on_measure_start.as_deref());
            let sent_start = shared.sent();
            shared.measure_from_us.store(shared.now_us(), Relaxed);
            let end = started + Duration::from_secs_f64(plan.duration);
            let mut last = (Instant::now(), 0);
            while Instant::now() < end {
                sleep(Duration::from_secs(1).min(end - Instant::now())).await;
                let measured = shared.measured_deliveries.load(Relaxed);
                let rate = (measured - last.1) as f64 / last.0.elapsed().as_secs_f64();
                last = (Instant::now(), measured);
                progress(&format!(
                    "{:.0}s: {:.0} deliveries/s, {} sent, {} lagged",
                    started.elapsed().as_secs_f64(),
                    rate,
                    shared.sent(),
                    shared.lagged.load(Relaxed)
                ));
            }
            shared.measure_until_us.store(shared.now_us(), Relaxed);
            measured_secs = started.elapsed().as_secs_f64();
            hook(plan.on_measure_end.as_deref());
            sent_in_window = shared.sent() - sent_start;
            let server_end = pid.and_then(|p| procstat::sample(Some(p)));
            server_window = server_start.zip(server_end);
            generator_window = (generator_start, procstat::sample(None).unwrap_or_default());
            cores_window = (
                (cores_start.0, procstat::core_times(&generator_cpus)),
                (
                    cores_start.1,
                    server_cpus.as_deref().map(procstat::core_times),
                ),
            );
            rss_before = server_before.map(|s| s.rss_kib);
            rss_after = server_end.map(|s| s.rss_kib);
            phase_tx.send_replace(Phase::Draining);
            drain(&shared).await;
        }
    }
    phase_tx.send_replace(Phase::Stopped);
    let mut totals = Tracker::default();
    for task in tasks {
        if let Ok(tracker) = task.await {
            totals.unique += tracker.unique;
            totals.duplicates += tracker.duplicates;
            totals.reordered += tracker.reordered;
        }
    }

    let latency = {
        let mut all = histogram();
        for shard in &shared.latency {
            all.add(&*shard.lock().unwrap()).expect("same bounds");
        }
        Latency::of(&all)
    };
    let measured = shared.measured_deliveries.load(Relaxed);
    let server_cpu = server_window.map(|(a, b)| b.cpu_secs - a.cpu_secs);
    let generator_cpu = generator_window.1.cpu_secs - generator_window.0.cpu_secs;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let generator_cpu_pct = if measured_secs > 0.0 {
        100.0 * generator_cpu / measured_secs / cores as f64
    } else {
        0.0
    };
    let ((gen_from, gen_to), (server_from, server_to)) = cores_window;
    let generator_core_busy = gen_to.busy_pct_since(&gen_from);
    let server_core_busy = server_from
        .zip(server_to)
        .map(|(a, b)| round1(b.busy_pct_since(&a)));
    let lagged = shared.lagged.load(Relaxed);
    let expected = shared.expected();
    let bytes_per_conn = match (rss_before, rss_after) {
        (Some(a), Some(b)) if connected > 0 => {
            Some(((b as f64 - a as f64) * 1024.0 / connected as f64).round())
        }
        _ => None,
    };
    Ok(Report {
        generator_cores: cores,
        connected,
        connect_failures: shared.failed.load(Relaxed),
        connect_secs: round3(connect_secs),
        connects_per_sec: round1(connected as f64 / connect_secs.max(1e-9)),
        connect_latency: Latency::of(&shared.connect_latency.lock().unwrap()),
        sent: shared.sent(),
        expected,
        unique: totals.unique,
        duplicates: totals.duplicates,
        reordered: totals.reordered,
        lagged,
        lost: lost(expected, totals.unique, lagged),
        disconnects: shared.disconnects.load(Relaxed),
        window_stalls: shared.stalls.load(Relaxed),
        measured_secs: round3(measured_secs),
        measured_deliveries: measured,
        sent_per_sec: round1(sent_in_window as f64 / measured_secs.max(1e-9)),
        deliveries_per_sec: round1(measured as f64 / measured_secs.max(1e-9)),
        latency,
        server_cpu_secs: server_cpu.map(round3),
        server_cpu_per_100k: server_cpu
            .filter(|_| measured > 0)
            .map(|cpu| round3(cpu / measured as f64 * 100_000.0)),
        server_cpu_per_1k_connects: server_cpu
            .filter(|_| plan.mode == Mode::Storm && connected > 0)
            .map(|cpu| round3(cpu / connected as f64 * 1000.0)),
        server_rss_kib_before: rss_before,
        server_rss_kib_after: rss_after,
        server_bytes_per_conn: bytes_per_conn,
        generator_cpu_secs: round3(generator_cpu),
        generator_cpu_pct: round1(generator_cpu_pct),
        generator_core_busy_pct: round1(generator_core_busy),
        server_core_busy_pct: server_core_busy,
        generator_saturated: measured_secs > 0.0
            && (generator_cpu_pct >= 90.0 || generator_core_busy >= 95.0),
        errors: shared.errors.lock().unwrap().clone(),
        plan: plan.clone(),
    })
}

/// Runs a measurement hook with `sh -c`, briefly blocking this thread.
fn hook(command: Option<&str>) {
    let Some(command) = command else { return };
    match std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => progress(&format!("hook {command:?} exited with {status}")),
        Err(e) => progress(&format!("hook {command:?} failed: {e}")),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn note_connecting(shared: &Shared) {
    progress(&format!(
        "connecting: {} in, {} failed",
        shared.ready.load(Relaxed),
        shared.failed.load(Relaxed)
    ));
}

/// After the senders stop: waits until everything owed has arrived (or
/// was admitted dropped), or nothing has moved for two seconds.
async fn drain(shared: &Shared) {
    let mut last = (Instant::now(), shared.delivered());
    loop {
        let delivered = shared.delivered();
        if delivered + shared.lagged.load(Relaxed) >= shared.expected() {
            return;
        }
        if delivered != last.1 {
            last = (Instant::now(), delivered);
        } else if last.0.elapsed() > Duration::from_secs(2) {
            progress(&format!(
                "drain: {} of {} deliveries still missing",
                shared.expected() - delivered,
                shared.expected()
            ));
            return;
        }
        sleep(Duration::from_millis(20)).await;
    }
}

/// One client, from connect to the end of the run.
async fn client(
    index: usize,
    shared: Arc<Shared>,
    mut phase: watch::Receiver<Phase>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Tracker {
    let plan = &shared.plan;
    let nick = format!("{}{index}", plan.nick_prefix);
    let room = format!("{}{}", plan.room_prefix, plan.room_of(index));
    let started = Instant::now();
    let mut attempt = 0;
    let addr = plan.addr[index % plan.addr.len()];
    let conn = loop {
        let opened = match plan.mode {
            Mode::Storm => wire::register(plan.transport, addr, &nick).await,
            _ => Conn::open(plan.transport, addr, &nick, &room).await,
        };
        match opened {
            Ok(conn) => break Some(conn),
            // A refused or reset connect (a full listen backlog) is retried;
            // a refusal from the server itself (a taken nick) is not.
            Err(e) if attempt < 5 && !e.to_string().starts_with("refused") => {
                attempt += 1;
                sleep(Duration::from_millis(100 * attempt)).await;
            }
            Err(e) => {
                shared.error(format!("{nick}: {e:#}"));
                break None;
            }
        }
    };
    drop(permit);
    let Some(mut conn) = conn else {
        shared.failed.fetch_add(1, Relaxed);
        return Tracker::default();
    };
    shared
        .connect_latency
        .lock()
        .unwrap()
        .saturating_record(started.elapsed().as_micros() as u64);
    shared.ready.fetch_add(1, Relaxed);

    let mut tracker = Tracker::default();
    let mut sender = (index < shared.senders.len()).then(|| Pacer::new(&shared, index));
    let mut latencies = Vec::new();
    let mut out = String::new();
    let mut current = *phase.borrow_and_update();
    // One wait for the next phase, kept across the loop's turns: a new
    // `changed()` in every `select!` linked and unlinked a waiter per read.
    let mut next_phase = std::pin::pin!(phase_change(phase));
    while current != Phase::Stopped {
        let sending = current == Phase::Sending && sender.is_some();
        tokio::select! {
            biased;
            (changed, receiver) = &mut next_phase => {
                current = changed;
                next_phase.set(phase_change(receiver));
            }
            read = conn.recv() => {
                if let Err(e) = read {
                    shared.disconnects.fetch_add(1, Relaxed);
                    shared.error(format!("{nick}: {e:#}"));
                    break;
                }
                let mut failure = None;
                // One clock reading per read: what it brought arrived together.
                let now = shared.now_us();
                let mut delivered = 0;
                conn.drain(|event| match event {
                    Event::Text(text) => {
                        if let Some(p) = Payload::parse(text) {
                            let got = receive(&shared, index, now, &mut tracker, &mut latencies, p);
                            delivered += u64::from(got);
                        }
                    }
                    Event::Lagged(n) => {
                        shared.lagged.fetch_add(n, Relaxed);
                    }
                    Event::Failure(line) => {
                        failure.get_or_insert_with(|| String::from_utf8_lossy(line).into_owned());
                    }
                    Event::Joined | Event::Welcome => {}
                });
                if let Some(line) = failure {
                    shared.error(format!("{nick}: {line}"));
                }
                if delivered > 0 && shared.measuring(now) {
                    shared.measured_deliveries.fetch_add(delivered, Relaxed);
                }
                if !latencies.is_empty() {
                    let mut shard = shared.latency[index % SHARDS].lock().unwrap();
                    for &us in &latencies {
                        shard.saturating_record(us);
                    }
                    drop(shard);
                    latencies.clear();
                }
                if conn.flush_replies().await.is_err() {
                    break;
                }
            }
            count = async { sender.as_mut().expect("sending").next(&shared).await }, if sending => {
                let pacer = sender.as_mut().expect("sending");
                out.clear();
                let now = shared.now_us();
                for i in 0..count {
                    let payload = Payload { sender: index as u32, seq: pacer.seq + i, sent_us: now };
                    match plan.transport {
                        Transport::Irc => irc_privmsg(&room, &payload, plan.payload_bytes, &mut out),
                        _ => json_say(&room, &payload, plan.payload_bytes, &mut out),
                    }
                }
                // Counted before the write: the drain, which may begin
                // while it is under way, must expect these messages too.
                pacer.seq += count;
                shared.senders[index].sent.fetch_add(count, Relaxed);
                if let Err(e) = conn.write(&out).await {
                    shared.disconnects.fetch_add(1, Relaxed);
                    shared.error(format!("{nick}: write: {e:#}"));
                    break;
                }
            }
        }
    }
    // Wait for the end before closing, so a departure is no surprise to
    // the others' accounting.
    while current != Phase::Stopped {
        let (changed, receiver) = next_phase.as_mut().await;
        current = changed;
        next_phase.set(phase_change(receiver));
    }
    conn.close().await;
    tracker
}

/// The next phase, once it changes (`Stopped` if the run is gone), and
/// the receiver back to wait for the one after.
async fn phase_change(mut phase: watch::Receiver<Phase>) -> (Phase, watch::Receiver<Phase>) {
    let next = match phase.changed().await {
        Ok(()) => *phase.borrow_and_update(),
        Err(_) => Phase::Stopped,
    };
    (next, phase)
}

/// Accounts one load message read by client `me` at `now` (µs on the
/// run's clock); returns whether it is a delivery (the caller counts those
/// of a read in the measurement together).
fn receive(
    shared: &Shared,
    me: usize,
    now: u64,
    tracker: &mut Tracker,
    latencies: &mut Vec<u64>,
    payload: Payload,
) -> bool {
    let sender = payload.sender as usize;
    if sender == me || sender >= shared.senders.len() {
        // Our own echo (JSON transports echo to the sender) is not a delivery.
        return false;
    }
    let first = tracker.arrive(payload.sender, payload.seq);
    if shared.measuring(payload.sent_us) {
        latencies.push(now.saturating_sub(payload.sent_us).max(1));
    }
    if first {
        let state = &shared.senders[sender];
        state.delivered.fetch_add(1, Relaxed);
        if state.waiting.load(Relaxed) {
            state.waiting.store(false, Relaxed);
            state.window_open.notify_one();
        }
    }
    true
}

/// When a sender may send, and how much.
struct Pacer {
    index: usize,
    /// The next sequence number.
    seq: u64,
    /// Messages a second for this sender; 0 is flat out.
    rate: f64,
    started: Option<Instant>,
    /// Flat out: deliveries written off as never coming (stalls).
    forgiven: u64,
}

/// When a rated sender starts, after the first: senders spread evenly over
/// one sender's interval, so that together they send one message at a time,
/// evenly spaced, not all at the same instant (which would measure a burst).
fn stagger(index: usize, senders: usize, rate_per_sender: f64) -> Duration {
    if rate_per_sender <= 0.0 || senders == 0 {
        return Duration::ZERO;
    }
    Duration::from_secs_f64(index as f64 / senders as f64 / rate_per_sender)
}

/// Longest a flat-out sender waits on a shut window before it writes the
/// missing deliveries off (a server may drop by policy).
const STALL: Duration = Duration::from_millis(200);
/// Most messages in one write.
const MAX_BATCH: u64 = 256;

impl Pacer {
    fn new(shared: &Shared, index: usize) -> Pacer {
        Pacer {
            index,
            seq: 0,
            rate: shared.plan.rate / shared.senders.len() as f64,
            started: None,
            forgiven: 0,
        }
    }

    /// Waits until at least one message may go; returns how many.
    async fn next(&mut self, shared: &Shared) -> u64 {
        if self.rate > 0.0 {
            let offset = stagger(self.index, shared.senders.len(), self.rate);
            let started = *self.started.get_or_insert_with(|| Instant::now() + offset);
            sleep_until(started).await;
            loop {
                let due = (started.elapsed().as_secs_f64() * self.rate) as u64 + 1;
                if due > self.seq {
                    return (due - self.seq).min(MAX_BATCH);
                }
                let at = started + Duration::from_secs_f64(self.seq as f64 / self.rate);
                sleep_until(at).await;
            }
        }
        let state = &shared.senders[self.index];
        let window = shared.plan.window * state.receivers;
        loop {
            let owed = self.seq * state.receivers;
            let outstanding = owed.saturating_sub(state.delivered.load(Relaxed) + self.forgiven);
            if outstanding + state.receivers <= window {
                return ((window - outstanding) / state.receivers).clamp(1, MAX_BATCH);
            }
            state.waiting.store(true, Relaxed);
            // Re-check after announcing the wait: a delivery in between
            // would otherwise not wake us.
            let outstanding = owed.saturating_sub(state.delivered.load(Relaxed) + self.forgiven);
            if outstanding + state.receivers <= window {
                continue;
            }
            if timeout(STALL, state.window_open.notified()).await.is_err() {
                shared.stalls.fetch_add(1, Relaxed);
                self.forgiven += outstanding;
            }
        }
    }
}

/// The server's first sample, once its memory has stopped growing: a
/// server may still be finishing its start (threads, caches) when its
/// port opens, and what it allocates then is no connection's. Its RSS is
/// read every 250 ms until two readings are within 64 KiB (at most 5 s).
async fn settled(pid: u32) -> Option<procstat::Sample> {
    let mut last = procstat::sample(Some(pid))?;
    for _ in 0..20 {
        sleep(Duration::from_millis(250)).await;
        let now = procstat::sample(Some(pid))?;
        if now.rss_kib.abs_diff(last.rss_kib) <= 64 {
            return Some(now);
        }
        last = now;
    }
    Some(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        plan: Plan,
    }

    fn plan(args: &[&str]) -> Plan {
        let mut all = vec!["x", "--transport", "tcp", "--addr", "127.0.0.1:1"];
        all.extend_from_slice(args);
        Cli::parse_from(all).plan
    }

    #[test]
    fn rooms_share_clients_evenly() {
        let p = plan(&["--clients", "25", "--rooms", "10"]);
        let sizes: Vec<u64> = (0..10).map(|r| p.members_of(r)).collect();
        assert_eq!(sizes, vec![3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
        assert_eq!(sizes.iter().sum::<u64>(), 25);
        for c in 0..25 {
            assert!(p.room_of(c) < 10);
        }
        let by_count = (0..25).filter(|&c| p.room_of(c) == 4).count() as u64;
        assert_eq!(by_count, p.members_of(4));
    }

    #[test]
    fn rated_senders_are_spread_over_the_interval() {
        // 4 senders at 25 a second each: 100 a second, one every 10 ms.
        let offsets: Vec<u128> = (0..4).map(|i| stagger(i, 4, 25.0).as_millis()).collect();
        assert_eq!(offsets, vec![0, 10, 20, 30]);
        assert_eq!(stagger(3, 4, 0.0), Duration::ZERO, "flat out is not paced");
    }

    #[test]
    fn rejects_plans_that_cannot_be_measured() {
        assert!(plan(&["--clients", "10", "--rooms", "10"]).check().is_err());
        assert!(
            plan(&["--clients", "10", "--senders", "11"])
                .check()
                .is_err()
        );
        assert!(plan(&["--clients", "10", "--window", "0"]).check().is_err());
        assert!(
            plan(&["--clients", "10", "--rooms", "5", "--senders", "5"])
                .check()
                .is_ok()
        );
    }
}
