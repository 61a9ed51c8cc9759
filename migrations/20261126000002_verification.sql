-- DNS verification state: what each check saw and why, and when to look again.

ALTER TABLE dns_records ADD COLUMN reason TEXT NOT NULL DEFAULT 'NOT_CHECKED';
ALTER TABLE dns_records ADD COLUMN message TEXT NOT NULL DEFAULT '';
-- JSON array of the values DNS returned.
ALTER TABLE dns_records ADD COLUMN observed TEXT NOT NULL DEFAULT '[]';
ALTER TABLE dns_records ADD COLUMN suggested TEXT;
ALTER TABLE dns_records ADD COLUMN lookups BIGINT;
ALTER TABLE dns_records ADD COLUMN created_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE dns_records ADD COLUMN last_checked_at BIGINT;
ALTER TABLE dns_records ADD COLUMN next_check_at BIGINT NOT NULL DEFAULT 0;
-- When a record that was ACTIVE was first seen missing (start of the grace period).
ALTER TABLE dns_records ADD COLUMN failing_since BIGINT;
CREATE INDEX dns_records_due ON dns_records (next_check_at);

-- Only one process checks a domain at a time.
ALTER TABLE email_domains ADD COLUMN check_lease_owner TEXT;
ALTER TABLE email_domains ADD COLUMN check_lease_until BIGINT NOT NULL DEFAULT 0;
-- The last check asked for through POST …/verification (rate limit).
ALTER TABLE email_domains ADD COLUMN forced_check_at BIGINT NOT NULL DEFAULT 0;

-- Structured details of an activity (JSON), e.g. {record, region, status}.
ALTER TABLE activities ADD COLUMN details TEXT;

-- The custom MAIL FROM domain, once set (full name, a subdomain of the trusted domain).
ALTER TABLE email_domains ADD COLUMN mail_from_domain TEXT;
