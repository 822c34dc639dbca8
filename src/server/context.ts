/**
 * The data directory and everything the server and the admin commands open from it: the store
 * (SQLite `certpost.db` by default, or a PostgreSQL URL), the CA (created on first use), the
 * issuance profiles, and the enrollment and SCEP services built on them. The one place that
 * wires concrete parts together (style.md principle 10); `serve` and the CLI both use it.
 *
 * The CA private keys are encrypted at rest with a passphrase from CERTPOST_CA_PASSPHRASE.
 * Without it, a random passphrase is generated into `ca/passphrase` (mode 0600) beside them:
 * convenient for the embedded default, and no protection against someone who can read the
 * data directory. Production sets the variable (or uses a PKCS#11 token, issue 3 follow-up).
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createAuthority,
  createNextAuthority,
  loadAuthority,
  saveAuthority,
  type CaMaterial,
} from '../ca/authority.ts';
import { createEnrollmentService, type EnrollmentService } from '../ca/enrollment.ts';
import { StoreFailureLimiter } from '../ca/rate-limit.ts';
import type { IssuanceProfile } from '../ca/profile.ts';
import { createScepService, type ScepService } from '../scep/service.ts';
import { loadProfiles } from './profiles.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/types.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';

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
  readonly now?: () => Date;
  readonly log?: (level: 'info' | 'warn', msg: string, fields: Record<string, unknown>) => void;
}

export interface ServerContext {
  readonly store: Store;
  readonly ca: CaMaterial;
  /** The next CA of a rollover (`ca/next`), served by GetNextCACert until it is activated. */
  readonly nextCa: CaMaterial | undefined;
  readonly profiles: ReadonlyMap<string, IssuanceProfile>;
  readonly enrollment: EnrollmentService;
  readonly scep: ScepService;
  close(): Promise<void>;
}

async function caPassphrase(caDir: string, create: boolean): Promise<string> {
  const fromEnv = process.env['CERTPOST_CA_PASSPHRASE'];
  if (fromEnv) return fromEnv;
  const file = join(caDir, 'passphrase');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !create) throw e;
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
 */
export async function prepareNextAuthority(
  dataDir: string,
  options: { readonly issuingSubject?: string } = {},
): Promise<CaMaterial> {
  const caDir = join(dataDir, 'ca');
  const current = await tryLoadAuthority(caDir);
  if (!current)
    throw Object.assign(new Error(`no CA in ${caDir}`), { code: 'ENOENT', path: caDir });
  if (await tryLoadAuthority(join(caDir, NEXT_DIR), caDir))
    throw caState(`a next CA already exists in ${join(caDir, NEXT_DIR)}`);
  const next = await createNextAuthority(current, options);
  await mkdir(join(caDir, NEXT_DIR), { recursive: true, mode: 0o700 });
  await saveAuthority(join(caDir, NEXT_DIR), next, await caPassphrase(caDir, false));
  return next;
}

/**
 * Rollover, step 2: the next CA becomes the CA. The old one is kept as `ca.previous-<time>`
 * (its certificates stay valid until they expire; restart the servers to switch).
 */
export async function activateNextAuthority(dataDir: string): Promise<{ previous: string }> {
  const caDir = join(dataDir, 'ca');
  const nextDir = join(caDir, NEXT_DIR);
  if (!(await tryLoadAuthority(nextDir, caDir)))
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

/** Saves a CA (created or imported) into a data directory that has none yet. */
export async function installAuthority(dataDir: string, material: CaMaterial): Promise<void> {
  const caDir = join(dataDir, 'ca');
  await mkdir(caDir, { recursive: true, mode: 0o700 });
  await saveAuthority(caDir, material, await caPassphrase(caDir, true));
}

/** The data directory's CA, or undefined when it has none yet. */
/** The CA in `dir`, or undefined when there is none; `passphraseDir` holds its passphrase file. */
async function tryLoadAuthority(
  caDir: string,
  passphraseDir = caDir,
): Promise<CaMaterial | undefined> {
  try {
    return await loadAuthority(caDir, await caPassphrase(passphraseDir, false));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function missingCa(caDir: string): Promise<never> {
  throw Object.assign(new Error(`no CA in ${caDir}`), { code: 'ENOENT', path: caDir });
}

/**
 * Creates the development CA exactly once, whatever the number of processes starting on the
 * same empty data directory: the one that creates `ca.lock` exclusively builds the CA; the
 * others wait for it and load it. A lock left by a crashed process is reported, not guessed at.
 */
async function createOnce(o: ContextOptions): Promise<CaMaterial> {
  const caDir = join(o.dataDir, 'ca');
  const lockFile = join(o.dataDir, 'ca.lock');
  let lock;
  try {
    lock = await open(lockFile, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    for (let waited = 0; waited < 30_000; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
      const ca = await tryLoadAuthority(caDir);
      if (ca) return ca;
    }
    throw new Error(
      `another process is creating the CA in ${caDir}, or a crashed one left ${lockFile}: remove it and start again`,
      { cause: e },
    );
  }
  try {
    const existing = await tryLoadAuthority(caDir); // created while we were getting the lock
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
  const store = await openStore(o.database ?? join(o.dataDir, 'certpost.db'));
  try {
    const ca =
      (await tryLoadAuthority(caDir)) ??
      (o.createCa ? await createOnce(o) : await missingCa(caDir));
    const profiles = await loadProfiles(o.dataDir, o.publicUrl);
    const enrollment = createEnrollmentService({
      issuing: ca.issuing,
      profiles,
      defaultProfile: 'default',
      staticChallenge: o.staticChallenge,
      store,
      // In the store, so the limit holds across worker processes and servers (PostgreSQL).
      limiter: new StoreFailureLimiter(store),
      ...(o.now ? { now: o.now } : {}),
    });
    const responder = ca.ra ?? ca.issuing;
    const nextCa = await tryLoadAuthority(join(caDir, NEXT_DIR), caDir);
    const scep = createScepService({
      responder,
      chain: [ca.issuing.certificate, ca.root.certificate],
      enrollment,
      ...(o.log ? { log: o.log } : {}),
      ...(nextCa
        ? { next: [nextCa.issuing.certificate, ...(nextCa.ra ? [nextCa.ra.certificate] : [])] }
        : {}),
    });
    return { store, ca, nextCa, profiles, enrollment, scep, close: () => store.close() };
  } catch (e) {
    await store.close();
    throw e;
  }
}
