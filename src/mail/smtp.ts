/**
 * The SMTP adapter of the {@link Mailer} port, over nodemailer: one connection per message
 * (certificate mails are rare; nothing to keep open), TLS as the settings say (settings.ts), the
 * relay's certificate checked against the configured CA or the system's roots, and every
 * nodemailer failure turned into a {@link MailError} with a stable code by one table
 * ({@link toMailError}).
 *
 * nodemailer's logger and debug output stay off: its transcript would carry the AUTH exchange.
 * Error messages are built here from the error's kind and the relay's reply, never from the
 * credentials.
 */
import nodemailer from 'nodemailer';
import { MailError, type MailErrorCode } from './errors.ts';
import type { Mailer, OutgoingMessage, SentMessage } from './mailer.ts';
import type { RelaySettings } from './settings.ts';

/** The parts of a nodemailer error this adapter reads. */
interface NodemailerFailure {
  readonly code?: string;
  /** Node's own code under nodemailer's, e.g. `ECONNREFUSED`, `DEPTH_ZERO_SELF_SIGNED_CERT`. */
  readonly originalCode?: string;
  readonly command?: string;
  readonly response?: string;
  readonly responseCode?: number;
  readonly message?: string;
}

/**
 * Node and OpenSSL codes of a failed TLS handshake or certificate check (node:tls `err.code`,
 * OpenSSL's X509_V_ERR_* names as Node reports them, and `ERR_SSL_*`).
 */
const TLS_CODE =
  /^(ERR_SSL_|ERR_TLS_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|UNABLE_TO_|CERT_|HOSTNAME_MISMATCH$|ERR_OSSL_)/;

/** What went wrong, from nodemailer's code, Node's code under it and the SMTP command. */
export function classify(e: NodemailerFailure): MailErrorCode {
  const original = e.originalCode ?? '';
  if (e.code === 'ETLS' || TLS_CODE.test(original)) return 'ERR_MAIL_TLS';
  if (e.code === 'ETIMEDOUT' || original === 'ETIMEDOUT') return 'ERR_MAIL_TIMEOUT';
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH') return 'ERR_MAIL_AUTH';
  // 530 "authentication required" (RFC 4954 §6) at MAIL FROM: the relay wants a login.
  if (e.code === 'EENVELOPE' && e.command === 'MAIL FROM' && e.responseCode === 530)
    return 'ERR_MAIL_AUTH';
  if (e.code === 'EENVELOPE' && e.command === 'RCPT TO') return 'ERR_MAIL_RECIPIENT_REFUSED';
  if (e.code === 'ESOCKET' || e.code === 'ECONNECTION' || e.code === 'EDNS')
    return 'ERR_MAIL_CONNECTION';
  return 'ERR_MAIL_REFUSED';
}

/** A {@link MailError} for a nodemailer failure: the relay, the kind, the relay's own words. */
export function toMailError(e: unknown, relay: string): MailError {
  const f = (e ?? {}) as NodemailerFailure;
  const code = classify(f);
  // The relay's own reply says most; else the socket's code, or TLS's first line.
  const detail =
    code === 'ERR_MAIL_TIMEOUT'
      ? undefined
      : f.response
        ? `it answered "${f.response.slice(0, 200)}"`
        : code === 'ERR_MAIL_CONNECTION'
          ? (f.originalCode ?? f.code)
          : f.message?.split('\n')[0];
  return new MailError(code, detail ? `${relay}: ${detail}` : relay, { cause: e });
}

/** A Mailer that sends through the relay in `r`. */
export function createSmtpMailer(r: RelaySettings): Mailer {
  const transport = nodemailer.createTransport({
    host: r.host,
    port: r.port,
    secure: r.tls === 'implicit',
    requireTLS: r.tls === 'required',
    ...(r.auth ? { auth: { user: r.auth.user, pass: r.auth.password } } : {}),
    tls: { ...(r.ca !== undefined ? { ca: r.ca } : {}), minVersion: 'TLSv1.2' },
    connectionTimeout: r.timeoutMs,
    greetingTimeout: r.timeoutMs,
    socketTimeout: r.timeoutMs,
    logger: false,
    debug: false,
  });
  return {
    relay: r.url,
    async send(m: OutgoingMessage): Promise<SentMessage> {
      try {
        const info = await transport.sendMail({
          from: r.from.name ? { name: r.from.name, address: r.from.address } : r.from.address,
          to: m.to,
          subject: m.subject,
          text: m.text,
          attachments: m.attachments.map((a) => ({
            filename: a.filename,
            contentType: a.contentType,
            content: Buffer.from(a.content.buffer, a.content.byteOffset, a.content.byteLength),
          })),
          // Attachments are bytes we made: nodemailer must never read a path or fetch a URL.
          disableFileAccess: true,
          disableUrlAccess: true,
        });
        return { messageId: info.messageId, response: info.response };
      } catch (e) {
        throw toMailError(e, r.url);
      }
    },
    close: () => transport.close(),
  };
}
