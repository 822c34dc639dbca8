/**
 * Who a device is, from its MDM client certificate (design.md §3): one rule for every place a
 * device proves itself with it — the management endpoint's TLS client certificate (mdm-http.ts)
 * and the signature of an MS-WSTEP renewal (mde2.ts).
 *
 * The certificate must be one this CA issued for MDM (looked up by its SHA-1 in the store, so
 * its bytes are ours), not revoked, valid now, and the current certificate of an enrolled device
 * whose id is its CN. Possession of its key is the caller's part (the TLS handshake, a verified
 * signature).
 */
import { createHash } from 'node:crypto';
import { nameAttribute, parseCertificate } from '../pki/x509.ts';
import type { CertificateStore, DeviceRecord, DeviceStore } from '../store/types.ts';

/** Issuance profile of MDM client certificates (enrollment issues them). */
export const MDM_CLIENT_PROFILE = 'mdm-client';

const CN = '2.5.4.3';

export interface DeviceAuthOptions {
  readonly store: Pick<CertificateStore, 'getCertificateBySha1'> & Pick<DeviceStore, 'getDevice'>;
  readonly now?: () => Date;
}

/** The enrolled device a client certificate (DER) belongs to, or why not. */
export async function deviceOfCertificate(
  der: Uint8Array,
  o: DeviceAuthOptions,
): Promise<
  { readonly device: DeviceRecord; readonly serial: string } | { readonly refused: string }
> {
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
  return { device, serial: record.serial };
}
