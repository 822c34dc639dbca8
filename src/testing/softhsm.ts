/**
 * Test kit: a throwaway SoftHSM2 token. Each call makes its own token directory and
 * `softhsm2.conf` in a temp dir, points `SOFTHSM2_CONF` at it (in this process, and in the
 * `env` handed to child processes), and initialises one token with `softhsm2-util`. Nothing
 * touches `/var/lib/softhsm`. The directory is removed by {@link SoftHsmToken.remove} or when
 * the test process exits. SoftHSM2 is Debian's `softhsm2` (`.ci/run` installs it); a missing
 * tool is a test failure naming the package, never a skip.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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
  /** Deletes the token directory. */
  remove(): void;
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
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

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
