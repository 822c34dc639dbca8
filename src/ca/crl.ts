/**
 * Certificate revocation lists (RFC 5280 §5), built with our DER writer and signed off the
 * event loop like certificates.
 *
 * ```asn1
 * CertificateList ::= SEQUENCE { tbsCertList TBSCertList,
 *   signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
 * TBSCertList ::= SEQUENCE { version Version OPTIONAL -- v2 --, signature AlgorithmIdentifier,
 *   issuer Name, thisUpdate Time, nextUpdate Time OPTIONAL,
 *   revokedCertificates SEQUENCE OF SEQUENCE { userCertificate CertificateSerialNumber,
 *     revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL,
 *   crlExtensions [0] EXPLICIT Extensions OPTIONAL }
 * CRLNumber ::= INTEGER (0..MAX)
 * CRLReason ::= ENUMERATED { unspecified (0), keyCompromise (1), cACompromise (2),
 *   affiliationChanged (3), superseded (4), cessationOfOperation (5), certificateHold (6),
 *   -- value 7 is not used -- removeFromCRL (8), privilegeWithdrawn (9), aACompromise (10) }
 * ```
 */
import type { PrivateKeyRef } from '../pki/key-ref.ts';
import * as der from '../pki/der.ts';
import { enc, Tag } from '../pki/der.ts';
import { PkiError } from '../pki/errors.ts';
import type { SignedStructure } from '../pki/chain.ts';
import {
  formatName,
  parseExtensions,
  parseName,
  subjectKeyIdentifier,
  type Certificate,
  type Name,
} from '../pki/x509.ts';
import {
  authorityKeyIdentifier,
  authorityKeyIdentifierFromId,
  encodeExtensions,
} from './certificate.ts';
import { signatureAlgorithmFor, signStructure, type Digest } from '../pki/sign.ts';

/** CRL extension and entry extension OIDs (RFC 5280 §5.2.3, §5.3.1). */
export const CRL_EXT = { cRLNumber: '2.5.29.20', reasonCode: '2.5.29.21' } as const;

/** CRLReason names by code (RFC 5280 §5.3.1); 7 is unassigned. */
export const CRL_REASONS = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise',
} as const;

export interface RevokedEntry {
  /** Serial number, hex (an optional leading `00` sign octet is accepted). */
  readonly serial: string;
  readonly revokedAt: Date;
  /** CRLReason code; 0 (unspecified) writes no reasonCode entry extension (§5.3.1 SHOULD). */
  readonly reason: number;
}

export interface CrlInput {
  readonly issuer: { readonly certificate: Certificate; readonly key: PrivateKeyRef };
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** Monotonically increasing per issuer (§5.2.3); the caller keeps it. */
  readonly crlNumber: bigint;
  readonly revoked: readonly RevokedEntry[];
  readonly digest?: Digest;
}

/**
 * Builds and signs a v2 CRL; returns its DER. The CRL carries authorityKeyIdentifier (the
 * issuer's SKI; §5.2.1 MUST) and cRLNumber (§5.2.3 MUST), both non-critical. With no revoked
 * certificates the revokedCertificates field is omitted (§5.1.2.6). Entries are written in the
 * order given. Throws `ERR_PKI_INVALID_ARGUMENT` for a bad serial, reason or number.
 */
export async function buildCrl(input: CrlInput): Promise<Uint8Array> {
  const { certificate, key } = input.issuer;
  if (input.crlNumber < 0n || input.crlNumber >= 1n << 159n)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'cRLNumber must be in 0..2^159-1 (≤ 20 octets)');
  if (input.nextUpdate < input.thisUpdate)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'nextUpdate is before thisUpdate');
  const alg = signatureAlgorithmFor(key, input.digest);
  const entries = input.revoked.map((r) => {
    if (!/^(?:[0-9a-fA-F]{2})+$/.test(r.serial) || /^(00)+$/.test(r.serial))
      throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `bad serial "${r.serial}"`);
    if (!(r.reason in CRL_REASONS))
      throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `bad CRLReason ${r.reason}`);
    const serial = enc.uint(Uint8Array.from(Buffer.from(r.serial, 'hex')));
    const ext =
      r.reason === 0
        ? []
        : [
            encodeExtensions([
              {
                oid: CRL_EXT.reasonCode,
                critical: false,
                value: der.tlv(Tag.ENUMERATED, Uint8Array.of(r.reason)),
              },
            ]),
          ];
    return enc.seq(serial, enc.time(r.revokedAt), ...ext);
  });
  const ski = subjectKeyIdentifier(certificate);
  const extensions = encodeExtensions([
    ski
      ? authorityKeyIdentifierFromId(Uint8Array.from(Buffer.from(ski, 'hex')))
      : authorityKeyIdentifier(certificate.spki),
    { oid: CRL_EXT.cRLNumber, critical: false, value: enc.int(input.crlNumber) },
  ]);
  const tbs = enc.seq(
    enc.int(1), // v2
    alg.algorithmIdentifier,
    certificate.subject.der,
    enc.time(input.thisUpdate),
    enc.time(input.nextUpdate),
    ...(entries.length ? [enc.seq(...entries)] : []),
    enc.ctx(0, extensions),
  );
  return signStructure(tbs, alg, key);
}

