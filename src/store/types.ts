/**
 * Storage roles (style.md principle 4): small interfaces, each consumer asks for the narrowest
 * one. Every backend (SQLite, PostgreSQL) implements all of them and passes the one conformance
 * suite in `conformance.ts`. The doc comments state the edge semantics backends must share.
 *
 * Records hold bytes and plain values only: `store` imports no protocol component.
 * Times are `Date`s (stored as UTC milliseconds); identifiers are strings.
 */

/** Revocation reasons, RFC 5280 §5.3.1 (CRLReason). */
export type RevocationReason = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 8 | 9 | 10;

export interface CertificateRecord {
  /** Serial number, lowercase hex without leading zero octets: unique across the store. */
  readonly serial: string;
  /** SHA-1 thumbprint of `der`, lowercase hex. */
  readonly sha1: string;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly der: Uint8Array;
  /** Issuance profile name. */
  readonly profile: string;
  /** The request this certificate answered, if any (see {@link RequestRecord}). */
  readonly requestId: string | null;
  readonly issuedAt: Date;
  readonly revokedAt: Date | null;
  readonly revocationReason: RevocationReason | null;
  /**
   * The subject alternative names, each `type:value` (`email:ann@contoso.com`, `upn:…`,
   * `dns:…`, `ip:…`, `uri:…`), in the certificate's order: what search and "my certificates"
   * match (case-insensitively). No entry may contain a line break (RangeError on insert).
   * Certificates recorded before schema 0008 have none.
   */
  readonly altNames: readonly string[];
}

/**
 * The stored form of a serial number given as hex by a person or a protocol: lowercase, no
 * leading zero octets (a DER sign octet `00` included). Look-ups must use it.
 */
export function canonicalSerial(hex: string): string {
  return hex.replace(/^(00)+(?=.)/, '').toLowerCase();
}

export type NewCertificate = Omit<CertificateRecord, 'revokedAt' | 'revocationReason'>;

/** Thrown when a unique constraint refuses an insert; `code` says which. */
export class StoreConflictError extends Error {
  readonly code:
    | 'ERR_STORE_DUPLICATE_SERIAL'
    | 'ERR_STORE_DUPLICATE_ID'
    | 'ERR_STORE_DUPLICATE_TRANSACTION'
    | 'ERR_STORE_DUPLICATE_NAME';
  constructor(code: StoreConflictError['code'], message: string) {
    super(message);
    this.code = code;
    this.name = 'StoreConflictError';
  }
}

/**
 * The database cannot be opened: `ERR_STORE_UNWRITABLE` for a SQLite file whose directory is
 * read-only, full, missing or not ours; `ERR_STORE_UNREACHABLE` for a PostgreSQL server that
 * does not answer or refuses the login. The message names the place and the cause, never a
 * password.
 */
export class StoreUnavailableError extends Error {
  readonly code: 'ERR_STORE_UNWRITABLE' | 'ERR_STORE_UNREACHABLE';
  constructor(code: StoreUnavailableError['code'], message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'StoreUnavailableError';
  }
}

/** SQLite result codes that mean "the database cannot take this now" (sqlite.org/rescode.html). */
const SQLITE_UNAVAILABLE = new Set([5, 6, 8, 10, 13, 14]); // BUSY LOCKED READONLY IOERR FULL CANTOPEN

/** PostgreSQL SQLSTATEs and socket errors of a database that is going or gone. */
const PG_UNAVAILABLE =
  /^(57P0[1-3]|08\d{3}|53\d{3}|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND)$/;

/**
 * True when `e` says the database is unavailable (down, restarting, full, read-only, locked
 * past the busy timeout), as opposed to a bug or a bad request: HTTP adapters answer 503 with
 * Retry-After for these, so clients try again instead of giving up.
 */
