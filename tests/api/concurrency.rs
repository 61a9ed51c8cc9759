//! Limits and uniqueness hold under simultaneous requests, on every backend.

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::support::{TestApp, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_simultaneous_creates_of_one_name_give_one_201() {
    for db in backends("fifty_simultaneous_creates_of_one_name_give_one_201").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.environment("Race").await;
        let statuses = join_all((0..50).map(|i| {
            let name = if i % 2 == 0 {
                "race.shopco.test"
            } else {
                "RACE.shopco.test"
            };
            app.create_domain(&env, &app.admin_token, name)
        }))
        .await
        .into_iter()
        .map(|r| r.status())
        .collect::<Vec<_>>();
        let created = statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count();
        assert_eq!(created, 1, "{db:?}: {statuses:?}");
        assert!(
            statuses
                .iter()
                .all(|s| *s == StatusCode::CREATED || *s == StatusCode::BAD_REQUEST)
        );
        let domains = app
            .store()
            .list_domains(env.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(domains.len(), 1, "{db:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_simultaneous_creates_leave_at_most_fifty() {
    for db in backends("sixty_simultaneous_creates_leave_at_most_fifty").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let env = app.environment("Crowd").await;
        let names: Vec<String> = (0..60).map(|i| format!("d{i}.shopco.test")).collect();
        let responses = join_all(
            names
                .iter()
                .map(|name| app.create_domain(&env, &app.admin_token, name)),
        )
        .await;
        let mut created = 0;
        for r in responses {
            match r.status() {
                StatusCode::CREATED => created += 1,
                StatusCode::BAD_REQUEST => {
                    let body: serde_json::Value = r.json().await.unwrap();
                    assert_eq!(body["details"][0]["code"], "SIZE_LIMIT_EXCEEDED", "{body}");
                }
                other => panic!("{db:?}: unexpected {other}"),
            }
        }
        assert_eq!(created, 50, "{db:?}");
        let domains = app
            .store()
            .list_domains(env.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(domains.len(), 50, "{db:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_deletes_of_the_two_organization_admins_keep_one() {
    for db in backends("simultaneous_deletes_of_the_two_organization_admins_keep_one").await {
        let app = TestApp::spawn_on(db.clone(), |_| {}).await;
        let org = app.admin.environment_id;
        let r = app
            .post(
                &format!("/v1/environments/{org}/clients"),
                &app.admin_token,
                serde_json::json!({"name": "Second", "role": "ORGANIZATION_ADMIN"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let second = r.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let first = app.admin.client_id.to_string();
        let paths = [&first, &second].map(|id| format!("/v1/environments/{org}/clients/{id}"));
        let statuses: Vec<_> =
            join_all(paths.iter().map(|path| app.delete(path, &app.admin_token)))
                .await
                .into_iter()
                .map(|r| r.status())
                .collect();
        let deleted = statuses
            .iter()
            .filter(|s| **s == StatusCode::NO_CONTENT)
            .count();
        assert_eq!(deleted, 1, "{db:?}: {statuses:?}");
        let environment = app.service.environment(org).await.unwrap();
        let admins = app
            .service
            .list::<trustmail::domain::Client>(environment.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.role == trustmail::domain::Role::OrganizationAdmin)
            .count();
        assert_eq!(admins, 1, "{db:?}");
    }
}
