/**
 * The SCEP client (RFC 8894 §3, §4) as a library over an injected transport: this module builds
 * and checks pkiMessages and never speaks HTTP itself (style.md principle 2, like jose's
 * injectable fetch). {@link fetchTransport} is the ready-made transport over `fetch`.
 *
 * Contract:
 * - GetCACaps and GetCACert are asked once per client and cached (a failed call is retried on
 *   the next use). Unless the caller chose them ({@link ScepClientOptions}), algorithms follow
 *   GetCACaps (§3.5.2): AES-128-CBC when `AES` or `SCEPStandard` is advertised, else 3DES
 *   (single DES is never sent); SHA-256 when `SHA-256` or `SCEPStandard`, else SHA-512, else
 *   SHA-1. PKIOperation is POSTed when `POSTPKIOperation` or `SCEPStandard` is advertised,
 *   else sent by GET with the base64 message (§4.3).
 * - The recipient of our envelopes is the CA/RA certificate with keyEncipherment, else the
 *   first RSA one (§2.2). An expected CA thumbprint (Windows `CAThumbprint`: SHA-1 of any
 *   certificate of the chain) is checked before any PKIOperation is sent.
 * - The transactionID defaults to the hex SHA-256 of the public key being certified (§3.2.1.1
 *   suggests a hash of the public key); every message carries 16 fresh random senderNonce
 *   bytes, and a CertRep is accepted only when it is signed by one of the CA certificates,
 *   echoes our transactionID and carries our senderNonce as its recipientNonce (§3.2.1.5).
 * - A first enrollment is signed by a self-signed certificate (`CN=SCEP SIGNER`, 1 h, as
 *   micromdm's client does) on the key being certified. CertRep SUCCESS is encrypted to the
 *   signer's RSA key (§3.3.2), so a non-RSA key (EC) is certified through a transient RSA-2048
 *   signer; the CSR itself is always signed by the key being certified. A renewal is signed by
 *   the current certificate (`renewWith`): RenewalReq (17) when the CA advertises `Renewal`,
 *   else PKCSReq (19), which RFC 8894 §3.3.1.2 servers also treat as a renewal.
 * - Transport failures (a rejected promise, an HTTP status outside 2xx), a CA thumbprint
 *   mismatch and a CertRep that fails any check throw {@link ScepClientError}; a CertRep
 *   FAILURE is a result (`status: 'failed'`), not an error.
 */
import { createHash, generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import {
  buildCertificate,
  keyUsage as keyUsageExtension,
  subjectKeyIdentifier,
} from '../ca/certificate.ts';
import { randomSerial } from '../ca/issuer.ts';
import { parseRfc4514 } from '../ca/name.ts';
import type { EnvelopeCipher, SignedDataDigest } from '../pki/cms.ts';
import { buildCsr } from '../pki/csr.ts';
import { bytesEqual, enc } from '../pki/der.ts';
import { keyTypeOf, spkiOf, type PrivateKeyRef } from '../pki/key-ref.ts';
import { parsePkcs7Certificates } from '../pki/pkcs7.ts';
import {
  isCA,
  keyUsage,
  parseCertificate,
  publicKeyInfo,
  sha1Thumbprint,
  type Certificate,
  type Extension,
} from '../pki/x509.ts';
import { FailInfo } from './errors.ts';
import {
  buildPkiRequest,
  MessageType,
  parseCertRep,
  PkiStatus,
  type CertRep,
  type PkiRequestOptions,
  type ScepIdentity,
} from './message.ts';

/** The three SCEP operations a client uses (RFC 8894 §4). */
export type ScepOperation = 'GetCACaps' | 'GetCACert' | 'PKIOperation';

export interface ScepTransportRequest {
  readonly operation: ScepOperation;
  /** PKIOperation only: the DER pkiMessage. */
  readonly body?: Uint8Array;
  readonly method: 'GET' | 'POST';
}

export interface ScepTransportResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Uint8Array;
}

/**
 * Carries one SCEP operation to the server. Rejects only when nothing came back; an HTTP error
 * status is a response (the client turns it into {@link ScepClientError}).
 */
