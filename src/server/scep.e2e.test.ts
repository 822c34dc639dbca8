/**
 * SCEP end to end: the real micromdm `scepclient` (Debian package `scep`) against our server on
 * loopback, and openssl checking what it received. Covers issue 3's "Must show": enroll, renew,
 * wrong and reused one-time challenge, PENDING then approval; plus the HTTP edge cases.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { oneTimeChallenge } from './testing.ts';
import { encodePem } from '../pki/pem.ts';
import { parsePkcs7Certificates } from '../pki/pkcs7.ts';
import { run, tempDir } from '../testing/tools.ts';
import { startServer, type RunningServer } from './serve.ts';

let server: RunningServer;
let work = '';
let caFile = '';
const STATIC = 'static-secret';

/** Runs scepclient in its own directory (it writes csr.pem into the cwd). */
function scepclient(
  dir: string,
  args: { challenge: string; cn: string },
): Promise<{ code: number | null; out: string }> {
  mkdirSync(dir, { recursive: true });
  return new Promise((resolve, reject) => {
    const p = spawn(
      'scepclient',
      [
        '-server-url',
        `${server.url}/scep`,
        '-challenge',
        args.challenge,
        '-private-key',
        'key.pem',
        '-certificate',
        'cert.pem',
        '-cn',
        args.cn,
        '-keySize',
        '2048',
      ],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', (e) =>
      reject(new Error(`scepclient: ${e.message} (apt-get install scep; .ci/run does this)`)),
    );
    p.on('exit', (code) => resolve({ code, out }));
  });
}

const openssl = (...args: string[]) => run('openssl', args).toString();
const serialOf = (file: string) =>
  openssl('x509', '-in', file, '-noout', '-serial').trim().split('=')[1]!.toLowerCase();

