//! Accounts' secrets: argon2id password hashes, login tokens, and the
//! limiter that slows down password guessing.
//!
//! Hashing is deliberately slow (tens of milliseconds and `--argon2-memory-kib`
//! of memory), so it runs on tokio's blocking threads, never on the async
//! threads and never under the router's lock, and at most
//! `--argon2-concurrency` hashes at a time ([`Hasher::hash_password`],
//! [`Hasher::verify_password`]): a burst of logins waits its turn, up to
//! `--argon2-wait` seconds, then is told [`HashError::Busy`], instead of
//! taking every core and `burst × memory` of RAM. A token is 32 random bytes shown as 64 hex digits; the
//! store keeps only its BLAKE2b-256 hash, which is enough for a secret with
//! that much entropy.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::{Algorithm, Argon2, Params, PasswordHasher, PasswordVerifier, Version};
use blake2::{Blake2b256, Digest};
use tokio::sync::Semaphore;

use crate::limits::key;

/// Shortest and longest accepted password, in bytes.
pub const MIN_PASSWORD: usize = 8;
pub const MAX_PASSWORD: usize = 256;

/// Wrong passwords (or tokens) allowed from one address, or for one
/// account from one address, within [`FAILURE_WINDOW`] before further
/// attempts from there are refused for [`LOCKOUT`].
pub const MAX_FAILURES: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// An account with more than [`MAX_FAILURES`] wrong passwords in the
/// window, from anywhere, is never locked (that would be a switch any
/// attacker holds): each password attempt for it waits a little longer
/// instead, doubling from [`BACKOFF_START`] up to [`BACKOFF_MAX`].
pub const BACKOFF_START: Duration = Duration::from_millis(250);
pub const BACKOFF_MAX: Duration = Duration::from_secs(8);
/// Most entries the limiter remembers.
const MAX_ENTRIES: usize = 100_000;

/// Password hashing with this server's argon2id parameters, a limited
/// number at a time.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// One permit per hash that may run at once.
    slots: Arc<Semaphore>,
    /// How long a hash may wait for a slot.
    wait: Duration,
}

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot stayed taken for the whole wait.
    #[error("every password-hashing slot stayed busy for {}s", .0.as_secs())]
    Busy(Duration),
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl Hasher {
    /// `memory_kib` of memory and 2 passes (argon2's defaults use 19 MiB),
    /// one hash at a time, waiting up to 10 s.
    pub fn new(memory_kib: u32) -> anyhow::Result<Hasher> {
        Hasher::limited(memory_kib, 1, Duration::from_secs(10))
    }

    /// Like [`new`](Self::new), with at most `concurrency` hashes at once
    /// and `wait` for a free slot.
    pub fn limited(memory_kib: u32, concurrency: usize, wait: Duration) -> anyhow::Result<Hasher> {
        let params = Params::new(memory_kib.max(Params::MIN_M_COST), 2, 1, None)
            .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
        Ok(Hasher {
            params,
            slots: Arc::new(Semaphore::new(concurrency.max(1))),
            wait,
        })
    }

    /// Runs `work` on a blocking thread once a slot is free. The slot is
    /// held by the blocking work itself, so a caller that gives up (its
    /// connection closed) does not free it before the hash is done.
    async fn in_slot<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Hasher) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(anyhow::anyhow!("the hashing slots are closed").into()),
            Err(_) => return Err(HashError::Busy(self.wait)),
        };
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work(&hasher)
        })
        .await
        .map_err(|e| HashError::Failed(e.into()))
    }

    /// [`hash`](Self::hash), off the async threads, within the limit.
    pub async fn hash_password(&self, password: String) -> Result<String, HashError> {
        Ok(self.in_slot(move |h| h.hash(&password)).await??)
    }

    /// [`verify`](Self::verify), off the async threads, within the limit.
    pub async fn verify_password(&self, password: String, hash: String) -> Result<bool, HashError> {
        self.in_slot(move |h| h.verify(&password, &hash)).await
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// The PHC string (`$argon2id$v=19$m=…`) for `password`, salted at random.
    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        let hash = self
            .argon2()
            .hash_password(password.as_bytes())
            .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))?;
        Ok(hash.to_string())
    }

    /// Whether `password` matches `hash` (with the parameters stored in it).
    pub fn verify(&self, password: &str, hash: &str) -> bool {
        self.argon2()
            .verify_password(password.as_bytes(), hash)
            .is_ok()
    }
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), String> {
    if password.len() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(format!(
            "a password has {MIN_PASSWORD} to {MAX_PASSWORD} bytes"
        ));
    }
    Ok(())
}

