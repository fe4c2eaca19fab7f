//! The load generator behind `banter-load` (`src/main.rs` is its command
//! line), a library too so that the server's tests drive it.
//!
//! * [`run`] — one scenario: clients, senders, the measurement, the report.
//! * [`wire`] — one client's connection (WebSocket, JSON-lines TCP, IRC).
//! * [`payload`] — what a load message carries and how it is found again.
//! * [`tracker`] — loss, duplicates and reordering per sender.
//! * [`procstat`] — the server's CPU time and memory from `/proc`.
//! * [`floor`] — what one loopback `send` costs: the kernel's share of a delivery.
//! * [`report`] — `BENCHMARKS.md` and the SVG plot from result files.

pub mod floor;
pub mod payload;
pub mod procstat;
pub mod report;
pub mod run;
pub mod tracker;
pub mod wire;
