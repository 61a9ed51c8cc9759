//! The scheduled DNS re-checks (README § DNS verification has the schedule). Every replica runs this loop;
//! the per-domain check lease keeps two from checking one domain at once.

use std::time::Duration;

use crate::service::Service;

/// How often the loop looks for due records; the schedule itself is per record.
const POLL: Duration = Duration::from_secs(1);
/// Domains checked concurrently per pass.
const BATCH: u32 = 64;

pub async fn run_scheduled_checks(service: Service) {
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // A full batch means more are waiting: go again without sleeping.
        loop {
            match service.check_due_domains(BATCH).await {
                Ok(checked) if checked >= BATCH as usize => continue,
                Ok(checked) => {
                    if checked > 0 {
                        tracing::debug!(checked, "scheduled DNS checks");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain::ErrorChain(&e), "scheduled DNS checks failed")
                }
            }
            break;
        }
    }
}
