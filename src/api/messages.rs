//! Addition PingOne lacks: `/v1/environments/{environmentId}/messages`, sending mail from a
//! trusted address (queued, DKIM-signed, delivered by the outbox) and reading where it stands.

use axum::{
    Json,
    http::{HeaderMap, StatusCode},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    AppState,
    body::{JsonObject, RawBody, RequestBody},
    errors::{ApiError, ApiResult, P1Error, ResourceErrors},
    hal::{IdRef, Links, UrlBuilder, wire_time},
    path::{EnvironmentPath, MessagePath, Read, Write},
};
use crate::{
    domain::EnvironmentId,
    mail::{self, Message, MessageId, MessageStatus, StoredMessage},
    service::RecipientReport,
    service::ServiceError,
};

const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_message))
        .routes(routes!(read_message))
}

fn message_url(urls: &UrlBuilder, environment: EnvironmentId, id: MessageId) -> String {
    format!("{}/messages/{id}", urls.environment(environment))
}

/// Answer to a send: the message is queued (or was, by the request its Idempotency-Key named).
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    /// `QUEUED`.
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    #[serde(rename = "_links")]
    #[schema(value_type = Object)]
    links: Links,
    id: String,
    environment: IdRef,
    /// `QUEUED`, `SENT` or `FAILED`.
    status: &'static str,
    /// Every recipient (to, then cc).
    recipients: Vec<String>,
    /// Each recipient, where it stands, and the feedback about it.
    recipient_statuses: Vec<RecipientStatusView>,
    subject: String,
    /// Delivery attempts so far.
    attempts: u32,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sent_at: Option<String>,
    /// SENT: what the relay answered when it took the message.
    #[serde(skip_serializing_if = "Option::is_none")]
    relay_reply: Option<String>,
    /// FAILED: why; QUEUED after a failed attempt: that attempt's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// One recipient of a message and where it stands.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecipientStatusView {
    email_address: String,
    /// `QUEUED`, `SENT` or `FAILED` (the message's own), `SUPPRESSED` (on the suppression list
    /// when queued: never sent to), `BOUNCED` (a hard bounce), `DELAYED` (a soft bounce) or
    /// `COMPLAINED` (reported as spam).
    status: &'static str,
    /// What came back about this recipient, oldest first.
    events: Vec<FeedbackEventView>,
}

/// A bounce, a delay or a complaint about one recipient.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeedbackEventView {
    /// `BOUNCE`, `DELAY` or `COMPLAINT`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// `RELAY` (refused at send time), `DSN` (a bounce message) or `ARF` (a complaint).
    source: &'static str,
    /// The enhanced status code of a bounce (`5.1.1`); the feedback type of a complaint.
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    /// The remote server's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    diagnostic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reporting_mta: Option<String>,
    received_at: String,
}

impl MessageView {
    fn new(
        message: &StoredMessage,
        recipients: Vec<RecipientReport>,
        environment: EnvironmentId,
        urls: &UrlBuilder,
    ) -> Self {
        Self {
            links: Links::from([
                (
                    "self",
                    UrlBuilder::link(message_url(urls, environment, message.id)),
                ),
                (
                    "environment",
                    UrlBuilder::link(urls.environment(environment)),
                ),
            ]),
            id: message.id.to_string(),
            environment: IdRef::new(environment),
            status: message.status.as_str(),
            recipients: recipients.iter().map(|r| r.address.clone()).collect(),
            recipient_statuses: recipients
                .into_iter()
                .map(|r| RecipientStatusView {
                    email_address: r.address,
                    status: r.status.as_str(),
                    events: r
                        .events
                        .into_iter()
                        .map(|e| FeedbackEventView {
                            kind: e.kind.as_str(),
                            source: e.source.as_str(),
                            status: e.status,
                            diagnostic: e.diagnostic,
                            reporting_mta: e.reporting_mta,
                            received_at: wire_time(e.created_at),
                        })
                        .collect(),
                })
                .collect(),
            subject: message.subject.clone(),
            attempts: message.attempts,
            created_at: wire_time(message.created_at),
            sent_at: message.sent_at.map(wire_time),
            relay_reply: message.relay_reply.clone(),
            reason: message.last_error.clone(),
        }
    }
}

/// The body of a send, its addresses parsed as it is read: each member's fault is reported in
/// member order, a malformed address with its member.
impl RequestBody for Message {
    fn read(body: &JsonObject) -> ApiResult<Self> {
        let address = |target: &'static str, value: &str| {
            mail::mailbox(target, value).map_err(ServiceError::from)
        };
        let addresses = |target: &'static str, values: Vec<String>| {
            mail::mailboxes(target, &values).map_err(ServiceError::from)
        };
        Ok(Self {
            from: address("from", body.required_str("from")?)?,
            to: addresses("to", body.string_list("to", true)?)?,
            cc: addresses("cc", body.string_list("cc", false)?)?,
            reply_to: body
                .optional_str("replyTo")?
                .map(|reply_to| address("replyTo", reply_to))
                .transpose()?,
            subject: body.required_str("subject")?.to_owned(),
            text: body.optional_str("text")?.map(str::to_owned),
            html: body.optional_str("html")?.map(str::to_owned),
        })
    }
}

#[utoipa::path(post, path = "/v1/environments/{environmentId}/messages",
    tag = "Messages",
    params(EnvironmentPath,
        ("Idempotency-Key" = Option<String>, Header,
         description = "The same key and body within 24 h answer with the first request's message and send nothing")),
    request_body = Message,
    responses((status = 202, body = QueuedView), (status = 400, body = P1Error),
              (status = 429, body = P1Error), ResourceErrors))]
async fn send_message(
    Write(environment, api): Write<EnvironmentPath>,
    headers: HeaderMap,
    body: RawBody,
) -> ApiResult<impl IntoResponse> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|value| {
            value.to_str().map_err(|_| {
                ApiError::invalid_value(IDEMPOTENCY_KEY, "The key must be visible ASCII.")
            })
        })
        .transpose()?;
    let message: Message = body.json()?;
    let id = api
        .service
        .send_message(&environment, message, key)
        .await?
        .into_inner();
    Ok((
        StatusCode::ACCEPTED,
        Json(QueuedView {
            links: Links::from([(
                "self",
                UrlBuilder::link(message_url(&api.urls, environment.id, id)),
            )]),
            id: id.to_string(),
            status: MessageStatus::Queued.as_str(),
        }),
    ))
}

#[utoipa::path(get, path = "/v1/environments/{environmentId}/messages/{messageId}",
    tag = "Messages",
    params(MessagePath),
    responses((status = 200, body = MessageView), ResourceErrors))]
async fn read_message(Read(message, api): Read<MessagePath>) -> ApiResult<impl IntoResponse> {
    let environment = message.environment_id.ok_or(ApiError::NotFound)?;
    let recipients = api.service.recipients(&message).await?;
    Ok(Json(MessageView::new(
        &message,
        recipients,
        environment,
        &api.urls,
    )))
}
