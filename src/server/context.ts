/**
 * The data directory and everything the server and the admin commands open from it: the store
 * (SQLite `certpost.db` by default, or a PostgreSQL URL), the CA (created on first use), the
 * issuance profiles, and the enrollment and SCEP services built on them. The one place that
 * wires concrete parts together (style.md principle 10); `serve` and the CLI both use it.
 *
 * The CA private keys are encrypted at rest with a passphrase from CERTPOST_CA_PASSPHRASE.
 * Without it, a random passphrase is generated into `ca/passphrase` (mode 0600) beside them:
 * convenient for the embedded default, and no protection against someone who can read the
 * data directory. Production sets the variable, or keeps the CA keys in a PKCS#11 token
 * (token-ca.ts): the data directory then records each key's RFC 7512 URI (`ca/*.key-ref`, no
 * PIN) and the token is opened with the PIN handed in as `pkcs11Pin`, at open or, with
 * `deferKeys`, when a key first signs.
 */
import { countingAudit, createMetrics, type Metrics } from './metrics.ts';
import { deliverImported, issueIdentity } from './pfx-identity.ts';
import { createMdeService, type MdeService } from './mde2.ts';
import { sha1Thumbprint } from '../pki/x509.ts';
import { createChallenge } from './admin-ops.ts';
import { createProfileEngine } from './mdm-profiles.ts';
import { createMdmService, type MdmService } from './mdm.ts';
import type { MailDelivery } from './mail-ops.ts';
import type { MailSettings } from '../mail/settings.ts';
import { createSmtpMailer } from '../mail/smtp.ts';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  AUTHORITY_FILES,
  createAuthority,
  createNextAuthority,
  loadAuthority,
  saveAuthority,
  type CaMaterial,
} from '../ca/authority.ts';
import { createKeyring, keyBatch, type KeyBatch, type Pkcs11Keyring } from '../hsm/pkcs11.ts';
import { parsePkcs11Uri } from '../hsm/uri.ts';
import { isExternalKey, type PrivateKeyRef } from '../pki/key-ref.ts';
import { createEnrollmentService, type EnrollmentService } from '../ca/enrollment.ts';
import { StoreFailureLimiter } from '../ca/rate-limit.ts';
import type { IssuanceProfile } from '../ca/profile.ts';
import { createScepService, type ScepService } from '../scep/service.ts';
import { loadProfiles } from './profiles.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/types.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';
import { pathExists } from '../util/fs.ts';

export interface ContextOptions {
  readonly dataDir: string;
  /** `postgres://…` for PostgreSQL; default: SQLite `certpost.db` in the data directory. */
  readonly database?: string | undefined;
  readonly staticChallenge?: string | undefined;
  /**
   * The URL clients reach this server at (e.g. `https://pki.contoso.com`): issued certificates
   * then carry `<publicUrl>/crl` as their CRL distribution point (RFC 5280 §4.2.1.13).
   */
  readonly publicUrl?: string | undefined;
  /** Create a development CA when the data directory has none (serve does; admin commands don't). */
  readonly createCa?: boolean;
  readonly keyType?: 'rsa' | 'ec';
  /**
   * User PIN of the PKCS#11 token holding the CA keys (CERTPOST_PKCS11_PIN or
   * `--pkcs11-pin-file`). Without it, a key reference's own `pin-source` is used.
   */
  readonly pkcs11Pin?: string | undefined;
  /**
   * Open token-held CA keys when they first sign or decrypt, not at open (authority.ts
   * `defer`): for admin commands, most of which only read or write the store, so that they
   * need no PIN. Default: at open, so that `serve` fails at start on a missing or wrong PIN.
   */
  readonly deferKeys?: boolean;
  /** How often devices list their stores (MDM inventory); default a day. */
  readonly inventoryIntervalMs?: number | undefined;
  /** First wait before a failed SCEP delivery is sent again (mdm-profiles.ts); default 15 min. */
  readonly mdmRetryMs?: number | undefined;
  /** MS-MDE2 enrollment without a token (development servers on loopback; mde2.ts). */
  readonly openEnrollment?: boolean;
  /** The site's mail relay and attachment policy (mail/settings.ts); no mail when absent. */
  readonly mail?: MailSettings | undefined;
  readonly now?: () => Date;
  readonly log?: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
}

