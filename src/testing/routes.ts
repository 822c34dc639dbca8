/** Test helper: the routes a fastify app registered, read from its printRoutes() tree. */
import assert from 'node:assert/strict';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/**
 * Every route of `app.printRoutes()`, which lists all routes of the app whoever registered them.
 * It prints a tree (a child line carries only the path segment after its parent's), e.g.
 * `├── /api/v1/requests (GET, HEAD)` then `│   ├── /:id/approve (POST)`.
 */
export function walkRoutes(tree: string): { method: Method; path: string }[] {
  const out: { method: Method; path: string }[] = [];
  const parents: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) {
      assert.equal(line.trim(), '', `an unparsed printRoutes line: ${line}`);
      continue;
    }
    const depth = m[1]!.length / 4;
    const path = (parents[depth - 1] ?? '') + m[2]!;
    parents[depth] = path;
    parents.length = depth + 1;
    for (const method of m[3]?.split(', ') ?? []) out.push({ method: method as Method, path });
  }
  return out;
}
