/**
 * The administration operations, once, for every front end: the `certpost` admin commands
 * (cli/admin.ts) and the admin HTTP API (admin-api.ts). Each is a plain function over the parts
 * it needs, takes the acting principal (`cli`, `api:<token name>`) for the audit log, and returns
 * a JSON-able value that both front ends print or send as it is. Failures the caller can fix are
 * an {@link AdminError} with a stable code; each front end maps the codes in one table (HTTP
 * status, exit code).
 *
 * Secrets (challenge passwords, API tokens) are returned once, to the caller that created them,
 * and stored only as SHA-256 hashes; they never reach the audit log.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { secretHash, type EnrollmentService } from '../ca/enrollment.ts';
import { CRL_REASONS } from '../ca/crl.ts';
import { canonicalRfc4514 } from '../ca/name.ts';
import type { IssuanceProfile } from '../ca/profile.ts';
import type {
  ApiTokenRecord,
  ApiTokenStore,
  AuditLog,
  CertificateStore,
  ChallengeStore,
  RequestStatus,
  RequestStore,
  RevocationReason,
} from '../store/types.ts';
import { canonicalSerial } from '../store/types.ts';

/** What an admin operation can fail with, for reasons the caller can fix. */
export const ADMIN_ERRORS = {
  /** An argument is malformed (a name, a lifetime). */
  ERR_ADMIN_INVALID: 'invalid argument',
  /** The challenge names a profile this server does not have. */
  ERR_ADMIN_UNKNOWN_PROFILE: 'unknown issuance profile',
  /** No such request, certificate or token. */
  ERR_ADMIN_NOT_FOUND: 'not found',
  /** It exists but is not in a state the operation applies to (decided, revoked, name taken). */
  ERR_ADMIN_CONFLICT: 'conflict',
} as const;
export type AdminErrorCode = keyof typeof ADMIN_ERRORS;

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  constructor(code: AdminErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'AdminError';
  }
}

/**
 * Runs a store insert whose name must be unique; a taken name (`ERR_STORE_DUPLICATE_NAME`)
 * becomes the caller's {@link AdminError} `ERR_ADMIN_CONFLICT` with `message`.
 */
export async function uniquelyNamed<T>(insert: Promise<T>, message: string): Promise<T> {
  try {
    return await insert;
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ERR_STORE_DUPLICATE_NAME')
      throw new AdminError('ERR_ADMIN_CONFLICT', message);
    throw e;
  }
}

/** The parts the operations use; a `ServerContext` is one. */
export interface AdminDeps {
  readonly store: CertificateStore & ChallengeStore & RequestStore & AuditLog & ApiTokenStore;
  readonly profiles: ReadonlyMap<string, IssuanceProfile>;
  readonly enrollment: Pick<EnrollmentService, 'decide' | 'revoke'>;
  readonly now?: () => Date;
}

const nowOf = (deps: Pick<AdminDeps, 'now'>): Date => deps.now?.() ?? new Date();

// --- challenges -------------------------------------------------------------------------------

export interface ChallengeCreated {
  readonly id: string;
  /** The one-time secret: shown only here, stored as its SHA-256. */
  readonly challenge: string;
  readonly profile: string;
  readonly subject: string | null;
  readonly expiresAt: string;
}

/** Default lifetime of a one-time challenge. */
export const CHALLENGE_TTL_MS = 60 * 60_000;

/**
 * A subject as the store compares it: the canonical RFC 4514 form that `formatName` gives an
 * issued certificate's subject, so `CN=a, O=b` and `cn=a,O=b` name the same device.
 */
function subjectOf(s: string): string {
  try {
    return canonicalRfc4514(s);
  } catch (e) {
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      `subject "${s}" is not an RFC 4514 name: ${(e as Error).message}`,
    );
  }
}

