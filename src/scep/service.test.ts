/**
 * The SCEP service's error contract (service.ts header), with a recording stub for the
 * enrollment backend so each test can assert what reached it.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { createAuthority, type CaMaterial } from '../ca/authority.ts';
import { buildCertificate } from '../ca/certificate.ts';
import type { EnrollmentService } from '../ca/enrollment.ts';
import { parseRfc4514 } from '../ca/name.ts';
import { buildCsr } from '../pki/csr.ts';
import { isPkiError } from '../pki/errors.ts';
import { parseCertificate, type Certificate } from '../pki/x509.ts';
import { FailInfo } from './errors.ts';
import { buildPkiRequest, MessageType, parseCertRep, PkiStatus } from './message.ts';
import { createScepService, type ScepService } from './service.ts';

let ca: CaMaterial;
let service: ScepService;
const calls: string[] = [];

const stub: Pick<EnrollmentService, 'enroll' | 'poll' | 'findCertificate' | 'currentCrl'> = {
  enroll: async (input) => {
    calls.push(`enroll ${input.transactionId}`);
    return { status: 'refused', reason: 'challenge-invalid', message: 'stub' };
  },
  poll: async (t) => {
    calls.push(`poll ${t}`);
    return { status: 'pending', requestId: 'r' };
  },
  findCertificate: async () => undefined,
  currentCrl: async () => new Uint8Array(0),
};

/** A self-signed SCEP signer certificate for `key` (as clients make for a first enrollment). */
async function signerFor(key: KeyObject, publicKey: KeyObject): Promise<Certificate> {
  const name = parseRfc4514('CN=SCEP SIGNER');
  const spki = new Uint8Array(publicKey.export({ type: 'spki', format: 'der' }));
  const now = Date.now();
  return parseCertificate(
    await buildCertificate({
      subject: name,
      spki,
      serial: Uint8Array.of(1),
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3_600_000),
      issuer: { name, key, spki },
      extensions: [],
    }),
  );
}

async function pkcsReq(
  keys: { privateKey: KeyObject; publicKey: KeyObject },
  transactionId: string,
) {
  const certificate = await signerFor(keys.privateKey, keys.publicKey);
  const csr = await buildCsr({
    subject: parseRfc4514('CN=device'),
    key: keys.privateKey,
    challengePassword: 'x',
  });
  const body = await buildPkiRequest({
    messageType: MessageType.PKCSReq,
    transactionId,
    senderNonce: new Uint8Array(randomBytes(16)),
    content: csr,
    signer: { certificate, key: keys.privateKey },
    recipient: ca.issuing.certificate,
    cipher: 'aes-128-cbc',
    digest: 'sha256',
  });
  return { body, signer: { certificate, key: keys.privateKey } };
}

before(async () => {
  ca = await createAuthority({
    keyType: 'rsa',
    rootSubject: 'CN=Root',
    issuingSubject: 'CN=Issuing',
  });
  service = createScepService({
    responder: ca.issuing,
    chain: [ca.issuing.certificate, ca.root.certificate],
    enrollment: stub,
  });
});

describe('SCEP service error contract', () => {
  it('answers a request signed with an EC key FAILURE badAlg, before anything reaches enrollment', async () => {
    const req = await pkcsReq(generateKeyPairSync('ec', { namedCurve: 'P-256' }), 'tx-ec');
    const rep = await parseCertRep((await service.pkiOperation(req.body)).body, req.signer, [
      ca.issuing.certificate,
    ]);
    assert.equal(rep.status, PkiStatus.FAILURE);
    assert.equal(rep.failInfo, FailInfo.badAlg);
    assert.equal(rep.transactionId, 'tx-ec');
    assert.ok(!calls.includes('enroll tx-ec'));
  });

  it('passes an RSA-signed request to enrollment and maps its refusal to failInfo through the table', async () => {
    const req = await pkcsReq(generateKeyPairSync('rsa', { modulusLength: 2048 }), 'tx-rsa');
    const rep = await parseCertRep((await service.pkiOperation(req.body)).body, req.signer, [
      ca.issuing.certificate,
    ]);
    assert.ok(calls.includes('enroll tx-rsa'));
    assert.equal(rep.status, PkiStatus.FAILURE);
    assert.equal(rep.failInfo, FailInfo.badRequest);
    assert.equal(rep.failInfoText, 'stub');
  });

  it('answers a tampered message FAILURE badMessageCheck without detail, and garbage with a PkiError', async () => {
    const req = await pkcsReq(generateKeyPairSync('rsa', { modulusLength: 2048 }), 'tx-tampered');
    const tampered = Uint8Array.from(req.body);
    tampered[tampered.length - 10]! ^= 0xff; // inside the signature
    const rep = await parseCertRep((await service.pkiOperation(tampered)).body, req.signer, [
      ca.issuing.certificate,
    ]);
    assert.equal(rep.status, PkiStatus.FAILURE);
    assert.equal(rep.failInfo, FailInfo.badMessageCheck);
    assert.ok(!calls.includes('enroll tx-tampered'));
    await assert.rejects(service.pkiOperation(new TextEncoder().encode('hello')), (e) =>
      isPkiError(e),
    );
  });
});
