//! `trustmail outbox list/show`, and a relay URL that stops start-up.

use std::process::{Command, Output};

use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use trustmail::{domain::EnvironmentId, mail::OutboxId, store::Store};

use crate::outbox::code_mail;

#[test]
fn an_unusable_relay_url_stops_startup_without_showing_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_trustmail"))
        .arg("serve")
        .env_clear()
        .env("TRUSTMAIL_DATABASE_URL", sqlite_url(dir.path()))
        .env("TRUSTMAIL_SECRETS__MASTER_KEY_FILE", dir.path().join("k"))
        .env("TRUSTMAIL_LISTEN", "127.0.0.1:0")
        .env("TRUSTMAIL_MAIL__SMTP_URL", "ftp://user:hunter2@relay.test")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mail.smtp_url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

fn sqlite_url(dir: &std::path::Path) -> String {
    format!("sqlite://{}", dir.join("t.db").display())
}

fn cli(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustmail"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TRUSTMAIL_DATABASE_URL", sqlite_url(dir))
        .env("TRUSTMAIL_SECRETS__MASTER_KEY_FILE", dir.join("k"))
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout_of(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn an_operator_reads_the_outbox_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let init: Value =
        serde_json::from_str(&stdout_of(&cli(dir.path(), &["init", "--json"]))).unwrap();
    let environment: EnvironmentId = init["environmentId"].as_str().unwrap().parse().unwrap();
    let store = Store::connect(&sqlite_url(dir.path())).await.unwrap();
    let older = code_mail(Some(environment), "first@shop.test", "aaaa1111");
    let mail = code_mail(Some(environment), "Ann@shop.test", "k3x9a0bz");
    store.enqueue_mail(&older).await.unwrap();
    store.enqueue_mail(&mail).await.unwrap();
    store.close().await;

    let out = stdout_of(&cli(dir.path(), &["outbox", "list", "--json"]));
    assert_eq!(out.trim().lines().count(), 1, "one JSON line: {out}");
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], mail.id.to_string());
    assert_eq!(list[1]["id"], older.id.to_string());
    assert_eq!(list[0]["status"], "PENDING");
    assert_eq!(list[0]["to"], "Ann@shop.test");
    assert_eq!(list[0]["subject"], "Your trustmail verification code");
    assert_eq!(list[0]["route"], "system");
    assert_eq!(list[0]["attempts"], 0);
    let created = list[0]["createdAt"].as_str().unwrap();
    OffsetDateTime::parse(created, &Rfc3339).unwrap();

    let limited = stdout_of(&cli(dir.path(), &["outbox", "list", "--limit", "1"]));
    assert_eq!(limited.lines().count(), 1);
    assert!(limited.contains(&mail.id.to_string()) && limited.contains("PENDING"));

    let id = mail.id.to_string();
    let shown = stdout_of(&cli(dir.path(), &["outbox", "show", &id]));
    for expected in [
        format!("id:            {id}"),
        format!("environment:   {environment}"),
        "envelope from: no-reply@trustmail.example".to_owned(),
        "envelope to:   Ann@shop.test".to_owned(),
        "status:        PENDING".to_owned(),
        "attempts:      0".to_owned(),
        "last error:    -".to_owned(),
        "Subject: Your trustmail verification code".to_owned(),
        "Verification code: k3x9a0bz".to_owned(),
    ] {
        assert!(
            shown.lines().any(|l| l == expected),
            "{expected:?} in\n{shown}"
        );
    }

    let unknown = cli(
        dir.path(),
        &["outbox", "show", &OutboxId::new().to_string()],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no outbox message"));
    let malformed = cli(dir.path(), &["outbox", "show", "nope"]);
    assert_eq!(malformed.status.code(), Some(2), "clap usage error");
    for args in [["outbox", "list", "--help"], ["outbox", "show", "--help"]] {
        assert!(stdout_of(&cli(dir.path(), &args)).contains("Usage"));
    }
}
