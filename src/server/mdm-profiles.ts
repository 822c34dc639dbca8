/**
 * MDM certificate profiles (issue 5): what an administrator assigns, turned into OMA-DM commands
 * for each device, and followed until the device has it — or has it no more.
 *
 * Kinds:
 * - `trusted`: a root or CA certificate into RootCATrustedCertificates (Root, CA,
 *   TrustedPublisher, TrustedPeople, UntrustedCertificates; device or user scope).
 * - `scep`: a client certificate enrolled by the device from our SCEP endpoint
 *   (ClientCertificateInstall/SCEP), with a one-time challenge minted per device and attempt and
 *   bound to the subject the device will ask for, so it cannot be used for anything else.
 *
 * The engine is driven by sessions (mdm.ts): at the start of each session it reconciles the
 * device (queues installs of newly assigned profiles, removals of unassigned ones, and status
 * Gets of enrollments still running), and after each device message it reads the outcomes of
 * its commands. Deliveries live in the store, so a restart loses nothing; a command the device
 * never answered is sent again by the queue.
 */
import type { CaMaterial } from '../ca/authority.ts';
import { parsePkcs12 } from '../pki/pkcs12.ts';
import { sealForCa } from './pfx-identity.ts';
import { PROVIDER_ID } from './mde2.ts';
import { CHANNEL_INFO, channelGet, pushDevices, type PushResult } from './mdm-push.ts';
import { createHash, randomUUID } from 'node:crypto';
import { canonicalFromX500, parseX500 } from '../ca/name.ts';
import type { IssuanceProfile } from '../ca/profile.ts';
import {
  addTrustedCertificate,
  certHash,
  deleteScep,
  deletePfx,
  deleteTrustedCertificate,
  inventoryGet,
  pfxInstall,
  pfxThumbprint,
  readInventory,
  scepInstall,
  scepStatus,
  type CspScope,
  type TrustedStore,
} from '../omadm/csp-commands.ts';
import type { CommandOutcome } from '../omadm/server-session.ts';
import type { Command } from '../omadm/syncml.ts';
import { inspectCertificate, parseCertificate } from '../pki/x509.ts';
import type {
  AuditLog,
  DeliveryRecord,
  DeliveryState,
  DeviceRecord,
  DeviceStore,
  InventoryStore,
  MdmProfileKind,
  MdmProfileRecord,
  MdmProfileStore,
  Store,
} from '../store/types.ts';
import { AdminError, uniquelyNamed } from './admin-ops.ts';
import type { MdmService } from './mdm.ts';

const TRUSTED_STORES: readonly TrustedStore[] = [
  'Root',
  'CA',
  'TrustedPublisher',
  'TrustedPeople',
  'UntrustedCertificates',
];
const SCOPES: readonly CspScope[] = ['device', 'user'];

export interface TrustedSettings {
  readonly scope: CspScope;
  readonly store: TrustedStore;
  /** The certificate, base64 DER. */
  readonly certificate: string;
}

/** A SAN the device asks for: type and a template value. */
export interface SanTemplate {
  readonly type: 'dns' | 'email' | 'upn' | 'uri';
  readonly value: string;
}

export interface ScepSettings {
  readonly scope: CspScope;
  /** X.500 subject template (Windows order), e.g. `CN={{DeviceName}},O=Contoso`. */
  readonly subject: string;
  readonly subjectAltNames: readonly SanTemplate[];
  readonly ekus: readonly string[];
  /** CERT_*_KEY_USAGE bits (0x80 digitalSignature, 0x20 keyEncipherment). */
  readonly keyUsage: number;
  readonly keyProtection: 1 | 2 | 3 | 4;
  readonly keyLength: 2048 | 4096;
  readonly hashAlgorithm: 'SHA-1' | 'SHA-2';
  /** Minutes between PENDING polls and how many (Windows clamps 1–30). */
  readonly retryDelay: number;
  readonly retryCount: number;
  /** The CA issuance profile the challenge is bound to. */
  readonly issuanceProfile: string;
  /** How long a minted challenge lives (minutes). */
  readonly challengeTtlMinutes: number;
  /** Revoke the issued certificate when the profile is removed from the device. */
  readonly revokeOnRemoval: boolean;
  /**
   * Re-enroll when this share of the certificate's lifetime is left (percent), minus a
   * per-device stagger of up to 5% of the lifetime, so a fleet enrolled together does not
   * renew together.
   */
  readonly renewalThresholdPercent: number;
}

/** A server-generated identity (e.g. S/MIME) delivered as a PFX (pfx-identity.ts). */
export interface PfxSettings {
  readonly scope: CspScope;
  /** X.500 subject template, e.g. `CN={{UserPrincipalName}}`. */
  readonly subject: string;
  readonly subjectAltNames: readonly SanTemplate[];
  /** The CA issuance profile (its EKUs: emailProtection for S/MIME). */
  readonly issuanceProfile: string;
  /** ClientCertificateInstall KeyLocation: 1 TPM, 2 TPM else software, 3 software, 4 Hello. */
  readonly keyLocation: 1 | 2 | 3 | 4;
  /** PFXKeyExportable: only with KeyLocation 3. */
  readonly exportable: boolean;
  readonly containerName?: string;
  readonly keyBits: 2048 | 3072 | 4096;
  /** PKCS#12 encryption: `compat` (3DES, SHA-1 MAC: every Windows) or `modern` (AES-256). */
  readonly pfxFormat: 'compat' | 'modern';
  /** Keep the key for recovery (key_escrow, encrypted to the CA). */
  readonly escrow: boolean;
  readonly revokeOnRemoval: boolean;
  /**
   * An administrator's PFX instead of a server-made identity: the PFX (base64), its password
   * sealed for the CA (base64 CMS, pfx-identity.ts sealForCa), the leaf's SHA-1.
   */
  readonly imported?: {
    readonly pfx: string;
    readonly passwordEnvelope: string;
    readonly thumbprint: string;
  };
}

export type ProfileSettings =
  | ({ readonly kind: 'trusted' } & TrustedSettings)
  | ({ readonly kind: 'scep' } & ScepSettings)
  | ({ readonly kind: 'pfx' } & PfxSettings);

/** Template variables a subject or SAN may use, and where each comes from. */
const VARIABLES: Readonly<Record<string, (d: DeviceRecord) => string | null>> = {
  DeviceId: (d) => d.id,
  DeviceName: (d) => d.name,
  HardwareId: (d) => d.hardwareId,
  UserPrincipalName: (d) => d.user,
  EmailAddress: (d) => d.user,
};

