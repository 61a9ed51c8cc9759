//! `?limit=&offset=` pages, newest first, with a `next` link while more remain (activities,
//! deliveries, suppressions).

use axum::http::Uri;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::{
    errors::ApiResult,
    hal::{Links, Page, UrlBuilder},
    path::{query, query_number},
};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1 to 1000, default 100).
    limit: Option<String>,
    /// Items to skip.
    offset: Option<String>,
}

/// A page's `limit` and `offset`, as asked.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    pub limit: u32,
    pub offset: u32,
}

impl PageRequest {
    /// The page the query string asks for (400 `INVALID_VALUE` for a bad bound).
    pub fn from_uri(uri: &Uri) -> ApiResult<Self> {
        let query: PageQuery = query(uri)?;
        Ok(Self {
            limit: query_number(query.limit.as_deref(), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?,
            offset: query_number(query.offset.as_deref(), "offset", 0, 0, u32::MAX)?,
        })
    }

    /// `items` (this page of `count` in all) under `_embedded.<key>`, linked to itself at
    /// `base` and to the next page while there is one.
    pub fn page<T: Serialize>(
        self,
        key: &'static str,
        base: &str,
        items: Vec<T>,
        count: i64,
    ) -> Page<T> {
        let Self { limit, offset } = self;
        // `base` may carry a filter of its own (`?reason=…`).
        let at = if base.contains('?') { '&' } else { '?' };
        let mut links = Links::from([(
            "self",
            UrlBuilder::link(format!("{base}{at}limit={limit}&offset={offset}")),
        )]);
        let next = i64::from(offset) + items.len() as i64;
        if !items.is_empty() && next < count {
            links.insert(
                "next",
                UrlBuilder::link(format!("{base}{at}limit={limit}&offset={next}")),
            );
        }
        Page::new(key, items, count, links)
    }
}
