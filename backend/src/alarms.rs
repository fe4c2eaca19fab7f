//! [`Alarms`]: every session's deadline (handshake, idle ping, ping answer,
//! write) and the shutdown notice, kept by one task for all sessions.
//!
//! A tokio `Sleep` per session is 112 bytes of its task, and a shutdown
//! waiter 72 more, for as long as the connection lives; here a session's
//! deadline is 8 bytes in its [`Outbox`] and its place in a list. Every
//! [`TICK`] the task rings each session whose deadline has passed (through
//! the outbox's waker, the one the session waits with), so an alarm goes
//! off up to a tick late: fine for timeouts counted in seconds.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banter_protocol::ErrorCode;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::core::outbox::Outbox;

/// How often deadlines are checked: the most an alarm may be late.
pub const TICK: Duration = Duration::from_millis(250);

/// What a session is told when the server shuts down.
pub const SHUTTING_DOWN: &str = "the server is shutting down";

pub struct Alarms {
    /// The clock's zero: deadlines are milliseconds after it.
    epoch: Instant,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Every live session's outbox and client address; `None` where one
    /// has gone (its index is in `free`, for the next).
    slots: Vec<Option<(Arc<Outbox>, IpAddr)>>,
    free: Vec<u32>,
    /// Set at shutdown: a session that registers later is told at once.
    closing: bool,
}

/// A session's place in [`Alarms`]; it leaves with [`Alarms::remove`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot(u32);

impl Default for Alarms {
    fn default() -> Self {
        Alarms {
            epoch: Instant::now(),
            inner: Mutex::new(Inner::default()),
        }
    }
}

impl Alarms {
    /// `at` on this clock, rounded up: an alarm never goes off before `at`.
    pub fn at(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch);
        u64::try_from(since.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX - 1)
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// Adds a session (its client at `ip`); during shutdown it is asked
    /// to close at once.
    pub fn add(&self, outbox: Arc<Outbox>, ip: IpAddr) -> Slot {
        let mut inner = self.inner.lock().unwrap();
        if inner.closing {
            outbox.close(ErrorCode::ShuttingDown, SHUTTING_DOWN);
        }
        if let Some(index) = inner.free.pop() {
            inner.slots[index as usize] = Some((outbox, ip));
            return Slot(index);
        }
        inner.slots.push(Some((outbox, ip)));
        Slot(u32::try_from(inner.slots.len() - 1).expect("fewer than 2^32 sessions"))
    }

    pub fn remove(&self, slot: Slot) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(place) = inner.slots.get_mut(slot.0 as usize)
            && place.take().is_some()
        {
            inner.free.push(slot.0);
        }
    }

    /// Sessions registered now.
    pub fn len(&self) -> usize {
        let inner = self.inner.lock().unwrap();
        inner.slots.len() - inner.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Rings every session whose deadline has passed.
    fn ring(&self) {
        let now = self.now();
        let inner = self.inner.lock().unwrap();
        for (outbox, _) in inner.slots.iter().flatten() {
            outbox.ring_if_due(now);
        }
    }

    /// Asks every session to close, and every later one.
    fn close_all(&self) {
        let mut inner = self.inner.lock().unwrap();
        inner.closing = true;
        for (outbox, _) in inner.slots.iter().flatten() {
            outbox.close(ErrorCode::ShuttingDown, SHUTTING_DOWN);
        }
    }

    /// Asks every session whose client address `matches` to close, with
    /// `code` (a server ban on an address range); answers how many.
    pub fn close_from(
        &self,
        matches: impl Fn(IpAddr) -> bool,
        code: ErrorCode,
        message: &str,
    ) -> usize {
        let inner = self.inner.lock().unwrap();
        let mut closed = 0;
        for (outbox, ip) in inner.slots.iter().flatten() {
            if matches(*ip) {
                outbox.close(code, message);
                closed += 1;
            }
        }
        closed
    }

    /// Keeps the alarms until `shutdown`, then tells every session.
    pub async fn run(&self, shutdown: &CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => self.ring(),
            }
        }
        self.close_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    use std::collections::VecDeque;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_rings_once_it_has_passed_and_not_before() {
        let alarms = Alarms::default();
        let outbox = Arc::new(Outbox::new(4));
        let slot = alarms.add(outbox.clone(), LOCAL);
        let at = Instant::now() + Duration::from_secs(30);
        outbox.set_deadline(alarms.at(at));
        tokio::time::advance(Duration::from_millis(29_999)).await;
        alarms.ring();
        assert!(!outbox.take_alarm(), "not yet due");
        tokio::time::advance(Duration::from_millis(1)).await;
        alarms.ring();
        assert!(outbox.take_alarm(), "due");
        assert!(!outbox.take_alarm(), "taken once");
        alarms.remove(slot);
        assert!(alarms.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_rings_within_a_tick_and_tells_everyone_at_shutdown() {
        let alarms = Arc::new(Alarms::default());
        let outbox = Arc::new(Outbox::new(4));
        alarms.add(outbox.clone(), LOCAL);
        let at = Instant::now() + Duration::from_secs(60);
        outbox.set_deadline(alarms.at(at));
        let shutdown = CancellationToken::new();
        let task = tokio::spawn({
            let (alarms, shutdown) = (alarms.clone(), shutdown.clone());
            async move { alarms.run(&shutdown).await }
        });
        tokio::time::sleep_until(at - TICK).await;
        assert!(!outbox.take_alarm(), "a minute has not passed");
        tokio::time::sleep_until(at + TICK).await;
        assert!(outbox.take_alarm(), "rung within a tick of its deadline");
        shutdown.cancel();
        task.await.unwrap();
        let info = outbox
            .try_batch(&mut VecDeque::new())
            .expect("a close waits");
        assert_eq!(info.close.unwrap().0, ErrorCode::ShuttingDown);
    }

    #[test]
    fn slots_are_reused_and_shutdown_reaches_late_comers() {
        let alarms = Alarms::default();
        let a = alarms.add(Arc::new(Outbox::new(4)), LOCAL);
        alarms.remove(a);
        alarms.remove(a);
        assert_eq!(alarms.len(), 0, "removing twice is harmless");
        let b = Arc::new(Outbox::new(4));
        assert_eq!(
            alarms.add(b.clone(), LOCAL),
            a,
            "the free slot is taken again"
        );
        alarms.close_all();
        let late = Arc::new(Outbox::new(4));
        alarms.add(late.clone(), LOCAL);
        for outbox in [b, late] {
            let info = outbox
                .try_batch(&mut VecDeque::new())
                .expect("a close waits");
            assert_eq!(info.close.unwrap().0, ErrorCode::ShuttingDown);
        }
    }
}
