//! `POST …/selfCheck`: a test message signed with the live key, judged as a receiver would.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, TestDns, redact};

const DOMAIN: &str = "a.shopco.test";
const EGRESS: &str = "192.0.2.10";

struct Fixture {
    app: TestApp,
    dns: Arc<TestDns>,
    env: String,
    id: String,
}

impl Fixture {
    /// A domain with every record published (the DKIM keys with them), the SPF include
    /// authorising `EGRESS`, and the region sending from `egress`.
    async fn new(egress: &[&str]) -> Self {
        let dns = TestDns::start().await;
        let egress: Vec<String> = egress.iter().map(|ip| ip.to_string()).collect();
        let app = TestApp::with_dns(&dns, move |c| c.regions[0].egress_ips = egress).await;
        let env = app.environment("Shop").await;
        let id = app.domain(&env, DOMAIN).await;
        app.publish_domain(&dns, &env, &id).await;
        dns.add_txt(
            "spf.trustmail.example",
            &[&format!("v=spf1 ip4:{EGRESS} -all")],
        );
        Self { app, dns, env, id }
    }

    async fn self_check(&self) -> Value {
        let response = self
            .app
            .post(
                &format!(
                    "/v1/environments/{}/emailDomains/{}/selfCheck",
                    self.env, self.id
                ),
                &self.app.admin_token,
                Value::Null,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn sender(&self, address: &str) {
        let response = self
            .app
            .post(
                &format!(
                    "/v1/environments/{}/emailDomains/{}/trustedEmails",
                    self.env, self.id
                ),
                &self.app.admin_token,
                json!({ "emailAddress": address }),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

fn message(check: &Value) -> &str {
    check["message"].as_str().unwrap()
}

#[tokio::test]
async fn a_fully_published_domain_passes_dkim_spf_and_dmarc() {
    let f = Fixture::new(&[EGRESS]).await;
    f.dns
        .add_txt("_dmarc.a.shopco.test", &["v=DMARC1; p=reject"]);
    f.sender("noreply@a.shopco.test").await;
    let report = f.self_check().await;
    let region = &report["regions"][0];
    let results = region["authenticationResults"].as_str().unwrap();
    for expected in [
        "dkim=pass",
        "spf=pass",
        "dmarc=pass",
        "header.from=a.shopco.test",
    ] {
        assert!(results.contains(expected), "{expected} in {results}");
    }
    let names = f
        .app
        .names()
        .with(&f.env, "[env]")
        .with(&f.id, "[domain]")
        .with(region["selector"].as_str().unwrap(), "[selector]");
    insta::assert_json_snapshot!(report, {
        ".checkedAt" => redact::time(),
        ".regions[].authenticationResults" => "[header]",
        ".**" => names.redaction(),
    });
}

#[tokio::test]
async fn without_the_key_record_dkim_fails_and_says_to_delegate_the_zone() {
    let f = Fixture::new(&[EGRESS]).await;
    let domain = f.app.email_domain(&f.env, &f.id).await;
    for key in f.app.service.dkim_keys(&domain).await.unwrap() {
        f.dns.remove(
            &key.fqdn("useast1.dkim.trustmail.example"),
            hickory_proto::rr::RecordType::TXT,
        );
    }
    let region = &f.self_check().await["regions"][0];
    assert_eq!(region["dkim"]["result"], "fail", "{region}");
    assert!(message(&region["dkim"]).contains("delegate useast1.dkim.trustmail.example"));
    assert_eq!(region["dmarc"]["dkimAligned"], false);
}

#[tokio::test]
async fn an_egress_address_spf_does_not_authorize_fails_spf_and_says_what_to_add() {
    let f = Fixture::new(&["198.51.100.7"]).await;
    f.dns
        .add_txt("_dmarc.a.shopco.test", &["v=DMARC1; p=quarantine"]);
    let region = &f.self_check().await["regions"][0];
    assert_eq!(region["spf"][0]["ip"], "198.51.100.7");
    // The domain's record ends in ~all: a soft fail.
    assert_eq!(region["spf"][0]["result"], "softfail", "{region}");
    assert!(message(&region["spf"][0]).contains("include:spf.trustmail.example"));
    // DKIM alone still carries DMARC.
    assert_eq!(region["dmarc"]["result"], "pass");
    assert_eq!(region["dmarc"]["spfAligned"], false);
    assert_eq!(region["dmarc"]["policy"], "quarantine");
}

#[tokio::test]
async fn without_a_dmarc_record_the_check_says_to_publish_one() {
    let f = Fixture::new(&[EGRESS]).await;
    let dmarc = &f.self_check().await["regions"][0]["dmarc"];
    assert_eq!(dmarc["policy"], "none");
    assert!(
        message(dmarc).contains("publishes no DMARC record"),
        "{dmarc}"
    );
}

#[tokio::test]
async fn a_region_without_egress_addresses_says_spf_was_not_evaluated() {
    let f = Fixture::new(&[]).await;
    let region = &f.self_check().await["regions"][0];
    assert_eq!(region["spf"], json!([]));
    assert!(
        region["spfNote"]
            .as_str()
            .unwrap()
            .contains("SPF was not evaluated")
    );
}

#[tokio::test]
async fn a_sender_that_is_not_active_is_told_it_cannot_send() {
    let f = Fixture::new(&[EGRESS]).await;
    // Without the environment record (never seen ACTIVE) a new sender waits for its code.
    f.dns.remove(
        "_trustmail-environment.a.shopco.test",
        hickory_proto::rr::RecordType::TXT,
    );
    f.sender("noreply@a.shopco.test").await;
    let sender = &f.self_check().await["trustedEmails"][0];
    assert_eq!(sender["status"], "VERIFICATION_REQUIRED");
    assert!(
        sender["messages"][0]
            .as_str()
            .unwrap()
            .contains("cannot send until its code is entered"),
        "{sender}"
    );
}
