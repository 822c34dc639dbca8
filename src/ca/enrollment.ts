/**
 * The enrollment service: what the CA decides about a certificate request, independent of the
 * protocol that carried it (SCEP today; MS-WSTEP and the portal later).
 *
 * Contract, in order (RFC 8894 §3.3 and scep-reference.md §4 "Renewal", "CertPoll"):
 * 1. A request whose transactionId is already held (PENDING) is answered from that hold,
 *    before any challenge is looked at: a client that polls, or that re-sends its PKCSReq as
 *    micromdm's scepclient does, must not burn a second one-time challenge.
 * 2. A request signed by a certificate we issued, still valid and not revoked, is a renewal
 *    whatever its messageType; its profile is the old certificate's, the challenge is needed
 *    only when that profile says so, and the subject must stay the same.
 * 3. Otherwise the challengePassword decides the profile: the static challenge (compared as
 *    SHA-256 digests in constant time) gives the default profile; a one-time challenge is
 *    consumed atomically in the store and gives its own profile (and subject, if bound).
 * 4. The profile's policy checks the CSR; a profile that requires approval holds the request.
 * 5. Issuance draws a random serial; the store's unique constraint is the arbiter, and a
 *    collision draws again. The certificate is recorded before it is returned, so every
 *    certificate a client receives is in the database exactly once.
 * Every decision is audited; secrets never reach the audit log.
 */
import { createHash, timingSafeEqual, randomUUID } from 'node:crypto';
import type { PrivateKeyRef } from '../pki/key-ref.ts';
import type { CertificationRequest } from '../pki/csr.ts';
import { parseCsr } from '../pki/csr.ts';
import {
  formatName,
  parseCertificate,
  sha1Thumbprint,
  subjectAltNames,
  type Certificate,
} from '../pki/x509.ts';
import type {
  AuditLog,
  CertificateStore,
  ChallengeStore,
  NewCertificate,
  RequestRecord,
  RequestStore,
  RevocationReason,
  Store,
} from '../store/types.ts';
import { canonicalSerial } from '../store/types.ts';
import { buildCrl } from './crl.ts';
import { issue, issueAccepted, randomSerial, type AcceptedRequest } from './issuer.ts';
import { evaluateRequest, type IssuanceProfile, type PolicyFailure } from './profile.ts';
import { FailureLimiter, type Limiter } from './rate-limit.ts';

/** Why a request was refused. SCEP maps each code to a failInfo in one table (scep/service.ts). */
export const REFUSALS = {
  'challenge-missing': 'the request carries no challenge password',
  'challenge-invalid': 'the challenge password is wrong, expired or already used',
  'subject-mismatch': 'the request subject differs from the subject the challenge was issued for',
  'renewal-not-allowed': 'the profile of the certificate being renewed does not allow renewal',
  'renewal-subject-mismatch': 'a renewal must keep the subject of the certificate it renews',
  'renewal-signer-unknown':
    'a renewal request must be signed by a valid certificate this CA issued',
  'unknown-profile': 'the challenge names a profile this server does not have',
  rejected: 'an administrator rejected the request',
  'unknown-transaction': 'no request is held for this transaction',
  'unknown-certificate': 'no certificate of this CA has that serial number',
  'rate-limited': 'too many failed challenges from this client; try again later',
} as const;
export type RefusalCode = keyof typeof REFUSALS | PolicyFailure;

export type EnrollmentOutcome =
  | { readonly status: 'issued'; readonly certificate: Certificate; readonly renewal: boolean }
  | { readonly status: 'pending'; readonly requestId: string }
  | { readonly status: 'refused'; readonly reason: RefusalCode; readonly message: string };

export interface EnrollmentInput {
  readonly transactionId: string;
  readonly csr: CertificationRequest;
  /** The certificate that signed the protocol message (self-signed for a first enrollment). */
  readonly signer: Certificate;
  /** True for SCEP RenewalReq (17): the signer must then be a certificate we issued. */
  readonly renewalRequested: boolean;
  /** The client's network address, for rate limiting failed challenges. */
  readonly peer?: string | undefined;
}

export type EnrollmentStore = CertificateStore &
  ChallengeStore &
  RequestStore &
  AuditLog &
  Pick<Store, 'transaction'>;

