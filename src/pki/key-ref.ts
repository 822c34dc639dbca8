/**
 * Private keys we may not hold in memory. A CA key in a PKCS#11 token, a device key in a "TPM"
 * or in a PIN-guarded "Hello" container is used through an {@link ExternalKey}: the token signs
 * and unwraps, the key never leaves it. Everything that signs or decrypts (certificates, CRLs,
 * CSRs, CMS SignedData/EnvelopedData, SCEP) takes a {@link PrivateKeyRef}: either a Node
 * `KeyObject` (software key) or an external one.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { PkiError } from './errors.ts';
import { decryptInThread, signInThread } from './key-threads.ts';

/** Digests we sign with. SHA-1 only where a legacy peer needs it (SCEP replies to SHA-1 clients). */
export type Digest = 'sha1' | 'sha256' | 'sha384' | 'sha512';

/**
 * A private key held elsewhere. Contract for implementations:
 * - `publicKey` is the matching public key (algorithm choice, SPKI, matching certificates);
 * - `sign` produces what `crypto.sign(hash, data, key)` would: PKCS#1 v1.5 for RSA, DER
 *   ECDSA-Sig-Value for EC (RFC 3279 §2.2.3), a raw signature for Ed25519 (`hash` null);
 * - `decrypt` (RSA only) unwraps an RSAES-PKCS1-v1_5 ciphertext (RFC 8017 §7.2.2) with
 *   **implicit rejection**: a ciphertext whose padding is wrong yields a pseudo-random value
 *   determined by the key and the ciphertext, never an error a caller could tell apart
 *   (design.md §3; the Marvin/Bleichenbacher oracle). Errors are for the token itself
 *   (removed, logged out, wrong PIN), and must not depend on the ciphertext.
 */
export interface ExternalKey {
  readonly kind: 'external';
  /** What the key is, for messages: `pkcs11:token=…;object=…`, `hello:container`. */
  readonly label: string;
  readonly publicKey: KeyObject;
  sign(data: Uint8Array, hash: Digest | null): Promise<Uint8Array>;
  decrypt?(ciphertext: Uint8Array): Promise<Uint8Array>;
}

/** A software key (Node KeyObject, private) or one held by a token. */
export type PrivateKeyRef = KeyObject | ExternalKey;

export function isExternalKey(key: PrivateKeyRef): key is ExternalKey {
  return (key as { kind?: unknown }).kind === 'external';
}

/** The public half of a key (type, size and curve are read from it). */
export function publicKeyOf(key: PrivateKeyRef): KeyObject {
  return isExternalKey(key) ? key.publicKey : createPublicKey(key);
}

/** SPKIs already computed, by key object (keys are immutable). */
const spkis = new WeakMap<object, Uint8Array>();

/** SubjectPublicKeyInfo DER of a key's public half (a fresh copy each call). */
export function spkiOf(key: PrivateKeyRef): Uint8Array {
  let spki = spkis.get(key);
  if (!spki) {
    spki = new Uint8Array(publicKeyOf(key).export({ type: 'spki', format: 'der' }));
    spkis.set(key, spki);
  }
  return new Uint8Array(spki);
}

/** `asymmetricKeyType` of either kind of key (`rsa`, `ec`, `ed25519`, …). */
export function keyTypeOf(key: PrivateKeyRef): string | undefined {
  return isExternalKey(key) ? key.publicKey.asymmetricKeyType : key.asymmetricKeyType;
}

/**
 * Signs `data`. Software keys sign in a private-key thread (key-threads.ts), off the event
 * loop; external keys in their token.
 */
export function signWith(
  key: PrivateKeyRef,
  data: Uint8Array,
  hash: Digest | null,
): Promise<Uint8Array> {
  if (isExternalKey(key)) return key.sign(data, hash);
  return signInThread(key, data, hash);
}

/**
 * RSAES-PKCS1-v1_5 decryption with implicit rejection. For software keys this is OpenSSL's
 * own (3.2+, on by default in Node 22+; never `--security-revert`): a bad padding returns a
 * synthetic message instead of an error. It runs in a private-key thread (key-threads.ts),
 * off the event loop, as signing does.
 */
export async function decryptWith(key: PrivateKeyRef, ciphertext: Uint8Array): Promise<Uint8Array> {
  if (!isExternalKey(key)) return decryptInThread(key, ciphertext);
  if (!key.decrypt) throw new Error(`${key.label} cannot decrypt`);
  return key.decrypt(ciphertext);
}

/**
 * A key opened on first use: `publicKey` is known beforehand (from its certificate) and is
 * all that algorithm choice, SPKIs and certificate matching need; the first `sign` or
 * `decrypt` calls `open` (again after a failure) and checks that the key it gives is
 * `publicKey`'s (else `ERR_PKI_INVALID_ARGUMENT`, and the operation fails). So a process that may never
 * sign — an admin command that only reads the store — never opens the token or asks its PIN.
 * `open`'s errors (a missing PIN, a token that is gone) reach the caller of that operation;
 * they do not depend on the data, as {@link ExternalKey} requires of `decrypt`.
 */
export function deferredKey(
  label: string,
  publicKey: KeyObject,
  open: () => Promise<PrivateKeyRef>,
): ExternalKey {
  let opened: Promise<PrivateKeyRef> | undefined;
  const key = (): Promise<PrivateKeyRef> => {
    opened ??= open().then((k) => {
      const pub = publicKeyOf(k);
      // KeyObject.equals across key types leaves an error on OpenSSL's queue (see keys.ts).
      if (pub.asymmetricKeyType !== publicKey.asymmetricKeyType || !pub.equals(publicKey))
        throw new PkiError(
          'ERR_PKI_INVALID_ARGUMENT',
          `${label}: the key does not match the certificate`,
        );
      return k;
    });
    opened.catch(() => (opened = undefined));
    return opened;
  };
  return {
    kind: 'external',
    label,
    publicKey,
    sign: async (data, hash) => signWith(await key(), data, hash),
    ...(publicKey.asymmetricKeyType === 'rsa'
      ? { decrypt: async (ciphertext: Uint8Array) => decryptWith(await key(), ciphertext) }
      : {}),
  };
}
