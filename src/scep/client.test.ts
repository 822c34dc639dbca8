/**
 * The SCEP client against the real server (layer (c) of style.md principle 12: our client
 * against our server): RSA and EC enrollment, refusal, renewal, PENDING then CertPoll, the CA
 * thumbprint check, GET-only servers, and replies that are not ours.
 *
 * The server runs as a process (`bin/certpost.js serve` on port 0 with a static challenge) and
 * is administered with the CLI (`challenge create`, `requests approve`, `certificates list`):
 * the `scep` component may not import `server` or `store` (architecture.test.ts), tests
 * included.
 */
import assert from 'node:assert/strict';
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPair, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { formatName, sha1Thumbprint, type Certificate } from '../pki/x509.ts';
import { encodePem } from '../pki/pem.ts';
import { spawnServe } from '../testing/serve-process.ts';
import { tempDir } from '../testing/tools.ts';
import {
  createScepClient,
  fetchTransport,
  isScepClientError,
  type ScepTransport,
  type ScepTransportRequest,
} from './client.ts';
import { MessageType, parsePkiMessage } from './message.ts';

const generateKeyPairAsync = promisify(generateKeyPair);
const execFileAsync = promisify(execFile);
const rsaKey = async () => (await generateKeyPairAsync('rsa', { modulusLength: 2048 })).privateKey;

const BIN = new URL('../../bin/certpost.js', import.meta.url).pathname;
const STATIC = 'client-test-static';
let child: ChildProcess | undefined;
let data = '';
let baseUrl = '';
let scepUrl = '';

/** Runs a certpost admin command on the server's data directory; returns its JSON output. */
async function certpost(...args: string[]): Promise<unknown> {
  const { stdout } = await execFileAsync(
    process.execPath,
    [BIN, ...args, '--data', data, '--json'],
    { timeout: 20_000 },
  );
  return JSON.parse(stdout);
}

/** Serials and SHA-1 thumbprints of every certificate the server has recorded. */
async function storedCertificates(): Promise<{ serial: string; sha1: string }[]> {
  const out = (await certpost('certificates', 'list', '--limit', '100000')) as {
    certificates: { serial: string; sha1: string }[];
  };
  return out.certificates;
}

/** The issued certificate verifies against the issuing CA that GetCACert returned. */
function assertIssuedBy(cert: Certificate, ca: readonly Certificate[]): void {
  const x = new X509Certificate(cert.der);
  assert.ok(
    ca.some((c) => x.verify(new X509Certificate(c.der).publicKey)),
    'signed by the CA',
  );
}

/** A transport that records every request it carries. */
function recording(inner: ScepTransport): {
  transport: ScepTransport;
  calls: ScepTransportRequest[];
} {
  const calls: ScepTransportRequest[] = [];
  return {
    calls,
    transport: async (req) => {
      calls.push(req);
      return inner(req);
    },
  };
}

before(async () => {
  data = join(tempDir(), 'data');
  const server = await spawnServe(['--data', data, '--scep-challenge', STATIC]);
  child = server.child;
  baseUrl = server.url;
  scepUrl = `${baseUrl}/scep`;
});

