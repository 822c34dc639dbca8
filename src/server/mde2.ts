/**
 * Windows enrollment (MS-MDE2, on-premise authentication policy; omadm-reference.md §2): the
 * three services a device calls, over the message layer of omadm/mde2.ts and the provisioning
 * document of omadm/provisioning.ts.
 *
 * - Discovery: where the policy and enrollment services are, and that we authenticate
 *   OnPremise (a user name and a password: the enrollment token).
 * - GetPolicies (MS-XCEP): checks the credentials without spending the token, and answers the
 *   certificate policy (key length, validity, hash).
 * - RequestSecurityToken (MS-WSTEP): checks the credentials, signs the device's PKCS#10 as its
 *   MDM client certificate (subject `CN=<device id>`, clientAuth), records the device, spends one
 *   use of the token, and answers the provisioning document: our root and issuing CA, the client
 *   certificate, the management URL, the poll schedule.
 *
 * Every refusal is a SOAP fault with the MS-MDE2 subcode (s:authentication for bad credentials,
 * s:certificaterequest for a CSR we will not sign, s:messageformat for a message we cannot read)
 * and audited; a refused enrollment stores nothing but the audit record.
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { secretHash, type EnrollmentService } from '../ca/enrollment.ts';
import { DEFAULT_PROFILE, type IssuanceProfile } from '../ca/profile.ts';
import type { CaMaterial } from '../ca/authority.ts';
import { credentialHash, newNonce } from '../omadm/auth.ts';
import {
  buildDiscoverResponse,
  buildGetPoliciesResponse,
  buildRequestSecurityTokenResponse,
  buildSoapFault,
  Mde2Error,
  parseDiscoverRequest,
  parseGetPoliciesRequest,
  parseRequestSecurityToken,
  type RequestSecurityToken,
  type SoapFaultSubcode,
  type WsSecurity,
} from '../omadm/mde2.ts';
import {
  buildProvisioningDoc,
  sslClientCertSearchCriteria,
  type ProvisioningDoc,
} from '../omadm/provisioning.ts';
import { parseSignedData, signerCertificate, verifySigner, type SignedData } from '../pki/cms.ts';
import { parseCsr, type CertificationRequest } from '../pki/csr.ts';
import { isPkiError } from '../pki/errors.ts';
import { sha1Thumbprint, type Certificate } from '../pki/x509.ts';
import type {
  AuditLog,
  CertificateStore,
  DeviceStore,
  EnrollmentTokenRecord,
  EnrollmentTokenStore,
  Store,
} from '../store/types.ts';
import { deviceOfCertificate, MDM_CLIENT_PROFILE } from './device-auth.ts';
import { MDM_PATH } from './mdm-http.ts';

export const DISCOVERY_PATH = '/EnrollmentServer/Discovery.svc';
export const POLICY_PATH = '/EnrollmentServer/Policy.svc';
export const ENROLLMENT_PATH = '/EnrollmentServer/Enrollment.svc';
/** DMClient provider id and w7 PROVIDER-ID (they must be equal, MS-MDE2 §2.2.8). */
export const PROVIDER_ID = 'certpost';
/** Days before expiry a device renews its MDM certificate (provisioning document WSTEP/Renew). */
export const RENEW_PERIOD_DAYS = 42;

export interface MdeConfig {
  readonly store: EnrollmentTokenStore &
    DeviceStore &
    CertificateStore &
    AuditLog &
    Pick<Store, 'transaction'>;
  readonly enrollment: Pick<EnrollmentService, 'issueAuthenticated' | 'revoke'>;
  readonly ca: CaMaterial;
  /** The server's base URL as devices reach it (https://host:port). */
  readonly publicUrl: () => string;
  readonly now?: () => Date;
  /** Minutes between the device's scheduled sessions (default 60). */
  readonly pollMinutes?: number;
  /** Validity of MDM client certificates in days (default 365). */
  readonly validityDays?: number;
  /**
   * Enrollment without a token: any user name and password are accepted (a development server
   * on loopback, so that `certpost fleet` needs no setup). Tokens still work and bind their user.
   */
  readonly openEnrollment?: boolean;
}

/** What an HTTP adapter sends: SOAP 1.2 XML, with 500 for faults (SOAP 1.2 HTTP binding §7.5.1). */
export interface SoapAnswer {
  readonly status: 200 | 500;
  readonly body: string;
}