export interface ServerContext {
  readonly store: Store;
  /** Prometheus metrics of this process. */
  readonly metrics: Metrics;
  readonly ca: CaMaterial;
  /** The next CA of a rollover (`ca/next`), served by GetNextCACert until it is activated. */
  readonly nextCa: CaMaterial | undefined;
  readonly profiles: ReadonlyMap<string, IssuanceProfile>;
  readonly enrollment: EnrollmentService;
  readonly scep: ScepService;
  /** OMA-DM management sessions over the device command queue. */
  readonly mdm: MdmService;
  /**
   * The URL devices reach the server at (SCEP URLs in profiles, enrollment). Known at open when
   * configured, else set by the server once it listens (a port chosen by the system).
   */
  readonly urls: { public: string | undefined };
  /** Windows enrollment (MS-MDE2): discovery, policy, enrollment. */
  readonly mde: MdeService;
  /** Certificate mail (mail-ops.ts), when a relay is configured. */
  readonly mail: MailDelivery | undefined;
  close(): Promise<void>;
}

async function caPassphrase(caDir: string, create: boolean): Promise<string> {
  const fromEnv = process.env['CERTPOST_CA_PASSPHRASE'];
  if (fromEnv) return fromEnv;
  const file = join(caDir, 'passphrase');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (!create)
      throw caState(
        `the CA keys in ${caDir} are encrypted and there is no passphrase: set CERTPOST_CA_PASSPHRASE or restore ${file}`,
      );
    const pass = randomBytes(24).toString('base64url');
    await writeAtomicFile(file, `${pass}\n`, 0o600);
    return pass;
  }
}

/** A request that does not fit the data directory's CA state (code `ERR_CA_STATE`). */
export function caState(message: string): Error {
  return Object.assign(new Error(message), { code: 'ERR_CA_STATE' });
}

/** Where a rollover keeps the next CA, inside the CA directory. */
const NEXT_DIR = 'next';

/**
 * Rollover, step 1: creates the next issuing CA under the same root and keeps it in `ca/next`
 * (same passphrase). Running servers pick it up at their next start and serve it by
 * GetNextCACert; issuance continues with the current CA until {@link activateNextAuthority}.
 * A CA whose issuing key is in a PKCS#11 token gets its next key (and RA key) generated in
 * the same token, labelled like the current one with a time stamp.
 */
export async function prepareNextAuthority(
  dataDir: string,
  options: { readonly issuingSubject?: string; readonly pkcs11Pin?: string | undefined } = {},
): Promise<CaMaterial> {
  const caDir = join(dataDir, 'ca');
  const keyring = createKeyring({ pin: options.pkcs11Pin });
  let batch: KeyBatch | undefined;
  try {
    const current = (await tryLoadAuthority(caDir, caDir, keyring)) ?? (await missingCa(caDir));
    // Existence is enough here: loading the next CA would open its keys for nothing.
    if (await hasAuthority(join(caDir, NEXT_DIR)))
      throw caState(`a next CA already exists in ${join(caDir, NEXT_DIR)}`);
    const currentKey = current.issuing.key;
    if (isExternalKey(currentKey)) {
      const uri = parsePkcs11Uri(currentKey.label);
      const stamp = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
      const base = (uri.object ?? 'certpost-issuing').replace(/-\d{14}$/, '');
      batch = keyBatch(await keyring.token(uri), (role) =>
        role === 'issuing' ? `${base}-${stamp}` : `${base}-${role}-${stamp}`,
      );
    }
    const next = await createNextAuthority(
      current,
      options.issuingSubject !== undefined ? { issuingSubject: options.issuingSubject } : {},
      batch,
    );
    await mkdir(join(caDir, NEXT_DIR), { recursive: true, mode: 0o700 });
    await saveAuthority(join(caDir, NEXT_DIR), next, () => caPassphrase(caDir, false));
    batch?.keep();
    return next;
  } finally {
    await batch?.discard();
    await keyring.close();
  }
}

/**
 * Rollover, step 2: the next CA becomes the CA. The old one is kept as `ca.previous-<time>`
 * (its certificates stay valid until they expire; restart the servers to switch).
 */
