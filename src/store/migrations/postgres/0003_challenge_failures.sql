-- certpost schema 0003 (PostgreSQL): failed challenge attempts per client address, for rate
-- limiting across processes and servers. Keep in step with sqlite/0003_challenge_failures.sql.

CREATE TABLE challenge_failures (
  key TEXT COLLATE "C" NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX challenge_failures_key_at_idx ON challenge_failures (key, at);
CREATE INDEX challenge_failures_at_idx ON challenge_failures (at);
