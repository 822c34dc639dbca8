/**
 * The SMTP adapter against a real SMTP listener on loopback (testing/smtp.ts): the message
 * arrives over STARTTLS with a login, its attachment byte for byte with the right type and name,
 * parsed by mailparser; implicit TLS; and each way a relay fails gives its own stable code and a
 * message without the password.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { simpleParser } from 'mailparser';
import { startSmtpListener, type SmtpListener } from '../testing/smtp.ts';
import { freePort, tempDir } from '../testing/tools.ts';
import { OPEN_POLICY } from './attachment.ts';
import { isMailError, type MailErrorCode } from './errors.ts';
import { composeCertificateMail } from './message.ts';
import { loadMailSettings, type RelaySettings } from './settings.ts';
import { createSmtpMailer } from './smtp.ts';
import { mailFixtures } from './testing.ts';

const fx = mailFixtures();
const source = { certificate: fx.user, chain: [fx.issuing, fx.root] };
const USER = 'certpost';
const PASSWORD = 'relay-pass-Vq93-unique';
const dir = tempDir();
let relay: SmtpListener;
let caFile: string;

before(async () => {
  relay = await startSmtpListener({ auth: { user: USER, password: PASSWORD }, emlDir: dir });
  caFile = join(dir, 'relay-ca.pem');
  writeFileSync(caFile, relay.certificatePem);
});
after(async () => {
  await relay.stop();
});

/**
 * Relay settings for `url`: STARTTLS required (or smtps), the listener's certificate trusted,
 * logged in as USER unless `login` is false; `o` overrides.
 */
function settings(url: string, o: Partial<RelaySettings> = {}, login = true): RelaySettings {
  const u = new URL(url);
  return {
    url,
    host: u.hostname,
    port: Number(u.port),
    tls: u.protocol === 'smtps:' ? 'implicit' : 'required',
    ...(login ? { auth: { user: USER, password: PASSWORD } } : {}),
    ca: relay.certificatePem,
    timeoutMs: 5000,
    from: { name: 'Contoso PKI', address: 'pki@contoso.example' },
    ...o,
  };
}

async function cerMail(to = 'alice@example.com') {
  return (await composeCertificateMail({ to, requested: 'cer', policy: OPEN_POLICY, source }))
    .message;
}

async function failsWith(r: RelaySettings, code: MailErrorCode, pattern: RegExp, to?: string) {
  const delivered = relay.messages.length;
  const mailer = createSmtpMailer(r);
  try {
    await assert.rejects(
      mailer.send(await cerMail(to)),
      (e) => isMailError(e, code) && pattern.test(e.message) && !e.message.includes(PASSWORD),
      `${code} ${pattern.source}`,
    );
  } finally {
    mailer.close();
  }
  assert.equal(relay.messages.length, delivered, 'nothing was delivered');
}

