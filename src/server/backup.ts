/**
 * Backup and restore of a deployment (issue 7): the data directory (the CA's certificates, its
 * encrypted keys or token key references, the TLS material) and the database, taken while the
 * server runs.
 *
 * A backup is a directory, so an operator can read, copy and archive it with ordinary tools:
 *
 * ```
 * manifest.json     format, certpost version, backend, schema version, and the SHA-256 and
 *                   size of every other file
 * data/…            the data directory's files (never the live SQLite file, its WAL or locks)
 * certpost.db       SQLite: a consistent online snapshot (`VACUUM INTO`, one read transaction)
 * database.pgdump   PostgreSQL: `pg_dump --format=custom` (one snapshot; pg_restore reads it)
 * ```
 *
 * Restore checks every hash before writing anything, refuses a data directory that exists or a
 * PostgreSQL database that has tables, and builds the directory beside its final place before
 * renaming it in: a failed restore leaves nothing behind. The backup holds what the data
 * directory holds, the CA passphrase file included when there is one: keep it as safe.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { dirname, join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import pkg from '../../package.json' with { type: 'json' };
import { openStore } from '../store/open.ts';
import { pathExists } from '../util/fs.ts';

const run = promisify(execFile);

export const BACKUP_FORMAT = 'certpost-backup/1';
const SQLITE_FILE = 'certpost.db';
const PG_FILE = 'database.pgdump';
/** Files of a data directory that are live state, not content: never copied. */
const SKIP = /^(certpost\.db(-wal|-shm|-journal)?|ca\.lock|\.doctor-.*)$/;

export interface Manifest {
  readonly format: typeof BACKUP_FORMAT;
  readonly createdAt: string;
  readonly certpostVersion: string;
  readonly backend: 'sqlite' | 'postgres';
  readonly schemaVersion: number;
  /** Path (with `/`) → SHA-256 hex and size, for every file of the backup but the manifest. */
  readonly files: Readonly<Record<string, { readonly sha256: string; readonly bytes: number }>>;
}

/** A backup or restore that cannot be done as asked; nothing was written (code `ERR_BACKUP`). */
export class BackupError extends Error {
  readonly code = 'ERR_BACKUP';
}

export interface BackupOptions {
  readonly dataDir: string;
  /** `postgres://…`; default the data directory's SQLite file. */
  readonly database?: string | undefined;
  /** The backup directory to create (must not exist). */
  readonly out: string;
  readonly now?: () => Date;
}

async function* walk(dir: string, root = dir): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* walk(p, root);
    else if (e.isFile() && !(dir === root && SKIP.test(e.name))) yield relative(root, p);
  }
}

async function sha256(path: string): Promise<{ sha256: string; bytes: number }> {
  const b = await readFile(path);
  return { sha256: createHash('sha256').update(b).digest('hex'), bytes: b.length };
}

/**
 * Runs pg_dump or pg_restore (from `CERTPOST_PG_BIN`, else PATH) on `url`: a password in the URL
 * goes to the tool in PGPASSWORD, never on its command line where `ps` shows it.
 */
function pgTool(name: 'pg_dump' | 'pg_restore', url: string, args: readonly string[]) {
  const dir = process.env['CERTPOST_PG_BIN'];
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  const env = password ? { ...process.env, PGPASSWORD: password } : process.env;
  const dbArg = name === 'pg_dump' ? u.toString() : `--dbname=${u.toString()}`;
  return run(dir ? join(dir, name) : name, [...args, dbArg], { env }).catch((e: unknown) => {
    throw new BackupError(`${name} failed: ${stderrOf(e)}`);
  });
}

