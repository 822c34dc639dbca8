/**
 * Private keys: PKCS#8 (RFC 5208/5958, plain and encrypted), PKCS#1 RSA (RFC 8017 A.1.2) and
 * SEC1 EC (RFC 5915), in DER or PEM. Decoding and decryption are Node's (OpenSSL's); this
 * module maps their failures to stable {@link PkiError} codes and describes the key.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import * as der from './der.ts';
import { Tag } from './der.ts';
import { PkiError } from './errors.ts';
import { publicKeyOf, type PrivateKeyRef } from './key-ref.ts';
import { decodePem } from './pem.ts';
import { DEFAULT_MAX_ITERATIONS, encryptedKeyWork } from './pkcs12-kdf.ts';
import type { Certificate } from './x509.ts';
import { publicKeyInfo, type PublicKeyInfo } from './x509.ts';

/** How a private key was encoded where we found it. */
export type PrivateKeyEncoding = 'pkcs8' | 'encrypted-pkcs8' | 'pkcs1' | 'sec1';

/** A private key with its description. */
export interface PrivateKey {
  readonly key: KeyObject;
  /** SubjectPublicKeyInfo DER of the matching public key. */
  readonly spki: Uint8Array;
  readonly info: PublicKeyInfo;
  /** PKCS#12 bag attributes, when the key came from a PFX. */
  readonly friendlyName?: string;
  readonly localKeyId?: string;
}

/** Describes a KeyObject (type, bits or curve) and derives its public key. */
export function describePrivateKey(
  key: KeyObject,
  attrs: { friendlyName?: string | undefined; localKeyId?: string | undefined } = {},
): PrivateKey {
  const spki = new Uint8Array(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  return {
    key,
    spki,
    info: publicKeyInfo(spki),
    ...(attrs.friendlyName !== undefined ? { friendlyName: attrs.friendlyName } : {}),
    ...(attrs.localKeyId !== undefined ? { localKeyId: attrs.localKeyId } : {}),
  };
}

/** Maps Node/OpenSSL key errors to our codes. Wrong passwords and corrupt data look alike. */
function keyError(e: unknown, encrypted: boolean, password: string | undefined): PkiError {
  const code = (e as { code?: string }).code ?? '';
  if (code === 'ERR_MISSING_PASSPHRASE' || (encrypted && password === undefined)) {
    return new PkiError('ERR_PKI_PASSWORD_REQUIRED', 'the private key is encrypted');
  }
  if (encrypted) return new PkiError('ERR_PKI_BAD_PASSWORD', 'cannot decrypt the private key');
  if (code.includes('UNSUPPORTED'))
    return new PkiError('ERR_PKI_UNSUPPORTED', 'private key algorithm');
  return new PkiError('ERR_PKI_MALFORMED', 'private key');
}

/** Limits of reading an encrypted key. */
export interface KeyReadOptions {
  /**
   * Most key-derivation work decrypting it may take, in iterations as `parsePkcs12` counts
   * them (default {@link DEFAULT_MAX_ITERATIONS}); more is `ERR_PKI_LIMIT`.
   */
  readonly maxIterations?: number | undefined;
}

/**
 * Refuses an EncryptedPrivateKeyInfo whose key derivation is over budget. OpenSSL would run it
 * synchronously inside `createPrivateKey`, with the file's own iteration count (found by
 * fuzzing: a PBKDF2 count of 2^31 held the thread for minutes).
 */
function checkKeyDerivation(encrypted: Uint8Array, options: KeyReadOptions): void {
  const max = options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  let work: number;
  try {
    const [alg] = der.seq(der.decode(encrypted), 'EncryptedPrivateKeyInfo');
    work = encryptedKeyWork(der.expect(alg, Tag.SEQUENCE, 'encryptionAlgorithm'));
  } catch (e) {
    if (e instanceof PkiError) throw e;
    throw new PkiError('ERR_PKI_MALFORMED', 'EncryptedPrivateKeyInfo', { cause: e });
  }
  if (work > max)
    throw new PkiError(
      'ERR_PKI_LIMIT',
      `decrypting the key demands ${work} iterations of key derivation (limit ${max})`,
    );
}

/** Parses a DER private key of a known encoding. */
export function parsePrivateKeyDer(
  bytes: Uint8Array,
  encoding: PrivateKeyEncoding,
  password?: string,
  options: KeyReadOptions = {},
): PrivateKey {
  const encrypted = encoding === 'encrypted-pkcs8';
  if (encrypted && password === undefined)
    throw new PkiError('ERR_PKI_PASSWORD_REQUIRED', 'the private key is encrypted');
  if (encrypted) checkKeyDerivation(bytes, options);
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      format: 'der',
      type: encoding === 'encrypted-pkcs8' ? 'pkcs8' : encoding,
      ...(encrypted ? { passphrase: password } : {}),
    });
  } catch (e) {
    throw keyError(e, encrypted, password);
  }
  return describePrivateKey(key);
}

