/**
 * SCEP pkiMessage codec (RFC 8894 §3): requests and CertRep, as pure functions over bytes.
 *
 * A pkiMessage is a CMS SignedData (signed by the requester, or by the CA for CertRep) whose
 * id-data content is a pkcsPKIEnvelope: an EnvelopedData (to the CA for requests, to the
 * requester's signing certificate for CertRep SUCCESS) holding the messageData (§3.3):
 *
 * ```asn1
 * -- PKCSReq (19), RenewalReq (17): a PKCS#10 CertificationRequest (RFC 2986)
 * IssuerAndSubject ::= SEQUENCE { issuer Name, subject Name }            -- CertPoll (20)
 * IssuerAndSerialNumber ::= SEQUENCE { issuer Name, serialNumber INTEGER } -- GetCert (21), GetCRL (22)
 * -- CertRep (3) SUCCESS: a degenerate certs-only SignedData (RFC 8894 §3.3.2)
 * ```
 * Signed attributes (§3.2.1): messageType, pkiStatus, failInfo, transactionID (PrintableString),
 * senderNonce, recipientNonce (OCTET STRING), failInfoText (UTF8String, RFC 8894 §3.2.1.4.6).
 *
 * Error contract: bytes that are not a SignedData throw `PkiError` (HTTP 400 at the edge); a
 * parseable message that fails signature, attribute or envelope checks throws {@link ScepError}
 * (answered with a signed CertRep FAILURE, failInfo from errors.ts's table). Envelope failures
 * are all badMessageCheck with one message (no decryption oracle).
 *
 * Interop (measured against micromdm `scepclient` 2.1.0, see message.test.ts): it requests
 * with SHA-1 and single DES whatever GetCACaps offers; it accepts CertRep SUCCESS encrypted
 * with AES-128-CBC, AES-256-CBC and 3DES, and signed with SHA-1, SHA-256 or SHA-512. Hence
 * {@link replyCipher}: the request's cipher, except single DES → AES-128-CBC (RFC 8894
 * §3.5.2: DES MUST NOT be used; AES-128-CBC is the mandatory-to-implement cipher).
 */
import {
  buildEnvelopedData,
  buildSignedData,
  decryptEnvelopedData,
  DIGEST_ALGS,
  parseSignedData,
  signerCertificate,
  verifySigner,
  type ContentCipher,
  type EnvelopeCipher,
  type SignedDataDigest,
} from '../pki/cms.ts';
import { parseCsr, type CertificationRequest } from '../pki/csr.ts';
import * as der from '../pki/der.ts';
import { enc, Tag, type Asn1 } from '../pki/der.ts';
import { isPkiError, malformed } from '../pki/errors.ts';
import type { PrivateKeyRef } from '../pki/key-ref.ts';
import { CMS } from '../pki/oids.ts';
import { encodePkcs7Certificates, parsePkcs7Certificates, parsePkcs7Crls } from '../pki/pkcs7.ts';
import { parseName, type Certificate, type Name } from '../pki/x509.ts';
import { FailInfo, ScepError, type ScepErrorContext } from './errors.ts';

export { FailInfo } from './errors.ts';

/** messageType values (RFC 8894 §3.2.1.2). */
export const MessageType = {
  CertRep: 3,
  RenewalReq: 17,
  PKCSReq: 19,
  CertPoll: 20,
  GetCert: 21,
  GetCRL: 22,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** pkiStatus values (RFC 8894 §3.2.1.3). */
export const PkiStatus = { SUCCESS: 0, FAILURE: 2, PENDING: 3 } as const;
export type PkiStatus = (typeof PkiStatus)[keyof typeof PkiStatus];

/** SCEP signed-attribute OIDs (RFC 8894 §3.2.1). */
export const SCEP_ATTR = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
  failInfoText: '1.3.6.1.5.5.7.24.1',
} as const;

function nameOf(table: Readonly<Record<string, number>>, value: number): string {
  const name = Object.keys(table).find((k) => table[k] === value);
  return `${name ?? 'unknown'} (${value})`;
}

