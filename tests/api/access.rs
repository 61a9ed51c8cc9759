//! Authentication (401) and isolation between environments (403/404, never data).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use trustmail::{
    domain::{ClientId, Role},
    service::Actor,
};

use crate::support::{TestApp, UNKNOWN_ID, assert_p1_error};

/// Every endpoint of one environment: (method, path, body).
fn endpoints(env: &str, domain: &str) -> Vec<(Method, String, Option<Value>)> {
    let d = format!("/v1/environments/{env}/emailDomains/{domain}");
    vec![
        (Method::GET, format!("/v1/environments/{env}"), None),
        (Method::DELETE, format!("/v1/environments/{env}"), None),
        (
            Method::GET,
            format!("/v1/environments/{env}/emailDomains"),
            None,
        ),
        (
            Method::POST,
            format!("/v1/environments/{env}/emailDomains"),
            Some(json!({"domainName": "new.shopco.test"})),
        ),
        (Method::GET, d.clone(), None),
        (Method::GET, format!("{d}/ownership"), None),
        (Method::GET, format!("{d}/dkim"), None),
        (Method::GET, format!("{d}/spf"), None),
        (Method::GET, format!("{d}/verification"), None),
        (Method::POST, format!("{d}/verification"), None),
        (Method::GET, format!("{d}/zoneFile"), None),
        (Method::GET, format!("{d}/mailFromDomain"), None),
        (
            Method::PUT,
            format!("{d}/mailFromDomain"),
            Some(json!({"mailFrom": {"domain": "bounce.new.shopco.test"}})),
        ),
        (Method::DELETE, format!("{d}/mailFromDomain"), None),
        (Method::GET, format!("{d}/trustedEmails"), None),
        (
            Method::POST,
            format!("{d}/trustedEmails"),
            Some(json!({"emailAddress": "x@new.shopco.test"})),
        ),
        (Method::GET, format!("{d}/trustedEmails/{UNKNOWN_ID}"), None),
        (
            Method::POST,
            format!("{d}/trustedEmails/{UNKNOWN_ID}"),
            None,
        ),
        (
            Method::DELETE,
            format!("{d}/trustedEmails/{UNKNOWN_ID}"),
            None,
        ),
        (Method::DELETE, d, None),
        (
            Method::GET,
            format!("/v1/environments/{env}/activities"),
            None,
        ),
    ]
}

/// Two environments, A and B, with a domain in B: (A, B, B's domain).
async fn two_environments(app: &TestApp) -> (String, String, String) {
    let a = app.environment("A").await;
    let b = app.environment("B").await;
    let domain_b = app.domain(&b, "b.shopco.test").await;
    (a, b, domain_b)
}

