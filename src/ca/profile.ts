/**
 * Issuance profiles and the policy check of a certification request against one.
 *
 * {@link evaluateRequest} is pure: CSR + profile in, the subject/SPKI/extensions to issue or a
 * refusal with a stable code out. Refusal codes live in {@link POLICY_FAILURES}, the one table
 * of them; the SCEP layer maps each code to a failInfo in its own table (style.md principle 7)
 * and this module knows nothing of SCEP. Challenge checks, approval queues and renewal
 * decisions belong to the caller's middleware (style.md principle 9); the profile only carries
 * the settings they read (`requireApproval`, `allowRenewal`, `renewalRequiresChallenge`).
 */
import * as der from '../pki/der.ts';
import { PkiError } from '../pki/errors.ts';
import type { CertificationRequest } from '../pki/csr.ts';
import { checkSignedStructure } from '../pki/chain.ts';
import { EXT, SIGNATURE_ALGS, type KeyUsageName } from '../pki/oids.ts';
import { generalName, publicKeyInfo } from '../pki/x509.ts';
import {
  crlDistributionPoints,
  extKeyUsage,
  keyUsage,
  subjectAltName,
  subjectKeyIdentifier,
  type ExtensionInput,
  type GeneralNameInput,
} from './certificate.ts';
import { parseX500 } from './name.ts';

/** The SAN types a profile may allow from requests. */
export type SanType = 'dns' | 'email' | 'ip' | 'uri' | 'upn';

/** What to issue, and what to accept, for one enrollment channel. */
export interface IssuanceProfile {
  readonly name: string;
  /** Upper bound of the validity period, in days (a request may ask for less). */
  readonly validityDays: number;
  readonly keyUsage: readonly KeyUsageName[];
  /** Extended key usage OIDs; empty means no extKeyUsage extension. */
  readonly extendedKeyUsage: readonly string[];
  readonly allowedKeyTypes: readonly ('rsa' | 'ec')[];
  readonly minRsaBits: number;
  /** Curve names as `publicKeyInfo` reports them: `P-256`, `P-384`, `P-521`. */
  readonly allowedCurves: readonly string[];
  /**
   * `fromRequest`: the CSR's subject DER, copied byte for byte. `forced`: `value`, a
   * Windows/X.500-order string ({@link parseX500}: first RDN first, e.g. `CN=device,O=Contoso`).
   */
  readonly subject: { readonly mode: 'fromRequest' | 'forced'; readonly value?: string };
  /**
   * `allow`: SAN types copied from the CSR's extensionRequest (any other type refuses the
   * request). `forced`: SANs always added, after the copied ones.
   */
  readonly subjectAltNames: {
    readonly allow: readonly SanType[];
    readonly forced?: readonly GeneralNameInput[];
  };
  readonly requireApproval: boolean;
  readonly allowRenewal: boolean;
  readonly renewalRequiresChallenge: boolean;
  /**
   * Signed-in portal users may request a certificate of this profile for themselves: the
   * server makes the key, escrows it, and hands out a PFX (server/portal/self-service.ts).
   * Such a request is issued at once (the user is authenticated), so it excludes
   * `requireApproval`.
   */
  readonly selfService: boolean;
  /** CRL distribution point URI written into issued certificates. */
  readonly crlUrl?: string;
}

/**
 * The default SCEP/device profile: one year, digitalSignature + keyEncipherment, clientAuth
 * (what micromdm/scep issues, scep-reference.md §3), RSA ≥ 2048 (step-ca's
 * `minimumPublicKeyLength`) or EC P-256/P-384, subject and SANs taken from the request.
 */
