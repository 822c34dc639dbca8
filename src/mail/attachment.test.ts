/**
 * The attachment: the blocked-types rule (ordered fallbacks of the same kind, a clear error when
 * nothing is left) and each format's bytes, read back by openssl.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseCertificate, sha256Thumbprint } from '../pki/x509.ts';
import { opensslPkcs12Info, opensslThumbprint, run, tempDir } from '../testing/tools.ts';
import {
  attachmentBaseName,
  buildAttachment,
  chooseFormat,
  DEFAULT_FALLBACKS,
  type AttachmentPolicy,
} from './attachment.ts';
import { isMailError } from './errors.ts';
import { mailFixtures } from './testing.ts';

const fx = mailFixtures();
const source = { certificate: fx.user, chain: [fx.issuing, fx.root] };
const policy = (blocked: string[], fallbacks = DEFAULT_FALLBACKS): AttachmentPolicy => ({
  blocked: new Set(blocked),
  fallbacks,
});

describe('blocked attachment types', () => {
  it('sends the format asked for when the site does not block it', () => {
    assert.deepEqual(chooseFormat('cer', policy([])), { format: 'cer' });
    assert.deepEqual(chooseFormat('pem', policy(['cer'])), { format: 'pem' });
  });

  it('switches a blocked .cer to the first allowed fallback, in the configured order', () => {
    assert.deepEqual(chooseFormat('cer', policy(['cer'])), { format: 'p7b', switchedFrom: 'cer' });
    assert.deepEqual(chooseFormat('cer', policy(['cer', 'p7b'])), {
      format: 'pem',
      switchedFrom: 'cer',
    });
    assert.deepEqual(chooseFormat('cer', policy(['cer', 'p7b', 'pem'])), {
      format: 'crt',
      switchedFrom: 'cer',
    });
    assert.deepEqual(chooseFormat('cer', policy(['cer'], ['crt', 'pem'])), {
      format: 'crt',
      switchedFrom: 'cer',
    });
  });

  it('never replaces a PFX by a format without the key, nor a certificate by a PFX', () => {
    assert.deepEqual(chooseFormat('pfx', policy(['pfx'])), { format: 'p12', switchedFrom: 'pfx' });
    assert.throws(
      () => chooseFormat('pfx', policy(['pfx', 'p12'])),
      (e) =>
        isMailError(e, 'ERR_MAIL_FORMAT_BLOCKED') && /\.pfx is blocked.*\(\.p12\)/.test(e.message),
    );
    assert.throws(
      () => chooseFormat('cer', policy(['cer', 'crt', 'pem', 'p7b'])),
      (e) =>
        isMailError(e, 'ERR_MAIL_FORMAT_BLOCKED') &&
        e.message.includes('(.p7b, .pem, .crt)') &&
        !e.message.includes('.p12'),
    );
    assert.throws(
      () => chooseFormat('cer', policy(['cer'], [])),
      (e) => isMailError(e, 'ERR_MAIL_FORMAT_BLOCKED') && /none configured/.test(e.message),
    );
  });
});

describe('attachment bytes, as openssl reads them', () => {
  const dir = tempDir();
  const save = (name: string, bytes: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };

  it('.cer and .crt: the certificate alone, DER, application/pkix-cert', async () => {
    for (const format of ['cer', 'crt'] as const) {
      const a = await buildAttachment(format, source);
      assert.equal(a.filename, `Alice-Example-Contoso.${format}`);
      assert.equal(a.contentType, 'application/pkix-cert');
      assert.equal(
        opensslThumbprint(save(a.filename, a.content), 'sha256', 'DER'),
        sha256Thumbprint(fx.user),
      );
    }
  });

  it('.p7b: the certificate and its chain, leaf first, application/x-pkcs7-certificates', async () => {
    const a = await buildAttachment('p7b', source);
    assert.equal(a.contentType, 'application/x-pkcs7-certificates');
    const printed = run('openssl', [
      'pkcs7',
      '-inform',
      'DER',
      '-in',
      save('x.p7b', a.content),
      '-print_certs',
    ]).toString();
    const subjects = [...printed.matchAll(/^subject=.*CN ?= ?([^,\n]+)/gm)].map((m) => m[1]);
    assert.deepEqual(subjects, [
      'Alice Example (Contoso)',
      'mail test issuing CA',
      'mail test root CA',
    ]);
  });

  it('.pem: the same chain as PEM blocks, application/x-pem-file', async () => {
    const a = await buildAttachment('pem', source);
    assert.equal(a.contentType, 'application/x-pem-file');
    const text = Buffer.from(a.content).toString('latin1');
    assert.equal(text.match(/-----BEGIN CERTIFICATE-----/g)?.length, 3);
    const first = run('openssl', ['x509', '-in', save('x.pem', a.content), '-outform', 'DER']);
    assert.deepEqual(parseCertificate(new Uint8Array(first)).der, fx.user.der);
  });

  it('.pfx: key and chain under the password, application/x-pkcs12; openssl opens it with that password only', async () => {
    const password = 'correct horse battery staple';
    const a = await buildAttachment('pfx', {
      ...source,
      identity: { key: fx.userKey, password, profile: 'modern' },
    });
    assert.equal(a.contentType, 'application/x-pkcs12');
    assert.equal(a.filename, 'Alice-Example-Contoso.pfx');
    const file = save(a.filename, a.content);
    const info = opensslPkcs12Info(file, password);
    assert.match(info, /-----BEGIN PRIVATE KEY-----/);
    assert.equal(info.match(/-----BEGIN CERTIFICATE-----/g)?.length, 3);
    assert.match(info, /friendlyName: Alice Example \(Contoso\)/);
    assert.throws(() => opensslPkcs12Info(file, 'wrong'));
  });

  it('file names come from the common name, only safe characters', () => {
    assert.equal(attachmentBaseName(fx.user), 'Alice-Example-Contoso');
    assert.equal(attachmentBaseName(fx.root), 'mail-test-root-CA');
  });
});
