/**
 * The device's enrollment (MS-MDE2 on-premise, omadm-reference.md §2.1), as a Windows device
 * does it: Discovery, GetPolicies (MS-XCEP), RequestSecurityToken (MS-WSTEP) with a PKCS#10 of
 * a key made here, then the provisioning document applied:
 *
 * - the server's roots into the device Root store, its CAs into the CA store;
 * - the MDM client certificate into My (device scope for `My/System`, user for `My/User`) with
 *   its key (software, not exportable: Node's TLS signs with it);
 * - the management URL, provider id, poll schedule and digest credentials into the state.
 *
 * All of it lands or nothing does: a fault, a document we cannot read, or a client certificate
 * that does not carry our key leaves the device as it was.
 */
import { randomUUID } from 'node:crypto';
import { parseRfc4514 } from '../ca/name.ts';
import {
  buildDiscoverRequest,
  buildGetPoliciesRequest,
  buildRequestSecurityToken,
  MDE2_CONTENT_TYPE,
  Mde2Error,
  parseDiscoverResponse,
  parseGetPoliciesResponse,
  parseRequestSecurityTokenResponse,
  parseSoapFault,
  type SoapFault,
  type SoapFaultSubcode,
  type WsSecurity,
} from '../omadm/mde2.ts';
import { parseProvisioningDoc, type ProvisioningDoc } from '../omadm/provisioning.ts';
import { buildSignedData } from '../pki/cms.ts';
import { buildCsr } from '../pki/csr.ts';
import { keyMatchesCertificate } from '../pki/keys.ts';
import { spkiOf } from '../pki/key-ref.ts';
import { nameAttribute, parseCertificate } from '../pki/x509.ts';
import type { DeviceAgent } from './agent.ts';
import { DeviceError, type DeviceErrorCode } from './errors.ts';
import { httpRequestBytes } from './http.ts';
import { mdmCertificateEntry } from './mdm-client.ts';

export interface EnrollOptions {
  /** The server's base URL; discovery is at `<server>/EnrollmentServer/Discovery.svc`. */
  readonly server: string;
  /** The user's UPN (the WS-Security user name). */
  readonly user: string;
  /** The enrollment token (the WS-Security password). */
  readonly token: string;
  /** PEM roots trusted for the server's TLS certificate before enrollment brings its root. */
  readonly ca?: readonly string[];
  /** Posts SOAP (default: HTTP(S) with the device's trust). */
  readonly transport?: SoapTransport;
}

export type SoapTransport = (
  url: string,
  body: string,
  ca: readonly string[],
) => Promise<{ readonly status: number; readonly body: string }>;

export const httpSoapTransport: SoapTransport = async (url, body, ca) => {
  const res = await httpRequestBytes(url, {
    method: 'POST',
    body,
    headers: { 'content-type': MDE2_CONTENT_TYPE, 'user-agent': 'certpost Enrollment Client' },
    ca,
    maxBytes: 1024 * 1024,
  });
  return { status: res.status, body: res.body.toString('utf8') };
};

/** MS-MDE2 §2.2.10 fault subcodes → the device's errors (and so their MENROLL_E HRESULTs). */
const FAULTS: Readonly<Record<SoapFaultSubcode, DeviceErrorCode>> = {
  's:messageformat': 'ERR_DEVICE_MDM_PROTOCOL',
  's:authentication': 'ERR_DEVICE_ENROLL_AUTHENTICATION',
  's:authorization': 'ERR_DEVICE_ENROLL_AUTHORIZATION',
  's:certificaterequest': 'ERR_DEVICE_ENROLL_CERTIFICATE_REQUEST',
  's:enrollmentserver': 'ERR_DEVICE_ENROLL_SERVER',
  's:internalservicefault': 'ERR_DEVICE_ENROLL_SERVER',
  'a:invalidsecurity': 'ERR_DEVICE_ENROLL_AUTHENTICATION',
};

/** A SOAP fault received, as the device's error. */
function faultError(fault: SoapFault, what: string): DeviceError {
  const code = (fault.subcode && FAULTS[fault.subcode]) ?? 'ERR_DEVICE_ENROLL_SERVER';
  return new DeviceError(
    code,
    `${what} refused (${fault.subcodeValue ?? fault.code}): ${fault.reason}`,
  );
}

