/**
 * Process exit codes of the `certpost` command: the one table from error codes to exit codes.
 * Scripts may rely on these numbers; add codes, never renumber.
 */
import type { DeviceErrorCode } from '../device/errors.ts';
import type { HsmErrorCode } from '../hsm/errors.ts';
import type { EmlErrorCode } from '../mail/eml.ts';
import type { MailErrorCode } from '../mail/errors.ts';
import type { PkiErrorCode } from '../pki/errors.ts';

export const EXIT = {
  ok: 0,
  /** Unexpected internal error (a bug: please report it). */
  internal: 1,
  /** Bad command line. */
  usage: 2,
  /** The input could not be read: empty, truncated, malformed or not a PKI file. */
  input: 3,
  /** A password is missing or wrong, or the integrity check failed. */
  password: 4,
  /** The input uses an algorithm or feature certpost does not support. */
  unsupported: 5,
  /** The input exceeds a safety limit. */
  limit: 6,
  /** An output file could not be written. */
  output: 7,
  /** A CA refused a request (CertRep FAILURE), or was not the expected CA. */
  refused: 8,
  /** A request is still pending approval after the last retry. */
  pending: 9,
  /** A server could not be reached or answered with an HTTP error. */
  network: 10,
  /** Another process is using the state directory. */
  busy: 11,
  /** A PKCS#11 module, token or key could not be used (not found, removed, token error). */
  token: 12,
  /** `certpost doctor` found a failing check. */
  unhealthy: 13,
  /** A certificate to install does not chain to a trusted root, or is expired; nothing installed. */
  untrusted: 14,
  /** The user declined (or a new root was not confirmed); nothing changed. */
  cancelled: 15,
  /** No certificate matched (store show/delete, select). */
  notFound: 16,
} as const;

export const PKI_EXIT: Readonly<Record<PkiErrorCode, number>> = {
  ERR_PKI_EMPTY: EXIT.input,
  ERR_PKI_TRUNCATED: EXIT.input,
  ERR_PKI_MALFORMED: EXIT.input,
  ERR_PKI_UNRECOGNIZED: EXIT.input,
  ERR_PKI_UNSUPPORTED: EXIT.unsupported,
  ERR_PKI_PASSWORD_REQUIRED: EXIT.password,
  ERR_PKI_BAD_PASSWORD: EXIT.password,
  ERR_PKI_MAC_MISMATCH: EXIT.password,
  ERR_PKI_LIMIT: EXIT.limit,
  ERR_PKI_INVALID_ARGUMENT: EXIT.usage,
};

export const HSM_EXIT: Readonly<Record<HsmErrorCode, number>> = {
  ERR_HSM_MODULE: EXIT.token,
  ERR_HSM_TOKEN_NOT_FOUND: EXIT.token,
  ERR_HSM_PIN_INCORRECT: EXIT.password,
  ERR_HSM_PIN_LOCKED: EXIT.password,
  ERR_HSM_PIN_REQUIRED: EXIT.password,
  ERR_HSM_KEY_NOT_FOUND: EXIT.token,
  ERR_HSM_KEY_EXISTS: EXIT.token,
  ERR_HSM_UNSUPPORTED: EXIT.unsupported,
  ERR_HSM_TOKEN_FULL: EXIT.token,
  ERR_HSM_READ_ONLY: EXIT.token,
  ERR_HSM_TOKEN_REMOVED: EXIT.token,
  ERR_HSM_SESSION: EXIT.token,
  ERR_HSM_INVALID_URI: EXIT.usage,
  ERR_HSM_INVALID_ARGUMENT: EXIT.usage,
  ERR_HSM_DEVICE: EXIT.token,
};

