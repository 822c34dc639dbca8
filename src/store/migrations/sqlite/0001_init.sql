-- certpost schema 0001 (SQLite). Keep in step with postgres/0001_init.sql: same tables, same
-- columns (migrations.test in sqlite.test.ts and postgres.test.ts compare them).
-- Times are INTEGER UTC milliseconds, bytes are BLOB (src/store/types.ts).
-- No foreign keys between requests and certificates: the contract lets a certificate name a
-- request that was never held (requestId) and lets markIssued run before the insert.

CREATE TABLE certificates (
  serial TEXT NOT NULL PRIMARY KEY,
  sha1 TEXT NOT NULL,
  subject TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  der BLOB NOT NULL,
  profile TEXT NOT NULL,
  request_id TEXT,
  issued_at INTEGER NOT NULL,
  revoked_at INTEGER,
  revocation_reason INTEGER CHECK (revocation_reason IN (0, 1, 2, 3, 4, 5, 6, 8, 9, 10)),
  CONSTRAINT certificates_sha1_key UNIQUE (sha1),
  CHECK ((revoked_at IS NULL) = (revocation_reason IS NULL))
) STRICT;
CREATE INDEX certificates_issued_idx ON certificates (issued_at DESC, serial);
CREATE INDEX certificates_subject_idx ON certificates (subject, issued_at DESC, serial);
CREATE INDEX certificates_revoked_idx ON certificates (serial, not_after) WHERE revoked_at IS NOT NULL;
CREATE INDEX certificates_request_idx ON certificates (request_id);

CREATE TABLE challenges (
  id TEXT NOT NULL PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  profile TEXT NOT NULL,
  subject TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER,
  CONSTRAINT challenges_secret_hash_key UNIQUE (secret_hash)
) STRICT;
CREATE INDEX challenges_expires_idx ON challenges (expires_at);

CREATE TABLE requests (
  id TEXT NOT NULL PRIMARY KEY,
  transaction_id TEXT NOT NULL,
  subject TEXT NOT NULL,
  profile TEXT NOT NULL,
  csr BLOB NOT NULL,
  signer_certificate BLOB,
  status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'issued')),
  created_at INTEGER NOT NULL,
  decided_at INTEGER,
  decided_by TEXT,
  certificate_serial TEXT,
  CONSTRAINT requests_transaction_id_key UNIQUE (transaction_id)
) STRICT;
CREATE INDEX requests_status_idx ON requests (status, created_at, id);
CREATE INDEX requests_created_idx ON requests (created_at, id);

CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details TEXT NOT NULL
) STRICT;
CREATE INDEX audit_at_idx ON audit (at DESC, id DESC);
CREATE INDEX audit_action_idx ON audit (action, at DESC, id DESC);
