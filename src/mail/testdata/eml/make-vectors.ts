/**
 * Regenerates the .eml test vectors of this directory (see README.md): a small PKI made with
 * `openssl` (the profiles of testing/test-pki.ts), messages composed with nodemailer's
 * MailComposer, and one S/MIME-signed message made with `openssl smime -sign`. Run from the
 * repository root:
 *
 *   npx node src/mail/testdata/eml/make-vectors.ts
 *
 * Keys are thrown away; the certificates are valid for ten years from the run.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import MailComposer from 'nodemailer/lib/mail-composer';
import type Mail from 'nodemailer/lib/mailer';
import { opensslIssuer } from '../../../testing/test-pki.ts';

const OUT = new URL('.', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'certpost-eml-'));
const { openssl: ssl, issue } = opensslIssuer(work);
const file = (name: string) => readFileSync(join(work, name));

const TEN_YEARS = 3650;
issue('root', 'ca', null, { subject: '/O=certpost vectors/CN=Vector Root', days: TEN_YEARS });
issue('inter', 'ca', 'root', {
  subject: '/O=certpost vectors/CN=Vector Issuing CA',
  days: TEN_YEARS,
});
issue('alice', 'person', 'inter', {
  subject: '/CN=Alice/emailAddress=alice@example.test',
  days: TEN_YEARS,
});
issue('bob', 'person', 'inter', {
  subject: '/CN=Bob/emailAddress=bob@example.test',
  days: TEN_YEARS,
});
ssl('crl2pkcs7', '-nocrl', '-certfile', 'inter.pem', '-outform', 'DER', '-out', 'inter.p7c');
writeFileSync(join(work, 'chain.pem'), Buffer.concat([file('inter.pem'), file('root.pem')]));
ssl('pkcs12', '-export', '-in', 'alice.pem', '-inkey', 'alice.key', '-certfile', 'chain.pem',
  '-name', 'Alice', '-passout', 'pass:alice-Pa55', '-out', 'alice.pfx'); // prettier-ignore

const HEADERS = {
  from: 'IT <it@example.test>',
  to: 'Alice <alice@example.test>',
  date: new Date('2026-01-15T09:00:00Z'),
  baseBoundary: 'certpost-vector',
};

async function compose(name: string, mail: Mail.Options): Promise<void> {
  const bytes = await new MailComposer({ ...HEADERS, messageId: `<${name}@example.test>`, ...mail })
    .compile()
    .build();
  writeFileSync(join(OUT, name), bytes);
}

await compose('certificates.eml', {
  subject: 'Your certificates',
  text: 'Install the attached root, issuing CA and your identity (password: alice-Pa55).',
  attachments: [
    { filename: 'root.cer', content: file('root.der'), contentType: 'application/pkix-cert' },
    {
      filename: 'intermediate.p7c',
      content: file('inter.p7c'),
      contentType: 'application/pkcs7-mime; smime-type=certs-only',
    },
    { filename: 'alice.pfx', content: file('alice.pfx'), contentType: 'application/x-pkcs12' },
    { filename: false, content: file('bob.pem'), contentType: 'application/octet-stream' },
    { filename: 'readme.txt', content: 'Ask IT if anything fails.\n', contentType: 'text/plain' },
  ],
});
await compose('no-certificate.eml', {
  subject: 'Not what you wanted',
  text: 'Only a request and a picture.',
  attachments: [
    { filename: 'request.csr', content: file('bob.csr'), contentType: 'application/pkcs10' },
    {
      filename: 'pixel.gif',
      content: Buffer.from('R0lGODlhAQABAAAAACwAAAAAAQABAAA=', 'base64'),
      contentType: 'image/gif',
    },
  ],
});
await compose('corrupt-attachment.eml', {
  subject: 'A broken certificate',
  text: 'The attachment was damaged on the way.',
  attachments: [
    {
      filename: 'broken.cer',
      content: Buffer.from('this is not a certificate at all\n'),
      contentType: 'application/pkix-cert',
    },
  ],
});

// S/MIME: a signed entity (text + root.cer) by hand, signed by Alice with the chain attached.
const b64 = (b: Buffer) => b.toString('base64').replace(/.{76}/g, '$&\r\n');
const entity = [
  'Content-Type: multipart/mixed; boundary="inner"',
  '',
  '--inner',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Our root, signed by Alice.',
  '--inner',
  'Content-Type: application/pkix-cert; name=root.cer',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename=root.cer',
  '',
  b64(file('root.der')),
  '--inner--',
  '',
].join('\r\n');
writeFileSync(join(work, 'entity.txt'), entity);
ssl('smime', '-sign', '-in', 'entity.txt', '-signer', 'alice.pem', '-inkey', 'alice.key',
  '-certfile', 'chain.pem', '-from', 'alice@example.test', '-to', 'it@example.test',
  '-subject', 'Signed root', '-out', 'signed.eml'); // prettier-ignore
writeFileSync(join(OUT, 'smime-signed.eml'), file('signed.eml'));

rmSync(work, { recursive: true, force: true });
