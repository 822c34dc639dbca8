import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import { decodePem } from './pem.ts';
import { formatName, inspectCertificate, parseCertificate } from './x509.ts';

const MOZILLA = '/usr/share/ca-certificates/mozilla';

/** What openssl reports for each certificate: RFC 4514 subject/issuer, serial, thumbprints. */
function opensslView(pemFiles: readonly string[]) {
  // One shell process for the whole set: 142 separate openssl spawns cost seconds.
  const script =
    'for f in "$@"; do echo "file=$f"; openssl x509 -in "$f" -noout -nameopt RFC2253,-esc_msb -subject -issuer -serial -fingerprint -sha256 -dates; openssl x509 -in "$f" -noout -fingerprint -sha1; done';
  const out = execFileSync('bash', ['-c', script, 'view', ...pemFiles], {
    maxBuffer: 64 << 20,
  }).toString('utf8');
  return out
    .split(/^file=/m)
    .slice(1)
    .map((chunk) => {
      const field = (re: RegExp) => re.exec(chunk)?.[1] ?? '';
      return {
        file: chunk.slice(0, chunk.indexOf('\n')),
        subject: field(/^subject=(.*)$/m),
        issuer: field(/^issuer=(.*)$/m),
        serial: field(/^serial=(.*)$/m).toLowerCase(),
        sha256: field(/^sha256 Fingerprint=(.*)$/im)
          .replaceAll(':', '')
          .toLowerCase(),
        sha1: field(/^sha1 Fingerprint=(.*)$/im)
          .replaceAll(':', '')
          .toLowerCase(),
        notAfter: new Date(field(/^notAfter=(.*)$/m)).toISOString(),
      };
    });
}

