//! One test per status code and error message, each answer a snapshot of its P1Error.

use reqwest::{Method, Response, StatusCode, header};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{
    Db, SmtpSink, TestApp, TestDns, UNKNOWN_ID, assert_error_snapshot, assert_p1_error, p1_error,
    redact,
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

// Rejections before a handler's own checks (issue 8, item 7): every one is JSON with a code,
// on every kind of route: a list with a query string, a create, an activation (a vendor JSON
// type), and the token and JWKS endpoints (`/{environmentId}/as/…`, whose errors are OAuth's).

/// A running app with one environment, a verified domain and a trusted email in it: the paths
/// of the routes under test.
struct Routes {
    app: TestApp,
    _dns: std::sync::Arc<TestDns>,
    _sink: SmtpSink,
    activities: String,
    domains: String,
    trusted_email: String,
}

const ACTIVATE: &str = "application/vnd.pingidentity.trustedEmail.activate+json";

impl Routes {
    async fn new() -> Self {
        let dns = TestDns::start().await;
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let app = TestApp::with_dns(&dns, move |c| {
            c.mail.smtp_url = trustmail::config::SmtpUrl::parse(&url).unwrap()
        })
        .await;
        let env = app.environment("E").await;
        let domain_id = app.domain(&env, "a.shopco.test").await;
        app.publish_domain(&dns, &env, &domain_id).await;
        let domains = format!("/v1/environments/{env}/emailDomains");
        let r = app
            .post(
                &format!("{domains}/{domain_id}/trustedEmails"),
                &app.admin_token,
                json!({"emailAddress": "noreply@a.shopco.test"}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let created: Value = r.json().await.unwrap();
        let trusted_email = format!(
            "{domains}/{domain_id}/trustedEmails/{}",
            created["id"].as_str().unwrap()
        );
        Self {
            activities: format!("/v1/environments/{env}/activities"),
            app,
            _dns: dns,
            _sink: sink,
            domains,
            trusted_email,
        }
    }

    fn token_url(&self) -> String {
        format!("/{}/as/token", self.app.admin.environment_id)
    }

    /// Sends `body` as `content_type` (none when `None`) with the admin token.
    async fn send(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        let mut request = self
            .app
            .http
            .request(method, format!("{}{path}", self.app.url))
            .bearer_auth(&self.app.admin_token)
            .body(body);
        if let Some(content_type) = content_type {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        request.send().await.unwrap()
    }

    /// The answers to each `(label, method, path)`, sent with `content_type` and `body`.
    async fn answers(
        &self,
        requests: &[(&str, Method, &str)],
        content_type: &str,
        body: &str,
    ) -> Vec<Value> {
        let mut answers = Vec::new();
        for (label, method, path) in requests {
            let r = self
                .send(method.clone(), path, Some(content_type), body.to_owned())
                .await;
            answers.push(json_answer(label, r).await);
        }
        answers
    }

    /// The activities list's answers to each of `queries`.
    async fn list_activities(&self, queries: &[&str]) -> Vec<Value> {
        let mut answers = Vec::new();
        for query in queries {
            let path = format!("{}{query}", self.activities);
            let r = self.send(Method::GET, &path, None, "").await;
            answers.push(json_answer(query, r).await);
        }
        answers
    }

    /// The answers of a domain create (`application/json`) and an activation (its vendor type)
    /// to `body`.
    async fn post_bodies(&self, body: impl Into<Vec<u8>>) -> Vec<Value> {
        let body = body.into();
        let mut answers = Vec::new();
        for (label, path, content_type) in [
            ("domain create", &self.domains, "application/json"),
            ("activation", &self.trusted_email, ACTIVATE),
        ] {
            let r = self
                .send(Method::POST, path, Some(content_type), body.clone())
                .await;
            answers.push(json_answer(label, r).await);
        }
        answers
    }

    /// The token endpoint asked with HTTP Basic, as `content_type`.
    async fn token(&self, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
        self.app
            .http
            .post(format!("{}{}", self.app.url, self.token_url()))
            .basic_auth(
                self.app.admin.client_id.to_string(),
                Some(&self.app.admin.client_secret),
            )
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

/// `route`'s answer: its status and JSON body, after checking that it is JSON with a code (a
/// P1Error's `code`, `message` and `id`, or OAuth's `error` and `error_description`).
async fn json_answer(route: &str, response: Response) -> Value {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{route}: {status} {content_type}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    let p1 = body["code"].is_string() && body["message"].is_string() && body["id"].is_string();
    let oauth = body["error"].is_string() && body["error_description"].is_string();
    assert!(p1 || oauth, "{route}: {body}");
    json!({"route": route, "status": status, "answer": body})
}

macro_rules! assert_answers_snapshot {
    ($answers:expr) => {
        insta::assert_json_snapshot!($answers, { "[].answer.id" => redact::id() });
    };
}

#[tokio::test]
async fn a_repeated_query_parameter_is_400_invalid_request() {
    let t = Routes::new().await;
    let answers = t
        .list_activities(&["?limit=1&limit=2", "?offset=0&offset=0"])
        .await;
    assert_answers_snapshot!(answers);
}

#[tokio::test]
async fn a_query_parameter_that_is_not_a_number_is_400_invalid_value() {
    let t = Routes::new().await;
    let answers = t
        .list_activities(&["?limit=abc", "?offset=-1", "?limit=%FF", "?limit=1%"])
        .await;
    assert_answers_snapshot!(answers);
}

#[tokio::test]
async fn a_path_segment_that_is_not_utf8_is_404_not_found() {
    let t = Routes::new().await;
    let bad_domain = format!("{}/%FF", t.domains);
    let bad_email = format!("{}%C3%28", t.trusted_email);
    let requests = [
        ("environment", Method::GET, "/v1/environments/%FF"),
        ("activities", Method::GET, "/v1/environments/%FF/activities"),
        ("domain", Method::GET, bad_domain.as_str()),
        ("activation", Method::POST, bad_email.as_str()),
        ("jwks", Method::GET, "/%FF/as/jwks"),
    ];
    assert_answers_snapshot!(t.answers(&requests, ACTIVATE, "{}").await);
}

#[tokio::test]
async fn bad_percent_encoding_in_a_path_is_404_not_found() {
    let t = Routes::new().await;
    let bad_domain = format!("{}/%ZZ", t.domains);
    let requests = [
        ("environment", Method::GET, "/v1/environments/%"),
        ("activities", Method::GET, "/v1/environments/%G1/activities"),
        ("domain", Method::GET, bad_domain.as_str()),
        ("jwks", Method::GET, "/%ZZ/as/jwks"),
    ];
    assert_answers_snapshot!(t.answers(&requests, "application/json", "").await);
}

#[tokio::test]
async fn a_token_request_whose_path_is_not_utf8_is_400_invalid_request() {
    let t = Routes::new().await;
    let r = t
        .app
        .http
        .post(format!("{}/%FF/as/token", t.app.url))
        .form(CLIENT_CREDENTIALS)
        .send()
        .await
        .unwrap();
    assert_answers_snapshot!(vec![json_answer("/%FF/as/token", r).await]);
}

#[tokio::test]
async fn a_method_and_path_matching_nothing_is_404_not_found() {
    let t = Routes::new().await;
    let under_domains = format!("{}/x/y/z/w", t.domains);
    let requests = [
        ("POST /v2/environments", Method::POST, "/v2/environments"),
        ("DELETE /%FF", Method::DELETE, "/%FF"),
        (
            "PATCH under a domain",
            Method::PATCH,
            under_domains.as_str(),
        ),
        (
            "GET /v1/environments/x/as/token",
            Method::GET,
            "/v1/environments/x/as/token",
        ),
    ];
    assert_answers_snapshot!(t.answers(&requests, "application/json", "{}").await);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_400_invalid_request() {
    let t = Routes::new().await;
    let body = r#"{"domainName":"b.shopco.test","verificationCode":"ABCDEFGH"}"#;
    let mut answers = Vec::new();
    for (path, content_type) in [
        (&t.domains, Some("text/plain")),
        (&t.domains, Some("application/x-www-form-urlencoded")),
        (&t.domains, None),
        (&t.trusted_email, Some("application/json")),
        (&t.trusted_email, None),
    ] {
        let r = t.send(Method::POST, path, content_type, body).await;
        answers.push(json_answer(content_type.unwrap_or("(none)"), r).await);
    }
    let r = t.token("application/json", "{}").await;
    answers.push(json_answer("token: application/json", r).await);
    assert_answers_snapshot!(answers);
}

#[tokio::test]
async fn a_charset_other_than_utf8_is_400_invalid_request() {
    let t = Routes::new().await;
    let mut answers = Vec::new();
    for (path, content_type, body) in [
        (
            &t.domains,
            "application/json; charset=latin1",
            r#"{"domainName":"b.shopco.test"}"#,
        ),
        (
            &t.trusted_email,
            "application/vnd.pingidentity.trustedEmail.activate+json; charset=\"ISO-8859-1\"",
            r#"{"verificationCode":"ABCDEFGH"}"#,
        ),
    ] {
        let r = t.send(Method::POST, path, Some(content_type), body).await;
        answers.push(json_answer(content_type, r).await);
    }
    let r = t
        .token(
            "application/x-www-form-urlencoded; charset=latin1",
            "grant_type=client_credentials",
        )
        .await;
    answers.push(json_answer("token: charset=latin1", r).await);
    assert_answers_snapshot!(answers);
}

#[tokio::test]
async fn a_charset_of_utf8_is_accepted() {
    let t = Routes::new().await;
    let r = t
        .send(
            Method::POST,
            &t.domains,
            Some("application/json; charset=UTF-8"),
            r#"{"domainName":"b.shopco.test"}"#,
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = t
        .token(
            "application/x-www-form-urlencoded; charset=utf-8",
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_body_over_the_limit_is_400_invalid_request_on_every_route() {
    let t = Routes::new().await;
    let pad = "x".repeat(64 * 1024);
    let body = format!(r#"{{"domainName":"b.shopco.test","pad":"{pad}"}}"#);
    let mut answers = t.post_bodies(body).await;
    let r = t
        .token(
            "application/x-www-form-urlencoded",
            format!("grant_type=client_credentials&pad={pad}"),
        )
        .await;
    answers.push(json_answer("token", r).await);
    assert_answers_snapshot!(answers);
}

#[tokio::test]
async fn a_body_of_invalid_utf8_is_400_invalid_request() {
    let t = Routes::new().await;
    let mut answers = t
        .post_bodies(b"{\"domainName\":\"b.shopco.test\xff\xfe\"}".to_vec())
        .await;
    let r = t
        .token(
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&x=\xff".to_vec(),
        )
        .await;
    answers.push(json_answer("token", r).await);
    assert_answers_snapshot!(answers);
}

#[tokio::test]
async fn json_nested_past_the_limit_is_400_invalid_request() {
    let t = Routes::new().await;
    let deep = format!(
        r#"{{"domainName":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let answers = t.post_bodies(deep).await;
    assert_answers_snapshot!(answers);
    // The service is still there.
    let r = t.app.get(&t.activities, &t.app.admin_token).await;
    assert_eq!(r.status(), StatusCode::OK);
}
