-- The durable outbox: every message trustmail sends is a row here first, delivered by a job.
-- Portable subset (TEXT/BIGINT), as 20261126000001_core.sql; times are unix milliseconds.

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    -- NULL for system mail that belongs to no environment. Deleting an environment deletes
    -- everything in it, its queued and sent mail included.
    environment_id TEXT REFERENCES environments (id) ON DELETE CASCADE,
    -- 'system' for the [mail] relay, 'region:<name>' for a region's relay.
    route TEXT NOT NULL,
    envelope_from TEXT NOT NULL,
    envelope_to TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- The full RFC 5322 text, exactly as it goes over SMTP.
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    leased_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created_at);
CREATE INDEX outbox_environment ON outbox (environment_id);
