//! `/v1/environments`: tenants.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    auth::Caller,
    bill_of_materials::{BillOfMaterialsBody, BillOfMaterialsView},
    body::{Body, JsonObject, RawBody, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Page, Shown, UrlBuilder, wire_time},
    path::{Api, EnvironmentPath, Manage, Read},
};
use crate::{
    domain::{BillOfMaterials, Environment, EnvironmentType, Geography, Permission, UnknownValue},
    service::{EnvironmentUpdate, NewEnvironment, Service},
};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_environment, list_environments))
        .routes(routes!(
            read_environment,
            update_environment,
            delete_environment
        ))
        .routes(routes!(update_environment_type))
}

/// PingOne's `Environment`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// `SANDBOX` or `PRODUCTION`.
    #[serde(rename = "type")]
    environment_type: &'static str,
    /// The geography: `NA`, `CA`, `EU` or `AP`.
    region: String,
    /// As sent, or the configured `environments.default_license_id`.
    license: IdRef,
    bill_of_materials: BillOfMaterialsView,
    created_at: String,
    updated_at: String,
}

impl Shown for Environment {
    type View = EnvironmentView;

    fn view(&self, api: &Api) -> EnvironmentView {
        EnvironmentView::new(self, &api.service, &api.urls)
    }
}

impl EnvironmentView {
    pub fn new(environment: &Environment, service: &Service, urls: &UrlBuilder) -> Self {
        Self {
            links: Links::from([
                ("self", UrlBuilder::link(urls.environment(environment.id))),
                (
                    "populations",
                    UrlBuilder::link(urls.populations(environment.id)),
                ),
                (
                    "billOfMaterials",
                    UrlBuilder::link(urls.bill_of_materials(environment.id)),
                ),
            ]),
            id: environment.id.to_string(),
            name: environment.name.clone(),
            description: environment.description.clone(),
            environment_type: environment.environment_type.as_str(),
            region: environment.region.to_string(),
            license: IdRef::new(service.license_of(environment)),
            bill_of_materials: BillOfMaterialsView::new(environment, urls),
            created_at: wire_time(environment.created_at),
            updated_at: wire_time(environment.updated_at),
        }
    }
}

/// Request body of an environment create (PingOne's `Environment`).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct CreateEnvironment {
    name: String,
    region: Geography,
    /// Absent: `SANDBOX`.
    #[schema(rename = "type")]
    environment_type: Option<EnvironmentType>,
    description: Option<String>,
    /// Kept as sent; absent: the configured default.
    license: Option<IdRef>,
    /// Absent: `PING_ONE_BASE` alone.
    #[schema(value_type = Option<BillOfMaterialsBody>)]
    bill_of_materials: Option<BillOfMaterials>,
}

impl RequestBody for CreateEnvironment {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            name: body.required_str("name")?.to_owned(),
            region: region(body.required_str("region")?)?,
            bill_of_materials: body
                .member("billOfMaterials")
                .map(|value| BillOfMaterials::parse(value, "billOfMaterials."))
                .transpose()?,
            environment_type: body
                .optional_str("type")?
                .map(environment_type)
                .transpose()?,
            description: body.optional_str("description")?.map(str::to_owned),
            license: body.optional_id_ref("license")?.map(IdRef::new),
        })
    }
}

/// Request body of an environment PUT: `region` may be sent again but not changed;
/// `billOfMaterials` is not read (`PUT …/billOfMaterials` replaces it).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct UpdateEnvironment {
    name: String,
    region: Option<Geography>,
    /// Absent: the type stays.
    #[schema(rename = "type")]
    environment_type: Option<EnvironmentType>,
    /// Absent: cleared.
    description: Option<String>,
    /// Absent: back to the configured default.
    license: Option<IdRef>,
}

impl RequestBody for UpdateEnvironment {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            name: body.required_str("name")?.to_owned(),
            region: body.optional_str("region")?.map(region).transpose()?,
            environment_type: body
                .optional_str("type")?
                .map(environment_type)
                .transpose()?,
            description: body.optional_str("description")?.map(str::to_owned),
            license: body.optional_id_ref("license")?.map(IdRef::new),
        })
    }
}

/// Request body of `PUT …/type`.
#[derive(Debug, ToSchema)]
pub struct UpdateEnvironmentType {
    #[schema(rename = "type")]
    environment_type: EnvironmentType,
}

impl RequestBody for UpdateEnvironmentType {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            environment_type: environment_type(body.required_str("type")?)?,
        })
    }
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
    let body: CreateEnvironment = body.json()?;
    let new = NewEnvironment {
        environment_type: body.environment_type.unwrap_or(EnvironmentType::Sandbox),
        description: body.description,
        license_id: body.license.map(IdRef::into_id),
        bill_of_materials: body.bill_of_materials,
        ..NewEnvironment::named(&body.name, body.region)
    };
    let environment = state
        .service
        .create_environment_from(&caller.0, new)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(EnvironmentView::new(
            &environment,
            &state.service,
            &state.urls,
        )),
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
    let view = |e: &Environment| EnvironmentView::new(e, &state.service, &state.urls);
    let this = state.urls.environments();
    Ok(Json(Page::of("environments", &environments, view, this)))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}", tag = "Environments",
    params(EnvironmentPath), responses((status = 200, body = EnvironmentView), ResourceErrors))]
async fn read_environment(
    Read(environment, api): Read<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(api.show(environment.as_ref()))
}

/// PingOne's update: `name`, `description` and `license` are replaced by what was sent (absent
/// ones cleared, an absent license back to the default); `type` may change; `region` may be
/// sent but not changed; `billOfMaterials` is ignored (`PUT …/billOfMaterials` replaces it).
#[utoipa::path(put, path = "/v1/environments/{environmentId}", tag = "Environments",
    params(EnvironmentPath), request_body = UpdateEnvironment,
    responses((status = 200, body = EnvironmentView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn update_environment(
    Manage(environment, api): Manage<EnvironmentPath>,
    Body(body): Body<UpdateEnvironment>,
) -> ApiResult<impl IntoResponse> {
    let update = EnvironmentUpdate {
        name: body.name,
        region: body.region,
        environment_type: body.environment_type,
        description: body.description,
        license_id: body.license.map(IdRef::into_id),
    };
    let updated = api
        .service
        .update_environment(&api.actor, &environment, update)
        .await?;
    Ok(api.show(&updated))
}

/// PingOne's separate call that moves an environment between `SANDBOX` and `PRODUCTION`.
#[utoipa::path(put, path = "/v1/environments/{environmentId}/type", tag = "Environments",
    params(EnvironmentPath), request_body = UpdateEnvironmentType,
    responses((status = 200, body = EnvironmentView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn update_environment_type(
    Manage(environment, api): Manage<EnvironmentPath>,
    Body(body): Body<UpdateEnvironmentType>,
) -> ApiResult<impl IntoResponse> {
    let updated = api
        .service
        .set_environment_type(&api.actor, &environment, body.environment_type)
        .await?;
    Ok(api.show(&updated))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}", tag = "Environments",
    params(EnvironmentPath), responses((status = 204), ResourceErrors))]
async fn delete_environment(
    Manage(environment, api): Manage<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    api.service
        .delete_environment(&api.actor, &environment)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn region(raw: &str) -> ApiResult<Geography> {
    raw.parse()
        .map_err(|e: UnknownValue| ApiError::invalid_value("region", e.to_string()))
}

fn environment_type(raw: &str) -> ApiResult<EnvironmentType> {
    raw.parse()
        .map_err(|e: UnknownValue| ApiError::invalid_value("type", e.to_string()))
}
