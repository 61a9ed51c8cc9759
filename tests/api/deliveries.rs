//! Webhook deliveries end to end: signed the Standard Webhooks way, retried until the endpoint
//! takes them, TLS verified or not as asked, held while disabled, kept across a restart. The
//! queue's leases and schedule are in `delivery_queue.rs`.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::Value;
use trustmail::domain::DeliveryState;

use crate::delivery_queue::client_created;
use crate::subscriptions::{create, created, subscription_body, subscriptions};
use crate::support::{Db, TestApp, WebhookReceiver, backends, receiver::Received, redact};

/// An app whose first retry comes after 50 ms, so a test sees several attempts at once.
async fn quick_retries(db: Db) -> TestApp {
    TestApp::spawn_on(db, |c| c.webhooks.first_retry_ms = 50).await
}

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, computed here with aws-lc-rs from
/// the scheme's definition, not with the code under test.
fn expected_signature(secret: &str, received: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut signed = format!(
        "{}.{}.",
        received.header("webhook-id"),
        received.header("webhook-timestamp")
    )
    .into_bytes();
    signed.extend_from_slice(&received.body);
    format!("v1,{}", STANDARD.encode(hmac::sign(&key, &signed)))
}

/// The subscription's deliveries once the newest is no longer PENDING (within 20 s).
async fn settled_deliveries(app: &TestApp, env: &str, subscription: &str) -> Value {
    let path = format!("{}/{subscription}/deliveries", subscriptions(env));
    for _ in 0..400 {
        let page = app.get_json(&path).await;
        if page["_embedded"]["deliveries"][0]["state"] != "PENDING" {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the delivery stayed PENDING");
}

/// The environment's newest activity of `action`, as `GET …/activities` lists it.
async fn listed_activity(app: &TestApp, env: &str, action: &str) -> Value {
    let list = app
        .get_json(&format!("/v1/environments/{env}/activities"))
        .await;
    list["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["action"]["type"] == action)
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_delivery_carries_the_activity_and_verifies_with_the_subscriptions_secret() {
    let app = quick_retries(Db::Sqlite).await;
    let receiver = WebhookReceiver::start().await;
    let env = app.environment("Shop").await;
    let (id, secret) = created(&app, &env, &receiver.url, &["EMAIL_DOMAIN_CREATED"]).await;
    app.domain(&env, "auth.shopco.test").await;

    let received = receiver.wait_for(1).await;
    let delivery = &received[0];
    let activity = listed_activity(&app, &env, "EMAIL_DOMAIN_CREATED").await;
    assert_eq!(delivery.json(), activity);
    assert_eq!(delivery.header("webhook-id"), activity["id"]);
    assert_eq!(delivery.header("content-type"), "application/json");
    assert_eq!(delivery.header("authorization"), "Basic c2hvcDpodW50ZXIy");
    assert_eq!(
        delivery.header("webhook-signature"),
        expected_signature(&secret, delivery)
    );
    // And as the scheme's reference library checks it (the timestamp within 5 minutes).
    standardwebhooks::Webhook::new(&secret)
        .unwrap()
        .verify(&delivery.body, &delivery.headers)
        .unwrap();

    let page = settled_deliveries(&app, &env, &id).await;
    let names = app
        .names()
        .with(&env, "[env]")
        .with(&id, "[subscription]")
        .with(activity["id"].as_str().unwrap(), "[activity]");
    insta::assert_json_snapshot!(page, {
        "._embedded.deliveries[].createdAt" => redact::time(),
        "._embedded.deliveries[].deliveredAt" => redact::time(),
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn an_endpoint_that_fails_twice_gets_the_delivery_on_the_third_attempt() {
    let app = quick_retries(Db::Sqlite).await;
    let receiver = WebhookReceiver::answering([
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::SERVICE_UNAVAILABLE,
    ])
    .await;
    let env = app.environment("Shop").await;
    let (id, secret) = created(&app, &env, &receiver.url, &["EMAIL_DOMAIN_CREATED"]).await;
    app.domain(&env, "auth.shopco.test").await;

    let received = receiver.wait_for(3).await;
    let activity = listed_activity(&app, &env, "EMAIL_DOMAIN_CREATED").await;
    for attempt in &received {
        // One message: the same id and body every time, each attempt signed anew.
        assert_eq!(attempt.header("webhook-id"), activity["id"]);
        assert_eq!(attempt.body, received[0].body);
        assert_eq!(
            attempt.header("webhook-signature"),
            expected_signature(&secret, attempt)
        );
    }
    let page = settled_deliveries(&app, &env, &id).await;
    let delivery = &page["_embedded"]["deliveries"][0];
    assert_eq!(delivery["state"], "DELIVERED", "{page}");
    assert_eq!(delivery["attempts"], 3, "{page}");
    assert_eq!(delivery["lastStatus"], 204, "{page}");
    assert_eq!(page["count"], 1);
}

#[tokio::test]
async fn verify_tls_certificates_false_trusts_a_certificate_that_true_refuses() {
    let app = quick_retries(Db::Sqlite).await;
    let receiver = WebhookReceiver::self_signed().await;
    let env = app.environment("Shop").await;
    let mut ids = Vec::new();
    for verify in [true, false] {
        let mut body = subscription_body(&receiver.url, &["EMAIL_DOMAIN_CREATED"]);
        body["verifyTlsCertificates"] = verify.into();
        body["httpEndpoint"]["headers"] = serde_json::json!({"X-Verify": verify.to_string()});
        let r = create(&app, &env, body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        ids.push(
            r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    app.domain(&env, "auth.shopco.test").await;

    let trusting = settled_deliveries(&app, &env, &ids[1]).await;
    assert_eq!(
        trusting["_embedded"]["deliveries"][0]["state"], "DELIVERED",
        "{trusting}"
    );
    // The verifying subscription's attempts fail in the handshake, before any request.
    let path = format!("{}/{}/deliveries", subscriptions(&env), ids[0]);
    let verifying = loop {
        let page = app.get_json(&path).await;
        if page["_embedded"]["deliveries"][0]["attempts"].as_u64() >= Some(1) {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let delivery = &verifying["_embedded"]["deliveries"][0];
    assert!(delivery.get("lastStatus").is_none(), "{verifying}");
    let error = delivery["lastError"].as_str().unwrap();
    assert!(error.contains("certificate"), "{error}");
    assert!(
        receiver
            .received()
            .iter()
            .all(|r| r.header("x-verify") == "false"),
        "a request reached the endpoint over a refused certificate"
    );
}

#[tokio::test]
async fn a_disabled_subscription_keeps_its_deliveries_and_sends_them_once_enabled() {
    let app = quick_retries(Db::Sqlite).await;
    let receiver = WebhookReceiver::start().await;
    let env = app.environment("Shop").await;
    let mut body = subscription_body(&receiver.url, &["EMAIL_DOMAIN_CREATED"]);
    body["enabled"] = false.into();
    let r = create(&app, &env, body.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.domain(&env, "auth.shopco.test").await;

    let one = format!("{}/{id}", subscriptions(&env));
    let page = app.get_json(&format!("{one}/deliveries")).await;
    let delivery = &page["_embedded"]["deliveries"][0];
    assert_eq!(delivery["state"], "PENDING", "{page}");
    assert_eq!(delivery["attempts"], 0, "{page}");
    assert!(delivery["nextAttemptAt"].is_string(), "{page}");

    body["enabled"] = true.into();
    let r = app.put(&one, &app.admin_token, body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let received = receiver.wait_for(1).await;
    let activity = listed_activity(&app, &env, "EMAIL_DOMAIN_CREATED").await;
    assert_eq!(received[0].header("webhook-id"), activity["id"]);
}

#[tokio::test]
async fn a_delivery_queued_before_a_restart_is_delivered_after_it() {
    for db in backends("a_delivery_queued_before_a_restart_is_delivered_after_it").await {
        let mut app = quick_retries(db.clone()).await;
        let receiver = WebhookReceiver::start().await;
        let env = app.environment("Shop").await;
        let (id, _) = created(&app, &env, &receiver.url, &["CLIENT_CREATED"]).await;
        app.stop().await;

        let store = app.open_store().await;
        let activity = client_created(&store, env.parse().unwrap()).await;
        let subscription = id.parse().unwrap();
        let (queued, _) = store.list_deliveries(subscription, 10, 0).await.unwrap();
        assert_eq!(queued.len(), 1, "{db:?}");
        assert_eq!(queued[0].activity_id, activity.id);
        assert_eq!(queued[0].state, DeliveryState::Pending);
        store.close().await;
        assert!(receiver.received().is_empty(), "{db:?}");

        let _app = app.restart().await;
        let received = receiver.wait_for(1).await;
        assert_eq!(received[0].header("webhook-id"), activity.id.to_string());
    }
}
