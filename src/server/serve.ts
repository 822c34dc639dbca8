/**
 * `certpost serve`: the HTTP server. It opens the data directory (creating the store and a
 * development CA on first start), mounts SCEP at `/scep` and the CRL at `/crl`, answers
 * `/healthz` (alive) and `/readyz` (the store answers), `/metrics` (Prometheus, with an API
 * token), logs structured JSON lines (one says `listening`, which tests and scripts wait
 * for), and on SIGINT/SIGTERM stops accepting, finishes in-flight requests, and closes the store.
 */
import cluster from 'node:cluster';
import { hostname } from 'node:os';
import { isLoopback } from '../util/loopback.ts';
import Fastify, { LogController, type FastifyError, type FastifyInstance } from 'fastify';
import { isStoreUnavailable } from '../store/types.ts';
import { sendUnavailable } from './unavailable.ts';
import pkg from '../../package.json' with { type: 'json' };
import { openContext, type ServerContext } from './context.ts';
import { registerAdminApi } from './admin-api.ts';
import { registerMde2 } from './mde2-http.ts';
import { registerMetrics } from './metrics.ts';
import { registerMdm } from './mdm-http.ts';
import { registerScep } from './scep-http.ts';
import { registerPortal, type PortalOptions } from './portal/index.ts';
import { serverTls, type TlsMaterial } from './tls.ts';
import { registerRequestLog, requestForLog, requestIdOf, serviceLog } from './request-log.ts';
import type { MailSettings } from '../mail/settings.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly listen: string;
  readonly database?: string | undefined;
  readonly staticChallenge?: string | undefined;
  /** Default: `http://HOST:PORT` of `listen` when the port is fixed. */
  readonly publicUrl?: string | undefined;
  readonly logLevel?: string;
  /** User PIN of the PKCS#11 token holding the CA keys, if they are in one. */
  readonly pkcs11Pin?: string | undefined;
  /**
   * Serve HTTPS with a certificate of our CA (tls.ts), asking clients for a certificate: the
   * MDM endpoint authenticates devices by it. Windows requires HTTPS for MDM.
   */
  readonly tls?: boolean | undefined;
  /** Header a trusted reverse proxy forwards the client certificate in (URL-encoded PEM). */
  readonly clientCertificateHeader?: string | undefined;
  /**
   * Windows enrollment: `token` needs an enrollment token (certpost mdm token create); `open`
   * takes any credentials. Default: open when listening on loopback only (a development server,
   * so that `certpost fleet` works without setup), token otherwise.
   */
  readonly enrollment?: 'open' | 'token' | undefined;
  /** The server's clock (tests move it: renewal thresholds, expiry). */
  readonly now?: () => Date;
  /** How often devices list their stores (MDM inventory); default a day. */
  readonly inventoryIntervalMs?: number | undefined;
  /** First wait before a failed SCEP delivery is sent again; default 15 minutes. */
  readonly mdmRetryMs?: number | undefined;
  /** The site's mail relay and attachment policy, checked already (mail/settings.ts). */
  readonly mail?: MailSettings | undefined;
  /** The portal's limits, timeouts and password hashing (tests make them small). */
  readonly portal?: Omit<PortalOptions, 'now'> | undefined;
  /** Reverse proxies whose X-Forwarded-For/-Proto are believed (addresses, CIDR ranges). */
  readonly trustProxy?: readonly string[] | undefined;
}

/**
 * The URL clients reach `host:port` at; a wildcard address (0.0.0.0, ::) reaches nobody, so
 * this machine's name stands in for it.
 */
export function urlOf(scheme: 'http' | 'https', host: string, port: number): string {
  const name = host === '0.0.0.0' || host === '::' ? hostname() : host;
  return `${scheme}://${name.includes(':') ? `[${name}]` : name}:${port}`;
}

export interface AppOptions {
  readonly logLevel?: string | undefined;
  /** Where log lines go (default standard output); tests capture them. */
  readonly logStream?: { write(line: string): void } | undefined;
  /** The portal's clock, limits and session timeouts. */
  readonly portal?: PortalOptions | undefined;
  readonly https?: TlsMaterial | undefined;
  readonly clientCertificateHeader?: string | undefined;
  /**
   * Reverse proxies whose X-Forwarded-For/-Proto are believed (fastify `trustProxy`): then
   * `req.ip`, which the sign-in and SCEP limits and the logs use, is the client's address.
   */
  readonly trustProxy?: readonly string[] | undefined;
}