describe('x509 inspection', () => {
  it("parses every root of Debian's ca-certificates bundle exactly as openssl reports it", () => {
    const files = readdirSync(MOZILLA).filter((f) => f.endsWith('.crt'));
    assert.ok(
      files.length > 100,
      `expected the Mozilla bundle in ${MOZILLA} (apt-get install ca-certificates)`,
    );
    const views = opensslView(files.map((f) => join(MOZILLA, f)));
    assert.equal(views.length, files.length);
    for (const ref of views) {
      const f = ref.file;
      const [block] = decodePem(readFileSync(f));
      const info = inspectCertificate(parseCertificate(block!.der));
      assert.equal(info.subject, ref.subject, `${f}: subject`);
      assert.equal(info.issuer, ref.issuer, `${f}: issuer`);
      assert.equal(
        info.serialNumber.replace(/^0+/, ''),
        ref.serial.replace(/^0+/, ''),
        `${f}: serial`,
      );
      assert.equal(info.sha256, ref.sha256, `${f}: sha256`);
      assert.equal(info.sha1, ref.sha1, `${f}: sha1`);
      assert.equal(info.notAfter, ref.notAfter, `${f}: notAfter`);
      assert.equal(info.role, 'root', `${f}: role`);
      assert.ok(info.isCA && info.selfSigned, `${f}: self-signed CA`);
    }
  });

  it('reads every extension of a richly populated end-entity certificate', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'ext.cnf'),
      [
        '[ext]',
        'basicConstraints = critical, CA:FALSE',
        'keyUsage = critical, digitalSignature, keyEncipherment',
        'extendedKeyUsage = serverAuth, clientAuth, 1.3.6.1.4.1.311.20.2.2',
        'subjectAltName = DNS:host.example.com, IP:192.0.2.7, IP:2001:db8::1, email:tom@example.com, URI:https://example.com/x, otherName:1.3.6.1.4.1.311.20.2.3;UTF8:tom@contoso.com, RID:1.2.3.4, dirName:dir_sect',
        'crlDistributionPoints = URI:http://crl.example.com/ca.crl',
        'authorityInfoAccess = OCSP;URI:http://ocsp.example.com, caIssuers;URI:http://ca.example.com/ca.cer',
        'certificatePolicies = 2.23.140.1.2.1, @pol',
        'subjectKeyIdentifier = hash',
        '[pol]',
        'policyIdentifier = 1.3.6.1.4.1.99999.1',
        'CPS.1 = https://example.com/cps',
        '[dir_sect]',
        'CN = Directory Name',
        'O = Example',
      ].join('\n'),
    );
    run(
      'openssl',
      [
        'req',
        '-utf8',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-384',
        '-nodes',
        '-keyout',
        'k.pem',
        '-subj',
        '/C=DE/O=Exämple, Inc./CN=host.example.com/emailAddress=tom@example.com',
        '-days',
        '30',
        '-extensions',
        'ext',
        '-config',
        'ext.cnf',
        '-out',
        'c.pem',
      ],
      { cwd: dir, env: { ...process.env, OPENSSL_CONF: join(dir, 'ext.cnf') } },
    );
    const [block] = decodePem(readFileSync(join(dir, 'c.pem')));
    const info = inspectCertificate(parseCertificate(block!.der));
    assert.equal(
      info.subject,
      'emailAddress=tom@example.com,CN=host.example.com,O=Exämple\\, Inc.,C=DE',
    );
    assert.equal(info.subject, opensslView([join(dir, 'c.pem')])[0]?.subject);
    assert.deepEqual(info.publicKey, { type: 'ec', curve: 'P-384', bits: 384 });
    assert.deepEqual(info.keyUsage, ['digitalSignature', 'keyEncipherment']);
    assert.deepEqual(
      info.extendedKeyUsage?.map((e) => e.name),
      ['serverAuth', 'clientAuth', 'msSmartcardLogin'],
    );
    assert.deepEqual(info.subjectAltNames, [
      { type: 'dns', value: 'host.example.com' },
      { type: 'ip', value: '192.0.2.7' },
      { type: 'ip', value: '2001:db8::1' },
      { type: 'email', value: 'tom@example.com' },
      { type: 'uri', value: 'https://example.com/x' },
      { type: 'upn', value: 'tom@contoso.com', oid: '1.3.6.1.4.1.311.20.2.3' },
      { type: 'rid', value: '1.2.3.4' },
      { type: 'dirName', value: 'O=Example,CN=Directory Name' },
    ]);
    assert.deepEqual(info.basicConstraints, { ca: false, pathLen: null });
    assert.deepEqual(info.crlDistributionPoints, ['http://crl.example.com/ca.crl']);
    assert.deepEqual(info.authorityInfoAccess, {
      ocsp: ['http://ocsp.example.com'],
      caIssuers: ['http://ca.example.com/ca.cer'],
    });
    assert.deepEqual(info.certificatePolicies, [
      { oid: '2.23.140.1.2.1', name: 'domain-validated' },
      { oid: '1.3.6.1.4.1.99999.1', cps: ['https://example.com/cps'] },
    ]);
    assert.match(info.subjectKeyIdentifier ?? '', /^[0-9a-f]{40}$/);
    assert.equal(info.role, 'end-entity');
    assert.equal(info.isCA, false);
    assert.equal(info.selfSigned, true);
  });
});

describe('parseCertificate, the same bytes again', () => {
  it('gives the same value, which does not see the caller’s buffer change afterwards', () => {
    const pem = readFileSync(join(MOZILLA, readdirSync(MOZILLA).toSorted()[0]!), 'utf8');
    const der = decodePem(pem)[0]!.der;
    const buffer = new Uint8Array(der.length + 8);
    buffer.set(der, 4);
    const first = parseCertificate(buffer.subarray(4, 4 + der.length));
    const subject = formatName(first.subject);
    const serial = Buffer.from(first.serial).toString('hex');
    // The caller reuses its buffer: the parsed value keeps its own bytes.
    buffer.fill(0xff);
    assert.equal(formatName(first.subject), subject);
    assert.equal(Buffer.from(first.serial).toString('hex'), serial);
    assert.deepEqual(first.der, der);
    const again = parseCertificate(Uint8Array.from(der));
    assert.equal(again, first);
    // Other bytes are parsed on their own, and a broken copy is still refused.
    const broken = Uint8Array.from(der);
    broken[broken.length - 1] = broken.at(-1)! ^ 0xff;
    assert.notEqual(parseCertificate(broken), first);
    assert.throws(() => parseCertificate(der.subarray(0, der.length - 1)));
  });
});
