//! [`Outbox`]: a session's bounded outbound queue.
//!
//! Policy: the router never waits on a recipient. `push` always succeeds at
//! once; when the queue already holds `capacity` frames, or the new frame
//! would take it past `max_bytes`, the *oldest* queued frames are dropped
//! and counted. The session's writer then sends a `lagged` notice (with the
//! count) before the frames that survived, so the client knows to fill the
//! gap with a `history` request. What a session keeps queued is therefore
//! bounded by `capacity` frames and by `max_bytes` (the frames' weights:
//! about their JSON size, see [`Frame::weight`]; a frame shared by many
//! outboxes counts in each, as each would keep it alive), except that the
//! newest frame is always kept, however heavy. A client that stops reading
//! altogether is disconnected by the session's write timeout; one that
//! reads just enough to dodge it holds at most these bounds.
//!
//! The queue is a `std::sync::Mutex` around a `VecDeque`: it is held only
//! to push or to swap the whole queue out, never across an `.await`.
//!
//! The outbox also carries its session's one deadline (see
//! [`crate::alarms`]): a session waits on its outbox, its socket and its
//! alarm with one waker and no future of its own for any of them.

use crate::metrics::metrics;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Context;

use banter_protocol::ErrorCode;
use futures_util::task::AtomicWaker;

use crate::core::frame::Frame;

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    /// The session's task, woken by a push, a close or the alarm.
    waker: AtomicWaker,
    capacity: usize,
    /// The most the queued frames may weigh together.
    max_bytes: usize,
    /// When the session's alarm is due (ms on [`crate::alarms`]' clock;
    /// `u64::MAX`: never), and whether it has gone off since last taken.
    deadline: AtomicU64,
    alarm: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    /// What the queued frames weigh together.
    bytes: usize,
    dropped: u64,
    /// Boxed, as in [`BatchInfo`]: every session has an outbox.
    close: Option<Box<(ErrorCode, String)>>,
}

/// What [`Outbox::try_batch`] found besides the frames.
#[derive(Debug, Default, PartialEq)]
pub struct BatchInfo {
    /// Frames dropped since the previous batch.
    pub dropped: u64,
    /// Set once someone asked this session to close (boxed: a session's
    /// task keeps room for one `BatchInfo`).
    pub close: Option<Box<(ErrorCode, String)>>,
}

impl Outbox {
    /// An outbox of at most `capacity` frames, whatever they weigh.
    pub fn new(capacity: usize) -> Self {
        Outbox::bounded(capacity, usize::MAX)
    }

