//! `GET …/verification?waitFor=ACTIVE`: a long poll that re-checks a domain on the DNS cadence
//! until every record is ACTIVE, sharing its checks with every other waiter on the domain.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, Weak},
    time::Duration,
};

use tokio::time::Instant;

use super::{CheckScope, Service, ServiceError};
use crate::domain::{CheckedRecord, DomainId, EmailDomain, RecordKind, RecordStatus};

/// How a wait for ACTIVE ended: every record as it now stands, and whether all are ACTIVE
/// (false: the wait timed out first).
#[derive(Debug)]
pub struct Waited {
    pub records: Vec<CheckedRecord>,
    pub complete: bool,
}

/// One lock per domain being waited on in this process, so that its waiters take turns: the
/// first looks DNS up, the rest read what it saved (records checked within the cadence are not
/// looked up again). Across replicas the check lease does the same.
/// Once the server stops, every wait answers with what it has (`Service::stop_waiting`), rather
/// than holding its connection open until the shutdown grace drops it.
pub(super) struct WaitRooms {
    rooms: Mutex<HashMap<DomainId, Weak<tokio::sync::Mutex<()>>>>,
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Default for WaitRooms {
    fn default() -> Self {
        Self {
            rooms: Mutex::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl WaitRooms {
    fn room(&self, id: DomainId) -> Arc<tokio::sync::Mutex<()>> {
        let mut rooms = self
            .rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(room) = rooms.get(&id).and_then(Weak::upgrade) {
            return room;
        }
        // Forget the rooms nobody waits in any more before adding one.
        rooms.retain(|_, room| room.strong_count() > 0);
        let room = Arc::new(tokio::sync::Mutex::new(()));
        rooms.insert(id, Arc::downgrade(&room));
        room
    }
}

impl Service {
    /// The server is stopping: waits in progress answer after their current round, and new
    /// ones after their first.
    pub fn stop_waiting(&self) {
        self.inner.waits.stopping.send_replace(true);
    }

    /// Re-checks `domain` on the `dns.min_recheck_interval_s` cadence until every record is
    /// ACTIVE or `timeout` passes, whichever is first; `progress` sees every record after each
    /// round (the CLI prints it). Many waiters on one domain cost one check per cadence: a record
    /// checked within it (by any waiter, replica or the sweep) is read, not looked up again.
    pub async fn wait_until_active(
        &self,
        domain: &EmailDomain,
        timeout: Duration,
        mut progress: impl FnMut(&[CheckedRecord]),
    ) -> Result<Waited, ServiceError> {
        let deadline = Instant::now() + timeout;
        let cadence = Duration::from_secs(self.settings().dns.min_recheck_interval_s.max(1));
        let room = self.inner.waits.room(domain.id);
        let mut stopping = self.inner.waits.stopping.subscribe();
        loop {
            let last = Instant::now() >= deadline || *stopping.borrow_and_update();
            let records = {
                let _turn = room.lock().await;
                self.check_domain(domain, CheckScope::StaleOf(RecordKind::ALL), None)
                    .await?
            };
            if records.is_empty() {
                // Deleted while waited on.
                return Err(ServiceError::NotFound);
            }
            let complete = records
                .iter()
                .all(|r| r.record.status == RecordStatus::Active);
            progress(&records);
            if complete || last {
                return Ok(Waited { records, complete });
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline.min(Instant::now() + cadence)) => {}
                // The next round is the last.
                _ = stopping.changed() => {}
            }
        }
    }
}
