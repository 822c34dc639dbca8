/**
 * Mail settings are checked at start: each mistake is refused with the flag (and variable) to
 * fix, nothing is half-configured, credentials never come from the URL, and a login always
 * travels over TLS.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../testing/tools.ts';
import { isMailError } from './errors.ts';
import { loadMailSettings, type MailSettingsInput } from './settings.ts';
import { mailFixtures } from './testing.ts';

const dir = tempDir();
const file = (name: string, content: string) => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const NO_ENV = {};
const base: MailSettingsInput = { url: 'smtp://mail.example.com', from: 'pki@example.com' };

async function refused(input: MailSettingsInput, pattern: RegExp, env = NO_ENV): Promise<void> {
  await assert.rejects(
    loadMailSettings(input, env),
    (e) => isMailError(e, 'ERR_MAIL_CONFIG') && pattern.test(e.message),
    pattern.source,
  );
}

describe('mail settings', () => {
  it('no relay: no mail, unless another mail setting says someone meant one', async () => {
    assert.equal(await loadMailSettings({}, NO_ENV), undefined);
    await refused(
      { from: 'pki@example.com', blocked: 'cer' },
      /--smtp-from, --mail-blocked given without --smtp-url \(CERTPOST_SMTP_URL\)/,
    );
  });

  it('relay URLs: smtp:// with STARTTLS when offered or required, smtps:// implicit TLS, default ports', async () => {
    const s = await loadMailSettings(base, NO_ENV);
    assert.deepEqual(s?.relay, {
      url: 'smtp://mail.example.com:25',
      host: 'mail.example.com',
      port: 25,
      tls: 'opportunistic',
      timeoutMs: 30_000,
      from: { address: 'pki@example.com' },
    });
    assert.deepEqual(s?.policy.blocked, new Set());
    const r = await loadMailSettings(
      { ...base, url: 'smtp://[::1]:2525?starttls=required' },
      NO_ENV,
    );
    assert.equal(r?.relay.tls, 'required');
    assert.equal(r?.relay.host, '::1');
    assert.equal(r?.relay.url, 'smtp://[::1]:2525');
    const t = await loadMailSettings({ ...base, url: 'smtps://mail.example.com' }, NO_ENV);
    assert.equal(t?.relay.tls, 'implicit');
    assert.equal(t?.relay.port, 465);
    await refused({ ...base, url: 'http://mail.example.com' }, /--smtp-url .*scheme http: is not/);
    await refused({ ...base, url: 'mail.example.com:25' }, /--smtp-url/);
    await refused({ ...base, url: 'smtp://mail.example.com/x' }, /only scheme, host, port/);
    await refused({ ...base, url: 'smtp://mail.example.com?tls=1' }, /unknown parameter/);
    await refused(
      { ...base, url: 'smtp://mail.example.com?starttls=yes' },
      /use required or opportunistic/,
    );
    await refused({ ...base, url: 'smtps://mail.example.com?starttls=required' }, /does not apply/);
  });

  it('credentials: never in the URL (and the refusal does not repeat them), the password from a file or the environment', async () => {
    await assert.rejects(
      loadMailSettings({ ...base, url: 'smtp://bob:hunter2-secret@mail.example.com' }, NO_ENV),
      (e) =>
        isMailError(e, 'ERR_MAIL_CONFIG') &&
        /no user or password in the URL/.test(e.message) &&
        !e.message.includes('hunter2-secret'),
    );
    const fromFile = await loadMailSettings(
      { ...base, user: 'bob', passwordFile: file('pw', 's3cret pass\n') },
      NO_ENV,
    );
    assert.deepEqual(fromFile?.relay.auth, { user: 'bob', password: 's3cret pass' });
    // A login forces STARTTLS: the password never crosses the network in the clear.
    assert.equal(fromFile?.relay.tls, 'required');
    const fromEnv = await loadMailSettings(
      { ...base, user: 'bob' },
      { CERTPOST_SMTP_PASSWORD: 'env-pass' },
    );
    assert.deepEqual(fromEnv?.relay.auth, { user: 'bob', password: 'env-pass' });
    await refused(
      { ...base, user: 'bob' },
      /--smtp-password-file .*a relay user is given but no password \(--smtp-password-file or CERTPOST_SMTP_PASSWORD\)/,
    );
    await refused({ ...base }, /--smtp-user .*password is given but no user/, {
      CERTPOST_SMTP_PASSWORD: 'x',
    });
    await refused({ ...base, user: 'bob', passwordFile: file('empty', '\n') }, /password is empty/);
    await refused(
      { ...base, user: 'bob', passwordFile: join(dir, 'missing') },
      /--smtp-password-file .*no such file/,
    );
    await refused(
      { ...base, url: 'smtp://mail.example.com?starttls=opportunistic', user: 'bob' },
      /in the clear/,
      { CERTPOST_SMTP_PASSWORD: 'x' },
    );
  });

  it('sender: an address or "Name <address>"', async () => {
    const named = await loadMailSettings(
      { ...base, from: 'Contoso PKI <pki@contoso.com>' },
      NO_ENV,
    );
    assert.deepEqual(named?.relay.from, { name: 'Contoso PKI', address: 'pki@contoso.com' });
    await refused({ ...base, from: undefined }, /--smtp-from .*required/);
    await refused(
      { ...base, from: 'pki' },
      /--smtp-from .*not one plain address|--smtp-from .*is not/,
    );
    await refused({ ...base, from: 'a@b.c, d@e.f' }, /--smtp-from/);
  });

  it('relay CA: PEM certificates, else a clear error', async () => {
    const fx = mailFixtures();
    const s = await loadMailSettings({ ...base, caFile: fx.path('root.pem') }, NO_ENV);
    assert.match(s?.relay.ca ?? '', /^-----BEGIN CERTIFICATE-----\n/);
    await refused(
      { ...base, caFile: fx.path('user.key') },
      /--smtp-ca-file .*holds no PEM certificate/,
    );
    await refused({ ...base, caFile: join(dir, 'nope.pem') }, /--smtp-ca-file .*no such file/);
  });

  it('attachment policy: blocked types and the fallback order', async () => {
    const s = await loadMailSettings(
      { ...base, blocked: '.CER, crt exe', fallbacks: 'pem,p7b,pem' },
      NO_ENV,
    );
    assert.deepEqual(s?.policy, {
      blocked: new Set(['cer', 'crt', 'exe']),
      fallbacks: ['pem', 'p7b'],
    });
    await refused(
      { ...base, fallbacks: 'p7b,zip' },
      /--mail-fallbacks .*"zip" is not one of cer, crt, pem, p7b, pfx, p12/,
    );
    await refused({ ...base, blocked: 'c/er' }, /--mail-blocked .*not a file extension/);
  });

  it('timeouts from 1 s to 10 min', async () => {
    assert.equal(
      (await loadMailSettings({ ...base, timeoutMs: 5000 }, NO_ENV))?.relay.timeoutMs,
      5000,
    );
    await refused({ ...base, timeoutMs: 10 }, /--smtp-timeout .*from 1s to 10m/);
  });
});
