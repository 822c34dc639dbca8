/**
 * The device agent: a state directory (state.ts), its keys (keys.ts) and certificate stores
 * (stores.ts), the management tree generated from Microsoft's DDFs with the certificate CSPs
 * attached (csp/), and the background work those CSPs start (SCEP enrollments).
 *
 * {@link DeviceAgent.handle} applies one server message and returns the reply; the state is
 * saved (atomically) before the reply is returned, so a reply the server sees always describes
 * a state on disk. A message that cannot be parsed changes nothing.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseDdf, type DdfRoot } from '../omadm/ddf.ts';
import { buildSyncML, parseSyncML, type SyncMLMessage } from '../omadm/syncml.ts';
import { certificateStoreHooks } from './csp/certificate-stores.ts';
import { deviceInfoHooks } from './csp/device-info.ts';
import { pushHooks } from './push.ts';
import { pfxInstallHooks } from './csp/pfx-install.ts';
import { ScepEnrollments, type ScepTransport } from './csp/scep-install.ts';
import { KeyVault, type KeyVaultOptions, type PinSource, type TokenProvider } from './keys.ts';
import { runSession, type MdmTransport, type SessionReport } from './mdm-client.ts';
import { mdmRenewalDue, renewMdmCertificate } from './mdm-enroll.ts';
import { needsReply, respond } from './session.ts';
import {
  memoryDeviceStore,
  openDeviceStore,
  type DeviceStateData,
  type DeviceStore,
} from './state.ts';
import { CertificateStores } from './stores.ts';
import { ManagementTree, type CspHooks, type SettleFailure } from './tree.ts';

/** Vendored Microsoft DDFs (omadm/ddf/README.md), and our own for DevInfo/DevDetail. */
const DDF_DIRS = [
  new URL('../omadm/ddf/', import.meta.url),
  new URL('../omadm/ddf-std/', import.meta.url),
];

let ddfRoots: DdfRoot[] | undefined;
/** Every DDF the device implements. */
export function deviceDdfRoots(): readonly DdfRoot[] {
  ddfRoots ??= DDF_DIRS.flatMap((dir) =>
    readdirSync(dir)
      .filter((f) => f.endsWith('.xml'))
      .toSorted()
      .flatMap((f) => parseDdf(readFileSync(new URL(f, dir), 'utf8'))),
  );
  return ddfRoots;
}

export interface DeviceOptions {
  /** A PKCS#11 token acting as the TPM (KeyLocation/KeyProtection 1 and 2). */
  readonly tpm?: TokenProvider;
  /** Asks for Hello PINs. */
  readonly pin?: PinSource;
  /** Clock (tests move it). */
  readonly now?: () => Date;
  /** Length of a "minute" of RetryDelay in ms (60 000; tests make minutes fast). */
  readonly minuteMs?: number;
  /** How SCEP requests to a ServerURL travel (default: HTTP with fetch). */
  readonly scepTransport?: (url: string) => ScepTransport;
  /** How OMA-DM session messages travel (default: HTTPS with the MDM client certificate). */
  readonly mdmTransport?: MdmTransport;
  /** Name for a new device. */
  readonly name?: string;
  /** Where new software keys come from (keys.ts; fleet mode's key pool). */
  readonly keySource?: KeyVaultOptions['keySource'];
  readonly lockWaitMs?: number;
  /**
   * Key-derivation budget of each PFX the server sends (pki/pkcs12.ts `maxIterations`; default
   * its 2.5 million, about a second). The fuzzer lowers it so that work past it shows.
   */
  readonly pfxMaxIterations?: number;
}

