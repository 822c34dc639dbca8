/**
 * Administration commands over a data directory: `ca init|import`, `challenge create`,
 * `requests list|approve|reject`, `certificates list|revoke`, `api-token create|list|revoke`.
 * They open the same store and CA as `serve` (SQLite allows a running server and these commands
 * at once), print text or, with `--json`, one document. The operations themselves are shared
 * with the admin HTTP API (server/admin-ops.ts); here is only the command line around them.
 */
import { setting, type SettingSpec } from './settings.ts';
import { recoverIdentity } from '../server/pfx-identity.ts';
import { canonicalSerial } from '../store/types.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { isExternalKey, type PrivateKeyRef } from '../pki/key-ref.ts';
import { isPkiError } from '../pki/errors.ts';
import { formatName, sha1Thumbprint, type Certificate } from '../pki/x509.ts';
import { createAuthority, importAuthority } from '../ca/authority.ts';
import { parseRfc4514 } from '../ca/name.ts';
import * as ops from '../server/admin-ops.ts';
import {
  activateNextAuthority,
  hasAuthority,
  installAuthority,
  openContext,
  prepareNextAuthority,
  type ContextOptions,
  type ServerContext,
} from '../server/context.ts';
import { createTokenAuthority, importTokenAuthority } from '../server/token-ca.ts';
import { builtinProfiles } from '../server/profiles.ts';
import { pkcs11Pin, readInput } from './io.ts';
import { CliError, EXIT } from './exit-codes.ts';

export interface DataOptions {
  data: string;
  database?: string;
  json?: boolean;
  pkcs11PinFile?: string;
}

/** Where the store is: `--data` (a directory) and `--database` (PostgreSQL instead of SQLite). */
export const STORE_SETTINGS = {
  data: [
    '--data <dir>',
    'data directory',
    { env: 'CERTPOST_DATA', default: './data', kind: 'path' },
  ],
  database: [
    '--database <url>',
    'postgres://… for PostgreSQL (several servers may share it); default: SQLite in the data directory',
    { env: 'CERTPOST_DATABASE' },
  ],
  pkcs11PinFile: [
    '--pkcs11-pin-file <file>',
    'user PIN of the PKCS#11 token holding the CA keys, first line of the file (or CERTPOST_PKCS11_PIN)',
    { kind: 'path' },
  ],
} as const satisfies Record<string, readonly [string, string, SettingSpec]>;

/** --data and --database: where the store is (the user commands need nothing else). */
export function storeOptions(cmd: Command): Command {
  setting(cmd, ...STORE_SETTINGS.data);
  return setting(cmd, ...STORE_SETTINGS.database);
}

export function dataOptions(cmd: Command): Command {
  return setting(storeOptions(cmd), ...STORE_SETTINGS.pkcs11PinFile).option(
    '--json',
    'print one JSON document',
  );
}

/** Exit code of each admin operation failure: the one table for the command line. */
const ADMIN_EXIT: Readonly<Record<ops.AdminErrorCode, number>> = {
  ERR_ADMIN_INVALID: EXIT.usage,
  ERR_ADMIN_UNKNOWN_PROFILE: EXIT.usage,
  ERR_ADMIN_NOT_FOUND: EXIT.input,
  ERR_ADMIN_CONFLICT: EXIT.input,
};

/** Runs an admin operation, turning its failures into a {@link CliError} with the right exit code. */
export async function op<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof ops.AdminError) throw new CliError(e.message, ADMIN_EXIT[e.code]);
    throw e;
  }
}

/**
 * Opens the data directory for `f` and closes it after; `more` adds context options (mail).
 * CA keys held by a token are opened only if `f` makes one sign or decrypt: a command that
 * only reads or writes the store needs no PIN, and one that signs without it fails with
 * `ERR_HSM_PIN_REQUIRED` before it changes anything (its signature comes first).
 */
