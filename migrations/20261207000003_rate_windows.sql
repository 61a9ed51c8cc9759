-- Sliding-window rate limits shared by every replica (README § Limits): one row per
-- (scope, subject), holding the current fixed window's count and the previous window's, so the
-- table holds one row per throttled environment and scope however long it runs.
CREATE TABLE rate_windows (
    scope TEXT NOT NULL,
    subject TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    count BIGINT NOT NULL,
    previous_count BIGINT NOT NULL,
    PRIMARY KEY (scope, subject)
);
