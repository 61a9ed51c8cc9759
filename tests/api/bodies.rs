//! Which fault of a request body is reported when it has two: each case breaks one member and
//! the one read after it, and the snapshot shows the answer (code, target, message) next to
//! what was sent. Members a client sends that trustmail does not read are ignored.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    subscriptions::subscription_body,
    support::{TestApp, p1_error, redact},
};

/// Sends each body with `method` to `path` and collects `{sent, answer}`, each answer a 400.
async fn first_faults(app: &TestApp, method: Method, path: &str, cases: Vec<Value>) -> Vec<Value> {
    let mut answers = Vec::new();
    for sent in cases {
        let response = app
            .request(
                method.clone(),
                path,
                Some(&app.admin_token),
                Some(sent.clone()),
            )
            .await;
        let answer = p1_error(response, StatusCode::BAD_REQUEST).await;
        answers.push(json!({ "sent": sent, "answer": answer }));
    }
    answers
}

/// The answers with their ids taken out, to compare two routes' answers.
fn without_ids(answers: Vec<Value>) -> Vec<Value> {
    answers
        .into_iter()
        .map(|a| with(a, &[(&["answer", "id"], Value::Null)]))
        .collect()
}

macro_rules! assert_faults_snapshot {
    ($answers:expr) => {
        insta::assert_json_snapshot!($answers, { "[].answer.id" => redact::id() });
    };
}

/// `base` with `member` set to `value` (`null` removes it), through nested objects.
fn with(mut base: Value, changes: &[(&[&str], Value)]) -> Value {
    for (path, value) in changes {
        let (last, parents) = path.split_last().unwrap();
        let mut object = &mut base;
        for key in parents {
            object = &mut object[*key];
        }
        let map = object.as_object_mut().unwrap();
        if value.is_null() {
            map.remove(*last);
        } else {
            map.insert((*last).to_owned(), value.clone());
        }
    }
    base
}

#[tokio::test]
async fn an_email_domain_body_reports_its_one_member() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let cases = vec![
        json!({"domainName": 7, "name": "ignored"}),
        json!({"name": "a.shopco.test"}),
        json!({"domainName": "*.shopco.test", "extra": {"x": 1}}),
    ];
    let path = format!("/v1/environments/{env}/emailDomains");
    assert_faults_snapshot!(first_faults(&app, Method::POST, &path, cases).await);
}

#[tokio::test]
async fn an_environment_create_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let cases = vec![
        json!({"region": "XX"}),
        json!({"name": 1, "region": "XX"}),
        json!({"name": "E", "region": "XX", "billOfMaterials": {}}),
        json!({"name": "E", "region": 3, "type": "NOPE"}),
        json!({"name": "E", "region": "NA", "billOfMaterials": {}, "type": "NOPE"}),
        json!({"name": "E", "region": "NA", "billOfMaterials": {"products": [{"type": "NOPE"}]}, "type": 1}),
        json!({"name": "E", "region": "NA", "type": "NOPE", "description": 1}),
        json!({"name": "E", "region": "NA", "type": 2, "description": 1}),
        json!({"name": "E", "region": "NA", "description": 1, "license": 1}),
        json!({"name": "E", "region": "NA", "license": {}}),
        json!({"name": "E", "region": "NA", "license": "lic"}),
    ];
    assert_faults_snapshot!(first_faults(&app, Method::POST, "/v1/environments", cases).await);
}

#[tokio::test]
async fn an_environment_put_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let cases = vec![
        json!({"region": "XX", "type": "NOPE"}),
        json!({"name": "E", "region": "XX", "type": "NOPE"}),
        json!({"name": "E", "region": 1, "type": "NOPE"}),
        json!({"name": "E", "region": "EU"}),
        json!({"name": "E", "type": "NOPE", "description": 1}),
        json!({"name": "E", "description": 1, "license": 1}),
        json!({"name": "E", "license": {"id": 1}}),
    ];
    let path = format!("/v1/environments/{env}");
    assert_faults_snapshot!(first_faults(&app, Method::PUT, &path, cases).await);
}

#[tokio::test]
async fn an_environment_type_body_reports_its_one_member() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let cases = vec![
        json!({"name": "ignored"}),
        json!({"type": 1}),
        json!({"type": "sandbox"}),
    ];
    let path = format!("/v1/environments/{env}/type");
    assert_faults_snapshot!(first_faults(&app, Method::PUT, &path, cases).await);
}

#[tokio::test]
async fn a_client_body_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let cases = vec![
        json!({"role": "KING"}),
        json!({"name": 1, "role": 2}),
        json!({"name": "c", "role": 2}),
        json!({"name": "c", "role": "KING"}),
    ];
    let path = format!("/v1/environments/{env}/clients");
    assert_faults_snapshot!(first_faults(&app, Method::POST, &path, cases).await);
}

