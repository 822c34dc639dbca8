/**
 * Installation planning: which certificate store each certificate of an import goes to, and
 * which private key travels with it (design.md §1, installation rules). Pure: the device
 * installer shows the plan, asks for confirmation and writes it all or nothing.
 *
 * Rules, in order:
 * - Keys are matched to certificates by public key ({@link keyMatchesCertificate}), never by
 *   their order in the input. A certificate with its key goes to My.
 * - A self-issued CA certificate (RFC 5280 §6.1: subject = issuer) goes to Root. Windows has no
 *   user-scope Root through MDM (RootCATrustedCertificates `./User/.../Root` is unsupported,
 *   omadm-reference.md §3.1), so in user scope a root is planned for the device Root and the
 *   plan carries a warning; the installer must ask for device rights or refuse.
 * - Any other CA certificate goes to CA (intermediates).
 * - An end-entity certificate without its key is someone else's certificate (a correspondent's
 *   S/MIME certificate, a peer's TLS certificate). Windows files it under "Other People"
 *   (AddressBook), which has no CSP store; TrustedPeople is the nearest store we have, so it
 *   goes there.
 * - Certificates with the same SHA-1 thumbprint collapse into one entry.
 * - A key that matches no certificate is listed in `unmatchedKeys` with a warning; it is never
 *   installed on its own.
 * - `store` forces the store of every certificate; forcing a key-bearing certificate into a
 *   store other than My warns that its key will not be usable from there (the key is still
 *   attached to the entry so the installer can decide).
 */
import { keyMatchesCertificate, type PrivateKey } from './keys.ts';
import { formatName, isCA, isSelfIssued, sha1Thumbprint, type Certificate } from './x509.ts';

/** The Windows certificate stores the CSPs expose (omadm-reference.md §3.1). */
export type StoreName =
  'Root' | 'CA' | 'My' | 'TrustedPublisher' | 'TrustedPeople' | 'UntrustedCertificates';

export type Scope = 'device' | 'user';

export interface InstallEntry {
  readonly store: StoreName;
  readonly scope: Scope;
  readonly certificate: Certificate;
  /** SHA-1 thumbprint, lowercase hex: the store's node name. */
  readonly sha1: string;
  readonly key?: PrivateKey;
  /** Why this store, in a short sentence. */
  readonly reason: string;
}

export interface InstallationPlan {
  /** One entry per distinct certificate, in input order. */
  readonly entries: InstallEntry[];
  readonly unmatchedKeys: PrivateKey[];
  readonly warnings: string[];
}

export interface PlanOptions {
  /** Scope requested for the installation; `device` by default. */
  readonly scope?: Scope;
  /** Forces this store for every certificate. */
  readonly store?: StoreName;
}

/**
 * Plans where each certificate (and matching key) goes; see the module comment for the rules.
 *
 * @example
 * const plan = planInstallation({ certificates: [root, inter, leaf], keys: [leafKey] });
 * // → Root (root), CA (inter), My (leaf with leafKey)
 */
export function planInstallation(
  input: { readonly certificates: readonly Certificate[]; readonly keys?: readonly PrivateKey[] },
  options: PlanOptions = {},
): InstallationPlan {
  const scope = options.scope ?? 'device';
  const keys = input.keys ?? [];
  const used = new Set<PrivateKey>();
  const warnings: string[] = [];
  const entries: InstallEntry[] = [];
  const seen = new Set<string>();
  for (const certificate of input.certificates) {
    const sha1 = sha1Thumbprint(certificate);
    // The same bytes match the same key, so the first occurrence stands for all of them.
    if (seen.has(sha1)) continue;
    seen.add(sha1);
    const matching = keys.filter((k) => keyMatchesCertificate(k, certificate));
    for (const k of matching) used.add(k);
    const key = matching[0];
    entries.push(placeEntry(certificate, sha1, key, scope, options.store, warnings));
  }
  const unmatchedKeys = keys.filter((k) => !used.has(k));
  for (const k of unmatchedKeys)
    warnings.push(`${describeKey(k)} matches none of the certificates and is not installed`);
  return { entries, unmatchedKeys, warnings };
}

function placeEntry(
  certificate: Certificate,
  sha1: string,
  key: PrivateKey | undefined,
  scope: Scope,
  forced: StoreName | undefined,
  warnings: string[],
): InstallEntry {
  const auto = automaticStore(certificate, key !== undefined);
  const store = forced ?? auto.store;
  const subject = formatName(certificate.subject) || sha1;
  const reason =
    forced && forced !== auto.store
      ? `store ${forced} requested (would be ${auto.store}: ${auto.reason})`
      : auto.reason;
  if (key && store !== 'My')
    warnings.push(
      `"${subject}" has its private key but is placed in ${store}, not My: the key will not be usable from there`,
    );
  let entryScope = scope;
  if (store === 'Root' && scope === 'user') {
    entryScope = 'device';
    warnings.push(
      `"${subject}" is a root: Windows has no user-scope Root store, so it is planned for the device Root store`,
    );
  }
  return { store, scope: entryScope, certificate, sha1, ...(key ? { key } : {}), reason };
}

/** The store the installation rules of design.md §1 choose, with the reason. */
function automaticStore(cert: Certificate, hasKey: boolean): { store: StoreName; reason: string } {
  if (hasKey) return { store: 'My', reason: 'certificate with its private key: personal store' };
  if (isCA(cert)) {
    return isSelfIssued(cert)
      ? { store: 'Root', reason: 'self-signed CA: trusted root' }
      : { store: 'CA', reason: 'CA issued by another CA: intermediate' };
  }
  return {
    store: 'TrustedPeople',
    reason: "someone else's certificate (no private key): other people",
  };
}

function describeKey(k: PrivateKey): string {
  const size = k.info.curve ?? (k.info.bits !== undefined ? `${k.info.bits}-bit` : '');
  const name = k.friendlyName !== undefined ? ` "${k.friendlyName}"` : '';
  return `private key${name} (${[k.info.type, size].filter(Boolean).join(' ')})`;
}
