/**
 * Fuzz targets over whole exchanges rather than one parser: the MDM server's session step, the
 * device agent's handling of a server message, and the SCEP client's reading of a CertRep. Each
 * keeps a fixture per worker (made by `setUp`, outside the executions' time) and puts it back as
 * it was before every run, so that an input does the same thing whenever it runs. Their seeds
 * were recorded from the real parts (record.ts).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { DeviceAgent } from '../device/agent.ts';
import { DeviceError } from '../device/errors.ts';
import { enrollDevice } from '../device/mdm-enroll.ts';
import { parseSyncML, SyncMLError } from '../omadm/syncml.ts';
import { PkiError } from '../pki/errors.ts';
import { parsePrivateKeyPem } from '../pki/keys.ts';
import { decodePem } from '../pki/pem.ts';
import { inspectCertificate, parseCertificate, type Certificate } from '../pki/x509.ts';
import { enrollResult, readCertRep, ScepClientError, type SentRequest } from '../scep/client.ts';
import { ScepError } from '../scep/errors.ts';
import { PkiStatus } from '../scep/message.ts';
import {
  ENROLLMENT_FILES,
  expandQueueRefs,
  FIXTURE_URL,
  FIXTURE_USER,
  recordedKeySource,
  SESSION_DIR,
  startServerFixture,
  type ServerFixture,
} from './in-process.ts';
import { syncmlMessages } from './seeds.ts';
import { ContractViolation, FUZZ_MAX_ITERATIONS, type FuzzTarget } from './target.ts';

const file = (url: URL) => new Uint8Array(readFileSync(url));
const utf8 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

/** The recorded session's messages from one side (`device` or `server`), in order. */
export function sessionMessages(side: 'device' | 'server'): Uint8Array[] {
  return readdirSync(SESSION_DIR)
    .filter((f) => f.endsWith(`-${side}.xml`))
    .toSorted()
    .map((f) => file(new URL(f, SESSION_DIR)));
}

const SYNCML_WORDS = [
  '<Status>',
  '<CmdRef>',
  '</CmdRef>',
  '<MsgRef>1</MsgRef>',
  '<Data>200</Data>',
  '<Results>',
  '<Item>',
  '<Source><LocURI>',
  '<Target><LocURI>',
  '<Atomic>',
  '<Sequence>',
  '<Final/>',
  '<Meta><Format xmlns="syncml:metinf">b64</Format></Meta>',
  '<![CDATA[',
  '&amp;',
];

/** An answer must be a message the other side can read (within the SyncML limits too). */
function checkReply(xml: string): void {
  try {
    parseSyncML(xml);
  } catch (e) {
    throw new ContractViolation('the reply does not parse', { cause: e });
  }
}

let server: Promise<ServerFixture> | undefined;
const serverFixture = () => (server ??= startServerFixture());

/**
 * The device's queue after a run: every open command's payload is still a command, and every
 * answered one's results still read (what the next session and the administrator's view read).
 */
async function checkQueue(f: ServerFixture): Promise<void> {
  for (const c of await f.context.store.listCommands(f.deviceId, { limit: 1000 })) {
    try {
      const command = JSON.parse(c.payload) as { kind?: unknown };
      if (typeof command.kind !== 'string') throw new Error('no kind');
      if (c.results !== null) JSON.parse(c.results);
    } catch (e) {
      throw new ContractViolation(`queued command ${c.id} no longer reads`, { cause: e });
    }
  }
}

const mdmSessionTarget: FuzzTarget = {
  name: 'mdm-session',
  description:
    'server/mdm.ts (omadm/server-session.ts, the profile engine): one device message, the device authenticated by its certificate, against a real store with queued commands (@N names the N-th)',
  seeds: async () => [...sessionMessages('device'), ...syncmlMessages()],
  async setUp() {
    await serverFixture();
  },
  async run(input) {
    const f = await serverFixture();
    await f.reset();
    const answer = await f.context.mdm.session(expandQueueRefs(utf8(input), f.queue), {
      certificateDevice: await f.device(),
    });
    if (answer.status === 403) throw new ContractViolation('the enrolled device was refused');
    if (answer.status === 200) checkReply(answer.body);
    await checkQueue(f);
  },
  // The service answers every body (HTTP 400 when not even a SyncHdr reads): nothing may escape.
  expected: () => false,
  maxLen: 64 * 1024,
  bigLen: 1024 * 1024,
  dictionary: [
    ...SYNCML_WORDS,
    '@1',
    '@2.1',
    '@4',
    '@7',
    '<MsgID>1</MsgID>',
    '1226',
    '1223',
    'com.microsoft:mdm.unenrollment.userrequest',
  ],
  regressions: 'src/server/testdata/fuzz',
  async close() {
    const f = server;
    server = undefined;
    await (await f)?.close();
  },
};