/** "PKCSReq (19)"; unknown values print as "unknown (n)". */
export function formatMessageType(value: number): string {
  return nameOf(MessageType, value);
}
/** "SUCCESS (0)"; unknown values print as "unknown (n)". */
export function formatPkiStatus(value: number): string {
  return nameOf(PkiStatus, value);
}
/** "badRequest (2)", micromdm's wording; unknown values print as "unknown (n)". */
export function formatFailInfo(value: number): string {
  return nameOf(FailInfo, value);
}

/** The cipher a CertRep answers a request in: the request's own, but never single DES. */
export function replyCipher(requestCipher: ContentCipher): EnvelopeCipher {
  return requestCipher === 'des-cbc' ? 'aes-128-cbc' : requestCipher;
}

/** The digest a CertRep is signed with: the request's when we sign with it, else SHA-256. */
export function replyDigest(requestDigest: string): SignedDataDigest {
  return requestDigest === 'sha1' || requestDigest === 'sha512' ? requestDigest : 'sha256';
}

/** A pkiMessage whose signature has been verified. */
export interface PkiMessage {
  /** One of {@link MessageType}, or another number a client sent (refused by openRequest). */
  readonly messageType: number;
  readonly transactionId: string;
  readonly senderNonce: Uint8Array;
  readonly recipientNonce?: Uint8Array;
  readonly pkiStatus?: number;
  readonly failInfo?: number;
  readonly failInfoText?: string;
  /** The certificate that signed the message (self-signed for a first enrollment). */
  readonly signerCertificate: Certificate;
  /** Every certificate the SignedData carried. */
  readonly certificates: readonly Certificate[];
  /** Node hash name of the signer's digest algorithm ('sha1', 'sha256', …). */
  readonly digestAlgorithm: string;
  /** The encapsulated pkcsPKIEnvelope (ContentInfo/EnvelopedData DER), or null when empty. */
  readonly envelope: Uint8Array | null;
}

/** Upper bound on a nonce; RFC 8894 §3.2.1.5 says 16 bytes, some clients differ. */
const MAX_NONCE = 64;

function printable(n: Asn1): string {
  return der.string(der.expect(n, Tag.PRINTABLE_STRING, 'PrintableString'));
}

function decimal(n: Asn1): number {
  const s = printable(n);
  if (!/^\d{1,5}$/.test(s)) throw malformed(`"${s}" is not a small decimal`);
  return Number(s);
}

function nonce(n: Asn1): Uint8Array {
  const v = der.octets(der.expect(n, Tag.OCTET_STRING, 'nonce'));
  if (v.length === 0 || v.length > MAX_NONCE) throw malformed(`nonce of ${v.length} bytes`);
  return v;
}

/**
 * Parses and verifies a pkiMessage. The signer certificate is the one in the SignedData that
 * the (first) SignerInfo names; attribute values are only trusted once the signature verifies. Throws `PkiError` for bytes that are not a SignedData, and
 * {@link ScepError} ERR_SCEP_BAD_MESSAGE_CHECK when there is no signer, no matching certificate,
 * a signature that does not verify or a required attribute (messageType, transactionID,
 * senderNonce) is missing; ERR_SCEP_BAD_REQUEST for malformed attribute values. The error's
 * `context` carries the transactionID and senderNonce when they could be read.
 */
