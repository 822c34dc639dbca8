/**
 * SQLite backend: the conformance suite on a temporary file and on `:memory:`, two connections
 * racing on one file, and the migration bookkeeping (style.md principles 5 and 15).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { runStoreConformance, SCHEMA_TABLES } from './conformance.ts';
import { describeSchema, listMigrations, migrate, splitStatements } from './migrations.ts';
import { openStore } from './open.ts';
import { openSqliteKysely, openSqliteStore } from './sqlite.ts';
import { sql } from 'kysely';
import { StoreConflictError } from './types.ts';

let files = 0;
const newFile = (): string => join(tempDir('certpost-sqlite-'), `store-${++files}.db`);

runStoreConformance('sqlite file', () => openSqliteStore(newFile()), {
  persistent: async () => {
    const file = newFile();
    return () => openSqliteStore(file);
  },
});

runStoreConformance('sqlite :memory:', () => openSqliteStore(':memory:'));

describe('sqlite: two connections on one file', () => {
  it('concurrent inserts of the same serial: exactly one succeeds', async () => {
    const file = newFile();
    const a = await openSqliteStore(file);
    const b = await openSqliteStore(file);
    try {
      const der = Uint8Array.of(0x30, 0x00);
      const c = {
        serial: '2a',
        sha1: 'da39a3ee5e6b4b0d3255bfef95601890afd80709',
        subject: 'CN=x',
        notBefore: new Date(0),
        notAfter: new Date(1),
        der,
        profile: 'device',
        requestId: null,
        issuedAt: new Date(0),
        altNames: [],
      };
      const settled = await Promise.allSettled([
        a.insertCertificate(c),
        b.insertCertificate({ ...c, subject: 'CN=y' }),
      ]);
      assert.equal(settled.filter((r) => r.status === 'fulfilled').length, 1);
      const lost = settled.find((r) => r.status === 'rejected');
      assert.ok(lost?.reason instanceof StoreConflictError);
      assert.equal(lost.reason.code, 'ERR_STORE_DUPLICATE_SERIAL');
      assert.equal((await b.listCertificates()).length, 1);
      assert.equal((await a.listCertificates()).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('writes of one connection are visible to the other (WAL)', async () => {
    const file = newFile();
    const a = await openSqliteStore(file);
    const b = await openSqliteStore(file);
    try {
      await a.appendAudit({ at: new Date(5), actor: 'cli', action: 'x', target: 't', details: {} });
      assert.equal((await b.listAudit()).length, 1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

/** `0001_init`-style names of a dialect's migrations, in order. */
const names = (d: 'sqlite' | 'postgres'): string[] =>
  listMigrations(d).map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`);

/**
 * Run by two child processes on one file: each makes 200 read-then-write transactions on the
 * same serials. With deferred transactions the second writer would fail at once with
 * SQLITE_BUSY; BEGIN IMMEDIATE plus the busy timeout must serialise them instead.
 */
const RACER = `
  import { openSqliteStore } from ${JSON.stringify(new URL('./sqlite.ts', import.meta.url).href)};
  const [file, who] = process.argv.slice(-2);
  const store = await openSqliteStore(file);
  let inserted = 0;
  for (let i = 0; i < 200; i++) {
    const serial = i.toString(16).padStart(4, '0');
    await store.transaction(async (tx) => {
      if (await tx.getCertificate(serial)) return;
      const der = new TextEncoder().encode(serial);
      await tx.insertCertificate({ serial, sha1: serial.padStart(40, '0'), subject: who, notBefore: new Date(0),
        notAfter: new Date(1), der, profile: 'p', requestId: null, issuedAt: new Date(i), altNames: [] });
      await tx.appendAudit({ at: new Date(i), actor: who, action: 'certificate.issued', target: serial, details: {} });
      inserted++;
    });
  }
  await store.close();
  process.stdout.write(JSON.stringify({ inserted }));