export async function withContext<T>(
  o: DataOptions,
  f: (ctx: ServerContext) => Promise<T>,
  createCa = false,
  more: Pick<ContextOptions, 'mail'> = {},
): Promise<T> {
  let ctx: ServerContext;
  try {
    ctx = await openContext({
      dataDir: o.data,
      database: o.database,
      createCa,
      pkcs11Pin: await pkcs11Pin(o),
      deferKeys: true,
      ...more,
    });
  } catch (e) {
    // Only "the CA directory is missing" (context.ts missingCa) means "no CA"; a missing file
    // inside a CA is a damaged CA, reported as it is.
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && err.path === join(o.data, 'ca')) {
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

/** An RFC 4514 subject given as `option`, checked before anything is made. */
function subjectOption(dn: string, option: string): string {
  try {
    parseRfc4514(dn);
  } catch (e) {
    throw new CliError(
      `${option}: "${dn}" is not an RFC 4514 name (${(e as Error).message})`,
      EXIT.usage,
    );
  }
  return dn;
}

/** Runs `f`, turning CA-state errors (wrong step of a rollover, no CA) into one-line CLI errors. */
async function caStateErrors<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_CA_STATE' || code === 'ENOENT')
      throw new CliError((e as Error).message, EXIT.input);
    if (isPkiError(e, 'ERR_PKI_INVALID_ARGUMENT')) throw new CliError(e.message, EXIT.usage);
    throw e;
  }
}

/**
 * Subject, SHA-1 and expiry of CA certificates, as `ca` commands print them, and where the key
 * of a token-held one is (its PKCS#11 URI; never a PIN).
 */
function caSummary(
  pairs: readonly { readonly certificate: Certificate; readonly key?: PrivateKeyRef }[],
) {
  return pairs.map((x) => ({
    subject: formatName(x.certificate.subject),
    sha1: sha1Thumbprint(x.certificate),
    notAfter: x.certificate.notAfter.toISOString(),
    ...(x.key && isExternalKey(x.key) ? { key: x.key.label } : {}),
  }));
}

function printCa(ctx: ServerContext, o: DataOptions, out: (s: string) => void): void {
  const summary = caSummary([ctx.ca.root, ctx.ca.issuing, ...(ctx.ca.ra ? [ctx.ca.ra] : [])]);
  out(
    o.json
      ? `${JSON.stringify({ certificates: summary }, null, 2)}\n`
      : summary
          .map(
            (s) =>
              `${s.subject}\n  SHA-1 ${s.sha1}, valid until ${s.notAfter}\n${s.key ? `  key in token: ${s.key}\n` : ''}`,
          )
          .join(''),
  );
}