/**
 * Parses a PEM private key block (including legacy `Proc-Type: 4,ENCRYPTED` PEM, whose key
 * derivation is one MD5 iteration, so only `ENCRYPTED PRIVATE KEY` blocks need the budget).
 */
export function parsePrivateKeyPem(
  pem: string,
  password?: string,
  options: KeyReadOptions = {},
): PrivateKey {
  const encrypted = /ENCRYPTED/.test(pem);
  if (encrypted && password === undefined)
    throw new PkiError('ERR_PKI_PASSWORD_REQUIRED', 'the private key is encrypted');
  for (const block of decodePem(pem))
    if (block.label === 'ENCRYPTED PRIVATE KEY') checkKeyDerivation(block.der, options);
  let key: KeyObject;
  try {
    key = createPrivateKey({
      key: pem,
      format: 'pem',
      ...(encrypted ? { passphrase: password } : {}),
    });
  } catch (e) {
    throw keyError(e, encrypted, password);
  }
  return describePrivateKey(key);
}

/** Parsed public keys by SPKI. Issuers sign many certificates, and within one SCEP enrollment
 * the message, the CSR and the reply envelope usually share one key: parse it once. */
const spkiCache = new Map<string, KeyObject>();
const SPKI_CACHE_LIMIT = 1024;

/**
 * The KeyObject of a DER SubjectPublicKeyInfo, memoised (least recently added first out).
 * Throws `ERR_PKI_MALFORMED` for bytes Node cannot read as a public key.
 */
export function publicKeyFromSpki(spki: Uint8Array): KeyObject {
  const id = Buffer.from(spki.buffer, spki.byteOffset, spki.byteLength).toString('base64');
  const hit = spkiCache.get(id);
  if (hit) return hit;
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  } catch (e) {
    throw new PkiError('ERR_PKI_MALFORMED', 'not a public key', { cause: e });
  }
  if (spkiCache.size >= SPKI_CACHE_LIMIT) spkiCache.delete(spkiCache.keys().next().value!);
  spkiCache.set(id, key);
  return key;
}

/**
 * True when the private key (software or held by a token, with its SubjectPublicKeyInfo) is the
 * one whose public half the certificate carries.
 */
export function keyMatchesCertificate(
  key: { readonly spki: Uint8Array; readonly key: PrivateKeyRef },
  cert: Certificate,
): boolean {
  if (Buffer.compare(key.spki, cert.spki) === 0) return true;
  try {
    // Same key, different encoding (compressed EC point, explicit parameters): compare keys.
    // Only keys of one type: KeyObject.equals across types leaves an error on OpenSSL's queue
    // (Node 24.21) that makes the next unrelated createPrivateKey in the process fail.
    const certKey = publicKeyFromSpki(cert.spki);
    const ownKey = publicKeyOf(key.key);
    return certKey.asymmetricKeyType === ownKey.asymmetricKeyType && certKey.equals(ownKey);
  } catch {
    return false;
  }
}

/**
 * Exports a private key as PKCS#8 DER, encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)
 * when a password is given, as OpenSSL 3 does by default.
 */
export function exportPkcs8(key: Pick<PrivateKey, 'key'>, password?: string): Uint8Array {
  const out =
    password === undefined
      ? key.key.export({ type: 'pkcs8', format: 'der' })
      : key.key.export({
          type: 'pkcs8',
          format: 'der',
          cipher: 'aes-256-cbc',
          passphrase: password,
        });
  return new Uint8Array(out);
}

/**
 * Recognises a DER private key's encoding from its structure alone, or returns null:
 * PKCS#8 `SEQUENCE { INTEGER 0|1, AlgorithmIdentifier, OCTET STRING, … }`,
 * EncryptedPrivateKeyInfo `SEQUENCE { AlgorithmIdentifier, OCTET STRING }`,
 * PKCS#1 `SEQUENCE { INTEGER 0, INTEGER n, INTEGER e, … }` (9 integers),
 * SEC1 `SEQUENCE { INTEGER 1, OCTET STRING, [0]?, [1]? }`.
 */
export function sniffPrivateKeyEncoding(bytes: Uint8Array): PrivateKeyEncoding | null {
  try {
    const parts = der.seq(der.decode(bytes), 'private key');
    const [a, b, c] = parts;
    if (a?.tag === Tag.INTEGER && b?.tag === Tag.SEQUENCE && c?.tag === Tag.OCTET_STRING)
      return 'pkcs8';
    if (a?.tag === Tag.SEQUENCE && b?.tag === Tag.OCTET_STRING && parts.length === 2)
      return 'encrypted-pkcs8';
    if (parts.length >= 9 && parts.every((p) => p.tag === Tag.INTEGER)) return 'pkcs1';
    if (a?.tag === Tag.INTEGER && der.integer(a) === 1n && b?.tag === Tag.OCTET_STRING)
      return 'sec1';
  } catch {
    return null;
  }
  return null;
}
