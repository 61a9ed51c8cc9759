//! The `trustmail` command line: its commands, what they print, and their exit codes. `main.rs`
//! parses it and calls `run`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{
    config::{CONFIG_PATH_VAR, Config},
    domain::{Client, ClientId, EnvironmentId, Geography, Role},
    error_chain::ErrorChain,
    mail::OutboxId,
    service::{ADMINISTRATORS, Actor, Service, ServiceError},
    startup::{Application, StartupError, open_service, public_url},
    store::{OutboxMessage, OutboxStatus},
};

/// Exit code when a command is refused (e.g. already initialised).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code for a configuration error (clap's usage errors use it too).
pub const EXIT_CONFIG: u8 = 2;

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
    /// Manage clients (worker applications).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Read the outbox: the mail trustmail sends (with no relay configured, it waits here).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// DKIM keys.
    #[command(subcommand)]
    Dkim(DkimCommand),
}

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Rotate a domain's DKIM keys: the waiting key signs, the signing key retires (still
    /// published), the retired slot gets a fresh key. Customers change nothing in their DNS.
    Rotate {
        /// The environment the domain belongs to.
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        /// The domain: its id or its name.
        #[arg(long)]
        domain: String,
        /// Only this sending region (default: every region of the domain).
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print a region's DKIM zone (SOA, NS, one TXT per key) as a BIND zone file, for hosting it
    /// on other name servers instead of `[dkim_dns]`.
    ZoneFile {
        /// A configured region's name, e.g. us-east-1.
        #[arg(long, value_name = "NAME")]
        region: String,
    },
}

