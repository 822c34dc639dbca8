/**
 * The fixtures of the session fuzz targets do what the targets rely on: the recorded messages
 * reach the server's queue (`@N`) and the device's keys, a reset puts everything back, and each
 * recorded CertRep reads as what it is. A fixture that silently stopped doing this would leave
 * the fuzzer refused at the door, with no finding to tell.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { summarise } from '../device/testing.ts';
import { inspectCertificate } from '../pki/x509.ts';
import { DEFAULT_PROFILES } from '../server/mdm-profiles.ts';
import { enrollResult, isScepClientError, readCertRep } from '../scep/client.ts';
import { expandQueueRefs, startServerFixture, type ServerFixture } from './in-process.ts';
import { CERTREP_DIR, certrepRequest, recordedDevice, sessionMessages } from './session-targets.ts';

const utf8 = (b: Uint8Array) => Buffer.from(b).toString('utf8');

describe('mdm-session fixture', () => {
  let f: ServerFixture;
  before(async () => {
    f = await startServerFixture();
  });
  after(async () => {
    await f.close();
  });

  /** Each profile's delivery state, by profile name. */
  const states = async () => {
    const names = new Map(
      (await f.context.store.listMdmProfiles()).map((p) => [p.id, p.name] as const),
    );
    return Object.fromEntries(
      (await f.context.store.listDeliveries(f.deviceId)).map((d) => [
        names.get(d.profileId),
        d.state,
      ]),
    );
  };
  const { root, scep } = DEFAULT_PROFILES;
  const sent = { [root]: 'installing', [scep]: 'installing', smime: 'installing' };

  it('the recorded answer (@N) completes the queue; a reset brings it back', async () => {
    assert.equal(f.queue.length, 8);
    await f.reset();
    assert.deepEqual(await states(), sent);
    const answer = utf8(sessionMessages('device')[1]!);
    const r = await f.context.mdm.session(expandQueueRefs(answer, f.queue), {
      certificateDevice: await f.device(),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(await f.context.store.openCommands(f.deviceId), []);
    // The root is in; SCEP still runs on the device (its status said 32, unknown); the PFX's
    // thumbprint is of the identity the recording server made, not this fixture's.
    assert.deepEqual(await states(), {
      [root]: 'installed',
      [scep]: 'installing',
      smime: 'failed',
    });
    await f.reset();
    assert.deepEqual(
      (await f.context.store.openCommands(f.deviceId)).map((c) => c.id),
      f.queue,
    );
    assert.deepEqual(await states(), sent);
  });
});

describe('device-syncml fixture', () => {
  it('the recorded device opens the PFX the recorded server encrypted to it', async () => {
    const agent = await recordedDevice();
    try {
      const r = summarise(await agent.handle(sessionMessages('server')[0]!));
      // The SCEP and the PFX Atomic.
      assert.deepEqual(
        r.statuses.filter((s) => s.startsWith('Atomic=')),
        ['Atomic=200', 'Atomic=200'],
      );
      const mine = agent.certificates
        .list('user', 'My')
        .map((c) => inspectCertificate(agent.certificates.certificate(c)).subject);
      assert.deepEqual(mine, ['CN=fuzz@example.test']);
    } finally {
      await agent.close();
    }
  });

  it("a PFX asking for more key derivation than the device's budget is refused", async () => {
    // Found by fuzzing: 65,536 iterations in a shrouded key bag cost the device up to a second
    // within its default budget; the fuzz device's budget is the fuzzer's (100,000 weighted).
    const agent = await recordedDevice();
    try {
      const input = readFileSync(
        new URL(
          '../device/testdata/fuzz/device-syncml--pfx-key-derivation-65536.xml',
          import.meta.url,
        ),
      );
      const r = summarise(await agent.handle(input));
      assert.ok(r.statuses.includes('Atomic=507'), r.statuses.join(' '));
      assert.deepEqual(agent.certificates.list('user', 'My'), []);
    } finally {
      await agent.close();
    }
  });
});

describe('certrep seeds', () => {
  const sent = certrepRequest();
  const read = async (name: string) => {
    const rep = await readCertRep(readFileSync(new URL(name, CERTREP_DIR)), sent);
    return {
      rep,
      result: enrollResult(rep, sent.transactionId, sent.signer.certificate.spki, sent.signer),
    };
  };

  for (const [name, status] of [
    ['certpost-success.der', 'issued'],
    ['certpost-certpoll-issued.der', 'issued'],
    ['certpost-getcert.der', 'issued'],
    ['certpost-pending.der', 'pending'],
    ['certpost-certpoll-pending.der', 'pending'],
    ['certpost-failure.der', 'failed'],
    ['micromdm-success.der', 'issued'],
    ['micromdm-failure.der', 'failed'],
  ] as const)
    it(`${name}: ${status}`, async () => {
      assert.equal((await read(name)).result.status, status);
    });

  it('certpost-getcrl.der: the CRL of the CA', async () => {
    const rep = await readCertRep(readFileSync(new URL('certpost-getcrl.der', CERTREP_DIR)), sent);
    assert.equal(rep.crls.length, 1);
  });

  it('a CertRep for another nonce, or from another CA, is not ours', async () => {
    const body = readFileSync(new URL('certpost-success.der', CERTREP_DIR));
    await assert.rejects(readCertRep(body, { ...sent, senderNonce: new Uint8Array(16) }), (e) =>
      isScepClientError(e, 'ERR_SCEP_CLIENT_BAD_RESPONSE'),
    );
    await assert.rejects(
      readCertRep(body, { ...sent, caCertificates: sent.caCertificates.slice(-1) }),
      (e) => isScepClientError(e, 'ERR_SCEP_CLIENT_BAD_RESPONSE'),
    );
  });
});
