-- certpost schema 0006 (PostgreSQL): the certificates each device reported having (MDM
-- inventory). Keep in step with sqlite/0006_inventory.sql.

CREATE TABLE device_certificates (
  device_id TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
  uri TEXT COLLATE "C" NOT NULL,
  thumbprint TEXT COLLATE "C" NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  not_after BIGINT NOT NULL,
  der BYTEA NOT NULL,
  seen_at BIGINT NOT NULL,
  CONSTRAINT device_certificates_pkey PRIMARY KEY (device_id, uri)
);
CREATE INDEX device_certificates_thumbprint_idx ON device_certificates (thumbprint);