export interface EnrollmentConfig {
  readonly issuing: { readonly certificate: Certificate; readonly key: PrivateKeyRef };
  readonly profiles: ReadonlyMap<string, IssuanceProfile>;
  /** Profile used with the static challenge. */
  readonly defaultProfile: string;
  /** The endpoint's static challenge, if any (compared in constant time). */
  readonly staticChallenge?: string | undefined;
  readonly store: EnrollmentStore;
  readonly now?: () => Date;
  /** Revoke the certificate a renewal replaces (reason superseded) once the new one is issued. */
  readonly revokeSupersededOnRenewal?: boolean;
  /** How long a CRL is valid (default 7 days). */
  readonly crlValidityMs?: number;
  /** Limits failed challenges per client address (default: 10 per minute). */
  readonly limiter?: Limiter;
}

/** Refusals that count as a failed guess at a challenge. */
const CHALLENGE_FAILURES: ReadonlySet<RefusalCode> = new Set([
  'challenge-missing',
  'challenge-invalid',
  'subject-mismatch',
]);

/** SHA-256 of a secret's UTF-8 bytes. */
const digestOf = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();

/**
 * Hash under which stored secrets (one-time challenges, admin API tokens) are kept and looked
 * up: hex SHA-256. Comparing digests in constant time (timingSafeEqual) leaks nothing, not even
 * the secret's length.
 */
export function secretHash(secret: string): string {
  return digestOf(secret).toString('hex');
}

/**
 * A certificate's subject alternative names as the store indexes them (`type:value`), a line
 * break (the index's separator) shown as U+FFFD.
 */
export function altNamesOf(cert: Certificate): string[] {
  return subjectAltNames(cert).map((n) => `${n.type}:${n.value}`.replace(/[\r\n]/g, '\ufffd'));
}

/** How long a signed CRL is served again while the revocation list has not changed. */
const CRL_REUSE_MS = 60_000;

/**
 * Thrown inside the certificate's transaction when a concurrent copy of the request used the
 * challenge first, to roll it back; caught by the enrollment, never seen outside. Made once:
 * an Error made per enrollment would capture a stack trace on every issuance.
 */
const CHALLENGE_TAKEN = new Error('the challenge was used meanwhile');

const refuse = (reason: RefusalCode, message?: string): EnrollmentOutcome => ({
  status: 'refused',
  reason,
  message: message ?? (REFUSALS as Record<string, string>)[reason] ?? reason,
});

export interface EnrollmentService {
  enroll(input: EnrollmentInput): Promise<EnrollmentOutcome>;
  /** CertPoll: the state of a held request. */
  poll(transactionId: string): Promise<EnrollmentOutcome>;
  /** GetCert: a certificate of this CA by serial (lowercase hex). */
  findCertificate(serial: string): Promise<Certificate | undefined>;
  /** A DER CRL of this CA, signed now. */
  currentCrl(): Promise<Uint8Array>;
  /** Approves or rejects a held request (admin API, CLI). False when it is not pending. */
  decide(requestId: string, decision: 'approved' | 'rejected', by: string): Promise<boolean>;
  /** Revokes a certificate (RFC 5280 §5.3.1 reason). False when unknown or already revoked. */
  revoke(serial: string, reason: RevocationReason, by: string): Promise<boolean>;
  /**
   * Issues at once under `profile` for a caller that has authenticated the requester itself
   * (MDM enrollment by token): no challenge, no approval hold. The CSR is still checked against
   * the profile (signature, key, names); a refusal is returned, audited, and stores nothing.
   * `alongside` runs, with the certificate's serial (hex), in the transaction that records the
   * certificate and its audit record (the caller's writes through its store join it): all of it
   * lands, or none of it and the error is thrown, the certificate never having left the CA.
   */
  issueAuthenticated(
    csr: CertificationRequest,
    profile: IssuanceProfile,
    actor: string,
    alongside?: (serial: string) => Promise<void>,
  ): Promise<Extract<EnrollmentOutcome, { status: 'issued' | 'refused' }>>;
}

