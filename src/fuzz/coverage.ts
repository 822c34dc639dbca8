/**
 * Coverage feedback from V8's precise block coverage (Chrome DevTools Protocol, `Profiler`
 * domain) through `node:inspector`, on the current thread. After each execution
 * {@link Coverage.take} reports which blocks ran and how often (the counters reset on every
 * take), as libFuzzer's inline counters do for native code.
 *
 * A feature is a block together with a bucket of its hit count (1, 2, 3, 4–7, 8–15, 16–31,
 * 32–127, 128+: libFuzzer's buckets), so that an input which runs a loop a new number of
 * times also counts as new. Scripts are told apart by URL, blocks by their source offsets.
 */
import { Session } from 'node:inspector';

interface Range {
  readonly startOffset: number;
  readonly endOffset: number;
  readonly count: number;
}
interface ScriptCoverage {
  readonly scriptId: string;
  readonly url: string;
  readonly functions: readonly { readonly ranges: readonly Range[] }[];
}

function bucket(count: number): number {
  if (count < 4) return count; // 1, 2, 3
  if (count < 8) return 4;
  if (count < 16) return 5;
  if (count < 32) return 6;
  if (count < 128) return 7;
  return 8;
}

/** Which scripts count, and which of them are "ours" for the block figure in the report. */
export interface CoverageScope {
  readonly include: (url: string) => boolean;
  readonly ours: (url: string) => boolean;
}

export class Coverage {
  readonly #session = new Session();
  readonly #scope: CoverageScope;
  /** Per script URL: block key (start offset × 2^24 + length) → block id. */
  readonly #blocks = new Map<string, Map<number, number>>();
  readonly #scripts = new Map<string, { url: string; counted: boolean; ours: boolean }>();
  #nextBlock = 0;
  /** Every block that ever ran, and whether it is in our code. */
  readonly #covered = new Set<number>();
  readonly #ourBlocks = new Set<number>();

  constructor(scope: CoverageScope) {
    this.#scope = scope;
    this.#session.connect();
    this.#post('Profiler.enable');
    this.#post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  }

  /** Synchronous in practice: the inspector answers on this thread before `post` returns. */
  #post(method: string, params?: object): unknown {
    let result: unknown;
    let error: Error | null = null;
    let done = false;
    this.#session.post(method, params, (e: Error | null, r?: unknown) => {
      error = e;
      result = r;
      done = true;
    });
    if (!done) throw new Error(`inspector ${method} did not answer synchronously`);
    if (error) throw error;
    return result;
  }

  /**
   * The features hit since the last call, as block id × 16 + count bucket. Also records the
   * blocks for {@link blocks}.
   */
  take(): number[] {
    const { result } = this.#post('Profiler.takePreciseCoverage') as {
      result: readonly ScriptCoverage[];
    };
    const features: number[] = [];
    for (const script of result) {
      let info = this.#scripts.get(script.scriptId);
      if (!info) {
        info = {
          url: script.url,
          counted: this.#scope.include(script.url),
          ours: this.#scope.ours(script.url),
        };
        this.#scripts.set(script.scriptId, info);
      }
      if (!info.counted) continue;
      let blocks = this.#blocks.get(info.url);
      if (!blocks) this.#blocks.set(info.url, (blocks = new Map()));
      for (const fn of script.functions) {
        for (const r of fn.ranges) {
          if (r.count === 0) continue;
          const key = r.startOffset * 0x1000000 + (r.endOffset - r.startOffset);
          let id = blocks.get(key);
          if (id === undefined) blocks.set(key, (id = this.#nextBlock++));
          if (!this.#covered.has(id)) {
            this.#covered.add(id);
            if (info.ours) this.#ourBlocks.add(id);
          }
          features.push(id * 16 + bucket(r.count));
        }
      }
    }
    return features;
  }

  /** Blocks that ran at least once: in our code, and in total (dependencies included). */
  blocks(): { ours: number; all: number } {
    return { ours: this.#ourBlocks.size, all: this.#covered.size };
  }

  stop(): void {
    this.#post('Profiler.stopPreciseCoverage');
    this.#session.disconnect();
  }
}
