-- certpost schema 0002 (PostgreSQL): bearer tokens of the admin API. Keep in step with
-- sqlite/0002_api_tokens.sql. Only the SHA-256 of a token is stored; names are unique for good
-- (the audit actor `api:<name>` must name one token). Constraint names are mapped to
-- StoreConflictError codes in postgres.ts.

CREATE TABLE api_tokens (
  id TEXT COLLATE "C" NOT NULL,
  name TEXT COLLATE "C" NOT NULL,
  secret_hash TEXT COLLATE "C" NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin')),
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT,
  CONSTRAINT api_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT api_tokens_name_key UNIQUE (name),
  CONSTRAINT api_tokens_secret_hash_key UNIQUE (secret_hash)
);
CREATE INDEX api_tokens_created_idx ON api_tokens (created_at, id);
