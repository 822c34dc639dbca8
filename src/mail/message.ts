/**
 * Composing the mail that carries a certificate (issue 6, "Email delivery"): the attachment in
 * the format the site lets through, and a short text that names the certificate (subject,
 * issuer, serial, validity, SHA-1 and SHA-256 thumbprints) so the recipient can check what they
 * install, says when the format was switched and why, and for a PFX that its password comes
 * separately. The password itself is never part of the message: it is an input of the
 * attachment (encrypting the key) and of nothing else here.
 *
 * Pure: bytes and values in, a message out; sending is the Mailer's (mailer.ts).
 */
import { inspectCertificate } from '../pki/x509.ts';
import {
  buildAttachment,
  carriesKey,
  certificateLabel,
  chooseFormat,
  MAIL_FORMATS,
  type AttachmentPolicy,
  type AttachmentSource,
  type MailFormat,
} from './attachment.ts';
import { checkAddress, type OutgoingMessage } from './mailer.ts';

export interface CertificateMailRequest {
  readonly to: string;
  /** The format asked for; the policy may switch it. */
  readonly requested: MailFormat;
  readonly policy: AttachmentPolicy;
  readonly source: AttachmentSource;
}

export interface CertificateMail {
  readonly message: OutgoingMessage;
  /** The format actually attached. */
  readonly format: MailFormat;
  /** Set when `requested` was blocked: the text says so. */
  readonly switchedFrom?: MailFormat;
}

/** `2026-01-31 12:00:00 UTC`: unambiguous in any recipient's locale. */
const utc = (iso: string) => iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

/** Paragraphs of plain-text mail wrap at 72 columns (RFC 3676 §4.2 keeps lines under 78). */
function wrap(paragraph: string, width = 72): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of paragraph.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  return [...lines, line];
}

/** One header-safe line: control characters (CR, LF, …) become spaces. */
const oneLine = (s: string) => s.replace(/[\p{Cc}\u2028\u2029]+/gu, ' ').trim();

/**
 * Composes the message. Throws `ERR_MAIL_INVALID_ADDRESS` for a bad recipient and
 * `ERR_MAIL_FORMAT_BLOCKED` when the policy leaves no format; nothing else can fail for input
 * that passed those checks.
 */
export async function composeCertificateMail(r: CertificateMailRequest): Promise<CertificateMail> {
  const to = checkAddress(r.to);
  const choice = chooseFormat(r.requested, r.policy);
  const attachment = await buildAttachment(choice.format, r.source);
  const info = inspectCertificate(r.source.certificate);
  const label = oneLine(certificateLabel(r.source.certificate));
  const keyed = carriesKey(choice.format);
  const row = (name: string, value: string) => `  ${`${name}:`.padEnd(21)}${oneLine(value)}`;
  const lines = [
    'Hello,',
    '',
    `attached is ${keyed ? 'a certificate with its private key' : 'a certificate'}:`,
    '',
    row('File', attachment.filename),
    row('Format', MAIL_FORMATS[choice.format].name),
    row('Subject', info.subject || '(empty)'),
    row('Issuer', info.issuer || '(empty)'),
    row('Serial number', info.serialNumber),
    row('Valid', `${utc(info.notBefore)} to ${utc(info.notAfter)}`),
    row('SHA-1 thumbprint', info.sha1),
    row('SHA-256 thumbprint', info.sha256),
    '',
  ];
  const paragraph = (text: string) => lines.push(...wrap(text), '');
  if (choice.switchedFrom)
    paragraph(
      `It was to be sent as .${choice.switchedFrom}, but this site's mail system blocks .${choice.switchedFrom} attachments, so it is sent as .${choice.format} instead.`,
    );
  if (keyed)
    paragraph(
      'The file is protected by a password that is not in this message: you receive it separately. Keep the file private: with its password it is your identity.',
    );
  paragraph('Before you install it, check that the thumbprint your device shows is the one above.');
  lines.push('-- ', 'certpost', '');
  return {
    message: {
      to,
      subject: `${keyed ? 'Certificate and private key' : 'Certificate'}: ${label}`,
      text: lines.join('\n'),
      attachments: [attachment],
    },
    format: choice.format,
    ...(choice.switchedFrom ? { switchedFrom: choice.switchedFrom } : {}),
  };
}
