//! Retention (`jobs::retention`, `Store::prune`): finished rows past `[retention]` go, in
//! batches; young rows, pending mail and pending deliveries stay. On SQLite always and on
//! PostgreSQL when `TEST_POSTGRES_URL` is set.
//!
//! The rows are written with SQL at chosen times and states (the store's writers stamp rows
//! with the clock), into the database of an app that was stopped first, so that none of its
//! jobs (delivery, expiry, retention itself) touches them meanwhile.

use secrecy::ExposeSecret;
use sqlx::AnyPool;
use time::{Duration, OffsetDateTime};
use trustmail::{
    config::Retention,
    domain::now,
    jobs::retention::{BATCH, prune_expired},
    store::{Pruned, Store},
};

use crate::support::{Db, TestApp, backends};

fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A stopped app's database: its store, and a pool for writing rows as they would be.
struct Seeded {
    app: TestApp,
    store: Store,
    pool: AnyPool,
    env: String,
    now: OffsetDateTime,
}

impl Seeded {
    async fn new(db: Db) -> Self {
        let mut app = TestApp::spawn_on(db, |_| {}).await;
        app.stop().await;
        let store = app.open_store().await;
        let pool = AnyPool::connect(app.config.database_url.expose_secret())
            .await
            .unwrap();
        let env = app.admin.environment_id.to_string();
        Self {
            app,
            store,
            pool,
            env,
            now: now(),
        }
    }

    fn days_ago(&self, days: i64) -> OffsetDateTime {
        self.now - Duration::days(days)
    }