    /// An outbox of at most `capacity` frames weighing `max_bytes`.
    pub fn bounded(capacity: usize, max_bytes: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
            capacity: capacity.max(1),
            max_bytes,
            deadline: AtomicU64::new(u64::MAX),
            alarm: AtomicBool::new(false),
        }
    }

    /// The outbox of a user on another node of a cluster (see
    /// [`crate::broker`]): its own node delivers to it, so frames pushed
    /// here are dropped at once, uncounted. One is shared by all.
    pub fn discard() -> std::sync::Arc<Outbox> {
        static DISCARD: std::sync::OnceLock<std::sync::Arc<Outbox>> = std::sync::OnceLock::new();
        DISCARD
            .get_or_init(|| {
                let mut outbox = Outbox::new(1);
                outbox.capacity = 0;
                std::sync::Arc::new(outbox)
            })
            .clone()
    }

    /// Queues a frame, dropping the oldest ones while the queue is full or
    /// would weigh too much with it. Returns `false` if it dropped something.
    pub fn push(&self, frame: Frame) -> bool {
        if self.capacity == 0 {
            return true;
        }
        // Worked out once per frame (the first push), outside the lock.
        let weight = frame.weight();
        let mut state = self.state.lock().unwrap();
        let mut kept_all = true;
        while state.queue.len() >= self.capacity
            || (state.bytes + weight > self.max_bytes && !state.queue.is_empty())
        {
            let Some(oldest) = state.queue.pop_front() else {
                break;
            };
            state.bytes -= oldest.weight();
            state.dropped += 1;
            kept_all = false;
        }
        state.bytes += weight;
        state.queue.push_back(frame);
        drop(state);
        self.waker.wake();
        metrics().deliveries.inc();
        kept_all
    }

    /// Asks the session to close with a reason once it has written what is
    /// queued. The first reason wins.
    pub fn close(&self, code: ErrorCode, message: impl Into<String>) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.state.lock().unwrap();
        if state.close.is_none() {
            state.close = Some(Box::new((code, message.into())));
        }
        drop(state);
        self.waker.wake();
    }

    /// Whether nothing is queued; if so, frees the queue's buffer (an idle
    /// session keeps none).
    pub fn release_if_idle(&self) -> bool {
        let mut state = self.state.lock().unwrap();
        let idle = state.queue.is_empty();
        if idle && state.queue.capacity() > 0 {
            state.queue = VecDeque::new();
        }
        idle
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    /// What the queued frames weigh together.
    pub fn bytes(&self) -> usize {
        self.state.lock().unwrap().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything queued, without waiting. `into` should be empty;
    /// swapping the queues keeps both allocations for reuse.
    pub fn take_batch(&self, into: &mut VecDeque<Frame>) -> BatchInfo {
        take(&mut self.state.lock().unwrap(), into)
    }

    /// Makes `cx`'s task the one a push, a close or the alarm wakes. Check
    /// for work after this, not before, or a wake-up may be missed.
    pub fn register(&self, cx: &Context<'_>) {
        self.waker.register(cx.waker());
    }

    /// Takes everything queued if there is anything to write (or a close
    /// request), without waiting.
    pub fn try_batch(&self, into: &mut VecDeque<Frame>) -> Option<BatchInfo> {
        let mut state = self.state.lock().unwrap();
        let pending = !state.queue.is_empty() || state.dropped > 0 || state.close.is_some();
        pending.then(|| take(&mut state, into))
    }

    /// Sets when the alarm goes off (ms on the alarms' clock), replacing
    /// the deadline before.
    pub fn set_deadline(&self, at: u64) {
        self.deadline.store(at, Ordering::Relaxed);
    }

    /// Sets the alarm off and wakes the session if its deadline is `now`
    /// or earlier ([`crate::alarms`] calls this for every session).
    pub fn ring_if_due(&self, now: u64) {
        if self.deadline.load(Ordering::Relaxed) <= now && !self.alarm.swap(true, Ordering::AcqRel)
        {
            self.waker.wake();
        }
    }

    /// Whether the alarm went off since this was last asked; resets it.
    pub fn take_alarm(&self) -> bool {
        self.alarm.swap(false, Ordering::AcqRel)
    }
}

/// Swaps the queue into `into` and reports what else there is.
fn take(state: &mut State, into: &mut VecDeque<Frame>) -> BatchInfo {
    std::mem::swap(&mut state.queue, into);
    // `into` came empty, as it should, or its frames are queued now.
    state.bytes = state.queue.iter().map(Frame::weight).sum();
    BatchInfo {
        dropped: std::mem::take(&mut state.dropped),
        close: state.close.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::ServerMessage;
    use std::task::Poll;

    /// Waits as a session does: until there is something to write (or a
    /// close request), then takes it all.
    async fn next_batch(outbox: &Outbox, into: &mut VecDeque<Frame>) -> BatchInfo {
        std::future::poll_fn(|cx| {
            outbox.register(cx);
            outbox.try_batch(into).map_or(Poll::Pending, Poll::Ready)
        })
        .await
    }

    fn frame(n: u64) -> Frame {
        Frame::new(ServerMessage::Lagged { dropped: n })
    }

    fn ids(q: &VecDeque<Frame>) -> Vec<u64> {
        q.iter()
            .map(|f| match f.message() {
                Some(ServerMessage::Lagged { dropped }) => *dropped,
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn drops_the_oldest_when_full_and_counts() {
        let outbox = Outbox::new(3);
        for n in 1..=5 {
            outbox.push(frame(n));
        }
        assert_eq!(outbox.len(), 3);
        let mut batch = VecDeque::new();
        let info = outbox.take_batch(&mut batch);
        assert_eq!(ids(&batch), vec![3, 4, 5]);
        assert_eq!(info.dropped, 2);
        batch.clear();
        assert_eq!(outbox.take_batch(&mut batch).dropped, 0, "the count resets");
    }

    #[test]
    fn drops_the_oldest_past_the_byte_bound_and_keeps_the_newest() {
        let big = |n: usize| Frame::local(bytes::Bytes::from(vec![b'x'; n]));
        let outbox = Outbox::bounded(100, 1000);
        for _ in 0..4 {
            outbox.push(big(300));
        }
        assert_eq!((outbox.len(), outbox.bytes()), (3, 900));
        // One heavier than the bound is kept, alone.
        assert!(!outbox.push(big(1500)));
        assert_eq!((outbox.len(), outbox.bytes()), (1, 1500));
        outbox.push(big(10));
        assert_eq!((outbox.len(), outbox.bytes()), (1, 10));
        let mut batch = VecDeque::new();
        let info = outbox.take_batch(&mut batch);
        assert_eq!((info.dropped, batch.len()), (5, 1));
        assert_eq!(outbox.bytes(), 0, "taking the queue takes its weight");
        // A shared frame counts in every outbox that holds it.
        let other = Outbox::bounded(100, 1000);
        let shared = big(600);
        outbox.push(shared.clone());
        other.push(shared);
        assert_eq!((outbox.bytes(), other.bytes()), (600, 600));
    }

    #[tokio::test]
    async fn next_batch_waits_for_a_push() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let pusher = outbox.clone();
        let task = tokio::spawn(async move {
            let mut batch = VecDeque::new();
            next_batch(&outbox, &mut batch).await;
            ids(&batch)
        });
        tokio::task::yield_now().await;
        pusher.push(frame(7));
        assert_eq!(task.await.unwrap(), vec![7]);
    }

    #[tokio::test]
    async fn close_wakes_the_writer() {
        let outbox = Outbox::new(8);
        outbox.close(ErrorCode::SlowConsumer, "x");
        outbox.close(ErrorCode::ShuttingDown, "later reasons lose");
        let mut batch = VecDeque::new();
        let info = next_batch(&outbox, &mut batch).await;
        assert_eq!(info.close.unwrap().0, ErrorCode::SlowConsumer);
    }
}
