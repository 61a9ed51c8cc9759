//! The token endpoint's bounds and the checks of access tokens (README § Token endpoint limits).

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use trustmail::{
    domain::{ClientId, Role},
    secrets::{Binding, MasterKey},
};

use crate::support::{TestApp, assert_p1_error, retry_after};

async fn client(app: &TestApp, env: &str) -> (ClientId, String) {
    let operator = app.service.operator().await.unwrap().unwrap();
    let environment = app.service.environment(env.parse().unwrap()).await.unwrap();
    let client = app
        .service
        .create_client(&operator, &environment, "limits", Role::EnvironmentAdmin)
        .await
        .unwrap();
    (client.client.id, client.client_secret)
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
    let retry_after = retry_after(&response);
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "REQUEST_LIMITED", "{body}");
}

/// The answer to an eleventh try within the minute, with the right secret or a wrong one.
async fn eleventh_try(right_secret: bool) -> Response {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (client, secret) = client(&app, &env).await;
    fail_ten_times(&app, &env, client).await;
    let secret = if right_secret {
        secret.as_str()
    } else {
        "wrong"
    };
    token_request(&app, &env, client, secret).await
}

#[tokio::test]
async fn the_eleventh_wrong_secret_within_a_minute_is_429_with_retry_after() {
    assert_locked_out(eleventh_try(false).await).await;
}

