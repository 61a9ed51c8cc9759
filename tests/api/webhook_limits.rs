//! What webhooks may not do: reach addresses off the public internet (by address, or by a name
//! that resolves there) unless the operator allows it, and outnumber
//! `limits.subscriptions_per_environment`, also under concurrent creates.

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::Value;

use crate::subscriptions::{create, created, subscription_body, subscriptions};
use crate::support::{
    Db, TestApp, WebhookReceiver, assert_error_snapshot, assert_p1_error, backends,
};

/// An app that refuses private endpoints (the default outside tests), retrying after 50 ms.
async fn guarded(db: Db) -> TestApp {
    TestApp::spawn_on(db, |c| {
        c.webhooks.allow_private_endpoints = false;
        c.webhooks.first_retry_ms = 50;
    })
    .await
}

const PUBLIC_HOOK: &str = "https://hooks.shopco.test/";

/// One more subscription in `env`, to a public endpoint.
async fn subscribe(app: &TestApp, env: &str) {
    created(app, env, PUBLIC_HOOK, &["CLIENT_CREATED"]).await;
}

/// The subscription's newest delivery once it has been attempted (within 20 s).
async fn attempted(app: &TestApp, env: &str, subscription: &str) -> Value {
    let path = format!("{}/{subscription}/deliveries", subscriptions(env));
    for _ in 0..400 {
        let page = app.get_json(&path).await;
        let newest = &page["_embedded"]["deliveries"][0];
        if newest["attempts"].as_u64().is_some_and(|n| n > 0) {
            return newest.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery was never attempted");
}

#[tokio::test]
async fn endpoints_on_private_addresses_are_refused_at_create_and_update() {
    let app = guarded(Db::Sqlite).await;
    let env = app.environment("Shop").await;
    for url in [
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.8:8080/",
        "http://[fd00::8]/",
        "http://100.64.0.1/",
    ] {
        let r = create(&app, &env, subscription_body(url, &["CLIENT_CREATED"])).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some(("INVALID_VALUE", "httpEndpoint.url")),
        )
        .await;
    }
    let metadata = subscription_body("http://169.254.169.254/", &["CLIENT_CREATED"]);
    assert_error_snapshot!(create(&app, &env, metadata).await, StatusCode::BAD_REQUEST);

    let public = "https://93.184.215.14/hook";
    let (id, _) = created(&app, &env, public, &["CLIENT_CREATED"]).await;
    let one = format!("{}/{id}", subscriptions(&env));
    let body = subscription_body("http://[::ffff:127.0.0.1]/", &["CLIENT_CREATED"]);
    let r = app.put(&one, &app.admin_token, body).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "httpEndpoint.url")),
    )
    .await;
    let kept = app.get_json(&one).await;
    assert_eq!(kept["httpEndpoint"]["url"], public);
}

