/**
 * SCEP enrollment as the CSPs drive it (omadm-reference.md §3.3; MS-MDM CSP reference):
 * `ClientCertificateInstall/SCEP/{UniqueID}` (Device and User) and the older
 * `CertificateStore/MY/SCEP/{UniqueID}` (its certificates land in the user's My store, where
 * `MY/User` shows them).
 *
 * The `Install/*` parameters are plain tree nodes. `Exec Install/Enroll` checks and captures
 * them (a missing or invalid required parameter → 400), clears `Install/Challenge` (a
 * consumed secret), sets Status 32 and queues the enrollment; the work runs in the background
 * ({@link ScepEnrollments.runDue}), as Windows does after acknowledging the Exec:
 *
 * 1. a key is made where KeyProtection says (1 TPM or fail, 2 TPM else software, 3 software,
 *    4 Hello with ContainerName) and recorded with the transactionID (SHA-256 of the key)
 *    before anything is sent, so an agent killed mid-request re-sends the same PKCSReq
 *    (our server and RFC 8894 §3.3.1 servers answer a re-sent request with its outcome);
 * 2. for each ServerURL (`;`-separated) in order: GetCACaps, GetCACert — a CA chain without
 *    a certificate whose SHA-1 is CAThumbprint is refused before the request is sent —
 *    then PKCSReq with the challenge; the first server that answers is
 *    `RespondentServerUrl`;
 * 3. PENDING → Status 2, and a CertPoll every RetryDelay minutes (at least 1), at most
 *    RetryCount times (at most 30; 0 = no polls); still PENDING after that → Status 16 with
 *    ERROR_TIMEOUT;
 * 4. SUCCESS → the certificate goes to My with its key (replacing the one a previous
 *    enrollment of this UniqueID installed), Status 1; FAILURE → Status 16 with an ErrorCode by
 *    failInfo (errors.ts), and the key is dropped.
 *
 * `CertThumbprint` is the SHA-1 of the installed certificate, and empty once it is no longer
 * usable (expired, or it or its key removed): the server's re-enroll trigger. Delete of the
 * `{UniqueID}` node removes the certificate and its key.
 *
 * Parameters accepted and not used: ValidPeriod/ValidPeriodUnits (NDES reads them from a
 * Microsoft request attribute; RFC 8894 servers decide validity), AttestPrivateKey,
 * AADKeyIdentifierList, CustomTextToShowInPrompt (given to the PIN prompt).
 */
import { deviceScepTransport } from '../http.ts';
import {
  extKeyUsage,
  keyUsage,
  subjectAltName,
  type GeneralNameInput,
} from '../../ca/certificate.ts';
import { parseX500 } from '../../ca/name.ts';
import { enc } from '../../pki/der.ts';
import { EXT, type KeyUsageName } from '../../pki/oids.ts';
import type { SignedDataDigest } from '../../pki/cms.ts';
import { parseCertificate, type Extension } from '../../pki/x509.ts';
import {
  createScepClient,
  isScepClientError,
  type EnrollResult,
  type ScepClientErrorCode,
  type ScepTransport,
} from '../../scep/client.ts';
import { DeviceError, errorCodeOf, type DeviceErrorCode } from '../errors.ts';
import type { KeyLocation, KeyVault } from '../keys.ts';
import {
  SCEP_STATUS,
  type DeviceStateData,
  type ScepEnrollment,
  type ScepParameters,
  type Scope,
} from '../state.ts';
import type { CertificateStores } from '../stores.ts';
import { STATUS, type CspHooks, type ManagementTree, type StatusCode } from '../tree.ts';
import { parseCspUri } from './uri.ts';

export type { ScepTransport } from '../../scep/client.ts';

export interface ScepContext {
  readonly state: () => DeviceStateData;
  readonly tree: () => ManagementTree;
  readonly keys: KeyVault;
  readonly stores: CertificateStores;
  /** Persists the state (after each step of an enrollment). */
  readonly save: () => Promise<void>;
  readonly now: () => Date;
  readonly minuteMs: number;
  /** How to reach a ServerURL (default: HTTP with fetch). */
  readonly transport?: (url: string) => ScepTransport;
}