#[tokio::test]
async fn the_right_secret_during_a_lockout_gets_a_token() {
    assert_eq!(eleventh_try(true).await.status(), StatusCode::OK);
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

/// An HTTP client whose connections come from `source` (any 127.0.0.0/8 address reaches a
/// server on 127.0.0.1).
fn http_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn token_request_with(
    http: &reqwest::Client,
    app: &TestApp,
    env: &str,
    client: ClientId,
    secret: &str,
) -> Response {
    http.post(format!("{}/{env}/as/token", app.url))
        .basic_auth(client.to_string(), Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn wrong_secrets_from_one_address_lock_out_nobody_elsewhere() {
    let app = TestApp::spawn().await;
    let admin_env = app.admin.environment_id.to_string();
    let attacker = http_from("127.0.0.2");
    for _ in 0..12 {
        token_request_with(&attacker, &app, &admin_env, app.admin.client_id, "wrong").await;
    }
    let locked = token_request_with(&attacker, &app, &admin_env, app.admin.client_id, "wrong");
    assert_locked_out(locked.await).await;
    // The administrator itself, from its own address, is not affected at all.
    let response = token_request_with(
        &http_from("127.0.0.3"),
        &app,
        &admin_env,
        app.admin.client_id,
        &app.admin.client_secret,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = token_request_with(
        &http_from("127.0.0.3"),
        &app,
        &admin_env,
        app.admin.client_id,
        "wrong",
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wrong_secrets_at_another_environments_token_url_are_not_counted() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let other_env = app.environment("Elsewhere").await;
    let (client, _) = client(&app, &env).await;
    for _ in 0..20 {
        let response = token_request(&app, &other_env, client, "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // At its own environment the client still has all ten tries.
    fail_ten_times(&app, &env, client).await;
    assert_locked_out(token_request(&app, &env, client, "wrong").await).await;
}

#[tokio::test]
async fn a_trusted_proxy_is_not_the_source_its_forwarded_address_is() {
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |config| {
        config.http.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    let env = app.environment("Shop").await;
    let (client, _) = client(&app, &env).await;
    let through_proxy = |forwarded: &'static str| {
        app.http
            .post(format!("{}/{env}/as/token", app.url))
            .basic_auth(client.to_string(), Some("wrong"))
            .header("X-Forwarded-For", forwarded)
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    for _ in 0..10 {
        through_proxy("203.0.113.1").await.unwrap();
    }
    assert_locked_out(through_proxy("203.0.113.1").await.unwrap()).await;
    // Another client behind the same proxy still has its own count.
    let other = through_proxy("203.0.113.2").await.unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
}

/// Ten wrong secrets on one replica and one on the other: the lockout holds on both.
async fn failures_counted_across_replicas(db: crate::support::Db) {
    let first = TestApp::spawn_on(db.clone(), |_| {}).await;
    let second = first.replica().await;
    let env = first.environment("Shop").await;
    let (client, secret) = client(&first, &env).await;
    for app in [&first, &second].repeat(5) {
        let response = token_request(app, &env, client, "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{db:?}");
    }
    for app in [&first, &second] {
        assert_locked_out(token_request(app, &env, client, "wrong").await).await;
    }
    // The right secret gets a token and starts the count over, on every replica.
    let right = token_request(&second, &env, client, &secret).await;
    assert_eq!(right.status(), StatusCode::OK, "{db:?}");
    let wrong = token_request(&first, &env, client, "wrong").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{db:?}");
}

#[tokio::test]
async fn failures_are_counted_across_replicas() {
    for db in crate::support::backends("failures_are_counted_across_replicas").await {
        failures_counted_across_replicas(db).await;
    }
}

#[tokio::test]
async fn an_unknown_client_costs_the_same_verification_as_a_known_one() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let (known, _) = client(&app, &env).await;
    let other_env = app.environment("Elsewhere").await;
    let verifications = || app.service.secret_verifications();
    for (environment, client) in [(&env, known), (&env, ClientId::new()), (&other_env, known)] {
        let before = verifications();
        let response = token_request(&app, environment, client, "wrong").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(verifications() - before, 1, "{client} at {environment}");
    }
}

/// A token signed with the service's own key, with claims as given.
async fn forge(app: &TestApp, kid: Option<&str>, claims: Value) -> String {
    let stored = app.store().list_signing_keys().await.unwrap();
    let master = MasterKey::load(&app.config.secrets.master_key_file)
        .unwrap()
        .unwrap();
    let pkcs8 = master
        .open(
            &Binding::token_signing_key(&stored[0].kid),
            &stored[0].sealed_private_key,
        )
        .unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.unwrap_or(&stored[0].kid).to_owned());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&pkcs8)).unwrap()
}

/// The claims trustmail itself puts in the administrator's tokens, changed by `change`.
fn admin_claims(app: &TestApp, change: impl FnOnce(&mut Value)) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let env = app.admin.environment_id;
    let mut claims = json!({
        "iss": format!("{}/{env}/as", app.url),
        "aud": app.url,
        "sub": app.admin.client_id.to_string(),
        "env": env.to_string(),
        "role": "ORGANIZATION_ADMIN",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    change(&mut claims);
    claims
}

async fn list_environments(app: &TestApp, token: &str) -> Response {
    app.get("/v1/environments", token).await
}

#[tokio::test]
async fn a_forged_token_with_the_right_issuer_and_audience_is_accepted() {
    let app = TestApp::spawn().await;
    let token = forge(&app, None, admin_claims(&app, |_| {})).await;
    assert_eq!(
        list_environments(&app, &token).await.status(),
        StatusCode::OK
    );
}

/// A token with the administrator's claims changed by `change` is a 401.
async fn assert_refused(change: impl FnOnce(&mut Value)) {
    let app = TestApp::spawn().await;
    let token = forge(&app, None, admin_claims(&app, change)).await;
    let response = list_environments(&app, &token).await;
    assert_p1_error(response, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn a_token_with_another_issuer_is_401() {
    assert_refused(|c| c["iss"] = json!("https://elsewhere.example/as")).await;
}

#[tokio::test]
async fn a_token_with_another_audience_is_401() {
    assert_refused(|c| c["aud"] = json!("https://elsewhere.example")).await;
}

#[tokio::test]
async fn a_token_without_an_audience_is_401() {
    // As tokens issued before `aud` was added.
    assert_refused(|c| {
        c.as_object_mut().unwrap().remove("aud");
    })
    .await;
}

async fn key_reloads(app: &TestApp) -> u64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("token_key_reloads_total "))
        .map_or(0, |value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn unknown_kid_tokens_reload_the_keys_at_most_once_a_second() {
    let app = TestApp::spawn().await;
    let mut tokens = Vec::new();
    for _ in 0..40 {
        let kid = uuid::Uuid::new_v4().to_string();
        tokens.push(forge(&app, Some(&kid), admin_claims(&app, |_| {})).await);
    }
    let before = key_reloads(&app).await;
    let started = Instant::now();
    let answers =
        futures_util::future::join_all(tokens.iter().map(|token| list_environments(&app, token)))
            .await;
    let elapsed = started.elapsed();
    for response in answers {
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let reloads = key_reloads(&app).await - before;
    // The counter is process-wide: other tests' servers may add a reload a second each.
    let allowed = elapsed.as_secs() + 1 + 3;
    assert!(
        (1..=allowed).contains(&reloads),
        "{reloads} reloads for 40 unknown kids in {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}
