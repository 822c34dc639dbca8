/** Helpers for the tests of the MS-MDE2 messages and the provisioning document. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Mde2Error } from './mde2.ts';

/** A file of testdata/mde2 (provenance in its README), as text. */
export const mde2Vector = (name: string): string =>
  readFileSync(new URL(`./testdata/mde2/${name}`, import.meta.url), 'utf8');

/** Asserts that `f` throws an {@link Mde2Error} with this code (and a message matching `detail`). */
export function rejectsMde2(f: () => unknown, code: Mde2Error['code'], detail?: RegExp): void {
  assert.throws(f, (e) => {
    assert.ok(e instanceof Mde2Error, String(e));
    assert.equal(e.code, code, e.message);
    if (detail) assert.match(e.message, detail);
    return true;
  });
}
