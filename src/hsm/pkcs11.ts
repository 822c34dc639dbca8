/**
 * Keys in a PKCS#11 token (an HSM, SoftHSM2, a smart card, tpm2-pkcs11), used as
 * {@link ExternalKey}s: the token generates (or takes in), signs and decrypts; the private key
 * never leaves it.
 *
 * Through pkcs11js (PeculiarVentures, an N-API addon: one build loads in every Node version with
 * N-API 8). Spec references are to PKCS#11 v2.40 (OASIS, "Cryptographic Token Interface Base
 * Specification" and "Current Mechanisms Specification"); v3.0 keeps the same sections.
 *
 * - Module: loaded once per path and process, `C_Initialize` with CKF_OS_LOCKING_OK (base §5.4)
 *   so the library may be called from libuv's worker threads; finalised when the last token
 *   opened from it is closed.
 * - Sessions: a session serialises its operations (base §5.6: "a session can only have one
 *   active operation of each type"), so each token keeps a small pool of R/W sessions and an
 *   operation holds one session from `*Init` to its end. Signing and decryption use the
 *   `…Async` calls, which run in the thread pool, off the event loop. Login state is per
 *   application and token (base §5.5), so one `C_Login` covers every session; a rejected PIN is
 *   never tried again (tokens lock after a few wrong PINs).
 * - Keys: generated in the token, or imported into it from software (C_CreateObject, see
 *   `importKey`), with CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true and CKA_EXTRACTABLE false
 *   (base §4.9 "Private key objects"), with a CKA_LABEL and a CKA_ID shared by the pair.
 * - Signing (mechanisms §2.1.9, §2.3.6): RSA with CKM_SHA*_RSA_PKCS (CKM_RSA_PKCS over a
 *   DigestInfo when the token lacks those); EC with CKM_ECDSA over a digest computed here, the
 *   token's `r || s` re-encoded as DER ECDSA-Sig-Value (RFC 3279 §2.2.3).
 * - Decryption: CKM_RSA_PKCS (mechanisms §2.1.6) with implicit rejection (implicit-rejection.ts):
 *   whatever the token says about the padding, the caller gets bytes, never an error that
 *   depends on the ciphertext. The per-key secret behind it is a CKO_SECRET_KEY
 *   (CKK_GENERIC_SECRET, sensitive, non-extractable) with the key's CKA_ID and the label
 *   {@link IMPLICIT_REJECTION_LABEL}, used with CKM_SHA256_HMAC inside the token.
 *
 * PINs go to `C_Login` and nowhere else: no message, URI or log line built here contains one.
 */
