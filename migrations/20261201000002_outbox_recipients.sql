-- `outbox.envelope_to` now holds every recipient, one per line (rows written before hold one
-- address, which reads as a list of one). The relay's reply is kept on delivery, and the
-- delivery job's claim reads due rows per route.

ALTER TABLE outbox ADD COLUMN relay_reply TEXT;
CREATE INDEX outbox_route_due ON outbox (route, status, next_attempt_at);
