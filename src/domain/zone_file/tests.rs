//! Each form as a snapshot, and each checked by a parser of its own: serde structs mirroring
//! AWS's and Cloudflare's documented request shapes, hcl-rs for Terraform.

use serde::Deserialize;

use super::*;
use crate::domain::{PublicSuffixes, RecordStatus};

fn domain() -> DomainName {
    DomainName::parse("a.shopco.test", &PublicSuffixes::new(["test"])).unwrap()
}

fn record(
    kind: RecordKind,
    region: Option<&str>,
    position: u8,
    key: &str,
    value: &str,
) -> DnsRecord {
    DnsRecord {
        kind,
        region: region.map(str::to_owned),
        position,
        key: key.to_owned(),
        record_type: kind.record_type(),
        value: value.to_owned(),
        status: RecordStatus::VerificationRequired,
    }
}

/// An SPF value of 292 bytes: past one 255-byte string.
fn long_spf() -> String {
    let ips: String = (1..=20).map(|n| format!("ip4:192.0.2.{n} ")).collect();
    format!("v=spf1 {ips}include:spf.trustmail.example ~all")
}

/// Every kind of record: two regions' ownership TXT at one name, a MAIL FROM MX, and SPF (on
/// the MAIL FROM name) past 255 bytes.
fn records() -> Vec<DnsRecord> {
    use RecordKind::*;
    vec![
        record(
            Ownership,
            Some("us-east-1"),
            0,
            "_trustmail",
            "b3duZXJzaGlwLTE",
        ),
        record(
            Ownership,
            Some("eu-west-1"),
            0,
            "_trustmail",
            "b3duZXJzaGlwLTI",
        ),
        record(
            Environment,
            None,
            0,
            "_trustmail-environment",
            "ZW52aXJvbm1lbnQ",
        ),
        record(
            Dkim,
            Some("us-east-1"),
            0,
            "abc0._domainkey.a.shopco.test",
            "abc0.useast1.dkim.trustmail.example",
        ),
        record(
            Dkim,
            Some("eu-west-1"),
            1,
            "def1._domainkey.a.shopco.test",
            "def1.euwest1.dkim.trustmail.example.",
        ),
        record(
            MailFrom,
            None,
            0,
            "bounce.a.shopco.test",
            "feedback.us-east-1.trustmail.example",
        ),
        record(Spf, None, 0, "bounce.a.shopco.test", &long_spf()),
    ]
}

fn render(format: ZoneFileFormat) -> String {
    zone_file(format, &domain(), &records())
}

/// The character strings of zone-file TXT data (`"a" "b"`), unescaped.
fn character_strings(data: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut bytes = data.bytes().peekable();
    while let Some(b) = bytes.next() {
        match b {
            b' ' => continue,
            b'"' => {}
            other => panic!("unquoted {:?} in {data}", char::from(other)),
        }
        let mut s = Vec::new();
        loop {
            match bytes.next().expect("an unterminated string") {
                b'"' => break,
                b'\\' => {
                    let next = bytes.next().unwrap();
                    if next.is_ascii_digit() {
                        let digits = [next, bytes.next().unwrap(), bytes.next().unwrap()];
                        s.push(std::str::from_utf8(&digits).unwrap().parse().unwrap());
                    } else {
                        s.push(next);
                    }
                }
                other => s.push(other),
            }
        }
        assert!(s.len() <= 255, "a string of {} bytes", s.len());
        strings.push(String::from_utf8(s).unwrap());
    }
    strings
}

/// One snapshot per form, named by the format (`…__bind.snap`, `…__route53.snap`, …).
#[test]
fn each_form_as_written() {
    for format in ZoneFileFormat::ALL {
        insta::assert_snapshot!(format.as_str(), render(*format));
    }
}

#[test]
fn the_route53_comment_stays_within_256_characters() {
    let label = "a".repeat(58);
    let long = format!("{label}.{label}.{label}.{label}.shopco.test");
    let domain = DomainName::parse(&long, &PublicSuffixes::new(["test"])).unwrap();
    let batch: ChangeBatch =
        serde_json::from_str(&zone_file(ZoneFileFormat::Route53, &domain, &records())).unwrap();
    assert_eq!(batch.comment.unwrap().len(), 256);
}

