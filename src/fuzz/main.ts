/**
 * `npm run fuzz [target…] [--seconds N] [--seed N] [--json]`: runs each target (all by default)
 * for N seconds (default 60) and prints a report per target: executions, executions per
 * second, blocks covered (in src/, and in everything loaded), corpus size and findings.
 *
 * The corpus grows across runs in `fuzz/corpus/<target>/` (each run starts from the seeds and
 * that corpus); each finding is written as it happens to `fuzz/findings/<target>/<kind>-<id>`
 * (`.bin` the input, `.txt` what happened). Both directories are git-ignored: a finding is
 * fixed, then its input moves to the parser's `testdata/fuzz/` with a provenance line, where
 * regressions.test.ts replays it. Exit code 1 when anything was found.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { inputId, runTarget, type RunReport } from './supervisor.ts';
import { TARGETS } from './targets.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function loadCorpus(dir: string): Uint8Array[] {
  try {
    return readdirSync(dir)
      .toSorted()
      .map((f) => new Uint8Array(readFileSync(join(dir, f))));
  } catch {
    return [];
  }
}

function row(r: RunReport): string {
  const found = r.findings.length
    ? r.findings.map((f) => `${f.kind} ×${f.count}: ${f.signature}`).join('\n      ')
    : 'none';
  return (
    `${r.target.padEnd(13)} ${String(r.execs).padStart(9)} execs  ${r.execsPerSecond.toFixed(0).padStart(6)}/s  ` +
    `blocks ${String(r.blocks.ours).padStart(5)} (all ${String(r.blocks.all).padStart(5)})  ` +
    `corpus ${String(r.corpus).padStart(5)}  findings: ${found}` +
    (r.slowOnlyInstrumented ? `  (${r.slowOnlyInstrumented} slow only under coverage)` : '')
  );
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(
      `usage: npm run fuzz -- [target…] [--seconds N] [--seed N] [--json]\ntargets:\n${Object.values(
        TARGETS,
      )
        .map((t) => `  ${t.name.padEnd(13)} ${t.description}`)
        .join('\n')}\n`,
    );
    return 0;
  }
  const unknown = positionals.filter((p) => !(p in TARGETS));
  if (unknown.length) {
    process.stderr.write(`unknown target ${unknown.join(', ')}; see --help\n`);
    return 2;
  }
  const seconds = Number(values.seconds);
  if (!(seconds > 0)) {
    process.stderr.write('--seconds must be a positive number\n');
    return 2;
  }
  const seed = values.seed === undefined ? Date.now() % 1_000_000 : Number(values.seed);
  const names = positionals.length ? positionals : Object.keys(TARGETS);
  const reports: RunReport[] = [];
  for (const name of names) {
    const corpusDir = join(ROOT, 'fuzz', 'corpus', name);
    const findingsDir = join(ROOT, 'fuzz', 'findings', name);
    mkdirSync(corpusDir, { recursive: true });
    if (!values.json) process.stderr.write(`fuzzing ${name} for ${seconds} s (seed ${seed})…\n`);
    const report = await runTarget({
      target: name,
      seed,
      seconds,
      corpus: loadCorpus(corpusDir),
      onCorpus: (input) => writeFileSync(join(corpusDir, inputId(input)), input),
      onFinding: (f) => {
        mkdirSync(findingsDir, { recursive: true });
        const base = join(findingsDir, `${f.kind}-${inputId(f.input)}`);
        writeFileSync(`${base}.bin`, f.input);
        writeFileSync(`${base}.txt`, `${f.signature}\n\n${f.message}\n`);
      },
    });
    reports.push(report);
    if (!values.json) process.stdout.write(`${row(report)}\n`);
  }
  if (values.json) {
    const out = reports.map((r) => ({
      ...r,
      findings: r.findings.map((f) => ({
        kind: f.kind,
        signature: f.signature,
        count: f.count,
        input: `fuzz/findings/${r.target}/${f.kind}-${inputId(f.input)}.bin`,
      })),
    }));
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  }
  return reports.some((r) => r.findings.length) ? 1 : 0;
}

process.exitCode = await main();
