//! What the API tests share: the app under test, its in-process DNS and SMTP servers, a raw DNS
//! query for trustmail's own DNS, and the redactions that keep snapshots the same from run to run.

pub mod app;
pub mod dns;
pub mod dns_query;
pub mod receiver;
pub mod redact;
pub mod smtp;
pub mod smtp_client;

pub use app::{
    Db, TestApp, UNKNOWN_ID, assert_p1_error, backends, fetch_token, p1_error, retry_after,
};
pub use dns::TestDns;
pub use receiver::WebhookReceiver;
pub use smtp::SmtpSink;

/// Snapshots a P1Error response (its id checked and redacted) after checking its status, that
/// it is JSON, and that it carries a correlation id. A macro so that the snapshot takes the
/// test's name.
macro_rules! assert_error_snapshot {
    ($response:expr, $status:expr) => {
        let body = $crate::support::p1_error($response, $status).await;
        insta::assert_json_snapshot!(body, { ".id" => $crate::support::redact::id() });
    };
}
pub(crate) use assert_error_snapshot;

/// Snapshots a resource as it was created: its new id and its times checked and redacted, and
/// each value of `names` (links, parent ids) shown by name.
macro_rules! assert_created_snapshot {
    ($value:expr, $names:expr) => {
        insta::assert_json_snapshot!($value, {
            ".id" => $crate::support::redact::id(),
            ".createdAt" => $crate::support::redact::time(),
            ".updatedAt" => $crate::support::redact::time(),
            ".**" => $names.redaction(),
        });
    };
}
pub(crate) use assert_created_snapshot;
