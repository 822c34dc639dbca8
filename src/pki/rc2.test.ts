import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import {
  rc2CbcDecrypt,
  rc2CbcEncrypt,
  rc2DecryptBlock,
  rc2EncryptBlock,
  rc2ExpandKey,
} from './rc2.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ''), 'hex'));

/** RFC 2268 §5, all eight vectors: key, effective bits, plaintext, ciphertext. */
const RFC2268_VECTORS: readonly [string, number, string, string][] = [
  ['0000000000000000', 63, '0000000000000000', 'ebb773f993278eff'],
  ['ffffffffffffffff', 64, 'ffffffffffffffff', '278b27e42e2f0d49'],
  ['3000000000000000', 64, '1000000000000001', '30649edf9be7d2c2'],
  ['88', 64, '0000000000000000', '61a8a244adacccf0'],
  ['88bca90e90875a', 64, '0000000000000000', '6ccf4308974c267f'],
  ['88bca90e90875a7f0f79c384627bafb2', 64, '0000000000000000', '1a807d272bbe5db1'],
  ['88bca90e90875a7f0f79c384627bafb2', 128, '0000000000000000', '2269552ab0f85ca6'],
  [
    '88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e',
    129,
    '0000000000000000',
    '5b78d3a43dfff1f1',
  ],
];

describe('rc2', () => {
  it('matches the RFC 2268 §5 test vectors in both directions', () => {
    for (const [key, bits, pt, ct] of RFC2268_VECTORS) {
      const k = rc2ExpandKey(hex(key), bits);
      const block = hex(pt);
      rc2EncryptBlock(k, block, 0);
      assert.equal(Buffer.from(block).toString('hex'), ct, `encrypt, key ${key}/${bits}`);
      rc2DecryptBlock(k, block, 0);
      assert.equal(Buffer.from(block).toString('hex'), pt, `decrypt, key ${key}/${bits}`);
    }
  });

  it('agrees with openssl enc (legacy provider) on RC2-40-CBC and RC2-128-CBC', () => {
    const dir = tempDir();
    for (const [name, keyLen, bits] of [
      ['rc2-40-cbc', 5, 40],
      ['rc2-cbc', 16, 128],
    ] as const) {
      for (let n = 0; n < 3; n++) {
        const key = randomBytes(keyLen);
        const iv = randomBytes(8);
        const data = randomBytes(8 * (1 + n * 7));
        const inFile = join(dir, 'in.bin');
        writeFileSync(inFile, data);
        const args = ['enc', `-${name}`, '-K', key.toString('hex'), '-iv', iv.toString('hex')];
        const legacy = ['-provider', 'legacy', '-provider', 'default', '-nopad', '-in', inFile];
        const ct = new Uint8Array(run('openssl', [...args, '-e', ...legacy]));
        assert.deepEqual(rc2CbcEncrypt(key, bits, iv, data), ct);
        assert.deepEqual(rc2CbcDecrypt(key, bits, iv, ct), new Uint8Array(data));
      }
    }
  });

  it('refuses partial blocks and bad IVs with stable codes', () => {
    assert.throws(
      () => rc2CbcDecrypt(hex('0102030405'), 40, new Uint8Array(8), new Uint8Array(7)),
      {
        code: 'ERR_PKI_MALFORMED',
      },
    );
    assert.throws(
      () => rc2CbcDecrypt(hex('0102030405'), 40, new Uint8Array(7), new Uint8Array(8)),
      {
        code: 'ERR_PKI_MALFORMED',
      },
    );
    assert.throws(() => rc2ExpandKey(new Uint8Array(0), 40), { code: 'ERR_PKI_INVALID_ARGUMENT' });
  });
});
