/**
 * The device's "TPM": a PKCS#11 token (tpm2-pkcs11 on a TPM or swtpm, SoftHSM2 in tests)
 * behind keys.ts's {@link TokenProvider}. Keys are generated inside it (SCEP) or imported into
 * it (a PFX's key: C_CreateObject, hsm/pkcs11.ts `importKey`), sensitive and never extractable,
 * labelled `certpost-device-<record id>` with the record id as CKA_ID, so a state record always
 * finds its object and an object left by a crash is known. A key the token cannot hold is
 * `ERR_DEVICE_TPM_UNSUPPORTED` (NTE_NOT_SUPPORTED); keys.ts decides what KeyLocation makes of it.
 */
import { isHsmError } from '../hsm/errors.ts';
import { openToken, type Pkcs11Token } from '../hsm/pkcs11.ts';
import { formatPkcs11Uri } from '../hsm/uri.ts';
import { DeviceError } from './errors.ts';
import type { KeySpec, TokenProvider } from './keys.ts';

export interface TpmOptions {
  /** PKCS#11 module path. */
  readonly module: string;
  /** Token label. */
  readonly token: string;
  /** User PIN of the token (a TPM's key store, not a Hello PIN: TPM keys are not PIN-guarded). */
  readonly pin?: string;
}

const idOf = (tokenId: string) => Buffer.from(tokenId.replace(/-/g, ''), 'hex');
/** The CKA_LABEL and CKA_ID of a record's key. */
const objectOf = (tokenId: string) => ({ label: `certpost-device-${tokenId}`, id: idOf(tokenId) });

/** Opens the token; `close` it when the agent stops. */
export async function openTpm(o: TpmOptions): Promise<TokenProvider & { close(): Promise<void> }> {
  const token: Pkcs11Token = await openToken({
    module: o.module,
    token: o.token,
    ...(o.pin !== undefined ? { pin: o.pin } : {}),
  });
  return {
    label: formatPkcs11Uri({ token: o.token }),
    async generate(spec: KeySpec, tokenId: string) {
      if (spec.type === 'rsa' && ![2048, 3072, 4096].includes(spec.bits))
        throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', `the TPM makes no RSA-${spec.bits} keys`);
      return token.generateKey(
        spec.type === 'rsa'
          ? { type: 'rsa', bits: spec.bits as 2048 | 3072 | 4096 }
          : { type: 'ec', curve: spec.curve },
        objectOf(tokenId),
      );
    },
    async importKey(key, tokenId) {
      try {
        return await token.importKey(key, objectOf(tokenId));
      } catch (e) {
        if (!isHsmError(e, 'ERR_HSM_UNSUPPORTED')) throw e;
        throw new DeviceError(
          'ERR_DEVICE_TPM_UNSUPPORTED',
          `the TPM cannot hold this key: ${e.message}`,
          { cause: e },
        );
      }
    },
    open: (tokenId) => token.getKey({ id: idOf(tokenId) }),
    async destroy(tokenId) {
      try {
        await token.deleteKey({ id: idOf(tokenId) });
      } catch (e) {
        if (!isHsmError(e, 'ERR_HSM_KEY_NOT_FOUND')) throw e; // already gone: nothing to do
      }
    },
    close: () => token.close(),
  };
}
