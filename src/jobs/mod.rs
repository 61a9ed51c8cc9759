//! Background work that every replica runs. Rows are leased in the store, so replicas share
//! the work without doing any piece of it twice. Every job runs under `supervise`: a job that
//! panics is logged, counted and started again, so no replica silently stops checking DNS or
//! delivering mail.

pub mod dns;
pub mod outbox;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;

/// The first wait before a restart; it doubles up to `MAX_BACKOFF` while a job keeps failing.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A job that ran this long before failing starts again from `FIRST_BACKOFF`.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Aborts the job it holds when dropped, so that aborting the supervisor stops the job too.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `job()` until it returns. If it panics, logs it, counts it in `jobs_restarts_total`,
/// waits (`first_backoff`, doubling to a minute) and runs `job()` again.
pub async fn supervise<F, Fut>(name: &'static str, first_backoff: Duration, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = first_backoff;
    loop {
        let started = Instant::now();
        let mut running = AbortOnDrop(tokio::spawn(job()));
        match (&mut running.0).await {
            Ok(()) => return,
            Err(e) if e.is_cancelled() => return,
            Err(e) => {
                tracing::error!(job = name, error = %e, "background job panicked; restarting it");
                metrics::counter!("jobs_restarts_total", "job" => name).increment(1);
            }
        }
        if started.elapsed() >= HEALTHY_RUN {
            backoff = first_backoff;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn a_job_that_panics_is_started_again_until_it_finishes() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        supervise("test", Duration::from_millis(5), move || {
            let runs = counted.clone();
            async move {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    panic!("a bug in the job");
                }
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn aborting_the_supervisor_stops_the_job() {
        let ticks = Arc::new(AtomicU32::new(0));
        let counted = ticks.clone();
        let supervisor = tokio::spawn(supervise("test", FIRST_BACKOFF, move || {
            let ticks = counted.clone();
            async move {
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
        while ticks.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        supervisor.abort();
        let _ = supervisor.await;
        let seen = ticks.load(Ordering::SeqCst);
        // Several of the job's periods pass: an orphaned job would tick meanwhile.
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), seen, "the job ran on");
    }
}
