/**
 * `certpost mdm …`: Windows MDM administration over a data directory: enrollment tokens, the
 * enrolled devices, and a device's command queue. The operations are server/mdm-admin.ts's,
 * shared with the admin API; here is only the command line around them.
 */
import type { Command } from 'commander';
import * as mdm from '../server/mdm-admin.ts';
import { dataOptions, op, parseDuration, withContext, type DataOptions } from './admin.ts';
import { readInput } from './io.ts';

const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;

export function mdmCommands(root: Command, out: (s: string) => void): void {
  const group = root
    .command('mdm')
    .description('Windows MDM: enrollment tokens, enrolled devices, device commands');

  const token = group.command('token').description('tokens devices enroll with (MS-MDE2)');
  dataOptions(
    token
      .command('create')
      .description('create an enrollment token; printed once, stored as a SHA-256 hash')
      .option('--user <upn>', 'the user devices enrolled with it belong to (user@domain)')
      .option('--uses <n>', 'how many devices may enroll with it', '1')
      .option('--ttl <duration>', 'lifetime, e.g. 24h, 7d', '7d'),
  )
    .addHelpText(
      'after',
      '\nA device enrolls with: certpost device enroll --server URL --token TOKEN [--user UPN]',
    )
    .action(async (o: DataOptions & { user?: string; uses: string; ttl: string }) => {
      const ttlMs = parseDuration(o.ttl);
      await withContext(o, async (ctx) => {
        const created = await op(() =>
          mdm.createEnrollmentToken(ctx, 'cli', {
            uses: Number(o.uses),
            ttlMs,
            ...(o.user !== undefined ? { user: o.user } : {}),
          }),
        );
        out(o.json ? json(created) : `${created.token}\n`);
      });
    });
  dataOptions(
    token.command('list').description('every enrollment token (never the secret)'),
  ).action(async (o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await mdm.listEnrollmentTokens(ctx);
      out(
        o.json
          ? json(r)
          : r.tokens
              .map((t) => `${t.id}  ${t.usesLeft} left  until ${t.expiresAt}  ${t.user ?? '-'}\n`)
              .join(''),
      );
    });
  });
  dataOptions(
    token.command('revoke').description('no more enrollments with this token').argument('<id>'),
  ).action(async (id: string, o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await op(() => mdm.revokeEnrollmentToken(ctx, 'cli', id));
      out(o.json ? json(r) : `revoked ${id}\n`);
    });
  });

  dataOptions(group.command('devices').description('enrolled devices')).action(
    async (o: DataOptions) => {
      await withContext(o, async (ctx) => {
        const r = await mdm.listDevices(ctx, { limit: 10_000 });
        out(
          o.json
            ? json(r)
            : r.devices
                .map(
                  (d) =>
                    `${d.id}  ${d.name}  ${d.user ?? '-'}  seen ${d.lastSeenAt ?? 'never'}${d.unenrolledAt ? '  (unenrolled)' : ''}\n`,
                )
                .join(''),
        );
      });
    },
  );

  dataOptions(
    group
      .command('device')
      .description('one device: what it reported, and its commands with their outcome')
      .argument('<id>')
      .option('--limit <n>', 'commands to show, newest first', '50'),
  ).action(async (id: string, o: DataOptions & { limit: string }) => {
    await withContext(o, async (ctx) => {
      const r = await op(() => mdm.showDevice(ctx, id, { limit: Number(o.limit) }));
      if (o.json) return out(json(r));
      const d = r.device;
      out(
        `${d.id}  ${d.name}\n  user ${d.user ?? '-'}  enrolled ${d.enrolledAt}  seen ${d.lastSeenAt ?? 'never'}\n`,
      );
      for (const [k, v] of Object.entries(d.info)) out(`  ${k}: ${v}\n`);
      for (const c of r.commands)
        out(`  ${c.id}  ${c.command.kind}  ${c.status ?? (c.sentAt ? 'sent' : 'queued')}\n`);
    });
  });

  dataOptions(
    group
      .command('run-command')
      .description('queue SyncML commands (Add, Replace, Delete, Get, Exec, Atomic) for a device')
      .argument('<device>')
      .requiredOption('--payload <file>', 'the commands as SyncBody XML ("-" reads stdin)'),
  )
    .addHelpText(
      'after',
      '\nThe device gets them in its next session; "certpost mdm device ID" shows their status and results.\nExample payload: <Get><CmdID>1</CmdID><Item><Target><LocURI>./DevDetail/SwV</LocURI></Target></Item></Get>',
    )
    .action(async (device: string, o: DataOptions & { payload: string }) => {
      const payload = Buffer.from(await readInput(o.payload)).toString('utf8');
      await withContext(o, async (ctx) => {
        const r = await op(() => mdm.runCommand(ctx, 'cli', device, payload));
        out(o.json ? json(r) : `${r.commands.join('\n')}\n`);
      });
    });
}
