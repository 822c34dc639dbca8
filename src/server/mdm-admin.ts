/**
 * MDM administration, once for every front end (`certpost mdm …`, the admin API): enrollment
 * tokens, enrolled devices, and a device's command queue. Same rules as admin-ops.ts: the actor
 * goes to the audit log, failures the caller can fix are an {@link AdminError}, results are
 * JSON-able, and a token is returned once and stored only as its SHA-256.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { secretHash } from '../ca/enrollment.ts';
import { parseSyncML, SyncMLError, type Command } from '../omadm/syncml.ts';
import type {
  AuditLog,
  DeviceCommandRecord,
  DeviceRecord,
  DeviceStore,
  EnrollmentTokenStore,
  InventoryStore,
} from '../store/types.ts';
import { AdminError } from './admin-ops.ts';
import type { MdmService } from './mdm.ts';
import { INVENTORY_AT } from './mdm-profiles.ts';
import { pushDevices, type PushResult } from './mdm-push.ts';

export interface MdmAdminDeps {
  readonly store: EnrollmentTokenStore & DeviceStore & InventoryStore & AuditLog;
  readonly mdm: Pick<MdmService, 'enqueue' | 'commands'>;
  readonly now?: () => Date;
}

const nowOf = (deps: Pick<MdmAdminDeps, 'now'>): Date => deps.now?.() ?? new Date();

/** Default lifetime of an enrollment token. */
export const ENROLLMENT_TOKEN_TTL_MS = 7 * 86_400_000;

export interface EnrollmentTokenCreated {
  readonly id: string;
  /** The secret a device enrolls with (WS-Security password): shown only here. */
  readonly token: string;
  readonly user: string | null;
  readonly uses: number;
  readonly expiresAt: string;
}

/** Creates a token that `uses` devices may enroll with, for `user` (UPN) or for no user. */
export async function createEnrollmentToken(
  deps: MdmAdminDeps,
  actor: string,
  o: { readonly user?: string; readonly uses?: number; readonly ttlMs?: number } = {},
): Promise<EnrollmentTokenCreated> {
  const uses = o.uses ?? 1;
  const ttl = o.ttlMs ?? ENROLLMENT_TOKEN_TTL_MS;
  if (!Number.isSafeInteger(uses) || uses < 1 || uses > 1_000_000)
    throw new AdminError('ERR_ADMIN_INVALID', `uses must be 1 to 1000000, got ${uses}`);
  if (!Number.isSafeInteger(ttl) || ttl <= 0)
    throw new AdminError('ERR_ADMIN_INVALID', `lifetime must be a positive duration, got ${ttl}`);
  const user = o.user?.trim() || null;
  if (user !== null && !/^[^\s@]+@[^\s@]+$/.test(user))
    throw new AdminError('ERR_ADMIN_INVALID', `--user must be a UPN (name@domain), got "${user}"`);
  const token = randomBytes(24).toString('base64url');
  const now = nowOf(deps);
  const rec = {
    id: randomUUID(),
    secretHash: secretHash(token),
    user,
    createdAt: now,
    expiresAt: new Date(now.getTime() + ttl),
    usesLeft: uses,
  };
  await deps.store.createEnrollmentToken(rec);
  await deps.store.appendAudit({
    at: now,
    actor,
    action: 'enrollment-token.created',
    target: rec.id,
    details: { user, uses, expiresAt: rec.expiresAt.toISOString() },
  });
  return { id: rec.id, token, user, uses, expiresAt: rec.expiresAt.toISOString() };
}

export interface EnrollmentTokenRow {
  readonly id: string;
  readonly user: string | null;
  readonly usesLeft: number;
  readonly createdAt: string;
  readonly expiresAt: string;
}

export async function listEnrollmentTokens(
  deps: MdmAdminDeps,
): Promise<{ tokens: EnrollmentTokenRow[] }> {
  const tokens = await deps.store.listEnrollmentTokens();
  return {
    tokens: tokens.map((t) => ({
      id: t.id,
      user: t.user,
      usesLeft: t.usesLeft,
      createdAt: t.createdAt.toISOString(),
      expiresAt: t.expiresAt.toISOString(),
    })),
  };
}