#[test]
fn content_types_and_names() {
    assert_eq!(
        ZoneFileFormat::Bind.content_type(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(
        ZoneFileFormat::Terraform.content_type(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(ZoneFileFormat::Route53.content_type(), "application/json");
    assert_eq!(
        ZoneFileFormat::Cloudflare.content_type(),
        "application/json"
    );
    assert_eq!("route53".parse(), Ok(ZoneFileFormat::Route53));
    assert!("Route53".parse::<ZoneFileFormat>().is_err());
}

#[test]
fn bind_txt_data_reads_back_as_the_value() {
    let text = render(ZoneFileFormat::Bind);
    let spf = text.lines().find(|l| l.contains("v=spf1")).unwrap();
    let data = spf.split_once(" IN TXT ").unwrap().1;
    let strings = character_strings(data);
    assert_eq!(strings.len(), 2);
    assert_eq!(strings.concat(), long_spf());
}

/// AWS's `ChangeResourceRecordSets` request body (Route 53 API reference, `ChangeBatch`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ChangeBatch {
    comment: Option<String>,
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct Change {
    action: ChangeAction,
    resource_record_set: ResourceRecordSet,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "UPPERCASE")]
enum ChangeAction {
    Create,
    Delete,
    Upsert,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ResourceRecordSet {
    name: String,
    #[serde(rename = "Type")]
    record_type: Route53Type,
    #[serde(rename = "TTL")]
    ttl: Option<i64>,
    resource_records: Vec<ResourceRecord>,
}

#[derive(Debug, Deserialize, PartialEq, Clone, Copy)]
#[serde(rename_all = "UPPERCASE")]
enum Route53Type {
    Soa,
    A,
    Txt,
    Ns,
    Cname,
    Mx,
    Naptr,
    Ptr,
    Srv,
    Spf,
    Aaaa,
    Caa,
    Ds,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct ResourceRecord {
    value: String,
}

#[test]
fn route53_matches_the_change_batch_shape_and_its_limits() {
    let batch: ChangeBatch = serde_json::from_str(&render(ZoneFileFormat::Route53)).unwrap();
    assert!(batch.comment.is_some_and(|c| c.len() <= 256));
    assert!((1..=1000).contains(&batch.changes.len()));
    let mut seen = Vec::new();
    for change in &batch.changes {
        let set = &change.resource_record_set;
        assert_eq!(change.action, ChangeAction::Upsert);
        // Route 53 refuses a batch that names one record set twice.
        assert!(!seen.contains(&(&set.name, set.record_type)), "{set:?}");
        seen.push((&set.name, set.record_type));
        assert!(set.name.len() <= 1024 && !set.resource_records.is_empty());
        assert_eq!(set.ttl, Some(3600));
        for rr in &set.resource_records {
            assert!(rr.value.len() <= 4000);
            if set.record_type == Route53Type::Txt {
                character_strings(&rr.value);
            }
        }
    }
    let ownership = &batch.changes[0].resource_record_set;
    assert_eq!(ownership.name, "_trustmail.a.shopco.test");
    assert_eq!(ownership.resource_records.len(), 2);
    let spf = batch.changes.last().unwrap();
    let strings = character_strings(&spf.resource_record_set.resource_records[0].value);
    assert_eq!(strings.len(), 2);
    assert_eq!(strings.concat(), long_spf());
    let mx = &batch.changes[batch.changes.len() - 2].resource_record_set;
    assert_eq!(mx.record_type, Route53Type::Mx);
    assert_eq!(
        mx.resource_records[0].value,
        "10 feedback.us-east-1.trustmail.example"
    );
}

/// A body of Cloudflare's `POST /zones/{zone_id}/dns_records` (API v4, `dns-records`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloudflareRecord {
    #[serde(rename = "type")]
    record_type: CloudflareType,
    name: String,
    content: String,
    ttl: u32,
    priority: Option<u16>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "UPPERCASE")]
enum CloudflareType {
    A,
    Aaaa,
    Cname,
    Mx,
    Txt,
}

#[test]
fn cloudflare_matches_the_record_body_shape() {
    let bodies: Vec<CloudflareRecord> =
        serde_json::from_str(&render(ZoneFileFormat::Cloudflare)).unwrap();
    assert_eq!(bodies.len(), records().len());
    for (body, record) in bodies.iter().zip(records()) {
        // 1 is "automatic"; otherwise 60 to 86400 s.
        assert!(body.ttl == 1 || (60..=86400).contains(&body.ttl));
        assert!(body.name.len() <= 255);
        assert_eq!(body.name, record.fqdn(&domain()).trim_end_matches('.'));
        match body.record_type {
            CloudflareType::Txt => {
                assert!(body.content.len() <= 2048);
                assert_eq!(character_strings(&body.content).concat(), record.value);
                assert_eq!(body.priority, None);
            }
            CloudflareType::Mx => {
                assert_eq!(body.priority, Some(10));
                assert_eq!(body.content, "feedback.us-east-1.trustmail.example");
            }
            CloudflareType::Cname => {
                assert_eq!(body.content, record.value.trim_end_matches('.'));
            }
            CloudflareType::A | CloudflareType::Aaaa => panic!("{body:?}"),
        }
    }
}

/// `(resource type, label, attributes)` of each block, as hcl-rs parses the text.
fn terraform_resources(text: &str) -> Vec<(String, String, hcl::Body)> {
    let body = hcl::parse(text).unwrap();
    assert_eq!(body.attributes().count(), 0);
    body.blocks()
        .map(|block| {
            assert_eq!(block.identifier(), "resource");
            let labels: Vec<&str> = block.labels().iter().map(|l| l.as_str()).collect();
            assert_eq!(labels.len(), 2, "{labels:?}");
            (
                labels[0].to_owned(),
                labels[1].to_owned(),
                block.body().clone(),
            )
        })
        .collect()
}

fn attribute<'b>(body: &'b hcl::Body, key: &str) -> &'b hcl::Expression {
    body.attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr())
        .unwrap_or_else(|| panic!("no {key}"))
}

