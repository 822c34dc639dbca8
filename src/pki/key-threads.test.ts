import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  constants,
  generateKeyPairSync,
  sign,
  verify,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { decryptInThread, signInThread } from './key-threads.ts';

const a = generateKeyPairSync('rsa', { modulusLength: 2048 });
const b = generateKeyPairSync('rsa', { modulusLength: 3072 });

const wrap = (pub: KeyObject, m: Uint8Array) =>
  new Uint8Array(publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, m));
const onMainThread = (key: KeyObject, c: Uint8Array) =>
  new Uint8Array(privateDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, c));

describe('decryptInThread', () => {
  it('unwraps concurrent requests for several keys, each with its own answer', async () => {
    const jobs = Array.from({ length: 24 }, (_, i) => {
      const k = i % 2 ? b : a;
      const message = new Uint8Array(randomBytes(16 + (i % 17)));
      return { k, message, c: wrap(k.publicKey, message) };
    });
    const out = await Promise.all(jobs.map((j) => decryptInThread(j.k.privateKey, j.c)));
    out.forEach((plain, i) => assert.deepEqual(plain, jobs[i]!.message));
  });

  it("keeps implicit rejection: a bad padding gives OpenSSL's synthetic message, as on the main thread", async () => {
    // 00 01 … is a type-1 (signature) block: always a padding failure for decryption.
    const em = Buffer.concat([Buffer.from([0, 1]), randomBytes(256 - 2)]);
    const c = new Uint8Array(
      publicEncrypt({ key: a.publicKey, padding: constants.RSA_NO_PADDING }, em),
    );
    const synthetic = await decryptInThread(a.privateKey, c);
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
    await assert.rejects(decryptInThread(a.privateKey, c), (e: Error & { code?: string }) => {
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
      assert.deepEqual(await decryptInThread(a.privateKey, view), message);
      assert.deepEqual(new Uint8Array(framed), before);
    }
  });

  it('does not keep the process alive once its requests are done', () => {
    const url = new URL('./key-threads.ts', import.meta.url).href;
    const script = `
      import { generateKeyPairSync, publicEncrypt, constants } from 'node:crypto';
      import { decryptInThread } from ${JSON.stringify(url)};
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const c = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.from('hi'));
      console.log(Buffer.from(await decryptInThread(privateKey, c)).toString());`;
    const file = join(tempDir(), 'unwrap-once.mjs');
    writeFileSync(file, script);
    const out = execFileSync(process.execPath, [file], { timeout: 20_000 });
    assert.equal(out.toString().trim(), 'hi');
  });
});

describe('signInThread', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = generateKeyPairSync('ed25519');
  const data = new Uint8Array(randomBytes(300));

  it('signs as crypto.sign does: RSA PKCS#1 v1.5 byte for byte, ECDSA and Ed25519 verifying', async () => {
    const [rsa, rsa512, ecdsa, eddsa] = await Promise.all([
      signInThread(a.privateKey, data, 'sha256'),
      signInThread(b.privateKey, data, 'sha512'),
      signInThread(ec.privateKey, data, 'sha256'),
      signInThread(ed.privateKey, data, null),
    ]);
    assert.deepEqual(rsa, new Uint8Array(sign('sha256', data, a.privateKey)));
    assert.deepEqual(rsa512, new Uint8Array(sign('sha512', data, b.privateKey)));
    assert.ok(verify('sha256', data, ec.publicKey, ecdsa));
    assert.ok(verify(null, data, ed.publicKey, eddsa));
  });

  it('answers many concurrent requests each with its own result', async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes(20 + i)));
    const sigs = await Promise.all(inputs.map((d) => signInThread(a.privateKey, d, 'sha256')));
    sigs.forEach((sig, i) => assert.ok(verify('sha256', inputs[i]!, a.publicKey, sig)));
  });

  it("rejects with crypto.sign's error for a digest it does not know", async () => {
    let expected: (Error & { code?: string }) | undefined;
    try {
      sign('no-such-digest', data, a.privateKey);
    } catch (e) {
      expected = e as Error & { code?: string };
    }
    assert.ok(expected);
    await assert.rejects(
      signInThread(a.privateKey, data, 'no-such-digest'),
      (e: Error & { code?: string }) => {
        assert.equal(e.message, expected.message);
        assert.equal(e.code, expected.code);
        return true;
      },
    );
  });
});
