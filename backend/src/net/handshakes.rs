//! Bounds on TLS handshakes in progress, for every TLS listener (HTTPS,
//! the JSON-lines and IRC ports): at most [`MAX_HANDSHAKES`] at once on a
//! listener, and at most [`MAX_HANDSHAKES_PER_ADDRESS`] of them from one
//! client address (an IPv6 /64), so that silent connections from a few
//! addresses cannot take every slot. A listener waits for a free slot
//! before it accepts (more connections wait in the kernel's accept
//! queue); a connection over its address's share is closed before any TLS
//! work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// TLS handshakes in progress at once on one listener.
pub const MAX_HANDSHAKES: usize = 256;
/// TLS handshakes in progress at once from one address (an IPv6 /64).
pub const MAX_HANDSHAKES_PER_ADDRESS: u32 = 8;

/// A listener's handshakes in progress: the slots, and the count per
/// client address. Clones share them.
#[derive(Clone)]
pub struct Handshakes {
    slots: Arc<Semaphore>,
    // A std mutex: held only to count, never across an `.await`.
    per_address: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One handshake counted for its address until dropped.
pub struct Handshaking {
    per_address: Arc<Mutex<HashMap<IpAddr, u32>>>,
    ip: IpAddr,
}

impl Default for Handshakes {
    fn default() -> Handshakes {
        Handshakes {
            slots: Arc::new(Semaphore::new(MAX_HANDSHAKES)),
            per_address: Arc::default(),
        }
    }
}

impl Handshakes {
    /// Waits for one of the listener's slots (`None`: never, the
    /// semaphore is not closed).
    pub async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Counts a handshake from `ip`, unless its address has as many in
    /// progress as it may.
    pub fn start(&self, ip: IpAddr) -> Option<Handshaking> {
        let ip = crate::limits::key(ip);
        let mut table = self.per_address.lock().unwrap();
        let n = table.entry(ip).or_insert(0);
        if *n >= MAX_HANDSHAKES_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(Handshaking {
            per_address: self.per_address.clone(),
            ip,
        })
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        let mut table = self.per_address.lock().unwrap();
        if let Some(n) = table.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_in_flight_are_capped_per_address() {
        let handshakes = Handshakes::default();
        let home: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let held: Vec<_> = (0..MAX_HANDSHAKES_PER_ADDRESS)
            .map(|_| handshakes.start(home).unwrap())
            .collect();
        assert!(
            handshakes
                .start("2001:db8:1:2::9".parse().unwrap())
                .is_none(),
            "same /64"
        );
        assert!(handshakes.start("192.0.2.1".parse().unwrap()).is_some());
        drop(held);
        let again = handshakes.start(home);
        assert!(again.is_some());
        assert_eq!(
            handshakes.per_address.lock().unwrap().len(),
            1,
            "finished ones are forgotten"
        );
    }
}