/** A CRL as read back (RFC 5280 §5.1): what `certpost doctor` and the console show of it. */
export interface ParsedCrl extends SignedStructure {
  readonly issuer: Name;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | undefined;
  readonly crlNumber: bigint | undefined;
  readonly revoked: readonly RevokedEntry[];
}

/**
 * Reads a DER CRL. Throws {@link PkiError} `ERR_PKI_MALFORMED`/`ERR_PKI_TRUNCATED` for bytes that
 * are not a CertificateList. The signature is not checked here: pass the result to
 * `checkSignedStructure` with the issuer's SubjectPublicKeyInfo.
 */
export function parseCrl(bytes: Uint8Array): ParsedCrl {
  const [tbsNode, sigAlg, sigValue] = der.seq(der.decode(bytes), 'CertificateList');
  const tbs = der.seq(tbsNode, 'TBSCertList');
  let i = tbs[0]?.tag === Tag.INTEGER ? 1 : 0; // version, v2 when present
  i++; // inner signature AlgorithmIdentifier
  const issuer = parseName(tbs[i++], 'issuer');
  const thisUpdate = der.time(tbs[i++]!);
  let nextUpdate: Date | undefined;
  if (tbs[i] && (tbs[i]!.tag === Tag.UTC_TIME || tbs[i]!.tag === Tag.GENERALIZED_TIME))
    nextUpdate = der.time(tbs[i++]!);
  const revoked: RevokedEntry[] = [];
  if (tbs[i]?.tag === Tag.SEQUENCE) {
    for (const entry of der.children(tbs[i++]!)) {
      const [serial, date, ext] = der.seq(entry, 'revokedCertificate');
      const reasonExt = ext && parseExtensions(ext).find((e) => e.oid === CRL_EXT.reasonCode);
      revoked.push({
        serial: Buffer.from(der.value(der.expect(serial, Tag.INTEGER, 'userCertificate')))
          .toString('hex')
          .replace(/^(00)+(?=..)/, ''),
        revokedAt: der.time(date!),
        reason: reasonExt ? reasonCode(reasonExt.value) : 0,
      });
    }
  }
  let crlNumber: bigint | undefined;
  if (tbs[i]?.tag === der.ctx(0, true)) {
    const n = parseExtensions(der.children(tbs[i]!)[0]).find((e) => e.oid === CRL_EXT.cRLNumber);
    if (n) crlNumber = der.integer(der.decode(n.value));
  }
  const algParts = der.seq(sigAlg, 'signatureAlgorithm');
  return {
    tbs: der.raw(tbsNode!),
    signatureAlgorithm: der.oid(algParts[0]!),
    signatureParams: algParts[1] && algParts[1].tag !== Tag.NULL ? der.raw(algParts[1]) : null,
    signature: der.bitString(der.expect(sigValue, Tag.BIT_STRING, 'signatureValue')).bytes,
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    revoked,
  };
}

/** CRLReason (an ENUMERATED of one octet, RFC 5280 §5.3.1) from its extension value. */
function reasonCode(value: Uint8Array): number {
  const n = der.decode(value);
  const v = der.value(n);
  if (n.tag !== Tag.ENUMERATED || v.length !== 1)
    throw new PkiError('ERR_PKI_MALFORMED', 'a reasonCode that is not a one-octet ENUMERATED');
  return v[0]!;
}

/** What a CRL says, as an administrator wants to see it (the CA status page). */
export interface CrlSummary {
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date | null;
  /** cRLNumber (§5.2.3), or null when the CRL has none. */
  readonly number: bigint | null;
  /** Revoked serials, lowercase hex without a sign octet, in the CRL's order. */
  readonly revoked: readonly string[];
}

/** {@link parseCrl}, as the CA status page shows it. The signature is not checked here. */
export function describeCrl(crl: Uint8Array): CrlSummary {
  const p = parseCrl(crl);
  return {
    issuer: formatName(p.issuer),
    thisUpdate: p.thisUpdate,
    nextUpdate: p.nextUpdate ?? null,
    number: p.crlNumber ?? null,
    revoked: p.revoked.map((r) => r.serial),
  };
}
