//! `trustmail client …`: worker applications and their secrets.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BoxError, EXIT_REFUSED, rfc3339};
use crate::{
    domain::{Client, ClientId, EnvironmentId, Role},
    service::{Actor, Service, ServiceError},
};

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

pub(super) async fn client_command(
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
                Ok(environment) => service.list::<Client>(environment.id).await,
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
