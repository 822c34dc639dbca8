-- certpost schema 0008 (PostgreSQL): the web portal. Keep in step with sqlite/0008_portal.sql.
-- users: people who sign in to the portal; the password is kept only as an scrypt hash string
-- that carries its own salt and parameters. web_sessions and download_links keep only the
-- SHA-256 of their tokens. certificates.alt_names indexes each certificate's subject
-- alternative names ("type:value" lines) for search and for "my certificates"; certificates
-- recorded before this migration have none.

CREATE TABLE users (
  id TEXT COLLATE "C" NOT NULL,
  username TEXT COLLATE "C" NOT NULL,
  email TEXT,
  display_name TEXT NOT NULL,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  disabled_at BIGINT,
  CONSTRAINT users_pkey PRIMARY KEY (id),
  CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE web_sessions (
  token_hash TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
  csrf_token TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  idle_expires_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  CONSTRAINT web_sessions_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX web_sessions_user_idx ON web_sessions (user_id);
CREATE INDEX web_sessions_expires_idx ON web_sessions (expires_at);

CREATE TABLE download_links (
  token_hash TEXT COLLATE "C" NOT NULL,
  user_id TEXT COLLATE "C" NOT NULL REFERENCES users (id),
  kind TEXT NOT NULL CHECK (kind IN ('pfx')),
  target TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  CONSTRAINT download_links_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX download_links_expires_idx ON download_links (expires_at);

ALTER TABLE certificates ADD COLUMN alt_names TEXT NOT NULL DEFAULT '';
CREATE INDEX certificates_not_after_idx ON certificates (not_after);
