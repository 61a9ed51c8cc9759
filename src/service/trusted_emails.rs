//! Trusted email addresses: created in a verified domain, ACTIVE at once when the environment
//! record is in DNS, otherwise activated with a code mailed through the outbox.

use super::{
    Actor, Created, Service, ServiceError,
    auth::{hash_secret, verify_secret},
    found, invalid,
};
use crate::{
    domain::{
        Activity, ActivityType, CODE_LIFETIME, EmailAddress, EmailDomain, MAX_CODE_ATTEMPTS,
        PendingCode, RESEND_INTERVAL, RecordKind, RecordStatus, ResourceType, TrustedEmail,
        TrustedEmailId, TrustedEmailStatus, new_verification_code, normalize_code, now,
        ownership_verified,
    },
    mail::{ComposedMessage, MailRoute, compose, verification_code_mail},
    store::{CodeDelivery, CodeMailLimits, CreateTrustedEmailError, Throttle},
};

const ADDRESS: &str = "emailAddress";
const CODE: &str = "verificationCode";

fn activity(email: &TrustedEmail, action: ActivityType, actor: &Actor) -> Activity {
    Activity::new(
        email.environment_id,
        action,
        actor.client_id,
        ResourceType::TrustedEmail,
        email.id,
        email.address.to_string(),
    )
}

impl Service {
    /// Creates the address; an address that already exists is answered as it is, and nothing
    /// is sent again.
    pub async fn create_trusted_email(
        &self,
        actor: &Actor,
        domain: &EmailDomain,
        raw: &str,
    ) -> Result<Created<TrustedEmail>, ServiceError> {
        let settings = self.settings();
        let address = EmailAddress::parse(raw, &domain.name, &settings.public_suffixes)
            .map_err(|e| invalid(ADDRESS, e.to_string()))?;
        if let Some(existing) = self
            .store()
            .list::<TrustedEmail>(domain.id)
            .await?
            .into_iter()
            .find(|e| e.address.key() == address.key())
        {
            return Ok(Created::Existing(existing));
        }
        let records = self.fresh_ownership(domain, actor).await?;
        if !ownership_verified(records.iter().map(|r| &r.record)) {
            return Err(invalid(
                "trustedEmail",
                "The domain of the given email address is not verified.",
            ));
        }
        let environment_active = records.iter().any(|r| {
            r.record.kind == RecordKind::Environment && r.record.status == RecordStatus::Active
        });
        let created_at = now();
        let email = TrustedEmail {
            id: TrustedEmailId::new(),
            environment_id: domain.environment_id,
            domain_id: domain.id,
            address,
            status: if environment_active {
                TrustedEmailStatus::Active
            } else {
                TrustedEmailStatus::VerificationRequired
            },
            created_at,
            updated_at: created_at,
        };
        let mut activities = vec![activity(&email, ActivityType::TrustedEmailCreated, actor)];
        let delivery = if environment_active {
            activities.push(activity(&email, ActivityType::TrustedEmailActive, actor));
            None
        } else {
            activities.push(activity(&email, ActivityType::TrustedEmailSendCode, actor));
            Some(self.new_code(&email).await?)
        };
        let maximum = settings.limits.trusted_emails_per_domain;
        let result = self
            .store()
            .create_trusted_email(
                &email,
                delivery
                    .as_ref()
                    .map(|(code, mail)| CodeDelivery { code, mail }),
                self.code_mail_limits(),
                maximum,
                &activities,
            )
            .await;
        match result {
            Ok(()) => Ok(Created::New(email)),
            Err(CreateTrustedEmailError::Exists(existing)) => Ok(Created::Existing(*existing)),
            Err(CreateTrustedEmailError::DomainNotFound) => Err(ServiceError::NotFound),
            Err(CreateTrustedEmailError::LimitReached { maximum }) => {
                Err(ServiceError::SizeLimit {
                    target: ADDRESS.into(),
                    maximum,
                    message: format!(
                        "A trusted email domain can have at most {maximum} trusted email addresses."
                    ),
                })
            }
            Err(CreateTrustedEmailError::CodeMailTooSoon { wait_ms }) => {
                Err(ServiceError::retry_after_ms(wait_ms))
            }
            Err(CreateTrustedEmailError::Store(e)) => Err(e.into()),
        }
    }

