//! A domain's records in the forms people paste (`…/zoneFile?format=`): BIND zone-file lines, a
//! Route 53 change batch, Cloudflare API record bodies, and Terraform resources. Pure text: the
//! API and the command line both call `zone_file`.

use serde_json::{Value, json};

use super::{DnsRecord, DomainName, MAIL_FROM_PRIORITY, RecordKind, txt_strings, zone_txt};

/// The TTL every form gives each record: an hour.
pub const ZONE_FILE_TTL: u32 = 3600;

wire_enum!(
    /// What `…/zoneFile?format=` writes the records as.
    ZoneFileFormat {
        /// Zone-file lines (`name. 3600 IN TXT "…"`), for BIND, nsupdate and most DNS panels.
        Bind => "bind",
        /// A Route 53 `ChangeResourceRecordSets` change batch, every record set an UPSERT.
        Route53 => "route53",
        /// Bodies for Cloudflare's `POST /zones/{zone_id}/dns_records`, one per record.
        Cloudflare => "cloudflare",
        /// `aws_route53_record` and `cloudflare_record` resources.
        Terraform => "terraform",
    }
);

impl ZoneFileFormat {
    pub fn content_type(&self) -> &'static str {
        match self {
            ZoneFileFormat::Bind | ZoneFileFormat::Terraform => "text/plain; charset=utf-8",
            ZoneFileFormat::Route53 | ZoneFileFormat::Cloudflare => "application/json",
        }
    }
}

/// `records` (in the order given) as `format` writes them.
pub fn zone_file(format: ZoneFileFormat, domain: &DomainName, records: &[DnsRecord]) -> String {
    let entries: Vec<Entry> = records.iter().map(|r| Entry::new(domain, r)).collect();
    match format {
        ZoneFileFormat::Bind => bind(domain, &entries),
        ZoneFileFormat::Route53 => format!("{:#}\n", route53(domain, &entries)),
        ZoneFileFormat::Cloudflare => format!("{:#}\n", cloudflare(&entries)),
        ZoneFileFormat::Terraform => terraform(domain, &entries),
    }
}

/// What a record says, as every form needs it.
enum Data<'a> {
    Txt(&'a str),
    /// The target, without the trailing dot.
    Cname(&'a str),
    /// The mail exchanger, without the trailing dot.
    Mx(&'a str),
}

struct Entry<'a> {
    record: &'a DnsRecord,
    /// The full owner name, without the trailing dot.
    name: String,
    data: Data<'a>,
}

impl<'a> Entry<'a> {
    fn new(domain: &DomainName, record: &'a DnsRecord) -> Self {
        let target = record.value.trim_end_matches('.');
        let data = match record.kind {
            RecordKind::Dkim => Data::Cname(target),
            RecordKind::MailFrom => Data::Mx(target),
            RecordKind::Ownership | RecordKind::Environment | RecordKind::Spf => {
                Data::Txt(&record.value)
            }
        };
        Self {
            record,
            name: record.fqdn(domain).trim_end_matches('.').to_owned(),
            data,
        }
    }

    fn record_type(&self) -> &'static str {
        match self.data {
            Data::Txt(_) => "TXT",
            Data::Cname(_) => "CNAME",
            Data::Mx(_) => "MX",
        }
    }

    /// The record data in zone-file syntax: TXT as quoted strings of at most 255 bytes (what
    /// Route 53's `Value` and Cloudflare's `content` take too), MX with its priority.
    fn presentation(&self) -> String {
        match self.data {
            Data::Txt(value) => zone_txt(value),
            Data::Cname(target) => target.to_owned(),
            Data::Mx(exchange) => format!("{MAIL_FROM_PRIORITY} {exchange}"),
        }
    }

    /// A Terraform label part: `ownership_us_east_1`, `dkim_us_east_1_0`, `spf`, `mail_from`.
    fn label(&self) -> String {
        let r = self.record;
        let mut label = r.kind.as_str().to_ascii_lowercase();
        if let Some(region) = &r.region {
            label = format!("{label}_{region}");
        }
        if r.kind == RecordKind::Dkim {
            label = format!("{label}_{}", r.position);
        }
        identifier(&label)
    }
}

/// Records of one name and type: Route 53 and `aws_route53_record` hold them as one set (the
/// ownership TXT of every region sits at one name).
fn record_sets<'e, 'a>(entries: &'e [Entry<'a>]) -> Vec<Vec<&'e Entry<'a>>> {
    let mut sets: Vec<Vec<&Entry>> = Vec::new();
    for entry in entries {
        let same = |set: &&mut Vec<&Entry>| {
            set[0].name == entry.name && set[0].record_type() == entry.record_type()
        };
        match sets.iter_mut().find(same) {
            Some(set) => set.push(entry),
            None => sets.push(vec![entry]),
        }
    }
    sets
}