fn string(expr: &hcl::Expression) -> &str {
    match expr {
        hcl::Expression::String(s) => s,
        other => panic!("not a plain string: {other:?}"),
    }
}

#[test]
fn terraform_parses_as_hcl_with_long_txt_joined_as_aws_route53_record_expects() {
    let resources = terraform_resources(&render(ZoneFileFormat::Terraform));
    let mut labels: Vec<(&str, &str)> = resources
        .iter()
        .map(|(kind, label, _)| (kind.as_str(), label.as_str()))
        .collect();
    labels.sort();
    let before = labels.len();
    labels.dedup();
    assert_eq!(labels.len(), before, "labels repeat");

    let route53: Vec<&hcl::Body> = resources
        .iter()
        .filter(|(kind, ..)| kind == "aws_route53_record")
        .map(|(.., body)| body)
        .collect();
    // One record set per name and type: the two ownership TXT share one.
    assert_eq!(route53.len(), records().len() - 1);
    let spf = route53.last().unwrap();
    assert_eq!(string(attribute(spf, "type")), "TXT");
    let hcl::Expression::Array(values) = attribute(spf, "records") else {
        panic!("records is not a list");
    };
    let value = string(&values[0]);
    let chunks: Vec<&str> = value.split("\"\"").collect();
    assert_eq!(chunks.len(), 2);
    assert!(chunks.iter().all(|c| c.len() <= 255));
    assert_eq!(chunks.concat(), long_spf());

    let cloudflare: Vec<&hcl::Body> = resources
        .iter()
        .filter(|(kind, ..)| kind == "cloudflare_record")
        .map(|(.., body)| body)
        .collect();
    assert_eq!(cloudflare.len(), records().len());
    for (body, record) in cloudflare.iter().zip(records()) {
        assert_eq!(string(attribute(body, "type")), record.record_type);
        let content = string(attribute(body, "content"));
        if record.record_type == "TXT" {
            assert_eq!(character_strings(content).concat(), record.value);
        }
    }
}

#[test]
fn hcl_strings_read_back_as_written_and_never_as_templates() {
    for text in [
        "plain",
        "say \"hi\"",
        "back\\slash",
        "${var.x} and %{ if }",
        "$ % {",
    ] {
        let parsed = hcl::parse(&format!("a = {}\n", hcl_string(text))).unwrap();
        let expr = parsed.attributes().next().unwrap().expr();
        assert_eq!(string(expr), text);
    }
}
