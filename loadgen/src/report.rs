//! Reports: the readable summary of one run, and `BENCHMARKS.md` with its
//! SVG plot (p99 latency against delivery rate) built from a directory of
//! JSON results, with each target of the benchmark checked from the data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::run::Report;

/// `banter-load report`'s arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory of `*.json` results (from `banter-load run --json`).
    #[arg(long)]
    pub results: PathBuf,
    /// Hand-written findings (profiling, explanations) appended to the page.
    #[arg(long)]
    pub notes: Option<PathBuf>,
    /// A Markdown fragment describing the machine and the run (written by
    /// `scripts/bench`), put at the top.
    #[arg(long)]
    pub context: Option<PathBuf>,
    #[arg(long, default_value = "BENCHMARKS.md")]
    pub out: PathBuf,
    /// The plot, written next to `--out` and linked from it.
    #[arg(long, default_value = "bench/latency.svg")]
    pub svg: PathBuf,
}

/// A human summary of one run.
pub fn summary(r: &Report) -> String {
    let p = &r.plan;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "== {} on {} ({:?}, {:?}): {} clients, {} rooms, {} senders",
        p.label, p.server, p.transport, p.mode, p.clients, p.rooms, p.senders
    );
    let _ = writeln!(
        s,
        "connected {} ({} failed) in {:.1}s: {:.0}/s; connect p50 {} p99 {}",
        r.connected,
        r.connect_failures,
        r.connect_secs,
        r.connects_per_sec,
        ms(r.connect_latency.p50_us),
        ms(r.connect_latency.p99_us)
    );
    if r.sent > 0 {
        let _ = writeln!(
            s,
            "sent {:.0}/s, delivered {:.0}/s over {:.1}s; latency p50 {} p99 {} p99.9 {} max {}",
            r.sent_per_sec,
            r.deliveries_per_sec,
            r.measured_secs,
            ms(r.latency.p50_us),
            ms(r.latency.p99_us),
            ms(r.latency.p999_us),
            ms(r.latency.max_us)
        );
        let _ = writeln!(
            s,
            "expected {} unique {} lost {} lagged {} duplicates {} reordered {} disconnects {} stalls {}",
            r.expected,
            r.unique,
            r.lost,
            r.lagged,
            r.duplicates,
            r.reordered,
            r.disconnects,
            r.window_stalls
        );
    }
    if let Some(cpu) = r.server_cpu_secs {
        let _ = write!(s, "server CPU {cpu:.2}s");
        if let Some(per) = r.server_cpu_per_100k {
            let _ = write!(s, " = {per:.3}s per 100k deliveries");
        }
        let _ = writeln!(s);
    }
    if let Some(b) = r.server_bytes_per_conn {
        let _ = writeln!(
            s,
            "server RSS {} → {} KiB: {b:.0} bytes per connection",
            r.server_rss_kib_before.unwrap_or(0),
            r.server_rss_kib_after.unwrap_or(0)
        );
    }
    let _ = writeln!(
        s,
        "generator CPU {:.1}% of {} core(s) (cores {:.0}% busy; server's cores {}){}",
        r.generator_cpu_pct,
        r.generator_cores,
        r.generator_core_busy_pct,
        r.server_core_busy_pct
            .map_or("–".into(), |b| format!("{b:.0}% busy")),
        if r.generator_saturated {
            " — SATURATED: the generator is the limit"
        } else {
            ""
        }
    );
    for e in &r.errors {
        let _ = writeln!(s, "error: {e}");
    }
    s
}

fn ms(us: u64) -> String {
    format!("{:.2}ms", us as f64 / 1000.0)
}

/// One result file, read back.
struct Run(Value);

impl Run {
    fn label(&self) -> &str {
        self.0["plan"]["label"].as_str().unwrap_or("")
    }
    fn server(&self) -> &str {
        self.0["plan"]["server"].as_str().unwrap_or("")
    }
    fn f(&self, path: &str) -> Option<f64> {
        path.split('.')
            .try_fold(&self.0, |v, k| v.get(k))
            .and_then(Value::as_f64)
    }
    fn n(&self, path: &str) -> f64 {
        self.f(path).unwrap_or(0.0)
    }
    fn saturated(&self) -> bool {
        self.0["generator_saturated"].as_bool().unwrap_or(false)
    }
    fn clean(&self) -> bool {
        self.n("lost") == 0.0 && self.n("duplicates") == 0.0 && self.n("reordered") == 0.0
    }
}