/**
 * One SOAP exchange: a fault becomes its DeviceError, an unreadable answer a protocol error. An
 * answer is read once: `parse` itself reports a fault (ERR_MDE2_FAULT, MS-MDE2 §2.2.10).
 */
async function call<T>(
  transport: SoapTransport,
  url: string,
  body: string,
  ca: readonly string[],
  what: string,
  parse: (xml: string) => T,
): Promise<T> {
  const r = await transport(url, body, ca);
  if (r.status !== 200) {
    let fault;
    try {
      fault = parseSoapFault(r.body);
    } catch {
      fault = undefined; // not XML at all: judged by the HTTP status
    }
    if (fault) throw faultError(fault, what);
    throw new DeviceError(
      'ERR_DEVICE_MDM_UNREACHABLE',
      `${what}: ${url} answered HTTP ${r.status}`,
    );
  }
  try {
    return parse(r.body);
  } catch (e) {
    if (!(e instanceof Mde2Error)) throw e;
    if (e.code === 'ERR_MDE2_FAULT' && e.fault) throw faultError(e.fault, what);
    throw new DeviceError('ERR_DEVICE_MDM_PROTOCOL', `${what}: ${e.message}`, { cause: e });
  }
}

export interface EnrollResult {
  readonly serverDeviceId: string;
  readonly managementUrl: string;
  readonly certificateThumbprint: string;
}

/** The provisioning document of an answer; an unreadable one is a protocol error. */
function readDoc(xml: string): ProvisioningDoc {
  try {
    return parseProvisioningDoc(xml);
  } catch (e) {
    if (e instanceof Mde2Error)
      throw new DeviceError('ERR_DEVICE_MDM_PROTOCOL', `the provisioning document: ${e.message}`, {
        cause: e,
      });
    throw e;
  }
}

/** A WS-Addressing MessageID. */
const messageId = () => `urn:uuid:${randomUUID()}`;

/** Enrolls the device with an MDM server (MS-MDE2 OnPremise). */
export async function enrollDevice(agent: DeviceAgent, o: EnrollOptions): Promise<EnrollResult> {
  const data = agent.store.data;
  if (data.mdm)
    throw new DeviceError(
      'ERR_DEVICE_BAD_PARAMETER',
      `this device is already enrolled with ${data.mdm.serverUrl}`,
    );
  const transport = o.transport ?? httpSoapTransport;
  const ca = o.ca ?? [];
  const discoveryUrl = `${o.server.replace(/\/+$/, '')}/EnrollmentServer/Discovery.svc`;
  const security: WsSecurity = { kind: 'username', username: o.user, password: o.token };

  const discovered = await call(
    transport,
    discoveryUrl,
    buildDiscoverRequest({
      messageId: messageId(),
      to: discoveryUrl,
      emailAddress: o.user,
      requestVersion: '4.0',
      deviceType: 'CIMClient_Windows',
      applicationVersion: '10.0.19045.0',
      osEdition: '72',
      authPolicies: ['OnPremise'],
    }),
    ca,
    'discovery',
    parseDiscoverResponse,
  );
  if (discovered.authPolicy !== 'OnPremise')
    throw new DeviceError(
      'ERR_DEVICE_ENROLL_AUTHENTICATION',
      `the server wants ${discovered.authPolicy} authentication; this device enrolls OnPremise`,
    );
  const policyUrl = discovered.enrollmentPolicyServiceUrl;
  const policy = policyUrl
    ? await call(
        transport,
        policyUrl,
        buildGetPoliciesRequest({ messageId: messageId(), to: policyUrl, security }),
        ca,
        'the enrollment policy',
        parseGetPoliciesResponse,
      )
    : undefined;

  // The key: software, not exportable; as long as the policy asks, at least RSA-2048.
  const bits = Math.max(2048, policy?.policy.minimalKeyLength ?? 2048);
  const { entry, key } = await agent.keys.generate({ type: 'rsa', bits }, 3);
  try {
    const csr = await buildCsr({ subject: parseRfc4514(`CN=${agent.id}`), key });
    const enrollUrl = discovered.enrollmentServiceUrl;
    const response = await call(
      transport,
      enrollUrl,
      buildRequestSecurityToken({
        messageId: messageId(),
        to: enrollUrl,
        security,
        binarySecurityToken: { valueType: 'PKCS10', der: csr },
        context: {
          UXInitiated: 'true',
          HWDevID: agent.id,
          Locale: 'en-US',
          TargetedUserLoggedIn: 'true',
          OSEdition: '72',
          DeviceName: data.device.name,
          DeviceID: agent.id,
          EnrollmentType: 'Full',
          DeviceType: 'CIMClient_Windows',
          OSVersion: '10.0.19045.0',
          ApplicationVersion: '10.0.19045.0',
          NotInOobe: 'true',
        },
      }),
      ca,
      'enrollment',
      parseRequestSecurityTokenResponse,
    );
    const doc = readDoc(response.provisioningDoc);
    return await apply(agent, doc, entry.id, key, enrollUrl);
  } catch (e) {
    agent.keys.remove(entry.id);
    await agent.save();
    throw e;
  }
}

