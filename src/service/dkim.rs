//! DKIM keys behind a domain's CNAMEs: made with the domain, sealed at rest, rotated without
//! customer DNS changes, and parsed once for signing.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use super::{Actor, Service, ServiceError};
use crate::{
    domain::{
        ActivityType, DkimAlgorithm, DkimKey, DkimRole, DkimZone, DnsRecord, DomainId, EmailDomain,
        dkim_selector, now,
    },
    error_chain::ErrorChain,
    mail::dkim::{DeliverySignError, DeliverySigner, GeneratedKey, Signer, generate_key},
    secrets::Binding,
    store::{KeylessSelector, NewKeyMaterial, RateLimit, RateScope, SealedDkimKey},
};

/// Parsed signing keys by public key. A selector gets new material when its slot comes round
/// again (perhaps through another replica), so the public key, not the selector, names the
/// private key an entry holds.
#[derive(Default)]
pub(super) struct Signers(RwLock<HashMap<String, Arc<Signer>>>);

/// Past this many entries the map starts over; a bound on memory, not a policy.
const SIGNERS_CAPACITY: usize = 10_000;

impl Signers {
    fn get(&self, public_key: &str) -> Option<Arc<Signer>> {
        self.0.read().ok()?.get(public_key).cloned()
    }

    fn keep(&self, public_key: &str, signer: Arc<Signer>) {
        if let Ok(mut map) = self.0.write() {
            if map.len() >= SIGNERS_CAPACITY {
                map.clear();
            }
            map.insert(public_key.to_owned(), signer);
        }
    }

    fn forget(&self, public_keys: impl IntoIterator<Item = String>) {
        if let Ok(mut map) = self.0.write() {
            for public_key in public_keys {
                map.remove(&public_key);
            }
        }
    }
}

/// The key pairs of `count` new slots, made off the async workers (RSA takes a while).
async fn generate_keys(
    algorithm: DkimAlgorithm,
    count: usize,
) -> Result<Vec<GeneratedKey>, ServiceError> {
    tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|_| generate_key(algorithm))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ServiceError::Dkim(crate::mail::dkim::DkimError::Generate(e.to_string())))?
    .map_err(ServiceError::from)
}

impl Service {
    /// The key pair for a slot of `domain_id` in `region`, its private half sealed to them.
    fn seal_key(
        &self,
        domain_id: DomainId,
        region: &str,
        algorithm: DkimAlgorithm,
        generated: GeneratedKey,
    ) -> Result<NewKeyMaterial, ServiceError> {
        let binding = Binding::dkim_private_key(domain_id, region, &generated.public_key);
        Ok(NewKeyMaterial {
            algorithm,
            sealed_private_key: self
                .inner
                .master_key
                .seal(&binding, &generated.private_der)?,
            public_key: generated.public_key,
        })
    }

    /// A sealed key for every DKIM record of `records` (a new domain's): the first of each
    /// region signs, the second waits, the third is retired.
    pub(super) async fn new_dkim_keys(
        &self,
        domain_id: DomainId,
        records: &[DnsRecord],
    ) -> Result<Vec<SealedDkimKey>, ServiceError> {
        let slots: Vec<KeylessSelector> = records
            .iter()
            .filter_map(|record| {
                Some(KeylessSelector {
                    domain_id,
                    region: record.region.clone()?,
                    position: record.position,
                    selector: dkim_selector(record)?.to_owned(),
                })
            })
            .collect();
        self.keys_for(slots).await
    }

