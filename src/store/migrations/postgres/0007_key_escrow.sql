-- certpost schema 0007 (PostgreSQL): escrowed keys of server-generated identities (MDM PFX
-- profiles). Keep in step with sqlite/0007_key_escrow.sql. The PFX is protected by its
-- password, and the password is stored only encrypted (CMS) to the CA: recovering a key needs
-- the CA's private key.

CREATE TABLE key_escrow (
  serial TEXT COLLATE "C" NOT NULL,
  pfx BYTEA NOT NULL,
  password_envelope BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  CONSTRAINT key_escrow_pkey PRIMARY KEY (serial)
);
