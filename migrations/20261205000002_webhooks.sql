-- Webhooks in PingOne's subscription shape, and their durable deliveries.
-- Portable subset (TEXT/BIGINT), as 20261126000001_core.sql; times are unix milliseconds;
-- booleans are 0 or 1.

CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    url TEXT NOT NULL,
    -- The endpoint's headers as a JSON object, sealed with the master key (they usually carry
    -- the endpoint's own credentials).
    sealed_headers TEXT NOT NULL,
    format TEXT NOT NULL,
    verify_tls BIGINT NOT NULL,
    -- The signing secret (`whsec_…`), sealed with the master key: it must be read back to sign.
    sealed_secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_environment ON subscriptions (environment_id, created_at);

-- `filterOptions.includedActionTypes`, one row each, in the order sent. The environment is
-- repeated so that recording an activity finds its subscriptions from one index.
CREATE TABLE subscription_action_types (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    environment_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (subscription_id, action_type)
);
CREATE INDEX subscription_action_types_match
    ON subscription_action_types (environment_id, action_type);

-- One row per (subscription, activity) to POST: inserted in the transaction that records the
-- activity, delivered by jobs/subscriptions.rs under a lease.
CREATE TABLE subscription_deliveries (
    subscription_id TEXT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    activity_id TEXT NOT NULL REFERENCES activities (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner TEXT,
    leased_until BIGINT,
    -- The endpoint's last HTTP status, or the last error when there was no answer.
    last_status BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT,
    PRIMARY KEY (subscription_id, activity_id)
);
CREATE INDEX subscription_deliveries_due ON subscription_deliveries (state, next_attempt_at);
CREATE INDEX subscription_deliveries_newest
    ON subscription_deliveries (subscription_id, created_at);
CREATE INDEX subscription_deliveries_activity ON subscription_deliveries (activity_id);
