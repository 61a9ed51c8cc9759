-- Clients get a name (PingOne's worker applications have one); clients made before are named
-- after their id.
ALTER TABLE clients ADD COLUMN name TEXT NOT NULL DEFAULT '';
UPDATE clients SET name = id WHERE name = '';

-- Deleted clients whose tokens may still be unexpired. Every replica polls this (at most once a
-- second) and refuses their tokens; rows older than a token's lifetime are pruned.
CREATE TABLE client_revocations (
    client_id TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX client_revocations_time ON client_revocations (revoked_at);
