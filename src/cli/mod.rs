//! The `trustmail` command line: its commands, what they print, and their exit codes. `main.rs`
//! parses it and calls `run`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

mod clients;
mod dkim;
mod domains;
mod environments;
mod outbox;
mod secrets;
mod suppressions;

pub use clients::ClientCommand;
pub use dkim::DkimCommand;
pub use domains::DomainCommand;
pub use environments::EnvironmentCommand;
pub use outbox::OutboxCommand;
pub use secrets::SecretsCommand;
pub use suppressions::SuppressionCommand;

use crate::{
    api::hal::UrlBuilder,
    config::{CONFIG_PATH_VAR, Config},
    error_chain::ErrorChain,
    service::ADMINISTRATORS,
    startup::{Application, StartupError, ensure_open_files, open_service, public_url},
};
use domains::find_domain;

/// Exit code when a command is refused (e.g. already initialised).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for a configuration error (clap's usage errors use it too).
pub const EXIT_CONFIG: u8 = 2;
/// Exit code of `domain wait` when the timeout passed before every record was ACTIVE.
pub const EXIT_TIMED_OUT: u8 = 3;

#[derive(Parser)]
#[command(
    name = "trustmail",
    version,
    about = "PingOne-compatible trusted email domains service"
)]
pub struct Cli {
    /// TOML configuration file (every key can also be set by TRUSTMAIL_<SECTION>__<KEY>).
    #[arg(long, global = true, env = CONFIG_PATH_VAR, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve the HTTP API on `listen`; on an empty database, first do what `init` does.
    Serve,
    /// Create the Administrators environment and an ORGANIZATION_ADMIN client, once.
    Init {
        /// Print one JSON object: environmentId, clientId, clientSecret, tokenUrl.
        #[arg(long)]
        json: bool,
    },
    /// Manage environments.
    #[command(subcommand)]
    Environment(EnvironmentCommand),
    /// Read an environment's sending domains, their records, and wait for them to verify.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage clients (worker applications).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Read the outbox: the mail trustmail sends (with no relay configured, it waits here).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// DKIM keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// An environment's suppression list: the addresses it no longer sends to.
    #[command(subcommand)]
    Suppression(SuppressionCommand),
    /// The master key that seals secrets at rest.
    #[command(subcommand)]
    Secrets(SecretsCommand),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs one command on a runtime of its own; failures are printed with their causes and
/// become the exit code. The configuration is loaded (and checked) before any runtime exists.
pub fn run(command: Command, config: Config) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("trustmail: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(command, config)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trustmail: {}", ErrorChain(e.as_ref()));
            let configuration = e
                .downcast_ref::<StartupError>()
                .is_some_and(StartupError::is_configuration);
            ExitCode::from(if configuration { EXIT_CONFIG } else { 1 })
        }
    }
}

async fn execute(command: Command, config: Config) -> Result<ExitCode, BoxError> {
    let configured_url = public_url(&config, config.listen);
    match command {
        Command::Serve => {
            // Only the server holds thousands of connections; the other verbs need no check.
            ensure_open_files(&config).map_err(StartupError::from)?;
            let mut app = Application::build(config).await?;
            if let Some(credentials) = app.take_bootstrap_credentials() {
                println!("{}", serde_json::to_string(&credentials)?);
                eprintln!(
                    "trustmail: created the {ADMINISTRATORS} environment and an ORGANIZATION_ADMIN client; \
                     the secret above is shown only once"
                );
            }
            app.run_until_stopped().await?;
        }
        Command::Init { json } => {
            let service = open_service(&config, &configured_url).await?;
            let Some(credentials) = service.bootstrap(&configured_url).await? else {
                eprintln!("trustmail: already initialised; nothing was created");
                return Ok(ExitCode::from(EXIT_REFUSED));
            };
            if json {
                println!("{}", serde_json::to_string(&credentials)?);
            } else {
                println!("environment:   {}", credentials.environment_id);
                println!("client id:     {}", credentials.client_id);
                println!(
                    "client secret: {}  (shown only now)",
                    credentials.client_secret
                );
                println!("token URL:     {}", credentials.token_url);
            }
        }
        Command::Environment(command) => {
            let service = open_service(&config, &configured_url).await?;
            let Some(actor) = service.operator().await? else {
                return refuse_uninitialised();
            };
            let out = Output::new(&configured_url);
            return environments::environment_command(command, &service, &actor, &out).await;
        }
        Command::Domain(command) => {
            let service = open_service(&config, &configured_url).await?;
            let out = Output::new(&configured_url);
            return domains::domain_command(command, &service, &out).await;
        }
        Command::Client(command) => {
            let service = open_service(&config, &configured_url).await?;
            let Some(actor) = service.operator().await? else {
                return refuse_uninitialised();
            };
            return clients::client_command(command, &service, &actor).await;
        }
        Command::Outbox(command) => {
            let service = open_service(&config, &configured_url).await?;
            return outbox::outbox_command(command, &service).await;
        }
        Command::Dkim(command) => {
            let service = open_service(&config, &configured_url).await?;
            return dkim::dkim_command(command, &service).await;
        }
        Command::Suppression(command) => {
            let service = open_service(&config, &configured_url).await?;
            let Some(actor) = service.operator().await? else {
                return refuse_uninitialised();
            };
            return suppressions::suppression_command(command, &service, &actor).await;
        }
        Command::Secrets(command) => {
            let out = Output::new(&configured_url);
            return secrets::secrets_command(command, &config, &configured_url, &out).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rfc3339(t: OffsetDateTime) -> Result<String, BoxError> {
    Ok(t.format(&Rfc3339)?)
}

/// The environment `id`; `None`, said on stderr, when there is none.
async fn find_environment(
    service: &crate::service::Service,
    id: crate::domain::EnvironmentId,
) -> Result<Option<std::sync::Arc<crate::domain::Environment>>, BoxError> {
    match service.environment(id).await {
        Ok(environment) => Ok(Some(environment)),
        Err(crate::service::ServiceError::NotFound) => {
            eprintln!("trustmail: no environment {id}");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

fn refuse_uninitialised() -> Result<ExitCode, BoxError> {
    eprintln!("trustmail: not initialised; run `trustmail init` first");
    Ok(ExitCode::from(EXIT_REFUSED))
}

/// How commands print: JSON (the API's own shapes, links on `public_url`) for scripts, aligned
/// fields and tables for people.
struct Output {
    urls: UrlBuilder,
}

impl Output {
    fn new(public_url: &str) -> Self {
        Self {
            urls: UrlBuilder::new(public_url),
        }
    }

    fn json(&self, value: &impl serde::Serialize) -> Result<(), BoxError> {
        println!("{}", serde_json::to_string(value)?);
        Ok(())
    }

    /// `label: value` lines, values aligned.
    fn fields(&self, fields: &[(&str, String)]) {
        let width = fields
            .iter()
            .map(|(label, _)| label.len())
            .max()
            .unwrap_or(0)
            + 1;
        for (label, value) in fields {
            println!("{:<width$} {value}", format!("{label}:"));
        }
    }

    /// A header and aligned columns, no borders (reads in a terminal, greps in a pipe).
    fn table<const N: usize>(
        &self,
        header: [&str; N],
        rows: impl IntoIterator<Item = [String; N]>,
    ) {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::NOTHING)
            .set_header(header);
        for row in rows {
            table.add_row(row);
        }
        for column in table.column_iter_mut() {
            column.set_padding((0, 2));
        }
        for line in table.lines() {
            println!("{}", line.trim_end());
        }
    }
}
