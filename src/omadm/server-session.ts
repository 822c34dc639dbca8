/**
 * The server's side of an OMA-DM session (MS-MDM §3.2, omadm-reference.md §1.3–§1.6): one
 * function that answers one device message, given the device's open command queue. It keeps no
 * state between messages, so any server process can answer any message of a session:
 *
 * - The reply's MsgID is the device's MsgID (each side numbers its own messages from 1, and the
 *   server sends exactly one message per device message).
 * - Commands are sent with their queue id as CmdID (MS-MDM allows any string; fleetdm/fleet#16591
 *   sends UUIDs), and an Atomic's children as `<id>.<n>`, so a Status finds its command from its
 *   CmdRef alone: the device's Status for a command it was never sent matches nothing.
 * - Every device command but Status gets a Status (SyncHdr: CmdRef 0). Results are acknowledged.
 * - Queued commands go out in queue order while they fit in `maxMessageBytes`. When some do not,
 *   the message goes without `<Final/>`: the package continues, the device answers with its
 *   Statuses and Alert 1222 (next message), and the next reply carries the rest (OMA-DM RepPro
 *   1.2 §8.1 multiple messages in package); a device message without Final gets Alert 1222
 *   the same way. A command already sent in this session is not sent
 *   again; one sent in an earlier session and never answered is (the device lost it).
 * - The session ends when the reply carries nothing but Statuses: `ended`.
 */
import type { Command, Item, Meta, SyncMLMessage } from './syncml.ts';
import { buildSyncML, commandXml } from './syncml.ts';

/** OMA-DM alert codes (MS-MDM §2.2.7.2). */
export const ALERT = {
  serverInitiated: '1200',
  clientInitiated: '1201',
  nextMessage: '1222',
  sessionAbort: '1223',
  clientEvent: '1224',
  noEndOfData: '1225',
  generic: '1226',
} as const;

/** A queued command as the engine sees it: the store's id and the command to send. */
export interface QueuedCommand {
  readonly id: string;
  readonly command: Command;
  /** The device SessionID it was last sent in, if any. */
  readonly sentSession: string | null;
}

/** What the device answered for one queued command. */
export interface CommandOutcome {
  readonly id: string;
  readonly status: number;
  /** Items of the Results answering it (a Get). */
  readonly results: readonly Item[];
  /** Statuses of an Atomic's or Sequence's children, by child position (1-based). */
  readonly children: readonly {
    readonly index: number;
    readonly cmd: string;
    readonly status: number;
  }[];
}

export interface SessionStepInput {
  readonly message: SyncMLMessage;
  /** The device's open commands, in queue order. */
  readonly queue: readonly QueuedCommand[];
  /** Cap on the reply's size in bytes (MS-MDM: keep messages modest; Mattrax uses 512 KiB). */
  readonly maxMessageBytes?: number;
  /** A Chal for the SyncHdr Status (the next digest nonce, omadm/auth.ts). */
  readonly headerChallenge?: { readonly meta: Meta };
}

