//! One test per status code per endpoint family, with the exact P1Error codes.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{TestApp, UNKNOWN_ID, assert_p1_error};

#[tokio::test]
async fn unknown_routes_are_404_not_found_before_auth() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/v1/environments/x/y/z", "/v1/emailDomains"] {
        let response = app.request(Method::GET, path, None, None).await;
        assert_p1_error(response, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    }
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_before_auth() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    for (method, path) in [
        (Method::PUT, "/v1/environments".to_owned()),
        (
            Method::PATCH,
            format!("/v1/environments/{env}/emailDomains"),
        ),
        (
            Method::PUT,
            format!("/v1/environments/{env}/emailDomains/{UNKNOWN_ID}"),
        ),
        (
            Method::POST,
            format!("/v1/environments/{env}/emailDomains/{UNKNOWN_ID}/dkim"),
        ),
        (Method::DELETE, format!("/v1/environments/{env}/activities")),
        (Method::GET, format!("/{env}/as/token")),
    ] {
        let response = app.request(method.clone(), &path, None, None).await;
        assert!(
            response.headers().contains_key(header::ALLOW),
            "{method} {path}"
        );
        let body = assert_p1_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            None,
        )
        .await;
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn environments_answer_each_status_with_its_code() {
    let app = TestApp::spawn().await;
    let token = &app.admin_token;
    // 400: missing field, bad region, malformed JSON, wrong content type, too large.
    let r = app
        .post("/v1/environments", token, json!({"region": "NA"}))
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("REQUIRED_VALUE", "name")),
    )
    .await;
    let r = app
        .post(
            "/v1/environments",
            token,
            json!({"name": "x", "region": "MARS"}),
        )
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "region")),
    )
    .await;
    let r = raw_post(
        &app,
        "/v1/environments",
        token,
        "application/json",
        "{not json",
    )
    .await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
    let r = raw_post(
        &app,
        "/v1/environments",
        token,
        "text/plain",
        r#"{"name":"x","region":"NA"}"#,
    )
    .await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
    let huge = format!(r#"{{"name":"{}","region":"NA"}}"#, "x".repeat(70 * 1024));
    let r = raw_post(&app, "/v1/environments", token, "application/json", &huge).await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
    // 401, 403, 404.
    let r = app
        .request(Method::GET, "/v1/environments", None, None)
        .await;
    assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
    let env = app.environment("E").await;
    let env_admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = app
        .post(
            "/v1/environments",
            &env_admin,
            json!({"name": "x", "region": "NA"}),
        )
        .await;
    let body = assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    assert_eq!(
        body["message"],
        "You do not have permissions or are not licensed to make this request."
    );
    let r = app
        .get(&format!("/v1/environments/{UNKNOWN_ID}"), token)
        .await;
    let body = assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    assert_eq!(
        body["message"],
        "The request could not be completed. The requested resource was not found."
    );
    let r = app.get("/v1/environments/not-a-uuid", token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn email_domains_answer_each_status_with_its_code() {
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.limits.domains_per_environment = 1;
    })
    .await;
    let token = &app.admin_token;
    let env = app.environment("E").await;
    let path = format!("/v1/environments/{env}/emailDomains");
    let r = app.post(&path, token, json!({})).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("REQUIRED_VALUE", "domainName")),
    )
    .await;
    let r = app.post(&path, token, json!({"domainName": 7})).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "domainName")),
    )
    .await;
    for bad in [
        "*.shopco.test",
        "shopco",
        "test",
        "co.uk",
        "a_b.shopco.test",
        "bad..shopco.test",
    ] {
        let r = app.create_domain(&env, token, bad).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some(("INVALID_VALUE", "domainName")),
        )
        .await;
    }
    let r = raw_post(&app, &path, token, "application/json", "[]").await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
    assert_eq!(
        app.create_domain(&env, token, "a.shopco.test")
            .await
            .status(),
        StatusCode::CREATED
    );
    let r = app.create_domain(&env, token, "A.SHOPCO.TEST.").await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("UNIQUENESS_VIOLATION", "domainName")),
    )
    .await;
    let r = app.create_domain(&env, token, "b.shopco.test").await;
    let body = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("SIZE_LIMIT_EXCEEDED", "domainName")),
    )
    .await;
    assert_eq!(body["details"][0]["innerError"]["maximumValue"], 1);
    // Uniqueness outranks the limit.
    let r = app.create_domain(&env, token, "a.shopco.test").await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("UNIQUENESS_VIOLATION", "domainName")),
    )
    .await;

    let r = app.request(Method::GET, &path, None, None).await;
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
    let reader = app.token(&env, Role::ReadOnly).await;
    let r = app.create_domain(&env, &reader, "c.shopco.test").await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    for leaf in ["", "/ownership", "/dkim", "/spf"] {
        let r = app.get(&format!("{path}/{UNKNOWN_ID}{leaf}"), token).await;
        assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    }
    let r = app.delete(&format!("{path}/{UNKNOWN_ID}"), token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    let r = app.create_domain(UNKNOWN_ID, token, "d.shopco.test").await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn not_found_outranks_a_bad_body() {
    let app = TestApp::spawn().await;
    let r = raw_post(
        &app,
        &format!("/v1/environments/{UNKNOWN_ID}/emailDomains"),
        &app.admin_token,
        "text/plain",
        "garbage",
    )
    .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn activities_answer_each_status_with_its_code() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let path = format!("/v1/environments/{env}/activities");
    let r = app.get(&format!("{path}?limit=0"), &app.admin_token).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "limit")),
    )
    .await;
    let r = app.request(Method::GET, &path, Some("garbage"), None).await;
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
    let other = app.environment("F").await;
    let token = app.token(&other, Role::ReadOnly).await;
    let r = app.get(&path, &token).await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    let r = app
        .get(
            &format!("/v1/environments/{UNKNOWN_ID}/activities"),
            &app.admin_token,
        )
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn the_token_endpoint_answers_the_oauth_way() {
    let app = TestApp::spawn().await;
    let env = app.admin.environment_id.to_string();
    let url = format!("{}/{env}/as/token", app.url);
    let id = app.admin.client_id.to_string();
    let secret = app.admin.client_secret.clone();
    let oauth = |response: reqwest::Response, status: StatusCode, error: &'static str| async move {
        assert_eq!(response.status(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], error, "{body}");
        assert!(body["error_description"].is_string());
    };
    // client_secret_post works as well as basic.
    let r = app
        .http
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let r = app
        .http
        .post(&url)
        .basic_auth(&id, Some("wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    oauth(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = app
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    oauth(r, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let r = app
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    oauth(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let r = app
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[("scope", "x")])
        .send()
        .await
        .unwrap();
    oauth(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    let big = "x".repeat(70 * 1024);
    let r = app
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials"), ("pad", &big)])
        .send()
        .await
        .unwrap();
    oauth(r, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Only from the client's own environment's token URL.
    let other = app.environment("Other").await;
    let r = app
        .http
        .post(format!("{}/{other}/as/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let r = app
        .http
        .post(format!("{}/{UNKNOWN_ID}/as/token", app.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth(r, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

pub async fn raw_post(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> reqwest::Response {
    app.http
        .post(format!("{}{path}", app.url))
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn unexpected_failures_are_an_opaque_500() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    // Break the store under the running service.
    let db = format!("sqlite://{}", app.dir.path().join("trustmail.db").display());
    let pool = sqlx::AnyPool::connect(&db).await.unwrap();
    sqlx::query("DROP TABLE dns_records")
        .execute(&pool)
        .await
        .unwrap();
    let r = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/{domain}/dkim"),
            &app.admin_token,
        )
        .await;
    let body = assert_p1_error(
        r,
        StatusCode::INTERNAL_SERVER_ERROR,
        "UNEXPECTED_ERROR",
        None,
    )
    .await;
    let text = body.to_string();
    assert!(
        !text.contains("dns_records") && !text.contains("sqlite"),
        "{text}"
    );
}