describe('sending through a relay', () => {
  it('STARTTLS and a login: the message arrives with the attachment byte for byte', async () => {
    const s = await loadMailSettings(
      {
        url: `${relay.url}?starttls=required`,
        from: 'Contoso PKI <pki@contoso.example>',
        user: USER,
        caFile,
        blocked: 'cer',
      },
      { CERTPOST_SMTP_PASSWORD: PASSWORD },
    );
    assert.ok(s);
    const mail = await composeCertificateMail({
      to: 'alice@example.com',
      requested: 'cer',
      policy: s.policy,
      source,
    });
    const mailer = createSmtpMailer(s.relay);
    const sent = await mailer.send(mail.message);
    mailer.close();
    assert.match(sent.messageId, /^<.+@contoso\.example>$/);
    assert.match(sent.response, /^250 /);

    const got = relay.messages.at(-1)!;
    assert.equal(got.secure, true, 'STARTTLS was used');
    assert.equal(got.user, USER);
    assert.equal(got.from, 'pki@contoso.example');
    assert.deepEqual(got.to, ['alice@example.com']);
    assert.deepEqual(readFileSync(join(dir, `${relay.messages.length}.eml`)), got.raw);

    const parsed = await simpleParser(got.raw);
    assert.equal(parsed.messageId, sent.messageId);
    assert.equal(parsed.subject, 'Certificate: Alice Example (Contoso)');
    assert.equal(parsed.from?.text, '"Contoso PKI" <pki@contoso.example>');
    assert.equal(parsed.text?.replace(/\r\n/g, '\n'), mail.message.text);
    assert.match(parsed.text ?? '', /blocks \.cer\s+attachments, so it is sent as \.p7b/);
    assert.equal(parsed.attachments.length, 1);
    const [a] = parsed.attachments;
    assert.equal(a!.contentType, 'application/x-pkcs7-certificates');
    assert.equal(a!.filename, 'Alice-Example-Contoso.p7b');
    assert.equal(a!.contentDisposition, 'attachment');
    assert.deepEqual(new Uint8Array(a!.content), mail.message.attachments[0]!.content);
    assert.ok(!got.raw.includes(PASSWORD));
  });

  it('implicit TLS (smtps://)', async () => {
    const tls = await startSmtpListener({ tls: 'implicit' });
    try {
      const mailer = createSmtpMailer(settings(tls.url, {}, false));
      await mailer.send(await cerMail());
      mailer.close();
      assert.equal(tls.messages.length, 1);
      assert.equal(tls.messages[0]!.secure, true);
      const [a] = (await simpleParser(tls.messages[0]!.raw)).attachments;
      assert.equal(a!.contentType, 'application/pkix-cert');
      assert.deepEqual(new Uint8Array(a!.content), fx.user.der);
    } finally {
      await tls.stop();
    }
  });

  it('STARTTLS when offered: a relay without it gets the mail in the clear, unless STARTTLS is required', async () => {
    const plain = await startSmtpListener({ tls: 'none' });
    try {
      const open = settings(plain.url, { tls: 'opportunistic' }, false);
      const mailer = createSmtpMailer(open);
      await mailer.send(await cerMail());
      mailer.close();
      assert.equal(plain.messages[0]?.secure, false);
      const strict = createSmtpMailer({ ...open, tls: 'required' });
      await assert.rejects(strict.send(await cerMail()), (e) => isMailError(e, 'ERR_MAIL_TLS'));
      strict.close();
      assert.equal(plain.messages.length, 1);
    } finally {
      await plain.stop();
    }
  });
});

describe('relay failures: a stable code each, no password in any message', () => {
  it('a wrong password, and no login where one is required', async () => {
    const failures = relay.authFailures;
    await failsWith(
      settings(relay.url, { auth: { user: USER, password: 'wrong' } }),
      'ERR_MAIL_AUTH',
      /refused the login: smtp:\/\/127\.0\.0\.1:\d+: it answered "535 /,
    );
    assert.equal(relay.authFailures, failures + 1);
    await failsWith(settings(relay.url, {}, false), 'ERR_MAIL_AUTH', /530/);
  });

  it('an unreachable relay', async () => {
    const port = await freePort();
    await failsWith(
      settings(`smtp://127.0.0.1:${port}`),
      'ERR_MAIL_CONNECTION',
      new RegExp(`cannot connect to the mail relay: smtp://127\\.0\\.0\\.1:${port}: ECONNREFUSED`),
    );
  });

  it('a relay certificate that is not trusted: the system roots, or another CA', async () => {
    const { ca: _, ...systemRoots } = settings(relay.url);
    await failsWith(systemRoots, 'ERR_MAIL_TLS', /TLS with the mail relay failed: .*self-signed/);
    await failsWith(
      settings(relay.url, { ca: readFileSync(fx.path('root.pem'), 'utf8') }),
      'ERR_MAIL_TLS',
      /TLS with the mail relay failed/,
    );
  });

  it('a refused recipient', async () => {
    const strict = await startSmtpListener({ refuse: ['nobody@example.com'] });
    try {
      const delivered = strict.messages.length;
      const mailer = createSmtpMailer(settings(strict.url, {}, false));
      await assert.rejects(
        mailer.send(await cerMail('nobody@example.com')),
        (e) => isMailError(e, 'ERR_MAIL_RECIPIENT_REFUSED') && /550 .*no such user/.test(e.message),
      );
      mailer.close();
      assert.equal(strict.messages.length, delivered);
    } finally {
      await strict.stop();
    }
  });

  it('a relay that never answers', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      await failsWith(
        settings(`smtp://127.0.0.1:${port}`, { timeoutMs: 300 }),
        'ERR_MAIL_TIMEOUT',
        /did not answer in time/,
      );
    } finally {
      silent.close();
    }
  });
});
