/**
 * The short fuzz run of `npm test`: every target for a fixed number of executions from a fixed
 * seed (the same inputs every time, for the same code), with no finding allowed. `npm run fuzz`
 * runs the same targets for longer, from a random seed, with a growing corpus.
 *
 * An execution counts as a hang here only past 3 s instead of 1 s: the machine is shared and
 * these executions run under coverage counters, and a smoke test must not flap. The long runs
 * keep the 1 s rule (and confirm each timeout without instrumentation).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runTarget } from './supervisor.ts';
import { TARGETS } from './targets.ts';

/**
 * Executions per target: about a second each on this 2-core machine when it is quiet, plus the
 * session targets' fixtures (a CA, an enrolled device: a second or two, before the first
 * execution).
 */
const EXECS: Readonly<Record<string, number>> = {
  der: 3000,
  pem: 3000,
  x509: 3000,
  csr: 3000,
  pkcs7: 2000,
  pkcs12: 1500,
  read: 1000,
  'scep-message': 2000,
  'scep-post': 1500,
  'scep-get': 1500,
  syncml: 1500,
  'mde2-server': 600,
  'mde2-client': 300,
  xml: 600,
  eml: 300,
  'mdm-session': 300,
  'device-syncml': 400,
  certrep: 1000,
};

describe('fuzz (short, deterministic)', () => {
  it('has a budget for every target', () => {
    assert.deepEqual(Object.keys(EXECS).toSorted(), Object.keys(TARGETS).toSorted());
  });

  for (const [target, maxExecs] of Object.entries(EXECS)) {
    it(`${target}: ${maxExecs} executions, no finding`, async () => {
      const r = await runTarget({ target, seed: 1, maxExecs, timeoutMs: 3000 });
      assert.deepEqual(
        r.findings.map((f) => `${f.kind}: ${f.signature}\n${f.message}`),
        [],
      );
      assert.ok(r.execs >= maxExecs, `ran ${r.execs} of ${maxExecs}`);
      assert.ok(r.blocks.ours > 100, `covered ${r.blocks.ours} blocks of src/`);
      assert.ok(r.corpus > 1, 'coverage feedback kept inputs');
    });
  }
});
