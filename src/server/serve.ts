/**
 * `certpost serve`: the HTTP server. It opens the data directory (creating the store and a
 * development CA on first start), mounts SCEP at `/scep` and the CRL at `/crl`, answers
 * `/healthz`, logs structured JSON lines (one says `listening`, which tests and scripts wait
 * for), and on SIGINT/SIGTERM stops accepting, finishes in-flight requests, and closes the store.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import pkg from '../../package.json' with { type: 'json' };
import { openContext, type ServerContext } from './context.ts';
import { registerScep } from './scep-http.ts';

export interface ServeOptions {
  readonly dataDir: string;
  readonly listen: string;
  readonly database?: string | undefined;
  readonly staticChallenge?: string | undefined;
  readonly logLevel?: string;
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
export function buildApp(context: ServerContext, logLevel = 'info'): FastifyInstance {
  const app = Fastify({ logger: { level: logLevel }, disableRequestLogging: true });
  app.get('/healthz', async () => ({ status: 'ok', version: pkg.version }));
  app.get('/crl', async (_req, reply) =>
    reply
      .header('content-type', 'application/pkix-crl')
      .send(Buffer.from(await context.enrollment.currentCrl())),
  );
  registerScep(app, context.scep);
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
    createCa: true,
    log: (level, msg, fields) => logTo.app?.log[level](fields, msg),
  });
  const app = buildApp(context, o.logLevel);
  logTo.app = app;
  const address = await app.listen({ host, port });
  return { app, url: address, context };
}

/** Runs until SIGINT/SIGTERM, then closes the listener and lets in-flight requests finish. */
export async function serve(o: ServeOptions): Promise<void> {
  const { app, url } = await startServer(o);
  app.log.info({ url, dataDir: o.dataDir, version: pkg.version }, 'listening');
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      app.log.info({ signal }, 'shutting down');
      void app.close().then(() => resolve());
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
