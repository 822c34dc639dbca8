/** PKCS#10 requests we build: openssl verifies them, our parser reads back what we put in. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import { enc } from './der.ts';
import { buildCsr, inspectCsr, parseCsr } from './csr.ts';
import { EXT } from './oids.ts';

// CN=device-7,O=Contoso as a DER Name (RDNs in encoding order).
const SUBJECT = enc.seq(
  enc.setOf(enc.seq(enc.oid('2.5.4.10'), enc.utf8('Contoso'))),
  enc.setOf(enc.seq(enc.oid('2.5.4.3'), enc.utf8('device-7'))),
);
const SAN = {
  oid: EXT.subjectAltName,
  critical: false,
  value: enc.seq(enc.ctxPrim(2, Buffer.from('device-7.contoso.com'))),
};

it('builds RSA and EC requests with challengePassword and extensionRequest that openssl verifies', async () => {
  const dir = tempDir();
  for (const [name, pair] of [
    ['rsa', generateKeyPairSync('rsa', { modulusLength: 2048 })],
    ['ec', generateKeyPairSync('ec', { namedCurve: 'P-256' })],
  ] as const) {
    const der = await buildCsr({
      subject: SUBJECT,
      key: pair.privateKey,
      challengePassword: 'one-time-secret',
      extensions: [SAN],
    });
    writeFileSync(join(dir, `${name}.csr`), der);
    const out = run(
      'openssl',
      ['req', '-inform', 'DER', '-in', `${name}.csr`, '-verify', '-noout', '-text'],
      { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] },
    ).toString();
    assert.match(out, /challengePassword\s*:\s*one-time-secret/, name);
    assert.match(out, /DNS:device-7\.contoso\.com/, name);
    const csr = parseCsr(der);
    assert.equal(csr.challengePassword, 'one-time-secret');
    assert.deepEqual(inspectCsr(csr).subjectAltNames, [
      { type: 'dns', value: 'device-7.contoso.com' },
    ]);
    assert.equal(inspectCsr(csr).subject, 'CN=device-7,O=Contoso');
  }
});
