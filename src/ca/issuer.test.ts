import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseCsr, type CertificationRequest } from '../pki/csr.ts';
import { encodePem } from '../pki/pem.ts';
import { inspectCertificate, type Certificate } from '../pki/x509.ts';
import { opensslCsrDer, run, tempDir } from '../testing/tools.ts';
import { createAuthority, type CaMaterial } from './authority.ts';
import { issue, randomSerial, serialHex } from './issuer.ts';
import { DEFAULT_PROFILE, PolicyError, type IssuanceProfile } from './profile.ts';

function csrFrom(
  newkey: string[],
  subj: string,
  addext: string[] = [],
  digest = 'sha256',
): CertificationRequest {
  return parseCsr(opensslCsrDer(newkey, subj, addext, digest));
}

const NOW = new Date('2026-05-01T10:00:00Z');

/** openssl verify of `leaf` with the root as anchor and the issuing CA as untrusted. */
function opensslVerify(ca: CaMaterial, leaf: Certificate, purpose = 'sslclient'): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'root.pem'), encodePem('CERTIFICATE', ca.root.certificate.der));
  writeFileSync(join(dir, 'issuing.pem'), encodePem('CERTIFICATE', ca.issuing.certificate.der));
  writeFileSync(join(dir, 'leaf.pem'), encodePem('CERTIFICATE', leaf.der));
  return run('openssl', [
    'verify',
    '-attime',
    String(NOW.getTime() / 1000 + 3600),
    '-purpose',
    purpose,
    '-CAfile',
    join(dir, 'root.pem'),
    '-untrusted',
    join(dir, 'issuing.pem'),
    join(dir, 'leaf.pem'),
  ]).toString();
}

describe('issue', () => {
  for (const keyType of ['rsa', 'ec'] as const) {
    it(`issues under a ${keyType} CA a certificate openssl verifies as a TLS client`, async (t) => {
      const ca = await createAuthority({
        keyType,
        rootSubject: 'CN=Test Root,O=certpost',
        issuingSubject: 'CN=Test Issuing,O=certpost',
        now: NOW,
      });
      const csr = csrFrom(['-newkey', 'rsa:2048'], '/C=US/O=scep-client/OU=MDM/CN=my-device', [
        'subjectAltName=DNS:dev.example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@example.com',
        'keyUsage=critical,keyCertSign', // requested usages are ignored: the profile decides
      ]);
      const profile: IssuanceProfile = { ...DEFAULT_PROFILE, crlUrl: 'http://ca.example/c.crl' };
      const serial = randomSerial();
      const cert = await issue({ csr, profile, now: NOW }, ca, serial);
      assert.match(opensslVerify(ca, cert), /leaf\.pem: OK/);
      const info = inspectCertificate(cert);
      assert.equal(info.serialNumber, serialHex(serial));
      assert.equal(info.subject, 'CN=my-device,OU=MDM,O=scep-client,C=US');
      assert.equal(info.issuer, 'CN=Test Issuing,O=certpost');
      assert.deepEqual(info.keyUsage, ['digitalSignature', 'keyEncipherment']);
      assert.deepEqual(
        info.extendedKeyUsage?.map((e) => e.name),
        ['clientAuth'],
      );
      assert.deepEqual(
        info.subjectAltNames.map((s) => s.type),
        ['dns', 'upn'],
      );
      assert.equal(
        info.authorityKeyIdentifier,
        inspectCertificate(ca.issuing.certificate).subjectKeyIdentifier,
      );
      assert.deepEqual(info.crlDistributionPoints, ['http://ca.example/c.crl']);
      assert.equal(info.notBefore, '2026-05-01T09:55:00.000Z');
      assert.equal(info.notAfter, '2027-05-01T10:00:00.000Z');
      assert.equal(
        info.signatureAlgorithm,
        keyType === 'rsa' ? 'sha256WithRSAEncryption' : 'ecdsa-with-SHA256',
      );

      // Cost of the whole core (CSR signature check, policy, TBS, signature, parse back).
      const n = 200;
      let t0 = performance.now();
      for (let i = 0; i < n; i++) await issue({ csr, profile, now: NOW }, ca, randomSerial());
      const seq = (performance.now() - t0) / n;
      t0 = performance.now();
      await Promise.all(
        Array.from({ length: n }, () => issue({ csr, profile, now: NOW }, ca, randomSerial())),
      );
      const conc = (performance.now() - t0) / n;
      const label = keyType === 'rsa' ? 'RSA-2048' : 'EC P-256';
      t.diagnostic(
        `issue() with a ${label} issuing CA: ${seq.toFixed(3)} ms sequential, ${conc.toFixed(3)} ms concurrent`,
      );
      console.log(
        `[perf] issue() ${label} CA, RSA-2048 CSR: ${seq.toFixed(3)} ms/cert sequential, ${conc.toFixed(3)} ms/cert concurrent`,
      );
    });
  }

  it('caps notAfter at the issuing CA notAfter', async () => {
    const ca = await createAuthority({
      keyType: 'ec',
      rootSubject: 'CN=R',
      issuingSubject: 'CN=I',
      issuingValidityDays: 30,
      now: NOW,
    });
    const csr = csrFrom(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], '/CN=x');
    const cert = await issue({ csr, profile: DEFAULT_PROFILE, now: NOW }, ca, randomSerial());
    assert.equal(cert.notAfter.getTime(), ca.issuing.certificate.notAfter.getTime());
  });

  it('throws PolicyError with the policy code for a refused request', async () => {
    const ca = await createAuthority({
      keyType: 'ec',
      rootSubject: 'CN=R',
      issuingSubject: 'CN=I',
      now: NOW,
    });
    const csr = csrFrom(['-newkey', 'rsa:1024'], '/CN=small');
    await assert.rejects(
      issue({ csr, profile: DEFAULT_PROFILE, now: NOW }, ca, randomSerial()),
      (e) => e instanceof PolicyError && e.code === 'key-not-allowed',
    );
  });
});

describe('randomSerial', () => {
  it('is 16 octets, positive, non-zero and unique', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const s = randomSerial();
      assert.equal(s.length, 16);
      assert.equal(s[0]! & 0x80, 0);
      assert.ok(s.some((b) => b !== 0));
      seen.add(Buffer.from(s).toString('hex'));
    }
    assert.equal(seen.size, 10_000);
  });

  it('serialHex drops leading zero octets', () => {
    assert.equal(serialHex(Uint8Array.of(0, 0, 0x7f, 1)), '7f01');
    assert.equal(serialHex(Uint8Array.of(0)), '00');
  });
});