/// Servers in a fixed order: Banter's faces first, then the others.
const ORDER: [&str; 5] = [
    "banter-irc",
    "banter-ws",
    "banter-tcp",
    "inspircd",
    "ngircd",
];

fn rank(server: &str) -> usize {
    ORDER
        .iter()
        .position(|s| *s == server)
        .unwrap_or(ORDER.len())
}

fn load(dir: &Path) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path)?;
            let value = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            runs.push(Run(value));
        }
    }
    runs.sort_by(|a, b| {
        rank(a.server())
            .cmp(&rank(b.server()))
            .then(a.n("plan.rate").total_cmp(&b.n("plan.rate")))
    });
    Ok(runs)
}

fn of<'a>(runs: &'a [Run], label: &str) -> Vec<&'a Run> {
    runs.iter().filter(|r| r.label() == label).collect()
}

fn find<'a>(runs: &'a [Run], label: &str, server: &str) -> Option<&'a Run> {
    runs.iter()
        .find(|r| r.label() == label && r.server() == server)
}

fn msf(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

fn count(x: f64) -> String {
    let n = x.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The generator's own CPU share / how busy its core was, and whether
/// that made it the limit.
fn gen_cell(r: &Run) -> String {
    let cell = format!(
        "{:.0} / {:.0}",
        r.n("generator_cpu_pct"),
        r.n("generator_core_busy_pct")
    );
    if r.saturated() {
        format!("**{cell} saturated**")
    } else {
        cell
    }
}

/// A throughput/latency table for chat runs.
fn chat_table(out: &mut String, runs: &[&Run]) {
    out.push_str(
        "| server | clients | sent/s | deliveries/s | server CPU s per 100k | p50 ms | p99 ms | p99.9 ms | max ms | lost | lagged | dup | reordered | server core busy % | generator CPU % / core busy % |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.server(),
            count(r.n("connected")),
            count(r.n("sent_per_sec")),
            count(r.n("deliveries_per_sec")),
            r.f("server_cpu_per_100k")
                .map_or("–".into(), |x| format!("{x:.3}")),
            msf(r.n("latency.p50_us")),
            msf(r.n("latency.p99_us")),
            msf(r.n("latency.p999_us")),
            msf(r.n("latency.max_us")),
            count(r.n("lost")),
            count(r.n("lagged")),
            count(r.n("duplicates")),
            count(r.n("reordered")),
            r.f("server_core_busy_pct")
                .map_or("–".into(), |x| format!("{x:.0}")),
            gen_cell(r),
        );
    }
    out.push('\n');
}

fn errors(out: &mut String, runs: &[&Run]) {
    for r in runs {
        let failures = r.n("connect_failures") + r.n("disconnects");
        if failures > 0.0 {
            let first = r.0["errors"]
                .as_array()
                .and_then(|e| e.first())
                .and_then(Value::as_str)
                .unwrap_or("");
            let _ = writeln!(
                out,
                "* {}: {} connect failures, {} disconnects; first error: `{}`",
                r.server(),
                r.n("connect_failures"),
                r.n("disconnects"),
                first.replace('`', "'")
            );
        }
    }
}

/// Writes BENCHMARKS.md and the SVG.
pub fn write(args: &Args) -> Result<()> {
    let runs = load(&args.results)?;
    let mut out = String::new();
    out.push_str(
        "# Banter benchmarks\n\n\
         Generated by `scripts/bench` from the JSON results of `banter-load`; do not edit by hand \
         (the findings at the end come from `bench/notes.md`).\n\n",
    );
    if let Some(context) = &args.context {
        out.push_str(&std::fs::read_to_string(context)?);
        out.push('\n');
    }
    targets(&mut out, &runs);

    if let Some(floor) = find(&runs, "floor", "kernel") {
        floor_section(&mut out, floor);
    }

    let sections: [(&str, &str); 4] = [
        (
            "rated-rooms-100000",
            "## Latency at 100,000 deliveries/s in rooms of 10\n\nOne sender per room at a fixed total rate of 11,111 messages/s (9 deliveries each), so no single message fans out to many sockets at once.\n\n",
        ),
        (
            "fanout",
            "## Fan-out: one room, senders flat out\n\nEvery client in one room; the senders send as fast as a window of undelivered messages allows. Deliveries count every copy received by a member other than the sender.\n\n",
        ),
        (
            "rooms",
            "## Many rooms: rooms of 10, steady traffic\n\nOne sender per room, at a fixed total rate.\n\n",
        ),
        (
            "scale",
            "## Scale: the most connections, steady traffic\n\nRooms of 10, one sender per room, at a fixed total rate.\n\n",
        ),
    ];
    for (label, heading) in sections {
        let these = of(&runs, label);
        if these.is_empty() {
            continue;
        }
        out.push_str(heading);
        chat_table(&mut out, &these);
        errors(&mut out, &these);
        out.push('\n');
    }

    let mut rated: Vec<&Run> = runs
        .iter()
        .filter(|r| r.label().starts_with("rated-") && r.n("plan.rooms") <= 1.0)
        .collect();
    if !rated.is_empty() {
        rated.sort_by(|a, b| a.n("plan.rate").total_cmp(&b.n("plan.rate")));
        let rel = relative(&args.out, &args.svg);
        let _ = write!(
            out,
            "## Latency against load\n\nOne room, senders at a fixed total rate; the rate is the target delivery rate. \
             ![p99 latency against deliveries per second]({rel})\n\n"
        );
        let mut rates: Vec<f64> = rated.iter().map(|r| r.n("plan.rate")).collect();
        rates.dedup();
        for rate in rates {
            let these: Vec<&Run> = rated
                .iter()
                .copied()
                .filter(|r| r.n("plan.rate") == rate)
                .collect();
            let receivers = these.first().map_or(0.0, |r| r.n("plan.clients") - 1.0);
            let _ = writeln!(
                out,
                "### {} messages/s (target {} deliveries/s)\n",
                count(rate),
                count(rate * receivers)
            );
            let mut sorted = these.clone();
            sorted.sort_by_key(|r| rank(r.server()));
            chat_table(&mut out, &sorted);
            errors(&mut out, &sorted);
        }
        std::fs::write(&args.svg, plot(&rated))
            .with_context(|| format!("writing {}", args.svg.display()))?;
    }

    let idle = of(&runs, "idle");
    if !idle.is_empty() {
        out.push_str(
            "## Idle connections: memory per connection\n\nClients connect, join rooms of 10 (empty: no history yet) and sit; RSS growth of the server divided by connections.\n\n\
             | server | connections | RSS before KiB | RSS after KiB | bytes per connection |\n|---|---:|---:|---:|---:|\n",
        );
        for r in &idle {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                r.server(),
                count(r.n("connected")),
                count(r.n("server_rss_kib_before")),
                count(r.n("server_rss_kib_after")),
                count(r.n("server_bytes_per_conn"))
            );
        }
        out.push('\n');
        errors(&mut out, &idle);
        out.push('\n');
    }

    let storm = of(&runs, "storm");
    if !storm.is_empty() {
        out.push_str(
            "## Connection storm\n\nClients connect and register (JSON `welcome`, IRC 001) as fast as the concurrency allows and stay connected.\n\n\
             | server | connections | connects/s | connect p50 ms | connect p99 ms | server CPU s per 1k connects | failures | generator CPU % / core busy % |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &storm {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                r.server(),
                count(r.n("connected")),
                count(r.n("connects_per_sec")),
                msf(r.n("connect_latency.p50_us")),
                msf(r.n("connect_latency.p99_us")),
                r.f("server_cpu_per_1k_connects")
                    .map_or("–".into(), |x| format!("{x:.3}")),
                count(r.n("connect_failures")),
                gen_cell(r),
            );
        }
        out.push('\n');
        errors(&mut out, &storm);
        out.push('\n');
    }

    if let Some(notes) = &args.notes {
        out.push_str(&std::fs::read_to_string(notes)?);
    }
    std::fs::write(&args.out, out).with_context(|| format!("writing {}", args.out.display()))?;
    Ok(())
}

