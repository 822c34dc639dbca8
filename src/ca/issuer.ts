/**
 * The issuance core: a checked CSR and a profile in, a signed certificate out.
 *
 * Contract: {@link issue} never touches storage and never retries. The caller allocates the
 * serial ({@link randomSerial}), stores the certificate under a UNIQUE serial constraint and,
 * on a duplicate (probability ~2⁻¹²⁷ per pair, or a replayed serial), decides itself whether to
 * issue again with a new serial. This keeps "0 duplicate serials under concurrency"
 * (design.md §5) a property of the store, checked in one place.
 *
 * Policy (challenge, approval, renewal, audit) lives around it, in enrollment.ts.
 */
import { randomBytes } from 'node:crypto';
import type { PrivateKeyRef } from '../pki/key-ref.ts';
import { PkiError } from '../pki/errors.ts';
import type { CertificationRequest } from '../pki/csr.ts';
import { parseCertificate, subjectKeyIdentifier, type Certificate } from '../pki/x509.ts';
import {
  authorityKeyIdentifier,
  authorityKeyIdentifierFromId,
  buildCertificate,
  type ExtensionInput,
} from './certificate.ts';
import type { Digest } from '../pki/sign.ts';
import {
  evaluateRequest,
  PolicyError,
  validityFor,
  type IssuanceProfile,
  type PolicyResult,
} from './profile.ts';

export interface IssueRequest {
  readonly csr: CertificationRequest;
  readonly profile: IssuanceProfile;
  readonly now: Date;
  /** Validity asked for by the client (days); the profile's value caps it. */
  readonly requestedDays?: number;
}

/** The issuing CA: its certificate and private key. */
export interface IssuingCa {
  readonly issuing: { readonly certificate: Certificate; readonly key: PrivateKeyRef };
}

/**
 * Issues a certificate for `request.csr` under `request.profile`, signed by `ca.issuing`.
 *
 * Extensions, in order: keyUsage (critical), extKeyUsage, subjectAltName (copied SANs allowed
 * by the profile, then forced ones), subjectKeyIdentifier, crlDistributionPoints (when the
 * profile has `crlUrl`), authorityKeyIdentifier (the issuing CA's SKI, or the hash of its key
 * when it has none). notAfter is capped at the issuing CA's notAfter (a certificate outliving
 * its issuer fails validation on many clients).
 *
 * Throws {@link PolicyError} with a {@link PolicyFailure} code when the request is refused,
 * `PkiError` for a bad serial or an unusable CA key.
 */
export async function issue(
  request: IssueRequest,
  ca: IssuingCa,
  serial: Uint8Array,
  options: { readonly digest?: Digest } = {},
): Promise<Certificate> {
  const decision = evaluateRequest(request.csr, request.profile);
  if (!decision.ok) throw new PolicyError(decision.reason, decision.message);
  return issueAccepted(decision, request, ca, serial, options);
}

/** A request {@link evaluateRequest} accepted: what to put in the certificate. */
export type AcceptedRequest = Extract<PolicyResult, { readonly ok: true }>;

/**
 * {@link issue} for a caller that has just run `evaluateRequest(request.csr, request.profile)`
 * itself and got `decision` (the enrollment service does, to refuse before drawing a serial):
 * the CSR signature is not verified a second time. `decision` must be that evaluation.
 */
export async function issueAccepted(
  decision: AcceptedRequest,
  request: IssueRequest,
  ca: IssuingCa,
  serial: Uint8Array,
  options: { readonly digest?: Digest } = {},
): Promise<Certificate> {
  const { certificate: caCert, key } = ca.issuing;
  const validity = validityFor(request.profile, request.now, request.requestedDays);
  const notAfter = validity.notAfter > caCert.notAfter ? caCert.notAfter : validity.notAfter;
  const der = await buildCertificate({
    subject: decision.subject,
    spki: decision.spki,
    serial,
    notBefore: validity.notBefore,
    notAfter,
    issuer: { name: caCert.subject.der, key, spki: caCert.spki },
    extensions: [...decision.extensions, authorityKeyIdentifierOf(caCert)],
    ...(options.digest ? { digest: options.digest } : {}),
  });
  return parseCertificate(der);
}

/** authorityKeyIdentifier extensions by issuing CA certificate (computed once per CA). */
const akiCache = new WeakMap<Certificate, ExtensionInput>();

/** The issuing CA's SKI, or the hash of its key when it has none, as an AKI extension. */
function authorityKeyIdentifierOf(caCert: Certificate): ExtensionInput {
  let aki = akiCache.get(caCert);
  if (!aki) {
    const caSki = subjectKeyIdentifier(caCert);
    aki = caSki
      ? authorityKeyIdentifierFromId(Uint8Array.from(Buffer.from(caSki, 'hex')))
      : authorityKeyIdentifier(caCert.spki);
    akiCache.set(caCert, aki);
  }
  return aki;
}

/**
 * A fresh serial number: 16 random octets with the top bit cleared, so the DER INTEGER is
 * positive and at most 16 octets, carrying 127 bits of entropy (RFC 5280 §4.1.2.2: positive,
 * ≤ 20 octets; CA/B Forum BR §7.1: ≥ 64 bits from a CSPRNG). Never zero.
 */
export function randomSerial(): Uint8Array {
  for (;;) {
    const b = new Uint8Array(randomBytes(16));
    b[0]! &= 0x7f;
    if (b.some((x) => x !== 0)) return b;
  }
}

/** Serial magnitude → lowercase hex as stored and shown (no sign octet, even length). */
export function serialHex(serial: Uint8Array): string {
  let i = 0;
  while (i < serial.length - 1 && serial[i] === 0) i++;
  if (serial.length === 0) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'empty serial');
  return Buffer.from(serial.subarray(i)).toString('hex');
}