export function isStoreUnavailable(e: unknown): boolean {
  if (e instanceof StoreUnavailableError) return true;
  const err = e as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  if (err.code === 'ERR_SQLITE_ERROR' && typeof err.errcode === 'number')
    return SQLITE_UNAVAILABLE.has(err.errcode & 0xff);
  if (typeof err.code === 'string' && PG_UNAVAILABLE.test(err.code)) return true;
  return (
    typeof err.message === 'string' &&
    /^Connection terminated|^Client has encountered a connection error/.test(err.message)
  );
}

export interface CertificateStore {
  /**
   * Records an issued certificate. The serial is unique by a database constraint: a second
   * insert with the same serial throws {@link StoreConflictError} `ERR_STORE_DUPLICATE_SERIAL`
   * and changes nothing, whatever the concurrency (two server processes included).
   */
  insertCertificate(cert: NewCertificate): Promise<void>;
  /** The certificate with this serial, or undefined. */
  getCertificate(serial: string): Promise<CertificateRecord | undefined>;
  /** The certificate with this SHA-1 thumbprint, or undefined. */
  getCertificateBySha1(sha1: string): Promise<CertificateRecord | undefined>;
  /**
   * Certificates ordered by `issuedAt` descending, then serial; `subject` filters by exact
   * subject string; `search` by a case-insensitive substring of the subject, the serial or any
   * alt name (`%` and `_` are plain characters); `altNames` keeps those with any of these alt
   * names, compared whole and case-insensitively. Skips `offset` (default 0), then at most
   * `limit` (default 100).
   */
  listCertificates(query?: {
    readonly subject?: string;
    readonly search?: string;
    readonly altNames?: readonly string[];
    readonly limit?: number;
    readonly offset?: number;
    readonly revoked?: boolean;
  }): Promise<CertificateRecord[]>;
  /**
   * How many certificates fall in each of `buckets` consecutive intervals of `bucketMs`
   * starting at `from`, by `issuedAt` or by `notAfter` (an interval includes its start, not its
   * end); `revoked: false` counts only unrevoked ones. Always `buckets` numbers, zeros included.
   */
  countCertificatesByInterval(query: {
    readonly by: 'issuedAt' | 'notAfter';
    readonly from: Date;
    readonly bucketMs: number;
    readonly buckets: number;
    readonly revoked?: boolean;
  }): Promise<number[]>;
  /**
   * Marks a certificate revoked. Returns false when no such serial exists or it is already
   * revoked (the first revocation's time and reason are kept).
   */
  revokeCertificate(serial: string, reason: RevocationReason, at: Date): Promise<boolean>;
  /** Every revoked certificate that has not expired before `at`, for the CRL, by serial. */
  listRevoked(
    at: Date,
  ): Promise<
    { readonly serial: string; readonly revokedAt: Date; readonly reason: RevocationReason }[]
  >;
}

export interface ChallengeRecord {
  readonly id: string;
  /** SHA-256 of the challenge secret, lowercase hex. The secret itself is never stored. */
  readonly secretHash: string;
  readonly profile: string;
  /** When set, the request must carry exactly this subject (RFC 4514 string). */
  readonly subject: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
}

export interface ChallengeStore {
  /** Stores a new one-time challenge. A duplicate id or secretHash throws `ERR_STORE_DUPLICATE_ID`. */
  createChallenge(c: Omit<ChallengeRecord, 'usedAt'>): Promise<void>;
  /**
   * Consumes a challenge atomically: when one with this hash exists, is unused and
   * `expiresAt > now`, marks it used at `now` and returns it (with `usedAt` set). Otherwise
   * returns undefined and changes nothing. Under concurrency exactly one caller wins.
   */
  consumeChallenge(secretHash: string, now: Date): Promise<ChallengeRecord | undefined>;
  /**
   * The challenge with this hash when {@link consumeChallenge} would take it now (unused,
   * `expiresAt > now`), without taking it; otherwise undefined. Reading is not holding: a
   * caller that goes on to issue consumes it in the transaction that records what it issued.
   */
  findUsableChallenge(secretHash: string, now: Date): Promise<ChallengeRecord | undefined>;
  /** The challenge with this id, or undefined (for listings; never exposes the secret). */
  getChallenge(id: string): Promise<ChallengeRecord | undefined>;
  /** Deletes challenges that expired before `before`; returns how many. */
  purgeExpiredChallenges(before: Date): Promise<number>;
}

