//! [`Outbox`]: a session's bounded outbound queue.
//!
//! Policy: the router never waits on a recipient. `push` always succeeds at
//! once; when the queue already holds `capacity` frames, the *oldest* queued
//! frame is dropped and counted. The session's writer then sends a
//! `lagged` notice (with the count) before the frames that survived, so the
//! client knows to fill the gap with a `history` request. Memory per session
//! is therefore bounded by `capacity` frames. A client that stops reading
//! altogether is disconnected by the session's write timeout.
//!
//! The queue is a `std::sync::Mutex` around a `VecDeque`: it is held only
//! to push or to swap the whole queue out, never across an `.await`.

use crate::metrics::metrics;
use std::collections::VecDeque;
use std::sync::Mutex;

use banter_protocol::ErrorCode;
use tokio::sync::Notify;

use crate::frame::Frame;

#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Frame>,
    dropped: u64,
    close: Option<(ErrorCode, String)>,
}

/// What [`Outbox::next_batch`] found besides the frames.
#[derive(Debug, Default, PartialEq)]
pub struct BatchInfo {
    /// Frames dropped since the previous batch.
    pub dropped: u64,
    /// Set once someone asked this session to close.
    pub close: Option<(ErrorCode, String)>,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox {
            state: Mutex::new(State::default()),
            ready: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    /// The outbox of a user on another node of a cluster (see
    /// [`crate::broker`]): its own node delivers to it, so frames pushed
    /// here are dropped at once, uncounted. One is shared by all.
    pub fn discard() -> std::sync::Arc<Outbox> {
        static DISCARD: std::sync::OnceLock<std::sync::Arc<Outbox>> = std::sync::OnceLock::new();
        DISCARD
            .get_or_init(|| {
                std::sync::Arc::new(Outbox {
                    state: Mutex::new(State::default()),
                    ready: Notify::new(),
                    capacity: 0,
                })
            })
            .clone()
    }

    /// Queues a frame, dropping the oldest one if the queue is full.
    /// Returns `false` if it dropped something.
    pub fn push(&self, frame: Frame) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let mut state = self.state.lock().unwrap();
        let mut kept_all = true;
        if state.queue.len() >= self.capacity {
            state.queue.pop_front();
            state.dropped += 1;
            kept_all = false;
        }
        state.queue.push_back(frame);
        drop(state);
        self.ready.notify_one();
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
            state.close = Some((code, message.into()));
        }
        drop(state);
        self.ready.notify_one();
    }

    pub fn len(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes everything queued, without waiting. `into` should be empty;
    /// swapping the queues keeps both allocations for reuse.
    pub fn take_batch(&self, into: &mut VecDeque<Frame>) -> BatchInfo {
        let mut state = self.state.lock().unwrap();
        std::mem::swap(&mut state.queue, into);
        BatchInfo {
            dropped: std::mem::take(&mut state.dropped),
            close: state.close.clone(),
        }
    }

    /// Waits until there is something to write (or a close request), then
    /// takes it all. Cancel-safe: nothing is taken unless it returns.
    pub async fn next_batch(&self, into: &mut VecDeque<Frame>) -> BatchInfo {
        loop {
            {
                let state = self.state.lock().unwrap();
                let pending = !state.queue.is_empty() || state.dropped > 0 || state.close.is_some();
                drop(state);
                if pending {
                    return self.take_batch(into);
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push
            // between the check above and this await is not lost.
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banter_protocol::ServerMessage;

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

    #[tokio::test]
    async fn next_batch_waits_for_a_push() {
        let outbox = std::sync::Arc::new(Outbox::new(8));
        let pusher = outbox.clone();
        let task = tokio::spawn(async move {
            let mut batch = VecDeque::new();
            outbox.next_batch(&mut batch).await;
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
        let info = outbox.next_batch(&mut batch).await;
        assert_eq!(info.close.unwrap().0, ErrorCode::SlowConsumer);
    }
}
