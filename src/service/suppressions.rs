//! An environment's suppression list (feedback/suppression.rs): read, add by hand, remove.
//! Bounces and complaints add to it through the feedback loop.

use super::{Actor, Created, Service, ServiceError, found, invalid};
use crate::{
    domain::{Activity, ActivityType, ClientId, Environment, ResourceType, now},
    feedback::{SuppressedAddress, Suppression, SuppressionReason},
};

impl Service {
    /// One page of the list, newest first, of one `reason` or all; with the count of all.
    pub async fn list_suppressions(
        &self,
        environment: &Environment,
        reason: Option<SuppressionReason>,
        page: (u32, u32),
    ) -> Result<(Vec<Suppression>, i64), ServiceError> {
        Ok(self
            .store()
            .list_suppressions(environment.id, reason, page)
            .await?)
    }

    /// The entry for `address`; 404 when it is not listed (or is no address at all).
    pub async fn suppression(
        &self,
        environment: &Environment,
        address: &str,
    ) -> Result<Suppression, ServiceError> {
        let address = SuppressedAddress::parse(address).map_err(|_| ServiceError::NotFound)?;
        self.store()
            .get_suppression(environment.id, &address)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Lists `address` by hand (`MANUAL`). An address listed already keeps its entry.
    pub async fn suppress(
        &self,
        actor: &Actor,
        environment: &Environment,
        address: &str,
    ) -> Result<Created<Suppression>, ServiceError> {
        let address = SuppressedAddress::parse(address)
            .map_err(|e| invalid("emailAddress", e.to_string()))?;
        let suppression = Suppression {
            environment_id: environment.id,
            address,
            reason: SuppressionReason::Manual,
            message_id: None,
            detail: None,
            created_at: now(),
        };
        let created = ActivityType::SuppressionCreated;
        let activity = suppression_activity(&suppression, created, actor.client_id);
        if self
            .store()
            .add_suppression(&suppression, &activity)
            .await?
        {
            tracing::info!(address = %suppression.address, "address suppressed by hand");
            return Ok(Created::New(suppression));
        }
        let listed = self
            .store()
            .get_suppression(environment.id, &suppression.address)
            .await?
            // Removed again between the insert and this read: it was listed, now it is not.
            .ok_or(ServiceError::NotFound)?;
        Ok(Created::Existing(listed))
    }

    /// Takes `suppression`'s address off the list: it is sent to again.
    pub async fn unsuppress(
        &self,
        actor: &Actor,
        suppression: &Suppression,
    ) -> Result<(), ServiceError> {
        let deleted = ActivityType::SuppressionDeleted;
        let activity = suppression_activity(suppression, deleted, actor.client_id);
        found(
            self.store()
                .delete_suppression(suppression.environment_id, &suppression.address, &activity)
                .await?,
        )
    }
}

/// The audit record of `action` on the entry, by `actor` (`None`: the feedback loop).
pub(super) fn suppression_activity(
    suppression: &Suppression,
    action: ActivityType,
    actor: impl Into<Option<ClientId>>,
) -> Activity {
    let address = suppression.address.as_str();
    Activity::new(
        suppression.environment_id,
        action,
        actor,
        ResourceType::Suppression,
        address,
        address,
    )
    .with_details(serde_json::json!({ "reason": suppression.reason.as_str() }))
}