    /// One code mail a minute per address, `limits.code_mails_per_hour` per environment.
    fn code_mail_limits(&self) -> CodeMailLimits {
        CodeMailLimits {
            per_address_interval_ms: i64::try_from(RESEND_INTERVAL.whole_milliseconds())
                .unwrap_or(60_000),
            per_environment_per_hour: self.settings().limits.code_mails_per_hour,
        }
    }

    /// A fresh code, hashed, and its mail.
    async fn new_code(
        &self,
        email: &TrustedEmail,
    ) -> Result<(PendingCode, ComposedMessage), ServiceError> {
        let code = new_verification_code();
        let sent_at = now();
        let mail = verification_code_mail(
            &self.settings().mail_sender,
            &email.address.to_string(),
            &code,
        )
        .and_then(|message| compose(&message, Some(email.environment_id), MailRoute::System))
        .map_err(|e| invalid(ADDRESS, e.to_string()))?;
        Ok((
            PendingCode {
                hash: hash_secret(code).await?,
                sent_at,
                expires_at: sent_at + CODE_LIFETIME,
                failed_attempts: 0,
            },
            mail,
        ))
    }

    pub async fn delete_trusted_email(
        &self,
        actor: &Actor,
        email: &TrustedEmail,
    ) -> Result<(), ServiceError> {
        let deleted = self
            .store()
            .delete_trusted_email(
                email,
                &activity(email, ActivityType::TrustedEmailDeleted, actor),
            )
            .await?;
        found(deleted)
    }

    /// Sends a new code (at most once a minute); the old one stops working.
    pub async fn resend_code(
        &self,
        actor: &Actor,
        email: &TrustedEmail,
    ) -> Result<TrustedEmail, ServiceError> {
        if email.status == TrustedEmailStatus::Active {
            return Err(invalid(
                ADDRESS,
                "The address is already ACTIVE; there is no code to send.",
            ));
        }
        let (code, mail) = self.new_code(email).await?;
        let sent = self
            .store()
            .replace_code(
                email,
                CodeDelivery {
                    code: &code,
                    mail: &mail,
                },
                self.code_mail_limits(),
                &activity(email, ActivityType::TrustedEmailSendCode, actor),
            )
            .await?;
        match sent {
            Throttle::Done => Ok(email.clone()),
            Throttle::TooSoon { wait_ms } => Err(ServiceError::retry_after_ms(wait_ms)),
        }
    }

    /// Activates the address with its emailed code. Wrong, expired and locked codes are all
    /// `INVALID_VALUE` on `verificationCode`; five wrong tries lock the code until a resend.
    pub async fn activate_trusted_email(
        &self,
        actor: &Actor,
        email: &TrustedEmail,
        raw_code: &str,
    ) -> Result<TrustedEmail, ServiceError> {
        // Re-read: the code's hash and tries are never part of a resolved address.
        let (mut email, pending) = self
            .store()
            .get_trusted_email(email.domain_id, email.id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        if email.status == TrustedEmailStatus::Active {
            return Ok(email);
        }
        let wrong = || {
            invalid(
                CODE,
                "The verification code is wrong, expired or locked; request a new one.",
            )
        };
        let Some(pending) = pending else {
            return Err(wrong());
        };
        if pending.expires_at <= now() {
            return Err(invalid(
                CODE,
                "The verification code has expired; request a new one.",
            ));
        }
        // Spend a try before comparing, so parallel guesses cannot exceed the limit.
        if !self
            .store()
            .spend_code_attempt(email.id, MAX_CODE_ATTEMPTS)
            .await?
        {
            return Err(invalid(CODE, "Too many wrong codes; request a new one."));
        }
        let matches = match normalize_code(raw_code) {
            Some(code) => verify_secret(pending.hash, code).await,
            None => false,
        };
        if !matches {
            tracing::info!(trusted_email = %email.id, "wrong verification code");
            return Err(wrong());
        }
        let activated_at = now();
        let activated = self
            .store()
            .activate_trusted_email(
                email.id,
                activated_at,
                &activity(&email, ActivityType::TrustedEmailActive, actor),
            )
            .await?;
        if !activated {
            // A parallel request with the right code won, or the address was deleted: answer
            // with what is stored now.
            return self
                .store()
                .get_trusted_email(email.domain_id, email.id)
                .await?
                .map(|(email, _)| email)
                .ok_or(ServiceError::NotFound);
        }
        email.status = TrustedEmailStatus::Active;
        email.updated_at = activated_at;
        Ok(email)
    }
}
