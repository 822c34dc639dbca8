/**
 * The device's side of an OMA-DM session (MS-MDM §3.1, omadm-reference.md §1.3–§1.5): answers
 * one server message against the management tree.
 *
 * - The SyncHdr gets a Status with CmdRef 0; every command gets exactly one Status, whose
 *   MsgRef is the server's MsgID and CmdRef the command's CmdID; a Get also gets Results.
 * - An Atomic is all or nothing: on the first failure the tree is restored, the Atomic gets
 *   507, the children that had run 216 (rolled back), the failing one its own code, the rest
 *   215 (not executed). Inside an Atomic only Add, Delete, Exec and Replace are allowed; a
 *   nested Atomic gets 500.
 * - An element SyncBody does not allow gets 400.
 * - A server message that carries only Statuses ends the session: there is nothing to answer.
 * - A server message without `<Final/>` is one message of a longer package: the reply asks for
 *   the next one with Alert 1222 (OMA-DM RepPro 1.2 §8.1), even when there is nothing else to say.
 */
import type { Command, Item, SyncMLMessage } from '../omadm/syncml.ts';
import { normaliseUri, STATUS, type ManagementTree, type StatusCode } from './tree.ts';

/** Status codes for Atomic outcomes (OMA DM 1.2 RepPro §10.2). */
export const ATOMIC = { failed: 507, rolledBack: 216, notExecuted: 215 } as const;

export interface ReplyOptions {
  /** The device's own MsgID for this reply (each side numbers its messages from 1). */
  readonly msgId: string;
}

/** True when the server message needs an answer: it carries more than Statuses, or more follows. */
export function needsReply(msg: SyncMLMessage): boolean {
  return !msg.final || msg.body.some((c) => c.kind !== 'Status');
}

type Out = Command;
type StatusCommand = Extract<Command, { kind: 'Status' }>;
type GroupCommand = Extract<Command, { commands: readonly Command[] }>;

