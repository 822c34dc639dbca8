/**
 * SCEP issuance throughput (design.md §5: ≥ 600 enrollments/s, ≥ 3× the reference, 0 failures,
 * 0 duplicate serials), measured with the shared tool `scep-bench.sh --mode replay`: it lets
 * the real micromdm scepclient build N PKCSReq messages (RSA-2048, each its own CN and
 * transactionID), then replays them C at a time and times only the server.
 *
 * Same run, same tool, against micromdm scepserver 2.1.0 (`scep-reference-server.sh`), and
 * OpenSSL's own RSA-2048 sign rate on this machine as the physical reference (an issuance costs
 * about three private-key operations: unwrap the content key, sign the certificate, sign the
 * CertRep). Needs ../shared/tools beside the repository and the Debian packages `scep`, `socat`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnServe } from '../src/testing/serve-process.ts';
import type { BenchFigure } from './figure.ts';
import { opensslSignRate } from './host.ts';
import { buildRequests, replayTimed, type LatencyResult } from './scep-latency.ts';

const TOOLS = new URL('../../shared/tools/', import.meta.url).pathname;
const CHALLENGE = 'bench-challenge';

interface ReplayResult {
  rate: number;
  ok: number;
  fail: number;
  /** The server process's CPU (user + system) per enrollment, when its pid was given. */
  cpuMs: number;
}

/**
 * Replays `n` requests, `c` at a time. With `serverPid` the tool also reads that process's
 * utime+stime before and after: CPU per enrollment, which the shared machine's load does not
 * distort as it does the wall-clock rate.
 */
function replay(url: string, n: number, c: number, serverPid?: number): ReplayResult {
  const out = execFileSync(
    'bash',
    [join(TOOLS, 'scep-bench.sh'), '--mode', 'replay', url, CHALLENGE, String(n), String(c)],
    {
      maxBuffer: 16 << 20,
      env: {
        ...process.env,
        ...(serverPid !== undefined ? { SCEP_BENCH_SERVER_PID: String(serverPid) } : {}),
      },
    },
  ).toString();
  const line = out.split('\n').find((l) => l.startsWith('bench '));
  if (!line) throw new Error(`scep-bench.sh printed no result:\n${out}`);
  const num = (k: string) => Number(new RegExp(`(?:^| )${k}=([\\d.]+)`).exec(line)?.[1] ?? NaN);
  return {
    rate: num('rate'),
    ok: num('ok'),
    fail: num('fail'),
    cpuMs: num('server_cpu_ms_per_enroll'),
  };
}

