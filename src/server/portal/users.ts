/**
 * Portal users, once for every front end (`certpost user …` and the portal's sign-in): create,
 * list, change a password, disable and enable, and check a password. Same rules as
 * admin-ops.ts: the actor goes to the audit log, failures the caller can fix are an
 * {@link AdminError}, results are JSON-able. Passwords are hashed with scrypt (password.ts) and
 * never returned, logged or audited.
 */
import { randomUUID } from 'node:crypto';
import type {
  AuditLog,
  UserRecord,
  UserRole,
  UserStore,
  WebSessionStore,
} from '../../store/types.ts';
import { AdminError, uniquelyNamed } from '../admin-ops.ts';
import {
  DEFAULT_PARAMS,
  DUMMY_HASH,
  hashPassword,
  needsRehash,
  PASSWORD_MAX,
  PASSWORD_MIN,
  verifyPassword,
  type ScryptParams,
} from './password.ts';

export interface UserDeps {
  readonly store: UserStore & Pick<WebSessionStore, 'deleteUserWebSessions'> & AuditLog;
  readonly now?: () => Date;
  /** scrypt parameters for new hashes (default password.ts DEFAULT_PARAMS). */
  readonly passwordParams?: ScryptParams;
}

export const USER_ROLES: readonly UserRole[] = ['admin', 'user'];

const nowOf = (deps: Pick<UserDeps, 'now'>): Date => deps.now?.() ?? new Date();

/**
 * A user name as stored and compared: trimmed and lowercase. A UPN (`ann@contoso.com`) or a
 * plain name: letters, digits and `._-`, an optional `@domain`.
 */
export function normalizeUsername(name: string): string {
  const n = name.trim().toLowerCase();
  if (
    !/^[a-z0-9][a-z0-9._-]{0,63}(@[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*)?$/.test(
      n,
    ) ||
    n.length > 254
  )
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      `a user name is a UPN (name@domain) or letters, digits, ".", "_" and "-": "${name}"`,
    );
  return n;
}

function checkPassword(password: string): void {
  const length = [...password].length;
  if (length < PASSWORD_MIN || length > PASSWORD_MAX)
    throw new AdminError(
      'ERR_ADMIN_INVALID',
      `a password has ${PASSWORD_MIN} to ${PASSWORD_MAX} characters (this one has ${length})`,
    );
}

