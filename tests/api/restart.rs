//! What a 201 promised is still there after a restart.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Db, TestApp, backends};

/// Ten domains in an environment, then a restart: (the restarted app, environment, domain ids,
/// the first domain's DKIM records before the restart).
async fn restarted_with_domains(db: Db) -> (TestApp, String, Vec<String>, Value) {
    let app = TestApp::spawn_on(db, |_| {}).await;
    let env = app.environment("Durable").await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(app.domain(&env, &format!("d{i}.shopco.test")).await);
    }
    let dkim = dkim(&app, &env, &ids[0]).await;
    (app.restart().await, env, ids, dkim)
}

async fn dkim(app: &TestApp, env: &str, domain: &str) -> Value {
    app.get_json(&format!(
        "/v1/environments/{env}/emailDomains/{domain}/dkim"
    ))
    .await
}

#[tokio::test]
async fn created_domains_are_listed_after_a_restart_with_the_old_token() {
    for db in backends("created_domains_are_listed_after_a_restart_with_the_old_token").await {
        let (app, env, mut ids, _) = restarted_with_domains(db.clone()).await;
        // The old token still verifies: the signing key lives in the store.
        let r = app
            .get(
                &format!("/v1/environments/{env}/emailDomains"),
                &app.admin_token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{db:?}");
        let list: Value = r.json().await.unwrap();
        assert_eq!(list["count"], 10, "{db:?}");
        let mut listed: Vec<_> = list["_embedded"]["emailDomains"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect();
        listed.sort();
        ids.sort();
        assert_eq!(listed, ids, "{db:?}");
    }
}

#[tokio::test]
async fn dkim_records_are_the_same_after_a_restart() {
    for db in backends("dkim_records_are_the_same_after_a_restart").await {
        let (app, env, ids, before) = restarted_with_domains(db.clone()).await;
        let after = dkim(&app, &env, &ids[0]).await;
        assert_eq!(after["regions"], before["regions"], "{db:?}");
    }
}

#[tokio::test]
async fn a_restart_does_not_bootstrap_again() {
    for db in backends("a_restart_does_not_bootstrap_again").await {
        let (app, _, _, _) = restarted_with_domains(db.clone()).await;
        let envs: Value = app
            .get("/v1/environments", &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(envs["count"], 2, "{db:?}");
        assert_eq!(
            app.get("/healthz", &app.admin_token).await.status(),
            StatusCode::OK
        );
    }
}
