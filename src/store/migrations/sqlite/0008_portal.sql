-- certpost schema 0008 (SQLite): the web portal. Keep in step with postgres/0008_portal.sql.
-- users: people who sign in to the portal; the password is kept only as an scrypt hash string
-- that carries its own salt and parameters. web_sessions and download_links keep only the
-- SHA-256 of their tokens. certificates.alt_names indexes each certificate's subject
-- alternative names ("type:value" lines) for search and for "my certificates"; certificates
-- recorded before this migration have none.

CREATE TABLE users (
  id TEXT NOT NULL PRIMARY KEY,
  username TEXT NOT NULL,
  email TEXT,
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  disabled_at INTEGER,
  CONSTRAINT users_username_key UNIQUE (username)
) STRICT;

CREATE TABLE web_sessions (
  token_hash TEXT NOT NULL PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  idle_expires_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

CREATE TABLE download_links (
  token_hash TEXT NOT NULL PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id),
  kind TEXT NOT NULL CHECK (kind IN ('pfx')),
  target TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
) STRICT;
CREATE INDEX download_links_expires_idx ON download_links (expires_at);

ALTER TABLE certificates ADD COLUMN alt_names TEXT NOT NULL DEFAULT '';
CREATE INDEX certificates_not_after_idx ON certificates (not_after);
