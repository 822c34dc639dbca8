-- certpost schema 0001 (PostgreSQL). Keep in step with sqlite/0001_init.sql: same tables, same
-- columns (postgres.test.ts compares them).
-- Times are BIGINT UTC milliseconds (exact round trip of a JS Date), bytes are BYTEA.
-- Identifiers compare and sort bytewise (COLLATE "C"), as they do in SQLite, whatever the
-- database's default collation. Unique constraints are named: postgres.ts maps SQLSTATE 23505
-- to StoreConflictError codes by these names.

CREATE TABLE certificates (
  serial TEXT COLLATE "C" NOT NULL,
  sha1 TEXT COLLATE "C" NOT NULL,
  subject TEXT NOT NULL,
  not_before BIGINT NOT NULL,
  not_after BIGINT NOT NULL,
  der BYTEA NOT NULL,
  profile TEXT NOT NULL,
  request_id TEXT,
  issued_at BIGINT NOT NULL,
  revoked_at BIGINT,
  revocation_reason SMALLINT CHECK (revocation_reason IN (0, 1, 2, 3, 4, 5, 6, 8, 9, 10)),
  CONSTRAINT certificates_pkey PRIMARY KEY (serial),
  CONSTRAINT certificates_sha1_key UNIQUE (sha1),
  CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
);
CREATE INDEX certificates_issued_idx ON certificates (issued_at DESC, serial);
CREATE INDEX certificates_subject_idx ON certificates (subject, issued_at DESC, serial);
CREATE INDEX certificates_revoked_idx ON certificates (serial, not_after) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_request_idx ON certificates (request_id);

CREATE TABLE challenges (
  id TEXT COLLATE "C" NOT NULL,
  secret_hash TEXT COLLATE "C" NOT NULL,
  profile TEXT NOT NULL,
  subject TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  CONSTRAINT challenges_pkey PRIMARY KEY (id),
  CONSTRAINT challenges_secret_hash_key UNIQUE (secret_hash)
);
CREATE INDEX challenges_expires_idx ON challenges (expires_at);

CREATE TABLE requests (
  id TEXT COLLATE "C" NOT NULL,
  transaction_id TEXT COLLATE "C" NOT NULL,
  subject TEXT NOT NULL,
  profile TEXT NOT NULL,
  csr BYTEA NOT NULL,
  signer_certificate BYTEA,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issued')),
  created_at BIGINT NOT NULL,
  decided_at BIGINT,
  decided_by TEXT,
  certificate_serial TEXT COLLATE "C",
  CONSTRAINT requests_pkey PRIMARY KEY (id),
  CONSTRAINT requests_transaction_id_key UNIQUE (transaction_id)
);
CREATE INDEX requests_status_idx ON requests (status, created_at, id);
CREATE INDEX requests_created_idx ON requests (created_at, id);

CREATE TABLE audit (
  id BIGSERIAL PRIMARY KEY,
  at BIGINT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details JSONB NOT NULL
);
CREATE INDEX audit_at_idx ON audit (at DESC, id DESC);
CREATE INDEX audit_action_idx ON audit (action, at DESC, id DESC);
