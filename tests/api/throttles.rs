//! Costly calls throttled per environment in the store (`limits.dkim_rotations_per_hour`,
//! `limits.self_checks_per_minute`): exact at the limit under concurrency and across replicas,
//! 429 with Retry-After past it, other environments and the operator's CLI unaffected.

use reqwest::StatusCode;
use serde_json::Value;
use trustmail::domain::DkimAlgorithm;

use crate::support::{Db, TestApp, TestDns, UNKNOWN_ID, backends, p1_error, retry_after};

const DOMAIN: &str = "a.shopco.test";
const LIMIT: u32 = 10;
const CALLS: usize = 12;

/// An app (and a second replica on PostgreSQL) with `LIMIT` rotations and self-checks, and an
/// environment with a published domain.
async fn apps(db: Db, dns: &TestDns) -> (Vec<TestApp>, String, String) {
    let resolver = dns.resolver();
    let postgres = matches!(db, Db::Postgres(_));
    let app = TestApp::spawn_on(db, move |c| {
        c.dns.resolvers = vec![resolver];
        c.dkim.algorithm = DkimAlgorithm::Ed25519;
        c.limits.dkim_rotations_per_hour = LIMIT;
        c.limits.self_checks_per_minute = LIMIT;
    })
    .await;
    let env = app.environment("Shop").await;
    let id = app.domain(&env, DOMAIN).await;
    app.publish_domain(dns, &env, &id).await;
    let mut apps = vec![app];
    if postgres {
        let replica = apps[0].replica().await;
        apps.push(replica);
    }
    (apps, env, id)
}

/// `POST …/emailDomains/{id}/{leaf}` as the organization administrator.
async fn post(app: &TestApp, env: &str, id: &str, leaf: &str) -> reqwest::Response {
    let path = format!("/v1/environments/{env}/emailDomains/{id}/{leaf}");
    app.post(&path, &app.admin_token, Value::Null).await
}

/// `CALLS` concurrent POSTs of `leaf`, spread over the replicas: the statuses, and the
/// Retry-After of every 429.
async fn concurrent_posts(apps: &[TestApp], env: &str, id: &str, leaf: &str) -> (usize, Vec<u64>) {
    let calls = (0..CALLS).map(|i| post(&apps[i % apps.len()], env, id, leaf));
    let responses = futures_util::future::join_all(calls).await;
    let mut ok = 0;
    let mut waits = Vec::new();
    for response in responses {
        match response.status() {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => waits.push(retry_after(&response)),
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    (ok, waits)
}

async fn exactly_the_limit_passes(leaf: &str, window_s: u64, test: &str) {
    for db in backends(test).await {
        let dns = TestDns::start().await;
        let (apps, env, id) = apps(db, &dns).await;
        let (ok, waits) = concurrent_posts(&apps, &env, &id, leaf).await;
        assert_eq!(ok, LIMIT as usize, "{leaf}: {waits:?}");
        assert_eq!(waits.len(), CALLS - LIMIT as usize);
        assert!(
            waits.iter().all(|&w| (1..=2 * window_s).contains(&w)),
            "{waits:?}"
        );
        // The shape of every other 429.
        let app = &apps[0];
        let over = post(app, &env, &id, leaf).await;
        assert!(retry_after(&over) >= 1);
        let body = p1_error(over, StatusCode::TOO_MANY_REQUESTS).await;
        assert_eq!(body["code"], "REQUEST_LIMITED", "{body}");
        // Refusals are counted by scope (at least ours: other tests share the recorder).
        let scope = if leaf == "dkim/rotate" {
            "DKIM_ROTATIONS"
        } else {
            "SELF_CHECKS"
        };
        let metrics = app
            .request(reqwest::Method::GET, "/metrics", None, None)
            .await
            .text()
            .await
            .unwrap();
        let counted: f64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("throttled_total{{scope=\"{scope}\"}} ")))
            .unwrap_or_else(|| panic!("no throttled_total for {scope}"))
            .parse()
            .unwrap();
        assert!(counted >= (waits.len() + 1) as f64, "{counted}");
        // Another environment has its own budget.
        let other = app.environment("Other").await;
        let other_id = app.domain(&other, "b.shopco.test").await;
        app.publish_domain(&dns, &other, &other_id).await;
        let response = post(app, &other, &other_id, leaf).await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{leaf} in another environment"
        );
    }
}

#[tokio::test]
async fn twelve_concurrent_rotations_with_a_limit_of_ten_let_exactly_ten_through() {
    exactly_the_limit_passes(
        "dkim/rotate",
        3600,
        "twelve_concurrent_rotations_with_a_limit_of_ten_let_exactly_ten_through",
    )
    .await;
}

#[tokio::test]
async fn twelve_concurrent_self_checks_with_a_limit_of_ten_let_exactly_ten_through() {
    exactly_the_limit_passes(
        "selfCheck",
        60,
        "twelve_concurrent_self_checks_with_a_limit_of_ten_let_exactly_ten_through",
    )
    .await;
}

#[tokio::test]
async fn the_operators_rotation_is_not_throttled() {
    let dns = TestDns::start().await;
    let (apps, env, id) = apps(Db::Sqlite, &dns).await;
    let app = &apps[0];
    let (ok, _) = concurrent_posts(&apps, &env, &id, "dkim/rotate").await;
    assert_eq!(ok, LIMIT as usize);
    // What `trustmail dkim rotate` calls: no actor.
    let domain = app.email_domain(&env, &id).await;
    for _ in 0..3 {
        app.service
            .rotate_dkim_keys(None, &domain, None)
            .await
            .expect("the operator's rotation is not counted");
    }
}

#[tokio::test]
async fn unknown_domains_answer_404_without_spending_the_budget() {
    let dns = TestDns::start().await;
    let (apps, env, id) = apps(Db::Sqlite, &dns).await;
    let app = &apps[0];
    for leaf in ["dkim/rotate", "selfCheck"] {
        for _ in 0..CALLS {
            let response = post(app, &env, UNKNOWN_ID, leaf).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND);
        }
        let response = post(app, &env, &id, leaf).await;
        assert_eq!(response.status(), StatusCode::OK, "{leaf}");
    }
}
