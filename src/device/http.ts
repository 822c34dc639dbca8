/**
 * The device's one HTTP(S) client, for every server it talks to (MDM enrollment, management
 * sessions, SCEP): Node's http/https with the trust a Windows device has — the certificates of
 * its Root store (where enrollment puts the MDM server's root) besides the public roots Node
 * ships — an optional client certificate, a time limit and a cap on the reply's size.
 */
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { rootCertificates } from 'node:tls';
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
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Sends one request. A network failure, a timeout or an oversized reply is a DeviceError
 * (`ERR_DEVICE_MDM_UNREACHABLE` unless `failure`/`tooLarge` say otherwise) naming the URL, with
 * Node's error (a TLS verification code among them) as its cause; any HTTP status is returned
 * as it is. Redirects are not followed.
 */
export function httpRequestBytes(url: string, o: HttpOptions): Promise<HttpResponse> {
  const maxBytes = o.maxBytes ?? 4 * 1024 * 1024;
  const https = url.startsWith('https:');
  return new Promise((resolve, reject) => {
    const fail = (e: Error) =>
      reject(
        e instanceof DeviceError
          ? e
          : new DeviceError(
              o.failure ?? 'ERR_DEVICE_MDM_UNREACHABLE',
              `cannot reach ${url}: ${e.message}`,
              {
                cause: e,
              },
            ),
      );
    const req = (https ? httpsRequest : httpRequest)(
      url,
      {
        method: o.method,
        headers: { ...o.headers },
        timeout: o.timeoutMs ?? 60_000,
        ...(https && o.ca?.length ? { ca: [...rootCertificates, ...o.ca] } : {}),
        ...(https && o.clientCertificate
          ? { cert: o.clientCertificate.cert, key: o.clientCertificate.key }
          : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size <= maxBytes) return void chunks.push(c);
          // Fail first, then drop the connection: once the reply is flowing, an error passed to
          // destroy() would surface on the socket, where nobody listens.
          fail(
            new DeviceError(
              o.tooLarge ?? o.failure ?? 'ERR_DEVICE_MDM_UNREACHABLE',
              `${url}: the reply is larger than ${maxBytes} bytes`,
            ),
          );
          req.destroy();
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', fail);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer in time')));
    req.on('error', fail);
    req.end(o.body === undefined ? undefined : Buffer.from(o.body));
  });
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
  return async (request) => {
    const http = scepHttpRequest(url, request);
    try {
      const res = await httpRequestBytes(http.url, {
        method: http.method,
        ...(http.body
          ? { body: http.body, headers: { 'content-type': 'application/x-pki-message' } }
          : {}),
        ca: ca(),
        timeoutMs,
      });
      const type = res.headers['content-type'];
      return { status: res.status, contentType: type ?? '', body: res.body };
    } catch (e) {
      throw transportError(request.operation, e);
    }
  };
}
