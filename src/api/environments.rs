//! `/v1/environments`: tenants.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    auth::Caller,
    body::RawBody,
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{Links, Page, UrlBuilder, wire_time},
    path::EnvironmentPath,
};
use crate::domain::{Environment, Geography, Permission};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_environment, list_environments))
        .routes(routes!(read_environment, delete_environment))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    name: String,
    /// The geography: `NA`, `CA`, `EU` or `AP`.
    region: String,
    created_at: String,
    updated_at: String,
}

impl EnvironmentView {
    pub fn new(environment: &Environment, urls: &UrlBuilder) -> Self {
        Self {
            links: Links::from([("self", UrlBuilder::link(urls.environment(environment.id)))]),
            id: environment.id.to_string(),
            name: environment.name.clone(),
            region: environment.region.to_string(),
            created_at: wire_time(environment.created_at),
            updated_at: wire_time(environment.updated_at),
        }
    }
}

/// Request body of an environment create.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CreateEnvironment {
    name: String,
    /// `NA`, `CA`, `EU` or `AP`.
    region: String,
}

#[utoipa::path(post, path = "/v1/environments", tag = "Environments",
    request_body = CreateEnvironment,
    responses((status = 201, body = EnvironmentView), (status = 400, body = P1Error),
              (status = 401, body = P1Error), (status = 403, body = P1Error)))]
async fn create_environment(
    State(state): State<AppState>,
    caller: Caller,
    body: RawBody,
) -> ApiResult<impl IntoResponse> {
    caller.require(Permission::ManageEnvironments)?;
    let body = body.json_object()?;
    let name = body.required_str("name")?;
    let region: Geography =
        body.required_str("region")?
            .parse()
            .map_err(|e: crate::domain::UnknownValue| {
                ApiError::invalid_value("region", e.to_string())
            })?;
    let environment = state
        .service
        .create_environment(&caller.0, name, region)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EnvironmentView::new(&environment, &state.urls)),
    ))
}

#[utoipa::path(get, path = "/v1/environments", tag = "Environments",
    responses((status = 200, description = "`_embedded.environments`"),
              (status = 401, body = P1Error)))]
async fn list_environments(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<impl IntoResponse> {
    caller.require(Permission::Read)?;
    let environments = state.service.list_environments(&caller.0).await?;
    let views: Vec<_> = environments
        .iter()
        .map(|e| EnvironmentView::new(e, &state.urls))
        .collect();
    Ok(Json(Page::whole(
        "environments",
        views,
        state.urls.environments(),
    )))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}", tag = "Environments",
    params(EnvironmentPath), responses((status = 200, body = EnvironmentView), ResourceErrors))]
async fn read_environment(
    State(state): State<AppState>,
    caller: Caller,
    path: EnvironmentPath,
) -> ApiResult<impl IntoResponse> {
    let environment = path.load(&state, &caller, Permission::Read).await?;
    Ok(Json(EnvironmentView::new(&environment, &state.urls)))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}", tag = "Environments",
    params(EnvironmentPath), responses((status = 204), ResourceErrors))]
async fn delete_environment(
    State(state): State<AppState>,
    caller: Caller,
    path: EnvironmentPath,
) -> ApiResult<impl IntoResponse> {
    let environment = path
        .load(&state, &caller, Permission::ManageEnvironments)
        .await?;
    state
        .service
        .delete_environment(&caller.0, &environment)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
