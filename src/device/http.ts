/**
 * The device's one HTTP(S) client, for every server it talks to (MDM enrollment, management
 * sessions, SCEP, downloads): undici with the trust a Windows device has — the certificates of
 * its Root store (where enrollment puts the MDM server's root) besides the public roots Node
 * ships — an optional client certificate, a time limit and a cap on the reply's size.
 *
 * undici rather than node:http: a fleet of simulated devices makes ten requests a device, and
 * the client's share of them is CPU the server under test does not get. Measured on this
 * machine (keep-alive, 64 in flight, 5 KB up, 3 KB down, server in another process): node:http
 * 68–90 µs of client CPU a request, undici 28–37 µs.
 */
import { rootCertificates } from 'node:tls';
import { Agent, errors, request, type Dispatcher } from 'undici';
import { scepHttpRequest, transportError, type ScepTransport } from '../scep/client.ts';
import { DeviceError, type DeviceErrorCode } from './errors.ts';

export interface HttpOptions {
  readonly method: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Extra PEM roots trusted for HTTPS (the device Root store), besides Node's public roots. */
  readonly ca?: readonly string[];
  /** TLS client certificate (PEM) and its key (PEM). */
  readonly clientCertificate?: { readonly cert: string; readonly key: string };
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
  /** The code of a network failure or timeout (default `ERR_DEVICE_MDM_UNREACHABLE`). */
  readonly failure?: DeviceErrorCode;
  /** The code of a reply over `maxBytes` (default: `failure`'s). */
  readonly tooLarge?: DeviceErrorCode;
}

export interface HttpResponse {
  readonly status: number;
  /** Header names in lower case; a repeated header's values joined by ", " (RFC 9110 §5.3). */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Idle connections are kept this long for the next request to the same server. */
const KEEP_ALIVE_MS = 10_000;
/** HTTPS agents kept, by trust and client certificate (a device has one or two of each). */
const MAX_TLS_AGENTS = 16;

/** Plain HTTP: one agent, its connections reused across requests to each origin. */
let plain: Agent | undefined;
/** HTTPS: an agent per trust (public roots + the given ones) and client certificate. */
const tlsAgents = new Map<string, Agent>();

function agentFor(https: boolean, o: HttpOptions): Dispatcher {
  if (!https) return (plain ??= new Agent({ keepAliveTimeout: KEEP_ALIVE_MS }));
  const ca = o.ca ?? [];
  const key = `${ca.join('')}\0${o.clientCertificate?.cert ?? ''}\0${o.clientCertificate?.key ?? ''}`;
  let agent = tlsAgents.get(key);
  if (!agent) {
    agent = new Agent({
      keepAliveTimeout: KEEP_ALIVE_MS,
      connect: {
        ...(ca.length ? { ca: [...rootCertificates, ...ca] } : {}),
        ...(o.clientCertificate
          ? { cert: o.clientCertificate.cert, key: o.clientCertificate.key }
          : {}),
      },
    });
    if (tlsAgents.size >= MAX_TLS_AGENTS) {
      const [oldest, old] = tlsAgents.entries().next().value!;
      tlsAgents.delete(oldest);
      void old.close();
    }
    tlsAgents.set(key, agent);
  }
  return agent;
}

/** A timeout of undici's (connecting, waiting for the headers, between body chunks). */
function timedOut(e: unknown): boolean {
  return (
    e instanceof errors.ConnectTimeoutError ||
    e instanceof errors.HeadersTimeoutError ||
    e instanceof errors.BodyTimeoutError
  );
}

/**
 * Sends one request. A network failure, a timeout or an oversized reply is a DeviceError
 * (`ERR_DEVICE_MDM_UNREACHABLE` unless `failure`/`tooLarge` say otherwise) naming the URL, with
 * the network's error (a TLS verification code among them) as its cause; any HTTP status is
 * returned as it is. Redirects are not followed.
 */
export async function httpRequestBytes(url: string, o: HttpOptions): Promise<HttpResponse> {
  const maxBytes = o.maxBytes ?? 4 * 1024 * 1024;
  const timeout = o.timeoutMs ?? 60_000;
  const unreachable = (e: unknown) => {
    const cause = (e as { cause?: unknown }).cause ?? e;
    // undici wraps a socket's failure (a refused connection, a TLS verification) as its cause.
    const why = timedOut(e) ? 'no answer in time' : ((cause as Error).message ?? String(cause));
    return new DeviceError(
      o.failure ?? 'ERR_DEVICE_MDM_UNREACHABLE',
      `cannot reach ${url}: ${why}`,
      {
        cause: timedOut(e) ? e : cause,
      },
    );
  };
  let res: Dispatcher.ResponseData;
  try {
    res = await request(url, {
      dispatcher: agentFor(url.startsWith('https:'), o),
      method: o.method,
      headers: { ...o.headers },
      body: o.body === undefined ? null : typeof o.body === 'string' ? o.body : Buffer.from(o.body),
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
  } catch (e) {
    throw unreachable(e);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) {
        // Drop the connection: the rest of the reply is not read.
        res.body.destroy();
        throw new DeviceError(
          o.tooLarge ?? o.failure ?? 'ERR_DEVICE_MDM_UNREACHABLE',
          `${url}: the reply is larger than ${maxBytes} bytes`,
        );
      }
      chunks.push(chunk);
    }
  } catch (e) {
    if (e instanceof DeviceError) throw e;
    throw unreachable(e);
  }
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers))
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
  return { status: res.statusCode, headers, body: Buffer.concat(chunks, size) };
}

/**
 * The device's SCEP transport to `url` (the requests as the SCEP client's scepHttpRequest makes
 * them), over {@link httpRequestBytes} with the device's trust: `ca()` is read at each request,
 * so a root installed meanwhile is trusted at once. A network failure or timeout rejects as the
 * client's ERR_SCEP_CLIENT_TRANSPORT.
 */
export function deviceScepTransport(
  url: string,
  ca: () => readonly string[],
  timeoutMs: number,
): ScepTransport {
  return async (operation) => {
    const http = scepHttpRequest(url, operation);
    try {
      const res = await httpRequestBytes(http.url, {
        method: http.method,
        ...(http.body
          ? { body: http.body, headers: { 'content-type': 'application/x-pki-message' } }
          : {}),
        // The device's roots matter to HTTPS only; reading them encodes every one as PEM.
        ...(http.url.startsWith('https:') ? { ca: ca() } : {}),
        timeoutMs,
      });
      return { status: res.status, contentType: res.headers['content-type'] ?? '', body: res.body };
    } catch (e) {
      throw transportError(operation.operation, e);
    }
  };
}
