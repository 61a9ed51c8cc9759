//! DNS verification against an in-process authoritative server: statuses, reasons, schedule.

use std::time::Duration;

use hickory_proto::rr::RecordType;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::{TestApp, TestDns, assert_p1_error};

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
        let r = self
            .app
            .get(&format!("{}/{leaf}", self.base), &self.app.admin_token)
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{leaf}");
        r.json().await.unwrap()
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

fn find<'a>(records: &'a [Value], record: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["record"] == record)
        .unwrap_or_else(|| panic!("no {record}"))
}

#[tokio::test]
async fn publish_then_read_answers_active() {
    let f = Fixture::new(|_| {}).await;
    let own = f.get("ownership").await;
    assert_eq!(own["regions"][0]["status"], "VERIFICATION_REQUIRED");
    let (ownership, environment) = f.ownership_value().await;
    // Split strings, mixed case and a trailing dot in the name, an unrelated TXT beside it.
    let (head, tail) = ownership.split_at(10);
    f.dns.add_txt("_Trustmail.A.ShopCo.Test.", &[head, tail]);
    f.dns.add_txt(
        "_trustmail.a.shopco.test",
        &["google-site-verification=xyz"],
    );
    f.dns
        .add_txt("_trustmail-environment.a.shopco.test", &[&environment]);
    let own = f.get("ownership").await;
    assert_eq!(own["regions"][0]["status"], "ACTIVE", "{own}");
    assert_eq!(own["environmentDnsRecord"]["status"], "ACTIVE", "{own}");

    for (key, value) in f.dkim_tokens().await {
        f.dns.add_cname(&key, &format!("{}.", value.to_uppercase()));
    }
    assert_eq!(f.get("dkim").await["regions"][0]["status"], "ACTIVE");
    f.dns.add_txt(
        DOMAIN,
        &["v=spf1 ip4:192.0.2.1 include:SPF.trustmail.example -all"],
    );
    assert_eq!(f.get("spf").await["status"], "ACTIVE");

    // Each visible change is an activity naming the record, region and status.
    let env = f.base.split('/').nth(3).unwrap().to_owned();
    let list: Value = f
        .app
        .get(
            &format!("/v1/environments/{env}/activities"),
            &f.app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let updates: Vec<&Value> = list["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"]["type"] == "EMAIL_DOMAIN_STATUS_UPDATED")
        .collect();
    let mut seen: Vec<String> = updates
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
async fn every_reason_code_is_explained() {
    let f = Fixture::new(|_| {}).await;
    let records = f.diagnosis().await;
    assert!(
        records
            .iter()
            .all(|r| r["reason"] == "NOT_CHECKED" && r["lastCheckedAt"].is_null())
    );
    let records = f.check_now().await;
    let own = find(&records, "OWNERSHIP");
    assert_eq!(own["reason"], "NOT_FOUND");
    assert_eq!(own["name"], "_trustmail.a.shopco.test");
    assert_eq!(own["type"], "TXT");
    assert!(
        own["message"]
            .as_str()
            .unwrap()
            .contains("_trustmail.a.shopco.test")
    );
    assert!(own["lastCheckedAt"].is_string() && own["nextCheckAt"].is_string());

    let (ownership, _) = f.ownership_value().await;
    let tokens = f.dkim_tokens().await;
    // DOUBLED_ZONE_SUFFIX: the panel appended the zone again.
    f.dns
        .add_txt("_trustmail.a.shopco.test.shopco.test", &[&ownership]);
    // VALUE_MISMATCH: a stale environment value.
    f.dns
        .add_txt("_trustmail-environment.a.shopco.test", &["an-old-value"]);
    // DKIM: one right, one to the wrong place, one a TXT instead of a CNAME.
    f.dns.add_cname(&tokens[0].0, &tokens[0].1);
    f.dns.add_cname(&tokens[1].0, "elsewhere.shopco.test");
    f.dns.add_txt(&tokens[2].0, &["v=DKIM1; p=abc"]);
    // MULTIPLE_SPF.
    f.dns.add_txt(DOMAIN, &["v=spf1 -all"]);
    f.dns
        .add_txt(DOMAIN, &["v=spf1 include:spf.trustmail.example ~all"]);
    let records = f.check_now().await;
    let own = find(&records, "OWNERSHIP");
    assert_eq!(own["reason"], "DOUBLED_ZONE_SUFFIX", "{own}");
    assert!(
        own["message"].as_str().unwrap().contains("_trustmail.a"),
        "{own}"
    );
    let env = find(&records, "ENVIRONMENT");
    assert_eq!(env["reason"], "VALUE_MISMATCH");
    assert_eq!(env["observed"], serde_json::json!(["an-old-value"]));
    assert!(env["message"].as_str().unwrap().contains("an-old-value"));
    let dkim: Vec<&Value> = records.iter().filter(|r| r["record"] == "DKIM").collect();
    assert_eq!(dkim.len(), 3);
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
    assert_eq!(dkim[2]["reason"], "CNAME_CONFLICT");
    let spf = find(&records, "SPF");
    assert_eq!(spf["reason"], "MULTIPLE_SPF");
    assert_eq!(spf["lookups"]["limit"], 10);

    // NO_RECORD: the name exists, but holds no TXT; CNAME_CONFLICT: a CNAME leading nowhere useful.
    f.dns
        .remove("_trustmail-environment.a.shopco.test", RecordType::TXT);
    f.dns
        .add_mx("_trustmail-environment.a.shopco.test", 10, "mx.shopco.test");
    f.dns
        .remove("_trustmail.a.shopco.test.shopco.test", RecordType::TXT);
    f.dns
        .add_cname("_trustmail.a.shopco.test", "target.shopco.test");
    f.dns.add_txt("target.shopco.test", &["not-the-token"]);
    // SPF without our include: VALUE_MISMATCH, with the merge suggested.
    f.dns.remove(DOMAIN, RecordType::TXT);
    f.dns.add_txt(DOMAIN, &["v=spf1 ip4:192.0.2.1 -all"]);
    let records = f.check_now().await;
    assert_eq!(find(&records, "ENVIRONMENT")["reason"], "NO_RECORD");
    assert_eq!(find(&records, "OWNERSHIP")["reason"], "CNAME_CONFLICT");
    let spf = find(&records, "SPF");
    assert_eq!(spf["reason"], "VALUE_MISMATCH");
    assert_eq!(
        spf["suggested"],
        "v=spf1 ip4:192.0.2.1 include:spf.trustmail.example -all"
    );
    assert_eq!(spf["lookups"]["count"], 1);

    // A CNAME whose chain delivers the value is fine.
    f.dns.remove("target.shopco.test", RecordType::TXT);
    f.dns.add_txt("target.shopco.test", &[&ownership]);
    // SPF_INVALID, then SPF_TOO_MANY_LOOKUPS.
    f.dns.remove(DOMAIN, RecordType::TXT);
    f.dns.add_txt(
        DOMAIN,
        &["v=spf1 ip4:not-an-address include:spf.trustmail.example -all"],
    );
    let records = f.check_now().await;
    assert_eq!(find(&records, "OWNERSHIP")["reason"], "OK");
    assert_eq!(find(&records, "OWNERSHIP")["status"], "ACTIVE");
    assert_eq!(find(&records, "SPF")["reason"], "SPF_INVALID");
    f.dns.remove(DOMAIN, RecordType::TXT);
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

    // DNS_ERROR: the server stops. Nothing visible changes and nothing is a 5xx.
    f.dns.stop().await;
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

#[tokio::test]
async fn a_record_removed_after_active_has_grace_then_lapses() {
    let f = Fixture::new(|_| {}).await;
    let (ownership, _) = f.ownership_value().await;
    f.dns.add_txt("_trustmail.a.shopco.test", &[&ownership]);
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    f.dns.remove("_trustmail.a.shopco.test", RecordType::TXT);
    assert_eq!(f.get("ownership").await["regions"][0]["status"], "ACTIVE");
    let own = find(&f.diagnosis().await, "OWNERSHIP").clone();
    assert_eq!(own["reason"], "MISSING_AFTER_ACTIVE");
    assert!(own["message"].as_str().unwrap().contains("grace"), "{own}");

    let g = Fixture::new(|c| c.dns.active_grace_s = 0).await;
    let (ownership, _) = g.ownership_value().await;
    g.dns.add_txt("_trustmail.a.shopco.test", &[&ownership]);
    assert_eq!(g.get("ownership").await["regions"][0]["status"], "ACTIVE");
    g.dns.remove("_trustmail.a.shopco.test", RecordType::TXT);
    assert_eq!(
        g.get("ownership").await["regions"][0]["status"],
        "VERIFICATION_REQUIRED"
    );
    assert_eq!(
        find(&g.diagnosis().await, "OWNERSHIP")["reason"],
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
    let retry: u64 = second.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
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
async fn the_background_job_rechecks_on_schedule() {
    let f = Fixture::new(|c| {
        c.dns.initial_recheck_interval_s = 1;
        // Status reads must not be what finds the record.
        c.dns.min_recheck_interval_s = 3600;
    })
    .await;
    let (ownership, _) = f.ownership_value().await;
    f.dns.add_txt("_trustmail.a.shopco.test", &[&ownership]);
    for _ in 0..100 {
        if find(&f.diagnosis().await, "OWNERSHIP")["status"] == "ACTIVE" {
            let env = f.base.split('/').nth(3).unwrap().to_owned();
            let list: Value = f
                .app
                .get(
                    &format!("/v1/environments/{env}/activities"),
                    &f.app.admin_token,
                )
                .await
                .json()
                .await
                .unwrap();
            let update = list["_embedded"]["activities"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["action"]["type"] == "EMAIL_DOMAIN_STATUS_UPDATED")
                .unwrap()
                .clone();
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

#[tokio::test]
async fn the_zone_file_lists_every_record() {
    let f = Fixture::new(|_| {}).await;
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
    let zone = r.text().await.unwrap();
    let (ownership, environment) = f.ownership_value().await;
    assert!(
        zone.contains(&format!(
            "_trustmail.a.shopco.test. 3600 IN TXT \"{ownership}\""
        )),
        "{zone}"
    );
    assert!(zone.contains(&format!(
        "_trustmail-environment.a.shopco.test. 3600 IN TXT \"{environment}\""
    )));
    for (key, value) in f.dkim_tokens().await {
        assert!(
            zone.contains(&format!("{key}. 3600 IN CNAME {value}.")),
            "{zone}"
        );
    }
    assert!(
        zone.contains("a.shopco.test. 3600 IN TXT \"v=spf1 include:spf.trustmail.example ~all\"")
    );
}

#[tokio::test]
async fn mail_from_needs_a_verified_domain_and_moves_spf() {
    let f = Fixture::new(|_| {}).await;
    let path = format!("{}/mailFromDomain", f.base);
    let token = &f.app.admin_token;
    let put = |domain: &str| serde_json::json!({"mailFrom": {"domain": domain}});
    let r = f.app.get(&path, token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    let r = f
        .app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(token),
            Some(serde_json::json!({})),
        )
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("REQUIRED_VALUE", "mailFrom.domain")),
    )
    .await;
    for outside in [DOMAIN, "bounce.other.test", "xa.shopco.test"] {
        let r = f
            .app
            .request(reqwest::Method::PUT, &path, Some(token), Some(put(outside)))
            .await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some(("INVALID_VALUE", "mailFrom.domain")),
        )
        .await;
    }
    // Not verified yet.
    let r = f
        .app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(token),
            Some(put("bounce.a.shopco.test")),
        )
        .await;
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

    let (ownership, _) = f.ownership_value().await;
    f.dns.add_txt("_trustmail.a.shopco.test", &[&ownership]);
    let r = f
        .app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(token),
            Some(put("Bounce.A.ShopCo.Test")),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let mail_from: Value = r.json().await.unwrap();
    assert_eq!(mail_from["mailFrom"]["domain"], "bounce.a.shopco.test");
    assert_eq!(mail_from["type"], "MX");
    assert_eq!(mail_from["key"], "bounce.a.shopco.test");
    assert_eq!(mail_from["value"], "feedback.us-east-1.trustmail.example");
    assert_eq!(mail_from["priority"], 10);
    assert_eq!(mail_from["status"], "VERIFICATION_REQUIRED");
    let spf = f.get("spf").await;
    assert_eq!(spf["key"], "bounce.a.shopco.test");
    assert_eq!(spf["status"], "VERIFICATION_REQUIRED");

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
    let zone = f
        .app
        .get(&format!("{}/zoneFile", f.base), token)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        zone.contains("bounce.a.shopco.test. 3600 IN MX 10 feedback.us-east-1.trustmail.example."),
        "{zone}"
    );

    let r = f.app.delete(&path, token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        f.app.get(&path, token).await.status(),
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
