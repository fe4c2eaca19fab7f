//! Per-receiver sequence accounting: for every sender a receiver hears,
//! which sequence numbers arrived, so duplicates and reordering are
//! counted exactly within a sliding window, and loss follows at the end
//! (what was sent minus what arrived once).

/// How far behind the newest sequence number a late arrival is still told
/// apart from a duplicate.
pub const WINDOW: u64 = 128;

/// What one arrival was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next one expected, or a later one (earlier ones still missing).
    InOrder,
    /// Older than one already received, and new: reordered.
    Late,
    /// Received before.
    Duplicate,
    /// Older than the window can tell: reordered, or a duplicate of
    /// something received long ago. Counted as reordered, and not as a
    /// unique arrival, so loss is never understated.
    TooOld,
}

/// One sender's sequence as one receiver sees it.
#[derive(Clone, Debug, Default)]
pub struct SeqState {
    /// One past the highest sequence number received.
    next: u64,
    /// Bit `i` set: `next - 1 - i` was received.
    seen: u128,
}

impl SeqState {
    pub fn arrive(&mut self, seq: u64) -> Arrival {
        if seq >= self.next {
            let shift = seq + 1 - self.next;
            self.seen = if shift >= 128 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.next = seq + 1;
            return Arrival::InOrder;
        }
        let behind = self.next - 1 - seq;
        if behind >= WINDOW {
            return Arrival::TooOld;
        }
        let bit = 1u128 << behind;
        if self.seen & bit != 0 {
            Arrival::Duplicate
        } else {
            self.seen |= bit;
            Arrival::Late
        }
    }
}

/// Everything one receiver heard, by sender.
#[derive(Debug, Default)]
pub struct Tracker {
    /// Few senders per room: a short list beats a map.
    senders: Vec<(u32, SeqState)>,
    pub unique: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

impl Tracker {
    /// Records an arrival; `true` if it is the first copy of that message.
    pub fn arrive(&mut self, sender: u32, seq: u64) -> bool {
        let state = match self.senders.iter().position(|(s, _)| *s == sender) {
            Some(i) => &mut self.senders[i].1,
            None => {
                self.senders.push((sender, SeqState::default()));
                &mut self.senders.last_mut().expect("just pushed").1
            }
        };
        match state.arrive(seq) {
            Arrival::InOrder => {
                self.unique += 1;
                true
            }
            Arrival::Late => {
                self.unique += 1;
                self.reordered += 1;
                true
            }
            Arrival::Duplicate => {
                self.duplicates += 1;
                false
            }
            Arrival::TooOld => {
                self.reordered += 1;
                false
            }
        }
    }
}

/// Messages that should have arrived and did not, net of what the server
/// admitted dropping (`lagged` notices).
pub fn lost(expected: u64, unique: u64, lagged: u64) -> u64 {
    expected.saturating_sub(unique).saturating_sub(lagged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_and_gaps() {
        let mut t = Tracker::default();
        for seq in [0, 1, 2, 5, 6] {
            assert!(t.arrive(9, seq));
        }
        assert_eq!((t.unique, t.duplicates, t.reordered), (5, 0, 0));
        // 3 and 4 never came: with 7 sent, 2 are lost.
        assert_eq!(lost(7, t.unique, 0), 2);
        assert_eq!(
            lost(7, t.unique, 2),
            0,
            "dropped by the server, and said so"
        );
    }

    #[test]
    fn late_arrivals_are_reordered_not_lost() {
        let mut t = Tracker::default();
        for seq in [0, 2, 1, 3] {
            t.arrive(1, seq);
        }
        assert_eq!((t.unique, t.duplicates, t.reordered), (4, 0, 1));
        assert_eq!(lost(4, t.unique, 0), 0);
    }

    #[test]
    fn duplicates_are_counted_once() {
        let mut t = Tracker::default();
        assert!(t.arrive(1, 0));
        assert!(t.arrive(1, 1));
        assert!(!t.arrive(1, 1));
        assert!(!t.arrive(1, 0));
        assert_eq!((t.unique, t.duplicates, t.reordered), (2, 2, 0));
    }

    #[test]
    fn senders_are_independent() {
        let mut t = Tracker::default();
        assert!(t.arrive(1, 0));
        assert!(t.arrive(2, 0), "same seq, other sender: not a duplicate");
        assert!(t.arrive(2, 1));
        assert!(t.arrive(1, 1));
        assert_eq!((t.unique, t.duplicates, t.reordered), (4, 0, 0));
    }

    #[test]
    fn the_window_edge() {
        let mut s = SeqState::default();
        assert_eq!(s.arrive(0), Arrival::InOrder);
        assert_eq!(s.arrive(WINDOW), Arrival::InOrder);
        // `WINDOW - 1` behind is still inside: 1 was never seen.
        assert_eq!(s.arrive(1), Arrival::Late);
        assert_eq!(s.arrive(1), Arrival::Duplicate);
        // Exactly `WINDOW` behind: too old to tell.
        assert_eq!(s.arrive(0), Arrival::TooOld);
        // A jump far ahead forgets the window entirely.
        assert_eq!(s.arrive(10_000), Arrival::InOrder);
        assert_eq!(s.arrive(9_999), Arrival::Late);
        assert_eq!(s.arrive(10_000), Arrival::Duplicate);
    }

    #[test]
    fn a_shuffled_stream_with_repeats_adds_up() {
        // A deterministic shuffle within small blocks plus every 10th
        // message repeated: unique + duplicates = arrivals, nothing lost.
        let mut t = Tracker::default();
        let mut arrivals = 0;
        for block in 0..100u64 {
            for i in [3, 0, 2, 1, 4] {
                let seq = block * 5 + i;
                t.arrive(7, seq);
                arrivals += 1;
                if seq % 10 == 0 {
                    t.arrive(7, seq);
                    arrivals += 1;
                }
            }
        }
        assert_eq!(t.unique, 500);
        assert_eq!(t.duplicates, 50);
        assert_eq!(t.unique + t.duplicates, arrivals);
        // In each block 3 came first, so 0, 2 and 1 arrived late.
        assert_eq!(t.reordered, 300);
        assert_eq!(lost(500, t.unique, 0), 0);
    }
}
