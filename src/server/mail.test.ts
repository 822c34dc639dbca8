/**
 * Mailing certificates through the admin API (`POST /api/v1/certificates/:serial/mail`) to a
 * real SMTP listener on loopback (STARTTLS and a login): the certificate arrives with its chain,
 * the blocked .cer switches format and says so, a PFX comes only from an escrowed key with a
 * password that is in the API answer and nowhere in the mail or the audit log; refusals and
 * relay failures send nothing and audit nothing; a server without a relay answers 503.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { simpleParser, type ParsedMail } from 'mailparser';
import { parsePkcs12 } from '../pki/pkcs12.ts';
import { loadMailSettings, type MailSettingsInput } from '../mail/settings.ts';
import { startSmtpListener, type SmtpListener } from '../testing/smtp.ts';
import { opensslPkcs12Info, run, tempDir } from '../testing/tools.ts';
import { createApiToken } from './admin-ops.ts';
import { openContext, type ServerContext } from './context.ts';
import { buildApp } from './serve.ts';
import { escrowedSerial, issuedSerial } from './testing.ts';
import { CHEAP_SCRYPT, csrfOf, signIn } from './portal/testing.ts';
import { createUser } from './portal/users.ts';

const RELAY_USER = 'certpost';
const RELAY_PASSWORD = 'relay-pass-Kd82-unique';
const work = tempDir();
const dataDir = join(work, 'data');
let relay: SmtpListener;
let ctx: ServerContext;
let app: FastifyInstance;
let token = '';
let caFile = '';

async function mailSettings(o: Partial<MailSettingsInput> = {}, password = RELAY_PASSWORD) {
  return loadMailSettings(
    {
      url: relay.url,
      from: 'pki@contoso.example',
      user: RELAY_USER,
      caFile,
      blocked: 'cer',
      ...o,
    },
    { CERTPOST_SMTP_PASSWORD: password },
  );
}

before(async () => {
  relay = await startSmtpListener({ auth: { user: RELAY_USER, password: RELAY_PASSWORD } });
  caFile = join(work, 'relay-ca.pem');
  writeFileSync(caFile, relay.certificatePem);
  ctx = await openContext({ dataDir, createCa: true, mail: await mailSettings() });
  app = buildApp(ctx, { logLevel: 'silent' });
  await app.ready();
  token = (await createApiToken(ctx, 'test', { name: 'tester' })).token;
});
after(async () => {
  await app.close();
  await relay.stop();
});

function mail(
  serial: string,
  payload: object,
  o: { app?: FastifyInstance; token?: string | null } = {},
): Promise<LightMyRequestResponse> {
  const bearer = o.token === undefined ? token : o.token;
  return (o.app ?? app).inject({
    method: 'POST',
    url: `/api/v1/certificates/${serial}/mail`,
    headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` },
    payload,
  });
}

const json = <T>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;

async function mailedAudit() {
  return ctx.store.listAudit({ action: 'certificate.mailed', limit: 100 });
}

/** The attachment of the last message, saved for openssl, and the parsed message. */
async function lastMessage(): Promise<{ parsed: ParsedMail; file: string; raw: Buffer }> {
  const got = relay.messages.at(-1)!;
  assert.equal(got.secure, true, 'over STARTTLS');
  assert.equal(got.user, RELAY_USER, 'logged in');
  const parsed = await simpleParser(got.raw);
  const [a] = parsed.attachments;
  assert.ok(a, 'one attachment');
  const file = join(work, `${relay.messages.length}-${a.filename}`);
  writeFileSync(file, a.content);
  return { parsed, file, raw: got.raw };
}

interface Sent {
  to: string;
  serial: string;
  sha1: string;
  requested: string;
  format: string;
  filename: string;
  switched: string | null;
  messageId: string;
  relay: string;
  password?: string;
}