#[derive(Subcommand)]
pub enum EnvironmentCommand {
    /// Create an environment.
    Create {
        #[arg(long)]
        name: String,
        /// Geography: NA, CA, EU or AP.
        #[arg(long)]
        region: Geography,
        #[arg(long)]
        json: bool,
    },
    /// List environments.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Create a client and print its secret (shown only now).
    Create {
        /// The environment the client lives in.
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        /// ORGANIZATION_ADMIN, ENVIRONMENT_ADMIN or READ_ONLY.
        #[arg(long)]
        role: Role,
        #[arg(long, default_value = "CLI client")]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List an environment's clients: id, role, name (never a secret).
    List {
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        #[arg(long)]
        json: bool,
    },
    /// Print one client (never its secret).
    Show {
        id: ClientId,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client; its tokens stop working on every replica within 2 s.
    Delete { id: ClientId },
    /// Give a client a new secret (printed only now); the old one stops getting tokens.
    RotateSecret {
        id: ClientId,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum OutboxCommand {
    /// List messages, newest first: id, status, created time, recipient, subject.
    List {
        /// Show at most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Print one message: its envelope and delivery state, then its full text.
    Show {
        /// The message id, as `outbox list` shows it.
        id: OutboxId,
    },
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
        Command::Environment(EnvironmentCommand::Create { name, region, json }) => {
            let service = open_service(&config, &configured_url).await?;
            let Some(actor) = service.operator().await? else {
                return refuse_uninitialised();
            };
            let environment = match service.create_environment(&actor, &name, region).await {
                Ok(environment) => environment,
                Err(
                    e @ (ServiceError::InvalidValue { .. } | ServiceError::RequiredValue { .. }),
                ) => {
                    eprintln!("trustmail: {e}");
                    return Ok(ExitCode::from(EXIT_REFUSED));
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": environment.id, "name": environment.name,
                        "region": environment.region.as_str(),
                    })
                );
            } else {
                println!(
                    "{}  {}  {}",
                    environment.id, environment.region, environment.name
                );
            }
        }
        Command::Environment(EnvironmentCommand::List { json }) => {
            let service = open_service(&config, &configured_url).await?;
            let Some(actor) = service.operator().await? else {
                return refuse_uninitialised();
            };
            let environments = service.list_environments(&actor).await?;
            if json {
                let list: Vec<_> = environments
                    .iter()
                    .map(|e| serde_json::json!({"id": e.id, "name": e.name, "region": e.region.as_str()}))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for e in environments {
                    println!("{}  {}  {}", e.id, e.region, e.name);
                }
            }
        }
        Command::Client(command) => {
            let service = open_service(&config, &configured_url).await?;
            let Some(actor) = service.operator().await? else {
                return refuse_uninitialised();
            };
            return client_command(command, &service, &actor).await;
        }
        Command::Outbox(command) => {
            let service = open_service(&config, &configured_url).await?;
            return outbox_command(command, &service).await;
        }
        Command::Dkim(command) => {
            let service = open_service(&config, &configured_url).await?;
            return dkim_command(command, &service).await;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn dkim_command(command: DkimCommand, service: &Service) -> Result<ExitCode, BoxError> {
    match command {
        DkimCommand::Rotate {
            environment,
            domain,
            region,
            json,
        } => {
            let Some(found) = find_domain(service, environment, &domain).await? else {
                eprintln!("trustmail: no domain {domain} in environment {environment}");
                return Ok(ExitCode::from(EXIT_REFUSED));
            };
            let keys = match service
                .rotate_dkim_keys(None, &found, region.as_deref())
                .await
            {
                Ok(keys) => keys,
                Err(e @ (ServiceError::InvalidValue { .. } | ServiceError::NotFound)) => {
                    eprintln!("trustmail: {e}");
                    return Ok(ExitCode::from(EXIT_REFUSED));
                }
                Err(e) => return Err(e.into()),
            };
            if json {
                let list = keys
                    .iter()
                    .map(|k| {
                        Ok(serde_json::json!({
                            "region": k.region, "selector": k.selector, "role": k.role.as_str(),
                            "roleSince": rfc3339(k.role_since)?,
                        }))
                    })
                    .collect::<Result<Vec<_>, BoxError>>()?;
                println!("{}", serde_json::Value::Array(list));
            } else {
                for k in &keys {
                    println!(
                        "{}  {}  {:<9}  since {}",
                        k.region,
                        k.selector,
                        k.role.as_str(),
                        rfc3339(k.role_since)?
                    );
                }
            }
        }
        DkimCommand::ZoneFile { region } => match service.dkim_zone_file(&region).await {
            Ok(zone) => print!("{zone}"),
            Err(ServiceError::NotFound) => {
                let names: Vec<&str> = service
                    .settings()
                    .regions
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect();
                eprintln!(
                    "trustmail: no region {region} (configured: {})",
                    names.join(", ")
                );
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// A domain of `environment` named by its id or its name.
async fn find_domain(
    service: &Service,
    environment: EnvironmentId,
    domain: &str,
) -> Result<Option<crate::domain::EmailDomain>, BoxError> {
    let environment = match service.environment(environment).await {
        Ok(environment) => environment,
        Err(ServiceError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let domains = service.list_domains(&environment).await?;
    let wanted = domain.trim_end_matches('.').to_ascii_lowercase();
    Ok(domains
        .into_iter()
        .find(|d| d.id.to_string() == wanted || d.name.as_str() == wanted))
}

/// `outbox list` / `outbox show`: reads only, so it works while `serve` runs.
async fn outbox_command(command: OutboxCommand, service: &Service) -> Result<ExitCode, BoxError> {
    match command {
        OutboxCommand::List { limit, json } => {
            let messages = service.outbox(limit).await?;
            if json {
                let list = messages
                    .iter()
                    .map(|m| {
                        Ok(serde_json::json!({
                            "id": m.id, "status": m.status.as_str(), "route": m.route.to_string(),
                            "to": m.envelope_to.join(", "), "subject": m.subject, "attempts": m.attempts,
                            "createdAt": rfc3339(m.created_at)?,
                        }))
                    })
                    .collect::<Result<Vec<_>, BoxError>>()?;
                println!("{}", serde_json::Value::Array(list));
            } else {
                for m in &messages {
                    println!(
                        "{}  {:<7}  {}  {}  {}",
                        m.id,
                        m.status.as_str(),
                        rfc3339(m.created_at)?,
                        m.envelope_to.join(", "),
                        m.subject
                    );
                }
            }
        }
        OutboxCommand::Show { id } => match service.outbox_message(id).await {
            Ok(message) => print_outbox_message(&message)?,
            Err(ServiceError::NotFound) => {
                eprintln!("trustmail: no outbox message {id}");
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn print_outbox_message(m: &OutboxMessage) -> Result<(), BoxError> {
    let optional_time = |t: Option<OffsetDateTime>| t.map(rfc3339).transpose();
    let next_attempt = match m.status {
        OutboxStatus::Pending => Some(m.next_attempt_at),
        OutboxStatus::Sent | OutboxStatus::Failed => None,
    };
    let environment = m.environment_id.map(|id| id.to_string());
    for (label, value) in [
        ("id", Some(m.id.to_string())),
        ("environment", environment),
        ("route", Some(m.route.to_string())),
        ("envelope from", Some(m.envelope_from.clone())),
        ("envelope to", Some(m.envelope_to.join(", "))),
        ("status", Some(m.status.to_string())),
        ("attempts", Some(m.attempts.to_string())),
        ("next attempt", optional_time(next_attempt)?),
        ("last error", m.last_error.clone()),
        ("created", Some(rfc3339(m.created_at)?)),
        ("sent", optional_time(m.sent_at)?),
        ("relay reply", m.relay_reply.clone()),
    ] {
        println!(
            "{:<14} {}",
            format!("{label}:"),
            value.as_deref().unwrap_or("-")
        );
    }
    println!();
    // The stored text has CRLF line ends, as sent; print it as lines for the terminal.
    for line in m.message.lines() {
        println!("{line}");
    }
    Ok(())
}

fn rfc3339(t: OffsetDateTime) -> Result<String, BoxError> {
    Ok(t.format(&Rfc3339)?)
}

async fn client_command(
    command: ClientCommand,
    service: &Service,
    actor: &Actor,
) -> Result<ExitCode, BoxError> {
    let refused = |e: ServiceError| -> Result<ExitCode, BoxError> {
        match e {
            ServiceError::NotFound => eprintln!("trustmail: no such environment or client"),
            e @ (ServiceError::InvalidValue { .. }
            | ServiceError::RequiredValue { .. }
            | ServiceError::InvalidRequest(_)) => eprintln!("trustmail: {e}"),
            e => return Err(e.into()),
        }
        Ok(ExitCode::from(EXIT_REFUSED))
    };
    match command {
        ClientCommand::Create {
            environment,
            role,
            name,
            json,
        } => {
            let created = match service.environment(environment).await {
                Ok(environment) => {
                    service
                        .create_client(actor, &environment, &name, role)
                        .await
                }
                Err(e) => Err(e),
            };
            let created = match created {
                Ok(created) => created,
                Err(e) => return refused(e),
            };
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "clientId": created.client.id, "clientSecret": created.client_secret,
                    })
                );
            } else {
                println!("client id:     {}", created.client.id);
                println!("client secret: {}  (shown only now)", created.client_secret);
            }
        }
        ClientCommand::List { environment, json } => {
            let clients = match service.environment(environment).await {
                Ok(environment) => service.list_clients(&environment).await,
                Err(e) => Err(e),
            };
            let clients = match clients {
                Ok(clients) => clients,
                Err(e) => return refused(e),
            };
            if json {
                let list = clients
                    .iter()
                    .map(client_json)
                    .collect::<Result<Vec<_>, _>>()?;
                println!("{}", serde_json::Value::Array(list));
            } else {
                for c in clients {
                    println!("{}  {}  {}", c.id, c.role, c.name);
                }
            }
        }
        ClientCommand::Show { id, json } => {
            let Some(client) = service.find_client(id).await? else {
                return refused(ServiceError::NotFound);
            };
            if json {
                println!("{}", client_json(&client)?);
            } else {
                println!("id:          {}", client.id);
                println!("name:        {}", client.name);
                println!("role:        {}", client.role);
                println!("environment: {}", client.environment_id);
                println!("created:     {}", rfc3339(client.created_at)?);
            }
        }
        ClientCommand::Delete { id } => {
            let Some(client) = service.find_client(id).await? else {
                return refused(ServiceError::NotFound);
            };
            if let Err(e) = service.delete_client(actor, &client).await {
                return refused(e);
            }
        }
        ClientCommand::RotateSecret { id, json } => {
            let Some(client) = service.find_client(id).await? else {
                return refused(ServiceError::NotFound);
            };
            let secret = match service.rotate_client_secret(actor, &client).await {
                Ok(secret) => secret,
                Err(e) => return refused(e),
            };
            if json {
                println!("{}", serde_json::json!({ "clientSecret": secret }));
            } else {
                println!("client secret: {secret}  (shown only now)");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn client_json(client: &Client) -> Result<serde_json::Value, BoxError> {
    Ok(serde_json::json!({
        "id": client.id, "name": client.name, "role": client.role.as_str(),
        "environment": { "id": client.environment_id },
        "createdAt": rfc3339(client.created_at)?,
    }))
}

fn refuse_uninitialised() -> Result<ExitCode, BoxError> {
    eprintln!("trustmail: not initialised; run `trustmail init` first");
    Ok(ExitCode::from(EXIT_REFUSED))
}