/** The device agent's errors (device/errors.ts): every code has its exit code. */
export const DEVICE_EXIT: Readonly<Record<DeviceErrorCode, number>> = {
  ERR_DEVICE_BUSY: EXIT.busy,
  ERR_DEVICE_STATE: EXIT.input,
  ERR_DEVICE_BAD_PARAMETER: EXIT.usage,
  ERR_DEVICE_NO_TPM: EXIT.token,
  ERR_DEVICE_TPM_UNSUPPORTED: EXIT.unsupported,
  ERR_DEVICE_PIN_REQUIRED: EXIT.password,
  ERR_DEVICE_PIN_INCORRECT: EXIT.password,
  ERR_DEVICE_PIN_LOCKED: EXIT.password,
  ERR_DEVICE_NOT_EXPORTABLE: EXIT.unsupported,
  ERR_DEVICE_KEY_NOT_FOUND: EXIT.input,
  ERR_DEVICE_PFX_PASSWORD: EXIT.password,
  ERR_DEVICE_PFX_MALFORMED: EXIT.input,
  ERR_DEVICE_BAD_CERTIFICATE: EXIT.input,
  ERR_DEVICE_SCEP_CA_MISMATCH: EXIT.refused,
  ERR_DEVICE_SCEP_REFUSED: EXIT.refused,
  ERR_DEVICE_SCEP_BAD_ALG: EXIT.refused,
  ERR_DEVICE_SCEP_BAD_MESSAGE: EXIT.refused,
  ERR_DEVICE_SCEP_BAD_TIME: EXIT.refused,
  ERR_DEVICE_SCEP_BAD_CERT_ID: EXIT.refused,
  ERR_DEVICE_SCEP_PENDING_TIMEOUT: EXIT.pending,
  ERR_DEVICE_SCEP_UNREACHABLE: EXIT.network,
  ERR_DEVICE_SCEP_BAD_RESPONSE: EXIT.network,
  ERR_DEVICE_MDM_UNREACHABLE: EXIT.network,
  ERR_DEVICE_NOT_ENROLLED: EXIT.input,
  ERR_DEVICE_MDM_PROTOCOL: EXIT.network,
  ERR_DEVICE_ENROLL_AUTHENTICATION: EXIT.refused,
  ERR_DEVICE_ENROLL_AUTHORIZATION: EXIT.refused,
  ERR_DEVICE_ENROLL_CERTIFICATE_REQUEST: EXIT.refused,
  ERR_DEVICE_ENROLL_SERVER: EXIT.network,
  ERR_DEVICE_INTERRUPTED: EXIT.input,
  ERR_DEVICE_NOT_A_CERTIFICATE: EXIT.input,
  ERR_DEVICE_UNTRUSTED: EXIT.untrusted,
  ERR_DEVICE_EXPIRED: EXIT.untrusted,
  ERR_DEVICE_NOT_CONFIRMED: EXIT.cancelled,
  ERR_DEVICE_DOWNLOAD: EXIT.network,
  ERR_DEVICE_DOWNLOAD_UNTRUSTED: EXIT.network,
  ERR_DEVICE_INPUT_TOO_LARGE: EXIT.limit,
  ERR_DEVICE_CERT_NOT_FOUND: EXIT.notFound,
};

export const MAIL_EXIT: Readonly<Record<MailErrorCode, number>> = {
  ERR_MAIL_CONFIG: EXIT.usage,
  ERR_MAIL_NOT_CONFIGURED: EXIT.usage,
  ERR_MAIL_INVALID_ADDRESS: EXIT.usage,
  ERR_MAIL_FORMAT_BLOCKED: EXIT.usage,
  ERR_MAIL_CONNECTION: EXIT.network,
  ERR_MAIL_TIMEOUT: EXIT.network,
  ERR_MAIL_TLS: EXIT.network,
  ERR_MAIL_AUTH: EXIT.password,
  ERR_MAIL_RECIPIENT_REFUSED: EXIT.refused,
  ERR_MAIL_REFUSED: EXIT.refused,
};

/** Reading .eml messages (mail/eml.ts). */
export const EML_EXIT: Readonly<Record<EmlErrorCode, number>> = {
  ERR_EML_TOO_LARGE: EXIT.limit,
  ERR_EML_TOO_MANY_ATTACHMENTS: EXIT.limit,
  ERR_EML_MALFORMED: EXIT.input,
  ERR_EML_NO_CERTIFICATE: EXIT.input,
};

/** Configuration and data-directory errors (their `code`), printed as one line. */
export const CONFIG_EXIT: Readonly<Record<string, number>> = {
  ERR_STORE_UNWRITABLE: EXIT.output,
  ERR_STORE_UNREACHABLE: EXIT.network,
  ERR_PROFILES: EXIT.input,
  ERR_CA_STATE: EXIT.input,
  ERR_SYNCML_MALFORMED: EXIT.input,
  ERR_SYNCML_FORBIDDEN_DOCTYPE: EXIT.input,
  ERR_SYNCML_LIMIT: EXIT.limit,
};

/** A failure the user can fix, with its exit code. Printed as one line. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.exitCode = exitCode;
  }
}
