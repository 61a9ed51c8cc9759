-- Portable subset of SQL: runs unchanged on SQLite and PostgreSQL through sqlx's Any driver.
-- Ids are UUID text; times are unix milliseconds.

CREATE TABLE bootstrap (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE environments (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region TEXT NOT NULL,
    email_token TEXT NOT NULL,
    -- Bumped to take the row lock that serialises limit checks inside the environment.
    lock_version BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX clients_environment ON clients (environment_id);

CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE email_domains (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    -- Canonical lowercase A-labels, so a plain unique index is case-insensitive.
    domain_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX email_domains_name ON email_domains (environment_id, domain_name);

CREATE TABLE dns_records (
    domain_id TEXT NOT NULL REFERENCES email_domains (id) ON DELETE CASCADE,
    record TEXT NOT NULL,
    region TEXT NOT NULL,
    position BIGINT NOT NULL,
    record_key TEXT NOT NULL,
    record_type TEXT NOT NULL,
    record_value TEXT NOT NULL,
    status TEXT NOT NULL,
    PRIMARY KEY (domain_id, record, region, position)
);

CREATE TABLE activities (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL,
    action_type TEXT NOT NULL,
    actor_client_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    resource_name TEXT NOT NULL,
    result_status TEXT NOT NULL,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX activities_environment_time ON activities (environment_id, recorded_at);
