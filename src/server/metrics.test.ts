/** `/metrics` and `/readyz` on the in-process app: who may read them, and what they count. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../testing/tools.ts';
import { createApiToken, createChallenge } from './admin-ops.ts';
import { openContext, type ServerContext } from './context.ts';
import { MDM_PATH } from './mdm-http.ts';
import { buildApp } from './serve.ts';

let ctx: ServerContext;
let app: FastifyInstance;
let token = '';

before(async () => {
  ctx = await openContext({ dataDir: join(tempDir(), 'data'), createCa: true });
  app = buildApp(ctx, { logLevel: 'silent' });
  await app.ready();
  token = (await createApiToken(ctx, 'test', { name: 'prometheus' })).token;
});
after(async () => {
  await app.close();
});

describe('metrics and readiness', () => {
  it('/metrics needs an API token', async () => {
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 401);
    const wrong = await app.inject({ url: '/metrics', headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.statusCode, 401);
  });

  it('counts audited events, MDM messages and requests by route, and reads pending requests', async () => {
    await createChallenge(ctx, 'test', {});
    await app.inject({ method: 'POST', url: MDM_PATH, payload: 'not syncml' });
    await app.inject({ url: '/healthz' });
    const res = await app.inject({
      url: '/metrics',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /^text\/plain/);
    const text = res.body;
    assert.match(text, /certpost_events_total\{action="challenge\.created",reason=""\} 1/);
    assert.match(text, /certpost_events_total\{action="api-token\.created",reason=""\} 1/);
    assert.match(text, /certpost_mdm_messages_total\{result="bad"\} 1/);
    assert.match(
      text,
      /certpost_http_request_duration_seconds_count\{method="GET",route="\/healthz",status="200"\} 1/,
    );
    assert.match(text, /certpost_pending_requests 0/);
    assert.doesNotMatch(text, /Bearer|challenge":/, 'no secrets in labels');
  });

  it('/readyz answers ready while the store answers', async () => {
    const res = await app.inject({ url: '/readyz' });
    assert.equal(res.statusCode, 200);
    assert.deepEqual(res.json(), { status: 'ready' });
  });
});