export function parsePkiMessage(bytes: Uint8Array): PkiMessage {
  const signed = parseSignedData(bytes);
  const signer = signed.signers[0];
  const context: { transactionId?: string; senderNonce?: Uint8Array; messageType?: number } = {};
  const fail = (code: 'ERR_SCEP_BAD_MESSAGE_CHECK' | 'ERR_SCEP_BAD_REQUEST', detail: string) =>
    new ScepError(code, detail, context);
  if (!signer) throw fail('ERR_SCEP_BAD_MESSAGE_CHECK', 'the pkiMessage has no signer');
  const attrs = signer.attributes;
  const first = (oid: string): Asn1 | undefined => {
    const v = attrs.get(oid);
    if (!v) return undefined;
    if (v.length !== 1) throw fail('ERR_SCEP_BAD_REQUEST', `attribute ${oid} must have one value`);
    return der.decode(v[0]!);
  };
  const read = <T>(oid: string, f: (n: Asn1) => T): T | undefined => {
    try {
      const n = first(oid);
      return n === undefined ? undefined : f(n);
    } catch (e) {
      if (e instanceof ScepError) throw e;
      throw fail('ERR_SCEP_BAD_REQUEST', `attribute ${oid} is malformed`);
    }
  };
  // Best effort before the signature check, so even a refusal can echo the transaction.
  const peek = <T>(oid: string, f: (n: Asn1) => T): T | undefined => {
    try {
      return read(oid, f);
    } catch {
      return undefined;
    }
  };
  const peeked = {
    transactionId: peek(SCEP_ATTR.transactionID, printable),
    senderNonce: peek(SCEP_ATTR.senderNonce, nonce),
    messageType: peek(SCEP_ATTR.messageType, decimal),
  };
  if (peeked.transactionId !== undefined) context.transactionId = peeked.transactionId;
  if (peeked.senderNonce !== undefined) context.senderNonce = peeked.senderNonce;
  if (peeked.messageType !== undefined) context.messageType = peeked.messageType;

  const cert = signerCertificate(signed, signer);
  if (!cert) throw fail('ERR_SCEP_BAD_MESSAGE_CHECK', 'the signer certificate is not included');
  if (!verifySigner(signed, signer, cert))
    throw fail('ERR_SCEP_BAD_MESSAGE_CHECK', 'the pkiMessage signature does not verify');
  const transactionId = read(SCEP_ATTR.transactionID, printable);
  const senderNonce = read(SCEP_ATTR.senderNonce, nonce);
  const messageType = read(SCEP_ATTR.messageType, decimal);
  if (messageType === undefined || transactionId === undefined || senderNonce === undefined)
    throw fail('ERR_SCEP_BAD_MESSAGE_CHECK', 'messageType, transactionID or senderNonce missing');
  if (signed.contentType !== CMS.data)
    throw fail('ERR_SCEP_BAD_REQUEST', `content type ${signed.contentType} is not id-data`);

  const recipientNonce = read(SCEP_ATTR.recipientNonce, nonce);
  const pkiStatus = read(SCEP_ATTR.pkiStatus, decimal);
  const failInfo = read(SCEP_ATTR.failInfo, decimal);
  const failInfoText = read(SCEP_ATTR.failInfoText, (n) =>
    der.string(der.expect(n, Tag.UTF8_STRING, 'UTF8String')),
  );
  return {
    messageType,
    transactionId,
    senderNonce,
    ...(recipientNonce !== undefined ? { recipientNonce } : {}),
    ...(pkiStatus !== undefined ? { pkiStatus } : {}),
    ...(failInfo !== undefined ? { failInfo } : {}),
    ...(failInfoText !== undefined ? { failInfoText } : {}),
    signerCertificate: cert,
    certificates: signed.certificates,
    digestAlgorithm: DIGEST_ALGS[signer.digestAlgorithm]!,
    envelope: signed.content && signed.content.length > 0 ? signed.content : null,
  };
}

/** The decrypted messageData of a request, by type (RFC 8894 §3.3). */
export type OpenedRequest = (
  | {
      readonly messageType: typeof MessageType.PKCSReq | typeof MessageType.RenewalReq;
      readonly csr: CertificationRequest;
    }
  | {
      readonly messageType: typeof MessageType.CertPoll;
      readonly issuerAndSubject: { readonly issuer: Name; readonly subject: Name };
    }
  | {
      readonly messageType: typeof MessageType.GetCert | typeof MessageType.GetCRL;
      readonly issuerAndSerial: { readonly issuer: Name; readonly serial: Uint8Array };
    }
) & {
  /** The request's content cipher; answer with {@link replyCipher} of it. */
  readonly cipher: ContentCipher;
};

/**
 * Decrypts a request's envelope with the CA (or RA) decryption key and decodes its
 * messageData. Throws {@link ScepError}: ERR_SCEP_UNSUPPORTED_MESSAGE for CertRep or unknown
 * message types, ERR_SCEP_BAD_MESSAGE_CHECK for a missing envelope or one that does not
 * decrypt, ERR_SCEP_BAD_REQUEST for messageData that does not decode. The CSR's own signature
 * is not checked here (the issuance policy does it).
 */
