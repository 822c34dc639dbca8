/**
 * The composed message: the text names the certificate with both thumbprints (as openssl
 * computes them), says when and why the format was switched, and for a PFX says the password
 * comes separately without containing it; recipients are one plain address.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { opensslThumbprint } from '../testing/tools.ts';
import { DEFAULT_FALLBACKS, OPEN_POLICY } from './attachment.ts';
import { isMailError } from './errors.ts';
import { checkAddress } from './mailer.ts';
import { composeCertificateMail } from './message.ts';
import { mailFixtures } from './testing.ts';

const fx = mailFixtures();
const source = { certificate: fx.user, chain: [fx.issuing, fx.root] };

const opensslFingerprint = (digest: 'sha1' | 'sha256') =>
  opensslThumbprint(fx.path('user.pem'), digest);

describe('certificate mail text', () => {
  it('names the certificate: subject, issuer, serial, validity and both thumbprints', async () => {
    const mail = await composeCertificateMail({
      to: 'alice@example.com',
      requested: 'cer',
      policy: OPEN_POLICY,
      source,
    });
    assert.equal(mail.format, 'cer');
    assert.equal(mail.switchedFrom, undefined);
    const m = mail.message;
    assert.equal(m.to, 'alice@example.com');
    assert.equal(m.subject, 'Certificate: Alice Example (Contoso)');
    assert.match(
      m.text,
      /\n {2}Subject: +emailAddress=alice@example\.com,CN=Alice Example \(Contoso\),O=certpost tests\n/,
    );
    assert.match(m.text, /Issuer: +CN=mail test issuing CA,O=certpost tests/);
    assert.match(m.text, /Serial number: +0a11ce/);
    assert.match(m.text, /Valid: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d{4}-/);
    assert.ok(m.text.includes(`SHA-1 thumbprint:    ${opensslFingerprint('sha1')}`), m.text);
    assert.ok(m.text.includes(`SHA-256 thumbprint:  ${opensslFingerprint('sha256')}`), m.text);
    assert.match(m.text, /File: +Alice-Example-Contoso\.cer\n {2}Format: +DER certificate\n/);
    assert.doesNotMatch(m.text, /blocks|password/);
    assert.equal(m.attachments.length, 1);
  });

  it('says when the site blocks the format asked for, and what is sent instead', async () => {
    const mail = await composeCertificateMail({
      to: 'alice@example.com',
      requested: 'cer',
      policy: { blocked: new Set(['cer']), fallbacks: DEFAULT_FALLBACKS },
      source,
    });
    assert.equal(mail.format, 'p7b');
    assert.equal(mail.switchedFrom, 'cer');
    assert.equal(mail.message.attachments[0]!.filename, 'Alice-Example-Contoso.p7b');
    assert.match(
      mail.message.text.replace(/\s+/g, ' '),
      /It was to be sent as \.cer, but this site's mail system blocks \.cer attachments, so it is sent as \.p7b instead\./,
    );
  });

  it('a PFX: the text says the password comes separately, and the password is nowhere in the message', async () => {
    const password = 'Xy7-unique-pfx-password-Qz';
    const mail = await composeCertificateMail({
      to: 'alice@example.com',
      requested: 'pfx',
      policy: OPEN_POLICY,
      source: { ...source, identity: { key: fx.userKey, password, profile: 'compat' } },
    });
    const m = mail.message;
    assert.equal(m.subject, 'Certificate and private key: Alice Example (Contoso)');
    assert.match(
      m.text.replace(/\s+/g, ' '),
      /password that is not in this message: you receive it separately/,
    );
    const everything = [m.subject, m.text, ...m.attachments.map((a) => a.filename)].join('\n');
    assert.ok(!everything.includes(password));
    const bytes = Buffer.from(m.attachments[0]!.content);
    for (const enc of ['utf8', 'utf16le', 'latin1'] as const)
      assert.equal(bytes.indexOf(Buffer.from(password, enc)), -1, `password in the PFX as ${enc}`);
  });

  it('refuses a recipient that is not one plain address, before building anything', async () => {
    for (const to of [
      '',
      'alice',
      'alice@',
      'Alice <alice@example.com>',
      'a@example.com, b@example.com',
      'a@example.com\r\nBcc: eve@example.com',
      '"a b"@example.com',
      `${'a'.repeat(65)}@example.com`,
      'a@-example.com',
    ]) {
      await assert.rejects(
        composeCertificateMail({ to, requested: 'cer', policy: OPEN_POLICY, source }),
        (e) => isMailError(e, 'ERR_MAIL_INVALID_ADDRESS'),
        JSON.stringify(to),
      );
    }
    for (const ok of [
      'alice@example.com',
      'a.b+tag@sub.example.co',
      "o'hara@example.com",
      'root@localhost',
    ])
      assert.equal(checkAddress(ok), ok);
  });
});
