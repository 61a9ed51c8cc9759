//! `trustmail suppression …`: an environment's suppression list, as the API serves it.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BoxError, EXIT_REFUSED, find_environment, rfc3339};
use crate::{
    domain::EnvironmentId,
    feedback::{Suppression, SuppressionReason},
    service::{Actor, Created, Service, ServiceError},
};

/// The most entries `list` prints.
const LIST_LIMIT: u32 = 1000;

#[derive(Subcommand)]
pub enum SuppressionCommand {
    /// List the addresses the environment no longer sends to, newest first.
    List {
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        /// Only BOUNCE, COMPLAINT or MANUAL entries.
        #[arg(long)]
        reason: Option<SuppressionReason>,
        #[arg(long)]
        json: bool,
    },
    /// Print one entry.
    Show {
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        address: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop sending to an address (a MANUAL entry; one listed already stays as it is).
    Add {
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        address: String,
    },
    /// Send to an address again.
    Remove {
        #[arg(long, value_name = "ID")]
        environment: EnvironmentId,
        address: String,
    },
}

pub(super) async fn suppression_command(
    command: SuppressionCommand,
    service: &Service,
    actor: &Actor,
) -> Result<ExitCode, BoxError> {
    let refused = |e: ServiceError| -> Result<ExitCode, BoxError> {
        match e {
            ServiceError::NotFound => eprintln!("trustmail: the address is not listed"),
            e @ ServiceError::InvalidValue { .. } => eprintln!("trustmail: {e}"),
            e => return Err(e.into()),
        }
        Ok(ExitCode::from(EXIT_REFUSED))
    };
    let (SuppressionCommand::List { environment, .. }
    | SuppressionCommand::Show { environment, .. }
    | SuppressionCommand::Add { environment, .. }
    | SuppressionCommand::Remove { environment, .. }) = &command;
    let Some(environment) = find_environment(service, *environment).await? else {
        return Ok(ExitCode::from(EXIT_REFUSED));
    };
    match command {
        SuppressionCommand::List { reason, json, .. } => {
            let page = (LIST_LIMIT, 0);
            let (entries, count) = service
                .list_suppressions(&environment, reason, page)
                .await?;
            if json {
                let list = entries
                    .iter()
                    .map(suppression_json)
                    .collect::<Result<Vec<_>, _>>()?;
                println!("{}", serde_json::Value::Array(list));
            } else {
                for s in &entries {
                    println!("{}  {:<9}  {}", rfc3339(s.created_at)?, s.reason, s.address);
                }
                if count > i64::from(LIST_LIMIT) {
                    eprintln!("trustmail: the newest {LIST_LIMIT} of {count} entries");
                }
            }
        }
        SuppressionCommand::Show { address, json, .. } => {
            let entry = match service.suppression(&environment, &address).await {
                Ok(entry) => entry,
                Err(e) => return refused(e),
            };
            if json {
                println!("{}", suppression_json(&entry)?);
            } else {
                println!("address: {}", entry.address);
                println!("reason:  {}", entry.reason);
                if let Some(message) = entry.message_id {
                    println!("message: {message}");
                }
                if let Some(detail) = &entry.detail {
                    println!("detail:  {detail}");
                }
                println!("since:   {}", rfc3339(entry.created_at)?);
            }
        }
        SuppressionCommand::Add { address, .. } => {
            match service.suppress(actor, &environment, &address).await {
                Ok(Created::New(entry)) => println!("suppressed {}", entry.address),
                Ok(Created::Existing(entry)) => {
                    println!(
                        "{} was suppressed already ({})",
                        entry.address, entry.reason
                    );
                }
                Err(e) => return refused(e),
            }
        }
        SuppressionCommand::Remove { address, .. } => {
            let removed = match service.suppression(&environment, &address).await {
                Ok(entry) => service.unsuppress(actor, &entry).await,
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                return refused(e);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// An entry with the API's member names.
fn suppression_json(s: &Suppression) -> Result<serde_json::Value, BoxError> {
    Ok(serde_json::json!({
        "environment": { "id": s.environment_id },
        "emailAddress": s.address.as_str(),
        "reason": s.reason.as_str(),
        "message": s.message_id.map(|id| serde_json::json!({ "id": id })),
        "detail": s.detail,
        "createdAt": rfc3339(s.created_at)?,
    }))
}
