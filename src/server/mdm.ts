/**
 * The OMA-DM management service (MS-MDM): answers an authenticated device's SyncML messages from
 * its durable command queue and records what the device answered. Authentication happens before
 * (mdm-http.ts): every call here is already bound to one device id, and only that device's
 * queue is ever read or changed — a Status naming another device's command matches nothing.
 */
import { randomUUID } from 'node:crypto';
import { ALERT, answerDevice, type CommandOutcome } from '../omadm/server-session.ts';
import type { ProfileEngine } from './mdm-profiles.ts';
import { md5Challenge, newNonce, verifyMd5Cred } from '../omadm/auth.ts';
import {
  buildSyncML,
  LIMITS,
  parseSyncML,
  SyncMLError,
  type Command,
  type Item,
  type Meta,
  type SyncMLMessage,
} from '../omadm/syncml.ts';
import type {
  AuditLog,
  DeviceCommandRecord,
  DeviceCommandStore,
  DeviceRecord,
  DeviceStore,
  Store,
} from '../store/types.ts';

export type MdmStore = DeviceStore & DeviceCommandStore & AuditLog & Pick<Store, 'transaction'>;

export interface MdmConfig {
  readonly store: MdmStore;
  readonly now?: () => Date;
  /** Cap on one server message (default 512 KiB). */
  readonly maxMessageBytes?: number;
  /** How many open commands one session step looks at (default 200). */
  readonly window?: number;
  /** Certificate profiles: reconciled at each session's start, fed the command outcomes. */
  readonly profiles?: ProfileEngine;
  /** Hears how each device message ended (metrics). */
  readonly onMessage?: (result: 'ok' | 'unauthenticated' | 'refused' | 'bad') => void;
}

export type SessionAnswer =
  | {
      readonly status: 200;
      readonly body: string;
      readonly ended: boolean;
      /** The message was refused inside SyncML (SyncHdr 401/407): nothing was done. */
      readonly unauthenticated?: boolean;
      /** Whose message this was, for the server's logs: set once the device is authenticated. */
      readonly about?: {
        readonly deviceId: string;
        readonly sessionId: string;
        readonly msgId: string;
      };
      /** Its answer would exceed the SyncML size limit (SyncHdr 413): nothing it said was kept. */
      readonly tooLarge?: boolean;
    }
  /** Not even a SyncML header could be read: HTTP 400 with the reason. */
  | { readonly status: 400; readonly message: string }
  /** The device is unknown or unenrolled. */
  | { readonly status: 403; readonly message: string };

/** What the store keeps in a command's `results`: the device's answer beyond its status code. */
export interface StoredResults {
  readonly items: CommandOutcome['results'];
  readonly children: CommandOutcome['children'];
}

/** How the transport identified the device, if it did. */
export interface SessionIdentity {
  /**
   * The device whose MDM client certificate the TLS connection (or a trusted proxy) presented,
   * as read when that certificate was checked (device-auth.ts): the session does not read it
   * again.
   */
  readonly certificateDevice?: DeviceRecord;
}

export interface MdmService {
  /**
   * Answers one SyncML message. The device is the one its TLS client certificate names, or else
   * the one its SyncHdr Source names, authenticated by OMA DM MD5 digest (omadm/auth.ts): a
   * message without valid credentials gets only a SyncHdr Status 407 (none sent) or 401 (wrong)
   * with a Chal carrying the nonce to use, and changes nothing.
   */
  session(body: string, identity?: SessionIdentity): Promise<SessionAnswer>;
  /** Queues commands for a device (sent in this order); returns their ids. */
  enqueue(deviceId: string, commands: readonly Command[], origin: string | null): Promise<string[]>;
  /** A device's commands, newest first, with their outcome. */
  commands(deviceId: string, limit?: number): Promise<DeviceCommandRecord[]>;
}

