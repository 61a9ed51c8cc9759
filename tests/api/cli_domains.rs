//! `trustmail domain …` and `trustmail environment show`, run as processes beside a running
//! server on the same database: tables for people, the API's own JSON for scripts, and
//! `domain wait` checking DNS until every record is ACTIVE.

use std::process::Output;

use secrecy::ExposeSecret;
use serde_json::Value;

use crate::support::{TestApp, TestDns};

/// Runs the `trustmail` binary on `app`'s database, master key and DNS.
async fn trustmail(app: &TestApp, dns: &TestDns, args: &[&str]) -> Output {
    let mut command = command(app, dns, args);
    // The DNS server and the app run on this test's runtime: do not block it.
    tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap()
}

/// The `trustmail` command on `app`'s database, master key and DNS.
fn command(app: &TestApp, dns: &TestDns, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_trustmail"));
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "TRUSTMAIL_DATABASE_URL",
            app.config.database_url.expose_secret(),
        )
        .env(
            "TRUSTMAIL_SECRETS__MASTER_KEY_FILE",
            &app.config.secrets.master_key_file,
        )
        .env("TRUSTMAIL_DOMAINS__EXTRA_PUBLIC_SUFFIXES", "[\"test\"]")
        .env(
            "TRUSTMAIL_DNS__RESOLVERS",
            format!("[\"{}\"]", dns.resolver()),
        )
        .env("TRUSTMAIL_DNS__MIN_RECHECK_INTERVAL_S", "1")
        .env("RUST_LOG", "warn");
    command
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(stdout(out).trim()).unwrap()
}

