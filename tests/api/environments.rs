//! Environments: create, list, read, delete (which removes everything inside).

use reqwest::StatusCode;
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::TestApp;

#[tokio::test]
async fn create_read_list_and_delete() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    let r = app
        .post(
            "/v1/environments",
            token,
            json!({"name": " Shop EU ", "region": "EU"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["name"], "Shop EU");
    assert_eq!(created["region"], "EU");
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["_links"]["self"]["href"],
        format!("{}/v1/environments/{id}", app.url)
    );
    let read: Value = app
        .get(&format!("/v1/environments/{id}"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);
    let list: Value = app
        .get("/v1/environments", token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 2, "Administrators and Shop EU");
    let names: Vec<_> = list["_embedded"]["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].clone())
        .collect();
    assert_eq!(names, [json!("Administrators"), json!("Shop EU")]);
    let r = app.delete(&format!("/v1/environments/{id}"), token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&format!("/v1/environments/{id}"), token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.delete(&format!("/v1/environments/{id}"), token)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deleting_an_environment_removes_everything_in_it() {
    let app = TestApp::spawn().await;
    let env = app.environment("Doomed").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let env_token = app.token(&env, Role::EnvironmentAdmin).await;
    assert_eq!(
        app.delete(&format!("/v1/environments/{env}"), &app.admin_token)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let r = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/{domain}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The environment's own token finds nothing any more.
    let r = app
        .get(&format!("/v1/environments/{env}/emailDomains"), &env_token)
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Nothing is left in the store either.
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
    // A new environment can reuse the domain name.
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
    crate::support::assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
    assert_eq!(
        app.get(&format!("/v1/environments/{admin_env}"), &app.admin_token)
            .await
            .status(),
        StatusCode::OK
    );
}