/** Creates a one-time SCEP challenge bound to a profile and, optionally, to an exact subject. */
export async function createChallenge(
  deps: AdminDeps,
  actor: string,
  o: { readonly profile?: string; readonly subject?: string; readonly ttlMs?: number } = {},
): Promise<ChallengeCreated> {
  const profile = o.profile ?? 'default';
  const ttl = o.ttlMs ?? CHALLENGE_TTL_MS;
  if (!Number.isSafeInteger(ttl) || ttl <= 0)
    throw new AdminError('ERR_ADMIN_INVALID', `lifetime must be a positive duration, got ${ttl}`);
  if (!deps.profiles.has(profile))
    throw new AdminError(
      'ERR_ADMIN_UNKNOWN_PROFILE',
      `no profile "${profile}" (have: ${[...deps.profiles.keys()].join(', ')})`,
    );
  const subject = o.subject === undefined ? null : subjectOf(o.subject);
  const secret = randomBytes(24).toString('base64url');
  const now = nowOf(deps);
  const rec = {
    id: randomUUID(),
    secretHash: secretHash(secret),
    profile,
    subject,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttl),
  };
  await deps.store.createChallenge(rec);
  await deps.store.appendAudit({
    at: now,
    actor,
    action: 'challenge.created',
    target: rec.id,
    details: { profile: rec.profile, subject: rec.subject, expiresAt: rec.expiresAt.toISOString() },
  });
  return {
    id: rec.id,
    challenge: secret,
    profile: rec.profile,
    subject: rec.subject,
    expiresAt: rec.expiresAt.toISOString(),
  };
}

// --- requests ---------------------------------------------------------------------------------

export interface RequestRow {
  readonly id: string;
  readonly transactionId: string;
  readonly subject: string;
  readonly profile: string;
  readonly status: RequestStatus;
  readonly createdAt: string;
}

/** Held enrollment requests with this status, oldest first. */
export async function listRequests(
  deps: AdminDeps,
  status: RequestStatus = 'pending',
): Promise<{ requests: RequestRow[] }> {
  const list = await deps.store.listRequests(status);
  return {
    requests: list.map((r) => ({
      id: r.id,
      transactionId: r.transactionId,
      subject: r.subject,
      profile: r.profile,
      status: r.status,
      createdAt: r.createdAt.toISOString(),
    })),
  };
}

/**
 * Approves or rejects a pending request; the device's next poll gets its certificate or FAILURE.
 * Audited by the enrollment service (`request.approved` / `request.rejected`).
 */
export async function decideRequest(
  deps: AdminDeps,
  actor: string,
  id: string,
  decision: 'approve' | 'reject',
): Promise<{ id: string; status: 'approved' | 'rejected' }> {
  const status = decision === 'approve' ? 'approved' : 'rejected';
  if (await deps.enrollment.decide(id, status, actor)) return { id, status };
  const message = `request ${id} does not exist or is not pending`;
  throw (await deps.store.getRequest(id))
    ? new AdminError('ERR_ADMIN_CONFLICT', message)
    : new AdminError('ERR_ADMIN_NOT_FOUND', message);
}

// --- certificates -----------------------------------------------------------------------------

export interface CertificateRow {
  readonly serial: string;
  readonly subject: string;
  readonly altNames: readonly string[];
  readonly sha1: string;
  readonly profile: string;
  readonly issuedAt: string;
  readonly notAfter: string;
  readonly revoked: { readonly at: string; readonly reason: RevocationReasonName } | null;
}

/**
 * Issued certificates, newest first: of an exact subject, or matching `search` (a substring of
 * the subject, the serial or an alt name, any case); skipping `offset` for paging.
 */
