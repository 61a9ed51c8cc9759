-- A message waiting in the outbox is QUEUED, the name the API and the CLI show: one status
-- name everywhere. Rows written as PENDING before become QUEUED. Upgrade every replica at
-- once: a replica still on the earlier build would leave QUEUED rows unsent until it is.
UPDATE outbox SET status = 'QUEUED' WHERE status = 'PENDING';
