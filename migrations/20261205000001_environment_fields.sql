-- Environments as PingOne answers them, and their populations (docs/ENVIRONMENTS.md).

-- SANDBOX or PRODUCTION.
ALTER TABLE environments ADD COLUMN environment_type TEXT NOT NULL DEFAULT 'SANDBOX';
ALTER TABLE environments ADD COLUMN description TEXT;
-- license.id as sent; NULL answers the configured default (environments.default_license_id).
ALTER TABLE environments ADD COLUMN license_id TEXT;
-- The bill of materials as JSON in its wire form; NULL (environments made before this
-- migration) answers the default, PING_ONE_BASE alone.
ALTER TABLE environments ADD COLUMN bill_of_materials TEXT;
ALTER TABLE environments ADD COLUMN bill_of_materials_updated_at BIGINT NOT NULL DEFAULT 0;
UPDATE environments SET bill_of_materials_updated_at = created_at;

CREATE TABLE populations (
    id TEXT PRIMARY KEY,
    environment_id TEXT NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    -- 1 for the environment's default population, else 0.
    is_default BIGINT NOT NULL DEFAULT 0,
    -- JSON array of strings, as sent; NULL when not sent.
    alternative_identifiers TEXT,
    preferred_language TEXT,
    password_policy_id TEXT,
    theme_id TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX populations_name ON populations (environment_id, name);
-- At most one default per environment, behind the writes serialised on the environment row.
CREATE UNIQUE INDEX populations_default ON populations (environment_id) WHERE is_default = 1;
-- Environments made before this migration get their default population at start-up
-- (store/populations.rs, create_missing_default_populations): portable SQL cannot make a UUID.
