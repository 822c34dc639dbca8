/**
 * PostgreSQL backend: the conformance suite against a real PostgreSQL server started by the test
 * itself (src/testing/postgres.ts), one fresh database per store; two pools racing on one
 * database; and the schema compared with SQLite's (style.md principles 5 and 15).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startPostgres, type PostgresServer } from '../testing/postgres.ts';
import { runStoreConformance, SCHEMA_TABLES } from './conformance.ts';
import { describeSchema, listMigrations, migrate } from './migrations.ts';
import { openStore } from './open.ts';
import { openPostgresKysely, openPostgresStore } from './postgres.ts';
import { openSqliteKysely } from './sqlite.ts';
import { StoreConflictError } from './types.ts';

let server: PostgresServer;
/** A database migrated once, copied (CREATE DATABASE … TEMPLATE) for each store: ~10× faster. */
let template: string;

before(async () => {
  server = await startPostgres();
  const url = await server.newDatabase();
  const db = await openPostgresKysely(url);
  await db.destroy(); // a template must have no connections while it is copied
  template = new URL(url).pathname.slice(1);
});

after(async () => {
  await server?.stop();
});

const freshDatabase = (): Promise<string> => server.newDatabase(template);

runStoreConformance('postgres', async () => openPostgresStore(await freshDatabase()), {
  persistent: async () => {
    const url = await freshDatabase();
    return () => openPostgresStore(url);
  },
});

describe('postgres: two pools on one database', () => {
  it('concurrent inserts of the same serial: exactly one succeeds', async () => {
    const url = await freshDatabase();
    const a = await openPostgresStore(url);
    const b = await openPostgresStore(url);
    try {
      const c = {
        serial: '2a',
        sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
        subject: 'CN=x',
        notBefore: new Date(0),
        notAfter: new Date(1),
        der: Uint8Array.of(0x30, 0x00),
        profile: 'device',
        requestId: null,
        issuedAt: new Date(0),
        altNames: [],
      };
      // Several rounds, so the two inserts really overlap on the server at least once.
      for (let round = 0; round < 5; round++) {
        const serial = `${round}a`;
        const settled = await Promise.allSettled([
          a.insertCertificate({ ...c, serial, sha1: `${round}`.padStart(40, '0') }),
          b.insertCertificate({ ...c, serial, sha1: `${round}`.padStart(40, '1') }),
        ]);
        assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 1);
        const lost = settled.find((r) => r.status === 'rejected');
        assert.ok(lost?.reason instanceof StoreConflictError);
        assert.equal(lost.reason.code, 'ERR_STORE_DUPLICATE_SERIAL');
      }
      assert.equal((await b.listCertificates()).length, 5);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('opening the same fresh database from two pools at once migrates it once', async () => {
    const url = await server.newDatabase(); // template1: nothing migrated yet
    const [a, b] = await Promise.all([openPostgresKysely(url), openPostgresKysely(url)]);
    try {
      const recorded = await a.selectFrom('schema_migrations').select('version').execute();
      assert.deepEqual(
        recorded.map((r) => r.version),
        listMigrations('postgres').map((m) => m.version),
      );
      assert.deepEqual(await migrate(b, 'postgres'), []);
    } finally {
      await a.destroy();
      await b.destroy();
    }
  });
});

describe('postgres: schema', () => {
  it('a freshly migrated schema has the same tables and columns as SQLite`s', async () => {
    const pgDb = await openPostgresKysely(server.url);
    const sqliteDb = await openSqliteKysely(':memory:');
    try {
      const pgSchema = await describeSchema(pgDb, 'postgres');
      assert.deepEqual(pgSchema, await describeSchema(sqliteDb, 'sqlite'));
      assert.deepEqual(Object.keys(pgSchema).toSorted(), SCHEMA_TABLES);
    } finally {
      await pgDb.destroy();
      await sqliteDb.destroy();
    }
  });
});

describe('openStore', () => {
  it('opens PostgreSQL for postgres:// and postgresql:// URLs', async () => {
    const url = await freshDatabase();
    for (const u of [url, url.replace(/^postgres:/, 'postgresql:')]) {
      const store = await openStore(u);
      try {
        assert.equal(store.backend, 'postgres');
      } finally {
        await store.close();
      }
    }
  });
});
