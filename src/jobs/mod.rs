//! Background work that every replica runs. Rows are leased in the store, so replicas share
//! the work without doing any piece of it twice. Every job runs under `supervise`: a job that
//! panics is logged, counted and started again, so no replica silently stops checking DNS or
//! delivering mail.

pub mod dns;
pub mod outbox;
pub mod retention;

use std::{
    future::Future,
    time::{Duration, Instant},
};

use tokio::{sync::watch, task::JoinHandle};

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

/// Runs `pass` until `stopped` turns true: again at once after a pass that found work
/// (`Ok(true)`), after `poll` otherwise. A failed pass is logged and waited out like an idle one.
pub async fn poll_until_stopped<F, Fut, E>(
    what: &'static str,
    mut stopped: watch::Receiver<bool>,
    poll: Duration,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, E>>,
    E: std::error::Error + 'static,
{
    loop {
        let more_due = pass().await.unwrap_or_else(|e| {
            tracing::warn!(job = what, error = %crate::error_chain::ErrorChain(&e), "pass failed");
            false
        });
        if *stopped.borrow() {
            break;
        }
        if !more_due {
            tokio::select! {
                changed = stopped.changed() => if changed.is_err() || *stopped.borrow() { break },
                () = tokio::time::sleep(poll) => {}
            }
        }
    }
}

/// How long `StoppableJob::stop` lets the work in progress finish before abandoning it (its
/// leases then run out and another pass, here or on another replica, does it again).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A supervised loop that stops between passes when asked (the delivery jobs).
pub struct StoppableJob {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl StoppableJob {
    /// Runs `job(stopped)` under `supervise`; `stopped` turns true when `stop` is called.
    pub fn spawn<F, Fut>(name: &'static str, mut job: F) -> Self
    where
        F: FnMut(watch::Receiver<bool>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (stop, stopped) = watch::channel(false);
        Self {
            name,
            stop,
            task: tokio::spawn(supervise(name, FIRST_BACKOFF, move || job(stopped.clone()))),
        }
    }

    /// Asks the loop to stop once its current pass is done, and waits for it (at most
    /// `STOP_GRACE`; then it is abandoned and its leases simply run out).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, self.task).await.is_err() {
            tracing::warn!(
                job = self.name,
                "did not stop in time; abandoning the work in progress"
            );
            abort.abort();
        }
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