    async fn keys_for(
        &self,
        slots: Vec<KeylessSelector>,
    ) -> Result<Vec<SealedDkimKey>, ServiceError> {
        let algorithm = self.settings().dkim_algorithm;
        let generated = generate_keys(algorithm, slots.len()).await?;
        let at = now();
        slots
            .into_iter()
            .zip(generated)
            .map(|(slot, generated)| {
                let material = self.seal_key(slot.domain_id, &slot.region, algorithm, generated)?;
                Ok(SealedDkimKey {
                    key: DkimKey {
                        domain_id: slot.domain_id,
                        region: slot.region,
                        position: slot.position,
                        selector: slot.selector,
                        algorithm,
                        public_key: material.public_key,
                        role: DkimRole::initial(slot.position),
                        role_since: at,
                        created_at: at,
                    },
                    sealed_private_key: material.sealed_private_key,
                })
            })
            .collect()
    }

    /// Gives keys to DKIM records that have none (domains created before keys existed). Every
    /// replica may run it at start-up: a slot another one filled first keeps that key.
    pub async fn mint_missing_dkim_keys(&self) -> Result<usize, ServiceError> {
        let slots = self.store().keyless_selectors().await?;
        if slots.is_empty() {
            return Ok(0);
        }
        let keys = self.keys_for(slots).await?;
        self.store().insert_missing_dkim_keys(&keys).await?;
        // A slot another replica filled first keeps its key: the store, not `keys`, says which.
        self.inner.published.reload_soon();
        Ok(keys.len())
    }

    /// The domain's keys, by region and position.
    pub async fn dkim_keys(&self, domain: &EmailDomain) -> Result<Vec<DkimKey>, ServiceError> {
        Ok(self.store().dkim_keys(domain.id).await?)
    }

    /// The key published under `selector` (trustmail's DNS and the DKIM check read it).
    pub async fn dkim_key_by_selector(
        &self,
        selector: &str,
    ) -> Result<Option<DkimKey>, ServiceError> {
        Ok(self.store().dkim_key_by_selector(selector).await?)
    }

    /// Every key published in `region`'s zone.
    pub async fn dkim_keys_in_region(&self, region: &str) -> Result<Vec<DkimKey>, ServiceError> {
        Ok(self.store().dkim_keys_in_region(region).await?)
    }

    /// `region`'s DKIM zone as trustmail's DNS serves it; `None` for an unknown region.
    pub fn dkim_zone(&self, region: &str) -> Option<DkimZone> {
        let settings = self.settings();
        settings.regions.iter().find(|r| r.name == region).map(|r| {
            DkimZone::new(
                &r.dkim_zone,
                &settings.dkim_nameservers,
                &settings.dkim_nameserver_addresses,
            )
        })
    }

    /// `region`'s DKIM zone as a BIND zone file, for operators who host it elsewhere. Not found
    /// for an unknown region; refused when an in-zone NS name has no address (BIND would not
    /// load it).
    pub async fn dkim_zone_file(&self, region: &str) -> Result<String, ServiceError> {
        let zone = self.dkim_zone(region).ok_or(ServiceError::NotFound)?;
        zone.check()
            .map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        let keys = self.dkim_keys_in_region(region).await?;
        Ok(zone.zone_file(&keys))
    }