export async function openRequest(
  msg: PkiMessage,
  ca: { readonly certificate: Certificate; readonly key: PrivateKeyRef },
): Promise<OpenedRequest> {
  const context: ScepErrorContext = {
    transactionId: msg.transactionId,
    senderNonce: msg.senderNonce,
    messageType: msg.messageType,
  };
  const t = msg.messageType;
  if (
    t !== MessageType.PKCSReq &&
    t !== MessageType.RenewalReq &&
    t !== MessageType.CertPoll &&
    t !== MessageType.GetCert &&
    t !== MessageType.GetCRL
  ) {
    throw new ScepError(
      'ERR_SCEP_UNSUPPORTED_MESSAGE',
      `message type ${formatMessageType(t)} is not a request`,
      context,
    );
  }
  if (!msg.envelope)
    throw new ScepError('ERR_SCEP_BAD_MESSAGE_CHECK', 'the request has no envelope', context);
  let content: Uint8Array;
  let cipher: ContentCipher;
  try {
    ({ content, cipher } = await decryptEnvelopedData(msg.envelope, ca));
  } catch (e) {
    throw new ScepError('ERR_SCEP_BAD_MESSAGE_CHECK', 'cannot decrypt the envelope', context, {
      cause: e,
    });
  }
  try {
    if (t === MessageType.PKCSReq || t === MessageType.RenewalReq)
      return { messageType: t, csr: parseCsr(content), cipher };
    const [a, b] = der.seq(der.decode(content), 'messageData');
    if (t === MessageType.CertPoll)
      return {
        messageType: t,
        issuerAndSubject: { issuer: parseName(a, 'issuer'), subject: parseName(b, 'subject') },
        cipher,
      };
    const serial = der.value(der.expect(b, Tag.INTEGER, 'serialNumber'));
    let k = 0;
    while (k < serial.length - 1 && serial[k] === 0) k++;
    return {
      messageType: t,
      issuerAndSerial: { issuer: parseName(a, 'issuer'), serial: serial.subarray(k) },
      cipher,
    };
  } catch (e) {
    if (!isPkiError(e)) throw e;
    throw new ScepError('ERR_SCEP_BAD_REQUEST', `messageData: ${e.message}`, context, { cause: e });
  }
}

/** A signing identity: certificate and its private key. */
export interface ScepIdentity {
  readonly certificate: Certificate;
  readonly key: PrivateKeyRef;
}

/** Options of {@link buildPkiRequest} (the client side). */
export interface PkiRequestOptions {
  readonly messageType:
    | typeof MessageType.PKCSReq
    | typeof MessageType.RenewalReq
    | typeof MessageType.CertPoll
    | typeof MessageType.GetCert
    | typeof MessageType.GetCRL;
  readonly transactionId: string;
  /** 16 fresh random bytes per message (RFC 8894 §3.2.1.5). */
  readonly senderNonce: Uint8Array;
  /** DER messageData: a CSR, IssuerAndSubject or IssuerAndSerialNumber. */
  readonly content: Uint8Array;
  /** Self-signed for a first enrollment, the current certificate for a renewal. */
  readonly signer: ScepIdentity;
  /** The CA/RA encryption certificate (RSA). */
  readonly recipient: Certificate;
  readonly cipher: EnvelopeCipher;
  readonly digest: SignedDataDigest;
  readonly signingTime?: Date;
}

/** Builds a request pkiMessage: messageData enveloped to the CA, signed by the requester. */
export function buildPkiRequest(o: PkiRequestOptions): Promise<Uint8Array> {
  return buildSignedData({
    contentType: CMS.data,
    content: buildEnvelopedData(o.content, o.recipient, o.cipher),
    signer: o.signer,
    digest: o.digest,
    signedAttributes: [
      { oid: SCEP_ATTR.messageType, values: [enc.printable(String(o.messageType))] },
      { oid: SCEP_ATTR.transactionID, values: [enc.printable(o.transactionId)] },
      { oid: SCEP_ATTR.senderNonce, values: [enc.octets(o.senderNonce)] },
    ],
    certificates: [o.signer.certificate],
    ...(o.signingTime ? { signingTime: o.signingTime } : {}),
  });
}

