/**
 * The device's OMA-DM client (MS-MDM §3.1; omadm-reference.md §1.5): opens a session with the
 * management server it enrolled with and runs it to its end.
 *
 * 1. Package 1: Alert 1201 (client-initiated; 1200 when answering a push), Alert 1224 with the
 *    login status, a Replace of ./DevInfo, Final.
 * 2. Each server message is applied to the management tree (agent.handle) and answered, until
 *    the server sends a message carrying only Statuses (the session is over).
 *
 * Every message goes over HTTPS, authenticated by the MDM client certificate in the device's My
 * store (a software key: Node's TLS cannot sign with a token key), trusting the roots of the
 * device Root store, where the provisioning document put the server's root.
 */
import { isExternalKey } from '../pki/key-ref.ts';
import { encodePem } from '../pki/pem.ts';
import { md5Cred } from '../omadm/auth.ts';
import { ALERT } from '../omadm/server-session.ts';
import {
  buildSyncML,
  parseSyncML,
  SYNCML_CONTENT_TYPE,
  SyncMLError,
  type Command,
  type Item,
  type SyncMLMessage,
} from '../omadm/syncml.ts';
import type { DeviceAgent } from './agent.ts';
import { devInfo } from './csp/device-info.ts';
import { DeviceError } from './errors.ts';
import { httpRequestBytes } from './http.ts';
import type { CertificateEntry, MdmEnrollmentState } from './state.ts';

/** The TLS credentials of one session. */
export interface MdmTls {
  /** PEM PKCS#8: Node's TLS takes keys as PEM (in memory only, never written). */
  readonly key: string;
  /** PEM client certificate. */
  readonly cert: string;
  /** PEM roots the server's certificate must chain to. */
  readonly ca: readonly string[];
}

/** Posts one SyncML message and returns the server's reply body. */
export type MdmTransport = (url: string, body: string, tls: MdmTls) => Promise<string>;

/** Above this a device message is split across messages (the server's parser takes 1 MiB). */
export const DEVICE_MAX_MESSAGE_BYTES = 512 * 1024;

/**
 * Splits a message over `budget` bytes: the first part (no Final, as many commands as fit, at
 * least one) and the commands left over. A message within budget is sent whole.
 */
export function splitMessage(
  m: SyncMLMessage,
  budget: number,
  /** Commands the first part must carry whatever their size (so that each message makes progress). */
  atLeast = 1,
): [SyncMLMessage, Command[], string?] {
  // The common case: it fits, and the XML built to measure it is the XML sent.
  const whole = buildSyncML(m);
  if (Buffer.byteLength(whole) <= budget) return [m, [], whole];
  // A Get's Status and its Results travel together: the server reads an outcome from both.
  const units: Command[][] = [];
  for (const c of m.body) {
    const last = units.at(-1);
    const head = last?.[0];
    if (c.kind === 'Results' && head?.kind === 'Status' && head.cmdRef === c.cmdRef) last!.push(c);
    else units.push([c]);
  }
  const empty = Buffer.byteLength(buildSyncML({ ...m, body: [], final: false }));
  let size = empty;
  let n = 0;
  let carried = 0;
  for (const unit of units) {
    const bytes = Buffer.byteLength(buildSyncML({ ...m, body: unit, final: false })) - empty;
    if (carried >= atLeast && size + bytes > budget) break;
    size += bytes;
    carried += unit.length;
    n++;
  }
  return [{ ...m, body: units.slice(0, n).flat(), final: false }, units.slice(n).flat()];
}

/** A command with a new CmdID (CmdIDs are unique per message). */
function renumber(c: Command, cmdId: string): Command {
  return c.kind === 'Unknown' ? c : { ...c, cmdId };
}

/** The largest reply the device reads (MS-MDM messages stay near 512 KiB). */
const MAX_REPLY = 4 * 1024 * 1024;
/** A session that does not end after this many server messages is broken: stop. */
const MAX_MESSAGES = 1000;

/** HTTPS POST with the SyncML content type (MS-MDM §2.1). */
export const httpsTransport: MdmTransport = async (url, body, tls) => {
  const res = await httpRequestBytes(url, {
    method: 'POST',
    body,
    headers: {
      'content-type': SYNCML_CONTENT_TYPE,
      accept: SYNCML_CONTENT_TYPE,
      'user-agent': 'certpost OMA DM client',
    },
    ca: tls.ca,
    clientCertificate: { cert: tls.cert, key: tls.key },
    maxBytes: MAX_REPLY,
  });
  const text = res.body.toString('utf8');
  if (res.status === 200) return text;
  throw new DeviceError(
    res.status === 401 || res.status === 403
      ? 'ERR_DEVICE_ENROLL_AUTHENTICATION'
      : 'ERR_DEVICE_MDM_UNREACHABLE',
    `the MDM server answered HTTP ${res.status}: ${text.trim().slice(0, 200)}`,
  );
};

