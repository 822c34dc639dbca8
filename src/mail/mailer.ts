/**
 * The `Mailer` port: what the rest of certpost needs from a mail system (send one composed
 * message), so that composing stays a pure function and the transport is an adapter
 * (smtp.ts). Also the address rule every recipient and sender passes.
 */
import { MailError } from './errors.ts';
import type { Attachment } from './attachment.ts';

/** A message ready to send; the sender is the mailer's (a site setting). */
export interface OutgoingMessage {
  /** One plain address, checked by {@link checkAddress}. */
  readonly to: string;
  readonly subject: string;
  /** Plain text, UTF-8. */
  readonly text: string;
  readonly attachments: readonly Attachment[];
}

export interface SentMessage {
  /** The Message-ID header of what was sent, with its angle brackets. */
  readonly messageId: string;
  /** The relay's final answer, e.g. `250 2.0.0 Ok: queued as 4F2A1`. */
  readonly response: string;
}

export interface Mailer {
  /**
   * Sends `m`; resolves once the relay has accepted it. Fails with a {@link MailError}
   * (`ERR_MAIL_CONNECTION`, `ERR_MAIL_TIMEOUT`, `ERR_MAIL_TLS`, `ERR_MAIL_AUTH`,
   * `ERR_MAIL_RECIPIENT_REFUSED`, `ERR_MAIL_REFUSED`).
   */
  send(m: OutgoingMessage): Promise<SentMessage>;
  /** Where mail goes, for logs and answers: `smtp://host:port`, never credentials. */
  readonly relay: string;
  close(): void;
}

/** RFC 5322 §3.2.3 atext, the characters of a dot-atom local part. */
const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
/** RFC 1035 §2.3.1 labels (LDH), as RFC 5321 §4.1.2 `Domain` takes them. */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const ADDRESS = new RegExp(`^${ATOM}(?:\\.${ATOM})*@${LABEL}(?:\\.${LABEL})*$`);

/**
 * `s` when it is one plain ASCII address `local@domain` (RFC 5321 §4.1.2 Mailbox with a
 * dot-atom local part, at most 64 + 255 characters), else `ERR_MAIL_INVALID_ADDRESS`. Display
 * names, lists, comments, quoted local parts and line breaks are refused: a recipient is one
 * mailbox, and nothing in it can become another header.
 */
export function checkAddress(s: string, what = 'recipient'): string {
  const at = s.lastIndexOf('@');
  if (!ADDRESS.test(s) || at > 64 || s.length - at - 1 > 255)
    throw new MailError(
      'ERR_MAIL_INVALID_ADDRESS',
      `${what} ${JSON.stringify(s.slice(0, 100))} is not one plain address like user@example.com`,
    );
  return s;
}
