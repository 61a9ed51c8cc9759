//! DNS verification against an in-process authoritative server: statuses, reasons, schedule.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestDns, assert_p1_error, redact, retry_after};

const DOMAIN: &str = "a.shopco.test";

struct Fixture {
    app: TestApp,
    dns: std::sync::Arc<TestDns>,
    base: String,
}

impl Fixture {
    async fn new(tweak: impl FnOnce(&mut trustmail::config::Config)) -> Self {
        let dns = TestDns::start().await;
        let app = TestApp::with_dns(&dns, tweak).await;
        let env = app.environment("Shop").await;
        let id = app.domain(&env, DOMAIN).await;
        let base = format!("/v1/environments/{env}/emailDomains/{id}");
        Self { app, dns, base }
    }

    async fn get(&self, leaf: &str) -> Value {
        self.app.get_json(&format!("{}/{leaf}", self.base)).await
    }

    /// `POST …/verification`, waiting out the 5 s rate limit if a previous one is recent.
    async fn check_now(&self) -> Vec<Value> {
        loop {
            let r = self
                .app
                .post(
                    &format!("{}/verification", self.base),
                    &self.app.admin_token,
                    Value::Null,
                )
                .await;
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.unwrap();
            return body["records"].as_array().unwrap().clone();
        }
    }

