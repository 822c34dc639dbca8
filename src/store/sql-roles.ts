/**
 * The roles of `types.ts` (CertificateStore, ChallengeStore, RequestStore, AuditLog,
 * ApiTokenStore, FailureStore, EnrollmentTokenStore, DeviceStore, DeviceCommandStore, transaction)
 * as Kysely queries over {@link Schema}, shared by the SQLite and PostgreSQL backends. Both run
 * the same statements; a backend supplies only what its database really does differently (see
 * {@link SqlDialect}) and its own connection setup and `close`.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  sql,
  type ExpressionBuilder,
  type Insertable,
  type Kysely,
  type RawBuilder,
  type Selectable,
  type Transaction,
} from 'kysely';
import { precompiled, type PrecompiledDialect } from './precompiled.ts';
import { listMigrations, type Schema } from './migrations.ts';
import type {
  ApiTokenRecord,
  ApiTokenRole,
  AuditEntry,
  CertificateRecord,
  ChallengeRecord,
  DeviceCommandRecord,
  DeviceRecord,
  AssignmentRecord,
  DeliveryRecord,
  DeliveryState,
  DownloadKind,
  DownloadLinkRecord,
  MdmProfileKind,
  MdmProfileRecord,
  EnrollmentTokenRecord,
  RequestRecord,
  RequestStatus,
  RevocationReason,
  Store,
  UserRecord,
  UserRole,
  WebSessionRecord,
} from './types.ts';

const DEFAULT_LIMIT = 100;

/** What one backend does differently beneath the shared queries. */
export interface SqlDialect extends PrecompiledDialect {
  readonly backend: Store['backend'];
  /**
   * Maps the driver's unique-constraint failure to a `StoreConflictError` naming `what`;
   * returns anything else unchanged (it is rethrown as it is).
   */
  readonly conflict: (e: unknown, what: string) => unknown;
  /** The audit `details` column as read back: JSON text (SQLite) or parsed JSONB (PostgreSQL). */
  readonly auditDetails: (stored: unknown) => Record<string, unknown>;
  /**
   * A TEXT column holding a JSON object of strings, with the keys of `patch` (JSON text of an
   * object of strings) set over it, in one expression: merged by the database, in the update
   * itself, so nothing is read first and no concurrent merge is lost.
   */
  readonly mergeJsonText: (column: string, patch: string) => RawBuilder<string>;
}

type Roles = Omit<Store, 'transaction' | 'close'>;

/** The transaction a callback of `transaction` runs in, while it is open. */
interface Ambient {
  readonly tx: Transaction<Schema>;
  readonly roles: Roles;
  open: boolean;
  /** Savepoints taken so far (their names). */
  savepoints: number;
}

/**
 * The roles on `db` plus `transaction`, which runs each callback's roles in one transaction.
 *
 * The transaction is also ambient: a role called on this store from the callback's async
 * context (the code it calls, whichever store reference that code holds) runs inside it, not on
 * a connection of its own. Without that, such a call would wait for the connection the
 * transaction holds (SQLite: Kysely serialises the one connection) — for ever. A transaction
 * begun inside another is a savepoint of it. Once the callback settles, calls from work it left
 * running use the store as usual.
 */
export function sqlStore(db: Kysely<Schema>, dialect: SqlDialect): Omit<Store, 'close'> {
  const outer = sqlRoles(db, dialect);
  const ambient = new AsyncLocalStorage<Ambient>();
  const current = (): Roles => {
    const a = ambient.getStore();
    return a?.open ? a.roles : outer;
  };
  const routed = {} as Record<string, unknown>;
  for (const [name, value] of Object.entries(outer))
    routed[name] =
      typeof value === 'function'
        ? (...args: unknown[]) =>
            (current()[name as keyof Roles] as (...a: unknown[]) => unknown)(...args)
        : value;

  async function nested<T>(a: Ambient, f: (tx: Roles) => Promise<T>): Promise<T> {
    const name = sql.id(`sp${++a.savepoints}`);
    await sql`savepoint ${name}`.execute(a.tx);
    try {
      const value = await f(a.roles);
      await sql`release savepoint ${name}`.execute(a.tx);
      return value;
    } catch (e) {
      await sql`rollback to savepoint ${name}`.execute(a.tx);
      await sql`release savepoint ${name}`.execute(a.tx);
      throw e;
    }
  }

  return {
    ...(routed as Roles),
    transaction: (f) => {
      const a = ambient.getStore();
      if (a?.open) return nested(a, f);
      return db.transaction().execute(async (tx) => {
        const held = { ...dialect, held: () => inner.open };
        const inner: Ambient = { tx, roles: sqlRoles(tx, held), open: true, savepoints: 0 };
        try {
          return await ambient.run(inner, () => f(inner.roles));
        } finally {
          inner.open = false;
        }
      });
    },
  };
}

const LATEST = new Map<SqlDialect['backend'], number>();

/** The newest schema version this build ships for `backend` (read once). */
function latestVersion(backend: SqlDialect['backend']): number {
  let v = LATEST.get(backend);
  if (v === undefined) LATEST.set(backend, (v = listMigrations(backend).at(-1)?.version ?? 0));
  return v;
}

/** A plain Uint8Array copy: callers compare and hash bytes, never a driver's buffer subclass. */
function bytes(b: Uint8Array): Uint8Array {
  return new Uint8Array(b);
}

