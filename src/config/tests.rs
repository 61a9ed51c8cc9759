use super::*;
use crate::domain::Geography;
use regions::is_dkim_zone;
use std::io::Write;

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Why loading with only these environment variables fails.
fn env_error(pairs: &[(&str, &str)]) -> String {
    Config::load_from(None, vars(pairs))
        .unwrap_err()
        .to_string()
}

/// Why loading this file, with no environment variables, fails.
fn file_error(contents: &str) -> String {
    let f = file(contents);
    Config::load_from(Some(f.path()), vec![])
        .unwrap_err()
        .to_string()
}

#[test]
fn the_documented_example_sets_every_known_key() {
    let example = include_str!("../../config.example.toml");
    let f = file(example);
    let config = Config::load_from(Some(f.path()), vec![]).unwrap();
    assert_eq!(config.regions[0].name, "us-east-1");
    let table: toml::Table = example.parse().unwrap();
    let mut keys = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(t) => keys.extend(t.keys().map(|sub| format!("{k}.{sub}"))),
            _ => keys.push(k.clone()),
        }
    }
    keys.sort();
    let mut known: Vec<String> = known_keys().to_vec();
    known.sort();
    assert_eq!(keys, known);
}

#[test]
fn unknown_file_keys_stop_startup_naming_the_key() {
    let err = file_error("[dns]\nresolver = [\"127.0.0.1\"]\n");
    assert!(err.contains("resolver"), "{err}");
    let err = file_error("[[regions]]\nname = \"x\"\ncolour = \"red\"\n");
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn webhook_times_out_of_range_are_refused_naming_the_key() {
    for (var, value, key) in [
        (
            "TRUSTMAIL_WEBHOOKS__FIRST_RETRY_MS",
            "0",
            "webhooks.first_retry_ms",
        ),
        (
            "TRUSTMAIL_WEBHOOKS__FIRST_RETRY_MS",
            "3600001",
            "webhooks.first_retry_ms",
        ),
        (
            "TRUSTMAIL_WEBHOOKS__REQUEST_TIMEOUT_S",
            "0",
            "webhooks.request_timeout_s",
        ),
        (
            "TRUSTMAIL_WEBHOOKS__REQUEST_TIMEOUT_S",
            "301",
            "webhooks.request_timeout_s",
        ),
        (
            "TRUSTMAIL_WEBHOOKS__CONNECT_TIMEOUT_S",
            "0",
            "webhooks.connect_timeout_s",
        ),
        (
            "TRUSTMAIL_WEBHOOKS__CONNECT_TIMEOUT_S",
            "301",
            "webhooks.connect_timeout_s",
        ),
    ] {
        let err = env_error(&[(var, value)]);
        assert!(err.contains(key), "{var}={value}: {err}");
    }
    let config =
        Config::load_from(None, vars(&[("TRUSTMAIL_WEBHOOKS__FIRST_RETRY_MS", "50")])).unwrap();
    assert_eq!(
        config.webhooks.first_retry(),
        std::time::Duration::from_millis(50)
    );
    assert_eq!(config.webhooks.connect_timeout().as_secs(), 3);
    let config = Config::load_from(
        None,
        vars(&[("TRUSTMAIL_WEBHOOKS__REQUEST_TIMEOUT_S", "2")]),
    )
    .unwrap();
    assert_eq!(config.webhooks.connect_timeout().as_secs(), 2);
}

#[test]
fn retention_defaults_to_30_30_and_90_days_and_refuses_0_naming_the_key() {
    let config = Config::load_from(None, vec![]).unwrap();
    assert_eq!(config.retention.messages(), time::Duration::days(30));
    assert_eq!(config.retention.deliveries(), time::Duration::days(30));
    assert_eq!(config.retention.activities(), time::Duration::days(90));
    for (var, key) in [
        (
            "TRUSTMAIL_RETENTION__MESSAGES_DAYS",
            "retention.messages_days",
        ),
        (
            "TRUSTMAIL_RETENTION__DELIVERIES_DAYS",
            "retention.deliveries_days",
        ),
        (
            "TRUSTMAIL_RETENTION__ACTIVITIES_DAYS",
            "retention.activities_days",
        ),
    ] {
        for value in ["0", "36501"] {
            let err = env_error(&[(var, value)]);
            assert!(err.contains(key), "{var}={value}: {err}");
        }
    }
    let f = file("[retention]\nmessages_days = 1\ndeliveries_days = 7\nactivities_days = 36500\n");
    let config = Config::load_from(Some(f.path()), vec![]).unwrap();
    assert_eq!(config.retention.messages(), time::Duration::days(1));
    assert_eq!(config.retention.deliveries(), time::Duration::days(7));
    assert_eq!(config.retention.activities(), time::Duration::days(36_500));
}

#[test]
fn times_that_would_overflow_and_a_bad_sender_are_refused_naming_the_key() {
    for (var, key) in [
        ("TRUSTMAIL_DNS__ACTIVE_GRACE_S", "dns.active_grace_s"),
        ("TRUSTMAIL_DNS__TIMEOUT_MS", "dns.timeout_ms"),
        (
            "TRUSTMAIL_DNS__INITIAL_RECHECK_INTERVAL_S",
            "dns.initial_recheck_interval_s",
        ),
    ] {
        let err = Config::load_from(None, vars(&[(var, "18446744073709551615")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{err}");
    }
    let err = Config::load_from(None, vars(&[("TRUSTMAIL_MAIL__SYSTEM_SENDER", "nobody")]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("mail.system_sender"), "{err}");
}

#[test]
fn bad_values_name_the_key() {
    let err = env_error(&[("TRUSTMAIL_LIMITS__DOMAINS_PER_ENVIRONMENT", "many")]);
    assert!(err.contains("limits.domains_per_environment"), "{err}");
    let err = file_error("[[regions]]\nname = \"Bad_Name\"\n");
    assert!(err.contains("regions[0].name"), "{err}");
    let err = file_error("[dkim_dns]\nnameservers = [\"ns1.example.com\", \"bad name\"]\n");
    assert!(err.contains("dkim_dns.nameservers[1]"), "{err}");
    let err = file_error("listen = \"nowhere\"\n");
    assert!(err.contains("listen"), "{err}");
}

#[test]
fn environment_overrides_file_and_accepts_both_array_forms() {
    let f = file("[dns]\ntimeout_ms = 10\n");
    let config = Config::load_from(
        Some(f.path()),
        vars(&[
            ("TRUSTMAIL_DNS__TIMEOUT_MS", "20"),
            ("TRUSTMAIL_DNS__RESOLVERS", "127.0.0.1:5353, 127.0.0.2"),
            (
                "TRUSTMAIL_DOMAINS__EXTRA_PUBLIC_SUFFIXES",
                "[\"test\", \"example\"]",
            ),
            ("TRUSTMAIL_DATABASE_URL", "postgres://u@h/db"),
            ("TRUSTMAIL_NOT_A_KEY", "ignored"),
            ("TRUSTMAIL_CONFIG", "ignored-too"),
        ]),
    )
    .unwrap();
    assert_eq!(config.dns.timeout_ms, 20);
    assert_eq!(config.dns.resolvers, ["127.0.0.1:5353", "127.0.0.2"]);
    assert_eq!(config.domains.extra_public_suffixes, ["test", "example"]);
    assert_eq!(config.database_url.expose_secret(), "postgres://u@h/db");
}

#[test]
fn http_limits_must_be_positive_and_not_overflow() {
    for (var, key) in [
        (
            "TRUSTMAIL_HTTP__HEADER_READ_TIMEOUT_S",
            "http.header_read_timeout_s",
        ),
        (
            "TRUSTMAIL_HTTP__REQUEST_TIMEOUT_S",
            "http.request_timeout_s",
        ),
        ("TRUSTMAIL_HTTP__IDLE_TIMEOUT_S", "http.idle_timeout_s"),
        ("TRUSTMAIL_HTTP__MAX_CONNECTIONS", "http.max_connections"),
    ] {
        let err = env_error(&[(var, "0")]);
        assert!(err.contains(key), "{err}");
    }
    let err = env_error(&[("TRUSTMAIL_HTTP__IDLE_TIMEOUT_S", "18446744073709551615")]);
    assert!(err.contains("http.idle_timeout_s"), "{err}");
    let config =
        Config::load_from(None, vars(&[("TRUSTMAIL_HTTP__REQUEST_TIMEOUT_S", "5")])).unwrap();
    assert_eq!(config.http.request_timeout_s, 5);
    assert_eq!(config.http.header_read_timeout_s, 30);
}

#[test]
fn trusted_proxies_are_addresses_or_cidr_blocks() {
    let err = env_error(&[(
        "TRUSTMAIL_HTTP__TRUSTED_PROXIES",
        "10.0.0.0/8,proxy.internal",
    )]);
    assert!(err.contains("http.trusted_proxies"), "{err}");
    assert!(err.contains("proxy.internal"), "{err}");
    let http = Http {
        trusted_proxies: vec!["10.0.0.0/8".into(), "192.0.2.7".into()],
        ..Http::default()
    };
    assert!(http.validate().is_ok());
    assert_eq!(http.trusted_proxies().len(), 2);
}

#[test]
fn metrics_listen_is_an_address_and_the_token_is_a_secret() {
    let err = env_error(&[("TRUSTMAIL_METRICS__LISTEN", "localhost")]);
    assert!(err.contains("metrics.listen"), "{err}");
    let config = Config::load_from(
        None,
        vars(&[
            ("TRUSTMAIL_METRICS__LISTEN", "127.0.0.1:9100"),
            ("TRUSTMAIL_METRICS__TOKEN", "scrape-me"),
        ]),
    )
    .unwrap();
    assert_eq!(
        config.metrics.listen_addr(),
        Some(SocketAddr::from(([127, 0, 0, 1], 9100)))
    );
    assert!(!format!("{config:?}").contains("scrape-me"));
    assert_eq!(config.metrics.token().unwrap().expose_secret(), "scrape-me");
}

#[test]
fn tls_needs_both_files_or_neither() {
    let err = env_error(&[("TRUSTMAIL_HTTP__TLS_CERT_FILE", "/etc/tls/cert.pem")]);
    assert!(err.contains("http.tls_key_file"), "{err}");
    assert!(err.contains("both"), "{err}");
    let err = env_error(&[("TRUSTMAIL_HTTP__TLS_KEY_FILE", "/etc/tls/key.pem")]);
    assert!(err.contains("http.tls_cert_file"), "{err}");
    let err = env_error(&[("TRUSTMAIL_HTTP__TLS_RELOAD_INTERVAL_S", "0")]);
    assert!(err.contains("http.tls_reload_interval_s"), "{err}");
    assert_eq!(Config::default().http.tls_files(), None);
    let config = Config::load_from(
        None,
        vars(&[
            ("TRUSTMAIL_HTTP__TLS_CERT_FILE", "/etc/tls/cert.pem"),
            ("TRUSTMAIL_HTTP__TLS_KEY_FILE", "/etc/tls/key.pem"),
        ]),
    )
    .unwrap();
    let (cert, key) = config.http.tls_files().unwrap();
    assert_eq!(
        (cert.to_str(), key.to_str()),
        (Some("/etc/tls/cert.pem"), Some("/etc/tls/key.pem"))
    );
}

#[test]
fn dkim_zones_hold_only_what_token_values_may() {
    for name in ["us-east-1", "eu-west-1", "ap-southeast-2", "a1"] {
        let zone = Region::named(name).dkim_zone;
        assert!(is_dkim_zone(&zone), "{zone}");
    }
    for bad in [
        "dkim.-east.example.com",
        "Dkim.example.com",
        "dkim..example.com",
        "dkim.example.com.",
        "us_east_1.dkim.example.com",
        "",
    ] {
        let f = file(&format!(
            "[[regions]]\nname = \"x\"\ndkim_zone = \"{bad}\"\n"
        ));
        let err = Config::load_from(Some(f.path()), vec![])
            .unwrap_err()
            .to_string();
        assert!(err.contains("regions[0].dkim_zone"), "{bad}: {err}");
        assert!(err.contains("^[a-z0-9_.]*$"), "{err}");
    }
}

#[test]
fn a_hyphenated_dkim_zone_loads_with_a_warning() {
    let f = file("[[regions]]\nname = \"us-east-1\"\ndkim_zone = \"dkim.us-east-1.example.com\"\n");
    let config = Config::load_from(Some(f.path()), vec![]).unwrap();
    assert_eq!(config.regions[0].dkim_zone, "dkim.us-east-1.example.com");
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("regions[0].dkim_zone"), "{warnings:?}");
    assert!(warnings[0].contains("Terraform"), "{warnings:?}");
    assert!(Config::default().warnings().is_empty());
}

#[test]
fn dkim_dns_limits_are_checked_by_key() {
    for (var, value, key) in [
        (
            "TRUSTMAIL_DKIM_DNS__REFRESH_INTERVAL_MS",
            "0",
            "dkim_dns.refresh_interval_ms",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__TCP_IDLE_TIMEOUT_MS",
            "0",
            "dkim_dns.tcp_idle_timeout_ms",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__UDP_WORKERS",
            "0",
            "dkim_dns.udp_workers",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__MAX_TCP_CONNECTIONS",
            "0",
            "dkim_dns.max_tcp_connections",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__RATE_LIMIT_IPV4_PREFIX",
            "33",
            "dkim_dns.rate_limit_ipv4_prefix",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__RATE_LIMIT_IPV6_PREFIX",
            "8",
            "dkim_dns.rate_limit_ipv6_prefix",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES",
            "[\"ns1\"]",
            "dkim_dns.nameserver_addresses[0]",
        ),
        (
            "TRUSTMAIL_DKIM_DNS__RATE_LIMIT_SLIP",
            "-1",
            "rate_limit_slip",
        ),
    ] {
        let err = env_error(&[(var, value)]);
        assert!(err.contains(key), "{var}: {err}");
    }
    let config = Config::load_from(
        None,
        vars(&[(
            "TRUSTMAIL_DKIM_DNS__NAMESERVER_ADDRESSES",
            "[\"192.0.2.53\", \"2001:db8::53\"]",
        )]),
    )
    .unwrap();
    assert_eq!(config.dkim_dns.addresses().len(), 2);
    assert_eq!(config.dkim_dns.rate_limit_per_source, 100);
}

#[test]
fn the_pingone_names_example_loads_with_pingones_record_names() {
    let f = file(include_str!("../../examples/pingone-names.toml"));
    let config = Config::load_from(Some(f.path()), vec![]).unwrap();
    let records = config.record_settings();
    assert_eq!(records.ownership_prefix, "_amazonses");
    assert_eq!(records.environment_prefix, "_pingoneemail");
    assert_eq!(records.spf_include, "amazonses.com");
    // TLS is commented out, so that the example starts as shipped (README § HTTPS).
    assert!(config.http.tls_files().is_none());
    let names: Vec<&str> = config.regions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["us-east-1", "ca-central-1", "eu-west-1", "ap-southeast-2"]
    );
}

#[test]
fn region_keys_default_from_the_name() {
    let f = file("[[regions]]\nname = \"eu-west-1\"\n");
    let config = Config::load_from(Some(f.path()), vec![]).unwrap();
    let r = &config.regions[0];
    assert_eq!(r.dkim_zone, "euwest1.dkim.trustmail.example");
    assert_eq!(r.mail_from_mx, "feedback.eu-west-1.trustmail.example");
    assert_eq!(r.geographies, Geography::ALL);
}

#[test]
fn a_bad_smtp_url_is_refused_at_load_naming_the_key_but_not_the_password() {
    for (var, key) in [
        ("TRUSTMAIL_MAIL__SMTP_URL", "smtp_url"),
        ("TRUSTMAIL_MAIL__SMTP_URL", "mail"),
    ] {
        for url in [
            "ftp://user:hunter2@relay.example",
            "smtp://user:hunter2@relay.example",
        ] {
            let err = env_error(&[(var, url)]);
            assert!(err.contains(key), "{url}: {err}");
            assert!(!err.contains("hunter2"), "{url}: {err}");
        }
    }
    let err =
        file_error("[[regions]]\nname = \"us\"\nsmtp_url = \"smtp://u:hunter2@relay.example\"\n");
    assert!(
        err.contains("plain SMTP") && err.contains("regions"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn the_known_keys_are_the_sections_fields() {
    let keys = known_keys();
    for key in [
        "listen",
        "regions",
        "limits.messages_per_minute",
        "mail.smtp_url",
        "secrets.master_key",
    ] {
        assert!(keys.iter().any(|k| k == key), "{key} in {keys:?}");
    }
    assert!(!keys.iter().any(|k| k.starts_with("regions.")), "{keys:?}");
}
