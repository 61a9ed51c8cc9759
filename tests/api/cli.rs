//! The `trustmail` command itself.

use std::process::{Command, Output};

use serde_json::Value;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_trustmail"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "TRUSTMAIL_DATABASE_URL",
                format!("sqlite://{}", self.dir.path().join("t.db").display()),
            )
            .env(
                "TRUSTMAIL_SECRETS__MASTER_KEY_FILE",
                self.dir.path().join("k"),
            )
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(stdout.trim().lines().count(), 1, "one JSON line: {stdout}");
        serde_json::from_str(stdout.trim()).unwrap()
    }
}

#[test]
fn init_prints_credentials_once_then_refuses() {
    let cli = Cli::new();
    let creds = cli.json(&["init", "--json"]);
    let keys: Vec<_> = creds.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 4);
    for key in ["environmentId", "clientId", "clientSecret", "tokenUrl"] {
        assert!(creds[key].is_string(), "{key}");
    }
    assert_eq!(
        creds["tokenUrl"],
        format!(
            "http://127.0.0.1:8080/{}/as/token",
            creds["environmentId"].as_str().unwrap()
        )
    );
    let again = cli.run(&["init", "--json"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already initialised"));
    // The secret is not in the database file in clear.
    let db = std::fs::read(cli.dir.path().join("t.db")).unwrap();
    let secret = creds["clientSecret"].as_str().unwrap().as_bytes();
    assert!(!db.windows(secret.len()).any(|w| w == secret));
}

#[test]
fn environments_and_clients_from_the_command_line() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let env = cli.json(&[
        "environment",
        "create",
        "--name",
        "Shop",
        "--region",
        "EU",
        "--json",
    ]);
    assert_eq!(env["region"], "EU");
    let id = env["id"].as_str().unwrap();
    let list = cli.run(&["environment", "list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("Shop"));
    let client = cli.json(&[
        "client",
        "create",
        "--environment",
        id,
        "--role",
        "READ_ONLY",
        "--json",
    ]);
    let keys: Vec<_> = client.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["clientId", "clientSecret"]);
    // Organization administrators live only in Administrators.
    let refused = cli.run(&[
        "client",
        "create",
        "--environment",
        id,
        "--role",
        "ORGANIZATION_ADMIN",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let bad_region = cli.run(&["environment", "create", "--name", "X", "--region", "MARS"]);
    assert_eq!(bad_region.status.code(), Some(2), "clap usage error");
}

#[test]
fn config_is_global_and_bad_config_exits_2_naming_the_key() {
    let cli = Cli::new();
    let file = cli.dir.path().join("c.toml");
    std::fs::write(&file, "[limits]\ndomains_per_environment = \"lots\"\n").unwrap();
    let path = file.to_str().unwrap();
    for args in [["--config", path, "init"], ["init", "--config", path]] {
        let out = cli.run(&args);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("domains_per_environment"), "{stderr}");
    }
    std::fs::write(&file, "[dns]\nresolver = []\n").unwrap();
    let out = cli.run(&["init", "--config", path]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("resolver"));
}

#[test]
fn a_configured_relay_is_checked_before_the_runtime_starts() {
    let cli = Cli::new();
    let out = Command::new(env!("CARGO_BIN_EXE_trustmail"))
        .args(["init", "--json"])
        .env_clear()
        .env(
            "TRUSTMAIL_DATABASE_URL",
            format!("sqlite://{}", cli.dir.path().join("t.db").display()),
        )
        .env(
            "TRUSTMAIL_SECRETS__MASTER_KEY_FILE",
            cli.dir.path().join("k"),
        )
        .env("TRUSTMAIL_MAIL__SMTP_URL", "smtp://127.0.0.1:2525")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_command_has_help() {
    let cli = Cli::new();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["init", "--help"],
        vec!["environment", "create", "--help"],
        vec!["environment", "list", "--help"],
        vec!["client", "create", "--help"],
    ] {
        let out = cli.run(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}
