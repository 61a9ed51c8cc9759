//! The feedback loop's use cases: a recipient's return path (VERP) when its message is sent,
//! a relay's refusal of it, and what arrives at the feedback MX (feedback/mx.rs): bounces and
//! complaints at return paths, DMARC aggregate reports at a domain's report address.

use super::{Service, ServiceError, suppressions::suppression_activity};
use crate::{
    domain::{
        Activity, ActivityType, CheckedRecord, DomainId, EmailDomain, EnvironmentId, ResourceType,
        active_mail_from, now,
    },
    error_chain::ErrorChain,
    feedback::{
        DeliveryFeedback, FeedbackEvent, FeedbackKind, SuppressedAddress, Suppression,
        dmarc::{self, DmarcReport, DmarcSource},
        mx::Mailroom,
        report::{self, Bounce, Complaint, Report},
        return_path::{ReportAddress, ReturnPath},
    },
    mail::{MessageId, Recipient, StoredMessage},
    store::{FeedbackChange, FeedbackRecorded, StoreError},
};

/// The most a received report's attachments may expand to (a zip bomb stops here).
pub const MAX_EXPANDED_REPORT_BYTES: usize = 32 * 1024 * 1024;

/// The DMARC record trustmail suggests: reports to `report_address`, no policy yet (watch the
/// reports, then tighten `p=` to `quarantine` or `reject`).
pub fn suggested_dmarc_record(report_address: &str) -> String {
    format!("v=DMARC1; p=none; rua=mailto:{report_address}")
}

/// Whom an address at the feedback MX names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressee {
    /// A return path: one recipient of one message still in the outbox.
    Recipient {
        environment_id: EnvironmentId,
        message_id: MessageId,
        recipient: Recipient,
    },
    /// A domain's DMARC report address.
    Reports { domain: DomainId },
}

/// What became of a message received at the feedback MX. Either way it is taken (250): a
/// message that reports nothing usable is logged and dropped, never bounced (no backscatter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received {
    /// A feedback event was recorded.
    Feedback(FeedbackKind),
    /// A DMARC aggregate report was kept.
    DmarcReport,
    /// Nothing to record: why.
    Ignored(String),
}

impl Service {
    /// Whom `address` names, if trustmail issued it and what it names is still there;
    /// `None` means 550 at RCPT time.
    pub async fn feedback_addressee(
        &self,
        address: &str,
    ) -> Result<Option<Addressee>, ServiceError> {
        let Some((local, _)) = address.rsplit_once('@') else {
            return Ok(None);
        };
        let key = &self.inner.master_key;
        if let Ok(path) = ReturnPath::parse(local, key) {
            let found = self
                .store()
                .message_recipient(path.message, path.recipient)
                .await?;
            return Ok(
                found.map(|(environment_id, recipient)| Addressee::Recipient {
                    environment_id,
                    message_id: path.message,
                    recipient,
                }),
            );
        }
        if let Ok(reports) = ReportAddress::parse(local, key) {
            let domains = self.store().domains_by_id(&[reports.domain]).await?;
            return Ok((!domains.is_empty()).then_some(Addressee::Reports {
                domain: reports.domain,
            }));
        }
        Ok(None)
    }

    /// `raw`, a message received for `addressee`, read as the report it is and recorded.
    pub async fn receive_feedback(
        &self,
        addressee: &Addressee,
        raw: &[u8],
    ) -> Result<Received, ServiceError> {
        let report = match report::read(raw, MAX_EXPANDED_REPORT_BYTES) {
            Ok(report) => report,
            Err(not) => return Ok(Received::Ignored(not.to_string())),
        };
        match (addressee, report) {
            (
                Addressee::Recipient {
                    environment_id,
                    message_id,
                    recipient,
                },
                report,
            ) => {
                let at = (*environment_id, *message_id, recipient.position);
                let event = match &report {
                    Report::Delivery(dsn) => {
                        // A return path names one recipient: the worst the DSN says is its fate.
                        let worst = dsn
                            .recipients
                            .iter()
                            .filter(|r| r.bounce().is_some())
                            .max_by_key(|r| r.bounce() == Some(Bounce::Hard));
                        worst.and_then(|r| {
                            FeedbackEvent::from_dsn(at, r, dsn.reporting_mta.as_deref(), now())
                        })
                    }
                    Report::Complaint(complaint) => {
                        FeedbackEvent::from_complaint(at, complaint, now())
                    }
                    Report::DmarcAggregate(_) => {
                        return Ok(Received::Ignored(
                            "a DMARC report sent to a return path, not to a report address".into(),
                        ));
                    }
                };
                let Some(event) = event else {
                    return Ok(Received::Ignored(
                        "the report tells of no failure, delay or complaint".into(),
                    ));
                };
                self.record_feedback(&event, &recipient.address).await?;
                Ok(Received::Feedback(event.kind))
            }
            (Addressee::Reports { domain }, Report::DmarcAggregate(report)) => {
                self.keep_dmarc_report(*domain, *report).await?;
                Ok(Received::DmarcReport)
            }
            // Feedback loops send every complaint to the one address registered with them,
            // the domain's: the returned Message-ID names the message.
            (Addressee::Reports { domain }, Report::Complaint(complaint)) => {
                self.complaint_by_message_id(*domain, &complaint).await
            }
            (Addressee::Reports { .. }, Report::Delivery(_)) => Ok(Received::Ignored(
                "a DSN sent to a report address, not to a return path".into(),
            )),
        }
    }

