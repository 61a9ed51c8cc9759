//! `trustmail dkim …`: key rotation and the DKIM zones.

use std::process::ExitCode;

use clap::Subcommand;

use super::{BoxError, EXIT_REFUSED, find_domain, rfc3339};
use crate::{
    domain::EnvironmentId,
    service::{Service, ServiceError},
};

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
    /// Print a region's DKIM zone (SOA, NS, the A/AAAA of in-zone NS names, one TXT per key) as
    /// a BIND zone file, for hosting it on other name servers instead of `[dkim_dns]`.
    ZoneFile {
        /// A configured region's name, e.g. us-east-1.
        #[arg(long, value_name = "NAME")]
        region: String,
    },
}

pub(super) async fn dkim_command(
    command: DkimCommand,
    service: &Service,
) -> Result<ExitCode, BoxError> {
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
            Err(ServiceError::InvalidRequest(why)) => {
                eprintln!("trustmail: {why}");
                return Ok(ExitCode::from(EXIT_REFUSED));
            }
            Err(e) => return Err(e.into()),
        },
    }
    Ok(ExitCode::SUCCESS)
}
