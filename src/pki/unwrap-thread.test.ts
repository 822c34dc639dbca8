import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  constants,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { unwrapOffThread } from './unwrap-thread.ts';

const a = generateKeyPairSync('rsa', { modulusLength: 2048 });
const b = generateKeyPairSync('rsa', { modulusLength: 3072 });

const wrap = (pub: KeyObject, m: Uint8Array) =>
  new Uint8Array(publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, m));
const onMainThread = (key: KeyObject, c: Uint8Array) =>
  new Uint8Array(privateDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, c));

describe('unwrapOffThread', () => {
  it('unwraps concurrent requests for several keys, each with its own answer', async () => {
    const jobs = Array.from({ length: 24 }, (_, i) => {
      const k = i % 2 ? b : a;
      const message = new Uint8Array(randomBytes(16 + (i % 17)));
      return { k, message, c: wrap(k.publicKey, message) };
    });
    const out = await Promise.all(jobs.map((j) => unwrapOffThread(j.k.privateKey, j.c)));
    out.forEach((plain, i) => assert.deepEqual(plain, jobs[i]!.message));
  });

  it("keeps implicit rejection: a bad padding gives OpenSSL's synthetic message, as on the main thread", async () => {
    // 00 01 … is a type-1 (signature) block: always a padding failure for decryption.
    const em = Buffer.concat([Buffer.from([0, 1]), randomBytes(256 - 2)]);
    const c = new Uint8Array(
      publicEncrypt({ key: a.publicKey, padding: constants.RSA_NO_PADDING }, em),
    );
    const synthetic = await unwrapOffThread(a.privateKey, c);
    assert.deepEqual(synthetic, onMainThread(a.privateKey, c));
    assert.ok(synthetic.length <= 256 - 11);
  });

  it('rejects with the main thread error for a ciphertext larger than the modulus, and leaves the caller its bytes', async () => {
    const c = new Uint8Array(300).fill(0xff);
    let expected: Error | undefined;
    try {
      onMainThread(a.privateKey, c);
    } catch (e) {
      expected = e as Error;
    }
    assert.ok(expected);
    await assert.rejects(unwrapOffThread(a.privateKey, c), (e: Error & { code?: string }) => {
      assert.equal(e.message, expected.message);
      assert.equal(e.code, (expected as Error & { code?: string }).code);
      return true;
    });
    assert.equal(c.length, 300);
    assert.equal(c[299], 0xff);
  });

  it('reads a view as its own bytes only, and leaves the buffer around it to the caller', async () => {
    const message = new Uint8Array(randomBytes(32));
    const c = wrap(a.publicKey, message);
    for (const framed of [new Uint8Array(c.length + 20), Buffer.alloc(c.length + 20, 7)]) {
      framed.set(c, 10);
      const before = new Uint8Array(framed);
      // A Buffer's slice is a view too.
      const view =
        framed instanceof Buffer
          ? framed.slice(10, 10 + c.length)
          : framed.subarray(10, 10 + c.length);
      assert.deepEqual(await unwrapOffThread(a.privateKey, view), message);
      assert.deepEqual(new Uint8Array(framed), before);
    }
  });

  it('does not keep the process alive once the unwraps are done', () => {
    const url = new URL('./unwrap-thread.ts', import.meta.url).href;
    const script = `
      import { generateKeyPairSync, publicEncrypt, constants } from 'node:crypto';
      import { unwrapOffThread } from ${JSON.stringify(url)};
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const c = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from('hi'));
      console.log(Buffer.from(await unwrapOffThread(privateKey, c)).toString());`;
    const file = join(tempDir(), 'unwrap-once.mjs');
    writeFileSync(file, script);
    const out = execFileSync(process.execPath, [file], { timeout: 20_000 });
    assert.equal(out.toString().trim(), 'hi');
  });
});
