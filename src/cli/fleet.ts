/**
 * `certpost fleet`: N simulated Windows devices against a certpost server (device/fleet.ts),
 * with a progress bar on stderr and a summary; `--json` prints one JSON object (a stable
 * interface: devices, enrolled, certificatesInstalled, failures, seconds, and more).
 */
import type { Command } from 'commander';
import { runFleet, type FleetProgress } from '../device/fleet.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { enrollmentInputs } from './io.ts';

function bar(p: FleetProgress, total: number, started: number): string {
  const width = 30;
  const filled = Math.round((p.done / total) * width);
  const rate = p.done / Math.max(0.001, (performance.now() - started) / 1000);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${total} devices, ${p.enrolled} enrolled, ${p.certificatesInstalled} certificates, ${p.failures} failed, ${rate.toFixed(0)}/s`;
}

export function fleetCommands(root: Command, out: (s: string) => void): void {
  root
    .command('fleet')
    .description('simulate N Windows devices: each enrolls, runs its sessions and SCEP enrollments')
    .requiredOption('--server <url>', 'the certpost server, e.g. http://127.0.0.1:8080')
    .option('--devices <n>', 'how many devices', '100')
    .option('--concurrency <n>', 'devices in flight at once', '64')
    .option(
      '--token-file <file>',
      'enrollment token (or CERTPOST_ENROLLMENT_TOKEN); none for open enrollment',
    )
    .option('--ca-file <file>', 'PEM roots to trust for an HTTPS server')
    .option('--key-pool <n>', 'pre-generated RSA keys shared by the devices', '4')
    .option('--json', 'print one JSON object at the end')
    .addHelpText(
      'after',
      '\nThe server needs profiles assigned, e.g. "certpost profile apply-defaults --data DIR".\nProgress goes to stderr; the summary (or --json) to stdout.',
    )
    .action(
      async (o: {
        server: string;
        devices: string;
        concurrency: string;
        tokenFile?: string;
        caFile?: string;
        keyPool: string;
        json?: boolean;
      }) => {
        const devices = Number(o.devices);
        const concurrency = Number(o.concurrency);
        const pool = Number(o.keyPool);
        for (const [name, v, max] of [
          ['--devices', devices, 1_000_000],
          ['--concurrency', concurrency, 10_000],
          ['--key-pool', pool, 10_000],
        ] as const)
          if (!Number.isInteger(v) || v < 1 || v > max)
            throw new CliError(`${name} must be a whole number from 1 to ${max}`, EXIT.usage);
        const { token, ca } = await enrollmentInputs(o);
        const started = performance.now();
        const tty = process.stderr.isTTY;
        let last = 0;
        const report = await runFleet({
          server: o.server,
          devices,
          concurrency,
          keyPool: pool,
          ...(token !== undefined ? { token } : {}),
          ...(ca ? { ca } : {}),
          onProgress: (p) => {
            const now = performance.now();
            if (p.done === devices || now - last > (tty ? 100 : 5000)) {
              last = now;
              process.stderr.write(
                tty ? `\r${bar(p, devices, started)}` : `${bar(p, devices, started)}\n`,
              );
            }
          },
        });
        if (tty) process.stderr.write('\n');
        if (o.json) out(`${JSON.stringify(report)}\n`);
        else {
          const l = report.deviceLatencyMs;
          out(
            `${report.devices} devices in ${report.seconds} s: ${report.enrolled} enrolled, ${report.certificatesInstalled} SCEP certificates installed, ${report.failures} failed\n` +
              `${report.enrollmentsPerSecond} enrollments/s, ${report.sessionsPerSecond} sessions/s; per device p50 ${l.p50} ms, p90 ${l.p90} ms, p99 ${l.p99} ms, max ${l.max} ms\n` +
              Object.entries(report.failureReasons)
                .map(([why, n]) => `  ${n}× ${why}\n`)
                .join(''),
          );
        }
        if (report.failures > 0)
          throw new CliError(
            `${report.failures} of ${report.devices} devices failed`,
            EXIT.refused,
          );
      },
    );
}
