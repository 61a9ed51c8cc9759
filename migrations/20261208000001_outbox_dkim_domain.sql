-- Customer mail is DKIM-signed at delivery (jobs/outbox.rs), with the key that signs for its
-- domain in its route's region at that moment, not when it is queued: two rotations while a
-- message waits would leave it signed by a key that is published nowhere any more. The column
-- names the signing domain. It is NULL for system mail, and for customer mail queued before
-- this migration, whose stored text is already signed and is sent as stored.
-- No foreign key: a message whose domain is deleted must fail at delivery, not lose its domain
-- and go out unsigned.
ALTER TABLE outbox ADD COLUMN dkim_domain_id TEXT;