function emailOf(email: string | undefined, username: string): string | null {
  if (email === undefined) return username.includes('@') ? username : null;
  const e = email.trim();
  if (e === '') return null;
  if (!/^[^\s@<>()",;]+@[^\s@<>()",;]+\.[^\s@<>()",;]+$/.test(e) || e.length > 254)
    throw new AdminError('ERR_ADMIN_INVALID', `not an email address: "${email}"`);
  return e;
}

function displayNameOf(name: string | undefined, username: string): string {
  const n = (name ?? username.split('@')[0]!).trim();
  if (n === '' || n.length > 128 || /\p{Cc}/u.test(n))
    throw new AdminError('ERR_ADMIN_INVALID', 'a display name has 1 to 128 printable characters');
  return n;
}

export interface UserRow {
  readonly id: string;
  readonly username: string;
  readonly email: string | null;
  readonly displayName: string;
  readonly role: UserRole;
  readonly status: 'active' | 'disabled';
  readonly createdAt: string;
  readonly updatedAt: string;
}

export function userRow(u: UserRecord): UserRow {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    displayName: u.displayName,
    role: u.role,
    status: u.disabledAt ? 'disabled' : 'active',
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
  };
}

/** Creates a user who can sign in to the portal. Email defaults to a UPN user name. */
export async function createUser(
  deps: UserDeps,
  actor: string,
  o: {
    readonly username: string;
    readonly password: string;
    readonly email?: string;
    readonly displayName?: string;
    readonly role?: UserRole;
  },
): Promise<UserRow> {
  const username = normalizeUsername(o.username);
  const role = o.role ?? 'user';
  if (!USER_ROLES.includes(role))
    throw new AdminError('ERR_ADMIN_INVALID', `role must be admin or user, got "${role}"`);
  checkPassword(o.password);
  const at = nowOf(deps);
  const rec = {
    id: randomUUID(),
    username,
    email: emailOf(o.email, username),
    displayName: displayNameOf(o.displayName, username),
    passwordHash: await hashPassword(o.password, deps.passwordParams),
    role,
    createdAt: at,
    updatedAt: at,
  };
  await uniquelyNamed(deps.store.createUser(rec), `a user "${username}" exists already`);
  await deps.store.appendAudit({
    at,
    actor,
    action: 'user.created',
    target: rec.id,
    details: { username, role, email: rec.email },
  });
  return userRow({ ...rec, disabledAt: null });
}

export async function listUsers(deps: UserDeps): Promise<{ users: UserRow[] }> {
  return { users: (await deps.store.listUsers()).map(userRow) };
}

async function userNamed(deps: UserDeps, name: string): Promise<UserRecord> {
  const u = await deps.store.getUserByName(normalizeUsername(name));
  if (!u) throw new AdminError('ERR_ADMIN_NOT_FOUND', `no user "${name}"`);
  return u;
}

/** Sets a new password; the user's sessions end (they sign in again with it). */
export async function setPassword(
  deps: UserDeps,
  actor: string,
  name: string,
  password: string,
): Promise<UserRow> {
  const u = await userNamed(deps, name);
  checkPassword(password);
  const at = nowOf(deps);
  const passwordHash = await hashPassword(password, deps.passwordParams);
  await deps.store.updateUser(u.id, { passwordHash }, at);
  const ended = await deps.store.deleteUserWebSessions(u.id);
  await deps.store.appendAudit({
    at,
    actor,
    action: 'user.password-changed',
    target: u.id,
    details: { username: u.username, sessionsEnded: ended },
  });
  return userRow({ ...u, passwordHash, updatedAt: at });
}

/** Disables (and signs out everywhere) or enables a user. */
export async function setDisabled(
  deps: UserDeps,
  actor: string,
  name: string,
  disabled: boolean,
): Promise<UserRow> {
  const u = await userNamed(deps, name);
  if (Boolean(u.disabledAt) === disabled)
    throw new AdminError(
      'ERR_ADMIN_CONFLICT',
      `user "${u.username}" is already ${disabled ? 'disabled' : 'enabled'}`,
    );
  const at = nowOf(deps);
  const disabledAt = disabled ? at : null;
  await deps.store.updateUser(u.id, { disabledAt }, at);
  const ended = disabled ? await deps.store.deleteUserWebSessions(u.id) : 0;
  await deps.store.appendAudit({
    at,
    actor,
    action: disabled ? 'user.disabled' : 'user.enabled',
    target: u.id,
    details: { username: u.username, ...(disabled ? { sessionsEnded: ended } : {}) },
  });
  return userRow({ ...u, disabledAt, updatedAt: at });
}

/**
 * The enabled user whose name and password these are, or undefined; unknown, disabled and
 * wrong password are not told apart, and each costs one scrypt run. A hash made with weaker
 * parameters than today's is replaced on the way.
 */
export async function checkCredentials(
  deps: UserDeps,
  name: string,
  password: string,
): Promise<UserRecord | undefined> {
  let username: string;
  try {
    username = normalizeUsername(name);
  } catch {
    username = '';
  }
  const u = username === '' ? undefined : await deps.store.getUserByName(username);
  const ok = await verifyPassword(
    password.slice(0, PASSWORD_MAX * 4),
    u?.passwordHash ?? DUMMY_HASH,
  );
  if (!u || !ok || u.disabledAt) return undefined;
  const params = deps.passwordParams ?? DEFAULT_PARAMS;
  if (needsRehash(u.passwordHash, params))
    await deps.store.updateUser(
      u.id,
      { passwordHash: await hashPassword(password, params) },
      nowOf(deps),
    );
  return u;
}
