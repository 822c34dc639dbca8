/**
 * CMS SignedData and EnvelopedData (RFC 5652), the subset SCEP (RFC 8894 §3) needs.
 *
 * - {@link parseSignedData} / {@link verifySigner} / {@link buildSignedData}: SignedData with
 *   signed attributes (§5.3–§5.6), RSA PKCS#1 v1.5 and ECDSA signers. BER input is accepted
 *   (indefinite lengths, constructed OCTET STRINGs); the signed attributes are verified over
 *   their bytes as received, re-tagged as SET OF (§5.4), never over a re-encoding.
 * - {@link decryptEnvelopedData} / {@link buildEnvelopedData}: EnvelopedData (§6) with
 *   KeyTransRecipientInfo and rsaEncryption (PKCS#1 v1.5) key transport, which every observed
 *   SCEP client uses, and DES/3DES/AES-CBC content encryption. Single DES is decrypt-only
 *   (des.ts).
 *
 * No oracle (style principle 8): every decryption failure, whether no recipient matches, the
 * key unwrap fails, the key has the wrong length or the padding is wrong, throws the same
 * {@link PkiError} code and message. The RSA unwrap relies on OpenSSL ≥ 3.2 implicit rejection
 * (Node 24), so a wrong key usually surfaces as a padding failure, indistinguishable here.
 *
 * ```asn1
 * ContentInfo ::= SEQUENCE { contentType ContentType, content [0] EXPLICIT ANY }
 * SignedData ::= SEQUENCE { version CMSVersion, digestAlgorithms SET OF AlgorithmIdentifier,
 *   encapContentInfo EncapsulatedContentInfo, certificates [0] IMPLICIT CertificateSet OPTIONAL,
 *   crls [1] IMPLICIT RevocationInfoChoices OPTIONAL, signerInfos SET OF SignerInfo }
 * EncapsulatedContentInfo ::= SEQUENCE { eContentType ContentType,
 *   eContent [0] EXPLICIT OCTET STRING OPTIONAL }
 * SignerInfo ::= SEQUENCE { version CMSVersion, sid SignerIdentifier,
 *   digestAlgorithm AlgorithmIdentifier, signedAttrs [0] IMPLICIT SignedAttributes OPTIONAL,
 *   signatureAlgorithm AlgorithmIdentifier, signature OCTET STRING,
 *   unsignedAttrs [1] IMPLICIT UnsignedAttributes OPTIONAL }
 * SignerIdentifier ::= CHOICE { issuerAndSerialNumber IssuerAndSerialNumber,
 *   subjectKeyIdentifier [0] SubjectKeyIdentifier }
 * IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber CertificateSerialNumber }
 * Attribute ::= SEQUENCE { attrType OBJECT IDENTIFIER, attrValues SET OF AttributeValue }
 * EnvelopedData ::= SEQUENCE { version CMSVersion, originatorInfo [0] IMPLICIT OPTIONAL,
 *   recipientInfos SET OF RecipientInfo, encryptedContentInfo EncryptedContentInfo,
 *   unprotectedAttrs [1] IMPLICIT OPTIONAL }
 * KeyTransRecipientInfo ::= SEQUENCE { version CMSVersion, rid RecipientIdentifier,
 *   keyEncryptionAlgorithm AlgorithmIdentifier, encryptedKey OCTET STRING }
 * RecipientIdentifier ::= CHOICE { issuerAndSerialNumber IssuerAndSerialNumber,
 *   subjectKeyIdentifier [0] SubjectKeyIdentifier }
 * EncryptedContentInfo ::= SEQUENCE { contentType ContentType,
 *   contentEncryptionAlgorithm AlgorithmIdentifier,
 *   encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
 * ```
 */
