/**
 * Regressions found by fuzzing: each input of testdata/fuzz/ (its README says what it broke)
 * through the parsers of its kind, refused with their own error and promptly.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Mde2Error, parseDiscoverRequest } from './mde2.ts';
import { parseSyncML, SyncMLError } from './syncml.ts';

const input = (name: string) =>
  new Uint8Array(gunzipSync(readFileSync(new URL(`testdata/fuzz/${name}`, import.meta.url))));

it('mde2-server--comment-openers-256k: a discovery request full of "<!--" is refused promptly', () => {
  const bytes = input('mde2-server--comment-openers-256k.xml.gz');
  const started = performance.now();
  assert.throws(
    () => parseDiscoverRequest(bytes),
    (e) => e instanceof Mde2Error && e.code === 'ERR_MDE2_MALFORMED',
  );
  assert.ok(performance.now() - started < 1000, 'within a second (it took seconds)');
});

it('the same in a SyncML message of 1 MiB is refused promptly (it took minutes)', () => {
  const pkg = readFileSync(new URL('testdata/client-pkg1.xml', import.meta.url), 'utf8');
  const at = pkg.indexOf('<SyncBody>');
  const body = '<!--'.repeat((1024 * 1024 - pkg.length) / 4);
  const started = performance.now();
  assert.throws(
    () => parseSyncML(`${pkg.slice(0, at)}${body}${pkg.slice(at)}`),
    (e) => e instanceof SyncMLError && e.code === 'ERR_SYNCML_MALFORMED',
  );
  assert.ok(performance.now() - started < 1000, 'within a second');
});
