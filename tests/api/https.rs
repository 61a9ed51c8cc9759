//! HTTPS served by trustmail itself (`[http] tls_cert_file` / `tls_key_file`): the API over TLS,
//! a renewed certificate served without a restart, and files that do not load at start-up.

use std::{net::Ipv4Addr, path::Path, sync::Arc, time::Duration};

use reqwest::StatusCode;
use rustls::pki_types::{CertificateDer, ServerName};
use trustmail::{
    config::Config,
    startup::{Application, StartupError},
};

use crate::support::{Db, TestApp, app::test_config};

/// A self-signed certificate for 127.0.0.1 and localhost: (certificate PEM, key PEM, DER).
fn self_signed(common_name: &str) -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

fn write_pair(dir: &Path, cert: &str, key: &str) {
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
}

/// Replaces both files the way certbot and Kubernetes do: each written beside, then renamed over.
fn rename_pair(dir: &Path, cert: &str, key: &str) {
    for (name, contents) in [("cert.pem", cert), ("key.pem", key)] {
        let beside = dir.join(format!("{name}.new"));
        std::fs::write(&beside, contents).unwrap();
        std::fs::rename(&beside, dir.join(name)).unwrap();
    }
}

/// The files at `dir`, reloaded on `http.tls_reload_interval_s`'s default.
fn with_tls(config: &mut Config, dir: &Path) {
    config.http.tls_cert_file = dir.join("cert.pem");
    config.http.tls_key_file = dir.join("key.pem");
}

