/**
 * The web portal (issue 6), served by the server: server-rendered HTML, no client script, one
 * stylesheet. Routes, each with an access rule (context.ts {@link Access}):
 *
 * - public: `/` (the organisation's CA certificates, thumbprints, downloads, a QR code of the
 *   page), `/ca/<which>.<cer|crt|pem|p7b>`, `/signin`, `/assets/…`;
 * - signed in (user or admin): `/my` (own certificates; request an identity), `/download/<token>`
 *   (a one-time PFX link), `/signout`;
 * - administrators: `/admin/…` (dashboard, certificates, requests, devices, profiles, audit).
 *
 * Every answer carries strict security headers (a CSP without inline script, frame denial, no
 * referrer, nosniff); every POST passes the CSRF check (session.ts); administrative actions go
 * through the same operations as the CLI and the admin API (admin-ops.ts, mdm-admin.ts,
 * mdm-profiles.ts), which write the audit log with the actor `portal:<username>`.
 */
import { annotate } from '../request-log.ts';
import { MailError } from '../../mail/errors.ts';
import { MAIL_STATUS } from '../admin-api.ts';
import { isStoreUnavailable } from '../../store/types.ts';
import { RETRY_AFTER_SECONDS } from '../unavailable.ts';
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify';
import { ADMIN_STATUS } from '../admin-api.ts';
import { AdminError } from '../admin-ops.ts';
import { registerAdminConsole } from './admin.ts';
import { registerAssets } from './assets.ts';
import { createPortal, field, type Access, type PortalDeps } from './context.ts';
import { html } from './html.ts';
import type { ScryptParams } from './password.ts';
import {
  createSessions,
  fromThisSite,
  secretsEqual,
  type Session,
  type SessionOptions,
} from './session.ts';
import { registerPublic } from './public.ts';
import { registerSelfService } from './self-service.ts';
import { registerSignin, type SigninLimits } from './signin.ts';

export interface PortalOptions {
  readonly now?: (() => Date) | undefined;
  readonly sessions?: SessionOptions;
  readonly signinLimits?: SigninLimits;
  /** scrypt parameters for password hashes made by the portal (default password.ts). */
  readonly passwordParams?: ScryptParams;
}

/**
 * Content-Security-Policy: nothing but this site's stylesheet and images, no script at all,
 * forms only to this site, never in a frame. Inline SVG (QR code, charts) needs no source.
 */
export const CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CSP,
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** Form bodies as plain string maps (the last of repeated names wins; `__proto__` is data). */
function parseForm(text: string): Record<string, unknown> {
  return Object.fromEntries(new URLSearchParams(text));
}

/** Registers the portal on `app` (one call in the composition root, serve.ts). */
export function registerPortal(
  app: FastifyInstance,
  deps: PortalDeps,
  o: PortalOptions = {},
): void {
  const now = o.now ?? (() => new Date());
  const publicUrl = () => deps.urls.public?.replace(/\/+$/, '');
  const sessions = createSessions({ store: deps.store, now, publicUrl }, o.sessions);
  const bound = new WeakMap<FastifyRequest, Session>();
  const portal = createPortal(deps, sessions, { now, passwordParams: o.passwordParams }, (req) =>
    bound.get(req),
  );

  void app.register(async (scope) => {
    await scope.register(cookie);
    await scope.register(formbody, { bodyLimit: 64 * 1024, parser: parseForm });

    scope.addHook('onSend', async (req, reply) => {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
      if (req.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    });

    scope.addHook('onRequest', async (req, reply) => {
      const access = (req.routeOptions.config as { access?: Access }).access;
      if (access === undefined)
        throw new Error(`portal route ${req.routeOptions.url} has no access rule`);
      if (access === 'static') return;
      const session = await sessions.read(req);
      if (session) {
        bound.set(req, session);
        annotate(req, { user: session.user.username });
      }
      if (access === 'public') return;
      if (!session) {
        if (req.method === 'GET' || req.method === 'HEAD')
          return reply.redirect(`/signin?next=${encodeURIComponent(req.url)}`, 303);
        return portal.render(req, reply, {
          title: 'Sign in required',
          status: 401,
          error: 'Your session has ended. Please sign in again.',
          body: html`<p><a class="button" href="/signin">Sign in</a></p>`,
        });
      }
      if (access === 'admin' && session.user.role !== 'admin')
        return portal.render(req, reply, {
          title: 'Not allowed',
          status: 403,
          error: 'This page is for administrators.',
          body: html`<p><a href="/my">Back to my certificates</a></p>`,
        });
    });

    // CSRF: every POST from this site's own page of this session (session.ts). The sign-in
    // form has no session yet: its double-submit token is checked by its route.
    scope.addHook('preHandler', async (req, reply) => {
      if (req.method !== 'POST') return;
      const session = bound.get(req);
      const token = field(req, '_csrf');
      const ok =
        fromThisSite(req, publicUrl()) &&
        (req.routeOptions.url === '/signin' ||
          (session !== undefined && token !== undefined && secretsEqual(token, session.csrf)));
      if (ok) return;
      req.log.warn({ ip: req.ip, route: req.routeOptions.url }, 'portal: CSRF check failed');
      return portal.render(req, reply, {
        title: 'Refused',
        status: 403,
        error: 'This form was stale or did not come from this site. Reload the page and try again.',
        body: html`<p><a href="/">Home</a></p>`,
      });
    });

    scope.setErrorHandler(async (e: FastifyError, req, reply) => {
      if (e instanceof AdminError)
        return portal.render(req, reply, {
          title: 'Not done',
          status: ADMIN_STATUS[e.code],
          error: e.message,
          body: html`<p><a href="${req.routeOptions.url?.startsWith('/admin') ? '/admin' : '/my'}">Back</a></p>`,
        });
      if (e.statusCode !== undefined && e.statusCode < 500)
        return portal.render(req, reply, {
          title: 'Bad request',
          status: e.statusCode,
          error: 'The request could not be read.',
          body: html``,
        });
      if (e instanceof MailError)
        // Mail messages name the relay and the recipient, never a password (mail/errors.ts).
        return portal.render(req, reply, {
          title: 'Not sent',
          status: MAIL_STATUS[e.code],
          error: e.message,
          body: html`<p><a href="/admin/certificates">Back</a></p>`,
        });
      if (isStoreUnavailable(e)) {
        reply.header('retry-after', String(RETRY_AFTER_SECONDS));
        return portal.render(req, reply, {
          title: 'Unavailable',
          status: 503,
          error: 'The database is unavailable. Try again in a few seconds.',
          body: html``,
        });
      }
      req.log.error({ err: e }, 'portal: request failed');
      return portal.render(req, reply, {
        title: 'Error',
        status: 500,
        error: 'Something went wrong on the server. It has been logged.',
        body: html``,
      });
    });

    registerAssets(scope);
    registerSignin(scope, portal, deps.store, o.signinLimits);
    registerPublic(scope, portal);
    registerSelfService(scope, portal);
    registerAdminConsole(scope, portal);
  });
}
