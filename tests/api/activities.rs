//! The audit trail: each create and delete writes an activity, listed newest first.

use reqwest::StatusCode;
use serde_json::Value;
use trustmail::domain::Role;

use crate::support::{TestApp, redact};

async fn activities(app: &TestApp, env: &str) -> Value {
    app.get_json(&format!("/v1/environments/{env}/activities"))
        .await
}

#[tokio::test]
async fn a_domains_create_and_delete_are_recorded_newest_first_as_the_acting_client() {
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

    let list = activities(&app, &env).await;
    let items = list["_embedded"]["activities"].as_array().unwrap();
    // The setup's client create is the organization administrator's.
    for item in items
        .iter()
        .filter(|i| i["resources"][0]["type"] != "CLIENT")
    {
        let actor = item["actors"]["client"]["id"].as_str().unwrap();
        assert_ne!(
            actor,
            app.admin.client_id.to_string(),
            "the environment admin acted"
        );
    }
    // The environment admin is the client the setup created (its CLIENT_CREATED activity).
    let writer = items[0]["actors"]["client"]["id"].as_str().unwrap();
    let names = app
        .names()
        .with(&env, "[env]")
        .with(&domain, "[domain]")
        .with(writer, "[writer]");
    insta::assert_json_snapshot!(list, {
        "._embedded.activities[].id" => redact::id(),
        "._embedded.activities[].recordedAt" => redact::time(),
        "._embedded.activities[].actors.client.id" => redact::id(),
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn environment_creates_and_deletes_are_recorded_in_the_acting_clients_environment() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let r = app
        .delete(&format!("/v1/environments/{env}"), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let list = activities(&app, &app.admin.environment_id.to_string()).await;
    let types: Vec<_> = list["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"]["type"].as_str().unwrap())
        .collect();
    // The bootstrap created the Administrators environment itself.
    assert_eq!(
        types,
        [
            "ENVIRONMENT_DELETED",
            "ENVIRONMENT_CREATED",
            "ENVIRONMENT_CREATED"
        ]
    );
    let names = app
        .names()
        .with(&env, "[shop]")
        .with(app.admin.client_id.to_string(), "[admin client]")
        .with(app.admin.environment_id.to_string(), "[administrators]");
    insta::assert_json_snapshot!(list["_embedded"]["activities"][0], {
        ".id" => redact::id(),
        ".recordedAt" => redact::time(),
        ".**" => names.redaction(),
    });
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
