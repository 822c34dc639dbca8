/**
 * Our SCEP client against the reference server, micromdm `scepserver` 2.1.0 (issue 4: the
 * device's SCEP client "must enroll against our SCEP server and against the reference server,
 * with AES and with 3DES"): `certpost scep caps|enroll|renew` as an operator runs them, and
 * the device agent's ClientCertificateInstall SCEP CSP. One scepserver serves the whole file
 * (src/testing/reference-scep.ts: its own openssl-made CA, loopback only, `-allowrenew 0`).
 *
 * Clients reach it through a recording relay in this process, so each test opens what went
 * over the wire: the request with the reference CA's key (cipher, message type, challenge),
 * the reply with the requester's key. What scepserver 2.1.0 does that shapes these tests
 * (../shared/docs/scep-reference.md §3): GetCACaps is a fixed list; every reply is enveloped
 * with single DES-CBC whatever the request used (our client opens DES and never sends it);
 * the static challenge is checked on every message, renewals included.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DeviceAgent } from '../device/agent.ts';
import { SCEP_STATUS } from '../device/state.ts';
import {
  recordingScepTransport,
  scepInstall,
  scepStatus,
  serverMessage,
  settle,
  summarise,
} from '../device/testing.ts';
import { decryptEnvelopedData } from '../pki/cms.ts';
import { encodePem } from '../pki/pem.ts';
import { parseCertificate, type Certificate } from '../pki/x509.ts';
import type { ScepTransportRequest } from '../scep/client.ts';
import { MessageType, openRequest, parsePkiMessage } from '../scep/message.ts';
import { startHttpRelay, type HttpRelay, type RelayedExchange } from '../testing/http-relay.ts';
import { startReferenceScep, type ReferenceScepServer } from '../testing/reference-scep.ts';
import { run, tempDir } from '../testing/tools.ts';

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const ENV = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CERTPOST_')),
);
const MINUTE = 40;
let reference: ReferenceScepServer;
let relay: HttpRelay;
let url = '';
let dir = '';
let caFile = '';
let ca: { certificate: Certificate; key: KeyObject };

before(async () => {
  dir = tempDir();
  reference = await startReferenceScep();
  relay = await startHttpRelay(new URL(reference.url).origin);
  url = `${relay.url}${new URL(reference.url).pathname}`;
  caFile = join(dir, 'reference-ca.pem');
  writeFileSync(caFile, reference.caCertPem);
  ca = {
    certificate: parseCertificate(new X509Certificate(reference.caCertPem).raw),
    key: createPrivateKey(reference.caKeyPem),
  };
});

after(async () => {
  await relay.close();
  await reference.stop();
});

/**
 * Runs `certpost ARGS…` in `dir`, asynchronously: the relay runs in this process, so a
 * synchronous spawn would starve it.
 */
function certpost(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: ENV });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out, err })));
}

/** `certpost scep enroll` of `CN=ref-NAME,O=certpost interop`, writing NAME.key and NAME.pem. */
const enroll = (name: string, ...args: string[]) =>
  certpost(
    'scep',
    'enroll',
    url,
    '--subject',
    `CN=ref-${name},O=certpost interop`,
    '--out-key',
    `${name}.key`,
    '--out-cert',
    `${name}.pem`,
    ...args,
  );

const openssl = (...args: string[]) => run('openssl', args, { cwd: dir }).toString();
const serial = (file: string) => openssl('x509', '-in', file, '-noout', '-serial');

/** The PKIOperations relayed since exchange number `from`. */
const pkiOperations = (from: number): RelayedExchange[] =>
  relay.exchanges.slice(from).filter((e) => e.url.includes('operation=PKIOperation'));

/**
 * A relayed PKIOperation, opened: the request with the reference CA's key; the reply, whose
 * CA signature parsePkiMessage verifies, with the requester's key (the reply is enveloped to
 * the certificate that signed the request, RFC 8894 §3.3.2).
 */
