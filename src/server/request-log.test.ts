/**
 * Request logs on the real listener: one JSON line per request with the request id, the SCEP
 * transaction and outcome, the MDM device and session; the id of a proxy kept or replaced; the
 * services' own lines carrying the same ids; and no secret in any line.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { credentialHash, md5Cred, newNonce } from '../omadm/auth.ts';
import { buildSyncML } from '../omadm/syncml.ts';
import { createScepClient, fetchTransport } from '../scep/client.ts';
import { tempDir } from '../testing/tools.ts';
import { openContext, type ServerContext } from './context.ts';
import { MDM_PATH } from './mdm-http.ts';
import { serviceLog } from './request-log.ts';
import { buildApp } from './serve.ts';
import { oneTimeChallenge } from './testing.ts';

let ctx: ServerContext;
let app: FastifyInstance | undefined;
let url = '';
const lines: string[] = [];
const logged = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
const accessLines = () => logged().filter((l) => l['msg'] === 'request');

before(async () => {
  ctx = await openContext({
    dataDir: join(tempDir(), 'data'),
    createCa: true,
    log: serviceLog(
      () => app?.log,
      () => undefined,
    ),
  });
  const built = buildApp(ctx, {
    logLevel: 'info',
    logStream: { write: (l) => void lines.push(l) },
  });
  app = built;
  url = await built.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await app?.close();
});

describe('request logs', () => {
  it('an enrollment: one line per request with the request id, transaction and outcome; no challenge', async () => {
    lines.length = 0;
    const challenge = await oneTimeChallenge(ctx, 'default');
    const client = createScepClient(fetchTransport(`${url}/scep`));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const r = await client.enroll({ subject: 'CN=log-test', key: privateKey, challenge });
    assert.equal(r.status, 'issued');
    const pki = accessLines().filter((l) => l['operation'] === 'PKIOperation');
    assert.equal(pki.length, 1);
    const [line] = pki;
    assert.equal(line!['level'], 30);
    assert.equal(line!['route'], '/scep');
    assert.equal(line!['status'], 200);
    assert.equal(line!['messageType'], 'PKCSReq');
    assert.equal(line!['pkiStatus'], 'SUCCESS');
    assert.match(String(line!['transactionId']), /^[0-9A-F]+$/i);
    assert.match(String(line!['reqId']), /^[0-9a-f-]{36}$/);
    assert.equal(typeof line!['ms'], 'number');
    assert.ok(accessLines().some((l) => l['operation'] === 'GetCACert'));
    assert.ok(!lines.join('').includes(challenge), 'the challenge is in no line');
    // The query of a GET is never logged (a SCEP GET carries the whole message in it).
    assert.ok(!lines.join('').includes('operation=GetCACert'));
  });

  it("a refusal: the service's own line carries the request id of the request it refused in", async () => {
    lines.length = 0;
    const client = createScepClient(fetchTransport(`${url}/scep`));
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const r = await client.enroll({ subject: 'CN=x', key: privateKey, challenge: 'wrong-secret' });
    assert.equal(r.status, 'failed');
    const access = accessLines().find((l) => l['operation'] === 'PKIOperation')!;
    assert.equal(access['pkiStatus'], 'FAILURE');
    assert.equal(access['failInfo'], 'badRequest');
    const refusal = logged().find((l) => l['msg'] === 'scep request refused');
    assert.ok(refusal, lines.join(''));
    assert.equal(refusal['reqId'], access['reqId']);
    assert.equal(refusal['transactionId'], access['transactionId']);
    assert.ok(!lines.join('').includes('wrong-secret'));
  });

  it("keeps a proxy's plain X-Request-Id, replaces one that could forge a log line, echoes it", async () => {
    lines.length = 0;
    const kept = await fetch(`${url}/scep?operation=GetCACaps`, {
      headers: { 'x-request-id': 'edge-42.a:b_c' },
    });
    assert.equal(kept.headers.get('x-request-id'), 'edge-42.a:b_c');
    const forged = await fetch(`${url}/scep?operation=GetCACaps`, {
      headers: { 'x-request-id': 'x"},{"level":60,"msg":"forged' },
    });
    assert.match(forged.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/);
    const ids = accessLines().map((l) => l['reqId']);
    assert.deepEqual(ids, ['edge-42.a:b_c', forged.headers.get('x-request-id')]);
    assert.ok(!lines.join('').includes('forged'));
  });

  it('an MDM message: the device and its session; probes only at debug', async () => {
    const nonce = newNonce();
    await ctx.store.createDevice({
      id: 'dev-log-1',
      hardwareId: 'HW-LOG-1',
      name: 'one',
      user: null,
      certificateSerial: '01',
      enrolledAt: new Date(),
      info: {},
      auth: { hash: credentialHash('dev-log-1', 'device-password'), nonce },
    });
    lines.length = 0;
    const res = await fetch(`${url}${MDM_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.syncml.dm+xml' },
      body: buildSyncML({
        header: {
          sessionId: '1F',
          msgId: '1',
          target: `${url}${MDM_PATH}`,
          source: 'HW-LOG-1',
          cred: md5Cred('dev-log-1', 'device-password', Buffer.from(nonce, 'base64')),
        },
        body: [{ kind: 'Replace', cmdId: '1', items: [{ source: './DevInfo/Man', data: 'x' }] }],
        final: true,
      }),
    });
    assert.equal(res.status, 200);
    await fetch(`${url}/healthz`);
    const [line, ...rest] = accessLines();
    assert.equal(rest.length, 0, 'the health probe is not at info');
    assert.equal(line!['route'], MDM_PATH);
    assert.equal(line!['deviceId'], 'dev-log-1');
    assert.equal(line!['sessionId'], '1F');
    assert.equal(line!['msgId'], '1');
    assert.ok(!lines.join('').includes('device-password'));
  });

  it('an unmatched path is logged without its query, a download token redacted', async () => {
    lines.length = 0;
    await fetch(`${url}/nothing/here?secret=1`);
    await fetch(`${url}/download/TOKEN123/more`);
    const routes = accessLines().map((l) => [l['route'], l['status']]);
    assert.deepEqual(routes, [
      ['/nothing/here', 404],
      ['/download/[redacted]', 404],
    ]);
  });

  it('believes X-Forwarded-For only from a configured proxy (--trust-proxy)', async () => {
    lines.length = 0;
    const headers = { 'x-forwarded-for': '203.0.113.7' };
    await fetch(`${url}/scep?operation=GetCACaps`, { headers });
    const proxied = buildApp(ctx, {
      logLevel: 'info',
      logStream: { write: (l) => void lines.push(l) },
      trustProxy: ['127.0.0.1'],
    });
    await proxied.inject({ url: '/scep?operation=GetCACaps', headers });
    // Not closed: closing an app closes its context, which the other app shares.
    assert.deepEqual(
      accessLines().map((l) => l['ip']),
      ['127.0.0.1', '203.0.113.7'],
    );
  });
});
