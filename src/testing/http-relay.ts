/**
 * Test kit: an HTTP relay on 127.0.0.1 in front of a server, for tests that must see or hold
 * what a client (a separate process included) sends. Each request is forwarded with its
 * method, path, query, body and content type to the same path on `target`, and answered with
 * the target's status, content type and body; both are recorded.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RelayedExchange {
  readonly method: string;
  /** Path and query, as the client sent them. */
  readonly url: string;
  readonly body: Uint8Array;
  readonly status: number;
  readonly response: Uint8Array;
}

export interface HttpRelay {
  /** `http://127.0.0.1:PORT`: append the target's path. */
  readonly url: string;
  /** Every completed exchange, in order. */
  readonly exchanges: readonly RelayedExchange[];
  close(): Promise<void>;
}

/**
 * Starts a relay to `target` (an origin such as `http://127.0.0.1:8080`). `holdMs` may delay a
 * request before it is forwarded (default: none), to open a known window mid-exchange.
 */
export async function startHttpRelay(
  target: string,
  o: { readonly holdMs?: (method: string, url: string) => number } = {},
): Promise<HttpRelay> {
  const exchanges: RelayedExchange[] = [];
  const relay = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const method = req.method ?? 'GET';
      const url = req.url ?? '/';
      const body = Buffer.concat(chunks);
      const hold = o.holdMs?.(method, url) ?? 0;
      if (hold > 0) await new Promise((r) => setTimeout(r, hold));
      try {
        const upstream = await fetch(`${target}${url}`, {
          method,
          ...(method === 'POST' ? { body } : {}),
          headers: { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' },
        });
        const response = new Uint8Array(await upstream.arrayBuffer());
        exchanges.push({
          method,
          url,
          body: new Uint8Array(body),
          status: upstream.status,
          response,
        });
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? '',
        });
        res.end(response);
      } catch (e) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`relay: ${(e as Error).message}`);
      }
    });
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  const { port } = relay.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exchanges,
    close: () => new Promise((r) => relay.close(() => r())),
  };
}