export interface MdeService {
  discover(xml: string): Promise<SoapAnswer>;
  getPolicies(xml: string): Promise<SoapAnswer>;
  requestSecurityToken(xml: string, peer?: string): Promise<SoapAnswer>;
}

/** The MDM client certificate profile: subject forced to the device id, clientAuth only. */
export function mdmClientProfile(
  deviceId: string,
  o: { validityDays?: number; crlUrl?: string } = {},
): IssuanceProfile {
  return {
    ...DEFAULT_PROFILE,
    name: MDM_CLIENT_PROFILE,
    validityDays: o.validityDays ?? 365,
    subject: { mode: 'forced', value: `CN=${deviceId}` },
    subjectAltNames: { allow: [] },
    allowRenewal: true,
    renewalRequiresChallenge: false,
    ...(o.crlUrl ? { crlUrl: o.crlUrl } : {}),
  };
}

/** A request we answer with a SOAP fault (subcode, and a reason of our own words). */
class Refusal extends Error {
  readonly subcode: SoapFaultSubcode;
  constructor(subcode: SoapFaultSubcode, message: string) {
    super(message);
    this.subcode = subcode;
  }
}

/** A fault answer; the reason is ours (never the input echoed back). */
const fault = (subcode: SoapFaultSubcode, reason: string, relatesTo?: string): SoapAnswer => ({
  status: 500,
  body: buildSoapFault({ subcode, reason, ...(relatesTo !== undefined ? { relatesTo } : {}) }),
});

/** Runs one operation: malformed input → s:messageformat, a refusal → its fault. */
async function answer(
  f: () => Promise<SoapAnswer>,
  relatesTo: () => string | undefined,
): Promise<SoapAnswer> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof Mde2Error) return fault('s:messageformat', e.message);
    if (e instanceof Refusal) return fault(e.subcode, e.message, relatesTo());
    throw e;
  }
}

