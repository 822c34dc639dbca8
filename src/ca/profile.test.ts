import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as der from '../pki/der.ts';
import { parseCsr, type CertificationRequest } from '../pki/csr.ts';
import { EXT } from '../pki/oids.ts';
import { formatName, generalName, parseName } from '../pki/x509.ts';
import { opensslCsrDer } from '../testing/tools.ts';
import {
  BACKDATE_MS,
  checkCsrSignature,
  DEFAULT_PROFILE,
  evaluateRequest,
  POLICY_FAILURES,
  validityFor,
  type IssuanceProfile,
} from './profile.ts';

/** A CSR made by openssl req (the reference encoder for PKCS#10). */
function opensslCsr(
  newkey: string[],
  subj: string,
  addext: string[] = [],
  digest = 'sha256',
): CertificationRequest {
  return parseCsr(opensslCsrDer(newkey, subj, addext, digest));
}

const RSA2048 = ['-newkey', 'rsa:2048'];
const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

const sansOf = (exts: readonly { oid: string; value: Uint8Array }[]) => {
  const e = exts.find((x) => x.oid === EXT.subjectAltName);
  return e ? der.seq(der.decode(e.value), 'san').map((n) => generalName(n)) : [];
};

describe('evaluateRequest', () => {
  const rsa = opensslCsr(RSA2048, '/C=US/O=scep-client/OU=MDM/CN=my-device', [
    'subjectAltName=DNS:dev.example.com,email:a@example.com,IP:10.1.2.3,URI:tag:microsoft.com:sid:S-1-5-21-9,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@example.com',
  ]);

  it('accepts an RSA-2048 request under the default profile and copies subject and SANs', () => {
    const r = evaluateRequest(rsa, DEFAULT_PROFILE);
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(
      formatName(parseName(der.decode(r.subject), 's')),
      'CN=my-device,OU=MDM,O=scep-client,C=US',
    );
    assert.deepEqual(
      sansOf(r.extensions).map((s) => `${s.type}:${s.value}`),
      [
        'dns:dev.example.com',
        'email:a@example.com',
        'ip:10.1.2.3',
        'uri:tag:microsoft.com:sid:S-1-5-21-9',
        'upn:u@example.com',
      ],
    );
    assert.deepEqual(
      r.extensions.map((e) => e.oid),
      [EXT.keyUsage, EXT.extKeyUsage, EXT.subjectAltName, EXT.subjectKeyIdentifier],
    );
  });

  it('accepts EC P-256 and SHA-1 signed requests (legacy SCEP clients)', () => {
    assert.ok(evaluateRequest(opensslCsr(P256, '/CN=ec'), DEFAULT_PROFILE).ok);
    assert.ok(evaluateRequest(opensslCsr(RSA2048, '/CN=sha1', [], 'sha1'), DEFAULT_PROFILE).ok);
  });

  it('refuses a request whose signature does not verify: bad-signature', () => {
    const bytes = Uint8Array.from(rsa.der);
    bytes[bytes.length - 5]! ^= 0x01;
    const tampered = parseCsr(bytes);
    assert.deepEqual(checkCsrSignature(tampered), { ok: false, reason: 'bad-signature' });
    const r = evaluateRequest(tampered, DEFAULT_PROFILE);
    assert.equal(r.ok ? '' : r.reason, 'bad-signature');
  });

  it('refuses small RSA keys, disallowed curves and key types: key-not-allowed', () => {
    const small = opensslCsr(['-newkey', 'rsa:1024'], '/CN=small');
    const p521 = opensslCsr(['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-521'], '/CN=p521');
    const ed = opensslCsr(['-newkey', 'ed25519'], '/CN=ed');
    const rsaOnly: IssuanceProfile = { ...DEFAULT_PROFILE, allowedKeyTypes: ['rsa'] };
    for (const [csr, profile] of [
      [small, DEFAULT_PROFILE],
      [p521, DEFAULT_PROFILE],
      [ed, DEFAULT_PROFILE],
      [opensslCsr(P256, '/CN=ec'), rsaOnly],
    ] as const) {
      const r = evaluateRequest(csr, profile);
      assert.equal(r.ok ? '' : r.reason, 'key-not-allowed', formatName(csr.subject));
    }
  });

  it('refuses SAN types the profile does not allow: san-not-allowed', () => {
    const dnsOnly: IssuanceProfile = {
      ...DEFAULT_PROFILE,
      subjectAltNames: { allow: ['dns'] },
    };
    const r = evaluateRequest(rsa, dnsOnly);
    assert.equal(r.ok ? '' : r.reason, 'san-not-allowed');
    assert.match(r.ok ? '' : r.message, /email/);
  });

  it('refuses an empty subject: subject-missing; a forced subject replaces it', () => {
    const empty = opensslCsr(P256, '/', ['subjectAltName=DNS:x.example.com']);
    assert.equal(empty.subject.rdns.length, 0);
    const r = evaluateRequest(empty, DEFAULT_PROFILE);
    assert.equal(r.ok ? '' : r.reason, 'subject-missing');
    const forced: IssuanceProfile = {
      ...DEFAULT_PROFILE,
      subject: { mode: 'forced', value: 'CN=device,OU=IT,O=Contoso' },
      subjectAltNames: { allow: ['dns'], forced: [{ type: 'upn', value: 'd@contoso.com' }] },
      crlUrl: 'http://ca.example/crl',
    };
    const f = evaluateRequest(empty, forced);
    assert.ok(f.ok);
    assert.equal(formatName(parseName(der.decode(f.subject), 's')), 'O=Contoso,OU=IT,CN=device');
    assert.deepEqual(
      sansOf(f.extensions).map((s) => s.value),
      ['x.example.com', 'd@contoso.com'],
    );
    assert.ok(f.extensions.some((e) => e.oid === EXT.crlDistributionPoints));
  });

  it('has a description for every failure code', () => {
    for (const [code, text] of Object.entries(POLICY_FAILURES)) {
      assert.match(code, /^[a-z-]+$/);
      assert.ok(text.length > 10);
    }
  });
});

describe('validityFor', () => {
  const now = new Date('2026-03-01T12:00:00.789Z');
  it('backdates notBefore and caps the requested days at the profile', () => {
    const v = validityFor(DEFAULT_PROFILE, now);
    assert.equal(v.notBefore.getTime(), Date.parse('2026-03-01T12:00:00Z') - BACKDATE_MS);
    assert.equal(v.notAfter.toISOString(), '2027-03-01T12:00:00.000Z');
    assert.equal(
      validityFor(DEFAULT_PROFILE, now, 30).notAfter.toISOString(),
      '2026-03-31T12:00:00.000Z',
    );
    assert.equal(
      validityFor(DEFAULT_PROFILE, now, 9999).notAfter.toISOString(),
      '2027-03-01T12:00:00.000Z',
    );
    assert.equal(
      validityFor(DEFAULT_PROFILE, now, -1).notAfter.toISOString(),
      '2027-03-01T12:00:00.000Z',
    );
  });
});
