/**
 * Self-service in-process: which certificates are a user's, requesting an identity (the
 * password once, the PFX it opens, escrowed), and the one-time link: once, by its user only,
 * before it expires, one winner among concurrent uses; a user cannot open admin pages.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parsePkcs12 } from '../../pki/pkcs12.ts';
import { extendedKeyUsage, subjectAltNames } from '../../pki/x509.ts';
import { tempDir } from '../../testing/tools.ts';
import { openContext, type ServerContext } from '../context.ts';
import { recoverIdentity } from '../pfx-identity.ts';
import { buildApp } from '../serve.ts';
import { myCertificates } from './self-service.ts';
import { CHEAP_SCRYPT, csrfOf, signIn, type FormClient } from './testing.ts';
import { createUser } from './users.ts';

const PW = 'the right password';
/** The portal's clock runs with real time (the CA audits with it), moved on by `skew`. */
let skew = 0;
let ctx: ServerContext;
let app: FastifyInstance;
let ann: FormClient;

before(async () => {
  ctx = await openContext({ dataDir: join(tempDir(), 'data'), createCa: true });
  app = buildApp(ctx, {
    logLevel: 'silent',
    portal: { now: () => new Date(Date.now() + skew), passwordParams: CHEAP_SCRYPT },
  });
  await app.ready();
  const deps = { store: ctx.store, passwordParams: CHEAP_SCRYPT };
  await createUser(deps, 'test', {
    username: 'ann@contoso.com',
    password: PW,
    displayName: 'Ann "A" Smith',
  });
  await createUser(deps, 'test', { username: 'bob@contoso.com', password: PW });
  await createUser(deps, 'test', { username: 'nomail', password: PW });
  ann = await signIn(app, 'ann@contoso.com', PW);
});
after(async () => {
  await app.close();
});

/** Requests an identity as `client`; returns the shown password and the link. */
async function request(client: FormClient, format = 'modern') {
  const my = await client.get('/my');
  const res = await client.post('/my/request', { _csrf: csrfOf(my.body), profile: 'user', format });
  assert.equal(res.statusCode, 200, res.body.slice(0, 500));
  const password = /<code class="secret" id="pfx-password">([^<]+)<\/code>/.exec(res.body)?.[1];
  const link = /<a class="button" id="pfx-download" href="(\/download\/[A-Za-z0-9_-]{43})">/.exec(
    res.body,
  )?.[1];
  assert.ok(password && link, res.body);
  return { password, link, page: res };
}

