/**
 * Devices with wrong clocks (issue 7). Nothing in MS-MDE2 enrollment, OMA-DM sessions or SCEP
 * makes the device's clock part of the protocol the server checks: the server judges validity
 * with its own clock (certificates are backdated by five minutes, RFC 5280 §4.1.2.5 leaves the
 * rest to relying parties), and Windows installs a certificate whatever its own clock says. So a
 * device two days behind or three days ahead enrolls, installs the root and its SCEP
 * certificate, and the server records times from its own clock only.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeviceAgent } from '../device/agent.ts';
import { enrollDevice } from '../device/mdm-enroll.ts';
import { inspectCertificate } from '../pki/x509.ts';
import { createEnrollmentToken } from '../server/mdm-admin.ts';
import { applyDefaults, DEFAULT_PROFILES } from '../server/mdm-profiles.ts';
import { startServer, type RunningServer } from '../server/serve.ts';
import { tempDir } from '../testing/tools.ts';

const DAY = 86_400_000;

describe('devices whose clocks are wrong', () => {
  let server: RunningServer;
  let work: string;
  before(async () => {
    work = tempDir();
    server = await startServer({
      dataDir: join(work, 'data'),
      listen: '127.0.0.1:0',
      logLevel: 'silent',
      enrollment: 'token',
    });
    await applyDefaults(server.context, 'test');
  });
  after(async () => {
    await server.app.close();
  });

  for (const [label, skewMs] of [
    ['two days behind', -2 * DAY],
    ['three days ahead', 3 * DAY],
  ] as const) {
    it(`a device ${label} enrolls and gets its root and SCEP certificate; the server keeps its own time`, async () => {
      const { token } = await createEnrollmentToken(server.context, 'test', {});
      const name = `skew-${skewMs > 0 ? 'ahead' : 'behind'}`;
      const agent = await DeviceAgent.open(join(work, name), {
        name,
        minuteMs: 20,
        now: () => new Date(Date.now() + skewMs),
      });
      try {
        const started = Date.now();
        const { serverDeviceId } = await enrollDevice(agent, {
          server: server.url,
          user: `${name}@example.com`,
          token,
        });
        let states: string[] = [];
        for (let i = 0; i < 200; i++) {
          await (i === 0 ? agent.sync() : agent.runDue());
          const profiles = await server.context.store.listMdmProfiles();
          states = (await server.context.store.listDeliveries(serverDeviceId))
            .map((d) => `${profiles.find((p) => p.id === d.profileId)?.name}=${d.state}`)
            .toSorted();
          if (states.length === 2 && states.every((s) => s.endsWith('=installed'))) break;
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.deepEqual(states, [
          `${DEFAULT_PROFILES.root}=installed`,
          `${DEFAULT_PROFILES.scep}=installed`,
        ]);
        const issued = agent.certificates
          .list('device', 'My')
          .map((c) => agent.certificates.certificate(c))
          .find((c) => inspectCertificate(c).subject === `CN=${name}`);
        assert.ok(issued, 'the SCEP certificate is installed');
        // Validity from the server's clock: backdated five minutes from when it was issued.
        assert.ok(
          Math.abs(issued.notBefore.getTime() - (started - 5 * 60_000)) < 60_000,
          `notBefore ${issued.notBefore.toISOString()}`,
        );
        const device = await server.context.store.getDevice(serverDeviceId);
        assert.ok(
          device?.lastSeenAt && Math.abs(device.lastSeenAt.getTime() - Date.now()) < 60_000,
        );
        assert.ok(Math.abs(device.enrolledAt.getTime() - started) < 60_000);
      } finally {
        await agent.close();
      }
    });
  }
});
