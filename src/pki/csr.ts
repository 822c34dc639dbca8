/**
 * PKCS#10 certification requests (RFC 2986), with the attributes SCEP and Windows use:
 * challengePassword (PKCS#9, RFC 2985 §5.4.1) and extensionRequest (§5.4.2).
 *
 * ```asn1
 * CertificationRequest ::= SEQUENCE { certificationRequestInfo CertificationRequestInfo,
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 * CertificationRequestInfo ::= SEQUENCE { version INTEGER { v1(0) }, subject Name,
 *   subjectPKInfo SubjectPublicKeyInfo, attributes [0] IMPLICIT Attributes }
 * ```
 */
import * as der from './der.ts';
import { enc, Tag } from './der.ts';
import { malformed } from './errors.ts';
import { spkiOf, type PrivateKeyRef } from './key-ref.ts';
import { signatureAlgorithmFor, signStructure, type Digest } from './sign.ts';
import { PKCS9, SIGNATURE_ALGS } from './oids.ts';
import {
  formatName,
  generalName,
  parseExtensions,
  parseName,
  publicKeyInfo,
  type Extension,
  type Name,
  type PublicKeyInfo,
  type SubjectAltName,
} from './x509.ts';
import { EXT } from './oids.ts';

/** A parsed CSR. Field names match {@link Certificate} where the meaning is the same. */
export interface CertificationRequest {
  readonly der: Uint8Array;
  /** CertificationRequestInfo as encoded: the signed bytes. */
  readonly tbs: Uint8Array;
  readonly subject: Name;
  readonly spki: Uint8Array;
  readonly signatureAlgorithm: string;
  readonly signatureParams: Uint8Array | null;
  readonly signature: Uint8Array;
  /** The challengePassword attribute, when present (SCEP's one-time secret: never log it). */
  readonly challengePassword: string | undefined;
  /** Extensions from the extensionRequest attribute. */
  readonly extensions: readonly Extension[];
  /** Every attribute, by OID, as raw DER values. */
  readonly attributes: readonly { readonly oid: string; readonly values: readonly Uint8Array[] }[];
}

/** Parses a DER PKCS#10 request. The signature is not checked here (see chain.ts). */
export function parseCsr(bytes: Uint8Array): CertificationRequest {
  const top = der.decode(bytes);
  const [infoNode, algNode, sigNode] = der.seq(top, 'CertificationRequest');
  const info = der.seq(infoNode, 'CertificationRequestInfo');
  const version = der.smallInt(der.expect(info[0], Tag.INTEGER, 'version'), 10);
  if (version !== 0) throw malformed(`unknown CSR version ${version}`);
  const subject = parseName(info[1], 'subject');
  const spki = der.raw(der.expect(info[2], Tag.SEQUENCE, 'subjectPKInfo'));
  const attributes: { oid: string; values: Uint8Array[] }[] = [];
  let challengePassword: string | undefined;
  const extensions: Extension[] = [];
  const attrSet = info[3];
  if (attrSet) {
    der.expect(attrSet, der.ctx(0, true), 'attributes');
    for (const a of der.children(attrSet)) {
      const [t, vals] = der.seq(a, 'attribute');
      const oid = der.oid(t!);
      const values = der.children(der.expect(vals, Tag.SET, 'attribute values'));
      attributes.push({ oid, values: values.map(der.raw) });
      if (oid === PKCS9.challengePassword && values[0]) challengePassword = der.string(values[0]);
      if (oid === PKCS9.extensionRequest && values[0])
        extensions.push(...parseExtensions(values[0]));
    }
  }
  const alg = der.seq(algNode, 'signatureAlgorithm');
  return {
    der: der.raw(top),
    tbs: der.raw(infoNode!),
    subject,
    spki,
    signatureAlgorithm: der.oid(alg[0]!),
    signatureParams: alg[1] && alg[1].tag !== Tag.NULL ? der.raw(alg[1]) : null,
    signature: der.bitString(der.expect(sigNode, Tag.BIT_STRING, 'signature')).bytes,
    challengePassword,
    extensions,
    attributes,
  };
}

/** True when the bytes start like a CertificationRequest (INTEGER 0 then a Name). */
export function looksLikeCsr(bytes: Uint8Array): boolean {
  try {
    const top = der.readTlv(bytes, 0, bytes.length, 0);
    const info = der.readTlv(bytes, top.valueStart, top.end, 1);
    const v = der.readTlv(bytes, info.valueStart, info.end, 2);
    if (info.tag !== Tag.SEQUENCE || v.tag !== Tag.INTEGER || der.integer(v) !== 0n) return false;
    const name = der.readTlv(bytes, v.end, info.end, 2);
    return name.tag === Tag.SEQUENCE;
  } catch {
    return false;
  }
}

/** What `certpost inspect` shows for a CSR. The challenge is reported as present, never shown. */
export interface CsrInfo {
  readonly subject: string;
  readonly publicKey: PublicKeyInfo;
  readonly signatureAlgorithm: string;
  readonly hasChallengePassword: boolean;
  readonly subjectAltNames: readonly SubjectAltName[];
  readonly requestedExtensions: readonly { readonly oid: string; readonly critical: boolean }[];
}

export function inspectCsr(csr: CertificationRequest): CsrInfo {
  const san = csr.extensions.find((e) => e.oid === EXT.subjectAltName);
  return {
    subject: formatName(csr.subject),
    publicKey: publicKeyInfo(csr.spki),
    signatureAlgorithm: SIGNATURE_ALGS[csr.signatureAlgorithm]?.name ?? csr.signatureAlgorithm,
    hasChallengePassword: csr.challengePassword !== undefined,
    subjectAltNames: san ? der.seq(der.decode(san.value), 'subjectAltName').map(generalName) : [],
    requestedExtensions: csr.extensions.map((e) => ({ oid: e.oid, critical: e.critical })),
  };
}

export interface CsrInput {
  /** DER Name. */
  readonly subject: Uint8Array;
  /** The private key; the request carries its public half and is signed with it. */
  readonly key: PrivateKeyRef;
  /** PKCS#9 challengePassword (RFC 2985 §5.4.1), as a UTF8String. */
  readonly challengePassword?: string;
  /** Extensions requested with a PKCS#9 extensionRequest (RFC 2985 §5.4.2). */
  readonly extensions?: readonly Extension[];
  readonly digest?: Digest;
}

/**
 * Builds and signs a PKCS#10 request (RFC 2986 §4): what a SCEP client (the device agent,
 * certmonger-style hosts, our tests) sends. The attributes SET is sorted as DER requires.
 */
export async function buildCsr(input: CsrInput): Promise<Uint8Array> {
  const spki = spkiOf(input.key);
  const attributes: Uint8Array[] = [];
  if (input.challengePassword !== undefined) {
    attributes.push(
      enc.seq(enc.oid(PKCS9.challengePassword), enc.setOf(enc.utf8(input.challengePassword))),
    );
  }
  if (input.extensions?.length) {
    const exts = input.extensions.map((e) =>
      enc.seq(enc.oid(e.oid), ...(e.critical ? [enc.bool(true)] : []), enc.octets(e.value)),
    );
    attributes.push(enc.seq(enc.oid(PKCS9.extensionRequest), enc.setOf(enc.seq(...exts))));
  }
  const info = enc.seq(
    enc.int(0),
    input.subject,
    spki,
    der.tlv(der.ctx(0, true), ...attributes.toSorted(der.compareBytes)),
  );
  return signStructure(info, signatureAlgorithmFor(input.key, input.digest), input.key);
}