export const DEFAULT_PROFILE: IssuanceProfile = {
  name: 'default',
  validityDays: 365,
  keyUsage: ['digitalSignature', 'keyEncipherment'],
  extendedKeyUsage: ['1.3.6.1.5.5.7.3.2'],
  allowedKeyTypes: ['rsa', 'ec'],
  minRsaBits: 2048,
  allowedCurves: ['P-256', 'P-384'],
  subject: { mode: 'fromRequest' },
  subjectAltNames: { allow: ['dns', 'email', 'upn', 'uri', 'ip'] },
  requireApproval: false,
  allowRenewal: true,
  renewalRequiresChallenge: false,
  selfService: false,
};

/**
 * Why a request was refused: stable codes, each with what it means. The SCEP layer maps them
 * to failInfo (e.g. bad-signature → badMessageCheck, unsupported-signature-algorithm → badAlg,
 * the rest → badRequest); the admin UI shows the description.
 */
export const POLICY_FAILURES = {
  'bad-signature': 'the request signature does not verify with the public key it carries',
  'unsupported-signature-algorithm':
    'the request is signed with an algorithm certpost does not accept (MD5, or unknown)',
  'key-not-allowed': 'the public key type or size is not allowed by the profile',
  'san-not-allowed': 'the request asks for a subject alternative name type the profile refuses',
  'subject-missing': 'the certificate would have an empty subject',
  'malformed-request': 'a requested extension or name cannot be decoded',
} as const;

export type PolicyFailure = keyof typeof POLICY_FAILURES;

/** A refusal as an exception, for callers that throw ({@link issue} in issuer.ts). */
export class PolicyError extends Error {
  readonly code: PolicyFailure;
  constructor(code: PolicyFailure, message?: string) {
    super(message ?? POLICY_FAILURES[code]);
    this.code = code;
    this.name = 'PolicyError';
  }
}

export type PolicyResult =
  | {
      readonly ok: true;
      /** DER Name of the certificate subject. */
      readonly subject: Uint8Array;
      /** DER SubjectPublicKeyInfo (the CSR's, as encoded). */
      readonly spki: Uint8Array;
      /**
       * The leaf extensions that depend on the request and profile, in certificate order:
       * keyUsage, extKeyUsage, subjectAltName, subjectKeyIdentifier, crlDistributionPoints.
       * The issuer adds what depends on the CA (authorityKeyIdentifier).
       */
      readonly extensions: readonly ExtensionInput[];
    }
  | { readonly ok: false; readonly reason: PolicyFailure; readonly message: string };

const refuse = (reason: PolicyFailure, detail?: string): PolicyResult => ({
  ok: false,
  reason,
  message: detail ? `${POLICY_FAILURES[reason]}: ${detail}` : POLICY_FAILURES[reason],
});

/**
 * Verifies a CSR's self-signature (RFC 2986 §3: proof of possession) with the key it carries.
 * RSA PKCS#1 v1.5 (SHA-1 included: legacy SCEP clients sign with it), ECDSA, Ed25519; RSA-PSS
 * requests are reported as unsupported. MD5 is refused. Never throws.
 */
export function checkCsrSignature(
  csr: CertificationRequest,
): { ok: true } | { ok: false; reason: 'bad-signature' | 'unsupported-signature-algorithm' } {
  const alg = SIGNATURE_ALGS[csr.signatureAlgorithm];
  if (!alg || alg.key === 'pss' || alg.key === 'dsa' || alg.hash === 'md5')
    return { ok: false, reason: 'unsupported-signature-algorithm' };
  // The policy above; the verification itself is the one certificates use.
  return checkSignedStructure(csr, csr.spki).ok
    ? { ok: true }
    : { ok: false, reason: 'bad-signature' };
}

/**
 * Checks `csr` against `profile` and computes what to issue. Order of the checks (the first
 * failure is reported): signature → key → subject → SANs. Unknown requested extensions other
 * than subjectAltName are ignored: the profile decides keyUsage/EKU, never the request.
 */
