//! `GET …/verification?waitFor=ACTIVE`: a long poll that answers within one check of the
//! records' publication, or at its timeout with the diagnosis, and costs one check per cadence
//! however many wait.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, TestDns, assert_p1_error};

const DOMAIN: &str = "wait.shopco.test";

/// How many times the domain's ownership record was looked up: one per check.
fn ownership_lookups(dns: &TestDns) -> usize {
    dns.asked()
        .iter()
        .filter(|a| {
            a.record_type == RecordType::TXT
                && a.name.trim_end_matches('.') == format!("_trustmail.{DOMAIN}")
        })
        .count()
}

async fn waiting_app(dns: &TestDns, cadence_s: u64) -> (TestApp, String, String) {
    let app = TestApp::with_dns(dns, |c| {
        c.dns.min_recheck_interval_s = cadence_s;
        // Requests are cut at 1 s unless they wait: the wait must extend the limit. And a
        // connection idles out after 1 s, but not while its request waits in the handler.
        c.http.request_timeout_s = 1;
        c.http.idle_timeout_s = 1;
    })
    .await;
    let env = app.environment("Shop").await;
    let id = app.domain(&env, DOMAIN).await;
    (app, env, id)
}

fn wait_path(env: &str, id: &str, timeout_s: u32) -> String {
    format!(
        "/v1/environments/{env}/emailDomains/{id}/verification?waitFor=ACTIVE&timeoutSeconds={timeout_s}"
    )
}

#[tokio::test]
async fn a_waiter_answers_within_one_check_of_the_records_publication() {
    let dns = TestDns::start().await;
    let (app, env, id) = waiting_app(&dns, 1).await;
    let path = wait_path(&env, &id, 60);
    let waiter = app.get(&path, &app.admin_token);
    // Publish right after the waiter's first check, which found nothing.
    let publisher = async {
        let domain_id = id.parse().unwrap();
        loop {
            let records = app.store().checked_records(domain_id).await.unwrap();
            if records.iter().all(|r| r.last_checked_at.is_some()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let before = ownership_lookups(&dns);
        app.publish_domain(&dns, &env, &id).await;
        before
    };
    let (response, before) = tokio::join!(waiter, publisher);
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["complete"], true, "{body:#}");
    let records = body["records"].as_array().unwrap();
    assert!(records.iter().all(|r| r["status"] == "ACTIVE"), "{body:#}");
    assert_eq!(
        ownership_lookups(&dns) - before,
        1,
        "one check after publication"
    );
}

#[tokio::test]
async fn a_waiter_answers_at_its_timeout_with_the_diagnosis() {
    let dns = TestDns::start().await;
    let (app, env, id) = waiting_app(&dns, 1).await;
    let response = app.get(&wait_path(&env, &id, 2), &app.admin_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["complete"], false, "{body:#}");
    let ownership = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"] == "OWNERSHIP")
        .unwrap();
    assert_eq!(ownership["reason"], "NOT_FOUND", "{body:#}");
    assert!(ownership["lastCheckedAt"].is_string(), "{body:#}");
    // Checked at the start and again on each cadence until the timeout, not in a loop.
    let lookups = ownership_lookups(&dns);
    assert!((2..=3).contains(&lookups), "{lookups} lookups");
}

#[tokio::test]
async fn many_waiters_on_one_domain_cost_one_check_per_cadence() {
    let dns = TestDns::start().await;
    let (app, env, id) = waiting_app(&dns, 1).await;
    let path = wait_path(&env, &id, 2);
    let waiters = (0..20).map(|_| app.get(&path, &app.admin_token));
    for response in futures_util::future::join_all(waiters).await {
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Checks at least a cadence apart within the waits' two seconds: at most three, where twenty
    // waiters checking for themselves would make sixty.
    let lookups = ownership_lookups(&dns);
    assert!((1..=3).contains(&lookups), "{lookups} lookups");
}

#[tokio::test]
async fn a_wait_for_anything_but_active_or_too_long_is_a_400() {
    let dns = TestDns::start().await;
    let (app, env, id) = waiting_app(&dns, 1).await;
    let base = format!("/v1/environments/{env}/emailDomains/{id}/verification");
    for query in [
        "waitFor=VERIFIED",
        "waitFor=ACTIVE&timeoutSeconds=301",
        "waitFor=ACTIVE&timeoutSeconds=0",
    ] {
        let response = app.get(&format!("{base}?{query}"), &app.admin_token).await;
        assert_p1_error(
            response,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some((
                "INVALID_VALUE",
                query
                    .split('&')
                    .next_back()
                    .unwrap()
                    .split('=')
                    .next()
                    .unwrap(),
            )),
        )
        .await;
    }
}

#[tokio::test]
async fn a_plain_read_says_whether_every_record_is_active() {
    let dns = TestDns::start().await;
    let (app, env, id) = waiting_app(&dns, 1).await;
    let base = format!("/v1/environments/{env}/emailDomains/{id}/verification");
    assert_eq!(app.get_json(&base).await["complete"], false);
    app.publish_domain(&dns, &env, &id).await;
    let checked: Value = app
        .post(&base, &app.admin_token, Value::Null)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(checked["complete"], true, "{checked:#}");
}

#[tokio::test]
async fn a_stopping_server_answers_its_waiters_at_once() {
    let dns = TestDns::start().await;
    let (app, env, id) = waiting_app(&dns, 1).await;
    let path = wait_path(&env, &id, 300);
    let waiter = app.get(&path, &app.admin_token);
    let stopper = async {
        let domain_id = id.parse().unwrap();
        while app
            .store()
            .checked_records(domain_id)
            .await
            .unwrap()
            .iter()
            .any(|r| r.last_checked_at.is_none())
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // What the server's shutdown does first.
        app.service.stop_waiting();
    };
    // A wait of five minutes that were not cut short would fail this bound.
    let (response, ()) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(waiter, stopper)
    })
    .await
    .expect("the waiter answered when the server began to stop");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["complete"], false, "{body:#}");
}
