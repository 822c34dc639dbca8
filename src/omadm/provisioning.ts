/**
 * The wap-provisioningdoc (version 1.1) that an MS-MDE2 enrollment returns, base64-encoded, in
 * the RequestSecurityTokenResponse (MS-MDE2 §2.2.9.1 "XML Provisioning Schema"; Microsoft's
 * "On-premises authentication device enrollment" page decodes the same example). It tells the
 * device what to install and whom to talk to:
 *
 * ```xml
 * <wap-provisioningdoc version="1.1">
 *   <characteristic type="CertificateStore">      Root/System/<SHA-1>, CA/System/<SHA-1>:
 *                                                  EncodedCertificate (base64 DER)
 *                                                  My/User|System/<SHA-1> + PrivateKeyContainer:
 *                                                  the MDM client certificate
 *                                                  My/WSTEP/Renew: ROBOSupport, RenewPeriod,
 *                                                  RetryInterval (datatype attributes required)
 *   <characteristic type="APPLICATION">           w7: the OMA-DM account (PROVIDER-ID, ADDR, …,
 *                                                  APPAUTH for client and server)
 *   <characteristic type="DMClient">              Provider/<PROVIDER-ID>: Poll schedule,
 *                                                  EntDeviceName, EntDMID
 * </wap-provisioningdoc>
 * ```
 *
 * {@link buildProvisioningDoc} and {@link parseProvisioningDoc} convert between that document and
 * the typed {@link ProvisioningDoc}; a built document parses back to the same value. Parts of a
 * document the model does not describe (other CSPs, other APPLICATION ids) are ignored.
 * Failures are {@link Mde2Error}s.
 */
import { formatName, parseCertificate, sha1Thumbprint } from '../pki/x509.ts';
import { decodeBase64, MDE2_LIMITS, Mde2Error, readMde2Xml } from './mde2.ts';
import {
  attribute,
  childrenNamed,
  el,
  quote,
  writeXml,
  type XmlElement,
  type XmlLimits,
  type XmlOut,
} from './xml.ts';

/** A certificate and the SHA-1 thumbprint (40 hex digits) it is stored under. */
export interface CertificateEntry {
  readonly thumbprint: string;
  readonly der: Uint8Array;
}

/** The MDM client certificate: My/User for a user enrollment, My/System for a device one. */
export interface ClientCertificateEntry extends CertificateEntry {
  readonly store: 'User' | 'System';
}

/** CertificateStore/My/WSTEP/Renew: automatic renewal through MS-WSTEP (MS-MDE2 §3.5). */
export interface RenewSettings {
  /** ROBOSupport: renew on behalf of the user, without asking. */
  readonly roboSupport: boolean;
  /** RenewPeriod: days before expiry at which renewal starts. */
  readonly renewPeriodDays: number;
  /** RetryInterval: days between renewal attempts. */
  readonly retryIntervalDays: number;
}

/** An APPAUTH characteristic: credentials for one direction of OMA-DM authentication. */
export interface AppAuth {
  /** CLIENT: the server authenticates to the client; APPSRV: the client to the server. */
  readonly level: 'CLIENT' | 'APPSRV';
  readonly type: 'DIGEST' | 'BASIC';
  /** AAUTHNAME; Microsoft's example leaves it out of the CLIENT entry. */
  readonly name?: string;
  readonly secret: string;
  /** AAUTHDATA: the base64 nonce of DIGEST. */
  readonly data?: string;
}

