/**
 * Request logging: one structured line per request, and the request's identity on every line
 * logged while it is served.
 *
 * - **Request id.** A client's or reverse proxy's `X-Request-Id` is kept when it is a plain token
 *   (at most 64 of `A-Z a-z 0-9 . _ : -`), so one id follows a request through the proxy's log
 *   and ours; anything else is replaced by a random UUID (it could not be trusted in a log line).
 *   The id is sent back in the response's `X-Request-Id`.
 * - **Protocol identities.** Once an adapter knows who or what a request is about (the SCEP
 *   transactionID, the MDM device id and session, the portal user), it calls {@link annotate}:
 *   the fields are kept with the request (a plain object, not a child logger per field: this
 *   runs on every SCEP request) and written on its access line and on the services' lines.
 * - **Lines from the services.** The services log through the context's `log` function, which
 *   knows no request; {@link serviceLog} finds the request being served (AsyncLocalStorage,
 *   entered before the handler runs), so those lines carry its id and annotations.
 * - **The access line** (`msg: "request"`, level info; `/healthz`, `/readyz` and `/metrics` at
 *   debug, probes would drown the rest): method, route pattern, status, milliseconds, and the
 *   annotations. Never the URL as sent: a SCEP GET carries the whole pkiMessage in its query and
 *   a download link its one-time token (redactUrl). Only what the adapters choose to annotate is
 *   logged, and none of them annotate secrets.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';

/**
 * A URL as it may be logged: the one secret a portal URL carries, the token of a one-time
 * download link (`/download/<token>`), replaced.
 */
export function redactUrl(url: string): string {
  // Also where the sign-in page carries it on (`/signin?next=%2Fdownload%2F…`).
  return url.replace(/(\/|%2F)download(\/|%2F)[^?#&]*/gi, '$1download$2[redacted]');
}

/** Fastify's request serializer with {@link redactUrl} applied: every logged `req`. */
export function requestForLog(req: {
  method: string;
  url: string;
  ip?: string;
}): Record<string, unknown> {
  return { method: req.method, url: redactUrl(req.url), remoteAddress: req.ip };
}

/** What a request id from outside may look like to be kept. */
const REQUEST_ID = /^[\w.:-]{1,64}$/;

/** Routes whose access line is at debug: health probes and scrapes, several a minute. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

/** The request id: the caller's `X-Request-Id` when it is a plain token, else a fresh UUID. */
export function requestIdOf(raw: IncomingMessage): string {
  const given = raw.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

const serving = new AsyncLocalStorage<FastifyRequest>();
/** Each request's annotations. */
const notes = new WeakMap<FastifyRequest, Record<string, unknown>>();

type LogLevel = 'info' | 'warn';
type LogFn = (level: LogLevel, msg: string, fields: Record<string, unknown>) => void;

/**
 * The services' log function (context.ts `log`): through the logger of the request being
 * served, else the app's (`app()`), else — before the app exists, e.g. "created a development
 * CA" at first start — `early`.
 */
export function serviceLog(app: () => FastifyBaseLogger | undefined, early: LogFn): LogFn {
  return (level, msg, fields) => {
    const req = serving.getStore();
    if (req) return req.log[level]({ ...notes.get(req), ...fields }, msg);
    const log = app();
    if (log) log[level](fields, msg);
    else early(level, msg, fields);
  };
}

/**
 * Adds fields to `req`'s access line and to the lines the services log while serving it.
 * Values that are undefined are left out. Contract: identifiers and outcomes, never secrets.
 */
export function annotate(req: FastifyRequest, fields: object): void {
  let kept = notes.get(req);
  if (!kept) notes.set(req, (kept = {}));
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) kept[k] = v;
}

/**
 * Registers the hooks on the root instance (serve.ts, once). The app must be created with
 * `genReqId: requestIdOf` and fastify's own request logging off.
 */
export function registerRequestLog(app: FastifyInstance): void {
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  // After the body is read (body parsing runs outside any context we could enter earlier),
  // so the handler and everything it awaits see this request.
  app.addHook('preHandler', (req, _reply, done) => {
    serving.run(req, done);
  });
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url;
    const fields = {
      method: req.method,
      // Unmatched requests: the path only, redacted and cut short; the query is never logged.
      route: route ?? redactUrl((req.raw.url ?? '').split('?')[0]!.slice(0, 128)),
      status: reply.statusCode,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ip: req.ip,
      ...notes.get(req),
    };
    if (route !== undefined && PROBES.has(route)) req.log.debug(fields, 'request');
    else req.log.info(fields, 'request');
    done();
  });
}
