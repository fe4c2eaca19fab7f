//! Limits against abuse: token buckets (messages and joins per session,
//! new connections per address) and the count of open connections per
//! address. Each limit is a setting; see docs/operating.md, "Limits".

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::metrics::{Limit, metrics};

/// `burst` tokens at most, refilled at `rate` a second; a rate of 0 means
/// no limit. Small (every session keeps two, and an IRC connection a
/// third): `f32` tokens, whole ones exact up to 2^24, the most a burst may
/// be; the last take as nanoseconds from [`epoch`], not an `Instant` of 16.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f32,
    burst: f32,
    rate: f32,
    last: i64,
}

/// A fixed instant of this process that buckets count their time from.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds from [`epoch`] (before it: negative), saturating
/// some 292 years either way.
fn nanos(at: Instant) -> i64 {
    let epoch = epoch();
    match at.checked_duration_since(epoch) {
        Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        None => -i64::try_from((epoch - at).as_nanos()).unwrap_or(i64::MAX),
    }
}

impl TokenBucket {
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        let burst = burst.clamp(1, 1 << 24) as f32;
        // A rate too small for an f32 is the smallest one, not none.
        let rate = if rate > 0.0 {
            (rate as f32).max(f32::MIN_POSITIVE)
        } else {
            0.0
        };
        TokenBucket {
            tokens: burst,
            burst,
            rate,
            last: nanos(now),
        }
    }

    /// The tokens there are at `now`.
    fn at(&self, now: Instant) -> f64 {
        let elapsed = nanos(now).saturating_sub(self.last).max(0) as f64 / 1e9;
        (f64::from(self.tokens) + elapsed * f64::from(self.rate)).min(f64::from(self.burst))
    }

    /// Takes a token, or says how long until there is one.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let tokens = self.at(now);
        self.last = nanos(now);
        if tokens >= 1.0 {
            self.tokens = (tokens - 1.0) as f32;
            Ok(())
        } else {
            self.tokens = tokens as f32;
            let wait = (1.0 - tokens) / f64::from(self.rate);
            let wait = Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX);
            Err(wait.max(Duration::from_millis(1)))
        }
    }

    /// Whether the bucket is full again at `now` (nothing to remember).
    fn is_full(&self, now: Instant) -> bool {
        self.rate <= 0.0 || self.at(now) >= f64::from(self.burst)
    }
}

/// "in 1.3s" / "in 250ms": when to retry, for error messages.
pub fn retry_in(wait: Duration) -> String {
    if wait >= Duration::from_secs(1) {
        format!("{:.1}s", wait.as_secs_f64())
    } else {
        format!("{}ms", wait.as_millis().max(1))
    }
}

/// Per-address settings.
#[derive(Clone, Copy, Debug)]
pub struct AddressRules {
    /// Open connections per address (0: no limit).
    pub max_connections: usize,
    /// New connections per address per second (0: no limit)...
    pub handshake_rate: f64,
    /// ...with this burst.
    pub handshake_burst: u32,
}

struct Address {
    open: usize,
    handshakes: TokenBucket,
}

/// Open connections and recent handshakes per client address. Entries
/// are forgotten once an address has no connection open and its bucket
/// is full again, so the table stays as small as the active addresses.
pub struct AddressLimits {
    rules: AddressRules,
    table: Mutex<HashMap<IpAddr, Address>>,
}

/// The address a limit counts: IPv4 as is, IPv6 by its /64 (one host
/// usually has a whole /64), an IPv4-mapped IPv6 address as IPv4.
pub fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// Why an address may not connect now.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    /// It has this many connections open already.
    TooMany(usize),
    /// It connected too often; it may again after this long.
    TooFast(Duration),
}

impl Refusal {
    /// A sentence for the client.
    pub fn message(&self) -> String {
        match self {
            Refusal::TooMany(n) => {
                format!("too many connections from your address ({n} open); close one first")
            }
            Refusal::TooFast(wait) => format!(
                "too many new connections from your address; retry in {}",
                retry_in(*wait)
            ),
        }
    }
}

/// Sweep the table when it has grown by this many entries.
const SWEEP_EVERY: usize = 1024;

impl AddressLimits {
    pub fn new(rules: AddressRules) -> Arc<Self> {
        Arc::new(AddressLimits {
            rules,
            table: Mutex::new(HashMap::new()),
        })
    }