/// What one loopback send costs here (`banter-load floor`), and what that
/// means for the latency targets.
fn floor_section(out: &mut String, floor: &Run) {
    let _ = write!(
        out,
        "## The kernel's floor: one loopback send\n\n\
         No chat server: one thread on the server's core writes {bytes}-byte lines round robin over \
         {conns} loopback connections (a blocking `send` each, `TCP_NODELAY`) and a thread on the \
         generator's core reads them back (`banter-load floor`). On loopback the receiving socket's \
         kernel work runs on the sender's core, so this is what any server here pays per delivery \
         before doing anything of its own.\n\n\
         | sends | kernel µs per send | user µs per send | wall µs per send | 999 copies take, ms of one core | 100,000 sends/s take, share of one core |\n\
         |---:|---:|---:|---:|---:|---:|\n\
         | {sends} | {sys:.2} | {user:.2} | {wall:.2} | {fanout:.1} | {share:.0}% |\n\n",
        bytes = count(floor.n("plan.bytes")),
        conns = count(floor.n("plan.connections")),
        sends = count(floor.n("plan.sends")),
        sys = floor.n("sys_us_per_send"),
        user = floor.n("user_us_per_send"),
        wall = floor.n("wall_us_per_send"),
        fanout = floor.n("fanout_999_ms"),
        share = floor.n("core_share_at_100k") * 100.0,
    );
}

