/**
 * PostgreSQL backend: several server processes share one database (design.md §4). Kysely's
 * PostgresDialect over a `pg` pool. Times are BIGINT UTC milliseconds (read back as numbers by
 * the pool's int8 parser: every millisecond time and audit id is far below 2^53), bytes BYTEA,
 * audit details JSONB. Concurrency rests on single statements (unique constraints, `UPDATE …
 * WHERE … RETURNING`), so nothing here needs more than READ COMMITTED.
 */
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { migrate, type Schema } from './migrations.ts';
import { statementName } from './precompiled.ts';
import { sqlStore, type SqlDialect } from './sql-roles.ts';
import { StoreConflictError, StoreUnavailableError, type Store } from './types.ts';

/** int8 (BIGINT, BIGSERIAL) as a JS number; pg's default is a string. */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 && format !== 'binary'
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * pg's client, but a precompiled query's text (precompiled.ts) runs as a named prepared
 * statement: parsed and planned once per connection, then only bound and executed. Kysely
 * passes every query as text and values, which pg sends unnamed, planned again each time.
 */
class PreparingClient extends pg.Client {
  // pg's `query` is overloaded; Kysely calls the (text, values) form.
  override query(...args: unknown[]): never {
    const [text, values] = args;
    const name = typeof text === 'string' ? statementName(text) : undefined;
    const call = super.query as (...a: unknown[]) => never;
    return name && Array.isArray(values) && args.length === 2
      ? call.call(this, { name, text, values })
      : call.apply(this, args);
  }
}

/**
 * A Kysely instance on the PostgreSQL database at `connectionString`, schema migrated. Exposed
 * for the schema tests; the application uses {@link openPostgresStore}.
 */
export async function openPostgresKysely(connectionString: string): Promise<Kysely<Schema>> {
  const pool = new pg.Pool({ connectionString, types, Client: PreparingClient });
  // An idle pooled connection that the server drops (a restart, a failover, an idle timeout)
  // is an 'error' event on the pool; unhandled, it would end the process. The pool has already
  // discarded that client and the next query opens a new one; queries that fail meanwhile
  // reject on their own path, where the caller reports them.
  pool.on('error', () => undefined);
  // The same for a connection that drops while checked out between two statements (pg-pool
  // takes its own listener off a client it lends): the client is marked broken, the statement
  // that uses it next rejects, and the pool discards it when it comes back.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrate(db, 'postgres');
  } catch (e) {
    await db.destroy();
    throw unreachable(connectionString, e);
  }
  return db;
}

/** Connection and login failures of the first use, as one line that names no password. */
const UNREACHABLE: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'nothing listens there',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name does not resolve',
  ETIMEDOUT: 'the connection timed out',
  ECONNRESET: 'the connection was reset',
  '28P01': 'the password was refused',
  '28000': 'the login was refused',
  '3D000': 'the database does not exist',
};

function unreachable(connectionString: string, e: unknown): unknown {
  const code = (e as { code?: string }).code;
  const why = code !== undefined ? UNREACHABLE[code] : undefined;
  if (why === undefined) return e;
  // The place without credentials; a URL pg accepted but URL cannot parse is named generically.
  let where = 'the configured database';
  try {
    const u = new URL(connectionString);
    where = `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    // keep the generic name: never echo a connection string, it may hold a password
  }
  return new StoreUnavailableError(
    'ERR_STORE_UNREACHABLE',
    `cannot reach PostgreSQL at ${where}: ${why}`,
    { cause: e },
  );
}

/** Opens (migrating when needed) the PostgreSQL store at `connectionString` (`postgres://…`). */
export async function openPostgresStore(connectionString: string): Promise<Store> {
  const db = await openPostgresKysely(connectionString);
  return { ...sqlStore(db, dialect), close: () => db.destroy() };
}

/** Which contract code each named unique constraint (migrations/postgres/*.sql) stands for. */
const CONSTRAINTS: Readonly<Record<string, StoreConflictError['code']>> = {
  certificates_pkey: 'ERR_STORE_DUPLICATE_SERIAL',
  // the same DER twice: the same certificate recorded again, so a duplicate serial too
  certificates_sha1_key: 'ERR_STORE_DUPLICATE_SERIAL',
  challenges_pkey: 'ERR_STORE_DUPLICATE_ID',
  challenges_secret_hash_key: 'ERR_STORE_DUPLICATE_ID',
  requests_pkey: 'ERR_STORE_DUPLICATE_ID',
  requests_transaction_id_key: 'ERR_STORE_DUPLICATE_TRANSACTION',
  api_tokens_pkey: 'ERR_STORE_DUPLICATE_ID',
  api_tokens_secret_hash_key: 'ERR_STORE_DUPLICATE_ID',
  api_tokens_name_key: 'ERR_STORE_DUPLICATE_NAME',
  enrollment_tokens_pkey: 'ERR_STORE_DUPLICATE_ID',
  enrollment_tokens_secret_hash_key: 'ERR_STORE_DUPLICATE_ID',
  devices_pkey: 'ERR_STORE_DUPLICATE_ID',
  device_commands_id_key: 'ERR_STORE_DUPLICATE_ID',
  mdm_profiles_pkey: 'ERR_STORE_DUPLICATE_ID',
  mdm_profiles_name_key: 'ERR_STORE_DUPLICATE_NAME',
  key_escrow_pkey: 'ERR_STORE_DUPLICATE_SERIAL',
  users_pkey: 'ERR_STORE_DUPLICATE_ID',
  users_username_key: 'ERR_STORE_DUPLICATE_NAME',
  web_sessions_pkey: 'ERR_STORE_DUPLICATE_ID',
  download_links_pkey: 'ERR_STORE_DUPLICATE_ID',
};

/** Maps unique_violation (SQLSTATE 23505) to the contract's codes by constraint name. */
function conflict(e: unknown, what: string): unknown {
  const err = e as { code?: unknown; constraint?: unknown };
  if (err.code !== '23505' || typeof err.constraint !== 'string') return e;
  const code = CONSTRAINTS[err.constraint];
  if (!code) return e;
  const error = new StoreConflictError(code, `${what}: ${err.constraint} already exists`);
  error.cause = e;
  return error;
}

const dialect: SqlDialect = {
  backend: 'postgres',
  conflict,
  auditDetails: (stored) => stored as Record<string, unknown>, // JSONB: pg parses it
  // JSONB concatenation sets the patch's keys over the object (kept as TEXT: jsonb writes it
  // back in its own key order and spacing, which JSON readers do not see).
  mergeJsonText: (column, patch) =>
    sql<string>`(${sql.ref(column)}::jsonb || ${patch}::jsonb)::text`,
};
