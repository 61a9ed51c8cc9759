//! `/v1/environments/{environmentId}/clients`: addition; the clients that get tokens
//! (PingOne's worker applications). A secret is shown only when made: by the create and by a
//! rotation.

use axum::{Json, http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    path::{Api, ClientPath, EnvironmentPath, Read, Write},
};
use crate::domain::{Client, Role};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_client, list_clients))
        .routes(routes!(read_client, delete_client))
        .routes(routes!(rotate_client_secret))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    name: String,
    /// `ORGANIZATION_ADMIN`, `ENVIRONMENT_ADMIN` or `READ_ONLY`.
    role: &'static str,
    environment: IdRef,
    created_at: String,
    /// Only in the answer to the create.
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
}

impl Shown for Client {
    type View = ClientView;

    fn view(&self, api: &Api) -> ClientView {
        let environment = api.urls.environment(self.environment_id);
        ClientView {
            links: Links::from([
                (
                    "self",
                    UrlBuilder::link(format!("{environment}/clients/{}", self.id)),
                ),
                ("environment", UrlBuilder::link(environment)),
            ]),
            id: self.id.to_string(),
            name: self.name.clone(),
            role: self.role.as_str(),
            environment: IdRef::new(self.environment_id),
            created_at: wire_time(self.created_at),
            client_secret: None,
        }
    }
}

/// Request body of a client create.
#[derive(Debug, ToSchema)]
pub struct CreateClient {
    name: String,
    /// `ORGANIZATION_ADMIN` only in the organization's environment.
    role: Role,
}

impl RequestBody for CreateClient {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            name: body.required_str("name")?.to_owned(),
            role: body.required_str("role")?.parse().map_err(
                |e: crate::domain::UnknownValue| ApiError::invalid_value("role", e.to_string()),
            )?,
        })
    }
}

/// A new client secret: the old one no longer gets tokens.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSecretView {
    client_secret: String,
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/clients", tag = "Clients",
    params(EnvironmentPath), request_body = CreateClient,
    responses((status = 201, body = ClientView), (status = 400, body = P1Error), ResourceErrors))]
async fn create_client(
    Write(environment, api): Write<EnvironmentPath>,
    Body(body): Body<CreateClient>,
) -> ApiResult<impl IntoResponse> {
    let created = api
        .service
        .create_client(&api.actor, &environment, &body.name, body.role)
        .await?;
    let mut view = created.client.view(&api);
    view.client_secret = Some(created.client_secret);
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/clients", tag = "Clients",
    params(EnvironmentPath),
    responses((status = 200, description = "`_embedded.clients`"), ResourceErrors))]
async fn list_clients(
    Read(environment, api): Read<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    let clients = api.service.list::<Client>(environment.id).await?;
    let this = format!("{}/clients", api.urls.environment(environment.id));
    Ok(api.page("clients", &clients, this))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/clients/{clientId}", tag = "Clients",
    params(ClientPath), responses((status = 200, body = ClientView), ResourceErrors))]
async fn read_client(Read(client, api): Read<ClientPath>) -> ApiResult<impl IntoResponse> {
    Ok(api.show(&client))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}/clients/{clientId}", tag = "Clients",
    params(ClientPath),
    responses((status = 204), (status = 400, body = P1Error), ResourceErrors))]
async fn delete_client(Write(client, api): Write<ClientPath>) -> ApiResult<impl IntoResponse> {
    api.service.delete_client(&api.actor, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/clients/{clientId}/secret",
    tag = "Clients", params(ClientPath),
    responses((status = 200, body = ClientSecretView), ResourceErrors))]
async fn rotate_client_secret(
    Write(client, api): Write<ClientPath>,
) -> ApiResult<impl IntoResponse> {
    let client_secret = api
        .service
        .rotate_client_secret(&api.actor, &client)
        .await?;
    Ok(Json(ClientSecretView { client_secret }))
}