    /// Admits a new connection from `ip`, or says why not; the permit
    /// counts it as open until dropped.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<AddressPermit, Refusal> {
        let ip = key(ip);
        let now = Instant::now();
        let mut table = self.table.lock().unwrap();
        if table.len() >= SWEEP_EVERY && table.len().is_multiple_of(SWEEP_EVERY) {
            table.retain(|_, a| a.open > 0 || !a.handshakes.is_full(now));
        }
        let rules = self.rules;
        let entry = table.entry(ip).or_insert_with(|| Address {
            open: 0,
            handshakes: TokenBucket::new(rules.handshake_rate, rules.handshake_burst, now),
        });
        if rules.max_connections > 0 && entry.open >= rules.max_connections {
            metrics().limited(Limit::ConnectionsPerAddress);
            return Err(Refusal::TooMany(entry.open));
        }
        if let Err(wait) = entry.handshakes.take(now) {
            metrics().limited(Limit::Handshakes);
            return Err(Refusal::TooFast(wait));
        }
        entry.open += 1;
        Ok(AddressPermit {
            limits: Some(self.clone()),
            ip,
        })
    }

    /// How many addresses are remembered (for tests).
    pub fn remembered(&self) -> usize {
        self.table.lock().unwrap().len()
    }

    /// Counts a connection from `ip` as closed, for an [`AddressPermit`]
    /// given up by [`AddressPermit::keep_open`].
    pub fn release_for(&self, ip: IpAddr) {
        self.release(key(ip));
    }

    fn release(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut table = self.table.lock().unwrap();
        if let Some(a) = table.get_mut(&ip) {
            a.open = a.open.saturating_sub(1);
            if a.open == 0 && a.handshakes.is_full(now) {
                table.remove(&ip);
            }
        }
    }
}

/// One open connection of an address.
pub struct AddressPermit {
    /// `None` once given up by [`keep_open`](Self::keep_open).
    limits: Option<Arc<AddressLimits>>,
    ip: IpAddr,
}

impl AddressPermit {
    /// Gives up the permit without releasing it: the holder calls
    /// [`AddressLimits::release_for`] itself (a session, which keeps the
    /// context and the address anyway, and so holds nothing more for it).
    pub fn keep_open(mut self) {
        self.limits = None;
    }
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        if let Some(limits) = &self.limits {
            limits.release(self.ip);
        }
    }
}

/// Who a [`Quota`] counts: an address (IPv6 by its /64) or an account.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Who {
    Address(IpAddr),
    /// Lower-cased.
    Account(String),
}

impl Who {
    pub fn address(ip: IpAddr) -> Who {
        Who::Address(key(ip))
    }

    pub fn account(name: &str) -> Who {
        Who::Account(name.to_ascii_lowercase())
    }
}

/// Most keys a [`Quota`] remembers; past it, new keys are refused until
/// old ones refill (an attacker with that many addresses is slowed, and
/// memory stays bounded).
const MAX_QUOTA_KEYS: usize = 100_000;

/// A token bucket per address or account, for what is limited across
/// connections (accounts created, rooms brought into being): `n` an hour,
/// all `n` at once at most. Full buckets are forgotten, so the table
/// holds only who used some lately.
pub struct Quota {
    per_hour: u32,
    table: Mutex<HashMap<Who, TokenBucket>>,
}

