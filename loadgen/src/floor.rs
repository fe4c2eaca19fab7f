//! The kernel's floor: what one loopback TCP `send` of a chat line costs on
//! this machine, measured with no chat server at all. Every server pays at
//! least this per delivery, whatever it does in user space, so it bounds
//! how fast one core can fan a message out.
//!
//! One thread (the "server", pinned to `--sender-cpu`) writes lines round
//! robin over N accepted connections, a blocking `send` each, and reads its
//! own CPU time (`getrusage(RUSAGE_THREAD)`); another (pinned to
//! `--drain-cpu`) reads every byte back, as the generator's clients would.

use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use serde::Serialize;
use tokio::io::AsyncReadExt as _;

/// `banter-load floor`'s arguments.
#[derive(Clone, Debug, clap::Args, Serialize)]
pub struct Plan {
    /// Connections the sends go round robin over (a room's members).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Sends measured (after a warm-up of a tenth as many).
    #[arg(long, default_value_t = 300_000)]
    pub sends: usize,
    /// Bytes per send: an IRC PRIVMSG of the generator's payload is ~120.
    #[arg(long, default_value_t = 121)]
    pub bytes: usize,
    /// Core for the sending thread (the server's core in the benchmark).
    #[arg(long)]
    pub sender_cpu: Option<usize>,
    /// Core for the reading thread (the generator's core).
    #[arg(long)]
    pub drain_cpu: Option<usize>,
    /// Always "floor" (where the report finds it).
    #[arg(skip = String::from("floor"))]
    pub label: String,
    #[arg(skip = String::from("kernel"))]
    pub server: String,
}

/// What one send cost, on average.
#[derive(Debug, Serialize)]
pub struct Floor {
    pub plan: Plan,
    /// The sending thread's kernel CPU time per send.
    pub sys_us_per_send: f64,
    /// Its user CPU time per send (the loop itself: next to nothing).
    pub user_us_per_send: f64,
    /// Wall-clock time per send.
    pub wall_us_per_send: f64,
    /// The least one core needs to write a copy to each of 999 members
    /// (a message in a room of 1,000): `sys + user` × 999, in ms.
    pub fanout_999_ms: f64,
    /// The share of one core that 100,000 sends a second take at this cost.
    pub core_share_at_100k: f64,
}

/// Runs the measurement (blocking: two threads of its own).
pub fn measure(plan: Plan) -> Result<Floor> {
    if plan.connections == 0 || plan.sends == 0 || plan.bytes == 0 {
        bail!("--connections, --sends and --bytes must be at least 1");
    }
    let warmup = (plan.sends / 10).max(plan.connections);
    let total = warmup + plan.sends;
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    let addr = listener.local_addr()?;
    // Each connection gets every `connections`th send: the drain knows
    // exactly how many bytes to wait for on each.
    let expected: Vec<usize> = (0..plan.connections)
        .map(|i| {
            (total / plan.connections + usize::from(i < total % plan.connections)) * plan.bytes
        })
        .collect();
    let drain_cpu = plan.drain_cpu;
    let drain = std::thread::spawn(move || -> Result<()> {
        if let Some(cpu) = drain_cpu {
            pin(cpu)?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        runtime.block_on(async move {
            let mut streams = Vec::with_capacity(expected.len());
            for _ in &expected {
                streams.push(tokio::net::TcpStream::connect(addr).await?);
            }
            let mut readers = tokio::task::JoinSet::new();
            for (mut stream, want) in streams.into_iter().zip(expected) {
                readers.spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut got = 0;
                    while got < want {
                        match stream.read(&mut buf).await? {
                            0 => bail!("connection closed after {got} of {want} bytes"),
                            n => got += n,
                        }
                    }
                    Ok(())
                });
            }
            while let Some(done) = readers.join_next().await {
                done??;
            }
            Ok(())
        })
    });

    if let Some(cpu) = plan.sender_cpu {
        pin(cpu)?;
    }
    let mut conns: Vec<TcpStream> = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections {
        let (stream, _) = listener
            .accept()
            .context("accepting the drain's connection")?;
        stream.set_nodelay(true)?;
        conns.push(stream);
    }
    let line = {
        let mut line = vec![b'x'; plan.bytes];
        line[plan.bytes - 1] = b'\n';
        line
    };
    let mut send = |i: usize| conns[i % plan.connections].write_all(&line);
    for i in 0..warmup {
        send(i)?;
    }
    let (user0, sys0) = thread_cpu_us();
    let start = Instant::now();
    for i in warmup..total {
        send(i)?;
    }
    let wall = start.elapsed().as_secs_f64() * 1e6;
    let (user1, sys1) = thread_cpu_us();
    drain
        .join()
        .map_err(|_| anyhow::anyhow!("the drain thread panicked"))??;

    let n = plan.sends as f64;
    let sys = (sys1 - sys0) / n;
    let user = (user1 - user0) / n;
    Ok(Floor {
        sys_us_per_send: sys,
        user_us_per_send: user,
        wall_us_per_send: wall / n,
        fanout_999_ms: (sys + user) * 999.0 / 1000.0,
        core_share_at_100k: (sys + user) * 100_000.0 / 1e6,
        plan,
    })
}

/// A readable line for stderr.
pub fn summary(f: &Floor) -> String {
    format!(
        "floor: {} sends of {} bytes over {} loopback connections: {:.2} µs kernel + {:.2} µs user \
         per send ({:.2} µs wall); a 999-copy fan-out takes at least {:.1} ms of one core, \
         100,000 sends/s {:.0}% of it\n",
        f.plan.sends,
        f.plan.bytes,
        f.plan.connections,
        f.sys_us_per_send,
        f.user_us_per_send,
        f.wall_us_per_send,
        f.fanout_999_ms,
        f.core_share_at_100k * 100.0
    )
}

/// Pins the calling thread to `cpu`.
fn pin(cpu: usize) -> Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        bail!("no such core: {cpu}");
    }
    // SAFETY: `cpu_set_t` is plain data (all zeroes is the empty set);
    // CPU_SET is given an index checked against its size above, and
    // sched_setaffinity(0, ..) reads the set for the calling thread only.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("pinning to core {cpu}"));
    }
    Ok(())
}

/// The calling thread's (user, system) CPU time in µs.
fn thread_cpu_us() -> (f64, f64) {
    // SAFETY: `rusage` is plain data, and getrusage only writes into it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_THREAD, &mut usage);
        usage
    };
    let us = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    (us(usage.ru_utime), us(usage.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(connections: usize, sends: usize) -> Plan {
        Plan {
            connections,
            sends,
            bytes: 121,
            sender_cpu: None,
            drain_cpu: None,
            label: "floor".into(),
            server: "kernel".into(),
        }
    }

    #[test]
    fn every_byte_is_drained_and_the_cost_is_positive() {
        // Uneven: the drain must expect one more send on some connections.
        // Enough sends for tens of milliseconds: thread CPU time is counted
        // in scheduler ticks, and 5,000 sends (3 ms) can read as zero.
        let floor = measure(plan(7, 50_003)).unwrap();
        let per_send = floor.sys_us_per_send + floor.user_us_per_send;
        assert!(per_send > 0.0 && floor.wall_us_per_send > 0.0, "{floor:?}");
        assert!((floor.fanout_999_ms - per_send * 0.999).abs() < 1e-9);
        assert!(summary(&floor).contains("over 7 loopback connections"));
    }

    #[test]
    fn an_empty_plan_is_refused() {
        let err = measure(plan(0, 10)).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
    }
}
