/**
 * The server's composition root (placeholder until the CA and SCEP land, issue 3): it binds
 * the configured address, answers `/healthz`, and logs one structured `listening` line that
 * tests and scripts wait for. The data directory is created when missing.
 */
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import pkg from '../../package.json' with { type: 'json' };

export interface ServeOptions {
  readonly dataDir: string;
  readonly listen: string;
}

/** One JSON log line on stdout (structured logs; secrets are never passed here). */
export function log(
  level: 'info' | 'warn' | 'error',
  msg: string,
  fields: Record<string, unknown> = {},
): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`,
  );
}

/** Parses `host:port` (IPv6 as `[::1]:port`). */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new Error(`--listen must be host:port, got "${listen}"`);
  return { host: m[1] ?? m[2]!, port };
}

export async function startServer(o: ServeOptions): Promise<{ server: Server; url: string }> {
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const { host, port } = parseListen(o.listen);
  const server = createServer((req, res) => {
    if (req.url === '/healthz') {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ status: 'ok', version: pkg.version }));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`;
  return { server, url };
}

/** Runs until SIGINT/SIGTERM, then closes the listener and lets in-flight requests finish. */
export async function serve(o: ServeOptions): Promise<void> {
  const { server, url } = await startServer(o);
  log('info', 'listening', { url, dataDir: o.dataDir, version: pkg.version });
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log('info', 'shutting down', { signal });
      server.close(() => resolve());
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
