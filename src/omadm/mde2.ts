/**
 * MS-MDE2 (Mobile Device Enrollment Protocol v2) with the on-premise authentication policy: the
 * SOAP messages of its three services, for both sides. The server parses requests and builds
 * responses; the device agent builds requests and parses responses.
 *
 * | service | MS-MDE2 | request → response |
 * |---|---|---|
 * | discovery | §3.1.4.1 | `Discover` → `DiscoverResponse` |
 * | enrollment policy | §3.3.4.1, [MS-XCEP] §3.1.4.1 | `GetPolicies` → `GetPoliciesResponse` |
 * | enrollment | §3.4.4.1, [MS-WSTEP] §3.1.4.1, WS-Trust 1.3 §3 | `wst:RequestSecurityToken` → `wst:RequestSecurityTokenResponseCollection` |
 * | errors | §2.2.10 | SOAP 1.2 `s:Fault` |
 *
 * Every message is a SOAP 1.2 envelope (`http://www.w3.org/2003/05/soap-envelope`) addressed with
 * WS-Addressing 1.0: a request carries `a:Action`, `a:MessageID`, `a:ReplyTo` and `a:To`, a
 * response `a:Action` and `a:RelatesTo` (the request's MessageID). Credentials travel in a
 * WS-Security 1.0 `wsse:Security` header: a UsernameToken for OnPremise (MS-MDE2 §3.3.4.1.1.1.3,
 * §3.4.4.1.1.1.3), a BinarySecurityToken for Federated.
 *
 * Parsers match elements by namespace and local name, check the Action against the operation,
 * and refuse anything else with a {@link Mde2Error}; input passes the shared hostile-input guard
 * first (size, depth, no DOCTYPE). Builders write what a Windows client and a WCF enrollment
 * server write, so that both real peers accept our messages. Pure: strings and bytes in and out.
 */
import {
  attribute,
  child,
  childrenNamed,
  el,
  guardXml,
  isNil,
  quote,
  readXml,
  writeXml,
  XSI_NS,
  type XmlElement,
  type XmlLimits,
  type XmlOut,
} from './xml.ts';

/** Namespaces used by the MS-MDE2 messages. */
export const NS = {
  soap: 'http://www.w3.org/2003/05/soap-envelope',
  addressing: 'http://www.w3.org/2005/08/addressing',
  wsse: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd',
  wsu: 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd',
  wst: 'http://docs.oasis-open.org/ws-sx/ws-trust/200512',
  ac: 'http://schemas.xmlsoap.org/ws/2006/12/authorization',
  /** Discovery (MS-MDE2 §3.1.4.1.3). */
  enrollment: 'http://schemas.microsoft.com/windows/management/2012/01/enrollment',
  /** MS-XCEP. */
  xcep: 'http://schemas.microsoft.com/windows/pki/2009/01/enrollmentpolicy',
  /** MS-WSTEP (DispositionMessage, RequestID). */
  wstep: 'http://schemas.microsoft.com/windows/pki/2009/01/enrollment',
  xsi: XSI_NS,
  xsd: 'http://www.w3.org/2001/XMLSchema',
} as const;

/** The WS-Addressing Action of each message (MS-MDE2 §3.1.4.1.1, §3.3.4.1.1, §3.4.4.1.1). */
export const ACTIONS = {
  discover: `${NS.enrollment}/IDiscoveryService/Discover`,
  discoverResponse: `${NS.enrollment}/IDiscoveryService/DiscoverResponse`,
  getPolicies: `${NS.xcep}/IPolicy/GetPolicies`,
  getPoliciesResponse: `${NS.xcep}/IPolicy/GetPoliciesResponse`,
  requestSecurityToken: `${NS.wstep}/RST/wstep`,
  requestSecurityTokenResponse: `${NS.wstep}/RSTRC/wstep`,
  /** WS-Addressing 1.0 SOAP Binding §6: the default Action of a fault. */
  fault: `${NS.addressing}/soap/fault`,
} as const;

/** HTTP Content-Type of every MS-MDE2 POST and its answer (SOAP 1.2 over HTTP). */
export const MDE2_CONTENT_TYPE = 'application/soap+xml; charset=utf-8';

/** wst:TokenType of the enrollment token (MS-MDE2 §3.4.4.1.1.1). */
export const DEVICE_ENROLLMENT_TOKEN =
  'http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentToken';
/** ValueType of the RSTR's BinarySecurityToken: a base64 wap-provisioningdoc (§3.4.4.1.1.2). */
export const PROVISION_DOC_VALUE_TYPE =
  'http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentProvisionDoc';
/** ValueType of the Federated header token (MS-MDE2 §3.3.4.1.1.1.1, §3.4.4.1.1.1.1). */
export const USER_TOKEN_VALUE_TYPE =
  'http://schemas.microsoft.com/5.0.0.0/ConfigurationManager/Enrollment/DeviceEnrollmentUserToken';
/** WS-Security EncodingType of every base64 BinarySecurityToken. */
export const BASE64_ENCODING = `${NS.wsse}#base64binary`;
/** WS-Security UsernameToken Profile 1.0 §4: a clear-text password. */
export const PASSWORD_TEXT =
  'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText';
/** MS-MDE2 §3.4.4.1.1.1.3: the `u:Id` an on-premise UsernameToken MUST carry. */
export const USERNAME_TOKEN_ID = 'uuid-cc1ccc1f-2fba-4bcf-b063-ffc0cac77917-4';

const ANONYMOUS = `${NS.addressing}/anonymous`;
const SOAP11 = 'http://schemas.xmlsoap.org/soap/envelope/';
const REQUEST_TYPES = {
  Issue: `${NS.wst}/Issue`,
  Renew: `${NS.wst}/Renew`,
} as const;
/** ValueType of the RST's BinarySecurityToken: a PKCS#10 (enrollment) or PKCS#7 (renewal). */
const CSR_VALUE_TYPES = {
  PKCS10: `${NS.wstep}#PKCS10`,
  PKCS7: `${NS.wstep}#PKCS7`,
} as const;

/** Safety limits: real messages are a few KB (an RSTR with a certificate chain ~10 KB). */
export const MDE2_LIMITS: XmlLimits = { maxBytes: 256 * 1024, maxDepth: 32, maxElements: 8192 };

// ---------------------------------------------------------------------------------------------
// Faults and errors.

/**
 * A fault subcode of MS-MDE2 §2.2.10, by the lower-case identifier the spec's example and Fleet
 * use. On the wire each is written as the §2.2.10 table's QName ({@link SOAP_FAULT_SUBCODES}).
 */
export type SoapFaultSubcode =
  | 's:messageformat'
  | 's:authentication'
  | 's:authorization'
  | 's:certificaterequest'
  | 's:enrollmentserver'
  | 's:internalservicefault'
  | 'a:invalidsecurity';