impl Quota {
    /// `n` an hour per key; 0: no limit.
    pub fn per_hour(n: u32) -> Quota {
        Quota {
            per_hour: n,
            table: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one from each of `keys` if every one has one left; else says
    /// how long until they all do, and takes nothing.
    pub fn take(&self, keys: &[Who], now: Instant) -> Result<(), Duration> {
        if self.per_hour == 0 {
            return Ok(());
        }
        let mut table = self.table.lock().unwrap();
        if table.len() >= SWEEP_EVERY && table.len().is_multiple_of(SWEEP_EVERY) {
            table.retain(|_, b| !b.is_full(now));
        }
        let fresh = || TokenBucket::new(f64::from(self.per_hour) / 3600.0, self.per_hour, now);
        let mut taken = Vec::with_capacity(keys.len());
        for who in keys {
            let mut bucket = table.get(who).cloned().unwrap_or_else(fresh);
            if !table.contains_key(who) && table.len() + taken.len() >= MAX_QUOTA_KEYS {
                return Err(Duration::from_secs(60));
            }
            bucket.take(now)?;
            taken.push((who.clone(), bucket));
        }
        table.extend(taken);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 3, t0);
        for _ in 0..3 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!(wait > Duration::from_millis(400) && wait <= Duration::from_millis(500));
        assert!(b.take(t0 + Duration::from_millis(499)).is_err());
        assert!(b.take(t0 + Duration::from_millis(1000)).is_ok());
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn extreme_settings_still_limit() {
        let t0 = Instant::now();
        // Below the smallest f32: still a limit, and a wait that fits.
        let mut slow = TokenBucket::new(1e-300, 1, t0);
        assert!(slow.take(t0).is_ok());
        assert!(
            slow.take(t0)
                .is_err_and(|wait| wait > Duration::from_secs(3600))
        );
        // A burst beyond f32's whole numbers is cut to 2^24, and counts down.
        let mut big = TokenBucket::new(1.0, u32::MAX, t0);
        for _ in 0..3 {
            assert!(big.take(t0).is_ok());
        }
        assert_eq!(big.tokens, (1u32 << 24) as f32 - 3.0);
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(0.0, 1, t0);
        for _ in 0..10_000 {
            assert!(b.take(t0).is_ok());
        }
    }

    #[test]
    fn connections_per_address_are_counted_and_released() {
        let limits = AddressLimits::new(AddressRules {
            max_connections: 2,
            handshake_rate: 0.0,
            handshake_burst: 1,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let p1 = limits.admit(a).unwrap();
        let _p2 = limits.admit(a).unwrap();
        assert_eq!(limits.admit(a).err(), Some(Refusal::TooMany(2)));
        let _q = limits.admit(b).expect("another address is not affected");
        drop(p1);
        let _p3 = limits.admit(a).expect("a closed connection frees its slot");
    }

    #[test]
    fn handshake_rate_per_address_and_forgetting() {
        let limits = AddressLimits::new(AddressRules {
            max_connections: 0,
            handshake_rate: 1.0,
            handshake_burst: 2,
        });
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        drop(limits.admit(a).unwrap());
        drop(limits.admit(a).unwrap());
        assert!(matches!(limits.admit(a), Err(Refusal::TooFast(_))));
        assert_eq!(limits.remembered(), 1, "a drained bucket is remembered");
        let unlimited = AddressLimits::new(AddressRules {
            max_connections: 5,
            handshake_rate: 0.0,
            handshake_burst: 1,
        });
        drop(unlimited.admit(a).unwrap());
        assert_eq!(unlimited.remembered(), 0, "nothing to remember once closed");
    }

    #[test]
    fn quotas_take_from_every_key_or_none() {
        let quota = Quota::per_hour(2);
        let t0 = Instant::now();
        let (home, other) = (
            Who::address("192.0.2.1".parse().unwrap()),
            Who::address("192.0.2.2".parse().unwrap()),
        );
        let alice = Who::account("Alice");
        assert!(quota.take(&[home.clone(), alice.clone()], t0).is_ok());
        assert!(quota.take(std::slice::from_ref(&home), t0).is_ok());
        // home is spent: alice's bucket is not charged for the refusal.
        let wait = quota.take(&[home.clone(), alice.clone()], t0).unwrap_err();
        assert!(wait > Duration::from_secs(1700) && wait <= Duration::from_secs(1800));
        assert!(
            quota
                .take(&[other.clone(), Who::account("alice")], t0)
                .is_ok()
        );
        assert!(quota.take(&[other, alice], t0).is_err(), "per account");
        assert!(quota.take(&[home], t0 + Duration::from_secs(1800)).is_ok());
        assert!(Quota::per_hour(0).take(&[Who::account("x")], t0).is_ok());
    }

    #[test]
    fn ipv6_counts_by_its_64() {
        let limits = AddressLimits::new(AddressRules {
            max_connections: 1,
            handshake_rate: 0.0,
            handshake_burst: 1,
        });
        let _p = limits.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            limits
                .admit("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err()
        );
        assert!(limits.admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
        let _m = limits.admit("::ffff:192.0.2.7".parse().unwrap()).unwrap();
        assert!(limits.admit("192.0.2.7".parse().unwrap()).is_err());
    }
}