#[tokio::test]
async fn an_operator_may_allow_private_endpoints() {
    let app = TestApp::spawn_on(Db::Sqlite, |c| c.webhooks.allow_private_endpoints = true).await;
    let env = app.environment("Shop").await;
    created(&app, &env, "http://169.254.169.254/", &["CLIENT_CREATED"]).await;
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_not_delivered_and_says_why() {
    let app = guarded(Db::Sqlite).await;
    let receiver = WebhookReceiver::start().await;
    let env = app.environment("Shop").await;
    // The receiver listens on 127.0.0.1; `localhost` names it.
    let url = receiver.url.replace("127.0.0.1", "localhost");
    let (id, _) = created(&app, &env, &url, &["EMAIL_DOMAIN_CREATED"]).await;
    app.domain(&env, "auth.shopco.test").await;

    let delivery = attempted(&app, &env, &id).await;
    let error = delivery["lastError"].as_str().unwrap();
    // What was refused, for any reader of the deliveries; the address is for the log only.
    assert!(
        error.contains(
            "localhost resolves only to addresses off the public internet (a loopback address)"
        ),
        "{error}"
    );
    assert!(!error.contains("127.0.0.1"), "{error}");
    assert!(
        error.contains("webhooks.allow_private_endpoints"),
        "{error}"
    );
    assert_eq!(delivery["lastStatus"], Value::Null);
    assert!(receiver.received().is_empty());
}

#[tokio::test]
async fn an_address_allowed_once_is_not_delivered_to_after_the_operator_disallows_it() {
    let mut app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.webhooks.allow_private_endpoints = true;
        c.webhooks.first_retry_ms = 50;
    })
    .await;
    let receiver = WebhookReceiver::start().await;
    let env = app.environment("Shop").await;
    let (id, _) = created(&app, &env, &receiver.url, &["CLIENT_CREATED"]).await;
    app.config.webhooks.allow_private_endpoints = false;
    let app = app.restart().await;
    let r = app
        .post(
            &format!("/v1/environments/{env}/clients"),
            &app.admin_token,
            serde_json::json!({"name": "Worker", "role": "READ_ONLY"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);

    let delivery = attempted(&app, &env, &id).await;
    let error = delivery["lastError"].as_str().unwrap();
    assert!(
        error.starts_with("the URL's host is a loopback address; webhooks go only to public"),
        "{error}"
    );
    assert!(
        error.contains("webhooks.allow_private_endpoints = true"),
        "{error}"
    );
    assert!(receiver.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_subscriptions_per_environment_hold_under_concurrent_creates() {
    for db in backends("the_subscriptions_per_environment_hold_under_concurrent_creates").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        assert_eq!(app.config.limits.subscriptions_per_environment, 10);
        let env = app.environment("Crowd").await;
        let body = subscription_body(PUBLIC_HOOK, &["CLIENT_CREATED"]);
        let responses = join_all((0..16).map(|_| create(&app, &env, body.clone()))).await;
        let mut made = 0;
        for r in responses {
            match r.status() {
                StatusCode::CREATED => made += 1,
                StatusCode::BAD_REQUEST => {
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(body["details"][0]["code"], "SIZE_LIMIT_EXCEEDED", "{body}");
                    assert_eq!(body["details"][0]["innerError"]["maximumValue"], 10);
                }
                other => panic!("{db:?}: unexpected {other}"),
            }
        }
        assert_eq!(made, 10, "{db:?}");
        let list = app.get_json(&subscriptions(&env)).await;
        let listed = list["_embedded"]["subscriptions"].as_array().unwrap();
        assert_eq!(listed.len(), 10, "{db:?}");

        // Another environment has its own ten; a delete frees a place.
        let other = app.environment("Elsewhere").await;
        subscribe(&app, &other).await;
        let first = listed[0]["id"].as_str().unwrap();
        let r = app
            .delete(
                &format!("{}/{first}", subscriptions(&env)),
                &app.admin_token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        subscribe(&app, &env).await;
    }
}

#[tokio::test]
async fn a_create_past_the_limit_is_400_size_limit_exceeded() {
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.limits.subscriptions_per_environment = 2;
    })
    .await;
    let env = app.environment("Shop").await;
    for _ in 0..2 {
        subscribe(&app, &env).await;
    }
    let body = subscription_body(PUBLIC_HOOK, &["CLIENT_CREATED"]);
    assert_error_snapshot!(create(&app, &env, body).await, StatusCode::BAD_REQUEST);
}

/// The message of the 400 INVALID_VALUE on `httpEndpoint.url` that a create of `url` gets.
async fn refused_url(app: &TestApp, url: &str) -> String {
    let env = app.environment("Shop").await;
    let r = create(app, &env, subscription_body(url, &["CLIENT_CREATED"])).await;
    let body = crate::support::p1_error(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["details"][0]["code"], "INVALID_VALUE", "{body}");
    assert_eq!(body["details"][0]["target"], "httpEndpoint.url", "{body}");
    body["details"][0]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn http_endpoints_are_refused_naming_the_key_unless_the_operator_allows_them() {
    let app = TestApp::spawn_on(Db::Sqlite, |c| c.webhooks.allow_http_endpoints = false).await;
    let message = refused_url(&app, "http://hooks.shopco.test/").await;
    assert!(
        message.contains("webhooks.allow_http_endpoints = true"),
        "{message}"
    );
    assert!(!message.contains("allow_private"), "{message}");

    // A local receiver in development needs both switches; the message names both.
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.webhooks.allow_http_endpoints = false;
        c.webhooks.allow_private_endpoints = false;
    })
    .await;
    let message = refused_url(&app, "http://127.0.0.1:8080/").await;
    for key in [
        "webhooks.allow_http_endpoints = true",
        "webhooks.allow_private_endpoints = true",
    ] {
        assert!(message.contains(key), "{message}");
    }
}

#[tokio::test]
async fn with_both_switches_a_local_http_receiver_is_delivered_to() {
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.webhooks.allow_http_endpoints = true;
        c.webhooks.allow_private_endpoints = true;
    })
    .await;
    let receiver = WebhookReceiver::start().await;
    let env = app.environment("Shop").await;
    assert!(receiver.url.starts_with("http://127.0.0.1:"));
    created(&app, &env, &receiver.url, &["EMAIL_DOMAIN_CREATED"]).await;
    app.domain(&env, "auth.shopco.test").await;
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].json()["action"]["type"], "EMAIL_DOMAIN_CREATED");
}

#[tokio::test]
async fn a_stored_http_endpoint_is_not_delivered_to_once_http_is_disallowed() {
    let mut app = TestApp::spawn_on(Db::Sqlite, |c| c.webhooks.first_retry_ms = 50).await;
    let receiver = WebhookReceiver::start().await;
    let env = app.environment("Shop").await;
    let (id, _) = created(&app, &env, &receiver.url, &["EMAIL_DOMAIN_CREATED"]).await;
    app.config.webhooks.allow_http_endpoints = false;
    let app = app.restart().await;
    app.domain(&env, "auth.shopco.test").await;
    let delivery = attempted(&app, &env, &id).await;
    let error = delivery["lastError"].as_str().unwrap();
    assert!(
        error.contains("webhooks.allow_http_endpoints = true"),
        "{error}"
    );
    assert!(receiver.received().is_empty());
}
