//! `banter-load`, the benchmarks' generator, against the real server on
//! every transport: what it counts (deliveries, loss, duplicates,
//! reordering, latency) must be right before its numbers mean anything.
//! Short runs: this checks the generator's accounting and wires (its own
//! WebSocket frames included), not speed.

mod common;

use banter_load::run::{Plan, Report, run};
use banter_load::wire::Transport;
use clap::Parser;
use common::TestServer;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    plan: Plan,
}

fn plan(transport: Transport, server: &TestServer, extra: &[&str]) -> Plan {
    let addr = match transport {
        Transport::Ws => server.http,
        Transport::Tcp => server.tcp,
        Transport::Irc => server.irc,
    };
    let transport = format!("{transport:?}").to_lowercase();
    let pid = server.pid().to_string();
    let addr = addr.to_string();
    let mut args = vec![
        "banter-load",
        "--transport",
        &transport,
        "--addr",
        &addr,
        "--server-pid",
        &pid,
        "--clients",
        "24",
        "--rooms",
        "3",
        "--senders",
        "3",
        "--warmup",
        "0.5",
        "--connect-rate",
        "0",
    ];
    args.extend(extra);
    Args::try_parse_from(args).expect("valid arguments").plan
}

fn unlimited() -> TestServer {
    TestServer::child_with(&[
        "--max-connections-per-address",
        "0",
        "--handshake-rate",
        "0",
        "--message-rate",
        "0",
        "--irc-flood-rate",
        "1000000",
        "--irc-flood-burst",
        "1000000",
        // Receivers only read: the server pings them within the run, and
        // the generator must answer on every wire or be disconnected.
        "--idle-timeout",
        "1",
        "--ping-timeout",
        "1",
    ])
}

fn assert_clean(report: &Report) {
    let what = format!("{:?} run: {report:#?}", report.plan.transport);
    assert!(report.errors.is_empty(), "{what}");
    assert_eq!(report.connected, 24, "{what}");
    assert_eq!(report.disconnects, 0, "pings unanswered? {what}");
    assert!(report.sent > 0, "{what}");
    // Each message goes to the 7 other members of its room of 8.
    assert_eq!(report.expected, report.sent * 7, "{what}");
    assert_eq!(report.unique, report.expected, "{what}");
    assert_eq!(
        (
            report.lost,
            report.duplicates,
            report.reordered,
            report.lagged
        ),
        (0, 0, 0, 0),
        "{what}"
    );
    // The measured window is part of the run: its deliveries are some of
    // those counted, not more.
    assert!(report.measured_deliveries > 0, "{what}");
    assert!(report.measured_deliveries <= report.unique, "{what}");
    assert!(
        report.latency.count > 0 && report.latency.p50_us > 0,
        "{what}"
    );
    assert!(report.latency.p50_us <= report.latency.p99_us, "{what}");
    assert!(report.server_cpu_secs.is_some(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_out_on_every_transport_counts_every_delivery_once() {
    let server = unlimited();
    for transport in [Transport::Ws, Transport::Tcp, Transport::Irc] {
        let plan = plan(
            transport,
            &server,
            &["--rate", "0", "--window", "16", "--duration", "2.5"],
        );
        let report = run(plan).await.expect("the run completes");
        assert_clean(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rated_run_sends_at_its_rate() {
    let server = unlimited();
    let plan = plan(
        Transport::Ws,
        &server,
        &["--rate", "300", "--duration", "2"],
    );
    let report = run(plan).await.expect("the run completes");
    assert_clean(&report);
    // 300 messages a second over 2.5 s of sending (warm-up included): 750,
    // give or take the start and the end and a busy machine (flat out
    // would be thousands).
    assert!((450..=1050).contains(&report.sent), "sent {}", report.sent);
}
