import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodePem } from '../pki/pem.ts';
import { verifySignature } from '../pki/chain.ts';
import { inspectCertificate, parseCertificate } from '../pki/x509.ts';
import { run, tempDir } from '../testing/tools.ts';
import {
  authorityInfoAccess,
  authorityKeyIdentifier,
  basicConstraints,
  buildCertificate,
  crlDistributionPoints,
  extKeyUsage,
  ipBytes,
  keyUsage,
  subjectAltName,
  subjectKeyIdentifier,
} from './certificate.ts';
import type { Digest } from '../pki/sign.ts';
import { parseRfc4514 } from './name.ts';

const spkiOf = (key: KeyObject) =>
  new Uint8Array(key.export({ type: 'spki', format: 'der' }) as Buffer);

const NOW = new Date('2026-01-01T00:00:00Z');
const LATER = new Date('2036-01-01T00:00:00Z');

async function makeCa(key: { privateKey: KeyObject; publicKey: KeyObject }, digest?: Digest) {
  const name = parseRfc4514('CN=Test Root,O=certpost tests');
  const spki = spkiOf(key.publicKey);
  const der = await buildCertificate({
    subject: name,
    spki,
    serial: Uint8Array.of(1),
    notBefore: NOW,
    notAfter: LATER,
    issuer: { name, key: key.privateKey, spki },
    extensions: [
      basicConstraints(true),
      keyUsage(['keyCertSign', 'cRLSign']),
      subjectKeyIdentifier(spki),
    ],
    ...(digest ? { digest } : {}),
  });
  return { der, name, spki, key: key.privateKey };
}

function leafInput(ca: Awaited<ReturnType<typeof makeCa>>, subjectKey: KeyObject) {
  const spki = spkiOf(subjectKey);
  return {
    subject: parseRfc4514('CN=device-1,OU=IT,O=Contoso'),
    spki,
    serial: Uint8Array.from(Buffer.from('00ff112233445566778899aabbccddeeff', 'hex')),
    notBefore: NOW,
    notAfter: new Date('2027-01-01T00:00:00Z'),
    issuer: { name: ca.name, key: ca.key, spki: ca.spki },
    extensions: [
      basicConstraints(false, undefined, false),
      keyUsage(['digitalSignature', 'keyEncipherment']),
      extKeyUsage(['1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.1']),
      subjectAltName([
        { type: 'dns', value: 'device-1.contoso.com' },
        { type: 'email', value: 'user@contoso.com' },
        { type: 'ip', value: '192.0.2.7' },
        { type: 'ip', value: '2001:db8::1' },
        { type: 'uri', value: 'tag:microsoft.com,2022-09-14:sid:S-1-5-21-1' },
        { type: 'upn', value: 'user@contoso.com' },
        { type: 'dirName', value: 'CN=Dir,O=Contoso' },
      ]),
      subjectKeyIdentifier(spki),
      authorityKeyIdentifier(ca.spki),
      crlDistributionPoints(['http://ca.contoso.com/crl/1.crl']),
      authorityInfoAccess({
        ocsp: ['http://ocsp.contoso.com'],
        caIssuers: ['http://ca.contoso.com/ca.cer'],
      }),
    ],
  };
}

function opensslCheck(caDer: Uint8Array, leafDer: Uint8Array): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'ca.pem'), encodePem('CERTIFICATE', caDer));
  writeFileSync(join(dir, 'leaf.pem'), encodePem('CERTIFICATE', leafDer));
  const verified = run('openssl', [
    'verify',
    '-attime',
    String(Date.parse('2026-06-01T00:00:00Z') / 1000),
    '-CAfile',
    join(dir, 'ca.pem'),
    join(dir, 'leaf.pem'),
  ]).toString();
  assert.match(verified, /leaf\.pem: OK/);
  return run('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-text']).toString();
}

const ISSUERS = [
  [
    'RSA-2048',
    () => generateKeyPairSync('rsa', { modulusLength: 2048 }),
    'sha256WithRSAEncryption',
  ],
  ['EC P-256', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'ecdsa-with-SHA256'],
  ['EC P-384', () => generateKeyPairSync('ec', { namedCurve: 'P-384' }), 'ecdsa-with-SHA384'],
  ['Ed25519', () => generateKeyPairSync('ed25519'), 'ED25519'],
] as const;

const hexv = (names: Parameters<typeof keyUsage>[0]) =>
  Buffer.from(keyUsage(names).value).toString('hex');
const ipHex = (s: string) => Buffer.from(ipBytes(s)).toString('hex');

