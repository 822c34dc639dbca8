/**
 * The OMA-DM management endpoint over HTTP(S) (MS-MDM §2.1, omadm-reference.md §1.1): a thin
 * adapter between fastify and `mdm.ts`. It authenticates the device, then hands the body over.
 *
 * Device authentication is by the MDM client certificate issued at enrollment (design.md §3):
 * - the certificate of the TLS connection (the HTTPS listener asks for one), or
 * - a certificate forwarded by a reverse proxy in a header, only when the administrator named
 *   that header (`clientCertificateHeader`; URL-encoded PEM as nginx's
 *   `$ssl_client_escaped_cert`). Without that setting the header is ignored: anyone could set it.
 * The certificate must be one this CA issued for MDM (looked up by its SHA-1 in the store, so
 * its bytes are ours), not revoked, not expired, and the current certificate of an enrolled
 * device whose id is its CN. The TLS handshake proved the device holds its key.
 */
import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SYNCML_CONTENT_TYPE } from '../omadm/syncml.ts';
import { decodePem } from '../pki/pem.ts';
import { nameAttribute, parseCertificate } from '../pki/x509.ts';
import type { CertificateStore, DeviceStore } from '../store/types.ts';
import type { MdmService } from './mdm.ts';

export const MDM_PATH = '/ManagementServer/MDM.svc';
/** Issuance profile of MDM client certificates (enrollment issues them). */
export const MDM_CLIENT_PROFILE = 'mdm-client';
/** MS-MDM suggests keeping messages near 512 KiB; twice that is refused unread. */
export const MAX_SYNCML_BODY = 1024 * 1024;

const CN = '2.5.4.3';

export interface DeviceAuthOptions {
  readonly store: Pick<CertificateStore, 'getCertificateBySha1'> & Pick<DeviceStore, 'getDevice'>;
  readonly now?: () => Date;
  /** Header a trusted reverse proxy puts the client certificate in (lowercase), if any. */
  readonly clientCertificateHeader?: string | undefined;
}

/** The enrolled device a client certificate (DER) belongs to, or why not. */
export async function deviceOfCertificate(
  der: Uint8Array,
  o: DeviceAuthOptions,
): Promise<{ readonly deviceId: string } | { readonly refused: string }> {
  const sha1 = createHash('sha1').update(der).digest('hex');
  const record = await o.store.getCertificateBySha1(sha1);
  if (!record || record.profile !== MDM_CLIENT_PROFILE)
    return { refused: 'the client certificate is not an MDM certificate of this server' };
  const now = (o.now ?? (() => new Date()))();
  if (record.revokedAt) return { refused: 'the client certificate is revoked' };
  if (record.notAfter <= now || record.notBefore > now)
    return { refused: 'the client certificate is not valid now' };
  const deviceId = nameAttribute(parseCertificate(der).subject, CN);
  const device = deviceId === undefined ? undefined : await o.store.getDevice(deviceId);
  if (!device || device.unenrolledAt || device.certificateSerial !== record.serial)
    return { refused: 'the client certificate is not the current one of an enrolled device' };
  return { deviceId: device.id };
}

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
  auth: DeviceAuthOptions,
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
      let certificateDevice: string | undefined;
      if (der) {
        const who = await deviceOfCertificate(der, auth);
        if ('refused' in who) return reply.code(403).type('text/plain').send(`${who.refused}\n`);
        certificateDevice = who.deviceId;
      }
      const body = typeof req.body === 'string' ? req.body : '';
      const answer = await service.session(
        body,
        certificateDevice === undefined ? {} : { certificateDevice },
      );
      if (answer.status !== 200)
        return reply.code(answer.status).type('text/plain').send(`${answer.message}\n`);
      return reply.code(200).header('content-type', SYNCML_CONTENT_TYPE).send(answer.body);
    });
  });
}
