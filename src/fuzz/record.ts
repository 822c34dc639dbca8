/**
 * `npx node src/fuzz/record.ts`: records the seeds of the session fuzz targets from the real
 * parts, in one process (in-process.ts), and writes them with the files they depend on:
 *
 * - `src/omadm/testdata/session/`: the MS-MDE2 answers that enrolled the device
 *   (`enroll-*.xml`), and every message of its first sessions: the default root, SCEP and an
 *   S/MIME PFX profile installed, the SCEP enrollment reported, the PFX profile removed
 *   (`NN-device.xml`, `NN-server.xml`). In device messages the ids of the fixture's queued
 *   commands are written `@N` (in-process.ts expandQueueRefs). `device-key.pem` is read, not
 *   written: the device's MDM key, so that the PFX password the server encrypted to it opens.
 * - `src/scep/testdata/certrep/`: CertReps answering one request (session-targets.ts
 *   certrepRequest) from our SCEP service (SUCCESS, FAILURE, PENDING, CertPoll, GetCert,
 *   GetCRL) and from micromdm `scepserver` 2.1.0 (SUCCESS, FAILURE; needs root for its private
 *   network namespace, src/testing/reference-scep.ts), with the CA certificates of both.
 *
 * Everything is made up on the spot by throw-away CAs; the keys are test-only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildCertificate, keyUsage, subjectKeyIdentifier } from '../ca/certificate.ts';
import { parseRfc4514 } from '../ca/name.ts';
import { buildCsr } from '../pki/csr.ts';
import { enc } from '../pki/der.ts';
import { parsePrivateKeyPem } from '../pki/keys.ts';
import { decodePem, encodePem } from '../pki/pem.ts';
import { parsePkcs7Certificates } from '../pki/pkcs7.ts';
import { spkiOf } from '../pki/key-ref.ts';
import { isCA, parseCertificate, type Certificate } from '../pki/x509.ts';
import { fetchTransport, type ScepTransport } from '../scep/client.ts';
import { buildPkiRequest, MessageType, type PkiRequestOptions } from '../scep/message.ts';
import { createChallenge } from '../server/admin-ops.ts';
import { openContext, type ServerContext } from '../server/context.ts';
import { unassignProfile } from '../server/mdm-profiles.ts';
import { startReferenceScep } from '../testing/reference-scep.ts';
import {
  aliasQueueRefs,
  ENROLLMENT_FILES,
  scepTransport,
  SESSION_DIR,
  startServerFixture,
} from './in-process.ts';
import { CERTREP_DIR, CERTREP_NONCE } from './session-targets.ts';

const MINUTE_MS = 20;
/** The subject of the recorded SCEP requests. */
const SUBJECT = 'CN=fuzz-certrep,O=certpost fuzz';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function recordSession(): Promise<void> {
  const f = await startServerFixture({ minuteMs: MINUTE_MS });
  try {
    // The SCEP enrollment the first session started: the agent's background work (SCEP by
    // call), which opens a session when it is done; one more reports the certificate.
    for (let i = 0; i < 200 && f.agent.scep.nextDueAt(); i++) {
      await f.agent.runDue();
      await sleep(MINUTE_MS);
    }
    await f.agent.sync();
    await unassignProfile(f.context, 'record', 'smime', { kind: 'all' });
    await f.agent.sync();

    for (const name of await readdir(SESSION_DIR))
      if (/^\d+-(device|server)\.xml$/.test(name)) await rm(new URL(name, SESSION_DIR));
    let n = 0;
    for (const e of f.transcript) {
      const at = String(++n).padStart(2, '0');
      await writeFile(new URL(`${at}-device.xml`, SESSION_DIR), aliasQueueRefs(e.device, f.queue));
      await writeFile(new URL(`${at}-server.xml`, SESSION_DIR), e.server);
    }
    for (const [url, body] of f.enrollment)
      await writeFile(new URL(ENROLLMENT_FILES[url.split('/').at(-1)!]!, SESSION_DIR), body);
    process.stdout.write(`session: ${f.transcript.length} exchanges, queue of ${f.queue.length}\n`);
  } finally {
    await f.close();
  }
}

/** The signer of the recorded requests: self-signed on the client key (a century long). */
async function signerCertificate(key: ReturnType<typeof parsePrivateKeyPem>['key']) {
  const file = new URL('signer.pem', CERTREP_DIR);
  if (existsSync(file)) return parseCertificate(decodePem(readFileSync(file))[0]!.der);
  const spki = spkiOf(key);
  const name = parseRfc4514('CN=SCEP SIGNER,O=certpost fuzz');
  const der = await buildCertificate({
    subject: name,
    spki,
    serial: Uint8Array.of(0x01, ...randomBytes(8)),
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2126-01-01T00:00:00Z'),
    issuer: { name, key, spki },
    extensions: [keyUsage(['digitalSignature', 'keyEncipherment']), subjectKeyIdentifier(spki)],
  });
  await writeFile(file, encodePem('CERTIFICATE', der));
  return parseCertificate(der);
}

