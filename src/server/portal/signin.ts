/**
 * Sign-in and sign-out. A failed sign-in gets one generic message whatever went wrong (unknown
 * user, wrong password, disabled, too many attempts), so the page tells an attacker nothing
 * about which names exist. Failures are limited per user name and per client address in the
 * store (ca/rate-limit.ts, namespace `signin:`), so the limit holds across server processes;
 * while either is over its limit, the password is not even checked. Both outcomes are audited
 * (never the password).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { StoreFailureLimiter } from '../../ca/rate-limit.ts';
import type { FailureStore } from '../../store/types.ts';
import { field, param, type Portal } from './context.ts';
import { html } from './html.ts';
import { checkCredentials } from './users.ts';

export interface SigninLimits {
  /** Failures per user name in the window (default 5). */
  readonly perUser?: number;
  /** Failures per client address in the window (default 20). */
  readonly perAddress?: number;
  /** Default 15 minutes. */
  readonly windowMs?: number;
}

export const SIGNIN_FAILED =
  'Sign-in failed: the user name or password is wrong, or there were too many attempts. Try again later.';

/** Where to go after signing in: a local path only (never `//host` or `/\host`), else home. */
export function localPath(next: string | undefined): string | undefined {
  return next !== undefined && /^\/(?![/\\])[^\s]*$/.test(next) && next.length <= 512
    ? next
    : undefined;
}

function signinPage(req: FastifyRequest, token: string, next: string | undefined) {
  return html`<section class="card signin">
<h1>Sign in</h1>
<form method="post" action="/signin">
<input type="hidden" name="_csrf" value="${token}">
${next ? html`<input type="hidden" name="next" value="${next}">` : ''}
<label for="username">User name</label>
<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${field(req, 'username') ?? ''}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit">Sign in</button></p>
</form>
<p class="muted">Accounts are made by an administrator (<code>certpost user create</code>).</p>
</section>`;
}

export function registerSignin(
  scope: FastifyInstance,
  portal: Portal,
  store: FailureStore,
  limits: SigninLimits = {},
): void {
  const windowMs = limits.windowMs ?? 15 * 60_000;
  const now = () => portal.now().getTime();
  const byUser = new StoreFailureLimiter(store, {
    namespace: 'signin:user:',
    maxFailures: limits.perUser ?? 5,
    windowMs,
    now,
  });
  const byAddress = new StoreFailureLimiter(store, {
    namespace: 'signin:ip:',
    maxFailures: limits.perAddress ?? 20,
    windowMs,
    now,
  });

  scope.get('/signin', { config: { access: 'public' } }, async (req, reply) => {
    const next = localPath(param(req, 'next'));
    if (portal.session(req)) return reply.redirect(next ?? '/my', 303);
    const token = portal.sessions.signinToken(req, reply);
    return portal.render(req, reply, {
      title: 'Sign in',
      body: signinPage(req, token, next),
    });
  });

  scope.post('/signin', { config: { access: 'public' } }, async (req, reply) => {
    const next = localPath(field(req, 'next'));
    const again = (status: number, error: string) =>
      portal.render(req, reply, {
        title: 'Sign in',
        status,
        error,
        body: signinPage(req, portal.sessions.signinToken(req, reply), next),
      });
    // The double-submit token (and the browser's origin headers, in the CSRF hook) first:
    // nobody else's page may sign this browser in.
    if (!portal.sessions.checkSigninToken(req, field(req, '_csrf')))
      return again(403, 'The sign-in form expired. Please try again.');
    const typed = (field(req, 'username') ?? '').trim().toLowerCase().slice(0, 254);
    const password = field(req, 'password') ?? '';
    const audit = (action: string, target: string, details: Record<string, unknown>) =>
      portal.deps.store.appendAudit({
        at: portal.now(),
        actor: `portal:${typed.slice(0, 64)}`,
        action,
        target,
        details: { ip: req.ip, ...details },
      });
    const blocked = (await byUser.blocked(typed)) || (await byAddress.blocked(req.ip));
    const user = blocked
      ? undefined
      : await checkCredentials(
          {
            store: portal.deps.store,
            now: portal.now,
            ...(portal.passwordParams ? { passwordParams: portal.passwordParams } : {}),
          },
          typed,
          password,
        );
    if (!user) {
      if (!blocked) {
        await byUser.fail(typed);
        await byAddress.fail(req.ip);
      }
      await audit('user.sign-in-failed', typed.slice(0, 64), {
        reason: blocked ? 'rate-limited' : 'refused',
      });
      req.log.warn({ ip: req.ip }, 'portal: sign-in failed');
      return again(401, SIGNIN_FAILED);
    }
    await portal.sessions.start(req, reply, user);
    await audit('user.signed-in', user.id, { username: user.username });
    // Housekeeping at the pace of sign-ins: sessions no longer usable, and download links a
    // day past their expiry (until then a late click is told "expired", not "invalid").
    const at = portal.now();
    await portal.deps.store.purgeWebSessions(at);
    await portal.deps.store.purgeDownloadLinks(new Date(at.getTime() - 86_400_000));
    return reply.redirect(next ?? (user.role === 'admin' ? '/admin' : '/my'), 303);
  });

  scope.post('/signout', { config: { access: 'user' } }, async (req, reply) => {
    const s = portal.signedIn(req);
    await portal.sessions.end(req, reply);
    await portal.deps.store.appendAudit({
      at: portal.now(),
      actor: `portal:${s.user.username}`,
      action: 'user.signed-out',
      target: s.user.id,
      details: {},
    });
    return reply.redirect('/', 303);
  });
}
