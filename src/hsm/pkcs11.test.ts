/**
 * Keys in a real SoftHSM2 token (Debian's softhsm2, a throwaway token per run): generated
 * inside it, never extractable, signatures that Node and openssl verify, RSA decryption with
 * implicit rejection, many concurrent callers, and the typed errors.
 */
import assert from 'node:assert/strict';
import {
  constants,
  createPublicKey,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
  verify,
  type KeyObject,
} from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type * as Pkcs11js from 'pkcs11js';
import { isHsmError } from './errors.ts';
import { syntheticMessage } from './implicit-rejection.ts';
import {
  createKeyring,
  ecdsaRawToDer,
  IMPLICIT_REJECTION_LABEL,
  keyBatch,
  listTokens,
  openKeyByUri,
  openToken,
  openTokenByUri,
  type KeySpec,
  type Pkcs11Token,
  type TokenKey,
} from './pkcs11.ts';
import { parsePkcs11Uri } from './uri.ts';
import { createSoftHsmToken, type SoftHsmToken } from '../testing/softhsm.ts';
import { run, tempDir } from '../testing/tools.ts';

let hsm: SoftHsmToken;
let token: Pkcs11Token;
const keys = new Map<string, TokenKey>();
const SPECS: Record<string, KeySpec> = {
  'rsa-2048': { type: 'rsa', bits: 2048 },
  'rsa-3072': { type: 'rsa', bits: 3072 },
  'ec-p256': { type: 'ec', curve: 'P-256' },
  'ec-p384': { type: 'ec', curve: 'P-384' },
};

