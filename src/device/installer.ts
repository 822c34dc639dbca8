/**
 * The certificate installer (design.md §1, "Installation rules (device)"): what
 * `certpost install FILE|URL|MESSAGE.eml` does on the device, without any terminal I/O. Two
 * steps, so that a person sees everything before anything is written:
 *
 * 1. {@link reviewInstall} reads every source (install-input.ts made them from a file, a URL or
 *    a message; the format is sniffed from the bytes), asking for the password of a PFX or an
 *    encrypted key through `ask` (three attempts), plans the stores (pki/install-plan.ts: a
 *    self-signed CA to Root, another CA to CA, a certificate with its key to My, someone
 *    else's certificate to TrustedPeople; `store` forces one) and inspects each certificate:
 *    subject, issuer, validity, SHA-1 and SHA-256, key, EKUs, SANs, and its chain judged on
 *    this device (trust.ts). Nothing is written.
 * 2. {@link applyInstall} writes the plan all or nothing (DeviceAgent.transact): each private
 *    key into the KeyVault as the PFX CSP does (software and not exportable by default; a TPM
 *    when asked), each certificate into its store, then one save. Any failure leaves the state
 *    file and the TPM token as they were.
 *
 * The trust rule (decided here). Windows' import wizard is the model for roots and is looser
 * for the rest; a device that installs whatever arrives by mail is the attack this prevents.
 * - A certificate bound for Root becomes a trust anchor. It is written only with explicit
 *   confirmation (`rootsConfirmed`), as Windows asks before adding any root ("You are about to
 *   install a certificate from a certification authority…"). A self-signed one whose
 *   self-signature does not verify is never taken as a new anchor.
 * - Every store but UntrustedCertificates (Root, CA, My, TrustedPeople, TrustedPublisher)
 *   confers trust or use: each certificate bound for one must chain, now, to the device Root
 *   store or to a root this same input brings (status `trusted` or `trusted-by-new-root`). If
 *   one does not, the whole installation is refused: `ERR_DEVICE_EXPIRED` when validity periods
 *   are the only problems, else `ERR_DEVICE_UNTRUSTED`. `allowUntrusted` lifts this for a
 *   person who knows (restoring an expired S/MIME key to read old mail, a test root).
 * - UntrustedCertificates (the disallowed list) takes any certificate: it withdraws trust.
 * - A certificate already in its store is left as it is (`present`); one that arrives with
 *   its private key replaces a copy installed without one (`replace`).
 */
import type { KeyObject } from 'node:crypto';
import { checkSignature } from '../pki/chain.ts';
import { isPkiError } from '../pki/errors.ts';
import { planInstallation, type InstallationPlan, type StoreName } from '../pki/install-plan.ts';
import type { PrivateKey } from '../pki/keys.ts';
import { readPkiWithPassword, type PkiContents } from '../pki/read.ts';
import {
  formatName,
  inspectCertificate,
  isSelfIssued,
  type Certificate,
  type CertificateInfo,
} from '../pki/x509.ts';
import type { DeviceAgent } from './agent.ts';
import { DeviceError } from './errors.ts';
import type { LoadedInput } from './install-input.ts';
import type { KeyLocation } from './keys.ts';
import type { Scope } from './state.ts';
import { judgeOnDevice, type DeviceTrust } from './trust.ts';

/** Asks for the password of `source`; `wrong` when the previous answer was wrong. */
export type PasswordSource = (request: {
  readonly source: string;
  readonly attempt: number;
  readonly wrong: boolean;
}) => Promise<string | undefined>;

export interface ReviewOptions {
  /** Scope to install into; `device` by default (user scope has no Root: install-plan.ts). */
  readonly scope?: Scope;
  /** Forces this store for every certificate. */
  readonly store?: StoreName;
  /** A password given up front (a file, the environment): used as is, never asked again. */
  readonly password?: string;
  /** Asks for a password (a terminal), three attempts per source. */
  readonly ask?: PasswordSource;
  /** Validation time; now by default. */
  readonly at?: Date;
}

/** What happens to one certificate. */
export type InstallAction = 'install' | 'present' | 'replace';

