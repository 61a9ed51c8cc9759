//! Clients (worker applications): create, list, read, delete, rotate the secret; who may; and
//! that a deleted client's tokens stop working on every replica.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{
    Db, TestApp, assert_created_snapshot, assert_error_snapshot, assert_p1_error, backends, redact,
};

fn clients(env: &str) -> String {
    format!("/v1/environments/{env}/clients")
}

/// Creates a client as `token` in `env`.
async fn create(app: &TestApp, env: &str, token: &str, name: &str, role: &str) -> Response {
    app.post(&clients(env), token, json!({"name": name, "role": role}))
        .await
}

/// Creates a client as the organization administrator: (id, secret).
async fn created(app: &TestApp, env: &str, role: &str) -> (String, String) {
    let r = create(app, env, &app.admin_token, "Worker", role).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["clientSecret"].as_str().unwrap().to_owned(),
    )
}

/// The token endpoint's answer for these credentials.
async fn request_token(app: &TestApp, env: &str, id: &str, secret: &str) -> Response {
    app.http
        .post(format!("{}/{env}/as/token", app.url))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn token(app: &TestApp, env: &str, id: &str, secret: &str) -> String {
    let r = request_token(app, env, id, secret).await;
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn creating_a_client_answers_201_with_a_secret_that_gets_a_token() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = create(
        &app,
        &env,
        &app.admin_token,
        " Billing worker ",
        "ENVIRONMENT_ADMIN",
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    let secret = body["clientSecret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 43, "256 bits: {secret}");
    let mut shown = body.clone();
    shown["clientSecret"] = json!("[secret]");
    let names = app.names().with(&env, "[env]").with(&id, "[id]");
    assert_created_snapshot!(shown, names);
    let token = token(&app, &env, &id, &secret).await;
    let r = app
        .get(&format!("/v1/environments/{env}/emailDomains"), &token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_list_and_a_read_never_show_a_secret() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (id, _) = created(&app, &env, "READ_ONLY").await;
    let list = app.get_json(&clients(&env)).await;
    let names = app.names().with(&env, "[env]").with(&id, "[client]");
    insta::assert_json_snapshot!(list, {
        "._embedded.clients[].createdAt" => redact::time(),
        ".**" => names.redaction(),
    });
    let one = app.get_json(&format!("{}/{id}", clients(&env))).await;
    assert!(one.get("clientSecret").is_none(), "{one}");
    assert_eq!(one, list["_embedded"]["clients"][0]);
}

#[tokio::test]
async fn a_deleted_client_answers_204_and_its_token_gets_401() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (id, secret) = created(&app, &env, "ENVIRONMENT_ADMIN").await;
    let token = token(&app, &env, &id, &secret).await;
    let domains = format!("/v1/environments/{env}/emailDomains");
    assert_eq!(app.get(&domains, &token).await.status(), StatusCode::OK);
    let r = app
        .delete(&format!("{}/{id}", clients(&env)), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&domains, &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .get(&format!("{}/{id}", clients(&env)), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Deletes a client on one replica and waits (at most 2 s) for its token to get 401 on another.
async fn deleted_on_one_replica_refused_on_another(db: Db) {
    let first = TestApp::spawn_on(db.clone(), |_| {}).await;
    let second = first.replica().await;
    let env = first.environment("Shop").await;
    let (id, secret) = created(&first, &env, "READ_ONLY").await;
    let token = token(&first, &env, &id, &secret).await;
    let domains = format!("/v1/environments/{env}/emailDomains");
    // The second replica has verified (and cached) the token.
    assert_eq!(second.get(&domains, &token).await.status(), StatusCode::OK);
    let r = first
        .delete(&format!("{}/{id}", clients(&env)), &first.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let deleted = Instant::now();
    loop {
        let status = second.get(&domains, &token).await.status();
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK, "{db:?}");
        assert!(
            deleted.elapsed() < Duration::from_secs(2),
            "the second replica still accepts a deleted client's token ({db:?})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_deleted_clients_token_gets_401_on_a_second_replica_within_2_s() {
    for db in backends("a_deleted_clients_token_gets_401_on_a_second_replica_within_2_s").await {
        deleted_on_one_replica_refused_on_another(db).await;
    }
}

#[tokio::test]
async fn a_rotated_secret_replaces_the_old_one_at_once() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (id, old) = created(&app, &env, "READ_ONLY").await;
    let r = app
        .post(
            &format!("{}/{id}/secret", clients(&env)),
            &app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    let keys: Vec<_> = body.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["clientSecret"]);
    let new = body["clientSecret"].as_str().unwrap();
    assert_ne!(new, old);
    let r = request_token(&app, &env, &id, &old).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client");
    token(&app, &env, &id, new).await;
}

#[tokio::test]
async fn an_environment_admin_cannot_create_an_organization_admin() {
    let app = TestApp::spawn().await;
    let org = app.admin.environment_id.to_string();
    let env_admin = app.token(&org, Role::EnvironmentAdmin).await;
    let r = create(&app, &org, &env_admin, "Boss", "ORGANIZATION_ADMIN").await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn an_environment_admin_cannot_touch_another_environments_clients() {
    let app = TestApp::spawn().await;
    let mine = app.environment("Mine").await;
    let other = app.environment("Other").await;
    let (id, _) = created(&app, &other, "READ_ONLY").await;
    let env_admin = app.token(&mine, Role::EnvironmentAdmin).await;
    let one = format!("{}/{id}", clients(&other));
    for r in [
        create(&app, &other, &env_admin, "Intruder", "READ_ONLY").await,
        app.get(&clients(&other), &env_admin).await,
        app.get(&one, &env_admin).await,
        app.delete(&one, &env_admin).await,
        app.post(&format!("{one}/secret"), &env_admin, json!({}))
            .await,
    ] {
        assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    }
}

#[tokio::test]
async fn an_environment_admin_manages_its_own_environments_clients() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let env_admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = create(&app, &env, &env_admin, "Reader", "READ_ONLY").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .delete(&format!("{}/{id}", clients(&env)), &env_admin)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn read_only_may_read_clients_but_not_create_one() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let reader = app.token(&env, Role::ReadOnly).await;
    assert_eq!(
        app.get(&clients(&env), &reader).await.status(),
        StatusCode::OK
    );
    let r = create(&app, &env, &reader, "Writer", "READ_ONLY").await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn deleting_the_last_organization_admin_is_refused_with_400() {
    let app = TestApp::spawn().await;
    let org = app.admin.environment_id;
    let r = app
        .delete(
            &format!("/v1/environments/{org}/clients/{}", app.admin.client_id),
            &app.admin_token,
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
    // With a second one, the first may go.
    let (_, _) = created(&app, &org.to_string(), "ORGANIZATION_ADMIN").await;
    let r = app
        .delete(
            &format!("/v1/environments/{org}/clients/{}", app.admin.client_id),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_environment_named_administrators_gives_no_organization_powers() {
    let app = TestApp::spawn().await;
    let impostor = app.environment("Administrators").await;
    let r = create(
        &app,
        &impostor,
        &app.admin_token,
        "Boss",
        "ORGANIZATION_ADMIN",
    )
    .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "role")),
    )
    .await;
    let env_admin = app.token(&impostor, Role::EnvironmentAdmin).await;
    let r = app
        .post(
            "/v1/environments",
            &env_admin,
            json!({"name": "Mine", "region": "NA"}),
        )
        .await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    let r = create(&app, &impostor, &env_admin, "Boss", "ORGANIZATION_ADMIN").await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}