/** Options of {@link buildCertRep}. */
export interface CertRepOptions {
  readonly status: PkiStatus;
  /** Required with FAILURE, ignored otherwise. */
  readonly failInfo?: FailInfo;
  /** Sent with FAILURE only; keep it free of internal detail. */
  readonly failInfoText?: string;
  readonly transactionId: string;
  /** The request's senderNonce. */
  readonly recipientNonce: Uint8Array;
  /** 16 fresh random bytes (RFC 8894 §3.2.1.5), chosen by the caller. */
  readonly senderNonce: Uint8Array;
  /** SUCCESS: the issued certificate first (clients take the first), then any others. */
  readonly issued?: readonly Certificate[];
  /**
   * The certificate that signed the request: the SUCCESS envelope is encrypted to its RSA key.
   * Required for SUCCESS; absent when answering a request whose signature did not verify.
   */
  readonly requesterCertificate?: Certificate;
  readonly cipher: EnvelopeCipher;
  readonly digest: SignedDataDigest;
  /** The CA (or RA signing) identity that signs the CertRep. */
  readonly ca: ScepIdentity;
  /** Further CA certificates: appended to the issued ones in the envelope and carried outside. */
  readonly caChain?: readonly Certificate[];
  /** SUCCESS answering GetCRL: DER CRLs for the envelope's degenerate SignedData (§3.3.2.2). */
  readonly crls?: readonly Uint8Array[];
  readonly signingTime?: Date;
}

/**
 * Builds a CertRep (RFC 8894 §3.3.2), signed by the CA with messageType 3, pkiStatus,
 * transactionID, senderNonce and recipientNonce. SUCCESS envelopes a degenerate certs-only
 * SignedData (issued certificates, then `caChain`) to the requester; FAILURE adds failInfo and
 * optional failInfoText; FAILURE and PENDING carry an empty id-data content, as micromdm's
 * server does (clients verify the messageDigest of the empty string). The outer SignedData
 * carries the CA certificate (and `caChain`) so clients can verify it.
 */
export function buildCertRep(o: CertRepOptions): Promise<Uint8Array> {
  const attrs: { oid: string; values: Uint8Array[] }[] = [
    { oid: SCEP_ATTR.messageType, values: [enc.printable(String(MessageType.CertRep))] },
    { oid: SCEP_ATTR.pkiStatus, values: [enc.printable(String(o.status))] },
    { oid: SCEP_ATTR.transactionID, values: [enc.printable(o.transactionId)] },
    { oid: SCEP_ATTR.senderNonce, values: [enc.octets(o.senderNonce)] },
    { oid: SCEP_ATTR.recipientNonce, values: [enc.octets(o.recipientNonce)] },
  ];
  let content: Uint8Array = new Uint8Array(0);
  if (o.status === PkiStatus.FAILURE) {
    if (o.failInfo === undefined)
      throw new ScepError('ERR_SCEP_BAD_REQUEST', 'a CertRep FAILURE needs a failInfo');
    attrs.push({ oid: SCEP_ATTR.failInfo, values: [enc.printable(String(o.failInfo))] });
    if (o.failInfoText !== undefined)
      attrs.push({ oid: SCEP_ATTR.failInfoText, values: [enc.utf8(o.failInfoText)] });
  } else if (o.status === PkiStatus.SUCCESS) {
    const certs = [...(o.issued ?? []), ...(o.caChain ?? [])];
    const degenerate = o.crls?.length
      ? degenerateSignedData(certs, o.crls)
      : encodePkcs7Certificates(certs);
    if (!o.requesterCertificate)
      throw new ScepError(
        'ERR_SCEP_BAD_REQUEST',
        'a CertRep SUCCESS needs the requester certificate',
      );
    content = buildEnvelopedData(degenerate, o.requesterCertificate, o.cipher);
  }
  return buildSignedData({
    contentType: CMS.data,
    content,
    signer: o.ca,
    digest: o.digest,
    signedAttributes: attrs,
    certificates: [o.ca.certificate, ...(o.caChain ?? [])],
    ...(o.signingTime ? { signingTime: o.signingTime } : {}),
  });
}