export function createMdmService(config: MdmConfig): MdmService {
  const { store } = config;
  const now = config.now ?? (() => new Date());
  const window = config.window ?? 200;

  /**
   * Alert 1226 (MS-MDM §2.2.7.2 generic alert): recorded in the audit log; a user's request to
   * leave management (`com.microsoft:mdm.unenrollment.userrequest`) unenrolls the device.
   */
  async function genericAlert(deviceId: string, items: readonly Item[], at: Date): Promise<void> {
    for (const item of items) {
      const type = item.meta?.type ?? '';
      await store.appendAudit({
        at,
        actor: `device:${deviceId}`,
        action: 'device.alert',
        target: deviceId,
        details: { type, source: item.source ?? null, data: item.data?.slice(0, 200) ?? null },
      });
      if (type === UNENROLL_ALERT && (await store.unenrollDevice(deviceId, at)))
        await store.appendAudit({
          at,
          actor: `device:${deviceId}`,
          action: 'device.unenrolled',
          target: deviceId,
          details: { by: 'user request' },
        });
    }
  }

  return {
    async session(body, identity = {}) {
      const answer = await sessionStep(body, identity);
      config.onMessage?.(
        answer.status === 400
          ? 'bad'
          : answer.status === 403
            ? 'refused'
            : answer.unauthenticated
              ? 'unauthenticated'
              : answer.tooLarge
                ? 'bad'
                : 'ok',
      );
      return answer;
    },

    enqueue: (deviceId, commands, origin) => enqueue(deviceId, commands, origin),

    commands: (deviceId, limit) =>
      store.listCommands(deviceId, limit === undefined ? {} : { limit }),
  };

  async function sessionStep(body: string, identity: SessionIdentity): Promise<SessionAnswer> {
    let message;
    try {
      message = parseSyncML(body);
    } catch (e) {
      if (e instanceof SyncMLError) return { status: 400, message: e.message };
      throw e;
    }
    let device;
    let challenge: { meta: Meta } | undefined;
    /** Moves the digest nonce on: undefined, or the refusal to send when another message did. */
    let rotate: (() => Promise<SessionAnswer | undefined>) | undefined;
    if (identity.certificateDevice !== undefined) {
      device = identity.certificateDevice;
      if (device.unenrolledAt) return { status: 403, message: 'this device is not enrolled' };
    } else {
      device = await store.getDeviceByHardwareId(message.header.source);
      const auth = device?.auth;
      const refuse = (code: 401 | 407, nonce: string) => ({
        status: 200 as const,
        body: buildSyncML(refusal(message, code, md5Challenge(nonce))),
        ended: true,
        unauthenticated: true,
      });
      // Unknown devices are challenged like known ones: the answer tells nothing.
      if (!device || !auth) return refuse(message.header.cred ? 401 : 407, newNonce());
      if (!verifyMd5Cred(message.header.cred, auth.hash, auth.nonce))
        return refuse(message.header.cred ? 401 : 407, auth.nonce);
      // The nonce moves on with every message: a copy of this one will not pass again.
      const next = newNonce();
      const { id } = device;
      rotate = async () =>
        (await store.rotateDeviceNonce(id, auth.nonce, next))
          ? undefined
          : refuse(401, (await store.getDevice(id))?.auth?.nonce ?? next);
      challenge = md5Challenge(next);
    }
    const at = now();
    // The first message of a session: queue what the device's profiles need now.
    // A device leaving management gets its Statuses and nothing more.
    const leaving = message.body.some(
      (c) =>
        c.kind === 'Alert' &&
        c.data === ALERT.generic &&
        c.items.some((i) => i.meta?.type === UNENROLL_ALERT),
    );
    const reconcile = message.header.msgId === '1' && !leaving ? config.profiles : undefined;
    // Reconciling may issue a PFX identity before the transaction: then the nonce moves first,
    // on its own, so a copy of this message is refused before anything is issued for it.
    let refusedEarly: SessionAnswer | undefined;
    const queueNeeds = await reconcile?.reconcile(device, async () => {
      refusedEarly = await rotate?.();
      rotate = undefined;
      return refusedEarly === undefined;
    });
    if (refusedEarly) return refusedEarly;
    // The rest of the step is one transaction: the nonce moved on (when not yet), what the
    // profiles need queued, what the device answered, what the answers mean, the commands
    // marked complete and sent, all land together or not at all (a server stopped in between
    // sends the step's commands again, and the device's nonce is the one it has). One commit
    // instead of one per statement.
    return await store.transaction(async () => {
      const refused = await rotate?.();
      if (refused) return refused;
      const marks = (await queueNeeds?.()) ?? {};
      return answerStep(message, device, challenge, leaving, marks, at);
    });
  }

  /** The step after authentication and reconciliation: read the queue, answer, record. */
  async function answerStep(
    message: SyncMLMessage,
    device: DeviceRecord,
    challenge: { meta: Meta } | undefined,
    leaving: boolean,
    marks: Readonly<Record<string, string>>,
    at: Date,
  ): Promise<SessionAnswer> {
    const deviceId = device.id;
    const open = await store.openCommands(deviceId, window);
    // Each queued command is read once, for the step and for its outcome.
    const queue = open.map((c) => ({
      id: c.id,
      command: JSON.parse(c.payload) as Command,
      sentSession: c.sentSession,
    }));
    const step = answerDevice({
      message,
      queue: leaving ? [] : queue,
      ...(config.maxMessageBytes ? { maxMessageBytes: config.maxMessageBytes } : {}),
      ...(challenge ? { headerChallenge: challenge } : {}),
    });
    const reply = buildSyncML(step.reply);
    // The answer repeats what the device sent (a Status per command with its CmdID, an item's
    // target), escaped: a message within the limit can call for an answer beyond it, which
    // the device could not read (found by fuzzing). Such a message is refused whole: none of
    // its statuses, results, reports or alerts is recorded.
    if (Buffer.byteLength(reply) > LIMITS.maxBytes)
      return {
        status: 200,
        body: buildSyncML(refusal(message, 413, challenge)),
        ended: true,
        tooLarge: true,
      };
    // What the answers mean (deliveries, and the marks kept with the device) is written before
    // the commands are marked complete: a server stopped in between leaves them open, so they
    // are sent and answered again, and applying an answer twice changes nothing (deliveries
    // match commands by id). The other order lost answers for good (src/e2e/kill-mdm.test.ts).
    const commands = new Map(queue.map((q) => [q.id, q.command]));
    const outcomeMarks = await config.profiles?.recordOutcomes(
      device,
      step.outcomes.map((o) => ({ ...o, command: commands.get(o.id)! })),
    );
    // Alert 1224 client events: the login status (user, others, none) is kept with the device.
    const login = step.alerts
      .filter((a) => a.code === ALERT.clientEvent)
      .flatMap((a) => a.items)
      .find((i) => i.meta?.type === 'com.microsoft/MDM/LoginStatus')?.data;
    // One write for the step: what the device reported and what the profile engine marked.
    await store.touchDevice(deviceId, at, {
      ...reportedInfo(step.reported),
      ...(login !== undefined ? { LoginStatus: login.slice(0, 32) } : {}),
      ...marks,
      ...outcomeMarks,
    });
    await store.completeCommands(
      deviceId,
      step.outcomes.map((o) => {
        const results: StoredResults = { items: o.results, children: o.children };
        return { id: o.id, status: o.status, results: JSON.stringify(results) };
      }),
      at,
    );
    await store.markCommandsSent(deviceId, step.sent, { at, session: message.header.sessionId });
    for (const a of step.alerts.filter((x) => x.code === ALERT.generic))
      await genericAlert(deviceId, a.items, at);
    return {
      status: 200,
      body: reply,
      ended: step.ended,
      about: { deviceId, sessionId: message.header.sessionId, msgId: message.header.msgId },
    };
  }

  async function enqueue(
    deviceId: string,
    commands: readonly Command[],
    origin: string | null,
  ): Promise<string[]> {
    const createdAt = now();
    const rows = commands.map((c) => ({
      id: randomUUID(),
      deviceId,
      payload: JSON.stringify(c),
      origin,
      createdAt,
    }));
    await store.enqueueCommands(rows);
    return rows.map((r) => r.id);
  }
}