type Csp = ScepEnrollment['csp'];

interface ScepUri {
  readonly scope: Scope;
  readonly csp: Csp;
  readonly id: string;
  /** URI of the `{UniqueID}` node. */
  readonly base: string;
  /** Segments below `{UniqueID}`. */
  readonly rest: readonly string[];
}

function scepUri(uri: string): ScepUri | undefined {
  const u = parseCspUri(uri);
  if (!u) return undefined;
  let depth: number;
  let csp: Csp;
  let scope = u.scope;
  if (u.csp === 'ClientCertificateInstall' && u.path[0] === 'SCEP') {
    csp = 'ClientCertificateInstall';
    depth = 1;
  } else if (
    u.csp === 'CertificateStore' &&
    u.scope === 'device' &&
    u.path[0] === 'MY' &&
    u.path[1] === 'SCEP'
  ) {
    csp = 'CertificateStore';
    depth = 2;
    scope = 'user';
  } else return undefined;
  const id = u.path[depth];
  if (id === undefined) return undefined;
  const base = uri
    .split('/')
    .slice(0, 5 + depth + 1)
    .join('/');
  return { scope, csp, id, base, rest: u.path.slice(depth + 1) };
}

/** Leaf names of the two trees (the legacy one spells some differently, `HashAlgrithm` [sic]). */
const LEAF: Readonly<
  Record<
    Csp,
    {
      readonly hash: string;
      readonly ca: string;
      readonly units: string;
      readonly thumbprint: string;
    }
  >
> = {
  ClientCertificateInstall: {
    hash: 'HashAlgorithm',
    ca: 'CAThumbprint',
    units: 'ValidPeriodUnits',
    thumbprint: 'CertThumbprint',
  },
  CertificateStore: {
    hash: 'HashAlgrithm',
    ca: 'CAThumbPrint',
    units: 'ValidPeriodUnit',
    thumbprint: 'CertThumbPrint',
  },
};

/** Windows alt-name ids of SubjectAlternativeNames (`type+value;…`) → GeneralName forms. */
const SAN_TYPES: Readonly<Record<string, GeneralNameInput['type']>> = {
  '2': 'email',
  '3': 'dns',
  '7': 'uri',
  '8': 'ip',
  '11': 'upn',
};

/** CERT_*_KEY_USAGE bits of KeyUsage → RFC 5280 names (wincrypt.h). */
const KEY_USAGE_MASK: readonly [number, KeyUsageName][] = [
  [0x80, 'digitalSignature'],
  [0x40, 'nonRepudiation'],
  [0x20, 'keyEncipherment'],
  [0x10, 'dataEncipherment'],
  [0x08, 'keyAgreement'],
  [0x04, 'keyCertSign'],
  [0x02, 'cRLSign'],
  [0x01, 'encipherOnly'],
  [0x8000, 'decipherOnly'],
];

const OID = /^[0-2](\.(0|[1-9]\d*))+$/;

function bad(message: string): never {
  throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', message);
}

