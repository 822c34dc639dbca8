/**
 * Who may call each HTTP route (issue 7): every route the server registered is walked and
 * called without credentials, and must behave as its rule says. A new route without a rule
 * here fails this suite, so nobody adds an endpoint without deciding who may use it.
 *
 * - anonymous: anyone (health, CA downloads, SCEP — whose requests carry their own
 *   credentials — and MS-MDE2 discovery);
 * - enrollment: SOAP whose credentials are inside the message: without them, a SOAP fault;
 * - device: OMA-DM, authenticated by client certificate or digest: without them, a SyncHdr
 *   401/407 (or HTTP 401/403) and nothing done;
 * - admin: an API token, else 401.
 * - portal: web pages for anyone (GET); a POST (the sign-in form) without its CSRF token is
 *   refused with 403;
 * - user, portal-admin: a signed-in portal session (any user; an administrator): a GET without
 *   one is redirected to the sign-in page, anything else gets 401.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { parseSoapFault } from '../omadm/mde2.ts';
import { parseSyncML } from '../omadm/syncml.ts';
import { walkRoutes } from '../testing/routes.ts';
import { tempDir } from '../testing/tools.ts';
import { openContext, type ServerContext } from './context.ts';
import { buildApp } from './serve.ts';

type Identity =
  'anonymous' | 'enrollment' | 'device' | 'admin' | 'portal' | 'user' | 'portal-admin';

/** Path pattern → who may call it (HEAD follows GET). Order matters: first match wins. */
const RULES: readonly (readonly [RegExp, Identity, (readonly string[])?])[] = [
  [/^\/healthz$/, 'anonymous'],
  [/^\/readyz$/, 'anonymous'],
  [/^\/crl$/, 'anonymous'],
  [/^\/scep(\/pkiclient\.exe)?$/, 'anonymous'],
  [/^\/EnrollmentServer\/Discovery\.svc$/, 'anonymous', ['GET', 'HEAD']],
  [/^\/EnrollmentServer\/(Discovery|Policy|Enrollment)\.svc$/, 'enrollment'],
  [/^\/ManagementServer\/MDM\.svc$/, 'device'],
  [/^\/metrics$/, 'admin'],
  [/^\/api\/v1(\/.*)?$/, 'admin'],
  [/^\/(signin|assets\/:file|ca\/:file)?$/, 'portal'],
  [/^\/(signout|my|my\/request|download\/:token)$/, 'user'],
  [/^\/admin(\/.*)?$/, 'portal-admin'],
];

function ruleOf(method: string, path: string): Identity | undefined {
  return RULES.find(
    ([re, , methods]) => re.test(path) && (methods === undefined || methods.includes(method)),
  )?.[1];
}

let ctx: ServerContext;
let app: FastifyInstance;

before(async () => {
  ctx = await openContext({ dataDir: join(tempDir(), 'data'), createCa: true });
  app = buildApp(ctx, { logLevel: 'silent' });
  await app.ready();
});
after(async () => {
  await app.close();
});

describe('route authorization walk', () => {
  it('every registered route has a rule, and without credentials behaves as the rule says', async () => {
    const routes = walkRoutes(app.printRoutes({ commonPrefix: false }));
    assert.ok(routes.length >= 20, `walked ${routes.length} routes`);
    const missing = routes.filter((r) => ruleOf(r.method, r.path) === undefined);
    assert.deepEqual(missing, [], 'routes without an authorization rule');
    for (const { method, path } of routes) {
      const url = path.replace(/:[^/]+/g, '0a').replace(/\*/g, 'x');
      const rule = ruleOf(method, path);
      const form = rule === 'portal' || rule === 'user' || rule === 'portal-admin';
      const res = await app.inject({
        method,
        url,
        ...(method === 'POST'
          ? form
            ? {
                payload: 'username=a&password=b',
                headers: { 'content-type': 'application/x-www-form-urlencoded' },
              }
            : { payload: '<x/>', headers: { 'content-type': 'text/xml' } }
          : {}),
      });
      const what = `${method} ${path} → ${res.statusCode}`;
      switch (rule) {
        case 'anonymous':
          assert.ok(res.statusCode !== 401 && res.statusCode !== 403, what);
          break;
        case 'admin':
          assert.equal(res.statusCode, 401, what);
          break;
        case 'enrollment':
          assert.equal(res.statusCode, 500, `${what} ${res.body.slice(0, 200)}`);
          assert.ok(res.body.startsWith('<'), `${what}: ${res.body.slice(0, 300)}`);
          assert.ok(parseSoapFault(res.body), `${what}: a SOAP fault`);
          break;
        case 'device': {
          if (res.statusCode === 401 || res.statusCode === 403 || res.statusCode === 400) break;
          const [status] = parseSyncML(res.body).body;
          assert.ok(status?.kind === 'Status' && ['401', '407'].includes(status.data), what);
          break;
        }
        case 'portal':
          if (method === 'POST') assert.equal(res.statusCode, 403, what);
          else assert.ok(res.statusCode !== 401 && res.statusCode !== 403, what);
          break;
        case 'user':
        case 'portal-admin':
          if (method === 'GET' || method === 'HEAD') {
            assert.equal(res.statusCode, 303, what);
            assert.match(String(res.headers.location), /^\/signin\?next=/, what);
          } else assert.equal(res.statusCode, 401, what);
          break;
        default:
          assert.fail(what);
      }
    }
  });
});
