//! A small load generator for the durability cost: `clients` JSON-lines
//! TCP clients join one room and each says `messages` texts, keeping up to
//! `window` unanswered at a time; a message counts once its sender got the
//! echo (which, with the store, means it is committed). Prints messages/s.
//!
//! ```sh
//! target/release/banter --memory-only --message-rate 0 &   # or without --memory-only: SQLite
//! cargo run --release --example bench -- 127.0.0.1:7878 20 500 32
//! ```

use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args.first().cloned().unwrap_or("127.0.0.1:7878".into());
    let arg = |i: usize, d: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(d);
    let (clients, messages, window) = (arg(1, 20), arg(2, 500), arg(3, 32));
    let room = format!("bench{}", std::process::id());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (addr, room) = (addr.clone(), room.clone());
        tasks.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await?;
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let nick = format!("b{}x{c}", std::process::id() % 10_000);
            let hello = format!(
                "{{\"type\":\"hello\",\"nick\":\"{nick}\"}}\n{{\"type\":\"join\",\"room\":\"{room}\"}}\n"
            );
            write.write_all(hello.as_bytes()).await?;
            let (mut sent, mut echoed) = (0, 0);
            let own = format!("\"from\":\"{nick}\"");
            while echoed < messages {
                while sent < messages && sent - echoed < window {
                    let line = format!(
                        "{{\"type\":\"say\",\"room\":\"{room}\",\"text\":\"message {sent}\"}}\n"
                    );
                    write.write_all(line.as_bytes()).await?;
                    sent += 1;
                }
                let Some(line) = lines.next_line().await? else {
                    anyhow::bail!("server closed");
                };
                if line.contains("\"type\":\"message\"") && line.contains(&own) {
                    echoed += 1;
                } else if line.contains("\"type\":\"error\"") {
                    anyhow::bail!("{line}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    let total = clients * messages;
    println!(
        "{clients} clients x {messages} messages (window {window}): {total} echoed in {secs:.2}s = {:.0} messages/s ({:.0} deliveries/s)",
        total as f64 / secs,
        (total * clients) as f64 / secs
    );
    Ok(())
}