export async function activateNextAuthority(dataDir: string): Promise<{ previous: string }> {
  const caDir = join(dataDir, 'ca');
  const nextDir = join(caDir, NEXT_DIR);
  if (!(await hasAuthority(nextDir)))
    throw caState(`no next CA in ${nextDir}: run "certpost ca rollover" first`);
  const staged = join(dataDir, 'ca.next');
  const previous = join(dataDir, `ca.previous-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await rename(nextDir, staged);
  try {
    await copyFile(join(caDir, 'passphrase'), join(staged, 'passphrase')).catch(
      (e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e; // the passphrase comes from CERTPOST_CA_PASSPHRASE
      },
    );
    await rename(caDir, previous);
  } catch (e) {
    await rename(staged, nextDir);
    throw e;
  }
  await rename(staged, caDir);
  return { previous };
}

/**
 * Saves a CA (created or imported) into a data directory that has none yet. A passphrase is
 * looked up (or generated) only when the CA has software keys.
 */
export async function installAuthority(dataDir: string, material: CaMaterial): Promise<void> {
  const caDir = join(dataDir, 'ca');
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  await saveAuthority(caDir, material, () => caPassphrase(caDir, true));
}

/**
 * The CA in `caDir`, or undefined when there is none (no issuing certificate);
 * `passphraseDir` holds its passphrase file; token-held keys are opened through `keyring`.
 * Any other failure (a missing passphrase, a missing key file, a token that cannot be opened)
 * is thrown: it must never look like "no CA yet", or a new CA would replace this one.
 */
/** True when `caDir` holds a CA (its issuing certificate): the one test of "is there a CA". */
export function hasAuthority(caDir: string): Promise<boolean> {
  return pathExists(join(caDir, AUTHORITY_FILES.issuingCertificate));
}

async function tryLoadAuthority(
  caDir: string,
  passphraseDir = caDir,
  keyring?: Pkcs11Keyring,
  defer = false,
): Promise<CaMaterial | undefined> {
  if (!(await hasAuthority(caDir))) return undefined;
  return loadAuthority(
    caDir,
    () => caPassphrase(passphraseDir, false),
    keyring ? { openKey: (ref: string) => openTokenKey(keyring, ref), defer } : {},
  );
}

/** Opens a key reference saved for a token-held CA key. Only PKCS#11 URIs are known. */
function openTokenKey(keyring: Pkcs11Keyring, ref: string): Promise<PrivateKeyRef> {
  if (!ref.startsWith('pkcs11:'))
    throw caState(`a CA key reference this server cannot open: ${ref.split(':')[0]}:…`);
  return keyring.open(ref);
}

async function missingCa(caDir: string): Promise<never> {
  throw Object.assign(new Error(`no CA in ${caDir}`), { code: 'ENOENT', path: caDir });
}

/**
 * Creates the development CA exactly once, whatever the number of processes starting on the
 * same empty data directory: the one that creates `ca.lock` exclusively builds the CA; the
 * others wait for it and load it. A lock left by a crashed process is reported, not guessed at.
 */
async function createOnce(o: ContextOptions, keyring: Pkcs11Keyring): Promise<CaMaterial> {
  const caDir = join(o.dataDir, 'ca');
  const lockFile = join(o.dataDir, 'ca.lock');
  let lock;
  try {
    lock = await open(lockFile, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    for (let waited = 0; waited < 30_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      try {
        const ca = await tryLoadAuthority(caDir, caDir, keyring);
        if (ca) return ca;
      } catch (err) {
        // The other process is still writing the files.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    throw new Error(
      `another process is creating the CA in ${caDir}, or a crashed one left ${lockFile}: remove it and start again`,
      { cause: e },
    );
  }
  try {
    const existing = await tryLoadAuthority(caDir, caDir, keyring); // made while we waited
    if (existing) return existing;
    const ca = await createAuthority({
      keyType: o.keyType ?? 'rsa',
      rootSubject: 'CN=certpost development root CA,O=certpost',
      issuingSubject: 'CN=certpost development issuing CA,O=certpost',
    });
    await installAuthority(o.dataDir, ca);
    o.log?.('warn', 'created a development CA', { dir: caDir });
    return ca;
  } finally {
    await lock.close();
    await rm(lockFile, { force: true });
  }
}

/** Opens (and on first use initialises) a data directory. */
export async function openContext(o: ContextOptions): Promise<ServerContext> {
  await mkdir(o.dataDir, { recursive: true, mode: 0o700 });
  const caDir = join(o.dataDir, 'ca');
  const opened = await openStore(o.database ?? join(o.dataDir, 'certpost.db'));
  const metrics = createMetrics(opened);
  // Every audited event is also counted (metrics.ts): the context's store is this one.
  const store = countingAudit(opened, metrics);
  // Tokens holding CA keys stay open (and logged in) for as long as the context.
  const keyring = createKeyring({ pin: o.pkcs11Pin });
  try {
    const defer = o.deferKeys ?? false;
    const ca =
      (await tryLoadAuthority(caDir, caDir, keyring, defer)) ??
      (o.createCa ? await createOnce(o, keyring) : await missingCa(caDir));
    const profiles = await loadProfiles(o.dataDir, o.publicUrl);
    const enrollment = createEnrollmentService({
      issuing: ca.issuing,
      profiles,
      defaultProfile: 'default',
      staticChallenge: o.staticChallenge,
      store,
      // In the store, so the limit holds across worker processes and servers (PostgreSQL).
      limiter: new StoreFailureLimiter(store, { namespace: 'challenge:' }),
      ...(o.now ? { now: o.now } : {}),
    });
    const responder = ca.ra ?? ca.issuing;
    const nextCa = await tryLoadAuthority(join(caDir, NEXT_DIR), caDir, keyring, defer);
    const scep = createScepService({
      responder,
      chain: [ca.issuing.certificate, ca.root.certificate],
      enrollment,
      ...(o.log ? { log: o.log } : {}),
      ...(nextCa
        ? { next: [nextCa.issuing.certificate, ...(nextCa.ra ? [nextCa.ra.certificate] : [])] }
        : {}),
    });
    const mail: MailDelivery | undefined = o.mail
      ? { mailer: createSmtpMailer(o.mail.relay), policy: o.mail.policy }
      : undefined;
    const close = async () => {
      mail?.mailer.close();
      await store.close();
      await keyring.close();
    };
    const urls = { public: o.publicUrl };
    const publicUrl = () => {
      if (!urls.public) throw new Error('the server does not know its public URL (--public-url)');
      return urls.public.replace(/\/+$/, '');
    };
    const engine = createProfileEngine({
      store,
      mdm: { enqueue: (...args) => mdm.enqueue(...args) },
      get scepUrl() {
        return `${publicUrl()}/scep`;
      },
      caThumbprint: sha1Thumbprint(ca.issuing.certificate).toUpperCase(),
      enrollmentRoots: [sha1Thumbprint(ca.root.certificate).toUpperCase()],
      mintChallenge: async (profile, subject, ttlMs) =>
        (
          await createChallenge(
            { store, profiles, enrollment, ...(o.now ? { now: o.now } : {}) },
            'mdm',
            { profile, subject, ttlMs },
          )
        ).challenge,
      revokeByThumbprint: async (sha1, actor, reason) => {
        const cert = await store.getCertificateBySha1(sha1.toLowerCase());
        if (cert) await enrollment.revoke(cert.serial, reason, actor);
      },
      certificateBySha1: (sha1) => store.getCertificateBySha1(sha1.toLowerCase()),
      issueIdentity: async (device, r) => {
        const mdmCert = await store.getCertificate(device.certificateSerial);
        const issuanceProfile = profiles.get(r.issuanceProfile);
        if (!mdmCert || !issuanceProfile)
          throw new Error(
            !mdmCert
              ? 'the device has no MDM certificate to encrypt the PFX password to'
              : `no issuance profile "${r.issuanceProfile}"`,
          );
        if (r.imported) return deliverImported({ ca }, r.imported, mdmCert.der);
        return issueIdentity(
          { enrollment, store, ca, ...(o.now ? { now: o.now } : {}) },
          { ...r, issuanceProfile, deviceCertificate: mdmCert.der },
        );
      },
      ...(o.inventoryIntervalMs !== undefined
        ? { inventoryIntervalMs: o.inventoryIntervalMs }
        : {}),
      ...(o.mdmRetryMs !== undefined ? { retryFailedMs: o.mdmRetryMs } : {}),
      ...(o.now ? { now: o.now } : {}),
    });
    const mdm: MdmService = createMdmService({
      store,
      profiles: engine,
      onMessage: (result) => metrics.mdmMessage(result),
      ...(o.now ? { now: o.now } : {}),
    });
    const mde = createMdeService({
      store,
      enrollment,
      ca,
      publicUrl,
      openEnrollment: o.openEnrollment ?? false,
      ...(o.now ? { now: o.now } : {}),
    });
    return { store, metrics, ca, nextCa, profiles, enrollment, scep, mdm, urls, mde, mail, close };
  } catch (e) {
    await store.close();
    await keyring.close();
    throw e;
  }
}
