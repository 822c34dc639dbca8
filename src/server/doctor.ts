/**
 * `certpost doctor` (issue 7): checks a deployment the way an operator would before trusting it,
 * and says what to do about each finding. Every check reads; none changes state, except that
 * opening the store applies pending migrations as every command does, and the data directory
 * check writes and removes one probe file.
 *
 * Each check ends `ok`, `warn` (works now, needs attention: a CA within its warning window, a
 * clock a few seconds off) or `fail` (something clients will notice: an expired CA, a key that
 * does not sign, a database that does not answer, a clock minutes off).
 */
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { parseCrl, type ParsedCrl } from '../ca/crl.ts';
import { checkSignedStructure } from '../pki/chain.ts';
import { decryptWith, publicKeyOf } from '../pki/key-ref.ts';
import { formatName, type Certificate } from '../pki/x509.ts';
import { fsProblem } from '../util/fs.ts';
import type { ServerContext } from './context.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  /** Stable identifier (`data-directory`, `database`, `clock`, `ca-expiry`, `ca-keys`, `crl`, …). */
  readonly id: string;
  readonly status: CheckStatus;
  /** One line for a person: what was found, and what to do when it is not ok. */
  readonly summary: string;
  readonly detail?: Readonly<Record<string, unknown>>;
}

export interface DoctorOptions {
  readonly dataDir: string;
  /** A running server to check from outside: `/healthz`, `/readyz`, its clock and TLS certificate. */
  readonly url?: string | undefined;
  readonly now?: () => Date;
  /** A CA certificate expiring within this many days warns (default 90). */
  readonly expiryWarnDays?: number;
  readonly fetch?: typeof globalThis.fetch;
}

const DAY = 86_400_000;
/** Clock differences: a few seconds warn; minutes fail (SCEP backdates notBefore by 5 minutes). */
const CLOCK_WARN_MS = 5_000;
const CLOCK_FAIL_MS = 5 * 60_000;
/** Free space below which the data directory warns. */
const LOW_SPACE_BYTES = 512 * 1024 * 1024;

/** Runs every check in order; never throws for what it checks (a thrown check is a `fail`). */
export async function runDoctor(ctx: ServerContext, o: DoctorOptions): Promise<Check[]> {
  const now = o.now ?? (() => new Date());
  // Signed once, read by two checks: the key check verifies it, the CRL check reads its fields.
  let signed: Promise<ParsedCrl> | undefined;
  const currentCrl = () => (signed ??= ctx.enrollment.currentCrl().then(parseCrl));
  const checks: [string, () => Promise<Check>][] = [
    ['data-directory', () => dataDirectory(o.dataDir)],
    ['database', () => database(ctx, now)],
    ['ca-expiry', async () => caExpiry(ctx, now(), o.expiryWarnDays ?? 90)],
    ['ca-keys', () => caKeys(ctx, currentCrl)],
    ['crl', () => crl(ctx, currentCrl, now())],
    ['pending-requests', () => pending(ctx, now())],
  ];
  if (o.url !== undefined) {
    const url = o.url.replace(/\/+$/, '');
    checks.push(['server', () => server(url, now, o.fetch ?? globalThis.fetch)]);
    if (url.startsWith('https:'))
      checks.push(['tls', () => tlsCertificate(url, now(), o.expiryWarnDays ?? 90)]);
  }
  const out: Check[] = [];
  for (const [id, run] of checks) {
    try {
      out.push(await run());
    } catch (e) {
      out.push({ id, status: 'fail', summary: (e as Error).message });
    }
  }
  return out;
}

/** The worst status of `checks`. */
export function overall(checks: readonly Check[]): CheckStatus {
  if (checks.some((c) => c.status === 'fail')) return 'fail';
  return checks.some((c) => c.status === 'warn') ? 'warn' : 'ok';
}

