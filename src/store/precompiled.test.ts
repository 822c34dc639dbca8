/**
 * precompiled.ts: a query compiled once runs with each call's values, on the store's connection
 * and in a transaction, and a query whose text would depend on its values is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
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

  it('writes a LIMIT as a literal, one compiled text per limit, and refuses a bound one', async () => {
    const db = await openSqliteKysely(':memory:');
    try {
      for (const [id, username] of [
        ['u1', 'ann'],
        ['u2', 'bob'],
        ['u3', 'cat'],
      ] as const)
        await insertUser(db, SQLITE, { id, username, role: 'user' });
      const first = precompiled((q, _d: typeof SQLITE, v: { role: string }, limit) =>
        q
          .selectFrom('users')
          .select('id')
          .where('role', '=', v.role)
          .orderBy('id')
          .limit(sql.lit(limit)),
      );
      const ids = async (limit: number) =>
        (await first(db, SQLITE, { role: 'user' }, limit)).rows.map((r) => r.id);
      assert.deepEqual(await ids(2), ['u1', 'u2']);
      assert.deepEqual(await ids(1), ['u1']);
      assert.deepEqual(await ids(2), ['u1', 'u2']);
      await assert.rejects(async () => ids(-1), /a shape must be a non-negative integer/);
      await assert.rejects(async () => ids(1.5), /a shape must be a non-negative integer/);
      // SQLite compiles a statement again at every run when its LIMIT is bound (precompiled.ts).
      const bound = precompiled((q, _d: typeof SQLITE, v: { role: string; n: number }) =>
        q.selectFrom('users').select('id').where('role', '=', v.role).limit(v.n),
      );
      await assert.rejects(
        async () => bound(db, SQLITE, { role: 'user', n: 1 }),
        /writes its LIMIT or OFFSET as a literal/,
      );
    } finally {
      await db.destroy();
    }
  });
});