/** The pid of the reference scepserver itself (not the socat bridges in front of it). */
function referencePid(refDir: string): number | undefined {
  try {
    return Number(readFileSync(join(refDir, 'inner_scepserver.pid'), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Server processes for our side. One by default: on this 2-core class of machine the replay
 * client shares the cores, and one worker measured faster than two (SCEP_BENCH_WORKERS=auto
 * to compare).
 */
const WORKERS = process.env['SCEP_BENCH_WORKERS'] ?? '1';

/** One line of a latency pass's figures. */
function summary(r: LatencyResult): string {
  return `${r.ok} ok, ${r.failed} failed, p50 ${r.p50.toFixed(0)} ms, p95 ${r.p95.toFixed(0)} ms, max ${r.max.toFixed(0)} ms, ${r.rate.toFixed(0)}/s`;
}

/** Builds `n` requests for `url` (with our client), then replays them timed. */
async function latency(url: string, n: number, c: number): Promise<LatencyResult> {
  process.stderr.write(`  latency: ${url}, ${n} requests, concurrency ${c}…\n`);
  return replayTimed(url, await buildRequests(url, CHALLENGE, n), c);
}

export async function benchScep(): Promise<BenchFigure[]> {
  if (!existsSync(join(TOOLS, 'scep-bench.sh')))
    throw new Error(`SCEP bench needs ${TOOLS} (the shared tools beside the repository)`);
  const n = Number(process.env['SCEP_BENCH_N'] ?? 600);
  const work = mkdtempSync(join(tmpdir(), 'certpost-bench-'));
  const figures: BenchFigure[] = [];
  // At the default log level: a JSON access line per request is part of what is measured
  // (SCEP_BENCH_LOG_LEVEL=warn measures without them).
  const level = process.env['SCEP_BENCH_LOG_LEVEL'] ?? 'info';
  const ours = await spawnServe(
    ['--data', join(work, 'data'), '--log-level', level, '--workers', WORKERS],
    {
      env: { ...process.env, CERTPOST_SCEP_CHALLENGE: CHALLENGE },
    },
  );
  const refDir = join(work, 'reference');
  try {
    execFileSync(
      'bash',
      [
        join(TOOLS, 'scep-reference-server.sh'),
        'start',
        refDir,
        '18081',
        CHALLENGE,
        '-allowrenew',
        '0',
      ],
      { stdio: 'ignore' },
    );
    const sign = opensslSignRate();
    // With several workers the process started is the primary; its CPU is not the servers'.
    const ourPid = WORKERS === '1' ? ours.child.pid : undefined;
    const refPid = referencePid(refDir);
    for (const c of [8, 32]) {
      const mine = replay(`${ours.url}/scep`, n, c, ourPid);
      const ref = replay('http://127.0.0.1:18081/scep', Math.min(n, 400), c, refPid);
      figures.push({
        name: `scep: issuance, RSA-2048, replayed scepclient PKCSReq, concurrency ${c}, ${WORKERS} worker(s) (ours: ${mine.ok} ok, ${mine.fail} failed; reference: ${ref.ok} ok, ${ref.fail} failed)`,
        value: mine.rate,
        unit: 'enroll/s',
        reference: { name: 'micromdm scepserver 2.1.0, same tool, same run', value: ref.rate },
        better: 'higher',
        goal: '≥ 600/s and ≥ 3× the reference, 0 failures',
      });
      if (ourPid !== undefined)
        figures.push({
          name: `scep: server CPU (user + system) per enrollment, concurrency ${c}`,
          value: mine.cpuMs,
          unit: 'ms',
          reference: {
            name: 'micromdm scepserver 2.1.0 (without the socat bridge), same run',
            value: ref.cpuMs,
          },
          better: 'lower',
        });
    }
    // Latency under the same load: every request timed, ours and the reference's.
    for (const c of [8, 32]) {
      const mine = await latency(`${ours.url}/scep`, n, c);
      const ref = await latency('http://127.0.0.1:18081/scep', Math.min(n, 400), c);
      figures.push(
        {
          name: `scep: p99 latency, RSA-2048 PKCSReq, concurrency ${c} (ours: ${summary(mine)}; reference: ${summary(ref)})`,
          value: mine.p99,
          unit: 'ms',
          reference: { name: 'micromdm scepserver 2.1.0, same load', value: ref.p99 },
          better: 'lower',
        },
        {
          name: `scep: error rate under load, concurrency ${c}`,
          value: (100 * mine.failed) / (mine.ok + mine.failed),
          unit: '%',
          reference: {
            name: 'micromdm scepserver 2.1.0, same load',
            value: (100 * ref.failed) / (ref.ok + ref.failed),
          },
          better: 'lower',
          goal: '0 %',
        },
      );
    }
    figures.push({
      name: 'scep: physical reference, OpenSSL RSA-2048 signatures on one core (an issuance is ~3 private-key operations)',
      value: sign,
      unit: 'sign/s',
      reference: { name: 'same', value: sign },
      better: 'higher',
    });
  } finally {
    await ours.stop();
    try {
      execFileSync('bash', [join(TOOLS, 'scep-reference-server.sh'), 'stop', refDir], {
        stdio: 'ignore',
      });
    } catch {
      // already stopped
    }
    rmSync(work, { recursive: true, force: true });
  }
  return figures;
}