/** A certs-and-CRLs-only SignedData (RFC 5652 §5, no signers), for GetCRL replies. */
function degenerateSignedData(
  certs: readonly Certificate[],
  crls: readonly Uint8Array[],
): Uint8Array {
  const signedData = enc.seq(
    enc.int(1),
    der.tlv(Tag.SET),
    enc.seq(enc.oid(CMS.data)),
    ...(certs.length ? [der.tlv(der.ctx(0, true), ...certs.map((c) => c.der))] : []),
    der.tlv(der.ctx(1, true), ...crls),
    der.tlv(Tag.SET),
  );
  return enc.seq(enc.oid(CMS.signedData), enc.ctx(0, signedData));
}

/** A verified CertRep, as the client sees it. */
export interface CertRep {
  readonly status: number;
  readonly failInfo?: number;
  readonly failInfoText?: string;
  readonly transactionId: string;
  readonly senderNonce: Uint8Array;
  readonly recipientNonce?: Uint8Array;
  readonly signerCertificate: Certificate;
  /** SUCCESS: the certificates of the envelope, issued certificate first; otherwise empty. */
  readonly certificates: readonly Certificate[];
  /** SUCCESS answering GetCRL: the DER CRLs of the envelope; otherwise empty. */
  readonly crls: readonly Uint8Array[];
  readonly cipher: ContentCipher | null;
}

/**
 * Parses, verifies and (for SUCCESS) decrypts a CertRep with the requester's key. When
 * `caCertificates` is given, the signer must be one of them (compared by DER). Throws like
 * {@link parsePkiMessage}; a message that is not a CertRep or lacks pkiStatus is
 * ERR_SCEP_UNSUPPORTED_MESSAGE / ERR_SCEP_BAD_MESSAGE_CHECK. Nonce matching is the caller's.
 */
export async function parseCertRep(
  bytes: Uint8Array,
  requester: ScepIdentity,
  caCertificates?: readonly Certificate[],
): Promise<CertRep> {
  const msg = parsePkiMessage(bytes);
  const context = { transactionId: msg.transactionId, senderNonce: msg.senderNonce };
  if (msg.messageType !== MessageType.CertRep)
    throw new ScepError('ERR_SCEP_UNSUPPORTED_MESSAGE', 'not a CertRep', context);
  if (msg.pkiStatus === undefined)
    throw new ScepError('ERR_SCEP_BAD_MESSAGE_CHECK', 'the CertRep has no pkiStatus', context);
  if (
    caCertificates &&
    !caCertificates.some((c) => der.bytesEqual(c.der, msg.signerCertificate.der))
  )
    throw new ScepError(
      'ERR_SCEP_BAD_MESSAGE_CHECK',
      'the CertRep is not signed by the CA',
      context,
    );
  let certificates: readonly Certificate[] = [];
  let crls: readonly Uint8Array[] = [];
  let cipher: ContentCipher | null = null;
  if (msg.pkiStatus === PkiStatus.SUCCESS) {
    if (!msg.envelope)
      throw new ScepError('ERR_SCEP_BAD_MESSAGE_CHECK', 'SUCCESS without an envelope', context);
    try {
      const opened = await decryptEnvelopedData(msg.envelope, requester);
      cipher = opened.cipher;
      certificates = parsePkcs7Certificates(opened.content);
      crls = parsePkcs7Crls(opened.content);
    } catch (e) {
      throw new ScepError(
        'ERR_SCEP_BAD_MESSAGE_CHECK',
        'cannot open the CertRep envelope',
        context,
        {
          cause: e,
        },
      );
    }
  }
  return {
    status: msg.pkiStatus,
    ...(msg.failInfo !== undefined ? { failInfo: msg.failInfo } : {}),
    ...(msg.failInfoText !== undefined ? { failInfoText: msg.failInfoText } : {}),
    transactionId: msg.transactionId,
    senderNonce: msg.senderNonce,
    ...(msg.recipientNonce !== undefined ? { recipientNonce: msg.recipientNonce } : {}),
    signerCertificate: msg.signerCertificate,
    certificates,
    crls,
    cipher,
  };
}