export interface SessionReport {
  readonly sessionId: string;
  /** Server messages received (the last one ended the session). */
  readonly messages: number;
  /** Server commands applied, by kind. */
  readonly commands: Readonly<Record<string, number>>;
}

/** The MDM client certificate in the device's My store (enrollment put it there), if it is. */
export function mdmCertificateEntry(agent: DeviceAgent): CertificateEntry | undefined {
  const thumbprint = agent.store.data.mdm?.certificateThumbprint;
  return agent.certificates.all().find((c) => c.thumbprint === thumbprint && c.store === 'My');
}

/**
 * The client certificate and key, and the roots to trust, from the device's own stores. Only an
 * HTTPS server needs them: over HTTP (digest) the key is not exported at all.
 */
export async function sessionTls(agent: DeviceAgent, mdm: MdmEnrollmentState): Promise<MdmTls> {
  const entry = mdmCertificateEntry(agent);
  if (!entry?.keyId)
    throw new DeviceError(
      'ERR_DEVICE_NOT_ENROLLED',
      'the MDM client certificate or its key is gone from the My store',
    );
  if (!mdm.serverUrl.startsWith('https:')) return { key: '', cert: '', ca: [] };
  const key = await agent.keys.open(entry.keyId);
  if (isExternalKey(key))
    throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', 'the MDM client key must be a software key');
  const pem = key.export({ type: 'pkcs8', format: 'pem' }) as string;
  return {
    key: pem,
    cert: encodePem('CERTIFICATE', Buffer.from(entry.der, 'base64')),
    ca: agent.certificates.trustedRootsPem(),
  };
}

/**
 * Runs one management session with the enrolled server: package 1, then every server message
 * applied and answered until the server has nothing more. `alert` is 1200 when the session
 * answers a server notification (push), else 1201.
 */
export async function runSession(
  agent: DeviceAgent,
  transport: MdmTransport | undefined,
  o: {
    readonly alert?: '1200' | '1201';
    readonly loginStatus?: 'user' | 'others' | 'none';
    /** Generic alerts (1226) for package 1, e.g. the user's request to unenroll. */
    readonly genericAlerts?: readonly Item[];
    /** Split the device's messages above this size (default {@link DEVICE_MAX_MESSAGE_BYTES}). */
    readonly maxMessageBytes?: number;
  } = {},
): Promise<SessionReport> {
  const mdm = agent.store.data.mdm;
  if (!mdm) throw new DeviceError('ERR_DEVICE_NOT_ENROLLED', 'this device is not enrolled in MDM');
  const tls = await sessionTls(agent, mdm);
  mdm.sessions += 1;
  const sessionId = String(mdm.sessions);
  agent.store.data.session = { id: sessionId, msgId: 1 };
  mdm.lastSessionAt = new Date().toISOString();
  await agent.save();

  const first: SyncMLMessage = {
    header: { sessionId, msgId: '1', target: mdm.serverUrl, source: agent.id },
    body: [
      { kind: 'Alert', cmdId: '1', data: o.alert ?? ALERT.clientInitiated, items: [] },
      {
        kind: 'Alert',
        cmdId: '2',
        data: ALERT.clientEvent,
        items: [{ meta: { type: 'com.microsoft/MDM/LoginStatus' }, data: o.loginStatus ?? 'none' }],
      },
      {
        kind: 'Replace',
        cmdId: '3',
        items: Object.entries(devInfo(() => agent.store.data)).map(([source, data]) => ({
          source,
          data,
        })),
      },
      ...(o.genericAlerts ?? []).map((item, i): SyncMLMessage['body'][number] => ({
        kind: 'Alert',
        cmdId: String(4 + i),
        data: ALERT.generic,
        items: [item],
      })),
    ],
    final: true,
  };
  let outgoing: SyncMLMessage | undefined = first;
  /** What did not fit in the last message: it goes with the next (OMA-DM 1.2 §8.1, Alert 1222). */
  let rest: Command[] = [];
  /** How many leading commands of `outgoing` answer the server (they go, plus one carried over). */
  let answeredCount = 0;
  const commands: Record<string, number> = {};
  let messages = 0;
  const budget = o.maxMessageBytes ?? DEVICE_MAX_MESSAGE_BYTES;
  while (outgoing !== undefined) {
    if (++messages > MAX_MESSAGES)
      throw new DeviceError(
        'ERR_DEVICE_MDM_PROTOCOL',
        `the session did not end after ${MAX_MESSAGES} messages`,
      );
    const [send, more, xml] = splitMessage(signed(mdm, outgoing), budget, answeredCount + 1);
    rest = more;
    answeredCount = 0;
    const msg = await exchange(agent, mdm, send, transport, tls, sessionId, xml);
    for (const c of msg.body)
      if (c.kind !== 'Status') commands[c.kind] = (commands[c.kind] ?? 0) + 1;
    const reply = await agent.handleMessage(msg);
    if (rest.length === 0) outgoing = reply;
    else {
      // The server acknowledged part one and asked for more (1222): its Statuses, then the rest.
      const answered = reply?.body ?? [];
      answeredCount = answered.length;
      let next = answered.length + 1;
      outgoing = {
        header: reply?.header ?? { ...send.header, msgId: String(Number(send.header.msgId) + 1) },
        body: [...answered, ...rest.map((c) => renumber(c, String(next++)))],
        final: true,
      };
      if (!reply) agent.store.data.session.msgId = Number(outgoing.header.msgId);
    }
  }
  return { sessionId, messages, commands };
}