/// A TLS client that trusts `trusted` (DER certificates) alone.
fn connector(trusted: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for der in trusted {
        roots.add(CertificateDer::from(der.to_vec())).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// The leaf certificate the server on `port` presents, to a client that trusts `trusted`.
async fn served_certificate(port: u16, trusted: &[&[u8]]) -> Vec<u8> {
    let connector = connector(trusted);
    let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .await
        .unwrap();
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let tls = connector.connect(name, tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Whether new connections to `port` get the certificate `wanted` within 10 s.
async fn served_within_10_s(port: u16, trusted: &[&[u8]], wanted: &[u8]) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if served_certificate(port, trusted).await == wanted {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// What this test's thread logs at WARN and above (the server runs on the test's runtime, which
/// is single-threaded), while the guard is held.
fn capture_warnings() -> (
    Arc<std::sync::Mutex<Vec<u8>>>,
    tracing::subscriber::DefaultGuard,
) {
    #[derive(Clone)]
    struct Logs(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Logs(Arc::default());
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    (logs.0, tracing::subscriber::set_default(subscriber))
}

fn port(app: &TestApp) -> u16 {
    app.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A TLS server with a fresh self-signed certificate, whose files live in the directory
/// returned (outside the app's own); and that certificate's DER.
async fn spawn_https(tweak: impl FnOnce(&mut Config)) -> (TestApp, tempfile::TempDir, Vec<u8>) {
    let certs = tempfile::tempdir().unwrap();
    let (cert, key, der) = self_signed("first");
    write_pair(certs.path(), &cert, &key);
    let dir = certs.path().to_owned();
    let app = TestApp::spawn_on(Db::Sqlite, move |c| {
        with_tls(c, &dir);
        tweak(c);
    })
    .await;
    (app, certs, der)
}

#[tokio::test]
async fn the_api_answers_over_https_with_the_configured_certificate() {
    // TestApp's client trusts only this certificate; the admin token came over HTTPS too.
    let (app, _certs, der) = spawn_https(|_| {}).await;
    assert!(app.url.starts_with("https://"), "{}", app.url);
    assert!(app.admin.token_url.starts_with("https://"));

    let health = app.http.get(format!("{}/healthz", app.url)).send().await;
    assert_eq!(health.unwrap().status(), StatusCode::OK);
    let environments = app.get_json("/v1/environments").await;
    let link = environments["_links"]["self"]["href"].as_str().unwrap();
    assert!(link.starts_with("https://"), "{link}");
    assert_eq!(served_certificate(port(&app), &[&der]).await, der);

    // Plain HTTP on the HTTPS port gets no answer.
    let plain = app.url.replacen("https://", "http://", 1);
    assert!(reqwest::get(format!("{plain}/healthz")).await.is_err());
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let (app, certs, first) = spawn_https(|_| {}).await;
    let port = port(&app);
    assert_eq!(served_certificate(port, &[&first]).await, first);

    let (new_cert, new_key, renewed) = self_signed("renewed");
    write_pair(certs.path(), &new_cert, &new_key);
    assert!(
        served_within_10_s(port, &[&first, &renewed], &renewed).await,
        "the renewed certificate was not served within 10 s"
    );

    // A client that knows only the new certificate uses the API on the same server.
    let client = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(new_cert.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/v1/environments", app.url))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn certificate_files_that_do_not_load_stop_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = self_signed("first");
    let (_, other_key, _) = self_signed("other");
    write_pair(dir.path(), &cert, &other_key);
    let mut config = test_config(dir.path(), &Db::Sqlite);
    with_tls(&mut config, dir.path());
    let error = Application::build(config).await.err().unwrap();
    assert!(matches!(error, StartupError::Tls(_)), "{error}");
    assert!(error.is_configuration());
    let chain = trustmail::error_chain::ErrorChain(&error).to_string();
    assert!(chain.contains("cert.pem"), "{chain}");
    assert!(chain.contains("cannot serve together"), "{chain}");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_is_disconnected_after_the_header_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (app, _certs, _) = spawn_https(|c| c.http.header_read_timeout_s = 1).await;
    let mut stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port(&app)))
        .await
        .unwrap();
    // The first bytes of a TLS record header, then nothing (the idle timeout is 60 s).
    stream.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "still open, or answered: {read:?}"
    );
}

#[tokio::test]
async fn replaced_files_are_served_within_10_s_and_broken_ones_keep_the_last_good_certificate() {
    let (logs, _guard) = capture_warnings();
    let (app, certs, first) = spawn_https(|_| {}).await;
    let port = port(&app);
    let dir = certs.path();
    let (renamed_cert, renamed_key, renamed) = self_signed("renamed");
    let (rewritten_cert, rewritten_key, rewritten) = self_signed("rewritten");
    let (good_cert, good_key, good) = self_signed("good again");
    let trusted: [&[u8]; 4] = [&first, &renamed, &rewritten, &good];

    rename_pair(dir, &renamed_cert, &renamed_key);
    assert!(
        served_within_10_s(port, &trusted, &renamed).await,
        "a pair renamed over the files was not served within 10 s"
    );
    write_pair(dir, &rewritten_cert, &rewritten_key);
    assert!(
        served_within_10_s(port, &trusted, &rewritten).await,
        "a pair rewritten in place was not served within 10 s"
    );

    // A broken certificate: logged, and new connections still get the last good one.
    std::fs::write(
        dir.join("cert.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    let warned = |logs: &std::sync::Mutex<Vec<u8>>| {
        String::from_utf8_lossy(&logs.lock().unwrap()).contains("the TLS files do not load")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !warned(&logs) && tokio::time::Instant::now() < deadline {
        assert_eq!(served_certificate(port, &trusted).await, rewritten);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(warned(&logs), "no warning about the broken file: {logged}");
    assert!(logged.contains("WARN"), "{logged}");
    assert!(
        logged.contains("cert.pem"),
        "the warning names the file: {logged}"
    );
    assert_eq!(served_certificate(port, &trusted).await, rewritten);

    rename_pair(dir, &good_cert, &good_key);
    assert!(
        served_within_10_s(port, &trusted, &good).await,
        "a good pair after a broken one was not served within 10 s"
    );
}

/// One SMTP reply (all its lines) from `read`.
async fn smtp_reply(read: &mut (impl tokio::io::AsyncBufRead + Unpin)) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut reply = String::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.unwrap() == 0 {
            return reply;
        }
        reply.push_str(&line);
        if line.as_bytes().get(3) != Some(&b'-') {
            return reply;
        }
    }
}

#[tokio::test]
async fn the_feedback_mx_offers_starttls_with_the_https_certificate() {
    use tokio::io::{AsyncWriteExt, BufReader};
    let (app, _certs, der) = spawn_https(|_| {}).await;
    let tcp = tokio::net::TcpStream::connect(app.feedback.unwrap())
        .await
        .unwrap();
    let mut plain = BufReader::new(tcp);
    assert!(smtp_reply(&mut plain).await.starts_with("220 "));
    plain.write_all(b"EHLO client.test\r\n").await.unwrap();
    let ehlo = smtp_reply(&mut plain).await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    // A command pipelined behind STARTTLS is dropped, not run inside the TLS session.
    plain
        .write_all(b"STARTTLS\r\nMAIL FROM:<injected@example.test>\r\n")
        .await
        .unwrap();
    assert!(smtp_reply(&mut plain).await.starts_with("220 "));

    let connector = connector(&[&der]);
    let name = ServerName::IpAddress(Ipv4Addr::LOCALHOST.into());
    let tls = connector.connect(name, plain.into_inner()).await.unwrap();
    assert_eq!(
        tls.get_ref().1.peer_certificates().unwrap()[0].as_ref(),
        der
    );
    let mut tls = BufReader::new(tls);
    // Before EHLO again, MAIL is out of order: the injected one above was not taken.
    tls.write_all(b"MAIL FROM:<>\r\n").await.unwrap();
    assert!(smtp_reply(&mut tls).await.starts_with("503"));
    tls.write_all(b"EHLO client.test\r\n").await.unwrap();
    let ehlo = smtp_reply(&mut tls).await;
    assert!(
        ehlo.starts_with("250") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    tls.write_all(b"QUIT\r\n").await.unwrap();
    assert!(smtp_reply(&mut tls).await.starts_with("221"));
}