/** Reads and checks the Install parameters (see the module comment for the rules). */
export function readParameters(
  get: (leaf: string) => string | undefined,
  csp: Csp,
): ScepParameters {
  const names = LEAF[csp];
  const required = (leaf: string) => {
    const v = get(leaf)?.trim();
    if (!v) bad(`Install/${leaf} is required`);
    return v;
  };
  const int = (leaf: string, fallback: number) => {
    const v = get(leaf);
    if (v === undefined || v.trim() === '') return fallback;
    if (!/^\d+$/.test(v.trim())) bad(`Install/${leaf} is not a number`);
    return Number(v);
  };
  const serverUrls = required('ServerURL')
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const u of serverUrls)
    if (!/^https?:\/\/[^/]/i.test(u)) bad(`ServerURL "${u}" is not an HTTP(S) URL`);
  const challenge = required('Challenge');
  const ekus = required('EKUMapping')
    .split('+')
    .map((s) => s.trim());
  for (const e of ekus) if (!OID.test(e)) bad(`EKUMapping "${e}" is not an OID`);
  const keyUsageBits = int('KeyUsage', -1);
  if (keyUsageBits < 0) bad('Install/KeyUsage is required');
  if ((keyUsageBits & 0xa0) === 0)
    bad('KeyUsage must include digitalSignature (0x80) or keyEncipherment (0x20)');
  const subjectName = required('SubjectName');
  try {
    parseX500(subjectName);
  } catch {
    bad(`SubjectName "${subjectName}" is not an X.500 name`);
  }
  const keyProtection = int('KeyProtection', 3);
  if (![1, 2, 3, 4].includes(keyProtection)) bad('KeyProtection must be 1, 2, 3 or 4');
  const containerName = get('ContainerName')?.trim() || undefined;
  if (keyProtection === 4 && !containerName) bad('KeyProtection 4 (Hello) needs a ContainerName');
  const keyLength = Number(required('KeyLength'));
  if (![1024, 2048, 4096].includes(keyLength)) bad('KeyLength must be 1024, 2048 or 4096');
  if (keyProtection === 4 && keyLength !== 2048) bad('a Hello key is RSA 2048');
  const hashAlgorithms = required(names.hash)
    .split('+')
    .map((s) => s.trim().toUpperCase());
  for (const h of hashAlgorithms)
    if (!['SHA-1', 'SHA-2', 'SHA-3'].includes(h))
      bad(`HashAlgorithm "${h}" is not SHA-1, SHA-2 or SHA-3`);
  if (!hashAlgorithms.includes('SHA-2') && !hashAlgorithms.includes('SHA-1'))
    bad('SHA-3 alone is not supported by SCEP (RFC 8894 §3.5.2)');
  if (keyProtection === 4 && !hashAlgorithms.includes('SHA-2'))
    bad('a Hello key signs with SHA-256');
  const caThumbprint = required(names.ca).replace(/[\s:]/g, '');
  if (!/^[0-9a-fA-F]{40}$/.test(caThumbprint)) bad('CAThumbprint is not a SHA-1 in hex');
  const san = get('SubjectAlternativeNames')?.trim() || undefined;
  if (san) sanExtension(san);
  const templateName = get('TemplateName')?.trim() || undefined;
  const validPeriod = get('ValidPeriod')?.trim() || undefined;
  const validPeriodUnits = int(names.units, 0);
  const promptText = get('CustomTextToShowInPrompt') || undefined;
  return {
    serverUrls,
    challenge,
    ekus,
    keyUsage: keyUsageBits,
    subjectName,
    ...(san ? { subjectAlternativeNames: san } : {}),
    keyProtection: keyProtection as 1 | 2 | 3 | 4,
    retryDelayMinutes: Math.max(1, int('RetryDelay', 5)),
    retryCount: Math.min(30, int('RetryCount', 3)),
    ...(templateName ? { templateName } : {}),
    keyLength,
    hashAlgorithms,
    caThumbprint,
    ...(validPeriod ? { validPeriod } : {}),
    ...(validPeriodUnits ? { validPeriodUnits } : {}),
    ...(containerName ? { containerName } : {}),
    ...(promptText ? { promptText } : {}),
  };
}

function sanExtension(spec: string): Extension {
  const names = spec
    .split(';')
    .filter((s) => s.trim() !== '')
    .map((entry): GeneralNameInput => {
      const plus = entry.indexOf('+');
      const type = SAN_TYPES[entry.slice(0, plus).trim()];
      const value = entry.slice(plus + 1).trim();
      if (plus < 0 || !type || !value)
        bad(`SubjectAlternativeNames entry "${entry}" is not type+value`);
      return { type, value };
    });
  try {
    return subjectAltName(names);
  } catch (e) {
    return bad(`SubjectAlternativeNames: ${(e as Error).message}`);
  }
}

