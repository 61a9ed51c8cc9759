//! Retention: every few minutes, delete the finished rows older than `[retention]` allows
//! (README § Retention), so that the outbox, the Idempotency-Keys, the webhook deliveries and
//! the audit log stay bounded.
//!
//! Work is bounded per statement (`BATCH` rows, `Store::prune`) and a table is pruned until a
//! batch comes back short, yielding between batches so that other writers get the database in
//! between. Every replica runs it; deletes of rows another replica deleted first just delete
//! fewer.

use std::time::Duration;

use time::OffsetDateTime;

use super::StoppableJob;
use crate::{
    config::Retention,
    domain::now,
    store::{IDEMPOTENCY_WINDOW_MS, Pruned, Store, StoreError},
};

/// How often a pass runs (and once at start).
const INTERVAL: Duration = Duration::from_secs(300);
/// Rows deleted by one statement.
pub const BATCH: u32 = 500;

/// What one pass deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Rows deleted per table, in `Pruned::ALL`'s order.
    pub deleted: Vec<(Pruned, u64)>,
    /// DELETE statements run.
    pub statements: u32,
}

impl PassReport {
    /// The rows deleted from `table`.
    pub fn deleted_from(&self, table: Pruned) -> u64 {
        self.deleted
            .iter()
            .filter(|(t, _)| *t == table)
            .map(|(_, n)| n)
            .sum()
    }

    fn total(&self) -> u64 {
        self.deleted.iter().map(|(_, n)| n).sum()
    }
}

/// Starts the pruning loop in the background until `StoppableJob::stop`, supervised.
pub fn spawn(store: Store, retention: Retention) -> StoppableJob {
    StoppableJob::spawn("retention", move |stopped| {
        let (store, retention) = (store.clone(), retention.clone());
        async move {
            super::poll_until_stopped("retention", stopped, INTERVAL, || async {
                // A pass prunes until its batches run short: nothing is left for a next one.
                prune_expired(&store, &retention, now(), BATCH)
                    .await
                    .map(|_| false)
            })
            .await;
        }
    })
}

/// Where each table's retention ends at `now`: rows older than that go. An Idempotency-Key is
/// kept for its whole 24 h window, whatever `messages_days` says.
pub fn cutoffs(retention: &Retention, now: OffsetDateTime) -> [(Pruned, OffsetDateTime); 6] {
    let messages = now - retention.messages();
    let idempotency_window = time::Duration::milliseconds(IDEMPOTENCY_WINDOW_MS);
    Pruned::ALL.map(|table| {
        let before = match table {
            Pruned::Outbox => messages,
            Pruned::MessageRequests => messages.min(now - idempotency_window),
            Pruned::Deliveries => now - retention.deliveries(),
            Pruned::Activities => now - retention.activities(),
            Pruned::FeedbackEvents | Pruned::DmarcReports => now - retention.feedback(),
        };
        (table, before)
    })
}

/// One pass: every table pruned of what `retention` lets go at `now`, `batch` rows per
/// statement, each table until a statement deletes fewer than `batch`. Counts what it deleted
/// in `retention_pruned_total{table}` and logs a pass that deleted anything.
pub async fn prune_expired(
    store: &Store,
    retention: &Retention,
    now: OffsetDateTime,
    batch: u32,
) -> Result<PassReport, StoreError> {
    let mut report = PassReport::default();
    for (table, before) in cutoffs(retention, now) {
        let mut deleted = 0;
        loop {
            let n = store.prune(table, before, batch).await?;
            report.statements += 1;
            deleted += n;
            metrics::counter!("retention_pruned_total", "table" => table.table()).increment(n);
            if n < u64::from(batch) {
                break;
            }
            tokio::task::yield_now().await;
        }
        report.deleted.push((table, deleted));
    }
    if report.total() > 0 {
        tracing::info!(
            outbox = report.deleted_from(Pruned::Outbox),
            message_requests = report.deleted_from(Pruned::MessageRequests),
            deliveries = report.deleted_from(Pruned::Deliveries),
            activities = report.deleted_from(Pruned::Activities),
            feedback_events = report.deleted_from(Pruned::FeedbackEvents),
            dmarc_reports = report.deleted_from(Pruned::DmarcReports),
            statements = report.statements,
            "retention deleted expired rows"
        );
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_outlive_their_window_however_short_the_retention() {
        let now = crate::domain::now();
        let short = Retention {
            messages_days: 0,
            ..Retention::default()
        };
        let window = time::Duration::milliseconds(IDEMPOTENCY_WINDOW_MS);
        let cut = cutoffs(&short, now);
        assert_eq!(cut[0], (Pruned::Outbox, now));
        assert_eq!(cut[1], (Pruned::MessageRequests, now - window));
        let cut = cutoffs(&Retention::default(), now);
        assert_eq!(
            cut.map(|(_, before)| now - before),
            [30, 30, 30, 90, 90, 90].map(time::Duration::days)
        );
    }
}
