/**
 * Certificate attachments of .eml messages: the vectors of testdata/eml/ (README.md there says how
 * they were made), cross-checked with `openssl`, and messages composed here with nodemailer's
 * MailComposer for the limits and the key-beside-certificate case.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';
import { run, tempDir } from '../testing/tools.ts';
import {
  EmlError,
  looksLikeMessage,
  readCertificateAttachments,
  type EmlErrorCode,
} from './eml.ts';

const vector = (name: string) =>
  new Uint8Array(readFileSync(new URL(`testdata/eml/${name}`, import.meta.url)));

const subject = (args: string[]) => run('openssl', args).toString();
const enc = (s: string) => new TextEncoder().encode(s);

async function compose(mail: Mail.Options): Promise<Uint8Array> {
  const m = new MailComposer({ from: 'it@example.test', to: 'a@example.test', ...mail });
  return new Uint8Array(await m.compile().build());
}

const rejectsWith = (p: Promise<unknown>, code: EmlErrorCode, message: RegExp) =>
  assert.rejects(p, (e) => {
    assert.ok(e instanceof EmlError);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });

describe('readCertificateAttachments', () => {
  it('finds every certificate attachment by type, extension or content, in order', async () => {
    const m = await readCertificateAttachments(vector('certificates.eml'));
    assert.equal(m.subject, 'Your certificates');
    assert.equal(m.date, '2026-01-15T09:00:00.000Z');
    assert.deepEqual(
      m.attachments.map((a) => [a.filename, a.contentType, a.format, a.recognizedBy.join('+')]),
      [
        ['root.cer', 'application/pkix-cert', 'der', 'content-type+extension+content'],
        ['intermediate.p7c', 'application/pkcs7-mime', 'pkcs7', 'content-type+extension+content'],
        ['alice.pfx', 'application/x-pkcs12', 'pkcs12', 'content-type+extension+content'],
        ['attachment-4', 'application/octet-stream', 'pem', 'content'],
      ],
    );
    assert.deepEqual(m.skipped, [
      { filename: 'readme.txt', contentType: 'text/plain', reason: 'not a certificate' },
    ]);
    // The decoded bytes are the files themselves, as openssl reads them.
    const dir = tempDir();
    const [root, inter, pfx, bob] = m.attachments.map((a, i) => {
      const f = join(dir, `a${i}`);
      writeFileSync(f, a.content);
      return f;
    });
    assert.match(
      subject(['x509', '-inform', 'DER', '-in', root!, '-noout', '-subject']),
      /Vector Root/,
    );
    assert.match(
      subject(['pkcs7', '-inform', 'DER', '-in', inter!, '-print_certs', '-noout']),
      /Vector Issuing CA/,
    );
    assert.match(
      subject(['pkcs12', '-in', pfx!, '-passin', 'pass:alice-Pa55', '-nokeys', '-clcerts']),
      /CN = Alice/,
    );
    assert.match(subject(['x509', '-in', bob!, '-noout', '-subject']), /CN = Bob/);
  });

  it('skips the S/MIME signature of a signed message and keeps its certificate attachment', async () => {
    const m = await readCertificateAttachments(vector('smime-signed.eml'));
    assert.deepEqual(
      m.attachments.map((a) => a.filename),
      ['root.cer'],
    );
    assert.deepEqual(m.skipped, [
      {
        filename: 'smime.p7s',
        contentType: 'application/x-pkcs7-signature',
        reason: "the message's S/MIME signature",
      },
    ]);
  });

  it('keeps an attachment claimed by type and name whose bytes are no format (format null)', async () => {
    const m = await readCertificateAttachments(vector('corrupt-attachment.eml'));
    assert.equal(m.attachments.length, 1);
    assert.equal(m.attachments[0]!.format, null);
    assert.deepEqual(m.attachments[0]!.recognizedBy, ['content-type', 'extension']);
  });

  it('a message without a certificate attachment is ERR_EML_NO_CERTIFICATE, naming what it has', async () => {
    await rejectsWith(
      readCertificateAttachments(vector('no-certificate.eml')),
      'ERR_EML_NO_CERTIFICATE',
      /its attachments are request\.csr, pixel\.gif/,
    );
    await rejectsWith(
      readCertificateAttachments(await compose({ subject: 'hi', text: 'no attachments' })),
      'ERR_EML_NO_CERTIFICATE',
      /it has no attachments/,
    );
    await rejectsWith(
      readCertificateAttachments(new TextEncoder().encode('just some text\n')),
      'ERR_EML_NO_CERTIFICATE',
      /no attachments/,
    );
  });

  it('takes a key beside its certificate, but a key alone is no certificate', async () => {
    const dir = tempDir();
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
      '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-subj', '/CN=k',
      '-days', '1']); // prettier-ignore
    const key = readFileSync(join(dir, 'k.pem'));
    const both = await readCertificateAttachments(
      await compose({
        attachments: [
          { filename: 'cert.pem', content: readFileSync(join(dir, 'c.pem')) },
          { filename: 'key.pem', content: key },
        ],
      }),
    );
    assert.deepEqual(
      both.attachments.map((a) => [a.filename, a.format]),
      [
        ['cert.pem', 'pem'],
        ['key.pem', 'key'],
      ],
    );
    await rejectsWith(
      readCertificateAttachments(
        await compose({ attachments: [{ filename: 'key.bin', content: key }] }),
      ),
      'ERR_EML_NO_CERTIFICATE',
      /key\.bin/,
    );
  });

  it('is bounded: message size before parsing, attachment count after', async () => {
    const bytes = vector('certificates.eml');
    await rejectsWith(
      readCertificateAttachments(bytes, { maxMessageBytes: 1000 }),
      'ERR_EML_TOO_LARGE',
      new RegExp(`${bytes.length} bytes \\(limit 1000\\)`),
    );
    await rejectsWith(
      readCertificateAttachments(bytes, { maxAttachments: 4 }),
      'ERR_EML_TOO_MANY_ATTACHMENTS',
      /5 attachments \(limit 4\)/,
    );
  });
});

describe('looksLikeMessage', () => {
  it('tells messages from certificate files and text', () => {
    for (const v of ['certificates.eml', 'smime-signed.eml', 'no-certificate.eml'])
      assert.equal(looksLikeMessage(vector(v)), true, v);
    assert.equal(looksLikeMessage(enc('-----BEGIN CERTIFICATE-----\nMII=\n')), false);
    assert.equal(looksLikeMessage(Uint8Array.of(0x30, 0x82, 0x01, 0x00)), false);
    assert.equal(looksLikeMessage(enc('Subject: no body separator')), false);
    assert.equal(looksLikeMessage(enc('X-Custom: a\n\nbody\n')), false);
    assert.equal(looksLikeMessage(enc('Subject: hi\n  folded\n\nbody\n')), true);
    assert.equal(looksLikeMessage(new Uint8Array(0)), false);
  });
});
