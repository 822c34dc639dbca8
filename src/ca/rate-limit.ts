/**
 * Limits how often one client may fail a challenge (issue 3: "failures rate-limited"), so
 * one-time and static challenges cannot be guessed at network speed. A sliding window of
 * failure times per key (the client's address); while a key is over the limit, its requests
 * are refused before any challenge is looked at. Memory is bounded: at most `maxKeys` keys are
 * tracked, the oldest dropped first.
 */
export interface FailureLimiterOptions {
  /** Failures allowed per key within `windowMs` (default 10). */
  readonly maxFailures?: number;
  readonly windowMs?: number;
  readonly maxKeys?: number;
  readonly now?: () => number;
}

export class FailureLimiter {
  readonly #max: number;
  readonly #window: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #failures = new Map<string, number[]>();

  constructor(o: FailureLimiterOptions = {}) {
    this.#max = o.maxFailures ?? 10;
    this.#window = o.windowMs ?? 60_000;
    this.#maxKeys = o.maxKeys ?? 100_000;
    this.#now = o.now ?? Date.now;
  }

  #recent(key: string): number[] {
    const since = this.#now() - this.#window;
    const list = (this.#failures.get(key) ?? []).filter((t) => t > since);
    if (list.length) this.#failures.set(key, list);
    else this.#failures.delete(key);
    return list;
  }

  /** True while `key` has used up its failures in the current window. */
  blocked(key: string): boolean {
    return this.#recent(key).length >= this.#max;
  }

  /** Records one failure for `key`. */
  fail(key: string): void {
    const list = this.#recent(key);
    list.push(this.#now());
    this.#failures.delete(key); // re-insert: Map order is the eviction order
    this.#failures.set(key, list);
    if (this.#failures.size > this.#maxKeys)
      this.#failures.delete(this.#failures.keys().next().value!);
  }
}