#[tokio::test]
async fn another_environments_clients_get_403_on_every_endpoint_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (a, b, domain_b) = two_environments(&app).await;
    for role in [Role::EnvironmentAdmin, Role::ReadOnly] {
        let token_a = app.token(&a, role).await;
        for (method, path, body) in endpoints(&b, &domain_b) {
            // 403 for every one: a 404 would tell which ids exist elsewhere.
            let r = app.request(method, &path, Some(&token_a), body).await;
            let body = assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
            assert!(body.get("domainName").is_none());
        }
    }
    let r = app
        .get(
            &format!("/v1/environments/{b}/emailDomains/{domain_b}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn environments_that_do_not_exist_look_the_same_as_other_peoples() {
    let app = TestApp::spawn().await;
    let (a, _, _) = two_environments(&app).await;
    for role in [Role::EnvironmentAdmin, Role::ReadOnly] {
        let token_a = app.token(&a, role).await;
        for (method, path, body) in endpoints(UNKNOWN_ID, UNKNOWN_ID) {
            let r = app.request(method, &path, Some(&token_a), body).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }
}

#[tokio::test]
async fn an_environments_client_lists_only_its_own_environment() {
    let app = TestApp::spawn().await;
    let (a, _, _) = two_environments(&app).await;
    let token_a = app.token(&a, Role::EnvironmentAdmin).await;
    let list: Value = app
        .get("/v1/environments", &token_a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    assert_eq!(list["_embedded"]["environments"][0]["id"], a.as_str());
}

/// Whether a reader may call an endpoint: reads, and asking for a DNS check now (it changes no
/// resource).
fn reads(method: &Method, path: &str) -> bool {
    *method == Method::GET || path.ends_with("/verification")
}

#[tokio::test]
async fn a_reader_gets_403_on_every_write() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let reader = app.token(&env, Role::ReadOnly).await;
    for (method, path, body) in endpoints(&env, &domain) {
        if !reads(&method, &path) {
            let r = app.request(method, &path, Some(&reader), body).await;
            assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
        }
    }
    let r = app
        .post(
            "/v1/environments",
            &reader,
            json!({"name": "x", "region": "NA"}),
        )
        .await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn a_reader_reads_every_resource() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let reader = app.token(&env, Role::ReadOnly).await;
    for (method, path, body) in endpoints(&env, &domain) {
        if reads(&method, &path) {
            let r = app
                .request(method.clone(), &path, Some(&reader), body)
                .await;
            // Sub-resources that do not exist (no MAIL FROM yet, an unknown address) are 404s.
            assert!(
                matches!(r.status(), StatusCode::OK | StatusCode::NOT_FOUND),
                "{method} {path}: {}",
                r.status()
            );
        }
    }
}

#[tokio::test]
async fn an_environment_admin_creates_domains_in_its_environment() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = app.create_domain(&env, &admin, "a.shopco.test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_environment_admin_cannot_delete_its_environment() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = app.delete(&format!("/v1/environments/{env}"), &admin).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

/// Asserts that each of `tokens` (`None`: no token) gets a 401 from every endpoint of an
/// environment of `app`.
async fn every_endpoint_refuses(app: &TestApp, tokens: &[Option<&str>]) {
    let env = app.environment("A").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    for token in tokens {
        for (method, path, body) in endpoints(&env, &domain) {
            let r = app.request(method, &path, *token, body).await;
            assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
        }
    }
}

/// The organization administrator as the token service sees it.
fn admin_actor(app: &TestApp) -> Actor {
    Actor {
        client_id: app.admin.client_id,
        environment_id: app.admin.environment_id,
        role: Role::OrganizationAdmin,
    }
}

#[tokio::test]
async fn no_token_is_401_everywhere() {
    let app = TestApp::spawn().await;
    every_endpoint_refuses(&app, &[None]).await;
}

#[tokio::test]
async fn a_malformed_token_is_401_everywhere() {
    let app = TestApp::spawn().await;
    every_endpoint_refuses(&app, &[Some("garbage"), Some("a.b.c")]).await;
}

#[tokio::test]
async fn another_servers_token_is_401_everywhere() {
    let app = TestApp::spawn().await;
    let other_app = TestApp::spawn().await;
    every_endpoint_refuses(&app, &[Some(&other_app.admin_token)]).await;
}

#[tokio::test]
async fn an_expired_token_is_401_everywhere() {
    let app = TestApp::spawn().await;
    let expired = app
        .service
        .tokens()
        .issue_at(
            &admin_actor(&app),
            time::OffsetDateTime::now_utc() - time::Duration::hours(2),
        )
        .unwrap();
    every_endpoint_refuses(&app, &[Some(&expired)]).await;
}

#[tokio::test]
async fn a_token_whose_payload_was_swapped_is_401_everywhere() {
    let app = TestApp::spawn().await;
    // Same header and signature, but a payload claiming another client.
    let mut parts: Vec<String> = app.admin_token.split('.').map(str::to_owned).collect();
    let forged_actor = Actor {
        client_id: ClientId::new(),
        ..admin_actor(&app)
    };
    let other_token = app.service.tokens().issue(&forged_actor).unwrap();
    parts[1] = other_token.split('.').nth(1).unwrap().to_owned();
    every_endpoint_refuses(&app, &[Some(&parts.join("."))]).await;
}

#[tokio::test]
async fn a_non_bearer_scheme_is_no_token_at_all() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .get(format!("{}/v1/environments", app.url))
        .basic_auth("a", Some("b"))
        .send()
        .await
        .unwrap();
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn jwks_publishes_the_key_that_verifies_tokens_without_a_token() {
    let app = TestApp::spawn().await;
    let env = app.admin.environment_id;
    let r = app
        .request(Method::GET, &format!("/{env}/as/jwks"), None, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: Value = r.json().await.unwrap();
    let header = jsonwebtoken::decode_header(&app.admin_token).unwrap();
    assert_eq!(jwks["keys"][0]["kid"], header.kid.unwrap().as_str());
    insta::assert_json_snapshot!(jwks, {
        ".keys[].kid" => "[kid]",
        ".keys[].x" => "[public key]",
    });
}

#[tokio::test]
async fn jwks_of_an_unknown_environment_is_not_found() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, &format!("/{UNKNOWN_ID}/as/jwks"), None, None)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

fn content_type(r: &reqwest::Response) -> &str {
    r.headers()["content-type"].to_str().unwrap()
}

#[tokio::test]
async fn health_needs_no_token() {
    let app = TestApp::spawn().await;
    let r = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(content_type(&r).starts_with("application/json"));
    insta::assert_json_snapshot!(r.json::<Value>().await.unwrap());
}

#[tokio::test]
async fn metrics_need_no_token_and_count_requests() {
    let app = TestApp::spawn().await;
    let r = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(content_type(&r).starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
}

#[tokio::test]
async fn the_openapi_document_needs_no_token_and_names_this_server() {
    let app = TestApp::spawn().await;
    let r = app.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], app.url.as_str());
    assert!(doc["paths"]["/v1/environments/{environmentId}/emailDomains"].is_object());
}
