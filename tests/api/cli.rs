//! The `trustmail` command itself, run as a process: exit codes, stdout and stderr.

use std::process::{Command, Output};

use serde_json::Value;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};
use trustmail::{domain::EnvironmentId, mail::MessageId, secrets::MasterKey, store::Store};

use crate::{outbox::code_mail, support::TestApp};

/// A data directory and the `trustmail` binary pointed at it through the environment only.
struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("t.db").display())
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    /// `args`, with `env` added to the environment (which holds nothing else of the caller's
    /// but PATH).
    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_trustmail"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TRUSTMAIL_DATABASE_URL", self.database_url())
            .env(
                "TRUSTMAIL_SECRETS__MASTER_KEY_FILE",
                self.dir.path().join("k"),
            )
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }

    /// Stdout of a command that must succeed.
    fn stdout(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates an environment "Shop" (NA) after `init`; its id.
    fn shop(&self) -> String {
        let env = self.json(&[
            "environment",
            "create",
            "--name",
            "Shop",
            "--region",
            "NA",
            "--json",
        ]);
        env["id"].as_str().unwrap().to_owned()
    }

    /// The one JSON line a `--json` command prints.
    fn json(&self, args: &[&str]) -> Value {
        let stdout = self.stdout(args);
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
    let out = cli.run_with(
        &["init", "--json"],
        &[("TRUSTMAIL_MAIL__SMTP_URL", "smtp://127.0.0.1:2525")],
    );
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
        vec!["environment", "show", "--help"],
        vec!["domain", "list", "--help"],
        vec!["domain", "show", "--help"],
        vec!["domain", "wait", "--help"],
        vec!["domain", "zone-file", "--help"],
        vec!["client", "create", "--help"],
        vec!["dkim", "zone-file", "--help"],
        vec!["secrets", "rotate-master-key", "--help"],
    ] {
        let out = cli.run(&args);
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    }
}