/**
 * A device enrolled with the recorded server's answers (session/enroll-*.xml) on the recorded
 * key: what that server encrypted to the device (PFX passwords) opens. SCEP requests have
 * nowhere to go: the agent's background work is not run here. PFX reads get the fuzzer's
 * key-derivation budget.
 */
export async function recordedDevice(): Promise<DeviceAgent> {
  const agent = await DeviceAgent.inMemory({
    name: 'fuzz-device',
    pfxMaxIterations: FUZZ_MAX_ITERATIONS,
    keySource: recordedKeySource(),
    scepTransport: () => async () => {
      throw new Error('the fuzz device has no network');
    },
  });
  await enrollDevice(agent, {
    server: FIXTURE_URL,
    user: FIXTURE_USER,
    token: 'recorded',
    transport: async (url) => {
      const name = ENROLLMENT_FILES[url.split('/').at(-1)!];
      return name
        ? { status: 200, body: readFileSync(new URL(name, SESSION_DIR), 'utf8') }
        : { status: 404, body: '' };
    },
  });
  return agent;
}

interface DeviceFixture {
  readonly agent: DeviceAgent;
  /** The state right after enrollment, as JSON. */
  readonly state: string;
}
let device: Promise<DeviceFixture> | undefined;
const deviceFixture = () =>
  (device ??= (async () => {
    const agent = await recordedDevice();
    return { agent, state: JSON.stringify(agent.store.data) };
  })());

/** Puts the agent's state (and its tree's) back to the enrolled state. */
function resetDevice(f: DeviceFixture): void {
  const data = f.agent.store.data as unknown as Record<string, unknown>;
  const fresh = JSON.parse(f.state) as Record<string, unknown>;
  for (const k of Object.keys(data)) if (!(k in fresh)) delete data[k];
  Object.assign(data, fresh);
  const tree = f.agent.store.data.tree;
  f.agent.tree.restore({
    ...f.agent.tree.snapshot(),
    values: new Map(Object.entries(tree.values)),
    created: new Set(tree.created),
  });
}

/**
 * What a device must keep true whatever a server sent: its state survives a save and a load
 * (JSON, what state.ts writes), every certificate in its stores reads and has the thumbprint it
 * is listed under, and every key a certificate names exists.
 */
function checkDevice(agent: DeviceAgent): void {
  const data = agent.store.data;
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(data)), data))
    throw new ContractViolation('the device state does not survive JSON');
  const keys = new Set(data.keys.map((k) => k.id));
  for (const c of agent.certificates.all()) {
    let cert: Certificate;
    try {
      cert = agent.certificates.certificate(c);
    } catch (e) {
      throw new ContractViolation(`a ${c.store} certificate does not read`, { cause: e });
    }
    if (createHash('sha1').update(cert.der).digest('hex').toUpperCase() !== c.thumbprint)
      throw new ContractViolation(`a ${c.store} certificate is listed under another thumbprint`);
    if (c.keyId !== undefined && !keys.has(c.keyId))
      throw new ContractViolation(`a ${c.store} certificate names a key the device lacks`);
  }
}

