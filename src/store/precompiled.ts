/**
 * Queries built and compiled once, then run with each call's values. Kysely builds an operation
 * tree and compiles it to SQL on every call; on the MDM session path that cost as much CPU as
 * SQLite ran the statements (issue 5: ~0.8 ms a device of the server's one thread), for the same
 * few query shapes over and over.
 *
 * `build` receives stand-ins for the named values and must put each into the query as a plain
 * value (a `where` operand, an inserted or set value, a `sql` template value), never branch on
 * it nor read it: the SQL text must not depend on the values. Values given that the compiled
 * query does not carry (the sign of a test on a stand-in) are a programming error, thrown on
 * first use.
 */
import type { CompiledQuery, Kysely, QueryResult, Transaction } from 'kysely';
import type { Schema } from './migrations.ts';

/** Stands for the value named `key` while the query is built: equal to no value a caller passes. */
class Slot {
  readonly key: string;
  constructor(key: string) {
    this.key = key;
  }
}

type Db = Kysely<Schema> | Transaction<Schema>;

/** Stand-ins for the values: every property read gives the slot of that name. */
const STAND_INS = new Proxy({} as Record<string, unknown>, {
  get: (_target, key) => (typeof key === 'string' ? new Slot(key) : undefined),
});

/**
 * A query over `db` whose text depends only on the dialect `d`: call it with the database (the
 * store's or a transaction's), the dialect, and the named values `v`.
 */
export function precompiled<D extends { readonly backend: string }, V extends object, O>(
  build: (db: Kysely<Schema>, d: D, v: V) => { compile(): CompiledQuery<O> },
): (db: Db, d: D, v: V) => Promise<QueryResult<O>> {
  const compiled = new Map<string, CompiledQuery<O>>();
  return (db, d, v) => {
    let c = compiled.get(d.backend);
    if (!c) {
      c = build(db, d, STAND_INS as unknown as V).compile();
      const used = new Set(c.parameters.flatMap((p) => (p instanceof Slot ? [p.key] : [])));
      const given = Object.keys(v);
      if (used.size !== given.length || !given.every((k) => used.has(k)))
        throw new Error(
          `a precompiled query takes ${[...used].join(', ')}; given ${given.join(', ')}`,
        );
      compiled.set(d.backend, c);
    }
    return db.executeQuery<O>({
      ...c,
      parameters: c.parameters.map((p) =>
        p instanceof Slot ? (v as Record<string, unknown>)[p.key] : p,
      ),
    });
  };
}
