//! Populations: the default one every environment starts with, and what PingOne's Terraform
//! provider does with them (`pingone_population`, `pingone_population_default`).

use reqwest::StatusCode;
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::{
    environments::assert_answers_as_sent,
    support::{TestApp, UNKNOWN_ID, assert_error_snapshot, assert_p1_error, backends, redact},
};

/// The populations of `env`, as listed.
async fn populations(app: &TestApp, env: &str) -> Vec<Value> {
    let list = app
        .get_json(&format!("/v1/environments/{env}/populations"))
        .await;
    assert_eq!(list["count"], list["size"]);
    list["_embedded"]["populations"].as_array().unwrap().clone()
}

/// The one population of `env` whose `default` is true (what the provider's
/// `FetchDefaultPopulation` looks for in the list).
async fn default_population(app: &TestApp, env: &str) -> Value {
    let all = populations(app, env).await;
    let defaults: Vec<&Value> = all.iter().filter(|p| p["default"] == true).collect();
    assert_eq!(defaults.len(), 1, "{all:?}");
    defaults[0].clone()
}

/// The path of `population` (as answered) in `env`.
fn population_path(env: &str, population: &Value) -> String {
    let id = population["id"].as_str().unwrap();
    format!("/v1/environments/{env}/populations/{id}")
}

async fn create(app: &TestApp, env: &str, body: Value) -> Value {
    let r = app
        .post(
            &format!("/v1/environments/{env}/populations"),
            &app.admin_token,
            body,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// What `pingone_population` sends for `testAccPopulationConfig_Full` (`buildClientStruct` in
/// terraform-provider-pingone internal/service/sso/resource_population_gen.go; the password
/// policy, language and theme ids come from other resources of that test).
fn provider_full_body() -> Value {
    json!({
        "alternativeIdentifiers": ["identifier1", "identifier2"],
        "description": "Test description",
        "name": "tf-population",
        "passwordPolicy": {"id": "5f0b2a3c-1d4e-4f6a-8b7c-9d0e1f2a3b4c"},
        "preferredLanguage": "es",
        "theme": {"id": "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"}
    })
}

#[tokio::test]
async fn a_new_environment_starts_with_pingones_default_population() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let all = populations(&app, &env).await;
    assert_eq!(all.len(), 1);
    let id = all[0]["id"].as_str().unwrap();
    assert!(redact::is_uuid(id));
    let names = app.names().with(&env, "[env]").with(id, "[population]");
    insta::assert_json_snapshot!(all[0], {
        ".theme.id" => redact::id(),
        ".createdAt" => redact::time(),
        ".updatedAt" => redact::time(),
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn the_providers_full_population_reads_back_as_sent() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let sent = provider_full_body();
    let created = create(&app, &env, sent.clone()).await;
    assert_answers_as_sent(&sent, &created, "created");
    assert_eq!(created["default"], false);
    let path = population_path(&env, &created);
    assert_eq!(app.get_json(&path).await, created);
}

#[tokio::test]
async fn a_population_without_a_theme_answers_the_environments_default_theme() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    // testAccPopulationConfig_Minimal: the provider waits until `theme.id` is set.
    let created = create(&app, &env, json!({"name": "tf-minimal"})).await;
    let theme = created["theme"]["id"].as_str().unwrap();
    assert!(redact::is_uuid(theme));
    assert_eq!(default_population(&app, &env).await["theme"]["id"], theme);
    for absent in [
        "description",
        "alternativeIdentifiers",
        "passwordPolicy",
        "preferredLanguage",
    ] {
        assert!(created.get(absent).is_none(), "{absent}: {created}");
    }
    let other = app.environment("Other").await;
    assert_ne!(default_population(&app, &other).await["theme"]["id"], theme);
}

#[tokio::test]
async fn a_put_replaces_every_member_and_keeps_default_when_absent() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let default = default_population(&app, &env).await;
    let path = population_path(&env, &default);
    // pingone_population never sends `default`.
    let sent = json!({"name": "Renamed", "alternativeIdentifiers": []});
    let r = app.put(&path, &app.admin_token, sent.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let updated: Value = r.json().await.unwrap();
    assert_answers_as_sent(&sent, &updated, "updated");
    assert_eq!(updated["default"], true);
    assert!(updated.get("description").is_none(), "{updated}");
    assert_eq!(updated["createdAt"], default["createdAt"]);
    assert_eq!(app.get_json(&path).await, updated);
}

#[tokio::test]
async fn the_default_population_resource_updates_and_restores_the_default() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let default = default_population(&app, &env).await;
    let path = population_path(&env, &default);
    // Create: `expand` in internal/service/sso/resource_population_default.go, applied with
    // UpdatePopulation to the population FetchDefaultPopulation found.
    let mut sent = provider_full_body();
    sent["default"] = json!(true);
    let updated: Value = app
        .put(&path, &app.admin_token, sent.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_answers_as_sent(&sent, &updated, "updated");
    assert_eq!(default_population(&app, &env).await, updated);
    // Destroy: the same resource puts PingOne's original default back.
    let original = json!({"name": "Default", "description": "Automatically created population.", "default": true});
    app.put(&path, &app.admin_token, original.clone()).await;
    let restored = default_population(&app, &env).await;
    assert_answers_as_sent(&original, &restored, "restored");
    assert_eq!(restored["id"], default["id"]);
}

#[tokio::test]
async fn a_new_default_takes_over_from_the_old_one() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let old = default_population(&app, &env).await;
    let new = create(&app, &env, json!({"name": "Customers", "default": true})).await;
    assert_eq!(new["default"], true);
    assert_eq!(default_population(&app, &env).await["id"], new["id"]);
    let path = population_path(&env, &old);
    assert_eq!(app.get_json(&path).await["default"], false);
}

#[tokio::test]
async fn deleting_a_population_answers_204_then_it_is_not_found() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let created = create(&app, &env, json!({"name": "Staff"})).await;
    let path = population_path(&env, &created);
    assert_eq!(
        app.delete(&path, &app.admin_token).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get(&path, &app.admin_token).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(populations(&app, &env).await.len(), 1);
}

#[tokio::test]
async fn deleting_the_default_population_is_400_constraint_violation() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    create(&app, &env, json!({"name": "Staff"})).await;
    let default = default_population(&app, &env).await;
    let path = population_path(&env, &default);
    assert_error_snapshot!(
        app.delete(&path, &app.admin_token).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(default_population(&app, &env).await["id"], default["id"]);
}

#[tokio::test]
async fn deleting_the_last_population_is_400_constraint_violation() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let default = default_population(&app, &env).await;
    let path = population_path(&env, &default);
    let r = app
        .put(
            &path,
            &app.admin_token,
            json!({"name": "Default", "default": false}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["default"], false);
    let r = app.delete(&path, &app.admin_token).await;
    // The provider recognises this refusal by its detail's code and message
    // (populationDeleteCustomErrorHandler in internal/service/sso/resource_population.go).
    let body = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("CONSTRAINT_VIOLATION", "id")),
    )
    .await;
    let message = body["details"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("must contain at least one population"),
        "{message}"
    );
    assert_eq!(populations(&app, &env).await.len(), 1);
}