/** One certificate as the review shows it: stable JSON, fields may be added, never removed. */
export interface ReviewedCertificate extends CertificateInfo {
  readonly friendlyName?: string;
  readonly hasPrivateKey: boolean;
  readonly trust: DeviceTrust;
  readonly install: {
    readonly scope: Scope;
    readonly store: StoreName;
    /** Why this store, in a short sentence (install-plan.ts). */
    readonly reason: string;
    /** The input it came from (the first, when several carried it). */
    readonly source: string;
    readonly action: InstallAction;
    /** True when it would become a new trust anchor (Root, not there yet). */
    readonly newRoot: boolean;
  };
}

export interface InstallReport {
  readonly sources: readonly {
    readonly name: string;
    readonly format: PkiContents['format'];
    readonly encoding: PkiContents['encoding'];
    readonly notes: readonly string[];
  }[];
  readonly certificates: readonly ReviewedCertificate[];
  /** Things to know before confirming (plain HTTP, roots planned for the device…). */
  readonly warnings: readonly string[];
  /** Why the trust rule refuses this installation; empty when it allows it. */
  readonly refusals: readonly string[];
}

/** A review: what is shown ({@link InstallReport}) and what {@link applyInstall} writes. */
export interface InstallReview {
  readonly report: InstallReport;
  readonly plan: InstallationPlan;
}

export interface ApplyOptions {
  /** The person confirmed the new roots of the review (required when there are any). */
  readonly rootsConfirmed: boolean;
  /** Install even what the trust rule refuses (see the module comment). */
  readonly allowUntrusted?: boolean;
  /** Where private keys go (keys.ts): 3 software (default), 2 TPM if present, 1 TPM or fail. */
  readonly keyLocation?: Exclude<KeyLocation, 4>;
  /** Imported keys exportable (software only); false by default. */
  readonly exportable?: boolean;
}

export interface InstalledCertificate {
  readonly scope: Scope;
  readonly store: StoreName;
  /** SHA-1, upper-case hex, as the store names it. */
  readonly thumbprint: string;
  readonly subject: string;
  readonly action: InstallAction;
  /** The key's provider, for a certificate installed with its key. */
  readonly key?: 'software' | 'tpm';
}

const ATTEMPTS = 3;

/** Reads one source into certificates and keys, its failures as the installer's errors. */
async function readSource(
  source: LoadedInput['sources'][number],
  o: ReviewOptions,
): Promise<PkiContents> {
  const ask = o.ask;
  let asked = 0;
  try {
    const contents = await readPkiWithPassword(source.bytes, {
      filename: source.filename,
      password: o.password,
      attempts: ATTEMPTS,
      ...(ask
        ? {
            ask: (r: { attempt: number; wrong: boolean }) => {
              asked = r.attempt;
              return ask({ source: source.name, ...r });
            },
          }
        : {}),
    });
    if (contents.certificates.length === 0 && contents.keys.length === 0)
      throw new DeviceError(
        'ERR_DEVICE_NOT_A_CERTIFICATE',
        `${source.name} holds a certificate request, not a certificate`,
      );
    return contents;
  } catch (e) {
    if (!isPkiError(e)) throw e;
    switch (e.code) {
      case 'ERR_PKI_PASSWORD_REQUIRED':
        throw new DeviceError(
          'ERR_DEVICE_PFX_PASSWORD',
          `${source.name} is protected by a password, and none was given`,
          { cause: e },
        );
      case 'ERR_PKI_BAD_PASSWORD':
        throw new DeviceError(
          'ERR_DEVICE_PFX_PASSWORD',
          `wrong password for ${source.name}${asked ? ` (${asked} attempt${asked > 1 ? 's' : ''})` : ''}`,
          { cause: e },
        );
      case 'ERR_PKI_MAC_MISMATCH':
        throw new DeviceError(
          'ERR_DEVICE_PFX_MALFORMED',
          `${source.name} was modified: the password decrypts it but its integrity check (MAC) fails`,
          { cause: e },
        );
      case 'ERR_PKI_UNRECOGNIZED':
        throw new DeviceError(
          'ERR_DEVICE_NOT_A_CERTIFICATE',
          `${source.name} is not a certificate (nor a PKCS#7, PKCS#12 or PEM file)`,
          { cause: e },
        );
      case 'ERR_PKI_EMPTY':
      case 'ERR_PKI_TRUNCATED':
      case 'ERR_PKI_MALFORMED':
        throw new DeviceError(
          'ERR_DEVICE_BAD_CERTIFICATE',
          `${source.name} is damaged: ${e.message}`,
          {
            cause: e,
          },
        );
      default:
        throw e; // unsupported algorithm, a safety limit: the pki error says it best
    }
  }
}

