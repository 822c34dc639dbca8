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
 *
 * One number may shape the text: `build` also receives `shape`, a real number chosen by the
 * caller, and each distinct shape is compiled once. It is
 * - a LIMIT or OFFSET, written into the text as a literal, never bound. SQLite (3.53 in Node
 *   24) reads a bound LIMIT while planning and marks the statement to be compiled again
 *   whenever that parameter is bound, which is every run: `perf` showed sqlite3Reprepare under
 *   every step of the two hot LIMIT queries, and an indexed lookup took 7.3 µs with `limit ?`
 *   against 3.0 µs with `limit 1`. A compiled query with a bound LIMIT or OFFSET is refused on
 *   first use;
 * - or how many rows or ids the query carries (a multi-row insert, an `in (…)` list, a CASE
 *   per row), the values then named with the row's index (`id0`, `id1`, …).
 * Shapes must come from a small set (a constant, the store's default, the server's
 * configuration, a count bounded by it), never from a request unchecked, or the compiled
 * queries would pile up.
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

/**
 * Runs a compiled statement at once, on the connection, when that is safe, and answers what
 * Kysely's driver would; undefined means "not now": the query goes through Kysely, which waits
 * for the connection. `inTransaction`: the caller holds the connection's open transaction.
 * (SQLite, sqlite.ts: node:sqlite is synchronous, so a statement run here cannot interleave
 * with anything; Kysely's executor costs ~4 µs and several promise turns a query, about as
 * much as SQLite takes to run one.)
 */
export type RunNow = (
  sql: string,
  parameters: readonly unknown[],
  inTransaction: boolean,
) => QueryResult<unknown> | undefined;

/** What a precompiled query needs of the dialect it is given. */
export interface PrecompiledDialect {
  readonly backend: string;
  readonly runNow?: RunNow;
  /**
   * Only on the dialect given to a transaction's roles: true while that transaction is open,
   * false once it has ended (then Kysely refuses the query, as it always has).
   */
  readonly held?: () => boolean;
}

/** The text of every query compiled here, and the statement name it is prepared under. */
const NAMES = new Map<string, string>();

/**
 * The name to prepare `sql` under on a connection (PostgreSQL, postgres.ts), when it is the text
 * of a precompiled query: a server parses, analyses and plans a named statement once per
 * connection, where an unnamed one is planned at every run. Undefined for any other text.
 */
export function statementName(sql: string): string | undefined {
  return NAMES.get(sql);
}

/** A LIMIT or OFFSET bound as a parameter, in either dialect's placeholders. */
const BOUND_LIMIT = /\b(?:limit|offset)\s+(?:\?|\$\d+)/i;

/** Stand-ins for the values: every property read gives the slot of that name. */
const STAND_INS = new Proxy({} as Record<string, unknown>, {
  get: (_target, key) => (typeof key === 'string' ? new Slot(key) : undefined),
});

/**
 * A query over `db` whose text depends only on the dialect `d`: call it with the database (the
 * store's or a transaction's), the dialect, and the named values `v`.
 */
export function precompiled<D extends PrecompiledDialect, V extends object, O>(
  build: (db: Kysely<Schema>, d: D, v: V, shape: number) => { compile(): CompiledQuery<O> },
): (db: Db, d: D, v: V, shape?: number) => Promise<QueryResult<O>> {
  const compiled = new Map<string, CompiledQuery<O>>();
  return (db, d, v, shape = 0) => {
    const key = `${d.backend} ${shape}`;
    let c = compiled.get(key);
    if (!c) {
      if (!Number.isSafeInteger(shape) || shape < 0)
        throw new RangeError(`a shape must be a non-negative integer, got ${shape}`);
      c = build(db, d, STAND_INS as unknown as V, shape).compile();
      const used = new Set(c.parameters.flatMap((p) => (p instanceof Slot ? [p.key] : [])));
      const given = Object.keys(v);
      if (used.size !== given.length || !given.every((k) => used.has(k)))
        throw new Error(
          `a precompiled query takes ${[...used].join(', ')}; given ${given.join(', ')}`,
        );
      if (BOUND_LIMIT.test(c.sql))
        throw new Error(`a precompiled query writes its LIMIT or OFFSET as a literal: ${c.sql}`);
      compiled.set(key, c);
      if (!NAMES.has(c.sql)) NAMES.set(c.sql, `certpost_${NAMES.size + 1}`);
    }
    const parameters = c.parameters.map((p) =>
      p instanceof Slot ? (v as Record<string, unknown>)[p.key] : p,
    );
    const held = d.held?.();
    if (d.runNow && held !== false)
      try {
        const result = d.runNow(c.sql, parameters, held === true);
        if (result) return Promise.resolve(result as QueryResult<O>);
      } catch (e) {
        return Promise.reject(e as Error);
      }
    return db.executeQuery<O>({ ...c, parameters });
  };
}
