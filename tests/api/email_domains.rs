//! Trusted email domains: contract §1.1–1.7.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{Db, TestApp, UNKNOWN_ID};

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 36 && uuid::Uuid::parse_str(s).is_ok() && s == s.to_lowercase())
}

#[tokio::test]
async fn create_read_list_delete_follow_the_contract() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let token = &app.admin_token;
    let r = app.create_domain(&env, token, "Auth.ShopCo.Test.").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let created: Value = r.json().await.unwrap();
    assert!(is_uuid(&created["id"]));
    assert_eq!(created["domainName"], "auth.shopco.test");
    assert_eq!(created["environment"]["id"], env.as_str());
    let id = created["id"].as_str().unwrap();
    let this = format!("{}/v1/environments/{env}/emailDomains/{id}", app.url);
    assert_eq!(created["_links"]["self"]["href"], this.as_str());
    assert_eq!(
        created["_links"]["environment"]["href"],
        format!("{}/v1/environments/{env}", app.url)
    );
    for leaf in ["ownership", "dkim", "spf"] {
        assert_eq!(created["_links"][leaf]["href"], format!("{this}/{leaf}"));
    }
    let created_at = created["createdAt"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created_at, &time::format_description::well_known::Rfc3339)
            .is_ok()
    );
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );

    let path = format!("/v1/environments/{env}/emailDomains/{id}");
    let read: Value = app.get(&path, token).await.json().await.unwrap();
    assert_eq!(read, created);

    let list: Value = app
        .get(&format!("/v1/environments/{env}/emailDomains"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    assert_eq!(list["size"], 1);
    assert_eq!(list["_embedded"]["emailDomains"][0], created);
    assert!(
        list["_links"]["self"]["href"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    assert!(list["_links"].get("next").is_none());

    let r = app.delete(&path, token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(app.get(&path, token).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.delete(&path, token).await.status(),
        StatusCode::NOT_FOUND
    );
    let list: Value = app
        .get(&format!("/v1/environments/{env}/emailDomains"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 0);
    assert_eq!(list["_embedded"]["emailDomains"], serde_json::json!([]));
    // After a delete the name is free again.
    assert_eq!(
        app.create_domain(&env, token, "auth.shopco.test")
            .await
            .status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn names_are_idna_a_labels_and_unique_per_environment_only() {
    let app = TestApp::spawn().await;
    let a = app.environment("A").await;
    let b = app.environment("B").await;
    let token = &app.admin_token;
    let r: Value = app
        .create_domain(&a, token, "Bücher.shopco.test")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["domainName"], "xn--bcher-kva.shopco.test");
    let r = app
        .create_domain(&a, token, "xn--bcher-kva.shopco.test")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app.create_domain(&b, token, "BÜCHER.shopco.test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // A real public suffix from the list works without configuration.
    let r = app.create_domain(&a, token, "mail.example.co.uk").await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_domain_of_another_environment_is_not_found() {
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
    let r = app
        .get(
            &format!("/v1/environments/{a}/emailDomains/{id}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .get(
            &format!("/v1/environments/{a}/emailDomains/not-a-uuid"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .get(
            &format!("/v1/environments/{a}/emailDomains/{UNKNOWN_ID}/spf"),
            &app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn records_match_what_the_terraform_provider_asserts() {
    let app = TestApp::spawn().await;
    let env = app.environment("A").await;
    let id = app.domain(&env, "auth.shopco.test").await;
    let base = format!("/v1/environments/{env}/emailDomains/{id}");
    let token = &app.admin_token;
    let region_name = |v: &Value| {
        v.as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let base64ish = |v: &Value| {
        v.as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-~_/+=".contains(&b))
    };

    let own: Value = app
        .get(&format!("{base}/ownership"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(own["type"], "TXT");
    let region = &own["regions"][0];
    assert!(region_name(&region["name"]));
    assert_eq!(region["status"], "VERIFICATION_REQUIRED");
    assert_eq!(region["key"], "_trustmail");
    assert!(base64ish(&region["value"]) && region["value"].as_str().unwrap().len() >= 22);
    assert_eq!(
        own["environmentDnsRecord"]["status"],
        "VERIFICATION_REQUIRED"
    );
    assert_eq!(own["environmentDnsRecord"]["key"], "_trustmail-environment");
    assert!(base64ish(&own["environmentDnsRecord"]["value"]));

    let dkim: Value = app
        .get(&format!("{base}/dkim"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dkim["type"], "CNAME");
    let region = &dkim["regions"][0];
    assert!(region_name(&region["name"]));
    assert_eq!(region["status"], "VERIFICATION_REQUIRED");
    let tokens = region["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 3);
    for t in tokens {
        let key = t["key"].as_str().unwrap();
        let value = t["value"].as_str().unwrap();
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        );
        let selector = key.strip_suffix("._domainkey.auth.shopco.test").unwrap();
        // The provider's value regex `^[a-z0-9_.]*$` holds for the token; the zone is the
        // operator's (the default keeps the region name, hyphens and all).
        assert!(
            selector.len() == 32
                && selector
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(
            value,
            format!("{selector}.dkim.us-east-1.trustmail.example")
        );
    }

    let spf: Value = app
        .get(&format!("{base}/spf"), token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(spf["type"], "TXT");
    assert_eq!(spf["status"], "VERIFICATION_REQUIRED");
    assert_eq!(spf["key"], "@");
    assert_eq!(spf["value"], "v=spf1 include:spf.trustmail.example ~all");
}

#[tokio::test]
async fn one_entry_per_region_serving_the_environments_geography() {
    let app = TestApp::spawn_on(Db::Sqlite, |config| {
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
    .await;
    let env = app.environment("NA env").await;
    let id = app.domain(&env, "auth.shopco.test").await;
    let base = format!("/v1/environments/{env}/emailDomains/{id}");
    let own: Value = app
        .get(&format!("{base}/ownership"), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
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
    let dkim: Value = app
        .get(&format!("{base}/dkim"), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(dkim["regions"].as_array().unwrap().len(), 2);
    assert!(
        dkim["regions"][1]["tokens"][0]["value"]
            .as_str()
            .unwrap()
            .ends_with(".dkim.eu-west-1.trustmail.example")
    );
    let spf: Value = app
        .get(&format!("{base}/spf"), &app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(spf["value"], "v=spf1 include:amazonses.com ~all");
    // The environment record is one token per environment, shared by its domains.
    let second = app.domain(&env, "other.shopco.test").await;
    let own2: Value = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/{second}/ownership"),
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        own2["environmentDnsRecord"]["value"],
        own["environmentDnsRecord"]["value"]
    );
    assert_ne!(own2["regions"][0]["value"], own["regions"][0]["value"]);
}
