/**
 * The OMA-DM management endpoint over HTTP(S) (MS-MDM §2.1, omadm-reference.md §1.1): a thin
 * adapter between fastify and `mdm.ts`. It authenticates the device, then hands the body over.
 *
 * Device authentication is by the MDM client certificate issued at enrollment (design.md §3):
 * - the certificate of the TLS connection (the HTTPS listener asks for one), or
 * - a certificate forwarded by a reverse proxy in a header, only when the administrator named
 *   that header (`clientCertificateHeader`; URL-encoded PEM as nginx's
 *   `$ssl_client_escaped_cert`). Without that setting the header is ignored: anyone could set it.
 * What the certificate must be is device-auth.ts's rule; the TLS handshake proved the device
 * holds its key.
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SYNCML_CONTENT_TYPE } from '../omadm/syncml.ts';
import { decodePem } from '../pki/pem.ts';
import { deviceOfCertificate, type DeviceAuthOptions } from './device-auth.ts';
import type { MdmService, SessionIdentity } from './mdm.ts';
import { annotate } from './request-log.ts';

export const MDM_PATH = '/ManagementServer/MDM.svc';
/** MS-MDM suggests keeping messages near 512 KiB; twice that is refused unread. */
export const MAX_SYNCML_BODY = 1024 * 1024;

/** The client certificate of a request: from the TLS connection, or the configured header. */
export function clientCertificateOf(
  req: FastifyRequest,
  header: string | undefined,
): Uint8Array | undefined {
  const socket = req.raw.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate === 'function') {
    const peer = socket.getPeerCertificate();
    if (peer?.raw) return new Uint8Array(peer.raw);
  }
  if (header === undefined) return undefined;
  const value = req.headers[header];
  if (typeof value !== 'string' || value === '') return undefined;
  try {
    return decodePem(decodeURIComponent(value)).find((b) => b.label === 'CERTIFICATE')?.der;
  } catch {
    return undefined; // not URL-encoded PEM: no certificate, so 401
  }
}

export function registerMdm(
  app: FastifyInstance,
  service: MdmService,
  auth: DeviceAuthOptions & {
    /** Header a trusted reverse proxy puts the client certificate in (lowercase), if any. */
    readonly clientCertificateHeader?: string | undefined;
  },
): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // The body is read as text whatever the client claims; the SyncML parser judges it.
    scope.addContentTypeParser(
      '*',
      { parseAs: 'string', bodyLimit: MAX_SYNCML_BODY },
      (_req, body, done) => done(null, body),
    );
    scope.post(MDM_PATH, async (req, reply) => {
      // A certificate, when presented, must be a valid MDM certificate; without one the device
      // authenticates inside SyncML (MD5 digest), which the service checks.
      const der = clientCertificateOf(req, auth.clientCertificateHeader);
      let identity: SessionIdentity = {};
      if (der) {
        const who = await deviceOfCertificate(der, auth);
        if ('refused' in who) return reply.code(403).type('text/plain').send(`${who.refused}\n`);
        identity = { certificateDevice: who.device };
        annotate(req, { deviceId: who.device.id });
      }
      const body = typeof req.body === 'string' ? req.body : '';
      const answer = await service.session(body, identity);
      if (answer.status === 200 && answer.about) annotate(req, answer.about);
      if (answer.status !== 200)
        return reply.code(answer.status).type('text/plain').send(`${answer.message}\n`);
      return reply.code(200).header('content-type', SYNCML_CONTENT_TYPE).send(answer.body);
    });
  });
}
