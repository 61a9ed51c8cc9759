//! The outbox: queueing, leasing across deliverers, retries and SMTP delivery.

use std::{collections::HashSet, future::Future, time::Duration};

use time::OffsetDateTime;
use trustmail::{
    domain::{Activity, ActivityType, DomainId, EnvironmentId, Geography, ResourceType, now},
    mail::{
        ComposedMessage, MailRoute, MessageId, MessageStatus, StoredMessage, compose,
        verification_code_mail,
    },
    service::Actor,
    store::{MAX_DELIVERY_ATTEMPTS, PER_ENVIRONMENT_PER_CLAIM, Store, retry_delay},
};

use crate::support::{Db, SmtpSink, TestApp, backends};

const SENDER: &str = "no-reply@trustmail.example";
const LEASE: Duration = Duration::from_secs(300);

pub fn code_mail(environment: Option<EnvironmentId>, to: &str, code: &str) -> ComposedMessage {
    let mail = verification_code_mail(SENDER, to, code).unwrap();
    compose(&mail, environment, MailRoute::System).unwrap()
}

/// Up to 10 messages of `route` due at `at`, leased to `owner`.
async fn claim(
    store: &Store,
    route: &MailRoute,
    owner: &str,
    at: OffsetDateTime,
) -> Vec<StoredMessage> {
    store
        .claim_due_mail(route, owner, at, LEASE, 10)
        .await
        .unwrap()
}

/// Polls `check` until it gives a value (the delivery job runs on its own clock).
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    for _ in 0..300 {
        if let Some(value) = check().await {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Two code mails queued in `app`'s outbox, the second for the Administrators environment:
/// (first, second).
pub async fn queue_two(app: &TestApp) -> (ComposedMessage, ComposedMessage) {
    let first = code_mail(None, "first@shop.test", "aaaa1111");
    let second = code_mail(Some(app.admin.environment_id), "Ann@shop.test", "k3x9a0bz");
    app.store().enqueue_mail(&first).await.unwrap();
    app.store().enqueue_mail(&second).await.unwrap();
    (first, second)
}

#[tokio::test]
async fn queued_mail_is_listed_newest_first_up_to_the_limit() {
    for db in backends("queued_mail_is_listed_newest_first_up_to_the_limit").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let (first, second) = queue_two(&app).await;
        let store = app.store();
        let listed = store.list_outbox(10).await.unwrap();
        let ids: Vec<MessageId> = listed.iter().map(|m| m.id).collect();
        assert_eq!(ids, [second.id, first.id], "newest first on {db:?}");
        assert_eq!(store.list_outbox(1).await.unwrap().len(), 1);
        assert_eq!(
            store.get_outbox(second.id).await.unwrap().unwrap(),
            listed[0]
        );
    }
}

#[tokio::test]
async fn a_queued_message_holds_its_envelope_and_text_and_waits_its_first_attempt() {
    for db in
        backends("a_queued_message_holds_its_envelope_and_text_and_waits_its_first_attempt").await
    {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let (_, mail) = queue_two(&app).await;
        let shown = app.store().get_outbox(mail.id).await.unwrap().unwrap();
        assert_eq!(shown.environment_id, Some(app.admin.environment_id));
        assert_eq!(shown.route, MailRoute::System);
        assert_eq!(shown.envelope_from, SENDER);
        assert_eq!(shown.envelope_to, ["Ann@shop.test"]);
        assert_eq!(shown.subject, "Your trustmail verification code");
        assert_eq!(shown.message, mail.message);
        assert!(
            shown
                .message
                .lines()
                .any(|l| l == "Verification code: k3x9a0bz")
        );
        assert_eq!(shown.status, MessageStatus::Queued, "{db:?}");
        assert_eq!(shown.attempts, 0);
        assert_eq!(shown.next_attempt_at, shown.created_at);
        assert_eq!((shown.lease_owner, shown.leased_until), (None, None));
        assert_eq!((shown.last_error, shown.sent_at), (None, None));
    }
}

#[tokio::test]
async fn customer_mail_keeps_the_domain_that_signs_it_at_delivery() {
    for db in backends("customer_mail_keeps_the_domain_that_signs_it_at_delivery").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let domain = DomainId::new();
        let mut mail = code_mail(Some(app.admin.environment_id), "b@shop.test", "x");
        mail.route = MailRoute::Region("us-east-1".into());
        mail.dkim_domain_id = Some(domain);
        app.store().enqueue_mail(&mail).await.unwrap();
        let shown = app.store().get_outbox(mail.id).await.unwrap().unwrap();
        assert_eq!(shown.dkim_domain_id, Some(domain), "{db:?}");
        assert_eq!(shown.signed_at_delivery(), Some((domain, "us-east-1")));
        let at = now() + Duration::from_millis(10);
        let claimed = claim(app.store(), &mail.route, "me", at).await;
        assert_eq!(claimed[0].dkim_domain_id, Some(domain), "{db:?}");
        let (_, system) = queue_two(&app).await;
        let shown = app.store().get_outbox(system.id).await.unwrap().unwrap();
        assert_eq!(shown.signed_at_delivery(), None, "{db:?}");
    }
}

