/**
 * Windows MDM end to end on loopback: the certpost server and real device agents. A device
 * enrolls (MS-MDE2), runs sessions (MS-MDM) authenticated by digest over HTTP and by its client
 * certificate over HTTPS, receives the default root and SCEP profiles, enrolls its SCEP
 * certificate from our CA, reports it installed; unassigning removes it; a device cannot act as
 * another.
 */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeviceAgent } from '../device/agent.ts';
import { isDeviceError } from '../device/errors.ts';
import { httpRequestBytes } from '../device/http.ts';
import { httpsTransport, runSession, unenroll } from '../device/mdm-client.ts';
import { enrollDevice } from '../device/mdm-enroll.ts';
import { listenForPush } from '../device/push.ts';
import { CHANNEL_INFO } from '../server/mdm-push.ts';
import { md5Cred } from '../omadm/auth.ts';
import { buildSyncML, parseSyncML } from '../omadm/syncml.ts';
import { encodePem } from '../pki/pem.ts';
import { buildSignedData } from '../pki/cms.ts';
import { buildCsr } from '../pki/csr.ts';
import { parseCertificate } from '../pki/x509.ts';
import { buildRequestSecurityToken, parseSoapFault } from '../omadm/mde2.ts';
import { encodePkcs12, parsePkcs12 } from '../pki/pkcs12.ts';
import { describePrivateKey } from '../pki/keys.ts';
import { recoverIdentity } from '../server/pfx-identity.ts';
import { inspectCertificate } from '../pki/x509.ts';
import { tempDir } from '../testing/tools.ts';
import { buildCertificate } from '../ca/certificate.ts';
import { randomSerial } from '../ca/issuer.ts';
import { parseRfc4514 } from '../ca/name.ts';
import {
  createEnrollmentToken,
  deleteDeviceCertificate,
  runCommand,
  showDevice,
} from '../server/mdm-admin.ts';
import {
  applyDefaults,
  assignProfile,
  createProfile,
  DEFAULT_PROFILES,
  INVENTORY_AT,
  SCEP_MAX_ATTEMPTS,
  unassignProfile,
} from '../server/mdm-profiles.ts';
import { MDM_PATH } from '../server/mdm-http.ts';
import { startServer, type RunningServer } from '../server/serve.ts';

/** Runs the device's due work until `done` holds (or fails after `tries` rounds). */
async function until(agent: DeviceAgent, done: () => Promise<boolean>, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await done()) return;
    await agent.runDue();
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.fail('the device did not get there');
}

/** A self-signed certificate (a day long) and its key: credentials of nobody we know. */
async function selfSigned(subject: string, type: 'rsa' | 'ec') {
  const { privateKey } =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = new Uint8Array(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }));
  const name = parseRfc4514(subject);
  const der = await buildCertificate({
    subject: name,
    spki,
    serial: randomSerial(),
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    issuer: { name, key: privateKey, spki },
    extensions: [],
  });
  return { privateKey, der, name };
}

/** A device enrolled with a token bound to `upn` (the user's device), its state under `dir`. */
async function userDevice(
  server: RunningServer,
  dir: string,
  upn: string,
): Promise<{ agent: DeviceAgent; id: string }> {
  const { token } = await createEnrollmentToken(server.context, 'test', { user: upn });
  const agent = await DeviceAgent.open(dir);
  try {
    const { serverDeviceId } = await enrollDevice(agent, { server: server.url, user: upn, token });
    return { agent, id: serverDeviceId };
  } catch (e) {
    await agent.close();
    throw e;
  }
}

async function deliveryStates(server: RunningServer, deviceId: string): Promise<string[]> {
  const profiles = await server.context.store.listMdmProfiles();
  const deliveries = await server.context.store.listDeliveries(deviceId);
  return deliveries
    .map((d) => `${profiles.find((p) => p.id === d.profileId)?.name}=${d.state}`)
    .toSorted();
}

