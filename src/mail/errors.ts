/**
 * Typed errors of the `mail` component: the one catalogue of what composing and sending a
 * certificate mail can fail with. Front ends map the codes in their own single tables (CLI exit
 * codes in cli/exit-codes.ts, HTTP statuses in server/admin-api.ts).
 *
 * Messages name the relay (host and port), the user and the recipient, never a password: the
 * relay password reaches nodemailer's AUTH command only, and a PFX password never reaches this
 * component's strings at all.
 */

/** The catalogue: one entry per failure kind, with its default message. */
export const MAIL_ERRORS = {
  /** A mail setting is missing or malformed (checked when the server or command starts). */
  ERR_MAIL_CONFIG: 'invalid mail settings',
  /** Mail was asked for and no relay is configured. */
  ERR_MAIL_NOT_CONFIGURED: 'no mail relay is configured',
  /** A recipient that is not one plain address (`user@domain`). */
  ERR_MAIL_INVALID_ADDRESS: 'not a mail address',
  /** The format asked for and every fallback of the same kind are blocked by the site. */
  ERR_MAIL_FORMAT_BLOCKED: 'every allowed attachment format is blocked',
  /** The relay cannot be reached: refused, unknown host, reset. */
  ERR_MAIL_CONNECTION: 'cannot connect to the mail relay',
  /** The relay did not answer in time. */
  ERR_MAIL_TIMEOUT: 'the mail relay did not answer in time',
  /** TLS failed: an untrusted or misnamed certificate, no STARTTLS where it is required. */
  ERR_MAIL_TLS: 'TLS with the mail relay failed',
  /** The relay refused the credentials, or wants credentials that were not given. */
  ERR_MAIL_AUTH: 'the mail relay refused the login',
  /** The relay refused the recipient. */
  ERR_MAIL_RECIPIENT_REFUSED: 'the mail relay refused the recipient',
  /** The relay refused the message or answered something unexpected. */
  ERR_MAIL_REFUSED: 'the mail relay refused the message',
} as const;

export type MailErrorCode = keyof typeof MAIL_ERRORS;

/** Base class of every error thrown by `mail`. `code` is stable; `message` is for humans. */
export class MailError extends Error {
  readonly code: MailErrorCode;
  constructor(code: MailErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ? `${MAIL_ERRORS[code]}: ${detail}` : MAIL_ERRORS[code], options);
    this.code = code;
    this.name = 'MailError';
  }
}

/** True when `e` is a {@link MailError}, optionally with the given code. */
export function isMailError(e: unknown, code?: MailErrorCode): e is MailError {
  return e instanceof MailError && (code === undefined || e.code === code);
}
