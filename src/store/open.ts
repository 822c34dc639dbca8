/**
 * The one place that maps a store URL to a backend constructor (style.md principle 10).
 *
 * - `postgres://…`, `postgresql://…`: PostgreSQL (several server processes share it);
 * - `sqlite:PATH`, `sqlite::memory:`, or a plain file path: SQLite (the embedded default).
 *
 * @example
 *   await openStore('sqlite:/var/lib/certpost/certpost.db');
 *   await openStore('postgres://certpost@db.internal/certpost');
 */
import { openPostgresStore } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';
import type { Store } from './types.ts';

export async function openStore(url: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//i.test(url)) return await openPostgresStore(url);
  const path = /^sqlite:/i.test(url) ? url.slice('sqlite:'.length) : url;
  // Anything else with a scheme is a typo or an unsupported backend, not a file to create.
  if (path === '' || /^[a-z][a-z0-9+.-]+:\/\//i.test(path))
    throw new Error(
      `unsupported store URL "${url}": use sqlite:PATH, a file path, or postgres://…`,
    );
  return await openSqliteStore(path);
}
