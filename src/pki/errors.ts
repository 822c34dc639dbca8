/**
 * Typed errors of the `pki` component.
 *
 * Every failure carries a stable `code` from {@link PKI_ERRORS}, the one table that states the
 * code, its default message and what it means. Protocol layers (SCEP failInfo, SyncML Status,
 * CLI exit codes) map these codes in their own single tables; nothing switches on messages.
 *
 * Security-sensitive failures are deliberately vague: a wrong PKCS#12 password and a MAC that
 * does not verify both say so without revealing which derived value differed.
 */

/** The catalogue: one entry per failure kind. */
export const PKI_ERRORS = {
  ERR_PKI_EMPTY: 'the input is empty',
  ERR_PKI_TRUNCATED: 'the input is truncated',
  ERR_PKI_MALFORMED: 'the input is malformed',
  ERR_PKI_UNRECOGNIZED: 'the input is not a certificate, key, CSR, PKCS#7 or PKCS#12 file',
  ERR_PKI_UNSUPPORTED: 'the input uses an unsupported algorithm or feature',
  ERR_PKI_PASSWORD_REQUIRED: 'a password is required',
  ERR_PKI_BAD_PASSWORD: 'the password is wrong or the file is corrupt',
  ERR_PKI_MAC_MISMATCH: 'the integrity check (MAC) failed: wrong password or a modified file',
  ERR_PKI_LIMIT: 'the input exceeds a safety limit',
  ERR_PKI_INVALID_ARGUMENT: 'invalid argument',
} as const;

export type PkiErrorCode = keyof typeof PKI_ERRORS;

/** Base class of every error thrown by `pki`. `code` is stable; `message` is for humans. */
export class PkiError extends Error {
  readonly code: PkiErrorCode;
  constructor(code: PkiErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ? `${PKI_ERRORS[code]}: ${detail}` : PKI_ERRORS[code], options);
    this.code = code;
    this.name = 'PkiError';
  }
}

/** True when `e` is a {@link PkiError}, optionally with the given code. */
export function isPkiError(e: unknown, code?: PkiErrorCode): e is PkiError {
  return e instanceof PkiError && (code === undefined || e.code === code);
}

/** Shorthand for the most common failure: bytes that do not follow the expected structure. */
export function malformed(detail: string): PkiError {
  return new PkiError('ERR_PKI_MALFORMED', detail);
}
