//! `/v1/environments/{environmentId}/billOfMaterials`: the products an environment is set up
//! for, kept as PingOne's clients send them (docs/ENVIRONMENTS.md).

use axum::{Json, response::IntoResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RequestBody},
    errors::{ApiResult, P1Error, ResourceErrors},
    hal::{Links, UrlBuilder, wire_time},
    path::{EnvironmentPath, Manage, Read},
};
use crate::domain::{BillOfMaterials, Environment, Product, SolutionType};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(read_bill_of_materials, update_bill_of_materials))
}

/// PingOne's `BillOfMaterials`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BillOfMaterialsView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    /// Set by the create; a PUT keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    solution_type: Option<&'static str>,
    /// Each product as sent: `type`, and `description`, `console.href`, `tags[]` and
    /// `bookmarks[]` (`name`, `href`) when sent.
    #[schema(value_type = Vec<Object>)]
    products: Value,
    created_at: String,
    updated_at: String,
}

impl BillOfMaterialsView {
    pub fn new(environment: &Environment, urls: &UrlBuilder) -> Self {
        let bill = &environment.bill_of_materials;
        let mut wire = bill.to_json();
        Self {
            links: Links::from([
                (
                    "self",
                    UrlBuilder::link(urls.bill_of_materials(environment.id)),
                ),
                (
                    "environment",
                    UrlBuilder::link(urls.environment(environment.id)),
                ),
            ]),
            solution_type: bill.solution_type.map(|s| s.as_str()),
            products: wire["products"].take(),
            created_at: wire_time(environment.created_at),
            updated_at: wire_time(environment.bill_of_materials_updated_at),
        }
    }
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/billOfMaterials",
    tag = "Environments", params(EnvironmentPath),
    responses((status = 200, body = BillOfMaterialsView), ResourceErrors))]
async fn read_bill_of_materials(
    Read(environment, api): Read<EnvironmentPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(Json(BillOfMaterialsView::new(&environment, &api.urls)))
}

/// Request body of `PUT …/billOfMaterials` (and `billOfMaterials` of an environment create):
/// PingOne's `BillOfMaterials` without the members it answers with.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct BillOfMaterialsBody {
    /// Kept by a create; a PUT checks it and keeps the create's.
    solution_type: Option<SolutionType>,
    /// Each product: `type` (required, listed once), and `description`, `console.href`,
    /// `tags[]` and `bookmarks[]` (`name`, `href`).
    #[schema(value_type = Vec<Object>)]
    products: Vec<Product>,
}

impl RequestBody for BillOfMaterialsBody {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        let bill = BillOfMaterials::parse(&body.to_value(), "")?;
        Ok(Self {
            solution_type: bill.solution_type,
            products: bill.products,
        })
    }
}

impl From<BillOfMaterialsBody> for BillOfMaterials {
    fn from(body: BillOfMaterialsBody) -> Self {
        Self {
            solution_type: body.solution_type,
            products: body.products,
        }
    }
}

/// Replaces the products (`products` required; each `type` one of PingOne's product types,
/// listed once; at most 5 bookmarks of at most 50-character unique names each).
#[utoipa::path(put, path = "/v1/environments/{environmentId}/billOfMaterials",
    tag = "Environments", params(EnvironmentPath), request_body = BillOfMaterialsBody,
    responses((status = 200, body = BillOfMaterialsView), (status = 400, body = P1Error),
              ResourceErrors))]
async fn update_bill_of_materials(
    Manage(environment, api): Manage<EnvironmentPath>,
    Body(body): Body<BillOfMaterialsBody>,
) -> ApiResult<impl IntoResponse> {
    let updated = api
        .service
        .set_bill_of_materials(&api.actor, &environment, body.into())
        .await?;
    Ok(Json(BillOfMaterialsView::new(&updated, &api.urls)))
}
