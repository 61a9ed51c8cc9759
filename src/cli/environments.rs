//! `trustmail environment …`: tenants.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BoxError, EXIT_REFUSED, Output, rfc3339};
use crate::{
    api::views::EnvironmentView,
    domain::{EmailDomain, EnvironmentId, Geography},
    service::{Actor, Service, ServiceError},
};

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
    /// List environments: id, region, name, domains.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print one environment and how many of its domains are verified.
    Show {
        id: EnvironmentId,
        #[arg(long)]
        json: bool,
    },
}

pub(super) async fn environment_command(
    command: EnvironmentCommand,
    service: &Service,
    actor: &Actor,
    out: &Output,
) -> Result<ExitCode, BoxError> {
    match command {
        EnvironmentCommand::Create { name, region, json } => {
            let environment = match service.create_environment(actor, &name, region).await {
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
                out.json(&EnvironmentView::new(&environment, service, &out.urls))?;
            } else {
                out.fields(&[
                    ("id", environment.id.to_string()),
                    ("name", environment.name.clone()),
                    ("region", environment.region.to_string()),
                ]);
            }
        }
        EnvironmentCommand::List { json } => {
            let environments = service.list_environments(actor).await?;
            if json {
                let views: Vec<_> = environments
                    .iter()
                    .map(|e| EnvironmentView::new(e, service, &out.urls))
                    .collect();
                out.json(&views)?;
            } else {
                let mut rows = Vec::with_capacity(environments.len());
                for e in &environments {
                    let domains = service.list::<EmailDomain>(e.id).await?.len();
                    rows.push([
                        e.id.to_string(),
                        e.region.to_string(),
                        e.name.clone(),
                        domains.to_string(),
                    ]);
                }
                out.table(["ID", "REGION", "NAME", "DOMAINS"], rows);
            }
        }
        EnvironmentCommand::Show { id, json } => {
            let Some(environment) = super::find_environment(service, id).await? else {
                return Ok(ExitCode::from(EXIT_REFUSED));
            };
            if json {
                out.json(&EnvironmentView::new(&environment, service, &out.urls))?;
            } else {
                let domains = service.list::<EmailDomain>(environment.id).await?;
                let mut verified = 0;
                for domain in &domains {
                    if super::domains::all_active(&service.verification(domain).await?) {
                        verified += 1;
                    }
                }
                out.fields(&[
                    ("id", environment.id.to_string()),
                    ("name", environment.name.clone()),
                    ("region", environment.region.to_string()),
                    ("created", rfc3339(environment.created_at)?),
                    ("updated", rfc3339(environment.updated_at)?),
                    (
                        "domains",
                        format!("{} ({verified} with every record ACTIVE)", domains.len()),
                    ),
                ]);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