#[tokio::test]
async fn an_unknown_message_is_not_there() {
    for db in backends("an_unknown_message_is_not_there").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        assert!(
            app.store()
                .get_outbox(MessageId::new())
                .await
                .unwrap()
                .is_none(),
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn without_a_relay_queued_mail_waits() {
    for db in backends("without_a_relay_queued_mail_waits").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let (_, mail) = queue_two(&app).await;
        // Time for the delivery job to run, were it to send anything.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let after = app.store().get_outbox(mail.id).await.unwrap().unwrap();
        assert_eq!(
            (after.status, after.attempts),
            (MessageStatus::Queued, 0),
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn deleting_an_environment_deletes_its_mail() {
    for db in backends("deleting_an_environment_deletes_its_mail").await {
        let app = TestApp::spawn_on(db, |_| {}).await;
        let actor = Actor {
            client_id: app.admin.client_id,
            environment_id: app.admin.environment_id,
            role: trustmail::domain::Role::OrganizationAdmin,
        };
        let env = app
            .service
            .create_environment(&actor, "Shop", Geography::Eu)
            .await
            .unwrap();
        let store = app.store();
        let theirs = code_mail(Some(env.id), "a@shop.test", "aaaa1111");
        let system = code_mail(None, "b@shop.test", "bbbb2222");
        store.enqueue_mail(&theirs).await.unwrap();
        store.enqueue_mail(&system).await.unwrap();
        let activity = Activity::new(
            actor.environment_id,
            ActivityType::EnvironmentDeleted,
            actor.client_id,
            ResourceType::Environment,
            env.id,
            "Shop",
        );
        assert!(store.delete_environment(env.id, &activity).await.unwrap());
        assert!(store.get_outbox(theirs.id).await.unwrap().is_none());
        assert!(store.get_outbox(system.id).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliverers_never_claim_the_same_message() {
    for db in backends("concurrent_deliverers_never_claim_the_same_message").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let store = app.store().clone();
        let mut queued = HashSet::new();
        for i in 0..40 {
            let mail = code_mail(None, &format!("r{i}@shop.test"), "aaaa1111");
            store.enqueue_mail(&mail).await.unwrap();
            queued.insert(mail.id);
        }
        let at = now() + Duration::from_millis(10);
        let deliverers: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let owner = format!("deliverer-{n}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = store
                            .claim_due_mail(&MailRoute::System, &owner, at, LEASE, 3)
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        for message in batch {
                            assert_eq!(message.lease_owner.as_deref(), Some(owner.as_str()));
                            mine.push(message.id);
                        }
                    }
                })
            })
            .collect();
        let mut claimed = HashSet::new();
        for deliverer in deliverers {
            for id in deliverer.await.unwrap() {
                assert!(claimed.insert(id), "{id} claimed twice on {db:?}");
            }
        }
        assert_eq!(claimed, queued, "{db:?}");
        // Nothing is left to claim while the leases last, for anyone.
        let again = store
            .claim_due_mail(&MailRoute::System, "late", at, LEASE, 100)
            .await
            .unwrap();
        assert!(again.is_empty());
    }
}

/// One message queued and leased to deliverer "a" on the system route: (message, lease start).
async fn leased_to_a(store: &Store) -> (ComposedMessage, OffsetDateTime) {
    let mail = code_mail(None, "a@shop.test", "aaaa1111");
    store.enqueue_mail(&mail).await.unwrap();
    let t0 = now() + Duration::from_millis(10);
    let claimed = claim(store, &MailRoute::System, "a", t0).await;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].leased_until, Some(t0 + LEASE));
    (mail, t0)
}

