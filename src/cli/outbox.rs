//! `trustmail outbox …`: the mail trustmail sends, read while `serve` runs.

use std::process::ExitCode;

use clap::Subcommand;
use time::OffsetDateTime;

use super::{BoxError, EXIT_REFUSED, rfc3339};
use crate::{
    mail::{MessageId, MessageStatus, StoredMessage},
    service::{Service, ServiceError},
};

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
        id: MessageId,
    },
}

/// `outbox list` / `outbox show`: reads only, so it works while `serve` runs.
pub(super) async fn outbox_command(
    command: OutboxCommand,
    service: &Service,
) -> Result<ExitCode, BoxError> {
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

fn print_outbox_message(m: &StoredMessage) -> Result<(), BoxError> {
    let optional_time = |t: Option<OffsetDateTime>| t.map(rfc3339).transpose();
    let next_attempt = match m.status {
        MessageStatus::Queued => Some(m.next_attempt_at),
        MessageStatus::Sent | MessageStatus::Failed => None,
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
