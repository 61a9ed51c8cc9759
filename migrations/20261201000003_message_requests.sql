-- One row per Idempotency-Key an environment sent with POST …/messages: a repeat within 24 h
-- with the same request (request_hash, SHA-256 of its JSON) answers with message_id instead of
-- sending again. Written in the transaction that queues the message, under the environment
-- row's lock.

CREATE TABLE message_requests (
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    message_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (environment_id, idempotency_key)
);
