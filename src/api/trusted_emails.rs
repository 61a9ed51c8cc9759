//! `…/emailDomains/{emailDomainId}/trustedEmails`: PingOne's trusted email address operations
//! (`contract/pingone-email-domains.openapi.yml`: createTrustedEmailAddress, readAll…, readOne…,
//! deleteTrustedEmailAddress, resendVerificationCodeToEmail) and activation with a code.

use axum::{http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{Body, JsonObject, RawBody, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, Shown, UrlBuilder, wire_time},
    path::{Api, DomainPath, Read, TrustedEmailPath, Write},
};
use crate::domain::TrustedEmail;

/// Selects "activate" on `POST …/trustedEmails/{id}`.
pub const ACTIVATE: &str = "application/vnd.pingidentity.trustedemail.activate+json";
/// Selects "send the code again" on `POST …/trustedEmails/{id}`.
pub const SEND_CODE: &str = "application/vnd.pingidentity.trustedemail.sendverificationcode+json";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_trusted_email, list_trusted_emails))
        .routes(routes!(
            read_trusted_email,
            delete_trusted_email,
            act_on_trusted_email
        ))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrustedEmailView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    environment: IdRef,
    domain: IdRef,
    email_address: String,
    /// `VERIFICATION_REQUIRED` or `ACTIVE`.
    status: &'static str,
    created_at: String,
    updated_at: String,
    domain_id: String,
}

impl Shown for TrustedEmail {
    type View = TrustedEmailView;

    fn view(&self, api: &Api) -> TrustedEmailView {
        let domain = api.urls.domain(self.environment_id, self.domain_id);
        TrustedEmailView {
            links: Links::from([
                (
                    "self",
                    UrlBuilder::link(format!("{domain}/trustedEmails/{}", self.id)),
                ),
                (
                    "environment",
                    UrlBuilder::link(api.urls.environment(self.environment_id)),
                ),
                ("emailDomain", UrlBuilder::link(domain)),
            ]),
            id: self.id.to_string(),
            environment: IdRef::new(self.environment_id),
            domain: IdRef::new(self.domain_id),
            email_address: self.address.to_string(),
            status: self.status.as_str(),
            created_at: wire_time(self.created_at),
            updated_at: wire_time(self.updated_at),
            domain_id: self.domain_id.to_string(),
        }
    }
}

/// Request body of a trusted address create.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateTrustedEmail {
    /// An address in the trusted domain, e.g. `noreply@auth.shopco.com`.
    email_address: String,
}

impl RequestBody for CreateTrustedEmail {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            email_address: body.required_str("emailAddress")?.to_owned(),
        })
    }
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/trustedEmails",
    tag = "Trusted Email Addresses",
    params(DomainPath),
    request_body = CreateTrustedEmail,
    responses((status = 201, body = TrustedEmailView), (status = 200, body = TrustedEmailView),
              (status = 400, body = P1Error), ResourceErrors))]
async fn create_trusted_email(
    Write(domain, api): Write<DomainPath>,
    Body(body): Body<CreateTrustedEmail>,
) -> ApiResult<impl IntoResponse> {
    let outcome = api
        .service
        .create_trusted_email(&api.actor, &domain, &body.email_address)
        .await?;
    Ok(api.show_created(outcome))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/trustedEmails",
    tag = "Trusted Email Addresses",
    params(DomainPath),
    responses((status = 200, description = "`_embedded.trustedEmails`"), ResourceErrors))]
async fn list_trusted_emails(Read(domain, api): Read<DomainPath>) -> ApiResult<impl IntoResponse> {
    let emails = api.service.list::<TrustedEmail>(domain.id).await?;
    let this = api.urls.domain_leaf(&domain, "trustedEmails");
    Ok(api.page("trustedEmails", &emails, this))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/trustedEmails/{trustedEmailId}",
    tag = "Trusted Email Addresses",
    params(TrustedEmailPath),
    responses((status = 200, body = TrustedEmailView), ResourceErrors))]
async fn read_trusted_email(
    Read(email, api): Read<TrustedEmailPath>,
) -> ApiResult<impl IntoResponse> {
    Ok(api.show(&email))
}

#[utoipa::path(delete, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/trustedEmails/{trustedEmailId}",
    tag = "Trusted Email Addresses",
    params(TrustedEmailPath),
    responses((status = 204), ResourceErrors))]
async fn delete_trusted_email(
    Write(email, api): Write<TrustedEmailPath>,
) -> ApiResult<impl IntoResponse> {
    api.service.delete_trusted_email(&api.actor, &email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of an activation.
#[derive(Debug, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivateTrustedEmail {
    /// The 8-character code from the mail.
    verification_code: String,
}

impl RequestBody for ActivateTrustedEmail {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        Ok(Self {
            verification_code: body.required_str("verificationCode")?.to_owned(),
        })
    }
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/emailDomains/{emailDomainId}/trustedEmails/{trustedEmailId}",
    tag = "Trusted Email Addresses",
    params(TrustedEmailPath),
    request_body(content = ActivateTrustedEmail, content_type = "application/vnd.pingidentity.trustedEmail.activate+json",
                 description = "Activate with the emailed code; with `application/vnd.pingidentity.trustedEmail.sendVerificationCode+json` and no body, send a new code"),
    responses((status = 200, body = TrustedEmailView), (status = 400, body = P1Error),
              (status = 429, body = P1Error), ResourceErrors))]
async fn act_on_trusted_email(
    Write(email, api): Write<TrustedEmailPath>,
    body: RawBody,
) -> ApiResult<impl IntoResponse> {
    let email = match body.media_type().as_deref() {
        Some(ACTIVATE) => {
            let body: ActivateTrustedEmail = body.object()?;
            api.service
                .activate_trusted_email(&api.actor, &email, &body.verification_code)
                .await?
        }
        Some(SEND_CODE) => api.service.resend_code(&api.actor, &email).await?,
        _ => {
            return Err(ApiError::InvalidRequest(
                "The request could not be completed. Use Content-Type \
                 application/vnd.pingidentity.trustedEmail.activate+json or \
                 application/vnd.pingidentity.trustedEmail.sendVerificationCode+json."
                    .into(),
            ));
        }
    };
    Ok(api.show(&email))
}