const deviceSyncmlTarget: FuzzTarget = {
  name: 'device-syncml',
  description:
    'device/agent.ts handle (session.ts, tree.ts, the CSPs): one server message against an enrolled device, then its reply and state checked',
  seeds: async () => [...sessionMessages('server'), ...syncmlMessages()],
  async setUp() {
    await deviceFixture();
  },
  async run(input) {
    const f = await deviceFixture();
    resetDevice(f);
    const reply = await f.agent.handle(input);
    if (reply !== undefined) checkReply(reply);
    checkDevice(f.agent);
  },
  // A message that does not parse changes nothing; a CSP refusal is a Status. A DeviceError
  // ends the session (the agent's own typed error).
  expected: (e) => e instanceof SyncMLError || e instanceof DeviceError,
  maxLen: 64 * 1024,
  bigLen: 1024 * 1024,
  dictionary: [
    ...SYNCML_WORDS,
    './Device/Vendor/MSFT/ClientCertificateInstall/PFXCertInstall/',
    './Device/Vendor/MSFT/ClientCertificateInstall/SCEP/',
    './Device/Vendor/MSFT/RootCATrustedCertificates/Root/',
    './Vendor/MSFT/CertificateStore/My/User',
    '?list=StructData',
    '<Exec>',
    '<Delete>',
    '<Replace>',
    '<Get>',
    '<Add>',
  ],
  regressions: 'src/device/testdata/fuzz',
  async close() {
    const f = device;
    device = undefined;
    await (await f)?.agent.close();
  },
};

/** The recorded CertReps' request (scep/testdata/certrep/README.md). */
export const CERTREP_DIR = new URL('../scep/testdata/certrep/', import.meta.url);

/** The senderNonce of every recorded request: 00 01 … 0f. */
export const CERTREP_NONCE = Uint8Array.from({ length: 16 }, (_, i) => i);

let certrep: SentRequest | undefined;
/**
 * The request every recorded CertRep answers: signed by `signer.pem` on `client.key` (also the
 * key certified), transactionID the hex SHA-256 of its public key (the client's default), sent
 * to our server or micromdm scepserver, whose CA certificates the client trusts.
 */
export function certrepRequest(): SentRequest {
  if (certrep) return certrep;
  const key = parsePrivateKeyPem(readFileSync(new URL('client.key', CERTREP_DIR), 'utf8')).key;
  const pem = (name: string) =>
    decodePem(readFileSync(new URL(name, CERTREP_DIR))).map((b) => parseCertificate(b.der));
  const signer = pem('signer.pem')[0]!;
  certrep = {
    signer: { certificate: signer, key },
    caCertificates: [...pem('certpost-ca.pem'), ...pem('micromdm-ca.pem')],
    transactionId: createHash('sha256').update(signer.spki).digest('hex'),
    senderNonce: CERTREP_NONCE,
  };
  return certrep;
}

/** Only our typed errors, all the way down the causes (a TypeError wrapped is still a bug). */
function typedAllTheWay(e: unknown): boolean {
  for (let c: unknown = e; c !== undefined; c = (c as Error).cause)
    if (!(c instanceof ScepClientError || c instanceof ScepError || c instanceof PkiError))
      return false;
  return true;
}

const certrepTarget: FuzzTarget = {
  name: 'certrep',
  description:
    'scep/client.ts readCertRep and enrollResult: a CertRep checked against the request it answers (signature, envelope opened with the client key, nonce, transactionID), then the issued certificate inspected',
  seeds: async () =>
    readdirSync(CERTREP_DIR)
      .filter((f) => f.endsWith('.der'))
      .toSorted()
      .map((f) => file(new URL(f, CERTREP_DIR))),
  async run(input) {
    const sent = certrepRequest();
    const rep = await readCertRep(input, sent);
    // A GetCRL answer: its CRLs are the result (ScepClient.getCrl), read by parseCertRep.
    if (rep.status === PkiStatus.SUCCESS && rep.crls.length > 0) return;
    const result = enrollResult(rep, sent.transactionId, sent.signer.certificate.spki, sent.signer);
    if (result.status === 'issued') inspectCertificate(result.certificate);
  },
  expected: (e) => e instanceof ScepClientError && typedAllTheWay(e),
  maxLen: 16 * 1024,
  bigLen: 256 * 1024,
  dictionary: [
    '\x30\x80',
    '\x00\x00',
    '\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03',
    '\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02',
    '\x13\x01\x30',
    '\x13\x01\x32',
    '\x13\x01\x33',
  ],
  regressions: 'src/scep/testdata/fuzz',
};

export const SESSION_TARGETS: readonly FuzzTarget[] = [
  mdmSessionTarget,
  deviceSyncmlTarget,
  certrepTarget,
];
