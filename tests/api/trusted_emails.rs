//! Trusted sender addresses: contract §1.9–1.12, with codes read from an in-process SMTP sink.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{SmtpSink, TestApp, TestDns, UNKNOWN_ID, assert_p1_error};

const ACTIVATE: &str = "application/vnd.pingidentity.trustedEmail.activate+json";
const SEND_CODE: &str = "application/vnd.pingidentity.trustedEmail.sendVerificationCode+json";

struct Senders {
    app: TestApp,
    dns: std::sync::Arc<TestDns>,
    sink: SmtpSink,
    domain: String,
    env: String,
}

impl Senders {
    /// A domain whose ownership TXT is published (verified), environment record not.
    async fn new(tweak: impl FnOnce(&mut trustmail::config::Config)) -> Self {
        let dns = TestDns::start().await;
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let app = TestApp::with_dns(&dns, move |c| {
            c.mail.smtp_url = url.into();
            tweak(c);
        })
        .await;
        let env = app.environment("Shop").await;
        let id = app.domain(&env, "a.shopco.test").await;
        let domain = format!("/v1/environments/{env}/emailDomains/{id}");
        let own: Value = app
            .get(&format!("{domain}/ownership"), &app.admin_token)
            .await
            .json()
            .await
            .unwrap();
        dns.add_txt(
            "_trustmail.a.shopco.test",
            &[own["regions"][0]["value"].as_str().unwrap()],
        );
        Self {
            app,
            dns,
            sink,
            domain,
            env,
        }
    }

    async fn create(&self, address: &str) -> reqwest::Response {
        self.app
            .post(
                &format!("{}/trustedEmails", self.domain),
                &self.app.admin_token,
                json!({"emailAddress": address}),
            )
            .await
    }

    async fn act(&self, id: &str, content_type: &str, body: &str) -> reqwest::Response {
        self.app
            .http
            .post(format!(
                "{}{}/trustedEmails/{id}",
                self.app.url, self.domain
            ))
            .bearer_auth(&self.app.admin_token)
            .header(header::CONTENT_TYPE, content_type)
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
    }

    async fn next_code(&mut self) -> String {
        let mail = self.sink.next_mail(Duration::from_secs(10)).await;
        let line = mail
            .data
            .lines()
            .find(|l| l.starts_with("Verification code: "))
            .expect("a code line");
        line.trim_start_matches("Verification code: ")
            .trim()
            .to_owned()
    }
}

