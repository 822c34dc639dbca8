/**
 * What every portal route module gets: the server's parts, the session of the request, and
 * how to answer with a page. Built once by `registerPortal` (index.ts).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.ts';
import { page, type PageOptions } from './layout.ts';
import type { ScryptParams } from './password.ts';
import type { Session, Sessions } from './session.ts';

/**
 * Who may open a route: `static` anyone, no session looked at (assets, CA downloads); `public`
 * anyone, the session shown when there is one; `user` a signed-in user of either role; `admin`
 * a signed-in administrator.
 */
export type Access = 'static' | 'public' | 'user' | 'admin';

/** The server parts the portal uses: a {@link ServerContext} is one. */
export type PortalDeps = Pick<
  ServerContext,
  'store' | 'ca' | 'nextCa' | 'profiles' | 'enrollment' | 'mdm' | 'urls' | 'mail'
>;

export interface Portal {
  readonly deps: PortalDeps;
  readonly sessions: Sessions;
  readonly now: () => Date;
  readonly passwordParams: ScryptParams | undefined;
  /** The public URL without a trailing slash, if known. */
  publicUrl(): string | undefined;
  /** The request's session (set by the access hook; undefined on static routes). */
  session(req: FastifyRequest): Session | undefined;
  /** The session of a `user`/`admin` route: it exists, the access hook made sure. */
  signedIn(req: FastifyRequest): Session;
  /** The audit actor of a signed-in request: `portal:<username>`. */
  actor(req: FastifyRequest): string;
  /** Answers with a page in the layout (the request's session in the header). */
  render(
    req: FastifyRequest,
    reply: FastifyReply,
    o: Omit<PageOptions, 'session'> & { readonly status?: number },
  ): FastifyReply;
}

export function createPortal(
  deps: PortalDeps,
  sessions: Sessions,
  o: { readonly now: () => Date; readonly passwordParams: ScryptParams | undefined },
  sessionOf: (req: FastifyRequest) => Session | undefined,
): Portal {
  const portal: Portal = {
    deps,
    sessions,
    now: o.now,
    passwordParams: o.passwordParams,
    publicUrl: () => deps.urls.public?.replace(/\/+$/, ''),
    session: sessionOf,
    signedIn(req) {
      const s = sessionOf(req);
      // Unreachable: the access hook answered already. Fail closed all the same.
      if (!s) throw new Error('a signed-in route reached without a session');
      return s;
    },
    actor: (req) => `portal:${portal.signedIn(req).user.username}`,
    render(req, reply, p) {
      const { status, ...rest } = p;
      return reply
        .code(status ?? 200)
        .type('text/html; charset=utf-8')
        .send(page({ ...rest, session: sessionOf(req) }));
    },
  };
  return portal;
}

/** A form field's value: a single string, else undefined (absent, or given twice). */
export function field(req: FastifyRequest, name: string): string | undefined {
  const body = req.body as Record<string, unknown> | undefined;
  const v = body?.[name];
  return typeof v === 'string' ? v : undefined;
}

/** A query parameter's value, like {@link field}. */
export function param(req: FastifyRequest, name: string): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}
