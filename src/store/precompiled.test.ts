/**
 * precompiled.ts: a query compiled once runs with each call's values, on the store's connection
 * and in a transaction, and a query whose text would depend on its values is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { precompiled } from './precompiled.ts';
import { openSqliteKysely } from './sqlite.ts';

const SQLITE = { backend: 'sqlite' } as const;

const insertUser = precompiled(
  (db, _d: typeof SQLITE, v: { id: string; username: string; role: string }) =>
    db.insertInto('users').values({
      id: v.id,
      username: v.username,
      email: null,
      display_name: v.username,
      password_hash: 'x',
      role: v.role,
      created_at: 0,
      updated_at: 0,
    }),
);
/** Plain objects: node:sqlite's rows have a null prototype. */
const plain = (rows: readonly object[]) => rows.map((r) => ({ ...r }));

const userNamed = precompiled((db, _d: typeof SQLITE, v: { username: string }) =>
  db.selectFrom('users').select(['id', 'display_name']).where('username', '=', v.username),
);

describe('precompiled queries', () => {
  it('run with each call’s values, a value used twice included, also in a transaction', async () => {
    const db = await openSqliteKysely(':memory:');
    try {
      await insertUser(db, SQLITE, { id: 'u1', username: 'ann', role: 'user' });
      await db.transaction().execute(async (tx) => {
        await insertUser(tx, SQLITE, { id: 'u2', username: 'bob', role: 'admin' });
      });
      assert.deepEqual(plain((await userNamed(db, SQLITE, { username: 'bob' })).rows), [
        { id: 'u2', display_name: 'bob' },
      ]);
      assert.deepEqual(plain((await userNamed(db, SQLITE, { username: 'ann' })).rows), [
        { id: 'u1', display_name: 'ann' },
      ]);
      assert.deepEqual(plain((await userNamed(db, SQLITE, { username: 'eve' })).rows), []);
    } finally {
      await db.destroy();
    }
  });

  it('refuses values the query does not carry (a query that tested a value)', async () => {
    const db = await openSqliteKysely(':memory:');
    try {
      const extra = precompiled((q, _d: typeof SQLITE, v: { username: string; id: string }) =>
        q.selectFrom('users').selectAll().where('username', '=', v.username),
      );
      await assert.rejects(
        async () => extra(db, SQLITE, { username: 'ann', id: 'u1' }),
        /takes username; given username, id/,
      );
      // Built once, with stand-ins: a test of a value sees the stand-in, never the caller's.
      const branching = precompiled((q, _d: typeof SQLITE, v: { username: string }) => {
        const s = q.selectFrom('users').selectAll();
        return typeof v.username === 'string' ? s.where('username', '=', v.username) : s;
      });
      await assert.rejects(
        async () => branching(db, SQLITE, { username: 'ann' }),
        /takes ; given username/,
      );
    } finally {
      await db.destroy();
    }
  });
});
