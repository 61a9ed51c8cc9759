//! Trusted email addresses (PingOne's operations in `contract/pingone-email-domains.openapi.yml`,
//! and activation with a code), with codes read from an in-process SMTP sink.

use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use trustmail::domain::Role;

use crate::support::{
    SmtpSink, TestApp, TestDns, UNKNOWN_ID, assert_created_snapshot, assert_p1_error,
};

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
            c.mail.smtp_url = trustmail::config::SmtpUrl::parse(&url).unwrap();
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

    /// The code in the next mail to reach the sink.
    async fn next_code(&mut self) -> String {
        code_in(&self.sink.next_mail(Duration::from_secs(10)).await.data)
    }

    fn sender_path(&self, id: &str) -> String {
        format!("{}/trustedEmails/{id}", self.domain)
    }

    /// Creates `address` (201) and reads the code mailed to it: (sender id, code).
    async fn sender_with_code(&mut self, address: &str) -> (String, String) {
        let r = self.create(address).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let created: Value = r.json().await.unwrap();
        let id = created["id"].as_str().unwrap().to_owned();
        (id, self.next_code().await)
    }

    async fn activate(&self, id: &str, code: &str) -> reqwest::Response {
        self.act(id, ACTIVATE, &format!(r#"{{"verificationCode":"{code}"}}"#))
            .await
    }

    /// Nothing reaches the sink. The delivery job runs on its own clock: give it time to send
    /// anything it would.
    async fn assert_nothing_mailed(&mut self, why: &str) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(self.sink.try_next_mail().is_none(), "{why}");
    }

    /// Makes the last code, and its mail, older than the one-minute resend interval.
    async fn age_codes_past_the_resend_interval(&self) {
        let store_url = format!(
            "sqlite://{}",
            self.app.dir.path().join("trustmail.db").display()
        );
        let pool = sqlx::AnyPool::connect(&store_url).await.unwrap();
        for aging in [
            "UPDATE trusted_emails SET code_sent_at = code_sent_at - 61000",
            "UPDATE outbox SET created_at = created_at - 61000",
        ] {
            sqlx::query(aging).execute(&pool).await.unwrap();
        }
    }
}

/// The code in a verification mail.
fn code_in(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.strip_prefix("Verification code: "))
        .expect("a code line")
        .trim()
        .to_owned()
}

#[tokio::test]
async fn creating_a_sender_answers_201_verification_required_with_its_domain_and_links() {
    let s = Senders::new(|_| {}).await;
    let r = s.create("NoReply@A.ShopCo.Test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["status"], "VERIFICATION_REQUIRED");
    let domain_id = s.domain.rsplit('/').next().unwrap();
    let names = s
        .app
        .names()
        .with(&s.env, "[env]")
        .with(domain_id, "[domain]")
        .with(created["id"].as_str().unwrap(), "[id]");
    assert_created_snapshot!(created, names);
}

#[tokio::test]
async fn a_new_sender_is_mailed_an_eight_character_code() {
    let mut s = Senders::new(|_| {}).await;
    assert_eq!(
        s.create("NoReply@A.ShopCo.Test").await.status(),
        StatusCode::CREATED
    );
    let mail = s.sink.next_mail(Duration::from_secs(10)).await;
    assert_eq!(mail.to, ["NoReply@a.shopco.test"]);
    assert!(
        mail.data
            .contains("Subject: Your trustmail verification code")
    );
    assert_eq!(code_in(&mail.data).len(), 8);
}

#[tokio::test]
async fn only_a_codes_hash_is_stored() {
    let mut s = Senders::new(|_| {}).await;
    let (_, code) = s.sender_with_code("noreply@a.shopco.test").await;
    let db = std::fs::read(s.app.dir.path().join("trustmail.db")).unwrap();
    let wal = std::fs::read(s.app.dir.path().join("trustmail.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(8).any(|w| w == code.as_bytes()),
            "the code is stored in clear"
        );
    }
}

#[tokio::test]
async fn creating_an_existing_address_answers_200_with_the_same_sender_and_mails_nothing() {
    let mut s = Senders::new(|_| {}).await;
    let (id, _) = s.sender_with_code("NoReply@a.shopco.test").await;
    let again = s.create("noreply@a.shopco.test").await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());
    s.assert_nothing_mailed("no mail for the repeated create")
        .await;
}

#[tokio::test]
async fn a_wrong_code_is_400_invalid_value() {
    let mut s = Senders::new(|_| {}).await;
    let (id, _) = s.sender_with_code("noreply@a.shopco.test").await;
    let r = s.activate(&id, "zzzzzzzz").await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "verificationCode")),
    )
    .await;
}

