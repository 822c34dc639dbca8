/**
 * The enrollment service's decisions (enrollment.ts contract, steps 1–5), on a real SQLite store.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import { before, describe, it } from 'node:test';
import { buildCsr, parseCsr } from '../pki/csr.ts';
import * as der from '../pki/der.ts';
import type { Certificate } from '../pki/x509.ts';
import { openSqliteStore } from '../store/sqlite.ts';
import type { Store } from '../store/types.ts';
import { createAuthority, type CaMaterial } from './authority.ts';
import {
  secretHash,
  createEnrollmentService,
  type EnrollmentOutcome,
  type EnrollmentService,
} from './enrollment.ts';
import { parseRfc4514 } from './name.ts';
import { DEFAULT_PROFILE, type IssuanceProfile } from './profile.ts';
import { FailureLimiter } from './rate-limit.ts';

const { privateKey: key } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
let store: Store;
let ca: CaMaterial;
let svc: EnrollmentService;
let tx = 0;

const profiles = new Map<string, IssuanceProfile>([
  ['default', DEFAULT_PROFILE],
  ['manual', { ...DEFAULT_PROFILE, name: 'manual', requireApproval: true }],
  ['fixed', { ...DEFAULT_PROFILE, name: 'fixed', allowRenewal: false }],
  ['manual-2', { ...DEFAULT_PROFILE, name: 'manual-2', requireApproval: true }],
]);

async function request(
  cn: string,
  challenge?: string,
  o: { signer?: Certificate; renewal?: boolean; peer?: string; transactionId?: string } = {},
): Promise<EnrollmentOutcome> {
  const csr = parseCsr(
    await buildCsr({
      subject: parseRfc4514(`CN=${cn}`),
      key,
      ...(challenge !== undefined ? { challengePassword: challenge } : {}),
    }),
  );
  return svc.enroll({
    transactionId: o.transactionId ?? `tx-${++tx}`,
    csr,
    signer: o.signer ?? ca.root.certificate,
    renewalRequested: o.renewal ?? false,
    peer: o.peer ?? `203.0.113.${tx % 250}`, // its own address unless the test says otherwise
  });
}

async function oneTime(profile: string, subject: string | null = null): Promise<string> {
  const secret = randomUUID();
  const now = new Date();
  await store.createChallenge({
    id: randomUUID(),
    secretHash: secretHash(secret),
    profile,
    subject,
    createdAt: now,
    expiresAt: new Date(now.getTime() + 60_000),
  });
  return secret;
}

function issued(o: EnrollmentOutcome): Certificate {
  assert.equal(o.status, 'issued', JSON.stringify(o));
  return (o as { certificate: Certificate }).certificate;
}

function refused(o: EnrollmentOutcome, reason: string): void {
  assert.equal(o.status, 'refused');
  assert.equal((o as { reason: string }).reason, reason);
}

before(async () => {
  store = await openSqliteStore(':memory:');
  ca = await createAuthority({
    keyType: 'ec',
    rootSubject: 'CN=Test Root',
    issuingSubject: 'CN=Test Issuing',
  });
  svc = createEnrollmentService({
    issuing: ca.issuing,
    profiles,
    defaultProfile: 'default',
    staticChallenge: 'static-secret',
    store,
    revokeSupersededOnRenewal: true,
    limiter: new FailureLimiter({ maxFailures: 3 }),
  });
});

describe('enrollment', () => {
  it('issues with the static challenge, records and audits it, and keeps secrets out of the audit', async () => {
    const cert = issued(await request('dev-static', 'static-secret'));
    const rec = await store.getCertificate(Buffer.from(cert.serial).toString('hex'));
    assert.ok(rec && der.bytesEqual(rec.der, cert.der));
    const audit = await store.listAudit({ action: 'certificate.issued' });
    assert.ok(audit.some((a) => a.target === rec.serial));
    assert.ok(!JSON.stringify(await store.listAudit({ limit: 1000 })).includes('static-secret'));
  });

  it('refuses a missing or wrong challenge, then rate-limits that client only', async () => {
    refused(await request('dev-a', undefined, { peer: '198.51.100.7' }), 'challenge-missing');
    refused(await request('dev-a', 'guess-1', { peer: '198.51.100.7' }), 'challenge-invalid');
    refused(await request('dev-a', 'guess-2', { peer: '198.51.100.7' }), 'challenge-invalid');
    refused(await request('dev-a', 'static-secret', { peer: '198.51.100.7' }), 'rate-limited');
    issued(await request('dev-b', 'static-secret', { peer: '198.51.100.8' }));
  });

  it('consumes a one-time challenge once and enforces its bound subject', async () => {
    const secret = await oneTime('default', 'CN=dev-bound');
    refused(await request('dev-other', secret), 'subject-mismatch');
    refused(await request('dev-bound', secret), 'challenge-invalid'); // already consumed by the refusal
    const fresh = await oneTime('default', 'CN=dev-bound');
    issued(await request('dev-bound', fresh));
    refused(await request('dev-bound', fresh), 'challenge-invalid');
  });

  it('one challenge in two requests at once: one certificate, recorded with the challenge used up; the other refused', async () => {
    const secret = await oneTime('default');
    const stored = (await store.listCertificates()).length;
    const outcomes = await Promise.all([request('dev-race', secret), request('dev-race', secret)]);
    assert.deepEqual(outcomes.map((o) => o.status).toSorted(), ['issued', 'refused']);
    const refusal = outcomes.find((o) => o.status === 'refused');
    assert.equal((refusal as { reason: string }).reason, 'challenge-invalid');
    assert.equal((await store.listCertificates()).length, stored + 1);
    assert.equal(await store.findUsableChallenge(secretHash(secret), new Date()), undefined);
  });

  it('treats a request signed by our valid certificate as a renewal, same subject, old one superseded', async () => {
    const first = issued(await request('dev-renew', 'static-secret'));
    refused(await request('dev-renamed', undefined, { signer: first }), 'renewal-subject-mismatch');
    const renewed = await request('dev-renew', undefined, { signer: first, renewal: true });
    const second = issued(renewed);
    assert.equal((renewed as { renewal: boolean }).renewal, true);
    assert.notDeepEqual(second.serial, first.serial);
    const old = await store.getCertificate(Buffer.from(first.serial).toString('hex'));
    assert.equal(old?.revocationReason, 4);
    refused(
      await request('dev-renew', undefined, { signer: first, renewal: true }),
      'renewal-signer-unknown',
    ); // revoked now
    refused(
      await request('dev-nobody', 'static-secret', { renewal: true }),
      'renewal-signer-unknown',
    );
  });

  it('refuses renewal when the profile forbids it', async () => {
    const secret = await oneTime('fixed');
    const cert = issued(await request('dev-fixed', secret));
    refused(await request('dev-fixed', undefined, { signer: cert }), 'renewal-not-allowed');
  });

  it('holds a request for approval, answers polls and re-sent requests from the hold, issues once', async () => {
    const secret = await oneTime('manual');
    const held = await request('dev-held', secret, { transactionId: 'tx-held' });
    assert.equal(held.status, 'pending');
    assert.equal((await svc.poll('tx-held')).status, 'pending');
    // micromdm's client re-sends the same PKCSReq: answered from the hold, no challenge consumed.
    assert.equal(
      (await request('dev-held', secret, { transactionId: 'tx-held' })).status,
      'pending',
    );
    const id = (held as { requestId: string }).requestId;
    assert.equal(await svc.decide(id, 'approved', 'admin:test'), true);
    assert.equal(await svc.decide(id, 'rejected', 'admin:test'), false);
    const cert = issued(await svc.poll('tx-held'));
    assert.deepEqual(
      issued(await svc.poll('tx-held')).der,
      cert.der,
      'a second poll returns the same certificate',
    );
    assert.equal((await store.getRequest(id))?.status, 'issued');

    const other = await request('dev-rejected', await oneTime('manual'), {
      transactionId: 'tx-rejected',
    });
    await svc.decide((other as { requestId: string }).requestId, 'rejected', 'admin:test');
    refused(await svc.poll('tx-rejected'), 'rejected');
    refused(await svc.poll('tx-unknown'), 'unknown-transaction');
  });

  it('an approved request that the profile no longer allows is refused on poll, not an error', async () => {
    const held = await request('dev-changed', await oneTime('manual-2'), {
      transactionId: 'tx-changed',
    });
    await svc.decide((held as { requestId: string }).requestId, 'approved', 'admin:test');
    const allowed = profiles.get('manual-2')!;
    profiles.set('manual-2', { ...allowed, allowedKeyTypes: ['rsa'] }); // the key is EC
    try {
      refused(await svc.poll('tx-changed'), 'key-not-allowed');
    } finally {
      profiles.set('manual-2', allowed);
    }
    issued(await svc.poll('tx-changed'));
  });

  it('the same PKCSReq arriving twice at once is held once; both copies are answered PENDING', async () => {
    const held = createEnrollmentService({
      issuing: ca.issuing,
      profiles,
      defaultProfile: 'manual',
      staticChallenge: 'static-manual',
      store,
      revokeSupersededOnRenewal: true,
    });
    const csr = parseCsr(
      await buildCsr({
        subject: parseRfc4514('CN=dev-twice'),
        key,
        challengePassword: 'static-manual',
      }),
    );
    const one = {
      transactionId: 'tx-twice',
      csr,
      signer: ca.root.certificate,
      renewalRequested: false,
    };
    const [a, b] = await Promise.all([
      held.enroll({ ...one, peer: '192.0.2.1' }),
      held.enroll({ ...one, peer: '192.0.2.2' }),
    ]);
    assert.equal(a.status, 'pending');
    assert.deepEqual(b, a);
  });

  it('revokes with a reason, audits it, and the CRL lists it', async () => {
    const cert = issued(await request('dev-revoke', 'static-secret'));
    const serial = Buffer.from(cert.serial).toString('hex');
    assert.equal(await svc.revoke(serial, 1, 'admin:test'), true);
    assert.equal(await svc.revoke(serial, 1, 'admin:test'), false);
    const crl = await svc.currentCrl();
    assert.ok(Buffer.from(crl).includes(Buffer.from(cert.serial)), 'the serial appears in the CRL');
    assert.ok(
      (await store.listAudit({ action: 'certificate.revoked' })).some((a) => a.target === serial),
    );
  });

  it('signs the CRL again only when the revocation list changed, even by a revocation elsewhere', async () => {
    const first = await svc.currentCrl();
    assert.deepEqual(await svc.currentCrl(), first, 'an unchanged list reuses the signed CRL');
    const cert = issued(await request('dev-revoke-elsewhere', 'static-secret'));
    // Revoked straight in the store, as another server process on the same database would.
    await store.revokeCertificate(Buffer.from(cert.serial).toString('hex'), 1, new Date());
    const next = await svc.currentCrl();
    assert.notDeepEqual(next, first);
    assert.ok(Buffer.from(next).includes(Buffer.from(cert.serial)));
  });
});
