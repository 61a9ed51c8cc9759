//! Trusted email domains: create, read, list, delete, and the ownership, DKIM and SPF reads
//! (PingOne's operations in `contract/pingone-email-domains.openapi.yml`).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{Db, TestApp, UNKNOWN_ID, assert_created_snapshot, redact};

/// An environment with "Auth.ShopCo.Test." created in it: (environment, the 201's body).
async fn created_domain(app: &TestApp) -> (String, Value) {
    let env = app.environment("Shop").await;
    let r = app
        .create_domain(&env, &app.admin_token, "Auth.ShopCo.Test.")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    (env, r.json().await.unwrap())
}

fn domain_path(env: &str, domain: &Value) -> String {
    format!(
        "/v1/environments/{env}/emailDomains/{}",
        domain["id"].as_str().unwrap()
    )
}

async fn list(app: &TestApp, env: &str) -> Value {
    app.get_json(&format!("/v1/environments/{env}/emailDomains"))
        .await
}

#[tokio::test]
async fn creating_a_domain_answers_201_with_the_name_as_written_and_its_links() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    let names = app
        .names()
        .with(&env, "[env]")
        .with(created["id"].as_str().unwrap(), "[id]");
    assert_created_snapshot!(created, names);
}

#[tokio::test]
async fn a_domain_reads_back_as_created() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    let r = app
        .get(&domain_path(&env, &created), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), created);
}

#[tokio::test]
async fn the_list_embeds_each_domain_as_read_with_a_count() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    let list = list(&app, &env).await;
    assert_eq!(list["_embedded"]["emailDomains"][0], created);
    let names = app.names().with(&env, "[env]");
    insta::assert_json_snapshot!(list, {
        "._embedded.emailDomains" => "[the created domain]",
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn deleting_a_domain_answers_204_with_no_body() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    let r = app
        .delete(&domain_path(&env, &created), &app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_deleted_domain_is_not_found_and_not_listed() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    let path = domain_path(&env, &created);
    let token = &app.admin_token;
    app.delete(&path, token).await;
    assert_eq!(app.get(&path, token).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&path, token).await.status(),
        StatusCode::NOT_FOUND
    );
    let list = list(&app, &env).await;
    assert_eq!(list["count"], 0);
    assert_eq!(list["_embedded"]["emailDomains"], json!([]));
}

#[tokio::test]
async fn a_deleted_domains_name_is_free_again() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    app.delete(&domain_path(&env, &created), &app.admin_token)
        .await;
    let r = app
        .create_domain(&env, &app.admin_token, "auth.shopco.test")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn unicode_names_are_stored_as_idna_a_labels() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let r: Value = app
        .create_domain(&env, &app.admin_token, "Bücher.shopco.test")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["domainName"], "xn--bcher-kva.shopco.test");
}