export async function listCertificates(
  deps: AdminDeps,
  o: {
    readonly subject?: string;
    readonly search?: string;
    readonly revoked?: boolean;
    readonly limit?: number;
    readonly offset?: number;
  } = {},
): Promise<{ certificates: CertificateRow[] }> {
  const limit = o.limit ?? 100;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new AdminError('ERR_ADMIN_INVALID', 'limit must be a positive whole number');
  const offset = o.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new AdminError('ERR_ADMIN_INVALID', 'offset must be a whole number ≥ 0');
  const list = await deps.store.listCertificates({
    limit,
    offset,
    ...(o.subject !== undefined ? { subject: subjectOf(o.subject) } : {}),
    ...(o.search !== undefined && o.search.trim() !== '' ? { search: o.search.trim() } : {}),
    ...(o.revoked !== undefined ? { revoked: o.revoked } : {}),
  });
  return {
    certificates: list.map((c) => ({
      serial: c.serial,
      subject: c.subject,
      altNames: c.altNames,
      sha1: c.sha1,
      profile: c.profile,
      issuedAt: c.issuedAt.toISOString(),
      notAfter: c.notAfter.toISOString(),
      revoked: c.revokedAt
        ? { at: c.revokedAt.toISOString(), reason: CRL_REASONS[c.revocationReason ?? 0] }
        : null,
    })),
  };
}

export type RevocationReasonName = (typeof CRL_REASONS)[RevocationReason];

/**
 * The reasons an administrator may give, by RFC 5280 name. removeFromCRL (8) is left out: it
 * belongs in delta CRLs only (RFC 5280 §5.3.1).
 */
export const REVOCATION_REASONS: ReadonlyMap<RevocationReasonName, RevocationReason> = new Map(
  Object.entries(CRL_REASONS)
    .filter(([code]) => code !== '8')
    .map(([code, name]) => [name, Number(code) as RevocationReason]),
);

/** Revokes a certificate; the next CRL (`/crl`, SCEP GetCRL) lists it. Audited by enrollment. */
export async function revokeCertificate(
  deps: AdminDeps,
  actor: string,
  serial: string,
  reason: RevocationReasonName = 'unspecified',
): Promise<{ serial: string; revoked: true; reason: RevocationReasonName }> {
  const code = REVOCATION_REASONS.get(reason);
  if (code === undefined)
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      `unknown revocation reason "${reason}" (use ${[...REVOCATION_REASONS.keys()].join(', ')})`,
    );
  if (await deps.enrollment.revoke(serial, code, actor)) return { serial, revoked: true, reason };
  const message = `no valid certificate with serial ${serial}`;
  const rec = /^[0-9a-f]+$/i.test(serial)
    ? await deps.store.getCertificate(canonicalSerial(serial))
    : undefined;
  throw new AdminError(rec ? 'ERR_ADMIN_CONFLICT' : 'ERR_ADMIN_NOT_FOUND', message);
}

// --- audit ------------------------------------------------------------------------------------

export interface AuditRow {
  readonly id: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string;
  readonly details: Readonly<Record<string, unknown>>;
}

/** Audit entries, newest first, skipping `offset` for paging. */
export async function listAudit(
  deps: AdminDeps,
  o: { readonly limit?: number; readonly offset?: number; readonly action?: string } = {},
): Promise<{ audit: AuditRow[] }> {
  const list = await deps.store.listAudit(o);
  return { audit: list.map((e) => ({ ...e, at: e.at.toISOString() })) };
}

// --- API tokens -------------------------------------------------------------------------------

/**
 * A token is `cpt_` and 32 random bytes in base64url: the prefix lets secret scanners and log
 * filters recognise one.
 */
const TOKEN_PREFIX = 'cpt_';
const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Default lifetime of an API token. */
export const API_TOKEN_TTL_MS = 90 * 86_400_000;

/**
 * The token record a presented bearer token stands for, when it is usable now; undefined for a
 * missing, malformed, unknown, expired or revoked token alike. The store is searched by the
 * token's hash, never by comparing the secret, so response time reveals nothing about it.
 */
