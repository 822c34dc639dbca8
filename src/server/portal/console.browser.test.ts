/**
 * Issue 6's "Must show" in headless Chromium against a real server on loopback: sign-in (a
 * wrong password refused; the limit after 3 failures refuses even the right one); an identity
 * PFX requested and downloaded once (openssl opens it with the password the page showed; the
 * second use is refused); a user kept out of the console; CSRF: a POST without the token and a
 * cross-site form refused; an administrator approving a held SCEP request, after which the
 * SCEP client's CertPoll gets SUCCESS; a revocation from the console that the CRL then lists.
 * Screenshots of every page: artifacts/screenshots/*.png.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { formatName } from '../../pki/x509.ts';
import { createScepClient, fetchTransport } from '../../scep/client.ts';
import { launchBrowser, SCREENSHOTS, type TestBrowser } from '../../testing/browser.ts';
import { run, tempDir } from '../../testing/tools.ts';
import { createProfile } from '../mdm-profiles.ts';
import { startServer, type RunningServer } from '../serve.ts';
import { oneTimeChallenge } from '../testing.ts';
import { CHEAP_SCRYPT } from './testing.ts';
import { createUser } from './users.ts';

const PW = 'a long enough password';
const DAY = 86_400_000;
let server: RunningServer;
let browser: TestBrowser;
let work: string;

/** Issued-looking records spread over the last 30 days and expiring over the next 90, for the charts. */
async function seedHistory(s: RunningServer): Promise<void> {
  const now = Date.now();
  for (let i = 0; i < 48; i++) {
    const der = new TextEncoder().encode(`history ${i}`);
    const issuedAt = now - ((i * 7919) % 30) * DAY - (i % 5) * 3_600_000;
    await s.context.store.insertCertificate({
      serial: `5eed${i.toString(16).padStart(4, '0')}`,
      sha1: createHash('sha1').update(der).digest('hex'),
      subject: `CN=ws-${String(i).padStart(4, '0')}.contoso.test`,
      notBefore: new Date(issuedAt),
      notAfter: new Date(now + (1 + ((i * 37) % 120)) * DAY),
      der,
      profile: 'default',
      requestId: null,
      issuedAt: new Date(issuedAt),
      altNames: [`dns:ws-${String(i).padStart(4, '0')}.contoso.test`],
    });
  }
  await s.context.store.createDevice({
    id: 'b7a3c9e2-device',
    hardwareId: 'HW-0001',
    name: 'ANN-LAPTOP',
    user: 'ann@contoso.com',
    certificateSerial: '5eed0000',
    enrolledAt: new Date(now - 3 * DAY),
    info: { 'DevInfo/Mod': 'Surface Laptop', 'DevDetail/SwV': '10.0.22631' },
    auth: null,
  });
  const root = s.context.ca.root.certificate;
  await s.context.store.replaceInventory(
    'b7a3c9e2-device',
    './Device/Vendor/MSFT/CertificateStore/Root/System/',
    [
      {
        uri: `./Device/Vendor/MSFT/CertificateStore/Root/System/${createHash('sha1').update(root.der).digest('hex').toUpperCase()}`,
        thumbprint: createHash('sha1').update(root.der).digest('hex').toUpperCase(),
        subject: formatName(root.subject),
        issuer: formatName(root.issuer),
        notAfter: root.notAfter,
        der: root.der,
        seenAt: new Date(now - DAY),
      },
    ],
  );
  await createProfile(s.context, 'test', {
    name: 'contoso-root',
    kind: 'trusted',
    settings: {
      scope: 'device',
      store: 'Root',
      certificate: Buffer.from(root.der).toString('base64'),
    },
  });
  await s.context.store.assignMdmProfile({
    profileId: (await s.context.store.getMdmProfileByName('contoso-root'))!.id,
    targetKind: 'all',
    target: '',
    createdAt: new Date(),
  });
}

before(async () => {
  work = tempDir();
  server = await startServer({
    dataDir: join(work, 'data'),
    listen: '127.0.0.1:0',
    logLevel: 'warn',
    portal: { passwordParams: CHEAP_SCRYPT, signinLimits: { perUser: 3, perAddress: 50 } },
  });
  const deps = { store: server.context.store, passwordParams: CHEAP_SCRYPT };
  await createUser(deps, 'test', {
    username: 'admin@contoso.com',
    password: PW,
    role: 'admin',
    displayName: 'Alex Admin',
  });
  await createUser(deps, 'test', {
    username: 'ann@contoso.com',
    password: PW,
    displayName: 'Ann Example',
  });
  await createUser(deps, 'test', { username: 'eve@contoso.com', password: PW });
  await seedHistory(server);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.app.close();
});