#[tokio::test]
async fn a_name_is_taken_in_its_environment_in_either_form() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    app.domain(&env, "Bücher.shopco.test").await;
    let r = app
        .create_domain(&env, &app.admin_token, "xn--bcher-kva.shopco.test")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_name_keeps_its_letter_case_on_read_and_list_but_not_in_dns() {
    let app = TestApp::spawn().await;
    let (env, created) = created_domain(&app).await;
    assert_eq!(created["domainName"], "Auth.ShopCo.Test");
    let listed = list(&app, &env).await;
    assert_eq!(
        listed["_embedded"]["emailDomains"][0]["domainName"],
        "Auth.ShopCo.Test"
    );
    let zone = app
        .get(
            &format!("{}/zoneFile", domain_path(&env, &created)),
            &app.admin_token,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(zone.contains("_trustmail.auth.shopco.test."), "{zone}");
    assert!(!zone.contains("ShopCo"), "{zone}");
}

#[tokio::test]
async fn a_name_is_taken_in_its_environment_in_any_letter_case() {
    let app = TestApp::spawn().await;
    let (env, _) = created_domain(&app).await;
    let r = app
        .create_domain(&env, &app.admin_token, "auth.shopco.TEST")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(list(&app, &env).await["count"], 1);
}

#[tokio::test]
async fn another_environment_may_use_the_same_name() {
    let app = TestApp::spawn().await;
    let a = app.environment("A").await;
    let b = app.environment("B").await;
    app.domain(&a, "Bücher.shopco.test").await;
    let r = app
        .create_domain(&b, &app.admin_token, "BÜCHER.shopco.test")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_real_public_suffix_works_without_configuration() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let r = app
        .create_domain(&env, &app.admin_token, "mail.example.co.uk")
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_domain_is_not_found_under_another_environment() {
    let app = TestApp::spawn().await;
    let a = app.environment("A").await;
    let b = app.environment("B").await;
    let id = app.domain(&a, "a.shopco.test").await;
    for leaf in ["", "/ownership", "/dkim", "/spf"] {
        let r = app
            .get(
                &format!("/v1/environments/{b}/emailDomains/{id}{leaf}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{leaf}");
    }
    let r = app
        .delete(
            &format!("/v1/environments/{b}/emailDomains/{id}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // It is still there, under its own.
    let r = app
        .get(
            &format!("/v1/environments/{a}/emailDomains/{id}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_domain_id_is_not_found() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let r = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/not-a-uuid"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unknown_domains_records_are_not_found() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let r = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/{UNKNOWN_ID}/spf"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// A domain's record set: (the app, the path of `auth.shopco.test` in a new environment).
async fn records_app(app: TestApp) -> (TestApp, String, String) {
    let env = app.environment("A").await;
    let id = app.domain(&env, "auth.shopco.test").await;
    let base = format!("/v1/environments/{env}/emailDomains/{id}");
    (app, env, base)
}

/// The Terraform provider's value check: letters, digits and `-~_/+=`.
fn base64ish(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-~_/+=".contains(&b))
}

/// Names for a record set's links and the domain's generated values.
fn record_names(app: &TestApp, env: &str, base: &str) -> redact::Names {
    let id = base.rsplit('/').next().unwrap();
    app.names().with(env, "[env]").with(id, "[domain]")
}

#[tokio::test]
async fn ownership_is_a_txt_per_region_and_one_for_the_environment() {
    let (app, env, base) = records_app(TestApp::spawn().await).await;
    let own = app.get_json(&format!("{base}/ownership")).await;
    let ownership = own["regions"][0]["value"].as_str().unwrap();
    let environment = own["environmentDnsRecord"]["value"].as_str().unwrap();
    // What the Terraform provider checks of the generated tokens.
    assert!(base64ish(ownership) && ownership.len() >= 22, "{ownership}");
    assert!(base64ish(environment), "{environment}");
    let names = record_names(&app, &env, &base)
        .with(ownership, "[ownership token]")
        .with(environment, "[environment token]");
    insta::assert_json_snapshot!(own, {
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn dkim_is_three_cnames_per_region_each_to_its_own_selector() {
    let (app, env, base) = records_app(TestApp::spawn().await).await;
    let dkim = app.get_json(&format!("{base}/dkim")).await;
    let mut names = record_names(&app, &env, &base);
    for (i, token) in dkim["regions"][0]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let key = token["key"].as_str().unwrap();
        let selector = key.strip_suffix("._domainkey.auth.shopco.test").unwrap();
        // The provider's value regex `^[a-z0-9_.]*$` holds for the token; the zone is the
        // operator's (the default keeps the region name, hyphens and all).
        assert!(
            selector.len() == 32
                && selector
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            "{selector}"
        );
        names = names.with(selector, &format!("[selector {i}]"));
    }
    insta::assert_json_snapshot!(dkim, {
        ".regions[].signingSince" => redact::time(),
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn spf_is_a_txt_at_the_apex_including_the_service() {
    let (app, env, base) = records_app(TestApp::spawn().await).await;
    let spf = app.get_json(&format!("{base}/spf")).await;
    let names = record_names(&app, &env, &base);
    insta::assert_json_snapshot!(spf, {
        ".**" => names.redaction(),
    });
}

/// Three regions, two of which serve North America, with the record names and include of
/// another provider.
async fn multi_region_app() -> TestApp {
    TestApp::spawn_on(Db::Sqlite, |config| {
        let mut na = trustmail::config::Region::named("us-east-1");
        na.geographies = vec![trustmail::domain::Geography::Na];
        let mut eu = trustmail::config::Region::named("eu-west-1");
        eu.geographies = vec![
            trustmail::domain::Geography::Eu,
            trustmail::domain::Geography::Na,
        ];
        let mut rest = trustmail::config::Region::named("ap-southeast-2");
        rest.geographies = vec![
            trustmail::domain::Geography::Ap,
            trustmail::domain::Geography::Ca,
        ];
        config.regions = vec![na, eu, rest];
        config.records.ownership_prefix = "_amazonses".into();
        config.records.environment_prefix = "_pingoneemail".into();
        config.records.spf_include = "amazonses.com".into();
    })
    .await
}

#[tokio::test]
async fn each_region_serving_the_environments_geography_gets_its_own_ownership_token() {
    let (app, _, base) = records_app(multi_region_app().await).await;
    let own = app.get_json(&format!("{base}/ownership")).await;
    let names: Vec<_> = own["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["us-east-1", "eu-west-1"]);
    assert_eq!(own["regions"][0]["key"], "_amazonses");
    assert_eq!(own["environmentDnsRecord"]["key"], "_pingoneemail");
    assert_ne!(own["regions"][0]["value"], own["regions"][1]["value"]);
}

#[tokio::test]
async fn each_region_serving_the_environments_geography_gets_its_own_dkim_tokens() {
    let (app, _, base) = records_app(multi_region_app().await).await;
    let dkim = app.get_json(&format!("{base}/dkim")).await;
    assert_eq!(dkim["regions"].as_array().unwrap().len(), 2);
    assert!(
        dkim["regions"][1]["tokens"][0]["value"]
            .as_str()
            .unwrap()
            .ends_with(".euwest1.dkim.trustmail.example")
    );
}

#[tokio::test]
async fn spf_includes_the_configured_domain() {
    let (app, _, base) = records_app(multi_region_app().await).await;
    let spf = app.get_json(&format!("{base}/spf")).await;
    assert_eq!(spf["value"], "v=spf1 include:amazonses.com ~all");
}

#[tokio::test]
async fn the_environment_record_is_shared_by_the_environments_domains() {
    let (app, env, base) = records_app(multi_region_app().await).await;
    let own = app.get_json(&format!("{base}/ownership")).await;
    let second = app.domain(&env, "other.shopco.test").await;
    let own2 = app
        .get_json(&format!(
            "/v1/environments/{env}/emailDomains/{second}/ownership"
        ))
        .await;
    assert_eq!(
        own2["environmentDnsRecord"]["value"],
        own["environmentDnsRecord"]["value"]
    );
    assert_ne!(own2["regions"][0]["value"], own["regions"][0]["value"]);
}
