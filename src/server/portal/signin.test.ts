/**
 * The portal's core in-process (app.inject): security headers, the stylesheet, sign-in with
 * its generic failure and rate limits, session cookies and rotation, timeouts, CSRF and origin
 * checks, sign-out, and the log redaction of download tokens.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { tempDir } from '../../testing/tools.ts';
import { secretHash } from '../../ca/enrollment.ts';
import { openContext, type ServerContext } from '../context.ts';
import { buildApp } from '../serve.ts';
import { STYLESHEET } from './assets.ts';
import { redactUrl } from '../request-log.ts';
import { CSP } from './index.ts';
import { SIGNIN_FAILED, localPath } from './signin.ts';
import { CHEAP_SCRYPT, csrfOf, formClient, signIn } from './testing.ts';
import { createUser } from './users.ts';

const PW = 'the right password';
let t = Date.parse('2026-05-04T09:00:00Z');
let ctx: ServerContext;
let app: FastifyInstance;
const logs: string[] = [];

before(async () => {
  ctx = await openContext({ dataDir: join(tempDir(), 'data'), createCa: true });
  app = buildApp(ctx, {
    logLevel: 'info',
    logStream: { write: (line) => void logs.push(line) },
    portal: {
      now: () => new Date(t),
      passwordParams: CHEAP_SCRYPT,
      signinLimits: { perUser: 3, perAddress: 8, windowMs: 600_000 },
      sessions: { idleMs: 60_000, absoluteMs: 300_000 },
    },
  });
  await app.ready();
  const deps = { store: ctx.store, passwordParams: CHEAP_SCRYPT, now: () => new Date(t) };
  await createUser(deps, 'test', { username: 'ann@contoso.com', password: PW });
  await createUser(deps, 'test', { username: 'root', password: PW, role: 'admin' });
  await createUser(deps, 'test', { username: 'limited', password: PW });
  await createUser(deps, 'test', { username: 'limited2', password: PW });
});
after(async () => {
  await app.close();
});

describe('portal core', () => {
  it('every answer has the security headers; the stylesheet is cached for a year under its hash', async () => {
    const signin = await app.inject({ method: 'GET', url: '/signin' });
    assert.equal(signin.statusCode, 200);
    assert.equal(signin.headers['content-security-policy'], CSP);
    assert.doesNotMatch(CSP, /unsafe-inline|unsafe-eval/);
    assert.equal(signin.headers['x-frame-options'], 'DENY');
    assert.equal(signin.headers['referrer-policy'], 'no-referrer');
    assert.equal(signin.headers['x-content-type-options'], 'nosniff');
    assert.equal(signin.headers['cache-control'], 'no-store');
    assert.match(String(signin.headers['content-type']), /^text\/html; charset=utf-8/);
    assert.ok(signin.body.includes(`<link rel="stylesheet" href="${STYLESHEET}">`));
    assert.doesNotMatch(signin.body, /<script|style=/i, 'no inline script or style');
    const css = await app.inject({ method: 'GET', url: STYLESHEET });
    assert.equal(css.statusCode, 200);
    assert.equal(css.headers['content-type'], 'text/css; charset=utf-8');
    assert.equal(css.headers['cache-control'], 'public, max-age=31536000, immutable');
    assert.equal(css.headers['x-content-type-options'], 'nosniff');
    assert.equal(
      (await app.inject({ method: 'GET', url: '/assets/portal.0.css' })).statusCode,
      404,
    );
  });

  it('signs in: a new HttpOnly SameSite=Strict session cookie, rotated at every sign-in', async () => {
    const client = formClient(app);
    const page = await client.get('/signin');
    const pre = page.cookies.find((c) => c.name === 'certpost-signin');
    assert.ok(pre?.httpOnly && pre.sameSite === 'Strict' && pre.path === '/');
    const res = await client.post('/signin', {
      _csrf: csrfOf(page.body),
      username: 'ANN@contoso.com',
      password: PW,
    });
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/my');
    const cookie = res.cookies.find((c) => c.name === 'certpost-session');
    assert.ok(cookie, 'a session cookie');
    assert.deepEqual(
      [cookie.httpOnly, cookie.sameSite, cookie.path, cookie.secure],
      [true, 'Strict', '/', undefined],
    );
    assert.match(cookie.value, /^[A-Za-z0-9_-]{43}$/);
    const stored = await ctx.store.findWebSession(secretHash(cookie.value), new Date(t));
    assert.ok(stored, 'the store keeps the token hash');
    assert.notEqual(stored.tokenHash, cookie.value);

    // A browser that comes to sign in with a session cookie (planted, or left from before)
    // gets a new session; the old one ends.
    const fixated = formClient(app);
    const form = csrfOf((await fixated.get('/signin')).body);
    fixated.cookies.set('certpost-session', cookie.value);
    const again = await fixated.post('/signin', { _csrf: form, username: 'root', password: PW });
    assert.equal(again.statusCode, 303);
    assert.equal(again.headers.location, '/admin');
    assert.equal(await ctx.store.findWebSession(secretHash(cookie.value), new Date(t)), undefined);
    assert.notEqual(fixated.cookies.get('certpost-session'), cookie.value);
    const audit = await ctx.store.listAudit({ action: 'user.signed-in', limit: 1 });
    assert.equal(audit[0]?.actor, 'portal:root');
  });

  it('a signed-in visitor of /signin goes on to where it was going (local paths only)', async () => {
    const client = await signIn(app, 'ann@contoso.com', PW);
    const res = await client.get('/signin?next=/admin/audit');
    assert.equal(res.statusCode, 303);
    assert.equal(res.headers.location, '/admin/audit');
    assert.equal((await client.get('/signin?next=//evil.example/')).headers.location, '/my');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'x', '/a b'])
      assert.equal(localPath(bad), undefined, bad);
    assert.equal(localPath('/admin/certificates?q=x'), '/admin/certificates?q=x');
  });

  it('refuses a wrong password, an unknown or a disabled user with one generic message', async () => {
    const client = formClient(app);
    const token = csrfOf((await client.get('/signin')).body);
    for (const [username, password] of [
      ['ann@contoso.com', 'not the password'],
      ['nobody@contoso.com', PW],
      ['<script>alert(1)</script>', PW],
    ] as const) {
      const res = await client.post('/signin', { _csrf: token, username, password });
      assert.equal(res.statusCode, 401);
      assert.ok(res.body.includes(SIGNIN_FAILED.replace("'", '&#39;')));
      assert.equal(client.cookies.get('certpost-session'), undefined);
      assert.doesNotMatch(res.body, /<script>alert/);
    }
    const failed = await ctx.store.listAudit({ action: 'user.sign-in-failed', limit: 10 });
    assert.ok(failed.length >= 3);
    assert.doesNotMatch(JSON.stringify(failed), /not the password/);
  });

  it('limits failures per user name: after 3, even the right password is refused', async () => {
    const client = formClient(app);
    const token = csrfOf((await client.get('/signin')).body);
    const signin = (password: string) =>
      client.post(
        '/signin',
        { _csrf: token, username: 'limited', password },
        { 'x-forwarded-for': '1' },
      );
    for (let i = 0; i < 3; i++) assert.equal((await signin('wrong password!')).statusCode, 401);
    const blocked = await signin(PW);
    assert.equal(blocked.statusCode, 401);
    assert.ok(blocked.body.includes('too many attempts'));
    const [last] = await ctx.store.listAudit({ action: 'user.sign-in-failed', limit: 1 });
    assert.equal(last?.details['reason'], 'rate-limited');
    // Another name from the same address is not blocked by this name's limit.
    const other = await client.post('/signin', {
      _csrf: token,
      username: 'limited2',
      password: PW,
    });
    assert.equal(other.statusCode, 303);
    // The window passes.
    t += 600_001;
    assert.equal((await formClient(app).get('/signin')).statusCode, 200);
    const later = formClient(app);
    const ok = await later.post('/signin', {
      _csrf: csrfOf((await later.get('/signin')).body),
      username: 'limited',
      password: PW,
    });
    assert.equal(ok.statusCode, 303);
  });

  it('limits failures per client address: after 8, any name is refused from there only', async () => {
    const attacker = formClient(app, { remoteAddress: '203.0.113.7' });
    const token = csrfOf((await attacker.get('/signin')).body);
    for (let i = 0; i < 8; i++) {
      const res = await attacker.post('/signin', {
        _csrf: token,
        username: `guess${i}`,
        password: 'x'.repeat(12),
      });
      assert.equal(res.statusCode, 401);
    }
    const right = await attacker.post('/signin', { _csrf: token, username: 'root', password: PW });
    assert.equal(right.statusCode, 401, 'this address is blocked');
    const elsewhere = formClient(app, { remoteAddress: '198.51.100.9' });
    const ok = await elsewhere.post('/signin', {
      _csrf: csrfOf((await elsewhere.get('/signin')).body),
      username: 'root',
      password: PW,
    });
    assert.equal(ok.statusCode, 303, 'another address is not');
  });

  it('refuses a sign-in without its form token, or posted from another site', async () => {
    const client = formClient(app);
    const token = csrfOf((await client.get('/signin')).body);
    const noToken = await client.post('/signin', { username: 'ann@contoso.com', password: PW });
    assert.equal(noToken.statusCode, 403);
    const forged = await client.post('/signin', {
      _csrf: 'A'.repeat(43),
      username: 'ann@contoso.com',
      password: PW,
    });
    assert.equal(forged.statusCode, 403);
    const crossSite = await client.post(
      '/signin',
      { _csrf: token, username: 'ann@contoso.com', password: PW },
      { origin: 'https://evil.example' },
    );
    assert.equal(crossSite.statusCode, 403);
    const fetchSite = await client.post(
      '/signin',
      { _csrf: token, username: 'ann@contoso.com', password: PW },
      { 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(fetchSite.statusCode, 403);
    const sandboxed = await client.post(
      '/signin',
      { _csrf: token, username: 'ann@contoso.com', password: PW },
      { origin: 'null', 'sec-fetch-site': 'cross-site' },
    );
    assert.equal(sandboxed.statusCode, 403);
    assert.equal(client.cookies.get('certpost-session'), undefined);
    // Our own form under Referrer-Policy: no-referrer: Origin null, Sec-Fetch-Site same-origin.
    const own = await client.post(
      '/signin',
      { _csrf: token, username: 'ann@contoso.com', password: PW },
      { origin: 'null', 'sec-fetch-site': 'same-origin' },
    );
    assert.equal(own.statusCode, 303);
  });

  it('signs out only with the session`s CSRF token from this site', async () => {
    const client = await signIn(app, 'ann@contoso.com', PW);
    const session = client.cookies.get('certpost-session')!;
    assert.equal((await client.post('/signout', {})).statusCode, 403, 'no token');
    assert.equal((await client.post('/signout', { _csrf: 'x'.repeat(43) })).statusCode, 403);
    const csrf = (await ctx.store.findWebSession(secretHash(session), new Date(t)))!.csrfToken;
    const crossSite = await client.post(
      '/signout',
      { _csrf: csrf },
      { origin: 'http://evil.example' },
    );
    assert.equal(crossSite.statusCode, 403);
    assert.ok(await ctx.store.findWebSession(secretHash(session), new Date(t)), 'still signed in');
    const out = await client.post('/signout', { _csrf: csrf });
    assert.equal(out.statusCode, 303);
    assert.equal(await ctx.store.findWebSession(secretHash(session), new Date(t)), undefined);
    assert.equal(client.cookies.get('certpost-session'), undefined, 'the cookie is cleared');
    assert.equal((await client.post('/signout', { _csrf: csrf })).statusCode, 401);
  });

  it('a session ends after the idle timeout, and after the absolute one however busy', async () => {
    const client = await signIn(app, 'ann@contoso.com', PW);
    const token = client.cookies.get('certpost-session')!;
    const alive = async () =>
      Boolean(await ctx.store.findWebSession(secretHash(token), new Date(t)));
    // Used every 50 s (idle timeout 60 s): still alive after 250 s, gone at 300 s (absolute).
    for (let i = 0; i < 5; i++) {
      t += 50_000;
      assert.ok(await alive(), `use ${i}`);
      await client.get('/signin');
    }
    t += 50_000;
    assert.equal(await alive(), false);
    const idle = await signIn(app, 'ann@contoso.com', PW);
    t += 60_000;
    const res = await idle.post('/signout', { _csrf: 'x' });
    assert.equal(res.statusCode, 401, 'idle for 60 s: the session is gone');
  });

  it('over TLS (an https public URL) the cookies are Secure and __Host- prefixed', async () => {
    const tls = await openContext({
      dataDir: join(tempDir(), 'data'),
      createCa: true,
      publicUrl: 'https://pki.contoso.test',
    });
    const tlsApp = buildApp(tls, { logLevel: 'silent', portal: { passwordParams: CHEAP_SCRYPT } });
    try {
      await createUser({ store: tls.store, passwordParams: CHEAP_SCRYPT }, 'test', {
        username: 'ann',
        password: PW,
      });
      const client = formClient(tlsApp, { origin: 'https://pki.contoso.test' });
      const page = await client.get('/signin');
      const pre = page.cookies.find((c) => c.name === '__Host-certpost-signin');
      assert.ok(pre?.secure && pre.path === '/' && pre.domain === undefined);
      const res = await client.post('/signin', {
        _csrf: csrfOf(page.body),
        username: 'ann',
        password: PW,
      });
      assert.equal(res.statusCode, 303);
      const session = res.cookies.find((c) => c.name === '__Host-certpost-session');
      assert.ok(session?.secure && session.httpOnly && session.sameSite === 'Strict');
      assert.equal(
        res.cookies.find((c) => c.name === 'certpost-session'),
        undefined,
      );
    } finally {
      await tlsApp.close();
    }
  });

  it('a sign-in purges sessions that ended and links a day past their expiry', async () => {
    const u = (await ctx.store.getUserByName('root'))!;
    const old = {
      tokenHash: 'e'.repeat(64),
      userId: u.id,
      csrfToken: 'c',
      createdAt: new Date(t - 7_200_000),
      lastSeenAt: new Date(t - 7_200_000),
      idleExpiresAt: new Date(t - 3_600_000),
      expiresAt: new Date(t + 3_600_000),
    };
    await ctx.store.createWebSession(old);
    await ctx.store.createDownloadLink({
      tokenHash: 'f'.repeat(64),
      userId: u.id,
      kind: 'pfx',
      target: '01',
      createdAt: new Date(t - 3 * 86_400_000),
      expiresAt: new Date(t - 2 * 86_400_000),
    });
    await signIn(app, 'root', PW);
    assert.equal(await ctx.store.purgeWebSessions(new Date(t)), 0, 'already purged');
    assert.equal(await ctx.store.getDownloadLink('f'.repeat(64)), undefined);
  });

  it('never logs a download token: the request serializer redacts it', async () => {
    assert.equal(redactUrl('/download/abcDEF_123?x=1'), '/download/[redacted]?x=1');
    assert.equal(redactUrl('/admin/certificates?q=download'), '/admin/certificates?q=download');
    assert.equal(
      redactUrl('/signin?next=%2Fdownload%2FabcDEF_123&x=1'),
      '/signin?next=%2Fdownload%2F[redacted]&x=1',
    );
    logs.length = 0;
    app.log.info({ req: { method: 'GET', url: '/download/SECRET-TOKEN', ip: '127.0.0.1' } }, 'x');
    assert.ok(logs.join('').includes('/download/[redacted]'));
    assert.ok(!logs.join('').includes('SECRET-TOKEN'));
  });
});
