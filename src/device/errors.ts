/**
 * The device's errors: one stable code each, and the Windows HRESULT a CSP reports for it in
 * its `ErrorCode` / `Status` node (ClientCertificateInstall, CertificateStore). One table, so
 * a code and its HRESULT are decided in one place. HRESULTs are Windows' own constants where
 * one names the condition; `ErrorCode` carries them as a signed 32-bit decimal, as an OMA-DM
 * `int` node does.
 */
export const DEVICE_ERRORS = {
  /** Another process holds the state directory. */
  ERR_DEVICE_BUSY: { hresult: 0x800700aa, name: 'ERROR_BUSY' },
  /** The state file cannot be read (not JSON, wrong version). */
  ERR_DEVICE_STATE: { hresult: 0x8007000d, name: 'ERROR_INVALID_DATA' },
  /** A CSP parameter is missing or has a value the CSP refuses. */
  ERR_DEVICE_BAD_PARAMETER: { hresult: 0x80070057, name: 'E_INVALIDARG' },
  /** KeyLocation/KeyProtection 1 (TPM or fail) on a device without a TPM. */
  ERR_DEVICE_NO_TPM: { hresult: 0x80090030, name: 'NTE_DEVICE_NOT_READY' },
  /** The TPM cannot hold this key: a type or curve it does not take, or no key import at all. */
  ERR_DEVICE_TPM_UNSUPPORTED: { hresult: 0x80090029, name: 'NTE_NOT_SUPPORTED' },
  /** A Hello key was used and no PIN could be asked for. */
  ERR_DEVICE_PIN_REQUIRED: { hresult: 0x800704c7, name: 'ERROR_CANCELLED' },
  ERR_DEVICE_PIN_INCORRECT: { hresult: 0x8010006b, name: 'SCARD_W_WRONG_CHV' },
  ERR_DEVICE_PIN_LOCKED: { hresult: 0x8010006c, name: 'SCARD_W_CHV_BLOCKED' },
  /** Export of a key that is not exportable (TPM, Hello, or imported as not exportable). */
  ERR_DEVICE_NOT_EXPORTABLE: { hresult: 0x8009000b, name: 'NTE_BAD_KEY_STATE' },
  ERR_DEVICE_KEY_NOT_FOUND: { hresult: 0x80090016, name: 'NTE_BAD_KEYSET' },
  ERR_DEVICE_PFX_PASSWORD: { hresult: 0x80070056, name: 'ERROR_INVALID_PASSWORD' },
  ERR_DEVICE_PFX_MALFORMED: { hresult: 0x80092002, name: 'CRYPT_E_BAD_ENCODE' },
  /** A certificate that does not decode, or whose hash is not the node name it was sent to. */
  ERR_DEVICE_BAD_CERTIFICATE: { hresult: 0x80092002, name: 'CRYPT_E_BAD_ENCODE' },
  /** The SCEP server's CA certificate does not have the CAThumbprint we were told. */
  ERR_DEVICE_SCEP_CA_MISMATCH: { hresult: 0x800b0112, name: 'CERT_E_UNTRUSTEDCA' },
  /** The CA answered FAILURE (failInfo badRequest: a wrong or used challenge, a refused CSR). */
  ERR_DEVICE_SCEP_REFUSED: { hresult: 0x80070005, name: 'E_ACCESSDENIED' },
  /** FAILURE badAlg / badMessageCheck / badTime / badCertId. */
  ERR_DEVICE_SCEP_BAD_ALG: { hresult: 0x80090008, name: 'NTE_BAD_ALGID' },
  ERR_DEVICE_SCEP_BAD_MESSAGE: { hresult: 0x80090006, name: 'NTE_BAD_SIGNATURE' },
  ERR_DEVICE_SCEP_BAD_TIME: { hresult: 0x800b0101, name: 'CERT_E_EXPIRED' },
  ERR_DEVICE_SCEP_BAD_CERT_ID: { hresult: 0x80092004, name: 'CRYPT_E_NOT_FOUND' },
  /** Still PENDING after RetryCount polls. */
  ERR_DEVICE_SCEP_PENDING_TIMEOUT: { hresult: 0x800705b4, name: 'ERROR_TIMEOUT' },
  /** No ServerURL answered. */
  ERR_DEVICE_SCEP_UNREACHABLE: { hresult: 0x80072efd, name: 'ERROR_INTERNET_CANNOT_CONNECT' },
  /** The server answered, but not with a CertRep we can verify and open. */
  ERR_DEVICE_SCEP_BAD_RESPONSE: { hresult: 0x80090005, name: 'NTE_BAD_DATA' },
  /** The MDM server could not be reached or answered with an HTTP error. */
  ERR_DEVICE_MDM_UNREACHABLE: { hresult: 0x80072efd, name: 'ERROR_INTERNET_CANNOT_CONNECT' },
  /** The device is not enrolled in MDM (no management server to talk to). */
  ERR_DEVICE_NOT_ENROLLED: { hresult: 0x80180001, name: 'MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR' },
  /** The MDM server's answer is not what the protocol allows (s:messageformat). */
  ERR_DEVICE_MDM_PROTOCOL: { hresult: 0x80180001, name: 'MENROLL_E_DEVICE_MESSAGE_FORMAT_ERROR' },
  /** Enrollment refused the credentials (s:authentication), or the server refuses the device. */
  ERR_DEVICE_ENROLL_AUTHENTICATION: {
    hresult: 0x80180002,
    name: 'MENROLL_E_DEVICE_AUTHENTICATION_ERROR',
  },
  /** Enrollment refused: not allowed to enroll (s:authorization). */
  ERR_DEVICE_ENROLL_AUTHORIZATION: {
    hresult: 0x80180003,
    name: 'MENROLL_E_DEVICE_AUTHORIZATION_ERROR',
  },
  /** Enrollment refused the certificate request (s:certificaterequest). */
  ERR_DEVICE_ENROLL_CERTIFICATE_REQUEST: {
    hresult: 0x80180004,
    name: 'MENROLL_E_DEVICE_CERTIFCATEREQUEST_ERROR',
  },
  /** The enrollment server failed (s:enrollmentserver, s:internalservicefault). */
  ERR_DEVICE_ENROLL_SERVER: { hresult: 0x80180006, name: 'MENROLL_E_DEVICE_INTERNALSERVICE_ERROR' },
  /** The enrollment was interrupted (agent killed) in a step that cannot be resumed. */
  ERR_DEVICE_INTERRUPTED: { hresult: 0x800704d3, name: 'ERROR_REQUEST_ABORTED' },
  // The installer (installer.ts) and the store commands.
  /** The input holds no certificate: another format (a key alone, a request) or none at all. */
  ERR_DEVICE_NOT_A_CERTIFICATE: { hresult: 0x80092009, name: 'CRYPT_E_NO_MATCH' },
  /** A certificate to install does not chain to a trusted root (installer.ts, the trust rule). */
  ERR_DEVICE_UNTRUSTED: { hresult: 0x800b0109, name: 'CERT_E_UNTRUSTEDROOT' },
  /** A certificate to install (or its chain) is outside its validity period. */
  ERR_DEVICE_EXPIRED: { hresult: 0x800b0101, name: 'CERT_E_EXPIRED' },
  /** The installation was not confirmed (a new root needs explicit confirmation). */
  ERR_DEVICE_NOT_CONFIRMED: { hresult: 0x800704c7, name: 'ERROR_CANCELLED' },
  /** A download failed: no connection, a timeout, an HTTP error, too many redirects. */
  ERR_DEVICE_DOWNLOAD: { hresult: 0x80072efd, name: 'ERROR_INTERNET_CANNOT_CONNECT' },
  /** An HTTPS server's certificate is not trusted by the device (nor by the public roots). */
  ERR_DEVICE_DOWNLOAD_UNTRUSTED: { hresult: 0x80072f0d, name: 'ERROR_INTERNET_INVALID_CA' },
  /** An input is larger than the installer reads. */
  ERR_DEVICE_INPUT_TOO_LARGE: { hresult: 0x800700df, name: 'ERROR_FILE_TOO_LARGE' },
  /** No certificate with this thumbprint in the stores searched. */
  ERR_DEVICE_CERT_NOT_FOUND: { hresult: 0x80092004, name: 'CRYPT_E_NOT_FOUND' },
} as const satisfies Record<string, { hresult: number; name: string }>;

export type DeviceErrorCode = keyof typeof DEVICE_ERRORS;

export class DeviceError extends Error {
  readonly code: DeviceErrorCode;
  constructor(code: DeviceErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.name = 'DeviceError';
  }
  /** The HRESULT as the signed 32-bit integer an OMA-DM `int` node carries. */
  get errorCode(): number {
    return DEVICE_ERRORS[this.code].hresult | 0;
  }
}

export function isDeviceError(e: unknown): e is DeviceError {
  return e instanceof DeviceError;
}

/** `ErrorCode` of any failure: ours by table, anything else E_FAIL. */
export function errorCodeOf(e: unknown): number {
  return isDeviceError(e) ? e.errorCode : 0x80004005 | 0;
}
