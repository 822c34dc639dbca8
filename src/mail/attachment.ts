/**
 * The certificate attachment of a mail: which format a site lets through, and the file itself
 * (bytes, file name, content type), written with the pki writers.
 *
 * Mail systems often block attachments by file extension, `.cer` first among certificates
 * (design.md §1). A site lists what its mail system blocks; a format asked for that is blocked is
 * replaced by the first fallback, in the site's order, that is not blocked and carries the same
 * thing: a certificate format is replaced by a certificate format, a PFX by a PFX under another
 * name (`.p12`), never by a format that would drop the private key. When nothing is left, that is
 * an error, not a guess.
 *
 * Content types: RFC 2585 §4.1 (`application/pkix-cert`), RFC 2311 §3.2.1 / Windows
 * (`application/x-pkcs7-certificates`), and the types Windows and browsers use for PEM and PKCS#12.
 */
import { encodePemCertificates } from '../pki/pem.ts';
import { encodePkcs12, type Pkcs12Profile } from '../pki/pkcs12.ts';
import { encodePkcs7Certificates } from '../pki/pkcs7.ts';
import type { PrivateKey } from '../pki/keys.ts';
import { formatName, nameAttribute, type Certificate } from '../pki/x509.ts';
import { MailError } from './errors.ts';

/**
 * Every attachment format: its MIME type, what it carries (`certificate`: the certificate alone,
 * DER; `chain`: the certificate and its CA certificates; `identity`: those and the private key,
 * password-protected) and how the mail text names it.
 */
export const MAIL_FORMATS = {
  cer: { contentType: 'application/pkix-cert', carries: 'certificate', name: 'DER certificate' },
  crt: { contentType: 'application/pkix-cert', carries: 'certificate', name: 'DER certificate' },
  pem: {
    contentType: 'application/x-pem-file',
    carries: 'chain',
    name: 'PEM, the certificate and its CA certificates',
  },
  p7b: {
    contentType: 'application/x-pkcs7-certificates',
    carries: 'chain',
    name: 'PKCS#7, the certificate and its CA certificates',
  },
  pfx: {
    contentType: 'application/x-pkcs12',
    carries: 'identity',
    name: 'PKCS#12, the certificate with its private key and CA certificates',
  },
  p12: {
    contentType: 'application/x-pkcs12',
    carries: 'identity',
    name: 'PKCS#12, the certificate with its private key and CA certificates',
  },
} as const satisfies Record<
  string,
  { contentType: string; carries: 'certificate' | 'chain' | 'identity'; name: string }
>;

export type MailFormat = keyof typeof MAIL_FORMATS;

/** The format names, in the catalogue's order (for choices and validation). */
export const MAIL_FORMAT_NAMES = Object.keys(MAIL_FORMATS) as readonly MailFormat[];

export function isMailFormat(s: string): s is MailFormat {
  return Object.hasOwn(MAIL_FORMATS, s);
}

/** True for the formats that carry a private key (and so need a password). */
export function carriesKey(format: MailFormat): boolean {
  return MAIL_FORMATS[format].carries === 'identity';
}

/** What a site's mail system lets through, and what to send instead of a blocked format. */
export interface AttachmentPolicy {
  /** Blocked file extensions, lower case without the dot (`cer`); unknown ones are harmless. */
  readonly blocked: ReadonlySet<string>;
  /** Replacements for a blocked format, most preferred first. */
  readonly fallbacks: readonly MailFormat[];
}

/** The fallback order when a site names none: `.cer` → `.p7b` → `.pem` → `.crt`, `.pfx` → `.p12`. */
export const DEFAULT_FALLBACKS: readonly MailFormat[] = ['p7b', 'pem', 'crt', 'cer', 'p12', 'pfx'];

/** A site that blocks nothing. */
export const OPEN_POLICY: AttachmentPolicy = { blocked: new Set(), fallbacks: DEFAULT_FALLBACKS };

export interface FormatChoice {
  readonly format: MailFormat;
  /** Set when the format asked for was blocked and this one is sent instead. */
  readonly switchedFrom?: MailFormat;
}

/**
 * The format to send for `requested` under `policy`. Throws `ERR_MAIL_FORMAT_BLOCKED` when it
 * and every fallback that carries a private key exactly when it does are blocked.
 */
export function chooseFormat(requested: MailFormat, policy: AttachmentPolicy): FormatChoice {
  if (!policy.blocked.has(requested)) return { format: requested };
  const keyed = carriesKey(requested);
  const instead = policy.fallbacks.find(
    (f) => f !== requested && !policy.blocked.has(f) && carriesKey(f) === keyed,
  );
  if (instead) return { format: instead, switchedFrom: requested };
  const tried = policy.fallbacks.filter((f) => carriesKey(f) === keyed && f !== requested);
  throw new MailError(
    'ERR_MAIL_FORMAT_BLOCKED',
    `.${requested} is blocked by this site's mail system, and so is every fallback${tried.length ? ` (${tried.map((f) => `.${f}`).join(', ')})` : ' (none configured)'}`,
  );
}

/** What an attachment is made from. */
export interface AttachmentSource {
  readonly certificate: Certificate;
  /** Its CA certificates, issuer first (the root last, when known). */
  readonly chain: readonly Certificate[];
  /** For `.pfx`/`.p12`: the certificate's private key and the password to protect it with. */
  readonly identity?: {
    readonly key: PrivateKey;
    readonly password: string;
    readonly profile: Pkcs12Profile;
  };
}

export interface Attachment {
  readonly filename: string;
  readonly contentType: string;
  readonly content: Uint8Array;
}

/** The commonName attribute type (X.520 id-at-commonName). */
const CN = '2.5.4.3';

/** How a person calls the certificate: its common name, else its whole subject. */
export function certificateLabel(cert: Certificate): string {
  return nameAttribute(cert.subject, CN) ?? (formatName(cert.subject) || 'certificate');
}

/**
 * A file name from the certificate's common name: letters, digits, `.`, `_` and `-`, at most 64
 * characters; `certificate` when nothing is left. Mail clients save attachments under this name.
 */
export function attachmentBaseName(cert: Certificate): string {
  const cn = nameAttribute(cert.subject, CN) ?? '';
  const base = cn
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 64)
    .replace(/[-.]+$/, '');
  return base || 'certificate';
}

/** Builds the attachment in `format`. Identity formats need {@link AttachmentSource.identity}. */
export async function buildAttachment(
  format: MailFormat,
  source: AttachmentSource,
): Promise<Attachment> {
  const { certificate, chain } = source;
  const meta = {
    filename: `${attachmentBaseName(certificate)}.${format}`,
    contentType: MAIL_FORMATS[format].contentType,
  };
  switch (format) {
    case 'cer':
    case 'crt':
      return { ...meta, content: certificate.der };
    case 'pem':
      return {
        ...meta,
        content: new Uint8Array(Buffer.from(encodePemCertificates([certificate, ...chain]))),
      };
    case 'p7b':
      return { ...meta, content: encodePkcs7Certificates([certificate, ...chain]) };
    case 'pfx':
    case 'p12': {
      const id = source.identity;
      // The caller chose an identity format for a source without a key: a bug, not input.
      if (!id) throw new Error(`.${format} needs the certificate's private key`);
      const content = await encodePkcs12(
        {
          key: id.key,
          certificates: [certificate, ...chain],
          friendlyName: certificateLabel(certificate),
        },
        id.password,
        { profile: id.profile },
      );
      return { ...meta, content };
    }
  }
}