fn population() -> Value {
    json!({
        "name": "Customers",
        "description": "d",
        "alternativeIdentifiers": ["a"],
        "preferredLanguage": "en",
        "passwordPolicy": {"id": "p"},
        "theme": {"id": "t"},
        "default": false,
    })
}

fn population_cases() -> Vec<Value> {
    let p = population;
    vec![
        with(
            p(),
            &[(&["name"], Value::Null), (&["description"], json!(1))],
        ),
        with(
            p(),
            &[
                (&["description"], json!(1)),
                (&["alternativeIdentifiers"], json!("a")),
            ],
        ),
        with(
            p(),
            &[
                (&["alternativeIdentifiers"], json!([1])),
                (&["preferredLanguage"], json!(1)),
            ],
        ),
        with(
            p(),
            &[
                (&["preferredLanguage"], json!(1)),
                (&["passwordPolicy"], json!(1)),
            ],
        ),
        with(
            p(),
            &[(&["passwordPolicy"], json!({})), (&["theme"], json!(1))],
        ),
        with(
            p(),
            &[(&["theme"], json!({"id": 1})), (&["default"], json!("yes"))],
        ),
        with(p(), &[(&["default"], json!("yes"))]),
    ]
}

#[tokio::test]
async fn a_population_create_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let path = format!("/v1/environments/{env}/populations");
    assert_faults_snapshot!(first_faults(&app, Method::POST, &path, population_cases()).await);
}

#[tokio::test]
async fn a_population_put_reports_the_same_faults_as_a_create() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let populations = format!("/v1/environments/{env}/populations");
    let created: Value = app
        .post(&populations, &app.admin_token, population())
        .await
        .json()
        .await
        .unwrap();
    let path = format!("{populations}/{}", created["id"].as_str().unwrap());
    let put = first_faults(&app, Method::PUT, &path, population_cases()).await;
    let create = first_faults(&app, Method::POST, &populations, population_cases()).await;
    assert_eq!(without_ids(put), without_ids(create));
}

#[tokio::test]
async fn a_mail_from_body_reports_its_one_member() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let domain = app.domain(&env, "a.shopco.test").await;
    let cases = vec![
        json!({"domain": "bounce.a.shopco.test"}),
        json!({"mailFrom": "bounce.a.shopco.test"}),
        json!({"mailFrom": {"domain": 1}}),
        json!({"mailFrom": {"name": "bounce.a.shopco.test"}}),
    ];
    let path = format!("/v1/environments/{env}/emailDomains/{domain}/mailFromDomain");
    assert_faults_snapshot!(first_faults(&app, Method::PUT, &path, cases).await);
}

fn message() -> Value {
    json!({
        "from": "noreply@a.shopco.test",
        "to": ["pat@example.com"],
        "cc": ["sam@example.com"],
        "replyTo": "help@a.shopco.test",
        "subject": "Hello",
        "text": "Hi",
        "html": "<p>Hi</p>",
    })
}

#[tokio::test]
async fn a_message_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let m = message;
    let cases = vec![
        with(m(), &[(&["from"], Value::Null), (&["to"], Value::Null)]),
        with(m(), &[(&["from"], json!(1)), (&["to"], json!(1))]),
        with(m(), &[(&["to"], Value::Null), (&["cc"], json!(1))]),
        with(m(), &[(&["to"], json!(["a", 1])), (&["cc"], json!(1))]),
        with(
            m(),
            &[
                (&["cc"], json!("sam@example.com")),
                (&["replyTo"], json!(1)),
            ],
        ),
        with(
            m(),
            &[(&["replyTo"], json!([])), (&["subject"], Value::Null)],
        ),
        with(m(), &[(&["subject"], json!(1)), (&["text"], json!(1))]),
        with(m(), &[(&["text"], json!(1)), (&["html"], json!(1))]),
        with(m(), &[(&["html"], json!(true))]),
    ];
    let path = format!("/v1/environments/{env}/messages");
    assert_faults_snapshot!(first_faults(&app, Method::POST, &path, cases).await);
}

#[tokio::test]
async fn a_bad_idempotency_key_is_reported_before_the_body() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let response = app
        .http
        .post(format!("{}/v1/environments/{env}/messages", app.url))
        .bearer_auth(&app.admin_token)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"k\xe9").unwrap(),
        )
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let answer = p1_error(response, StatusCode::BAD_REQUEST).await;
    insta::assert_json_snapshot!(answer, { ".id" => redact::id() });
}

const HOOK_URL: &str = "https://hooks.shopco.test/trustmail";

fn subscription() -> Value {
    subscription_body(HOOK_URL, &["EMAIL_DOMAIN_CREATED"])
}