#[tokio::test]
async fn the_full_sender_flow_with_an_emailed_code() {
    let mut s = Senders::new(|_| {}).await;
    let r = s.create("NoReply@A.ShopCo.Test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["emailAddress"], "NoReply@a.shopco.test");
    assert_eq!(created["status"], "VERIFICATION_REQUIRED");
    let id = created["id"].as_str().unwrap().to_owned();
    let domain_id = s.domain.rsplit('/').next().unwrap();
    assert_eq!(created["domain"]["id"], domain_id);
    assert_eq!(created["domainId"], domain_id);
    assert_eq!(created["environment"]["id"], s.env.as_str());
    assert!(
        created["_links"]["emailDomain"]["href"]
            .as_str()
            .unwrap()
            .ends_with(domain_id)
    );

    let mail = s.sink.next_mail(Duration::from_secs(10)).await;
    assert_eq!(mail.to, ["NoReply@a.shopco.test"]);
    assert!(
        mail.data
            .contains("Subject: Your trustmail verification code")
    );
    let code = mail
        .data
        .lines()
        .find(|l| l.starts_with("Verification code: "))
        .unwrap()
        .trim_start_matches("Verification code: ")
        .trim()
        .to_owned();
    assert_eq!(code.len(), 8);
    // Only its hash is stored.
    let db = std::fs::read(s.app.dir.path().join("trustmail.db")).unwrap();
    let wal = std::fs::read(s.app.dir.path().join("trustmail.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(8).any(|w| w == code.as_bytes()),
            "the code is stored in clear"
        );
    }

    // The same address again: 200, unchanged, no new mail.
    let again = s.create("noreply@a.shopco.test").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());

    let r = s
        .act(&id, ACTIVATE, r#"{"verificationCode":"zzzzzzzz"}"#)
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "verificationCode")),
    )
    .await;
    let r = s
        .act(
            &id,
            ACTIVATE,
            &format!(r#"{{"verificationCode":"{code}"}}"#),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ACTIVE");
    assert!(
        s.sink.try_next_mail().is_none(),
        "no mail for the repeated create"
    );

    let list: Value = s
        .app
        .get(&format!("{}/trustedEmails", s.domain), &s.app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 1);
    assert_eq!(list["_embedded"]["trustedEmails"][0]["status"], "ACTIVE");
    let one = s
        .app
        .get(
            &format!("{}/trustedEmails/{id}", s.domain),
            &s.app.admin_token,
        )
        .await;
    assert_eq!(one.status(), StatusCode::OK);

    // Activities in order.
    let acts: Value = s
        .app
        .get(
            &format!("/v1/environments/{}/activities", s.env),
            &s.app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = acts["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["resources"][0]["type"] == "TRUSTED_EMAIL")
        .map(|a| a["action"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "TRUSTED_EMAIL_ACTIVE",
            "TRUSTED_EMAIL_SEND_CODE",
            "TRUSTED_EMAIL_CREATED"
        ]
    );

    let r = s
        .app
        .delete(
            &format!("{}/trustedEmails/{id}", s.domain),
            &s.app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s
        .app
        .get(
            &format!("{}/trustedEmails/{id}", s.domain),
            &s.app.admin_token,
        )
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    // After a delete, create is a 201 again.
    assert_eq!(
        s.create("noreply@a.shopco.test").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn five_wrong_codes_lock_until_a_resend() {
    let mut s = Senders::new(|_| {}).await;
    let created: Value = s.create("a@a.shopco.test").await.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let code = s.next_code().await;
    for _ in 0..5 {
        let r = s
            .act(&id, ACTIVATE, r#"{"verificationCode":"00000000"}"#)
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // Even the right code is refused now.
    let r = s
        .act(
            &id,
            ACTIVATE,
            &format!(r#"{{"verificationCode":"{code}"}}"#),
        )
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "verificationCode")),
    )
    .await;
    // A resend within a minute is refused.
    let r = s.act(&id, SEND_CODE, "").await;
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    assert_p1_error(r, StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMITED", None).await;
}

#[tokio::test]
async fn a_resend_sends_a_new_code_that_works() {
    let mut s = Senders::new(|_| {}).await;
    let created: Value = s.create("b@a.shopco.test").await.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let first = s.next_code().await;
    // Age the first code past the resend interval.
    let store_url = format!(
        "sqlite://{}",
        s.app.dir.path().join("trustmail.db").display()
    );
    let pool = sqlx::AnyPool::connect(&store_url).await.unwrap();
    sqlx::query("UPDATE trusted_emails SET code_sent_at = code_sent_at - 61000")
        .execute(&pool)
        .await
        .unwrap();
    let r = s.act(&id, SEND_CODE, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "VERIFICATION_REQUIRED"
    );
    let second = s.next_code().await;
    let r = s
        .act(
            &id,
            ACTIVATE,
            &format!(r#"{{"verificationCode":"{first}"}}"#),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the old code stopped working"
    );
    let r = s
        .act(
            &id,
            ACTIVATE,
            &format!(r#"{{"verificationCode":"{}"}}"#, second.to_uppercase()),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // Any other content type is a bad request.
    let r = s.act(&id, "application/json", "{}").await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
}

#[tokio::test]
async fn the_environment_record_makes_senders_active_at_once() {
    let mut s = Senders::new(|_| {}).await;
    let own: Value = s
        .app
        .get(&format!("{}/ownership", s.domain), &s.app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    s.dns.add_txt(
        "_trustmail-environment.a.shopco.test",
        &[own["environmentDnsRecord"]["value"].as_str().unwrap()],
    );
    let r = s.create("instant@a.shopco.test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ACTIVE");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        s.sink.try_next_mail().is_none(),
        "no code for an address ACTIVE at once"
    );
}

#[tokio::test]
async fn senders_need_a_verified_domain_valid_addresses_and_room() {
    let s = Senders::new(|c| c.limits.trusted_emails_per_domain = 2).await;
    // An unverified domain (the Terraform provider's NotVerified test).
    let other = s.app.domain(&s.env, "b.shopco.test").await;
    let path = format!(
        "/v1/environments/{}/emailDomains/{other}/trustedEmails",
        s.env
    );
    let r = s
        .app
        .post(
            &path,
            &s.app.admin_token,
            json!({"emailAddress": "noreply@b.shopco.test"}),
        )
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "trustedEmail")),
    )
    .await;
    for bad in [
        "noreply@b.shopco.test",
        "not-an-address",
        "\"q\"@a.shopco.test",
    ] {
        let r = s.create(bad).await;
        assert_p1_error(
            r,
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            Some(("INVALID_VALUE", "emailAddress")),
        )
        .await;
    }
    let r = s
        .app
        .post(
            &format!("{}/trustedEmails", s.domain),
            &s.app.admin_token,
            json!({}),
        )
        .await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("REQUIRED_VALUE", "emailAddress")),
    )
    .await;
    assert_eq!(
        s.create("one@a.shopco.test").await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        s.create("two@a.shopco.test").await.status(),
        StatusCode::CREATED
    );
    let r = s.create("three@a.shopco.test").await;
    let body = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("SIZE_LIMIT_EXCEEDED", "emailAddress")),
    )
    .await;
    assert_eq!(body["details"][0]["innerError"]["maximumValue"], 2);
    // Not found, forbidden.
    let r = s
        .app
        .get(
            &format!("{}/trustedEmails/{UNKNOWN_ID}", s.domain),
            &s.app.admin_token,
        )
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    let reader = s.app.token(&s.env, Role::ReadOnly).await;
    let r = s
        .app
        .request(
            Method::POST,
            &format!("{}/trustedEmails", s.domain),
            Some(&reader),
            Some(json!({"emailAddress": "x@a.shopco.test"})),
        )
        .await;
    assert_p1_error(r, StatusCode::FORBIDDEN, "ACCESS_FAILED", None).await;
    let r = s
        .app
        .request(
            Method::GET,
            &format!("{}/trustedEmails", s.domain),
            None,
            None,
        )
        .await;
    assert_p1_error(r, StatusCode::UNAUTHORIZED, "ACCESS_FAILED", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_domain_limit_holds_under_concurrency() {
    let s = Senders::new(|c| c.mail.smtp_url = String::new().into()).await;
    // Verify first, so all requests race only for room.
    assert_eq!(
        s.create("first@a.shopco.test").await.status(),
        StatusCode::CREATED
    );
    let names: Vec<String> = (0..20).map(|i| format!("s{i}@a.shopco.test")).collect();
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(names.iter().map(|n| s.create(n)))
            .await
            .into_iter()
            .map(|r| r.status())
            .collect();
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    assert_eq!(created, 9, "{statuses:?}");
    let list: Value = s
        .app
        .get(&format!("{}/trustedEmails", s.domain), &s.app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 10);
}
