/**
 * The synthetic message follows OpenSSL's implicit rejection exactly once the KDK is fixed:
 * with OpenSSL's own KDK (HMAC-SHA256 keyed with SHA-256 of the private exponent), ours equals
 * what Node 24's `privateDecrypt` (OpenSSL 3.5) returns for a ciphertext with bad padding.
 */
import assert from 'node:assert/strict';
import {
  constants,
  createHash,
  createHmac,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { describe, it } from 'node:test';
import { irPrf, syntheticMessage } from './implicit-rejection.ts';

/** RSA without padding: c = m^e mod n, to make ciphertexts with chosen (bad) padding. */
function rawEncrypt(pub: import('node:crypto').KeyObject, em: Buffer): Buffer {
  return publicEncrypt({ key: pub, padding: constants.RSA_NO_PADDING }, em);
}

describe('implicit rejection', () => {
  for (const bits of [2048, 3072]) {
    it(`matches OpenSSL's synthetic messages for RSA-${bits} when keyed the same way`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
      const k = bits / 8;
      const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
      const dHash = createHash('sha256')
        .update(Buffer.concat([Buffer.alloc(k - d.length), d]))
        .digest();
      const lengths = new Set<number>();
      for (let i = 0; i < 20; i++) {
        // 00 01 … is a type-1 (signature) block: always a padding failure for decryption.
        const em = Buffer.concat([Buffer.from([0, 1]), randomBytes(k - 2)]);
        const c = rawEncrypt(publicKey, em);
        const openssl = privateDecrypt(
          { key: privateKey, padding: constants.RSA_PKCS1_PADDING },
          c,
        );
        const kdk = createHmac('sha256', dHash).update(c).digest();
        const ours = syntheticMessage(kdk, k);
        assert.deepEqual(Buffer.from(ours), openssl);
        assert.ok(ours.length <= k - 11);
        lengths.add(ours.length);
      }
      assert.ok(lengths.size > 10, 'the length varies with the ciphertext');
    });
  }

  it('IRPRF is HMAC-SHA256 in counter mode, truncated', () => {
    const kdk = randomBytes(32);
    const t0 = createHmac('sha256', kdk)
      .update(Buffer.from([0, 0]))
      .update('message')
      .update(Buffer.from([0x08, 0x00]))
      .digest();
    const out = irPrf(kdk, 'message', 256);
    assert.equal(out.length, 256);
    assert.deepEqual(out.subarray(0, 32), t0);
    assert.deepEqual(irPrf(kdk, 'message', 40, 2048).subarray(0, 32), t0);
  });
});
