/** Issuance profiles from DATA/profiles.json: validation, and what they change in issuance. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { secretHash } from '../ca/enrollment.ts';
import { parseRfc4514 } from '../ca/name.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import { extendedKeyUsage } from '../pki/x509.ts';
import { tempDir } from '../testing/tools.ts';
import { openContext } from './context.ts';
import { loadProfiles, parseProfile, ProfilesError } from './profiles.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);

function refused(f: () => unknown, message: RegExp): void {
  assert.throws(f, (e) => e instanceof ProfilesError && message.test(e.message));
}

describe('issuance profiles', () => {
  it('fills omitted fields from default, maps EKU names to OIDs, and refuses mistakes by name', () => {
    const p = parseProfile({
      name: 'wifi',
      validityDays: 90,
      extendedKeyUsage: ['clientAuth', '1.3.6.1.4.1.311.20.2.2'],
      allowedKeyTypes: ['rsa'],
      minRsaBits: 3072,
    });
    assert.equal(p.validityDays, 90);
    assert.deepEqual(p.extendedKeyUsage, ['1.3.6.1.5.5.7.3.2', '1.3.6.1.4.1.311.20.2.2']);
    assert.deepEqual(p.keyUsage, ['digitalSignature', 'keyEncipherment'], 'from default');
    refused(
      () => parseProfile({ name: 'x', keyUsage: ['signEverything'] }),
      /profile "x": keyUsage: "signEverything" is not one of/,
    );
    refused(
      () => parseProfile({ name: 'x', validityDays: 0 }),
      /validityDays: expected a whole number from 1 to 3650/,
    );
    refused(
      () => parseProfile({ name: 'x', requireAproval: true }),
      /profile "x": requireAproval: unknown field/,
    );
    refused(() => parseProfile({ name: 'Bad Name' }), /profile name "Bad Name"/);
    refused(() => parseProfile({ name: 'x', allowedKeyTypes: [] }), /allow at least one key type/);
    refused(() => parseProfile({ name: 'x', subject: { mode: 'forced' } }), /subject: expected/);
    refused(
      () => parseProfile({ name: 'x', selfService: 'yes' }),
      /selfService: expected true or false/,
    );
    refused(
      () => parseProfile({ name: 'x', selfService: true, requireApproval: true }),
      /cannot be combined with requireApproval/,
    );
    assert.equal(parseProfile({ name: 'x', selfService: true }).selfService, true);
    assert.equal(parseProfile({ name: 'x' }).selfService, false);
  });

  it('loads profiles.json over the built-ins and refuses invalid JSON and duplicates', async () => {
    const dir = tempDir();
    assert.deepEqual([...(await loadProfiles(dir)).keys()], ['default', 'manual', 'user']);
    writeFileSync(
      join(dir, 'profiles.json'),
      JSON.stringify([{ name: 'wifi' }, { name: 'manual', requireApproval: false }]),
    );
    const loaded = await loadProfiles(dir, 'https://pki.example.test/');
    assert.deepEqual([...loaded.keys()], ['default', 'manual', 'user', 'wifi']);
    assert.equal(loaded.get('manual')?.requireApproval, false, 'a built-in can be redefined');
    assert.equal(loaded.get('wifi')?.crlUrl, 'https://pki.example.test/crl');
    writeFileSync(join(dir, 'profiles.json'), '[{"name": "a"},');
    await assert.rejects(loadProfiles(dir), /profiles\.json: not valid JSON/);
    writeFileSync(join(dir, 'profiles.json'), JSON.stringify([{ name: 'a' }, { name: 'a' }]));
    await assert.rejects(loadProfiles(dir), /profile "a" is defined twice/);
  });

  it('a file profile decides key types, validity and EKU of what is issued', async () => {
    const data = join(tempDir(), 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(
      join(data, 'profiles.json'),
      JSON.stringify([
        {
          name: 'web',
          validityDays: 30,
          allowedKeyTypes: ['ec'],
          extendedKeyUsage: ['serverAuth'],
        },
      ]),
    );
    const ctx = await openContext({ dataDir: data, createCa: true });
    try {
      const enroll = async (
        key: ReturnType<typeof generateKeyPairSync>['privateKey'],
        cn: string,
      ) => {
        const secret = randomUUID();
        const now = new Date();
        await ctx.store.createChallenge({
          id: randomUUID(),
          secretHash: secretHash(secret),
          profile: 'web',
          subject: null,
          createdAt: now,
          expiresAt: new Date(now.getTime() + 60_000),
        });
        const csr = parseCsr(
          await buildCsr({ subject: parseRfc4514(`CN=${cn}`), key, challengePassword: secret }),
        );
        return ctx.enrollment.enroll({
          transactionId: randomUUID(),
          csr,
          signer: ctx.ca.root.certificate,
          renewalRequested: false,
        });
      };
      const rsa = await enroll(
        generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
        'rsa-host',
      );
      assert.equal(rsa.status === 'refused' && rsa.reason, 'key-not-allowed');
      const ec = await enroll(
        generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
        'ec-host',
      );
      assert.equal(ec.status, 'issued');
      if (ec.status !== 'issued') return;
      const days =
        (ec.certificate.notAfter.getTime() - ec.certificate.notBefore.getTime()) / 86_400_000;
      assert.ok(days <= 30.01, `validity ${days} days`);
      assert.deepEqual(
        extendedKeyUsage(ec.certificate)?.map((e) => e.name),
        ['serverAuth'],
      );
    } finally {
      await ctx.close();
    }
  });

  it('the server refuses to start on a broken profiles.json, with one line naming the problem', () => {
    const data = join(tempDir(), 'data');
    mkdirSync(data, { recursive: true });
    writeFileSync(
      join(data, 'profiles.json'),
      JSON.stringify([{ name: 'web', keyUsage: ['everything'] }]),
    );
    const r = spawnSync(
      process.execPath,
      [BIN, 'serve', '--data', data, '--listen', '127.0.0.1:0'],
      { encoding: 'utf8', env: ENV, timeout: 30_000 },
    );
    assert.equal(r.status, 3);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /profiles\.json: profile "web": keyUsage: "everything" is not one of/);
  });
});
