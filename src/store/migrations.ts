/**
 * The schema, as numbered SQL migrations per dialect (`migrations/<dialect>/NNNN_name.sql`), and
 * the runner both backends call at open time. Both dialects carry the same numbers and the same
 * tables and columns (style.md principle 15: the tests compare them), so a database of either
 * kind at version N has the same logical model, described once here by {@link Schema}.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { sql, type ColumnType, type Generated, type Kysely } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

/** Times are UTC milliseconds in every table, bytes are BLOB/BYTEA. */
export interface CertificatesTable {
  serial: string;
  sha1: string;
  subject: string;
  not_before: number;
  not_after: number;
  der: Uint8Array;
  profile: string;
  request_id: string | null;
  issued_at: number;
  revoked_at: number | null;
  revocation_reason: number | null;
  /** `\n`-separated `type:value` lines with a `\n` before the first and after the last; '' for none. */
  alt_names: ColumnType<string, string | undefined, string>;
}

export interface ChallengesTable {
  id: string;
  secret_hash: string;
  profile: string;
  subject: string | null;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface RequestsTable {
  id: string;
  transaction_id: string;
  subject: string;
  profile: string;
  csr: Uint8Array;
  signer_certificate: Uint8Array | null;
  status: string;
  created_at: number;
  decided_at: number | null;
  decided_by: string | null;
  certificate_serial: string | null;
}

export interface AuditTable {
  id: Generated<number>;
  at: number;
  actor: string;
  action: string;
  target: string;
  /** JSON text in; SQLite returns the text, PostgreSQL (JSONB) the parsed value. */
  details: ColumnType<unknown, string, never>;
}

export interface ApiTokensTable {
  id: string;
  name: string;
  secret_hash: string;
  role: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface ChallengeFailuresTable {
  key: string;
  at: number;
}

export interface EnrollmentTokensTable {
  id: string;
  secret_hash: string;
  user_name: string | null;
  created_at: number;
  expires_at: number;
  uses_left: number;
}

export interface DevicesTable {
  id: string;
  hardware_id: string;
  name: string;
  user_name: string | null;
  certificate_serial: string;
  enrolled_at: number;
  last_seen_at: number | null;
  unenrolled_at: number | null;
  auth_hash: string | null;
  auth_nonce: string | null;
  /** JSON text of a string → string map. */
  info: string;
}

export interface DeviceCommandsTable {
  /** Queue order; BIGSERIAL in PostgreSQL, which pg returns as a string. */
  seq: ColumnType<number | string, never, never>;
  id: string;
  device_id: string;
  payload: string;
  origin: string | null;
  created_at: number;
  sent_at: number | null;
  sent_session: string | null;
  sent_count: ColumnType<number, number | undefined, number>;
  status: number | null;
  results: string | null;
  completed_at: number | null;
}

export interface MdmProfilesTable {
  id: string;
  name: string;
  kind: string;
  settings: string;
  created_at: number;
  updated_at: number;
}

export interface MdmAssignmentsTable {
  profile_id: string;
  target_kind: string;
  target: string;
  created_at: number;
}

export interface DeviceProfilesTable {
  device_id: string;
  profile_id: string;
  state: string;
  detail: string;
  updated_at: number;
}

export interface DeviceCertificatesTable {
  device_id: string;
  uri: string;
  thumbprint: string;
  subject: string;
  issuer: string;
  not_after: number;
  der: Uint8Array;
  seen_at: number;
}

export interface KeyEscrowTable {
  serial: string;
  pfx: Uint8Array;
  password_envelope: Uint8Array;
  created_at: number;
}

export interface UsersTable {
  id: string;
  username: string;
  email: string | null;
  display_name: string;
  password_hash: string;
  role: string;
  created_at: number;
  updated_at: number;
  disabled_at: number | null;
}

export interface WebSessionsTable {
  token_hash: string;
  user_id: string;
  csrf_token: string;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  expires_at: number;
}

export interface DownloadLinksTable {
  token_hash: string;
  user_id: string;
  kind: string;
  target: string;
  created_at: number;
  expires_at: number;
  used_at: number | null;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: number;
}

/** The logical model shared by both dialects (Kysely's database type). */
export interface Schema {
  certificates: CertificatesTable;
  challenges: ChallengesTable;
  requests: RequestsTable;
  audit: AuditTable;
  api_tokens: ApiTokensTable;
  challenge_failures: ChallengeFailuresTable;
  enrollment_tokens: EnrollmentTokensTable;
  devices: DevicesTable;
  device_commands: DeviceCommandsTable;
  mdm_profiles: MdmProfilesTable;
  mdm_assignments: MdmAssignmentsTable;
  device_profiles: DeviceProfilesTable;
  device_certificates: DeviceCertificatesTable;
  key_escrow: KeyEscrowTable;
  users: UsersTable;
  web_sessions: WebSessionsTable;
  download_links: DownloadLinksTable;
  schema_migrations: SchemaMigrationsTable;
}

export interface Migration {
  /** The number in the file name; the same number means the same change in both dialects. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

/** The migrations shipped for `dialect`, in order. Throws on a malformed or repeated number. */
export function listMigrations(dialect: Dialect): Migration[] {
  const dir = new URL(`./migrations/${dialect}/`, import.meta.url);
  const out: Migration[] = [];
  for (const file of readdirSync(dir).toSorted()) {
    const m = FILE.exec(file);
    if (!m) throw new Error(`migrations/${dialect}/${file}: not named NNNN_name.sql`);
    const version = Number(m[1]);
    if (out.some((x) => x.version === version))
      throw new Error(`migrations/${dialect}: version ${version} appears twice`);
    out.push({ version, name: m[2]!, sql: readFileSync(new URL(file, dir), 'utf8') });
  }
  return out;
}

/**
 * Splits a migration file into statements: one per `;` at the end of a line, `--` comments
 * dropped. Our migration files keep to that shape (no `;` inside literals or bodies), because
 * a prepared statement (node:sqlite, Kysely) runs exactly one statement.
 */
export function splitStatements(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/--.*$/, ''))
    .join('\n')
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * Key of the PostgreSQL advisory lock that serialises concurrent openers: ASCII "cpmi". SQLite
 * needs none: the transaction starts with BEGIN IMMEDIATE (sqlite.ts), which takes the write lock.
 */
const PG_MIGRATION_LOCK = 0x63706d69;

/**
 * Brings the database to the newest version in one transaction: creates `schema_migrations`
 * when missing, applies each migration not recorded there, in order, and records it. Either
 * every pending migration lands or none does. Returns the versions applied (empty when the
 * database was already up to date). Safe when several processes open the same database at once.
 */
export async function migrate(db: Kysely<Schema>, dialect: Dialect): Promise<number[]> {
  const migrations = listMigrations(dialect);
  return await db.transaction().execute(async (tx) => {
    if (dialect === 'postgres')
      await sql`SELECT pg_advisory_xact_lock(${PG_MIGRATION_LOCK})`.execute(tx);
    await sql`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER NOT NULL PRIMARY KEY,
      name TEXT NOT NULL,
      applied_at BIGINT NOT NULL
    )`.execute(tx);
    const done = new Set(
      (await tx.selectFrom('schema_migrations').select('version').execute()).map((r) => r.version),
    );
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      for (const statement of splitStatements(m.sql)) await sql.raw(statement).execute(tx);
      await tx
        .insertInto('schema_migrations')
        .values({ version: m.version, name: m.name, applied_at: Date.now() })
        .execute();
      applied.push(m.version);
    }
    return applied;
  });
}

/** Table name → sorted column names, from the live database: what the schema tests compare. */
export async function describeSchema(
  db: Kysely<Schema>,
  dialect: Dialect,
): Promise<Record<string, string[]>> {
  const rows =
    dialect === 'postgres'
      ? (
          await sql<{ table_name: string; column_name: string }>`
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema()`.execute(db)
        ).rows
      : (
          await sql<{ table_name: string; column_name: string }>`
            SELECT m.name AS table_name, p.name AS column_name
            FROM sqlite_schema AS m, pragma_table_info(m.name) AS p
            WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'`.execute(db)
        ).rows;
  const out: Record<string, string[]> = {};
  for (const r of rows) (out[r.table_name] ??= []).push(r.column_name);
  for (const cols of Object.values(out)) cols.sort();
  return out;
}
