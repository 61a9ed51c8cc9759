//! Authentication (401) and isolation between environments (403/404, never data).

use reqwest::{Method, StatusCode};
use serde_json::json;
use trustmail::{
    domain::{ClientId, Role},
    service::Actor,
};

use crate::support::{TestApp, UNKNOWN_ID, assert_p1_error};

/// Every endpoint of one environment: (method, path, body).
fn endpoints(env: &str, domain: &str) -> Vec<(Method, String, Option<serde_json::Value>)> {
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

#[tokio::test]
async fn another_environments_admin_never_sees_data() {
    let app = TestApp::spawn().await;
    let a = app.environment("A").await;
    let b = app.environment("B").await;
    let domain_b = app.domain(&b, "b.shopco.test").await;
    for role in [Role::EnvironmentAdmin, Role::ReadOnly] {
        let token_a = app.token(&a, role).await;
        for (method, path, body) in endpoints(&b, &domain_b) {
            // 403 for every one: a 404 would tell which ids exist elsewhere.
            let r = app.request(method, &path, Some(&token_a), body).await;
            let body = assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
            assert!(body.get("domainName").is_none());
        }
        // Environments that do not exist look the same as other people's.
        for (method, path, body) in endpoints(UNKNOWN_ID, UNKNOWN_ID) {
            let r = app.request(method, &path, Some(&token_a), body).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }
    // Nothing of B changed.
    let r = app
        .get(
            &format!("/v1/environments/{b}/emailDomains/{domain_b}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // And listing environments shows only one's own.
    let token_a = app.token(&a, Role::EnvironmentAdmin).await;
    let list: serde_json::Value = app
        .get("/v1/environments", &token_a)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    assert_eq!(list["_embedded"]["environments"][0]["id"], a.as_str());
}

#[tokio::test]
async fn read_only_gets_403_on_every_write_and_reads_fine() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let reader = app.token(&env, Role::ReadOnly).await;
    for (method, path, body) in endpoints(&env, &domain) {
        let r = app
            .request(method.clone(), &path, Some(&reader), body)
            .await;
        // Asking for a DNS check now reads; it changes no resource.
        let reads = method == Method::GET || path.ends_with("/verification");
        if reads {
            // Sub-resources that do not exist (no MAIL FROM yet, an unknown address) are 404s.
            assert!(
                matches!(r.status(), StatusCode::OK | StatusCode::NOT_FOUND),
                "{method} {path}: {}",
                r.status()
            );
        } else {
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
async fn environment_admins_write_in_their_own_environment_only() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = app.create_domain(&env, &admin, "a.shopco.test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = app.delete(&format!("/v1/environments/{env}"), &admin).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn missing_malformed_forged_and_expired_tokens_get_401() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let other_app = TestApp::spawn().await;
    let actor = Actor {
        client_id: app.admin.client_id,
        environment_id: app.admin.environment_id,
        role: Role::OrganizationAdmin,
    };
    let expired = app
        .service
        .tokens()
        .issue_at(
            &actor,
            time::OffsetDateTime::now_utc() - time::Duration::hours(2),
        )
        .unwrap();
    // Same header and signature, but a payload claiming another client.
    let mut parts: Vec<String> = app.admin_token.split('.').map(str::to_owned).collect();
    let forged_actor = Actor {
        client_id: ClientId::new(),
        ..actor
    };
    let other_token = app.service.tokens().issue(&forged_actor).unwrap();
    parts[1] = other_token.split('.').nth(1).unwrap().to_owned();
    let tampered = parts.join(".");
    let bad_tokens = [
        None,
        Some("garbage".to_owned()),
        Some("a.b.c".to_owned()),
        Some(other_app.admin_token.clone()),
        Some(expired),
        Some(tampered),
    ];
    for token in &bad_tokens {
        for (method, path, body) in endpoints(&env, &domain) {
            let r = app.request(method, &path, token.as_deref(), body).await;
            assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
        }
    }
    // A non-bearer scheme is no token at all.
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
async fn jwks_publishes_the_verifying_key_without_a_token() {
    let app = TestApp::spawn().await;
    let env = app.admin.environment_id;
    let r = app
        .request(Method::GET, &format!("/{env}/as/jwks"), None, None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let jwks: serde_json::Value = r.json().await.unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    let header = jsonwebtoken::decode_header(&app.admin_token).unwrap();
    assert_eq!(key["kid"], header.kid.unwrap().as_str());
    let r = app
        .request(Method::GET, &format!("/{UNKNOWN_ID}/as/jwks"), None, None)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn health_metrics_and_openapi_need_no_token() {
    let app = TestApp::spawn().await;
    let r = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let r = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("http_request_duration_seconds"), "{text}");
    let r = app.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["servers"][0]["url"], app.url.as_str());
    assert!(doc["paths"]["/v1/environments/{environmentId}/emailDomains"].is_object());
}