/**
 * MS-MDE2 §2.2.10, one row per subcode: the QName written in `s:Subcode/s:Value` (`ns` binds its
 * prefix), the `s:Code` (SOAP 1.2 Part 1 §5.4.6: Sender when the message itself is at fault, Receiver
 * when the server declines or fails; the spec's example answers Authorization with Receiver), and
 * the HRESULT the Windows client reports for it.
 *
 * `a:` is bound where the name is defined: InvalidSecurity is WS-Security 1.0's fault (§12,
 * secext namespace) and InternalServiceFault WCF's dispatcher fault, the server MS-MDE2 describes.
 */
export const SOAP_FAULT_SUBCODES = {
  's:messageformat': {
    value: 's:MessageFormat',
    ns: NS.soap,
    code: 's:Sender',
    hresult: 0x80180001,
  },
  's:authentication': {
    value: 's:Authentication',
    ns: NS.soap,
    code: 's:Receiver',
    hresult: 0x80180002,
  },
  's:authorization': {
    value: 's:Authorization',
    ns: NS.soap,
    code: 's:Receiver',
    hresult: 0x80180003,
  },
  's:certificaterequest': {
    value: 's:CertificateRequest',
    ns: NS.soap,
    code: 's:Receiver',
    hresult: 0x80180004,
  },
  's:enrollmentserver': {
    value: 's:EnrollmentServer',
    ns: NS.soap,
    code: 's:Receiver',
    hresult: 0x80180005,
  },
  's:internalservicefault': {
    value: 'a:InternalServiceFault',
    ns: 'http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher',
    code: 's:Receiver',
    hresult: 0x80180006,
  },
  'a:invalidsecurity': {
    value: 'a:InvalidSecurity',
    ns: NS.wsse,
    code: 's:Sender',
    hresult: 0x80180007,
  },
} as const satisfies Record<
  SoapFaultSubcode,
  { value: string; ns: string; code: 's:Sender' | 's:Receiver'; hresult: number }
>;

/** A SOAP 1.2 fault as MS-MDE2 §2.2.10 sends it. */
export interface SoapFault {
  /** `s:Code/s:Value` as written, e.g. `s:Receiver`. */
  readonly code: string;
  /** The MS-MDE2 subcode, when `s:Subcode/s:Value` names one of §2.2.10's (any prefix or case). */
  readonly subcode?: SoapFaultSubcode;
  /** `s:Subcode/s:Value` as written (e.g. `s:DeviceCapReached`). */
  readonly subcodeValue?: string;
  /** The HRESULT Windows reports for the subcode. */
  readonly hresult?: number;
  /** `s:Reason/s:Text`. */
  readonly reason: string;
  readonly action?: string;
  readonly relatesTo?: string;
}

/**
 * Every failure of this module: a stable code, what it means, and the fault subcode a server
 * answers it with (`null`: not a fault in the request, so never answered with one).
 */
export const MDE2_ERRORS = {
  ERR_MDE2_MALFORMED: { message: 'not a valid MS-MDE2 message', subcode: 's:messageformat' },
  ERR_MDE2_FORBIDDEN_DOCTYPE: {
    message: 'DOCTYPE and entity declarations are not accepted',
    subcode: 's:messageformat',
  },
  ERR_MDE2_LIMIT: { message: 'the message exceeds a safety limit', subcode: 's:messageformat' },
  ERR_MDE2_INVALID_SECURITY: {
    message: 'the WS-Security header cannot be read',
    subcode: 'a:invalidsecurity',
  },
  ERR_MDE2_FAULT: { message: 'the server answered with a SOAP fault', subcode: null },
  ERR_MDE2_INVALID_ARGUMENT: { message: 'invalid argument', subcode: null },
} as const satisfies Record<string, { message: string; subcode: SoapFaultSubcode | null }>;

export type Mde2ErrorCode = keyof typeof MDE2_ERRORS;

/** The error every parser and builder here throws. */
export class Mde2Error extends Error {
  readonly code: Mde2ErrorCode;
  /** The fault received, for `ERR_MDE2_FAULT`. */
  readonly fault: SoapFault | undefined;
  constructor(code: Mde2ErrorCode, detail?: string, fault?: SoapFault) {
    super(detail ? `${MDE2_ERRORS[code].message}: ${detail}` : MDE2_ERRORS[code].message);
    this.code = code;
    this.fault = fault;
    this.name = 'Mde2Error';
  }
}

const malformed = (detail: string) => new Mde2Error('ERR_MDE2_MALFORMED', detail);
const invalidSecurity = (detail: string) => new Mde2Error('ERR_MDE2_INVALID_SECURITY', detail);

// ---------------------------------------------------------------------------------------------
// Reading the envelope.

interface Envelope {
  /** The one element inside `s:Body`. */
  readonly payload: XmlElement;
  readonly header: XmlElement | undefined;
  readonly action: string | undefined;
  readonly messageId: string | undefined;
  readonly relatesTo: string | undefined;
  readonly to: string | undefined;
}

/** Header blocks this module processes (SOAP 1.2 Part 1 §5.2.3: others must not be mandatory). */
const UNDERSTOOD = new Set([
  `${NS.addressing} Action`,
  `${NS.addressing} MessageID`,
  `${NS.addressing} ReplyTo`,
  `${NS.addressing} RelatesTo`,
  `${NS.addressing} To`,
  `${NS.wsse} Security`,
]);

const trimmed = (e: XmlElement | undefined) => e?.text.trim();

/**
 * Reads untrusted MS-MDE2 XML (a SOAP message or a provisioning document) through the shared
 * guard: too big or too deep is `ERR_MDE2_LIMIT`, a DOCTYPE `ERR_MDE2_FORBIDDEN_DOCTYPE`, and
 * XML that is not well-formed `ERR_MDE2_MALFORMED`.
 */
export function readMde2Xml(input: string | Uint8Array, limits: XmlLimits): XmlElement {
  const xml = guardXml(
    input,
    limits,
    (kind, message) =>
      new Mde2Error(kind === 'limit' ? 'ERR_MDE2_LIMIT' : 'ERR_MDE2_FORBIDDEN_DOCTYPE', message),
  );
  return readXml(xml, malformed);
}

