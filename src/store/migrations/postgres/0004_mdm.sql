-- certpost schema 0004 (PostgreSQL): Windows MDM (MS-MDE2 enrollment, MS-MDM sessions). Keep in
-- step with sqlite/0004_mdm.sql. Enrollment tokens are stored as the SHA-256 of the token only.
-- Constraint names are mapped to StoreConflictError codes in postgres.ts.

CREATE TABLE enrollment_tokens (
  id TEXT COLLATE "C" NOT NULL,
  secret_hash TEXT COLLATE "C" NOT NULL,
  user_name TEXT,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  uses_left INTEGER NOT NULL CHECK (uses_left >= 0),
  CONSTRAINT enrollment_tokens_pkey PRIMARY KEY (id),
  CONSTRAINT enrollment_tokens_secret_hash_key UNIQUE (secret_hash)
);

CREATE TABLE devices (
  id TEXT COLLATE "C" NOT NULL,
  hardware_id TEXT NOT NULL,
  name TEXT NOT NULL,
  user_name TEXT,
  certificate_serial TEXT COLLATE "C" NOT NULL,
  enrolled_at BIGINT NOT NULL,
  last_seen_at BIGINT,
  unenrolled_at BIGINT,
  auth_hash TEXT,
  auth_nonce TEXT,
  info TEXT NOT NULL,
  CONSTRAINT devices_pkey PRIMARY KEY (id)
);
CREATE INDEX devices_enrolled_idx ON devices (enrolled_at, id);
CREATE INDEX devices_certificate_idx ON devices (certificate_serial);
CREATE INDEX devices_hardware_idx ON devices (hardware_id, enrolled_at);

CREATE TABLE device_commands (
  seq BIGSERIAL NOT NULL,
  id TEXT COLLATE "C" NOT NULL,
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
  payload TEXT NOT NULL,
  origin TEXT,
  created_at BIGINT NOT NULL,
  sent_at BIGINT,
  sent_session TEXT,
  sent_count INTEGER NOT NULL DEFAULT 0,
  status INTEGER,
  results TEXT,
  completed_at BIGINT,
  CONSTRAINT device_commands_pkey PRIMARY KEY (seq),
  CONSTRAINT device_commands_id_key UNIQUE (id)
);
CREATE INDEX device_commands_open_idx ON device_commands (device_id, completed_at, seq);
