//! Use cases. The API checks permissions (`api::auth`) and resolves a path's resource through
//! `environment`, `domain` or `trusted_email`; the use cases take what it resolved, apply the
//! rules, and write through the store. Requests reach the store only through here (the outbox
//! delivery job, `jobs::outbox`, is the store's one other user).

mod activities;
mod auth;
mod cache;
mod clients;
mod dkim;
mod dkim_published;
mod email_domains;
mod environments;
mod feedback;
mod messages;
mod outbox;
mod populations;
mod self_check;
mod subscriptions;
mod suppressions;
mod trusted_emails;
mod verification;
mod wait;

use std::sync::Arc;

use crate::{
    config::{Config, Limits},
    dns::DnsClient,
    domain::{PublicSuffixes, RecordSettings, SendingRegion},
    secrets::MasterKey,
    store::{Store, StoreError},
};

/// What `Service::list` and `Service::find` read: a resource under a parent, as stored.
pub use crate::store::Child;
/// What the API shows of a queued message.
pub use crate::store::Delivery;
pub use auth::{
    ADMINISTRATORS, Actor, Credentials, NewClient, TOKEN_LIFETIME_S, TokenError, TokenGrant,
    TokenService, token_url,
};
pub use cache::DomainSnapshot;
pub use dkim_published::{PublishedKey, PublishedKeys};
pub use environments::{EnvironmentUpdate, NewEnvironment};
pub use feedback::{
    Addressee, MAX_EXPANDED_REPORT_BYTES, Received, SummarizedSource, suggested_dmarc_record,
};
pub use messages::{MAX_RECIPIENTS, RecipientReport};
pub use self_check::{
    DmarcVerdict, RegionSelfCheck, SelfCheck, SpfVerdict, TrustedEmailAlignment, Verdict,
};
pub use subscriptions::{MAX_SUBSCRIPTION_NAME, NewSubscription};
pub use verification::{CheckScope, DueChecks, FORCED_CHECK_INTERVAL, LeasedCheck};
pub use wait::Waited;

/// What a use case can refuse, in the vocabulary of the API's error codes.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("the requested resource was not found")]
    NotFound,
    #[error("the caller's role does not allow this")]
    Forbidden,
    #[error("{target}: {message}")]
    InvalidValue { target: String, message: String },
    #[error("{target} is required")]
    RequiredValue { target: String },
    #[error("{target}: {message}")]
    Uniqueness { target: String, message: String },
    #[error("{target}: {message}")]
    SizeLimit {
        target: String,
        maximum: u32,
        message: String,
    },
    /// A rule about the resource's neighbours refuses the change (PingOne's
    /// `CONSTRAINT_VIOLATION`), e.g. deleting an environment's last population.
    #[error("{target}: {message}")]
    Constraint { target: String, message: String },
    #[error("{0}")]
    InvalidRequest(String),
    #[error("too many requests; retry after {retry_after_s} s")]
    RateLimited { retry_after_s: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Dkim(#[from] crate::mail::dkim::DkimError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

/// 400 `INVALID_VALUE` for `target` (the request member at fault), saying `message`.
fn invalid(target: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidValue {
        target: target.into(),
        message: message.into(),
    }
}

/// `Ok` when the write found its row (`found`), else 404.
fn found(found: bool) -> Result<(), ServiceError> {
    if found {
        Ok(())
    } else {
        Err(ServiceError::NotFound)
    }
}

impl ServiceError {
    /// 429 with `Retry-After`: `wait_ms` rounded up to whole seconds, at least one.
    pub fn retry_after_ms(wait_ms: i64) -> Self {
        Self::RateLimited {
            retry_after_s: retry_after_s(wait_ms),
        }
    }
}

/// `Retry-After`: `wait_ms` rounded up to whole seconds, at least one.
fn retry_after_s(wait_ms: i64) -> u64 {
    u64::try_from(wait_ms.saturating_add(999) / 1000)
        .unwrap_or(1)
        .max(1)
}

/// What a create did: made the resource, or found it already there (PingOne answers 201 and
/// 200 respectively).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    New(T),
    Existing(T),
}

impl<T> Created<T> {
    /// What was made or found, when the caller answers both the same way.
    pub fn into_inner(self) -> T {
        match self {
            Created::New(value) | Created::Existing(value) => value,
        }
    }
}

/// The settings use cases read, taken from `Config` once.
#[derive(Debug, Clone)]
pub struct Settings {
    pub public_suffixes: PublicSuffixes,
    pub regions: Vec<SendingRegion>,
    pub records: RecordSettings,
    pub limits: Limits,
    pub dns: crate::config::Dns,
    /// `mail.system_sender`: From of verification-code mail.
    pub mail_sender: String,
    /// `dkim.algorithm`: the type of new DKIM keys.
    pub dkim_algorithm: crate::domain::DkimAlgorithm,
    /// `dkim_dns.nameservers`: the NS of every DKIM zone (empty = `ns1.<zone>`).
    pub dkim_nameservers: Vec<String>,
    /// `dkim_dns.nameserver_addresses`: A/AAAA of the NS names inside a DKIM zone.
    pub dkim_nameserver_addresses: Vec<std::net::IpAddr>,
    /// `environments.default_license_id`: the license of an environment created without one.
    pub default_license_id: String,
    /// `webhooks.allow_private_endpoints`: endpoint URLs may name non-global addresses.
    pub allow_private_endpoints: bool,
    /// `webhooks.allow_http_endpoints`: endpoint URLs may be `http://`.
    pub allow_http_endpoints: bool,
    /// `feedback.host` (else the first region's `mail_from_mx`): where DMARC reports go.
    pub feedback_host: String,
    /// `feedback.bounce_domain`: return paths of mail without an ACTIVE MAIL FROM domain.
    pub bounce_domain: Option<String>,
}

impl Settings {
    pub fn from_config(config: &Config) -> Self {
        Self {
            public_suffixes: config.public_suffixes(),
            regions: config.sending_regions(),
            records: config.record_settings(),
            limits: config.limits.clone(),
            dns: config.dns.clone(),
            mail_sender: config.mail.system_sender.clone(),
            dkim_algorithm: config.dkim.algorithm,
            dkim_nameservers: config.dkim_dns.nameservers.clone(),
            dkim_nameserver_addresses: config.dkim_dns.addresses(),
            default_license_id: config.environments.default_license_id.clone(),
            allow_private_endpoints: config.webhooks.allow_private_endpoints,
            allow_http_endpoints: config.webhooks.allow_http_endpoints,
            feedback_host: config.feedback_host(),
            bounce_domain: config.feedback.bounce_domain().map(str::to_owned),
        }
    }
}

#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    master_key: Arc<MasterKey>,
    tokens: TokenService,
    /// Right client secrets this process has verified, recognised again without Argon2.
    verified_secrets: auth::VerifiedSecrets,
    /// Where the token endpoint's Argon2 verifications run, a bounded number at a time.
    hashing: auth::HashingPool,
    settings: Settings,
    cache: cache::ReadCache,
    signers: dkim::Signers,
    /// The keys trustmail's DNS answers from.
    published: dkim_published::PublishedKeys,
    dns: DnsClient,
    /// Names this process as the holder of leases.
    instance_id: String,
    /// Waiters for ACTIVE take turns per domain.
    waits: wait::WaitRooms,
}

