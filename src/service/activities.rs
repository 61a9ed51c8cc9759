//! The audit trail of an environment.

use super::{Service, ServiceError};
use crate::domain::{Activity, Environment};

impl Service {
    /// A page of the environment's activities, newest first, and how many there are in all.
    pub async fn list_activities(
        &self,
        environment: &Environment,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Activity>, i64), ServiceError> {
        Ok(self
            .store()
            .list_activities(environment.id, limit, offset)
            .await?)
    }
}
