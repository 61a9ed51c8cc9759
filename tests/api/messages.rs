//! Sending customer mail: `POST /v1/environments/{id}/messages` and `GET …/messages/{id}`, with
//! DNS from an in-process server and mail reaching an in-process SMTP sink.

use std::{sync::Arc, time::Duration};

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use trustmail::domain::DkimRole;

use crate::support::{
    SmtpSink, TestApp, TestDns, assert_error_snapshot, assert_p1_error, p1_error, redact,
    smtp::ReceivedMail,
};

const DOMAIN: &str = "a.shopco.test";
const SENDER: &str = "noreply@a.shopco.test";

pub(crate) struct Sending {
    pub(crate) app: TestApp,
    pub(crate) dns: Arc<TestDns>,
    pub(crate) sink: SmtpSink,
    pub(crate) env: String,
    pub(crate) domain_id: String,
}

impl Sending {
    /// An environment with the domain `a.shopco.test`, nothing published yet; mail goes to `sink`.
    pub(crate) async fn new(
        sink: SmtpSink,
        tweak: impl FnOnce(&mut trustmail::config::Config),
    ) -> Self {
        let dns = TestDns::start().await;
        let url = sink.url();
        let app = TestApp::with_dns(&dns, move |c| {
            c.mail.smtp_url = trustmail::config::SmtpUrl::parse(&url).unwrap();
            // A record taken out of DNS lapses at the next check.
            c.dns.active_grace_s = 0;
            tweak(c);
        })
        .await;
        let env = app.environment("Shop").await;
        let domain_id = app.domain(&env, DOMAIN).await;
        Self {
            app,
            dns,
            sink,
            env,
            domain_id,
        }
    }

    /// Every record published and checked, and `SENDER` ACTIVE.
    pub(crate) async fn ready(tweak: impl FnOnce(&mut trustmail::config::Config)) -> Self {
        Self::ready_with(SmtpSink::start().await, tweak).await
    }

    pub(crate) async fn ready_with(
        sink: SmtpSink,
        tweak: impl FnOnce(&mut trustmail::config::Config),
    ) -> Self {
        let s = Self::new(sink, tweak).await;
        s.publish_and_check().await;
        s.create_sender(SENDER, "ACTIVE").await;
        s
    }

    pub(crate) fn domain_path(&self) -> String {
        format!(
            "/v1/environments/{}/emailDomains/{}",
            self.env, self.domain_id
        )
    }

