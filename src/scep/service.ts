/**
 * The SCEP server as functions over bytes (RFC 8894 §3, §4): GetCACaps, GetCACert and
 * PKIOperation. No HTTP here: the adapter in `server/scep-http.ts` decodes the request and
 * calls these; tests call them directly.
 *
 * Error contract (RFC 8894 §3.3.2, style.md principle 7):
 * - bytes that are not a pkiMessage throw {@link PkiError} (the adapter answers HTTP 400);
 * - anything else gets a CertRep signed by the CA: SUCCESS, PENDING, or FAILURE with a
 *   failInfo from {@link REFUSAL_FAILINFO} — the one table from refusal codes to failInfo;
 * - a message whose signature or envelope does not check out gets FAILURE badMessageCheck
 *   with no further detail on the wire (no oracle; the detail goes to the log).
 * Replies use the request's digest and content cipher, except that a DES request is answered
 * with AES-128-CBC: single DES is never sent (design.md §3).
 */
import { randomBytes } from 'node:crypto';
import type { EnrollmentOutcome, EnrollmentService, RefusalCode } from '../ca/enrollment.ts';
import { buildSignedData } from '../pki/cms.ts';
import { PkiError } from '../pki/errors.ts';
import type { PrivateKeyRef } from '../pki/key-ref.ts';
import { CMS } from '../pki/oids.ts';
import { encodePkcs7Certificates } from '../pki/pkcs7.ts';
import { publicKeyInfo, type Certificate } from '../pki/x509.ts';
import { FailInfo, isScepError, type FailInfoName, type ScepError } from './errors.ts';
import {
  buildCertRep,
  MessageType,
  openRequest,
  parsePkiMessage,
  PkiStatus,
  replyCipher,
  replyDigest,
  type CertRepOptions,
  type OpenedRequest,
  type PkiMessage,
} from './message.ts';

/** failInfo for every refusal the enrollment service can give (exhaustive by type). */
export const REFUSAL_FAILINFO: Readonly<Record<RefusalCode, FailInfoName>> = {
  'challenge-missing': 'badRequest',
  'challenge-invalid': 'badRequest',
  'subject-mismatch': 'badRequest',
  'renewal-not-allowed': 'badRequest',
  'renewal-subject-mismatch': 'badRequest',
  'renewal-signer-unknown': 'badCertId',
  'unknown-profile': 'badRequest',
  rejected: 'badRequest',
  'unknown-transaction': 'badCertId',
  'unknown-certificate': 'badCertId',
  'bad-signature': 'badMessageCheck',
  'key-not-allowed': 'badAlg',
  'san-not-allowed': 'badRequest',
  'subject-missing': 'badRequest',
  'malformed-request': 'badRequest',
  'unsupported-signature-algorithm': 'badAlg',
  'rate-limited': 'badRequest',
};

/**
 * Capabilities advertised by GetCACaps (RFC 8894 §3.5.2). GetNextCACert is added only while a
 * next CA is prepared (ScepServiceOptions.next): a client must not be told of one otherwise.
 */
export const DEFAULT_CAPABILITIES = [
  'POSTPKIOperation',
  'Renewal',
  'SHA-256',
  'SHA-512',
  'SHA-1',
  'AES',
  'DES3',
  'SCEPStandard',
] as const;

export interface ScepServiceOptions {
  /** Signs CertReps and decrypts requests: the issuing CA, or an RSA RA when the CA key is EC. */
  readonly responder: { readonly certificate: Certificate; readonly key: PrivateKeyRef };
  /** Certificates GetCACert returns after the responder (the issuing CA, its root). */
  readonly chain: readonly Certificate[];
  /** What SCEP asks of the CA: enroll, CertPoll, GetCert, GetCRL. */
  readonly enrollment: Pick<
    EnrollmentService,
    'enroll' | 'poll' | 'findCertificate' | 'currentCrl'
  >;
  readonly capabilities?: readonly string[];
  /** Where refusals and crypto failures are reported (never secrets). */
  readonly log?: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
  /**
   * The next CA during a rollover (its issuing certificate, and RA certificate if any): served
   * by GetNextCACert and advertised in GetCACaps only while it is set.
   */
  readonly next?: readonly Certificate[];
}

