//! What the API tests share: the app under test and its in-process DNS and SMTP servers.

pub mod app;
pub mod dns;
pub mod smtp;

pub use app::{Db, TestApp, UNKNOWN_ID, assert_p1_error, backends};
pub use dns::TestDns;
pub use smtp::SmtpSink;
