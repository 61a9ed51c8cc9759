-- Retention (jobs/retention.rs): the indexes that let it find expired rows without scanning
-- the tables. Final states lead, so mail or deliveries that stay pending (no relay, a disabled
-- subscription) are never walked again by every pass. outbox_created already serves
-- "created_at < cutoff" alone; these serve it per status.
CREATE INDEX outbox_status_created ON outbox (status, created_at);
CREATE INDEX message_requests_created ON message_requests (created_at);
CREATE INDEX subscription_deliveries_state_created
    ON subscription_deliveries (state, created_at);
CREATE INDEX activities_recorded ON activities (recorded_at);