export interface ScepResponse {
  readonly contentType: string;
  readonly body: Uint8Array;
  /** For a CertRep: what was asked and how it ended (the server's logs; never a secret). */
  readonly outcome?: ScepOutcome;
}

/** A PKIOperation summed up: the transaction, the request's type, the reply's status. */
export interface ScepOutcome {
  readonly transactionId: string;
  /** The request's messageType (RFC 8894 §3.2.1.2), once the message was read that far. */
  readonly messageType?: string;
  readonly pkiStatus: keyof typeof PkiStatus;
  readonly failInfo?: FailInfoName;
}

/** The name of a value in one of the protocol's number tables (MessageType, PkiStatus, FailInfo). */
function nameIn<T extends Record<string, number>>(table: T, value: number): keyof T | undefined {
  return Object.keys(table).find((k) => table[k] === value);
}

export interface ScepService {
  getCaCaps(): ScepResponse;
  getCaCert(): ScepResponse;
  /**
   * GetNextCACert (RFC 8894 §4.7): a SignedData signed by the current responder whose content
   * is a degenerate certs-only SignedData of the next CA certificates; undefined without one.
   */
  getNextCaCert?(): Promise<ScepResponse>;
  /** `peer` is the client's network address (rate limiting); never used for decisions otherwise. */
  pkiOperation(body: Uint8Array, meta?: { readonly peer?: string }): Promise<ScepResponse>;
}

/** The FAILURE a ScepError stands for: its failInfo and the fixed text, never the detail. */
const refusal = (e: ScepError) => ({
  status: PkiStatus.FAILURE,
  failInfo: e.failInfo,
  failInfoText: e.failInfoText,
});

/** A CertRep FAILURE with this failInfo and text. */
const fail = (reason: FailInfoName, text: string) => ({
  status: PkiStatus.FAILURE,
  failInfo: FailInfo[reason],
  failInfoText: text,
});

