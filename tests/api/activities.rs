//! The audit trail: each create and delete writes an activity, listed newest first.

use reqwest::StatusCode;
use serde_json::Value;
use trustmail::domain::Role;

use crate::support::TestApp;

#[tokio::test]
async fn creates_and_deletes_are_recorded_newest_first() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let writer = app.token(&env, Role::EnvironmentAdmin).await;
    let r: Value = app
        .create_domain(&env, &writer, "a.shopco.test")
        .await
        .json()
        .await
        .unwrap();
    let domain = r["id"].as_str().unwrap().to_owned();
    let r = app
        .delete(
            &format!("/v1/environments/{env}/emailDomains/{domain}"),
            &writer,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let list: Value = app
        .get(&format!("/v1/environments/{env}/activities"), &writer)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 2);
    assert_eq!(list["size"], 2);
    let items = list["_embedded"]["activities"].as_array().unwrap();
    assert_eq!(items[0]["action"]["type"], "EMAIL_DOMAIN_DELETED");
    assert_eq!(items[1]["action"]["type"], "EMAIL_DOMAIN_CREATED");
    for item in items {
        assert_eq!(item["resources"][0]["type"], "EMAIL_DOMAIN");
        assert_eq!(item["resources"][0]["id"], domain.as_str());
        assert_eq!(item["resources"][0]["name"], "a.shopco.test");
        assert_eq!(item["result"]["status"], "SUCCESS");
        assert!(item["recordedAt"].as_str().unwrap().ends_with('Z'));
        assert!(uuid::Uuid::parse_str(item["id"].as_str().unwrap()).is_ok());
        let actor = item["actors"]["client"]["id"].as_str().unwrap();
        assert_ne!(
            actor,
            app.admin.client_id.to_string(),
            "the environment admin acted"
        );
    }

    // Environment creation and deletion land in the acting client's environment.
    let admin_env = app.admin.environment_id;
    app.delete(&format!("/v1/environments/{env}"), &app.admin_token)
        .await;
    let list: Value = app
        .get(
            &format!("/v1/environments/{admin_env}/activities"),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<_> = list["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"]["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "ENVIRONMENT_DELETED",
            "ENVIRONMENT_CREATED",
            "ENVIRONMENT_CREATED"
        ]
    );
    assert_eq!(
        list["_embedded"]["activities"][0]["resources"][0]["type"],
        "ENVIRONMENT"
    );
    assert_eq!(
        list["_embedded"]["activities"][0]["resources"][0]["name"],
        "Shop"
    );
    assert_eq!(
        list["_embedded"]["activities"][0]["actors"]["client"]["id"],
        app.admin.client_id.to_string()
    );
}

#[tokio::test]
async fn pages_follow_next_links() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    for i in 0..5 {
        app.domain(&env, &format!("d{i}.shopco.test")).await;
    }
    let mut url = format!("{}/v1/environments/{env}/activities?limit=2", app.url);
    let mut seen = Vec::new();
    loop {
        let page: Value = app
            .http
            .get(&url)
            .bearer_auth(&app.admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["count"], 5);
        for a in page["_embedded"]["activities"].as_array().unwrap() {
            seen.push(a["resources"][0]["name"].as_str().unwrap().to_owned());
        }
        match page["_links"]["next"]["href"].as_str() {
            Some(next) => url = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "d4.shopco.test",
            "d3.shopco.test",
            "d2.shopco.test",
            "d1.shopco.test",
            "d0.shopco.test"
        ]
    );
}
