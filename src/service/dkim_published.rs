//! The DKIM keys trustmail's DNS publishes, held in memory by selector so that no query reaches
//! the store. Changes made through this process apply at once; other replicas' changes arrive
//! when the DNS server's refresh sees the store's fingerprint move (`dkim_dns.refresh_interval_ms`).

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use super::{Service, ServiceError};
use crate::{
    domain::{DkimKey, DomainId},
    store::DkimKeysFingerprint,
};

/// What `<selector>.<zone>` publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKey {
    pub region: String,
    pub domain_id: DomainId,
    /// The TXT value (`v=DKIM1; k=…; p=…`).
    pub txt: Arc<str>,
}

impl From<&DkimKey> for PublishedKey {
    fn from(key: &DkimKey) -> Self {
        Self {
            region: key.region.clone(),
            domain_id: key.domain_id,
            txt: key.txt().into(),
        }
    }
}

enum Change {
    Put(Vec<DkimKey>),
    ForgetDomain(DomainId),
}

#[derive(Default)]
struct State {
    /// False until the DNS server first loads the keys: without it nothing needs them.
    loaded: bool,
    keys: HashMap<String, PublishedKey>,
    /// Local changes made while a reload reads the store, applied on top of what it read.
    pending: Option<Vec<Change>>,
}

impl State {
    fn apply(&mut self, change: Change) {
        match change {
            Change::Put(keys) => {
                for key in keys {
                    self.keys.insert(key.selector.clone(), (&key).into());
                }
            }
            Change::ForgetDomain(id) => self.keys.retain(|_, key| key.domain_id != id),
        }
    }
}

/// The in-memory copy, and a bell the DNS server's refresh loop waits on.
#[derive(Default)]
pub struct PublishedKeys {
    state: RwLock<State>,
    changed: tokio::sync::Notify,
}

impl PublishedKeys {
    /// The key published under `selector`, if any.
    pub fn get(&self, selector: &str) -> Option<PublishedKey> {
        self.state.read().ok()?.keys.get(selector).cloned()
    }

    pub fn len(&self) -> usize {
        self.state.read().map(|s| s.keys.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Resolves when this process changed keys in a way it could not apply itself.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    fn change(&self, change: Change) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        if !state.loaded {
            return;
        }
        if let Some(pending) = state.pending.as_mut() {
            pending.push(match &change {
                Change::Put(keys) => Change::Put(keys.clone()),
                Change::ForgetDomain(id) => Change::ForgetDomain(*id),
            });
        }
        state.apply(change);
    }

    pub(super) fn put(&self, keys: &[DkimKey]) {
        self.change(Change::Put(keys.to_vec()));
    }

    pub(super) fn forget_domain(&self, id: DomainId) {
        self.change(Change::ForgetDomain(id));
    }

    /// Some keys went away in a way only a reload sees (a deleted environment's domains).
    pub(super) fn reload_soon(&self) {
        self.changed.notify_one();
    }

    fn begin_reload(&self) {
        if let Ok(mut state) = self.state.write() {
            state.pending = Some(Vec::new());
        }
    }

    fn finish_reload(&self, loaded: Option<HashMap<String, PublishedKey>>) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        let pending = state.pending.take().unwrap_or_default();
        let Some(keys) = loaded else {
            return;
        };
        state.keys = keys;
        state.loaded = true;
        for change in pending {
            state.apply(change);
        }
    }
}

impl Service {
    /// The keys trustmail's DNS answers from.
    pub fn published_dkim_keys(&self) -> &PublishedKeys {
        &self.inner.published
    }

    /// A cheap summary of every stored key that moves whenever a key is added, rotated or
    /// removed, on any replica.
    pub async fn dkim_keys_fingerprint(&self) -> Result<DkimKeysFingerprint, ServiceError> {
        Ok(self.store().dkim_keys_fingerprint().await?)
    }

    /// Reads every configured region's keys from the store into `published_dkim_keys`.
    pub async fn reload_published_dkim_keys(&self) -> Result<(), ServiceError> {
        let published = &self.inner.published;
        published.begin_reload();
        let mut keys = HashMap::new();
        let mut loaded = Ok(());
        for region in &self.settings().regions {
            match self.dkim_keys_in_region(&region.name).await {
                Ok(found) => keys.extend(found.iter().map(|k| (k.selector.clone(), k.into()))),
                Err(e) => {
                    loaded = Err(e);
                    break;
                }
            }
        }
        published.finish_reload(loaded.is_ok().then_some(keys));
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DkimAlgorithm, DkimRole, now};

    fn key(selector: &str, domain_id: DomainId, public_key: &str) -> DkimKey {
        DkimKey {
            domain_id,
            region: "us-east-1".into(),
            position: 1,
            selector: selector.into(),
            algorithm: DkimAlgorithm::Ed25519,
            public_key: public_key.into(),
            role: DkimRole::Signing,
            role_since: now(),
            created_at: now(),
        }
    }

    #[test]
    fn changes_during_a_reload_survive_it() {
        let published = PublishedKeys::default();
        let domain = DomainId::new();
        // Before the first load nothing is kept.
        published.put(&[key("a", domain, "old")]);
        assert!(published.is_empty());
        published.begin_reload();
        published.finish_reload(Some(HashMap::new()));

        published.begin_reload();
        published.put(&[key("a", domain, "new")]);
        // The reload read the store before the change: what it read loses to the change.
        let stale = HashMap::from([("a".to_owned(), (&key("a", domain, "old")).into())]);
        published.finish_reload(Some(stale));
        assert!(published.get("a").unwrap().txt.ends_with("p=new"));

        published.forget_domain(domain);
        assert_eq!(published.get("a"), None);
        // A failed reload keeps what was there.
        published.put(&[key("b", domain, "kept")]);
        published.begin_reload();
        published.finish_reload(None);
        assert!(published.get("b").is_some());
    }
}