#[tokio::test]
async fn an_unknown_population_is_404() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let path = format!("/v1/environments/{env}/populations/{UNKNOWN_ID}");
    assert_error_snapshot!(
        app.get(&path, &app.admin_token).await,
        StatusCode::NOT_FOUND
    );
    let r = app.put(&path, &app.admin_token, json!({"name": "x"})).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    let r = app.delete(&path, &app.admin_token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    // Another environment's population is as unknown.
    let other = app.environment("Other").await;
    let theirs = default_population(&app, &other).await;
    let path = population_path(&env, &theirs);
    assert_p1_error(
        app.get(&path, &app.admin_token).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        None,
    )
    .await;
}

#[tokio::test]
async fn a_taken_name_is_400_uniqueness_violation() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = app
        .post(
            &format!("/v1/environments/{env}/populations"),
            &app.admin_token,
            json!({"name": "Default"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_population_without_a_name_or_with_a_bad_theme_is_400() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let path = format!("/v1/environments/{env}/populations");
    for (body, code, target) in [
        (json!({}), "REQUIRED_VALUE", "name"),
        (
            json!({"name": "x", "theme": {}}),
            "REQUIRED_VALUE",
            "theme.id",
        ),
        (json!({"name": "x", "theme": "t"}), "INVALID_VALUE", "theme"),
        (
            json!({"name": "x", "default": "yes"}),
            "INVALID_VALUE",
            "default",
        ),
        (
            json!({"name": "x", "alternativeIdentifiers": [1]}),
            "INVALID_VALUE",
            "alternativeIdentifiers",
        ),
    ] {
        let r = app.post(&path, &app.admin_token, body).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some((code, target)),
        )
        .await;
    }
}

#[tokio::test]
async fn read_only_clients_read_and_environment_admins_write_populations() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let path = format!("/v1/environments/{env}/populations");
    let reader = app.token(&env, Role::ReadOnly).await;
    assert_eq!(app.get(&path, &reader).await.status(), StatusCode::OK);
    let r = app.post(&path, &reader, json!({"name": "Staff"})).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    let admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = app.post(&path, &admin, json!({"name": "Staff"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Concurrent creates that each ask to be the default, on every backend: one default after.
#[tokio::test]
async fn concurrent_new_defaults_leave_exactly_one() {
    for db in backends("concurrent_new_defaults_leave_exactly_one").await {
        let app = TestApp::spawn_on(db, |_| {}).await;
        let env = app.environment("Shop").await;
        let path = format!("/v1/environments/{env}/populations");
        let creates = (0..8).map(|i| {
            app.post(
                &path,
                &app.admin_token,
                json!({"name": format!("p{i}"), "default": true}),
            )
        });
        for r in futures_util::future::join_all(creates).await {
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        assert_eq!(populations(&app, &env).await.len(), 9);
        default_population(&app, &env).await;
    }
}

/// An environment made before populations existed gets its default population when the store
/// opens, on every backend, once.
#[tokio::test]
async fn environments_without_populations_get_their_default_at_start() {
    for db in backends("environments_without_populations_get_their_default_at_start").await {
        let app = TestApp::spawn_on(db, |_| {}).await;
        let env = app.environment("Old").await;
        let url = secrecy::ExposeSecret::expose_secret(&app.config.database_url).to_owned();
        let pool = sqlx::AnyPool::connect(&url).await.unwrap();
        sqlx::query("DELETE FROM populations WHERE environment_id = $1")
            .bind(&env)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
        let store = app.store();
        assert_eq!(store.create_missing_default_populations().await.unwrap(), 1);
        assert_eq!(store.create_missing_default_populations().await.unwrap(), 0);
        let made = default_population(&app, &env).await;
        assert_eq!(made["name"], "Default");
        assert_eq!(populations(&app, &env).await.len(), 1);
    }
}

/// PostgreSQL cannot store NUL in text: a member kept as sent must not hold one, on any backend.
#[tokio::test]
async fn a_nul_in_a_member_kept_as_sent_is_400_invalid_value() {
    for db in backends("a_nul_in_a_member_kept_as_sent_is_400_invalid_value").await {
        let app = TestApp::spawn_on(db, |_| {}).await;
        let body = json!({"name": "Shop", "region": "NA", "description": "a\u{0}b"});
        let r = app.post("/v1/environments", &app.admin_token, body).await;
        let detail = Some(("INVALID_VALUE", "description"));
        assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
        let env = app.environment("Shop").await;
        let body = json!({"name": "Staff", "theme": {"id": "\u{0}"}});
        let r = app
            .post(
                &format!("/v1/environments/{env}/populations"),
                &app.admin_token,
                body,
            )
            .await;
        let detail = Some(("INVALID_VALUE", "theme.id"));
        assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
    }
}

/// The store's population rules, on every backend: unique names, one default that moves, the
/// default and the last population never deleted, a deleted one gone.
#[tokio::test]
async fn population_rules_hold_on_every_backend() {
    for db in backends("population_rules_hold_on_every_backend").await {
        let app = TestApp::spawn_on(db, |_| {}).await;
        let env = app.environment("Shop").await;
        let list = format!("/v1/environments/{env}/populations");
        let token = &app.admin_token;
        let r = app.post(&list, token, json!({"name": "Default"})).await;
        let detail = Some(("UNIQUENESS_VIOLATION", "name"));
        assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
        let old = default_population(&app, &env).await;
        let new = create(&app, &env, json!({"name": "Staff", "default": true})).await;
        assert_eq!(default_population(&app, &env).await["id"], new["id"]);
        let r = app.delete(&population_path(&env, &new), token).await;
        let detail = Some(("CONSTRAINT_VIOLATION", "default"));
        assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
        let r = app.delete(&population_path(&env, &old), token).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let body = json!({"name": "Staff", "default": false});
        app.put(&population_path(&env, &new), token, body).await;
        let r = app.delete(&population_path(&env, &new), token).await;
        let detail = Some(("CONSTRAINT_VIOLATION", "id"));
        assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
        assert_eq!(populations(&app, &env).await.len(), 1);
    }
}
