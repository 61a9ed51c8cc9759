-- One key pair per DKIM token: the token is the selector, published at <selector>.<region's dkim_zone>.
-- Per domain and region one key signs, one is published and waiting, one is retired (still published,
-- so mail signed just before a rotation verifies).
CREATE TABLE dkim_keys (
    domain_id TEXT NOT NULL REFERENCES email_domains (id) ON DELETE CASCADE,
    region TEXT NOT NULL,
    position BIGINT NOT NULL,
    selector TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    -- base64 of the public key as DNS publishes it (p=): SubjectPublicKeyInfo for RSA, raw for Ed25519.
    public_key TEXT NOT NULL,
    -- The private key, sealed with the master key (purpose "dkim-private-key").
    sealed_private_key TEXT NOT NULL,
    role TEXT NOT NULL,
    role_since BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (domain_id, region, position)
);
CREATE UNIQUE INDEX dkim_keys_selector ON dkim_keys (selector);
CREATE INDEX dkim_keys_region ON dkim_keys (region);
