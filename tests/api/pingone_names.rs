//! `examples/pingone-names.toml`: trustmail answering with PingOne's record names; and DKIM token
//! values, by default too, in the pattern PingOne's Terraform provider checks (`^[a-z0-9_.]*$`).

use serde_json::Value;
use trustmail::config::Config;

use crate::support::{Db, TestApp};

/// Whether `value` matches `^[a-z0-9_.]*$`, the provider's test pattern for DKIM token values.
fn is_token_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
}

/// The records of a new domain in a new NA environment: (ownership, dkim, spf).
async fn records(app: &TestApp) -> (Value, Value, Value) {
    let environment = app.environment("Shop").await;
    let domain = app.domain(&environment, "auth.shopco.test").await;
    let base = format!("/v1/environments/{environment}/emailDomains/{domain}");
    (
        app.get_json(&format!("{base}/ownership")).await,
        app.get_json(&format!("{base}/dkim")).await,
        app.get_json(&format!("{base}/spf")).await,
    )
}

fn token_values(dkim: &Value) -> Vec<String> {
    dkim["regions"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|region| region["tokens"].as_array().unwrap().iter())
        .map(|token| token["value"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_pingone_names_example_answers_with_pingones_record_names() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pingone-names.toml");
    let example = Config::load_from(Some(&path), Vec::new()).unwrap();
    // Its records and regions; its listener and TLS files are a deployment's, not a test's.
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.records = example.records.clone();
        c.regions = example.regions.clone();
    })
    .await;
    let (ownership, dkim, spf) = records(&app).await;
    assert_eq!(ownership["regions"][0]["name"], "us-east-1");
    assert_eq!(ownership["regions"][0]["key"], "_amazonses");
    assert_eq!(ownership["environmentDnsRecord"]["key"], "_pingoneemail");
    assert_eq!(spf["key"], "@");
    assert_eq!(spf["value"], "v=spf1 include:amazonses.com ~all");
    let values = token_values(&dkim);
    assert_eq!(values.len(), 3);
    for value in values {
        assert!(is_token_value(&value), "{value}");
        assert!(value.ends_with(".useast1.dkim.example.com"), "{value}");
    }
}

#[tokio::test]
async fn default_dkim_token_values_match_the_providers_pattern() {
    let app = TestApp::spawn().await;
    let (_, dkim, _) = records(&app).await;
    let values = token_values(&dkim);
    assert_eq!(values.len(), 3);
    for value in values {
        assert!(is_token_value(&value), "{value}");
    }
}
