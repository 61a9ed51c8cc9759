//! Hot reads served from memory (DESIGN.md § Hot paths).
//!
//! Writes through this process invalidate at once; other replicas see a change within
//! `STALENESS`, the bound after which an entry is read again from the store.

use std::{
    collections::HashMap,
    sync::RwLock,
    time::{Duration, Instant},
};

use crate::domain::{DomainId, EmailDomain, Environment, EnvironmentId};

const STALENESS: Duration = Duration::from_secs(2);
/// Past this many entries a map starts over; a bound on memory, not a policy.
const CAPACITY: usize = 50_000;

#[derive(Default)]
pub struct ReadCache {
    environments: RwLock<HashMap<EnvironmentId, (Environment, Instant)>>,
    domains: RwLock<HashMap<DomainId, (EmailDomain, Instant)>>,
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
    pub fn environment(&self, id: EnvironmentId) -> Option<Environment> {
        fresh(&self.environments, &id)
    }

    pub fn put_environment(&self, environment: Environment) {
        put(&self.environments, environment.id, environment);
    }

    pub fn domain(&self, id: DomainId) -> Option<EmailDomain> {
        fresh(&self.domains, &id)
    }

    pub fn put_domain(&self, domain: EmailDomain) {
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
