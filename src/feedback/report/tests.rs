use std::io::Write;

use proptest::prelude::*;

use super::*;

const CAP: usize = 1024 * 1024;

/// A DSN as Postfix writes one: two recipients, a folded diagnostic, the returned headers.
const DSN: &str = "From: MAILER-DAEMON@mx.receiver.test\r
To: b-abc@bounce.shopco.test\r
Subject: Undelivered Mail Returned to Sender\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=delivery-status;\r
 boundary=\"BOUNDARY\"\r
\r
--BOUNDARY\r
Content-Type: text/plain\r
\r
Your message could not be delivered.\r
--BOUNDARY\r
Content-Type: message/delivery-status\r
\r
Reporting-MTA: dns; mx.receiver.test\r
Arrival-Date: Mon, 7 Dec 2026 20:00:00 +0000\r
\r
Final-Recipient: rfc822; gone@receiver.test\r
Original-Recipient: rfc822;gone@receiver.test\r
Action: failed\r
Status: 5.1.1\r
Diagnostic-Code: smtp; 550 5.1.1 <gone@receiver.test>: Recipient address\r
 rejected: User unknown in virtual mailbox table\r
\r
Final-Recipient: rfc822; full@receiver.test\r
Action: delayed\r
Status: 4.2.2\r
\r
--BOUNDARY\r
Content-Type: text/rfc822-headers\r
\r
From: noreply@auth.shopco.test\r
To: gone@receiver.test\r
Message-ID: <original-1@auth.shopco.test>\r
Subject: Your code\r
\r
--BOUNDARY--\r
";

const ARF: &str = "From: fbl@provider.test\r
To: b-abc@bounce.shopco.test\r
Subject: complaint\r
MIME-Version: 1.0\r
Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"\r
\r
--B\r
Content-Type: text/plain\r
\r
A user reported this message as spam.\r
--B\r
Content-Type: message/feedback-report\r
\r
Feedback-Type: abuse\r
User-Agent: ProviderFBL/1.0\r
Version: 1\r
Original-Mail-From: <b-abc@bounce.shopco.test>\r
Original-Rcpt-To: <annoyed@provider.test>\r
Reporting-MTA: dns; fbl.provider.test\r
\r
--B\r
Content-Type: message/rfc822\r
\r
From: noreply@auth.shopco.test\r
To: annoyed@provider.test\r
Message-ID: <original-2@auth.shopco.test>\r
Subject: Offers\r
\r
Buy now.\r
--B--\r
";

const DMARC_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>receiver.test</org_name>
    <email>dmarc@receiver.test</email>
    <report_id>r-1</report_id>
    <date_range><begin>1796601600</begin><end>1796688000</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>auth.shopco.test</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.10</source_ip><count>7</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>auth.shopco.test</header_from></identifiers>
    <auth_results>
      <dkim><domain>auth.shopco.test</domain><result>pass</result></dkim>
      <spf><domain>bounce.shopco.test</domain><result>fail</result></spf>
    </auth_results>
  </record>
</feedback>
"#;

