//! The stored things, as the rest of the program sees them.

use time::OffsetDateTime;

use super::{
    ActivityId, ActivityType, BillOfMaterials, ClientId, DomainId, DomainName, EnvironmentId,
    EnvironmentType, Geography, ResourceType, Role,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: EnvironmentId,
    pub name: String,
    pub region: Geography,
    pub environment_type: EnvironmentType,
    pub description: Option<String>,
    /// `license.id` as sent; `None` answers the configured `environments.default_license_id`.
    pub license_id: Option<String>,
    pub bill_of_materials: BillOfMaterials,
    pub bill_of_materials_updated_at: OffsetDateTime,
    /// The value of every domain's environment TXT record in this environment.
    pub email_token: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone)]
pub struct Client {
    pub id: ClientId,
    pub environment_id: EnvironmentId,
    pub name: String,
    pub role: Role,
    /// Argon2 PHC string; the secret itself is never stored.
    pub secret_hash: String,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailDomain {
    pub id: DomainId,
    pub environment_id: EnvironmentId,
    pub name: DomainName,
    /// `name` as the client wrote it (ASCII letter case kept), which the API answers with.
    pub written_name: String,
    /// The custom MAIL FROM domain, once set.
    pub mail_from: Option<DomainName>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl EmailDomain {
    /// The audit record of `action` on this domain by `actor` (`None`: trustmail itself).
    pub fn activity(&self, action: ActivityType, actor: impl Into<Option<ClientId>>) -> Activity {
        Activity::new(
            self.environment_id,
            action,
            actor,
            ResourceType::EmailDomain,
            self.id,
            self.name.as_str(),
        )
    }
}

/// One audit record: who did what to which resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: ActivityId,
    pub environment_id: EnvironmentId,
    pub action: ActivityType,
    /// The client that acted; `None` for trustmail's own background work.
    pub actor: Option<ClientId>,
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub resource_name: String,
    /// Structured details (JSON), e.g. `{record, region, status}` of a status change.
    pub details: Option<serde_json::Value>,
    pub recorded_at: OffsetDateTime,
}

impl Activity {
    pub fn new(
        environment_id: EnvironmentId,
        action: ActivityType,
        actor: impl Into<Option<ClientId>>,
        resource_type: ResourceType,
        resource_id: impl ToString,
        resource_name: impl Into<String>,
    ) -> Self {
        Self {
            id: ActivityId::new(),
            environment_id,
            action,
            actor: actor.into(),
            resource_type,
            resource_id: resource_id.to_string(),
            resource_name: resource_name.into(),
            details: None,
            recorded_at: now(),
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

/// Now, at the millisecond precision the store keeps, so values read back compare equal.
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(t)
}