/// A fresh login token (64 hex digits).
pub fn new_token() -> anyhow::Result<String> {
    random_hex::<32>()
}

/// `N` random bytes as hex digits.
fn random_hex<const N: usize>() -> anyhow::Result<String> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh invite code (20 hex digits: 80 random bits, short enough to
/// read out, far too many to guess at the login limiter's pace).
pub fn new_invite_code() -> anyhow::Result<String> {
    random_hex::<10>()
}

/// What the store keeps of a token (or an invite code).
pub fn token_hash(token: &str) -> Vec<u8> {
    Blake2b256::digest(token.as_bytes()).to_vec()
}

/// Counts wrong passwords and tokens, so that guessing is slow from one
/// address and from many, while nobody can lock an account out:
///
/// * per address (IPv6 by its /64) and per account *at* an address,
///   [`MAX_FAILURES`] within [`FAILURE_WINDOW`] refuse further attempts
///   from there for [`LOCKOUT`];
/// * per account, from anywhere, failures only slow password checks down
///   ([`Check::Wait`]), never refuse them;
/// * a wrong token counts for its address only, and a valid token is let
///   through whatever the counts (the session checks it before asking).
#[derive(Default)]
pub struct Limiter {
    entries: Mutex<HashMap<Key, Entry>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    /// Every address's failures for this account: slows, never locks.
    Account(String),
    /// This account's failures from this address.
    AccountAt(String, IpAddr),
    /// This address's failures, for any account.
    Address(IpAddr),
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

impl Entry {
    fn fresh(now: Instant) -> Entry {
        Entry {
            failures: 0,
            first: now,
            locked_until: None,
        }
    }

    fn is_current(&self, now: Instant) -> bool {
        now.duration_since(self.first) < FAILURE_WINDOW
            || self.locked_until.is_some_and(|u| u > now)
    }
}

/// What a password attempt must do first.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    Go,
    /// Wait this long, then check (the account is being guessed at).
    Wait(Duration),
    /// Refused for this many more seconds (this address guessed too often).
    Locked(u64),
}

impl Limiter {
    /// Whether a password attempt for `account` from `addr` may go on.
    pub fn check(&self, account: &str, addr: IpAddr, now: Instant) -> Check {
        let (account, addr) = (account.to_ascii_lowercase(), key(addr));
        let entries = self.entries.lock().unwrap();
        let locked = [Key::Address(addr), Key::AccountAt(account.clone(), addr)]
            .iter()
            .filter_map(|k| entries.get(k)?.locked_until)
            .filter(|&until| until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max();
        if let Some(secs) = locked {
            return Check::Locked(secs);
        }
        match entries.get(&Key::Account(account)) {
            Some(e) if e.is_current(now) && e.failures >= MAX_FAILURES => {
                let doublings = (e.failures - MAX_FAILURES).min(16);
                Check::Wait((BACKOFF_START * (1 << doublings)).min(BACKOFF_MAX))
            }
            _ => Check::Go,
        }
    }

    /// Seconds to wait if attempts from `addr` are locked (any account).
    pub fn address_locked(&self, addr: IpAddr, now: Instant) -> Option<u64> {
        let entries = self.entries.lock().unwrap();
        let until = entries.get(&Key::Address(key(addr)))?.locked_until?;
        (until > now).then(|| (until - now).as_secs().max(1))
    }

    /// Counts a wrong password for `account` from `addr`.
    pub fn failed(&self, account: &str, addr: IpAddr, now: Instant) {
        let (account, addr) = (account.to_ascii_lowercase(), key(addr));
        self.count(
            [
                Key::Address(addr),
                Key::AccountAt(account.clone(), addr),
                Key::Account(account),
            ],
            now,
        );
    }

    /// Counts a wrong token from `addr` (its account is unknown).
    pub fn token_failed(&self, addr: IpAddr, now: Instant) {
        self.count([Key::Address(key(addr))], now);
    }

    fn count<const N: usize>(&self, keys: [Key; N], now: Instant) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| e.is_current(now));
        }
        for key in keys {
            let locks = !matches!(key, Key::Account(_));
            let entry = entries.entry(key).or_insert(Entry::fresh(now));
            if !entry.is_current(now) {
                *entry = Entry::fresh(now);
            }
            entry.failures = entry.failures.saturating_add(1);
            if locks && entry.failures >= MAX_FAILURES {
                *entry = Entry {
                    locked_until: Some(now + LOCKOUT),
                    ..Entry::fresh(now)
                };
            }
        }
    }

    /// A successful login clears the account's counts (not the address's:
    /// one right password does not buy more guesses at other accounts).
    pub fn succeeded(&self, account: &str, addr: IpAddr) {
        let (account, addr) = (account.to_ascii_lowercase(), key(addr));
        let mut entries = self.entries.lock().unwrap();
        entries.remove(&Key::AccountAt(account.clone(), addr));
        entries.remove(&Key::Account(account));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let hasher = Hasher::new(64).unwrap();
        let a = hasher.hash("correct horse").unwrap();
        let b = hasher.hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "salted");
        assert!(hasher.verify("correct horse", &a));
        assert!(!hasher.verify("correct horsf", &a));
        assert!(!hasher.verify("x", "not a hash"));
    }

    #[tokio::test]
    async fn hashes_wait_for_a_slot_and_give_up_when_told() {
        let hasher = Hasher::limited(64, 1, Duration::ZERO).unwrap();
        let hash = hasher.hash_password("correct horse".into()).await.unwrap();
        // Hold the only slot: a hash that may not wait is refused.
        let held = hasher.slots.clone().try_acquire_owned().unwrap();
        let refused = hasher.verify_password("correct horse".into(), hash.clone());
        assert!(matches!(refused.await, Err(HashError::Busy(_))));
        drop(held);
        let waits = Hasher {
            wait: Duration::from_secs(5),
            ..hasher.clone()
        };
        let held = waits.slots.clone().try_acquire_owned().unwrap();
        let verify = tokio::spawn({
            let waits = waits.clone();
            async move { waits.verify_password("correct horse".into(), hash).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!verify.is_finished(), "waits while the slot is taken");
        drop(held);
        assert!(verify.await.unwrap().unwrap());
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }

    #[test]
    fn limiter_locks_addresses_and_slows_accounts() {
        let limiter = Limiter::default();
        let (home, other): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed("Bob", home, now);
        }
        assert_eq!(limiter.check("bob", home, now), Check::Go);
        limiter.failed("bob", home, now);
        assert!(matches!(limiter.check("BOB", home, now), Check::Locked(_)));
        assert!(
            matches!(limiter.check("carol", home, now), Check::Locked(_)),
            "per address"
        );
        assert_eq!(limiter.check("carol", other, now), Check::Go);
        // Elsewhere, bob is only slowed down, more with every failure.
        assert_eq!(limiter.check("bob", other, now), Check::Wait(BACKOFF_START));
        limiter.failed("bob", other, now);
        assert_eq!(
            limiter.check("bob", other, now),
            Check::Wait(BACKOFF_START * 2)
        );
        for _ in 0..40 {
            limiter.failed("bob", "10.0.0.3".parse().unwrap(), now);
        }
        assert_eq!(limiter.check("bob", other, now), Check::Wait(BACKOFF_MAX));
        let later = now + LOCKOUT;
        assert!(matches!(limiter.check("bob", home, later), Check::Wait(_)));
        assert_eq!(limiter.check("carol", home, later), Check::Go);
        limiter.succeeded("bob", other);
        assert_eq!(limiter.check("bob", other, later), Check::Go);
        assert_eq!(limiter.check("bob", other, now + FAILURE_WINDOW), Check::Go);
    }

    #[test]
    fn wrong_tokens_count_for_the_address_only() {
        let limiter = Limiter::default();
        let home: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES {
            limiter.token_failed(home, now);
        }
        let neighbour: IpAddr = "2001:db8:1:2::77".parse().unwrap();
        assert!(limiter.address_locked(neighbour, now).is_some(), "by /64");
        let elsewhere: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limiter.check("alice", elsewhere, now), Check::Go);
    }
}