/** Routes each hook call to the first CSP whose hook answers for the URI. */
function combine(parts: readonly CspHooks[]): CspHooks {
  const first = <T>(f: (h: CspHooks) => T | undefined): T | undefined => {
    for (const h of parts) {
      const r = f(h);
      if (r !== undefined) return r;
    }
    return undefined;
  };
  const firstAsync = async <T>(
    f: (h: CspHooks) => T | Promise<T | undefined> | undefined,
  ): Promise<T | undefined> => {
    for (const h of parts) {
      const r = await f(h);
      if (r !== undefined) return r;
    }
    return undefined;
  };
  return {
    owns: (uri) => parts.some((h) => h.owns?.(uri) ?? false),
    list: (uri) => first((h) => h.list?.(uri)),
    read: (uri) => first((h) => h.read?.(uri)),
    beforeWrite: (uri, value, command) => firstAsync((h) => h.beforeWrite?.(uri, value, command)),
    beforeDelete: (uri) => firstAsync((h) => h.beforeDelete?.(uri)),
    exec: (uri, data) => firstAsync((h) => h.exec?.(uri, data)),
    async settle() {
      let failed: SettleFailure | undefined;
      for (const h of parts) {
        const f = await h.settle?.();
        failed ??= f;
      }
      return failed;
    },
    snapshot: () => parts.map((h) => h.snapshot?.()),
    restore(states) {
      parts.forEach((h, i) => h.restore?.((states as unknown[])[i]));
    },
  };
}

/**
 * What Atomic rolls back besides the tree. Not Hello PIN counters (a rollback must not reset
 * them), and not PFX install results (Status reports the last install attempt, as Windows'
 * does; Thumbprint reads only an installed certificate).
 */
type CspSnapshot = Pick<DeviceStateData, 'certificates' | 'keys' | 'scep'>;

export class DeviceAgent {
  readonly #o: DeviceOptions;
  readonly store: DeviceStore;
  readonly keys: KeyVault;
  readonly certificates: CertificateStores;
  readonly scep: ScepEnrollments;
  readonly tree: ManagementTree;

  private constructor(store: DeviceStore, o: DeviceOptions) {
    this.#o = o;
    this.store = store;
    const state = () => store.data;
    this.keys = new KeyVault(state, {
      secret: store.secret,
      // A memory store is never written: its keys need no encryption at rest.
      ...(store.dir === '' ? { encryptAtRest: false } : {}),
      ...(o.keySource ? { keySource: o.keySource } : {}),
      ...(o.tpm ? { tpm: o.tpm } : {}),
      ...(o.pin ? { pin: o.pin } : {}),
    });
    this.certificates = new CertificateStores(state, this.keys);
    const tree = (): ManagementTree => this.tree;
    this.scep = new ScepEnrollments({
      state,
      tree,
      keys: this.keys,
      stores: this.certificates,
      save: () => this.save(),
      now: o.now ?? (() => new Date()),
      minuteMs: o.minuteMs ?? 60_000,
      ...(o.scepTransport ? { transport: o.scepTransport } : {}),
    });
    const hooks = combine([
      deviceInfoHooks(state),
      pushHooks(() => this),
      certificateStoreHooks(this.certificates),
      pfxInstallHooks({
        state,
        tree,
        keys: this.keys,
        stores: this.certificates,
        ...(o.pfxMaxIterations !== undefined ? { maxIterations: o.pfxMaxIterations } : {}),
      }),
      this.scep.hooks(),
      {
        snapshot: (): CspSnapshot =>
          structuredClone({
            certificates: store.data.certificates,
            keys: store.data.keys,
            scep: store.data.scep,
          }),
        restore: (s) => Object.assign(store.data, s as CspSnapshot),
      },
    ]);
    this.tree = new ManagementTree(deviceDdfRoots(), hooks, store.data.tree);
  }

  /** Opens (or creates) the device whose state is in `dir`. */
  static async open(dir: string, o: DeviceOptions = {}): Promise<DeviceAgent> {
    const store = await openDeviceStore(dir, {
      ...(o.name !== undefined ? { name: o.name } : {}),
      ...(o.lockWaitMs !== undefined ? { lockWaitMs: o.lockWaitMs } : {}),
    });
    const agent = new DeviceAgent(store, o);
    await agent.scep.recover();
    return agent;
  }

