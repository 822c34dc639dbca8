-- certpost schema 0006 (SQLite): the certificates each device reported having (MDM inventory).
-- Keep in step with postgres/0006_inventory.sql.

CREATE TABLE device_certificates (
  device_id TEXT NOT NULL REFERENCES devices (id),
  uri TEXT NOT NULL,
  thumbprint TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  not_after INTEGER NOT NULL,
  der BLOB NOT NULL,
  seen_at INTEGER NOT NULL,
  CONSTRAINT device_certificates_pkey PRIMARY KEY (device_id, uri)
) STRICT;
CREATE INDEX device_certificates_thumbprint_idx ON device_certificates (thumbprint);
