//! The web console at `/console/`: every file of `console/` served with its type, its ETag and
//! the security headers; unknown files 404; no API token or client secret in the logs.

use std::path::Path;

use reqwest::{Method, StatusCode, header};
use serde_json::Value;

use crate::{
    faults::first_start_logging,
    support::{Db, TestApp, p1_error},
};

/// What every console answer carries (src/api/console.rs).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn assert_security_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let get = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{} without {name}", response.url()))
            .to_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(get("content-security-policy"), CSP, "{}", response.url());
    assert_eq!(get("x-content-type-options"), "nosniff");
    assert_eq!(get("x-frame-options"), "DENY");
    assert_eq!(get("referrer-policy"), "no-referrer");
}

/// The files of `console/` in the repository: each must be served.
fn console_files() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn every_console_file_is_served_with_its_type_an_etag_and_the_security_headers() {
    let app = TestApp::spawn().await;
    let files = console_files();
    assert!(files.len() > 3, "{files:?}");
    for (name, bytes) in files {
        let response = app
            .request(Method::GET, &format!("/console/{name}"), None, None)
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_security_headers(&response);
        let want = match name.rsplit_once('.').unwrap().1 {
            "html" => "text/html; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            other => panic!("no content type expected for .{other}"),
        };
        assert_eq!(response.headers()[header::CONTENT_TYPE], want, "{name}");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = response.headers()[header::ETAG]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(etag.starts_with('"') && etag.len() > 10, "{etag}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), bytes, "{name}");

        // The same ETag back: 304, no body, the headers still there.
        let again = app
            .http
            .get(format!("{}/console/{name}", app.url))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{name}");
        assert_security_headers(&again);
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        assert!(again.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_console_root_is_its_page_and_console_without_a_slash_redirects_there() {
    let app = TestApp::spawn().await;
    let root = app.request(Method::GET, "/console/", None, None).await;
    assert_eq!(root.status(), StatusCode::OK);
    assert_security_headers(&root);
    let index = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("console/index.html"));
    assert_eq!(root.bytes().await.unwrap().as_ref(), index.unwrap());

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let bare = http
        .get(format!("{}/console", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(bare.headers()[header::LOCATION], "/console/");
    assert_security_headers(&bare);
}

#[tokio::test]
async fn an_unknown_console_file_is_a_404_p1error_with_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/console/nope.js",
        "/console/js/app.js",
        "/console/..%2FCargo.toml",
        "/console/index.html/",
    ] {
        let response = app.request(Method::GET, path, None, None).await;
        assert_security_headers(&response);
        let body = p1_error(response, StatusCode::NOT_FOUND).await;
        assert_eq!(body["code"], "NOT_FOUND", "{path}");
    }
    let post = app.request(Method::POST, "/console/", None, None).await;
    assert_security_headers(&post);
    assert_eq!(post.headers()[header::ALLOW], "GET,HEAD");
    let body = p1_error(post, StatusCode::METHOD_NOT_ALLOWED).await;
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}

/// The CSP forbids inline script and style; the page and scripts must not need them, and must
/// not parse API data as HTML.
#[test]
fn the_console_has_no_inline_script_or_style_and_never_parses_html() {
    for (name, bytes) in console_files() {
        let text = String::from_utf8(bytes).unwrap();
        if name.ends_with(".html") {
            for script in text.split("<script").skip(1) {
                let tag = script.split('>').next().unwrap();
                assert!(tag.contains("src="), "{name}: inline <script{tag}>");
            }
            assert!(!text.contains("<style"), "{name}: a <style> element");
            assert!(!text.contains(" style="), "{name}: a style attribute");
            assert!(!text.contains(" on"), "{name}: an inline event handler");
        }
        if name.ends_with(".js") {
            for banned in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "Function(",
            ] {
                assert!(!text.contains(banned), "{name}: {banned}");
            }
            assert!(!text.contains(".style."), "{name}: an inline style");
        }
    }
}

#[tokio::test]
async fn no_token_or_client_secret_is_ever_written_to_the_log() {
    let dir = tempfile::tempdir().unwrap();
    // Everything the process and its libraries log.
    let (mut server, boot) = first_start_logging(dir.path(), &Db::Sqlite, "trace").await;
    let (base, token_url) = (server.base.clone(), boot.token_url.clone());
    let client = boot.client_id.to_string();
    let secret = boot.client_secret.as_str();

    // Sign in as the console does (client_secret_post), then what it calls, failures included.
    let http = reqwest::Client::new();
    server.ready(&http).await;
    let grant: Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client),
            ("client_secret", secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = grant["access_token"].as_str().unwrap();
    let forged = format!("{token}x");
    for (path, bearer, status) in [
        ("/console/", token, StatusCode::OK),
        ("/v1/environments", token, StatusCode::OK),
        ("/v1/environments/not-an-id", token, StatusCode::NOT_FOUND),
        (
            "/v1/environments",
            forged.as_str(),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let response = http
            .get(format!("{base}{path}"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{path}");
    }
    let wrong_secret = http
        .post(&token_url)
        .basic_auth(&client, Some(format!("{secret}x")))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), StatusCode::UNAUTHORIZED);
    let _ = server.child.kill();
    let _ = server.child.wait();

    let log = server.log();
    // The log is there (every request has its line), so its silence below means something.
    assert!(log.matches("correlation_id").count() >= 6, "{log}");
    let signature = token.rsplit('.').next().unwrap();
    for (what, secret) in [
        ("token", token),
        ("token signature", signature),
        ("client secret", secret),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log");
    }
}