/// A mail carrying `attachment` as a base64 `content_type` part named `name`.
fn with_attachment(content_type: &str, name: &str, attachment: &[u8]) -> Vec<u8> {
    use data_encoding::BASE64_MIME;
    format!(
        "From: dmarc@receiver.test\r\nTo: rua-abc@feedback.shopco.test\r\n\
         Subject: Report Domain: auth.shopco.test\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"M\"\r\n\r\n\
         --M\r\nContent-Type: text/plain\r\n\r\nA report.\r\n\
         --M\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\r\n{}\r\n--M--\r\n",
        BASE64_MIME.encode(attachment)
    )
    .into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn zip(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    archive.start_file(name, options).unwrap();
    archive.write_all(bytes).unwrap();
    archive.finish().unwrap().into_inner()
}

fn dmarc(report: Result<Report, NotAReport>) -> Box<mail_auth::report::Report> {
    match report {
        Ok(Report::DmarcAggregate(report)) => report,
        other => panic!("not a DMARC report: {other:?}"),
    }
}

#[test]
fn a_dsn_names_each_recipient_and_how_it_failed() {
    let Ok(Report::Delivery(dsn)) = read(DSN.as_bytes(), CAP) else {
        panic!("not read as a DSN");
    };
    assert_eq!(dsn.reporting_mta.as_deref(), Some("mx.receiver.test"));
    assert_eq!(
        dsn.original_message_id.as_deref(),
        Some("original-1@auth.shopco.test")
    );
    let [gone, full] = dsn.recipients.as_slice() else {
        panic!("two recipients expected: {:?}", dsn.recipients);
    };
    assert_eq!(gone.final_recipient, "gone@receiver.test");
    assert_eq!(
        gone.original_recipient.as_deref(),
        Some("gone@receiver.test")
    );
    assert_eq!(gone.status, "5.1.1");
    assert_eq!(gone.bounce(), Some(Bounce::Hard));
    assert_eq!(
        gone.diagnostic.as_deref(),
        Some(
            "550 5.1.1 <gone@receiver.test>: Recipient address rejected: User unknown in \
             virtual mailbox table"
        )
    );
    assert_eq!(full.final_recipient, "full@receiver.test");
    assert_eq!(full.bounce(), Some(Bounce::Soft));
    assert_eq!(full.diagnostic, None);
}

#[test]
fn bounces_are_hard_only_when_failed_for_good() {
    let status = |action: &str, status: &str| RecipientStatus {
        final_recipient: "a@receiver.test".into(),
        original_recipient: None,
        action: action.into(),
        status: status.into(),
        diagnostic: None,
    };
    assert_eq!(status("failed", "5.2.2").bounce(), Some(Bounce::Hard));
    assert_eq!(status("failed", "4.4.7").bounce(), Some(Bounce::Soft));
    assert_eq!(status("delayed", "4.4.1").bounce(), Some(Bounce::Soft));
    assert_eq!(status("delivered", "2.0.0").bounce(), None);
    assert_eq!(status("relayed", "2.0.0").bounce(), None);
}

#[test]
fn a_dsn_without_a_recipient_block_is_not_a_report() {
    let only_message_fields = DSN.replace("Final-Recipient", "X-Final-Recipient");
    assert_eq!(
        read(only_message_fields.as_bytes(), CAP).unwrap_err(),
        NotAReport::NoRecipients
    );
    let no_status_part = DSN.replace("message/delivery-status", "text/plain");
    assert_eq!(
        read(no_status_part.as_bytes(), CAP).unwrap_err(),
        NotAReport::NoRecipients
    );
}

#[test]
fn a_complaint_names_the_complainant_and_the_return_path() {
    let Ok(Report::Complaint(complaint)) = read(ARF.as_bytes(), CAP) else {
        panic!("not read as a complaint");
    };
    assert_eq!(complaint.feedback_type, FeedbackType::Abuse);
    assert_eq!(
        complaint.original_rcpt_to.as_deref(),
        Some("annoyed@provider.test")
    );
    assert_eq!(
        complaint.original_mail_from.as_deref(),
        Some("b-abc@bounce.shopco.test")
    );
    assert_eq!(
        complaint.reporting_mta.as_deref(),
        Some("fbl.provider.test")
    );
    assert_eq!(
        complaint.original_message_id.as_deref(),
        Some("original-2@auth.shopco.test")
    );
}

#[test]
fn dmarc_reports_are_read_as_xml_gzip_or_zip() {
    let xml = dmarc(read(
        &with_attachment("text/xml", "r.xml", DMARC_XML.as_bytes()),
        CAP,
    ));
    assert_eq!(xml.domain(), "auth.shopco.test");
    assert_eq!(xml.org_name(), "receiver.test");
    let row = &xml.records()[0].row;
    assert_eq!(row.count, 7);
    assert_eq!(row.source_ip, Some("192.0.2.10".parse().unwrap()));
    let gz = dmarc(read(
        &with_attachment("application/gzip", "r.xml.gz", &gzip(DMARC_XML.as_bytes())),
        CAP,
    ));
    assert_eq!(gz, xml);
    let zipped = dmarc(read(
        &with_attachment(
            "application/zip",
            "r.zip",
            &zip("r.xml", DMARC_XML.as_bytes()),
        ),
        CAP,
    ));
    assert_eq!(zipped, xml);
}

#[test]
fn an_attachment_that_expands_past_the_cap_is_not_read() {
    // 64 MiB of zeros compress to some 64 KiB: far past a 1 MiB cap.
    let bomb = vec![0u8; 64 * 1024 * 1024];
    for mail in [
        with_attachment("application/zip", "r.zip", &zip("r.xml", &bomb)),
        with_attachment("application/gzip", "r.xml.gz", &gzip(&bomb)),
    ] {
        assert!(matches!(read(&mail, CAP), Err(NotAReport::Unrecognized(_))));
    }
}

#[test]
fn what_is_no_report_says_so() {
    assert_eq!(read(b"", CAP).unwrap_err(), NotAReport::Malformed);
    let plain = b"From: a@b.test\r\nSubject: hi\r\n\r\nhello\r\n";
    assert!(matches!(read(plain, CAP), Err(NotAReport::Unrecognized(_))));
    let broken_arf = ARF.replace("Feedback-Type: abuse\r\n", "");
    assert!(matches!(
        read(broken_arf.as_bytes(), CAP),
        Err(NotAReport::BadFeedback(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Whatever arrives is a report or a reason, never a panic.
    #[test]
    fn any_bytes_are_read_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read(&bytes, CAP);
    }

    /// A DSN cut anywhere is still read or refused.
    #[test]
    fn any_cut_of_a_dsn_is_read_or_refused(cut in 0..DSN.len()) {
        let _ = read(&DSN.as_bytes()[..cut], CAP);
    }
}