fn subscription_cases() -> Vec<Value> {
    let s = subscription;
    vec![
        with(
            s(),
            &[
                (&["payloadOptions"], json!(["X"])),
                (&["protocol"], json!("HTTP")),
            ],
        ),
        with(
            s(),
            &[
                (&["filterOptions", "includedTags"], json!(["X"])),
                (&["payloadOptions"], json!(["X"])),
            ],
        ),
        with(
            s(),
            &[(&["protocol"], json!("HTTP")), (&["format"], json!("NOPE"))],
        ),
        with(
            s(),
            &[
                (&["format"], json!("NOPE")),
                (&["filterOptions"], Value::Null),
            ],
        ),
        with(s(), &[(&["format"], json!(1)), (&["name"], Value::Null)]),
        with(
            s(),
            &[
                (&["filterOptions", "includedActionTypes"], json!("X")),
                (&["name"], Value::Null),
            ],
        ),
        with(
            s(),
            &[(&["name"], Value::Null), (&["enabled"], Value::Null)],
        ),
        with(s(), &[(&["name"], json!(1)), (&["enabled"], json!("yes"))]),
        with(
            s(),
            &[
                (&["enabled"], json!("yes")),
                (&["httpEndpoint"], Value::Null),
            ],
        ),
        with(
            s(),
            &[
                (&["httpEndpoint", "url"], json!("ftp://x")),
                (&["httpEndpoint", "headers"], json!(1)),
            ],
        ),
        with(
            s(),
            &[
                (&["httpEndpoint", "url"], json!(1)),
                (&["httpEndpoint", "headers"], json!(1)),
            ],
        ),
        with(
            s(),
            &[
                (&["httpEndpoint", "headers"], json!({"A": 1})),
                (&["filterOptions", "includedActionTypes"], json!(["NOPE"])),
            ],
        ),
        with(
            s(),
            &[
                (&["httpEndpoint", "headers"], json!({"Bad Name": "v"})),
                (&["filterOptions", "includedActionTypes"], json!([])),
            ],
        ),
        with(
            s(),
            &[
                (&["filterOptions", "includedActionTypes"], json!(["NOPE"])),
                (&["verifyTlsCertificates"], Value::Null),
            ],
        ),
        with(s(), &[(&["verifyTlsCertificates"], json!("yes"))]),
    ]
}

#[tokio::test]
async fn a_subscription_create_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let path = format!("/v1/environments/{env}/subscriptions");
    assert_faults_snapshot!(first_faults(&app, Method::POST, &path, subscription_cases()).await);
}

#[tokio::test]
async fn a_subscription_put_reports_the_same_faults_as_a_create() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let subscriptions = format!("/v1/environments/{env}/subscriptions");
    let created: Value = app
        .post(&subscriptions, &app.admin_token, subscription())
        .await
        .json()
        .await
        .unwrap();
    let path = format!("{subscriptions}/{}", created["id"].as_str().unwrap());
    let put = first_faults(&app, Method::PUT, &path, subscription_cases()).await;
    let create = first_faults(&app, Method::POST, &subscriptions, subscription_cases()).await;
    assert_eq!(without_ids(put), without_ids(create));
}

#[tokio::test]
async fn a_bill_of_materials_reports_its_first_fault_in_member_order() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let cases = vec![
        json!({"solutionType": 1}),
        json!({"solutionType": "NOPE", "products": 1}),
        json!({"products": [{"type": "NOPE"}, 1]}),
        json!({"products": [{"type": "PING_ONE_BASE", "description": 1, "console": 1}]}),
    ];
    let path = format!("/v1/environments/{env}/billOfMaterials");
    assert_faults_snapshot!(first_faults(&app, Method::PUT, &path, cases).await);
}

/// What PingOne's clients send beyond what trustmail reads (`_links`, `id`, read-only times,
/// members of features trustmail lacks sent as "none") is accepted.
#[tokio::test]
async fn members_trustmail_does_not_read_are_ignored() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let extra =
        json!({"id": "x", "_links": {}, "createdAt": "2020-01-01T00:00:00Z", "unknown": [1]});
    let merged = |body: Value| -> Value {
        let mut body = body;
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let environments = "/v1/environments".to_owned();
    let populations = format!("/v1/environments/{env}/populations");
    let subscriptions = format!("/v1/environments/{env}/subscriptions");
    let clients = format!("/v1/environments/{env}/clients");
    let domains = format!("/v1/environments/{env}/emailDomains");
    let mut sub = subscription();
    sub["filterOptions"]["includedPopulations"] = json!([]);
    sub["payloadOptions"] = json!([]);
    sub["filterOptions"]["ipAddressExposed"] = json!(false);
    sub["protocol"] = json!("HTTPS");
    for (path, body) in [
        (
            &environments,
            json!({"name": "E2", "region": "EU", "billOfMaterials": {"products": [{"type": "PING_ONE_BASE", "x": 1}], "x": 1}}),
        ),
        (&populations, population()),
        (&subscriptions, sub),
        (&clients, json!({"name": "c", "role": "READ_ONLY"})),
        (&domains, json!({"domainName": "b.shopco.test"})),
    ] {
        let r = app.post(path, &app.admin_token, merged(body)).await;
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{path}: {}",
            r.text().await.unwrap()
        );
    }
}
