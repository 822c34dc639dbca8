/**
 * `certpost doctor`: the deployment checks of server/doctor.ts, printed one line each (or as
 * JSON), exiting {@link EXIT.unhealthy} when any check fails. Warnings exit 0: they need
 * attention, not an alarm at 3 a.m.
 */
import type { Command } from 'commander';
import { overall, runDoctor, type CheckStatus } from '../server/doctor.ts';
import { dataOptions, withContext, type DataOptions } from './admin.ts';
import { CliError, EXIT } from './exit-codes.ts';

const MARK: Readonly<Record<CheckStatus, string>> = { ok: '✔', warn: '⚠', fail: '✘' };

export function doctorCommands(root: Command, out: (s: string) => void): void {
  dataOptions(
    root
      .command('doctor')
      .description(
        'check a deployment: data directory, database and its clock, CA expiry and keys, CRL, pending approvals, and (with --url) the running server',
      )
      .option('--url <url>', 'also check the running server at this URL (health, clock, TLS)')
      .option('--warn-days <n>', 'warn when a CA certificate expires within this many days', '90'),
  ).action(async (o: DataOptions & { url?: string; warnDays: string }) => {
    const warnDays = Number(o.warnDays);
    if (!Number.isInteger(warnDays) || warnDays < 0)
      throw new CliError(`--warn-days must be a whole number of days`, EXIT.usage);
    const checks = await withContext(o, (ctx) =>
      runDoctor(ctx, { dataDir: o.data, url: o.url, expiryWarnDays: warnDays }),
    );
    const status = overall(checks);
    out(
      o.json
        ? `${JSON.stringify({ status, checks }, null, 2)}\n`
        : checks.map((c) => `${MARK[c.status]} ${c.id.padEnd(16)} ${c.summary}\n`).join(''),
    );
    const failed = checks.filter((c) => c.status === 'fail').length;
    if (failed > 0) throw new CliError(`${failed} check(s) failed`, EXIT.unhealthy);
  });
}