#[tokio::test]
async fn a_leased_message_is_claimed_by_no_one_else_while_the_lease_lasts() {
    for db in backends("a_leased_message_is_claimed_by_no_one_else_while_the_lease_lasts").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let store = app.store();
        let (_, t0) = leased_to_a(store).await;
        // Another route's deliverer sees nothing.
        let other = MailRoute::Region("eu".into());
        assert!(claim(store, &other, "b", t0).await.is_empty(), "{db:?}");
        let during = t0 + Duration::from_secs(1);
        assert!(
            claim(store, &MailRoute::System, "b", during)
                .await
                .is_empty(),
            "{db:?}"
        );
    }
}

#[tokio::test]
async fn only_the_lease_holder_records_an_outcome() {
    for db in backends("only_the_lease_holder_records_an_outcome").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let store = app.store();
        let (mail, t0) = leased_to_a(store).await;
        assert!(
            !store
                .mark_mail_sent(mail.id, "b", "250 OK", t0)
                .await
                .unwrap(),
            "{db:?}"
        );
        let refused = store
            .record_failed_delivery(mail.id, "b", "x", t0)
            .await
            .unwrap();
        assert_eq!(refused, None, "{db:?}");
    }
}

#[tokio::test]
async fn an_expired_lease_passes_to_another_deliverer_whose_outcome_counts() {
    for db in backends("an_expired_lease_passes_to_another_deliverer_whose_outcome_counts").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let store = app.store();
        let (mail, t0) = leased_to_a(store).await;
        let system = MailRoute::System;
        let expired = t0 + LEASE + Duration::from_millis(1);
        let taken = claim(store, &system, "b", expired).await;
        assert_eq!(taken.len(), 1, "{db:?}");
        assert!(
            !store
                .mark_mail_sent(mail.id, "a", "250 OK", expired)
                .await
                .unwrap()
        );
        assert!(
            store
                .mark_mail_sent(mail.id, "b", "250 OK", expired)
                .await
                .unwrap()
        );
        let sent = store.get_outbox(mail.id).await.unwrap().unwrap();
        assert_eq!((sent.status, sent.attempts), (MessageStatus::Sent, 1));
        assert_eq!(sent.sent_at, Some(expired));
        assert_eq!((sent.lease_owner, sent.leased_until), (None, None));
        // Sent is final.
        let later = expired + LEASE * 2;
        assert!(claim(store, &system, "c", later).await.is_empty());
    }
}

#[tokio::test]
async fn failed_attempts_back_off_then_give_up() {
    for db in backends("failed_attempts_back_off_then_give_up").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let store = app.store();
        let mail = code_mail(None, "a@shop.test", "aaaa1111");
        store.enqueue_mail(&mail).await.unwrap();
        let route = MailRoute::System;
        let mut at = now() + Duration::from_millis(10);
        for attempt in 1..=MAX_DELIVERY_ATTEMPTS {
            let claimed = claim(store, &route, "me", at).await;
            assert_eq!(claimed.len(), 1, "attempt {attempt} on {db:?}");
            assert_eq!(claimed[0].attempts, attempt - 1);
            let error = format!("421 try later ({attempt})");
            let (status, attempts) = store
                .record_failed_delivery(mail.id, "me", &error, at)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(attempts, attempt);
            let row = store.get_outbox(mail.id).await.unwrap().unwrap();
            assert_eq!(row.last_error.as_deref(), Some(error.as_str()));
            assert_eq!((row.lease_owner, row.leased_until), (None, None));
            if attempt < MAX_DELIVERY_ATTEMPTS {
                assert_eq!(status, MessageStatus::Queued);
                let due = at + retry_delay(attempt);
                assert_eq!(row.next_attempt_at, due);
                let early = due - Duration::from_millis(1);
                let none = claim(store, &route, "me", early).await;
                assert!(none.is_empty(), "claimed before its retry time");
                at = due;
            } else {
                assert_eq!(status, MessageStatus::Failed);
                assert_eq!(row.status, MessageStatus::Failed);
            }
        }
        let far = at + Duration::from_secs(86_400 * 30);
        assert!(claim(store, &route, "me", far).await.is_empty());
        assert!(store.due_mail_routes(far).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn long_relay_errors_are_cut_to_2000_characters() {
    for db in backends("long_relay_errors_are_cut_to_2000_characters").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let store = app.store();
        let mail = code_mail(None, "b@shop.test", "bbbb2222");
        store.enqueue_mail(&mail).await.unwrap();
        let at = now() + Duration::from_millis(10);
        claim(store, &MailRoute::System, "me", at).await;
        store
            .record_failed_delivery(mail.id, "me", &"x".repeat(10_000), at)
            .await
            .unwrap();
        let row = store.get_outbox(mail.id).await.unwrap().unwrap();
        assert_eq!(row.last_error.unwrap().len(), 2000, "{db:?}");
    }
}

/// An app whose relay is an SMTP sink: (sink, app).
async fn with_relay(db: Db) -> (SmtpSink, TestApp) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_on(db, |c| {
        c.mail.smtp_url = trustmail::config::SmtpUrl::parse(&url).unwrap()
    })
    .await;
    (sink, app)
}

