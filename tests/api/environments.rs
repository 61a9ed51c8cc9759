//! Environments: create, list, read, update, delete (which removes everything inside), and
//! the fields PingOne's Terraform provider sends and reads back.

use reqwest::StatusCode;
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{TestApp, assert_error_snapshot, assert_p1_error, redact};

/// Snapshots an environment (or a list of them): every time checked and redacted, and each
/// value of `names` shown by name.
macro_rules! assert_environment_snapshot {
    ($value:expr, $names:expr) => {
        insta::assert_json_snapshot!($value, {
            ".**.createdAt" => redact::time(),
            ".**.updatedAt" => redact::time(),
            ".**" => $names.redaction(),
        });
    };
}

/// The license id PingOne's acceptance tests send (any UUID of the organization's).
const LICENSE: &str = "4a9c4c8e-6b1a-4d53-9c3e-2f1f0e0c7a11";

/// What `pingone_environment` sends for `testAccEnvironmentConfig_Full` (the Go SDK's
/// `Environment` built by `expand` in terraform-provider-pingone
/// internal/service/base/resource_environment.go; `services` become `billOfMaterials.products`
/// through the SDK's product map, SSO = PING_ONE_BASE).
fn provider_full_body(name: &str) -> Value {
    json!({
        "license": {"id": LICENSE},
        "name": name,
        "region": "NA",
        "type": "SANDBOX",
        "description": "Test description",
        "billOfMaterials": {
            "solutionType": "CUSTOMER",
            "products": [
                {"type": "PING_ONE_BASE"},
                {
                    "type": "PING_FEDERATE",
                    "console": {"href": "https://my-console-url"},
                    "bookmarks": [
                        {"name": "Bookmark 1", "href": "https://my-bookmark-1"},
                        {"name": "Bookmark 2", "href": "https://my-bookmark-2"}
                    ]
                }
            ]
        }
    })
}

/// Every member of `sent` is in `answer` with the same value (objects compared member by
/// member, so what only the answer has, such as ids and links, is left out).
pub fn assert_answers_as_sent(sent: &Value, answer: &Value, at: &str) {
    match sent {
        Value::Object(members) => {
            for (key, value) in members {
                let path = format!("{at}.{key}");
                assert_answers_as_sent(value, &answer[key.as_str()], &path);
            }
        }
        _ => assert_eq!(answer, sent, "{at}"),
    }
}

