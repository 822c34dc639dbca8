/**
 * `kill -9` of the server under MDM load, on SQLite and on PostgreSQL (issue 7 "Faults"):
 * devices enrolling (MS-MDE2), running management sessions (MS-MDM) and SCEP enrollments
 * against a real `certpost serve` process, which is killed once a third of them are done and
 * started again on the same port and data. The devices carry on as Windows would (retrying
 * what failed), and then:
 * - every device is enrolled once: the enrollment it was told of is the one the server holds
 *   (an enrollment whose answer was lost is superseded by the device's next attempt, never
 *   left enrolled beside it);
 * - every certificate a device holds (its MDM certificate, its SCEP certificate) is stored by
 *   the server exactly once, byte for byte, with no duplicate serial anywhere;
 * - the pending work resumed: every device got the root and its SCEP certificate, exactly one
 *   per profile on the device, and the server's status for it is `installed` with the same
 *   thumbprint; no command is left open.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { generateKeyPair, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';
import { DeviceAgent } from '../device/agent.ts';
import { enrollDevice } from '../device/mdm-enroll.ts';
import { inspectCertificate } from '../pki/x509.ts';
import { DEFAULT_PROFILES } from '../server/mdm-profiles.ts';
import { openStore } from '../store/open.ts';
import { startPostgres, type PostgresServer } from '../testing/postgres.ts';
import { spawnServe, type ServeProcess } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const execFileAsync = promisify(execFile);
const generate = promisify(generateKeyPair);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const DEVICES = 24;
/** Bound on the whole load, restart included. */
const DEADLINE_MS = Number(process.env['KILL_DEADLINE'] ?? 90_000);

let keys: KeyObject[] = [];
before(async () => {
  keys = await Promise.all(
    Array.from(
      { length: 4 },
      async () => (await generate('rsa', { modulusLength: 2048 })).privateKey,
    ),
  );
});

interface Told {
  readonly agent: DeviceAgent;
  serverDeviceId: string;
}

/** The device's SCEP enrollments all ended with a certificate (status 1). */
const scepDone = (agent: DeviceAgent) => {
  const scep = agent.store.data.scep;
  return scep.length > 0 && scep.every((e) => e.phase === 'done' && e.status === 1);
};

/**
 * A device's SCEP enrollments for failure messages: where each is and why, never its
 * parameters (they hold the challenge).
 */
const scepSummary = (agent: DeviceAgent) =>
  JSON.stringify(
    agent.store.data.scep.map(({ id, phase, status, errorCode, error, thumbprint }) => ({
      id,
      phase,
      status,
      errorCode,
      error,
      thumbprint,
    })),
  );

/** Enrolls, then runs sessions and due work until the SCEP certificate is in; retries failures. */
async function manage(i: number, url: string, told: Told[], deadline: number): Promise<void> {
  let next = 0;
  const keySource = async () => keys[next++ % keys.length]!;
  const agent = await DeviceAgent.inMemory({ name: `kill-${i}`, keySource, minuteMs: 100 });
  const device: Told = { agent, serverDeviceId: '' };
  for (;;) {
    try {
      const r = await enrollDevice(agent, {
        server: url,
        user: `kill-${i}@example.test`,
        token: '',
      });
      device.serverDeviceId = r.serverDeviceId;
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`device ${i} never enrolled`);
      await sleep(100);
    }
  }
  told.push(device);
  let synced = false;
  while (!synced || !scepDone(agent)) {
    if (Date.now() > deadline)
      throw new Error(
        `device ${i} never got its SCEP certificate (synced: ${synced}): ${scepSummary(agent)}`,
      );
    try {
      if (!synced) {
        await agent.sync();
        synced = true;
      } else await agent.runDue();
    } catch {
      await sleep(100); // the server is away: Windows retries on its schedule
    }
    if (synced && !scepDone(agent)) await sleep(20);
  }
}

