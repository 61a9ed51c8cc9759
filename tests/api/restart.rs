//! What a 201 promised is still there after a restart.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, backends};

#[tokio::test]
async fn domains_survive_a_restart() {
    for db in backends("domains_survive_a_restart").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.environment("Durable").await;
        let mut ids = Vec::new();
        for i in 0..10 {
            ids.push(app.domain(&env, &format!("d{i}.shopco.test")).await);
        }
        let dkim_before: Value = app
            .get(
                &format!("/v1/environments/{env}/emailDomains/{}/dkim", ids[0]),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        let app = app.restart().await;
        // The old token still verifies: the signing key lives in the store.
        let list: Value = app
            .get(
                &format!("/v1/environments/{env}/emailDomains"),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
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
        let dkim_after: Value = app
            .get(
                &format!(
                    "/v1/environments/{env}/emailDomains/{}/dkim",
                    dkim_before["_links"]["emailDomain"]["href"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                ),
                &app.admin_token,
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(dkim_after["regions"], dkim_before["regions"], "{db:?}");
        // And the second start did not bootstrap again.
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