/** The w7 APPLICATION characteristic: the OMA-DM server account. */
export interface Application {
  readonly providerId: string;
  readonly name: string;
  /** ADDR: the management server URL. */
  readonly addr: string;
  readonly serverList?: string;
  readonly role?: number;
  /** BACKCOMPATRETRYDISABLED, a parm without value: present or not. */
  readonly backCompatRetryDisabled?: boolean;
  /** `application/vnd.syncml.dm+xml` or `+wbxml`. */
  readonly defaultEncoding: string;
  /** See {@link sslClientCertSearchCriteria}. Windows accepted documents without it. */
  readonly sslClientCertSearchCriteria?: string;
  readonly connRetryFreq?: number;
  /** Milliseconds. */
  readonly initialBackoffTime?: number;
  /** Milliseconds. */
  readonly maxBackoffTime?: number;
  readonly appAuth: readonly AppAuth[];
}

/**
 * DMClient/Provider/<id>/Poll (DMClient CSP): retries in three sets, intervals in minutes.
 * Each is optional: real documents set only some (Fleet's sets only NumberOfFirstRetries).
 */
export interface PollSchedule {
  readonly numberOfFirstRetries?: number;
  readonly intervalForFirstSetOfRetries?: number;
  readonly numberOfSecondRetries?: number;
  readonly intervalForSecondSetOfRetries?: number;
  readonly numberOfRemainingScheduledRetries?: number;
  readonly intervalForRemainingScheduledRetries?: number;
  readonly pollOnLogin?: boolean;
}

/** DMClient/Provider/<providerId>; the providerId is the APPLICATION's PROVIDER-ID. */
export interface DmClient {
  readonly providerId: string;
  readonly entDeviceName?: string;
  readonly entDMID?: string;
  readonly poll?: PollSchedule;
}

/** What an MS-MDE2 provisioning document says. */
export interface ProvisioningDoc {
  /** CertificateStore/Root/System. */
  readonly rootCertificates: readonly CertificateEntry[];
  /** CertificateStore/CA/System; absent when there are none (an empty list is written as none). */
  readonly intermediateCertificates?: readonly CertificateEntry[];
  readonly clientCertificate: ClientCertificateEntry;
  readonly renew?: RenewSettings;
  readonly application: Application;
  readonly dmClient: DmClient;
}

// ---------------------------------------------------------------------------------------------
// Helpers for building one.

/** A certificate entry for DER bytes: the thumbprint is the SHA-1, upper-case hex as Windows shows. */
export function certificateEntry(der: Uint8Array): CertificateEntry {
  return { thumbprint: sha1Thumbprint(parseCertificate(der)).toUpperCase(), der };
}

