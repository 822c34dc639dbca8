/**
 * Test kit: a throwaway SoftHSM2 token. Each call makes its own token directory and
 * `softhsm2.conf` in a temp dir, points `SOFTHSM2_CONF` at it (in this process, and in the
 * `env` handed to child processes), and initialises one token with `softhsm2-util`. Nothing
 * touches `/var/lib/softhsm`. The directory is removed by {@link SoftHsmToken.remove} or when
 * the test process exits. SoftHSM2 is Debian's `softhsm2` (`.ci/run` installs it); a missing
 * tool is a test failure naming the package, never a skip.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type * as Pkcs11js from 'pkcs11js';
import { tempDir } from './tools.ts';

/** Where Debian's softhsm2 installs the PKCS#11 module. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  readonly module: string;
  readonly label: string;
  readonly userPin: string;
  readonly soPin: string;
  /** The generated `softhsm2.conf`. */
  readonly conf: string;
  /** `process.env` plus `SOFTHSM2_CONF`, for child processes. */
  readonly env: NodeJS.ProcessEnv;
  /** A `pkcs11:` URI for the token (no PIN), with `module-path`. */
  readonly uri: string;
  /** Runs OpenSC's `pkcs11-tool` against the token (logged in with the user PIN) and returns stdout. */
  pkcs11Tool(args: readonly string[]): string;
  /**
   * Runs `f` on a session of a second, independent PKCS#11 client in this process (same module,
   * same login state), for what certpost's token API does not offer: reading attributes,
   * wrapping, raw HMAC.
   */
  rawSession<T>(f: (raw: RawSession) => T): T;
  /**
   * Asserts that the private key labelled `label` gives none of its secret components
   * (CKR_ATTRIBUTE_SENSITIVE, PKCS#11 v2.40 base §5.7 C_GetAttributeValue: CKA_VALUE of an EC
   * key, CKA_PRIVATE_EXPONENT and the CRT values of an RSA key) and cannot be wrapped out
   * under a key of our own (CKR_KEY_UNEXTRACTABLE, base §5.14 C_WrapKey).
   */
  assertUnreadable(label: string): void;
  /** Deletes the token directory. */
  remove(): void;
}

/** A session of the raw client ({@link SoftHsmToken.rawSession}). */
export interface RawSession {
  readonly p: typeof Pkcs11js;
  readonly api: Pkcs11js.PKCS11;
  readonly s: Buffer;
  /** The objects matching `template` (up to 64). */
  find(template: Pkcs11js.Template): Buffer[];
}

/**
 * Creates a SoftHSM2 token labelled `label` with random PINs, and sets `SOFTHSM2_CONF` in
 * `process.env` to its configuration (SoftHSM reads it when the module is initialised, so every
 * module opened in this process after the call sees this token directory only).
 */
export function createSoftHsmToken(label = 'certpost-test'): SoftHsmToken {
  if (!existsSync(SOFTHSM_MODULE))
    throw new Error(`${SOFTHSM_MODULE} is missing: apt-get install softhsm2 (.ci/run does this)`);
  const dir = tempDir('certpost-softhsm-');
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(
    conf,
    `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
  );
  process.env['SOFTHSM2_CONF'] = conf;
  const env = { ...process.env, SOFTHSM2_CONF: conf };
  const userPin = randomBytes(6).toString('hex');
  const soPin = randomBytes(6).toString('hex');
  exec(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--so-pin', soPin, '--pin', userPin],
    env,
    'softhsm2',
  );
  return {
    module: SOFTHSM_MODULE,
    label,
    userPin,
    soPin,
    conf,
    env,
    uri: `pkcs11:token=${encodeURIComponent(label)}?module-path=${SOFTHSM_MODULE}`,
    pkcs11Tool: (args) =>
      exec(
        'pkcs11-tool',
        ['--module', SOFTHSM_MODULE, '--token-label', label, '--login', '--pin', userPin, ...args],
        env,
        'opensc',
      ),
    rawSession: (f) => rawSession(label, userPin, f),
    assertUnreadable: (key) => rawSession(label, userPin, (raw) => assertUnreadable(raw, key)),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function rawSession<T>(label: string, pin: string, f: (raw: RawSession) => T): T {
  const p = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11js;
  const api = new p.PKCS11();
  api.load(SOFTHSM_MODULE);
  let initialised = true;
  try {
    api.C_Initialize();
  } catch (e) {
    // certpost's own token code in this process initialised it: share, and leave it so.
    assert.match((e as Error).message, /CKR_CRYPTOKI_ALREADY_INITIALIZED/);
    initialised = false;
  }
  try {
    const slot = api.C_GetSlotList(true).find((x) => api.C_GetTokenInfo(x).label.trim() === label);
    assert.ok(slot, `token "${label}"`);
    const s = api.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
    try {
      try {
        api.C_Login(s, p.CKU_USER, pin);
      } catch (e) {
        assert.match((e as Error).message, /CKR_USER_ALREADY_LOGGED_IN/);
      }
      const find = (template: Pkcs11js.Template) => {
        api.C_FindObjectsInit(s, template);
        try {
          return api.C_FindObjects(s, 64);
        } finally {
          api.C_FindObjectsFinal(s);
        }
      };
      return f({ p, api, s, find });
    } finally {
      api.C_CloseSession(s);
    }
  } finally {
    if (initialised) api.C_Finalize();
  }
}

function assertUnreadable({ p, api, s, find }: RawSession, label: string): void {
  const [h] = find([
    { type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY },
    { type: p.CKA_LABEL, value: label },
  ]);
  assert.ok(h, label);
  const isRsa = ulongOf(api.C_GetAttributeValue(s, h, [{ type: p.CKA_KEY_TYPE }])) === p.CKK_RSA;
  const secrets = isRsa
    ? [
        p.CKA_PRIVATE_EXPONENT,
        p.CKA_PRIME_1,
        p.CKA_PRIME_2,
        p.CKA_EXPONENT_1,
        p.CKA_EXPONENT_2,
        p.CKA_COEFFICIENT,
      ]
    : [p.CKA_VALUE];
  for (const type of secrets)
    assert.throws(
      () => api.C_GetAttributeValue(s, h, [{ type }]),
      /CKR_ATTRIBUTE_SENSITIVE/,
      `${label}: attribute 0x${type.toString(16)}`,
    );
  const kek = api.C_GenerateKey(s, { mechanism: p.CKM_AES_KEY_GEN }, [
    { type: p.CKA_TOKEN, value: false },
    { type: p.CKA_VALUE_LEN, value: 32 },
    { type: p.CKA_WRAP, value: true },
  ]);
  assert.throws(
    () => api.C_WrapKey(s, { mechanism: p.CKM_AES_KEY_WRAP_PAD }, kek, h, Buffer.alloc(8192)),
    /CKR_KEY_UNEXTRACTABLE/,
  );
}

const ulongOf = (attrs: Pkcs11js.Template) => {
  const v = attrs[0]!.value as Buffer;
  return v.length >= 8 ? Number(v.readBigUInt64LE(0)) : v.readUInt32LE(0);
};

function exec(tool: string, args: string[], env: NodeJS.ProcessEnv, pkg: string): string {
  try {
    return execFileSync(tool, args, { env, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    if (err.code === 'ENOENT')
      throw new Error(`${tool} is not installed: apt-get install ${pkg} (.ci/run does this)`, {
        cause: e,
      });
    throw new Error(`${tool} failed: ${err.stderr?.toString() ?? err.message}`, { cause: e });
  }
}