#[tokio::test]
async fn queued_mail_reaches_the_relay_as_composed() {
    for db in backends("queued_mail_reaches_the_relay_as_composed").await {
        let (mut sink, app) = with_relay(db.clone()).await;
        let mail = code_mail(Some(app.admin.environment_id), "Ann@shop.test", "k3x9a0bz");
        app.store().enqueue_mail(&mail).await.unwrap();
        let received = sink.next_mail(Duration::from_secs(15)).await;
        assert_eq!(received.from, SENDER, "{db:?}");
        assert_eq!(received.to, ["Ann@shop.test"]);
        assert_eq!(received.data.trim_end(), mail.message.trim_end());
        assert!(
            received
                .data
                .lines()
                .any(|l| l == "Verification code: k3x9a0bz")
        );
    }
}

#[tokio::test]
async fn delivered_mail_is_sent_once_and_marked_sent() {
    for db in backends("delivered_mail_is_sent_once_and_marked_sent").await {
        let (mut sink, mut app) = with_relay(db.clone()).await;
        let store = app.store().clone();
        let mail = code_mail(Some(app.admin.environment_id), "Ann@shop.test", "k3x9a0bz");
        store.enqueue_mail(&mail).await.unwrap();
        sink.next_mail(Duration::from_secs(15)).await;
        let sent = eventually("the row to be SENT", || async {
            let row = store.get_outbox(mail.id).await.unwrap().unwrap();
            (row.status == MessageStatus::Sent).then_some(row)
        })
        .await;
        assert_eq!(sent.attempts, 1, "{db:?}");
        assert!(sent.sent_at.is_some());
        assert_eq!((sent.lease_owner, sent.last_error), (None, None));
        app.stop().await;
        assert!(sink.try_next_mail().is_none(), "sent twice on {db:?}");
    }
}

#[tokio::test]
async fn a_region_without_a_relay_of_its_own_sends_through_the_default_relay() {
    for db in backends("a_region_without_a_relay_of_its_own_sends_through_the_default_relay").await
    {
        let (mut sink, mut app) = with_relay(db.clone()).await;
        let mut regional = verification_code_mail(SENDER, "b@shop.test", "x").unwrap();
        regional.subject = "Regional".into();
        let regional = compose(
            &regional,
            Some(app.admin.environment_id),
            MailRoute::Region("us-east-1".into()),
        )
        .unwrap();
        app.store().enqueue_mail(&regional).await.unwrap();
        let received = sink.next_mail(Duration::from_secs(15)).await;
        assert_eq!(received.to, ["b@shop.test"], "{db:?}");
        assert!(received.data.contains("Subject: Regional\r\n"));
        app.stop().await;
        assert!(sink.try_next_mail().is_none(), "sent twice on {db:?}");
    }
}

#[tokio::test]
async fn customer_mail_queued_signed_before_signing_moved_to_delivery_is_sent_as_stored() {
    let (mut sink, app) = with_relay(Db::Sqlite).await;
    let mut mail = compose(
        &verification_code_mail(SENDER, "b@shop.test", "x").unwrap(),
        Some(app.admin.environment_id),
        MailRoute::Region("us-east-1".into()),
    )
    .unwrap();
    // Such a row names no signing domain and holds its signature already.
    mail.message.insert_str(
        0,
        "DKIM-Signature: v=1; a=ed25519-sha256; d=shop.test; s=old; h=From; bh=; b=\r\n",
    );
    assert_eq!(mail.dkim_domain_id, None);
    app.store().enqueue_mail(&mail).await.unwrap();
    let received = sink.next_mail(Duration::from_secs(15)).await;
    assert_eq!(received.data.trim_end(), mail.message.trim_end());
}