type Send = (o: Pick<PkiRequestOptions, 'messageType' | 'content'>) => Promise<Uint8Array>;

/** A PKIOperation sender for one server: the recorded request's signer, nonce and transaction. */
async function sender(transport: ScepTransport, cipher: PkiRequestOptions['cipher']) {
  const key = parsePrivateKeyPem(readFileSync(new URL('client.key', CERTREP_DIR), 'utf8')).key;
  const signer = { certificate: await signerCertificate(key), key };
  const ca = await transport({ operation: 'GetCACert', method: 'GET' });
  const certs: Certificate[] = ca.contentType.includes('ra-cert')
    ? parsePkcs7Certificates(ca.body)
    : [parseCertificate(ca.body)];
  const transactionId = createHash('sha256').update(signer.certificate.spki).digest('hex');
  const send: Send = async (o) => {
    const body = await buildPkiRequest({
      ...o,
      transactionId,
      senderNonce: CERTREP_NONCE,
      signer,
      recipient: certs[0]!,
      cipher,
      digest: 'sha256',
    });
    const r = await transport({ operation: 'PKIOperation', method: 'POST', body });
    if (r.status !== 200) throw new Error(`PKIOperation: HTTP ${r.status}`);
    return r.body;
  };
  const csr = (challenge: string) =>
    buildCsr({
      subject: parseRfc4514(SUBJECT),
      key,
      challengePassword: challenge,
    });
  return { certs, send, csr, signer };
}

const pems = (certs: readonly Certificate[]) =>
  certs.map((c) => encodePem('CERTIFICATE', c.der)).join('');

const save = (name: string, der: Uint8Array) => writeFile(new URL(name, CERTREP_DIR), der);

async function recordCertReps(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'certpost-record-'));
  const contexts: ServerContext[] = [];
  // One database per transaction: every request carries the same transactionID.
  const server = async (name: string) => {
    const c = await openContext({
      dataDir: join(dir, 'data'),
      database: join(dir, `${name}.db`),
      createCa: true,
    });
    contexts.push(c);
    return c;
  };
  try {
    for (const name of await readdir(CERTREP_DIR))
      if (name.endsWith('.der')) await rm(new URL(name, CERTREP_DIR));

    const a = await server('issued');
    const s = await sender(scepTransport(a)(), 'aes-128-cbc');
    await writeFile(new URL('certpost-ca.pem', CERTREP_DIR), pems(s.certs));
    await save(
      'certpost-failure.der',
      await s.send({ messageType: MessageType.PKCSReq, content: await s.csr('wrong') }),
    );
    const { challenge } = await createChallenge(a, 'record', { profile: 'default' });
    await save(
      'certpost-success.der',
      await s.send({ messageType: MessageType.PKCSReq, content: await s.csr(challenge) }),
    );
    const [issued] = await a.store.listCertificates({ limit: 1 });
    // IssuerAndSerialNumber of the issued certificate (GetCert, GetCRL).
    const issuerAndSerial = enc.seq(
      parseCertificate(issued!.der).issuer.der,
      enc.uint(Buffer.from(issued!.serial, 'hex')),
    );
    await save(
      'certpost-getcert.der',
      await s.send({ messageType: MessageType.GetCert, content: issuerAndSerial }),
    );
    await save(
      'certpost-getcrl.der',
      await s.send({ messageType: MessageType.GetCRL, content: issuerAndSerial }),
    );

    const b = await server('held');
    const h = await sender(scepTransport(b)(), 'des-ede3-cbc');
    const manual = await createChallenge(b, 'record', { profile: 'manual' });
    await save(
      'certpost-pending.der',
      await h.send({ messageType: MessageType.PKCSReq, content: await h.csr(manual.challenge) }),
    );
    // IssuerAndSubject (RFC 8894 §3.3.3), as the client builds it.
    const recipient = h.certs[0]!;
    const poll = {
      messageType: MessageType.CertPoll,
      content: enc.seq(
        isCA(recipient) ? recipient.subject.der : recipient.issuer.der,
        parseRfc4514(SUBJECT),
      ),
    } as const;
    await save('certpost-certpoll-pending.der', await h.send(poll));
    const [held] = await b.store.listRequests('pending');
    await b.enrollment.decide(held!.id, 'approved', 'record');
    await save('certpost-certpoll-issued.der', await h.send(poll));

    const ref = await startReferenceScep();
    try {
      const m = await sender(fetchTransport(ref.url), 'des-ede3-cbc');
      await writeFile(new URL('micromdm-ca.pem', CERTREP_DIR), pems(m.certs));
      await save(
        'micromdm-failure.der',
        await m.send({ messageType: MessageType.PKCSReq, content: await m.csr('wrong') }),
      );
      await save(
        'micromdm-success.der',
        await m.send({ messageType: MessageType.PKCSReq, content: await m.csr(ref.challenge) }),
      );
    } finally {
      await ref.stop();
    }
    process.stdout.write('certrep: recorded\n');
  } finally {
    for (const c of contexts) await c.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await recordSession();
await recordCertReps();
