//! The store's contract, on SQLite always and on PostgreSQL when `TEST_POSTGRES_URL` is set.

use trustmail::{
    domain::{
        Activity, ActivityType, CheckedRecord, DnsRecord, DomainId, DomainName, EmailDomain,
        Environment, Geography, PublicSuffixes, ReasonCode, RecordKind, RecordStatus, ResourceType,
        now,
    },
    service::Actor,
    store::{CheckLease, CheckResult, CreateDomainError, RecordActivity, Store},
};

use crate::support::{Db, TestApp, backends};

/// An environment made through the service and a domain with its records stored directly (no
/// DKIM keys: as a domain made before keys existed).
pub struct Stored {
    pub app: TestApp,
    pub actor: Actor,
    pub env: Environment,
    pub domain: EmailDomain,
    pub records: Vec<DnsRecord>,
}

impl Stored {
    pub async fn new(db: Db) -> Self {
        let app = TestApp::spawn_on(db, |_| {}).await;
        let actor = Actor {
            client_id: app.admin.client_id,
            environment_id: app.admin.environment_id,
            role: trustmail::domain::Role::OrganizationAdmin,
        };
        let env = app
            .service
            .create_environment(&actor, "Store", Geography::Eu)
            .await
            .unwrap();
        let name = DomainName::parse("x.shopco.test", &PublicSuffixes::new(["test"])).unwrap();
        let domain = EmailDomain {
            id: DomainId::new(),
            environment_id: env.id,
            name: name.clone(),
            written_name: "X.ShopCo.test".into(),
            mail_from: None,
            created_at: now(),
            updated_at: now(),
        };
        let settings = app.service.settings();
        let records = trustmail::domain::build_domain_records(
            &name,
            &env.email_token,
            env.region,
            &settings.regions,
            &settings.records,
        );
        app.store()
            .create_domain(
                &domain,
                &records,
                &[],
                now(),
                2,
                &activity_for(&domain, actor.client_id),
            )
            .await
            .unwrap();
        Self {
            app,
            actor,
            env,
            domain,
            records,
        }
    }

    fn store(&self) -> &Store {
        self.app.store()
    }
}

#[tokio::test]
async fn an_environment_reads_back_as_created() {
    for db in backends("an_environment_reads_back_as_created").await {
        let s = Stored::new(db.clone()).await;
        let read = s.store().get_environment(s.env.id).await.unwrap();
        assert_eq!(read.as_ref(), Some(&s.env), "{db:?}");
    }
}

