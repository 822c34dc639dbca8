/**
 * Issuance profiles of a data directory: the built-in `default` (issues at once), `manual`
 * (held for approval) and `user` (a person's identity, client authentication and S/MIME,
 * requested by the user in the portal), plus those in `DATA/profiles.json`, which may also redefine the
 * built-ins. The file is validated when the server or a command starts; any mistake stops it
 * with one message naming the profile and the field, so a typo never silently widens policy.
 *
 * ```json
 * [{ "name": "wifi", "validityDays": 90, "extendedKeyUsage": ["clientAuth"],
 *    "allowedKeyTypes": ["rsa"], "minRsaBits": 3072, "subjectAltNames": { "allow": ["dns"] } }]
 * ```
 * Omitted fields take the `default` profile's values. EKUs are OIDs or OpenSSL names.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_PROFILE, type IssuanceProfile } from '../ca/profile.ts';
import { EKU_NAMES, KEY_USAGE_BITS, type KeyUsageName } from '../pki/oids.ts';

export const PROFILES_FILE = 'profiles.json';

const SAN_TYPES = ['dns', 'email', 'ip', 'uri', 'upn'] as const;
const CURVES = ['P-256', 'P-384', 'P-521'] as const;
const EKU_OIDS: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(EKU_NAMES).map(([oid, name]) => [name, oid]),
);
const FIELDS = new Set([
  'name',
  'validityDays',
  'keyUsage',
  'extendedKeyUsage',
  'allowedKeyTypes',
  'minRsaBits',
  'allowedCurves',
  'subject',
  'subjectAltNames',
  'requireApproval',
  'allowRenewal',
  'renewalRequiresChallenge',
  'selfService',
]);

/** A mistake in profiles.json (code ERR_PROFILES, one line). */
export class ProfilesError extends Error {
  readonly code = 'ERR_PROFILES';
}

/** Built-in profiles; with a public URL they write the CRL distribution point. */
export function builtinProfiles(publicUrl?: string): Map<string, IssuanceProfile> {
  const crl = crlOf(publicUrl);
  return new Map<string, IssuanceProfile>([
    ['default', { ...DEFAULT_PROFILE, ...crl }],
    ['manual', { ...DEFAULT_PROFILE, ...crl, name: 'manual', requireApproval: true }],
    [
      'user',
      {
        ...DEFAULT_PROFILE,
        ...crl,
        name: 'user',
        // clientAuth, emailProtection (S/MIME, RFC 8550)
        extendedKeyUsage: ['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.4'],
        allowedKeyTypes: ['rsa'],
        subjectAltNames: { allow: ['email', 'upn'] },
        selfService: true,
      },
    ],
  ]);
}

function crlOf(publicUrl: string | undefined): { crlUrl?: string } {
  return publicUrl ? { crlUrl: `${publicUrl.replace(/\/+$/, '')}/crl` } : {};
}

function list<T extends string>(
  where: string,
  v: unknown,
  allowed: readonly T[] | ((s: string) => T | undefined),
): T[] {
  if (!Array.isArray(v)) throw new ProfilesError(`${where}: expected a list`);
  return v.map((x) => {
    const s = typeof x === 'string' ? x : '';
    const ok =
      typeof allowed === 'function'
        ? allowed(s)
        : (allowed as readonly string[]).includes(s)
          ? (s as T)
          : undefined;
    if (ok === undefined)
      throw new ProfilesError(
        `${where}: "${String(x)}" is not one of ${typeof allowed === 'function' ? 'the known values' : allowed.join(', ')}`,
      );
    return ok;
  });
}

function int(where: string, v: unknown, min: number, max: number): number {
  if (!Number.isInteger(v) || (v as number) < min || (v as number) > max)
    throw new ProfilesError(`${where}: expected a whole number from ${min} to ${max}`);
  return v as number;
}

function bool(where: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ProfilesError(`${where}: expected true or false`);
  return v;
}