/** Extensions the CSR asks for: KeyUsage, EKU, SAN, and Microsoft's template name. */
function requestedExtensions(p: ScepParameters): Extension[] {
  const usages = KEY_USAGE_MASK.filter(([bit]) => p.keyUsage & bit).map(([, n]) => n);
  const out: Extension[] = [keyUsage(usages), extKeyUsage(p.ekus)];
  if (p.subjectAlternativeNames) out.push(sanExtension(p.subjectAlternativeNames));
  if (p.templateName)
    out.push({
      oid: EXT.msCertificateTemplateName,
      critical: false,
      value: enc.bmp(p.templateName),
    });
  return out;
}

const digestFor = (p: ScepParameters): SignedDataDigest =>
  p.hashAlgorithms.includes('SHA-2') ? 'sha256' : 'sha1';

/** FAILURE failInfo → our error (and so the ErrorCode). */
const FAIL_INFO_ERRORS: Readonly<Record<string, DeviceErrorCode>> = {
  badAlg: 'ERR_DEVICE_SCEP_BAD_ALG',
  badMessageCheck: 'ERR_DEVICE_SCEP_BAD_MESSAGE',
  badRequest: 'ERR_DEVICE_SCEP_REFUSED',
  badTime: 'ERR_DEVICE_SCEP_BAD_TIME',
  badCertId: 'ERR_DEVICE_SCEP_BAD_CERT_ID',
};

/** Failures of the exchange itself (scep/client.ts) → our error (and so the ErrorCode). */
const CLIENT_ERRORS: Readonly<Record<ScepClientErrorCode, DeviceErrorCode>> = {
  ERR_SCEP_CLIENT_CA_THUMBPRINT: 'ERR_DEVICE_SCEP_CA_MISMATCH',
  ERR_SCEP_CLIENT_TRANSPORT: 'ERR_DEVICE_SCEP_UNREACHABLE',
  ERR_SCEP_CLIENT_NO_RECIPIENT: 'ERR_DEVICE_SCEP_BAD_RESPONSE',
  ERR_SCEP_CLIENT_BAD_RESPONSE: 'ERR_DEVICE_SCEP_BAD_RESPONSE',
};

export class ScepEnrollments {
  readonly #ctx: ScepContext;
  #running: Promise<void> | undefined;

  constructor(ctx: ScepContext) {
    this.#ctx = ctx;
  }