/** Installs what the provisioning document says, all at once (saved together). */
async function apply(
  agent: DeviceAgent,
  doc: ProvisioningDoc,
  keyId: string,
  key: Parameters<typeof keyMatchesCertificate>[0]['key'],
  enrollmentUrl: string,
): Promise<EnrollResult> {
  const client = doc.clientCertificate;
  const cert = parseCertificate(client.der);
  if (!keyMatchesCertificate({ spki: spkiOf(key), key }, cert))
    throw new DeviceError(
      'ERR_DEVICE_MDM_PROTOCOL',
      'the MDM client certificate is not for our key',
    );
  const serverDeviceId = nameAttribute(cert.subject, '2.5.4.3');
  if (!serverDeviceId)
    throw new DeviceError('ERR_DEVICE_MDM_PROTOCOL', 'the MDM client certificate has no CN');
  const digest = doc.application.appAuth.find((a) => a.level === 'APPSRV' && a.type === 'DIGEST');
  const snapshot = structuredClone(agent.store.data);
  try {
    for (const [store, list] of [
      ['Root', doc.rootCertificates],
      ['CA', doc.intermediateCertificates ?? []],
    ] as const)
      for (const c of list)
        agent.certificates.add({
          scope: 'device',
          store,
          der: c.der,
          source: { kind: 'wstep', uri: `./Vendor/MSFT/CertificateStore/${store}/System` },
          expectedThumbprint: c.thumbprint,
        });
    const mine = agent.certificates.add({
      scope: client.store === 'User' ? 'user' : 'device',
      store: 'My',
      der: client.der,
      source: { kind: 'wstep', uri: `./Vendor/MSFT/CertificateStore/My/${client.store}` },
      keyId,
      expectedThumbprint: client.thumbprint,
    });
    if (!mine)
      throw new DeviceError(
        'ERR_DEVICE_MDM_PROTOCOL',
        'the MDM client certificate is already installed',
      );
    const poll = doc.dmClient.poll;
    agent.store.data.mdm = {
      serverUrl: doc.application.addr,
      providerId: doc.application.providerId,
      serverDeviceId,
      certificateThumbprint: mine.thumbprint,
      enrolledAt: new Date().toISOString(),
      enrollmentUrl,
      ...(doc.renew
        ? {
            renewPeriodDays: doc.renew.renewPeriodDays,
            retryIntervalDays: doc.renew.retryIntervalDays,
          }
        : {}),
      pollMinutes:
        poll?.intervalForRemainingScheduledRetries ||
        poll?.intervalForSecondSetOfRetries ||
        poll?.intervalForFirstSetOfRetries ||
        60,
      sessions: 0,
      ...(digest
        ? {
            auth: {
              username: digest.name ?? serverDeviceId,
              password: digest.secret,
              nonce: digest.data ?? '',
            },
          }
        : {}),
    };
    await agent.save();
  } catch (e) {
    Object.assign(agent.store.data, snapshot);
    throw e;
  }
  return {
    serverDeviceId,
    managementUrl: doc.application.addr,
    certificateThumbprint: agent.store.data.mdm.certificateThumbprint,
  };
}

