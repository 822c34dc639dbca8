/**
 * A CA whose keys live in a PKCS#11 token: made there (`certpost ca init --pkcs11`) or taken
 * into it from a PFX or PEM (`certpost ca import --pkcs11`). The certificates are signed in
 * the token; the data directory records the certificates and each key's RFC 7512 URI
 * (`ca/*.key-ref`, with the `pin-source` of the URI given, if any), never a key or a PIN, and
 * context.ts opens the keys again from those. Its rollover is context.ts's
 * `prepareNextAuthority`, which makes the next keys in the same token.
 */
import { join } from 'node:path';
import {
  createAuthority,
  importAuthority,
  type CaMaterial,
  type CreateAuthorityOptions,
  type KeySource,
} from '../ca/authority.ts';
import { HsmError } from '../hsm/errors.ts';
import { keyBatch, openTokenByUri } from '../hsm/pkcs11.ts';
import { parsePkcs11Uri } from '../hsm/uri.ts';
import { caState, hasAuthority, installAuthority } from './context.ts';

/** Where a CA's keys go. */
export interface TokenTarget {
  /**
   * RFC 7512 URI of the token (`token=`, `serial=` or `slot-id=`, and `module-path`). Its
   * `object=` is the prefix of the key labels (default `certpost`): `<prefix>-root`,
   * `<prefix>-issuing`, and `<prefix>-ra` when the CA needs an RA (authority.ts). A
   * `pin-source` is kept in the saved key references.
   */
  readonly uri: string;
  /** The user PIN (else the URI's `pin-source`). */
  readonly pin?: string | undefined;
}

/**
 * Creates a CA whose keys are generated in, and never leave, the token: root, issuing, and the
 * RA key when the CA needs one (authority.ts decides). The root key stays in the token so that
 * `ca rollover` can certify a next issuing CA; an operator may delete it from the token
 * afterwards (the root then stays offline, as for an imported CA).
 */
export function createTokenAuthority(
  dataDir: string,
  target: TokenTarget,
  options: CreateAuthorityOptions,
): Promise<CaMaterial> {
  return intoToken(dataDir, target, (keys) => createAuthority(options, keys));
}

/**
 * Imports an existing CA (authority.ts `importAuthority`, with the same checks) with its
 * private key put into the token (C_CreateObject: sensitive, not extractable; hsm/pkcs11.ts
 * `importKey`) and its RA key, when it needs one, generated there. The file itself is left as
 * it was: the caller keeps it offline or destroys it.
 */
export function importTokenAuthority(
  dataDir: string,
  target: TokenTarget,
  file: { readonly bytes: Uint8Array; readonly password?: string | undefined },
): Promise<CaMaterial> {
  return intoToken(dataDir, target, (keys) => importAuthority(file.bytes, file.password, { keys }));
}

/**
 * Opens the token, runs `build` with a key source that makes (or takes in) the keys there,
 * and installs the CA it returns in the data directory. On any failure the keys made so far
 * are deleted from the token again.
 */
async function intoToken(
  dataDir: string,
  target: TokenTarget,
  build: (keys: KeySource) => Promise<CaMaterial>,
): Promise<CaMaterial> {
  if (await hasAuthority(join(dataDir, 'ca'))) throw caState(`${dataDir} already has a CA`);
  const uri = parsePkcs11Uri(target.uri);
  if (uri.id !== undefined)
    throw new HsmError('ERR_HSM_INVALID_URI', 'name the key label prefix with object=, not id=');
  // A URI is a command-line argument, visible to every user of the machine: no PIN in it.
  if (uri.pinValue !== undefined)
    throw new HsmError(
      'ERR_HSM_INVALID_URI',
      'no pin-value in the URI: give the PIN with --pkcs11-pin-file or CERTPOST_PKCS11_PIN',
    );
  const prefix = uri.object ?? 'certpost';
  const token = await openTokenByUri(uri, { pin: target.pin });
  const batch = keyBatch(token, (role) => `${prefix}-${role}`);
  try {
    const material = await build(batch);
    await installAuthority(dataDir, material);
    batch.keep();
    return material;
  } finally {
    await batch.discard();
    await token.close();
  }
}