describe('buildCertificate', () => {
  for (const [label, gen, sigName] of ISSUERS) {
    it(`${label} issuer: openssl verifies the leaf and shows every extension`, async () => {
      const ca = await makeCa(gen());
      const leafKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const leafDer = await buildCertificate(leafInput(ca, leafKey.publicKey));
      const text = opensslCheck(ca.der, leafDer);
      assert.match(text, new RegExp(`Signature Algorithm: ${sigName}`));
      assert.match(text, /Serial Number:\s+ff:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff/);
      assert.match(text, /X509v3 Basic Constraints: \n\s+CA:FALSE/);
      assert.match(text, /X509v3 Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/);
      assert.match(
        text,
        /X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication, TLS Web Server Authentication/,
      );
      assert.match(
        text,
        /DNS:device-1\.contoso\.com, email:user@contoso\.com, IP Address:192\.0\.2\.7, IP Address:2001:DB8:0:0:0:0:0:1, URI:tag:microsoft\.com,2022-09-14:sid:S-1-5-21-1, othername: UPN::user@contoso\.com, DirName:\/O=Contoso\/CN=Dir/,
      );
      assert.match(
        text,
        /X509v3 CRL Distribution Points: \n\s+Full Name:\n\s+URI:http:\/\/ca\.contoso\.com\/crl\/1\.crl/,
      );
      assert.match(text, /OCSP - URI:http:\/\/ocsp\.contoso\.com/);
      assert.match(text, /CA Issuers - URI:http:\/\/ca\.contoso\.com\/ca\.cer/);

      // Our own parser agrees, SKI = AKI of the CA, and chain.ts verifies the signature.
      const leaf = parseCertificate(leafDer);
      const caCert = parseCertificate(ca.der);
      const info = inspectCertificate(leaf);
      assert.equal(info.authorityKeyIdentifier, inspectCertificate(caCert).subjectKeyIdentifier);
      assert.equal(info.subject, 'CN=device-1,OU=IT,O=Contoso');
      assert.deepEqual(info.keyUsage, ['digitalSignature', 'keyEncipherment']);
      assert.ok(verifySignature(leaf, ca.spki));
      assert.ok(verifySignature(caCert, ca.spki));
    });
  }

  it('SKI is the same SHA-1 openssl computes for subjectKeyIdentifier=hash', () => {
    const dir = tempDir();
    run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(dir, 'k.pem'),
      '-subj',
      '/CN=x',
      '-addext',
      'subjectKeyIdentifier=hash',
      '-out',
      join(dir, 'c.pem'),
    ]);
    const pem = run('openssl', ['x509', '-in', join(dir, 'c.pem'), '-outform', 'DER']);
    const cert = parseCertificate(new Uint8Array(pem));
    const ski = subjectKeyIdentifier(cert.spki);
    assert.equal(
      Buffer.from(ski.value).toString('hex'),
      `0414${inspectCertificate(cert).subjectKeyIdentifier}`,
    );
  });

  it('encodes keyUsage with the minimal unused-bit count (DER NamedBitList)', () => {
    assert.equal(hexv(['digitalSignature']), '03020780');
    assert.equal(hexv(['digitalSignature', 'keyEncipherment']), '030205a0');
    assert.equal(hexv(['keyCertSign', 'cRLSign']), '03020106');
    assert.equal(
      hexv(['digitalSignature', 'keyEncipherment', 'keyCertSign', 'cRLSign']),
      '030201a6',
    );
    assert.equal(hexv(['decipherOnly']), '0303070080');
  });

  it('parses IPv4 and IPv6 text forms', () => {
    assert.equal(ipHex('10.0.0.1'), '0a000001');
    assert.equal(ipHex('::1'), '00000000000000000000000000000001');
    assert.equal(ipHex('fe80::1:2'), 'fe800000000000000000000000010002');
    assert.equal(ipHex('::ffff:192.0.2.1'), '00000000000000000000ffffc0000201');
    assert.equal(ipHex('1:2:3:4:5:6:7:8'), '00010002000300040005000600070008');
    for (const bad of [
      '1.2.3',
      '256.1.1.1',
      '01.1.1.1',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      ':::',
      'x::',
    ])
      assert.throws(() => ipBytes(bad), /bad IP address/, bad);
  });

  it('refuses zero or oversized serials and duplicate extensions', async () => {
    const ca = await makeCa(generateKeyPairSync('ec', { namedCurve: 'P-256' }));
    const base = leafInput(ca, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    await assert.rejects(buildCertificate({ ...base, serial: Uint8Array.of(0) }), /serial/);
    await assert.rejects(
      buildCertificate({ ...base, serial: new Uint8Array(21).fill(1) }),
      /serial/,
    );
    await assert.rejects(
      buildCertificate({ ...base, extensions: [keyUsage(['cRLSign']), keyUsage(['cRLSign'])] }),
      /duplicate extension/,
    );
  });

  for (const [label, gen] of [ISSUERS[0], ISSUERS[1]] as const) {
    it(`measures issuance cost with a ${label} issuer`, async (t) => {
      const ca = await makeCa(gen());
      const input = leafInput(ca, generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey);
      for (let i = 0; i < 20; i++) await buildCertificate(input); // warm up
      const n = 300;
      let t0 = performance.now();
      for (let i = 0; i < n; i++) await buildCertificate(input);
      const sequential = (performance.now() - t0) / n;
      t0 = performance.now();
      await Promise.all(Array.from({ length: n }, () => buildCertificate(input)));
      const concurrent = (performance.now() - t0) / n;
      t.diagnostic(
        `${label}: ${sequential.toFixed(3)} ms/cert sequential, ${concurrent.toFixed(3)} ms/cert with ${n} in flight (thread pool)`,
      );
      console.log(
        `[perf] ${label} issuer: ${sequential.toFixed(3)} ms/cert sequential, ${concurrent.toFixed(3)} ms/cert concurrent`,
      );
    });
  }
});
