//! An environment's suppression list: `GET …/suppressions` (by reason, paged),
//! `GET|PUT|DELETE …/suppressions/{emailAddress}`, kept apart per environment and audited.

use reqwest::StatusCode;
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{TestApp, assert_p1_error};

fn list(env: &str) -> String {
    format!("/v1/environments/{env}/suppressions")
}

fn entry(env: &str, address: &str) -> String {
    format!("{}/{address}", list(env))
}

async fn suppress(app: &TestApp, env: &str, address: &str) -> reqwest::Response {
    app.put(&entry(env, address), &app.admin_token, json!({}))
        .await
}

#[tokio::test]
async fn a_put_lists_an_address_by_hand_once() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = suppress(&app, &env, "Gone@Receiver.TEST").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["emailAddress"], "gone@receiver.test");
    assert_eq!(created["reason"], "MANUAL");
    assert_eq!(created["environment"]["id"], env);
    assert!(created.get("message").is_none());
    let this = created["_links"]["self"]["href"].as_str().unwrap();
    assert!(this.ends_with(&entry(&env, "gone@receiver.test")), "{this}");
    // Again: the entry as it was.
    let r = suppress(&app, &env, "gone@receiver.test").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), created);
    let read = app.get_json(&entry(&env, "GONE@receiver.test")).await;
    assert_eq!(read, created);
}

#[tokio::test]
async fn an_address_with_path_characters_round_trips_through_its_link() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = suppress(&app, &env, "a%2Fb%3Fc@receiver.test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["emailAddress"], "a/b?c@receiver.test");
    let this = created["_links"]["self"]["href"].as_str().unwrap();
    let path = &this[this.find("/v1/").unwrap()..];
    assert_eq!(app.get_json(path).await, created);
}

#[tokio::test]
async fn what_is_not_one_address_is_refused() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    for bad in ["noat", "a@", "a%20b@c.test%2C%20d@e.test"] {
        let r = suppress(&app, &env, bad).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some(("INVALID_VALUE", "emailAddress")),
        )
        .await;
    }
    // Never listed, so never found.
    let r = app.get(&entry(&env, "noat"), &app.admin_token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn a_delete_sends_to_the_address_again() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    suppress(&app, &env, "gone@receiver.test").await;
    let r = app
        .delete(&entry(&env, "gone@receiver.test"), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    for r in [
        app.get(&entry(&env, "gone@receiver.test"), &app.admin_token)
            .await,
        app.delete(&entry(&env, "gone@receiver.test"), &app.admin_token)
            .await,
    ] {
        assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    }
}

#[tokio::test]
async fn the_list_is_newest_first_by_reason_and_paged() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    for n in 0..3 {
        suppress(&app, &env, &format!("a{n}@receiver.test")).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let all = app.get_json(&list(&env)).await;
    assert_eq!(all["count"], 3);
    let addresses: Vec<&str> = all["_embedded"]["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["emailAddress"].as_str().unwrap())
        .collect();
    assert_eq!(
        addresses,
        ["a2@receiver.test", "a1@receiver.test", "a0@receiver.test"]
    );
    let page = app
        .get_json(&format!("{}?reason=MANUAL&limit=2", list(&env)))
        .await;
    assert_eq!(page["size"], 2);
    assert_eq!(page["count"], 3);
    let next = page["_links"]["next"]["href"].as_str().unwrap();
    assert!(
        next.ends_with("/suppressions?reason=MANUAL&limit=2&offset=2"),
        "{next}"
    );
    let bounces = app.get_json(&format!("{}?reason=BOUNCE", list(&env))).await;
    assert_eq!(bounces["count"], 0);
    let r = app
        .get(&format!("{}?reason=SPAM", list(&env)), &app.admin_token)
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "reason")),
    )
    .await;
}

#[tokio::test]
async fn one_environments_list_is_not_anothers() {
    let app = TestApp::spawn().await;
    let shop = app.environment("Shop").await;
    let other = app.environment("Other").await;
    suppress(&app, &shop, "gone@receiver.test").await;
    assert_eq!(app.get_json(&list(&other)).await["count"], 0);
    let r = app
        .get(&entry(&other, "gone@receiver.test"), &app.admin_token)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    // A client of one environment cannot reach the other's list at all.
    let token = app.token(&other, Role::EnvironmentAdmin).await;
    let r = app.get(&list(&shop), &token).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn a_read_only_client_reads_the_list_but_does_not_change_it() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    suppress(&app, &env, "gone@receiver.test").await;
    let token = app.token(&env, Role::ReadOnly).await;
    assert_eq!(app.get(&list(&env), &token).await.status(), StatusCode::OK);
    let r = app
        .put(&entry(&env, "new@receiver.test"), &token, json!({}))
        .await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    let r = app.delete(&entry(&env, "gone@receiver.test"), &token).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn adding_and_removing_are_audited() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    suppress(&app, &env, "gone@receiver.test").await;
    suppress(&app, &env, "gone@receiver.test").await;
    app.delete(&entry(&env, "gone@receiver.test"), &app.admin_token)
        .await;
    let activities = app
        .get_json(&format!("/v1/environments/{env}/activities"))
        .await;
    let seen: Vec<(&str, &str)> = activities["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["resources"][0]["type"] == "SUPPRESSION")
        .map(|a| {
            (
                a["action"]["type"].as_str().unwrap(),
                a["resources"][0]["name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("SUPPRESSION.DELETED", "gone@receiver.test"),
            ("SUPPRESSION.CREATED", "gone@receiver.test"),
        ]
    );
}
