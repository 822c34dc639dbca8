/**
 * The device's persistent state: one JSON file in the state directory, replaced atomically
 * (util/atomic-file.ts: temp file, fsync, rename), so a crash leaves the old state or the new
 * one, never half a certificate or a key without its certificate. A lock file keeps a second
 * agent process out of the directory while one works in it.
 *
 * Layout of `DIR`:
 * - `state.json`: {@link DeviceStateData} (certificates, key records, the tree's plain values,
 *   enrollments);
 * - `device.secret` (0600): 32 random bytes that encrypt software keys at rest (the stand-in
 *   for Windows' DPAPI machine key); `CERTPOST_DEVICE_SECRET` replaces it;
 * - `state.lock`: the holder's pid while a process works in the directory.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Scope, StoreName as PlanStoreName } from '../pki/install-plan.ts';
import { writeAtomicFile } from '../util/atomic-file.ts';
import type { TreeData } from './tree.ts';
import { DeviceError } from './errors.ts';

export type { Scope } from '../pki/install-plan.ts';

/**
 * Certificate stores: those of install-plan.ts (the CSPs' stores), and OemEsim, which
 * RootCATrustedCertificates also has.
 */
export type StoreName = PlanStoreName | 'OemEsim';

/** Where a certificate came from. */
export interface CertificateSource {
  /** `mdm`: a CSP write of EncodedCertificate; `scep`/`pfx`: ClientCertificateInstall or the
   * legacy CertificateStore SCEP branch, `id` the UniqueID; `user`: installed by the user
   * (file, web, mail); `wstep`: the MDM client certificate. */
  readonly kind: 'mdm' | 'scep' | 'pfx' | 'user' | 'wstep';
  readonly id?: string;
  /** The CSP node that put it there. */
  readonly uri?: string;
}

export interface CertificateEntry {
  readonly scope: Scope;
  readonly store: StoreName;
  /** SHA-1 of the DER, upper-case hex (what `{CertHash}` names). */
  readonly thumbprint: string;
  /** DER, base64. */
  readonly der: string;
  readonly source: CertificateSource;
  /** The private key's record, for certificates installed with their key. */
  readonly keyId?: string;
  readonly installedAt: string;
}

export type KeyProviderName = 'software' | 'tpm' | 'hello';

export interface KeyEntry {
  readonly id: string;
  readonly provider: KeyProviderName;
  readonly exportable: boolean;
  /** SubjectPublicKeyInfo DER, base64. */
  readonly spki: string;
  /** Hello container name (KeyLocation/KeyProtection 4). */
  readonly container?: string;
  /** software and hello: encrypted PKCS#8 PEM (by the device secret, or by the Hello PIN). */
  readonly pkcs8?: string;
  /** tpm: the object's CKA_ID in the token, hex. */
  readonly tokenId?: string;
}

/** A Hello (NGC) container: the PIN's verifier and the lockout counter. */
export interface HelloContainer {
  readonly name: string;
  /** scrypt(PIN) verifier and its salt, base64. */
  readonly salt: string;
  readonly verifier: string;
  failures: number;
}

/** Status values of ClientCertificateInstall/SCEP/{id}/Status. */
export const SCEP_STATUS = { ok: 1, pending: 2, failed: 16, unknown: 32 } as const;

/** The parameters of an SCEP install, captured when Exec Enroll was accepted. */
export interface ScepParameters {
  readonly serverUrls: readonly string[];
  readonly challenge?: string;
  readonly ekus: readonly string[];
  readonly keyUsage: number;
  readonly subjectName: string;
  readonly subjectAlternativeNames?: string;
  readonly keyProtection: 1 | 2 | 3 | 4;
  readonly retryDelayMinutes: number;
  readonly retryCount: number;
  readonly templateName?: string;
  readonly keyLength: number;
  readonly hashAlgorithms: readonly string[];
  readonly caThumbprint: string;
  readonly validPeriod?: string;
  readonly validPeriodUnits?: number;
  readonly containerName?: string;
  readonly promptText?: string;
}

/** One SCEP enrollment (ClientCertificateInstall/SCEP/{id} or CertificateStore/MY/SCEP/{id}). */
export interface ScepEnrollment {
  readonly scope: Scope;
  readonly id: string;
  /** The CSP root it was configured under (its URIs answer for it). */
  readonly csp: 'ClientCertificateInstall' | 'CertificateStore';
  status: number;
  errorCode: number;
  /** Human-readable reason of the last failure (not a node; for `device show`). */
  error?: string;
  params?: ScepParameters;
  /** Where the enrollment is: `request` (send PKCSReq, again after a crash), `poll`, `done`. */
  phase: 'request' | 'poll' | 'done';
  keyId?: string;
  transactionId?: string;
  /** The self-signed signer certificate (DER, base64) that PENDING polls reuse. */
  signerCertificate?: string;
  pollsDone: number;
  /** ISO time of the next attempt (request or poll). */
  nextAttemptAt?: string;
  respondentServerUrl?: string;
  thumbprint?: string;
}

/** One PFX install (ClientCertificateInstall/PFXCertInstall/{id}). */
export interface PfxInstall {
  readonly scope: Scope;
  readonly id: string;
  status: number;
  thumbprint?: string;
}

