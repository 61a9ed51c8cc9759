//! The scheduled DNS re-checks (README § DNS verification has the schedule), as a pipeline:
//! due domains stream through a bounded set of in-flight checks, so a slow domain occupies one
//! slot and never holds up the others; the due scan reads ahead from a cursor; a writer task
//! saves results in grouped transactions. Every replica runs this loop; the per-domain check
//! lease (fenced by its token) keeps two from checking one domain at once.

use std::{collections::VecDeque, time::Duration};

use tokio::{sync::mpsc, task::JoinSet, time::Instant};

use crate::{
    error_chain::ErrorChain,
    service::{LeasedCheck, Service, ServiceError},
    store::{CheckResult, DueCursor, SavedChecks},
};

/// How often the loop looks for due records; the schedule itself is per record.
const POLL: Duration = Duration::from_secs(1);
/// Checks in flight at once.
pub const CHECK_SLOTS: usize = 128;
/// Results saved in one transaction at most.
const MAX_WRITE_GROUP: usize = 512;

/// What one pass of the sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Checks run (domains whose lease this pass took).
    pub checked: usize,
    /// What the writer saved, discarded or found changed.
    pub saved: SavedChecks,
    /// Transactions the writer used.
    pub writes: usize,
}

/// The background job: the pipeline, forever. When the due scan reaches its end it starts
/// again from the top a `POLL` later, whatever is still in flight.
pub async fn run_scheduled_checks(service: Service) {
    // Forever mode logs its errors and never returns one.
    let _ = Pipeline::new(&service, CHECK_SLOTS, Until::Forever)
        .run()
        .await;
}

/// One pass: every domain due now, `slots` checks at a time, until the due scan reaches its end
/// and the last result is saved. A failed read of the due scan ends the pass with that error
/// once the running checks are saved.
pub async fn sweep_due(service: &Service, slots: usize) -> Result<SweepStats, ServiceError> {
    Pipeline::new(service, slots, Until::ScanEnds).run().await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    ScanEnds,
    Forever,
}

struct Pipeline<'a> {
    service: &'a Service,
    slots: usize,
    until: Until,
    /// Rows of the due scan per read: a domain has up to about six due records.
    read_ahead: u32,
    cursor: Option<DueCursor>,
    /// When the scan last reached its end (it starts again from the top a `POLL` later).
    scan_ended: Option<Instant>,
    queue: VecDeque<LeasedCheck>,
    running: JoinSet<CheckResult>,
    checked: usize,
}

impl<'a> Pipeline<'a> {
    fn new(service: &'a Service, slots: usize, until: Until) -> Self {
        let slots = slots.max(1);
        Self {
            service,
            slots,
            until,
            read_ahead: u32::try_from(slots * 4).unwrap_or(u32::MAX),
            cursor: None,
            scan_ended: None,
            queue: VecDeque::new(),
            running: JoinSet::new(),
            checked: 0,
        }
    }

    async fn run(mut self) -> Result<SweepStats, ServiceError> {
        let until = self.until;
        let (results, received) = mpsc::channel::<CheckResult>(self.slots * 2);
        let writer = tokio::spawn(write_results(self.service.clone(), received));
        let mut failure = None;
        loop {
            if let Err(e) = self.read_ahead().await {
                match until {
                    Until::ScanEnds => {
                        failure = Some(e);
                        self.scan_ended = Some(Instant::now());
                    }
                    Until::Forever => {
                        tracing::warn!(error = %ErrorChain(&e), "reading due DNS checks failed");
                        self.scan_ended = Some(Instant::now());
                    }
                }
            }
            self.start_checks();
            if until == Until::ScanEnds && self.scan_ended.is_some() && self.running.is_empty() {
                break;
            }
            // Wake for a finished check, or (forever, after the scan's end) when it may start
            // again. With the scan still going and nothing running, go round and read on.
            let rescan = self.scan_ended.map(|at| at + POLL);
            let wait_to_rescan = until == Until::Forever && rescan.is_some();
            let rescan = rescan.unwrap_or_else(Instant::now);
            tokio::select! {
                Some(done) = self.running.join_next() => match done {
                    // Only a panicked writer closes the channel: the lease then runs out and
                    // the domain is checked again.
                    Ok(result) => {
                        if let Err(lost) = results.send(result).await {
                            tracing::error!(domain = %lost.0.domain, "the DNS result writer stopped");
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "a DNS check panicked"),
                },
                () = tokio::time::sleep_until(rescan), if wait_to_rescan => {}
                else => {}
            }
        }
        metrics::gauge!("dns_checks_in_flight").set(0.0);
        drop(results);
        let (saved, writes) = writer.await.unwrap_or_default();
        match failure {
            Some(e) => Err(e),
            None => Ok(SweepStats {
                checked: self.checked,
                saved,
                writes,
            }),
        }
    }

    /// Leases the next due domains when fewer than `slots` wait; after the scan's end, in
    /// forever mode, starts it again from the top once `POLL` has passed.
    async fn read_ahead(&mut self) -> Result<(), ServiceError> {
        if self.queue.len() >= self.slots {
            return Ok(());
        }
        if let Some(ended) = self.scan_ended {
            if self.until == Until::ScanEnds || ended.elapsed() < POLL {
                return Ok(());
            }
            self.scan_ended = None;
            self.cursor = None;
        }
        let due = self
            .service
            .lease_due_checks(&mut self.cursor, self.read_ahead)
            .await?;
        if due.exhausted {
            self.scan_ended = Some(Instant::now());
        }
        self.queue.extend(due.checks);
        Ok(())
    }

    fn start_checks(&mut self) {
        while self.running.len() < self.slots
            && let Some(check) = self.queue.pop_front()
        {
            let service = self.service.clone();
            self.running
                .spawn(async move { service.run_check(check).await });
            self.checked += 1;
            metrics::counter!("dns_sweep_checks_total").increment(1);
        }
        metrics::gauge!("dns_checks_in_flight").set(self.running.len() as f64);
    }
}

/// Saves results as they come, each transaction taking every result waiting (up to
/// `MAX_WRITE_GROUP`): under load the groups grow and commits stay few. A failed write loses
/// only that group's re-check times: its leases run out and those domains are checked again.
async fn write_results(
    service: Service,
    mut received: mpsc::Receiver<CheckResult>,
) -> (SavedChecks, usize) {
    let mut total = SavedChecks::default();
    let mut writes = 0;
    let mut group = Vec::with_capacity(MAX_WRITE_GROUP);
    while received.recv_many(&mut group, MAX_WRITE_GROUP).await > 0 {
        match service.save_check_results(&group).await {
            Ok(saved) => {
                total.saved += saved.saved;
                total.discarded += saved.discarded;
                total.stale_records += saved.stale_records;
            }
            Err(e) => tracing::warn!(
                error = %ErrorChain(&e),
                results = group.len(),
                "saving DNS check results failed; those domains are checked again"
            ),
        }
        writes += 1;
        group.clear();
    }
    (total, writes)
}
