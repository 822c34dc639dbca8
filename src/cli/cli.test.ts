/**
 * The `certpost` command as users and outside checks run it: a real process, real files.
 * The stable interface (issue 2): `certpost inspect FILE [--password P] --json` exits 0 with
 * the JSON report, or non-zero with exactly one line on stderr.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
let dir = '';
/** No password from the environment: tests say explicitly which password they pass. */
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);
const f = (name: string) => join(dir, name);

function certpost(args: readonly string[], input?: string) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    input,
    encoding: 'utf8',
    env: ENV,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const openssl = (...args: string[]) => run('openssl', args, { cwd: dir }).toString();
const fingerprint = (file: string, alg: string) =>
  /=(.*)$/m
    .exec(openssl('x509', '-in', file, '-noout', '-fingerprint', `-${alg}`))![1]!
    .replaceAll(':', '')
    .toLowerCase();

before(() => {
  dir = tempDir();
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-subj',
    '/CN=CLI Root/O=certpost',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-out',
    'ca.pem',
  );
  // The user's S/MIME certificate, issued by the root (so it is an end entity).
  openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'user.key',
    '-subj',
    '/CN=Tom/emailAddress=tom@example.com',
    '-out',
    'user.csr',
  );
  writeFileSync(
    f('user.ext'),
    'extendedKeyUsage=emailProtection,clientAuth\nsubjectAltName=email:tom@example.com\n',
  );
  openssl(
    'x509',
    '-req',
    '-in',
    'user.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-days',
    '30',
    '-extfile',
    'user.ext',
    '-out',
    'user.pem',
  );
  openssl(
    'pkcs12',
    '-export',
    '-inkey',
    'user.key',
    '-in',
    'user.pem',
    '-certfile',
    'ca.pem',
    '-name',
    'Tom S/MIME',
    '-passout',
    'pass:pfx-pass',
    '-out',
    'user.pfx',
  );
  writeFileSync(f('garbage.cer'), 'this is not a certificate\n');
  writeFileSync(f('empty.cer'), '');
  writeFileSync(f('truncated.pfx'), readFileSync(f('user.pfx')).subarray(0, 300));
});

