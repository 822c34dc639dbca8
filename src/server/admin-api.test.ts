/**
 * The admin HTTP API (`/api/v1`): authentication on every route (a route walk, so a future route
 * without it fails here), the operations end to end through the enrollment service and the CRL,
 * input validation, and that a token reaches neither the logs nor the audit log. In-process with
 * `app.inject` on `buildApp`, plus one real `certpost serve` process for its log output.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { parseRfc4514 } from '../ca/name.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import { spawnServe } from '../testing/serve-process.ts';
import { run, tempDir } from '../testing/tools.ts';
import { secretHash } from '../ca/enrollment.ts';
import { createApiToken, revokeApiToken } from './admin-ops.ts';
import { openContext, type ServerContext } from './context.ts';
import { buildApp } from './serve.ts';
import { walkRoutes, type Method } from '../testing/routes.ts';

let ctx: ServerContext;
let app: FastifyInstance;
/** A usable token named `tester`, and tokens that must be refused. */
let token = '';
let revokedToken = '';
let expiredToken = '';

before(async () => {
  ctx = await openContext({ dataDir: join(tempDir(), 'data'), createCa: true, keyType: 'ec' });
  app = buildApp(ctx, { logLevel: 'silent' });
  await app.ready();
  token = (await createApiToken(ctx, 'test', { name: 'tester' })).token;
  const gone = await createApiToken(ctx, 'test', { name: 'gone' });
  await revokeApiToken(ctx, 'test', gone.id);
  revokedToken = gone.token;
  expiredToken = `cpt_${randomUUID()}`;
  await ctx.store.createApiToken({
    id: randomUUID(),
    name: 'old',
    secretHash: secretHash(expiredToken),
    role: 'admin',
    createdAt: new Date(Date.now() - 2 * 86_400_000),
    expiresAt: new Date(Date.now() - 86_400_000),
  });
});

after(async () => {
  await app.close(); // closes the context too
});

function call(
  method: Method,
  url: string,
  o: { token?: string | undefined; authorization?: string; payload?: unknown } = {},
): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {};
  if (o.authorization !== undefined) headers['authorization'] = o.authorization;
  else if (o.token !== undefined) headers['authorization'] = `Bearer ${o.token}`;
  return app.inject({
    method,
    url,
    headers,
    ...(o.payload !== undefined
      ? typeof o.payload === 'string'
        ? { payload: o.payload, headers: { ...headers, 'content-type': 'application/json' } }
        : { payload: o.payload as object }
      : {}),
  });
}

const json = <T>(r: LightMyRequestResponse): T => JSON.parse(r.body) as T;

/** Every route with a request that would succeed (or at least pass validation) with a token. */
const ROUTES: readonly { method: Method; url: string; payload?: object }[] = [
  { method: 'POST', url: '/api/v1/challenges', payload: {} },
  { method: 'GET', url: '/api/v1/requests?status=pending' },
  { method: 'POST', url: '/api/v1/requests/some-id/approve' },
  { method: 'POST', url: '/api/v1/requests/some-id/reject' },
  { method: 'GET', url: '/api/v1/certificates?limit=5' },
  { method: 'POST', url: '/api/v1/certificates/0a/revoke', payload: { reason: 'superseded' } },
  { method: 'GET', url: '/api/v1/audit?limit=5' },
];

function assertUnauthorized(r: LightMyRequestResponse, what: string): void {
  assert.equal(r.statusCode, 401, `${what}: ${r.body}`);
  assert.match(String(r.headers['www-authenticate']), /^Bearer\b/, what);
}

