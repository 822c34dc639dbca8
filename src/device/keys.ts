/**
 * The device's key storage providers (Windows KSPs, design.md §3 "device keys"):
 *
 * - **software** (Microsoft Software KSP): the key is kept as PKCS#8 encrypted with the device
 *   secret (state.ts); exportable only when it was created or imported as exportable.
 * - **tpm** (Microsoft Platform Crypto Provider): the key is generated in, or imported into, a
 *   PKCS#11 token (SoftHSM2 / tpm2-pkcs11 in tests) as sensitive and not extractable; it is
 *   never exportable and, as on Windows, not PIN-guarded (omadm-reference.md §1: "TPM-protected
 *   SCEP keys are not PIN-guarded").
 * - **hello** (Windows Hello for Business / NGC): a named container whose keys are encrypted
 *   under the container's PIN (and the device secret). Every use asks for the PIN through the
 *   {@link PinSource}; a wrong PIN fails and counts; after {@link PIN_ATTEMPTS} wrong PINs in a
 *   row the container is locked. Hello keys are never exportable.
 *
 * Key records live in the device state beside the certificates that use them; a TPM key's
 * record names its object in the token. Destroying token objects is deferred to
 * {@link KeyVault.commit}, so an Atomic that is rolled back never loses a key it still needs.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  randomBytes,
  randomUUID,
  scrypt,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import {
  signWith,
  decryptWith,
  spkiOf,
  type ExternalKey,
  type PrivateKeyRef,
} from '../pki/key-ref.ts';
import { DeviceError, isDeviceError } from './errors.ts';
import type { DeviceStateData, HelloContainer, KeyEntry, KeyProviderName } from './state.ts';

const generateKeyPairAsync = promisify(generateKeyPair);
const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number },
) => Promise<Buffer>;

/** Wrong PINs in a row before a Hello container locks (Windows Hello's default lockout). */
export const PIN_ATTEMPTS = 5;

/** Asks for a Hello container's PIN (the CLI reads a file, an env var or the terminal). */
export type PinSource = (request: {
  readonly container: string;
  readonly prompt?: string;
}) => Promise<string | undefined>;

/** What the device needs of a PKCS#11 token to act as its TPM (implemented over src/hsm). */
export interface TokenProvider {
  /** `pkcs11:token=…` for messages. */
  readonly label: string;
  generate(spec: KeySpec, tokenId: string): Promise<ExternalKey>;
  /**
   * Imports a software key as sensitive, not extractable. A key the token cannot hold (its
   * type or curve, or a token that imports no private keys) is `ERR_DEVICE_TPM_UNSUPPORTED`.
   */
  importKey(key: KeyObject, tokenId: string): Promise<ExternalKey>;
  open(tokenId: string): Promise<ExternalKey>;
  destroy(tokenId: string): Promise<void>;
}

export type KeySpec =
  | { readonly type: 'rsa'; readonly bits: number }
  | { readonly type: 'ec'; readonly curve: 'P-256' | 'P-384' };

/**
 * Where a key goes: KeyLocation (PFXCertInstall) / KeyProtection (SCEP) values 1–4:
 * 1 TPM or fail, 2 TPM else software, 3 software, 4 Hello (needs a container name).
 */
export type KeyLocation = 1 | 2 | 3 | 4;

export interface KeyVaultOptions {
  readonly secret: string;
  /**
   * Where new software keys come from (default: generated). Fleet mode draws from a pool so
   * that a benchmark measures the server, not RSA key generation.
   */
  readonly keySource?: (spec: KeySpec) => Promise<KeyObject>;
  /**
   * Encrypt software keys with the device secret (default). Off only for a device whose state
   * is never written (fleet mode's memory store): there, encryption protects nothing and costs a
   * PBKDF2 run per key.
   */
  readonly encryptAtRest?: boolean;
  readonly tpm?: TokenProvider;
  readonly pin?: PinSource;
}

export interface StoredKey {
  readonly entry: KeyEntry;
  readonly key: PrivateKeyRef;
}

const SCRYPT = { N: 1 << 14, r: 8, p: 1 } as const;

