-- The feedback loop's first tables: an environment's suppression list, and a message's
-- recipients where their fate differs from the message's.

-- Addresses an environment no longer sends to: after a hard bounce or a complaint, or added
-- by hand. One entry per address (lowercased) and environment; never shared across them.
CREATE TABLE suppressions (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    -- BOUNCE, COMPLAINT or MANUAL.
    reason TEXT NOT NULL,
    -- The message whose feedback added it (BOUNCE, COMPLAINT).
    message_id TEXT,
    -- What the feedback said: the diagnostic of a bounce, the feedback type of a complaint.
    detail TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (environment_id, address)
);
CREATE INDEX suppressions_listed ON suppressions (environment_id, created_at);

-- A recipient of a customer message (To, then Cc) at its place in that list, which a return
-- path names. `status` is NULL while the recipient shares the message's status (QUEUED, SENT,
-- FAILED); set when it parts from it (SUPPRESSED at queueing; BOUNCED, COMPLAINED, DELAYED
-- from feedback).
CREATE TABLE message_recipients (
    message_id TEXT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    address TEXT NOT NULL,
    status TEXT,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, position)
);