describe('certpost inspect', () => {
  it('prints the stable JSON report for a PKCS#12 file', () => {
    const r = certpost(['inspect', 'user.pfx', '--password', 'pfx-pass', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.format, 'pkcs12');
    assert.equal(report.certificates.length, 2);
    const [user, ca] = report.certificates;
    assert.equal(user.subject, 'emailAddress=tom@example.com,CN=Tom');
    assert.equal(user.sha1, fingerprint('user.pem', 'sha1'));
    assert.equal(user.sha256, fingerprint('user.pem', 'sha256'));
    assert.deepEqual(user.publicKey, { type: 'ec', curve: 'P-256', bits: 256 });
    assert.deepEqual(
      user.extendedKeyUsage.map((e: { name: string }) => e.name),
      ['emailProtection', 'clientAuth'],
    );
    assert.deepEqual(user.subjectAltNames, [{ type: 'email', value: 'tom@example.com' }]);
    assert.equal(user.role, 'end-entity');
    assert.equal(user.friendlyName, 'Tom S/MIME');
    assert.equal(ca.role, 'root');
    assert.equal(ca.selfSigned, true);
    assert.equal(ca.isCA, true);
    assert.equal(ca.sha256, fingerprint('ca.pem', 'sha256'));
    for (const key of ['serialNumber', 'notBefore', 'notAfter', 'keyUsage', 'issuer'])
      assert.ok(key in user, key);
    assert.deepEqual(report.privateKeys, [
      {
        type: 'ec',
        curve: 'P-256',
        bits: 256,
        matchesCertificate: true,
        certificateSha1: user.sha1,
        friendlyName: 'Tom S/MIME',
      },
    ]);
  });

  it('says whether each chain reaches a trusted root', () => {
    const judged = (args: string[]) => {
      const r = certpost(['inspect', 'user.pfx', '--password', 'pfx-pass', '--json', ...args]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).certificates.map(
        (c: { trust: { trusted: boolean; summary: string } }) => c.trust,
      );
    };
    // A root inside the file is not trusted for being there.
    const untrusted = judged(['--no-system-trust']);
    assert.deepEqual(
      untrusted.map((t: { trusted: boolean }) => t.trusted),
      [false, false],
    );
    assert.match(untrusted[0].summary, /not trusted: .*CLI Root.*not among the trusted/);
    const trusted = judged(['--no-system-trust', '--trust', 'ca.pem']);
    assert.deepEqual(
      trusted.map((t: { trusted: boolean }) => t.trusted),
      [true, true],
    );
    assert.equal(
      trusted[0].summary,
      'trusted: emailAddress=tom@example.com,CN=Tom → O=certpost,CN=CLI Root',
    );
    // The system store (Debian ca-certificates) is used by default.
    const isrg = certpost([
      'inspect',
      '/usr/share/ca-certificates/mozilla/ISRG_Root_X1.crt',
      '--json',
    ]);
    assert.equal(JSON.parse(isrg.stdout).certificates[0].trust.trusted, true);
  });

  it('prints a readable text report', () => {
    const r = certpost(['inspect', 'ca.pem']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Certificate 1 of 1: root CA \(self-signed\)/);
    assert.match(r.stdout, new RegExp(`SHA-256 thumbprint:\\s+${fingerprint('ca.pem', 'sha256')}`));
    assert.match(r.stdout, /Public key:\s+RSA 2048 bits/);
  });

  it('reads standard input', () => {
    const r = certpost(['inspect', '-', '--json'], readFileSync(f('ca.pem'), 'utf8'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).certificates[0].sha1, fingerprint('ca.pem', 'sha1'));
  });

  it('fails with one line on stderr and a meaningful exit code', () => {
    const cases: [string[], number, RegExp][] = [
      [['inspect', 'user.pfx', '--password', 'wrong', '--json'], 4, /password is wrong|MAC/],
      [['inspect', 'user.pfx', '--json'], 4, /password is required/],
      [['inspect', 'garbage.cer', '--json'], 3, /not a certificate/],
      [['inspect', 'empty.cer', '--json'], 3, /empty/],
      [['inspect', 'truncated.pfx', '--password', 'pfx-pass', '--json'], 3, /truncated/],
      [['inspect', 'missing.cer', '--json'], 3, /no such file/],
      [['inspect'], 2, /missing required argument/],
    ];
    for (const [args, code, message] of cases) {
      const r = certpost(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stdout, '', args.join(' '));
      const lines = r.stderr
        .trim()
        .split('\n')
        .filter((l) => !l.startsWith('(run with --help'));
      assert.equal(lines.length, 1, `${args.join(' ')}: one line expected, got ${r.stderr}`);
      assert.match(lines[0]!, message, args.join(' '));
    }
  });

  it('has --help on every command', () => {
    for (const args of [
      ['--help'],
      ['inspect', '--help'],
      ['convert', '--help'],
      ['serve', '--help'],
    ]) {
      const r = certpost(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /Usage: certpost/);
    }
  });
});

describe('certpost convert', () => {
  it('writes PEM, DER, P7B and PFX that openssl reads', () => {
    const sha = fingerprint('user.pem', 'sha256');
    assert.equal(
      certpost(['convert', 'user.pfx', '--password', 'pfx-pass', '--to', 'pem', '--out', 'out.pem'])
        .code,
      0,
    );
    assert.equal(fingerprint('out.pem', 'sha256'), sha);
    assert.equal(certpost(['convert', 'user.pem', '--to', 'der', '--out', 'out.cer']).code, 0);
    assert.match(
      openssl('x509', '-inform', 'DER', '-in', 'out.cer', '-noout', '-subject'),
      /CN = Tom/,
    );
    assert.equal(
      certpost(['convert', 'user.pfx', '--password', 'pfx-pass', '--to', 'p7b', '--out', 'out.p7b'])
        .code,
      0,
    );
    assert.equal(
      openssl('pkcs7', '-inform', 'DER', '-in', 'out.p7b', '-print_certs').match(
        /BEGIN CERTIFICATE/g,
      )?.length,
      2,
    );
    for (const profile of ['modern', 'compat']) {
      const r = certpost([
        'convert',
        'user.pfx',
        '--password',
        'pfx-pass',
        '--to',
        'pfx',
        '--pfx-profile',
        profile,
        '--out-password',
        'new-pass',
        '--out',
        `out-${profile}.pfx`,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const info = spawnSync(
        'openssl',
        ['pkcs12', '-in', `out-${profile}.pfx`, '-passin', 'pass:new-pass', '-nodes', '-info'],
        { cwd: dir, encoding: 'utf8' },
      );
      assert.equal(info.status, 0, info.stderr);
      const infoText = info.stdout + info.stderr; // -info prints the algorithms on stderr
      assert.match(infoText, /friendlyName: Tom S\/MIME/);
      assert.match(
        infoText,
        profile === 'modern' ? /AES-256-CBC/ : /pbeWithSHA1And3-KeyTripleDES-CBC/,
      );
    }
  });

  it('writes nothing when the conversion cannot be done', () => {
    const listing = readdirSync(dir).toSorted();
    const cases: [string[], number][] = [
      [['convert', 'user.pfx', '--password', 'pfx-pass', '--to', 'der', '--out', 'x.cer'], 2], // two certificates
      [['convert', 'ca.pem', '--to', 'pfx', '--out-password', 'p', '--out', 'x.pfx'], 2], // no key
      [['convert', 'user.pfx', '--password', 'bad', '--to', 'pem', '--out', 'x.pem'], 4],
      [['convert', 'garbage.cer', '--to', 'pem', '--out', 'x.pem'], 3],
      [['convert', 'ca.pem', '--to', 'xml', '--out', 'x.xml'], 2],
    ];
    for (const [args, code] of cases) {
      const r = certpost(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.deepEqual(readdirSync(dir).toSorted(), listing);
    assert.ok(!existsSync(f('x.cer')));
  });
});
