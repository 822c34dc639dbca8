/**
 * PKCS#7 / CMS certificate bundles (.p7b/.p7c): the "degenerate" certs-only SignedData of
 * RFC 5652 §5 (no signers, no content), as Windows exports them and SCEP's GetCACert and
 * CertRep carry them.
 *
 * ```asn1
 * ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY }
 * SignedData ::= SEQUENCE { version CMSVersion, digestAlgorithms DigestAlgorithmIdentifiers,
 *   encapContentInfo EncapsulatedContentInfo,
 *   certificates [0] IMPLICIT CertificateSet OPTIONAL,
 *   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL, signerInfos SignerInfos }
 * ```
 * BER input (indefinite lengths, as some Java and NSS tools write) is accepted.
 */
import * as der from './der.ts';
import { enc, Tag } from './der.ts';
import { PkiError } from './errors.ts';
import { CMS } from './oids.ts';
import { certificateFromAsn1, type Certificate } from './x509.ts';

/**
 * Most certificates one file may carry, whatever its format (PKCS#7, PEM, DER back to back, a
 * SignedData, PKCS#12 bags): the biggest real bundles, the system CA lists, hold a few hundred.
 */
export const MAX_BUNDLE_CERTIFICATES = 1000;

/** The SignedData node inside a ContentInfo, or a PkiError. */
export function signedDataOf(bytes: Uint8Array): der.Asn1 {
  const [type, content] = der.seq(der.decode(bytes), 'ContentInfo');
  const t = der.oid(der.expect(type, Tag.OID, 'contentType'));
  if (t !== CMS.signedData)
    throw new PkiError('ERR_PKI_UNSUPPORTED', `PKCS#7 content type ${t} (expected signedData)`);
  const explicit = der.expect(content, der.ctx(0, true), 'content');
  return der.expect(der.children(explicit)[0], Tag.SEQUENCE, 'SignedData');
}

/**
 * Certificates of a PKCS#7 SignedData (any SignedData: signers are ignored here).
 * Non-X.509 CertificateChoices (attribute certificates, `other`) are skipped.
 */
export function parsePkcs7Certificates(bytes: Uint8Array): Certificate[] {
  const parts = der.children(signedDataOf(bytes));
  const set = parts.find((p) => p.tag === der.ctx(0, true));
  if (!set) return [];
  const certs = der.children(set).filter((c) => c.tag === Tag.SEQUENCE);
  if (certs.length > MAX_BUNDLE_CERTIFICATES) {
    throw new PkiError(
      'ERR_PKI_LIMIT',
      `more than ${MAX_BUNDLE_CERTIFICATES} certificates in one bundle`,
    );
  }
  return certs.map(certificateFromAsn1);
}

/**
 * CRLs of a PKCS#7 SignedData (`crls [1] IMPLICIT RevocationInfoChoices`), each the DER of a
 * CertificateList; other RevocationInfoChoices are skipped. SCEP GetCRL replies carry them.
 */
export function parsePkcs7Crls(bytes: Uint8Array): Uint8Array[] {
  const set = der.children(signedDataOf(bytes)).find((p) => p.tag === der.ctx(1, true));
  if (!set) return [];
  const crls = der.children(set).filter((c) => c.tag === Tag.SEQUENCE);
  if (crls.length > MAX_BUNDLE_CERTIFICATES)
    throw new PkiError('ERR_PKI_LIMIT', `more than ${MAX_BUNDLE_CERTIFICATES} CRLs in one bundle`);
  return crls.map((c) => der.raw(c));
}

/** True when the bytes start like a ContentInfo of type signedData. */
export function looksLikePkcs7(bytes: Uint8Array): boolean {
  try {
    const top = der.readTlv(bytes, 0, bytes.length, 0);
    if (top.tag !== Tag.SEQUENCE) return false;
    const t = der.readTlv(bytes, top.valueStart, top.end, 1);
    return t.tag === Tag.OID && der.oid(t) === CMS.signedData;
  } catch {
    return false;
  }
}

/**
 * Encodes a certs-only SignedData (version 1, no digest algorithms, no signers). The
 * certificates keep the given order; DER SET OF ordering is not applied because Windows and
 * OpenSSL both read the bundle in order and many tools expect leaf first.
 */
export function encodePkcs7Certificates(certs: readonly Certificate[]): Uint8Array {
  if (certs.length === 0)
    throw new PkiError(
      'ERR_PKI_INVALID_ARGUMENT',
      'a PKCS#7 bundle needs at least one certificate',
    );
  const signedData = enc.seq(
    enc.int(1),
    der.tlv(Tag.SET),
    enc.seq(enc.oid(CMS.data)),
    der.tlv(der.ctx(0, true), ...certs.map((c) => c.der)),
    der.tlv(Tag.SET),
  );
  return enc.seq(enc.oid(CMS.signedData), enc.ctx(0, signedData));
}