export function evaluateRequest(csr: CertificationRequest, profile: IssuanceProfile): PolicyResult {
  const sig = checkCsrSignature(csr);
  if (!sig.ok) return refuse(sig.reason, SIGNATURE_ALGS[csr.signatureAlgorithm]?.name);

  let info: ReturnType<typeof publicKeyInfo>;
  try {
    info = publicKeyInfo(csr.spki);
  } catch {
    return refuse('malformed-request', 'subjectPublicKeyInfo');
  }
  if (info.type === 'rsa') {
    if (!profile.allowedKeyTypes.includes('rsa')) return refuse('key-not-allowed', 'RSA');
    if ((info.bits ?? 0) < profile.minRsaBits)
      return refuse('key-not-allowed', `RSA ${info.bits} bits < ${profile.minRsaBits}`);
  } else if (info.type === 'ec') {
    if (!profile.allowedKeyTypes.includes('ec')) return refuse('key-not-allowed', 'EC');
    if (!info.curve || !profile.allowedCurves.includes(info.curve))
      return refuse('key-not-allowed', `curve ${info.curve ?? 'unknown'}`);
  } else return refuse('key-not-allowed', info.type);

  let subject: Uint8Array;
  if (profile.subject.mode === 'forced') {
    if (profile.subject.value === undefined)
      throw new PkiError(
        'ERR_PKI_INVALID_ARGUMENT',
        `profile "${profile.name}": subject mode forced needs a value`,
      );
    subject = parseX500(profile.subject.value);
  } else subject = csr.subject.der;
  if (der.children(der.decode(subject)).length === 0) return refuse('subject-missing');

  const sans: (Uint8Array | GeneralNameInput)[] = [];
  const requested = csr.extensions.filter((e) => e.oid === EXT.subjectAltName);
  if (requested.length > 1) return refuse('malformed-request', 'two subjectAltName extensions');
  if (requested[0]) {
    let names: der.Asn1[];
    try {
      names = der.seq(der.decode(requested[0].value), 'subjectAltName');
    } catch {
      return refuse('malformed-request', 'subjectAltName');
    }
    for (const n of names) {
      let type: string;
      try {
        type = generalName(n).type;
      } catch {
        return refuse('malformed-request', 'subjectAltName entry');
      }
      if (!(profile.subjectAltNames.allow as readonly string[]).includes(type))
        return refuse('san-not-allowed', type);
      sans.push(der.raw(n));
    }
  }
  sans.push(...(profile.subjectAltNames.forced ?? []));

  const extensions: ExtensionInput[] = [keyUsage(profile.keyUsage)];
  if (profile.extendedKeyUsage.length) extensions.push(extKeyUsage(profile.extendedKeyUsage));
  if (sans.length) extensions.push(subjectAltName(sans));
  extensions.push(subjectKeyIdentifier(csr.spki));
  if (profile.crlUrl !== undefined) extensions.push(crlDistributionPoints([profile.crlUrl]));
  return { ok: true, subject, spki: csr.spki, extensions };
}

/** Clock skew allowance: notBefore is backdated by this much (devices with slow clocks). */
export const BACKDATE_MS = 5 * 60_000;

/**
 * The validity period for a certificate issued at `now`: notBefore = now − 5 min
 * ({@link BACKDATE_MS}); notAfter = now + min(profile.validityDays, requestedDays) days, where
 * a missing, non-finite or non-positive request means the profile's value. Milliseconds are
 * dropped (X.509 times have second precision, RFC 5280 §4.1.2.5).
 */
export function validityFor(
  profile: IssuanceProfile,
  now: Date,
  csrRequestedDays?: number,
): { notBefore: Date; notAfter: Date } {
  const days =
    csrRequestedDays !== undefined && Number.isFinite(csrRequestedDays) && csrRequestedDays > 0
      ? Math.min(profile.validityDays, csrRequestedDays)
      : profile.validityDays;
  const t = Math.floor(now.getTime() / 1000) * 1000;
  return {
    notBefore: new Date(t - BACKDATE_MS),
    notAfter: new Date(t + Math.round(days * 86_400) * 1000),
  };
}
