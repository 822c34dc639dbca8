-- certpost schema 0005 (SQLite): MDM certificate profiles, their assignments, and what each
-- device has received. Keep in step with postgres/0005_mdm_profiles.sql.

CREATE TABLE mdm_profiles (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('trusted', 'scep', 'pfx')),
  settings TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  CONSTRAINT mdm_profiles_name_key UNIQUE (name)
) STRICT;

CREATE TABLE mdm_assignments (
  profile_id TEXT NOT NULL REFERENCES mdm_profiles (id),
  target_kind TEXT NOT NULL CHECK (target_kind IN ('device', 'user', 'all')),
  target TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  CONSTRAINT mdm_assignments_pkey PRIMARY KEY (profile_id, target_kind, target)
) STRICT;

CREATE TABLE device_profiles (
  device_id TEXT NOT NULL REFERENCES devices (id),
  profile_id TEXT NOT NULL REFERENCES mdm_profiles (id),
  state TEXT NOT NULL CHECK (state IN ('queued', 'installing', 'installed', 'failed', 'removing', 'removed')),
  detail TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  CONSTRAINT device_profiles_pkey PRIMARY KEY (device_id, profile_id)
) STRICT;
CREATE INDEX device_profiles_profile_idx ON device_profiles (profile_id, state);
