/**
 * Limits how often one client may fail a challenge (issue 3: "failures rate-limited"), so
 * one-time and static challenges cannot be guessed at network speed: a sliding window of
 * failure times per key (the client's address); while a key is over the limit, its requests
 * are refused before any challenge is looked at.
 *
 * Two implementations of {@link Limiter}: {@link StoreFailureLimiter} keeps the failures in the
 * store, so the limit holds across worker processes and servers sharing PostgreSQL (what the
 * server uses); {@link FailureLimiter} keeps them in memory, bounded to `maxKeys` keys (tests,
 * single-process tools).
 */
import type { FailureStore } from '../store/types.ts';

export interface Limiter {
  /** True while `key` has used up its failures in the current window. */
  blocked(key: string): Promise<boolean>;
  /** Records one failure for `key`. */
  fail(key: string): Promise<void>;
}
export interface FailureLimiterOptions {
  /** Failures allowed per key within `windowMs` (default 10). */
  readonly maxFailures?: number;
  readonly windowMs?: number;
  readonly maxKeys?: number;
  readonly now?: () => number;
}

export class FailureLimiter implements Limiter {
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

  async blocked(key: string): Promise<boolean> {
    return this.#recent(key).length >= this.#max;
  }

  async fail(key: string): Promise<void> {
    const list = this.#recent(key);
    list.push(this.#now());
    this.#failures.delete(key); // re-insert: Map order is the eviction order
    this.#failures.set(key, list);
    if (this.#failures.size > this.#maxKeys)
      this.#failures.delete(this.#failures.keys().next().value!);
  }
}

export interface StoreFailureLimiterOptions extends Omit<FailureLimiterOptions, 'maxKeys'> {
  /**
   * Prefix of this limiter's keys in the shared table (`challenge:`, `signin:`): limiters with
   * different windows purge only their own rows.
   */
  readonly namespace: string;
}

/** The limiter over the store's failure table; old rows of its namespace are purged as it goes. */
export class StoreFailureLimiter implements Limiter {
  readonly #store: FailureStore;
  readonly #max: number;
  readonly #window: number;
  readonly #now: () => number;
  readonly #namespace: string;
  #failuresSincePurge = 0;

  constructor(store: FailureStore, o: StoreFailureLimiterOptions) {
    if (o.namespace === '') throw new RangeError('a store limiter needs a namespace');
    this.#store = store;
    this.#max = o.maxFailures ?? 10;
    this.#window = o.windowMs ?? 60_000;
    this.#now = o.now ?? Date.now;
    this.#namespace = o.namespace;
  }

  async blocked(key: string): Promise<boolean> {
    const since = new Date(this.#now() - this.#window);
    return (await this.#store.countFailures(this.#namespace + key, since)) >= this.#max;
  }

  async fail(key: string): Promise<void> {
    const now = this.#now();
    await this.#store.recordFailure(this.#namespace + key, new Date(now));
    if (++this.#failuresSincePurge >= 100) {
      this.#failuresSincePurge = 0;
      await this.#store.purgeFailures(new Date(now - this.#window), this.#namespace);
    }
  }
}