/// The SVG's path relative to the Markdown file's directory.
fn relative(md: &Path, svg: &Path) -> String {
    let base = md.parent().unwrap_or(Path::new(""));
    svg.strip_prefix(base)
        .unwrap_or(svg)
        .to_string_lossy()
        .into_owned()
}

/// The targets of the benchmark, each checked against the results.
fn targets(out: &mut String, runs: &[Run]) {
    out.push_str("## Targets\n\n| target | result | met |\n|---|---|---|\n");
    let mut row = |target: &str, result: String, met: Option<bool>| {
        let verdict = match met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "not measured",
        };
        let _ = writeln!(out, "| {target} | {result} | {verdict} |");
    };

    let irc = find(runs, "fanout", "banter-irc");
    let insp = find(runs, "fanout", "inspircd");
    let ws = find(runs, "fanout", "banter-ws");
    match (irc, insp) {
        (Some(b), Some(i)) => {
            let rate = b.n("deliveries_per_sec") / i.n("deliveries_per_sec").max(1e-9);
            let cpu = b.n("server_cpu_per_100k") / i.n("server_cpu_per_100k").max(1e-9);
            let limited = b.saturated() || i.saturated();
            let met = rate >= 2.0 || (limited && cpu <= 0.5);
            row(
                "Fan-out (1 room, flat out), IRC face: ≥ 2× InspIRCd's deliveries/s, or ≤ ½ its server CPU per delivery when the generator is the limit",
                format!(
                    "{rate:.2}× the deliveries/s; {cpu:.2}× the CPU per delivery ({:.3} vs {:.3} s per 100k){}",
                    b.n("server_cpu_per_100k"),
                    i.n("server_cpu_per_100k"),
                    if limited { "; generator saturated" } else { "" }
                ),
                Some(met),
            );
        }
        _ => row("Fan-out, IRC face vs InspIRCd", "missing runs".into(), None),
    }
    match (ws, irc) {
        (Some(w), Some(b)) => {
            let ratio = w.n("server_cpu_per_100k") / b.n("server_cpu_per_100k").max(1e-9);
            row(
                "Fan-out: WebSocket within 1.5× of the IRC face's server CPU per delivery",
                format!(
                    "{ratio:.2}× ({:.3} vs {:.3} s per 100k)",
                    w.n("server_cpu_per_100k"),
                    b.n("server_cpu_per_100k")
                ),
                Some(ratio <= 1.5),
            );
        }
        _ => row(
            "Fan-out: WebSocket vs IRC face",
            "missing runs".into(),
            None,
        ),
    }

    for (label, shape) in [
        ("rated-100000", "one room"),
        ("rated-rooms-100000", "rooms of 10"),
    ] {
        let target = format!("p99 < 5 ms at 100,000 deliveries/s, every transport ({shape})");
        let at_100k: Vec<&Run> = runs
            .iter()
            .filter(|r| r.label() == label && r.server().starts_with("banter"))
            .collect();
        if at_100k.is_empty() {
            row(&target, "missing runs".into(), None);
            continue;
        }
        let worst = at_100k
            .iter()
            .map(|r| r.n("latency.p99_us"))
            .fold(0.0, f64::max);
        let detail: Vec<String> = at_100k
            .iter()
            .map(|r| {
                format!(
                    "{} {} ms at {}/s",
                    r.server(),
                    msf(r.n("latency.p99_us")),
                    count(r.n("deliveries_per_sec"))
                )
            })
            .collect();
        let mut result = detail.join("; ");
        if let Some(floor) = find(runs, "floor", "kernel") {
            let _ = if label == "rated-100000" {
                write!(
                    result,
                    "; floor here: the kernel alone takes {:.1} ms of one core to send a copy to 999 members",
                    floor.n("fanout_999_ms")
                )
            } else {
                write!(
                    result,
                    "; floor here: the kernel alone takes {:.0}% of one core for 100,000 sends/s",
                    floor.n("core_share_at_100k") * 100.0
                )
            };
        }
        row(&target, result, Some(worst < 5000.0 && at_100k.len() == 3));
    }

    let idle: Vec<(&str, f64)> = [
        ("banter-tcp", 2048.0),
        ("banter-irc", 2048.0),
        ("banter-ws", 4096.0),
    ]
    .into_iter()
    .collect();
    let mut idle_detail = Vec::new();
    let mut idle_met = Some(true);
    for (server, limit) in &idle {
        match find(runs, "idle", server).and_then(|r| r.f("server_bytes_per_conn").map(|b| (r, b)))
        {
            Some((r, bytes)) => {
                idle_detail.push(format!(
                    "{server} {} B ({} connections)",
                    count(bytes),
                    count(r.n("connected"))
                ));
                if bytes > *limit {
                    idle_met = Some(false);
                }
            }
            None => idle_met = None,
        }
    }
    row(
        "Idle memory per connection: ≤ 2 KiB TCP/IRC, ≤ 4 KiB WebSocket",
        idle_detail.join("; "),
        idle_met,
    );

    let scale: Vec<&Run> = of(runs, "scale")
        .into_iter()
        .filter(|r| r.server().starts_with("banter"))
        .collect();
    if scale.is_empty() {
        row(
            "18,000 connections, steady chat, zero loss",
            "missing runs".into(),
            None,
        );
    } else {
        let detail: Vec<String> = scale
            .iter()
            .map(|r| {
                format!(
                    "{} {} connected, {} lost, {} lagged",
                    r.server(),
                    count(r.n("connected")),
                    count(r.n("lost")),
                    count(r.n("lagged"))
                )
            })
            .collect();
        let met = scale
            .iter()
            .all(|r| r.n("connected") >= 18_000.0 && r.n("lost") == 0.0 && r.n("lagged") == 0.0);
        row(
            "18,000 connections, steady chat, zero loss",
            detail.join("; "),
            Some(met),
        );
    }

    let banter: Vec<&Run> = runs
        .iter()
        .filter(|r| r.server().starts_with("banter") && r.n("sent") > 0.0)
        .collect();
    let dirty: Vec<String> = banter
        .iter()
        .filter(|r| !r.clean())
        .map(|r| {
            format!(
                "{}/{}: {} lost, {} dup, {} reordered",
                r.label(),
                r.server(),
                count(r.n("lost")),
                count(r.n("duplicates")),
                count(r.n("reordered"))
            )
        })
        .collect();
    let lagged: f64 = banter.iter().map(|r| r.n("lagged")).sum();
    row(
        "Zero loss, duplicates and reordering in every Banter scenario (policy drops counted apart)",
        if dirty.is_empty() {
            format!(
                "{} runs clean; {} frames dropped by the outbox policy (lagged)",
                banter.len(),
                count(lagged)
            )
        } else {
            dirty.join("; ")
        },
        (!banter.is_empty()).then_some(dirty.is_empty()),
    );
    out.push('\n');
}

