//! Environments: create, list, read, delete (which removes everything inside).

use reqwest::StatusCode;
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{TestApp, assert_created_snapshot, assert_p1_error, redact};

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
async fn creating_an_environment_answers_201_with_the_trimmed_name_and_a_self_link() {
    let app = TestApp::spawn().await;
    let created = create_shop(&app).await;
    let names = app.names().with(created["id"].as_str().unwrap(), "[id]");
    assert_created_snapshot!(created, names);
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
    insta::assert_json_snapshot!(list, {
        "._embedded.environments[].createdAt" => redact::time(),
        "._embedded.environments[].updatedAt" => redact::time(),
        ".**" => names.redaction(),
    });
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
