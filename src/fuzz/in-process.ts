/**
 * A certpost server and a device agent in one process, talking through function calls where
 * they would talk HTTP: the fixtures of the session fuzz targets (session-targets.ts) and of the
 * recorder of their seeds (record.ts).
 *
 * The server is the real composition (`openContext`: a development CA, SQLite in a temporary
 * data directory, the profile engine) and the device the real agent; only the transports are
 * replaced, each by the call its HTTP adapter makes after reading the request
 * (mde2-http.ts, scep-http.ts, mdm-http.ts with a TLS client certificate).
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backup, DatabaseSync } from 'node:sqlite';
import { DeviceAgent } from '../device/agent.ts';
import type { KeySpec } from '../device/keys.ts';
import type { MdmTransport } from '../device/mdm-client.ts';
import { enrollDevice, type SoapTransport } from '../device/mdm-enroll.ts';
import { decodePem } from '../pki/pem.ts';
import { isPkiError } from '../pki/errors.ts';
import { parsePrivateKeyPem } from '../pki/keys.ts';
import type { ScepTransport } from '../scep/client.ts';
import { openContext, type ServerContext } from '../server/context.ts';
import { deviceOfCertificate } from '../server/device-auth.ts';
import { DISCOVERY_PATH, ENROLLMENT_PATH, POLICY_PATH } from '../server/mde2.ts';
import { createEnrollmentToken } from '../server/mdm-admin.ts';
import { applyDefaults, assignProfile, createProfile } from '../server/mdm-profiles.ts';
import type { SessionIdentity } from '../server/mdm.ts';
import type { KeyObject } from 'node:crypto';
import { generateKeyPairSync } from 'node:crypto';

/** The URL the fixture's server believes it is reached at (nothing listens there). */
export const FIXTURE_URL = 'https://mdm.fuzz.test';
/** The user the fixture's device is enrolled for (its token binds it). */
export const FIXTURE_USER = 'fuzz@example.test';
/** The recorded session, the device's key and the enrollment answers (README there). */
export const SESSION_DIR = new URL('../omadm/testdata/session/', import.meta.url);
/** The files of the recorded MS-MDE2 answers, by the last segment of the service URL. */
export const ENROLLMENT_FILES: Readonly<Record<string, string>> = {
  'Discovery.svc': 'enroll-discovery.xml',
  'Policy.svc': 'enroll-policy.xml',
  'Enrollment.svc': 'enroll-token.xml',
};

/**
 * Keys for a device: the first RSA key it asks for (the MDM client key, at enrollment) is the
 * recorded device's (`device-key.pem`), so that what a recorded server encrypted to it opens;
 * later ones are new.
 */
export function recordedKeySource(): (spec: KeySpec) => Promise<KeyObject> {
  let given = false;
  return async (spec) => {
    if (spec.type === 'rsa' && spec.bits === 2048 && !given) {
      given = true;
      return parsePrivateKeyPem(readFileSync(new URL('device-key.pem', SESSION_DIR), 'utf8')).key;
    }
    return spec.type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: spec.bits }).privateKey
      : generateKeyPairSync('ec', { namedCurve: spec.curve }).privateKey;
  };
}

/** MS-MDE2 by call: what mde2-http.ts does with a POST to each service. */
export function soapTransport(context: ServerContext): SoapTransport {
  return async (url, body) => {
    const path = new URL(url).pathname;
    if (path === DISCOVERY_PATH) return context.mde.discover(body);
    if (path === POLICY_PATH) return context.mde.getPolicies(body);
    if (path === ENROLLMENT_PATH) return context.mde.requestSecurityToken(body, '127.0.0.1');
    return { status: 404, body: '' };
  };
}

/** SCEP by call: what scep-http.ts does (a body that is not a pkiMessage is HTTP 400). */
export function scepTransport(context: ServerContext): () => ScepTransport {
  return () => async (req) => {
    if (req.operation === 'GetCACaps') return { status: 200, ...context.scep.getCaCaps() };
    if (req.operation === 'GetCACert') return { status: 200, ...context.scep.getCaCert() };
    try {
      return {
        status: 200,
        ...(await context.scep.pkiOperation(req.body ?? new Uint8Array(0), { peer: '127.0.0.1' })),
      };
    } catch (e) {
      if (!isPkiError(e)) throw e;
      return { status: 400, contentType: 'text/plain', body: new Uint8Array(0) };
    }
  };
}

/**
 * OMA-DM by call: what mdm-http.ts does with a POST over TLS, the device authenticated by its
 * client certificate. `onExchange` hears each device message and the server's answer.
 */
