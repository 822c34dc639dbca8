-- certpost schema 0007 (SQLite): escrowed keys of server-generated identities (MDM PFX
-- profiles). Keep in step with postgres/0007_key_escrow.sql. The PFX is protected by its
-- password, and the password is stored only encrypted (CMS) to the CA: recovering a key needs
-- the CA's private key.

CREATE TABLE key_escrow (
  serial TEXT NOT NULL PRIMARY KEY,
  pfx BLOB NOT NULL,
  password_envelope BLOB NOT NULL,
  created_at INTEGER NOT NULL
) STRICT;