describe('Windows MDM over HTTP (digest authentication)', () => {
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

  it('enrolls with a token, installs the default root and SCEP profiles, reports them installed; unassign removes', async () => {
    const { token } = await createEnrollmentToken(server.context, 'test', {
      user: 'ann@example.com',
    });
    const agent = await DeviceAgent.open(join(work, 'ann'), { name: 'ann-laptop', minuteMs: 20 });
    try {
      const enrolled = await enrollDevice(agent, {
        server: server.url,
        user: 'Ann@Example.com',
        token,
      });
      assert.equal(enrolled.managementUrl, `${server.url}${MDM_PATH}`);
      const device = await server.context.store.getDevice(enrolled.serverDeviceId);
      assert.equal(device?.user, 'ann@example.com');
      assert.equal(device?.hardwareId, agent.id);
      assert.equal(
        agent.certificates.list('device', 'Root')[0]?.thumbprint,
        inspectCertificate(server.context.ca.root.certificate).sha1.toUpperCase(),
        'the provisioning document put our root in Root',
      );

      const first = await agent.sync();
      assert.ok(first.commands['Atomic'] && first.commands['Add'], JSON.stringify(first));
      await until(agent, async () =>
        (await deliveryStates(server, enrolled.serverDeviceId)).every((s) =>
          s.endsWith('=installed'),
        ),
      );
      assert.deepEqual(await deliveryStates(server, enrolled.serverDeviceId), [
        `${DEFAULT_PROFILES.root}=installed`,
        `${DEFAULT_PROFILES.scep}=installed`,
      ]);
      const issued = agent.certificates
        .list('device', 'My')
        .map((c) => inspectCertificate(agent.certificates.certificate(c)))
        .find((c) => c.subject === 'CN=ann-laptop');
      assert.ok(issued, 'the SCEP certificate is in the device My store');
      assert.equal(
        issued.issuer,
        inspectCertificate(server.context.ca.issuing.certificate).subject,
      );
      // The administrator's view of the queue never shows the SCEP challenge.
      const shown = await showDevice(server.context, enrolled.serverDeviceId);
      const challenges = shown.commands
        .flatMap((c) => (c.command.kind === 'Atomic' ? c.command.commands : [c.command]))
        .flatMap((c) => ('items' in c ? c.items : []))
        .filter((i) => i.target?.endsWith('/Install/Challenge'));
      assert.deepEqual(
        challenges.map((i) => i.data),
        ['(redacted)'],
      );
      const info = (await server.context.store.getDevice(enrolled.serverDeviceId))?.info;
      assert.equal(info?.['DevInfo/DevId'], agent.id, 'DevInfo reported at session start');
      assert.equal(info?.['LoginStatus'], 'none', 'Alert 1224 LoginStatus kept');

      await unassignProfile(server.context, 'test', DEFAULT_PROFILES.scep, { kind: 'all' });
      await agent.sync();
      assert.deepEqual(await deliveryStates(server, enrolled.serverDeviceId), [
        `${DEFAULT_PROFILES.root}=installed`,
        `${DEFAULT_PROFILES.scep}=removed`,
      ]);
      assert.equal(
        agent.certificates
          .list('device', 'My')
          .some(
            (c) =>
              inspectCertificate(agent.certificates.certificate(c)).subject === 'CN=ann-laptop',
          ),
        false,
      );
      const revoked = await server.context.store.getCertificateBySha1(issued.sha1.toLowerCase());
      assert.ok(revoked?.revokedAt, 'removal revoked the SCEP certificate (revokeOnRemoval)');

      // The enrollment root is never deleted by unassigning: the device must go on trusting us.
      await unassignProfile(server.context, 'test', DEFAULT_PROFILES.root, { kind: 'all' });
      await agent.sync();
      assert.deepEqual(await deliveryStates(server, enrolled.serverDeviceId), [
        `${DEFAULT_PROFILES.root}=removed`,
        `${DEFAULT_PROFILES.scep}=removed`,
      ]);
      assert.equal(agent.certificates.list('device', 'Root').length, 1, 'the root stays');
      await applyDefaults(server.context, 'test'); // for the tests that follow
    } finally {
      await agent.close();
    }
  });

  it('refuses a wrong or used token with s:authentication, and changes nothing', async () => {
    const agent = await DeviceAgent.open(join(work, 'mallory'));
    try {
      await assert.rejects(
        enrollDevice(agent, { server: server.url, user: 'm@example.com', token: 'guess' }),
        (e) => isDeviceError(e) && e.code === 'ERR_DEVICE_ENROLL_AUTHENTICATION',
      );
      assert.equal(agent.store.data.mdm, undefined);
      assert.equal(agent.store.data.keys.length, 0);
      assert.equal(agent.certificates.all().length, 0);
    } finally {
      await agent.close();
    }
  });

  it('a device cannot act as another: no or a wrong digest is 407/401, a replay 401, and nothing is done', async () => {
    const { token } = await createEnrollmentToken(server.context, 'test', { uses: 2 });
    const recorded: string[] = [];
    const a = await DeviceAgent.open(join(work, 'a'), {
      mdmTransport: async (url, body, tls) => {
        recorded.push(body);
        return httpsTransport(url, body, tls);
      },
    });
    const b = await DeviceAgent.open(join(work, 'b'));
    try {
      await enrollDevice(a, { server: server.url, user: 'a@example.com', token });
      await enrollDevice(b, { server: server.url, user: 'b@example.com', token });
      const auth = a.store.data.mdm!.auth!;
      // a's credentials and nonce, claiming to be b.
      const forged = (cred: boolean) =>
        buildSyncML({
          header: {
            sessionId: '9',
            msgId: '1',
            target: `${server.url}${MDM_PATH}`,
            source: b.id,
            ...(cred
              ? { cred: md5Cred(auth.username, auth.password, Buffer.from(auth.nonce, 'base64')) }
              : {}),
          },
          body: [{ kind: 'Alert', cmdId: '1', data: '1201', items: [] }],
          final: true,
        });
      for (const [cred, code] of [
        [false, '407'],
        [true, '401'],
      ] as const) {
        const res = await fetch(`${server.url}${MDM_PATH}`, {
          method: 'POST',
          headers: { 'content-type': 'application/vnd.syncml.dm+xml' },
          body: forged(cred),
        });
        const reply = parseSyncML(await res.text());
        assert.deepEqual(
          reply.body.map((c) => c.kind === 'Status' && `${c.cmd}=${c.data}`),
          [`SyncHdr=${code}`],
        );
      }
      // A genuine message works once; its replay fails, the nonce having moved on.
      await a.sync();
      const replay = await fetch(`${server.url}${MDM_PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/vnd.syncml.dm+xml' },
        body: recorded[0]!,
      });
      const replayed = parseSyncML(await replay.text()).body[0];
      assert.equal(replayed?.kind === 'Status' && replayed.data, '401');
      const bDevice = (await server.context.store.listDevices()).find((d) => d.hardwareId === b.id);
      assert.equal(bDevice?.lastSeenAt, null, 'b was never touched');
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('Windows MDM over HTTPS (client certificate)', () => {
  let server: RunningServer;
  let work: string;
  before(async () => {
    work = tempDir();
    server = await startServer({
      dataDir: join(work, 'data'),
      listen: '127.0.0.1:0',
      logLevel: 'silent',
      tls: true,
    });
    await applyDefaults(server.context, 'test');
  });
  after(async () => {
    await server.app.close();
  });

  it('enrolls (open enrollment on loopback), trusts the server by the root it was given, installs the SCEP profile over TLS', async () => {
    assert.match(server.url, /^https:/);
    const agent = await DeviceAgent.open(join(work, 'kiosk'), { name: 'kiosk-9', minuteMs: 20 });
    try {
      const root = encodePem('CERTIFICATE', server.context.ca.root.certificate.der);
      const enrolled = await enrollDevice(agent, {
        server: server.url,
        user: 'kiosk@example.com',
        token: '',
        ca: [root],
      });
      // Over HTTPS the client certificate authenticates: drop the digest credentials.
      delete agent.store.data.mdm!.auth;
      await agent.sync();
      await until(agent, async () =>
        (await deliveryStates(server, enrolled.serverDeviceId)).every((s) =>
          s.endsWith('=installed'),
        ),
      );
      assert.ok(
        agent.certificates
          .list('device', 'My')
          .some(
            (c) => inspectCertificate(agent.certificates.certificate(c)).subject === 'CN=kiosk-9',
          ),
      );
    } finally {
      await agent.close();
    }
  });

  it('without a client certificate a session needs a digest (407); a certificate not ours is 403', async () => {
    const ca = [encodePem('CERTIFICATE', server.context.ca.root.certificate.der)];
    const body = buildSyncML({
      header: { sessionId: '1', msgId: '1', target: `${server.url}${MDM_PATH}`, source: 'X' },
      body: [{ kind: 'Alert', cmdId: '1', data: '1201', items: [] }],
      final: true,
    });
    const bare = await httpRequestBytes(`${server.url}${MDM_PATH}`, { method: 'POST', body, ca });
    assert.equal(bare.status, 200);
    const status = parseSyncML(bare.body.toString()).body[0];
    assert.equal(status?.kind === 'Status' && status.data, '407');

    const { privateKey, der } = await selfSigned('CN=stranger', 'ec');
    const stranger = await httpRequestBytes(`${server.url}${MDM_PATH}`, {
      method: 'POST',
      body,
      ca,
      clientCertificate: {
        cert: encodePem('CERTIFICATE', der),
        key: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      },
    });
    assert.equal(stranger.status, 403);
  });
});

describe('Windows MDM: renewal, approval, user scope, restarts', () => {
  let server: RunningServer;
  let work: string;
  // The test clock: real time plus an offset the renewal test moves forward.
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  const start = (dataDir: string) =>
    startServer({
      dataDir,
      listen: '127.0.0.1:0',
      logLevel: 'silent',
      now: clock,
    });
  before(async () => {
    work = tempDir();
    server = await start(join(work, 'data'));
  });
  after(async () => {
    await server.app.close();
  });

  async function enrolledDevice(name: string): Promise<{ agent: DeviceAgent; id: string }> {
    // The device shares the test clock: it judges its certificates' validity by it.
    const agent = await DeviceAgent.open(join(work, name), {
      name,
      minuteMs: 20,
      now: clock,
    });
    const r = await enrollDevice(agent, {
      server: server.url,
      user: `${name}@example.com`,
      token: '',
    });
    return { agent, id: r.serverDeviceId };
  }

  async function detailOf(deviceId: string, profileName: string): Promise<Record<string, unknown>> {
    const p = await server.context.store.getMdmProfileByName(profileName);
    const d = (await server.context.store.listDeliveries(deviceId)).find(
      (x) => x.profileId === p?.id,
    );
    return { state: d?.state, ...(JSON.parse(d?.detail ?? '{}') as Record<string, unknown>) };
  }

  it('renews a SCEP certificate at the threshold (test clock): a new one in, the old one retired and revoked', async () => {
    await createProfile(server.context, 'test', {
      name: 'vpn',
      kind: 'scep',
      settings: { subject: 'CN={{DeviceName}}-vpn', renewalThresholdPercent: 20 },
    });
    const { agent, id } = await enrolledDevice('renew-me');
    try {
      await assignProfile(server.context, 'test', 'vpn', { kind: 'device', id });
      await agent.sync();
      await until(agent, async () => (await detailOf(id, 'vpn'))['state'] === 'installed');
      const first = await detailOf(id, 'vpn');
      const renewAt = Date.parse(first['renewAt'] as string);
      const notAfter = Date.parse(first['notAfter'] as string);
      const life = 365 * 86_400_000;
      assert.ok(
        renewAt >= notAfter - life * 0.25 && renewAt <= notAfter - life * 0.2,
        'threshold minus stagger',
      );

      offset = renewAt + 60_000 - Date.now();
      await agent.sync();
      await until(agent, async () => {
        const d = await detailOf(id, 'vpn');
        return (
          d['thumbprint'] !== first['thumbprint'] &&
          d['previous'] === undefined &&
          d['state'] === 'installed'
        );
      });
      const vpn = agent.certificates
        .list('device', 'My')
        .filter(
          (c) =>
            inspectCertificate(agent.certificates.certificate(c)).subject === 'CN=renew-me-vpn',
        );
      assert.deepEqual(
        vpn.map((c) => c.thumbprint),
        [(await detailOf(id, 'vpn'))['thumbprint']],
        'only the new certificate is left on the device',
      );
      const old = await server.context.store.getCertificateBySha1(
        String(first['thumbprint']).toLowerCase(),
      );
      assert.equal(old?.revocationReason, 4, 'the old one is revoked as superseded');
    } finally {
      offset = 0;
      await agent.close();
    }
  });

  /**
   * A device given a SCEP profile its enrollment fails on: KeyProtection 1 is "TPM or fail",
   * and test devices have no TPM.
   */
  async function failingScepDevice(profile: string, device: string) {
    await createProfile(server.context, 'test', {
      name: profile,
      kind: 'scep',
      settings: { subject: `CN={{DeviceName}}-${profile}`, keyProtection: 1 },
    });
    const enrolled = await enrolledDevice(device);
    await assignProfile(server.context, 'test', profile, { kind: 'device', id: enrolled.id });
    return enrolled;
  }

  it('sends a failed SCEP enrollment again later, with a new challenge: a corrected profile then installs', async () => {
    const { agent, id } = await failingScepDevice('tpm-only', 'retry-me');
    try {
      await agent.sync();
      await until(agent, async () => (await detailOf(id, 'tpm-only'))['state'] === 'failed');
      const failed = await detailOf(id, 'tpm-only');
      assert.match(String(failed['error']), /SCEP enrollment failed \(ErrorCode/);
      const retryAt = Date.parse(String(failed['retryAt']));
      assert.ok(Math.abs(retryAt - (clock().getTime() + 15 * 60_000)) < 60_000, 'in 15 minutes');
      await agent.sync();
      assert.equal((await detailOf(id, 'tpm-only'))['attempts'], 1, 'nothing sent before its time');

      // The administrator allows software keys; the next attempt uses the profile as it is now.
      const p = (await server.context.store.getMdmProfileByName('tpm-only'))!;
      const settings = { ...JSON.parse(p.settings), keyProtection: 3 };
      await server.context.store.updateMdmProfile(p.id, JSON.stringify(settings), clock());
      offset = retryAt + 1000 - Date.now();
      await agent.sync();
      await until(agent, async () => (await detailOf(id, 'tpm-only'))['state'] === 'installed');
      assert.equal((await detailOf(id, 'tpm-only'))['attempts'], 2);
      const mine = agent.certificates
        .list('device', 'My')
        .filter(
          (c) =>
            inspectCertificate(agent.certificates.certificate(c)).subject ===
            'CN=retry-me-tpm-only',
        );
      assert.equal(mine.length, 1);
      assert.deepEqual(
        agent.store.data.scep.filter((e) => e.status === 16),
        [],
        'the failed enrollment node was deleted',
      );
    } finally {
      offset = 0;
      await agent.close();
    }
  });

  it('gives up on a SCEP delivery after its attempts, doubling the wait each time', async () => {
    const { agent, id } = await failingScepDevice('hopeless', 'give-up');
    try {
      const waits: number[] = [];
      for (let attempt = 1; attempt <= SCEP_MAX_ATTEMPTS; attempt++) {
        await agent.sync();
        await until(agent, async () => {
          const d = await detailOf(id, 'hopeless');
          return d['state'] === 'failed' && d['attempts'] === attempt;
        });
        const d = await detailOf(id, 'hopeless');
        if (attempt === SCEP_MAX_ATTEMPTS) {
          assert.equal(d['retryAt'], undefined);
          assert.match(String(d['error']), /gave up after 8 attempts/);
          break;
        }
        const retryAt = Date.parse(String(d['retryAt']));
        waits.push(Math.round((retryAt - clock().getTime()) / 60_000));
        offset = retryAt + 1000 - Date.now();
      }
      assert.deepEqual(waits, [15, 30, 60, 120, 240, 480, 960]);
      offset += 86_400_000;
      await agent.sync();
      assert.equal((await detailOf(id, 'hopeless'))['attempts'], SCEP_MAX_ATTEMPTS);
    } finally {
      offset = 0;
      await agent.close();
    }
  });

  it('renews the MDM client certificate in its RenewPeriod (MS-WSTEP Renew, signed with the current one)', async () => {
    const { agent, id } = await enrolledDevice('wstep');
    try {
      const enrolled = await server.context.store.getDevice(id);
      const old = await server.context.store.getCertificate(enrolled!.certificateSerial);
      const oldThumbprint = agent.store.data.mdm!.certificateThumbprint;
      // 41 days before the certificate ends: inside the 42-day RenewPeriod.
      offset = old!.notAfter.getTime() - 41 * 86_400_000 - Date.now();
      await agent.runDue();
      const renewed = agent.store.data.mdm!.certificateThumbprint;
      assert.notEqual(renewed, oldThumbprint);
      assert.equal(agent.store.data.mdm!.renewFailedAt, undefined);
      const now = await server.context.store.getDevice(id);
      assert.notEqual(now?.certificateSerial, enrolled?.certificateSerial);
      assert.equal(
        (await server.context.store.getCertificate(enrolled!.certificateSerial))?.revocationReason,
        4,
        'the old certificate is revoked as superseded',
      );
      assert.deepEqual(
        agent.certificates
          .list('device', 'My')
          .map((c) => c.thumbprint)
          .filter((t) => t === oldThumbprint),
        [],
      );
      await agent.sync(); // and the device still manages
    } finally {
      offset = 0;
      await agent.close();
    }
  });

  it('refuses a renewal not signed by the device`s current MDM certificate', async () => {
    const { agent, id } = await enrolledDevice('forger');
    try {
      const { privateKey, der, name } = await selfSigned(`CN=${id}`, 'rsa');
      const selfMade = parseCertificate(der);
      const csr = await buildCsr({ subject: name, key: privateKey });
      const signed = await buildSignedData({
        contentType: '1.2.840.113549.1.7.1',
        content: csr,
        signer: { certificate: selfMade, key: privateKey },
        digest: 'sha256',
        certificates: [selfMade],
      });
      const url = agent.store.data.mdm!.enrollmentUrl!;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/soap+xml; charset=utf-8' },
        body: buildRequestSecurityToken({
          messageId: 'urn:uuid:1',
          to: url,
          security: { kind: 'none' },
          requestType: 'Renew',
          binarySecurityToken: { valueType: 'PKCS7', der: signed },
          context: {},
        }),
      });
      assert.equal(res.status, 500);
      assert.equal(parseSoapFault(await res.text())?.subcode, 's:authentication');
    } finally {
      await agent.close();
    }
  });

  it('a SCEP profile whose issuance needs approval: PENDING, then approved, then installed', async () => {
    await createProfile(server.context, 'test', {
      name: 'approved-only',
      kind: 'scep',
      settings: {
        subject: 'CN={{DeviceName}}-approved',
        issuanceProfile: 'manual',
        retryDelay: 1,
        retryCount: 30,
      },
    });
    const { agent, id } = await enrolledDevice('waits');
    try {
      await assignProfile(server.context, 'test', 'approved-only', { kind: 'device', id });
      await agent.sync();
      await until(
        agent,
        async () => (await server.context.store.listRequests('pending')).length > 0,
      );
      assert.equal((await detailOf(id, 'approved-only'))['state'], 'installing');
      const [held] = await server.context.store.listRequests('pending');
      assert.equal(held?.subject, 'CN=waits-approved');
      await server.context.enrollment.decide(held!.id, 'approved', 'admin:test');
      await until(
        agent,
        async () => (await detailOf(id, 'approved-only'))['state'] === 'installed',
      );
    } finally {
      await agent.close();
    }
  });

  it('user scope: a trusted certificate for a user lands in the user store of that user`s device only', async () => {
    await createProfile(server.context, 'test', {
      name: 'people',
      kind: 'trusted',
      settings: {
        scope: 'user',
        store: 'TrustedPeople',
        certificate: Buffer.from(server.context.ca.issuing.certificate.der).toString('base64'),
      },
    });
    const { agent: bea } = await userDevice(server, join(work, 'bea'), 'bea@example.com');
    const other = await enrolledDevice('other');
    try {
      await assignProfile(server.context, 'test', 'people', {
        kind: 'user',
        upn: 'BEA@example.com',
      });
      await bea.sync();
      await other.agent.sync();
      assert.equal(bea.certificates.list('user', 'TrustedPeople').length, 1);
      assert.equal(other.agent.certificates.list('user', 'TrustedPeople').length, 0);
    } finally {
      await bea.close();
      await other.agent.close();
    }
  });

  it('a user who unenrolls: the server marks the device unenrolled and refuses it; the device drops what management gave it', async () => {
    const { agent, id } = await enrolledDevice('leaver');
    try {
      const userCert = new Uint8Array(server.context.ca.root.certificate.der);
      agent.certificates.add({
        scope: 'user',
        store: 'CA',
        der: userCert,
        source: { kind: 'user' },
      });
      const r = await unenroll(agent);
      assert.equal(r.told, true);
      assert.ok(r.removed >= 2, 'the MDM certificate and the enrollment root at least');
      assert.ok((await server.context.store.getDevice(id))?.unenrolledAt);
      assert.equal(agent.store.data.mdm, undefined);
      assert.deepEqual(
        agent.certificates.all().map((c) => c.source.kind),
        ['user'],
        'the user`s own certificate stays',
      );
      await assert.rejects(
        agent.sync(),
        (e) => isDeviceError(e) && e.code === 'ERR_DEVICE_NOT_ENROLLED',
      );
    } finally {
      await agent.close();
    }
  });

  it('push: the device reports its channel; queued work makes it open a session (Alert 1200) at once', async () => {
    const { agent, id } = await enrolledDevice('pushed');
    const push = await listenForPush(agent);
    try {
      await agent.sync(); // the server asks for the channel in the first session
      assert.equal((await server.context.store.getDevice(id))?.info[CHANNEL_INFO], push.url);
      const r = await runCommand(
        server.context,
        'test',
        id,
        '<Get><CmdID>1</CmdID><Item><Target><LocURI>./DevInfo/Mod</LocURI></Target></Item></Get>',
      );
      assert.deepEqual(r.push, { pushed: 1, waiting: 0 });
      for (let i = 0; i < 200 && push.sessions() === 0; i++)
        await new Promise((res) => setTimeout(res, 10));
      await until(agent, async () => (await server.context.mdm.commands(id, 1))[0]?.status === 200);
      assert.ok(push.sessions() >= 1, 'a session ran because of the notification');
      const forged = await fetch(push.url.replace(/\/push\/.*/, '/push/guess'), { method: 'POST' });
      assert.equal(forged.status, 404, 'a wrong token is not a notification');
    } finally {
      await push.close();
      await agent.close();
    }
  });

  it('inventory lists a certificate the user installed; the administrator deletes it from the server', async () => {
    const { agent, id } = await enrolledDevice('inventoried');
    try {
      // What a user installs from the web or mail lands in the user's personal store.
      const der = new Uint8Array(server.context.ca.issuing.certificate.der);
      agent.certificates.add({ scope: 'user', store: 'My', der, source: { kind: 'user' } });
      await agent.save();
      await server.context.store.touchDevice(id, clock(), { [INVENTORY_AT]: '' });
      await agent.sync();
      const listed = await showDevice(server.context, id);
      const mine = listed.certificates.find((c) => c.uri.includes('/CertificateStore/MY/User/'));
      assert.ok(mine, JSON.stringify(listed.certificates));
      assert.equal(mine.subject, inspectCertificate(server.context.ca.issuing.certificate).subject);
      assert.ok(
        listed.certificates.some((c) => c.uri.includes('/RootCATrustedCertificates/Root/')),
        'the root the enrollment installed is listed too',
      );

      await deleteDeviceCertificate(server.context, 'test', id, mine.thumbprint);
      await agent.sync();
      assert.equal(agent.certificates.list('user', 'My').length, 0, 'gone from the device');
      await agent.sync();
      const refreshed = await showDevice(server.context, id);
      assert.equal(
        refreshed.certificates.some(
          (c) => c.thumbprint === mine.thumbprint && c.uri.includes('/MY/User/'),
        ),
        false,
        'and from the inventory',
      );
    } finally {
      await agent.close();
    }
  });

  it('a device answer over the size budget goes in several messages (Alert 1222), Results with their Status', async () => {
    const { agent, id } = await enrolledDevice('chatty');
    try {
      for (let i = 0; i < 12; i++) {
        const { der } = await selfSigned(`CN=personal ${i}`, 'ec');
        agent.certificates.add({ scope: 'user', store: 'My', der, source: { kind: 'user' } });
      }
      await agent.save();
      await server.context.store.touchDevice(id, clock(), { [INVENTORY_AT]: '' });
      const report = await runSession(agent, undefined, { maxMessageBytes: 6000 });
      assert.ok(report.messages >= 3, `split: ${report.messages} server messages`);
      const listed = await showDevice(server.context, id);
      assert.equal(
        listed.certificates.filter((c) => c.uri.includes('/CertificateStore/MY/User/')).length,
        12,
        'every certificate of the split answer reached the inventory',
      );
    } finally {
      await agent.close();
    }
  });

  it('a server restart in the middle of a session loses no command: the device gets it in the next session', async () => {
    const { agent, id } = await enrolledDevice('restart');
    try {
      await agent.sync();
      await runCommand(
        server.context,
        'test',
        id,
        `<Get><CmdID>1</CmdID><Item><Target><LocURI>./DevDetail/SwV</LocURI></Target></Item></Get>`,
      );
      // The first message of a session reaches the server, which sends the Get; then the server
      // goes down before the device's answer arrives.
      const dataDir = join(work, 'data');
      let calls = 0;
      await assert.rejects(
        runSession(agent, async (url, body, tls) => {
          if (++calls === 2) {
            await server.app.close();
            throw new Error('the server went away');
          }
          return httpsTransport(url, body, tls);
        }),
      );
      server = await startServer({
        dataDir,
        listen: server.url.replace('http://', ''),
        logLevel: 'silent',
        now: clock,
      });
      await agent.sync();
      const commands = await server.context.mdm.commands(id);
      const get = commands.find((c) => c.origin === 'test');
      assert.equal(get?.status, 200);
      assert.equal(get?.sentCount, 2, 'sent once before the restart, once after');
      const results = JSON.parse(get!.results!) as { items: { data?: string }[] };
      assert.ok(results.items[0]?.data, 'the Results came back');
    } finally {
      await agent.close();
    }
  });
});