export async function authenticateApiToken(
  deps: Pick<AdminDeps, 'store' | 'now'>,
  token: string | undefined,
): Promise<ApiTokenRecord | undefined> {
  if (token === undefined || !token.startsWith(TOKEN_PREFIX) || token.length > 256)
    return undefined;
  const rec = await deps.store.findApiToken(secretHash(token), nowOf(deps));
  return rec?.role === 'admin' ? rec : undefined;
}

export interface ApiTokenCreated {
  readonly id: string;
  readonly name: string;
  /** The bearer token: shown only here, stored as its SHA-256. */
  readonly token: string;
  readonly role: 'admin';
  readonly expiresAt: string | null;
}

/**
 * Creates an admin API token. `ttlMs` null: it never expires; default {@link API_TOKEN_TTL_MS}.
 * Names are unique for good (revoked tokens keep theirs), so `api:<name>` in the audit log
 * names one token; default `token-<first 8 characters of the id>`.
 */
export async function createApiToken(
  deps: AdminDeps,
  actor: string,
  o: { readonly name?: string; readonly ttlMs?: number | null } = {},
): Promise<ApiTokenCreated> {
  const id = randomUUID();
  const name = o.name ?? `token-${id.slice(0, 8)}`;
  if (!TOKEN_NAME.test(name))
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      `token name must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit: "${name}"`,
    );
  const ttl = o.ttlMs === undefined ? API_TOKEN_TTL_MS : o.ttlMs;
  if (ttl !== null && (!Number.isSafeInteger(ttl) || ttl <= 0))
    throw new AdminError('ERR_ADMIN_INVALID', `lifetime must be a positive duration, got ${ttl}`);
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const now = nowOf(deps);
  const expiresAt = ttl === null ? null : new Date(now.getTime() + ttl);
  await uniquelyNamed(
    deps.store.createApiToken({
      id,
      name,
      secretHash: secretHash(token),
      role: 'admin',
      createdAt: now,
      expiresAt,
    }),
    `a token named "${name}" already exists`,
  );
  await deps.store.appendAudit({
    at: now,
    actor,
    action: 'api-token.created',
    target: id,
    details: { name, role: 'admin', expiresAt: expiresAt?.toISOString() ?? null },
  });
  return { id, name, token, role: 'admin', expiresAt: expiresAt?.toISOString() ?? null };
}

export interface ApiTokenRow {
  readonly id: string;
  readonly name: string;
  readonly role: 'admin';
  readonly status: 'active' | 'expired' | 'revoked';
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

/** Every API token (never the secret nor its hash), oldest first. */
export async function listApiTokens(deps: AdminDeps): Promise<{ tokens: ApiTokenRow[] }> {
  const now = nowOf(deps);
  const list = await deps.store.listApiTokens();
  return {
    tokens: list.map((t) => ({
      id: t.id,
      name: t.name,
      role: t.role,
      status: t.revokedAt ? 'revoked' : t.expiresAt && t.expiresAt <= now ? 'expired' : 'active',
      createdAt: t.createdAt.toISOString(),
      expiresAt: t.expiresAt?.toISOString() ?? null,
      revokedAt: t.revokedAt?.toISOString() ?? null,
    })),
  };
}

/** Revokes an API token by id: it is refused from now on. */
export async function revokeApiToken(
  deps: AdminDeps,
  actor: string,
  id: string,
): Promise<{ id: string; revoked: true }> {
  const now = nowOf(deps);
  if (!(await deps.store.revokeApiToken(id, now))) {
    const known = (await deps.store.listApiTokens()).some((t) => t.id === id);
    throw new AdminError(
      known ? 'ERR_ADMIN_CONFLICT' : 'ERR_ADMIN_NOT_FOUND',
      `API token ${id} does not exist or is already revoked`,
    );
  }
  await deps.store.appendAudit({
    at: now,
    actor,
    action: 'api-token.revoked',
    target: id,
    details: {},
  });
  return { id, revoked: true };
}
