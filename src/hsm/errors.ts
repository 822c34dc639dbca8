/**
 * Typed errors of the `hsm` component, and the one table that maps PKCS#11 return values
 * (PKCS#11 v2.40 §11.1 / v3.0 §5.1 "Function return values") to them.
 *
 * Messages name the module, token and object, never a PIN: a PIN reaches the token through
 * `C_Login` only and is not part of any string this component builds.
 */

/** The catalogue: one entry per failure kind, with its default message. */
export const HSM_ERRORS = {
  ERR_HSM_MODULE: 'the PKCS#11 module cannot be loaded or initialised',
  ERR_HSM_TOKEN_NOT_FOUND: 'no such PKCS#11 token',
  ERR_HSM_PIN_INCORRECT: 'the token PIN is incorrect',
  ERR_HSM_PIN_LOCKED: 'the token PIN is locked',
  ERR_HSM_PIN_REQUIRED: 'the token needs a PIN',
  ERR_HSM_KEY_NOT_FOUND: 'no such key in the token',
  ERR_HSM_KEY_EXISTS: 'a key with this label or id already exists in the token',
  ERR_HSM_UNSUPPORTED: 'the token or key does not support this operation',
  ERR_HSM_TOKEN_FULL: 'the token has no room for more objects',
  ERR_HSM_READ_ONLY: 'the token is write-protected',
  ERR_HSM_TOKEN_REMOVED: 'the token was removed or is not responding',
  ERR_HSM_SESSION: 'the PKCS#11 session was closed or logged out',
  ERR_HSM_INVALID_URI: 'not a valid PKCS#11 URI (RFC 7512)',
  ERR_HSM_INVALID_ARGUMENT: 'invalid argument',
  ERR_HSM_DEVICE: 'the token reported an error',
} as const;

export type HsmErrorCode = keyof typeof HSM_ERRORS;

/** Base class of every error thrown by `hsm`. `code` is stable; `message` is for humans. */
export class HsmError extends Error {
  readonly code: HsmErrorCode;
  /** The PKCS#11 return value's name (`CKR_PIN_INCORRECT`) when the token reported one. */
  readonly ckr: string | undefined;
  constructor(
    code: HsmErrorCode,
    detail?: string,
    options?: ErrorOptions & { readonly ckr?: string },
  ) {
    super(detail ? `${HSM_ERRORS[code]}: ${detail}` : HSM_ERRORS[code], options);
    this.code = code;
    this.ckr = options?.ckr;
    this.name = 'HsmError';
  }
}

/** True when `e` is an {@link HsmError}, optionally with the given code. */
export function isHsmError(e: unknown, code?: HsmErrorCode): e is HsmError {
  return e instanceof HsmError && (code === undefined || e.code === code);
}

/**
 * CKR_* → error code. Anything not listed is `ERR_HSM_DEVICE` (the CKR name is kept in
 * {@link HsmError.ckr} and the message). RSA decryption handles its padding failures before
 * this table is consulted: see `REJECTED_CIPHERTEXT` in pkcs11.ts.
 */
export const CKR_ERRORS: Readonly<Record<string, HsmErrorCode>> = {
  CKR_PIN_INCORRECT: 'ERR_HSM_PIN_INCORRECT',
  CKR_PIN_INVALID: 'ERR_HSM_PIN_INCORRECT',
  CKR_PIN_LEN_RANGE: 'ERR_HSM_PIN_INCORRECT',
  CKR_PIN_LOCKED: 'ERR_HSM_PIN_LOCKED',
  CKR_PIN_EXPIRED: 'ERR_HSM_PIN_LOCKED',
  CKR_USER_PIN_NOT_INITIALIZED: 'ERR_HSM_PIN_LOCKED',
  CKR_USER_NOT_LOGGED_IN: 'ERR_HSM_SESSION',
  CKR_SESSION_CLOSED: 'ERR_HSM_SESSION',
  CKR_SESSION_HANDLE_INVALID: 'ERR_HSM_SESSION',
  CKR_SESSION_COUNT: 'ERR_HSM_SESSION',
  CKR_TOKEN_NOT_PRESENT: 'ERR_HSM_TOKEN_REMOVED',
  CKR_TOKEN_NOT_RECOGNIZED: 'ERR_HSM_TOKEN_NOT_FOUND',
  CKR_DEVICE_REMOVED: 'ERR_HSM_TOKEN_REMOVED',
  CKR_SLOT_ID_INVALID: 'ERR_HSM_TOKEN_NOT_FOUND',
  CKR_TOKEN_WRITE_PROTECTED: 'ERR_HSM_READ_ONLY',
  CKR_SESSION_READ_ONLY: 'ERR_HSM_READ_ONLY',
  CKR_DEVICE_MEMORY: 'ERR_HSM_TOKEN_FULL',
  CKR_MECHANISM_INVALID: 'ERR_HSM_UNSUPPORTED',
  CKR_MECHANISM_PARAM_INVALID: 'ERR_HSM_UNSUPPORTED',
  CKR_KEY_TYPE_INCONSISTENT: 'ERR_HSM_UNSUPPORTED',
  CKR_KEY_FUNCTION_NOT_PERMITTED: 'ERR_HSM_UNSUPPORTED',
  CKR_KEY_SIZE_RANGE: 'ERR_HSM_UNSUPPORTED',
  CKR_DOMAIN_PARAMS_INVALID: 'ERR_HSM_UNSUPPORTED',
  CKR_CURVE_NOT_SUPPORTED: 'ERR_HSM_UNSUPPORTED',
  CKR_FUNCTION_NOT_SUPPORTED: 'ERR_HSM_UNSUPPORTED',
  CKR_TEMPLATE_INCONSISTENT: 'ERR_HSM_UNSUPPORTED',
  CKR_TEMPLATE_INCOMPLETE: 'ERR_HSM_UNSUPPORTED',
  CKR_ATTRIBUTE_VALUE_INVALID: 'ERR_HSM_UNSUPPORTED',
  CKR_KEY_HANDLE_INVALID: 'ERR_HSM_KEY_NOT_FOUND',
  CKR_OBJECT_HANDLE_INVALID: 'ERR_HSM_KEY_NOT_FOUND',
  CKR_CRYPTOKI_NOT_INITIALIZED: 'ERR_HSM_MODULE',
  CKR_ARGUMENTS_BAD: 'ERR_HSM_INVALID_ARGUMENT',
};

/**
 * An error from pkcs11js turned into an {@link HsmError}: `Pkcs11Error` carries the CKR_* name
 * as its message (and the number as `code`). `what` says what was being done, e.g.
 * `signing with pkcs:token=ca;object=issuing`.
 */
export function fromPkcs11(e: unknown, what: string): HsmError {
  if (e instanceof HsmError) return e;
  const ckr = ckrOf(e);
  if (ckr === undefined)
    return new HsmError('ERR_HSM_DEVICE', `${what}: ${(e as Error)?.message ?? String(e)}`, {
      cause: e,
    });
  return new HsmError(CKR_ERRORS[ckr] ?? 'ERR_HSM_DEVICE', `${what} (${ckr})`, {
    cause: e,
    ckr,
  });
}

/** The CKR_* name of a pkcs11js error, or undefined when it is not one. */
export function ckrOf(e: unknown): string | undefined {
  const m = /^(CKR_[A-Z0-9_]+)/.exec((e as Error | undefined)?.message ?? '');
  return m?.[1];
}
