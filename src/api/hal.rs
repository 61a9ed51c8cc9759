//! HAL links (absolute, from `public_url`) and wire timestamps.

use std::collections::BTreeMap;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::path::Api;
use crate::domain::{DomainId, EmailDomain, EnvironmentId, PopulationId};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    pub href: String,
}

/// `_links`: relation name → link.
pub type Links = BTreeMap<&'static str, Link>;

/// `{"id": …}`: how a resource names its parent (`environment`, `domain`).
#[derive(Debug, Serialize, ToSchema)]
pub struct IdRef {
    id: String,
}

impl IdRef {
    pub fn new(id: impl ToString) -> Self {
        Self { id: id.to_string() }
    }

    /// The id, as a request body sent it.
    pub fn into_id(self) -> String {
        self.id
    }
}

/// A resource as the API shows it, alone (`Api::show`) or on a page (`Api::page`).
pub trait Shown {
    type View: Serialize;

    fn view(&self, api: &Api) -> Self::View;
}

/// A collection page: `_embedded.<key>`, `count` (all matching) and `size` (this page).
#[derive(Debug, Serialize)]
pub struct Page<T> {
    #[serde(rename = "_links")]
    pub links: Links,
    #[serde(rename = "_embedded")]
    pub embedded: BTreeMap<&'static str, Vec<T>>,
    pub count: i64,
    pub size: usize,
}

impl<T> Page<T> {
    /// A whole collection on one page, linked to itself at `href`.
    pub fn whole(key: &'static str, items: Vec<T>, href: String) -> Self {
        let count = items.len() as i64;
        Self::new(
            key,
            items,
            count,
            Links::from([("self", UrlBuilder::link(href))]),
        )
    }

    /// A whole collection on one page: the `view` of each of `items`, linked to itself at
    /// `href`.
    pub fn of<R>(key: &'static str, items: &[R], view: impl Fn(&R) -> T, href: String) -> Self {
        Self::whole(key, items.iter().map(view).collect(), href)
    }

    pub fn new(key: &'static str, items: Vec<T>, count: i64, links: Links) -> Self {
        let size = items.len();
        Self {
            links,
            embedded: BTreeMap::from([(key, items)]),
            count,
            size,
        }
    }
}

/// Builds the absolute URLs of every resource.
#[derive(Debug, Clone)]
pub struct UrlBuilder {
    base: String,
}

impl UrlBuilder {
    pub fn new(public_url: &str) -> Self {
        Self {
            base: public_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn link(href: String) -> Link {
        Link { href }
    }

    pub fn environments(&self) -> String {
        format!("{}/v1/environments", self.base)
    }

    pub fn environment(&self, env: EnvironmentId) -> String {
        format!("{}/v1/environments/{env}", self.base)
    }

    pub fn populations(&self, env: EnvironmentId) -> String {
        format!("{}/populations", self.environment(env))
    }

    pub fn population(&self, env: EnvironmentId, id: PopulationId) -> String {
        format!("{}/populations/{id}", self.environment(env))
    }

    pub fn bill_of_materials(&self, env: EnvironmentId) -> String {
        format!("{}/billOfMaterials", self.environment(env))
    }

    pub fn domains(&self, env: EnvironmentId) -> String {
        format!("{}/emailDomains", self.environment(env))
    }

    pub fn domain(&self, env: EnvironmentId, id: DomainId) -> String {
        format!("{}/emailDomains/{id}", self.environment(env))
    }

    pub fn activities(&self, env: EnvironmentId) -> String {
        format!("{}/activities", self.environment(env))
    }

    /// `…/emailDomains/{id}/{leaf}`: one of a domain's sub-resources.
    pub fn domain_leaf(&self, domain: &EmailDomain, leaf: &str) -> String {
        format!("{}/{leaf}", self.domain(domain.environment_id, domain.id))
    }

    /// `self` and `emailDomain` links of a domain's sub-resource (status reads, diagnosis, MAIL
    /// FROM, self-check).
    pub fn domain_leaf_links(&self, domain: &EmailDomain, leaf: &str) -> Links {
        Links::from([
            ("self", Self::link(self.domain_leaf(domain, leaf))),
            (
                "emailDomain",
                Self::link(self.domain(domain.environment_id, domain.id)),
            ),
        ])
    }
}

/// `2024-03-27T11:19:04.923Z`, as PingOne writes times. Written by hand: it is on every
/// response, and `time`'s format descriptions cost several times as much.
pub fn wire_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_have_millis_and_z() {
        assert_eq!(
            wire_time(datetime!(2024-03-27 11:19:04.923 UTC)),
            "2024-03-27T11:19:04.923Z"
        );
        assert_eq!(
            wire_time(datetime!(0999-01-02 03:04:05.006 +02:00)),
            "0999-01-02T01:04:05.006Z"
        );
    }
}
