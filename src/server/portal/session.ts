/**
 * Portal sessions and CSRF protection (OWASP Session Management and CSRF Prevention cheat
 * sheets):
 *
 * - The session cookie holds 32 random bytes; the store keeps only their SHA-256, so a copy of
 *   the database signs nobody in. `HttpOnly; SameSite=Strict; Path=/`, and over TLS `Secure`
 *   with the `__Host-` name prefix (no Domain, so no sibling host can set or read it).
 * - A session ends after {@link SessionOptions.idleMs} without use, and in any case
 *   {@link SessionOptions.absoluteMs} after sign-in. Signing in always starts a new session
 *   (the old one, if the browser had one, is ended): no session fixation.
 * - Every form of a session carries its synchronizer token (`_csrf`); every POST is refused
 *   unless the token matches (compared as SHA-256 digests in constant time) and the browser's
 *   `Sec-Fetch-Site` / `Origin` headers, when present, say the request comes from this site.
 *   The sign-in form, before there is a session, uses a double-submit token: a short-lived
 *   cookie and the same value in the form.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CookieSerializeOptions } from '@fastify/cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { secretHash } from '../../ca/enrollment.ts';
import type { UserRecord, UserStore, WebSessionStore } from '../../store/types.ts';

export interface SessionOptions {
  /** Idle timeout (default 30 minutes). */
  readonly idleMs?: number;
  /** Absolute timeout from sign-in (default 12 hours). */
  readonly absoluteMs?: number;
}

export interface Session {
  readonly user: UserRecord;
  readonly csrf: string;
  readonly tokenHash: string;
}

export interface SessionDeps {
  readonly store: UserStore & WebSessionStore;
  readonly now: () => Date;
  /** The server's public URL, whose origin form posts may also come from (a reverse proxy). */
  readonly publicUrl: () => string | undefined;
}

const IDLE_MS = 30 * 60_000;
const ABSOLUTE_MS = 12 * 3_600_000;
/**
 * A session's idle deadline is written at most once a minute (or a quarter of the idle timeout,
 * if shorter), not on every request.
 */
const TOUCH_EVERY_MS = 60_000;
const SIGNIN_COOKIE_MS = 3_600_000;

/** 32 random bytes, base64url: session tokens, CSRF tokens, download tokens. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time equality of two secrets of any length (their SHA-256 digests are compared). */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The cookie attributes of a session or sign-in cookie. */
function cookieOptions(secure: boolean, maxAgeMs: number): CookieSerializeOptions {
  return {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure,
    maxAge: Math.floor(maxAgeMs / 1000),
  };
}

/** Whether the request came over TLS (cookies are then Secure and `__Host-`-prefixed). */
export function isSecure(req: FastifyRequest, publicUrl: string | undefined): boolean {
  return req.protocol === 'https' || publicUrl?.startsWith('https:') === true;
}

/**
 * Whether a state-changing request comes from this site, as far as the browser says (Fetch
 * Metadata, then Origin). `Sec-Fetch-Site` decides when present: only `same-origin` passes.
 * Without it, an `Origin` must be this host or the public URL's origin; `Origin: null` is what
 * browsers send for our own forms under `Referrer-Policy: no-referrer` (Fetch §3.2.5), so it and
 * a missing Origin (not a browser, so not a CSRF vector) are left to the token check, which
 * every POST passes as well.
 */
export function fromThisSite(req: FastifyRequest, publicUrl: string | undefined): boolean {
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined) return site === 'same-origin';
  const origin = req.headers.origin;
  if (origin === undefined || origin === 'null') return true;
  const own = [`${req.protocol}://${req.headers.host ?? ''}`];
  if (publicUrl) own.push(new URL(publicUrl).origin);
  return own.includes(origin);
}

export interface Sessions {
  /** The signed-in session of this request, if any (an enabled user; the use is recorded). */
  read(req: FastifyRequest): Promise<Session | undefined>;
  /** Starts a new session for `user` (ending the browser's current one) and sets its cookie. */
  start(req: FastifyRequest, reply: FastifyReply, user: UserRecord): Promise<Session>;
  /** Ends the request's session and clears its cookie. */
  end(req: FastifyRequest, reply: FastifyReply): Promise<void>;
  /** A double-submit token for the sign-in form, set as a cookie on `reply`. */
  signinToken(req: FastifyRequest, reply: FastifyReply): string;
  /** Whether the sign-in form's token matches its cookie. */
  checkSigninToken(req: FastifyRequest, token: string | undefined): boolean;
}

export function createSessions(deps: SessionDeps, o: SessionOptions = {}): Sessions {
  const idleMs = o.idleMs ?? IDLE_MS;
  const absoluteMs = o.absoluteMs ?? ABSOLUTE_MS;
  const touchEveryMs = Math.min(TOUCH_EVERY_MS, idleMs / 4);
  const names = (req: FastifyRequest) =>
    isSecure(req, deps.publicUrl())
      ? { session: '__Host-certpost-session', signin: '__Host-certpost-signin', secure: true }
      : { session: 'certpost-session', signin: 'certpost-signin', secure: false };

  return {
    async read(req) {
      const token = req.cookies[names(req).session];
      if (!token || token.length > 128) return undefined;
      const tokenHash = secretHash(token);
      const now = deps.now();
      const s = await deps.store.findWebSession(tokenHash, now);
      if (!s) return undefined;
      const user = await deps.store.getUser(s.userId);
      if (!user || user.disabledAt) return undefined;
      if (now.getTime() - s.lastSeenAt.getTime() >= touchEveryMs)
        await deps.store.touchWebSession(tokenHash, now, new Date(now.getTime() + idleMs));
      return { user, csrf: s.csrfToken, tokenHash };
    },

    async start(req, reply, user) {
      const n = names(req);
      const old = req.cookies[n.session];
      if (old && old.length <= 128) await deps.store.deleteWebSession(secretHash(old));
      const token = newToken();
      const now = deps.now();
      const session = {
        tokenHash: secretHash(token),
        userId: user.id,
        csrfToken: newToken(),
        createdAt: now,
        lastSeenAt: now,
        idleExpiresAt: new Date(now.getTime() + Math.min(idleMs, absoluteMs)),
        expiresAt: new Date(now.getTime() + absoluteMs),
      };
      await deps.store.createWebSession(session);
      reply.setCookie(n.session, token, cookieOptions(n.secure, absoluteMs));
      reply.clearCookie(n.signin, { path: '/', secure: n.secure });
      return { user, csrf: session.csrfToken, tokenHash: session.tokenHash };
    },

    async end(req, reply) {
      const n = names(req);
      const token = req.cookies[n.session];
      if (token && token.length <= 128) await deps.store.deleteWebSession(secretHash(token));
      reply.clearCookie(n.session, {
        path: '/',
        secure: n.secure,
        httpOnly: true,
        sameSite: 'strict',
      });
    },

    signinToken(req, reply) {
      const n = names(req);
      const have = req.cookies[n.signin];
      if (have && /^[A-Za-z0-9_-]{43}$/.test(have)) return have;
      const token = newToken();
      reply.setCookie(n.signin, token, cookieOptions(n.secure, SIGNIN_COOKIE_MS));
      return token;
    },

    checkSigninToken(req, token) {
      const have = req.cookies[names(req).signin];
      return have !== undefined && token !== undefined && secretsEqual(have, token);
    },
  };
}
