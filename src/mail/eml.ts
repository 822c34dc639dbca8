/**
 * The certificate attachments of an Internet message (RFC 5322, MIME RFC 2045–2049: a `.eml`
 * file as mail clients save it), for the device installer (`certpost install message.eml`).
 * Parsing is mailparser's; this module decides which parts are certificates.
 *
 * An attachment is taken when any of these says it is a certificate:
 * - its declared content type (design.md §1 lists the ones our server sends, RFC 5280 §4.2.1.13,
 *   RFC 2585 and the vendor `x-` types): `application/pkix-cert`, `application/x-x509-ca-cert`,
 *   `application/x-x509-user-cert`, `application/x-x509-email-cert`,
 *   `application/x-pkcs7-certificates`, `application/x-pkcs7-certreqresp`,
 *   `application/pkcs7-mime` with `smime-type=certs-only` (RFC 8551 §3.6), `application/x-pem-file`,
 *   `application/x-pkcs12`, `application/pkcs12`;
 * - its file name's extension: .cer .crt .der .pem .p7b .p7c .pfx .p12;
 * - its bytes, sniffed by the pki reader ({@link sniffPkiFormat}): a certificate, a PKCS#7
 *   bundle, a PKCS#12, or a private key (a `key.pem` sent beside `cert.pem` belongs with it).
 *
 * The S/MIME signature of the message itself (`application/pkcs7-signature`, `smime.p7s`,
 * RFC 8551 §3.5) carries the signer's certificates but is not an attachment anyone sent to be
 * installed: it is skipped, as are certificate requests. An attachment claimed by its type or
 * name whose bytes are no format at all is kept with `format: null`, so that the installer
 * reports it as corrupt instead of silently leaving it out. Forwarded messages
 * (`message/rfc822` parts) are not searched.
 *
 * Bounded: the message size ({@link EML_LIMITS}) is checked before parsing, the number of
 * attachments after. A message with no certificate attachment is `ERR_EML_NO_CERTIFICATE`.
 */
import { simpleParser, type Attachment, type StructuredHeader } from 'mailparser';
import { sniffPkiFormat, type PkiFormat } from '../pki/read.ts';

/** The catalogue of failures: one stable code each, with its default message. */
export const EML_ERRORS = {
  ERR_EML_TOO_LARGE: 'the message is larger than the limit',
  ERR_EML_TOO_MANY_ATTACHMENTS: 'the message has more attachments than the limit',
  ERR_EML_MALFORMED: 'the message cannot be parsed',
  ERR_EML_NO_CERTIFICATE: 'the message has no certificate attachment',
} as const;

export type EmlErrorCode = keyof typeof EML_ERRORS;

export class EmlError extends Error {
  readonly code: EmlErrorCode;
  constructor(code: EmlErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ? `${EML_ERRORS[code]}: ${detail}` : EML_ERRORS[code], options);
    this.code = code;
    this.name = 'EmlError';
  }
}

export interface EmlLimits {
  /** Largest message read, in bytes (25 MiB: a common mail server limit). */
  readonly maxMessageBytes: number;
  /** Most attachments (of any kind) in one message. */
  readonly maxAttachments: number;
}

export const EML_LIMITS: EmlLimits = { maxMessageBytes: 25 << 20, maxAttachments: 32 };

/** Why an attachment was taken as a certificate. */
export type Recognition = 'content-type' | 'extension' | 'content';

export interface CertificateAttachment {
  /** The attachment's file name, or `attachment-N` (its position) when it has none. */
  readonly filename: string;
  /** The content type the message declares for it, without parameters, lowercase. */
  readonly contentType: string;
  /** The decoded content. */
  readonly content: Uint8Array;
  readonly recognizedBy: readonly Recognition[];
  /** The format sniffed from the bytes; null when they are none (a corrupt attachment). */
  readonly format: PkiFormat | null;
}

export interface SkippedAttachment {
  readonly filename: string;
  readonly contentType: string;
  /** For people: why it is not a certificate attachment. */
  readonly reason: string;
}

export interface MessageCertificates {
  readonly subject?: string;
  readonly from?: string;
  readonly date?: string;
  /** In the order of the message. */
  readonly attachments: readonly CertificateAttachment[];
  readonly skipped: readonly SkippedAttachment[];
}

const CERTIFICATE_TYPES = new Set([
  'application/pkix-cert',
  'application/x-x509-ca-cert',
  'application/x-x509-user-cert',
  'application/x-x509-email-cert',
  'application/x-pkcs7-certificates',
  'application/x-pkcs7-certreqresp',
  'application/x-pem-file',
  'application/x-pkcs12',
  'application/pkcs12',
]);
const SIGNATURE_TYPES = new Set(['application/pkcs7-signature', 'application/x-pkcs7-signature']);
const CERTIFICATE_EXTENSIONS = new Set(['cer', 'crt', 'der', 'pem', 'p7b', 'p7c', 'pfx', 'p12']);
/** Formats that make an attachment worth installing (a key only with a certificate). */
const TAKEN_FORMATS = new Set<PkiFormat>(['der', 'pem', 'pkcs7', 'pkcs12', 'key']);
const CERTIFICATE_FORMATS = new Set<PkiFormat>(['der', 'pem', 'pkcs7', 'pkcs12']);