function openEnvelope(input: string | Uint8Array, limits: XmlLimits): Envelope {
  const root = readMde2Xml(input, limits);
  if (root.name === 'Envelope' && root.ns === SOAP11)
    throw malformed('a SOAP 1.1 envelope; MS-MDE2 uses SOAP 1.2');
  if (root.ns !== NS.soap || root.name !== 'Envelope')
    throw malformed(`root element ${quote(`{${root.ns}}${root.name}`)} is not a SOAP 1.2 Envelope`);
  const header = child(root, NS.soap, 'Header');
  const body = child(root, NS.soap, 'Body');
  if (!body) throw malformed('the envelope has no Body');
  if (body.children.length !== 1)
    throw malformed(`the Body holds ${body.children.length} elements, not one`);
  for (const h of header?.children ?? []) {
    const must = attribute(h, 'mustUnderstand', NS.soap)?.trim();
    if ((must === '1' || must === 'true') && !UNDERSTOOD.has(`${h.ns} ${h.name}`))
      throw malformed(`header ${quote(`{${h.ns}}${h.name}`)} must be understood and is not`);
  }
  const a = (name: string) => (header ? trimmed(child(header, NS.addressing, name)) : undefined);
  return {
    payload: body.children[0]!,
    header,
    action: a('Action'),
    messageId: a('MessageID'),
    relatesTo: a('RelatesTo'),
    to: a('To'),
  };
}

function expectAction(env: Envelope, action: string): void {
  if (env.action === undefined) throw malformed('no WS-Addressing Action header');
  if (env.action !== action) throw malformed(`Action is ${quote(env.action)}, expected ${action}`);
}

function expectPayload(env: Envelope, namespaces: readonly string[], name: string): XmlElement {
  const p = env.payload;
  if (p.name !== name || !namespaces.includes(p.ns))
    throw malformed(
      `the Body holds ${quote(`{${p.ns}}${p.name}`)}, expected {${namespaces[0]}}${name}`,
    );
  return p;
}

/** A request: the Action must match and a MessageID must be there for the answer's RelatesTo. */
function openRequest(
  input: string | Uint8Array,
  action: string,
  namespaces: readonly string[],
  name: string,
  limits: XmlLimits,
): { env: Envelope; payload: XmlElement; messageId: string } {
  const env = openEnvelope(input, limits);
  expectAction(env, action);
  if (!env.messageId) throw malformed('no WS-Addressing MessageID header');
  return { env, payload: expectPayload(env, namespaces, name), messageId: env.messageId };
}

/** A response: a fault becomes `ERR_MDE2_FAULT`; otherwise Action and RelatesTo must be right. */
function openResponse(
  input: string | Uint8Array,
  action: string,
  ns: string,
  name: string,
  limits: XmlLimits,
): { env: Envelope; payload: XmlElement; relatesTo: string } {
  const env = openEnvelope(input, limits);
  const fault = readFault(env);
  if (fault)
    throw new Mde2Error(
      'ERR_MDE2_FAULT',
      `${fault.subcodeValue ?? fault.code}: ${fault.reason}`,
      fault,
    );
  expectAction(env, action);
  if (!env.relatesTo) throw malformed('no WS-Addressing RelatesTo header');
  return { env, payload: expectPayload(env, [ns], name), relatesTo: env.relatesTo };
}

/** The text of a required child element, whitespace-trimmed (xs:anyURI, xs:decimal, …). */
function requiredText(parent: XmlElement, ns: string, name: string): string {
  const e = child(parent, ns, name);
  if (!e || isNil(e)) throw malformed(`${parent.name} has no ${name}`);
  return e.text.trim();
}

/** The trimmed text of an optional child element; absent, nil or empty is undefined. */
function optionalText(parent: XmlElement, ns: string, name: string): string | undefined {
  const e = child(parent, ns, name);
  if (!e || isNil(e)) return undefined;
  return e.text.trim() || undefined;
}

function unsignedInt(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text))
    throw malformed(`${what} is not an unsigned integer: ${quote(text)}`);
  return Number(text);
}

function xsBoolean(text: string, what: string): boolean {
  if (text === 'true' || text === '1') return true;
  if (text === 'false' || text === '0') return false;
  throw malformed(`${what} is not a boolean: ${quote(text)}`);
}

/**
 * Strict base64 (RFC 4648 §4) as in a BinarySecurityToken or EncodedCertificate: whitespace
 * between characters is allowed (xs:base64Binary), anything else not base64 is `ERR_MDE2_MALFORMED`
 * naming `what`.
 */
export function decodeBase64(text: string, what: string): Uint8Array {
  const s = text.replace(/[\t\n\r ]/g, '');
  if (s.length === 0 || s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s))
    throw malformed(`${what} is not base64`);
  return new Uint8Array(Buffer.from(s, 'base64'));
}

const encodeBase64 = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

// ---------------------------------------------------------------------------------------------
// WS-Security.

/**
 * The credential in a request's `wsse:Security` header: a UsernameToken (OnPremise; WS-Security
 * UsernameToken Profile 1.0, PasswordText only), a BinarySecurityToken (Federated: `token` is its
 * base64 text, `valueType` its URI), or none at all.
 */
export type WsSecurity =
  | { readonly kind: 'username'; readonly username: string; readonly password: string }
  | { readonly kind: 'binary'; readonly valueType: string; readonly token: string }
  | { readonly kind: 'none' };

/** Username and password are kept exactly as written: they are credentials, not tokens. */
function readSecurity(header: XmlElement | undefined): WsSecurity {
  const security = header && child(header, NS.wsse, 'Security');
  if (!security) return { kind: 'none' };
  const username = child(security, NS.wsse, 'UsernameToken');
  const binary = child(security, NS.wsse, 'BinarySecurityToken');
  if (username && binary) throw invalidSecurity('both a UsernameToken and a BinarySecurityToken');
  if (username) {
    const name = child(username, NS.wsse, 'Username');
    const password = child(username, NS.wsse, 'Password');
    if (!name || !password) throw invalidSecurity('the UsernameToken needs Username and Password');
    // The profile's attribute is unqualified `Type`; Windows writes `wsse:Type`.
    const type = (attribute(password, 'Type') ?? attribute(password, 'Type', NS.wsse))?.trim();
    if (type !== undefined && type !== PASSWORD_TEXT)
      throw invalidSecurity(`password type ${quote(type)} is not supported, only PasswordText`);
    return { kind: 'username', username: name.text, password: password.text };
  }
  if (binary) {
    const valueType = attribute(binary, 'ValueType')?.trim();
    const encoding = attribute(binary, 'EncodingType')?.trim();
    const token = binary.text.replace(/\s+/g, '');
    if (!valueType) throw invalidSecurity('the BinarySecurityToken has no ValueType');
    if (encoding !== undefined && encoding !== BASE64_ENCODING)
      throw invalidSecurity(`EncodingType ${quote(encoding)} is not base64binary`);
    if (!token) throw invalidSecurity('the BinarySecurityToken is empty');
    return { kind: 'binary', valueType, token };
  }
  throw invalidSecurity('the Security header carries no token');
}

