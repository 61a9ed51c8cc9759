//! The API tests: one binary, real server on port 0, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod activities;
mod cli;
mod concurrency;
mod dns_server;
mod email_domains;
mod environments;
mod errors;
mod helpers;
mod openapi;
mod outbox;
mod restart;
mod smtp_sink;
mod store;
mod trusted_emails;
mod verification;