#[tokio::test]
async fn domains_are_listed_shown_and_waited_for_from_the_command_line() {
    let dns = TestDns::start().await;
    let app = TestApp::with_dns(&dns, |_| {}).await;
    let env = app.environment("Shop").await;
    let id = app.domain(&env, "Auth.ShopCo.test").await;

    let table = stdout(&trustmail(&app, &dns, &["domain", "list", &env]).await);
    let mut lines = table.lines();
    let header: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["ID", "DOMAIN", "STATUS", "ACTIVE", "CREATED"]);
    let row: Vec<_> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..3],
        [id.as_str(), "Auth.ShopCo.test", "VERIFICATION_REQUIRED"]
    );

    let listed = json(&trustmail(&app, &dns, &["domain", "list", &env, "--json"]).await);
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["domainName"], "Auth.ShopCo.test");
    assert_eq!(listed[0]["complete"], false);

    // By name in any case; the JSON is the API's domain with its verification.
    let shown = json(
        &trustmail(
            &app,
            &dns,
            &["domain", "show", &env, "auth.shopco.TEST", "--json"],
        )
        .await,
    );
    let api = app
        .get_json(&format!("/v1/environments/{env}/emailDomains/{id}"))
        .await;
    assert_eq!(shown["domainName"], api["domainName"]);
    assert_eq!(shown["id"], api["id"]);
    let records = shown["verification"]["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["record"] == "DKIM"), "{shown:#}");

    // The zone file in each form, as the API writes it.
    for format in ["bind", "route53", "cloudflare", "terraform"] {
        let cli = stdout(
            &trustmail(
                &app,
                &dns,
                &["domain", "zone-file", &env, &id, "--format", format],
            )
            .await,
        );
        let api = app
            .get(
                &format!("/v1/environments/{env}/emailDomains/{id}/zoneFile?format={format}"),
                &app.admin_token,
            )
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(cli, api, "{format}");
    }
    let unknown_format = trustmail(
        &app,
        &dns,
        &["domain", "zone-file", &env, &id, "--format", "csv"],
    )
    .await;
    assert_eq!(unknown_format.status.code(), Some(2), "clap usage error");

    // Not published: the wait times out with exit 3, saying what it waits on.
    let waited = trustmail(
        &app,
        &dns,
        &["domain", "wait", &env, &id, "--timeout", "1s"],
    )
    .await;
    assert_eq!(waited.status.code(), Some(3));
    let progress = String::from_utf8_lossy(&waited.stderr);
    assert!(
        progress.contains("records ACTIVE; waiting on OWNERSHIP"),
        "{progress}"
    );
    assert!(progress.contains("not every record"), "{progress}");

    app.publish_domain(&dns, &env, &id).await;
    let waited = trustmail(
        &app,
        &dns,
        &["domain", "wait", &env, &id, "--timeout", "1m"],
    )
    .await;
    let shown = stdout(&waited);
    assert!(shown.lines().any(|l| l == "status:      ACTIVE"), "{shown}");
    assert!(String::from_utf8_lossy(&waited.stderr).contains("records ACTIVE"));
    // What the CLI checked, the API now answers.
    let verification = app
        .get_json(&format!(
            "/v1/environments/{env}/emailDomains/{id}/verification"
        ))
        .await;
    assert_eq!(verification["complete"], true);

    let unknown = trustmail(&app, &dns, &["domain", "show", &env, "b.shopco.test"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no domain"));
}

#[tokio::test]
async fn an_environment_is_shown_with_its_domains() {
    let dns = TestDns::start().await;
    let app = TestApp::with_dns(&dns, |_| {}).await;
    let env = app.environment("Shop").await;
    app.domain(&env, "a.shopco.test").await;
    let shown = stdout(&trustmail(&app, &dns, &["environment", "show", &env]).await);
    for expected in [
        format!("id:      {env}"),
        "name:    Shop".to_owned(),
        "domains: 1 (0 with every record ACTIVE)".to_owned(),
    ] {
        assert!(
            shown.lines().any(|l| l == expected),
            "{expected:?} in\n{shown}"
        );
    }
    let api = app.get_json(&format!("/v1/environments/{env}")).await;
    let json = json(&trustmail(&app, &dns, &["environment", "show", &env, "--json"]).await);
    assert_eq!(json["id"], api["id"]);
    assert_eq!(json["name"], api["name"]);
    let table = stdout(&trustmail(&app, &dns, &["environment", "list"]).await);
    assert!(
        table
            .lines()
            .any(|l| l.contains(&env) && l.contains("Shop") && l.ends_with(" 1")),
        "{table}"
    );
}

/// An app with two regions serving NA and a domain with a MAIL FROM domain: 11 records (an
/// ownership TXT and three DKIM CNAMEs per region, the environment TXT, SPF and MX at the MAIL
/// FROM name). Ownership is published (a MAIL FROM needs it), the rest as `publish` says.
async fn eleven_records(dns: &TestDns, publish: bool) -> (TestApp, String, String) {
    use trustmail::{config::Region, domain::Geography};
    let app = TestApp::with_dns(dns, |c| {
        let mut na = Region::named("us-east-1");
        na.geographies = vec![Geography::Na];
        let mut eu = Region::named("eu-west-1");
        eu.geographies = vec![Geography::Eu, Geography::Na];
        c.regions = vec![na, eu];
    })
    .await;
    let env = app.environment("Shop").await;
    let id = app.domain(&env, "auth.shopco.test").await;
    app.publish_domain(dns, &env, &id).await;
    let put = app
        .put(
            &format!("/v1/environments/{env}/emailDomains/{id}/mailFromDomain"),
            &app.admin_token,
            serde_json::json!({"mailFrom": {"domain": "bounce.auth.shopco.test"}}),
        )
        .await;
    assert_eq!(put.status(), reqwest::StatusCode::OK);
    if publish {
        app.publish_domain(dns, &env, &id).await;
    }
    (app, env, id)
}

/// `trustmail domain wait ENV ID --timeout TIMEOUT`, which must exit `expected`: its stderr.
async fn wait_exits(
    (app, env, id): (&TestApp, &str, &str),
    dns: &TestDns,
    timeout: &str,
    expected: i32,
) -> String {
    let waited = trustmail(app, dns, &["domain", "wait", env, id, "--timeout", timeout]).await;
    let progress = String::from_utf8_lossy(&waited.stderr).into_owned();
    assert_eq!(waited.status.code(), Some(expected), "{progress}");
    progress
}

#[tokio::test]
async fn a_wait_on_published_records_exits_0_at_once_and_a_missing_one_at_its_timeout() {
    let dns = TestDns::start().await;
    let (app, env, id) = eleven_records(&dns, false).await;
    let domain = (&app, env.as_str(), id.as_str());
    // The MAIL FROM's MX and SPF are not published: the wait ends at its timeout, not later.
    let started = std::time::Instant::now();
    let progress = wait_exits(domain, &dns, "2s", 3).await;
    assert!(progress.contains("9/11 records ACTIVE"), "{progress}");
    assert!(progress.contains("MAIL_FROM (NOT_FOUND)"), "{progress}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "a 2 s timeout waited {:?}",
        started.elapsed()
    );

    app.publish_domain(&dns, &env, &id).await;
    let progress = wait_exits(domain, &dns, "1m", 0).await;
    assert!(progress.contains("11 records ACTIVE"), "{progress}");
}

#[tokio::test]
async fn a_wait_killed_during_its_check_does_not_hold_back_the_next_one() {
    let dns = TestDns::start().await;
    let (app, env, id) = eleven_records(&dns, true).await;
    // A first wait, killed (Ctrl-C, kill -9) while its lookups are in flight: it has taken the
    // domain's check lease and never gives it back.
    dns.slow("auth.shopco.test", std::time::Duration::from_secs(30));
    let before = dns.asked().len();
    let mut first = command(
        &app,
        &dns,
        &["domain", "wait", &env, &id, "--timeout", "1m"],
    )
    .stderr(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    while dns.asked().len() == before {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    dns.fast();

    // Every record is published: the next wait checks them and finishes well inside its
    // timeout, instead of reading what was stored until the dead process's lease runs out.
    wait_exits((&app, &env, &id), &dns, "40s", 0).await;
}