function securityOut(security: WsSecurity): XmlOut[] {
  switch (security.kind) {
    case 'none':
      return [];
    case 'username':
      return [
        el(
          'wsse:Security',
          [
            el(
              'wsse:UsernameToken',
              [
                el('wsse:Username', security.username),
                el('wsse:Password', security.password, { 'wsse:Type': PASSWORD_TEXT }),
              ],
              { 'u:Id': USERNAME_TOKEN_ID },
            ),
          ],
          { 's:mustUnderstand': '1' },
        ),
      ];
    case 'binary':
      return [
        el(
          'wsse:Security',
          [
            el('wsse:BinarySecurityToken', security.token, {
              ValueType: security.valueType,
              EncodingType: BASE64_ENCODING,
            }),
          ],
          { 's:mustUnderstand': '1' },
        ),
      ];
  }
}

// ---------------------------------------------------------------------------------------------
// Writing envelopes.

/** Envelope namespace declarations, as Windows declares them on its requests. */
const ENVELOPE_NS = {
  'xmlns:s': NS.soap,
  'xmlns:a': NS.addressing,
  'xmlns:u': NS.wsu,
  'xmlns:wsse': NS.wsse,
  'xmlns:wst': NS.wst,
  'xmlns:ac': NS.ac,
} as const;

const BODY_SCHEMA_NS = { 'xmlns:xsi': NS.xsi, 'xmlns:xsd': NS.xsd } as const;

interface RequestAddressing {
  readonly messageId: string;
  readonly to: string;
}

function envelope(
  namespaces: Readonly<Record<string, string>>,
  headers: readonly XmlOut[],
  body: XmlOut,
  bodyAttrs?: Readonly<Record<string, string>>,
): string {
  return writeXml([
    el('s:Envelope', [el('s:Header', headers), el('s:Body', [body], bodyAttrs)], namespaces),
  ]);
}

const actionHeader = (action: string) => el('a:Action', action, { 's:mustUnderstand': '1' });

/** A request's WS-Addressing headers, in the order Windows writes them. */
const requestHeaders = (action: string, addressing: RequestAddressing): XmlOut[] => [
  actionHeader(action),
  el('a:MessageID', addressing.messageId),
  el('a:ReplyTo', [el('a:Address', ANONYMOUS)]),
  el('a:To', addressing.to, { 's:mustUnderstand': '1' }),
];

function responseEnvelope(
  action: string,
  relatesTo: string | undefined,
  body: XmlOut,
  extraHeaders: readonly XmlOut[] = [],
  bodyAttrs?: Readonly<Record<string, string>>,
): string {
  return envelope(
    { 'xmlns:s': NS.soap, 'xmlns:a': NS.addressing, 'xmlns:u': NS.wsu },
    [
      actionHeader(action),
      ...(relatesTo !== undefined ? [el('a:RelatesTo', relatesTo)] : []),
      ...extraHeaders,
    ],
    body,
    bodyAttrs,
  );
}

const nil = (tag: string): XmlOut => el(tag, [], { 'xsi:nil': 'true' });

// ---------------------------------------------------------------------------------------------
// Discovery (MS-MDE2 §3.1).

/** The authentication policies of MS-MDE2 §3.1.4.1.3.2. */
export type AuthPolicy = 'OnPremise' | 'Federated' | 'Certificate';
const AUTH_POLICIES: readonly AuthPolicy[] = ['OnPremise', 'Federated', 'Certificate'];

/** A Discover request (MS-MDE2 §3.1.4.1.3.1 DiscoveryRequest). Values are as sent. */
export interface DiscoverRequest {
  readonly messageId: string;
  readonly to?: string;
  readonly emailAddress: string;
  /** xs:decimal, e.g. `4.0`; kept as text so that `4.0` stays `4.0`. */
  readonly requestVersion: string;
  /** `CIMClient_Windows` on Windows 10/11, `WindowsPhone` on Windows Phone. */
  readonly deviceType: string;
  readonly applicationVersion: string;
  /** The product type number (§2.2.9.6) as text, e.g. `72` (Enterprise). */
  readonly osEdition: string;
  /** The policies the client supports, in its order (1 to 3 of {@link AuthPolicy}). */
  readonly authPolicies: readonly string[];
}

/**
 * Windows Phone-era clients and Microsoft's own example write the discovery namespace with a
 * trailing slash; Windows 10 and the schema without. Both are accepted.
 */
const DISCOVERY_NAMESPACES = [NS.enrollment, `${NS.enrollment}/`] as const;

/** Parses a Discover request (server side). */
export function parseDiscoverRequest(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): DiscoverRequest {
  const { env, payload, messageId } = openRequest(
    input,
    ACTIONS.discover,
    DISCOVERY_NAMESPACES,
    'Discover',
    limits,
  );
  const ns = payload.ns;
  const request = child(payload, ns, 'request');
  if (!request) throw malformed('Discover has no request');
  const policies = child(request, ns, 'AuthPolicies');
  if (!policies) throw malformed('request has no AuthPolicies');
  const authPolicies = childrenNamed(policies, ns, 'AuthPolicy').map((p) => p.text.trim());
  if (authPolicies.length === 0) throw malformed('AuthPolicies lists no AuthPolicy');
  return {
    messageId,
    ...(env.to !== undefined ? { to: env.to } : {}),
    emailAddress: requiredText(request, ns, 'EmailAddress'),
    requestVersion: requiredText(request, ns, 'RequestVersion'),
    deviceType: requiredText(request, ns, 'DeviceType'),
    applicationVersion: requiredText(request, ns, 'ApplicationVersion'),
    osEdition: requiredText(request, ns, 'OSEdition'),
    authPolicies,
  };
}

/** Builds a Discover request (client side), element for element as Windows 10 writes it. */
export function buildDiscoverRequest(r: DiscoverRequest & { readonly to: string }): string {
  const request = el(
    'request',
    [
      el('EmailAddress', r.emailAddress),
      el('RequestVersion', r.requestVersion),
      el('DeviceType', r.deviceType),
      el('ApplicationVersion', r.applicationVersion),
      el('OSEdition', r.osEdition),
      el(
        'AuthPolicies',
        r.authPolicies.map((p) => el('AuthPolicy', p)),
      ),
    ],
    { 'xmlns:i': NS.xsi },
  );
  return envelope(
    { 'xmlns:a': NS.addressing, 'xmlns:s': NS.soap },
    requestHeaders(ACTIONS.discover, r),
    el('Discover', [request], { xmlns: NS.enrollment }),
  );
}

/** A DiscoverResponse (MS-MDE2 §3.1.4.1.3.2 DiscoveryResponse). */
export interface DiscoverResponse {
  readonly relatesTo: string;
  readonly authPolicy: AuthPolicy;
  /** xs:decimal as text, e.g. `4.0`. Optional in the schema. */
  readonly enrollmentVersion?: string;
  /** Where GetPolicies goes. Optional in the schema. */
  readonly enrollmentPolicyServiceUrl?: string;
  /** Where RequestSecurityToken goes. */
  readonly enrollmentServiceUrl: string;
  /** The STS of the Federated policy (§3.2). */
  readonly authenticationServiceUrl?: string;
}