impl Service {
    pub async fn new(
        store: Store,
        master_key: Arc<MasterKey>,
        settings: Settings,
        dns: DnsClient,
        public_url: String,
    ) -> Result<Self, ServiceError> {
        let tokens = TokenService::load(store.clone(), master_key.clone(), public_url).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                master_key,
                tokens,
                verified_secrets: auth::VerifiedSecrets::default(),
                hashing: auth::HashingPool::default(),
                settings,
                cache: cache::ReadCache::default(),
                signers: dkim::Signers::default(),
                published: dkim_published::PublishedKeys::default(),
                dns,
                instance_id: uuid::Uuid::new_v4().to_string(),
                waits: wait::WaitRooms::default(),
            }),
        })
    }

    /// Use cases reach the store through here; nothing outside `service` does.
    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Every `T` under `parent` (the id of an environment or domain already resolved), oldest
    /// first.
    pub async fn list<T: Child>(&self, parent: T::Parent) -> Result<Vec<T>, ServiceError> {
        Ok(self.store().list(parent).await?)
    }

    /// The `T` with `id`, found under `parent`; another parent's is not found.
    pub async fn find<T: Child>(&self, parent: T::Parent, id: T::Id) -> Result<T, ServiceError> {
        self.store()
            .get(parent, id)
            .await?
            .ok_or(ServiceError::NotFound)
    }

    /// Counts one call of `scope` by the environment; 429 with the wait once it is over `rate`.
    async fn throttle(
        &self,
        scope: crate::store::RateScope,
        environment_id: crate::domain::EnvironmentId,
        rate: crate::store::RateLimit,
    ) -> Result<(), ServiceError> {
        let subject = environment_id.to_string();
        match self
            .store()
            .take_rate(scope, &subject, rate, crate::domain::now())
            .await?
        {
            crate::store::RateTake::Taken => Ok(()),
            crate::store::RateTake::Wait { wait_ms } => {
                metrics::counter!("throttled_total", "scope" => scope.as_str()).increment(1);
                Err(ServiceError::retry_after_ms(wait_ms))
            }
        }
    }

    /// Re-seals every sealed value under the master key's sealing key (a rotation opens the
    /// service with the new key sealing and the configured ones opening).
    pub async fn reseal_secrets(&self) -> Result<Vec<crate::store::ResealedColumn>, ServiceError> {
        Ok(self.store().reseal_all().await?)
    }

    /// Ready to serve: the store answers a round trip.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        Ok(self.store().ping().await?)
    }

    pub fn tokens(&self) -> &TokenService {
        &self.inner.tokens
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
}
