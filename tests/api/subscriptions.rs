//! Webhook subscriptions in PingOne's shape: create, read, list, update (PUT), delete, a new
//! signing secret, and the errors on the way. Deliveries are in `deliveries.rs`.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{
    TestApp, UNKNOWN_ID, assert_error_snapshot, assert_p1_error, redact, redact::Names,
};

pub fn subscriptions(env: &str) -> String {
    format!("/v1/environments/{env}/subscriptions")
}

/// A subscription body as PingOne's Go SDK sends it.
pub fn subscription_body(url: &str, action_types: &[&str]) -> Value {
    json!({
        "name": "Shop hooks",
        "enabled": true,
        "httpEndpoint": {"url": url, "headers": {"Authorization": "Basic c2hvcDpodW50ZXIy"}},
        "format": "ACTIVITY",
        "filterOptions": {"includedActionTypes": action_types},
        "verifyTlsCertificates": true,
    })
}

pub async fn create(app: &TestApp, env: &str, body: Value) -> Response {
    app.post(&subscriptions(env), &app.admin_token, body).await
}

/// Creates a subscription to `url` for `action_types`: (id, signing secret).
pub async fn created(
    app: &TestApp,
    env: &str,
    url: &str,
    action_types: &[&str],
) -> (String, String) {
    let r = create(app, env, subscription_body(url, action_types)).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["signingSecret"].as_str().unwrap().to_owned(),
    )
}

const HOOK_URL: &str = "https://hooks.shopco.test/trustmail";

fn names(app: &TestApp, env: &str, id: &str) -> Names {
    app.names().with(env, "[env]").with(id, "[subscription]")
}

#[tokio::test]
async fn a_subscription_is_created_read_listed_updated_and_deleted() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = create(
        &app,
        &env,
        subscription_body(
            HOOK_URL,
            &["EMAIL_DOMAIN_CREATED", "EMAIL_DOMAIN_STATUS_UPDATED"],
        ),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let mut created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["signingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    insta::assert_json_snapshot!("created", created, {
        ".createdAt" => redact::time(),
        ".updatedAt" => redact::time(),
        ".signingSecret" => "[secret]",
        ".**" => names(&app, &env, &id).redaction(),
    });

    // A read shows everything but the secret.
    let one = format!("{}/{id}", subscriptions(&env));
    let read = app.get_json(&one).await;
    created.as_object_mut().unwrap().remove("signingSecret");
    assert_eq!(read, created);
    let list = app.get_json(&subscriptions(&env)).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["_embedded"]["subscriptions"][0], read);

    let mut update = subscription_body("https://hooks.shopco.test/v2", &["CLIENT_CREATED"]);
    update["enabled"] = json!(false);
    update["verifyTlsCertificates"] = json!(false);
    update["httpEndpoint"]["headers"] = json!({"X-Shop-Key": "k2"});
    // What a read answered may be sent back whole: read-only members are ignored.
    update["id"] = json!(UNKNOWN_ID);
    update["createdAt"] = json!("2020-01-01T00:00:00.000Z");
    let r = app.put(&one, &app.admin_token, update).await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("updated", updated, {
        ".createdAt" => redact::time(),
        ".updatedAt" => redact::time(),
        ".**" => names(&app, &env, &id).redaction(),
    });
    assert_eq!(updated["createdAt"], read["createdAt"]);
    assert_eq!(app.get_json(&one).await, updated);

    let r = app.delete(&one, &app.admin_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.get(&one, &app.admin_token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    let list = app.get_json(&subscriptions(&env)).await;
    assert_eq!(list["count"], 0);
}

#[tokio::test]
async fn creates_updates_and_deletes_are_recorded_as_activities() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (id, _) = created(&app, &env, HOOK_URL, &["CLIENT_CREATED"]).await;
    let one = format!("{}/{id}", subscriptions(&env));
    let r = app
        .put(
            &one,
            &app.admin_token,
            subscription_body(HOOK_URL, &["CLIENT_DELETED"]),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .post(&format!("{one}/secret"), &app.admin_token, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        app.delete(&one, &app.admin_token).await.status(),
        StatusCode::NO_CONTENT
    );
    let activities = app
        .get_json(&format!("/v1/environments/{env}/activities"))
        .await;
    let recorded: Vec<(&str, &str)> = activities["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"]["type"].as_str().unwrap(),
                a["resources"][0]["type"].as_str().unwrap(),
            )
        })
        .filter(|(_, resource)| *resource == "SUBSCRIPTION")
        .collect();
    assert_eq!(
        recorded
            .iter()
            .map(|(action, _)| *action)
            .collect::<Vec<_>>(),
        [
            "SUBSCRIPTION_DELETED",
            "SUBSCRIPTION_SECRET_ROTATED",
            "SUBSCRIPTION_UPDATED",
            "SUBSCRIPTION_CREATED"
        ]
    );
}

#[tokio::test]
async fn a_new_secret_is_shown_once_and_differs() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (id, first) = created(&app, &env, HOOK_URL, &["CLIENT_CREATED"]).await;
    let one = format!("{}/{id}", subscriptions(&env));
    let r = app
        .post(&format!("{one}/secret"), &app.admin_token, json!({}))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let second = body["signingSecret"].as_str().unwrap();
    assert!(second.starts_with("whsec_") && second != first, "{second}");
    assert!(app.get_json(&one).await.get("signingSecret").is_none());
}