const openssl = (...args: string[]) => run('openssl', args).toString();

/** Fills the sign-in form and submits it; resolves once the next page has loaded. */
async function signIn(username: string, password: string) {
  const { page } = browser;
  await page.goto(`${server.url}/signin`);
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForLoadState('load'),
    page.click('button[type=submit]:text("Sign in")'),
  ]);
}

async function signOut() {
  await Promise.all([
    browser.page.waitForURL(`${server.url}/`),
    browser.page.click('header button:text("Sign out")'),
  ]);
}

describe('portal in Chromium', () => {
  it('sign-in: a wrong password is refused; after 3 failures even the right one is; then ann signs in', async () => {
    const { page } = browser;
    await signIn('ann@contoso.com', 'not the password');
    assert.match((await page.locator('.error').textContent())!, /user name or password is wrong/);
    await browser.screenshot('signin-failed');
    for (let i = 0; i < 3; i++) await signIn('eve@contoso.com', `wrong password ${i}`);
    await signIn('eve@contoso.com', PW);
    assert.equal(new URL(page.url()).pathname, '/signin', 'eve is blocked for now');
    assert.match((await page.locator('.error').textContent())!, /too many attempts/);

    await signIn('ann@contoso.com', PW);
    assert.equal(new URL(page.url()).pathname, '/my');
    assert.equal(await page.locator('h1').textContent(), 'My certificates');
    await browser.screenshot('my-certificates');
  });

  it('ann requests an identity: the password shown once opens the PFX (openssl); the link works once', async () => {
    const { page } = browser;
    await page.selectOption('#profile', 'user');
    await Promise.all([
      page.waitForURL(`${server.url}/my/request`),
      page.click('button:text("Request certificate")'),
    ]);
    const password = (await page.locator('#pfx-password').textContent())!;
    const link = (await page.locator('#pfx-download').getAttribute('href'))!;
    assert.match(password, /^[A-Za-z0-9_-]{32}$/);
    await browser.screenshot('identity-ready');
    const { download, bytes } = await browser.download(() => page.click('#pfx-download'));
    assert.match(download.suggestedFilename(), /^ann-contoso-com-[0-9a-f]+\.pfx$/);
    const file = join(work, 'ann.pfx');
    writeFileSync(file, bytes);
    const certs = openssl(
      'pkcs12',
      '-in',
      file,
      '-passin',
      `pass:${password}`,
      '-nokeys',
      '-clcerts',
    );
    assert.match(certs, /subject=CN = Ann Example/);
    const key = openssl('pkcs12', '-in', file, '-passin', `pass:${password}`, '-nocerts', '-noenc');
    assert.match(key, /-----BEGIN PRIVATE KEY-----/);
    assert.throws(
      () => openssl('pkcs12', '-in', file, '-passin', 'pass:wrong', '-nokeys'),
      /failed/,
    );

    const again = await page.goto(`${server.url}${link}`);
    assert.equal(again?.status(), 410);
    assert.match((await page.locator('.error').textContent())!, /each link works once/);
    await browser.screenshot('download-used');
    await page.goto(`${server.url}/my`);
    assert.equal(
      await page.locator('tbody tr').count(),
      2,
      'the identity and the certificate of her laptop',
    );
    await browser.screenshot('my-certificates-after');
  });

  it('a user cannot open the console; a POST without the CSRF token and a cross-site form are refused', async () => {
    const { page, context } = browser;
    const res = await page.goto(`${server.url}/admin`);
    assert.equal(res?.status(), 403);
    assert.match((await page.locator('.error').textContent())!, /for administrators/);
    await browser.screenshot('forbidden');

    const count = async () => (await server.context.store.listCertificates({ limit: 1000 })).length;
    const issuedBefore = await count();
    // The browser's own cookies, a well-formed form, but no token.
    const noToken = await context.request.post(`${server.url}/my/request`, {
      form: { profile: 'user' },
    });
    assert.equal(noToken.status(), 403);
    // Another site's page posting to the portal: the session cookie (SameSite=Strict) is not
    // sent, and the Origin is not ours.
    const evil: Server = createServer((_req, out) => {
      out.writeHead(200, { 'content-type': 'text/html' });
      out.end(
        `<form method="post" action="${server.url}/my/request"><input name="profile" value="user"></form><script>document.forms[0].submit()</script>`,
      );
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.2', resolve));
    try {
      const address = evil.address() as { port: number };
      const refused = page.waitForResponse((r) => r.url() === `${server.url}/my/request`);
      await page.goto(`http://127.0.0.2:${address.port}/`);
      assert.ok([401, 403].includes((await refused).status()), 'refused');
    } finally {
      evil.close();
    }
    assert.equal(await count(), issuedBefore, 'nothing was issued');
    await page.goto(`${server.url}/my`);
    await signOut();
  });

  it('an administrator approves a held SCEP request; the client`s CertPoll then gets SUCCESS', async () => {
    const client = createScepClient(fetchTransport(`${server.url}/scep`));
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const subject = 'CN=kiosk-7,O=Contoso';
    const held = await client.enroll({
      subject,
      key,
      challenge: await oneTimeChallenge(server.context, 'manual'),
    });
    assert.equal(held.status, 'pending');
    if (held.status !== 'pending') return;

    const { page } = browser;
    await signIn('admin@contoso.com', PW);
    assert.equal(new URL(page.url()).pathname, '/admin');
    assert.equal(await page.locator('#pending-count').textContent(), '1');
    await browser.screenshot('admin-dashboard');
    await page.click('a.stat[href="/admin/requests"]');
    const row = page.locator('tr', { hasText: 'CN=kiosk-7' });
    await browser.screenshot('admin-requests');
    await Promise.all([
      page.waitForURL(/notice=approved/),
      row.locator('button:text("Approve")').click(),
    ]);
    assert.match((await page.locator('.notice').textContent())!, /approved/);

    const polled = await client.poll({
      transactionId: held.transactionId,
      subject,
      key,
      signer: held.signer,
    });
    assert.equal(polled.status, 'issued');
    if (polled.status === 'issued')
      assert.equal(formatName(polled.certificate.subject), 'CN=kiosk-7,O=Contoso');
    const [audit] = await server.context.store.listAudit({ action: 'request.approved', limit: 1 });
    assert.equal(audit?.actor, 'portal:admin@contoso.com');
  });

  it('revokes from the console; the CRL then lists the serial with the reason (openssl)', async () => {
    const { page } = browser;
    const [issued] = await server.context.store.listCertificates({ search: 'kiosk-7', limit: 1 });
    assert.ok(issued);
    await page.goto(`${server.url}/admin/certificates`);
    await page.fill('#q', 'kiosk');
    await Promise.all([page.waitForURL(/q=kiosk/), page.click('button:text("Search")')]);
    const row = page.locator(`#cert-${issued.serial}`);
    await row.locator('select').selectOption('keyCompromise');
    await browser.screenshot('admin-certificates');
    await Promise.all([
      page.waitForURL(/notice=revoked/),
      row.locator('button:text("Revoke")').click(),
    ]);
    assert.match((await row.locator('.badge').textContent())!, /revoked/);

    const crl = new Uint8Array(await (await fetch(`${server.url}/crl`)).arrayBuffer());
    writeFileSync(join(work, 'crl.der'), crl);
    const text = openssl('crl', '-inform', 'DER', '-in', join(work, 'crl.der'), '-noout', '-text');
    const serial = issued.serial
      .toUpperCase()
      .padStart(issued.serial.length + (issued.serial.length % 2), '0');
    assert.match(
      text,
      new RegExp(
        `Serial Number: 0?${serial}\\n\\s+Revocation Date: .*\\n\\s+CRL entry extensions:\\s+X509v3 CRL Reason Code:\\s+Key Compromise`,
      ),
    );
    const [audit] = await server.context.store.listAudit({
      action: 'certificate.revoked',
      limit: 1,
    });
    assert.equal(audit?.actor, 'portal:admin@contoso.com');
  });

  it('every console page renders (screenshots for review)', async (t) => {
    const { page } = browser;
    for (const [path, name] of [
      ['/admin', 'admin-dashboard-after'],
      ['/admin/devices', 'admin-devices'],
      ['/admin/devices/b7a3c9e2-device', 'admin-device'],
      ['/admin/profiles', 'admin-profiles'],
      ['/admin/audit', 'admin-audit'],
    ] as const) {
      const res = await page.goto(`${server.url}${path}`);
      assert.equal(res?.status(), 200, path);
      await browser.screenshot(name);
    }
    t.diagnostic(`screenshots in ${SCREENSHOTS}`);
  });
});
