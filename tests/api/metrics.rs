//! `/metrics`: a bounded label table, and where and to whom it is served.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};

use crate::support::{Db, TestApp, assert_p1_error};

/// The label values of `http_requests_total` lines, as (method, route).
fn request_labels(text: &str) -> Vec<(String, String)> {
    let label = |line: &str, name: &str| {
        let start = line.find(&format!("{name}=\""))? + name.len() + 2;
        let end = start + line[start..].find('"')?;
        Some(line[start..end].to_owned())
    };
    text.lines()
        .filter(|line| line.starts_with("http_requests_total{"))
        .filter_map(|line| Some((label(line, "method")?, label(line, "route")?)))
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_label_table() {
    let app = TestApp::spawn().await;
    let mut sent = Vec::new();
    for _ in 0..100 {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let method = format!("X{}", token[..12].to_uppercase());
        let path = format!("/{}", &token[12..]);
        sent.push(method.clone());
        sent.push(path.clone());
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        app.request(method.clone(), &path, None, None).await;
        // A known path too: its 405 is labelled by its route template.
        app.request(method, "/healthz", None, None).await;
    }
    let r = app.request(Method::GET, "/metrics", None, None).await;
    let text = r.text().await.unwrap();
    for value in &sent {
        assert!(!text.contains(value.as_str()), "{value} became a label");
    }
    let labels = request_labels(&text);
    let standard = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE", "other",
    ];
    for (method, route) in &labels {
        assert!(standard.contains(&method.as_str()), "method label {method}");
        assert!(
            route == "unmatched" || route.starts_with('/'),
            "route label {route}"
        );
    }
    // 200 requests with made-up methods: a handful of label sets (route × status), not 200.
    let others: HashSet<_> = text
        .lines()
        .filter(|line| {
            line.starts_with("http_requests_total{") && line.contains("method=\"other\"")
        })
        .collect();
    assert!(
        (1..=6).contains(&others.len()),
        "{} label sets for made-up methods: {others:?}",
        others.len()
    );
}

#[tokio::test]
async fn metrics_on_their_own_listener_are_not_served_on_the_api_one() {
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.metrics.listen = "127.0.0.1:0".into();
    })
    .await;
    let r = app.request(Method::GET, "/metrics", None, None).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    let address = app.metrics.expect("a metrics listener");
    let r = app
        .http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("http_requests_total"));
    // Only /metrics there: the API is not.
    let r = app
        .http
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    let app = TestApp::spawn_on(Db::Sqlite, |c| {
        c.metrics.token = "scrape-9f2c".to_owned().into();
    })
    .await;
    let r = app.request(Method::GET, "/metrics", None, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key("www-authenticate"));
    for wrong in ["scrape-9f2", "scrape-9f2d", "scrape-9f2cc", ""] {
        let r = app
            .request(Method::GET, "/metrics", Some(wrong), None)
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    // An API access token is not the metrics token either.
    let r = app
        .request(Method::GET, "/metrics", Some(&app.admin_token), None)
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .request(Method::GET, "/metrics", Some("scrape-9f2c"), None)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("http_requests_total"));
}
