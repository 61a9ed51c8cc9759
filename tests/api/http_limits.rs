//! `[http]`: header read timeout, request timeout, bounded shutdown (README § HTTP limits).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use trustmail::startup::SHUTDOWN_GRACE;

use crate::support::{TestApp, assert_p1_error};

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.url.trim_start_matches("http://"))
        .await
        .unwrap()
}

/// Whether the server has closed `stream`, waiting at most `wait` for it.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(wait, stream.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => true,
        // A response (hyper may answer before closing): keep reading for the close.
        Ok(Ok(_)) => matches!(
            tokio::time::timeout(wait, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        ),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected_after_the_header_timeout() {
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.http.header_read_timeout_s = 1;
    })
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut closed = false;
    // One header line every 200 ms, never the blank line that ends them.
    for i in 0..50 {
        if stream
            .write_all(format!("X-Trickle-{i}: a\r\n").as_bytes())
            .await
            .is_err()
            || closed_within(&mut stream, Duration::from_millis(200)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "still open after {:?}", started.elapsed());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_request_unanswered_after_the_request_timeout_is_503_service_unavailable() {
    // A resolver that never answers (over UDP or TCP: its listener never accepts), and a DNS
    // timeout far past the request timeout: a status read, which re-checks DNS, cannot answer
    // in time.
    let silent = crate::support::dns::bind_udp_and_tcp().await;
    let resolver = silent.2.to_string();
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, move |c| {
        c.dns.resolvers = vec![resolver];
        c.dns.timeout_ms = 60_000;
        c.dns.min_recheck_interval_s = 0;
        c.http.request_timeout_s = 1;
    })
    .await;
    let env = app.environment("Shop").await;
    let domain = app.domain(&env, "slow.shopco.test").await;
    let started = Instant::now();
    let response = app
        .get(
            &format!("/v1/environments/{env}/emailDomains/{domain}/ownership"),
            &app.admin_token,
        )
        .await;
    assert_p1_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        None,
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[tokio::test]
async fn shutdown_with_idle_keep_alive_connections_open_finishes_within_the_grace() {
    let mut app = TestApp::spawn().await;
    let mut open = Vec::new();
    // Keep-alive connections that were answered once and now sit idle.
    for _ in 0..3 {
        open.push(answered_once(&app).await);
    }
    // One that never sent a byte, and one half way through its headers.
    open.push(connect(&app).await);
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    open.push(half);
    let started = Instant::now();
    tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(5), app.stop())
        .await
        .unwrap_or_else(|_| panic!("shutdown still running after {:?}", started.elapsed()));
    drop(open);
}

/// A keep-alive connection answered once, now idle.
async fn answered_once(app: &TestApp) -> TcpStream {
    let mut stream = connect(app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &buf[..n]);
    stream
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.http.idle_timeout_s = 1;
        // Long enough that only the idle timeout can close it.
        c.http.header_read_timeout_s = 30;
    })
    .await;
    let mut stream = answered_once(&app).await;
    assert!(
        closed_within(&mut stream, Duration::from_secs(10)).await,
        "still open"
    );
}

#[tokio::test]
async fn past_max_connections_a_new_connection_waits_until_one_closes() {
    let app = TestApp::spawn_on(crate::support::Db::Sqlite, |c| {
        c.http.max_connections = 1;
        // The test client's own pooled connection from start-up holds the one permit until the
        // header timeout (which also bounds the wait between requests) closes it.
        c.http.header_read_timeout_s = 2;
    })
    .await;
    let holder = answered_once(&app).await;
    let url = format!("{}/healthz", app.url);
    let waiting = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    // While the only connection is held, the second is not served at all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "served past max_connections");
    drop(holder);
    let status = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("served once the first connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(status, StatusCode::OK);
}

/// Sends `request` on a fresh connection and reads until the server closes it or 10 s pass:
/// (status code, headers in lower case, body).
async fn raw_exchange(app: &TestApp, request: &[u8]) -> (u16, String, String) {
    let mut stream = connect(app).await;
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn malformed_http_is_answered_with_a_p1_error() {
    let app = TestApp::spawn().await;
    // Past the token check, so that the body is read.
    let chunked = format!(
        "POST /v1/environments HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
        app.admin_token
    );
    let cases: [(&str, &[u8]); 5] = [
        ("garbage", b"\x16\x03\x01 hello there\r\n\r\n"),
        (
            "a bad request line",
            b"GET /healthz HTTP/9.x\r\nHost: x\r\n\r\n",
        ),
        (
            "a bad method",
            b"G\x01T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "a bad header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        ),
        ("invalid chunked encoding", chunked.as_bytes()),
    ];
    for (what, request) in cases {
        let (status, head, body) = raw_exchange(&app, request).await;
        assert_eq!(status, 400, "{what}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/json"),
            "{what}: {head}"
        );
        let body: serde_json::Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {body:?}"));
        assert_eq!(body["code"], "INVALID_REQUEST", "{what}: {body}");
        assert!(body["id"].is_string(), "{what}: {body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }

    // Past hyper's 100 headers: its 431, with a P1Error body too.
    let mut crowded = "GET /healthz HTTP/1.1\r\nHost: x\r\n".to_owned();
    for i in 0..120 {
        crowded.push_str(&format!("X-Header-{i}: v\r\n"));
    }
    crowded.push_str("\r\n");
    let (status, head, body) = raw_exchange(&app, crowded.as_bytes()).await;
    assert_eq!(status, 431, "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "INVALID_REQUEST", "{body}");

    // The connection answers well-formed requests as before.
    let health = reqwest::get(format!("{}/healthz", app.url)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}