    /// A complaint that reached `domain`'s report address, about the message its returned
    /// `Message-ID` names (trustmail writes `<message id@domain>`), from the recipient its
    /// `Original-Rcpt-To` names (or the only one).
    async fn complaint_by_message_id(
        &self,
        domain: DomainId,
        complaint: &Complaint,
    ) -> Result<Received, ServiceError> {
        let ignored = |why: &str| Ok(Received::Ignored(why.to_owned()));
        let Some(id) = complaint.original_message_id.as_deref().and_then(sent_id) else {
            return ignored("the complaint names no message trustmail sent");
        };
        let Some(message) = self.store().get_outbox(id).await? else {
            return ignored("the message the complaint names is not in the outbox");
        };
        let (Some(environment_id), Some(domain_id)) =
            (message.environment_id, message.dkim_domain_id)
        else {
            return ignored("the message the complaint names is not customer mail");
        };
        if domain_id != domain {
            return ignored("the message the complaint names is another domain's");
        }
        let recipients = self.store().recipients(id).await?;
        let named = complaint.original_rcpt_to.as_deref();
        let recipient = match named {
            Some(address) => recipients
                .iter()
                .find(|r| r.address.eq_ignore_ascii_case(address)),
            None if recipients.len() == 1 => recipients.first(),
            None => None,
        };
        let Some(recipient) = recipient else {
            return ignored("the complaint names none of the message's recipients");
        };
        let at = (environment_id, id, recipient.position);
        let Some(event) = FeedbackEvent::from_complaint(at, complaint, now()) else {
            return ignored("the report tells of no complaint");
        };
        self.record_feedback(&event, &recipient.address).await?;
        Ok(Received::Feedback(event.kind))
    }

    /// Records `event` about `address` with what it changes: the recipient's status, the
    /// suppression list (a hard bounce, a complaint) and the audit log.
    async fn record_feedback(
        &self,
        event: &FeedbackEvent,
        address: &str,
    ) -> Result<FeedbackRecorded, StoreError> {
        let suppression = event.suppresses().and_then(|reason| {
            Some(Suppression {
                environment_id: event.environment_id,
                address: SuppressedAddress::parse(address).ok()?,
                reason,
                message_id: Some(event.message_id),
                detail: event.detail(),
                created_at: event.created_at,
            })
        });
        let listed = suppression
            .as_ref()
            .map(|s| suppression_activity(s, ActivityType::SuppressionCreated, None));
        let action = match event.kind {
            FeedbackKind::Bounce => Some(ActivityType::EmailBounced),
            FeedbackKind::Complaint => Some(ActivityType::EmailComplained),
            FeedbackKind::Delay => None,
        };
        let activity = action.map(|action| {
            Activity::new(
                event.environment_id,
                action,
                None,
                ResourceType::Message,
                event.message_id,
                address,
            )
            .with_details(serde_json::json!({
                "recipient": address,
                "source": event.source.as_str(),
                "status": event.status,
                "diagnostic": event.diagnostic,
                "reportingMta": event.reporting_mta,
            }))
        });
        let recorded = self
            .store()
            .record_feedback(FeedbackChange {
                event,
                suppression: suppression.as_ref().zip(listed.as_ref()),
                activity: activity.as_ref(),
            })
            .await?;
        metrics::counter!(
            "feedback_events_total",
            "kind" => event.kind.as_str(),
            "source" => event.source.as_str(),
        )
        .increment(1);
        tracing::info!(
            message_id = %event.message_id,
            recipient = event.recipient,
            kind = event.kind.as_str(),
            source = event.source.as_str(),
            status = event.status.as_deref().unwrap_or(""),
            suppressed = recorded.suppressed,
            "feedback recorded"
        );
        Ok(recorded)
    }

    /// The feedback events of a message, oldest first.
    pub async fn feedback_events(
        &self,
        message: &StoredMessage,
    ) -> Result<Vec<FeedbackEvent>, ServiceError> {
        Ok(self.store().feedback_events(message.id).await?)
    }

    /// Where `domain`'s mail gets its return paths: its ACTIVE MAIL FROM domain, else the
    /// configured bounce domain; `None` when neither (its bounces do not come back).
    pub(super) fn return_path_domain(
        &self,
        domain: &EmailDomain,
        records: &[CheckedRecord],
    ) -> Option<String> {
        active_mail_from(domain, records.iter().map(|r| &r.record))
            .map(|name| name.to_string())
            .or_else(|| self.settings().bounce_domain.clone())
    }