async function killUnderLoad(t: TestContext, database: string | undefined): Promise<void> {
  const db = database ? ['--database', database] : [];
  const data = join(tempDir('certpost-kill-mdm-'), 'data');
  await execFileAsync(process.execPath, [BIN, 'profile', 'apply-defaults', '--data', data, ...db]);
  const serve = (listen: string) =>
    // A SCEP enrollment the kill made fail on a device is sent again a second later.
    spawnServe([
      '--data',
      data,
      '--listen',
      listen,
      '--log-level',
      'warn',
      '--mdm-retry',
      '1s',
      ...db,
    ]);
  let server: ServeProcess = await serve('127.0.0.1:0');
  const listen = new URL(server.url).host;
  const deadline = Date.now() + DEADLINE_MS;
  const told: Told[] = [];
  let done = 0;
  let killedAt = -1;
  let restarted: Promise<void> | undefined;
  try {
    await Promise.all(
      Array.from({ length: DEVICES }, async (_, i) => {
        await manage(i, server.url, told, deadline);
        done++;
        if (done >= DEVICES / 3 && killedAt < 0) {
          killedAt = done;
          server.child.kill('SIGKILL');
          // Started again on the same address: devices were told this URL.
          restarted = server.stop().then(async () => {
            server = await serve(listen);
          });
        }
      }),
    );
    await restarted;
    assert.ok(killedAt > 0, 'the server was killed under load');
    t.diagnostic(`killed after ${killedAt} of ${DEVICES} devices were done`);
  } catch (e) {
    await server.stop();
    throw e;
  }

  const store = await openStore(database ?? join(data, 'certpost.db'));
  try {
    // The server learns a SCEP outcome in the session after the enrollment, and a command the
    // kill cut off is sent again in the next one: a few sessions each, until nothing is open.
    // A SCEP enrollment the kill made fail is sent again after --mdm-retry: its due work runs too.
    const settled = Date.now() + 30_000;
    for (const d of told)
      while (Date.now() < settled) {
        await d.agent.sync();
        await d.agent.runDue();
        const open = await store.openCommands(d.serverDeviceId, 100);
        const states = (await store.listDeliveries(d.serverDeviceId)).map((x) => x.state);
        if (open.length === 0 && states.every((x) => x === 'installed') && scepDone(d.agent)) break;
        await sleep(200);
      }
    await server.stop();
    const certificates = await store.listCertificates({ limit: 1_000_000 });
    assert.equal(
      new Set(certificates.map((c) => c.serial)).size,
      certificates.length,
      'no duplicate serial',
    );
    const profiles = await store.listMdmProfiles();
    const profileName = (id: string) => profiles.find((p) => p.id === id)?.name;
    assert.equal(told.length, DEVICES);
    for (const { agent, serverDeviceId } of told) {
      const device = await store.getDevice(serverDeviceId);
      assert.ok(device && !device.unenrolledAt, `${agent.id}: the enrollment it was told of holds`);
      assert.equal(device.hardwareId, agent.id);
      const others = await store.getDeviceByHardwareId(agent.id);
      assert.equal(others?.id, serverDeviceId, 'no other enrollment of this device is live');

      // Every certificate the device holds that our CA issued is stored once, byte for byte.
      const mine = agent.certificates
        .list('device', 'My')
        .map((c) => agent.certificates.certificate(c));
      assert.equal(
        mine.length,
        2,
        `${agent.id}: its MDM certificate and one SCEP certificate: ${scepSummary(agent)}`,
      );
      for (const cert of mine) {
        const info = inspectCertificate(cert);
        const stored = certificates.filter((c) => c.sha1 === info.sha1.toLowerCase());
        assert.equal(stored.length, 1, `${info.subject} (${info.sha1}) stored exactly once`);
        assert.deepEqual(Buffer.from(stored[0]!.der), Buffer.from(cert.der));
      }
      assert.equal(agent.certificates.list('device', 'Root').length >= 1, true);

      // The server's view agrees with the device's, and nothing is left to do.
      const deliveries = await store.listDeliveries(serverDeviceId);
      const states = deliveries.map((d) => `${profileName(d.profileId)}=${d.state}`).toSorted();
      assert.deepEqual(
        states,
        [`${DEFAULT_PROFILES.root}=installed`, `${DEFAULT_PROFILES.scep}=installed`],
        // The commands' state, not their payloads (a SCEP install carries its challenge).
        JSON.stringify({
          deliveries,
          commands: (await store.listCommands(serverDeviceId)).map((c) => ({
            id: c.id,
            origin: c.origin,
            sentCount: c.sentCount,
            status: c.status,
            completedAt: c.completedAt,
          })),
        }),
      );
      const scepThumbprint = agent.store.data.scep[0]?.thumbprint?.toLowerCase();
      const scepDelivery = deliveries.find(
        (d) => profileName(d.profileId) === DEFAULT_PROFILES.scep,
      )!;
      assert.ok(
        scepThumbprint && scepDelivery.detail.toLowerCase().includes(scepThumbprint),
        `${agent.id}: the server records the thumbprint the device holds`,
      );
      assert.deepEqual(await store.openCommands(serverDeviceId, 100), [], 'no command left open');
    }
    t.diagnostic(`store holds ${certificates.length} certificates for ${DEVICES} devices`);
  } finally {
    await server.stop();
    await store.close();
  }
}

describe('kill -9 under MDM load', () => {
  let pg: PostgresServer | undefined;
  after(async () => {
    await pg?.stop();
  });

  it(
    'SQLite: every device enrolled once, every certificate stored once, the work resumed',
    { timeout: 150_000 },
    (t) => killUnderLoad(t, undefined),
  );

  it('PostgreSQL: the same', { timeout: 150_000 }, async (t) => {
    pg = await startPostgres();
    await killUnderLoad(t, pg.url);
  });
});