/** Takes a backup of a running or stopped deployment; returns its manifest. */
export async function backup(o: BackupOptions): Promise<Manifest> {
  const now = o.now ?? (() => new Date());
  if (await pathExists(o.out)) throw new BackupError(`${o.out} exists: choose a new directory`);
  if (!(await pathExists(join(o.dataDir, 'ca'))))
    throw new BackupError(`${o.dataDir} has no CA: nothing to back up`);
  // The schema version, read through the store (which also proves the database answers).
  const store = await openStore(o.database ?? join(o.dataDir, SQLITE_FILE));
  let schemaVersion: number;
  try {
    schemaVersion = (await store.status()).schemaVersion;
  } finally {
    await store.close();
  }
  const tmp = `${o.out}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(join(tmp, 'data'), { recursive: true, mode: 0o700 });
    const files: Record<string, { sha256: string; bytes: number }> = {};
    for await (const rel of walk(o.dataDir)) {
      const to = join(tmp, 'data', rel);
      await mkdir(dirname(to), { recursive: true, mode: 0o700 });
      await copyFile(join(o.dataDir, rel), to);
      files[['data', ...rel.split(sep)].join('/')] = await sha256(to);
    }
    if (o.database === undefined) {
      // One read transaction: a consistent copy while the server keeps writing (WAL).
      const db = new DatabaseSync(join(o.dataDir, SQLITE_FILE), { readOnly: true, timeout: 5000 });
      try {
        db.prepare('VACUUM INTO ?').run(join(tmp, SQLITE_FILE));
      } finally {
        db.close();
      }
      files[SQLITE_FILE] = await sha256(join(tmp, SQLITE_FILE));
    } else {
      await pgTool('pg_dump', o.database, [
        '--format=custom',
        '--no-owner',
        '--no-privileges',
        `--file=${join(tmp, PG_FILE)}`,
      ]);
      files[PG_FILE] = await sha256(join(tmp, PG_FILE));
    }
    const manifest: Manifest = {
      format: BACKUP_FORMAT,
      createdAt: now().toISOString(),
      certpostVersion: pkg.version,
      backend: o.database === undefined ? 'sqlite' : 'postgres',
      schemaVersion,
      files,
    };
    await writeFile(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, {
      mode: 0o600,
    });
    await rename(tmp, o.out);
    return manifest;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

export interface RestoreOptions {
  readonly from: string;
  /** The data directory to create (must not exist). */
  readonly dataDir: string;
  /** `postgres://…` of an empty database, for a PostgreSQL backup. */
  readonly database?: string | undefined;
}

/** Reads and checks a backup: the manifest, then every file's size and SHA-256. */
export async function verifyBackup(from: string): Promise<Manifest> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(from, 'manifest.json'), 'utf8')) as Manifest;
  } catch (e) {
    throw new BackupError(`${from} is not a certpost backup (${(e as Error).message})`);
  }
  if (manifest.format !== BACKUP_FORMAT)
    throw new BackupError(`${from}: unknown backup format ${String(manifest.format)}`);
  for (const [rel, want] of Object.entries(manifest.files)) {
    if (rel.split('/').includes('..') || rel.startsWith('/'))
      throw new BackupError(`${from}: the manifest names a file outside the backup: ${rel}`);
    const got = await sha256(join(from, ...rel.split('/'))).catch(() => undefined);
    if (!got || got.sha256 !== want.sha256 || got.bytes !== want.bytes)
      throw new BackupError(`${from}: ${rel} is ${got ? 'damaged' : 'missing'}; nothing restored`);
  }
  return manifest;
}

/** Restores a backup into a new data directory (and, for PostgreSQL, an empty database). */
export async function restore(o: RestoreOptions): Promise<Manifest> {
  const manifest = await verifyBackup(o.from);
  if (await pathExists(o.dataDir))
    throw new BackupError(`${o.dataDir} exists: restore into a new directory`);
  if (manifest.backend === 'postgres' && o.database === undefined)
    throw new BackupError(
      'this backup holds a PostgreSQL database: give --database postgres://… of an empty database',
    );
  if (manifest.backend === 'sqlite' && o.database !== undefined)
    throw new BackupError('this backup holds a SQLite database: restore it without --database');
  if (o.database !== undefined) await requireEmpty(o.database);
  const tmp = `${o.dataDir}.partial-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(tmp, { recursive: true, mode: 0o700 });
    for (const rel of Object.keys(manifest.files)) {
      const parts = rel.split('/');
      if (parts[0] !== 'data') continue;
      const to = join(tmp, ...parts.slice(1));
      await mkdir(dirname(to), { recursive: true, mode: 0o700 });
      await copyFile(join(o.from, ...parts), to);
    }
    if (manifest.backend === 'sqlite')
      await copyFile(join(o.from, SQLITE_FILE), join(tmp, SQLITE_FILE));
    else
      // One transaction: a failure leaves the database as empty as it was.
      await pgTool('pg_restore', o.database!, [
        '--no-owner',
        '--no-privileges',
        '--single-transaction',
        '--exit-on-error',
        join(o.from, PG_FILE),
      ]);
    await rename(tmp, o.dataDir);
    return manifest;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

async function requireEmpty(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
    const r = await client.query<{ n: string }>(
      "select count(*) as n from information_schema.tables where table_schema = 'public'",
    );
    if (Number(r.rows[0]?.n ?? 0) > 0)
      throw new BackupError('the target database has tables: restore into an empty database');
  } finally {
    await client.end().catch(() => undefined);
  }
}

function stderrOf(e: unknown): string {
  const s = (e as { stderr?: string }).stderr?.trim();
  return s && s.length > 0 ? s.split('\n').slice(-3).join(' ') : (e as Error).message;
}
