//! `banter-load`: a load generator for Banter and other chat servers.
//! `banter-load run …` drives N clients over WebSocket, JSON-lines TCP or
//! IRC and prints a summary (and JSON with `--json`); `banter-load report`
//! turns a directory of such JSON results into `BENCHMARKS.md` and an SVG
//! plot; `banter-load floor` measures what one loopback send costs here.
//! See docs/benchmarking.md and `scripts/bench`.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use banter_load::{floor, report, run};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "Load generator for Banter (and any IRC server)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one scenario against one server.
    Run {
        #[command(flatten)]
        plan: run::Plan,
        /// Also write the result as JSON to this file (`-` for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Measures what one loopback TCP send costs here (no server involved):
    /// the least any server pays per delivery.
    Floor {
        #[command(flatten)]
        plan: floor::Plan,
        /// Also write the result as JSON to this file (`-` for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Writes BENCHMARKS.md and the latency plot from result files.
    Report(report::Args),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { plan, json } => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
                .enable_all()
                .build()?;
            let result = runtime.block_on(run::run(plan))?;
            write_json(json.as_deref(), &result)?;
            eprint!("{}", report::summary(&result));
            // Client tasks may still be saying goodbye: do not wait for them.
            runtime.shutdown_background();
            Ok(())
        }
        Command::Floor { plan, json } => {
            let result = floor::measure(plan)?;
            write_json(json.as_deref(), &result)?;
            eprint!("{}", floor::summary(&result));
            Ok(())
        }
        Command::Report(args) => report::write(&args),
    }
}

/// Writes a result as JSON to `path` (`-`: stdout), if one was given.
fn write_json(path: Option<&std::path::Path>, result: &impl serde::Serialize) -> Result<()> {
    let encoded = serde_json::to_string_pretty(result)?;
    match path {
        Some(path) if path.as_os_str() == "-" => println!("{encoded}"),
        Some(path) => std::fs::write(path, encoded + "\n")
            .with_context(|| format!("writing {}", path.display()))?,
        None => {}
    }
    Ok(())
}