/** Header names of which at least one starts any real message (RFC 5322 §3.6). */
const MESSAGE_HEADERS =
  /^(from|to|cc|subject|date|sender|message-id|mime-version|content-type|received|return-path|reply-to|delivered-to)$/i;

/**
 * True when the bytes start like an Internet message: a header section of `Name: value` lines
 * (RFC 5322 §2.2, folded lines allowed) naming at least one message header, ended by an empty
 * line. Cheap: reads at most the first 64 KiB.
 */
export function looksLikeMessage(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 65_536))
    .toString('latin1')
    .split(/\r?\n/);
  let known = false;
  for (let i = 0; i < head.length; i++) {
    const l = head[i]!;
    if (l === '') return i > 0 && known && i < head.length - 1;
    if (/^[ \t]/.test(l) && i > 0) continue;
    const name = /^([\x21-\x39\x3b-\x7e]+):/.exec(l)?.[1];
    if (!name) return false;
    known ||= MESSAGE_HEADERS.test(name);
  }
  return false;
}

function structured(a: Attachment, name: string): StructuredHeader | undefined {
  const v = a.headers.get(name);
  return v && typeof v === 'object' && 'value' in v && 'params' in v
    ? (v as StructuredHeader)
    : undefined;
}

/** Reads the message and returns its certificate attachments (see the module comment). */
export async function readCertificateAttachments(
  bytes: Uint8Array,
  limits: Partial<EmlLimits> = {},
): Promise<MessageCertificates> {
  const { maxMessageBytes, maxAttachments } = { ...EML_LIMITS, ...limits };
  if (bytes.length > maxMessageBytes)
    throw new EmlError('ERR_EML_TOO_LARGE', `${bytes.length} bytes (limit ${maxMessageBytes})`);
  let mail;
  try {
    mail = await simpleParser(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      skipHtmlToText: true,
      skipTextToHtml: true,
      skipImageLinks: true,
    });
  } catch (e) {
    throw new EmlError('ERR_EML_MALFORMED', (e as Error).message, { cause: e });
  }
  if (mail.attachments.length > maxAttachments)
    throw new EmlError(
      'ERR_EML_TOO_MANY_ATTACHMENTS',
      `${mail.attachments.length} attachments (limit ${maxAttachments})`,
    );
  const attachments: CertificateAttachment[] = [];
  const skipped: SkippedAttachment[] = [];
  mail.attachments.forEach((a, i) => {
    const filename = a.filename ?? `attachment-${i + 1}`;
    const declared = structured(a, 'content-type');
    const contentType = (declared?.value ?? a.contentType).toLowerCase();
    const content = new Uint8Array(a.content.buffer, a.content.byteOffset, a.content.byteLength);
    if (SIGNATURE_TYPES.has(contentType)) {
      skipped.push({ filename, contentType, reason: "the message's S/MIME signature" });
      return;
    }
    if (contentType === 'message/rfc822') {
      skipped.push({ filename, contentType, reason: 'a forwarded message (not searched)' });
      return;
    }
    const recognizedBy: Recognition[] = [];
    const certsOnly =
      contentType === 'application/pkcs7-mime' &&
      declared?.params['smime-type']?.toLowerCase() === 'certs-only';
    if (CERTIFICATE_TYPES.has(contentType) || certsOnly) recognizedBy.push('content-type');
    const ext = /\.([a-z0-9]+)$/i.exec(filename)?.[1]?.toLowerCase();
    if (ext && CERTIFICATE_EXTENSIONS.has(ext)) recognizedBy.push('extension');
    const format = sniffPkiFormat(content);
    if (format && TAKEN_FORMATS.has(format)) recognizedBy.push('content');
    if (recognizedBy.length === 0) {
      skipped.push({
        filename,
        contentType,
        reason: format === 'csr' ? 'a certificate request' : 'not a certificate',
      });
      return;
    }
    attachments.push({ filename, contentType, content, recognizedBy, format });
  });
  if (!attachments.some((a) => a.format === null || CERTIFICATE_FORMATS.has(a.format))) {
    const seen = [...attachments, ...skipped].map((a) => a.filename);
    throw new EmlError(
      'ERR_EML_NO_CERTIFICATE',
      seen.length ? `its attachments are ${seen.join(', ')}` : 'it has no attachments',
    );
  }
  return {
    ...(mail.subject !== undefined ? { subject: mail.subject } : {}),
    ...(mail.from ? { from: mail.from.text } : {}),
    ...(mail.date ? { date: mail.date.toISOString() } : {}),
    attachments,
    skipped,
  };
}
