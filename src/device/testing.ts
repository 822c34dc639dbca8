/**
 * Helpers for tests that talk to a device as an MDM server would: build a server message
 * around command XML, read the statuses and results of the reply, and drive a SCEP profile
 * (the Install Atomic, the background work, the outcome nodes) against any SCEP server; and
 * client identities with chosen dates, EKUs and template for certificate selection.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  authorityKeyIdentifier,
  basicConstraints,
  buildCertificate,
  extKeyUsage,
  keyUsage,
} from '../ca/certificate.ts';
import { parseRfc4514 } from '../ca/name.ts';
import { enc } from '../pki/der.ts';
import { parsePrivateKeyPem } from '../pki/keys.ts';
import { EXT } from '../pki/oids.ts';
import { encodePem } from '../pki/pem.ts';
import { parseCertificate } from '../pki/x509.ts';
import { parseSyncML, type Command } from '../omadm/syncml.ts';
import { fetchTransport, type ScepTransport, type ScepTransportRequest } from '../scep/client.ts';
import type { DeviceAgent } from './agent.ts';

let session = 0;

/** A server → device SyncML message around `body` (commands as XML). */
export function serverMessage(
  body: string,
  o: { sessionId?: string; msgId?: number } = {},
): string {
  return `<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>${o.sessionId ?? String(++session)}</SessionID><MsgID>${o.msgId ?? 1}</MsgID><Target><LocURI>device</LocURI></Target><Source><LocURI>https://mdm.example.test/ManagementServer/MDM.svc</LocURI></Source></SyncHdr><SyncBody>${body}<Final/></SyncBody></SyncML>`;
}

let cmdId = 100;
const id = () => String(++cmdId);
const meta = (format?: string) =>
  format ? `<Meta><Format xmlns="syncml:metinf">${format}</Format></Meta>` : '';
const xmlText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export const cmd = {
  add: (uri: string, data?: string, format?: string) =>
    `<Add><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target>${meta(format)}${data !== undefined ? `<Data>${xmlText(data)}</Data>` : ''}</Item></Add>`,
  replace: (uri: string, data: string, format?: string) =>
    `<Replace><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target>${meta(format)}<Data>${xmlText(data)}</Data></Item></Replace>`,
  get: (uri: string) =>
    `<Get><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target></Item></Get>`,
  delete: (uri: string) =>
    `<Delete><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target></Item></Delete>`,
  exec: (uri: string) =>
    `<Exec><CmdID>${id()}</CmdID><Item><Target><LocURI>${uri}</LocURI></Target></Item></Exec>`,
  atomic: (...children: string[]) => `<Atomic><CmdID>${id()}</CmdID>${children.join('')}</Atomic>`,
};

export interface ReplySummary {
  /** Status codes of the commands (not the SyncHdr), in order, as `Cmd=code`. */
  readonly statuses: string[];
  /** Results data by source URI. */
  readonly results: Map<string, string | undefined>;
}

/** The statuses and results of a device reply. */
export function summarise(reply: string | undefined): ReplySummary {
  if (reply === undefined) throw new Error('the device did not reply');
  const m = parseSyncML(reply);
  const statuses: string[] = [];
  const results = new Map<string, string | undefined>();
  const walk = (cs: readonly Command[]) => {
    for (const c of cs) {
      if (c.kind === 'Status' && c.cmd !== 'SyncHdr') statuses.push(`${c.cmd}=${c.data}`);
      if (c.kind === 'Results') for (const i of c.items) results.set(i.source ?? '', i.data);
    }
  };
  walk(m.body);
  return { statuses, results };
}

/** The ClientCertificateInstall SCEP branch of the device tree. */
export const CCI_SCEP = './Device/Vendor/MSFT/ClientCertificateInstall/SCEP';

export interface ScepInstallOptions {
  /** ServerURL. */
  readonly url: string;
  readonly challenge: string;
  /** CN of SubjectName (`CN=<cn>,O=certpost tests`) and the base of its SANs. */
  readonly cn: string;
  /** CAThumbprint: SHA-1 hex of a certificate of the CA chain. */
  readonly thumbprint: string;
  /** Default 3. */
  readonly retryCount?: number;
  /** The SCEP branch; default {@link CCI_SCEP}. Another one gets the legacy leaf names. */
  readonly csp?: string;
  /** Default 3 (software). */
  readonly keyProtection?: number;
}

