-- The check sweep as a pipeline (README § DNS verification).

-- Each lease carries a fresh token; a check's results are written only while its token still
-- holds the lease, so a late result never overwrites a newer one.
ALTER TABLE email_domains ADD COLUMN check_lease_token TEXT;

-- DNS errors in a row: the re-check backs off with them.
ALTER TABLE dns_records ADD COLUMN error_streak BIGINT NOT NULL DEFAULT 0;

-- The due scan walks this index in order from a cursor (next_check_at, domain_id).
DROP INDEX dns_records_due;
CREATE INDEX dns_records_due ON dns_records (next_check_at, domain_id);
