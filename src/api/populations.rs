//! `/v1/environments/{environmentId}/populations`: PingOne's populations, so that its clients'
//! default-population handling works (docs/ENVIRONMENTS.md).

use axum::{http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RequestBody},
    errors::{ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    path::{Api, EnvironmentPath, PopulationPath, Read, Write},
};
use crate::domain::{Population, PopulationFields, default_theme_id};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_population, list_populations))
        .routes(routes!(
            read_population,
            update_population,
            delete_population
        ))
}

/// PingOne's `Population`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PopulationView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    environment: IdRef,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    /// Whether this is the environment's default population (at most one is).
    default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    alternative_identifiers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    password_policy: Option<IdRef>,
    /// As sent, or the environment's default theme.
    theme: IdRef,
    created_at: String,
    updated_at: String,
}

impl Shown for Population {
    type View = PopulationView;

    fn view(&self, api: &Api) -> PopulationView {
        let env = self.environment_id;
        let fields = &self.fields;
        PopulationView {
            links: Links::from([
                ("self", UrlBuilder::link(api.urls.population(env, self.id))),
                ("environment", UrlBuilder::link(api.urls.environment(env))),
            ]),
            id: self.id.to_string(),
            environment: IdRef::new(env),
            name: fields.name.clone(),
            description: fields.description.clone(),
            default: self.is_default,
            alternative_identifiers: fields.alternative_identifiers.clone(),
            preferred_language: fields.preferred_language.clone(),
            password_policy: fields.password_policy_id.as_ref().map(IdRef::new),
            theme: IdRef::new(
                fields
                    .theme_id
                    .clone()
                    .unwrap_or_else(|| default_theme_id(env)),
            ),
            created_at: wire_time(self.created_at),
            updated_at: wire_time(self.updated_at),
        }
    }
}

/// Request body of a population create or update.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct PopulationBody {
    /// Unique in the environment.
    name: String,
    description: Option<String>,
    /// `true` makes it the default (the previous default stops being one); absent on a PUT
    /// leaves it as it was.
    default: Option<bool>,
    alternative_identifiers: Option<Vec<String>>,
    preferred_language: Option<String>,
    password_policy: Option<IdRef>,
    theme: Option<IdRef>,
}

impl RequestBody for PopulationBody {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        let text = |target| -> ApiResult<Option<String>> {
            Ok(body.optional_str(target)?.map(str::to_owned))
        };
        let id = |target| -> ApiResult<Option<IdRef>> {
            Ok(body.optional_id_ref(target)?.map(IdRef::new))
        };
        Ok(Self {
            name: body.required_str("name")?.to_owned(),
            description: text("description")?,
            alternative_identifiers: body.optional_string_list("alternativeIdentifiers")?,
            preferred_language: text("preferredLanguage")?,
            password_policy: id("passwordPolicy")?,
            theme: id("theme")?,
            default: body.optional_bool("default")?,
        })
    }
}

impl PopulationBody {
    /// The population's fields, and its `default`.
    fn into_fields(self) -> (PopulationFields, Option<bool>) {
        let fields = PopulationFields {
            name: self.name,
            description: self.description,
            alternative_identifiers: self.alternative_identifiers,
            preferred_language: self.preferred_language,
            password_policy_id: self.password_policy.map(IdRef::into_id),
            theme_id: self.theme.map(IdRef::into_id),
        };
        (fields, self.default)
    }
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/populations", tag = "Populations",
    params(EnvironmentPath), request_body = PopulationBody,
    responses((status = 201, body = PopulationView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn create_population(
    Write(environment, api): Write<EnvironmentPath>,
    Body(body): Body<PopulationBody>,
) -> ApiResult<impl IntoResponse> {
    let (fields, default) = body.into_fields();
    let population = api
        .service
        .create_population(&api.actor, &environment, fields, default)
        .await?;
    Ok((StatusCode::CREATED, api.show(&population)))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/populations", tag = "Populations",
    params(EnvironmentPath),
    responses((status = 200, description = "`_embedded.populations`, oldest first"),
              ResourceErrors))]
async fn list_populations(
    Read(environment, api): Read<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    let populations = api.service.list::<Population>(environment.id).await?;
    let this = api.urls.populations(environment.id);
    Ok(api.page("populations", &populations, this))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/populations/{populationId}",
    tag = "Populations", params(PopulationPath),
    responses((status = 200, body = PopulationView), ResourceErrors))]
async fn read_population(
    Read(population, api): Read<PopulationPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(api.show(&population))
}

/// PingOne's PUT: every member is replaced by what was sent (absent ones cleared), except an
/// absent `default`, which leaves the flag as it was.
#[utoipa::path(put, path = "/v1/environments/{environmentId}/populations/{populationId}",
    tag = "Populations", params(PopulationPath), request_body = PopulationBody,
    responses((status = 200, body = PopulationView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn update_population(
    Write(population, api): Write<PopulationPath>,
    Body(body): Body<PopulationBody>,
) -> ApiResult<impl IntoResponse> {
    let (fields, default) = body.into_fields();
    let updated = api
        .service
        .update_population(&api.actor, &population, fields, default)
        .await?;
    Ok(api.show(&updated))
}

/// 204; the default population and an environment's last one are refused with 400
/// `CONSTRAINT_VIOLATION`, as PingOne refuses them.
#[utoipa::path(delete, path = "/v1/environments/{environmentId}/populations/{populationId}",
    tag = "Populations", params(PopulationPath),
    responses((status = 204), (status = 400, body = P1Error), ResourceErrors))]
async fn delete_population(
    Write(population, api): Write<PopulationPath>,
) -> ApiResult<impl IntoResponse> {
    api.service
        .delete_population(&api.actor, &population)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