export async function revokeEnrollmentToken(
  deps: MdmAdminDeps,
  actor: string,
  id: string,
): Promise<{ id: string; revoked: true }> {
  if (!(await deps.store.revokeEnrollmentToken(id)))
    throw new AdminError('ERR_ADMIN_NOT_FOUND', `no enrollment token ${id}`);
  await deps.store.appendAudit({
    at: nowOf(deps),
    actor,
    action: 'enrollment-token.revoked',
    target: id,
    details: {},
  });
  return { id, revoked: true };
}

export interface DeviceRow {
  readonly id: string;
  readonly name: string;
  readonly hardwareId: string;
  readonly user: string | null;
  readonly certificateSerial: string;
  readonly enrolledAt: string;
  readonly lastSeenAt: string | null;
  readonly unenrolledAt: string | null;
  readonly info: Readonly<Record<string, string>>;
}

function deviceRow(d: DeviceRecord): DeviceRow {
  return {
    id: d.id,
    name: d.name,
    hardwareId: d.hardwareId,
    user: d.user,
    certificateSerial: d.certificateSerial,
    enrolledAt: d.enrolledAt.toISOString(),
    lastSeenAt: d.lastSeenAt?.toISOString() ?? null,
    unenrolledAt: d.unenrolledAt?.toISOString() ?? null,
    info: d.info,
  };
}

export async function listDevices(
  deps: MdmAdminDeps,
  o: { readonly limit?: number } = {},
): Promise<{ devices: DeviceRow[] }> {
  return { devices: (await deps.store.listDevices(o)).map(deviceRow) };
}

export interface CommandRow {
  readonly id: string;
  readonly origin: string | null;
  readonly command: Command;
  readonly createdAt: string;
  readonly sentAt: string | null;
  readonly sentCount: number;
  readonly status: number | null;
  readonly results: unknown;
  readonly completedAt: string | null;
}

/** Nodes whose values are secrets: a listing shows that they were set, never what to. */
const SECRET_LEAF = /\/(Challenge|PFXCertPassword|PFXCertBlob)$/;

/** A command as an administrator may see it: secret values (a SCEP challenge, a PFX and its password) redacted. */
function redacted(c: Command): Command {
  if (c.kind === 'Atomic' || c.kind === 'Sequence')
    return { ...c, commands: c.commands.map(redacted) };
  if (!('items' in c) || c.kind === 'Results' || c.kind === 'Alert' || c.kind === 'Status')
    return c;
  return {
    ...c,
    items: c.items.map((i) =>
      i.data !== undefined && SECRET_LEAF.test(i.target ?? '') ? { ...i, data: '(redacted)' } : i,
    ),
  };
}

function commandRow(c: DeviceCommandRecord): CommandRow {
  return {
    id: c.id,
    origin: c.origin,
    command: redacted(JSON.parse(c.payload) as Command),
    createdAt: c.createdAt.toISOString(),
    sentAt: c.sentAt?.toISOString() ?? null,
    sentCount: c.sentCount,
    status: c.status,
    results: c.results === null ? null : (JSON.parse(c.results) as unknown),
    completedAt: c.completedAt?.toISOString() ?? null,
  };
}

export interface InventoryRow {
  readonly uri: string;
  readonly thumbprint: string;
  readonly subject: string;
  readonly issuer: string;
  readonly notAfter: string;
  readonly seenAt: string;
}

/** A device with its certificates (last inventory) and command queue, newest command first. */
export async function showDevice(
  deps: MdmAdminDeps,
  id: string,
  o: { readonly limit?: number } = {},
): Promise<{ device: DeviceRow; certificates: InventoryRow[]; commands: CommandRow[] }> {
  const device = await deps.store.getDevice(id);
  if (!device) throw new AdminError('ERR_ADMIN_NOT_FOUND', `no device ${id}`);
  const [commands, inventory] = await Promise.all([
    deps.mdm.commands(id, o.limit),
    deps.store.listInventory(id),
  ]);
  return {
    device: deviceRow(device),
    certificates: inventory.map((c) => ({
      uri: c.uri,
      thumbprint: c.thumbprint,
      subject: c.subject,
      issuer: c.issuer,
      notAfter: c.notAfter.toISOString(),
      seenAt: c.seenAt.toISOString(),
    })),
    commands: commands.map(commandRow),
  };
}

/**
 * Removes a certificate the device reported (inventory), whoever installed it, by thumbprint:
 * a Delete of every node holding it, sent in the device's next session, followed by a fresh
 * inventory. Unknown thumbprints are refused.
 */