/** RFC 2396 §2.3 unreserved characters; everything else is %-escaped (UTF-8). */
function uriEscape(s: string): string {
  return Array.from(new TextEncoder().encode(s), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-_.!~*'()]/.test(c)
      ? c
      : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/**
 * The SSLCLIENTCERTSEARCHCRITERIA value that makes the DM client present this certificate
 * (w7 APPLICATION CSP): `Subject=<escaped subject>&Stores=My%5C<store>`, name/value pairs joined
 * by `&`, values URI-escaped per RFC 2396. `subject` is the certificate (DER), whose subject is
 * written in encoding order like Microsoft's example (`DC=com,DC=microsoft,CN=Users,…`), or a
 * subject string used as given. The XML writer escapes the `&`.
 */
export function sslClientCertSearchCriteria(
  subject: Uint8Array | string,
  store: 'User' | 'System' = 'User',
): string {
  let dn = subject;
  if (typeof dn !== 'string') {
    const name = parseCertificate(dn).subject;
    dn = formatName({ der: name.der, rdns: name.rdns.toReversed() });
  }
  return `Subject=${uriEscape(dn)}&Stores=My%5C${store}`;
}

// ---------------------------------------------------------------------------------------------
// Building.

const THUMBPRINT = /^[0-9A-Fa-f]{40}$/;

const invalid = (detail: string) => new Mde2Error('ERR_MDE2_INVALID_ARGUMENT', detail);

function integer(n: number, what: string): string {
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`${what} must be a non-negative integer`);
  return String(n);
}

const characteristic = (type: string, children: readonly XmlOut[]) =>
  el('characteristic', children, { type });

const parm = (name: string, value?: string, datatype?: string) =>
  el('parm', [], { name, value, datatype });

function certificates(entries: readonly CertificateEntry[], what: string): XmlOut[] {
  return entries.map((c) => {
    if (!THUMBPRINT.test(c.thumbprint)) throw invalid(`${what} thumbprint is not 40 hex digits`);
    return characteristic(c.thumbprint, [
      parm('EncodedCertificate', Buffer.from(c.der).toString('base64')),
    ]);
  });
}

/** The integer Poll parms, in the DMClient CSP's order, with their model keys. */
const POLL_PARMS = [
  ['NumberOfFirstRetries', 'numberOfFirstRetries'],
  ['IntervalForFirstSetOfRetries', 'intervalForFirstSetOfRetries'],
  ['NumberOfSecondRetries', 'numberOfSecondRetries'],
  ['IntervalForSecondSetOfRetries', 'intervalForSecondSetOfRetries'],
  ['NumberOfRemainingScheduledRetries', 'numberOfRemainingScheduledRetries'],
  ['IntervalForRemainingScheduledRetries', 'intervalForRemainingScheduledRetries'],
] as const;

function pollOut(poll: PollSchedule): XmlOut {
  return characteristic('Poll', [
    ...POLL_PARMS.flatMap(([name, key]) => {
      const v = poll[key];
      return v === undefined ? [] : [parm(name, integer(v, name), 'integer')];
    }),
    ...(poll.pollOnLogin !== undefined
      ? [parm('PollOnLogin', String(poll.pollOnLogin), 'boolean')]
      : []),
  ]);
}

function applicationOut(a: Application): XmlOut {
  const optional = (name: string, v: number | undefined) =>
    v === undefined ? [] : [parm(name, integer(v, name))];
  return characteristic('APPLICATION', [
    parm('APPID', 'w7'),
    parm('PROVIDER-ID', a.providerId),
    parm('NAME', a.name),
    parm('ADDR', a.addr),
    ...(a.serverList !== undefined ? [parm('ServerList', a.serverList)] : []),
    ...optional('ROLE', a.role),
    ...optional('CONNRETRYFREQ', a.connRetryFreq),
    ...optional('INITIALBACKOFFTIME', a.initialBackoffTime),
    ...optional('MAXBACKOFFTIME', a.maxBackoffTime),
    ...(a.backCompatRetryDisabled ? [parm('BACKCOMPATRETRYDISABLED')] : []),
    parm('DEFAULTENCODING', a.defaultEncoding),
    ...(a.sslClientCertSearchCriteria !== undefined
      ? [parm('SSLCLIENTCERTSEARCHCRITERIA', a.sslClientCertSearchCriteria)]
      : []),
    ...a.appAuth.map((x) =>
      characteristic('APPAUTH', [
        parm('AAUTHLEVEL', x.level),
        parm('AAUTHTYPE', x.type),
        ...(x.name !== undefined ? [parm('AAUTHNAME', x.name)] : []),
        parm('AAUTHSECRET', x.secret),
        ...(x.data !== undefined ? [parm('AAUTHDATA', x.data)] : []),
      ]),
    ),
  ]);
}

/**
 * Builds the document, laid out like Microsoft's example: one CertificateStore for the trust
 * anchors (Root, then CA), one for My (the client certificate with its empty
 * PrivateKeyContainer, then WSTEP/Renew), then APPLICATION, then DMClient. Starts with an XML
 * declaration, since the base64 wrapping hides any other statement of the encoding.
 */
export function buildProvisioningDoc(doc: ProvisioningDoc): string {
  const c = doc.clientCertificate;
  const anchors = [
    characteristic('Root', [
      characteristic('System', certificates(doc.rootCertificates, 'a root certificate')),
    ]),
    ...(doc.intermediateCertificates?.length
      ? [
          characteristic('CA', [
            characteristic(
              'System',
              certificates(doc.intermediateCertificates, 'an intermediate certificate'),
            ),
          ]),
        ]
      : []),
  ];
  const r = doc.renew;
  const my = characteristic('My', [
    characteristic(c.store, [
      ...certificates([c], 'the client certificate'),
      characteristic('PrivateKeyContainer', []),
    ]),
    ...(r
      ? [
          characteristic('WSTEP', [
            characteristic('Renew', [
              parm('ROBOSupport', String(r.roboSupport), 'boolean'),
              parm('RenewPeriod', integer(r.renewPeriodDays, 'RenewPeriod'), 'integer'),
              parm('RetryInterval', integer(r.retryIntervalDays, 'RetryInterval'), 'integer'),
            ]),
          ]),
        ]
      : []),
  ]);
  const d = doc.dmClient;
  if (d.providerId !== doc.application.providerId)
    throw invalid('the DMClient provider must be the APPLICATION PROVIDER-ID');
  const dmClient = characteristic('DMClient', [
    characteristic('Provider', [
      characteristic(d.providerId, [
        ...(d.poll ? [pollOut(d.poll)] : []),
        ...(d.entDeviceName !== undefined
          ? [parm('EntDeviceName', d.entDeviceName, 'string')]
          : []),
        ...(d.entDMID !== undefined ? [parm('EntDMID', d.entDMID, 'string')] : []),
      ]),
    ]),
  ]);
  return writeXml(
    [
      el(
        'wap-provisioningdoc',
        [
          characteristic('CertificateStore', anchors),
          characteristic('CertificateStore', [my]),
          applicationOut(doc.application),
          dmClient,
        ],
        { version: '1.1' },
      ),
    ],
    true,
  );
}

// ---------------------------------------------------------------------------------------------
// Parsing.

const malformed = (detail: string) => new Mde2Error('ERR_MDE2_MALFORMED', detail);

const characteristics = (e: XmlElement) => childrenNamed(e, '', 'characteristic');
const typeOf = (e: XmlElement) => attribute(e, 'type') ?? '';
/** Store and CSP names are matched without regard to case, as the CertificateStore CSP does. */
const named = (e: XmlElement, type: string) =>
  characteristics(e).filter((c) => typeOf(c).toLowerCase() === type.toLowerCase());

/** The parms of a characteristic by name: value (undefined when the parm has none), datatype. */
function parms(e: XmlElement): Map<string, { value?: string; datatype?: string }> {
  const out = new Map<string, { value?: string; datatype?: string }>();
  for (const p of childrenNamed(e, '', 'parm')) {
    const name = attribute(p, 'name');
    if (name === undefined) throw malformed(`a parm in ${quote(typeOf(e))} has no name`);
    const value = attribute(p, 'value');
    const datatype = attribute(p, 'datatype');
    out.set(name, {
      ...(value !== undefined ? { value } : {}),
      ...(datatype !== undefined ? { datatype } : {}),
    });
  }
  return out;
}

type Parms = ReturnType<typeof parms>;

function text(ps: Parms, name: string, where: string): string | undefined {
  const p = ps.get(name);
  if (p === undefined) return undefined;
  if (p.value === undefined) throw malformed(`${where} parm ${name} has no value`);
  if (p.datatype !== undefined && p.datatype !== 'string')
    throw malformed(`${where} parm ${name} is declared ${quote(p.datatype)}, not string`);
  return p.value;
}

function requiredText(ps: Parms, name: string, where: string): string {
  const v = text(ps, name, where);
  if (v === undefined) throw malformed(`${where} has no ${name}`);
  return v;
}

function num(ps: Parms, name: string, where: string): number | undefined {
  const p = ps.get(name);
  if (p === undefined) return undefined;
  if (p.datatype !== undefined && p.datatype !== 'integer')
    throw malformed(`${where} parm ${name} is declared ${quote(p.datatype)}, not integer`);
  if (p.value === undefined || !/^\d{1,15}$/.test(p.value.trim()))
    throw malformed(`${where} parm ${name} is not a non-negative integer`);
  return Number(p.value.trim());
}

function bool(ps: Parms, name: string, where: string): boolean | undefined {
  const p = ps.get(name);
  if (p === undefined) return undefined;
  if (p.datatype !== undefined && p.datatype !== 'boolean')
    throw malformed(`${where} parm ${name} is declared ${quote(p.datatype)}, not boolean`);
  const v = p.value?.trim().toLowerCase();
  if (v !== 'true' && v !== 'false') throw malformed(`${where} parm ${name} is not a boolean`);
  return v === 'true';
}

function required<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw malformed(`${what} is missing`);
  return v;
}

