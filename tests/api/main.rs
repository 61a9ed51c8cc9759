//! The API tests: one binary, real server on port 0, real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod activities;
mod cli;
mod cli_domains;
mod clients;
mod concurrency;
mod console;
mod dkim;
mod dkim_dns;
mod dns_client;
mod email_domains;
mod environments;
mod errors;
mod faults;
mod http_limits;
mod messages;
mod openapi;
mod outbox;
mod restart;
mod self_check;
mod store;
mod support;
mod sweep;
mod token_limits;
mod trusted_emails;
mod verification;
mod wait;
