import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type EnvelopeCipher, type SignedDataDigest } from '../pki/cms.ts';
import { enc } from '../pki/der.ts';
import { parseCertificate, formatName, type Certificate } from '../pki/x509.ts';
import { run, tempDir } from '../testing/tools.ts';
import { FailInfo, SCEP_ERRORS, ScepError } from './errors.ts';
import {
  buildCertRep,
  buildPkiRequest,
  formatFailInfo,
  formatMessageType,
  formatPkiStatus,
  MessageType,
  openRequest,
  parseCertRep,
  parsePkiMessage,
  PkiStatus,
  replyCipher,
  type PkiMessage,
} from './message.ts';

const dir = tempDir();
const TESTDATA = new URL('testdata/', import.meta.url).pathname;

interface Identity {
  readonly certificate: Certificate;
  readonly key: KeyObject;
  readonly certFile: string;
  readonly keyFile: string;
}

function pemToDer(pem: string): Uint8Array {
  return Uint8Array.from(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64'));
}

function identity(name: string, subject: string, extra: readonly string[] = []): Identity {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.pem`);
  writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  run('openssl', [
    'req',
    '-x509',
    '-key',
    keyFile,
    '-subj',
    subject,
    '-days',
    '2',
    '-out',
    certFile,
    ...extra,
  ]);
  return {
    certificate: parseCertificate(pemToDer(readFileSync(certFile, 'utf8'))),
    key: privateKey,
    certFile,
    keyFile,
  };
}

const ca = identity('ca', '/O=certpost test/CN=SCEP test CA', [
  '-addext',
  'basicConstraints=critical,CA:TRUE',
  '-addext',
  'keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign,cRLSign',
]);
const device = identity('device', '/O=scep-client/CN=SCEP SIGNER');

function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/** A CSR with a challengePassword, from openssl. */
function csr(cn: string, challenge: string): Uint8Array {
  const config = file(
    `${cn}.cnf`,
    new TextEncoder().encode(
      `[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n` +
        `[dn]\nCN = ${cn}\n[attrs]\nchallengePassword = ${challenge}\n`,
    ),
  );
  const out = run('openssl', [
    'req',
    '-new',
    '-key',
    device.keyFile,
    '-config',
    config,
    '-outform',
    'DER',
  ]);
  return new Uint8Array(out);
}

/** Issues a one-day certificate for a DER CSR with openssl, as the CA (test stand-in for ca/). */
function issue(csrDer: Uint8Array, name: string): Certificate {
  const csrFile = join(dir, `${name}.csr`);
  writeFileSync(csrFile, csrDer);
  const out = run('openssl', [
    'x509',
    '-req',
    '-inform',
    'DER',
    '-in',
    csrFile,
    '-CA',
    ca.certFile,
    '-CAkey',
    ca.keyFile,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '1',
    '-outform',
    'DER',
  ]);
  return parseCertificate(new Uint8Array(out));
}

describe('SCEP codes', () => {
  it('every error code maps to a failInfo and a default text', () => {
    const values = new Set<number>(Object.values(FailInfo));
    for (const [code, m] of Object.entries(SCEP_ERRORS)) {
      assert.ok(values.has(m.failInfo), code);
      assert.ok(m.failInfoText.length > 0, code);
      const e = new ScepError(code as keyof typeof SCEP_ERRORS, 'detail for the log');
      assert.equal(e.failInfo, m.failInfo);
      assert.equal(e.failInfoText, m.failInfoText);
    }
  });

  it('formatters name known values and never throw on unknown ones', () => {
    assert.equal(formatMessageType(19), 'PKCSReq (19)');
    assert.equal(formatMessageType(18), 'unknown (18)');
    assert.equal(formatPkiStatus(3), 'PENDING (3)');
    assert.equal(formatPkiStatus(-1), 'unknown (-1)');
    assert.equal(formatFailInfo(2), 'badRequest (2)');
    assert.equal(formatFailInfo(99), 'unknown (99)');
  });

  it('answers DES with AES-128-CBC and everything else in kind', () => {
    assert.equal(replyCipher('des-cbc'), 'aes-128-cbc');
    assert.equal(replyCipher('des-ede3-cbc'), 'des-ede3-cbc');
    assert.equal(replyCipher('aes-256-cbc'), 'aes-256-cbc');
  });
});

describe('pkiMessage round trips', () => {
  const base = {
    transactionId: 'tx-1',
    signer: device,
    recipient: ca.certificate,
    cipher: 'aes-128-cbc' as const,
    digest: 'sha256' as const,
  };

  it('PKCSReq: parse, verify, decrypt, CSR with the challenge', async () => {
    const nonce = randomBytes(16);
    const bytes = await buildPkiRequest({
      ...base,
      messageType: MessageType.PKCSReq,
      senderNonce: nonce,
      content: csr('round-trip', 'secret'),
    });
    const msg = parsePkiMessage(bytes);
    assert.equal(msg.messageType, 19);
    assert.equal(msg.transactionId, 'tx-1');
    assert.deepEqual(Buffer.from(msg.senderNonce), nonce);
    assert.equal(msg.digestAlgorithm, 'sha256');
    assert.deepEqual(msg.signerCertificate.der, device.certificate.der);
    const opened = await openRequest(msg, ca);
    assert.equal(opened.messageType, MessageType.PKCSReq);
    assert.equal(opened.cipher, 'aes-128-cbc');
    assert.ok('csr' in opened);
    assert.equal(opened.csr.challengePassword, 'secret');
  });

  it('CertPoll and GetCert decode their messageData', async () => {
    const poll = await buildPkiRequest({
      ...base,
      messageType: MessageType.CertPoll,
      senderNonce: randomBytes(16),
      content: enc.seq(ca.certificate.subject.der, device.certificate.subject.der),
    });
    const p = await openRequest(parsePkiMessage(poll), ca);
    assert.ok('issuerAndSubject' in p);
    assert.equal(formatName(p.issuerAndSubject.subject), formatName(device.certificate.subject));
    const get = await buildPkiRequest({
      ...base,
      messageType: MessageType.GetCert,
      senderNonce: randomBytes(16),
      content: enc.seq(ca.certificate.subject.der, enc.uint(Uint8Array.of(0x00, 0x81, 7))),
    });
    const g = await openRequest(parsePkiMessage(get), ca);
    assert.ok('issuerAndSerial' in g);
    assert.deepEqual(Buffer.from(g.issuerAndSerial.serial), Buffer.from([0x81, 7]));
  });

  it('a tampered request is a ScepError badMessageCheck that still carries the transaction', async () => {
    const bytes = await buildPkiRequest({
      ...base,
      messageType: MessageType.PKCSReq,
      senderNonce: randomBytes(16),
      content: csr('tamper', 'secret'),
    });
    const tampered = Uint8Array.from(bytes);
    tampered[tampered.length - 40] = tampered[tampered.length - 40]! ^ 1; // inside the signature
    assert.throws(
      () => parsePkiMessage(tampered),
      (e: unknown) =>
        e instanceof ScepError &&
        e.code === 'ERR_SCEP_BAD_MESSAGE_CHECK' &&
        e.failInfo === FailInfo.badMessageCheck &&
        e.context.transactionId === 'tx-1',
    );
  });

  it('bytes that are not a SignedData are a PkiError (HTTP 400), not a ScepError', () => {
    assert.throws(() => parsePkiMessage(new TextEncoder().encode('hello')), { name: 'PkiError' });
  });

  it('an envelope for another CA is badMessageCheck; a CertRep sent as a request is unsupported', async () => {
    const other = identity('other-ca', '/CN=other CA');
    const bytes = await buildPkiRequest({
      ...base,
      recipient: other.certificate,
      messageType: MessageType.PKCSReq,
      senderNonce: randomBytes(16),
      content: csr('other', 'secret'),
    });
    await assert.rejects(async () => openRequest(parsePkiMessage(bytes), ca), {
      code: 'ERR_SCEP_BAD_MESSAGE_CHECK',
      message: 'cannot decrypt the envelope',
    });
    const rep = await certRep(PkiStatus.PENDING);
    await assert.rejects(async () => openRequest(parsePkiMessage(rep), ca), {
      code: 'ERR_SCEP_UNSUPPORTED_MESSAGE',
    });
  });

  function certRep(
    status: PkiStatus,
    extra: { issued?: Certificate[]; cipher?: EnvelopeCipher; digest?: SignedDataDigest } = {},
  ): Promise<Uint8Array> {
    return buildCertRep({
      status,
      ...(status === PkiStatus.FAILURE
        ? { failInfo: FailInfo.badRequest, failInfoText: 'challenge refused' }
        : {}),
      transactionId: 'tx-1',
      recipientNonce: Buffer.alloc(16, 1),
      senderNonce: Buffer.alloc(16, 2),
      requesterCertificate: device.certificate,
      cipher: extra.cipher ?? 'aes-128-cbc',
      digest: extra.digest ?? 'sha256',
      ca,
      ...(extra.issued ? { issued: extra.issued } : {}),
    });
  }

  it('CertRep SUCCESS: openssl verifies it and decrypts the certs-only envelope; so do we', async () => {
    const issued = issue(csr('issued', 'secret'), 'issued');
    const bytes = await certRep(PkiStatus.SUCCESS, { issued: [issued] });
    const envelope = run('openssl', [
      'cms',
      '-verify',
      '-noverify',
      '-inform',
      'DER',
      '-in',
      file('rep.der', bytes),
    ]);
    const p7 = run('openssl', [
      'cms',
      '-decrypt',
      '-inform',
      'DER',
      '-in',
      file('env.der', envelope),
      '-recip',
      device.certFile,
      '-inkey',
      device.keyFile,
    ]);
    const printed = run('openssl', [
      'pkcs7',
      '-inform',
      'DER',
      '-print_certs',
      '-in',
      file('p7.der', p7),
    ]);
    assert.match(printed.toString(), /subject=CN ?= ?issued/);
    const rep = await parseCertRep(bytes, device, [ca.certificate]);
    assert.equal(rep.status, PkiStatus.SUCCESS);
    assert.equal(rep.transactionId, 'tx-1');
    assert.deepEqual(Buffer.from(rep.recipientNonce!), Buffer.alloc(16, 1));
    assert.deepEqual(
      rep.certificates.map((c) => c.der),
      [issued.der],
    );
    assert.equal(rep.cipher, 'aes-128-cbc');
  });

  it('CertRep FAILURE and PENDING carry no envelope; FAILURE has failInfo and failInfoText', async () => {
    const fail = await parseCertRep(await certRep(PkiStatus.FAILURE), device);
    assert.equal(fail.status, PkiStatus.FAILURE);
    assert.equal(fail.failInfo, FailInfo.badRequest);
    assert.equal(fail.failInfoText, 'challenge refused');
    assert.deepEqual(fail.certificates, []);
    const pending = parsePkiMessage(await certRep(PkiStatus.PENDING));
    assert.equal(pending.pkiStatus, PkiStatus.PENDING);
    assert.equal(pending.envelope, null);
    assert.equal(pending.failInfo, undefined);
  });

  it('parseCertRep refuses a CertRep signed by someone else than the given CA', async () => {
    const bytes = await certRep(PkiStatus.PENDING);
    await assert.rejects(async () => parseCertRep(bytes, device, [device.certificate]), {
      code: 'ERR_SCEP_BAD_MESSAGE_CHECK',
    });
  });
});

describe('captured micromdm scepclient 2.1.0 PKCSReq (testdata/)', () => {
  it('parses, verifies and decrypts to a CSR carrying the challenge', async () => {
    const capturedCa = {
      certificate: parseCertificate(pemToDer(readFileSync(join(TESTDATA, 'ca.pem'), 'utf8'))),
      key: createPrivateKey(readFileSync(join(TESTDATA, 'ca.key'))),
    };
    const msg = parsePkiMessage(readFileSync(join(TESTDATA, 'pkcsreq-micromdm-2.1.0.der')));
    assert.equal(msg.messageType, MessageType.PKCSReq);
    assert.match(msg.transactionId, /^[A-Za-z0-9+/]{27}=$/);
    assert.equal(msg.senderNonce.length, 16);
    assert.equal(msg.digestAlgorithm, 'sha1');
    assert.match(formatName(msg.signerCertificate.subject), /CN ?= ?SCEP SIGNER/);
    const opened = await openRequest(msg, capturedCa);
    assert.equal(opened.cipher, 'des-cbc');
    assert.ok('csr' in opened);
    assert.equal(opened.csr.challengePassword, 'secret');
    assert.match(formatName(opened.csr.subject), /CN ?= ?test-device/);
    await assert.rejects(async () => openRequest(msg, ca), { code: 'ERR_SCEP_BAD_MESSAGE_CHECK' });
  });
});

// ---------------------------------------------------------------------------------------------
// micromdm scepclient 2.1.0 against a stub server that answers with our CertRep.

const execFileP = promisify(execFile);

interface Reply {
  readonly status: PkiStatus;
  readonly cipher?: EnvelopeCipher;
  readonly digest: SignedDataDigest;
}

interface Exchange {
  request?: PkiMessage;
  body?: Uint8Array;
  reply: Reply;
}

describe('micromdm scepclient interop', () => {
  let server: Server;
  let port = 0;
  const exchanges = new Map<string, Exchange>();

  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const ex = exchanges.get(url.pathname.split('/')[1] ?? '');
      const op = url.searchParams.get('operation');
      if (!ex) return void res.writeHead(404).end();
      if (op === 'GetCACert') {
        res
          .writeHead(200, { 'Content-Type': 'application/x-x509-ca-cert' })
          .end(ca.certificate.der);
      } else if (op === 'GetCACaps') {
        res
          .writeHead(200, { 'Content-Type': 'text/plain' })
          .end('POSTPKIOperation\nSHA-256\nAES\nDES3\nSCEPStandard\nRenewal');
      } else if (op === 'PKIOperation' && req.method === 'POST') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          void (async () => {
            const body = new Uint8Array(Buffer.concat(chunks));
            ex.body = body;
            const msg = parsePkiMessage(body);
            ex.request = msg;
            const opened = await openRequest(msg, ca);
            const r = ex.reply;
            const rep = await buildCertRep({
              status: r.status,
              ...(r.status === PkiStatus.FAILURE
                ? { failInfo: FailInfo.badRequest, failInfoText: 'challenge refused' }
                : {}),
              ...(r.status === PkiStatus.SUCCESS && 'csr' in opened
                ? { issued: [issue(opened.csr.der, `sc-${randomBytes(6).toString('hex')}`)] }
                : {}),
              transactionId: msg.transactionId,
              recipientNonce: msg.senderNonce,
              senderNonce: randomBytes(16),
              requesterCertificate: msg.signerCertificate,
              cipher: r.cipher ?? replyCipher(opened.cipher),
              digest: r.digest,
              ca,
            });
            res.writeHead(200, { 'Content-Type': 'application/x-pki-message' }).end(rep);
          })().catch((e: unknown) => {
            res.writeHead(500).end(String(e));
          });
        });
      } else res.writeHead(400).end();
      return undefined;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(() => server.close());

  /** Runs scepclient in its own directory against the stub path `name`. */
  async function enroll(name: string, reply: Reply) {
    const ex: Exchange = { reply };
    exchanges.set(name, ex);
    const cwd = tempDir(`scepclient-${name}-`);
    const args = [
      '-server-url',
      `http://127.0.0.1:${port}/${name}/scep`,
      '-challenge',
      'secret',
      '-private-key',
      'key.pem',
      '-certificate',
      'cert.pem',
      '-cn',
      `test-device-${name}`,
    ];
    let code = 0;
    let output = '';
    try {
      const r = await execFileP('scepclient', args, { cwd, timeout: 15_000 });
      output = r.stdout + r.stderr;
    } catch (e) {
      const err = e as { code?: number | string; stdout?: string; stderr?: string };
      if (err.code === 'ENOENT')
        throw new Error('scepclient is not installed: apt-get install scep', { cause: e });
      code = typeof err.code === 'number' ? err.code : 1;
      output = (err.stdout ?? '') + (err.stderr ?? '');
    }
    return { ex, cwd, code, output };
  }

  async function assertPkcsReq(ex: Exchange) {
    const msg = ex.request!;
    assert.equal(msg.messageType, MessageType.PKCSReq);
    assert.match(msg.transactionId, /^[A-Za-z0-9+/]{27}=$/);
    assert.equal(msg.senderNonce.length, 16);
    assert.equal(msg.digestAlgorithm, 'sha1');
    assert.match(formatName(msg.signerCertificate.subject), /CN ?= ?SCEP SIGNER/);
    const opened = await openRequest(msg, ca);
    assert.equal(opened.cipher, 'des-cbc');
    assert.ok('csr' in opened);
    assert.equal(opened.csr.challengePassword, 'secret');
  }

  for (const reply of [
    { status: PkiStatus.SUCCESS, digest: 'sha256' }, // DES request → AES-128-CBC
    { status: PkiStatus.SUCCESS, digest: 'sha1', cipher: 'des-ede3-cbc' },
    { status: PkiStatus.SUCCESS, digest: 'sha512', cipher: 'aes-256-cbc' },
  ] as const satisfies readonly Reply[]) {
    const name = `${reply.cipher ?? 'reply'}-${reply.digest}`;
    it(`accepts our CertRep SUCCESS (${reply.cipher ?? 'replyCipher(des-cbc)'}, ${reply.digest})`, async () => {
      const { ex, cwd, code, output } = await enroll(name, reply);
      assert.equal(code, 0, output);
      await assertPkcsReq(ex);
      assert.ok(existsSync(join(cwd, 'cert.pem')), output);
      const subject = run('openssl', ['x509', '-noout', '-subject', '-in', join(cwd, 'cert.pem')]);
      assert.match(subject.toString(), new RegExp(`CN ?= ?test-device-${name}`));
    });
  }

  it('reports our CertRep FAILURE badRequest', async () => {
    const { ex, cwd, code, output } = await enroll('failure', {
      status: PkiStatus.FAILURE,
      digest: 'sha256',
    });
    await assertPkcsReq(ex);
    assert.notEqual(code, 0);
    assert.match(output, /badRequest/);
    assert.equal(existsSync(join(cwd, 'cert.pem')), false);
  });
});
