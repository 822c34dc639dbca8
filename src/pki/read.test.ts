/**
 * Format sniffing and the non-PKCS#12 readers and writers, cross-checked with openssl in both
 * directions: files openssl writes, we read; files we write, openssl reads.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';
import { parseSignedData } from './cms.ts';
import * as der from './der.ts';
import { isPkiError, type PkiErrorCode } from './errors.ts';
import { inspectContents } from './inspect.ts';
import { exportPkcs8, parsePrivateKeyDer } from './keys.ts';
import { decodePem, encodePem } from './pem.ts';
import { encodePkcs12 } from './pkcs12.ts';
import { encodePkcs7Certificates, MAX_BUNDLE_CERTIFICATES } from './pkcs7.ts';
import { readPki } from './read.ts';
import { parseCertificate, sha1Thumbprint } from './x509.ts';

let dir = '';
const f = (name: string) => join(dir, name);
const bytes = (name: string) => new Uint8Array(readFileSync(f(name)));
const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
/** SHA-1 thumbprint openssl computes for a PEM/DER certificate file. */
const opensslSha1 = (name: string, inform = 'PEM') =>
  /=(.*)$/m
    .exec(
      openssl('x509', '-inform', inform, '-in', name, '-noout', '-fingerprint', '-sha1').toString(),
    )![1]!
    .replaceAll(':', '')
    .toLowerCase();