export function createMdeService(config: MdeConfig): MdeService {
  const { store } = config;
  const now = config.now ?? (() => new Date());
  /** Where devices reach us; unknown (no --public-url, not listening yet) is a server fault. */
  const baseUrl = () => {
    try {
      return config.publicUrl().replace(/\/+$/, '');
    } catch {
      throw new Refusal('s:enrollmentserver', 'the server does not know its public URL');
    }
  };
  const pollMinutes = config.pollMinutes ?? 60;

  /**
   * The token the credentials name, if usable: password = token, user name = its UPN when the
   * token has one. With open enrollment, credentials naming no token pass (as `undefined`).
   */
  async function tokenOf(
    security: WsSecurity,
    spend: boolean,
  ): Promise<EnrollmentTokenRecord | undefined> {
    if (security.kind !== 'username')
      throw new Refusal(
        's:authentication',
        'this server authenticates enrollment by user name and token',
      );
    const hash = secretHash(security.password);
    const at = now();
    const token = spend
      ? await store.useEnrollmentToken(hash, at)
      : await store.findEnrollmentToken(hash, at);
    if (token && (token.user === null || sameUser(token.user, security.username))) return token;
    if (!token && config.openEnrollment) return undefined;
    throw new Refusal(
      's:authentication',
      'the user name or enrollment token is wrong, used up or expired',
    );
  }

  /** Signs a device's PKCS#10 as its MDM client certificate (subject `CN=<device id>`). */
  function issueMdmCertificate(
    csr: CertificationRequest,
    deviceId: string,
    base: string,
    alongside?: (serial: string) => Promise<void>,
  ) {
    return config.enrollment.issueAuthenticated(
      csr,
      mdmClientProfile(deviceId, {
        ...(config.validityDays ? { validityDays: config.validityDays } : {}),
        crlUrl: `${base}/crl`,
      }),
      `mde:${deviceId}`,
      alongside,
    );
  }

  /**
   * The provisioning document (MS-MDE2 §2.2.9.1): our root and CAs, the client certificate, the
   * management URL, WSTEP renewal and poll settings, and the given APPAUTH credentials.
   */
  function provisioningDoc(
    base: string,
    cert: Certificate,
    deviceId: string,
    deviceName: string,
    appAuth: ProvisioningDoc['application']['appAuth'],
  ): string {
    const issuing = config.ca.issuing.certificate;
    const root = config.ca.root.certificate;
    return buildProvisioningDoc({
      rootCertificates: [{ thumbprint: sha1Thumbprint(root).toUpperCase(), der: root.der }],
      intermediateCertificates: [issuing, ...config.ca.intermediates].map((c) => ({
        thumbprint: sha1Thumbprint(c).toUpperCase(),
        der: c.der,
      })),
      clientCertificate: {
        thumbprint: sha1Thumbprint(cert).toUpperCase(),
        der: cert.der,
        store: 'System',
      },
      renew: { roboSupport: true, renewPeriodDays: RENEW_PERIOD_DAYS, retryIntervalDays: 7 },
      application: {
        providerId: PROVIDER_ID,
        name: 'certpost',
        addr: `${base}${MDM_PATH}`,
        defaultEncoding: 'application/vnd.syncml.dm+xml',
        sslClientCertSearchCriteria: sslClientCertSearchCriteria(cert.der, 'System'),
        backCompatRetryDisabled: true,
        appAuth,
      },
      dmClient: {
        providerId: PROVIDER_ID,
        entDeviceName: deviceName,
        entDMID: deviceId,
        poll: {
          numberOfFirstRetries: 8,
          intervalForFirstSetOfRetries: 15,
          numberOfSecondRetries: 5,
          intervalForSecondSetOfRetries: 60,
          numberOfRemainingScheduledRetries: 0,
          intervalForRemainingScheduledRetries: pollMinutes,
          pollOnLogin: true,
        },
      },
    });
  }

  /**
   * MS-WSTEP renewal (MS-MDE2 §3.3 RequestType Renew): a PKCS#7 SignedData whose content is the
   * new PKCS#10, signed with the device's current MDM certificate. The signature is the
   * credential: the certificate must be the enrolled device's current one, valid and not
   * revoked. The new certificate replaces it (compare and set), and the old one is revoked as
   * superseded. The answer is a provisioning document with the new certificate only changing.
   */
  async function renew(req: RequestSecurityToken, base: string): Promise<SoapAnswer> {
    if (req.binarySecurityToken.valueType !== 'PKCS7')
      throw new Refusal(
        's:certificaterequest',
        'a renewal carries a PKCS#7 signed with the current certificate',
      );
    let signed: SignedData;
    let csr: CertificationRequest;
    try {
      signed = parseSignedData(req.binarySecurityToken.der);
      csr = parseCsr(signed.content ?? new Uint8Array(0));
    } catch (e) {
      if (isPkiError(e))
        throw new Refusal(
          's:certificaterequest',
          `the renewal request is not readable: ${e.message}`,
        );
      throw e;
    }
    const signer = signed.signers[0];
    const current = signer && signerCertificate(signed, signer);
    const refused = () =>
      new Refusal(
        's:authentication',
        'the renewal is not signed by a current MDM certificate of this server',
      );
    if (!signer || !current || !verifySigner(signed, signer, current)) throw refused();
    const who = await deviceOfCertificate(current.der, { store, now });
    if ('refused' in who) throw refused();
    const { device } = who;
    const deviceId = device.id;
    const at = now();
    const actor = `mde:${deviceId}`;
    const outcome = await issueMdmCertificate(csr, deviceId, base);
    if (outcome.status !== 'issued') throw new Refusal('s:certificaterequest', outcome.message);
    const serial = Buffer.from(outcome.certificate.serial).toString('hex');
    if (!(await store.replaceDeviceCertificate(deviceId, who.serial, serial))) {
      await config.enrollment.revoke(serial, 5, actor);
      throw refused();
    }
    await config.enrollment.revoke(who.serial, 4, actor); // superseded
    await store.appendAudit({
      at,
      actor,
      action: 'device.renewed',
      target: deviceId,
      details: { certificate: serial, replaces: who.serial },
    });
    return {
      status: 200,
      body: buildRequestSecurityTokenResponse({
        relatesTo: req.messageId,
        provisioningDoc: provisioningDoc(base, outcome.certificate, deviceId, device.name, []),
        requestId: '0',
        now: at,
      }),
    };
  }

  return {
    async discover(xml) {
      let messageId: string | undefined;
      return answer(
        async () => {
          const base = baseUrl();
          const req = parseDiscoverRequest(xml);
          messageId = req.messageId;
          if (!req.authPolicies.includes('OnPremise'))
            throw new Refusal(
              's:authentication',
              'this server supports the OnPremise authentication policy only',
            );
          return {
            status: 200,
            body: buildDiscoverResponse({
              relatesTo: req.messageId,
              authPolicy: 'OnPremise',
              enrollmentVersion: req.requestVersion,
              enrollmentPolicyServiceUrl: `${base}${POLICY_PATH}`,
              enrollmentServiceUrl: `${base}${ENROLLMENT_PATH}`,
            }),
          };
        },
        () => messageId,
      );
    },

    async getPolicies(xml) {
      let messageId: string | undefined;
      return answer(
        async () => {
          const req = parseGetPoliciesRequest(xml);
          messageId = req.messageId;
          await tokenOf(req.security, false);
          return {
            status: 200,
            body: buildGetPoliciesResponse({
              relatesTo: req.messageId,
              policy: {
                validityPeriodSeconds: (config.validityDays ?? 365) * 86_400,
                renewalPeriodSeconds: 42 * 86_400,
                minimalKeyLength: 2048,
              },
            }),
          };
        },
        () => messageId,
      );
    },

    async requestSecurityToken(xml) {
      let messageId: string | undefined;
      return answer(
        async () => {
          const base = baseUrl();
          const req = parseRequestSecurityToken(xml);
          messageId = req.messageId;
          if (req.requestType === 'Renew') return renew(req, base);
          if (req.binarySecurityToken.valueType !== 'PKCS10')
            throw new Refusal('s:certificaterequest', 'the request must carry a PKCS#10');
          await tokenOf(req.security, false); // refuse early; spent below, once issued
          let csr: CertificationRequest;
          try {
            csr = parseCsr(req.binarySecurityToken.der);
          } catch (e) {
            if (isPkiError(e))
              throw new Refusal(
                's:certificaterequest',
                `the PKCS#10 is not readable: ${e.message}`,
              );
            throw e;
          }
          const deviceId = randomUUID().toUpperCase();
          const ctx = req.context;
          const actor = `mde:${deviceId}`;
          const hardwareId = ctx['DeviceID'] ?? ctx['HWDevID'] ?? deviceId;
          // OMA DM digest credentials for sessions over plain HTTP (APPSRV, omadm/auth.ts).
          const password = randomBytes(24).toString('base64url');
          const nonce = newNonce();
          // The device is enrolled and audited in the transaction that records its certificate
          // (the store's roles join it): all of it, or nothing and the certificate never left.
          const outcome = await issueMdmCertificate(csr, deviceId, base, async (serial) => {
            const token = await tokenOf(req.security, true);
            const previous = await store.getDeviceByHardwareId(hardwareId);
            // One enrollment per device: enrolling again ends the previous one.
            if (previous) await store.unenrollDevice(previous.id, now());
            await store.createDevice({
              id: deviceId,
              hardwareId,
              name: ctx['DeviceName'] ?? deviceId,
              user: token?.user ?? null,
              certificateSerial: serial,
              enrolledAt: now(),
              info: enrollmentInfo(ctx),
              auth: { hash: credentialHash(deviceId, password), nonce },
            });
            await store.appendAudit({
              at: now(),
              actor,
              action: 'device.enrolled',
              target: deviceId,
              details: { certificate: serial, name: ctx['DeviceName'] ?? null },
            });
          });
          if (outcome.status !== 'issued')
            throw new Refusal('s:certificaterequest', outcome.message);
          const cert = outcome.certificate;
          const doc = provisioningDoc(base, cert, deviceId, ctx['DeviceName'] ?? deviceId, [
            { level: 'APPSRV', type: 'DIGEST', name: deviceId, secret: password, data: nonce },
          ]);
          return {
            status: 200,
            body: buildRequestSecurityTokenResponse({
              relatesTo: req.messageId,
              provisioningDoc: doc,
              requestId: '0',
              now: now(),
            }),
          };
        },
        () => messageId,
      );
    },
  };
}

/** UPNs compare case-insensitively (RFC 822 local parts are, in practice, for UPNs). */
function sameUser(a: string, b: string): boolean {
  const x = Buffer.from(a.toLowerCase());
  const y = Buffer.from(b.toLowerCase());
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The enrollment context worth keeping (MS-MDE2 §2.2.4 AdditionalContext), as device info. */
function enrollmentInfo(ctx: Readonly<Record<string, string>>): Record<string, string> {
  const keep = [
    'DeviceType',
    'OSEdition',
    'OSVersion',
    'DeviceName',
    'HWDevID',
    'Locale',
    'EnrollmentType',
    'ApplicationVersion',
  ];
  return Object.fromEntries(
    keep.filter((k) => ctx[k] !== undefined).map((k) => [`Enrollment/${k}`, ctx[k]!]),
  );
}