export type RequestStatus = 'pending' | 'approved' | 'rejected' | 'issued';

/** An enrollment request held for manual approval (SCEP PENDING), RFC 8894 §3.3.2. */
export interface RequestRecord {
  readonly id: string;
  /** SCEP transactionID: unique among requests. */
  readonly transactionId: string;
  readonly subject: string;
  readonly profile: string;
  /** The PKCS#10 request, DER. */
  readonly csr: Uint8Array;
  /** Certificate the request was signed with when it is a renewal (DER), else null. */
  readonly signerCertificate: Uint8Array | null;
  readonly status: RequestStatus;
  readonly createdAt: Date;
  readonly decidedAt: Date | null;
  readonly decidedBy: string | null;
  /** Serial of the issued certificate once `status` is `issued`. */
  readonly certificateSerial: string | null;
}

export interface RequestStore {
  /** Stores a pending request. A second one with the same transactionId throws `ERR_STORE_DUPLICATE_TRANSACTION`. */
  createRequest(
    r: Omit<RequestRecord, 'status' | 'decidedAt' | 'decidedBy' | 'certificateSerial'>,
  ): Promise<void>;
  getRequest(id: string): Promise<RequestRecord | undefined>;
  getRequestByTransaction(transactionId: string): Promise<RequestRecord | undefined>;
  /** Requests with this status (all when omitted), oldest first. */
  listRequests(status?: RequestStatus): Promise<RequestRecord[]>;
  /**
   * Moves a `pending` request to `approved` or `rejected`. Returns false (and changes nothing)
   * when the request does not exist or is no longer pending.
   */
  decideRequest(
    id: string,
    decision: 'approved' | 'rejected',
    by: string,
    at: Date,
  ): Promise<boolean>;
  /** Moves an `approved` request to `issued` with the certificate's serial; false otherwise. */
  markIssued(id: string, serial: string): Promise<boolean>;
}

export interface AuditEntry {
  readonly at: Date;
  /** Who acted: `scep:<transactionId>`, `admin:<name>`, `cli`, … */
  readonly actor: string;
  /** What happened: `certificate.issued`, `certificate.revoked`, `request.rejected`, … */
  readonly action: string;
  /** What it happened to: a serial, a request id, a subject. */
  readonly target: string;
  /** Extra facts as JSON-serialisable values. Never secrets. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface AuditLog {
  /** Appends an entry; entries are never changed or deleted. */
  appendAudit(e: AuditEntry): Promise<void>;
  /** Newest first: skips `offset` (default 0), then at most `limit` (default 100). */
  listAudit(query?: {
    readonly limit?: number;
    readonly offset?: number;
    readonly action?: string;
  }): Promise<(AuditEntry & { readonly id: number })[]>;
}

/** What an API token may do. One role for now; a new one is a new value here and in the schema. */
export type ApiTokenRole = 'admin';

