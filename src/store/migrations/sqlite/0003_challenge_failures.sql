-- certpost schema 0003 (SQLite): failed challenge attempts per client address, for rate
-- limiting across processes. Keep in step with postgres/0003_challenge_failures.sql.

CREATE TABLE challenge_failures (
  key TEXT NOT NULL,
  at INTEGER NOT NULL
) STRICT;
CREATE INDEX challenge_failures_key_at_idx ON challenge_failures (key, at);
CREATE INDEX challenge_failures_at_idx ON challenge_failures (at);