/** Builds a DiscoverResponse (server side). Federated needs an authenticationServiceUrl. */
export function buildDiscoverResponse(r: {
  readonly relatesTo: string;
  readonly authPolicy: AuthPolicy;
  readonly enrollmentVersion: string;
  readonly enrollmentPolicyServiceUrl: string;
  readonly enrollmentServiceUrl: string;
  readonly authenticationServiceUrl?: string;
}): string {
  if (r.authPolicy === 'Federated' && r.authenticationServiceUrl === undefined)
    throw new Mde2Error('ERR_MDE2_INVALID_ARGUMENT', 'Federated needs authenticationServiceUrl');
  return responseEnvelope(
    ACTIONS.discoverResponse,
    r.relatesTo,
    el(
      'DiscoverResponse',
      [
        el('DiscoverResult', [
          el('AuthPolicy', r.authPolicy),
          el('EnrollmentVersion', r.enrollmentVersion),
          el('EnrollmentPolicyServiceUrl', r.enrollmentPolicyServiceUrl),
          el('EnrollmentServiceUrl', r.enrollmentServiceUrl),
          ...(r.authenticationServiceUrl !== undefined
            ? [el('AuthenticationServiceUrl', r.authenticationServiceUrl)]
            : []),
        ]),
      ],
      { xmlns: NS.enrollment },
    ),
  );
}

