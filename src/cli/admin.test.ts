/** The administration commands as an operator runs them: real processes on a data directory. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { parseRfc4514 } from '../ca/name.ts';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import { openContext } from '../server/context.ts';
import { run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);

function certpost(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

it('a CA with a file missing is reported as damaged, not as "no CA"', () => {
  const data = join(tempDir(), 'data');
  assert.equal(certpost('ca', 'init', '--data', data).code, 0);
  rmSync(join(data, 'ca', 'issuing.key'));
  const r = certpost('challenge', 'create', '--data', data);
  assert.notEqual(r.code, 0);
  assert.doesNotMatch(r.stderr, /no CA in/);
  assert.match(r.stderr, /issuing\.key/);
});

it('ca init, challenge create and requests, with clear errors', () => {
  const data = join(tempDir(), 'data');
  const none = certpost('challenge', 'create', '--data', data);
  assert.equal(none.code, 3);
  assert.match(none.stderr, /no CA in .*certpost ca init/);

  const badSubject = certpost('ca', 'init', '--data', data, '--root-subject', 'Contoso Root');
  assert.equal(badSubject.code, 2);
  assert.match(badSubject.stderr, /--root-subject: "Contoso Root" is not an RFC 4514 name/);
  assert.equal(existsSync(join(data, 'ca')), false);
  const subject = ['--issuing-subject', 'CN=Contoso Issuing CA,O=Contoso'];
  const init = certpost('ca', 'init', '--data', data, '--json', ...subject);
  assert.equal(init.code, 0, init.stderr);
  const { certificates } = JSON.parse(init.stdout) as {
    certificates: { subject: string; sha1: string }[];
  };
  assert.deepEqual(
    certificates.map((c) => c.subject),
    ['CN=certpost root CA,O=certpost', 'CN=Contoso Issuing CA,O=Contoso'],
  );
  assert.equal(statSync(join(data, 'ca', 'passphrase')).mode & 0o777, 0o600);
  const again = certpost('ca', 'init', '--data', data);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /already has a CA/);

  const plain = certpost('challenge', 'create', '--data', data);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /^[A-Za-z0-9_-]{32}\n$/);
  const json = certpost(
    'challenge',
    'create',
    '--data',
    data,
    '--profile',
    'manual',
    '--subject',
    'CN=device-1',
    '--ttl',
    '2h',
    '--json',
  );
  assert.equal(json.code, 0, json.stderr);
  const c = JSON.parse(json.stdout) as {
    challenge: string;
    profile: string;
    subject: string;
    expiresAt: string;
  };
  assert.equal(c.profile, 'manual');
  assert.equal(c.subject, 'CN=device-1');
  assert.ok(Math.abs(new Date(c.expiresAt).getTime() - Date.now() - 7_200_000) < 60_000);
  assert.equal(certpost('challenge', 'create', '--data', data, '--profile', 'nope').code, 2);
  assert.equal(certpost('challenge', 'create', '--data', data, '--ttl', 'soon').code, 2);

  const list = certpost('requests', 'list', '--data', data, '--json');
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual(JSON.parse(list.stdout), { requests: [] });
  const approve = certpost('requests', 'approve', '--data', data, 'no-such-id');
  assert.equal(approve.code, 3);
  assert.match(approve.stderr, /does not exist or is not pending/);
});

it('ca import takes an openssl-made CA from a PFX, and refuses a certificate that is not a CA', () => {
  const dir = tempDir();
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-subj',
    '/CN=Imported CA/O=Contoso',
    '-days',
    '365',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign',
    '-out',
    'ca.pem',
  );
  openssl(
    'pkcs12',
    '-export',
    '-inkey',
    'ca.key',
    '-in',
    'ca.pem',
    '-passout',
    'pass:pfx-pass',
    '-out',
    'ca.pfx',
  );
  const data = join(dir, 'data');
  const r = certpost(
    'ca',
    'import',
    join(dir, 'ca.pfx'),
    '--data',
    data,
    '--password',
    'pfx-pass',
    '--json',
  );
  assert.equal(r.code, 0, r.stderr);
  const subjects = (
    JSON.parse(r.stdout) as { certificates: { subject: string }[] }
  ).certificates.map((c) => c.subject);
  assert.ok(subjects.includes('O=Contoso,CN=Imported CA'), subjects.join('; '));
  assert.equal(
    certpost('ca', 'import', join(dir, 'ca.pfx'), '--data', data, '--password', 'pfx-pass').code,
    2,
    'a second CA is refused',
  );

  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    'leaf.key',
    '-subj',
    '/CN=not a CA',
    '-days',
    '30',
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-out',
    'leaf.pem',
  );
  writeFileSync(
    join(dir, 'leaf-with-key.pem'),
    readFileSync(join(dir, 'leaf.pem'), 'utf8') + readFileSync(join(dir, 'leaf.key'), 'utf8'),
  );
  const bad = certpost(
    'ca',
    'import',
    join(dir, 'leaf-with-key.pem'),
    '--data',
    join(dir, 'data2'),
  );
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /not a CA|CA certificate/i);
});

it('certificates list and revoke, with the revocation in the CRL', async () => {
  const data = join(tempDir(), 'data');
  assert.equal(certpost('ca', 'init', '--data', data, '--key-type', 'ec').code, 0);
  // Issue one certificate through the enrollment service, as a SCEP request would.
  const ctx = await openContext({ dataDir: data });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const secret = JSON.parse(certpost('challenge', 'create', '--data', data, '--json').stdout) as {
    challenge: string;
  };
  const csr = parseCsr(
    await buildCsr({
      subject: parseRfc4514('CN=listed-device'),
      key: privateKey,
      challengePassword: secret.challenge,
    }),
  );
  const outcome = await ctx.enrollment.enroll({
    transactionId: 't1',
    csr,
    signer: ctx.ca.root.certificate,
    renewalRequested: false,
  });
  await ctx.close();
  assert.equal(outcome.status, 'issued');

  const list = JSON.parse(certpost('certificates', 'list', '--data', data, '--json').stdout) as {
    certificates: { serial: string; subject: string; revoked: unknown }[];
  };
  assert.equal(list.certificates.length, 1);
  assert.equal(list.certificates[0]!.subject, 'CN=listed-device');
  assert.equal(list.certificates[0]!.revoked, null);
  const serial = list.certificates[0]!.serial;
  const revoke = certpost(
    'certificates',
    'revoke',
    serial,
    '--data',
    data,
    '--reason',
    'keyCompromise',
  );
  assert.equal(revoke.code, 0, revoke.stderr);
  assert.equal(
    certpost('certificates', 'revoke', serial, '--data', data).code,
    3,
    'already revoked',
  );
  const revoked = JSON.parse(
    certpost('certificates', 'list', '--data', data, '--revoked', '--json').stdout,
  ) as { certificates: { revoked: { reason: string } }[] };
  assert.equal(revoked.certificates[0]!.revoked.reason, 'keyCompromise');
  const ctx2 = await openContext({ dataDir: data });
  const crl = await ctx2.enrollment.currentCrl();
  await ctx2.close();
  const crlFile = join(data, 'test.crl');
  writeFileSync(crlFile, crl);
  assert.match(
    run('openssl', ['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']).toString(),
    new RegExp(`Serial Number: ${serial.toUpperCase()}[\\s\\S]*Key Compromise`),
  );
});