/** The object without its undefined properties (for exactOptionalPropertyTypes). */
function definedOnly<T extends Record<string, unknown>>(
  o: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}

function readCertificates(store: XmlElement, where: string): CertificateEntry[] {
  return characteristics(store)
    .filter((c) => typeOf(c).toLowerCase() !== 'privatekeycontainer')
    .map((c) => {
      const thumbprint = typeOf(c);
      if (!THUMBPRINT.test(thumbprint))
        throw malformed(`${where} entry ${quote(thumbprint)} is not a SHA-1 thumbprint`);
      const what = `${where}/${thumbprint} EncodedCertificate`;
      const der = decodeBase64(requiredText(parms(c), 'EncodedCertificate', what), what);
      try {
        parseCertificate(der);
      } catch {
        throw malformed(`${what} is not an X.509 certificate`);
      }
      return { thumbprint, der };
    });
}

const LEVELS = ['CLIENT', 'APPSRV'] as const;
const AUTH_TYPES = ['DIGEST', 'BASIC'] as const;

function oneOf<T extends string>(allowed: readonly T[], v: string, what: string): T {
  if (!(allowed as readonly string[]).includes(v))
    throw malformed(`${what} is ${quote(v)}, not one of ${allowed.join(', ')}`);
  return v as T;
}

