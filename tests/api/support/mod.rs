//! What the API tests share: the app under test, its in-process DNS and SMTP servers, and the
//! redactions that keep snapshots the same from run to run.

pub mod app;
pub mod dns;
pub mod redact;
pub mod smtp;

pub use app::{Db, TestApp, UNKNOWN_ID, assert_p1_error, backends};
pub use dns::TestDns;
pub use smtp::SmtpSink;