/** The message with a `Cred` for the current nonce, when the device has digest credentials. */
function signed(mdm: MdmEnrollmentState, message: SyncMLMessage): SyncMLMessage {
  const auth = mdm.auth;
  if (!auth) return message;
  return {
    ...message,
    header: {
      ...message.header,
      cred: md5Cred(auth.username, auth.password, Buffer.from(auth.nonce, 'base64')),
    },
  };
}

/**
 * Sends one message and reads the answer. With digest credentials the message carries a `Cred`
 * for the current nonce; a NextNonce in the answer replaces it. A 401/407 with a Chal (a nonce
 * out of step: a lost answer, a restored state) is retried once with the nonce it names.
 */
async function exchange(
  agent: DeviceAgent,
  mdm: MdmEnrollmentState,
  message: SyncMLMessage,
  transport: MdmTransport | undefined,
  tls: MdmTls,
  sessionId: string,
  /** `message` as XML, already signed with the current nonce (the first attempt sends it). */
  xml?: string,
): Promise<SyncMLMessage> {
  for (let attempt = 0; ; attempt++) {
    const auth = mdm.auth;
    const body = attempt === 0 && xml !== undefined ? xml : buildSyncML(signed(mdm, message));
    const reply = await (transport ?? httpsTransport)(mdm.serverUrl, body, tls);
    let msg: SyncMLMessage;
    try {
      msg = parseSyncML(reply);
    } catch (e) {
      if (e instanceof SyncMLError)
        throw new DeviceError('ERR_DEVICE_MDM_PROTOCOL', `the server's message: ${e.message}`, {
          cause: e,
        });
      throw e;
    }
    if (msg.header.sessionId !== sessionId)
      throw new DeviceError(
        'ERR_DEVICE_MDM_PROTOCOL',
        `the server answered session ${msg.header.sessionId}, not ${sessionId}`,
      );
    const header = msg.body.find((c) => c.kind === 'Status' && c.cmdRef === '0');
    const code = header?.kind === 'Status' ? Number(header.data) : 200;
    const nextNonce = header?.kind === 'Status' ? header.chal?.meta.nextNonce : undefined;
    if (auth && nextNonce) {
      auth.nonce = nextNonce;
      await agent.save();
    }
    if ((code === 401 || code === 407) && auth && nextNonce && attempt === 0) continue;
    if (code >= 300)
      throw new DeviceError(
        'ERR_DEVICE_ENROLL_AUTHENTICATION',
        `the server refused the session (SyncHdr status ${code})`,
      );
    return msg;
  }
}

/**
 * Leaves management as a user does on Windows (Settings → Access work: Disconnect): a last
 * session tells the server (Alert 1226 `com.microsoft:mdm.unenrollment.userrequest`, MS-MDM
 * §2.2.7.2), then the device drops what management gave it — the MDM client certificate and
 * every certificate installed by the CSPs (and their keys) — and forgets the server. The user's
 * own certificates stay. When the server cannot be reached the device leaves all the same.
 */
export async function unenroll(
  agent: DeviceAgent,
  transport?: MdmTransport,
): Promise<{ told: boolean; removed: number }> {
  if (!agent.store.data.mdm)
    throw new DeviceError('ERR_DEVICE_NOT_ENROLLED', 'this device is not enrolled in MDM');
  let told = true;
  try {
    await runSession(agent, transport, {
      genericAlerts: [
        {
          source: './Vendor/MSFT/DMClient/Unenroll',
          meta: { type: 'com.microsoft:mdm.unenrollment.userrequest', format: 'int' },
          data: '1',
        },
      ],
    });
  } catch {
    told = false;
  }
  const managed = agent.certificates.all().filter((c) => c.source.kind !== 'user');
  for (const c of managed) agent.certificates.remove(c);
  delete agent.store.data.mdm;
  await agent.save();
  return { told, removed: managed.length };
}