/** Parses `host:port` (IPv6 as `[::1]:port`). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new Error(`--listen must be host:port, got "${listen}"`);
  return { host: m[1] ?? m[2]!, port };
}

export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly context: ServerContext;
}

/** Builds the app around an opened context (tests use this with `app.inject`). */
export function buildApp(context: ServerContext, o: AppOptions = {}): FastifyInstance {
  // Fastify's two lines per request are off: request-log.ts writes one, with the protocol ids.
  const common = {
    genReqId: requestIdOf,
    ...(o.trustProxy?.length ? { trustProxy: [...o.trustProxy] } : {}),
    logger: {
      level: o.logLevel ?? 'info',
      // No URL is logged as it came: a one-time download link's token is redacted.
      serializers: { req: requestForLog },
      ...(o.logStream ? { stream: o.logStream } : {}),
    },
    logController: new LogController({ disableRequestLogging: true }),
  };
  const app = (
    o.https
      ? // A client certificate is asked for, never required: SCEP, enrollment and the portal
        // serve clients without one; the MDM endpoint refuses a request that has none.
        Fastify({
          ...common,
          https: { ...o.https, requestCert: true, rejectUnauthorized: false },
        })
      : Fastify(common)
  ) as FastifyInstance;
  registerRequestLog(app);
  // A database that is down, restarting or full answers 503 with Retry-After on every route:
  // clients (SCEP, OMA-DM, the API) try again later instead of taking it as a refusal. Any
  // other error keeps fastify's own handling.
  app.setErrorHandler(async (e: FastifyError, req, reply) => {
    if (!isStoreUnavailable(e)) throw e;
    req.log.warn(
      { code: (e as { code?: string }).code },
      `the database is unavailable: ${e.message}`,
    );
    return sendUnavailable(reply, false);
  });
  app.get('/healthz', async () => ({ status: 'ok', version: pkg.version }));
  app.get('/crl', async (_req, reply) =>
    reply
      .header('content-type', 'application/pkix-crl')
      .send(Buffer.from(await context.enrollment.currentCrl())),
  );
  registerScep(app, context.scep);
  registerAdminApi(app, context);
  registerMetrics(app, context.metrics, context);
  registerMde2(app, context.mde);
  registerMdm(app, context.mdm, {
    store: context.store,
    clientCertificateHeader: o.clientCertificateHeader?.toLowerCase(),
  });
  registerPortal(app, context, o.portal);
  app.addHook('onClose', async () => context.close());
  return app;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const { host, port } = parseListen(o.listen);
  // The context logs through the app's logger, which exists only once the context does.
  const logTo: { app?: FastifyInstance } = {};
  const context = await openContext({
    dataDir: o.dataDir,
    database: o.database,
    staticChallenge: o.staticChallenge,
    publicUrl:
      o.publicUrl ?? (port !== 0 ? urlOf(o.tls ? 'https' : 'http', host, port) : undefined),
    createCa: true,
    pkcs11Pin: o.pkcs11Pin,
    openEnrollment: (o.enrollment ?? (isLoopback(host) ? 'open' : 'token')) === 'open',
    ...(o.now ? { now: o.now } : {}),
    inventoryIntervalMs: o.inventoryIntervalMs,
    mdmRetryMs: o.mdmRetryMs,
    mail: o.mail,
    // Before the app (and its logger) exists lines are printed directly in the same JSON shape.
    log: serviceLog(
      () => logTo.app?.log,
      (level, msg, fields) => lifecycle(msg, { level: level === 'warn' ? 40 : 30, ...fields }),
    ),
  });
  const https = o.tls
    ? await serverTls({
        dataDir: o.dataDir,
        issuing: context.ca.issuing,
        names: tlsNames(host, o.publicUrl),
        enrollment: context.enrollment,
      })
    : undefined;
  const app = buildApp(context, {
    logLevel: o.logLevel,
    https,
    clientCertificateHeader: o.clientCertificateHeader,
    trustProxy: o.trustProxy,
    portal: { now: o.now, ...o.portal },
  });
  logTo.app = app;
  const address = await app.listen({ host, port });
  // A port the system chose is known only now: devices are told this URL. A wildcard address
  // is no place to send a device: this machine's name stands in, and --public-url should.
  if (context.urls.public === undefined) {
    const wildcard = host === '0.0.0.0' || host === '::';
    context.urls.public = wildcard
      ? urlOf(o.tls ? 'https' : 'http', host, Number(new URL(address).port))
      : address;
    if (wildcard)
      app.log.warn(
        { publicUrl: context.urls.public },
        'listening on every address without --public-url: devices are told this machine`s name',
      );
  }
  if (context.mail)
    app.log.info(
      { relay: context.mail.mailer.relay, blocked: [...context.mail.policy.blocked] },
      'certificate mail goes through this relay',
    );
  if ((o.enrollment ?? (isLoopback(host) ? 'open' : 'token')) === 'open')
    app.log.warn(
      { enrollment: 'open' },
      'Windows enrollment is open: any device may enroll without a token (--enrollment token to refuse)',
    );
  return { app, url: address, context };
}