    async fn outbox(&self, status: &str, leased: bool, created: OffsetDateTime) -> String {
        let id = id();
        sqlx::query(
            "INSERT INTO outbox (id, environment_id, route, envelope_from, envelope_to, subject, \
             message, status, attempts, next_attempt_at, lease_owner, leased_until, created_at) \
             VALUES ($1, $2, 'region:us-east-1', 'a@shop.test', 'b@shop.test', 's', 'm', $3, 0, \
             $4, $5, $6, $4)",
        )
        .bind(&id)
        .bind(&self.env)
        .bind(status)
        .bind(ms(created))
        .bind(leased.then_some("another-replica"))
        .bind(leased.then(|| ms(self.now + Duration::minutes(5))))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    async fn message_request(&self, key: &str, created: OffsetDateTime) {
        sqlx::query(
            "INSERT INTO message_requests (environment_id, idempotency_key, request_hash, \
             message_id, created_at) VALUES ($1, $2, 'hash', $3, $4)",
        )
        .bind(&self.env)
        .bind(key)
        .bind(id())
        .bind(ms(created))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    async fn activity(&self, recorded: OffsetDateTime) -> String {
        let id = id();
        sqlx::query(
            "INSERT INTO activities (id, environment_id, action_type, actor_client_id, \
             resource_type, resource_id, resource_name, result_status, recorded_at) \
             VALUES ($1, $2, 'EMAIL_DOMAIN.CREATED', '', 'EMAIL_DOMAIN', 'r', 'n', 'SUCCESS', $3)",
        )
        .bind(&id)
        .bind(&self.env)
        .bind(ms(recorded))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    /// `count` activities recorded at `recorded`, in one statement.
    async fn activities(&self, count: i64, recorded: OffsetDateTime) {
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO activities (id, environment_id, action_type, actor_client_id, \
             resource_type, resource_id, resource_name, result_status, recorded_at) \
             SELECT $2 || '-' || i, $3, 'EMAIL_DOMAIN.CREATED', '', 'EMAIL_DOMAIN', 'r', 'n', \
             'SUCCESS', $4 FROM n",
        )
        .bind(count)
        .bind(id())
        .bind(&self.env)
        .bind(ms(recorded))
        .execute(&self.pool)
        .await
        .unwrap();
    }

    /// A disabled subscription of the environment (no job is running to send anything).
    async fn subscription(&self) -> String {
        let id = id();
        sqlx::query(
            "INSERT INTO subscriptions (id, environment_id, name, enabled, url, sealed_headers, \
             format, verify_tls, sealed_secret, created_at, updated_at) \
             VALUES ($1, $2, 'hook', 0, 'https://hooks.shop.test/', '', 'ACTIVITY', 1, '', $3, $3)",
        )
        .bind(&id)
        .bind(&self.env)
        .bind(ms(self.now))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    /// An activity recorded `days` ago and its delivery to `subscription`, queued then, in
    /// `state`.
    async fn delivered_activity(&self, subscription: &str, days: i64, state: &str) -> String {
        let at = self.days_ago(days);
        let activity = self.activity(at).await;
        sqlx::query(
            "INSERT INTO subscription_deliveries (subscription_id, activity_id, state, attempts, \
             next_attempt_at, created_at) VALUES ($1, $2, $3, 1, $4, $4)",
        )
        .bind(subscription)
        .bind(&activity)
        .bind(state)
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .unwrap();
        activity
    }

    async fn feedback_event(&self, at: OffsetDateTime) -> String {
        let id = id();
        sqlx::query(
            "INSERT INTO feedback_events (id, environment_id, message_id, position, kind, source, \
             created_at) VALUES ($1, $2, $3, 0, 'BOUNCE', 'DSN', $4)",
        )
        .bind(&id)
        .bind(&self.env)
        .bind(self::id())
        .bind(ms(at))
        .execute(&self.pool)
        .await
        .unwrap();
        id
    }

    /// A DMARC report with one row, for a domain of its own.
    async fn dmarc_report(&self, received: OffsetDateTime) -> String {
        let (domain, report) = (id(), id());
        sqlx::query(
            "INSERT INTO email_domains (id, environment_id, domain_name, written_name, created_at, \
             updated_at) VALUES ($1, $2, $3, $3, $4, $4)",
        )
        .bind(&domain)
        .bind(&self.env)
        .bind(format!("d{}.shop.test", &domain[..8]))
        .bind(ms(received))
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO dmarc_reports (id, domain_id, environment_id, org_name, email, report_id, \
             begin_at, end_at, policy_domain, policy, messages, received_at) \
             VALUES ($1, $2, $3, 'r.test', 'd@r.test', $1, $4, $4, 'shop.test', 'none', 1, $4)",
        )
        .bind(&report)
        .bind(&domain)
        .bind(&self.env)
        .bind(ms(received))
        .execute(&self.pool)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO dmarc_report_rows (report_id, position, source_ip, messages, header_from, \
             dkim_aligned, spf_aligned, disposition) VALUES ($1, 0, '192.0.2.1', 1, 'shop.test', \
             1, 0, 'none')",
        )
        .bind(&report)
        .execute(&self.pool)
        .await
        .unwrap();
        report
    }

    async fn ids(&self, sql: &str) -> Vec<String> {
        let mut ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_all(&self.pool)
            .await
            .unwrap();
        ids.sort();
        ids
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn old_finished_rows_go_and_young_or_pending_ones_stay() {
    for db in backends("old_finished_rows_go_and_young_or_pending_ones_stay").await {
        let s = Seeded::new(db.clone()).await;
        // The bootstrap's own activities are young: they stay.
        let activities_before = s.count("activities").await;
        let (old, young) = (s.days_ago(31), s.days_ago(29));
        s.outbox("SENT", false, old).await;
        s.outbox("FAILED", false, old).await;
        let pending = s.outbox("QUEUED", false, old).await;
        let leased = s.outbox("QUEUED", true, old).await;
        let young_sent = s.outbox("SENT", false, young).await;
        s.message_request("old", old).await;
        s.message_request("young", young).await;
        let sub = s.subscription().await;
        let gone = s.delivered_activity(&sub, 100, "DELIVERED").await;
        let old_pending = s.delivered_activity(&sub, 100, "PENDING").await;
        let failed_40 = s.delivered_activity(&sub, 40, "FAILED").await;
        let pending_40 = s.delivered_activity(&sub, 40, "PENDING").await;
        let young_done = s.delivered_activity(&sub, 10, "DELIVERED").await;
        s.feedback_event(s.days_ago(91)).await;
        let young_event = s.feedback_event(s.days_ago(89)).await;
        s.dmarc_report(s.days_ago(91)).await;
        let young_report = s.dmarc_report(s.days_ago(89)).await;

        let report = prune_expired(&s.store, &Retention::default(), s.now, BATCH)
            .await
            .unwrap();

        assert_eq!(
            s.ids("SELECT id FROM outbox").await,
            sorted(vec![pending, leased, young_sent]),
            "{db:?}"
        );
        assert_eq!(
            s.ids("SELECT idempotency_key FROM message_requests").await,
            ["young"],
            "{db:?}"
        );
        assert_eq!(
            s.ids("SELECT activity_id FROM subscription_deliveries")
                .await,
            sorted(vec![
                old_pending.clone(),
                pending_40.clone(),
                young_done.clone()
            ]),
            "{db:?}"
        );
        let kept = s
            .ids("SELECT id FROM activities WHERE resource_id = 'r'")
            .await;
        assert_eq!(
            kept,
            sorted(vec![old_pending, failed_40, pending_40, young_done]),
            "{db:?}"
        );
        assert!(!kept.contains(&gone));
        assert_eq!(s.count("activities").await, activities_before + 4, "{db:?}");
        let deleted = Pruned::ALL.map(|t| report.deleted_from(t));
        assert_eq!(deleted, [2, 1, 2, 1, 1, 1], "{db:?}");
        assert_eq!(s.ids("SELECT id FROM feedback_events").await, [young_event]);
        assert_eq!(s.ids("SELECT id FROM dmarc_reports").await, [young_report]);
        // A report's rows go with it.
        assert_eq!(s.count("dmarc_report_rows").await, 1, "{db:?}");
    }
}

#[tokio::test]
async fn idempotency_keys_younger_than_a_day_stay_and_still_answer() {
    for db in backends("idempotency_keys_younger_than_a_day_stay_and_still_answer").await {
        let s = Seeded::new(db.clone()).await;
        let a_day = Retention {
            messages_days: 1,
            ..Retention::default()
        };
        s.message_request("23h", s.now - Duration::hours(23)).await;
        s.message_request("25h", s.now - Duration::hours(25)).await;
        prune_expired(&s.store, &a_day, s.now, BATCH).await.unwrap();
        assert_eq!(
            s.ids("SELECT idempotency_key FROM message_requests").await,
            ["23h"],
            "{db:?}"
        );
        let env = s.app.admin.environment_id;
        let repeat = s.store.idempotent_message(env, "23h", s.now).await.unwrap();
        assert!(repeat.is_some(), "{db:?}");
    }
}

#[tokio::test]
async fn a_backlog_is_deleted_in_batches_until_one_comes_back_short() {
    for db in backends("a_backlog_is_deleted_in_batches_until_one_comes_back_short").await {
        let s = Seeded::new(db.clone()).await;
        s.activities(1_200, s.days_ago(91)).await;
        s.activities(3, s.days_ago(89)).await;
        let before = s.count("activities").await;
        let report = prune_expired(&s.store, &Retention::default(), s.now, BATCH)
            .await
            .unwrap();
        assert_eq!(report.deleted_from(Pruned::Activities), 1_200, "{db:?}");
        assert_eq!(s.count("activities").await, before - 1_200, "{db:?}");
        // 500, 500 and 200 for the activities; one short statement for each other table.
        assert_eq!(report.statements, 3 + 5, "{db:?}");
        // Nothing is left for the next pass, which deletes nothing.
        let again = prune_expired(&s.store, &Retention::default(), s.now, BATCH)
            .await
            .unwrap();
        assert_eq!(again.statements, 6, "{db:?}");
        assert!(again.deleted.iter().all(|(_, n)| *n == 0), "{again:?}");
    }
}

#[tokio::test]
async fn replicas_pruning_at_once_delete_each_row_once() {
    for db in backends("replicas_pruning_at_once_delete_each_row_once").await {
        let s = Seeded::new(db.clone()).await;
        s.activities(1_200, s.days_ago(91)).await;
        let before = s.count("activities").await;
        // Two replicas: two pools on one database.
        let other = s.app.open_store().await;
        let retention = Retention::default();
        let (a, b) = tokio::join!(
            prune_expired(&s.store, &retention, s.now, BATCH),
            prune_expired(&other, &retention, s.now, BATCH)
        );
        let deleted = a.unwrap().deleted_from(Pruned::Activities)
            + b.unwrap().deleted_from(Pruned::Activities);
        assert_eq!(deleted, 1_200, "{db:?}");
        assert_eq!(s.count("activities").await, before - 1_200, "{db:?}");
    }
}

/// `retention_pruned_total{table="…"}` as `/metrics` shows it (0 before the first count).
async fn pruned_total(app: &TestApp, table: &str) -> u64 {
    let text = app
        .request(reqwest::Method::GET, "/metrics", None, None)
        .await
        .text()
        .await
        .unwrap();
    let series = format!("retention_pruned_total{{table=\"{table}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn the_server_prunes_when_it_starts_and_counts_what_it_deleted() {
    let s = Seeded::new(Db::Sqlite).await;
    s.outbox("SENT", false, s.days_ago(31)).await;
    let young = s.outbox("SENT", false, s.days_ago(1)).await;
    s.activities(3, s.days_ago(91)).await;
    s.pool.close().await;
    let Seeded { app, .. } = s;
    let app = app.restart().await;
    let pool = AnyPool::connect(app.config.database_url.expose_secret())
        .await
        .unwrap();
    // The job's first pass runs at start; waiting is bounded, and asserts nothing by itself.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let outbox: Vec<String> = sqlx::query_scalar("SELECT id FROM outbox")
            .fetch_all(&pool)
            .await
            .unwrap();
        let old_activities: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM activities WHERE resource_id = 'r'")
                .fetch_one(&pool)
                .await
                .unwrap();
        if outbox == [young.clone()] && old_activities == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not pruned: outbox {outbox:?}, {old_activities} old activities"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The counters are the process's, shared with other tests: they grew by at least ours.
    assert!(pruned_total(&app, "outbox").await >= 1);
    assert!(pruned_total(&app, "activities").await >= 3);
}
