//! `/v1/environments/{environmentId}/activities`: the audit trail, newest first.

use axum::{Json, extract::State, http::Uri, response::IntoResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    auth::Caller,
    errors::{ApiResult, P1Error, ResourceErrors},
    hal::{Links, Page, UrlBuilder, wire_time},
    path::{EnvironmentPath, query, query_number},
};
use crate::domain::{Activity, Permission};

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_activities))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page (1 to 1000, default 100).
    limit: Option<String>,
    /// Items to skip.
    offset: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TypeRef {
    r#type: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ClientRef {
    id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Actors {
    /// Absent for trustmail's own background work (scheduled DNS checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<ClientRef>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResourceRef {
    r#type: String,
    id: String,
    name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResultRef {
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityView {
    id: String,
    recorded_at: String,
    action: TypeRef,
    actors: Actors,
    resources: Vec<ResourceRef>,
    result: ResultRef,
    /// e.g. `{record, region, status}` for `EMAIL_DOMAIN_STATUS_UPDATED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    details: Option<serde_json::Value>,
}

impl From<&Activity> for ActivityView {
    fn from(a: &Activity) -> Self {
        Self {
            id: a.id.to_string(),
            recorded_at: wire_time(a.recorded_at),
            action: TypeRef {
                r#type: a.action.to_string(),
            },
            actors: Actors {
                client: a.actor.map(|id| ClientRef { id: id.to_string() }),
            },
            resources: vec![ResourceRef {
                r#type: a.resource_type.to_string(),
                id: a.resource_id.clone(),
                name: a.resource_name.clone(),
            }],
            result: ResultRef { status: "SUCCESS" },
            details: a.details.clone(),
        }
    }
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/activities", tag = "Activities",
    params(EnvironmentPath, PageQuery),
    responses((status = 200, description = "`_embedded.activities`, newest first"),
              (status = 400, body = P1Error), ResourceErrors))]
async fn list_activities(
    State(state): State<AppState>,
    caller: Caller,
    path: EnvironmentPath,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let environment = path.load(&state, &caller, Permission::Read).await?;
    let query: PageQuery = query(&uri)?;
    let limit = query_number(query.limit.as_deref(), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = query_number(query.offset.as_deref(), "offset", 0, 0, u32::MAX)?;
    let (activities, count) = state
        .service
        .list_activities(&environment, limit, offset)
        .await?;
    let base = state.urls.activities(environment.id);
    let mut links = Links::from([(
        "self",
        UrlBuilder::link(format!("{base}?limit={limit}&offset={offset}")),
    )]);
    let next = i64::from(offset) + activities.len() as i64;
    if !activities.is_empty() && next < count {
        links.insert(
            "next",
            UrlBuilder::link(format!("{base}?limit={limit}&offset={next}")),
        );
    }
    let views = activities.iter().map(ActivityView::from).collect();
    Ok(Json(Page::new("activities", views, count, links)))
}