/// Creates "Shop EU" (with stray spaces in its name) and returns the 201's body.
async fn create_shop(app: &TestApp) -> Value {
    let r = app
        .post(
            "/v1/environments",
            &app.admin_token,
            json!({"name": " Shop EU ", "region": "EU"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

#[tokio::test]
async fn creating_an_environment_answers_201_with_the_trimmed_name_and_pingones_defaults() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    assert!(redact::is_uuid(created["id"].as_str().unwrap()));
    let names = app.names().with(created["id"].as_str().unwrap(), "[id]");
    assert_environment_snapshot!(created, names);
}

#[tokio::test]
async fn the_providers_full_environment_reads_back_as_sent() {
    let app = TestApp::spawn().await;
    let sent = provider_full_body("tf-env-1");
    let r = app
        .post("/v1/environments", &app.admin_token, sent.clone())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_answers_as_sent(&sent, &created, "created");
    let path = format!("/v1/environments/{}", created["id"].as_str().unwrap());
    let read = app.get_json(&path).await;
    assert_answers_as_sent(&sent, &read, "read");
    let bill = app.get_json(&format!("{path}/billOfMaterials")).await;
    assert_answers_as_sent(&sent["billOfMaterials"], &bill, "billOfMaterials");
}

#[tokio::test]
async fn the_providers_minimal_environment_answers_no_description_and_no_solution() {
    let app = TestApp::spawn().await;
    // testAccEnvironmentConfig_Minimal: `description` and `solution` unset.
    let sent = json!({
        "license": {"id": LICENSE}, "name": "tf-min", "region": "NA", "type": "SANDBOX",
        "billOfMaterials": {"products": [{"type": "PING_ONE_BASE"}]}
    });
    let created: Value = app
        .post("/v1/environments", &app.admin_token, sent.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_answers_as_sent(&sent, &created, "created");
    assert!(created.get("description").is_none(), "{created}");
    assert!(created["billOfMaterials"].get("solutionType").is_none());
}

#[tokio::test]
async fn an_environment_without_a_license_answers_the_configured_default() {
    let configured = "0b9a1b4e-1f2a-4c3d-8e5f-6a7b8c9d0e1f";
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.environments.default_license_id = configured.into();
    })
    .await;
    let created = create_shop(&app).await;
    assert_eq!(created["license"]["id"], configured);
    assert_eq!(created["type"], "SANDBOX");
}

#[tokio::test]
async fn a_put_replaces_name_description_and_license_as_the_provider_sends_them() {
    let app = TestApp::spawn().await;
    let created: Value = app
        .post(
            "/v1/environments",
            &app.admin_token,
            provider_full_body("tf-env-1"),
        )
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/v1/environments/{}", created["id"].as_str().unwrap());
    // The provider's Update sends the whole Environment again, renamed.
    let sent = provider_full_body("tf-env-2");
    let r = app.put(&path, &app.admin_token, sent.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    for member in ["name", "description", "type", "region", "license"] {
        assert_eq!(updated[member], sent[member], "{member}");
    }
    assert_eq!(app.get_json(&path).await, updated);
    // Without a description or a license: the description is gone, the license the default.
    let bare = json!({"name": "tf-env-3", "region": "NA", "type": "SANDBOX"});
    let updated: Value = app
        .put(&path, &app.admin_token, bare)
        .await
        .json()
        .await
        .unwrap();
    assert!(updated.get("description").is_none(), "{updated}");
    assert_eq!(
        updated["license"]["id"],
        trustmail::config::DEFAULT_LICENSE_ID
    );
    // A PUT of the environment leaves its bill of materials alone.
    assert_eq!(
        updated["billOfMaterials"]["products"],
        sent["billOfMaterials"]["products"]
    );
}

#[tokio::test]
async fn the_type_moves_from_sandbox_to_production_through_put_type() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    let path = format!("/v1/environments/{}", created["id"].as_str().unwrap());
    let r = app
        .put(
            &format!("{path}/type"),
            &app.admin_token,
            json!({"type": "PRODUCTION"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["type"], "PRODUCTION");
    assert_eq!(app.get_json(&path).await["type"], "PRODUCTION");
}

#[tokio::test]
async fn an_unknown_environment_type_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/environments",
            &app.admin_token,
            json!({"name": "Shop", "region": "NA", "type": "STAGING"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_unknown_product_type_is_400_invalid_value_naming_it() {
    let app = TestApp::spawn().await;
    let mut body = provider_full_body("tf");
    body["billOfMaterials"]["products"][1]["type"] = json!("PingFederate");
    let r = app.post("/v1/environments", &app.admin_token, body).await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_put_changing_the_region_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    let path = format!("/v1/environments/{}", created["id"].as_str().unwrap());
    let r = app
        .put(
            &path,
            &app.admin_token,
            json!({"name": "Shop", "region": "NA"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
    assert_eq!(app.get_json(&path).await["region"], "EU");
}

#[tokio::test]
async fn an_environment_admin_cannot_update_its_environment() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let token = app.token(&env, Role::EnvironmentAdmin).await;
    let path = format!("/v1/environments/{env}");
    let body = json!({"name": "Mine", "region": "NA"});
    assert_p1_error(
        app.put(&path, &token, body).await,
        StatusCode::FORBIDDEN,
        "ACCESS_FAILED",
        None,
    )
    .await;
    let r = app
        .put(
            &format!("{path}/type"),
            &token,
            json!({"type": "PRODUCTION"}),
        )
        .await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn an_environment_reads_back_as_created() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    let path = format!("/v1/environments/{}", created["id"].as_str().unwrap());
    let r = app.get(&path, &app.admin_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), created);
}

#[tokio::test]
async fn the_list_holds_the_administrators_environment_and_each_created_one() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    let list: Value = app
        .get("/v1/environments", &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    let names = app
        .names()
        .with(app.admin.environment_id.to_string(), "[administrators]")
        .with(created["id"].as_str().unwrap(), "[shop]");
    assert_environment_snapshot!(list, names);
}

#[tokio::test]
async fn a_deleted_environment_answers_204_then_is_not_found() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    let path = format!("/v1/environments/{}", created["id"].as_str().unwrap());
    let token = &app.admin_token;
    assert_eq!(
        app.delete(&path, token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&path, token).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&path, token).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// An environment with a domain and a client of its own, then deleted: (environment, domain,
/// the environment's token).
async fn deleted_environment(app: &TestApp) -> (String, String, String) {
    let env = app.environment("Doomed").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let env_token = app.token(&env, Role::EnvironmentAdmin).await;
    assert_eq!(
        app.delete(&format!("/v1/environments/{env}"), &app.admin_token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    (env, domain, env_token)
}

#[tokio::test]
async fn deleting_an_environment_deletes_its_domains() {
    let app = TestApp::spawn().await;
    let (env, domain, _) = deleted_environment(&app).await;
    let r = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/{domain}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deleted_environments_own_token_gets_401() {
    let app = TestApp::spawn().await;
    let (env, _, env_token) = deleted_environment(&app).await;
    // Its clients went with it, and a deleted client's tokens are revoked.
    let r = app
        .get(&format!("/v1/environments/{env}/emailDomains"), &env_token)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn deleting_an_environment_leaves_no_domains_or_activities_in_the_store() {
    let app = TestApp::spawn().await;
    let (env, _, _) = deleted_environment(&app).await;
    let store = app.store();
    assert!(
        store
            .list_domains(env.parse().unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    let (activities, count) = store
        .list_activities(env.parse().unwrap(), 10, 0)
        .await
        .unwrap();
    assert!(activities.is_empty() && count == 0);
}

#[tokio::test]
async fn a_deleted_environments_domain_names_are_free_for_another() {
    let app = TestApp::spawn().await;
    deleted_environment(&app).await;
    let again = app.environment("Again").await;
    app.domain(&again, "a.shopco.test").await;
}

#[tokio::test]
async fn the_administrators_environment_cannot_delete_itself() {
    let app = TestApp::spawn().await;
    let admin_env = app.admin.environment_id;
    let r = app
        .delete(&format!("/v1/environments/{admin_env}"), &app.admin_token)
        .await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
    assert_eq!(
        app.get(&format!("/v1/environments/{admin_env}"), &app.admin_token)
            .await
            .status(),
        StatusCode::OK
    );
}