before(async () => {
  work = tempDir();
  server = await startServer({
    dataDir: join(work, 'data'),
    listen: '127.0.0.1:0',
    staticChallenge: STATIC,
    publicUrl: 'http://pki.example.test',
    logLevel: 'warn',
  });
  const res = await fetch(`${server.url}/scep?operation=GetCACert&message=default`);
  assert.equal(res.headers.get('content-type'), 'application/x-x509-ca-ra-cert');
  const chain = parsePkcs7Certificates(new Uint8Array(await res.arrayBuffer()));
  caFile = join(work, 'ca-chain.pem');
  writeFileSync(caFile, chain.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
});

after(async () => {
  await server.app.close();
});

describe('SCEP with the real micromdm scepclient', () => {
  it('enrolls with the static challenge; openssl verifies the certificate against our CA', async () => {
    const dir = join(work, 'static');
    const r = await scepclient(dir, { challenge: STATIC, cn: 'device-static' });
    assert.equal(r.code, 0, r.out);
    const cert = join(dir, 'cert.pem');
    assert.match(openssl('verify', '-CAfile', caFile, cert), /OK/);
    assert.match(openssl('x509', '-in', cert, '-noout', '-subject'), /CN = device-static/);
    assert.match(
      openssl('x509', '-in', cert, '-noout', '-ext', 'crlDistributionPoints'),
      /URI:http:\/\/pki\.example\.test\/crl/,
    );
    const rec = await server.context.store.getCertificate(serialOf(cert).replace(/^(00)+/, ''));
    assert.ok(rec, 'the certificate is recorded in the store');
  });

  it('refuses a wrong challenge with CertRep FAILURE badRequest and stores no certificate', async () => {
    const count0 = (await server.context.store.listCertificates({ limit: 1000 })).length;
    const r = await scepclient(join(work, 'wrong'), {
      challenge: 'not-the-challenge',
      cn: 'device-wrong',
    });
    assert.notEqual(r.code, 0);
    assert.match(r.out, /badRequest/);
    assert.equal((await server.context.store.listCertificates({ limit: 1000 })).length, count0);
  });

  it('accepts a one-time challenge once, and refuses it the second time', async () => {
    const secret = await oneTimeChallenge(server.context, 'default');
    const first = await scepclient(join(work, 'otc-1'), { challenge: secret, cn: 'device-otc-1' });
    assert.equal(first.code, 0, first.out);
    const second = await scepclient(join(work, 'otc-2'), { challenge: secret, cn: 'device-otc-2' });
    assert.notEqual(second.code, 0);
    assert.match(second.out, /badRequest/);
  });

  it('renews: RenewalReq signed by the current certificate gives a new certificate, same subject', async () => {
    const dir = join(work, 'renew');
    const first = await scepclient(dir, { challenge: STATIC, cn: 'device-renew' });
    assert.equal(first.code, 0, first.out);
    const oldSerial = serialOf(join(dir, 'cert.pem'));
    const oldPem = readFileSync(join(dir, 'cert.pem'));
    // With cert.pem present, scepclient sends RenewalReq (17) signed by that certificate.
    const second = await scepclient(dir, { challenge: 'ignored-for-renewal', cn: 'device-renew' });
    assert.equal(second.code, 0, second.out);
    const newSerial = serialOf(join(dir, 'cert.pem'));
    assert.notEqual(newSerial, oldSerial);
    assert.notDeepEqual(readFileSync(join(dir, 'cert.pem')), oldPem);
    assert.match(
      openssl('x509', '-in', join(dir, 'cert.pem'), '-noout', '-subject'),
      /CN = device-renew/,
    );
    const audit = await server.context.store.listAudit({ action: 'certificate.renewed' });
    assert.ok(audit.some((a) => a.target === newSerial.replace(/^(00)+/, '')));
  });

  it(
    'holds a request for approval (PENDING), then issues it on the next poll once approved',
    { timeout: 90_000 },
    async () => {
      const secret = await oneTimeChallenge(server.context, 'manual');
      const dir = join(work, 'pending');
      const client = scepclient(dir, { challenge: secret, cn: 'device-pending' });
      let pending;
      for (let i = 0; i < 100 && !pending; i++) {
        await new Promise((r) => setTimeout(r, 100));
        pending = (await server.context.store.listRequests('pending')).find((r) =>
          r.subject.includes('device-pending'),
        );
      }
      assert.ok(pending, 'the request is held as pending');
      assert.ok(!existsSync(join(dir, 'cert.pem')));
      assert.equal(await server.context.enrollment.decide(pending.id, 'approved', 'test'), true);
      // micromdm's client sleeps 30 s after PENDING and re-sends the same PKCSReq.
      const r = await client;
      assert.equal(r.code, 0, r.out);
      assert.match(openssl('verify', '-CAfile', caFile, join(dir, 'cert.pem')), /OK/);
      assert.equal((await server.context.store.getRequest(pending.id))?.status, 'issued');
    },
  );
});

describe('SCEP over HTTP', () => {
  it('answers GetCACaps and both paths; garbage PKIOperation gets HTTP 400, not a crash', async () => {
    const caps = await server.app.inject({
      method: 'GET',
      url: '/scep/pkiclient.exe?operation=GetCACaps',
    });
    assert.equal(caps.statusCode, 200);
    assert.match(caps.body, /POSTPKIOperation/);
    assert.match(caps.body, /SCEPStandard/);
    const bad = await server.app.inject({
      method: 'POST',
      url: '/scep?operation=PKIOperation',
      payload: Buffer.from('hello'),
      headers: { 'content-type': 'application/x-pki-message' },
    });
    assert.equal(bad.statusCode, 400);
    const unknown = await server.app.inject({ method: 'GET', url: '/scep?operation=Nope' });
    assert.equal(unknown.statusCode, 400);
    const empty = await server.app.inject({ method: 'GET', url: '/scep?operation=PKIOperation' });
    assert.equal(empty.statusCode, 400);
  });
});
