/**
 * Building and signing X.509 v3 certificates (RFC 5280 §4.1) with our DER writer, and the
 * extension builders the CA uses (RFC 5280 §4.2.1).
 *
 * Why not pkijs: building the TBS with `enc.*` costs tens of microseconds, so issuance stays
 * near the cost of the signature itself (design.md §5). The signature is made off the event
 * loop, in a private-key thread (pki/key-threads.ts) for a software key.
 *
 * ```asn1
 * Certificate ::= SEQUENCE { tbsCertificate TBSCertificate,
 *   signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
 * TBSCertificate ::= SEQUENCE { version [0] EXPLICIT Version DEFAULT v1,
 *   serialNumber CertificateSerialNumber, signature AlgorithmIdentifier, issuer Name,
 *   validity Validity, subject Name, subjectPublicKeyInfo SubjectPublicKeyInfo,
 *   extensions [3] EXPLICIT Extensions OPTIONAL }
 * Validity ::= SEQUENCE { notBefore Time, notAfter Time }
 * Extension ::= SEQUENCE { extnID OBJECT IDENTIFIER, critical BOOLEAN DEFAULT FALSE,
 *   extnValue OCTET STRING }
 * ```
 */
import { createHash } from 'node:crypto';
import type { PrivateKeyRef } from '../pki/key-ref.ts';
import * as der from '../pki/der.ts';
import { enc, Tag } from '../pki/der.ts';
import { PkiError } from '../pki/errors.ts';
import { EXT, KEY_USAGE_BITS, PKIX, type KeyUsageName } from '../pki/oids.ts';
import { signatureAlgorithmFor, signStructure, type Digest } from '../pki/sign.ts';
import { parseRfc4514 } from './name.ts';

/** One extension, ready to encode (`value` is the DER inside extnValue). */
export interface ExtensionInput {
  readonly oid: string;
  readonly critical: boolean;
  readonly value: Uint8Array;
}

/** The issuer side of a signature: its DER Name, private key and SubjectPublicKeyInfo. */
export interface SignerInput {
  readonly name: Uint8Array;
  readonly key: PrivateKeyRef;
  readonly spki: Uint8Array;
}

export interface CertificateInput {
  /** DER Name. */
  readonly subject: Uint8Array;
  /** DER SubjectPublicKeyInfo, copied as is. */
  readonly spki: Uint8Array;
  /** Serial number magnitude, big-endian (positive; RFC 5280 §4.1.2.2: at most 20 octets). */
  readonly serial: Uint8Array;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuer: SignerInput;
  readonly extensions: readonly ExtensionInput[];
  /** Digest for RSA/ECDSA; default by key: RSA SHA-256, P-256 SHA-256, P-384 SHA-384, P-521 SHA-512. */
  readonly digest?: Digest;
}

/** Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (critical omitted when FALSE, DER). */
export function encodeExtensions(extensions: readonly ExtensionInput[]): Uint8Array {
  return enc.seq(
    ...extensions.map((e) =>
      e.critical
        ? enc.seq(enc.oid(e.oid), enc.bool(true), enc.octets(e.value))
        : enc.seq(enc.oid(e.oid), enc.octets(e.value)),
    ),
  );
}

/**
 * Builds and signs a v3 certificate; returns its DER. Contract: the caller supplies a unique,
 * positive serial and a validity period; nothing here consults a clock or storage. Duplicate
 * extension OIDs are refused (RFC 5280 §4.2).
 */
export async function buildCertificate(input: CertificateInput): Promise<Uint8Array> {
  const { serial } = input;
  if (serial.every((b) => b === 0) || serial.length > 20) {
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'serial must be a positive integer of at most 20 octets',
    );
  }
  if (input.notAfter.getTime() < input.notBefore.getTime())
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'notAfter is before notBefore');
  const seen = new Set<string>();
  for (const e of input.extensions) {
    if (seen.has(e.oid))
      throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `duplicate extension ${e.oid}`);
    seen.add(e.oid);
  }
  const alg = signatureAlgorithmFor(input.issuer.key, input.digest);
  const tbs = enc.seq(
    enc.ctx(0, enc.int(2)), // v3
    enc.uint(serial),
    alg.algorithmIdentifier,
    input.issuer.name,
    enc.seq(enc.time(input.notBefore), enc.time(input.notAfter)),
    input.subject,
    input.spki,
    ...(input.extensions.length ? [enc.ctx(3, encodeExtensions(input.extensions))] : []),
  );
  return signStructure(tbs, alg, input.issuer.key);
}