async function rejects(p: Promise<unknown>, code: PkiErrorCode): Promise<void> {
  await assert.rejects(
    p,
    (e) => isPkiError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`),
  );
}

/**
 * Re-encodes the outer `levels` of constructed values with BER indefinite lengths, as some
 * Java/NSS tools write PKCS#7; what lies deeper (the signed certificates) keeps its DER.
 */
function toIndefinite(n: der.Asn1, levels: number): Uint8Array {
  if (!n.constructed || levels === 0) return der.raw(n);
  const inner = der.children(n).map((c) => toIndefinite(c, levels - 1));
  return der.concat([Uint8Array.of(n.tag, 0x80), ...inner, Uint8Array.of(0, 0)]);
}

before(() => {
  dir = tempDir();
  writeFileSync(
    f('req.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'attributes = attrs',
      'prompt = no',
      '[dn]',
      'CN = device-42',
      'O = Contoso',
      '[attrs]',
      'challengePassword = s3cret-challenge',
    ].join('\n'),
  );
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-subj',
    '/CN=Test Root',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    'ca.pem',
  );
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'leaf.key');
  openssl(
    'req',
    '-new',
    '-key',
    'leaf.key',
    '-config',
    'req.cnf',
    '-addext',
    'subjectAltName=DNS:device-42.contoso.com,email:d@contoso.com',
    '-out',
    'leaf.csr',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-days',
    '10',
    '-copy_extensions',
    'copy',
    '-out',
    'leaf.pem',
  );
  openssl('x509', '-in', 'leaf.pem', '-outform', 'DER', '-out', 'leaf.cer');
  openssl(
    'crl2pkcs7',
    '-nocrl',
    '-certfile',
    'leaf.pem',
    '-certfile',
    'ca.pem',
    '-outform',
    'DER',
    '-out',
    'chain.p7b',
  );
  openssl(
    'crl2pkcs7',
    '-nocrl',
    '-certfile',
    'leaf.pem',
    '-certfile',
    'ca.pem',
    '-out',
    'chain-pem.p7b',
  );
  openssl('req', '-in', 'leaf.csr', '-outform', 'DER', '-out', 'leaf-csr.der');
  openssl(
    'pkcs8',
    '-topk8',
    '-in',
    'leaf.key',
    '-v2',
    'aes-256-cbc',
    '-passout',
    'pass:key-pass',
    '-out',
    'leaf-enc.pem',
  );
  openssl(
    'pkcs8',
    '-topk8',
    '-in',
    'leaf.key',
    '-v2',
    'aes-256-cbc',
    '-passout',
    'pass:key-pass',
    '-outform',
    'DER',
    '-out',
    'leaf-enc.der',
  );
  openssl('rsa', '-in', 'ca.key', '-traditional', '-out', 'ca-pkcs1.pem');
  openssl('rsa', '-in', 'ca.key', '-traditional', '-outform', 'DER', '-out', 'ca-pkcs1.der');
  openssl('ec', '-in', 'leaf.key', '-outform', 'DER', '-out', 'leaf-sec1.der');
  openssl('ec', '-in', 'leaf.key', '-out', 'leaf-sec1.pem');
});

describe('readPki: sniffing what real files contain', () => {
  it('reads a DER certificate whatever its name says, and notes a misleading extension', async () => {
    const c = await readPki(bytes('leaf.cer'), { filename: 'leaf.p12' });
    assert.equal(c.format, 'der');
    assert.equal(sha1Thumbprint(c.certificates[0]!), opensslSha1('leaf.cer', 'DER'));
    assert.match(c.notes.join(), /\.p12.*certificate \(binary\)/);
  });

  it('reads several PEM certificates with text around them and CRLF line ends', async () => {
    const text =
      `Bag Attributes\r\n    friendlyName: x\r\nsubject=CN = leaf\r\n${readFileSync(f('leaf.pem'), 'latin1')}\r\nsome comment\r\n${readFileSync(f('ca.pem'), 'latin1')}`.replace(
        /\n/g,
        '\r\n',
      );
    const c = await readPki(Buffer.from(text, 'latin1'));
    assert.equal(c.format, 'pem');
    assert.deepEqual(c.certificates.map(sha1Thumbprint), [
      opensslSha1('leaf.pem'),
      opensslSha1('ca.pem'),
    ]);
  });

  it('reads bare base64 of a DER certificate (as MDM payloads carry it)', async () => {
    const text = Buffer.from(bytes('leaf.cer'))
      .toString('base64')
      .replace(/(.{76})/g, '$1\n');
    const c = await readPki(Buffer.from(text));
    assert.equal(c.encoding, 'base64');
    assert.equal(sha1Thumbprint(c.certificates[0]!), opensslSha1('leaf.cer', 'DER'));
  });

  it('reads PKCS#7 bundles: DER, PEM and BER with indefinite lengths', async () => {
    const expected = [opensslSha1('leaf.pem'), opensslSha1('ca.pem')];
    for (const input of [
      bytes('chain.p7b'),
      bytes('chain-pem.p7b'),
      toIndefinite(der.decode(bytes('chain.p7b')), 4),
    ]) {
      const c = await readPki(input);
      assert.equal(c.format, 'pkcs7');
      assert.deepEqual(c.certificates.map(sha1Thumbprint), expected);
    }
  });

  it('reads a CSR with challengePassword and extensionRequest, never showing the challenge', async () => {
    for (const input of [bytes('leaf.csr'), bytes('leaf-csr.der')]) {
      const c = await readPki(input);
      assert.equal(c.format, 'csr');
      assert.equal(c.csrs[0]!.challengePassword, 's3cret-challenge');
      const report = inspectContents(c);
      assert.equal(report.certificateRequests[0]!.subject, 'O=Contoso,CN=device-42');
      assert.deepEqual(report.certificateRequests[0]!.subjectAltNames, [
        { type: 'dns', value: 'device-42.contoso.com' },
        { type: 'email', value: 'd@contoso.com' },
      ]);
      assert.equal(report.certificateRequests[0]!.hasChallengePassword, true);
      assert.ok(!JSON.stringify(report).includes('s3cret'));
    }
  });

  it('reads private keys: PKCS#8 plain and encrypted, PKCS#1, SEC1, in DER and PEM', async () => {
    const cases: [string, string, number | string][] = [
      ['leaf.key', 'ec', 'P-256'],
      ['leaf-enc.pem', 'ec', 'P-256'],
      ['leaf-enc.der', 'ec', 'P-256'],
      ['ca-pkcs1.pem', 'rsa', 2048],
      ['ca-pkcs1.der', 'rsa', 2048],
      ['leaf-sec1.der', 'ec', 'P-256'],
      ['leaf-sec1.pem', 'ec', 'P-256'],
    ];
    for (const [name, type, size] of cases) {
      const c = await readPki(bytes(name), { password: 'key-pass' });
      assert.equal(c.format, 'key', name);
      assert.equal(c.keys[0]!.info.type, type, name);
      assert.equal(
        typeof size === 'number' ? c.keys[0]!.info.bits : c.keys[0]!.info.curve,
        size,
        name,
      );
    }
  });

  it('pairs a key with its certificate in a PEM bundle', async () => {
    const pem = Buffer.concat([
      readFileSync(f('ca.pem')),
      readFileSync(f('leaf.key')),
      readFileSync(f('leaf.pem')),
    ]);
    const report = inspectContents(await readPki(pem));
    assert.equal(report.privateKeys[0]!.matchesCertificate, true);
    assert.equal(report.privateKeys[0]!.certificateSha1, opensslSha1('leaf.pem'));
    assert.deepEqual(
      report.certificates.map((c) => c.hasPrivateKey),
      [false, true],
    );
  });

  it('gives a clear, coded error for every kind of bad input', async () => {
    await rejects(readPki(new Uint8Array(0)), 'ERR_PKI_EMPTY');
    await rejects(readPki(bytes('leaf.cer').subarray(0, 200)), 'ERR_PKI_TRUNCATED');
    await rejects(
      readPki(Buffer.from('hello, this is not a certificate\n')),
      'ERR_PKI_UNRECOGNIZED',
    );
    await rejects(readPki(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x05])), 'ERR_PKI_UNRECOGNIZED');
    const pem = readFileSync(f('leaf.pem'), 'latin1');
    await rejects(
      readPki(Buffer.from(pem.replace(/-----END CERTIFICATE-----\n?$/, ''))),
      'ERR_PKI_TRUNCATED',
    );
    await rejects(
      readPki(Buffer.from(pem.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!'))),
      'ERR_PKI_MALFORMED',
    );
    await rejects(
      readPki(Buffer.from('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')),
      'ERR_PKI_UNRECOGNIZED',
    );
    await rejects(readPki(bytes('leaf-enc.pem')), 'ERR_PKI_PASSWORD_REQUIRED');
    await rejects(readPki(bytes('leaf-enc.der'), { password: 'wrong' }), 'ERR_PKI_BAD_PASSWORD');
    await rejects(readPki(bytes('leaf-enc.pem'), { password: 'wrong' }), 'ERR_PKI_BAD_PASSWORD');
  });

  it('refuses more than MAX_BUNDLE_CERTIFICATES certificates in any format', async () => {
    const cert = bytes('leaf.cer');
    const many = (n: number) => Array.from({ length: n }, () => cert);
    const pem = (n: number) =>
      Buffer.from(
        many(n)
          .map((c) => encodePem('CERTIFICATE', c))
          .join(''),
      );
    assert.equal((await readPki(pem(MAX_BUNDLE_CERTIFICATES))).certificates.length, 1000);
    await rejects(readPki(pem(MAX_BUNDLE_CERTIFICATES + 1)), 'ERR_PKI_LIMIT');
    await rejects(readPki(der.concat(many(MAX_BUNDLE_CERTIFICATES + 1))), 'ERR_PKI_LIMIT');
    const certs = many(600).map((c) => parseCertificate(c));
    const p7 = encodePkcs7Certificates(certs);
    await rejects(
      readPki(Buffer.from(encodePem('PKCS7', p7) + encodePem('PKCS7', p7))),
      'ERR_PKI_LIMIT',
    );
    const p7big = encodePkcs7Certificates([...certs, ...certs]);
    await rejects(readPki(p7big), 'ERR_PKI_LIMIT');
    assert.throws(
      () => parseSignedData(p7big),
      (e) => isPkiError(e, 'ERR_PKI_LIMIT'),
    );
    const p12 = await encodePkcs12({ certificates: [...certs, ...certs] }, '', {
      iterations: 1,
    });
    await rejects(readPki(p12, { password: '' }), 'ERR_PKI_LIMIT');
  });

  it('refuses an encrypted key whose key derivation is over budget before OpenSSL runs it', async () => {
    // createPrivateKey derives the key on this thread with the file's own parameters: 2^24
    // PBKDF2 iterations held it for 2.8 s, so 2^31 for minutes.
    const { enc } = der;
    const encrypted = (kdf: Uint8Array) =>
      enc.seq(
        enc.seq(
          enc.oid('1.2.840.113549.1.5.13'), // PBES2
          enc.seq(kdf, enc.seq(enc.oid('2.16.840.1.101.3.4.1.42'), enc.octets(new Uint8Array(16)))),
        ),
        enc.octets(new Uint8Array(48)),
      );
    const pbkdf2 = (iterations: number) =>
      enc.seq(
        enc.oid('1.2.840.113549.1.5.12'),
        enc.seq(
          enc.octets(new Uint8Array(8)),
          enc.int(iterations),
          enc.seq(enc.oid('1.2.840.113549.2.9'), enc.null()),
        ),
      );
    const scrypt = (n: number, r: number, p: number) =>
      enc.seq(
        enc.oid('1.3.6.1.4.1.11591.4.11'),
        enc.seq(enc.octets(new Uint8Array(8)), enc.int(n), enc.int(r), enc.int(p)),
      );
    const t0 = performance.now();
    const huge = encrypted(pbkdf2(2 ** 31 - 1));
    await rejects(readPki(huge, { password: 'x' }), 'ERR_PKI_LIMIT');
    await rejects(
      readPki(Buffer.from(encodePem('ENCRYPTED PRIVATE KEY', huge)), { password: 'x' }),
      'ERR_PKI_LIMIT',
    );
    await rejects(readPki(encrypted(scrypt(2 ** 20, 8, 16)), { password: 'x' }), 'ERR_PKI_LIMIT');
    assert.ok(performance.now() - t0 < 200, 'refused without deriving');
    // Ordinary counts still reach OpenSSL, and a budget applies to real files too.
    await rejects(readPki(encrypted(pbkdf2(2048)), { password: 'x' }), 'ERR_PKI_BAD_PASSWORD');
    await rejects(
      readPki(bytes('leaf-enc.pem'), { password: 'key-pass', maxIterations: 1000 }),
      'ERR_PKI_LIMIT',
    );
  });
});

describe('writers: what we write, openssl reads', () => {
  it('PEM certificates', async () => {
    const c = await readPki(bytes('leaf.cer'));
    writeFileSync(f('ours.pem'), encodePem('CERTIFICATE', c.certificates[0]!.der));
    assert.equal(opensslSha1('ours.pem'), opensslSha1('leaf.cer', 'DER'));
    assert.equal(decodePem(readFileSync(f('ours.pem')))[0]!.label, 'CERTIFICATE');
  });

  it('PKCS#7 certs-only bundles', async () => {
    const c = await readPki(bytes('chain.p7b'));
    writeFileSync(f('ours.p7b'), encodePkcs7Certificates(c.certificates));
    const printed = openssl(
      'pkcs7',
      '-inform',
      'DER',
      '-in',
      'ours.p7b',
      '-print_certs',
    ).toString();
    assert.equal(printed.match(/BEGIN CERTIFICATE/g)?.length, 2);
    const again = await readPki(bytes('ours.p7b'));
    assert.deepEqual(again.certificates.map(sha1Thumbprint), c.certificates.map(sha1Thumbprint));
  });

  it('PKCS#8 keys, plain and encrypted (PBES2 AES-256)', async () => {
    const key = (await readPki(bytes('leaf.key'))).keys[0]!;
    writeFileSync(f('ours-plain.der'), exportPkcs8(key));
    writeFileSync(f('ours-enc.der'), exportPkcs8(key, 'new-pass'));
    const pub = (name: string, pass?: string) =>
      openssl(
        'pkey',
        '-inform',
        'DER',
        '-in',
        name,
        ...(pass ? ['-passin', `pass:${pass}`] : []),
        '-pubout',
      ).toString();
    assert.equal(pub('ours-plain.der'), pub('ours-enc.der', 'new-pass'));
    assert.match(
      openssl('asn1parse', '-inform', 'DER', '-in', 'ours-enc.der').toString(),
      /PBES2[\s\S]*aes-256-cbc/,
    );
    assert.equal(
      parsePrivateKeyDer(bytes('ours-enc.der'), 'encrypted-pkcs8', 'new-pass').info.curve,
      'P-256',
    );
  });
});