describe('self-service', () => {
  it('requests an identity: the password shown once opens the one-time PFX; escrowed; audited without secrets', async () => {
    const { password, link, page } = await request(ann);
    assert.equal(page.headers['cache-control'], 'no-store');
    const res = await ann.get(link);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/x-pkcs12');
    assert.match(
      String(res.headers['content-disposition']),
      /^attachment; filename="ann-contoso-com-[0-9a-f]{1,8}\.pfx"$/,
    );
    const pfx = new Uint8Array(res.rawPayload);
    const opened = await parsePkcs12(pfx, password);
    assert.equal(opened.keys.length, 1);
    const leaf = opened.certificates[0]!.certificate;
    assert.deepEqual(
      subjectAltNames(leaf).map((n) => `${n.type}:${n.value}`),
      ['email:ann@contoso.com', 'upn:ann@contoso.com'],
    );
    assert.deepEqual(
      extendedKeyUsage(leaf)?.map((e) => e.name),
      ['clientAuth', 'emailProtection'],
    );
    assert.match(opened.integrity.mac, /sha256/);
    const serial = Buffer.from(leaf.serial).toString('hex');
    assert.equal((await recoverIdentity(ctx, serial))?.password, password, 'escrowed for recovery');
    const audit = JSON.stringify(await ctx.store.listAudit({ limit: 20 }));
    assert.ok(!audit.includes(password), 'the password is not in the audit log');
    assert.ok(!audit.includes(link.slice('/download/'.length)), 'nor the token');
    const actions = (await ctx.store.listAudit({ limit: 3 })).map((e) => `${e.actor} ${e.action}`);
    assert.deepEqual(actions, [
      'portal:ann@contoso.com download-link.used',
      'portal:ann@contoso.com download-link.created',
      'portal:ann@contoso.com certificate.issued',
    ]);
    // The second use is refused with a page that says why.
    const again = await ann.get(link);
    assert.equal(again.statusCode, 410);
    assert.match(again.body, /This download link was used at .*: each link works once/);
    assert.doesNotMatch(again.body, /PFX/);
    // The certificate is among ann's, as an identity.
    const my = await ann.get('/my');
    assert.ok(my.body.includes(`<td class="mono">${serial}</td>`));
    assert.match(my.body, /<td>identity<\/td>/);
    assert.match(my.body, /CN=Ann A Smith/);
  });

  it('a compatible (3DES) PFX opens with its password too', async () => {
    const { password, link } = await request(ann, 'compat');
    const opened = await parsePkcs12(new Uint8Array((await ann.get(link)).rawPayload), password);
    assert.ok(opened.encryption.includes('pbe-sha1-3des'), opened.encryption.join());
  });

  it('only its user may use a link; an unknown token is just invalid', async () => {
    const { link } = await request(ann);
    const bob = await signIn(app, 'bob@contoso.com', PW);
    const stolen = await bob.get(link);
    assert.equal(stolen.statusCode, 404);
    assert.match(stolen.body, /This download link is not valid/);
    assert.equal((await ann.get(link)).statusCode, 200, 'still usable by its owner');
    assert.equal((await ann.get('/download/not-a-token')).statusCode, 404);
    assert.equal((await ann.get(`/download/${'A'.repeat(43)}`)).statusCode, 404);
  });

  it('a link expires after 15 minutes', async () => {
    const { link } = await request(ann);
    skew = 15 * 60_000;
    try {
      const res = await ann.get(link);
      assert.equal(res.statusCode, 410);
      assert.match(res.body, /expired/);
    } finally {
      skew = 0;
    }
  });

  it('two concurrent uses of a link: exactly one gets the PFX', async () => {
    const { link } = await request(ann);
    const both = await Promise.all([ann.get(link), ann.get(link), ann.get(link)]);
    assert.deepEqual(both.map((r) => r.statusCode).toSorted(), [200, 410, 410]);
  });

  it('without a session the link leads to the sign-in page, and on to the download', async () => {
    const { link, password } = await request(ann);
    const res = await app.inject({ method: 'GET', url: link });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, `/signin?next=${encodeURIComponent(link)}`);
    const signin = await ann.get(String(res.headers.location));
    assert.equal(signin.statusCode, 303, 'ann is signed in already');
    assert.equal(signin.headers.location, link);
    const pfx = await ann.get(link);
    assert.ok(await parsePkcs12(new Uint8Array(pfx.rawPayload), password));
  });

  it('refuses an unknown or non-self-service profile, and a user without email or UPN', async () => {
    const csrf = csrfOf((await ann.get('/my')).body);
    for (const profile of ['default', 'manual', 'nope']) {
      const res = await ann.post('/my/request', { _csrf: csrf, profile });
      assert.equal(res.statusCode, 400, profile);
      assert.match(res.body, /no self-service profile/);
    }
    const nomail = await signIn(app, 'nomail', PW);
    const page = await nomail.get('/my');
    assert.match(page.body, /no email address or UPN/);
    const res = await nomail.post('/my/request', { _csrf: csrfOf(page.body), profile: 'user' });
    assert.equal(res.statusCode, 400);
  });

  it('a POST without the CSRF token issues nothing', async () => {
    const count = (await ctx.store.listCertificates({ limit: 1000 })).length;
    const res = await ann.post('/my/request', { profile: 'user' });
    assert.equal(res.statusCode, 403);
    assert.equal((await ctx.store.listCertificates({ limit: 1000 })).length, count);
  });

  it("a user's certificates include those on devices the user enrolled", async () => {
    const t = Date.now();
    const fake = (serial: string, subject: string) => {
      const der = new TextEncoder().encode(`fake ${serial}`);
      return {
        serial,
        sha1: createHash('sha1').update(der).digest('hex'),
        subject,
        notBefore: new Date(t - 1000),
        notAfter: new Date(t + 10 * 86_400_000),
        der,
        profile: 'default',
        requestId: null,
        issuedAt: new Date(t),
        altNames: [],
      };
    };
    const mdmCert = fake('0d01', 'CN=device-1');
    const onDevice = fake('0d02', 'CN=wifi-1');
    const elsewhere = fake('0d03', 'CN=wifi-2');
    for (const c of [mdmCert, onDevice, elsewhere]) await ctx.store.insertCertificate(c);
    await ctx.store.createDevice({
      id: 'device-1',
      hardwareId: 'HW1',
      name: 'Ann laptop',
      user: 'Ann@Contoso.com',
      certificateSerial: '0d01',
      enrolledAt: new Date(t),
      info: {},
      auth: null,
    });
    await ctx.store.replaceInventory('device-1', './Vendor/MSFT/CertificateStore/My/', [
      {
        uri: `./Vendor/MSFT/CertificateStore/My/${onDevice.sha1.toUpperCase()}`,
        thumbprint: onDevice.sha1.toUpperCase(),
        subject: 'CN=wifi-1',
        issuer: 'CN=x',
        notAfter: onDevice.notAfter,
        der: onDevice.der,
        seenAt: new Date(t),
      },
    ]);
    const user = (await ctx.store.getUserByName('ann@contoso.com'))!;
    const mine = await myCertificates(ctx, user);
    const bySerial = new Map(mine.map((m) => [m.certificate.serial, m.where]));
    assert.deepEqual(bySerial.get('0d01'), ['device Ann laptop']);
    assert.deepEqual(bySerial.get('0d02'), ['device Ann laptop']);
    assert.equal(bySerial.has('0d03'), false);
    const page = await ann.get('/my');
    assert.match(page.body, /<td>device Ann laptop<\/td>/);
    assert.match(page.body, /<span class="badge expiring">expiring<\/span>/);
    const bob = (await ctx.store.getUserByName('bob@contoso.com'))!;
    assert.deepEqual(await myCertificates(ctx, bob), []);
  });
});