fn bind(domain: &DomainName, entries: &[Entry]) -> String {
    let mut out = format!("; trustmail records for {domain}\n");
    for entry in entries {
        let data = match entry.data {
            Data::Txt(_) => entry.presentation(),
            // Absolute names in a zone file end with a dot.
            Data::Cname(_) | Data::Mx(_) => format!("{}.", entry.presentation()),
        };
        out.push_str(&format!(
            "{}. {ZONE_FILE_TTL} IN {} {data}\n",
            entry.name,
            entry.record_type()
        ));
    }
    out
}

fn route53(domain: &DomainName, entries: &[Entry]) -> Value {
    let changes: Vec<Value> = record_sets(entries)
        .into_iter()
        .map(|set| {
            let values: Vec<Value> = set
                .iter()
                .map(|e| json!({ "Value": e.presentation() }))
                .collect();
            json!({
                "Action": "UPSERT",
                "ResourceRecordSet": {
                    "Name": set[0].name,
                    "Type": set[0].record_type(),
                    "TTL": ZONE_FILE_TTL,
                    "ResourceRecords": values,
                },
            })
        })
        .collect();
    // Route 53 takes a comment of at most 256 characters.
    let comment: String = format!("trustmail records for {domain}")
        .chars()
        .take(256)
        .collect();
    json!({ "Comment": comment, "Changes": changes })
}

fn cloudflare(entries: &[Entry]) -> Value {
    let bodies: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut body = json!({
                "type": e.record_type(),
                "name": e.name,
                "content": e.presentation(),
                "ttl": ZONE_FILE_TTL,
            });
            if let Data::Mx(exchange) = e.data {
                body["content"] = json!(exchange);
                body["priority"] = json!(MAIL_FROM_PRIORITY);
            }
            body
        })
        .collect();
    Value::Array(bodies)
}

fn terraform(domain: &DomainName, entries: &[Entry]) -> String {
    let prefix = identifier(&format!("trustmail_{domain}"));
    let mut out = format!(
        "# trustmail records for {domain}, as Terraform resources. Keep those of your DNS \
         provider\n\
         # (aws_route53_record, or cloudflare_record of the Cloudflare provider v4) and declare \
         its zone id once:\n\
         #   variable \"route53_zone_id\" {{ type = string }}\n\
         #   variable \"cloudflare_zone_id\" {{ type = string }}\n"
    );
    for set in record_sets(entries) {
        let label = if set.len() == 1 {
            set[0].label()
        } else {
            identifier(&set[0].record.kind.as_str().to_ascii_lowercase())
        };
        // A TXT value longer than 255 characters is given as strings joined by `""`.
        let records: Vec<String> = set
            .iter()
            .map(|e| match e.data {
                Data::Txt(value) => hcl_string(&txt_strings(value).join("\"\"")),
                _ => hcl_string(&e.presentation()),
            })
            .collect();
        out.push_str(&format!(
            "\nresource \"aws_route53_record\" \"{prefix}_{label}\" {{\n  \
             zone_id = var.route53_zone_id\n  \
             name    = {}\n  \
             type    = \"{}\"\n  \
             ttl     = {ZONE_FILE_TTL}\n  \
             records = [{}]\n}}\n",
            hcl_string(&set[0].name),
            set[0].record_type(),
            records.join(", "),
        ));
    }
    for entry in entries {
        let (content, priority) = match entry.data {
            Data::Mx(exchange) => (exchange.to_owned(), Some(MAIL_FROM_PRIORITY)),
            _ => (entry.presentation(), None),
        };
        out.push_str(&format!(
            "\nresource \"cloudflare_record\" \"{prefix}_{}\" {{\n  \
             zone_id  = var.cloudflare_zone_id\n  \
             name     = {}\n  \
             type     = \"{}\"\n  \
             content  = {}\n  \
             ttl      = {ZONE_FILE_TTL}\n",
            entry.label(),
            hcl_string(&entry.name),
            entry.record_type(),
            hcl_string(&content),
        ));
        if let Some(priority) = priority {
            out.push_str(&format!("  priority = {priority}\n"));
        }
        out.push_str("}\n");
    }
    out
}

/// A Terraform name: letters, digits and `_` (domain dots and region hyphens become `_`).
fn identifier(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// An HCL quoted string: `"` and `\` escaped, and `${` / `%{` doubled so that nothing in a
/// record is read as a template.
fn hcl_string(text: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' | '%' if chars.peek() == Some(&'{') => {
                out.push(c);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests;