export interface ScepTransport {
  (request: ScepTransportRequest): Promise<ScepTransportResponse>;
}

export type ScepClientErrorCode =
  /** The transport rejected, or the server answered with an HTTP status outside 2xx. */
  | 'ERR_SCEP_CLIENT_TRANSPORT'
  /** No certificate of the CA chain has the expected SHA-1 thumbprint. */
  | 'ERR_SCEP_CLIENT_CA_THUMBPRINT'
  /** GetCACert returned no certificate we can encrypt to (no RSA key). */
  | 'ERR_SCEP_CLIENT_NO_RECIPIENT'
  /**
   * A reply that does not check out: not a CertRep signed by the CA, a transactionID or
   * recipientNonce that is not ours, an envelope we cannot open, or an issued certificate
   * for another key.
   */
  | 'ERR_SCEP_CLIENT_BAD_RESPONSE';

/** A failure of the exchange itself (as opposed to a CertRep FAILURE, which is a result). */
export class ScepClientError extends Error {
  readonly code: ScepClientErrorCode;
  /** The HTTP status, when the server answered with one outside 2xx. */
  readonly status: number | undefined;
  constructor(
    code: ScepClientErrorCode,
    message: string,
    options?: ErrorOptions & { status?: number },
  ) {
    super(message, options);
    this.code = code;
    this.status = options?.status;
    this.name = 'ScepClientError';
  }
}

/** True when `e` is a {@link ScepClientError}, optionally with the given code. */
export function isScepClientError(e: unknown, code?: ScepClientErrorCode): e is ScepClientError {
  return e instanceof ScepClientError && (code === undefined || e.code === code);
}

/** One SCEP operation as an HTTP request (RFC 8894 §4.1). */
export interface ScepHttpRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  /** POST only: the DER pkiMessage, sent as `application/x-pki-message`. */
  readonly body?: Uint8Array;
}

/**
 * The HTTP request for `request` to a SCEP URL such as `https://ca.example/scep`: `GET
 * url?operation=…` for every operation; a PKIOperation is `POST url?operation=PKIOperation` with
 * the DER body when the client asks for POST, else `GET …&message=<base64>` (percent-encoded).
 * Nothing is appended to the URL's path (add `/pkiclient.exe` yourself for servers that want it).
 */
export function scepHttpRequest(url: string, request: ScepTransportRequest): ScepHttpRequest {
  const { operation, body, method } = request;
  const target = `${url}${url.includes('?') ? '&' : '?'}operation=${operation}`;
  if (operation !== 'PKIOperation' || !body) return { url: target, method };
  if (method === 'POST') return { url: target, method, body };
  const b64 = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('base64');
  return { url: `${target}&message=${encodeURIComponent(b64)}`, method };
}

/** The transport's failure as the client reports it: nothing came back for `operation`. */
export function transportError(operation: ScepOperation, e: unknown): ScepClientError {
  return new ScepClientError(
    'ERR_SCEP_CLIENT_TRANSPORT',
    `${operation}: ${(e as Error).message ?? String(e)}`,
    { cause: e },
  );
}

/**
 * A transport over `fetch` to a SCEP URL (the request as {@link scepHttpRequest} makes it).
 * `timeoutMs` bounds each request (default 60 s).
 */
export function fetchTransport(
  url: string,
  fetchImpl: typeof globalThis.fetch = globalThis.fetch,
  options: { readonly timeoutMs?: number } = {},
): ScepTransport {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return async (request) => {
    const http = scepHttpRequest(url, request);
    const init: RequestInit = { method: http.method, signal: AbortSignal.timeout(timeoutMs) };
    if (http.body) {
      init.body = new Uint8Array(http.body);
      init.headers = { 'content-type': 'application/x-pki-message' };
    }
    try {
      const res = await fetchImpl(http.url, init);
      return {
        status: res.status,
        contentType: res.headers.get('content-type') ?? '',
        body: new Uint8Array(await res.arrayBuffer()),
      };
    } catch (e) {
      throw transportError(request.operation, e);
    }
  };
}

