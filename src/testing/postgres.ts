/**
 * Test kit: a throwaway PostgreSQL server on loopback (design.md §4: tests start the real parts
 * themselves). initdb into a temporary directory, pg_ctl start on a free port with the socket in
 * that directory and fsync off, one database per call. The server is stopped and its directory
 * removed by `stop()`, and at the latest when the test process exits. Missing binaries are a
 * failure naming the Debian package, never a skip (`.ci/run` installs it).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { atProcessEnd, freePort } from './tools.ts';

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:PORT/DB`: a fresh, empty database made for this call. */
  readonly url: string;
  /** Makes another empty database on the same server (from `template`, default template1). */
  newDatabase(template?: string): Promise<string>;
  /** Stops the server at once (`pg_ctl stop -m immediate`) and removes its directory. */
  stop(): Promise<void>;
  /**
   * Fault injection: an administrator's restart, first half. `pg_ctl stop -m fast` ends every
   * connection at once (clients see 57P01 or a reset) and keeps the data; {@link resume} starts
   * it again on the same port. Not `-m immediate`: with this harness's synchronous_commit=off a
   * crash may lose commits already acknowledged, which production settings do not.
   */
  halt(): Promise<void>;
  resume(): Promise<void>;
}

/** Directory holding initdb and pg_ctl: $PG_BIN, else the newest /usr/lib/postgresql/N/bin. */
function binDir(): string {
  const candidates = [process.env['PG_BIN'] ?? ''];
  const root = '/usr/lib/postgresql';
  if (existsSync(root))
    candidates.push(
      ...readdirSync(root)
        .filter((v) => /^\d+$/.test(v))
        .toSorted((a, b) => Number(b) - Number(a))
        .map((v) => join(root, v, 'bin')),
    );
  const dir = candidates.find(
    (d) => d && existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl')),
  );
  if (!dir)
    throw new Error(
      'PostgreSQL server binaries (initdb, pg_ctl) not found in $PG_BIN or /usr/lib/postgresql/*/bin: ' +
        'apt-get install postgresql (.ci/run does this)',
    );
  return dir;
}

/** initdb refuses root: as root, run the server tools as the `postgres` user. */
function asServerUser(command: string, args: readonly string[]): void {
  const [file, argv] =
    process.getuid?.() === 0
      ? ['runuser', ['-u', 'postgres', '--', command, ...args]]
      : [command, [...args]];
  try {
    execFileSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as Error & { stderr?: Buffer; stdout?: Buffer };
    throw new Error(
      `${[file, ...argv].join(' ')} failed: ${err.stderr?.toString() || err.stdout?.toString() || err.message}`,
      { cause: e },
    );
  }
}

function uidGidOf(user: string): [number, number] {
  const out = execFileSync('id', ['-u', user]).toString().trim();
  const gid = execFileSync('id', ['-g', user]).toString().trim();
  return [Number(out), Number(gid)];
}

/** Starts a PostgreSQL server for this test process and makes one database on it. */
export async function startPostgres(): Promise<PostgresServer> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'certpost-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const [uid, gid] = uidGidOf('postgres');
    chownSync(dir, uid, gid);
  }
  let stopped = false;
  const stopNow = (): void => {
    if (stopped) return;
    stopped = true;
    forget();
    try {
      asServerUser(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-s']);
    } catch {
      // not running (start failed, or already gone): only the directory is left to remove
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const forget = atProcessEnd(stopNow);
  try {
    asServerUser(join(bin, 'initdb'), [
      '-D',
      data,
      '-A',
      'trust',
      '-U',
      'postgres',
      '-E',
      'UTF8',
      '--no-sync',
      '--no-instructions',
    ]);
    const port = await freePort();
    const start = (): void =>
      asServerUser(join(bin, 'pg_ctl'), [
        '-D',
        data,
        '-l',
        join(dir, 'server.log'),
        '-o',
        `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off`,
        '-w',
        '-s',
        'start',
      ]);
    start();
    const base = `postgres://postgres@127.0.0.1:${port}`;
    let databases = 0;
    const newDatabase = async (template = 'template1'): Promise<string> => {
      const name = `certpost_${process.pid}_${++databases}`;
      const client = new pg.Client({ connectionString: `${base}/postgres` });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name} TEMPLATE ${pg.escapeIdentifier(template)}`);
      } finally {
        await client.end();
      }
      return `${base}/${name}`;
    };
    const url = await newDatabase();
    return {
      url,
      newDatabase,
      stop: async () => stopNow(),
      halt: async () => asServerUser(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-s']),
      resume: async () => start(),
    };
  } catch (e) {
    stopNow();
    throw e;
  }
}