#[tokio::test]
async fn a_relay_that_refuses_leaves_the_message_pending_with_its_error() {
    for db in backends("a_relay_that_refuses_leaves_the_message_pending_with_its_error").await {
        // A port that was just free: connections to it are refused.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("smtp://relay-user:hunter2@127.0.0.1:{port}?tls=required");
        let app = TestApp::spawn_on(db.clone(), |c| {
            c.mail.smtp_url = trustmail::config::SmtpUrl::parse(&url).unwrap()
        })
        .await;
        let store = app.store();
        let mail = code_mail(None, "a@shop.test", "aaaa1111");
        store.enqueue_mail(&mail).await.unwrap();
        let row = eventually("a failed attempt", || async {
            let row = store.get_outbox(mail.id).await.unwrap().unwrap();
            (row.attempts >= 1).then_some(row)
        })
        .await;
        assert_eq!(
            (row.status, row.attempts),
            (MessageStatus::Queued, 1),
            "{db:?}"
        );
        let error = row.last_error.unwrap();
        assert!(!error.is_empty());
        assert!(!error.contains("hunter2"), "{error}");
        assert!(row.next_attempt_at >= row.created_at + retry_delay(1));
        assert_eq!(row.lease_owner, None);
    }
}

#[tokio::test]
async fn one_environments_backlog_does_not_delay_anothers_message_beyond_one_claim() {
    for db in
        backends("one_environments_backlog_does_not_delay_anothers_message_beyond_one_claim").await
    {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let busy = app.admin.environment_id;
        let quiet: EnvironmentId = app.environment("Quiet").await.parse().unwrap();
        for n in 0..30 {
            let mail = code_mail(Some(busy), &format!("r{n}@shop.test"), "aaaa1111");
            app.store().enqueue_mail(&mail).await.unwrap();
        }
        let single = code_mail(Some(quiet), "one@shop.test", "bbbb2222");
        app.store().enqueue_mail(&single).await.unwrap();
        let at = now() + Duration::from_millis(10);
        let batch = claim(app.store(), &MailRoute::System, "me", at).await;
        assert!(
            batch.iter().any(|m| m.id == single.id),
            "the quiet environment's message waits on {db:?}"
        );
        let from_busy = batch
            .iter()
            .filter(|m| m.environment_id == Some(busy))
            .count();
        assert_eq!(from_busy, PER_ENVIRONMENT_PER_CLAIM as usize, "{db:?}");
    }
}

#[tokio::test]
async fn a_row_that_cannot_be_read_fails_instead_of_blocking_the_queue() {
    let app = TestApp::spawn().await;
    let broken = code_mail(None, "broken@shop.test", "aaaa1111");
    let fine = code_mail(None, "fine@shop.test", "bbbb2222");
    app.store().enqueue_mail(&broken).await.unwrap();
    app.store().enqueue_mail(&fine).await.unwrap();
    let pool = sqlx::AnyPool::connect(&format!(
        "sqlite://{}",
        app.dir.path().join("trustmail.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET message = 'sealed:not-a-sealed-value' WHERE id = $1")
        .bind(broken.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let at = now() + Duration::from_millis(10);
    let batch = claim(app.store(), &MailRoute::System, "me", at).await;
    let ids: Vec<MessageId> = batch.iter().map(|m| m.id).collect();
    assert_eq!(ids, [fine.id]);
    let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
        .bind(broken.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "FAILED");
    let reason: String = sqlx::query_scalar("SELECT last_error FROM outbox WHERE id = $1")
        .bind(broken.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(reason.contains("cannot be read"), "{reason}");
    // Once the leases run out, only the readable message is claimed again.
    let later = claim(app.store(), &MailRoute::System, "me", at + LEASE * 2).await;
    let ids: Vec<MessageId> = later.iter().map(|m| m.id).collect();
    assert_eq!(ids, [fine.id]);
}

/// A row sealed under a master key this replica does not have (a rotation half done) is left
/// QUEUED for a replica that has it, not failed.
#[tokio::test]
async fn a_row_sealed_under_a_key_not_loaded_here_stays_pending() {
    let app = TestApp::spawn().await;
    let foreign = code_mail(None, "foreign@shop.test", "cccc3333");
    app.store().enqueue_mail(&foreign).await.unwrap();
    let pool = sqlx::AnyPool::connect(&format!(
        "sqlite://{}",
        app.dir.path().join("trustmail.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE outbox SET message = 'sealed:v2:0011223344556677:AAAA' WHERE id = $1")
        .bind(foreign.id.to_string())
        .execute(&pool)
        .await
        .unwrap();
    let at = now() + Duration::from_millis(10);
    assert!(
        claim(app.store(), &MailRoute::System, "me", at)
            .await
            .is_empty()
    );
    let status: String = sqlx::query_scalar("SELECT status FROM outbox WHERE id = $1")
        .bind(foreign.id.to_string())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "QUEUED");
}