/** The MDM client certificate's entry and when it should be renewed, if it should. */
export function mdmRenewalDue(agent: DeviceAgent, now: Date): boolean {
  const mdm = agent.store.data.mdm;
  if (!mdm?.enrollmentUrl || mdm.renewPeriodDays === undefined) return false;
  const entry = mdmCertificateEntry(agent);
  if (!entry) return false;
  const notAfter = agent.certificates.certificate(entry).notAfter.getTime();
  if (notAfter - now.getTime() > mdm.renewPeriodDays * 86_400_000) return false;
  const failed = mdm.renewFailedAt ? Date.parse(mdm.renewFailedAt) : 0;
  return now.getTime() - failed >= (mdm.retryIntervalDays ?? 1) * 86_400_000;
}

/**
 * Renews the MDM client certificate (MS-WSTEP, RequestType Renew; MS-MDE2 §3.3): a new key, a
 * PKCS#10 for the same subject, wrapped in a CMS SignedData signed with the current
 * certificate's key — the signature is the credential. The new certificate replaces the old one
 * in My (with its key); the old one and its key go. A failure keeps the old certificate and is
 * recorded, so the next attempt waits the RetryInterval.
 */
export async function renewMdmCertificate(
  agent: DeviceAgent,
  o: { readonly transport?: SoapTransport; readonly now?: Date } = {},
): Promise<{ certificateThumbprint: string }> {
  const mdm = agent.store.data.mdm;
  if (!mdm?.enrollmentUrl)
    throw new DeviceError(
      'ERR_DEVICE_NOT_ENROLLED',
      'this device has no enrollment service to renew with',
    );
  const old = mdmCertificateEntry(agent);
  if (!old?.keyId)
    throw new DeviceError('ERR_DEVICE_NOT_ENROLLED', 'the MDM client certificate is gone');
  const current = agent.certificates.certificate(old);
  const { entry, key } = await agent.keys.generate({ type: 'rsa', bits: 2048 }, 3);
  try {
    const csr = await buildCsr({ subject: current.subject.der, key });
    const signed = await buildSignedData({
      contentType: ID_DATA,
      content: csr,
      signer: { certificate: current, key: await agent.keys.open(old.keyId) },
      digest: 'sha256',
      certificates: [current],
    });
    const url = mdm.enrollmentUrl;
    const ca = agent.certificates.trustedRootsPem();
    const response = await call(
      o.transport ?? httpSoapTransport,
      url,
      buildRequestSecurityToken({
        messageId: messageId(),
        to: url,
        security: { kind: 'none' },
        requestType: 'Renew',
        binarySecurityToken: { valueType: 'PKCS7', der: signed },
        context: { DeviceID: agent.id, HWDevID: agent.id, RequestVersion: '4.0' },
      }),
      ca,
      'renewal',
      parseRequestSecurityTokenResponse,
    );
    const doc = readDoc(response.provisioningDoc);
    const cert = parseCertificate(doc.clientCertificate.der);
    if (!keyMatchesCertificate({ spki: spkiOf(key), key }, cert))
      throw new DeviceError(
        'ERR_DEVICE_MDM_PROTOCOL',
        'the renewed certificate is not for our key',
      );
    const added = agent.certificates.add({
      scope: old.scope,
      store: 'My',
      der: cert.der,
      source: old.source,
      keyId: entry.id,
      expectedThumbprint: doc.clientCertificate.thumbprint,
    });
    if (!added)
      throw new DeviceError('ERR_DEVICE_MDM_PROTOCOL', 'the renewed certificate is the old one');
    agent.certificates.remove(old);
    mdm.certificateThumbprint = added.thumbprint;
    delete mdm.renewFailedAt;
    await agent.save();
    return { certificateThumbprint: added.thumbprint };
  } catch (e) {
    agent.keys.remove(entry.id);
    mdm.renewFailedAt = (o.now ?? new Date()).toISOString();
    await agent.save();
    throw e;
  }
}

/** CMS id-data (RFC 5652 §4): the SignedData content type of a WSTEP renewal. */
const ID_DATA = '1.2.840.113549.1.7.1';