// ---------------------------------------------------------------------------------------------
// Extension builders (RFC 5280 §4.2.1). Each returns an ExtensionInput with the criticality
// RFC 5280 or the CA/B Baseline Requirements recommend; override with the `critical` argument.

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL } (§4.2.1.9; critical in CA certificates). */
export function basicConstraints(ca: boolean, pathLen?: number, critical = true): ExtensionInput {
  const parts: Uint8Array[] = [];
  if (ca) parts.push(enc.bool(true));
  if (ca && pathLen !== undefined) parts.push(enc.int(pathLen));
  return { oid: EXT.basicConstraints, critical, value: enc.seq(...parts) };
}

/**
 * KeyUsage ::= BIT STRING (§4.2.1.3): a NamedBitList, so DER drops trailing zero bits
 * (X.690 §11.2.2) and the unused-bit count is minimal. Critical by default (§4.2.1.3 SHOULD).
 */
export function keyUsage(names: readonly KeyUsageName[], critical = true): ExtensionInput {
  if (names.length === 0) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'keyUsage without bits');
  let max = -1;
  const bits = new Set<number>();
  for (const n of names) {
    const bit = KEY_USAGE_BITS.indexOf(n);
    if (bit < 0) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `unknown keyUsage "${n}"`);
    bits.add(bit);
    max = Math.max(max, bit);
  }
  const bytes = new Uint8Array((max >> 3) + 1);
  for (const b of bits) bytes[b >> 3]! |= 0x80 >> (b & 7);
  const unused = 7 - (max & 7);
  return {
    oid: EXT.keyUsage,
    critical,
    value: der.tlv(Tag.BIT_STRING, Uint8Array.of(unused), bytes),
  };
}

/** ExtKeyUsageSyntax ::= SEQUENCE SIZE (1..MAX) OF KeyPurposeId (§4.2.1.12; non-critical). */
export function extKeyUsage(oids: readonly string[], critical = false): ExtensionInput {
  if (oids.length === 0) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'extKeyUsage without OIDs');
  return { oid: EXT.extKeyUsage, critical, value: enc.seq(...oids.map(enc.oid)) };
}

/** The GeneralName forms the CA writes. `dirName` takes an RFC 4514 string. */
export type GeneralNameType = 'dns' | 'email' | 'ip' | 'uri' | 'upn' | 'dirName';
export interface GeneralNameInput {
  readonly type: GeneralNameType;
  readonly value: string;
}

function ia5Bytes(s: string, what: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) > 0x7f)
      throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `${what} "${s}" is not ASCII (IA5String)`);
  }
  if (s.length === 0) throw new PkiError('ERR_PKI_INVALID_ARGUMENT', `empty ${what}`);
  return Buffer.from(s, 'latin1');
}

/**
 * ```asn1
 * GeneralName ::= CHOICE { otherName [0] OtherName, rfc822Name [1] IA5String,
 *   dNSName [2] IA5String, directoryName [4] Name, uniformResourceIdentifier [6] IA5String,
 *   iPAddress [7] OCTET STRING, ... }
 * OtherName ::= SEQUENCE { type-id OBJECT IDENTIFIER, value [0] EXPLICIT ANY }
 * ```
 * (§4.2.1.6; implicit tags, except directoryName, explicit because Name is a CHOICE). `upn` is
 * the Microsoft otherName 1.3.6.1.4.1.311.20.2.3 with a UTF8String value.
 */
export function encodeGeneralName(gn: GeneralNameInput): Uint8Array {
  switch (gn.type) {
    case 'email':
      return enc.ctxPrim(1, ia5Bytes(gn.value, 'email address'));
    case 'dns':
      return enc.ctxPrim(2, ia5Bytes(gn.value, 'DNS name'));
    case 'uri':
      return enc.ctxPrim(6, ia5Bytes(gn.value, 'URI'));
    case 'ip':
      return enc.ctxPrim(7, ipBytes(gn.value));
    case 'upn':
      return enc.ctx(0, enc.oid(PKIX.upn), enc.ctx(0, enc.utf8(gn.value)));
    case 'dirName':
      return enc.ctx(4, parseRfc4514(gn.value));
  }
}

/** Dotted-quad IPv4 (no leading zeros) → 4 octets, or null. */
function ipv4(t: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(t);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p, i) => p <= 255 && !(m[i + 1]!.length > 1 && m[i + 1]![0] === '0'))
    ? parts
    : null;
}