    async fn diagnosis(&self) -> Vec<Value> {
        self.get("verification").await["records"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn ownership_value(&self) -> (String, String) {
        let own = self.get("ownership").await;
        (
            own["regions"][0]["value"].as_str().unwrap().to_owned(),
            own["environmentDnsRecord"]["value"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    }

    async fn dkim_tokens(&self) -> Vec<(String, String)> {
        let dkim = self.get("dkim").await;
        dkim["regions"][0]["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_owned(),
                    t["value"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

impl Fixture {
    fn env(&self) -> &str {
        self.base.split('/').nth(3).unwrap()
    }

    fn domain_id(&self) -> &str {
        self.base.rsplit('/').next().unwrap()
    }

    /// Publishes the key record behind each DKIM selector, as trustmail's DNS serves it.
    async fn publish_dkim_keys(&self) {
        self.app
            .publish_dkim_keys(&self.dns, self.env(), self.domain_id())
            .await;
    }

    /// Publishes the ownership TXT with the right value.
    async fn publish_ownership(&self) -> String {
        let (ownership, _) = self.ownership_value().await;
        self.dns.add_txt("_trustmail.a.shopco.test", &[&ownership]);
        ownership
    }

    /// The domain's activities of one type, newest first.
    async fn activities(&self, action: &str) -> Vec<Value> {
        let list = self
            .app
            .get_json(&format!("/v1/environments/{}/activities", self.env()))
            .await;
        list["_embedded"]["activities"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"]["type"] == action)
            .cloned()
            .collect()
    }

    /// Names for the values this domain's records hold, for snapshots.
    async fn names(&self) -> redact::Names {
        let (ownership, environment) = self.ownership_value().await;
        let id = self.base.rsplit('/').next().unwrap();
        let mut names = self
            .app
            .names()
            .with(self.env(), "[env]")
            .with(id, "[domain]")
            .with(ownership, "[ownership token]")
            .with(environment, "[environment token]");
        for (i, (key, _)) in self.dkim_tokens().await.iter().enumerate() {
            let selector = key.split('.').next().unwrap();
            names = names.with(selector, &format!("[selector {i}]"));
        }
        names
    }
}

fn find<'a>(records: &'a [Value], record: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["record"] == record)
        .unwrap_or_else(|| panic!("no {record}"))
}

/// Publishes every record of the domain: ownership split into two strings under a mixed-case
/// name beside an unrelated TXT, DKIM targets in upper case, SPF with mechanisms of its own.
async fn publish_everything(f: &Fixture) {
    let (ownership, environment) = f.ownership_value().await;
    let (head, tail) = ownership.split_at(10);
    f.dns.add_txt("_Trustmail.A.ShopCo.Test.", &[head, tail]);
    f.dns.add_txt(
        "_trustmail.a.shopco.test",
        &["google-site-verification=xyz"],
    );
    f.dns
        .add_txt("_trustmail-environment.a.shopco.test", &[&environment]);
    for (key, value) in f.dkim_tokens().await {
        f.dns.add_cname(&key, &format!("{}.", value.to_uppercase()));
    }
    f.publish_dkim_keys().await;
    f.dns.add_txt(
        DOMAIN,
        &["v=spf1 ip4:192.0.2.1 include:SPF.trustmail.example -all"],
    );
}

#[tokio::test]
async fn published_ownership_and_environment_records_read_active_at_once() {
    let f = Fixture::new(|_| {}).await;
    let own = f.get("ownership").await;
    assert_eq!(own["regions"][0]["status"], "VERIFICATION_REQUIRED");
    publish_everything(&f).await;
    let own = f.get("ownership").await;
    assert_eq!(own["regions"][0]["status"], "ACTIVE", "{own}");
    assert_eq!(own["environmentDnsRecord"]["status"], "ACTIVE", "{own}");
}

#[tokio::test]
async fn published_dkim_cnames_read_active_at_once() {
    let f = Fixture::new(|_| {}).await;
    publish_everything(&f).await;
    assert_eq!(f.get("dkim").await["regions"][0]["status"], "ACTIVE");
}

#[tokio::test]
async fn a_published_spf_with_the_include_reads_active_at_once() {
    let f = Fixture::new(|_| {}).await;
    publish_everything(&f).await;
    assert_eq!(f.get("spf").await["status"], "ACTIVE");
}

#[tokio::test]
async fn each_visible_status_change_is_an_activity_naming_record_region_and_status() {
    let f = Fixture::new(|_| {}).await;
    publish_everything(&f).await;
    for leaf in ["ownership", "dkim", "spf"] {
        f.get(leaf).await;
    }
    let mut seen: Vec<String> = f
        .activities("EMAIL_DOMAIN_STATUS_UPDATED")
        .await
        .iter()
        .map(|a| {
            format!(
                "{}/{}/{}",
                a["details"]["record"].as_str().unwrap(),
                a["details"]["region"].as_str().unwrap_or("-"),
                a["details"]["status"].as_str().unwrap()
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            "DKIM/us-east-1/ACTIVE",
            "ENVIRONMENT/-/ACTIVE",
            "OWNERSHIP/us-east-1/ACTIVE",
            "SPF/-/ACTIVE"
        ]
    );
}

#[tokio::test]
async fn before_any_check_every_record_is_not_checked() {
    let f = Fixture::new(|_| {}).await;
    let records = f.diagnosis().await;
    assert!(
        records
            .iter()
            .all(|r| r["reason"] == "NOT_CHECKED" && r["lastCheckedAt"].is_null())
    );
}

#[tokio::test]
async fn a_check_that_finds_nothing_says_where_each_record_goes() {
    let f = Fixture::new(|_| {}).await;
    let records = f.check_now().await;
    let own = find(&records, "OWNERSHIP");
    assert_eq!(own["reason"], "NOT_FOUND");
    let names = f.names().await;
    insta::assert_json_snapshot!(records, {
        "[].lastCheckedAt" => redact::time(),
        "[].nextCheckAt" => redact::time(),
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn a_record_under_the_zone_appended_twice_is_doubled_zone_suffix() {
    let f = Fixture::new(|_| {}).await;
    let (ownership, _) = f.ownership_value().await;
    f.dns
        .add_txt("_trustmail.a.shopco.test.shopco.test", &[&ownership]);
    let records = f.check_now().await;
    let own = find(&records, "OWNERSHIP");
    assert_eq!(own["reason"], "DOUBLED_ZONE_SUFFIX", "{own}");
    assert!(
        own["message"].as_str().unwrap().contains("_trustmail.a"),
        "{own}"
    );
}

#[tokio::test]
async fn a_stale_value_is_value_mismatch_showing_what_was_observed() {
    let f = Fixture::new(|_| {}).await;
    f.dns
        .add_txt("_trustmail-environment.a.shopco.test", &["an-old-value"]);
    let records = f.check_now().await;
    let env = find(&records, "ENVIRONMENT");
    assert_eq!(env["reason"], "VALUE_MISMATCH");
    assert_eq!(env["observed"], json!(["an-old-value"]));
    assert!(env["message"].as_str().unwrap().contains("an-old-value"));
}

/// The DKIM diagnoses after publishing the first CNAME right, the second to the wrong place
/// and a TXT instead of the third (the keys behind them published).
async fn dkim_diagnoses() -> Vec<Value> {
    let f = Fixture::new(|_| {}).await;
    f.publish_dkim_keys().await;
    let tokens = f.dkim_tokens().await;
    f.dns.add_cname(&tokens[0].0, &tokens[0].1);
    f.dns.add_cname(&tokens[1].0, "elsewhere.shopco.test");
    f.dns.add_txt(&tokens[2].0, &["v=DKIM1; p=abc"]);
    let records = f.check_now().await;
    let dkim: Vec<Value> = records
        .into_iter()
        .filter(|r| r["record"] == "DKIM")
        .collect();
    assert_eq!(dkim.len(), 3);
    dkim
}

#[tokio::test]
async fn a_dkim_cname_to_the_wrong_target_is_value_mismatch_beside_a_right_one() {
    let dkim = dkim_diagnoses().await;
    assert_eq!(dkim[0]["reason"], "OK");
    assert_eq!(dkim[1]["reason"], "VALUE_MISMATCH");
    assert!(
        dkim[1]["message"]
            .as_str()
            .unwrap()
            .starts_with("Expected a CNAME to"),
        "{}",
        dkim[1]
    );
}

/// The DKIM diagnosis of the first selector, its CNAME published right, after `publish_key`
/// changed what its target serves.
async fn first_dkim_diagnosis(publish_key: impl FnOnce(&Fixture, &str)) -> Value {
    let f = Fixture::new(|_| {}).await;
    let tokens = f.dkim_tokens().await;
    f.dns.add_cname(&tokens[0].0, &tokens[0].1);
    publish_key(&f, &tokens[0].1);
    let records = f.check_now().await;
    records.into_iter().find(|r| r["record"] == "DKIM").unwrap()
}

#[tokio::test]
async fn a_dkim_cname_whose_target_has_no_key_record_is_no_record() {
    let dkim = first_dkim_diagnosis(|_, _| {}).await;
    assert_eq!(dkim["reason"], "NO_RECORD", "{dkim}");
    assert_eq!(dkim["status"], "VERIFICATION_REQUIRED");
    assert!(
        dkim["message"]
            .as_str()
            .unwrap()
            .contains("no DKIM key record"),
        "{dkim}"
    );
}

#[tokio::test]
async fn a_dkim_cname_whose_target_publishes_another_key_is_value_mismatch() {
    let dkim = first_dkim_diagnosis(|f, target| {
        f.dns.add_txt(
            target,
            &["v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
        );
    })
    .await;
    assert_eq!(dkim["reason"], "VALUE_MISMATCH", "{dkim}");
    assert!(
        dkim["message"]
            .as_str()
            .unwrap()
            .contains("not the one trustmail holds"),
        "{dkim}"
    );
}

#[tokio::test]
async fn a_dkim_cname_whose_target_publishes_no_dkim_text_is_no_record() {
    let dkim = first_dkim_diagnosis(|f, target| {
        f.dns.add_txt(target, &["just some text"]);
    })
    .await;
    assert_eq!(dkim["reason"], "NO_RECORD", "{dkim}");
}

#[tokio::test]
async fn a_txt_where_a_dkim_cname_belongs_is_cname_conflict() {
    let dkim = dkim_diagnoses().await;
    assert_eq!(dkim[2]["reason"], "CNAME_CONFLICT");
}

#[tokio::test]
async fn two_spf_records_are_multiple_spf() {
    let f = Fixture::new(|_| {}).await;
    f.dns.add_txt(DOMAIN, &["v=spf1 -all"]);
    f.dns
        .add_txt(DOMAIN, &["v=spf1 include:spf.trustmail.example ~all"]);
    let records = f.check_now().await;
    let spf = find(&records, "SPF");
    assert_eq!(spf["reason"], "MULTIPLE_SPF");
    assert_eq!(spf["lookups"]["limit"], 10);
}

#[tokio::test]
async fn a_name_that_exists_without_a_txt_is_no_record() {
    let f = Fixture::new(|_| {}).await;
    f.dns
        .add_mx("_trustmail-environment.a.shopco.test", 10, "mx.shopco.test");
    let records = f.check_now().await;
    assert_eq!(find(&records, "ENVIRONMENT")["reason"], "NO_RECORD");
}

#[tokio::test]
async fn a_cname_to_a_name_without_the_value_is_cname_conflict() {
    let f = Fixture::new(|_| {}).await;
    f.dns
        .add_cname("_trustmail.a.shopco.test", "target.shopco.test");
    f.dns.add_txt("target.shopco.test", &["not-the-token"]);
    let records = f.check_now().await;
    assert_eq!(find(&records, "OWNERSHIP")["reason"], "CNAME_CONFLICT");
}

#[tokio::test]
async fn a_cname_whose_chain_delivers_the_value_is_ok_and_active() {
    let f = Fixture::new(|_| {}).await;
    let (ownership, _) = f.ownership_value().await;
    f.dns
        .add_cname("_trustmail.a.shopco.test", "target.shopco.test");
    f.dns.add_txt("target.shopco.test", &[&ownership]);
    let records = f.check_now().await;
    assert_eq!(find(&records, "OWNERSHIP")["reason"], "OK");
    assert_eq!(find(&records, "OWNERSHIP")["status"], "ACTIVE");
}

#[tokio::test]
async fn spf_without_our_include_is_value_mismatch_with_the_merge_suggested() {
    let f = Fixture::new(|_| {}).await;
    f.dns.add_txt(DOMAIN, &["v=spf1 ip4:192.0.2.1 -all"]);
    let records = f.check_now().await;
    let spf = find(&records, "SPF");
    assert_eq!(spf["reason"], "VALUE_MISMATCH");
    assert_eq!(
        spf["suggested"],
        "v=spf1 ip4:192.0.2.1 include:spf.trustmail.example -all"
    );
    assert_eq!(spf["lookups"]["count"], 1);
}

#[tokio::test]
async fn an_spf_that_does_not_parse_is_spf_invalid() {
    let f = Fixture::new(|_| {}).await;
    f.dns.add_txt(
        DOMAIN,
        &["v=spf1 ip4:not-an-address include:spf.trustmail.example -all"],
    );
    let records = f.check_now().await;
    assert_eq!(find(&records, "SPF")["reason"], "SPF_INVALID");
}

#[tokio::test]
async fn an_spf_needing_more_than_ten_lookups_is_spf_too_many_lookups() {
    let f = Fixture::new(|_| {}).await;
    let many: String = (0..10)
        .map(|i| format!(" include:i{i}.shopco.test"))
        .collect();
    // Over 255 bytes: published as two strings, as a DNS panel must.
    let long = format!("v=spf1{many} include:spf.trustmail.example -all");
    let (first, second) = long.split_at(200);
    f.dns.add_txt(DOMAIN, &[first, second]);
    let records = f.check_now().await;
    let spf = find(&records, "SPF");
    assert_eq!(spf["reason"], "SPF_TOO_MANY_LOOKUPS", "{spf}");
    assert_eq!(spf["lookups"]["count"], 11);
    assert_eq!(spf["lookups"]["overLimit"], true);
}

/// Publishes `value` at `at` as TXT, in strings of at most 255 bytes as a DNS panel must.
fn publish_txt(dns: &TestDns, at: &str, value: &str) {
    let strings: Vec<&str> = value
        .as_bytes()
        .chunks(255)
        .map(|chunk| std::str::from_utf8(chunk).unwrap())
        .collect();
    dns.add_txt(at, &strings);
}

/// Publishes the TXT `records` (name, value), checks the domain, and returns its SPF
/// observation with the names under `suffix` the test DNS was asked for, in order.
async fn check_spf_tree(
    f: &Fixture,
    records: &[(String, String)],
    suffix: &str,
) -> (Value, Vec<String>) {
    for (name, value) in records {
        publish_txt(&f.dns, name, value);
    }
    let observation = find(&f.check_now().await, "SPF").clone();
    let asked = f
        .dns
        .asked()
        .into_iter()
        .map(|asked| asked.name.trim_end_matches('.').to_owned())
        .filter(|name| name.ends_with(suffix))
        .collect();
    (observation, asked)
}

fn txt(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

#[tokio::test]
async fn a_hostile_spf_tree_stops_at_the_limit_after_a_few_queries() {
    let f = Fixture::new(|_| {}).await;
    // 10 includes, each with 10 includes of its own: about 110 lookups in all.
    let includes = |names: Vec<String>| -> String {
        let terms: String = names.iter().map(|n| format!(" include:{n}")).collect();
        format!("v=spf1{terms} -all")
    };
    let top: Vec<String> = (0..10).map(|i| format!("n{i}.tree.test")).collect();
    let mut records: Vec<(String, String)> = top
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let leaves = (0..10).map(|j| format!("n{i}-{j}.tree.test")).collect();
            (name.clone(), includes(leaves))
        })
        .collect();
    let mut record = top.clone();
    record.insert(0, "spf.trustmail.example".into());
    records.push((DOMAIN.into(), includes(record)));

    let (spf, asked) = check_spf_tree(&f, &records, ".tree.test").await;
    assert_eq!(spf["reason"], "SPF_TOO_MANY_LOOKUPS", "{spf}");
    assert_eq!(spf["lookups"]["count"], 11, "{spf}");
    // Depth first, in order, and nothing after the 11th term: n0, then 8 of its includes
    // (spf.trustmail.example and n0 are the first two terms).
    let mut expected = vec!["n0.tree.test".to_owned()];
    expected.extend((0..8).map(|j| format!("n0-{j}.tree.test")));
    assert_eq!(asked, expected);
}

#[tokio::test]
async fn an_spf_tree_within_the_limit_is_counted_exactly_across_levels() {
    let f = Fixture::new(|_| {}).await;
    let records = [
        txt(
            DOMAIN,
            "v=spf1 include:spf.trustmail.example include:l1.tree.test mx -all",
        ),
        txt("l1.tree.test", "v=spf1 a include:l2.tree.test ~all"),
        txt(
            "l2.tree.test",
            "v=spf1 mx exists:%{i}.x.tree.test include:l3.tree.test -all",
        ),
        txt(
            "l3.tree.test",
            "v=spf1 ip4:192.0.2.0/24 redirect=l4.tree.test",
        ),
        txt("l4.tree.test", "v=spf1 a -all"),
    ];
    let (spf, asked) = check_spf_tree(&f, &records, ".tree.test").await;
    // 3 at the top, 2 in l1, 3 in l2, 1 in l3, 1 in l4.
    assert_eq!(spf["lookups"]["count"], 10, "{spf}");
    assert_eq!(spf["reason"], "OK", "{spf}");
    assert_eq!(
        asked,
        [
            "l1.tree.test",
            "l2.tree.test",
            "l3.tree.test",
            "l4.tree.test"
        ]
    );
}

#[tokio::test]
async fn an_spf_include_loop_is_counted_once_round_and_ends() {
    let f = Fixture::new(|_| {}).await;
    let records = [
        txt(
            DOMAIN,
            "v=spf1 include:spf.trustmail.example include:a.loop.test -all",
        ),
        txt("a.loop.test", "v=spf1 include:b.loop.test -all"),
        txt("b.loop.test", "v=spf1 include:a.loop.test -all"),
    ];
    let (spf, asked) = check_spf_tree(&f, &records, ".loop.test").await;
    // Our include, a, b, and a again (counted, not followed).
    assert_eq!(spf["lookups"]["count"], 4, "{spf}");
    assert_eq!(spf["reason"], "OK", "{spf}");
    assert_eq!(asked, ["a.loop.test", "b.loop.test"]);
}

#[tokio::test]
async fn a_dns_error_is_reported_and_changes_no_status() {
    let f = Fixture::new(|_| {}).await;
    f.publish_ownership().await;
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    f.dns.stop().await;
    // Nothing visible changes and nothing is a 5xx.
    let records = f.check_now().await;
    let own = find(&records, "OWNERSHIP");
    assert_eq!(own["reason"], "DNS_ERROR");
    assert_eq!(own["status"], "ACTIVE");
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    assert_eq!(
        f.get("dkim").await["regions"][0]["status"],
        "VERIFICATION_REQUIRED"
    );
}

/// How the resolver fails.
#[derive(Clone, Copy, Debug)]
enum DnsFault {
    /// Not running: queries go unanswered.
    Down,
    /// Answers every query SERVFAIL.
    Servfail,
}

/// Every `status` in a status read's body, wherever it sits (regions, tokens, records).
fn statuses(value: &Value) -> Vec<String> {
    match value {
        Value::Object(map) => map
            .iter()
            .flat_map(|(key, v)| match (key.as_str(), v) {
                ("status", Value::String(s)) => vec![s.clone()],
                _ => statuses(v),
            })
            .collect(),
        Value::Array(items) => items.iter().flat_map(statuses).collect(),
        _ => vec![],
    }
}

/// With every record of a domain (MAIL FROM included) ACTIVE, the resolver fails: every status
/// read still answers 200 with every record ACTIVE, and a forced check says `DNS_ERROR`.
async fn active_records_survive(fault: DnsFault) {
    let (f, _) = with_mail_from().await;
    f.app.publish_domain(&f.dns, f.env(), f.domain_id()).await;
    let reads = ["ownership", "dkim", "spf", "mailFromDomain"];
    for leaf in reads {
        let body = f.get(leaf).await;
        assert!(!statuses(&body).is_empty(), "{leaf}: {body}");
        assert!(
            statuses(&body).iter().all(|s| s == "ACTIVE"),
            "{leaf}: {body}"
        );
    }
    match fault {
        DnsFault::Down => f.dns.stop().await,
        DnsFault::Servfail => f.dns.servfail(true),
    }
    for leaf in reads {
        // `get` asserts the 200.
        let body = f.get(leaf).await;
        assert!(
            statuses(&body).iter().all(|s| s == "ACTIVE"),
            "{fault:?} {leaf}: {body}"
        );
    }
    let records = f.check_now().await;
    assert!(!records.is_empty());
    for record in &records {
        assert_eq!(record["status"], "ACTIVE", "{fault:?}: {record}");
        assert_eq!(record["reason"], "DNS_ERROR", "{fault:?}: {record}");
    }
    for record in f.diagnosis().await {
        assert_eq!(record["reason"], "DNS_ERROR", "{fault:?}: {record}");
    }
}

#[tokio::test]
async fn a_resolver_that_is_down_changes_no_status_on_any_read() {
    active_records_survive(DnsFault::Down).await;
}

#[tokio::test]
async fn a_resolver_answering_servfail_changes_no_status_on_any_read() {
    active_records_survive(DnsFault::Servfail).await;
}

#[tokio::test]
async fn a_record_removed_after_active_stays_active_for_the_grace_period() {
    let f = Fixture::new(|_| {}).await;
    f.publish_ownership().await;
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    f.dns.remove("_trustmail.a.shopco.test", RecordType::TXT);
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    let own = find(&f.diagnosis().await, "OWNERSHIP").clone();
    assert_eq!(own["reason"], "MISSING_AFTER_ACTIVE");
    assert!(own["message"].as_str().unwrap().contains("grace"), "{own}");
}

#[tokio::test]
async fn a_record_removed_after_active_lapses_when_the_grace_is_over() {
    let f = Fixture::new(|c| c.dns.active_grace_s = 0).await;
    f.publish_ownership().await;
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    f.dns.remove("_trustmail.a.shopco.test", RecordType::TXT);
    assert_eq!(
        f.get("ownership").await["regions"][0]["status"],
        "VERIFICATION_REQUIRED"
    );
    assert_eq!(
        find(&f.diagnosis().await, "OWNERSHIP")["reason"],
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn forced_checks_are_limited_to_one_per_five_seconds() {
    let f = Fixture::new(|_| {}).await;
    let path = format!("{}/verification", f.base);
    let first = f.app.post(&path, &f.app.admin_token, Value::Null).await;
    assert_eq!(first.status(), StatusCode::OK);
    let second = f.app.post(&path, &f.app.admin_token, Value::Null).await;
    let retry = retry_after(&second);
    assert!((1..=5).contains(&retry), "{retry}");
    assert_p1_error(
        second,
        StatusCode::TOO_MANY_REQUESTS,
        "REQUEST_LIMITED",
        None,
    )
    .await;
}

#[tokio::test]
async fn the_background_job_rechecks_on_schedule_as_no_client() {
    let f = Fixture::new(|c| {
        c.dns.initial_recheck_interval_s = 1;
        // Status reads must not be what finds the record.
        c.dns.min_recheck_interval_s = 3600;
    })
    .await;
    f.publish_ownership().await;
    for _ in 0..100 {
        if find(&f.diagnosis().await, "OWNERSHIP")["status"] == "ACTIVE" {
            let updates = f.activities("EMAIL_DOMAIN_STATUS_UPDATED").await;
            let update = updates.first().unwrap();
            assert!(
                update["actors"].get("client").is_none(),
                "a scheduled check has no client: {update}"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the background job never saw the record");
}

async fn zone_file(f: &Fixture) -> String {
    let r = f
        .app
        .get(&format!("{}/zoneFile", f.base), &f.app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn the_zone_file_lists_every_record() {
    let f = Fixture::new(|_| {}).await;
    let zone = zone_file(&f).await;
    insta::assert_snapshot!(f.names().await.apply(&zone));
}

/// `PUT …/mailFromDomain` with `body`.
async fn put_mail_from(f: &Fixture, body: Value) -> reqwest::Response {
    f.app
        .request(
            reqwest::Method::PUT,
            &format!("{}/mailFromDomain", f.base),
            Some(&f.app.admin_token),
            Some(body),
        )
        .await
}

fn mail_from(domain: &str) -> Value {
    json!({"mailFrom": {"domain": domain}})
}

#[tokio::test]
async fn mail_from_is_not_found_until_set() {
    let f = Fixture::new(|_| {}).await;
    let r = f
        .app
        .get(&format!("{}/mailFromDomain", f.base), &f.app.admin_token)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn a_mail_from_without_a_domain_is_400_required_value() {
    let f = Fixture::new(|_| {}).await;
    let r = put_mail_from(&f, json!({})).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("REQUIRED_VALUE", "mailFrom.domain")),
    )
    .await;
}

#[tokio::test]
async fn a_mail_from_that_is_not_a_subdomain_is_400_invalid_value() {
    let f = Fixture::new(|_| {}).await;
    for outside in [DOMAIN, "bounce.other.test", "xa.shopco.test"] {
        let r = put_mail_from(&f, mail_from(outside)).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some(("INVALID_VALUE", "mailFrom.domain")),
        )
        .await;
    }
}

#[tokio::test]
async fn a_mail_from_before_ownership_is_verified_is_400_not_verified() {
    let f = Fixture::new(|_| {}).await;
    let r = put_mail_from(&f, mail_from("bounce.a.shopco.test")).await;
    let body = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "mailFrom.domain")),
    )
    .await;
    assert!(
        body["details"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not verified")
    );
}

/// A verified domain with `Bounce.A.ShopCo.Test` set as its MAIL FROM: (fixture, the PUT's body).
async fn with_mail_from() -> (Fixture, Value) {
    let f = Fixture::new(|_| {}).await;
    f.publish_ownership().await;
    let r = put_mail_from(&f, mail_from("Bounce.A.ShopCo.Test")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.json().await.unwrap();
    (f, body)
}

#[tokio::test]
async fn setting_mail_from_answers_the_mx_record_to_publish() {
    let (f, body) = with_mail_from().await;
    let names = f.names().await;
    insta::assert_json_snapshot!(body, { ".**" => names.redaction() });
}

#[tokio::test]
async fn a_mail_from_domain_takes_over_spf() {
    let (f, _) = with_mail_from().await;
    let spf = f.get("spf").await;
    assert_eq!(spf["key"], "bounce.a.shopco.test");
    assert_eq!(spf["status"], "VERIFICATION_REQUIRED");
}

#[tokio::test]
async fn a_published_mail_from_mx_and_spf_read_active() {
    let (f, _) = with_mail_from().await;
    f.dns.add_mx(
        "bounce.a.shopco.test",
        10,
        "Feedback.US-East-1.trustmail.example.",
    );
    f.dns.add_txt(
        "bounce.a.shopco.test",
        &["v=spf1 include:spf.trustmail.example ~all"],
    );
    assert_eq!(f.get("mailFromDomain").await["status"], "ACTIVE");
    assert_eq!(f.get("spf").await["status"], "ACTIVE");
}

#[tokio::test]
async fn the_zone_file_lists_the_mail_from_mx_and_moves_spf() {
    let (f, _) = with_mail_from().await;
    let zone = zone_file(&f).await;
    insta::assert_snapshot!(f.names().await.apply(&zone));
}

#[tokio::test]
async fn deleting_mail_from_answers_204_and_moves_spf_back_to_the_domain() {
    let (f, _) = with_mail_from().await;
    let path = format!("{}/mailFromDomain", f.base);
    let r = f.app.delete(&path, &f.app.admin_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        f.app.get(&path, &f.app.admin_token).await.status(),
        StatusCode::NOT_FOUND
    );
    let spf = f.get("spf").await;
    assert_eq!(spf["key"], "@");
    assert_eq!(spf["status"], "VERIFICATION_REQUIRED");
}

#[tokio::test]
async fn a_truncated_udp_answer_is_read_again_over_tcp() {
    let f = Fixture::new(|_| {}).await;
    let (ownership, _) = f.ownership_value().await;
    // Unrelated TXT records large enough that the answer cannot fit a UDP datagram.
    let filler = "x".repeat(250);
    for i in 0..12 {
        f.dns
            .add_txt("_trustmail.a.shopco.test", &[&format!("{i}{filler}")]);
    }
    f.dns.add_txt("_trustmail.a.shopco.test", &[&ownership]);
    let records = f.check_now().await;
    let own = find(&records, "OWNERSHIP");
    assert_eq!(own["reason"], "OK", "{own}");
    assert_eq!(own["observed"].as_array().unwrap().len(), 13);
}