function date(ms: number): Date;
function date(ms: number | null): Date | null;
function date(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

function limitOf(limit: number | undefined): number {
  const n = limit ?? DEFAULT_LIMIT;
  if (!Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`limit must be a non-negative integer, got ${n}`);
  return n;
}

/**
 * Alt names as stored: one per line, with a line break before the first and after the last, so
 * that a whole name is matched by `LIKE '%\n<name>\n%'`; '' for none.
 */
function encodeAltNames(names: readonly string[]): string {
  for (const n of names)
    if (/[\r\n]/.test(n))
      throw new RangeError(`an alt name must not contain a line break: ${JSON.stringify(n)}`);
  return names.length ? `\n${names.join('\n')}\n` : '';
}

function decodeAltNames(stored: string): string[] {
  return stored === '' ? [] : stored.slice(1, -1).split('\n');
}

/** A LIKE pattern matching `text` literally (escape character `!`). */
function literal(text: string): string {
  return text.replace(/[!%_]/g, '!$&');
}

/** A non-negative safe integer, or a RangeError naming it. */
function whole(what: string, n: number, min = 0): number {
  if (!Number.isSafeInteger(n) || n < min)
    throw new RangeError(`${what} must be an integer ≥ ${min}, got ${n}`);
  return n;
}

function certificate(r: Selectable<Schema['certificates']>): CertificateRecord {
  return {
    serial: r.serial,
    sha1: r.sha1,
    subject: r.subject,
    notBefore: date(r.not_before),
    notAfter: date(r.not_after),
    der: bytes(r.der),
    profile: r.profile,
    requestId: r.request_id,
    issuedAt: date(r.issued_at),
    revokedAt: date(r.revoked_at),
    revocationReason: r.revocation_reason as RevocationReason | null,
    altNames: decodeAltNames(r.alt_names),
  };
}

function challenge(r: Schema['challenges']): ChallengeRecord {
  return {
    id: r.id,
    secretHash: r.secret_hash,
    profile: r.profile,
    subject: r.subject,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    usedAt: date(r.used_at),
  };
}

function request(r: Schema['requests']): RequestRecord {
  return {
    id: r.id,
    transactionId: r.transaction_id,
    subject: r.subject,
    profile: r.profile,
    csr: bytes(r.csr),
    signerCertificate: r.signer_certificate === null ? null : bytes(r.signer_certificate),
    status: r.status as RequestStatus,
    createdAt: date(r.created_at),
    decidedAt: date(r.decided_at),
    decidedBy: r.decided_by,
    certificateSerial: r.certificate_serial,
  };
}

function enrollmentToken(r: Schema['enrollment_tokens']): EnrollmentTokenRecord {
  return {
    id: r.id,
    secretHash: r.secret_hash,
    user: r.user_name,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    usesLeft: r.uses_left,
  };
}

function device(r: Schema['devices']): DeviceRecord {
  return {
    id: r.id,
    hardwareId: r.hardware_id,
    name: r.name,
    user: r.user_name,
    certificateSerial: r.certificate_serial,
    enrolledAt: date(r.enrolled_at),
    lastSeenAt: date(r.last_seen_at),
    unenrolledAt: date(r.unenrolled_at),
    info: JSON.parse(r.info) as Record<string, string>,
    auth:
      r.auth_hash !== null && r.auth_nonce !== null
        ? { hash: r.auth_hash, nonce: r.auth_nonce }
        : null,
  };
}

function deviceCommand(r: Omit<Selectable<Schema['device_commands']>, 'seq'>): DeviceCommandRecord {
  return {
    id: r.id,
    deviceId: r.device_id,
    payload: r.payload,
    origin: r.origin,
    createdAt: date(r.created_at),
    sentAt: date(r.sent_at),
    sentSession: r.sent_session,
    sentCount: r.sent_count,
    status: r.status,
    results: r.results,
    completedAt: date(r.completed_at),
  };
}

function mdmProfile(r: Schema['mdm_profiles']): MdmProfileRecord {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as MdmProfileKind,
    settings: r.settings,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
  };
}

function assignment(r: Schema['mdm_assignments']): AssignmentRecord {
  return {
    profileId: r.profile_id,
    targetKind: r.target_kind as AssignmentRecord['targetKind'],
    target: r.target,
    createdAt: date(r.created_at),
  };
}

function delivery(r: Schema['device_profiles']): DeliveryRecord {
  return {
    deviceId: r.device_id,
    profileId: r.profile_id,
    state: r.state as DeliveryState,
    detail: r.detail,
    updatedAt: date(r.updated_at),
  };
}

const COMMAND_COLUMNS = [
  'id',
  'device_id',
  'payload',
  'origin',
  'created_at',
  'sent_at',
  'sent_session',
  'sent_count',
  'status',
  'results',
  'completed_at',
] as const;

function userRecord(r: Schema['users']): UserRecord {
  return {
    id: r.id,
    username: r.username,
    email: r.email,
    displayName: r.display_name,
    passwordHash: r.password_hash,
    role: r.role as UserRole,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    disabledAt: date(r.disabled_at),
  };
}

function webSession(r: Schema['web_sessions']): WebSessionRecord {
  return {
    tokenHash: r.token_hash,
    userId: r.user_id,
    csrfToken: r.csrf_token,
    createdAt: date(r.created_at),
    lastSeenAt: date(r.last_seen_at),
    idleExpiresAt: date(r.idle_expires_at),
    expiresAt: date(r.expires_at),
  };
}

function downloadLink(r: Schema['download_links']): DownloadLinkRecord {
  return {
    tokenHash: r.token_hash,
    userId: r.user_id,
    kind: r.kind as DownloadKind,
    target: r.target,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    usedAt: date(r.used_at),
  };
}

function apiToken(r: Schema['api_tokens']): ApiTokenRecord {
  return {
    id: r.id,
    name: r.name,
    secretHash: r.secret_hash,
    role: r.role as ApiTokenRole,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    revokedAt: date(r.revoked_at),
  };
}

/** A write's "it changed a row". */
function changed(r: { readonly numAffectedRows?: bigint }): boolean {
  return (r.numAffectedRows ?? 0n) > 0n;
}

interface TokenLookup {
  readonly secretHash: string;
  readonly now: number;
}

/** The enrollment token with this hash, while it has uses left and has not expired. */
const usableToken = (eb: ExpressionBuilder<Schema, 'enrollment_tokens'>, v: TokenLookup) =>
  eb.and([
    eb('secret_hash', '=', v.secretHash),
    eb('uses_left', '>', 0),
    eb('expires_at', '>', v.now),
  ]);

/**
 * The one-time challenge with this hash while it is unused and has not expired: what
 * consumeChallenge takes and findUsableChallenge finds.
 */