#[test]
fn an_unusable_relay_url_stops_startup_without_showing_it() {
    let out = Cli::new().run_with(
        &["serve"],
        &[
            ("TRUSTMAIL_LISTEN", "127.0.0.1:0"),
            ("TRUSTMAIL_MAIL__SMTP_URL", "ftp://user:hunter2@relay.test"),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("mail.smtp_url"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

#[tokio::test]
async fn an_operator_reads_the_outbox_from_the_command_line() {
    let cli = Cli::new();
    let init = cli.json(&["init", "--json"]);
    let environment: EnvironmentId = init["environmentId"].as_str().unwrap().parse().unwrap();
    let store = Store::connect(&cli.database_url()).await.unwrap();
    let older = code_mail(Some(environment), "first@shop.test", "aaaa1111");
    let mail = code_mail(Some(environment), "Ann@shop.test", "k3x9a0bz");
    store.enqueue_mail(&older).await.unwrap();
    store.enqueue_mail(&mail).await.unwrap();
    store.close().await;

    let list = cli.json(&["outbox", "list", "--json"]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], mail.id.to_string());
    assert_eq!(list[1]["id"], older.id.to_string());
    assert_eq!(list[0]["status"], "QUEUED");
    assert_eq!(list[0]["to"], "Ann@shop.test");
    assert_eq!(list[0]["subject"], "Your trustmail verification code");
    assert_eq!(list[0]["route"], "system");
    assert_eq!(list[0]["attempts"], 0);
    let created = list[0]["createdAt"].as_str().unwrap();
    OffsetDateTime::parse(created, &Rfc3339).unwrap();

    let limited = cli.stdout(&["outbox", "list", "--limit", "1"]);
    assert_eq!(limited.lines().count(), 1);
    assert!(limited.contains(&mail.id.to_string()) && limited.contains("QUEUED"));

    let id = mail.id.to_string();
    let shown = cli.stdout(&["outbox", "show", &id]);
    for expected in [
        format!("id:            {id}"),
        format!("environment:   {environment}"),
        "envelope from: no-reply@trustmail.example".to_owned(),
        "envelope to:   Ann@shop.test".to_owned(),
        "status:        QUEUED".to_owned(),
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

    let unknown = cli.run(&["outbox", "show", &MessageId::new().to_string()]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no outbox message"));
    let malformed = cli.run(&["outbox", "show", "nope"]);
    assert_eq!(malformed.status.code(), Some(2), "clap usage error");
    for args in [["outbox", "list", "--help"], ["outbox", "show", "--help"]] {
        assert!(cli.stdout(&args).contains("Usage"));
    }
}

#[test]
fn a_replica_without_the_master_key_refuses_to_start_and_says_what_to_copy() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let key_file = cli.dir.path().join("k");
    std::fs::remove_file(&key_file).unwrap();
    let out = cli.run(&["environment", "list"]);
    assert_eq!(out.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sealed with a master key"), "{stderr}");
    assert!(stderr.contains(&key_file.display().to_string()), "{stderr}");
    assert!(stderr.contains("TRUSTMAIL_SECRETS__MASTER_KEY"), "{stderr}");
    assert!(!key_file.exists(), "no second key is made");
}

fn key_id(path: &std::path::Path) -> String {
    MasterKey::load(path).unwrap().unwrap().key_id().to_string()
}

#[test]
fn a_replica_with_another_master_key_refuses_to_start_naming_the_key_that_sealed() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let key_file = cli.dir.path().join("k");
    let sealing = key_id(&key_file);
    std::fs::write(&key_file, format!("{}\n", "A".repeat(43) + "=")).unwrap();
    owner_only(&key_file);
    let out = cli.run(&["environment", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("does not open"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sealed under master key {sealing}, which is not loaded"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&key_id(&key_file)),
        "the loaded key too: {stderr}"
    );
}

#[test]
fn a_previous_master_key_file_that_does_not_exist_stops_startup_naming_the_key() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let missing = cli.dir.path().join("old.key");
    let out = cli.run_with(
        &["environment", "list"],
        &[(
            "TRUSTMAIL_SECRETS__PREVIOUS_MASTER_KEY_FILE",
            missing.to_str().unwrap(),
        )],
    );
    assert_eq!(out.status.code(), Some(2), "a configuration error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secrets.previous_master_key_file"),
        "{stderr}"
    );
    assert!(stderr.contains(&missing.display().to_string()), "{stderr}");
}

#[test]
fn replicas_keep_running_through_a_rotation_with_a_key_that_only_opens() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let old = cli.dir.path().join("k");
    let new = cli.dir.path().join("new.key");
    let (old_path, new_path) = (old.to_str().unwrap(), new.to_str().unwrap());
    let rotate = ["secrets", "rotate-master-key", "--new-key-file", new_path];
    let list = ["environment", "list"];
    let with = |master: &str, previous: &str| {
        cli.run_with(
            &list,
            &[
                ("TRUSTMAIL_SECRETS__MASTER_KEY_FILE", master),
                ("TRUSTMAIL_SECRETS__PREVIOUS_MASTER_KEY_FILE", previous),
            ],
        )
    };

    // Rotated by a configuration that does not open the new key yet: it says so.
    let out = cli.run(&rotate);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new_id = key_id(&new);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("does not open values under {new_id}")),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("secrets.master_key_file to {new_path}")),
        "{stdout}"
    );

    // The old key alone no longer opens the token signing key; with the new one opening too,
    // the old configuration runs.
    let out = cli.run(&list);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("master key {new_id}")), "{stderr}");
    assert!(with(old_path, new_path).status.success());
    // After the swap: the new key seals, the old one opens; and then the new one alone.
    assert!(with(new_path, old_path).status.success());
    let out = cli.run_with(
        &rotate,
        &[
            ("TRUSTMAIL_SECRETS__MASTER_KEY_FILE", new_path),
            ("TRUSTMAIL_SECRETS__PREVIOUS_MASTER_KEY_FILE", old_path),
        ],
    );
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("re-sealed 0 values"), "{stdout}");
    assert!(
        stdout.contains("unset secrets.previous_master_key_file"),
        "{stdout}"
    );
    assert!(with(new_path, "").status.success());
}

fn owner_only(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_master_key_file_that_others_can_read_is_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let key_file = cli.dir.path().join("k");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = cli.run(&["environment", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("chmod 600 {}", key_file.display())),
        "{stderr}"
    );
    owner_only(&key_file);
    assert!(cli.run(&["environment", "list"]).status.success());
}

#[test]
fn the_master_key_may_come_from_the_environment_instead_of_the_file() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let key_file = cli.dir.path().join("k");
    let key = std::fs::read_to_string(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let out = cli.run_with(
        &["environment", "list"],
        &[("TRUSTMAIL_SECRETS__MASTER_KEY", key.trim())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Administrators"));
    assert!(!key_file.exists());
}

#[test]
fn dkim_rotate_moves_a_domains_keys_from_the_command_line() {
    let cli = Cli::new();
    cli.json(&["init", "--json"]);
    let env = cli.shop();
    let env = env.as_str();
    // The CLI creates no domains: the domain is made through the library on the same files.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut config = trustmail::config::Config {
            database_url: cli.database_url().into(),
            ..trustmail::config::Config::default()
        };
        config.secrets.master_key_file = cli.dir.path().join("k");
        config.domains.extra_public_suffixes = vec!["test".into()];
        config.dkim.algorithm = trustmail::domain::DkimAlgorithm::Ed25519;
        let service = trustmail::startup::open_service(&config, "http://localhost")
            .await
            .unwrap();
        let operator = service.operator().await.unwrap().unwrap();
        let environment = service.environment(env.parse().unwrap()).await.unwrap();
        service
            .create_domain(&operator, &environment, "a.shopco.test")
            .await
            .unwrap();
    });
    let args = [
        "dkim",
        "rotate",
        "--environment",
        env,
        "--domain",
        "A.ShopCo.test",
        "--json",
    ];
    let keys = cli.json(&args);
    let roles: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roles, ["RETIRED", "SIGNING", "PUBLISHED"]);
    let unknown = cli.run(&[
        "dkim",
        "rotate",
        "--environment",
        env,
        "--domain",
        "b.shopco.test",
    ]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no domain"));
}