/** The trust rule (module comment): written, bound for a store that confers trust, not trusted. */
function refusedByTrustRule(r: ReviewedCertificate): boolean {
  return (
    r.install.action !== 'present' &&
    r.install.store !== 'UntrustedCertificates' &&
    (r.trust.status === 'untrusted' || r.trust.status === 'expired')
  );
}

/** A root this input may add: bound for Root, and self-signed with a signature that verifies. */
function newAnchor(cert: Certificate): boolean {
  return !isSelfIssued(cert) || checkSignature(cert, cert.spki).ok;
}

/**
 * Reads, plans and judges the inputs; writes nothing. Throws the installer's DeviceErrors for
 * unreadable inputs (see {@link readSource}) and `ERR_DEVICE_NOT_A_CERTIFICATE` when no input
 * holds a certificate.
 */
export async function reviewInstall(
  agent: DeviceAgent,
  inputs: readonly LoadedInput[],
  o: ReviewOptions = {},
): Promise<InstallReview> {
  const certificates: Certificate[] = [];
  const keys: PrivateKey[] = [];
  const origin = new Map<Certificate, string>();
  const friendly = new Map<string, string>();
  const sources: InstallReport['sources'][number][] = [];
  for (const input of inputs)
    for (const source of input.sources) {
      const c = await readSource(source, o);
      sources.push({ name: source.name, format: c.format, encoding: c.encoding, notes: c.notes });
      for (const cert of c.certificates) {
        origin.set(cert, source.name);
        const name = c.friendlyNames.get(cert);
        if (name !== undefined) friendly.set(Buffer.from(cert.der).toString('base64'), name);
      }
      certificates.push(...c.certificates);
      keys.push(...c.keys);
    }
  if (certificates.length === 0)
    throw new DeviceError(
      'ERR_DEVICE_NOT_A_CERTIFICATE',
      `no certificate in ${sources.map((s) => s.name).join(', ')} (only ${keys.length ? 'private keys' : 'other content'})`,
    );
  const plan = planInstallation(
    { certificates, keys },
    { ...(o.scope ? { scope: o.scope } : {}), ...(o.store ? { store: o.store } : {}) },
  );
  const stores = agent.certificates;
  const actions = plan.entries.map((e): InstallAction => {
    const there = stores.find(e.scope, e.store, e.sha1);
    if (!there) return 'install';
    return e.key && there.keyId === undefined ? 'replace' : 'present';
  });
  const newRoots = plan.entries
    .filter((e, i) => e.store === 'Root' && actions[i] === 'install' && newAnchor(e.certificate))
    .map((e) => e.certificate);
  const at = o.at ?? new Date();
  const reviewed = plan.entries.map((e, i): ReviewedCertificate => {
    const { trust } = judgeOnDevice(stores, e.certificate, {
      intermediates: certificates,
      newRoots,
      at,
    });
    const name = friendly.get(Buffer.from(e.certificate.der).toString('base64'));
    return {
      ...inspectCertificate(e.certificate),
      ...(name !== undefined ? { friendlyName: name } : {}),
      hasPrivateKey: e.key !== undefined,
      trust,
      install: {
        scope: e.scope,
        store: e.store,
        reason: e.reason,
        source: origin.get(e.certificate) ?? '',
        action: actions[i]!,
        newRoot: newRoots.includes(e.certificate),
      },
    };
  });
  const warnings = [...inputs.flatMap((i) => i.warnings), ...plan.warnings];
  for (const r of reviewed)
    if (r.install.store === 'Root' && r.install.action === 'install' && !r.install.newRoot)
      warnings.push(`"${r.subject}" is bound for Root but its self-signature does not verify`);
  const refusals = reviewed
    .filter(refusedByTrustRule)
    .map((r) => `"${r.subject || r.sha1}" (for ${r.install.store}): ${r.trust.summary}`);
  return { report: { sources, certificates: reviewed, warnings, refusals }, plan };
}

