import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import { desCbcDecrypt, desCbcEncrypt, desDecryptBlock, desEncryptBlock } from './des.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * Published DES vectors: key, plaintext, ciphertext. The first is the worked example of
 * J. Orlin Grabbe's "The DES Algorithm Illustrated"; the next two are classic textbook ones; the
 * rest come from NBS Special Publication 500-20 (variable plaintext, variable key, S-box tests).
 */
const VECTORS: readonly [string, string, string][] = [
  ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'],
  ['0e329232ea6d0d73', '8787878787878787', '0000000000000000'],
  ['0123456789abcdef', '4e6f772069732074', '3fa40e8a984d4815'],
  ['0101010101010101', '8000000000000000', '95f8a5e5dd31d900'],
  ['0101010101010101', '0000000000000001', '166b40b44aba4bd6'],
  ['8001010101010101', '0000000000000000', '95a8d72813daa94d'],
  ['0101010101010102', '0000000000000000', '869efd7f9f265a09'],
  ['7ca110454a1a6e57', '01a1d6d039776742', '690f5b0d9a26939b'],
  ['0131d9619dc1376e', '5cd54ca83def57da', '7a389d10354bd271'],
];

describe('DES (FIPS 46-3)', () => {
  it('matches the published vectors both ways', () => {
    for (const [k, p, c] of VECTORS) {
      assert.equal(toHex(desEncryptBlock(hex(k), hex(p))), c, `encrypt ${k}/${p}`);
      assert.equal(toHex(desDecryptBlock(hex(k), hex(c))), p, `decrypt ${k}/${c}`);
    }
  });

  it('CBC agrees with openssl enc -des-cbc (legacy provider) both ways', () => {
    const dir = tempDir();
    for (const size of [8, 64, 1000 * 8]) {
      const key = randomBytes(8);
      const iv = randomBytes(8);
      const plain = randomBytes(size);
      const file = join(dir, `p${size}`);
      writeFileSync(file, plain);
      const theirs = run('openssl', [
        'enc',
        '-des-cbc',
        '-provider',
        'legacy',
        '-provider',
        'default',
        '-nopad',
        '-K',
        toHex(key),
        '-iv',
        toHex(iv),
        '-in',
        file,
      ]);
      assert.equal(toHex(desCbcEncrypt(key, iv, plain)), toHex(theirs));
      assert.equal(toHex(desCbcDecrypt(key, iv, theirs)), toHex(plain));
    }
  });

  it('rejects partial blocks and wrong key or IV sizes', () => {
    assert.throws(() => desCbcDecrypt(new Uint8Array(8), new Uint8Array(8), new Uint8Array(7)), {
      code: 'ERR_PKI_INVALID_ARGUMENT',
    });
    assert.throws(() => desCbcDecrypt(new Uint8Array(7), new Uint8Array(8), new Uint8Array(8)), {
      code: 'ERR_PKI_INVALID_ARGUMENT',
    });
    assert.throws(() => desCbcDecrypt(new Uint8Array(8), new Uint8Array(9), new Uint8Array(8)), {
      code: 'ERR_PKI_INVALID_ARGUMENT',
    });
  });
});
