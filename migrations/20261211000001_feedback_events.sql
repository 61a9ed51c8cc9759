-- The feedback loop's events: what a relay, a bounce (DSN) or a complaint (ARF) said about one
-- recipient of one message; and the domain that recipients' return paths (VERP) are on.

-- Set for customer mail with a return path domain (its MAIL FROM domain, or the configured
-- default bounce domain): each recipient is then sent in a transaction of its own, from
-- `b-<message>-<position>-<tag>@<return_path_domain>`. NULL: one transaction, `envelope_from`.
ALTER TABLE outbox ADD COLUMN return_path_domain TEXT;

CREATE TABLE feedback_events (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- No foreign key: an event outlives its message (retention.feedback_days, not messages_days).
    message_id TEXT NOT NULL,
    -- The recipient's place among the message's recipients (message_recipients.position).
    position BIGINT NOT NULL,
    -- BOUNCE (hard), DELAY (soft) or COMPLAINT.
    kind TEXT NOT NULL,
    -- RELAY (the relay refused the recipient), DSN or ARF.
    source TEXT NOT NULL,
    -- A bounce's enhanced status code (5.1.1), a complaint's feedback type (abuse).
    status TEXT,
    -- The remote server's words: a DSN's Diagnostic-Code, the relay's reply.
    diagnostic TEXT,
    reporting_mta TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX feedback_events_message ON feedback_events (message_id, position);
CREATE INDEX feedback_events_created ON feedback_events (created_at);