#[tokio::test]
async fn a_domain_and_its_records_read_back_as_stored() {
    for db in backends("a_domain_and_its_records_read_back_as_stored").await {
        let s = Stored::new(db.clone()).await;
        assert_eq!(
            s.store()
                .get::<EmailDomain>(s.env.id, s.domain.id)
                .await
                .unwrap()
                .as_ref(),
            Some(&s.domain),
            "{db:?}"
        );
        let mut stored: Vec<_> = s
            .store()
            .checked_records(s.domain.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        let mut expected = s.records.clone();
        let key = |r: &DnsRecord| (r.kind.as_str(), r.region.clone(), r.position);
        stored.sort_by_key(key);
        expected.sort_by_key(key);
        assert_eq!(stored, expected, "{db:?}");
    }
}

#[tokio::test]
async fn the_same_name_again_is_a_duplicate_whatever_the_id() {
    for db in backends("the_same_name_again_is_a_duplicate_whatever_the_id").await {
        let s = Stored::new(db.clone()).await;
        let twin = EmailDomain {
            id: DomainId::new(),
            ..s.domain.clone()
        };
        let err = s
            .store()
            .create_domain(
                &twin,
                &[],
                &[],
                now(),
                2,
                &activity_for(&twin, s.actor.client_id),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, CreateDomainError::Duplicate),
            "{db:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_domain_in_an_unknown_environment_is_refused() {
    for db in backends("a_domain_in_an_unknown_environment_is_refused").await {
        let s = Stored::new(db.clone()).await;
        let stray = EmailDomain {
            id: DomainId::new(),
            environment_id: trustmail::domain::EnvironmentId::new(),
            ..s.domain.clone()
        };
        let err = s
            .store()
            .create_domain(
                &stray,
                &[],
                &[],
                now(),
                2,
                &activity_for(&stray, s.actor.client_id),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, CreateDomainError::EnvironmentNotFound),
            "{db:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn deleting_an_environment_removes_its_domains_and_their_records() {
    for db in backends("deleting_an_environment_removes_its_domains_and_their_records").await {
        let s = Stored::new(db.clone()).await;
        let activity = Activity::new(
            s.actor.environment_id,
            ActivityType::EnvironmentDeleted,
            s.actor.client_id,
            ResourceType::Environment,
            s.env.id,
            "Store",
        );
        assert!(
            s.store()
                .delete_environment(s.env.id, &activity)
                .await
                .unwrap()
        );
        assert!(
            s.store()
                .get::<EmailDomain>(s.env.id, s.domain.id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            s.store()
                .checked_records(s.domain.id)
                .await
                .unwrap()
                .is_empty(),
            "{db:?}"
        );
    }
}

fn activity_for(domain: &EmailDomain, actor: trustmail::domain::ClientId) -> Activity {
    Activity::new(
        domain.environment_id,
        ActivityType::EmailDomainCreated,
        actor,
        ResourceType::EmailDomain,
        domain.id,
        domain.name.as_str(),
    )
}

/// The result of a check that found every record of `domain` ACTIVE, with one status activity
/// per record kind, under `token`.
async fn all_active(stored: &Stored, token: &str) -> CheckResult {
    let at = now();
    let records: Vec<CheckedRecord> = stored
        .store()
        .checked_records(stored.domain.id)
        .await
        .unwrap()
        .into_iter()
        .map(|mut r| {
            r.record.status = RecordStatus::Active;
            r.reason = ReasonCode::Ok;
            r.last_checked_at = Some(at);
            r.next_check_at = at + time::Duration::DAY;
            r
        })
        .collect();
    let activities = records
        .iter()
        .map(|r| RecordActivity {
            kind: r.record.kind,
            region: r.record.region.clone(),
            activity: Activity::new(
                stored.env.id,
                ActivityType::EmailDomainStatusUpdated,
                None,
                ResourceType::EmailDomain,
                stored.domain.id,
                stored.domain.name.as_str(),
            ),
        })
        .collect();
    CheckResult {
        domain: stored.domain.id,
        token: token.to_owned(),
        records,
        activities,
    }
}

impl Stored {
    async fn lease(&self, at: time::OffsetDateTime) -> CheckLease {
        self.store()
            .lease_domain_checks(
                &[self.domain.id],
                "replica",
                at,
                at + time::Duration::minutes(1),
            )
            .await
            .unwrap()
    }

    /// Statuses and reasons by record kind, as stored.
    async fn statuses(&self) -> Vec<(RecordKind, String, RecordStatus, ReasonCode)> {
        let mut records: Vec<_> = self
            .store()
            .checked_records(self.domain.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.record.kind, r.record.key, r.record.status, r.reason))
            .collect();
        records.sort_by_key(|r| (r.0.as_str(), r.1.clone()));
        records
    }

    async fn status_updates(&self) -> usize {
        let (activities, _) = self
            .store()
            .list_activities(self.env.id, 100, 0)
            .await
            .unwrap();
        activities
            .iter()
            .filter(|a| a.action == ActivityType::EmailDomainStatusUpdated)
            .count()
    }
}

#[tokio::test]
async fn one_process_at_a_time_holds_a_domains_check_lease() {
    for db in backends("one_process_at_a_time_holds_a_domains_check_lease").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.environment("Lease").await;
        let domain: DomainId = app.domain(&env, "l.shopco.test").await.parse().unwrap();
        let store = app.store();
        let t0 = now();
        let until = t0 + time::Duration::minutes(1);
        let lease = |owner: &'static str, at, until| async move {
            store
                .lease_domain_checks(&[domain], owner, at, until)
                .await
                .unwrap()
        };
        let release = |token: String| async move {
            let release = CheckResult {
                domain,
                token,
                records: vec![],
                activities: vec![],
            };
            store.save_checks(&[release], now()).await.unwrap()
        };
        let a = lease("replica-a", t0, until).await;
        assert_eq!(a.domains, [domain], "{db:?}");
        let b = lease("replica-b", t0, until).await;
        assert!(b.domains.is_empty(), "{db:?}");
        // Only the holder's token releases it; an expired lease can be taken over.
        assert_eq!(release(b.token).await.discarded, 1);
        assert!(lease("replica-b", t0, until).await.domains.is_empty());
        let later = until + time::Duration::seconds(1);
        let b = lease("replica-b", later, later + time::Duration::minutes(1)).await;
        assert_eq!(b.domains, [domain]);
        assert_eq!(release(b.token).await.saved, 1);
        assert_eq!(lease("replica-a", later, later).await.domains, [domain]);
    }
}

#[tokio::test]
async fn a_late_result_after_its_lease_ran_out_is_discarded() {
    for db in backends("a_late_result_after_its_lease_ran_out_is_discarded").await {
        let stored = Stored::new(db.clone()).await;
        let before = stored.statuses().await;
        // Leased a minute and a half ago: the lease ran out half a minute ago.
        let first = stored.lease(now() - time::Duration::seconds(90)).await;
        assert_eq!(first.domains, [stored.domain.id]);
        let late = all_active(&stored, &first.token).await;
        let saved = stored
            .store()
            .save_checks(std::slice::from_ref(&late), now())
            .await
            .unwrap();
        assert_eq!((saved.saved, saved.discarded), (0, 1), "{db:?}");
        assert_eq!(stored.statuses().await, before, "{db:?}");
        assert_eq!(stored.status_updates().await, 0);
        // Another check takes the domain over; the late result still writes nothing, the new
        // holder's does.
        let second = stored.lease(now()).await;
        assert_eq!(second.domains, [stored.domain.id]);
        let saved = stored.store().save_checks(&[late], now()).await.unwrap();
        assert_eq!(saved.discarded, 1, "{db:?}");
        assert_eq!(stored.statuses().await, before, "{db:?}");
        let current = all_active(&stored, &second.token).await;
        let saved = stored.store().save_checks(&[current], now()).await.unwrap();
        assert_eq!((saved.saved, saved.discarded), (1, 0), "{db:?}");
        assert!(
            stored
                .statuses()
                .await
                .iter()
                .all(|r| r.2 == RecordStatus::Active),
            "{db:?}"
        );
        assert_eq!(stored.status_updates().await, before.len());
    }
}

#[tokio::test]
async fn a_mail_from_change_during_a_check_keeps_the_new_spf_row_unverified() {
    for db in backends("a_mail_from_change_during_a_check_keeps_the_new_spf_row_unverified").await {
        let stored = Stored::new(db.clone()).await;
        let lease = stored.lease(now()).await;
        // The check read the records (SPF at the domain itself) and is looking them up...
        let result = all_active(&stored, &lease.token).await;
        // ...when a MAIL FROM domain is set: the SPF record moves to it, and an MX is added.
        let settings = stored.app.service.settings();
        let mail_from =
            DomainName::parse("mail.x.shopco.test", &PublicSuffixes::new(["test"])).unwrap();
        let (mx, spf) = trustmail::domain::mail_from_records(
            &mail_from,
            stored.env.region,
            &settings.regions,
            &settings.records,
        )
        .unwrap();
        let at = now();
        assert!(
            stored
                .store()
                .set_mail_from(stored.domain.id, Some(&mail_from), &[mx, spf], at, at)
                .await
                .unwrap()
        );
        let saved = stored
            .store()
            .save_checks(std::slice::from_ref(&result), now())
            .await
            .unwrap();
        assert_eq!((saved.saved, saved.stale_records), (1, 1), "{db:?}");
        for (kind, key, status, reason) in stored.statuses().await {
            if matches!(kind, RecordKind::Spf | RecordKind::MailFrom) {
                assert_eq!(key, "mail.x.shopco.test");
                assert_eq!(
                    (status, reason),
                    (RecordStatus::VerificationRequired, ReasonCode::NotChecked),
                    "{kind:?} {db:?}"
                );
            } else {
                assert_eq!(status, RecordStatus::Active, "{kind:?} {db:?}");
            }
        }
        // No activity claims the new SPF record changed.
        assert_eq!(
            stored.status_updates().await,
            result.records.len() - 1,
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn a_check_of_a_domain_deleted_meanwhile_writes_nothing() {
    for db in backends("a_check_of_a_domain_deleted_meanwhile_writes_nothing").await {
        let stored = Stored::new(db.clone()).await;
        let lease = stored.lease(now()).await;
        let result = all_active(&stored, &lease.token).await;
        let deleted = stored
            .app
            .service
            .delete_domain(&stored.actor, &stored.domain)
            .await;
        assert!(deleted.is_ok(), "{deleted:?}");
        let saved = stored.store().save_checks(&[result], now()).await.unwrap();
        assert_eq!((saved.saved, saved.discarded), (0, 1), "{db:?}");
        assert_eq!(stored.status_updates().await, 0, "{db:?}");
    }
}

/// A customer message of `environment`, composed as the service would (unsigned).
fn customer_mail(
    environment: trustmail::domain::EnvironmentId,
) -> trustmail::mail::ComposedMessage {
    let mut mail = crate::outbox::code_mail(Some(environment), "ann@shop.test", "aaaa1111");
    mail.route = trustmail::mail::MailRoute::Region("us-east-1".into());
    mail
}

#[tokio::test]
async fn concurrent_repeats_of_one_idempotency_key_queue_one_message() {
    use trustmail::store::{Idempotency, QueueOutcome};
    for db in backends("concurrent_repeats_of_one_idempotency_key_queue_one_message").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.admin.environment_id;
        let attempts = (0..8).map(|_| {
            let store = app.store().clone();
            let mail = customer_mail(env);
            tokio::spawn(async move {
                let key = Idempotency {
                    key: "order-1",
                    request_hash: "h1",
                };
                let outcome = store
                    .queue_message(&mail, &[], env, Some(key), 600, now())
                    .await
                    .unwrap();
                (mail.id, outcome)
            })
        });
        let mut queued = Vec::new();
        let mut taken = 0;
        for attempt in futures_util::future::join_all(attempts).await {
            match attempt.unwrap() {
                (id, QueueOutcome::Queued) => queued.push(id),
                (_, QueueOutcome::KeyTaken) => taken += 1,
                other => panic!("{other:?} on {db:?}"),
            }
        }
        assert_eq!((queued.len(), taken), (1, 7), "{db:?}");
        let named = app.store().idempotent_message(env, "order-1", now()).await;
        assert_eq!(named.unwrap(), Some(("h1".to_owned(), queued[0])), "{db:?}");
        let other_body = Idempotency {
            key: "order-1",
            request_hash: "h2",
        };
        let outcome = app
            .store()
            .queue_message(&customer_mail(env), &[], env, Some(other_body), 600, now())
            .await
            .unwrap();
        assert_eq!(outcome, QueueOutcome::KeyTaken, "{db:?}");
        assert_eq!(app.store().list_outbox(100).await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_key_older_than_its_window_names_a_new_request() {
    use trustmail::store::{IDEMPOTENCY_WINDOW_MS, Idempotency, QueueOutcome};
    for db in backends("a_key_older_than_its_window_names_a_new_request").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.admin.environment_id;
        let key = |request_hash| Idempotency {
            key: "order-2",
            request_hash,
        };
        let then = now();
        let first = customer_mail(env);
        let outcome = app
            .store()
            .queue_message(&first, &[], env, Some(key("h1")), 600, then);
        assert_eq!(outcome.await.unwrap(), QueueOutcome::Queued, "{db:?}");
        // The last moment the key still names the first request, then the first it does not.
        let window = time::Duration::milliseconds(IDEMPOTENCY_WINDOW_MS);
        let last = then + window - time::Duration::milliseconds(1);
        let outcome = app
            .store()
            .queue_message(&customer_mail(env), &[], env, Some(key("h2")), 600, last)
            .await
            .unwrap();
        assert_eq!(outcome, QueueOutcome::KeyTaken, "{db:?}");
        let named = app.store().idempotent_message(env, "order-2", last).await;
        assert_eq!(named.unwrap(), Some(("h1".to_owned(), first.id)), "{db:?}");
        let later = then + window;
        assert_eq!(
            app.store()
                .idempotent_message(env, "order-2", later)
                .await
                .unwrap(),
            None,
            "{db:?}"
        );
        let second = customer_mail(env);
        let outcome = app
            .store()
            .queue_message(&second, &[], env, Some(key("h2")), 600, later);
        assert_eq!(outcome.await.unwrap(), QueueOutcome::Queued, "{db:?}");
        let named = app.store().idempotent_message(env, "order-2", later).await;
        assert_eq!(named.unwrap(), Some(("h2".to_owned(), second.id)), "{db:?}");
    }
}

#[tokio::test]
async fn the_messages_per_minute_hold_under_concurrent_sends() {
    use trustmail::store::QueueOutcome;
    for db in backends("the_messages_per_minute_hold_under_concurrent_sends").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.admin.environment_id;
        let sends = (0..8).map(|_| {
            let store = app.store().clone();
            tokio::spawn(async move {
                store
                    .queue_message(&customer_mail(env), &[], env, None, 3, now())
                    .await
                    .unwrap()
            })
        });
        let outcomes: Vec<QueueOutcome> = futures_util::future::join_all(sends)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let queued = outcomes
            .iter()
            .filter(|o| **o == QueueOutcome::Queued)
            .count();
        assert_eq!(queued, 3, "{outcomes:?} on {db:?}");
        assert!(
            outcomes.iter().all(|o| matches!(
                o,
                QueueOutcome::Queued
                    | QueueOutcome::RateLimited {
                        wait_ms: 1..=120_000
                    }
            )),
            "{outcomes:?}"
        );
    }
}

/// The count is the environment's rate window, not its outbox rows: retention (or an operator)
/// deleting the rows of the last minute lets no more through.
#[tokio::test]
async fn the_messages_per_minute_limit_holds_after_outbox_rows_are_deleted() {
    use secrecy::ExposeSecret;
    use trustmail::store::QueueOutcome;
    for db in backends("the_messages_per_minute_limit_holds_after_outbox_rows_are_deleted").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.admin.environment_id;
        let queue = || async {
            app.store()
                .queue_message(&customer_mail(env), &[], env, None, 2, now())
                .await
                .unwrap()
        };
        assert_eq!(queue().await, QueueOutcome::Queued, "{db:?}");
        assert_eq!(queue().await, QueueOutcome::Queued, "{db:?}");
        let pool = sqlx::AnyPool::connect(app.config.database_url.expose_secret())
            .await
            .unwrap();
        let deleted = sqlx::query("DELETE FROM outbox WHERE environment_id = $1")
            .bind(env.to_string())
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        assert_eq!(deleted, 2, "{db:?}");
        assert!(
            matches!(queue().await, QueueOutcome::RateLimited { .. }),
            "{db:?}"
        );
    }
}

/// The feedback loop's writes and sums, on each backend: an event moves its recipient unless a
/// stronger status holds, suppresses once and is told once; a DMARC report is kept once and
/// summed per source IP (PostgreSQL sums BIGINTs as NUMERIC: the store casts them back).
#[tokio::test]
async fn feedback_and_dmarc_reports_are_recorded_and_summed_on_every_backend() {
    use trustmail::{
        domain::{Activity, ActivityType, ResourceType},
        feedback::{
            FeedbackEvent, FeedbackKind, SuppressedAddress, Suppression, SuppressionReason,
            dmarc::{DmarcReport, DmarcReportId, DmarcRow},
        },
        mail::{Recipient, RecipientStatus},
        store::FeedbackChange,
    };
    for db in backends("feedback_and_dmarc_reports_are_recorded_and_summed_on_every_backend").await
    {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.admin.environment_id;
        let store = app.store().clone();
        let mail = customer_mail(env);
        let recipients: Vec<Recipient> = ["ann@shop.test", "bob@shop.test"]
            .iter()
            .enumerate()
            .map(|(position, address)| Recipient {
                position: position as u16,
                address: (*address).to_owned(),
                status: None,
                updated_at: now(),
            })
            .collect();
        let queued = store
            .queue_message(&mail, &recipients, env, None, 600, now())
            .await
            .unwrap();
        assert!(
            matches!(queued, trustmail::store::QueueOutcome::Queued),
            "{db:?}"
        );

        let bounce = FeedbackEvent::refused_by_relay((env, mail.id, 0), "550 5.1.1 gone", now());
        let entry = Suppression {
            environment_id: env,
            address: SuppressedAddress::parse("ann@shop.test").unwrap(),
            reason: SuppressionReason::Bounce,
            message_id: Some(mail.id),
            detail: bounce.detail(),
            created_at: now(),
        };
        let listed = Activity::new(
            env,
            ActivityType::SuppressionCreated,
            None,
            ResourceType::Suppression,
            "ann@shop.test",
            "ann@shop.test",
        );
        let told = Activity::new(
            env,
            ActivityType::EmailBounced,
            None,
            ResourceType::Message,
            mail.id,
            "ann@shop.test",
        );
        let change = |event| FeedbackChange {
            event,
            suppression: Some((&entry, &listed)),
            activity: Some(&told),
        };
        let first = store.record_feedback(change(&bounce)).await.unwrap();
        assert!(first.status_changed && first.suppressed, "{db:?}");
        let again = FeedbackEvent {
            id: trustmail::feedback::FeedbackEventId::new(),
            ..bounce.clone()
        };
        let second = store.record_feedback(change(&again)).await.unwrap();
        assert!(!second.status_changed && !second.suppressed, "{db:?}");
        // A later delay does not undo the bounce.
        let delay = FeedbackEvent {
            id: trustmail::feedback::FeedbackEventId::new(),
            kind: FeedbackKind::Delay,
            ..bounce.clone()
        };
        let third = store
            .record_feedback(FeedbackChange {
                event: &delay,
                suppression: None,
                activity: None,
            })
            .await
            .unwrap();
        assert!(!third.status_changed, "{db:?}");
        let statuses: Vec<Option<RecipientStatus>> = store
            .recipients(mail.id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, [Some(RecipientStatus::Bounced), None], "{db:?}");
        assert_eq!(
            store.feedback_events(mail.id).await.unwrap().len(),
            3,
            "{db:?}"
        );
        let (found_env, bob) = store.message_recipient(mail.id, 1).await.unwrap().unwrap();
        assert_eq!(
            (found_env, bob.address.as_str()),
            (env, "bob@shop.test"),
            "{db:?}"
        );
        assert!(store.message_recipient(mail.id, 2).await.unwrap().is_none());

        let domain: trustmail::domain::DomainId = app
            .domain(&env.to_string(), "a.shop.test")
            .await
            .parse()
            .unwrap();
        let report = |report_id: &str| DmarcReport {
            id: DmarcReportId::new(),
            domain_id: domain,
            environment_id: env,
            org_name: "receiver.test".into(),
            email: "dmarc@receiver.test".into(),
            report_id: report_id.into(),
            begin: now() - time::Duration::days(1),
            end: now(),
            policy_domain: "a.shop.test".into(),
            policy: "none".into(),
            messages: 10,
            received_at: now(),
        };
        let rows = [
            ("192.0.2.10", 7, true, false),
            ("198.51.100.7", 3, false, false),
        ]
        .map(|(ip, messages, dkim, spf)| DmarcRow {
            source_ip: ip.into(),
            messages,
            header_from: "a.shop.test".into(),
            dkim_aligned: dkim,
            spf_aligned: spf,
            disposition: "none".into(),
        });
        assert!(
            store
                .keep_dmarc_report(&report("r-1"), &rows)
                .await
                .unwrap()
        );
        assert!(
            !store
                .keep_dmarc_report(&report("r-1"), &rows)
                .await
                .unwrap()
        );
        assert!(
            store
                .keep_dmarc_report(&report("r-2"), &rows)
                .await
                .unwrap()
        );
        let (kept, count) = store.list_dmarc_reports(domain, (10, 0)).await.unwrap();
        assert_eq!((kept.len(), count), (2, 2), "{db:?}");
        let sources = store
            .dmarc_sources(domain, now() - time::Duration::days(30))
            .await
            .unwrap();
        let summed: Vec<(&str, i64, i64, i64)> = sources
            .iter()
            .map(|s| {
                (
                    s.source_ip.as_str(),
                    s.messages,
                    s.dkim_aligned,
                    s.dmarc_pass,
                )
            })
            .collect();
        assert_eq!(
            summed,
            [("192.0.2.10", 14, 14, 14), ("198.51.100.7", 6, 0, 0)],
            "{db:?}"
        );
        assert_eq!(sources[0].reporters, 1, "{db:?}");
    }
}
