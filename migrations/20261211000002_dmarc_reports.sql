-- DMARC aggregate reports (RFC 7489 § 7.2) received at a domain's report address: one row per
-- report, one per record in it (a source IP and what receivers saw of its mail).

CREATE TABLE dmarc_reports (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL REFERENCES email_domains (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL,
    -- The reporter: its organization, contact address, and its id for the report.
    org_name TEXT NOT NULL,
    email TEXT NOT NULL,
    report_id TEXT NOT NULL,
    begin_at BIGINT NOT NULL,
    end_at BIGINT NOT NULL,
    -- The DMARC record the reporter applied: its domain and policy (none, quarantine, reject).
    policy_domain TEXT NOT NULL,
    policy TEXT NOT NULL,
    -- Messages over all the report's records, also those past the rows kept.
    messages BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    -- A report delivered twice is kept once.
    UNIQUE (domain_id, org_name, report_id)
);
CREATE INDEX dmarc_reports_domain ON dmarc_reports (domain_id, begin_at);
CREATE INDEX dmarc_reports_received ON dmarc_reports (received_at);

CREATE TABLE dmarc_report_rows (
    report_id TEXT NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    -- Empty when the reporter named none.
    source_ip TEXT NOT NULL,
    messages BIGINT NOT NULL,
    header_from TEXT NOT NULL,
    -- 1 when the receiver evaluated DKIM (SPF) as passing aligned, else 0.
    dkim_aligned BIGINT NOT NULL,
    spf_aligned BIGINT NOT NULL,
    -- What the receiver did: none, quarantine, reject.
    disposition TEXT NOT NULL,
    PRIMARY KEY (report_id, position)
);
