//! A micro-benchmark of the core's fan-out, no sockets: `members` sessions
//! in one room of a memory-only router, one of them says `messages` texts;
//! after each, every member's outbox is drained as a JSON writer does it
//! (take the batch, read each frame's shared JSON line). Prints the time
//! per delivery (a push into an outbox and its write-side share), the best
//! of `rounds`. With a fourth argument `0` the drain does not read the
//! JSON (as for IRC members, whose rendering is not counted here).
//!
//! ```sh
//! cargo run --release -p banter --example fanout -- 1000 2000 5
//! cargo run --release -p banter --example fanout -- 10 100000 5 0
//! ```
//!
//! It measures the router's lock, the outboxes and the frames' encoding,
//! which is what a change to the outbox's bookkeeping can slow down; the
//! whole server under load is `banter-load` (see docs/benchmarking.md).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use banter::core::outbox::Outbox;
use banter::core::router::{Router, RouterConfig};
use banter_protocol::{Limits, Nick, PROTOCOL_VERSION, RoomName, ServerMessage};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    let (members, messages, rounds) = (arg(0, 1000), arg(1, 2000), arg(2, 5));
    let json = arg(3, 1) != 0;
    let text = "x".repeat(64);
    let mut best = f64::MAX;
    for _ in 0..rounds {
        best = best.min(round(members, messages, &text, json));
    }
    println!(
        "{members} members, {messages} messages of {} bytes, {} drain: {best:.1} ns per delivery (best of {rounds})",
        text.len(),
        if json { "JSON" } else { "non-JSON" }
    );
}

/// One run; nanoseconds per delivery.
fn round(members: usize, messages: usize, text: &str, json: bool) -> f64 {
    let router = Router::new(RouterConfig {
        max_text_bytes: 4096,
        max_rooms_per_session: 10,
        max_devices: 10,
        max_offline: 100,
        max_rooms: 10,
        history_len: 100,
        max_lines: 100,
        edit_window_ms: 0,
    });
    let room = RoomName::new("bench").unwrap();
    let mut sessions = Vec::new();
    for n in 0..members {
        let nick = Nick::new(format!("m{n}")).unwrap();
        let outbox = Arc::new(Outbox::new(1024));
        let welcome = ServerMessage::Welcome {
            vapid_public_key: None,
            nick: nick.clone(),
            protocol: PROTOCOL_VERSION,
            server: "bench".into(),
            limits: Limits {
                max_text_bytes: 4096,
                max_frame_bytes: 16384,
                max_rooms: 10,
                idle_timeout_secs: 60,
                max_lines: 100,
                edit_window_secs: 86_400,
            },
        };
        let id = router.connect(nick, outbox.clone(), welcome, None).unwrap();
        router.join(id, room.clone(), None, None).unwrap();
        sessions.push((id, outbox));
    }
    let mut batch = VecDeque::new();
    let drain = |batch: &mut VecDeque<_>| {
        let mut bytes = 0;
        for (_, outbox) in &sessions {
            outbox.take_batch(batch);
            for frame in batch.drain(..) {
                let frame: banter::core::frame::Frame = frame;
                if json {
                    bytes += frame.json_line().len();
                }
            }
        }
        bytes
    };
    drain(&mut batch);
    let sender = sessions[0].0;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..messages {
        router
            .say(sender, room.clone(), text.to_string(), false, None, None)
            .unwrap();
        bytes += drain(&mut batch);
    }
    let elapsed = start.elapsed();
    std::hint::black_box(bytes);
    elapsed.as_nanos() as f64 / (messages * members) as f64
}
