/** One benchmark figure, printed by `bench/run.ts` next to the reference measured in the same run. */
export interface BenchFigure {
  name: string;
  value: number;
  unit: string;
  reference: { name: string; value: number };
  better: 'higher' | 'lower';
  /** The design's target for this figure, printed beside it (design.md §5). */
  goal?: string;
}
