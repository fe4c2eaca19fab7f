//! When to try again after the connection drops: exponential backoff with
//! jitter, so a restarted server is not hit by every browser at once.

/// First retry after about this long.
pub const BASE_MS: u64 = 500;
/// Never wait longer than this between tries.
pub const MAX_MS: u64 = 30_000;

/// The wait before try number `attempt` (1 for the first retry), given a
/// `random` number in `[0, 1)`: between half and all of
/// `min(MAX_MS, BASE_MS · 2^(attempt-1))` ("equal jitter").
pub fn backoff_ms(attempt: u32, random: f64) -> u64 {
    let exp = attempt.saturating_sub(1).min(16);
    let ceiling = BASE_MS.saturating_mul(1 << exp).min(MAX_MS);
    let random = random.clamp(0.0, 1.0);
    ceiling / 2 + ((ceiling / 2) as f64 * random) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        assert_eq!(backoff_ms(1, 0.0), 250);
        assert_eq!(backoff_ms(1, 0.999), 499);
        assert_eq!(backoff_ms(2, 0.0), 500);
        assert_eq!(backoff_ms(3, 0.0), 1000);
        assert_eq!(backoff_ms(20, 0.0), MAX_MS / 2);
        assert!(backoff_ms(20, 0.99) < MAX_MS);
        assert_eq!(backoff_ms(u32::MAX, 1.0), MAX_MS);
    }

    #[test]
    fn jitter_spreads_clients() {
        let waits: Vec<u64> = [0.1, 0.5, 0.9].iter().map(|&r| backoff_ms(5, r)).collect();
        assert!(waits[0] < waits[1] && waits[1] < waits[2], "{waits:?}");
    }
}