import {
  createHash,
  createPublicKey,
  randomBytes,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type * as Pkcs11js from 'pkcs11js';
import type { Digest, ExternalKey } from '../pki/key-ref.ts';
import * as der from '../pki/der.ts';
import { ALG, CURVES } from '../pki/oids.ts';
import { ckrOf, fromPkcs11, HsmError } from './errors.ts';
import { syntheticMessage } from './implicit-rejection.ts';
import { formatPkcs11Uri, parsePkcs11Uri, type Pkcs11Uri } from './uri.ts';

type Handle = Buffer;
type Api = Pkcs11js.PKCS11;

// ---------------------------------------------------------------------------------------------
// The addon and the modules

const requireCjs = createRequire(import.meta.url);
let addon: typeof Pkcs11js | undefined;

/** pkcs11js, loaded on first use so that a server without a token never loads the addon. */
function pkcs11js(): typeof Pkcs11js {
  if (addon) return addon;
  try {
    addon = requireCjs('pkcs11js') as typeof Pkcs11js;
    return addon;
  } catch (e) {
    throw new HsmError(
      'ERR_HSM_MODULE',
      'the pkcs11js native addon is not built (npm ci builds it with node-gyp; see README)',
      { cause: e },
    );
  }
}

interface LoadedModule {
  readonly api: Api;
  readonly path: string;
  users: number;
  /**
   * Per slot id: SHA-256 of the PIN this process logged in with, and how many open tokens
   * rely on that login. Login state is shared by every session of the process (base §5.5), so
   * a second open with another PIN would get CKR_USER_ALREADY_LOGGED_IN and succeed unchecked;
   * comparing with the PIN that did log in keeps a wrong PIN wrong.
   */
  readonly logins: Map<number, { pin: Buffer; users: number }>;
  /** False when another loader had initialised the library: then we must not finalise it. */
  readonly ownsInit: boolean;
  /**
   * The object creation or destruction running now, after which the next one starts. SoftHSM
   * 2.6 (file object store) fails about one key generation in 25 with CKR_GENERAL_ERROR or
   * CKR_OBJECT_HANDLE_INVALID when two run at once in one process, locking flags or not
   * (three concurrent generations per round, 40 rounds: 5 failures); `ca init` makes the root
   * and issuing keys together. Making keys is rare, so one at a time costs nothing that shows.
   */
  changes: Promise<unknown>;
}
const modules = new Map<string, LoadedModule>();

function acquireModule(path: string): LoadedModule {
  const hit = modules.get(path);
  if (hit) {
    hit.users++;
    return hit;
  }
  const p = pkcs11js();
  const api = new p.PKCS11();
  try {
    api.load(path);
  } catch (e) {
    throw new HsmError('ERR_HSM_MODULE', `cannot load ${path}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let ownsInit = true;
  try {
    api.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
  } catch (e) {
    ownsInit = false;
    // Another loader in this process (graphene, a second addon instance) initialised it first.
    if (ckrOf(e) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
      api.close();
      throw new HsmError('ERR_HSM_MODULE', `C_Initialize of ${path} failed (${ckrOf(e) ?? e})`, {
        cause: e,
      });
    }
  }
  const m = { api, path, users: 1, logins: new Map(), ownsInit, changes: Promise.resolve() };
  modules.set(path, m);
  return m;
}

function releaseModule(m: LoadedModule): void {
  if (--m.users > 0) return;
  modules.delete(m.path);
  // Only the loader that initialised the library may finalise it (PKCS#11 §5.4): another one in
  // this process would lose it under its feet.
  if (m.ownsInit) {
    try {
      m.api.C_Finalize();
    } catch {
      // Finalising a module that is going away anyway: nothing useful to report.
    }
  }
  m.api.close();
}

// ---------------------------------------------------------------------------------------------
// Small helpers over attribute values (CK_ULONG and CK_BBOOL in the platform's byte order)

function ulong(b: Buffer): number {
  return b.length >= 8 ? Number(b.readBigUInt64LE(0)) : b.readUInt32LE(0);
}
const text = (b: Buffer) => b.toString('utf8').replace(/[ \0]+$/, '');
const slotIdOf = (slot: Handle) => ulong(slot);

/** Finds up to `max` objects matching `template` (base §5.8: Init, FindObjects, Final). */
function findObjects(api: Api, s: Handle, template: Pkcs11js.Template, max = 256): Handle[] {
  api.C_FindObjectsInit(s, template);
  try {
    const out: Handle[] = [];
    for (;;) {
      const batch = api.C_FindObjects(s, 64);
      out.push(...batch);
      if (batch.length < 64 || out.length >= max) return out.slice(0, max);
    }
  } finally {
    api.C_FindObjectsFinal(s);
  }
}

function attributes(api: Api, s: Handle, h: Handle, types: readonly number[]): Buffer[] {
  return api
    .C_GetAttributeValue(
      s,
      h,
      types.map((type) => ({ type })),
    )
    .map((a) => (Buffer.isBuffer(a.value) ? a.value : Buffer.alloc(0)));
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** A token a module offers, as {@link listTokens} reports it. */
export interface TokenInfo {
  readonly slotId: number;
  readonly label: string;
  readonly serial: string;
  readonly manufacturer: string;
  readonly model: string;
  /** CKF_LOGIN_REQUIRED: private objects need `C_Login`. */
  readonly loginRequired: boolean;
  /** CKF_TOKEN_INITIALIZED. */
  readonly initialized: boolean;
}

/** Lists the tokens present in a module's slots. */
export function listTokens(modulePath: string): TokenInfo[] {
  const m = acquireModule(modulePath);
  try {
    return tokensOf(m.api).map((t) => t.info);
  } catch (e) {
    throw fromPkcs11(e, `listing the tokens of ${modulePath}`);
  } finally {
    releaseModule(m);
  }
}

function tokensOf(api: Api): { slot: Handle; info: TokenInfo }[] {
  const p = pkcs11js();
  return api.C_GetSlotList(true).map((slot) => {
    const t = api.C_GetTokenInfo(slot);
    return {
      slot,
      info: {
        slotId: slotIdOf(slot),
        label: text(Buffer.from(t.label)),
        serial: text(Buffer.from(t.serialNumber)),
        manufacturer: text(Buffer.from(t.manufacturerID)),
        model: text(Buffer.from(t.model)),
        loginRequired: (t.flags & p.CKF_LOGIN_REQUIRED) !== 0,
        initialized: (t.flags & p.CKF_TOKEN_INITIALIZED) !== 0,
      },
    };
  });
}

export interface OpenTokenOptions {
  /** Path of the PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`. */
  readonly module: string;
  /** Token label (CK_TOKEN_INFO.label). */
  readonly token?: string | undefined;
  /** Token serial number. */
  readonly serial?: string | undefined;
  /** Slot id (RFC 7512 `slot-id`). */
  readonly slotId?: number | undefined;
  /**
   * User PIN. A token that needs a login (CKF_LOGIN_REQUIRED) and gets no PIN, here or from
   * `pinSource`, is `ERR_HSM_PIN_REQUIRED`: its private keys would otherwise just look absent.
   */
  readonly pin?: string | undefined;
  /**
   * Where the PIN is kept (RFC 7512 `pin-source`: a path or a `file:` URI). Read when `pin` is
   * not given, and written into the URI of every key of the token ({@link TokenKey.uri}), so
   * that a saved reference says where its PIN is (a path, never the PIN).
   */
  readonly pinSource?: string | undefined;
  /** Most sessions used at once (default 4, the size of libuv's thread pool). */
  readonly maxSessions?: number;
}

/** What to generate: the algorithms a CA or a device key may use. */
export type KeySpec =
  | { readonly type: 'rsa'; readonly bits: 2048 | 3072 | 4096 }
  | { readonly type: 'ec'; readonly curve: 'P-256' | 'P-384' };

/** Which key: by CKA_LABEL, by CKA_ID, or both (both must match). */
export interface KeySelector {
  readonly label?: string | undefined;
  readonly id?: Uint8Array | undefined;
}

/** A private key in a token, usable wherever a {@link PrivateKeyRef} is. */
export interface TokenKey extends ExternalKey {
  readonly type: 'rsa' | 'ec';
  /** CKA_ID, shared by the private key, its public key and its implicit-rejection secret. */
  readonly id: Uint8Array;
  /** CKA_LABEL of the private key. */
  readonly objectLabel: string;
  /**
   * RFC 7512 URI naming the key (token, object, id, type=private, module-path, and the
   * `pin-source` the token was opened with); never a PIN.
   */
  readonly uri: string;
}

/** The protection attributes of a private key (base §4.9). */
export interface KeyProtection {
  readonly token: boolean;
  readonly private: boolean;
  readonly sensitive: boolean;
  readonly extractable: boolean;
  readonly alwaysSensitive: boolean;
  readonly neverExtractable: boolean;
}

/** An open, logged-in token. Close it when done: it holds sessions and the module. */
export interface Pkcs11Token {
  readonly info: TokenInfo;
  readonly module: string;
  /** Generates a key pair inside the token. `id` defaults to 16 random bytes. */
  generateKey(
    spec: KeySpec,
    options: { readonly label: string; readonly id?: Uint8Array },
  ): Promise<TokenKey>;
  /**
   * Imports a software private key, laid out as {@link generateKey} lays out a pair (the
   * CKO_PRIVATE_KEY sensitive and not extractable, its CKO_PUBLIC_KEY, one CKA_LABEL and CKA_ID,
   * for RSA the implicit-rejection secret), so every other method treats it as a generated key.
   * RSA (two primes) and EC on P-256/P-384; another key, or a token that takes no private key
   * objects, is `ERR_HSM_UNSUPPORTED`; a public key `ERR_HSM_INVALID_ARGUMENT`; a label or id
   * in use `ERR_HSM_KEY_EXISTS`. A failure midway leaves nothing of the key in the token. Its
   * CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE read false (base §4.9): it has been outside.
   */
  importKey(
    key: KeyObject,
    options: { readonly label: string; readonly id?: Uint8Array },
  ): Promise<TokenKey>;
  /** The key matching `selector`, or undefined. Several matches are `ERR_HSM_INVALID_ARGUMENT`. */
  findKey(selector: KeySelector): Promise<TokenKey | undefined>;
  /** Like {@link findKey}, but a missing key is `ERR_HSM_KEY_NOT_FOUND`. */
  getKey(selector: KeySelector): Promise<TokenKey>;
  /** Every private key the session can see (after login: the private ones too). */
  listKeys(): Promise<TokenKey[]>;
  /** Destroys the private key, its public key and its implicit-rejection secret. */
  deleteKey(selector: KeySelector): Promise<void>;
  /**
   * The key's protection attributes, as the token reports them. `key` is one this process found
   * or made (`ERR_HSM_INVALID_ARGUMENT` otherwise).
   */
  protection(key: TokenKey): Promise<KeyProtection>;
  close(): Promise<void>;
}

/** CKA_LABEL of the secret behind a key's implicit rejection (shares the key's CKA_ID). */
export const IMPLICIT_REJECTION_LABEL = 'certpost implicit rejection';

/**
 * Return values with which a token rejects an RSAES-PKCS1-v1_5 ciphertext (bad padding, wrong
 * length, representative ≥ n). SoftHSM 2.6 reports a padding failure as CKR_GENERAL_ERROR and
 * some tokens as CKR_FUNCTION_FAILED, so those count too: the caller must not be able to tell a
 * bad ciphertext from a good one by an error. A real token failure still surfaces, from the
 * HMAC step that runs first.
 */
const REJECTED_CIPHERTEXT = new Set([
  'CKR_ENCRYPTED_DATA_INVALID',
  'CKR_ENCRYPTED_DATA_LEN_RANGE',
  'CKR_DATA_INVALID',
  'CKR_DATA_LEN_RANGE',
  'CKR_GENERAL_ERROR',
  'CKR_FUNCTION_FAILED',
]);

/** Return values after which a session is gone and a fresh one (logged in again) may succeed. */
const SESSION_LOST = new Set([
  'CKR_SESSION_HANDLE_INVALID',
  'CKR_SESSION_CLOSED',
  'CKR_USER_NOT_LOGGED_IN',
]);

/** DigestInfo prefixes (RFC 8017 §9.2 note 1) for CKM_RSA_PKCS signing. */
const DIGEST_INFO: Readonly<Record<Digest, string>> = {
  sha1: '3021300906052b0e03021a05000414',
  sha256: '3031300d060960864801650304020105000420',
  sha384: '3041300d060960864801650304020205000430',
  sha512: '3051300d060960864801650304020305000440',
};

/** Named-curve OIDs we generate keys on (RFC 5480 §2.1.1.1). */
const CURVE_OIDS: Readonly<Record<'P-256' | 'P-384', string>> = {
  'P-256': '1.2.840.10045.3.1.7',
  'P-384': '1.3.132.0.34',
};

/**
 * Opens a token by label, serial or slot id (the only token when none is given) and logs in
 * with the user PIN. A wrong PIN is `ERR_HSM_PIN_INCORRECT`, a locked one `ERR_HSM_PIN_LOCKED`,
 * a missing one `ERR_HSM_PIN_REQUIRED` (when the token needs a login), no such token
 * `ERR_HSM_TOKEN_NOT_FOUND` (the message lists the labels present).
 */
export async function openToken(o: OpenTokenOptions): Promise<Pkcs11Token> {
  const pin = o.pin ?? (o.pinSource !== undefined ? await readPinSource(o.pinSource) : undefined);
  const m = acquireModule(o.module);
  try {
    const all = tokensOf(m.api);
    const matches = all.filter(
      (t) =>
        (o.token === undefined || t.info.label === o.token) &&
        (o.serial === undefined || t.info.serial === o.serial) &&
        (o.slotId === undefined || t.info.slotId === o.slotId),
    );
    const wanted = [
      o.token !== undefined ? `labelled "${o.token}"` : '',
      o.serial !== undefined ? `with serial ${o.serial}` : '',
      o.slotId !== undefined ? `in slot ${o.slotId}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    if (matches.length === 0)
      throw new HsmError(
        'ERR_HSM_TOKEN_NOT_FOUND',
        `no token ${wanted || 'at all'} in ${o.module} (tokens: ${all.map((t) => `"${t.info.label}"`).join(', ') || 'none'})`,
      );
    if (matches.length > 1)
      throw new HsmError(
        'ERR_HSM_INVALID_ARGUMENT',
        `${matches.length} tokens ${wanted || 'are present'} in ${o.module}: name one by label, serial or slot`,
      );
    const chosen = matches[0]!;
    if (pin === undefined && chosen.info.loginRequired)
      throw new HsmError('ERR_HSM_PIN_REQUIRED', `token "${chosen.info.label}"`);
    const token = new Token(m, chosen.slot, chosen.info, {
      pin,
      pinSource: o.pinSource,
      max: o.maxSessions ?? 4,
    });
    await token.start();
    return token;
  } catch (e) {
    releaseModule(m);
    throw fromPkcs11(e, `opening a token in ${o.module}`);
  }
}

/** A pool of sessions on one token; an operation holds one session from start to end. */
class Sessions {
  readonly #m: LoadedModule;
  readonly #api: Api;
  readonly #slot: Handle;
  readonly #pin: string | undefined;
  #loginRecorded = false;
  readonly #max: number;
  readonly #free: Handle[] = [];
  readonly #waiting: { resolve: (s: Handle) => void; reject: (e: unknown) => void }[] = [];
  #open = 0;
  #closed = false;
  /** Resolves {@link close} once the last session in use has come back. */
  #drained: (() => void) | undefined;
  #pinRejected: HsmError | undefined;

  constructor(m: LoadedModule, slot: Handle, pin: string | undefined, max: number) {
    this.#m = m;
    this.#api = m.api;
    this.#slot = slot;
    this.#pin = pin;
    this.#max = Math.max(1, max);
  }

  /** Opens a R/W session (R/O on a write-protected token) and logs in once per token. */
  #openSession(): Handle {
    if (this.#pinRejected) throw this.#pinRejected;
    const p = pkcs11js();
    let s: Handle;
    try {
      s = this.#api.C_OpenSession(this.#slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    } catch (e) {
      if (ckrOf(e) !== 'CKR_TOKEN_WRITE_PROTECTED') throw e;
      s = this.#api.C_OpenSession(this.#slot, p.CKF_SERIAL_SESSION);
    }
    if (this.#pin === undefined) return s;
    const slotId = slotIdOf(this.#slot);
    const digest = createHash('sha256').update(this.#pin).digest();
    try {
      this.#api.C_Login(s, p.CKU_USER, this.#pin);
    } catch (e) {
      const ckr = ckrOf(e);
      let err: HsmError | undefined;
      if (ckr !== 'CKR_USER_ALREADY_LOGGED_IN') err = fromPkcs11(e, 'logging in to the token');
      else {
        const known = this.#m.logins.get(slotId);
        if (known && !timingSafeEqual(known.pin, digest))
          err = new HsmError('ERR_HSM_PIN_INCORRECT', 'not the PIN this process logged in with');
      }
      if (err) {
        this.#api.C_CloseSession(s);
        if (err.code === 'ERR_HSM_PIN_INCORRECT' || err.code === 'ERR_HSM_PIN_LOCKED')
          this.#pinRejected = err;
        throw err;
      }
    }
    if (!this.#loginRecorded) {
      this.#loginRecorded = true;
      const known = this.#m.logins.get(slotId);
      if (known) known.users++;
      else this.#m.logins.set(slotId, { pin: digest, users: 1 });
    }
    return s;
  }

  async #acquire(): Promise<Handle> {
    if (this.#closed) throw new HsmError('ERR_HSM_SESSION', 'the token has been closed');
    const s = this.#free.pop();
    if (s) return s;
    if (this.#open < this.#max) {
      this.#open++;
      try {
        return this.#openSession();
      } catch (e) {
        this.#open--;
        throw e;
      }
    }
    return new Promise((resolve, reject) => this.#waiting.push({ resolve, reject }));
  }

  #release(s: Handle, broken: boolean): void {
    if (broken || this.#closed) {
      this.#open--;
      try {
        this.#api.C_CloseSession(s);
      } catch {
        // The session is already gone (that is why it is dropped).
      }
      if (this.#closed && this.#open === 0) this.#drained?.();
      const w = this.#waiting.shift();
      if (w) {
        this.#open++;
        try {
          w.resolve(this.#openSession());
        } catch (e) {
          this.#open--;
          w.reject(e);
        }
      }
      return;
    }
    const w = this.#waiting.shift();
    if (w) w.resolve(s);
    else this.#free.push(s);
  }

  /**
   * Runs `f` on a session of its own. A session lost under it (token reset, logged out) is
   * replaced and `f` runs once more; other failures become {@link HsmError}s saying `what`.
   * A session on which the token reported an error is closed rather than reused: not every
   * error ends the operation in progress (base §5.2: e.g. CKR_ARGUMENTS_BAD does not), and the
   * next `*Init` would meet CKR_OPERATION_ACTIVE.
   */
  async run<T>(what: string, f: (s: Handle) => T | Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const s = await this.#acquire();
      let drop = false;
      try {
        return await f(s);
      } catch (e) {
        const ckr = ckrOf(e);
        drop = ckr !== undefined;
        if (!(ckr !== undefined && SESSION_LOST.has(ckr) && attempt === 0))
          throw fromPkcs11(e, what);
      } finally {
        this.#release(s, drop);
      }
    }
  }

  /** The first session, opened (and logged in) now so that a wrong PIN fails the open. */
  async start(): Promise<void> {
    await this.run('logging in to the token', () => undefined);
  }

  /**
   * Closes the pool: waiters are refused, idle sessions closed, and the promise resolves when
   * the sessions still running an operation have finished (the module may be unloaded then,
   * not under a C_SignAsync running in the thread pool).
   */
  close(): Promise<void> {
    this.#closed = true;
    if (this.#loginRecorded) {
      const slotId = slotIdOf(this.#slot);
      const known = this.#m.logins.get(slotId);
      if (known && --known.users === 0) this.#m.logins.delete(slotId);
    }
    for (const w of this.#waiting.splice(0))
      w.reject(new HsmError('ERR_HSM_SESSION', 'the token has been closed'));
    for (const s of this.#free.splice(0)) {
      this.#open--;
      try {
        this.#api.C_CloseSession(s);
      } catch {
        // Closing anyway.
      }
    }
    if (this.#open === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drained = resolve;
    });
  }
}

class Token implements Pkcs11Token {
  readonly info: TokenInfo;
  readonly module: string;
  readonly #m: LoadedModule;
  readonly #slot: Handle;
  readonly #sessions: Sessions;
  readonly #pinSource: string | undefined;
  #mechanisms: Set<number> | undefined;
  #closed = false;

  constructor(
    m: LoadedModule,
    slot: Handle,
    info: TokenInfo,
    o: { pin: string | undefined; pinSource: string | undefined; max: number },
  ) {
    this.#m = m;
    this.#slot = slot;
    this.info = info;
    this.module = m.path;
    this.#pinSource = o.pinSource;
    this.#sessions = new Sessions(m, slot, o.pin, o.max);
  }

  async start(): Promise<void> {
    await this.#sessions.start();
    try {
      this.#mechanisms = new Set(this.#m.api.C_GetMechanismList(this.#slot));
    } catch {
      this.#mechanisms = undefined; // unknown: try the preferred mechanisms
    }
  }

  /** True when the token lists `mech`, or lists nothing (then we just try it). */
  supports(mech: number): boolean {
    return !this.#mechanisms || this.#mechanisms.size === 0 || this.#mechanisms.has(mech);
  }

  get api(): Api {
    return this.#m.api;
  }

  run<T>(what: string, f: (s: Handle) => T | Promise<T>): Promise<T> {
    return this.#sessions.run(what, f);
  }

  uriOf(label: string, id: Uint8Array): string {
    return formatPkcs11Uri({
      token: this.info.label,
      ...(label ? { object: label } : {}),
      ...(id.length ? { id } : {}),
      type: 'private',
      modulePath: this.module,
      ...(this.#pinSource !== undefined ? { pinSource: this.#pinSource } : {}),
    });
  }

  /**
   * Runs `f` once the module's object changes before it have settled (see LoadedModule.changes;
   * that chain never rejects: a failed change is its caller's error, not the next one's).
   */
  #oneChangeAtATime<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#m.changes.then(f);
    this.#m.changes = run.catch(() => undefined);
    return run;
  }

  async generateKey(
    spec: KeySpec,
    options: { readonly label: string; readonly id?: Uint8Array },
  ): Promise<TokenKey> {
    const p = pkcs11js();
    const label = checkLabel(options.label);
    const id = Buffer.from(options.id ?? randomBytes(16));
    const what = `generating ${spec.type === 'rsa' ? `RSA-${spec.bits}` : spec.curve} key "${label}" in token "${this.info.label}"`;
    if (spec.type === 'rsa' && ![2048, 3072, 4096].includes(spec.bits))
      throw new HsmError('ERR_HSM_UNSUPPORTED', `RSA-${spec.bits as number}`);
    if (spec.type === 'ec' && !CURVE_OIDS[spec.curve])
      throw new HsmError('ERR_HSM_UNSUPPORTED', `curve ${spec.curve as string}`);
    return this.#makePair(what, label, id, spec.type, async (s) => {
      const { pub, priv } = pairTemplates(spec.type, label, id);
      let mechanism: number;
      if (spec.type === 'rsa') {
        mechanism = p.CKM_RSA_PKCS_KEY_PAIR_GEN;
        pub.push(
          { type: p.CKA_MODULUS_BITS, value: spec.bits },
          { type: p.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
        );
      } else {
        mechanism = p.CKM_EC_KEY_PAIR_GEN;
        pub.push({
          type: p.CKA_EC_PARAMS,
          value: Buffer.from(der.enc.oid(CURVE_OIDS[spec.curve])),
        });
      }
      const pair = await this.api.C_GenerateKeyPairAsync(s, { mechanism }, pub, priv);
      return pair.privateKey;
    });
  }

  /**
   * By C_CreateObject (base §5.7) of the CKO_PRIVATE_KEY with the key's components, then of its
   * CKO_PUBLIC_KEY.
   *
   * Why not C_UnwrapKey of a wrapped PKCS#8 (base §5.14): the key is in this process already,
   * in the clear (it came out of a PFX decrypted here), and so is the token's library. Wrapping
   * it first needs either a wrapping key whose value this process knows, or a token key that
   * C_Encrypts the plaintext (the workaround for HSMs that refuse plaintext private keys);
   * either way the same plaintext crosses the same in-process PKCS#11 boundary, so wrapping
   * hides it from no one who could read a template. It would only get past a token whose policy
   * refuses plaintext private keys (FIPS-mode HSMs), at the cost of unwrapping into a
   * CKO_PRIVATE_KEY (with CKM_AES_KEY_WRAP_PAD, say), which fewer tokens offer. Such a
   * token, like one that takes no private keys at all (tpm2-pkcs11's C_CreateObject makes
   * public keys, certificates and data objects; its keys are imported with `tpm2_ptool
   * import`), answers `ERR_HSM_UNSUPPORTED` here.
   *
   * The components are views into one DER export, handed to the token and zeroed as soon as
   * it has them (before the key is read back); no message names them. pkcs11js copies a
   * template into native memory for the call only.
   */
  async importKey(
    key: KeyObject,
    options: { readonly label: string; readonly id?: Uint8Array },
  ): Promise<TokenKey> {
    const label = checkLabel(options.label);
    const id = Buffer.from(options.id ?? randomBytes(16));
    const material = keyMaterial(key);
    const what = `importing ${material.describe} key "${label}" into token "${this.info.label}"`;
    try {
      return await this.#makePair(what, label, id, material.type, (s) => {
        try {
          const { pub, priv } = pairTemplates(material.type, label, id);
          // The private key first: a token that refuses it (the likely failure) leaves nothing.
          const privateKey = this.api.C_CreateObject(s, [...priv, ...material.priv]);
          this.api.C_CreateObject(s, [...pub, ...material.pub]);
          return privateKey;
        } finally {
          material.wipe();
        }
      });
    } finally {
      material.wipe(); // also when the pair was never started (a clash, a closed token)
    }
  }

  /**
   * A new key pair: `create` makes it ({@link #newObjects}) and {@link #completePair} reads it
   * back, as one object change of the module (see LoadedModule.changes).
   */
  #makePair(
    what: string,
    label: string,
    id: Buffer,
    type: 'rsa' | 'ec',
    create: (s: Handle) => Handle | Promise<Handle>,
  ): Promise<TokenKey> {
    return this.#oneChangeAtATime(async () =>
      this.#completePair(what, label, id, type, await this.#newObjects(what, label, id, create)),
    );
  }

  /**
   * Runs `create` on a session once neither `label` nor `id` names an object of the token
   * (`ERR_HSM_KEY_EXISTS` otherwise); whatever it created is removed when it fails midway.
   */
  async #newObjects(
    what: string,
    label: string,
    id: Buffer,
    create: (s: Handle) => Handle | Promise<Handle>,
  ): Promise<Handle> {
    const p = pkcs11js();
    let checked = false;
    try {
      return await this.run(what, (s) => {
        const clash =
          findObjects(this.api, s, [{ type: p.CKA_LABEL, value: label }], 1).length +
          findObjects(this.api, s, [{ type: p.CKA_ID, value: id }], 1).length;
        if (clash) throw new HsmError('ERR_HSM_KEY_EXISTS', `"${label}" in "${this.info.label}"`);
        checked = true;
        return create(s);
      });
    } catch (e) {
      if (checked) await this.#removeHalfMade(what, label, id, e);
      throw e;
    }
  }

  /**
   * The {@link TokenKey} for a new private key, and for RSA its implicit-rejection secret (made
   * now, so the first decryption does not write to the token). On failure the pair goes.
   */
  async #completePair(
    what: string,
    label: string,
    id: Buffer,
    type: 'rsa' | 'ec',
    handle: Handle,
  ): Promise<TokenKey> {
    try {
      const key = await this.run(what, (s) => this.#keyFor(s, handle));
      if (type === 'rsa') await this.irSecretFor(id, true);
      return key;
    } catch (e) {
      await this.#removeHalfMade(what, label, id, e);
      throw e;
    }
  }

  /**
   * Destroys every object with CKA_ID `id` (checked free before the key was made, so all are
   * the half-made key's): a half-made key would block its label and never be used.
   */
  async #removeHalfMade(what: string, label: string, id: Buffer, e: unknown): Promise<void> {
    const p = pkcs11js();
    await this.run(`removing the half-made key "${label}"`, (s) => {
      for (const h of findObjects(this.api, s, [{ type: p.CKA_ID, value: id }]))
        this.api.C_DestroyObject(s, h);
    }).catch((cleanup: unknown) => {
      throw new HsmError(
        'ERR_HSM_MODULE',
        `${what} failed (${(e as Error).message}), and the half-made key could not be removed: delete "${label}" by hand`,
        { cause: cleanup },
      );
    });
  }

  async findKey(selector: KeySelector): Promise<TokenKey | undefined> {
    const p = pkcs11js();
    if (selector.label === undefined && selector.id === undefined)
      throw new HsmError('ERR_HSM_INVALID_ARGUMENT', 'name the key by label or id');
    const what = `looking up ${this.#describe(selector)}`;
    return this.run(what, (s) => {
      const found = findObjects(
        this.api,
        s,
        [
          { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
          ...(selector.label !== undefined ? [{ type: p.CKA_LABEL, value: selector.label }] : []),
          ...(selector.id !== undefined
            ? [{ type: p.CKA_ID, value: Buffer.from(selector.id) }]
            : []),
        ],
        2,
      );
      if (found.length > 1)
        throw new HsmError(
          'ERR_HSM_INVALID_ARGUMENT',
          `several keys match ${this.#describe(selector)}: name it by label and id`,
        );
      return found[0] ? this.#keyFor(s, found[0]) : undefined;
    });
  }

  async getKey(selector: KeySelector): Promise<TokenKey> {
    const key = await this.findKey(selector);
    if (!key) throw new HsmError('ERR_HSM_KEY_NOT_FOUND', this.#describe(selector));
    return key;
  }

  async listKeys(): Promise<TokenKey[]> {
    const p = pkcs11js();
    return this.run(`listing the keys of token "${this.info.label}"`, (s) =>
      findObjects(this.api, s, [{ type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }], 4096).flatMap(
        (h) => {
          try {
            return [this.#keyFor(s, h)];
          } catch (e) {
            if (e instanceof HsmError && e.code === 'ERR_HSM_UNSUPPORTED') return []; // DSA, …
            throw e;
          }
        },
      ),
    );
  }

  deleteKey(selector: KeySelector): Promise<void> {
    return this.#oneChangeAtATime(() => this.#deleteKey(selector));
  }

  async #deleteKey(selector: KeySelector): Promise<void> {
    const p = pkcs11js();
    const key = await this.getKey(selector);
    await this.run(`deleting ${key.uri}`, (s) => {
      const id = Buffer.from(key.id);
      const byId = (cls: number, extra: Pkcs11js.Template = []) =>
        findObjects(this.api, s, [
          { type: p.CKA_CLASS, value: cls },
          { type: p.CKA_ID, value: id },
          ...extra,
        ]);
      const objects = id.length
        ? [
            ...byId(p.CKO_PRIVATE_KEY, [{ type: p.CKA_LABEL, value: key.objectLabel }]),
            ...byId(p.CKO_PUBLIC_KEY),
            ...byId(p.CKO_SECRET_KEY, [{ type: p.CKA_LABEL, value: IMPLICIT_REJECTION_LABEL }]),
          ]
        : findObjects(this.api, s, [{ type: p.CKA_LABEL, value: key.objectLabel }]);
      for (const h of objects) this.api.C_DestroyObject(s, h);
    });
    this.#irSecrets.delete(Buffer.from(key.id).toString('hex'));
  }

  async protection(key: TokenKey): Promise<KeyProtection> {
    const p = pkcs11js();
    const handle = handles.get(key);
    if (!handle)
      throw new HsmError('ERR_HSM_INVALID_ARGUMENT', `${key.uri} was not found or made here`);
    return this.run(`reading the attributes of ${key.uri}`, (s) => {
      const [token, priv, sensitive, extractable, alwaysSensitive, neverExtractable] = attributes(
        this.api,
        s,
        handle,
        [
          p.CKA_TOKEN,
          p.CKA_PRIVATE,
          p.CKA_SENSITIVE,
          p.CKA_EXTRACTABLE,
          p.CKA_ALWAYS_SENSITIVE,
          p.CKA_NEVER_EXTRACTABLE,
        ],
      ).map((b) => b.length > 0 && b[0] !== 0);
      return {
        token: token!,
        private: priv!,
        sensitive: sensitive!,
        extractable: extractable!,
        alwaysSensitive: alwaysSensitive!,
        neverExtractable: neverExtractable!,
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#sessions.close();
    releaseModule(this.#m);
  }

  #describe(selector: KeySelector): string {
    return formatPkcs11Uri({
      token: this.info.label,
      ...(selector.label !== undefined ? { object: selector.label } : {}),
      ...(selector.id !== undefined ? { id: selector.id } : {}),
    });
  }

  /** Builds the {@link TokenKey} for a private key handle: reads its public half. */
  #keyFor(s: Handle, handle: Handle): TokenKey {
    const p = pkcs11js();
    const [typeBuf, idBuf, labelBuf] = attributes(this.api, s, handle, [
      p.CKA_KEY_TYPE,
      p.CKA_ID,
      p.CKA_LABEL,
    ]);
    const keyType = ulong(typeBuf!);
    const id = new Uint8Array(idBuf!);
    const label = labelBuf!.toString('utf8');
    const pubHandle = findObjects(
      this.api,
      s,
      [
        { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY },
        { type: p.CKA_KEY_TYPE, value: keyType },
        ...(id.length
          ? [{ type: p.CKA_ID, value: Buffer.from(id) }]
          : [{ type: p.CKA_LABEL, value: label }]),
      ],
      1,
    )[0];
    const uri = this.uriOf(label, id);
    let publicKey: KeyObject;
    if (keyType === p.CKK_RSA) {
      // The modulus and public exponent are not sensitive: the private key object has them too.
      const [n, e] = attributes(this.api, s, pubHandle ?? handle, [
        p.CKA_MODULUS,
        p.CKA_PUBLIC_EXPONENT,
      ]);
      publicKey = createPublicKey({
        key: { kty: 'RSA', n: n!.toString('base64url'), e: e!.toString('base64url') },
        format: 'jwk',
      });
    } else if (keyType === p.CKK_EC) {
      if (!pubHandle) throw new HsmError('ERR_HSM_KEY_NOT_FOUND', `the public key of ${uri}`);
      const [params, point] = attributes(this.api, s, pubHandle, [p.CKA_EC_PARAMS, p.CKA_EC_POINT]);
      publicKey = ecPublicKey(params!, point!, uri);
    } else {
      throw new HsmError('ERR_HSM_UNSUPPORTED', `${uri} is neither RSA nor EC`);
    }
    const key = makeKey(this, handle, keyType === p.CKK_RSA ? 'rsa' : 'ec', {
      id,
      label,
      uri,
      publicKey,
    });
    handles.set(key, handle);
    return key;
  }

  /**
   * The secret behind a key's implicit rejection: found by CKA_ID and label, or generated
   * (CKM_GENERIC_SECRET_KEY_GEN, 32 bytes; token, private, sensitive, non-extractable, sign
   * only). Made with the key, or on its first decryption for a key made by another tool.
   */
  async #irSecret(id: Uint8Array): Promise<Handle> {
    const p = pkcs11js();
    const template = [
      { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
      { type: p.CKA_ID, value: Buffer.from(id) },
      { type: p.CKA_LABEL, value: IMPLICIT_REJECTION_LABEL },
    ];
    return this.run('finding or creating the implicit-rejection secret', async (s) => {
      const found = findObjects(this.api, s, template, 1)[0];
      if (found) return found;
      return this.api.C_GenerateKeyAsync(s, { mechanism: p.CKM_GENERIC_SECRET_KEY_GEN }, [
        ...template,
        { type: p.CKA_KEY_TYPE, value: p.CKK_GENERIC_SECRET },
        { type: p.CKA_VALUE_LEN, value: 32 },
        { type: p.CKA_TOKEN, value: true },
        { type: p.CKA_PRIVATE, value: true },
        { type: p.CKA_SENSITIVE, value: true },
        { type: p.CKA_EXTRACTABLE, value: false },
        { type: p.CKA_SIGN, value: true },
        { type: p.CKA_VERIFY, value: false },
        { type: p.CKA_ENCRYPT, value: false },
        { type: p.CKA_DECRYPT, value: false },
        { type: p.CKA_WRAP, value: false },
        { type: p.CKA_UNWRAP, value: false },
        { type: p.CKA_DERIVE, value: false },
      ]);
    });
  }

  /**
   * Memoised per key: the secret's handle (created on first use when missing). `inChange`: the
   * caller is an object change already (a key being made), which the lookup must not queue
   * behind.
   */
  irSecretFor(id: Uint8Array, inChange = false): Promise<Handle> {
    const k = Buffer.from(id).toString('hex');
    let hit = this.#irSecrets.get(k);
    if (!hit) {
      hit = inChange ? this.#irSecret(id) : this.#oneChangeAtATime(() => this.#irSecret(id));
      hit.catch(() => this.#irSecrets.delete(k));
      this.#irSecrets.set(k, hit);
    }
    return hit;
  }
  readonly #irSecrets = new Map<string, Promise<Handle>>();
}

// ---------------------------------------------------------------------------------------------
// How a key pair is laid out in the token, generated or imported

function checkLabel(label: string): string {
  if (!label) throw new HsmError('ERR_HSM_INVALID_ARGUMENT', 'a key needs a label');
  return label;
}

/**
 * The attributes both objects of every pair we make carry (base §4.8, §4.9): token objects
 * with one CKA_LABEL and CKA_ID; the private key private, sensitive, never extractable, for
 * signing (and RSA decryption); the public key public, for verifying (and RSA encryption).
 * The caller adds the generation parameters or the key's components.
 */
function pairTemplates(
  type: 'rsa' | 'ec',
  label: string,
  id: Buffer,
): { pub: Pkcs11js.Template; priv: Pkcs11js.Template } {
  const p = pkcs11js();
  const rsa = type === 'rsa';
  const common = [
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_LABEL, value: label },
    { type: p.CKA_ID, value: id },
    { type: p.CKA_KEY_TYPE, value: rsa ? p.CKK_RSA : p.CKK_EC },
  ];
  return {
    pub: [
      ...common,
      { type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY },
      { type: p.CKA_PRIVATE, value: false },
      { type: p.CKA_VERIFY, value: true },
      ...(rsa ? [{ type: p.CKA_ENCRYPT, value: true }] : []),
    ],
    priv: [
      ...common,
      { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
      { type: p.CKA_PRIVATE, value: true },
      { type: p.CKA_SENSITIVE, value: true },
      { type: p.CKA_EXTRACTABLE, value: false },
      { type: p.CKA_SIGN, value: true },
      ...(rsa ? [{ type: p.CKA_DECRYPT, value: true }] : []),
    ],
  };
}

/** Node's names of the curves we import keys on. */
const IMPORT_CURVES: Readonly<Record<string, 'P-256' | 'P-384'>> = {
  prime256v1: 'P-256',
  secp384r1: 'P-384',
};

/** A software key's components as PKCS#11 attributes; {@link KeyMaterial.wipe} zeroes them. */
interface KeyMaterial {
  readonly type: 'rsa' | 'ec';
  /** `RSA-2048`, `P-256`: for messages. */
  readonly describe: string;
  /** The private key object's components. */
  readonly priv: Pkcs11js.Template;
  /** The public key object's. */
  readonly pub: Pkcs11js.Template;
  wipe(): void;
}

/**
 * A DER INTEGER as a PKCS#11 "Big integer" (unsigned, most significant byte first): a view
 * into the export, without the sign octet DER puts before a high bit.
 */
function bigInteger(n: der.Asn1): Buffer {
  const v = der.value(n);
  const skip = v.length > 1 && v[0] === 0 ? 1 : 0;
  return Buffer.from(v.buffer, v.byteOffset + skip, v.byteLength - skip);
}

/**
 * The components of an RSA key (RFC 8017 §A.1.2 RSAPrivateKey, two primes) or of an EC key on
 * P-256/P-384 (RFC 5915 ECPrivateKey, the point from its SPKI), as the attributes of
 * mechanisms §2.1.3 (RSA private key objects) and §2.3.4 (EC private key objects). They are
 * views into one DER export, so one `fill(0)` wipes them all.
 */
function keyMaterial(key: KeyObject): KeyMaterial {
  const p = pkcs11js();
  if (key.type !== 'private')
    throw new HsmError(
      'ERR_HSM_INVALID_ARGUMENT',
      `a ${key.type} key cannot be imported as private`,
    );
  const kind = key.asymmetricKeyType;
  if (kind === 'rsa') {
    const exported = key.export({ type: 'pkcs1', format: 'der' });
    try {
      const fields = der.seq(der.decode(exported), 'RSAPrivateKey');
      // Version 1 is multi-prime (RFC 8017 §A.1.2), which CKO_PRIVATE_KEY cannot hold.
      if (fields.length !== 9 || der.smallInt(fields[0]!) !== 0)
        throw new HsmError('ERR_HSM_UNSUPPORTED', 'a multi-prime RSA key');
      const [n, e, d, p1, p2, e1, e2, coefficient] = fields.slice(1).map(bigInteger);
      return {
        type: 'rsa',
        describe: `RSA-${key.asymmetricKeyDetails?.modulusLength ?? '?'}`,
        priv: [
          { type: p.CKA_MODULUS, value: n! },
          { type: p.CKA_PUBLIC_EXPONENT, value: e! },
          { type: p.CKA_PRIVATE_EXPONENT, value: d! },
          { type: p.CKA_PRIME_1, value: p1! },
          { type: p.CKA_PRIME_2, value: p2! },
          { type: p.CKA_EXPONENT_1, value: e1! },
          { type: p.CKA_EXPONENT_2, value: e2! },
          { type: p.CKA_COEFFICIENT, value: coefficient! },
        ],
        pub: [
          { type: p.CKA_MODULUS, value: n! },
          { type: p.CKA_PUBLIC_EXPONENT, value: e! },
        ],
        wipe: () => exported.fill(0),
      };
    } catch (err) {
      exported.fill(0);
      throw err;
    }
  }
  const curve =
    kind === 'ec' ? IMPORT_CURVES[key.asymmetricKeyDetails?.namedCurve ?? ''] : undefined;
  if (!curve)
    throw new HsmError(
      'ERR_HSM_UNSUPPORTED',
      kind === 'ec'
        ? `an EC key on ${key.asymmetricKeyDetails?.namedCurve ?? 'an unnamed curve'} (P-256 and P-384 are imported)`
        : `a ${kind ?? 'key'} key (RSA and EC keys are imported)`,
    );
  const spki = der.seq(
    der.decode(createPublicKey(key).export({ type: 'spki', format: 'der' })),
    'SubjectPublicKeyInfo',
  );
  const point = der.bitString(spki[1]!).bytes;
  const params = Buffer.from(der.enc.oid(CURVE_OIDS[curve]));
  const exported = key.export({ type: 'sec1', format: 'der' });
  try {
    const fields = der.seq(der.decode(exported), 'ECPrivateKey');
    const d = der.value(der.expect(fields[1], der.Tag.OCTET_STRING, 'ECPrivateKey.privateKey'));
    return {
      type: 'ec',
      describe: curve,
      priv: [
        { type: p.CKA_EC_PARAMS, value: params },
        { type: p.CKA_VALUE, value: Buffer.from(d.buffer, d.byteOffset, d.byteLength) },
      ],
      pub: [
        { type: p.CKA_EC_PARAMS, value: params },
        // The DER OCTET STRING around the uncompressed point (mechanisms §2.3.3).
        { type: p.CKA_EC_POINT, value: Buffer.from(der.enc.octets(point)) },
      ],
      wipe: () => exported.fill(0),
    };
  } catch (err) {
    exported.fill(0);
    throw err;
  }
}

/** The private key handle behind each {@link TokenKey} we made. */
const handles = new WeakMap<TokenKey, Handle>();

/**
 * SPKI for an EC public key object: CKA_EC_PARAMS is the DER ECParameters (a namedCurve OID);
 * CKA_EC_POINT is the DER OCTET STRING around the uncompressed point (v2.40 §2.3.3), which some
 * tokens give bare.
 */
function ecPublicKey(params: Buffer, point: Buffer, uri: string): KeyObject {
  let oid: string;
  try {
    oid = der.oid(der.decode(params));
  } catch (e) {
    throw new HsmError('ERR_HSM_UNSUPPORTED', `${uri}: EC parameters are not a named curve`, {
      cause: e,
    });
  }
  if (!CURVES[oid]) throw new HsmError('ERR_HSM_UNSUPPORTED', `${uri}: curve ${oid}`);
  let raw: Uint8Array = point;
  if (point[0] === der.Tag.OCTET_STRING) {
    try {
      raw = der.octets(der.decode(point));
    } catch {
      raw = point; // a bare point that happens to start with 0x04
    }
  }
  const spki = der.enc.seq(der.enc.seq(der.enc.oid(ALG.ecPublicKey), params), der.enc.bits(raw));
  return createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
}

/** `r || s` (each `n` octets, PKCS#11 v2.40 mechanisms §2.3.1) → DER ECDSA-Sig-Value. */
export function ecdsaRawToDer(sig: Uint8Array): Uint8Array {
  if (sig.length === 0 || sig.length % 2)
    throw new HsmError('ERR_HSM_DEVICE', `an ECDSA signature of ${sig.length} bytes`);
  const n = sig.length / 2;
  return der.enc.seq(der.enc.uint(sig.subarray(0, n)), der.enc.uint(sig.subarray(n)));
}

function makeKey(
  token: Token,
  handle: Handle,
  type: 'rsa' | 'ec',
  o: { id: Uint8Array; label: string; uri: string; publicKey: KeyObject },
): TokenKey {
  const p = pkcs11js();
  const details = o.publicKey.asymmetricKeyDetails;
  const k = type === 'rsa' ? Math.ceil((details?.modulusLength ?? 2048) / 8) : 0;
  const ecBytes =
    type === 'ec' ? Math.ceil((CURVES_BY_NAME[details?.namedCurve ?? ''] ?? 521) / 8) : 0;
  const rsaSha: Readonly<Record<Digest, number>> = {
    sha1: p.CKM_SHA1_RSA_PKCS,
    sha256: p.CKM_SHA256_RSA_PKCS,
    sha384: p.CKM_SHA384_RSA_PKCS,
    sha512: p.CKM_SHA512_RSA_PKCS,
  };

  const sign = async (data: Uint8Array, hash: Digest | null): Promise<Uint8Array> => {
    if (hash === null)
      throw new HsmError('ERR_HSM_UNSUPPORTED', `${o.uri} signs a digest; none was named`);
    let mechanism: number;
    let input: Buffer;
    if (type === 'rsa') {
      if (token.supports(rsaSha[hash])) {
        mechanism = rsaSha[hash];
        input = Buffer.from(data);
      } else {
        mechanism = p.CKM_RSA_PKCS;
        input = Buffer.concat([
          Buffer.from(DIGEST_INFO[hash], 'hex'),
          createHash(hash).update(data).digest(),
        ]);
      }
    } else {
      mechanism = p.CKM_ECDSA;
      input = createHash(hash).update(data).digest();
    }
    const sig = await token.run(`signing with ${o.uri}`, async (s) => {
      token.api.C_SignInit(s, { mechanism }, handle);
      return token.api.C_SignAsync(s, input, Buffer.alloc(type === 'rsa' ? k : 2 * ecBytes));
    });
    return type === 'rsa' ? new Uint8Array(sig) : ecdsaRawToDer(sig);
  };

  const decrypt = async (ciphertext: Uint8Array): Promise<Uint8Array> => {
    // Everything up to C_Decrypt is done for every ciphertext alike, so neither the work nor
    // an error before it depends on the padding. The secret's errors are the token's own.
    const secret = await token.irSecretFor(o.id);
    // The KDK input is the ciphertext as a k-octet string (left-padded like OpenSSL's).
    const padded = ciphertext.length < k ? Buffer.alloc(k) : Buffer.from(ciphertext);
    if (ciphertext.length < k) padded.set(ciphertext, k - ciphertext.length);
    // One session for both steps (a SCEP request is one decryption: one pool round-trip).
    return token.run(`decrypting with ${o.uri}`, async (s) => {
      token.api.C_SignInit(s, { mechanism: p.CKM_SHA256_HMAC }, secret);
      const synthetic = syntheticMessage(
        await token.api.C_SignAsync(s, padded, Buffer.alloc(32)),
        k,
      );
      // A ciphertext that is not k octets (RFC 8017 §7.2.2 step 1) is refused by length alone,
      // which is public; tokens answer it with assorted errors (SoftHSM: CKR_ARGUMENTS_BAD for
      // an empty one), so it is answered here, without asking the token.
      if (ciphertext.length !== k) return synthetic;
      token.api.C_DecryptInit(s, { mechanism: p.CKM_RSA_PKCS }, handle);
      try {
        return new Uint8Array(
          await token.api.C_DecryptAsync(s, Buffer.from(ciphertext), Buffer.alloc(k)),
        );
      } catch (e) {
        const ckr = ckrOf(e);
        if (ckr !== undefined && REJECTED_CIPHERTEXT.has(ckr)) return synthetic;
        throw e;
      }
    });
  };

  return {
    kind: 'external',
    label: o.uri,
    publicKey: o.publicKey,
    type,
    id: o.id,
    objectLabel: o.label,
    uri: o.uri,
    sign,
    ...(type === 'rsa' ? { decrypt } : {}),
  };
}

const CURVES_BY_NAME: Readonly<Record<string, number>> = {
  prime256v1: 256,
  secp384r1: 384,
  secp521r1: 521,
};

// ---------------------------------------------------------------------------------------------
// Configuration by URI

/**
 * Reads a PIN from a file (first line; a trailing newline is dropped). `source` is a path or
 * a `file:` URI, as RFC 7512's `pin-source`.
 */
export async function readPinSource(source: string): Promise<string> {
  const path = source.startsWith('file:') ? fileURLToPath(source) : source;
  const content = await readFile(path, 'utf8');
  const pin = content.split(/\r?\n/)[0] ?? '';
  // An empty PIN would cost one of the token's few login attempts for nothing.
  if (pin === '') throw new HsmError('ERR_HSM_PIN_REQUIRED', `the PIN file ${path} is empty`);
  return pin;
}

export interface OpenByUriOptions {
  /** The PIN (from `--pkcs11-pin-file` or an environment variable). Overrides the URI's. */
  readonly pin?: string | undefined;
  /** Module when the URI has no `module-path`. */
  readonly module?: string | undefined;
}

/**
 * Opens the token a URI names and the key it names in it (`object` and/or `id`). The PIN is
 * as {@link openTokenByUri} takes it. The caller closes `token` when done.
 */
export async function openKeyByUri(
  uri: string | Pkcs11Uri,
  options: OpenByUriOptions = {},
): Promise<{ token: Pkcs11Token; key: TokenKey }> {
  const u = typeof uri === 'string' ? parsePkcs11Uri(uri) : uri;
  const token = await openTokenByUri(u, options);
  try {
    return { token, key: await token.getKey(keySelectorOf(u)) };
  } catch (e) {
    await token.close();
    throw e;
  }
}

/** The key a URI names; a URI naming none is `ERR_HSM_INVALID_URI`. */
function keySelectorOf(u: Pkcs11Uri): KeySelector {
  if (u.object === undefined && u.id === undefined)
    throw new HsmError('ERR_HSM_INVALID_URI', 'the URI names no key (object= or id=)');
  return { label: u.object, id: u.id };
}

/**
 * Opens the token a URI names (`token`, `serial`, `slot-id`) and logs in: the PIN is
 * `options.pin`, else the URI's `pin-value`, else read from its `pin-source` (which the URIs
 * of the token's keys then carry); see {@link openToken} for a missing or wrong one.
 */
export async function openTokenByUri(
  uri: string | Pkcs11Uri,
  options: OpenByUriOptions = {},
): Promise<Pkcs11Token> {
  const u = typeof uri === 'string' ? parsePkcs11Uri(uri) : uri;
  const module = u.modulePath ?? options.module;
  if (!module) throw new HsmError('ERR_HSM_INVALID_URI', 'the URI has no module-path');
  return openToken({
    module,
    token: u.token,
    serial: u.serial,
    slotId: u.slotId,
    pin: options.pin ?? u.pinValue,
    pinSource: u.pinSource,
  });
}

/** Opens keys by URI, sharing one open token per module and token; see {@link createKeyring}. */
export interface Pkcs11Keyring {
  /** The key a URI names (`object` and/or `id`), from its token (opened on first use). */
  open(uri: string | Pkcs11Uri): Promise<TokenKey>;
  /** The token a URI names, opened and logged in on first use. */
  token(uri: string | Pkcs11Uri): Promise<Pkcs11Token>;
  /** Closes every token opened through the keyring; it opens none afterwards. */
  close(): Promise<void>;
}

/**
 * A keyring: what a process that uses several keys of one token (a CA's root and issuing key)
 * holds, so that the token is opened and logged in once. PINs are resolved, and a missing one
 * refused, as {@link openTokenByUri} does.
 */
export function createKeyring(options: OpenByUriOptions = {}): Pkcs11Keyring {
  const tokens = new Map<string, Promise<Pkcs11Token>>();
  let closed = false;
  const token = (uri: string | Pkcs11Uri): Promise<Pkcs11Token> => {
    if (closed) return Promise.reject(new HsmError('ERR_HSM_SESSION', 'the keyring is closed'));
    const u = typeof uri === 'string' ? parsePkcs11Uri(uri) : uri;
    const id = JSON.stringify([u.modulePath ?? options.module, u.token, u.serial, u.slotId]);
    let hit = tokens.get(id);
    if (!hit) {
      hit = openTokenByUri(u, options);
      hit.catch(() => tokens.delete(id));
      tokens.set(id, hit);
    }
    return hit;
  };
  return {
    token,
    async open(uri) {
      const u = typeof uri === 'string' ? parsePkcs11Uri(uri) : uri;
      const selector = keySelectorOf(u);
      return (await token(u)).getKey(selector);
    },
    async close() {
      closed = true;
      const all = [...tokens.values()];
      tokens.clear();
      for (const t of await Promise.allSettled(all))
        if (t.status === 'fulfilled') await t.value.close();
    },
  };
}

/**
 * New keys made in one token for one purpose (the keys of a CA) that must all stay or all go:
 * `labelOf` names each by what it is for (its `role`). {@link KeyBatch.discard} deletes every
 * key made through the batch since the last {@link KeyBatch.keep}; use it as
 * `try { …; batch.keep(); } finally { await batch.discard(); }`.
 */
export interface KeyBatch {
  /** Generates a key in the token (sizes and curves it cannot make: `ERR_HSM_UNSUPPORTED`). */
  generate(
    spec:
      | { readonly type: 'rsa'; readonly bits: number }
      | { readonly type: 'ec'; readonly curve: string },
    role: string,
  ): Promise<TokenKey>;
  /** Puts a software private key into the token ({@link Pkcs11Token.importKey}). */
  adopt(key: KeyObject, role: string): Promise<TokenKey>;
  /** The keys made so far stay. */
  keep(): void;
  /** Deletes the keys made since the last {@link keep}, as far as the token lets it. */
  discard(): Promise<void>;
}

export function keyBatch(token: Pkcs11Token, labelOf: (role: string) => string): KeyBatch {
  const made: TokenKey[] = [];
  const track = async (making: Promise<TokenKey>) => {
    const key = await making;
    made.push(key);
    return key;
  };
  return {
    // generateKey checks the size or curve at run time, whatever the static type says.
    generate: (spec, role) => track(token.generateKey(spec as KeySpec, { label: labelOf(role) })),
    adopt: (key, role) => track(token.importKey(key, { label: labelOf(role) })),
    keep: () => {
      made.length = 0;
    },
    async discard() {
      for (const key of made.splice(0))
        await token.deleteKey({ id: key.id, label: key.objectLabel }).catch(() => undefined);
    },
  };
}
