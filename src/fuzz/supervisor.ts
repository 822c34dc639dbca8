/**
 * Runs one fuzz target in a worker thread and watches it: an execution that runs longer than
 * the timeout is stopped (`Worker.terminate` interrupts even a busy loop) and reported as a
 * `timeout` with the input that was running; a worker that reaches its heap limit, or a process
 * whose resident memory grows past the budget, is a `memory` finding. After either, a fresh
 * worker continues with the corpus found so far, until the executions or the time are spent.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { SHARED_HEADER, type EngineMessage, type EngineStats } from './engine.ts';
import type { Finding } from './target.ts';
import type { WorkerData } from './worker.ts';

export interface RunOptions {
  readonly target: string;
  /** Seed of the mutation sequence (a fixed seed makes a run repeatable). */
  readonly seed?: number;
  readonly maxExecs?: number;
  readonly seconds?: number;
  /** Inputs to start from besides the target's seeds (a corpus saved by an earlier run). */
  readonly corpus?: readonly Uint8Array[];
  /** An execution longer than this is a finding (default 1000 ms). */
  readonly timeoutMs?: number;
  /** Heap limit of the worker (default 512 MiB). */
  readonly heapMb?: number;
  /** Resident memory growth, over the process's at the start, that counts as a finding (default 1 GiB). */
  readonly rssGrowthMb?: number;
  /** Largest input the shared buffer holds (default 2 MiB; amplification stays below it). */
  readonly maxInput?: number;
  /** Called on every new finding and corpus entry (the CLI writes them out as they come). */
  readonly onFinding?: (f: Finding) => void;
  readonly onCorpus?: (input: Uint8Array) => void;
}

export interface RunReport {
  readonly target: string;
  readonly execs: number;
  readonly seconds: number;
  readonly execsPerSecond: number;
  /** Blocks that ran at least once: in src/ (ours) and in all loaded code (dependencies too). */
  readonly blocks: { readonly ours: number; readonly all: number };
  readonly corpus: number;
  /** Distinct findings (by signature), each with how often it happened. */
  readonly findings: readonly (Finding & { readonly count: number })[];
  /** Workers restarted after a timeout or memory finding. */
  readonly restarts: number;
  /** Executions over the timeout under coverage that ran within it uninstrumented (not findings). */
  readonly slowOnlyInstrumented: number;
}

/** Short, stable name of an input (file names of findings and corpus entries). */
export function inputId(input: Uint8Array): string {
  return createHash('sha1').update(input).digest('hex').slice(0, 16);
}

interface Watched {
  readonly how: 'done' | 'timeout' | 'memory' | 'exit';
  /** The input that was running when the worker was stopped. */
  readonly input: Uint8Array;
  readonly message: string;
  /** Executions the worker started. */
  readonly execs: number;
  /** Time of a confirming run. */
  readonly ms?: number;
}

interface Limits {
  readonly timeoutMs: number;
  readonly heapMb: number;
  readonly rssLimit: number;
  readonly rssGrowthMb: number;
}

/** Runs one worker to its end, or stops it at the first timeout or memory overrun. */
function watch(
  data: WorkerData,
  limits: Limits,
  onMessage: (m: EngineMessage) => void,
): Promise<Watched> {
  const state = new Int32Array(data.shared, 0, 4);
  const worker = new Worker(new URL('./worker.ts', import.meta.url), {
    workerData: data,
    resourceLimits: { maxOldGenerationSizeMb: limits.heapMb },
    stdout: true,
  });
  worker.stdout.resume(); // what the code under test prints is not the report's
  const currentInput = () =>
    new Uint8Array(data.shared, SHARED_HEADER, Atomics.load(state, 2)).slice();
  return new Promise<Watched>((resolve, reject) => {
    let watched = { exec: -1, since: 0 };
    let settled = false;
    let ms: number | undefined;
    const finish = (how: Watched['how'], message = '') => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      resolve({
        how,
        input: currentInput(),
        message,
        execs: Atomics.load(state, 0),
        ...(ms !== undefined ? { ms } : {}),
      });
      void worker.terminate();
    };
    const timer = setInterval(() => {
      const exec = Atomics.load(state, 0);
      if (Atomics.load(state, 1) !== 1) watched = { exec: -1, since: 0 };
      else if (exec !== watched.exec) watched = { exec, since: Date.now() };
      else if (Date.now() - watched.since > limits.timeoutMs) {
        finish('timeout', `one execution ran longer than ${limits.timeoutMs} ms`);
        return;
      }
      if (process.memoryUsage.rss() > limits.rssLimit)
        finish('memory', `resident memory grew by more than ${limits.rssGrowthMb} MiB`);
    }, 25);
    worker.on('message', (m: EngineMessage) => {
      if (m.type === 'confirmed') {
        ms = m.ms;
        finish('done');
      } else {
        onMessage(m);
        if (m.type === 'done') finish('done');
      }
    });
    worker.on('error', (e: Error & { code?: string }) => {
      if (e.code === 'ERR_WORKER_OUT_OF_MEMORY')
        finish('memory', `the worker reached its heap limit (${limits.heapMb} MiB)`);
      else if (!settled) {
        settled = true;
        clearInterval(timer);
        reject(e);
      }
    });
    worker.on('exit', () => finish('exit', 'the worker exited in the middle of the run'));
  });
}