  #all(): ScepEnrollment[] {
    return this.#ctx.state().scep;
  }

  find(scope: Scope, csp: Csp, id: string): ScepEnrollment | undefined {
    return this.#all().find((e) => e.scope === scope && e.csp === csp && e.id === id);
  }

  /** The installed certificate of an enrollment, while it is usable. */
  #usableThumbprint(e: ScepEnrollment): string {
    if (!e.thumbprint) return '';
    const entry = this.#ctx.stores.find(e.scope, 'My', e.thumbprint);
    if (!entry || entry.source.kind !== 'scep' || !entry.keyId || !this.#ctx.keys.find(entry.keyId))
      return '';
    const cert = this.#ctx.stores.certificate(entry);
    const now = this.#ctx.now();
    return now >= cert.notBefore && now <= cert.notAfter ? e.thumbprint : '';
  }

  hooks(): CspHooks {
    return {
      read: (uri) => {
        const s = scepUri(uri);
        if (!s || s.rest.length !== 1) return undefined;
        const e = this.find(s.scope, s.csp, s.id);
        if (!e) return undefined;
        switch (s.rest[0]) {
          case 'Status':
            return String(e.status);
          case 'ErrorCode':
            return String(e.errorCode);
          case LEAF[s.csp].thumbprint:
            return this.#usableThumbprint(e);
          case 'RespondentServerUrl':
            return e.respondentServerUrl ?? '';
        }
        return undefined;
      },
      exec: (uri) => {
        const s = scepUri(uri);
        if (!s || s.rest.join('/') !== 'Install/Enroll') return undefined;
        return this.#accept(s);
      },
      beforeDelete: (uri) => {
        const s = scepUri(uri);
        if (!s || s.rest.length > 0) return undefined;
        this.#remove(s);
        return undefined; // the tree deletes the parameters
      },
    };
  }

  /** Exec Enroll: capture the parameters, clear the challenge, queue the work. */
  #accept(s: ScepUri): StatusCode {
    const tree = this.#ctx.tree();
    let params: ScepParameters;
    try {
      params = readParameters((leaf) => tree.value(`${s.base}/Install/${leaf}`), s.csp);
    } catch (e) {
      if (e instanceof DeviceError) return STATUS.badRequest;
      throw e;
    }
    tree.forget(`${s.base}/Install/Challenge`);
    const state = this.#ctx.state();
    const previous = this.find(s.scope, s.csp, s.id);
    // A pending enrollment restarted: its key goes (an installed certificate stays until the
    // new one arrives).
    if (previous?.keyId && previous.phase !== 'done') this.#dropKey(previous);
    const next: ScepEnrollment = {
      scope: s.scope,
      id: s.id,
      csp: s.csp,
      status: SCEP_STATUS.unknown,
      errorCode: 0,
      params,
      phase: 'request',
      pollsDone: 0,
      nextAttemptAt: this.#ctx.now().toISOString(),
      ...(previous?.thumbprint ? { thumbprint: previous.thumbprint } : {}),
    };
    state.scep = [...state.scep.filter((e) => e !== previous), next];
    return STATUS.ok;
  }

  #dropKey(e: ScepEnrollment): void {
    if (!e.keyId) return;
    const used = this.#ctx.stores.all().some((c) => c.keyId === e.keyId);
    if (!used) this.#ctx.keys.remove(e.keyId);
    delete e.keyId;
  }

  #remove(s: ScepUri): void {
    const e = this.find(s.scope, s.csp, s.id);
    for (const c of this.#ctx.stores.installedBy(s.scope, 'scep', s.id)) this.#ctx.stores.remove(c);
    if (e) {
      this.#dropKey(e);
      const state = this.#ctx.state();
      state.scep = state.scep.filter((x) => x !== e);
    }
  }

  /**
   * On start: an enrollment whose key record vanished (the agent died between making the key
   * and saving it) starts its request over with a new key; anything else resumes as it was.
   */
  async recover(): Promise<void> {
    let changed = false;
    for (const e of this.#all()) {
      if (e.phase !== 'done' && e.keyId && !this.#ctx.keys.find(e.keyId)) {
        delete e.keyId;
        delete e.transactionId;
        e.phase = 'request';
        changed = true;
      }
    }
    if (changed) await this.#ctx.save();
  }

  nextDueAt(): Date | undefined {
    const times = this.#all()
      .filter((e) => e.phase !== 'done' && e.nextAttemptAt)
      .map((e) => Date.parse(e.nextAttemptAt!));
    return times.length ? new Date(Math.min(...times)) : undefined;
  }

  /** Runs every enrollment step that is due; one run at a time. */
  runDue(): Promise<void> {
    this.#running ??= this.#runDue().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #runDue(): Promise<void> {
    for (;;) {
      const now = this.#ctx.now().getTime();
      const due = this.#all().find(
        (e) => e.phase !== 'done' && e.nextAttemptAt && Date.parse(e.nextAttemptAt) <= now,
      );
      if (!due) return;
      await this.#step(due);
    }
  }

  #client(url: string, p: ScepParameters) {
    // HTTPS trusts the device Root store (where enrollment put the MDM server's root).
    const roots = () => this.#ctx.stores.trustedRootsPem();
    const transport = this.#ctx.transport?.(url) ?? deviceScepTransport(url, roots, 30_000);
    return createScepClient(transport, { digest: digestFor(p), now: this.#ctx.now });
  }

  async #step(e: ScepEnrollment): Promise<void> {
    const p = e.params!;
    try {
      if (!e.keyId) {
        const made = await this.#ctx.keys.generate(
          { type: 'rsa', bits: p.keyLength },
          p.keyProtection as KeyLocation,
          {
            ...(p.containerName ? { container: p.containerName } : {}),
            ...(p.promptText ? { prompt: p.promptText } : {}),
          },
        );
        e.keyId = made.entry.id;
        await this.#ctx.save(); // the key and its transactionID exist before anything is sent
      }
      const key = await this.#ctx.keys.open(e.keyId, p.promptText ? { prompt: p.promptText } : {});
      let result: EnrollResult;
      if (e.phase === 'poll') {
        const client = this.#client(e.respondentServerUrl!, p);
        result = await client.poll({
          transactionId: e.transactionId!,
          subject: parseX500(p.subjectName),
          key,
          ...(e.signerCertificate
            ? {
                signer: {
                  certificate: parseCertificate(Buffer.from(e.signerCertificate, 'base64')),
                  key,
                },
              }
            : {}),
          caThumbprint: p.caThumbprint,
        });
      } else result = await this.#request(e, p, key);
      await this.#settle(e, p, result);
    } catch (err) {
      this.#fail(e, err);
    }
    await this.#ctx.save();
  }

  /** PKCSReq to each ServerURL in turn until one answers. */
  async #request(e: ScepEnrollment, p: ScepParameters, key: Awaited<ReturnType<KeyVault['open']>>) {
    let last: unknown;
    for (const url of p.serverUrls) {
      try {
        const client = this.#client(url, p);
        const result = await client.enroll({
          subject: parseX500(p.subjectName),
          key,
          challenge: p.challenge!,
          extensions: requestedExtensions(p),
          caThumbprint: p.caThumbprint,
        });
        e.respondentServerUrl = url;
        e.transactionId = result.transactionId;
        return result;
      } catch (err) {
        last = err;
        if (
          !isScepClientError(err, 'ERR_SCEP_CLIENT_TRANSPORT') &&
          !isScepClientError(err, 'ERR_SCEP_CLIENT_CA_THUMBPRINT')
        )
          throw err;
      }
    }
    throw last;
  }

  async #settle(e: ScepEnrollment, p: ScepParameters, result: EnrollResult): Promise<void> {
    const now = this.#ctx.now();
    switch (result.status) {
      case 'issued': {
        const stores = this.#ctx.stores;
        const old = stores.installedBy(e.scope, 'scep', e.id);
        for (const c of old) stores.remove(c);
        const entry = stores.add({
          scope: e.scope,
          store: 'My',
          der: result.certificate.der,
          source: { kind: 'scep', id: e.id },
          keyId: e.keyId!,
        });
        if (!entry)
          throw new DeviceError(
            'ERR_DEVICE_SCEP_BAD_RESPONSE',
            'the certificate is already installed',
          );
        Object.assign(e, {
          status: SCEP_STATUS.ok,
          errorCode: 0,
          phase: 'done',
          thumbprint: entry.thumbprint,
        });
        delete e.error;
        delete e.nextAttemptAt;
        delete e.keyId; // the certificate holds the key now
        return;
      }
      case 'pending': {
        if (e.phase === 'poll') e.pollsDone++;
        e.phase = 'poll';
        e.status = SCEP_STATUS.pending;
        e.signerCertificate = Buffer.from(result.signer.certificate.der).toString('base64');
        if (e.pollsDone >= p.retryCount)
          throw new DeviceError(
            'ERR_DEVICE_SCEP_PENDING_TIMEOUT',
            `still pending after ${p.retryCount} polls every ${p.retryDelayMinutes} min`,
          );
        e.nextAttemptAt = new Date(
          now.getTime() + p.retryDelayMinutes * this.#ctx.minuteMs,
        ).toISOString();
        return;
      }
      case 'failed':
        throw new DeviceError(
          FAIL_INFO_ERRORS[result.failInfo] ?? 'ERR_DEVICE_SCEP_REFUSED',
          `the CA refused the request (${result.failInfo}${result.failInfoText ? `: ${result.failInfoText}` : ''})`,
        );
    }
  }

  #fail(e: ScepEnrollment, err: unknown): void {
    const mapped = isScepClientError(err)
      ? new DeviceError(CLIENT_ERRORS[err.code], err.message, { cause: err })
      : err;
    e.status = SCEP_STATUS.failed;
    e.errorCode = errorCodeOf(mapped);
    e.error = (mapped as Error).message ?? String(mapped);
    e.phase = 'done';
    delete e.nextAttemptAt;
    this.#dropKey(e);
  }
}