function readAppAuth(c: XmlElement): AppAuth {
  const ps = parms(c);
  const where = 'APPAUTH';
  return {
    level: oneOf(LEVELS, requiredText(ps, 'AAUTHLEVEL', where), 'AAUTHLEVEL'),
    type: oneOf(AUTH_TYPES, requiredText(ps, 'AAUTHTYPE', where), 'AAUTHTYPE'),
    ...definedOnly({ name: text(ps, 'AAUTHNAME', where) }),
    secret: requiredText(ps, 'AAUTHSECRET', where),
    ...definedOnly({ data: text(ps, 'AAUTHDATA', where) }),
  };
}

function readApplication(c: XmlElement): Application {
  const ps = parms(c);
  const where = 'APPLICATION';
  return {
    providerId: requiredText(ps, 'PROVIDER-ID', where),
    name: requiredText(ps, 'NAME', where),
    addr: requiredText(ps, 'ADDR', where),
    ...definedOnly({
      serverList: text(ps, 'ServerList', where),
      role: num(ps, 'ROLE', where),
      backCompatRetryDisabled: ps.has('BACKCOMPATRETRYDISABLED') ? true : undefined,
    }),
    defaultEncoding: requiredText(ps, 'DEFAULTENCODING', where),
    ...definedOnly({
      sslClientCertSearchCriteria: text(ps, 'SSLCLIENTCERTSEARCHCRITERIA', where),
      connRetryFreq: num(ps, 'CONNRETRYFREQ', where),
      initialBackoffTime: num(ps, 'INITIALBACKOFFTIME', where),
      maxBackoffTime: num(ps, 'MAXBACKOFFTIME', where),
    }),
    appAuth: named(c, 'APPAUTH').map(readAppAuth),
  };
}

