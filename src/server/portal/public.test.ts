/**
 * The public page and CA downloads in-process: every format's bytes and headers, the chain in
 * the .p7b, thumbprints on the page, the QR code, and the next CA during a rollover. (The
 * browser test downloads them through Chromium and checks them with openssl.)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { decodePem } from '../../pki/pem.ts';
import { parsePkcs7Certificates } from '../../pki/pkcs7.ts';
import { sha1Thumbprint, sha256Thumbprint } from '../../pki/x509.ts';
import { tempDir } from '../../testing/tools.ts';
import { openContext, prepareNextAuthority, type ServerContext } from '../context.ts';
import { buildApp } from '../serve.ts';
import { colons } from './layout.ts';

let ctx: ServerContext;
let app: FastifyInstance;

before(async () => {
  const dataDir = join(tempDir(), 'data');
  await (await openContext({ dataDir, createCa: true })).close();
  await prepareNextAuthority(dataDir, { issuingSubject: 'CN=certpost issuing CA 2,O=certpost' });
  ctx = await openContext({ dataDir, publicUrl: 'https://pki.contoso.test' });
  app = buildApp(ctx, { logLevel: 'silent' });
  await app.ready();
});
after(async () => {
  await app.close();
});

const get = (url: string) => app.inject({ method: 'GET', url });

describe('public page', () => {
  it('lists root, issuing and next CA with subject, validity and both thumbprints; a QR code; SCEP and CRL URLs', async () => {
    const res = await app.inject({ method: 'GET', url: '/' });
    assert.equal(res.statusCode, 200);
    const body = res.body;
    for (const cert of [
      ctx.ca.root.certificate,
      ctx.ca.issuing.certificate,
      ctx.nextCa!.issuing.certificate,
    ]) {
      assert.ok(body.includes(colons(sha1Thumbprint(cert))), 'SHA-1');
      assert.ok(body.includes(colons(sha256Thumbprint(cert))), 'SHA-256');
    }
    assert.match(body, /<h2>Root CA<\/h2>/);
    assert.match(body, /<h2>Issuing CA<\/h2>/);
    assert.match(body, /<h2>Next issuing CA \(rollover\)<\/h2>/);
    assert.match(body, /CN=certpost issuing CA 2/);
    assert.match(
      body,
      /<svg role="img" aria-label="QR code of this page" xmlns="http:\/\/www.w3.org\/2000\/svg" viewBox="0 0 \d+ \d+"/,
    );
    assert.ok(body.includes('https://pki.contoso.test/scep'));
    assert.ok(body.includes('https://pki.contoso.test/crl'));
    for (const id of ['root', 'issuing', 'next'])
      for (const ext of ['cer', 'crt', 'pem', 'p7b'])
        assert.ok(body.includes(`href="/ca/${id}.${ext}"`), `${id}.${ext}`);
    assert.match(body, /<a class="button secondary" href="\/ca\/root.cer">\.cer \(DER\)<\/a>/);
  });

  it('serves each format with its Content-Type, Content-Disposition and bytes', async () => {
    const issuing = ctx.ca.issuing.certificate;

    const cer = await get('/ca/issuing.cer');
    assert.equal(cer.headers['content-type'], 'application/pkix-cert');
    assert.equal(
      cer.headers['content-disposition'],
      'attachment; filename="certpost-development-issuing-ca.cer"',
    );
    assert.equal(cer.headers['x-content-type-options'], 'nosniff');
    assert.deepEqual(new Uint8Array(cer.rawPayload), issuing.der);

    const crt = await get('/ca/root.crt');
    assert.equal(crt.headers['content-type'], 'application/x-x509-ca-cert');
    assert.equal(
      crt.headers['content-disposition'],
      'inline; filename="certpost-development-root-ca.crt"',
    );
    assert.deepEqual(new Uint8Array(crt.rawPayload), ctx.ca.root.certificate.der);

    const pem = await get('/ca/issuing.pem');
    assert.equal(pem.headers['content-type'], 'application/x-pem-file');
    assert.match(String(pem.headers['content-disposition']), /^attachment; filename=".*\.pem"$/);
    const blocks = decodePem(pem.body);
    assert.equal(blocks.length, 1);
    assert.deepEqual(blocks[0]!.der, issuing.der);

    const p7b = await get('/ca/next.p7b');
    assert.equal(p7b.headers['content-type'], 'application/x-pkcs7-certificates');
    const chain = parsePkcs7Certificates(new Uint8Array(p7b.rawPayload));
    assert.deepEqual(
      chain.map((c) => sha1Thumbprint(c)),
      [sha1Thumbprint(ctx.nextCa!.issuing.certificate), sha1Thumbprint(ctx.ca.root.certificate)],
      'the certificate and its chain up to the root',
    );
    const rootP7b = parsePkcs7Certificates(new Uint8Array((await get('/ca/root.p7b')).rawPayload));
    assert.equal(rootP7b.length, 1);
  });

  it('answers 404 for an unknown CA or format', async () => {
    for (const url of ['/ca/nope.cer', '/ca/root.exe', '/ca/root', '/ca/..%2Fetc.pem'])
      assert.equal((await get(url)).statusCode, 404, url);
  });
});