  /** A device whose state lives only in memory (fleet mode). */
  static async inMemory(o: DeviceOptions = {}): Promise<DeviceAgent> {
    return new DeviceAgent(memoryDeviceStore(o.name !== undefined ? { name: o.name } : {}), o);
  }

  get id(): string {
    return this.store.data.device.id;
  }

  /** Saves the state (atomically) and commits key changes. */
  async save(): Promise<void> {
    this.store.data.tree = this.tree.data();
    await this.store.save();
    await this.keys.commit();
  }

  /**
   * Runs `change` (which adds or removes certificates and keys) and saves once: all or nothing.
   * When `change` or the write of the state fails, the certificate entries and key records are
   * put back as they were and the token (TPM) objects it created are destroyed, so the state
   * file and the token are as before. Token objects of keys it removed are destroyed only once
   * the state that no longer names them is written (keys.ts).
   */
  async transact<T>(change: () => Promise<T>): Promise<T> {
    const data = this.store.data;
    const before = { certificates: [...data.certificates], keys: [...data.keys] };
    let result: T;
    try {
      result = await change();
      data.tree = this.tree.data();
      await this.store.save();
    } catch (e) {
      data.certificates = before.certificates;
      data.keys = before.keys;
      // Destroys what no record names any more: the objects `change` created. A failure here
      // must not hide the one that made us roll back.
      await this.keys.commit().catch(() => undefined);
      throw e;
    }
    await this.keys.commit();
    return result;
  }

  /**
   * Applies one server message (SyncML XML) and returns the device's reply, or undefined when
   * the message carried only Statuses (the session is over). Throws SyncMLError for a message
   * that does not parse, before anything changes.
   */
  async handle(xml: string | Uint8Array): Promise<string | undefined> {
    const reply = await this.handleMessage(parseSyncML(xml));
    return reply && buildSyncML(reply);
  }

  /** {@link handle} on a parsed message (the session client's path). */
  async handleMessage(msg: SyncMLMessage): Promise<SyncMLMessage | undefined> {
    if (!needsReply(msg)) return undefined;
    const session = this.store.data.session;
    const msgId = session.id === msg.header.sessionId ? session.msgId + 1 : 1;
    const reply = await respond(this.tree, msg, { msgId: String(msgId) });
    this.store.data.session = { id: msg.header.sessionId, msgId };
    await this.save();
    return reply;
  }

  /**
   * Runs the background work that is due now: SCEP requests and polls, then the scheduled MDM
   * session when the poll interval has passed (DMClient Poll) or when SCEP work finished, so
   * the server learns the outcome at once rather than at the next poll.
   */
  async runDue(): Promise<void> {
    const running = () => this.store.data.scep.filter((e) => e.phase !== 'done').length;
    const before = running();
    await this.scep.runDue();
    const after = running();
    // MS-WSTEP renewal of the MDM certificate when it enters its RenewPeriod; a failure is
    // recorded in the state and retried after RetryInterval.
    if (mdmRenewalDue(this, this.#now()))
      await renewMdmCertificate(this, { now: this.#now() }).catch(() => undefined);
    const due = this.#mdmDueAt();
    if (due && (due <= this.#now() || after < before)) await this.sync();
  }

  /** When background work is next due, if any. */
  nextDueAt(): Date | undefined {
    const times = [this.scep.nextDueAt(), this.#mdmDueAt()].filter((d) => d !== undefined);
    return times.length ? new Date(Math.min(...times.map((d) => d.getTime()))) : undefined;
  }

  /** Runs one OMA-DM session with the server the device enrolled with (MS-MDM). */
  sync(o: { alert?: '1200' | '1201' } = {}): Promise<SessionReport> {
    return runSession(this, this.#o.mdmTransport, o);
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }

  /** The next scheduled MDM session, when enrolled. */
  #mdmDueAt(): Date | undefined {
    const mdm = this.store.data.mdm;
    if (!mdm) return undefined;
    if (!mdm.lastSessionAt) return this.#now();
    return new Date(Date.parse(mdm.lastSessionAt) + mdm.pollMinutes * (this.#o.minuteMs ?? 60_000));
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