import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  publicEncrypt,
  randomBytes,
  timingSafeEqual,
  verify,
  type KeyObject,
} from 'node:crypto';
import * as der from './der.ts';
import { enc, Tag, type Asn1 } from './der.ts';
import { desCbcDecrypt } from './des.ts';
import { PkiError, malformed } from './errors.ts';
import { publicKeyFromSpki } from './keys.ts';
import { ALG, CMS, SIGNATURE_ALGS } from './oids.ts';
import { MAX_BUNDLE_CERTIFICATES } from './pkcs7.ts';
import { decryptWith, keyTypeOf, signWith, type PrivateKeyRef } from './key-ref.ts';
import { signatureAlgorithmFor } from './sign.ts';
import {
  certificateFromAsn1,
  parseName,
  subjectKeyIdentifier,
  type Certificate,
  type Name,
} from './x509.ts';

/** Digest algorithms (RFC 3370 §2, RFC 5754 §2): OID → Node hash name. */
export const DIGEST_ALGS: Readonly<Record<string, string>> = {
  '1.2.840.113549.2.5': 'md5',
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** CMS signed attributes (RFC 5652 §11). */
export const CMS_ATTR = {
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
} as const;

/** Content-encryption algorithms we read, by OID (RFC 8018 B.2, RFC 3565 §4.1). */
const CONTENT_CIPHERS = {
  '1.3.14.3.2.7': { name: 'des-cbc', keyLength: 8 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLength: 32 },
} as const;

/** A content-encryption cipher this module decrypts. */
export type ContentCipher = (typeof CONTENT_CIPHERS)[keyof typeof CONTENT_CIPHERS]['name'];
/** Ciphers {@link buildEnvelopedData} writes: never single DES (RFC 8894 §3.5.2). */
export type EnvelopeCipher = Exclude<ContentCipher, 'des-cbc'>;
/** Digests {@link buildSignedData} signs with. */
export type SignedDataDigest = 'sha1' | 'sha256' | 'sha512';

const CIPHER_OIDS = Object.fromEntries(
  Object.entries(CONTENT_CIPHERS).map(([oid, c]) => [c.name, oid]),
) as Record<ContentCipher, string>;
const DIGEST_OIDS = Object.fromEntries(
  Object.entries(DIGEST_ALGS).map(([oid, name]) => [name, oid]),
) as Record<string, string>;

/** SignerIdentifier (RFC 5652 §5.3). */
export type SignerIdentifier =
  | { readonly kind: 'issuerAndSerialNumber'; readonly issuer: Name; readonly serial: Uint8Array }
  | { readonly kind: 'subjectKeyIdentifier'; readonly keyId: Uint8Array };

/** One SignerInfo. Byte fields are views into the parsed input. */
export interface SignerInfo {
  readonly sid: SignerIdentifier;
  /** Digest algorithm OID. */
  readonly digestAlgorithm: string;
  /** signedAttrs exactly as received, with the [0] IMPLICIT tag replaced by SET (0x31): the signed bytes. Null when absent. */
  readonly signedAttrs: Uint8Array | null;
  /** Signed attributes: OID → raw DER values. */
  readonly attributes: ReadonlyMap<string, readonly Uint8Array[]>;
  readonly signatureAlgorithm: string;
  readonly signature: Uint8Array;
}

/** A parsed SignedData. */
export interface SignedData {
  /** eContentType. */
  readonly contentType: string;
  /** eContent with constructed OCTET STRING segments joined, or null when absent (detached). */
  readonly content: Uint8Array | null;
  readonly certificates: readonly Certificate[];
  readonly signers: readonly SignerInfo[];
}

/** Safety cap on signers and attributes (hostile input guard). */
const MAX_ITEMS = 64;

/**
 * Parses a ContentInfo holding a SignedData. Signatures are not checked here
 * ({@link verifySigner}). Throws {@link PkiError} on anything that is not a SignedData.
 */
export function parseSignedData(bytes: Uint8Array): SignedData {
  const [type, content] = der.seq(der.decode(bytes), 'ContentInfo');
  const t = der.oid(der.expect(type, Tag.OID, 'contentType'));
  if (t !== CMS.signedData) throw malformed(`content type ${t} is not signedData`);
  const sd = der.seq(
    der.children(der.expect(content, der.ctx(0, true), 'content'))[0],
    'SignedData',
  );
  let i = 1; // version
  der.expect(sd[i++], Tag.SET, 'digestAlgorithms');
  const [eType, eContent] = der.seq(sd[i++], 'encapContentInfo');
  const contentType = der.oid(der.expect(eType, Tag.OID, 'eContentType'));
  let econtent: Uint8Array | null = null;
  if (eContent) {
    const inner = der.children(der.expect(eContent, der.ctx(0, true), 'eContent'))[0];
    econtent = der.octets(der.expect(inner, Tag.OCTET_STRING, 'eContent'));
  }
  const certificates: Certificate[] = [];
  if (sd[i]?.tag === der.ctx(0, true)) {
    for (const c of der.children(sd[i++]!)) {
      if (c.tag !== Tag.SEQUENCE) continue;
      if (certificates.length === MAX_BUNDLE_CERTIFICATES)
        throw new PkiError('ERR_PKI_LIMIT', `more than ${MAX_BUNDLE_CERTIFICATES} certificates`);
      certificates.push(certificateFromAsn1(c));
    }
  }
  if (sd[i]?.tag === der.ctx(1, true)) i++;
  const infos = der.children(der.expect(sd[i], Tag.SET, 'signerInfos'));
  if (infos.length > MAX_ITEMS) throw new PkiError('ERR_PKI_LIMIT', 'too many signers');
  return { contentType, content: econtent, certificates, signers: infos.map(parseSignerInfo) };
}

function parseSignerInfo(node: Asn1): SignerInfo {
  const f = der.seq(node, 'SignerInfo');
  let i = 1;
  const sid = parseIdentifier(f[i++], 'sid');
  const digestAlgorithm = der.oid(der.seq(f[i++], 'digestAlgorithm')[0]!);
  let signedAttrs: Uint8Array | null = null;
  const attributes = new Map<string, Uint8Array[]>();
  if (f[i]?.tag === der.ctx(0, true)) {
    const a = f[i++]!;
    signedAttrs = Uint8Array.from(der.raw(a));
    signedAttrs[0] = Tag.SET;
    const attrs = der.children(a);
    if (attrs.length > MAX_ITEMS) throw new PkiError('ERR_PKI_LIMIT', 'too many signed attributes');
    for (const attr of attrs) {
      const [t, vals] = der.seq(attr, 'Attribute');
      const oid = der.oid(der.expect(t, Tag.OID, 'attrType'));
      if (attributes.has(oid)) throw malformed(`signed attribute ${oid} appears twice`);
      attributes.set(oid, der.children(der.expect(vals, Tag.SET, 'attrValues')).map(der.raw));
    }
  }
  const signatureAlgorithm = der.oid(der.seq(f[i++], 'signatureAlgorithm')[0]!);
  const signature = der.octets(der.expect(f[i], Tag.OCTET_STRING, 'signature'));
  return { sid, digestAlgorithm, signedAttrs, attributes, signatureAlgorithm, signature };
}

function parseIdentifier(n: Asn1 | undefined, what: string): SignerIdentifier {
  if (n?.tag === der.ctx(0, false)) return { kind: 'subjectKeyIdentifier', keyId: der.value(n) };
  const [issuer, serial] = der.seq(n, what);
  const s = der.value(der.expect(serial, Tag.INTEGER, 'serialNumber'));
  let k = 0;
  while (k < s.length - 1 && s[k] === 0) k++;
  return {
    kind: 'issuerAndSerialNumber',
    issuer: parseName(issuer, 'issuer'),
    serial: s.subarray(k),
  };
}

/** True when `cert` is the one `sid` names (issuer DER and serial, or subjectKeyIdentifier). */
export function identifies(sid: SignerIdentifier, cert: Certificate): boolean {
  if (sid.kind === 'subjectKeyIdentifier') {
    return subjectKeyIdentifier(cert) === Buffer.from(sid.keyId).toString('hex');
  }
  return der.bytesEqual(sid.issuer.der, cert.issuer.der) && der.bytesEqual(sid.serial, cert.serial);
}

/** The certificate of `signed.certificates` that `signer` names, if any. */
export function signerCertificate(signed: SignedData, signer: SignerInfo): Certificate | undefined {
  return signed.certificates.find((c) => identifies(signer.sid, c));
}

/**
 * Verifies one signer (RFC 5652 §5.6): with signed attributes, messageDigest must equal the
 * digest of the content and contentType (when present) the eContentType; the signature is then
 * checked over the re-tagged attributes. RSA PKCS#1 v1.5 (including the bare rsaEncryption OID
 * that SCEP clients put in signatureAlgorithm) and ECDSA. Returns false, never throws, on a bad
 * signature, an unknown algorithm, an unusable key or a detached (absent) content.
 */
export function verifySigner(signed: SignedData, signer: SignerInfo, cert: Certificate): boolean {
  try {
    const hash = DIGEST_ALGS[signer.digestAlgorithm];
    if (!hash || signed.content === null) return false;
    let data: Uint8Array = signed.content;
    if (signer.signedAttrs) {
      const md = signer.attributes.get(CMS_ATTR.messageDigest);
      if (md?.length !== 1) return false;
      const expected = der.octets(
        der.expect(der.decode(md[0]!), Tag.OCTET_STRING, 'messageDigest'),
      );
      const actual = createHash(hash).update(signed.content).digest();
      if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return false;
      const ct = signer.attributes.get(CMS_ATTR.contentType);
      if (ct && (ct.length !== 1 || der.oid(der.decode(ct[0]!)) !== signed.contentType))
        return false;
      data = signer.signedAttrs;
    }
    const key = publicKeyFromSpki(cert.spki);
    const sigHash = signatureHash(signer.signatureAlgorithm, hash, key);
    if (!sigHash) return false;
    return verify(sigHash, data, key, signer.signature);
  } catch {
    return false;
  }
}

/** The hash Node's `verify` needs, or null when the algorithm does not fit the key. */
function signatureHash(sigAlg: string, digest: string, key: KeyObject): string | null {
  const type = key.asymmetricKeyType;
  if (sigAlg === ALG.rsaEncryption) return type === 'rsa' ? digest : null;
  if (sigAlg === ALG.ecPublicKey) return type === 'ec' ? digest : null;
  const alg = SIGNATURE_ALGS[sigAlg];
  if (!alg?.hash) return null;
  if (alg.key === 'rsa' && type === 'rsa') return alg.hash;
  if (alg.key === 'ec' && type === 'ec') return alg.hash;
  return null;
}

/** Options of {@link buildSignedData}. */
export interface BuildSignedDataOptions {
  /** eContentType OID (id-data for SCEP). */
  readonly contentType: string;
  readonly content: Uint8Array;
  readonly signer: { readonly certificate: Certificate; readonly key: PrivateKeyRef };
  readonly digest: SignedDataDigest;
  /** Extra signed attributes, each value raw DER; contentType and messageDigest are added here. */
  readonly signedAttributes?: readonly {
    readonly oid: string;
    readonly values: readonly Uint8Array[];
  }[];
  readonly certificates?: readonly Certificate[];
  /** signingTime attribute; defaults to now. */
  readonly signingTime?: Date;
}

/**
 * Builds a ContentInfo/SignedData with one signer (sid = issuerAndSerialNumber), adding the
 * contentType, messageDigest and signingTime attributes and DER-sorting the attribute SET.
 * RSA keys sign with sha*WithRSAEncryption (PKCS#1 v1.5), EC keys with ecdsa-with-SHA*. The
 * signature is made in a private-key thread (key-threads.ts), off the event loop.
 * Certs-only bundles (no signer) are pkcs7.ts's `encodePkcs7Certificates`.
 */
export async function buildSignedData(o: BuildSignedDataOptions): Promise<Uint8Array> {
  const digestOid = DIGEST_OIDS[o.digest]!;
  const sigAlg = signatureAlgorithmFor(o.signer.key, o.digest);
  const attrs = [
    attribute(CMS_ATTR.contentType, [enc.oid(o.contentType)]),
    attribute(CMS_ATTR.messageDigest, [
      enc.octets(createHash(o.digest).update(o.content).digest()),
    ]),
    attribute(CMS_ATTR.signingTime, [enc.time(o.signingTime ?? new Date())]),
    ...(o.signedAttributes ?? []).map((a) => attribute(a.oid, a.values)),
  ];
  const signedAttrs = enc.setOf(...attrs);
  const signature = await signWith(o.signer.key, signedAttrs, sigAlg.hash);
  const cert = o.signer.certificate;
  const digestAlg = enc.seq(enc.oid(digestOid));
  const signerInfo = enc.seq(
    enc.int(1),
    enc.seq(cert.issuer.der, enc.uint(cert.serial)),
    digestAlg,
    der.tlv(der.ctx(0, true), der.value(der.decode(signedAttrs))),
    sigAlg.algorithmIdentifier,
    enc.octets(signature),
  );
  const certs = o.certificates ?? [];
  const signedData = enc.seq(
    enc.int(o.contentType === CMS.data ? 1 : 3),
    enc.setOf(digestAlg),
    enc.seq(enc.oid(o.contentType), enc.ctx(0, enc.octets(o.content))),
    ...(certs.length ? [der.tlv(der.ctx(0, true), ...certs.map((c) => c.der))] : []),
    enc.setOf(signerInfo),
  );
  return enc.seq(enc.oid(CMS.signedData), enc.ctx(0, signedData));
}

function attribute(oid: string, values: readonly Uint8Array[]): Uint8Array {
  return enc.seq(enc.oid(oid), enc.setOf(...values));
}

// ---------------------------------------------------------------------------------------------
// EnvelopedData

/** The one error every decryption failure becomes (no padding or key oracle). */
function cannotDecrypt(): PkiError {
  return new PkiError('ERR_PKI_MALFORMED', 'cannot decrypt the enveloped data');
}

/** What {@link decryptEnvelopedData} returns. */
export interface DecryptedEnvelope {
  readonly content: Uint8Array;
  /** The content cipher the sender chose (SCEP answers in kind, see scep/message.ts). */
  readonly cipher: ContentCipher;
}

/**
 * Decrypts a ContentInfo/EnvelopedData (a bare EnvelopedData is accepted too) for `recipient`.
 * The KeyTransRecipientInfo naming the recipient certificate is used; when none does, the first
 * rsaEncryption recipient is tried anyway (clients that address the CA by a stale or odd
 * identifier). Every failure throws the same `PkiError('ERR_PKI_MALFORMED', 'cannot decrypt the
 * enveloped data')`.
 */
export async function decryptEnvelopedData(
  bytes: Uint8Array,
  recipient: { readonly certificate: Certificate; readonly key: PrivateKeyRef },
): Promise<DecryptedEnvelope> {
  try {
    return await decryptEnvelope(bytes, recipient);
  } catch {
    throw cannotDecrypt();
  }
}

async function decryptEnvelope(
  bytes: Uint8Array,
  recipient: { readonly certificate: Certificate; readonly key: PrivateKeyRef },
): Promise<DecryptedEnvelope> {
  let node = der.decode(bytes);
  const top = der.seq(node, 'ContentInfo');
  if (top[0]?.tag === Tag.OID) {
    if (der.oid(top[0]) !== CMS.envelopedData) throw malformed('not envelopedData');
    node = der.children(der.expect(top[1], der.ctx(0, true), 'content'))[0]!;
  }
  const ed = der.seq(node, 'EnvelopedData');
  let i = 1;
  if (ed[i]?.tag === der.ctx(0, true)) i++;
  const ktris = der
    .children(der.expect(ed[i++], Tag.SET, 'recipientInfos'))
    .filter((r) => r.tag === Tag.SEQUENCE)
    .map((r) => {
      const f = der.seq(r, 'KeyTransRecipientInfo');
      return {
        rid: parseIdentifier(f[1], 'rid'),
        alg: der.oid(der.seq(f[2], 'keyEncryptionAlgorithm')[0]!),
        encryptedKey: der.octets(der.expect(f[3], Tag.OCTET_STRING, 'encryptedKey')),
      };
    })
    .filter((r) => r.alg === ALG.rsaEncryption);
  const ktri = ktris.find((r) => identifies(r.rid, recipient.certificate)) ?? ktris[0];
  if (!ktri) throw malformed('no RSA recipient');
  const [, algNode, encrypted] = der.seq(ed[i], 'EncryptedContentInfo');
  const [algOid, params] = der.seq(algNode, 'contentEncryptionAlgorithm');
  const cipher = CONTENT_CIPHERS[der.oid(algOid!) as keyof typeof CONTENT_CIPHERS];
  if (!cipher || !encrypted) throw malformed('unsupported cipher or no content');
  const iv = der.octets(der.expect(params, Tag.OCTET_STRING, 'iv'));
  const ciphertext = der.octets(encrypted);
  if (keyTypeOf(recipient.key) !== 'rsa') throw malformed('not an RSA recipient key');
  const key = await decryptWith(recipient.key, ktri.encryptedKey);
  if (key.length !== cipher.keyLength || ciphertext.length === 0 || ciphertext.length % 8) {
    throw malformed('bad key or ciphertext length');
  }
  let padded: Uint8Array;
  if (cipher.name === 'des-cbc') padded = desCbcDecrypt(key, iv, ciphertext);
  else {
    const d = createDecipheriv(cipher.name, contentKey(key), iv).setAutoPadding(false);
    padded = Buffer.concat([d.update(ciphertext), d.final()]);
  }
  return { content: unpad(padded, cipher.name.startsWith('aes') ? 16 : 8), cipher: cipher.name };
}

/**
 * A content-encryption key as a KeyObject. Given bytes, `createCipheriv` first asks whether
 * they are a KeyObject, then a CryptoKey, and Node answers each question by throwing and
 * catching a TypeError (stack trace included): ~10 µs per cipher on a SCEP request's path.
 * `createSecretKey` takes bytes only, and a KeyObject is recognised at the first question.
 */
function contentKey(key: Uint8Array): KeyObject {
  return createSecretKey(key);
}

/** Removes PKCS#7 padding (RFC 5652 §6.3), checking every pad byte without an early exit. */
function unpad(data: Uint8Array, blockSize: number): Uint8Array {
  const n = data[data.length - 1]!;
  let bad = n === 0 || n > blockSize || data.length % blockSize !== 0 ? 1 : 0;
  for (let k = 1; k <= blockSize; k++) {
    const inPad = k <= n ? 1 : 0;
    bad |= inPad & (data[data.length - k] !== n ? 1 : 0);
  }
  if (bad) throw malformed('bad padding');
  return new Uint8Array(data.buffer, data.byteOffset, data.length - n);
}

/**
 * Encrypts `content` to the RSA key of `recipientCert`: ContentInfo/EnvelopedData version 0,
 * one KeyTransRecipientInfo (issuerAndSerialNumber, rsaEncryption PKCS#1 v1.5), a fresh key and
 * IV, inner content type id-data.
 */
export function buildEnvelopedData(
  content: Uint8Array,
  recipientCert: Certificate,
  cipher: EnvelopeCipher,
): Uint8Array {
  const keyLength = CONTENT_CIPHERS[CIPHER_OIDS[cipher] as keyof typeof CONTENT_CIPHERS].keyLength;
  const key = randomBytes(keyLength);
  const iv = randomBytes(cipher.startsWith('aes') ? 16 : 8);
  const c = createCipheriv(cipher, contentKey(key), iv);
  const ciphertext = Buffer.concat([c.update(content), c.final()]);
  const publicKey = publicKeyFromSpki(recipientCert.spki);
  if (publicKey.asymmetricKeyType !== 'rsa')
    throw new PkiError('ERR_PKI_UNSUPPORTED', 'the recipient certificate has no RSA key');
  const encryptedKey = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, key);
  const ktri = enc.seq(
    enc.int(0),
    enc.seq(recipientCert.issuer.der, enc.uint(recipientCert.serial)),
    enc.seq(enc.oid(ALG.rsaEncryption), enc.null()),
    enc.octets(encryptedKey),
  );
  const eci = enc.seq(
    enc.oid(CMS.data),
    enc.seq(enc.oid(CIPHER_OIDS[cipher]), enc.octets(iv)),
    enc.ctxPrim(0, ciphertext),
  );
  return enc.seq(enc.oid(CMS.envelopedData), enc.ctx(0, enc.seq(enc.int(0), enc.setOf(ktri), eci)));
}
