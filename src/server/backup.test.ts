/**
 * Backup and restore (issue 7) of real deployments: SQLite taken online while the store is
 * open, PostgreSQL through pg_dump/pg_restore, the command line, and every refusal leaving
 * nothing behind.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { sha1Thumbprint } from '../pki/x509.ts';
import { startPostgres, type PostgresServer } from '../testing/postgres.ts';
import { tempDir } from '../testing/tools.ts';
import { backup, BackupError, restore } from './backup.ts';
import { openContext, type ServerContext } from './context.ts';
import { serverTls } from './tls.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;

/** What a restore must bring back: the CA, an issued and revoked certificate, the audit log. */
interface Fingerprint {
  root: string;
  issuing: string;
  revoked: string[];
  certificates: number;
  audit: number;
  tlsKey: string;
}

async function fingerprint(ctx: ServerContext, dataDir: string): Promise<Fingerprint> {
  return {
    root: sha1Thumbprint(ctx.ca.root.certificate),
    issuing: sha1Thumbprint(ctx.ca.issuing.certificate),
    revoked: (await ctx.store.listRevoked(new Date())).map((r) => r.serial),
    certificates: (await ctx.store.listCertificates()).length,
    audit: (await ctx.store.listAudit({ limit: 1000 })).length,
    tlsKey: readFileSync(join(dataDir, 'tls', 'server.key'), 'utf8'),
  };
}

/** A CA with some history: a TLS certificate issued (files under data/tls) and then revoked. */
async function populate(ctx: ServerContext, dataDir: string): Promise<void> {
  await serverTls({
    dataDir,
    issuing: ctx.ca.issuing,
    names: ['localhost'],
    enrollment: ctx.enrollment,
  });
  const [cert] = await ctx.store.listCertificates();
  assert.ok(cert);
  assert.ok(await ctx.enrollment.revoke(cert.serial, 1, 'test'));
}

function rejectsBackup(p: Promise<unknown>, message: RegExp): Promise<void> {
  return assert.rejects(p, (e: unknown) => e instanceof BackupError && message.test(e.message));
}

describe('backup and restore on SQLite', () => {
  let dataDir: string;
  let ctx: ServerContext;
  let expected: Fingerprint;
  let out: string;

  before(async () => {
    dataDir = join(tempDir(), 'data');
    ctx = await openContext({ dataDir, createCa: true });
    await populate(ctx, dataDir);
    expected = await fingerprint(ctx, dataDir);
    out = join(tempDir(), 'backup');
  });
  after(async () => {
    await ctx.close();
  });

  it('takes a backup while the store is open, and restores it into a new data directory', async () => {
    const m = await backup({ dataDir, out });
    assert.equal(m.backend, 'sqlite');
    assert.ok(
      m.files['certpost.db'] && m.files['data/ca/issuing.crt'] && m.files['data/tls/server.key'],
    );
    assert.ok(!Object.keys(m.files).some((f) => /certpost\.db-(wal|shm)|ca\.lock/.test(f)));
    // The server goes on writing after the snapshot; the backup keeps the moment it was taken.
    await ctx.store.appendAudit({
      at: new Date(),
      actor: 'test',
      action: 'after.backup',
      target: 'backup',
      details: {},
    });

    const restored = join(tempDir(), 'restored');
    await restore({ from: out, dataDir: restored });
    const again = await openContext({ dataDir: restored });
    try {
      assert.deepEqual(await fingerprint(again, restored), expected);
    } finally {
      await again.close();
    }
  });

  it('refuses a damaged backup, an existing target and a second backup over the first: nothing written', async () => {
    const target = join(tempDir(), 'target');
    const crt = join(out, 'data', 'ca', 'issuing.crt');
    const original = readFileSync(crt);
    writeFileSync(crt, Buffer.concat([original, Buffer.from('x')]));
    try {
      await rejectsBackup(
        restore({ from: out, dataDir: target }),
        /data\/ca\/issuing\.crt is damaged/,
      );
    } finally {
      writeFileSync(crt, original);
    }
    assert.equal(existsSync(target), false);
    assert.deepEqual(
      readdirSync(join(target, '..')).filter((f) => f.startsWith('target')),
      [],
      'no partial directory left',
    );
    await rejectsBackup(restore({ from: out, dataDir }), /exists: restore into a new directory/);
    await rejectsBackup(backup({ dataDir, out }), /exists: choose a new directory/);
    await rejectsBackup(restore({ from: dataDir, dataDir: target }), /is not a certpost backup/);
  });

  it('certpost backup and restore on the command line', () => {
    const env = { ...process.env, CERTPOST_DATA: undefined, CERTPOST_DATABASE: undefined };
    const cliOut = join(tempDir(), 'cli-backup');
    const b = spawnSync(
      process.execPath,
      [BIN, 'backup', '--data', dataDir, '--out', cliOut, '--json'],
      {
        encoding: 'utf8',
        env,
      },
    );
    assert.equal(b.status, 0, b.stderr);
    assert.equal((JSON.parse(b.stdout) as { backend: string }).backend, 'sqlite');
    const restored = join(tempDir(), 'cli-restored');
    const r = spawnSync(process.execPath, [BIN, 'restore', '--from', cliOut, '--data', restored], {
      encoding: 'utf8',
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /sqlite schema \d+, \d+ files/);
    const again = spawnSync(
      process.execPath,
      [BIN, 'restore', '--from', cliOut, '--data', restored],
      {
        encoding: 'utf8',
        env,
      },
    );
    assert.equal(again.status, 3);
    assert.match(again.stderr, /exists: restore into a new directory/);
  });
});

describe('backup and restore on PostgreSQL', () => {
  let server: PostgresServer;

  before(async () => {
    server = await startPostgres();
  });
  after(async () => {
    await server?.stop();
  });

  it('dumps with pg_dump and restores into an empty database only', async () => {
    const dataDir = join(tempDir(), 'data');
    const ctx = await openContext({ dataDir, database: server.url, createCa: true });
    let expected: Fingerprint;
    try {
      await populate(ctx, dataDir);
      expected = await fingerprint(ctx, dataDir);
    } finally {
      await ctx.close();
    }
    const out = join(tempDir(), 'backup');
    const m = await backup({ dataDir, database: server.url, out });
    assert.equal(m.backend, 'postgres');
    assert.ok(m.files['database.pgdump']);

    // Not into a database that has tables (the source itself), nor without --database.
    await rejectsBackup(
      restore({ from: out, dataDir: join(tempDir(), 'x'), database: server.url }),
      /has tables/,
    );
    await rejectsBackup(restore({ from: out, dataDir: join(tempDir(), 'y') }), /give --database/);

    const empty = await server.newDatabase('template0');
    const restored = join(tempDir(), 'restored');
    await restore({ from: out, dataDir: restored, database: empty });
    const again = await openContext({ dataDir: restored, database: empty });
    try {
      assert.deepEqual(await fingerprint(again, restored), expected);
    } finally {
      await again.close();
    }
    const client = new pg.Client({ connectionString: empty });
    await client.connect();
    try {
      const r = await client.query<{ n: string }>('select count(*) as n from certificates');
      assert.equal(Number(r.rows[0]?.n), expected.certificates);
    } finally {
      await client.end();
    }
  });
});