/** What the device keeps about its MDM enrollment (state.json `mdm`). */
export interface MdmEnrollmentState {
  /** The management URL (provisioning document, w7 APPLICATION ADDR). */
  readonly serverUrl: string;
  readonly providerId: string;
  /** The id the server gave the device (its MDM certificate's CN). */
  readonly serverDeviceId: string;
  /** SHA-1 of the MDM client certificate in the device My store (changes when renewed). */
  certificateThumbprint: string;
  /** MS-WSTEP enrollment service (renewals go there) and the Renew settings. */
  readonly enrollmentUrl?: string;
  readonly renewPeriodDays?: number;
  readonly retryIntervalDays?: number;
  /** When the last renewal attempt failed (the next waits RetryInterval days). */
  renewFailedAt?: string;
  readonly enrolledAt: string;
  /** Minutes between scheduled sessions (DMClient Poll). */
  readonly pollMinutes: number;
  /**
   * OMA DM MD5 digest credentials from the provisioning document (APPAUTH, AAUTHLEVEL CLIENT),
   * and the nonce to digest next (the server moves it on with every message).
   */
  auth?: { readonly username: string; readonly password: string; nonce: string };
  /** Sessions opened so far: the next SessionID is this + 1. */
  sessions: number;
  lastSessionAt?: string;
}

export interface DeviceStateData {
  readonly version: 1;
  /** Who the device is; `name` changes by DevDetail/Ext/Microsoft/DeviceName. */
  readonly device: { readonly id: string; name: string; readonly createdAt: string };
  /** The last server session and the device's MsgID in it (each side counts from 1). */
  session: { id: string; msgId: number };
  tree: TreeData;
  certificates: CertificateEntry[];
  keys: KeyEntry[];
  hello: HelloContainer[];
  scep: ScepEnrollment[];
  pfx: PfxInstall[];
  /** The MDM enrollment, once enrolled (MS-MDE2). */
  mdm?: MdmEnrollmentState;
  /** The push channel the agent listens on while it runs (push.ts). */
  push?: { readonly channelUri: string };
}

export function emptyState(name?: string): DeviceStateData {
  const id = randomUUID().toUpperCase();
  return {
    version: 1,
    device: { id, name: name ?? `certpost-${id.slice(0, 8)}`, createdAt: new Date().toISOString() },
    session: { id: '', msgId: 0 },
    tree: { values: {}, created: [] },
    certificates: [],
    keys: [],
    hello: [],
    scep: [],
    pfx: [],
  };
}

const STATE_FILE = 'state.json';
const SECRET_FILE = 'device.secret';
const LOCK_FILE = 'state.lock';

/** True when a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the directory's lock: creates `state.lock` exclusively; a lock left by a dead process
 * (kill -9) is taken over. Waits up to `waitMs` for a live holder.
 */
async function lock(dir: string, waitMs: number): Promise<() => Promise<void>> {
  const path = join(dir, LOCK_FILE);
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (!Number.isInteger(holder) || holder <= 0 || !alive(holder)) {
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() >= deadline)
      throw new DeviceError(
        'ERR_DEVICE_BUSY',
        `the state directory is in use by process ${holder}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function readSecret(dir: string): Promise<string> {
  const env = process.env['CERTPOST_DEVICE_SECRET'];
  if (env) return env;
  const path = join(dir, SECRET_FILE);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const secret = randomBytes(32).toString('hex');
  await writeAtomicFile(path, `${secret}\n`, 0o600);
  return secret;
}

function checkState(value: unknown): DeviceStateData {
  const s = value as Partial<DeviceStateData> | null;
  if (
    !s ||
    s.version !== 1 ||
    typeof s.device?.id !== 'string' ||
    !Array.isArray(s.certificates) ||
    !Array.isArray(s.keys) ||
    !Array.isArray(s.scep) ||
    !Array.isArray(s.pfx) ||
    typeof s.tree !== 'object'
  )
    throw new DeviceError('ERR_DEVICE_STATE', 'state.json is not a certpost device state');
  return { hello: [], ...s } as DeviceStateData;
}

/** An open state directory: the data, the secret for software keys, save and close. */
export interface DeviceStore {
  readonly dir: string;
  data: DeviceStateData;
  readonly secret: string;
  /** Writes `data` atomically. */
  save(): Promise<void>;
  /** Releases the lock. */
  close(): Promise<void>;
}

/**
 * A device whose state lives only in memory (fleet mode: thousands of simulated devices in one
 * process): nothing is written, and it is gone when the process ends.
 */
export function memoryDeviceStore(o: { name?: string } = {}): DeviceStore {
  return {
    dir: '',
    data: emptyState(o.name),
    secret: randomBytes(32).toString('base64url'),
    save: async () => {},
    close: async () => {},
  };
}

/** Opens (creating when missing) a device state directory, and locks it. */
export async function openDeviceStore(
  dir: string,
  o: { name?: string; lockWaitMs?: number } = {},
): Promise<DeviceStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const unlock = await lock(dir, o.lockWaitMs ?? 30_000);
  try {
    const secret = await readSecret(dir);
    const path = join(dir, STATE_FILE);
    let data: DeviceStateData;
    let fresh = false;
    try {
      const text = await readFile(path, 'utf8');
      try {
        data = checkState(JSON.parse(text));
      } catch (e) {
        if (e instanceof DeviceError) throw e;
        throw new DeviceError('ERR_DEVICE_STATE', 'state.json is not valid JSON', { cause: e });
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      data = emptyState(o.name);
      fresh = true;
    }
    const store: DeviceStore = {
      dir,
      data,
      secret,
      async save() {
        await writeAtomicFile(path, `${JSON.stringify(store.data, null, 1)}\n`, 0o600);
      },
      close: unlock,
    };
    if (fresh) await store.save();
    return store;
  } catch (e) {
    await unlock();
    throw e;
  }
}