/**
 * Unencrypted PKCS#8 PEM of a key, exported once per KeyObject: fleet mode's devices draw their
 * keys from a small pool (fleet.ts), so the same key would otherwise be exported again and again.
 */
const PLAIN_PKCS8 = new WeakMap<KeyObject, string>();
function plainPkcs8(key: KeyObject): string {
  let pem = PLAIN_PKCS8.get(key);
  if (pem === undefined)
    PLAIN_PKCS8.set(key, (pem = key.export({ type: 'pkcs8', format: 'pem' }) as string));
  return pem;
}

export class KeyVault {
  readonly #state: () => DeviceStateData;
  readonly #o: KeyVaultOptions;
  /** Token objects to destroy once the state that no longer names them is saved. */
  #doomed = new Set<string>();
  /** Software keys already decrypted, by record id. */
  readonly #opened = new Map<string, KeyObject>();

  constructor(state: () => DeviceStateData, o: KeyVaultOptions) {
    this.#state = state;
    this.#o = o;
  }

  get hasTpm(): boolean {
    return this.#o.tpm !== undefined;
  }

  /** The provider a location resolves to on this device, or an error for "TPM or fail". */
  providerFor(location: KeyLocation, container?: string): KeyProviderName {
    switch (location) {
      case 1:
        if (!this.#o.tpm)
          throw new DeviceError('ERR_DEVICE_NO_TPM', 'this device has no TPM (KeyLocation 1)');
        return 'tpm';
      case 2:
        return this.#o.tpm ? 'tpm' : 'software';
      case 3:
        return 'software';
      case 4:
        if (!container)
          throw new DeviceError(
            'ERR_DEVICE_BAD_PARAMETER',
            'a Windows Hello key needs a ContainerName',
          );
        return 'hello';
    }
  }

  /** Generates a key in the provider for `location`, and records it. */
  async generate(
    spec: KeySpec,
    location: KeyLocation,
    o: { container?: string; prompt?: string } = {},
  ): Promise<StoredKey> {
    const provider = this.providerFor(location, o.container);
    const id = randomUUID();
    if (provider === 'tpm') {
      const key = await this.#o.tpm!.generate(spec, id);
      this.#doomed.add(id); // destroyed at commit unless a saved record names it
      return { entry: this.#record({ id, provider, exportable: false, key, tokenId: id }), key };
    }
    const privateKey = this.#o.keySource
      ? await this.#o.keySource(spec)
      : spec.type === 'rsa'
        ? (await generateKeyPairAsync('rsa', { modulusLength: spec.bits })).privateKey
        : (await generateKeyPairAsync('ec', { namedCurve: spec.curve })).privateKey;
    return this.#storeSoftware(id, provider, privateKey, provider === 'software', o);
  }

  /**
   * The provider an import to `location` resolves to, after the checks that need no work
   * (ClientCertificateInstall DDF, PFXCertInstall): `exportable` (PFXKeyExportable true) only
   * with KeyLocation 3, whose DependsOn allows no other; a TPM for 1; a ContainerName for 4.
   */
  importProviderFor(
    location: KeyLocation,
    o: { exportable: boolean; container?: string | undefined },
  ): KeyProviderName {
    if (o.exportable && location !== 3)
      throw new DeviceError(
        'ERR_DEVICE_BAD_PARAMETER',
        'PFXKeyExportable true is allowed only with KeyLocation 3 (software)',
      );
    return this.providerFor(location, o.container);
  }

  /**
   * Imports a key (from a PFX) into the provider for `location`, checked as
   * {@link importProviderFor}. KeyLocation 1 and 2 put it in the TPM as sensitive and not
   * extractable (TokenProvider.importKey). The DDF's 2 is "Install to TPM if present. If not
   * present, fallback to software"; a TPM that cannot hold this key (a type or curve it does not
   * take, or a token that imports no private keys: `ERR_DEVICE_TPM_UNSUPPORTED`) counts as not
   * present for it, and the key goes to software, not exportable. For 1 that is a failure, as is
   * any other TPM error for either.
   */
  async importKey(
    key: KeyObject,
    location: KeyLocation,
    o: { exportable: boolean; container?: string },
  ): Promise<StoredKey> {
    const provider = this.importProviderFor(location, o);
    const id = randomUUID();
    if (provider === 'tpm') {
      try {
        const ext = await this.#o.tpm!.importKey(key, id);
        this.#doomed.add(id); // destroyed at commit unless a saved record names it
        return {
          entry: this.#record({ id, provider, exportable: false, key: ext, tokenId: id }),
          key: ext,
        };
      } catch (e) {
        if (location !== 2 || !isDeviceError(e) || e.code !== 'ERR_DEVICE_TPM_UNSUPPORTED') throw e;
      }
    }
    return this.#storeSoftware(
      id,
      provider === 'tpm' ? 'software' : provider,
      key,
      o.exportable,
      o,
    );
  }

  async #storeSoftware(
    id: string,
    provider: 'software' | 'hello',
    key: KeyObject,
    exportable: boolean,
    o: { container?: string; prompt?: string },
  ): Promise<StoredKey> {
    const passphrase =
      provider === 'hello'
        ? await this.#helloPassphrase(o.container!, o.prompt, true)
        : this.#o.secret;
    const pkcs8 =
      provider === 'software' && this.#o.encryptAtRest === false
        ? plainPkcs8(key)
        : (key.export({
            type: 'pkcs8',
            format: 'pem',
            cipher: 'aes-256-cbc',
            passphrase,
          }) as string);
    if (provider === 'software') this.#opened.set(id, key);
    const entry = this.#record({
      id,
      provider,
      exportable,
      key,
      pkcs8,
      ...(provider === 'hello' ? { container: o.container! } : {}),
    });
    return { entry, key: provider === 'hello' ? this.#helloKey(entry, o.prompt) : key };
  }

  #record(o: {
    id: string;
    provider: KeyProviderName;
    exportable: boolean;
    key: PrivateKeyRef;
    pkcs8?: string;
    tokenId?: string;
    container?: string;
  }): KeyEntry {
    const entry: KeyEntry = {
      id: o.id,
      provider: o.provider,
      exportable: o.exportable,
      spki: Buffer.from(spkiOf(o.key)).toString('base64'),
      ...(o.pkcs8 !== undefined ? { pkcs8: o.pkcs8 } : {}),
      ...(o.tokenId !== undefined ? { tokenId: o.tokenId } : {}),
      ...(o.container !== undefined ? { container: o.container } : {}),
    };
    this.#state().keys.push(entry);
    return entry;
  }

  find(id: string): KeyEntry | undefined {
    return this.#state().keys.find((k) => k.id === id);
  }

  /** A usable key for a record (Hello keys ask for the PIN when they sign or decrypt). */
  async open(id: string, o: { prompt?: string } = {}): Promise<PrivateKeyRef> {
    const entry = this.find(id);
    if (!entry) throw new DeviceError('ERR_DEVICE_KEY_NOT_FOUND', `no key ${id}`);
    switch (entry.provider) {
      case 'software':
        return this.#softwareKey(entry);
      case 'hello':
        return this.#helloKey(entry, o.prompt);
      case 'tpm':
        if (!this.#o.tpm)
          throw new DeviceError('ERR_DEVICE_NO_TPM', 'the key is in a TPM this agent cannot use');
        return this.#o.tpm.open(entry.tokenId!);
    }
  }

  /** The key as PKCS#8 DER, for an exportable software key only. */
  exportKey(id: string): Uint8Array {
    const entry = this.find(id);
    if (!entry) throw new DeviceError('ERR_DEVICE_KEY_NOT_FOUND', `no key ${id}`);
    if (entry.provider !== 'software' || !entry.exportable)
      throw new DeviceError('ERR_DEVICE_NOT_EXPORTABLE', 'the key is not exportable');
    return new Uint8Array(this.#softwareKey(entry).export({ type: 'pkcs8', format: 'der' }));
  }

  /** A software key's KeyObject, decrypted with the device secret. */
  #softwareKey(entry: KeyEntry): KeyObject {
    // Decrypting costs a PBKDF2 run: each key is decrypted once per agent, keyed by its record
    // (the same id always names the same PKCS#8).
    let key = this.#opened.get(entry.id);
    if (!key) {
      key = createPrivateKey({ key: entry.pkcs8!, format: 'pem', passphrase: this.#o.secret });
      this.#opened.set(entry.id, key);
    }
    return key;
  }

  /** Forgets a key; a token object is destroyed at the next {@link commit}. */
  remove(id: string): void {
    const state = this.#state();
    const entry = state.keys.find((k) => k.id === id);
    if (!entry) return;
    state.keys = state.keys.filter((k) => k !== entry);
    this.#opened.delete(id);
    if (entry.tokenId) this.#doomed.add(entry.tokenId);
  }

  /**
   * After the state was saved: destroys the token objects no saved record names (removed keys,
   * and keys generated by an Atomic that was rolled back).
   */
  async commit(): Promise<void> {
    const named = new Set(this.#state().keys.map((k) => k.tokenId));
    const doomed = [...this.#doomed].filter((t) => !named.has(t));
    this.#doomed = new Set();
    for (const t of doomed) await this.#o.tpm?.destroy(t);
  }

  // -- Hello --------------------------------------------------------------------------------

  #helloKey(entry: KeyEntry, prompt: string | undefined): ExternalKey {
    const open = async (): Promise<KeyObject> => {
      const passphrase = await this.#helloPassphrase(entry.container!, prompt, false);
      return createPrivateKey({ key: entry.pkcs8!, format: 'pem', passphrase });
    };
    return {
      kind: 'external',
      label: `hello:${entry.container!}`,
      publicKey: createPublicKey({
        key: Buffer.from(entry.spki, 'base64'),
        format: 'der',
        type: 'spki',
      }),
      sign: async (data, hash) => signWith(await open(), data, hash),
      decrypt: async (ciphertext) => decryptWith(await open(), ciphertext),
    };
  }

  /**
   * Asks for the container's PIN and checks it (constant-time, against an scrypt verifier),
   * counting wrong PINs; creates the container with this PIN when `create` and it is new.
   * Returns the passphrase that encrypts the container's keys.
   */
  async #helloPassphrase(name: string, prompt: string | undefined, create: boolean) {
    const state = this.#state();
    let container = state.hello.find((c) => c.name === name);
    if (container && container.failures >= PIN_ATTEMPTS)
      throw new DeviceError('ERR_DEVICE_PIN_LOCKED', `the Hello container "${name}" is locked`);
    const pin = await this.#o.pin?.({ container: name, ...(prompt ? { prompt } : {}) });
    if (pin === undefined || pin === '')
      throw new DeviceError('ERR_DEVICE_PIN_REQUIRED', `no PIN for the Hello container "${name}"`);
    if (!container) {
      if (!create)
        throw new DeviceError('ERR_DEVICE_KEY_NOT_FOUND', `no Hello container "${name}"`);
      const salt = randomBytes(16);
      const derived = await scryptAsync(pin, salt, 64, SCRYPT);
      container = {
        name,
        salt: salt.toString('base64'),
        verifier: derived.subarray(0, 32).toString('base64'),
        failures: 0,
      } satisfies HelloContainer;
      state.hello.push(container);
      return `${this.#o.secret}:${derived.subarray(32).toString('hex')}`;
    }
    const derived = await scryptAsync(pin, Buffer.from(container.salt, 'base64'), 64, SCRYPT);
    if (!timingSafeEqual(derived.subarray(0, 32), Buffer.from(container.verifier, 'base64'))) {
      container.failures++;
      throw new DeviceError(
        container.failures >= PIN_ATTEMPTS ? 'ERR_DEVICE_PIN_LOCKED' : 'ERR_DEVICE_PIN_INCORRECT',
        `wrong PIN for the Hello container "${name}"`,
      );
    }
    container.failures = 0;
    return `${this.#o.secret}:${derived.subarray(32).toString('hex')}`;
  }
}
