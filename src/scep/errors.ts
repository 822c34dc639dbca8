/**
 * Typed errors of the `scep` component and the one table that maps them to SCEP failInfo
 * (RFC 8894 §3.2.1.4.5) and a default failInfoText.
 *
 * Contract: a request that can be parsed as a pkiMessage always gets a signed CertRep FAILURE
 * with the failInfo of its error's code (style principle 7); only bytes that are not a
 * SignedData at all surface as `PkiError` and become an HTTP 400. The failInfoText defaults are
 * deliberately vague (principle 8): the detail of a signature or decryption failure goes to
 * the server log (`ScepError.message`), never onto the wire.
 */

/**
 * failInfo values (RFC 8894 §3.2.1.4.5). Defined here rather than in message.ts so the table
 * below needs no import cycle; message.ts re-exports it.
 */
export const FailInfo = {
  badAlg: 0,
  badMessageCheck: 1,
  badRequest: 2,
  badTime: 3,
  badCertId: 4,
} as const;
export type FailInfo = (typeof FailInfo)[keyof typeof FailInfo];
/** A failInfo by name ('badRequest', …). */
export type FailInfoName = keyof typeof FailInfo;

/** Error code → failInfo and the default failInfoText sent to the client. */
export const SCEP_ERRORS = {
  ERR_SCEP_BAD_ALG: {
    failInfo: FailInfo.badAlg,
    failInfoText: 'unrecognized or unsupported algorithm',
  },
  ERR_SCEP_BAD_MESSAGE_CHECK: {
    failInfo: FailInfo.badMessageCheck,
    failInfoText: 'integrity check failed',
  },
  ERR_SCEP_BAD_REQUEST: {
    failInfo: FailInfo.badRequest,
    failInfoText: 'transaction not permitted or supported',
  },
  ERR_SCEP_BAD_TIME: {
    failInfo: FailInfo.badTime,
    failInfoText: 'message time too far from system time',
  },
  ERR_SCEP_BAD_CERT_ID: {
    failInfo: FailInfo.badCertId,
    failInfoText: 'no certificate matches the criteria',
  },
  ERR_SCEP_UNSUPPORTED_MESSAGE: {
    failInfo: FailInfo.badRequest,
    failInfoText: 'unsupported message type',
  },
} as const;

export type ScepErrorCode = keyof typeof SCEP_ERRORS;

/** What is known of the request when it failed, so the CertRep FAILURE can echo it. */
export interface ScepErrorContext {
  readonly transactionId?: string;
  readonly senderNonce?: Uint8Array;
  readonly messageType?: number;
}

/** A refusal that becomes a CertRep FAILURE; `code` is stable, `message` is for the log. */
export class ScepError extends Error {
  readonly code: ScepErrorCode;
  readonly context: ScepErrorContext;
  constructor(
    code: ScepErrorCode,
    detail?: string,
    context: ScepErrorContext = {},
    options?: ErrorOptions,
  ) {
    super(detail ?? SCEP_ERRORS[code].failInfoText, options);
    this.code = code;
    this.context = context;
    this.name = 'ScepError';
  }

  /** The failInfo this error is answered with. */
  get failInfo(): FailInfo {
    return SCEP_ERRORS[this.code].failInfo;
  }

  /** The failInfoText sent on the wire (never the detail). */
  get failInfoText(): string {
    return SCEP_ERRORS[this.code].failInfoText;
  }
}

/** True when `e` is a {@link ScepError}, optionally with the given code. */
export function isScepError(e: unknown, code?: ScepErrorCode): e is ScepError {
  return e instanceof ScepError && (code === undefined || e.code === code);
}
