/**
 * The public page in headless Chromium: every format downloaded through the page's links, bytes
 * and headers checked and the files read by openssl, whose fingerprints must equal the
 * thumbprints the page shows; the page on a phone-sized screen. Screenshots:
 * artifacts/screenshots/public*.png.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { Response } from 'playwright-core';
import { sha256Thumbprint } from '../../pki/x509.ts';
import { launchBrowser, SCREENSHOTS, type TestBrowser } from '../../testing/browser.ts';
import { run, tempDir } from '../../testing/tools.ts';
import { startServer, type RunningServer } from '../serve.ts';
import { colons } from './layout.ts';

let server: RunningServer;
let browser: TestBrowser;
let work: string;

before(async () => {
  work = tempDir();
  server = await startServer({
    dataDir: join(work, 'data'),
    listen: '127.0.0.1:0',
    logLevel: 'warn',
  });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await server?.app.close();
});

const openssl = (...args: string[]) => run('openssl', args).toString();

/** `AB:CD:…` from openssl's `… Fingerprint=AB:CD:…` line. */
const fingerprint = (out: string) => out.trim().split('=')[1]!.toUpperCase();

it('downloads .cer, .crt, .pem and .p7b of the root and the issuing CA: bytes, headers, and openssl agrees with the page', async (t) => {
  const { page, context } = browser;
  const responses = new Map<string, Response>();
  context.on('response', (r) => responses.set(new URL(r.url()).pathname, r));
  await page.goto(`${server.url}/`);
  assert.equal(await page.title(), 'CA certificates · certpost');
  assert.ok(await page.locator('svg[aria-label="QR code of this page"]').isVisible());
  await browser.screenshot('public');

  const ca = server.context.ca;
  for (const [id, cert] of [
    ['root', ca.root.certificate],
    ['issuing', ca.issuing.certificate],
  ] as const) {
    const shown = {
      sha1: (await page.locator(`#${id} dt:text-is("SHA-1") + dd`).textContent())!,
      sha256: (await page.locator(`#${id} dt:text-is("SHA-256") + dd`).textContent())!,
    };
    assert.equal(shown.sha256, colons(sha256Thumbprint(cert)));

    for (const [ext, type, disposition] of [
      ['cer', 'application/pkix-cert', 'attachment'],
      ['crt', 'application/x-x509-ca-cert', 'inline'],
      ['pem', 'application/x-pem-file', 'attachment'],
      ['p7b', 'application/x-pkcs7-certificates', 'attachment'],
    ] as const) {
      const path = `/ca/${id}.${ext}`;
      const { download, bytes } = await browser.download(() => page.click(`a[href="${path}"]`));
      const name = download.suggestedFilename();
      assert.match(
        name,
        new RegExp(`^certpost-development-${id === 'root' ? 'root' : 'issuing'}-ca\\.${ext}$`),
      );
      const res = responses.get(path);
      assert.ok(res, `the response of ${path}`);
      const headers = await res.allHeaders();
      assert.equal(headers['content-type'], type, path);
      assert.equal(headers['content-disposition'], `${disposition}; filename="${name}"`, path);
      assert.equal(headers['x-content-type-options'], 'nosniff', path);
      const file = join(work, `${id}.${ext}`);
      writeFileSync(file, bytes);
      switch (ext) {
        case 'cer':
        case 'crt':
          assert.deepEqual(new Uint8Array(bytes), cert.der, path);
          assert.equal(
            fingerprint(
              openssl('x509', '-inform', 'DER', '-in', file, '-noout', '-fingerprint', '-sha256'),
            ),
            shown.sha256,
          );
          break;
        case 'pem':
          assert.equal(
            fingerprint(openssl('x509', '-in', file, '-noout', '-fingerprint', '-sha1')),
            shown.sha1,
          );
          break;
        case 'p7b': {
          const certs = openssl('pkcs7', '-inform', 'DER', '-in', file, '-print_certs');
          const subjects = [...certs.matchAll(/^subject=(.*)$/gm)].map((m) => m[1]);
          assert.deepEqual(
            subjects,
            id === 'root'
              ? ['O = certpost, CN = certpost development root CA']
              : [
                  'O = certpost, CN = certpost development issuing CA',
                  'O = certpost, CN = certpost development root CA',
                ],
            'the certificate and its chain',
          );
        }
      }
    }
  }
  // openssl verifies the issuing CA against the downloaded root.
  assert.match(
    openssl('verify', '-CAfile', join(work, 'root.pem'), join(work, 'issuing.pem')),
    /OK/,
  );
  t.diagnostic(`screenshots in ${SCREENSHOTS}`);
});

it('the page fits a phone screen', async () => {
  const phone = await browser.context.newPage();
  try {
    await phone.setViewportSize({ width: 390, height: 844 });
    await phone.goto(`${server.url}/`);
    // A string, evaluated in the page: this file is type-checked without the DOM library.
    const width = await phone.evaluate<number>('document.documentElement.scrollWidth');
    assert.ok(width <= 390, `no horizontal scrolling (${width}px)`);
    await browser.screenshot('public-phone', phone);
    await phone.goto(`${server.url}/signin`);
    await browser.screenshot('signin', phone);
  } finally {
    await phone.close();
  }
});