describe('POST /api/v1/certificates/:serial/mail', () => {
  let serial = '';
  before(async () => {
    serial = await issuedSerial(ctx, 'CN=alice,O=Contoso');
  });

  it('needs an API token', async () => {
    const r = await mail(serial, { to: 'alice@example.com' }, { token: null });
    assert.equal(r.statusCode, 401);
    assert.equal(relay.messages.length, 0);
  });

  it('sends the certificate with its chain; the blocked .cer becomes .p7b, and both the answer and the text say so', async () => {
    const r = await mail(serial, { to: 'alice@example.com', format: 'cer' });
    assert.equal(r.statusCode, 200, r.body);
    const sent = json<Sent>(r);
    assert.equal(sent.serial, serial);
    assert.equal(sent.requested, 'cer');
    assert.equal(sent.format, 'p7b');
    assert.equal(sent.filename, 'alice.p7b');
    assert.match(sent.switched ?? '', /blocks \.cer attachments: sent as \.p7b/);
    assert.equal(sent.relay, relay.url);
    assert.equal(sent.password, undefined);

    const { parsed, file } = await lastMessage();
    assert.equal(parsed.messageId, sent.messageId);
    assert.deepEqual(relay.messages.at(-1)!.to, ['alice@example.com']);
    assert.equal(parsed.attachments[0]!.contentType, 'application/x-pkcs7-certificates');
    const certs = run('openssl', [
      'pkcs7',
      '-inform',
      'DER',
      '-in',
      file,
      '-print_certs',
    ]).toString();
    const subjects = [...certs.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(subjects, [
      'O = Contoso, CN = alice',
      'O = certpost, CN = certpost development issuing CA',
      'O = certpost, CN = certpost development root CA',
    ]);
    assert.ok(parsed.text?.includes(sent.sha1), 'the SHA-1 thumbprint is in the text');
    assert.match(parsed.text ?? '', /blocks \.cer\s+attachments/);

    const [audit] = await mailedAudit();
    assert.equal(audit?.actor, 'api:tester');
    assert.equal(audit?.target, serial);
    assert.deepEqual(
      { ...audit?.details, messageId: undefined },
      {
        to: 'alice@example.com',
        sha1: sent.sha1,
        subject: 'CN=alice,O=Contoso',
        requested: 'cer',
        format: 'p7b',
        filename: 'alice.p7b',
        messageId: undefined,
        relay: relay.url,
      },
    );
  });

  it('a PFX from the key escrow: the password is in the answer once, not in the mail nor the audit log', async () => {
    const escrowed = await escrowedSerial(ctx, 'CN=bob@example.com');
    const r = await mail(escrowed, { to: 'bob@example.com', format: 'pfx', pfxProfile: 'compat' });
    assert.equal(r.statusCode, 200, r.body);
    const sent = json<Sent>(r);
    assert.equal(sent.format, 'pfx');
    assert.match(sent.password ?? '', /^[A-Za-z0-9_-]{32}$/);
    const password = sent.password!;

    const { parsed, file, raw } = await lastMessage();
    assert.equal(parsed.attachments[0]!.contentType, 'application/x-pkcs12');
    assert.equal(parsed.attachments[0]!.filename, 'bob-example.com.pfx');
    const info = opensslPkcs12Info(file, password);
    assert.match(info, /-----BEGIN PRIVATE KEY-----/);
    assert.match(info, /subject=CN = bob@example\.com/);
    const opened = await parsePkcs12(new Uint8Array(parsed.attachments[0]!.content), password);
    assert.deepEqual(opened.encryption, ['pbe-sha1-3des'], 'the compat profile');
    assert.match(parsed.text ?? '', /password that is not in this message/);
    assert.ok(!raw.includes(password), 'the password is not in the message');
    assert.ok(!raw.includes(Buffer.from(password).toString('base64')), 'nor base64-encoded');

    const [audit] = await mailedAudit();
    assert.equal(audit?.target, escrowed);
    assert.equal(audit?.details['keyFromEscrow'], true);
    assert.ok(!JSON.stringify(await ctx.store.listAudit({ limit: 1000 })).includes(password));
  });

  it('refusals send nothing and audit nothing', async () => {
    const count = relay.messages.length;
    const audits = (await mailedAudit()).length;
    const cases: [string, object, number, string][] = [
      [serial, { to: 'alice@example.com', format: 'pfx' }, 409, 'ERR_ADMIN_CONFLICT'],
      ['0badc0de', { to: 'alice@example.com' }, 404, 'ERR_ADMIN_NOT_FOUND'],
      [serial, { to: 'Alice <alice@example.com>' }, 400, 'ERR_MAIL_INVALID_ADDRESS'],
      [serial, { to: 'alice@example.com', format: 'exe' }, 400, 'bad-request'],
      [serial, { to: 'alice@example.com', password: 'x' }, 400, 'bad-request'],
      [serial, { to: 'alice@example.com', pfxProfile: 'compat' }, 400, 'ERR_ADMIN_INVALID'],
    ];
    for (const [s, body, status, error] of cases) {
      const r = await mail(s, body);
      assert.equal(r.statusCode, status, `${JSON.stringify(body)}: ${r.body}`);
      assert.equal(json<{ error: string }>(r).error, error, r.body);
    }
    const revoked = await issuedSerial(ctx, 'CN=carol');
    await ctx.enrollment.revoke(revoked, 1, 'test');
    const r = await mail(revoked, { to: 'carol@example.com' });
    assert.equal(r.statusCode, 409, r.body);
    assert.match(json<{ message: string }>(r).message, /was revoked/);
    assert.equal(relay.messages.length, count);
    assert.equal((await mailedAudit()).length, audits);
  });

  it('relay failures: 502 with a stable code, nothing audited, no relay password in the answer', async () => {
    const bad = await openContext({ dataDir, mail: await mailSettings({}, 'wrong-password') });
    const badApp = buildApp(bad, { logLevel: 'silent' });
    try {
      const audits = (await mailedAudit()).length;
      const r = await mail(serial, { to: 'alice@example.com' }, { app: badApp });
      assert.equal(r.statusCode, 502, r.body);
      assert.equal(json<{ error: string }>(r).error, 'ERR_MAIL_AUTH');
      assert.ok(!r.body.includes('wrong-password') && !r.body.includes(RELAY_PASSWORD));
      assert.equal((await mailedAudit()).length, audits);
    } finally {
      await badApp.close();
    }
  });

  it('a server without a relay answers 503', async () => {
    const none = await openContext({ dataDir });
    const noneApp = buildApp(none, { logLevel: 'silent' });
    try {
      const r = await mail(serial, { to: 'alice@example.com' }, { app: noneApp });
      assert.equal(r.statusCode, 503, r.body);
      assert.equal(json<{ error: string }>(r).error, 'ERR_MAIL_NOT_CONFIGURED');
      assert.match(json<{ message: string }>(r).message, /--smtp-url/);
    } finally {
      await noneApp.close();
    }
  });
});

describe('the admin console mails a certificate', () => {
  it('from the certificate list: the blocked .cer goes as .p7b, the page says so, audited as the signed-in user', async () => {
    const serial = await issuedSerial(ctx, 'CN=console-mail,O=Contoso');
    await createUser({ store: ctx.store, passwordParams: CHEAP_SCRYPT }, 'test', {
      username: 'mailer-admin',
      password: 'console password',
      role: 'admin',
    });
    const portalApp = buildApp(ctx, {
      logLevel: 'silent',
      portal: { passwordParams: CHEAP_SCRYPT },
    });
    try {
      const admin = await signIn(portalApp, 'mailer-admin', 'console password');
      const list = await admin.get(`/admin/certificates?q=${serial}`);
      assert.match(list.body, new RegExp(`action="/admin/certificates/${serial}/mail"`));
      const sentBefore = relay.messages.length;
      const sent = await admin.post(`/admin/certificates/${serial}/mail`, {
        _csrf: csrfOf(list.body),
        to: 'dana@example.com',
        format: 'cer',
        back: '/admin/certificates',
      });
      assert.equal(sent.statusCode, 303, sent.body);
      assert.equal(sent.headers.location, '/admin/certificates?notice=mailed-switched');
      assert.equal(relay.messages.length, sentBefore + 1);
      const { parsed } = await lastMessage();
      assert.equal(parsed.attachments[0]?.filename, 'console-mail.p7b');
      const [entry] = await mailedAudit();
      assert.equal(entry?.actor, 'portal:mailer-admin');
      assert.equal(entry?.details['to'], 'dana@example.com');

      // A PFX is not offered here (its password must be shown): refused, nothing sent.
      const page = await admin.get('/admin/certificates');
      const pfx = await admin.post(`/admin/certificates/${serial}/mail`, {
        _csrf: csrfOf(page.body),
        to: 'dana@example.com',
        format: 'pfx',
      });
      assert.equal(pfx.statusCode, 400);
      assert.equal(relay.messages.length, sentBefore + 1);
    } finally {
      await portalApp.close();
    }
  });
});
