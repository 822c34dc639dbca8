-- certpost schema 0004 (SQLite): Windows MDM (MS-MDE2 enrollment, MS-MDM sessions). Keep in step
-- with postgres/0004_mdm.sql. Enrollment tokens are stored as the SHA-256 of the token only.

CREATE TABLE enrollment_tokens (
  id TEXT NOT NULL PRIMARY KEY,
  secret_hash TEXT NOT NULL,
  user_name TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
  CONSTRAINT enrollment_tokens_secret_hash_key UNIQUE (secret_hash)
) STRICT;

CREATE TABLE devices (
  id TEXT NOT NULL PRIMARY KEY,
  hardware_id TEXT NOT NULL,
  name TEXT NOT NULL,
  user_name TEXT,
  certificate_serial TEXT NOT NULL,
  enrolled_at INTEGER NOT NULL,
  last_seen_at INTEGER,
  unenrolled_at INTEGER,
  auth_hash TEXT,
  auth_nonce TEXT,
  info TEXT NOT NULL
) STRICT;
CREATE INDEX devices_enrolled_idx ON devices (enrolled_at, id);
CREATE INDEX devices_certificate_idx ON devices (certificate_serial);
CREATE INDEX devices_hardware_idx ON devices (hardware_id, enrolled_at);

CREATE TABLE device_commands (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  device_id TEXT NOT NULL REFERENCES devices (id),
  payload TEXT NOT NULL,
  origin TEXT,
  created_at INTEGER NOT NULL,
  sent_at INTEGER,
  sent_session TEXT,
  sent_count INTEGER NOT NULL DEFAULT 0,
  status INTEGER,
  results TEXT,
  completed_at INTEGER,
  CONSTRAINT device_commands_id_key UNIQUE (id)
) STRICT;
CREATE INDEX device_commands_open_idx ON device_commands (device_id, completed_at, seq);