export function adminCommands(root: Command, out: (s: string) => void): void {
  const ca = root.command('ca').description('the certificate authority in a data directory');
  dataOptions(
    ca
      .command('init')
      .description(
        'create a root and an issuing CA (keys encrypted at rest with CERTPOST_CA_PASSPHRASE, or generated in a PKCS#11 token with --pkcs11)',
      )
      .addOption(
        new Option(
          '--key-type <type>',
          'CA key type (an EC CA gets an RSA RA certificate for SCEP)',
        )
          .choices(['rsa', 'ec'])
          .default('rsa'),
      )
      .option(
        '--root-subject <dn>',
        'subject of the root CA (RFC 4514)',
        'CN=certpost root CA,O=certpost',
      )
      .option(
        '--issuing-subject <dn>',
        'subject of the issuing CA (RFC 4514); an RA certificate gets its CN with " SCEP RA" appended',
        'CN=certpost issuing CA,O=certpost',
      )
      .option(
        '--pkcs11 <uri>',
        'generate the CA keys inside this PKCS#11 token (RFC 7512 URI with module-path; object= is the key label prefix, default "certpost")',
      ),
  )
    .addHelpText(
      'after',
      `
With --pkcs11, the root and issuing keys (and the RA key of an EC CA) are generated in the token
as non-extractable keys labelled <prefix>-root, <prefix>-issuing (and <prefix>-ra); the data
directory records their URIs (DATA/ca/*.key-ref), never the PIN. The user PIN comes from
--pkcs11-pin-file, CERTPOST_PKCS11_PIN, or the URI's pin-source; "certpost serve" and the commands
that sign or decrypt with a CA key (ca rollover, certificates recover, doctor) need it too.
Example:
  CERTPOST_PKCS11_PIN=… certpost ca init --data ./data \\
    --issuing-subject 'CN=Contoso Issuing CA,O=Contoso' \\
    --pkcs11 'pkcs11:token=certpost;object=contoso?module-path=/usr/lib/softhsm/libsofthsm2.so'`,
    )
    .action(
      async (
        o: DataOptions & {
          keyType: 'rsa' | 'ec';
          rootSubject: string;
          issuingSubject: string;
          pkcs11?: string;
        },
      ) => {
        if (await hasAuthority(join(o.data, 'ca')))
          throw new CliError(`${o.data} already has a CA`, EXIT.usage);
        const options = {
          keyType: o.keyType,
          rootSubject: subjectOption(o.rootSubject, '--root-subject'),
          issuingSubject: subjectOption(o.issuingSubject, '--issuing-subject'),
        };
        if (o.pkcs11 !== undefined)
          await createTokenAuthority(o.data, { uri: o.pkcs11, pin: await pkcs11Pin(o) }, options);
        else await installAuthority(o.data, await createAuthority(options));
        await withContext(o, async (ctx) => printCa(ctx, o, out));
      },
    );

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
      )
      .option(
        '--pkcs11 <uri>',
        'put the CA key into this PKCS#11 token instead of the data directory (RFC 7512 URI with module-path; object= is the key label prefix, default "certpost")',
      ),
  )
    .addHelpText(
      'after',
      `
With --pkcs11, the issuing CA's private key is imported into the token (sensitive, not
extractable) as <prefix>-issuing, and the RSA key of an RA certificate, when the CA needs one
(an EC CA, or a keyUsage without keyEncipherment), is generated there as <prefix>-ra. The data
directory records their URIs, never a key or the PIN (from --pkcs11-pin-file, CERTPOST_PKCS11_PIN
or the URI's pin-source). FILE is left as it was: keep it offline, or destroy it.
Example:
  CERTPOST_PKCS11_PIN=… certpost ca import contoso-ca.pfx --data ./data \\
    --pkcs11 'pkcs11:token=certpost;object=contoso?module-path=/usr/lib/softhsm/libsofthsm2.so'`,
    )
    .action(async (file: string, o: DataOptions & { password?: string; pkcs11?: string }) => {
      if (await hasAuthority(join(o.data, 'ca')))
        throw new CliError(`${o.data} already has a CA`, EXIT.usage);
      const bytes = await readInput(file);
      if (o.pkcs11 !== undefined)
        await importTokenAuthority(
          o.data,
          { uri: o.pkcs11, pin: await pkcs11Pin(o) },
          { bytes, password: o.password },
        );
      else await installAuthority(o.data, await importAuthority(bytes, o.password));
      await withContext(o, async (ctx) => {
        await ctx.store.appendAudit({
          at: new Date(),
          actor: 'cli',
          action: 'ca.imported',
          target: sha1Thumbprint(ctx.ca.issuing.certificate),
          details: {
            subject: formatName(ctx.ca.issuing.certificate.subject),
            ...(o.pkcs11 !== undefined ? { keysIn: 'pkcs11' } : {}),
          },
        });
        printCa(ctx, o, out);
      });
    });

  dataOptions(
    ca
      .command('rollover')
      .description(
        'prepare the next issuing CA under the same root; servers offer it by SCEP GetNextCACert until "ca activate-next"',
      )
      .option(
        '--subject <dn>',
        'subject of the next issuing CA (RFC 4514); default: the current one',
      ),
  ).action(async (o: DataOptions & { subject?: string }) => {
    const pin = await pkcs11Pin(o);
    const next = await caStateErrors(() =>
      prepareNextAuthority(o.data, {
        pkcs11Pin: pin,
        ...(o.subject ? { issuingSubject: o.subject } : {}),
      }),
    );
    const summary = caSummary([next.issuing, ...(next.ra ? [next.ra] : [])]);
    out(
      o.json
        ? `${JSON.stringify({ next: summary }, null, 2)}\n`
        : `next CA prepared (restart the servers to offer it):\n${summary.map((c) => `  ${c.subject}, SHA-1 ${c.sha1}, valid until ${c.notAfter}\n`).join('')}`,
    );
  });
  dataOptions(
    ca
      .command('activate-next')
      .description(
        'make the prepared next CA the issuing CA (the old one is kept as ca.previous-<time>); restart the servers',
      ),
  ).action(async (o: DataOptions) => {
    const { previous } = await caStateErrors(() => activateNextAuthority(o.data));
    out(
      o.json
        ? `${JSON.stringify({ activated: true, previous })}\n`
        : `the next CA is now the CA; the previous one is in ${previous}\n`,
    );
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
      const { certificates: rows } = await op(() =>
        ops.listCertificates(ctx, {
          limit,
          ...(o.subject ? { subject: o.subject } : {}),
          ...(o.revoked ? { revoked: true } : {}),
        }),
      );
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
  dataOptions(
    certs
      .command('revoke')
      .description('revoke a certificate; the next CRL (/crl, SCEP GetCRL) lists it')
      .argument('<serial>', 'serial number, hex (from certificates list)')
      .addOption(
        new Option('--reason <reason>', 'RFC 5280 reason')
          .choices([...ops.REVOCATION_REASONS.keys()])
          .default('unspecified'),
      ),
  ).action(async (serial: string, o: DataOptions & { reason: ops.RevocationReasonName }) => {
    await withContext(o, async (ctx) => {
      await op(() => ops.revokeCertificate(ctx, 'cli', serial, o.reason));
      out(
        o.json
          ? `${JSON.stringify({ serial, revoked: true, reason: o.reason })}\n`
          : `${serial} revoked (${o.reason})\n`,
      );
    });
  });

  dataOptions(
    certs
      .command('recover')
      .description('recover an escrowed key (MDM PFX profiles) as a PFX; needs the CA key')
      .argument('<serial>', 'serial number, hex')
      .requiredOption('--out <file>', 'where to write the PFX (mode 0600)'),
  )
    .addHelpText(
      'after',
      '\nPrints the PFX password once on stdout (or in --json); it is not written anywhere. The\nrecovery is in the audit log.',
    )
    .action(async (serial: string, o: DataOptions & { out: string }) => {
      await withContext(o, async (ctx) => {
        const s = canonicalSerial(serial);
        const r = await recoverIdentity(ctx, s);
        if (!r) throw new CliError(`no escrowed key for serial ${s}`, EXIT.input);
        await writeAtomicFile(o.out, r.pfx, 0o600);
        await ctx.store.appendAudit({
          at: new Date(),
          actor: 'cli',
          action: 'key.recovered',
          target: s,
          details: { file: o.out },
        });
        out(
          o.json
            ? `${JSON.stringify({ serial: s, file: o.out, password: r.password })}\n`
            : `${r.password}\n`,
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
        `issuance profile (built in: ${[...builtinProfiles().keys()].join(', ')}; more in DATA/profiles.json)`,
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
        const created = await op(() =>
          ops.createChallenge(ctx, 'cli', {
            profile: o.profile,
            ttlMs: ttl,
            ...(o.subject !== undefined ? { subject: o.subject } : {}),
          }),
        );
        out(o.json ? `${JSON.stringify(created, null, 2)}\n` : `${created.challenge}\n`);
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
      const { requests: rows } = await ops.listRequests(ctx, o.status);
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
        const r = await op(() => ops.decideRequest(ctx, 'cli', id, decision));
        out(o.json ? `${JSON.stringify(r)}\n` : `${r.id} ${r.status}\n`);
      });
    });
  }

  const tokens = root
    .command('api-token')
    .description('bearer tokens of the admin HTTP API (/api/v1)');
  dataOptions(
    tokens
      .command('create')
      .description('create an admin API token')
      .option('--name <name>', 'who or what holds it; the audit log names it api:<name>')
      .option('--ttl <duration>', 'lifetime, e.g. 24h, 90d, or "never"', '90d'),
  )
    .addHelpText(
      'after',
      '\nPrints the token once, on one line (or JSON with --json): it is stored only as a SHA-256 hash.\nUse it as "Authorization: Bearer <token>".',
    )
    .action(async (o: DataOptions & { name?: string; ttl: string }) => {
      const ttlMs = o.ttl === 'never' ? null : parseDuration(o.ttl);
      await withContext(o, async (ctx) => {
        const created = await op(() =>
          ops.createApiToken(ctx, 'cli', {
            ttlMs,
            ...(o.name !== undefined ? { name: o.name } : {}),
          }),
        );
        out(o.json ? `${JSON.stringify(created, null, 2)}\n` : `${created.token}\n`);
      });
    });
  dataOptions(
    tokens.command('list').description('list API tokens (never their secrets), oldest first'),
  ).action(async (o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const list = await ops.listApiTokens(ctx);
      out(
        o.json
          ? `${JSON.stringify(list, null, 2)}\n`
          : list.tokens.length
            ? list.tokens
                .map((t) => `${t.id}  ${t.status}  ${t.expiresAt ?? 'never expires'}  ${t.name}\n`)
                .join('')
            : 'no API tokens\n',
      );
    });
  });
  dataOptions(
    tokens
      .command('revoke')
      .description('revoke an API token: it is refused from now on')
      .argument('<id>', 'token id (from api-token list)'),
  ).action(async (id: string, o: DataOptions) => {
    await withContext(o, async (ctx) => {
      const r = await op(() => ops.revokeApiToken(ctx, 'cli', id));
      out(o.json ? `${JSON.stringify(r)}\n` : `${r.id} revoked\n`);
    });
  });
}
