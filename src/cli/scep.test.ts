/**
 * `certpost scep caps|enroll|renew` as an operator runs them against a running certpost
 * server: real processes, files checked with openssl.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnServe, type ServeProcess } from '../testing/serve-process.ts';
import { createSoftHsmToken, type SoftHsmToken } from '../testing/softhsm.ts';
import { run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);
let server: ServeProcess;
let url = '';
let dir = '';
let data = '';

function certpost(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV, cwd: dir });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const openssl = (...args: string[]) => run('openssl', args, { cwd: dir }).toString();
const pubkey = (args: string[]) => openssl(...args);

before(async () => {
  dir = tempDir();
  data = join(dir, 'data');
  server = await spawnServe(
    ['--data', data, '--scep-challenge', 'cli-secret', '--log-level', 'warn'],
    { env: ENV },
  );
  url = `${server.url}/scep`;
});

after(async () => {
  await server.stop('SIGKILL');
});

describe('certpost scep', () => {
  it('caps shows the capabilities and the CA chain', () => {
    const r = certpost('scep', 'caps', url, '--json');
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as {
      capabilities: string[];
      caCertificates: { subject: string }[];
    };
    assert.ok(info.capabilities.includes('POSTPKIOperation'));
    assert.equal(info.caCertificates.length, 2);
  });

  it('enrolls: writes a 0600 key and a certificate that carries it, then renews with a new serial', () => {
    const r = certpost(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=host-1.example.com,O=Example',
      '--challenge',
      'cli-secret',
      '--out-key',
      'host.key',
      '--out-cert',
      'host.pem',
      '--json',
    );
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout) as {
      status: string;
      certificate: { subject: string; serialNumber: string };
    };
    assert.equal(result.status, 'issued');
    assert.equal(result.certificate.subject, 'CN=host-1.example.com,O=Example'); // RFC 4514 in, RFC 4514 out
    assert.equal(statSync(join(dir, 'host.key')).mode & 0o777, 0o600);
    assert.equal(
      pubkey(['pkey', '-in', 'host.key', '-pubout']),
      pubkey(['x509', '-in', 'host.pem', '-noout', '-pubkey']),
    );

    const renewed = certpost(
      'scep',
      'renew',
      url,
      '--cert',
      'host.pem',
      '--key',
      'host.key',
      '--out-cert',
      'host2.pem',
      '--json',
    );
    assert.equal(renewed.code, 0, renewed.stderr);
    const second = JSON.parse(renewed.stdout) as {
      certificate: { subject: string; serialNumber: string };
    };
    assert.equal(second.certificate.subject, result.certificate.subject);
    assert.notEqual(second.certificate.serialNumber, result.certificate.serialNumber);
  });

  it('enrolls with an encrypted --key and its --key-password; renews onto a new key of the same kind', () => {
    openssl(
      'genpkey',
      '-algorithm',
      'RSA',
      '-pkeyopt',
      'rsa_keygen_bits:2048',
      '-aes256',
      '-pass',
      'pass:key-pw',
      '-out',
      'own.key',
    );
    const r = certpost(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=own-key',
      '--challenge',
      'cli-secret',
      '--key',
      'own.key',
      '--key-password',
      'key-pw',
      '--out-cert',
      'own.pem',
    );
    assert.equal(r.code, 0, r.stderr);
    const renewed = certpost(
      'scep',
      'renew',
      url,
      '--cert',
      'own.pem',
      '--key',
      'own.key',
      '--key-password',
      'key-pw',
      '--new-key',
      '--out-key',
      'own2.key',
      '--out-cert',
      'own2.pem',
    );
    assert.equal(renewed.code, 0, renewed.stderr);
    const newPub = pubkey(['x509', '-in', 'own2.pem', '-noout', '-pubkey']);
    assert.notEqual(newPub, pubkey(['x509', '-in', 'own.pem', '-noout', '-pubkey']));
    assert.equal(newPub, pubkey(['pkey', '-in', 'own2.key', '-passin', 'pass:key-pw', '-pubout']));
    assert.match(openssl('x509', '-in', 'own2.pem', '-noout', '-text'), /Public-Key: \(2048 bit\)/);
  });

  it('enrolls an EC key', () => {
    const r = certpost(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=ec-host',
      '--challenge',
      'cli-secret',
      '--key-type',
      'ec',
      '--out-key',
      'ec.key',
      '--out-cert',
      'ec.pem',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(openssl('x509', '-in', 'ec.pem', '-noout', '-text'), /ASN1 OID: prime256v1/);
  });

  it('waits while the request is pending and finishes once an administrator approves it', async () => {
    const challenge = (
      JSON.parse(
        certpost('challenge', 'create', '--data', data, '--profile', 'manual', '--json').stdout,
      ) as { challenge: string }
    ).challenge;
    const enroll = spawn(
      process.execPath,
      [
        BIN,
        'scep',
        'enroll',
        url,
        '--subject',
        'CN=held-host',
        '--challenge',
        challenge,
        '--out-key',
        'held.key',
        '--out-cert',
        'held.pem',
        '--retry-delay',
        '1s',
        '--retry-count',
        '30',
      ],
      { cwd: dir, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    enroll.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => enroll.on('exit', resolve));
    let id: string | undefined;
    for (let i = 0; i < 100 && !id; i++) {
      await new Promise((r) => setTimeout(r, 200));
      id = (
        JSON.parse(certpost('requests', 'list', '--data', data, '--json').stdout) as {
          requests: { id: string; subject: string }[];
        }
      ).requests.find((q) => q.subject === 'CN=held-host')?.id;
    }
    assert.ok(id, 'the request is held');
    assert.equal(certpost('requests', 'approve', '--data', data, id).code, 0);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /pending approval; asking again in 1 s/);
    assert.ok(existsSync(join(dir, 'held.pem')));
  });

  it('exits with distinct codes when refused, unreachable, or the CA is not the expected one', () => {
    const refused = certpost(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=x',
      '--challenge',
      'wrong',
      '--out-key',
      'x.key',
      '--out-cert',
      'x.pem',
    );
    assert.equal(refused.code, 8);
    assert.match(refused.stderr, /refused the request: badRequest/);
    assert.ok(
      !existsSync(join(dir, 'x.pem')) && !existsSync(join(dir, 'x.key')),
      'nothing written on failure',
    );
    const thumb = certpost(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=x',
      '--challenge',
      'cli-secret',
      '--out-key',
      'x.key',
      '--out-cert',
      'x.pem',
      '--ca-thumbprint',
      '00'.repeat(20),
    );
    assert.equal(thumb.code, 8);
    const down = certpost('scep', 'caps', 'http://127.0.0.1:1/scep');
    assert.equal(down.code, 10);
    assert.equal(
      certpost('scep', 'enroll', url, '--subject', 'CN=x', '--out-cert', 'x.pem').code,
      2,
      'a generated key must be kept',
    );
    const des = certpost(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=x',
      '--cipher',
      'des',
      '--out-key',
      'x.key',
      '--out-cert',
      'x.pem',
    );
    assert.equal(des.code, 2, 'single DES is not offered');
    assert.match(des.stderr, /Allowed choices are aes, 3des/);
  });
});

describe('certpost scep with a key in a PKCS#11 token (SoftHSM2)', () => {
  let hsm: SoftHsmToken;
  before(() => {
    hsm = createSoftHsmToken('scep-host');
    writeFileSync(join(dir, 'pin'), `${hsm.userPin}\n`, { mode: 0o600 });
  });
  after(() => hsm.remove());

  it('generates the key inside the token (--key-location), enrolls, and renews with the token key', () => {
    const uri = `pkcs11:token=scep-host;object=host-key?module-path=${hsm.module}`;
    const env = { ...ENV, SOFTHSM2_CONF: hsm.env['SOFTHSM2_CONF'] ?? '' };
    const run1 = (...args: string[]) => {
      const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, cwd: dir });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    };
    const r = run1(
      'scep',
      'enroll',
      url,
      '--subject',
      'CN=token-host.example.com',
      '--challenge',
      'cli-secret',
      '--key-location',
      uri,
      '--pkcs11-pin-file',
      'pin',
      '--out-cert',
      'token-host.pem',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /in the token/);
    // The certificate carries the token's public key; the private key is not extractable.
    const objects = hsm.pkcs11Tool([
      '--login',
      '--pin',
      hsm.userPin,
      '--list-objects',
      '--type',
      'privkey',
    ]);
    assert.match(objects, /label:\s+host-key/);
    assert.match(objects, /never extractable|Access:.*sensitive/);
    hsm.pkcs11Tool([
      '--read-object',
      '--type',
      'pubkey',
      '--label',
      'host-key',
      '--output-file',
      join(dir, 'tok.pub.der'),
    ]);
    const certKey = openssl('x509', '-in', 'token-host.pem', '-noout', '-pubkey');
    const tokenKey = openssl('pkey', '-pubin', '-inform', 'DER', '-in', 'tok.pub.der');
    assert.equal(certKey, tokenKey);

    const renewed = run1(
      'scep',
      'renew',
      url,
      '--cert',
      'token-host.pem',
      '--key',
      uri,
      '--pkcs11-pin-file',
      'pin',
      '--out-cert',
      'token-host-2.pem',
    );
    assert.equal(renewed.code, 0, renewed.stderr);
    assert.equal(openssl('x509', '-in', 'token-host-2.pem', '-noout', '-pubkey'), tokenKey);
    const wrongPin = run1(
      'scep',
      'renew',
      url,
      '--cert',
      'token-host.pem',
      '--key',
      uri,
      '--out-cert',
      'x.pem',
    );
    assert.notEqual(wrongPin.code, 0, 'no PIN: refused');
  });
});
