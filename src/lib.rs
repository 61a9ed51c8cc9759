//! trustmail: a self-hosted, PingOne-compatible trusted email domains service.

pub mod api;
pub mod cli;
pub mod config;
pub mod dkim_dns;
pub mod dns;
pub mod domain;
pub mod error_chain;
pub mod feedback;
pub mod jobs;
pub mod mail;
pub mod secrets;
pub mod service;
pub mod startup;
pub mod store;
pub mod webhooks;
