-- A webhook endpoint that keeps failing is paused: its subscription's deliveries are not
-- claimed before `paused_until`, so they do not each hold a worker for the whole request
-- timeout (jobs/subscriptions.rs). One row per subscription whose last attempt failed; a 2xx
-- answer, or a PUT of the subscription, deletes it. Times are unix milliseconds.
CREATE TABLE subscription_backoff (
    subscription_id TEXT PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
    -- Failed attempts in a row.
    failures BIGINT NOT NULL,
    paused_until BIGINT NOT NULL
);

-- The claim counts the deliveries leased now, per subscription and per environment, across
-- replicas.
CREATE INDEX subscription_deliveries_leased ON subscription_deliveries (leased_until);
