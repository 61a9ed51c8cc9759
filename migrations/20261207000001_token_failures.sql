-- Wrong client secrets per (client, source address), shared by every replica (README § Token
-- endpoint limits). One fixed window per pair: it starts at the first failure and holds
-- `failures` until it is a minute old; rows of ended windows are pruned.
CREATE TABLE token_failures (
    client_id TEXT NOT NULL,
    source TEXT NOT NULL,
    window_started_at BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    PRIMARY KEY (client_id, source)
);
CREATE INDEX token_failures_window ON token_failures (window_started_at);
