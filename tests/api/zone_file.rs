//! `GET …/zoneFile?format=`: every form over HTTP with its content type, each parsed by a parser of
//! that format and carrying every record; bind by default; an unknown format is a 400. (The forms
//! themselves are snapshotted and checked in detail next to their code, src/domain/zone_file/.)

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, UNKNOWN_ID, assert_error_snapshot, assert_p1_error};

/// An app with one domain (in an NA environment): the domain's path and the number of records it
/// asks for.
async fn domain_with_records() -> (TestApp, String, usize) {
    let app = TestApp::spawn().await;
    let environment = app.environment("Shop").await;
    let domain = app.domain(&environment, "a.shopco.test").await;
    let base = format!("/v1/environments/{environment}/emailDomains/{domain}");
    let records = app.get_json(&format!("{base}/verification")).await["records"]
        .as_array()
        .unwrap()
        .len();
    (app, base, records)
}

/// The body of a 200 `GET …/zoneFile{query}`, after checking its content type.
async fn zone_file(app: &TestApp, base: &str, query: &str, content_type: &str) -> String {
    let response = app
        .get(&format!("{base}/zoneFile{query}"), &app.admin_token)
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    assert_eq!(response.headers()["content-type"], content_type, "{query}");
    response.text().await.unwrap()
}

#[tokio::test]
async fn each_format_has_its_content_type_parses_and_carries_every_record() {
    let (app, base, count) = domain_with_records().await;
    // Ownership and DKIM of one region, the environment TXT and SPF.
    assert_eq!(count, 6);

    let bind = zone_file(&app, &base, "?format=bind", "text/plain; charset=utf-8").await;
    let lines: Vec<&str> = bind.lines().filter(|l| !l.starts_with(';')).collect();
    assert_eq!(lines.len(), count);
    assert!(lines.iter().all(|l| l.contains(". 3600 IN ")), "{bind}");

    let route53 = zone_file(&app, &base, "?format=route53", "application/json").await;
    let batch: Value = serde_json::from_str(&route53).unwrap();
    let values: usize = batch["Changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["ResourceRecordSet"]["ResourceRecords"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(values, count);

    let cloudflare = zone_file(&app, &base, "?format=cloudflare", "application/json").await;
    let bodies: Value = serde_json::from_str(&cloudflare).unwrap();
    assert_eq!(bodies.as_array().unwrap().len(), count);

    let terraform = zone_file(
        &app,
        &base,
        "?format=terraform",
        "text/plain; charset=utf-8",
    )
    .await;
    let body = hcl::parse(&terraform).unwrap();
    let cloudflare_records = body
        .blocks()
        .filter(|b| b.labels().first().map(|l| l.as_str()) == Some("cloudflare_record"))
        .count();
    assert_eq!(cloudflare_records, count);
}

#[tokio::test]
async fn without_a_format_the_zone_file_is_bind() {
    let (app, base, _) = domain_with_records().await;
    let plain = "text/plain; charset=utf-8";
    assert_eq!(
        zone_file(&app, &base, "", plain).await,
        zone_file(&app, &base, "?format=bind", plain).await
    );
}

#[tokio::test]
async fn an_unknown_format_is_400_invalid_value_on_format() {
    let (app, base, _) = domain_with_records().await;
    let response = app
        .get(&format!("{base}/zoneFile?format=xml"), &app.admin_token)
        .await;
    assert_error_snapshot!(response, StatusCode::BAD_REQUEST);
    for query in ["?format=", "?format=BIND", "?format=route%2053"] {
        let response = app
            .get(&format!("{base}/zoneFile{query}"), &app.admin_token)
            .await;
        let detail = Some(("INVALID_VALUE", "format"));
        assert_p1_error(response, StatusCode::BAD_REQUEST, "INVALID_DATA", detail).await;
    }
}

#[tokio::test]
async fn an_unknown_domain_is_404_before_a_bad_format() {
    let (app, base, _) = domain_with_records().await;
    let (environment_path, _) = base.rsplit_once('/').unwrap();
    let response = app
        .get(
            &format!("{environment_path}/{UNKNOWN_ID}/zoneFile?format=xml"),
            &app.admin_token,
        )
        .await;
    assert_p1_error(response, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}