/** Answers one server message; returns the reply (header Status, Statuses, Results). */
export async function respond(
  tree: ManagementTree,
  msg: SyncMLMessage,
  o: ReplyOptions,
): Promise<SyncMLMessage> {
  let next = 1;
  const cmdId = () => String(next++);
  const out: Out[] = [];
  const status = (
    c: { cmdId?: string; kind: string; name?: string },
    data: StatusCode,
    items?: readonly Item[],
  ): StatusCommand => ({
    kind: 'Status',
    cmdId: cmdId(),
    msgRef: msg.header.msgId,
    cmdRef: c.cmdId ?? '',
    cmd: c.kind === 'Unknown' ? (c.name ?? 'Unknown') : c.kind,
    ...(items?.length === 1 && items[0]?.target !== undefined
      ? { targetRef: [items[0].target] }
      : {}),
    data: String(data),
  });

  out.push({
    kind: 'Status',
    cmdId: cmdId(),
    msgRef: msg.header.msgId,
    cmdRef: '0',
    cmd: 'SyncHdr',
    data: String(STATUS.ok),
  });

  /** Applies one item command; returns the worst status of its items (and Results for Get). */
  async function apply(c: Extract<Command, { items: readonly Item[] }>): Promise<{
    code: StatusCode;
    results?: Item[];
  }> {
    let code: StatusCode = STATUS.ok;
    const results: Item[] = [];
    for (const item of c.items) {
      const uri = item.target;
      if (uri === undefined) {
        code = STATUS.badRequest;
        continue;
      }
      let itemCode: StatusCode;
      switch (c.kind) {
        case 'Get': {
          const r = tree.get(uri);
          itemCode = r.status;
          // Results name nodes as the server did: `./Vendor/…` stays `./Vendor/…`.
          const asAsked = uri.startsWith('./Vendor/')
            ? (u: string) => u.replace(/^\.\/Device\/Vendor\//, './Vendor/')
            : (u: string) => u;
          for (const i of r.items)
            results.push({
              source: asAsked(i.uri),
              meta: { format: i.format },
              ...(i.data !== undefined ? { data: i.data } : {}),
            });
          break;
        }
        case 'Add':
          itemCode = await tree.add(uri, item.data, item.meta?.format ?? c.meta?.format);
          break;
        case 'Replace':
          itemCode = await tree.replace(uri, item.data, item.meta?.format ?? c.meta?.format);
          break;
        case 'Delete':
          itemCode = await tree.delete(uri);
          break;
        case 'Exec':
          itemCode = await tree.exec(uri, item.data);
          break;
        default:
          itemCode = STATUS.optionalFeatureNotSupported;
      }
      // The first failure decides; among successes, 202 (accepted) says more than 200.
      if (code < 300 && (itemCode >= 300 || code === STATUS.ok)) code = itemCode;
    }
    return c.kind === 'Get' ? { code, results } : { code };
  }

  async function run(c: Command, inAtomic: boolean): Promise<StatusCode> {
    switch (c.kind) {
      case 'Status':
      case 'Results':
        return STATUS.ok; // answers to our previous message: nothing to acknowledge
      case 'Alert':
        out.push(status(c, STATUS.ok));
        return STATUS.ok;
      case 'Unknown': {
        const code = inAtomic && c.name === 'Atomic' ? STATUS.commandFailed : STATUS.badRequest;
        out.push(status(c, code));
        return code;
      }
      case 'Atomic':
        return runAtomic(c);
      case 'Sequence': {
        out.push(status(c, STATUS.ok));
        for (const child of c.commands) await run(child, false);
        return STATUS.ok;
      }
      case 'Get': {
        if (inAtomic) {
          out.push(status(c, STATUS.badRequest, c.items));
          return STATUS.badRequest;
        }
        const { code, results } = await apply(c);
        out.push(status(c, code, c.items));
        if (results?.length)
          out.push({
            kind: 'Results',
            cmdId: cmdId(),
            msgRef: msg.header.msgId,
            cmdRef: c.cmdId,
            items: results,
          });
        return code;
      }
      default: {
        // A single write is its own group: deferred work settles after it, or undoes it. (Only
        // a write can leave work to settle; a Delete or Exec cannot.)
        const deferrable = !inAtomic && (c.kind === 'Add' || c.kind === 'Replace');
        const snapshot = deferrable ? tree.snapshot() : undefined;
        let { code } = await apply(c);
        if (snapshot && code < 300) {
          const failed = await tree.settle();
          if (failed) {
            tree.restore(snapshot);
            code = failed.status;
          }
        }
        out.push(status(c, code, c.items));
        return code;
      }
    }
  }

  async function runAtomic(a: GroupCommand): Promise<StatusCode> {
    const snapshot = tree.snapshot();
    const atomicStatus = status(a, STATUS.ok);
    const at = out.length;
    out.push(atomicStatus);
    let failedAt = -1;
    const childStart: number[] = [];
    for (const [i, child] of a.commands.entries()) {
      if (failedAt >= 0) {
        const skipped =
          child.kind === 'Unknown'
            ? { cmdId: child.cmdId ?? '', kind: 'Unknown', name: child.name }
            : child;
        out.push(status(skipped, ATOMIC.notExecuted));
        continue;
      }
      childStart.push(out.length);
      if ((await run(child, true)) >= 300) failedAt = i;
    }
    if (failedAt < 0) {
      const failed = await tree.settle();
      if (!failed) return STATUS.ok;
      // The deferred write fails now: its command gets the status, every other one 216.
      const k = childStart.findIndex((idx) => {
        const s = out[idx];
        // The server may have named it `./Vendor/…`; the CSP names it as normalised.
        return s?.kind === 'Status' && s.targetRef?.some((t) => normaliseUri(t) === failed.uri);
      });
      failedAt = k >= 0 ? k : childStart.length - 1;
      const idx = childStart[failedAt]!;
      out[idx] = { ...(out[idx] as StatusCommand), data: String(failed.status) };
      for (let j = failedAt + 1; j < childStart.length; j++) {
        const s = out[childStart[j]!];
        if (s?.kind === 'Status' && Number(s.data) < 300)
          out[childStart[j]!] = { ...s, data: String(ATOMIC.rolledBack) };
      }
    }
    tree.restore(snapshot);
    out[at] = { ...atomicStatus, data: String(ATOMIC.failed) };
    // Children that had succeeded are now rolled back.
    for (let k = 0; k < failedAt; k++) {
      const idx = childStart[k]!;
      const s = out[idx];
      if (s?.kind === 'Status' && Number(s.data) < 300)
        out[idx] = { ...s, data: String(ATOMIC.rolledBack) };
    }
    return ATOMIC.failed;
  }

  for (const c of msg.body) await run(c, false);
  if (!msg.final) out.push({ kind: 'Alert', cmdId: cmdId(), data: '1222', items: [] });
  return {
    header: {
      sessionId: msg.header.sessionId,
      msgId: o.msgId,
      target: msg.header.source,
      source: msg.header.target,
    },
    body: out,
    final: true,
  };
}