export function createScepService(o: ScepServiceOptions): ScepService {
  const capabilities = [
    ...(o.capabilities ?? DEFAULT_CAPABILITIES),
    ...(o.next?.length ? ['GetNextCACert'] : []),
  ];
  const caps = capabilities.join('\n');
  const next = o.next?.length ? o.next : undefined;
  const certs = [o.responder.certificate, ...o.chain.filter((c) => c !== o.responder.certificate)];
  // One certificate: DER; several (RA + CA, or CA + root): a degenerate PKCS#7 (RFC 8894 §4.2.1.2).
  const caCert: ScepResponse =
    certs.length === 1
      ? { contentType: 'application/x-x509-ca-cert', body: certs[0]!.der }
      : { contentType: 'application/x-x509-ca-ra-cert', body: encodePkcs7Certificates(certs) };
  const log = o.log ?? (() => undefined);

  /** Signs a CertRep answering `to`; SUCCESS bodies are encrypted in `cipher`. */
  async function certRep(
    to: {
      transactionId: string;
      senderNonce: Uint8Array;
      digest: string;
      requester?: Certificate;
      cipher?: OpenedRequest['cipher'];
      messageType?: number;
    },
    result: Pick<CertRepOptions, 'status' | 'failInfo' | 'failInfoText' | 'issued' | 'crls'>,
  ): Promise<ScepResponse> {
    const body = await buildCertRep({
      ...result,
      transactionId: to.transactionId,
      recipientNonce: to.senderNonce,
      senderNonce: new Uint8Array(randomBytes(16)),
      ...(to.requester ? { requesterCertificate: to.requester } : {}),
      cipher: replyCipher(to.cipher ?? 'aes-128-cbc'),
      digest: replyDigest(to.digest),
      ca: o.responder,
    });
    const outcome: ScepOutcome = {
      transactionId: to.transactionId,
      ...(to.messageType !== undefined
        ? { messageType: nameIn(MessageType, to.messageType) ?? String(to.messageType) }
        : {}),
      pkiStatus: nameIn(PkiStatus, result.status)!,
      ...(result.failInfo !== undefined ? { failInfo: nameIn(FailInfo, result.failInfo)! } : {}),
    };
    return { contentType: 'application/x-pki-message', body, outcome };
  }

  function outcomeResult(
    msg: PkiMessage,
    outcome: EnrollmentOutcome,
  ): Pick<CertRepOptions, 'status' | 'failInfo' | 'failInfoText' | 'issued'> {
    if (outcome.status === 'issued')
      return { status: PkiStatus.SUCCESS, issued: [outcome.certificate] };
    if (outcome.status === 'pending') return { status: PkiStatus.PENDING };
    log('info', 'scep request refused', {
      transactionId: msg.transactionId,
      reason: outcome.reason,
    });
    return fail(REFUSAL_FAILINFO[outcome.reason], outcome.message);
  }

  async function answer(
    msg: PkiMessage,
    opened: OpenedRequest,
    peer: string | undefined,
  ): Promise<Pick<CertRepOptions, 'status' | 'failInfo' | 'failInfoText' | 'issued' | 'crls'>> {
    switch (opened.messageType) {
      case MessageType.PKCSReq:
      case MessageType.RenewalReq:
        return outcomeResult(
          msg,
          await o.enrollment.enroll({
            transactionId: msg.transactionId,
            csr: opened.csr,
            signer: msg.signerCertificate,
            renewalRequested: opened.messageType === MessageType.RenewalReq,
            peer,
          }),
        );
      case MessageType.CertPoll:
        return outcomeResult(msg, await o.enrollment.poll(msg.transactionId));
      case MessageType.GetCert: {
        const cert = await o.enrollment.findCertificate(
          Buffer.from(opened.issuerAndSerial.serial).toString('hex'),
        );
        return cert
          ? { status: PkiStatus.SUCCESS, issued: [cert] }
          : fail('badCertId', 'no certificate of this CA has that serial number');
      }
      case MessageType.GetCRL:
        return { status: PkiStatus.SUCCESS, crls: [await o.enrollment.currentCrl()] };
    }
  }

  return {
    getCaCaps: () => ({ contentType: 'text/plain', body: new TextEncoder().encode(caps) }),
    getCaCert: () => caCert,
    ...(next
      ? {
          getNextCaCert: async () => ({
            contentType: 'application/x-x509-next-ca-cert',
            body: await buildSignedData({
              contentType: CMS.data,
              content: encodePkcs7Certificates(next),
              signer: o.responder,
              digest: 'sha256',
              certificates: [o.responder.certificate],
            }),
          }),
        }
      : {}),
    async pkiOperation(body, meta = {}) {
      let msg: PkiMessage;
      try {
        msg = parsePkiMessage(body);
      } catch (e) {
        // A SignedData whose signature or attributes do not check out is still answered when
        // we could read who to answer (transactionID, senderNonce): FAILURE badMessageCheck.
        const ctx = isScepError(e) ? e.context : undefined;
        if (isScepError(e) && ctx?.transactionId !== undefined && ctx.senderNonce !== undefined) {
          log('warn', 'scep message check failed', {
            code: e.code,
            detail: e.message,
            transactionId: ctx.transactionId,
          });
          return certRep(
            { transactionId: ctx.transactionId, senderNonce: ctx.senderNonce, digest: 'sha256' },
            refusal(e),
          );
        }
        if (isScepError(e))
          throw new PkiError('ERR_PKI_MALFORMED', 'not a SCEP pkiMessage', { cause: e });
        throw e;
      }
      // Replies are encrypted to the requester's key with RSA key transport (RFC 8894 §3.2.2):
      // a request signed with another key type could never receive its certificate, so it is
      // refused before anything is issued.
      if (publicKeyInfo(msg.signerCertificate.spki).type !== 'rsa') {
        log('info', 'scep request signed with a non-RSA key', { transactionId: msg.transactionId });
        return certRep(
          {
            transactionId: msg.transactionId,
            senderNonce: msg.senderNonce,
            digest: msg.digestAlgorithm,
          },
          fail('badAlg', 'sign the request with an RSA key: the reply is encrypted to it'),
        );
      }
      const to = {
        transactionId: msg.transactionId,
        senderNonce: msg.senderNonce,
        digest: msg.digestAlgorithm,
        requester: msg.signerCertificate,
        messageType: msg.messageType,
      };
      let opened: OpenedRequest;
      try {
        opened = await openRequest(msg, o.responder);
      } catch (e) {
        if (!isScepError(e)) throw e;
        log('warn', 'scep request could not be opened', {
          code: e.code,
          detail: e.message,
          transactionId: msg.transactionId,
        });
        return certRep(to, refusal(e));
      }
      return certRep({ ...to, cipher: opened.cipher }, await answer(msg, opened, meta.peer));
    },
  };
}
