//! Hot reads served from memory (docs/ARCHITECTURE.md § Hot reads).
//!
//! Writes through this process invalidate at once; other replicas see a change within
//! `STALENESS`, the bound after which an entry is read again from the store.

use std::{
    collections::HashMap,
    ops::Deref,
    sync::{Arc, OnceLock, RwLock},
    time::{Duration, Instant},
};

use bytes::Bytes;

use crate::domain::{DomainId, EmailDomain, Environment, EnvironmentId};

/// A cached domain, with room for its wire form so that hot reads serialise it once.
#[derive(Debug)]
pub struct DomainSnapshot {
    domain: EmailDomain,
    rendered: OnceLock<Bytes>,
}

impl DomainSnapshot {
    pub fn new(domain: EmailDomain) -> Self {
        Self {
            domain,
            rendered: OnceLock::new(),
        }
    }

    /// The rendering kept by an earlier reader, if any.
    pub fn rendered(&self) -> Option<Bytes> {
        self.rendered.get().cloned()
    }

    /// Keeps a rendering for later readers of this snapshot (the first one kept wins).
    pub fn keep_rendered(&self, rendered: Bytes) {
        let _ = self.rendered.set(rendered);
    }
}

impl Deref for DomainSnapshot {
    type Target = EmailDomain;

    fn deref(&self) -> &EmailDomain {
        &self.domain
    }
}

const STALENESS: Duration = Duration::from_secs(2);
/// Past this many entries a map starts over; a bound on memory, not a policy.
const CAPACITY: usize = 50_000;

#[derive(Default)]
pub struct ReadCache {
    environments: RwLock<HashMap<EnvironmentId, (Arc<Environment>, Instant)>>,
    domains: RwLock<HashMap<DomainId, (Arc<DomainSnapshot>, Instant)>>,
}

fn fresh<K: std::hash::Hash + Eq, V: Clone>(
    map: &RwLock<HashMap<K, (V, Instant)>>,
    key: &K,
) -> Option<V> {
    let map = map.read().ok()?;
    let (value, at) = map.get(key)?;
    (at.elapsed() < STALENESS).then(|| value.clone())
}

fn put<K: std::hash::Hash + Eq, V>(map: &RwLock<HashMap<K, (V, Instant)>>, key: K, value: V) {
    if let Ok(mut map) = map.write() {
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }
}

impl ReadCache {
    pub fn environment(&self, id: EnvironmentId) -> Option<Arc<Environment>> {
        fresh(&self.environments, &id)
    }

    pub fn put_environment(&self, environment: Arc<Environment>) {
        put(&self.environments, environment.id, environment);
    }

    pub fn domain(&self, id: DomainId) -> Option<Arc<DomainSnapshot>> {
        fresh(&self.domains, &id)
    }

    pub fn put_domain(&self, domain: Arc<DomainSnapshot>) {
        put(&self.domains, domain.id, domain);
    }

    pub fn forget_domain(&self, id: DomainId) {
        if let Ok(mut map) = self.domains.write() {
            map.remove(&id);
        }
    }

    pub fn forget_environment(&self, id: EnvironmentId) {
        if let Ok(mut map) = self.environments.write() {
            map.remove(&id);
        }
        if let Ok(mut map) = self.domains.write() {
            map.retain(|_, (domain, _)| domain.environment_id != id);
        }
    }
}
