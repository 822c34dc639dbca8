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
import { importAuthority } from '../ca/authority.ts';
import { CRL_REASONS } from '../ca/crl.ts';
import type { RevocationReason } from '../store/types.ts';
import {
  builtinProfiles,
  installAuthority,
  openContext,
  type ServerContext,
} from '../server/context.ts';
import { readInput } from './io.ts';
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

/** True when the data directory already holds a CA. */
async function hasCa(o: DataOptions): Promise<boolean> {
  try {
    await withContext(o, async () => undefined);
    return true;
  } catch (e) {
    if (e instanceof CliError) return false;
    throw e;
  }
}

function printCa(ctx: ServerContext, o: DataOptions, out: (s: string) => void): void {
  const summary = [ctx.ca.root, ctx.ca.issuing, ...(ctx.ca.ra ? [ctx.ca.ra] : [])].map((x) => ({
    subject: formatName(x.certificate.subject),
    sha1: sha1Thumbprint(x.certificate),
    notAfter: x.certificate.notAfter.toISOString(),
  }));
  out(
    o.json
      ? `${JSON.stringify({ certificates: summary }, null, 2)}\n`
      : summary.map((s) => `${s.subject}\n  SHA-1 ${s.sha1}, valid until ${s.notAfter}\n`).join(''),
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
    if (await hasCa(o)) throw new CliError(`${o.data} already has a CA`, EXIT.usage);
    const ctx = await openContext({
      dataDir: o.data,
      database: o.database,
      createCa: true,
      keyType: o.keyType,
    });
    try {
      printCa(ctx, o, out);
    } finally {
      await ctx.close();
    }
  });

  dataOptions(
    ca
      .command('import')
      .description(
        'use an existing CA: a PFX, or PEM with the key and its certificate (and the root); the certificate matching the key becomes the issuing CA',
      )
      .argument('<file>', 'PFX/P12 or PEM file, or - for standard input')
      .option(
        '-p, --password <password>',
        'password of the PFX or encrypted key (or CERTPOST_PASSWORD)',
        process.env['CERTPOST_PASSWORD'],
      ),
  ).action(async (file: string, o: DataOptions & { password?: string }) => {
    if (await hasCa(o)) throw new CliError(`${o.data} already has a CA`, EXIT.usage);
    const material = await importAuthority(await readInput(file), o.password);
    await installAuthority(o.data, material);
    await withContext(o, async (ctx) => {
      await ctx.store.appendAudit({
        at: new Date(),
        actor: 'cli',
        action: 'ca.imported',
        target: sha1Thumbprint(ctx.ca.issuing.certificate),
        details: { subject: formatName(ctx.ca.issuing.certificate.subject) },
      });
      printCa(ctx, o, out);
    });
  });

  const certs = root.command('certificates').description('certificates this CA issued');
  dataOptions(
    certs
      .command('list')
      .description('list issued certificates, newest first')
      .option('--subject <dn>', 'only this exact subject (RFC 4514)')
      .option('--revoked', 'only revoked certificates')
      .option('--limit <n>', 'at most this many', '100'),
  ).action(async (o: DataOptions & { subject?: string; revoked?: boolean; limit: string }) => {
    const limit = Number(o.limit);
    if (!Number.isInteger(limit) || limit < 1)
      throw new CliError('--limit must be a positive whole number', EXIT.usage);
    await withContext(o, async (ctx) => {
      const list = await ctx.store.listCertificates({
        limit,
        ...(o.subject ? { subject: o.subject } : {}),
        ...(o.revoked ? { revoked: true } : {}),
      });
      const rows = list.map((c) => ({
        serial: c.serial,
        subject: c.subject,
        sha1: c.sha1,
        profile: c.profile,
        notAfter: c.notAfter.toISOString(),
        revoked: c.revokedAt
          ? { at: c.revokedAt.toISOString(), reason: CRL_REASONS[c.revocationReason ?? 0] }
          : null,
      }));
      out(
        o.json
          ? `${JSON.stringify({ certificates: rows }, null, 2)}\n`
          : rows.length
            ? rows
                .map(
                  (r) =>
                    `${r.serial}  ${r.notAfter}  ${r.revoked ? `REVOKED (${r.revoked.reason})` : 'valid'}  ${r.subject}\n`,
                )
                .join('')
            : 'no certificates\n',
      );
    });
  });
  const reasonNames = Object.entries(CRL_REASONS).filter(([code]) => code !== '8');
  dataOptions(
    certs
      .command('revoke')
      .description('revoke a certificate; the next CRL (/crl, SCEP GetCRL) lists it')
      .argument('<serial>', 'serial number, hex (from certificates list)')
      .addOption(
        new Option('--reason <reason>', 'RFC 5280 reason')
          .choices(reasonNames.map(([, name]) => name))
          .default('unspecified'),
      ),
  ).action(async (serial: string, o: DataOptions & { reason: string }) => {
    const code = Number(reasonNames.find(([, name]) => name === o.reason)![0]) as RevocationReason;
    await withContext(o, async (ctx) => {
      if (!(await ctx.enrollment.revoke(serial, code, 'cli')))
        throw new CliError(`no valid certificate with serial ${serial}`, EXIT.input);
      out(
        o.json
          ? `${JSON.stringify({ serial, revoked: true, reason: o.reason })}\n`
          : `${serial} revoked (${o.reason})\n`,
      );
    });
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
