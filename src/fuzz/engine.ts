/**
 * The coverage-guided loop, run inside a worker thread (worker.ts) so that the supervisor
 * (supervisor.ts) can stop an execution that hangs and notice one that exhausts memory.
 *
 * Why our own engine: Jazzer.js, the coverage-guided fuzzer for Node, does not run here. Its
 * current release (@jazzer.js/core 4.0.0) ships a prebuilt libFuzzer addon linked against
 * glibc 2.38 (this Debian has 2.36) and no sources to rebuild it; 2.1.0 downloads its addon
 * from GitHub at install time (unreachable). V8 itself counts block executions (precise
 * coverage, coverage.ts), which is the feedback libFuzzer gets from its instrumentation, so the
 * loop is libFuzzer's: run the seeds, then repeatedly mutate a corpus entry, run it, and keep
 * it when it reaches a block or a hit-count bucket no earlier input reached.
 *
 * Shared memory with the supervisor (Int32 words): [0] executions started, [1] 1 while an
 * execution runs, [2] length of the current input, whose bytes follow from byte 16. When the
 * worker dies mid-execution, those bytes are the input that killed it.
 */
import { Coverage } from './coverage.ts';
import { asn1Reductions } from './asn1-mutate.ts';
import { mutate, type MutationContext } from './mutate.ts';
import { Rng } from './rng.ts';
import { crashOf, type Finding, type FuzzTarget } from './target.ts';

export const SHARED_HEADER = 16;

export interface EngineOptions {
  readonly target: FuzzTarget;
  readonly coverage: Coverage;
  readonly seed: number;
  /** Inputs to run after the target's seeds (a saved corpus, or the corpus before a restart). */
  readonly extra: readonly Uint8Array[];
  /** Stop after this many executions (seeds included) … */
  readonly maxExecs: number;
  /** … or at this time (ms since the epoch), whichever comes first. */
  readonly deadline: number;
  readonly shared: SharedArrayBuffer;
  /** Encoded OBJECT IDENTIFIER contents for the ASN.1 mutator. */
  readonly oids: readonly Uint8Array[];
  readonly post: (message: EngineMessage) => void;
}

export interface EngineStats {
  readonly execs: number;
  readonly corpus: number;
  readonly blocks: { readonly ours: number; readonly all: number };
}

export type EngineMessage =
  | { readonly type: 'corpus'; readonly input: Uint8Array }
  | { readonly type: 'finding'; readonly finding: Finding }
  | ({ readonly type: 'stats' } & EngineStats)
  | ({ readonly type: 'done' } & EngineStats)
  | { readonly type: 'confirmed'; readonly ms: number };

const DEFAULT_MAX_LEN = 64 * 1024;
const DEFAULT_BIG_LEN = 256 * 1024;

/**
 * Shrinks a crashing input while it still crashes the same way (bounded to two seconds): whole
 * TLVs first (removed, or replaced by their children), then byte ranges of halving size.
 */
async function minimize(
  finding: Finding,
  run: (input: Uint8Array) => Promise<Finding | null>,
): Promise<Finding> {
  let best = finding;
  const stopAt = Date.now() + 2000;
  const same = (f: Finding | null): f is Finding => f !== null && f.signature === best.signature;
  for (let progress = true; progress && Date.now() < stopAt;) {
    progress = false;
    for (const candidate of asn1Reductions(best.input)) {
      if (Date.now() >= stopAt) break;
      const f = await run(candidate);
      if (same(f)) {
        best = f;
        progress = true;
        break;
      }
    }
  }
  for (let chunk = best.input.length >> 1; chunk >= 1 && Date.now() < stopAt; chunk >>= 1) {
    for (let at = 0; at + chunk <= best.input.length && Date.now() < stopAt;) {
      const candidate = new Uint8Array(best.input.length - chunk);
      candidate.set(best.input.subarray(0, at));
      candidate.set(best.input.subarray(at + chunk), at);
      const f = await run(candidate);
      if (same(f)) best = f;
      else at += chunk;
    }
  }
  return best;
}

/**
 * Mutated inputs run in batches of this many between two coverage reads: reading V8's coverage
 * costs about a millisecond however little ran (V8 walks every function it has compiled), far
 * more than most executions. When a batch runs a block no input ran before, its halves run
 * again, each followed by a coverage read, down to the input that did it (a few reads instead
 * of one per input). Hit counts of a batch are sums and say nothing about one input, so every
 * {@link SINGLES_EVERY}th batch runs again one input at a time, for the counts.
 */
const BATCH = 32;
const SINGLES_EVERY = 64;