/** Names the TLS certificate must carry: the listen host (or this machine's), the public URL's. */
function tlsNames(host: string, publicUrl: string | undefined): string[] {
  const names = new Set<string>();
  if (publicUrl) names.add(new URL(publicUrl).hostname.replace(/^\[|\]$/g, ''));
  if (host === '0.0.0.0' || host === '::') names.add(hostname()).add('localhost');
  else names.add(host);
  return [...names];
}

/**
 * Lifecycle events are printed whatever the log level: scripts and tests wait for the
 * `listening` line (a stable interface). Same JSON shape as the logger's lines.
 */
function lifecycle(msg: string, fields: Record<string, unknown>): void {
  process.stdout.write(
    `${JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg, ...fields })}\n`,
  );
}

/**
 * Runs until SIGINT/SIGTERM. With `workers > 1` it runs that many server processes sharing the
 * listening socket (node:cluster) and the store, so JavaScript runs on every core; the primary
 * creates the data directory and CA before forking, restarts a worker that dies, and on a signal
 * stops every worker, each finishing its in-flight requests.
 */
export async function serve(o: ServeOptions & { readonly workers?: number }): Promise<void> {
  const workers = o.workers ?? 1;
  if (workers <= 1 || cluster.isWorker) return serveOne(o);
  const first = await openContext({
    dataDir: o.dataDir,
    database: o.database,
    createCa: true,
    pkcs11Pin: o.pkcs11Pin,
  });
  try {
    // Made once here, so the workers read it rather than race to issue it.
    if (o.tls)
      await serverTls({
        dataDir: o.dataDir,
        issuing: first.ca.issuing,
        names: tlsNames(parseListen(o.listen).host, o.publicUrl),
        enrollment: first.enrollment,
      });
  } finally {
    await first.close();
  }
  let stopping = false;
  const url = await new Promise<string>((resolve) => {
    let ready = 0;
    cluster.on('listening', (_w, address) => {
      if (++ready === workers)
        resolve(
          `${o.tls ? 'https' : 'http'}://${address.address?.includes(':') ? `[${address.address}]` : address.address}:${address.port}`,
        );
    });
    for (let i = 0; i < workers; i++) cluster.fork();
  });
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    lifecycle('worker died, restarting', { pid: w.process.pid, code, signal });
    cluster.fork();
  });
  lifecycle('listening', { url, dataDir: o.dataDir, version: pkg.version, workers });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stopping = true;
      lifecycle('shutting down', { signal });
      const alive = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
      let left = alive.length;
      if (left === 0) resolve();
      for (const w of alive) {
        w.once('exit', () => --left === 0 && resolve());
        w.kill('SIGTERM');
      }
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** One server process: until SIGINT/SIGTERM (or, as a worker, until its primary is gone). */
async function serveOne(o: ServeOptions): Promise<void> {
  const { app, url } = await startServer(o);
  if (!cluster.isWorker) lifecycle('listening', { url, dataDir: o.dataDir, version: pkg.version });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      if (!cluster.isWorker) lifecycle('shutting down', { signal });
      // A worker's IPC channel keeps its event loop alive: drop it once the server is closed.
      void app.close().then(() => {
        if (cluster.isWorker && process.connected) process.disconnect();
        resolve();
      });
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    // A worker whose primary was killed must not go on serving on its own.
    if (cluster.isWorker) process.once('disconnect', () => stop('primary gone'));
  });
}
