//! Trusted email domains and their records.

use std::sync::Arc;

use super::{
    Actor, Service, ServiceError,
    cache::DomainSnapshot,
    verification::{CheckScope, region_order},
};
use crate::{
    domain::{
        Activity, ActivityType, DnsRecord, DomainId, DomainName, EmailDomain, EnvironmentId,
        RecordKind, ResourceType, apex_spf_record, build_domain_records, mail_from_records, now,
        ownership_verified,
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
            mail_from: None,
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
            .create_domain(
                &domain,
                &records,
                self.first_check_at(created_at),
                maximum,
                &activity,
            )
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

    /// The domain's records of the given kinds, regions in configuration order, re-checked in
    /// DNS first when their last check is older than `dns.min_recheck_interval_s`.
    pub async fn domain_records(
        &self,
        actor: &Actor,
        environment_id: EnvironmentId,
        id: DomainId,
        kinds: &[RecordKind],
    ) -> Result<(Arc<DomainSnapshot>, Vec<DnsRecord>), ServiceError> {
        let domain = self.domain(environment_id, id).await?;
        let mut records = self
            .check_domain(&domain, CheckScope::StaleOf(kinds), Some(actor))
            .await?;
        records.retain(|r| kinds.contains(&r.record.kind));
        region_order(&self.settings().regions, &mut records);
        Ok((domain, records.into_iter().map(|r| r.record).collect()))
    }

    /// Sets the custom MAIL FROM domain: a subdomain of the trusted domain, allowed once the
    /// domain's ownership is verified (re-checked first when stale).
    pub async fn set_mail_from(
        &self,
        actor: &Actor,
        environment_id: EnvironmentId,
        id: DomainId,
        raw: &str,
    ) -> Result<(Arc<DomainSnapshot>, Vec<DnsRecord>), ServiceError> {
        const TARGET: &str = "mailFrom.domain";
        let domain = self.domain(environment_id, id).await?;
        let environment = self.environment(environment_id).await?;
        let settings = self.settings();
        let invalid = |message: String| ServiceError::InvalidValue {
            target: TARGET.into(),
            message,
        };
        let mail_from = DomainName::parse(raw, &settings.public_suffixes)
            .map_err(|e| invalid(e.to_string()))?;
        if !mail_from
            .as_str()
            .strip_suffix(domain.name.as_str())
            .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        {
            return Err(invalid(format!(
                "The MAIL FROM domain must be a subdomain of {} (for example bounce.{}).",
                domain.name, domain.name
            )));
        }
        let records = self.fresh_ownership(&domain, actor).await?;
        if !ownership_verified(records.iter().map(|r| &r.record)) {
            return Err(invalid(format!(
                "The ownership of {} is not verified yet: publish its ownership TXT records first.",
                domain.name
            )));
        }
        let (mx, spf) = mail_from_records(
            &mail_from,
            environment.region,
            &settings.regions,
            &settings.records,
        )
        .ok_or_else(|| invalid("No sending region serves this environment.".into()))?;
        let at = now();
        if !self
            .store()
            .set_mail_from(
                id,
                Some(&mail_from),
                &[mx, spf],
                at,
                self.first_check_at(at),
            )
            .await?
        {
            return Err(ServiceError::NotFound);
        }
        self.inner.cache.forget_domain(id);
        self.mail_from(actor, environment_id, id).await
    }

    /// The MAIL FROM domain's records (MX, then SPF), re-checked when stale; not found when
    /// none is set.
    pub async fn mail_from(
        &self,
        actor: &Actor,
        environment_id: EnvironmentId,
        id: DomainId,
    ) -> Result<(Arc<DomainSnapshot>, Vec<DnsRecord>), ServiceError> {
        let (domain, records) = self
            .domain_records(
                actor,
                environment_id,
                id,
                &[RecordKind::MailFrom, RecordKind::Spf],
            )
            .await?;
        if domain.mail_from.is_none() {
            return Err(ServiceError::NotFound);
        }
        Ok((domain, records))
    }

    /// Removes the MAIL FROM domain; SPF moves back to the domain itself.
    pub async fn delete_mail_from(
        &self,
        environment_id: EnvironmentId,
        id: DomainId,
    ) -> Result<(), ServiceError> {
        let domain = self.domain(environment_id, id).await?;
        if domain.mail_from.is_none() {
            return Err(ServiceError::NotFound);
        }
        let spf = apex_spf_record(&self.settings().records);
        let at = now();
        self.store()
            .set_mail_from(id, None, &[spf], at, self.first_check_at(at))
            .await?;
        self.inner.cache.forget_domain(id);
        Ok(())
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