after(async () => {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((resolve) => child!.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child!.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(timer);
});

describe('SCEP client against the certpost server', () => {
  it('reads GetCACaps and the CA chain (PKCS#7 ca-ra-cert)', async () => {
    const client = createScepClient(fetchTransport(scepUrl));
    const caps = await client.capabilities();
    assert.ok(caps.includes('POSTPKIOperation') && caps.includes('SCEPStandard'), caps.join());
    const certs = await client.caCertificates();
    // The development CA: issuing CA (the SCEP responder) first, then its root.
    assert.deepEqual(
      certs.map((c) => formatName(c.subject)),
      [
        'CN=certpost development issuing CA,O=certpost',
        'CN=certpost development root CA,O=certpost',
      ],
    );
  });

  it('enrolls an RSA key with the static challenge (POST, AES + SHA-256, tid = SHA-256 of the key)', async () => {
    const { transport, calls } = recording(fetchTransport(scepUrl));
    const client = createScepClient(transport);
    const key = await rsaKey();
    const r = await client.enroll({
      subject: 'CN=client-rsa,O=certpost test',
      key,
      challenge: STATIC,
    });
    assert.equal(r.status, 'issued');
    const spki = createPublicKey(key).export({ type: 'spki', format: 'der' });
    assert.equal(r.transactionId, createHash('sha256').update(spki).digest('hex'));
    assert.equal(formatName(r.certificate.subject), 'CN=client-rsa,O=certpost test');
    assert.deepEqual(Buffer.from(r.certificate.spki), spki);
    assertIssuedBy(r.certificate, await client.caCertificates());
    const stored = await storedCertificates();
    assert.ok(
      stored.some((c) => c.sha1 === sha1Thumbprint(r.certificate)),
      'recorded',
    );
    const pki = calls.filter((c) => c.operation === 'PKIOperation');
    assert.equal(pki.length, 1);
    assert.equal(pki[0]!.method, 'POST');
  });

  it('enrolls an EC P-256 key (signed through a transient RSA signer)', async () => {
    const client = createScepClient(fetchTransport(scepUrl));
    const { privateKey: key } = await generateKeyPairAsync('ec', { namedCurve: 'P-256' });
    const r = await client.enroll({ subject: 'CN=client-ec', key, challenge: STATIC });
    assert.equal(r.status, 'issued');
    assertIssuedBy(r.certificate, await client.caCertificates());
    assert.deepEqual(
      Buffer.from(r.certificate.spki),
      createPublicKey(key).export({ type: 'spki', format: 'der' }),
    );
  });

  it('gets FAILURE badRequest for a wrong challenge, and nothing is stored', async () => {
    const client = createScepClient(fetchTransport(scepUrl));
    const count0 = (await storedCertificates()).length;
    const r = await client.enroll({
      subject: 'CN=client-wrong',
      key: await rsaKey(),
      challenge: 'not-it',
    });
    assert.equal(r.status, 'failed');
    assert.equal(r.failInfo, 'badRequest');
    assert.ok(r.failInfoText);
    assert.equal((await storedCertificates()).length, count0);
  });

  it('renews with renewWith (RenewalReq signed by the current certificate), same subject', async () => {
    const { transport, calls } = recording(fetchTransport(scepUrl));
    const client = createScepClient(transport);
    const oldKey = await rsaKey();
    const first = await client.enroll({
      subject: 'CN=client-renew',
      key: oldKey,
      challenge: STATIC,
    });
    assert.equal(first.status, 'issued');
    const newKey = await rsaKey();
    const second = await client.enroll({
      subject: 'CN=client-renew',
      key: newKey,
      renewWith: { certificate: first.certificate, key: oldKey },
    });
    assert.equal(second.status, 'issued');
    assert.equal(formatName(second.certificate.subject), 'CN=client-renew');
    assert.notDeepEqual(second.certificate.serial, first.certificate.serial);
    assert.deepEqual(
      Buffer.from(second.certificate.spki),
      createPublicKey(newKey).export({ type: 'spki', format: 'der' }),
    );
    // On the wire: RenewalReq (the server advertises Renewal), signed by the old certificate.
    const sent = parsePkiMessage(calls.filter((c) => c.operation === 'PKIOperation')[1]!.body!);
    assert.equal(sent.messageType, MessageType.RenewalReq);
    assert.equal(sha1Thumbprint(sent.signerCertificate), sha1Thumbprint(first.certificate));
  });

  it('is held PENDING on a manual challenge, then CertPoll gets the certificate once approved', async () => {
    const client = createScepClient(fetchTransport(scepUrl));
    const key = await rsaKey();
    const subject = 'CN=client-pending';
    const { challenge } = (await certpost('challenge', 'create', '--profile', 'manual')) as {
      challenge: string;
    };
    const r = await client.enroll({ subject, key, challenge });
    assert.equal(r.status, 'pending');
    const again = await client.poll({
      transactionId: r.transactionId,
      subject,
      key,
      signer: r.signer,
    });
    assert.equal(again.status, 'pending');
    const { requests } = (await certpost('requests', 'list')) as {
      requests: { id: string; transactionId: string }[];
    };
    const held = requests.find((q) => q.transactionId === r.transactionId);
    assert.ok(held, 'the request is listed as pending');
    await certpost('requests', 'approve', held.id);
    const polled = await client.poll({
      transactionId: r.transactionId,
      subject,
      key,
      signer: r.signer,
    });
    assert.equal(polled.status, 'issued');
    assert.equal(formatName(polled.certificate.subject), subject);
    assertIssuedBy(polled.certificate, await client.caCertificates());
    const issued = (await certpost('requests', 'list', '--status', 'issued')) as {
      requests: { id: string }[];
    };
    assert.ok(issued.requests.some((q) => q.id === held.id));
  });

  it('fetches the CRL by GetCRL, and it lists a certificate revoked by the administrator', async () => {
    const client = createScepClient(fetchTransport(scepUrl));
    const key = await rsaKey();
    const result = await client.enroll({ subject: 'CN=crl-subject', key, challenge: STATIC });
    assert.equal(result.status, 'issued');
    if (result.status !== 'issued') return;
    const serial = Buffer.from(result.certificate.serial).toString('hex');
    await certpost('certificates', 'revoke', serial, '--reason', 'keyCompromise');
    const crls = await client.getCrl({ certificate: result.certificate, key });
    assert.equal(crls.length, 1);
    const dir = tempDir();
    writeFileSync(join(dir, 'crl.der'), crls[0]!);
    const ca = await client.caCertificates();
    writeFileSync(join(dir, 'ca.pem'), ca.map((c) => encodePem('CERTIFICATE', c.der)).join(''));
    const { stdout, stderr } = await execFileAsync(
      'openssl',
      ['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'ca.pem', '-noout', '-text'],
      { cwd: dir },
    );
    assert.match(stderr + stdout, /verify OK/);
    assert.match(
      stdout,
      new RegExp(`Serial Number: ${serial.toUpperCase()}[\\s\\S]*Key Compromise`),
    );
  });

  it('checks the CA thumbprint before sending any PKIOperation', async () => {
    const { transport, calls } = recording(fetchTransport(scepUrl));
    const client = createScepClient(transport);
    const key = await rsaKey();
    await assert.rejects(
      client.enroll({
        subject: 'CN=client-thumb',
        key,
        challenge: STATIC,
        caThumbprint: '00'.repeat(20),
      }),
      (e) => isScepClientError(e, 'ERR_SCEP_CLIENT_CA_THUMBPRINT'),
    );
    assert.deepEqual(calls.map((c) => c.operation).toSorted(), ['GetCACaps', 'GetCACert']);
    // The root's thumbprint as Windows shows it (upper case, spaced) is accepted.
    const root = sha1Thumbprint((await client.caCertificates())[1]!).toUpperCase();
    const ok = await client.enroll({
      subject: 'CN=client-thumb',
      key,
      challenge: STATIC,
      caThumbprint: root.replace(/(..)(?!$)/g, '$1 '),
    });
    assert.equal(ok.status, 'issued');
    assert.equal(calls.filter((c) => c.operation === 'PKIOperation').length, 1);
  });

  it('uses GET PKIOperation when the server does not advertise POSTPKIOperation', async () => {
    const inner = fetchTransport(scepUrl);
    const { transport, calls } = recording(async (req) => {
      const res = await inner(req);
      if (req.operation !== 'GetCACaps') return res;
      const caps = new TextDecoder()
        .decode(res.body)
        .split('\n')
        .filter((c) => c !== 'POSTPKIOperation' && c !== 'SCEPStandard');
      return { ...res, body: new TextEncoder().encode(caps.join('\n')) };
    });
    const client = createScepClient(transport);
    const r = await client.enroll({
      subject: 'CN=client-get',
      key: await rsaKey(),
      challenge: STATIC,
    });
    assert.equal(r.status, 'issued');
    const pki = calls.filter((c) => c.operation === 'PKIOperation');
    assert.deepEqual(
      pki.map((c) => c.method),
      ['GET'],
    );
  });

  it('refuses a CertRep that does not carry our senderNonce (a replayed reply)', async () => {
    const inner = fetchTransport(scepUrl);
    let recorded: Awaited<ReturnType<ScepTransport>> | undefined;
    const client = createScepClient(async (req) => {
      if (req.operation === 'PKIOperation' && recorded) return recorded;
      const res = await inner(req);
      if (req.operation === 'PKIOperation') recorded = res;
      return res;
    });
    const key = await rsaKey();
    const o = { subject: 'CN=client-replay', key, challenge: STATIC, transactionId: 'replay-1' };
    assert.equal((await client.enroll(o)).status, 'issued');
    await assert.rejects(client.enroll(o), (e) =>
      isScepClientError(e, 'ERR_SCEP_CLIENT_BAD_RESPONSE'),
    );
  });

  it('reports transport failures as ERR_SCEP_CLIENT_TRANSPORT', async () => {
    const notFound = createScepClient(fetchTransport(`${baseUrl}/no-such-path`));
    await assert.rejects(
      notFound.capabilities(),
      (e) => isScepClientError(e, 'ERR_SCEP_CLIENT_TRANSPORT') && e.status === 404,
    );
    const refused = createScepClient(fetchTransport('http://127.0.0.1:1/scep'));
    await assert.rejects(refused.caCertificates(), (e) =>
      isScepClientError(e, 'ERR_SCEP_CLIENT_TRANSPORT'),
    );
  });
});
