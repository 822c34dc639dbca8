/**
 * Every input a fuzz run found, replayed through the target that found it: it must now return
 * or throw the target's expected error. The inputs live next to the parsers they exercise
 * (`FuzzTarget.regressions`, named `<target>--<what>`, gzipped when large), each with a line of
 * provenance in that directory's README; the parsers' own tests check the exact refusal.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { TARGETS } from './targets.ts';

const ROOT = new URL('../../', import.meta.url);
const dirs = [...new Set(Object.values(TARGETS).map((t) => t.regressions))];

describe('fuzz regressions', () => {
  after(async () => {
    for (const t of Object.values(TARGETS)) await t.close?.();
  });

  for (const dir of dirs) {
    const files = readdirSync(new URL(`${dir}/`, ROOT)).filter((f) => f.includes('--'));

    it(`${dir}: every input names a target that keeps its regressions there`, () => {
      for (const f of files) assert.equal(TARGETS[f.split('--')[0]!]?.regressions, dir, f);
      const readme = readFileSync(new URL(`${dir}/README.md`, ROOT), 'utf8');
      for (const f of files) assert.ok(readme.includes(`\`${f}\``), `${f} has a provenance line`);
    });

    for (const f of files) {
      const target = TARGETS[f.split('--')[0]!];
      if (!target) continue;
      it(`${dir}/${f} through ${target.name}`, async () => {
        const raw = readFileSync(new URL(`${dir}/${f}`, ROOT));
        const input = new Uint8Array(f.endsWith('.gz') ? gunzipSync(raw) : raw);
        await target.setUp?.();
        const started = performance.now();
        try {
          await target.run(input);
        } catch (e) {
          assert.ok(target.expected(e), `unexpected ${String((e as Error).stack ?? e)}`);
        }
        assert.ok(performance.now() - started < 1000, 'within a second');
      });
    }
  }
});
