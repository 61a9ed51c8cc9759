//! What bounds the cost of the token endpoint: a lockout after repeated failed secrets, and a
//! bounded pool for Argon2 verifications (README § Token endpoint limits).

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Semaphore;

use crate::domain::ClientId;

/// Failed secrets one client may send within `FAILURE_WINDOW` before further tries are refused.
pub const MAX_FAILURES: usize = 10;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Past this many clients with recent failures, stale entries are swept on the next failure.
const SWEEP_AT: usize = 1024;

/// Failed secrets per client, in this process's memory (each replica counts its own).
#[derive(Default)]
pub struct FailedSecrets {
    failures: Mutex<HashMap<ClientId, VecDeque<Instant>>>,
}

impl FailedSecrets {
    /// How long the client stays locked out, when it has `MAX_FAILURES` failures in the window.
    pub fn locked_for(&self, client: ClientId) -> Option<Duration> {
        let now = Instant::now();
        let mut failures = self.failures.lock().ok()?;
        let recent = failures.get_mut(&client)?;
        forget_before(recent, now);
        if recent.len() < MAX_FAILURES {
            return None;
        }
        let oldest = recent.front()?;
        Some((*oldest + FAILURE_WINDOW).saturating_duration_since(now))
    }

    pub fn record_failure(&self, client: ClientId) {
        let now = Instant::now();
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= SWEEP_AT {
            failures.retain(|_, recent| {
                forget_before(recent, now);
                !recent.is_empty()
            });
        }
        let recent = failures.entry(client).or_default();
        forget_before(recent, now);
        recent.push_back(now);
        while recent.len() > MAX_FAILURES {
            recent.pop_front();
        }
    }

    /// A right secret (outside a lockout) starts the count over.
    pub fn clear(&self, client: ClientId) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&client);
        }
    }
}

fn forget_before(recent: &mut VecDeque<Instant>, now: Instant) {
    while recent
        .front()
        .is_some_and(|at| now.saturating_duration_since(*at) >= FAILURE_WINDOW)
    {
        recent.pop_front();
    }
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
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|_| Busy)
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
    fn the_eleventh_failure_within_the_window_is_locked_out() {
        let failed = FailedSecrets::default();
        let client = ClientId::new();
        for _ in 0..MAX_FAILURES - 1 {
            failed.record_failure(client);
        }
        assert!(failed.locked_for(client).is_none());
        failed.record_failure(client);
        let wait = failed.locked_for(client).unwrap();
        assert!(wait <= FAILURE_WINDOW && wait > Duration::ZERO, "{wait:?}");
        assert!(failed.locked_for(ClientId::new()).is_none());
        failed.clear(client);
        assert!(failed.locked_for(client).is_none());
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
