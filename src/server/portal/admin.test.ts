/**
 * The admin console in-process: only administrators; the dashboard (CA status, CRL, pending
 * count, accessible charts); certificates searched, paged and revoked (the CRL lists it);
 * requests approved and rejected; devices with inventory; profiles assigned and unassigned;
 * the audit log paged — every action audited with the acting user, every POST behind CSRF.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { describeCrl } from '../../ca/crl.ts';
import type { NewCertificate } from '../../store/types.ts';
import { tempDir } from '../../testing/tools.ts';
import { openContext, type ServerContext } from '../context.ts';
import { createProfile } from '../mdm-profiles.ts';
import { buildApp } from '../serve.ts';
import { barChart, niceMax } from './charts.ts';
import { CHEAP_SCRYPT, csrfOf, signIn, type FormClient } from './testing.ts';
import { createUser } from './users.ts';

const PW = 'the right password';
const DAY = 86_400_000;
let ctx: ServerContext;
let app: FastifyInstance;
let root: FormClient;
let ann: FormClient;

function fake(serial: string, over: Partial<NewCertificate> = {}): NewCertificate {
  const der = new TextEncoder().encode(`fake ${serial}`);
  const now = Date.now();
  return {
    serial,
    sha1: createHash('sha1').update(der).digest('hex'),
    subject: `CN=host-${serial}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 365 * DAY),
    der,
    profile: 'default',
    requestId: null,
    issuedAt: new Date(now),
    altNames: [],
    ...over,
  };
}

before(async () => {
  ctx = await openContext({
    dataDir: join(tempDir(), 'data'),
    createCa: true,
    publicUrl: 'http://localhost:80',
  });
  app = buildApp(ctx, { logLevel: 'silent', portal: { passwordParams: CHEAP_SCRYPT } });
  await app.ready();
  const deps = { store: ctx.store, passwordParams: CHEAP_SCRYPT };
  await createUser(deps, 'test', {
    username: 'root',
    password: PW,
    role: 'admin',
    displayName: 'Root Admin',
  });
  await createUser(deps, 'test', { username: 'ann@contoso.com', password: PW });
  root = await signIn(app, 'root', PW);
  ann = await signIn(app, 'ann@contoso.com', PW);
});
after(async () => {
  await app.close();
});

const PAGES = [
  '/admin',
  '/admin/certificates',
  '/admin/requests',
  '/admin/devices',
  '/admin/profiles',
  '/admin/audit',
];

describe('admin console', () => {
  it('is for administrators only: a user gets 403 on every page and action', async () => {
    for (const url of PAGES) assert.equal((await ann.get(url)).statusCode, 403, url);
    await ctx.store.insertCertificate(fake('aa01'));
    const csrf = csrfOf((await ann.get('/my')).body);
    const res = await ann.post('/admin/certificates/aa01/revoke', {
      _csrf: csrf,
      reason: 'keyCompromise',
    });
    assert.equal(res.statusCode, 403);
    assert.equal((await ctx.store.getCertificate('aa01'))?.revokedAt, null);
    for (const url of PAGES) {
      const page = await root.get(url);
      assert.equal(page.statusCode, 200, url);
      assert.match(page.body, /aria-current="page"/, url);
    }
  });

  it('the dashboard shows CA expiry, the CRL number and next update, pending approvals and two accessible charts', async () => {
    const res = await root.get('/admin');
    const crl = describeCrl(await ctx.enrollment.currentCrl());
    assert.ok(res.body.includes(`<dd class="mono" id="crl-number">${crl.number}</dd>`));
    assert.match(res.body, /<dd id="crl-next-update">\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/dd>/);
    assert.match(res.body, /<td>Root CA<\/td><td>CN=certpost development root CA,O=certpost<\/td>/);
    assert.match(res.body, /<div class="value" id="pending-count">0<\/div>/);
    for (const id of ['issued', 'expiring']) {
      assert.ok(res.body.includes(`<svg role="img" aria-labelledby="${id}-title ${id}-desc"`), id);
      assert.match(res.body, new RegExp(`<title id="${id}-title">[^<]+</title>`));
      assert.match(res.body, new RegExp(`<desc id="${id}-desc">[^<]+</desc>`));
    }
    assert.match(res.body, /<details><summary>Show the numbers<\/summary>/);
  });

  it('charts: a readable axis, one bar per value with its tooltip, the summary as text', () => {
    assert.deepEqual(
      [0, 1, 3, 7, 10, 11, 180, 4000].map(niceMax),
      [1, 1, 5, 10, 10, 20, 200, 5000],
    );
    const svg = barChart({
      id: 'c',
      title: 'T <x>',
      summary: 'S & more',
      bars: [
        { label: 'a', value: 0 },
        { label: 'b', value: 4 },
      ],
      labelName: 'Day',
      valueName: 'N',
    }).toString();
    assert.equal(svg.match(/<rect /g)?.length, 2);
    assert.match(svg, /<title>b: 4<\/title>/);
    assert.match(svg, /<title id="c-title">T &lt;x&gt;<\/title>/);
    assert.match(svg, /<figcaption>S &amp; more<\/figcaption>/);
    assert.doesNotMatch(svg, /style=/);
  });

  it('searches issued certificates by subject, serial and alt name, and pages them', async () => {
    const now = Date.now();
    for (let i = 0; i < 30; i++)
      await ctx.store.insertCertificate(
        fake(`bb${i.toString(16).padStart(2, '0')}`, {
          issuedAt: new Date(now - i * 1000),
          altNames: i === 7 ? ['dns:printer-7.contoso.com'] : [],
        }),
      );
    const bySan = await root.get('/admin/certificates?q=PRINTER-7');
    assert.match(bySan.body, /id="cert-bb07"/);
    assert.equal(bySan.body.match(/<tr id="cert-/g)?.length, 1);
    assert.match(bySan.body, /dns:printer-7\.contoso\.com/);
    const bySerial = await root.get('/admin/certificates?q=bb1');
    assert.equal(bySerial.body.match(/<tr id="cert-/g)?.length, 14);
    const page1 = await root.get('/admin/certificates?q=host-bb');
    assert.equal(page1.body.match(/<tr id="cert-/g)?.length, 25);
    assert.match(page1.body, /href="\/admin\/certificates\?q=host-bb&amp;page=2">Next/);
    const page2 = await root.get('/admin/certificates?q=host-bb&page=2');
    assert.equal(page2.body.match(/<tr id="cert-/g)?.length, 5);
    assert.match(page2.body, /Previous/);
    const none = await root.get(`/admin/certificates?q=${encodeURIComponent('<script>')}`);
    assert.match(none.body, /No certificates match “&lt;script&gt;”/);
  });

  it('revokes with a reason: audited as the admin, the CRL lists it; CSRF and unknown serials refused', async () => {
    await ctx.store.insertCertificate(fake('cc01', { altNames: ['email:x@contoso.com'] }));
    const page = await root.get('/admin/certificates?q=cc01');
    const csrf = csrfOf(page.body);
    const noToken = await root.post('/admin/certificates/cc01/revoke', { reason: 'keyCompromise' });
    assert.equal(noToken.statusCode, 403);
    assert.equal((await ctx.store.getCertificate('cc01'))?.revokedAt, null);
    const res = await root.post('/admin/certificates/cc01/revoke', {
      _csrf: csrf,
      reason: 'keyCompromise',
      back: '/admin/certificates?q=cc01',
    });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/admin/certificates?q=cc01&notice=revoked');
    const shown = await root.get(String(res.headers.location));
    assert.match(shown.body, /The certificate was revoked/);
    assert.match(
      shown.body,
      /<span class="badge revoked">revoked<\/span><br><span class="muted">keyCompromise<\/span>/,
    );
    assert.equal((await ctx.store.getCertificate('cc01'))?.revocationReason, 1);
    assert.ok(describeCrl(await ctx.enrollment.currentCrl()).revoked.includes('cc01'));
    const [audit] = await ctx.store.listAudit({ action: 'certificate.revoked', limit: 1 });
    assert.equal(audit?.actor, 'portal:root');
    const again = await root.post('/admin/certificates/cc01/revoke', {
      _csrf: csrf,
      reason: 'superseded',
    });
    assert.equal(again.statusCode, 409);
    assert.match(again.body, /no valid certificate with serial cc01/);
    const unknown = await root.post('/admin/certificates/ffff/revoke', { _csrf: csrf });
    assert.equal(unknown.statusCode, 404);
    const badReason = await root.post('/admin/certificates/bb00/revoke', {
      _csrf: csrf,
      reason: 'because',
    });
    assert.equal(badReason.statusCode, 400);
    const offsite = await root.post('/admin/certificates/bb01/revoke', {
      _csrf: csrf,
      back: 'https://evil.example/',
    });
    assert.equal(
      offsite.headers.location,
      '/admin/certificates?notice=revoked',
      'back is a local path only',
    );
  });

  it('approves and rejects held requests, audited as the admin', async () => {
    for (const id of ['r1', 'r2'])
      await ctx.store.createRequest({
        id,
        transactionId: `tx-${id}`,
        subject: `CN=held-${id}`,
        profile: 'manual',
        csr: new Uint8Array([0x30, 0]),
        signerCertificate: null,
        createdAt: new Date(),
      });
    const page = await root.get('/admin/requests');
    assert.match(page.body, /id="request-r1"/);
    assert.match((await root.get('/admin')).body, /id="pending-count">2</);
    const csrf = csrfOf(page.body);
    const ok = await root.post('/admin/requests/r1/approve', { _csrf: csrf });
    assert.equal(ok.statusCode, 303);
    assert.equal(ok.headers.location, '/admin/requests?notice=approved');
    const no = await root.post('/admin/requests/r2/reject', { _csrf: csrf });
    assert.equal(no.headers.location, '/admin/requests?notice=rejected');
    assert.deepEqual(
      [(await ctx.store.getRequest('r1'))?.status, (await ctx.store.getRequest('r1'))?.decidedBy],
      ['approved', 'portal:root'],
    );
    assert.equal((await ctx.store.getRequest('r2'))?.status, 'rejected');
    assert.equal((await root.post('/admin/requests/r1/approve', { _csrf: csrf })).statusCode, 409);
    assert.equal((await root.post('/admin/requests/nope/reject', { _csrf: csrf })).statusCode, 404);
    assert.match((await root.get('/admin/requests?status=approved')).body, /CN=held-r1/);
  });

  it('lists devices and shows one with the certificates it reported', async () => {
    await ctx.store.insertCertificate(fake('dd01', { subject: 'CN=dev-1' }));
    await ctx.store.createDevice({
      id: 'dev-1',
      hardwareId: 'HW-1',
      name: 'Laptop <1>',
      user: 'ann@contoso.com',
      certificateSerial: 'dd01',
      enrolledAt: new Date(),
      info: { 'DevInfo/Mod': 'Surface' },
      auth: null,
    });
    await ctx.store.replaceInventory('dev-1', './Device/Vendor/MSFT/CertificateStore/Root/', [
      {
        uri: './Device/Vendor/MSFT/CertificateStore/Root/System/ABCD',
        thumbprint: 'ABCD'.repeat(10),
        subject: 'CN=Some Root',
        issuer: 'CN=Some Root',
        notAfter: new Date(Date.now() + 400 * DAY),
        der: new Uint8Array([0x30, 0]),
        seenAt: new Date(),
      },
    ]);
    const list = await root.get('/admin/devices');
    assert.match(list.body, /<a href="\/admin\/devices\/dev-1">Laptop &lt;1&gt;<\/a>/);
    const one = await root.get('/admin/devices/dev-1');
    assert.equal(one.statusCode, 200);
    assert.match(one.body, /<td>System<\/td><td>CN=Some Root<\/td>/);
    assert.match(one.body, /<dt>Mod<\/dt><dd>Surface<\/dd>/);
    assert.equal((await root.get('/admin/devices/nope')).statusCode, 404);
  });

  it('assigns and unassigns an MDM profile, audited as the admin', async () => {
    await createProfile(ctx, 'test', {
      name: 'contoso-root',
      kind: 'trusted',
      settings: {
        scope: 'device',
        store: 'Root',
        certificate: Buffer.from(ctx.ca.root.certificate.der).toString('base64'),
      },
    });
    const page = await root.get('/admin/profiles');
    assert.match(page.body, /id="profile-contoso-root"/);
    assert.match(
      page.body,
      /<td>user<\/td><td>365 days<\/td>\s*<td>clientAuth, emailProtection<\/td>/,
    );
    const csrf = csrfOf(page.body);
    const res = await root.post('/admin/profiles/contoso-root/assign', {
      _csrf: csrf,
      kind: 'user',
      target: 'Ann@Contoso.com',
    });
    assert.equal(res.statusCode, 303);
    assert.deepEqual(
      (await ctx.store.listAssignments()).map((a) => `${a.targetKind}:${a.target}`),
      ['user:ann@contoso.com'],
    );
    assert.match(
      (await root.get('/admin/profiles')).body,
      /<span class="mono">ann@contoso.com<\/span>/,
    );
    const bad = await root.post('/admin/profiles/contoso-root/assign', {
      _csrf: csrf,
      kind: 'user',
      target: 'not a upn',
    });
    assert.equal(bad.statusCode, 400);
    const gone = await root.post('/admin/profiles/contoso-root/unassign', {
      _csrf: csrf,
      kind: 'user',
      target: 'ann@contoso.com',
    });
    assert.equal(gone.statusCode, 303);
    assert.deepEqual(await ctx.store.listAssignments(), []);
    const actors = (await ctx.store.listAudit({ limit: 2 })).map((e) => `${e.actor} ${e.action}`);
    assert.deepEqual(actors, [
      'portal:root mdm-profile.unassigned',
      'portal:root mdm-profile.assigned',
    ]);
  });

  it('pages the audit log, filters by action, and shows details as text', async () => {
    for (let i = 0; i < 60; i++)
      await ctx.store.appendAudit({
        at: new Date(Date.now() + 10_000 + i),
        actor: 'test',
        action: 'test.event',
        target: `t${i}`,
        details: { html: '<b>x</b>' },
      });
    const first = await root.get('/admin/audit?action=test.event');
    assert.equal(first.body.match(/<td>test.event<\/td>/g)?.length, 50);
    assert.match(first.body, /t59/);
    assert.match(first.body, /\{&quot;html&quot;:&quot;&lt;b&gt;x&lt;\/b&gt;&quot;\}/);
    const second = await root.get('/admin/audit?action=test.event&page=2');
    assert.equal(second.body.match(/<td>test.event<\/td>/g)?.length, 10);
    assert.match(second.body, />t0</);
  });
});