async function open(exchange: RelayedExchange, requesterKey: KeyObject) {
  const request = parsePkiMessage(exchange.body);
  const opened = await openRequest(request, ca);
  const reply = parsePkiMessage(exchange.response);
  assert.ok(reply.envelope, `a SUCCESS reply carries an envelope: ${reference.log()}`);
  const { cipher: replyCipher } = await decryptEnvelopedData(reply.envelope, {
    certificate: request.signerCertificate,
    key: requesterKey,
  });
  return { request, opened, replyCipher };
}

const keyOf = (file: string) => createPrivateKey(readFileSync(join(dir, file)));

/** The certificate verifies against the reference CA and carries the public half of `keyFile`. */
function assertIssuedFor(certFile: string, keyFile: string): void {
  assert.match(openssl('verify', '-CAfile', caFile, certFile), /: OK\n$/);
  assert.equal(
    openssl('x509', '-in', certFile, '-noout', '-pubkey'),
    openssl('pkey', '-in', keyFile, '-pubout'),
  );
}

describe('certpost scep against micromdm scepserver 2.1.0', () => {
  it('caps: the fixed 2.1.0 list and the reference CA', async () => {
    const r = await certpost('scep', 'caps', url, '--json');
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out) as {
      capabilities: string[];
      caCertificates: { subject: string; sha1: string }[];
    };
    assert.deepEqual(info.capabilities, [
      'Renewal',
      'SHA-1',
      'SHA-256',
      'AES',
      'DES3',
      'SCEPStandard',
      'POSTPKIOperation',
    ]);
    const sha1 = new X509Certificate(reference.caCertPem).fingerprint;
    assert.deepEqual(
      info.caCertificates.map((c) => [c.subject, c.sha1]),
      [['CN=interop test CA,OU=SCEP CA,O=scep-ca,C=US', sha1.replaceAll(':', '').toLowerCase()]],
    );
  });

  for (const [flag, cipher] of [
    [undefined, 'aes-128-cbc'], // SCEPStandard and AES are advertised
    ['aes', 'aes-128-cbc'],
    ['3des', 'des-ede3-cbc'],
  ] as const) {
    const name = flag ?? 'default';
    it(`enroll ${flag ? `--cipher ${flag}` : 'without --cipher'}: the request is ${cipher}, the DES reply opens, openssl verifies the certificate`, async () => {
      const from = relay.exchanges.length;
      const r = await enroll(
        name,
        '--challenge',
        reference.challenge,
        ...(flag ? ['--cipher', flag] : []),
        '--json',
      );
      assert.equal(r.code, 0, `${r.err}\n${reference.log()}`);
      assert.equal((JSON.parse(r.out) as { status: string }).status, 'issued');
      assertIssuedFor(`${name}.pem`, `${name}.key`);
      const [exchange, ...more] = pkiOperations(from);
      assert.ok(exchange && more.length === 0, 'one PKIOperation');
      assert.equal(exchange.method, 'POST');
      const { opened, replyCipher } = await open(exchange, keyOf(`${name}.key`));
      assert.equal(opened.messageType, MessageType.PKCSReq);
      assert.equal(opened.cipher, cipher);
      assert.ok('csr' in opened);
      assert.equal(opened.csr.challengePassword, reference.challenge);
      assert.equal(replyCipher, 'des-cbc');
    });
  }

  it('a wrong challenge: exit 8 with the failInfo, nothing written', async () => {
    const r = await enroll('wrong', '--challenge', 'not-the-challenge');
    assert.equal(r.code, 8, r.err);
    assert.equal(r.err, 'certpost: the CA refused the request: badRequest\n');
    assert.ok(!existsSync(join(dir, 'wrong.key')) && !existsSync(join(dir, 'wrong.pem')));
    assert.match(reference.log(), /invalid challenge/);
  });

  // scepserver 2.1.0 advertises Renewal and takes RenewalReq (17) down the PKCSReq path: it
  // wants the static challenge again and does not check the signer certificate
  // (micromdm/scep#117). So this shows our RenewalReq on the wire and a usable result, not
  // that the server authenticated the renewal (ours renews without a challenge, on the
  // strength of the signer: src/cli/scep.test.ts).
  it('renew: a RenewalReq signed by the current certificate, with --cipher 3des', async () => {
    const enrolled = await enroll('renew', '--challenge', reference.challenge);
    assert.equal(enrolled.code, 0, enrolled.err);
    const renew = [
      'scep',
      'renew',
      url,
      '--cert',
      'renew.pem',
      '--key',
      'renew.key',
      '--cipher',
      '3des',
      '--json',
    ];
    const refused = await certpost(...renew, '--out-cert', 'unused.pem');
    assert.equal(refused.code, 8, 'scepserver 2.1.0 wants the challenge on renewals too');

    const from = relay.exchanges.length;
    const r = await certpost(
      ...renew,
      '--challenge',
      reference.challenge,
      '--out-cert',
      'renewed.pem',
    );
    assert.equal(r.code, 0, `${r.err}\n${reference.log()}`);
    assertIssuedFor('renewed.pem', 'renew.key');
    assert.notEqual(serial('renewed.pem'), serial('renew.pem'));
    const [exchange] = pkiOperations(from);
    assert.ok(exchange);
    const { request, opened, replyCipher } = await open(exchange, keyOf('renew.key'));
    assert.equal(opened.messageType, MessageType.RenewalReq);
    assert.equal(opened.cipher, 'des-ede3-cbc');
    assert.ok(
      new X509Certificate(readFileSync(join(dir, 'renew.pem'))).raw.equals(
        request.signerCertificate.der,
      ),
      'signed by the current certificate',
    );
    assert.equal(replyCipher, 'des-cbc');
  });
});

