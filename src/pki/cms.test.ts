import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import {
  buildEnvelopedData,
  buildSignedData,
  decryptEnvelopedData,
  parseSignedData,
  signerCertificate,
  verifySigner,
  type EnvelopeCipher,
} from './cms.ts';
import { CMS } from './oids.ts';
import { parseCertificate, type Certificate } from './x509.ts';

interface Identity {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  readonly certFile: string;
  readonly keyFile: string;
}

const dir = tempDir();

/** A self-signed certificate from openssl for a fresh key. */
function identity(name: string, type: 'rsa' | 'ec'): Identity {
  const { privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  run('openssl', [
    'req',
    '-x509',
    '-key',
    keyFile,
    '-subj',
    `/CN=${name}`,
    '-days',
    '2',
    '-out',
    certFile,
    '-addext',
    'keyUsage=digitalSignature,keyEncipherment',
  ]);
  const pem = readFileSync(certFile, 'utf8');
  const b64 = pem.replace(/-----[^-]+-----|\s/g, '');
  return {
    certificate: parseCertificate(Buffer.from(b64, 'base64')),
    key: privateKey,
    certFile,
    keyFile,
  };
}

const alice = identity('alice', 'rsa');
const bob = identity('bob', 'rsa');
const carol = identity('carol', 'ec');
const content = new TextEncoder().encode('SCEP messageData, longer than two AES blocks of it.');

function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

describe('SignedData', () => {
  for (const [who, digest] of [
    [alice, 'sha1'],
    [alice, 'sha256'],
    [alice, 'sha512'],
    [carol, 'sha256'],
  ] as const) {
    it(`openssl verifies ours (${who.certificate.subject.rdns[0]![0]!.value}, ${digest}) and so do we`, async () => {
      const bytes = await buildSignedData({
        contentType: CMS.data,
        content,
        signer: who,
        digest,
        signedAttributes: [
          { oid: '2.16.840.1.113733.1.9.7', values: [Uint8Array.of(0x13, 1, 0x41)] },
        ],
        certificates: [who.certificate],
      });
      const out = run('openssl', [
        'cms',
        '-verify',
        '-noverify',
        '-inform',
        'DER',
        '-in',
        file('sd.der', bytes),
      ]);
      assert.deepEqual(new Uint8Array(out), content);
      const sd = parseSignedData(bytes);
      const signer = sd.signers[0]!;
      assert.equal(sd.contentType, CMS.data);
      assert.deepEqual(sd.content, content);
      assert.deepEqual(signer.attributes.get('2.16.840.1.113733.1.9.7'), [
        Uint8Array.of(0x13, 1, 0x41),
      ]);
      const cert = signerCertificate(sd, signer);
      assert.ok(cert);
      assert.equal(verifySigner(sd, signer, cert), true);
      assert.equal(verifySigner(sd, signer, bob.certificate), false);
    });
  }

  for (const md of ['sha1', 'sha256']) {
    it(`verifies openssl cms -sign -md ${md} and rejects it tampered`, () => {
      const signed = run('openssl', [
        'cms',
        '-sign',
        '-md',
        md,
        '-nosmimecap',
        '-binary',
        '-nodetach',
        '-outform',
        'DER',
        '-signer',
        alice.certFile,
        '-inkey',
        alice.keyFile,
        '-in',
        file('content.bin', content),
      ]);
      const sd = parseSignedData(signed);
      const signer = sd.signers[0]!;
      assert.equal(verifySigner(sd, signer, signerCertificate(sd, signer)!), true);
      const at = signed.indexOf(Buffer.from('messageData'));
      const tampered = Uint8Array.from(signed);
      tampered[at] = tampered[at]! ^ 1;
      const bad = parseSignedData(tampered);
      assert.equal(verifySigner(bad, bad.signers[0]!, alice.certificate), false);
    });
  }

  it('throws PkiError on bytes that are not a SignedData', () => {
    assert.throws(() => parseSignedData(Uint8Array.of(0x30, 0)), { name: 'PkiError' });
    assert.throws(
      () => parseSignedData(buildEnvelopedData(content, alice.certificate, 'aes-128-cbc')),
      {
        name: 'PkiError',
      },
    );
  });
});

describe('EnvelopedData', () => {
  for (const cipher of ['aes-128-cbc', 'aes-256-cbc', 'des-ede3-cbc'] as EnvelopeCipher[]) {
    it(`openssl decrypts ours (${cipher}) and so do we`, async () => {
      const bytes = buildEnvelopedData(content, alice.certificate, cipher);
      const out = run('openssl', [
        'cms',
        '-decrypt',
        '-inform',
        'DER',
        '-in',
        file('ed.der', bytes),
        '-recip',
        alice.certFile,
        '-inkey',
        alice.keyFile,
      ]);
      assert.deepEqual(new Uint8Array(out), content);
      assert.deepEqual(await decryptEnvelopedData(bytes, alice), { content, cipher });
    });
  }

  for (const [flag, cipher] of [
    ['-aes128', 'aes-128-cbc'],
    ['-aes256', 'aes-256-cbc'],
    ['-des3', 'des-ede3-cbc'],
    ['-des', 'des-cbc'],
  ] as const) {
    it(`decrypts openssl cms -encrypt ${flag}`, async () => {
      const bytes = run('openssl', [
        'cms',
        '-encrypt',
        '-binary',
        '-outform',
        'DER',
        flag,
        ...(flag === '-des' ? ['-provider', 'legacy', '-provider', 'default'] : []),
        '-in',
        file('plain.bin', content),
        alice.certFile,
      ]);
      const got = await decryptEnvelopedData(bytes, alice);
      assert.equal(got.cipher, cipher);
      assert.deepEqual(got.content, content);
    });
  }

  const generic = {
    name: 'PkiError',
    code: 'ERR_PKI_MALFORMED',
    message: 'the input is malformed: cannot decrypt the enveloped data',
  };

  it('a wrong key, a tampered ciphertext and garbage all give the same generic error', async () => {
    for (const cipher of ['aes-128-cbc', 'des-ede3-cbc'] as EnvelopeCipher[]) {
      const bytes = buildEnvelopedData(content, alice.certificate, cipher);
      await assert.rejects(async () => decryptEnvelopedData(bytes, bob), generic);
      const tampered = Uint8Array.from(bytes);
      const block = cipher.startsWith('aes') ? 16 : 8;
      tampered[tampered.length - block - 1] = tampered[tampered.length - block - 1]! ^ 0xff; // flips the last pad byte
      await assert.rejects(async () => decryptEnvelopedData(tampered, alice), generic);
    }
    await assert.rejects(async () => decryptEnvelopedData(Uint8Array.of(1, 2, 3), alice), generic);
  });

  it('a recipient identified by another certificate is still tried (first RSA recipient)', async () => {
    const bytes = buildEnvelopedData(content, alice.certificate, 'aes-256-cbc');
    const other = { certificate: bob.certificate, key: alice.key };
    assert.deepEqual((await decryptEnvelopedData(bytes, other)).content, content);
  });

  it('refuses to encrypt to a non-RSA certificate', () => {
    assert.throws(() => buildEnvelopedData(content, carol.certificate, 'aes-128-cbc'), {
      code: 'ERR_PKI_UNSUPPORTED',
    });
  });
});