#[tokio::test]
async fn the_mailed_code_makes_the_sender_active() {
    let mut s = Senders::new(|_| {}).await;
    let (id, code) = s.sender_with_code("noreply@a.shopco.test").await;
    let r = s.activate(&id, &code).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ACTIVE");
    let one = s.app.get_json(&s.sender_path(&id)).await;
    assert_eq!(one["status"], "ACTIVE");
    let list = s.app.get_json(&format!("{}/trustedEmails", s.domain)).await;
    assert_eq!(list["count"], 1);
    assert_eq!(list["_embedded"]["trustedEmails"][0]["status"], "ACTIVE");
}

#[tokio::test]
async fn creating_mailing_and_activating_a_sender_are_recorded_in_order() {
    let mut s = Senders::new(|_| {}).await;
    let (id, code) = s.sender_with_code("noreply@a.shopco.test").await;
    assert_eq!(s.activate(&id, &code).await.status(), StatusCode::OK);
    let acts = s
        .app
        .get_json(&format!("/v1/environments/{}/activities", s.env))
        .await;
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
}

#[tokio::test]
async fn a_deleted_sender_is_not_found_and_its_address_can_be_created_again() {
    let mut s = Senders::new(|_| {}).await;
    let (id, _) = s.sender_with_code("noreply@a.shopco.test").await;
    let r = s.app.delete(&s.sender_path(&id), &s.app.admin_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = s.app.get(&s.sender_path(&id), &s.app.admin_token).await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
    s.age_codes_past_the_resend_interval().await;
    assert_eq!(
        s.create("noreply@a.shopco.test").await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn deleting_and_recreating_a_sender_does_not_reset_the_one_code_a_minute_rule() {
    let mut s = Senders::new(|_| {}).await;
    let (id, _) = s.sender_with_code("NoReply@a.shopco.test").await;
    let r = s.app.delete(&s.sender_path(&id), &s.app.admin_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    // The same address in another case is the same mailbox.
    let r = s.create("noreply@a.shopco.test").await;
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    assert_p1_error(r, StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMITED", None).await;
    let list: Value = s
        .app
        .get(&format!("{}/trustedEmails", s.domain), &s.app.admin_token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 0, "nothing was created");
}

#[tokio::test]
async fn a_deleted_senders_queued_code_mail_is_not_sent() {
    // No relay: the code mail waits in the outbox.
    let s = Senders::new(|c| c.mail.smtp_url = Default::default()).await;
    let r = s.create("late@a.shopco.test").await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.app.delete(&s.sender_path(&id), &s.app.admin_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let outbox = s.app.store().list_outbox(10).await.unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].status.as_str(), "FAILED");
    assert!(
        outbox[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("trusted email was deleted")
    );
}

#[tokio::test]
async fn an_environment_past_its_code_mails_per_hour_gets_429() {
    let s = Senders::new(|c| c.limits.code_mails_per_hour = 2).await;
    for address in ["one@a.shopco.test", "two@a.shopco.test"] {
        assert_eq!(s.create(address).await.status(), StatusCode::CREATED);
    }
    let r = s.create("three@a.shopco.test").await;
    let wait: u64 = r.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert_p1_error(r, StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMITED", None).await;
}

/// A sender whose code was tried wrong five times: (senders, sender id, the right code).
async fn locked_sender() -> (Senders, String, String) {
    let mut s = Senders::new(|_| {}).await;
    let (id, code) = s.sender_with_code("a@a.shopco.test").await;
    for _ in 0..5 {
        let r = s.activate(&id, "00000000").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    (s, id, code)
}

#[tokio::test]
async fn a_wrong_code_five_times_locks_the_code_until_a_resend() {
    let (mut s, id, code) = locked_sender().await;
    // Even the right code is refused now.
    let r = s.activate(&id, &code).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "verificationCode")),
    )
    .await;
    s.age_codes_past_the_resend_interval().await;
    assert_eq!(s.act(&id, SEND_CODE, "").await.status(), StatusCode::OK);
    let fresh = s.next_code().await;
    assert_eq!(s.activate(&id, &fresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_resend_within_a_minute_is_429_with_retry_after() {
    let (s, id, _) = locked_sender().await;
    let r = s.act(&id, SEND_CODE, "").await;
    assert!(r.headers().contains_key(header::RETRY_AFTER));
    assert_p1_error(r, StatusCode::TOO_MANY_REQUESTS, "REQUEST_LIMITED", None).await;
}

#[tokio::test]
async fn a_resend_after_a_minute_mails_a_new_code() {
    let mut s = Senders::new(|_| {}).await;
    let (id, first) = s.sender_with_code("b@a.shopco.test").await;
    s.age_codes_past_the_resend_interval().await;
    let r = s.act(&id, SEND_CODE, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["status"],
        "VERIFICATION_REQUIRED"
    );
    assert_ne!(s.next_code().await, first);
}

#[tokio::test]
async fn a_resend_retires_the_old_code_and_the_new_one_works_in_any_case() {
    let mut s = Senders::new(|_| {}).await;
    let (id, first) = s.sender_with_code("b@a.shopco.test").await;
    s.age_codes_past_the_resend_interval().await;
    assert_eq!(s.act(&id, SEND_CODE, "").await.status(), StatusCode::OK);
    let second = s.next_code().await;
    let r = s.activate(&id, &first).await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "the old code stopped working"
    );
    let r = s.activate(&id, &second.to_uppercase()).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn acting_on_a_sender_with_another_content_type_is_400_invalid_request() {
    let mut s = Senders::new(|_| {}).await;
    let (id, _) = s.sender_with_code("b@a.shopco.test").await;
    let r = s.act(&id, "application/json", "{}").await;
    assert_p1_error(r, StatusCode::BAD_REQUEST, "INVALID_REQUEST", None).await;
}

/// The one member of each body: absent, another type, inside an object or not; the body is
/// judged before the domain's verification or the code is.
#[tokio::test]
async fn a_create_or_activation_body_reports_its_one_member_first() {
    let mut s = Senders::new(|_| {}).await;
    let (id, _) = s.sender_with_code("b@a.shopco.test").await;
    let unverified = s.app.domain(&s.env, "u.shopco.test").await;
    let mut answers = Vec::new();
    for (path, content_type, body) in [
        (
            format!("{}/trustedEmails", s.domain),
            "application/json",
            r#"{"address": "c@a.shopco.test"}"#,
        ),
        (
            format!("{}/trustedEmails", s.domain),
            "application/json",
            r#"{"emailAddress": ["c@a.shopco.test"]}"#,
        ),
        (
            format!(
                "/v1/environments/{}/emailDomains/{unverified}/trustedEmails",
                s.env
            ),
            "application/json",
            r#"{"emailAddress": 1}"#,
        ),
        (s.sender_path(&id), ACTIVATE, r#"{"code": "zzzzzzzz"}"#),
        (
            s.sender_path(&id),
            ACTIVATE,
            r#"{"verificationCode": 12345678}"#,
        ),
        (s.sender_path(&id), ACTIVATE, r#"["zzzzzzzz"]"#),
    ] {
        let r = s
            .app
            .http
            .post(format!("{}{path}", s.app.url))
            .bearer_auth(&s.app.admin_token)
            .header(header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let answer = crate::support::p1_error(r, StatusCode::BAD_REQUEST).await;
        answers.push(json!({"sent": body, "answer": answer}));
    }
    insta::assert_json_snapshot!(answers, { "[].answer.id" => crate::support::redact::id() });
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
    s.assert_nothing_mailed("no code for an address ACTIVE at once")
        .await;
}

#[tokio::test]
async fn a_sender_of_an_unverified_domain_is_400_invalid_value() {
    let s = Senders::new(|_| {}).await;
    // The Terraform provider's NotVerified test.
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
}

#[tokio::test]
async fn an_address_outside_the_domain_or_malformed_is_400_invalid_value() {
    let s = Senders::new(|_| {}).await;
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
}

#[tokio::test]
async fn a_sender_without_an_address_is_400_required_value() {
    let s = Senders::new(|_| {}).await;
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
}

#[tokio::test]
async fn a_sender_over_the_per_domain_limit_is_400_size_limit_exceeded() {
    let s = Senders::new(|c| c.limits.trusted_emails_per_domain = 2).await;
    for address in ["one@a.shopco.test", "two@a.shopco.test"] {
        assert_eq!(s.create(address).await.status(), StatusCode::CREATED);
    }
    let r = s.create("three@a.shopco.test").await;
    let body = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("SIZE_LIMIT_EXCEEDED", "emailAddress")),
    )
    .await;
    assert_eq!(body["details"][0]["innerError"]["maximumValue"], 2);
}

#[tokio::test]
async fn an_unknown_sender_is_404() {
    let s = Senders::new(|_| {}).await;
    let r = s
        .app
        .get(&s.sender_path(UNKNOWN_ID), &s.app.admin_token)
        .await;
    assert_p1_error(r, StatusCode::NOT_FOUND, "NOT_FOUND", None).await;
}

#[tokio::test]
async fn a_reader_creating_a_sender_is_403() {
    let s = Senders::new(|_| {}).await;
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
}

#[tokio::test]
async fn listing_senders_without_a_token_is_401() {
    let s = Senders::new(|_| {}).await;
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
    let s = Senders::new(|c| c.mail.smtp_url = Default::default()).await;
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
