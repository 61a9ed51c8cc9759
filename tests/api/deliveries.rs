//! Webhook deliveries: signed the Standard Webhooks way, retried until the endpoint takes them,
//! kept across a restart, and leased so that two deliverers never take the same one.

use std::{collections::HashSet, time::Duration};

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::Value;
use trustmail::{
    domain::{
        Activity, ActivityType, Client, ClientId, DeliveryState, EnvironmentId, ResourceType, Role,
        now,
    },
    store::{DeliveryOutcome, Store},
};

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

/// A client and its CLIENT_CREATED activity, written straight to `store` (as a write of the
/// API would, with the app stopped so that no deliverer runs): the activity.
async fn client_created(store: &Store, env: EnvironmentId) -> Activity {
    let client = Client {
        id: ClientId::new(),
        environment_id: env,
        name: "Worker".into(),
        role: Role::ReadOnly,
        secret_hash: "not a hash: this client never asks for a token".into(),
        created_at: now(),
    };
    let activity = Activity::new(
        env,
        ActivityType::ClientCreated,
        None,
        ResourceType::Client,
        client.id,
        &client.name,
    );
    store.insert_client(&client, &activity).await.unwrap();
    activity
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

const LEASE: Duration = Duration::from_secs(60);

/// A stopped app whose environment has an enabled subscription to CLIENT_CREATED and `count`
/// activities queued for it: (app, store, the subscription's id).
async fn queued(db: Db, count: usize) -> (TestApp, Store, String) {
    let mut app = TestApp::spawn_on(db, |_| {}).await;
    let env = app.environment("Shop").await;
    // Nothing answers there: no delivery of this test is ever sent.
    let (id, _) = created(&app, &env, "http://127.0.0.1:9/hook", &["CLIENT_CREATED"]).await;
    app.stop().await;
    let store = app.open_store().await;
    for _ in 0..count {
        client_created(&store, env.parse().unwrap()).await;
    }
    (app, store, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliverers_never_claim_the_same_delivery() {
    for db in backends("concurrent_deliverers_never_claim_the_same_delivery").await {
        let (_app, store, _) = queued(db.clone(), 30).await;
        let at = now() + Duration::from_millis(10);
        let deliverers: Vec<_> = (0..4)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    let owner = format!("deliverer-{n}");
                    let mut mine = Vec::new();
                    loop {
                        let batch = store
                            .claim_due_deliveries(&owner, at, LEASE, 3)
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            return mine;
                        }
                        mine.extend(batch.into_iter().map(|d| d.activity.id));
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
        assert_eq!(claimed.len(), 30, "{db:?}");
        let again = store
            .claim_due_deliveries("late", at, LEASE, 100)
            .await
            .unwrap();
        assert!(again.is_empty(), "{db:?}");
    }
}

#[tokio::test]
async fn only_the_lease_holder_records_and_a_lapsed_lease_passes_on() {
    for db in backends("only_the_lease_holder_records_and_a_lapsed_lease_passes_on").await {
        let (_app, store, _) = queued(db.clone(), 1).await;
        let t0 = now() + Duration::from_millis(10);
        let first = store
            .claim_due_deliveries("a", t0, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(first.len(), 1, "{db:?}");
        let d = &first[0];
        let delivered = DeliveryOutcome::Delivered { status: 204 };
        let by_b = store
            .record_delivery(d.subscription_id, d.activity.id, "b", &delivered, t0, LEASE)
            .await
            .unwrap();
        assert_eq!(by_b, None, "{db:?}");
        // Once a's lease has run out, b takes the delivery and its outcome counts; a's does not.
        let later = t0 + LEASE + Duration::from_secs(1);
        let second = store
            .claim_due_deliveries("b", later, LEASE, 10)
            .await
            .unwrap();
        assert_eq!(second.len(), 1, "{db:?}");
        let by_a = store
            .record_delivery(
                d.subscription_id,
                d.activity.id,
                "a",
                &delivered,
                later,
                LEASE,
            )
            .await
            .unwrap();
        assert_eq!(by_a, None, "{db:?}");
        let by_b = store
            .record_delivery(
                d.subscription_id,
                d.activity.id,
                "b",
                &delivered,
                later,
                LEASE,
            )
            .await
            .unwrap();
        assert_eq!(by_b, Some((DeliveryState::Delivered, 1)), "{db:?}");
    }
}

#[tokio::test]
async fn failed_attempts_follow_the_schedule_then_fail() {
    for db in backends("failed_attempts_follow_the_schedule_then_fail").await {
        let (_app, store, _) = queued(db.clone(), 1).await;
        let first_retry = Duration::from_secs(5);
        let mut at = now() + Duration::from_millis(10);
        let mut waits = Vec::new();
        loop {
            let claimed = store
                .claim_due_deliveries("a", at, LEASE, 10)
                .await
                .unwrap();
            assert_eq!(claimed.len(), 1, "{db:?}");
            let d = &claimed[0];
            let failed = DeliveryOutcome::Failed {
                status: Some(500),
                error: "the endpoint answered 500".into(),
            };
            let recorded = store
                .record_delivery(
                    d.subscription_id,
                    d.activity.id,
                    "a",
                    &failed,
                    at,
                    first_retry,
                )
                .await
                .unwrap()
                .unwrap();
            let (deliveries, _) = store
                .list_deliveries(d.subscription_id, 1, 0)
                .await
                .unwrap();
            let delivery = &deliveries[0];
            assert_eq!(delivery.last_status, Some(500));
            match recorded {
                (DeliveryState::Pending, _) => {
                    let next = delivery.next_attempt_at.unwrap();
                    waits.push((next - at).whole_seconds());
                    // Not due a moment before its time.
                    let early = next - Duration::from_millis(1);
                    assert!(
                        store
                            .claim_due_deliveries("a", early, LEASE, 10)
                            .await
                            .unwrap()
                            .is_empty()
                    );
                    at = next;
                }
                (state, attempts) => {
                    assert_eq!(state, DeliveryState::Failed, "{db:?}");
                    assert_eq!(attempts, 9, "{db:?}");
                    break;
                }
            }
        }
        assert_eq!(
            waits,
            [5, 30, 300, 1800, 7200, 18000, 36000, 36000],
            "{db:?}"
        );
    }
}