describe('Windows MDM: a PFX profile (S/MIME, server-generated, escrowed)', () => {
  let server: RunningServer;
  let work: string;
  before(async () => {
    work = tempDir();
    const dataDir = join(work, 'data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(
      join(dataDir, 'profiles.json'),
      JSON.stringify([
        {
          name: 'smime',
          extendedKeyUsage: ['emailProtection'],
          keyUsage: ['digitalSignature', 'keyEncipherment'],
          subjectAltNames: { allow: ['email'] },
        },
      ]),
    );
    server = await startServer({ dataDir, listen: '127.0.0.1:0', logLevel: 'silent' });
  });
  after(async () => {
    await server.app.close();
  });

  it('delivers the identity with its password encrypted to the MDM certificate; the key is in escrow; unassign removes it', async () => {
    await createProfile(server.context, 'test', {
      name: 'mail',
      kind: 'pfx',
      settings: { issuanceProfile: 'smime', keyLocation: 3, exportable: true },
    });
    const { agent, id } = await userDevice(server, join(work, 'carl'), 'carl@example.com');
    try {
      await assignProfile(server.context, 'test', 'mail', {
        kind: 'user',
        upn: 'carl@example.com',
      });
      const sent: string[] = [];
      await runSession(agent, async (url, body, tls) => {
        const reply = await httpsTransport(url, body, tls);
        sent.push(reply);
        return reply;
      });
      // The password travelled encrypted (type 1), never in the clear.
      const install = sent
        .join('')
        .match(/PFXCertPasswordEncryptionType<\/LocURI><\/Target>.*?<Data>(\d)<\/Data>/s);
      assert.equal(install?.[1], '1');

      const p = await server.context.store.getMdmProfileByName('mail');
      const [delivery] = await server.context.store.listDeliveries(id);
      const detail = JSON.parse(delivery!.detail) as { thumbprint: string };
      assert.equal(delivery?.state, 'installed', delivery?.detail);
      assert.equal(delivery?.profileId, p?.id);
      const [mine] = agent.certificates.list('user', 'My');
      assert.equal(mine?.thumbprint, detail.thumbprint);
      const info = inspectCertificate(agent.certificates.certificate(mine!));
      assert.equal(info.subject, 'CN=carl@example.com');
      assert.deepEqual(
        info.extendedKeyUsage?.map((e) => e.name),
        ['emailProtection'],
      );
      assert.ok(agent.keys.exportKey(mine!.keyId!).length > 0, 'exportable, as the profile says');

      const issued = await server.context.store.getCertificateBySha1(
        detail.thumbprint.toLowerCase(),
      );
      const recovered = await recoverIdentity(server.context, issued!.serial);
      assert.ok(recovered, 'escrowed');
      const opened = await parsePkcs12(recovered.pfx, recovered.password);
      assert.equal(
        inspectCertificate(opened.certificates[0]!.certificate).sha1.toUpperCase(),
        detail.thumbprint,
      );
      assert.ok(opened.keys[0], 'the key is in the escrowed PFX');

      await unassignProfile(server.context, 'test', 'mail', {
        kind: 'user',
        upn: 'carl@example.com',
      });
      await agent.sync();
      assert.equal(agent.certificates.list('user', 'My').length, 0);
      assert.equal(agent.store.data.keys.filter((k) => k.id === mine!.keyId).length, 0);
      assert.equal(
        (await server.context.store.getCertificateBySha1(detail.thumbprint.toLowerCase()))
          ?.revokedAt,
        null,
        'an encryption certificate is not revoked by default (old mail stays readable)',
      );
    } finally {
      await agent.close();
    }
  });

  it('an imported PFX (the administrator`s file): checked at creation, delivered to the user`s device', async () => {
    const { privateKey, der } = await selfSigned('CN=dora@example.com', 'rsa');
    const pfx = await encodePkcs12(
      { key: describePrivateKey(privateKey), certificates: [parseCertificate(der)] },
      'file-password',
      { profile: 'compat' },
    );
    const b64 = Buffer.from(pfx).toString('base64');
    await assert.rejects(
      createProfile(server.context, 'test', {
        name: 'dora-bad',
        kind: 'pfx',
        settings: { pfx: b64, password: 'wrong' },
      }),
      /cannot be opened/,
    );
    const created = await createProfile(server.context, 'test', {
      name: 'dora-mail',
      kind: 'pfx',
      settings: { pfx: b64, password: 'file-password' },
    });
    assert.equal(
      JSON.stringify(created).includes('file-password'),
      false,
      'the password is sealed',
    );
    const { agent, id } = await userDevice(server, join(work, 'dora'), 'dora@example.com');
    try {
      await assignProfile(server.context, 'test', 'dora-mail', {
        kind: 'user',
        upn: 'dora@example.com',
      });
      await agent.sync();
      const [delivery] = await server.context.store.listDeliveries(id);
      assert.equal(delivery?.state, 'installed', delivery?.detail);
      assert.equal(
        agent.certificates.list('user', 'My')[0]?.thumbprint,
        inspectCertificate(parseCertificate(der)).sha1.toUpperCase(),
      );
    } finally {
      await agent.close();
    }
  });
});