function readDmClient(docClients: readonly XmlElement[], providerId: string): DmClient {
  const providers = docClients.flatMap((d) => named(d, 'Provider')).flatMap(characteristics);
  const p = providers.find((x) => typeOf(x) === providerId);
  if (!p) throw malformed(`DMClient has no Provider ${quote(providerId)}, the APPLICATION's`);
  const ps = parms(p);
  const where = `DMClient/Provider/${providerId}`;
  const pollNode = named(p, 'Poll')[0];
  let poll: PollSchedule | undefined;
  if (pollNode) {
    const pp = parms(pollNode);
    poll = definedOnly({
      ...Object.fromEntries(POLL_PARMS.map(([name, key]) => [key, num(pp, name, `${where}/Poll`)])),
      pollOnLogin: bool(pp, 'PollOnLogin', `${where}/Poll`),
    }) as PollSchedule;
  }
  return {
    providerId,
    ...definedOnly({
      entDeviceName: text(ps, 'EntDeviceName', where),
      entDMID: text(ps, 'EntDMID', where),
      poll,
    }),
  };
}

function readRenew(my: XmlElement): RenewSettings | undefined {
  const renew = named(my, 'WSTEP').flatMap((w) => named(w, 'Renew'))[0];
  if (!renew) return undefined;
  const ps = parms(renew);
  const where = 'My/WSTEP/Renew';
  return {
    roboSupport: required(bool(ps, 'ROBOSupport', where), `${where} ROBOSupport`),
    renewPeriodDays: required(num(ps, 'RenewPeriod', where), `${where} RenewPeriod`),
    retryIntervalDays: required(num(ps, 'RetryInterval', where), `${where} RetryInterval`),
  };
}

/**
 * Parses a provisioning document (device side). It must be version 1.1 and hold exactly one
 * client certificate, a w7 APPLICATION and the DMClient provider of that APPLICATION.
 * Every EncodedCertificate must be base64 of an X.509 certificate; thumbprints are returned as
 * written, and whether they match the certificates is for the installer to check. Input passes the same hostile-input guard as the SOAP messages.
 */
export function parseProvisioningDoc(
  input: string | Uint8Array,
  limits: XmlLimits = MDE2_LIMITS,
): ProvisioningDoc {
  const root = readMde2Xml(input, limits);
  if (root.ns !== '' || root.name !== 'wap-provisioningdoc')
    throw malformed(`root element ${quote(root.name)} is not wap-provisioningdoc`);
  const version = attribute(root, 'version');
  if (version !== '1.1')
    throw malformed(`wap-provisioningdoc version is ${quote(version ?? '')}, not 1.1`);

  const stores = named(root, 'CertificateStore');
  const inStore = (type: string, sub: string) =>
    stores.flatMap((s) => named(s, type)).flatMap((t) => named(t, sub));
  const roots = inStore('Root', 'System').flatMap((s) => readCertificates(s, 'Root/System'));
  const cas = inStore('CA', 'System').flatMap((s) => readCertificates(s, 'CA/System'));
  const mys = stores.flatMap((s) => named(s, 'My'));
  const clients = (['User', 'System'] as const).flatMap((store) =>
    mys
      .flatMap((m) => named(m, store))
      .flatMap((s) => readCertificates(s, `My/${store}`))
      .map((c) => ({ ...c, store })),
  );
  if (clients.length !== 1)
    throw malformed(`expected one client certificate in My, found ${clients.length}`);
  const renew = mys.map(readRenew).find((r) => r !== undefined);

  const application = named(root, 'APPLICATION').find((a) => parms(a).get('APPID')?.value === 'w7');
  if (!application) throw malformed('no w7 APPLICATION characteristic');
  const app = readApplication(application);
  return {
    rootCertificates: roots,
    ...(cas.length ? { intermediateCertificates: cas } : {}),
    clientCertificate: clients[0]!,
    ...(renew ? { renew } : {}),
    application: app,
    dmClient: readDmClient(named(root, 'DMClient'), app.providerId),
  };
}