const TEMPLATE = /\{\{\s*([A-Za-z]+)\s*\}\}/g;

function templateVariables(t: string): string[] {
  return [...t.matchAll(TEMPLATE)].map((m) => m[1]!);
}

/** RFC 4514 §2.4 escaping of a value put into a DN. */
function escapeDn(v: string): string {
  return v.replace(/[,+"\\<>;=]/g, (c) => `\\${c}`).replace(/^[ #]|[ ]$/g, (c) => `\\${c}`);
}

/** Fills a template for a device; throws when a variable has no value (no user, say). */
export function renderTemplate(t: string, device: DeviceRecord, dn: boolean): string {
  return t.replace(TEMPLATE, (_m, name: string) => {
    const value = VARIABLES[name]?.(device);
    if (value === null || value === undefined)
      throw new Error(`the device has no value for {{${name}}}`);
    return dn ? escapeDn(value) : value;
  });
}

// --- settings ---------------------------------------------------------------------------------

const invalid = (message: string) => new AdminError('ERR_ADMIN_INVALID', message);

function field<T>(o: Record<string, unknown>, name: string, fallback?: T): T {
  const v = o[name];
  if (v === undefined) {
    if (fallback === undefined) throw invalid(`${name} is required`);
    return fallback;
  }
  return v as T;
}

function oneOf<T extends string | number>(name: string, v: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(v as T)) throw invalid(`${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function integer(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw invalid(`${name} must be a whole number from ${min} to ${max}`);
  return v;
}

function checkTemplate(name: string, t: unknown): string {
  if (typeof t !== 'string' || t.trim() === '') throw invalid(`${name} must be a non-empty text`);
  const unknown = templateVariables(t).filter((v) => !(v in VARIABLES));
  if (unknown.length)
    throw invalid(
      `${name} uses {{${unknown[0]}}}; known: ${Object.keys(VARIABLES)
        .map((k) => `{{${k}}}`)
        .join(', ')}`,
    );
  return t;
}

/** The sealed form of an imported PFX, as createProfile stores it. */
function importedField(v: unknown): NonNullable<PfxSettings['imported']> {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const text = (name: string) => {
    const x = o[name];
    if (typeof x !== 'string' || x === '') throw invalid(`imported.${name} is missing`);
    return x;
  };
  return {
    pfx: text('pfx'),
    passwordEnvelope: text('passwordEnvelope'),
    thumbprint: text('thumbprint'),
  };
}

function bool(o: Record<string, unknown>, name: string, fallback: boolean): boolean {
  const v = field<unknown>(o, name, fallback);
  if (typeof v !== 'boolean') throw invalid(`${name} must be true or false`);
  return v;
}

/** Subject and SAN templates and the issuance profile, as SCEP and PFX profiles share them. */
function identityFields(
  o: Record<string, unknown>,
  issuanceProfiles: ReadonlyMap<string, IssuanceProfile>,
  defaults: { subject?: string; subjectAltNames?: SanTemplate[] },
): { subject: string; subjectAltNames: SanTemplate[]; issuanceProfile: string } {
  const subject = checkTemplate('subject', field(o, 'subject', defaults.subject));
  try {
    parseX500(subject.replace(TEMPLATE, 'x'));
  } catch (e) {
    throw invalid(`subject is not an X.500 name: ${(e as Error).message}`);
  }
  const sans = field<unknown[]>(o, 'subjectAltNames', defaults.subjectAltNames ?? []);
  if (!Array.isArray(sans)) throw invalid('subjectAltNames must be a list');
  const subjectAltNames = sans.map((s, i) => {
    const e = s as Record<string, unknown>;
    return {
      type: oneOf(`subjectAltNames[${i}].type`, e['type'], ['dns', 'email', 'upn', 'uri'] as const),
      value: checkTemplate(`subjectAltNames[${i}].value`, e['value']),
    };
  });
  const issuanceProfile = field<string>(o, 'issuanceProfile', 'default');
  if (!issuanceProfiles.has(issuanceProfile))
    throw new AdminError('ERR_ADMIN_UNKNOWN_PROFILE', `no issuance profile "${issuanceProfile}"`);
  return { subject, subjectAltNames, issuanceProfile };
}

/**
 * Validates a profile's settings as given by an administrator (JSON); returns them complete,
 * defaults filled. Everything a device would refuse is refused here, with the field named.
 */
export function validateSettings(
  kind: MdmProfileKind,
  input: unknown,
  issuanceProfiles: ReadonlyMap<string, IssuanceProfile>,
): ProfileSettings {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    throw invalid('settings must be a JSON object');
  const o = input as Record<string, unknown>;
  const allowed =
    kind === 'trusted'
      ? ['scope', 'store', 'certificate']
      : kind === 'pfx'
        ? [
            'scope',
            'subject',
            'subjectAltNames',
            'issuanceProfile',
            'keyLocation',
            'exportable',
            'containerName',
            'keyBits',
            'pfxFormat',
            'escrow',
            'revokeOnRemoval',
            'imported',
          ]
        : [
            'scope',
            'subject',
            'subjectAltNames',
            'ekus',
            'keyUsage',
            'keyProtection',
            'keyLength',
            'hashAlgorithm',
            'retryDelay',
            'retryCount',
            'issuanceProfile',
            'challengeTtlMinutes',
            'revokeOnRemoval',
            'renewalThresholdPercent',
          ];
  const extra = Object.keys(o).find((k) => !allowed.includes(k));
  if (extra) throw invalid(`unknown setting "${extra}" for a ${kind} profile`);
  const scope = oneOf('scope', field(o, 'scope', 'device'), SCOPES);
  switch (kind) {
    case 'trusted': {
      const store = oneOf('store', field(o, 'store'), TRUSTED_STORES);
      if (scope === 'user' && store === 'Root')
        throw invalid('there is no user Root store: use scope device, or the CA store');
      const b64 = field<string>(o, 'certificate');
      try {
        parseCertificate(new Uint8Array(Buffer.from(b64, 'base64')));
      } catch (e) {
        throw invalid(`certificate is not a base64 DER certificate: ${(e as Error).message}`);
      }
      return { kind, scope, store, certificate: b64 };
    }
    case 'scep': {
      const { subject, subjectAltNames, issuanceProfile } = identityFields(o, issuanceProfiles, {});
      const ekus = field<unknown[]>(o, 'ekus', ['1.3.6.1.5.5.7.3.2']);
      if (
        !Array.isArray(ekus) ||
        ekus.length === 0 ||
        !ekus.every((x) => typeof x === 'string' && /^\d+(\.\d+)+$/.test(x))
      )
        throw invalid('ekus must be a non-empty list of OIDs');
      const keyUsage = integer('keyUsage', field(o, 'keyUsage', 0xa0), 1, 0xff);
      if ((keyUsage & 0xa0) === 0)
        throw invalid('keyUsage must include digitalSignature (0x80) or keyEncipherment (0x20)');
      const revokeOnRemoval = bool(o, 'revokeOnRemoval', true);
      return {
        kind,
        scope,
        subject,
        subjectAltNames,
        ekus: ekus as string[],
        keyUsage,
        keyProtection: oneOf('keyProtection', field(o, 'keyProtection', 3), [1, 2, 3, 4] as const),
        keyLength: oneOf('keyLength', field(o, 'keyLength', 2048), [2048, 4096] as const),
        hashAlgorithm: oneOf('hashAlgorithm', field(o, 'hashAlgorithm', 'SHA-2'), [
          'SHA-1',
          'SHA-2',
        ] as const),
        retryDelay: integer('retryDelay', field(o, 'retryDelay', 5), 1, 30),
        retryCount: integer('retryCount', field(o, 'retryCount', 3), 0, 30),
        issuanceProfile,
        challengeTtlMinutes: integer(
          'challengeTtlMinutes',
          field(o, 'challengeTtlMinutes', 60 * 24),
          5,
          60 * 24 * 30,
        ),
        revokeOnRemoval,
        renewalThresholdPercent: integer(
          'renewalThresholdPercent',
          field(o, 'renewalThresholdPercent', 20),
          1,
          90,
        ),
      };
    }
    case 'pfx': {
      const { subject, subjectAltNames, issuanceProfile } = identityFields(o, issuanceProfiles, {
        subject: 'CN={{UserPrincipalName}}',
        subjectAltNames: [{ type: 'email', value: '{{EmailAddress}}' }],
      });
      const keyLocation = oneOf('keyLocation', field(o, 'keyLocation', 3), [1, 2, 3, 4] as const);
      const exportable = bool(o, 'exportable', false);
      if (exportable && keyLocation !== 3)
        throw invalid('exportable needs keyLocation 3 (software): a TPM or Hello key never leaves');
      const containerName = o['containerName'];
      if (keyLocation === 4 && (typeof containerName !== 'string' || containerName === ''))
        throw invalid('keyLocation 4 (Windows Hello) needs a containerName');
      return {
        kind,
        scope: oneOf('scope', field(o, 'scope', 'user'), SCOPES),
        subject,
        subjectAltNames,
        issuanceProfile,
        keyLocation,
        exportable,
        ...(typeof containerName === 'string' && containerName ? { containerName } : {}),
        keyBits: oneOf('keyBits', field(o, 'keyBits', 2048), [2048, 3072, 4096] as const),
        pfxFormat: oneOf('pfxFormat', field(o, 'pfxFormat', 'compat'), [
          'compat',
          'modern',
        ] as const),
        escrow: bool(o, 'escrow', true),
        revokeOnRemoval: bool(o, 'revokeOnRemoval', false),
        ...(o['imported'] !== undefined ? { imported: importedField(o['imported']) } : {}),
      };
    }
    default:
      throw invalid(`profiles of kind ${String(kind)} are not supported`);
  }
}

// --- administration ---------------------------------------------------------------------------

export interface ProfileAdminDeps {
  readonly store: MdmProfileStore & DeviceStore & AuditLog;
  readonly profiles: ReadonlyMap<string, IssuanceProfile>;
  /** Seals imported PFX passwords (pfx-identity.ts). */
  readonly ca?: CaMaterial;
  readonly now?: () => Date;
}

export interface ProfileRow {
  readonly id: string;
  readonly name: string;
  readonly kind: MdmProfileKind;
  readonly settings: ProfileSettings;
  readonly assignments: readonly { readonly kind: string; readonly target: string }[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/**
 * A PFX profile given `pfx` (base64) and `password`: the file is opened now (a wrong password or
 * a file without exactly one key is refused here, not on devices), and the password is kept only
 * sealed for the CA. Other settings pass through.
 */
async function importPfx(deps: ProfileAdminDeps, input: unknown): Promise<unknown> {
  if (typeof input !== 'object' || input === null || !('pfx' in input)) return input;
  const { pfx, password, ...rest } = input as Record<string, unknown>;
  if (typeof pfx !== 'string' || typeof password !== 'string')
    throw invalid('an imported PFX needs pfx (base64) and password');
  if (!deps.ca) throw invalid('this server cannot seal PFX passwords (no CA)');
  const bytes = new Uint8Array(Buffer.from(pfx, 'base64'));
  let contents;
  try {
    contents = await parsePkcs12(bytes, password);
  } catch (e) {
    throw invalid(`the PFX cannot be opened: ${(e as Error).message}`);
  }
  if (contents.keys.length !== 1 || contents.certificates.length === 0)
    throw invalid('the PFX must hold one private key and its certificate');
  const key = contents.keys[0]!;
  const leaf = contents.certificates.find((c) =>
    Buffer.from(c.certificate.spki).equals(Buffer.from(key.spki)),
  );
  if (!leaf) throw invalid('no certificate of the PFX carries its key');
  return {
    ...rest,
    imported: {
      pfx,
      passwordEnvelope: Buffer.from(sealForCa(deps.ca, password)).toString('base64'),
      thumbprint: inspectCertificate(leaf.certificate).sha1.toUpperCase(),
    },
  };
}

export async function createProfile(
  deps: ProfileAdminDeps,
  actor: string,
  o: { readonly name: string; readonly kind: MdmProfileKind; readonly settings: unknown },
): Promise<ProfileRow> {
  if (!NAME.test(o.name))
    throw invalid(
      'a profile name is 1–64 letters, digits, ".", "_" or "-", starting with a letter or digit',
    );
  const settings = validateSettings(
    o.kind,
    o.kind === 'pfx' ? await importPfx(deps, o.settings) : o.settings,
    deps.profiles,
  );
  const at = deps.now?.() ?? new Date();
  const rec: MdmProfileRecord = {
    id: randomUUID(),
    name: o.name,
    kind: o.kind,
    settings: JSON.stringify(settings),
    createdAt: at,
    updatedAt: at,
  };
  await uniquelyNamed(deps.store.createMdmProfile(rec), `a profile named "${o.name}" exists`);
  await deps.store.appendAudit({
    at,
    actor,
    action: 'mdm-profile.created',
    target: rec.id,
    details: { name: rec.name, kind: rec.kind },
  });
  return row(rec, []);
}

function row(
  p: MdmProfileRecord,
  assignments: readonly { targetKind: string; target: string }[],
): ProfileRow {
  return {
    id: p.id,
    name: p.name,
    kind: p.kind,
    settings: settingsOf(p),
    assignments: assignments.map((a) => ({ kind: a.targetKind, target: a.target })),
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

export async function listProfiles(deps: ProfileAdminDeps): Promise<{ profiles: ProfileRow[] }> {
  const [profiles, assignments] = await Promise.all([
    deps.store.listMdmProfiles(),
    deps.store.listAssignments(),
  ]);
  return {
    profiles: profiles.map((p) =>
      row(
        p,
        assignments.filter((a) => a.profileId === p.id),
      ),
    ),
  };
}

async function profileNamed(deps: ProfileAdminDeps, name: string): Promise<MdmProfileRecord> {
  const p = (await deps.store.getMdmProfileByName(name)) ?? (await deps.store.getMdmProfile(name));
  if (!p) throw new AdminError('ERR_ADMIN_NOT_FOUND', `no MDM profile "${name}"`);
  return p;
}

export type AssignTarget =
  | { readonly kind: 'device'; readonly id: string }
  | { readonly kind: 'user'; readonly upn: string }
  | { readonly kind: 'all' };

function targetOf(t: AssignTarget): { targetKind: 'device' | 'user' | 'all'; target: string } {
  switch (t.kind) {
    case 'device':
      return { targetKind: 'device', target: t.id };
    case 'user':
      if (!/^[^\s@]+@[^\s@]+$/.test(t.upn)) throw invalid(`"${t.upn}" is not a UPN (name@domain)`);
      return { targetKind: 'user', target: t.upn.toLowerCase() };
    case 'all':
      return { targetKind: 'all', target: '' };
  }
}

/** The enrolled devices an assignment target covers. */
async function devicesOf(
  deps: ProfileAdminDeps,
  t: { targetKind: 'device' | 'user' | 'all'; target: string },
): Promise<string[]> {
  if (t.targetKind === 'device') return [t.target];
  const devices = await deps.store.listDevices({
    limit: Number.MAX_SAFE_INTEGER,
    enrolled: true,
    ...(t.targetKind === 'user' ? { user: t.target } : {}),
  });
  return devices.map((d) => d.id);
}

/** Assigns a profile; devices get it in their next session. */
export async function assignProfile(
  deps: ProfileAdminDeps,
  actor: string,
  name: string,
  target: AssignTarget,
): Promise<{ profile: string; target: string; assigned: boolean; push?: PushResult }> {
  const p = await profileNamed(deps, name);
  const t = targetOf(target);
  if (t.targetKind === 'device' && !(await deps.store.getDevice(t.target)))
    throw new AdminError('ERR_ADMIN_NOT_FOUND', `no device ${t.target}`);
  const at = deps.now?.() ?? new Date();
  const assigned = await deps.store.assignMdmProfile({ profileId: p.id, ...t, createdAt: at });
  if (assigned)
    await deps.store.appendAudit({
      at,
      actor,
      action: 'mdm-profile.assigned',
      target: p.id,
      details: { name: p.name, to: t },
    });
  // Devices it applies to are told now (push); the others get it at their next poll.
  const push = assigned ? await pushDevices(deps.store, await devicesOf(deps, t)) : undefined;
  return {
    profile: p.name,
    target: `${t.targetKind}:${t.target}`,
    assigned,
    ...(push ? { push } : {}),
  };
}

/** Unassigns a profile; devices that no longer have it assigned remove it in their next session. */
export async function unassignProfile(
  deps: ProfileAdminDeps,
  actor: string,
  name: string,
  target: AssignTarget,
): Promise<{ profile: string; target: string; unassigned: true; push: PushResult }> {
  const p = await profileNamed(deps, name);
  const t = targetOf(target);
  if (!(await deps.store.unassignMdmProfile({ profileId: p.id, ...t })))
    throw new AdminError(
      'ERR_ADMIN_NOT_FOUND',
      `profile "${p.name}" is not assigned to ${t.targetKind} ${t.target}`,
    );
  await deps.store.appendAudit({
    at: deps.now?.() ?? new Date(),
    actor,
    action: 'mdm-profile.unassigned',
    target: p.id,
    details: { name: p.name, from: t },
  });
  const push = await pushDevices(deps.store, await devicesOf(deps, t));
  return { profile: p.name, target: `${t.targetKind}:${t.target}`, unassigned: true, push };
}

/** Names of the profiles {@link applyDefaults} makes. */
export const DEFAULT_PROFILES = { root: 'default-root', scep: 'default-scep' } as const;

/**
 * The defaults a fresh server offers (`certpost profile apply-defaults`): this CA's root into
 * every device's Root store, and a SCEP device certificate from this server, both assigned to
 * all devices. Idempotent.
 */
export async function applyDefaults(
  deps: ProfileAdminDeps & {
    readonly ca: { readonly root: { readonly certificate: { readonly der: Uint8Array } } };
  },
  actor: string,
): Promise<{ profiles: ProfileRow[] }> {
  const wanted: { name: string; kind: MdmProfileKind; settings: unknown }[] = [
    {
      name: DEFAULT_PROFILES.root,
      kind: 'trusted',
      settings: {
        scope: 'device',
        store: 'Root',
        certificate: Buffer.from(deps.ca.root.certificate.der).toString('base64'),
      },
    },
    {
      name: DEFAULT_PROFILES.scep,
      kind: 'scep',
      settings: {
        scope: 'device',
        subject: 'CN={{DeviceName}}',
        subjectAltNames: [{ type: 'dns', value: '{{HardwareId}}.device' }],
        ekus: ['1.3.6.1.5.5.7.3.2'],
        keyProtection: 3,
      },
    },
  ];
  for (const w of wanted) {
    if (!(await deps.store.getMdmProfileByName(w.name))) await createProfile(deps, actor, w);
    await assignProfile(deps, actor, w.name, { kind: 'all' });
  }
  const all = await listProfiles(deps);
  return { profiles: all.profiles.filter((p) => wanted.some((w) => w.name === p.name)) };
}

// --- the engine -------------------------------------------------------------------------------

/** What a delivery remembers (`detail`). */
/** The detail without the named command references (answered, or to be replaced). */
function without(
  d: Detail,
  ...keys: ('install' | 'status' | 'remove' | 'retire' | 'previous')[]
): Detail {
  const copy = { ...d };
  for (const k of keys) delete copy[k];
  return copy;
}

interface Detail {
  /** The command that installs, the one reading the outcome, the one removing. */
  install?: string;
  status?: string;
  remove?: string;
  /** SCEP: the enrollment node in use (the profile id, then `<id>-<attempt>` for renewals). */
  cspId?: string;
  /** SCEP: the installed certificate's SHA-1, its end, and when to renew it. */
  thumbprint?: string;
  notAfter?: string;
  renewAt?: string;
  /** PFX: the thumbprint of the certificate sent, which the device must report. */
  expected?: string;
  /** SCEP renewal: the enrollment being replaced, and the Delete that retires it. */
  previous?: { readonly cspId: string; readonly thumbprint?: string };
  retire?: string;
  error?: string;
  /** SCEP, failed on the device: when the server sends a new attempt (absent: it gave up). */
  retryAt?: string;
  attempts: number;
}

/** Attempts of one SCEP delivery before the server stops sending new ones (the admin may reassign). */
export const SCEP_MAX_ATTEMPTS = 8;

export interface ProfileEngineConfig {
  readonly store: MdmProfileStore &
    DeviceStore &
    InventoryStore &
    AuditLog &
    Pick<Store, 'transaction'>;
  readonly mdm: Pick<MdmService, 'enqueue'>;
  /** Our SCEP endpoint as devices reach it. */
  readonly scepUrl: string;
  /** SHA-1 (hex) of the CA certificate devices must find at GetCACert. */
  readonly caThumbprint: string;
  /** Mints a one-time challenge bound to an issuance profile and an exact subject (RFC 4514). */
  readonly mintChallenge: (
    issuanceProfile: string,
    subject: string,
    ttlMs: number,
  ) => Promise<string>;
  /** Revokes a certificate this CA issued, found by SHA-1 (RFC 5280 reason code). */
  readonly revokeByThumbprint: (sha1: string, actor: string, reason: 4 | 5) => Promise<void>;
  /** Makes a server-generated identity for a device (pfx-identity.ts); throws when refused. */
  readonly issueIdentity: (
    device: DeviceRecord,
    r: {
      subject: string;
      subjectAltNames: { type: SanTemplate['type']; value: string }[];
      issuanceProfile: string;
      keyBits: 2048 | 3072 | 4096;
      pfxFormat: 'compat' | 'modern';
      escrow: boolean;
      actor: string;
      /** Deliver this administrator's PFX instead of making an identity. */
      imported?: NonNullable<PfxSettings['imported']>;
    },
  ) => Promise<{ pfx: Uint8Array; passwordForDevice: string; thumbprint: string }>;
  /** How often a device lists its stores (inventory); default a day. */
  readonly inventoryIntervalMs?: number;
  /**
   * How long after a SCEP enrollment failed on the device (the SCEP server unreachable, a
   * refusal) the server sends a new attempt with a new challenge; doubled after each failure, at
   * most a day, at most {@link SCEP_MAX_ATTEMPTS} attempts. Default 15 minutes.
   */
  readonly retryFailedMs?: number;
  /** SHA-1s (upper-case) of the roots enrollment installs: never deleted by unassigning. */
  readonly enrollmentRoots?: readonly string[];
  /** The validity of a certificate this CA issued, by SHA-1. */
  readonly certificateBySha1: (
    sha1: string,
  ) => Promise<{ readonly notBefore: Date; readonly notAfter: Date } | undefined>;
  readonly now?: () => Date;
}

/** A profile never delivered to the device, or removed from it, is installed (again). */
const needsInstall = (
  d: DeliveryRecord | undefined,
): d is undefined | (DeliveryRecord & { readonly state: 'removed' }) => !d || d.state === 'removed';

/** A server-made identity for a device ({@link ProfileEngineConfig.issueIdentity}), or why not. */
type MadeIdentity =
  Awaited<ReturnType<ProfileEngineConfig['issueIdentity']>> | { readonly error: string };

/**
 * Device info the engine wants kept with the device (bookkeeping marks, the push channel): the
 * session records it together with what the device reported, in the one write of its step.
 */
export type DeviceInfoMarks = Readonly<Record<string, string>>;

export interface ProfileEngine {
  /**
   * Queues what the device needs now; called at the start of each of its sessions. Reads what
   * the device's profiles need and makes the PFX identities to install (outside any
   * transaction: a key is generated), and returns the writes, for the caller to run inside
   * its own transaction. `beforeIssuing` runs before the first identity is made (the session
   * moves the device's nonce there, so a copy of the message issues nothing); when it answers
   * false, nothing is made and reconcile answers undefined.
   */
  reconcile(
    device: DeviceRecord,
    beforeIssuing?: () => Promise<boolean>,
  ): Promise<(() => Promise<DeviceInfoMarks>) | undefined>;
  /** Reads the outcomes of the device's commands into its deliveries. */
  recordOutcomes(
    device: DeviceRecord,
    outcomes: readonly (CommandOutcome & { readonly command: Command })[],
  ): Promise<DeviceInfoMarks>;
}

/** When to renew a certificate of this validity (threshold, minus the device's stagger). */
function renewAt(
  device: DeviceRecord,
  p: MdmProfileRecord,
  v: { notBefore: Date; notAfter: Date },
) {
  const s = settingsOf(p);
  const threshold = s.kind === 'scep' ? s.renewalThresholdPercent : 20;
  const life = v.notAfter.getTime() - v.notBefore.getTime();
  const stagger =
    (createHash('sha256').update(`${device.id}:${p.id}`).digest().readUInt32BE(0) / 2 ** 32) * 0.05;
  return new Date(v.notAfter.getTime() - life * (threshold / 100 + stagger));
}

export function createProfileEngine(config: ProfileEngineConfig): ProfileEngine {
  const { store } = config;
  const now = config.now ?? (() => new Date());

  async function put(
    device: DeviceRecord,
    profileId: string,
    state: DeliveryState,
    detail: Detail,
  ) {
    await store.putDelivery({
      deviceId: device.id,
      profileId,
      state,
      detail: JSON.stringify(detail),
      updatedAt: now(),
    });
  }

  async function queue(device: DeviceRecord, p: MdmProfileRecord, commands: Command[]) {
    return config.mdm.enqueue(device.id, commands, `profile:${p.name}`);
  }

  /**
   * Queues the install. `renewing` is the detail of an installed SCEP certificate being renewed:
   * the new enrollment gets a node of its own, and the old one stays until the new one is in.
   */
  async function install(
    device: DeviceRecord,
    p: MdmProfileRecord,
    attempts: number,
    renewing?: Detail,
    /** A PFX profile's identity, made beforehand ({@link pfxIdentity}). */
    made?: MadeIdentity,
  ): Promise<void> {
    const s = settingsOf(p);
    if (s.kind === 'pfx')
      return installPfx(device, p, s, made ?? (await pfxIdentity(device, p)), attempts);
    if (s.kind === 'trusted') {
      const [id] = await queue(device, p, [
        addTrustedCertificate(s.scope, s.store, Buffer.from(s.certificate, 'base64')),
      ]);
      return put(device, p.id, 'installing', { install: id!, attempts });
    }
    let subject: string;
    let sans: string;
    try {
      subject = renderTemplate(s.subject, device, true);
      sans = s.subjectAltNames
        .map((n) => `${SAN_IDS[n.type]}+${renderTemplate(n.value, device, false)}`)
        .join(';');
    } catch (e) {
      return put(device, p.id, 'failed', { error: (e as Error).message, attempts });
    }
    const challenge = await config.mintChallenge(
      s.issuanceProfile,
      canonicalFromX500(subject),
      s.challengeTtlMinutes * 60_000,
    );
    const cspId = renewing ? `${p.id}-${attempts}` : p.id;
    const [id, status] = await queue(device, p, [
      scepInstall({
        scope: s.scope,
        id: cspId,
        serverUrls: [config.scepUrl],
        challenge,
        subjectName: subject,
        ...(sans ? { subjectAlternativeNames: sans } : {}),
        ekus: s.ekus,
        keyUsage: s.keyUsage,
        keyProtection: s.keyProtection,
        keyLength: s.keyLength,
        hashAlgorithm: s.hashAlgorithm,
        caThumbprint: config.caThumbprint,
        retryDelay: s.retryDelay,
        retryCount: s.retryCount,
      }),
      scepStatus(s.scope, cspId),
    ]);
    const next = { install: id!, status: status!, cspId, attempts };
    if (!renewing) return put(device, p.id, 'installing', next);
    // The device keeps its certificate meanwhile: the delivery stays installed.
    return put(device, p.id, 'installed', {
      ...renewing,
      ...next,
      previous: {
        cspId: renewing.cspId ?? p.id,
        ...(renewing.thumbprint ? { thumbprint: renewing.thumbprint } : {}),
      },
    });
  }

  /**
   * The identity a PFX profile delivers to a device, or why there is none. Made before the
   * transaction that queues it: making one generates a key, and a transaction holds the store's
   * connection (SQLite: the process's only one) until it ends.
   */
  async function pfxIdentity(device: DeviceRecord, p: MdmProfileRecord): Promise<MadeIdentity> {
    const s = settingsOf(p);
    if (s.kind !== 'pfx') throw new Error(`profile ${p.name} is not a PFX profile`);
    try {
      return await config.issueIdentity(device, {
        ...(s.imported ? { imported: s.imported } : {}),
        subject: renderTemplate(s.subject, device, true),
        subjectAltNames: s.subjectAltNames.map((n) => ({
          type: n.type,
          value: renderTemplate(n.value, device, false),
        })),
        issuanceProfile: s.issuanceProfile,
        keyBits: s.keyBits,
        pfxFormat: s.pfxFormat,
        escrow: s.escrow,
        actor: `profile:${p.name}`,
      });
    } catch (e) {
      return { error: (e as Error).message };
    }
  }

  /** A PFX profile: the server made the identity; the device gets it in one Atomic. */
  async function installPfx(
    device: DeviceRecord,
    p: MdmProfileRecord,
    s: PfxSettings,
    identity: MadeIdentity,
    attempts: number,
  ): Promise<void> {
    if ('error' in identity)
      return put(device, p.id, 'failed', { error: identity.error, attempts });
    const [id, status] = await queue(device, p, [
      pfxInstall({
        scope: s.scope,
        id: p.id,
        pfx: identity.pfx,
        password: identity.passwordForDevice,
        passwordEncryptionType: 1,
        keyLocation: s.keyLocation,
        exportable: s.exportable,
        ...(s.containerName ? { containerName: s.containerName } : {}),
      }),
      pfxThumbprint(s.scope, p.id),
    ]);
    return put(device, p.id, 'installing', {
      install: id!,
      status: status!,
      cspId: p.id,
      expected: identity.thumbprint,
      attempts,
    });
  }

  /** A failed delivery's detail; a SCEP one is tried again later, until the attempts run out. */
  function failed(d: Detail, error: string, retry: boolean): Detail {
    if (!retry || d.attempts >= SCEP_MAX_ATTEMPTS)
      return { ...d, error: retry ? `${error}; gave up after ${d.attempts} attempts` : error };
    const wait = Math.min(86_400_000, (config.retryFailedMs ?? 900_000) * 2 ** (d.attempts - 1));
    return { ...d, error, retryAt: new Date(now().getTime() + wait).toISOString() };
  }

  async function remove(device: DeviceRecord, p: MdmProfileRecord, d: Detail): Promise<void> {
    const s = settingsOf(p);
    // The root the device was enrolled with (Root store, provisioning document) stays: without
    // it the device could no longer trust this server. The profile is removed all the same.
    if (
      s.kind === 'trusted' &&
      s.store === 'Root' &&
      s.scope === 'device' &&
      config.enrollmentRoots?.includes(certHash(Buffer.from(s.certificate, 'base64')))
    )
      return put(device, p.id, 'removed', { attempts: d.attempts });
    const command =
      s.kind === 'trusted'
        ? deleteTrustedCertificate(s.scope, s.store, Buffer.from(s.certificate, 'base64'))
        : s.kind === 'pfx'
          ? deletePfx(s.scope, d.cspId ?? p.id)
          : deleteScep(s.scope, d.cspId ?? p.id);
    const [id] = await queue(device, p, [command]);
    if (s.kind !== 'trusted' && s.revokeOnRemoval && d.thumbprint)
      await config.revokeByThumbprint(d.thumbprint, `profile:${p.name}`, 5);
    return put(device, p.id, 'removing', { ...d, remove: id! });
  }

  /**
   * A SCEP status answer: installed → its validity and renewal time, and a renewal's old
   * enrollment retired (Delete, and revoked as superseded); failed during a renewal → the old
   * certificate stays, and the renewal is tried again a day later.
   */
  async function afterStatus(
    device: DeviceRecord,
    p: MdmProfileRecord,
    detail: Detail,
    o: CommandOutcome,
  ): Promise<[DeliveryState, Detail]> {
    const [state, outcome] = scepOutcome(detail, o);
    const renewing = detail.previous !== undefined;
    const next = state === 'failed' && !renewing ? failed(outcome, outcome.error!, true) : outcome;
    if (state === 'failed' && renewing) {
      const { previous } = detail;
      return [
        'installed',
        {
          ...without(next, 'previous'),
          cspId: previous!.cspId,
          ...(previous!.thumbprint ? { thumbprint: previous!.thumbprint } : {}),
          renewAt: new Date(now().getTime() + 86_400_000).toISOString(),
        },
      ];
    }
    if (state === 'installed' && !next.thumbprint && !renewing && detail.thumbprint)
      // Enrolled once, but the certificate is gone or no longer valid: enroll again.
      return ['installed', { ...next, renewAt: now().toISOString() }];
    if (state !== 'installed' || !next.thumbprint) return [renewing ? 'installed' : state, next];
    if (renewing && next.thumbprint === detail.previous?.thumbprint) return ['installed', next];
    const validity = await config.certificateBySha1(next.thumbprint);
    const dated = validity
      ? {
          ...next,
          notAfter: validity.notAfter.toISOString(),
          renewAt: renewAt(device, p, validity).toISOString(),
        }
      : next;
    if (!renewing) return ['installed', dated];
    const s = settingsOf(p);
    const [retire] = await queue(device, p, [deleteScep(s.scope, detail.previous!.cspId)]);
    if (s.kind === 'scep' && s.revokeOnRemoval && detail.previous!.thumbprint)
      await config.revokeByThumbprint(detail.previous!.thumbprint, `profile:${p.name}`, 4);
    return ['installed', { ...dated, retire: retire! }];
  }

  /**
   * Every `inventoryIntervalMs`: one Get listing the device's stores, and a status Get of each
   * installed SCEP enrollment, so a certificate gone from the device (CertThumbprint empty: the
   * user deleted it, or it expired) is enrolled again.
   */
  async function inventory(
    device: DeviceRecord,
    assigned: readonly MdmProfileRecord[],
    /** Read only when a round is due (most sessions have none). */
    deliveriesNow: () => Promise<
      readonly { profileId: string; state: DeliveryState; detail: string }[]
    >,
  ): Promise<DeviceInfoMarks> {
    // The first round comes one interval after enrollment (the enrollment itself installed what
    // the server knows of); an empty mark (an administrator deleted something) asks for one now.
    const mark = device.info[INVENTORY_AT];
    const last = mark === undefined ? device.enrolledAt.getTime() : Date.parse(mark) || 0;
    const at = now();
    if (at.getTime() - last < (config.inventoryIntervalMs ?? 86_400_000)) return {};
    await config.mdm.enqueue(device.id, [inventoryGet(), channelGet(PROVIDER_ID)], 'inventory');
    for (const d of await deliveriesNow()) {
      const p = assigned.find((x) => x.id === d.profileId);
      const detail = detailOf(d);
      if (!p || p.kind !== 'scep' || d.state !== 'installed' || detail.status || detail.previous)
        continue;
      const [status] = await queue(device, p, [scepStatus(scopeOf(p), detail.cspId ?? p.id)]);
      await put(device, p.id, 'installed', { ...detail, status: status! });
    }
    return { [INVENTORY_AT]: at.toISOString() };
  }

  /** A `?list=StructData` answer: the listed stores' certificates replace what was known. */
  async function recordInventory(device: DeviceRecord, o: CommandOutcome): Promise<void> {
    const { stores, certificates } = readInventory(o.results);
    const seenAt = now();
    for (const storeUri of stores) {
      const entries = [];
      for (const c of certificates.filter((x) => x.uri.startsWith(`${storeUri}/`))) {
        try {
          const info = inspectCertificate(parseCertificate(c.der));
          entries.push({
            uri: c.uri,
            thumbprint: info.sha1.toUpperCase(),
            subject: info.subject,
            issuer: info.issuer,
            notAfter: new Date(info.notAfter),
            der: c.der,
            seenAt,
          });
        } catch {
          // Not a certificate we can read: the device holds something odd; leave it out.
        }
      }
      await store.replaceInventory(device.id, `${storeUri}/`, entries);
    }
  }

  /** What reconcile queues and records, given what it read and the PFX identities it made. */
  async function queueNeeds(
    device: DeviceRecord,
    assigned: readonly MdmProfileRecord[],
    byProfile: ReadonlyMap<string, DeliveryRecord>,
    identities: ReadonlyMap<string, MadeIdentity>,
  ): Promise<DeviceInfoMarks> {
    for (const p of assigned) {
      const d = byProfile.get(p.id);
      const detail = d ? detailOf(d) : { attempts: 0 };
      if (needsInstall(d))
        await install(device, p, detail.attempts + 1, undefined, identities.get(p.id));
      else if (p.kind === 'scep' && d.state === 'failed') {
        if (detail.retryAt !== undefined && Date.parse(detail.retryAt) <= now().getTime()) {
          // The failed enrollment node goes first; the new attempt has a challenge of its own.
          await queue(device, p, [deleteScep(scopeOf(p), detail.cspId ?? p.id)]);
          await install(device, p, detail.attempts + 1);
        }
      } else if (p.kind !== 'scep' || d.state === 'removing') continue;
      else if (
        detail.install === undefined &&
        detail.cspId &&
        !detail.status &&
        (d.state === 'installing' || detail.previous)
      ) {
        // The enrollment runs on the device after the session: ask again for its outcome.
        const [status] = await queue(device, p, [scepStatus(scopeOf(p), detail.cspId)]);
        await put(device, p.id, d.state, { ...detail, status: status! });
      } else if (
        d.state === 'installed' &&
        !detail.previous &&
        detail.renewAt !== undefined &&
        Date.parse(detail.renewAt) <= now().getTime()
      )
        await install(device, p, detail.attempts + 1, detail);
    }
    const wanted = new Set(assigned.map((p) => p.id));
    for (const d of byProfile.values()) {
      if (wanted.has(d.profileId) || d.state === 'removing' || d.state === 'removed') continue;
      const p = await store.getMdmProfile(d.profileId);
      if (p) await remove(device, p, detailOf(d));
    }
    // Read again when needed: the steps above changed deliveries.
    const marks = await inventory(device, assigned, () => store.listDeliveries(device.id));
    // Learn the push channel once after enrollment (again at each inventory round).
    if (device.info[CHANNEL_ASKED] !== undefined) return marks;
    await config.mdm.enqueue(device.id, [channelGet(PROVIDER_ID)], 'push');
    return { ...marks, [CHANNEL_ASKED]: now().toISOString() };
  }

  return {
    async reconcile(device, beforeIssuing) {
      const [assigned, deliveries] = await Promise.all([
        store.profilesForDevice(device.id, device.user),
        store.listDeliveries(device.id),
      ]);
      const byProfile = new Map(deliveries.map((d) => [d.profileId, d]));
      // The PFX identities installed below are made first, outside the transaction.
      const pfx = assigned.filter((p) => p.kind === 'pfx' && needsInstall(byProfile.get(p.id)));
      if (pfx.length > 0 && beforeIssuing && !(await beforeIssuing())) return undefined;
      const identities = new Map<string, MadeIdentity>();
      for (const p of pfx) identities.set(p.id, await pfxIdentity(device, p));
      return () => queueNeeds(device, assigned, byProfile, identities);
    },

    async recordOutcomes(device, outcomes) {
      if (outcomes.length === 0) return {};
      const marks: Record<string, string> = {};
      for (const o of outcomes) {
        if (o.command.kind !== 'Get') continue;
        if (o.command.items.some((i) => i.target?.endsWith('?list=StructData')))
          await recordInventory(device, o);
        const channel = o.command.items.find((i) => i.target?.endsWith('/Push/ChannelURI'));
        if (channel) marks[CHANNEL_INFO] = o.status === 200 ? (o.results[0]?.data ?? '') : '';
      }
      // One message may answer several commands of one delivery (a SCEP install and its
      // status Get): each outcome reads the detail as the previous one left it, and each
      // delivery is written once, as the last outcome left it.
      const details = new Map(
        (await store.listDeliveries(device.id)).map((d) => [d.profileId, detailOf(d)]),
      );
      const changed = new Map<string, DeliveryState>();
      const set = (profileId: string, state: DeliveryState, detail: Detail) => {
        details.set(profileId, detail);
        changed.set(profileId, state);
      };
      // A profile is read once per message, however many of its commands it answers.
      const profiles = new Map<string, Promise<MdmProfileRecord | undefined>>();
      const profile = (id: string) => {
        let p = profiles.get(id);
        if (!p) profiles.set(id, (p = store.getMdmProfile(id)));
        return p;
      };
      for (const o of outcomes) {
        for (const [profileId, detail] of details) {
          if (o.id === detail.install) {
            // 418 on a re-delivered Add: the device has it already.
            const ok = o.status === 200 || o.status === 418;
            const kind = (await profile(profileId))?.kind;
            if (!ok && detail.previous) {
              // A renewal the device refused: the old certificate stays; try again in a day.
              set(profileId, 'installed', {
                ...without(detail, 'install', 'status', 'previous'),
                cspId: detail.previous.cspId,
                ...(detail.previous.thumbprint ? { thumbprint: detail.previous.thumbprint } : {}),
                renewAt: new Date(now().getTime() + 86_400_000).toISOString(),
                error: `the renewal was answered ${o.status}`,
              });
              continue;
            }
            set(
              profileId,
              !ok ? 'failed' : kind === 'trusted' ? 'installed' : 'installing',
              ok
                ? without(detail, 'install')
                : failed(
                    without(detail, 'install', 'status'),
                    `the device answered ${o.status}`,
                    kind === 'scep',
                  ),
            );
          } else if (o.id === detail.status) {
            const p = await profile(profileId);
            if (p?.kind === 'pfx') set(profileId, ...pfxOutcome(detail, o));
            else if (p) set(profileId, ...(await afterStatus(device, p, detail, o)));
          } else if (o.id === detail.retire) {
            set(profileId, 'installed', without(detail, 'retire', 'previous'));
          } else if (o.id === detail.remove) {
            const gone = o.status === 200 || o.status === 404;
            set(
              profileId,
              gone ? 'removed' : 'failed',
              gone
                ? { attempts: detail.attempts }
                : { ...detail, error: `removal answered ${o.status}` },
            );
          }
        }
      }
      for (const [profileId, state] of changed)
        await put(device, profileId, state, details.get(profileId)!);
      return marks;
    },
  };
}

/** A profile's settings as validateSettings stored them. */
function settingsOf(p: Pick<MdmProfileRecord, 'settings'>): ProfileSettings {
  return JSON.parse(p.settings) as ProfileSettings;
}

/** What a delivery tracks, as the engine stored it. */
function detailOf(d: { readonly detail: string }): Detail {
  return JSON.parse(d.detail) as Detail;
}

/** Device info key of when the push channel was first asked for. */
const CHANNEL_ASKED = 'certpost/channelAskedAt';

/** Device info key of the last inventory round (server bookkeeping, next to what devices report). */
export const INVENTORY_AT = 'certpost/inventoryAt';

/** Windows alt-name ids for SubjectAlternativeNames (CERT_ALT_NAME_*). */
const SAN_IDS: Readonly<Record<SanTemplate['type'], number>> = {
  email: 2,
  dns: 3,
  uri: 7,
  upn: 11,
};

function scopeOf(p: MdmProfileRecord): CspScope {
  return settingsOf(p).scope;
}

/** The delivery after a Get of PFXCertInstall Thumbprint: installed when it is the one sent. */
function pfxOutcome(detail: Detail, o: CommandOutcome): [DeliveryState, Detail] {
  const rest = without(detail, 'status');
  const thumbprint = o.results.find((i) => i.source?.endsWith('/Thumbprint'))?.data?.toUpperCase();
  if (o.status === 200 && thumbprint && thumbprint === detail.expected)
    return ['installed', { ...rest, thumbprint }];
  return [
    'failed',
    { ...rest, error: `the device reports no installed PFX (Get answered ${o.status})` },
  ];
}

/** The delivery after a Get of Status, ErrorCode and CertThumbprint (1 ok, 2 pending, 16 failed, 32 running). */
function scepOutcome(detail: Detail, o: CommandOutcome): [DeliveryState, Detail] {
  const value = (leaf: string) => o.results.find((i) => i.source?.endsWith(`/${leaf}`))?.data;
  const status = value('Status');
  const rest = without(detail, 'status');
  if (o.status !== 200 || status === undefined) return ['installing', rest];
  if (status === '1') {
    const thumbprint = value('CertThumbprint');
    return ['installed', { ...rest, ...(thumbprint ? { thumbprint } : {}) }];
  }
  if (status === '16')
    return [
      'failed',
      { ...rest, error: `SCEP enrollment failed (ErrorCode ${value('ErrorCode') ?? '?'})` },
    ];
  return ['installing', rest];
}