/// p99 (solid) and p50 (dashed) latency against achieved deliveries/s, log y.
fn plot(runs: &[&Run]) -> String {
    let (w, h, left, right, top, bottom) = (720.0, 420.0, 70.0, 170.0, 30.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let xmax = runs
        .iter()
        .map(|r| r.n("deliveries_per_sec"))
        .fold(1.0, f64::max)
        * 1.05;
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|r| [r.n("latency.p50_us"), r.n("latency.p99_us")])
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values.iter().copied().fold(f64::MAX, f64::min).max(10.0);
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    let (ymin, ymax) = (
        10f64.powf(lo.log10().floor()),
        10f64.powf(hi.log10().ceil()),
    );
    let x = |v: f64| left + v / xmax * pw;
    let y = |us: f64| {
        top + ph - (us.max(ymin).log10() - ymin.log10()) / (ymax.log10() - ymin.log10()) * ph
    };
    let colours = [
        "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"{w}\" height=\"{h}\" fill=\"white\"/>\n"
    );
    // Axes, grid and labels.
    let mut decade = ymin;
    while decade <= ymax * 1.001 {
        let yy = y(decade);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left + pw,
            left - 6.0,
            yy + 4.0,
            if decade >= 1000.0 {
                format!("{} ms", decade / 1000.0)
            } else {
                format!("{decade} µs")
            }
        );
        decade *= 10.0;
    }
    for i in 0..=5 {
        let v = xmax / 5.0 * i as f64;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}k</text>",
            x(v),
            top + ph + 18.0,
            (v / 1000.0).round()
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"#333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">deliveries per second</text>\n\
         <text x=\"{left}\" y=\"18\">latency (log scale): p99 solid, p50 dashed</text>",
        left + pw / 2.0,
        h - 10.0
    );
    let mut servers: Vec<&str> = runs.iter().map(|r| r.server()).collect();
    servers.sort_by_key(|s| rank(s));
    servers.dedup();
    for (i, server) in servers.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut points: Vec<&&Run> = runs.iter().filter(|r| r.server() == *server).collect();
        points.sort_by(|a, b| {
            a.n("deliveries_per_sec")
                .total_cmp(&b.n("deliveries_per_sec"))
        });
        for (key, dash) in [
            ("latency.p99_us", ""),
            ("latency.p50_us", " stroke-dasharray=\"4 3\""),
        ] {
            let path: Vec<String> = points
                .iter()
                .map(|r| format!("{:.1},{:.1}", x(r.n("deliveries_per_sec")), y(r.n(key))))
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
                path.join(" ")
            );
            for p in &path {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    s,
                    "<circle cx=\"{px}\" cy=\"{py}\" r=\"3\" fill=\"{colour}\"/>"
                );
            }
        }
        let ly = top + 10.0 + 20.0 * i as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{ly:.1}\" x2=\"{:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{server}</text>",
            left + pw + 15.0,
            left + pw + 40.0,
            left + pw + 46.0,
            ly + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(1234567.0), "1,234,567");
    }

    fn run(label: &str, server: &str, extra: Value) -> Run {
        let mut v = serde_json::json!({
            "plan": {"label": label, "server": server, "rate": 100.0, "clients": 1001},
            "sent": 10, "lost": 0, "duplicates": 0, "reordered": 0, "lagged": 0,
            "generator_saturated": false,
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        Run(v)
    }

    #[test]
    fn targets_are_checked_from_the_numbers() {
        let runs = vec![
            run(
                "fanout",
                "banter-irc",
                serde_json::json!({"deliveries_per_sec": 300000.0, "server_cpu_per_100k": 0.2}),
            ),
            run(
                "fanout",
                "inspircd",
                serde_json::json!({"deliveries_per_sec": 100000.0, "server_cpu_per_100k": 0.9}),
            ),
            run(
                "fanout",
                "banter-ws",
                serde_json::json!({"deliveries_per_sec": 200000.0, "server_cpu_per_100k": 0.4}),
            ),
            run(
                "idle",
                "banter-tcp",
                serde_json::json!({"server_bytes_per_conn": 1500.0, "connected": 10000}),
            ),
            run(
                "idle",
                "banter-irc",
                serde_json::json!({"server_bytes_per_conn": 2500.0, "connected": 10000}),
            ),
            run(
                "idle",
                "banter-ws",
                serde_json::json!({"server_bytes_per_conn": 3000.0, "connected": 10000}),
            ),
            run("rooms", "banter-tcp", serde_json::json!({"lost": 3})),
        ];
        let mut out = String::new();
        targets(&mut out, &runs);
        let line = |needle: &str| {
            out.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no row {needle}: {out}"))
                .to_string()
        };
        assert!(line("IRC face: ≥ 2×").ends_with("| yes |"), "3× InspIRCd");
        assert!(line("within 1.5×").ends_with("| **no** |"), "ws at 2× irc");
        assert!(
            line("Idle memory").ends_with("| **no** |"),
            "irc over 2 KiB"
        );
        assert!(
            line("p99 < 5 ms at 100,000 deliveries/s, every transport (one room)")
                .ends_with("| not measured |")
        );
        assert!(line("(rooms of 10)").ends_with("| not measured |"));
        let clean = line("Zero loss");
        assert!(clean.contains("rooms/banter-tcp: 3 lost") && clean.ends_with("| **no** |"));
    }

    #[test]
    fn the_floor_is_shown_beside_the_latency_targets() {
        let mut runs = vec![run(
            "floor",
            "kernel",
            serde_json::json!({"fanout_999_ms": 6.25, "core_share_at_100k": 0.6255, "sys_us_per_send": 6.2}),
        )];
        for (label, p99) in [("rated-100000", 4000), ("rated-rooms-100000", 9000)] {
            for server in ["banter-irc", "banter-ws", "banter-tcp"] {
                let latency = serde_json::json!({"latency": {"p99_us": p99}});
                runs.push(run(label, server, latency));
            }
        }
        let mut out = String::new();
        targets(&mut out, &runs);
        let one_room = out.lines().find(|l| l.contains("(one room)")).unwrap();
        assert!(
            one_room.contains("999 members") && one_room.contains("6.2 ms"),
            "{one_room}"
        );
        assert!(one_room.ends_with("| yes |"), "{one_room}");
        let rooms = out.lines().find(|l| l.contains("(rooms of 10)")).unwrap();
        assert!(
            rooms.contains("63% of one core") && rooms.ends_with("| **no** |"),
            "{rooms}"
        );

        let mut section = String::new();
        floor_section(&mut section, &runs[0]);
        assert!(
            section.contains("| 6.20 |") && section.contains("| 6.2 | 63% |"),
            "{section}"
        );
    }

    #[test]
    fn the_plot_is_svg_with_a_line_per_server() {
        let runs = [
            run(
                "rated-1",
                "banter-irc",
                serde_json::json!({"deliveries_per_sec": 1000.0, "latency": {"p50_us": 100, "p99_us": 900}}),
            ),
            run(
                "rated-2",
                "banter-irc",
                serde_json::json!({"deliveries_per_sec": 5000.0, "latency": {"p50_us": 150, "p99_us": 2000}}),
            ),
            run(
                "rated-1",
                "inspircd",
                serde_json::json!({"deliveries_per_sec": 1000.0, "latency": {"p50_us": 200, "p99_us": 800}}),
            ),
        ];
        let refs: Vec<&Run> = runs.iter().collect();
        let svg = plot(&refs);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            4,
            "p50 and p99 per server"
        );
        assert!(svg.contains(">inspircd</text>") && svg.contains(">banter-irc</text>"));
    }
}
