/**
 * Administration commands over a data directory: `ca init`, `challenge create`,
 * `requests list|approve|reject`. They open the same store and CA as `serve` (SQLite allows
 * a running server and these commands at once), print text or, with `--json`, one document.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { challengeHash } from '../ca/enrollment.ts';
import { formatName, sha1Thumbprint } from '../pki/x509.ts';
import { builtinProfiles, openContext, type ServerContext } from '../server/context.ts';
import { CliError, EXIT } from './exit-codes.ts';

interface DataOptions {
  data: string;
  database?: string;
  json?: boolean;
}

function dataOptions(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'data directory', process.env['CERTPOST_DATA'] ?? './data')
    .option(
      '--database <url>',
      'postgres://… instead of the SQLite file in the data directory (or CERTPOST_DATABASE)',
      process.env['CERTPOST_DATABASE'],
    )
    .option('--json', 'print one JSON document');
}

async function withContext<T>(
  o: DataOptions,
  f: (ctx: ServerContext) => Promise<T>,
  createCa = false,
): Promise<T> {
  let ctx: ServerContext;
  try {
    ctx = await openContext({ dataDir: o.data, database: o.database, createCa });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CliError(
        `no CA in ${join(o.data, 'ca')}: run "certpost ca init --data ${o.data}" or "certpost serve" first`,
        EXIT.input,
      );
    }
    throw e;
  }
  try {
    return await f(ctx);
  } finally {
    await ctx.close();
  }
}

/** Parses durations like `90s`, `60m`, `24h`, `7d` into milliseconds. */
export function parseDuration(s: string): number {
  const m = /^(\d+)\s*(s|m|h|d)$/.exec(s.trim());
  if (!m) throw new CliError(`not a duration: "${s}" (use e.g. 90s, 60m, 24h, 7d)`, EXIT.usage);
  return (
    Number(m[1]) *
    { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
  );
}

export function adminCommands(root: Command, out: (s: string) => void): void {
  const ca = root.command('ca').description('the certificate authority in a data directory');
  dataOptions(
    ca
      .command('init')
      .description(
        'create a root and an issuing CA (keys encrypted at rest; passphrase from CERTPOST_CA_PASSPHRASE)',
      )
      .addOption(
        new Option(
          '--key-type <type>',
          'CA key type (an EC CA gets an RSA RA certificate for SCEP)',
        )
          .choices(['rsa', 'ec'])
          .default('rsa'),
      ),
  ).action(async (o: DataOptions & { keyType: 'rsa' | 'ec' }) => {
    let existed = true;
    try {
      await withContext(o, async () => undefined);
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      existed = false;
    }
    if (existed) throw new CliError(`${o.data} already has a CA`, EXIT.usage);
    const ctx = await openContext({
      dataDir: o.data,
      database: o.database,
      createCa: true,
      keyType: o.keyType,
    });
    try {
      const summary = [ctx.ca.root, ctx.ca.issuing, ...(ctx.ca.ra ? [ctx.ca.ra] : [])].map((x) => ({
        subject: formatName(x.certificate.subject),
        sha1: sha1Thumbprint(x.certificate),
        notAfter: x.certificate.notAfter.toISOString(),
      }));
      out(
        o.json
          ? `${JSON.stringify({ certificates: summary }, null, 2)}\n`
          : summary
              .map((s) => `${s.subject}\n  SHA-1 ${s.sha1}, valid until ${s.notAfter}\n`)
              .join(''),
      );
    } finally {
      await ctx.close();
    }
  });

  const challenge = root.command('challenge').description('one-time SCEP challenge passwords');
  dataOptions(
    challenge
      .command('create')
      .description(
        'create a one-time challenge: single use, expiring, bound to a profile and optionally to a subject',
      )
      .option(
        '--profile <name>',
        `issuance profile (${[...builtinProfiles().keys()].join(', ')})`,
        'default',
      )
      .option(
        '--subject <dn>',
        'only a request with exactly this subject (RFC 4514, e.g. "CN=device-42,O=Contoso") may use it',
      )
      .option('--ttl <duration>', 'lifetime, e.g. 60m, 24h', '60m'),
  )
    .addHelpText(
      'after',
      '\nPrints the challenge on one line (or JSON with --json). It is stored only as a SHA-256 hash.',
    )
    .action(async (o: DataOptions & { profile: string; subject?: string; ttl: string }) => {
      const ttl = parseDuration(o.ttl);
      await withContext(o, async (ctx) => {
        if (!ctx.profiles.has(o.profile))
          throw new CliError(
            `no profile "${o.profile}" (have: ${[...ctx.profiles.keys()].join(', ')})`,
            EXIT.usage,
          );
        const secret = randomBytes(24).toString('base64url');
        const now = new Date();
        const rec = {
          id: randomUUID(),
          secretHash: challengeHash(secret),
          profile: o.profile,
          subject: o.subject ?? null,
          createdAt: now,
          expiresAt: new Date(now.getTime() + ttl),
        };
        await ctx.store.createChallenge(rec);
        await ctx.store.appendAudit({
          at: now,
          actor: 'cli',
          action: 'challenge.created',
          target: rec.id,
          details: {
            profile: rec.profile,
            subject: rec.subject,
            expiresAt: rec.expiresAt.toISOString(),
          },
        });
        out(
          o.json
            ? `${JSON.stringify({ id: rec.id, challenge: secret, profile: rec.profile, subject: rec.subject, expiresAt: rec.expiresAt.toISOString() }, null, 2)}\n`
            : `${secret}\n`,
        );
      });
    });

  const requests = root
    .command('requests')
    .description('enrollment requests held for approval (SCEP PENDING)');
  dataOptions(
    requests
      .command('list')
      .description('list requests')
      .addOption(
        new Option('--status <status>', 'only this status')
          .choices(['pending', 'approved', 'rejected', 'issued'])
          .default('pending'),
      ),
  ).action(async (o: DataOptions & { status: 'pending' | 'approved' | 'rejected' | 'issued' }) => {
    await withContext(o, async (ctx) => {
      const list = await ctx.store.listRequests(o.status);
      const rows = list.map((r) => ({
        id: r.id,
        transactionId: r.transactionId,
        subject: r.subject,
        profile: r.profile,
        status: r.status,
        createdAt: r.createdAt.toISOString(),
      }));
      out(
        o.json
          ? `${JSON.stringify({ requests: rows }, null, 2)}\n`
          : rows.length
            ? rows
                .map(
                  (r) =>
                    `${r.id}  ${r.status}  ${r.createdAt}  ${r.subject}  (profile ${r.profile})\n`,
                )
                .join('')
            : `no ${o.status} requests\n`,
      );
    });
  });
  for (const decision of ['approve', 'reject'] as const) {
    dataOptions(
      requests
        .command(decision)
        .description(
          `${decision} a pending request; the device's next poll gets ${decision === 'approve' ? 'its certificate' : 'FAILURE'}`,
        )
        .argument('<id>', 'request id (from requests list)'),
    ).action(async (id: string, o: DataOptions) => {
      await withContext(o, async (ctx) => {
        const ok = await ctx.enrollment.decide(
          id,
          decision === 'approve' ? 'approved' : 'rejected',
          'cli',
        );
        if (!ok) throw new CliError(`request ${id} does not exist or is not pending`, EXIT.input);
        out(
          o.json
            ? `${JSON.stringify({ id, status: decision === 'approve' ? 'approved' : 'rejected' })}\n`
            : `${id} ${decision === 'approve' ? 'approved' : 'rejected'}\n`,
        );
      });
    });
  }
}
