//! What bounds the cost of the token endpoint: a lockout of a (client, source) pair after repeated
//! wrong secrets, what this process remembers of right ones, and a bounded pool for Argon2
//! verifications (README § Token endpoint limits).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use aws_lc_rs::{constant_time, digest};
use tokio::sync::Semaphore;

use crate::domain::ClientId;

/// Wrong secrets one (client, source) pair may send within `FAILURE_WINDOW` before further
/// wrong ones are answered 429.
pub const MAX_FAILURES: i64 = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Clients whose last right secret this process remembers (README § Token endpoint limits).
const VERIFIED_CAPACITY: usize = 4096;

/// Where a token request comes from, as failures are counted: an IPv4 address, or the /64 an
/// IPv6 address is in (one host is given a whole /64 and can pick any address of it).
pub fn failure_source(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !(u128::MAX >> 64);
            format!("{}/64", Ipv6Addr::from(prefix))
        }
    }
}

/// What this process last verified with Argon2 per client: the stored hash it verified against
/// and a SHA-256 of the secret that matched it. A right secret is then recognised without
/// hashing, also during a lockout and when the hashing pool is full; the entry is void once the
/// client's stored hash changes (a new secret, set on any replica).
#[derive(Default)]
pub struct VerifiedSecrets {
    verified: Mutex<HashMap<ClientId, (String, [u8; 32])>>,
}

/// What `VerifiedSecrets` knows of a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Right,
    Wrong,
    /// Nothing verified for the client's current hash: only Argon2 can tell.
    Unknown,
}

impl VerifiedSecrets {
    pub fn judge(&self, client: ClientId, stored_hash: &str, secret: &str) -> Known {
        let Ok(verified) = self.verified.lock() else {
            return Known::Unknown;
        };
        match verified.get(&client) {
            Some((hash, digest)) if hash == stored_hash => {
                if constant_time::verify_slices_are_equal(digest, &secret_digest(secret)).is_ok() {
                    Known::Right
                } else {
                    Known::Wrong
                }
            }
            _ => Known::Unknown,
        }
    }

    pub fn remember(&self, client: ClientId, stored_hash: &str, secret: &str) {
        let Ok(mut verified) = self.verified.lock() else {
            return;
        };
        if verified.len() >= VERIFIED_CAPACITY && !verified.contains_key(&client) {
            // Any entry will do: a forgotten client is verified with Argon2 once more.
            if let Some(evicted) = verified.keys().next().copied() {
                verified.remove(&evicted);
            }
        }
        verified.insert(client, (stored_hash.to_owned(), secret_digest(secret)));
    }
}

fn secret_digest(secret: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}

/// The hashing pool is full: as many verifications run as there are cores, and as many again
/// times `QUEUE_FACTOR` wait.
#[derive(Debug)]
pub struct Busy;

const QUEUE_FACTOR: usize = 4;

/// Runs Argon2 work on the blocking threads, at most `parallelism` at a time, with a bounded
/// queue behind them.
pub struct HashingPool {
    permits: Arc<Semaphore>,
    /// Verifications started, for tests that every refusal costs the same work.
    started: Arc<AtomicU64>,
    queued: AtomicUsize,
    max_queued: usize,
}

impl Default for HashingPool {
    fn default() -> Self {
        let parallelism = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(parallelism)
    }
}

impl HashingPool {
    pub fn new(parallelism: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(parallelism.max(1))),
            started: Arc::default(),
            queued: AtomicUsize::new(0),
            max_queued: parallelism.max(1) * QUEUE_FACTOR,
        }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _place = self.queue_place().ok_or(Busy)?;
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| Busy)?
            }
        };
        // The permit moves into the blocking task: a caller that goes away does not free it
        // while the hash still runs.
        let started = self.started.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            started.fetch_add(1, Ordering::Relaxed);
            work()
        })
        .await
        .map_err(|_| Busy)
    }

    /// How many pieces of work have started since the pool was made.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    fn queue_place(&self) -> Option<QueuePlace<'_>> {
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        let place = QueuePlace(&self.queued);
        (before < self.max_queued).then_some(place)
    }
}

/// A place in the queue, given back when dropped (also when the waiting request is dropped).
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_sources_are_addresses_and_ipv6_sources_their_64() {
        let source = |s: &str| failure_source(s.parse().unwrap());
        assert_eq!(source("203.0.113.7"), "203.0.113.7");
        assert_eq!(source("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(source("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(source("2001:db8:1:2:ffff::9"), source("2001:db8:1:2::1"));
        assert_ne!(source("2001:db8:1:3::1"), source("2001:db8:1:2::1"));
    }

    #[test]
    fn a_remembered_secret_is_known_until_the_stored_hash_changes() {
        let verified = VerifiedSecrets::default();
        let client = ClientId::new();
        assert_eq!(verified.judge(client, "hash-1", "right"), Known::Unknown);
        verified.remember(client, "hash-1", "right");
        assert_eq!(verified.judge(client, "hash-1", "right"), Known::Right);
        assert_eq!(verified.judge(client, "hash-1", "wrong"), Known::Wrong);
        assert_eq!(verified.judge(client, "hash-2", "right"), Known::Unknown);
        assert_eq!(
            verified.judge(ClientId::new(), "hash-1", "right"),
            Known::Unknown
        );
    }

    #[test]
    fn remembered_secrets_stay_within_capacity() {
        let verified = VerifiedSecrets::default();
        for _ in 0..VERIFIED_CAPACITY + 10 {
            verified.remember(ClientId::new(), "hash", "secret");
        }
        assert_eq!(verified.verified.lock().unwrap().len(), VERIFIED_CAPACITY);
    }

    #[tokio::test]
    async fn a_full_queue_is_busy() {
        let pool = Arc::new(HashingPool::new(1));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let running = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || wait.recv().is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut waiting = Vec::new();
        for _ in 0..QUEUE_FACTOR {
            let pool = pool.clone();
            waiting.push(tokio::spawn(async move { pool.run(|| true).await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(pool.run(|| true).await.is_err());
        release.send(()).unwrap();
        assert!(running.await.unwrap().unwrap());
        for waiter in waiting {
            assert!(waiter.await.unwrap().unwrap());
        }
    }
}