/** A bearer token of the admin API. Only the SHA-256 of the token is stored, never the token. */
export interface ApiTokenRecord {
  readonly id: string;
  /**
   * Who holds it, unique among all tokens ever created (revoked and expired ones included), so
   * the audit actor `api:<name>` names one token for good.
   */
  readonly name: string;
  /** SHA-256 of the token, lowercase hex: unique across the store. */
  readonly secretHash: string;
  readonly role: ApiTokenRole;
  readonly createdAt: Date;
  /** The token is refused from this instant on; null: it never expires. */
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface ApiTokenStore {
  /**
   * Stores a new token, not revoked. A duplicate id or secretHash throws
   * `ERR_STORE_DUPLICATE_ID`, a duplicate name `ERR_STORE_DUPLICATE_NAME`; either changes nothing.
   */
  createApiToken(t: Omit<ApiTokenRecord, 'revokedAt'>): Promise<void>;
  /**
   * The token with this hash when it is usable at `now`: not revoked and `expiresAt` null or
   * `> now`. Otherwise undefined: unknown, expired and revoked are not told apart. The look-up is
   * by hash, so the time it takes says nothing about how close a guess came to a real token.
   */
  findApiToken(secretHash: string, now: Date): Promise<ApiTokenRecord | undefined>;
  /**
   * Revokes a token at `at`. Returns false (and changes nothing) when no token has this id or it
   * is already revoked (the first revocation time is kept). An expired token can be revoked.
   */
  revokeApiToken(id: string, at: Date): Promise<boolean>;
  /** Every token, revoked and expired ones included, by `createdAt` then id. */
  listApiTokens(): Promise<ApiTokenRecord[]>;
}

/**
 * A token a device enrolls with (MS-MDE2 on-premise: the WS-Security password of GetPolicies and
 * RequestSecurityToken). Only the SHA-256 of the token is stored.
 */
export interface EnrollmentTokenRecord {
  readonly id: string;
  /** SHA-256 of the token, lowercase hex: unique across the store. */
  readonly secretHash: string;
  /** The user (UPN) devices enrolled with it belong to; null: device enrollment, no user. */
  readonly user: string | null;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  /** How many more enrollments it allows. */
  readonly usesLeft: number;
}

export interface EnrollmentTokenStore {
  /** Stores a new token. A duplicate id or secretHash throws `ERR_STORE_DUPLICATE_ID`. */
  createEnrollmentToken(t: EnrollmentTokenRecord): Promise<void>;
  /**
   * Spends one use atomically: when a token with this hash has `usesLeft > 0` and
   * `expiresAt > now`, decrements `usesLeft` and returns the token as it is afterwards.
   * Otherwise returns undefined and changes nothing. Under concurrency a token with n uses
   * serves exactly n callers.
   */
  useEnrollmentToken(secretHash: string, now: Date): Promise<EnrollmentTokenRecord | undefined>;
  /**
   * The token with this hash when it could be spent at `now` (`usesLeft > 0`, `expiresAt > now`),
   * without spending it (MS-XCEP GetPolicies checks the credentials; only enrollment spends).
   */
  findEnrollmentToken(secretHash: string, now: Date): Promise<EnrollmentTokenRecord | undefined>;
  /** Every token, by `createdAt` then id. */
  listEnrollmentTokens(): Promise<EnrollmentTokenRecord[]>;
  /** Sets `usesLeft` to 0; false when no token has this id. */
  revokeEnrollmentToken(id: string): Promise<boolean>;
}

/** A Windows device enrolled in MDM (MS-MDE2). */
export interface DeviceRecord {
  /** The server's id for the device: the MDM client certificate's CN and the SyncML target. */
  readonly id: string;
  /** What the device calls itself (MS-MDE2 AdditionalContext DeviceID, ./DevInfo/DevId). */
  readonly hardwareId: string;
  readonly name: string;
  /** The enrolling user (UPN); null for a device enrollment. */
  readonly user: string | null;
  /** Serial of the current MDM client certificate (canonical hex). */
  readonly certificateSerial: string;
  readonly enrolledAt: Date;
  readonly lastSeenAt: Date | null;
  readonly unenrolledAt: Date | null;
  /** What the device reported about itself (DevInfo, DevDetail, enrollment context): text only. */
  readonly info: Readonly<Record<string, string>>;
  /**
   * OMA DM MD5 digest credentials (omadm/auth.ts): B64(MD5(user:password)) and the nonce the
   * device must digest next; null for a device that authenticates by its certificate only.
   */
  readonly auth: { readonly hash: string; readonly nonce: string } | null;
}

export interface DeviceStore {
  /** Stores a newly enrolled device. A duplicate id throws `ERR_STORE_DUPLICATE_ID`. */
  createDevice(d: Omit<DeviceRecord, 'lastSeenAt' | 'unenrolledAt'>): Promise<void>;
  getDevice(id: string): Promise<DeviceRecord | undefined>;
  /** The enrolled (not unenrolled) device with this hardware id, the latest enrolled first. */
  getDeviceByHardwareId(hardwareId: string): Promise<DeviceRecord | undefined>;
  /**
   * Replaces the device's digest nonce when it is still `expected` (compare and set: of two
   * messages digested with one nonce, only one moves it on). False otherwise.
   */
  rotateDeviceNonce(id: string, expected: string, next: string): Promise<boolean>;
  /** Devices by `enrolledAt` then id, at most `limit` (default 100). */
  listDevices(query?: {
    readonly limit?: number;
    /** Only devices of this user (UPN, compared lowercase). */
    readonly user?: string;
    /** Only devices still enrolled. */
    readonly enrolled?: boolean;
  }): Promise<DeviceRecord[]>;
  /**
   * Records a session: `lastSeenAt = at`, and `info` merged with these values (a key given
   * replaces the stored one). False when no device has this id.
   */
  touchDevice(id: string, at: Date, info?: Readonly<Record<string, string>>): Promise<boolean>;
  /**
   * Replaces the device's MDM certificate serial (WSTEP renewal) when it is still `expected`
   * (compare and set: of two renewals with one certificate, one wins). False otherwise.
   */
  replaceDeviceCertificate(id: string, expected: string, next: string): Promise<boolean>;
  /** Marks the device unenrolled at `at` (the first time is kept); false when unknown or already. */
  unenrollDevice(id: string, at: Date): Promise<boolean>;
}

/**
 * One OMA-DM command queued for a device. It stays open until the device's Status for it
 * arrives; an open command already sent is sent again in the device's next session (MS-MDM
 * sessions can end without an answer: the device lost power, the network dropped).
 */
export interface DeviceCommandRecord {
  /** Unique across the store; also the CmdID it is sent with (MS-MDM allows any string). */
  readonly id: string;
  readonly deviceId: string;
  /** The command, serialised by the server (the store does not read it). */
  readonly payload: string;
  /** What queued it (`profile:<id>`, `admin:<name>`, …); null when nothing in particular. */
  readonly origin: string | null;
  readonly createdAt: Date;
  /** When it was last sent, in which session (the device's SessionID), and how many times. */
  readonly sentAt: Date | null;
  readonly sentSession: string | null;
  readonly sentCount: number;
  /** The device's status code, once answered. */
  readonly status: number | null;
  /** What came back with the status (Results items, child statuses): serialised by the server. */
  readonly results: string | null;
  readonly completedAt: Date | null;
}

export interface DeviceCommandStore {
  /**
   * Queues commands for a device, in the given order (they are sent in queue order). A duplicate
   * id throws `ERR_STORE_DUPLICATE_ID` and queues none of them.
   */
  enqueueCommands(
    commands: readonly Pick<
      DeviceCommandRecord,
      'id' | 'deviceId' | 'payload' | 'origin' | 'createdAt'
    >[],
  ): Promise<void>;
  /** The device's open (not completed) commands in queue order, at most `limit` (default 100). */
  openCommands(deviceId: string, limit?: number): Promise<DeviceCommandRecord[]>;
  /**
   * Marks these of the device's open commands sent at `at` in `session` (sentCount + 1); ids of
   * other devices' or completed commands are ignored.
   */
  markCommandsSent(
    deviceId: string,
    ids: readonly string[],
    sent: { readonly at: Date; readonly session: string },
  ): Promise<void>;
  /**
   * Completes the device's open commands named in `outcomes`, each with its own status and
   * results, at `at`, in one statement; returns how many it completed. An id the device has no
   * open command with changes nothing: another device's command is never touched, and a
   * completed one keeps its first status.
   */
  completeCommands(
    deviceId: string,
    outcomes: readonly {
      readonly id: string;
      readonly status: number;
      readonly results: string | null;
    }[],
    at: Date,
  ): Promise<number>;
  /** The device's commands, newest first, at most `limit` (default 100). */
  listCommands(
    deviceId: string,
    query?: { readonly limit?: number },
  ): Promise<DeviceCommandRecord[]>;
}

export type MdmProfileKind = 'trusted' | 'scep' | 'pfx';

/** A certificate profile an administrator assigns to devices (what to deliver over MDM). */
export interface MdmProfileRecord {
  readonly id: string;
  /** Unique among profiles. */
  readonly name: string;
  readonly kind: MdmProfileKind;
  /** The kind's settings, serialised by the server (the store does not read them). */
  readonly settings: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Who a profile is assigned to: one device, every device of a user (UPN), or every device. */
export interface AssignmentRecord {
  readonly profileId: string;
  readonly targetKind: 'device' | 'user' | 'all';
  /** Device id, UPN (lowercase), or '' for all. */
  readonly target: string;
  readonly createdAt: Date;
}

export type DeliveryState =
  'queued' | 'installing' | 'installed' | 'failed' | 'removing' | 'removed';

/** Where one profile stands on one device. */
export interface DeliveryRecord {
  readonly deviceId: string;
  readonly profileId: string;
  readonly state: DeliveryState;
  /** What the server tracks for it (command ids, thumbprint, attempt), serialised by the server. */
  readonly detail: string;
  readonly updatedAt: Date;
}

export interface MdmProfileStore {
  /** A duplicate id throws `ERR_STORE_DUPLICATE_ID`, a duplicate name `ERR_STORE_DUPLICATE_NAME`. */
  createMdmProfile(p: MdmProfileRecord): Promise<void>;
  getMdmProfile(id: string): Promise<MdmProfileRecord | undefined>;
  getMdmProfileByName(name: string): Promise<MdmProfileRecord | undefined>;
  /** Every profile, by name. */
  listMdmProfiles(): Promise<MdmProfileRecord[]>;
  /** Replaces a profile's settings; false when no profile has this id. */
  updateMdmProfile(id: string, settings: string, at: Date): Promise<boolean>;
  /** Adds an assignment; false (and nothing changes) when it exists already. */
  assignMdmProfile(a: AssignmentRecord): Promise<boolean>;
  /** Removes an assignment; false when there was none. */
  unassignMdmProfile(a: Omit<AssignmentRecord, 'createdAt'>): Promise<boolean>;
  /** Assignments, of one profile or all, by profile then target kind then target. */
  listAssignments(profileId?: string): Promise<AssignmentRecord[]>;
  /**
   * The profiles assigned to this device: to it by id, to its user (UPN, compared lowercase)
   * when it has one, or to all devices. Each profile once, by name.
   */
  profilesForDevice(deviceId: string, user: string | null): Promise<MdmProfileRecord[]>;
  /** The device's deliveries, by profile id. */
  listDeliveries(deviceId: string): Promise<DeliveryRecord[]>;
  /** Inserts or replaces the delivery of (deviceId, profileId). */
  putDelivery(d: DeliveryRecord): Promise<void>;
}

/** A certificate a device reported having (inventory), at the management node that holds it. */
export interface InventoryRecord {
  readonly deviceId: string;
  /** The node, e.g. `./Device/Vendor/MSFT/RootCATrustedCertificates/Root/<SHA1>`. */
  readonly uri: string;
  /** SHA-1, upper-case hex. */
  readonly thumbprint: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: Date;
  readonly der: Uint8Array;
  readonly seenAt: Date;
}

export interface InventoryStore {
  /**
   * Replaces what the device has below `prefix` (one listed store) with `entries`, in one
   * statement group: rows under the prefix that are not in `entries` are gone afterwards.
   */
  replaceInventory(
    deviceId: string,
    prefix: string,
    entries: readonly Omit<InventoryRecord, 'deviceId'>[],
  ): Promise<void>;
  /** The device's inventory, by uri. */
  listInventory(deviceId: string): Promise<InventoryRecord[]>;
}

/** A server-generated key kept for recovery: its PFX, and the PFX password encrypted to the CA. */
export interface EscrowRecord {
  /** Serial of the certificate the key belongs to (canonical hex). */
  readonly serial: string;
  readonly pfx: Uint8Array;
  /** CMS EnvelopedData of the PFX password, to the CA's encryption certificate. */
  readonly passwordEnvelope: Uint8Array;
  readonly createdAt: Date;
}

export interface KeyEscrowStore {
  /** Keeps an escrowed key. A second one for the same serial throws `ERR_STORE_DUPLICATE_SERIAL`. */
  escrowKey(e: EscrowRecord): Promise<void>;
  getEscrow(serial: string): Promise<EscrowRecord | undefined>;
}

/** Everything a backend provides, plus its lifecycle. */
/**
 * Failed challenge attempts per client (issue 3: failures rate-limited), kept in the store so
 * the limit holds across worker processes and servers sharing PostgreSQL.
 */
export interface FailureStore {
  /** Records one failure of `key` (a client address) at `at`. */
  recordFailure(key: string, at: Date): Promise<void>;
  /** How many failures `key` has at or after `since`; 0 when none. */
  countFailures(key: string, since: Date): Promise<number>;
  /**
   * Deletes failures before `before`, of keys starting with `keyPrefix` when given (each limiter
   * purges only its own keys: their windows differ); returns how many.
   */
  purgeFailures(before: Date, keyPrefix?: string): Promise<number>;
}

/** What a portal user may do: `user` sees their own certificates, `admin` the console too. */
export type UserRole = 'admin' | 'user';

/** Someone who signs in to the web portal. */
export interface UserRecord {
  readonly id: string;
  /** The sign-in name (a UPN, `ann@contoso.com`, or a plain name), lowercase: unique. */
  readonly username: string;
  readonly email: string | null;
  readonly displayName: string;
  /**
   * The password as an encoded scrypt hash with its salt and parameters (server/portal/
   * password.ts). The store neither reads nor compares it.
   */
  readonly passwordHash: string;
  readonly role: UserRole;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  /** Disabled users cannot sign in; null: enabled. */
  readonly disabledAt: Date | null;
}

export interface UserStore {
  /**
   * Stores a new, enabled user. A duplicate id throws `ERR_STORE_DUPLICATE_ID`, a duplicate
   * username `ERR_STORE_DUPLICATE_NAME`; either changes nothing.
   */
  createUser(u: Omit<UserRecord, 'disabledAt'>): Promise<void>;
  getUser(id: string): Promise<UserRecord | undefined>;
  /** The user with exactly this username (callers lowercase it), or undefined. */
  getUserByName(username: string): Promise<UserRecord | undefined>;
  /** Every user, by username. */
  listUsers(): Promise<UserRecord[]>;
  /**
   * Changes the given fields and sets `updatedAt = at`. False (and nothing changes) when no
   * user has this id.
   */
  updateUser(
    id: string,
    changes: Partial<
      Pick<UserRecord, 'passwordHash' | 'role' | 'displayName' | 'email' | 'disabledAt'>
    >,
    at: Date,
  ): Promise<boolean>;
}

/**
 * A signed-in browser. Only the SHA-256 of the session token (the cookie) is stored. A session
 * ends at `expiresAt` (absolute timeout) or at `idleExpiresAt` (idle timeout), whichever comes
 * first; each use moves `idleExpiresAt` on.
 */
export interface WebSessionRecord {
  /** SHA-256 of the session token, lowercase hex: unique. */
  readonly tokenHash: string;
  readonly userId: string;
  /** The synchronizer token every form of this session carries (CSRF). */
  readonly csrfToken: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly idleExpiresAt: Date;
  readonly expiresAt: Date;
}

export interface WebSessionStore {
  /** Stores a new session. A duplicate tokenHash throws `ERR_STORE_DUPLICATE_ID`. */
  createWebSession(s: WebSessionRecord): Promise<void>;
  /**
   * The session with this hash when it is usable at `now` (`idleExpiresAt > now` and
   * `expiresAt > now`); otherwise undefined: unknown and expired are not told apart.
   */
  findWebSession(tokenHash: string, now: Date): Promise<WebSessionRecord | undefined>;
  /**
   * Records a use at `at`: `lastSeenAt = at`, `idleExpiresAt` = the smaller of `idleExpiresAt`
   * and the session's `expiresAt`. False when the session is unknown or no longer usable at `at`.
   */
  touchWebSession(tokenHash: string, at: Date, idleExpiresAt: Date): Promise<boolean>;
  /** Ends one session (sign-out); false when there was none. */
  deleteWebSession(tokenHash: string): Promise<boolean>;
  /** Ends every session of a user (password changed, user disabled); returns how many. */
  deleteUserWebSessions(userId: string): Promise<number>;
  /** Deletes sessions no longer usable at `before`; returns how many. */
  purgeWebSessions(before: Date): Promise<number>;
}

/** What a one-time download link delivers: `pfx`, the escrowed identity of serial `target`. */
export type DownloadKind = 'pfx';

/** A one-time, expiring download link. Only the SHA-256 of its token is stored. */
export interface DownloadLinkRecord {
  /** SHA-256 of the token, lowercase hex: unique. */
  readonly tokenHash: string;
  /** Only this user may use it. */
  readonly userId: string;
  readonly kind: DownloadKind;
  /** What it delivers (for `pfx`: the certificate's serial, canonical hex). */
  readonly target: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
}

export interface DownloadLinkStore {
  /** Stores a new, unused link. A duplicate tokenHash throws `ERR_STORE_DUPLICATE_ID`. */
  createDownloadLink(l: Omit<DownloadLinkRecord, 'usedAt'>): Promise<void>;
  /**
   * Uses a link atomically: when the link with this hash belongs to `userId`, is unused and
   * `expiresAt > now`, marks it used at `now` and returns it (with `usedAt` set). Otherwise
   * returns undefined and changes nothing. Under concurrency exactly one caller wins.
   */
  consumeDownloadLink(
    tokenHash: string,
    userId: string,
    now: Date,
  ): Promise<DownloadLinkRecord | undefined>;
  /** The link with this hash, used or not (to tell "already used" from "expired"). */
  getDownloadLink(tokenHash: string): Promise<DownloadLinkRecord | undefined>;
  /** Deletes links that expired before `before`; returns how many. */
  purgeDownloadLinks(before: Date): Promise<number>;
}

export interface StoreStatus {
  readonly time: Date;
  readonly schemaVersion: number;
  readonly latestSchemaVersion: number;
}

export interface Store
  extends
    CertificateStore,
    ChallengeStore,
    RequestStore,
    AuditLog,
    ApiTokenStore,
    FailureStore,
    EnrollmentTokenStore,
    DeviceStore,
    DeviceCommandStore,
    MdmProfileStore,
    InventoryStore,
    KeyEscrowStore,
    UserStore,
    WebSessionStore,
    DownloadLinkStore {
  /** Which backend this is (for logs and `certpost doctor`). */
  readonly backend: 'sqlite' | 'postgres';
  /**
   * One round trip to the database (readiness, `certpost doctor`): its clock (PostgreSQL's
   * `now()`; SQLite's is this machine's) and the schema version applied, next to the newest this
   * build knows.
   */
  status(): Promise<StoreStatus>;
  /**
   * Runs `f` in one transaction: all of its writes land or none does. Calls on `tx` run inside
   * it, and so do calls on this store made from `f`'s async context (code `f` calls may hold
   * the store itself): they see the transaction's writes and land or roll back with it. A
   * transaction begun inside another is a savepoint: when its `f` throws, its writes alone are
   * undone and the outer one goes on. Calls made after `f` settled (work it left running) use
   * the store as usual.
   *
   * Hold a transaction only across store calls and synchronous work: it keeps a connection
   * (SQLite: the process's only one, and the file's write lock) until it ends.
   */
  transaction<T>(f: (tx: Omit<Store, 'transaction' | 'close'>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