    /// The address a domain's DMARC aggregate reports go to (`rua=mailto:…`).
    pub fn dmarc_report_address(&self, domain: DomainId) -> String {
        let local = ReportAddress { domain }.local_part(&self.inner.master_key);
        format!("{local}@{}", self.settings().feedback_host)
    }
}

/// One source IP of a domain's DMARC summary, and whether it is one trustmail sends from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SummarizedSource {
    pub source: DmarcSource,
    /// In some region's `egress_ips`.
    pub sent_by_trustmail: bool,
}

impl Service {
    /// Keeps a DMARC aggregate report received at `domain`'s report address; false when the
    /// reporter had sent it before (or the domain is gone meanwhile).
    async fn keep_dmarc_report(
        &self,
        domain: DomainId,
        report: mail_auth::report::Report,
    ) -> Result<bool, ServiceError> {
        let Some(found) = self.store().domains_by_id(&[domain]).await?.pop() else {
            return Ok(false);
        };
        let (kept, rows) = dmarc::from_report(&report, (found.environment_id, domain), now());
        if rows.len() < report.record.len() {
            tracing::warn!(
                records = report.record.len(),
                kept = rows.len(),
                "a DMARC report's records past the limit are counted, not kept"
            );
        }
        let new = self.store().keep_dmarc_report(&kept, &rows).await?;
        metrics::counter!("dmarc_reports_total", "new" => if new { "true" } else { "false" })
            .increment(1);
        tracing::info!(domain_id = %domain, reporter = %kept.org_name, report_id = %kept.report_id,
            messages = kept.messages, new, "DMARC aggregate report received");
        Ok(new)
    }

    /// One page of the domain's DMARC reports, the latest period first; with the count of all.
    pub async fn dmarc_reports(
        &self,
        domain: &EmailDomain,
        page: (u32, u32),
    ) -> Result<(Vec<DmarcReport>, i64), ServiceError> {
        Ok(self.store().list_dmarc_reports(domain.id, page).await?)
    }

    /// Per source IP over the domain's reports of periods ending after `since`: how much mail
    /// claimed the domain, how much passed aligned, and whether trustmail sent it.
    pub async fn dmarc_summary(
        &self,
        domain: &EmailDomain,
        since: time::OffsetDateTime,
    ) -> Result<Vec<SummarizedSource>, ServiceError> {
        let egress: Vec<std::net::IpAddr> = self
            .settings()
            .regions
            .iter()
            .flat_map(|region| region.egress_ips.iter().copied())
            .collect();
        let sources = self.store().dmarc_sources(domain.id, since).await?;
        Ok(sources
            .into_iter()
            .map(|source| SummarizedSource {
                sent_by_trustmail: source
                    .source_ip
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| egress.contains(&ip)),
                source,
            })
            .collect())
    }
}

/// The message id in a Message-ID trustmail wrote: `<32 hex digits@domain>`, brackets optional.
fn sent_id(message_id: &str) -> Option<MessageId> {
    let inner = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, _) = inner.split_once('@')?;
    let uuid = uuid::Uuid::try_parse(local).ok()?;
    (uuid.simple().to_string() == local.to_ascii_lowercase()).then(|| MessageId::from(uuid))
}

#[async_trait::async_trait]
impl DeliveryFeedback for Service {
    fn return_path(&self, path: ReturnPath, domain: &str) -> String {
        format!("{}@{domain}", path.local_part(&self.inner.master_key))
    }

    async fn refused_by_relay(
        &self,
        message: &StoredMessage,
        recipient: &Recipient,
        reply: &str,
    ) -> Result<(), StoreError> {
        let Some(environment_id) = message.environment_id else {
            return Ok(());
        };
        let at = (environment_id, message.id, recipient.position);
        let event = FeedbackEvent::refused_by_relay(at, reply, now());
        self.record_feedback(&event, &recipient.address)
            .await
            .inspect_err(|e| {
                tracing::warn!(error = %ErrorChain(e), "a relay's refusal could not be recorded")
            })?;
        Ok(())
    }
}

/// The feedback MX hands what it receives to the service.
#[async_trait::async_trait]
impl Mailroom for Service {
    type Addressee = Addressee;

    async fn addressee(&self, address: &str) -> Result<Option<Addressee>, String> {
        self.feedback_addressee(address)
            .await
            .map_err(|e| ErrorChain(&e).to_string())
    }

    async fn deliver(&self, to: &[Addressee], message: &[u8]) -> Result<(), String> {
        for addressee in to {
            match self.receive_feedback(addressee, message).await {
                Ok(Received::Ignored(why)) => {
                    metrics::counter!("feedback_messages_ignored_total").increment(1);
                    tracing::info!(%why, bytes = message.len(), "feedback MX: a message was read and dropped");
                }
                Ok(_) => {}
                // Recorded for the addressees before it: a retry may record those twice, which
                // changes nothing but the event count (statuses and the list are idempotent).
                Err(e) => return Err(ErrorChain(&e).to_string()),
            }
        }
        Ok(())
    }
}
