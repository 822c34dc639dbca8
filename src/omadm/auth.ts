/**
 * OMA DM application-level authentication with MD5 digest (OMA-TS-DM_Security-V1_2 §5.3,
 * MS-MDM §2.2.3): the credentials a device sends in `SyncHdr/Cred` when the transport does not
 * authenticate it (plain HTTP; certpost's default listener and `fleet`).
 *
 *   digest = B64( MD5( B64( MD5(username ":" password) ) ":" nonce ) )
 *
 * with `nonce` the raw bytes the server last sent as `Chal/Meta/NextNonce` (base64 there). The
 * server keeps only B64(MD5(username:password)) — all a verifier needs (and, as with any digest
 * scheme, all a forger needs: it is stored like a password). A fresh nonce with every answer
 * makes a captured message useless for a replay.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Cred, Meta } from './syncml.ts';

export const AUTH_MD5 = 'syncml:auth-md5';

const md5 = (data: string | Buffer) => createHash('md5').update(data).digest();

/** B64(MD5(username:password)): what the server stores. */
export function credentialHash(username: string, password: string): string {
  return md5(`${username}:${password}`).toString('base64');
}

/** The digest for a credential hash and the raw nonce. */
export function digestOf(hash: string, nonce: Uint8Array): string {
  return md5(Buffer.concat([Buffer.from(`${hash}:`), nonce])).toString('base64');
}

/** The `Cred` a device sends. */
export function md5Cred(username: string, password: string, nonce: Uint8Array): Cred {
  return {
    meta: { type: AUTH_MD5, format: 'b64' },
    data: digestOf(credentialHash(username, password), nonce),
  };
}

/** A new server nonce (16 random bytes), as the base64 text NextNonce carries. */
export function newNonce(): string {
  return randomBytes(16).toString('base64');
}

/** The challenge a server puts in the SyncHdr Status (`Chal`). */
export function md5Challenge(nextNonce: string): { readonly meta: Meta } {
  return { meta: { type: AUTH_MD5, format: 'b64', nextNonce } };
}

/** True when `cred` is the MD5 digest for `hash` and the base64 `nonce`; constant-time. */
export function verifyMd5Cred(cred: Cred | undefined, hash: string, nonce: string): boolean {
  if (!cred || cred.meta?.type !== AUTH_MD5) return false;
  const expected = Buffer.from(digestOf(hash, Buffer.from(nonce, 'base64')));
  const given = Buffer.from(cred.data.trim());
  return given.length === expected.length && timingSafeEqual(given, expected);
}
