/**
 * Password hashing for portal users: scrypt (RFC 7914) with a random 16-byte salt per password
 * and the parameters stored with the hash, so they can be raised later without invalidating
 * stored hashes:
 *
 * ```text
 * scrypt$<N>$<r>$<p>$<salt, base64url>$<32-byte key, base64url>
 * ```
 *
 * The default, N = 2^15, r = 8, p = 3, is one of OWASP's equivalent scrypt settings
 * (Password Storage Cheat Sheet): ~32 MiB per hash, so a burst of sign-ins cannot exhaust the
 * server's memory the way N = 2^17 (128 MiB each) could. Verification compares in constant
 * time, and refuses stored parameters beyond {@link LIMITS} rather than run them.
 */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export interface ScryptParams {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

export const DEFAULT_PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 3 };

/** The most a stored hash may ask for (a tampered row must not make sign-in a memory bomb). */
const LIMITS = { N: 2 ** 20, r: 32, p: 16 } as const;

const KEY_BYTES = 32;
const SALT_BYTES = 16;

/** Accepted password lengths, in characters (NIST SP 800-63B §3.1.1.2: at least 8; we ask 10). */
export const PASSWORD_MIN = 10;
export const PASSWORD_MAX = 1024;

function derive(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = {
    N: params.N,
    r: params.r,
    p: params.p,
    // scrypt needs 128·N·r bytes; Node refuses above maxmem (32 MiB by default).
    maxmem: 128 * params.N * params.r + 1024 * 1024,
  };
  return new Promise((resolve, reject) =>
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, options, (e, key) =>
      e ? reject(e) : resolve(key),
    ),
  );
}

/** The encoded hash of `password` with a fresh salt. */
export async function hashPassword(
  password: string,
  params: ScryptParams = DEFAULT_PARAMS,
): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

function parse(encoded: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const m =
    /^scrypt\$(\d{1,8})\$(\d{1,3})\$(\d{1,3})\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$/.exec(
      encoded,
    );
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (
    N < 2 ||
    (N & (N - 1)) !== 0 ||
    N > LIMITS.N ||
    r < 1 ||
    r > LIMITS.r ||
    p < 1 ||
    p > LIMITS.p
  )
    return undefined;
  return {
    params: { N, r, p },
    salt: Buffer.from(m[4]!, 'base64url'),
    key: Buffer.from(m[5]!, 'base64url'),
  };
}

/**
 * True when `password` matches the encoded hash. A hash that is malformed or asks for more
 * than the limits never matches (and still costs one default hash, so timing tells nothing).
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parse(encoded);
  if (!parsed) {
    await derive(password, randomBytes(SALT_BYTES), DEFAULT_PARAMS);
    return false;
  }
  const key = await derive(password, parsed.salt, parsed.params);
  return key.length === parsed.key.length && timingSafeEqual(key, parsed.key);
}

/** Whether a stored hash was made with weaker parameters than `params` (rehash at sign-in). */
export function needsRehash(encoded: string, params: ScryptParams = DEFAULT_PARAMS): boolean {
  const parsed = parse(encoded);
  return (
    !parsed ||
    parsed.params.N < params.N ||
    parsed.params.r < params.r ||
    parsed.params.p < params.p
  );
}

/**
 * A hash of nothing anyone knows, for signing in as a user that does not exist: checking a
 * password against it costs what a real check costs, so the response time does not tell
 * whether the name exists.
 */
export const DUMMY_HASH = `scrypt$${DEFAULT_PARAMS.N}$${DEFAULT_PARAMS.r}$${DEFAULT_PARAMS.p}$${'A'.repeat(22)}$${'A'.repeat(43)}`;
