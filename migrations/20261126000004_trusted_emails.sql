-- Trusted sender addresses of a domain, with their emailed verification codes (hashed).

CREATE TABLE trusted_emails (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    domain_id TEXT NOT NULL REFERENCES email_domains (id) ON DELETE CASCADE,
    -- As given, with the domain part lowercased.
    email_address TEXT NOT NULL,
    -- Lowercased whole, so duplicates are found ignoring case.
    address_key TEXT NOT NULL,
    status TEXT NOT NULL,
    code_hash TEXT,
    code_sent_at BIGINT,
    code_expires_at BIGINT,
    failed_attempts BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX trusted_emails_address ON trusted_emails (domain_id, address_key);
