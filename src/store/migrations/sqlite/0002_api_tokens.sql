-- certpost schema 0002 (SQLite): bearer tokens of the admin API. Keep in step with
-- postgres/0002_api_tokens.sql. Only the SHA-256 of a token is stored; names are unique for good
-- (the audit actor `api:<name>` must name one token).

CREATE TABLE api_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  secret_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin')),
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER,
  CONSTRAINT api_tokens_name_key UNIQUE (name),
  CONSTRAINT api_tokens_secret_hash_key UNIQUE (secret_hash)
) STRICT;
CREATE INDEX api_tokens_created_idx ON api_tokens (created_at, id);
