/**
 * SCEP over HTTP (RFC 8894 §4.1): the thin adapter between fastify and `scep/service.ts`.
 * It does only what HTTP needs: the `operation` dispatch, lenient base64 for GET
 * PKIOperation, caps on the body (413) and URL (414) sizes, content types, and status codes.
 * Paths: `/scep`, and the same with `/pkiclient.exe` appended (Windows and Cisco append it);
 * `message=default` (Windows' GetCACert) is ignored.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isPkiError } from '../pki/errors.ts';
import { decodeGetMessage } from '../scep/get-message.ts';
import type { ScepResponse, ScepService } from '../scep/service.ts';
import { annotate } from './request-log.ts';

/** A pkiMessage is a few kilobytes; anything near this is hostile. */
export const MAX_SCEP_BODY = 256 * 1024;

/**
 * Longest URL a GET is served with: twice the largest real GET PKIOperation (an RSA-4096
 * PKCSReq, about 6.5 KB of percent-encoded base64); longer is 414. Node's own limit on the
 * request line and headers (16 KiB, `maxHeaderSize`) answers 431 before anything here runs.
 */
export const MAX_SCEP_URL = 12 * 1024;

function send(reply: FastifyReply, r: ScepResponse): FastifyReply {
  return reply
    .code(200)
    .header('content-type', r.contentType)
    .send(Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength));
}

export function registerScep(app: FastifyInstance, service: ScepService, prefix = '/scep'): void {
  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    if ((req.raw.url?.length ?? 0) > MAX_SCEP_URL)
      return reply.code(414).type('text/plain').send(`URL longer than ${MAX_SCEP_URL} bytes\n`);
    const rawQuery = req.raw.url?.split('?')[1] ?? '';
    const operation = new URLSearchParams(rawQuery).get('operation') ?? '';
    annotate(req, { operation: operation.slice(0, 32) });
    switch (operation) {
      case 'GetCACaps':
        return send(reply, service.getCaCaps());
      case 'GetCACert':
        return send(reply, service.getCaCert());
      case 'GetNextCACert': {
        const next = service.getNextCaCert;
        if (!next) return reply.code(404).type('text/plain').send('no next CA certificate\n');
        return send(reply, await next());
      }
      case 'PKIOperation': {
        let body: Uint8Array | undefined;
        if (req.method === 'POST')
          body = req.body instanceof Buffer ? new Uint8Array(req.body) : undefined;
        else body = decodeGetMessage(rawQuery);
        if (!body || body.length === 0)
          return reply.code(400).type('text/plain').send('PKIOperation needs a message\n');
        try {
          const r = await service.pkiOperation(body, { peer: req.ip });
          if (r.outcome) annotate(req, r.outcome);
          return send(reply, r);
        } catch (e) {
          if (isPkiError(e))
            return reply.code(400).type('text/plain').send('not a SCEP pkiMessage\n');
          throw e;
        }
      }
      default:
        return reply.code(400).type('text/plain').send(`unknown SCEP operation "${operation}"\n`);
    }
  };

  void app.register(async (scope) => {
    // SCEP bodies are raw DER whatever Content-Type the client claims (micromdm sends
    // application/octet-stream, the RFC says application/x-pki-message).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: MAX_SCEP_BODY },
      (_req, body, done) => done(null, body),
    );

    for (const path of [prefix, `${prefix}/pkiclient.exe`]) {
      scope.get(path, handle);
      scope.post(path, handle);
    }
  });
}