const usableChallenge = (eb: ExpressionBuilder<Schema, 'challenges'>, v: TokenLookup) =>
  eb.and([
    eb('secret_hash', '=', v.secretHash),
    eb('used_at', 'is', null),
    eb('expires_at', '>', v.now),
  ]);

/**
 * Most rows a multi-row insert is precompiled for (a session queues a few commands at once);
 * more, from the admin API, are built each time, so the compiled shapes stay few.
 */
const MAX_PRECOMPILED_ROWS = 16;

/** The stand-ins `id0` … `id{n-1}` of a precompiled query's values. */
function idSlots(v: Record<string, unknown>, n: number): string[] {
  return Array.from({ length: n }, (_, i) => v[`id${i}`] as string);
}

/**
 * The queries of the MDM session and enrollment paths, compiled once per dialect
 * (precompiled.ts): each runs several times for every device a fleet enrolls.
 */
const Q = {
  insertCertificate: precompiled((db, _d: SqlDialect, v: Insertable<Schema['certificates']>) =>
    db.insertInto('certificates').values({
      serial: v.serial,
      sha1: v.sha1,
      subject: v.subject,
      not_before: v.not_before,
      not_after: v.not_after,
      der: v.der,
      profile: v.profile,
      request_id: v.request_id,
      issued_at: v.issued_at,
      alt_names: v.alt_names,
    }),
  ),
  certificateBy: {
    serial: precompiled((db, _d: SqlDialect, v: { serial: string }) =>
      db.selectFrom('certificates').selectAll().where('serial', '=', v.serial),
    ),
    sha1: precompiled((db, _d: SqlDialect, v: { sha1: string }) =>
      db.selectFrom('certificates').selectAll().where('sha1', '=', v.sha1),
    ),
  },
  createChallenge: precompiled((db, _d: SqlDialect, v: Insertable<Schema['challenges']>) =>
    db.insertInto('challenges').values({
      id: v.id,
      secret_hash: v.secret_hash,
      profile: v.profile,
      subject: v.subject,
      created_at: v.created_at,
      expires_at: v.expires_at,
    }),
  ),
  consumeChallenge: precompiled((db, _d: SqlDialect, v: TokenLookup) =>
    db
      .updateTable('challenges')
      .set({ used_at: v.now })
      .where((eb) => usableChallenge(eb, v))
      .returningAll(),
  ),
  usableChallenge: precompiled((db, _d: SqlDialect, v: TokenLookup) =>
    db
      .selectFrom('challenges')
      .selectAll()
      .where((eb) => usableChallenge(eb, v)),
  ),
  requestByTransaction: precompiled((db, _d: SqlDialect, v: { transactionId: string }) =>
    db.selectFrom('requests').selectAll().where('transaction_id', '=', v.transactionId),
  ),
  appendAudit: precompiled((db, _d: SqlDialect, v: Insertable<Schema['audit']>) =>
    db.insertInto('audit').values({
      at: v.at,
      actor: v.actor,
      action: v.action,
      target: v.target,
      details: v.details,
    }),
  ),
  countFailures: precompiled((db, _d: SqlDialect, v: { key: string; since: number }) =>
    db
      .selectFrom('challenge_failures')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
      .where('key', '=', v.key)
      .where('at', '>=', v.since),
  ),
  useEnrollmentToken: precompiled((db, _d: SqlDialect, v: TokenLookup) =>
    db
      .updateTable('enrollment_tokens')
      .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
      .where((eb) => usableToken(eb, v))
      .returningAll(),
  ),
  findEnrollmentToken: precompiled((db, _d: SqlDialect, v: TokenLookup) =>
    db
      .selectFrom('enrollment_tokens')
      .selectAll()
      .where((eb) => usableToken(eb, v)),
  ),
  createDevice: precompiled((db, _d: SqlDialect, v: Insertable<Schema['devices']>) =>
    db.insertInto('devices').values({
      id: v.id,
      hardware_id: v.hardware_id,
      name: v.name,
      user_name: v.user_name,
      certificate_serial: v.certificate_serial,
      enrolled_at: v.enrolled_at,
      auth_hash: v.auth_hash,
      auth_nonce: v.auth_nonce,
      info: v.info,
    }),
  ),
  device: precompiled((db, _d: SqlDialect, v: { id: string }) =>
    db.selectFrom('devices').selectAll().where('id', '=', v.id),
  ),
  deviceByHardwareId: precompiled((db, _d: SqlDialect, v: { hardwareId: string }) =>
    db
      .selectFrom('devices')
      .selectAll()
      .where('hardware_id', '=', v.hardwareId)
      .where('unenrolled_at', 'is', null)
      .orderBy('enrolled_at', 'desc')
      .orderBy('id', 'asc')
      .limit(sql.lit(1)),
  ),
  rotateDeviceNonce: precompiled(
    (db, _d: SqlDialect, v: { id: string; expected: string; next: string }) =>
      db
        .updateTable('devices')
        .set({ auth_nonce: v.next })
        .where('id', '=', v.id)
        .where('auth_nonce', '=', v.expected),
  ),
  touchDevice: precompiled((db, _d: SqlDialect, v: { id: string; at: number }) =>
    db.updateTable('devices').set({ last_seen_at: v.at }).where('id', '=', v.id),
  ),
  touchDeviceInfo: precompiled((db, d: SqlDialect, v: { id: string; at: number; info: string }) =>
    db
      .updateTable('devices')
      .set({ last_seen_at: v.at, info: d.mergeJsonText('info', v.info) })
      .where('id', '=', v.id),
  ),
  enqueueCommand: precompiled(
    (
      db,
      _d: SqlDialect,
      v: Pick<
        Insertable<Schema['device_commands']>,
        'id' | 'device_id' | 'payload' | 'origin' | 'created_at'
      >,
    ) =>
      db.insertInto('device_commands').values({
        id: v.id,
        device_id: v.device_id,
        payload: v.payload,
        origin: v.origin,
        created_at: v.created_at,
      }),
  ),
  openCommands: precompiled((db, _d: SqlDialect, v: { deviceId: string }, limit) =>
    db
      .selectFrom('device_commands')
      .select(COMMAND_COLUMNS)
      .where('device_id', '=', v.deviceId)
      .where('completed_at', 'is', null)
      .orderBy('seq', 'asc')
      .limit(sql.lit(limit)),
  ),
  /** `n` commands (n ≥ 2): `id0`, `device_id0`, `payload0`, `origin0`, `created_at0`, … */
  enqueueCommands: precompiled((db, _d: SqlDialect, v: Record<string, unknown>, n) =>
    db.insertInto('device_commands').values(
      Array.from({ length: n }, (_, i) => ({
        id: v[`id${i}`] as string,
        device_id: v[`device_id${i}`] as string,
        payload: v[`payload${i}`] as string,
        origin: v[`origin${i}`] as string | null,
        created_at: v[`created_at${i}`] as number,
      })),
    ),
  ),
  /** The device's open commands `id0` … `id{n-1}`, marked sent. */
  markCommandsSent: precompiled((db, _d: SqlDialect, v: Record<string, unknown>, n) =>
    db
      .updateTable('device_commands')
      .set((eb) => ({
        sent_at: v['at'] as number,
        sent_session: v['session'] as string,
        sent_count: eb('sent_count', '+', 1),
      }))
      .where('device_id', '=', v['deviceId'] as string)
      .where('id', 'in', idSlots(v, n))
      .where('completed_at', 'is', null),
  ),
  /**
   * The device's open commands `id0` … `id{n-1}`, each with its `status{i}` and `results{i}`,
   * in one UPDATE (CASE by id; the casts give PostgreSQL the column types its parameters would
   * otherwise lack).
   */
  completeCommands: precompiled((db, _d: SqlDialect, v: Record<string, unknown>, n) => {
    const byId = <T>(value: (i: number) => RawBuilder<T>) =>
      sql<T>`case ${sql.ref('id')} ${sql.join(
        Array.from({ length: n }, (_, i) => sql`when ${v[`id${i}`]} then ${value(i)}`),
        sql` `,
      )} end`;
    return db
      .updateTable('device_commands')
      .set({
        status: byId((i) => sql<number>`cast(${v[`status${i}`]} as integer)`),
        results: byId((i) => sql<string | null>`cast(${v[`results${i}`]} as text)`),
        completed_at: v['at'] as number,
      })
      .where('device_id', '=', v['deviceId'] as string)
      .where('id', 'in', idSlots(v, n))
      .where('completed_at', 'is', null);
  }),
  mdmProfile: precompiled((db, _d: SqlDialect, v: { id: string }) =>
    db.selectFrom('mdm_profiles').selectAll().where('id', '=', v.id),
  ),
  profilesForDevice: precompiled(
    (db, _d: SqlDialect, v: { deviceId: string; user: string | null }) =>
      db
        .selectFrom('mdm_profiles')
        .selectAll()
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('mdm_assignments')
              .select('mdm_assignments.profile_id')
              .whereRef('mdm_assignments.profile_id', '=', 'mdm_profiles.id')
              .where((w) =>
                w.or([
                  w.and([w('target_kind', '=', 'device'), w('target', '=', v.deviceId)]),
                  w('target_kind', '=', 'all'),
                  // No user (null) matches no row: `target = null` is never true.
                  w.and([w('target_kind', '=', 'user'), w('target', '=', v.user)]),
                ]),
              ),
          ),
        )
        .orderBy('name', 'asc'),
  ),
  deliveries: precompiled((db, _d: SqlDialect, v: { deviceId: string }) =>
    db
      .selectFrom('device_profiles')
      .selectAll()
      .where('device_id', '=', v.deviceId)
      .orderBy('profile_id', 'asc'),
  ),
  putDelivery: precompiled((db, _d: SqlDialect, v: Schema['device_profiles']) =>
    db
      .insertInto('device_profiles')
      .values({
        device_id: v.device_id,
        profile_id: v.profile_id,
        state: v.state,
        detail: v.detail,
        updated_at: v.updated_at,
      })
      .onConflict((oc) =>
        oc
          .columns(['device_id', 'profile_id'])
          .doUpdateSet({ state: v.state, detail: v.detail, updated_at: v.updated_at }),
      ),
  ),
};

