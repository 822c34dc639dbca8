/**
 * The XML reader (omadm/xml-read.ts) against saxes, the reader it replaced, on mutations of
 * every XML document the repository keeps and of the hand-written edge cases: a fixed seed, so
 * the same inputs every run, each through the `xml` fuzz target's check (the same tree, or a
 * refusal at the same line and column). `npm run fuzz xml` goes on from here with coverage.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { mutate, type MutationContext } from './mutate.ts';
import { Rng } from './rng.ts';
import { ContractViolation } from './target.ts';
import { TARGETS } from './targets.ts';

const MUTATIONS = 10_000;

it(`the XML readers agree on ${MUTATIONS} mutations of the XML seeds (seed 1)`, async () => {
  const target = TARGETS.xml!;
  const seeds = await target.seeds();
  const rng = new Rng(1);
  const context: MutationContext = {
    rng,
    dictionary: (target.dictionary ?? []).map((t) => new Uint8Array(Buffer.from(t, 'latin1'))),
    oids: [],
    maxLen: 64 * 1024,
    bigLen: 256 * 1024,
    other: () => rng.pick(seeds),
  };
  const disagreements: string[] = [];
  for (let i = 0; i < MUTATIONS; i++) {
    const input = mutate(rng.pick(seeds), context);
    try {
      target.run(input);
    } catch (e) {
      if (!(e instanceof ContractViolation)) throw e;
      disagreements.push(`${e.message}\n  input: ${JSON.stringify(Buffer.from(input).toString())}`);
    }
  }
  assert.deepEqual(disagreements.slice(0, 5), []);
});