/**
 * Throws what the trust rule refuses in a review (`ERR_DEVICE_UNTRUSTED`, or
 * `ERR_DEVICE_EXPIRED` when validity is the only problem), unless `allowUntrusted`: so that a
 * caller can stop before asking a person to confirm what would be refused anyway.
 */
export function checkTrustRule(
  report: InstallReport,
  o: Pick<ApplyOptions, 'allowUntrusted'>,
): void {
  if (report.refusals.length === 0 || o.allowUntrusted) return;
  const expiredOnly = report.certificates
    .filter(refusedByTrustRule)
    .every((c) => c.trust.status === 'expired');
  throw new DeviceError(
    expiredOnly ? 'ERR_DEVICE_EXPIRED' : 'ERR_DEVICE_UNTRUSTED',
    `nothing installed: ${report.refusals[0]}${report.refusals.length > 1 ? ` (and ${report.refusals.length - 1} more)` : ''}`,
  );
}

/**
 * Writes a review's plan, all or nothing (see the module comment). Refuses, before any change,
 * what the trust rule refuses (`ERR_DEVICE_UNTRUSTED` / `ERR_DEVICE_EXPIRED`) unless
 * `allowUntrusted`, and new roots without `rootsConfirmed` (`ERR_DEVICE_NOT_CONFIRMED`).
 */
export async function applyInstall(
  agent: DeviceAgent,
  review: InstallReview,
  o: ApplyOptions,
): Promise<InstalledCertificate[]> {
  const { report, plan } = review;
  checkTrustRule(report, o);
  const roots = report.certificates.filter((c) => c.install.newRoot);
  if (roots.length && !o.rootsConfirmed)
    throw new DeviceError(
      'ERR_DEVICE_NOT_CONFIRMED',
      `nothing installed: the new trusted root ${roots.map((r) => `"${r.subject}"`).join(', ')} needs explicit confirmation`,
    );
  const location = o.keyLocation ?? 3;
  const exportable = o.exportable ?? false;
  // Refuses a bad combination (no TPM, an exportable TPM key) before any change, when a key
  // is to be imported at all.
  if (plan.entries.some((e, i) => e.key && report.certificates[i]!.install.action !== 'present'))
    agent.keys.importProviderFor(location, { exportable });
  return await agent.transact(async () => {
    const done: InstalledCertificate[] = [];
    for (const [i, entry] of plan.entries.entries()) {
      const { action, source } = report.certificates[i]!.install;
      const subject = formatName(entry.certificate.subject);
      const base = { scope: entry.scope, store: entry.store, subject, action };
      if (action === 'present') {
        done.push({ ...base, thumbprint: entry.sha1.toUpperCase() });
        continue;
      }
      if (action === 'replace') {
        const old = agent.certificates.find(entry.scope, entry.store, entry.sha1);
        if (old) agent.certificates.remove(old);
      }
      const stored = entry.key
        ? await agent.keys.importKey(entry.key.key as KeyObject, location, { exportable })
        : undefined;
      const added = agent.certificates.add({
        scope: entry.scope,
        store: entry.store,
        der: entry.certificate.der,
        source: { kind: 'user', id: source },
        ...(stored ? { keyId: stored.entry.id } : {}),
      });
      if (!added) throw new DeviceError('ERR_DEVICE_BAD_PARAMETER', `${subject} is already there`);
      done.push({
        ...base,
        thumbprint: added.thumbprint,
        ...(stored ? { key: stored.entry.provider === 'tpm' ? 'tpm' : 'software' } : {}),
      });
    }
    return done;
  });
}