#[tokio::test]
async fn dkim_zone_file_prints_the_regions_zone_with_every_key() {
    let app = TestApp::spawn().await;
    let env = app.environment("Shop").await;
    let id = app.domain(&env, "auth.shopco.test").await;
    let domain = app.email_domain(&env, &id).await;
    let keys = app.service.dkim_keys(&domain).await.unwrap();
    let cli = Cli::new();
    let database_url = format!("sqlite://{}", app.dir.path().join("trustmail.db").display());
    let master_key = app.dir.path().join("master.key");
    let env_vars = [
        ("TRUSTMAIL_DATABASE_URL", database_url.as_str()),
        (
            "TRUSTMAIL_SECRETS__MASTER_KEY_FILE",
            master_key.to_str().unwrap(),
        ),
    ];

    // Its NS, ns1.<zone>, lies inside the zone: without an address for it BIND refuses the
    // zone, so trustmail does too, naming the keys that fix it.
    let refused = cli.run_with(&["dkim", "zone-file", "--region", "us-east-1"], &env_vars);
    assert_eq!(refused.status.code(), Some(1));
    assert!(refused.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("dkim_dns.nameserver_addresses"), "{stderr}");
    let env_vars = [
        env_vars[0],
        env_vars[1],
        (
            "TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES",
            "[\"192.0.2.53\"]",
        ),
    ];

    let out = cli.run_with(&["dkim", "zone-file", "--region", "us-east-1"], &env_vars);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zone = String::from_utf8(out.stdout).unwrap();
    let origin = "useast1.dkim.trustmail.example";
    for expected in [
        format!("$ORIGIN {origin}."),
        "$TTL 300".to_owned(),
        format!("@ IN SOA ns1.{origin}. hostmaster.{origin}. ( 1 3600 600 86400 300 )"),
        format!("@ IN NS ns1.{origin}."),
        format!("ns1.{origin}. IN A 192.0.2.53"),
    ] {
        assert!(
            zone.lines().any(|l| l == expected),
            "{expected:?} in\n{zone}"
        );
    }
    assert_eq!(keys.len(), 3);
    for key in &keys {
        let line = format!("{} IN TXT \"{}\"", key.selector, key.txt());
        assert!(zone.lines().any(|l| l == line), "{line:?} in\n{zone}");
    }
    assert_eq!(zone.lines().filter(|l| l.contains(" IN TXT ")).count(), 3);

    let unknown = cli.run_with(&["dkim", "zone-file", "--region", "mars-1"], &env_vars);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(unknown.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("no region mars-1"), "{stderr}");
    assert!(stderr.contains("us-east-1"), "{stderr}");
}

#[test]
fn client_list_show_rotate_secret_and_delete_from_the_command_line() {
    let cli = Cli::new();
    let init = cli.json(&["init", "--json"]);
    let env = cli.shop();
    let env = env.as_str();
    let created = cli.json(&[
        "client",
        "create",
        "--environment",
        env,
        "--role",
        "READ_ONLY",
        "--name",
        "Reports",
        "--json",
    ]);
    let id = created["clientId"].as_str().unwrap();
    let secret = created["clientSecret"].as_str().unwrap();
    let list = cli.json(&["client", "list", "--environment", env, "--json"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["name"], "Reports");
    assert_eq!(list[0]["role"], "READ_ONLY");
    assert!(list[0].get("clientSecret").is_none(), "{list}");
    let shown = cli.json(&["client", "show", id, "--json"]);
    assert_eq!(shown, list[0]);
    let rotated = cli.json(&["client", "rotate-secret", id, "--json"]);
    let keys: Vec<_> = rotated.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["clientSecret"]);
    assert_ne!(rotated["clientSecret"], secret);
    assert!(cli.run(&["client", "delete", id]).status.success());
    assert_eq!(cli.run(&["client", "show", id]).status.code(), Some(1));
    assert_eq!(cli.run(&["client", "delete", id]).status.code(), Some(1));
    // The organization keeps its last administrator.
    let last = cli.run(&["client", "delete", init["clientId"].as_str().unwrap()]);
    assert_eq!(last.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&last.stderr).contains("last ORGANIZATION_ADMIN"));
}