async function dataDirectory(dir: string): Promise<Check> {
  const probe = join(dir, `.doctor-${randomBytes(6).toString('hex')}`);
  try {
    const f = await open(probe, 'wx', 0o600);
    try {
      await f.write(randomBytes(4096));
      await f.sync();
    } finally {
      await f.close();
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    const why = fsProblem(code) ?? (e as Error).message;
    return {
      id: 'data-directory',
      status: 'fail',
      summary: `${dir} is not writable (${why}): issuance, sessions and CRLs cannot be recorded`,
      detail: { code },
    };
  } finally {
    await rm(probe, { force: true });
  }
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  const total = fs.blocks * fs.bsize;
  const low = free < LOW_SPACE_BYTES || free < total * 0.05;
  return {
    id: 'data-directory',
    status: low ? 'warn' : 'ok',
    summary: `${dir} is writable, ${gb(free)} free of ${gb(total)}${low ? ': free some space before it fills' : ''}`,
    detail: { freeBytes: free, totalBytes: total },
  };
}

function gb(n: number): string {
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

async function database(ctx: ServerContext, now: () => Date): Promise<Check> {
  const t0 = performance.now();
  const s = await ctx.store.status();
  const roundTripMs = Math.round((performance.now() - t0) * 10) / 10;
  const skewMs = s.time.getTime() - now().getTime();
  const detail = {
    backend: ctx.store.backend,
    roundTripMs,
    schemaVersion: s.schemaVersion,
    latestSchemaVersion: s.latestSchemaVersion,
    clockSkewMs: ctx.store.backend === 'postgres' ? skewMs : 0,
  };
  if (s.schemaVersion !== s.latestSchemaVersion)
    return {
      id: 'database',
      status: 'fail',
      summary: `schema version ${s.schemaVersion}, this build needs ${s.latestSchemaVersion}: run a newer certpost, or start this one once to migrate`,
      detail,
    };
  // SQLite reads this machine's clock; PostgreSQL's server may run elsewhere.
  if (ctx.store.backend === 'postgres' && Math.abs(skewMs) >= CLOCK_WARN_MS)
    return {
      id: 'database',
      status: Math.abs(skewMs) >= CLOCK_FAIL_MS ? 'fail' : 'warn',
      summary: `PostgreSQL's clock is ${seconds(skewMs)} this machine's: synchronise both with NTP (expiry, challenges and nonces compare times)`,
      detail,
    };
  return {
    id: 'database',
    status: 'ok',
    summary: `${ctx.store.backend} answers in ${roundTripMs} ms, schema version ${s.schemaVersion}`,
    detail,
  };
}

function seconds(ms: number): string {
  return `${(Math.abs(ms) / 1000).toFixed(1)} s ${ms > 0 ? 'ahead of' : 'behind'}`;
}

function caCertificates(ctx: ServerContext): { role: string; certificate: Certificate }[] {
  const ca = ctx.ca;
  return [
    { role: 'root', certificate: ca.root.certificate },
    ...ca.intermediates.map((certificate) => ({ role: 'intermediate', certificate })),
    { role: 'issuing', certificate: ca.issuing.certificate },
    ...(ca.ra ? [{ role: 'ra', certificate: ca.ra.certificate }] : []),
  ].filter(
    // The issuing CA may also be listed among the intermediates; report it once.
    (c, i, all) => all.findIndex((x) => x.certificate.der === c.certificate.der) === i,
  );
}

function caExpiry(ctx: ServerContext, at: Date, warnDays: number): Check {
  const longest = Math.max(0, ...[...ctx.profiles.values()].map((p) => p.validityDays));
  const rows = caCertificates(ctx).map(({ role, certificate }) => ({
    role,
    subject: formatName(certificate.subject),
    notBefore: certificate.notBefore.toISOString(),
    notAfter: certificate.notAfter.toISOString(),
    daysLeft: Math.floor((certificate.notAfter.getTime() - at.getTime()) / DAY),
  }));
  const detail = { certificates: rows, nextCa: ctx.nextCa !== undefined };
  const early = caCertificates(ctx).find((c) => c.certificate.notBefore > at);
  if (early)
    return {
      id: 'ca-expiry',
      status: 'fail',
      summary: `the ${early.role} CA is not valid until ${early.certificate.notBefore.toISOString()}: this machine's clock is behind`,
      detail,
    };
  const expired = rows.find((r) => r.daysLeft < 0);
  if (expired)
    return {
      id: 'ca-expiry',
      status: 'fail',
      summary: `the ${expired.role} CA (${expired.subject}) expired on ${expired.notAfter}: roll over (certpost ca rollover)`,
      detail,
    };
  const soonest = rows.toSorted((a, b) => a.daysLeft - b.daysLeft)[0]!;
  const issuing = rows.find((r) => r.role === 'issuing')!;
  const hint = ctx.nextCa ? 'a next CA is prepared: activate it' : 'plan a rollover';
  if (soonest.daysLeft < warnDays)
    return {
      id: 'ca-expiry',
      status: 'warn',
      summary: `the ${soonest.role} CA expires in ${soonest.daysLeft} days (${soonest.notAfter}): ${hint}`,
      detail,
    };
  if (issuing.daysLeft < longest)
    return {
      id: 'ca-expiry',
      status: 'warn',
      summary: `the issuing CA expires in ${issuing.daysLeft} days, before a ${longest}-day certificate issued today would: ${hint}`,
      detail,
    };
  return {
    id: 'ca-expiry',
    status: 'ok',
    summary: `the ${soonest.role} CA expires first, in ${soonest.daysLeft} days`,
    detail,
  };
}

/**
 * The keys do their work: the issuing key signs (a CRL, checked below) and the key that unwraps
 * SCEP envelopes (the RA's, else the issuing CA's RSA key) decrypts what its certificate's
 * public key encrypted. Catches a wrong key file, a missing PIN or a token that went away.
 */
async function caKeys(ctx: ServerContext, currentCrl: () => Promise<ParsedCrl>): Promise<Check> {
  if (!checkSignedStructure(await currentCrl(), ctx.ca.issuing.certificate.spki).ok)
    return {
      id: 'ca-keys',
      status: 'fail',
      summary:
        "the issuing key's signature does not verify with the issuing certificate: the key and certificate do not belong together",
    };
  const unwrapper =
    ctx.ca.ra ??
    (ctx.ca.issuing.certificate.publicKeyAlgorithm === '1.2.840.113549.1.1.1'
      ? ctx.ca.issuing
      : undefined);
  if (unwrapper) {
    const secret = randomBytes(32);
    const sealed = publicEncrypt(
      { key: publicKeyOf(unwrapper.key), padding: constants.RSA_PKCS1_PADDING },
      secret,
    );
    const opened = await decryptWith(unwrapper.key, sealed);
    if (!secret.equals(Buffer.from(opened)))
      return {
        id: 'ca-keys',
        status: 'fail',
        summary: 'the SCEP decryption key does not open what its certificate encrypts',
      };
  }
  return {
    id: 'ca-keys',
    status: 'ok',
    summary: `the issuing key signs${unwrapper ? ' and the SCEP key decrypts' : ''}`,
  };
}

async function crl(
  ctx: ServerContext,
  currentCrl: () => Promise<ParsedCrl>,
  at: Date,
): Promise<Check> {
  const parsed = await currentCrl();
  const detail = {
    crlNumber: parsed.crlNumber?.toString(),
    thisUpdate: parsed.thisUpdate.toISOString(),
    nextUpdate: parsed.nextUpdate?.toISOString(),
    revoked: parsed.revoked.length,
    distributionPoint: ctx.urls.public ? `${ctx.urls.public}/crl` : undefined,
  };
  if (!parsed.nextUpdate || parsed.nextUpdate <= at)
    return {
      id: 'crl',
      status: 'fail',
      summary: 'the CRL is already stale when signed: relying parties will reject certificates',
      detail,
    };
  return {
    id: 'crl',
    status: 'ok',
    summary: `CRL ${detail.crlNumber ?? '?'} lists ${parsed.revoked.length} revoked, valid until ${detail.nextUpdate}`,
    detail,
  };
}

async function pending(ctx: ServerContext, at: Date): Promise<Check> {
  const held = await ctx.store.listRequests('pending');
  const oldest = held.reduce<Date | undefined>(
    (m, r) => (m === undefined || r.createdAt < m ? r.createdAt : m),
    undefined,
  );
  const ageDays = oldest ? Math.floor((at.getTime() - oldest.getTime()) / DAY) : 0;
  return {
    id: 'pending-requests',
    status: ageDays >= 7 ? 'warn' : 'ok',
    summary:
      held.length === 0
        ? 'no SCEP request waits for approval'
        : `${held.length} SCEP request(s) wait for approval, the oldest for ${ageDays} day(s)${ageDays >= 7 ? ': approve or reject them (certpost requests list)' : ''}`,
    detail: { pending: held.length, oldest: oldest?.toISOString() },
  };
}

async function server(
  url: string,
  now: () => Date,
  fetchImpl: typeof globalThis.fetch,
): Promise<Check> {
  const sentAt = now().getTime();
  let health: Response;
  try {
    health = await fetchImpl(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    return {
      id: 'server',
      status: 'fail',
      summary: `${url} cannot be reached (${((e as Error).cause as Error | undefined)?.message ?? (e as Error).message})`,
    };
  }
  const receivedAt = now().getTime();
  const version = ((await health.json().catch(() => ({}))) as { version?: string }).version;
  const ready = await fetchImpl(`${url}/readyz`, { signal: AbortSignal.timeout(10_000) });
  const date = health.headers.get('date');
  // The Date header has one-second resolution: compare with the middle of the round trip.
  const skewMs = date ? Date.parse(date) - (sentAt + receivedAt) / 2 : undefined;
  const detail = { version, healthz: health.status, readyz: ready.status, clockSkewMs: skewMs };
  if (health.status !== 200 || ready.status !== 200)
    return {
      id: 'server',
      status: 'fail',
      summary: `${url} answers /healthz ${health.status}, /readyz ${ready.status}: see its log`,
      detail,
    };
  if (skewMs !== undefined && Math.abs(skewMs) >= CLOCK_WARN_MS + 1000)
    return {
      id: 'server',
      status: Math.abs(skewMs) >= CLOCK_FAIL_MS ? 'fail' : 'warn',
      summary: `the server's clock is ${seconds(skewMs)} this machine's: synchronise both with NTP`,
      detail,
    };
  return {
    id: 'server',
    status: 'ok',
    summary: `${url} is up and ready (certpost ${version ?? '?'})`,
    detail,
  };
}

/** The certificate a TLS client sees at `url`, by days left (not whether this machine trusts it). */
function tlsCertificate(url: string, at: Date, warnDays: number): Promise<Check> {
  return new Promise((resolve) => {
    const req = httpsRequest(
      `${url}/healthz`,
      { rejectUnauthorized: false, timeout: 10_000 },
      (res) => {
        const peer = (res.socket as TLSSocket).getPeerCertificate();
        res.resume();
        const notAfter = new Date(peer.valid_to);
        const daysLeft = Math.floor((notAfter.getTime() - at.getTime()) / DAY);
        const trusted = (res.socket as TLSSocket).authorized;
        const detail = { subject: peer.subject?.CN, notAfter: notAfter.toISOString(), daysLeft };
        resolve({
          id: 'tls',
          status: daysLeft < 0 ? 'fail' : daysLeft < warnDays ? 'warn' : 'ok',
          summary: `the server's TLS certificate ${daysLeft < 0 ? 'expired' : 'expires'} ${notAfter.toISOString()} (${daysLeft} days)${trusted ? '' : '; this machine does not trust it (devices must, through their Root store)'}`,
          detail,
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) =>
      resolve({ id: 'tls', status: 'fail', summary: `TLS to ${url} failed: ${e.message}` }),
    );
    req.end();
  });
}
