/**
 * Fleet mode: N simulated Windows devices in one process, each a real {@link DeviceAgent} with
 * its state in memory, doing what a new device does: enroll (MS-MDE2), run a management session
 * (MS-MDM) that installs what its profiles say, run the SCEP enrollments the session started,
 * and report them in a second session. The load generator of `npm run bench` and the stable
 * `certpost fleet` interface.
 *
 * Devices share a pool of pre-generated RSA keys (`keyPool`): generating two RSA-2048 keys per
 * device would make the benchmark measure the fleet's key generation rather than the server.
 * Every device still gets its own certificates, serials and session state.
 */
import { percentile } from '../util/stats.ts';
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { DeviceAgent } from './agent.ts';
import { isDeviceError } from './errors.ts';
import type { KeySpec } from './keys.ts';
import { enrollDevice } from './mdm-enroll.ts';

const generate = promisify(generateKeyPair);

export interface FleetOptions {
  readonly server: string;
  readonly devices: number;
  /** Devices in flight at once. */
  readonly concurrency: number;
  readonly user?: string;
  readonly token?: string;
  /** PEM roots for an HTTPS server before enrollment brings its root. */
  readonly ca?: readonly string[];
  /**
   * Distinct keys per size in the pool (default 4). Each RSA-2048 key costs about 0.1 s of CPU
   * while the fleet starts: a pool of 16 cost 0.75 ms more fleet CPU per device on 2,000
   * devices than one of 4 (three interleaved runs).
   */
  readonly keyPool?: number;
  /** Give up on one device after this long (default 120 s). */
  readonly deviceTimeoutMs?: number;
  readonly onProgress?: (p: FleetProgress) => void;
}

export interface FleetProgress {
  readonly done: number;
  readonly enrolled: number;
  readonly certificatesInstalled: number;
  readonly failures: number;
}

export interface FleetReport extends FleetProgress {
  readonly devices: number;
  readonly seconds: number;
  readonly sessions: number;
  readonly sessionsPerSecond: number;
  readonly enrollmentsPerSecond: number;
  /** Milliseconds from a device's start to its last report, over devices that finished. */
  /** CPU time (user + system) this process spent, in seconds: the load generator's own cost. */
  readonly cpuSeconds: number;
  readonly deviceLatencyMs: {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
  };
  /** The first few failures, by message, with their count. */
  readonly failureReasons: Readonly<Record<string, number>>;
}

/**
 * A pool of keys per key spec, handed out round robin. Keys are made as they are first asked
 * for, up to `size`, and a device takes one as soon as any is ready: a fleet starts in the time
 * of one key, not of the whole pool (16 RSA-2048 keys made at once held every device for about
 * a second while the server stood idle).
 */
function keyPool(size: number): (spec: KeySpec) => Promise<KeyObject> {
  const pools = new Map<
    string,
    {
      ready: KeyObject[];
      making: number;
      waiting: { resolve(k: KeyObject): void; reject(e: unknown): void }[];
      next: number;
    }
  >();
  return async (spec) => {
    const id = spec.type === 'rsa' ? `rsa${spec.bits}` : spec.curve;
    let pool = pools.get(id);
    if (!pool) pools.set(id, (pool = { ready: [], making: 0, waiting: [], next: 0 }));
    const p = pool;
    if (p.ready.length + p.making < size) {
      p.making++;
      void (
        spec.type === 'rsa'
          ? generate('rsa', { modulusLength: spec.bits })
          : generate('ec', { namedCurve: spec.curve })
      ).then(
        ({ privateKey }) => {
          p.making--;
          p.ready.push(privateKey);
          for (const w of p.waiting.splice(0)) w.resolve(privateKey);
        },
        (e: unknown) => {
          p.making--;
          for (const w of p.waiting.splice(0)) w.reject(e);
        },
      );
    }
    if (p.ready.length > 0) return p.ready[p.next++ % p.ready.length]!;
    return new Promise<KeyObject>((resolve, reject) => p.waiting.push({ resolve, reject }));
  };
}

/** Runs the fleet; resolves with the report once every device finished or failed. */
export async function runFleet(o: FleetOptions): Promise<FleetReport> {
  const keySource = keyPool(o.keyPool ?? 4);
  const timeout = o.deviceTimeoutMs ?? 120_000;
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  const latencies: number[] = [];
  const reasons: Record<string, number> = {};
  const counts = { done: 0, enrolled: 0, certificatesInstalled: 0, failures: 0, sessions: 0 };
  const report = () =>
    o.onProgress?.({
      done: counts.done,
      enrolled: counts.enrolled,
      certificatesInstalled: counts.certificatesInstalled,
      failures: counts.failures,
    });

  async function one(i: number): Promise<void> {
    const t0 = performance.now();
    const agent = await DeviceAgent.inMemory({ name: `fleet-${i}`, keySource, minuteMs: 1 });
    const deadline = Date.now() + timeout;
    await enrollDevice(agent, {
      server: o.server,
      user: o.user ?? `fleet-${i}@certpost.invalid`,
      token: o.token ?? '',
      ...(o.ca ? { ca: o.ca } : {}),
    });
    counts.enrolled++;
    await agent.sync();
    counts.sessions++;
    // The session started SCEP enrollments: run them, and the session reporting them.
    const scep = () => agent.store.data.scep;
    while (scep().some((e) => e.phase !== 'done')) {
      if (Date.now() > deadline) throw new Error('timed out waiting for SCEP enrollment');
      const sessions = agent.store.data.mdm?.sessions ?? 0;
      await agent.runDue();
      counts.sessions += (agent.store.data.mdm?.sessions ?? 0) - sessions;
      if (scep().some((e) => e.phase !== 'done')) await new Promise((r) => setTimeout(r, 20));
    }
    const failed = scep().find((e) => e.status !== 1);
    if (failed)
      throw new Error(`SCEP enrollment ${failed.id}: ${failed.error ?? `status ${failed.status}`}`);
    if (scep().length > 0) counts.certificatesInstalled++;
    latencies.push(performance.now() - t0);
  }

  let nextDevice = 0;
  const worker = async () => {
    for (;;) {
      const i = nextDevice++;
      if (i >= o.devices) return;
      try {
        await one(i);
      } catch (e) {
        counts.failures++;
        const why = isDeviceError(e) ? `${e.code}: ${e.message}` : (e as Error).message;
        const key = why.slice(0, 160);
        if (Object.keys(reasons).length < 20 || key in reasons)
          reasons[key] = (reasons[key] ?? 0) + 1;
      }
      counts.done++;
      report();
    }
  };
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(o.concurrency, o.devices)) }, worker),
  );
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  latencies.sort((a, b) => a - b);
  return {
    devices: o.devices,
    done: counts.done,
    enrolled: counts.enrolled,
    certificatesInstalled: counts.certificatesInstalled,
    failures: counts.failures,
    seconds: Math.round(seconds * 1000) / 1000,
    sessions: counts.sessions,
    sessionsPerSecond: Math.round((counts.sessions / seconds) * 10) / 10,
    enrollmentsPerSecond: Math.round((counts.enrolled / seconds) * 10) / 10,
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
    deviceLatencyMs: {
      p50: Math.round(percentile(latencies, 50)),
      p90: Math.round(percentile(latencies, 90)),
      p99: Math.round(percentile(latencies, 99)),
      max: Math.round(percentile(latencies, 100)),
    },
    failureReasons: reasons,
  };
}