/** What an enrollment or a poll ended with. */
export type EnrollResult =
  | { readonly status: 'issued'; readonly certificate: Certificate; readonly transactionId: string }
  | {
      readonly status: 'pending';
      readonly transactionId: string;
      /** The identity that signed the request; pass it to {@link ScepClient.poll}. */
      readonly signer: ScepIdentity;
    }
  | {
      readonly status: 'failed';
      /** failInfo by name (`badRequest`, …), or the number when it is not one of RFC 8894's. */
      readonly failInfo: string;
      readonly failInfoText?: string;
      readonly transactionId: string;
    };

export interface EnrollOptions {
  /** RFC 4514 string (`CN=device-1,O=Contoso`) or a DER Name. */
  readonly subject: string | Uint8Array;
  /** The key being certified; its public half goes into the CSR, which it signs. */
  readonly key: PrivateKeyRef;
  /** challengePassword (optional for renewals). */
  readonly challenge?: string;
  /** Extensions asked for in the CSR's extensionRequest. */
  readonly extensions?: readonly Extension[];
  /** Renewal: sign the request with this still-valid certificate of the CA and its key. */
  readonly renewWith?: ScepIdentity;
  /** Default: hex SHA-256 of `key`'s SubjectPublicKeyInfo. */
  readonly transactionId?: string;
  /** Expected SHA-1 thumbprint (hex, any case, `:` or spaces allowed) of a CA chain certificate. */
  readonly caThumbprint?: string;
}

export interface PollOptions {
  /** The transactionID of the PENDING enrollment. */
  readonly transactionId: string;
  /** The subject of the request (RFC 4514 or DER). */
  readonly subject: string | Uint8Array;
  /** The key being certified (the issued certificate must carry it). */
  readonly key: PrivateKeyRef;
  /** The identity that signed the original request (`pending.signer`); default: a new one. */
  readonly signer?: ScepIdentity;
  readonly caThumbprint?: string;
}

export interface ScepClient {
  /** GetCACaps keywords as sent (compare case-insensitively). */
  capabilities(): Promise<string[]>;
  /** GetCACert: one DER certificate, or the certificates of a PKCS#7 ca-ra-cert reply. */
  caCertificates(): Promise<Certificate[]>;
  /**
   * PKCSReq (or RenewalReq with `renewWith`). Picks the recipient (the certificate with
   * keyEncipherment, else the first RSA one) and checks `caThumbprint` if given, before
   * anything is sent.
   */
  enroll(o: EnrollOptions): Promise<EnrollResult>;
  /** CertPoll (20) with IssuerAndSubject (RFC 8894 §3.3.3) for a PENDING enrollment. */
  poll(o: PollOptions): Promise<EnrollResult>;
  /**
   * GetCRL (22): the CA's CRL for `certificate` (one of its certificates), requested with
   * IssuerAndSerialNumber and signed by `certificate` and `key`; resolves with the DER CRLs.
   */
  getCrl(o: {
    readonly certificate: Certificate;
    readonly key: PrivateKeyRef;
    readonly caThumbprint?: string;
  }): Promise<Uint8Array[]>;
}

export interface ScepClientOptions {
  /**
   * Content cipher of every request envelope, sent whether or not GetCACaps advertises it;
   * default by GetCACaps (AES-128-CBC, else 3DES). Single DES cannot be chosen (RFC 8894
   * §3.5.2). The CA's reply comes in the cipher the CA picks; any of DES, 3DES and AES-CBC
   * opens.
   */
  readonly cipher?: EnvelopeCipher;
  /** Signature digest; default by GetCACaps (SHA-256, else SHA-512, else SHA-1). */
  readonly digest?: SignedDataDigest;
  /** Clock for the self-signed signer certificate. */
  readonly now?: () => Date;
}

const generateKeyPairAsync = promisify(generateKeyPair);

const FAIL_INFO_NAMES = new Map<number, string>(Object.entries(FailInfo).map(([k, v]) => [v, k]));

const normalizeThumbprint = (s: string) => s.replace(/[\s:]/g, '').toLowerCase();