/** Every role, on the store's connection or inside a transaction. */
export function sqlRoles(
  db: Kysely<Schema> | Transaction<Schema>,
  dialect: SqlDialect,
): Omit<Store, 'transaction' | 'close'> {
  return {
    backend: dialect.backend,
    async status() {
      const clock =
        dialect.backend === 'postgres'
          ? sql<number>`(extract(epoch from clock_timestamp()) * 1000)::float8`
          : sql<number>`unixepoch('subsec') * 1000`;
      const r = await db
        .selectFrom('schema_migrations')
        .select([clock.as('now'), (eb) => eb.fn.max('version').as('version')])
        .executeTakeFirstOrThrow();
      return {
        time: new Date(Math.round(Number(r.now))),
        schemaVersion: Number(r.version ?? 0),
        latestSchemaVersion: latestVersion(dialect.backend),
      };
    },

    async insertCertificate(c) {
      try {
        await Q.insertCertificate(db, dialect, {
          serial: c.serial,
          sha1: c.sha1,
          subject: c.subject,
          not_before: c.notBefore.getTime(),
          not_after: c.notAfter.getTime(),
          der: c.der,
          profile: c.profile,
          request_id: c.requestId,
          issued_at: c.issuedAt.getTime(),
          alt_names: encodeAltNames(c.altNames),
        });
      } catch (e) {
        throw dialect.conflict(e, `certificate ${c.serial}`);
      }
    },

    async getCertificate(serial) {
      const r = (await Q.certificateBy.serial(db, dialect, { serial })).rows[0];
      return r && certificate(r);
    },

    async getCertificateBySha1(sha1) {
      const r = (await Q.certificateBy.sha1(db, dialect, { sha1 })).rows[0];
      return r && certificate(r);
    },

    async listCertificates(query = {}) {
      let q = db.selectFrom('certificates').selectAll();
      if (query.subject !== undefined) q = q.where('subject', '=', query.subject);
      if (query.revoked !== undefined)
        q = q.where('revoked_at', query.revoked ? 'is not' : 'is', null);
      if (query.search !== undefined) {
        const p = `%${literal(query.search.toLowerCase())}%`;
        q = q.where(
          sql<boolean>`(lower(subject) like ${p} escape '!' or lower(serial) like ${p} escape '!' or lower(alt_names) like ${p} escape '!')`,
        );
      }
      if (query.altNames !== undefined) {
        const names = query.altNames;
        if (names.length === 0) return [];
        q = q.where((eb) =>
          eb.or(
            names.map(
              (n) =>
                sql<boolean>`lower(alt_names) like ${`%\n${literal(n.toLowerCase())}\n%`} escape '!'`,
            ),
          ),
        );
      }
      const rows = await q
        .orderBy('issued_at', 'desc')
        .orderBy('serial', 'asc')
        .limit(limitOf(query.limit))
        .offset(whole('offset', query.offset ?? 0))
        .execute();
      return rows.map(certificate);
    },

    async countCertificatesByInterval(query) {
      const from = whole('from', query.from.getTime(), Number.MIN_SAFE_INTEGER);
      const width = whole('bucketMs', query.bucketMs, 1);
      const buckets = whole('buckets', query.buckets, 1);
      if (buckets > 10_000) throw new RangeError(`at most 10000 buckets, got ${buckets}`);
      const column = query.by === 'issuedAt' ? 'issued_at' : 'not_after';
      // Validated integers as literals: the bucket expression is then the same text in SELECT
      // and GROUP BY, and integer division in both dialects.
      let q = db
        .selectFrom('certificates')
        .select((eb) => [
          sql<number>`(${sql.ref(column)} - ${sql.lit(from)}) / ${sql.lit(width)}`.as('bucket'),
          eb.fn.countAll<number | string | bigint>().as('n'),
        ])
        .where(column, '>=', from)
        .where(column, '<', from + width * buckets);
      if (query.revoked !== undefined)
        q = q.where('revoked_at', query.revoked ? 'is not' : 'is', null);
      const rows = await q.groupBy(sql`1`).execute();
      const counts = Array.from({ length: buckets }, () => 0);
      for (const r of rows) counts[Number(r.bucket)] = Number(r.n);
      return counts;
    },

    async revokeCertificate(serial, reason, at) {
      const r = await db
        .updateTable('certificates')
        .set({ revoked_at: at.getTime(), revocation_reason: reason })
        .where('serial', '=', serial)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async listRevoked(at) {
      const rows = await db
        .selectFrom('certificates')
        .select(['serial', 'revoked_at', 'revocation_reason'])
        .where('revoked_at', 'is not', null)
        .where('not_after', '>=', at.getTime())
        .orderBy('serial', 'asc')
        .execute();
      return rows.map((r) => ({
        serial: r.serial,
        revokedAt: new Date(r.revoked_at!),
        reason: r.revocation_reason as RevocationReason,
      }));
    },

    async createChallenge(c) {
      try {
        await Q.createChallenge(db, dialect, {
          id: c.id,
          secret_hash: c.secretHash,
          profile: c.profile,
          subject: c.subject,
          created_at: c.createdAt.getTime(),
          expires_at: c.expiresAt.getTime(),
        });
      } catch (e) {
        throw dialect.conflict(e, `challenge ${c.id}`);
      }
    },

    async consumeChallenge(secretHash, now) {
      // One statement: the check and the mark are atomic, so exactly one concurrent caller wins.
      const r = (await Q.consumeChallenge(db, dialect, { secretHash, now: now.getTime() })).rows[0];
      return r && challenge(r);
    },

    async findUsableChallenge(secretHash, now) {
      const r = (await Q.usableChallenge(db, dialect, { secretHash, now: now.getTime() })).rows[0];
      return r && challenge(r);
    },

    async getChallenge(id) {
      const r = await db
        .selectFrom('challenges')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirst();
      return r && challenge(r);
    },

    async purgeExpiredChallenges(before) {
      const r = await db
        .deleteFrom('challenges')
        .where('expires_at', '<', before.getTime())
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },

    async createRequest(r) {
      try {
        await db
          .insertInto('requests')
          .values({
            id: r.id,
            transaction_id: r.transactionId,
            subject: r.subject,
            profile: r.profile,
            csr: r.csr,
            signer_certificate: r.signerCertificate,
            status: 'pending',
            created_at: r.createdAt.getTime(),
            decided_at: null,
            decided_by: null,
            certificate_serial: null,
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, `request ${r.id} (transaction ${r.transactionId})`);
      }
    },

    async getRequest(id) {
      const r = await db.selectFrom('requests').selectAll().where('id', '=', id).executeTakeFirst();
      return r && request(r);
    },

    async getRequestByTransaction(transactionId) {
      const r = (await Q.requestByTransaction(db, dialect, { transactionId })).rows[0];
      return r && request(r);
    },

    async listRequests(status) {
      let q = db.selectFrom('requests').selectAll();
      if (status !== undefined) q = q.where('status', '=', status);
      const rows = await q.orderBy('created_at', 'asc').orderBy('id', 'asc').execute();
      return rows.map(request);
    },

    async decideRequest(id, decision, by, at) {
      const r = await db
        .updateTable('requests')
        .set({ status: decision, decided_at: at.getTime(), decided_by: by })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async markIssued(id, serial) {
      const r = await db
        .updateTable('requests')
        .set({ status: 'issued', certificate_serial: serial })
        .where('id', '=', id)
        .where('status', '=', 'approved')
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async appendAudit(e: AuditEntry) {
      await Q.appendAudit(db, dialect, {
        at: e.at.getTime(),
        actor: e.actor,
        action: e.action,
        target: e.target,
        details: JSON.stringify(e.details),
      });
    },

    async listAudit(query = {}) {
      let q = db.selectFrom('audit').selectAll();
      if (query.action !== undefined) q = q.where('action', '=', query.action);
      const rows = await q
        .orderBy('at', 'desc')
        .orderBy('id', 'desc')
        .limit(limitOf(query.limit))
        .offset(whole('offset', query.offset ?? 0))
        .execute();
      return rows.map((r) => ({
        id: r.id,
        at: new Date(r.at),
        actor: r.actor,
        action: r.action,
        target: r.target,
        details: dialect.auditDetails(r.details),
      }));
    },

    async createApiToken(t) {
      try {
        await db
          .insertInto('api_tokens')
          .values({
            id: t.id,
            name: t.name,
            secret_hash: t.secretHash,
            role: t.role,
            created_at: t.createdAt.getTime(),
            expires_at: t.expiresAt?.getTime() ?? null,
            revoked_at: null,
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, `API token ${t.id} ("${t.name}")`);
      }
    },

    async findApiToken(secretHash, now) {
      const r = await db
        .selectFrom('api_tokens')
        .selectAll()
        .where('secret_hash', '=', secretHash)
        .where('revoked_at', 'is', null)
        .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.getTime())]))
        .executeTakeFirst();
      return r && apiToken(r);
    },

    async revokeApiToken(id, at) {
      const r = await db
        .updateTable('api_tokens')
        .set({ revoked_at: at.getTime() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async listApiTokens() {
      const rows = await db
        .selectFrom('api_tokens')
        .selectAll()
        .orderBy('created_at', 'asc')
        .orderBy('id', 'asc')
        .execute();
      return rows.map(apiToken);
    },

    async recordFailure(key, at) {
      await db.insertInto('challenge_failures').values({ key, at: at.getTime() }).execute();
    },

    async countFailures(key, since) {
      const r = (await Q.countFailures(db, dialect, { key, since: since.getTime() })).rows[0];
      return Number(r?.n ?? 0);
    },

    async purgeFailures(before, keyPrefix) {
      let q = db.deleteFrom('challenge_failures').where('at', '<', before.getTime());
      // A prefix compared exactly (SQLite's LIKE ignores case, PostgreSQL's does not).
      if (keyPrefix !== undefined)
        q = q.where(sql<boolean>`substr(key, 1, ${keyPrefix.length}) = ${keyPrefix}`);
      const r = await q.executeTakeFirst();
      return Number(r.numDeletedRows);
    },

    async createEnrollmentToken(t) {
      try {
        await db
          .insertInto('enrollment_tokens')
          .values({
            id: t.id,
            secret_hash: t.secretHash,
            user_name: t.user,
            created_at: t.createdAt.getTime(),
            expires_at: t.expiresAt.getTime(),
            uses_left: t.usesLeft,
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, `enrollment token ${t.id}`);
      }
    },

    async useEnrollmentToken(secretHash, now) {
      // One statement: the check and the decrement are atomic (see consumeChallenge).
      const r = (await Q.useEnrollmentToken(db, dialect, { secretHash, now: now.getTime() }))
        .rows[0];
      return r && enrollmentToken(r);
    },

    async findEnrollmentToken(secretHash, now) {
      const r = (await Q.findEnrollmentToken(db, dialect, { secretHash, now: now.getTime() }))
        .rows[0];
      return r && enrollmentToken(r);
    },

    async listEnrollmentTokens() {
      const rows = await db
        .selectFrom('enrollment_tokens')
        .selectAll()
        .orderBy('created_at', 'asc')
        .orderBy('id', 'asc')
        .execute();
      return rows.map(enrollmentToken);
    },

    async revokeEnrollmentToken(id) {
      const r = await db
        .updateTable('enrollment_tokens')
        .set({ uses_left: 0 })
        .where('id', '=', id)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async createDevice(d) {
      try {
        await Q.createDevice(db, dialect, {
          id: d.id,
          hardware_id: d.hardwareId,
          name: d.name,
          user_name: d.user,
          certificate_serial: d.certificateSerial,
          enrolled_at: d.enrolledAt.getTime(),
          auth_hash: d.auth?.hash ?? null,
          auth_nonce: d.auth?.nonce ?? null,
          info: JSON.stringify(d.info),
        });
      } catch (e) {
        throw dialect.conflict(e, `device ${d.id}`);
      }
    },

    async getDevice(id) {
      const r = (await Q.device(db, dialect, { id })).rows[0];
      return r && device(r);
    },

    async getDeviceByHardwareId(hardwareId) {
      const r = (await Q.deviceByHardwareId(db, dialect, { hardwareId })).rows[0];
      return r && device(r);
    },

    async replaceDeviceCertificate(id, expected, next) {
      const r = await db
        .updateTable('devices')
        .set({ certificate_serial: next })
        .where('id', '=', id)
        .where('certificate_serial', '=', expected)
        .where('unenrolled_at', 'is', null)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async rotateDeviceNonce(id, expected, next) {
      return changed(await Q.rotateDeviceNonce(db, dialect, { id, expected, next }));
    },

    async listDevices(query = {}) {
      let q = db.selectFrom('devices').selectAll();
      if (query.user !== undefined)
        q = q.where(sql<string>`lower(user_name)`, '=', query.user.toLowerCase());
      if (query.enrolled) q = q.where('unenrolled_at', 'is', null);
      const rows = await q
        .orderBy('enrolled_at', 'asc')
        .orderBy('id', 'asc')
        .limit(limitOf(query.limit))
        .execute();
      return rows.map(device);
    },

    async touchDevice(id, at, info) {
      return changed(
        info !== undefined && Object.keys(info).length > 0
          ? await Q.touchDeviceInfo(db, dialect, {
              id,
              at: at.getTime(),
              info: JSON.stringify(info),
            })
          : await Q.touchDevice(db, dialect, { id, at: at.getTime() }),
      );
    },

    async unenrollDevice(id, at) {
      const r = await db
        .updateTable('devices')
        .set({ unenrolled_at: at.getTime() })
        .where('id', '=', id)
        .where('unenrolled_at', 'is', null)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async enqueueCommands(commands) {
      if (commands.length === 0) return;
      try {
        const [one] = commands;
        if (commands.length === 1 && one) {
          await Q.enqueueCommand(db, dialect, {
            id: one.id,
            device_id: one.deviceId,
            payload: one.payload,
            origin: one.origin,
            created_at: one.createdAt.getTime(),
          });
          return;
        }
        if (commands.length > MAX_PRECOMPILED_ROWS) {
          await db
            .insertInto('device_commands')
            .values(
              commands.map((c) => ({
                id: c.id,
                device_id: c.deviceId,
                payload: c.payload,
                origin: c.origin,
                created_at: c.createdAt.getTime(),
              })),
            )
            .execute();
          return;
        }
        const v: Record<string, unknown> = {};
        commands.forEach((c, i) => {
          v[`id${i}`] = c.id;
          v[`device_id${i}`] = c.deviceId;
          v[`payload${i}`] = c.payload;
          v[`origin${i}`] = c.origin;
          v[`created_at${i}`] = c.createdAt.getTime();
        });
        await Q.enqueueCommands(db, dialect, v, commands.length);
      } catch (e) {
        throw dialect.conflict(e, `commands for ${commands[0]!.deviceId}`);
      }
    },

    async openCommands(deviceId, limit) {
      const { rows } = await Q.openCommands(db, dialect, { deviceId }, limitOf(limit));
      return rows.map(deviceCommand);
    },

    async markCommandsSent(deviceId, ids, sent) {
      if (ids.length === 0) return;
      const v: Record<string, unknown> = { deviceId, at: sent.at.getTime(), session: sent.session };
      ids.forEach((id, i) => (v[`id${i}`] = id));
      await Q.markCommandsSent(db, dialect, v, ids.length);
    },

    async completeCommands(deviceId, outcomes, at) {
      if (outcomes.length === 0) return 0;
      const v: Record<string, unknown> = { deviceId, at: at.getTime() };
      outcomes.forEach((o, i) => {
        v[`id${i}`] = o.id;
        v[`status${i}`] = o.status;
        v[`results${i}`] = o.results;
      });
      const r = await Q.completeCommands(db, dialect, v, outcomes.length);
      return Number(r.numAffectedRows ?? 0n);
    },

    async listCommands(deviceId, query = {}) {
      const rows = await db
        .selectFrom('device_commands')
        .select(COMMAND_COLUMNS)
        .where('device_id', '=', deviceId)
        .orderBy('seq', 'desc')
        .limit(limitOf(query.limit))
        .execute();
      return rows.map(deviceCommand);
    },

    async createMdmProfile(p) {
      try {
        await db
          .insertInto('mdm_profiles')
          .values({
            id: p.id,
            name: p.name,
            kind: p.kind,
            settings: p.settings,
            created_at: p.createdAt.getTime(),
            updated_at: p.updatedAt.getTime(),
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, `MDM profile ${p.id} ("${p.name}")`);
      }
    },

    async getMdmProfile(id) {
      const r = (await Q.mdmProfile(db, dialect, { id })).rows[0];
      return r && mdmProfile(r);
    },

    async getMdmProfileByName(name) {
      const r = await db
        .selectFrom('mdm_profiles')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      return r && mdmProfile(r);
    },

    async listMdmProfiles() {
      const rows = await db.selectFrom('mdm_profiles').selectAll().orderBy('name', 'asc').execute();
      return rows.map(mdmProfile);
    },

    async updateMdmProfile(id, settings, at) {
      const r = await db
        .updateTable('mdm_profiles')
        .set({ settings, updated_at: at.getTime() })
        .where('id', '=', id)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async assignMdmProfile(a) {
      const r = await db
        .insertInto('mdm_assignments')
        .values({
          profile_id: a.profileId,
          target_kind: a.targetKind,
          target: a.target,
          created_at: a.createdAt.getTime(),
        })
        .onConflict((oc) => oc.columns(['profile_id', 'target_kind', 'target']).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0;
    },

    async unassignMdmProfile(a) {
      const r = await db
        .deleteFrom('mdm_assignments')
        .where('profile_id', '=', a.profileId)
        .where('target_kind', '=', a.targetKind)
        .where('target', '=', a.target)
        .executeTakeFirst();
      return r.numDeletedRows > 0n;
    },

    async listAssignments(profileId) {
      let q = db.selectFrom('mdm_assignments').selectAll();
      if (profileId !== undefined) q = q.where('profile_id', '=', profileId);
      const rows = await q
        .orderBy('profile_id', 'asc')
        .orderBy('target_kind', 'asc')
        .orderBy('target', 'asc')
        .execute();
      return rows.map(assignment);
    },

    async profilesForDevice(deviceId, user) {
      const { rows } = await Q.profilesForDevice(db, dialect, {
        deviceId,
        user: user === null ? null : user.toLowerCase(),
      });
      return rows.map(mdmProfile);
    },

    async listDeliveries(deviceId) {
      const { rows } = await Q.deliveries(db, dialect, { deviceId });
      return rows.map(delivery);
    },

    async putDelivery(d) {
      await Q.putDelivery(db, dialect, {
        device_id: d.deviceId,
        profile_id: d.profileId,
        state: d.state,
        detail: d.detail,
        updated_at: d.updatedAt.getTime(),
      });
    },

    async replaceInventory(deviceId, prefix, entries) {
      // A prefix compared exactly (SQLite's LIKE ignores case, PostgreSQL's does not).
      await db
        .deleteFrom('device_certificates')
        .where('device_id', '=', deviceId)
        .where(sql<boolean>`substr(uri, 1, ${prefix.length}) = ${prefix}`)
        .execute();
      if (entries.length === 0) return;
      await db
        .insertInto('device_certificates')
        .values(
          entries.map((e) => ({
            device_id: deviceId,
            uri: e.uri,
            thumbprint: e.thumbprint,
            subject: e.subject,
            issuer: e.issuer,
            not_after: e.notAfter.getTime(),
            der: e.der,
            seen_at: e.seenAt.getTime(),
          })),
        )
        .onConflict((oc) => oc.columns(['device_id', 'uri']).doNothing())
        .execute();
    },

    async listInventory(deviceId) {
      const rows = await db
        .selectFrom('device_certificates')
        .selectAll()
        .where('device_id', '=', deviceId)
        .orderBy('uri', 'asc')
        .execute();
      return rows.map((r) => ({
        deviceId: r.device_id,
        uri: r.uri,
        thumbprint: r.thumbprint,
        subject: r.subject,
        issuer: r.issuer,
        notAfter: date(r.not_after),
        der: bytes(r.der),
        seenAt: date(r.seen_at),
      }));
    },

    async escrowKey(e) {
      try {
        await db
          .insertInto('key_escrow')
          .values({
            serial: e.serial,
            pfx: e.pfx,
            password_envelope: e.passwordEnvelope,
            created_at: e.createdAt.getTime(),
          })
          .execute();
      } catch (err) {
        throw dialect.conflict(err, `escrowed key of ${e.serial}`);
      }
    },

    async getEscrow(serial) {
      const r = await db
        .selectFrom('key_escrow')
        .selectAll()
        .where('serial', '=', serial)
        .executeTakeFirst();
      return (
        r && {
          serial: r.serial,
          pfx: bytes(r.pfx),
          passwordEnvelope: bytes(r.password_envelope),
          createdAt: date(r.created_at),
        }
      );
    },

    async createUser(u) {
      try {
        await db
          .insertInto('users')
          .values({
            id: u.id,
            username: u.username,
            email: u.email,
            display_name: u.displayName,
            password_hash: u.passwordHash,
            role: u.role,
            created_at: u.createdAt.getTime(),
            updated_at: u.updatedAt.getTime(),
            disabled_at: null,
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, `user ${u.id} ("${u.username}")`);
      }
    },

    async getUser(id) {
      const r = await db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
      return r && userRecord(r);
    },

    async getUserByName(username) {
      const r = await db
        .selectFrom('users')
        .selectAll()
        .where('username', '=', username)
        .executeTakeFirst();
      return r && userRecord(r);
    },

    async listUsers() {
      const rows = await db.selectFrom('users').selectAll().orderBy('username', 'asc').execute();
      return rows.map(userRecord);
    },

    async updateUser(id, changes, at) {
      const r = await db
        .updateTable('users')
        .set({
          ...(changes.passwordHash !== undefined ? { password_hash: changes.passwordHash } : {}),
          ...(changes.role !== undefined ? { role: changes.role } : {}),
          ...(changes.displayName !== undefined ? { display_name: changes.displayName } : {}),
          ...(changes.email !== undefined ? { email: changes.email } : {}),
          ...(changes.disabledAt !== undefined
            ? { disabled_at: changes.disabledAt?.getTime() ?? null }
            : {}),
          updated_at: at.getTime(),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async createWebSession(w) {
      try {
        await db
          .insertInto('web_sessions')
          .values({
            token_hash: w.tokenHash,
            user_id: w.userId,
            csrf_token: w.csrfToken,
            created_at: w.createdAt.getTime(),
            last_seen_at: w.lastSeenAt.getTime(),
            idle_expires_at: w.idleExpiresAt.getTime(),
            expires_at: w.expiresAt.getTime(),
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, 'web session');
      }
    },

    async findWebSession(tokenHash, now) {
      const r = await db
        .selectFrom('web_sessions')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .where('idle_expires_at', '>', now.getTime())
        .where('expires_at', '>', now.getTime())
        .executeTakeFirst();
      return r && webSession(r);
    },

    async touchWebSession(tokenHash, at, idleExpiresAt) {
      const r = await db
        .updateTable('web_sessions')
        .set((eb) => ({
          last_seen_at: at.getTime(),
          idle_expires_at: eb
            .case()
            .when('expires_at', '<', idleExpiresAt.getTime())
            .then(eb.ref('expires_at'))
            .else(idleExpiresAt.getTime())
            .end(),
        }))
        .where('token_hash', '=', tokenHash)
        .where('idle_expires_at', '>', at.getTime())
        .where('expires_at', '>', at.getTime())
        .executeTakeFirst();
      return r.numUpdatedRows > 0n;
    },

    async deleteWebSession(tokenHash) {
      const r = await db
        .deleteFrom('web_sessions')
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      return r.numDeletedRows > 0n;
    },

    async deleteUserWebSessions(userId) {
      const r = await db
        .deleteFrom('web_sessions')
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },

    async purgeWebSessions(before) {
      const r = await db
        .deleteFrom('web_sessions')
        .where((eb) =>
          eb.or([
            eb('idle_expires_at', '<=', before.getTime()),
            eb('expires_at', '<=', before.getTime()),
          ]),
        )
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },

    async createDownloadLink(l) {
      try {
        await db
          .insertInto('download_links')
          .values({
            token_hash: l.tokenHash,
            user_id: l.userId,
            kind: l.kind,
            target: l.target,
            created_at: l.createdAt.getTime(),
            expires_at: l.expiresAt.getTime(),
            used_at: null,
          })
          .execute();
      } catch (e) {
        throw dialect.conflict(e, 'download link');
      }
    },

    async consumeDownloadLink(tokenHash, userId, now) {
      // One statement: the check and the mark are atomic (see consumeChallenge).
      const r = await db
        .updateTable('download_links')
        .set({ used_at: now.getTime() })
        .where('token_hash', '=', tokenHash)
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now.getTime())
        .returningAll()
        .executeTakeFirst();
      return r && downloadLink(r);
    },

    async getDownloadLink(tokenHash) {
      const r = await db
        .selectFrom('download_links')
        .selectAll()
        .where('token_hash', '=', tokenHash)
        .executeTakeFirst();
      return r && downloadLink(r);
    },

    async purgeDownloadLinks(before) {
      const r = await db
        .deleteFrom('download_links')
        .where('expires_at', '<', before.getTime())
        .executeTakeFirst();
      return Number(r.numDeletedRows);
    },
  };
}
