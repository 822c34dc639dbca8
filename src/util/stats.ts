/** Small statistics shared by the fleet report and the benchmarks. */

/**
 * The `p`th percentile (0–100) of ascending `sorted` values: the value at index ⌊p/100 · n⌋,
 * clamped to the last; 0 for no values.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