/** IPv4 dotted quad or IPv6 text (RFC 4291 §2.2, `::` and a dotted IPv4 tail) → 4 or 16 octets. */
export function ipBytes(s: string): Uint8Array {
  const bad = () => new PkiError('ERR_PKI_INVALID_ARGUMENT', `bad IP address "${s}"`);
  if (!s.includes(':')) {
    const b = ipv4(s);
    if (!b) throw bad();
    return Uint8Array.from(b);
  }
  const halves = s.split('::');
  if (halves.length > 2) throw bad();
  const groups = (t: string): number[] => {
    if (t === '') return [];
    const out: number[] = [];
    const parts = t.split(':');
    parts.forEach((p, i) => {
      if (i === parts.length - 1 && p.includes('.')) {
        const b = ipv4(p);
        if (!b) throw bad();
        out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) throw bad();
        out.push(parseInt(p, 16));
      }
    });
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) throw bad();
  const all = [...head, ...Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * SubjectAltName ::= GeneralNames (§4.2.1.6). Pass `critical: true` when the subject is empty
 * (§4.2.1.6 MUST). Entries may be GeneralNameInput or already encoded GeneralName DER (copied
 * from a CSR byte for byte).
 */
export function subjectAltName(
  names: readonly (GeneralNameInput | Uint8Array)[],
  critical = false,
): ExtensionInput {
  if (names.length === 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'subjectAltName without names');
  const encoded = names.map((n) => (n instanceof Uint8Array ? n : encodeGeneralName(n)));
  return { oid: EXT.subjectAltName, critical, value: enc.seq(...encoded) };
}

/**
 * The key identifier of a SubjectPublicKeyInfo: SHA-1 of the subjectPublicKey BIT STRING
 * contents, unused-bits octet excluded (§4.2.1.2 method (1); what OpenSSL's `hash` computes).
 */
export function keyIdentifier(spki: Uint8Array): Uint8Array {
  const [, key] = der.seq(der.decode(spki), 'subjectPublicKeyInfo');
  const { bytes } = der.bitString(der.expect(key, Tag.BIT_STRING, 'subjectPublicKey'));
  return new Uint8Array(createHash('sha1').update(bytes).digest());
}

/** SubjectKeyIdentifier ::= KeyIdentifier (OCTET STRING) (§4.2.1.2; non-critical). */
export function subjectKeyIdentifier(spki: Uint8Array): ExtensionInput {
  return { oid: EXT.subjectKeyIdentifier, critical: false, value: enc.octets(keyIdentifier(spki)) };
}

/**
 * AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] KeyIdentifier OPTIONAL, ... }
 * (§4.2.1.1; non-critical; only the keyIdentifier form). `issuerSpki` is hashed as in
 * {@link keyIdentifier}, so it equals the issuer's SKI when the issuer was made here.
 * Pass the issuer's own SKI bytes instead with {@link authorityKeyIdentifierFromId}.
 */
export function authorityKeyIdentifier(issuerSpki: Uint8Array): ExtensionInput {
  return authorityKeyIdentifierFromId(keyIdentifier(issuerSpki));
}

export function authorityKeyIdentifierFromId(keyId: Uint8Array): ExtensionInput {
  return {
    oid: EXT.authorityKeyIdentifier,
    critical: false,
    value: enc.seq(enc.ctxPrim(0, keyId)),
  };
}

/**
 * ```asn1
 * CRLDistributionPoints ::= SEQUENCE SIZE (1..MAX) OF DistributionPoint
 * DistributionPoint ::= SEQUENCE { distributionPoint [0] DistributionPointName OPTIONAL, ... }
 * DistributionPointName ::= CHOICE { fullName [0] GeneralNames, ... }
 * ```
 * (§4.2.1.13; non-critical). One DistributionPoint whose fullName lists every URI.
 */
export function crlDistributionPoints(uris: readonly string[]): ExtensionInput {
  if (uris.length === 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'crlDistributionPoints without URIs');
  const fullName = enc.ctx(0, ...uris.map((u) => encodeGeneralName({ type: 'uri', value: u })));
  return {
    oid: EXT.crlDistributionPoints,
    critical: false,
    value: enc.seq(enc.seq(enc.ctx(0, fullName))),
  };
}

/**
 * ```asn1
 * AuthorityInfoAccessSyntax ::= SEQUENCE SIZE (1..MAX) OF AccessDescription
 * AccessDescription ::= SEQUENCE { accessMethod OBJECT IDENTIFIER, accessLocation GeneralName }
 * ```
 * (§4.2.2.1; non-critical): id-ad-ocsp and id-ad-caIssuers URIs.
 */
export function authorityInfoAccess(access: {
  readonly ocsp?: readonly string[];
  readonly caIssuers?: readonly string[];
}): ExtensionInput {
  const ads = [
    ...(access.ocsp ?? []).map((u) => [PKIX.ocsp, u] as const),
    ...(access.caIssuers ?? []).map((u) => [PKIX.caIssuers, u] as const),
  ].map(([m, u]) => enc.seq(enc.oid(m), encodeGeneralName({ type: 'uri', value: u })));
  if (ads.length === 0)
    throw new PkiError('ERR_PKI_INVALID_ARGUMENT', 'authorityInfoAccess without locations');
  return { oid: EXT.authorityInfoAccess, critical: false, value: enc.seq(...ads) };
}
