//! One test per status code and error message, each answer a snapshot of its P1Error.

use reqwest::{Method, Response, StatusCode, header};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{
    Db, TestApp, UNKNOWN_ID, assert_error_snapshot, assert_p1_error, p1_error, redact,
};

async fn raw_post(
    app: &TestApp,
    path: &str,
    token: &str,
    content_type: &str,
    body: &str,
) -> Response {
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
async fn unknown_routes_are_404_not_found_before_auth() {
    let app = TestApp::spawn().await;
    let mut bodies = Vec::new();
    for path in ["/nope", "/v1/environments/x/y/z", "/v1/emailDomains"] {
        let response = app.request(Method::GET, path, None, None).await;
        bodies.push(p1_error(response, StatusCode::NOT_FOUND).await);
    }
    insta::assert_json_snapshot!(bodies, { "[].id" => redact::id() });
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow_before_auth() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let mut bodies = Vec::new();
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
        bodies.push(p1_error(response, StatusCode::METHOD_NOT_ALLOWED).await);
    }
    insta::assert_json_snapshot!(bodies, { "[].id" => redact::id() });
}

#[tokio::test]
async fn an_environment_without_a_name_is_400_required_value() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/environments",
            &app.admin_token,
            json!({"region": "NA"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_environment_in_an_unknown_region_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/v1/environments",
            &app.admin_token,
            json!({"name": "x", "region": "MARS"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn malformed_json_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let r = raw_post(
        &app,
        "/v1/environments",
        &app.admin_token,
        "application/json",
        "{not json",
    )
    .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_content_type_other_than_json_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let r = raw_post(
        &app,
        "/v1/environments",
        &app.admin_token,
        "text/plain",
        r#"{"name":"x","region":"NA"}"#,
    )
    .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_body_over_64_kib_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let huge = format!(r#"{{"name":"{}","region":"NA"}}"#, "x".repeat(70 * 1024));
    let r = raw_post(
        &app,
        "/v1/environments",
        &app.admin_token,
        "application/json",
        &huge,
    )
    .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn no_token_is_401_with_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let r = app
        .request(Method::GET, "/v1/environments", None, None)
        .await;
    assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Bearer");
    assert_error_snapshot!(r, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_environment_admin_creating_an_environment_is_403() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let env_admin = app.token(&env, Role::EnvironmentAdmin).await;
    let r = app
        .post(
            "/v1/environments",
            &env_admin,
            json!({"name": "x", "region": "NA"}),
        )
        .await;
    assert_error_snapshot!(r, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_unknown_environment_is_404() {
    let app = TestApp::spawn().await;
    let r = app
        .get(&format!("/v1/environments/{UNKNOWN_ID}"), &app.admin_token)
        .await;
    assert_error_snapshot!(r, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_malformed_environment_id_is_404() {
    let app = TestApp::spawn().await;
    let r = app
        .get("/v1/environments/not-a-uuid", &app.admin_token)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

/// An app allowing one domain per environment, and an environment in it: (app, environment,
/// the environment's emailDomains path).
async fn one_domain_app() -> (TestApp, String, String) {
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.limits.domains_per_environment = 1;
    })
    .await;
    let env = app.environment("E").await;
    let path = format!("/v1/environments/{env}/emailDomains");
    (app, env, path)
}

#[tokio::test]
async fn a_domain_without_a_name_is_400_required_value() {
    let (app, _, path) = one_domain_app().await;
    let r = app.post(&path, &app.admin_token, json!({})).await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_domain_name_that_is_not_a_string_is_400_invalid_value() {
    let (app, _, path) = one_domain_app().await;
    let r = app
        .post(&path, &app.admin_token, json!({"domainName": 7}))
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wildcards_bare_names_public_suffixes_and_bad_labels_are_400_invalid_value() {
    let (app, env, _) = one_domain_app().await;
    let mut bodies = Vec::new();
    for bad in [
        "*.shopco.test",
        "shopco",
        "test",
        "co.uk",
        "a_b.shopco.test",
        "bad..shopco.test",
    ] {
        let r = app.create_domain(&env, &app.admin_token, bad).await;
        let body = p1_error(r, StatusCode::BAD_REQUEST).await;
        bodies.push(json!({"domainName": bad, "answer": body}));
    }
    insta::assert_json_snapshot!(bodies, { "[].answer.id" => redact::id() });
}

#[tokio::test]
async fn a_domain_whose_record_names_could_not_exist_is_400_invalid_value() {
    let (app, env, _) = one_domain_app().await;
    // 210 characters: a valid name, but `<32-character token>._domainkey.` makes 254.
    let label = "a".repeat(63);
    let name = format!("{label}.{label}.{label}.bbbbbb.shopco.test");
    assert_eq!(name.len(), 210);
    let r = app.create_domain(&env, &app.admin_token, &name).await;
    let body = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "domainName")),
    )
    .await;
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too long"),
        "{body}"
    );
    // One character less fits exactly.
    let shorter = name.replacen('b', "", 1);
    let r = app.create_domain(&env, &app.admin_token, &shorter).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_domain_body_that_is_not_an_object_is_400_invalid_request() {
    let (app, _, path) = one_domain_app().await;
    let r = raw_post(&app, &path, &app.admin_token, "application/json", "[]").await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_taken_name_in_any_case_is_400_uniqueness_violation() {
    let (app, env, _) = one_domain_app().await;
    app.domain(&env, "a.shopco.test").await;
    let r = app
        .create_domain(&env, &app.admin_token, "A.SHOPCO.TEST.")
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_domain_over_the_limit_is_400_size_limit_exceeded_with_the_maximum() {
    let (app, env, _) = one_domain_app().await;
    app.domain(&env, "a.shopco.test").await;
    let r = app
        .create_domain(&env, &app.admin_token, "b.shopco.test")
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn uniqueness_outranks_the_limit() {
    let (app, env, _) = one_domain_app().await;
    app.domain(&env, "a.shopco.test").await;
    let r = app
        .create_domain(&env, &app.admin_token, "a.shopco.test")
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("UNIQUENESS_VIOLATION", "domainName")),
    )
    .await;
}

#[tokio::test]
async fn listing_domains_without_a_token_is_401() {
    let (app, _, path) = one_domain_app().await;
    let r = app.request(Method::GET, &path, None, None).await;
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn a_reader_creating_a_domain_is_403() {
    let (app, env, _) = one_domain_app().await;
    let reader = app.token(&env, Role::ReadOnly).await;
    let r = app.create_domain(&env, &reader, "c.shopco.test").await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn an_unknown_domain_and_its_records_are_404() {
    let (app, _, path) = one_domain_app().await;
    for leaf in ["", "/ownership", "/dkim", "/spf"] {
        let r = app
            .get(&format!("{path}/{UNKNOWN_ID}{leaf}"), &app.admin_token)
            .await;
        assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    }
    let r = app
        .delete(&format!("{path}/{UNKNOWN_ID}"), &app.admin_token)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn a_domain_in_an_unknown_environment_is_404() {
    let app = TestApp::spawn().await;
    let r = app
        .create_domain(UNKNOWN_ID, &app.admin_token, "d.shopco.test")
        .await;
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
async fn an_activities_limit_of_zero_is_400_invalid_value() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let r = app
        .get(
            &format!("/v1/environments/{env}/activities?limit=0"),
            &app.admin_token,
        )
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn activities_with_a_malformed_token_are_401() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let r = app
        .request(
            Method::GET,
            &format!("/v1/environments/{env}/activities"),
            Some("garbage"),
            None,
        )
        .await;
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn another_environments_activities_are_403() {
    let app = TestApp::spawn().await;
    let env = app.environment("E").await;
    let other = app.environment("F").await;
    let token = app.token(&other, Role::ReadOnly).await;
    let r = app
        .get(&format!("/v1/environments/{env}/activities"), &token)
        .await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
}

#[tokio::test]
async fn an_unknown_environments_activities_are_404() {
    let app = TestApp::spawn().await;
    let r = app
        .get(
            &format!("/v1/environments/{UNKNOWN_ID}/activities"),
            &app.admin_token,
        )
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

/// The organization administrator's token URL, client id and secret.
fn token_endpoint(app: &TestApp) -> (String, String, String) {
    let env = app.admin.environment_id;
    (
        format!("{}/{env}/as/token", app.url),
        app.admin.client_id.to_string(),
        app.admin.client_secret.clone(),
    )
}

/// The body of an OAuth error (RFC 6749 §5.2) after checking its status and shape.
async fn oauth_error(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

/// Asks `url` for a token with the client's id and `secret` and the form `form`.
async fn token_request(app: &TestApp, url: &str, secret: &str, form: &[(&str, &str)]) -> Response {
    let (_, id, _) = token_endpoint(app);
    app.http
        .post(url)
        .basic_auth(&id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

const CLIENT_CREDENTIALS: &[(&str, &str)] = &[("grant_type", "client_credentials")];

#[tokio::test]
async fn client_secret_post_gets_a_bearer_token_for_an_hour() {
    let app = TestApp::spawn().await;
    let (url, id, secret) = token_endpoint(&app);
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
    insta::assert_json_snapshot!(body, { ".access_token" => "[token]" });
}

#[tokio::test]
async fn a_wrong_secret_is_401_invalid_client_with_a_challenge() {
    let app = TestApp::spawn().await;
    let (url, _, _) = token_endpoint(&app);
    let r = token_request(&app, &url, "wrong", CLIENT_CREDENTIALS).await;
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    let body = oauth_error(r, StatusCode::UNAUTHORIZED).await;
    insta::assert_json_snapshot!(body);
}

#[tokio::test]
async fn a_grant_other_than_client_credentials_is_400_unsupported_grant_type() {
    let app = TestApp::spawn().await;
    let (url, _, secret) = token_endpoint(&app);
    let r = token_request(&app, &url, &secret, &[("grant_type", "password")]).await;
    let body = oauth_error(r, StatusCode::BAD_REQUEST).await;
    insta::assert_json_snapshot!(body);
}

#[tokio::test]
async fn a_json_token_request_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let (url, id, secret) = token_endpoint(&app);
    let r = app
        .http
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    let body = oauth_error(r, StatusCode::BAD_REQUEST).await;
    insta::assert_json_snapshot!(body);
}

#[tokio::test]
async fn a_token_request_without_a_grant_type_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let (url, _, secret) = token_endpoint(&app);
    let r = token_request(&app, &url, &secret, &[("scope", "x")]).await;
    let body = oauth_error(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn a_token_request_over_64_kib_is_400_invalid_request() {
    let app = TestApp::spawn().await;
    let (url, _, secret) = token_endpoint(&app);
    let big = "x".repeat(70 * 1024);
    let form = [("grant_type", "client_credentials"), ("pad", big.as_str())];
    let r = token_request(&app, &url, &secret, &form).await;
    let body = oauth_error(r, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["error"], "invalid_request", "{body}");
}

#[tokio::test]
async fn a_client_gets_tokens_only_from_its_own_environments_token_url() {
    let app = TestApp::spawn().await;
    let (_, _, secret) = token_endpoint(&app);
    let other = app.environment("Other").await;
    for env in [other.as_str(), UNKNOWN_ID] {
        let url = format!("{}/{env}/as/token", app.url);
        let r = token_request(&app, &url, &secret, CLIENT_CREDENTIALS).await;
        let body = oauth_error(r, StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["error"], "invalid_client", "{env}: {body}");
    }
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
    let body = p1_error(r, StatusCode::INTERNAL_SERVER_ERROR).await;
    let text = body.to_string();
    assert!(
        !text.contains("dns_records") && !text.contains("sqlite"),
        "{text}"
    );
    insta::assert_json_snapshot!(body, { ".id" => redact::id() });
}