/** Caches a successful result; a failure is forgotten so the next call asks again. */
function cached<T>(
  get: () => Promise<T> | undefined,
  set: (p: Promise<T> | undefined) => void,
  f: () => Promise<T>,
): Promise<T> {
  const have = get();
  if (have) return have;
  const p = f();
  set(p);
  p.catch(() => set(undefined));
  return p;
}

/**
 * The result a checked CertRep ({@link readCertRep}) stands for. SUCCESS must hold a certificate
 * for `spki`, the public key being certified; PENDING keeps `signer` for the polls.
 */
export function enrollResult(
  rep: CertRep,
  transactionId: string,
  spki: Uint8Array,
  signer: ScepIdentity,
): EnrollResult {
  switch (rep.status) {
    case PkiStatus.SUCCESS: {
      const certificate = rep.certificates.find((c) => bytesEqual(c.spki, spki));
      if (!certificate)
        throw new ScepClientError(
          'ERR_SCEP_CLIENT_BAD_RESPONSE',
          'the CertRep SUCCESS holds no certificate for our key',
        );
      return { status: 'issued', certificate, transactionId };
    }
    case PkiStatus.PENDING:
      return { status: 'pending', transactionId, signer };
    case PkiStatus.FAILURE:
      return {
        status: 'failed',
        failInfo:
          rep.failInfo === undefined
            ? 'unknown'
            : (FAIL_INFO_NAMES.get(rep.failInfo) ?? String(rep.failInfo)),
        ...(rep.failInfoText !== undefined ? { failInfoText: rep.failInfoText } : {}),
        transactionId,
      };
    default:
      throw new ScepClientError('ERR_SCEP_CLIENT_BAD_RESPONSE', `unknown pkiStatus ${rep.status}`);
  }
}

/** The request a CertRep must answer (RFC 8894 §3.2.1.5), as the client sent it. */
export interface SentRequest {
  /** Signed the request; a SUCCESS is encrypted to its key. */
  readonly signer: ScepIdentity;
  /** The CA/RA certificates of GetCACert: the CertRep must be signed by one of them. */
  readonly caCertificates: readonly Certificate[];
  readonly transactionId: string;
  readonly senderNonce: Uint8Array;
}

/**
 * Reads the server's reply to one PKIOperation: a CertRep signed by one of the CA
 * certificates, opened with the signer's key when SUCCESS, that echoes our transactionID and
 * carries our senderNonce as its recipientNonce. Anything else throws
 * {@link ScepClientError} `ERR_SCEP_CLIENT_BAD_RESPONSE`, with one message for every parsing,
 * signature and envelope failure (the cause has the detail).
 */
export async function readCertRep(body: Uint8Array, sent: SentRequest): Promise<CertRep> {
  let rep: CertRep;
  try {
    rep = await parseCertRep(body, sent.signer, sent.caCertificates);
  } catch (e) {
    throw new ScepClientError(
      'ERR_SCEP_CLIENT_BAD_RESPONSE',
      'the reply is not a CertRep from the CA that we can verify and open',
      { cause: e },
    );
  }
  if (rep.transactionId !== sent.transactionId)
    throw new ScepClientError(
      'ERR_SCEP_CLIENT_BAD_RESPONSE',
      'the CertRep answers another transactionID',
    );
  if (!rep.recipientNonce || !bytesEqual(rep.recipientNonce, sent.senderNonce))
    throw new ScepClientError(
      'ERR_SCEP_CLIENT_BAD_RESPONSE',
      'the CertRep recipientNonce is not our senderNonce',
    );
  return rep;
}

const nameDer = (s: string | Uint8Array) => (typeof s === 'string' ? parseRfc4514(s) : s);

/**
 * A SCEP client over `transport`.
 * @example
 *   const client = createScepClient(fetchTransport('https://ca.example/scep'));
 *   const r = await client.enroll({ subject: 'CN=device-1', key, challenge });
 *   if (r.status === 'pending') await client.poll({ ...r, subject: 'CN=device-1', key });
 */