export function createEnrollmentService(config: EnrollmentConfig): EnrollmentService {
  const { store } = config;
  const now = config.now ?? (() => new Date());
  const limiter = config.limiter ?? new FailureLimiter();
  const staticDigest =
    config.staticChallenge !== undefined ? digestOf(config.staticChallenge) : undefined;
  /** The last signed CRL, for the revocation list it was signed over (see currentCrl). */
  let signedCrl: { list: string; until: number; der: Promise<Uint8Array> } | undefined;

  /**
   * Issues a certificate and hands its record to `save` (an insert, or an insert inside a
   * transaction). Signing happens before `save`, so no transaction is held while a key signs.
   * A serial collision (2^-127 per pair, or a broken RNG) draws again; anything else fails.
   * `accepted` is evaluateRequest(csr, profile) when the caller has just run it.
   */
  async function issueAndSave(
    csr: CertificationRequest,
    profile: IssuanceProfile,
    requestId: string | null,
    save: (record: NewCertificate) => Promise<void>,
    accepted?: AcceptedRequest,
  ): Promise<Certificate> {
    for (let attempt = 0; ; attempt++) {
      const at = now();
      const serial = randomSerial();
      const ca = { issuing: config.issuing };
      const cert = accepted
        ? await issueAccepted(accepted, { csr, profile, now: at }, ca, serial)
        : await issue({ csr, profile, now: at }, ca, serial);
      try {
        await save({
          serial: Buffer.from(cert.serial).toString('hex'),
          sha1: sha1Thumbprint(cert),
          subject: formatName(cert.subject),
          notBefore: cert.notBefore,
          notAfter: cert.notAfter,
          der: cert.der,
          profile: profile.name,
          requestId,
          issuedAt: at,
          altNames: altNamesOf(cert),
        });
        return cert;
      } catch (e) {
        if ((e as { code?: string }).code !== 'ERR_STORE_DUPLICATE_SERIAL' || attempt >= 3) throw e;
      }
    }
  }

  /**
   * Saves an issued certificate and its audit record (`action` by `actor`, the certificate's
   * subject and `details`) in one transaction, one commit: never a certificate without the
   * record of who asked for it. `alongside` adds its writes to that transaction, given the
   * certificate's serial (hex).
   */
  function recordIssued(
    actor: string,
    action: string,
    details: Record<string, unknown>,
    alongside?: (serial: string) => Promise<void>,
  ): (record: NewCertificate) => Promise<void> {
    return (record) =>
      store.transaction(async (tx) => {
        await tx.insertCertificate(record);
        await tx.appendAudit({
          at: now(),
          actor,
          action,
          target: record.serial,
          details: { subject: record.subject, ...details },
        });
        await alongside?.(record.serial);
      });
  }

  async function audit(
    actor: string,
    action: string,
    target: string,
    details: Record<string, unknown> = {},
  ): Promise<void> {
    await store.appendAudit({ at: now(), actor, action, target, details });
  }

  /** Answers from a held request: still pending, rejected, or issue it now that it is approved. */
  async function fromHold(r: RequestRecord): Promise<EnrollmentOutcome> {
    switch (r.status) {
      case 'pending':
        return { status: 'pending', requestId: r.id };
      case 'rejected':
        return refuse('rejected');
      case 'issued': {
        const rec = r.certificateSerial
          ? await store.getCertificate(r.certificateSerial)
          : undefined;
        if (!rec) return refuse('unknown-certificate');
        return { status: 'issued', certificate: parseCertificate(rec.der), renewal: false };
      }
      case 'approved': {
        const profile = config.profiles.get(r.profile);
        if (!profile) return refuse('unknown-profile');
        // The profile may have changed since the request was held: an approved request is
        // issued under the policy of now, and refused (FAILURE, not an error) when it fails it.
        const csr = parseCsr(r.csr);
        const verdict = evaluateRequest(csr, profile);
        if (!verdict.ok)
          return refused(`scep:${r.transactionId}`, r.subject, verdict.reason, verdict.message);
        // The certificate, its audit record and the approved→issued move land in one short
        // transaction, so two concurrent polls cannot both issue (the loser's markIssued fails
        // and rolls back).
        const save = recordIssued(
          `scep:${r.transactionId}`,
          'certificate.issued',
          { profile: profile.name, requestId: r.id },
          async (serial) => {
            if (!(await store.markIssued(r.id, serial))) throw new Error('request already issued');
          },
        );
        const cert = await issueAndSave(csr, profile, r.id, save, verdict).catch(
          async (e: unknown) => {
            const again = await store.getRequest(r.id);
            if (again?.status === 'issued') return undefined;
            throw e;
          },
        );
        if (!cert) return fromHold((await store.getRequest(r.id))!);
        return { status: 'issued', certificate: cert, renewal: false };
      }
    }
  }

  /** The record of a still-valid, unrevoked certificate we issued that equals `signer`, if any. */
  async function ownValidCertificate(signer: Certificate) {
    const rec = await store.getCertificateBySha1(sha1Thumbprint(signer));
    const at = now();
    if (!rec || rec.revokedAt !== null || rec.notAfter <= at || rec.notBefore > at)
      return undefined;
    return rec;
  }

  async function enroll(input: EnrollmentInput): Promise<EnrollmentOutcome> {
    const actor = `scep:${input.transactionId}`;
    const subject = formatName(input.csr.subject);
    const held = await store.getRequestByTransaction(input.transactionId);
    if (held) return fromHold(held);
    if (input.peer !== undefined && (await limiter.blocked(input.peer)))
      return refused(actor, subject, 'rate-limited');
    const outcome = await decideNew(input, actor, subject);
    if (
      outcome.status === 'refused' &&
      input.peer !== undefined &&
      CHALLENGE_FAILURES.has(outcome.reason)
    )
      await limiter.fail(input.peer);
    return outcome;
  }

  async function decideNew(
    input: EnrollmentInput,
    actor: string,
    subject: string,
  ): Promise<EnrollmentOutcome> {
    const old = await ownValidCertificate(input.signer);
    if (input.renewalRequested && !old) return refused(actor, subject, 'renewal-signer-unknown');
    let profile: IssuanceProfile | undefined;
    /** The one-time challenge the request carries (its hash), used up with what it gets. */
    let challengeHash: string | undefined;
    if (old) {
      profile = config.profiles.get(old.profile);
      if (!profile) return refused(actor, subject, 'unknown-profile');
      if (!profile.allowRenewal) return refused(actor, subject, 'renewal-not-allowed');
      if (old.subject !== subject) return refused(actor, subject, 'renewal-subject-mismatch');
      if (profile.renewalRequiresChallenge) {
        const viaChallenge = await profileFromChallenge(input.csr, subject);
        if ('status' in viaChallenge) return refused(actor, subject, viaChallenge.reason);
        challengeHash = viaChallenge.secretHash;
      }
    } else {
      const viaChallenge = await profileFromChallenge(input.csr, subject);
      if ('status' in viaChallenge) return refused(actor, subject, viaChallenge.reason);
      profile = viaChallenge.profile;
      challengeHash = viaChallenge.secretHash;
    }
    /** Uses the challenge up; false when another request took it since it was found. */
    const useChallenge = async () =>
      challengeHash === undefined ||
      (await store.consumeChallenge(challengeHash, now())) !== undefined;

    const verdict = evaluateRequest(input.csr, profile);
    if (!verdict.ok) {
      await useChallenge();
      return refused(actor, subject, verdict.reason, verdict.message);
    }

    if (profile.requireApproval && !old) {
      // A held request has used its challenge: approval issues without one.
      if (!(await useChallenge())) return refused(actor, subject, 'challenge-invalid');
      const id = randomUUID();
      try {
        await store.createRequest({
          id,
          transactionId: input.transactionId,
          subject,
          profile: profile.name,
          csr: input.csr.der,
          signerCertificate: null,
          createdAt: now(),
        });
      } catch (e) {
        // The same transaction arrived twice at once and the other copy was held first: this
        // one is answered from that hold, as a re-sent request is (RFC 8894 §3.3.1).
        if ((e as { code?: string }).code !== 'ERR_STORE_DUPLICATE_TRANSACTION') throw e;
        const held = await store.getRequestByTransaction(input.transactionId);
        if (!held) throw e;
        return fromHold(held);
      }
      await audit(actor, 'request.held', id, { subject, profile: profile.name });
      return { status: 'pending', requestId: id };
    }

    // The challenge is used up in the transaction that records the certificate: taken by a
    // concurrent copy of the request meanwhile, nothing is recorded and the signed certificate
    // never leaves the CA. One commit for both.
    const cert = await issueAndSave(
      input.csr,
      profile,
      null,
      recordIssued(
        actor,
        old ? 'certificate.renewed' : 'certificate.issued',
        { profile: profile.name, ...(old ? { replaces: old.serial } : {}) },
        async () => {
          if (!(await useChallenge())) throw CHALLENGE_TAKEN;
        },
      ),
      verdict,
    ).catch((e: unknown) => {
      if (e === CHALLENGE_TAKEN) return undefined;
      throw e;
    });
    if (!cert) return refused(actor, subject, 'challenge-invalid');
    const serial = Buffer.from(cert.serial).toString('hex');
    if (old && config.revokeSupersededOnRenewal) {
      await store.revokeCertificate(old.serial, 4, now());
      await audit(actor, 'certificate.revoked', old.serial, { reason: 'superseded', by: serial });
    }
    return { status: 'issued', certificate: cert, renewal: Boolean(old) };
  }

  async function refused(
    actor: string,
    subject: string,
    reason: RefusalCode,
    message?: string,
  ): Promise<EnrollmentOutcome> {
    await audit(actor, 'request.refused', subject, { reason });
    return refuse(reason, message);
  }

  /**
   * Resolves the profile from the CSR's challengePassword: the static challenge, or a one-time
   * challenge that is usable now and bound to this subject (when bound), whose hash is returned
   * for the caller to use it up with what it issues or holds. A challenge refused here (another
   * subject, a profile gone) is used up at once.
   */
  async function profileFromChallenge(
    csr: CertificationRequest,
    subject: string,
  ): Promise<
    { profile: IssuanceProfile; secretHash?: string } | { status: 'refused'; reason: RefusalCode }
  > {
    const secret = csr.challengePassword;
    if (secret === undefined || secret === '')
      return { status: 'refused', reason: 'challenge-missing' };
    const digest = digestOf(secret); // once: for the static comparison and the look-up
    if (staticDigest !== undefined && timingSafeEqual(digest, staticDigest)) {
      const p = config.profiles.get(config.defaultProfile);
      return p ? { profile: p } : { status: 'refused', reason: 'unknown-profile' };
    }
    const hash = digest.toString('hex');
    const rec = await store.findUsableChallenge(hash, now());
    if (!rec) return { status: 'refused', reason: 'challenge-invalid' };
    // A challenge presented and refused is used up all the same (as by a request it served).
    const refuseUsing = async (reason: RefusalCode) => {
      await store.consumeChallenge(hash, now());
      return { status: 'refused' as const, reason };
    };
    if (rec.subject !== null && rec.subject !== subject) return refuseUsing('subject-mismatch');
    const p = config.profiles.get(rec.profile);
    return p ? { profile: p, secretHash: hash } : refuseUsing('unknown-profile');
  }

  return {
    enroll,
    async poll(transactionId) {
      const held = await store.getRequestByTransaction(transactionId);
      return held ? fromHold(held) : refuse('unknown-transaction');
    },
    async findCertificate(serial) {
      const rec = await store.getCertificate(canonicalSerial(serial));
      return rec ? parseCertificate(rec.der) : undefined;
    },
    async currentCrl() {
      const at = now();
      const revoked = await store.listRevoked(at);
      // The list is read every time (another process may have revoked); the signature is
      // reused while the list is unchanged, for a minute, so anonymous GET /crl and GetCRL
      // cannot make the CA key sign at will.
      const list = revoked.map((r) => `${r.serial}:${r.reason}`).join(',');
      if (signedCrl && signedCrl.list === list && at.getTime() < signedCrl.until)
        return signedCrl.der;
      const der = buildCrl({
        issuer: config.issuing,
        thisUpdate: at,
        nextUpdate: new Date(at.getTime() + (config.crlValidityMs ?? 7 * 86_400_000)),
        crlNumber: BigInt(at.getTime()),
        revoked: revoked.map((r) => ({
          serial: r.serial,
          revokedAt: r.revokedAt,
          reason: r.reason,
        })),
      });
      signedCrl = { list, until: at.getTime() + CRL_REUSE_MS, der };
      der.catch(() => {
        if (signedCrl?.der === der) signedCrl = undefined;
      });
      return der;
    },
    async decide(requestId, decision, by) {
      const ok = await store.decideRequest(requestId, decision, by, now());
      if (ok) await audit(by, `request.${decision}`, requestId);
      return ok;
    },
    async revoke(serial, reason, by) {
      const s = canonicalSerial(serial);
      const ok = await store.revokeCertificate(s, reason, now());
      if (ok) await audit(by, 'certificate.revoked', s, { reason });
      return ok;
    },
    async issueAuthenticated(csr, profile, actor, alongside) {
      const subject = formatName(csr.subject);
      const verdict = evaluateRequest(csr, profile);
      if (!verdict.ok)
        return (await refused(actor, subject, verdict.reason, verdict.message)) as Extract<
          EnrollmentOutcome,
          { status: 'refused' }
        >;
      const cert = await issueAndSave(
        csr,
        profile,
        null,
        recordIssued(actor, 'certificate.issued', { profile: profile.name }, alongside),
        verdict,
      );
      return { status: 'issued', certificate: cert, renewal: false };
    },
  };
}