export async function runEngine(o: EngineOptions): Promise<EngineStats> {
  const { target, coverage } = o;
  const rng = new Rng(o.seed);
  const state = new Int32Array(o.shared, 0, 4);
  const current = new Uint8Array(o.shared, SHARED_HEADER);
  const corpus: Uint8Array[] = [];
  const seen = new Set<number>();
  const seenBlocks = new Set<number>();
  let batches = 0;
  const reported = new Set<string>();
  const maxLen = target.maxLen ?? DEFAULT_MAX_LEN;
  const context: MutationContext = {
    rng,
    dictionary: (target.dictionary ?? []).map((t) => new Uint8Array(Buffer.from(t, 'latin1'))),
    oids: o.oids,
    maxLen,
    bigLen: Math.min(target.bigLen ?? DEFAULT_BIG_LEN, current.length),
    other: () => (corpus.length ? rng.pick(corpus) : new Uint8Array(0)),
  };
  let execs = 0;

  /** Runs one input; returns the finding it caused, if any. */
  const execute = async (input: Uint8Array): Promise<Finding | null> => {
    const bytes = input.length > current.length ? input.subarray(0, current.length) : input;
    current.set(bytes);
    Atomics.store(state, 2, bytes.length);
    Atomics.add(state, 0, 1);
    Atomics.store(state, 1, 1);
    execs++;
    let finding: Finding | null = null;
    try {
      const r = target.run(bytes);
      if (r instanceof Promise) await r;
    } catch (e) {
      if (!target.expected(e)) finding = crashOf(e, bytes.slice());
    }
    Atomics.store(state, 1, 0);
    return finding;
  };

  /** Adds the features of the last execution(s); true when one was new. */
  const absorb = (features: readonly number[]): boolean => {
    let fresh = false;
    for (const f of features) {
      if (!seen.has(f)) {
        seen.add(f);
        seenBlocks.add(f >> 4);
        fresh = true;
      }
    }
    return fresh;
  };

  /**
   * Runs a group of inputs again; when they reach a block no input reached, narrows down to the
   * input that did (halves) and keeps it. A single input keeps its hit-count features too.
   */
  const attribute = async (group: readonly Uint8Array[]): Promise<void> => {
    let failed = false;
    for (const input of group) failed = (await execute(input)) !== null || failed;
    const features = coverage.take();
    if (group.length === 1) {
      const input = group[0]!;
      if (absorb(features) && !failed && input.length <= maxLen) {
        corpus.push(input);
        o.post({ type: 'corpus', input });
      }
      return;
    }
    if (!features.some((f) => !seenBlocks.has(f >> 4))) return;
    const half = group.length >> 1;
    await attribute(group.slice(0, half));
    await attribute(group.slice(half));
  };

  const report = async (finding: Finding) => {
    if (reported.has(finding.signature)) return;
    reported.add(finding.signature);
    const small = await minimize(finding, execute);
    coverage.take(); // the minimizer's executions teach nothing
    o.post({ type: 'finding', finding: small });
  };

  const stats = (): EngineStats => ({
    execs,
    corpus: corpus.length,
    blocks: coverage.blocks(),
  });

  await target.setUp?.();
  coverage.take(); // drop what loading the target and its fixture ran
  for (const input of [...(await target.seeds()), ...o.extra]) {
    const finding = await execute(input);
    const fresh = absorb(coverage.take());
    if (finding) await report(finding);
    else if (fresh) corpus.push(input);
  }
  if (corpus.length === 0) corpus.push(new Uint8Array(0));

  let lastStats = Date.now();
  while (execs < o.maxExecs && Date.now() < o.deadline) {
    const batch: Uint8Array[] = [];
    const findings: Finding[] = [];
    for (let i = 0; i < BATCH && execs < o.maxExecs; i++) {
      const input = mutate(rng.pick(corpus), context);
      batch.push(input);
      const finding = await execute(input);
      if (finding) findings.push(finding);
    }
    const features = coverage.take();
    if (++batches % SINGLES_EVERY === 0) for (const input of batch) await attribute([input]);
    else if (features.some((f) => !seenBlocks.has(f >> 4))) {
      const half = batch.length >> 1;
      await attribute(batch.slice(0, half));
      await attribute(batch.slice(half));
    }
    // A block only the batch as a whole reached (one input warming a cache for the next) is
    // not looked for again.
    for (const f of features) seenBlocks.add(f >> 4);
    for (const f of findings) await report(f);
    if (Date.now() - lastStats > 250) {
      lastStats = Date.now();
      o.post({ type: 'stats', ...stats() });
    }
  }
  await target.close?.();
  return stats();
}