/** Parses a DiscoverResponse (client side). A fault is `ERR_MDE2_FAULT` carrying it. */
export function parseDiscoverResponse(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): DiscoverResponse {
  const { payload, relatesTo } = openResponse(
    input,
    ACTIONS.discoverResponse,
    NS.enrollment,
    'DiscoverResponse',
    limits,
  );
  const result = child(payload, NS.enrollment, 'DiscoverResult');
  if (!result) throw malformed('DiscoverResponse has no DiscoverResult');
  const authPolicy = requiredText(result, NS.enrollment, 'AuthPolicy');
  if (!(AUTH_POLICIES as readonly string[]).includes(authPolicy))
    throw malformed(`AuthPolicy ${quote(authPolicy)} is not one of ${AUTH_POLICIES.join(', ')}`);
  const version = optionalText(result, NS.enrollment, 'EnrollmentVersion');
  const policyUrl = optionalText(result, NS.enrollment, 'EnrollmentPolicyServiceUrl');
  const authUrl = optionalText(result, NS.enrollment, 'AuthenticationServiceUrl');
  return {
    relatesTo,
    authPolicy: authPolicy as AuthPolicy,
    ...(version !== undefined ? { enrollmentVersion: version } : {}),
    ...(policyUrl !== undefined ? { enrollmentPolicyServiceUrl: policyUrl } : {}),
    enrollmentServiceUrl: requiredText(result, NS.enrollment, 'EnrollmentServiceUrl'),
    ...(authUrl !== undefined ? { authenticationServiceUrl: authUrl } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Enrollment policy (MS-MDE2 §3.3, MS-XCEP).

/** A GetPolicies request. MS-MDE2 sends `client` with nil lastUpdate/preferredLanguage. */
export interface GetPoliciesRequest {
  readonly messageId: string;
  readonly to?: string;
  readonly security: WsSecurity;
}

/** Parses a GetPolicies request (server side). MS-XCEP §3.1.4.1.2.1: `client` is required. */
export function parseGetPoliciesRequest(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): GetPoliciesRequest {
  const { env, payload, messageId } = openRequest(
    input,
    ACTIONS.getPolicies,
    [NS.xcep],
    'GetPolicies',
    limits,
  );
  const client = child(payload, NS.xcep, 'client');
  if (!client || isNil(client)) throw malformed('GetPolicies has no client');
  return {
    messageId,
    ...(env.to !== undefined ? { to: env.to } : {}),
    security: readSecurity(env.header),
  };
}

/** Builds a GetPolicies request (client side) as MS-MDE2 §3.3.4.1.1.1 prescribes. */
export function buildGetPoliciesRequest(r: GetPoliciesRequest & { readonly to: string }): string {
  return envelope(
    ENVELOPE_NS,
    [...requestHeaders(ACTIONS.getPolicies, r), ...securityOut(r.security)],
    el(
      'GetPolicies',
      [el('client', [nil('lastUpdate'), nil('preferredLanguage')]), nil('requestFilter')],
      { xmlns: NS.xcep },
    ),
    BODY_SCHEMA_NS,
  );
}

/**
 * The one certificate enrollment policy MS-MDE2 §3.3.4.1.1.2 uses (MS-XCEP §3.1.4.1.3.1
 * Attributes): policySchema is always 3.
 */
export interface EnrollmentPolicy {
  /** certificateValidity/validityPeriodSeconds. */
  readonly validityPeriodSeconds: number;
  /** certificateValidity/renewalPeriodSeconds. */
  readonly renewalPeriodSeconds: number;
  /** privateKeyAttributes/minimalKeyLength, in bits. */
  readonly minimalKeyLength: number;
  /** The hash algorithm's OID, listed in oIDs (group 1) and named by hashAlgorithmOIDReference. */
  readonly hashAlgorithmOid?: string;
  /** The template name (commonName). */
  readonly commonName?: string;
  /** response/policyID; '' when not given. */
  readonly policyId?: string;
  /** permission/enroll (default true) and autoEnroll (default false). */
  readonly enroll?: boolean;
  readonly autoEnroll?: boolean;
  /** revision/majorRevision and minorRevision (defaults 1 and 0). */
  readonly majorRevision?: number;
  readonly minorRevision?: number;
}

/** An entry of GetPoliciesResponse/oIDs (MS-XCEP §3.1.4.1.3.16). */
export interface XcepOid {
  readonly value: string;
  /** The CryptoAPI OID group: 1 hash, 3 public key, 9 template, … */
  readonly group: number;
  readonly referenceId: number;
  readonly defaultName?: string;
}

/** A parsed GetPoliciesResponse. */
export interface GetPoliciesResponse {
  readonly relatesTo: string;
  readonly policy: EnrollmentPolicy;
  readonly oids: readonly XcepOid[];
}

/** wincrypt.h names of the hash OIDs a policy may name (the oID's defaultName). */
const HASH_OID_NAMES: Readonly<Record<string, string>> = {
  '1.3.14.3.2.26': 'szOID_OIWSEC_sha1',
  '2.16.840.1.101.3.4.2.1': 'szOID_NIST_sha256',
  '2.16.840.1.101.3.4.2.2': 'szOID_NIST_sha384',
  '2.16.840.1.101.3.4.2.3': 'szOID_NIST_sha512',
};
const HASH_GROUP = 1;

const nonNegative = (n: number, what: string) => {
  if (!Number.isSafeInteger(n) || n < 0)
    throw new Mde2Error('ERR_MDE2_INVALID_ARGUMENT', `${what} must be a non-negative integer`);
  return String(n);
};

/**
 * Builds a GetPoliciesResponse (server side) in the complete shape of Microsoft's example: every
 * MS-XCEP attribute present, nil where unused, the hash OID in oIDs.
 */
export function buildGetPoliciesResponse(r: {
  readonly relatesTo: string;
  readonly policy: EnrollmentPolicy;
}): string {
  const p = r.policy;
  const hashRef = p.hashAlgorithmOid !== undefined ? '0' : undefined;
  const hashName =
    p.hashAlgorithmOid !== undefined ? HASH_OID_NAMES[p.hashAlgorithmOid] : undefined;
  const attributes = el('attributes', [
    ...(p.commonName !== undefined ? [el('commonName', p.commonName)] : []),
    el('policySchema', '3'),
    el('certificateValidity', [
      el('validityPeriodSeconds', nonNegative(p.validityPeriodSeconds, 'validityPeriodSeconds')),
      el('renewalPeriodSeconds', nonNegative(p.renewalPeriodSeconds, 'renewalPeriodSeconds')),
    ]),
    el('permission', [
      el('enroll', String(p.enroll ?? true)),
      el('autoEnroll', String(p.autoEnroll ?? false)),
    ]),
    el('privateKeyAttributes', [
      el('minimalKeyLength', nonNegative(p.minimalKeyLength, 'minimalKeyLength')),
      nil('keySpec'),
      nil('keyUsageProperty'),
      nil('permissions'),
      nil('algorithmOIDReference'),
      nil('cryptoProviders'),
    ]),
    el('revision', [
      el('majorRevision', nonNegative(p.majorRevision ?? 1, 'majorRevision')),
      el('minorRevision', nonNegative(p.minorRevision ?? 0, 'minorRevision')),
    ]),
    nil('supersededPolicies'),
    nil('privateKeyFlags'),
    nil('subjectNameFlags'),
    nil('enrollmentFlags'),
    nil('generalFlags'),
    hashRef !== undefined
      ? el('hashAlgorithmOIDReference', hashRef)
      : nil('hashAlgorithmOIDReference'),
    nil('rARequirements'),
    nil('keyArchivalAttributes'),
    nil('extensions'),
  ]);
  return responseEnvelope(
    ACTIONS.getPoliciesResponse,
    r.relatesTo,
    el(
      'GetPoliciesResponse',
      [
        el('response', [
          el('policyID', p.policyId ?? ''),
          nil('policyFriendlyName'),
          nil('nextUpdateHours'),
          nil('policiesNotChanged'),
          el('policies', [
            el('policy', [
              // Microsoft's example points policyOIDReference at the one oID listed.
              ...(hashRef !== undefined ? [el('policyOIDReference', hashRef)] : []),
              nil('cAs'),
              attributes,
            ]),
          ]),
        ]),
        nil('cAs'),
        p.hashAlgorithmOid !== undefined
          ? el('oIDs', [
              el('oID', [
                el('value', p.hashAlgorithmOid),
                el('group', String(HASH_GROUP)),
                el('oIDReferenceID', hashRef!),
                hashName !== undefined ? el('defaultName', hashName) : nil('defaultName'),
              ]),
            ])
          : nil('oIDs'),
      ],
      { xmlns: NS.xcep },
    ),
    [],
    BODY_SCHEMA_NS,
  );
}

function readOids(payload: XmlElement): XcepOid[] {
  const oids = child(payload, NS.xcep, 'oIDs');
  if (!oids || isNil(oids)) return [];
  return childrenNamed(oids, NS.xcep, 'oID').map((o) => {
    const defaultName = optionalText(o, NS.xcep, 'defaultName');
    return {
      value: requiredText(o, NS.xcep, 'value'),
      group: unsignedInt(requiredText(o, NS.xcep, 'group'), 'oID/group'),
      referenceId: unsignedInt(requiredText(o, NS.xcep, 'oIDReferenceID'), 'oIDReferenceID'),
      ...(defaultName !== undefined ? { defaultName } : {}),
    };
  });
}

/** Parses a GetPoliciesResponse (client side): its first policy, with the hash OID resolved. */
export function parseGetPoliciesResponse(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): GetPoliciesResponse {
  const { payload, relatesTo } = openResponse(
    input,
    ACTIONS.getPoliciesResponse,
    NS.xcep,
    'GetPoliciesResponse',
    limits,
  );
  const x = NS.xcep;
  const response = child(payload, x, 'response');
  const policies = response && child(response, x, 'policies');
  const policy = policies && child(policies, x, 'policy');
  const attrs = policy && child(policy, x, 'attributes');
  if (!response || !attrs) throw malformed('GetPoliciesResponse holds no policy attributes');
  const schema = requiredText(attrs, x, 'policySchema');
  if (schema !== '3') throw malformed(`policySchema is ${quote(schema)}; MS-MDE2 requires 3`);
  const validity = child(attrs, x, 'certificateValidity');
  const keyAttrs = child(attrs, x, 'privateKeyAttributes');
  if (!validity || !keyAttrs) throw malformed('the policy has no certificateValidity or key');
  const oids = readOids(payload);
  const hashRef = optionalText(attrs, x, 'hashAlgorithmOIDReference');
  let hashAlgorithmOid: string | undefined;
  if (hashRef !== undefined) {
    const id = unsignedInt(hashRef, 'hashAlgorithmOIDReference');
    hashAlgorithmOid = oids.find((o) => o.referenceId === id)?.value;
    if (hashAlgorithmOid === undefined)
      throw malformed(`hashAlgorithmOIDReference ${id} names no listed oID`);
  }
  const permission = child(attrs, x, 'permission');
  const revision = child(attrs, x, 'revision');
  const flag = (name: string) => {
    const t = permission && optionalText(permission, x, name);
    return t === undefined ? undefined : xsBoolean(t, name);
  };
  const number = (parent: XmlElement | undefined, name: string) => {
    const t = parent && optionalText(parent, x, name);
    return t === undefined ? undefined : unsignedInt(t, name);
  };
  const fields = {
    hashAlgorithmOid,
    commonName: optionalText(attrs, x, 'commonName'),
    policyId: optionalText(response, x, 'policyID'),
    enroll: flag('enroll'),
    autoEnroll: flag('autoEnroll'),
    majorRevision: number(revision, 'majorRevision'),
    minorRevision: number(revision, 'minorRevision'),
  };
  return {
    relatesTo,
    policy: {
      validityPeriodSeconds: unsignedInt(
        requiredText(validity, x, 'validityPeriodSeconds'),
        'validityPeriodSeconds',
      ),
      renewalPeriodSeconds: unsignedInt(
        requiredText(validity, x, 'renewalPeriodSeconds'),
        'renewalPeriodSeconds',
      ),
      minimalKeyLength: unsignedInt(
        requiredText(keyAttrs, x, 'minimalKeyLength'),
        'minimalKeyLength',
      ),
      ...definedOnly(fields),
    },
    oids,
  };
}

/** The object without its undefined properties (for exactOptionalPropertyTypes). */
function definedOnly<T extends Record<string, unknown>>(
  o: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

// ---------------------------------------------------------------------------------------------
// Enrollment (MS-MDE2 §3.4, MS-WSTEP, WS-Trust 1.3).

/** One `ac:ContextItem` of the RST's AdditionalContext (WS-Federation 1.2 §9.2). */
export interface ContextItem {
  readonly name: string;
  readonly value: string;
}

/** A RequestSecurityToken (MS-MDE2 §3.4.4.1.1.1; renewal §3.5.4.1.1.1). */
export interface RequestSecurityToken {
  readonly messageId: string;
  readonly to?: string;
  readonly security: WsSecurity;
  /** wst:TokenType; always {@link DEVICE_ENROLLMENT_TOKEN}. */
  readonly tokenType: string;
  /** WS-Trust 1.3 §3.1 RequestType: Issue (enrollment) or Renew (§3.5). */
  readonly requestType: 'Issue' | 'Renew';
  /** The certificate request: a PKCS#10, or for renewal a PKCS#7 wrapping one. DER bytes. */
  readonly binarySecurityToken: {
    readonly valueType: 'PKCS10' | 'PKCS7';
    readonly der: Uint8Array;
  };
  /**
   * ContextItem values by name (DeviceID, HWDevID, EnrollmentType, OSEdition, …); a name given
   * several times (MAC, IMEI) maps to its first value here and keeps all in {@link contextAll}.
   * A null-prototype object: a wire name such as `__proto__` is just a key.
   */
  readonly context: Readonly<Record<string, string>>;
  /** Every ContextItem, in document order, duplicates included. */
  readonly contextAll: readonly ContextItem[];
}

function readContext(rst: XmlElement): ContextItem[] {
  const ctx = child(rst, NS.ac, 'AdditionalContext');
  if (!ctx) return [];
  return childrenNamed(ctx, NS.ac, 'ContextItem').map((item) => {
    const name = attribute(item, 'Name');
    const value = child(item, NS.ac, 'Value');
    if (name === undefined || !value) throw malformed('a ContextItem needs a Name and a Value');
    return { name, value: value.text.trim() };
  });
}

const keyOf = <T extends string>(table: Readonly<Record<T, string>>, uri: string) =>
  (Object.keys(table) as T[]).find((k) => table[k] === uri);

/** Parses a RequestSecurityToken (server side). The CSR is returned as bytes, not yet checked. */
export function parseRequestSecurityToken(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): RequestSecurityToken {
  const { env, payload, messageId } = openRequest(
    input,
    ACTIONS.requestSecurityToken,
    [NS.wst],
    'RequestSecurityToken',
    limits,
  );
  const tokenType = requiredText(payload, NS.wst, 'TokenType');
  if (tokenType !== DEVICE_ENROLLMENT_TOKEN)
    throw malformed(`TokenType ${quote(tokenType)} is not known`);
  const requestTypeUri = requiredText(payload, NS.wst, 'RequestType');
  const requestType = keyOf(REQUEST_TYPES, requestTypeUri);
  if (!requestType)
    throw malformed(`RequestType ${quote(requestTypeUri)} is neither Issue nor Renew`);
  const bst = child(payload, NS.wsse, 'BinarySecurityToken');
  if (!bst) throw malformed('RequestSecurityToken has no BinarySecurityToken');
  const valueTypeUri = attribute(bst, 'ValueType')?.trim() ?? '';
  const valueType = keyOf(CSR_VALUE_TYPES, valueTypeUri);
  if (!valueType)
    throw malformed(`BinarySecurityToken ValueType ${quote(valueTypeUri)} is unknown`);
  const encoding = attribute(bst, 'EncodingType')?.trim();
  if (encoding !== undefined && encoding !== BASE64_ENCODING)
    throw malformed(`BinarySecurityToken EncodingType ${quote(encoding)} is not base64binary`);
  const contextAll = readContext(payload);
  const context: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const item of contextAll) if (!(item.name in context)) context[item.name] = item.value;
  return {
    messageId,
    ...(env.to !== undefined ? { to: env.to } : {}),
    security: readSecurity(env.header),
    tokenType,
    requestType,
    binarySecurityToken: { valueType, der: decodeBase64(bst.text, 'the BinarySecurityToken') },
    context: Object.freeze(context),
    contextAll,
  };
}

/**
 * Builds a RequestSecurityToken (client side) as Windows writes it: the credential in the
 * header, the base64 DER request in the body, the context items in the order given (a record's
 * in its key order).
 */
export function buildRequestSecurityToken(r: {
  readonly messageId: string;
  readonly to: string;
  readonly security: WsSecurity;
  readonly requestType?: 'Issue' | 'Renew';
  readonly binarySecurityToken: {
    readonly valueType: 'PKCS10' | 'PKCS7';
    readonly der: Uint8Array;
  };
  readonly context: readonly ContextItem[] | Readonly<Record<string, string>>;
}): string {
  const items = Array.isArray(r.context)
    ? (r.context as readonly ContextItem[])
    : Object.entries(r.context).map(([name, value]) => ({ name, value }));
  return envelope(
    ENVELOPE_NS,
    [...requestHeaders(ACTIONS.requestSecurityToken, r), ...securityOut(r.security)],
    el('wst:RequestSecurityToken', [
      el('wst:TokenType', DEVICE_ENROLLMENT_TOKEN),
      el('wst:RequestType', REQUEST_TYPES[r.requestType ?? 'Issue']),
      el('wsse:BinarySecurityToken', encodeBase64(r.binarySecurityToken.der), {
        ValueType: CSR_VALUE_TYPES[r.binarySecurityToken.valueType],
        EncodingType: BASE64_ENCODING,
      }),
      el(
        'ac:AdditionalContext',
        items.map((i) => el('ac:ContextItem', [el('ac:Value', i.value)], { Name: i.name })),
        { xmlns: NS.ac },
      ),
    ]),
  );
}

/** A parsed RequestSecurityTokenResponseCollection (MS-MDE2 §3.4.4.1.1.2). */
export interface RequestSecurityTokenResponse {
  readonly relatesTo: string;
  /** The wap-provisioningdoc, decoded from base64 and UTF-8. */
  readonly provisioningDoc: string;
  readonly requestId: string;
  /** The `wsse:Security/u:Timestamp` header, as written (xs:dateTime). */
  readonly timestamp?: { readonly created: string; readonly expires: string };
}

/**
 * Builds a RequestSecurityTokenResponseCollection (server side): the provisioning document,
 * base64 of its UTF-8, in a BinarySecurityToken of ValueType DeviceEnrollmentProvisionDoc, and a
 * `wsse:Security/u:Timestamp` header from `now` to `now + validitySeconds` (default 300).
 */
export function buildRequestSecurityTokenResponse(r: {
  readonly relatesTo: string;
  readonly provisioningDoc: string;
  readonly requestId: string;
  readonly now: Date;
  readonly validitySeconds?: number;
}): string {
  const expires = new Date(r.now.getTime() + (r.validitySeconds ?? 300) * 1000);
  const security = el(
    'o:Security',
    [
      el(
        'u:Timestamp',
        [el('u:Created', r.now.toISOString()), el('u:Expires', expires.toISOString())],
        { 'u:Id': '_0' },
      ),
    ],
    { 'xmlns:o': NS.wsse, 's:mustUnderstand': '1' },
  );
  const doc = Buffer.from(r.provisioningDoc, 'utf8').toString('base64');
  return responseEnvelope(
    ACTIONS.requestSecurityTokenResponse,
    r.relatesTo,
    el(
      'RequestSecurityTokenResponseCollection',
      [
        el('RequestSecurityTokenResponse', [
          el('TokenType', DEVICE_ENROLLMENT_TOKEN),
          el('DispositionMessage', '', { xmlns: NS.wstep }),
          el('RequestedSecurityToken', [
            el('BinarySecurityToken', doc, {
              xmlns: NS.wsse,
              ValueType: PROVISION_DOC_VALUE_TYPE,
              EncodingType: BASE64_ENCODING,
            }),
          ]),
          el('RequestID', r.requestId, { xmlns: NS.wstep }),
        ]),
      ],
      { xmlns: NS.wst },
    ),
    [security],
  );
}

/** Parses a RequestSecurityTokenResponseCollection (client side). */
export function parseRequestSecurityTokenResponse(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): RequestSecurityTokenResponse {
  const { env, payload, relatesTo } = openResponse(
    input,
    ACTIONS.requestSecurityTokenResponse,
    NS.wst,
    'RequestSecurityTokenResponseCollection',
    limits,
  );
  const rstr = child(payload, NS.wst, 'RequestSecurityTokenResponse');
  const requested = rstr && child(rstr, NS.wst, 'RequestedSecurityToken');
  const bst = requested && child(requested, NS.wsse, 'BinarySecurityToken');
  if (!rstr || !bst) throw malformed('the response holds no RequestedSecurityToken');
  const tokenType = optionalText(rstr, NS.wst, 'TokenType');
  if (tokenType !== undefined && tokenType !== DEVICE_ENROLLMENT_TOKEN)
    throw malformed(`TokenType ${quote(tokenType)} is not known`);
  const valueType = attribute(bst, 'ValueType')?.trim();
  if (valueType !== PROVISION_DOC_VALUE_TYPE)
    throw malformed(
      `BinarySecurityToken ValueType ${quote(valueType ?? '')} is not a provisioning document`,
    );
  const encoding = attribute(bst, 'EncodingType')?.trim();
  if (encoding !== undefined && encoding !== BASE64_ENCODING)
    throw malformed(`BinarySecurityToken EncodingType ${quote(encoding)} is not base64binary`);
  let provisioningDoc: string;
  try {
    provisioningDoc = new TextDecoder('utf-8', { fatal: true }).decode(
      decodeBase64(bst.text, 'the provisioning document'),
    );
  } catch (e) {
    if (e instanceof Mde2Error) throw e;
    throw malformed('the provisioning document is not UTF-8');
  }
  const security = env.header && child(env.header, NS.wsse, 'Security');
  const stamp = security && child(security, NS.wsu, 'Timestamp');
  const created = stamp && optionalText(stamp, NS.wsu, 'Created');
  const expires = stamp && optionalText(stamp, NS.wsu, 'Expires');
  return {
    relatesTo,
    provisioningDoc,
    requestId: requiredText(rstr, NS.wstep, 'RequestID'),
    ...(created !== undefined && expires !== undefined ? { timestamp: { created, expires } } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Faults (MS-MDE2 §2.2.10).

/**
 * Builds a SOAP 1.2 fault (server side). `action` defaults to WS-Addressing's fault Action;
 * `relatesTo` is the request's MessageID when one could be read.
 */
export function buildSoapFault(f: {
  readonly relatesTo?: string;
  readonly action?: string;
  readonly subcode: SoapFaultSubcode;
  readonly reason: string;
}): string {
  const row = SOAP_FAULT_SUBCODES[f.subcode];
  const prefix = row.value.slice(0, row.value.indexOf(':'));
  return responseEnvelope(
    f.action ?? ACTIONS.fault,
    f.relatesTo,
    el('s:Fault', [
      el('s:Code', [
        el('s:Value', row.code),
        el('s:Subcode', [
          el('s:Value', row.value, prefix === 's' ? undefined : { [`xmlns:${prefix}`]: row.ns }),
        ]),
      ]),
      el('s:Reason', [el('s:Text', f.reason, { 'xml:lang': 'en-US' })]),
    ]),
  );
}

function subcodeOf(value: string): SoapFaultSubcode | undefined {
  const local = value.slice(value.indexOf(':') + 1).toLowerCase();
  return (Object.keys(SOAP_FAULT_SUBCODES) as SoapFaultSubcode[]).find(
    (s) => s.slice(s.indexOf(':') + 1) === local,
  );
}

function readFault(env: Envelope): SoapFault | undefined {
  const fault = env.payload;
  if (fault.ns !== NS.soap || fault.name !== 'Fault') return undefined;
  const code = child(fault, NS.soap, 'Code');
  const subcode = code && child(code, NS.soap, 'Subcode');
  const subcodeValue = subcode && optionalText(subcode, NS.soap, 'Value');
  const reason = child(fault, NS.soap, 'Reason');
  const texts = reason ? childrenNamed(reason, NS.soap, 'Text') : [];
  if (!code || texts.length === 0) throw malformed('a Fault needs a Code and a Reason');
  const known = subcodeValue !== undefined ? subcodeOf(subcodeValue) : undefined;
  return {
    code: requiredText(code, NS.soap, 'Value'),
    ...(known !== undefined ? { subcode: known, hresult: SOAP_FAULT_SUBCODES[known].hresult } : {}),
    ...(subcodeValue !== undefined ? { subcodeValue } : {}),
    reason: texts[0]!.text.trim(),
    ...(env.action !== undefined ? { action: env.action } : {}),
    ...(env.relatesTo !== undefined ? { relatesTo: env.relatesTo } : {}),
  };
}

/**
 * Reads a SOAP fault (client side): undefined when the envelope's Body holds anything else.
 * Input that is not a SOAP 1.2 envelope at all still throws {@link Mde2Error}.
 */
export function parseSoapFault(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): SoapFault | undefined {
  return readFault(openEnvelope(input, limits));
}