export async function deleteDeviceCertificate(
  deps: MdmAdminDeps,
  actor: string,
  deviceId: string,
  thumbprint: string,
): Promise<{ device: string; commands: string[]; nodes: string[]; push: PushResult }> {
  const device = await deps.store.getDevice(deviceId);
  if (!device || device.unenrolledAt)
    throw new AdminError('ERR_ADMIN_NOT_FOUND', `no enrolled device ${deviceId}`);
  const wanted = thumbprint.replace(/[\s:]/g, '').toUpperCase();
  const nodes = (await deps.store.listInventory(deviceId))
    .filter((c) => c.thumbprint === wanted)
    .map((c) => c.uri);
  if (nodes.length === 0)
    throw new AdminError(
      'ERR_ADMIN_NOT_FOUND',
      `device ${deviceId} reported no certificate ${wanted} (see its inventory)`,
    );
  const commands = await deps.mdm.enqueue(
    deviceId,
    nodes.map((target) => ({ kind: 'Delete', cmdId: '', items: [{ target }] })),
    actor,
  );
  // The next session lists the stores again, so the inventory shows the result.
  await deps.store.touchDevice(deviceId, deps.now?.() ?? new Date(), { [INVENTORY_AT]: '' });
  await deps.store.appendAudit({
    at: deps.now?.() ?? new Date(),
    actor,
    action: 'device.certificate.deleted',
    target: deviceId,
    details: { thumbprint: wanted, nodes },
  });
  return { device: deviceId, commands, nodes, push: await pushDevices(deps.store, [deviceId]) };
}

/** Most commands one `run-command` payload may carry. */
const MAX_PAYLOAD_COMMANDS = 100;

/**
 * Queues SyncML commands for a device, given as XML (one or more of Add, Replace, Delete, Get,
 * Exec, Atomic, as a server would put them in a SyncBody; CmdIDs are assigned when sent), as
 * Fleet's `run-command` does. Malformed XML or anything but management commands is refused and
 * nothing is queued.
 */
export async function runCommand(
  deps: MdmAdminDeps,
  actor: string,
  deviceId: string,
  payload: string,
): Promise<{ device: string; commands: string[]; push: PushResult }> {
  const device = await deps.store.getDevice(deviceId);
  if (!device || device.unenrolledAt)
    throw new AdminError('ERR_ADMIN_NOT_FOUND', `no enrolled device ${deviceId}`);
  const commands = parseCommandPayload(payload);
  const ids = await deps.mdm.enqueue(deviceId, commands, actor);
  const push = await pushDevices(deps.store, [deviceId]);
  await deps.store.appendAudit({
    at: nowOf(deps),
    actor,
    action: 'device.command.queued',
    target: deviceId,
    details: { commands: ids, kinds: commands.map((c) => c.kind) },
  });
  return { device: deviceId, commands: ids, push };
}

const MANAGEMENT = new Set(['Add', 'Replace', 'Delete', 'Get', 'Exec', 'Atomic']);

/** SyncBody command XML → commands, through the one SyncML parser (with its limits). */
export function parseCommandPayload(payload: string): Command[] {
  if (/<\s*\/?\s*(SyncML|SyncHdr|SyncBody)\b/.test(payload))
    throw new AdminError('ERR_ADMIN_INVALID', 'give the commands only, not a whole SyncML message');
  let body: readonly Command[];
  try {
    body = parseSyncML(
      `<SyncML xmlns="SYNCML:SYNCML1.2"><SyncHdr><VerDTD>1.2</VerDTD><VerProto>DM/1.2</VerProto><SessionID>0</SessionID><MsgID>0</MsgID><Target><LocURI>device</LocURI></Target><Source><LocURI>server</LocURI></Source></SyncHdr><SyncBody>${payload}</SyncBody></SyncML>`,
    ).body;
  } catch (e) {
    if (e instanceof SyncMLError)
      throw new AdminError('ERR_ADMIN_INVALID', `the command payload: ${e.message}`);
    throw e;
  }
  if (body.length === 0) throw new AdminError('ERR_ADMIN_INVALID', 'the payload has no command');
  if (body.length > MAX_PAYLOAD_COMMANDS)
    throw new AdminError('ERR_ADMIN_INVALID', `at most ${MAX_PAYLOAD_COMMANDS} commands at once`);
  const bad = body.find((c) => !MANAGEMENT.has(c.kind));
  if (bad)
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      `${bad.kind === 'Unknown' ? bad.name : bad.kind} is not a management command`,
    );
  return [...body];
}
