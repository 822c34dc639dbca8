/**
 * `npm run bench`: every figure printed next to its reference, measured in the same run, with
 * the ratio (figure ÷ reference, or the inverse when lower is better, so > 1 always means
 * "better than the reference"). `--json` prints the figures as one JSON document instead.
 */
import { benchFleet } from './fleet.ts';
import { benchInspect } from './inspect.ts';
import { benchPkcs12 } from './pkcs12.ts';
import { benchScep } from './scep.ts';
import { benchXml } from './xml.ts';
import type { BenchFigure } from './figure.ts';

const SUITES: Readonly<Record<string, () => Promise<BenchFigure[]>>> = {
  inspect: benchInspect,
  pkcs12: benchPkcs12,
  scep: benchScep,
  xml: benchXml,
  fleet: benchFleet,
};

function fmt(v: number): string {
  return v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toPrecision(3);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const only = args.filter((a) => !a.startsWith('--'));
  const figures: BenchFigure[] = [];
  for (const [name, suite] of Object.entries(SUITES)) {
    if (only.length && !only.includes(name)) continue;
    if (!json) process.stderr.write(`running ${name}…\n`);
    figures.push(...(await suite()));
  }
  if (json) {
    process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    return;
  }
  for (const f of figures) {
    const [num, den] =
      f.better === 'higher' ? [f.value, f.reference.value] : [f.reference.value, f.value];
    // 0 failures against the reference's 0 is a tie; against its 12 %, "better by any factor".
    const ratio = den === 0 ? (num === 0 ? '1.00' : '∞') : (num / den).toFixed(2);
    process.stdout.write(
      `\n${f.name}\n  ${fmt(f.value)} ${f.unit}   vs ${f.reference.name}: ${fmt(f.reference.value)} ${f.unit}   ` +
        `ratio ${ratio} (${f.better} is better)${f.goal ? `   goal ${f.goal}` : ''}\n`,
    );
  }
}

await main();
