/**
 * Worker-thread entry of a fuzz run. Two modes:
 * - fuzzing: starts coverage before the code under test loads, then runs the engine on one
 *   target and reports to the supervisor over the message port;
 * - confirming (`confirm` set): runs one input once without coverage and says how long it
 *   took. Block counters slow tight loops several times over (a KDF's compression loop), so a
 *   timeout seen while fuzzing counts only if it also happens uninstrumented.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Coverage } from './coverage.ts';
import { runEngine, type EngineMessage } from './engine.ts';

export interface WorkerData {
  readonly target: string;
  readonly seed: number;
  readonly extra: readonly Uint8Array[];
  readonly maxExecs: number;
  readonly deadline: number;
  readonly shared: SharedArrayBuffer;
  readonly confirm?: Uint8Array;
}

const data = workerData as WorkerData;
// (The second argument is the transfer list; nothing is transferred.)
const post = (m: EngineMessage) => parentPort!.postMessage(m, []);

if (data.confirm) {
  const { TARGETS } = await import('./targets.ts');
  await TARGETS[data.target]!.setUp?.();
  const state = new Int32Array(data.shared, 0, 4);
  Atomics.store(state, 1, 1);
  const started = performance.now();
  try {
    await TARGETS[data.target]!.run(data.confirm);
  } catch {
    // Only the time matters here.
  }
  Atomics.store(state, 1, 0);
  post({ type: 'confirmed', ms: performance.now() - started });
} else {
  // Blocks of the code under test and its libraries count; the fuzzer's own code does not.
  const coverage = new Coverage({
    include: (url) => url.startsWith('file://') && !url.includes('/src/fuzz/'),
    ours: (url) =>
      url.startsWith('file://') && url.includes('/src/') && !url.includes('/node_modules/'),
  });
  const { TARGETS, oidDictionary } = await import('./targets.ts');
  const target = TARGETS[data.target];
  if (!target) throw new Error(`unknown fuzz target ${data.target}`);
  const stats = await runEngine({
    target,
    coverage,
    seed: data.seed,
    extra: data.extra,
    maxExecs: data.maxExecs,
    deadline: data.deadline,
    shared: data.shared,
    oids: oidDictionary(),
    post,
  });
  coverage.stop();
  post({ type: 'done', ...stats });
}
