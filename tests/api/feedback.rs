//! The feedback loop end to end: mail goes out through the SMTP sink with a per-recipient
//! return path (VERP), then bounces (DSN), complaints (ARF) and DMARC aggregate reports are
//! delivered to trustmail's feedback MX over real SMTP, and the API shows what they changed.

use std::{io::Write, net::SocketAddr, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    messages::{Sending, message},
    subscriptions::created,
    support::{
        SmtpSink, WebhookReceiver,
        smtp_client::{SmtpClient, deliver},
    },
};

const BOUNCE_DOMAIN: &str = "bounces.trustmail.test";
const GONE: &str = "gone@example.test";

/// Ready to send, with return paths on `BOUNCE_DOMAIN` (no MAIL FROM domain needed).
async fn sending_with(
    sink: SmtpSink,
    tweak: impl FnOnce(&mut trustmail::config::Config),
) -> Sending {
    Sending::ready_with(sink, |c| {
        c.feedback.bounce_domain = BOUNCE_DOMAIN.into();
        tweak(c);
    })
    .await
}

async fn sending() -> Sending {
    sending_with(SmtpSink::start().await, |_| {}).await
}

fn mx(s: &Sending) -> SocketAddr {
    s.app.feedback.expect("the feedback MX listens")
}

fn to(addresses: &[&str]) -> Value {
    let mut body = message();
    body["to"] = json!(addresses);
    body
}

/// Sends to `addresses`, waits for the sink to get one mail per recipient, and returns the
/// message id with each recipient's return path.
async fn sent(s: &mut Sending, addresses: &[&str]) -> (String, Vec<(String, String)>) {
    let id = s.queued(to(addresses)).await;
    let mut paths = Vec::new();
    for _ in addresses {
        let mail = s.next_mail().await;
        assert_eq!(
            mail.to.len(),
            1,
            "one recipient per transaction: {:?}",
            mail.to
        );
        paths.push((mail.to[0].clone(), mail.from));
    }
    paths.sort();
    (id, paths)
}

fn return_path_of<'a>(paths: &'a [(String, String)], recipient: &str) -> &'a str {
    &paths.iter().find(|(to, _)| to == recipient).unwrap().1
}

/// A DSN as a receiving MTA writes one about `recipient`, sent to `return_path`.
fn dsn(return_path: &str, recipient: &str, action: &str, status: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.test\r\n\
         To: {return_path}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         Your message could not be delivered.\r\n\
         --B\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.test\r\n\
         \r\n\
         Final-Recipient: rfc822; {recipient}\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} <{recipient}>: no such user\r\n\
         \r\n\
         --B--\r\n"
    )
}

/// A complaint (ARF) from a mailbox provider about mail to `recipient`.
fn arf(return_path: &str, recipient: &str) -> String {
    format!(
        "From: fbl@provider.test\r\n\
         To: {return_path}\r\n\
         Subject: complaint\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         A user reported this message as spam.\r\n\
         --B\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ProviderFBL/1.0\r\n\
         Version: 1\r\n\
         Original-Mail-From: <{return_path}>\r\n\
         Original-Rcpt-To: <{recipient}>\r\n\
         Reporting-MTA: dns; fbl.provider.test\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: noreply@a.shopco.test\r\n\
         To: {recipient}\r\n\
         Subject: Your order\r\n\
         \r\n\
         --B--\r\n"
    )
}

fn recipient<'a>(message: &'a Value, address: &str) -> &'a Value {
    message["recipientStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["emailAddress"] == address)
        .unwrap_or_else(|| panic!("{address} in {message}"))
}

