//! Trusted email domains and their records.

use std::sync::Arc;

use super::{Actor, Service, ServiceError, cache::DomainSnapshot, found, verification::CheckScope};
use crate::{
    domain::{
        Activity, ActivityType, DnsRecord, DomainId, DomainName, EmailDomain, Environment,
        EnvironmentId, MAX_DNS_NAME, RecordKind, ResourceType, ZoneFileFormat, apex_spf_record,
        build_domain_records, longest_record_name, mail_from_records, now, ownership_verified,
        region_order, zone_file,
    },
    store::CreateDomainError,
};

impl Service {
    pub async fn create_domain(
        &self,
        actor: &Actor,
        environment: &Environment,
        raw_name: &str,
    ) -> Result<EmailDomain, ServiceError> {
        let environment_id = environment.id;
        let settings = self.settings();
        let invalid = |message: String| ServiceError::InvalidValue {
            target: "domainName".into(),
            message,
        };
        let name = DomainName::parse(raw_name, &settings.public_suffixes)
            .map_err(|e| invalid(e.to_string()))?;
        let longest = longest_record_name(name.as_str().len(), &settings.records);
        if longest > MAX_DNS_NAME {
            return Err(invalid(format!(
                "The domain name is too long: its DKIM and ownership records would be named with \
                 up to {longest} characters, and DNS names end at {MAX_DNS_NAME}."
            )));
        }
        let created_at = now();
        let domain = EmailDomain {
            id: DomainId::new(),
            environment_id,
            written_name: name.written_as(raw_name),
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
        let keys = self.new_dkim_keys(domain.id, &records).await?;
        let maximum = settings.limits.domains_per_environment;
        match self
            .store()
            .create_domain(
                &domain,
                &records,
                &keys,
                self.first_check_at(created_at),
                maximum,
                &activity,
            )
            .await
        {
            Ok(()) => {
                let published: Vec<_> = keys.into_iter().map(|k| k.key).collect();
                self.inner.published.put(&published);
                Ok(domain)
            }
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

    /// The domain, if it exists in that environment (another environment's is not found). The
    /// API resolves a path's domain here once; every other use case takes the result.
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
                .get::<EmailDomain>(environment_id, id)
                .await?
                .ok_or(ServiceError::NotFound)?,
        ));
        self.inner.cache.put_domain(domain.clone());
        Ok(domain)
    }

    pub async fn delete_domain(
        &self,
        actor: &Actor,
        domain: &EmailDomain,
    ) -> Result<(), ServiceError> {
        let activity = domain.activity(ActivityType::EmailDomainDeleted, actor.client_id);
        let deleted = self
            .store()
            .delete_domain(domain.environment_id, domain.id, &activity)
            .await?;
        self.inner.cache.forget_domain(domain.id);
        self.inner.published.forget_domain(domain.id);
        found(deleted)
    }

    /// The domain's records of the given kinds, regions in configuration order, re-checked in
    /// DNS first when their last check is older than `dns.min_recheck_interval_s`.
    pub async fn domain_records(
        &self,
        actor: &Actor,
        domain: &EmailDomain,
        kinds: &[RecordKind],
    ) -> Result<Vec<DnsRecord>, ServiceError> {
        let mut records = self
            .check_domain(domain, CheckScope::StaleOf(kinds), Some(actor))
            .await?;
        records.retain(|r| kinds.contains(&r.record.kind));
        region_order(&self.settings().regions, &mut records);
        Ok(records.into_iter().map(|r| r.record).collect())
    }

    /// Every record of the domain, as stored (no DNS check), written as `format` for a DNS
    /// host: `…/zoneFile?format=`, and the command line.
    pub async fn zone_file(
        &self,
        domain: &EmailDomain,
        format: ZoneFileFormat,
    ) -> Result<String, ServiceError> {
        let mut records = self.verification(domain).await?;
        region_order(&self.settings().regions, &mut records);
        let records: Vec<DnsRecord> = records.into_iter().map(|r| r.record).collect();
        Ok(zone_file(format, &domain.name, &records))
    }

    /// Sets the custom MAIL FROM domain: a subdomain of the trusted domain, allowed once the
    /// domain's ownership is verified (re-checked first when stale).
    pub async fn set_mail_from(
        &self,
        actor: &Actor,
        domain: &EmailDomain,
        raw: &str,
    ) -> Result<Vec<DnsRecord>, ServiceError> {
        const TARGET: &str = "mailFrom.domain";
        let environment = self.environment(domain.environment_id).await?;
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
        let records = self.fresh_ownership(domain, actor).await?;
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
        let set = self
            .store()
            .set_mail_from(
                domain.id,
                Some(&mail_from),
                &[mx, spf],
                at,
                self.first_check_at(at),
            )
            .await?;
        self.inner.cache.forget_domain(domain.id);
        if !set {
            // Deleted meanwhile.
            return Err(ServiceError::NotFound);
        }
        let updated = self.domain(domain.environment_id, domain.id).await?;
        self.mail_from(actor, &updated).await
    }

    /// The MAIL FROM domain's records (MX, then SPF), re-checked when stale; not found when
    /// none is set.
    pub async fn mail_from(
        &self,
        actor: &Actor,
        domain: &EmailDomain,
    ) -> Result<Vec<DnsRecord>, ServiceError> {
        if domain.mail_from.is_none() {
            return Err(ServiceError::NotFound);
        }
        self.domain_records(actor, domain, &[RecordKind::MailFrom, RecordKind::Spf])
            .await
    }

    /// Removes the MAIL FROM domain; SPF moves back to the domain itself.
    pub async fn delete_mail_from(&self, domain: &EmailDomain) -> Result<(), ServiceError> {
        if domain.mail_from.is_none() {
            return Err(ServiceError::NotFound);
        }
        let spf = apex_spf_record(&self.settings().records);
        let at = now();
        let cleared = self
            .store()
            .set_mail_from(domain.id, None, &[spf], at, self.first_check_at(at))
            .await?;
        self.inner.cache.forget_domain(domain.id);
        if cleared {
            Ok(())
        } else {
            Err(ServiceError::NotFound)
        }
    }
}