`;

describe('sqlite: two processes on one file', () => {
  it('concurrent open (migration) and read-then-write transactions: no error, nothing lost or doubled', async () => {
    const file = newFile();
    const run = promisify(execFile);
    const outs = await Promise.all(
      ['a', 'b'].map((who) =>
        run(process.execPath, ['--input-type=module', '-e', RACER, file, who]),
      ),
    );
    const inserted = outs.map((o) => (JSON.parse(o.stdout) as { inserted: number }).inserted);
    assert.equal(inserted[0]! + inserted[1]!, 200);
    const store = await openSqliteStore(file);
    try {
      assert.equal((await store.listCertificates({ limit: 1000 })).length, 200);
      assert.equal((await store.listAudit({ limit: 1000 })).length, 200);
    } finally {
      await store.close();
    }
  });
});

describe('migrations', () => {
  it('every migration number exists for both dialects, under the same name', () => {
    assert.deepEqual(names('sqlite'), names('postgres'));
    const versions = listMigrations('sqlite').map((m) => m.version);
    assert.deepEqual(
      versions,
      versions.map((_, i) => i + 1),
      'numbered 1, 2, 3… without gaps',
    );
  });

  it('a fresh database gets every migration once; an up-to-date one gets none', async () => {
    const file = newFile();
    const db = await openSqliteKysely(file); // applies everything at open
    try {
      const recorded = await db.selectFrom('schema_migrations').select('version').execute();
      assert.deepEqual(
        recorded.map((r) => r.version),
        listMigrations('sqlite').map((m) => m.version),
      );
      assert.deepEqual(await migrate(db, 'sqlite'), []);
    } finally {
      await db.destroy();
    }
    const again = await openSqliteKysely(file);
    try {
      assert.deepEqual(await migrate(again, 'sqlite'), []);
      assert.equal(
        (await again.selectFrom('schema_migrations').selectAll().execute()).length,
        listMigrations('sqlite').length,
      );
    } finally {
      await again.destroy();
    }
  });

  it('the migrated schema has the logical model`s tables and columns', async () => {
    const db = await openSqliteKysely(':memory:');
    try {
      const schema = await describeSchema(db, 'sqlite');
      assert.deepEqual(Object.keys(schema).toSorted(), SCHEMA_TABLES);
      assert.deepEqual(schema['audit'], ['action', 'actor', 'at', 'details', 'id', 'target']);
    } finally {
      await db.destroy();
    }
  });

  it('splits a migration file into statements, dropping comments', () => {
    assert.deepEqual(
      splitStatements('-- c;\nCREATE TABLE a (x INT); -- tail\n\nCREATE INDEX i ON a (x);\n'),
      ['CREATE TABLE a (x INT)', 'CREATE INDEX i ON a (x)'],
    );
  });
});

describe('openStore', () => {
  it('opens SQLite for sqlite:PATH, sqlite::memory: and a plain path', async () => {
    const file = newFile();
    for (const url of [`sqlite:${file}`, file, 'sqlite::memory:']) {
      const store = await openStore(url);
      try {
        assert.equal(store.backend, 'sqlite');
      } finally {
        await store.close();
      }
    }
    const again = await openStore(file); // the same file under both spellings
    try {
      assert.equal((await again.listAudit()).length, 0);
    } finally {
      await again.close();
    }
  });

  it('refuses an unknown scheme or an empty path instead of creating a file', async () => {
    await assert.rejects(openStore('mysql://db/certpost'), /unsupported store URL/);
    await assert.rejects(openStore('sqlite:'), /unsupported store URL/);
  });
});

const auditRow = (actor: string) => ({ at: 0, actor, action: 'a', target: 't', details: '' });

describe('sqlite: a transaction SQLite ended itself', () => {
  it('fails with the error that ended it, not with the rollback that had nothing left to do', async () => {
    const db = await openSqliteKysely(':memory:');
    try {
      // RAISE(ROLLBACK) ends the whole transaction inside SQLite, as a full disk or an I/O
      // error does (sqlite.org/lang_transaction.html, "Response To Errors Within A Transaction").
      await sql`CREATE TEMP TRIGGER refuse BEFORE INSERT ON audit WHEN NEW.actor = 'no'
        BEGIN SELECT RAISE(ROLLBACK, 'refused by the trigger'); END`.execute(db);
      const failure = await db
        .transaction()
        .execute(async (tx) => {
          await tx.insertInto('audit').values(auditRow('yes')).execute();
          await tx.insertInto('audit').values(auditRow('no')).execute();
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      assert.match(String(failure), /refused by the trigger/);
      // Nothing of it landed, and the connection serves on.
      assert.equal((await db.selectFrom('audit').select('id').execute()).length, 0);
      await db.insertInto('audit').values(auditRow('yes')).execute();
      assert.equal((await db.selectFrom('audit').select('id').execute()).length, 1);
    } finally {
      await db.destroy();
    }
  });
});