/// The message once `address` holds `status`.
async fn recipient_reaches(s: &Sending, id: &str, address: &str, status: &str) -> Value {
    for _ in 0..200 {
        let message = s.read(id).await;
        if recipient(&message, address)["status"] == status {
            return message;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{address} of {id} never reached {status}: {}",
        s.read(id).await
    );
}

async fn suppression(s: &Sending, address: &str) -> reqwest::Response {
    s.app
        .get(
            &format!("/v1/environments/{}/suppressions/{address}", s.env),
            &s.app.admin_token,
        )
        .await
}

async fn activities_of(s: &Sending, action: &str) -> Vec<Value> {
    let page = s
        .app
        .get_json(&format!("/v1/environments/{}/activities?limit=100", s.env))
        .await;
    page["_embedded"]["activities"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"]["type"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn each_recipient_gets_its_own_return_path_and_alignment_still_holds() {
    let mut s = sending().await;
    let (id, paths) = sent(&mut s, &["ann@example.test", "bob@example.test"]).await;
    let (ann, bob) = (
        return_path_of(&paths, "ann@example.test"),
        return_path_of(&paths, "bob@example.test"),
    );
    assert_ne!(ann, bob);
    for path in [ann, bob] {
        let (local, domain) = path.rsplit_once('@').unwrap();
        assert!(local.starts_with("b-") && local.len() <= 64, "{path}");
        assert_eq!(domain, BOUNCE_DOMAIN);
    }
    let message = s.settled(&id).await;
    assert_eq!(message["status"], "SENT", "{message}");
    for address in ["ann@example.test", "bob@example.test"] {
        assert_eq!(recipient(&message, address)["status"], "SENT");
    }
    // The self-check's test message carries a return path too, and DKIM still aligns (SPF
    // on the bounce domain cannot: relaxed alignment wants the same organizational domain).
    s.dns
        .add_txt("_dmarc.a.shopco.test", &["v=DMARC1; p=reject"]);
    let r = s
        .app
        .post(
            &format!("{}/selfCheck", s.domain_path()),
            &s.app.admin_token,
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let check: Value = r.json().await.unwrap();
    let region = &check["regions"][0];
    let envelope = region["envelopeFrom"].as_str().unwrap();
    assert!(
        envelope.starts_with("b-") && envelope.ends_with(BOUNCE_DOMAIN),
        "{check}"
    );
    assert_eq!(region["dmarc"]["dkimAligned"], true, "{check}");
    assert_eq!(region["dmarc"]["result"], "pass", "{check}");
}

#[tokio::test]
async fn a_relay_refusing_one_recipient_bounces_and_suppresses_it_and_the_others_are_sent() {
    let sink =
        SmtpSink::refusing_one(GONE, "550 5.1.1 <gone@example.test>: no such user\r\n").await;
    let mut s = sending_with(sink, |_| {}).await;
    let id = s.queued(to(&["ann@example.test", GONE])).await;
    let mail = s.next_mail().await;
    assert_eq!(mail.to, ["ann@example.test"]);
    let message = s.settled(&id).await;
    assert_eq!(message["status"], "SENT", "{message}");
    assert_eq!(recipient(&message, "ann@example.test")["status"], "SENT");
    let gone = recipient(&message, GONE);
    assert_eq!(gone["status"], "BOUNCED", "{message}");
    let event = &gone["events"][0];
    assert_eq!(event["type"], "BOUNCE");
    assert_eq!(event["source"], "RELAY");
    assert_eq!(event["status"], "5.1.1");
    let listed = suppression(&s, GONE).await;
    assert_eq!(listed.status(), StatusCode::OK);
    let listed: Value = listed.json().await.unwrap();
    assert_eq!(listed["reason"], "BOUNCE");
    assert_eq!(listed["message"]["id"], id.as_str());
    assert_eq!(activities_of(&s, "EMAIL.BOUNCED").await.len(), 1);
    // The next message to it alone is refused before the relay sees it.
    let r = s.send(to(&[GONE])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// The issue's whole loop over real SMTP: send, bounce one recipient with a DSN and have the
/// other complain with an ARF report, then see the statuses, the suppression entries, the
/// refused next send, the activities and the webhook.
#[tokio::test]
async fn bounces_and_complaints_over_smtp_suppress_and_are_told_to_webhooks() {
    let mut s = sending().await;
    let receiver = WebhookReceiver::start().await;
    created(
        &s.app,
        &s.env,
        &receiver.url,
        &["EMAIL.BOUNCED", "EMAIL.COMPLAINED"],
    )
    .await;
    let annoyed = "annoyed@example.test";
    let (id, paths) = sent(&mut s, &[GONE, annoyed]).await;
    s.settled(&id).await;

    let bounce = dsn(return_path_of(&paths, GONE), GONE, "failed", "5.1.1");
    let reply = deliver(mx(&s), return_path_of(&paths, GONE), &bounce).await;
    assert!(reply.starts_with("250"), "{reply}");
    let complaint = arf(return_path_of(&paths, annoyed), annoyed);
    let reply = deliver(mx(&s), return_path_of(&paths, annoyed), &complaint).await;
    assert!(reply.starts_with("250"), "{reply}");

    recipient_reaches(&s, &id, GONE, "BOUNCED").await;
    let message = recipient_reaches(&s, &id, annoyed, "COMPLAINED").await;
    let bounced = &recipient(&message, GONE)["events"][0];
    assert_eq!(bounced["source"], "DSN");
    assert_eq!(bounced["status"], "5.1.1");
    assert_eq!(bounced["reportingMta"], "mx.example.test");
    let complained = &recipient(&message, annoyed)["events"][0];
    assert_eq!(complained["type"], "COMPLAINT");
    assert_eq!(complained["status"], "abuse");

    let reasons = s
        .app
        .get_json(&format!("/v1/environments/{}/suppressions", s.env))
        .await;
    let mut listed: Vec<(String, String)> = reasons["_embedded"]["suppressions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["emailAddress"].as_str().unwrap().to_owned(),
                e["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            (annoyed.to_owned(), "COMPLAINT".to_owned()),
            (GONE.to_owned(), "BOUNCE".to_owned())
        ]
    );
    let r = s.send(to(&[GONE, annoyed])).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    assert_eq!(activities_of(&s, "EMAIL.BOUNCED").await.len(), 1);
    assert_eq!(activities_of(&s, "EMAIL.COMPLAINED").await.len(), 1);
    let hooks = receiver.wait_for(2).await;
    let mut told: Vec<String> = hooks
        .iter()
        .map(|h| h.json()["action"]["type"].as_str().unwrap().to_owned())
        .collect();
    told.sort();
    assert_eq!(told, ["EMAIL.BOUNCED", "EMAIL.COMPLAINED"]);

    // The same DSN again changes nothing and is not told again.
    let reply = deliver(mx(&s), return_path_of(&paths, GONE), &bounce).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(activities_of(&s, "EMAIL.BOUNCED").await.len(), 1);
}

/// Feedback loops send every complaint to the address registered with them: the domain's
/// report address. The returned Message-ID names the message.
#[tokio::test]
async fn a_complaint_at_the_domains_report_address_is_found_by_its_message_id() {
    let mut s = sending().await;
    let id = s
        .queued(to(&["ann@example.test", "bob@example.test"]))
        .await;
    let mail = s.next_mail().await;
    let message_id = mail
        .data
        .lines()
        .find_map(|line| line.strip_prefix("Message-ID: "))
        .unwrap()
        .to_owned();
    s.settled(&id).await;
    let summary = s
        .app
        .get_json(&format!("{}/dmarcReports/summary", s.domain_path()))
        .await;
    let address = summary["reportAddress"].as_str().unwrap().to_owned();
    let complaint = arf(&address, "bob@example.test").replace(
        "Subject: Your order\r\n",
        &format!("Subject: Your order\r\nMessage-ID: {message_id}\r\n"),
    );
    let reply = deliver(mx(&s), &address, &complaint).await;
    assert!(reply.starts_with("250"), "{reply}");
    let message = recipient_reaches(&s, &id, "bob@example.test", "COMPLAINED").await;
    assert_eq!(recipient(&message, "ann@example.test")["status"], "SENT");
    // Without a Message-ID trustmail wrote, nothing is found and nothing changes.
    let stray = arf(&address, "ann@example.test");
    let reply = deliver(mx(&s), &address, &stray).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(
        recipient(&s.read(&id).await, "ann@example.test")["status"],
        "SENT"
    );
}

#[tokio::test]
async fn a_soft_bounce_delays_the_recipient_without_suppressing_it() {
    let mut s = sending().await;
    let (id, paths) = sent(&mut s, &["full@example.test"]).await;
    s.settled(&id).await;
    let path = return_path_of(&paths, "full@example.test");
    let reply = deliver(
        mx(&s),
        path,
        &dsn(path, "full@example.test", "delayed", "4.2.2"),
    )
    .await;
    assert!(reply.starts_with("250"), "{reply}");
    let message = recipient_reaches(&s, &id, "full@example.test", "DELAYED").await;
    assert_eq!(
        recipient(&message, "full@example.test")["events"][0]["type"],
        "DELAY"
    );
    assert_eq!(
        suppression(&s, "full@example.test").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn addresses_trustmail_did_not_issue_are_refused_at_rcpt() {
    let mut s = sending().await;
    let (_, paths) = sent(&mut s, &["ann@example.test"]).await;
    let real = return_path_of(&paths, "ann@example.test").to_owned();
    let (local, domain) = real.rsplit_once('@').unwrap();
    // Another recipient's place under this tag; a tag changed; no return path at all.
    let moved = local.replacen("-0-", "-1-", 1);
    let mut forged_tag = local.to_owned();
    let last = forged_tag.pop().unwrap();
    forged_tag.push(if last == 'a' { 'b' } else { 'a' });
    let (mut client, greeting) = SmtpClient::connect(mx(&s)).await;
    assert!(greeting.starts_with("220 "), "{greeting}");
    assert!(client.command("EHLO client.test").await.starts_with("250"));
    assert!(client.command("MAIL FROM:<>").await.starts_with("250"));
    for refused in [
        format!("{moved}@{domain}"),
        format!("{forged_tag}@{domain}"),
        format!("postmaster@{domain}"),
        "someone@elsewhere.test".to_owned(),
    ] {
        let reply = client.command(&format!("RCPT TO:<{refused}>")).await;
        assert!(reply.starts_with("550 5.1.1"), "{refused}: {reply}");
    }
    // The real one, in another letter case, is taken.
    let reply = client
        .command(&format!("RCPT TO:<{}>", real.to_uppercase()))
        .await;
    assert!(reply.starts_with("250"), "{reply}");
    assert!(client.command("QUIT").await.starts_with("221"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_changes_nothing() {
    let mut s = sending_with(SmtpSink::start().await, |c| {
        c.feedback.max_message_bytes = 65_536;
        c.feedback.max_recipients = 3;
        c.feedback.max_errors = 5;
    })
    .await;
    let (id, paths) = sent(&mut s, &["ann@example.test"]).await;
    s.settled(&id).await;
    let path = return_path_of(&paths, "ann@example.test").to_owned();

    // Not a report (an auto-reply), a DSN without a recipient block, malformed MIME: taken
    // and dropped, so the sender does not retry or bounce them.
    for text in [
        "From: ann@example.test\r\nSubject: Out of office\r\n\r\nBack on Monday.\r\n".to_owned(),
        dsn(&path, "ann@example.test", "failed", "5.1.1")
            .replace("Final-Recipient: rfc822; ann@example.test\r\n", ""),
        "Content-Type: multipart/report; boundary=\"x\r\n\r\n--x\r\n\x01\x02".to_owned(),
    ] {
        let reply = deliver(mx(&s), &path, &text).await;
        assert!(reply.starts_with("250"), "{reply}");
    }
    let message = s.read(&id).await;
    assert_eq!(
        recipient(&message, "ann@example.test")["status"],
        "SENT",
        "{message}"
    );

    // Past the size limit: 552 at the end of the text, and the connection goes on.
    let (mut client, _) = SmtpClient::connect(mx(&s)).await;
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(100)).repeat(1000);
    let reply = client.deliver("", &path, &big).await;
    assert!(reply.starts_with("552"), "{reply}");
    assert!(client.command("NOOP").await.starts_with("250"));
    // A SIZE past the limit is refused at MAIL.
    let reply = client.command("MAIL FROM:<> SIZE=1000000").await;
    assert!(reply.starts_with("552"), "{reply}");

    // Recipients past the limit: 452, so the client sends the rest in another transaction.
    assert!(client.command("MAIL FROM:<>").await.starts_with("250"));
    for _ in 0..3 {
        let reply = client.command(&format!("RCPT TO:<{path}>")).await;
        assert!(reply.starts_with("250"), "{reply}");
    }
    let reply = client.command(&format!("RCPT TO:<{path}>")).await;
    assert!(reply.starts_with("452"), "{reply}");
    assert!(client.command("RSET").await.starts_with("250"));

    // Commands out of order and unknown ones count as errors; past max_errors, 421 and close.
    assert!(client.command("DATA").await.starts_with("503"));
    assert!(client.command("BOGUS").await.starts_with("500"));
    let mut last = String::new();
    for _ in 0..5 {
        last = client.command("RCPT TO:<nobody@elsewhere.test>").await;
        if last.starts_with("421") || last.is_empty() {
            break;
        }
    }
    assert!(last.starts_with("421") || last.is_empty(), "{last}");
}

#[tokio::test]
async fn connections_and_silence_are_bounded() {
    let s = sending_with(SmtpSink::start().await, |c| {
        c.feedback.max_connections_per_ip = 1;
        c.feedback.command_timeout_s = 1;
    })
    .await;
    let (mut first, greeting) = SmtpClient::connect(mx(&s)).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    let (_, refused) = SmtpClient::connect(mx(&s)).await;
    assert!(refused.starts_with("421"), "{refused}");
    // A client that says nothing is told so and let go.
    let closing = first.reply().await;
    assert!(closing.starts_with("421 4.4.2"), "{closing}");
    assert_eq!(first.reply().await, "");
    // Its slot is free again.
    let (_, greeting) = SmtpClient::connect(mx(&s)).await;
    assert!(greeting.starts_with("220"), "{greeting}");
}

const DMARC_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>receiver.test</org_name>
    <email>dmarc@receiver.test</email>
    <report_id>REPORT_ID</report_id>
    <date_range><begin>BEGIN</begin><end>END</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>a.shopco.test</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip><count>7</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>a.shopco.test</header_from></identifiers>
    <auth_results><dkim><domain>a.shopco.test</domain><result>pass</result></dkim></auth_results>
  </record>
  <record>
    <row>
      <source_ip>198.51.100.7</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>a.shopco.test</header_from></identifiers>
    <auth_results><spf><domain>a.shopco.test</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
"#;

/// A report mail as Google's and Microsoft's come: the XML gzipped, base64, as an attachment.
fn dmarc_mail(to: &str, report_id: &str) -> String {
    let end = time::OffsetDateTime::now_utc().unix_timestamp();
    let xml = DMARC_XML
        .replace("REPORT_ID", report_id)
        .replace("BEGIN", &(end - 86_400).to_string())
        .replace("END", &end.to_string());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(xml.as_bytes()).unwrap();
    let attachment = data_encoding::BASE64_MIME.encode(&gz.finish().unwrap());
    format!(
        "From: dmarc@receiver.test\r\nTo: {to}\r\n\
         Subject: Report Domain: a.shopco.test\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"M\"\r\n\r\n\
         --M\r\nContent-Type: text/plain\r\n\r\nA report.\r\n\
         --M\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"r.xml.gz\"\r\n\r\n{attachment}\r\n--M--\r\n"
    )
}

#[tokio::test]
async fn dmarc_reports_at_the_domains_report_address_are_kept_and_summarized() {
    let s = sending_with(SmtpSink::start().await, |c| {
        c.regions[0].egress_ips = vec!["192.0.2.10".parse().unwrap()];
    })
    .await;
    let summary_path = format!("{}/dmarcReports/summary", s.domain_path());
    let empty = s.app.get_json(&summary_path).await;
    assert_eq!(empty["sources"], json!([]));
    let address = empty["reportAddress"].as_str().unwrap().to_owned();
    assert!(address.starts_with("r-"), "{address}");
    assert!(
        empty["suggestedRecord"]
            .as_str()
            .unwrap()
            .ends_with(&format!("rua=mailto:{address}")),
        "{empty}"
    );

    for report_id in ["r-1", "r-1", "r-2"] {
        let reply = deliver(mx(&s), &address, &dmarc_mail(&address, report_id)).await;
        assert!(reply.starts_with("250"), "{reply}");
    }
    let reports = s
        .app
        .get_json(&format!("{}/dmarcReports", s.domain_path()))
        .await;
    // r-1 came twice and is kept once.
    assert_eq!(reports["count"], 2, "{reports}");
    let report = &reports["_embedded"]["dmarcReports"][0];
    assert_eq!(report["orgName"], "receiver.test");
    assert_eq!(report["messages"], 10);
    assert_eq!(report["policy"], "none");

    let summary = s.app.get_json(&summary_path).await;
    assert_eq!(
        summary["sources"],
        json!([
            {"sourceIp": "192.0.2.10", "sentByTrustmail": true, "messages": 14,
             "dkimAligned": 14, "spfAligned": 0, "dmarcPass": 14, "reporters": 1},
            {"sourceIp": "198.51.100.7", "sentByTrustmail": false, "messages": 6,
             "dkimAligned": 0, "spfAligned": 0, "dmarcPass": 0, "reporters": 1},
        ]),
        "{summary}"
    );
    let r = s
        .app
        .get(&format!("{summary_path}?days=0"), &s.app.admin_token)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A DSN at a report address is no DMARC report: taken, dropped.
    let reply = deliver(mx(&s), &address, &dsn(&address, GONE, "failed", "5.1.1")).await;
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(
        s.app
            .get_json(&format!("{}/dmarcReports", s.domain_path()))
            .await["count"],
        2
    );
}