export function createScepClient(
  transport: ScepTransport,
  options: ScepClientOptions = {},
): ScepClient {
  const now = options.now ?? (() => new Date());
  let capsPromise: Promise<string[]> | undefined;
  let certsPromise: Promise<Certificate[]> | undefined;

  async function call(req: ScepTransportRequest): Promise<ScepTransportResponse> {
    let res: ScepTransportResponse;
    try {
      res = await transport(req);
    } catch (e) {
      if (isScepClientError(e)) throw e;
      throw new ScepClientError(
        'ERR_SCEP_CLIENT_TRANSPORT',
        `${req.operation}: ${(e as Error).message ?? String(e)}`,
        { cause: e },
      );
    }
    if (res.status < 200 || res.status > 299)
      throw new ScepClientError(
        'ERR_SCEP_CLIENT_TRANSPORT',
        `${req.operation}: HTTP ${res.status}`,
        { status: res.status },
      );
    return res;
  }

  const capabilities = () =>
    cached(
      () => capsPromise,
      (p) => (capsPromise = p),
      async () => {
        const res = await call({ operation: 'GetCACaps', method: 'GET' });
        return new TextDecoder()
          .decode(res.body)
          .split(/\r?\n/)
          .map((s) => s.trim())
          .filter((s) => s !== '');
      },
    );

  const caCertificates = () =>
    cached(
      () => certsPromise,
      (p) => (certsPromise = p),
      async () => {
        const res = await call({ operation: 'GetCACert', method: 'GET' });
        const type = res.contentType.split(';')[0]!.trim().toLowerCase();
        try {
          // RFC 8894 §4.2.1: x-x509-ca-cert is one DER certificate, x-x509-ca-ra-cert a
          // certs-only SignedData; sniff when the type is neither.
          if (type === 'application/x-x509-ca-cert') return [parseCertificate(res.body)];
          if (type === 'application/x-x509-ca-ra-cert') return parsePkcs7Certificates(res.body);
          try {
            return parsePkcs7Certificates(res.body);
          } catch {
            return [parseCertificate(res.body)];
          }
        } catch (e) {
          throw new ScepClientError(
            'ERR_SCEP_CLIENT_BAD_RESPONSE',
            `GetCACert: not a certificate or PKCS#7 (${type || 'no content type'})`,
            { cause: e },
          );
        }
      },
    );

  /** Capabilities, CA certificates, the checked thumbprint, recipient and algorithms. */
  async function prepare(caThumbprint: string | undefined) {
    const [caps, certs] = await Promise.all([capabilities(), caCertificates()]);
    if (certs.length === 0)
      throw new ScepClientError(
        'ERR_SCEP_CLIENT_NO_RECIPIENT',
        'GetCACert returned no certificate',
      );
    if (caThumbprint !== undefined) {
      const want = normalizeThumbprint(caThumbprint);
      if (!certs.some((c) => sha1Thumbprint(c) === want))
        throw new ScepClientError(
          'ERR_SCEP_CLIENT_CA_THUMBPRINT',
          `no CA certificate has the SHA-1 thumbprint ${want}`,
        );
    }
    const rsa = certs.filter((c) => publicKeyInfo(c.spki).type === 'rsa');
    const recipient = rsa.find((c) => keyUsage(c)?.includes('keyEncipherment')) ?? rsa[0];
    if (!recipient)
      throw new ScepClientError(
        'ERR_SCEP_CLIENT_NO_RECIPIENT',
        'no CA/RA certificate with an RSA key to encrypt to',
      );
    const has = (k: string) => caps.some((c) => c.toLowerCase() === k.toLowerCase());
    const standard = has('SCEPStandard');
    const cipher: EnvelopeCipher =
      options.cipher ?? (standard || has('AES') ? 'aes-128-cbc' : 'des-ede3-cbc');
    const digest: SignedDataDigest =
      options.digest ??
      (standard || has('SHA-256') ? 'sha256' : has('SHA-512') ? 'sha512' : 'sha1');
    const method: 'GET' | 'POST' = standard || has('POSTPKIOperation') ? 'POST' : 'GET';
    return { caps: has, certs, recipient, cipher, digest, method };
  }

  /**
   * A self-signed `CN=SCEP SIGNER` certificate valid for one hour, on `key` when it is RSA
   * (the CertRep SUCCESS envelope is encrypted to it), else on a transient RSA-2048 key.
   */
  async function selfSignedSigner(key: PrivateKeyRef): Promise<ScepIdentity> {
    const signerKey =
      keyTypeOf(key) === 'rsa'
        ? key
        : (await generateKeyPairAsync('rsa', { modulusLength: 2048 })).privateKey;
    const spki = spkiOf(signerKey);
    const name = parseRfc4514('CN=SCEP SIGNER');
    const serial = randomSerial();
    const at = now();
    const der = await buildCertificate({
      subject: name,
      spki,
      serial,
      notBefore: at,
      notAfter: new Date(at.getTime() + 3_600_000),
      issuer: { name, key: signerKey, spki },
      extensions: [
        keyUsageExtension(['digitalSignature', 'keyEncipherment']),
        subjectKeyIdentifier(spki),
      ],
    });
    return { certificate: parseCertificate(der), key: signerKey };
  }

  /** Sends one request pkiMessage and returns its checked CertRep. */
  async function exchange(
    ctx: Awaited<ReturnType<typeof prepare>>,
    o: Pick<PkiRequestOptions, 'messageType' | 'transactionId' | 'content' | 'signer'>,
  ): Promise<CertRep> {
    const senderNonce = new Uint8Array(randomBytes(16));
    const message = await buildPkiRequest({
      ...o,
      senderNonce,
      recipient: ctx.recipient,
      cipher: ctx.cipher,
      digest: ctx.digest,
    });
    const res = await call({ operation: 'PKIOperation', method: ctx.method, body: message });
    return readCertRep(res.body, {
      signer: o.signer,
      caCertificates: ctx.certs,
      transactionId: o.transactionId,
      senderNonce,
    });
  }

  async function getCrl(o: {
    readonly certificate: Certificate;
    readonly key: PrivateKeyRef;
    readonly caThumbprint?: string;
  }): Promise<Uint8Array[]> {
    const ctx = await prepare(o.caThumbprint);
    const transactionId = randomBytes(16).toString('hex');
    const rep = await exchange(ctx, {
      messageType: MessageType.GetCRL,
      transactionId,
      content: enc.seq(o.certificate.issuer.der, enc.uint(o.certificate.serial)),
      signer: { certificate: o.certificate, key: o.key },
    });
    if (rep.status !== PkiStatus.SUCCESS)
      throw new ScepClientError(
        'ERR_SCEP_CLIENT_BAD_RESPONSE',
        `GetCRL was refused (failInfo ${rep.failInfo ?? 'none'})`,
      );
    return [...rep.crls];
  }

  return {
    capabilities,
    caCertificates,
    getCrl,

    async enroll(o) {
      const ctx = await prepare(o.caThumbprint);
      const spki = spkiOf(o.key);
      const transactionId = o.transactionId ?? createHash('sha256').update(spki).digest('hex');
      const csr = await buildCsr({
        subject: nameDer(o.subject),
        key: o.key,
        ...(o.challenge !== undefined ? { challengePassword: o.challenge } : {}),
        ...(o.extensions ? { extensions: o.extensions } : {}),
        digest: ctx.digest,
      });
      const signer = o.renewWith ?? (await selfSignedSigner(o.key));
      const messageType =
        o.renewWith && ctx.caps('Renewal') ? MessageType.RenewalReq : MessageType.PKCSReq;
      const rep = await exchange(ctx, { messageType, transactionId, content: csr, signer });
      return enrollResult(rep, transactionId, spki, signer);
    },

    async poll(o) {
      const ctx = await prepare(o.caThumbprint);
      const signer = o.signer ?? (await selfSignedSigner(o.key));
      // IssuerAndSubject (§3.3.3): the issuing CA's name. The recipient is that CA unless it is
      // an RA certificate, whose issuer is then the CA.
      const issuer = isCA(ctx.recipient) ? ctx.recipient.subject.der : ctx.recipient.issuer.der;
      const rep = await exchange(ctx, {
        messageType: MessageType.CertPoll,
        transactionId: o.transactionId,
        content: enc.seq(issuer, nameDer(o.subject)),
        signer,
      });
      return enrollResult(rep, o.transactionId, spkiOf(o.key), signer);
    },
  };
}