export async function runTarget(o: RunOptions): Promise<RunReport> {
  const timeoutMs = o.timeoutMs ?? 1000;
  const maxExecs = o.maxExecs ?? Number.MAX_SAFE_INTEGER;
  const started = Date.now();
  const deadline = o.seconds !== undefined ? started + o.seconds * 1000 : started + 3_600_000;
  const rssGrowthMb = o.rssGrowthMb ?? 1024;
  const limits: Limits = {
    timeoutMs,
    heapMb: o.heapMb ?? 512,
    rssGrowthMb,
    rssLimit: process.memoryUsage.rss() + rssGrowthMb * 1024 * 1024,
  };
  const maxInput = o.maxInput ?? 2 * 1024 * 1024;
  const corpus: Uint8Array[] = [...(o.corpus ?? [])];
  const findings = new Map<string, Finding & { count: number }>();
  let execs = 0;
  let restarts = 0;
  let slowOnlyInstrumented = 0;
  let last: EngineStats | undefined;
  let blocks = { ours: 0, all: 0 };

  const record = (f: Finding) => {
    const had = findings.get(f.signature);
    if (had) had.count++;
    else {
      findings.set(f.signature, { ...f, count: 1 });
      o.onFinding?.(f);
    }
  };
  const onMessage = (m: EngineMessage) => {
    if (m.type === 'corpus') {
      corpus.push(m.input);
      o.onCorpus?.(m.input);
    } else if (m.type === 'finding') record(m.finding);
    else if (m.type === 'stats' || m.type === 'done') {
      last = m;
      blocks = {
        ours: Math.max(blocks.ours, m.blocks.ours),
        all: Math.max(blocks.all, m.blocks.all),
      };
    }
  };

  for (;;) {
    const w = await watch(
      {
        target: o.target,
        seed: (o.seed ?? 1) + restarts * 7919,
        extra: corpus,
        maxExecs: Math.max(0, maxExecs - execs),
        deadline,
        shared: new SharedArrayBuffer(SHARED_HEADER + maxInput),
      },
      limits,
      onMessage,
    );
    execs += w.execs;
    if (w.how === 'done') break;
    if (w.how === 'timeout') {
      // Counts only if it is slow without the block counters too.
      const c = await watch(
        {
          target: o.target,
          seed: 0,
          extra: [],
          maxExecs: 1,
          deadline,
          shared: new SharedArrayBuffer(SHARED_HEADER),
          confirm: w.input,
        },
        limits,
        () => undefined,
      );
      if (c.how === 'done' && (c.ms ?? 0) <= timeoutMs) slowOnlyInstrumented++;
      else
        record({
          kind: c.how === 'memory' ? 'memory' : 'timeout',
          signature: c.how === 'memory' ? 'memory' : 'timeout',
          message: `${w.message}; uninstrumented: ${c.how === 'done' ? `${Math.round(c.ms ?? 0)} ms` : c.message}`,
          input: w.input,
        });
    } else {
      record({
        kind: w.how === 'memory' ? 'memory' : 'crash',
        signature: w.how === 'memory' ? 'memory' : 'worker exited',
        message: w.message,
        input: w.input,
      });
    }
    if (execs >= maxExecs || Date.now() >= deadline || restarts >= 20) break;
    restarts++;
  }
  const seconds = (Date.now() - started) / 1000;
  return {
    target: o.target,
    execs,
    seconds,
    execsPerSecond: execs / Math.max(seconds, 0.001),
    blocks,
    corpus: last?.corpus ?? corpus.length,
    findings: [...findings.values()],
    restarts,
    slowOnlyInstrumented,
  };
}