/** Validates one profile object of the file; omitted fields come from `default`. */
export function parseProfile(raw: unknown, publicUrl?: string): IssuanceProfile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ProfilesError('each profile must be an object');
  const o = raw as Record<string, unknown>;
  const name = o['name'];
  if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) {
    throw new ProfilesError(
      `profile name ${JSON.stringify(name)}: use lowercase letters, digits, - and _`,
    );
  }
  const at = (field: string) => `profile "${name}": ${field}`;
  for (const k of Object.keys(o))
    if (!FIELDS.has(k)) throw new ProfilesError(`${at(k)}: unknown field`);
  const p: { -readonly [K in keyof IssuanceProfile]: IssuanceProfile[K] } = {
    ...DEFAULT_PROFILE,
    ...crlOf(publicUrl),
    name,
  };
  if ('validityDays' in o) p.validityDays = int(at('validityDays'), o['validityDays'], 1, 3650);
  if ('keyUsage' in o)
    p.keyUsage = list<KeyUsageName>(at('keyUsage'), o['keyUsage'], KEY_USAGE_BITS);
  if ('extendedKeyUsage' in o) {
    p.extendedKeyUsage = list(
      at('extendedKeyUsage'),
      o['extendedKeyUsage'],
      (s) => EKU_OIDS[s] ?? (/^\d+(\.\d+)+$/.test(s) ? s : undefined),
    );
  }
  if ('allowedKeyTypes' in o)
    p.allowedKeyTypes = list(at('allowedKeyTypes'), o['allowedKeyTypes'], ['rsa', 'ec'] as const);
  if ('minRsaBits' in o) p.minRsaBits = int(at('minRsaBits'), o['minRsaBits'], 1024, 16384);
  if ('allowedCurves' in o) p.allowedCurves = list(at('allowedCurves'), o['allowedCurves'], CURVES);
  for (const f of [
    'requireApproval',
    'allowRenewal',
    'renewalRequiresChallenge',
    'selfService',
  ] as const)
    if (f in o) p[f] = bool(at(f), o[f]);
  if (p.selfService && p.requireApproval)
    throw new ProfilesError(
      `${at('selfService')}: the portal issues self-service certificates at once; it cannot be combined with requireApproval`,
    );
  if ('subject' in o) {
    const s = o['subject'] as { mode?: unknown; value?: unknown } | null;
    if (s?.mode === 'fromRequest') p.subject = { mode: 'fromRequest' };
    else if (s?.mode === 'forced' && typeof s.value === 'string' && s.value !== '')
      p.subject = { mode: 'forced', value: s.value };
    else
      throw new ProfilesError(
        `${at('subject')}: expected {"mode":"fromRequest"} or {"mode":"forced","value":"CN=…"}`,
      );
  }
  if ('subjectAltNames' in o) {
    const s = o['subjectAltNames'] as { allow?: unknown } | null;
    if (typeof s !== 'object' || s === null || Object.keys(s).some((k) => k !== 'allow'))
      throw new ProfilesError(`${at('subjectAltNames')}: expected {"allow":[…]}`);
    p.subjectAltNames = { allow: list(at('subjectAltNames.allow'), s.allow, SAN_TYPES) };
  }
  if (p.allowedKeyTypes.length === 0)
    throw new ProfilesError(`${at('allowedKeyTypes')}: allow at least one key type`);
  return p;
}

/**
 * The profiles of a data directory: built-ins overlaid with `profiles.json` when present.
 * Throws {@link ProfilesError} for any mistake in the file.
 */
export async function loadProfiles(
  dataDir: string,
  publicUrl?: string,
): Promise<Map<string, IssuanceProfile>> {
  const profiles = builtinProfiles(publicUrl);
  let text: string;
  try {
    text = await readFile(join(dataDir, PROFILES_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return profiles;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ProfilesError(`${PROFILES_FILE}: not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new ProfilesError(`${PROFILES_FILE}: expected a list of profiles`);
  const seen = new Set<string>();
  for (const item of raw) {
    let p: IssuanceProfile;
    try {
      p = parseProfile(item, publicUrl);
    } catch (e) {
      if (e instanceof ProfilesError) throw new ProfilesError(`${PROFILES_FILE}: ${e.message}`);
      throw e;
    }
    if (seen.has(p.name))
      throw new ProfilesError(`${PROFILES_FILE}: profile "${p.name}" is defined twice`);
    seen.add(p.name);
    profiles.set(p.name, p);
  }
  return profiles;
}
