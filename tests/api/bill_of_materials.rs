//! `…/billOfMaterials`: read and replaced as PingOne's Terraform provider does (its
//! `services` attribute).

use reqwest::StatusCode;
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::{
    environments::assert_answers_as_sent,
    support::{TestApp, UNKNOWN_ID, assert_error_snapshot, assert_p1_error, redact},
};

fn path(env: &str) -> String {
    format!("/v1/environments/{env}/billOfMaterials")
}

/// The products of `MinimalEnvironmentNoPopulation` in terraform-provider-pingone
/// internal/acctest/legacysdk/acctest_legacy_sdk.go, as the SDK sends them (SSO, DaVinci with
/// its tag, MFA, Risk, Credentials, Verify).
fn provider_products() -> Value {
    json!([
        {"type": "PING_ONE_BASE"},
        {"type": "PING_ONE_DAVINCI", "tags": ["DAVINCI_MINIMAL"]},
        {"type": "PING_ONE_MFA"},
        {"type": "PING_ONE_RISK"},
        {"type": "PING_ONE_CREDENTIALS"},
        {"type": "PING_ONE_VERIFY"}
    ])
}

#[tokio::test]
async fn a_new_environment_has_the_base_services_alone() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let bill = app.get_json(&path(&env)).await;
    let names = app.names().with(&env, "[env]");
    insta::assert_json_snapshot!(bill, {
        ".createdAt" => redact::time(),
        ".updatedAt" => redact::time(),
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn the_providers_services_round_trip_through_put() {
    let app = TestApp::spawn().await;
    let created: Value = app
        .post(
            "/v1/environments",
            &app.admin_token,
            json!({"name": "tf", "region": "NA", "billOfMaterials": {
                "solutionType": "CUSTOMER", "products": [{"type": "PING_ONE_BASE"}]}}),
        )
        .await
        .json()
        .await
        .unwrap();
    let env = created["id"].as_str().unwrap();
    // UpdateBillOfMaterials in internal/service/base/resource_environment.go sends the
    // environment's whole BillOfMaterials, solution included (PingOne ignores it on a PUT).
    let sent = json!({"solutionType": "CUSTOMER", "products": provider_products()});
    let r = app.put(&path(env), &app.admin_token, sent.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_answers_as_sent(&sent, &updated, "updated");
    assert_eq!(app.get_json(&path(env)).await, updated);
    let environment = app.get_json(&format!("/v1/environments/{env}")).await;
    assert_eq!(environment["billOfMaterials"], updated);
    // testAccEnvironmentConfig_Full's second service: console and bookmarks.
    let federate = json!({"products": [{"type": "PING_ONE_BASE"}, {
        "type": "PING_FEDERATE", "console": {"href": "https://my-console-url"},
        "bookmarks": [{"name": "Bookmark 1", "href": "https://my-bookmark-1"},
                      {"name": "Bookmark 2", "href": "https://my-bookmark-2"}]}]});
    let updated: Value = app
        .put(&path(env), &app.admin_token, federate.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_answers_as_sent(&federate, &updated, "federate");
    assert_eq!(updated["solutionType"], "CUSTOMER");
}

#[tokio::test]
async fn a_put_keeps_the_solution_the_create_set() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let sent = json!({"solutionType": "WORKFORCE", "products": [{"type": "PING_ONE_BASE"}]});
    let updated: Value = app
        .put(&path(&env), &app.admin_token, sent)
        .await
        .json()
        .await
        .unwrap();
    assert!(updated.get("solutionType").is_none(), "{updated}");
}

#[tokio::test]
async fn a_bill_without_products_is_400_required_value() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = app
        .put(
            &path(&env),
            &app.admin_token,
            json!({"solutionType": "CUSTOMER"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_sixth_bookmark_or_a_repeated_product_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let six: Vec<Value> = (1..=6)
        .map(|i| json!({"name": format!("Bookmark {i}"), "href": "https://x"}))
        .collect();
    let body = json!({"products": [{"type": "PING_ONE_BASE", "bookmarks": six}]});
    let r = app.put(&path(&env), &app.admin_token, body).await;
    let detail = Some(("INVALID_VALUE", "products[0].bookmarks"));
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
    let body = json!({"products": [{"type": "PING_ONE_MFA"}, {"type": "PING_ONE_MFA"}]});
    let r = app.put(&path(&env), &app.admin_token, body).await;
    let detail = Some(("INVALID_VALUE", "products"));
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
}

#[tokio::test]
async fn environment_admins_read_it_and_only_organization_admins_replace_it() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let token = app.token(&env, Role::EnvironmentAdmin).await;
    assert_eq!(app.get(&path(&env), &token).await.status(), StatusCode::OK);
    let body = json!({"products": [{"type": "PING_ONE_MFA"}]});
    let r = app.put(&path(&env), &token, body).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    let r = app.get(&path(UNKNOWN_ID), &app.admin_token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn a_put_on_another_replica_keeps_a_rename_it_has_not_seen_yet() {
    let a = TestApp::spawn().await;
    let b = a.replica().await;
    let env = a.environment("Before").await;
    let one = format!("/v1/environments/{env}");
    // B holds the environment in its read cache, as it was.
    assert_eq!(b.get_json(&one).await["name"], "Before");
    let renamed = a
        .put(
            &one,
            &a.admin_token,
            json!({"name": "After", "region": "NA"}),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    // Terraform's next call, on the other replica within its cache's staleness.
    let products = json!({"products": provider_products()});
    let r = b.put(&path(&env), &b.admin_token, products).await;
    assert_eq!(r.status(), StatusCode::OK);
    let environment = a.get_json(&one).await;
    assert_eq!(environment["name"], "After", "{environment:#}");
    assert_eq!(
        environment["billOfMaterials"]["products"]
            .as_array()
            .unwrap()
            .len(),
        provider_products().as_array().unwrap().len()
    );
}