/** The Atomic a server sends for a SCEP profile: parameters, then Exec Enroll last. */
export function scepInstall(uniqueId: string, o: ScepInstallOptions): string {
  const node = `${o.csp ?? CCI_SCEP}/${uniqueId}`;
  const install = `${node}/Install`;
  const legacy = o.csp !== undefined;
  return cmd.atomic(
    ...(legacy ? [] : [cmd.add(node)]),
    cmd.add(`${install}/ServerURL`, o.url, 'chr'),
    cmd.add(`${install}/Challenge`, o.challenge, 'chr'),
    cmd.add(`${install}/EKUMapping`, '1.3.6.1.5.5.7.3.2', 'chr'),
    cmd.add(`${install}/KeyUsage`, '160', 'int'),
    cmd.add(`${install}/SubjectName`, `CN=${o.cn},O=certpost tests`, 'chr'),
    cmd.add(
      `${install}/SubjectAlternativeNames`,
      `3+${o.cn}.example.test;11+${o.cn}@example.test`,
      'chr',
    ),
    cmd.add(`${install}/KeyProtection`, String(o.keyProtection ?? 3), 'int'),
    cmd.add(`${install}/RetryDelay`, '1', 'int'),
    cmd.add(`${install}/RetryCount`, String(o.retryCount ?? 3), 'int'),
    cmd.add(`${install}/KeyLength`, '2048', legacy ? 'chr' : 'int'),
    cmd.add(`${install}/${legacy ? 'HashAlgrithm' : 'HashAlgorithm'}`, 'SHA-1+SHA-2', 'chr'),
    cmd.add(`${install}/${legacy ? 'CAThumbPrint' : 'CAThumbprint'}`, o.thumbprint, 'chr'),
    cmd.exec(`${install}/Enroll`),
  );
}

/** Status, ErrorCode and CertThumbprint of a SCEP enrollment, read by Get as a server would. */
export async function scepStatus(agent: DeviceAgent, uniqueId: string, csp = CCI_SCEP) {
  const node = `${csp}/${uniqueId}`;
  const thumb = csp === CCI_SCEP ? 'CertThumbprint' : 'CertThumbPrint';
  const r = summarise(
    await agent.handle(
      serverMessage(
        cmd.get(`${node}/Status`) + cmd.get(`${node}/ErrorCode`) + cmd.get(`${node}/${thumb}`),
      ),
    ),
  );
  return {
    status: Number(r.results.get(`${node}/Status`)),
    errorCode: Number(r.results.get(`${node}/ErrorCode`)),
    thumbprint: r.results.get(`${node}/${thumb}`) ?? '',
  };
}

/**
 * Runs the agent's background work until nothing is due (every enrollment left
 * pending/unknown), or `ms` has passed; `minuteMs` is the agent's shortened minute.
 */
export async function settle(agent: DeviceAgent, minuteMs: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    await agent.runDue();
    if (!agent.nextDueAt()) return;
    await new Promise((r) => setTimeout(r, minuteMs / 2));
  }
}

/** A `scepTransport` for DeviceAgent.open that pushes every request onto `requests`, then fetches. */
export function recordingScepTransport(
  requests: ScepTransportRequest[],
): (url: string) => ScepTransport {
  return (url) => {
    const t = fetchTransport(url);
    return (req) => {
      requests.push(req);
      return t(req);
    };
  };
}

export interface IdentityOptions {
  readonly cn: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** EKU OIDs; null leaves the extension out (all purposes). */
  readonly ekus: readonly string[] | null;
  /** Microsoft template: the v1 name extension and/or the v2 OID extension. */
  readonly template?: { readonly name?: string; readonly oid?: string };
}

/**
 * A client identity issued by a CA of test-pki.ts (its certificate DER and PEM key): a new
 * P-256 key and a certificate with the given dates, EKUs and template, signed by our CA
 * encoder. Returned as one PEM text (certificate, then PKCS#8 key), as the installer reads it.
 */
export async function clientIdentityPem(
  issuer: { readonly der: Uint8Array; readonly keyPem: string },
  o: IdentityOptions,
): Promise<string> {
  const ca = parseCertificate(issuer.der);
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const template = [
    ...(o.template?.name !== undefined
      ? [{ oid: EXT.msCertificateTemplateName, critical: false, value: enc.bmp(o.template.name) }]
      : []),
    ...(o.template?.oid !== undefined
      ? [
          {
            oid: EXT.msCertificateTemplate,
            critical: false,
            value: enc.seq(enc.oid(o.template.oid), enc.int(100), enc.int(0)),
          },
        ]
      : []),
  ];
  const der = await buildCertificate({
    subject: parseRfc4514(`CN=${o.cn},O=certpost tests`),
    spki,
    serial: Uint8Array.of(0x40, ...randomBytes(8)),
    notBefore: o.notBefore,
    notAfter: o.notAfter,
    issuer: { name: ca.subject.der, key: parsePrivateKeyPem(issuer.keyPem).key, spki: ca.spki },
    extensions: [
      basicConstraints(false),
      keyUsage(['digitalSignature']),
      ...(o.ekus ? [extKeyUsage(o.ekus)] : []),
      authorityKeyIdentifier(ca.spki),
      ...template,
    ],
  });
  return encodePem('CERTIFICATE', der) + privateKey.export({ type: 'pkcs8', format: 'pem' });
}