describe('the device SCEP CSP against micromdm scepserver 2.1.0', () => {
  it('Exec Enroll through SyncML: Status 1, the certificate in My, verified by openssl', async () => {
    const requests: ScepTransportRequest[] = [];
    const agent = await DeviceAgent.open(tempDir(), {
      minuteMs: MINUTE,
      scepTransport: recordingScepTransport(requests),
    });
    try {
      const from = relay.exchanges.length;
      const thumbprint = new X509Certificate(reference.caCertPem).fingerprint.replaceAll(':', '');
      const r = summarise(
        await agent.handle(
          serverMessage(
            scepInstall('reference', {
              url,
              challenge: reference.challenge,
              cn: 'ref-device',
              thumbprint,
            }),
          ),
        ),
      );
      assert.equal(r.statuses[0], 'Atomic=200');
      await settle(agent, MINUTE);
      const s = await scepStatus(agent, 'reference');
      assert.equal(s.status, SCEP_STATUS.ok, reference.log());
      assert.equal(s.errorCode, 0);
      const mine = agent.certificates.list('device', 'My');
      assert.equal(mine.length, 1);
      assert.equal(s.thumbprint, mine[0]!.thumbprint);
      assert.ok(mine[0]!.keyId && agent.keys.find(mine[0]!.keyId), 'installed with its key');
      assert.deepEqual(
        requests.map((q) => q.operation),
        ['GetCACaps', 'GetCACert', 'PKIOperation'],
      );
      const [exchange] = pkiOperations(from);
      assert.ok(exchange);
      const opened = await openRequest(parsePkiMessage(exchange.body), ca);
      assert.equal(opened.cipher, 'aes-128-cbc');
      const pem = join(dir, 'device.pem');
      writeFileSync(pem, encodePem('CERTIFICATE', Buffer.from(mine[0]!.der, 'base64')));
      assert.match(openssl('verify', '-CAfile', caFile, pem), /: OK\n$/);
      // scepserver copies the CSR's subject and SANs into the certificate.
      assert.match(
        openssl('x509', '-in', pem, '-noout', '-subject', '-ext', 'subjectAltName'),
        /CN ?= ?ref-device[\s\S]*DNS:ref-device\.example\.test/,
      );
    } finally {
      await agent.close();
    }
  });
});
