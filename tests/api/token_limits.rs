//! The token endpoint's bounds (README § Token endpoint limits).

use reqwest::{Response, StatusCode};
use serde_json::Value;
use trustmail::domain::{ClientId, Role};

use crate::support::TestApp;

async fn client(app: &TestApp, env: &str) -> (ClientId, String) {
    let client = app
        .service
        .create_client(env.parse().unwrap(), Role::EnvironmentAdmin)
        .await
        .unwrap();
    (client.client_id, client.client_secret)
}

async fn token_request(app: &TestApp, env: &str, client: ClientId, secret: &str) -> Response {
    app.http
        .post(format!("{}/{env}/as/token", app.url))
        .basic_auth(client.to_string(), Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

/// Ten wrong secrets for `client`, each refused the ordinary way.
async fn fail_ten_times(app: &TestApp, env: &str, client: ClientId) {
    for _ in 0..10 {
        let response = token_request(app, env, client, "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
}

async fn assert_locked_out(response: Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "REQUEST_LIMITED", "{body}");
}

#[tokio::test]
async fn the_eleventh_wrong_secret_within_a_minute_is_429_with_retry_after() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (client, _) = client(&app, &env).await;
    fail_ten_times(&app, &env, client).await;
    assert_locked_out(token_request(&app, &env, client, "wrong").await).await;
}

#[tokio::test]
async fn the_right_secret_during_a_lockout_is_429_too() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (client, secret) = client(&app, &env).await;
    fail_ten_times(&app, &env, client).await;
    assert_locked_out(token_request(&app, &env, client, &secret).await).await;
}

#[tokio::test]
async fn a_lockout_is_per_client() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (locked, _) = client(&app, &env).await;
    let (other, secret) = client(&app, &env).await;
    fail_ten_times(&app, &env, locked).await;
    let response = token_request(&app, &env, other, &secret).await;
    assert_eq!(response.status(), StatusCode::OK);
}
