//! Trusted email domains and their records.

use std::sync::Arc;

use super::{Actor, Service, ServiceError, cache::DomainSnapshot};
use crate::{
    domain::{
        Activity, ActivityType, DnsRecord, DomainId, DomainName, EmailDomain, EnvironmentId,
        RecordKind, ResourceType, build_domain_records, now,
    },
    store::CreateDomainError,
};

impl Service {
    pub async fn create_domain(
        &self,
        actor: &Actor,
        environment_id: EnvironmentId,
        raw_name: &str,
    ) -> Result<EmailDomain, ServiceError> {
        let environment = self.environment(environment_id).await?;
        let settings = self.settings();
        let name = DomainName::parse(raw_name, &settings.public_suffixes).map_err(|e| {
            ServiceError::InvalidValue {
                target: "domainName".into(),
                message: e.to_string(),
            }
        })?;
        let created_at = now();
        let domain = EmailDomain {
            id: DomainId::new(),
            environment_id,
            name,
            created_at,
            updated_at: created_at,
        };
        let records = build_domain_records(
            &domain.name,
            &environment.email_token,
            environment.region,
            &settings.regions,
            &settings.records,
        );
        let activity = Activity::new(
            environment_id,
            ActivityType::EmailDomainCreated,
            actor.client_id,
            ResourceType::EmailDomain,
            domain.id,
            domain.name.as_str(),
        );
        let maximum = settings.limits.domains_per_environment;
        match self
            .store()
            .create_domain(&domain, &records, maximum, &activity)
            .await
        {
            Ok(()) => Ok(domain),
            Err(CreateDomainError::EnvironmentNotFound) => Err(ServiceError::NotFound),
            Err(CreateDomainError::Duplicate) => Err(ServiceError::Uniqueness {
                target: "domainName".into(),
                message: format!(
                    "The domain {} is already a trusted email domain of this environment.",
                    domain.name
                ),
            }),
            Err(CreateDomainError::LimitReached { maximum }) => Err(ServiceError::SizeLimit {
                target: "domainName".into(),
                maximum,
                message: format!(
                    "An environment can have at most {maximum} trusted email domains."
                ),
            }),
            Err(CreateDomainError::Store(e)) => Err(e.into()),
        }
    }

    pub async fn list_domains(
        &self,
        environment_id: EnvironmentId,
    ) -> Result<Vec<EmailDomain>, ServiceError> {
        self.environment(environment_id).await?;
        Ok(self.store().list_domains(environment_id).await?)
    }

    /// The domain, if it exists in that environment (another environment's is not found).
    pub async fn domain(
        &self,
        environment_id: EnvironmentId,
        id: DomainId,
    ) -> Result<Arc<DomainSnapshot>, ServiceError> {
        self.environment(environment_id).await?;
        if let Some(domain) = self.inner.cache.domain(id) {
            return if domain.environment_id == environment_id {
                Ok(domain)
            } else {
                Err(ServiceError::NotFound)
            };
        }
        let domain = Arc::new(DomainSnapshot::new(
            self.store()
                .get_domain(environment_id, id)
                .await?
                .ok_or(ServiceError::NotFound)?,
        ));
        self.inner.cache.put_domain(domain.clone());
        Ok(domain)
    }

    pub async fn delete_domain(
        &self,
        actor: &Actor,
        environment_id: EnvironmentId,
        id: DomainId,
    ) -> Result<(), ServiceError> {
        let domain = self.domain(environment_id, id).await?;
        let activity = Activity::new(
            environment_id,
            ActivityType::EmailDomainDeleted,
            actor.client_id,
            ResourceType::EmailDomain,
            id,
            domain.name.as_str(),
        );
        let deleted = self
            .store()
            .delete_domain(environment_id, id, &activity)
            .await?;
        self.inner.cache.forget_domain(id);
        if deleted {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }

    /// The domain's records of the given kinds, regions in configuration order.
    pub async fn domain_records(
        &self,
        environment_id: EnvironmentId,
        id: DomainId,
        kinds: &[RecordKind],
    ) -> Result<(Arc<DomainSnapshot>, Vec<DnsRecord>), ServiceError> {
        let domain = self.domain(environment_id, id).await?;
        let mut records = self.store().domain_records(id, kinds).await?;
        let regions = &self.settings().regions;
        let region_rank = |r: &DnsRecord| {
            r.region
                .as_ref()
                .and_then(|name| regions.iter().position(|g| &g.name == name))
                .unwrap_or(usize::MAX)
        };
        records.sort_by_key(|r| (region_rank(r), r.region.clone(), r.position));
        Ok((domain, records))
    }

    pub async fn list_activities(
        &self,
        environment_id: EnvironmentId,
        limit: u32,
        offset: u32,
    ) -> Result<(Vec<Activity>, i64), ServiceError> {
        self.environment(environment_id).await?;
        Ok(self
            .store()
            .list_activities(environment_id, limit, offset)
            .await?)
    }
}