describe('authentication', () => {
  it('refuses every route without a token, and with a malformed, unknown, revoked or expired one, identically', async () => {
    const bad: Record<string, { token?: string; authorization?: string }> = {
      missing: {},
      'wrong scheme': { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` },
      'empty bearer': { authorization: 'Bearer ' },
      'not a token': { token: 'hello' },
      unknown: { token: `cpt_${'A'.repeat(43)}` },
      'one character off': { token: token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A') },
      revoked: { token: revokedToken },
      expired: { token: expiredToken },
    };
    for (const route of ROUTES) {
      const answers = new Set<string>();
      for (const [what, o] of Object.entries(bad)) {
        const r = await call(route.method, route.url, { ...o, payload: route.payload });
        assertUnauthorized(r, `${route.method} ${route.url}, ${what}`);
        answers.add(`${r.headers['www-authenticate']} ${r.body}`);
      }
      assert.equal(answers.size, 1, `one answer for every failure: ${[...answers].join(' | ')}`);
    }
  });

  it('route walk: every /api/ route fastify registered answers 401 without a token', async () => {
    const listed = app.printRoutes({ commonPrefix: false });
    const routes = walkRoutes(listed);
    const api = routes.filter((r) => r.path.startsWith('/api/'));
    assert.ok(api.length >= ROUTES.length, `found the API routes in:\n${listed}`);
    for (const { method, path } of api) {
      const url = path.replace(/:[^/]+/g, '0a').replace(/\*/g, 'x');
      assertUnauthorized(await call(method, url), `${method} ${path}`);
      assertUnauthorized(await call(method, url, { token: revokedToken }), `${method} ${path}`);
    }
    // Every route this test exercises is one fastify has, and the walk saw it.
    for (const r of ROUTES) {
      const path = r.url.split('?')[0]!;
      assert.ok(
        api.some(
          (a) =>
            a.method === r.method &&
            new RegExp(`^${a.path.replace(/:[^/]+/g, '[^/]+')}$`).test(path),
        ),
        `${r.method} ${path} is among the walked routes`,
      );
    }
  });

  it('an unknown path under /api/v1 is 401 without a token and 404 with one', async () => {
    assertUnauthorized(await call('GET', '/api/v1/nothing-here'), 'unknown path');
    assert.equal((await call('GET', '/api/v1/nothing-here', { token })).statusCode, 404);
  });

  it('with a valid token every route answers', async () => {
    for (const route of ROUTES) {
      const r = await call(route.method, route.url, { token, payload: route.payload });
      assert.ok([200, 201, 404].includes(r.statusCode), `${route.url}: ${r.statusCode} ${r.body}`);
      assert.match(String(r.headers['content-type']), /^application\/json/);
    }
  });

  it('checks authentication before reading the body: bad JSON without a token is 401, not 400', async () => {
    assertUnauthorized(
      await call('POST', '/api/v1/challenges', { payload: '{not json' }),
      'bad JSON, no token',
    );
  });
});

async function csrWith(subject: string, challengePassword: string) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return parseCsr(
    await buildCsr({ subject: parseRfc4514(subject), key: privateKey, challengePassword }),
  );
}

async function enroll(subject: string, challenge: string, transactionId: string = randomUUID()) {
  return ctx.enrollment.enroll({
    transactionId,
    csr: await csrWith(subject, challenge),
    signer: ctx.ca.root.certificate,
    renewalRequested: false,
  });
}

async function newChallenge(body: object): Promise<{ id: string; challenge: string }> {
  const r = await call('POST', '/api/v1/challenges', { token, payload: body });
  assert.equal(r.statusCode, 201, r.body);
  return json(r);
}

describe('operations', () => {
  let serial = '';

  it('creates a one-time challenge that an enrollment accepts once', async () => {
    const r = await call('POST', '/api/v1/challenges', {
      token,
      payload: { profile: 'default', subject: 'cn = api-device', ttlSeconds: 600 }, // canonicalised
    });
    assert.equal(r.statusCode, 201, r.body);
    const c = json<{
      id: string;
      challenge: string;
      profile: string;
      subject: string;
      expiresAt: string;
    }>(r);
    assert.deepEqual(Object.keys(c).toSorted(), [
      'challenge',
      'expiresAt',
      'id',
      'profile',
      'subject',
    ]);
    assert.equal(c.profile, 'default');
    assert.equal(c.subject, 'CN=api-device');
    assert.ok(Math.abs(new Date(c.expiresAt).getTime() - Date.now() - 600_000) < 60_000);

    const first = await enroll('CN=api-device', c.challenge);
    assert.equal(first.status, 'issued');
    const again = await enroll('CN=api-device', c.challenge);
    assert.equal(again.status, 'refused');
    assert.equal(again.status === 'refused' && again.reason, 'challenge-invalid');
    if (first.status === 'issued') serial = Buffer.from(first.certificate.serial).toString('hex');

    const created = await ctx.store.listAudit({ action: 'challenge.created', limit: 1 });
    assert.equal(created[0]?.actor, 'api:tester');
    assert.equal(created[0]?.target, c.id);
  });

  it('the default challenge (empty body) uses the default profile and an hour', async () => {
    const r = await call('POST', '/api/v1/challenges', { token });
    assert.equal(r.statusCode, 201, r.body);
    const c = json<{ profile: string; subject: null; expiresAt: string }>(r);
    assert.deepEqual([c.profile, c.subject], ['default', null]);
    assert.ok(Math.abs(new Date(c.expiresAt).getTime() - Date.now() - 3_600_000) < 60_000);
  });

  it('lists held requests, approves one (it is then issued) and rejects another', async () => {
    const a = await newChallenge({ profile: 'manual' });
    const b = await newChallenge({ profile: 'manual' });
    const held = [
      await enroll('CN=held-a', a.challenge, 'tx-held-a'),
      await enroll('CN=held-b', b.challenge, 'tx-held-b'),
    ];
    assert.deepEqual(
      held.map((h) => h.status),
      ['pending', 'pending'],
    );
    const list = await call('GET', '/api/v1/requests', { token }); // pending by default
    assert.equal(list.statusCode, 200);
    const { requests } = json<{ requests: { id: string; subject: string; status: string }[] }>(
      list,
    );
    const idOf = (s: string) => requests.find((r) => r.subject === s)!.id;
    assert.deepEqual(requests.map((r) => r.status).toSorted(), ['pending', 'pending']);

    const ok = await call('POST', `/api/v1/requests/${idOf('CN=held-a')}/approve`, { token });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(json(ok), { id: idOf('CN=held-a'), status: 'approved' });
    assert.equal((await ctx.enrollment.poll('tx-held-a')).status, 'issued');

    const no = await call('POST', `/api/v1/requests/${idOf('CN=held-b')}/reject`, { token });
    assert.deepEqual(json(no), { id: idOf('CN=held-b'), status: 'rejected' });
    const polled = await ctx.enrollment.poll('tx-held-b');
    assert.equal(polled.status === 'refused' && polled.reason, 'rejected');

    const twice = await call('POST', `/api/v1/requests/${idOf('CN=held-b')}/approve`, { token });
    assert.equal(twice.statusCode, 409, twice.body);
    assert.match(json<{ message: string }>(twice).message, /not pending/);
    const unknown = await call('POST', '/api/v1/requests/no-such-id/approve', { token });
    assert.equal(unknown.statusCode, 404);
    assert.equal(json<{ error: string }>(unknown).error, 'ERR_ADMIN_NOT_FOUND');

    const approved = json<{ requests: { subject: string }[] }>(
      await call('GET', '/api/v1/requests?status=issued', { token }),
    );
    assert.deepEqual(
      approved.requests.map((r) => r.subject),
      ['CN=held-a'],
    );
    const decided = await ctx.store.listAudit({ action: 'request.approved' });
    assert.deepEqual(
      decided.map((e) => [e.actor, e.target]),
      [['api:tester', idOf('CN=held-a')]],
    );
  });

  it('lists certificates and revokes one; the CRL at /crl lists it with its reason', async () => {
    assert.ok(serial, 'the challenge test issued a certificate');
    const list = await call('GET', '/api/v1/certificates?subject=CN%3Dapi-device', { token });
    const { certificates } = json<{ certificates: { serial: string; revoked: unknown }[] }>(list);
    assert.deepEqual(
      certificates.map((c) => [c.serial, c.revoked]),
      [[serial, null]],
    );

    const r = await call('POST', `/api/v1/certificates/${serial}/revoke`, {
      token,
      payload: { reason: 'keyCompromise' },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(json(r), { serial, revoked: true, reason: 'keyCompromise' });
    const again = await call('POST', `/api/v1/certificates/${serial}/revoke`, { token });
    assert.equal(again.statusCode, 409);
    const unknown = await call('POST', '/api/v1/certificates/0123abcd/revoke', { token });
    assert.equal(unknown.statusCode, 404);

    const revoked = json<{ certificates: { serial: string; revoked: { reason: string } }[] }>(
      await call('GET', '/api/v1/certificates?revoked=true', { token }),
    );
    assert.deepEqual(
      revoked.certificates.map((c) => [c.serial, c.revoked.reason]),
      [[serial, 'keyCompromise']],
    );

    const crl = await app.inject({ method: 'GET', url: '/crl' });
    assert.equal(crl.statusCode, 200);
    const file = join(tempDir(), 'api.crl');
    writeFileSync(file, crl.rawPayload);
    assert.match(
      run('openssl', ['crl', '-inform', 'DER', '-in', file, '-noout', '-text']).toString(),
      new RegExp(`Serial Number: ${serial.toUpperCase()}[\\s\\S]*Key Compromise`),
    );
  });

  it('lists the audit log, newest first, with api: actors', async () => {
    const r = await call('GET', '/api/v1/audit?action=certificate.revoked', { token });
    assert.equal(r.statusCode, 200);
    const { audit } = json<{ audit: { actor: string; action: string; target: string }[] }>(r);
    assert.deepEqual(
      audit.map((e) => [e.actor, e.action, e.target]),
      [['api:tester', 'certificate.revoked', serial]],
    );
    const two = json<{ audit: unknown[] }>(await call('GET', '/api/v1/audit?limit=2', { token }));
    assert.equal(two.audit.length, 2);
    const all = await ctx.store.listAudit({ limit: 1000 });
    const byApi = new Set(all.filter((e) => e.actor === 'api:tester').map((e) => e.action));
    for (const action of [
      'challenge.created',
      'request.approved',
      'request.rejected',
      'certificate.revoked',
    ])
      assert.ok(byApi.has(action), `${action} is audited as api:tester`);
  });

  it('no token and no challenge secret ever reaches the audit log', async () => {
    const c = await newChallenge({ profile: 'default' });
    const text = JSON.stringify(await ctx.store.listAudit({ limit: 1000 }));
    for (const secret of [token, revokedToken, expiredToken, c.challenge])
      assert.ok(!text.includes(secret), 'a secret is in the audit log');
    assert.ok(!text.includes(secretHash(token)), 'a token hash is in the audit log');
  });
});

describe('validation', () => {
  const cases: readonly {
    what: string;
    method: Method;
    url: string;
    payload?: unknown;
    message: RegExp;
  }[] = [
    {
      what: 'bad JSON',
      method: 'POST',
      url: '/api/v1/challenges',
      payload: '{"profile":',
      message: /JSON/,
    },
    {
      what: 'unknown body field',
      method: 'POST',
      url: '/api/v1/challenges',
      payload: { profile: 'default', extra: 1 },
      message: /unknown field "extra" in body/,
    },
    {
      what: 'wrong type',
      method: 'POST',
      url: '/api/v1/challenges',
      payload: { ttlSeconds: 'soon' },
      message: /ttlSeconds must be integer/,
    },
    {
      what: 'body not an object',
      method: 'POST',
      url: '/api/v1/challenges',
      payload: '[1]',
      message: /body must be object/,
    },
    {
      what: 'unknown profile',
      method: 'POST',
      url: '/api/v1/challenges',
      payload: { profile: 'nope' },
      message: /no profile "nope" \(have: default, manual, user\)/,
    },
    {
      what: 'unknown query field',
      method: 'GET',
      url: '/api/v1/certificates?access_token=x',
      message: /unknown field "access_token" in querystring/,
    },
    { what: 'limit 0', method: 'GET', url: '/api/v1/audit?limit=0', message: /limit must be >= 1/ },
    {
      what: 'bad status',
      method: 'GET',
      url: '/api/v1/requests?status=lost',
      message: /status must be equal to one of the allowed values/,
    },
    {
      what: 'bad reason',
      method: 'POST',
      url: '/api/v1/certificates/0a/revoke',
      payload: { reason: 'bored' },
      message: /reason must be equal to one of the allowed values/,
    },
    {
      what: 'serial not hex',
      method: 'POST',
      url: '/api/v1/certificates/xyz/revoke',
      message: /serial must match pattern/,
    },
    {
      what: 'a body on approve',
      method: 'POST',
      url: '/api/v1/requests/some-id/approve',
      payload: { force: true },
      message: /unknown field "force" in body/,
    },
  ];
  for (const c of cases) {
    it(`${c.what} is a 400 that says what is wrong`, async () => {
      const r = await call(c.method, c.url, { token, payload: c.payload });
      assert.equal(r.statusCode, 400, r.body);
      const body = json<{ error: string; message: string }>(r);
      assert.match(body.error, /bad-request|ERR_ADMIN_UNKNOWN_PROFILE/);
      assert.match(body.message, c.message);
    });
  }
});

describe('a real server process and the api-token commands', () => {
  const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
  const ENV = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
  );
  const certpost = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('a token works until revoked, and never appears in any log line', async () => {
    const data = join(tempDir(), 'data');
    assert.equal(certpost('ca', 'init', '--data', data, '--key-type', 'ec').code, 0);
    const created = certpost(
      'api-token',
      'create',
      '--data',
      data,
      '--name',
      'ci',
      '--ttl',
      '1d',
      '--json',
    );
    assert.equal(created.code, 0, created.stderr);
    const t = JSON.parse(created.stdout) as { id: string; token: string; expiresAt: string };
    assert.match(t.token, /^cpt_[A-Za-z0-9_-]{43}$/);
    assert.ok(Math.abs(new Date(t.expiresAt).getTime() - Date.now() - 86_400_000) < 60_000);
    assert.equal(
      certpost('api-token', 'create', '--data', data, '--name', 'ci').code,
      3,
      'names are unique',
    );
    assert.equal(certpost('api-token', 'create', '--data', data, '--name', 'a b').code, 2);
    const plain = certpost('api-token', 'create', '--data', data, '--ttl', 'never');
    assert.match(plain.stdout, /^cpt_[A-Za-z0-9_-]{43}\n$/);

    const server = await spawnServe(['--data', data, '--log-level', 'trace'], { env: ENV });
    const url = server.url;
    try {
      const auth = { authorization: `Bearer ${t.token}` };
      const send = (path: string, init: RequestInit = {}) =>
        fetch(`${url}${path}`, { ...init, headers: { ...auth, ...init.headers } });
      assert.equal((await send('/api/v1/audit')).status, 200);
      const post = { method: 'POST', headers: { 'content-type': 'application/json' } };
      assert.equal((await send('/api/v1/challenges', { ...post, body: '{"x":' })).status, 400);
      assert.equal((await send('/api/v1/challenges', { ...post, body: '{"x":1}' })).status, 400);
      assert.equal((await send(`/api/v1/certificates?token=${t.token}`)).status, 400);
      assert.equal((await send('/api/v1/nothing')).status, 404);
      assert.equal((await send('/api/v1/requests/x/approve', { method: 'POST' })).status, 404);
      const wrong = await fetch(`${url}/api/v1/audit`, {
        headers: { authorization: `Bearer ${t.token}x` },
      });
      assert.equal(wrong.status, 401);
      assert.equal(wrong.headers.get('www-authenticate'), 'Bearer realm="certpost"');

      const list = JSON.parse(certpost('api-token', 'list', '--data', data, '--json').stdout) as {
        tokens: { id: string; name: string; status: string }[];
      };
      assert.deepEqual(
        list.tokens.find((x) => x.id === t.id),
        { ...list.tokens.find((x) => x.id === t.id), name: 'ci', status: 'active' },
      );
      const listed = certpost('api-token', 'list', '--data', data, '--json').stdout;
      assert.ok(!listed.includes(t.token) && !listed.includes(secretHash(t.token)));
      assert.equal(certpost('api-token', 'revoke', t.id, '--data', data).code, 0);
      assert.equal(certpost('api-token', 'revoke', t.id, '--data', data).code, 3);
      assert.equal((await send('/api/v1/audit')).status, 401, 'revoked while the server runs');
      assert.match(certpost('api-token', 'list', '--data', data).stdout, /revoked\s+\S+\s+ci\n/);
    } finally {
      await server.stop();
    }
    const out = server.output() + server.stderr();
    assert.match(out, /admin API: authentication failed/, 'the server logs were captured');
    const secret = t.token.slice('cpt_'.length);
    for (const line of out.split('\n'))
      assert.ok(!line.includes(secret), `a log line holds the token: ${line}`);

    const audit = await openContext({ dataDir: data });
    try {
      const text = JSON.stringify(await audit.store.listAudit({ limit: 1000 }));
      assert.ok(!text.includes(secret), 'the token is in the audit log');
      assert.match(text, /"actor":"cli","action":"api-token.revoked"/);
    } finally {
      await audit.close();
    }
  });
});