before(async () => {
  hsm = createSoftHsmToken('hsm-test');
  token = await openToken({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
  for (const [label, spec] of Object.entries(SPECS))
    keys.set(label, await token.generateKey(spec, { label }));
});

after(async () => {
  await token?.close();
  hsm?.remove();
});

const key = (label: string) => keys.get(label)!;

/** openssl's verdict on a signature, with the public key as PEM. */
function opensslVerifies(pub: KeyObject, data: Buffer, sig: Uint8Array, hash: string): boolean {
  const dir = tempDir();
  writeFileSync(join(dir, 'pub.pem'), pub.export({ type: 'spki', format: 'pem' }));
  writeFileSync(join(dir, 'data'), data);
  writeFileSync(join(dir, 'sig'), sig);
  const out = run('openssl', [
    'dgst',
    `-${hash}`,
    '-verify',
    join(dir, 'pub.pem'),
    '-signature',
    join(dir, 'sig'),
    join(dir, 'data'),
  ]).toString();
  return /Verified OK/.test(out);
}

describe('tokens', () => {
  it('lists the token and opens it by label; a wrong PIN or label is a typed error', async () => {
    const listed = listTokens(hsm.module).find((t) => t.label === hsm.label);
    assert.ok(listed?.initialized && listed.loginRequired);
    await assert.rejects(
      openToken({ module: hsm.module, token: hsm.label, pin: 'wrong-pin-123' }),
      // This process is logged in already (login state is per process), so the PIN is checked
      // against the one that logged in; a fresh process gets CKR_PIN_INCORRECT from the token
      // (cli/hsm.e2e.test.ts).
      (e) => isHsmError(e, 'ERR_HSM_PIN_INCORRECT') && !e.message.includes('wrong-pin-123'),
    );
    const second = await openToken({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
    await second.close();
    assert.ok(await token.getKey({ label: 'rsa-2048' }), 'closing one handle keeps the other');
    await assert.rejects(
      openToken({ module: hsm.module, token: 'no-such-token', pin: hsm.userPin }),
      (e) =>
        isHsmError(e, 'ERR_HSM_TOKEN_NOT_FOUND') &&
        e.message.includes('"hsm-test"') &&
        !e.message.includes(hsm.userPin),
    );
    await assert.rejects(
      openToken({ module: '/nonexistent/libpkcs11.so', token: hsm.label }),
      (e) => isHsmError(e, 'ERR_HSM_MODULE'),
    );
  });
});

describe('PINs', () => {
  it('a token that needs a login and gets no PIN is ERR_HSM_PIN_REQUIRED, before any login', async () => {
    await assert.rejects(
      openToken({ module: hsm.module, token: hsm.label }),
      (e) => isHsmError(e, 'ERR_HSM_PIN_REQUIRED') && e.message.includes(`"${hsm.label}"`),
    );
    await assert.rejects(openTokenByUri(hsm.uri), (e) => isHsmError(e, 'ERR_HSM_PIN_REQUIRED'));
    const keyring = createKeyring();
    await assert.rejects(keyring.open(`${hsm.uri.replace('?', ';object=rsa-2048?')}`), (e) =>
      isHsmError(e, 'ERR_HSM_PIN_REQUIRED'),
    );
    await keyring.close();
    await assert.rejects(keyring.token(hsm.uri), (e) => isHsmError(e, 'ERR_HSM_SESSION'));
  });

  it('a pin-source is read, and the URIs of the token`s keys carry it (never the PIN)', async () => {
    const pinFile = join(tempDir(), 'pin');
    writeFileSync(pinFile, `${hsm.userPin}\n`, { mode: 0o600 });
    const viaFile = await openTokenByUri(`${hsm.uri}&pin-source=${pinFile}`);
    try {
      const k = await viaFile.getKey({ label: 'rsa-2048' });
      assert.equal(parsePkcs11Uri(k.uri).pinSource, pinFile);
      assert.equal(k.label, k.uri);
      assert.ok(!k.uri.includes(hsm.userPin));
      assert.equal((await viaFile.protection(k)).sensitive, true);
      await assert.rejects(viaFile.protection({ ...k }), (e) =>
        isHsmError(e, 'ERR_HSM_INVALID_ARGUMENT'),
      );
    } finally {
      await viaFile.close();
    }
    assert.equal(parsePkcs11Uri(key('rsa-2048').uri).pinSource, undefined);
  });
});

describe('key batches', () => {
  it('delete the keys made since the last keep, and only those', async () => {
    const batch = keyBatch(token, (role) => `batch-${role}`);
    const kept = await batch.generate({ type: 'ec', curve: 'P-256' }, 'kept');
    batch.keep();
    const made = await batch.generate({ type: 'rsa', bits: 2048 }, 'made');
    const adopted = await batch.adopt(
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
      'adopted',
    );
    assert.deepEqual(
      [kept.objectLabel, made.objectLabel, adopted.objectLabel],
      ['batch-kept', 'batch-made', 'batch-adopted'],
    );
    await assert.rejects(batch.generate({ type: 'rsa', bits: 1024 }, 'odd'), (e) =>
      isHsmError(e, 'ERR_HSM_UNSUPPORTED'),
    );
    await batch.discard();
    assert.ok(await token.findKey({ label: 'batch-kept' }));
    assert.equal(await token.findKey({ label: 'batch-made' }), undefined);
    assert.equal(await token.findKey({ label: 'batch-adopted' }), undefined);
    assert.doesNotMatch(hsm.pkcs11Tool(['--list-objects']), /batch-(made|adopted)/);
    await token.deleteKey({ label: 'batch-kept' });
  });
});

describe('keys', () => {
  it('are generated inside the token: sensitive, never extractable, private', async () => {
    for (const k of keys.values()) {
      assert.deepEqual(await token.protection(k), {
        token: true,
        private: true,
        sensitive: true,
        extractable: false,
        alwaysSensitive: true,
        neverExtractable: true,
      });
    }
    assert.equal(key('rsa-2048').publicKey.asymmetricKeyDetails?.modulusLength, 2048);
    assert.equal(key('rsa-3072').publicKey.asymmetricKeyDetails?.modulusLength, 3072);
    assert.equal(key('ec-p256').publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(key('ec-p384').publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
  });

  it('cannot be read out: CKA_PRIVATE_EXPONENT, CKA_VALUE and C_WrapKey all fail', () => {
    for (const label of ['rsa-2048', 'ec-p256']) hsm.assertUnreadable(label);
  });

  it('are found by label, by id, and by URI; listed; deleted with their public key', async () => {
    const k = key('ec-p256');
    assert.equal((await token.getKey({ label: 'ec-p256' })).uri, k.uri);
    assert.equal((await token.getKey({ id: k.id })).objectLabel, 'ec-p256');
    const uri = parsePkcs11Uri(k.uri);
    assert.equal(uri.token, hsm.label);
    assert.equal(uri.object, 'ec-p256');
    assert.equal(uri.modulePath, hsm.module);
    assert.ok(!k.uri.includes(hsm.userPin));
    const labels = (await token.listKeys()).map((x) => x.objectLabel).toSorted();
    assert.deepEqual(labels, [...keys.keys()].toSorted());

    const pinFile = join(tempDir(), 'pin');
    writeFileSync(pinFile, `${hsm.userPin}\n`, { mode: 0o600 });
    const opened = await openKeyByUri(`${k.uri}&pin-source=${pinFile}`);
    try {
      assert.deepEqual(
        opened.key.publicKey.export({ format: 'jwk' }),
        k.publicKey.export({ format: 'jwk' }),
      );
    } finally {
      await opened.token.close();
    }

    const temp = await token.generateKey({ type: 'rsa', bits: 2048 }, { label: 'temp' });
    await assert.rejects(
      token.generateKey({ type: 'ec', curve: 'P-256' }, { label: 'temp' }),
      (e) => isHsmError(e, 'ERR_HSM_KEY_EXISTS'),
    );
    await token.deleteKey({ label: 'temp' });
    assert.equal(await token.findKey({ label: 'temp' }), undefined);
    assert.equal(await token.findKey({ id: temp.id }), undefined);
    assert.doesNotMatch(hsm.pkcs11Tool(['--list-objects']), /label:\s+temp\b/);
    await assert.rejects(token.getKey({ label: 'temp' }), (e) =>
      isHsmError(e, 'ERR_HSM_KEY_NOT_FOUND'),
    );
  });
});

describe('keys made and deleted at once', () => {
  it('concurrent generations and deletions all succeed (SoftHSM failed some when they overlapped)', async () => {
    // Before object changes were made one at a time, 40 rounds of three concurrent generations
    // failed 5 times with CKR_GENERAL_ERROR or CKR_OBJECT_HANDLE_INVALID.
    for (let round = 0; round < 20; round++) {
      const labels = [0, 1, 2].map((i) => `concurrent-${round}-${i}`);
      const made = await Promise.all(
        labels.map((label, i) =>
          token.generateKey(
            i === 2 ? { type: 'rsa', bits: 2048 } : { type: 'ec', curve: 'P-256' },
            { label },
          ),
        ),
      );
      assert.deepEqual(
        made.map((k) => k.objectLabel),
        labels,
      );
      await Promise.all(labels.map((label) => token.deleteKey({ label })));
      for (const label of labels) assert.equal(await token.findKey({ label }), undefined);
    }
  });
});

describe('signing', () => {
  const data = Buffer.from('to be signed by a key that never leaves the token');

  for (const label of Object.keys(SPECS)) {
    it(`${label}: Node and openssl verify the token's signatures`, async () => {
      const k = key(label);
      for (const hash of ['sha256', 'sha384', 'sha1'] as const) {
        const sig = await k.sign(data, hash);
        assert.ok(verify(hash, data, k.publicKey, sig), `${label} ${hash}`);
        assert.ok(opensslVerifies(k.publicKey, data, sig, hash), `openssl ${label} ${hash}`);
        assert.ok(!verify(hash, Buffer.from('other'), k.publicKey, sig));
      }
    });
  }

  it('signing needs a named digest', async () => {
    await assert.rejects(key('ec-p256').sign(data, null), (e) =>
      isHsmError(e, 'ERR_HSM_UNSUPPORTED'),
    );
  });

  it('serves many concurrent callers correctly (a session each, from a small pool)', async () => {
    const jobs = Array.from({ length: 64 }, (_, i) => {
      const k = key(i % 2 ? 'rsa-2048' : 'ec-p256');
      const msg = Buffer.from(`message ${i}`);
      return k.sign(msg, 'sha256').then((sig) => ({ k, msg, sig }));
    });
    for (const { k, msg, sig } of await Promise.all(jobs))
      assert.ok(verify('sha256', msg, k.publicKey, sig));
  });

  it('close waits for the operations running on it, then refuses new ones', async () => {
    const second = await openToken({ module: hsm.module, token: hsm.label, pin: hsm.userPin });
    const k = await second.getKey({ label: 'rsa-2048' });
    const running = Array.from({ length: 8 }, (_, i) => k.sign(Buffer.from(`m${i}`), 'sha256'));
    const closed = second.close();
    const settled = await Promise.allSettled(running);
    await closed;
    // Each sign either finished with a good signature or was refused as "closed": none crashed.
    for (const [i, r] of settled.entries()) {
      if (r.status === 'fulfilled')
        assert.ok(verify('sha256', Buffer.from(`m${i}`), k.publicKey, r.value));
      else assert.equal((r.reason as { code?: string }).code, 'ERR_HSM_SESSION');
    }
    await assert.rejects(k.sign(Buffer.from('late'), 'sha256'), { code: 'ERR_HSM_SESSION' });
  });

  it('re-encodes r||s as DER ECDSA-Sig-Value', () => {
    const raw = Buffer.concat([
      Buffer.alloc(32, 0x80),
      Buffer.concat([Buffer.alloc(1), Buffer.alloc(31, 1)]),
    ]);
    const sig = Buffer.from(ecdsaRawToDer(raw)).toString('hex');
    assert.equal(sig, `3044022100${'80'.repeat(32)}021f${'01'.repeat(31)}`);
  });
});

describe('decryption (RSAES-PKCS1-v1_5 with implicit rejection)', () => {
  it('round-trips a ciphertext made with publicEncrypt', async () => {
    for (const label of ['rsa-2048', 'rsa-3072']) {
      const k = key(label);
      const secret = randomBytes(32);
      const c = publicEncrypt({ key: k.publicKey, padding: constants.RSA_PKCS1_PADDING }, secret);
      assert.deepEqual(Buffer.from(await k.decrypt!(c)), secret);
    }
    assert.equal(key('ec-p256').decrypt, undefined);
  });

  it('answers a bad ciphertext with the same pseudo-random bytes every time, never an error', async () => {
    const k = key('rsa-2048');
    const n = Buffer.from(k.publicKey.export({ format: 'jwk' }).n!, 'base64url');
    const noPadding = (em: Buffer) =>
      publicEncrypt({ key: k.publicKey, padding: constants.RSA_NO_PADDING }, em);
    const cases = {
      // Decrypts to a type-1 block: a padding failure inside the token.
      badPadding: noPadding(Buffer.concat([Buffer.from([0, 1]), randomBytes(254)])),
      other: noPadding(Buffer.concat([Buffer.from([0, 1]), randomBytes(254)])),
      // Refused by the token before any padding check: emulated here.
      notBelowModulus: Buffer.alloc(256, 0xff),
      modulusItself: n,
      tooShort: randomBytes(10),
      tooLong: randomBytes(300),
      empty: Buffer.alloc(0),
    };
    const seen = new Map<string, string>();
    for (const [name, c] of Object.entries(cases)) {
      const first = Buffer.from(await k.decrypt!(c));
      const second = Buffer.from(await k.decrypt!(c));
      assert.deepEqual(first, second, `${name}: deterministic`);
      assert.ok(first.length <= 256 - 11, `${name}: ${first.length} octets at most k - 11`);
      seen.set(name, first.toString('hex'));
    }
    assert.equal(new Set(seen.values()).size, seen.size, 'each ciphertext has its own answer');
    // A different key answers the same bad ciphertext differently (the secret is per key).
    const other = await token.generateKey({ type: 'rsa', bits: 2048 }, { label: 'rsa-other' });
    try {
      const c = Buffer.alloc(256, 0xff);
      assert.notEqual(
        Buffer.from(await other.decrypt!(c)).toString('hex'),
        seen.get('notBelowModulus'),
      );
    } finally {
      await token.deleteKey({ label: 'rsa-other' });
    }
  });

  it('keeps the implicit-rejection secret inside the token', async () => {
    const listing = hsm.pkcs11Tool(['--list-objects', '--type', 'secrkey']);
    assert.match(listing, /certpost implicit rejection/);
    assert.match(listing, /sensitive|never extractable/i);
  });

  it('a key made by another tool gets its secret on first use', async () => {
    hsm.pkcs11Tool([
      '--keypairgen',
      '--key-type',
      'rsa:2048',
      '--label',
      'from-opensc',
      '--id',
      'c0ffee',
    ]);
    const k = await token.getKey({ label: 'from-opensc' });
    assert.deepEqual(Buffer.from(k.id).toString('hex'), 'c0ffee');
    const c = Buffer.alloc(256, 0xff);
    const a = Buffer.from(await k.decrypt!(c));
    const again = await token.getKey({ id: Buffer.from('c0ffee', 'hex') });
    assert.deepEqual(Buffer.from(await again.decrypt!(c)), a);
    const pub = createPublicKey(k.publicKey.export({ type: 'spki', format: 'pem' }));
    const secret = randomBytes(16);
    assert.deepEqual(
      Buffer.from(
        await k.decrypt!(publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, secret)),
      ),
      secret,
    );
    await token.deleteKey({ label: 'from-opensc' });
  });
});

describe('imported keys (C_CreateObject of a software key)', () => {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const imported = new Map<string, TokenKey>();
  const data = Buffer.from('signed by a key that came from a PFX');

  before(async () => {
    imported.set('imported-rsa', await token.importKey(rsa.privateKey, { label: 'imported-rsa' }));
    imported.set(
      'imported-p256',
      await token.importKey(ec256.privateKey, { label: 'imported-p256' }),
    );
    imported.set(
      'imported-p384',
      await token.importKey(ec384.privateKey, { label: 'imported-p384' }),
    );
  });

  it('sign in the token: Node verifies with the original public key', async () => {
    for (const [label, original] of [
      ['imported-rsa', rsa.publicKey],
      ['imported-p256', ec256.publicKey],
      ['imported-p384', ec384.publicKey],
    ] as const) {
      const k = imported.get(label)!;
      assert.ok(k.publicKey.equals(original), `${label}: the token's public key is the original`);
      for (const hash of ['sha256', 'sha384'] as const)
        assert.ok(verify(hash, data, original, await k.sign(data, hash)), `${label} ${hash}`);
    }
  });

  it('are sensitive and not extractable, and say they have been outside the token', async () => {
    for (const k of imported.values())
      assert.deepEqual(await token.protection(k), {
        token: true,
        private: true,
        sensitive: true,
        extractable: false,
        alwaysSensitive: false,
        neverExtractable: false,
      });
    for (const label of imported.keys()) hsm.assertUnreadable(label);
  });

  it('RSA: decrypts PKCS#1 v1.5; a bad ciphertext gets an implicit-rejection message, not an error', async () => {
    const k = imported.get('imported-rsa')!;
    const secret = randomBytes(32);
    const good = publicEncrypt(
      { key: rsa.publicKey, padding: constants.RSA_PKCS1_PADDING },
      secret,
    );
    assert.deepEqual(Buffer.from(await k.decrypt!(good)), secret);
    // The synthetic message of implicit-rejection.ts: its KDK is HMAC-SHA256 of the ciphertext
    // under this key's secret, computed in the token.
    const ours = (c: Buffer) =>
      hsm.rawSession(({ p, api, s, find }) => {
        const [irSecret] = find([
          { type: p.CKA_CLASS, value: p.CKO_SECRET_KEY },
          { type: p.CKA_ID, value: Buffer.from(k.id) },
          { type: p.CKA_LABEL, value: IMPLICIT_REJECTION_LABEL },
        ]);
        assert.ok(irSecret, 'the imported key has its implicit-rejection secret');
        api.C_SignInit(s, { mechanism: p.CKM_SHA256_HMAC }, irSecret);
        return Buffer.from(syntheticMessage(api.C_Sign(s, c, Buffer.alloc(32)), 256));
      });
    // Decrypts to a type-1 block, a bad padding. A token on OpenSSL 3.2+ (or one with its
    // implicit rejection backported, as Debian's SoftHSM here) answers with OpenSSL's synthetic
    // message, keyed by the private exponent, which Node computes from the original key; a
    // token that reports the padding as an error gets ours.
    const bad = publicEncrypt(
      { key: rsa.publicKey, padding: constants.RSA_NO_PADDING },
      Buffer.concat([Buffer.from([0, 1]), randomBytes(254)]),
    );
    const answer = Buffer.from(await k.decrypt!(bad));
    const openssl = privateDecrypt(
      { key: rsa.privateKey, padding: constants.RSA_PKCS1_PADDING },
      bad,
    );
    assert.ok(answer.equals(openssl) || answer.equals(ours(bad)), 'an implicit-rejection message');
    // Not below the modulus: every token refuses it with an error, and the caller gets ours.
    const tooBig = Buffer.alloc(256, 0xff);
    assert.deepEqual(Buffer.from(await k.decrypt!(tooBig)), ours(tooBig));
    assert.equal(imported.get('imported-p256')!.decrypt, undefined);
  });

  it('are found, listed and deleted exactly like generated keys', async () => {
    for (const k of imported.values()) {
      assert.equal((await token.getKey({ label: k.objectLabel })).uri, k.uri);
      assert.equal((await token.getKey({ id: k.id })).objectLabel, k.objectLabel);
    }
    const listed = (await token.listKeys()).map((x) => x.objectLabel);
    for (const label of imported.keys()) assert.ok(listed.includes(label), label);
    await assert.rejects(token.importKey(rsa.privateKey, { label: 'imported-rsa' }), (e) =>
      isHsmError(e, 'ERR_HSM_KEY_EXISTS'),
    );

    for (const k of imported.values()) {
      await token.deleteKey({ label: k.objectLabel });
      assert.equal(await token.findKey({ id: k.id }), undefined);
      const left = hsm.rawSession(({ p, find }) =>
        find([{ type: p.CKA_ID, value: Buffer.from(k.id) }]),
      );
      assert.equal(left.length, 0, `${k.objectLabel}: private, public key and secret are gone`);
    }
    imported.clear();
  });

  it('refuses other keys with a typed error before touching the token', async () => {
    const cases = [
      [generateKeyPairSync('ed25519').privateKey, 'ERR_HSM_UNSUPPORTED'],
      [generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey, 'ERR_HSM_UNSUPPORTED'],
      [generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey, 'ERR_HSM_UNSUPPORTED'],
      [rsa.publicKey, 'ERR_HSM_INVALID_ARGUMENT'],
    ] as const;
    for (const [k, code] of cases)
      await assert.rejects(token.importKey(k, { label: 'refused' }), (e) => isHsmError(e, code));
    assert.doesNotMatch(hsm.pkcs11Tool(['--list-objects']), /refused/);
  });

  it('leaves nothing behind when a step fails midway', async () => {
    // SoftHSM does not fail the second C_CreateObject by itself, so this test makes it fail as
    // a full token would (CKR_DEVICE_MEMORY), after the private key object was created.
    const api = (token as unknown as { api: Pkcs11js.PKCS11 }).api;
    const original = api.C_CreateObject;
    let calls = 0;
    api.C_CreateObject = function (this: Pkcs11js.PKCS11, s, template) {
      if (++calls === 2) throw new Error('CKR_DEVICE_MEMORY:49');
      return original.call(this, s, template);
    };
    const id = randomBytes(8);
    try {
      await assert.rejects(token.importKey(rsa.privateKey, { label: 'half-made', id }), (e) =>
        isHsmError(e, 'ERR_HSM_TOKEN_FULL'),
      );
    } finally {
      api.C_CreateObject = original;
    }
    assert.equal(calls, 2);
    assert.equal(hsm.rawSession(({ p, find }) => find([{ type: p.CKA_ID, value: id }])).length, 0);
    assert.doesNotMatch(hsm.pkcs11Tool(['--list-objects']), /half-made/);
  });
});