export interface SessionStep {
  readonly reply: SyncMLMessage;
  /** Queue ids now carried by the reply (to be marked sent). */
  readonly sent: readonly string[];
  /** Outcomes of earlier commands answered by this device message. */
  readonly outcomes: readonly CommandOutcome[];
  /** Values the device reported with Replace (./DevInfo/DevId …), by node path. */
  readonly reported: Readonly<Record<string, string>>;
  /** Alerts the device raised (1201/1200 session start, 1224 client event, 1226 generic …). */
  readonly alerts: readonly { readonly code: string; readonly items: readonly Item[] }[];
  /** The reply carries only Statuses: the device will not post again in this session. */
  readonly ended: boolean;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 512 * 1024;

type Status = Extract<Command, { kind: 'Status' }>;

/** Answers one device message. Pure: the caller stores `sent` and `outcomes`. */
export function answerDevice(input: SessionStepInput): SessionStep {
  const { message: msg } = input;
  const max = input.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  let next = 1;
  const cmdId = () => String(next++);
  const body: Command[] = [];
  const status = (cmdRef: string, cmd: string, code: number, items?: readonly Item[]): Status => ({
    kind: 'Status',
    cmdId: cmdId(),
    msgRef: msg.header.msgId,
    cmdRef,
    cmd,
    ...(items?.length === 1 && items[0]?.target !== undefined
      ? { targetRef: [items[0].target] }
      : {}),
    data: String(code),
  });
  const hdrStatus = status('0', 'SyncHdr', 200);
  body.push(input.headerChallenge ? { ...hdrStatus, chal: input.headerChallenge } : hdrStatus);

  const reported: Record<string, string> = {};
  const alerts: { code: string; items: readonly Item[] }[] = [];
  const statuses: Status[] = [];
  const results: Extract<Command, { kind: 'Results' }>[] = [];
  let aborted = false;
  for (const c of msg.body) {
    switch (c.kind) {
      case 'Status':
        statuses.push(c);
        break;
      case 'Results':
        results.push(c);
        body.push(status(c.cmdId, 'Results', 200));
        break;
      case 'Alert':
        alerts.push({ code: c.data, items: c.items });
        if (c.data === ALERT.sessionAbort) aborted = true;
        body.push(status(c.cmdId, 'Alert', 200));
        break;
      case 'Replace':
        for (const item of c.items)
          if (item.source !== undefined && item.data !== undefined)
            reported[item.source] = item.data;
        body.push(status(c.cmdId, 'Replace', 200, c.items));
        break;
      case 'Unknown':
        body.push(status(c.cmdId ?? '', c.name, 400));
        break;
      default:
        // A device may report (Replace) and alert; it does not manage the server.
        body.push(status(c.cmdId, c.kind, 405));
    }
  }

  // The device's package goes on in its next message: ask for it (OMA-DM RepPro 1.2 §8.1).
  if (!msg.final) body.push({ kind: 'Alert', cmdId: cmdId(), data: ALERT.nextMessage, items: [] });
  const outcomes = outcomesOf(input.queue, statuses, results);
  const answered = new Set(outcomes.map((o) => o.id));
  const sent: string[] = [];
  let final = true;
  // A device that is still sending its package (no Final) gets Statuses only, and so does one
  // that aborted the session.
  const candidates = input.queue.filter(
    (q) => !answered.has(q.id) && q.sentSession !== msg.header.sessionId,
  );
  // Sizes are measured only when there is something to send (most messages carry nothing).
  if (msg.final && !aborted && candidates.length > 0) {
    let size = Buffer.byteLength(buildSyncML({ header: replyHeader(msg), body, final: true }));
    for (const q of candidates) {
      const command = withIds(q.command, q.id);
      const bytes = Buffer.byteLength(commandXml(command));
      // The first command always goes, even alone over the budget: otherwise it never would.
      if (size + bytes > max && sent.length > 0) {
        final = false;
        break;
      }
      body.push(command);
      sent.push(q.id);
      size += bytes;
    }
  }
  return {
    reply: { header: replyHeader(msg), body, final },
    sent,
    outcomes,
    reported,
    alerts,
    ended: sent.length === 0 && body.every((c) => c.kind === 'Status') && final,
  };
}

function replyHeader(msg: SyncMLMessage): SyncMLMessage['header'] {
  return {
    sessionId: msg.header.sessionId,
    msgId: msg.header.msgId,
    target: msg.header.source,
    source: msg.header.target,
  };
}

/** The command with CmdID `id`, an Atomic's or Sequence's children `id.1`, `id.2` … */
export function withIds(c: Command, id: string): Command {
  if (c.kind === 'Atomic' || c.kind === 'Sequence')
    return {
      ...c,
      cmdId: id,
      commands: c.commands.map((child, i) => withIds(child, `${id}.${i + 1}`)),
    };
  if (c.kind === 'Status' || c.kind === 'Unknown') return c;
  return { ...c, cmdId: id };
}

/**
 * A Status's code: three digits (OMA-DM RepPro 1.2 §10, 1xx–5xx). Anything else (`1e308`,
 * `2000000000`, `abc`) is read as 500, command failed: the store keeps codes as integers.
 */
function statusCode(data: string): number {
  return /^\d{3}$/.test(data) ? Number(data) : 500;
}

/** Matches the device's Statuses and Results to queued commands by CmdRef. */
function outcomesOf(
  queue: readonly QueuedCommand[],
  statuses: readonly Status[],
  results: readonly Extract<Command, { kind: 'Results' }>[],
): CommandOutcome[] {
  const out: CommandOutcome[] = [];
  for (const q of queue) {
    const own = statuses.find((s) => s.cmdRef === q.id);
    if (!own) continue;
    const prefix = `${q.id}.`;
    out.push({
      id: q.id,
      status: statusCode(own.data),
      results: results.filter((r) => r.cmdRef === q.id).flatMap((r) => r.items),
      children: statuses
        .filter((s) => s.cmdRef.startsWith(prefix))
        .map((s) => ({
          index: Number(s.cmdRef.slice(prefix.length)),
          cmd: s.cmd,
          status: statusCode(s.data),
        }))
        .filter((c) => Number.isInteger(c.index) && c.index > 0),
    });
  }
  return out;
}
