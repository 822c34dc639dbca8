/**
 * XML reading (src/omadm/xml-read.ts) against saxes, the reader it replaced (kept as the
 * reference in xml-testing.ts), on the recorded messages of an enrollment and management session
 * (omadm/testdata/session) and on the MS-MDE2 vectors (omadm/testdata/mde2, the not well-formed
 * one left out): the figure that justifies writing our own reader, and the one that catches it
 * slowing down. Time is CPU time (process.cpuUsage), the median of rounds that alternate the two
 * readers, so that a busy machine slows both alike.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { readXml } from '../src/omadm/xml-read.ts';
import { readXmlWithSaxes } from '../src/omadm/xml-testing.ts';
import type { BenchFigure } from './figure.ts';

const TESTDATA = new URL('../src/omadm/testdata/', import.meta.url);

function corpus(dir: string): string[] {
  return readdirSync(new URL(dir, TESTDATA))
    .filter((f) => f.endsWith('.xml') && !f.includes('getpolicies-response'))
    .toSorted()
    .map((f) => readFileSync(new URL(`${dir}/${f}`, TESTDATA), 'utf8'));
}

type Reader = (xml: string, fail: (message: string) => Error) => unknown;
const fail = (message: string) => new Error(message);

/** CPU µs per document for `read` over `docs`, `passes` times. */
function cpu(read: Reader, docs: readonly string[], passes: number): number {
  const start = process.cpuUsage();
  for (let p = 0; p < passes; p++) for (const d of docs) read(d, fail);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / (passes * docs.length);
}

const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[xs.length >> 1]!;

/** Median µs per document of each reader, in alternating rounds after a warm-up. */
function compare(docs: readonly string[]): { ours: number; saxes: number } {
  cpu(readXml, docs, 500);
  cpu(readXmlWithSaxes, docs, 150);
  const ours: number[] = [];
  const saxes: number[] = [];
  for (let round = 0; round < 41; round++) {
    ours.push(cpu(readXml, docs, 30));
    saxes.push(cpu(readXmlWithSaxes, docs, 10));
  }
  return { ours: median(ours), saxes: median(saxes) };
}

export async function benchXml(): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  for (const [dir, what] of [
    ['session', 'SyncML and MS-MDE2 messages of a session'],
    ['mde2', 'MS-MDE2 vectors'],
  ] as const) {
    const docs = corpus(dir);
    const bytes = docs.reduce((n, d) => n + Buffer.byteLength(d), 0) / docs.length;
    const { ours, saxes } = compare(docs);
    const label = `xml: readXml on the ${docs.length} ${what} (${(bytes / 1024).toFixed(1)} KiB average)`;
    figures.push(
      {
        name: label,
        value: ours,
        unit: 'µs/document',
        reference: { name: 'saxes (the reader before)', value: saxes },
        better: 'lower',
        ...(dir === 'session' ? { goal: '≥ 3× faster than saxes' } : {}),
      },
      {
        name: `${label}, throughput`,
        value: bytes / ours,
        unit: 'MB/s',
        reference: { name: 'saxes (the reader before)', value: bytes / saxes },
        better: 'higher',
      },
    );
  }
  return figures;
}