#[tokio::test]
async fn the_secret_and_the_headers_are_sealed_at_rest() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (_, secret) = created(&app, &env, HOOK_URL, &["CLIENT_CREATED"]).await;
    let url = secrecy::ExposeSecret::expose_secret(&app.config.database_url).to_owned();
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    let row: (String, String) =
        sqlx::query_as("SELECT sealed_headers, sealed_secret FROM subscriptions")
            .fetch_one(&pool)
            .await
            .unwrap();
    let key = secret.trim_start_matches("whsec_");
    for stored in [&row.0, &row.1] {
        assert!(
            !stored.contains(key) && !stored.contains("c2hvcDpodW50ZXIy"),
            "{stored}"
        );
    }
}

#[tokio::test]
async fn a_url_that_is_not_http_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = create(
        &app,
        &env,
        subscription_body("ftp://hooks.shopco.test/", &["CLIENT_CREATED"]),
    )
    .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_action_type_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = create(&app, &env, subscription_body(HOOK_URL, &["USER.CREATED"])).await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_subscription_is_404() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = app
        .get(
            &format!("{}/{UNKNOWN_ID}", subscriptions(&env)),
            &app.admin_token,
        )
        .await;
    assert_error_snapshot!(r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn each_refused_member_names_its_target() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let base = subscription_body(HOOK_URL, &["CLIENT_CREATED"]);
    let cases: Vec<(&str, &str, Value)> = vec![
        ("REQUIRED_VALUE", "enabled", json!({"enabled": null})),
        (
            "REQUIRED_VALUE",
            "httpEndpoint.url",
            json!({"httpEndpoint": {}}),
        ),
        (
            "INVALID_VALUE",
            "httpEndpoint.url",
            json!({"httpEndpoint": {"url": "https://u:p@h.test/"}}),
        ),
        (
            "INVALID_VALUE",
            "httpEndpoint.headers",
            json!({"httpEndpoint": {"url": HOOK_URL, "headers": {"Webhook-Signature": "v1,x"}}}),
        ),
        (
            "INVALID_VALUE",
            "httpEndpoint.headers",
            json!({"httpEndpoint": {"url": HOOK_URL, "headers": {"X-A": 1}}}),
        ),
        (
            "REQUIRED_VALUE",
            "filterOptions.includedActionTypes",
            json!({"filterOptions": {}}),
        ),
        (
            "INVALID_VALUE",
            "filterOptions.includedActionTypes",
            json!({"filterOptions": {"includedActionTypes": []}}),
        ),
        (
            "INVALID_VALUE",
            "filterOptions.includedApplications",
            json!({"filterOptions": {"includedActionTypes": ["CLIENT_CREATED"], "includedApplications": [{"id": UNKNOWN_ID}]}}),
        ),
        ("INVALID_VALUE", "format", json!({"format": "SPLUNK"})),
        ("INVALID_VALUE", "protocol", json!({"protocol": "TCP_IP"})),
        (
            "INVALID_VALUE",
            "tlsClientAuthKeyPair",
            json!({"tlsClientAuthKeyPair": {"id": UNKNOWN_ID}}),
        ),
        (
            "REQUIRED_VALUE",
            "verifyTlsCertificates",
            json!({"verifyTlsCertificates": null}),
        ),
        ("REQUIRED_VALUE", "name", json!({"name": " "})),
    ];
    for (code, target, change) in cases {
        let mut body = base.clone();
        for (key, value) in change.as_object().unwrap() {
            body[key] = value.clone();
        }
        let r = create(&app, &env, body).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some((code, target)),
        )
        .await;
    }
    // Members that ask for nothing are accepted.
    let mut body = base.clone();
    body["protocol"] = json!("HTTPS");
    body["filterOptions"]["includedTags"] = json!([]);
    body["filterOptions"]["ipAddressExposed"] = json!(false);
    assert_eq!(create(&app, &env, body).await.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn read_only_clients_read_but_do_not_write() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    // Not CLIENT_CREATED: the reader's client would be delivered to a host that is not there.
    let (id, _) = created(&app, &env, HOOK_URL, &["EMAIL_DOMAIN_DELETED"]).await;
    let reader = app.token(&env, Role::ReadOnly).await;
    let one = format!("{}/{id}", subscriptions(&env));
    // The endpoint's header values are its receiver's credentials: masked for a reader, shown
    // to those who may change them.
    let read: Value = app.get(&one, &reader).await.json().await.unwrap();
    assert_eq!(read["httpEndpoint"]["headers"]["Authorization"], "****");
    let listed: Value = app
        .get(&subscriptions(&env), &reader)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["_embedded"]["subscriptions"][0]["httpEndpoint"]["headers"]["Authorization"],
        "****"
    );
    assert_eq!(
        app.get_json(&one).await["httpEndpoint"]["headers"]["Authorization"],
        "Basic c2hvcDpodW50ZXIy"
    );
    let deliveries = app.get(&format!("{one}/deliveries"), &reader).await;
    assert_eq!(deliveries.status(), StatusCode::OK);
    let body = subscription_body(HOOK_URL, &["CLIENT_CREATED"]);
    for r in [
        app.post(&subscriptions(&env), &reader, body.clone()).await,
        app.put(&one, &reader, body).await,
        app.delete(&one, &reader).await,
        app.post(&format!("{one}/secret"), &reader, json!({})).await,
    ] {
        assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    }
}