/** The generic alert type of a user leaving management on the device (MS-MDM §2.2.7.2). */
export const UNENROLL_ALERT = 'com.microsoft:mdm.unenrollment.userrequest';

/**
 * A reply that only refuses the message: SyncHdr Status 401/407 (with the nonce to digest) or
 * 413 (its answer would be too large; with the next nonce when the device uses digest).
 */
function refusal(
  msg: SyncMLMessage,
  code: 401 | 407 | 413,
  chal: { meta: Meta } | undefined,
): SyncMLMessage {
  return {
    header: {
      sessionId: msg.header.sessionId,
      msgId: msg.header.msgId,
      target: msg.header.source,
      source: msg.header.target,
    },
    body: [
      {
        kind: 'Status',
        cmdId: '1',
        msgRef: msg.header.msgId,
        cmdRef: '0',
        cmd: 'SyncHdr',
        ...(chal ? { chal } : {}),
        data: String(code),
      },
    ],
    final: true,
  };
}

/** `./DevInfo/Man` → `DevInfo/Man`: what the device reported, keyed without the `./`. */
function reportedInfo(reported: Readonly<Record<string, string>>): Record<string, string> {
  // What a device says about itself is kept within bounds: DevInfo/DevDetail nodes only, a
  // few dozen of them, each value short. A device cannot grow its record at will.
  return Object.fromEntries(
    Object.entries(reported)
      .filter(([uri]) => /^\.\/Dev(Info|Detail)\/[A-Za-z0-9/._-]{1,128}$/.test(uri))
      .slice(0, MAX_REPORTED)
      .map(([uri, value]) => [uri.slice(2), value.slice(0, MAX_REPORTED_VALUE)]),
  );
}

const MAX_REPORTED = 64;
const MAX_REPORTED_VALUE = 512;
