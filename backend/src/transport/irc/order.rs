//! Lines made at once (a PONG, a numeric for a bad parameter) wait behind
//! the answers to the client's earlier requests, which the router sends
//! when they take effect (a mode, a topic or a message once stored). A
//! client that sends `MODE #a +l 2` then `PING x` gets the MODE line
//! before the PONG, as from any IRC server; clients and test harnesses
//! use a PING to know that what they asked is done.
//!
//! A line waits until every request made before it is answered, or
//! [`MAX_WAIT`] at most (an answer lost to a full outbox must not keep
//! the rest back for ever).

use std::cell::Cell;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::asked::AskedTable;

/// The longest a line waits behind earlier answers.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

/// A line waiting: the newest request made before it, when it was made,
/// and the line.
type Line = (i64, Instant, Bytes);

/// Lines waiting; `None` (the usual case) costs one word. A `Cell` (each
/// use takes the lines out and puts them back), not a `RefCell`, whose
/// borrow count would be a second word in every connection.
#[derive(Default)]
#[allow(clippy::box_collection)] // one word where a VecDeque takes four
pub(super) struct Waiting(Cell<Option<Box<VecDeque<Line>>>>);

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Waiting").field(&self.any()).finish()
    }
}

impl Waiting {
    /// Holds `bytes` behind request `after`.
    pub fn hold(&self, after: i64, bytes: Bytes) {
        let mut lines = self.0.take().unwrap_or_default();
        lines.push_back((after, Instant::now(), bytes));
        self.0.set(Some(lines));
    }

    /// Whether any line waits.
    pub fn any(&self) -> bool {
        let lines = self.0.take();
        let any = lines.is_some();
        self.0.set(lines);
        any
    }

    /// The lines free to go now, in order: those whose earlier requests
    /// are answered, or that waited long enough (`all`: every one).
    pub fn release(&self, asked: &AskedTable, all: bool) -> Vec<Bytes> {
        let Some(mut lines) = self.0.take() else {
            return Vec::new();
        };
        let mut free = Vec::new();
        while let Some((after, at, _)) = lines.front() {
            if !all && asked.waits_through(*after) && at.elapsed() < MAX_WAIT {
                break;
            }
            free.push(lines.pop_front().expect("looked at").2);
        }
        if !lines.is_empty() {
            self.0.set(Some(lines));
        }
        free
    }
}
