/**
 * The fuzzer's only source of randomness: a seeded 32-bit generator (mulberry32), so that a run
 * with the same seed, seeds and code tries the same inputs in the same order.
 */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in [0, n); 0 when n ≤ 0. */
  below(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.next() / 0x1_0000_0000) * n);
  }

  /** True with probability 1/n. */
  oneIn(n: number): boolean {
    return this.below(n) === 0;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[this.below(items.length)]!;
  }

  /** A length in [1, max], small values much likelier (as libFuzzer's mutation sizes). */
  smallLength(max: number): number {
    if (max <= 1) return 1;
    const cap = this.oneIn(4) ? max : Math.min(max, 8);
    return 1 + this.below(cap);
  }
}