    /// Rotates the domain's keys in `region`, or in every region of the domain when `None`:
    /// the waiting key signs from now on, the signing key retires (still published, so mail in
    /// flight verifies), and the retired slot gets a fresh key that waits. Not found when the
    /// domain has no keys in the region. Returns every key of the domain after. A client's
    /// rotation (`actor`) counts against `limits.dkim_rotations_per_hour`; the operator's CLI
    /// (no actor) does not.
    pub async fn rotate_dkim_keys(
        &self,
        actor: Option<&Actor>,
        domain: &EmailDomain,
        region: Option<&str>,
    ) -> Result<Vec<DkimKey>, ServiceError> {
        let before = self.store().dkim_keys(domain.id).await?;
        let mut regions: Vec<&str> = before.iter().map(|k| k.region.as_str()).collect();
        regions.dedup();
        if let Some(only) = region {
            regions.retain(|r| *r == only);
            if regions.is_empty() {
                return Err(ServiceError::InvalidValue {
                    target: "region".into(),
                    message: format!("The domain has no DKIM keys in a region named {only}."),
                });
            }
        }
        if regions.is_empty() {
            return Err(ServiceError::NotFound);
        }
        if actor.is_some() {
            let rate = RateLimit::per_hour(self.settings().limits.dkim_rotations_per_hour);
            self.throttle(RateScope::DkimRotations, domain.environment_id, rate)
                .await?;
        }
        let algorithm = self.settings().dkim_algorithm;
        let fresh = generate_keys(algorithm, regions.len()).await?;
        for (region, generated) in regions.into_iter().zip(fresh) {
            let material = self.seal_key(domain.id, region, algorithm, generated)?;
            let activity = domain
                .activity(ActivityType::DkimKeyRotated, actor.map(|a| a.client_id))
                .with_details(serde_json::json!({ "region": region }));
            let after = self
                .store()
                .rotate_dkim_keys(domain.id, region, &material, now(), &activity)
                .await?;
            if after.is_empty() {
                return Err(ServiceError::NotFound);
            }
            tracing::info!(domain = %domain.name, region, "DKIM keys rotated");
        }
        // Only the new signing keys sign from now on.
        self.inner
            .signers
            .forget(before.into_iter().map(|k| k.public_key));
        let after = self.store().dkim_keys(domain.id).await?;
        // This replica's DNS answers the new keys at once; others within their refresh.
        self.inner.published.put(&after);
        Ok(after)
    }

    /// The key that signs the domain's mail in `region`, parsed once and kept.
    pub async fn dkim_signer(
        &self,
        domain: &EmailDomain,
        region: &str,
    ) -> Result<Arc<Signer>, ServiceError> {
        let sealed = self
            .store()
            .signing_dkim_key(domain.id, region)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if let Some(signer) = self.inner.signers.get(&sealed.key.public_key) {
            return Ok(signer);
        }
        let key = &sealed.key;
        let binding = Binding::dkim_private_key(key.domain_id, &key.region, &key.public_key);
        let private_der = self
            .inner
            .master_key
            .open(&binding, &sealed.sealed_private_key)?;
        let signer = Arc::new(Signer::new(
            sealed.key.algorithm,
            &private_der,
            domain.name.as_str(),
            &sealed.key.selector,
        )?);
        self.inner
            .signers
            .keep(&sealed.key.public_key, signer.clone());
        Ok(signer)
    }
}

/// Customer mail is signed here just before it is sent, with the key that signs for its domain
/// in its region now: a message that waited through rotations still carries a signature whose
/// key is published.
#[async_trait::async_trait]
impl DeliverySigner for Service {
    async fn sign_for_delivery(
        &self,
        domain_id: DomainId,
        region: &str,
        message: &str,
    ) -> Result<String, DeliverySignError> {
        let retry = |e: &ServiceError| {
            tracing::warn!(domain_id = %domain_id, region, error = %ErrorChain(e),
                "the DKIM key to sign a message with could not be read; the delivery is retried");
            DeliverySignError::Unavailable(
                "not sent yet: the DKIM key to sign it with could not be read; retrying".into(),
            )
        };
        let domain = self
            .store()
            .domains_by_id(&[domain_id])
            .await
            .map_err(|e| retry(&e.into()))?
            .into_iter()
            .next()
            .ok_or_else(|| {
                DeliverySignError::Refused(
                    "not sent: its email domain was deleted, so no DKIM key can sign it".into(),
                )
            })?;
        let signer = match self.dkim_signer(&domain, region).await {
            Ok(signer) => signer,
            Err(ServiceError::NotFound) => {
                return Err(DeliverySignError::Refused(format!(
                    "not sent: {} has no signing DKIM key in region {region}",
                    domain.name
                )));
            }
            Err(e) => return Err(retry(&e)),
        };
        let signature = signer.sign(message.as_bytes()).map_err(|e| {
            DeliverySignError::Refused(format!("not sent: DKIM signing failed: {e}"))
        })?;
        Ok(format!("{signature}{message}"))
    }
}
