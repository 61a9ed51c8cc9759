//! Background work that every replica runs. Rows are leased in the store, so replicas share
//! the work without doing any piece of it twice.

pub mod dns;
pub mod outbox;

/// An error and its causes on one line, for logs.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
