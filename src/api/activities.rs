//! `/v1/environments/{environmentId}/activities`: the audit trail, newest first.

use axum::{Json, http::Uri, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    errors::{ApiResult, P1Error, ResourceErrors},
    hal::wire_time,
    paging::{PageQuery, PageRequest},
    path::{EnvironmentPath, Read},
};
use crate::domain::Activity;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_activities))
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

/// An activity as a webhook delivery's body: exactly as `GET …/activities` lists it.
pub fn activity_body(activity: &Activity) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&ActivityView::from(activity))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/activities", tag = "Activities",
    params(EnvironmentPath, PageQuery),
    responses((status = 200, description = "`_embedded.activities`, newest first"),
              (status = 400, body = P1Error), ResourceErrors))]
async fn list_activities(
    Read(environment, api): Read<EnvironmentPath>,
    uri: Uri,
) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::from_uri(&uri)?;
    let (activities, count) = api
        .service
        .list_activities(&environment, page.limit, page.offset)
        .await?;
    let views = activities.iter().map(ActivityView::from).collect();
    let base = api.urls.activities(environment.id);
    Ok(Json(page.page("activities", &base, views, count)))
}