    pub(crate) async fn publish_and_check(&self) {
        self.app
            .publish_domain(&self.dns, &self.env, &self.domain_id)
            .await;
        let r = self
            .app
            .post(
                &format!("{}/verification", self.domain_path()),
                &self.app.admin_token,
                json!({}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// Re-reads a status resource (`ownership`, `dkim`), which re-checks its records.
    pub(crate) async fn recheck(&self, leaf: &str) {
        self.app
            .get_json(&format!("{}/{leaf}", self.domain_path()))
            .await;
    }

    pub(crate) async fn create_sender(&self, address: &str, status: &str) {
        let r = self
            .app
            .post(
                &format!("{}/trustedEmails", self.domain_path()),
                &self.app.admin_token,
                json!({ "emailAddress": address }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap()["status"], status);
    }

    pub(crate) async fn send(&self, body: Value) -> Response {
        self.app
            .post(
                &format!("/v1/environments/{}/messages", self.env),
                &self.app.admin_token,
                body,
            )
            .await
    }

    pub(crate) async fn send_with_key(&self, key: &str, body: &Value) -> Response {
        send_with_key(&self.app, &self.env, key, body).await
    }

    /// Sends `message()` and returns its id.
    pub(crate) async fn queued(&self, body: Value) -> String {
        let r = self.send(body).await;
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        r.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub(crate) async fn read(&self, id: &str) -> Value {
        self.app
            .get_json(&format!("/v1/environments/{}/messages/{id}", self.env))
            .await
    }

    /// The message once its status is not QUEUED any more.
    pub(crate) async fn settled(&self, id: &str) -> Value {
        for _ in 0..300 {
            let message = self.read(id).await;
            if message["status"] != "QUEUED" {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {id} stayed QUEUED");
    }

    pub(crate) async fn next_mail(&mut self) -> ReceivedMail {
        self.sink.next_mail(Duration::from_secs(15)).await
    }

    /// The selector of the key that signs in `us-east-1`.
    pub(crate) async fn signing_selector(&self) -> String {
        let domain = self.app.email_domain(&self.env, &self.domain_id).await;
        self.app
            .service
            .dkim_keys(&domain)
            .await
            .unwrap()
            .into_iter()
            .find(|k| k.region == "us-east-1" && k.role == DkimRole::Signing)
            .unwrap()
            .selector
    }

    pub(crate) fn names(&self) -> redact::Names {
        self.app.names().with(&self.env, "[env]")
    }
}

async fn send_with_key(app: &TestApp, env: &str, key: &str, body: &Value) -> Response {
    app.http
        .post(format!("{}/v1/environments/{env}/messages", app.url))
        .bearer_auth(&app.admin_token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub(crate) fn message() -> Value {
    json!({
        "from": SENDER,
        "to": ["ann@example.test"],
        "subject": "Your order",
        "text": "It ships today.\n",
    })
}

/// `message()` with `field` replaced (or removed, for null).
fn message_with(field: &str, value: Value) -> Value {
    let mut body = message();
    if value.is_null() {
        body.as_object_mut().unwrap().remove(field);
    } else {
        body[field] = value;
    }
    body
}

/// The value of tag `tag` in the DKIM-Signature header that starts `data`.
fn dkim_tag(data: &str, tag: &str) -> String {
    let header: String = data
        .split("\r\n")
        .take_while(|line| !line.is_empty())
        .scan(false, |inside, line| {
            if line.starts_with("DKIM-Signature:") {
                *inside = true;
            } else if !line.starts_with([' ', '\t']) {
                *inside = false;
            }
            Some((*inside).then(|| line.trim().to_owned()))
        })
        .flatten()
        .collect();
    let header = header.trim_start_matches("DKIM-Signature:");
    header
        .split(';')
        .find_map(|t| t.trim().strip_prefix(&format!("{tag}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("no {tag}= in {header}"))
}

#[tokio::test]
async fn a_message_from_an_active_sender_is_accepted_as_queued() {
    let s = Sending::ready(|_| {}).await;
    let r = s.send(message()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(redact::is_uuid(&id));
    insta::assert_json_snapshot!(body, { ".**" => s.names().with(&id, "[id]").redaction() });
}

#[tokio::test]
async fn a_sent_message_arrives_signed_by_the_regions_signing_selector_from_the_from_domain() {
    let mut s = Sending::ready(|_| {}).await;
    s.queued(message()).await;
    let mail = s.next_mail().await;
    assert_eq!(mail.from, SENDER);
    assert_eq!(mail.to, ["ann@example.test"]);
    assert!(mail.data.starts_with("DKIM-Signature:"), "{}", mail.data);
    assert_eq!(dkim_tag(&mail.data, "d"), DOMAIN);
    assert_eq!(dkim_tag(&mail.data, "s"), s.signing_selector().await);
    assert_eq!(dkim_tag(&mail.data, "c"), "relaxed/relaxed");
    let signed = dkim_tag(&mail.data, "h").to_ascii_lowercase();
    for header in ["from", "to", "subject", "date", "message-id"] {
        assert!(
            signed.split(':').any(|h| h == header),
            "{header} in {signed}"
        );
    }
    assert!(mail.data.contains("Subject: Your order\r\n"));
    assert_eq!(
        s.dns.verify_dkim(mail.data.as_bytes()).await,
        [mail_auth::DkimResult::Pass]
    );
}

#[tokio::test]
async fn with_an_active_mail_from_domain_the_envelope_sender_is_on_it() {
    let mut s = Sending::new(SmtpSink::start().await, |_| {}).await;
    // MAIL FROM needs ownership first.
    s.publish_and_check().await;
    let r = s
        .app
        .request(
            reqwest::Method::PUT,
            &format!("{}/mailFromDomain", s.domain_path()),
            Some(&s.app.admin_token),
            Some(json!({"mailFrom": {"domain": "bounce.a.shopco.test"}})),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.app.publish_domain(&s.dns, &s.env, &s.domain_id).await;
    let mail_from = s
        .app
        .get_json(&format!("{}/mailFromDomain", s.domain_path()))
        .await;
    assert_eq!(mail_from["status"], "ACTIVE", "{mail_from}");
    s.create_sender(SENDER, "ACTIVE").await;
    s.queued(message()).await;
    let mail = s.next_mail().await;
    let (local, domain) = mail.from.rsplit_once('@').unwrap();
    assert_eq!(domain, "bounce.a.shopco.test");
    assert!(local.starts_with("b-"), "a return path: {local}");
    assert_eq!(dkim_tag(&mail.data, "d"), DOMAIN);
    assert!(mail.data.contains(&format!("From: {SENDER}\r\n")));
}

#[tokio::test]
async fn a_sent_message_reads_sent_with_the_relays_reply() {
    let s = Sending::ready(|_| {}).await;
    let id = s.queued(message()).await;
    let sent = s.settled(&id).await;
    insta::assert_json_snapshot!(sent, {
        ".createdAt" => redact::time(),
        ".sentAt" => redact::time(),
        ".**" => s.names().with(&id, "[id]").redaction(),
    });
}

#[tokio::test]
async fn a_from_that_is_no_trusted_address_of_the_environment_is_refused() {
    let s = Sending::ready(|_| {}).await;
    let r = s
        .send(message_with("from", json!("someone@a.shopco.test")))
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_from_not_yet_active_is_refused() {
    let s = Sending::new(SmtpSink::start().await, |_| {}).await;
    // Ownership only: without the environment record a new sender waits for its code.
    let domain = s.app.email_domain(&s.env, &s.domain_id).await;
    for checked in s.app.service.verification(&domain).await.unwrap() {
        if checked.record.kind == trustmail::domain::RecordKind::Ownership {
            s.dns.add_txt(
                &checked.record.fqdn(&domain.name),
                &[checked.record.value.as_str()],
            );
        }
    }
    s.create_sender(SENDER, "VERIFICATION_REQUIRED").await;
    assert_error_snapshot!(s.send(message()).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_from_whose_domain_is_no_longer_verified_is_refused() {
    let s = Sending::ready(|_| {}).await;
    s.dns.remove(
        "_trustmail.a.shopco.test",
        hickory_proto::rr::RecordType::TXT,
    );
    s.dns.remove(
        "_trustmail-environment.a.shopco.test",
        hickory_proto::rr::RecordType::TXT,
    );
    s.recheck("ownership").await;
    assert_error_snapshot!(s.send(message()).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_from_whose_dkim_is_not_active_is_refused() {
    let s = Sending::ready(|_| {}).await;
    let dkim = s.app.get_json(&format!("{}/dkim", s.domain_path())).await;
    let first = dkim["regions"][0]["tokens"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    s.dns.remove(&first, hickory_proto::rr::RecordType::CNAME);
    s.recheck("dkim").await;
    assert_error_snapshot!(s.send(message()).await, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_recipient_that_is_not_an_address_is_refused() {
    let s = Sending::ready(|_| {}).await;
    let r = s
        .send(message_with(
            "to",
            json!(["ann@example.test", "not an address"]),
        ))
        .await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_message_without_recipients_is_refused() {
    let s = Sending::ready(|_| {}).await;
    let r = s.send(message_with("to", json!([]))).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "to")),
    )
    .await;
    let r = s.send(message_with("to", Value::Null)).await;
    assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("REQUIRED_VALUE", "to")),
    )
    .await;
}

#[tokio::test]
async fn more_than_fifty_recipients_are_refused() {
    let s = Sending::ready(|_| {}).await;
    let to: Vec<String> = (0..51).map(|n| format!("r{n}@example.test")).collect();
    assert_error_snapshot!(
        s.send(message_with("to", json!(to))).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_message_with_neither_text_nor_html_is_refused() {
    let s = Sending::ready(|_| {}).await;
    let r = s.send(message_with("text", Value::Null)).await;
    assert_error_snapshot!(r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn concurrent_repeats_with_one_idempotency_key_queue_one_message() {
    let mut s = Sending::ready(|_| {}).await;
    let body = message();
    let sends = (0..8).map(|_| send_with_key(&s.app, &s.env, "order-1234", &body));
    let mut ids = Vec::new();
    for r in futures_util::future::join_all(sends).await {
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer["status"], "QUEUED");
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let customer_mail = s
        .app
        .store()
        .list_outbox(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.route != trustmail::mail::MailRoute::System)
        .count();
    assert_eq!(customer_mail, 1);
    s.next_mail().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(s.sink.try_next_mail().is_none(), "sent twice");
}

#[tokio::test]
async fn a_repeat_is_answered_with_its_message_after_its_sender_is_gone() {
    let s = Sending::ready(|_| {}).await;
    // Written differently, the same message: addresses are compared as parsed.
    let first = message_with("to", json!(["  ann@example.test "]));
    let r = s.send_with_key("order-77", &first).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let id = r.json::<Value>().await.unwrap()["id"].clone();
    let senders = s
        .app
        .get_json(&format!("{}/trustedEmails", s.domain_path()))
        .await;
    let sender = senders["_embedded"]["trustedEmails"][0]["id"]
        .as_str()
        .unwrap();
    let r = s
        .app
        .delete(
            &format!("{}/trustedEmails/{sender}", s.domain_path()),
            &s.app.admin_token,
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let repeat = s.send_with_key("order-77", &message()).await;
    assert_eq!(repeat.status(), StatusCode::ACCEPTED);
    assert_eq!(repeat.json::<Value>().await.unwrap()["id"], id);
    // Without the key the same message is refused now.
    assert_eq!(s.send(message()).await.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_different_body_with_a_used_idempotency_key_is_refused() {
    let s = Sending::ready(|_| {}).await;
    let r = s.send_with_key("order-1234", &message()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let other = message_with("subject", json!("Another order"));
    assert_error_snapshot!(
        s.send_with_key("order-1234", &other).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_permanent_refusal_fails_the_message_after_one_attempt() {
    let sink = SmtpSink::refusing("550 5.1.1 <ann@example.test>: mailbox unavailable\r\n").await;
    let s = Sending::ready_with(sink, |_| {}).await;
    let id = s.queued(message()).await;
    let failed = s.settled(&id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["attempts"], 1);
    let reason = failed["reason"].as_str().unwrap();
    assert!(
        reason.contains("550") && reason.contains("mailbox unavailable"),
        "{reason}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(s.sink.recipients_offered(), 1);
}

#[tokio::test]
async fn sends_past_messages_per_minute_are_429_with_retry_after() {
    let s = Sending::ready(|c| c.limits.messages_per_minute = 2).await;
    s.queued(message()).await;
    s.queued(message()).await;
    let r = s.send(message()).await;
    let retry_after = r.headers()["retry-after"].to_str().unwrap().to_owned();
    assert!(
        (1..=120).contains(&retry_after.parse::<u64>().unwrap()),
        "{retry_after}"
    );
    let mut body = p1_error(r, StatusCode::TOO_MANY_REQUESTS).await;
    // The wait is the one in Retry-After, which depends on how fast the test ran.
    body["message"] = json!(
        body["message"]
            .as_str()
            .unwrap()
            .replace(&format!(" {retry_after} "), " [retry-after] ")
    );
    insta::assert_json_snapshot!(body, { ".id" => redact::id() });
}

#[tokio::test]
async fn another_environments_message_is_not_found() {
    let s = Sending::ready(|_| {}).await;
    let id = s.queued(message()).await;
    let other = s.app.environment("Elsewhere").await;
    let r = s
        .app
        .get(
            &format!("/v1/environments/{other}/messages/{id}"),
            &s.app.admin_token,
        )
        .await;
    assert_error_snapshot!(r, StatusCode::NOT_FOUND);
}

/// Signing at delivery: mail waits in the outbox (no relay yet) while keys rotate or the
/// domain goes, then the app restarts with the sink as its relay.
impl Sending {
    /// `ready`, with no relay (mail waits in the outbox) and trustmail's DNS for the DKIM
    /// zones listening.
    async fn waiting() -> Self {
        Self::ready(|c| {
            c.mail.smtp_url = Default::default();
            c.dkim_dns.listen = "127.0.0.1:0".into();
        })
        .await
    }

    /// The same data served again, now with the sink as relay: what waited is delivered.
    async fn restart_with_relay(self) -> Self {
        let Sending {
            mut app,
            dns,
            sink,
            env,
            domain_id,
        } = self;
        app.config.mail.smtp_url = trustmail::config::SmtpUrl::parse(&sink.url()).unwrap();
        let app = app.restart().await;
        Self {
            app,
            dns,
            sink,
            env,
            domain_id,
        }
    }

    async fn rotate(&self) {
        let r = self
            .app
            .post(
                &format!("{}/dkim/rotate", self.domain_path()),
                &self.app.admin_token,
                Value::Null,
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK);
    }

    /// Puts in the test DNS, at each of the domain's selectors, the key record that
    /// trustmail's own DKIM DNS answers now (the test DNS held the keys of domain creation).
    async fn publish_served_dkim_keys(&self) {
        use crate::support::dns_query::{Transport, ask, txt_strings};
        use hickory_proto::rr::RecordType;
        let served = self.app.dkim_dns.expect("dkim_dns.listen is set");
        let domain = self.app.email_domain(&self.env, &self.domain_id).await;
        for key in self.app.service.dkim_keys(&domain).await.unwrap() {
            let fqdn = key.fqdn(self.app.dkim_zone(&key.region));
            let answer = ask(served, &fqdn, RecordType::TXT, Transport::Tcp).await;
            let records = txt_strings(&answer.answers);
            assert_eq!(records.len(), 1, "{fqdn}: {records:?}");
            let strings: Vec<&str> = records[0].iter().map(String::as_str).collect();
            self.dns.remove(&fqdn, RecordType::TXT);
            self.dns.add_txt(&fqdn, &strings);
        }
    }

    /// Restarts with the relay and waits for `id` to fail after one attempt, with nothing
    /// offered to the sink: the reason the message gives.
    async fn fails_unsent_at_delivery(self, id: &str) -> String {
        let mut s = self.restart_with_relay().await;
        let failed = s.settled(id).await;
        assert_eq!(failed["status"], "FAILED", "{failed}");
        assert_eq!(failed["attempts"], 1);
        // FAILED is final: nothing can reach the sink later.
        assert_eq!(s.sink.recipients_offered(), 0);
        assert!(s.sink.try_next_mail().is_none());
        failed["reason"].as_str().unwrap().to_owned()
    }

    /// The message once the API shows a failed attempt (it may still read QUEUED).
    async fn attempted(&self, id: &str) -> Value {
        for _ in 0..300 {
            let message = self.read(id).await;
            if message["attempts"].as_u64().unwrap_or(0) >= 1 {
                return message;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {id} was never attempted");
    }

    /// The app stopped and its database opened directly, to change what the API cannot.
    async fn with_database(mut self, sql: &'static str) -> Self {
        self.app.stop().await;
        let pool = sqlx::AnyPool::connect(&format!(
            "sqlite://{}",
            self.app.dir.path().join("trustmail.db").display()
        ))
        .await
        .unwrap();
        let changed = sqlx::query(sql)
            .bind(&self.domain_id)
            .execute(&pool)
            .await
            .unwrap()
            .rows_affected();
        assert!(changed > 0, "{sql}");
        pool.close().await;
        self
    }
}

#[tokio::test]
async fn a_message_queued_before_two_rotations_is_signed_at_delivery_by_the_key_signing_then() {
    let s = Sending::waiting().await;
    let queued_under = s.signing_selector().await;
    let id = s.queued(message()).await;
    let stored = s
        .app
        .store()
        .get_outbox(id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored.message.contains("DKIM-Signature:"),
        "queued unsigned: {}",
        stored.message
    );
    assert_eq!(stored.dkim_domain_id, Some(s.domain_id.parse().unwrap()));
    // After two rotations the key that signed when this message was queued is published
    // nowhere: its slot holds a fresh key.
    s.rotate().await;
    s.rotate().await;
    let signing_now = s.signing_selector().await;
    assert_ne!(signing_now, queued_under);

    let mut s = s.restart_with_relay().await;
    let mail = s.next_mail().await;
    s.publish_served_dkim_keys().await;
    assert_eq!(dkim_tag(&mail.data, "s"), signing_now);
    assert_eq!(dkim_tag(&mail.data, "d"), DOMAIN);
    assert_eq!(
        s.dns.verify_dkim(mail.data.as_bytes()).await,
        [mail_auth::DkimResult::Pass]
    );
    assert_eq!(s.settled(&id).await["status"], "SENT");
}

#[tokio::test]
async fn a_message_whose_domain_is_deleted_before_delivery_fails_unsent() {
    let s = Sending::waiting().await;
    let id = s.queued(message()).await;
    let r = s.app.delete(&s.domain_path(), &s.app.admin_token).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let reason = s.fails_unsent_at_delivery(&id).await;
    assert!(reason.contains("domain was deleted"), "{reason}");
}

#[tokio::test]
async fn a_message_whose_domain_has_no_signing_key_at_delivery_fails_unsent() {
    let s = Sending::waiting().await;
    let id = s.queued(message()).await;
    let s = s
        // (A deleted key row would be minted again at start-up.)
        .with_database(
            "UPDATE dkim_keys SET role = 'RETIRED' WHERE domain_id = $1 AND role = 'SIGNING'",
        )
        .await;
    let reason = s.fails_unsent_at_delivery(&id).await;
    assert!(
        reason.contains("no signing DKIM key in region us-east-1"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_signing_key_that_cannot_be_read_at_delivery_leaves_the_message_queued_for_a_retry() {
    let s = Sending::waiting().await;
    let id = s.queued(message()).await;
    let s = s
        .with_database(
            "UPDATE dkim_keys SET sealed_private_key = 'not-a-sealed-key' \
             WHERE domain_id = $1 AND role = 'SIGNING'",
        )
        .await;
    let mut s = s.restart_with_relay().await;
    let waiting = s.attempted(&id).await;
    assert_eq!(waiting["status"], "QUEUED", "{waiting}");
    let reason = waiting["reason"].as_str().unwrap();
    assert!(reason.contains("retrying"), "{reason}");
    assert_eq!(s.sink.recipients_offered(), 0);
    assert!(s.sink.try_next_mail().is_none());
}

async fn suppress(s: &Sending, address: &str) {
    let path = format!("/v1/environments/{}/suppressions/{address}", s.env);
    let r = s.app.put(&path, &s.app.admin_token, json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_suppressed_recipient_is_not_sent_to_and_reads_suppressed() {
    let mut s = Sending::ready(|_| {}).await;
    suppress(&s, "gone@example.test").await;
    let to = json!(["Gone@Example.test", "ann@example.test"]);
    let id = s.queued(message_with("to", to)).await;
    let mail = s.next_mail().await;
    assert_eq!(mail.to, ["ann@example.test"]);
    // The header still names everyone the sender wrote to.
    assert!(mail.data.contains("Gone@Example.test"), "{}", mail.data);
    let sent = s.settled(&id).await;
    assert_eq!(sent["status"], "SENT");
    assert_eq!(
        sent["recipients"],
        json!(["Gone@Example.test", "ann@example.test"])
    );
    assert_eq!(
        sent["recipientStatuses"],
        json!([
            {"emailAddress": "Gone@Example.test", "status": "SUPPRESSED", "events": []},
            {"emailAddress": "ann@example.test", "status": "SENT", "events": []},
        ])
    );
}

#[tokio::test]
async fn a_message_whose_every_recipient_is_suppressed_is_refused_naming_them() {
    let s = Sending::ready(|_| {}).await;
    suppress(&s, "gone@example.test").await;
    suppress(&s, "left@example.test").await;
    let body = message_with("to", json!(["gone@example.test", "LEFT@example.test"]));
    let r = s.send(body).await;
    let error = assert_p1_error(
        r,
        StatusCode::BAD_REQUEST,
        "INVALID_DATA",
        Some(("INVALID_VALUE", "to")),
    )
    .await;
    let message = error["details"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("gone@example.test") && message.contains("LEFT@example.test"),
        "{message}"
    );
    let queued = s
        .app
        .store()
        .list_outbox(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.environment_id.is_some())
        .count();
    assert_eq!(queued, 0);
    // Taken off the list, the address is sent to again.
    let path = format!("/v1/environments/{}/suppressions/gone@example.test", s.env);
    s.app.delete(&path, &s.app.admin_token).await;
    let to = json!(["gone@example.test"]);
    assert_eq!(
        s.send(message_with("to", to)).await.status(),
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn suppression_in_one_environment_does_not_reach_another() {
    let mut s = Sending::ready(|_| {}).await;
    let other = s.app.environment("Other").await;
    let path = format!("/v1/environments/{other}/suppressions/ann@example.test");
    s.app.put(&path, &s.app.admin_token, json!({})).await;
    let id = s.queued(message()).await;
    assert_eq!(s.next_mail().await.to, ["ann@example.test"]);
    assert_eq!(
        s.settled(&id).await["recipientStatuses"][0]["status"],
        "SENT"
    );
}