export function mdmTransport(
  context: ServerContext,
  onExchange: (e: Exchange & { readonly deviceId: string }) => Promise<void> | void = () =>
    undefined,
): MdmTransport {
  return async (_url, body, tls) => {
    const der = decodePem(tls.cert)[0]!.der;
    const who = await deviceOfCertificate(der, { store: context.store });
    if ('refused' in who) throw new Error(`the fixture's device was refused: ${who.refused}`);
    const answer = await context.mdm.session(body, { certificateDevice: who.device });
    if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${answer.message}`);
    await onExchange({ device: body, server: answer.body, deviceId: who.device.id });
    return answer.body;
  };
}

/** One device message and the server's answer to it. */
export interface Exchange {
  readonly device: string;
  readonly server: string;
}

export interface ServerFixture {
  readonly context: ServerContext;
  readonly agent: DeviceAgent;
  /** The device's id on the server. */
  readonly deviceId: string;
  /** The device's record as it is now: what a check of its MDM certificate gives a session. */
  device(): Promise<NonNullable<SessionIdentity['certificateDevice']>>;
  /**
   * The device's open commands after its first message (installs of the root, SCEP and PFX
   * profiles, their status Gets, inventory, push channel), in queue order: `@1`, `@2`, … of
   * {@link expandQueueRefs}.
   */
  readonly queue: readonly string[];
  /** Every exchange of the sessions run so far, in order. */
  readonly transcript: readonly Exchange[];
  /** The server's answers to the device's enrollment (MS-MDE2), by service URL. */
  readonly enrollment: ReadonlyMap<string, string>;
  /** Puts the database back as it was when the server had answered the first message. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Temporary directories of fixtures whose process has ended (a worker stopped mid-run). */
function removeStale(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = /^certpost-fuzz-(\d+)-/.exec(name)?.[1];
    if (pid === undefined) continue;
    try {
      process.kill(Number(pid), 0);
    } catch {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/**
 * SQL that copies every table of the database file `snapshot` back into the one `db` is open
 * on, in one transaction: a few rows each, so much cheaper than SQLite's backup of every page.
 * The copy is exact, so foreign keys need no checking, and nothing here needs to survive a
 * crash of the machine.
 */
function restoreStatement(db: DatabaseSync, snapshot: string): string {
  db.exec('PRAGMA foreign_keys = OFF');
  db.exec('PRAGMA synchronous = OFF');
  db.prepare('ATTACH DATABASE ? AS snapshot').run(snapshot);
  const tables = db
    .prepare("SELECT name FROM snapshot.sqlite_master WHERE type = 'table'")
    .all()
    .map((r) => String(r['name']).replaceAll('"', '""'));
  const copies = tables.map(
    (t) => `DELETE FROM main."${t}"; INSERT INTO main."${t}" SELECT * FROM snapshot."${t}";`,
  );
  return `BEGIN IMMEDIATE; ${copies.join(' ')} COMMIT;`;
}

/**
 * A server with the default profiles (root, SCEP) and an S/MIME PFX profile assigned to every
 * device, an inventory due at every session, and one device enrolled through MS-MDE2 that has
 * run one full session (`agent.sync()`). The database is copied (SQLite's backup API) as it was
 * when the server had answered the device's first message, commands sent and none answered;
 * {@link ServerFixture.reset} copies it back.
 */
export async function startServerFixture(o: { minuteMs?: number } = {}): Promise<ServerFixture> {
  removeStale();
  const dir = await mkdtemp(join(tmpdir(), `certpost-fuzz-${process.pid}-`));
  let context: ServerContext | undefined;
  let agent: DeviceAgent | undefined;
  let live: DatabaseSync | undefined;
  let restore = '';
  const close = async () => {
    live?.close();
    await agent?.close();
    await context?.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    context = await openContext({
      dataDir: join(dir, 'data'),
      createCa: true,
      publicUrl: FIXTURE_URL,
      inventoryIntervalMs: 0,
    });
    const database = join(dir, 'data', 'certpost.db');
    const snapshot = join(dir, 'snapshot.db');
    await applyDefaults(context, 'fuzz');
    await createProfile(context, 'fuzz', { name: 'smime', kind: 'pfx', settings: {} });
    await assignProfile(context, 'fuzz', 'smime', { kind: 'all' });
    const { token } = await createEnrollmentToken(context, 'fuzz', { user: FIXTURE_USER });
    const transcript: Exchange[] = [];
    let queue: string[] = [];
    const store = context.store;
    agent = await DeviceAgent.inMemory({
      name: 'fuzz-device',
      keySource: recordedKeySource(),
      scepTransport: scepTransport(context),
      minuteMs: o.minuteMs ?? 60_000,
      mdmTransport: mdmTransport(context, async ({ device, server, deviceId }) => {
        transcript.push({ device, server });
        if (transcript.length > 1) return;
        queue = (await store.openCommands(deviceId)).map((c) => c.id);
        live = new DatabaseSync(database, { timeout: 5000 });
        await backup(live, snapshot);
        restore = restoreStatement(live, snapshot);
      }),
    });
    const enrollment = new Map<string, string>();
    const soap = soapTransport(context);
    const { serverDeviceId } = await enrollDevice(agent, {
      server: FIXTURE_URL,
      user: FIXTURE_USER,
      token,
      transport: async (url, body, ca) => {
        const answer = await soap(url, body, ca);
        enrollment.set(url, answer.body);
        return answer;
      },
    });
    await agent.sync();
    return {
      context,
      agent,
      deviceId: serverDeviceId,
      device: async () => {
        const d = await store.getDevice(serverDeviceId);
        if (!d) throw new Error("the fixture's device is gone");
        return d;
      },
      queue,
      transcript,
      enrollment,
      reset: async () => {
        try {
          live!.exec(restore);
        } catch (e) {
          if (live!.isTransaction) live!.exec('ROLLBACK');
          throw e;
        }
      },
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * `@N` (N from 1) stands for the id of the fixture's N-th queued command, so that an input
 * names the same command in every fixture (ids are random UUIDs): `<CmdRef>@2.3</CmdRef>` is the
 * third child of the second command. `@N` beyond the queue stays as it is.
 */
export function expandQueueRefs(text: string, queue: readonly string[]): string {
  return text.replace(/@(\d{1,3})(?!\d)/g, (ref, n: string) => queue[Number(n) - 1] ?? ref);
}

/** The reverse of {@link expandQueueRefs}: each queued command's id becomes its `@N`. */
export function aliasQueueRefs(text: string, queue: readonly string[]): string {
  return queue.reduce((t, id, i) => t.replaceAll(id, `@${i + 1}`), text);
}
